"""cnnjax.viz plumbing: the optional matplotlib dependency, photos, PNG paths."""
import importlib
import sys

import numpy as np
import pytest

from cnnjax.viz import _common


def test_import_without_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    monkeypatch.delitem(sys.modules, "cnnjax.viz")
    with pytest.raises(ImportError, match=r"pip install cnnjax\[viz\]"):
        importlib.import_module("cnnjax.viz")


def test_sample_photos():
    photos = _common.sample_photos()
    assert photos.shape == (2, 427, 640) and photos.dtype == np.float64
    assert 0.0 <= photos.min() < 0.1 and 0.9 < photos.max() <= 1.0
    small = _common.sample_photos((60, 90))
    assert small.shape == (2, 60, 90)
    # Downscaling averages: the mean brightness is kept.
    np.testing.assert_allclose(small.mean(axis=(1, 2)), photos.mean(axis=(1, 2)), atol=5e-3)


def test_to_grey_uses_luma_weights():
    rgb = np.zeros((1, 3, 3), np.uint8)
    rgb[0, 0, 0] = rgb[0, 1, 1] = rgb[0, 2, 2] = 255
    np.testing.assert_allclose(_common.to_grey(rgb), [[0.299, 0.587, 0.114]])
    with pytest.raises(ValueError, match=r"to_grey: image must be \[H, W\]"):
        _common.to_grey(np.zeros((2, 2, 2)))


def test_png_path_is_checked():
    with pytest.raises(ValueError, match=r"plot_x: path must end in '\.png'"):
        _common.check_png_path("figure.svg", "plot_x")
