"""Softmax-weighted pooling modules: :func:`cnnjax.soft_pool` and :func:`cnnjax.lip_pool`."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

import cnnjax
from cnnjax.nnx._base import (Initializer, Shape, WindowPool, check_input, eager_ntuple,
                              positive_int)


class SoftPool(WindowPool):
    """SoftPool (Stergiou et al. 2021), equivalent to partial application of
    :func:`cnnjax.soft_pool`: ``Σ e^{x}·x / Σ e^{x}`` over each window. Parameter-free;
    output size as :func:`cnnjax.avg_pool`.

    Example:
      >>> SoftPool(2)(jnp.ones((1, 4, 4, 3))).shape
      (1, 2, 2, 3)
    """

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.soft_pool(x, **self.window_kwargs())


class LipPool(WindowPool):
    """Local importance-based pooling (Gao et al. 2019), equivalent to partial application of
    :func:`cnnjax.lip_pool` with logits ``ℓ = conv(x, kernel) + bias``.

    The logit layer is a learned 1×1 convolution ``C → C`` (``nnx.Param`` s ``kernel``
    ``[1, …, 1, C, C]`` and ``bias`` ``[C]``, ``C = num_features``, computed with
    :func:`cnnjax.conv`), initialised to zero: the logits start equal, so the layer starts as
    average pooling over the in-input positions of each window. An int ``window_shape`` is a
    square 2-D window. Output size as :func:`cnnjax.avg_pool`.

    Args:
      window_shape, strides, padding: as :func:`cnnjax.lip_pool`.
      num_features: the input's channel count ``C``.
      kernel_init, bias_init: initialisers of the logit convolution (zeros).
      param_dtype: parameter dtype (cast to the input's dtype for the computation).
      rngs: its ``params`` stream gives the initialisers' keys.

    Example:
      >>> pool = LipPool(2, num_features=3, rngs=nnx.Rngs(0))
      >>> pool.kernel.shape, pool(jnp.ones((1, 4, 4, 3))).shape
      ((1, 1, 3, 3), (1, 2, 2, 3))
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape | None = None,
                 padding: Any = "VALID", *, num_features: int,
                 kernel_init: Initializer = nnx.initializers.zeros_init(),
                 bias_init: Initializer = nnx.initializers.zeros_init(),
                 param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        op = "LipPool"
        super().__init__(window_shape, strides, padding)
        c = self.num_features = positive_int(num_features, op, "num_features")
        d = len(eager_ntuple(window_shape, op, "window_shape"))
        self.param_dtype = param_dtype
        self.kernel = nnx.Param(kernel_init(rngs.params(), (1,) * d + (c, c), param_dtype))
        self.bias = nnx.Param(bias_init(rngs.params(), (c,), param_dtype))

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = check_input(x, "LipPool", d=self.kernel.ndim - 2, channels=self.num_features)
        logits = cnnjax.conv(x, self.kernel[...].astype(x.dtype), self.bias[...].astype(x.dtype))
        return cnnjax.lip_pool(x, logits, **self.window_kwargs())
