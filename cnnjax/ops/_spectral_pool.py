"""Spectral pooling (Rippel, Snoek & Adams 2015, "Spectral representations for convolutional
neural networks"; the lectures' "Spectral pooling": ``y = F(x)``, crop, ``F⁻¹``).

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

The whole chain is linear and separable, so for maps up to ``MATRIX_MAX_SIZE`` per axis it
is applied as one exact real ``[m, n]`` matrix per axis (built once with NumPy FFTs), which
on a CPU is much cheaper than complex FFTs of the whole batch; larger maps use
``jnp.fft``. Both paths compute the same operator.
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

__all__ = ["spectral_pool"]


def _crop_axis(z: Any, axis: int, m: int, xp: Any = jnp) -> Any:
    """Keeps the lowest ``m`` frequencies of ``z`` along ``axis`` (fft order in and out),
    folding the two input bins ``±m/2`` onto the output Nyquist bin for even ``m < n``."""
    n = z.shape[axis]
    if m == n:
        return z

    def take(lo, hi):
        if xp is jnp:
            return lax.slice_in_dim(z, lo, hi, axis=axis)
        return np.take(z, np.arange(lo, hi), axis=axis)

    half = m // 2
    if m % 2:
        return xp.concatenate([take(0, half + 1), take(n - half, n)], axis=axis)
    nyq = take(half, half + 1) + take(n - half, n - half + 1)
    return xp.concatenate([take(0, half), nyq, take(n - half + 1, n)], axis=axis)


def _compute_dtype(dtype: Any) -> Any:
    # XLA's FFT takes float32/float64; low-precision inputs are transformed in float32.
    return jnp.float64 if dtype == jnp.float64 else jnp.float32


# Up to this size per axis the DFT → crop → inverse DFT chain is applied as its exact
# [m, n] real matrix (a matmul per axis): on CPU that is ~2 ms instead of ~70 ms of complex
# FFTs for [128, 24, 24, 64] → 12×12 (experiments/pool_timing.py). Larger maps use FFTs.
MATRIX_MAX_SIZE = 128


def _frequencies(m: int) -> np.ndarray:
    """Signed frequency of each DFT bin of a length-``m`` signal (``+m/2`` for Nyquist)."""
    j = np.arange(m)
    return np.where(j <= m // 2, j, j - m)


@functools.lru_cache(maxsize=256)
def _axis_operator(n: int, m: int, cut: int | None) -> np.ndarray:
    """``[m, n]`` float64 matrix of one axis of spectral pooling (cropped spectrum masked to
    ``|f| <= cut // 2`` if ``cut`` is given), scaled by ``m/n``."""
    spectrum = np.fft.fft(np.eye(n), axis=0)
    cropped = np.asarray(_crop_axis(spectrum, 0, m, xp=np))
    if cut is not None:
        cropped = cropped * (np.abs(_frequencies(m)) <= cut // 2)[:, None]
    # The folded spectrum of a real signal is Hermitian, so the operator is real.
    return np.real(np.fft.ifft(cropped, axis=0)) * (m / n)


def _apply_axis(x: jax.Array, op: jax.Array, axis: int) -> jax.Array:
    """Contracts ``op`` ([m, n], or [N, m, n] per example) with ``x`` along ``axis``."""
    letters = "abcdefghijklmnopqrstuvw"[: x.ndim]
    out = letters.replace(letters[axis], "z")
    spec = (f"z{letters[axis]}" if op.ndim == 2 else f"az{letters[axis]}")
    return jnp.einsum(f"{spec},{letters}->{out}", op, x, precision=lax.Precision.HIGHEST)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _spectral(x: jax.Array, out: tuple[int, ...], use_matrix: bool) -> jax.Array:
    if not use_matrix:
        return _spectral_fft(x, out, None)
    ct = _compute_dtype(x.dtype)
    y = x.astype(ct)
    for axis, (n, m) in enumerate(zip(x.shape[1:-1], out), start=1):
        if m != n:
            y = _apply_axis(y, jnp.asarray(_axis_operator(n, m, None), ct), axis)
    return y.astype(x.dtype)


@functools.partial(jax.jit, static_argnums=(1, 3, 4))
def _spectral_dropout(x: jax.Array, out: tuple[int, ...], key: jax.Array,
                      min_keep: tuple[int, ...], use_matrix: bool) -> jax.Array:
    n = x.shape[0]
    d = len(out)
    keys = jax.random.split(key, d)
    cuts = [jax.random.randint(k, (n,), lo, m + 1) for k, lo, m in zip(keys, min_keep, out)]
    if use_matrix:
        ct = _compute_dtype(x.dtype)
        y = x.astype(ct)
        for axis, (size, m, lo, cut) in enumerate(zip(x.shape[1:-1], out, min_keep, cuts),
                                                  start=1):
            # One operator per possible cutoff; each example picks its own.
            table = np.stack([_axis_operator(size, m, c) for c in range(lo, m + 1)])
            y = _apply_axis(y, jnp.asarray(table, ct)[cut - lo], axis)
        return y.astype(x.dtype)
    mask = None
    for i, (m, cut) in enumerate(zip(out, cuts)):
        keep = jnp.abs(jnp.asarray(_frequencies(m)))[None, :] <= (cut // 2)[:, None]
        shape = [n] + [1] * d + [1]
        shape[i + 1] = m
        keep = keep.reshape(shape)
        mask = keep if mask is None else mask & keep
    return _spectral_fft(x, out, mask)


def _spectral_fft(x: jax.Array, out: tuple[int, ...], mask: jax.Array | None) -> jax.Array:
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
      >>> y = spectral_pool(x, 4)[0, :, 0]              # same cycle on 4 samples:
      >>> bool(jnp.allclose(y, jnp.array([1., 0, -1, 0]), atol=1e-6))
      True
    """
    op = "spectral_pool"
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    d = checks.spatial_rank(x, op, max_d=max(x.ndim - 2, 1))
    spatial = tuple(int(n) for n in x.shape[1:-1])
    out = checks.ntuple(output_shape, d, op, "output_shape")
    if any(m > n for m, n in zip(out, spatial)):
        fail(op, f"output_shape must not be larger than the input spatial shape {spatial}, "
                 f"got {out}.")
    use_matrix = max(spatial) <= MATRIX_MAX_SIZE
    if not train:
        return _spectral(x, out, use_matrix)
    if key is None:
        fail(op, "key must be given when train=True, got key=None.")
    checks.check_key(key, op)
    keep = (tuple((m + 1) // 2 for m in out) if min_keep is None
            else checks.ntuple(min_keep, d, op, "min_keep"))
    if any(k > m for k, m in zip(keep, out)):
        fail(op, f"min_keep must be <= output_shape {out} in every dim, got {min_keep!r}.")
    return _spectral_dropout(x, out, key, keep, use_matrix)
