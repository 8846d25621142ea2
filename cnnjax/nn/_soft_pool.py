"""Softmax-weighted pooling modules: partial applications of :func:`cnnjax.soft_pool` and
:func:`cnnjax.lip_pool`.

``LipPool`` computes its importance logits from the input with a learned 1×1 convolution
(Gao et al. 2019); it is initialised to zero, so every logit is equal and the layer starts
as average pooling over the in-input positions of each window.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.ops import checks

Shape = int | Sequence[int]


class SoftPool(nn.Module):
    """SoftPool (Stergiou et al. 2021), equivalent to partial application of
    :func:`cnnjax.soft_pool`: ``Σ e^{x}·x / Σ e^{x}`` over each window. Deterministic,
    parameter-free; output size as :func:`cnnjax.avg_pool`.

    Example:
      >>> SoftPool(window_shape=2).apply({}, jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"

    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train  # deterministic
        return cnnjax.soft_pool(x, self.window_shape, self.strides, self.padding)


class LipPool(nn.Module):
    """Local importance-based pooling (Gao et al. 2019), equivalent to partial application of
    :func:`cnnjax.lip_pool` with logits ``ℓ = conv(x, kernel) + bias``.

    The logit layer is a learned 1×1 convolution ``C → C`` (parameters ``'kernel'``
    ``[1, …, 1, C, C]`` and ``'bias'`` ``[C]``, computed with :func:`cnnjax.conv`),
    initialised to zero: the logits start equal, so the layer starts as average pooling
    without the padding (``avg_pool(..., count_include_pad=False)``) and learns which
    positions matter. Deterministic; output size as :func:`cnnjax.avg_pool`.

    Attributes:
      window_shape, strides, padding: as :func:`cnnjax.lip_pool`.
      kernel_init, bias_init: initialisers of the logit convolution (zeros).
      param_dtype: parameter dtype (cast to the input's dtype for the computation).

    Example:
      >>> pool = LipPool(window_shape=2)
      >>> v = pool.init(jax.random.key(0), jnp.ones((1, 4, 4, 3)))
      >>> v['params']['kernel'].shape, v['params']['bias'].shape
      ((1, 1, 3, 3), (3,))
    """

    window_shape: Shape = 2
    strides: Shape | None = None
    padding: Any = "VALID"
    kernel_init: Callable[..., jax.Array] = nn.initializers.zeros_init()
    bias_init: Callable[..., jax.Array] = nn.initializers.zeros_init()
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool = False) -> jax.Array:
        del train  # deterministic
        x = jnp.asarray(x)
        d = checks.spatial_rank(x, "LipPool")
        c = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (1,) * d + (c, c), self.param_dtype)
        bias = self.param("bias", self.bias_init, (c,), self.param_dtype)
        logits = cnnjax.conv(x, kernel.astype(x.dtype), bias.astype(x.dtype))
        return cnnjax.lip_pool(x, logits, self.window_shape, self.strides, self.padding)
