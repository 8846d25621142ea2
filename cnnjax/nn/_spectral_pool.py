"""Spectral pooling module (Rippel et al. 2015)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import fields
from cnnjax.nn._pool import Shape
from cnnjax.ops import checks


class SpectralPool(nn.Module):
    """Spectral pooling (Rippel et al. 2015), equivalent to partial application of
    :func:`cnnjax.spectral_pool`.

    The output size is ``output_shape`` if given, else the size that a window op with
    ``window_shape``/``strides``/``padding`` would produce on the input (computed at call time
    with :func:`cnnjax.conv_output_shape`), so it drops in wherever a max pool was. With
    ``train=True`` and ``frequency_dropout`` it applies the paper's random low-pass cutoff,
    drawing from the ``'pool'`` RNG.

    Example:
      >>> SpectralPool(window_shape=2).apply({}, jnp.ones((1, 6, 6, 3))).shape
      (1, 3, 3, 3)
    """

    output_shape: Sequence[int] | None = None
    window_shape: Shape | None = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    min_keep: int | None = None
    frequency_dropout: bool = True

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        x = jnp.asarray(x)
        checks.spatial_rank(x, "SpectralPool")
        out = fields.spectral_output_shape(x.shape[1:-1], self.output_shape, self.window_shape,
                                           self.strides, self.padding, "SpectralPool")
        use_dropout = train and self.frequency_dropout
        key = self.make_rng("pool") if use_dropout else None
        return cnnjax.spectral_pool(x, out, train=use_dropout, key=key, min_keep=self.min_keep)
