"""The model zoo: classic CNNs as ``flax.linen`` modules in which pooling is a plug.

Every model takes ``num_classes`` and ``pool`` (a spec string for
:func:`cnnjax.nn.make_pool` — ``'max'``, ``'lp:p=3'``, ``'mixed:learn'``, ... — or a module
factory called as ``factory(window_shape=..., strides=..., padding=...)``), is called as
``model.apply(variables, x, train=...)`` on ``[N, H, W, C]`` images and returns logits
``[N, num_classes]``. Training applies need ``mutable=['batch_stats']`` (BN models) and the RNG
collections ``'dropout'`` and ``'pool'`` (stochastic pools).

``get(name, **kwargs)`` builds one by name (``NAMES``); ``summary(model, input_shape)`` prints
the lectures' layer table (also of the ``flax.nnx`` twins in :mod:`cnnjax.nnx.models`);
``fold_batch_norms(model, variables)`` folds every Conv→BatchNorm pair for inference.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn

from cnnjax.models._classic import VGG, AlexNet, NiN
from cnnjax.models._fold import fold_batch_norms
from cnnjax.models._layers import ConvBN
from cnnjax.nn import PoolSpec
from cnnjax.models._lenet import LeNet5, MnistNet
from cnnjax.models._resnet import BasicBlock, GoogLeNet, Inception, ResNet, ResNet18, ResNet20
from cnnjax.models._summary import summary
from cnnjax.ops import checks

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "lenet5": LeNet5,
    "mnistnet": MnistNet,
    "alexnet": AlexNet,
    "vgg11": lambda **kw: VGG(depth=11, **kw),
    "vgg11_bn": lambda **kw: VGG(depth=11, batch_norm=True, **kw),
    "vgg16": lambda **kw: VGG(depth=16, **kw),
    "vgg16_bn": lambda **kw: VGG(depth=16, batch_norm=True, **kw),
    "resnet20": ResNet20,
    "resnet18": ResNet18,
    "nin": NiN,
    "googlenet": GoogLeNet,
}

#: The names accepted by :func:`get`.
NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get(name: str, **kwargs: Any) -> nn.Module:
    """Builds a model by name (case-insensitive; see ``NAMES``).

    Args:
      name: one of ``NAMES`` (``'lenet5'``, ``'mnistnet'``, ``'alexnet'``, ``'vgg11'``,
        ``'vgg11_bn'``, ``'vgg16'``, ``'vgg16_bn'``, ``'resnet20'``, ``'resnet18'``, ``'nin'``,
        ``'googlenet'``).
      **kwargs: model fields, e.g. ``num_classes=10, pool='gated'``.

    Example:
      >>> get('vgg11_bn', num_classes=10, pool='spectral').batch_norm
      True
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _REGISTRY:
        checks.fail("models.get", f"unknown model {name!r}; valid names are "
                                   f"{', '.join(repr(n) for n in NAMES)}.")
    return _REGISTRY[key](**kwargs)


__all__ = [
    "NAMES", "AlexNet", "BasicBlock", "ConvBN", "GoogLeNet", "Inception", "LeNet5", "MnistNet",
    "NiN", "PoolSpec", "ResNet", "ResNet18", "ResNet20", "VGG", "fold_batch_norms", "get",
    "summary",
]
