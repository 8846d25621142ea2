"""Generalized-mean and log-sum-exp pooling modules: partial applications of
:func:`cnnjax.gem_pool`, :func:`cnnjax.global_gem_pool`, :func:`cnnjax.lse_pool` and
:func:`cnnjax.global_lse_pool`.

With ``learn_p``/``learn_r`` the exponent is a parameter kept positive by a softplus:
``p = softplus(p_raw)``, ``r = softplus(r_raw)``, the raw value initialised so that ``p``
(``r``) starts at the ``p`` (``r``) field — 3 and 1 by default, the values of Radenović et al.
2018 and of a plain log-sum-exp — one per layer or, with ``per_channel``, one per channel.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import params
from cnnjax.ops import checks

Shape = int | Sequence[int]


def _exponent(module: nn.Module, op: str, bound: params.Constrained, value: float,
              learn: bool, per_channel: bool, x: jax.Array) -> Any:
    """The fixed value, or the learned one (``bound``'s parameterisation) in x's dtype."""
    if not learn:
        if per_channel:
            checks.fail(op, f"per_channel=True needs {bound.flag}=True, got "
                            f"{bound.flag}=False.")
        return value
    shape = (x.shape[-1],) if per_channel else ()
    raw = module.param(bound.raw, nn.initializers.constant(bound.init(value, op)), shape,
                       jnp.float32)
    return bound.value(raw, x.dtype)


class GeMPool(nn.Module):
    """Generalized-mean pooling (Radenović et al. 2018), equivalent to partial application of
    :func:`cnnjax.gem_pool`: ``(mean_j max(x_j, eps)^p)^{1/p}`` over each window.

    Attributes:
      window_shape, strides, padding, eps: as :func:`cnnjax.gem_pool`.
      p: the exponent (fixed), or the initial exponent when learned.
      learn_p: learn ``p = softplus('p_raw')``.
      per_channel: one learned ``p`` per channel (``[C]``); needs ``learn_p``.

    Example:
      >>> pool = GeMPool(window_shape=2, learn_p=True)
      >>> v = pool.init(jax.random.key(0), jnp.ones((1, 4, 4, 3)))
      >>> round(float(jax.nn.softplus(v['params']['p_raw'])), 4)
      3.0
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    p: float = 3.0
    eps: float = 1e-6
    learn_p: bool = False
    per_channel: bool = False

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train  # deterministic; a learned p is used as it is
        x = jnp.asarray(x)
        p = _exponent(self, "GeMPool", params.GEM_P, self.p, self.learn_p, self.per_channel, x)
        return cnnjax.gem_pool(x, self.window_shape, self.strides, self.padding, p=p,
                               eps=self.eps)


class GlobalGeMPool(nn.Module):
    """GeM over all spatial positions ``[N, *spatial, C] -> [N, C]``, equivalent to partial
    application of :func:`cnnjax.global_gem_pool`; ``p`` fixed or learned as in
    :class:`GeMPool`.

    Example:
      >>> GlobalGeMPool().apply({}, jnp.ones((2, 4, 4, 3))).shape
      (2, 3)
    """

    p: float = 3.0
    eps: float = 1e-6
    learn_p: bool = False
    per_channel: bool = False

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        x = jnp.asarray(x)
        p = _exponent(self, "GlobalGeMPool", params.GEM_P, self.p, self.learn_p, self.per_channel, x)
        return cnnjax.global_gem_pool(x, p=p, eps=self.eps)


class LsePool(nn.Module):
    """Log-sum-exp pooling (Pinheiro & Collobert 2015), equivalent to partial application of
    :func:`cnnjax.lse_pool`: ``(1/r)·log(mean_j e^{r·x_j})`` over each window.

    Attributes:
      window_shape, strides, padding: as :func:`cnnjax.lse_pool`.
      r: the sharpness (fixed), or its initial value when learned.
      learn_r: learn ``r = softplus('r_raw')``.
      per_channel: one learned ``r`` per channel (``[C]``); needs ``learn_r``.

    Example:
      >>> pool = LsePool(window_shape=2, learn_r=True, per_channel=True)
      >>> v = pool.init(jax.random.key(0), jnp.ones((1, 4, 4, 3)))
      >>> v['params']['r_raw'].shape
      (3,)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    r: float = 1.0
    learn_r: bool = False
    per_channel: bool = False

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        x = jnp.asarray(x)
        r = _exponent(self, "LsePool", params.LSE_R, self.r, self.learn_r, self.per_channel, x)
        return cnnjax.lse_pool(x, self.window_shape, self.strides, self.padding, r=r)


class GlobalLsePool(nn.Module):
    """LSE over all spatial positions ``[N, *spatial, C] -> [N, C]``, equivalent to partial
    application of :func:`cnnjax.global_lse_pool`; ``r`` fixed or learned as in
    :class:`LsePool`.

    Example:
      >>> GlobalLsePool(r=2.0).apply({}, jnp.ones((2, 4, 4, 3))).shape
      (2, 3)
    """

    r: float = 1.0
    learn_r: bool = False
    per_channel: bool = False

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        x = jnp.asarray(x)
        r = _exponent(self, "GlobalLsePool", params.LSE_R, self.r, self.learn_r, self.per_channel, x)
        return cnnjax.global_lse_pool(x, r=r)
