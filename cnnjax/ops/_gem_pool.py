"""Generalized-mean (GeM) and log-sum-exp (LSE) pooling: learnable paths from mean to max.

* GeM (Radenović, Tolias & Chum 2018, "Fine-tuning CNN image retrieval with no human
  annotation", IEEE TPAMI): ``y = (mean_j max(x_j, eps)^p)^{1/p}``, the power mean of the
  clamped values; ``p = 1`` is their mean, ``p → ∞`` their max.
* LSE (Pinheiro & Collobert 2015, "From image-level to pixel-level labeling with
  convolutional networks", CVPR): ``y = (1/r)·log(mean_j e^{r·x_j})``; ``r → 0`` is the
  mean, ``r → ∞`` the max.

Means run over the window positions inside the input (padding is excluded, as in
``avg_pool(..., count_include_pad=False)``); a window with no input position outputs 0.
``p``/``r`` may be numbers, traced scalars (learned) or ``[C]`` vectors (one per channel).

Numerics: both factor out the window maximum, which neither value depends on, so it
needs no gradient. GeM: with ``M = max_j c_j``, ``y = M·(mean_j (c_j/M)^p)^{1/p}`` — every
power is of a number in ``[0, 1]``, so a large ``p`` cannot overflow. LSE: with
``m = max_j x_j``, ``y = m + log1p(mean_j expm1(r·(x_j − m)))/r`` — the exponents are
``<= 0``, and ``expm1``/``log1p`` keep the small-``r`` limit accurate where
``log(mean e^{r·x})/r`` would cancel catastrophically. A traced ``p``/``r`` of ``inf`` is
replaced by ``sqrt(finfo.max)``, which gives the max to working precision.

The windowed pools are built from the window slices of :mod:`cnnjax.ops._pool` and support
reverse-mode autodiff (``jax.grad``, ``jax.vjp``, also nested), not forward mode; the global
ones are plain reductions and support both.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cnnjax.ops import checks
from cnnjax.ops.checks import fail
from cnnjax.ops._pool_windows import (
    PoolGeometry,
    max_over_windows,
    over_windows,
    pad_spatial,
    pool_geometry,
)
from cnnjax.ops._soft_pool import inverse_counts, window_masks

__all__ = ["gem_pool", "global_gem_pool", "lse_pool", "global_lse_pool"]


def _positive(op: str, name: str, value: Any, channels: int, dtype: Any
              ) -> tuple[float | None, jax.Array]:
    """Checks a positive hyperparameter: a number, a traced scalar or ``[C]`` values.

    Returns ``(static, array)``: ``static`` is the value as a Python float when it is a
    concrete scalar (compiled in), else ``None``; ``array`` is it in ``dtype``, shaped
    ``[C]`` or ``()``.
    """
    if isinstance(value, (bool, np.bool_, str)):
        fail(op, f"{name} must be a positive number, a scalar array or {channels} values (one "
                 f"per channel), got {value!r}.", TypeError)
    try:
        concrete = np.asarray(value, np.float64)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        concrete = None
    except (TypeError, ValueError):
        fail(op, f"{name} must be a positive number, a scalar array or {channels} values (one "
                 f"per channel), got {value!r}.", TypeError)
    shape = tuple(jnp.shape(value)) if concrete is None else concrete.shape
    if shape not in ((), (channels,)):
        fail(op, f"{name} must be a scalar or have shape ({channels},) (one per channel), got "
                 f"shape {shape}.")
    if concrete is not None and not np.all(concrete > 0):
        shown = float(concrete) if concrete.ndim == 0 else concrete.tolist()
        fail(op, f"{name} must be > 0, got {shown!r}.")
    static = float(concrete) if concrete is not None and concrete.ndim == 0 else None
    return static, jnp.asarray(value).astype(dtype)


def _exponent(static: float | None, array: jax.Array, ndim: int) -> Any:
    """The hyperparameter for the window arithmetic: a Python float (weakly typed: keeps the
    input dtype) or the array broadcastable to ``[N, *out, C]``, ``inf`` made finite."""
    if static is not None:
        return static
    big = float(np.sqrt(float(jnp.finfo(array.dtype).max)))
    array = jnp.where(jnp.isinf(array), jnp.asarray(big, array.dtype), array)
    return array if array.ndim == 0 else array.reshape((1,) * (ndim - 1) + (-1,))


def _check_eps(op: str, eps: Any) -> None:
    try:
        value = float(eps)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return  # traced: used as given
    except (TypeError, ValueError):
        fail(op, f"eps must be a non-negative number, got {eps!r}.", TypeError)
    if not (value >= 0 and math.isfinite(value)):
        fail(op, f"eps must be a non-negative finite number, got {eps!r}.")


def _ratio_powers(c: jax.Array, m: jax.Array, p: Any, p_static: float | None,
                  positive: bool) -> jax.Array:
    """``(c/m)^p`` for ``0 <= c <= m`` (``m`` the window max, constant for autodiff).

    Small integer ``p`` multiplies (XLA's ``exp``/``log`` are slow on CPU). Otherwise, when
    every ``c >= eps > 0`` (``positive``), ``exp(p·(log c − log m))``: one ``log`` per
    element and no division, ~2.5× faster than the guarded form. Without that guarantee,
    zeros (``eps = 0``, or zero padding) go through a "double where", so they give 0 with a
    zero (not NaN) gradient, also with respect to ``p``.
    """
    int_p = p_static is not None and p_static.is_integer() and 1 <= p_static <= 16
    if positive:
        if int_p:
            return lax.integer_pow(c / m, int(p_static))
        return jnp.exp(p * (jnp.log(c) - jnp.log(m)))
    one = jnp.ones((), c.dtype)
    r = c / jnp.where(m > 0, m, one)
    if int_p:
        return lax.integer_pow(r, int(p_static))
    pos = r > 0
    return jnp.where(pos, jnp.exp(p * jnp.log(jnp.where(pos, r, one))), jnp.zeros((), c.dtype))


def _power_mean(m: jax.Array, mean: jax.Array, p: Any, p_static: float | None,
                guard: bool) -> jax.Array:
    """``m·mean^{1/p}``; with ``guard``, 0 where ``mean`` is 0 (all clamped values 0, or an
    empty window) with a zero gradient."""
    if p_static == 1:
        return m * mean
    if not guard:
        return m * (jnp.sqrt(mean) if p_static == 2 else jnp.exp(jnp.log(mean) / p))
    pos = mean > 0
    safe = jnp.where(pos, mean, jnp.ones((), mean.dtype))
    root = jnp.sqrt(safe) if p_static == 2 else jnp.exp(jnp.log(safe) / p)
    return jnp.where(pos, m * root, jnp.zeros((), mean.dtype))


def _gem_body(parts, p_arr, *, p_static, geom, positive):
    p = _exponent(p_static, p_arr, parts[0].ndim)
    inv, empty = inverse_counts(geom)
    m = lax.stop_gradient(functools.reduce(jnp.maximum, parts))  # padding <= every c
    terms = [_ratio_powers(c, m, p, p_static, positive) for c in parts]
    if positive:  # the padding holds eps (to keep log finite): take it out of the sum
        zero = jnp.zeros((), m.dtype)
        terms = [t if mk is None else jnp.where(mk, t, zero)
                 for t, mk in zip(terms, window_masks(geom))]
    total = functools.reduce(jnp.add, terms)
    mean = total * (inv if isinstance(inv, float) else jnp.asarray(inv, total.dtype))
    # The window max has term 1, so mean >= 1/|R| > 0 unless c can be 0 or R is empty.
    return _power_mean(m, mean, p, p_static, guard=not positive or empty is not None)


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _gem(x, p_arr, eps, geom, p_static, positive):
    c = jnp.maximum(x, jnp.asarray(eps, x.dtype))
    # Zero padding adds no power and exceeds no max; with eps > 0, eps does neither once
    # masked, and keeps log(c) finite.
    cpad = pad_spatial(c, geom.full_pads, jnp.asarray(eps, x.dtype) if positive else 0)
    if p_static is not None and math.isinf(p_static):
        return max_over_windows(cpad, geom)
    body = functools.partial(_gem_body, p_static=p_static, geom=geom, positive=positive)
    return over_windows(body, geom, cpad, p_arr)


def _positive_eps(eps: Any) -> bool:
    """True if ``eps`` is concrete and > 0: then every clamped value is positive."""
    try:
        return float(eps) > 0
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return False


def _lse_fwd(parts, r, geom):
    masks = window_masks(geom)
    inv, empty = inverse_counts(geom)
    dtype = parts[0].dtype
    zero = jnp.zeros((), dtype)
    inside = [s if mk is None else jnp.where(mk, s, -jnp.inf) for s, mk in zip(parts, masks)]
    m = functools.reduce(jnp.maximum, inside)
    if empty is not None:
        m = jnp.where(empty, zero, m)
    total = None
    for s, mk in zip(parts, masks):
        t = jnp.expm1(r * (s - m))  # in (-1, 0]: the zero-padded slices stay finite
        if mk is not None:
            t = jnp.where(mk, t, zero)
        total = t if total is None else total + t
    mean = total * (inv if isinstance(inv, float) else jnp.asarray(inv, dtype))
    excess = jnp.log1p(mean) / r  # y − m; mean >= 1/|R| − 1 > −1 (0 for an empty window)
    y = m + excess
    if empty is not None:
        y = jnp.where(empty, zero, y)
    return y, (parts, r, m, excess, 1 + mean)


def _lse_bwd(geom, res, g):
    # With w_j = e^{r·(x_j − m)} / Σ_{k∈R} e^{r·(x_k − m)} (the softmax of r·x over R):
    # ∂y/∂x_j = w_j and ∂y/∂r = (Σ_j w_j·(x_j − m) − (y − m)) / r. Written by hand so that
    # the weights are recomputed instead of kept alive per window slice (as autodiff would),
    # and centred on m so that ∂y/∂r does not cancel for large x.
    parts, r, m, excess, one_plus_mean = res
    inv, _ = inverse_counts(geom)
    scale = g * (inv if isinstance(inv, float) else jnp.asarray(inv, g.dtype)) / one_plus_mean
    d_parts = []
    for s, mk in zip(parts, window_masks(geom)):
        w = jnp.exp(r * (s - m)) * scale
        if mk is not None:
            w = jnp.where(mk, w, jnp.zeros((), g.dtype))
        d_parts.append(w)
    # Materialised once: left to fusion, XLA:CPU recomputes the exponentials inside the
    # reduction below, which runs single-threaded (~2× slower for a learned r).
    d_parts = lax.optimization_barrier(d_parts)
    moment = functools.reduce(jnp.add, [w * (s - m) for w, s in zip(d_parts, parts)])
    d_r = (moment - g * excess) / r
    # Sum over the axes r was broadcast along (all of them for a scalar r).
    axes = tuple(i for i in range(d_r.ndim) if r.ndim == 0 or r.shape[i] == 1)
    return d_parts, jnp.sum(d_r, axis=axes).reshape(r.shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _lse_windows(parts: list[jax.Array], r: jax.Array, geom: PoolGeometry) -> jax.Array:
    """``m + log1p(mean_j expm1(r·(x_j − m)))/r`` over the window slices (module docstring)."""
    return _lse_fwd(parts, r, geom)[0]


_lse_windows.defvjp(_lse_fwd, _lse_bwd)


def _lse_body(parts, r_arr, *, r_static, geom):
    r = _exponent(r_static, r_arr, parts[0].ndim)
    return _lse_windows(list(parts), jnp.asarray(r, parts[0].dtype), geom)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _lse(x, r_arr, geom, r_static):
    if r_static is not None and math.isinf(r_static):
        y = max_over_windows(pad_spatial(x, geom.full_pads, -jnp.inf), geom)
        _, empty = inverse_counts(geom)
        return y if empty is None else jnp.where(empty, jnp.zeros((), x.dtype), y)
    body = functools.partial(_lse_body, r_static=r_static, geom=geom)
    return over_windows(body, geom, pad_spatial(x, geom.full_pads, 0), r_arr)


def _float_input(op: str, x: Any) -> jax.Array:
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    checks.spatial_rank(x, op)
    return x


def gem_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    p: Any = 3.0,
    eps: Any = 1e-6,
) -> jax.Array:
    """Generalized-mean pooling (GeM, Radenović et al. 2018).

    ``y = (mean_{j∈R} max(x_j, eps)^p)^{1/p}`` over the positions ``R`` of the window inside
    the input (padding is excluded from the mean; a window with none outputs 0). ``p = 1``
    is the mean of the clamped values, ``p → ∞`` their max (``p=float('inf')`` gives it
    exactly), ``p`` between interpolates. Deterministic: training and inference compute the
    same thing; a learned ``p`` is used as it is.

    Output size per spatial dim: ``⌊(n + lo + hi − k)/s⌋ + 1``, as :func:`cnnjax.avg_pool`.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      p: exponent ``> 0``: a number, a traced scalar (learned; differentiable) or ``[C]``
        values, one per channel.
      eps: the clamp ``>= 0`` that keeps the powers of real numbers.

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([1., 2, 2, 3]).reshape(1, 4, 1)   # means of cubes: 9/2, 35/2
      >>> gem_pool(x, 2, p=3.0)[0, :, 0]
      Array([1.6509637, 2.5962472], dtype=float32)
    """
    op = "gem_pool"
    x = _float_input(op, x)
    geom = pool_geometry(op, x, window_shape, strides, padding)
    p_static, p_arr = _positive(op, "p", p, x.shape[-1], x.dtype)
    _check_eps(op, eps)
    return _gem(x, p_arr, eps, geom, p_static, _positive_eps(eps))


def lse_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    r: Any = 1.0,
) -> jax.Array:
    """Log-sum-exp pooling (Pinheiro & Collobert 2015).

    ``y = (1/r)·log((1/|R|)·Σ_{j∈R} e^{r·x_j})`` over the positions ``R`` of the window
    inside the input (padding excluded; a window with none outputs 0). ``r → 0`` gives the
    mean, ``r → ∞`` the max (``r=float('inf')`` gives it exactly), and the value always lies
    between the two. Finite values and gradients for ``r·x`` up to ``1e4`` and beyond.
    Deterministic: training and inference compute the same thing; a learned ``r`` is used
    as it is.

    Output size per spatial dim: ``⌊(n + lo + hi − k)/s⌋ + 1``, as :func:`cnnjax.avg_pool`.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      r: sharpness ``> 0``: a number, a traced scalar (learned; differentiable) or ``[C]``
        values, one per channel.

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([0., 0, 1, 1]).reshape(1, 4, 1)
      >>> lse_pool(x, 2, r=1.0)[0, :, 0]   # constant windows give their value
      Array([0., 1.], dtype=float32)
    """
    op = "lse_pool"
    x = _float_input(op, x)
    geom = pool_geometry(op, x, window_shape, strides, padding)
    r_static, r_arr = _positive(op, "r", r, x.shape[-1], x.dtype)
    return _lse(x, r_arr, geom, r_static)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _global_gem(x, p_arr, eps, p_static, positive):
    axes = tuple(range(1, x.ndim - 1))
    c = jnp.maximum(x, jnp.asarray(eps, x.dtype))
    if p_static is not None and math.isinf(p_static):
        return jnp.max(c, axis=axes)
    p = _exponent(p_static, p_arr, x.ndim)
    m = lax.stop_gradient(jnp.max(c, axis=axes, keepdims=True))
    mean = jnp.mean(_ratio_powers(c, m, p, p_static, positive), axis=axes, keepdims=True)
    y = _power_mean(m, mean, p, p_static, guard=not positive)
    return y.reshape(x.shape[0], x.shape[-1])


def global_gem_pool(x: jax.typing.ArrayLike, *, p: Any = 3.0, eps: Any = 1e-6) -> jax.Array:
    """GeM over all spatial positions (Radenović et al. 2018's image descriptor): ``[N, C]``.

    ``y[n, c] = (mean_i max(x[n, i, c], eps)^p)^{1/p}`` over every spatial position ``i``;
    :func:`gem_pool` with one window covering the whole map. Deterministic.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      p: exponent ``> 0``: a number, a traced scalar or ``[C]`` values.
      eps: the clamp ``>= 0``.

    Returns:
      ``[N, C]``, same dtype as ``x``.

    Example:
      >>> global_gem_pool(jnp.full((2, 4, 4, 3), 5.)).shape
      (2, 3)
    """
    op = "global_gem_pool"
    x = _float_input(op, x)
    p_static, p_arr = _positive(op, "p", p, x.shape[-1], x.dtype)
    _check_eps(op, eps)
    return _global_gem(x, p_arr, eps, p_static, _positive_eps(eps))


@functools.partial(jax.jit, static_argnums=(2,))
def _global_lse(x, r_arr, r_static):
    axes = tuple(range(1, x.ndim - 1))
    if r_static is not None and math.isinf(r_static):
        return jnp.max(x, axis=axes)
    r = _exponent(r_static, r_arr, x.ndim)
    m = lax.stop_gradient(jnp.max(x, axis=axes, keepdims=True))
    mean = jnp.mean(jnp.expm1(r * (x - m)), axis=axes, keepdims=True)
    return (m + jnp.log1p(mean) / r).reshape(x.shape[0], x.shape[-1])


def global_lse_pool(x: jax.typing.ArrayLike, *, r: Any = 1.0) -> jax.Array:
    """LSE pooling over all spatial positions (Pinheiro & Collobert 2015): ``[N, C]``.

    ``y[n, c] = (1/r)·log(mean_i e^{r·x[n, i, c]})`` over every spatial position ``i`` — the
    paper's aggregation of pixel-level scores into image-level ones; :func:`lse_pool` with
    one window covering the whole map. Deterministic.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      r: sharpness ``> 0``: a number, a traced scalar or ``[C]`` values.

    Returns:
      ``[N, C]``, same dtype as ``x``.

    Example:
      >>> global_lse_pool(jnp.zeros((2, 4, 4, 3)), r=5.0)
      Array([[0., 0., 0.],
             [0., 0., 0.]], dtype=float32)
    """
    op = "global_lse_pool"
    x = _float_input(op, x)
    r_static, r_arr = _positive(op, "r", r, x.shape[-1], x.dtype)
    return _global_lse(x, r_arr, r_static)
