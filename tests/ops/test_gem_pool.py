"""Tests for cnnjax/ops/_gem_pool.py: GeM (Radenović et al. 2018) and LSE (Pinheiro &
Collobert 2015) pooling, windowed and global."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from tests.reference import gem_pool as ref
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
def test_gem_matches_reference(rng, spatial, window, strides, padding):
    x = rng.standard_normal((2, *spatial, 3))  # negatives are clamped to eps
    for p, eps in [(3.0, 1e-6), (1.0, 1e-6), (2.0, 0.1), (2.5, 1e-6), (0.5, 1e-3)]:
        np.testing.assert_allclose(cnnjax.gem_pool(x, window, strides, padding, p=p, eps=eps),
                                   ref.gem_pool(x, window, strides, padding, p=p, eps=eps),
                                   rtol=1e-11, err_msg=f"p={p}")
    p_c = np.array([1.5, 3.0, 7.0])
    np.testing.assert_allclose(cnnjax.gem_pool(x, window, strides, padding, p=p_c),
                               ref.gem_pool(x, window, strides, padding, p=p_c), rtol=1e-11)
    np.testing.assert_allclose(cnnjax.gem_pool(x, window, strides, padding, p=jnp.asarray(4.0)),
                               ref.gem_pool(x, window, strides, padding, p=4.0), rtol=1e-11)


@pytest.mark.parametrize("spatial,window,strides,padding", GEOMETRIES)
def test_lse_matches_reference(rng, spatial, window, strides, padding):
    x = rng.standard_normal((2, *spatial, 3))
    for r in (1.0, 0.3, 4.0):
        np.testing.assert_allclose(cnnjax.lse_pool(x, window, strides, padding, r=r),
                                   ref.lse_pool(x, window, strides, padding, r=r), rtol=1e-11,
                                   atol=1e-13, err_msg=f"r={r}")
    r_c = np.array([0.5, 2.0, 10.0])
    np.testing.assert_allclose(cnnjax.lse_pool(x, window, strides, padding, r=r_c),
                               ref.lse_pool(x, window, strides, padding, r=r_c), rtol=1e-11,
                               atol=1e-13)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_global_pools_match_reference_and_the_whole_map_window(rng, d):
    x = rng.standard_normal((2, *(5, 4, 3)[:d], 3))
    spatial = x.shape[1:-1]
    for p in (3.0, np.array([1.0, 2.0, 6.5])):
        y = cnnjax.global_gem_pool(x, p=p)
        assert y.shape == (2, 3)
        np.testing.assert_allclose(y, ref.global_gem_pool(x, p=p), rtol=1e-12)
        np.testing.assert_allclose(y, cnnjax.gem_pool(x, spatial, p=p).reshape(2, 3),
                                   rtol=1e-12)
    for r in (1.0, np.array([0.2, 1.0, 5.0])):
        y = cnnjax.global_lse_pool(x, r=r)
        np.testing.assert_allclose(y, ref.global_lse_pool(x, r=r), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(y, cnnjax.lse_pool(x, spatial, r=r).reshape(2, 3),
                                   rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_matches_torch_formulations(rng, d):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((2, *(6, 7, 5)[:d], 3))
    xt = torch.from_numpy(np.moveaxis(x, -1, 1).copy())
    avg = getattr(F, f"avg_pool{d}d")
    # cirtorch's gem: avg_pool(x.clamp(min=eps).pow(p)).pow(1/p); padding excluded from the
    # mean is count_include_pad=False.
    gt = avg(xt.clamp(min=1e-6).pow(3.0), 3, 2, 1, count_include_pad=False).pow(1 / 3)
    np.testing.assert_allclose(cnnjax.gem_pool(x, 3, 2, 1, p=3.0),
                               np.moveaxis(gt.numpy(), 1, -1), rtol=1e-12)
    gg = avg(xt.clamp(min=1e-6).pow(2.5), tuple(x.shape[1:-1])).pow(1 / 2.5)
    np.testing.assert_allclose(cnnjax.global_gem_pool(x, p=2.5), gg.reshape(2, 3).numpy(),
                               rtol=1e-12)
    # LSE: torch.logsumexp over the spatial dims, minus log |R|, over r.
    axes = tuple(range(2, 2 + d))
    lt = (torch.logsumexp(2.0 * xt, dim=axes) - np.log(np.prod(x.shape[1:-1]))) / 2.0
    np.testing.assert_allclose(cnnjax.global_lse_pool(x, r=2.0), lt.numpy(), rtol=1e-12)


def test_gem_special_cases(rng):
    x = rng.standard_normal((2, 6, 7, 3))
    xc = np.maximum(x, 1e-6)
    # p = 1: the mean of the clamped values (padding excluded).
    np.testing.assert_allclose(cnnjax.gem_pool(x, 3, 2, 1, p=1.0),
                               cnnjax.avg_pool(xc, 3, 2, 1, count_include_pad=False),
                               rtol=1e-13)
    # Large p tends to the max: (1/|R|)^{1/p} <= y / max <= 1.
    top = cnnjax.max_pool(xc, 3, 2, 1)
    y = cnnjax.gem_pool(x, 3, 2, 1, p=2000.0)
    assert np.all(y <= top * (1 + 1e-12)) and np.all(y >= top * (1 / 9) ** (1 / 2000))
    np.testing.assert_array_equal(cnnjax.gem_pool(x, 3, 2, 1, p=np.inf), top)
    np.testing.assert_array_equal(cnnjax.global_gem_pool(x, p=np.inf), xc.max(axis=(1, 2)))
    # The power mean grows with p.
    ys = [cnnjax.gem_pool(x, 2, p=p) for p in (0.5, 1.0, 3.0, 10.0)]
    assert all(np.all(a <= b + 1e-12) for a, b in zip(ys, ys[1:]))
    # A traced p = inf is the max too, to working precision.
    f = jax.jit(lambda v, p: cnnjax.gem_pool(v, 2, p=p))
    np.testing.assert_allclose(f(x, jnp.inf), cnnjax.max_pool(xc, 2), rtol=1e-12)


def test_lse_limits_and_bounds(rng):
    x = rng.standard_normal((2, 6, 7, 3))
    mean = cnnjax.avg_pool(x, 3, 2, 1, count_include_pad=False)
    top = cnnjax.max_pool(x, 3, 2, 1)
    # r -> 0: the mean (expm1/log1p keep it accurate: no cancellation).
    np.testing.assert_allclose(cnnjax.lse_pool(x, 3, 2, 1, r=1e-9), mean, rtol=1e-8, atol=1e-9)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(cnnjax.lse_pool(x32, 3, 2, 1, r=1e-6),
                               cnnjax.avg_pool(x32, 3, 2, 1, count_include_pad=False),
                               rtol=1e-5, atol=1e-5)
    # r -> inf: the max, within log(|R|)/r.
    np.testing.assert_allclose(cnnjax.lse_pool(x, 3, 2, 1, r=1e6), top, atol=np.log(9) / 1e6)
    np.testing.assert_array_equal(cnnjax.lse_pool(x, 3, 2, 1, r=np.inf), top)
    np.testing.assert_array_equal(cnnjax.global_lse_pool(x, r=np.inf), x.max(axis=(1, 2)))
    f = jax.jit(lambda v, r: cnnjax.lse_pool(v, 2, r=r))
    np.testing.assert_allclose(f(x, jnp.inf), cnnjax.max_pool(x, 2), rtol=1e-12)
    # In between for every r, increasing in r.
    ys = [cnnjax.lse_pool(x, 3, 2, 1, r=r) for r in (0.1, 1.0, 10.0)]
    assert np.all(mean <= ys[0] + 1e-12) and np.all(ys[-1] <= top + 1e-12)
    assert all(np.all(a <= b + 1e-12) for a, b in zip(ys, ys[1:]))


def test_stable_for_large_values_in_float32(rng):
    x = (distinct(rng, (2, 6, 7, 3)) * 2e4).astype(np.float32)  # r·x up to 1e4
    for padding in ("VALID", 1):
        y = cnnjax.lse_pool(x, 3, 2, padding, r=1.0)
        # Gaps >= 80 between values: the sum is the max's term, y = max − log|R| (|R| counts
        # the in-input positions: a sum of ones over zero padding).
        count = cnnjax.sum_pool(jnp.ones_like(x), 3, 2, padding)
        np.testing.assert_allclose(y, cnnjax.max_pool(x, 3, 2, padding) - np.log(count),
                                   rtol=1e-6)
        gx, gr = jax.grad(lambda v, r: jnp.sum(cnnjax.lse_pool(v, 3, 2, padding, r=r)),
                          argnums=(0, 1))(x, jnp.float32(1.0))
        assert np.all(np.isfinite(gx)) and np.isfinite(gr)
    xg = np.abs(x) + 1.0  # GeM's domain; large p on values up to 1e4
    y = cnnjax.gem_pool(xg, 2, p=64.0)
    np.testing.assert_allclose(y, ref.gem_pool(xg.astype(np.float64), 2, p=64.0), rtol=1e-5)
    gx, gp = jax.grad(lambda v, p: jnp.sum(cnnjax.gem_pool(v, 2, p=p)), argnums=(0, 1))(
        xg, jnp.float32(64.0))
    assert np.all(np.isfinite(gx)) and np.isfinite(gp)
    g = jax.grad(lambda v, r: jnp.sum(cnnjax.global_lse_pool(v, r=r)), argnums=(0, 1))(
        x, jnp.float32(1.0))
    assert all(np.all(np.isfinite(a)) for a in g)


def test_zero_and_empty_windows_are_finite(rng):
    # eps = 0 and a non-positive window: GeM is 0 with a zero gradient (no 0^p NaN).
    x = jnp.asarray(-np.abs(rng.standard_normal((1, 4, 4, 1))))
    for p in (3.0, 2.5, jnp.float64(2.5)):
        y = cnnjax.gem_pool(x, 2, p=p, eps=0.0)
        g = jax.grad(lambda v, q: jnp.sum(cnnjax.gem_pool(v, 2, p=q, eps=0.0)),
                     argnums=(0, 1))(x, jnp.float64(2.5))
        np.testing.assert_array_equal(y, 0.0)
        assert all(np.all(np.isfinite(a)) for a in g)
    # Windows entirely in the padding output 0.
    x = jnp.asarray([[[1.0], [3.0]]])
    for f in (lambda v, q: cnnjax.gem_pool(v, 2, 2, 2, p=q),
              lambda v, q: cnnjax.lse_pool(v, 2, 2, 2, r=q)):
        y = f(x, 2.0)
        assert y[0, 0, 0] == 0 and y[0, 2, 0] == 0 and y[0, 1, 0] > 1
        g = jax.grad(lambda v, q: jnp.sum(f(v, q)), argnums=(0, 1))(x, jnp.float64(2.0))
        assert all(np.all(np.isfinite(a)) for a in g)


def test_gradients_wrt_x_and_hyperparameters(rng):
    x = distinct(rng, (2, 5, 6, 2)) + 0.6  # mostly above eps, no ties
    check_grads(lambda v, p: cnnjax.gem_pool(v, 2, p=p), (x, 3.0), order=1, modes=["rev"])
    check_grads(lambda v, p: cnnjax.gem_pool(v, 3, 2, 1, p=p), (x, np.array([2.5, 4.0])),
                order=1, modes=["rev"])
    check_grads(lambda v, r: cnnjax.lse_pool(v, 2, r=r), (x, 1.5), order=1, modes=["rev"])
    check_grads(lambda v, r: cnnjax.lse_pool(v, (2, 3), 1, ((1, 0), (0, 1)), r=r),
                (x, np.array([0.5, 3.0])), order=1, modes=["rev"])
    check_grads(lambda v, p: cnnjax.global_gem_pool(v, p=p), (x, 2.5), order=2, modes=["rev"])
    check_grads(lambda v, r: cnnjax.global_lse_pool(v, r=r), (x, np.array([0.5, 3.0])),
                order=2, modes=["rev"])
    check_grads(lambda v: cnnjax.gem_pool(v, 2, p=3.0), (x,), order=2, modes=["rev"])
    check_grads(lambda v, r: cnnjax.lse_pool(v, 3, 2, 1, r=r), (x, np.array([0.7, 2.0])),
                order=2, modes=["rev"])


def test_jit_vmap_and_dtypes(rng):
    x = rng.standard_normal((3, 6, 7, 2)).astype(np.float32)
    ops = [lambda v, h: cnnjax.gem_pool(v, 3, 2, 1, p=h), lambda v, h: cnnjax.lse_pool(v, 2, r=h),
           lambda v, h: cnnjax.global_gem_pool(v, p=h), lambda v, h: cnnjax.global_lse_pool(v, r=h)]
    for f in ops:
        np.testing.assert_allclose(jax.jit(f)(x, jnp.float32(2.0)), f(x, 2.0), rtol=1e-5)
        batched = jax.vmap(lambda v: f(v[None], 2.0)[0])(x)
        np.testing.assert_allclose(batched, f(x, 2.0), rtol=1e-5)
        # A float64 hyperparameter does not promote a float32 input.
        assert f(x, 2.0).dtype == jnp.float32
        assert f(x, jnp.asarray(2.0, jnp.float64)).dtype == jnp.float32
        y16 = f(x.astype(jnp.bfloat16), 2.0)
        assert y16.dtype == jnp.bfloat16
        np.testing.assert_allclose(y16.astype(np.float32), f(x, 2.0), rtol=5e-2, atol=5e-2)


X = jnp.ones((1, 4, 4, 3))


@pytest.mark.parametrize("call,match", [
    (lambda: cnnjax.gem_pool(X, 2, p=0.0), r"gem_pool: p must be > 0, got 0\.0\."),
    (lambda: cnnjax.gem_pool(X, 2, p=-1), r"gem_pool: p must be > 0, got -1\.0\."),
    (lambda: cnnjax.gem_pool(X, 2, p=np.nan), "gem_pool: p must be > 0, got nan"),
    (lambda: cnnjax.gem_pool(X, 2, p=[1.0, 0.0, 2.0]),
     r"gem_pool: p must be > 0, got \[1\.0, 0\.0, 2\.0\]"),
    (lambda: cnnjax.gem_pool(X, 2, p=jnp.ones(2)),
     r"gem_pool: p must be a scalar or have shape \(3,\) \(one per channel\), got shape \(2,\)"),
    (lambda: cnnjax.gem_pool(X, 2, p=True), "gem_pool: p must be a positive number"),
    (lambda: cnnjax.gem_pool(X, 2, p="3"), "gem_pool: p must be a positive number"),
    (lambda: cnnjax.gem_pool(X, 2, eps=-1e-6), "gem_pool: eps must be a non-negative finite"),
    (lambda: cnnjax.global_gem_pool(X, p=0), r"global_gem_pool: p must be > 0, got 0\.0\."),
    (lambda: cnnjax.lse_pool(X, 2, r=0.0), r"lse_pool: r must be > 0, got 0\.0\."),
    (lambda: cnnjax.lse_pool(X, 2, r=-2.0), r"lse_pool: r must be > 0, got -2\.0\."),
    (lambda: cnnjax.global_lse_pool(X, r=jnp.ones((3, 1))),
     r"global_lse_pool: r must be a scalar or have shape \(3,\)"),
    (lambda: cnnjax.lse_pool(jnp.ones((4, 4)), 2), "lse_pool: x must have rank 3 to 5"),
    (lambda: cnnjax.global_gem_pool(jnp.ones((1, 4, 4, 3), jnp.int32)),
     "global_gem_pool: x must have a floating dtype"),
    (lambda: cnnjax.gem_pool(X, (2, 2, 2)), "gem_pool: window_shape must be an int or a sequence"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_traced_bad_values_are_not_checked_but_concrete_ones_are_under_jit():
    # Under jit p is traced: no concrete check is possible and none is attempted.
    y = jax.jit(lambda p: cnnjax.gem_pool(X, 2, p=p))(jnp.float32(2.0))
    np.testing.assert_allclose(y, 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="gem_pool: p must be > 0"):
        jax.jit(lambda v: cnnjax.gem_pool(v, 2, p=-1.0))(X)
