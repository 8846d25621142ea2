"""Spatial pyramid pooling (He, Zhang, Ren & Sun 2014, "Spatial pyramid pooling in deep
convolutional networks for visual recognition", ECCV; TPAMI 2015).

Pools the feature map into ``l × … × l`` bins for each pyramid level ``l`` and concatenates
the flattened bins, so inputs of any spatial size give a vector of one fixed length — the
layer between the last convolution and the fully connected layers. The bins are
PyTorch's adaptive-pooling bins (:func:`cnnjax.adaptive_max_pool`): along a dim of size
``n``, bin ``i`` of ``l`` covers ``[⌊i·n/l⌋, ⌈(i+1)·n/l⌉)``.

The max levels are reduced one spatial dim at a time (a box's max is the max along one dim
of the maxes along the others), each as an ``argmax`` over the bins plus a
``take_along_axis``: the values of :func:`cnnjax.adaptive_max_pool`, with the whole
cotangent of a bin going to its first maximum in row-major order (the last dim is reduced
first), as :func:`cnnjax.max_pool`. The bins of a pyramid are large (level 1 spans the
whole map), and a max pool with a window of ``K`` slices compiles in time growing
quickly with ``K`` (its gradient takes ~35 s to compile for the 143 slices of a 13×11 map
on CPU, against 0.4 s here).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from cnnjax.ops import checks
from cnnjax.ops._adaptive_pool import _bins, adaptive_avg_pool
from cnnjax.ops.checks import fail

__all__ = ["spatial_pyramid_pool"]

MODES = ("max", "avg")


def pyramid_levels(levels: Any, op: str) -> tuple[int, ...]:
    """``levels`` as a non-empty tuple of positive ints."""
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence):
        fail(op, f"levels must be a sequence of positive ints, got {levels!r}.", TypeError)
    if not levels or not all(checks.is_int(v) for v in levels):
        fail(op, f"levels must be a non-empty sequence of positive ints, got {levels!r}.",
             TypeError if levels else ValueError)
    if any(v < 1 for v in levels):
        fail(op, f"levels must be positive, got {levels!r}.")
    return tuple(int(v) for v in levels)


@functools.partial(jax.jit, static_argnums=(1,))
def _level_max(x: jax.Array, level: int) -> jax.Array:
    """``adaptive_max_pool(x, (level,) * d)``, one dim at a time, the last dim first."""
    for axis in range(x.ndim - 2, 0, -1):
        n = x.shape[axis]
        if n % level == 0:
            g = x.reshape(x.shape[:axis] + (level, n // level) + x.shape[axis + 1:])
        else:
            # Bins padded to the longest by repeating their last element: a repeat comes
            # after the original, so the first maximum is always an original element.
            idx, _ = _bins(n, level)
            g = jnp.take(x, jnp.asarray(idx.reshape(-1)), axis=axis)
            g = g.reshape(x.shape[:axis] + idx.shape + x.shape[axis + 1:])
        first = jnp.argmax(g, axis=axis + 1, keepdims=True)  # NaN counts as the maximum
        x = jnp.take_along_axis(g, first, axis=axis + 1).squeeze(axis + 1)
    return x


def spatial_pyramid_pool(
    x: jax.typing.ArrayLike,
    levels: Sequence[int] = (1, 2, 4),
    *,
    mode: str = "max",
) -> jax.Array:
    """Spatial pyramid pooling (He et al. 2014): a fixed-length vector from any input size.

    For each level ``l`` (in the order given), ``adaptive_{mode}_pool(x, (l,)*d)`` gives
    ``[N, l, …, l, C]``, flattened per example bin-major, channel-minor (feature
    ``b·C + c`` is channel ``c`` of bin ``b`` in row-major bin order); the levels are
    concatenated. Deterministic: the same at training and inference time.

    Output size: ``[N, C·Σ_l l^d]`` (``d`` spatial dims), whatever the input's spatial size.
    With ``mode='max'`` the gradient of a bin goes to its first maximum in row-major order.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype; every spatial size
        must be at least ``max(levels)``.
      levels: the pyramid's bins per side, a non-empty sequence of positive ints.
      mode: ``'max'`` (the paper's) or ``'avg'``.

    Returns:
      ``[N, C·Σ_l l^d]``, same dtype as ``x``.

    Example:
      >>> x = jnp.arange(16.).reshape(1, 4, 4, 1)
      >>> spatial_pyramid_pool(x, (1, 2))   # the max, then the four 2×2 quadrant maxes
      Array([[15.,  5.,  7., 13., 15.]], dtype=float32)
    """
    op = "spatial_pyramid_pool"
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    d = checks.spatial_rank(x, op)
    levels = pyramid_levels(levels, op)
    checks.check_choice(mode, MODES, op, "mode")
    spatial = tuple(int(n) for n in x.shape[1:-1])
    if max(levels) > min(spatial):
        fail(op, f"levels must not exceed the input's smallest spatial size {min(spatial)} "
                 f"(spatial shape {spatial}), got {levels!r}.")
    n = x.shape[0]
    parts = [(_level_max(x, level) if mode == "max" else adaptive_avg_pool(x, (level,) * d))
             .reshape(n, -1) for level in levels]
    return jnp.concatenate(parts, axis=1)
