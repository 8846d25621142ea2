"""Tests of the ``impl='auto'`` dispatch policy (``_conv_policy.py``) and ``cnnjax.conv_impl``."""
import dataclasses
import itertools

import numpy as np
import pytest

import cnnjax
from cnnjax import conv_impl
from cnnjax.ops._conv_geometry import ConvGeometry
from cnnjax.ops._conv_policy import StaticRule, choose_impl


def test_auto_rule():
    assert conv_impl((8, 32, 32, 16), (3, 3, 16, 32), backend="gpu") == "xla"
    assert conv_impl((8, 32, 32, 32), (3, 3, 32, 32), backend="cpu") == "im2col"
    assert conv_impl((8, 32, 32, 3), (3, 3, 3, 32), backend="cpu") == "im2col"
    assert conv_impl((8, 28, 28, 1), (3, 3, 1, 32), backend="cpu") == "xla_im2col_grad"
    assert conv_impl((8, 32, 32, 16), (3, 3, 16, 32), stride=2, backend="cpu") == "im2col"
    assert conv_impl((8, 64, 64, 3), (11, 11, 3, 8), backend="cpu") == "fft"
    assert conv_impl((8, 64, 64, 3), (11, 11, 3, 8), backend="tpu") == "xla"
    assert conv_impl((8, 32, 32, 16), (3, 3, 1, 16), groups=16, backend="cpu") == "xla"


def test_auto_rule_medium_kernels_use_fft_inside_the_measured_band():
    k5 = dict(padding=2, backend="cpu")
    # LeNet5 conv2: 25 * 196 taps-outputs vs 4 * 18 * 10 frequencies (6.8x), 20 -> 50 channels.
    assert conv_impl((128, 14, 14, 20), (5, 5, 20, 50), **k5) == "fft"
    assert conv_impl((128, 14, 14, 20), (5, 5, 20, 50), padding=2, backend="gpu") == "xla"
    # Too thin (transforms dominate), too wide (AlexNet conv2: the channel product dominates),
    # strided, grouped: not FFT.
    assert conv_impl((128, 28, 28, 1), (5, 5, 1, 20), **k5) == "xla_im2col_grad"
    assert conv_impl((32, 27, 27, 96), (5, 5, 96, 256), **k5) == "im2col"
    assert conv_impl((128, 14, 14, 20), (5, 5, 20, 50), stride=2, **k5) != "fft"
    assert conv_impl((128, 14, 14, 20), (5, 5, 10, 50), groups=2, **k5) != "fft"
    # Large kernels: FFT even for thin layers once r >= 30 (11x11 on 64x64: r = 41.8); a 7x7
    # on the same thin layer (r = 19.5) goes to XLA, whose cost beats im2col's k^2 patches.
    assert conv_impl((16, 64, 64, 16), (11, 11, 16, 16), backend="cpu") == "fft"
    assert conv_impl((16, 64, 64, 16), (7, 7, 16, 16), backend="cpu") == "xla"
    assert conv_impl((128, 26, 26, 32), (7, 7, 32, 32), backend="cpu") == "fft"
    # Small maps with little overlap: 8x8 maps give 5 * 4 * 84 > 25 * 64 -> the direct sum.
    assert conv_impl((128, 8, 8, 32), (5, 5, 32, 32), **k5) == "im2col"


def _geometry(k, padding=0, stride=1, groups=1):
    return ConvGeometry((k, k), (stride, stride), ((padding, padding),) * 2, (1, 1), groups)


def test_every_threshold_is_a_field_that_moves_the_choice():
    default = StaticRule()
    assert [f.name for f in dataclasses.fields(StaticRule)] == [
        "fft_min_kernel", "fft_ratio_large", "fft_ratio_medium", "fft_channel_band",
        "large_kernel", "thin_input_channels"]
    lenet5_conv2 = ((128, 14, 14, 20), (5, 5, 20, 50), _geometry(5, padding=2))
    alexnet_conv2 = ((32, 27, 27, 96), (5, 5, 96, 256), _geometry(5, padding=2))
    thin_k7 = ((16, 64, 64, 16), (7, 7, 16, 16), _geometry(7))
    thin_k5 = ((16, 64, 64, 16), (5, 5, 16, 16), _geometry(5))
    grey = ((8, 28, 28, 1), (3, 3, 1, 32), _geometry(3))
    cases = [  # (layer, changed field, choice with the default, choice with the change)
        (lenet5_conv2, dict(fft_min_kernel=7), "fft", "im2col"),
        (thin_k7, dict(fft_ratio_large=19), "xla", "fft"),
        (lenet5_conv2, dict(fft_ratio_medium=7), "fft", "im2col"),
        (alexnet_conv2, dict(fft_channel_band=(10, 70)), "im2col", "fft"),
        (thin_k5, dict(large_kernel=5), "im2col", "xla"),
        (grey, dict(thin_input_channels=0), "xla_im2col_grad", "im2col"),
    ]
    for layer, change, before, after in cases:
        assert default.choose(*layer, "cpu") == before, change
        assert dataclasses.replace(default, **change).choose(*layer, "cpu") == after, change
        assert dataclasses.replace(default, **change).choose(*layer, "gpu") == "xla", change


def test_choices_are_registered_impls_and_auto_asks_the_static_rule():
    impls = set(cnnjax.CONV_IMPLS) - {"auto"}
    for n, k, c_in, c_out, stride, groups in itertools.product(
            (8, 32), (1, 3, 5, 7, 11), (1, 2, 16), (16, 64), (1, 2), (1, 2)):
        if c_in % groups or k > n:
            continue
        x_shape, w_shape = (4, n, n, c_in), (k, k, c_in // groups, c_out)
        got = conv_impl(x_shape, w_shape, stride=stride, groups=groups, backend="cpu")
        assert got in impls
        geom = _geometry(k, stride=stride, groups=groups)
        assert got == choose_impl(x_shape, w_shape, geom, "cpu")
        assert got == StaticRule().choose(x_shape, w_shape, geom, "cpu")


def test_conv_impl_sees_the_shapes_conv_runs_and_round_trips(rng):
    # Reflect padding pads the input explicitly: the rule sees the same padded sizes as with
    # zero padding (20 -> 24: r = 25 * 400 / (4 * 24 * 13) = 8.0 in the band -> 'fft').
    kw = dict(padding=2, backend="cpu")
    for mode in ("zeros", "reflect", "circular"):
        assert conv_impl((4, 20, 20, 16), (5, 5, 16, 32), padding_mode=mode, **kw) == "fft"
    x = rng.normal(size=(2, 9, 9, 2))
    w = rng.normal(size=(3, 3, 2, 4))
    name = conv_impl(x.shape, w.shape, padding=1, padding_mode="reflect")
    np.testing.assert_array_equal(
        cnnjax.conv(x, w, padding=1, padding_mode="reflect", impl=name),
        cnnjax.conv(x, w, padding=1, padding_mode="reflect", impl="auto"))


@pytest.mark.parametrize("args,kw,exc,match", [
    (((6, 4), (3, 3, 4, 8)), {}, ValueError,
     r"conv_impl: x_shape must be \(N, \*spatial, C_in\) with 1 to 3 spatial dims, got \(6, 4\)"),
    (("abc", (3, 3, 4, 8)), {}, TypeError, r"conv_impl: x_shape must be \(N, \*spatial, C_in\)"),
    (((1, 6, 6, 4.5), (3, 3, 4, 8)), {}, TypeError, r"conv_impl: x_shape must contain ints"),
    (((1, 6, 6, 4), (3, 4, 8)), {}, ValueError, r"conv_impl: w must have rank 4"),
    (((1, 6, 6, 4), (3, 3, 4, 8)), {"groups": 3}, ValueError, r"groups \(3\) must divide"),
    (((1, 6, 6, 4), (7, 7, 4, 8)), {}, ValueError, r"conv_impl: w \(kernel\).*larger"),
    (((1, 6, 6, 4), (3, 3, 4, 8)), {"padding_mode": "mirror"}, ValueError,
     r"conv_impl: padding_mode must be .*'mirror'"),
    (((1, 6, 6, 4), (3, 3, 4, 8)), {"padding": 6, "padding_mode": "reflect"}, ValueError,
     r"conv_impl: padding_mode='reflect' needs padding < input size"),
    (((1, 6, 6, 4), (3, 3, 4, 8)), {"stride": 0}, ValueError, r"conv_impl: stride must be >= 1"),
    (((1, 6, 6, 4), (3, 3, 4, 8)), {"backend": 3}, TypeError, r"conv_impl: backend must be"),
])
def test_conv_impl_bad_input(args, kw, exc, match):
    with pytest.raises(exc, match=match):
        conv_impl(*args, **kw)
