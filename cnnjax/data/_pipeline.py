"""Batching (host side), normalisation and augmentation (device side, jit-compatible).

* Shuffling depends only on ``(seed, epoch)`` — ``np.random.default_rng([seed, epoch])`` —
  so a resumed run sees exactly the batches an uninterrupted one would.
* Training batches drop the remainder (static shapes: one compiled step). Evaluation
  batches keep every example: the last batch is padded to full size with label ``-1``,
  which losses and accuracies in :mod:`cnnjax.train` treat as "masked out".
* Normalisation is per channel, ``(x / 255 - mean) / std`` with the mean and std of the
  *training* split (:func:`normalization_stats`), computed once from the uint8 data — the
  usual PyTorch/torchvision practice (e.g. MNIST's 0.1307 / 0.3081). It runs on device
  inside the jitted step, so only uint8 images cross the host-device boundary.
* Augmentation for 32×32 sets (:func:`random_crop_flip`): random crop with 4-pixel zero
  padding and a horizontal flip with probability 1/2 (He et al. 2016, CIFAR recipe), a
  pure function of ``(key, images)``.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

PAD_LABEL = -1


def epoch_permutation(n: int, *, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``n`` training examples in ``epoch``: a function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(n: int, batch_size: int, *, seed: int | None = None, epoch: int = 0,
                  drop_remainder: bool = False, pad: bool = False) -> list[np.ndarray]:
    """Index arrays of one epoch's batches.

    Args:
      n: number of examples.
      batch_size: examples per batch.
      seed: shuffle with :func:`epoch_permutation` when given; ``None`` keeps the order.
      epoch: epoch number mixed into the shuffle.
      drop_remainder: drop the last incomplete batch (training).
      pad: pad the last incomplete batch to ``batch_size`` with index ``-1`` (evaluation).

    Returns:
      ``ceil(n / batch_size)`` arrays (``floor`` with ``drop_remainder``) of int64 indices.
    """
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}.")
    order = np.arange(n) if seed is None else epoch_permutation(n, seed=seed, epoch=epoch)
    stop = (n // batch_size) * batch_size if drop_remainder else n
    out = [order[i:i + batch_size] for i in range(0, stop, batch_size)]
    if pad and out and len(out[-1]) < batch_size:
        out[-1] = np.concatenate([out[-1], np.full(batch_size - len(out[-1]), -1, np.int64)])
    return out


def take(images: np.ndarray, labels: np.ndarray, idx: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray]:
    """Gathers one batch; index ``-1`` gives a zero image with label ``PAD_LABEL``."""
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    x = images[safe]
    y = np.where(valid, labels[safe], PAD_LABEL).astype(np.int32)
    if not valid.all():
        x = np.where(valid.reshape((-1,) + (1,) * (x.ndim - 1)), x, np.zeros_like(x))
    return x, y


def batches(data, batch_size: int, *, seed: int | None = None, epoch: int = 0,
            drop_remainder: bool = False, pad: bool = False
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterates over ``(images, labels)`` batches of a dataset, on the host.

    Args:
      data: a :class:`~cnnjax.data.Dataset` or ``(images, labels)``.
      batch_size: examples per batch.
      seed: if given, shuffle per epoch by ``(seed, epoch)``.
      epoch: the epoch number.
      drop_remainder: drop the last incomplete batch (use for training).
      pad: pad the last batch to ``batch_size``; padded rows have label ``-1``.

    Yields:
      ``images`` ``[B, H, W, C]`` (the dataset's dtype) and ``labels`` int32 ``[B]``.

    Example:
      >>> from cnnjax.data import load
      >>> ds = load("digits", "test")
      >>> [x.shape[0] for x, _ in batches(ds, 128, pad=True)]
      [128, 128, 128]
    """
    images, labels = data[0], data[1]
    for idx in batch_indices(len(labels), batch_size, seed=seed, epoch=epoch,
                             drop_remainder=drop_remainder, pad=pad):
        yield take(images, labels, idx)


def normalization_stats(images: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 images scaled to [0, 1], as float32 ``[C]``.

    A constant channel gets std 1 (so normalising never divides by zero); float
    round-off leaves its computed std at ~1e-17, hence the threshold rather than ``== 0``.
    """
    x = np.asarray(images)
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
    mean, std = flat.mean(0), flat.std(0)
    return mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)


def normalize(images: ArrayLike, mean: ArrayLike, std: ArrayLike) -> jax.Array:
    """``(images / 255 - mean) / std`` per channel, as float32 (jit-compatible).

    Args:
      images: ``[N, H, W, C]`` uint8 (or any real dtype on the 0..255 scale).
      mean: ``[C]`` channel means on the [0, 1] scale.
      std: ``[C]`` channel stds on the [0, 1] scale.

    Returns:
      float32 ``[N, H, W, C]``.
    """
    x = jnp.asarray(images).astype(jnp.float32) / 255.0
    # Explicit [1, ..., 1, C] shape: callers may run with rank promotion disabled.
    shape = (1,) * (x.ndim - 1) + (-1,)
    mean = jnp.asarray(mean, jnp.float32).reshape(shape)
    return (x - mean) / jnp.asarray(std, jnp.float32).reshape(shape)


# Jitted as a whole: called eagerly it would otherwise dispatch (and compile) op by op.
@functools.partial(jax.jit, static_argnames=("padding", "flip"))
def random_crop_flip(key: jax.Array, images: ArrayLike, *, padding: int = 4,
                     flip: bool = True) -> jax.Array:
    """Random crop after zero padding, and a random horizontal flip, per example.

    Pads ``[N, H, W, C]`` with ``padding`` zeros on each side of H and W, takes an
    ``H × W`` crop at an offset drawn uniformly from ``0 .. 2·padding`` per axis, and
    mirrors left-right with probability 1/2 when ``flip``. Shapes are static, so it runs
    inside ``jax.jit``; the result is a pure function of ``(key, images)``.

    Args:
      key: a PRNG key.
      images: ``[N, H, W, C]``, any dtype (kept).
      padding: pixels of zero padding per side (4 for CIFAR).
      flip: also flip horizontally.

    Returns:
      ``[N, H, W, C]`` with the dtype of ``images``.

    Example:
      >>> x = jnp.zeros((8, 32, 32, 3), jnp.uint8)
      >>> random_crop_flip(jax.random.key(0), x).shape
      (8, 32, 32, 3)
    """
    x = jnp.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"random_crop_flip: images must be [N, H, W, C], got shape {x.shape}.")
    if padding < 0:
        raise ValueError(f"random_crop_flip: padding must be >= 0, got {padding}.")
    n, h, w, c = x.shape
    k_crop, k_flip = jax.random.split(key)
    padded = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    offsets = jax.random.randint(k_crop, (n, 2), 0, 2 * padding + 1, dtype=jnp.int32)
    zero = jnp.zeros((), jnp.int32)

    def crop(img, off):
        return jax.lax.dynamic_slice(img, (off[0], off[1], zero), (h, w, c))

    out = jax.vmap(crop)(padded, offsets)
    if flip:
        mirror = jax.random.bernoulli(k_flip, 0.5, (n, 1, 1, 1))
        out = jnp.where(mirror, out[:, :, ::-1, :], out)
    return out
