"""Which convolution implementation ``impl='auto'`` runs: the dispatch policy.

``choose_impl`` is the one question ``impl='auto'`` asks (``explain_choice`` also says why).
On CPU it is answered by measurement (``_autotune.py``: every applicable impl timed once per
configuration, the fastest cached on disk); ``StaticRule``, a fixed rule over the shapes
with named thresholds, answers off CPU, with ``CNNJAX_AUTOTUNE=0``, in multi-process runs
and when measuring fails.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import jax

from cnnjax.ops import _autotune
from cnnjax.ops._autotune import ConvChoice
from cnnjax.ops._conv_fft import direct_over_product
from cnnjax.ops._conv_geometry import ConvGeometry


class ConvPolicy(Protocol):
    """Anything that names the implementation to run for a convolution's shapes."""

    def choose(self, x_shape: Sequence[int], w_shape: Sequence[int], geometry: ConvGeometry,
               backend: str) -> str:
        """Returns a name of the impl registry other than ``'auto'``."""


@dataclasses.dataclass(frozen=True)
class StaticRule:
    """The static ``impl='auto'`` rule: a fixed choice from the backend and the shapes.

    It answers when nothing is measured (see ``explain_choice``).

    In this order:

    * Not CPU: ``'xla'`` (cuDNN and the TPU convolution emitters beat any hand-written path).
    * Unit stride and dilation, ``groups == 1``, every kernel dim ``>= fft_min_kernel``, and
      the direct sum does many more multiply-adds than the frequency-domain channel product
      (``r = direct_over_product(padded input, k)``): ``'fft'`` when ``r >= fft_ratio_large``,
      or when ``r >= fft_ratio_medium`` and the harmonic channel mean
      ``C_in C_out / (C_in + C_out)`` lies in ``fft_channel_band`` (below it the transforms
      dominate, above it the per-frequency matmuls do).
    * A layer eligible for the FFT that misses it, with every kernel dim ``>= large_kernel``:
      ``'xla'`` (im2col's patches grow with ``k^d``).
    * Depthwise (``groups > 1``, one input channel per group): ``'xla'``; the per-group
      matmuls are too thin to pay for the patch copy.
    * At most ``thin_input_channels`` input channels per group (first layers on grey images):
      ``'xla_im2col_grad'``, XLA's forward (which beats the patch copy of so thin an input)
      and the im2col matmul backward.
    * Otherwise ``'im2col'``: XLA:CPU's backward convolutions run far below matmul speed.

    The measurements behind every threshold, and the command that repeats them, are in
    ``docs/benchmark.md`` ("Why `auto` picks what it picks").

    Attributes:
      fft_min_kernel: smallest kernel size (every dim) considered for the FFT.
      fft_ratio_large: ``r`` from which the FFT wins whatever the channels.
      fft_ratio_medium: ``r`` from which the FFT wins inside ``fft_channel_band``.
      fft_channel_band: ``(low, high)`` bounds, inclusive, of ``C_in C_out / (C_in + C_out)``.
      large_kernel: kernel size (every dim) from which a non-FFT unit-stride layer goes to XLA.
      thin_input_channels: input channels per group up to which the hybrid is used.
    """

    fft_min_kernel: int = 5
    fft_ratio_large: float = 30
    fft_ratio_medium: float = 5
    fft_channel_band: tuple[float, float] = (10, 32)
    large_kernel: int = 7
    thin_input_channels: int = 2

    def choose(self, x_shape: Sequence[int], w_shape: Sequence[int], geometry: ConvGeometry,
               backend: str) -> str:
        """The impl for an input ``[N, *spatial, C_in]`` (after explicit mode padding), a
        kernel ``[*k, C_in // groups, C_out]`` and the canonical geometry, on ``backend``."""
        if backend != "cpu":
            return "xla"
        d = len(x_shape) - 2
        cig = w_shape[d]
        unit = all(s == 1 for s in geometry.stride) and all(r == 1 for r in geometry.dilation)
        if unit and geometry.groups == 1 and min(geometry.kernel_size) >= self.fft_min_kernel:
            padded = [n + lo + hi for n, (lo, hi) in zip(x_shape[1:-1], geometry.padding)]
            ratio = direct_over_product(padded, geometry.kernel_size)
            c_out = w_shape[-1]
            harmonic = cig * c_out / (cig + c_out)
            low, high = self.fft_channel_band
            if ratio >= self.fft_ratio_large or (
                    ratio >= self.fft_ratio_medium and low <= harmonic <= high):
                return "fft"
            if min(geometry.kernel_size) >= self.large_kernel:
                return "xla"
        if geometry.groups > 1 and cig == 1:
            return "xla"
        if cig <= self.thin_input_channels:
            return "xla_im2col_grad"
        return "im2col"


STATIC_RULE: ConvPolicy = StaticRule()


def explain_choice(x_shape: Sequence[int], w_shape: Sequence[int], geometry: ConvGeometry,
                   backend: str | None = None, *, dtype: Any = "float32",
                   precision: Any = None) -> ConvChoice:
    """The impl ``impl='auto'`` runs for this configuration, and why (an ``_autotune.ConvChoice``).

    Measured (``_autotune.tuned_choice``) on the default CPU backend unless
    ``_autotune.disabled_reason`` names a reason not to; otherwise ``StaticRule``.
    """
    backend = backend or jax.default_backend()
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    static = STATIC_RULE.choose(x_shape, w_shape, geometry, backend)
    reason = _autotune.disabled_reason(backend)
    if reason is not None:
        choice = ConvChoice(static, "static", reason, {}, None)
    else:
        choice = _autotune.tuned_choice(x_shape, w_shape, dtype, geometry, precision, static)
    _autotune.notify(x_shape, w_shape, geometry, dtype, choice)
    return choice


def choose_impl(x_shape: Sequence[int], w_shape: Sequence[int], geometry: ConvGeometry,
                backend: str | None = None, *, dtype: Any = "float32",
                precision: Any = None) -> str:
    """The impl ``impl='auto'`` runs (``jax.default_backend()`` if ``backend`` is ``None``)."""
    return explain_choice(x_shape, w_shape, geometry, backend, dtype=dtype,
                          precision=precision).impl
