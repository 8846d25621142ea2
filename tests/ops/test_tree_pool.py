"""Tests for cnnjax/ops/_tree_pool.py: tree pooling (Lee et al. 2016)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from tests.reference import tree_pool as ref
from tests.reference.pool import distinct


def _filters(rng, depth, window, scale=1.0):
    num_leaves = 2 ** (depth - 1)
    return (scale * rng.standard_normal((num_leaves, *window)),
            scale * rng.standard_normal((num_leaves - 1, *window)))


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("spatial,window,strides,padding", [
    ((7,), (3,), 2, 1), ((6, 5), (2, 2), None, "VALID"), ((5, 6), (2, 3), 1, "SAME"),
    ((4, 4, 5), (2, 2, 2), None, [(0, 0), (0, 0), (1, 0)])])
def test_matches_reference(rng, depth, spatial, window, strides, padding):
    x = rng.standard_normal((2, *spatial, 3))
    leaves, gates = _filters(rng, depth, window)
    np.testing.assert_allclose(cnnjax.tree_pool(x, leaves, gates, window, strides, padding),
                               ref.tree_pool(x, leaves, gates, window, strides, padding),
                               rtol=1e-12, atol=1e-12)


def test_paper_special_cases(rng):
    x = rng.standard_normal((2, 6, 6, 3))
    k = 4
    # Every leaf the average filter: average pooling, whatever the gates.
    avg = np.full((2, 2, 2), 1 / k)
    np.testing.assert_allclose(cnnjax.tree_pool(x, avg, rng.standard_normal((1, 2, 2)), 2),
                               cnnjax.avg_pool(x, 2), rtol=1e-12)
    # Depth 1: one leaf, no gate — a learned linear pooling filter (a depthwise conv with one
    # filter shared by all channels).
    w = rng.standard_normal((2, 2))
    conv = sum(w[a, b] * x[:, a::2, b::2] for a in range(2) for b in range(2))
    np.testing.assert_allclose(cnnjax.tree_pool(x, w[None], np.zeros((0, 2, 2)), 2), conv,
                               rtol=1e-12)
    # Zero gates: the mean of the two leaf responses; a saturated gate picks one leaf.
    leaves = rng.standard_normal((2, 2, 2))
    leaf = [cnnjax.tree_pool(x, leaves[i:i + 1], np.zeros((0, 2, 2)), 2) for i in range(2)]
    np.testing.assert_allclose(cnnjax.tree_pool(x, leaves, np.zeros((1, 2, 2)), 2),
                               (leaf[0] + leaf[1]) / 2, rtol=1e-12)
    ones = np.ones((1, 2, 2))
    xp = np.abs(x) + 1  # positive windows: the gate response 1e3·Σx saturates the sigmoid
    np.testing.assert_allclose(cnnjax.tree_pool(xp, leaves, 1e3 * ones, 2),
                               cnnjax.tree_pool(xp, leaves[:1], np.zeros((0, 2, 2)), 2))
    np.testing.assert_allclose(cnnjax.tree_pool(xp, leaves, -1e3 * ones, 2),
                               cnnjax.tree_pool(xp, leaves[1:], np.zeros((0, 2, 2)), 2))


def test_gradients_wrt_x_leaves_gates(rng):
    x = distinct(rng, (2, 4, 6, 2))
    leaves, gates = _filters(rng, 2, (2, 3))
    check_grads(lambda v, lv, gt: cnnjax.tree_pool(v, lv, gt, (2, 3)), (x, leaves, gates),
                order=1, modes=["rev"])
    leaves3, gates3 = _filters(rng, 3, (3, 3), 0.5)
    check_grads(lambda v, lv, gt: cnnjax.tree_pool(v, lv, gt, 3, 1, 1), (x, leaves3, gates3),
                order=1, modes=["rev"])


def test_stable_for_large_inputs(rng):
    x = (1e4 * rng.uniform(-1, 1, (2, 6, 6, 3))).astype(np.float32)
    leaves, gates = (a.astype(np.float32) for a in _filters(rng, 3, (2, 2)))
    f = lambda v, lv, gt: jnp.sum(cnnjax.tree_pool(v, lv, gt, 2))  # noqa: E731
    y = cnnjax.tree_pool(x, leaves, gates, 2)
    grads = jax.grad(f, argnums=(0, 1, 2))(x, leaves, gates)
    assert np.all(np.isfinite(y))
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_jit_vmap_dtypes(rng):
    x = rng.standard_normal((3, 6, 6, 2))
    leaves, gates = _filters(rng, 2, (2, 2))
    f = lambda v, lv, gt: cnnjax.tree_pool(v, lv, gt, 2, 1)  # noqa: E731
    np.testing.assert_allclose(jax.jit(f)(x, leaves, gates), f(x, leaves, gates), rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(lambda v: f(v[None], leaves, gates)[0])(x),
                               f(x, leaves, gates), rtol=1e-12)
    for dtype in (jnp.float32, jnp.float64, jnp.bfloat16):
        # float32 filters with any x: the filters follow x's dtype.
        y = f(x.astype(dtype), leaves.astype(np.float32), gates.astype(np.float32))
        assert y.dtype == dtype


@pytest.mark.parametrize("leaves,gates,match", [
    (np.ones((2, 3, 3)), np.ones((1, 2, 2)),
     r"tree_pool: leaves must have shape \[2\^\(D-1\), \*window_shape\] = \[L, 2, 2\] with "
     r"L >= 1, got \(2, 3, 3\)\."),
    (np.ones((3, 2, 2)), np.ones((2, 2, 2)),
     r"tree_pool: leaves must hold a power of two of filters \(2\^\(D-1\) for a tree of depth "
     r"D\), got 3\."),
    (np.ones((4, 2, 2)), np.ones((2, 2, 2)),
     r"tree_pool: gates must have shape \(3, 2, 2\) \(2\^\(D-1\) - 1 gating filters for a tree "
     r"of depth 3 with 4 leaves\), got \(2, 2, 2\)\."),
    (np.ones((0, 2, 2)), np.ones((0, 2, 2)), r"tree_pool: leaves must have shape"),
    (np.ones((2, 2, 2), np.int32), np.ones((1, 2, 2)),
     r"tree_pool: leaves must have a floating dtype, got int32\."),
])
def test_bad_input(leaves, gates, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cnnjax.tree_pool(jnp.ones((1, 4, 4, 2)), leaves, gates, 2)
