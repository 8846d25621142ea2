"""``make_pool``: an NNX pooling module from a spec string or a factory, at a pooling site."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from flax import nnx

from cnnjax.layers import pool_specs
from cnnjax.nnx._base import Shape
from cnnjax.ops import checks

#: The canonical spec strings (:data:`cnnjax.layers.pool_specs.POOL_SPECS`).
POOL_SPECS = pool_specs.POOL_SPECS

#: What an NNX model's ``pool`` argument holds: a spec string, or a factory called as
#: ``factory(window_shape=..., strides=..., padding=..., **kwargs)`` (plus ``num_features`` and
#: ``rngs`` where its signature takes them) returning a pooling module.
PoolSpec = str | Callable[..., nnx.Module]

_BUILD_ARGS = ("num_features", "rngs")


def _accepted(factory: Callable[..., Any], given: dict[str, Any], what: str) -> dict[str, Any]:
    """The build arguments ``factory`` takes; a missing required one is an error."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no readable signature: hand everything over
        return {k: v for k, v in given.items() if v is not None}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return {k: v for k, v in given.items() if v is not None}
    out = {}
    for name, value in given.items():
        if name not in parameters:
            continue
        if value is None and parameters[name].default is inspect.Parameter.empty:
            rule = ("an nnx.Rngs (the module has parameters)" if name == "rngs"
                    else "the input's channel count (the module's parameters depend on it)")
            checks.fail("make_pool", f"{name} must be {rule} for {what}, got None.", TypeError)
        if value is not None:
            out[name] = value
    return out


def make_pool(spec: PoolSpec, window_shape: Shape = 2, strides: Shape | None = None,
              padding: Any = "VALID", *, num_features: int | None = None,
              rngs: nnx.Rngs | None = None, **kwargs: Any) -> nnx.Module:
    """Builds the NNX pooling module for a pooling site from a spec string or a factory.

    The site is where a model would put ``max_pool(x, window_shape, strides, padding)``; every
    spec gives that output size there. The specs are :func:`cnnjax.nn.make_pool`'s (the
    grammar and every option are in :mod:`cnnjax.layers.pool_specs`; :data:`POOL_SPECS` lists
    the canonical ones), built as the same-named classes of :mod:`cnnjax.nnx`. The module
    starts in training mode; call it as ``pool(x)``.

    Args:
      spec: a spec string (case-insensitive) or a module factory.
      window_shape: the site's window, an int or one per spatial dim (an int is a square 2-D
        window for modules with parameters).
      strides: the site's strides (``None``: ``window_shape``).
      padding: the site's padding, as for the pooling ops.
      num_features: the input's channel count, for pools whose parameters depend on it
        (``'strided_conv'``, ``'gated:per_channel'``, ``'mixed:learn,per_channel'``); passed
        to the modules that take it, so a model can pass it for every spec.
      rngs: the ``nnx.Rngs`` for parameters (its ``params`` stream) and for stochastic pools
        (its ``'pool'`` stream); passed to the modules that take it.
      **kwargs: more constructor arguments; they override the spec's options.

    Returns:
      A ``flax.nnx`` pooling module.

    Raises:
      ValueError: an unknown spec or option, or an option value out of range (the message
        lists the valid specs).
      TypeError: ``spec`` is neither a string nor callable, or a module with parameters is
        built without ``rngs`` (or ``num_features`` where it needs it).

    Example:
      >>> pool = make_pool('gated', window_shape=3, strides=2, rngs=nnx.Rngs(0))
      >>> type(pool).__name__, pool.gate.shape
      ('GatedPool', (3, 3))
    """
    given = {"num_features": num_features, "rngs": rngs}
    if isinstance(spec, str):

        cls = pool_specs.module_class(pool_specs.parse(spec), "nnx")
        build = _accepted(cls, given, f"pooling spec {spec!r} ({cls.__name__})")
        return pool_specs.build(spec, window_shape, strides, padding, frontend="nnx",
                                **{**build, **kwargs})
    if not callable(spec):
        checks.fail("make_pool", f"pool must be a spec string or a module factory, got "
                                  f"{spec!r}.", TypeError)
    build = _accepted(spec, given, f"the pool factory {spec!r}")
    return spec(window_shape=window_shape, strides=strides, padding=padding,
                **{**build, **kwargs})
