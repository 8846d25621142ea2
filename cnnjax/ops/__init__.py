"""Pure functions: arrays and static hyperparameters in, arrays out.

No flax import and no parameter creation here; ``cnnjax.nn`` wraps these in modules.
Each family lives in its own private module (``_conv.py``, ``_pool.py``, ...); this file
re-exports the public names of ``shared/API.md``.
"""
# Each family owns one block below; keep the blocks separate.

# --- convolution (_conv.py, _im2col.py, _fft_conv.py, _conv_matrix.py) ---

# --- pooling (_pool.py, _lp_pool.py, _mixed_pool.py, _stochastic_pool.py, _spectral_pool.py) ---

# --- normalization (_batch_norm.py) ---

__all__ = sorted(name for name in dir() if not name.startswith("_"))
