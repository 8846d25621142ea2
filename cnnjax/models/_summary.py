"""``summary``: the lectures' layer table (layer | output size | weight size) for any model."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from cnnjax import nn as cnn
from cnnjax import nnx as cnnx
from cnnjax.layers import pool_specs
from cnnjax.models import introspect
from cnnjax.ops import checks


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
    # The lectures write activations channels-first (C×H×W) like PyTorch; drop the batch dim.
    shape = tuple(shape[1:])
    if len(shape) >= 2:
        shape = (shape[-1], *shape[:-1])
    return _x(shape)


def _param_size(params: dict) -> str:
    return " + ".join(_x(np.shape(v)) or "1" for v in jax.tree_util.tree_leaves(params))


def _pool_row(module: Any, method: pool_specs.Method, y_shape, d: int) -> str:
    """``MixedPool(alpha learned, K=2, S=2)``: the method's shown fields, then its window."""
    args = []
    for field, flag in method.describe:
        if flag is not None and getattr(module, flag):
            args.append(f"{field} learned")
        else:
            args.append(f"{field}={getattr(module, field):g}")
    if method.geometry == "global" or method.site == "site":
        args.append(f"→{_x(y_shape[1:-1])}")
    elif method.geometry in ("window", "maxblur"):
        strides = module.window_shape if module.strides is None else module.strides
        args += [f"K={_compact(module.window_shape, d)}", f"S={_compact(strides, d)}"]
        if _compact(module.padding, d) not in ("VALID", "0"):
            args.append(f"P={_compact(module.padding, d)}")
    return f"{method.module}({', '.join(args)})" if args else method.module


def _row(call: introspect.LayerCall) -> tuple[str, str]:
    """(layer description, weight size) for one leaf module call (linen or NNX)."""
    module, params = call.module, call.params
    x_shape, y_shape = call.inputs.shape, call.output.shape
    d = len(x_shape) - 2
    if isinstance(module, (cnn.Conv, cnnx.Conv)):
        kernel = params["kernel"]
        k = kernel.shape[:-2]
        stride, groups = module.stride, module.groups
        extra = ""
        if _compact(module.dilation, d) != "1":
            extra += f", D={_compact(module.dilation, d)}"
        if groups != 1:
            extra += f", G={groups}"
        name = (f"Conv (C_out={kernel.shape[-1]}, K={_compact(k, d)}, "
                f"P={_compact(module.padding, d).replace('VALID', '0')}, "
                f"S={_compact(stride, d)}{extra})")
        # PyTorch's weight layout (C_out × C_in/g × *k), as in the lectures' table.
        return name, _x((kernel.shape[-1], kernel.shape[-2], *k))
    if isinstance(module, (nn.Dense, nnx.Linear)):
        kernel = params["kernel"]
        return f"Linear ({kernel.shape[0]}→{kernel.shape[1]})", _x(kernel.shape)
    method = pool_specs.method_of(module)
    if method is not None:
        return _pool_row(module, method, y_shape, d), _param_size(params)
    if isinstance(module, (nn.Dropout, nnx.Dropout)):
        return f"Dropout (p={module.rate:g})", ""
    return type(module).__name__, _param_size(params)


def summary(model: nn.Module | nnx.Module, input_shape: Sequence[int], *,
            train: bool = False) -> str:
    """The lectures' layer table of a model, plus totals and the receptive field.

    One row per leaf layer in call order (``Layer | Output Size | Weight Size``, activations
    written channels-first ``C×H×W`` and conv weights ``C_out×C_in×K×K`` as in the lectures;
    dense weights ``in×out``), as a Markdown table, then the number of parameters and the
    receptive field of one unit of the deepest feature map (:mod:`cnnjax.models.introspect`
    follows parallel branches — residual adds, Inception concatenations — and takes the
    largest field over them; a layer that mixes the whole map, such as spectral pooling, sees
    the whole input).

    Args:
      model: a ``flax.linen`` model taking ``(x, *, train)``, or a ``flax.nnx`` model
        (:mod:`cnnjax.nnx.models`) called as ``model(x)``; the table of an NNX model equals
        its linen twin's.
      input_shape: ``(H, W, C)`` of one example, or ``(N, H, W, C)``.
      train: trace the training path (shapes are the same for every model here; an NNX
        model's own mode is left as it was).

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
    op = "summary"
    input_shape = tuple(int(v) for v in input_shape)
    if len(input_shape) == 3:
        input_shape = (1, *input_shape)
    if len(input_shape) != 4:
        checks.fail(op, f"input_shape must be (H, W, C) or (N, H, W, C), got {input_shape}.")
    x = jnp.zeros(input_shape, jnp.float32)
    calls, variables = introspect.trace(model, None, x, op=op, train=train)
    n_params = sum(int(np.prod(v.shape)) for v in
                   jax.tree_util.tree_leaves(variables.get("params", {})))

    rows = ["| Layer | Output Size | Weight Size |", "|---|---|---|",
            f"| Input | {_out_size(input_shape)} | |"]
    for call in calls:
        if call.leaf:
            name, weight = _row(call)
            rows.append(f"| {name} | {_out_size(call.output.shape)} | {weight} |"
                        .replace("|  |", "| |"))
    # The deepest feature map: the largest field among the layers whose output is a map.
    fields = [(introspect.chain_size(chain, 0), introspect.chain_size(chain, 1))
              for call, chain in zip(introspect.layers(calls),
                                     introspect.receptive_fields(calls, input_shape[1:-1], op))
              if call.output.ndim == 4]
    rf = max(fields, key=lambda f: f[0] * f[1], default=(1, 1))
    rows.append("")
    rows.append(f"Total parameters: {n_params:,}")
    rows.append(f"Receptive field: {_x(rf)} input pixels (one unit of the deepest feature map)")
    return "\n".join(rows)
