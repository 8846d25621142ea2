"""Adaptive and global pooling modules (PyTorch's adaptive bins; global mean and max)."""
from __future__ import annotations

import jax
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import fields
from cnnjax.nnx._base import Module, Shape, check_input, frozen


class AdaptiveAvgPool(Module):
    """Adaptive average pooling to ``output_shape`` (PyTorch bins), equivalent to partial
    application of :func:`cnnjax.adaptive_avg_pool`; an int means every spatial dim.

    Example:
      >>> AdaptiveAvgPool((2, 2))(jnp.ones((1, 5, 5, 3))).shape
      (1, 2, 2, 3)
    """

    def __init__(self, output_shape: Shape = 1):
        self.output_shape = frozen(output_shape)

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.adaptive_avg_pool(x, _spatial_out(x, self.output_shape, "AdaptiveAvgPool"))


class AdaptiveMaxPool(Module):
    """Adaptive max pooling to ``output_shape`` (PyTorch bins), equivalent to partial
    application of :func:`cnnjax.adaptive_max_pool`; an int means every spatial dim.

    Example:
      >>> AdaptiveMaxPool((2, 2))(jnp.ones((1, 5, 5, 3))).shape
      (1, 2, 2, 3)
    """

    def __init__(self, output_shape: Shape = 1):
        self.output_shape = frozen(output_shape)

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.adaptive_max_pool(x, _spatial_out(x, self.output_shape, "AdaptiveMaxPool"))


def _spatial_out(x, output_shape, op: str) -> tuple[int, ...]:
    return fields.adaptive_output_shape(output_shape, check_input(x, op).ndim - 2, op)


class GlobalAvgPool(Module):
    """Mean over all spatial positions ``[N, *spatial, C] -> [N, C]``, equivalent to
    :func:`cnnjax.global_avg_pool`.

    Example:
      >>> GlobalAvgPool()(jnp.ones((2, 4, 4, 3))).shape
      (2, 3)
    """

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.global_avg_pool(x)


class GlobalMaxPool(Module):
    """Max over all spatial positions ``[N, *spatial, C] -> [N, C]``, equivalent to
    :func:`cnnjax.global_max_pool`.

    Example:
      >>> GlobalMaxPool()(jnp.ones((2, 4, 4, 3))).shape
      (2, 3)
    """

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.global_max_pool(x)
