"""Loading a linen model's variables into its NNX twin, so both start from the same weights."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from cnnjax.models import introspect
from cnnjax.ops import checks

_OP = "load_linen_variables"


def _count(module: nnx.Module) -> int:
    return sum(math.prod(v.shape) for v in jax.tree_util.tree_leaves(
        nnx.state(module, nnx.Any(nnx.Param, nnx.BatchStat))))


def _write(module: nnx.Module, tree: Mapping[str, Any], where: str) -> int:
    written = 0
    for name, value in tree.items():
        target = getattr(module, name, None)
        if isinstance(value, Mapping):
            if not isinstance(target, nnx.Module):
                checks.fail(_OP, f"variables must match the NNX model, got {where}/{name} "
                                 f"with no NNX submodule {name!r}.")
            written += _write(target, value, f"{where}/{name}")
            continue
        if not isinstance(target, nnx.Variable) or tuple(target.shape) != tuple(value.shape):
            got = getattr(target, "shape", None)
            checks.fail(_OP, f"variables must match the NNX model, got {where}/{name} of shape "
                             f"{tuple(value.shape)} for an NNX variable of shape {got}.")
        target[...] = jnp.asarray(value, target[...].dtype)
        written += math.prod(value.shape)
    return written


def load_linen_variables(model: nnx.Module, linen_model: Any, variables: Mapping) -> None:
    """Writes a linen model's variables into its NNX twin, in place.

    The two models are traced shape-only on one input of ``model.input_shape``; their leaf
    layers (those holding parameters or not) are paired in call order, and each pair must
    hold the same variables with the same shapes (``params`` into ``nnx.Param`` s,
    ``batch_stats`` into ``nnx.BatchStat`` s). Every parameter and statistic of ``model``
    must be written, so the two models then compute the same function.

    Args:
      model: an NNX model of :mod:`cnnjax.nnx.models` (or any NNX model with
        ``input_shape``).
      linen_model: its ``flax.linen`` twin (same architecture and pool).
      variables: the linen model's variables (``{'params': ..., 'batch_stats': ...}``).

    Raises:
      ValueError: the layers or shapes differ, or a value of ``model`` is left unwritten.

    Example:
      >>> linen = cnnjax.models.LeNet5(num_classes=10)
      >>> v = linen.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), train=False)
      >>> model = LeNet5(num_classes=10, rngs=nnx.Rngs(0))
      >>> load_linen_variables(model, linen, v)
      >>> bool(jnp.allclose(model(jnp.ones((1, 28, 28, 1))),
      ...                   linen.apply(v, jnp.ones((1, 28, 28, 1)), train=False)))
      True
    """
    x = jnp.zeros((1, *model.input_shape), jnp.float32)
    lin = [c for c in introspect.trace(linen_model, None, x, op=_OP)[0] if c.leaf]
    new = [c for c in introspect.trace(model, None, x, op=_OP)[0] if c.leaf]
    if len(lin) != len(new):
        checks.fail(_OP, f"linen_model must have the NNX model's layers, got {len(lin)} leaf "
                         f"layers for {len(new)}.")
    written = 0
    for a, b in zip(lin, new):
        for collection in ("params", "batch_stats"):
            tree = variables.get(collection, {})
            for key in a.name.split("/"):
                tree = tree.get(key, {}) if isinstance(tree, Mapping) else {}
            written += _write(b.module, tree, f"{collection}/{a.name}")
    if written != _count(model):
        checks.fail(_OP, f"variables must cover every parameter and statistic of the NNX "
                         f"model, got {written} of {_count(model)} values.")
