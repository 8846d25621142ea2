"""Tests of ``conv_matrix``: the lecture's Toeplitz matrix, ``M @ x == conv(x)`` and its
transpose ``conv_transpose``."""
import numpy as np
import pytest

import cnnjax


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
