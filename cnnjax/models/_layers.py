"""Building blocks shared by the model zoo.

``ReLU``, ``Flatten`` and ``LogSoftmax`` are tiny stateless modules (rather than bare
functions) so that :func:`cnnjax.models.summary` sees them as rows of the lectures' layer table.
:class:`ConvBN` is the Conv→BatchNorm pair that :func:`cnnjax.models.fold_batch_norms` folds
for inference.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax

from cnnjax import nn as cnn
from cnnjax.models.arch import SMALL_INPUT, check_input, resolve_stem  # noqa: F401
from cnnjax.ops import checks

class ReLU(nn.Module):
    """``max(x, 0)`` as a layer (a row of the summary table)."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(x)


class Flatten(nn.Module):
    """``[N, ...] -> [N, prod(...)]``, row-major over the channels-last layout."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return x.reshape(x.shape[0], -1)


class LogSoftmax(nn.Module):
    """Log-probabilities over the last axis (the lectures' MNIST example ends with it)."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.log_softmax(x, axis=-1)


class ConvBN(nn.Module):
    """Conv (no bias) → BatchNorm, foldable into one biased Conv for inference.

    With ``fold=False`` the variables are ``params: {conv: {kernel}, bn: {scale, bias}}`` and
    ``batch_stats: {bn: {mean, var}}``. With ``fold=True`` (inference only) it is a single
    ``Conv`` with ``params: {conv: {kernel, bias}}`` holding ``cnnjax.fold_batch_norm`` of the
    above — batch norm at test time is a per-channel affine map, "zero overhead at test-time:
    can be fused with conv" (lectures).
    """

    features: int
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] = 1
    padding: Any = 0
    fold: bool = False
    impl: str = "auto"
    momentum: float = 0.9
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        if self.fold:
            if train:
                checks.fail("ConvBN", "a folded Conv→BatchNorm is for inference only; got "
                                       "train=True (use the unfolded model to train).")
            return cnn.Conv(self.features, self.kernel_size, self.stride, self.padding,
                            use_bias=True, impl=self.impl, name="conv")(x)
        x = cnn.Conv(self.features, self.kernel_size, self.stride, self.padding,
                     use_bias=False, impl=self.impl, name="conv")(x)
        return cnn.BatchNorm(momentum=self.momentum, epsilon=self.epsilon, name="bn")(
            x, train=train)


def dropout(rate: float, x: jax.Array, *, train: bool, broadcast_dims: Sequence[int] = ()):
    """Flax dropout drawing from the ``'dropout'`` RNG collection (only when training)."""
    return nn.Dropout(rate, broadcast_dims=broadcast_dims, deterministic=not train)(x)
