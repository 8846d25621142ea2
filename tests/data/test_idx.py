"""IDX reader/writer and the MNIST-style loading path, on small generated files."""
import gzip
import os
import struct

import numpy as np
import pytest

from cnnjax.data import (CorruptDatasetError, DatasetNotFoundError, fetch, load, read_idx,
                         write_idx)


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """IDX straight from the format's definition: 0, 0, type code, rank, big-endian dims."""
    head = struct.pack(">BBBB", 0, 0, code, array.ndim)
    head += b"".join(struct.pack(">I", d) for d in array.shape)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_file(path, payload: bytes):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)
    return path


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype,code", [(np.uint8, 0x08), (np.int16, 0x0B), (np.int32, 0x0C),
                                        (np.float32, 0x0D), (np.float64, 0x0E)])
def test_read_idx_matches_definition(tmp_path, rng, suffix, dtype, code):
    a = (rng.integers(0, 120, size=(5, 3, 4)) * (1 if dtype == np.uint8 else -1)).astype(dtype)
    path = write_file(tmp_path / f"a-idx3{suffix}", idx_bytes(a, code))
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_idx_roundtrip_and_bytes(tmp_path, rng, suffix):
    a = rng.integers(0, 256, size=(7, 2, 3)).astype(np.uint8)
    path = tmp_path / f"w{suffix}"
    write_idx(path, a)
    raw = gzip.open(path).read() if suffix else path.read_bytes()
    assert raw == idx_bytes(a, 0x08)
    np.testing.assert_array_equal(read_idx(path), a)


def test_wrong_magic(tmp_path):
    a = np.zeros((2, 3), np.uint8)
    bad = b"\x01" + idx_bytes(a, 0x08)[1:]
    with pytest.raises(CorruptDatasetError, match="magic number 0x01"):
        read_idx(write_file(tmp_path / "bad", bad))
    with pytest.raises(CorruptDatasetError, match="magic number"):
        read_idx(write_file(tmp_path / "badtype", idx_bytes(a, 0x08)[:2] + b"\x07\x02"))


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_truncated_and_trailing(tmp_path, suffix):
    raw = idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5), 0x08)
    with pytest.raises(CorruptDatasetError, match="truncated"):
        read_idx(write_file(tmp_path / f"short{suffix}", raw[:-1]))
    with pytest.raises(CorruptDatasetError, match="trailing data"):
        read_idx(write_file(tmp_path / f"long{suffix}", raw + b"\x00"))
    with pytest.raises(CorruptDatasetError, match="header"):
        read_idx(write_file(tmp_path / f"hdr{suffix}", raw[:6]))


def test_truncated_gzip_stream(tmp_path):
    write_idx(tmp_path / "x.gz", np.arange(4000, dtype=np.int32).reshape(40, 100))
    data = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDatasetError, match="not a complete gzip file"):
        read_idx(tmp_path / "cut.gz")


def test_expected_ndim(tmp_path):
    write_idx(tmp_path / "labels", np.zeros((4, 1), np.uint8))
    with pytest.raises(CorruptDatasetError, match="declares 2 dimensions, expected 1"):
        read_idx(tmp_path / "labels", expected_ndim=1)


def make_mnist_dir(directory, rng, n_train=30, n_test=12, *, gz=False, n_labels=None):
    os.makedirs(directory, exist_ok=True)
    suffix = ".gz" if gz else ""
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
        labels = rng.integers(0, 10, size=(n if n_labels is None else n_labels,)).astype(np.uint8)
        write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte{suffix}"), images)
        write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte{suffix}"), labels)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz,subdir", [(False, False), (True, True)])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_load_from_idx_dir(tmp_path, rng, gz, subdir, name):
    # Files in data_dir/<name> (where fetch puts them) or directly in data_dir.
    arrays = make_mnist_dir(tmp_path / name if subdir else tmp_path, rng, gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = load(name, split, data_dir=tmp_path)
        images, labels = arrays[prefix]
        assert ds.images.shape == (len(images), 28, 28, 1) and ds.images.dtype == np.uint8
        assert ds.labels.dtype == np.int32 and ds.num_classes == 10 and ds.name == name
        np.testing.assert_array_equal(ds.images[..., 0], images)
        np.testing.assert_array_equal(ds.labels, labels)


def test_load_from_cache_dir_env(tmp_path, rng, monkeypatch):
    arrays = make_mnist_dir(tmp_path / "mnist", rng, gz=True)
    monkeypatch.setenv("CNNJAX_DATA", str(tmp_path))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "no_tfds"))
    np.testing.assert_array_equal(load("mnist", "test").labels, arrays["t10k"][1])


def test_label_count_mismatch(tmp_path, rng):
    make_mnist_dir(tmp_path, rng, n_train=10, n_labels=9)
    with pytest.raises(CorruptDatasetError, match="has 10 images but .* has 9 labels"):
        load("mnist", "train", data_dir=tmp_path)


def test_labels_out_of_range(tmp_path, rng):
    make_mnist_dir(tmp_path, rng)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(12, 10, np.uint8))
    with pytest.raises(CorruptDatasetError, match="labels outside 0..9"):
        load("mnist", "test", data_dir=tmp_path)


def test_wrong_image_dims(tmp_path, rng):
    make_mnist_dir(tmp_path, rng)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((30, 27, 28), np.uint8))
    with pytest.raises(CorruptDatasetError, match="expected uint8 28x28"):
        load("mnist", "train", data_dir=tmp_path)


def test_corrupt_file_is_not_used(tmp_path, rng):
    make_mnist_dir(tmp_path, rng)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptDatasetError, match="truncated"):
        load("mnist", "train", data_dir=tmp_path)


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"cnnjax data fetch mnist"):
        load("mnist", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="IDX files"):
        load("fashion_mnist", "test", data_dir=tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"tfds build cifar10"):
        load("cifar10", data_dir=tmp_path)


def test_fetch_verifies_existing_files(tmp_path, rng):
    # Files with the wrong example counts are rejected, not silently accepted.
    make_mnist_dir(tmp_path, rng)
    with pytest.raises(CorruptDatasetError, match="expected 60000"):
        fetch("mnist", data_dir=tmp_path)


def test_fetch_rejects_tfds_only_names():
    with pytest.raises(ValueError, match="fetch: name must be 'mnist' or 'fashion_mnist'"):
        fetch("cifar10")
