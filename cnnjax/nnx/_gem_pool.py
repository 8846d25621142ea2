"""Generalized-mean and log-sum-exp pooling modules: :func:`cnnjax.gem_pool`,
:func:`cnnjax.global_gem_pool`, :func:`cnnjax.lse_pool` and :func:`cnnjax.global_lse_pool`.

A learned exponent is an ``nnx.Param`` kept positive by a softplus (``p = softplus(p_raw)``,
``r = softplus(r_raw)``, :data:`cnnjax.layers.params.GEM_P` / ``LSE_R``), initialised so that
it starts at the ``p`` (``r``) argument, one per layer or, with ``per_channel``, one per
channel (``num_features`` then gives the count).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import params
from cnnjax.nnx._base import Module, Shape, WindowPool, check_input
from cnnjax.ops import checks


class _Exponent:
    """The fixed or learned exponent of a GeM/LSE module (``bound``: GEM_P or LSE_R)."""

    bound: params.Constrained

    def init_exponent(self, value: float, learn: bool, per_channel: bool,
                      num_features: int | None, op: str) -> None:
        flag = self.bound.flag
        if per_channel and not learn:
            checks.fail(op, f"per_channel=True needs {flag}=True, got {flag}=False.")
        self.per_channel = per_channel
        self.num_features = num_features
        if learn:
            shape = params.per_channel_shape((), per_channel, num_features, op)
            raw = nnx.Param(jnp.full(shape, self.bound.init(value, op), jnp.float32))
        else:
            raw = nnx.data(None)
        setattr(self, self.bound.raw, raw)

    def exponent(self, x: jax.Array, value: float, learn: bool, op: str) -> tuple[jax.Array, Any]:
        """``(x, exponent)``: ``value``, or the learned one in ``x``'s dtype."""
        if not learn:
            return jnp.asarray(x), value
        x = check_input(x, op, channels=self.num_features if self.per_channel else None)
        return x, self.bound.value(getattr(self, self.bound.raw)[...], x.dtype)


class GeMPool(WindowPool, _Exponent):
    """Generalized-mean pooling (Radenović et al. 2018), equivalent to partial application of
    :func:`cnnjax.gem_pool`: ``(mean_j max(x_j, eps)^p)^{1/p}`` over each window.

    Args:
      window_shape, strides, padding, eps: as :func:`cnnjax.gem_pool`.
      p: the exponent (fixed), or the initial exponent when learned.
      learn_p: learn ``p = softplus(p_raw)`` (an ``nnx.Param`` ``p_raw``).
      per_channel: one learned ``p`` per channel (``[num_features]``); needs ``learn_p``.
      num_features: the input's channel count (for ``per_channel``).
      rngs: accepted as by every NNX module with parameters; ``p_raw`` starts at a constant.

    Example:
      >>> pool = GeMPool(2, learn_p=True)
      >>> round(float(jax.nn.softplus(pool.p_raw[...])), 4)
      3.0
    """

    bound = params.GEM_P

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, p: float = 3.0, eps: float = 1e-6,
                 learn_p: bool = False, per_channel: bool = False,
                 num_features: int | None = None, rngs: nnx.Rngs | None = None):
        del rngs
        super().__init__(window_shape, strides, padding)
        self.p, self.eps, self.learn_p = p, eps, learn_p
        self.init_exponent(p, learn_p, per_channel, num_features, "GeMPool")

    def __call__(self, x: ArrayLike) -> jax.Array:
        x, p = self.exponent(x, self.p, self.learn_p, "GeMPool")
        return cnnjax.gem_pool(x, **self.window_kwargs(), p=p, eps=self.eps)


class GlobalGeMPool(Module, _Exponent):
    """GeM over all spatial positions ``[N, *spatial, C] -> [N, C]``, equivalent to partial
    application of :func:`cnnjax.global_gem_pool`; ``p`` fixed or learned as in
    :class:`GeMPool`.

    Example:
      >>> GlobalGeMPool()(jnp.ones((2, 4, 4, 3))).shape
      (2, 3)
    """

    bound = params.GEM_P

    def __init__(self, *, p: float = 3.0, eps: float = 1e-6, learn_p: bool = False,
                 per_channel: bool = False, num_features: int | None = None,
                 rngs: nnx.Rngs | None = None):
        del rngs
        self.p, self.eps, self.learn_p = p, eps, learn_p
        self.init_exponent(p, learn_p, per_channel, num_features, "GlobalGeMPool")

    def __call__(self, x: ArrayLike) -> jax.Array:
        x, p = self.exponent(x, self.p, self.learn_p, "GlobalGeMPool")
        return cnnjax.global_gem_pool(x, p=p, eps=self.eps)


class LsePool(WindowPool, _Exponent):
    """Log-sum-exp pooling (Pinheiro & Collobert 2015), equivalent to partial application of
    :func:`cnnjax.lse_pool`: ``(1/r)·log(mean_j e^{r·x_j})`` over each window.

    Args:
      window_shape, strides, padding: as :func:`cnnjax.lse_pool`.
      r: the sharpness (fixed), or its initial value when learned.
      learn_r: learn ``r = softplus(r_raw)`` (an ``nnx.Param`` ``r_raw``).
      per_channel: one learned ``r`` per channel (``[num_features]``); needs ``learn_r``.
      num_features: the input's channel count (for ``per_channel``).
      rngs: accepted as by every NNX module with parameters; ``r_raw`` starts at a constant.

    Example:
      >>> LsePool(2, learn_r=True, per_channel=True, num_features=3).r_raw.shape
      (3,)
    """

    bound = params.LSE_R

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, r: float = 1.0, learn_r: bool = False,
                 per_channel: bool = False, num_features: int | None = None,
                 rngs: nnx.Rngs | None = None):
        del rngs
        super().__init__(window_shape, strides, padding)
        self.r, self.learn_r = r, learn_r
        self.init_exponent(r, learn_r, per_channel, num_features, "LsePool")

    def __call__(self, x: ArrayLike) -> jax.Array:
        x, r = self.exponent(x, self.r, self.learn_r, "LsePool")
        return cnnjax.lse_pool(x, **self.window_kwargs(), r=r)


class GlobalLsePool(Module, _Exponent):
    """LSE over all spatial positions ``[N, *spatial, C] -> [N, C]``, equivalent to partial
    application of :func:`cnnjax.global_lse_pool`; ``r`` fixed or learned as in
    :class:`LsePool`.

    Example:
      >>> GlobalLsePool(r=2.0)(jnp.ones((2, 4, 4, 3))).shape
      (2, 3)
    """

    bound = params.LSE_R

    def __init__(self, *, r: float = 1.0, learn_r: bool = False, per_channel: bool = False,
                 num_features: int | None = None, rngs: nnx.Rngs | None = None):
        del rngs
        self.r, self.learn_r = r, learn_r
        self.init_exponent(r, learn_r, per_channel, num_features, "GlobalLsePool")

    def __call__(self, x: ArrayLike) -> jax.Array:
        x, r = self.exponent(x, self.r, self.learn_r, "GlobalLsePool")
        return cnnjax.global_lse_pool(x, r=r)
