"""Batching, normalisation and the crop/flip augmentation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnjax.data import (Dataset, batch_indices, batches, epoch_permutation,
                         normalization_stats, normalize, random_crop_flip)


def test_batch_indices_cover_each_example_once():
    idx = batch_indices(103, 10, seed=3, epoch=2)
    assert [len(i) for i in idx] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.sort(np.concatenate(idx)), np.arange(103))


def test_drop_remainder_and_pad():
    assert [len(i) for i in batch_indices(103, 10, seed=0, drop_remainder=True)] == [10] * 10
    padded = batch_indices(103, 10, pad=True)
    assert [len(i) for i in padded] == [10] * 11
    np.testing.assert_array_equal(padded[-1], [100, 101, 102] + [-1] * 7)
    np.testing.assert_array_equal(np.concatenate(batch_indices(25, 10)), np.arange(25))


def test_shuffle_depends_only_on_seed_and_epoch():
    a = epoch_permutation(50, seed=1, epoch=4)
    np.testing.assert_array_equal(a, epoch_permutation(50, seed=1, epoch=4))
    assert not np.array_equal(a, epoch_permutation(50, seed=1, epoch=5))
    assert not np.array_equal(a, epoch_permutation(50, seed=2, epoch=4))
    np.testing.assert_array_equal(np.concatenate(batch_indices(50, 7, seed=1, epoch=4)), a)


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        batch_indices(10, 0)


def test_batches_pad_with_masked_labels(rng):
    images = rng.integers(0, 256, size=(13, 4, 4, 1)).astype(np.uint8)
    labels = rng.integers(0, 10, size=13).astype(np.int32)
    out = list(batches(Dataset(images, labels, 10, "x"), 5, pad=True))
    assert [x.shape for x, _ in out] == [(5, 4, 4, 1)] * 3
    x, y = out[-1]
    np.testing.assert_array_equal(y, [*labels[10:], -1, -1])
    np.testing.assert_array_equal(x[:3], images[10:])
    assert not x[3:].any() and x.dtype == np.uint8 and y.dtype == np.int32
    shuffled = list(batches((images, labels), 4, seed=0, epoch=1, drop_remainder=True))
    assert len(shuffled) == 3
    perm = epoch_permutation(13, seed=0, epoch=1)
    np.testing.assert_array_equal(shuffled[1][1], labels[perm[4:8]])


def test_normalization_stats_and_normalize(rng):
    images = rng.integers(0, 256, size=(6, 5, 5, 3)).astype(np.uint8)
    images[..., 2] = 7  # constant channel: std falls back to 1
    mean, std = normalization_stats(images)
    ref = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, ref.mean((0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(std[:2], ref.std((0, 1, 2))[:2], rtol=1e-6)
    assert std[2] == 1 and mean.dtype == std.dtype == np.float32
    out = normalize(images, mean, std)
    assert out.dtype == jnp.float32 and out.shape == images.shape
    np.testing.assert_allclose(out, (ref - mean) / std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.jit(normalize)(images, mean, std), out, rtol=1e-6)


def crops_reference(image, padding):
    """Every (crop, flip) image the augmentation may produce for one example."""
    h, w, _ = image.shape
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    out = []
    for i in range(2 * padding + 1):
        for j in range(2 * padding + 1):
            crop = padded[i:i + h, j:j + w]
            out += [crop, crop[:, ::-1]]
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_random_crop_flip_outputs_are_valid_crops(rng, dtype):
    images = rng.integers(1, 256, size=(16, 6, 6, 3)).astype(dtype)
    out = np.asarray(random_crop_flip(jax.random.key(0), images, padding=2))
    assert out.shape == images.shape and out.dtype == images.dtype
    for x, y in zip(images, out):
        assert any(np.array_equal(y, c) for c in crops_reference(x, 2))
    # With 16 examples some are shifted and some flipped (the augmentation is not a no-op).
    assert sum(not np.array_equal(x, y) for x, y in zip(images, out)) >= 8


def test_random_crop_flip_is_a_function_of_the_key(rng):
    # Same shapes as above: no new compilation.
    images = rng.integers(0, 256, size=(16, 6, 6, 3)).astype(np.uint8)
    a = random_crop_flip(jax.random.key(1), images, padding=2)
    np.testing.assert_array_equal(a, random_crop_flip(jax.random.key(1), images, padding=2))
    # Inside a caller's jit (the train step) it gives the same result.
    inner = jax.jit(lambda k, x: random_crop_flip(k, x, padding=2))
    np.testing.assert_array_equal(a, inner(jax.random.key(1), images))
    assert not np.array_equal(a, random_crop_flip(jax.random.key(2), images, padding=2))


def test_random_crop_flip_identity_cases(rng):
    images = rng.integers(0, 256, size=(4, 5, 5, 1)).astype(np.uint8)
    out = random_crop_flip(jax.random.key(0), images, padding=0, flip=False)
    np.testing.assert_array_equal(out, images)
    flipped = np.asarray(random_crop_flip(jax.random.key(0), images, padding=0))
    for x, y in zip(images, flipped):
        assert np.array_equal(y, x) or np.array_equal(y, x[:, ::-1])


def test_random_crop_flip_errors():
    with pytest.raises(ValueError, match=r"random_crop_flip: images must be \[N, H, W, C\]"):
        random_crop_flip(jax.random.key(0), np.zeros((4, 4, 1), np.uint8))
    with pytest.raises(ValueError, match="padding must be >= 0, got -1"):
        random_crop_flip(jax.random.key(0), np.zeros((1, 4, 4, 1), np.uint8), padding=-1)
