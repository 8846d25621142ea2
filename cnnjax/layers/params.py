"""Learned hyperparameters kept in range by smooth parameterisations, and pooling-site sizes.

Both module front ends (:mod:`cnnjax.nn` for ``flax.linen``, :mod:`cnnjax.nnx` for
``flax.nnx``) store an unconstrained raw parameter and map it into the range the op needs,
so gradient descent can never step outside it:

* ``value = minimum + softplus(raw)`` for exponents and temperatures (``p > 1`` of learned
  Lp pooling, Gulcehre et al. 2014; ``p > 0`` of GeM; ``r > 0`` of LSE pooling);
* ``value = sigmoid(logit)`` for mixing proportions in ``[0, 1]`` (``alpha`` of mixed
  pooling, Lee et al. 2016).

The ``*_init`` functions give the raw value that makes the parameter start at a chosen value.
:class:`Constrained` binds one such parameter of a module — its raw name, the field holding its
initial value, its learn flag and its map — so both front ends create and read it the same way
(:data:`LP_P`, :data:`MIXED_ALPHA`).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from cnnjax.ops import checks
from cnnjax.ops import conv_output_shape

__all__ = ["GEM_P", "LP_P", "LSE_R", "MIXED_ALPHA", "Constrained", "average_leaves_init", "per_channel_shape", "positive",
           "positive_init", "site_output_shape", "unit", "unit_init"]


def positive(raw: jax.Array, minimum: float = 0.0) -> jax.Array:
    """``minimum + softplus(raw)``: any real ``raw`` gives a value above ``minimum``."""
    return minimum + jax.nn.softplus(raw)


def positive_init(value: float, minimum: float = 0.0, *, op: str, name: str,
                  flag: str) -> float:
    """The ``raw`` with ``positive(raw, minimum) == value`` (``value`` must exceed ``minimum``).

    ``op``, ``name`` and ``flag`` (the module, the field and its learn flag) word the error.
    """
    if isinstance(value, bool) or not (value > minimum and math.isfinite(value)):
        formula = f"{minimum:g} + softplus(raw)" if minimum else "softplus(raw)"
        bound = f"> {minimum:g}" if minimum else "a positive finite number"
        checks.fail(op, f"{name} must be {bound} when {flag}=True ({name} = {formula}), "
                        f"got {value!r}.")
    y = value - minimum
    # softplus(z) = log(1 + e^z) = y  <=>  z = log(e^y - 1) = y + log(1 - e^-y) (no overflow).
    return y + math.log(-math.expm1(-y))


def unit(logit: jax.Array) -> jax.Array:
    """``sigmoid(logit)``, in ``(0, 1)``."""
    return jax.nn.sigmoid(logit)


def unit_init(value: float, *, op: str, name: str, flag: str) -> float:
    """The ``logit`` with ``unit(logit) == value`` (``value`` strictly inside ``(0, 1)``)."""
    if not 0.0 < value < 1.0:
        checks.fail(op, f"{name} must be in (0, 1) when {flag}=True ({name} = sigmoid(logit)), "
                         f"got {value!r}.")
    return math.log(value / (1.0 - value))


def site_output_shape(spatial: Sequence[int], site: Any, op: str) -> tuple[int, ...]:
    """The spatial output size of max pooling at a site ``(window_shape, strides, padding)``.

    ``strides=None`` means ``window_shape``, as for every pooling op.
    """
    if not (isinstance(site, Sequence) and not isinstance(site, str) and len(site) == 3):
        checks.fail(op, f"site must be (window_shape, strides, padding), got {site!r}.",
                     TypeError)
    window, strides, padding = site
    return conv_output_shape(tuple(spatial), window,
                             stride=window if strides is None else strides, padding=padding)


@dataclasses.dataclass(frozen=True)
class Constrained:
    """A learned hyperparameter of a module, stored as an unconstrained float32 raw parameter.

    Attributes:
      raw: the parameter's name in the module (``'p_raw'``).
      field: the module field that holds its initial (or fixed) value (``'p'``).
      flag: the module field that turns learning on (``'learn_p'``).
      minimum: ``value = minimum + softplus(raw)`` (:func:`positive`); ``None`` for
        ``value = sigmoid(raw)`` in ``(0, 1)`` (:func:`unit`).
    """

    raw: str
    field: str
    flag: str
    minimum: float | None = 0.0

    def init(self, value: float, op: str) -> float:
        """The raw value that makes the parameter start at ``value`` (checked, naming ``op``)."""
        if self.minimum is None:
            return unit_init(value, op=op, name=self.field, flag=self.flag)
        return positive_init(value, self.minimum, op=op, name=self.field, flag=self.flag)

    def value(self, raw: jax.Array, dtype: Any) -> jax.Array:
        """The hyperparameter from its raw parameter, in the computation ``dtype``."""
        value = unit(raw) if self.minimum is None else positive(raw, self.minimum)
        return jnp.asarray(value).astype(dtype)


#: Learned Lp exponent ``p = 1 + softplus(p_raw) > 1`` (Gulcehre et al. 2014, learned-norm
#: pooling), one scalar per layer.
LP_P = Constrained("p_raw", "p", "learn_p", minimum=1.0)

#: Learned mixing proportion ``alpha = sigmoid(alpha_logit)`` of mixed pooling, per layer or
#: per channel.
MIXED_ALPHA = Constrained("alpha_logit", "alpha", "learn_alpha", minimum=None)

#: Learned generalized-mean exponent ``p = softplus(p_raw) > 0`` (GeM pooling).
GEM_P = Constrained("p_raw", "p", "learn_p", minimum=0.0)

#: Learned log-sum-exp sharpness ``r = softplus(r_raw) > 0`` (LSE pooling).
LSE_R = Constrained("r_raw", "r", "learn_r", minimum=0.0)


def per_channel_shape(shape: Sequence[int], per_channel: bool, channels: int | None,
                      op: str) -> tuple[int, ...]:
    """``shape``, with the channel count appended when a parameter is learned per channel.

    ``channels`` is the input's ``C`` (``num_features`` of an NNX module); it must be a
    positive int when ``per_channel``.
    """
    if not per_channel:
        return tuple(shape)
    if not (isinstance(channels, int) and not isinstance(channels, bool) and channels >= 1):
        checks.fail(op, f"num_features must be the input's channel count (an int >= 1) when "
                         f"per_channel=True, got {channels!r}.")
    return (*shape, channels)


def average_leaves_init(noise: float = 0.1) -> Callable[..., jax.Array]:
    """Initialiser for ``[L, *window]`` leaf filters: ``(1 + noise·ε)/K``, ``ε ~ N(0, 1)``,
    ``K = prod(window)``.

    Every leaf starts near the average filter, so the tree starts near average pooling
    (whatever the gates); the noise makes the leaves differ, without which the gates get no
    gradient (``∂f/∂ω ∝ f_left − f_right``) and the leaves stay equal.
    """
    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        k = math.prod(shape[1:])
        return ((1.0 + noise * jax.random.normal(key, shape, dtype)) / k).astype(dtype)
    return init
