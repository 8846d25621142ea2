"""Tests for cnnjax/nn/_tree_pool.py: TreePool's parameters, initialisation and op."""
import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnjax
from cnnjax.nn._tree_pool import TreePool, average_leaves_init


@pytest.mark.parametrize("depth,window", [(1, 2), (2, 2), (3, (3, 2))])
def test_module_equals_op(rng, depth, window):
    x = jnp.asarray(rng.standard_normal((2, 6, 6, 3)))
    pool = TreePool(window_shape=window, strides=1, padding="SAME", depth=depth,
                    gates_init=fnn.initializers.normal(1.0))
    v = pool.init(jax.random.key(0), x)
    leaves, gates = v["params"]["leaves"], v["params"]["gates"]
    w = tuple(np.broadcast_to(window, 2))
    assert leaves.shape == (2 ** (depth - 1), *w) and leaves.dtype == jnp.float32
    assert gates.shape == (2 ** (depth - 1) - 1, *w)
    expected = cnnjax.tree_pool(x, leaves, gates, window, 1, "SAME")
    for train in (False, True):
        np.testing.assert_allclose(pool.apply(v, x, train=train), expected, rtol=1e-12)
    assert pool.apply(v, x).dtype == x.dtype
    grads = jax.grad(lambda v: jnp.sum(pool.apply(v, x) ** 2))(v)["params"]
    assert all(np.all(np.isfinite(g)) and (g.size == 0 or np.any(g != 0))
               for g in jax.tree.leaves(grads))  # depth 1 has an empty gates array


def test_default_init_starts_near_average_pooling(rng):
    x = jnp.asarray(rng.standard_normal((4, 8, 8, 3)), jnp.float32)
    pool = TreePool(window_shape=2)  # depth 2: the paper's two leaves and one gate
    v = pool.init(jax.random.key(1), x)
    leaves = np.asarray(v["params"]["leaves"])
    np.testing.assert_array_equal(v["params"]["gates"], 0)
    np.testing.assert_allclose(leaves.mean(), 1 / 4, rtol=0.1)
    assert 0.005 < np.std(leaves * 4) < 0.3  # 10% noise around 1/K
    assert not np.allclose(leaves[0], leaves[1])  # the leaves differ, so the gate can learn
    np.testing.assert_allclose(pool.apply(v, x), cnnjax.avg_pool(x, 2), atol=0.1)
    gate_grad = jax.grad(lambda v: jnp.sum(pool.apply(v, x) * x[:, ::2, ::2]))(v)
    assert np.any(gate_grad["params"]["gates"] != 0)
    # The initialiser alone: mean 1/K over many draws.
    draws = average_leaves_init(0.1)(jax.random.key(2), (1000, 3, 3))
    np.testing.assert_allclose(np.mean(draws), 1 / 9, rtol=0.01)


def test_jit_vmap_and_errors(rng):
    x = jnp.asarray(rng.standard_normal((3, 4, 4, 2)))
    pool = TreePool(window_shape=2, depth=3)
    v = pool.init(jax.random.key(0), x)
    eager = pool.apply(v, x)
    np.testing.assert_allclose(jax.jit(pool.apply)(v, x), eager, rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(lambda xi: pool.apply(v, xi[None])[0])(x), eager,
                               rtol=1e-12)
    with pytest.raises(ValueError, match=r"TreePool: depth must be an int >= 1, got 0\."):
        TreePool(depth=0).init(jax.random.key(0), x)
