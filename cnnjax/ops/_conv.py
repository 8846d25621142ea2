"""Convolution front end: ``conv``, ``conv_transpose``, ``conv_impl`` and ``conv_choice``.

Lecture 3: a convolutional layer computes the cross-correlation

    out[n, o, co] = b[co]
                    + sum_k sum_ci w[k, ci, co] * xpad[n, o*stride + k*dilation, g*C_in/G + ci]

over ``d`` spatial dims, channels-last, kernel ``[*k, C_in // groups, C_out]``. This module
validates the arguments (their geometry: ``_conv_geometry.py``), pads explicitly for a
``padding_mode`` other than ``'zeros'`` (PyTorch: pad, then convolve ``VALID``) and runs the
implementation named by ``impl`` from the registry (``_conv_impls.py``): ``'xla'``
(``_conv_xla.py``), ``'im2col'`` and ``'xla_im2col_grad'`` (``_conv_im2col.py``), ``'fft'``
(``_conv_fft.py``), or ``'auto'``, which asks the dispatch policy (``_conv_policy.py``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from cnnjax.ops import checks
from cnnjax.ops._conv_geometry import (
    ConvGeometry,
    check_groups,
    conv_geometry,
    shape_argument,
    window_geometry,
)
from cnnjax.ops._conv_impls import conv_impl_fn
from cnnjax.ops._autotune import ConvChoice
from cnnjax.ops._conv_policy import explain_choice

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_JNP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _common_dtype(*arrays: jax.Array):
    """Explicit promotion: strict-promotion users must still be able to mix f32/f64 inputs."""
    dtype = arrays[0].dtype
    for a in arrays[1:]:
        dtype = jnp.promote_types(dtype, a.dtype)
    return dtype


def _arrays(op: str, x: Any, w: Any) -> tuple[jax.Array, jax.Array, int]:
    """``(x, w, d)``: both as floating arrays, ``x`` of rank ``d + 2``."""
    x = jnp.asarray(x) if not isinstance(x, jax.Array) else x
    d = checks.spatial_rank(x, op)
    w = jnp.asarray(w)
    checks.check_floating(x, op, "x")
    checks.check_floating(w, op, "w")
    return x, w, d


def _one_dtype(op: str, x: jax.Array, w: jax.Array, b: Any, c_out: int):
    """``(x, w, b)`` cast to their promoted dtype after checking the bias shape ``[C_out]``."""
    arrays = [x, w]
    if b is not None:
        b = jnp.asarray(b)
        checks.check_floating(b, op, "b")
        if b.shape != (c_out,):
            checks.fail(op, f"b must have shape (C_out,) = ({c_out},), got {b.shape}.")
        arrays.append(b)
    dtype = _common_dtype(*arrays)
    return x.astype(dtype), w.astype(dtype), None if b is None else b.astype(dtype)


def _add_bias(y: jax.Array, b: jax.Array | None) -> jax.Array:
    return y if b is None else y + b.reshape((1,) * (y.ndim - 1) + (-1,))


def _explicit_padding(op: str, x_shape: Sequence[int], geom: ConvGeometry,
                      padding_mode: str) -> tuple[tuple[int, ...], ConvGeometry]:
    """Input shape and geometry of the convolution that runs after ``padding_mode`` padding.

    ``'zeros'`` keeps the padding in the geometry; the other modes pad the input explicitly
    (PyTorch ``padding_mode``) and run unpadded. Raises unless the kernel then fits.
    """
    spatial = tuple(x_shape[1:-1])
    if padding_mode != "zeros":
        for i, (n, (lo, hi)) in enumerate(zip(spatial, geom.padding)):
            if padding_mode == "reflect" and max(lo, hi) >= n:
                checks.fail(op, f"padding_mode='reflect' needs padding < input size in every "
                                 f"dim, got padding ({lo}, {hi}) for size {n} in spatial dim {i}.")
            if padding_mode == "circular" and max(lo, hi) > n:
                checks.fail(op, f"padding_mode='circular' needs padding <= input size in every "
                                 f"dim, got padding ({lo}, {hi}) for size {n} in spatial dim {i}.")
        spatial = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, geom.padding))
        geom = geom.unpadded()
    checks.check_window_fits(spatial, geom.kernel_size, geom.padding, op,
                              dilation=geom.dilation, name="w (kernel)")
    return (x_shape[0], *spatial, x_shape[-1]), geom


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
      impl: one of ``CONV_IMPLS``: ``'xla'`` (``lax.conv_general_dilated``), ``'im2col'``
        (patches + one matmul per group), ``'fft'`` (the convolution theorem),
        ``'xla_im2col_grad'`` (XLA's forward, im2col's backward) or ``'auto'``: the impl
        ``conv_impl`` names for the backend and shapes (``'xla'`` off CPU; on CPU the fastest
        impl measured for this configuration when it is first traced, cached on disk: see
        ``conv_choice``).
      precision: ``lax.Precision`` for the XLA convolution / im2col matmul (unused by
        ``'fft'``).

    Returns:
      ``[N, *out_spatial, C_out]`` in the promoted dtype of ``x``, ``w`` (and ``b``).

    Note:
      The im2col backward pass is a ``jax.custom_vjp`` (matmuls instead of XLA's backward
      convolutions), so ``'im2col'`` and ``'xla_im2col_grad'`` -- and ``'auto'`` on CPU when
      it picks them -- support reverse mode (``grad``/``vjp``, also nested) but not
      ``jvp``/``jacfwd``; use ``'xla'`` or ``'fft'`` for forward-mode autodiff.

      With ``'fft'`` (which ``'auto'`` may pick for large kernels on CPU) one non-finite input
      value (inf or NaN) makes the whole output map of its example non-finite -- every
      position of every output channel of its group -- where the direct impls spoil only the
      outputs whose window contains it: the transforms mix all positions.

    Example:
      >>> x = jnp.ones((2, 28, 28, 1)); w = jnp.ones((5, 5, 1, 20))
      >>> conv(x, w, padding=2).shape
      (2, 28, 28, 20)
    """
    op = "conv"
    x, w, _ = _arrays(op, x, w)
    geom = conv_geometry(op, x.shape, w.shape, stride, padding, dilation, groups)
    x, w, b = _one_dtype(op, x, w, b, w.shape[-1])
    checks.check_choice(padding_mode, PADDING_MODES, op, "padding_mode")
    fn = conv_impl_fn(impl, op)
    _, run = _explicit_padding(op, x.shape, geom, padding_mode)
    if padding_mode != "zeros":
        x = jnp.pad(x, ((0, 0), *geom.padding, (0, 0)), mode=_JNP_PAD_MODE[padding_mode])
    return _add_bias(fn(x, w, run, precision), b)


def _explain(op: str, x_shape, w_shape, stride, padding, dilation, groups, padding_mode,
             backend, dtype) -> ConvChoice:
    """The policy's answer for validated arguments, as ``impl='auto'`` would see them."""
    if backend is not None and not isinstance(backend, str):
        checks.fail(op, f"backend must be a platform name such as 'cpu', or None, got "
                         f"{backend!r}.", TypeError)
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:
        checks.fail(op, f"dtype must be a floating dtype such as 'float32', got {dtype!r}.",
                    TypeError)
    if not jnp.issubdtype(dtype, jnp.floating):
        checks.fail(op, f"dtype must be a floating dtype such as 'float32', got {dtype!r}.",
                    TypeError)
    # Zero sizes pass, as they do in conv: only the layouts are checked here.
    x_shape = shape_argument(op, "x_shape", x_shape, "(N, *spatial, C_in)", 2, min_value=0)
    w_shape = shape_argument(op, "w_shape", w_shape, "(*kernel_size, C_in // groups, C_out)", 2,
                             min_value=0)
    geom = conv_geometry(op, x_shape, w_shape, stride, padding, dilation, groups)
    checks.check_choice(padding_mode, PADDING_MODES, op, "padding_mode")
    x_shape, run = _explicit_padding(op, x_shape, geom, padding_mode)
    return explain_choice(x_shape, w_shape, run, backend, dtype=dtype)


def conv_impl(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    backend: str | None = None,
    dtype: Any = "float32",
) -> str:
    """The implementation ``conv(..., impl='auto')`` runs for these shapes and arguments.

    The same validation as ``conv`` (on shapes instead of arrays), then the dispatch policy:
    off CPU ``'xla'``; on CPU the fastest impl measured on this machine for exactly this
    configuration (timed on first use, then read from the cache, see ``conv_choice``), or,
    with ``CNNJAX_AUTOTUNE=0``, a static rule over the kernel size, the channels and an FFT
    cost ratio, documented in ``docs/benchmark.md`` ("Why `auto` picks what it picks").

    Args:
      x_shape: input shape ``(N, *spatial, C_in)`` with 1, 2 or 3 spatial dims.
      w_shape: kernel shape ``(*kernel_size, C_in // groups, C_out)``.
      stride, padding, dilation, groups, padding_mode: as in ``conv``.
      backend: ``'cpu'``, ``'gpu'``, ``'tpu'``, ...; ``jax.default_backend()`` when ``None``.
      dtype: the (promoted) dtype of the convolution.

    Returns:
      A name in ``CONV_IMPLS`` other than ``'auto'``; on that backend
      ``conv(x, w, impl=name, ...)`` computes exactly what ``impl='auto'`` does.

    Example:
      >>> conv_impl((128, 14, 14, 20), (5, 5, 20, 50), padding=2, backend="gpu")
      'xla'
    """
    return _explain("conv_impl", x_shape, w_shape, stride, padding, dilation, groups,
                    padding_mode, backend, dtype).impl


def conv_choice(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    backend: str | None = None,
    dtype: Any = "float32",
) -> ConvChoice:
    """What ``conv(..., impl='auto')`` runs for this configuration, and why.

    On the default CPU backend the first call for a configuration (shapes, dtype, geometry)
    times every applicable impl's forward+backward pass on random data (a second or two) and
    stores the fastest in ``$CNNJAX_CACHE_DIR/autotune-<machine>.json`` (default directory
    ``~/.cache/cnnjax``); later calls and later processes on the same machine, jax and
    cnnjax versions read it. ``CNNJAX_AUTOTUNE=0``, another backend or a multi-process run
    use the static rule instead. ``conv`` asks the same question when it is traced.

    Args:
      x_shape, w_shape, stride, padding, dilation, groups, padding_mode, backend, dtype: as
        in ``conv_impl``.

    Returns:
      ``ConvChoice(impl, source, reason, times_ms, cache_path)``: ``source`` is ``'tuned'``
      (measured by this call), ``'cache'`` (measured earlier) or ``'static'`` (the static
      rule, ``reason`` says why); ``times_ms`` are the forward+backward milliseconds of the
      measured impls.

    Example:
      >>> conv_choice((128, 28, 28, 1), (3, 3, 1, 32), backend="gpu").source
      'static'
    """
    return _explain("conv_choice", x_shape, w_shape, stride, padding, dilation, groups,
                    padding_mode, backend, dtype)


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
      impl: which ``conv`` implementation is transposed (one of ``CONV_IMPLS``; ``'auto'``
        picks it for the matching forward convolution's shapes).

    Returns:
      ``[N, *out_spatial, C_out]``.

    Example:
      >>> x = jnp.ones((1, 4, 4, 8)); w = jnp.ones((3, 3, 8, 4))
      >>> conv_transpose(x, w, stride=2, padding=1, output_padding=1).shape
      (1, 8, 8, 4)
    """
    op = "conv_transpose"
    x, w, d = _arrays(op, x, w)
    if w.ndim != d + 2:
        checks.fail(op, f"w must have rank {d + 2} ([*kernel_size, C_in, C_out // groups]) for "
                         f"a rank-{x.ndim} x, got w.shape {w.shape}.")
    c_in = x.shape[-1]
    if w.shape[-2] != c_in:
        checks.fail(op, f"w.shape[-2] must equal C_in = {c_in}, got w.shape {w.shape}.")
    if not checks.is_int(groups) or groups < 1:
        checks.fail(op, f"groups must be a positive int, got {groups!r}.")
    c_out = w.shape[-1] * groups
    groups = check_groups(op, groups, c_in, c_out)
    fn = conv_impl_fn(impl, op)
    if isinstance(padding, str):
        if padding.upper() != "VALID":
            checks.fail(op, f"padding must be an int, {d} ints, {d} (lo, hi) pairs or 'VALID' "
                             f"(PyTorch semantics), got {padding!r}.")
        padding = 0
    geom = window_geometry(op, x.shape[1:-1], w.shape[:d], stride, padding, dilation, groups,
                           check_fits=False)
    s, r = geom.stride, geom.dilation
    op_pad = checks.ntuple(output_padding, d, op, "output_padding", min_value=0)
    for i, (o, ss, rr) in enumerate(zip(op_pad, s, r)):
        if o >= max(ss, rr):
            checks.fail(op, f"output_padding must be smaller than max(stride, dilation) in every "
                             f"dim, got {output_padding!r} with stride {s} and dilation {r} "
                             f"(dim {i}).")
    out = geom.transposed_output_shape(x.shape[1:-1], op_pad)
    if any(v < 1 for v in out):
        checks.fail(op, f"padding {padding!r} crops the output to a non-positive size {out}.")
    x, w, b = _one_dtype(op, x, w, b, c_out)
    # The matching forward conv maps C_out -> C_in channels with kernel [*k, C_out/G, C_in].
    w_fwd = jnp.swapaxes(w, -1, -2)
    # With output_padding >= stride (possible when dilation > stride) the forward conv of
    # the output shape has extra high-side outputs; their cotangent is zero.
    extra = tuple(m - n for m, n in zip(geom.output_shape(out), x.shape[1:-1]))
    if any(extra):
        x = jnp.pad(x, ((0, 0), *((0, e) for e in extra), (0, 0)))
    primal = jnp.zeros((x.shape[0], *out, c_out), x.dtype)
    _, vjp = jax.vjp(lambda z: fn(z, w_fwd, geom, None), primal)
    (y,) = vjp(x)
    return _add_bias(y, b)


