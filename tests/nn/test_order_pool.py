"""Tests for cnnjax/nn/_order_pool.py: MinPool and MedianPool equal their ops."""
import jax
import numpy as np
import pytest

import cnnjax
from cnnjax.nn._order_pool import MedianPool, MinPool


@pytest.mark.parametrize("module,op", [
    (MinPool(window_shape=2), lambda x: cnnjax.min_pool(x, 2)),
    (MinPool(window_shape=3, strides=2, padding=1, ceil_mode=True),
     lambda x: cnnjax.min_pool(x, 3, 2, 1, ceil_mode=True)),
    (MedianPool(window_shape=3, strides=1, padding="SAME"),
     lambda x: cnnjax.median_pool(x, 3, 1, "SAME")),
    (MedianPool(window_shape=(2, 3), strides=2, padding=1, padding_mode="circular"),
     lambda x: cnnjax.median_pool(x, (2, 3), 2, 1, padding_mode="circular")),
], ids=["min", "min_ceil", "median", "median_circular"])
def test_module_equals_op(rng, module, op):
    x = rng.standard_normal((2, 6, 7, 3))
    v = module.init(jax.random.key(0), x)
    assert not v  # no parameters
    for train in (False, True):  # deterministic: train is accepted and ignored
        np.testing.assert_array_equal(module.apply({}, x, train=train), op(x))
    np.testing.assert_array_equal(jax.jit(lambda x: module.apply({}, x))(x), op(x))


def test_module_errors_come_from_the_op():
    with pytest.raises(ValueError, match="median_pool: padding_mode must be one of"):
        MedianPool(padding_mode="edge").apply({}, np.ones((1, 4, 4, 1)))
