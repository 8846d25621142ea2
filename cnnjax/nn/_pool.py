"""Pooling modules: each one is a partial application of one ``cnnjax`` pooling op.

Every pooling module has the same call signature ``__call__(x, *, train=False)`` so that a
model can call any of them at a pooling site (``train`` is ignored by deterministic pools).
Stochastic pools draw their randomness from the ``'pool'`` RNG collection when ``train=True``.
Learned pooling parameters are kept in their valid range by a smooth parameterisation:
``p = 1 + softplus(raw)`` (Gulcehre et al. 2014) and ``alpha = sigmoid(logit)`` (Lee et al.
2016). :func:`make_pool` builds any of them from a spec string for ablations.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.ops import _checks

Shape = int | Sequence[int]


def _window_kwargs(module) -> dict[str, Any]:
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
        return cnnjax.max_pool(x, **_window_kwargs(self), dilation=self.dilation,
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
        return cnnjax.avg_pool(x, **_window_kwargs(self), ceil_mode=self.ceil_mode,
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
        return cnnjax.sum_pool(x, **_window_kwargs(self), ceil_mode=self.ceil_mode)


def _inverse_softplus(y: float) -> float:
    # softplus(z) = log(1 + e^z) = y  <=>  z = log(e^y - 1); expm1 keeps it exact for small y.
    return y + math.log(-math.expm1(-y))


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
            if not p > 1:
                _checks.fail("LpPool", f"p must be > 1 when learn_p=True (p = 1 + softplus(raw)), "
                                       f"got {p!r}.")
            raw = self.param("p_raw", nn.initializers.constant(_inverse_softplus(p - 1.0)), (),
                             jnp.float32)
            p = (1.0 + jax.nn.softplus(raw)).astype(x.dtype)
        return cnnjax.lp_pool(x, **_window_kwargs(self), p=p, weights=self.weights,
                              sigma=self.sigma, ceil_mode=self.ceil_mode)


class L2Pool(nn.Module):
    """L2 pooling with a Gaussian window, equivalent to partial application of
    :func:`cnnjax.l2_pool` (the seeds' "L2 norm pooling").

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
        return cnnjax.l2_pool(x, **_window_kwargs(self), sigma=self.sigma)


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
            if not 0.0 < alpha < 1.0:
                _checks.fail("MixedPool", f"alpha must be in (0, 1) when learn_alpha=True "
                                          f"(alpha = sigmoid(logit)), got {alpha!r}.")
            shape = (x.shape[-1],) if self.per_channel else ()
            logit = self.param("alpha_logit",
                               nn.initializers.constant(math.log(alpha / (1.0 - alpha))), shape,
                               jnp.float32)
            alpha = jax.nn.sigmoid(logit).astype(x.dtype)
        return cnnjax.mixed_pool(x, **_window_kwargs(self), alpha=alpha)


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
        return cnnjax.stochastic_mixed_pool(x, **_window_kwargs(self), alpha=self.alpha,
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
        d = _checks.spatial_rank(x, "GatedPool")
        window = _checks.ntuple(self.window_shape, d, "GatedPool", "window_shape")
        shape = (*window, x.shape[-1]) if self.per_channel else window
        gate = self.param("gate", self.gate_init, shape, jnp.float32)
        return cnnjax.gated_pool(x, gate.astype(x.dtype), **_window_kwargs(self))


class StochasticPool(nn.Module):
    """Stochastic pooling (Zeiler & Fergus 2013), equivalent to partial application of
    :func:`cnnjax.stochastic_pool`; ``train=True`` samples with the ``'pool'`` RNG, inference
    uses probabilistic weighting.

    Example:
      >>> StochasticPool(window_shape=2).apply({}, jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        key = self.make_rng("pool") if train else None
        return cnnjax.stochastic_pool(x, **_window_kwargs(self), train=train, key=key)


class SpectralPool(nn.Module):
    """Spectral pooling (Rippel et al. 2015), equivalent to partial application of
    :func:`cnnjax.spectral_pool`.

    The output size is ``output_shape`` if given, else the size that a window op with
    ``window_shape``/``strides``/``padding`` would produce on the input (computed at call time
    with :func:`cnnjax.conv_output_shape`), so it drops in wherever a max pool was. With
    ``train=True`` and ``frequency_dropout`` it applies the paper's random low-pass cutoff,
    drawing from the ``'pool'`` RNG.

    Example:
      >>> SpectralPool(window_shape=2).apply({}, jnp.ones((1, 6, 6, 3))).shape
      (1, 3, 3, 3)
    """

    output_shape: Sequence[int] | None = None
    window_shape: Shape | None = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    min_keep: int | None = None
    frequency_dropout: bool = True

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        x = jnp.asarray(x)
        d = _checks.spatial_rank(x, "SpectralPool")
        out = self.output_shape
        if out is None:
            if self.window_shape is None:
                _checks.fail("SpectralPool", "give output_shape or window_shape, got neither.")
            strides = self.window_shape if self.strides is None else self.strides
            out = cnnjax.conv_output_shape(x.shape[1:-1], self.window_shape, stride=strides,
                                           padding=self.padding)
        out = _checks.ntuple(tuple(out) if not isinstance(out, int) else out, d,
                             "SpectralPool", "output_shape")
        use_dropout = train and self.frequency_dropout
        key = self.make_rng("pool") if use_dropout else None
        return cnnjax.spectral_pool(x, out, train=use_dropout, key=key, min_keep=self.min_keep)


class AdaptiveAvgPool(nn.Module):
    """Adaptive average pooling to ``output_shape`` (PyTorch bins), equivalent to partial
    application of :func:`cnnjax.adaptive_avg_pool`.

    Example:
      >>> AdaptiveAvgPool(output_shape=(2, 2)).apply({}, jnp.ones((1, 5, 5, 3))).shape
      (1, 2, 2, 3)
    """

    output_shape: Shape = 1

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        return cnnjax.adaptive_avg_pool(x, _spatial_out(x, self.output_shape, "AdaptiveAvgPool"))


class AdaptiveMaxPool(nn.Module):
    """Adaptive max pooling to ``output_shape`` (PyTorch bins), equivalent to partial
    application of :func:`cnnjax.adaptive_max_pool`.

    Example:
      >>> AdaptiveMaxPool(output_shape=(2, 2)).apply({}, jnp.ones((1, 5, 5, 3))).shape
      (1, 2, 2, 3)
    """

    output_shape: Shape = 1

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        return cnnjax.adaptive_max_pool(x, _spatial_out(x, self.output_shape, "AdaptiveMaxPool"))


def _spatial_out(x, output_shape, op: str) -> tuple[int, ...]:
    d = _checks.spatial_rank(jnp.asarray(x), op)
    return _checks.ntuple(output_shape, d, op, "output_shape")


class GlobalAvgPool(nn.Module):
    """Mean over all spatial positions ``[N, *spatial, C] -> [N, C]``, equivalent to
    :func:`cnnjax.global_avg_pool`.

    Example:
      >>> GlobalAvgPool().apply({}, jnp.ones((2, 4, 4, 3))).shape
      (2, 3)
    """

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        return cnnjax.global_avg_pool(x)


class GlobalMaxPool(nn.Module):
    """Max over all spatial positions ``[N, *spatial, C] -> [N, C]``, equivalent to
    :func:`cnnjax.global_max_pool`.

    Example:
      >>> GlobalMaxPool().apply({}, jnp.ones((2, 4, 4, 3))).shape
      (2, 3)
    """

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        return cnnjax.global_max_pool(x)


# --- make_pool: the spec strings of the pooling ablation ------------------------------------

#: The canonical spec strings, one per pooling method (the ablation study's rows).
POOL_SPECS: tuple[str, ...] = (
    "max", "avg", "sum", "lp:p=3", "lp:learn", "l2", "mixed:alpha=0.5", "mixed:learn",
    "stochastic_mixed", "gated", "stochastic", "spectral",
)

_SPEC_HELP = (
    "valid specs are " + ", ".join(repr(s) for s in POOL_SPECS)
    + " (options: 'lp:p=<float>', 'mixed:alpha=<float>', 'mixed:learn,per_channel', "
      "'gated:per_channel', 'stochastic_mixed:alpha=<float>')"
)

# name -> (module class, {option: (field, parser)}); a bare option (no '=') sets a flag.
_FLAG = object()
_SPECS: dict[str, tuple[type[nn.Module], dict[str, tuple[str, Any]]]] = {
    "max": (MaxPool, {}),
    "avg": (AvgPool, {}),
    "sum": (SumPool, {}),
    "lp": (LpPool, {"p": ("p", float), "learn": ("learn_p", _FLAG)}),
    "l2": (L2Pool, {}),
    "mixed": (MixedPool, {"alpha": ("alpha", float), "learn": ("learn_alpha", _FLAG),
                          "per_channel": ("per_channel", _FLAG)}),
    "stochastic_mixed": (StochasticMixedPool, {"alpha": ("alpha", float)}),
    "gated": (GatedPool, {"per_channel": ("per_channel", _FLAG)}),
    "stochastic": (StochasticPool, {}),
    "spectral": (SpectralPool, {}),
}


def _parse_spec(spec: str) -> tuple[type[nn.Module], dict[str, Any]]:
    if not isinstance(spec, str):
        _checks.fail("make_pool", f"spec must be a string, got {spec!r}; {_SPEC_HELP}.", TypeError)
    name, _, options = spec.strip().lower().partition(":")
    if name not in _SPECS:
        _checks.fail("make_pool", f"unknown pooling spec {spec!r}; {_SPEC_HELP}.")
    cls, allowed = _SPECS[name]
    kwargs: dict[str, Any] = {}
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, eq, value = item.partition("=")
        if key not in allowed or (allowed[key][1] is _FLAG) == bool(eq):
            _checks.fail("make_pool", f"unknown option {item!r} in pooling spec {spec!r}; "
                                      f"{_SPEC_HELP}.")
        field, parse = allowed[key]
        if parse is _FLAG:
            kwargs[field] = True
        else:
            try:
                kwargs[field] = parse(value)
            except ValueError:
                _checks.fail("make_pool", f"option {key!r} in pooling spec {spec!r} needs a "
                                          f"number, got {value!r}; {_SPEC_HELP}.")
    if name == "lp" and "p" not in kwargs and not kwargs.get("learn_p"):
        _checks.fail("make_pool", f"pooling spec {spec!r} needs 'p=<float>' or 'learn'; "
                                  f"{_SPEC_HELP}.")
    if kwargs.get("per_channel") and name == "mixed" and not kwargs.get("learn_alpha"):
        _checks.fail("make_pool", f"'per_channel' in {spec!r} needs 'learn'; {_SPEC_HELP}.")
    return cls, kwargs


def make_pool(spec: str, window_shape: Shape = 2, strides: Shape | None = None,
              padding: Any = "VALID", **kwargs: Any) -> nn.Module:
    """Builds a pooling module from a spec string.

    Specs (``POOL_SPECS`` lists the canonical ones): ``'max'``, ``'avg'``, ``'sum'``,
    ``'lp:p=3'`` (any float p), ``'lp:learn'`` (learned p, starting at 2 unless ``p=`` is also
    given), ``'l2'``, ``'mixed:alpha=0.5'``, ``'mixed:learn'`` (learned per-layer alpha;
    ``'mixed:learn,per_channel'`` for one per channel), ``'stochastic_mixed'``
    (``':alpha=…'``), ``'gated'`` (``'gated:per_channel'``), ``'stochastic'``, ``'spectral'``
    (pools to the size the window/stride would give). Every module is called as
    ``module(x, train=...)``.

    Args:
      spec: the spec string (case-insensitive).
      window_shape: pooling window, an int or one per spatial dim.
      strides: window strides (``None``: ``window_shape``).
      padding: as the pooling ops.
      **kwargs: extra module fields (e.g. ``name=``), override the spec's options.

    Returns:
      An unbound ``flax.linen`` pooling module.

    Raises:
      ValueError: for an unknown spec or option; the message lists the valid specs.

    Example:
      >>> pool = make_pool('lp:p=3', window_shape=3, strides=2)
      >>> type(pool).__name__, pool.p
      ('LpPool', 3.0)
    """
    cls, options = _parse_spec(spec)
    return cls(window_shape=window_shape, strides=strides, padding=padding, **{**options, **kwargs})
