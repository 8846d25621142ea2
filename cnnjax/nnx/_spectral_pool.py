"""Spectral pooling module (Rippel et al. 2015)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
from flax import nnx
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import fields
from cnnjax.nnx._base import RngsLike, Shape, Stochastic, WindowPool, check_input, frozen


class SpectralPool(WindowPool, Stochastic):
    """Spectral pooling (Rippel et al. 2015), equivalent to partial application of
    :func:`cnnjax.spectral_pool`.

    The output size is ``output_shape`` if given, else the size that max pooling with
    ``window_shape``/``strides``/``padding`` would produce on the input, so it drops in
    wherever a max pool was. In training mode (``deterministic=False``, a new module's mode)
    with ``frequency_dropout`` it applies the paper's random low-pass cutoff, drawing from the
    ``'pool'`` stream; ``model.eval()`` (or ``frequency_dropout=False``) keeps every frequency
    that fits.

    Args:
      output_shape: the spatial output size, or ``None`` for the site's.
      window_shape, strides, padding: the site (used when ``output_shape`` is ``None``).
      min_keep: frequencies per axis that frequency dropout always keeps.
      frequency_dropout: apply frequency dropout in training mode.
      deterministic: inference mode.
      rngs: an ``nnx.Rngs`` whose ``'pool'`` stream the module forks (or pass ``rngs`` when
        calling).

    Example:
      >>> SpectralPool(window_shape=2, deterministic=True)(jnp.ones((1, 6, 6, 3))).shape
      (1, 3, 3, 3)
    """

    def __init__(self, output_shape: Sequence[int] | None = None,
                 window_shape: Shape | None = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, min_keep: int | None = None,
                 frequency_dropout: bool = True, deterministic: bool = False,
                 rngs: nnx.Rngs | None = None):
        WindowPool.__init__(self, window_shape, strides, padding)
        self.output_shape = frozen(output_shape)
        self.min_keep = min_keep
        self.frequency_dropout = frequency_dropout
        self.init_stochastic(deterministic, rngs, "SpectralPool")

    def __call__(self, x: ArrayLike, *, deterministic: bool | None = None,
                 rngs: RngsLike | None = None) -> jax.Array:
        x = check_input(x, "SpectralPool")
        out = fields.spectral_output_shape(x.shape[1:-1], self.output_shape, self.window_shape,
                                           self.strides, self.padding, "SpectralPool")
        train = self.training(deterministic) and self.frequency_dropout
        key = self.key(rngs, "SpectralPool") if train else None
        return cnnjax.spectral_pool(x, out, train=train, key=key, min_keep=self.min_keep)
