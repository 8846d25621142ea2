"""``flax.nnx`` modules over the ``cnnjax`` ops.

``flax.nnx`` is the module API Flax recommends for new code, and it ships no pooling modules
beyond its max/avg/min pool functions. This package holds an ``nnx.Module`` for every module of
:mod:`cnnjax.nn`, with the same names and the same fields as constructor arguments: each holds
its parameters (``nnx.Param``; BatchNorm's running statistics are ``nnx.BatchStat``) and calls
one op. As in ``flax.nnx``, parameters are created on construction — a module whose parameters
depend on the channel count takes it (``Conv(in_features, out_features, kernel_size)``,
``BatchNorm(num_features)``, ``num_features`` for per-channel pools) — and ``rngs`` (an
``nnx.Rngs``) gives their keys.

A new module is in training mode, as ``nnx.Dropout``/``nnx.BatchNorm`` are; ``model.train()`` /
``model.eval()`` switch the stochastic pools (``deterministic``) and :class:`BatchNorm`
(``use_running_average``). Stochastic pools draw from the ``'pool'`` stream of the ``rngs``
they were given, or of an ``rngs`` call argument. In eval mode a module's output is its op's.

:func:`make_pool` builds a pooling module from a spec string (:data:`POOL_SPECS`; the grammar
and every method are in :mod:`cnnjax.layers.pool_specs`) or from a module factory;
:mod:`cnnjax.nnx.models` has LeNet-5, the MNIST net, ResNet and VGG.

Example:
  >>> from flax import nnx
  >>> pool = cnnjax.nnx.make_pool('stochastic', 2, rngs=nnx.Rngs(0))
  >>> pool.eval()
  >>> pool(jnp.ones((1, 4, 4, 3))).shape
  (1, 2, 2, 3)
"""
from cnnjax.nnx._adaptive_pool import AdaptiveAvgPool, AdaptiveMaxPool, GlobalAvgPool, GlobalMaxPool
from cnnjax.nnx._base import Stochastic, WindowPool
from cnnjax.nnx._batch_norm import BatchNorm
from cnnjax.nnx._blur_pool import BlurPool, MaxBlurPool
from cnnjax.nnx._conv import Conv, ConvTranspose, StridedConvPool
from cnnjax.nnx._fractional_pool import FractionalMaxPool
from cnnjax.nnx._gem_pool import GeMPool, GlobalGeMPool, GlobalLsePool, LsePool
from cnnjax.nnx._lp_pool import L2Pool, LpPool
from cnnjax.nnx._make_pool import POOL_SPECS, PoolSpec, make_pool
from cnnjax.nnx._mixed_pool import GatedPool, MixedPool, StochasticMixedPool
from cnnjax.nnx._order_pool import MedianPool, MinPool
from cnnjax.nnx._pool import AvgPool, MaxPool, SumPool
from cnnjax.nnx._pyramid_pool import SpatialPyramidPool
from cnnjax.nnx._soft_pool import LipPool, SoftPool
from cnnjax.nnx._spectral_pool import SpectralPool
from cnnjax.nnx._stochastic_pool import StochasticPool
from cnnjax.nnx._tree_pool import TreePool

__all__ = sorted(name for name in dir() if not name.startswith("_"))


def __getattr__(name):
    # The model zoo is imported on first use (``cnnjax.nnx.models``), like cnnjax's subpackages.
    if name == "models":
        import importlib
        return importlib.import_module("cnnjax.nnx.models")
    raise AttributeError(f"module 'cnnjax.nnx' has no attribute {name!r}")
