"""Tests of ``cnnjax.im2col`` / ``cnnjax.col2im``."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnjax
from tests.reference import conv as ref

CASES = [  # d, kernel_size, stride, padding, dilation
    (1, 3, 1, "VALID", 1),
    (1, 2, 3, "SAME", 2),
    (2, 3, 1, 1, 1),
    (2, (2, 3), (2, 1), [(1, 0), (0, 2)], (1, 2)),
    (2, 3, 3, "VALID", 1),  # stride > kernel: some pixels are in no window
    (3, 2, 2, "SAME", 1),
]


@pytest.mark.parametrize("d,k,stride,padding,dilation", CASES)
def test_im2col_matches_reference_and_col2im_is_its_adjoint(rng, d, k, stride, padding, dilation):
    x = rng.normal(size=(2,) + (7,) * d + (3,))
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    cols = jax.jit(lambda x: cnnjax.im2col(x, k, **kw))(x)
    np.testing.assert_array_equal(cols, ref.im2col(x, k, **kw))
    c = rng.normal(size=cols.shape)
    back = jax.jit(lambda c: cnnjax.col2im(c, x.shape, k, **kw))(c)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-12)


def test_conv_is_im2col_times_reshaped_kernel(rng):
    x = rng.normal(size=(2, 6, 5, 3))
    w = rng.normal(size=(3, 2, 3, 4))
    kw = dict(stride=(1, 2), padding="SAME", dilation=(2, 1))
    cols = cnnjax.im2col(x, (3, 2), **kw)
    np.testing.assert_allclose(cols @ w.reshape(-1, 4), cnnjax.conv(x, w, impl="xla", **kw),
                               rtol=1e-12, atol=1e-12)


def test_col2im_counts_windows():
    x = jnp.ones((1, 4, 4, 1))
    counts = cnnjax.col2im(cnnjax.im2col(x, 3), x.shape, 3)[0, :, :, 0]
    np.testing.assert_array_equal(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


def test_eager_vmap_and_dtype(rng):
    x = rng.normal(size=(3, 5, 5, 2)).astype(np.float32)
    cols = cnnjax.im2col(x, 2, stride=2, padding=1)
    assert cols.dtype == jnp.float32
    np.testing.assert_array_equal(cols, ref.im2col(x, 2, stride=2, padding=1))
    mapped = jax.vmap(lambda xi: cnnjax.im2col(xi[None], 2, stride=2, padding=1)[0])(x)
    np.testing.assert_array_equal(mapped, cols)
    back = cnnjax.col2im(cols, x.shape, 2, stride=2, padding=1)
    assert back.dtype == jnp.float32
    mapped = jax.vmap(lambda c: cnnjax.col2im(c[None], (1, *x.shape[1:]), 2, stride=2,
                                              padding=1)[0])(cols)
    np.testing.assert_allclose(mapped, back)


def test_bad_input():
    x = np.ones((1, 4, 4, 2))
    with pytest.raises(ValueError, match="im2col: x must have rank"):
        cnnjax.im2col(np.ones((4, 2)), 3)
    with pytest.raises(ValueError, match="im2col: kernel_size .* is larger than the padded input"):
        cnnjax.im2col(x, 5)
    with pytest.raises(ValueError, match="im2col: stride must be >= 1"):
        cnnjax.im2col(x, 3, stride=0)
    with pytest.raises(ValueError, match=r"col2im: cols must have shape \(1, 2, 2, 18\)"):
        cnnjax.col2im(np.ones((1, 2, 2, 9)), x.shape, 3)
    with pytest.raises(ValueError, match="col2im: input_shape must be"):
        cnnjax.col2im(np.ones((1, 2, 2, 18)), (4, 4), 3)
