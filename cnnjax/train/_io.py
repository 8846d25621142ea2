"""Reusing a trained model: :func:`load` a ``fit`` workdir, :func:`predict`, :func:`evaluate`.

Every checkpoint ``fit`` writes records, next to the run's history and fingerprint, what is
needed to use the weights without the training script: the model's class and fields (the
pool spec among them), the training set's name, image shape and classes, and the
normalisation ``(mean, std)``. :func:`load` rebuilds the model from that record and reads
the parameters and BatchNorm statistics onto the host as NumPy arrays, so a checkpoint
written on any number of devices (or hosts) loads on one, without the training mesh.

Example:
  >>> from cnnjax import data, train
  >>> run = train.load("runs/spectral")  # doctest: +SKIP
  >>> train.predict(run.model, run.variables, data.load("digits", "test").images[:4],
  ...               normalization=run.normalization, output="classes")  # doctest: +SKIP
  array([0, 1, 2, 3], dtype=int32)
  >>> train.evaluate(run.model, run.variables, data.load("digits", "test"),
  ...                normalization=run.normalization)  # doctest: +SKIP
  {'loss': 0.21, 'accuracy': 0.94, 'count': 540}
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

_JSON_SCALARS = (type(None), bool, int, float, str)


class TrainedModel(NamedTuple):
    """What :func:`load` returns.

    Attributes:
      model: the flax module, rebuilt from the checkpoint's record.
      variables: ``{'params': ..., 'batch_stats': ...}`` as NumPy arrays (host memory).
      normalization: ``(mean, std)`` float32 ``[C]``, as ``fit`` normalised the inputs.
      history: ``fit``'s history up to the loaded epoch.
      dataset: the training set's name (``Dataset.name``).
      image_shape: one training image's shape ``(H, W, C)``.
      epoch: the epoch the checkpoint was written after.
    """
    model: Any
    variables: dict
    normalization: tuple[np.ndarray, np.ndarray]
    history: list[dict]
    dataset: str
    image_shape: tuple[int, ...]
    epoch: int


def _encode(value: Any) -> Any:
    """A JSON value for a model field, or raises ``TypeError`` if it has none."""
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (tuple, list)):
        # Model fields hold tuples (hashable modules): every list is read back as a tuple.
        return [_encode(v) for v in value]
    raise TypeError(type(value).__name__)


def _decode(value: Any) -> Any:
    return tuple(_decode(v) for v in value) if isinstance(value, list) else value


def model_record(model: Any) -> dict | None:
    """``{'class': 'module.Qualname', 'fields': {...}}``, or ``None`` if not rebuildable.

    A model is rebuildable when it is a dataclass (every flax module is) whose fields are
    JSON scalars or tuples of them — every zoo model, its pool given as a spec string.
    """
    if not dataclasses.is_dataclass(model):
        return None
    fields = {}
    for f in dataclasses.fields(model):
        if f.name in ("parent", "name") or not f.init:
            continue
        try:
            fields[f.name] = _encode(getattr(model, f.name))
        except TypeError:
            return None
    cls = type(model)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "fields": fields}


def saved_model(model: Any, train: Any, mean: np.ndarray, std: np.ndarray) -> dict:
    """The checkpoint metadata :func:`load` reads (``fit`` stores it with every epoch)."""
    return {"model": model_record(model), "dataset": str(train.name),
            "num_classes": int(train.num_classes),
            "image_shape": [int(n) for n in train.images.shape[1:]],
            "normalization": {"mean": [float(v) for v in np.asarray(mean).ravel()],
                              "std": [float(v) for v in np.asarray(std).ravel()]}}


def _rebuild(record: dict, workdir: str) -> Any:
    import flax.linen as nn

    path = record["class"]
    module_name, _, qualname = path.rpartition(".")
    hint = "pass model= (the module the run trained) to load it"
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise ValueError(f"load: the model class {path} recorded in {workdir} cannot be "
                         f"imported here; {hint}.") from None
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ValueError(f"load: the recorded model {path} in {workdir} must be a flax "
                         f"module class, got {obj!r}; {hint}.")
    return obj(**{k: _decode(v) for k, v in record["fields"].items()})


def load(workdir: str | os.PathLike, *, model: Any = None,
         epoch: int | None = None) -> TrainedModel:
    """Loads the model a ``fit`` run trained in ``workdir``, ready for inference.

    Reads the newest intact checkpoint (or ``epoch``'s), rebuilds the model from the
    recorded class and fields, and returns its variables on the host: nothing is placed on
    a device, so it works on any device count.

    Args:
      workdir: a ``fit`` ``workdir`` (``cnnjax train --workdir``).
      model: the module to use instead of the recorded one (needed when the run's model
        has fields that are not JSON values, e.g. a pool given as a function).
      epoch: which saved epoch (default: the newest intact one).

    Returns:
      :class:`TrainedModel` ``(model, variables, normalization, history, dataset,
      image_shape, epoch)``.

    Raises:
      ValueError: ``workdir`` holds no ``fit`` checkpoint, none intact, not ``epoch``,
        or one written before cnnjax recorded the model (then pass ``model=``).

    Example:
      >>> run = load("runs/spectral")  # doctest: +SKIP
      >>> run.model.pool, run.history[-1]["test_accuracy"]  # doctest: +SKIP
      ('spectral', 0.95)
    """
    from cnnjax.train._checkpoint import Checkpointer

    directory = os.path.abspath(os.fspath(workdir))
    if not os.path.isdir(directory):
        raise ValueError(f"load: workdir must be a directory holding fit checkpoints, got "
                         f"{os.fspath(workdir)!r} (no such directory).")
    if not any(n.isdigit() and os.path.isdir(os.path.join(directory, n))
               for n in os.listdir(directory)):
        # Checked before orbax opens the directory (it would create and tidy files there).
        raise ValueError(f"load: workdir must hold fit checkpoints, got "
                         f"{os.fspath(workdir)!r} (none found).")
    ckpt = Checkpointer(directory)
    try:
        epochs = ckpt.epochs()
        if not epochs:
            raise ValueError(f"load: workdir must hold fit checkpoints, got "
                             f"{os.fspath(workdir)!r} (none found).")
        if epoch is not None and epoch not in epochs:
            raise ValueError(f"load: epoch must be one of the saved epochs "
                             f"{', '.join(map(str, epochs))}, got {epoch!r}.")
        variables, meta, found = ckpt.read_variables(
            [epoch] if epoch is not None else list(reversed(epochs)))
    finally:
        ckpt.close()
    if "normalization" not in meta or (model is None and meta.get("model") is None):
        raise ValueError(f"load: the checkpoint in {directory} does not record its model "
                         f"(written by an older cnnjax or with a model whose fields are not "
                         f"JSON values); pass model= to load it, got model={model!r}.")
    if model is None:
        model = _rebuild(meta["model"], directory)
    norm = meta["normalization"]
    normalization = (np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32))
    return TrainedModel(model, variables, normalization, list(meta["history"]),
                        meta["dataset"], tuple(meta["image_shape"]), found)


@functools.lru_cache(maxsize=16)
def _apply_fn(model):
    import jax

    from cnnjax.data import normalize

    def apply(variables, images, mean, std):
        return model.apply(variables, normalize(images, mean, std), train=False)
    return jax.jit(apply)


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def _check_batch_size(batch_size: Any, op: str) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or \
            batch_size < 1:
        raise ValueError(f"{op}: batch_size must be a positive int, got {batch_size!r}.")
    return int(batch_size)


def _padded_logits(model, variables, images: np.ndarray, normalization, batch_size: int,
                   op: str) -> np.ndarray:
    """Logits of every image, in fixed-size batches (the last one padded, so one compile)."""
    import jax

    if normalization is None or len(normalization) != 2:
        raise ValueError(f"{op}: normalization must be the (mean, std) the model was trained "
                         f"with (load(...).normalization), got {normalization!r}.")
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"{op}: images must be [N, H, W, C], got shape {images.shape}.")
    mean, std = (np.asarray(a, np.float32) for a in normalization)
    apply = _apply_fn(model)
    variables = {k: v for k, v in variables.items() if k in ("params", "batch_stats")}
    out = []
    for lo, hi in _batches(len(images), batch_size):
        batch = images[lo:hi]
        if hi - lo < batch_size and lo > 0:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - (hi - lo), 0)])
        out.append(np.asarray(jax.device_get(apply(variables, batch, mean, std)))[:hi - lo])
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def predict(model: Any, variables: dict, images: Any, *,
            normalization: Sequence[Any] | None, batch_size: int = 256,
            output: str = "logits") -> np.ndarray:
    """The model's outputs on ``images``, in inference mode (``train=False``).

    Args:
      model: the flax module (``load(...).model``).
      variables: its ``{'params', 'batch_stats'}`` (``load(...).variables``).
      images: uint8 ``[N, H, W, C]`` on the 0..255 scale, like the training images.
      normalization: the ``(mean, std)`` the model was trained with
        (``load(...).normalization``, ``FitResult.normalization``).
      batch_size: images per forward pass.
      output: ``'logits'`` (float32 ``[N, K]``) or ``'classes'`` (int32 ``[N]``,
        ``argmax`` of the logits).

    Returns:
      NumPy logits ``[N, K]`` or class indices ``[N]``.

    Example:
      >>> predict(run.model, run.variables, images, normalization=run.normalization,
      ...         output="classes")  # doctest: +SKIP
    """
    if output not in ("logits", "classes"):
        raise ValueError(f"predict: output must be 'logits' or 'classes', got {output!r}.")
    batch_size = _check_batch_size(batch_size, "predict")
    logits = _padded_logits(model, variables, images, normalization, batch_size, "predict")
    return logits if output == "logits" else np.argmax(logits, axis=-1).astype(np.int32)


def evaluate(model: Any, variables: dict, dataset: Any, *,
             normalization: Sequence[Any] | None, batch_size: int = 256) -> dict:
    """Mean cross-entropy and accuracy of the model on a dataset, as ``fit`` reports them.

    The loss is softmax cross-entropy on the logits (:func:`cnnjax.train.cross_entropy`),
    averaged over every example; sums are accumulated in float64 on the host.

    Args:
      model, variables, normalization, batch_size: as in :func:`predict`.
      dataset: a :class:`cnnjax.data.Dataset` or ``(images, labels)``.

    Returns:
      ``{'loss': float, 'accuracy': float, 'count': int}``.

    Example:
      >>> evaluate(run.model, run.variables, load("digits", "test"),
      ...          normalization=run.normalization)  # doctest: +SKIP
      {'loss': 0.21, 'accuracy': 0.94, 'count': 540}
    """
    import jax.numpy as jnp

    from cnnjax.data import as_dataset
    from cnnjax.train._state import cross_entropy

    batch_size = _check_batch_size(batch_size, "evaluate")
    labels = np.asarray(dataset.labels if hasattr(dataset, "labels") else dataset[1])
    if labels.size == 0:
        raise ValueError("evaluate: dataset must hold at least one example, got 0.")
    data = as_dataset(dataset, "dataset")
    labels = np.asarray(data.labels)
    if labels.ndim != 1 or len(labels) != len(data.images):
        raise ValueError(f"evaluate: dataset must hold N images and N labels, got "
                         f"{len(data.images)} images and labels of shape {labels.shape}.")
    logits = _padded_logits(model, variables, data.images, normalization, batch_size,
                            "evaluate")
    if labels.min() < 0 or labels.max() >= logits.shape[-1]:
        raise ValueError(f"evaluate: dataset labels must be in 0..{logits.shape[-1] - 1} (the "
                         f"model's {logits.shape[-1]} logits), got {labels.min()}..{labels.max()}.")
    loss = correct = 0.0
    for lo, hi in _batches(len(labels), batch_size):
        s, c, _ = cross_entropy(jnp.asarray(logits[lo:hi]), jnp.asarray(labels[lo:hi]))
        loss += float(s)
        correct += float(c)
    return {"loss": loss / len(labels), "accuracy": correct / len(labels),
            "count": int(len(labels))}
