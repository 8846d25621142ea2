"""Tests for cnnjax/ops/_pool.py: max/avg/sum pooling, indices and unpooling."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import cnnjax
from tests.reference import pool as ref


distinct = ref.distinct


# ---------------------------------------------------------------- lecture worked examples

LECTURE_A = [[-1, 4, 1, 2], [0, 1, 3, -2], [1, 5, -2, 6], [3, -1, -2, -2]]
LECTURE_B = [[-1, 2, 0, 0], [0, 1, 3, -2], [0, 0, -1, 4], [3, -1, -2, -2]]
LECTURE_C = [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2],
             [2, 0, 0, 0, 1]]


def _img(a):
    return jnp.asarray(a, jnp.float32)[None, :, :, None]


def test_lecture_examples():
    np.testing.assert_array_equal(cnnjax.max_pool(_img(LECTURE_A), 2)[0, ..., 0],
                                  [[4, 3], [5, 6]])
    np.testing.assert_array_equal(cnnjax.avg_pool(_img(LECTURE_A), 2)[0, ..., 0],
                                  [[1, 1], [2, 0]])
    np.testing.assert_array_equal(cnnjax.max_pool(_img(LECTURE_B), (2, 2), (2, 2))[0, ..., 0],
                                  [[2, 3], [3, 4]])
    np.testing.assert_array_equal(cnnjax.max_pool(_img(LECTURE_C), 3, 1)[0, ..., 0],
                                  [[3, 3, 3], [3, 3, 3], [3, 2, 3]])


# ---------------------------------------------------------------- reference grid

# (spatial, window, strides, padding, dilation, ceil_mode)
MAX_CASES = [
    ((6,), 2, None, "VALID", 1, False),
    ((7,), 3, 2, 1, 2, True),
    ((5, 6), 2, None, "VALID", 1, False),
    ((5, 6), 2, None, "VALID", 1, True),
    ((7, 6), 3, 2, "SAME", 1, False),
    ((7, 7), (3, 2), (2, 1), [(1, 0), (0, 1)], 1, False),
    ((8, 7), 3, 2, 1, 2, False),
    ((8, 7), 2, 3, (1, 0), (2, 3), True),
    ((5, 5), 3, 1, "SAME", 2, False),
    ((4, 5, 4), 2, None, "VALID", 1, True),
    ((5, 4, 6), (2, 3, 2), (1, 2, 2), 1, (1, 1, 2), False),
]


@pytest.mark.parametrize("spatial,window,strides,padding,dilation,ceil_mode", MAX_CASES)
def test_max_pool_and_indices_match_reference(rng, spatial, window, strides, padding,
                                              dilation, ceil_mode):
    d = len(spatial)
    x = rng.standard_normal((2, *spatial, 3))
    w = (window,) * d if isinstance(window, int) else window
    s = None if strides is None else ((strides,) * d if isinstance(strides, int) else strides)
    r = (dilation,) * d if isinstance(dilation, int) else dilation
    y, idx = cnnjax.max_pool_with_indices(x, window, strides, padding, dilation=dilation,
                                          ceil_mode=ceil_mode)
    y2 = cnnjax.max_pool(x, window, strides, padding, dilation=dilation, ceil_mode=ceil_mode)
    kwargs = dict(strides=s, padding=padding, dilation=r, ceil_mode=ceil_mode)
    np.testing.assert_allclose(y, ref.pool(x, "max", w, **kwargs), rtol=0, atol=0)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(idx, ref.pool(x, "argmax", w, **kwargs))
    assert idx.dtype == jnp.int32


AVG_CASES = [
    ((6,), 2, None, "VALID", False),
    ((7,), 3, 2, 1, True),
    ((5, 6), 2, None, "VALID", True),
    ((7, 6), 3, 2, "SAME", False),
    ((7, 7), (3, 2), (2, 1), [(1, 0), (0, 1)], True),
    ((8, 7), 3, 2, 1, True),
    ((4, 5, 4), 2, None, 1, True),
    ((5, 4, 6), (2, 3, 2), (1, 2, 2), 1, False),
]


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("spatial,window,strides,padding,ceil_mode", AVG_CASES)
def test_avg_and_sum_pool_match_reference(rng, spatial, window, strides, padding, ceil_mode,
                                          count_include_pad):
    d = len(spatial)
    x = rng.standard_normal((2, *spatial, 3))
    w = (window,) * d if isinstance(window, int) else window
    s = None if strides is None else ((strides,) * d if isinstance(strides, int) else strides)
    y = cnnjax.avg_pool(x, window, strides, padding, ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad)
    expect = ref.pool(x, "avg", w, s, padding, ceil_mode=ceil_mode,
                      count_include_pad=count_include_pad)
    np.testing.assert_allclose(y, expect, rtol=1e-12, atol=1e-12)
    if count_include_pad:
        ys = cnnjax.sum_pool(x, window, strides, padding, ceil_mode=ceil_mode)
        np.testing.assert_allclose(ys, ref.pool(x, "sum", w, s, padding, ceil_mode=ceil_mode),
                                   rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_property_deterministic_pools_vs_reference(data):
    d = data.draw(st.integers(1, 2))
    spatial = tuple(data.draw(st.integers(3, 7)) for _ in range(d))
    window = tuple(data.draw(st.integers(1, 3)) for _ in range(d))
    strides = tuple(data.draw(st.integers(1, 3)) for _ in range(d))
    pad = tuple(data.draw(st.integers(0, k // 2)) for k in window)
    padding = data.draw(st.sampled_from(["VALID", "SAME", pad]))
    ceil_mode = data.draw(st.booleans())
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).standard_normal((1, *spatial, 2))
    np.testing.assert_allclose(cnnjax.max_pool(x, window, strides, padding, ceil_mode=ceil_mode),
                               ref.pool(x, "max", window, strides, padding, ceil_mode=ceil_mode))
    np.testing.assert_allclose(cnnjax.avg_pool(x, window, strides, padding, ceil_mode=ceil_mode),
                               ref.pool(x, "avg", window, strides, padding, ceil_mode=ceil_mode),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cnnjax.sum_pool(x, window, strides, padding, ceil_mode=ceil_mode),
                               ref.pool(x, "sum", window, strides, padding, ceil_mode=ceil_mode),
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- indices and unpooling

@pytest.mark.parametrize("spatial,window,strides,padding", [
    ((6,), 2, None, 0), ((6, 5), 2, None, 1), ((5, 7), 3, 2, 1), ((4, 4, 6), 2, None, 0)])
def test_unpool_round_trip(rng, spatial, window, strides, padding):
    x = distinct(rng, (2, *spatial, 3))
    y, idx = cnnjax.max_pool_with_indices(x, window, strides, padding)
    up = cnnjax.max_unpool(y, idx, spatial)
    assert up.shape == x.shape
    np.testing.assert_array_equal(up, ref.unpool(np.asarray(y), np.asarray(idx), spatial))
    # Every kept value sits where it came from, and pooling the unpooled map restores y.
    np.testing.assert_array_equal(np.where(up != 0, x, 0), up)
    np.testing.assert_array_equal(cnnjax.max_pool(jnp.where(up != 0, up, -jnp.inf), window,
                                                  strides, padding), y)


def test_unpool_gradient_is_gather(rng):
    x = distinct(rng, (1, 4, 4, 2))
    y, idx = cnnjax.max_pool_with_indices(x, 2)
    check_grads(lambda v: cnnjax.max_unpool(v, idx, (4, 4)), (y,), order=1, modes=["rev"])


@pytest.mark.parametrize("bad", [-1, -16, 16, 99])
def test_unpool_out_of_range_index_raises_or_is_dropped(bad):
    # -1 used to wrap around and write the last position of the plane.
    y = jnp.asarray([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    idx = jnp.asarray([0, 5, 10, bad], jnp.int32).reshape(1, 2, 2, 1)
    with pytest.raises(ValueError, match=rf"max_unpool: indices must be in \[0, 16\) \(flat "
                                         rf"positions in the 4x4 output plane\), got {bad}\."):
        cnnjax.max_unpool(y, idx, (4, 4))
    # Traced indices cannot be checked: the value is dropped, never written elsewhere.
    expect = np.zeros(16)
    expect[[0, 5, 10]] = [1.0, 2.0, 3.0]
    got = jax.jit(lambda a, i: cnnjax.max_unpool(a, i, (4, 4)))(y, idx)
    np.testing.assert_array_equal(np.asarray(got).ravel(), expect)
    got = jax.vmap(lambda a, i: cnnjax.max_unpool(a[None], i[None], (4, 4))[0])(y, idx)
    np.testing.assert_array_equal(np.asarray(got).ravel(), expect)


@pytest.mark.parametrize("dtype", [jnp.int8, jnp.uint8, jnp.int16, jnp.uint32, jnp.int64])
def test_unpool_index_dtypes_under_jit(dtype):
    # Planes larger than the index dtype's range, and unsigned indices past the end.
    y = jnp.asarray([1.0, 2.0, 3.0]).reshape(1, 3, 1)
    idx = jnp.asarray([2, 0, 120], dtype).reshape(1, 3, 1)
    f = jax.jit(lambda a, i, n: cnnjax.max_unpool(a, i, (n,)), static_argnums=2)
    np.testing.assert_array_equal(np.asarray(f(y, idx, 100)).ravel()[:4], [2.0, 0.0, 1.0, 0.0])
    assert float(f(y, idx, 100).sum()) == 3.0  # 120 dropped
    np.testing.assert_array_equal(np.asarray(f(y, idx, 300)).ravel()[[0, 2, 120]], [2, 1, 3])


def test_unpool_output_plane_must_hold_the_pooled_input(rng):
    # A plane smaller than y's used to drop or scramble values without an error.
    x = distinct(rng, (1, 4, 4, 1))
    y, idx = cnnjax.max_pool_with_indices(x, 2)
    with pytest.raises(ValueError, match=r"max_unpool: output_spatial_shape must be >= y's "
                                         r"spatial shape \(2, 2\) in every dim .*got \(1, 8\)\."):
        cnnjax.max_unpool(y, idx, (1, 8))
    with pytest.raises(ValueError, match=r"indices must be in \[0, 4\) .*2x2 output plane"):
        cnnjax.max_unpool(y, idx, (2, 2))


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("kwargs", [
    dict(window_shape=2),
    dict(window_shape=3, strides=1, padding=1),
    dict(window_shape=2, strides=1, dilation=2),
    dict(window_shape=(2, 3), strides=(2, 1), padding="SAME", dilation=(2, 1)),
    dict(window_shape=2, ceil_mode=True),
])
def test_max_pool_gradients(rng, kwargs):
    x = distinct(rng, (2, 5, 6, 2))
    check_grads(lambda v: cnnjax.max_pool(v, **kwargs), (x,), order=1, modes=["rev"])


@pytest.mark.parametrize("kwargs", [
    dict(window_shape=2),
    dict(window_shape=3, strides=2, padding=1, ceil_mode=True, count_include_pad=False),
])
def test_avg_sum_gradients(rng, kwargs):
    x = rng.standard_normal((2, 5, 6, 2))
    check_grads(lambda v: cnnjax.avg_pool(v, **kwargs), (x,), order=2, modes=["rev"])
    kwargs.pop("count_include_pad", None)
    check_grads(lambda v: cnnjax.sum_pool(v, **kwargs), (x,), order=2, modes=["rev"])


@pytest.mark.parametrize("kwargs", [dict(window_shape=2), dict(window_shape=3, strides=1),
                                    dict(window_shape=2, strides=1, dilation=2)])
def test_max_pool_tie_gradient_goes_to_first_maximum(kwargs):
    x = jnp.ones((1, 6, 6, 1))
    g = jax.grad(lambda v: cnnjax.max_pool(v, **kwargs).sum())(x)
    # One unit of gradient per output, all of it on the first (row-major) position of its
    # window, exactly as PyTorch routes it.
    y, idx = cnnjax.max_pool_with_indices(x, **kwargs)
    expect = np.zeros(36)
    np.add.at(expect, np.asarray(idx).ravel(), 1.0)
    np.testing.assert_array_equal(np.asarray(g).ravel(), expect)


# ---------------------------------------------------------------- transformations, dtypes

@pytest.mark.parametrize("fn", [
    lambda v: cnnjax.max_pool(v, 3, 2, 1, dilation=2, ceil_mode=True),
    lambda v: cnnjax.max_pool_with_indices(v, 2, 1)[1],
    lambda v: cnnjax.avg_pool(v, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda v: cnnjax.sum_pool(v, 2),
])
def test_jit_and_vmap(rng, fn):
    x = rng.standard_normal((3, 7, 7, 2)).astype(np.float32)
    np.testing.assert_array_equal(jax.jit(fn)(x), fn(x))
    batched = jax.vmap(lambda v: fn(v[None])[0])(x)
    np.testing.assert_allclose(batched, fn(x), rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_is_kept(dtype):
    x = jnp.ones((1, 4, 4, 2), dtype)
    for y in (cnnjax.max_pool(x, 2), cnnjax.avg_pool(x, 3, 1, 1, count_include_pad=False),
              cnnjax.sum_pool(x, 2), cnnjax.max_pool_with_indices(x, 2)[0]):
        assert y.dtype == dtype
    g = jax.grad(lambda v: cnnjax.max_pool(v, 2, 1, dilation=2).sum().astype(jnp.float32))(x)
    assert g.dtype == dtype


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("call,match", [
    (lambda: cnnjax.max_pool(jnp.ones((4, 4)), 2), "max_pool: x must have rank 3 to 5"),
    (lambda: cnnjax.max_pool(jnp.ones((1, 4, 4, 1)), (2, 2, 2)), "window_shape must be"),
    (lambda: cnnjax.avg_pool(jnp.ones((1, 4, 4, 1)), (2,)), "avg_pool: window_shape must"),
    (lambda: cnnjax.sum_pool(jnp.ones((1, 4, 4, 1)), 0), "sum_pool: window_shape must be >= 1"),
    (lambda: cnnjax.max_pool(jnp.ones((1, 4, 4, 1)), 2, padding="FULL"), "'FULL'"),
    (lambda: cnnjax.max_pool(jnp.ones((1, 4, 4, 1)), 5), "larger than the padded input"),
    (lambda: cnnjax.max_pool(jnp.ones((1, 4, 4, 1)), 2, dilation=4), "dilation 4"),
    (lambda: cnnjax.max_pool(jnp.ones((1, 4, 4, 1)), 2, strides=0), "strides must be >= 1"),
    (lambda: cnnjax.max_pool(jnp.ones((1, 4, 4, 1), jnp.int32), 2), "floating dtype"),
    (lambda: cnnjax.max_unpool(jnp.ones((1, 2, 2, 1)), jnp.zeros((1, 2, 1), jnp.int32), (4, 4)),
     "max_unpool: indices must have the shape"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ---------------------------------------------------------------- PyTorch

def _to_torch(x):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.moveaxis(np.asarray(x), -1, 1).copy())


def _from_torch(t):
    return np.moveaxis(t.detach().numpy(), 1, -1)


TORCH_MAX = [
    ((9,), 3, 2, 1, 2, True),
    ((8, 7), 2, None, 0, 1, False),
    ((8, 7), 3, 2, 1, 1, True),
    ((9, 8), 3, 2, 1, 2, True),
    ((9, 8), (2, 3), (1, 2), (1, 1), (3, 1), False),
    ((5, 6, 7), 2, None, 1, 1, True),
    ((6, 6, 5), 3, 2, 1, (1, 2, 1), False),
]


@pytest.mark.parametrize("spatial,window,strides,padding,dilation,ceil_mode", TORCH_MAX)
def test_max_pool_matches_torch(rng, spatial, window, strides, padding, dilation, ceil_mode):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    d = len(spatial)
    x = distinct(rng, (2, *spatial, 3))
    fn = getattr(F, f"max_pool{d}d")
    tx = _to_torch(x).requires_grad_(True)
    ty, tidx = fn(tx, window, strides, padding, dilation, ceil_mode=ceil_mode,
                  return_indices=True)
    ty.backward(torch.from_numpy(np.moveaxis(np.cos(np.arange(ty.numel()).reshape(
        _from_torch(ty).shape)), -1, 1).copy()))
    y, idx = cnnjax.max_pool_with_indices(x, window, strides, padding, dilation=dilation,
                                          ceil_mode=ceil_mode)
    np.testing.assert_array_equal(y, _from_torch(ty))
    np.testing.assert_array_equal(idx, _from_torch(tidx))
    cot = np.cos(np.arange(y.size).reshape(y.shape))
    _, vjp = jax.vjp(lambda v: cnnjax.max_pool(v, window, strides, padding, dilation=dilation,
                                               ceil_mode=ceil_mode), x)
    np.testing.assert_allclose(vjp(cot)[0], _from_torch(tx.grad), rtol=1e-12)
    if dilation != 1:
        return  # PyTorch's max_unpool has no dilation.
    # Unpooling with PyTorch's own indices gives PyTorch's MaxUnpool.
    unpool = getattr(F, f"max_unpool{d}d")
    tup = unpool(ty.detach(), tidx, window, strides, padding, output_size=spatial)
    np.testing.assert_array_equal(cnnjax.max_unpool(y, idx, spatial), _from_torch(tup))


def test_max_pool_ties_match_torch():
    torch = pytest.importorskip("torch")
    x = np.round(np.random.default_rng(1).standard_normal((1, 7, 7, 2)))  # many ties
    tx = _to_torch(x).requires_grad_(True)
    ty = torch.nn.functional.max_pool2d(tx, 3, 2, 1, 1, ceil_mode=True)
    ty.sum().backward()
    g = jax.grad(lambda v: cnnjax.max_pool(v, 3, 2, 1, ceil_mode=True).sum())(x)
    np.testing.assert_array_equal(g, _from_torch(tx.grad))


TORCH_AVG = [
    ((9,), 3, 2, 1, True),
    ((8, 7), 2, None, 0, False),
    ((8, 7), 3, 2, 1, True),
    ((7, 8), (3, 2), (2, 3), (1, 1), True),
    ((5, 6, 7), 3, 2, 1, True),
    ((4, 6, 5), 2, None, 1, False),
]


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("spatial,window,strides,padding,ceil_mode", TORCH_AVG)
def test_avg_pool_matches_torch(rng, spatial, window, strides, padding, ceil_mode,
                                count_include_pad):
    torch = pytest.importorskip("torch")
    d = len(spatial)
    x = rng.standard_normal((2, *spatial, 3))
    fn = getattr(torch.nn.functional, f"avg_pool{d}d")
    ty = fn(_to_torch(x), window, strides, padding, ceil_mode, count_include_pad)
    y = cnnjax.avg_pool(x, window, strides, padding, ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad)
    np.testing.assert_allclose(y, _from_torch(ty), rtol=1e-12, atol=1e-14)
