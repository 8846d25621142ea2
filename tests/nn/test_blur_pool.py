"""Tests for cnnjax/nn/_blur_pool.py: BlurPool (with and without a pooling site) and
MaxBlurPool."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from cnnjax.nn._blur_pool import BlurPool, MaxBlurPool
from tests.reference import blur_pool as ref

# Every max-pooling site of the model zoo, plus one padded by half its window.
SITES = [(2, 2, "VALID"), (3, 2, "VALID"), (3, 2, 1), (2, 2, "SAME"), (3, 1, "SAME"),
         (2, None, "VALID"), (2, 2, 1)]


def test_modules_equal_their_ops(rng):
    x = rng.standard_normal((2, 7, 8, 3))
    for module, fn in [
        (BlurPool(), lambda v: cnnjax.blur_pool(v, 3, 2)),
        (BlurPool(window_shape=(4, 2), strides=(1, 3), padding_mode="circular"),
         lambda v: cnnjax.blur_pool(v, (4, 2), (1, 3), padding_mode="circular")),
        (MaxBlurPool(), lambda v: cnnjax.max_blur_pool(v)),
        (MaxBlurPool(window_shape=3, strides=2, filter_size=4, padding_mode="zeros", padding=1),
         lambda v: cnnjax.max_blur_pool(v, 3, 2, filter_size=4, padding_mode="zeros", padding=1)),
    ]:
        variables = module.init(jax.random.key(0), x)
        assert variables == {}  # parameter-free
        for train in (False, True):  # deterministic: train is ignored
            np.testing.assert_array_equal(module.apply({}, x, train=train), fn(x))
        np.testing.assert_array_equal(jax.jit(module.apply)({}, x), fn(x))


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("n", [5, 6, 7, 8])
def test_blur_pool_at_a_site_has_max_pools_output_size(rng, site, n):
    x = rng.standard_normal((1, n, n + 1, 2))
    window, strides, padding = site
    expected = cnnjax.max_pool(x, window, strides, padding).shape
    y = BlurPool(site=site).apply({}, x)
    assert y.shape == expected
    # The blur with the site's stride, cropped (or extended into the padding) to that size.
    s = window if strides is None else strides
    np.testing.assert_allclose(y, ref.blur_pool(x, 3, s, "reflect",
                                                output_shape=expected[1:-1]), rtol=1e-12)
    natural = cnnjax.blur_pool(x, 3, s)
    if all(a <= b for a, b in zip(expected[1:-1], natural.shape[1:-1])):
        np.testing.assert_array_equal(y, natural[:, :expected[1], :expected[2]])


def test_blur_pool_at_a_site_gradients_and_options(rng):
    x = rng.standard_normal((2, 6, 7, 2))
    for site in [(3, 2, 1), (2, 2, 1)]:
        check_grads(lambda v: BlurPool(window_shape=4, site=site).apply({}, v), (x,), order=1,
                    modes=["rev"])
    # A matching explicit stride is fine; filter size and padding mode are the module's own.
    y = BlurPool(window_shape=5, strides=2, padding_mode="replicate", site=(2, 2, 0)).apply({}, x)
    np.testing.assert_allclose(y, ref.blur_pool(x, 5, 2, "replicate", output_shape=(3, 3)),
                               rtol=1e-12)


def test_max_blur_pool_at_every_site_has_max_pools_output_size(rng):
    for site in SITES[:-1]:
        window, strides, padding = site
        for n in (5, 8):
            x = rng.standard_normal((1, n, n, 2))
            y = MaxBlurPool(window_shape=window, strides=window if strides is None else strides,
                            padding=padding).apply({}, x)
            assert y.shape == cnnjax.max_pool(x, window, strides, padding).shape


@pytest.mark.parametrize("module,match", [
    (BlurPool(strides=1, site=(2, 2, 0)),
     r"BlurPool: strides must be None or the site's stride \(2, 2\) when site is given, got 1"),
    (BlurPool(site=(2, 2)), r"BlurPool: site must be a \(window_shape, strides, padding\) triple"),
    (BlurPool(padding_mode="mirror"), "blur_pool: padding_mode must be one of"),
    (BlurPool(site=(2, 2, 0), padding_mode="mirror"), "BlurPool: padding_mode must be one of"),
    (MaxBlurPool(padding=2), "max_blur_pool: padding must be smaller than window_shape"),
])
def test_bad_fields(module, match):
    with pytest.raises((ValueError, TypeError), match=match):
        module.apply({}, jnp.ones((1, 6, 6, 2)))
