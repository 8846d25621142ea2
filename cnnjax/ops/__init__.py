"""Pure functions: arrays and static hyperparameters in, arrays out.

No flax import and no parameter creation here; ``cnnjax.nn`` wraps these in modules.
Each family lives in its own private module (``_conv.py``, ``_pool.py``, ...); this file
re-exports the public names (the reference is ``docs/api.md``).
"""
import sys as _sys

# Each family owns one block below; keep the blocks separate.

# --- convolution (_conv.py over _conv_*.py, _im2col.py, _receptive_field.py) ---
from cnnjax.ops._conv import ConvChoice, conv, conv_choice, conv_impl, conv_transpose
from cnnjax.ops._conv_geometry import conv_output_shape
from cnnjax.ops._conv_impls import CONV_IMPLS
from cnnjax.ops._conv_matrix import conv_matrix
from cnnjax.ops._im2col import col2im, im2col
from cnnjax.ops._receptive_field import ReceptiveField, receptive_field

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

# --- anti-aliased, softmax-weighted and generalized-mean pooling (_blur_pool.py,
#     _soft_pool.py, _gem_pool.py) ---
from cnnjax.ops._blur_pool import blur_pool, max_blur_pool
from cnnjax.ops._gem_pool import gem_pool, global_gem_pool, global_lse_pool, lse_pool
from cnnjax.ops._soft_pool import lip_pool, soft_pool

# --- pooling, order statistics / fractional / tree / pyramid (_order_pool.py,
#     _fractional_pool.py, _tree_pool.py, _pyramid_pool.py) ---
from cnnjax.ops._order_pool import median_pool, min_pool
from cnnjax.ops._fractional_pool import fractional_max_pool
from cnnjax.ops._tree_pool import tree_pool
from cnnjax.ops._pyramid_pool import spatial_pyramid_pool

# --- normalization (_batch_norm.py) ---
from cnnjax.ops._batch_norm import BatchStats, batch_norm, fold_batch_norm

# The public functions and types; ``cnnjax.ops.checks`` (argument canonicalisation and the
# one-sentence errors, for writing new ops and layers) is a public module, not re-exported.
__all__ = sorted(name for name, value in dict(globals()).items()
                 if not name.startswith("_") and not isinstance(value, type(_sys)))
