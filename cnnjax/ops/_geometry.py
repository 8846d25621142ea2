"""Convolution geometry: output sizes, receptive fields and the dense convolution matrix.

Seeds (lecture 3, "Convolution as a Matrix Multiplication"): a convolution is a linear
operator, so for a fixed kernel it is a (doubly) block-Toeplitz matrix acting on the
flattened image; the output size of a strided, padded, dilated window is
``floor((n + lo + hi - dilation*(k-1) - 1) / stride) + 1``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cnnjax.ops import _checks


def conv_output_shape(
    spatial_shape: Sequence[int],
    kernel_size: int | Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
) -> tuple[int, ...]:
    """Spatial output shape of a convolution or pooling window.

    For every spatial dim ``out = floor((n + lo + hi - dilation*(k-1) - 1) / stride) + 1``;
    with ``ceil_mode`` the division rounds up, but (as in PyTorch) the last window must start
    inside the input or the left padding.

    Args:
      spatial_shape: the input's spatial sizes ``(*spatial,)`` (no batch or channel dim).
      kernel_size: window size, an int or one int per spatial dim.
      stride: window stride, an int or one per dim.
      padding: ``'VALID'``, ``'SAME'`` (XLA semantics), an int, ``d`` ints or ``d`` pairs.
      dilation: kernel dilation, an int or one per dim.
      ceil_mode: use PyTorch's ceil rule instead of floor.

    Returns:
      A tuple of ``d`` output sizes.

    Example:
      >>> conv_output_shape((227, 227), 11, stride=4)   # AlexNet conv1
      (55, 55)
      >>> conv_output_shape((7,), 3, stride=3, padding=1)
      (3,)
    """
    op = "conv_output_shape"
    if isinstance(spatial_shape, (str, bytes)) or not isinstance(spatial_shape, Sequence):
        _checks.fail(op, f"spatial_shape must be a sequence of ints, got {spatial_shape!r}.",
                     TypeError)
    d = len(spatial_shape)
    if d < 1:
        _checks.fail(op, f"spatial_shape must have at least one dim, got {spatial_shape!r}.")
    spatial = _checks.ntuple(tuple(spatial_shape), d, op, "spatial_shape", min_value=1)
    k = _checks.ntuple(kernel_size, d, op, "kernel_size")
    s = _checks.ntuple(stride, d, op, "stride")
    r = _checks.ntuple(dilation, d, op, "dilation")
    pads = _checks.canonical_padding(padding, spatial, k, s, op, dilation=r)
    _checks.check_window_fits(spatial, k, pads, op, dilation=r, name="kernel_size")
    return tuple(
        _checks.output_size(n, kk, ss, lo, hi, rr, ceil_mode)
        for n, kk, ss, (lo, hi), rr in zip(spatial, k, s, pads, r)
    )


class ReceptiveField(NamedTuple):
    """Receptive field of one layer's outputs, in input pixels along one axis.

    Attributes:
      size: number of input pixels one output sees (``1 + sum_l dilation_l*(k_l-1)*jump_{l-1}``).
      jump: distance in input pixels between adjacent outputs (product of strides so far).
      start: input coordinate of the centre of the first output's field (may be negative or
        fractional when padding or even kernels are involved).
    """

    size: int
    jump: int
    start: float


def receptive_field(layers: Sequence[Sequence[int]]) -> list[ReceptiveField]:
    """Receptive field after each layer of a stack of convolutions/poolings along one axis.

    Each layer is ``(kernel_size, stride, padding, dilation)`` (``dilation`` may be omitted).
    With ``k_eff = dilation*(k-1) + 1`` the standard recursion (Araujo et al., "Computing
    receptive fields of convolutional neural networks", Distill 2019) is::

        size_l  = size_{l-1} + (k_eff - 1) * jump_{l-1}
        jump_l  = jump_{l-1} * stride
        start_l = start_{l-1} + ((k_eff - 1) / 2 - padding) * jump_{l-1}

    starting from ``size_0 = 1, jump_0 = 1, start_0 = 0`` (the input pixel grid). For ``L``
    stride-1 layers of kernel ``K`` this gives ``size == 1 + L*(K-1)``.

    Args:
      layers: a sequence of ``(kernel_size, stride, padding, dilation)`` tuples of ints.

    Returns:
      One ``ReceptiveField(size, jump, start)`` per layer.

    Example:
      >>> receptive_field([(3, 1, 1, 1), (3, 1, 1, 1)])
      [ReceptiveField(size=3, jump=1, start=0.0), ReceptiveField(size=5, jump=1, start=0.0)]
    """
    op = "receptive_field"
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        _checks.fail(op, f"layers must be a sequence of (kernel_size, stride, padding, dilation) "
                         f"tuples, got {layers!r}.", TypeError)
    size, jump, start = 1, 1, 0.0
    out = []
    for i, layer in enumerate(layers):
        if (isinstance(layer, (str, bytes)) or not isinstance(layer, Sequence)
                or len(layer) not in (3, 4) or not all(_checks._is_int(v) for v in layer)):
            _checks.fail(op, f"layers[{i}] must be (kernel_size, stride, padding[, dilation]) "
                             f"ints, got {layer!r}.", TypeError)
        k, s, p, *rest = (int(v) for v in layer)
        r = rest[0] if rest else 1
        if k < 1 or s < 1 or r < 1 or p < 0:
            _checks.fail(op, f"layers[{i}] needs kernel_size, stride, dilation >= 1 and "
                             f"padding >= 0, got {layer!r}.")
        k_eff = r * (k - 1) + 1
        start = start + ((k_eff - 1) / 2 - p) * jump
        size = size + (k_eff - 1) * jump
        jump = jump * s
        out.append(ReceptiveField(size, jump, float(start)))
    return out


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
    _checks.check_floating(w, op, "w")
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        _checks.fail(op, f"input_shape must be (*spatial, C_in), got {input_shape!r}.", TypeError)
    d = len(input_shape) - 1
    if not 1 <= d <= 3:
        _checks.fail(op, f"input_shape must be (*spatial, C_in) with 1 to 3 spatial dims, "
                         f"got {input_shape!r}.")
    if w.ndim != d + 2:
        _checks.fail(op, f"w must have rank {d + 2} ([*kernel_size, C_in // groups, C_out]) for "
                         f"input_shape {tuple(input_shape)!r}, got shape {w.shape}.")
    spatial = _checks.ntuple(tuple(input_shape[:-1]), d, op, "input_shape")
    c_in = _checks.ntuple(input_shape[-1], 1, op, "input_shape[-1]")[0]
    k = tuple(w.shape[:d])
    c_out = w.shape[-1]
    if not _checks._is_int(groups) or groups < 1:
        _checks.fail(op, f"groups must be a positive int, got {groups!r}.")
    if c_in % groups or c_out % groups:
        _checks.fail(op, f"groups ({groups}) must divide C_in ({c_in}) and C_out ({c_out}).")
    if w.shape[-2] != c_in // groups:
        _checks.fail(op, f"w.shape[-2] must be C_in // groups = {c_in // groups}, got w.shape "
                         f"{w.shape}.")
    s = _checks.ntuple(stride, d, op, "stride")
    r = _checks.ntuple(dilation, d, op, "dilation")
    pads = _checks.canonical_padding(padding, spatial, k, s, op, dilation=r)
    _checks.check_window_fits(spatial, k, pads, op, dilation=r, name="w (kernel)")
    out = tuple(_checks.output_size(n, kk, ss, lo, hi, rr)
                for n, kk, ss, (lo, hi), rr in zip(spatial, k, s, pads, r))

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
    m = jnp.zeros((_checks.prod(out) * c_out, _checks.prod(spatial) * c_in), w.dtype)
    return m.at[rows.ravel(), cols.ravel()].add(vals.reshape(-1))
