"""Max, average and sum pooling as ``flax.nnx`` modules.

Every pooling module of :mod:`cnnjax.nnx` is the partial application of one ``cnnjax``
pooling op and is called as ``pool(x)``; stochastic pools switch with ``model.train()`` /
``model.eval()``. The pooling registry :mod:`cnnjax.layers.pool_specs` lists them all;
:func:`cnnjax.nnx.make_pool` builds any of them from a spec string.
"""
from __future__ import annotations

from typing import Any

import jax
from jax.typing import ArrayLike

import cnnjax
from cnnjax.nnx._base import Shape, WindowPool, frozen


class MaxPool(WindowPool):
    """Max pooling, equivalent to partial application of :func:`cnnjax.max_pool`.

    ``strides=None`` means ``strides = window_shape``. Output size per spatial dim
    ``floor((n + lo + hi − dilation·(k − 1) − 1)/s) + 1`` (ceil with PyTorch's rule if
    ``ceil_mode``).

    Args:
      window_shape, strides, padding, dilation, ceil_mode: as :func:`cnnjax.max_pool`.

    Example:
      >>> MaxPool(2)(jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, dilation: Shape = 1, ceil_mode: bool = False):
        super().__init__(window_shape, strides, padding)
        self.dilation = frozen(dilation)
        self.ceil_mode = ceil_mode

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.max_pool(x, **self.window_kwargs(), dilation=self.dilation,
                               ceil_mode=self.ceil_mode)


class AvgPool(WindowPool):
    """Average pooling, equivalent to partial application of :func:`cnnjax.avg_pool`.

    PyTorch divisor rules (``count_include_pad``); output size as :class:`MaxPool`.

    Example:
      >>> AvgPool(2)(jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__(window_shape, strides, padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.avg_pool(x, **self.window_kwargs(), ceil_mode=self.ceil_mode,
                               count_include_pad=self.count_include_pad)


class SumPool(WindowPool):
    """Sum pooling, equivalent to partial application of :func:`cnnjax.sum_pool`.

    Example:
      >>> SumPool(2)(jnp.ones((1, 4, 4, 3)))[0, 0, 0, 0]
      Array(4., dtype=float32)
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, ceil_mode: bool = False):
        super().__init__(window_shape, strides, padding)
        self.ceil_mode = ceil_mode

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.sum_pool(x, **self.window_kwargs(), ceil_mode=self.ceil_mode)
