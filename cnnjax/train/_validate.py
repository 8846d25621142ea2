"""``fit``'s checks of the data and the model before anything is trained.

A model with fewer logits than the dataset has classes trains without any error (an
out-of-range integer label just gives a zero one-hot row), and a model that cannot run on
the images fails deep inside a jitted init. Both are caught here, abstractly
(``jax.eval_shape``: no compilation, no FLOPs), with one sentence that says what to change.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def check_data(train: Any, test: Any) -> None:
    """Images ``[N, H, W, C]`` with ``N`` integer labels; the test images shaped alike."""
    for what, data in (("train_data", train), ("test_data", test)):
        if data is None:
            continue
        images, labels = np.asarray(data.images), np.asarray(data.labels)
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"fit: {what} must hold images [N, H, W, C] and N labels, got "
                             f"shapes {images.shape} and {labels.shape}.")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"fit: {what} labels must be integers, got dtype {labels.dtype}.")
    if test is not None and test.images.shape[1:] != train.images.shape[1:]:
        raise ValueError(f"fit: test_data images must have the training images' shape "
                         f"{tuple(train.images.shape[1:])}, got "
                         f"{tuple(test.images.shape[1:])}.")


def check_model(model: Any, train: Any, test: Any) -> dict:
    """Runs ``model`` abstractly on one image; checks its logits against the labels.

    Returns:
      The model's variables as ``jax.ShapeDtypeStruct`` s (``params``, ``batch_stats``).

    Raises:
      ValueError: the model cannot run on the images, does not return ``[N, K]`` logits,
        or some label (or ``num_classes``) of either split does not fit ``K``.
    """
    image_shape = tuple(int(n) for n in train.images.shape[1:])
    key = jax.random.PRNGKey(0)

    def init(x):
        return model.init_with_output({"params": key, "dropout": key, "pool": key}, x,
                                      train=False)

    try:
        logits, variables = jax.eval_shape(init, jax.ShapeDtypeStruct((2, *image_shape),
                                                                      jnp.float32))
    # The ops' and layers' own argument errors: the model does not fit these images.
    except (ValueError, TypeError) as e:
        raise ValueError(f"fit: the model cannot run on train_data's images of shape "
                         f"{image_shape} ({_first_line(e)}).") from e
    shape = tuple(getattr(logits, "shape", ()))
    if len(shape) != 2 or shape[0] != 2:
        raise ValueError(f"fit: the model must return logits [N, K] for N images, got shape "
                         f"{shape} for 2 images.")
    k = shape[1]
    for what, data in (("train_data", train), ("test_data", test)):
        if data is None or not len(data.labels):
            continue
        lo, hi = int(np.min(data.labels)), int(np.max(data.labels))
        if lo < 0:
            raise ValueError(f"fit: {what} labels must be >= 0 (-1 marks padding and would be "
                             f"ignored), got {lo}.")
        classes = max(hi + 1, int(data.num_classes))
        if classes > k:
            raise ValueError(f"fit: the model returns {k} logits but {what} has "
                             f"{int(data.num_classes)} classes (labels {lo}..{hi}); build the "
                             f"model with num_classes={classes}.")
    return variables


def check_checkpoint_seconds(value: Any, op: str) -> None:
    """``checkpoint_seconds`` must be a real number >= 0 (0: a checkpoint every epoch)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or not np.isfinite(value) or value < 0):
        raise ValueError(f"{op}: checkpoint_seconds must be a finite number >= 0, got "
                         f"{value!r}.")
