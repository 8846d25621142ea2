"""Tests of ``cnnjax.conv_transpose``: reference scatter, VJP of ``conv``, PyTorch."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from tests.reference import conv as ref

IMPLS = ("xla", "im2col", "fft")
CASES = [  # d, stride, padding, output_padding, dilation, groups
    (1, 2, 1, 1, 1, 1),
    (1, 3, 0, 2, 1, 2),
    (1, 1, 0, 1, 2, 1),  # output_padding >= stride is allowed when dilation > stride
    (2, 2, 1, 1, 1, 2),
    (2, (2, 1), (0, 1), (1, 0), (1, 2), 1),
    (2, 1, [(1, 0), (0, 2)], 0, 1, 4),
    (3, 2, 1, 0, 1, 2),
]


def _make(rng, d, stride, groups, n=4, c_in=4, c_out=6, k=3):
    x = rng.normal(size=(2,) + (n,) * d + (c_in,))
    w = rng.normal(size=(k,) * d + (c_in, c_out // groups))
    b = rng.normal(size=(w.shape[-1] * groups,))
    return x, w, b


def _jit(**kw):
    return jax.jit(lambda x, w, b=None: cnnjax.conv_transpose(x, w, b, **kw))


@pytest.mark.parametrize("d,stride,padding,output_padding,dilation,groups", CASES)
def test_matches_reference_and_is_the_vjp_of_conv(rng, d, stride, padding, output_padding,
                                                    dilation, groups):
    c_out = 8 if groups == 4 else 6
    x, w, b = _make(rng, d, stride, groups, c_out=c_out, n=3 if d == 3 else 4, k=2 if d == 3 else 3)
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
              groups=groups)
    expected = ref.conv_transpose(x, w, b, **kw)
    for impl in IMPLS:
        y = _jit(impl=impl, **kw)(x, w, b)
        assert y.shape == expected.shape, impl
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9, err_msg=impl)
    # The adjoint identity: conv_transpose(y, w) is the VJP of conv(., swapaxes(w)) at y.
    y0 = ref.conv_transpose(x, w, **kw)
    w_fwd = jnp.swapaxes(w, -1, -2)
    conv_kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out, vjp = jax.vjp(lambda z: cnnjax.conv(z, w_fwd, **conv_kw), jnp.zeros(y0.shape))
    # conv of the transposed output shape may have extra (zero-cotangent) high-side outputs.
    cot = jnp.pad(jnp.asarray(x), [(0, 0)] + [(0, m - n) for m, n in
                                             zip(out.shape[1:-1], x.shape[1:-1])] + [(0, 0)])
    np.testing.assert_allclose(vjp(cot)[0], y0, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("impl", IMPLS)
def test_gradients(rng, impl):
    x, w, b = _make(rng, 2, 2, 2, n=3, c_in=2, c_out=4, k=2)
    kw = dict(stride=2, padding=1, output_padding=1, groups=2, impl=impl)
    check_grads(_jit(**kw), (x, w, b), order=1, modes=("rev",))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_matches_torch(rng, d):
    torch = pytest.importorskip("torch")
    x, w, b = _make(rng, d, 2, 2)
    kw = dict(stride=2, padding=1, output_padding=1, dilation=2, groups=2)
    fn = getattr(torch.nn.functional, f"conv_transpose{d}d")
    wt = torch.tensor(np.transpose(w, (d, d + 1, *range(d))))  # [*k, I, O/G] -> [I, O/G, *k]
    expected = fn(torch.tensor(np.moveaxis(x, -1, 1)), wt, torch.tensor(b), kw["stride"],
                  kw["padding"], kw["output_padding"], kw["groups"], kw["dilation"])
    expected = np.moveaxis(expected.numpy(), 1, -1)
    for impl in IMPLS:
        y = _jit(impl=impl, **kw)(x, w, b)
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9, err_msg=impl)


def test_jit_vmap_and_dtype(rng):
    x, w, b = (a.astype(np.float32) for a in _make(rng, 2, 2, 1, n=3))
    kw = dict(stride=2, padding=1, output_padding=1)
    eager = cnnjax.conv_transpose(x, w, b, **kw)
    assert eager.dtype == jnp.float32 and eager.shape == (2, 6, 6, 6)
    np.testing.assert_allclose(_jit(**kw)(x, w, b), eager, rtol=1e-5, atol=1e-5)
    mapped = jax.vmap(lambda xi: cnnjax.conv_transpose(xi[None], w, b, **kw)[0])(x)
    np.testing.assert_allclose(mapped, eager, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(stride=2, output_padding=2), ValueError,
     "conv_transpose: output_padding must be smaller than max\\(stride, dilation\\)"),
    (dict(groups=3), ValueError, r"groups \(3\) must divide the input channels C_in \(4\)"),
    (dict(padding="SAME"), ValueError, "conv_transpose: padding must be .*'SAME'"),
    (dict(padding=5), ValueError, "conv_transpose: padding 5 crops the output"),
    (dict(stride=0), ValueError, "conv_transpose: stride must be >= 1"),
    (dict(impl="direct"), ValueError, "conv_transpose: impl must be .*'direct'"),
])
def test_bad_input(kw, exc, match):
    with pytest.raises(exc, match=match):
        cnnjax.conv_transpose(np.ones((1, 3, 3, 4)), np.ones((3, 3, 4, 2)), **kw)


def test_bad_kernel():
    with pytest.raises(ValueError, match=r"conv_transpose: w.shape\[-2\] must equal C_in = 4"):
        cnnjax.conv_transpose(np.ones((1, 3, 3, 4)), np.ones((3, 3, 2, 2)))
    with pytest.raises(ValueError, match="conv_transpose: w must have rank 4"):
        cnnjax.conv_transpose(np.ones((1, 3, 3, 4)), np.ones((3, 4, 2)))
