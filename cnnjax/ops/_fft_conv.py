"""The ``impl='fft'`` convolution: the convolution theorem.

Seeds (lecture 3, "Fourier transform"): convolution in the spatial domain is a pointwise
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

import jax
import jax.numpy as jnp
from jax import lax

from cnnjax.ops import _checks
from cnnjax.ops._conv import ConvGeometry


def _fast_length(n: int) -> int:
    """Smallest 2,3,5-smooth integer ``>= n`` (pocketfft is fastest on those sizes)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _dilate_kernel(w: jax.Array, dilation, d: int) -> jax.Array:
    if all(r == 1 for r in dilation):
        return w
    # Interior padding inserts dilation-1 zeros between taps (no zeros after the last tap).
    config = [(0, 0, r - 1) for r in dilation] + [(0, 0, 0), (0, 0, 0)]
    return lax.pad(w, jnp.zeros((), w.dtype), config)


def conv_fft(x: jax.Array, w: jax.Array, geom: ConvGeometry, precision=None) -> jax.Array:
    """The ``impl='fft'`` convolution with canonical (validated) arguments.

    ``x [N, *S, C_in]``, ``w [*k, C_in/G, C_out]`` -> ``[N, *out, C_out]`` in ``x``'s dtype
    (bfloat16 is transformed in float32: XLA's FFT has no bfloat16 kernel).
    """
    d = x.ndim - 2
    dtype = x.dtype
    work = jnp.float32 if dtype == jnp.bfloat16 else dtype
    x, w = x.astype(work), w.astype(work)
    if any(lo or hi for lo, hi in geom.padding):
        x = jnp.pad(x, ((0, 0), *geom.padding, (0, 0)))
    w = _dilate_kernel(w, geom.dilation, d)
    spatial = x.shape[1:-1]
    k_eff = w.shape[:d]
    lengths = tuple(_fast_length(n) for n in spatial)
    xf = jnp.fft.rfftn(x, s=lengths, axes=tuple(range(1, d + 1)))  # [N, *F, C_in]
    wf = jnp.conj(jnp.fft.rfftn(w, s=lengths, axes=tuple(range(d))))  # [*F, C_in/G, C_out]
    n = x.shape[0]
    groups = geom.groups
    cig, c_out = w.shape[-2], w.shape[-1]
    cog = c_out // groups
    freqs = xf.shape[1:-1]
    nf = _checks.prod(freqs)
    xg = xf.reshape(n, nf, groups, cig)
    wg = wf.reshape(nf, cig, groups, cog)
    # Per frequency and group: [N, cig] x [cig, cog]; batch axes (f, g).
    yf = lax.dot_general(xg, wg, (((3,), (1,)), ((1, 2), (0, 2))), precision=precision)
    yf = jnp.transpose(yf, (2, 0, 1, 3)).reshape(n, *freqs, c_out)  # [F, G, N, cog] -> ...
    y = jnp.fft.irfftn(yf, s=lengths, axes=tuple(range(1, d + 1)))
    out = tuple((nn - ke) // s + 1 for nn, ke, s in zip(spatial, k_eff, geom.stride))
    limit = tuple((m - 1) * s + 1 for m, s in zip(out, geom.stride))
    y = lax.slice(y, (0,) * (d + 2), (n, *limit, c_out), (1, *geom.stride, 1))
    return y.astype(dtype)
