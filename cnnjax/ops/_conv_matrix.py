"""The dense convolution matrix (lecture 3, "Convolution as a Matrix Multiplication").

A convolution is a linear operator, so for a fixed kernel it is a (doubly) block-Toeplitz
matrix acting on the flattened image.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cnnjax.ops import checks
from cnnjax.ops._conv_geometry import shape_argument, window_geometry


def conv_matrix(
    w: jax.typing.ArrayLike,
    input_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> jax.Array:
    """The dense doubly-block-Toeplitz matrix of a convolution (lecture 3).

    ``M[(o, co), (i, ci)]`` with row-major flattening of ``(*out_spatial, C_out)`` and
    ``(*in_spatial, C_in)``, so that for one example ``x[n]`` of shape ``input_shape``::

        M @ x[n].ravel() == conv(x, w, ...)[n].ravel()

    Zero padding only (padding modes are not linear maps of this form with a fixed size; pad
    explicitly first). Built by scattering every kernel tap to the (output, input) pairs it
    connects, so the cost is ``O(prod(out) * prod(k) * C_in/groups * C_out)`` plus the dense
    matrix itself.

    Args:
      w: kernel ``[*kernel_size, C_in // groups, C_out]``.
      input_shape: ``(*spatial, C_in)`` of one example.
      stride, padding, dilation, groups: as in ``conv``.

    Returns:
      ``[prod(out_spatial) * C_out, prod(in_spatial) * C_in]`` in ``w``'s dtype.

    Example:
      >>> conv_matrix(jnp.ones((3, 3, 1, 1)), (4, 4, 1)).shape   # lecture example
      (4, 16)
    """
    op = "conv_matrix"
    w = jnp.asarray(w)
    checks.check_floating(w, op, "w")
    shape = shape_argument(op, "input_shape", input_shape, "(*spatial, C_in)", 1)
    d = len(shape) - 1
    if w.ndim != d + 2:
        checks.fail(op, f"w must have rank {d + 2} ([*kernel_size, C_in // groups, C_out]) for "
                         f"input_shape {shape!r}, got shape {w.shape}.")
    spatial, c_in = shape[:-1], shape[-1]
    k = tuple(w.shape[:d])
    c_out = w.shape[-1]
    if not checks.is_int(groups) or groups < 1:
        checks.fail(op, f"groups must be a positive int, got {groups!r}.")
    if c_in % groups or c_out % groups:
        checks.fail(op, f"groups ({groups}) must divide C_in ({c_in}) and C_out ({c_out}).")
    if w.shape[-2] != c_in // groups:
        checks.fail(op, f"w.shape[-2] must be C_in // groups = {c_in // groups}, got w.shape "
                         f"{w.shape}.")
    geom = window_geometry(op, spatial, k, stride, padding, dilation, groups,
                           kernel_name="w (kernel)")
    s, pads, r = geom.stride, geom.padding, geom.dilation
    out = geom.output_shape(spatial)

    # Index bookkeeping in NumPy (static), values gathered from w (traceable, differentiable).
    cig, cog = c_in // groups, c_out // groups
    o_idx = np.stack(np.meshgrid(*[np.arange(m) for m in out], indexing="ij"), -1).reshape(-1, d)
    k_idx = np.stack(np.meshgrid(*[np.arange(m) for m in k], indexing="ij"), -1).reshape(-1, d)
    lo = np.array([p[0] for p in pads])
    pos = (o_idx[:, None, :] * np.array(s) + k_idx[None, :, :] * np.array(r) - lo)  # [O, K, d]
    inside = np.all((pos >= 0) & (pos < np.array(spatial)), axis=-1)  # [O, K]
    o_flat, k_flat = np.nonzero(inside)
    i_flat = np.ravel_multi_index(tuple(pos[o_flat, k_flat].T), spatial)
    # Every (output pixel, tap) pair couples channel block g of input to block g of output.
    g = np.arange(groups)
    ci = np.arange(cig)
    co = np.arange(cog)
    rows = (o_flat[:, None, None, None] * c_out + (g[:, None, None] * cog + co[None, None, :])
            [None])
    cols = (i_flat[:, None, None, None] * c_in + (g[:, None, None] * cig + ci[None, :, None])
            [None])
    rows, cols = np.broadcast_arrays(rows, cols)
    w_flat = w.reshape(-1, cig, c_out)  # [K, cig, c_out]
    w_g = w_flat.reshape(w_flat.shape[0], cig, groups, cog).transpose(0, 2, 1, 3)  # [K,g,ci,co]
    vals = w_g[k_flat]  # [P, g, ci, co]
    m = jnp.zeros((checks.prod(out) * c_out, checks.prod(spatial) * c_in), w.dtype)
    return m.at[rows.ravel(), cols.ravel()].add(vals.reshape(-1))
