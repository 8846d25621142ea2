"""Classic kernels: the lectures' matrices, applied with cnnjax.conv to a real photo."""
import numpy as np
import pytest

from cnnjax import viz
from tests.viz._helpers import png_shape


def _correlate_replicate(img, k):
    # Straight from the definition: out[i, j] = sum_{a,b} k[a, b] * x[i + a - 1, j + b - 1]
    # with the border pixels repeated outward.
    padded = np.pad(img, 1, mode="edge")
    out = np.zeros_like(img)
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            out[i, j] = np.sum(k * padded[i:i + 3, j:j + 3])
    return out


def test_classic_kernels_are_the_lectures_matrices():
    # Seed 000, "Multiple filters: intuitive examples" (the blur box of ones, scaled by 1/9).
    k = viz.classic_kernels()
    assert list(k) == ["blur", "edge", "sharpen", "vertical"]
    np.testing.assert_array_equal(k["blur"] * 9, np.ones((3, 3)))
    np.testing.assert_array_equal(k["edge"], [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    np.testing.assert_array_equal(k["sharpen"], [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    np.testing.assert_array_equal(k["vertical"], [[0, 0, 0], [-1, 1, 0], [0, 0, 0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_image(dtype):
    out = viz.apply_classic_kernels(np.full((6, 7), 0.3, dtype))
    for name, y in out.items():
        assert y.dtype == dtype and y.shape == (6, 7)
    np.testing.assert_allclose(out["blur"], 0.3, rtol=1e-6)
    np.testing.assert_allclose(out["sharpen"], 0.3, rtol=1e-6)
    np.testing.assert_allclose(out["edge"], 0.0, atol=1e-6)
    np.testing.assert_allclose(out["vertical"], 0.0, atol=1e-6)


def test_matches_numpy_reference(rng):
    img = rng.uniform(size=(7, 9))
    out = viz.apply_classic_kernels(img)
    for name, k in viz.classic_kernels().items():
        np.testing.assert_allclose(out[name], _correlate_replicate(img, k), atol=1e-12)


def test_vertical_detector_fires_on_vertical_edges():
    img = np.zeros((6, 6))
    img[:, 3:] = 1.0  # a vertical edge between columns 2 and 3
    out = np.asarray(viz.apply_classic_kernels(img)["vertical"])
    np.testing.assert_array_equal(out[:, 3], 1.0)
    np.testing.assert_array_equal(np.delete(out, 3, axis=1), 0.0)
    transposed = np.asarray(viz.apply_classic_kernels(img.T)["vertical"])
    np.testing.assert_array_equal(transposed, 0.0)  # blind to horizontal edges


def test_rgb_uint8_photo_becomes_grey():
    photo = np.zeros((4, 5, 3), np.uint8)
    photo[..., 1] = 255
    out = viz.apply_classic_kernels(photo)
    assert out["blur"].dtype == np.float32
    np.testing.assert_allclose(out["blur"], 0.587, rtol=1e-5)


def test_plot_classic_kernels_on_sample_photo(tmp_path):
    path = viz.plot_classic_kernels(None, tmp_path / "k.png", figsize=(6, 2.5), dpi=40)
    assert path == tmp_path / "k.png"
    assert png_shape(path) == (100, 240)


def test_plot_needs_png_path(tmp_path):
    with pytest.raises(ValueError, match=r"plot_classic_kernels: path must end in '\.png'"):
        viz.plot_classic_kernels(np.ones((8, 8)), tmp_path / "k.jpg")
