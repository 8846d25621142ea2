"""Tests for cnnjax/nnx: every module equals its op and its linen twin; train/eval; make_pool."""
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import cnnjax
from cnnjax import nn
from cnnjax import nnx as cnnx
from tests.nnx._helpers import copy_module, n_values, x_data

LINEN_MODULES = ["Conv", "ConvTranspose", "StridedConvPool", "BatchNorm", "MaxPool", "AvgPool",
                 "SumPool", "LpPool", "L2Pool", "MixedPool", "StochasticMixedPool", "GatedPool",
                 "StochasticPool", "SpectralPool", "AdaptiveAvgPool", "AdaptiveMaxPool",
                 "GlobalAvgPool", "GlobalMaxPool", "BlurPool", "MaxBlurPool", "SoftPool",
                 "LipPool", "GeMPool", "GlobalGeMPool", "LsePool", "GlobalLsePool", "MinPool",
                 "MedianPool", "FractionalMaxPool", "TreePool", "SpatialPyramidPool"]


@pytest.mark.parametrize("name", LINEN_MODULES)
def test_same_names_and_fields_as_linen(name):
    linen, new = getattr(nn, name), getattr(cnnx, name)
    assert issubclass(new, nnx.Module)
    args = set(inspect.signature(new).parameters)
    fields = set(linen.__dataclass_fields__) - {"parent", "name"}
    fields = {"out_features" if f == "features" else f for f in fields}
    assert fields <= args, fields - args
    has_state = name in ("Conv", "ConvTranspose", "StridedConvPool", "BatchNorm", "LpPool",
                         "MixedPool", "GatedPool", "StochasticMixedPool", "StochasticPool",
                         "SpectralPool", "LipPool", "GeMPool", "GlobalGeMPool", "LsePool",
                         "GlobalLsePool", "FractionalMaxPool", "TreePool")
    assert ("rngs" in args) == has_state


# --- convolution --------------------------------------------------------------------------

@pytest.mark.parametrize("shape, kw", [
    ((2, 6, 6, 3), dict(out_features=4, kernel_size=3)),
    ((2, 6, 6, 3), dict(out_features=6, kernel_size=(3, 2), stride=2, padding=1,
                        dilation=(1, 2), groups=3, padding_mode="reflect")),
    ((2, 7, 3), dict(out_features=2, kernel_size=(3,), stride=2, padding="SAME")),
    ((1, 4, 4, 4, 2), dict(out_features=3, kernel_size=(2, 2, 2), use_bias=False)),
])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_conv_equals_op_and_linen(rng, shape, kw, dtype):
    x = x_data(rng, shape, dtype)
    layer = cnnx.Conv(shape[-1], rngs=nnx.Rngs(0), **kw)
    linen = nn.Conv(features=kw["out_features"],
                    **{k: v for k, v in kw.items() if k != "out_features"})
    v = linen.init(jax.random.key(1), x)
    assert layer.kernel.shape == v["params"]["kernel"].shape
    assert (layer.bias is None) == (not kw.get("use_bias", True))
    copy_module(layer, v)
    y = layer(x)
    assert y.dtype == x.dtype
    op_kw = {k: v for k, v in kw.items() if k not in ("out_features", "kernel_size", "use_bias")}
    b = layer.bias
    expected = cnnjax.conv(x, layer.kernel[...].astype(dtype),
                           None if b is None else b[...].astype(dtype), **op_kw)
    tol = 1e-5 if dtype == jnp.float32 else 1e-12
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(y, linen.apply(v, x), rtol=tol, atol=tol)


def test_conv_int_kernel_is_2d_and_inputs_are_checked(rng):
    layer = cnnx.Conv(3, 4, 5, rngs=nnx.Rngs(0))
    assert layer.kernel.shape == (5, 5, 3, 4)
    with pytest.raises(ValueError, match=r"Conv: x must have in_features=3 channels \(its last "
                                         r"axis\), got shape \(1, 8, 8, 2\)"):
        layer(jnp.ones((1, 8, 8, 2)))
    with pytest.raises(ValueError, match="Conv: x must have 2 spatial dims"):
        layer(jnp.ones((1, 8, 3)))
    with pytest.raises(ValueError, match=r"Conv: input channels \(3\) must be divisible by "
                                         r"groups, got 2"):
        cnnx.Conv(3, 4, 3, groups=2, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="Conv: in_features must be an int >= 1"):
        cnnx.Conv(3.0, 4, 3, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="Conv: kernel_size must be an int"):
        cnnx.Conv(3, 4, "3", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="Conv: kernel_size must be >= 1"):
        cnnx.Conv(3, 4, (0, 3), rngs=nnx.Rngs(0))


def test_conv_flax_spellings_warn(rng):
    x = x_data(rng, (1, 4, 4, 4))
    with pytest.warns(DeprecationWarning, match=r"Conv\(strides=\.\.\.\) is deprecated"):
        old = cnnx.Conv(4, 6, 3, strides=2, rngs=nnx.Rngs(0))
    with pytest.warns(DeprecationWarning, match=r"\(feature_group_count=\.\.\.\) is deprecated"):
        old_t = cnnx.ConvTranspose(4, 6, 3, feature_group_count=2, rngs=nnx.Rngs(0))
    new = cnnx.Conv(4, 6, 3, stride=2, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(old(x), new(x))
    assert (old.stride, old_t.groups) == (2, 2)
    with pytest.raises(ValueError, match="Conv: give either stride or strides"), \
            pytest.warns(DeprecationWarning):
        cnnx.Conv(4, 6, 3, stride=3, strides=2, rngs=nnx.Rngs(0))


def test_conv_transpose_equals_op_and_linen(rng):
    x = x_data(rng, (1, 4, 4, 4))
    kw = dict(stride=2, padding=1, output_padding=1, groups=2)
    layer = cnnx.ConvTranspose(4, 6, 3, rngs=nnx.Rngs(0), **kw)
    linen = nn.ConvTranspose(features=6, kernel_size=3, **kw)
    v = linen.init(jax.random.key(1), x)
    assert layer.kernel.shape == (3, 3, 4, 3)
    copy_module(layer, v)
    y = layer(x)
    assert y.shape == (1, 8, 8, 6)
    np.testing.assert_allclose(y, cnnjax.conv_transpose(x, layer.kernel[...].astype(x.dtype),
                                                        layer.bias[...].astype(x.dtype), **kw),
                               rtol=1e-12)
    np.testing.assert_allclose(y, linen.apply(v, x), rtol=1e-12)
    with pytest.raises(ValueError, match=r"ConvTranspose: features \(5\) must be divisible"):
        cnnx.ConvTranspose(4, 5, 3, groups=2, rngs=nnx.Rngs(0))


def test_strided_conv_pool_equals_op_and_linen(rng):
    x = x_data(rng)
    layer = cnnx.StridedConvPool(3, 2, 1, num_features=3, rngs=nnx.Rngs(0))
    linen = nn.StridedConvPool(window_shape=3, strides=2, padding=1)
    v = linen.init(jax.random.key(1), x)
    copy_module(layer, v)
    np.testing.assert_allclose(layer(x), linen.apply(v, x), rtol=1e-12)
    np.testing.assert_allclose(layer(x), cnnjax.conv(x, layer.kernel[...].astype(x.dtype),
                                                     layer.bias[...].astype(x.dtype), stride=2,
                                                     padding=1), rtol=1e-12)
    assert layer(x).shape == cnnjax.max_pool(x, 3, 2, 1).shape
    with pytest.raises(ValueError, match="StridedConvPool: x must have num_features=3 channels"):
        layer(x[..., :2])


# --- pooling: module == op == linen twin -------------------------------------------------------

POOLS = [
    (cnnx.MaxPool(2), nn.MaxPool(window_shape=2), lambda x: cnnjax.max_pool(x, 2)),
    (cnnx.MaxPool(3, 2, 1, ceil_mode=True),
     nn.MaxPool(window_shape=3, strides=2, padding=1, ceil_mode=True),
     lambda x: cnnjax.max_pool(x, 3, 2, 1, ceil_mode=True)),
    (cnnx.MaxPool(2, 1, dilation=2), nn.MaxPool(window_shape=2, strides=1, dilation=2),
     lambda x: cnnjax.max_pool(x, 2, 1, dilation=2)),
    (cnnx.AvgPool(3, 1, "SAME", count_include_pad=False),
     nn.AvgPool(window_shape=3, strides=1, padding="SAME", count_include_pad=False),
     lambda x: cnnjax.avg_pool(x, 3, 1, "SAME", count_include_pad=False)),
    (cnnx.SumPool([2, 3]), nn.SumPool(window_shape=(2, 3)), lambda x: cnnjax.sum_pool(x, (2, 3))),
    (cnnx.LpPool(2, p=3.0), nn.LpPool(window_shape=2, p=3.0),
     lambda x: cnnjax.lp_pool(x, 2, p=3.0)),
    (cnnx.LpPool(3, 1, p=2.0, weights="gaussian", sigma=0.8),
     nn.LpPool(window_shape=3, strides=1, p=2.0, weights="gaussian", sigma=0.8),
     lambda x: cnnjax.lp_pool(x, 3, 1, p=2.0, weights="gaussian", sigma=0.8)),
    (cnnx.L2Pool(2), nn.L2Pool(window_shape=2), lambda x: cnnjax.l2_pool(x, 2)),
    (cnnx.MixedPool(2, alpha=0.3), nn.MixedPool(window_shape=2, alpha=0.3),
     lambda x: cnnjax.mixed_pool(x, 2, alpha=0.3)),
    (cnnx.StochasticMixedPool(2, alpha=0.7), nn.StochasticMixedPool(window_shape=2, alpha=0.7),
     lambda x: cnnjax.stochastic_mixed_pool(x, 2, alpha=0.7, train=False)),
    (cnnx.StochasticPool(2), nn.StochasticPool(window_shape=2),
     lambda x: cnnjax.stochastic_pool(x, 2, train=False)),
    (cnnx.SpectralPool(window_shape=2), nn.SpectralPool(window_shape=2),
     lambda x: cnnjax.spectral_pool(x, (3, 3))),
    (cnnx.SpectralPool((4, 5)), nn.SpectralPool(output_shape=(4, 5)),
     lambda x: cnnjax.spectral_pool(x, (4, 5))),
    (cnnx.AdaptiveAvgPool((4, 3)), nn.AdaptiveAvgPool(output_shape=(4, 3)),
     lambda x: cnnjax.adaptive_avg_pool(x, (4, 3))),
    (cnnx.AdaptiveMaxPool(2), nn.AdaptiveMaxPool(output_shape=2),
     lambda x: cnnjax.adaptive_max_pool(x, (2, 2))),
    (cnnx.GlobalAvgPool(), nn.GlobalAvgPool(), cnnjax.global_avg_pool),
    (cnnx.GlobalMaxPool(), nn.GlobalMaxPool(), cnnjax.global_max_pool),
]


@pytest.mark.parametrize("module, linen, op", POOLS, ids=lambda v: type(v).__name__)
def test_parameter_free_pool_equals_op_and_linen(rng, module, linen, op):
    x = x_data(rng)
    assert n_values(module) == 0
    module.eval()  # stochastic pools: the inference rule; the others have no mode
    y = module(x)
    np.testing.assert_allclose(y, op(x), rtol=1e-12)
    np.testing.assert_allclose(y, linen.apply({}, x, train=False), rtol=1e-12)
    assert y.dtype == x.dtype


def test_learned_lp_pool(rng):
    x = x_data(rng)
    pool = cnnx.LpPool(2, p=3.0, learn_p=True)
    linen = nn.LpPool(window_shape=2, p=3.0, learn_p=True)
    v = linen.init(jax.random.key(0), x)
    np.testing.assert_allclose(pool.p_raw[...], v["params"]["p_raw"], rtol=1e-7)
    np.testing.assert_allclose(pool(x), cnnjax.lp_pool(x, 2, p=3.0), rtol=1e-6)
    v = {"params": {"p_raw": jnp.asarray(0.7, jnp.float32)}}
    copy_module(pool, v)
    np.testing.assert_allclose(pool(x), linen.apply(v, x), rtol=1e-12)
    grads = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(pool)
    assert np.isfinite(grads["p_raw"][...]) and grads["p_raw"][...] != 0
    with pytest.raises(ValueError, match="LpPool: p must be > 1 when learn_p=True"):
        cnnx.LpPool(learn_p=True, p=1.0)


@pytest.mark.parametrize("per_channel", [False, True])
def test_learned_mixed_pool(rng, per_channel):
    x = x_data(rng)
    pool = cnnx.MixedPool(2, alpha=0.25, learn_alpha=True, per_channel=per_channel,
                          num_features=3)
    linen = nn.MixedPool(window_shape=2, alpha=0.25, learn_alpha=True, per_channel=per_channel)
    v = linen.init(jax.random.key(0), x)
    assert pool.alpha_logit.shape == v["params"]["alpha_logit"].shape == ((3,) if per_channel
                                                                           else ())
    np.testing.assert_allclose(pool(x), cnnjax.mixed_pool(x, 2, alpha=0.25), rtol=1e-6)
    v = {"params": {"alpha_logit": jnp.linspace(-1, 1, 3 if per_channel else 1,
                                                dtype=jnp.float32).reshape(pool.alpha_logit.shape)}}
    copy_module(pool, v)
    np.testing.assert_allclose(pool(x), linen.apply(v, x), rtol=1e-12)
    g = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(pool)["alpha_logit"][...]
    assert np.all(np.isfinite(g)) and np.all(g != 0)
    with pytest.raises(ValueError, match=r"MixedPool: alpha must be in \(0, 1\)"):
        cnnx.MixedPool(alpha=1.0, learn_alpha=True)
    if per_channel:
        with pytest.raises(ValueError, match="MixedPool: num_features must be the input's"):
            cnnx.MixedPool(learn_alpha=True, per_channel=True)
        with pytest.raises(ValueError, match="MixedPool: x must have num_features=3 channels"):
            pool(x[..., :2])


@pytest.mark.parametrize("per_channel", [False, True])
def test_gated_pool(rng, per_channel):
    x = x_data(rng)
    init = nnx.initializers.normal(0.5)
    pool = cnnx.GatedPool(2, per_channel=per_channel, num_features=3, gate_init=init,
                          rngs=nnx.Rngs(1))
    assert pool.gate.shape == ((2, 2, 3) if per_channel else (2, 2))
    np.testing.assert_allclose(pool(x), cnnjax.gated_pool(x, pool.gate[...].astype(x.dtype), 2),
                               rtol=1e-12)
    linen = nn.GatedPool(window_shape=2, per_channel=per_channel, gate_init=init)
    v = linen.init(jax.random.key(3), x)
    copy_module(pool, v)
    np.testing.assert_allclose(pool(x), linen.apply(v, x), rtol=1e-12)
    g = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(pool)["gate"][...]
    assert np.all(np.isfinite(g)) and np.all(g != 0)
    with pytest.raises(ValueError, match="GatedPool: x must have 2 spatial dims"):
        pool(x[:, 0])


# --- train / eval and the 'pool' stream ---------------------------------------------------------

STOCHASTIC = [
    (lambda **kw: cnnx.StochasticMixedPool(2, **kw),
     lambda x, **kw: cnnjax.stochastic_mixed_pool(x, 2, **kw)),
    (lambda **kw: cnnx.StochasticPool(2, **kw), lambda x, **kw: cnnjax.stochastic_pool(x, 2, **kw)),
    (lambda **kw: cnnx.SpectralPool(window_shape=2, min_keep=1, **kw),
     lambda x, **kw: cnnjax.spectral_pool(x, (4, 4), min_keep=1, **kw)),
]


@pytest.mark.parametrize("make, op", STOCHASTIC, ids=["stochastic_mixed", "stochastic", "spectral"])
def test_stochastic_pools_train_and_eval(rng, make, op):
    x = x_data(rng, (4, 8, 8, 8))
    pool = make(rngs=nnx.Rngs(params=0, pool=1))
    assert pool.deterministic is False  # a new module trains, as nnx.Dropout does
    # Training draws from a fork of the 'pool' stream: the first key is that fork's first.
    key = nnx.Rngs(params=5, pool=1)["pool"].fork()()
    y1 = pool(x)
    np.testing.assert_allclose(y1, op(x, train=True, key=key), rtol=1e-12)
    assert not np.allclose(pool(x), y1)  # the stream advanced
    same = make(rngs=nnx.Rngs(params=7, pool=1))  # the params seed does not matter
    np.testing.assert_array_equal(same(x), y1)
    other = make(rngs=nnx.Rngs(params=0, pool=2))
    assert not np.allclose(other(x), y1)
    # An rngs call argument takes precedence: a key, a stream or an Rngs.
    k = jax.random.key(9)
    np.testing.assert_allclose(pool(x, rngs=k), op(x, train=True, key=k), rtol=1e-12)
    np.testing.assert_allclose(pool(x, rngs=nnx.Rngs(pool=9)),
                               op(x, train=True, key=nnx.Rngs(pool=9)["pool"]()), rtol=1e-12)
    # Eval mode: the deterministic inference rule, whatever the key.
    pool.eval()
    assert pool.deterministic is True
    y_eval = pool(x)
    np.testing.assert_allclose(y_eval, op(x, train=False), rtol=1e-12)
    np.testing.assert_array_equal(pool(x, rngs=k), y_eval)
    assert not np.allclose(pool(x, deterministic=False), y_eval)  # the call argument wins
    pool.train()
    assert pool.deterministic is False
    assert nnx.view(pool, deterministic=True).deterministic is True


def test_stochastic_pool_draws_a_window_value(rng):
    x = x_data(rng, (2, 4, 4, 8))
    y = np.asarray(cnnx.StochasticPool(2, rngs=nnx.Rngs(3))(x))
    windows = np.asarray(x).reshape(2, 2, 2, 2, 2, 8).transpose(0, 1, 3, 5, 2, 4).reshape(
        2, 2, 2, 8, 4)
    assert np.all(np.any(np.isclose(y[..., None], windows), axis=-1))


def test_stochastic_pool_errors(rng):
    x = x_data(rng)
    with pytest.raises(TypeError, match="StochasticPool: rngs must be given"):
        cnnx.StochasticPool(2)(x)  # training mode, no stream
    cnnx.StochasticPool(2, deterministic=True)(x)  # inference needs none
    assert cnnx.SpectralPool(window_shape=2, frequency_dropout=False)(x).shape == (2, 3, 3, 3)
    with pytest.raises(ValueError, match="StochasticMixedPool: rngs must have a 'pool'"):
        cnnx.StochasticMixedPool(2, rngs=nnx.Rngs(params=0))
    with pytest.raises(TypeError, match="StochasticPool: rngs must be an nnx.Rngs"):
        cnnx.StochasticPool(2, rngs=0)
    with pytest.raises(TypeError, match="StochasticPool: deterministic must be a bool"):
        cnnx.StochasticPool(2, deterministic=None)
    with pytest.raises(TypeError, match="SpectralPool: rngs must be an nnx.Rngs, an nnx"):
        cnnx.SpectralPool(window_shape=2, rngs=nnx.Rngs(0))(x, rngs=1)


def test_model_train_eval_switches_nested_modules(rng):
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.bn = cnnx.BatchNorm(3, rngs=rngs)
            self.pool = cnnx.StochasticPool(2, rngs=rngs)

        def __call__(self, x):
            return self.pool(self.bn(x))

    net = Net(nnx.Rngs(0))
    assert (net.bn.use_running_average, net.pool.deterministic) == (False, False)
    net.eval()
    assert (net.bn.use_running_average, net.pool.deterministic) == (True, True)
    x = x_data(rng)
    np.testing.assert_array_equal(net(x), net(x))
    step = nnx.jit(lambda m, x: m(x))
    net.train()
    a, b = step(net, x), step(net, x)  # the stream lives in the module state under nnx.jit
    assert not np.allclose(a, b)


# --- BatchNorm -----------------------------------------------------------------------------------

def test_batch_norm_equals_op_and_linen(rng):
    x = x_data(rng, (4, 3, 3, 5), jnp.float32)
    bn = cnnx.BatchNorm(5, momentum=0.8, epsilon=1e-3, rngs=nnx.Rngs(0))
    linen = nn.BatchNorm(momentum=0.8, epsilon=1e-3)
    v = linen.init(jax.random.key(0), x, train=False)
    v = {"params": {"scale": jnp.asarray(rng.normal(size=5), jnp.float32),
                    "bias": jnp.asarray(rng.normal(size=5), jnp.float32)},
         "batch_stats": {"mean": jnp.asarray(rng.normal(size=5), jnp.float32),
                         "var": jnp.asarray(rng.uniform(1, 2, size=5), jnp.float32)}}
    copy_module(bn, v)
    stats = cnnjax.BatchStats(v["batch_stats"]["mean"], v["batch_stats"]["var"])
    y_op, new = cnnjax.batch_norm(x, v["params"]["scale"], v["params"]["bias"], stats,
                                  train=True, momentum=0.8, epsilon=1e-3)
    y_linen, upd = linen.apply(v, x, train=True, mutable=["batch_stats"])
    y = bn(x)  # training mode
    np.testing.assert_allclose(y, y_op, rtol=1e-6)
    np.testing.assert_allclose(y, y_linen, rtol=1e-6)
    np.testing.assert_allclose(bn.mean[...], new.mean, rtol=1e-6)
    np.testing.assert_allclose(bn.var[...], upd["batch_stats"]["var"], rtol=1e-6)
    # The running variance takes the unbiased batch variance (m = 36 values per channel).
    xs = np.asarray(x, np.float64).reshape(-1, 5)
    np.testing.assert_allclose(bn.var[...], 0.8 * np.asarray(v["batch_stats"]["var"])
                               + 0.2 * xs.var(axis=0, ddof=1), rtol=1e-5)
    bn.eval()
    y_eval = bn(x)
    np.testing.assert_allclose(y_eval, cnnjax.batch_norm(x, v["params"]["scale"],
                                                         v["params"]["bias"], new, train=False,
                                                         epsilon=1e-3)[0], rtol=1e-6)
    np.testing.assert_allclose(bn.mean[...], new.mean, rtol=1e-6)  # eval leaves them alone
    np.testing.assert_allclose(bn(x, use_running_average=False), y_op, rtol=1e-6)


def test_batch_norm_defaults_and_errors():
    bn = cnnx.BatchNorm(4, rngs=nnx.Rngs(0))
    assert bn.momentum == 0.9 and bn.use_running_average is False  # not Flax's 0.99
    assert bn.mean[...].dtype == jnp.float32 and isinstance(bn.mean, nnx.BatchStat)
    assert isinstance(bn.scale, nnx.Param)
    assert cnnx.BatchNorm(4, use_scale=False, use_bias=False, rngs=nnx.Rngs(0)).scale is None
    assert "UNBIASED" in cnnx.BatchNorm.__doc__.upper() and "0.9" in cnnx.BatchNorm.__doc__
    with pytest.raises(ValueError, match=r"BatchNorm: x must be \[N, \.\.\., C\] with C = "
                                         r"num_features = 4, got shape \(2, 3\)"):
        bn(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="BatchNorm: num_features must be an int >= 1"):
        cnnx.BatchNorm(0, rngs=nnx.Rngs(0))


def test_batch_norm_cross_device(rng):
    x = x_data(rng, (4, 2, 2, 3))
    graphdef, state = nnx.split(cnnx.BatchNorm(3, axis_name="batch", rngs=nnx.Rngs(0)))
    y_all = cnnx.BatchNorm(3, rngs=nnx.Rngs(0))(x)
    y_sh = jax.vmap(lambda s, xs: nnx.merge(graphdef, s)(xs), in_axes=(None, 0),
                    axis_name="batch")(state, x.reshape(2, 2, 2, 2, 3))
    np.testing.assert_allclose(y_sh.reshape(x.shape), y_all, rtol=1e-10, atol=1e-12)


def test_jit_and_vmap(rng):
    x = x_data(rng, (3, 4, 4, 2))
    pool = cnnx.LpPool(2, learn_p=True)
    eager = pool(x)
    np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(pool, x), eager, rtol=1e-6)
    graphdef, state = nnx.split(pool)
    per_example = jax.vmap(lambda xi: nnx.merge(graphdef, state)(xi[None])[0])(x)
    np.testing.assert_allclose(per_example, eager, rtol=1e-6)
