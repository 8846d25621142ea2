"""Lp pooling modules: fixed or learned p, and the lectures' L2 pooling with a Gaussian window."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import params
from cnnjax.nn._pool import Shape, window_kwargs


class LpPool(nn.Module):
    """Lp pooling ``(Σ w_j |x_j|^p)^(1/p)``, equivalent to partial application of
    :func:`cnnjax.lp_pool`.

    With ``learn_p=True`` the exponent is a learned scalar parameter ``'p_raw'`` with
    ``p = 1 + softplus(p_raw)`` (so ``p > 1`` always; Gulcehre et al. 2014, "Learned-norm
    pooling"), initialised so that ``p`` starts at the ``p`` field.

    Attributes:
      window_shape, strides, padding, ceil_mode: as :func:`cnnjax.lp_pool`.
      p: the exponent (fixed), or the initial exponent when learned (must then be > 1).
      learn_p: learn ``p``.
      weights: ``None``, ``'gaussian'`` or an array of shape ``window_shape``.
      sigma: Gaussian std for ``weights='gaussian'``.

    Example:
      >>> pool = LpPool(window_shape=2, learn_p=True, p=3.0)
      >>> v = pool.init(jax.random.key(0), jnp.ones((1, 4, 4, 2)))
      >>> pool.apply(v, jnp.ones((1, 4, 4, 2))).shape
      (1, 2, 2, 2)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    p: float = 2.0
    learn_p: bool = False
    weights: Any = None
    sigma: float | None = None
    ceil_mode: bool = False

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        x = jnp.asarray(x)
        p = self.p
        if self.learn_p:
            init = params.LP_P.init(p, "LpPool")
            raw = self.param(params.LP_P.raw, nn.initializers.constant(init), (), jnp.float32)
            p = params.LP_P.value(raw, x.dtype)
        return cnnjax.lp_pool(x, **window_kwargs(self), p=p, weights=self.weights,
                              sigma=self.sigma, ceil_mode=self.ceil_mode)


class L2Pool(nn.Module):
    """L2 pooling with a Gaussian window, equivalent to partial application of
    :func:`cnnjax.l2_pool` (the lectures' "L2 norm pooling").

    Example:
      >>> L2Pool(window_shape=2).apply({}, jnp.ones((1, 4, 4, 1))).shape
      (1, 2, 2, 1)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    sigma: float | None = None

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        return cnnjax.l2_pool(x, **window_kwargs(self), sigma=self.sigma)
