"""The ``impl='fft'`` convolution: the convolution theorem.

Lecture 3 ("Fourier transform"): convolution in the spatial domain is a pointwise
product in the frequency domain, ``F(x * w) = F(x) . F(w)``. A CNN layer computes a
cross-correlation, whose transform is ``F(x) . conj(F(w))``:

    y[o] = sum_k w[k] x[o + k]   <=>   Y[f] = X[f] conj(W[f])   (circular, length L)

With ``L`` at least the padded input size, the outputs ``o <= n_pad - k_eff`` never wrap
around, so the circular result restricted to them is the VALID correlation. Dilation is a
kernel with ``dilation - 1`` zeros inserted between taps; stride keeps every ``stride``-th
output of the full (stride-1) result; groups are a batch axis of the per-frequency channel
matmul ``Y[n, f, co] = sum_ci X[n, f, ci] conj(W[f, ci, co])``.

The cost is ``O(N C L^d log L)`` for the transforms plus ``O(N L^d C_in C_out / G)`` for the
channel mixing, independent of the kernel size: it wins over the direct sum for large
kernels on large inputs.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from cnnjax.ops import checks
from cnnjax.ops._conv_geometry import ConvGeometry, output_size

# pocketfft is fastest on lengths whose only prime factors are these.
_FFT_FRIENDLY_PRIMES = (2, 3, 5)
# Real multiply-adds per complex one in ``_complex_channel_product``'s real-stacked matmul.
_REAL_MACS_PER_COMPLEX_MAC = 4


def _fast_length(n: int) -> int:
    """Smallest integer ``>= n`` whose prime factors are all in ``_FFT_FRIENDLY_PRIMES``."""
    m = n
    while True:
        r = m
        for p in _FFT_FRIENDLY_PRIMES:
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def direct_over_product(padded: Sequence[int], kernel_size: Sequence[int]) -> float:
    """Multiply-adds of the direct sum over those of the frequency-domain channel product.

    ``r = prod(k) * prod(out) / (4 * F)`` per channel pair, for a stride-1, undilated kernel
    on an input of (already padded) size ``padded``: ``F`` real-FFT frequencies, each a
    complex multiply-add done as 4 real ones (``_REAL_MACS_PER_COMPLEX_MAC``). ``impl='auto'``
    sends large ``r`` to the FFT (``StaticRule``).
    """
    lengths = [_fast_length(n) for n in padded]
    freqs = checks.prod(lengths[:-1]) * (lengths[-1] // 2 + 1)
    out = checks.prod(output_size(n, k, 1, 0, 0) for n, k in zip(padded, kernel_size))
    return checks.prod(kernel_size) * out / (_REAL_MACS_PER_COMPLEX_MAC * freqs)


def _dilate_kernel(w: jax.Array, dilation, d: int) -> jax.Array:
    if all(r == 1 for r in dilation):
        return w
    # Interior padding inserts dilation-1 zeros between taps (no zeros after the last tap).
    config = [(0, 0, r - 1) for r in dilation] + [(0, 0, 0), (0, 0, 0)]
    return lax.pad(w, jnp.zeros((), w.dtype), config)


def _complex_channel_product(xf: jax.Array, wf: jax.Array, precision) -> jax.Array:
    """``Y[n, co, b] = sum_ci X[n, ci, b] W[ci, co, b]`` as one real matmul per batch index.

    ``xf [N, cig, B]`` and ``wf [cig, cog, B]`` are complex, ``B`` the (group, frequency)
    pairs flattened into one batch axis (one batch axis: measured 1.8x faster backward than
    separate group and frequency axes). Complex dots run in XLA:CPU's generic loops, so the
    product is written in real arithmetic: ``[Xr | Xi]`` (channels stacked) times
    ``[[Wr, Wi], [-Wi, Wr]]`` gives ``[Yr | Yi]`` -- measured 1.4x faster than the complex
    dot on the LeNet5 conv2 shape (128 x 180 frequencies x 20 -> 50 channels).
    Returns ``[B, N, cog]``.
    """
    cog = wf.shape[1]
    a = jnp.concatenate([xf.real, xf.imag], axis=1)  # [N, 2cig, B]
    top = jnp.concatenate([wf.real, wf.imag], axis=1)  # rows of Xr: [Wr | Wi]
    bottom = jnp.concatenate([-wf.imag, wf.real], axis=1)  # rows of Xi: [-Wi | Wr]
    b = jnp.concatenate([top, bottom], axis=0)  # [2cig, 2cog, B]
    y = lax.dot_general(a, b, (((1,), (0,)), ((2,), (2,))), precision=precision)
    return lax.complex(y[..., :cog], y[..., cog:])  # [B, N, cog]


def conv_fft(x: jax.Array, w: jax.Array, geom: ConvGeometry, precision=None) -> jax.Array:
    """The ``impl='fft'`` convolution with canonical (validated) arguments.

    ``x [N, *S, C_in]``, ``w [*k, C_in/G, C_out]`` -> ``[N, *out, C_out]`` in ``x``'s dtype
    (bfloat16 is transformed in float32: XLA's FFT has no bfloat16 kernel).

    The transforms run channels-first (``[N, C, *S]``, transformed axes last and contiguous):
    measured 2x faster for the inverse transform than transforming the middle axes of a
    channels-last array, which pays for the two transposes.
    """
    d = x.ndim - 2
    dtype = x.dtype
    work = jnp.float32 if dtype == jnp.bfloat16 else dtype
    x, w = x.astype(work), w.astype(work)
    out = geom.output_shape(x.shape[1:-1])
    if any(lo or hi for lo, hi in geom.padding):
        x = jnp.pad(x, ((0, 0), *geom.padding, (0, 0)))
    w = _dilate_kernel(w, geom.dilation, d)
    lengths = tuple(_fast_length(n) for n in x.shape[1:-1])
    n = x.shape[0]
    groups = geom.groups
    cig, c_out = w.shape[-2], w.shape[-1]
    cog = c_out // groups
    axes = tuple(range(2, d + 2))
    xc = jnp.moveaxis(x, -1, 1)  # [N, C_in, *S]
    wc = jnp.moveaxis(jnp.moveaxis(w, -1, 0), -1, 0)  # [cig, C_out, *k]
    xf = jnp.fft.rfftn(xc, s=lengths, axes=axes)  # [N, C_in, *F]
    wf = jnp.conj(jnp.fft.rfftn(wc, s=lengths, axes=axes))  # [cig, C_out, *F]
    freqs = xf.shape[2:]
    nf = checks.prod(freqs)
    # (group, frequency) pairs as one batch axis; the moves are free when groups == 1.
    xg = jnp.moveaxis(xf.reshape(n, groups, cig, nf), 1, 2).reshape(n, cig, groups * nf)
    wg = jnp.moveaxis(wf.reshape(cig, groups, cog, nf), 1, 2).reshape(cig, cog, groups * nf)
    yf = _complex_channel_product(xg, wg, precision).reshape(groups, nf, n, cog)
    yf = jnp.transpose(yf, (2, 0, 3, 1)).reshape(n, c_out, *freqs)  # [N, G, cog, F]
    y = jnp.fft.irfftn(yf, s=lengths, axes=axes)  # [N, C_out, *lengths]
    limit = tuple((m - 1) * s + 1 for m, s in zip(out, geom.stride))
    y = lax.slice(y, (0,) * (d + 2), (n, c_out, *limit), (1, 1, *geom.stride))
    return jnp.moveaxis(y, 1, -1).astype(dtype)
