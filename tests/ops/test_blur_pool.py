"""Tests for cnnjax/ops/_blur_pool.py: blur_pool and max_blur_pool (Zhang 2019)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from cnnjax.ops._blur_pool import blur_pool_to_shape
from tests.reference import blur_pool as ref
from tests.reference.pool import distinct

MODES = ("zeros", "reflect", "replicate", "circular")
TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("spatial,k,s", [
    ((9,), 3, 2), ((8,), 4, 2), ((7,), 5, 3), ((6,), 2, 1), ((5,), 1, 2), ((7,), 7, 2),
    ((7, 6), 3, 2), ((6, 7), (4, 3), (2, 3)), ((5, 6), 1, 1),
    ((5, 4, 6), 3, 2), ((4, 5, 5), (2, 3, 4), (1, 2, 3)),
])
def test_blur_pool_matches_reference(rng, mode, spatial, k, s):
    x = rng.standard_normal((2, *spatial, 3))
    y = cnnjax.blur_pool(x, k, s, padding_mode=mode)
    np.testing.assert_allclose(y, ref.blur_pool(x, k, s, mode), rtol=1e-12, atol=1e-14)
    assert y.shape[1:-1] == tuple((n - 1) // si + 1 for n, si in
                                  zip(spatial, np.broadcast_to(s, len(spatial))))


def test_binomial_taps_are_pascal_rows():
    # antialiased-cnns' table: [1], [1, 1], [1, 2, 1], ..., [1, 6, 15, 20, 15, 6, 1].
    rows = {1: [1], 2: [1, 1], 3: [1, 2, 1], 4: [1, 3, 3, 1], 5: [1, 4, 6, 4, 1],
            6: [1, 5, 10, 10, 5, 1], 7: [1, 6, 15, 20, 15, 6, 1]}
    for k, row in rows.items():
        impulse = np.zeros((1, 2 * k + 1, 1))
        impulse[0, k, 0] = 1.0
        # Stride 1, zero padding: the response to an impulse is the (flipped) filter.
        y = np.asarray(cnnjax.blur_pool(impulse, k, 1, padding_mode="zeros"))[0, :, 0]
        taps = np.trim_zeros(y)
        np.testing.assert_allclose(taps, np.array(row) / sum(row), rtol=1e-15)
    # The N-d filter is the outer product of the 1-D taps.
    impulse = np.zeros((1, 5, 5, 1))
    impulse[0, 2, 2, 0] = 1.0
    y = np.asarray(cnnjax.blur_pool(impulse, 3, 1, padding_mode="zeros"))[0, 1:4, 1:4, 0]
    np.testing.assert_allclose(y, np.outer([1, 2, 1], [1, 2, 1]) / 16, rtol=1e-15)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_matches_torch_pad_and_depthwise_conv(rng, d, mode):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for k, s in [(3, 2), (4, 2), (5, 1)]:
        x = rng.standard_normal((2, *(7, 6, 5)[:d], 3))
        taps = torch.tensor(ref.binomial(k))
        filt = taps
        for _ in range(d - 1):
            filt = filt[..., None] * taps
        xt = torch.from_numpy(np.moveaxis(x, -1, 1).copy()).requires_grad_(True)
        pads = [(k - 1) // 2, k // 2] * d
        xp = F.pad(xt, pads, mode=TORCH_MODE[mode])
        conv = getattr(F, f"conv{d}d")
        yt = conv(xp, filt.expand(3, 1, *filt.shape).contiguous(), stride=s, groups=3)
        y = cnnjax.blur_pool(x, k, s, padding_mode=mode)
        np.testing.assert_allclose(y, np.moveaxis(yt.detach().numpy(), 1, -1), rtol=1e-12,
                                   atol=1e-14)
        ct = rng.standard_normal(y.shape)
        (yt * torch.from_numpy(np.moveaxis(ct, -1, 1).copy())).sum().backward()
        g = jax.grad(lambda v: jnp.sum(cnnjax.blur_pool(v, k, s, padding_mode=mode) * ct))(x)
        np.testing.assert_allclose(g, np.moveaxis(xt.grad.numpy(), 1, -1), rtol=1e-12,
                                   atol=1e-14)


def test_window_one_is_plain_subsampling(rng):
    x = rng.standard_normal((2, 7, 8, 3))
    np.testing.assert_array_equal(cnnjax.blur_pool(x, 1, 2), x[:, ::2, ::2])
    np.testing.assert_array_equal(cnnjax.blur_pool(x, 1, (3, 1)), x[:, ::3, :])


def test_special_cases_constant_and_nyquist():
    # The filter sums to 1: constant maps stay constant (every mode but zeros at the edge).
    for mode in ("reflect", "replicate", "circular"):
        np.testing.assert_allclose(cnnjax.blur_pool(jnp.full((1, 7, 6, 2), 2.5), 4, 2,
                                                    padding_mode=mode), 2.5, rtol=1e-6)
    # [1, 2, 1]/4 removes the highest frequency exactly: the alternating pattern that naive
    # subsampling aliases to a constant becomes 0.
    alt = jnp.asarray((-1.0) ** np.arange(8)).reshape(1, 8, 1)
    np.testing.assert_array_equal(alt[:, ::2], 1.0)
    np.testing.assert_allclose(cnnjax.blur_pool(alt, 3, 2), 0.0, atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
def test_padding_as_large_as_the_input_repeats_like_numpy(rng, mode):
    # PyTorch raises here; the blur pads as np.pad does (a 1-pixel map stays constant).
    for n, k in [(1, 3), (2, 5), (3, 7), (2, 3)]:
        x = rng.standard_normal((2, n, 3))
        np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                   "circular": "wrap"}[mode]
        xp = np.pad(x, ((0, 0), ((k - 1) // 2, k // 2), (0, 0)), mode=np_mode)
        taps = ref.binomial(k)
        expected = np.stack([np.tensordot(taps, xp[:, o * 2:o * 2 + k], axes=(0, 1))
                             for o in range((n - 1) // 2 + 1)], axis=1)
        np.testing.assert_allclose(cnnjax.blur_pool(x, k, 2, padding_mode=mode), expected,
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(cnnjax.blur_pool(x, k, 2, padding_mode=mode),
                                   ref.blur_pool(x, k, 2, mode), rtol=1e-12, atol=1e-14)
        check_grads(lambda v: cnnjax.blur_pool(v, k, 2, padding_mode=mode), (x,), order=1,
                    modes=["rev"])
    # Max-blur pooling of a 2×2 map (VGG's last pooling site on 32×32 inputs).
    x = rng.standard_normal((2, 2, 2, 3))
    np.testing.assert_allclose(cnnjax.max_blur_pool(x, 2, 2, padding_mode=mode),
                               cnnjax.max_pool(x, 2) * (1.0 if mode != "zeros" else 0.25),
                               rtol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_gradients(rng, mode):
    x = rng.standard_normal((2, 5, 6, 2))
    check_grads(lambda v: cnnjax.blur_pool(v, 3, 2, padding_mode=mode), (x,), order=1,
                modes=["rev"])
    check_grads(lambda v: cnnjax.blur_pool(v, (4, 2), (1, 3), padding_mode=mode), (x,),
                order=1, modes=["rev"])
    x1 = rng.standard_normal((2, 7, 2))
    check_grads(lambda v: cnnjax.blur_pool(v, 5, 3, padding_mode=mode), (x1,), order=2,
                modes=["rev"])


def test_jit_vmap_and_dtypes(rng):
    x = rng.standard_normal((3, 7, 6, 2)).astype(np.float32)
    f = lambda v: cnnjax.blur_pool(v, 3, 2)  # noqa: E731
    np.testing.assert_allclose(jax.jit(f)(x), f(x), rtol=1e-6)
    batched = jax.vmap(lambda v: f(v[None])[0])(x)
    np.testing.assert_allclose(batched, f(x), rtol=1e-6)
    assert f(x).dtype == jnp.float32
    y16 = cnnjax.blur_pool(x.astype(jnp.bfloat16), 3, 2)
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(y16.astype(np.float32), f(x), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("out", [(2, 3), (5, 4), (6, 6), (1, 1)])
@pytest.mark.parametrize("mode", MODES)
def test_blur_pool_to_shape_crops_or_extends(rng, mode, out):
    x = rng.standard_normal((1, 8, 7, 2))  # natural output (4, 4)
    y = blur_pool_to_shape(x, out, 3, 2, padding_mode=mode)
    np.testing.assert_allclose(y, ref.blur_pool(x, 3, 2, mode, output_shape=out), rtol=1e-12,
                               atol=1e-14)
    check_grads(lambda v: blur_pool_to_shape(v, out, 3, 2, padding_mode=mode), (x,), order=1,
                modes=["rev"])


# --- max_blur_pool ----------------------------------------------------------------------------

@pytest.mark.parametrize("spatial,k,s,f,padding", [
    ((8,), 2, 2, 3, 0), ((9,), 3, 2, 3, 1), ((8, 7), 2, 2, 3, 0), ((7, 8), 3, 2, 4, 1),
    ((8, 6), (2, 3), (2, 1), (3, 5), ((1, 0), (0, 2))), ((5, 6, 4), 2, 2, 3, 0),
])
@pytest.mark.parametrize("mode", ["reflect", "zeros", "circular"])
def test_max_blur_pool_matches_reference(rng, spatial, k, s, f, padding, mode):
    x = rng.standard_normal((2, *spatial, 3))
    y = cnnjax.max_blur_pool(x, k, s, filter_size=f, padding_mode=mode, padding=padding)
    np.testing.assert_allclose(y, ref.max_blur_pool(x, k, s, f, mode, padding), rtol=1e-12)
    # Exactly the composition of the contract, and max pooling's output size.
    dense = cnnjax.max_pool(x, k, 1, padding)
    np.testing.assert_array_equal(y, cnnjax.blur_pool(dense, f, s, padding_mode=mode))
    assert y.shape == cnnjax.max_pool(x, k, s, padding).shape


def test_max_blur_pool_matches_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((2, 9, 8, 3))
    for k, p in [(2, 0), (3, 1)]:
        xt = torch.from_numpy(np.moveaxis(x, -1, 1).copy())
        h = F.max_pool2d(xt, k, stride=1, padding=p)
        taps = torch.tensor(ref.binomial(3))
        w = (taps[:, None] * taps).expand(3, 1, 3, 3).contiguous()
        yt = F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), w, stride=2, groups=3)
        np.testing.assert_allclose(cnnjax.max_blur_pool(x, k, 2, padding=p),
                                   np.moveaxis(yt.numpy(), 1, -1), rtol=1e-12)


def test_max_blur_pool_gradients_and_jit(rng):
    x = distinct(rng, (2, 6, 7, 2))
    check_grads(lambda v: cnnjax.max_blur_pool(v, 2, 2), (x,), order=1, modes=["rev"])
    check_grads(lambda v: cnnjax.max_blur_pool(v, 3, 2, filter_size=4, padding=1), (x,),
                order=1, modes=["rev"])
    f = lambda v: cnnjax.max_blur_pool(v, 2, 2)  # noqa: E731
    xf = x.astype(np.float32)
    np.testing.assert_allclose(jax.jit(f)(xf), f(xf), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(lambda v: f(v[None])[0])(xf), f(xf), rtol=1e-6)
    assert f(xf).dtype == jnp.float32


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("call,match", [
    (lambda: cnnjax.blur_pool(jnp.ones((1, 4, 4, 1)), padding_mode="wrap"),
     "blur_pool: padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', "
     "got 'wrap'"),
    (lambda: cnnjax.blur_pool(jnp.ones((1, 4, 4, 1)), 0), "blur_pool: window_shape must be >= 1"),
    (lambda: cnnjax.blur_pool(jnp.ones((1, 4, 4, 1)), 3, (2, 2, 2)),
     "blur_pool: strides must be an int or a sequence of 2 ints"),
    (lambda: cnnjax.blur_pool(jnp.ones((4, 4))), "blur_pool: x must have rank 3 to 5"),
    (lambda: cnnjax.blur_pool(jnp.ones((1, 4, 4, 1), jnp.int32)),
     "blur_pool: x must have a floating dtype"),
    (lambda: cnnjax.max_blur_pool(jnp.ones((1, 6, 6, 1)), 2, padding=2),
     r"max_blur_pool: padding must be smaller than window_shape so that every max window "
     r"overlaps the input, got padding \(2, 2\) and window 2 in spatial dim 0"),
    (lambda: cnnjax.max_blur_pool(jnp.ones((1, 6, 6, 1)), 2, filter_size=(3, 3, 3)),
     "max_blur_pool: filter_size must be an int or a sequence of 2 ints"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_strides_none_means_window_shape(rng):
    x = rng.standard_normal((1, 9, 8, 2))
    np.testing.assert_array_equal(cnnjax.blur_pool(x, 3, None), cnnjax.blur_pool(x, 3, 3))
    np.testing.assert_array_equal(cnnjax.max_blur_pool(x, 2, None), cnnjax.max_blur_pool(x, 2, 2))
