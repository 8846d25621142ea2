"""AlexNet, VGG and Network-in-Network, with every pooling site a plug."""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from cnnjax import nn as cnn
from cnnjax.models.arch import POOL_2x2, VGG_CONFIGS, VGG_DROPOUT, VGG_HIDDEN
from cnnjax.ops.checks import fail
from cnnjax.models._layers import (ConvBN, Flatten, ReLU, check_input, dropout,
                                   resolve_stem)


class AlexNet(nn.Module):
    """AlexNet (Krizhevsky et al. 2012) as in the lectures' layer list (lectures).

    ImageNet stem (``227×227×3``): ``Conv 96 11×11/4 → 55×55``, pool 3/2 → 27, ``Conv 256
    5×5 p2``, pool 3/2 → 13, ``Conv 384, 384, 256 3×3 p1``, pool 3/2 → 6, then FC 4096 → FC
    4096 → FC ``num_classes`` with dropout 0.5 before each hidden FC (the lectures: "uses
    Dropout"). Local response normalisation is omitted (not in the lectures; later work found it
    unhelpful). For small inputs (``stem='cifar'``, chosen automatically below 64 px) the first
    conv is ``3×3/1 p1`` so that the three 3/2 pools still fit (32 → 15 → 7 → 3); the rest is
    unchanged. The FC input is whatever the last pool flattens to.

    Attributes:
      num_classes: number of logits.
      pool: spec string or module factory for the three 3/2 pooling sites.
      stem: ``'imagenet'``, ``'cifar'`` or ``None`` (by input size).
      hidden: width of the two hidden FC layers.
      impl: convolution implementation.

    Example:
      >>> model = AlexNet(num_classes=10, pool='mixed:learn')
      >>> x = jnp.zeros((1, 32, 32, 3))
      >>> model.apply(model.init(jax.random.key(0), x, train=False), x, train=False).shape
      (1, 10)
    """

    num_classes: int = 1000
    pool: cnn.PoolSpec = "max"
    stem: str | None = None
    hidden: int = 4096
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = check_input(x, "AlexNet")
        if resolve_stem(self.stem, x, "AlexNet") == "imagenet":
            x = cnn.Conv(96, 11, stride=4, padding=0, impl=self.impl)(x)
        else:
            x = cnn.Conv(96, 3, stride=1, padding=1, impl=self.impl)(x)
        x = ReLU()(x)
        x = cnn.make_pool(self.pool, 3, 2)(x, train=train)
        x = ReLU()(cnn.Conv(256, 5, padding=2, impl=self.impl)(x))
        x = cnn.make_pool(self.pool, 3, 2)(x, train=train)
        x = ReLU()(cnn.Conv(384, 3, padding=1, impl=self.impl)(x))
        x = ReLU()(cnn.Conv(384, 3, padding=1, impl=self.impl)(x))
        x = ReLU()(cnn.Conv(256, 3, padding=1, impl=self.impl)(x))
        x = cnn.make_pool(self.pool, 3, 2)(x, train=train)
        x = Flatten()(x)
        for _ in range(2):
            x = dropout(0.5, x, train=train)
            x = ReLU()(nn.Dense(self.hidden, dtype=x.dtype)(x))
        return nn.Dense(self.num_classes, dtype=x.dtype)(x)


class VGG(nn.Module):
    """VGG-11 / VGG-16 (Simonyan & Zisserman 2014), optionally with BatchNorm after each conv.

    3×3 p1 convolutions in the paper's configurations A and D, each followed by ReLU (or
    Conv→BatchNorm→ReLU with ``batch_norm=True``, the "VGG-BN" variant), five 2/2 pooling
    sites, then FC ``hidden`` → FC ``hidden`` → FC ``num_classes`` with dropout 0.5. The paper's
    ``hidden`` is 4096 at 224 px; the default 512 is the usual CIFAR choice (after five pools
    a 32×32 input is 1×1×512). Works at any input of at least 32 px.

    Attributes:
      depth: 11 or 16.
      num_classes: number of logits.
      pool: spec string or module factory for the five pooling sites.
      batch_norm: insert BatchNorm after every conv (running stats in ``'batch_stats'``).
      hidden: width of the hidden FC layers.
      fold_bn: inference with every Conv→BatchNorm folded (see ``fold_batch_norms``).
      impl: convolution implementation.

    Example:
      >>> model = VGG(depth=11, num_classes=10, batch_norm=True, pool='avg')
      >>> x = jnp.zeros((1, 32, 32, 3))
      >>> v = model.init(jax.random.key(0), x, train=False)
      >>> model.apply(v, x, train=False).shape
      (1, 10)
    """

    depth: int = 16
    num_classes: int = 1000
    pool: cnn.PoolSpec = "max"
    batch_norm: bool = False
    hidden: int = VGG_HIDDEN
    fold_bn: bool = False
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = check_input(x, "VGG")
        if self.depth not in VGG_CONFIGS:
            fail("VGG", f"depth must be one of {sorted(VGG_CONFIGS)}, got {self.depth!r}.")
        for v in VGG_CONFIGS[self.depth]:
            if v == "M":
                x = cnn.make_pool(self.pool, *POOL_2x2)(x, train=train)
            elif self.batch_norm:
                x = ConvBN(v, 3, padding=1, fold=self.fold_bn, impl=self.impl)(x, train=train)
                x = ReLU()(x)
            else:
                x = ReLU()(cnn.Conv(v, 3, padding=1, impl=self.impl)(x))
        x = Flatten()(x)
        for _ in range(2):
            x = ReLU()(nn.Dense(self.hidden, dtype=x.dtype)(x))
            x = dropout(VGG_DROPOUT, x, train=train)
        return nn.Dense(self.num_classes, dtype=x.dtype)(x)


class NiN(nn.Module):
    """Network in Network (Lin et al. 2014), the CIFAR-10 model: "mlpconv" blocks of a spatial
    conv followed by two 1×1 convs (lectures: 1×1 convolutions), global average pooling, no FC.

    ``[Conv 192 5×5 p2, 1×1 160, 1×1 96] → pool 3/2 p1 → dropout .5 → [Conv 192 5×5 p2, 1×1
    192, 1×1 192] → pool 3/2 p1 → dropout .5 → [Conv 192 3×3 p1, 1×1 192, 1×1 num_classes] →
    global average``: 32 → 16 → 8. Both pooling sites are plugs (the paper used max then
    average). The last 1×1 conv has no ReLU so its averages are unconstrained logits.

    Example:
      >>> model = NiN(num_classes=10)
      >>> x = jnp.zeros((1, 32, 32, 3))
      >>> model.apply(model.init(jax.random.key(0), x, train=False), x, train=False).shape
      (1, 10)
    """

    num_classes: int = 10
    pool: cnn.PoolSpec = "max"
    widths: Sequence[int] = (192, 160, 96, 192, 192, 192, 192, 192)
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = check_input(x, "NiN")
        w = self.widths
        blocks = (((w[0], 5), (w[1], 1), (w[2], 1)), ((w[3], 5), (w[4], 1), (w[5], 1)),
                  ((w[6], 3), (w[7], 1), (self.num_classes, 1)))
        for i, block in enumerate(blocks):
            for j, (features, k) in enumerate(block):
                x = cnn.Conv(features, k, padding=k // 2, impl=self.impl)(x)
                if not (i == 2 and j == 2):
                    x = ReLU()(x)
            if i < 2:
                x = cnn.make_pool(self.pool, 3, 2, 1)(x, train=train)
                x = dropout(0.5, x, train=train)
        return cnn.GlobalAvgPool()(x)
