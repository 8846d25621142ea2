"""Stochastic pooling module (Zeiler & Fergus 2013)."""
from __future__ import annotations

from typing import Any

import jax
from flax import nnx
from jax.typing import ArrayLike

import cnnjax
from cnnjax.nnx._base import RngsLike, Shape, Stochastic, WindowPool


class StochasticPool(WindowPool, Stochastic):
    """Stochastic pooling (Zeiler & Fergus 2013), equivalent to partial application of
    :func:`cnnjax.stochastic_pool`.

    In training mode (``deterministic=False``, a new module's mode) each region outputs one of
    its ``relu`` values, sampled with probability proportional to it from the ``'pool'``
    stream; ``model.eval()`` gives probabilistic weighting ``Σ p_j·x_j``.

    Args:
      window_shape, strides, padding: as :func:`cnnjax.stochastic_pool`.
      deterministic: inference mode.
      rngs: an ``nnx.Rngs`` whose ``'pool'`` stream the module forks (or pass ``rngs`` when
        calling).

    Example:
      >>> pool = StochasticPool(2, rngs=nnx.Rngs(pool=0))
      >>> pool.eval()
      >>> pool(jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, deterministic: bool = False,
                 rngs: nnx.Rngs | None = None):
        WindowPool.__init__(self, window_shape, strides, padding)
        self.init_stochastic(deterministic, rngs, "StochasticPool")

    def __call__(self, x: ArrayLike, *, deterministic: bool | None = None,
                 rngs: RngsLike | None = None) -> jax.Array:
        train = self.training(deterministic)
        key = self.key(rngs, "StochasticPool") if train else None
        return cnnjax.stochastic_pool(x, **self.window_kwargs(), train=train, key=key)
