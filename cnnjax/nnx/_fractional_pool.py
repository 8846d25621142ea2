"""Fractional max pooling module (Graham 2014): :func:`cnnjax.fractional_max_pool` that can
stand in for max pooling at a pooling site."""
from __future__ import annotations

from typing import Any

import jax
from flax import nnx
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import fields
from cnnjax.nnx._base import RngsLike, Shape, Stochastic, check_input, frozen


class FractionalMaxPool(Stochastic):
    """Fractional max pooling (Graham 2014), equivalent to partial application of
    :func:`cnnjax.fractional_max_pool`.

    In training mode (``deterministic=False``, a new module's mode) the pseudo-random window
    offsets ``u`` are drawn per (example, channel) from the ``'pool'`` stream; ``model.eval()``
    uses the deterministic ``u = 0.5``. The output size is ``output_shape``, or, with ``site =
    (window_shape, strides, padding)`` of a max-pooling site, the size max pooling gives
    there, so the module drops in for :class:`MaxPool`; the window (default 3) shrinks to
    ``n − o + 1`` where the map leaves no room for it.

    Args:
      window_shape: the pooling window ``k``, an int or one per spatial dim.
      output_shape: the output spatial size; give this or ``site``.
      site: ``(window_shape, strides, padding)`` of the max pooling it replaces.
      deterministic: inference mode.
      rngs: an ``nnx.Rngs`` whose ``'pool'`` stream the module forks (or pass ``rngs`` when
        calling).

    Example:
      >>> pool = FractionalMaxPool(site=(2, 2, 'VALID'), rngs=nnx.Rngs(pool=0))
      >>> pool(jnp.ones((1, 10, 10, 3))).shape
      (1, 5, 5, 3)
    """

    def __init__(self, window_shape: Shape = 3, output_shape: Shape | None = None,
                 site: tuple[Any, Any, Any] | None = None, *, deterministic: bool = False,
                 rngs: nnx.Rngs | None = None):
        self.window_shape = frozen(window_shape)
        self.output_shape = frozen(output_shape)
        self.site = frozen(site)
        self.init_stochastic(deterministic, rngs, "FractionalMaxPool")

    def __call__(self, x: ArrayLike, *, deterministic: bool | None = None,
                 rngs: RngsLike | None = None) -> jax.Array:
        op = "FractionalMaxPool"
        x = check_input(x, op)
        window, out = fields.fractional_geometry(tuple(int(n) for n in x.shape[1:-1]),
                                                 self.window_shape, self.output_shape,
                                                 self.site, op)
        train = self.training(deterministic)
        key = self.key(rngs, op) if train else None
        return cnnjax.fractional_max_pool(x, window, out, train=train, key=key)
