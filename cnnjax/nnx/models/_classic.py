"""VGG as an NNX model, with every pooling site a plug."""
from __future__ import annotations

import jax
from flax import nnx

from cnnjax.models.arch import POOL_2x2, VGG_CONFIGS, VGG_DROPOUT, VGG_HIDDEN
from cnnjax.nnx._base import Module
from cnnjax.nnx._conv import Conv
from cnnjax.nnx._make_pool import PoolSpec, make_pool
from cnnjax.nnx.models._layers import (ConvBN, Flatten, ReLU, check_model_input, dense,
                                       flat_size, model_input_shape, shape_after)
from cnnjax.ops.checks import fail


class VGG(Module):
    """VGG-11 / VGG-16 (Simonyan & Zisserman 2014), optionally with BatchNorm after each conv;
    the twin of :class:`cnnjax.models.VGG`.

    3×3 p1 convolutions in the paper's configurations A and D, each followed by ReLU (or
    Conv→BatchNorm→ReLU with ``batch_norm=True``), five 2/2 pooling sites, then FC ``hidden``
    → FC ``hidden`` → FC ``num_classes`` with dropout 0.5 (from the ``'dropout'`` stream). At
    ``32×32×3`` the flatten is ``1×1×512``.

    Args:
      depth: 11 or 16.
      num_classes: number of logits.
      pool: spec string or module factory for the five pooling sites.
      batch_norm: BatchNorm after every conv.
      hidden: width of the hidden FC layers.
      impl: convolution implementation.
      input_shape: ``(H, W, C)`` of one example (at least 32 px).
      rngs: ``params``, ``'dropout'`` and ``'pool'`` streams.

    Example:
      >>> model = VGG(depth=11, num_classes=10, batch_norm=True, pool='avg', rngs=nnx.Rngs(0))
      >>> model.eval()
      >>> model(jnp.zeros((1, 32, 32, 3))).shape
      (1, 10)
    """

    def __init__(self, depth: int = 16, num_classes: int = 1000, pool: PoolSpec = "max",
                 batch_norm: bool = False, hidden: int = VGG_HIDDEN, impl: str = "auto", *,
                 input_shape: tuple[int, int, int] = (32, 32, 3), rngs: nnx.Rngs):
        if depth not in VGG_CONFIGS:
            fail("VGG", f"depth must be one of {sorted(VGG_CONFIGS)}, got {depth!r}.")
        shape = self.input_shape = model_input_shape(input_shape, "VGG")
        self.depth, self.num_classes, self.pool = depth, num_classes, pool
        self.batch_norm, self.hidden, self.impl = batch_norm, hidden, impl
        self.features = nnx.List()
        for v in VGG_CONFIGS[depth]:
            if v == "M":
                layers = [make_pool(pool, *POOL_2x2, num_features=shape[-1], rngs=rngs)]
            elif batch_norm:
                layers = [ConvBN(shape[-1], v, 3, padding=1, impl=impl, rngs=rngs), ReLU()]
            else:
                layers = [Conv(shape[-1], v, 3, padding=1, impl=impl, rngs=rngs), ReLU()]
            self.features.extend(layers)
            shape = shape_after(layers[0], shape)
        self.flatten, self.relu = Flatten(), ReLU()
        self.dense = nnx.List([dense(flat_size(shape), hidden, rngs), dense(hidden, hidden, rngs)])
        self.dropout = nnx.List([nnx.Dropout(VGG_DROPOUT, rngs=rngs) for _ in range(2)])
        self.head = dense(hidden, num_classes, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = check_model_input(x, self.input_shape, "VGG")
        for layer in self.features:
            x = layer(x)
        x = self.flatten(x)
        for fc, dropout in zip(self.dense, self.dropout):
            x = dropout(self.relu(fc(x)))
        return self.head(x)
