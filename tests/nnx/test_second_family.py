"""Tests for the second-family NNX pools: each equals its op and its linen twin; jit; modes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import cnnjax
from cnnjax import nn
from cnnjax import nnx as cnnx
from tests.nnx._helpers import copy_module, n_values, x_data

PARAMETER_FREE = [
    (lambda: cnnx.BlurPool(), nn.BlurPool(), lambda x: cnnjax.blur_pool(x, 3, 2)),
    (lambda: cnnx.BlurPool(4, 1, "zeros"), nn.BlurPool(window_shape=4, strides=1,
                                                       padding_mode="zeros"),
     lambda x: cnnjax.blur_pool(x, 4, 1, padding_mode="zeros")),
    (lambda: cnnx.BlurPool(site=(3, 2, 1)), nn.BlurPool(site=(3, 2, 1)), None),
    (lambda: cnnx.MaxBlurPool(3, 2, 1), nn.MaxBlurPool(window_shape=3, strides=2, padding=1),
     lambda x: cnnjax.max_blur_pool(x, 3, 2, padding=1)),
    (lambda: cnnx.SoftPool(2), nn.SoftPool(window_shape=2), lambda x: cnnjax.soft_pool(x, 2)),
    (lambda: cnnx.GeMPool(2, p=2.5), nn.GeMPool(window_shape=2, p=2.5),
     lambda x: cnnjax.gem_pool(x, 2, p=2.5)),
    (lambda: cnnx.GlobalGeMPool(p=2.0), nn.GlobalGeMPool(p=2.0),
     lambda x: cnnjax.global_gem_pool(x, p=2.0)),
    (lambda: cnnx.LsePool(3, 1, "SAME", r=2.0),
     nn.LsePool(window_shape=3, strides=1, padding="SAME", r=2.0),
     lambda x: cnnjax.lse_pool(x, 3, 1, "SAME", r=2.0)),
    (lambda: cnnx.GlobalLsePool(r=0.5), nn.GlobalLsePool(r=0.5),
     lambda x: cnnjax.global_lse_pool(x, r=0.5)),
    (lambda: cnnx.MinPool(3, 2, 1, ceil_mode=True),
     nn.MinPool(window_shape=3, strides=2, padding=1, ceil_mode=True),
     lambda x: cnnjax.min_pool(x, 3, 2, 1, ceil_mode=True)),
    (lambda: cnnx.MedianPool(3, 1, "SAME"), nn.MedianPool(window_shape=3, strides=1,
                                                          padding="SAME"),
     lambda x: cnnjax.median_pool(x, 3, 1, "SAME")),
    (lambda: cnnx.FractionalMaxPool(output_shape=(3, 4)),
     nn.FractionalMaxPool(output_shape=(3, 4)),
     lambda x: cnnjax.fractional_max_pool(x, 3, (3, 4), train=False)),
    (lambda: cnnx.FractionalMaxPool(site=(2, 2, "VALID")),
     nn.FractionalMaxPool(site=(2, 2, "VALID")),
     lambda x: cnnjax.fractional_max_pool(x, 3, (3, 3), train=False)),
    (lambda: cnnx.SpatialPyramidPool((1, 2), mode="avg"),
     nn.SpatialPyramidPool(levels=(1, 2), mode="avg"),
     lambda x: cnnjax.spatial_pyramid_pool(x, (1, 2), mode="avg")),
]


@pytest.mark.parametrize("make, linen, op", PARAMETER_FREE,
                         ids=[f"{type(p[1]).__name__}{i}" for i, p in enumerate(PARAMETER_FREE)])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_parameter_free_pools_equal_op_linen_and_jit(rng, make, linen, op, dtype):
    x = x_data(rng, (2, 7, 7, 3), dtype)
    module = make()
    assert n_values(module) == 0
    module.eval()  # FractionalMaxPool: the inference rule; the others have no mode
    y = module(x)
    tol = 1e-6 if dtype == jnp.float32 else 1e-12
    assert y.dtype == x.dtype
    np.testing.assert_allclose(y, linen.apply({}, x, train=False), rtol=tol, atol=tol)
    if op is not None:
        np.testing.assert_allclose(y, op(x), rtol=tol, atol=tol)
    np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(module, x), y, rtol=tol, atol=tol)


def _random(rng, tree):
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.normal(0.3, 0.2, size=a.shape), a.dtype), tree)


LEARNED = [
    (lambda: cnnx.LipPool(3, 2, 1, num_features=3, rngs=nnx.Rngs(0)),
     nn.LipPool(window_shape=3, strides=2, padding=1), "lip"),
    (lambda: cnnx.GeMPool(2, learn_p=True), nn.GeMPool(window_shape=2, learn_p=True), "gem"),
    (lambda: cnnx.GeMPool(2, p=2.0, learn_p=True, per_channel=True, num_features=3),
     nn.GeMPool(window_shape=2, p=2.0, learn_p=True, per_channel=True), "gem"),
    (lambda: cnnx.GlobalGeMPool(learn_p=True), nn.GlobalGeMPool(learn_p=True), "gem"),
    (lambda: cnnx.LsePool(2, learn_r=True, per_channel=True, num_features=3),
     nn.LsePool(window_shape=2, learn_r=True, per_channel=True), "lse"),
    (lambda: cnnx.GlobalLsePool(r=2.0, learn_r=True), nn.GlobalLsePool(r=2.0, learn_r=True),
     "lse"),
    (lambda: cnnx.TreePool(2, rngs=nnx.Rngs(0)), nn.TreePool(window_shape=2), "tree"),
    (lambda: cnnx.TreePool((3, 3), 2, 1, depth=3, rngs=nnx.Rngs(0)),
     nn.TreePool(window_shape=3, strides=2, padding=1, depth=3), "tree"),
]


@pytest.mark.parametrize("make, linen, kind", LEARNED,
                         ids=[f"{type(p[1]).__name__}{i}" for i, p in enumerate(LEARNED)])
def test_learned_pools_equal_op_and_linen(rng, make, linen, kind):
    x = x_data(rng, (2, 6, 6, 3))
    pool = make()
    v = linen.init(jax.random.key(0), x)
    shapes = jax.tree_util.tree_map(jnp.shape, v["params"])
    assert shapes == {k: pool_param.shape for k, pool_param in nnx.state(pool, nnx.Param).items()}
    if kind in ("gem", "lse"):  # constant initialisation: the NNX module starts identical
        np.testing.assert_allclose(pool(x), linen.apply(v, x), rtol=1e-12)
    v = {"params": _random(rng, v["params"])}
    copy_module(pool, v)
    y = pool(x)
    np.testing.assert_allclose(y, linen.apply(v, x), rtol=1e-12)
    p = {k: a[...].astype(x.dtype) for k, a in nnx.state(pool, nnx.Param).items()}
    expected = {
        "lip": lambda: cnnjax.lip_pool(x, cnnjax.conv(x, p.get("kernel"), p.get("bias")),
                                       **pool.window_kwargs()),
        "tree": lambda: cnnjax.tree_pool(x, p.get("leaves"), p.get("gates"),
                                         **pool.window_kwargs()),
    }.get(kind)
    if expected is not None:
        np.testing.assert_allclose(y, expected(), rtol=1e-12)
    np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(pool, x), y, rtol=1e-12)
    grads = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(pool)
    for g in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(g)) and np.any(g != 0)


def test_learned_exponents_start_at_their_values(rng):
    x = x_data(rng)
    np.testing.assert_allclose(cnnx.GeMPool(2, p=3.0, learn_p=True)(x),
                               cnnjax.gem_pool(x, 2, p=3.0), rtol=1e-6)
    np.testing.assert_allclose(cnnx.LsePool(2, r=1.0, learn_r=True)(x),
                               cnnjax.lse_pool(x, 2, r=1.0), rtol=1e-6)
    lip = cnnx.LipPool(2, num_features=3, rngs=nnx.Rngs(0))  # zero logits: average pooling
    np.testing.assert_allclose(lip(x), cnnjax.avg_pool(x, 2), rtol=1e-12)


def test_fractional_max_pool_train_and_eval(rng):
    x = x_data(rng, (3, 9, 9, 4))
    pool = cnnx.FractionalMaxPool(2, output_shape=5, rngs=nnx.Rngs(params=0, pool=1))
    assert pool.deterministic is False
    key = nnx.Rngs(pool=1)["pool"].fork()()
    y1 = pool(x)
    np.testing.assert_allclose(y1, cnnjax.fractional_max_pool(x, 2, 5, train=True, key=key),
                               rtol=1e-12)
    assert not np.allclose(pool(x), y1)  # the stream advanced
    k = jax.random.key(4)
    np.testing.assert_allclose(pool(x, rngs=k),
                               cnnjax.fractional_max_pool(x, 2, 5, train=True, key=k), rtol=1e-12)
    pool.eval()
    np.testing.assert_allclose(pool(x), cnnjax.fractional_max_pool(x, 2, 5, train=False),
                               rtol=1e-12)
    assert not np.allclose(pool(x, deterministic=False), pool(x))
    with pytest.raises(TypeError, match="FractionalMaxPool: rngs must be given"):
        cnnx.FractionalMaxPool(output_shape=2)(x)


def test_errors(rng):
    x = x_data(rng)
    with pytest.raises(ValueError, match="GeMPool: per_channel=True needs learn_p=True"):
        cnnx.GeMPool(per_channel=True, num_features=3)
    with pytest.raises(ValueError, match="LsePool: num_features must be the input's channel"):
        cnnx.LsePool(learn_r=True, per_channel=True)
    with pytest.raises(ValueError, match="GlobalGeMPool: p must be a positive finite number"):
        cnnx.GlobalGeMPool(p=0.0, learn_p=True)
    with pytest.raises(ValueError, match="LsePool: x must have num_features=2 channels"):
        cnnx.LsePool(learn_r=True, per_channel=True, num_features=2)(x)
    with pytest.raises(ValueError, match="LipPool: x must have num_features=4 channels"):
        cnnx.LipPool(2, num_features=4, rngs=nnx.Rngs(0))(x)
    with pytest.raises(TypeError, match="LipPool: num_features must be an int >= 1"):
        cnnx.LipPool(2, num_features=None, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="TreePool: depth must be an int >= 1, got 0"):
        cnnx.TreePool(2, depth=0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="TreePool: x must have 2 spatial dims"):
        cnnx.TreePool(2, rngs=nnx.Rngs(0))(x[:, 0])
    with pytest.raises(ValueError, match=r"BlurPool: strides must be None or the site's "
                                         r"stride \(2, 2\)"):
        cnnx.BlurPool(strides=1, site=(2, 2, 0))(x)
    with pytest.raises(TypeError, match=r"FractionalMaxPool: site must be a \(window_shape"):
        cnnx.FractionalMaxPool(site=(2, 2), deterministic=True)(x)
    with pytest.raises(ValueError, match="FractionalMaxPool: give exactly one of output_shape"):
        cnnx.FractionalMaxPool(deterministic=True)(x)
