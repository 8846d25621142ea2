"""The ``impl='xla'`` convolution: ``lax.conv_general_dilated`` (cuDNN, oneDNN, XLA's own)."""
from __future__ import annotations

import jax
from jax import lax

from cnnjax.ops._conv_geometry import ConvGeometry


def _dimension_numbers(d: int) -> lax.ConvDimensionNumbers:
    # Channels-last input/output [N, *S, C] and kernel [*k, I, O], expressed as index specs.
    spatial = tuple(range(1, d + 1))
    return lax.ConvDimensionNumbers(
        lhs_spec=(0, d + 1, *spatial), rhs_spec=(d + 1, d, *range(d)),
        out_spec=(0, d + 1, *spatial))


def conv_xla(x: jax.Array, w: jax.Array, geom: ConvGeometry, precision=None) -> jax.Array:
    """``lax.conv_general_dilated`` with canonical (validated) arguments."""
    d = x.ndim - 2
    return lax.conv_general_dilated(
        x, w, window_strides=geom.stride, padding=geom.padding, rhs_dilation=geom.dilation,
        dimension_numbers=_dimension_numbers(d), feature_group_count=geom.groups,
        precision=precision)
