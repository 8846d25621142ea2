"""Anti-aliased downsampling: blur pooling and max-blur pooling.

Richard Zhang, "Making convolutional networks shift-invariant again", ICML 2019
(reference code: antialiased-cnns ``BlurPool`` with ``pad_off=0``). Subsampling aliases; a
low-pass filter before it makes the network's output vary much less under small shifts of
the input. The filter is binomial: the 1-D taps of size ``k`` are row ``k − 1`` of Pascal's
triangle over ``2^(k−1)`` (``[1, 2, 1]/4``, ``[1, 3, 3, 1]/8``), the N-d filter their outer
product, applied to every channel alone.

Implementation: the filter is separable and the padding modes act per axis, so the blur is
one strided 1-D pass per spatial dim (the innermost first). A pass reshapes the padded axis
into ``[M, stride]`` phases, so each tap is a contiguous slice of one phase. Its backward
pass is hand-written (a ``jax.custom_vjp``): the taps' cotangents are summed per phase and
interleaved by one stack + reshape, and the padding is folded back by a concatenation of
slices. Left to autodiff, the strided slices and the ``reflect`` padding transpose into
full-size zero-padded arrays that are added one by one, 2-4× slower on CPU. Reverse mode
only (``jax.grad``, ``jax.vjp``), like the other slice-based pools.
"""
from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from cnnjax.ops import checks
from cnnjax.ops.checks import fail
from cnnjax.ops._pool import max_pool_impl
from cnnjax.ops._pool_windows import pool_geometry

__all__ = ["blur_pool", "max_blur_pool"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class AxisBlur(NamedTuple):
    """Static plan of the blur along one spatial axis (hashable: a jit static argument).

    Attributes:
      taps: the 1-D filter.
      stride: subsampling step.
      size: input length ``n``.
      lo: padding before.
      hi: padding after.
      out: number of outputs ``m`` (output ``o`` reads padded positions ``o·stride + t``).
    """

    taps: tuple[float, ...]
    stride: int
    size: int
    lo: int
    hi: int
    out: int


def binomial_taps(k: int) -> tuple[float, ...]:
    """Row ``k − 1`` of Pascal's triangle divided by ``2^(k−1)`` (sums to 1, exact in binary)."""
    return tuple(math.comb(k - 1, j) / 2 ** (k - 1) for j in range(k))


def _source(i: int, n: int, mode: str) -> int | None:
    """The input index read at offset ``i`` from the input's start (``None``: a zero)."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "reflect":  # the edge itself is not repeated; beyond, reflect again (NumPy)
        if n == 1:
            return 0
        j = i % (2 * (n - 1))
        return j if j < n else 2 * (n - 1) - j
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    return i % n  # circular


_JNP_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad(x: jax.Array, axis: int, lo: int, hi: int, mode: str) -> jax.Array:
    if mode == "zeros":
        config = [(0, 0, 0)] * x.ndim
        config[axis] = (lo, hi, 0)
        return lax.pad(x, jnp.zeros((), x.dtype), config)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (lo, hi)
    return jnp.pad(x, widths, mode=_JNP_MODE[mode])


def _resize(x: jax.Array, axis: int, length: int) -> jax.Array:
    """Zero-pads or crops ``axis`` at its end to ``length`` (``lax.pad`` crops when negative)."""
    config = [(0, 0, 0)] * x.ndim
    config[axis] = (0, length - x.shape[axis], 0)
    return lax.pad(x, jnp.zeros((), x.dtype), config)


def _phases(plan: AxisBlur) -> int:
    """``M``: phase rows needed so that tap ``t`` of output ``o`` is row ``o + t // stride``."""
    return plan.out + (len(plan.taps) - 1) // plan.stride


def _filter(xp: jax.Array, plan: AxisBlur, axis: int) -> jax.Array:
    """``y[o] = Σ_t taps[t]·xp[o·stride + t]`` along ``axis`` of the padded input."""
    s, m, big_m = plan.stride, plan.out, _phases(plan)
    xp = _resize(xp, axis, big_m * s)
    xr = xp.reshape(xp.shape[:axis] + (big_m, s) + xp.shape[axis + 1:])
    y = None
    for t, w in enumerate(plan.taps):
        q, r = divmod(t, s)
        term = lax.index_in_dim(lax.slice_in_dim(xr, q, q + m, axis=axis), r, axis + 1,
                                keepdims=False)
        term = term if w == 1.0 else term * w  # a Python float keeps the dtype
        y = term if y is None else y + term
    return y


def _filter_transpose(g: jax.Array, plan: AxisBlur, axis: int) -> jax.Array:
    """Adjoint of :func:`_filter`: the cotangent of the padded input (length ``n + lo + hi``).

    Padded position ``q·stride + r`` receives ``Σ_{t ≡ r} taps[t]·g[q − t // stride]``: per
    phase ``r`` a sum of shifted copies of ``g``, then the phases are interleaved.
    """
    s, m, big_m = plan.stride, plan.out, _phases(plan)
    zero = jnp.zeros((), g.dtype)
    phases = []
    for r in range(s):
        acc = None
        for t in range(r, len(plan.taps), s):
            q = t // s
            config = [(0, 0, 0)] * g.ndim
            config[axis] = (q, big_m - m - q, 0)
            w = plan.taps[t]
            term = lax.pad(g if w == 1.0 else g * w, zero, config)
            acc = term if acc is None else acc + term
        if acc is None:  # a phase no tap reads (filter shorter than the stride)
            acc = jnp.zeros(g.shape[:axis] + (big_m,) + g.shape[axis + 1:], g.dtype)
        phases.append(acc)
    full = jnp.stack(phases, axis=axis + 1).reshape(g.shape[:axis] + (big_m * s,)
                                                    + g.shape[axis + 1:])
    return _resize(full, axis, plan.size + plan.lo + plan.hi)


def _fold_plan(plan: AxisBlur, mode: str) -> list[tuple[Any, ...]]:
    """Pieces of the padding's adjoint, in input order.

    ``('run', start, length)``: input rows each read by one padded row only, the padded rows
    ``start … start + length − 1``; ``('sum', (i, j, …))``: one input row read by several
    padded rows (a reflected, replicated or wrapped edge).
    """
    n, lo = plan.size, plan.lo
    readers: list[list[int]] = [[] for _ in range(n)]
    for i in range(n + lo + plan.hi):
        j = _source(i - lo, n, mode)
        if j is not None:
            readers[j].append(i)
    pieces: list[tuple[Any, ...]] = []
    for j, rows in enumerate(readers):
        if rows != [j + lo]:
            pieces.append(("sum", tuple(rows)))
        elif pieces and pieces[-1][0] == "run" and sum(pieces[-1][1:]) == j + lo:
            pieces[-1] = ("run", pieces[-1][1], pieces[-1][2] + 1)
        else:
            pieces.append(("run", j + lo, 1))
    return pieces


def _fold(g: jax.Array, plan: AxisBlur, mode: str, axis: int) -> jax.Array:
    """Adjoint of the padding: each input row sums the cotangents of the rows that read it."""
    parts = []
    for kind, *args in _fold_plan(plan, mode):
        if kind == "run":
            start, length = args
            parts.append(lax.slice_in_dim(g, start, start + length, axis=axis))
        else:
            rows = [lax.slice_in_dim(g, i, i + 1, axis=axis) for i in args[0]]
            parts.append(functools.reduce(jnp.add, rows))
    return parts[0] if len(parts) == 1 else lax.concatenate(parts, axis)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _blur_axis(x: jax.Array, plan: AxisBlur, mode: str, axis: int) -> jax.Array:
    return _filter(_pad(x, axis, plan.lo, plan.hi, mode), plan, axis)


def _blur_axis_fwd(x, plan, mode, axis):
    return _blur_axis(x, plan, mode, axis), None


def _blur_axis_bwd(plan, mode, axis, _, g):
    return (_fold(_filter_transpose(g, plan, axis), plan, mode, axis),)


_blur_axis.defvjp(_blur_axis_fwd, _blur_axis_bwd)


@functools.partial(jax.jit, static_argnums=(1, 2))
def blur_impl(x: jax.Array, plans: tuple[AxisBlur, ...], mode: str) -> jax.Array:
    """The separable blur of ``x`` ``[N, *spatial, C]`` over validated per-axis plans."""
    for axis in range(len(plans), 0, -1):
        plan = plans[axis - 1]
        if len(plan.taps) == 1 and plan.stride == 1 and plan.out == plan.size:
            continue  # the identity
        x = _blur_axis(x, plan, mode, axis)
    return x


def blur_plans(op: str, spatial: tuple[int, ...], window_shape: Any, strides: Any,
               padding_mode: str, output_shape: tuple[int, ...] | None = None,
               window_name: str = "window_shape") -> tuple[AxisBlur, ...]:
    """Validates the blur's arguments and returns one :class:`AxisBlur` per spatial dim.

    ``output_shape=None`` gives the natural output ``⌊(n − 1)/s⌋ + 1``. A smaller one drops
    trailing outputs; a larger one pads more after the input (with ``padding_mode``) so that
    the extra outputs exist.
    """
    d = len(spatial)
    k = checks.ntuple(window_shape, d, op, window_name)
    s = k if strides is None else checks.ntuple(strides, d, op, "strides")
    if not isinstance(padding_mode, str):
        fail(op, f"padding_mode must be one of {', '.join(map(repr, PADDING_MODES))}, got "
                 f"{padding_mode!r}.", TypeError)
    checks.check_choice(padding_mode, PADDING_MODES, op, "padding_mode")
    plans = []
    for i, (n, ki, si) in enumerate(zip(spatial, k, s)):
        lo, hi = (ki - 1) // 2, ki // 2
        natural = (n - 1) // si + 1
        out = natural if output_shape is None else output_shape[i]
        if out > natural:
            hi = (out - 1) * si + ki - n - lo
        plans.append(AxisBlur(binomial_taps(ki), si, n, lo, hi, out))
    return tuple(plans)


def _float_input(op: str, x: Any) -> jax.Array:
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    checks.spatial_rank(x, op)
    return x


def blur_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any = 3,
    strides: Any = 2,
    *,
    padding_mode: str = "reflect",
) -> jax.Array:
    """Anti-aliased downsampling with a binomial low-pass filter (Zhang 2019, ``BlurPool``).

    Per spatial dim the input is padded ``⌊(k−1)/2⌋`` before and ``⌈(k−1)/2⌉`` after with
    ``padding_mode``, then every channel is filtered alone with the binomial filter
    ``b = b_1 ⊗ … ⊗ b_d``, ``b_i[t] = C(k_i − 1, t) / 2^(k_i − 1)``, and subsampled::

        y[n, o, c] = Σ_t b[t] · xpad[n, o·strides + t, c]

    ``window_shape=1`` is plain subsampling ``x[:, ::s]``. The layer is deterministic and
    has no parameters: training and inference compute the same thing.

    Output size per spatial dim: ``⌊(n − 1)/s⌋ + 1`` (``ceil(n/s)``, as ``'SAME'`` pooling).

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: filter size ``k``, an int or ``d`` ints (``3`` → ``[1, 2, 1]/4``).
      strides: subsampling step, an int or ``d`` ints (``None``: ``window_shape``).
      padding_mode: ``'zeros'``, ``'reflect'`` (about the edge sample, which is not
        repeated), ``'replicate'`` or ``'circular'`` — PyTorch's meanings. Where the padding
        is as large as the input (PyTorch raises), ``'reflect'`` and ``'circular'`` repeat
        as NumPy's ``np.pad`` does; a 1-pixel map extends as a constant, so its blur is
        itself (deep layers of small inputs, e.g. the last pooling of VGG on 32×32).

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.arange(6.).reshape(1, 6, 1)   # reflect-padded: 1 0 1 2 3 4 5 4
      >>> blur_pool(x)[0, :, 0]
      Array([0.5, 2. , 4. ], dtype=float32)
    """
    op = "blur_pool"
    x = _float_input(op, x)
    plans = blur_plans(op, tuple(x.shape[1:-1]), window_shape, strides, padding_mode)
    return blur_impl(x, plans, padding_mode)


def blur_pool_to_shape(
    x: jax.typing.ArrayLike,
    output_shape: Any,
    window_shape: Any = 3,
    strides: Any = 2,
    *,
    padding_mode: str = "reflect",
    op: str = "blur_pool",
) -> jax.Array:
    """:func:`blur_pool` with a prescribed output spatial shape (a pooling site's size).

    Outputs past the natural ``⌊(n − 1)/s⌋ + 1`` are computed the same way, their taps
    reading further into the ``padding_mode`` padding after the input; outputs short of it
    are dropped from the end. Used by ``cnnjax.nn.BlurPool`` to match max pooling's output
    size where it replaces it.
    """
    x = _float_input(op, x)
    d = x.ndim - 2
    out = checks.ntuple(output_shape, d, op, "output_shape")
    plans = blur_plans(op, tuple(x.shape[1:-1]), window_shape, strides, padding_mode, out)
    return blur_impl(x, plans, padding_mode)


def max_blur_pool(
    x: jax.typing.ArrayLike,
    window_shape: Any = 2,
    strides: Any = 2,
    *,
    filter_size: Any = 3,
    padding_mode: str = "reflect",
    padding: Any = "VALID",
) -> jax.Array:
    """Max-blur pooling (Zhang 2019, ``MaxBlurPool``): a dense max, then anti-aliased subsampling.

    ``y = blur_pool(max_pool(x, window_shape, strides=1, padding=padding), filter_size,
    strides, padding_mode=padding_mode)``. Max pooling with stride ``s`` is a dense max
    followed by naive subsampling; the blur in between removes the aliasing. Deterministic:
    training and inference compute the same thing.

    Output size per spatial dim: ``⌊(n + lo + hi − k)/s⌋ + 1`` — exactly
    ``max_pool(x, window_shape, strides, padding)``'s, so it replaces max pooling anywhere.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      window_shape: max window ``k``, an int or ``d`` ints.
      strides: subsampling step of the blur, an int or ``d`` ints (``None``: ``window_shape``,
        as in max pooling).
      filter_size: binomial filter size, an int or ``d`` ints.
      padding_mode: the blur's padding (see :func:`blur_pool`).
      padding: the dense max pool's padding (``-∞``), as :func:`cnnjax.max_pool`; every
        window must still overlap the input (``lo, hi < window_shape``).

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([0., 4, 1, 3, 2, 0]).reshape(1, 6, 1)   # dense max: 4 4 3 3 2
      >>> max_blur_pool(x)[0, :, 0]   # reflect-padded: 4 4 4 3 3 2 3
      Array([4.  , 3.25, 2.5 ], dtype=float32)
    """
    op = "max_blur_pool"
    x = _float_input(op, x)
    geom = pool_geometry(op, x, window_shape, 1, padding)
    strides = geom.window if strides is None else strides
    for i, (k, (lo, hi)) in enumerate(zip(geom.window, geom.pads)):
        if max(lo, hi) >= k:
            fail(op, f"padding must be smaller than window_shape so that every max window "
                     f"overlaps the input, got padding ({lo}, {hi}) and window {k} in spatial "
                     f"dim {i}.")
    plans = blur_plans(op, geom.out, filter_size, strides, padding_mode,
                       window_name="filter_size")
    return _max_blur(x, geom, plans, padding_mode)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _max_blur(x, geom, plans, mode):
    return blur_impl(max_pool_impl(x, geom), plans, mode)
