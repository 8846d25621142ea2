"""pooling_information: Rippel et al. 2015, Fig. 4 — spectral pooling keeps more information."""
import jax.numpy as jnp
import numpy as np
import pytest

from cnnjax import viz
from tests.viz._helpers import png_shape

RATIOS = (1 / 4, 1 / 9, 1 / 16, 1 / 64)


@pytest.fixture(scope="module")
def photos():
    # scikit-learn's two sample photos in grey, downscaled (and 240 x 360 is divisible by
    # every window used here).
    return viz.sample_photos((240, 360)).astype(np.float32)


@pytest.fixture(scope="module")
def info(photos):
    return viz.pooling_information(photos, RATIOS)


def test_spectral_keeps_more_than_max_at_every_ratio(info):
    # The paper's claim (and the lectures': "preserves considerably more information").
    for i, ratio in enumerate(info["ratios"]):
        assert info["errors"]["spectral"][i] < info["errors"]["max"][i], ratio
        # ... and more than the other spatial pools too.
        assert info["errors"]["spectral"][i] < info["errors"]["avg"][i], ratio
        assert info["errors"]["spectral"][i] < info["errors"]["lp"][i], ratio


def test_bookkeeping(info):
    assert info["windows"] == [2, 3, 4, 8]
    np.testing.assert_allclose(info["kept"], RATIOS)
    for m in ("spectral", "max", "avg", "lp"):
        errs = np.asarray(info["errors"][m])
        assert np.all((errs > 0) & (errs < 1))
        # Keeping fewer values can only lose information (these windows nest or nearly do).
        assert np.all(np.diff(errs) > 0), m


def _error(x, x_hat):
    return np.linalg.norm(x - x_hat) / np.linalg.norm(x)


def test_reconstructions_are_exact_on_their_own_signal_class(rng):
    # Blocky images are rebuilt exactly by avg/max/Lp pooling + nearest upsampling ...
    blocks = rng.uniform(0.1, 1.0, size=(2, 3, 4, 1))
    x = np.repeat(np.repeat(blocks, 3, axis=1), 3, axis=2)  # [2, 9, 12, 1]
    for m in ("max", "avg", "lp"):
        x_hat = np.asarray(viz.pooling_reconstruction(x, 3, m, p=3.0))
        np.testing.assert_allclose(x_hat, x, rtol=1e-10, err_msg=m)
    # ... and band-limited ones by spectral pooling + zero-padded inverse DFT.
    i, j = np.meshgrid(np.arange(12), np.arange(16), indexing="ij")
    smooth = 1 + 0.3 * np.cos(2 * np.pi * i / 12) + 0.2 * np.sin(2 * np.pi * 2 * j / 16 + 0.4)
    x = smooth[None, :, :, None]
    x_hat = np.asarray(viz.pooling_reconstruction(x, 2, "spectral"))
    np.testing.assert_allclose(x_hat, x, atol=1e-10)
    assert _error(x, np.asarray(viz.pooling_reconstruction(x, 2, "max"))) > 1e-2


def test_reconstruction_reference(rng):
    # Spectral: the reconstruction is the projection onto the kept (low) frequencies, computed
    # here directly from the definition on odd sizes (no Nyquist ambiguity).
    x = rng.uniform(size=(1, 15, 21, 1))
    x_hat = np.asarray(viz.pooling_reconstruction(x, 3, "spectral"))
    spec = np.fft.fft2(x[0, :, :, 0])
    fy = np.abs(np.fft.fftfreq(15, 1 / 15))
    fx = np.abs(np.fft.fftfreq(21, 1 / 21))
    mask = (fy[:, None] <= 2) & (fx[None, :] <= 3)  # 5 x 7 lowest frequencies
    expected = np.fft.ifft2(spec * mask).real
    np.testing.assert_allclose(x_hat[0, :, :, 0], expected, atol=1e-10)
    # Max: each k x k block takes its maximum (nearest upsampling).
    x_hat = np.asarray(viz.pooling_reconstruction(x, 3, "max"))
    blocks = x[0, :, :, 0].reshape(5, 3, 7, 3).max(axis=(1, 3))
    np.testing.assert_allclose(x_hat[0, :, :, 0], np.kron(blocks, np.ones((3, 3))))


def test_keeps_dtype():
    x = jnp.ones((1, 8, 8, 1), jnp.float32)
    for m in ("spectral", "max", "avg", "lp"):
        assert viz.pooling_reconstruction(x, 2, m).dtype == jnp.float32


def test_plot(tmp_path, photos):
    # Same photos and ratios as `info`: the error programs are already compiled.
    path = viz.plot_pooling_information(photos, (1 / 4, 1 / 16), tmp_path / "p.png",
                                        figsize=(6, 2.5), dpi=40)
    assert png_shape(path) == (100, 240)


def test_errors(photos):
    with pytest.raises(ValueError, match=r"pooling_information: ratios must be 1/k\*\*2"):
        viz.pooling_information(photos, [0.3])
    with pytest.raises(ValueError,
                       match=r"pooling_information: ratios must be numbers in \(0, 1\)"):
        viz.pooling_information(photos, [1.0])
    with pytest.raises(ValueError, match=r"pooling_information: images must be greyscale"):
        viz.pooling_information(np.ones((2, 8, 8, 3)), [1 / 4])
    with pytest.raises(ValueError, match=r"pooling_information: methods must be one of"):
        viz.pooling_information(photos, [1 / 4], methods=["median"])
    with pytest.raises(ValueError, match=r"plot_pooling_information: show_ratio must be one of"):
        viz.plot_pooling_information(photos, [1 / 4], "x.png", show_ratio=1 / 9)
