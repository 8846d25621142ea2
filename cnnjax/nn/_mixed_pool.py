"""Max-average mixing modules: mixed (fixed or learned alpha), stochastic mixed and gated pooling."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import params
from cnnjax.nn._pool import Shape, window_kwargs
from cnnjax.ops import checks


class MixedPool(nn.Module):
    """``alpha·max + (1 − alpha)·avg`` pooling, equivalent to partial application of
    :func:`cnnjax.mixed_pool` (Lee et al. 2016, "mixed max-average pooling").

    With ``learn_alpha=True`` alpha is ``sigmoid('alpha_logit')`` (kept in ``[0, 1]``), one per
    layer (a scalar) or, with ``per_channel=True``, one per channel ``[C]``, initialised at the
    ``alpha`` field (which must then be strictly inside ``(0, 1)``).

    Example:
      >>> pool = MixedPool(window_shape=2, learn_alpha=True, per_channel=True)
      >>> v = pool.init(jax.random.key(0), jnp.ones((1, 4, 4, 3)))
      >>> v['params']['alpha_logit'].shape
      (3,)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    alpha: float = 0.5
    learn_alpha: bool = False
    per_channel: bool = False

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        x = jnp.asarray(x)
        alpha = self.alpha
        if self.learn_alpha:
            init = params.MIXED_ALPHA.init(alpha, "MixedPool")
            shape = params.per_channel_shape((), self.per_channel, x.shape[-1], "MixedPool")
            logit = self.param(params.MIXED_ALPHA.raw, nn.initializers.constant(init), shape,
                               jnp.float32)
            alpha = params.MIXED_ALPHA.value(logit, x.dtype)
        return cnnjax.mixed_pool(x, **window_kwargs(self), alpha=alpha)


class StochasticMixedPool(nn.Module):
    """Stochastic mixed pooling (Yu et al. 2014), equivalent to partial application of
    :func:`cnnjax.stochastic_mixed_pool`; ``train=True`` draws from the ``'pool'`` RNG.

    Example:
      >>> pool = StochasticMixedPool(window_shape=2)
      >>> y = pool.apply({}, jnp.ones((1, 4, 4, 3)), train=True,
      ...                rngs={'pool': jax.random.key(0)})
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    alpha: float = 0.5

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        key = self.make_rng("pool") if train else None
        return cnnjax.stochastic_mixed_pool(x, **window_kwargs(self), alpha=self.alpha,
                                            train=train, key=key)


class GatedPool(nn.Module):
    """Gated max-average pooling (Lee et al. 2016), equivalent to partial application of
    :func:`cnnjax.gated_pool` with a learned ``'gate'`` parameter.

    The gate has shape ``window_shape`` (one per layer, shared over channels) or, with
    ``per_channel=True``, ``(*window_shape, C)``. The zero initialisation starts the layer as
    ``0.5·max + 0.5·avg``.

    Example:
      >>> pool = GatedPool(window_shape=2)
      >>> v = pool.init(jax.random.key(0), jnp.ones((1, 4, 4, 3)))
      >>> v['params']['gate'].shape
      (2, 2)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    per_channel: bool = False
    gate_init: Callable[..., jax.Array] = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        x = jnp.asarray(x)
        d = checks.spatial_rank(x, "GatedPool")
        window = checks.ntuple(self.window_shape, d, "GatedPool", "window_shape")
        shape = params.per_channel_shape(window, self.per_channel, x.shape[-1], "GatedPool")
        gate = self.param("gate", self.gate_init, shape, jnp.float32)
        return cnnjax.gated_pool(x, gate.astype(x.dtype), **window_kwargs(self))
