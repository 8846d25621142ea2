"""Tests for cnnjax/ops/_spectral_pool.py (Rippel, Snoek & Adams 2015)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from cnnjax.ops import _spectral_pool
from tests.reference import pool as ref


@pytest.fixture(params=["matrix", "fft"])
def impl(request, monkeypatch):
    """Runs a test on both implementations (dense per-axis operator and jnp.fft)."""
    if request.param == "fft":
        monkeypatch.setattr(_spectral_pool, "MATRIX_MAX_SIZE", 0)
    return request.param


@pytest.mark.parametrize("spatial,out", [
    ((8,), (4,)), ((9,), (4,)), ((8,), (5,)), ((7,), (3,)),
    ((8, 7), (4, 4)), ((6, 9), (5, 6)), ((6, 6), (6, 3)),
    ((4, 5, 6), (2, 3, 4)), ((4, 3, 4, 5), (2, 3, 3, 2)),
])
def test_matches_reference_and_is_real(impl, rng, spatial, out):
    x = rng.standard_normal((2, *spatial, 3))
    y = cnnjax.spectral_pool(x, out)
    expect = ref.spectral(x, out, return_complex=True)
    # The folded spectrum is Hermitian: the exact inverse is real.
    assert np.max(np.abs(expect.imag)) < 1e-12
    np.testing.assert_allclose(y, expect.real, rtol=1e-10, atol=1e-12)
    assert y.shape == (2, *out, 3) and y.dtype == x.dtype


@pytest.mark.parametrize("spatial", [(7,), (6, 5), (4, 3, 2), (3, 2, 2, 3)])
def test_identity_at_full_size_and_constants_preserved(impl, rng, spatial):
    x = rng.standard_normal((2, *spatial, 2))
    np.testing.assert_allclose(cnnjax.spectral_pool(x, spatial), x, rtol=1e-12, atol=1e-12)
    c = np.full((1, *spatial, 2), -1.75)
    out = tuple(max(n // 2, 1) for n in spatial)
    np.testing.assert_allclose(cnnjax.spectral_pool(c, out), -1.75, rtol=1e-12)


def _band_limited(shape, freqs, amps, phases):
    """sum_k a_k cos(2π <f_k, t> + φ_k) on the grid t_i = j/n_i over [0, 1)^d."""
    grids = np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")
    out = np.zeros(shape)
    for f, a, ph in zip(freqs, amps, phases):
        out += a * np.cos(2 * np.pi * sum(fi * g for fi, g in zip(f, grids)) + ph)
    return out


@pytest.mark.parametrize("spatial,out", [((16,), (6,)), ((15,), (7,)), ((12, 11), (6, 5)),
                                         ((10, 9, 8), (5, 4, 6))])
def test_band_limited_signal_is_resampled_exactly(impl, rng, spatial, out):
    # Every frequency strictly below the output Nyquist (|f| < m/2 in every dim).
    limits = [(m - 1) // 2 for m in out]
    freqs = [tuple(rng.integers(-lim, lim + 1) for lim in limits) for _ in range(5)]
    amps, phases = rng.uniform(0.5, 2, 5), rng.uniform(0, 2 * np.pi, 5)
    fine = _band_limited(spatial, freqs, amps, phases)
    coarse = _band_limited(out, freqs, amps, phases)
    y = cnnjax.spectral_pool(fine[None, ..., None], out)[0, ..., 0]
    np.testing.assert_allclose(y, coarse, atol=1e-12)


def test_gradients_and_transformations(impl, rng):
    x = rng.standard_normal((2, 6, 5, 2))
    check_grads(lambda v: cnnjax.spectral_pool(v, (4, 3)), (x,), order=2, modes=["rev"])
    x32 = x.astype(np.float32)
    f = lambda v: cnnjax.spectral_pool(v, (4, 3))  # noqa: E731
    np.testing.assert_allclose(jax.jit(f)(x32), f(x32), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(lambda v: f(v[None])[0])(x32), f(x32), rtol=1e-5,
                               atol=1e-6)
    assert f(x32).dtype == jnp.float32
    assert cnnjax.spectral_pool(x32.astype(jnp.bfloat16), (4, 3)).dtype == jnp.bfloat16


def _spectrum(y):
    return np.fft.fftn(np.asarray(y, np.float64), axes=(1, 2))


def test_frequency_dropout_is_a_random_low_pass_mask(impl, rng):
    x = rng.standard_normal((64, 8, 7, 2))
    out, min_keep = (6, 5), (2, 3)
    f = jax.jit(lambda v, k: cnnjax.spectral_pool(v, out, train=True, key=k, min_keep=min_keep))
    y = f(x, jax.random.key(0))
    assert y.shape == (64, 6, 5, 2)
    full = _spectrum(cnnjax.spectral_pool(x, out))
    spec = _spectrum(y)
    seen = set()
    for n in range(x.shape[0]):
        # Per example: the spectrum is the inference spectrum times a 0/1 box mask in
        # |frequency|, the same for every channel, keeping at least min_keep per axis.
        kept = np.abs(spec[n]) > 1e-9 * np.abs(full[n]).max()
        np.testing.assert_allclose(spec[n][kept], full[n][kept], rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(kept[..., 0], kept[..., 1])
        cuts = []
        for axis, m in enumerate(out):
            freq = np.abs(np.where(np.arange(m) <= m // 2, np.arange(m), np.arange(m) - m))
            line = np.any(kept[..., 0], axis=1 - axis)
            r = freq[line].max()
            np.testing.assert_array_equal(line, freq <= r)
            assert min(2 * r + 1, m) >= min_keep[axis]
            cuts.append(r)
        seen.add(tuple(cuts))
    # Over 64 examples, several different cutoffs occur (mask drawn per example).
    assert len(seen) >= 3
    # Same key, same mask; min_keep = output size disables the dropout.
    np.testing.assert_array_equal(f(x, jax.random.key(0)), y)
    np.testing.assert_allclose(
        cnnjax.spectral_pool(x, out, train=True, key=jax.random.key(1), min_keep=out),
        cnnjax.spectral_pool(x, out), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call,match", [
    (lambda: cnnjax.spectral_pool(jnp.ones((1, 4, 4, 1)), (5, 4)),
     r"spectral_pool: output_shape must not be larger than the input spatial shape \(4, 4\), "
     r"got \(5, 4\)"),
    (lambda: cnnjax.spectral_pool(jnp.ones((1, 4, 4, 1)), 2, train=True),
     "spectral_pool: key must be given when train=True"),
    (lambda: cnnjax.spectral_pool(jnp.ones((1, 4, 4, 1)), 2, train=True,
                                  key=jax.random.key(0), min_keep=3),
     "min_keep must be <= output_shape"),
    (lambda: cnnjax.spectral_pool(jnp.ones((1, 4, 4, 1)), 0), "output_shape must be >= 1"),
    (lambda: cnnjax.spectral_pool(jnp.ones((1, 4, 4, 1)), (2, 2, 2)), "output_shape must be"),
    (lambda: cnnjax.spectral_pool(jnp.ones((4, 4)), 2), "spectral_pool: x must have rank"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_reference_is_separable_crop():
    # Sanity of the reference itself on a hand example: cos with one cycle over 8 samples
    # pooled to 4 samples is the same cosine (the lectures' crop of F(x)).
    t = np.arange(8) / 8
    y = ref.spectral(np.cos(2 * np.pi * t)[None, :, None], (4,))
    np.testing.assert_allclose(y[0, :, 0], [1, 0, -1, 0], atol=1e-12)
