"""Convolution modules: parameters and one call of :func:`cnnjax.conv` or
:func:`cnnjax.conv_transpose`."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import fields
from cnnjax.nnx._base import (Initializer, Module, Shape, WindowPool, check_input, eager_ntuple,
                              frozen, positive_int)


def _param(init: Initializer, rngs: nnx.Rngs, shape: tuple[int, ...], dtype: Any) -> nnx.Param:
    return nnx.Param(init(rngs.params(), shape, dtype))


def _cast(x: jax.Array, kernel: nnx.Param, bias: nnx.Param | None, dtype: Any):
    dtype = dtype or x.dtype
    return (x.astype(dtype), kernel[...].astype(dtype),
            None if bias is None else bias[...].astype(dtype))


class Conv(Module):
    """N-d convolution layer, equivalent to partial application of :func:`cnnjax.conv`.

    ``y = cnnjax.conv(x, kernel, bias, stride=stride, padding=padding, dilation=dilation,
    groups=groups, padding_mode=padding_mode, impl=impl)`` with an ``nnx.Param`` kernel
    ``[*kernel_size, in_features // groups, out_features]`` and bias ``[out_features]``.
    Output size per spatial dim ``floor((n + lo + hi − dilation·(k − 1) − 1) / stride) + 1``.

    The parameters are created here, so ``kernel_size`` fixes the number of spatial dims: an
    int is a square 2-D kernel, ``(k,)`` or ``(k, k, k)`` a 1-D or 3-D one (``flax.nnx.Conv``
    reads an int as 1-D). Defaults follow :func:`cnnjax.conv` (``padding='VALID'``, like
    PyTorch; ``flax.nnx.Conv`` defaults to ``'SAME'``); initialisers follow Flax (LeCun
    normal kernel, zero bias).

    Args:
      in_features: input channels ``C_in``.
      out_features: output channels ``C_out``.
      kernel_size: an int (2-D) or one int per spatial dim.
      stride: an int or one per spatial dim.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      dilation: kernel dilation.
      groups: feature groups; ``groups == in_features`` is a depthwise convolution.
      use_bias: add a learned bias.
      padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
      impl: ``'auto'``, ``'xla'``, ``'im2col'`` or ``'fft'`` (see :func:`cnnjax.conv`).
      precision: passed to :func:`cnnjax.conv`.
      dtype: computation dtype (``None``: the input's).
      param_dtype: parameter dtype.
      kernel_init, bias_init: Flax initialisers.
      strides, feature_group_count: ``flax.nnx.Conv``'s names of ``stride`` and ``groups``;
        deprecated (they warn), kept so Flax code ports unchanged.
      rngs: its ``params`` stream initialises the kernel and bias.

    Example:
      >>> layer = Conv(1, 20, 5, padding=2, rngs=nnx.Rngs(0))
      >>> layer.kernel.shape, layer(jnp.ones((1, 28, 28, 1))).shape
      ((5, 5, 1, 20), (1, 28, 28, 20))
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: Shape, *,
                 stride: Shape = 1, padding: Any = "VALID", dilation: Shape = 1,
                 groups: int = 1, use_bias: bool = True, padding_mode: str = "zeros",
                 impl: str = "auto", precision: Any = None, dtype: Any = None,
                 param_dtype: Any = jnp.float32,
                 kernel_init: Initializer = nnx.initializers.lecun_normal(),
                 bias_init: Initializer = nnx.initializers.zeros_init(),
                 strides: Shape | None = None, feature_group_count: int | None = None,
                 rngs: nnx.Rngs):
        op = "Conv"
        stride, groups = fields.resolve_conv_spellings(stride, groups, strides,
                                                       feature_group_count, op)
        self.in_features = positive_int(in_features, op, "in_features")
        self.out_features = positive_int(out_features, op, "out_features")
        self.kernel_size = eager_ntuple(kernel_size, op, "kernel_size")
        shape = fields.conv_kernel_shape(self.kernel_size, in_features, out_features, groups, op)
        self.kernel = _param(kernel_init, rngs, shape, param_dtype)
        self.bias = (_param(bias_init, rngs, (out_features,), param_dtype) if use_bias
                     else nnx.data(None))
        self.stride = frozen(stride)
        self.padding = frozen(padding)
        self.dilation = frozen(dilation)
        self.groups = groups
        self.use_bias = use_bias
        self.padding_mode = padding_mode
        self.impl = impl
        self.precision = precision
        self.dtype = dtype
        self.param_dtype = param_dtype

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = check_input(x, "Conv", d=len(self.kernel_size), channels=self.in_features,
                        channels_name="in_features")
        x, kernel, bias = _cast(x, self.kernel, self.bias, self.dtype)
        return cnnjax.conv(x, kernel, bias, stride=self.stride, padding=self.padding,
                           dilation=self.dilation, groups=self.groups,
                           padding_mode=self.padding_mode, impl=self.impl,
                           precision=self.precision)


class ConvTranspose(Module):
    """Transposed convolution, equivalent to partial application of :func:`cnnjax.conv_transpose`.

    ``nnx.Param`` kernel ``[*kernel_size, in_features, out_features // groups]`` (PyTorch's
    layout moved channels-last), bias ``[out_features]``. Output size per spatial dim
    ``(n − 1)·stride − lo − hi + dilation·(k − 1) + output_padding + 1``. An int
    ``kernel_size`` is a square 2-D kernel.

    Args:
      in_features, out_features: input and output channels.
      kernel_size: an int (2-D) or one per spatial dim.
      stride, padding, output_padding, dilation: as :func:`cnnjax.conv_transpose`
        (PyTorch semantics; ``padding`` is cropped from the full output).
      groups: feature groups.
      use_bias, impl, dtype, param_dtype, kernel_init, bias_init: as :class:`Conv`.
      strides, feature_group_count: deprecated spellings of ``stride`` and ``groups``.
      rngs: its ``params`` stream initialises the kernel and bias.

    Example:
      >>> layer = ConvTranspose(8, 4, 3, stride=2, padding=1, output_padding=1,
      ...                       rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((1, 4, 4, 8))).shape
      (1, 8, 8, 4)
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: Shape, *,
                 stride: Shape = 1, padding: Any = 0, output_padding: Shape = 0,
                 dilation: Shape = 1, groups: int = 1, use_bias: bool = True,
                 impl: str = "auto", dtype: Any = None, param_dtype: Any = jnp.float32,
                 kernel_init: Initializer = nnx.initializers.lecun_normal(),
                 bias_init: Initializer = nnx.initializers.zeros_init(),
                 strides: Shape | None = None, feature_group_count: int | None = None,
                 rngs: nnx.Rngs):
        op = "ConvTranspose"
        stride, groups = fields.resolve_conv_spellings(stride, groups, strides,
                                                       feature_group_count, op)
        self.in_features = positive_int(in_features, op, "in_features")
        self.out_features = positive_int(out_features, op, "out_features")
        self.kernel_size = eager_ntuple(kernel_size, op, "kernel_size")
        shape = fields.conv_transpose_kernel_shape(self.kernel_size, in_features, out_features,
                                                   groups, op)
        self.kernel = _param(kernel_init, rngs, shape, param_dtype)
        self.bias = (_param(bias_init, rngs, (out_features,), param_dtype) if use_bias
                     else nnx.data(None))
        self.stride = frozen(stride)
        self.padding = frozen(padding)
        self.output_padding = frozen(output_padding)
        self.dilation = frozen(dilation)
        self.groups = groups
        self.use_bias = use_bias
        self.impl = impl
        self.dtype = dtype
        self.param_dtype = param_dtype

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = check_input(x, "ConvTranspose", d=len(self.kernel_size), channels=self.in_features,
                        channels_name="in_features")
        x, kernel, bias = _cast(x, self.kernel, self.bias, self.dtype)
        return cnnjax.conv_transpose(x, kernel, bias, stride=self.stride, padding=self.padding,
                                     output_padding=self.output_padding,
                                     dilation=self.dilation, groups=self.groups, impl=self.impl)


class StridedConvPool(WindowPool):
    """No pooling: a learned ``C -> C`` convolution with a pooling site's window and stride.

    The all-convolutional baseline of Springenberg et al. 2015 ("Striving for simplicity: the
    all convolutional net"): where a model would pool with ``window_shape``/``strides``/
    ``padding``, a convolution with that kernel size, stride and padding learns the
    downsampling instead (``'strided_conv'`` in :func:`cnnjax.nnx.make_pool`); the output size
    is the pool's. Equivalent to partial application of :func:`cnnjax.conv` with an
    ``nnx.Param`` kernel ``[*window_shape, C, C]`` and bias ``[C]``, ``C = num_features``;
    an int ``window_shape`` is a square 2-D window.

    Example:
      >>> pool = StridedConvPool(2, num_features=3, rngs=nnx.Rngs(0))
      >>> pool.kernel.shape, pool(jnp.ones((1, 4, 4, 3))).shape
      ((2, 2, 3, 3), (1, 2, 2, 3))
    """

    def __init__(self, window_shape: Sequence[int] | int = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, num_features: int, use_bias: bool = True,
                 impl: str = "auto", param_dtype: Any = jnp.float32,
                 kernel_init: Initializer = nnx.initializers.lecun_normal(),
                 bias_init: Initializer = nnx.initializers.zeros_init(), rngs: nnx.Rngs):
        op = "StridedConvPool"
        super().__init__(window_shape, strides, padding)
        c = self.num_features = positive_int(num_features, op, "num_features")
        k = eager_ntuple(window_shape, op, "window_shape")
        self.kernel = _param(kernel_init, rngs, fields.conv_kernel_shape(k, c, c, 1, op),
                             param_dtype)
        self.bias = _param(bias_init, rngs, (c,), param_dtype) if use_bias else nnx.data(None)
        self.use_bias = use_bias
        self.impl = impl
        self.param_dtype = param_dtype

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = check_input(x, "StridedConvPool", d=self.kernel.ndim - 2,
                        channels=self.num_features)
        x, kernel, bias = _cast(x, self.kernel, self.bias, None)
        return cnnjax.conv(x, kernel, bias,
                           stride=self.window_shape if self.strides is None else self.strides,
                           padding=self.padding, impl=self.impl)
