"""Tiny flax models for the training tests (used in-process and by the worker script).

They exercise every path ``fit`` supports: a ``batch_stats`` collection (flax BatchNorm),
the ``'dropout'`` stream and the ``'pool'`` stream (multiplicative noise standing in for a
stochastic pool), while compiling in well under a second.
"""
import flax.linen as nn
import jax
import numpy as np

from cnnjax.data import Dataset, load
from cnnjax.models import ConvBN
from cnnjax.nn import make_pool


class TinyBN(nn.Module):
    """conv 3x3 (4, no bias) -> BN -> ReLU -> dropout -> 'pool' noise -> max pool -> dense."""
    num_classes: int = 10

    @nn.compact
    def __call__(self, x, *, train):
        # No conv bias before BN: its true gradient is 0, and Adam would turn the round-off
        # in it into full-size random steps that differ between device layouts.
        x = nn.Conv(4, (3, 3), use_bias=False)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.relu(x)
        x = nn.Dropout(0.1, deterministic=not train)(x)
        if train:
            noise = jax.random.uniform(self.make_rng("pool"), x.shape, x.dtype)
            x = x * (0.9 + 0.2 * noise)
        x = nn.max_pool(x, (2, 2), (2, 2))
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


class TinyNoBN(nn.Module):
    """A model without ``batch_stats`` (empty collection path)."""
    num_classes: int = 10

    @nn.compact
    def __call__(self, x, *, train):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


class TinyPool(nn.Module):
    """conv 3x3 (4) -> ReLU -> a cnnjax pool from its spec -> dense: ``pool`` is a field."""
    num_classes: int = 10
    pool: str = "max"

    @nn.compact
    def __call__(self, x, *, train):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        x = make_pool(self.pool, 2, 2)(x, train=train)
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


class ConvBNNet(nn.Module):
    """Two cnnjax ConvBN blocks with a chosen conv ``impl``, max pool, global average, dense."""
    impl: str = "auto"

    @nn.compact
    def __call__(self, x, *, train):
        x = nn.relu(ConvBN(8, 3, padding=1, impl=self.impl)(x, train=train))
        x = make_pool("max", 2, 2)(x, train=train)
        x = nn.relu(ConvBN(8, 3, padding=1, impl=self.impl)(x, train=train))
        return nn.Dense(10)(x.mean(axis=(1, 2)))


class InputBN(nn.Module):
    """BatchNorm straight on the input: its batch statistics are checkable by hand."""

    @nn.compact
    def __call__(self, x, *, train):
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


def digits_subset(n_train=320, n_test=100):
    """The first examples of the digits splits: a few steps per epoch."""
    tr, te = load("digits"), load("digits", "test")
    return (Dataset(tr.images[:n_train], tr.labels[:n_train], 10, "digits"),
            Dataset(te.images[:n_test], te.labels[:n_test], 10, "digits"))


def flat_state(state):
    """``{path: np.ndarray}`` of params and batch_stats, for comparisons."""
    leaves = jax.tree_util.tree_leaves_with_path({"params": state.params,
                                                  "batch_stats": state.batch_stats})
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves}
