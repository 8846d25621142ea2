"""Spatial pyramid pooling module (He et al. 2014): :func:`cnnjax.spatial_pyramid_pool`."""
from __future__ import annotations

from collections.abc import Sequence

import jax
from jax.typing import ArrayLike

import cnnjax
from cnnjax.nnx._base import Module, frozen


class SpatialPyramidPool(Module):
    """Spatial pyramid pooling, equivalent to partial application of
    :func:`cnnjax.spatial_pyramid_pool`: ``[N, *spatial, C] -> [N, C·Σ_l l^d]`` for any
    spatial size (at least ``max(levels)``), bin-major and channel-minor per level. It
    changes the rank, so it replaces the flatten before a classifier head, not a pooling site.

    Example:
      >>> SpatialPyramidPool(levels=(1, 2, 4))(jnp.ones((2, 9, 7, 3))).shape
      (2, 63)
    """

    def __init__(self, levels: Sequence[int] = (1, 2, 4), mode: str = "max"):
        self.levels = frozen(levels)
        self.mode = mode

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.spatial_pyramid_pool(x, self.levels, mode=self.mode)
