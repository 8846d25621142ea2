"""Tests for cnnjax/ops/_lp_pool.py: lp_pool and l2_pool."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import cnnjax
from tests.reference import pool as ref


@pytest.mark.parametrize("spatial,window,strides,padding", [
    ((7,), 3, 2, 1),
    ((6, 5), 2, None, "VALID"),
    ((7, 6), 3, 2, "SAME"),
    ((4, 5, 4), 2, 1, 0),
])
@pytest.mark.parametrize("p,weights", [
    (1.0, None), (2.0, None), (3.5, None), (0.5, "gaussian"), (2.0, "array"),
    (np.inf, None), (np.inf, "gaussian")])
def test_lp_pool_matches_reference(rng, spatial, window, strides, padding, p, weights):
    d = len(spatial)
    x = rng.standard_normal((2, *spatial, 3))
    w = (window,) * d if isinstance(window, int) else window
    if weights == "array":
        weights = rng.uniform(0.1, 1.0, w)
        weights.flat[0] = 0.0
        ref_w = weights
    elif weights == "gaussian":
        ref_w = ref.gaussian_window(w)
    else:
        ref_w = None
    y = cnnjax.lp_pool(x, window, strides, padding, p=p, weights=weights)
    np.testing.assert_allclose(y, ref.lp_pool(x, w, strides, padding, p=p, weights=ref_w),
                               rtol=1e-12, atol=1e-14)


def test_l2_pool_is_gaussian_lp2(rng):
    x = rng.standard_normal((2, 6, 6, 2))
    w = ref.gaussian_window((3, 3), sigma=0.9)
    np.testing.assert_allclose(cnnjax.l2_pool(x, 3, 2, 1, sigma=0.9),
                               ref.lp_pool(x, (3, 3), (2, 2), 1, p=2, weights=w), rtol=1e-12)
    # The Gaussian window sums to 1, so a constant map c pools to |c|.
    np.testing.assert_allclose(cnnjax.l2_pool(jnp.full((1, 4, 4, 1), -3.0), 2), 3.0, rtol=1e-6)
    g = ref.gaussian_window((2, 3), sigma=(0.5, 1.0))
    np.testing.assert_allclose(g.sum(), 1.0)
    np.testing.assert_allclose(g, g[::-1, ::-1])  # centred


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_property_lp_pool(data):
    spatial = tuple(data.draw(st.integers(3, 6)) for _ in range(2))
    window = tuple(data.draw(st.integers(1, 3)) for _ in range(2))
    strides = tuple(data.draw(st.integers(1, 3)) for _ in range(2))
    p = data.draw(st.floats(0.5, 8.0))
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).standard_normal((1, *spatial, 2))
    np.testing.assert_allclose(cnnjax.lp_pool(x, window, strides, p=p),
                               ref.lp_pool(x, window, strides, p=p), rtol=1e-10)


def test_large_p_is_finite_and_accurate_in_float32(rng):
    x = rng.uniform(-1e3, 1e3, (2, 6, 6, 3)).astype(np.float32)
    y = cnnjax.lp_pool(x, 2, p=64.0)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, ref.lp_pool(x, (2, 2), p=64), rtol=1e-5)
    g = jax.grad(lambda v, p: cnnjax.lp_pool(v, 2, p=p).sum(), argnums=(0, 1))(x, 64.0)
    assert all(np.all(np.isfinite(a)) for a in g)


@pytest.mark.parametrize("p", [0.5, 1.0, 2.0, 3.0])
def test_all_zero_windows_have_finite_gradients(p):
    x = jnp.zeros((1, 4, 4, 1)).at[0, 0, 0, 0].set(1.0)
    for weights in (None, "gaussian"):
        fn = lambda v, q: cnnjax.lp_pool(v, 2, p=q, weights=weights).sum()  # noqa: E731
        y = cnnjax.lp_pool(x, 2, p=p, weights=weights)
        gx, gp = jax.grad(fn, argnums=(0, 1))(x, p)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(gx)) and np.isfinite(gp)
        np.testing.assert_array_equal(np.asarray(gx)[0, 2:, 2:], 0)


def test_gradients_wrt_x_p_and_weights(rng):
    x = ref.distinct(rng, (1, 4, 6, 2))
    w = rng.uniform(0.2, 1.0, (2, 3))
    check_grads(lambda v, p: cnnjax.lp_pool(v, (2, 3), 1, p=p), (x, 2.5), order=1,
                modes=["rev"])
    check_grads(lambda v, p, ww: cnnjax.lp_pool(v, (2, 3), p=p, weights=ww), (x, 3.0, w),
                order=1, modes=["rev"])
    check_grads(lambda v: cnnjax.l2_pool(v, 2, 1, 1), (x,), order=1, modes=["rev"])


def test_traced_p_matches_static_p_under_jit_and_vmap(rng):
    x = rng.standard_normal((3, 6, 6, 2)).astype(np.float32)
    f = jax.jit(lambda v, p: cnnjax.lp_pool(v, 2, p=p))
    np.testing.assert_allclose(f(x, jnp.float32(3.0)), cnnjax.lp_pool(x, 2, p=3.0), rtol=1e-6)
    np.testing.assert_allclose(f(x, jnp.float32(jnp.inf)), cnnjax.lp_pool(x, 2, p=jnp.inf),
                               rtol=1e-6)
    batched = jax.vmap(lambda v: cnnjax.lp_pool(v[None], 2, p=3.0)[0])(x)
    np.testing.assert_allclose(batched, cnnjax.lp_pool(x, 2, p=3.0), rtol=1e-6)


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_matches_torch_on_nonnegative_input(rng, d, p):
    torch = pytest.importorskip("torch")
    x = np.abs(rng.standard_normal((2, *(7,) * d, 3)))
    fn = getattr(torch.nn.functional, f"lp_pool{d}d")
    t = fn(torch.from_numpy(np.moveaxis(x, -1, 1).copy()), p, 3, 2)
    y = cnnjax.lp_pool(x, 3, 2, p=float(p))
    np.testing.assert_allclose(y, np.moveaxis(t.numpy(), 1, -1), rtol=1e-10)


@pytest.mark.parametrize("call,match", [
    (lambda: cnnjax.lp_pool(jnp.ones((1, 4, 4, 1)), 2, p=0.0), "lp_pool: p must be > 0, got 0.0"),
    (lambda: cnnjax.lp_pool(jnp.ones((1, 4, 4, 1)), 2, p=-1), "p must be > 0, got -1"),
    (lambda: cnnjax.lp_pool(jnp.ones((1, 4, 4, 1)), 2, p=2, weights="box"), "'box'"),
    (lambda: cnnjax.lp_pool(jnp.ones((1, 4, 4, 1)), 2, p=2, weights=jnp.ones(3)),
     "weights must be None, 'gaussian' or an array of shape"),
    (lambda: cnnjax.lp_pool(jnp.ones((1, 4, 4, 1)), 2, p=2, weights=-jnp.ones((2, 2))),
     "non-negative"),
    (lambda: cnnjax.l2_pool(jnp.ones((1, 4, 4, 1)), 2, sigma=0.0),
     "l2_pool: sigma must be positive"),
    (lambda: cnnjax.lp_pool(jnp.ones((4, 4)), 2, p=2), "lp_pool: x must have rank"),
    (lambda: cnnjax.lp_pool(jnp.ones((1, 4, 4, 1)), (2, 2, 2), p=2), "window_shape"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
