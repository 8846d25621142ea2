"""Tree pooling module (Lee et al. 2016): :func:`cnnjax.tree_pool` with learned filters."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers.params import average_leaves_init
from cnnjax.nnx._base import Initializer, Shape, WindowPool, check_input, eager_ntuple
from cnnjax.ops import checks


class TreePool(WindowPool):
    """Tree pooling with learned filters, equivalent to partial application of
    :func:`cnnjax.tree_pool`.

    ``nnx.Param`` s (float32, shared by all channels): ``leaves`` ``[2^{depth−1}, *window]``
    and ``gates`` ``[2^{depth−1} − 1, *window]``; an int ``window_shape`` is a square 2-D
    window. Default initialisation: every leaf at the average filter ``1/K`` plus 10% Gaussian
    noise and the gates at zero (``σ = 1/2``), so the layer starts close to average pooling.
    Output size per spatial dim ``floor((n + lo + hi − k)/s) + 1``.

    Args:
      window_shape, strides, padding: as :func:`cnnjax.tree_pool`.
      depth: tree depth ``D >= 1`` (2: the paper's two leaves and one gate).
      leaves_init, gates_init: initialisers of the filters.
      rngs: its ``params`` stream gives the initialisers' keys.

    Example:
      >>> pool = TreePool(2, rngs=nnx.Rngs(0))
      >>> pool.leaves.shape, pool.gates.shape
      ((2, 2, 2), (1, 2, 2))
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, depth: int = 2,
                 leaves_init: Initializer = average_leaves_init(),
                 gates_init: Initializer = nnx.initializers.zeros_init(), rngs: nnx.Rngs):
        op = "TreePool"
        super().__init__(window_shape, strides, padding)
        window = eager_ntuple(window_shape, op, "window_shape")
        if not checks.is_int(depth) or depth < 1:
            checks.fail(op, f"depth must be an int >= 1, got {depth!r}.")
        self.depth = depth
        leaves = 2 ** (depth - 1)
        self.leaves = nnx.Param(leaves_init(rngs.params(), (leaves, *window), jnp.float32))
        self.gates = nnx.Param(gates_init(rngs.params(), (leaves - 1, *window), jnp.float32))

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = check_input(x, "TreePool", d=self.leaves.ndim - 1)
        return cnnjax.tree_pool(x, self.leaves[...], self.gates[...], **self.window_kwargs())
