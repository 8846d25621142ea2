"""Tests for cnnjax/ops/_adaptive_pool.py: adaptive and global pooling."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from tests.reference import pool as ref

CASES = [((7,), (3,)), ((8,), (4,)), ((5,), (5,)), ((7, 6), (3, 4)), ((9, 5), (4, 1)),
         ((5, 7, 6), (2, 3, 4))]


@pytest.mark.parametrize("spatial,out", CASES)
def test_matches_reference(rng, spatial, out):
    x = rng.standard_normal((2, *spatial, 3))
    np.testing.assert_allclose(cnnjax.adaptive_avg_pool(x, out), ref.adaptive(x, out, "avg"),
                               rtol=1e-12)
    np.testing.assert_array_equal(cnnjax.adaptive_max_pool(x, out), ref.adaptive(x, out, "max"))


@pytest.mark.parametrize("spatial,out", CASES)
def test_matches_torch(rng, spatial, out):
    torch = pytest.importorskip("torch")
    d = len(spatial)
    x = rng.standard_normal((2, *spatial, 3))
    tx = torch.from_numpy(np.moveaxis(x, -1, 1).copy())
    F = torch.nn.functional
    for name, fn in (("avg", cnnjax.adaptive_avg_pool), ("max", cnnjax.adaptive_max_pool)):
        t = getattr(F, f"adaptive_{name}_pool{d}d")(tx, out)
        np.testing.assert_allclose(fn(x, out), np.moveaxis(t.numpy(), 1, -1), rtol=1e-12)


def test_global_pools(rng):
    for spatial in ((5,), (4, 3), (2, 3, 4)):
        x = rng.standard_normal((2, *spatial, 3))
        axes = tuple(range(1, len(spatial) + 1))
        np.testing.assert_allclose(cnnjax.global_avg_pool(x), x.mean(axis=axes), rtol=1e-12)
        np.testing.assert_array_equal(cnnjax.global_max_pool(x), x.max(axis=axes))
        # Global pooling is adaptive pooling to size 1.
        np.testing.assert_allclose(cnnjax.adaptive_avg_pool(x, 1).reshape(2, 3),
                                   cnnjax.global_avg_pool(x), rtol=1e-12)
    x32 = jnp.ones((2, 3, 3, 4), jnp.float32)
    assert cnnjax.global_avg_pool(x32).shape == (2, 4)
    assert cnnjax.global_max_pool(x32).dtype == jnp.float32


def test_gradients_and_transformations(rng):
    x = ref.distinct(rng, (2, 7, 5, 2))
    for fn in (cnnjax.adaptive_avg_pool, cnnjax.adaptive_max_pool):
        check_grads(lambda v: fn(v, (3, 2)), (x,), order=1, modes=["rev"])
        x32 = x.astype(np.float32)
        np.testing.assert_array_equal(jax.jit(lambda v: fn(v, (3, 2)))(x32), fn(x32, (3, 2)))
        np.testing.assert_allclose(jax.vmap(lambda v: fn(v[None], (3, 2))[0])(x32),
                                   fn(x32, (3, 2)), rtol=1e-6)
        assert fn(x32, (3, 2)).dtype == jnp.float32
    check_grads(cnnjax.global_avg_pool, (x,), order=2, modes=["rev"])
    check_grads(cnnjax.global_max_pool, (x,), order=1, modes=["rev"])


@pytest.mark.parametrize("call,match", [
    (lambda: cnnjax.adaptive_avg_pool(jnp.ones((1, 4, 4, 1)), (5, 4)),
     r"adaptive_avg_pool: output_shape must not be larger than the input spatial shape"),
    (lambda: cnnjax.adaptive_max_pool(jnp.ones((1, 4, 4, 1)), (2, 2, 2)),
     "adaptive_max_pool: output_shape must be"),
    (lambda: cnnjax.adaptive_max_pool(jnp.ones((1, 4, 4, 1)), 0), "output_shape must be >= 1"),
    (lambda: cnnjax.global_avg_pool(jnp.ones((4, 4))), "global_avg_pool: x must have rank"),
    (lambda: cnnjax.global_max_pool(jnp.ones((1, 2, 2, 2, 2, 2, 1))), "global_max_pool: x must"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_global_max_tie_gradient_goes_to_one_element():
    x = jnp.ones((2, 5, 3, 4))
    g = np.asarray(jax.grad(lambda v: cnnjax.global_max_pool(v).sum())(x))
    np.testing.assert_array_equal(g.sum(axis=(1, 2)), 1.0)
    np.testing.assert_array_equal(np.count_nonzero(g, axis=(1, 2)), 1)
