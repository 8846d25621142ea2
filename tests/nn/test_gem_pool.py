"""Tests for cnnjax/nn/_gem_pool.py: GeMPool, GlobalGeMPool, LsePool, GlobalLsePool."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnjax
from cnnjax.nn._gem_pool import GeMPool, GlobalGeMPool, GlobalLsePool, LsePool


def test_fixed_modules_equal_their_ops(rng):
    x = rng.standard_normal((2, 7, 6, 3))
    for module, fn in [
        (GeMPool(window_shape=3, strides=2, padding=1, p=2.5, eps=1e-3),
         lambda v: cnnjax.gem_pool(v, 3, 2, 1, p=2.5, eps=1e-3)),
        (GeMPool(), lambda v: cnnjax.gem_pool(v, 2)),
        (GlobalGeMPool(p=4.0), lambda v: cnnjax.global_gem_pool(v, p=4.0)),
        (LsePool(window_shape=2, strides=1, padding="SAME", r=3.0),
         lambda v: cnnjax.lse_pool(v, 2, 1, "SAME", r=3.0)),
        (GlobalLsePool(r=0.5), lambda v: cnnjax.global_lse_pool(v, r=0.5)),
    ]:
        assert module.init(jax.random.key(0), x) == {}
        for train in (False, True):
            np.testing.assert_array_equal(module.apply({}, x, train=train), fn(x))


@pytest.mark.parametrize("cls,name,start,op", [
    (GeMPool, "p", 3.0, lambda v, h: cnnjax.gem_pool(v, 2, p=h)),
    (GlobalGeMPool, "p", 3.0, lambda v, h: cnnjax.global_gem_pool(v, p=h)),
    (LsePool, "r", 1.0, lambda v, h: cnnjax.lse_pool(v, 2, r=h)),
    (GlobalLsePool, "r", 1.0, lambda v, h: cnnjax.global_lse_pool(v, r=h)),
])
@pytest.mark.parametrize("per_channel", [False, True])
def test_learned_hyperparameter(rng, cls, name, start, op, per_channel):
    x = rng.standard_normal((2, 6, 6, 3))
    module = cls(**{f"learn_{name}": True, "per_channel": per_channel})
    v = module.init(jax.random.key(0), x)
    raw = v["params"][f"{name}_raw"]
    assert raw.shape == ((3,) if per_channel else ())
    # softplus(raw) starts at the default (3 for GeM, 1 for LSE).
    np.testing.assert_allclose(jax.nn.softplus(raw), start, rtol=1e-6)
    np.testing.assert_allclose(module.apply(v, x), op(x, start), rtol=1e-6)
    # Module == op for any parameter value; the gradient reaches the parameter.
    shift = jnp.linspace(-1.0, 1.0, raw.size, dtype=raw.dtype).reshape(raw.shape)
    new = {"params": {f"{name}_raw": raw + shift}}
    value = jax.nn.softplus(new["params"][f"{name}_raw"]).astype(x.dtype)
    np.testing.assert_allclose(module.apply(new, x), op(x, value), rtol=1e-12)
    g = jax.grad(lambda p: jnp.sum(module.apply(p, x) ** 2))(new)
    assert np.all(np.isfinite(g["params"][f"{name}_raw"]))
    assert np.all(np.abs(g["params"][f"{name}_raw"]) > 0)
    # Other starting values; float32 parameters do not promote a float32 input.
    module = cls(**{name: 2.0, f"learn_{name}": True})
    v = module.init(jax.random.key(0), x.astype(np.float32))
    np.testing.assert_allclose(jax.nn.softplus(v["params"][f"{name}_raw"]), 2.0, rtol=1e-6)
    assert jax.jit(module.apply)(v, x.astype(np.float32)).dtype == jnp.float32


@pytest.mark.parametrize("module,match", [
    (GeMPool(p=0.0, learn_p=True), r"GeMPool: p must be a positive finite number when "
                                   r"learn_p=True \(p = softplus\(raw\)\), got 0\.0"),
    (LsePool(r=float("inf"), learn_r=True), "LsePool: r must be a positive finite number"),
    (GlobalGeMPool(per_channel=True), "GlobalGeMPool: per_channel=True needs learn_p=True, got "
                                      "learn_p=False"),
    (GlobalLsePool(per_channel=True), "GlobalLsePool: per_channel=True needs learn_r=True"),
    (GeMPool(p=-1.0), "gem_pool: p must be > 0, got -1.0"),
    (LsePool(r=0.0), "lse_pool: r must be > 0, got 0.0"),
])
def test_bad_fields(module, match):
    with pytest.raises(ValueError, match=match):
        module.init(jax.random.key(0), jnp.ones((1, 4, 4, 3)))
