"""Finds the conv and pooling layers of a flax model by watching it run.

``flax.linen.intercept_methods`` sees every submodule ``__call__`` in execution order, with its
input and output, so the plots work for any model built from modules (``cnnjax.nn``, or
``flax.linen.Conv``) without the model having to list its layers.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cnnjax.ops._checks import canonical_padding, fail


class LayerCall(NamedTuple):
    """One conv/pool module call: its path, class, kind, input/output arrays (or shapes)."""

    name: str
    # 'conv', 'pool', 'adaptive' or 'global' (spectral and global pools: every output
    # depends on the whole input).
    kind: str
    module: Any
    inputs: Any
    output: Any


def _kind(module: Any) -> str | None:
    cls = type(module).__name__
    if "Spectral" in cls or "Global" in cls or "Adaptive" in cls:
        return "global" if "Adaptive" not in cls else "adaptive"
    if "Conv" in cls and "Transpose" not in cls and hasattr(module, "kernel_size"):
        return "conv"
    if "Pool" in cls and hasattr(module, "window_shape"):
        return "pool"
    return None


def _array(value: Any) -> Any:
    """The first array of a module's output (a tuple for e.g. ``(y, indices)``), else None."""
    if isinstance(value, tuple) and value:
        value = value[0]
    return value if hasattr(value, "shape") and hasattr(value, "ndim") else None


def trace_layers(model: Any, variables: Any | None, x: jax.Array, *,
                 op: str) -> tuple[list[LayerCall], Any]:
    """Runs ``model`` on ``x`` (``train=False``) and records its module calls in call order.

    Every submodule call on an array is recorded, so that array identity links layers through
    pass-through modules (ReLU, BatchNorm, dropout, ...; ``kind == 'other'``). Conv/pool
    modules that wrap other conv/pool modules (a Conv+BatchNorm block) count as 'other' too,
    so each layer appears once. :func:`layers` keeps the conv/pool calls.

    With ``variables=None`` the model is only initialised under ``jax.eval_shape`` (no FLOPs), so
    the recorded arrays are shape-only.

    Returns:
      ``(calls, model_output)``.
    """
    import flax.linen as nn

    if not isinstance(model, nn.Module):
        fail(op, f"model must be a flax.linen.Module, got {type(model).__name__}.", TypeError)
    calls: list[LayerCall] = []

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        mod = context.module
        if (context.method_name == "__call__" and mod.path and args
                and _array(args[0]) is not None and _array(out) is not None):
            calls.append(LayerCall("/".join(mod.path), _kind(mod) or "other", mod, args[0],
                                   _array(out)))
        return out

    key = jax.random.key(0)
    rngs = {"params": key, "dropout": key, "pool": key}
    if variables is None:
        with nn.intercept_methods(interceptor):
            out = jax.eval_shape(lambda: model.init(rngs, x, train=False))
    else:
        # Jitted as a whole (eager dispatch would compile every primitive separately); the
        # recorded arrays are returned from the program so they are concrete afterwards.
        def run(variables, x):
            calls.clear()
            with nn.intercept_methods(interceptor):
                out = model.apply(variables, x, train=False, rngs={"dropout": key, "pool": key})
            return out, [(c.inputs, c.output) for c in calls]

        out, arrays = jax.jit(run)(variables, x)
        calls[:] = [c._replace(inputs=i, output=o) for c, (i, o) in zip(calls, arrays)]
    names = [c.name for c in calls if c.kind != "other"]
    calls = [c._replace(kind="other") if any(n.startswith(c.name + "/") for n in names) else c
             for c in calls]
    if not layers(calls):
        fail(op, f"model must contain conv or pooling modules (cnnjax.nn or flax.linen "
                 f"Conv/*Pool), found none in {type(model).__name__}.")
    return calls, out


def layers(calls: list[LayerCall]) -> list[LayerCall]:
    """The conv and pooling calls of :func:`trace_layers`' record."""
    return [c for c in calls if c.kind != "other"]


def _tuple(value: Any, d: int) -> tuple[int, ...]:
    if value is None:
        return (1,) * d
    if isinstance(value, (int, np.integer)):
        return (int(value),) * d
    return tuple(int(v) for v in value)


def layer_geometry(call: LayerCall, op: str) -> list[tuple[int, int, int, int]]:
    """Per spatial axis ``(kernel_size, stride, padding_lo, dilation)`` of one recorded call.

    Global and spectral pools (each output depends on every input pixel) become one window
    covering the input; adaptive pools use the equivalent fixed window
    ``stride = n // m``, ``kernel = n - (m - 1) * stride``.
    """
    mod = call.module
    in_spatial = tuple(call.inputs.shape[1:-1])
    d = len(in_spatial)
    out_shape = tuple(call.output.shape)
    if call.kind in ("global", "adaptive"):
        out_spatial = out_shape[1:-1] if len(out_shape) == d + 2 else (1,) * d
        geo = []
        for n, m in zip(in_spatial, out_spatial):
            if call.kind == "global" or m <= 1:
                geo.append((n, n, 0, 1))
            else:
                s = n // m
                geo.append((n - (m - 1) * s, s, 0, 1))
        return geo
    if call.kind == "conv":
        k = _tuple(mod.kernel_size, d)
        s = _tuple(getattr(mod, "strides", getattr(mod, "stride", 1)), d)
        r = _tuple(getattr(mod, "kernel_dilation", getattr(mod, "dilation", 1)), d)
    else:
        k = _tuple(mod.window_shape, d)
        strides = getattr(mod, "strides", None)
        s = k if strides is None else _tuple(strides, d)
        r = _tuple(getattr(mod, "dilation", 1), d)
    padding = getattr(mod, "padding", "VALID")
    if isinstance(padding, str) and padding.upper() not in ("VALID", "SAME"):
        # flax's 'CIRCULAR'/'REFLECT' pad by the SAME amounts.
        padding = "SAME"
    pads = canonical_padding(padding, in_spatial, k, s, op, dilation=r)
    return [(kk, ss, lo, rr) for kk, ss, (lo, _), rr in zip(k, s, pads, r)]


def receptive_fields(calls: list[LayerCall], input_spatial: tuple[int, ...],
                     op: str) -> list[list[tuple[int, int, int, int]]]:
    """For each conv/pool call (:func:`layers`), the chain of layers from the input to it.

    Branches are followed by array identity: a call whose input is another call's output
    continues that call's chain (pass-through modules keep it unchanged); a call on the same
    array as an earlier one (a sibling branch) starts where that one started. An input made by
    an op outside any module (a residual add, a concatenation) continues the longest chain
    that ended at that spatial size, i.e. the deepest path: the receptive field is the union
    over paths.
    """
    by_output: dict[int, list] = {}
    by_input: dict[int, list] = {}
    ended: list[tuple[tuple[int, ...], list]] = []
    chains = []
    names = [c.name for c in calls]
    for call in calls:
        if call.kind == "other" and any(n.startswith(call.name + "/") for n in names):
            # A wrapper (a residual block, an Inception module, Conv+BN): its inner modules
            # carry the links; its output may come from an op outside them (add, concat),
            # which the deepest-path rule below handles.
            continue
        x, out = call.inputs, call.output
        spatial = tuple(x.shape[1:-1])
        if id(x) in by_output:
            base = by_output[id(x)]
        elif id(x) in by_input:
            base = by_input[id(x)]
        else:
            same = [c for shape, c in ended if shape == spatial]
            if same:
                base = max(same, key=_rf_size)
            elif spatial == tuple(input_spatial) or not ended:
                base = []
            else:
                base = ended[-1][1]
        by_input.setdefault(id(x), base)
        if call.kind == "other":
            # Pass-through (ReLU, BatchNorm, dropout, ...): same field as its input.
            if x.ndim == out.ndim:
                by_output[id(out)] = base
                ended.append((tuple(out.shape[1:-1]), base))
            continue
        chain = [*base, layer_geometry(call, op)]
        by_output[id(out)] = chain
        out_spatial = tuple(out.shape[1:-1]) if out.ndim == x.ndim else (1,) * len(spatial)
        ended.append((out_spatial, chain))
        chains.append(chain)
    return chains


def _rf_size(chain: list) -> int:
    size, jump = 1, 1
    for geo in chain:
        k, s, _, r = geo[0]
        size += r * (k - 1) * jump
        jump *= s
    return size


def as_input(image: jax.typing.ArrayLike, op: str) -> jax.Array:
    """``[H, W]``, ``[H, W, C]`` or ``[1, H, W, C]`` -> float ``[1, H, W, C]``."""
    x = jnp.asarray(image)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32) / (255.0 if x.dtype == jnp.uint8 else 1.0)
    if x.ndim == 2:
        x = x[None, :, :, None]
    elif x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        fail(op, f"image must be [H, W], [H, W, C] or [1, H, W, C], got shape {x.shape}.")
    return x

