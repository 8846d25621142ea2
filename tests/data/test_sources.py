"""The embedded digits, the tfds path (with tfds' mock data) and list_datasets."""
import numpy as np
import pytest

from cnnjax.data import DATASETS, MNIST_TRAIN_LABEL_COUNTS, DatasetNotFoundError, \
    list_datasets, load


@pytest.fixture(scope="module")
def digits():
    return load("digits", "train"), load("digits", "test")


def test_digits_shapes_and_dtypes(digits):
    train, test = digits
    assert train.images.shape == (1437, 8, 8, 1) and test.images.shape == (360, 8, 8, 1)
    for ds in digits:
        assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int32
        assert ds.num_classes == 10 and ds.name == "digits"
        assert ds.images.max() == 255 and ds.images.min() == 0


def test_digits_split_is_a_stratified_partition(digits):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    full = np.rint(bunch.images * 255 / 16).astype(np.uint8).reshape(len(bunch.target), -1)
    ref = sorted(zip(map(bytes, full), bunch.target.tolist()))
    got = sorted((bytes(x.ravel()), int(y)) for ds in digits for x, y in zip(*ds[:2]))
    assert got == ref  # train + test is exactly the data set, nothing lost or duplicated
    counts = np.bincount(bunch.target)
    test_counts = np.bincount(digits[1].labels, minlength=10)
    assert np.all(np.abs(test_counts - counts * 360 / len(bunch.target)) <= 1)


def test_digits_split_is_deterministic(digits):
    again = load("digits", "test")
    np.testing.assert_array_equal(again.images, digits[1].images)
    np.testing.assert_array_equal(again.labels, digits[1].labels)


def test_bad_arguments():
    with pytest.raises(ValueError, match="load: name must be one of .*got 'imagenet'"):
        load("imagenet")
    with pytest.raises(ValueError, match="load: split must be one of 'train', 'test', got 'val'"):
        load("digits", "val")


@pytest.mark.parametrize("name,shape,classes", [
    ("cifar10", (32, 32, 3), 10), ("cifar100", (32, 32, 3), 100),
    ("svhn_cropped", (32, 32, 3), 10), ("mnist", (28, 28, 1), 10),
    ("fashion_mnist", (28, 28, 1), 10)])
def test_tfds_path_with_mock_data(tmp_path, name, shape, classes):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = load(name, "test", data_dir=tmp_path)
        source = tfds.data_source(name, split="test")
        ref_images = np.stack([np.asarray(source[i]["image"]) for i in range(len(source))])
        ref_labels = np.asarray([int(source[i]["label"]) for i in range(len(source))])
    assert ds.images.shape == (6, *shape) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int32 and ds.num_classes == classes and ds.name == name
    # The mock generator is seeded, so a second source yields the same records.
    np.testing.assert_array_equal(ds.images, ref_images.reshape(ds.images.shape))
    np.testing.assert_array_equal(ds.labels, ref_labels)


def test_list_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNJAX_DATA", str(tmp_path))
    rows = {r.name: r for r in list_datasets(data_dir=tmp_path)}
    assert tuple(rows) == DATASETS
    assert rows["digits"].available and not rows["cifar10"].available
    assert rows["cifar100"].num_classes == 100 and rows["mnist"].image_shape == (28, 28, 1)


def test_fetched_mnist_if_present():
    # Runs where `cnnjax data fetch mnist` has been done (it was, on the dev machine).
    try:
        train = load("mnist", "train")
    except DatasetNotFoundError:
        pytest.skip("MNIST not fetched on this machine")
    assert train.images.shape == (60000, 28, 28, 1)
    assert tuple(np.bincount(train.labels, minlength=10)) == MNIST_TRAIN_LABEL_COUNTS
