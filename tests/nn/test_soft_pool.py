"""Tests for cnnjax/nn/_soft_pool.py: SoftPool and LipPool."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from cnnjax.nn._soft_pool import LipPool, SoftPool


def test_soft_pool_module_equals_op(rng):
    x = rng.standard_normal((2, 7, 6, 3))
    for kw in [dict(window_shape=2), dict(window_shape=3, strides=2, padding=1),
               dict(window_shape=(2, 3), strides=1, padding="SAME")]:
        module = SoftPool(**kw)
        assert module.init(jax.random.key(0), x) == {}
        expected = cnnjax.soft_pool(x, kw["window_shape"], kw.get("strides"),
                                    kw.get("padding", "VALID"))
        for train in (False, True):
            np.testing.assert_array_equal(module.apply({}, x, train=train), expected)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_lip_pool_starts_as_average_pooling_without_padding(rng, d):
    x = rng.standard_normal((2, *(7, 6, 5)[:d], 3))
    module = LipPool(window_shape=3, strides=2, padding=1)
    v = module.init(jax.random.key(0), x)
    assert v["params"]["kernel"].shape == (1,) * d + (3, 3)
    assert v["params"]["bias"].shape == (3,)
    np.testing.assert_array_equal(v["params"]["kernel"], 0)
    np.testing.assert_array_equal(v["params"]["bias"], 0)
    np.testing.assert_allclose(module.apply(v, x),
                               cnnjax.avg_pool(x, 3, 2, 1, count_include_pad=False), rtol=1e-13)
    # ... and differs from average pooling that counts the padding.
    assert not np.allclose(module.apply(v, x), cnnjax.avg_pool(x, 3, 2, 1))


def test_lip_pool_module_equals_op_with_the_conv_logits(rng):
    x = rng.standard_normal((2, 6, 7, 3))
    module = LipPool(window_shape=2)
    v = module.init(jax.random.key(0), x)
    kernel = rng.standard_normal((1, 1, 3, 3))
    bias = rng.standard_normal(3)
    params = {"params": {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}}
    logits = np.einsum("nhwc,cd->nhwd", x, kernel[0, 0]) + bias
    for train in (False, True):
        np.testing.assert_allclose(module.apply(params, x, train=train),
                                   cnnjax.lip_pool(x, logits, 2), rtol=1e-12)
    # Learning signal at init: the logit layer gets a non-zero gradient.
    g = jax.grad(lambda p: jnp.sum(module.apply(p, x) ** 2))(v)
    assert np.abs(g["params"]["kernel"]).max() > 1e-3
    check_grads(lambda k, b: module.apply({"params": {"kernel": k, "bias": b}}, x),
                (kernel, bias), order=1, modes=["rev"])


def test_lip_pool_dtypes_and_jit(rng):
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    module = LipPool(window_shape=2)
    v = module.init(jax.random.key(0), x)
    assert v["params"]["kernel"].dtype == jnp.float32
    y = jax.jit(module.apply)(v, x)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, cnnjax.avg_pool(x, 2), rtol=1e-6)
    assert module.apply(v, x.astype(np.float64)).dtype == jnp.float64
