"""Thin ``flax.linen`` modules over the ``cnnjax`` ops.

Each module holds parameters/variables and calls one op — it is "equivalent to partial
application of ``cnnjax.<op>``" (the dm-haiku pattern). Modules that behave differently in
training take ``train`` keyword-only; every pooling module accepts ``__call__(x, *,
train=False)`` so models can call any pool uniformly; stochastic pools draw from the ``'pool'``
RNG collection; :class:`BatchNorm` keeps running statistics in ``'batch_stats'``.

:func:`make_pool` builds a pooling module from a spec string (``POOL_SPECS``).
"""
from cnnjax.nn._conv import Conv, ConvTranspose
from cnnjax.nn._norm import BatchNorm
from cnnjax.nn._pool import (
    POOL_SPECS,
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    AvgPool,
    GatedPool,
    GlobalAvgPool,
    GlobalMaxPool,
    L2Pool,
    LpPool,
    MaxPool,
    MixedPool,
    SpectralPool,
    StochasticMixedPool,
    StochasticPool,
    SumPool,
    make_pool,
)

__all__ = [
    "POOL_SPECS",
    "AdaptiveAvgPool",
    "AdaptiveMaxPool",
    "AvgPool",
    "BatchNorm",
    "Conv",
    "ConvTranspose",
    "GatedPool",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "L2Pool",
    "LpPool",
    "MaxPool",
    "MixedPool",
    "SpectralPool",
    "StochasticMixedPool",
    "StochasticPool",
    "SumPool",
    "make_pool",
]
