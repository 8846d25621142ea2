"""Tree pooling (Lee, Gallagher & Tu 2016, "Generalizing pooling functions in convolutional
neural networks: mixed, gated, and tree", AISTATS).

A complete binary tree of depth ``D`` in heap order (node 0 the root, the children of node
``m`` are ``2m+1`` and ``2m+2``) with ``2^D − 1`` nodes: the internal nodes
``0 … 2^{D−1}−2`` carry gating filters ``ω_m``, the ``2^{D−1}`` leaves (the following nodes)
carry pooling filters ``v_l``, every filter of the window's shape. Per window ``x`` (one
channel; the filters are shared over channels)::

    f_leaf(x) = v_leafᵀ x
    f_m(x)    = σ(ω_mᵀ x)·f_{2m+1}(x) + (1 − σ(ω_mᵀ x))·f_{2m+2}(x)

and the output is ``f_0(x)``. Depth 2 (two leaves, one gate) is the paper's choice; depth 1
is a single learned linear pooling filter. Leaves at ``1/K`` (``K`` window elements) with
any gates give average pooling.

Every filter response is a weighted sum of the window slices of the zero-padded input
(:func:`cnnjax.ops._pool.over_windows`, with its fast backward pass), so the gradient
reaches ``x``, the leaves and the gates. ``1 − σ(z)`` is evaluated as ``σ(−z)``, exact where
``σ(z)`` rounds to 1.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from cnnjax.ops import checks
from cnnjax.ops.checks import fail
from cnnjax.ops._pool_windows import PoolGeometry, over_windows, pad_spatial, pool_geometry

__all__ = ["tree_pool"]


def _tree_body(parts: list[jax.Array], filters: jax.Array, *, num_gates: int) -> jax.Array:
    """Root value of the tree on the window slices; ``filters`` ``[nodes, K]`` in heap order."""
    responses = []
    for f in range(filters.shape[0]):
        r = None
        for j, s in enumerate(parts):
            term = s * filters[f, j]
            r = term if r is None else r + term
        responses.append(r)
    values = responses[num_gates:]  # the deepest level, left to right
    for first in reversed([2 ** level - 1 for level in range(len(values).bit_length() - 1)]):
        # Level starting at node `first` (width first + 1); its children are `values`.
        level = []
        for m in range(first, 2 * first + 1):
            z = responses[m]
            left, right = values[2 * (m - first)], values[2 * (m - first) + 1]
            level.append(jax.nn.sigmoid(z) * left + jax.nn.sigmoid(-z) * right)
        values = level
    return values[0]


@functools.partial(jax.jit, static_argnums=(2,))
def _tree(x: jax.Array, filters: jax.Array, geom: PoolGeometry) -> jax.Array:
    xpad = pad_spatial(x, geom.full_pads, 0)
    num_gates = filters.shape[0] // 2
    body = functools.partial(_tree_body, num_gates=num_gates)
    return over_windows(body, geom, xpad, filters)


def tree_pool(
    x: jax.typing.ArrayLike,
    leaves: jax.typing.ArrayLike,
    gates: jax.typing.ArrayLike,
    window_shape: Any,
    strides: Any = None,
    padding: Any = "VALID",
) -> jax.Array:
    """Tree pooling (Lee et al. 2016): a learned binary tree of gated pooling filters.

    Heap-ordered complete binary tree of depth ``D``: ``gates[m]`` is the filter ``ω_m`` of
    internal node ``m`` (``0 <= m <= 2^{D−1}−2``), ``leaves[l]`` the filter of node
    ``2^{D−1}−1+l``. For each window ``x`` of one channel (zero padding; the filters are
    shared by all channels), a leaf gives ``v_lᵀx`` and internal node ``m`` gives
    ``σ(ω_mᵀx)·f_{2m+1} + (1 − σ(ω_mᵀx))·f_{2m+2}``; the output is the root's value.
    Deterministic: the same at training and inference time (the filters are learned
    parameters; differentiate with respect to ``leaves`` and ``gates``).

    Output size per spatial dim: ``floor((n + lo + hi − k)/stride) + 1``.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      leaves: ``[2^{D−1}, *window_shape]`` leaf (pooling) filters.
      gates: ``[2^{D−1} − 1, *window_shape]`` gating filters (``[0, *window_shape]`` for
        ``D = 1``).
      window_shape: int or ``d`` ints.
      strides: int or ``d`` ints; ``None`` means ``window_shape``.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.

    Returns:
      ``[N, *out_spatial, C]``, same dtype as ``x``; the filters are cast to it.

    Example:
      >>> x = jnp.array([[-1., 4], [0, 1]])[None, :, :, None]
      >>> leaves = jnp.stack([jnp.array([[0., 1], [0, 0]]),    # picks the 4
      ...                     jnp.full((2, 2), 0.25)])           # the average, 1
      >>> tree_pool(x, leaves, jnp.zeros((1, 2, 2)), 2)[0, 0, 0, 0]   # σ(0) = 1/2
      Array(2.5, dtype=float32)
    """
    op = "tree_pool"
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    geom = pool_geometry(op, x, window_shape, strides, padding)
    window = geom.window
    leaves = jnp.asarray(leaves)
    gates = jnp.asarray(gates)
    checks.check_floating(leaves, op, "leaves")
    checks.check_floating(gates, op, "gates")
    num_leaves = leaves.shape[0] if leaves.ndim else 0
    if leaves.ndim != len(window) + 1 or tuple(leaves.shape[1:]) != window or num_leaves < 1:
        dims = ", ".join(map(str, window))
        fail(op, f"leaves must have shape [2^(D-1), *window_shape] = [L, {dims}] with L >= 1, "
                 f"got {tuple(leaves.shape)}.")
    if num_leaves & (num_leaves - 1):
        fail(op, f"leaves must hold a power of two of filters (2^(D-1) for a tree of depth D), "
                 f"got {num_leaves}.")
    depth = num_leaves.bit_length()
    want = (num_leaves - 1, *window)
    if tuple(gates.shape) != want:
        fail(op, f"gates must have shape {want} (2^(D-1) - 1 gating filters for a tree of depth "
                 f"{depth} with {num_leaves} leaves), got {tuple(gates.shape)}.")
    k = checks.prod(window)
    filters = jnp.concatenate([gates.astype(x.dtype).reshape(num_leaves - 1, k),
                               leaves.astype(x.dtype).reshape(num_leaves, k)])
    return _tree(x, filters, geom)
