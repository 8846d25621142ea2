"""Convolution modules: parameters + one call of :func:`cnnjax.conv` / :func:`cnnjax.conv_transpose`."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import fields
from cnnjax.ops import checks

Initializer = Callable[..., jax.Array]


def _kernel_size(kernel_size, d: int, op: str) -> tuple[int, ...]:
    return checks.ntuple(kernel_size, d, op, "kernel_size")


class Conv(nn.Module):
    """N-d convolution layer, equivalent to partial application of :func:`cnnjax.conv`.

    ``y = cnnjax.conv(x, kernel, bias, stride=stride, padding=padding, dilation=dilation,
    groups=groups, padding_mode=padding_mode, impl=impl)`` with a kernel
    ``[*kernel_size, C_in // groups, features]`` and bias ``[features]``. Output size per
    spatial dim: ``floor((n + lo + hi - dilation*(k-1) - 1) / stride) + 1``.

    Defaults follow :func:`cnnjax.conv` (``padding='VALID'``, like PyTorch's ``padding=0``;
    note ``flax.linen.Conv`` defaults to ``'SAME'``); initialisers follow Flax (LeCun normal
    kernel, zero bias).

    Attributes:
      features: number of output channels ``C_out``.
      kernel_size: an int or one int per spatial dim.
      stride: an int or one per spatial dim.
      padding: ``'VALID'``, ``'SAME'``, an int, ``d`` ints or ``d`` ``(lo, hi)`` pairs.
      dilation: kernel dilation.
      groups: feature groups; ``groups == C_in`` is a depthwise convolution.
      use_bias: add a learned bias.
      padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
      impl: ``'auto'``, ``'xla'``, ``'im2col'`` or ``'fft'`` (see :func:`cnnjax.conv`).
      precision: passed to :func:`cnnjax.conv`.
      dtype: computation dtype (``None``: the input's).
      param_dtype: parameter dtype.
      kernel_init, bias_init: Flax initialisers.
      strides, feature_group_count: ``flax.linen.Conv``'s names of ``stride`` and ``groups``;
        deprecated (they warn), kept so Flax code ports unchanged.

    Example:
      >>> layer = Conv(features=20, kernel_size=5, padding=2)
      >>> variables = layer.init(jax.random.key(0), jnp.ones((1, 28, 28, 1)))
      >>> layer.apply(variables, jnp.ones((1, 28, 28, 1))).shape
      (1, 28, 28, 20)
    """

    features: int
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] = 1
    padding: Any = "VALID"
    dilation: int | Sequence[int] = 1
    groups: int = 1
    use_bias: bool = True
    padding_mode: str = "zeros"
    impl: str = "auto"
    precision: Any = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = nn.initializers.lecun_normal()
    bias_init: Initializer = nn.initializers.zeros_init()
    strides: int | Sequence[int] | None = None  # deprecated spelling of stride
    feature_group_count: int | None = None  # deprecated spelling of groups

    @nn.compact
    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        op = "Conv"
        d = checks.spatial_rank(x, op)
        k = _kernel_size(self.kernel_size, d, op)
        stride, groups = fields.resolve_conv_spellings(
            self.stride, self.groups, self.strides, self.feature_group_count, op)
        kernel = self.param("kernel", self.kernel_init,
                            fields.conv_kernel_shape(k, x.shape[-1], self.features, groups, op),
                            self.param_dtype)
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        dtype = self.dtype or x.dtype
        return cnnjax.conv(
            x.astype(dtype), kernel.astype(dtype), None if bias is None else bias.astype(dtype),
            stride=stride, padding=self.padding, dilation=self.dilation, groups=groups,
            padding_mode=self.padding_mode, impl=self.impl, precision=self.precision)


class ConvTranspose(nn.Module):
    """Transposed convolution, equivalent to partial application of :func:`cnnjax.conv_transpose`.

    Kernel ``[*kernel_size, C_in, features // groups]`` (PyTorch's layout moved channels-last),
    bias ``[features]``. Output size per spatial dim
    ``(n - 1)·stride − lo − hi + dilation·(k − 1) + output_padding + 1``.

    Attributes:
      features: output channels ``C_out``.
      kernel_size: an int or one per spatial dim.
      stride, padding, output_padding, dilation: as :func:`cnnjax.conv_transpose`
        (PyTorch semantics; ``padding`` is cropped from the full output).
      groups: feature groups.
      strides, feature_group_count: deprecated spellings of ``stride`` and ``groups``.
      use_bias, impl, dtype, param_dtype, kernel_init, bias_init: as :class:`Conv`.

    Example:
      >>> layer = ConvTranspose(features=4, kernel_size=3, stride=2, padding=1, output_padding=1)
      >>> v = layer.init(jax.random.key(0), jnp.ones((1, 4, 4, 8)))
      >>> layer.apply(v, jnp.ones((1, 4, 4, 8))).shape
      (1, 8, 8, 4)
    """

    features: int
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] = 1
    padding: Any = 0
    output_padding: int | Sequence[int] = 0
    dilation: int | Sequence[int] = 1
    groups: int = 1
    use_bias: bool = True
    impl: str = "auto"
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = nn.initializers.lecun_normal()
    bias_init: Initializer = nn.initializers.zeros_init()
    strides: int | Sequence[int] | None = None  # deprecated spelling of stride
    feature_group_count: int | None = None  # deprecated spelling of groups

    @nn.compact
    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        op = "ConvTranspose"
        d = checks.spatial_rank(x, op)
        k = _kernel_size(self.kernel_size, d, op)
        stride, groups = fields.resolve_conv_spellings(
            self.stride, self.groups, self.strides, self.feature_group_count, op)
        kernel = self.param("kernel", self.kernel_init, fields.conv_transpose_kernel_shape(
            k, x.shape[-1], self.features, groups, op), self.param_dtype)
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        dtype = self.dtype or x.dtype
        return cnnjax.conv_transpose(
            x.astype(dtype), kernel.astype(dtype), None if bias is None else bias.astype(dtype),
            stride=stride, padding=self.padding, output_padding=self.output_padding,
            dilation=self.dilation, groups=groups, impl=self.impl)


class StridedConvPool(nn.Module):
    """No pooling: a learned ``C -> C`` convolution with a pooling site's window and stride.

    The all-convolutional baseline of Springenberg et al. 2015 ("Striving for simplicity: the
    all convolutional net"): where a model would pool with ``window_shape``/``strides``/
    ``padding``, a convolution with that kernel size, stride and padding learns the
    downsampling instead (``'strided_conv'`` in :func:`cnnjax.nn.make_pool`); the output size
    is the pool's. Equivalent to partial application of :func:`cnnjax.conv` with a kernel
    ``[*window_shape, C, C]`` and a bias ``[C]``.

    Example:
      >>> pool = StridedConvPool(window_shape=2)
      >>> v = pool.init(jax.random.key(0), jnp.ones((1, 4, 4, 3)))
      >>> v['params']['kernel'].shape, pool.apply(v, jnp.ones((1, 4, 4, 3))).shape
      ((2, 2, 3, 3), (1, 2, 2, 3))
    """

    window_shape: int | Sequence[int] = 2
    strides: int | Sequence[int] | None = None
    padding: Any = "VALID"
    use_bias: bool = True
    impl: str = "auto"
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = nn.initializers.lecun_normal()
    bias_init: Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train  # deterministic
        x = jnp.asarray(x)
        op = "StridedConvPool"
        d = checks.spatial_rank(x, op)
        k = _kernel_size(self.window_shape, d, op)
        c = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, fields.conv_kernel_shape(k, c, c, 1, op),
                            self.param_dtype)
        bias = self.param("bias", self.bias_init, (c,), self.param_dtype) if self.use_bias else None
        return cnnjax.conv(x, kernel.astype(x.dtype),
                           None if bias is None else bias.astype(x.dtype),
                           stride=k if self.strides is None else self.strides,
                           padding=self.padding, impl=self.impl)
