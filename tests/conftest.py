"""Test configuration: float64 available, strict promotion, fast compiles.

* ``jax_enable_x64`` so gradient checks can run in float64; library code must therefore keep
  the caller's dtype (float32 in stays float32 out) without relying on x64 being off.
* Strict dtype promotion and rank promotion: silent float64 upcasts or broadcasting bugs in
  the library raise instead of passing.
* ``jax_disable_most_optimizations``: the tests use small shapes, so XLA's compile time
  dominates; turning the optimisation passes off cuts the suite's time on 2 cores.
* ``CNNJAX_AUTOTUNE=0``: ``impl='auto'`` uses its static rule, so the suite neither spends
  time measuring every test's conv shapes nor writes a tuning cache to the home directory.
  A test opts in to measuring with the ``autotune`` fixture (measuring on, a fresh cache in
  ``tmp_path``, the in-memory choices forgotten before and after).
"""
import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["CNNJAX_AUTOTUNE"] = "0"

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


@pytest.fixture
def autotune(tmp_path, monkeypatch):
    """Measuring ``impl='auto'`` on, with a fresh cache directory; yields that directory."""
    from cnnjax.ops import _autotune

    monkeypatch.setenv("CNNJAX_AUTOTUNE", "1")
    monkeypatch.setenv("CNNJAX_CACHE_DIR", str(tmp_path / "autotune"))
    _autotune.clear_memo()
    yield tmp_path / "autotune"
    _autotune.clear_memo()
