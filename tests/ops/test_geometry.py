"""Tests of ``conv_output_shape``, ``receptive_field`` and ``conv_matrix``."""
import itertools

import jax
import numpy as np
import pytest

import cnnjax
from tests.reference import conv as ref


@pytest.mark.parametrize("n,k,s,p,expected", [
    (7, 3, 1, 0, 5), (7, 3, 2, 0, 3), (7, 3, 1, 1, 7), (7, 3, 3, 1, 3),  # lecture questions
    (227, 11, 4, 0, 55),  # AlexNet conv1
])
def test_lecture_output_sizes(n, k, s, p, expected):
    assert cnnjax.conv_output_shape((n, n), k, stride=s, padding=p) == (expected, expected)


def test_output_shape_matches_conv_and_formula():
    for n, k, s, p, r in itertools.product((5, 8), (1, 3), (1, 2, 3), (0, 2), (1, 2)):
        if r * (k - 1) + 1 > n + 2 * p:
            continue
        out = cnnjax.conv_output_shape((n,), k, stride=s, padding=p, dilation=r)
        assert out == (ref.output_size(n, k, s, p, r),)
        y = jax.eval_shape(lambda x, w: cnnjax.conv(x, w, stride=s, padding=p, dilation=r),
                           np.ones((1, n, 1)), np.ones((k, 1, 1)))
        assert y.shape[1:-1] == out
    assert cnnjax.conv_output_shape((7, 8), 3, stride=2, padding="SAME") == (4, 4)
    # PyTorch's ceil rule: 6 with k=2, s=2 gives 3 either way; 5 with k=2, s=2 gives 3 with ceil.
    assert cnnjax.conv_output_shape((5,), 2, stride=2, ceil_mode=True) == (3,)
    assert cnnjax.conv_output_shape((5,), 2, stride=2) == (2,)


def test_output_shape_errors():
    with pytest.raises(ValueError, match="conv_output_shape: kernel_size .* is larger"):
        cnnjax.conv_output_shape((3, 3), 5)
    with pytest.raises(ValueError, match="conv_output_shape: stride must be >= 1"):
        cnnjax.conv_output_shape((3, 3), 1, stride=0)
    with pytest.raises(TypeError, match="conv_output_shape: spatial_shape must be a sequence"):
        cnnjax.conv_output_shape(7, 3)


@pytest.mark.parametrize("layers,k", [(1, 3), (4, 3), (3, 5), (2, 7)])
def test_receptive_field_of_stride_one_stacks(layers, k):
    fields = cnnjax.receptive_field([(k, 1, k // 2, 1)] * layers)
    assert [f.size for f in fields] == [1 + (i + 1) * (k - 1) for i in range(layers)]
    assert all(f.jump == 1 and f.start == 0 for f in fields)


def test_receptive_field_start_jump_and_dilation():
    assert cnnjax.receptive_field([(3, 1, 1, 1)])[0].start == 0
    assert cnnjax.receptive_field([(3, 1, 0, 1)])[0].start == 1
    # conv k3 s1 p0, pool k2 s2, conv k3 s1 p0 (dilation 2): sizes 3, 4, 4 + 4*2 = 12.
    fields = cnnjax.receptive_field([(3, 1, 0), (2, 2, 0, 1), (3, 1, 0, 2)])
    assert fields == [cnnjax.ReceptiveField(3, 1, 1.0), cnnjax.ReceptiveField(4, 2, 1.5),
                      cnnjax.ReceptiveField(12, 2, 5.5)]
    # The centre of output j is start + j*jump: check it against the pixels that feed it.
    x = np.zeros((1, 32, 1))
    jac = jax.jit(jax.jacrev(lambda x: _stack(x)[0, :3, 0]))(x)[:, 0, :, 0]
    for j in range(3):
        grad = jac[j]
        support = np.nonzero(grad)[0]
        assert support.max() - support.min() + 1 == fields[-1].size
        assert (support.max() + support.min()) / 2 == fields[-1].start + j * fields[-1].jump


def _stack(x):
    y = cnnjax.conv(x, np.ones((3, 1, 1)))
    y = cnnjax.conv(y, np.ones((2, 1, 1)), stride=2)
    return cnnjax.conv(y, np.ones((3, 1, 1)), dilation=2)


def test_receptive_field_errors():
    with pytest.raises(TypeError, match=r"receptive_field: layers\[0\] must be"):
        cnnjax.receptive_field([(3, 1)])
    with pytest.raises(ValueError, match=r"receptive_field: layers\[1\] needs"):
        cnnjax.receptive_field([(3, 1, 1), (3, 0, 1)])


def test_lecture_conv_matrix_shape():
    w = np.arange(9.0).reshape(3, 3, 1, 1)
    m = cnnjax.conv_matrix(w, (4, 4, 1))
    assert m.shape == (4, 16)
    # Row 0 is the kernel laid on the top-left 3x3 block of the flattened 4x4 image.
    np.testing.assert_array_equal(m[0].reshape(4, 4), np.pad(w[:, :, 0, 0], ((0, 1), (0, 1))))


@pytest.mark.parametrize("shape,k,kw", [
    ((6, 2), 3, dict(stride=2, padding=1)),
    ((5, 4, 4), (2, 3), dict(stride=(1, 2), padding="SAME", dilation=(2, 1), groups=2)),
    ((4, 4, 4), 3, dict(groups=4, padding=[(1, 0), (0, 2)])),
    ((3, 3, 3, 2), 2, dict(padding=1, stride=2)),
])
def test_conv_matrix_times_x_is_conv(rng, shape, k, kw):
    d = len(shape) - 1
    k = (k,) * d if isinstance(k, int) else k
    groups = kw.get("groups", 1)
    w = rng.normal(size=(*k, shape[-1] // groups, 2 * groups))
    x = rng.normal(size=(2, *shape))
    m = cnnjax.conv_matrix(w, shape, **kw)
    y = cnnjax.conv(x, w, impl="xla", **kw)
    for n in range(2):
        np.testing.assert_allclose(m @ x[n].ravel(), y[n].ravel(), rtol=1e-12, atol=1e-12)
    # The transpose of M is conv_transpose (lecture: "transposing the kernel's Toeplitz matrix").
    if kw == dict(stride=2, padding=1):
        yt = cnnjax.conv_transpose(y, np.swapaxes(w, -1, -2), stride=2, padding=1,
                                   output_padding=1)
        np.testing.assert_allclose(yt[0].ravel(), m.T @ y[0].ravel(), rtol=1e-12, atol=1e-12)


def test_conv_matrix_errors():
    with pytest.raises(ValueError, match="conv_matrix: w must have rank 4"):
        cnnjax.conv_matrix(np.ones((3, 1, 1)), (4, 4, 1))
    with pytest.raises(ValueError, match=r"conv_matrix: groups \(2\) must divide C_in \(3\)"):
        cnnjax.conv_matrix(np.ones((3, 3, 1, 2)), (4, 4, 3), groups=2)
    with pytest.raises(ValueError, match="conv_matrix: w \\(kernel\\) .* is larger"):
        cnnjax.conv_matrix(np.ones((5, 5, 1, 1)), (4, 4, 1))
