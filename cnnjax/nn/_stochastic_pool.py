"""Stochastic pooling module (Zeiler & Fergus 2013)."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
from jax.typing import ArrayLike

import cnnjax
from cnnjax.nn._pool import Shape, window_kwargs


class StochasticPool(nn.Module):
    """Stochastic pooling (Zeiler & Fergus 2013), equivalent to partial application of
    :func:`cnnjax.stochastic_pool`; ``train=True`` samples with the ``'pool'`` RNG, inference
    uses probabilistic weighting.

    Example:
      >>> StochasticPool(window_shape=2).apply({}, jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        key = self.make_rng("pool") if train else None
        return cnnjax.stochastic_pool(x, **window_kwargs(self), train=train, key=key)
