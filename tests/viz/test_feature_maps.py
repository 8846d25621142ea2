"""plot_feature_maps: activations after each conv/pool stage, on a real digit."""
import jax.numpy as jnp
import numpy as np
import pytest

import cnnjax
from cnnjax import viz
from tests.viz._helpers import TinyNet, init, png_shape


@pytest.fixture(scope="module")
def digit():
    from cnnjax import data

    return data.load("digits", "test").images[0]  # uint8 [8, 8, 1], shipped with the package


def test_feature_maps_are_the_stage_outputs(digit):
    model = TinyNet()
    variables = init(model, (8, 8, 1))
    maps = viz.feature_maps(model, variables, digit)
    assert [(name, m.shape) for name, m in maps] == [
        ("Conv_0 (Conv)", (8, 8, 4)), ("MaxPool_0 (MaxPool)", (4, 4, 4)),
        ("Conv_1 (Conv)", (2, 2, 6)), ("AvgPool_0 (AvgPool)", (1, 1, 6))]
    # Recompute the first two stages by hand from the parameters.
    p = variables["params"]
    x = jnp.asarray(digit, jnp.float32)[None] / 255.0
    c0 = cnnjax.conv(x, p["Conv_0"]["kernel"], p["Conv_0"]["bias"], padding=1)[0]
    np.testing.assert_allclose(maps[0][1], c0, rtol=1e-5, atol=1e-6)
    r = np.maximum(np.asarray(c0), 0.0)
    pooled = r.reshape(4, 2, 4, 2, 4).max(axis=(1, 3))
    np.testing.assert_allclose(maps[1][1], pooled, rtol=1e-5, atol=1e-6)


def test_plot_feature_maps(tmp_path, digit):
    model = TinyNet()
    variables = init(model, (8, 8, 1))
    path = viz.plot_feature_maps(model, variables, digit, tmp_path / "m.png", max_channels=3,
                                 figsize=(4, 5), dpi=30)
    assert png_shape(path) == (150, 120)
    # Default size: one row per stage plus the input row, max_channels + 1 columns.
    path = viz.plot_feature_maps(model, variables, digit, tmp_path / "d.png", max_channels=2,
                                 dpi=20)
    assert png_shape(path) == (round(20 * (1.3 * 5 + 0.5)), round(20 * 1.3 * 3))


def test_errors(tmp_path, digit):
    import flax.linen as fnn

    class NoConv(fnn.Module):
        @fnn.compact
        def __call__(self, x, *, train):
            return fnn.Dense(2)(x.reshape(x.shape[0], -1))

    model = NoConv()
    variables = init(model, (8, 8, 1))
    with pytest.raises(ValueError, match=r"plot_feature_maps: model must contain conv or pooling"):
        viz.plot_feature_maps(model, variables, digit, tmp_path / "m.png")
    with pytest.raises(TypeError, match=r"plot_feature_maps: model must be a flax.linen.Module"):
        viz.feature_maps(lambda x: x, {}, digit)
    with pytest.raises(ValueError, match=r"plot_feature_maps: image must be \[H, W\]"):
        viz.feature_maps(TinyNet(), init(TinyNet(), (8, 8, 1)), np.zeros((2, 8, 8, 1)))
