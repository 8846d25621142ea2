"""Shared bits of the NNX tests: inputs, and copying linen variables into NNX modules."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from cnnjax.nnx.models import load_linen_variables


def x_data(rng, shape=(2, 6, 6, 3), dtype=jnp.float64):
    """Distinct values (no ties), so max-type pools have a unique argmax."""
    n = int(np.prod(shape))
    return jnp.asarray(rng.permutation(n).reshape(shape) / n + 0.1, dtype)


def n_values(module: nnx.Module, kind=nnx.Param) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree_util.tree_leaves(nnx.state(module, kind)))


def copy_into(module: nnx.Module, tree: Mapping[str, Any]) -> int:
    """Writes a linen collection (``{'kernel': ..., 'bn': {...}}``) into a module's variables
    of the same names; returns the number of values written."""
    written = 0
    for name, value in tree.items():
        target = getattr(module, name)
        if isinstance(value, Mapping):
            written += copy_into(target, value)
        else:
            assert target.shape == value.shape, (name, target.shape, value.shape)
            target[...] = value
            written += int(np.prod(value.shape))
    return written


def copy_module(module: nnx.Module, variables: Mapping[str, Any]) -> None:
    """Copies a linen module's variables into its NNX twin, checking every value is covered."""
    written = sum(copy_into(module, variables.get(c, {})) for c in ("params", "batch_stats"))
    assert written == n_values(module, nnx.Param) + n_values(module, nnx.BatchStat)


def copy_model(linen_model, variables, nnx_model, x) -> None:
    """Copies a linen model's variables into its NNX twin (built for ``x``'s shape)."""
    assert nnx_model.input_shape == tuple(x.shape[1:])
    load_linen_variables(nnx_model, linen_model, variables)
