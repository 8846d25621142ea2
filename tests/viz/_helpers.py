"""Shared bits of the viz tests: a tiny model built from cnnjax.nn, and PNG checks."""
from __future__ import annotations

from pathlib import Path

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np

from cnnjax import nn


class TinyNet(fnn.Module):
    """conv 4 (k3, p1) -> ReLU -> max pool 2 -> conv 6 (k3) -> ReLU -> avg pool 2 -> dense."""

    @fnn.compact
    def __call__(self, x, *, train):
        x = fnn.relu(nn.Conv(4, 3, padding=1)(x))
        x = nn.MaxPool(2)(x)
        x = fnn.relu(nn.Conv(6, 3)(x))
        x = nn.AvgPool(2)(x)
        return fnn.Dense(3)(x.reshape(x.shape[0], -1))


class TinyResNet(fnn.Module):
    """A residual block whose shortcut is a strided 1x1 conv: a branching model."""

    @fnn.compact
    def __call__(self, x, *, train):
        x = fnn.relu(nn.Conv(4, 3, padding=1)(x))
        y = fnn.relu(nn.Conv(4, 3, stride=2, padding=1)(x))
        y = nn.Conv(4, 3, padding=1)(y)
        x = fnn.relu(y + nn.Conv(4, 1, stride=2)(x))
        x = nn.GlobalAvgPool()(x)
        return fnn.Dense(3)(x.reshape(x.shape[0], -1))


def init(model, shape):
    x = jnp.zeros((1, *shape), jnp.float32)
    return model.init(jax.random.key(0), x, train=False)


def png_shape(path: Path) -> tuple[int, int]:
    """``(height, width)`` in pixels of a written, non-empty PNG."""
    import matplotlib.image

    path = Path(path)
    assert path.is_file() and path.stat().st_size > 0
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(path)
    # Not a blank canvas: something was drawn.
    assert np.ptp(img[..., :3]) > 0
    return img.shape[:2]
