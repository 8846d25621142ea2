"""Shift consistency (cnnjax/ablation/shift.py) against the loop reference and known answers."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnjax.ablation.shift import draw_shifts, shift_consistency, shift_images
from tests.reference import shift as ref


@pytest.mark.parametrize("shape", [(3, 7, 2), (4, 5, 6, 1), (2, 3, 4, 5, 2)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_shift_images_matches_reference(rng, shape, dtype):
    images = rng.integers(1, 200, shape).astype(dtype)
    d = len(shape) - 2
    shifts = rng.integers(-3, 4, (shape[0], d))
    shifts[0] = 0  # the identity among them
    out = shift_images(images, shifts)
    assert out.dtype == dtype and out.shape == shape
    np.testing.assert_array_equal(np.asarray(out), ref.shift_images(images, shifts))
    np.testing.assert_array_equal(np.asarray(out[0]), images[0])


def test_shift_moves_content_down_and_right_and_fills_zeros():
    x = jnp.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    out = np.asarray(shift_images(x, np.array([[1, -1]])))[0, :, :, 0]
    np.testing.assert_array_equal(out, [[0, 0, 0], [2, 3, 0], [5, 6, 0]])
    # A shift as large as the image leaves nothing.
    assert not np.asarray(shift_images(x, np.array([[3, 0]]))).any()


def _linear_classifier(rng, spatial, classes=4):
    w = rng.normal(size=(int(np.prod(spatial)), classes))

    def predict_batch(x):
        return jnp.asarray(np.asarray(x, np.float64).reshape(x.shape[0], -1) @ w)

    def predict_one(x):
        return int(np.argmax(np.asarray(x, np.float64).reshape(-1) @ w))

    return predict_batch, predict_one


@pytest.mark.parametrize("spatial, max_shift, trials, batch", [
    ((6, 6, 1), 2, 3, 512), ((5, 7, 2), 1, 2, 4), ((9, 1), 3, 4, 3)])
def test_consistency_matches_reference(rng, spatial, max_shift, trials, batch):
    images = rng.integers(0, 255, (10, *spatial)).astype(np.uint8)
    labels = rng.integers(0, 4, 10)
    predict_batch, predict_one = _linear_classifier(rng, spatial)
    key = jax.random.PRNGKey(7)
    got = shift_consistency(predict_batch, images, labels, max_shift=max_shift, trials=trials,
                            key=key, batch_size=batch)
    shifts = draw_shifts(key, 10, len(spatial) - 1, max_shift=max_shift, trials=trials)
    assert shifts.min() >= -max_shift and shifts.max() <= max_shift
    want = ref.shift_consistency(predict_one, images, labels, shifts)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert 0.0 < got[0] < 1.0  # the linear classifier is not shift invariant


def test_known_predictors(rng):
    images = rng.integers(0, 255, (12, 8, 8, 1)).astype(np.uint8)
    images[:, :2], images[:, -2:], images[:, :, :2], images[:, :, -2:] = 0, 0, 0, 0
    labels = np.arange(12) % 3
    key = jax.random.PRNGKey(0)

    # The sum of the pixels ignores shifts that keep the content inside (a 2-pixel border).
    def by_sum(x):
        total = jnp.sum(jnp.asarray(x, jnp.float32), axis=(1, 2, 3))
        return jax.nn.one_hot(jnp.asarray(total, jnp.int32) % 3, 3)

    consistency, accuracy = shift_consistency(by_sum, images, labels, max_shift=2, key=key)
    assert consistency == 1.0
    unshifted = np.mean(images.astype(np.int64).sum(axis=(1, 2, 3)) % 3 == labels)
    assert accuracy == unshifted

    # Leading axes of the scores (one per network) are kept.
    def two_networks(x):
        ones = jnp.zeros((x.shape[0], 3)).at[:, 1].set(1.0)
        return jnp.stack([ones, by_sum(x)])

    c, a = shift_consistency(two_networks, images, labels, key=key)
    np.testing.assert_array_equal(c, [1.0, 1.0])
    np.testing.assert_allclose(a, [np.mean(labels == 1), unshifted])


def test_same_key_same_shifts_other_key_other_shifts():
    a = draw_shifts(jax.random.PRNGKey(0), 50, 2, max_shift=2, trials=5)
    b = draw_shifts(jax.random.PRNGKey(0), 50, 2, max_shift=2, trials=5)
    c = draw_shifts(jax.random.PRNGKey(1), 50, 2, max_shift=2, trials=5)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert set(np.unique(a)) == {-2, -1, 0, 1, 2}
    assert (a[:, 0] != a[:, 1]).any()  # the two shifts of a pair are independent draws


@pytest.mark.parametrize("call, exc, match", [
    (lambda x, y, k: shift_consistency(None, x, y, max_shift=-1, key=k), ValueError,
     "shift_consistency: max_shift must be >= 0, got -1"),
    (lambda x, y, k: shift_consistency(None, x, y, trials=0, key=k), ValueError,
     "shift_consistency: trials must be >= 1, got 0"),
    (lambda x, y, k: shift_consistency(None, x, y, trials=2.0, key=k), TypeError,
     "shift_consistency: trials must be an int, got 2.0"),
    (lambda x, y, k: shift_consistency(None, x, y[:3], key=k), ValueError,
     r"shift_consistency: labels must have shape \[N\] = \[4\], got \[3\]"),
    (lambda x, y, k: shift_consistency(None, x[:, 0, 0], y, key=k), ValueError,
     "shift_consistency: images must be \\[N, \\*spatial, C\\]"),
    (lambda x, y, k: shift_images(x, np.zeros((4, 1), np.int32)), ValueError,
     r"shift_images: shifts must have shape \[N, d\] = \[4, 2\], got \[4, 1\]"),
    (lambda x, y, k: shift_images(x, np.zeros((4, 2))), TypeError,
     "shift_images: shifts must be integers, got dtype float"),
])
def test_bad_inputs(call, exc, match):
    x = np.zeros((4, 5, 5, 1), np.uint8)
    with pytest.raises(exc, match=match):
        call(x, np.zeros(4, np.int64), jax.random.PRNGKey(0))
