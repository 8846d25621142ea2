"""The model zoo as ``flax.nnx`` models in which pooling is a plug.

The twins of :mod:`cnnjax.models`' ``LeNet5``, ``MnistNet``, ``ResNet`` (``ResNet20``) and
``VGG``: the same architectures (read from the same constants), parameter counts and ``pool``
argument — a spec string for :func:`cnnjax.nnx.make_pool` (``'max'``, ``'lp:p=3'``,
``'mixed:learn'``, ...) or a module factory. NNX builds parameters eagerly, so a model takes
``input_shape=(H, W, C)`` (default: its native size, ``28×28×1`` for LeNet5/MnistNet,
``32×32×3`` for ResNet/VGG) and ``rngs`` (an ``nnx.Rngs``: ``params``, ``'dropout'`` and
``'pool'`` streams, or one seed for all). Call ``model(x)`` on ``[N, H, W, C]`` images for
logits ``[N, num_classes]``; a new model is in training mode, ``model.eval()`` switches
dropout, BatchNorm and stochastic pools to inference. :func:`cnnjax.models.summary` prints
their layer tables too.

``get(name, *, rngs, **kwargs)`` builds one by name (``NAMES``);
:func:`load_linen_variables` copies a linen twin's variables into one.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flax import nnx

from cnnjax.nnx.models._classic import VGG
from cnnjax.nnx.models._layers import ConvBN, Flatten, LogSoftmax, ReLU
from cnnjax.nnx.models._lenet import LeNet5, MnistNet
from cnnjax.nnx.models._load import load_linen_variables
from cnnjax.nnx.models._resnet import BasicBlock, ResNet, ResNet20
from cnnjax.ops import checks

_REGISTRY: dict[str, Callable[..., nnx.Module]] = {
    "lenet5": LeNet5,
    "mnistnet": MnistNet,
    "vgg11": functools.partial(VGG, depth=11),
    "vgg11_bn": functools.partial(VGG, depth=11, batch_norm=True),
    "vgg16": functools.partial(VGG, depth=16),
    "vgg16_bn": functools.partial(VGG, depth=16, batch_norm=True),
    "resnet20": ResNet20,
}

#: The names accepted by :func:`get` (those of :data:`cnnjax.models.NAMES` in these families).
NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get(name: str, *, rngs: nnx.Rngs, **kwargs: Any) -> nnx.Module:
    """Builds an NNX model by name (case-insensitive; see ``NAMES``).

    Args:
      name: one of ``NAMES`` (``'lenet5'``, ``'mnistnet'``, ``'vgg11'``, ``'vgg11_bn'``,
        ``'vgg16'``, ``'vgg16_bn'``, ``'resnet20'``).
      rngs: the ``nnx.Rngs`` for parameters, dropout and stochastic pools.
      **kwargs: constructor arguments, e.g. ``num_classes=10, pool='gated'``.

    Example:
      >>> get('vgg11_bn', num_classes=10, pool='spectral', rngs=nnx.Rngs(0)).batch_norm
      True
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _REGISTRY:
        checks.fail("nnx.models.get", f"unknown model {name!r}; valid names are "
                                       f"{', '.join(repr(n) for n in NAMES)}.")
    return _REGISTRY[key](rngs=rngs, **kwargs)


__all__ = ["NAMES", "VGG", "BasicBlock", "ConvBN", "Flatten", "LeNet5", "LogSoftmax", "MnistNet",
           "ResNet", "ResNet20", "ReLU", "get", "load_linen_variables"]
