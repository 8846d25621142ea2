"""The zoo's architectures as numbers, shared by both front ends.

The ``flax.linen`` models here and the ``flax.nnx`` models of :mod:`cnnjax.nnx.models` read
their layer widths, kernel sizes, stage layouts and pooling sites from this module, so the two
front ends build the same networks, and check their input the same way. Nothing here
imports Flax.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from cnnjax.ops import checks

#: A pooling site ``(window_shape, strides)``: the classic non-overlapping 2/2 pool.
POOL_2x2 = (2, 2)

#: LeNet-5 (the lectures' table): ``(features, kernel_size, padding)`` of the two convs, each
#: followed by ReLU and a 2/2 pool, then the hidden dense width.
LENET5_CONVS = ((20, 5, 2), (50, 5, 2))
LENET5_HIDDEN = 500

#: The lectures' PyTorch MNIST example: ``(features, kernel_size)`` of the two unpadded convs,
#: the hidden dense width, and the dropout rates after the pool (channel dropout) and after the
#: hidden layer.
MNISTNET_CONVS = ((32, 3), (64, 3))
MNISTNET_HIDDEN = 128
MNISTNET_DROPOUT = (0.25, 0.5)

#: VGG (Simonyan & Zisserman 2014, Table 1, configurations A = 11 and D = 16): 3×3 p1 conv
#: widths, ``'M'`` a 2/2 pooling site; two hidden dense layers of ``VGG_HIDDEN`` (the usual
#: CIFAR width; the paper's is 4096 at 224 px) with dropout ``VGG_DROPOUT``.
VGG_CONFIGS: dict[int, tuple] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}
VGG_HIDDEN = 512
VGG_DROPOUT = 0.5

#: ResNet stages (He et al. 2016): blocks per stage and channels per stage. ResNet-20 is the
#: CIFAR network of Sec. 4.2 (n = 3); ResNet-18 the ImageNet one of Table 1.
RESNET20_STAGES, RESNET20_WIDTHS = (3, 3, 3), (16, 32, 64)
RESNET18_STAGES, RESNET18_WIDTHS = (2, 2, 2, 2), (64, 128, 256, 512)
#: The ResNet stems as ``(kernel_size, stride, padding)`` of the first conv; the ImageNet stem
#: is followed by a 3/2 p1 pooling site (``RESNET_STEM_POOL``: window, strides, padding).
RESNET_STEMS = {"cifar": (3, 1, 1), "imagenet": (7, 2, 3)}
RESNET_STEM_POOL = (3, 2, 1)
#: The default pool of the ResNets: their pooling sites are downsampling shortcuts, where the
#: ResNet-D shortcut (He et al. 2019) averages.
RESNET_POOL = "avg"


#: Inputs whose smaller spatial side is below this get the CIFAR-style stem (no aggressive
#: early downsampling) in AlexNet, ResNet-18 and GoogLeNet.
SMALL_INPUT = 64


def resolve_stem(stem: str | None, x: jax.Array, op: str) -> str:
    """``'cifar'`` or ``'imagenet'``; ``None`` picks by input size (``SMALL_INPUT``)."""
    if stem is None:
        return "cifar" if min(x.shape[1:-1]) < SMALL_INPUT else "imagenet"
    return checks.check_choice(stem, ("cifar", "imagenet"), op, "stem")


def check_input(x: jax.Array, op: str) -> jax.Array:
    """A model's input: a floating ``[N, H, W, C]`` batch of images, or the one-sentence error."""
    x = jnp.asarray(x)
    if x.ndim != 4:
        checks.fail(op, f"x must be a batch of images [N, H, W, C], got shape {x.shape}.")
    checks.check_floating(x, op)
    return x
