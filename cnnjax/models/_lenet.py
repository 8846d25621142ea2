"""LeNet-5 as in the lectures' table and the lectures' PyTorch MNIST example."""
from __future__ import annotations

import flax.linen as nn
import jax

from cnnjax import nn as cnn
from cnnjax.models.arch import (LENET5_CONVS, LENET5_HIDDEN, MNISTNET_CONVS, MNISTNET_DROPOUT,
                                 MNISTNET_HIDDEN, POOL_2x2)
from cnnjax.models._layers import (Flatten, LogSoftmax, ReLU, check_input, dropout)


class LeNet5(nn.Module):
    """LeNet-5 exactly as the lectures' table (lectures, "Example: LeNet-5"; LeCun et al. 1998).

    ``Conv(20, K=5, P=2, S=1) → ReLU → Pool(2/2) → Conv(50, K=5, P=2, S=1) → ReLU →
    Pool(2/2) → Flatten → Linear(→500) → ReLU → Linear(→num_classes)``. At ``28×28×1`` and 10
    classes: flatten 2450, 1,256,080 parameters. Any input size whose pooled maps are non-empty
    works (the first dense layer takes whatever the flatten gives, e.g. 200 at ``8×8×1``).

    Attributes:
      num_classes: number of logits.
      pool: spec string (``cnnjax.nn.make_pool``) or module factory for both pooling sites.
      impl: convolution implementation (see :func:`cnnjax.conv`).

    Example:
      >>> model = LeNet5(num_classes=10, pool='lp:p=3')
      >>> x = jnp.zeros((2, 28, 28, 1))
      >>> variables = model.init(jax.random.key(0), x, train=False)
      >>> model.apply(variables, x, train=False).shape
      (2, 10)
    """

    num_classes: int = 10
    pool: cnn.PoolSpec = "max"
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = check_input(x, "LeNet5")
        for features, k, padding in LENET5_CONVS:
            x = cnn.Conv(features, k, padding=padding, impl=self.impl)(x)
            x = ReLU()(x)
            x = cnn.make_pool(self.pool, *POOL_2x2)(x, train=train)
        x = Flatten()(x)
        x = nn.Dense(LENET5_HIDDEN, dtype=x.dtype)(x)
        x = ReLU()(x)
        return nn.Dense(self.num_classes, dtype=x.dtype)(x)


class MnistNet(nn.Module):
    """The lectures' PyTorch MNIST example (lectures, "A toy example"; pytorch/examples mnist).

    ``Conv(32, K=3) → ReLU → Conv(64, K=3) → ReLU → Pool(2/2) → Dropout(0.25) → Flatten →
    Linear(→128) → ReLU → Dropout(0.5) → Linear(→num_classes) → LogSoftmax``; 1,199,882
    parameters at ``28×28×1`` (flatten 9216). Returns log-probabilities, which are valid
    logits (softmax of them is the same distribution).

    Dropout: the seed uses ``nn.Dropout2d`` for both. The first one acts on the pooled
    feature maps, so it is channel dropout here too (whole ``[H, W]`` maps dropped, mask
    broadcast over the spatial dims). The second acts on the 128 dense features, where
    ``Dropout2d`` has no channel structure (PyTorch warns about it and the current example uses
    ``nn.Dropout``): it is ordinary element-wise dropout here.

    Attributes:
      num_classes: number of outputs.
      pool: spec string or module factory for the pooling site.
      impl: convolution implementation.

    Example:
      >>> model = MnistNet(pool='avg')
      >>> x = jnp.zeros((2, 28, 28, 1))
      >>> model.apply(model.init(jax.random.key(0), x, train=False), x, train=False).shape
      (2, 10)
    """

    num_classes: int = 10
    pool: cnn.PoolSpec = "max"
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = check_input(x, "MnistNet")
        for features, k in MNISTNET_CONVS:
            x = cnn.Conv(features, k, impl=self.impl)(x)
            x = ReLU()(x)
        x = cnn.make_pool(self.pool, *POOL_2x2)(x, train=train)
        x = dropout(MNISTNET_DROPOUT[0], x, train=train, broadcast_dims=(1, 2))
        x = Flatten()(x)
        x = nn.Dense(MNISTNET_HIDDEN, dtype=x.dtype)(x)
        x = ReLU()(x)
        x = dropout(MNISTNET_DROPOUT[1], x, train=train)
        x = nn.Dense(self.num_classes, dtype=x.dtype)(x)
        return LogSoftmax()(x)
