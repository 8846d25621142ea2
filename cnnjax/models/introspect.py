"""Looking inside a model by watching it run: its layers, their windows and receptive fields.

:func:`trace` sees every submodule ``__call__`` in execution order, with its input and output,
so this works for any model built from modules without the model listing its layers:
``flax.linen`` models (``cnnjax.nn``, ``flax.linen.Conv``) through
``flax.linen.intercept_methods``, and ``flax.nnx`` models (``cnnjax.nnx``, ``flax.nnx.Conv``)
by wrapping the ``__call__`` of their module classes while a copy of the model runs. Both give
the same :class:`LayerCall` records. :func:`cnnjax.models.summary` (the lectures' layer table)
and the plots of :mod:`cnnjax.viz` (feature maps, receptive fields) both read models through
this module, so they classify layers and follow branches the same way.

Which modules are pooling layers, and how each maps input pixels to outputs, comes from the
pooling registry (:mod:`cnnjax.layers.pool_specs`, each method's ``geometry``).
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from cnnjax.layers import pool_specs
from cnnjax.ops.checks import canonical_padding, fail, ntuple

__all__ = ["LayerCall", "Window", "as_input", "chain_size", "is_nnx", "layers",
           "receptive_fields", "trace", "windows"]

#: One window layer along every spatial axis: ``(kernel_size, stride, padding_lo, dilation)``
#: per axis, the form :func:`cnnjax.receptive_field` takes one axis of.
Window = list[tuple[int, int, int, int]]


class LayerCall(NamedTuple):
    """One module call recorded by :func:`trace`.

    Attributes:
      name: the module's path in the model (linen ``'ResNet_0/BasicBlock_1/ConvBN_0/Conv_0'``,
        NNX ``'blocks/1/conv1/conv'``).
      kind: ``'conv'``, ``'pool'`` (a pooling module of the registry) or ``'other'``
        (activations, dense layers, normalisation, dropout, and every module that wraps
        other layers).
      module: the module (linen: bound; NNX: the model's own submodule).
      inputs: its first argument (an array, or its shape and dtype when traced shape-only).
      output: its (first) output.
      leaf: True if no other module ran inside this call.
      params: the parameters of the module and its submodules, as a nested dict of
        ``jax.ShapeDtypeStruct`` (linen: its ``'params'`` collection; NNX: its ``nnx.Param``).
    """

    name: str
    kind: str
    module: Any
    inputs: Any
    output: Any
    leaf: bool
    params: Any = None


def is_nnx(model: Any) -> bool:
    """True for a ``flax.nnx`` module (``cnnjax.nnx`` models), False for anything else."""
    from flax import nnx
    return isinstance(model, nnx.Module)


def _is_conv(module: Any) -> bool:
    import flax.linen as nn
    from flax import nnx

    from cnnjax import nn as cnn
    from cnnjax import nnx as cnnx
    return isinstance(module, (cnn.Conv, nn.Conv, cnnx.Conv, nnx.Conv))


def _kind(module: Any) -> str:
    if _is_conv(module):
        return "conv"
    return "pool" if pool_specs.method_of(module) is not None else "other"


def _shapes(tree: Any) -> Any:
    """A pytree of arrays (or tracers) as plain ``jax.ShapeDtypeStruct``s."""
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)


def _array(value: Any) -> Any:
    """The first array of a module's output (a tuple for e.g. ``(y, indices)``), else None."""
    if isinstance(value, tuple) and value:
        value = value[0]
    return value if hasattr(value, "shape") and hasattr(value, "ndim") else None


def trace(model: Any, variables: Any | None, x: jax.Array, *, op: str,
          train: bool = False) -> tuple[list[LayerCall], Any]:
    """Runs ``model`` on ``x`` and records its module calls, in the order they finish.

    Every submodule call on an array is recorded, so that array identity links layers through
    pass-through modules. A conv/pool module that wraps other layers (a Conv+BatchNorm block)
    is ``'other'``, so each layer appears once.

    With ``variables=None`` the model is only initialised (linen) or run on a copy (NNX) under
    ``jax.eval_shape`` (no FLOPs), so the recorded arrays are shape-only; otherwise the model
    runs jitted and the recorded arrays are concrete.

    Args:
      model: a ``flax.linen`` model called as ``model(x, train=...)``, or a ``flax.nnx``
        model called as ``model(x)``.
      variables: linen: its variables; NNX: an ``nnx.State`` of the model (``nnx.state(model)``)
        to run with instead of its own; or ``None``.
      x: the input batch.
      op: the caller's name, for error messages.
      train: run the training path (NNX: the copy is put in ``train()`` or ``eval()`` mode;
        the model itself is not touched).

    Returns:
      ``(calls, variables)`` with ``variables=None`` (the model's variables as shapes, NNX's
      as ``{'params': ..., 'batch_stats': ...}`` nested dicts), else ``(calls, model_output)``.
    """
    import flax.linen as nn

    if is_nnx(model):
        return _trace_nnx(model, variables, x, op=op, train=train)
    if not isinstance(model, nn.Module):
        fail(op, f"model must be a flax.linen.Module or a flax.nnx.Module, got "
                 f"{type(model).__name__}.", TypeError)
    calls: list[LayerCall] = []
    depth: list[list[bool]] = []

    def interceptor(next_fun, args, kwargs, context):
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        if depth:
            depth[-1][0] = False  # the caller ran a module inside: not a leaf
        depth.append([True])
        try:
            out = next_fun(*args, **kwargs)
        finally:
            leaf = depth.pop()[0]
        mod = context.module
        if mod.path and args and _array(args[0]) is not None and _array(out) is not None:
            calls.append(LayerCall("/".join(mod.path), _kind(mod), mod, args[0], _array(out),
                                   leaf, _shapes(mod.variables.get("params", {}))))
        return out

    key = jax.random.key(0)
    rngs = {"params": key, "dropout": key, "pool": key}
    if variables is None:
        with nn.intercept_methods(interceptor):
            out = jax.eval_shape(lambda: model.init(rngs, x, train=train))
    else:
        # Jitted as a whole (eager dispatch would compile every primitive separately); the
        # recorded arrays are returned from the program so they are concrete afterwards.
        def run(variables, x):
            calls.clear()
            with nn.intercept_methods(interceptor):
                out = model.apply(variables, x, train=train, rngs={"dropout": key, "pool": key},
                                  mutable=["batch_stats"] if train else False)
            return out, [(c.inputs, c.output) for c in calls]

        out, arrays = jax.jit(run)(variables, x)
        calls[:] = [c._replace(inputs=i, output=o) for c, (i, o) in zip(calls, arrays)]
    return _wrappers_are_other(calls), out


def _wrappers_are_other(calls: list[LayerCall]) -> list[LayerCall]:
    return [c if c.leaf or c.kind == "other" else c._replace(kind="other") for c in calls]


@contextlib.contextmanager
def _calls_wrapped(model: Any, wrap: Callable[[Callable], Callable]) -> Iterator[None]:
    """Replaces the ``__call__`` of every class that defines one for ``model``'s modules.

    NNX has no ``intercept_methods``: a call is seen by wrapping the function it dispatches to,
    on the class that defines it (so subclasses are covered), and restoring it afterwards.
    The classes are shared, so tracing is not thread-safe.
    """
    from flax import nnx

    owners: dict[type, Callable] = {}
    for _, module in nnx.iter_modules(model):
        owner = next((c for c in type(module).__mro__ if "__call__" in vars(c)), None)
        if owner is not None and owner not in owners:
            owners[owner] = vars(owner)["__call__"]
    try:
        for owner, call in owners.items():
            setattr(owner, "__call__", wrap(call))
        yield
    finally:
        for owner, call in owners.items():
            setattr(owner, "__call__", call)


def _trace_nnx(model: Any, variables: Any, x: jax.Array, *, op: str,
               train: bool) -> tuple[list[LayerCall], Any]:
    """:func:`trace` for a ``flax.nnx`` model.

    The model is split into its graph and state; a copy merged from them inside
    ``jax.eval_shape`` (or ``jax.jit``) runs with every module class's ``__call__`` wrapped, so
    the model's own state, mode and random streams are left as they were. Calls are
    matched to the model's modules by their path in the graph; recorded arrays are returned
    from the traced function once each, so a layer's output is the very object the next
    layer's input is, as in the linen record.
    """
    from flax import nnx

    graphdef, state = nnx.split(model)
    if variables is not None:
        if not isinstance(variables, Mapping):
            fail(op, f"variables must be the NNX model's state (nnx.state(model)) or None, got "
                     f"{type(variables).__name__}.", TypeError)
        state = variables
    originals = dict(nnx.iter_modules(model))
    records: list[tuple[tuple, Any, Any, bool]] = []
    refs: list[tuple[int, int]] = []
    stack: list[list] = []

    def run(state, x):
        records.clear()
        copy = nnx.merge(graphdef, state)
        if train:
            copy.train()
        else:
            copy.eval()
        paths: dict[int, tuple] = {}
        for path, module in nnx.iter_modules(copy):
            paths.setdefault(id(module), path)

        def wrap(call):
            @functools.wraps(call)
            def recorded(self, *args, **kwargs):
                path = paths.get(id(self))
                if path is None or (stack and stack[-1][0] is self):  # foreign, or super()
                    return call(self, *args, **kwargs)
                if stack:
                    stack[-1][1] = False  # the caller ran a module inside: not a leaf
                stack.append([self, True])
                try:
                    out = call(self, *args, **kwargs)
                finally:
                    leaf = stack.pop()[1]
                if path and args and _array(args[0]) is not None and _array(out) is not None:
                    records.append((path, args[0], _array(out), leaf))
                return out
            return recorded

        with _calls_wrapped(copy, wrap):
            out = copy(x)
        arrays: list[Any] = []
        index: dict[int, int] = {}
        for value in (v for _, i, o, _ in records for v in (i, o)):
            if id(value) not in index:
                index[id(value)] = len(arrays)
                arrays.append(value)
        refs[:] = [(index[id(i)], index[id(o)]) for _, i, o, _ in records]
        return out, arrays

    if variables is None:
        out, arrays = jax.eval_shape(run, state, x)
    else:
        out, arrays = jax.jit(run)(state, x)
    calls = []
    for (path, _, _, leaf), (i, o) in zip(records, refs):
        module = originals[path]
        calls.append(LayerCall("/".join(map(str, path)), _kind(module), module, arrays[i],
                               arrays[o], leaf,
                               _shapes(nnx.to_pure_dict(nnx.state(module, nnx.Param)))))
    if variables is None:
        out = {"params": _shapes(nnx.to_pure_dict(nnx.state(model, nnx.Param))),
               "batch_stats": _shapes(nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)))}
    return _wrappers_are_other(calls), out


def layers(calls: list[LayerCall], *, model: Any = None, op: str | None = None
           ) -> list[LayerCall]:
    """The conv and pooling calls of :func:`trace`'s record.

    With ``op`` given, a record without any is an error naming ``op`` and the model.
    """
    found = [c for c in calls if c.kind != "other"]
    if not found and op is not None:
        fail(op, f"model must contain conv or pooling modules (cnnjax.nn, cnnjax.nnx or Flax "
                 f"Conv/*Pool), found none in {type(model).__name__}.")
    return found


def _ints(value: Any, d: int, op: str, name: str) -> tuple[int, ...]:
    return (1,) * d if value is None else ntuple(value, d, op, name)


def _resolve(kernel, strides, padding, dilation, spatial, op) -> tuple[Window, tuple[int, ...]]:
    """One window layer with its padding resolved, and its output size."""
    if isinstance(padding, str) and padding.upper() not in ("VALID", "SAME"):
        padding = "SAME"  # flax's 'CIRCULAR'/'REFLECT' pad by the SAME amounts
    pads = canonical_padding(padding, spatial, kernel, strides, op, dilation=dilation)
    window = [(k, s, lo, r) for k, s, (lo, _), r in zip(kernel, strides, pads, dilation)]
    out = tuple((n + lo + hi - r * (k - 1) - 1) // s + 1
                for n, k, s, (lo, hi), r in zip(spatial, kernel, strides, pads, dilation))
    return window, out


def windows(call: LayerCall, op: str) -> list[Window]:
    """The window layer(s) of one conv/pool call: how it maps input pixels to outputs.

    A layer that mixes the whole map (global and spectral pooling) is one window covering
    the input; adaptive and fractional pools use the equivalent fixed window
    ``stride = n // m``, ``kernel = n - (m - 1)·stride``; max-blur pooling is its dense max
    followed by its blur.
    """
    mod = call.module
    spatial = tuple(call.inputs.shape[1:-1])
    d = len(spatial)
    out = tuple(call.output.shape[1:-1]) if call.output.ndim == d + 2 else (1,) * d
    if call.kind == "conv":
        k = _ints(mod.kernel_size, d, op, "kernel_size")
        s = _ints(getattr(mod, "stride", getattr(mod, "strides", 1)), d, op, "stride")
        r = _ints(getattr(mod, "dilation", getattr(mod, "kernel_dilation", 1)), d, op,
                  "dilation")
        return [_resolve(k, s, getattr(mod, "padding", "VALID"), r, spatial, op)[0]]
    geometry = pool_specs.method_of(mod).geometry
    if geometry == "global":
        return [[(n, n, 0, 1) for n in spatial]]
    if geometry == "adaptive":
        layer = []
        for n, m in zip(spatial, out):
            step = n // m if m > 1 else n
            layer.append((n - (m - 1) * step, step, 0, 1))
        return [layer]
    site = getattr(mod, "site", None)
    if geometry == "blur":
        k = _ints(mod.window_shape, d, op, "window_shape")
        step = site[1] if site is not None else mod.strides
        if site is not None and step is None:
            step = site[0]
        s = _ints(step, d, op, "strides")
        return [[(kk, ss, (kk - 1) // 2, 1) for kk, ss in zip(k, s)]]
    k = _ints(mod.window_shape, d, op, "window_shape")
    strides = getattr(mod, "strides", None)
    s = k if strides is None else _ints(strides, d, op, "strides")
    r = _ints(getattr(mod, "dilation", 1), d, op, "dilation")
    padding = getattr(mod, "padding", "VALID")
    if geometry == "maxblur":
        dense, _ = _resolve(k, (1,) * d, padding, (1,) * d, spatial, op)
        f = _ints(mod.filter_size, d, op, "filter_size")
        return [dense, [(ff, ss, (ff - 1) // 2, 1) for ff, ss in zip(f, s)]]
    return [_resolve(k, s, padding, r, spatial, op)[0]]


def receptive_fields(calls: list[LayerCall], input_spatial: Sequence[int],
                     op: str) -> list[list[Window]]:
    """For each conv/pool call (:func:`layers`), the chain of window layers from the input.

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
    for call in calls:
        if call.kind == "other" and not call.leaf:
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
                base = max(same, key=chain_size)
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
        chain = [*base, *windows(call, op)]
        by_output[id(out)] = chain
        out_spatial = tuple(out.shape[1:-1]) if out.ndim == x.ndim else (1,) * len(spatial)
        ended.append((out_spatial, chain))
        chains.append(chain)
    return chains


def chain_size(chain: list[Window], axis: int = 0) -> int:
    """The receptive field size along ``axis`` at the end of a chain of window layers."""
    size, jump = 1, 1
    for window in chain:
        k, s, _, r = window[axis]
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
