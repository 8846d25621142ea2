"""Tests for cnnjax/ops/_batch_norm.py: batch_norm, BatchStats, fold_batch_norm."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import cnnjax
from cnnjax import BatchStats, batch_norm, fold_batch_norm
from tests.reference import norm as ref


def _stats(rng, c, dtype=np.float64):
    return BatchStats(jnp.asarray(rng.normal(size=c), dtype),
                      jnp.asarray(rng.uniform(0.5, 2.0, size=c), dtype))


def _affine(rng, c, dtype=np.float64):
    return jnp.asarray(rng.normal(size=c), dtype), jnp.asarray(rng.normal(size=c), dtype)


@pytest.mark.parametrize("shape", [(6, 3), (4, 5, 2), (3, 4, 5, 2), (2, 3, 3, 2, 2)])
@pytest.mark.parametrize("train", [True, False])
def test_matches_reference(rng, shape, train):
    c = shape[-1]
    x = rng.normal(loc=3.0, scale=2.0, size=shape)
    scale, bias = _affine(rng, c)
    stats = _stats(rng, c)
    y, new = batch_norm(jnp.asarray(x), scale, bias, stats, train=train, momentum=0.8, epsilon=1e-3)
    y_ref, m_ref, v_ref = ref.batch_norm(x, np.asarray(scale), np.asarray(bias),
                                         np.asarray(stats.mean), np.asarray(stats.var),
                                         train=train, momentum=0.8, epsilon=1e-3)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(new.mean, m_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new.var, v_ref, rtol=1e-10, atol=1e-12)
    if not train:
        assert new is stats


def test_scale_bias_none(rng):
    x = rng.normal(size=(5, 4))
    stats = _stats(rng, 4)
    y, _ = batch_norm(jnp.asarray(x), None, None, stats, train=True)
    y_ref, _, _ = ref.batch_norm(x, None, None, np.asarray(stats.mean), np.asarray(stats.var),
                                 train=True)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)


def test_running_stats_over_several_steps(rng):
    c = 3
    stats = BatchStats.init(c, jnp.float64)
    mean_r, var_r = np.zeros(c), np.ones(c)
    step = jax.jit(lambda x, s: batch_norm(x, None, None, s, train=True))
    for t in range(4):
        x = rng.normal(loc=t, scale=1 + t, size=(7, 2, 2, c))
        _, stats = step(jnp.asarray(x), stats)
        _, mean_r, var_r = ref.batch_norm(x, None, None, mean_r, var_r, train=True)
    np.testing.assert_allclose(stats.mean, mean_r, rtol=1e-10)
    np.testing.assert_allclose(stats.var, var_r, rtol=1e-10)


def test_matches_torch_training_and_eval(rng):
    torch = pytest.importorskip("torch")
    x = rng.normal(loc=1.0, size=(4, 5, 6, 3)).astype(np.float32)
    scale, bias = _affine(rng, 3, np.float32)
    stats = BatchStats.init(3)
    bn = torch.nn.BatchNorm2d(3, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(np.array(scale)))
        bn.bias.copy_(torch.tensor(np.array(bias)))
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    for _ in range(2):
        bn.train()
        yt = bn(xt).detach().numpy().transpose(0, 2, 3, 1)
        y, stats = batch_norm(jnp.asarray(x), scale, bias, stats, train=True)
        np.testing.assert_allclose(y, yt, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats.mean, bn.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.var, bn.running_var.numpy(), rtol=1e-5, atol=1e-6)
    bn.eval()
    yt = bn(xt).detach().numpy().transpose(0, 2, 3, 1)
    y, _ = batch_norm(jnp.asarray(x), scale, bias, stats, train=False)
    np.testing.assert_allclose(y, yt, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("train", [True, False])
def test_gradients(rng, train):
    x = jnp.asarray(rng.normal(size=(4, 3, 2)))
    scale, bias = _affine(rng, 2)
    stats = _stats(rng, 2)
    f = lambda x, s, b: batch_norm(x, s, b, stats, train=train)[0]
    check_grads(f, (x, scale, bias), order=2, modes=["fwd", "rev"], atol=1e-5, rtol=1e-5)


def test_cross_device_statistics_equal_whole_batch(rng):
    x = rng.normal(loc=2.0, size=(8, 3, 3, 4))
    scale, bias = _affine(rng, 4)
    stats = _stats(rng, 4)
    y_all, s_all = batch_norm(jnp.asarray(x), scale, bias, stats, train=True)
    shards = jnp.asarray(x.reshape(4, 2, 3, 3, 4))
    f = lambda xs: batch_norm(xs, scale, bias, stats, train=True, axis_name="dev")
    y_sh, s_sh = jax.vmap(f, axis_name="dev")(shards)
    np.testing.assert_allclose(y_sh.reshape(x.shape), y_all, rtol=1e-10, atol=1e-10)
    for i in range(4):  # every device ends with the global running statistics
        np.testing.assert_allclose(s_sh.mean[i], s_all.mean, rtol=1e-10)
        np.testing.assert_allclose(s_sh.var[i], s_all.var, rtol=1e-10)
    # Without axis_name each shard would use its own statistics: the test can tell.
    y_local, _ = jax.vmap(lambda xs: batch_norm(xs, scale, bias, stats, train=True))(shards)
    assert not np.allclose(y_local.reshape(x.shape), y_all)


def test_jit_equals_eager(rng):
    x = jnp.asarray(rng.normal(size=(4, 5, 5, 3)), jnp.float32)
    scale, bias = _affine(rng, 3, np.float32)
    stats = _stats(rng, 3, np.float32)
    for train in (True, False):
        f = lambda x, s: batch_norm(x, scale, bias, s, train=train)
        y1, s1 = f(x, stats)
        y2, s2 = jax.jit(f)(x, stats)
        np.testing.assert_allclose(y1, y2, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(s1.var, s2.var, rtol=1e-6)


def test_vmap_equals_loop(rng):
    xs = jnp.asarray(rng.normal(size=(3, 4, 2, 2)))
    scale, bias = _affine(rng, 2)
    stats = _stats(rng, 2)
    f = lambda x: batch_norm(x, scale, bias, stats, train=True)
    y, s = jax.vmap(f)(xs)
    for i in range(3):
        yi, si = f(xs[i])
        np.testing.assert_allclose(y[i], yi, rtol=1e-12)
        np.testing.assert_allclose(s.var[i], si.var, rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
def test_keeps_dtypes(rng, dtype):
    x = jnp.asarray(rng.normal(size=(4, 3, 3, 2)), dtype)
    stats = BatchStats.init(2)
    y, new = batch_norm(x, jnp.ones(2, dtype), jnp.zeros(2, dtype), stats, train=True)
    assert y.dtype == dtype
    assert new.mean.dtype == new.var.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(y, np.float32)))


@pytest.mark.parametrize("shape, match", [
    ((0, 3), r"batch_norm: train=True needs at least one value per channel to compute batch "
             r"statistics, got x of shape \(0, 3\)\."),
    ((0, 4, 4, 3), "needs at least one value per channel"),
    ((1, 3), r"batch_norm: Expected more than 1 value per channel when training \(one value "
             r"has no variance\), got x of shape \(1, 3\)\."),
    ((1, 1, 1, 3), "Expected more than 1 value per channel when training"),
])
def test_training_needs_two_values_per_channel(shape, match):
    # An empty batch used to turn the running statistics into NaN, and a single value per
    # channel silently dragged the running variance towards 0 (PyTorch raises for both).
    x = jnp.ones(shape, jnp.float32)
    with pytest.raises(ValueError, match=match):
        batch_norm(x, None, None, BatchStats.init(3), train=True)
    with pytest.raises(ValueError, match=match):
        jax.jit(lambda v: batch_norm(v, None, None, BatchStats.init(3), train=True))(x)
    # Inference needs no batch statistics: any batch size works.
    y, _ = batch_norm(x, None, None, BatchStats.init(3), train=False)
    assert y.shape == shape


def test_one_value_per_shard_is_enough_across_an_axis(rng):
    # With axis_name, m counts the global batch: 2 shards of one value are 2 values.
    x = jnp.asarray(rng.normal(size=(2, 3)))
    stats = BatchStats.init(3, jnp.float64)
    y_all, s_all = batch_norm(x, None, None, stats, train=True)
    y_sh, s_sh = jax.vmap(lambda v: batch_norm(v, None, None, stats, train=True,
                                               axis_name="dev"), axis_name="dev")(x[:, None])
    np.testing.assert_allclose(y_sh[:, 0], y_all, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s_sh.var[0], s_all.var, rtol=1e-12)


def test_variance_never_negative():
    # A constant channel with a large offset: E[x^2] - E[x]^2 would round below zero in float32.
    x = jnp.full((64, 3), 1234.567, jnp.float32)
    y, new = batch_norm(x, None, None, BatchStats.init(3), train=True, epsilon=0.0)
    assert np.all(np.asarray(new.var) >= 0)
    # Eval with a (corrupt) negative running variance still clips to zero rather than NaN.
    stats = BatchStats(jnp.zeros(3, jnp.float32), jnp.full((3,), -1.0, jnp.float32))
    y, _ = batch_norm(jnp.ones((2, 3), jnp.float32), None, None, stats, train=False, epsilon=1e-3)
    assert np.all(np.isfinite(y))


def test_no_gradient_into_running_stats(rng):
    x = jnp.asarray(rng.normal(size=(5, 2)))
    g = jax.grad(lambda x: jnp.sum(batch_norm(x, None, None, BatchStats.init(2, jnp.float64),
                                              train=True)[1].var))(x)
    np.testing.assert_array_equal(g, 0.0)


@pytest.mark.parametrize("groups", [1, 2])
def test_fold_conv(rng, groups):
    x = rng.normal(size=(2, 6, 5, 4))
    w = rng.normal(size=(3, 2, 4 // groups, 6))
    b = rng.normal(size=6)
    scale, bias = _affine(rng, 6)
    stats = _stats(rng, 6)
    conv = lambda x, w, b: lax.conv_general_dilated(
        x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups, precision=lax.Precision.HIGHEST) + b.reshape(1, 1, 1, -1)
    z = conv(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b))
    if groups == 1:  # the lax conv itself against the loop reference
        np.testing.assert_allclose(z, ref.conv2d_valid(x, w, b), rtol=1e-10, atol=1e-10)
    expected, _ = batch_norm(z, scale, bias, stats, train=False, epsilon=1e-3)
    w2, b2 = fold_batch_norm(jnp.asarray(w), jnp.asarray(b), scale, bias, stats, epsilon=1e-3)
    assert w2.shape == w.shape and b2.shape == (6,)
    np.testing.assert_allclose(conv(jnp.asarray(x), w2, b2), expected, rtol=1e-10, atol=1e-10)


def test_fold_dense_without_bias(rng):
    x = rng.normal(size=(3, 5))
    w = rng.normal(size=(5, 4))
    scale, bias = _affine(rng, 4)
    stats = _stats(rng, 4)
    expected, _ = batch_norm(jnp.asarray(ref.dense(x, w, None)), scale, bias, stats, train=False)
    w2, b2 = fold_batch_norm(jnp.asarray(w), None, scale, bias, stats)
    np.testing.assert_allclose(ref.dense(x, np.asarray(w2), np.asarray(b2)), expected,
                               rtol=1e-10, atol=1e-10)


def test_fold_float32_keeps_dtype(rng):
    w = jnp.asarray(rng.normal(size=(3, 3, 2, 4)), jnp.float32)
    w2, b2 = fold_batch_norm(w, None, None, None, BatchStats.init(4))
    assert w2.dtype == b2.dtype == jnp.float32


def test_exported_at_top_level():
    assert cnnjax.batch_norm is batch_norm and "fold_batch_norm" in cnnjax.__all__


@pytest.mark.parametrize("call, exc, match", [
    (lambda: batch_norm(jnp.ones(3), None, None, BatchStats.init(3), train=True),
     ValueError, "batch_norm: x must have rank >= 2"),
    (lambda: batch_norm(jnp.ones((2, 3)), None, None, BatchStats.init(4), train=True),
     ValueError, r"batch_norm: stats.mean must have shape \(3,\)"),
    (lambda: batch_norm(jnp.ones((2, 3)), jnp.ones(2), None, BatchStats.init(3), train=True),
     ValueError, r"batch_norm: scale must have shape \(3,\)"),
    (lambda: batch_norm(jnp.ones((2, 3)), None, None, BatchStats.init(3), train=True,
                        momentum=1.5), ValueError, r"momentum must be in \[0, 1\]"),
    (lambda: batch_norm(jnp.ones((2, 3)), None, None, BatchStats.init(3), train=True,
                        epsilon=-1.0), ValueError, "epsilon must be >= 0"),
    (lambda: batch_norm(jnp.ones((2, 3)), None, None, BatchStats.init(3), train="yes"),
     TypeError, "train must be a Python bool"),
    (lambda: batch_norm(jnp.ones((2, 3), jnp.int32), None, None, BatchStats.init(3), train=True),
     TypeError, "floating dtype"),
    (lambda: batch_norm(jnp.ones((2, 3)), None, None, (jnp.ones(3),), train=True),
     TypeError, "stats must be a BatchStats"),
    (lambda: fold_batch_norm(jnp.ones(3), None, None, None, BatchStats.init(3)),
     ValueError, "fold_batch_norm: w must be a dense kernel"),
    (lambda: fold_batch_norm(jnp.ones((2, 3)), jnp.ones(2), None, None, BatchStats.init(3)),
     ValueError, r"fold_batch_norm: b must have shape \(3,\)"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
