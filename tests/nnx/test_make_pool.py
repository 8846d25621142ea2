"""Tests for cnnjax/nnx/_make_pool.py: every spec equals its linen twin; factories; errors."""
import functools

import jax
import numpy as np
import pytest
from flax import nnx

import cnnjax
from cnnjax import nn
from cnnjax import nnx as cnnx
from cnnjax.layers import pool_specs
from tests.nnx._helpers import copy_module, x_data

SPECS = [*pool_specs.specs_of("nnx"), "strided_conv", "gated:per_channel", "mixed:learn,per_channel",
         "LP:P=1.5"]


@pytest.mark.parametrize("spec", SPECS)
def test_make_pool_every_spec_equals_linen(rng, spec):
    x = x_data(rng)
    pool = cnnx.make_pool(spec, 3, 2, 1, num_features=3, rngs=nnx.Rngs(0))
    linen = nn.make_pool(spec, 3, 2, 1)
    assert type(pool).__name__ == type(linen).__name__
    assert pool_specs.method_of(pool) is pool_specs.method_of(linen)
    for field in linen.__dataclass_fields__:
        if field not in ("parent", "name") and hasattr(pool, field):
            assert getattr(pool, field) == getattr(linen, field), field
    v = linen.init(jax.random.key(1), x)
    copy_module(pool, v)
    pool.eval()
    y = pool(x)
    assert y.shape == cnnjax.max_pool(x, 3, 2, 1).shape  # every spec keeps max's size
    np.testing.assert_allclose(y, linen.apply(v, x), rtol=1e-6, atol=1e-12)


def test_make_pool_rngs_and_num_features():
    assert cnnx.make_pool("max", num_features=3, rngs=nnx.Rngs(0)).window_shape == 2
    assert cnnx.make_pool("stochastic").rngs is None
    assert cnnx.make_pool("gated", rngs=nnx.Rngs(0)).gate.shape == (2, 2)
    with pytest.raises(TypeError, match=r"make_pool: rngs must be an nnx.Rngs \(the module has "
                                        r"parameters\) for pooling spec 'gated' \(GatedPool\)"):
        cnnx.make_pool("gated")
    with pytest.raises(TypeError, match="make_pool: num_features must be the input's channel "
                                        "count .* for pooling spec 'strided_conv'"):
        cnnx.make_pool("strided_conv", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="GatedPool: num_features must be the input's channel"):
        cnnx.make_pool("gated:per_channel", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("spec, match", [
    ("median3", "unknown pooling spec 'median3'; valid specs are 'max', 'avg'"),
    ("lp", "needs 'p=<float>' or 'learn'"),
    ("max:learn", "unknown option 'learn'"),
])
def test_make_pool_rejects(spec, match):
    with pytest.raises(ValueError, match=match):
        cnnx.make_pool(spec)
    with pytest.raises(TypeError, match="make_pool: pool must be a spec string or a module"):
        cnnx.make_pool(3)


def test_make_pool_factories(rng):
    x = x_data(rng)
    pool = cnnx.make_pool(functools.partial(cnnx.MixedPool, alpha=0.2), 2, num_features=3,
                          rngs=nnx.Rngs(0))  # MixedPool takes both, as keywords
    np.testing.assert_allclose(pool(x), cnnjax.mixed_pool(x, 2, alpha=0.2), rtol=1e-12)
    seen = {}

    def factory(window_shape, strides, padding):  # takes neither num_features nor rngs
        seen.update(window_shape=window_shape, strides=strides, padding=padding)
        return cnnx.AvgPool(window_shape, strides, padding)

    cnnx.make_pool(factory, 3, 1, "SAME", num_features=3, rngs=nnx.Rngs(0))
    assert seen == dict(window_shape=3, strides=1, padding="SAME")
    pool = cnnx.make_pool(lambda **kw: cnnx.StridedConvPool(**kw), 2, num_features=3,
                          rngs=nnx.Rngs(0))
    assert pool.kernel.shape == (2, 2, 3, 3)


def test_every_spec_has_an_nnx_module():
    assert pool_specs.specs_of("nnx") == pool_specs.POOL_SPECS


def test_a_factory_without_an_nnx_module_says_so(monkeypatch):
    monkeypatch.delattr(cnnx, "TreePool")
    with pytest.raises(ValueError, match=r"pooling spec 'tree' has no cnnjax\.nnx module "
                                         r"\(TreePool\) yet; build it with the linen front end"):
        cnnx.make_pool("tree", 2, rngs=nnx.Rngs(0))
