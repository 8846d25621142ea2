"""Shift consistency (Zhang 2019): does a network's prediction survive small translations?

Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019, measures how often a
classifier predicts the same class for two randomly shifted copies of one image. Pooling is
where a CNN loses (or keeps) that invariance, so the ablation records it for every run.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_OP = "shift_consistency"


def _shift_one(image: jax.Array, shift: jax.Array, pad: int) -> jax.Array:
    d = shift.shape[0]
    padded = jnp.pad(image, [(pad, pad)] * d + [(0, 0)] * (image.ndim - d))
    start = [pad - shift[i] for i in range(d)] + [jnp.zeros((), shift.dtype)] * (image.ndim - d)
    return jax.lax.dynamic_slice(padded, start, image.shape)


@functools.partial(jax.jit, static_argnames="pad")
def _shift_batch(images: jax.Array, shifts: jax.Array, pad: int) -> jax.Array:
    return jax.vmap(functools.partial(_shift_one, pad=pad))(images, shifts)


def shift_images(images: Any, shifts: Any) -> jax.Array:
    """Translates each image by whole pixels, filling with zeros (zero-pad, then crop).

    ``out[n, p, c] = images[n, p − δ_n, c]`` where ``p − δ_n`` lies inside the image, else 0:
    a positive ``δ`` moves the content towards larger indices (down, right).

    Args:
      images: ``[N, *spatial, C]`` with ``d`` spatial dims, any dtype (kept).
      shifts: integer ``[N, d]``, the shift ``δ_n`` of each image per spatial dim (H first).

    Returns:
      ``[N, *spatial, C]``, the shifted images.

    Example:
      >>> x = jnp.arange(9.0).reshape(1, 3, 3, 1)
      >>> shift_images(x, jnp.array([[1, 0]]))[0, :, :, 0]
      Array([[0., 0., 0.],
             [0., 1., 2.],
             [3., 4., 5.]], dtype=float32)
    """
    images = jnp.asarray(images)
    shifts = jnp.asarray(shifts)
    if images.ndim < 3:
        raise ValueError(f"shift_images: images must be [N, *spatial, C] with at least one "
                         f"spatial dim, got shape {images.shape}.")
    if not jnp.issubdtype(shifts.dtype, jnp.integer):
        raise TypeError(f"shift_images: shifts must be integers, got dtype {shifts.dtype}.")
    d = images.ndim - 2
    if shifts.shape != (images.shape[0], d):
        raise ValueError(f"shift_images: shifts must have shape [N, d] = "
                         f"{[images.shape[0], d]}, got {list(shifts.shape)}.")
    # Padding by the largest |δ| keeps every crop inside the padded image, whatever δ is.
    pad = int(np.max(np.abs(np.asarray(shifts)))) if shifts.size else 0
    return _shift_batch(images, shifts.astype(jnp.int32), pad)


def draw_shifts(key: jax.Array, n: int, d: int, *, max_shift: int, trials: int) -> np.ndarray:
    """The shifts :func:`shift_consistency` uses: ``[trials, 2, n, d]`` ints in
    ``{−max_shift … max_shift}``, uniform and independent, drawn from ``key``."""
    return np.asarray(jax.random.randint(key, (trials, 2, n, d), -max_shift, max_shift + 1,
                                         dtype=jnp.int32))


def shift_consistency(predict_fn: Callable[[jax.Array], jax.Array], images: Any, labels: Any,
                      *, max_shift: int = 2, trials: int = 5, key: jax.Array,
                      batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Zhang 2019 shift consistency and the accuracy on shifted images.

    For every test image ``x_n`` and trial ``t``, two shifts ``δ, δ' ∈ {−s … s}^d`` are
    drawn independently and uniformly from ``key`` (:func:`draw_shifts`); with ``ŷ(x)`` the
    predicted class (argmax of the scores),

    * ``consistency = (1/(N·T)) Σ_{n,t} [ŷ(shift(x_n, δ)) = ŷ(shift(x_n, δ'))]``,
    * ``shifted_accuracy = (1/(2·N·T)) Σ_{n,t} ([ŷ(shift(x_n, δ)) = y_n] +
      [ŷ(shift(x_n, δ')) = y_n])``.

    Shifts zero-pad and crop (:func:`shift_images`), so the image size is kept. A fixed key
    gives every network the same shifted images (a paired comparison).

    Args:
      predict_fn: ``[B, *spatial, C]`` images → class scores ``[..., B, K]``; leading axes
        (e.g. one per seed of vectorised networks) are kept in the results. Called on
        batches of at most ``batch_size`` images, always of the same shape (the last batch is
        padded), so a jitted function compiles once.
      images: ``[N, *spatial, C]`` (as ``predict_fn`` takes them, e.g. uint8).
      labels: ``[N]`` int class labels.
      max_shift: ``s >= 0``, the largest shift in pixels per spatial dim.
      trials: ``T >= 1`` shift pairs per image.
      key: the PRNG key of the shifts.
      batch_size: images per ``predict_fn`` call.

    Returns:
      ``(consistency, shifted_accuracy)``, float64 arrays of ``predict_fn``'s leading shape
      (0-d for a single network).

    Example:
      >>> c, a = shift_consistency(lambda x: model.apply(v, x, train=False), images, labels,
      ...                          key=jax.random.PRNGKey(0))  # doctest: +SKIP
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    for name, v, low in (("max_shift", max_shift, 0), ("trials", trials, 1),
                         ("batch_size", batch_size, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{_OP}: {name} must be an int, got {v!r}.")
        if v < low:
            raise ValueError(f"{_OP}: {name} must be >= {low}, got {v!r}.")
    if images.ndim < 3:
        raise ValueError(f"{_OP}: images must be [N, *spatial, C] with at least one spatial "
                         f"dim, got shape {images.shape}.")
    if labels.shape != images.shape[:1]:
        raise ValueError(f"{_OP}: labels must have shape [N] = [{images.shape[0]}], got "
                         f"{list(labels.shape)}.")
    n, d = images.shape[0], images.ndim - 2
    if n == 0:
        raise ValueError(f"{_OP}: images must hold at least one image, got shape "
                         f"{images.shape}.")
    shifts = draw_shifts(key, n, d, max_shift=max_shift, trials=trials)
    b = min(batch_size, n)
    same = correct = None
    for t in range(trials):
        for lo in range(0, n, b):
            hi = min(lo + b, n)
            preds = []
            for j in range(2):
                x = np.zeros((b, *images.shape[1:]), images.dtype)
                x[:hi - lo] = images[lo:hi]
                s = np.zeros((b, d), np.int32)
                s[:hi - lo] = shifts[t, j, lo:hi]
                # A fixed padding: one compiled shift for every batch.
                scores = predict_fn(_shift_batch(jnp.asarray(x), jnp.asarray(s), max_shift))
                preds.append(np.asarray(jnp.argmax(scores, axis=-1))[..., :hi - lo])
            y = labels[lo:hi]
            part_same = np.sum(preds[0] == preds[1], axis=-1)
            part_correct = np.sum(preds[0] == y, axis=-1) + np.sum(preds[1] == y, axis=-1)
            same = part_same if same is None else same + part_same
            correct = part_correct if correct is None else correct + part_correct
    return (np.asarray(same, np.float64) / (n * trials),
            np.asarray(correct, np.float64) / (2 * n * trials))


__all__ = ["draw_shifts", "shift_consistency", "shift_images"]
