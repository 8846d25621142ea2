"""Geometry of a sliding window: canonical hyperparameters and output sizes.

One place for what every convolution (and, through ``output_size``, every pooling) needs
before it touches an array: user hyperparameters turned into a ``ConvGeometry`` of
``d``-tuples, and the output size of a strided, padded, dilated window (lecture 3)::

    out = floor((n + lo + hi - dilation*(k-1) - 1) / stride) + 1
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from cnnjax.ops import checks


def output_size(n: int, k: int, s: int, lo: int, hi: int, dilation: int = 1,
                ceil_mode: bool = False) -> int:
    """``floor((n + lo + hi - dilation*(k-1) - 1)/s) + 1`` (PyTorch's ceil rule if ``ceil_mode``).

    With ``ceil_mode`` the last window must start inside the input or the left padding
    (PyTorch ``pooling_output_shape``); the result may be ``<= 0`` for windows that do not fit,
    which callers reject.
    """
    k_eff = dilation * (k - 1) + 1
    num = n + lo + hi - k_eff
    if ceil_mode:
        out = -(-num // s) + 1
        if (out - 1) * s >= n + lo:
            out -= 1
        return out
    return num // s + 1 if num >= 0 else 0


def ceil_extra_padding(n: int, k: int, s: int, lo: int, hi: int, out: int,
                       dilation: int = 1) -> int:
    """Extra high-side padding so that a VALID window op over the padded input gives ``out``."""
    k_eff = dilation * (k - 1) + 1
    need = (out - 1) * s + k_eff
    return max(need - (n + lo + hi), 0)


class ConvGeometry(NamedTuple):
    """Canonical static hyperparameters of one convolution (all ``d``-tuples)."""

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    groups: int

    def output_shape(self, spatial: Sequence[int], ceil_mode: bool = False) -> tuple[int, ...]:
        """Output size per spatial dim of this window on an input of size ``spatial``."""
        return tuple(output_size(n, k, s, lo, hi, r, ceil_mode) for n, k, s, (lo, hi), r in
                     zip(spatial, self.kernel_size, self.stride, self.padding, self.dilation))

    def transposed_output_shape(self, spatial: Sequence[int],
                                output_padding: Sequence[int]) -> tuple[int, ...]:
        """Output size per dim of the transposed convolution (this one's adjoint) on ``spatial``:
        ``(n - 1)*stride - lo - hi + dilation*(k - 1) + output_padding + 1``."""
        return tuple((n - 1) * s - lo - hi + r * (k - 1) + o + 1
                     for n, k, s, (lo, hi), r, o in zip(spatial, self.kernel_size, self.stride,
                                                        self.padding, self.dilation,
                                                        output_padding))

    def unpadded(self) -> ConvGeometry:
        """The same window with no padding (after padding the input explicitly)."""
        return self._replace(padding=((0, 0),) * len(self.stride))


def shape_argument(op: str, name: str, value: Any, layout: str, non_spatial: int, *,
                   min_value: int = 1) -> tuple[int, ...]:
    """A shape given by the user: ints laid out as ``layout``, with 1 to 3 spatial dims
    besides ``non_spatial`` others (batch, channels)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        checks.fail(op, f"{name} must be {layout}, got {value!r}.", TypeError)
    if not 1 <= len(value) - non_spatial <= 3:
        checks.fail(op, f"{name} must be {layout} with 1 to 3 spatial dims, got {value!r}.")
    return checks.ntuple(tuple(value), len(value), op, name, min_value=min_value)


def window_geometry(op: str, spatial: Sequence[int], kernel_size: Any, stride: Any,
                    padding: Any, dilation: Any, groups: int = 1, *,
                    kernel_name: str = "kernel_size", check_fits: bool = True) -> ConvGeometry:
    """Canonicalises window hyperparameters given as ints, sequences or padding strings.

    With ``check_fits``, also raises unless the (dilated) window fits the padded input.
    """
    d = len(spatial)
    k = checks.ntuple(kernel_size, d, op, kernel_name)
    s = checks.ntuple(stride, d, op, "stride")
    r = checks.ntuple(dilation, d, op, "dilation")
    pads = checks.canonical_padding(padding, spatial, k, s, op, dilation=r)
    if check_fits:
        checks.check_window_fits(spatial, k, pads, op, dilation=r, name=kernel_name)
    return ConvGeometry(k, s, pads, r, groups)


def check_groups(op: str, groups: Any, c_in: int, c_out: int) -> int:
    """Returns ``groups`` as an int after checking it is positive and divides both channels."""
    if not checks.is_int(groups):
        checks.fail(op, f"groups must be a positive int, got {groups!r}.", TypeError)
    if groups < 1:
        checks.fail(op, f"groups must be a positive int, got {groups!r}.")
    if c_in % groups:
        checks.fail(op, f"groups ({groups}) must divide the input channels C_in ({c_in}).")
    if c_out % groups:
        checks.fail(op, f"groups ({groups}) must divide the output channels C_out ({c_out}).")
    return int(groups)


def conv_geometry(op: str, x_shape: Sequence[int], w_shape: Sequence[int], stride: Any,
                  padding: Any, dilation: Any, groups: Any) -> ConvGeometry:
    """Checks a conv kernel's shape against the input's and canonicalises the hyperparameters.

    ``x_shape`` is ``[N, *spatial, C_in]`` of an already rank-checked input and ``w_shape``
    the kernel ``[*kernel_size, C_in // groups, C_out]``. Whether the kernel fits the padded
    input is checked by the caller, after any explicit ``padding_mode`` padding.
    """
    d = len(x_shape) - 2
    w_shape = tuple(w_shape)
    if len(w_shape) != d + 2:
        checks.fail(op, f"w must have rank {d + 2} ([*kernel_size, C_in // groups, C_out]) for a "
                         f"rank-{d + 2} x, got w.shape {w_shape}.")
    c_in, c_out = x_shape[-1], w_shape[-1]
    groups = check_groups(op, groups, c_in, c_out)
    if w_shape[-2] != c_in // groups:
        checks.fail(op, f"w.shape[-2] must equal C_in // groups = {c_in} // {groups} = "
                         f"{c_in // groups}, got w.shape {w_shape}.")
    k = tuple(int(v) for v in w_shape[:d])
    if any(v < 1 for v in k):
        checks.fail(op, f"w must have a non-empty kernel, got w.shape {w_shape}.")
    return window_geometry(op, tuple(x_shape[1:-1]), k, stride, padding, dilation, groups,
                           check_fits=False)


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
        checks.fail(op, f"spatial_shape must be a sequence of ints, got {spatial_shape!r}.",
                     TypeError)
    d = len(spatial_shape)
    if d < 1:
        checks.fail(op, f"spatial_shape must have at least one dim, got {spatial_shape!r}.")
    spatial = checks.ntuple(tuple(spatial_shape), d, op, "spatial_shape", min_value=1)
    geom = window_geometry(op, spatial, kernel_size, stride, padding, dilation)
    return geom.output_shape(spatial, ceil_mode)
