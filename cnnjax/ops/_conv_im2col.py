"""The ``impl='im2col'`` convolution (patches times the kernel, matmuls backward) and the
hybrid ``impl='xla_im2col_grad'`` (XLA's forward, the same matmul backward).

Lecture 3 ("Convolution as a Matrix Multiplication"): with the patches of ``_im2col.py`` a
convolution is one matrix product per group, and so are both of its gradients. Batches run
in chunks (a ``lax.scan``) so that the patches of one chunk stay in cache.
"""
from __future__ import annotations

import functools
from fractions import Fraction

import jax
import jax.numpy as jnp
from jax import lax

from cnnjax import _host_memory
from cnnjax.ops import checks
from cnnjax.ops._conv_geometry import ConvGeometry
from cnnjax.ops._conv_xla import conv_xla
from cnnjax.ops._im2col import patches, unpatches


def _dot(a, b, contract, batch, precision):
    return lax.dot_general(a, b, (contract, batch), precision=precision)


def _matmul(cols: jax.Array, w: jax.Array, groups: int, precision) -> jax.Array:
    """``cols [M, K*C_in] x w [*k, C_in/G, C_out] -> [M, C_out]``: one (batched) matmul."""
    m = cols.shape[0]
    k_total = checks.prod(w.shape[:-2])
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
    k_total = checks.prod(w.shape[:-2])
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
    cols = patches(x, geom)
    out = cols.shape[1:-1]
    y = _matmul(cols.reshape(-1, cols.shape[-1]), w, geom.groups, precision)
    return y.reshape(x.shape[0], *out, w.shape[-1])


def _conv_backward(x, w, g, geom: ConvGeometry, precision):
    """``(dx, dw)``: patches recomputed, ``dw = cols^T g``, ``dx = col2im(g w^T)``."""
    cols = patches(x, geom)
    kc = cols.shape[-1]
    dcols, dw = _matmul_grads(cols.reshape(-1, kc), g.reshape(-1, g.shape[-1]), w,
                              geom.groups, precision)
    dx = unpatches(dcols.reshape(cols.shape), x.shape[1:-1], geom)
    return dx, dw


# Patches of one batch chunk are kept around this size. Measured on the 2-core EPYC
# (experiments/conv_layer_timing.py): chunks of ~1-3 MB stay in L2/L3 and below glibc's
# 32 MB mmap threshold; one unchunked ``cols`` buffer of ~85 MB (N=128, 24x24x288) is
# allocated with mmap on every call and the page faults alone cost more than XLA's conv.
_CHUNK_BYTES = 2 << 20
# Unless the process reuses freed host memory (``cnnjax.train.reuse_host_memory``): then a
# whole-batch ``cols`` costs no page faults and one matmul without the scan's buffers wins
# on every layer measured (forward+backward at batch 128 on the 2-core Xeon, side by side:
# MnistNet conv2 108 vs 153 ms, LeNet5 conv2 58 vs 70, the thin first layers 5-9 vs 8-14;
# docs/benchmark.md). Patches up to this size are then made in one piece. Not in a
# multi-process run, where every process must compile the same program whatever each one
# set for its own memory.
_REUSED_CHUNK_BYTES = 1 << 30
# A chunk size that divides the batch (no tail chunk) is preferred down to this fraction of
# the cache-sized one: see ``_dividing_chunk``.
_MIN_DIVIDING_FRACTION = Fraction(2, 3)
# ``_shard_friendly_chunk`` searches sizes up to this multiple of the cache-sized chunk.
_SHARD_SEARCH_FACTOR = 4


def _chunk(x_shape, w_shape, geom: ConvGeometry, itemsize: int) -> int:
    out = geom.output_shape(x_shape[1:-1])
    per_example = checks.prod(out) * checks.prod(geom.kernel_size) * x_shape[-1] * itemsize
    reused = _host_memory.reused() and jax.process_count() == 1
    budget = _REUSED_CHUNK_BYTES if reused else _CHUNK_BYTES
    b = max(1, min(x_shape[0], budget // max(per_example, 1)))
    devices = jax.local_device_count()
    if devices == 1:
        return _dividing_chunk(x_shape[0], b)
    return _shard_friendly_chunk(x_shape[0], b, devices)


def _dividing_chunk(n: int, b: int) -> int:
    """The largest chunk size in ``[_MIN_DIVIDING_FRACTION * b, b]`` that divides ``n``, else ``b``.

    Without a tail chunk the scan's inputs are a free reshape instead of sliced copies of
    ``x`` and ``g``, and no ``concatenate`` copies the output: measured 5-10% of the im2col
    forward+backward at batch 128 on the 2-core VM (MnistNet conv2: chunks of 2 instead of
    3 + a tail of 2; ``cnnjax bench``).
    """
    for size in range(min(b, n), 0, -1):
        if size < _MIN_DIVIDING_FRACTION * b:
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
    chunk) when no such size lies within ``_SHARD_SEARCH_FACTOR`` times ``b``.
    """
    if b >= n or devices == 1:
        return b
    for size in range(b, min(n, _SHARD_SEARCH_FACTOR * b) + 1):
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

    Forward: patches of a batch chunk (``patches``) times the reshaped kernel, one
    ``dot_general`` batched over groups. Backward (``jax.custom_vjp``): per chunk,
    ``dw += cols^T g`` and ``dx = col2im(g w^T)`` -- matmuls plus strided pads, no scatter.
    Being a ``custom_vjp``, this path supports reverse mode (``grad``, ``vjp``, and their
    nesting) but not forward mode (``jvp``/``jacfwd``); use ``impl='xla'`` for those.
    """
    return _conv_im2col(x, w, geom, precision, False)


def conv_xla_im2col_grad(x: jax.Array, w: jax.Array, geom: ConvGeometry,
                         precision=None) -> jax.Array:
    """``impl='xla_im2col_grad'``: XLA's convolution forward, the im2col matmuls backward.

    On CPU XLA's direct convolution is fast for thin inputs (one or two channels per group:
    first layers on grey images), where the patch copy dominates the im2col forward, but its
    backward convolutions are several times slower than ``cols^T g`` and ``g w^T``; ``'auto'``
    picks this hybrid there (``StaticRule.thin_input_channels``).
    """
    return _conv_im2col(x, w, geom, precision, True)
