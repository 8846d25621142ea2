"""LeNet-5 as in the lectures' table, and the lectures' PyTorch MNIST example, as NNX models."""
from __future__ import annotations

import jax
from flax import nnx

from cnnjax.models.arch import (LENET5_CONVS, LENET5_HIDDEN, MNISTNET_CONVS, MNISTNET_DROPOUT,
                                 MNISTNET_HIDDEN, POOL_2x2)
from cnnjax.nnx._base import Module
from cnnjax.nnx._conv import Conv
from cnnjax.nnx._make_pool import PoolSpec, make_pool
from cnnjax.nnx.models._layers import (Flatten, LogSoftmax, ReLU, check_model_input, dense,
                                       flat_size, model_input_shape, shape_after)


class LeNet5(Module):
    """LeNet-5 exactly as the lectures' table (LeCun et al. 1998), the twin of
    :class:`cnnjax.models.LeNet5`.

    ``Conv(20, K=5, P=2, S=1) → ReLU → Pool(2/2) → Conv(50, K=5, P=2, S=1) → ReLU →
    Pool(2/2) → Flatten → Linear(→500) → ReLU → Linear(→num_classes)``. At ``28×28×1`` and 10
    classes: flatten 2450, 1,256,080 parameters. The first dense layer takes whatever the
    flatten gives at ``input_shape``.

    Args:
      num_classes: number of logits.
      pool: spec string (:func:`cnnjax.nnx.make_pool`) or module factory for both pooling
        sites.
      impl: convolution implementation (see :func:`cnnjax.conv`).
      input_shape: ``(H, W, C)`` of one example.
      rngs: ``params`` for the weights, ``'pool'`` for stochastic pools.

    Example:
      >>> model = LeNet5(num_classes=10, pool='lp:p=3', rngs=nnx.Rngs(0))
      >>> model(jnp.zeros((2, 28, 28, 1))).shape
      (2, 10)
    """

    def __init__(self, num_classes: int = 10, pool: PoolSpec = "max", impl: str = "auto", *,
                 input_shape: tuple[int, int, int] = (28, 28, 1), rngs: nnx.Rngs):
        shape = self.input_shape = model_input_shape(input_shape, "LeNet5")
        self.num_classes, self.pool, self.impl = num_classes, pool, impl
        self.convs, self.pools = nnx.List(), nnx.List()
        for features, k, padding in LENET5_CONVS:
            self.convs.append(Conv(shape[-1], features, k, padding=padding, impl=impl,
                                   rngs=rngs))
            shape = shape_after(self.convs[-1], shape)
            self.pools.append(make_pool(pool, *POOL_2x2, num_features=features, rngs=rngs))
            shape = shape_after(self.pools[-1], shape)
        self.relu, self.flatten = ReLU(), Flatten()
        self.hidden = dense(flat_size(shape), LENET5_HIDDEN, rngs)
        self.head = dense(LENET5_HIDDEN, num_classes, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = check_model_input(x, self.input_shape, "LeNet5")
        for conv, pool in zip(self.convs, self.pools):
            x = pool(self.relu(conv(x)))
        return self.head(self.relu(self.hidden(self.flatten(x))))


class MnistNet(Module):
    """The lectures' PyTorch MNIST example, the twin of :class:`cnnjax.models.MnistNet`.

    ``Conv(32, K=3) → ReLU → Conv(64, K=3) → ReLU → Pool(2/2) → Dropout(0.25) → Flatten →
    Linear(→128) → ReLU → Dropout(0.5) → Linear(→num_classes) → LogSoftmax``; 1,199,882
    parameters at ``28×28×1``. The first dropout drops whole channels (``nn.Dropout2d`` on
    feature maps), the second single features. Dropout draws from the ``'dropout'`` stream.

    Args:
      num_classes: number of outputs.
      pool: spec string or module factory for the pooling site.
      impl: convolution implementation.
      input_shape: ``(H, W, C)`` of one example.
      rngs: ``params``, ``'dropout'`` and ``'pool'`` streams.

    Example:
      >>> model = MnistNet(pool='avg', rngs=nnx.Rngs(0))
      >>> model.eval()
      >>> model(jnp.zeros((2, 28, 28, 1))).shape
      (2, 10)
    """

    def __init__(self, num_classes: int = 10, pool: PoolSpec = "max", impl: str = "auto", *,
                 input_shape: tuple[int, int, int] = (28, 28, 1), rngs: nnx.Rngs):
        shape = self.input_shape = model_input_shape(input_shape, "MnistNet")
        self.num_classes, self.pool, self.impl = num_classes, pool, impl
        self.convs = nnx.List()
        for features, k in MNISTNET_CONVS:
            self.convs.append(Conv(shape[-1], features, k, impl=impl, rngs=rngs))
            shape = shape_after(self.convs[-1], shape)
        self.pool_layer = make_pool(pool, *POOL_2x2, num_features=shape[-1], rngs=rngs)
        shape = shape_after(self.pool_layer, shape)
        self.dropout1 = nnx.Dropout(MNISTNET_DROPOUT[0], broadcast_dims=(1, 2), rngs=rngs)
        self.relu, self.flatten = ReLU(), Flatten()
        self.hidden = dense(flat_size(shape), MNISTNET_HIDDEN, rngs)
        self.dropout2 = nnx.Dropout(MNISTNET_DROPOUT[1], rngs=rngs)
        self.head = dense(MNISTNET_HIDDEN, num_classes, rngs)
        self.log_softmax = LogSoftmax()

    def __call__(self, x: jax.Array) -> jax.Array:
        x = check_model_input(x, self.input_shape, "MnistNet")
        for conv in self.convs:
            x = self.relu(conv(x))
        x = self.flatten(self.dropout1(self.pool_layer(x)))
        x = self.dropout2(self.relu(self.hidden(x)))
        return self.log_softmax(self.head(x))
