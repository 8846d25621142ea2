"""Tests of the window geometry (``_conv_geometry.py``): ``conv_output_shape`` and the
output-size formula every conv and pooling op uses."""
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
