"""ResNet (He et al. 2016) and GoogLeNet (Szegedy et al. 2015), built from foldable ConvBN."""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnnjax import nn as cnn
from cnnjax.models.arch import (RESNET18_STAGES, RESNET18_WIDTHS, RESNET20_STAGES,
                                 RESNET20_WIDTHS, RESNET_POOL, RESNET_STEM_POOL, RESNET_STEMS)
from cnnjax.models._layers import (ConvBN, ReLU, check_input, dropout,
                                   resolve_stem)


class BasicBlock(nn.Module):
    """Two 3×3 ConvBN with an identity shortcut (He et al. 2016, Fig. 2 "a building block").

    When the block downsamples or widens, the shortcut is ``pool(2/2, 'SAME') → 1×1 ConvBN``
    (the ResNet-D shortcut of He et al. 2019, "Bag of Tricks"), which makes it a pooling site:
    the pool plug is what summarises the skipped 2×2 neighbourhoods. ``'SAME'`` gives
    ``ceil(n/2)``, the size of the strided 3×3 p1 main path, also for odd ``n``.
    """

    features: int
    stride: int = 1
    pool: cnn.PoolSpec = RESNET_POOL
    fold_bn: bool = False
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        y = ConvBN(self.features, 3, self.stride, 1, fold=self.fold_bn, impl=self.impl)(
            x, train=train)
        y = ReLU()(y)
        y = ConvBN(self.features, 3, 1, 1, fold=self.fold_bn, impl=self.impl)(y, train=train)
        shortcut = x
        if self.stride != 1:
            shortcut = cnn.make_pool(self.pool, self.stride, self.stride, "SAME")(
                shortcut, train=train)
        if self.stride != 1 or x.shape[-1] != self.features:
            shortcut = ConvBN(self.features, 1, fold=self.fold_bn, impl=self.impl)(
                shortcut, train=train)
        return ReLU()(y + shortcut)


class ResNet(nn.Module):
    """Residual network of :class:`BasicBlock` stages (He et al. 2016; lectures, "ResNet").

    Defaults are the CIFAR ResNet-20 of the paper (Sec. 4.2): a 3×3 16-channel stem, three
    stages of three blocks with 16, 32, 64 channels (strides 1, 2, 2), global average pooling
    and a dense classifier; :class:`ResNet18` is the ImageNet ResNet-18. Stems: ``'cifar'``
    (3×3/1 conv, no pooling) or ``'imagenet'`` (7×7/2 conv and a 3/2 p1 pooling site);
    ``None`` picks ``'cifar'`` below 64 px. Every conv is a foldable ``ConvBN``.

    Attributes:
      num_classes: number of logits.
      pool: spec string or module factory for the pooling sites (stem pool and downsampling
        shortcuts).
      stage_sizes: blocks per stage.
      widths: channels per stage (the stem has ``widths[0]``).
      stem: ``'cifar'``, ``'imagenet'`` or ``None``.
      fold_bn: inference with every Conv→BatchNorm folded (see ``fold_batch_norms``).
      impl: convolution implementation.

    Example:
      >>> model = ResNet(num_classes=10, pool='gated')   # ResNet-20
      >>> x = jnp.zeros((2, 32, 32, 3))
      >>> v = model.init(jax.random.key(0), x, train=False)
      >>> model.apply(v, x, train=False).shape
      (2, 10)
    """

    num_classes: int = 10
    pool: cnn.PoolSpec = RESNET_POOL
    stage_sizes: Sequence[int] = RESNET20_STAGES
    widths: Sequence[int] = RESNET20_WIDTHS
    stem: str | None = "cifar"
    fold_bn: bool = False
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = check_input(x, type(self).__name__)
        stem = resolve_stem(self.stem, x, type(self).__name__)
        x = ConvBN(self.widths[0], *RESNET_STEMS[stem], fold=self.fold_bn, impl=self.impl)(
            x, train=train)
        x = ReLU()(x)
        if stem == "imagenet":
            x = cnn.make_pool(self.pool, *RESNET_STEM_POOL)(x, train=train)
        for i, (n_blocks, width) in enumerate(zip(self.stage_sizes, self.widths)):
            for j in range(n_blocks):
                strides = 2 if i > 0 and j == 0 else 1
                x = BasicBlock(width, strides, self.pool, self.fold_bn, self.impl)(x, train=train)
        x = cnn.GlobalAvgPool()(x)
        return nn.Dense(self.num_classes, dtype=x.dtype)(x)


class ResNet20(ResNet):
    """CIFAR ResNet-20 (He et al. 2016, Sec. 4.2, n=3): 0.27M parameters at 10 classes."""


class ResNet18(ResNet):
    """ResNet-18 (He et al. 2016, Table 1): stages of 2 blocks with 64, 128, 256, 512 channels,
    ImageNet stem from 64 px up, CIFAR stem below."""

    num_classes: int = 1000
    stage_sizes: Sequence[int] = RESNET18_STAGES
    widths: Sequence[int] = RESNET18_WIDTHS
    stem: str | None = None


class Inception(nn.Module):
    """The GoogLeNet Inception module (Szegedy et al. 2015, Fig. 2b; lectures).

    Four parallel branches concatenated on channels: 1×1; 1×1 → 3×3; 1×1 → 5×5; 3×3/1
    'SAME' pool → 1×1. Every conv is ConvBN → ReLU (BN as in Ioffe & Szegedy 2015, who
    introduced it on this network). The pool branch is a pooling site.
    """

    c1: int
    c3_reduce: int
    c3: int
    c5_reduce: int
    c5: int
    pool_proj: int
    pool: cnn.PoolSpec = "max"
    fold_bn: bool = False
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        def conv(features, k, y):
            y = ConvBN(features, k, 1, k // 2, fold=self.fold_bn, impl=self.impl)(y, train=train)
            return ReLU()(y)

        b1 = conv(self.c1, 1, x)
        b3 = conv(self.c3, 3, conv(self.c3_reduce, 1, x))
        b5 = conv(self.c5, 5, conv(self.c5_reduce, 1, x))
        bp = conv(self.pool_proj, 1, cnn.make_pool(self.pool, 3, 1, "SAME")(x, train=train))
        return jnp.concatenate([b1, b3, b5, bp], axis=-1)


_INCEPTIONS = {  # Szegedy et al. 2015, Table 1: (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj)
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """GoogLeNet / Inception-v1 (Szegedy et al. 2015, Table 1) with BatchNorm.

    Stem ``'imagenet'``: 7×7/2 conv 64 → pool 3/2 → 1×1 conv 64 → 3×3 conv 192 → pool 3/2;
    ``'cifar'`` (below 64 px by default): one 3×3 conv 192. Then inception 3a, 3b → pool 3/2
    → 4a–4e → pool 3/2 → 5a, 5b → global average → dropout 0.4 → dense. All stride-2 pools
    use padding 1 (32 → 16 → 8 on CIFAR); they and each module's pool branch are pooling sites.
    The auxiliary classifiers are omitted (with BN they are not needed to train).

    Example:
      >>> model = GoogLeNet(num_classes=10, pool='max')
      >>> x = jnp.zeros((1, 32, 32, 3))
      >>> v = model.init(jax.random.key(0), x, train=False)
      >>> model.apply(v, x, train=False).shape
      (1, 10)
    """

    num_classes: int = 1000
    pool: cnn.PoolSpec = "max"
    stem: str | None = None
    fold_bn: bool = False
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = check_input(x, "GoogLeNet")

        def conv(features, k, s, y):
            y = ConvBN(features, k, s, k // 2, fold=self.fold_bn, impl=self.impl)(y, train=train)
            return ReLU()(y)

        def inception(name, y):
            return Inception(*_INCEPTIONS[name], pool=self.pool, fold_bn=self.fold_bn,
                             impl=self.impl, name=f"inception_{name}")(y, train=train)

        def down(y):
            return cnn.make_pool(self.pool, 3, 2, 1)(y, train=train)

        if resolve_stem(self.stem, x, "GoogLeNet") == "imagenet":
            x = down(conv(64, 7, 2, x))
            x = down(conv(192, 3, 1, conv(64, 1, 1, x)))
        else:
            x = conv(192, 3, 1, x)
        x = inception("3b", inception("3a", x))
        x = down(x)
        for name in ("4a", "4b", "4c", "4d", "4e"):
            x = inception(name, x)
        x = down(x)
        x = inception("5b", inception("5a", x))
        x = cnn.GlobalAvgPool()(x)
        x = dropout(0.4, x, train=train)
        return nn.Dense(self.num_classes, dtype=x.dtype)(x)
