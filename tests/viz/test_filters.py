"""plot_filters: the first-layer filter grid, from a kernel or from a model's variables."""
import numpy as np
import pytest

from cnnjax import viz
from tests.viz._helpers import TinyNet, init, png_shape


def test_mosaic_tiles_each_filter_scaled_to_full_range(rng):
    w = rng.normal(size=(3, 2, 1, 5)) * np.arange(1, 6)  # very different scales per filter
    mosaic = viz.filter_mosaic(w, ncols=5, zoom=1)
    assert mosaic.shape == (1 + 3 + 1, 1 + 5 * (2 + 1))  # one-pixel white gaps
    for f in range(5):
        tile = mosaic[1:4, 1 + 3 * f:3 + 3 * f]
        expected = (w[..., 0, f] - w[..., 0, f].min()) / np.ptp(w[..., 0, f])
        np.testing.assert_allclose(tile, expected, atol=1e-12)


def test_mosaic_rgb_keeps_colour_balance(rng):
    w = rng.normal(size=(2, 2, 3, 4))
    mosaic = viz.filter_mosaic(w, ncols=2, zoom=1)
    assert mosaic.shape == (1 + 2 * 3, 1 + 2 * 3, 3)
    tile = mosaic[1:3, 1:3]  # filter 0, scaled jointly over its 3 channels
    np.testing.assert_allclose(tile, (w[..., 0] - w[..., 0].min()) / np.ptp(w[..., 0]))


def test_mosaic_other_channel_counts_show_the_mean(rng):
    w = rng.normal(size=(2, 2, 5, 1))
    tile = viz.filter_mosaic(w, zoom=1)[1:3, 1:3]
    m = w.mean(axis=2)[..., 0]
    np.testing.assert_allclose(tile, (m - m.min()) / np.ptp(m))


@pytest.mark.parametrize("c_in", [1, 3])
def test_plot_filters_from_kernel(tmp_path, rng, c_in):
    path = viz.plot_filters(rng.normal(size=(5, 5, c_in, 20)), tmp_path / "f.png",
                            figsize=(3, 2), dpi=50)
    assert png_shape(path) == (100, 150)


def test_plot_filters_from_model_variables(tmp_path):
    variables = init(TinyNet(), (8, 8, 1))
    kernel = viz.first_conv_kernel(variables)
    np.testing.assert_array_equal(kernel, variables["params"]["Conv_0"]["kernel"])
    assert kernel.shape == (3, 3, 1, 4)
    path = viz.plot_filters(variables, tmp_path / "f.png", dpi=30)
    h, w = png_shape(path)
    assert w == 6 * 30  # default width 6 inches


def test_errors(tmp_path):
    with pytest.raises(ValueError, match=r"plot_filters: variables must contain a 2-D conv kernel"):
        viz.plot_filters({"params": {"Dense_0": {"kernel": np.ones((3, 4))}}}, tmp_path / "f.png")
    with pytest.raises(ValueError, match=r"plot_filters: kernel must be \[kh, kw, C_in, C_out\]"):
        viz.plot_filters(np.ones((3, 3, 4)), tmp_path / "f.png")
