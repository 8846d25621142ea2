"""Tests for cnnjax/ops/_pyramid_pool.py: spatial pyramid pooling (He et al. 2014)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from tests.reference import pyramid_pool as ref
from tests.reference.pool import distinct


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("spatial,levels", [
    ((9,), (1, 2, 4)), ((7, 10), (1, 2, 4)), ((6, 6), (3, 1)), ((5, 4, 6), (1, 2)),
    ((13, 11), (1, 3, 6))])
def test_matches_reference(rng, spatial, levels, mode):
    x = rng.standard_normal((2, *spatial, 3))
    y = cnnjax.spatial_pyramid_pool(x, levels, mode=mode)
    assert y.shape == (2, 3 * sum(lv ** len(spatial) for lv in levels))
    np.testing.assert_allclose(y, ref.spatial_pyramid_pool(x, levels, mode), rtol=1e-12)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_matches_torch(rng, mode):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = distinct(rng, (2, 13, 11, 3))
    tx = torch.from_numpy(np.moveaxis(x, -1, 1).copy()).requires_grad_(True)
    pool = F.adaptive_max_pool2d if mode == "max" else F.adaptive_avg_pool2d
    # PyTorch is channels-first; move channels last before flattening (bin-major).
    ty = torch.cat([pool(tx, lv).permute(0, 2, 3, 1).reshape(2, -1) for lv in (1, 2, 4)], 1)
    cot = np.cos(np.arange(ty.numel())).reshape(ty.shape)
    ty.backward(torch.from_numpy(cot))
    y, vjp = jax.vjp(lambda v: cnnjax.spatial_pyramid_pool(v, mode=mode), x)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(vjp(cot)[0], np.moveaxis(tx.grad.numpy(), 1, -1), rtol=1e-12,
                               atol=1e-15)


def test_fixed_length_for_any_input_size(rng):
    sizes = [cnnjax.spatial_pyramid_pool(rng.standard_normal((1, h, w, 5))).shape
             for h, w in [(4, 4), (13, 7), (32, 24)]]
    assert sizes == [(1, 5 * 21)] * 3
    # Level 1 is global pooling; its features come first.
    x = rng.standard_normal((2, 8, 8, 4))
    np.testing.assert_array_equal(cnnjax.spatial_pyramid_pool(x, (1, 2))[:, :4],
                                  cnnjax.global_max_pool(x))
    np.testing.assert_allclose(cnnjax.spatial_pyramid_pool(x, (1,), mode="avg"),
                               cnnjax.global_avg_pool(x), rtol=1e-12)


def test_max_gradient_goes_to_first_maximum():
    x = np.zeros((1, 5, 4, 1))  # all ties
    g = jax.grad(lambda v: cnnjax.spatial_pyramid_pool(v, (1, 2)).sum())(x)[0, ..., 0]
    expected = np.zeros((5, 4))
    expected[0, 0] = 2  # level 1 and the first bin of level 2
    expected[0, 2] = expected[2, 0] = expected[2, 2] = 1  # bins start at rows 0, 2, cols 0, 2
    np.testing.assert_array_equal(g, expected)


def test_gradcheck_jit_vmap_dtypes(rng):
    x = distinct(rng, (2, 7, 6, 2))
    for mode in ("max", "avg"):
        check_grads(lambda v: cnnjax.spatial_pyramid_pool(v, (1, 2, 3), mode=mode), (x,),
                    order=1, modes=["rev"])
    f = lambda v: cnnjax.spatial_pyramid_pool(v, (1, 2, 4))  # noqa: E731
    np.testing.assert_array_equal(jax.jit(f)(x), f(x))
    np.testing.assert_array_equal(jax.vmap(lambda v: f(v[None])[0])(x), f(x))
    for dtype in (jnp.float32, jnp.float64, jnp.bfloat16):
        assert f(x.astype(dtype)).dtype == dtype


@pytest.mark.parametrize("kwargs,match", [
    (dict(mode="sum"), r"spatial_pyramid_pool: mode must be one of 'max', 'avg', got 'sum'\."),
    (dict(levels=()), r"spatial_pyramid_pool: levels must be a non-empty sequence of positive "
                      r"ints, got \(\)\."),
    (dict(levels=4), r"spatial_pyramid_pool: levels must be a sequence of positive ints, "
                     r"got 4\."),
    (dict(levels=(1, 2.0)), r"levels must be a non-empty sequence of positive ints"),
    (dict(levels=(1, 0)), r"spatial_pyramid_pool: levels must be positive, got \(1, 0\)\."),
    (dict(levels=(1, 8)), r"spatial_pyramid_pool: levels must not exceed the input's smallest "
                          r"spatial size 6 \(spatial shape \(7, 6\)\), got \(1, 8\)\."),
])
def test_bad_input(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cnnjax.spatial_pyramid_pool(jnp.ones((1, 7, 6, 2)), **kwargs)
