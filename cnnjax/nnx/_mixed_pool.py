"""Max-average mixing modules: mixed (fixed or learned alpha), stochastic mixed, gated pooling."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import params
from cnnjax.nnx._base import (Initializer, RngsLike, Shape, Stochastic, WindowPool, check_input,
                              eager_ntuple)


class MixedPool(WindowPool):
    """``alpha·max + (1 − alpha)·avg`` pooling, equivalent to partial application of
    :func:`cnnjax.mixed_pool` (Lee et al. 2016, "mixed max-average pooling").

    With ``learn_alpha=True`` alpha is ``sigmoid(alpha_logit)`` (kept in ``[0, 1]``), an
    ``nnx.Param`` per layer (a scalar) or, with ``per_channel=True``, one per channel ``[C]``
    (``num_features = C`` is then required), initialised at ``alpha`` (which must then be
    strictly inside ``(0, 1)``).

    Args:
      window_shape, strides, padding: the site, as :func:`cnnjax.mixed_pool`.
      alpha: the mixing proportion (fixed), or its initial value when learned.
      learn_alpha: learn alpha.
      per_channel: one learned alpha per channel.
      num_features: the input's channel count (for ``per_channel``).
      rngs: accepted as by every NNX module with parameters; ``alpha_logit`` starts at a
        constant, so no key is drawn.

    Example:
      >>> pool = MixedPool(2, learn_alpha=True, per_channel=True, num_features=3)
      >>> pool.alpha_logit.shape
      (3,)
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, alpha: float = 0.5, learn_alpha: bool = False,
                 per_channel: bool = False, num_features: int | None = None,
                 rngs: nnx.Rngs | None = None):
        del rngs
        super().__init__(window_shape, strides, padding)
        self.alpha = alpha
        self.learn_alpha = learn_alpha
        self.per_channel = per_channel
        self.num_features = num_features
        if learn_alpha:
            shape = params.per_channel_shape((), per_channel, num_features, "MixedPool")
            init = params.MIXED_ALPHA.init(alpha, "MixedPool")
            self.alpha_logit = nnx.Param(jnp.full(shape, init, jnp.float32))
        else:
            self.alpha_logit = nnx.data(None)

    def __call__(self, x: ArrayLike) -> jax.Array:
        alpha = self.alpha
        if self.learn_alpha:
            x = check_input(x, "MixedPool",
                            channels=self.num_features if self.per_channel else None)
            alpha = params.MIXED_ALPHA.value(self.alpha_logit[...], x.dtype)
        return cnnjax.mixed_pool(x, **self.window_kwargs(), alpha=alpha)


class StochasticMixedPool(WindowPool, Stochastic):
    """Stochastic mixed pooling (Yu et al. 2014), equivalent to partial application of
    :func:`cnnjax.stochastic_mixed_pool`.

    In training mode (``deterministic=False``, a new module's mode) each (example, channel)
    is max-pooled with probability ``alpha`` and average-pooled otherwise, drawing from the
    ``'pool'`` stream; ``model.eval()`` gives the expectation ``mixed_pool(alpha=alpha)``.

    Args:
      window_shape, strides, padding, alpha: as :func:`cnnjax.stochastic_mixed_pool`.
      deterministic: inference mode.
      rngs: an ``nnx.Rngs`` whose ``'pool'`` stream the module forks (or pass ``rngs`` when
        calling).

    Example:
      >>> pool = StochasticMixedPool(2, rngs=nnx.Rngs(pool=0))
      >>> pool(jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, alpha: float = 0.5, deterministic: bool = False,
                 rngs: nnx.Rngs | None = None):
        WindowPool.__init__(self, window_shape, strides, padding)
        self.alpha = alpha
        self.init_stochastic(deterministic, rngs, "StochasticMixedPool")

    def __call__(self, x: ArrayLike, *, deterministic: bool | None = None,
                 rngs: RngsLike | None = None) -> jax.Array:
        train = self.training(deterministic)
        key = self.key(rngs, "StochasticMixedPool") if train else None
        return cnnjax.stochastic_mixed_pool(x, **self.window_kwargs(), alpha=self.alpha,
                                            train=train, key=key)


class GatedPool(WindowPool):
    """Gated max-average pooling (Lee et al. 2016), equivalent to partial application of
    :func:`cnnjax.gated_pool` with a learned ``nnx.Param`` ``gate``.

    The gate has shape ``window_shape`` (one per layer, shared over channels) or, with
    ``per_channel=True``, ``(*window_shape, num_features)``; an int ``window_shape`` is a
    square 2-D window. The zero initialisation starts the layer as ``0.5·max + 0.5·avg``.

    Args:
      window_shape, strides, padding: the site, as :func:`cnnjax.gated_pool`.
      per_channel: one gate per channel.
      num_features: the input's channel count (for ``per_channel``).
      gate_init: initialiser of the gate.
      rngs: its ``params`` stream gives the initialiser's key.

    Example:
      >>> GatedPool(2, rngs=nnx.Rngs(0)).gate.shape
      (2, 2)
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, per_channel: bool = False,
                 num_features: int | None = None,
                 gate_init: Initializer = nnx.initializers.zeros_init(), rngs: nnx.Rngs):
        super().__init__(window_shape, strides, padding)
        window = eager_ntuple(window_shape, "GatedPool", "window_shape")
        shape = params.per_channel_shape(window, per_channel, num_features, "GatedPool")
        self.per_channel = per_channel
        self.num_features = num_features
        self.gate = nnx.Param(gate_init(rngs.params(), shape, jnp.float32))

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = check_input(x, "GatedPool", d=len(self.gate.shape) - self.per_channel,
                        channels=self.num_features if self.per_channel else None)
        return cnnjax.gated_pool(x, self.gate[...].astype(x.dtype), **self.window_kwargs())
