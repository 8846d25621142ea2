"""Tests of ``cnnjax.conv`` (every impl) against the NumPy reference, PyTorch and the lectures."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import cnnjax
from tests.reference import conv as ref

IMPLS = ("xla", "im2col", "fft")
MODES = ("zeros", "reflect", "replicate", "circular")
# Forward-mode autodiff is not defined for the im2col custom_vjp (documented).
GRAD_MODES = {"xla": ("fwd", "rev"), "im2col": ("rev",), "fft": ("fwd", "rev"), "auto": ("rev",)}


def _jit_conv(**kw):
    """``cnnjax.conv`` jitted with static hyperparameters: one compile per configuration is
    much cheaper than compiling every eager primitive (jit == eager is tested separately)."""
    return jax.jit(lambda x, w, b=None: cnnjax.conv(x, w, b, **kw))


def _grid():
    """strides 1-3 x dilations 1-2 x groups 1/2/C for d = 1, 2, 3, cycling padding forms,
    padding modes and bias so that every value of each meets every impl."""
    cases = []
    paddings = ["VALID", "SAME", 1, "ints", "pairs"]
    for d in (1, 2, 3):
        combos = itertools.product((1, 2, 3), (1, 2), ("1", "2", "C"))
        for i, (s, r, g) in enumerate(combos):
            if d == 3 and i % 3:  # 3-D compiles slowly: a third of the grid, same values
                continue
            cases.append((d, s, r, g, paddings[i % 5], MODES[(i + d) % 4], bool(i % 2)))
    return cases


def _make(rng, d, c_in=4, c_out=6, n=9, k=3, groups=1, batch=2):
    x = rng.normal(size=(batch,) + (n,) * d + (c_in,))
    w = rng.normal(size=(k,) * d + (c_in // groups, c_out))
    b = rng.normal(size=(c_out,))
    return x, w, b


@pytest.mark.parametrize("d,stride,dilation,groups,padding,mode,bias", _grid())
def test_every_impl_matches_reference(rng, d, stride, dilation, groups, padding, mode, bias):
    n = {1: 11, 2: 8, 3: 6}[d]
    c_in = 4
    g = {"1": 1, "2": 2, "C": c_in}[groups]
    x, w, b = _make(rng, d, c_in=c_in, c_out=8, n=n, groups=g)
    pad = {"ints": [1] * d, "pairs": [(2, 1)] + [(0, 1)] * (d - 1)}.get(padding, padding)
    kw = dict(stride=stride, padding=pad, dilation=dilation, groups=g)
    expected = ref.conv(x, w, b if bias else None, padding_mode=mode, **kw)
    for impl in IMPLS:
        y = _jit_conv(padding_mode=mode, impl=impl, **kw)(x, w, b if bias else None)
        assert y.shape == expected.shape, impl
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9, err_msg=impl)


WORKED = [
    ([[1, 0, -1], [-1, 0, 0], [0, 0, 1]], [[-1, 2, 0, 0], [0, 1, 3, -2], [0, 0, -1, 4], [3, -1, -2, -2]]),
    ([[0, 2, 1], [0, 1, -1], [-1, 1, 0]], [[3, 2, 4, -1], [1, 0, 1, 4], [1, 2, 4, 1], [-1, 0, 3, 4]]),
]
IMAGE6 = [[1, 2, 0, 1, 0, 1], [2, 1, 1, 0, 0, 1], [1, 0, 0, 2, 1, 0], [2, 0, 0, 0, 2, 1],
          [0, 1, 1, 2, 0, 2], [1, 0, 1, 0, 1, 1]]


@pytest.mark.parametrize("impl", IMPLS)
def test_lecture_worked_examples(impl):
    x = np.array(IMAGE6, np.float32)[None, :, :, None]
    for f, expected in WORKED:
        y = cnnjax.conv(x, np.array(f, np.float32)[:, :, None, None], impl=impl)
        assert y.dtype == jnp.float32
        # xla/im2col are exact on small integers; the FFT is exact up to float32 round-off.
        np.testing.assert_allclose(y[0, :, :, 0], expected, atol=0 if impl != "fft" else 1e-5)
    binary = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0],
                       [0, 1, 1, 0, 0]], np.float32)[None, :, :, None]
    f = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], np.float32)[:, :, None, None]
    y = cnnjax.conv(binary, f, impl=impl)
    np.testing.assert_allclose(y[0, :, :, 0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]],
                               atol=0 if impl != "fft" else 1e-5)


@pytest.mark.parametrize("stride,pad,expected", [(1, 0, 5), (2, 0, 3), (1, 1, 7), (3, 1, 3)])
def test_lecture_output_sizes(stride, pad, expected):
    x = np.ones((1, 7, 7, 1), np.float32)
    w = np.ones((3, 3, 1, 1), np.float32)
    assert cnnjax.conv(x, w, stride=stride, padding=pad).shape == (1, expected, expected, 1)
    assert ref.output_size(7, 3, stride, pad) == expected


@pytest.mark.parametrize("impl", (*IMPLS, "auto"))  # auto: XLA forward + im2col backward here
@pytest.mark.parametrize("d", [1, 2, 3])
def test_gradients(rng, impl, d):
    x, w, _ = _make(rng, d, c_in=4, c_out=4, n={1: 7, 2: 5, 3: 4}[d], k=2, groups=2)
    kw = dict(stride=2 if d < 3 else 1, padding=1, dilation=1 if d == 3 else 2, groups=2,
              impl=impl)
    check_grads(_jit_conv(**kw), (x, w), order=1, modes=GRAD_MODES[impl])


@pytest.mark.parametrize("impl", IMPLS)
def test_jit_equals_eager_and_vmap_equals_batch(rng, impl):
    x, w, b = _make(rng, 2, c_in=4, c_out=6, n=7, groups=2)
    x, w, b = (a.astype(np.float32) for a in (x, w, b))
    kw = dict(stride=(2, 1), padding="SAME", dilation=(1, 2), groups=2, impl=impl)
    eager = cnnjax.conv(x, w, b, **kw)
    jitted = jax.jit(lambda x, w, b: cnnjax.conv(x, w, b, **kw))(x, w, b)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-5)
    mapped = jax.vmap(lambda xi: cnnjax.conv(xi[None], w, b, **kw)[0])(x)
    np.testing.assert_allclose(mapped, eager, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_dtype_is_kept(rng, impl):
    x, w, b = _make(rng, 1, n=8)
    y32 = cnnjax.conv(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), impl=impl)
    assert y32.dtype == jnp.float32
    assert cnnjax.conv(x, w, impl=impl).dtype == jnp.float64
    y16 = cnnjax.conv(jnp.asarray(x, jnp.bfloat16), jnp.asarray(w, jnp.bfloat16), impl=impl)
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y16, np.float32), ref.conv(x, w), rtol=0.1, atol=0.3)


def test_precision_is_forwarded(rng):
    x, w, _ = _make(rng, 2, n=6)
    x, w = x.astype(np.float32), w.astype(np.float32)
    for impl in IMPLS:
        y = cnnjax.conv(x, w, impl=impl, precision=jax.lax.Precision.HIGHEST)
        np.testing.assert_allclose(y, ref.conv(x, w), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fft_spreads_a_non_finite_input_over_the_whole_output_map(rng, bad):
    # As conv's docstring says: the transforms mix all positions, so one inf/NaN spoils every
    # output of its example in its group's channels; the direct impls only its windows.
    x, w, _ = _make(rng, 2, c_in=4, c_out=4, n=8, groups=2)
    x[0, 2, 3, 0] = bad  # example 0, a channel of group 0 (output channels 0 and 1)
    fft = np.asarray(cnnjax.conv(x, w, groups=2, impl="fft"))
    assert not np.isfinite(fft[0, ..., :2]).any()
    assert np.isfinite(fft[0, ..., 2:]).all() and np.isfinite(fft[1]).all()
    for impl in ("xla", "im2col"):
        direct = np.asarray(cnnjax.conv(x, w, groups=2, impl=impl))
        spoilt = ~np.isfinite(direct[0])
        assert spoilt[0:3, 1:4, :2].all() and spoilt.sum() == 3 * 3 * 2, impl

@settings(max_examples=10, deadline=None)
@given(
    d=st.integers(1, 2),
    n=st.integers(3, 8),
    k=st.integers(1, 3),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    groups=st.sampled_from([1, 2]),
    padding=st.sampled_from(["VALID", "SAME", 0, 1, 2, "pairs"]),
    mode=st.sampled_from(MODES),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_random_arguments(d, n, k, stride, dilation, groups, padding, mode, bias, seed):
    rng = np.random.default_rng(seed)
    x, w, b = _make(rng, d, c_in=2, c_out=4, n=n, k=k, groups=groups, batch=1)
    pad = [(1, 0)] * d if padding == "pairs" else padding
    pairs = ref.pad_pairs(pad, (n,) * d, (k,) * d, (stride,) * d, (dilation,) * d)
    assume(all(dilation * (k - 1) + 1 <= n + lo + hi for lo, hi in pairs))
    if mode == "reflect":
        assume(all(max(p) < n for p in pairs))
    kw = dict(stride=stride, padding=pad, dilation=dilation, groups=groups, padding_mode=mode)
    expected = ref.conv(x, w, b if bias else None, **kw)
    for impl in IMPLS:
        y = _jit_conv(impl=impl, **kw)(x, w, b if bias else None)
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9, err_msg=impl)


# --- PyTorch -----------------------------------------------------------------------------


def _torch_conv(x, w, b, *, stride, padding, dilation, groups, mode):
    torch = pytest.importorskip("torch")
    d = x.ndim - 2
    xt = torch.tensor(np.moveaxis(x, -1, 1))
    wt = torch.tensor(np.transpose(w, (d + 1, d, *range(d))))  # [*k, I, O] -> [O, I, *k]
    fn = getattr(torch.nn.functional, f"conv{d}d")
    layer_pad = padding
    if mode != "zeros":  # PyTorch's Conv*d(padding_mode=...) pads explicitly, then VALID.
        xt = torch.nn.functional.pad(xt, [padding] * (2 * d), mode=mode)
        layer_pad = 0
    y = fn(xt, wt, None if b is None else torch.tensor(b), stride, layer_pad, dilation, groups)
    return np.moveaxis(y.numpy(), 1, -1)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_matches_torch(rng, d, mode):
    pytest.importorskip("torch")
    x, w, b = _make(rng, d, c_in=4, c_out=6, n=7, groups=2)
    kw = dict(stride=2, padding=2, dilation=1, groups=2)
    expected = _torch_conv(x, w, b, mode=mode, **kw)
    for impl in IMPLS:
        y = _jit_conv(padding_mode=mode, impl=impl, **kw)(x, w, b)
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9, err_msg=impl)


def test_matches_torch_depthwise_and_dilated(rng):
    pytest.importorskip("torch")
    x, w, b = _make(rng, 2, c_in=4, c_out=8, n=9, groups=4)
    expected = _torch_conv(x, w, b, stride=1, padding=1, dilation=2, groups=4, mode="zeros")
    for impl in IMPLS:
        y = cnnjax.conv(x, w, b, padding=1, dilation=2, groups=4, impl=impl)
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9, err_msg=impl)


def test_torch_same_matches_odd_kernel(rng):
    # PyTorch 'same' (stride 1, odd kernel) is symmetric, like XLA's SAME in that case.
    torch = pytest.importorskip("torch")
    x, w, b = _make(rng, 2, n=6, k=5)
    xt = torch.tensor(np.moveaxis(x, -1, 1))
    wt = torch.tensor(np.transpose(w, (3, 2, 0, 1)))
    expected = np.moveaxis(torch.nn.functional.conv2d(xt, wt, padding="same").numpy(), 1, -1)
    np.testing.assert_allclose(cnnjax.conv(x, w, padding="SAME"), expected, rtol=1e-9, atol=1e-9)


# --- bad input ---------------------------------------------------------------------------


def _bad_cases():
    x = np.ones((1, 6, 6, 4), np.float32)
    w = np.ones((3, 3, 4, 8), np.float32)
    return [
        (np.ones((6, 4), np.float32), w, {}, ValueError, "conv: x must have rank"),
        (x, np.ones((3, 4, 8), np.float32), {}, ValueError, "conv: w must have rank 4"),
        (x, np.ones((3, 3, 1, 8), np.float32), {"groups": 3}, ValueError, r"groups \(3\)"),
        (x, np.ones((3, 3, 2, 6), np.float32), {"groups": 4}, ValueError,
         r"C_out \(6\)"),
        (x, np.ones((3, 3, 3, 8), np.float32), {"groups": 2}, ValueError,
         r"w.shape\[-2\] must equal C_in // groups"),
        (x, w, {"padding": "FULL"}, ValueError, "conv: padding must be .*'FULL'"),
        (x, w, {"padding_mode": "mirror"}, ValueError, "conv: padding_mode must be .*'mirror'"),
        (x, w, {"impl": "winograd"}, ValueError, "conv: impl must be .*'winograd'"),
        (x, w, {"stride": 0}, ValueError, "conv: stride must be >= 1"),
        (x, w, {"dilation": (1, 0)}, ValueError, "conv: dilation must be >= 1"),
        (x, np.ones((7, 7, 4, 8), np.float32), {}, ValueError, "conv: w \\(kernel\\).*larger"),
        (x, w, {"padding": 6, "padding_mode": "reflect"}, ValueError,
         "padding_mode='reflect' needs padding < input size"),
        (x, w, {"padding": 7, "padding_mode": "circular"}, ValueError,
         "padding_mode='circular' needs padding <= input size"),
        (x, w, {"groups": 1.5}, TypeError, "conv: groups must be a positive int"),
        (np.ones((1, 6, 6, 4), np.int32), w, {}, TypeError, "conv: x must have a floating"),
    ]


@pytest.mark.parametrize("x,w,kw,exc,match", _bad_cases())
def test_bad_input(x, w, kw, exc, match):
    with pytest.raises(exc, match=match):
        cnnjax.conv(x, w, **kw)


def test_bad_bias():
    with pytest.raises(ValueError, match=r"conv: b must have shape \(C_out,\) = \(8,\)"):
        cnnjax.conv(np.ones((1, 6, 6, 4)), np.ones((3, 3, 4, 8)), np.ones((4,)))
