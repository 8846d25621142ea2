"""Test configuration: float64 available, strict promotion, fast compiles.

* ``jax_enable_x64`` so gradient checks can run in float64; library code must therefore keep
  the caller's dtype (float32 in stays float32 out) without relying on x64 being off.
* Strict dtype promotion and rank promotion: silent float64 upcasts or broadcasting bugs in
  the library raise instead of passing.
* ``jax_disable_most_optimizations``: the tests use small shapes, so XLA's compile time
  dominates; turning the optimisation passes off cuts the suite's time on 2 cores.
"""
import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_disable_most_optimizations", True)


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(0)
