"""Mixed, stochastic mixed and gated pooling: blends of max and average pooling.

* ``mixed_pool``: ``y = α·max + (1−α)·avg`` with a fixed or learned ``α`` (Lee, Gallagher &
  Tu 2016, "Generalizing pooling functions in convolutional neural networks: mixed, gated,
  and tree", the "mixed max-average pooling"; the lectures' "Mixed pooling").
* ``stochastic_mixed_pool``: Yu, Wang, Chen & Wei 2014, "Mixed pooling for convolutional
  neural networks": in training each (example, channel) uses max pooling with probability
  ``α`` and average pooling otherwise; at inference the expectation ``mixed_pool``.
* ``gated_pool``: Lee et al. 2016 "gated max-average pooling": the mixing weight is
  ``sigmoid(<gate, window>)``, learned and responsive to each region.

Max parts pad with −∞ and average parts use :func:`cnnjax.avg_pool`'s defaults
(``count_include_pad=True``), so for ``'VALID'`` padding all three are exact blends of the
plain pools.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnnjax.ops import checks
from cnnjax.ops.checks import fail
from cnnjax.ops._pool import avg_pool_impl, max_pool_impl
from cnnjax.ops._pool_windows import (
    PoolGeometry,
    over_windows,
    pad_spatial,
    pool_geometry,
    window_offsets,
)

__all__ = ["mixed_pool", "stochastic_mixed_pool", "gated_pool"]


def _alpha(op: str, alpha: Any, x: jax.Array) -> jax.Array:
    """Checks ``alpha`` (scalar or ``[C]``; concrete values in [0, 1]) and shapes it to
    broadcast against ``[N, *spatial, C]`` in ``x.dtype``."""
    c = x.shape[-1]
    shape = tuple(jnp.shape(alpha))
    if shape not in ((), (c,)):
        fail(op, f"alpha must be a scalar or have shape ({c},) (one per channel), got shape "
                 f"{shape}.")
    try:
        concrete = np.asarray(alpha, np.float64)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        concrete = None
    except (TypeError, ValueError):
        fail(op, f"alpha must be a number or an array, got {alpha!r}.", TypeError)
    if concrete is not None and not np.all((concrete >= 0) & (concrete <= 1)):
        fail(op, f"alpha must lie in [0, 1], got {concrete.tolist()!r}.")
    a = jnp.asarray(alpha).astype(x.dtype)
    return a if a.ndim == 0 else a.reshape((1,) * (x.ndim - 1) + (c,))


def _geometry(op: str, x: Any, window_shape: Any, strides: Any, padding: Any
              ) -> tuple[jax.Array, PoolGeometry]:
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    return x, pool_geometry(op, x, window_shape, strides, padding)


@functools.partial(jax.jit, static_argnums=(2,))
def _mixed(x: jax.Array, alpha: jax.Array, geom: PoolGeometry) -> jax.Array:
    return alpha * max_pool_impl(x, geom) + (1 - alpha) * avg_pool_impl(x, geom, True)


def mixed_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    alpha: Any,
) -> jax.Array:
    """Mixed max-average pooling ``y = α·max_pool(x) + (1−α)·avg_pool(x)`` (Lee et al. 2016).

    The lectures' "Mixed pooling" formula. ``alpha`` may be traced (learned, per layer or per
    channel); ``∂y/∂α = max − avg``. Output size: as :func:`cnnjax.avg_pool`.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      alpha: scalar or ``[C]`` in ``[0, 1]`` (checked when concrete).

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([[-1., 4], [0, 1]])[None, :, :, None]
      >>> mixed_pool(x, 2, alpha=0.5)[0, 0, 0, 0]   # (4 + 1) / 2
      Array(2.5, dtype=float32)
    """
    op = "mixed_pool"
    x, geom = _geometry(op, x, window_shape, strides, padding)
    return _mixed(x, _alpha(op, alpha, x), geom)


@functools.partial(jax.jit, static_argnums=(3,))
def _stochastic_mixed(x, alpha, key, geom):
    n, c = x.shape[0], x.shape[-1]
    p = jnp.broadcast_to(alpha.reshape(1, -1), (n, c))
    lam = jax.random.bernoulli(key, p, (n, c)).reshape((n,) + (1,) * (x.ndim - 2) + (c,))
    return jnp.where(lam, max_pool_impl(x, geom), avg_pool_impl(x, geom, True))


def stochastic_mixed_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    alpha: Any = 0.5,
    train: bool,
    key: jax.Array | None = None,
) -> jax.Array:
    """Stochastic mixed pooling (Yu et al. 2014).

    Training: draws ``λ ∈ {0, 1}`` per (example, channel) with ``P(λ = 1) = α`` and returns
    ``λ·max_pool(x) + (1−λ)·avg_pool(x)``. Inference (``train=False``): the expectation
    ``mixed_pool(x, alpha=α)``. Output size: as :func:`cnnjax.avg_pool`.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      alpha: probability of max pooling, scalar or ``[C]`` in ``[0, 1]``.
      train: sample λ (``True``) or return the expectation (``False``).
      key: PRNG key, required when ``train=True``.

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.ones((2, 4, 4, 3))
      >>> stochastic_mixed_pool(x, 2, train=True, key=jax.random.key(0)).shape
      (2, 2, 2, 3)
    """
    op = "stochastic_mixed_pool"
    x, geom = _geometry(op, x, window_shape, strides, padding)
    a = _alpha(op, alpha, x)
    if not train:
        return _mixed(x, a, geom)
    if key is None:
        fail(op, "key must be given when train=True, got key=None.")
    checks.check_key(key, op)
    return _stochastic_mixed(x, a, key, geom)


@functools.partial(jax.jit, static_argnums=(2,))
def _gated(x: jax.Array, gate: jax.Array, geom: PoolGeometry) -> jax.Array:
    zpad = pad_spatial(x, geom.full_pads, 0)
    offsets = tuple(window_offsets(geom))

    def gate_logit(parts, gate):
        logit = None
        for k, s in zip(offsets, parts):
            g = gate[k]
            term = s * (g if g.ndim == 0 else g.reshape((1,) * (x.ndim - 1) + (-1,)))
            logit = term if logit is None else logit + term
        return logit

    a = jax.nn.sigmoid(over_windows(gate_logit, geom, zpad, gate))
    return a * max_pool_impl(x, geom) + (1 - a) * avg_pool_impl(x, geom, True)


def gated_pool(
    x: jax.typing.ArrayLike,
    gate: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
) -> jax.Array:
    """Gated max-average pooling (Lee et al. 2016).

    Per region ``R`` and channel ``c``: ``a = sigmoid(Σ_{j∈R} gate_j·x_j)`` (zero padding),
    ``y = a·max_R(x) + (1−a)·avg_R(x)``. The gate is learned; gradients flow to ``x`` and
    ``gate``. Output size: as :func:`cnnjax.avg_pool`.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      gate: ``window_shape`` (shared by all channels) or ``(*window_shape, C)``.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([[-1., 4], [0, 1]])[None, :, :, None]
      >>> gated_pool(x, jnp.zeros((2, 2)), 2)[0, 0, 0, 0]   # gate 0: a = 1/2
      Array(2.5, dtype=float32)
    """
    op = "gated_pool"
    x, geom = _geometry(op, x, window_shape, strides, padding)
    shape = tuple(jnp.shape(gate))
    if shape not in (geom.window, geom.window + (x.shape[-1],)):
        fail(op, f"gate must have shape window_shape {geom.window} or (*window_shape, C) "
                 f"{geom.window + (x.shape[-1],)}, got {shape}.")
    return _gated(x, jnp.asarray(gate).astype(x.dtype), geom)
