"""``summary``: the seeds' layer table (layer | output size | weight size) for any model."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import cnnjax
from cnnjax import nn as cnn
from cnnjax.ops import _checks

_WINDOW_POOLS = (cnn.MaxPool, cnn.AvgPool, cnn.SumPool, cnn.LpPool, cnn.L2Pool, cnn.MixedPool,
                 cnn.StochasticMixedPool, cnn.GatedPool, cnn.StochasticPool)


def _x(values: Sequence[int]) -> str:
    return "×".join(str(int(v)) for v in values)


def _compact(value: Any, d: int) -> str:
    """``5`` for ``5`` or ``(5, 5)``; ``3×1`` for ``(3, 1)``; padding strings as given."""
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    values = tuple(value)
    if all(isinstance(v, (int, np.integer)) for v in values) and len(set(values)) == 1:
        return str(int(values[0]))
    return "×".join(str(v) for v in values) if all(
        isinstance(v, (int, np.integer)) for v in values) else str(values)


def _out_size(shape: Sequence[int]) -> str:
    # The seeds write activations channels-first (C×H×W) like PyTorch; drop the batch dim.
    shape = tuple(shape[1:])
    if len(shape) >= 2:
        shape = (shape[-1], *shape[:-1])
    return _x(shape)


def _param_size(params: dict) -> str:
    return " + ".join(_x(np.shape(v)) or "1" for v in jax.tree_util.tree_leaves(params))


def _row_name(module: nn.Module, x_shape, y_shape) -> tuple[str, str]:
    """(layer description, weight size) for one leaf module."""
    params = module.variables.get("params", {}) if module.scope is not None else {}
    d = len(x_shape) - 2
    if isinstance(module, cnn.Conv):
        kernel = params["kernel"]
        k = kernel.shape[:-2]
        extra = ""
        if _compact(module.dilation, d) != "1":
            extra += f", D={_compact(module.dilation, d)}"
        groups = module.groups or module.feature_group_count
        if groups != 1:
            extra += f", G={groups}"
        name = (f"Conv (C_out={module.features}, K={_compact(k, d)}, "
                f"P={_compact(module.padding, d).replace('VALID', '0')}, "
                f"S={_compact(module.strides, d)}{extra})")
        # PyTorch's weight layout (C_out × C_in/g × *k), as in the seeds' table.
        weight = _x((kernel.shape[-1], kernel.shape[-2], *k))
        return name, weight
    if isinstance(module, nn.Dense):
        kernel = params["kernel"]
        return f"Linear ({kernel.shape[0]}→{kernel.shape[1]})", _x(kernel.shape)
    if isinstance(module, _WINDOW_POOLS):
        label = type(module).__name__
        strides = module.window_shape if module.strides is None else module.strides
        args = [f"K={_compact(module.window_shape, d)}", f"S={_compact(strides, d)}"]
        if _compact(module.padding, d) not in ("VALID", "0"):
            args.append(f"P={_compact(module.padding, d)}")
        if isinstance(module, cnn.LpPool):
            args.insert(0, "p learned" if module.learn_p else f"p={module.p:g}")
        if isinstance(module, (cnn.MixedPool,)):
            args.insert(0, "alpha learned" if module.learn_alpha else f"alpha={module.alpha:g}")
        return f"{label}({', '.join(args)})", _param_size(params)
    if isinstance(module, cnn.SpectralPool):
        return f"SpectralPool(→{_x(y_shape[1:-1])})", ""
    if isinstance(module, nn.Dropout):
        return f"Dropout (p={module.rate:g})", ""
    return type(module).__name__, _param_size(params)


def _rf_layer(module: nn.Module, x_shape, axis: int):
    """``(k, s, p_lo, dilation)`` along ``axis`` for window layers, else ``None``."""
    spatial = tuple(x_shape[1:-1])
    d = len(spatial)
    if isinstance(module, cnn.Conv):
        k = _checks.ntuple(module.kernel_size, d, "summary", "kernel_size")
        s = _checks.ntuple(module.strides, d, "summary", "strides")
        r = _checks.ntuple(module.dilation, d, "summary", "dilation")
    elif isinstance(module, _WINDOW_POOLS) or (
            isinstance(module, cnn.SpectralPool) and module.output_shape is None):
        # A spectral pool mixes the whole map (DFT); it is counted as the window op it replaces.
        k = _checks.ntuple(module.window_shape, d, "summary", "window_shape")
        strides = module.window_shape if module.strides is None else module.strides
        s = _checks.ntuple(strides, d, "summary", "strides")
        r = _checks.ntuple(getattr(module, "dilation", 1), d, "summary", "dilation")
    else:
        return None
    pads = _checks.canonical_padding(module.padding, spatial, k, s, "summary", dilation=r)
    return (k[axis], s[axis], pads[axis][0], r[axis])


def summary(model: nn.Module, input_shape: Sequence[int], *, train: bool = False) -> str:
    """The seeds' layer table of a model, plus totals and the receptive field.

    One row per leaf layer in call order (``Layer | Output Size | Weight Size``, activations
    written channels-first ``C×H×W`` and conv weights ``C_out×C_in×K×K`` as in the seeds;
    dense weights ``in×out``), as a Markdown table, then the number of parameters and the
    receptive field of one unit of the deepest feature map (via
    :func:`cnnjax.receptive_field`; for parallel branches — residual adds, Inception
    concatenations — the largest field over the branches).

    Args:
      model: a model taking ``(x, *, train)``.
      input_shape: ``(H, W, C)`` of one example, or ``(N, H, W, C)``.
      train: trace the training path (shapes are the same for every model here).

    Returns:
      The table as a string.

    Example:
      >>> print(summary(LeNet5(), (28, 28, 1)))   # doctest: +ELLIPSIS
      | Layer | Output Size | Weight Size |
      |---|---|---|
      | Input | 1×28×28 | |
      | Conv (C_out=20, K=5, P=2, S=1) | 20×28×28 | 20×1×5×5 |
      ...
    """
    input_shape = tuple(int(v) for v in input_shape)
    if len(input_shape) == 3:
        input_shape = (1, *input_shape)
    if len(input_shape) != 4:
        _checks.fail("summary", f"input_shape must be (H, W, C) or (N, H, W, C), got {input_shape}.")

    records: list[dict] = []
    stack: list[dict] = []

    def interceptor(next_fun, args, kwargs, context):
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        rec = {"module": context.module, "x": args[0] if args else None, "leaf": True}
        if stack:
            stack[-1]["leaf"] = False
        stack.append(rec)
        try:
            out = next_fun(*args, **kwargs)
        finally:
            stack.pop()
        rec["y"] = out
        if rec["leaf"] and context.module is not model:
            rec["row"] = _row_name(context.module, np.shape(rec["x"]), np.shape(out))
            records.append(rec)
        return out

    def run():
        x = jnp.zeros(input_shape, jnp.float32)
        rngs = {k: jax.random.key(0) for k in ("params", "dropout", "pool")}
        with nn.intercept_methods(interceptor):
            return model.init(rngs, x, train=train)

    variables = jax.eval_shape(run)
    n_params = sum(int(np.prod(v.shape)) for v in
                   jax.tree_util.tree_leaves(variables.get("params", {})))

    rows = ["| Layer | Output Size | Weight Size |", "|---|---|---|",
            f"| Input | {_out_size(input_shape)} | |"]
    for rec in records:
        name, weight = rec["row"]
        rows.append(f"| {name} | {_out_size(np.shape(rec['y']))} | {weight} |".replace("|  |", "| |"))

    rf = _receptive_field(records, input_shape)
    rows.append("")
    rows.append(f"Total parameters: {n_params:,}")
    rows.append(f"Receptive field: {rf} input pixels (one unit of the deepest feature map)")
    return "\n".join(rows)


def _receptive_field(records: list[dict], input_shape) -> str:
    """Tracks, per produced array, the chain of window layers behind it (two spatial axes)."""
    chains: dict[int, tuple[list, list, tuple]] = {}
    keep = []  # hold the arrays so their ids stay unique while we look them up

    def size(chain) -> int:
        return cnnjax.receptive_field(chain)[-1].size if chain else 1

    best = ([], [])
    for rec in records:
        x, y = rec["x"], rec["y"]
        x_shape, y_shape = np.shape(x), np.shape(y)
        if len(x_shape) != 4 or len(y_shape) != 4:
            continue
        if id(x) not in chains:
            # The model input, or an array made outside a module (residual add, Inception
            # concatenation): its field is the largest among the outputs of that spatial size
            # seen so far (none: the input itself). Cached so parallel branches share it.
            same = [c for c in chains.values() if c[2] == tuple(x_shape[1:-1])]
            cin = max(same, key=lambda c: size(c[0])) if same else ([], [], ())
            chains[id(x)] = (cin[0], cin[1], tuple(x_shape[1:-1]))
            keep.append(x)
        cin = chains[id(x)]
        layers = [_rf_layer(rec["module"], x_shape, a) for a in (0, 1)]
        chain = (cin[0], cin[1]) if layers[0] is None else (cin[0] + [layers[0]],
                                                             cin[1] + [layers[1]])
        chains[id(y)] = (*chain, tuple(y_shape[1:-1]))
        keep.append(y)
        if size(chain[0]) * size(chain[1]) >= size(best[0]) * size(best[1]):
            best = chain
    return f"{size(best[0])}×{size(best[1])}"
