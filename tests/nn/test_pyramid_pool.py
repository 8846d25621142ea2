"""Tests for cnnjax/nn/_pyramid_pool.py: SpatialPyramidPool equals its op."""
import jax
import numpy as np

import cnnjax
from cnnjax.nn._pyramid_pool import SpatialPyramidPool


def test_module_equals_op(rng):
    for mode in ("max", "avg"):
        pool = SpatialPyramidPool(levels=(1, 3), mode=mode)
        for shape in [(2, 7, 9, 3), (2, 12, 12, 3)]:  # any spatial size, one output length
            x = rng.standard_normal(shape)
            assert not pool.init(jax.random.key(0), x)
            for train in (False, True):
                y = pool.apply({}, x, train=train)
                assert y.shape == (2, 30)
                np.testing.assert_array_equal(
                    y, cnnjax.spatial_pyramid_pool(x, (1, 3), mode=mode))
    x = rng.standard_normal((1, 8, 8, 2))
    np.testing.assert_array_equal(SpatialPyramidPool().apply({}, x),
                                  cnnjax.spatial_pyramid_pool(x, (1, 2, 4)))
