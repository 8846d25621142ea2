"""Tests of ``receptive_field``: sizes, jumps and starts, checked against conv gradients."""
import jax
import numpy as np
import pytest

import cnnjax


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
