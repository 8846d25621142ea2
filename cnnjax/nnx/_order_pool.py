"""Order-statistic pooling modules: :func:`cnnjax.min_pool` and :func:`cnnjax.median_pool`."""
from __future__ import annotations

from typing import Any

import jax
from jax.typing import ArrayLike

import cnnjax
from cnnjax.nnx._base import Shape, WindowPool


class MinPool(WindowPool):
    """Min pooling (padding counts as +∞), equivalent to partial application of
    :func:`cnnjax.min_pool`; output size as :class:`MaxPool` at the same site.

    Example:
      >>> MinPool(2)(jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, ceil_mode: bool = False):
        super().__init__(window_shape, strides, padding)
        self.ceil_mode = ceil_mode

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.min_pool(x, **self.window_kwargs(), ceil_mode=self.ceil_mode)


class MedianPool(WindowPool):
    """Median pooling (the lower middle value for an even window), equivalent to partial
    application of :func:`cnnjax.median_pool`; padded positions take their values from
    ``padding_mode`` (``'reflect'``, ``'zeros'``, ``'replicate'``, ``'circular'``).

    Example:
      >>> MedianPool(3, 1, 'SAME')(jnp.ones((1, 4, 4, 3))).shape
      (1, 4, 4, 3)
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, padding_mode: str = "reflect"):
        super().__init__(window_shape, strides, padding)
        self.padding_mode = padding_mode

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.median_pool(x, **self.window_kwargs(), padding_mode=self.padding_mode)
