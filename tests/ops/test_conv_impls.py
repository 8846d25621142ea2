"""Tests of the convolution impl registry (``_conv_impls.py``): every name, what ``'auto'``
dispatches to, and the error for an unknown name."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from cnnjax.ops import _conv_impls
from tests.reference import conv as ref

UNKNOWN = "impl must be one of 'auto', 'xla', 'im2col', 'fft', 'xla_im2col_grad', got 'winograd'"


def _make(rng, d, c_in=4, c_out=6, n=9, k=3, groups=1, batch=2):
    x = rng.normal(size=(batch,) + (n,) * d + (c_in,))
    w = rng.normal(size=(k,) * d + (c_in // groups, c_out))
    b = rng.normal(size=(c_out,))
    return x, w, b


def _spy(monkeypatch):
    """Records the name of every registered impl (other than 'auto') that runs."""
    calls = []
    for name, impl in list(_conv_impls._REGISTRY.items()):
        if name != "auto":
            spy = (lambda fn, name: lambda *a: calls.append(name) or fn(*a))(impl.fn, name)
            monkeypatch.setitem(_conv_impls._REGISTRY, name, impl._replace(fn=spy))
    return calls


def test_the_registry_names_and_describes_every_impl():
    assert cnnjax.CONV_IMPLS == ("auto", "xla", "im2col", "fft", "xla_im2col_grad")
    assert cnnjax.ops.CONV_IMPLS is cnnjax.CONV_IMPLS
    for name in cnnjax.CONV_IMPLS:
        description = _conv_impls._REGISTRY[name].description
        assert description and "\n" not in description, name


@pytest.mark.parametrize("d,stride,dilation,groups,padding,mode", [
    (1, 2, 1, 1, "SAME", "zeros"),
    (2, 1, 2, 2, [(2, 1), (0, 1)], "reflect"),
    (2, 3, 1, 4, 1, "circular"),
    (3, 1, 1, 2, "VALID", "replicate"),
])
def test_every_registered_impl_matches_reference(rng, d, stride, dilation, groups, padding,
                                                 mode):
    x, w, b = _make(rng, d, c_in=4, c_out=8, n={1: 11, 2: 8, 3: 5}[d], groups=groups)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              padding_mode=mode)
    expected = ref.conv(x, w, b, **kw)
    for impl in cnnjax.CONV_IMPLS:
        y = jax.jit(lambda x, w, b, impl=impl: cnnjax.conv(x, w, b, impl=impl, **kw))(x, w, b)
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9, err_msg=impl)


def test_hybrid_gradients_and_transpose(rng):
    x, w, b = _make(rng, 2, c_in=2, c_out=4, n=6, groups=2)
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    f = jax.jit(lambda x, w: cnnjax.conv(x, w, impl="xla_im2col_grad", **kw))
    check_grads(f, (x, w), order=1, modes=("rev",))
    y = cnnjax.conv(x, w, impl="xla", **kw)
    wt = np.swapaxes(w, -1, -2)
    expected = ref.conv_transpose(y, wt, stride=2, padding=1, output_padding=1, groups=2)
    got = cnnjax.conv_transpose(y, wt, stride=2, padding=1, output_padding=1, groups=2,
                                impl="xla_im2col_grad")
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_auto_dispatches_to_the_chosen_impl(rng, monkeypatch):
    calls = _spy(monkeypatch)
    for c_in in (1, 4):  # the hybrid (XLA forward, im2col backward) and the im2col rule
        x, w, b = _make(rng, 2, c_in=c_in, n=5, batch=1)
        y, grads = jax.value_and_grad(
            lambda x, w: jnp.sum(jnp.sin(cnnjax.conv(x, w, b, impl="auto"))), (0, 1))(x, w)
        assert calls[-1] == cnnjax.conv_impl(x.shape, w.shape)
        want = jax.grad(lambda x, w: jnp.sum(jnp.sin(cnnjax.conv(x, w, b, impl="xla"))),
                        (0, 1))(x, w)
        for a, e in zip(grads, want):
            np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-9)
    assert calls[::2] == ["xla_im2col_grad", "im2col"]  # odd entries: the 'xla' references


def test_auto_transpose_runs_the_impl_of_the_matching_forward_conv(rng, monkeypatch):
    calls = _spy(monkeypatch)
    x = rng.normal(size=(2, 4, 4, 8))
    w = rng.normal(size=(3, 3, 8, 2))  # [*k, C_in, C_out // groups], groups = 2
    y = cnnjax.conv_transpose(x, w, stride=2, padding=1, output_padding=1, groups=2)
    # The forward conv maps the output [2, 8, 8, 4] back to x with kernel [3, 3, 2, 8].
    assert calls == [cnnjax.conv_impl(y.shape, (3, 3, 2, 8), stride=2, padding=1, groups=2)]


def test_unknown_impl_raises_one_sentence_listing_every_name():
    x = np.ones((1, 6, 6, 4), np.float32)
    with pytest.raises(ValueError, match=f"^conv: {UNKNOWN}.$"):
        cnnjax.conv(x, np.ones((3, 3, 4, 8), np.float32), impl="winograd")
    with pytest.raises(ValueError, match=f"^conv_transpose: {UNKNOWN}.$"):
        cnnjax.conv_transpose(x, np.ones((3, 3, 4, 2), np.float32), impl="winograd")
