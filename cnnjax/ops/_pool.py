"""Max, average and sum pooling, max pooling with indices, max unpooling.

Also the window machinery the other pooling families build on (``_mixed_pool``,
``_lp_pool``, ``_stochastic_pool``): argument canonicalisation to a static
:class:`PoolGeometry`, padding with the reduction's identity, and the *window slices*
``xpad[:, k·r :: s]`` — one strided slice of shape ``[N, *out_spatial, C]`` per window
position. A reduction over these slices is a pooling; unlike a custom ``reduce_window``
it is reverse-differentiable for every reducer and for dilated windows.

Output size per spatial dim (PyTorch ``pooling_output_shape``, also the lectures' formula)::

    out = floor((n + lo + hi - dilation·(k - 1) - 1) / stride) + 1

With ``ceil_mode`` the floor becomes a ceiling, except that the last window must start
inside the input or the low padding. Windows that then stick out past the high padding
see the reduction's identity there (−∞ for max, 0 for sums), and average pooling never
counts those positions in its divisor.

Speed on CPU (``experiments/pool_timing.py``): XLA's reverse-mode ``reduce_window`` max
(``select_and_scatter``) is ~10× slower on CPU than a ``maximum`` over the window slices,
and for non-overlapping tiling windows the backward pass is a stack + reshape of the
per-slice cotangents (no scatter and no overlapping adds), so every max-type pool here
uses the slices.

Autodiff: the max-type pools and the slice-based pools of the other families
(:func:`over_windows`) carry a ``jax.custom_vjp`` for that fast backward pass, so they
support reverse mode (``jax.grad``, ``jax.vjp``, also nested) but not forward mode
(``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``). Average and sum pooling support both.
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
    pad_spatial,
    pool_geometry,
    window_offsets,
    window_slices,
)

__all__ = [
    "max_pool",
    "max_pool_with_indices",
    "max_unpool",
    "avg_pool",
    "sum_pool",
]


def _as_float_array(x: Any, op: str) -> jax.Array:
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    return x


def max_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> jax.Array:
    """Max pooling (seeds: "Pooling ops: max(·)"; PyTorch ``MaxPool{1,2,3}d``).

    ``y[n, o, c] = max_k xpad[n, o·stride + k·dilation, c]`` with padding counted as −∞.

    Output size per spatial dim: ``floor((n + lo + hi - dilation·(k-1) - 1)/stride) + 1``
    (ceiling with PyTorch's rule if ``ceil_mode``).

    Differentiable everywhere, also with ``dilation > 1`` (XLA's windowed max has no VJP
    there; this is a max over strided slices with a hand-written VJP). The cotangent of each
    output goes to the first maximum of its window in row-major order, as in PyTorch.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape`` (non-overlapping).
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      dilation: int or ``d`` ints, spacing between window elements.
      ceil_mode: use the ceiling in the output-size formula (PyTorch).

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([[-1., 4, 1, 2], [0, 1, 3, -2], [1, 5, -2, 6], [3, -1, -2, -2]])
      >>> max_pool(x[None, :, :, None], 2)[0, :, :, 0]
      Array([[4., 3.],
             [5., 6.]], dtype=float32)
    """
    op = "max_pool"
    x = _as_float_array(x, op)
    geom = pool_geometry(op, x, window_shape, strides, padding, dilation=dilation,
                         ceil_mode=ceil_mode)
    return max_pool_impl(x, geom)


# The implementations are jitted with the geometry static: called eagerly, one compiled
# computation replaces dozens of op-by-op dispatches (and compiles) of the window slices.
@functools.partial(jax.jit, static_argnums=(1,))
def max_pool_impl(x: jax.Array, geom: PoolGeometry) -> jax.Array:
    """Max pooling of ``x`` over a validated :class:`PoolGeometry`."""
    return max_over_windows(pad_spatial(x, geom.full_pads, -jnp.inf), geom)


def _flat_index(geom: PoolGeometry, k: tuple[int, ...], d: int) -> jax.Array:
    """``[1, *out, 1]`` int32 flat row-major index into the unpadded plane of window position k."""
    flat = None
    for i in range(d):
        shape = [1] * (d + 2)
        shape[i + 1] = geom.out[i]
        coord = (lax.broadcasted_iota(jnp.int32, shape, i + 1) * geom.strides[i]
                 + (k[i] * geom.dilation[i] - geom.pads[i][0]))
        term = coord * math.prod(geom.spatial[i + 1:])
        flat = term if flat is None else flat + term
    return flat


def _first_valid_index(geom: PoolGeometry, d: int) -> jax.Array:
    """Flat index of each window's first in-input position (PyTorch's initial argmax)."""
    flat = None
    for i in range(d):
        start = np.arange(geom.out[i]) * geom.strides[i] - geom.pads[i][0]
        r = geom.dilation[i]
        start = np.where(start < 0, start + (-(start) + r - 1) // r * r, start)
        shape = [1] * (d + 2)
        shape[i + 1] = geom.out[i]
        term = jnp.asarray((start * math.prod(geom.spatial[i + 1:])).reshape(shape), jnp.int32)
        flat = term if flat is None else flat + term
    return flat


def max_pool_with_indices(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Max pooling that also returns where each maximum came from (PyTorch ``return_indices``).

    Same arguments, output and gradient as :func:`max_pool`. ``indices[n, o, c]`` is the flat
    row-major index ``Σ_i pos_i · prod(spatial[i+1:])`` of the maximum in the *unpadded*
    spatial plane of ``x[n, ..., c]`` — the first maximum in row-major window order, a NaN
    if the window has one (PyTorch's rule). Feed it to :func:`max_unpool`.

    Returns:
      ``(y, indices)``: ``y`` ``[N, *out_spatial, C]`` in ``x.dtype``; ``indices`` int32 of the
      same shape.

    Example:
      >>> x = jnp.array([[1., 5], [7, 2]])[None, :, :, None]
      >>> y, idx = max_pool_with_indices(x, 2)
      >>> int(idx[0, 0, 0, 0])
      2
    """
    op = "max_pool_with_indices"
    x = _as_float_array(x, op)
    geom = pool_geometry(op, x, window_shape, strides, padding, dilation=dilation,
                         ceil_mode=ceil_mode)
    return max_pool_with_indices_impl(x, geom)


@functools.partial(jax.jit, static_argnums=(1,))
def max_pool_with_indices_impl(x: jax.Array, geom: PoolGeometry) -> tuple[jax.Array, jax.Array]:
    d = len(geom.window)
    xpad = pad_spatial(x, geom.full_pads, -jnp.inf)
    y = max_over_windows(xpad, geom)
    # PyTorch's scan: start at the first in-input element with value −∞ and replace on a
    # strictly larger value or a NaN.
    best = jnp.full(y.shape, -jnp.inf, x.dtype)
    idx = jnp.broadcast_to(_first_valid_index(geom, d), y.shape)
    for k, s in zip(window_offsets(geom), window_slices(lax.stop_gradient(xpad), geom)):
        upd = (s > best) | jnp.isnan(s)
        best = jnp.where(upd, s, best)
        idx = jnp.where(upd, _flat_index(geom, k, d), idx)
    return y, idx.astype(jnp.int32)


def max_unpool(
    y: jax.typing.ArrayLike,
    indices: jax.typing.ArrayLike,
    output_spatial_shape: Any,
) -> jax.Array:
    """Partial inverse of :func:`max_pool_with_indices` (PyTorch ``MaxUnpool{1,2,3}d``).

    ``out[n, unravel(indices[n, o, c]), c] = y[n, o, c]``, zeros elsewhere. If several
    outputs share an index, one of them is kept.

    Every index must lie in ``[0, prod(output_spatial_shape))``. Concrete indices are
    checked (``ValueError``); traced ones (under ``jit``/``vmap``) cannot be, and there an
    out-of-range index, negative ones included, is dropped (its value is not written
    anywhere) — a negative index never wraps around to the end of the plane. The output
    plane must be at least as large as ``y``'s in every dim (it is the pooled input's).

    Args:
      y: pooled values ``[N, *out_spatial, C]``.
      indices: integer array of the same shape, flat row-major indices into
        ``output_spatial_shape``.
      output_spatial_shape: ``d`` ints, the spatial shape to restore (usually the pooled
        input's), each ``>=`` the matching dim of ``y``.

    Returns:
      ``[N, *output_spatial_shape, C]`` in ``y.dtype``.

    Raises:
      ValueError: ``output_spatial_shape`` smaller than ``y``'s spatial shape in some dim,
        or concrete indices outside ``[0, prod(output_spatial_shape))``.

    Example:
      >>> x = jnp.arange(16.).reshape(1, 4, 4, 1)
      >>> y, idx = max_pool_with_indices(x, 2)
      >>> max_unpool(y, idx, (4, 4))[0, :, :, 0]
      Array([[ 0.,  0.,  0.,  0.],
             [ 0.,  5.,  0.,  7.],
             [ 0.,  0.,  0.,  0.],
             [ 0., 13.,  0., 15.]], dtype=float32)
    """
    op = "max_unpool"
    y = jnp.asarray(y)
    indices = jnp.asarray(indices)
    d = checks.spatial_rank(y, op, name="y")
    if indices.shape != y.shape:
        fail(op, f"indices must have the shape of y {tuple(y.shape)}, got {tuple(indices.shape)}.")
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        fail(op, f"indices must have an integer dtype, got {indices.dtype}.", TypeError)
    out_spatial = checks.ntuple(output_spatial_shape, d, op, "output_spatial_shape")
    if any(o < i for o, i in zip(out_spatial, y.shape[1:-1])):
        fail(op, f"output_spatial_shape must be >= y's spatial shape {tuple(y.shape[1:-1])} in "
                 f"every dim (it is the shape of the pooled input), got {out_spatial}.")
    size = math.prod(out_spatial)
    if not isinstance(indices, jax.core.Tracer) and indices.size:
        lo, hi = int(jnp.min(indices)), int(jnp.max(indices))
        if lo < 0 or hi >= size:
            bad = lo if lo < 0 else hi
            fail(op, f"indices must be in [0, {size}) (flat positions in the "
                     f"{'x'.join(map(str, out_spatial))} output plane), got {bad}.")
    n, c = y.shape[0], y.shape[-1]
    m = math.prod(y.shape[1:-1])
    flat_y = y.reshape(n, m, c)
    flat_i = indices.reshape(n, m, c)
    # Scatter normalises negative indices (Python-style) before mode='drop' applies, so -1
    # would land on the last position: every out-of-range index, negative ones included,
    # is sent one past the end instead (computed in the indices' own dtype, then narrowed).
    info = jnp.iinfo(flat_i.dtype)
    valid = flat_i >= 0
    if size <= info.max:
        valid = valid & (flat_i < jnp.asarray(size, flat_i.dtype))
    pos_dtype = jnp.int32 if size < 2**31 - 1 else jnp.int64
    pos = jnp.where(valid, flat_i.astype(pos_dtype), jnp.asarray(size, pos_dtype))
    rows = jnp.arange(n)[:, None, None]
    cols = jnp.arange(c)[None, None, :]
    out = jnp.zeros((n, size, c), y.dtype)
    out = out.at[rows, pos, cols].set(flat_y, mode="drop")
    return out.reshape(n, *out_spatial, c)


def window_sum(x: jax.Array, geom: PoolGeometry) -> jax.Array:
    """Zero-padded windowed sum over ``geom`` (dilation 1)."""
    xpad = pad_spatial(x, geom.full_pads, 0)
    if geom.tiles:
        # A reshape + sum reduction is ~2× faster on CPU than reduce_window forward+backward.
        d = len(geom.window)
        n, c = x.shape[0], x.shape[-1]
        covered = tuple(o * k for o, k in zip(geom.out, geom.window))
        xc = lax.slice(xpad, (0,) * (d + 2), (n, *covered, c))
        shape = [n] + [a for o, k in zip(geom.out, geom.window) for a in (o, k)] + [c]
        return jnp.sum(xc.reshape(shape), axis=tuple(2 + 2 * i for i in range(d)))
    # A concrete NumPy identity lets JAX recognise a (differentiable) windowed sum.
    return lax.reduce_window(xpad, np.zeros((), x.dtype), lax.add, (1, *geom.window, 1),
                             (1, *geom.strides, 1), "VALID")


def avg_divisor(geom: PoolGeometry, count_include_pad: bool) -> np.ndarray:
    """``[*out]`` number of counted positions per window (PyTorch ``avg_pool`` divisor).

    ``count_include_pad=True``: positions inside the input or the user's padding (never the
    extra ``ceil_mode`` overhang); otherwise only positions inside the input. Windows are
    boxes, so the count is a product of per-dim counts.
    """
    total = np.ones((), np.int64)
    for n, k, s, (lo, hi), o in zip(geom.spatial, geom.window, geom.strides, geom.pads,
                                    geom.out):
        start = np.arange(o) * s - lo
        end = start + k
        lo_lim, hi_lim = (-lo, n + hi) if count_include_pad else (0, n)
        cnt = np.minimum(end, hi_lim) - np.maximum(start, lo_lim)
        total = np.multiply.outer(total, np.maximum(cnt, 0))
    return total


def avg_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> jax.Array:
    """Average pooling with PyTorch's divisor rules (seeds: "Pooling ops: mean(·)").

    ``y[n, o, c] = (1/D_o) Σ_k xpad[n, o·stride + k, c]`` with zero padding, where ``D_o`` is
    the number of window positions inside the input plus the padding
    (``count_include_pad=True``) or inside the input only (``False``). Positions of a
    ``ceil_mode`` window that stick out past the high padding are never counted (PyTorch).
    A window with nothing to count outputs 0.

    Output size: as :func:`max_pool` with ``dilation = 1``.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      ceil_mode: PyTorch's ceiling output size.
      count_include_pad: count padded positions in the divisor.

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([[-1., 4, 1, 2], [0, 1, 3, -2], [1, 5, -2, 6], [3, -1, -2, -2]])
      >>> avg_pool(x[None, :, :, None], 2)[0, :, :, 0]
      Array([[1., 1.],
             [2., 0.]], dtype=float32)
    """
    op = "avg_pool"
    x = _as_float_array(x, op)
    geom = pool_geometry(op, x, window_shape, strides, padding, ceil_mode=ceil_mode)
    return avg_pool_impl(x, geom, bool(count_include_pad))


@functools.partial(jax.jit, static_argnums=(1, 2))
def avg_pool_impl(x: jax.Array, geom: PoolGeometry, count_include_pad: bool) -> jax.Array:
    """Average pooling of ``x`` over a validated :class:`PoolGeometry` (PyTorch divisors)."""
    total = window_sum(x, geom)
    div = avg_divisor(geom, count_include_pad)
    if np.all(div == div.flat[0]) and div.flat[0] > 0:
        # Uniform divisor: a weak Python scalar keeps x's dtype.
        return total / float(div.flat[0])
    inv = np.where(div > 0, 1.0 / np.maximum(div, 1), 0.0)
    return total * jnp.asarray(inv.reshape(1, *geom.out, 1), x.dtype)


def sum_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    ceil_mode: bool = False,
) -> jax.Array:
    """Sum pooling (seeds: "(Max, Avg, Sum) Pooling"), zero padding.

    ``y[n, o, c] = Σ_k xpad[n, o·stride + k, c]``. Output size: as :func:`avg_pool`.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      ceil_mode: PyTorch's ceiling output size.

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> sum_pool(jnp.ones((1, 4, 4, 1)), 2)[0, :, :, 0]
      Array([[4., 4.],
             [4., 4.]], dtype=float32)
    """
    op = "sum_pool"
    x = _as_float_array(x, op)
    geom = pool_geometry(op, x, window_shape, strides, padding, ceil_mode=ceil_mode)
    return sum_pool_impl(x, geom)


sum_pool_impl = jax.jit(window_sum, static_argnums=(1,))
