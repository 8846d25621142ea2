"""The one PRNG-key rule (cnnjax.ops.checks.check_key) in every op that takes a key."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnjax

OPS = ["stochastic_mixed_pool", "spectral_pool", "stochastic_pool"]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("key, got", [
    (0, "int 0"), (1.5, "float 1.5"), (np.zeros(2, np.float32), "a float32 array of shape (2,)"),
    (np.zeros(3, np.uint32), "a uint32 array of shape (3,)"),
    (jax.random.split(jax.random.key(0), 2), "a typed key array of shape (2,) (a batch of keys)"),
])
def test_key_must_be_one_prng_key(op, key, got):
    fn = getattr(cnnjax, op)
    x = jnp.ones((1, 4, 4, 1))
    message = (re.escape(op) + r": key must be one PRNG key "
               r"\(jax.random.key\(seed\), or the uint32 \[2\] jax.random.PRNGKey\(seed\)\), "
               r"got " + re.escape(got) + r"\.")
    with pytest.raises(TypeError, match=message):
        fn(x, 2, train=True, key=key)
    # Both key kinds, and a key traced under jit, are accepted.
    for good in (jax.random.key(0), jax.random.PRNGKey(0), np.array([0, 1], np.uint32)):
        fn(x, 2, train=True, key=good)
    jax.jit(lambda key: fn(x, 2, train=True, key=key))(jax.random.key(0))
