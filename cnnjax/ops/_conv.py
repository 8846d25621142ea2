"""Convolution front-end: validation, padding modes, impl dispatch, the XLA impl, transpose.

Seeds (lecture 3): a convolutional layer computes the cross-correlation

    out[n, o, co] = b[co] + sum_k sum_ci w[k, ci, co] * xpad[n, o*stride + k*dilation, g*C_in/G + ci]

over ``d`` spatial dims, channels-last, kernel ``[*k, C_in // groups, C_out]``. The same
function has three implementations that agree to round-off:

* ``'xla'``: ``lax.conv_general_dilated`` (cuDNN / oneDNN / XLA's own kernels);
* ``'im2col'``: hand-written patch extraction plus one matmul per group (``_im2col.py``);
* ``'fft'``: the convolution theorem (``_fft_conv.py``).

``padding_mode`` other than ``'zeros'`` follows PyTorch: the input is padded explicitly
(``reflect`` / ``replicate`` / ``circular``) and the convolution then runs ``VALID``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from cnnjax.ops import _checks

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
IMPLS = ("auto", "xla", "im2col", "fft")
_JNP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class ConvGeometry(NamedTuple):
    """Canonical static hyperparameters of one convolution (all ``d``-tuples)."""

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    groups: int


def _check_groups(op: str, groups: Any, c_in: int, c_out: int) -> int:
    if not _checks._is_int(groups):
        _checks.fail(op, f"groups must be a positive int, got {groups!r}.", TypeError)
    if groups < 1:
        _checks.fail(op, f"groups must be a positive int, got {groups!r}.")
    if c_in % groups:
        _checks.fail(op, f"groups ({groups}) must divide the input channels C_in ({c_in}).")
    if c_out % groups:
        _checks.fail(op, f"groups ({groups}) must divide the output channels C_out ({c_out}).")
    return int(groups)


def _common_dtype(*arrays: jax.Array):
    """Explicit promotion: strict-promotion users must still be able to mix f32/f64 inputs."""
    dtype = arrays[0].dtype
    for a in arrays[1:]:
        dtype = jnp.promote_types(dtype, a.dtype)
    return dtype


def _validate(op: str, x, w, b, stride, padding, dilation, groups):
    """Shared checks of ``conv``: returns ``(x, w, b, geometry)`` with arrays cast to one dtype."""
    x = jnp.asarray(x) if not isinstance(x, jax.Array) else x
    d = _checks.spatial_rank(x, op)
    w = jnp.asarray(w)
    _checks.check_floating(x, op, "x")
    _checks.check_floating(w, op, "w")
    if w.ndim != d + 2:
        _checks.fail(op, f"w must have rank {d + 2} ([*kernel_size, C_in // groups, C_out]) for a "
                         f"rank-{x.ndim} x, got w.shape {w.shape}.")
    c_in, c_out = x.shape[-1], w.shape[-1]
    groups = _check_groups(op, groups, c_in, c_out)
    if w.shape[-2] != c_in // groups:
        _checks.fail(op, f"w.shape[-2] must equal C_in // groups = {c_in} // {groups} = "
                         f"{c_in // groups}, got w.shape {w.shape}.")
    k = tuple(int(v) for v in w.shape[:d])
    if any(v < 1 for v in k):
        _checks.fail(op, f"w must have a non-empty kernel, got w.shape {w.shape}.")
    s = _checks.ntuple(stride, d, op, "stride")
    r = _checks.ntuple(dilation, d, op, "dilation")
    spatial = tuple(x.shape[1:-1])
    pads = _checks.canonical_padding(padding, spatial, k, s, op, dilation=r)
    arrays = [x, w]
    if b is not None:
        b = jnp.asarray(b)
        _checks.check_floating(b, op, "b")
        if b.shape != (c_out,):
            _checks.fail(op, f"b must have shape (C_out,) = ({c_out},), got {b.shape}.")
        arrays.append(b)
    dtype = _common_dtype(*arrays)
    x, w = x.astype(dtype), w.astype(dtype)
    b = None if b is None else b.astype(dtype)
    return x, w, b, ConvGeometry(k, s, pads, r, groups)


def _pad_mode(op: str, x: jax.Array, pads, padding_mode: str) -> jax.Array:
    """Explicit non-zero padding (PyTorch ``padding_mode``)."""
    spatial = x.shape[1:-1]
    for i, (n, (lo, hi)) in enumerate(zip(spatial, pads)):
        if padding_mode == "reflect" and max(lo, hi) >= n:
            _checks.fail(op, f"padding_mode='reflect' needs padding < input size in every dim, "
                             f"got padding ({lo}, {hi}) for size {n} in spatial dim {i}.")
        if padding_mode == "circular" and max(lo, hi) > n:
            _checks.fail(op, f"padding_mode='circular' needs padding <= input size in every dim, "
                             f"got padding ({lo}, {hi}) for size {n} in spatial dim {i}.")
    return jnp.pad(x, ((0, 0), *pads, (0, 0)), mode=_JNP_PAD_MODE[padding_mode])


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


def _impl_fn(name: str):
    # Imported lazily: the impl modules import ConvGeometry from here.
    if name == "xla":
        return conv_xla
    if name in ("im2col", "xla_im2col_grad"):
        from cnnjax.ops import _im2col
        return _im2col.conv_im2col if name == "im2col" else _im2col.conv_xla_im2col_grad
    from cnnjax.ops._fft_conv import conv_fft
    return conv_fft


def _choose_impl(x_shape: Sequence[int], w_shape: Sequence[int], geom: ConvGeometry,
                 backend: str | None = None) -> str:
    """The ``impl='auto'`` rule: which implementation to run for a backend and shapes.

    * GPU/TPU: ``'xla'`` (cuDNN and the TPU convolution emitters beat any hand-written path).
    * CPU, ``k >= 5`` in every dim, stride, dilation and groups 1: ``'fft'`` when the direct
      sum does many more multiply-adds than the frequency-domain channel product, i.e.
      ``r = prod(k) * prod(out) / (4 * F)`` is large (``F``: real-FFT frequencies of the padded
      input) and the transforms do not dominate: ``r >= 30`` (large kernels), or ``r >= 5`` with
      ``10 <= C_in C_out / (C_in + C_out) <= 32`` (medium kernels, neither thin layers, where
      the transforms dominate, nor wide ones, where the per-frequency matmuls do). Measured
      forward+backward (``cnnjax bench``): 11x11 / 15x15 on 64x64, 16 -> 16, batch 16: 1.7x /
      2.8x faster than ``'xla'``; LeNet5 conv2 (14x14, 20 -> 50, 5x5, batch 128) 58.6 ms vs
      80.2 im2col / 100.7 xla; 28x28 16 -> 32 5x5 124 vs 180 / 560; 7x7 on 32x32, 32 -> 32,
      batch 128: 298 vs 1207 / 2881. Outside it loses: 7x7 on 64x64 16 -> 16 (r = 20) 93.5 vs
      68.6 xla; 5x5 on 64x64 16 -> 16 97 vs 32 xla; AlexNet conv2 (27x27, 96 -> 256) 1041 vs
      586 im2col. Unit-stride kernels ``>= 7`` that miss the FFT rule go to ``'xla'``: im2col's
      patches grow with ``k^2`` (7x7 above: 292 ms im2col).
    * CPU, depthwise (``C_in / groups == 1``, ``groups > 1``): ``'xla'``; the per-group
      matmuls are too thin to pay for the patch copy.
    * CPU, one or two input channels per group (first layers on grey images):
      ``'xla_im2col_grad'``: XLA's forward, which beats the patch copy of so thin an input,
      and the im2col matmul backward (LeNet5 conv1 forward+backward 27.7 GFLOP/s vs 25.0
      im2col / 13.3 xla; MnistNet conv1 18.1 vs 14.4 / 5.8; ``cnnjax bench``, batch 128).
    * CPU, otherwise: ``'im2col'``. XLA:CPU's direct convolution runs at ~10-50 GFLOP/s on
      these layers (its backward convolutions are the slow part) while a matmul reaches
      ~150, so patches + one GEMM per group win forward+backward: MnistNet conv2 4.7x,
      VGG-11 conv1/conv2 3.0x/2.0x, ResNet-20 stem 3.7x, stride-2 and 1x1 layers 1.2-5x over
      ``'xla'`` at batch 128. Known exception: thin layers at small batch, where XLA's
      convolution is fast (16x64x64x16, 3x3, batch 16: 15.8 ms ``'xla'`` vs 38.8 ms).

    Args:
      x_shape: input shape ``[N, *spatial, C_in]`` (after explicit mode padding).
      w_shape: kernel shape ``[*k, C_in // groups, C_out]``.
      geom: the canonical geometry.
      backend: ``jax.default_backend()`` when ``None``.

    Returns:
      ``'xla'``, ``'im2col'``, ``'fft'`` or ``'xla_im2col_grad'``.
    """
    backend = backend or jax.default_backend()
    if backend != "cpu":
        return "xla"
    d = len(x_shape) - 2
    spatial = x_shape[1:-1]
    unit = all(s == 1 for s in geom.stride) and all(r == 1 for r in geom.dilation)
    cig = w_shape[d]
    if unit and geom.groups == 1 and all(k >= 5 for k in geom.kernel_size):
        from cnnjax.ops._fft_conv import direct_over_product  # lazy: it imports this module
        padded = [n + lo + hi for n, (lo, hi) in zip(spatial, geom.padding)]
        ratio = direct_over_product(padded, geom.kernel_size)
        c_out = w_shape[-1]
        harmonic = cig * c_out / (cig + c_out)
        if ratio >= 30 or (ratio >= 5 and 10 <= harmonic <= 32):
            return "fft"
        if all(k >= 7 for k in geom.kernel_size):
            return "xla"
    if geom.groups > 1 and cig == 1:
        return "xla"
    if cig <= 2:
        return "xla_im2col_grad"
    return "im2col"


def conv(
    x: jax.typing.ArrayLike,
    w: jax.typing.ArrayLike,
    b: jax.typing.ArrayLike | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    impl: str = "auto",
    precision: Any = None,
) -> jax.Array:
    """N-d cross-correlation (a CNN convolution layer), channels-last.

    ``out[n, o, co] = b[co] + sum_{k, ci} w[k, ci, co] * xpad[n, o*stride + k*dilation,
    g*C_in/groups + ci]`` where ``g = co // (C_out/groups)`` (lecture 3; ``torch.nn.Conv*d``).
    Output size per spatial dim: ``floor((n + lo + hi - dilation*(k-1) - 1) / stride) + 1``.

    Args:
      x: input ``[N, *spatial, C_in]`` with 1, 2 or 3 spatial dims.
      w: kernel ``[*kernel_size, C_in // groups, C_out]`` (HWIO in 2-D).
      b: optional bias ``[C_out]``.
      stride: an int or one int per spatial dim (>= 1).
      padding: ``'VALID'``, ``'SAME'`` (XLA: output ``ceil(n / stride)``, odd extra on the
        high side), an int, ``d`` ints (symmetric) or ``d`` ``(lo, hi)`` pairs.
      dilation: kernel dilation, an int or one per dim (>= 1).
      groups: feature groups; ``groups == C_in`` is a depthwise convolution.
      padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'`` (PyTorch
        meaning: pad explicitly by the ``padding`` amounts, then convolve ``VALID``).
      impl: ``'xla'``, ``'im2col'``, ``'fft'`` or ``'auto'`` (see ``_choose_impl``). The
        im2col backward pass is a ``jax.custom_vjp`` (matmuls instead of XLA's backward
        convolutions), so ``'im2col'`` -- and ``'auto'`` on CPU when it picks it -- supports
        reverse mode (``grad``/``vjp``, also nested) but not ``jvp``/``jacfwd``; use
        ``'xla'`` or ``'fft'`` for forward-mode autodiff.
      precision: ``lax.Precision`` for the XLA convolution / im2col matmul (unused by
        ``'fft'``).

    Returns:
      ``[N, *out_spatial, C_out]`` in the promoted dtype of ``x``, ``w`` (and ``b``).

    Example:
      >>> x = jnp.ones((2, 28, 28, 1)); w = jnp.ones((5, 5, 1, 20))
      >>> conv(x, w, padding=2).shape
      (2, 28, 28, 20)
    """
    op = "conv"
    x, w, b, geom = _validate(op, x, w, b, stride, padding, dilation, groups)
    _checks.check_choice(padding_mode, PADDING_MODES, op, "padding_mode")
    _checks.check_choice(impl, IMPLS, op, "impl")
    if padding_mode != "zeros":
        x = _pad_mode(op, x, geom.padding, padding_mode)
        geom = geom._replace(padding=((0, 0),) * len(geom.stride))
    _checks.check_window_fits(x.shape[1:-1], geom.kernel_size, geom.padding, op,
                              dilation=geom.dilation, name="w (kernel)")
    if impl == "auto":
        impl = _choose_impl(x.shape, w.shape, geom)
    y = _impl_fn(impl)(x, w, geom, precision)
    if b is not None:
        y = y + b.reshape((1,) * (y.ndim - 1) + (-1,))
    return y


def conv_transpose(
    x: jax.typing.ArrayLike,
    w: jax.typing.ArrayLike,
    b: jax.typing.ArrayLike | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    impl: str = "auto",
) -> jax.Array:
    """Fractionally-strided ("transposed") convolution, as ``torch.nn.functional.conv_transposeNd``.

    It is the adjoint of ``conv``: ``conv_transpose(y, w) == vjp(conv(., w'), y)`` with
    ``w' = swapaxes(w, -1, -2)`` (lecture 3: transpose the kernel's Toeplitz matrix), i.e.
    every input pixel scatters ``x[n, i] * w[k]`` to output ``i*stride - lo + k*dilation``.
    Output size per spatial dim::

        (n - 1)*stride - lo - hi + dilation*(k - 1) + output_padding + 1

    (``lo = hi = padding`` for an int padding, as in PyTorch).

    Args:
      x: input ``[N, *spatial, C_in]``.
      w: kernel ``[*kernel_size, C_in, C_out // groups]`` (PyTorch's
        ``(C_in, C_out/groups, *k)`` moved channels-last).
      b: optional bias ``[C_out]``.
      stride, dilation: ints or one per spatial dim (>= 1).
      padding: an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs cropped from the full output
        (``'VALID'`` means 0).
      output_padding: extra size on the high side of each dim, ``< max(stride, dilation)``.
      groups: feature groups (``groups`` must divide ``C_in`` and ``C_out``).
      impl: which ``conv`` implementation is transposed (``'auto'``, ``'xla'``,
        ``'im2col'``, ``'fft'``).

    Returns:
      ``[N, *out_spatial, C_out]``.

    Example:
      >>> x = jnp.ones((1, 4, 4, 8)); w = jnp.ones((3, 3, 8, 4))
      >>> conv_transpose(x, w, stride=2, padding=1, output_padding=1).shape
      (1, 8, 8, 4)
    """
    op = "conv_transpose"
    x = jnp.asarray(x) if not isinstance(x, jax.Array) else x
    d = _checks.spatial_rank(x, op)
    w = jnp.asarray(w)
    _checks.check_floating(x, op, "x")
    _checks.check_floating(w, op, "w")
    if w.ndim != d + 2:
        _checks.fail(op, f"w must have rank {d + 2} ([*kernel_size, C_in, C_out // groups]) for "
                         f"a rank-{x.ndim} x, got w.shape {w.shape}.")
    c_in = x.shape[-1]
    if w.shape[-2] != c_in:
        _checks.fail(op, f"w.shape[-2] must equal C_in = {c_in}, got w.shape {w.shape}.")
    if not _checks._is_int(groups) or groups < 1:
        _checks.fail(op, f"groups must be a positive int, got {groups!r}.")
    c_out = w.shape[-1] * groups
    groups = _check_groups(op, groups, c_in, c_out)
    _checks.check_choice(impl, IMPLS, op, "impl")
    k = tuple(int(v) for v in w.shape[:d])
    s = _checks.ntuple(stride, d, op, "stride")
    r = _checks.ntuple(dilation, d, op, "dilation")
    if isinstance(padding, str):
        if padding.upper() != "VALID":
            _checks.fail(op, f"padding must be an int, {d} ints, {d} (lo, hi) pairs or 'VALID' "
                             f"(PyTorch semantics), got {padding!r}.")
        padding = 0
    pads = _checks.canonical_padding(padding, x.shape[1:-1], k, s, op, dilation=r)
    op_pad = _checks.ntuple(output_padding, d, op, "output_padding", min_value=0)
    for i, (o, ss, rr) in enumerate(zip(op_pad, s, r)):
        if o >= max(ss, rr):
            _checks.fail(op, f"output_padding must be smaller than max(stride, dilation) in every "
                             f"dim, got {output_padding!r} with stride {s} and dilation {r} "
                             f"(dim {i}).")
    out = tuple((n - 1) * ss - lo - hi + rr * (kk - 1) + o + 1
                for n, ss, (lo, hi), rr, kk, o in zip(x.shape[1:-1], s, pads, r, k, op_pad))
    if any(v < 1 for v in out):
        _checks.fail(op, f"padding {padding!r} crops the output to a non-positive size {out}.")
    arrays = [x, w]
    if b is not None:
        b = jnp.asarray(b)
        _checks.check_floating(b, op, "b")
        if b.shape != (c_out,):
            _checks.fail(op, f"b must have shape (C_out,) = ({c_out},), got {b.shape}.")
        arrays.append(b)
    dtype = _common_dtype(*arrays)
    x, w = x.astype(dtype), w.astype(dtype)
    # The matching forward conv maps C_out -> C_in channels with kernel [*k, C_out/G, C_in].
    w_fwd = jnp.swapaxes(w, -1, -2)
    geom = ConvGeometry(k, s, pads, r, groups)
    fwd_out = tuple(_checks.output_size(n, kk, ss, lo, hi, rr)
                    for n, kk, ss, (lo, hi), rr in zip(out, k, s, pads, r))
    # With output_padding >= stride (possible when dilation > stride) the forward conv of
    # the output shape has extra high-side outputs; their cotangent is zero.
    extra = tuple(m - n for m, n in zip(fwd_out, x.shape[1:-1]))
    if any(extra):
        x = jnp.pad(x, ((0, 0), *((0, e) for e in extra), (0, 0)))
    if impl == "auto":
        impl = _choose_impl((x.shape[0], *out, c_out), w_fwd.shape, geom)
    fn = _impl_fn(impl)
    primal = jnp.zeros((x.shape[0], *out, c_out), dtype)
    _, vjp = jax.vjp(lambda z: fn(z, w_fwd, geom, None), primal)
    (y,) = vjp(x)
    if b is not None:
        y = y + b.astype(dtype).reshape((1,) * (y.ndim - 1) + (-1,))
    return y
