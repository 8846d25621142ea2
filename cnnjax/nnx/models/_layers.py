"""Building blocks of the NNX model zoo, twins of :mod:`cnnjax.models._layers`.

``ReLU``, ``Flatten`` and ``LogSoftmax`` are tiny stateless modules (rather than bare
functions) so that :func:`cnnjax.models.summary` sees them as rows of the lectures' layer
table, as it does in the linen zoo; :class:`ConvBN` is the Conv (no bias) → BatchNorm pair.
NNX builds parameters before any input is seen, so a model follows the shape of its input
through its layers while it builds them (:func:`shape_after`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from cnnjax.models.arch import check_input
from cnnjax.nnx._base import Module, Shape
from cnnjax.nnx._batch_norm import BatchNorm
from cnnjax.nnx._conv import Conv
from cnnjax.ops import checks


class ReLU(Module):
    """``max(x, 0)`` as a layer (a row of the summary table)."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(x)


class Flatten(Module):
    """``[N, ...] -> [N, prod(...)]``, row-major over the channels-last layout."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return x.reshape(x.shape[0], -1)


class LogSoftmax(Module):
    """Log-probabilities over the last axis (the lectures' MNIST example ends with it)."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.log_softmax(x, axis=-1)


class ConvBN(Module):
    """Conv (no bias) → BatchNorm (``conv`` and ``bn``), as the linen zoo's ``ConvBN``."""

    def __init__(self, in_features: int, features: int, kernel_size: Shape, stride: Shape = 1,
                 padding: Any = 0, *, impl: str = "auto", momentum: float = 0.9,
                 epsilon: float = 1e-5, rngs: nnx.Rngs):
        self.conv = Conv(in_features, features, kernel_size, stride=stride, padding=padding,
                         use_bias=False, impl=impl, rngs=rngs)
        self.bn = BatchNorm(features, momentum=momentum, epsilon=epsilon, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.bn(self.conv(x))


def _to_input_dtype(args: tuple, /, *, dtype: Any = None, inexact: bool = True) -> tuple:
    # The linen zoo's Dense(dtype=x.dtype): parameters are cast to the input's dtype, so
    # float64 inputs stay float64 under strict dtype promotion.
    del dtype, inexact
    return tuple(None if a is None else jnp.asarray(a).astype(args[0].dtype) for a in args)


def dense(in_features: int, out_features: int, rngs: nnx.Rngs) -> nnx.Linear:
    """``nnx.Linear`` computing in its input's dtype (a ``Linear (in→out)`` summary row)."""
    return nnx.Linear(in_features, out_features, promote_dtype=_to_input_dtype, rngs=rngs)


def shape_after(layer: nnx.Module, shape: Sequence[int]) -> tuple[int, ...]:
    """The shape ``[*spatial, C]`` of ``layer``'s output for one input of ``shape``.

    Computed shape-only on a copy in eval mode, so any pool (a spec's or a factory's) may
    set the size, and building a model draws no randomness.
    """
    graphdef, state = nnx.split(layer)

    def run(state):
        copy = nnx.merge(graphdef, state)
        copy.eval()
        return copy(jnp.zeros((1, *shape), jnp.float32))

    return tuple(jax.eval_shape(run, state).shape[1:])


def flat_size(shape: Sequence[int]) -> int:
    return math.prod(shape)


def model_input_shape(input_shape: Any, op: str) -> tuple[int, int, int]:
    """``input_shape`` ``(H, W, C)`` as a tuple of positive ints."""
    if (not isinstance(input_shape, Sequence) or isinstance(input_shape, str)
            or len(input_shape) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                       for v in input_shape)):
        checks.fail(op, f"input_shape must be (H, W, C), three ints >= 1, got {input_shape!r}.")
    return tuple(input_shape)


def check_model_input(x: Any, input_shape: tuple[int, ...], op: str, *,
                      any_size: bool = False) -> jax.Array:
    """``x`` ``[N, *input_shape]`` (``any_size``: any ``H, W`` with ``input_shape``'s ``C``)."""
    x = check_input(x, op)
    if any_size:
        ok, wanted = x.shape[-1] == input_shape[-1], f"[N, H, W, {input_shape[-1]}]"
    else:
        ok, wanted = x.shape[1:] == input_shape, f"[N, {', '.join(map(str, input_shape))}]"
    if not ok:
        checks.fail(op, f"x must be {wanted} (the model was built for input_shape="
                         f"{input_shape}), got shape {x.shape}.")
    return x
