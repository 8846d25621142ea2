"""Thin ``flax.linen`` modules over the ``cnnjax`` ops.

Each module holds parameters/variables and calls one op — it is "equivalent to partial
application of ``cnnjax.<op>``" (the dm-haiku pattern), with fields named as the op's arguments.
Modules that behave differently in training take ``train`` keyword-only; every pooling module
accepts ``__call__(x, *, train=False)`` so models can call any pool uniformly; stochastic pools
draw from the ``'pool'`` RNG collection; :class:`BatchNorm` keeps running statistics in
``'batch_stats'``.

:func:`make_pool` builds a pooling module from a spec string (:data:`POOL_SPECS`; the grammar
and every method are in :mod:`cnnjax.layers.pool_specs`) or from a module factory.
"""
from cnnjax.nn._adaptive_pool import AdaptiveAvgPool, AdaptiveMaxPool, GlobalAvgPool, GlobalMaxPool
from cnnjax.nn._batch_norm import BatchNorm
from cnnjax.nn._blur_pool import BlurPool, MaxBlurPool
from cnnjax.nn._conv import Conv, ConvTranspose, StridedConvPool
from cnnjax.nn._fractional_pool import FractionalMaxPool
from cnnjax.nn._gem_pool import GeMPool, GlobalGeMPool, GlobalLsePool, LsePool
from cnnjax.nn._lp_pool import L2Pool, LpPool
from cnnjax.nn._make_pool import POOL_SPECS, PoolSpec, make_pool
from cnnjax.nn._mixed_pool import GatedPool, MixedPool, StochasticMixedPool
from cnnjax.nn._order_pool import MedianPool, MinPool
from cnnjax.nn._pool import AvgPool, MaxPool, SumPool
from cnnjax.nn._pyramid_pool import SpatialPyramidPool
from cnnjax.nn._soft_pool import LipPool, SoftPool
from cnnjax.nn._spectral_pool import SpectralPool
from cnnjax.nn._stochastic_pool import StochasticPool
from cnnjax.nn._tree_pool import TreePool

__all__ = sorted(name for name in dir() if not name.startswith("_"))
