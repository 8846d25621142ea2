"""What the NNX modules share: eager shapes, pooling sites and the ``'pool'`` random stream.

NNX creates parameters when a module is constructed, before it sees an input, so a module
with parameters needs the number of spatial dims ``d`` up front: it is the length of a
sequence ``kernel_size``/``window_shape``, and an ``int`` means a square 2-D window (images;
pass ``(k,)`` or ``(k, k, k)`` for 1-D or 3-D). Modules without parameters take an ``int`` for
every spatial dim of whatever input they get, as the ops do.

:class:`WindowPool` is the base of every pooling module placed at a site ``(window_shape,
strides, padding)``; :class:`Stochastic` is the base of modules that draw from the ``'pool'``
stream while training (``deterministic=False``), switched by ``model.train()`` /
``model.eval()`` as ``flax.nnx.Dropout`` is.
"""
from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from cnnjax.ops import checks

Shape = int | Sequence[int]
Initializer = Callable[..., jax.Array]

#: What a stochastic module's ``rngs`` call argument may be, as for ``flax.nnx.Dropout``.
RngsLike = nnx.Rngs | nnx.RngStream | jax.Array


def frozen(value: Any) -> Any:
    """Lists as tuples (nested), so hyperparameters are hashable static attributes."""
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value


def eager_ntuple(value: Any, op: str, name: str) -> tuple[int, ...]:
    """A parameter's window or kernel size: an int -> ``(v, v)``; a sequence of 1 to 3 ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return checks.ntuple(value, 2, op, name)
    if not isinstance(value, Sequence) or isinstance(value, str) or not 1 <= len(value) <= 3:
        checks.fail(op, f"{name} must be an int (a square 2-D window) or a sequence of 1 to 3 "
                         f"ints (one per spatial dim), got {value!r}.", TypeError)
    return checks.ntuple(value, len(value), op, name)


def positive_int(value: Any, op: str, name: str) -> int:
    """``value`` if it is an int >= 1 (a channel count), else the one-sentence error."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        checks.fail(op, f"{name} must be an int >= 1 (a channel count), got {value!r}.",
                     TypeError if not isinstance(value, numbers.Integral) else ValueError)
    return int(value)


def check_input(x: ArrayLike, op: str, *, d: int | None = None, channels: int | None = None,
                channels_name: str = "num_features") -> jax.Array:
    """``x`` as an array ``[N, *spatial, C]``, checked against what the parameters were built for.

    ``d``: the spatial dims of the kernel/window (None: any 1 to 3). ``channels``: the ``C``
    the parameters were built for, named ``channels_name`` in the error.
    """
    x = jnp.asarray(x)
    rank = checks.spatial_rank(x, op)
    if d is not None and rank != d:
        checks.fail(op, f"x must have {d} spatial dims ([N, *spatial, C], rank {d + 2}) as the "
                         f"module was built for, got shape {x.shape}.")
    if channels is not None and x.shape[-1] != channels:
        checks.fail(op, f"x must have {channels_name}={channels} channels (its last axis), got "
                         f"shape {x.shape}.")
    return x


class _InitSignature:
    """``inspect.signature(cls)`` is ``__init__``'s (NNX's metaclass would show ``*args,
    **kwargs``); an instance has no ``__signature__``, so its signature stays ``__call__``'s."""

    def __get__(self, instance: Any, owner: type) -> inspect.Signature:
        if instance is not None:
            raise AttributeError("__signature__")
        sig = inspect.signature(owner.__init__)
        return sig.replace(parameters=list(sig.parameters.values())[1:])


class Module(nnx.Module):
    """Base of every ``cnnjax.nnx`` module: an ``nnx.Module`` whose class shows its arguments."""

    __signature__ = _InitSignature()


class WindowPool(Module):
    """Base of the pooling modules placed at a site ``(window_shape, strides, padding)``.

    ``strides=None`` means ``strides = window_shape``. A pool built on it only adds its own
    hyperparameters, parameters and ``__call__``; ``self.window_kwargs()`` gives the op's
    ``window_shape``/``strides``/``padding`` keywords.
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID"):
        self.window_shape = frozen(window_shape)
        self.strides = frozen(strides)
        self.padding = frozen(padding)

    def window_kwargs(self) -> dict[str, Any]:
        return dict(window_shape=self.window_shape, strides=self.strides, padding=self.padding)


def _pool_stream(rngs: Any, op: str) -> Any:
    if rngs is None:
        return nnx.data(None)
    if isinstance(rngs, nnx.Rngs):
        try:
            stream = rngs["pool"]  # falls back to the 'default' stream, as nnx.Rngs does
        except KeyError:
            checks.fail(op, f"rngs must have a 'pool' (or 'default') stream, got streams "
                             f"{sorted(k for k in vars(rngs) if not k.startswith('_'))}.")
        return stream.fork()
    if isinstance(rngs, nnx.RngStream):
        return rngs.fork()
    checks.fail(op, f"rngs must be an nnx.Rngs, an nnx.RngStream or None, got "
                     f"{type(rngs).__name__}.", TypeError)


class Stochastic(Module):
    """Base of the modules that draw from the ``'pool'`` stream while training.

    ``deterministic`` (False on construction: NNX modules start in training mode) is switched
    by ``model.train()`` / ``model.eval()`` and ``nnx.view``; a ``deterministic`` call argument
    takes precedence, as for ``flax.nnx.Dropout``. Keys come from a fork of the ``'pool'``
    stream of the ``rngs`` given at construction, or from an ``rngs`` call argument (an
    ``nnx.Rngs``, an ``nnx.RngStream`` or a key).
    """

    def init_stochastic(self, deterministic: bool, rngs: Any, op: str) -> None:
        if not isinstance(deterministic, bool):
            checks.fail(op, f"deterministic must be a bool, got {deterministic!r}.", TypeError)
        self.deterministic = deterministic
        self.rngs = _pool_stream(rngs, op)

    def training(self, deterministic: bool | None) -> bool:
        """True when this call trains (draws randomness)."""
        return not (self.deterministic if deterministic is None else deterministic)

    def key(self, rngs: RngsLike | None, op: str) -> jax.Array:
        """A fresh key from the call's ``rngs``, else from the module's ``'pool'`` stream."""
        source = self.rngs if rngs is None else rngs
        if source is None:
            checks.fail(op, "rngs must be given (an nnx.Rngs with a 'pool' stream, when the "
                             "module is built or called) to train, got None; call .eval() for "
                             "the deterministic inference rule.", TypeError)
        if isinstance(source, nnx.Rngs):
            return source["pool"]()
        if isinstance(source, nnx.RngStream):
            return source()
        if isinstance(source, jax.Array):
            return source
        checks.fail(op, f"rngs must be an nnx.Rngs, an nnx.RngStream or a key, got "
                         f"{type(source).__name__}.", TypeError)

    def set_view(self, deterministic: bool | None = None):
        """Used by ``nnx.view``: ``deterministic=True`` for inference."""
        if deterministic is not None:
            self.deterministic = deterministic
