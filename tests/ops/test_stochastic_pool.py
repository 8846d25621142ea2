"""Tests for cnnjax/ops/_stochastic_pool.py (Zeiler & Fergus 2013)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from tests.reference import pool as ref


@pytest.mark.parametrize("spatial,window,strides,padding", [
    ((7,), 3, 2, 1), ((6, 5), 2, None, "VALID"), ((7, 6), 3, 2, "SAME"), ((4, 5, 4), 2, 1, 0)])
def test_inference_matches_reference(rng, spatial, window, strides, padding):
    x = rng.standard_normal((2, *spatial, 3))
    y = cnnjax.stochastic_pool(x, window, strides, padding, train=False)
    expect = ref.windowed(x, ref.tup(window, len(spatial)), strides, padding,
                          fn=lambda vals, ks, c: ref.stochastic_inference(vals))
    np.testing.assert_allclose(y, expect, rtol=1e-12)


def test_sampling_frequencies_match_probabilities():
    # One 2x3 window: relu gives p = [.1, .2, .3, 0, 0, .4]. Over 4000 keys each frequency
    # must be within 0.03 of p (> 4 standard deviations); zero-probability positions never.
    vals = np.array([1.0, 2.0, 3.0, 0.0, -1.0, 4.0])
    x = jnp.asarray(vals.reshape(1, 2, 3, 1))
    keys = jax.random.split(jax.random.key(0), 4000)
    ys = jax.vmap(lambda k: cnnjax.stochastic_pool(x, (2, 3), train=True, key=k))(keys)
    ys = np.asarray(ys).ravel()
    freq = np.array([np.mean(ys == v) for v in np.maximum(vals, 0)])
    freq[3] = freq[4] = 0.0  # both zero entries are the value 0 ...
    assert not np.any(ys == 0)  # ... which a positive window never outputs
    np.testing.assert_allclose(freq, ref.stochastic_probs(vals), atol=0.03)


def test_regions_sample_independently(rng):
    # The same window repeated over 4000 examples with one key: per-region draws.
    vals = np.array([1.0, 3.0, 0.0, 4.0])
    x = jnp.asarray(np.broadcast_to(vals.reshape(1, 2, 2, 1), (4000, 2, 2, 1)))
    ys = np.asarray(cnnjax.stochastic_pool(x, 2, train=True, key=jax.random.key(1))).ravel()
    freq = np.array([np.mean(ys == v) for v in vals])
    np.testing.assert_allclose(freq, vals / vals.sum(), atol=0.03)


def test_training_output_and_gradient_go_to_the_sampled_position(rng):
    x = ref.distinct(rng, (2, 6, 6, 3)) + 0.5  # all positive: every window samples
    key = jax.random.key(2)
    f = lambda v: cnnjax.stochastic_pool(v, 2, train=True, key=key)  # noqa: E731
    y, g = jax.value_and_grad(lambda v: f(v).sum())(x)
    y = f(x)
    # Each output is one of its window's relu values, and the gradient is the indicator of
    # exactly those positions.
    xr = np.maximum(x, 0)
    patches = xr.reshape(2, 3, 2, 3, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 3, 3, 3, 4)
    hits = patches == np.asarray(y)[..., None]
    assert np.all(hits.sum(-1) == 1)
    expect = hits.reshape(2, 3, 3, 3, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(x.shape)
    np.testing.assert_array_equal(g, expect.astype(float))
    np.testing.assert_array_equal(jax.jit(f)(x), y)
    check_grads(f, (x,), order=1, modes=["rev"])


@pytest.mark.parametrize("train", [False, True])
def test_zero_windows_give_zero_and_finite_zero_gradient(train):
    x = jnp.zeros((1, 4, 4, 1)).at[0, 0, 0, 0].set(2.0).at[0, 3, 3, 0].set(-5.0)
    kwargs = dict(train=train, key=jax.random.key(0) if train else None)
    y = cnnjax.stochastic_pool(x, 2, **kwargs)
    g = jax.grad(lambda v: cnnjax.stochastic_pool(v, 2, **kwargs).sum())(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[2.0, 0.0], [0.0, 0.0]])
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(np.asarray(g)[0, 2:, :], 0)
    np.testing.assert_array_equal(np.asarray(g)[0, :, 2:], 0)


def test_inference_gradient_and_transformations(rng):
    x = rng.standard_normal((3, 6, 6, 2))
    check_grads(lambda v: cnnjax.stochastic_pool(v, 3, 1, 1, train=False), (x,), order=1,
                modes=["rev"])
    f = lambda v: cnnjax.stochastic_pool(v, 2, train=False)  # noqa: E731
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(jax.jit(f)(x32), f(x32), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(lambda v: f(v[None])[0])(x32), f(x32), rtol=1e-6)
    assert f(x32).dtype == jnp.float32
    assert cnnjax.stochastic_pool(x32, 2, train=True, key=jax.random.key(0)).dtype == jnp.float32


@pytest.mark.parametrize("call,match", [
    (lambda: cnnjax.stochastic_pool(jnp.ones((1, 4, 4, 1)), 2, train=True),
     "stochastic_pool: key must be given when train=True, got key=None"),
    (lambda: cnnjax.stochastic_pool(jnp.ones((1, 4)), 2, train=False),
     "stochastic_pool: x must have rank"),
    (lambda: cnnjax.stochastic_pool(jnp.ones((1, 4, 4, 1)), 0, train=False),
     "window_shape must be >= 1"),
    (lambda: cnnjax.stochastic_pool(jnp.ones((1, 4, 4, 1)), 2, padding="X", train=False), "'X'"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
