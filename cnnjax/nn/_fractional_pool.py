"""Fractional max pooling module: a partial application of
:func:`cnnjax.fractional_max_pool` that can stand in for max pooling at a pooling site."""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import fields
from cnnjax.ops import checks

Shape = int | Sequence[int]


class FractionalMaxPool(nn.Module):
    """Fractional max pooling (Graham 2014), equivalent to partial application of
    :func:`cnnjax.fractional_max_pool`.

    ``train=True`` draws the pseudo-random window offsets ``u`` per (example, channel) from
    the ``'pool'`` RNG; ``train=False`` uses the deterministic ``u = 0.5``.

    The output size is ``output_shape``, or, with ``site = (window_shape, strides,
    padding)`` of a max-pooling site, the size max pooling gives there:
    ``cnnjax.conv_output_shape(spatial, window_shape, stride=strides, padding=padding)``
    (``strides=None`` meaning ``window_shape``), so the module drops in for ``MaxPool`` at
    that site. The module's own ``window_shape`` (default 3) is kept, except where the site
    leaves no room for it (``o + k − 1 > n`` at a small map): there it shrinks to
    ``n − o + 1`` in that dim so the output size is the site's.

    Attributes:
      window_shape: the pooling window ``k``, an int or one per spatial dim.
      output_shape: the output spatial size; give this or ``site``.
      site: ``(window_shape, strides, padding)`` of the max pooling it replaces.

    Example:
      >>> pool = FractionalMaxPool(site=(2, 2, 'VALID'))
      >>> x = jnp.ones((1, 10, 10, 3))
      >>> pool.apply({}, x, train=True, rngs={'pool': jax.random.key(0)}).shape
      (1, 5, 5, 3)
    """

    window_shape: Shape = 3
    output_shape: Shape | None = None
    site: tuple | None = None

    def _geometry(self, x: jax.Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
        op = "FractionalMaxPool"
        checks.spatial_rank(x, op)
        return fields.fractional_geometry(tuple(int(n) for n in x.shape[1:-1]),
                                          self.window_shape, self.output_shape, self.site, op)

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        x = jnp.asarray(x)
        window, out = self._geometry(x)
        key = self.make_rng("pool") if train else None
        return cnnjax.fractional_max_pool(x, window, out, train=train, key=key)
