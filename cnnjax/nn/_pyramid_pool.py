"""Spatial pyramid pooling module: a partial application of
:func:`cnnjax.spatial_pyramid_pool`."""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
from jax.typing import ArrayLike

import cnnjax


class SpatialPyramidPool(nn.Module):
    """Spatial pyramid pooling (He et al. 2014), equivalent to partial application of
    :func:`cnnjax.spatial_pyramid_pool`: ``[N, *spatial, C] -> [N, C·Σ_l l^d]`` for any
    spatial size (at least ``max(levels)``), bin-major and channel-minor per level.

    Deterministic and parameter-free; ``train`` is ignored. It changes the rank of its
    input, so it replaces the flatten (or global pooling) before a classifier head rather
    than a pooling site.

    Example:
      >>> SpatialPyramidPool(levels=(1, 2, 4)).apply({}, jnp.ones((2, 9, 7, 3))).shape
      (2, 63)
    """

    levels: Sequence[int] = (1, 2, 4)
    mode: str = "max"

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train  # deterministic
        return cnnjax.spatial_pyramid_pool(x, self.levels, mode=self.mode)
