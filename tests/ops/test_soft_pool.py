"""Tests for cnnjax/ops/_soft_pool.py: soft_pool (Stergiou et al. 2021) and lip_pool (Gao et
al. 2019)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from tests.reference import soft_pool as ref
from tests.reference.pool import distinct

GEOMETRIES = [
    ((7,), 3, 2, 1),
    ((6, 5), 2, None, "VALID"),
    ((7, 6), 3, 2, "SAME"),
    ((5, 6), (2, 3), (1, 2), ((1, 0), (0, 2))),
    ((4, 5, 4), 2, 1, 0),
    ((4, 3, 5), (3, 2, 2), 2, 1),
]


@pytest.mark.parametrize("spatial,window,strides,padding", GEOMETRIES)
def test_soft_and_lip_match_reference(rng, spatial, window, strides, padding):
    x = rng.standard_normal((2, *spatial, 3))
    logits = 2 * rng.standard_normal(x.shape)
    np.testing.assert_allclose(cnnjax.soft_pool(x, window, strides, padding),
                               ref.soft_pool(x, window, strides, padding), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cnnjax.lip_pool(x, logits, window, strides, padding),
                               ref.lip_pool(x, logits, window, strides, padding), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("spatial,window,strides,padding", GEOMETRIES[:4])
def test_soft_pool_is_lip_pool_of_x_and_lies_between_mean_and_max(rng, spatial, window, strides,
                                                                  padding):
    x = 3 * rng.standard_normal((2, *spatial, 3))
    y = cnnjax.soft_pool(x, window, strides, padding)
    np.testing.assert_allclose(y, cnnjax.lip_pool(x, x, window, strides, padding), rtol=1e-14)
    # Padding excluded: the bounds are the mean and max over the in-input positions.
    mean = cnnjax.avg_pool(x, window, strides, padding, count_include_pad=False)
    top = cnnjax.max_pool(x, window, strides, padding)
    assert np.all(mean <= y + 1e-12) and np.all(y <= top + 1e-12)
    assert np.any(y > mean + 1e-3) and np.any(y < top - 1e-3)


def test_lip_special_cases(rng):
    x = rng.standard_normal((2, 7, 6, 3))
    # Equal logits: the mean of the in-input positions (the LipPool module at init).
    for padding in ("VALID", 1, "SAME"):
        np.testing.assert_allclose(
            cnnjax.lip_pool(x, jnp.full(x.shape, 0.7), 3, 2, padding),
            cnnjax.avg_pool(x, 3, 2, padding, count_include_pad=False), rtol=1e-13)
    # Logits with one dominant position per window select it (a hard attention / max).
    d = distinct(rng, (2, 6, 6, 3))
    np.testing.assert_allclose(cnnjax.lip_pool(d, 1e5 * d, 2), cnnjax.max_pool(d, 2),
                               rtol=1e-12)
    np.testing.assert_allclose(cnnjax.lip_pool(d, -1e5 * d, 2), -cnnjax.max_pool(-d, 2),
                               rtol=1e-12)


def test_stable_for_large_inputs_in_float32(rng):
    x = (distinct(rng, (2, 6, 7, 3)) * 2e4).astype(np.float32)  # in (-1e4, 1e4)
    for padding in ("VALID", 1):
        y = cnnjax.soft_pool(x, 3, 2, padding)
        # Gaps between values are >= 80, so the softmax is one-hot: the window max.
        np.testing.assert_allclose(y, cnnjax.max_pool(x, 3, 2, padding), rtol=1e-6)
        g = jax.grad(lambda v: jnp.sum(cnnjax.soft_pool(v, 3, 2, padding)))(x)
        assert np.all(np.isfinite(g))
        gl = jax.grad(lambda v, lg: jnp.sum(cnnjax.lip_pool(v, lg, 3, 2, padding)),
                      argnums=(0, 1))(x, -x)
        assert all(np.all(np.isfinite(a)) for a in gl)
    xs = np.full((1, 4, 1), 1e4, np.float32)
    xs[0, 1, 0] = -1e4
    assert np.all(np.isfinite(jax.grad(lambda v: cnnjax.soft_pool(v, 2).sum())(xs)))


def test_windows_entirely_in_the_padding_output_zero():
    x = jnp.asarray([[[1.0], [3.0]]], jnp.float64)  # [1, 2, 1]
    y = cnnjax.soft_pool(x, 2, 2, 2)  # windows [-2, -1], [0, 1], [2, 3]
    expected = (np.exp(1) + 3 * np.exp(3)) / (np.exp(1) + np.exp(3))
    np.testing.assert_allclose(y[0, :, 0], [0.0, expected, 0.0], rtol=1e-14)
    g = jax.grad(lambda v, lg: cnnjax.lip_pool(v, lg, 2, 2, 2).sum(), argnums=(0, 1))(x, x)
    assert all(np.all(np.isfinite(a)) for a in g)


def test_gradients(rng):
    x = distinct(rng, (2, 5, 6, 2))
    logits = rng.standard_normal(x.shape)
    check_grads(lambda v: cnnjax.soft_pool(v, 2), (x,), order=1, modes=["rev"])
    check_grads(lambda v: cnnjax.soft_pool(v, 3, 2, 1), (x,), order=1, modes=["rev"])
    check_grads(lambda v, lg: cnnjax.lip_pool(v, lg, (2, 3), 1, ((1, 0), (0, 1))), (x, logits),
                order=1, modes=["rev"])
    x1 = distinct(rng, (2, 7, 2))
    check_grads(lambda v: cnnjax.soft_pool(v, 3, 2, "SAME"), (x1,), order=2, modes=["rev"])


def test_jit_vmap_and_dtypes(rng):
    x = rng.standard_normal((3, 6, 7, 2)).astype(np.float32)
    lg = rng.standard_normal(x.shape).astype(np.float32)
    for f in (lambda v, g: cnnjax.soft_pool(v, 3, 2, 1), lambda v, g: cnnjax.lip_pool(v, g, 2)):
        np.testing.assert_allclose(jax.jit(f)(x, lg), f(x, lg), rtol=1e-6)
        batched = jax.vmap(lambda v, g: f(v[None], g[None])[0])(x, lg)
        np.testing.assert_allclose(batched, f(x, lg), rtol=1e-6)
        assert f(x, lg).dtype == jnp.float32
        y16 = f(x.astype(jnp.bfloat16), lg.astype(jnp.bfloat16))
        assert y16.dtype == jnp.bfloat16
        np.testing.assert_allclose(y16.astype(np.float32), f(x, lg), rtol=3e-2, atol=3e-2)
    # Mixed dtypes promote explicitly (strict promotion is on in the tests).
    assert cnnjax.lip_pool(x, lg.astype(np.float64), 2).dtype == jnp.float64


@pytest.mark.parametrize("call,match", [
    (lambda: cnnjax.lip_pool(jnp.ones((1, 4, 4, 2)), jnp.ones((1, 4, 4, 1)), 2),
     r"lip_pool: logits must have the shape of x \(1, 4, 4, 2\), got \(1, 4, 4, 1\)"),
    (lambda: cnnjax.lip_pool(jnp.ones((1, 4, 4, 2)), jnp.ones((1, 4, 4, 2), jnp.int32), 2),
     "lip_pool: logits must have a floating dtype"),
    (lambda: cnnjax.soft_pool(jnp.ones((1, 4, 4, 1), jnp.int32), 2),
     "soft_pool: x must have a floating dtype"),
    (lambda: cnnjax.soft_pool(jnp.ones((4, 4)), 2), "soft_pool: x must have rank 3 to 5"),
    (lambda: cnnjax.soft_pool(jnp.ones((1, 4, 4, 1)), 5),
     "soft_pool: window_shape .* is larger than the padded input"),
    (lambda: cnnjax.soft_pool(jnp.ones((1, 4, 4, 1)), 2, padding="FULL"),
     "soft_pool: padding must be 'VALID', 'SAME'"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
