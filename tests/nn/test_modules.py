"""Tests for cnnjax/nn: every module equals its op; learned parameters; make_pool specs."""
import functools

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnjax
from cnnjax import nn


def _x(rng, shape=(2, 6, 6, 3), dtype=jnp.float64):
    # Distinct values (no ties), so max-type pools have a unique argmax.
    return jnp.asarray(rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape) + 0.1,
                       dtype)


# --- convolution --------------------------------------------------------------------------

@pytest.mark.parametrize("kw, op_kw", [
    (dict(features=4, kernel_size=3), {}),
    (dict(features=6, kernel_size=(3, 2), stride=2, padding=1, dilation=(1, 2),
          groups=3, padding_mode="reflect"),
     dict(stride=2, padding=1, dilation=(1, 2), groups=3, padding_mode="reflect")),
    (dict(features=6, kernel_size=1, groups=3, use_bias=False), dict(groups=3)),
])
def test_conv_module_equals_op(rng, kw, op_kw):
    x = _x(rng)
    layer = nn.Conv(**kw)
    v = layer.init(jax.random.key(0), x)
    k = v["params"]["kernel"]
    groups = op_kw.get("groups", 1)
    assert k.shape == (*np.broadcast_to(kw["kernel_size"], 2), 3 // groups, kw["features"])
    assert ("bias" in v["params"]) == kw.get("use_bias", True)
    b = v["params"].get("bias")
    y = layer.apply(v, x)
    np.testing.assert_allclose(y, cnnjax.conv(x, k.astype(x.dtype),
                                              None if b is None else b.astype(x.dtype), **op_kw),
                               rtol=1e-6, atol=1e-6)
    assert y.dtype == x.dtype


def test_conv_groups_conflict_error(rng):
    with pytest.raises(ValueError, match="Conv: give either feature_group_count or groups"), \
            pytest.warns(DeprecationWarning):
        nn.Conv(4, 3, feature_group_count=2, groups=3).init(jax.random.key(0), _x(rng))


@pytest.mark.parametrize("cls", [nn.Conv, nn.ConvTranspose])
def test_conv_flax_spellings_still_work_with_a_warning(rng, cls):
    x = _x(rng, (1, 4, 4, 4))
    new = cls(features=6, kernel_size=3, stride=2, groups=2)
    old = cls(features=6, kernel_size=3, strides=2, feature_group_count=2)
    v = new.init(jax.random.key(0), x)
    deprecated = r"\((strides|feature_group_count)=\.\.\.\) is deprecated"
    with pytest.warns(DeprecationWarning, match=deprecated):
        y_old = old.apply(v, x)
    np.testing.assert_array_equal(y_old, new.apply(v, x))


def test_conv_transpose_module_equals_op(rng):
    x = _x(rng, (1, 4, 4, 4))
    layer = nn.ConvTranspose(features=6, kernel_size=3, stride=2, padding=1, output_padding=1,
                             groups=2)
    v = layer.init(jax.random.key(0), x)
    assert v["params"]["kernel"].shape == (3, 3, 4, 3)
    y = layer.apply(v, x)
    assert y.shape == (1, 8, 8, 6)
    expected = cnnjax.conv_transpose(x, v["params"]["kernel"].astype(x.dtype),
                                     v["params"]["bias"].astype(x.dtype), stride=2, padding=1,
                                     output_padding=1, groups=2)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


# --- pooling: module == op ------------------------------------------------------------------

DETERMINISTIC = [
    (nn.MaxPool(window_shape=2), lambda x: cnnjax.max_pool(x, 2)),
    (nn.MaxPool(window_shape=3, strides=2, padding=1, ceil_mode=True),
     lambda x: cnnjax.max_pool(x, 3, 2, 1, ceil_mode=True)),
    (nn.AvgPool(window_shape=3, strides=1, padding="SAME", count_include_pad=False),
     lambda x: cnnjax.avg_pool(x, 3, 1, "SAME", count_include_pad=False)),
    (nn.SumPool(window_shape=(2, 3)), lambda x: cnnjax.sum_pool(x, (2, 3))),
    (nn.LpPool(window_shape=2, p=3.0), lambda x: cnnjax.lp_pool(x, 2, p=3.0)),
    (nn.LpPool(window_shape=3, strides=1, p=2.0, weights="gaussian", sigma=0.8),
     lambda x: cnnjax.lp_pool(x, 3, 1, p=2.0, weights="gaussian", sigma=0.8)),
    (nn.L2Pool(window_shape=2), lambda x: cnnjax.l2_pool(x, 2)),
    (nn.MixedPool(window_shape=2, alpha=0.3), lambda x: cnnjax.mixed_pool(x, 2, alpha=0.3)),
    (nn.StochasticMixedPool(window_shape=2, alpha=0.7),
     lambda x: cnnjax.stochastic_mixed_pool(x, 2, alpha=0.7, train=False)),
    (nn.StochasticPool(window_shape=2), lambda x: cnnjax.stochastic_pool(x, 2, train=False)),
    (nn.SpectralPool(window_shape=2), lambda x: cnnjax.spectral_pool(x, (3, 3))),
    (nn.SpectralPool(output_shape=(4, 5)), lambda x: cnnjax.spectral_pool(x, (4, 5))),
    (nn.AdaptiveAvgPool(output_shape=(4, 3)), lambda x: cnnjax.adaptive_avg_pool(x, (4, 3))),
    (nn.AdaptiveMaxPool(output_shape=2), lambda x: cnnjax.adaptive_max_pool(x, (2, 2))),
    (nn.GlobalAvgPool(), cnnjax.global_avg_pool),
    (nn.GlobalMaxPool(), cnnjax.global_max_pool),
]


@pytest.mark.parametrize("module, op", DETERMINISTIC, ids=lambda v: type(v).__name__)
def test_pool_module_equals_op(rng, module, op):
    x = _x(rng)
    v = module.init(jax.random.key(0), x)
    assert not v  # these pools have no parameters
    expected = op(x)
    for train in (False, True):  # train is accepted everywhere; these ignore it (no rng given)
        if train and isinstance(module, (nn.StochasticMixedPool, nn.StochasticPool,
                                         nn.SpectralPool)):
            continue
        np.testing.assert_allclose(module.apply({}, x, train=train), expected, rtol=1e-12)


def test_learned_lp_pool(rng):
    x = _x(rng)
    pool = nn.LpPool(window_shape=2, learn_p=True, p=3.0)
    v = pool.init(jax.random.key(0), x)
    raw = v["params"]["p_raw"]
    assert raw.shape == ()
    p = 1.0 + jax.nn.softplus(raw)
    np.testing.assert_allclose(p, 3.0, rtol=1e-6)
    np.testing.assert_allclose(pool.apply(v, x), cnnjax.lp_pool(x, 2, p=p.astype(x.dtype)),
                               rtol=1e-6)
    g = jax.grad(lambda v: jnp.sum(pool.apply(v, x) ** 2))(v)["params"]["p_raw"]
    assert np.isfinite(g) and g != 0
    # p stays > 1 however negative the raw parameter gets.
    low = {"params": {"p_raw": jnp.asarray(-30.0, jnp.float32)}}
    assert np.all(np.isfinite(pool.apply(low, x)))
    with pytest.raises(ValueError, match="LpPool: p must be > 1 when learn_p=True"):
        nn.LpPool(learn_p=True, p=1.0).init(jax.random.key(0), x)


@pytest.mark.parametrize("per_channel", [False, True])
def test_learned_mixed_pool(rng, per_channel):
    x = _x(rng)
    pool = nn.MixedPool(window_shape=2, alpha=0.25, learn_alpha=True, per_channel=per_channel)
    v = pool.init(jax.random.key(0), x)
    logit = v["params"]["alpha_logit"]
    assert logit.shape == ((3,) if per_channel else ())
    np.testing.assert_allclose(jax.nn.sigmoid(logit), 0.25, rtol=1e-6)
    np.testing.assert_allclose(pool.apply(v, x), cnnjax.mixed_pool(x, 2, alpha=0.25), rtol=1e-6)
    g = jax.grad(lambda v: jnp.sum(pool.apply(v, x) ** 2))(v)["params"]["alpha_logit"]
    assert np.all(np.isfinite(g)) and np.all(g != 0)
    with pytest.raises(ValueError, match=r"MixedPool: alpha must be in \(0, 1\)"):
        nn.MixedPool(alpha=1.0, learn_alpha=True).init(jax.random.key(0), x)


@pytest.mark.parametrize("per_channel", [False, True])
def test_gated_pool(rng, per_channel):
    x = _x(rng)
    init = fnn.initializers.normal(0.5)
    pool = nn.GatedPool(window_shape=2, per_channel=per_channel, gate_init=init)
    v = pool.init(jax.random.key(1), x)
    gate = v["params"]["gate"]
    assert gate.shape == ((2, 2, 3) if per_channel else (2, 2))
    np.testing.assert_allclose(pool.apply(v, x), cnnjax.gated_pool(x, gate.astype(x.dtype), 2),
                               rtol=1e-12)
    g = jax.grad(lambda v: jnp.sum(pool.apply(v, x) ** 2))(v)["params"]["gate"]
    assert np.all(np.isfinite(g)) and np.all(g != 0)


def test_stochastic_modules_use_pool_rng(rng):
    x = _x(rng, (2, 4, 4, 8))
    mx, av = cnnjax.max_pool(x, 2), cnnjax.avg_pool(x, 2)
    smp = nn.StochasticMixedPool(window_shape=2, alpha=0.5)
    y1 = smp.apply({}, x, train=True, rngs={"pool": jax.random.key(1)})
    y2 = smp.apply({}, x, train=True, rngs={"pool": jax.random.key(1)})
    y3 = smp.apply({}, x, train=True, rngs={"pool": jax.random.key(2)})
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)
    # Training picks max or average per (example, channel).
    is_max = np.all(np.isclose(y1, mx), axis=(1, 2))
    is_avg = np.all(np.isclose(y1, av), axis=(1, 2))
    assert np.all(is_max | is_avg)
    sp = nn.StochasticPool(window_shape=2)
    y = np.asarray(sp.apply({}, x, train=True, rngs={"pool": jax.random.key(3)}))
    windows = np.asarray(x).reshape(2, 2, 2, 2, 2, 8).transpose(0, 1, 3, 5, 2, 4).reshape(
        2, 2, 2, 8, 4)
    assert np.all(np.any(np.isclose(y[..., None], windows), axis=-1))  # a sampled input value
    with pytest.raises(Exception, match="pool"):
        sp.apply({}, x, train=True)  # no 'pool' rng


def test_spectral_pool_frequency_dropout(rng):
    x = _x(rng, (1, 8, 8, 2))
    sp = nn.SpectralPool(window_shape=2)
    eval_y = sp.apply({}, x, train=False)
    assert eval_y.shape == (1, 4, 4, 2)
    a = sp.apply({}, x, train=True, rngs={"pool": jax.random.key(0)})
    b = sp.apply({}, x, train=True, rngs={"pool": jax.random.key(0)})
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        nn.SpectralPool(window_shape=2, frequency_dropout=False).apply({}, x, train=True),
        eval_y, rtol=1e-12)


# --- BatchNorm -------------------------------------------------------------------------------

def test_batch_norm_module_equals_op(rng):
    x = _x(rng, (4, 3, 3, 5), jnp.float32)
    bn = nn.BatchNorm(momentum=0.8, epsilon=1e-3)
    v = bn.init(jax.random.key(0), x, train=True)
    # init does not touch the running statistics
    np.testing.assert_array_equal(v["batch_stats"]["mean"], 0.0)
    np.testing.assert_array_equal(v["batch_stats"]["var"], 1.0)
    v = {"params": {"scale": jnp.asarray(rng.normal(size=5), jnp.float32),
                    "bias": jnp.asarray(rng.normal(size=5), jnp.float32)},
         "batch_stats": v["batch_stats"]}
    y, upd = bn.apply(v, x, train=True, mutable=["batch_stats"])
    stats = cnnjax.BatchStats(v["batch_stats"]["mean"], v["batch_stats"]["var"])
    y_op, new = cnnjax.batch_norm(x, v["params"]["scale"], v["params"]["bias"], stats,
                                  train=True, momentum=0.8, epsilon=1e-3)
    np.testing.assert_allclose(y, y_op, rtol=1e-6)
    np.testing.assert_allclose(upd["batch_stats"]["mean"], new.mean, rtol=1e-6)
    np.testing.assert_allclose(upd["batch_stats"]["var"], new.var, rtol=1e-6)
    v2 = {**v, **upd}
    y_eval = bn.apply(v2, x, train=False)
    np.testing.assert_allclose(y_eval, cnnjax.batch_norm(x, v["params"]["scale"],
                                                         v["params"]["bias"], new,
                                                         train=False, epsilon=1e-3)[0],
                               rtol=1e-6)
    y_jit = jax.jit(lambda v, x: bn.apply(v, x, train=False))(v2, x)
    np.testing.assert_allclose(y_jit, y_eval, rtol=1e-6, atol=1e-6)


def test_batch_norm_module_cross_device(rng):
    x = _x(rng, (4, 2, 2, 3))
    bn = nn.BatchNorm(axis_name="batch")
    v = bn.init(jax.random.key(0), x, train=True)
    y_all, _ = nn.BatchNorm().apply(v, x, train=True, mutable=["batch_stats"])
    y_sh, _ = jax.vmap(lambda xs: bn.apply(v, xs, train=True, mutable=["batch_stats"]),
                       axis_name="batch")(x.reshape(2, 2, 2, 2, 3))
    np.testing.assert_allclose(y_sh.reshape(x.shape), y_all, rtol=1e-10, atol=1e-12)


# --- make_pool -------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, cls, fields", [
    ("max", nn.MaxPool, {}), ("avg", nn.AvgPool, {}), ("sum", nn.SumPool, {}),
    ("lp:p=3", nn.LpPool, {"p": 3.0, "learn_p": False}),
    ("lp:learn", nn.LpPool, {"learn_p": True}), ("l2", nn.L2Pool, {}),
    ("mixed:alpha=0.5", nn.MixedPool, {"alpha": 0.5, "learn_alpha": False}),
    ("mixed:learn", nn.MixedPool, {"learn_alpha": True, "per_channel": False}),
    ("mixed:learn,per_channel", nn.MixedPool, {"learn_alpha": True, "per_channel": True}),
    ("stochastic_mixed", nn.StochasticMixedPool, {}), ("gated", nn.GatedPool, {}),
    ("gated:per_channel", nn.GatedPool, {"per_channel": True}),
    ("stochastic", nn.StochasticPool, {}), ("spectral", nn.SpectralPool, {}),
    ("LP:P=1.5", nn.LpPool, {"p": 1.5}),
])
def test_make_pool_specs(spec, cls, fields):
    pool = nn.make_pool(spec, window_shape=3, strides=2, padding=1)
    assert type(pool) is cls
    assert (pool.window_shape, pool.strides, pool.padding) == (3, 2, 1)
    for k, v in fields.items():
        assert getattr(pool, k) == v


def test_pool_specs_constant():
    assert nn.POOL_SPECS == (
        "max", "avg", "sum", "lp:p=3", "lp:learn", "l2", "mixed:alpha=0.5", "mixed:learn",
        "stochastic_mixed", "gated", "stochastic", "spectral",
        "blur", "maxblur", "soft", "lip", "gem:p=3", "gem:learn", "lse:r=1", "lse:learn", "min",
        "median", "fractional", "tree", "strided_conv")
    for spec in nn.POOL_SPECS:
        nn.make_pool(spec)


@pytest.mark.parametrize("spec, match", [
    ("median3", "unknown pooling spec 'median3'; valid specs are 'max', 'avg'"),
    ("lp", "needs 'p=<float>' or 'learn'"),
    ("lp:q=3", "unknown option 'q=3'"),
    ("max:learn", "unknown option 'learn'"),
    ("lp:p=abc", "needs a number"),
    ("mixed:per_channel", "needs 'learn'"),
])
def test_make_pool_rejects(spec, match):
    with pytest.raises(ValueError, match=match) as info:
        nn.make_pool(spec)
    assert "'spectral'" in str(info.value)  # the message lists the valid specs


def test_spec_output_equals_module(rng):
    x = _x(rng)
    pool = nn.make_pool("mixed:alpha=0.5", 2)
    np.testing.assert_allclose(pool.apply({}, x), cnnjax.mixed_pool(x, 2, alpha=0.5), rtol=1e-12)
    factory = functools.partial(nn.MixedPool, alpha=0.2)
    np.testing.assert_allclose(factory(window_shape=2).apply({}, x),
                               cnnjax.mixed_pool(x, 2, alpha=0.2), rtol=1e-12)


def test_pool_module_jit_vmap(rng):
    x = _x(rng, (3, 4, 4, 2))
    pool = nn.LpPool(window_shape=2, learn_p=True)
    v = pool.init(jax.random.key(0), x)
    eager = pool.apply(v, x)
    np.testing.assert_allclose(jax.jit(pool.apply)(v, x), eager, rtol=1e-6)
    per_example = jax.vmap(lambda xi: pool.apply(v, xi[None])[0])(x)
    np.testing.assert_allclose(per_example, eager, rtol=1e-6)
