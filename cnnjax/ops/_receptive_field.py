"""Receptive fields of a stack of convolutions and poolings, one spatial axis at a time."""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from cnnjax.ops import checks


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
        checks.fail(op, f"layers must be a sequence of (kernel_size, stride, padding, dilation) "
                         f"tuples, got {layers!r}.", TypeError)
    size, jump, start = 1, 1, 0.0
    out = []
    for i, layer in enumerate(layers):
        if (isinstance(layer, (str, bytes)) or not isinstance(layer, Sequence)
                or len(layer) not in (3, 4) or not all(checks.is_int(v) for v in layer)):
            checks.fail(op, f"layers[{i}] must be (kernel_size, stride, padding[, dilation]) "
                             f"ints, got {layer!r}.", TypeError)
        k, s, p, *rest = (int(v) for v in layer)
        r = rest[0] if rest else 1
        if k < 1 or s < 1 or r < 1 or p < 0:
            checks.fail(op, f"layers[{i}] needs kernel_size, stride, dilation >= 1 and "
                             f"padding >= 0, got {layer!r}.")
        k_eff = r * (k - 1) + 1
        start = start + ((k_eff - 1) / 2 - p) * jump
        size = size + (k_eff - 1) * jump
        jump = jump * s
        out.append(ReceptiveField(size, jump, float(start)))
    return out
