"""im2col / col2im and the im2col convolution (patches + one matmul per group).

Seeds (lecture 3, "Convolution as a Matrix Multiplication"): unrolling every receptive field
of the input into a row turns the convolution into one matrix product
``cols [N*P, K*C_in] @ w [K*C_in, C_out]`` (``P = prod(out_spatial)``, ``K = prod(k)``).

Patches are extracted by hand with one strided ``lax.slice`` per kernel offset, concatenated
on the feature axis (kernel-position-major, channel-minor); XLA fuses the slices and the
concatenation into one copy loop. ``col2im``, the adjoint, is a sum of one strided
``lax.pad`` per kernel offset (interior padding puts the stride gaps back, negative edge
padding crops the convolution's zero padding), again one fused loop and no scatter.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from cnnjax.ops import _checks
from cnnjax.ops._conv import ConvGeometry, conv_xla


def _offsets(kernel_size: Sequence[int]):
    return itertools.product(*(range(k) for k in kernel_size))


def _out_shape(spatial, geom: ConvGeometry) -> tuple[int, ...]:
    return tuple(_checks.output_size(n, k, s, lo, hi, r) for n, k, s, (lo, hi), r in
                 zip(spatial, geom.kernel_size, geom.stride, geom.padding, geom.dilation))


def _patches(x: jax.Array, geom: ConvGeometry) -> jax.Array:
    """``[N, *S, C] -> [N, *out, K*C]`` (kernel-position-major, channel-minor)."""
    n, c = x.shape[0], x.shape[-1]
    out = _out_shape(x.shape[1:-1], geom)
    if any(lo or hi for lo, hi in geom.padding):
        x = lax.pad(x, jnp.zeros((), x.dtype),
                    ((0, 0, 0), *((lo, hi, 0) for lo, hi in geom.padding), (0, 0, 0)))
    pieces = []
    for off in _offsets(geom.kernel_size):
        start = tuple(o * r for o, r in zip(off, geom.dilation))
        limit = tuple(b + (m - 1) * s + 1 for b, m, s in zip(start, out, geom.stride))
        pieces.append(lax.slice(x, (0, *start, 0), (n, *limit, c), (1, *geom.stride, 1)))
    return pieces[0] if len(pieces) == 1 else lax.concatenate(pieces, x.ndim - 1)


def _unpatches(cols: jax.Array, spatial: Sequence[int], geom: ConvGeometry) -> jax.Array:
    """Adjoint of ``_patches``: ``[N, *out, K*C] -> [N, *S, C]``, overlaps summed."""
    out = cols.shape[1:-1]
    k_total = _checks.prod(geom.kernel_size)
    c = cols.shape[-1] // k_total
    zero = jnp.zeros((), cols.dtype)
    total = None
    for i, off in enumerate(_offsets(geom.kernel_size)):
        piece = lax.slice_in_dim(cols, i * c, (i + 1) * c, axis=cols.ndim - 1)
        config = []
        for o, r, s, m, n, (lo, _) in zip(off, geom.dilation, geom.stride, out, spatial,
                                           geom.padding):
            first = o * r - lo  # input coordinate of this tap's first output
            config.append((first, n - (first + (m - 1) * s + 1), s - 1))
        placed = lax.pad(piece, zero, ((0, 0, 0), *config, (0, 0, 0)))
        total = placed if total is None else total + placed
    return total


def _dot(a, b, contract, batch, precision):
    return lax.dot_general(a, b, (contract, batch), precision=precision)


def _matmul(cols: jax.Array, w: jax.Array, groups: int, precision) -> jax.Array:
    """``cols [M, K*C_in] x w [*k, C_in/G, C_out] -> [M, C_out]``: one (batched) matmul."""
    m = cols.shape[0]
    k_total = _checks.prod(w.shape[:-2])
    cig, c_out = w.shape[-2], w.shape[-1]
    if groups == 1:
        return _dot(cols, w.reshape(k_total * cig, c_out), ((1,), (0,)), ((), ()), precision)
    cog = c_out // groups
    lhs = cols.reshape(m, k_total, groups, cig)
    rhs = w.reshape(k_total, cig, groups, cog)
    # Batch over the group axis, contract (kernel position, channel): one dot for all groups.
    y = _dot(lhs, rhs, ((1, 3), (0, 1)), ((2,), (2,)), precision)  # [G, M, cog]
    return jnp.swapaxes(y, 0, 1).reshape(m, c_out)


def _matmul_grads(cols, g, w, groups: int, precision):
    """``(dcols, dw)`` of ``_matmul`` for the cotangent ``g [M, C_out]``: two more matmuls."""
    m, kc = cols.shape
    k_total = _checks.prod(w.shape[:-2])
    cig, c_out = w.shape[-2], w.shape[-1]
    if groups == 1:
        w2 = w.reshape(kc, c_out)
        dw = _dot(cols, g, ((0,), (0,)), ((), ()), precision)
        dcols = _dot(g, w2, ((1,), (1,)), ((), ()), precision)
        return dcols, dw.reshape(w.shape)
    cog = c_out // groups
    cols4 = cols.reshape(m, k_total, groups, cig)
    g3 = g.reshape(m, groups, cog)
    w4 = w.reshape(k_total, cig, groups, cog)
    dw = _dot(cols4, g3, ((0,), (0,)), ((2,), (1,)), precision)  # [G, K, cig, cog]
    dw = jnp.transpose(dw, (1, 2, 0, 3)).reshape(w.shape)
    dcols = _dot(g3, w4, ((2,), (3,)), ((1,), (2,)), precision)  # [G, M, K, cig]
    dcols = jnp.transpose(dcols, (1, 2, 0, 3)).reshape(m, kc)
    return dcols, dw


def _conv_forward(x, w, geom: ConvGeometry, precision):
    cols = _patches(x, geom)
    out = cols.shape[1:-1]
    y = _matmul(cols.reshape(-1, cols.shape[-1]), w, geom.groups, precision)
    return y.reshape(x.shape[0], *out, w.shape[-1])


def _conv_backward(x, w, g, geom: ConvGeometry, precision):
    """``(dx, dw)``: patches recomputed, ``dw = cols^T g``, ``dx = col2im(g w^T)``."""
    cols = _patches(x, geom)
    kc = cols.shape[-1]
    dcols, dw = _matmul_grads(cols.reshape(-1, kc), g.reshape(-1, g.shape[-1]), w,
                              geom.groups, precision)
    dx = _unpatches(dcols.reshape(cols.shape), x.shape[1:-1], geom)
    return dx, dw


# Patches of one batch chunk are kept around this size. Measured on the 2-core EPYC
# (experiments/conv_layer_timing.py): chunks of ~1-3 MB stay in L2/L3 and below glibc's
# 32 MB mmap threshold; one unchunked ``cols`` buffer of ~85 MB (N=128, 24x24x288) is
# allocated with mmap on every call and the page faults alone cost more than XLA's conv.
_CHUNK_BYTES = 2 << 20


def _chunk(x_shape, w_shape, geom: ConvGeometry, itemsize: int) -> int:
    out = _out_shape(x_shape[1:-1], geom)
    per_example = _checks.prod(out) * _checks.prod(geom.kernel_size) * x_shape[-1] * itemsize
    b = max(1, min(x_shape[0], _CHUNK_BYTES // max(per_example, 1)))
    devices = jax.local_device_count()
    if devices == 1:
        return _dividing_chunk(x_shape[0], b)
    return _shard_friendly_chunk(x_shape[0], b, devices)


def _dividing_chunk(n: int, b: int) -> int:
    """The largest chunk size in ``[2b/3, b]`` that divides ``n``, else ``b``.

    Without a tail chunk the scan's inputs are a free reshape instead of sliced copies of
    ``x`` and ``g``, and no ``concatenate`` copies the output: measured 5-10% of the im2col
    forward+backward at batch 128 on the 2-core VM (MnistNet conv2: chunks of 2 instead of
    3 + a tail of 2; ``cnnjax bench``).
    """
    for size in range(min(b, n), 0, -1):
        if 3 * size < 2 * b:
            break
        if n % size == 0:
            return size
    return b


def _shard_friendly_chunk(n: int, b: int, devices: int) -> int:
    """A chunk size near ``b`` that divides ``n`` into chunks of a multiple of ``devices``.

    ``_over_chunks`` interleaves the batch (chunk ``j`` holds examples ``j, j+k, j+2k, ...``),
    so when ``fit`` shards the batch over ``devices`` in contiguous blocks, every chunk keeps
    an equal share on each device and the scan needs no cross-device traffic. Without it a
    4-device LeNet5 step was 4-5x slower than one device. Falls back to ``b`` (and a tail
    chunk) when no such size lies within 4x of ``b``.
    """
    if b >= n or devices == 1:
        return b
    for size in range(b, min(n, 4 * b) + 1):
        if n % size == 0 and size % devices == 0:
            return size
    return b


def _over_chunks(fn, init, b: int, *arrays):
    """Applies ``fn`` to batch chunks of size ``b`` (a ``lax.scan``) plus a tail chunk.

    ``fn(carry, *chunks) -> (carry, out)`` starting from ``init`` (used to accumulate
    ``dw``); outputs come back in the original batch order. With several local devices the
    chunks are interleaved (chunk ``j`` = examples ``j, j+k, ...`` with ``k`` chunks), see
    ``_shard_friendly_chunk``; with one device they are contiguous.
    """
    n = arrays[0].shape[0]
    k = n // b
    main = k * b
    interleave = jax.local_device_count() > 1  # contiguous on one device: no transposes
    if interleave:
        stacked = [jnp.swapaxes(a[:main].reshape(b, k, *a.shape[1:]), 0, 1) for a in arrays]
    else:
        stacked = [a[:main].reshape(k, b, *a.shape[1:]) for a in arrays]
    carry, ys = lax.scan(lambda c, xs: fn(c, *xs), init, stacked)
    if interleave:
        ys = jnp.swapaxes(ys, 0, 1)
    ys = ys.reshape(main, *ys.shape[2:])
    if main < n:
        carry, y_t = fn(carry, *(a[main:] for a in arrays))
        ys = lax.concatenate([ys, y_t], 0)
    return carry, ys


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_im2col(x, w, geom: ConvGeometry, precision, xla_forward: bool):
    if xla_forward:
        return conv_xla(x, w, geom, precision)
    b = _chunk(x.shape, w.shape, geom, x.dtype.itemsize)
    if b >= x.shape[0]:
        return _conv_forward(x, w, geom, precision)

    def step(carry, xc):
        return carry, _conv_forward(xc, w, geom, precision)
    return _over_chunks(step, None, b, x)[1]


def _conv_im2col_fwd(x, w, geom, precision, xla_forward):
    # Residuals are the inputs only: patches are recomputed chunk by chunk in the backward
    # pass, which is cheaper here than storing (and page-faulting) the full ``cols``.
    return _conv_im2col(x, w, geom, precision, xla_forward), (x, w)


def _conv_im2col_bwd(geom, precision, xla_forward, res, g):
    x, w = res
    b = _chunk(x.shape, w.shape, geom, x.dtype.itemsize)
    if b >= x.shape[0]:
        return _conv_backward(x, w, g, geom, precision)

    def step(dw, xc, gc):
        dx, dw_c = _conv_backward(xc, w, gc, geom, precision)
        return dw + dw_c, dx
    dw, dx = _over_chunks(step, jnp.zeros(w.shape, w.dtype), b, x, g)
    return dx, dw


_conv_im2col.defvjp(_conv_im2col_fwd, _conv_im2col_bwd)


def conv_im2col(x: jax.Array, w: jax.Array, geom: ConvGeometry, precision=None) -> jax.Array:
    """The ``impl='im2col'`` convolution with canonical (validated) arguments.

    Forward: patches of a batch chunk (``_patches``) times the reshaped kernel, one
    ``dot_general`` batched over groups. Backward (``jax.custom_vjp``): per chunk,
    ``dw += cols^T g`` and ``dx = col2im(g w^T)`` -- matmuls plus strided pads, no scatter.
    Being a ``custom_vjp``, this path supports reverse mode (``grad``, ``vjp``, and their
    nesting) but not forward mode (``jvp``/``jacfwd``); use ``impl='xla'`` for those.
    """
    return _conv_im2col(x, w, geom, precision, False)


def conv_xla_im2col_grad(x: jax.Array, w: jax.Array, geom: ConvGeometry,
                         precision=None) -> jax.Array:
    """XLA's convolution forward, the im2col matmuls backward (an ``impl='auto'`` choice).

    On CPU XLA's direct convolution is fast for thin inputs (``C_in`` of 1-3, the first
    layer) and strided layers, where the patch copy dominates the im2col forward, but its
    backward convolutions are several times slower than ``cols^T g`` and ``g w^T``.
    """
    return _conv_im2col(x, w, geom, precision, True)


def im2col(
    x: jax.typing.ArrayLike,
    kernel_size: int | Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilation: int | Sequence[int] = 1,
) -> jax.Array:
    """Unrolls every receptive field of ``x`` into a feature vector (lecture 3).

    ``cols[n, o, (kpos, c)] = xpad[n, o*stride + kpos*dilation, c]`` with the feature axis
    kernel-position-major, channel-minor, so that (``groups=1``)
    ``conv(x, w) == im2col(x, k, ...) @ w.reshape(-1, C_out)``.
    Output size per spatial dim: ``floor((n + lo + hi - dilation*(k-1) - 1) / stride) + 1``.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims.
      kernel_size: an int or one int per spatial dim.
      stride, padding, dilation: as in ``conv`` (zero padding).

    Returns:
      ``[N, *out_spatial, prod(kernel_size) * C]``.

    Example:
      >>> im2col(jnp.ones((1, 4, 4, 2)), 3).shape
      (1, 2, 2, 18)
    """
    op = "im2col"
    x = jnp.asarray(x) if not isinstance(x, jax.Array) else x
    _checks.spatial_rank(x, op)
    geom = _geometry(op, x.shape[1:-1], kernel_size, stride, padding, dilation)
    return _patches(x, geom)


def col2im(
    cols: jax.typing.ArrayLike,
    input_shape: Sequence[int],
    kernel_size: int | Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilation: int | Sequence[int] = 1,
) -> jax.Array:
    """The adjoint of ``im2col``: scatters patches back onto the image, summing overlaps.

    ``<im2col(x, ...), cols> == <x, col2im(cols, x.shape, ...)>``; in particular
    ``col2im(im2col(x))`` multiplies each pixel by the number of windows that contain it.

    Args:
      cols: ``[N, *out_spatial, prod(kernel_size) * C]`` as produced by ``im2col``.
      input_shape: the image shape ``(N, *spatial, C)``.
      kernel_size, stride, padding, dilation: the ``im2col`` arguments.

    Returns:
      ``[N, *spatial, C]`` in ``cols``' dtype.

    Example:
      >>> col2im(jnp.ones((1, 2, 2, 18)), (1, 4, 4, 2), 3)[0, :, :, 0]  # window counts
      Array([[1., 2., 2., 1.], [2., 4., 4., 2.], [2., 4., 4., 2.], [1., 2., 2., 1.]], ...)
    """
    op = "col2im"
    cols = jnp.asarray(cols) if not isinstance(cols, jax.Array) else cols
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        _checks.fail(op, f"input_shape must be (N, *spatial, C), got {input_shape!r}.", TypeError)
    d = len(input_shape) - 2
    if not 1 <= d <= 3:
        _checks.fail(op, f"input_shape must be (N, *spatial, C) with 1 to 3 spatial dims, got "
                         f"{input_shape!r}.")
    shape = _checks.ntuple(tuple(input_shape), d + 2, op, "input_shape")
    geom = _geometry(op, shape[1:-1], kernel_size, stride, padding, dilation)
    out = _out_shape(shape[1:-1], geom)
    expected = (shape[0], *out, _checks.prod(geom.kernel_size) * shape[-1])
    if tuple(cols.shape) != expected:
        _checks.fail(op, f"cols must have shape {expected} for input_shape {tuple(input_shape)} "
                         f"and these window arguments, got {tuple(cols.shape)}.")
    return _unpatches(cols, shape[1:-1], geom)


def _geometry(op, spatial, kernel_size, stride, padding, dilation) -> ConvGeometry:
    d = len(spatial)
    k = _checks.ntuple(kernel_size, d, op, "kernel_size")
    s = _checks.ntuple(stride, d, op, "stride")
    r = _checks.ntuple(dilation, d, op, "dilation")
    pads = _checks.canonical_padding(padding, spatial, k, s, op, dilation=r)
    _checks.check_window_fits(spatial, k, pads, op, dilation=r, name="kernel_size")
    return ConvGeometry(k, s, pads, r, 1)
