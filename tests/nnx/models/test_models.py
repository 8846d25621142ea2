"""Tests for cnnjax/nnx/models: the NNX zoo equals the linen zoo (parameters, outputs, tables)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from cnnjax import models
from cnnjax import nnx as cnnx
from cnnjax.layers import pool_specs
from cnnjax.models import introspect
from cnnjax.nnx import models as nnx_models
from tests.nnx._helpers import copy_model, n_values

NATIVE = {"lenet5": (28, 28, 1), "mnistnet": (28, 28, 1), "vgg11": (32, 32, 3),
          "vgg11_bn": (32, 32, 3), "vgg16": (32, 32, 3), "vgg16_bn": (32, 32, 3),
          "resnet20": (32, 32, 3)}


def _batch(shape, n=2, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, *shape)), jnp.float32)


def _linen_variables(model, x):
    return model.init({"params": jax.random.key(1), "dropout": jax.random.key(2),
                       "pool": jax.random.key(3)}, x, train=False)


def test_names_and_get():
    assert set(nnx_models.NAMES) == set(NATIVE) and set(NATIVE) <= set(models.NAMES)
    model = nnx_models.get("VGG11_BN", num_classes=3, hidden=8, rngs=nnx.Rngs(0))
    assert isinstance(model, nnx_models.VGG) and model.batch_norm and model.depth == 11
    with pytest.raises(ValueError, match="nnx.models.get: unknown model 'lenet'; valid names"):
        nnx_models.get("lenet", rngs=nnx.Rngs(0))


# vgg11 and vgg16_bn check VGG's counts (without and with BN) in the default set.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "vgg11_bn" else n
                                  for n in NATIVE])
def test_parameter_counts_equal_linen(name):
    model = nnx_models.get(name, num_classes=10, rngs=nnx.Rngs(0))
    assert model.input_shape == NATIVE[name]
    linen = models.get(name, num_classes=10)
    v = jax.eval_shape(lambda: _linen_variables(linen, jnp.zeros((1, *NATIVE[name]))))
    for kind, collection in ((nnx.Param, "params"), (nnx.BatchStat, "batch_stats")):
        expected = sum(int(np.prod(a.shape))
                       for a in jax.tree_util.tree_leaves(v.get(collection, {})))
        assert n_values(model, kind) == expected, (name, collection)
    if name == "lenet5":
        assert n_values(model) == 1_256_080
    if name == "mnistnet":
        assert n_values(model) == 1_199_882


# Small inputs and narrow heads keep the eager runs fast; LeNet-5 runs every spec.
EQUAL = [
    *[pytest.param("lenet5", (8, 8, 1), spec, {}, id=f"lenet5-{spec}")
      for spec in [*pool_specs.specs_of("nnx"), "strided_conv", "mixed:learn,per_channel"]],
    pytest.param("mnistnet", (8, 8, 1), "lp:learn", {}, id="mnistnet"),
    pytest.param("mnistnet", (8, 8, 1), "lip", {}, id="mnistnet-lip"),
    pytest.param("resnet20", (8, 8, 3), "gated", {}, id="resnet20"),
    pytest.param("resnet20", (8, 8, 3), "tree", {}, id="resnet20-tree"),
    pytest.param("resnet20", (8, 8, 3), "gem:learn", {}, id="resnet20-gem"),
    pytest.param("vgg11_bn", (32, 32, 3), "mixed:learn", {"hidden": 16}, id="vgg11_bn"),
    pytest.param("vgg11", (32, 32, 3), "maxblur", {"hidden": 16}, id="vgg11-maxblur"),
]


@pytest.mark.parametrize("name, shape, spec, kw", EQUAL)
def test_outputs_equal_linen_given_the_same_parameters(name, shape, spec, kw):
    x = _batch(shape)
    linen = models.get(name, num_classes=3, pool=spec, impl="xla", **kw)
    v = _linen_variables(linen, x)
    model = nnx_models.get(name, num_classes=3, pool=spec, impl="xla", input_shape=shape,
                           rngs=nnx.Rngs(0), **kw)
    copy_model(linen, v, model, x)
    model.eval()
    np.testing.assert_allclose(model(x), linen.apply(v, x, train=False), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NATIVE))
@pytest.mark.parametrize("spec", pool_specs.POOL_SPECS)
def test_every_model_runs_every_spec_as_linen(name, spec):
    shape = (8, 8, NATIVE[name][-1]) if name in ("lenet5", "mnistnet", "resnet20") else (32, 32, 3)
    kw = {"hidden": 16} if name.startswith("vgg") else {}
    x = _batch(shape)
    linen = models.get(name, num_classes=3, pool=spec, impl="xla", **kw)
    v = _linen_variables(linen, x)
    model = nnx_models.get(name, num_classes=3, pool=spec, impl="xla", input_shape=shape,
                           rngs=nnx.Rngs(0), **kw)
    for kind, collection in ((nnx.Param, "params"), (nnx.BatchStat, "batch_stats")):
        assert n_values(model, kind) == sum(
            int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(v.get(collection, {})))
    copy_model(linen, v, model, x)
    model.eval()
    np.testing.assert_allclose(model(x), linen.apply(v, x, train=False), rtol=1e-5, atol=1e-5)


def test_training_mode_equals_linen_batch_statistics():
    # ResNet-20 has no dropout, so a deterministic pool makes training comparable: the same
    # logits from batch statistics and the same updated running statistics.
    x = _batch((8, 8, 3), n=4)
    linen = models.ResNet20(num_classes=3, pool="avg", impl="xla")
    v = _linen_variables(linen, x)
    model = nnx_models.ResNet20(num_classes=3, pool="avg", impl="xla", input_shape=(8, 8, 3),
                                rngs=nnx.Rngs(0))
    copy_model(linen, v, model, x)
    y_linen, updates = linen.apply(v, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(model(x), y_linen, rtol=1e-5, atol=1e-5)  # training mode
    stats = updates["batch_stats"]["ConvBN_0"]["bn"]  # the stem's
    np.testing.assert_allclose(model.stem_conv.bn.var[...], stats["var"], rtol=1e-5)
    np.testing.assert_allclose(model.stem_conv.bn.mean[...], stats["mean"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name, shape, spec", [
    ("lenet5", (28, 28, 1), "max"), ("lenet5", (28, 28, 1), "mixed:learn"),
    ("mnistnet", (28, 28, 1), "stochastic"), ("resnet20", (32, 32, 3), "gated"),
    ("vgg16_bn", (32, 32, 3), "spectral"), ("vgg11", (32, 32, 3), "lp:learn"),
])
def test_summary_tables_equal_linen(name, shape, spec):
    table = models.summary(nnx_models.get(name, pool=spec, rngs=nnx.Rngs(0)), shape)
    assert table == models.summary(models.get(name, pool=spec), shape)
    if (name, spec) == ("lenet5", "max"):
        assert "| Linear (2450→500) | 500 | 2450×500 |" in table
        assert "Total parameters: 1,256,080" in table


def test_summary_leaves_the_model_alone():
    model = nnx_models.MnistNet(pool="stochastic", rngs=nnx.Rngs(0))
    def values(model):
        return [np.asarray(jax.random.key_data(a) if jnp.issubdtype(a.dtype, jax.dtypes.prng_key)
                           else a) for a in jax.tree_util.tree_leaves(nnx.state(model))]

    before = values(model)
    models.summary(model, (28, 28, 1), train=True)
    after = values(model)
    assert len(before) == len(after) and all(map(np.array_equal, before, after))
    assert model.dropout1.deterministic is False and model.pool_layer.deterministic is False
    assert type(model).__call__ is nnx_models.MnistNet.__dict__["__call__"]  # unwrapped


def test_new_models_train_and_eval_switches_them():
    x = _batch((28, 28, 1))
    model = nnx_models.MnistNet(rngs=nnx.Rngs(0))
    assert not np.allclose(model(x), model(x))  # dropout is on in a new model
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))


def test_pool_factory_sets_the_flatten_size():
    # A factory need not keep max's output size: the model follows the shapes it builds.
    model = nnx_models.LeNet5(pool=lambda window_shape, strides, padding: cnnx.MaxPool(
        window_shape, 1), input_shape=(8, 8, 1), rngs=nnx.Rngs(0))
    assert model.hidden.in_features == 50 * 6 * 6
    assert model(_batch((8, 8, 1))).shape == (2, 10)
    mixed = nnx_models.LeNet5(pool=functools.partial(cnnx.MixedPool, alpha=0.3),
                              input_shape=(8, 8, 1), rngs=nnx.Rngs(0))
    assert mixed.pools[0].alpha == 0.3


def test_bad_inputs():
    model = nnx_models.LeNet5(rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"LeNet5: x must be \[N, 28, 28, 1\] \(the model was "
                                         r"built for input_shape=\(28, 28, 1\)\)"):
        model(jnp.zeros((1, 32, 32, 1)))
    with pytest.raises(ValueError, match="LeNet5: x must be a batch of images"):
        model(jnp.zeros((28, 28, 1)))
    with pytest.raises(ValueError, match=r"VGG: input_shape must be \(H, W, C\)"):
        nnx_models.VGG(input_shape=(32, 32), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="VGG: depth must be one of"):
        nnx_models.VGG(depth=13, rngs=nnx.Rngs(0))
    resnet = nnx_models.ResNet20(num_classes=3, input_shape=(8, 8, 3), rngs=nnx.Rngs(0))
    resnet.eval()
    assert resnet(jnp.zeros((1, 12, 12, 3))).shape == (1, 3)  # any size after the global pool
    with pytest.raises(ValueError, match=r"ResNet20: x must be \[N, H, W, 3\]"):
        resnet(jnp.zeros((1, 8, 8, 1)))


def test_jitted_training_step_learns_the_pool():
    x, y = _batch((8, 8, 1), n=4), jnp.asarray([0, 1, 2, 0])
    model = nnx_models.LeNet5(num_classes=3, pool="lp:learn", impl="xla", input_shape=(8, 8, 1),
                              rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, y):
        def loss(model):
            return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()
        value, grads = nnx.value_and_grad(loss)(model)
        optimizer.update(model, grads)
        return value, grads

    p0 = float(model.pools[0].p_raw[...])
    first, grads = step(model, optimizer, x, y)
    assert np.isfinite(first) and grads["pools"][0]["p_raw"][...] != 0
    assert float(model.pools[0].p_raw[...]) != p0
    for _ in range(5):
        last, _ = step(model, optimizer, x, y)
    assert last < first


def test_trace_records_the_same_layers_and_receptive_fields_as_linen():
    x = jnp.zeros((1, 16, 16, 3))
    model = nnx_models.ResNet20(num_classes=3, pool="max", input_shape=(16, 16, 3),
                                rngs=nnx.Rngs(0))
    calls, variables = introspect.trace(model, None, x, op="test")
    linen_calls, linen_vars = introspect.trace(models.ResNet20(num_classes=3, pool="max"), None,
                                               x, op="test")
    assert [(c.kind, c.leaf, c.output.shape) for c in calls] == \
        [(c.kind, c.leaf, c.output.shape) for c in linen_calls]
    assert n_values(model) == sum(int(np.prod(v.shape))
                                  for v in jax.tree_util.tree_leaves(variables["params"]))
    # Residual branches are followed through the same array links.
    assert introspect.receptive_fields(calls, (16, 16), "test") == \
        introspect.receptive_fields(linen_calls, (16, 16), "test")
    assert calls[0].name == "stem_conv/conv" and calls[0].params["kernel"].shape == (3, 3, 3, 16)


def test_trace_runs_concretely_with_the_model_state():
    x = _batch((8, 8, 1), n=1)
    model = nnx_models.LeNet5(pool="stochastic", input_shape=(8, 8, 1), rngs=nnx.Rngs(0))
    calls, out = introspect.trace(model, nnx.state(model), x, op="test")
    assert model.pools[0].deterministic is False  # traced in eval mode on a copy
    model.eval()
    np.testing.assert_allclose(out, model(x), rtol=1e-6)
    np.testing.assert_allclose(calls[0].output, model.convs[0](x), rtol=1e-6)
    with pytest.raises(TypeError, match="test: variables must be the NNX model's state"):
        introspect.trace(model, 3, x, op="test")
