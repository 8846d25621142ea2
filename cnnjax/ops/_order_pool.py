"""Order-statistic pooling: the minimum and the median of each window.

* ``min_pool``: ``y = min_j x_j``, padding counted as +∞; computed as ``-max_pool(-x)``
  (negation is exact), so it shares max pooling's slices, output size, ``ceil_mode`` rule
  and gradient: the cotangent goes to the *first* minimum of the window in row-major order.
* ``median_pool``: ``y = median_j x_j``, the lower of the two middle values for an even
  count (``torch.median``'s rule), over windows whose padded positions take their values
  from ``padding_mode``. This is the median filter of image processing (Tukey's running
  medians, J. W. Tukey, "Exploratory Data Analysis", 1977; in 2-D, T. S. Huang, G. J. Yang
  & G. Y. Tang, "A fast two-dimensional median filtering algorithm", IEEE Trans. Acoustics,
  Speech, and Signal Processing 27(1), 1979) sampled with a stride; as a pooling it
  ignores isolated outliers that a max or a mean follows.

The median is a pruned sorting network over the window slices: Batcher's odd-even merge sort
(K. E. Batcher, "Sorting networks and their applications", AFIPS 1968) for the next power
of two ``P >= K`` (the ``P − K`` extra inputs would be +∞ and never move, so every
comparator touching them is dropped), keeping only the comparators whose outputs reach the
middle position and computing only the ``min``/``max`` that are read later (5 comparators
for 2×2, 24 for 3×3). It is elementwise ``minimum``/``maximum`` work that XLA fuses: on CPU
the forward pass is ~100× faster than ``lax.sort`` over a stacked window axis (2×2 to 5×5
windows, ``[128, 24, 24, 64]``); windows of more than ``_MAX_NETWORK_SIZE`` elements use
``lax.sort``. ``minimum``/``maximum`` propagate NaN, so a window holding a NaN has a NaN
median (as ``torch.median``); the sort fallback does the same explicitly.

Speed (forward+backward on CPU, ``experiments/pool2_timing.py``): 2×2 min and median
pooling cost 0.9-1.7× ``max_pool`` (two runs). Padded windows whose padding copies the input
(``'reflect'``, ``'replicate'``, ``'circular'``) are ~2.5× slower than with ``'zeros'``
(3×3 / stride 2 / padding 1); the padding and its transpose are cheap alone, so the loss
is in how XLA fuses them with the window slices (a padding by static gathers or by
concatenation was not clearly faster).
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from cnnjax.ops import checks
from cnnjax.ops.checks import fail
from cnnjax.ops._pool_windows import (
    PoolGeometry,
    max_over_windows,
    pad_spatial,
    pool_geometry,
    slices_transpose,
    window_slices,
)

__all__ = ["min_pool", "median_pool"]

PADDING_MODES = ("reflect", "zeros", "replicate", "circular")
_JNP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}

# Above this many window elements the network (O(K log² K) comparators, unrolled in the
# graph) is replaced by one lax.sort.
_MAX_NETWORK_SIZE = 64


def min_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    ceil_mode: bool = False,
) -> jax.Array:
    """Min pooling: ``y[n, o, c] = min_k xpad[n, o·stride + k, c]``, padding counted as +∞.

    Exactly ``-max_pool(-x, ...)`` (PyTorch has no min pool; ``-max_pool2d(-x)`` is its
    idiom). Deterministic: the same at training and inference time. The cotangent of each
    output goes to the first minimum of its window in row-major order.

    Output size per spatial dim: ``floor((n + lo + hi − k)/stride) + 1`` (with ``ceil_mode``
    the ceiling, as :func:`cnnjax.max_pool`).

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      ceil_mode: PyTorch's ceiling output size.

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([[-1., 4, 1, 2], [0, 1, 3, -2], [1, 5, -2, 6], [3, -1, -2, -2]])
      >>> min_pool(x[None, :, :, None], 2)[0, :, :, 0]
      Array([[-1., -2.],
             [-1., -2.]], dtype=float32)
    """
    op = "min_pool"
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    geom = pool_geometry(op, x, window_shape, strides, padding, ceil_mode=ceil_mode)
    return _min_pool(x, geom)


@functools.partial(jax.jit, static_argnums=(1,))
def _min_pool(x: jax.Array, geom: PoolGeometry) -> jax.Array:
    return -max_over_windows(pad_spatial(-x, geom.full_pads, -jnp.inf), geom)


@functools.lru_cache(maxsize=None)
def median_network(size: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """Comparators ``(i, j, keep_min, keep_max)`` that put the lower median of ``size``
    values at position ``(size − 1) // 2``.

    A comparator replaces ``v[i]`` by ``min(v[i], v[j])`` (if ``keep_min``) and ``v[j]`` by
    ``max(v[i], v[j])`` (if ``keep_max``); an output that is never read again is not
    computed.
    """
    p = 1
    while p < size:
        p *= 2
    pairs = []
    # Batcher's odd-even merge sort for p inputs (Knuth, TAOCP vol. 3, 5.3.4).
    block = 1
    while block < p:
        k = block
        while k >= 1:
            for j in range(k % block, p - k, 2 * k):
                for i in range(min(k, p - j - k)):
                    if (i + j) // (2 * block) == (i + j + k) // (2 * block):
                        pairs.append((i + j, i + j + k))
            k //= 2
        block *= 2
    pairs = [(i, j) for i, j in pairs if j < size]  # the +∞ padding never moves
    live = {(size - 1) // 2}
    kept = []
    for i, j in reversed(pairs):
        if i in live or j in live:
            kept.append((i, j, i in live, j in live))
            live |= {i, j}
    return tuple(reversed(kept))


def lower_median(parts: list[jax.Array]) -> jax.Array:
    """Elementwise lower median of the arrays in ``parts`` (NaN if any of them is NaN)."""
    size = len(parts)
    if size > _MAX_NETWORK_SIZE:
        stacked = jnp.stack(parts)
        y = jnp.sort(stacked, axis=0)[(size - 1) // 2]
        return jnp.where(jnp.any(jnp.isnan(stacked), axis=0), jnp.nan, y)
    v = list(parts)
    for i, j, keep_min, keep_max in median_network(size):
        a, b = v[i], v[j]
        if keep_min:
            v[i] = jnp.minimum(a, b)
        if keep_max:
            v[j] = jnp.maximum(a, b)
    return v[(size - 1) // 2]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def median_over_windows(xpad: jax.Array, geom: PoolGeometry) -> jax.Array:
    """Windowed lower median of an already padded input; the gradient goes to one element.

    Ties: the whole cotangent goes to the *first* window element (row-major) equal to the
    median — the rule :func:`cnnjax.max_pool` uses for the maximum. A window holding a NaN
    has a NaN median, and its cotangent goes to the window's first NaN.
    """
    return lower_median(window_slices(xpad, geom))


def _median_fwd(xpad, geom):
    y = median_over_windows(xpad, geom)
    return y, (xpad, y)


def _median_bwd(geom, res, g):
    xpad, y = res
    slices = window_slices(xpad, geom)
    # One argmax (first True) over the stacked window instead of max_pool's running
    # "taken" chain: with the chain (or with per-slice comparisons), XLA copies the whole
    # network into every slice's cotangent (20-30 s to compile a 7×7 window on CPU,
    # against 3-5 s). A NaN median (the window holds a NaN) selects the first NaN.
    stacked = jnp.stack(slices)
    first = jnp.argmax((stacked == y[None]) | jnp.isnan(stacked), axis=0)
    zero = jnp.zeros((), g.dtype)
    parts = [jnp.where(first == j, g, zero) for j in range(len(slices))]
    return (slices_transpose(parts, xpad.shape, xpad.dtype, geom),)


median_over_windows.defvjp(_median_fwd, _median_bwd)


def median_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
    *,
    padding_mode: str = "reflect",
) -> jax.Array:
    """Median pooling: the median of each window (a strided median filter).

    ``y[n, o, c] = median_k xpad[n, o·stride + k, c]`` where, for a window of ``K`` values
    sorted ascending ``v_0 <= ... <= v_{K−1}``, the median is ``v_{⌊(K−1)/2⌋}`` — the lower
    of the two middle values when ``K`` is even, as ``torch.median``. ``xpad`` is ``x``
    padded by ``padding`` with values from ``padding_mode``, so every window holds ``K``
    values. Deterministic: the same at training and inference time.

    Gradient: the cotangent of each output goes to the window element whose value was
    selected (on ties, the first such element in row-major window order); a window holding
    a NaN outputs NaN, and its gradient goes to the first NaN.

    Output size per spatial dim: ``floor((n + lo + hi − k)/stride) + 1``.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      padding_mode: where padded values come from: ``'reflect'`` (mirror without repeating
        the edge, as PyTorch/NumPy ``reflect``; padding must be smaller than the input),
        ``'zeros'``, ``'replicate'`` (repeat the edge) or ``'circular'`` (wrap around;
        padding at most the input size).

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([[-1., 4, 1, 2], [0, 1, 3, -2], [1, 5, -2, 6], [3, -1, -2, -2]])
      >>> median_pool(x[None, :, :, None], 2)[0, :, :, 0]   # lower middle of 4 values
      Array([[ 0.,  1.],
             [ 1., -2.]], dtype=float32)
    """
    op = "median_pool"
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    checks.check_choice(padding_mode, PADDING_MODES, op, "padding_mode")
    geom = pool_geometry(op, x, window_shape, strides, padding)
    for i, (n, (lo, hi)) in enumerate(zip(geom.spatial, geom.pads)):
        if padding_mode == "reflect" and max(lo, hi) >= n:
            fail(op, f"padding must be smaller than the input size for padding_mode='reflect', "
                     f"got padding {(lo, hi)} for size {n} in spatial dim {i}.")
        if padding_mode == "circular" and max(lo, hi) > n:
            fail(op, f"padding must be at most the input size for padding_mode='circular', "
                     f"got padding {(lo, hi)} for size {n} in spatial dim {i}.")
    return _median_pool(x, geom, padding_mode)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _median_pool(x: jax.Array, geom: PoolGeometry, padding_mode: str) -> jax.Array:
    if padding_mode == "zeros" or all(lo == hi == 0 for lo, hi in geom.full_pads):
        xpad = pad_spatial(x, geom.full_pads, 0)
    else:
        widths = [(0, 0), *geom.full_pads, (0, 0)]
        xpad = jnp.pad(x, widths, mode=_JNP_PAD_MODE[padding_mode])
    return median_over_windows(xpad, geom)
