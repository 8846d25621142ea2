"""Tests for cnnjax/nn/_fractional_pool.py: FractionalMaxPool, its RNG and pooling sites."""
import jax
import numpy as np
import pytest

import cnnjax
from cnnjax.nn._fractional_pool import FractionalMaxPool


def test_module_equals_op(rng):
    x = rng.standard_normal((2, 9, 8, 3))
    pool = FractionalMaxPool(window_shape=2, output_shape=(6, 5))
    assert not pool.init(jax.random.key(0), x)
    np.testing.assert_array_equal(pool.apply({}, x),
                                  cnnjax.fractional_max_pool(x, 2, (6, 5), train=False))
    key = jax.random.key(3)
    y = pool.apply({}, x, train=True, rngs={"pool": key})
    # The 'pool' stream is folded by flax; same stream, same draw; another key, another one.
    np.testing.assert_array_equal(y, pool.apply({}, x, train=True, rngs={"pool": key}))
    assert not np.array_equal(y, pool.apply({}, x, train=True,
                                            rngs={"pool": jax.random.key(4)}))
    with pytest.raises(Exception, match="pool"):
        pool.apply({}, x, train=True)  # no 'pool' rng


@pytest.mark.parametrize("site,spatial", [
    ((2, None, "VALID"), (12, 12)), ((2, 2, "VALID"), (7, 9)), ((3, 2, 1), (11, 10)),
    ((3, 2, "SAME"), (8, 7)), ((2, 2, "VALID"), (2, 2)), ((2, 2, "VALID"), (3, 5))])
def test_site_gives_max_pool_output_size(rng, site, spatial):
    x = rng.standard_normal((2, *spatial, 3))
    window, strides, padding = site
    expected = cnnjax.max_pool(x, window, strides, padding).shape
    pool = FractionalMaxPool(site=site)
    for train in (False, True):
        y = pool.apply({}, x, train=train, rngs={"pool": jax.random.key(0)})
        assert y.shape == expected
    # Where the window 3 fits it is kept; at a 2×2 map with output 1 it shrinks to 2.
    if spatial == (12, 12):
        np.testing.assert_array_equal(pool.apply({}, x),
                                      cnnjax.fractional_max_pool(x, 3, 6, train=False))
    if spatial == (2, 2):
        np.testing.assert_array_equal(pool.apply({}, x), cnnjax.max_pool(x, 2))


def test_site_1d_and_3d(rng):
    for shape in [(2, 10, 3), (2, 6, 7, 8, 2)]:
        x = rng.standard_normal(shape)
        y = FractionalMaxPool(site=(2, None, "VALID")).apply({}, x)
        assert y.shape == cnnjax.max_pool(x, 2).shape


@pytest.mark.parametrize("kwargs,match", [
    (dict(), r"FractionalMaxPool: give exactly one of output_shape and site"),
    (dict(output_shape=3, site=(2, 2, "VALID")), r"give exactly one of output_shape and site"),
    (dict(site=(2, 2)), r"FractionalMaxPool: site must be a \(window_shape, strides, padding\) "
                        r"triple, got \(2, 2\)\."),
    (dict(site=(1, 1, 2)), r"FractionalMaxPool: site must not enlarge the input"),
    (dict(output_shape=5), r"fractional_max_pool: output_shape \+ window_shape - 1 must be"),
])
def test_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        FractionalMaxPool(**kwargs).apply({}, np.ones((1, 6, 6, 2)))
