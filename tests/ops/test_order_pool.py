"""Tests for cnnjax/ops/_order_pool.py: min pooling and median pooling."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from cnnjax.ops import _order_pool
from tests.reference import order_pool as ref
from tests.reference.pool import distinct


LECTURE_A = [[-1, 4, 1, 2], [0, 1, 3, -2], [1, 5, -2, 6], [3, -1, -2, -2]]


def _img(a, dtype=jnp.float32):
    return jnp.asarray(a, dtype)[None, :, :, None]


def _to_torch(x):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.moveaxis(np.asarray(x), -1, 1).copy())


def _from_torch(t):
    return np.moveaxis(t.detach().numpy(), 1, -1)


# ---------------------------------------------------------------- min_pool

MIN_CASES = [  # (spatial, window, strides, padding, ceil_mode)
    ((7,), 2, None, "VALID", False),
    ((7,), 3, 2, 1, True),
    ((5, 6), 2, None, "VALID", True),
    ((7, 6), 3, 2, "SAME", False),
    ((7, 7), (3, 2), (2, 1), [(1, 0), (0, 1)], False),
    ((4, 5, 4), 2, None, "VALID", True),
    ((5, 4, 5), (2, 3, 2), (1, 2, 2), 1, False),
]


@pytest.mark.parametrize("spatial,window,strides,padding,ceil_mode", MIN_CASES)
def test_min_pool_matches_reference(rng, spatial, window, strides, padding, ceil_mode):
    x = rng.standard_normal((2, *spatial, 3))
    y = cnnjax.min_pool(x, window, strides, padding, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(y, ref.min_pool(x, window, strides, padding, ceil_mode))
    # The identity it is built on, exactly.
    np.testing.assert_array_equal(
        y, -cnnjax.max_pool(-x, window, strides, padding, ceil_mode=ceil_mode))


def test_min_pool_lecture_example():
    np.testing.assert_array_equal(cnnjax.min_pool(_img(LECTURE_A), 2)[0, ..., 0],
                                  [[-1, -2], [-1, -2]])


@pytest.mark.parametrize("window,strides,padding,ceil_mode", [
    (2, 2, 0, False), (3, 2, 1, True), ((3, 2), (1, 2), (1, 1), False)])
def test_min_pool_matches_torch(rng, window, strides, padding, ceil_mode):
    torch = pytest.importorskip("torch")
    x = distinct(rng, (2, 7, 8, 3))
    tx = _to_torch(x).requires_grad_(True)
    ty = -torch.nn.functional.max_pool2d(-tx, window, strides, padding, ceil_mode=ceil_mode)
    cot = np.cos(np.arange(ty.numel())).reshape(_from_torch(ty).shape)
    ty.backward(_to_torch(cot))
    y, vjp = jax.vjp(lambda v: cnnjax.min_pool(v, window, strides, padding,
                                               ceil_mode=ceil_mode), x)
    np.testing.assert_array_equal(y, _from_torch(ty))
    np.testing.assert_array_equal(vjp(cot)[0], _from_torch(tx.grad))


def test_min_pool_gradient_goes_to_first_minimum():
    x = _img([[1.0, 0.0], [0.0, 0.0]], jnp.float64)
    g = jax.grad(lambda v: cnnjax.min_pool(v, 2).sum())(x)[0, ..., 0]
    np.testing.assert_array_equal(g, [[0, 1], [0, 0]])
    torch = pytest.importorskip("torch")
    tx = _to_torch(x).requires_grad_(True)
    (-torch.nn.functional.max_pool2d(-tx, 2)).sum().backward()
    np.testing.assert_array_equal(g, _from_torch(tx.grad)[0, ..., 0])


def test_min_pool_gradcheck_jit_vmap_dtypes(rng):
    x = distinct(rng, (2, 6, 5, 3))
    check_grads(lambda v: cnnjax.min_pool(v, 3, 2, 1), (x,), order=1, modes=["rev"])
    f = lambda v: cnnjax.min_pool(v, (2, 3), 1, "SAME")  # noqa: E731
    np.testing.assert_array_equal(jax.jit(f)(x), f(x))
    np.testing.assert_array_equal(jax.vmap(lambda v: f(v[None])[0])(x), f(x))
    for dtype in (jnp.float32, jnp.float64, jnp.bfloat16):
        assert f(x.astype(dtype)).dtype == dtype


# ---------------------------------------------------------------- median_pool

MEDIAN_CASES = [  # (spatial, window, strides, padding, padding_mode)
    ((7,), 3, 1, 1, "reflect"),
    ((8,), 4, 2, "SAME", "zeros"),
    ((6, 6), 2, None, "VALID", "reflect"),
    ((6, 7), 3, 1, "SAME", "reflect"),
    ((6, 7), 3, 2, 2, "circular"),
    ((5, 6), (2, 3), (1, 2), [(1, 0), (2, 1)], "replicate"),
    ((6, 5), (4, 2), 2, 1, "zeros"),
    ((4, 5, 4), 2, 1, 1, "reflect"),
    ((5, 4, 4), (3, 1, 2), (2, 1, 2), "SAME", "replicate"),
]


@pytest.mark.parametrize("spatial,window,strides,padding,mode", MEDIAN_CASES)
def test_median_pool_matches_reference(rng, spatial, window, strides, padding, mode):
    x = rng.standard_normal((2, *spatial, 3))
    y = cnnjax.median_pool(x, window, strides, padding, padding_mode=mode)
    np.testing.assert_array_equal(y, ref.median_pool(x, window, strides, padding, mode))


@pytest.mark.parametrize("spatial,window,strides,padding,mode", MEDIAN_CASES[::2])
def test_median_pool_gradient_matches_reference(rng, spatial, window, strides, padding, mode):
    x = distinct(rng, (2, *spatial, 2))
    y, vjp = jax.vjp(lambda v: cnnjax.median_pool(v, window, strides, padding,
                                                  padding_mode=mode), x)
    cot = np.cos(np.arange(y.size)).reshape(y.shape)
    np.testing.assert_allclose(
        vjp(cot)[0], ref.median_pool_grad(x, cot, window, strides, padding, mode), rtol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "zeros", "replicate", "circular"])
def test_median_pool_gradcheck(rng, mode):
    # Distinct values; reflected copies of one input move together, so the median stays a
    # differentiable function of the inputs.
    x = distinct(rng, (1, 5, 6, 2))
    check_grads(lambda v: cnnjax.median_pool(v, 3, 2, 1, padding_mode=mode), (x,), order=1,
                modes=["rev"])


@pytest.mark.parametrize("window", [3, 2, (2, 3), 4])
@pytest.mark.parametrize("mode", ["reflect", "zeros", "replicate", "circular"])
def test_median_pool_matches_torch(rng, window, mode):
    """Peer: pad with F.pad, cut the windows with unfold, torch.median (lower median)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = distinct(rng, (2, 7, 8, 3))
    k = (window, window) if isinstance(window, int) else window
    pad = (1, 1)  # (H, W) padding, both sides
    tx = _to_torch(x).requires_grad_(True)
    tmode = "constant" if mode == "zeros" else mode
    tp = F.pad(tx, (pad[1], pad[1], pad[0], pad[0]), mode=tmode)
    cols = F.unfold(tp, k, stride=2)  # [N, C·K, L]
    n, c = x.shape[0], x.shape[-1]
    oh = (x.shape[1] + 2 * pad[0] - k[0]) // 2 + 1
    ow = (x.shape[2] + 2 * pad[1] - k[1]) // 2 + 1
    ty = cols.reshape(n, c, k[0] * k[1], oh, ow).median(dim=2).values
    cot = np.sin(np.arange(ty.numel())).reshape(_from_torch(ty).shape)
    ty.backward(_to_torch(cot))
    y, vjp = jax.vjp(lambda v: cnnjax.median_pool(v, window, 2, 1, padding_mode=mode), x)
    np.testing.assert_array_equal(y, _from_torch(ty))
    np.testing.assert_allclose(vjp(cot)[0], _from_torch(tx.grad), rtol=1e-12)


def test_median_pool_lecture_example_and_special_cases(rng):
    # Even count: the lower of the two middle values, e.g. [-2, 1, 2, 3] -> 1.
    np.testing.assert_array_equal(cnnjax.median_pool(_img(LECTURE_A), 2)[0, ..., 0],
                                  [[0, 1], [1, -2]])
    x = rng.standard_normal((2, 5, 7, 3))
    # A 1×1 window is the identity; a window over the whole map is the map's median.
    np.testing.assert_array_equal(cnnjax.median_pool(x, 1), x)
    np.testing.assert_array_equal(cnnjax.median_pool(x, (5, 7))[:, 0, 0, :],
                                  np.median(x, axis=(1, 2)))
    # Constant maps stay constant whatever the padding mode (zeros aside).
    c = np.full((1, 4, 4, 1), 3.0)
    for mode in ("reflect", "replicate", "circular"):
        np.testing.assert_array_equal(
            cnnjax.median_pool(c, 3, 1, "SAME", padding_mode=mode), c)
    # Robust to a single outlier, unlike max and mean.
    spike = np.zeros((1, 3, 3, 1))
    spike[0, 1, 1, 0] = 1e6
    assert cnnjax.median_pool(spike, 3)[0, 0, 0, 0] == 0.0


def test_median_pool_ties_and_nan():
    # Ties: the cotangent goes to the first window element equal to the median.
    x = _img([[5.0, 1.0], [1.0, 1.0]], jnp.float64)
    g = jax.grad(lambda v: cnnjax.median_pool(v, 2).sum())(x)[0, ..., 0]
    np.testing.assert_array_equal(g, [[0, 1], [0, 0]])
    # A NaN in the window gives NaN (torch.median's rule), its gradient goes to the NaN.
    x = _img([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0], [7.0, 8.0, 9.0]], jnp.float64)
    y, vjp = jax.vjp(lambda v: cnnjax.median_pool(v, 2, 1), x)
    assert np.all(np.isnan(y))
    np.testing.assert_array_equal(vjp(jnp.ones_like(y))[0][0, ..., 0],
                                  [[0, 0, 0], [0, 4, 0], [0, 0, 0]])


def test_median_pool_jit_vmap_dtypes(rng):
    x = rng.standard_normal((3, 6, 6, 2))
    f = lambda v: cnnjax.median_pool(v, 3, 1, "SAME")  # noqa: E731
    np.testing.assert_array_equal(jax.jit(f)(x), f(x))
    np.testing.assert_array_equal(jax.vmap(lambda v: f(v[None])[0])(x), f(x))
    for dtype in (jnp.float32, jnp.float64, jnp.bfloat16):
        xd = x.astype(dtype)
        y = f(xd)
        assert y.dtype == dtype
        np.testing.assert_array_equal(np.asarray(y, np.float64),
                                      ref.median_pool(np.asarray(xd, np.float64), 3, 1, "SAME"))


def test_median_network_is_a_selection_network(rng):
    # 0-1 principle: a comparator network selects the median of every input iff it does so
    # for every 0/1 input.
    for size in range(1, 15):
        bits = np.array(list(itertools.product([0, 1], repeat=size))).T
        v = list(bits)
        for i, j, keep_min, keep_max in _order_pool.median_network(size):
            lo, hi = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
            v[i] = lo if keep_min else v[i]
            v[j] = hi if keep_max else v[j]
        np.testing.assert_array_equal(v[(size - 1) // 2], np.sort(bits, axis=0)[(size - 1) // 2])
    for size in (25, 27, 49, 64):
        vals = rng.standard_normal((size, 200))
        med = _order_pool.lower_median(list(jnp.asarray(vals)))
        np.testing.assert_array_equal(med, np.sort(vals, axis=0)[(size - 1) // 2])


def test_median_pool_large_window_sort_path(rng):
    # 5×5×3 = 75 > _MAX_NETWORK_SIZE elements: the lax.sort branch.
    assert 75 > _order_pool._MAX_NETWORK_SIZE
    x = distinct(rng, (1, 6, 6, 4, 2))
    y, vjp = jax.vjp(lambda v: cnnjax.median_pool(v, (5, 5, 3), 1), x)
    np.testing.assert_array_equal(y, ref.median_pool(x, (5, 5, 3), 1))
    cot = np.cos(np.arange(y.size)).reshape(y.shape)
    np.testing.assert_allclose(vjp(cot)[0], ref.median_pool_grad(x, cot, (5, 5, 3), 1),
                               rtol=1e-12)
    x[0, 2, 2, 1, 0] = np.nan
    assert np.isnan(cnnjax.median_pool(x, (5, 5, 3), 1)[0, 0, 0, 0, 0])


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("call,match", [
    (lambda: cnnjax.median_pool(jnp.ones((1, 4, 4, 2)), 2, padding_mode="mirror"),
     r"median_pool: padding_mode must be one of 'reflect', 'zeros', 'replicate', "
     r"'circular', got 'mirror'\."),
    (lambda: cnnjax.median_pool(jnp.ones((1, 2, 4, 2)), 3, 1, 2),
     r"median_pool: padding must be smaller than the input size for padding_mode='reflect', "
     r"got padding \(2, 2\) for size 2 in spatial dim 0\."),
    (lambda: cnnjax.median_pool(jnp.ones((1, 4, 2, 2)), 4, 1, 3, padding_mode="circular"),
     r"padding must be at most the input size for padding_mode='circular'"),
    (lambda: cnnjax.median_pool(jnp.ones((1, 4, 4, 2), jnp.int32), 2),
     r"median_pool: x must have a floating dtype, got int32\."),
    (lambda: cnnjax.min_pool(jnp.ones((4, 4)), 2), r"min_pool: x must have rank 3 to 5"),
    (lambda: cnnjax.min_pool(jnp.ones((1, 4, 4, 2)), 5), r"min_pool: window_shape"),
    (lambda: cnnjax.min_pool(jnp.ones((1, 4, 4, 2)), 2, ceil_mode="yes"),
     r"min_pool: ceil_mode must be a bool, got 'yes'\."),
    (lambda: cnnjax.median_pool(jnp.ones((1, 4, 4, 2)), (2, 2, 2)),
     r"median_pool: window_shape must be an int or a sequence of 2 ints"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
