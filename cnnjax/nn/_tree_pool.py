"""Tree pooling module: :func:`cnnjax.tree_pool` with learned filters."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers.params import average_leaves_init
from cnnjax.ops import checks

Shape = int | Sequence[int]


class TreePool(nn.Module):
    """Tree pooling (Lee et al. 2016) with learned filters, equivalent to partial
    application of :func:`cnnjax.tree_pool`.

    Parameters (float32, shared by all channels): ``'leaves'`` ``[2^{depth−1}, *window]``
    and ``'gates'`` ``[2^{depth−1} − 1, *window]``. Default initialisation: every leaf at
    the average filter ``1/K`` plus 10% Gaussian noise (:func:`average_leaves_init`) and the
    gates at zero (``σ = 1/2`` everywhere), so the layer starts close to average pooling.
    Deterministic; ``train`` is ignored. Output size per spatial dim
    ``floor((n + lo + hi − k)/s) + 1``.

    Attributes:
      window_shape, strides, padding: as :func:`cnnjax.tree_pool`.
      depth: tree depth ``D >= 1`` (2: the paper's two leaves and one gate).
      leaves_init, gates_init: initialisers of the filters.

    Example:
      >>> pool = TreePool(window_shape=2)
      >>> v = pool.init(jax.random.key(0), jnp.ones((1, 4, 4, 3)))
      >>> v['params']['leaves'].shape, v['params']['gates'].shape
      ((2, 2, 2), (1, 2, 2))
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    depth: int = 2
    leaves_init: Callable[..., jax.Array] = average_leaves_init()
    gates_init: Callable[..., jax.Array] = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train  # deterministic
        x = jnp.asarray(x)
        op = "TreePool"
        d = checks.spatial_rank(x, op)
        window = checks.ntuple(self.window_shape, d, op, "window_shape")
        if not checks.is_int(self.depth) or self.depth < 1:
            checks.fail(op, f"depth must be an int >= 1, got {self.depth!r}.")
        num_leaves = 2 ** (self.depth - 1)
        leaves = self.param("leaves", self.leaves_init, (num_leaves, *window), jnp.float32)
        gates = self.param("gates", self.gates_init, (num_leaves - 1, *window), jnp.float32)
        return cnnjax.tree_pool(x, leaves, gates, window, self.strides, self.padding)
