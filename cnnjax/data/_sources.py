"""Dataset sources: the embedded digits, MNIST-style IDX files, and tensorflow-datasets.

Where each dataset comes from (first match wins):

=================  =====================================================================
``digits``         scikit-learn's embedded 8×8 digits (1797 images, 10 classes), no
                   download. Values 0..16 are scaled to 0..255 (``round(v * 255 / 16)``).
                   Fixed split: stratified, ``random_state=0``, **1437 train / 360 test**.
``mnist``,         1. ``tfds.data_source`` when tensorflow-datasets has the prepared data
``fashion_mnist``     (array_record format) in its data dir;
                   2. the four original IDX files, plain or ``.gz``
                      (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
                      ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``) in ``data_dir``
                      (or ``data_dir/<name>``) or the cache dir ``$CNNJAX_DATA/<name>``
                      (default ``~/.cache/cnnjax/<name>``), as written by :func:`fetch`.
``cifar10``,       ``tfds.data_source`` only (needs the prepared array_record data; no
``cifar100``,      TensorFlow needed to read it).
``svhn_cropped``
=================  =====================================================================
"""
from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from cnnjax.data._idx import CorruptDatasetError, read_idx


class Dataset(NamedTuple):
    """An in-memory image classification split.

    Attributes:
      images: uint8 ``[N, H, W, C]``.
      labels: int32 ``[N]``, in ``0 .. num_classes - 1``.
      num_classes: number of classes.
      name: dataset name, e.g. ``'digits'``.
    """
    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str


class DatasetInfo(NamedTuple):
    """One row of :func:`list_datasets`.

    ``available`` means the files are there *and* pass a cheap integrity check (IDX: header,
    size, gzip trailer; tfds: both splits open); ``problem`` says what failed for files that
    are present but damaged (``''`` otherwise); ``location`` says where the available copy
    is (a directory, the tfds data dir, or ``'embedded'``; ``''`` when not available).
    """
    name: str
    source: str
    available: bool
    num_classes: int
    image_shape: tuple[int, int, int]
    problem: str = ""
    location: str = ""


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not available locally; the message says how to obtain it."""


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_ALL_IDX_FILES = _IDX_FILES["train"] + _IDX_FILES["test"]
_IDX_COUNTS = {"train": 60000, "test": 10000}
# Per-class training label counts of the official MNIST split (LeCun et al.); Fashion-MNIST
# is balanced by construction (Xiao et al. 2017): 6000 per class in train, 1000 in test.
MNIST_TRAIN_LABEL_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
_LABEL_COUNTS = {
    ("mnist", "train"): MNIST_TRAIN_LABEL_COUNTS,
    ("mnist", "test"): (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
    ("fashion_mnist", "train"): (6000,) * 10,
    ("fashion_mnist", "test"): (1000,) * 10,
}
_MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/",
              "http://yann.lecun.com/exdb/mnist/"),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

_SPECS = {  # name -> (num_classes, image shape, source description)
    "digits": (10, (8, 8, 1), "scikit-learn (embedded)"),
    "mnist": (10, (28, 28, 1), "tfds or IDX files"),
    "fashion_mnist": (10, (28, 28, 1), "tfds or IDX files"),
    "cifar10": (10, (32, 32, 3), "tfds"),
    "cifar100": (100, (32, 32, 3), "tfds"),
    "svhn_cropped": (10, (32, 32, 3), "tfds"),
}
DATASETS = tuple(_SPECS)
SPLITS = ("train", "test")
DIGITS_TEST_SIZE = 360


def _check_name(name: str, op: str) -> None:
    if name not in _SPECS:
        raise ValueError(f"{op}: name must be one of {', '.join(map(repr, DATASETS))}, "
                         f"got {name!r}.")


def cache_dir(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """Where :func:`fetch` puts ``name``'s IDX files: ``<root>/<name>``.

    The root is ``data_dir`` if given, else ``$CNNJAX_DATA``, else ``~/.cache/cnnjax``.
    """
    if data_dir is not None:
        root = os.fspath(data_dir)
    else:
        root = os.environ.get("CNNJAX_DATA") or os.path.join(os.path.expanduser("~"),
                                                             ".cache", "cnnjax")
    return os.path.join(root, name)


# ------------------------------------------------------------------------------- digits


def _load_digits(split: str) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int32)
    # Stratified so both splits keep the class balance; random_state fixes the split forever.
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=DIGITS_TEST_SIZE,
                                           stratify=labels, random_state=0)
    idx = np.sort(train_idx if split == "train" else test_idx)
    return Dataset(images[idx], labels[idx], 10, "digits")


# ---------------------------------------------------------------------------------- tfds


class _UnpreparedVariantFilter(logging.Filter):
    """Drops tfds' warning about a dataset folder without ``dataset_info.json``: probing a
    dataset that was never prepared (what ``load`` and ``list_datasets`` do for every tfds
    name) is expected here, and the caller gets the reason in its own message."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "has no dataset_info.json" not in record.getMessage()


_ABSL_FILTER = _UnpreparedVariantFilter()


def _tfds_source(name: str, split: str, data_dir: str | None):
    """The tfds random-access source, or ``(None, reason)`` if tfds cannot provide it."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        return None, f"tensorflow-datasets is not installed ({e})"
    absl = logging.getLogger("absl")
    absl.addFilter(_ABSL_FILTER)
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir, download=False), ""
    # tfds reports "not prepared" through several exception types (AssertionError,
    # NotImplementedError for the tfrecord default, FileNotFoundError...), so any failure
    # here means "not available from tfds"; the reason is kept for the error message.
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    finally:
        absl.removeFilter(_ABSL_FILTER)


def _from_tfds_source(source, name: str) -> Dataset:
    n = len(source)
    num_classes, shape, _ = _SPECS[name]
    images = np.empty((n, *shape), np.uint8)
    labels = np.empty((n,), np.int32)
    # Per-record access: works for every tfds random-access source (mocked ones included).
    for i in range(n):
        ex = source[i]
        images[i] = np.asarray(ex["image"], np.uint8).reshape(shape)
        labels[i] = int(ex["label"])
    _check_labels(labels, num_classes, f"tfds {name}")
    return Dataset(images, labels, num_classes, name)


def _tfds_hint(name: str) -> str:
    return (f"prepare it with tensorflow-datasets in array_record format, e.g. "
            f"`tfds build {name} --file_format=array_record` (needs TensorFlow and internet), "
            f"or copy a prepared `{name}/` folder into $TFDS_DATA_DIR (default "
            f"~/tensorflow_datasets)")


# ----------------------------------------------------------------------------- IDX files


def _check_labels(labels: np.ndarray, num_classes: int, what: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise CorruptDatasetError(f"load: {what} has labels outside 0..{num_classes - 1} "
                                  f"(min {labels.min()}, max {labels.max()}).")


def _find_idx(directory: str, base: str) -> str | None:
    for candidate in (base, base + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    return None


def _idx_dir(name: str, data_dir: str | os.PathLike | None) -> str | None:
    """The directory holding all four IDX files: ``<root>/<name>``, or ``data_dir`` itself
    (files the user put there directly); ``None`` if neither has them."""
    candidates = [cache_dir(name, data_dir)]
    if data_dir is not None:
        candidates.append(os.fspath(data_dir))
    for directory in candidates:
        if all(_find_idx(directory, f) for f in _ALL_IDX_FILES):
            return directory
    return None


def _idx_header(base: str) -> tuple[bytes, int]:
    """The exact IDX header of one of the four MNIST-style files, and the file's size."""
    split = "train" if base.startswith("train") else "test"
    shape = (_IDX_COUNTS[split], 28, 28) if "images" in base else (_IDX_COUNTS[split],)
    header = bytes([0, 0, 0x08, len(shape)]) + np.asarray(shape, ">u4").tobytes()
    return header, len(header) + int(np.prod(shape))


def _idx_problem(path: str, base: str) -> str | None:
    """What is wrong with one IDX file, from its header and size alone, or ``None``.

    Plain files must have the exact size; ``.gz`` files must start with the gzip magic and
    end with the right uncompressed size (the ISIZE trailer), which a truncated download
    does not. Reading the whole file (``read_idx``) is left to loading.
    """
    header, size = _idx_header(base)
    try:
        if path.endswith(".gz"):
            with open(path, "rb") as f:
                magic = f.read(2)
                f.seek(0, os.SEEK_END)
                if f.tell() < 18:
                    return f"{path} is only {f.tell()} bytes"
                f.seek(-4, os.SEEK_END)
                isize = int.from_bytes(f.read(4), "little")
            if magic != b"\x1f\x8b":
                return f"{path} is not a gzip file"
            if isize != size % 2**32:
                return f"{path} decompresses to {isize} bytes, not {size} (truncated?)"
            with gzip.open(path, "rb") as f:
                got = f.read(len(header))
        else:
            if os.path.getsize(path) != size:
                return f"{path} has {os.path.getsize(path)} bytes, not {size}"
            with open(path, "rb") as f:
                got = f.read(len(header))
    except (OSError, EOFError, zlib.error) as e:
        return f"{path} cannot be read ({e})"
    if got != header:
        return f"{path} has the header {got.hex()}, not {header.hex()}"
    return None


def _idx_problems(directory: str) -> list[str]:
    """The quick check (:func:`_idx_problem`) of all four IDX files in ``directory``."""
    found = ((_find_idx(directory, base), base) for base in _ALL_IDX_FILES)
    return [p for p in (_idx_problem(path, base) for path, base in found) if p]


def _load_idx(name: str, split: str, directory: str) -> Dataset:
    image_file, label_file = (_find_idx(directory, f) for f in _IDX_FILES[split])
    images = read_idx(image_file, expected_ndim=3)
    labels = read_idx(label_file, expected_ndim=1)
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise CorruptDatasetError(f"load: {image_file} holds {images.dtype} images of shape "
                                  f"{images.shape[1:]}, expected uint8 28x28.")
    if labels.dtype != np.uint8:
        raise CorruptDatasetError(f"load: {label_file} holds {labels.dtype} labels, "
                                  "expected uint8.")
    if len(images) != len(labels):
        raise CorruptDatasetError(f"load: {image_file} has {len(images)} images but "
                                  f"{label_file} has {len(labels)} labels.")
    labels = labels.astype(np.int32)
    _check_labels(labels, 10, label_file)
    return Dataset(images[..., None], labels, 10, name)


# ---------------------------------------------------------------------------------- load


def load(name: str, split: str = "train", *, data_dir: str | os.PathLike | None = None
         ) -> Dataset:
    """Loads a whole split into memory as uint8 images and int32 labels.

    Args:
      name: one of ``'digits'``, ``'mnist'``, ``'fashion_mnist'``, ``'cifar10'``,
        ``'cifar100'``, ``'svhn_cropped'``.
      split: ``'train'`` or ``'test'``.
      data_dir: a data root: IDX files are looked for in ``data_dir/<name>`` and in
        ``data_dir`` itself (tried first for ``mnist``/``fashion_mnist``), and it is the
        tfds data dir. ``None``: tfds' default, then the cnnjax cache dir.

    Returns:
      ``Dataset(images [N, H, W, C] uint8, labels [N] int32, num_classes, name)``.
      ``digits``: 1437 train / 360 test images of 8×8×1; MNIST-style: 60000 / 10000 of
      28×28×1; CIFAR/SVHN: 32×32×3.

    Raises:
      ValueError: unknown ``name`` or ``split``.
      DatasetNotFoundError: the data are not available locally; the message gives the
        command that gets them (``cnnjax data fetch mnist``, or the tfds build command).
      CorruptDatasetError: files exist but are damaged (truncated, wrong magic/shape,
        label count mismatch).

    Example:
      >>> ds = load("digits", "test")
      >>> ds.images.shape, ds.labels.dtype, ds.num_classes
      ((360, 8, 8, 1), dtype('int32'), 10)
    """
    _check_name(name, "load")
    if split not in SPLITS:
        raise ValueError(f"load: split must be one of 'train', 'test', got {split!r}.")
    if name == "digits":
        return _load_digits(split)
    # An explicit data_dir is where the user put the data: its IDX files win over tfds.
    if name in _MIRRORS and data_dir is not None and _idx_dir(name, data_dir):
        return _load_idx(name, split, _idx_dir(name, data_dir))
    tfds_dir = None if data_dir is None else os.fspath(data_dir)
    source, reason = _tfds_source(name, split, tfds_dir)
    if source is not None:
        return _from_tfds_source(source, name)
    if name in _MIRRORS:
        directory = _idx_dir(name, data_dir)
        if directory is not None:
            return _load_idx(name, split, directory)
        directory = cache_dir(name, data_dir)
        fetch_hint = (f"run `cnnjax data fetch {name}` (or cnnjax.data.fetch({name!r}))"
                      if name == "mnist" else
                      f"put the four original IDX files (.gz or plain) there — no official "
                      f"Fashion-MNIST mirror is reachable without internet; with internet, "
                      f"`cnnjax data fetch {name}`")
        raise DatasetNotFoundError(
            f"load: dataset {name!r} is not available: tfds has no prepared copy ({reason}) "
            f"and {directory} lacks the IDX files {', '.join(_ALL_IDX_FILES)}; "
            f"{fetch_hint}.")
    raise DatasetNotFoundError(
        f"load: dataset {name!r} is not available locally ({reason}); {_tfds_hint(name)}.")


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[DatasetInfo]:
    """Every known dataset with its source and whether it is available locally.

    Present files are checked cheaply (IDX header and size, gzip trailer; tfds opens both
    splits); damaged ones are reported unavailable with the ``problem`` found. ``load`` and
    ``fetch`` read and verify the data in full.

    Example:
      >>> [d.name for d in list_datasets() if d.available][:1]
      ['digits']
    """
    rows = []
    tfds_dir = None if data_dir is None else os.fspath(data_dir)
    for name, (num_classes, shape, source) in _SPECS.items():
        available, problem = name == "digits", ""
        location = "embedded" if available else ""
        directory = _idx_dir(name, data_dir) if name in _MIRRORS else None
        if directory is not None:
            problems = _idx_problems(directory)
            available, problem = not problems, "; ".join(problems)
            location = directory if available else ""
        if not available and name != "digits":
            # tfds checks its own files' metadata when it opens a split.
            available = all(_tfds_source(name, split, tfds_dir)[0] is not None
                            for split in SPLITS)
            if available:
                problem, location = "", f"tfds ({tfds_dir or 'its default data dir'})"
        rows.append(DatasetInfo(name, source, available, num_classes, shape, problem,
                                location))
    return rows


def as_dataset(data: Dataset | Sequence, what: str) -> Dataset:
    """Accepts a :class:`Dataset` or an ``(images, labels)`` pair (uint8 images)."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, Sequence) and len(data) == 2:
        images, labels = (np.asarray(a) for a in data)
        return Dataset(images, labels.astype(np.int32), int(labels.max()) + 1, what)
    raise TypeError(f"fit: {what} must be a cnnjax.data.Dataset or an (images, labels) pair, "
                    f"got {type(data).__name__}.")
