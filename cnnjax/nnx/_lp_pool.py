"""Lp pooling modules: fixed or learned p, and the lectures' L2 pooling with a Gaussian window."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import params
from cnnjax.nnx._base import Shape, WindowPool


class LpPool(WindowPool):
    """Lp pooling ``(Σ w_j |x_j|^p)^(1/p)``, equivalent to partial application of
    :func:`cnnjax.lp_pool`.

    With ``learn_p=True`` the exponent is a learned scalar ``nnx.Param`` ``p_raw`` with
    ``p = 1 + softplus(p_raw)`` (so ``p > 1`` always, Gulcehre et al. 2014), initialised so
    that ``p`` starts at the ``p`` argument (which must then be > 1).

    Args:
      window_shape, strides, padding, ceil_mode: as :func:`cnnjax.lp_pool`.
      p: the exponent (fixed), or the initial exponent when learned.
      learn_p: learn ``p``.
      weights: ``None``, ``'gaussian'`` or an array of shape ``window_shape``.
      sigma: Gaussian std for ``weights='gaussian'``.
      rngs: accepted as by every NNX module with parameters; ``p_raw`` starts at a constant,
        so no key is drawn.

    Example:
      >>> pool = LpPool(2, p=3.0, learn_p=True)
      >>> pool(jnp.ones((1, 4, 4, 2))).shape, pool.p_raw.shape
      ((1, 2, 2, 2), ())
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, p: float = 2.0, learn_p: bool = False,
                 weights: Any = None, sigma: float | None = None, ceil_mode: bool = False,
                 rngs: nnx.Rngs | None = None):
        del rngs
        super().__init__(window_shape, strides, padding)
        self.p = p
        self.learn_p = learn_p
        self.weights = weights
        self.sigma = sigma
        self.ceil_mode = ceil_mode
        self.p_raw = (nnx.Param(jnp.asarray(params.LP_P.init(p, "LpPool"), jnp.float32))
                      if learn_p else nnx.data(None))

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        p = params.LP_P.value(self.p_raw[...], x.dtype) if self.learn_p else self.p
        return cnnjax.lp_pool(x, **self.window_kwargs(), p=p, weights=self.weights,
                              sigma=self.sigma, ceil_mode=self.ceil_mode)


class L2Pool(WindowPool):
    """L2 pooling with a Gaussian window, equivalent to partial application of
    :func:`cnnjax.l2_pool` (the lectures' "L2 norm pooling").

    Example:
      >>> L2Pool(2)(jnp.ones((1, 4, 4, 1))).shape
      (1, 2, 2, 1)
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, sigma: float | None = None):
        super().__init__(window_shape, strides, padding)
        self.sigma = sigma

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.l2_pool(x, **self.window_kwargs(), sigma=self.sigma)
