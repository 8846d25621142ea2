"""Pure functions: arrays and static hyperparameters in, arrays out.

No flax import and no parameter creation here; ``cnnjax.nn`` wraps these in modules.
Each family lives in its own private module (``_conv.py``, ``_pool.py``, ...); this file
re-exports the public names of ``shared/API.md``.
"""
# Each family owns one block below; keep the blocks separate.

# --- convolution (_conv.py, _im2col.py, _fft_conv.py, _conv_matrix.py) ---
from cnnjax.ops._conv import conv, conv_transpose
from cnnjax.ops._im2col import col2im, im2col
from cnnjax.ops._geometry import (
    ReceptiveField, conv_matrix, conv_output_shape, receptive_field)

# --- pooling (_pool.py, _lp_pool.py, _mixed_pool.py, _stochastic_pool.py, _spectral_pool.py) ---
from cnnjax.ops._pool import avg_pool, max_pool, max_pool_with_indices, max_unpool, sum_pool
from cnnjax.ops._adaptive_pool import (
    adaptive_avg_pool,
    adaptive_max_pool,
    global_avg_pool,
    global_max_pool,
)
from cnnjax.ops._lp_pool import l2_pool, lp_pool
from cnnjax.ops._mixed_pool import gated_pool, mixed_pool, stochastic_mixed_pool
from cnnjax.ops._stochastic_pool import stochastic_pool
from cnnjax.ops._spectral_pool import spectral_pool

# --- pooling, order statistics / fractional / tree / pyramid (_order_pool.py,
#     _fractional_pool.py, _tree_pool.py, _pyramid_pool.py) ---
from cnnjax.ops._order_pool import median_pool, min_pool
from cnnjax.ops._fractional_pool import fractional_max_pool
from cnnjax.ops._tree_pool import tree_pool
from cnnjax.ops._pyramid_pool import spatial_pyramid_pool

# --- normalization (_batch_norm.py) ---
from cnnjax.ops._batch_norm import BatchStats, batch_norm, fold_batch_norm

__all__ = sorted(name for name in dir() if not name.startswith("_"))
