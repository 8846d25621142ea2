"""Adaptive and global pooling modules (PyTorch's adaptive bins; global mean and max)."""
from __future__ import annotations


import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import fields
from cnnjax.nn._pool import Shape
from cnnjax.ops import checks


class AdaptiveAvgPool(nn.Module):
    """Adaptive average pooling to ``output_shape`` (PyTorch bins), equivalent to partial
    application of :func:`cnnjax.adaptive_avg_pool`.

    Example:
      >>> AdaptiveAvgPool(output_shape=(2, 2)).apply({}, jnp.ones((1, 5, 5, 3))).shape
      (1, 2, 2, 3)
    """

    output_shape: Shape = 1

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        return cnnjax.adaptive_avg_pool(x, _spatial_out(x, self.output_shape, "AdaptiveAvgPool"))


class AdaptiveMaxPool(nn.Module):
    """Adaptive max pooling to ``output_shape`` (PyTorch bins), equivalent to partial
    application of :func:`cnnjax.adaptive_max_pool`.

    Example:
      >>> AdaptiveMaxPool(output_shape=(2, 2)).apply({}, jnp.ones((1, 5, 5, 3))).shape
      (1, 2, 2, 3)
    """

    output_shape: Shape = 1

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        return cnnjax.adaptive_max_pool(x, _spatial_out(x, self.output_shape, "AdaptiveMaxPool"))


def _spatial_out(x, output_shape, op: str) -> tuple[int, ...]:
    return fields.adaptive_output_shape(output_shape, checks.spatial_rank(jnp.asarray(x), op), op)


class GlobalAvgPool(nn.Module):
    """Mean over all spatial positions ``[N, *spatial, C] -> [N, C]``, equivalent to
    :func:`cnnjax.global_avg_pool`.

    Example:
      >>> GlobalAvgPool().apply({}, jnp.ones((2, 4, 4, 3))).shape
      (2, 3)
    """

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        return cnnjax.global_avg_pool(x)


class GlobalMaxPool(nn.Module):
    """Max over all spatial positions ``[N, *spatial, C] -> [N, C]``, equivalent to
    :func:`cnnjax.global_max_pool`.

    Example:
      >>> GlobalMaxPool().apply({}, jnp.ones((2, 4, 4, 3))).shape
      (2, 3)
    """

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train
        return cnnjax.global_max_pool(x)
