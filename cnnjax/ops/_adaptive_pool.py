"""Adaptive (output-size driven) and global average / max pooling.

Adaptive pooling uses PyTorch's bins (``AdaptiveAvgPool``/``AdaptiveMaxPool``): along a dim
of size ``n`` pooled to ``o``, output ``i`` covers ``[floor(i·n/o), ceil((i+1)·n/o))``.
Bins may overlap and differ in length by one. A box's mean (max) is the mean (max) along
one dim of the means (maxes) along the others, so the op is applied one dim at a time:
a gather of each bin padded to the longest bin, then a masked reduction.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnnjax.ops import checks
from cnnjax.ops.checks import fail
from cnnjax.ops._pool import avg_pool_impl, max_pool_impl
from cnnjax.ops._pool_windows import PoolGeometry, max_over_windows, pad_spatial

__all__ = ["adaptive_avg_pool", "adaptive_max_pool", "global_avg_pool", "global_max_pool"]


def _bins(n: int, o: int) -> tuple[np.ndarray, np.ndarray]:
    """``(index [o, L], valid [o, L])`` of PyTorch's adaptive bins, padded to the longest."""
    i = np.arange(o)
    start = (i * n) // o
    end = -((-(i + 1) * n) // o)
    length = int(np.max(end - start))
    idx = start[:, None] + np.arange(length)[None, :]
    valid = idx < end[:, None]
    # Padding entries repeat the bin's last element: harmless for a max and masked for a mean.
    idx = np.minimum(idx, (end - 1)[:, None])
    return idx, valid


def _canonical_output(op: str, x: Any, output_shape: Any) -> tuple[int, tuple[int, ...]]:
    d = checks.spatial_rank(x, op)
    out = checks.ntuple(output_shape, d, op, "output_shape")
    for i, (n, o) in enumerate(zip(x.shape[1:-1], out)):
        if o > n:
            fail(op, f"output_shape must not be larger than the input spatial shape "
                     f"{tuple(x.shape[1:-1])}, got {out} (dim {i}: {o} > {n}).")
    return d, out


@functools.partial(jax.jit, static_argnums=(1, 2))
def _adaptive(x: jax.Array, out: tuple[int, ...], reduce: str) -> jax.Array:
    spatial = tuple(x.shape[1:-1])
    if all(n % o == 0 for n, o in zip(spatial, out)):
        # Equal disjoint bins are exactly a pool with window = stride = n/o (the fast
        # tiling path of _pool, with its single-element max gradient).
        k = tuple(n // o for n, o in zip(spatial, out))
        d = len(out)
        geom = PoolGeometry(k, k, (1,) * d, ((0, 0),) * d, ((0, 0),) * d, spatial, out)
        return max_pool_impl(x, geom) if reduce == "max" else avg_pool_impl(x, geom, True)
    for axis, o in enumerate(out, start=1):
        n = x.shape[axis]
        if o == n:
            continue
        if n % o == 0:
            # Equal, disjoint bins: a reshape and a reduction.
            shape = x.shape[:axis] + (o, n // o) + x.shape[axis + 1:]
            xr = x.reshape(shape)
            x = jnp.max(xr, axis=axis + 1) if reduce == "max" else jnp.mean(xr, axis=axis + 1)
            continue
        idx, valid = _bins(n, o)
        g = jnp.take(x, jnp.asarray(idx.reshape(-1)), axis=axis)
        g = g.reshape(x.shape[:axis] + idx.shape + x.shape[axis + 1:])
        if reduce == "max":
            x = jnp.max(g, axis=axis + 1)
        else:
            w = valid / valid.sum(axis=1, keepdims=True)
            wshape = [1] * g.ndim
            wshape[axis], wshape[axis + 1] = w.shape
            x = jnp.sum(g * jnp.asarray(w.reshape(wshape), x.dtype), axis=axis + 1)
    return x


def adaptive_avg_pool(x: jax.typing.ArrayLike, output_shape: Any) -> jax.Array:
    """Adaptive average pooling to a fixed output size (PyTorch ``AdaptiveAvgPool{1,2,3}d``).

    ``y[n, i, c] = mean(x[n, floor(i·N/O) : ceil((i+1)·N/O), c])`` per spatial dim (boxes in
    2-D/3-D).

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      output_shape: int or ``d`` ints, each ``<=`` the input size.

    Returns:
      ``[N, *output_shape, C]``, same dtype as ``x``.

    Example:
      >>> adaptive_avg_pool(jnp.arange(5.).reshape(1, 5, 1), 3)[0, :, 0]
      Array([0.5, 2. , 3.5], dtype=float32)
    """
    op = "adaptive_avg_pool"
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    _, out = _canonical_output(op, x, output_shape)
    return _adaptive(x, out, "avg")


def adaptive_max_pool(x: jax.typing.ArrayLike, output_shape: Any) -> jax.Array:
    """Adaptive max pooling to a fixed output size (PyTorch ``AdaptiveMaxPool{1,2,3}d``).

    ``y[n, i, c] = max(x[n, floor(i·N/O) : ceil((i+1)·N/O), c])`` per spatial dim.
    Gradients are exact for inputs without ties.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims, floating dtype.
      output_shape: int or ``d`` ints, each ``<=`` the input size.

    Returns:
      ``[N, *output_shape, C]``, same dtype as ``x``.

    Example:
      >>> adaptive_max_pool(jnp.arange(5.).reshape(1, 5, 1), 3)[0, :, 0]
      Array([1., 3., 4.], dtype=float32)
    """
    op = "adaptive_max_pool"
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    _, out = _canonical_output(op, x, output_shape)
    return _adaptive(x, out, "max")


def global_avg_pool(x: jax.typing.ArrayLike) -> jax.Array:
    """Global average pooling: the mean over all spatial dims (Lin et al. 2014, NiN).

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims.

    Returns:
      ``[N, C]``, same dtype as ``x``.

    Example:
      >>> global_avg_pool(jnp.ones((2, 3, 3, 4))).shape
      (2, 4)
    """
    op = "global_avg_pool"
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    d = checks.spatial_rank(x, op)
    return jnp.mean(x, axis=tuple(range(1, d + 1)))


def global_max_pool(x: jax.typing.ArrayLike) -> jax.Array:
    """Global max pooling: the max over all spatial dims (the lectures' "global pooling").

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims.

    Returns:
      ``[N, C]``, same dtype as ``x``.

    Example:
      >>> global_max_pool(jnp.arange(8.).reshape(1, 2, 2, 2))
      Array([[6., 7.]], dtype=float32)
    """
    op = "global_max_pool"
    x = jnp.asarray(x)
    checks.check_floating(x, op)
    checks.spatial_rank(x, op)
    return _global_max(x)


@jax.jit
def _global_max(x: jax.Array) -> jax.Array:
    # A tree of 2×2(×2) tiling max pools (odd sizes padded with −∞) instead of one
    # jnp.max: on CPU its forward+backward is several times cheaper, and the gradient goes
    # to a single maximum like max_pool's (jnp.max splits it between ties).
    while any(n > 1 for n in x.shape[1:-1]):
        spatial = tuple(x.shape[1:-1])
        k = tuple(2 if n > 1 else 1 for n in spatial)
        out = tuple(-(-n // w) for n, w in zip(spatial, k))
        d = len(spatial)
        full = tuple((0, o * w - n) for n, w, o in zip(spatial, k, out))
        geom = PoolGeometry(k, k, (1,) * d, ((0, 0),) * d, full, spatial, out)
        x = max_over_windows(pad_spatial(x, full, -jnp.inf), geom)
    return x.reshape(x.shape[0], x.shape[-1])
