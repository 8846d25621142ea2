"""ResNet (He et al. 2016) as an NNX model, the twin of :mod:`cnnjax.models._resnet`'s."""
from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx

from cnnjax.models.arch import (RESNET20_STAGES, RESNET20_WIDTHS, RESNET_POOL,
                                 RESNET_STEM_POOL, RESNET_STEMS)
from cnnjax.models.arch import resolve_stem
from cnnjax.nnx._adaptive_pool import GlobalAvgPool
from cnnjax.nnx._base import Module
from cnnjax.nnx._make_pool import PoolSpec, make_pool
from cnnjax.nnx.models._layers import (ConvBN, ReLU, check_model_input, dense,
                                       model_input_shape)


class BasicBlock(Module):
    """Two 3×3 ConvBN with an identity shortcut (He et al. 2016), as the linen ``BasicBlock``.

    When the block downsamples or widens, the shortcut is ``pool(2/2, 'SAME') → 1×1 ConvBN``
    (the ResNet-D shortcut of He et al. 2019), a pooling site.
    """

    def __init__(self, in_features: int, features: int, stride: int = 1,
                 pool: PoolSpec = RESNET_POOL, impl: str = "auto", *, rngs: nnx.Rngs):
        self.in_features, self.features, self.stride, self.pool = (in_features, features,
                                                                    stride, pool)
        self.conv1 = ConvBN(in_features, features, 3, stride, 1, impl=impl, rngs=rngs)
        self.relu = ReLU()
        self.conv2 = ConvBN(features, features, 3, 1, 1, impl=impl, rngs=rngs)
        self.shortcut_pool = (make_pool(pool, stride, stride, "SAME", num_features=in_features,
                                        rngs=rngs) if stride != 1 else None)
        self.shortcut = (ConvBN(in_features, features, 1, impl=impl, rngs=rngs)
                         if stride != 1 or in_features != features else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.conv2(self.relu(self.conv1(x)))
        shortcut = x
        if self.shortcut_pool is not None:
            shortcut = self.shortcut_pool(shortcut)
        if self.shortcut is not None:
            shortcut = self.shortcut(shortcut)
        return self.relu(y + shortcut)


class ResNet(Module):
    """Residual network of :class:`BasicBlock` stages, the twin of :class:`cnnjax.models.ResNet`.

    Defaults are the CIFAR ResNet-20 (He et al. 2016, Sec. 4.2): a 3×3 16-channel stem, three
    stages of three blocks with 16, 32, 64 channels (strides 1, 2, 2), global average pooling
    and a dense classifier. Stems: ``'cifar'`` (3×3/1 conv) or ``'imagenet'`` (7×7/2 conv and
    a 3/2 p1 pooling site); ``None`` picks ``'cifar'`` below 64 px of ``input_shape``. After
    the global pool any ``H, W`` works; ``C`` must be ``input_shape``'s.

    Args:
      num_classes: number of logits.
      pool: spec string or module factory for the pooling sites (stem pool and downsampling
        shortcuts).
      stage_sizes: blocks per stage.
      widths: channels per stage (the stem has ``widths[0]``).
      stem: ``'cifar'``, ``'imagenet'`` or ``None``.
      impl: convolution implementation.
      input_shape: ``(H, W, C)`` of one example.
      rngs: ``params`` and ``'pool'`` streams.

    Example:
      >>> model = ResNet(num_classes=10, pool='gated', rngs=nnx.Rngs(0))   # ResNet-20
      >>> model.eval()
      >>> model(jnp.zeros((2, 32, 32, 3))).shape
      (2, 10)
    """

    def __init__(self, num_classes: int = 10, pool: PoolSpec = RESNET_POOL,
                 stage_sizes: Sequence[int] = RESNET20_STAGES,
                 widths: Sequence[int] = RESNET20_WIDTHS, stem: str | None = "cifar",
                 impl: str = "auto", *, input_shape: tuple[int, int, int] = (32, 32, 3),
                 rngs: nnx.Rngs):
        op = type(self).__name__
        shape = self.input_shape = model_input_shape(input_shape, op)
        self.num_classes, self.pool, self.impl = num_classes, pool, impl
        self.stage_sizes, self.widths = tuple(stage_sizes), tuple(widths)
        self.stem = resolve_stem(stem, jax.ShapeDtypeStruct((1, *shape), "float32"), op)
        self.stem_conv = ConvBN(shape[-1], widths[0], *RESNET_STEMS[self.stem], impl=impl,
                                rngs=rngs)
        self.relu = ReLU()
        self.stem_pool = (make_pool(pool, *RESNET_STEM_POOL, num_features=widths[0], rngs=rngs)
                          if self.stem == "imagenet" else None)
        self.blocks = nnx.List()
        c = widths[0]
        for i, (n_blocks, width) in enumerate(zip(stage_sizes, widths)):
            for j in range(n_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                self.blocks.append(BasicBlock(c, width, stride, pool, impl, rngs=rngs))
                c = width
        self.global_pool = GlobalAvgPool()
        self.head = dense(c, num_classes, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = check_model_input(x, self.input_shape, type(self).__name__, any_size=True)
        x = self.relu(self.stem_conv(x))
        if self.stem_pool is not None:
            x = self.stem_pool(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.global_pool(x))


class ResNet20(ResNet):
    """CIFAR ResNet-20 (He et al. 2016, Sec. 4.2, n=3): 0.27M parameters at 10 classes."""
