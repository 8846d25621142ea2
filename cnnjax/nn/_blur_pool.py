"""Anti-aliased pooling modules (Zhang 2019): partial applications of :func:`cnnjax.blur_pool`
and :func:`cnnjax.max_blur_pool`.

Both are deterministic and parameter-free; like every cnnjax pooling module they are called
as ``module(x, train=...)`` and ignore ``train``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import fields
from cnnjax.ops import checks
from cnnjax.ops._blur_pool import blur_pool_to_shape

Shape = int | Sequence[int]


class BlurPool(nn.Module):
    """Binomial blur then subsampling, equivalent to partial application of
    :func:`cnnjax.blur_pool` (Zhang 2019 ``BlurPool``).

    Output size per spatial dim ``⌊(n − 1)/s⌋ + 1``. With ``site = (window_shape, strides,
    padding)`` — the max pooling it replaces — the blur subsamples with the site's stride
    and the output has exactly the site's max-pooling size
    ``cnnjax.conv_output_shape(spatial, window_shape, stride=strides, padding=padding)``:
    trailing outputs are dropped where the blur's natural output is longer, and where it is
    shorter (a site padded by half its window or more) the extra outputs blur further into
    the ``padding_mode`` padding after the input.

    Attributes:
      window_shape: the binomial filter size (``3``: ``[1, 2, 1]/4``).
      strides: subsampling step; ``None`` means 2, or the site's stride when ``site`` is
        given (a different explicit value is an error).
      padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
      site: ``(window_shape, strides, padding)`` of the pooling site, or ``None``.

    Example:
      >>> BlurPool().apply({}, jnp.ones((1, 7, 7, 3))).shape
      (1, 4, 4, 3)
      >>> BlurPool(site=(2, 2, 'VALID')).apply({}, jnp.ones((1, 7, 7, 3))).shape
      (1, 3, 3, 3)
    """

    window_shape: Shape = 3
    strides: Shape | None = None
    padding_mode: str = "reflect"
    site: tuple[Any, Any, Any] | None = None

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train  # deterministic
        if self.site is None:
            strides = 2 if self.strides is None else self.strides
            return cnnjax.blur_pool(x, self.window_shape, strides, padding_mode=self.padding_mode)
        x = jnp.asarray(x)
        op = "BlurPool"
        checks.spatial_rank(x, op)
        out, strides = fields.blur_site_geometry(tuple(x.shape[1:-1]), self.site, self.strides,
                                                 op)
        return blur_pool_to_shape(x, out, self.window_shape, strides,
                                  padding_mode=self.padding_mode, op=op)


class MaxBlurPool(nn.Module):
    """Dense max pooling then a binomial blur with subsampling, equivalent to partial
    application of :func:`cnnjax.max_blur_pool` (Zhang 2019 ``MaxBlurPool``).

    Output size per spatial dim ``⌊(n + lo + hi − k)/s⌋ + 1`` — max pooling's with the same
    ``window_shape``, ``strides`` and ``padding``, so it drops in at any max-pooling site.

    Attributes:
      window_shape: max window (dense: stride 1).
      strides: the blur's subsampling step.
      filter_size: binomial filter size.
      padding_mode: the blur's padding mode.
      padding: the dense max pool's padding (as :func:`cnnjax.max_pool`).

    Example:
      >>> MaxBlurPool(window_shape=3, strides=2, padding=1).apply({}, jnp.ones((1, 8, 8, 3))).shape
      (1, 4, 4, 3)
    """

    window_shape: Shape = 2
    strides: Shape = 2
    filter_size: Shape = 3
    padding_mode: str = "reflect"
    padding: Any = "VALID"

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train  # deterministic
        return cnnjax.max_blur_pool(x, self.window_shape, self.strides,
                                    filter_size=self.filter_size,
                                    padding_mode=self.padding_mode, padding=self.padding)
