"""Datasets for cnnjax: loading, fetching, batching, normalisation and augmentation.

``load(name, split, *, data_dir=None)`` returns a :class:`Dataset` of uint8 images
``[N, H, W, C]`` and int32 labels ``[N]``; see :mod:`cnnjax.data._sources` for where each
dataset comes from. ``fetch('mnist')`` downloads and verifies the MNIST IDX files;
``list_datasets()`` tells what is available locally. Batching happens on the host;
normalisation and augmentation are jit-compatible functions run on device.
"""
from cnnjax.data._fetch import fetch
from cnnjax.data._idx import CorruptDatasetError, read_idx, write_idx
from cnnjax.data._pipeline import (
    PAD_LABEL,
    batch_indices,
    batches,
    epoch_permutation,
    normalization_stats,
    normalize,
    random_crop_flip,
    take,
)
from cnnjax.data._sources import (
    DATASETS,
    MNIST_TRAIN_LABEL_COUNTS,
    Dataset,
    DatasetInfo,
    DatasetNotFoundError,
    as_dataset,
    cache_dir,
    list_datasets,
    load,
)

__all__ = [
    "CorruptDatasetError", "DATASETS", "Dataset", "DatasetInfo", "DatasetNotFoundError",
    "MNIST_TRAIN_LABEL_COUNTS", "PAD_LABEL", "as_dataset", "batch_indices", "batches", "cache_dir",
    "epoch_permutation", "fetch", "list_datasets", "load", "normalization_stats",
    "normalize", "random_crop_flip", "read_idx", "take", "write_idx",
]
