"""cnnjax: convolutional-network building blocks for JAX, written as pure functions.

Math at the bottom (``cnnjax.ops``, re-exported here: ``cnnjax.conv``, ``cnnjax.max_pool``,
...), parameters in the middle (``cnnjax.nn`` modules for ``flax.linen``, ``cnnjax.nnx``
modules for ``flax.nnx``, ``cnnjax.models``), loops and I/O at the top (``cnnjax.data``,
``cnnjax.train``, ``cnnjax.viz``, the ``cnnjax`` command).

The sub-packages are imported lazily so that ``import cnnjax`` stays cheap.
"""
import importlib as _importlib

from cnnjax import _host_memory

_host_memory.apply_if_requested()  # before JAX starts any thread

from cnnjax import ops  # noqa: E402 - after the host-memory setting, which must precede JAX
from cnnjax.ops import *  # noqa: F403 - the public ops are the package's API
from cnnjax.ops import __all__ as _ops_all

__version__ = "0.1.0"

_SUBPACKAGES = ("nn", "nnx", "models", "data", "train", "viz")

__all__ = [*_ops_all, "ops", *_SUBPACKAGES]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return _importlib.import_module(f"cnnjax.{name}")
    raise AttributeError(f"module 'cnnjax' has no attribute {name!r}")
