"""Max, average and sum pooling modules, and what every pooling module shares.

Every pooling module of :mod:`cnnjax.nn` is the partial application of one ``cnnjax`` pooling op
(the dm-haiku pattern) and has the same call signature ``__call__(x, *, train=False)``, so a
model can call any of them at a pooling site (``train`` is ignored by deterministic pools;
stochastic pools draw from the ``'pool'`` RNG collection when ``train=True``). The pooling
registry :mod:`cnnjax.layers.pool_specs` lists them all; :func:`cnnjax.nn.make_pool` builds any
of them from a spec string.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
from jax.typing import ArrayLike

import cnnjax

Shape = int | Sequence[int]


def window_kwargs(module) -> dict[str, Any]:
    return dict(window_shape=module.window_shape, strides=module.strides, padding=module.padding)


class MaxPool(nn.Module):
    """Max pooling, equivalent to partial application of :func:`cnnjax.max_pool`.

    ``strides=None`` means ``strides = window_shape``. Output size per spatial dim
    ``floor((n + lo + hi − dilation·(k − 1) − 1)/s) + 1`` (ceil with PyTorch's rule if
    ``ceil_mode``).

    Example:
      >>> MaxPool(window_shape=2).apply({}, jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    dilation: Shape = 1
    ceil_mode: bool = False

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train  # deterministic
        return cnnjax.max_pool(x, **window_kwargs(self), dilation=self.dilation,
                               ceil_mode=self.ceil_mode)


class AvgPool(nn.Module):
    """Average pooling, equivalent to partial application of :func:`cnnjax.avg_pool`.

    PyTorch divisor rules (``count_include_pad``); output size as :class:`MaxPool`.

    Example:
      >>> AvgPool(window_shape=2).apply({}, jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    ceil_mode: bool = False
    count_include_pad: bool = True

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        return cnnjax.avg_pool(x, **window_kwargs(self), ceil_mode=self.ceil_mode,
                               count_include_pad=self.count_include_pad)


class SumPool(nn.Module):
    """Sum pooling, equivalent to partial application of :func:`cnnjax.sum_pool`.

    Example:
      >>> SumPool(window_shape=2).apply({}, jnp.ones((1, 4, 4, 3)))[0, 0, 0, 0]
      Array(4., dtype=float32)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    ceil_mode: bool = False

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        return cnnjax.sum_pool(x, **window_kwargs(self), ceil_mode=self.ceil_mode)
