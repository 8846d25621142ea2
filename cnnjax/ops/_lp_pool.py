"""Lp pooling and the lectures' L2 norm pooling with a Gaussian window.

``y = (Σ_j w_j·|x_j|^p)^(1/p)`` over each window (Sermanet, Chintala & LeCun 2012,
"Convolutional neural networks applied to house numbers digit classification", with a
Gaussian window; Gulcehre et al. 2014, "Learned-norm pooling", with a learned ``p``).
``p = 1`` is a (weighted) sum of magnitudes, ``p = 2`` the L2 norm, ``p → ∞`` the max of
``|x|``.

Numerics: with ``m`` the largest ``|x_j|`` in the window,
``y = m·(Σ_j w_j·(|x_j|/m)^p)^(1/p)`` — every power is of a number in ``[0, 1]``, so
nothing overflows for large ``p`` (``1e3 ** 64`` is ``inf`` in float32).
Zeros go through the "double where" trick: the powers and the root are only evaluated on
positive arguments, so all-zero windows give 0 with a zero (never NaN) gradient, also with
respect to ``p``.
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
    window_offsets,
    window_slices,
)

__all__ = ["lp_pool", "l2_pool"]


def gaussian_window(window: tuple[int, ...], sigma: Any, op: str) -> np.ndarray:
    """Separable Gaussian over the window, centred at ``(k-1)/2``, std ``sigma``, sum 1.

    ``sigma``: ``None`` (``k/4`` per dim), a positive number or ``d`` positive numbers.
    """
    d = len(window)
    if sigma is None:
        sig = [k / 4 for k in window]
    elif np.ndim(sigma) == 0:
        sig = [float(sigma)] * d
    else:
        sig = [float(s) for s in np.asarray(sigma).reshape(-1)]
        if len(sig) != d:
            fail(op, f"sigma must be a number or {d} numbers (one per spatial dim), got {sigma!r}.")
    if not all(s > 0 and math.isfinite(s) for s in sig):
        fail(op, f"sigma must be positive and finite, got {sigma!r}.")
    w = np.ones(window)
    for i, (k, s) in enumerate(zip(window, sig)):
        g = np.exp(-0.5 * ((np.arange(k) - (k - 1) / 2) / s) ** 2)
        shape = [1] * d
        shape[i] = k
        w = w * g.reshape(shape)
    return w / w.sum()


def _concrete(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array if it is concrete, ``None`` if it is traced."""
    try:
        return np.asarray(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _lp_windows(x: jax.Array, p: Any, weights: Any, geom: PoolGeometry,
                p_static: float | None) -> jax.Array:
    a = jnp.abs(pad_spatial(x, geom.full_pads, 0))
    offsets = window_offsets(geom)
    if p_static is not None and math.isinf(p_static):
        # lim_{p→∞} (Σ w_j a_j^p)^(1/p) = max of a over the positions with w_j > 0.
        if weights is not None and not isinstance(weights, np.ndarray):
            weights = None  # traced weights: assume positive
        if weights is None or np.all(weights > 0):
            return max_over_windows(a, geom)
        parts = [s for k, s in zip(offsets, window_slices(a, geom)) if weights[k] > 0]
        return functools.reduce(jnp.maximum, parts)
    static_w = weights if isinstance(weights, np.ndarray) or weights is None else None
    traced = (p if p_static is None else None, None if static_w is not None or weights is None
              else weights)
    return over_windows(functools.partial(_lp_body, p_static=p_static, static_w=static_w,
                                          offsets=tuple(offsets)), geom, a, traced)


def _lp_body(parts, traced, *, p_static, static_w, offsets):
    """``m·(Σ_j w_j (a_j/m)^p)^(1/p)`` on the window slices ``a_j`` (module docstring).

    Speed on CPU: XLA's ``pow`` with a float exponent is several times slower than
    ``exp(p·log r)``, which is far slower than a few multiplies, so small integer ``p``
    multiplies (``integer_pow``), other ``p`` use ``exp``/``log``, and ``p = 2`` takes a
    ``sqrt``. A traced ``p = inf`` is replaced by ``sqrt(finfo.max)``: every ``r < 1``
    still underflows to 0 and ``r = 1`` stays 1, so the value is ``max|x|``.
    """
    p_traced, w_traced = traced
    dtype = parts[0].dtype
    one = jnp.ones((), dtype)
    if p_static is None:
        big = float(np.sqrt(float(jnp.finfo(dtype).max)))
        p = jnp.where(jnp.isinf(p_traced), jnp.asarray(big, dtype), p_traced)
    else:
        p = p_static  # a weak Python float keeps the dtype
    int_p = p_static is not None and float(p_static).is_integer() and 1 <= p_static <= 16
    m = lax.stop_gradient(functools.reduce(jnp.maximum, parts))
    m_safe = jnp.where(m > 0, m, one)
    total = None
    for k, s in zip(offsets, parts):
        r = s / m_safe  # in [0, 1]; a division (not a reciprocal) gives exactly 1 at the max
        if int_p:
            t = lax.integer_pow(r, int(p_static))
        else:
            pos = r > 0
            t = jnp.where(pos, jnp.exp(p * jnp.log(jnp.where(pos, r, one))), 0)
        if static_w is not None:
            t = t * float(static_w[k])
        elif w_traced is not None:
            t = t * w_traced[k]
        total = t if total is None else total + t
    if p_static == 1:
        return m * total
    s_pos = total > 0
    s_safe = jnp.where(s_pos, total, one)
    root = jnp.sqrt(s_safe) if p_static == 2 else jnp.exp(jnp.log(s_safe) / p)
    return jnp.where(s_pos, m * root, 0)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _lp_jit(x, p, weights, geom, p_static):
    return _lp_windows(x, p, weights, geom, p_static)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _lp_jit_static_w(x, p, weights_key, geom, p_static):
    weights = None if weights_key is None else np.asarray(weights_key[1]).reshape(weights_key[0])
    return _lp_windows(x, p, weights, geom, p_static)


def lp_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    p: Any,
    weights: Any = None,
    sigma: Any = None,
    ceil_mode: bool = False,
) -> jax.Array:
    """Lp pooling ``y = (Σ_j w_j·|x_j|^p)^(1/p)`` over each window.

    Sermanet et al. 2012 (Gaussian-weighted Lp pooling), Gulcehre et al. 2014 (learned p);
    the lectures' "L_p pooling". Zero padding (padded positions add nothing). Output size: as
    :func:`cnnjax.avg_pool`.

    With ``weights=None`` it equals ``torch.nn.functional.lp_pool{1,2,3}d`` on ``x >= 0``
    (PyTorch raises the signed input to ``p``; here it is ``|x|``). With ``ceil_mode``,
    PyTorch rescales partial border windows by ``window size / positions inside``; here a
    window is always the plain sum over its positions inside the input.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      p: positive exponent: a number, ``float('inf')`` (``max|x|``) or a traced scalar
        (learnable; differentiate with respect to it).
      weights: ``None`` (all ones), ``'gaussian'`` (std ``sigma`` per dim, default
        ``window/4``, normalised to sum 1) or a non-negative array of shape ``window_shape``
        (may be traced).
      sigma: Gaussian std, a number or ``d`` numbers; only with ``weights='gaussian'``.
      ceil_mode: PyTorch's ceiling output size.

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([[3., 4], [0, 0]])[None, :, :, None]
      >>> lp_pool(x, 2, p=2)[0, 0, 0, 0]
      Array(5., dtype=float32)
    """
    return _lp_pool("lp_pool", x, window_shape, strides, padding, p=p, weights=weights,
                    sigma=sigma, ceil_mode=ceil_mode)


def _lp_pool(op: str, x: Any, window_shape: Any, strides: Any, padding: Any, *, p: Any,
             weights: Any, sigma: Any, ceil_mode: bool) -> jax.Array:
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    geom = pool_geometry(op, x, window_shape, strides, padding, ceil_mode=ceil_mode)
    p_np = _concrete(p)
    p_static = None  # a concrete p is compiled in (and picks the cheapest power)
    if p_np is not None:
        if p_np.ndim != 0 or not np.issubdtype(p_np.dtype, np.number):
            fail(op, f"p must be a positive number or a traced scalar, got {p!r}.", TypeError)
        p_static = float(p_np)
        if not p_static > 0:
            fail(op, f"p must be > 0, got {p!r}.")
    elif jnp.ndim(p) != 0:
        fail(op, f"p must be a scalar, got shape {jnp.shape(p)}.")
    inf_p = p_static is not None and math.isinf(p_static)
    p_arr = jnp.ones((), x.dtype) if p_static is not None else jnp.asarray(p).astype(x.dtype)

    if sigma is not None and not (isinstance(weights, str) and weights == "gaussian"):
        fail(op, f"sigma is only used with weights='gaussian', got weights={weights!r}.")
    if weights is None:
        return _lp_jit_static_w(x, p_arr, None, geom, p_static)
    if isinstance(weights, str):
        checks.check_choice(weights, ("gaussian",), op, "weights")
        w = gaussian_window(geom.window, sigma, op)
        return _lp_jit_static_w(x, p_arr, (w.shape, tuple(w.ravel().tolist())), geom, p_static)
    if tuple(jnp.shape(weights)) != geom.window:
        fail(op, f"weights must be None, 'gaussian' or an array of shape window_shape "
                 f"{geom.window}, got shape {tuple(jnp.shape(weights))}.")
    w_np = _concrete(weights)
    if w_np is not None and (np.any(w_np < 0) or not np.all(np.isfinite(w_np))):
        fail(op, "weights must be non-negative and finite, got an array with negative or "
                 "non-finite entries.")
    if w_np is not None and inf_p:
        return _lp_jit_static_w(x, p_arr, (w_np.shape, tuple(w_np.astype(float).ravel().tolist())),
                                geom, p_static)
    return _lp_jit(x, p_arr, jnp.asarray(weights).astype(x.dtype), geom, p_static)


def l2_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    sigma: Any = None,
) -> jax.Array:
    """The lectures' "L2 norm pooling": ``y = sqrt(Σ_j w_j·x_j²)`` with a Gaussian window ``w``.

    Exactly ``lp_pool(x, ..., p=2, weights='gaussian', sigma=sigma)`` (Sermanet et al. 2012):
    ``w`` is a Gaussian of std ``sigma`` (default ``window/4`` per dim) centred on the
    window and normalised to sum 1, so a constant map ``c`` pools to ``|c|``.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      sigma: Gaussian std, a positive number or ``d`` numbers.

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> y = l2_pool(jnp.full((1, 4, 4, 1), -3.), 2)   # the window sums to 1
      >>> bool(jnp.allclose(y, 3.0))
      True
    """
    return _lp_pool("l2_pool", x, window_shape, strides, padding, p=2.0, weights="gaussian",
                    sigma=sigma, ceil_mode=False)
