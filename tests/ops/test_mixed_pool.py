"""Tests for cnnjax/ops/_mixed_pool.py: mixed, stochastic mixed and gated pooling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from tests.reference import pool as ref


def _mixed_ref(x, window, strides, padding, alpha):
    mx = ref.pool(x, "max", window, strides, padding)
    av = ref.pool(x, "avg", window, strides, padding)
    return alpha * mx + (1 - alpha) * av


@pytest.mark.parametrize("spatial,window,strides,padding", [
    ((7,), 3, 2, 1), ((6, 5), 2, None, "VALID"), ((7, 6), 3, 2, "SAME"), ((4, 5, 4), 2, 1, 0)])
def test_mixed_pool_matches_reference(rng, spatial, window, strides, padding):
    x = rng.standard_normal((2, *spatial, 3))
    np.testing.assert_allclose(cnnjax.mixed_pool(x, window, strides, padding, alpha=0.3),
                               _mixed_ref(x, window, strides, padding, 0.3), rtol=1e-12)
    a = np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(cnnjax.mixed_pool(x, window, strides, padding, alpha=a),
                               _mixed_ref(x, window, strides, padding, a), rtol=1e-12)


def test_mixed_pool_lecture_formula():
    x = jnp.asarray([[-1.0, 4, 1, 2], [0, 1, 3, -2], [1, 5, -2, 6], [3, -1, -2, -2]])
    y = cnnjax.mixed_pool(x[None, :, :, None], 2, alpha=0.25)[0, :, :, 0]
    # 0.25 * [[4, 3], [5, 6]] + 0.75 * [[1, 1], [2, 0]]
    np.testing.assert_allclose(y, [[1.75, 1.5], [2.75, 1.5]])


def test_mixed_pool_gradients_wrt_x_and_alpha(rng):
    x = ref.distinct(rng, (2, 4, 6, 3))
    check_grads(lambda v, a: cnnjax.mixed_pool(v, 2, alpha=a), (x, 0.3), order=1,
                modes=["rev"])
    check_grads(lambda v, a: cnnjax.mixed_pool(v, 3, 1, 1, alpha=a),
                (x, np.array([0.2, 0.5, 0.9])), order=1, modes=["rev"])
    # d/dalpha = max - avg, summed over everything.
    g = jax.grad(lambda a: cnnjax.mixed_pool(x, 2, alpha=a).sum())(0.4)
    np.testing.assert_allclose(g, np.sum(ref.pool(x, "max", (2, 2)) - ref.pool(x, "avg", (2, 2))))


def test_traced_alpha_jit_and_vmap(rng):
    x = rng.standard_normal((3, 6, 6, 2)).astype(np.float32)
    f = jax.jit(lambda v, a: cnnjax.mixed_pool(v, 2, alpha=a))
    np.testing.assert_allclose(f(x, jnp.float32(0.7)), cnnjax.mixed_pool(x, 2, alpha=0.7),
                               rtol=1e-6)
    batched = jax.vmap(lambda v: cnnjax.mixed_pool(v[None], 2, alpha=0.7)[0])(x)
    np.testing.assert_allclose(batched, cnnjax.mixed_pool(x, 2, alpha=0.7), rtol=1e-6)
    assert cnnjax.mixed_pool(x, 2, alpha=0.7).dtype == jnp.float32


def test_stochastic_mixed_inference_is_expectation(rng):
    x = rng.standard_normal((2, 6, 6, 3))
    np.testing.assert_allclose(
        cnnjax.stochastic_mixed_pool(x, 2, alpha=0.3, train=False),
        cnnjax.mixed_pool(x, 2, alpha=0.3), rtol=1e-12)


def test_stochastic_mixed_lambda_frequency_matches_alpha(rng):
    # Each (example, channel) is either all max or all average pooling; over 4000 examples
    # the frequency of "max" must be alpha within 0.03 (> 4 standard deviations).
    alpha = np.array([0.2, 0.5, 0.85])
    x = ref.distinct(rng, (4000, 4, 4, 3))
    y = cnnjax.stochastic_mixed_pool(x, 2, alpha=alpha, train=True, key=jax.random.key(0))
    mx = cnnjax.max_pool(x, 2)
    av = cnnjax.avg_pool(x, 2)
    is_max = np.all(np.asarray(y == mx), axis=(1, 2))
    is_avg = np.all(np.asarray(y == av), axis=(1, 2))
    assert np.all(is_max ^ is_avg)  # one or the other, per example and channel
    np.testing.assert_allclose(is_max.mean(axis=0), alpha, atol=0.03)
    # Different keys give different draws; the same key the same draw.
    y2 = cnnjax.stochastic_mixed_pool(x, 2, alpha=alpha, train=True, key=jax.random.key(0))
    np.testing.assert_array_equal(y, y2)


def test_stochastic_mixed_jit_and_grad(rng):
    x = ref.distinct(rng, (2, 4, 4, 2))
    key = jax.random.key(3)
    f = lambda v: cnnjax.stochastic_mixed_pool(v, 2, train=True, key=key)  # noqa: E731
    np.testing.assert_array_equal(jax.jit(f)(x), f(x))
    check_grads(f, (x,), order=1, modes=["rev"])


def _gated_ref(x, gate, window, strides, padding):
    mx = ref.pool(x, "max", window, strides, padding)
    av = ref.pool(x, "avg", window, strides, padding)
    per_channel = gate.ndim == len(window) + 1
    logit = ref.windowed(x, window, strides, padding,
                         fn=lambda vals, ks, c: sum(
                             v * (gate[k + (c,)] if per_channel else gate[k])
                             for v, k in zip(vals, ks)))
    a = 1 / (1 + np.exp(-logit))
    return a * mx + (1 - a) * av


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("spatial,window,strides,padding", [
    ((7,), 3, 2, 1), ((6, 5), 2, None, "VALID"), ((5, 6), (2, 3), 1, "SAME"),
    ((4, 4, 4), 2, None, 0)])
def test_gated_pool_matches_reference(rng, spatial, window, strides, padding, per_channel):
    d = len(spatial)
    w = ref.tup(window, d)
    x = rng.standard_normal((2, *spatial, 3))
    gate = rng.standard_normal(w + (3,) if per_channel else w)
    np.testing.assert_allclose(cnnjax.gated_pool(x, gate, window, strides, padding),
                               _gated_ref(x, gate, w, strides, padding), rtol=1e-12)


def test_gated_pool_gradients(rng):
    x = ref.distinct(rng, (2, 4, 6, 2))
    gate = rng.standard_normal((2, 3, 2))
    check_grads(lambda v, g: cnnjax.gated_pool(v, g, (2, 3)), (x, gate), order=1, modes=["rev"])
    f = jax.jit(lambda v, g: cnnjax.gated_pool(v, g, 2))
    g2 = gate[:2, :2, 0].astype(np.float32)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(f(x32, g2), cnnjax.gated_pool(x32, g2, 2), rtol=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda: cnnjax.mixed_pool(jnp.ones((1, 4, 4, 2)), 2, alpha=1.5),
     r"mixed_pool: alpha must lie in \[0, 1\], got 1.5"),
    (lambda: cnnjax.mixed_pool(jnp.ones((1, 4, 4, 2)), 2, alpha=jnp.array([0.5, -0.1])),
     r"alpha must lie in \[0, 1\]"),
    (lambda: cnnjax.mixed_pool(jnp.ones((1, 4, 4, 2)), 2, alpha=jnp.ones(3) / 2),
     r"alpha must be a scalar or have shape \(2,\)"),
    (lambda: cnnjax.stochastic_mixed_pool(jnp.ones((1, 4, 4, 2)), 2, train=True),
     "stochastic_mixed_pool: key must be given when train=True"),
    (lambda: cnnjax.stochastic_mixed_pool(jnp.ones((1, 4, 4, 2)), 2, alpha=-1, train=False),
     r"alpha must lie in \[0, 1\], got -1"),
    (lambda: cnnjax.gated_pool(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3)), 2),
     r"gated_pool: gate must have shape window_shape \(2, 2\)"),
    (lambda: cnnjax.mixed_pool(jnp.ones((4, 4)), 2, alpha=0.5), "mixed_pool: x must have rank"),
    (lambda: cnnjax.gated_pool(jnp.ones((1, 4, 4, 2)), jnp.ones((2, 2)), 2, padding="full"),
     "'full'"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
