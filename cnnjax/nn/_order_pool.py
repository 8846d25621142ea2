"""Order-statistic pooling modules: partial applications of :func:`cnnjax.min_pool` and
:func:`cnnjax.median_pool`.

Both are deterministic and parameter-free; like every cnnjax pooling module they take
``__call__(x, *, train=False)`` and ignore ``train``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
from jax.typing import ArrayLike

import cnnjax

Shape = int | Sequence[int]


class MinPool(nn.Module):
    """Min pooling (padding counts as +∞), equivalent to partial application of
    :func:`cnnjax.min_pool`.

    Output size per spatial dim ``floor((n + lo + hi − k)/s) + 1`` (ceil with PyTorch's rule
    if ``ceil_mode``), the same as :class:`cnnjax.nn.MaxPool` at the same site.

    Example:
      >>> MinPool(window_shape=2).apply({}, jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    ceil_mode: bool = False

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train  # deterministic
        return cnnjax.min_pool(x, self.window_shape, self.strides, self.padding,
                               ceil_mode=self.ceil_mode)


class MedianPool(nn.Module):
    """Median pooling (the lower middle value for an even window), equivalent to partial
    application of :func:`cnnjax.median_pool`.

    Padded positions take their values from ``padding_mode`` (``'reflect'``, ``'zeros'``,
    ``'replicate'``, ``'circular'``). Output size per spatial dim
    ``floor((n + lo + hi − k)/s) + 1``.

    Example:
      >>> MedianPool(window_shape=3, strides=1, padding='SAME').apply(
      ...     {}, jnp.ones((1, 4, 4, 3))).shape
      (1, 4, 4, 3)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    padding_mode: str = "reflect"

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train  # deterministic
        return cnnjax.median_pool(x, self.window_shape, self.strides, self.padding,
                                  padding_mode=self.padding_mode)
