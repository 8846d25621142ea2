"""Spectral pooling (Rippel, Snoek & Adams 2015, "Spectral representations for convolutional
neural networks"; the seeds' "Spectral pooling": ``y = F(x)``, crop, ``F⁻¹``).

Per spatial dim of size ``n`` pooled to ``m <= n``, the DFT bins with signed frequency
``|f| < m/2`` are kept. For even ``m < n`` the output has a Nyquist bin ``m/2`` that stands
for both input frequencies ``+m/2`` and ``−m/2``: it receives their *sum*, which is what
sampling the trigonometric interpolant on the coarser grid does (aliasing), keeps the
spectrum Hermitian (so the output is real) and is the convention of
``scipy.signal.resample``. The n-d transform is separable, so this crop is applied one
axis at a time. The inverse DFT is scaled by ``prod(m)/prod(n)`` so a constant map stays
the same constant; a map whose frequencies all satisfy ``|f| < m/2`` is resampled exactly.

Frequency dropout (training): each example draws, per axis, a cutoff
``c ~ U{min_keep, ..., m}`` and keeps the output bins with ``|f| <= c // 2`` (at least ``c``
frequencies, all of them when ``c = m``) — a 0/1 mask of the static output shape, so the
op stays jit-compatible.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cnnjax.ops import _checks
from cnnjax.ops._checks import fail

__all__ = ["spectral_pool"]


def _crop_axis(z: jax.Array, axis: int, m: int) -> jax.Array:
    """Keeps the lowest ``m`` frequencies of ``z`` along ``axis`` (fft order in and out)."""
    n = z.shape[axis]
    if m == n:
        return z
    half = m // 2
    if m % 2:
        pos = lax.slice_in_dim(z, 0, half + 1, axis=axis)
        neg = lax.slice_in_dim(z, n - half, n, axis=axis)
        return jnp.concatenate([pos, neg], axis=axis)
    pos = lax.slice_in_dim(z, 0, half, axis=axis)
    nyq = (lax.slice_in_dim(z, half, half + 1, axis=axis)
           + lax.slice_in_dim(z, n - half, n - half + 1, axis=axis))
    neg = lax.slice_in_dim(z, n - half + 1, n, axis=axis)
    return jnp.concatenate([pos, nyq, neg], axis=axis)


def _compute_dtype(dtype: Any) -> Any:
    # XLA's FFT takes float32/float64; low-precision inputs are transformed in float32.
    return jnp.float64 if dtype == jnp.float64 else jnp.float32


@functools.partial(jax.jit, static_argnums=(1,))
def _spectral(x: jax.Array, out: tuple[int, ...]) -> jax.Array:
    return _spectral_masked(x, out, None)


@functools.partial(jax.jit, static_argnums=(1, 3))
def _spectral_dropout(x: jax.Array, out: tuple[int, ...], key: jax.Array,
                      min_keep: tuple[int, ...]) -> jax.Array:
    n = x.shape[0]
    d = len(out)
    mask = None
    for i, (m, lo, k) in enumerate(zip(out, min_keep, jax.random.split(key, d))):
        cut = jax.random.randint(k, (n, 1), lo, m + 1)
        j = np.arange(m)
        freq = np.where(j <= m // 2, j, j - m)
        keep = jnp.abs(jnp.asarray(freq))[None, :] <= cut // 2
        shape = [n] + [1] * d + [1]
        shape[i + 1] = m
        keep = keep.reshape(shape)
        mask = keep if mask is None else mask & keep
    return _spectral_masked(x, out, mask)


def _spectral_masked(x: jax.Array, out: tuple[int, ...], mask: jax.Array | None) -> jax.Array:
    d = len(out)
    axes = tuple(range(1, d + 1))
    xc = x.astype(_compute_dtype(x.dtype))
    z = jnp.fft.fftn(xc, axes=axes)
    for axis, m in zip(axes, out):
        z = _crop_axis(z, axis, m)
    if mask is not None:
        z = jnp.where(mask, z, jnp.zeros((), z.dtype))
    y = jnp.real(jnp.fft.ifftn(z, axes=axes))
    scale = math.prod(out) / math.prod(x.shape[1:-1])
    return (y * scale).astype(x.dtype)


def spectral_pool(
    x: jax.typing.ArrayLike,
    output_shape: Any,
    *,
    train: bool = False,
    key: jax.Array | None = None,
    min_keep: Any = None,
) -> jax.Array:
    """Spectral pooling: crop the DFT to the lowest frequencies (Rippel et al. 2015).

    ``y = (prod(m)/prod(n)) · F⁻¹_m(crop_m(F_n(x)))`` over the spatial axes (any number of
    them), with the even-size Nyquist bins folded so the output is real (module docstring).
    ``output_shape == spatial shape`` is the identity; constants are preserved; band-limited
    maps are resampled exactly. With ``train=True``, frequency dropout: per example and
    axis a random cutoff in ``[min_keep, m]`` zeroes the higher output frequencies.
    Inference (``train=False``) uses all kept frequencies.

    Args:
      x: ``[N, *spatial, C]`` with at least one spatial dim, floating dtype.
      output_shape: int or one int per spatial dim, each ``1 <= m <= n``.
      train: apply frequency dropout.
      key: PRNG key, required when ``train=True``.
      min_keep: minimum number of frequencies per axis kept by frequency dropout, int or
        one per spatial dim in ``[1, m]``; default ``ceil(m/2)``.

    Returns:
      ``[N, *output_shape, C]``, same dtype as ``x``.

    Example:
      >>> t = jnp.arange(8.) / 8
      >>> x = jnp.cos(2 * jnp.pi * t)[None, :, None]          # one cycle over 8 samples
      >>> spectral_pool(x, 4)[0, :, 0]                          # same cycle, 4 samples
      Array([ 1.,  0., -1.,  0.], dtype=float32)
    """
    op = "spectral_pool"
    x = jnp.asarray(x)
    _checks.check_floating(x, op)
    d = _checks.spatial_rank(x, op, max_d=max(x.ndim - 2, 1))
    spatial = tuple(int(n) for n in x.shape[1:-1])
    out = _checks.ntuple(output_shape, d, op, "output_shape")
    if any(m > n for m, n in zip(out, spatial)):
        fail(op, f"output_shape must not be larger than the input spatial shape {spatial}, "
                 f"got {out}.")
    if not train:
        return _spectral(x, out)
    if key is None:
        fail(op, "key must be given when train=True, got key=None.")
    keep = (tuple((m + 1) // 2 for m in out) if min_keep is None
            else _checks.ntuple(min_keep, d, op, "min_keep"))
    if any(k > m for k, m in zip(keep, out)):
        fail(op, f"min_keep must be <= output_shape {out} in every dim, got {min_keep!r}.")
    return _spectral_dropout(x, out, key, keep)
