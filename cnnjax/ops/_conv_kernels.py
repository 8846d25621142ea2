"""The concrete convolution implementations: name -> function, one line each.

Every entry computes the same cross-correlation from canonical arguments,
``fn(x, w, geometry, precision) -> y`` with ``x [N, *spatial, C_in]`` (already padded for a
non-zero ``padding_mode``) and ``w [*k, C_in // groups, C_out]``. ``_conv_impls`` adds
``'auto'`` (which chooses among these) to make the registry ``conv`` looks up; the tuner
times these.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from cnnjax.ops._conv_fft import conv_fft
from cnnjax.ops._conv_geometry import ConvGeometry
from cnnjax.ops._conv_im2col import conv_im2col, conv_xla_im2col_grad
from cnnjax.ops._conv_xla import conv_xla

ConvFn = Callable[[jax.Array, jax.Array, ConvGeometry, Any], jax.Array]


class ConvImpl(NamedTuple):
    """One implementation: the function and what it is, in one line."""

    fn: ConvFn
    description: str


KERNELS: dict[str, ConvImpl] = {
    "xla": ConvImpl(conv_xla, "lax.conv_general_dilated: XLA's convolution (cuDNN, oneDNN, "
                              "TPU emitters)"),
    "im2col": ConvImpl(conv_im2col, "patches + one matmul per group, matmul backward "
                                    "(custom_vjp: reverse-mode autodiff only)"),
    "fft": ConvImpl(conv_fft, "the convolution theorem: real FFTs and a per-frequency channel "
                              "product"),
    "xla_im2col_grad": ConvImpl(conv_xla_im2col_grad, "XLA's forward, im2col's matmul backward "
                                                      "(reverse-mode autodiff only)"),
}
