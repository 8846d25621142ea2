"""im2col / col2im: every receptive field of an image as one row of a matrix, and back.

Lecture 3 ("Convolution as a Matrix Multiplication"): unrolling every receptive field of the
input into a row turns the convolution into one matrix product
``cols [N*P, K*C_in] @ w [K*C_in, C_out]`` (``P = prod(out_spatial)``, ``K = prod(k)``); the
``impl='im2col'`` convolution built on it is ``_conv_im2col.py``.

Patches are extracted by hand with one strided ``lax.slice`` per kernel offset, concatenated
on the feature axis (kernel-position-major, channel-minor); XLA fuses the slices and the
concatenation into one copy loop. ``col2im``, the adjoint, is a sum of one strided
``lax.pad`` per kernel offset (interior padding puts the stride gaps back, negative edge
padding crops the convolution's zero padding), again one fused loop and no scatter.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from cnnjax.ops import checks
from cnnjax.ops._conv_geometry import ConvGeometry, shape_argument, window_geometry


def _offsets(kernel_size: Sequence[int]):
    return itertools.product(*(range(k) for k in kernel_size))


def patches(x: jax.Array, geom: ConvGeometry) -> jax.Array:
    """``[N, *S, C] -> [N, *out, K*C]`` (kernel-position-major, channel-minor)."""
    n, c = x.shape[0], x.shape[-1]
    out = geom.output_shape(x.shape[1:-1])
    if any(lo or hi for lo, hi in geom.padding):
        x = lax.pad(x, jnp.zeros((), x.dtype),
                    ((0, 0, 0), *((lo, hi, 0) for lo, hi in geom.padding), (0, 0, 0)))
    pieces = []
    for off in _offsets(geom.kernel_size):
        start = tuple(o * r for o, r in zip(off, geom.dilation))
        limit = tuple(b + (m - 1) * s + 1 for b, m, s in zip(start, out, geom.stride))
        pieces.append(lax.slice(x, (0, *start, 0), (n, *limit, c), (1, *geom.stride, 1)))
    return pieces[0] if len(pieces) == 1 else lax.concatenate(pieces, x.ndim - 1)


def unpatches(cols: jax.Array, spatial: Sequence[int], geom: ConvGeometry) -> jax.Array:
    """Adjoint of ``patches``: ``[N, *out, K*C] -> [N, *S, C]``, overlaps summed."""
    out = cols.shape[1:-1]
    k_total = checks.prod(geom.kernel_size)
    c = cols.shape[-1] // k_total
    zero = jnp.zeros((), cols.dtype)
    total = None
    for i, off in enumerate(_offsets(geom.kernel_size)):
        piece = lax.slice_in_dim(cols, i * c, (i + 1) * c, axis=cols.ndim - 1)
        config = []
        for o, r, s, m, n, (lo, _) in zip(off, geom.dilation, geom.stride, out, spatial,
                                           geom.padding):
            first = o * r - lo  # input coordinate of this tap's first output
            config.append((first, n - (first + (m - 1) * s + 1), s - 1))
        placed = lax.pad(piece, zero, ((0, 0, 0), *config, (0, 0, 0)))
        total = placed if total is None else total + placed
    return total


def im2col(
    x: jax.typing.ArrayLike,
    kernel_size: int | Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilation: int | Sequence[int] = 1,
) -> jax.Array:
    """Unrolls every receptive field of ``x`` into a feature vector (lecture 3).

    ``cols[n, o, (kpos, c)] = xpad[n, o*stride + kpos*dilation, c]`` with the feature axis
    kernel-position-major, channel-minor, so that (``groups=1``)
    ``conv(x, w) == im2col(x, k, ...) @ w.reshape(-1, C_out)``.
    Output size per spatial dim: ``floor((n + lo + hi - dilation*(k-1) - 1) / stride) + 1``.

    Args:
      x: ``[N, *spatial, C]`` with 1 to 3 spatial dims.
      kernel_size: an int or one int per spatial dim.
      stride, padding, dilation: as in ``conv`` (zero padding).

    Returns:
      ``[N, *out_spatial, prod(kernel_size) * C]``.

    Example:
      >>> im2col(jnp.ones((1, 4, 4, 2)), 3).shape
      (1, 2, 2, 18)
    """
    op = "im2col"
    x = jnp.asarray(x) if not isinstance(x, jax.Array) else x
    checks.spatial_rank(x, op)
    geom = window_geometry(op, x.shape[1:-1], kernel_size, stride, padding, dilation)
    return patches(x, geom)


def col2im(
    cols: jax.typing.ArrayLike,
    input_shape: Sequence[int],
    kernel_size: int | Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilation: int | Sequence[int] = 1,
) -> jax.Array:
    """The adjoint of ``im2col``: scatters patches back onto the image, summing overlaps.

    ``<im2col(x, ...), cols> == <x, col2im(cols, x.shape, ...)>``; in particular
    ``col2im(im2col(x))`` multiplies each pixel by the number of windows that contain it.

    Args:
      cols: ``[N, *out_spatial, prod(kernel_size) * C]`` as produced by ``im2col``.
      input_shape: the image shape ``(N, *spatial, C)``.
      kernel_size, stride, padding, dilation: the ``im2col`` arguments.

    Returns:
      ``[N, *spatial, C]`` in ``cols``' dtype.

    Example:
      >>> col2im(jnp.ones((1, 2, 2, 18)), (1, 4, 4, 2), 3)[0, :, :, 0]  # window counts
      Array([[1., 2., 2., 1.], [2., 4., 4., 2.], [2., 4., 4., 2.], [1., 2., 2., 1.]], ...)
    """
    op = "col2im"
    cols = jnp.asarray(cols) if not isinstance(cols, jax.Array) else cols
    shape = shape_argument(op, "input_shape", input_shape, "(N, *spatial, C)", 2)
    geom = window_geometry(op, shape[1:-1], kernel_size, stride, padding, dilation)
    out = geom.output_shape(shape[1:-1])
    expected = (shape[0], *out, checks.prod(geom.kernel_size) * shape[-1])
    if tuple(cols.shape) != expected:
        checks.fail(op, f"cols must have shape {expected} for input_shape {tuple(input_shape)} "
                         f"and these window arguments, got {tuple(cols.shape)}.")
    return unpatches(cols, shape[1:-1], geom)

