"""Tests for cnnjax/ops/_fractional_pool.py: fractional max pooling (Graham 2014)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from tests.reference import fractional_pool as ref
from tests.reference.pool import distinct


def _to_torch(x):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.moveaxis(np.asarray(x), -1, 1).copy())


def _from_torch(t):
    return np.moveaxis(t.detach().numpy(), 1, -1)


CASES = [  # (spatial, window, output)
    ((9,), 2, 6),
    ((7,), 3, 1),
    ((8, 9), 2, (5, 6)),
    ((11, 9), (3, 2), (5, 7)),
    ((6, 6), 2, 5),          # alpha = 1: every start is i
    ((7, 6), 1, (4, 6)),     # window 1, output = input in one dim
    ((7, 8, 6), (2, 3, 2), (4, 5, 3)),
]


@pytest.mark.parametrize("spatial,window,output", CASES)
def test_matches_reference(rng, spatial, window, output):
    d = len(spatial)
    w, o = (tuple(np.broadcast_to(v, d)) for v in (window, output))
    x = rng.standard_normal((2, *spatial, 3))
    u = rng.random((2, 3, d))
    y = cnnjax.fractional_max_pool(x, window, output, train=True, samples=u)
    np.testing.assert_array_equal(y, ref.fractional_max_pool(x, w, o, u))
    # Inference: u = 0.5 for every (example, channel, dim).
    y_eval = cnnjax.fractional_max_pool(x, window, output, train=False)
    np.testing.assert_array_equal(y_eval, ref.fractional_max_pool(x, w, o, np.full(u.shape, 0.5)))


def test_start_rule_and_special_cases(rng):
    # n = 25 -> o = 18 with k = 2 (ratio ~ 1/√2): steps of 1 or 2, last window at n - k.
    s = ref.starts(0.3, 25, 2, 18)
    assert s[0] == 0 and s[-1] == 23 and set(np.diff(s)) == {1, 2}
    x = rng.standard_normal((1, 9, 8, 2))
    # o = n - k + 1 (alpha = 1) is dense max pooling with stride 1, whatever u is.
    np.testing.assert_array_equal(
        cnnjax.fractional_max_pool(x, 2, (8, 7), train=True, key=jax.random.key(0)),
        cnnjax.max_pool(x, 2, 1))
    # o = 1: the only window is the last k positions.
    np.testing.assert_array_equal(
        cnnjax.fractional_max_pool(x, 3, 1, train=True, key=jax.random.key(1))[:, 0, 0],
        x[:, 6:, 5:].max(axis=(1, 2)))
    # Window = input: global max pooling.
    np.testing.assert_array_equal(cnnjax.fractional_max_pool(x, (9, 8), 1, train=False),
                                  cnnjax.max_pool(x, (9, 8)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spatial,window,output", [
    ((24, 24), 2, (17, 17)), ((11, 9), (3, 2), (5, 7)), ((7, 6), 2, (1, 3))])
def test_matches_torch_2d(rng, dtype, spatial, window, output):
    torch = pytest.importorskip("torch")
    x = distinct(rng, (3, *spatial, 4), dtype)
    u = rng.random((3, 4, 2)).astype(dtype)
    u[0, 0] = np.nextafter(dtype(1), dtype(0))  # the largest sample: rounding at the edge
    tx = _to_torch(x).requires_grad_(True)
    # PyTorch's 2-D samples list W first.
    ty = torch.nn.functional.fractional_max_pool2d(
        tx, window, output_size=output, _random_samples=torch.from_numpy(u[..., ::-1].copy()))
    cot = np.cos(np.arange(ty.numel())).reshape(_from_torch(ty).shape).astype(dtype)
    ty.backward(_to_torch(cot))
    y, vjp = jax.vjp(lambda v: cnnjax.fractional_max_pool(v, window, output, train=True,
                                                          samples=u), x)
    np.testing.assert_array_equal(y, _from_torch(ty))
    # Overlapping windows add several cotangents per input, in another order than PyTorch.
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(vjp(cot)[0], _from_torch(tx.grad), rtol=tol, atol=tol)


def test_matches_torch_3d_and_1d(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = distinct(rng, (2, 7, 8, 9, 3))
    u = rng.random((2, 3, 3))
    tx = _to_torch(x).requires_grad_(True)
    # PyTorch's 3-D samples list T, H, W: the same order.
    ty = F.fractional_max_pool3d(tx, (2, 3, 2), output_size=(4, 5, 6),
                                 _random_samples=torch.from_numpy(u))
    ty.sum().backward()
    y, vjp = jax.vjp(lambda v: cnnjax.fractional_max_pool(v, (2, 3, 2), (4, 5, 6), train=True,
                                                          samples=u), x)
    np.testing.assert_array_equal(y, _from_torch(ty))
    np.testing.assert_array_equal(vjp(jnp.ones_like(y))[0], _from_torch(tx.grad))
    # 1-D: PyTorch's 2-D op on a map of height 1 (window 1 and output 1 there).
    x1 = distinct(rng, (2, 13, 3))
    u1 = rng.random((2, 3, 1))
    ty1 = F.fractional_max_pool2d(_to_torch(x1[:, None]), (1, 3), output_size=(1, 7),
                                  _random_samples=torch.from_numpy(
                                      np.concatenate([u1, np.zeros_like(u1)], -1)))
    np.testing.assert_array_equal(
        cnnjax.fractional_max_pool(x1, 3, 7, train=True, samples=u1), _from_torch(ty1)[:, 0])


def test_gradient_goes_to_first_maximum_like_torch():
    torch = pytest.importorskip("torch")
    x = np.zeros((1, 5, 5, 1))  # all ties
    u = np.full((1, 1, 2), 0.4)
    g = jax.grad(lambda v: cnnjax.fractional_max_pool(v, 2, 3, train=True, samples=u).sum())(x)
    tx = _to_torch(x).requires_grad_(True)
    torch.nn.functional.fractional_max_pool2d(
        tx, 2, output_size=3, _random_samples=torch.from_numpy(u)).sum().backward()
    np.testing.assert_array_equal(g, _from_torch(tx.grad))


def test_gradcheck(rng):
    x = distinct(rng, (2, 9, 7, 2))
    u = rng.random((2, 2, 2))
    check_grads(lambda v: cnnjax.fractional_max_pool(v, 2, (6, 5), train=True, samples=u),
                (x,), order=1, modes=["rev"])
    check_grads(lambda v: cnnjax.fractional_max_pool(v, 3, (4, 3), train=False), (x,),
                order=1, modes=["rev"])


def test_key_sampling(rng):
    x = rng.standard_normal((4, 12, 12, 8)).astype(np.float32)
    f = lambda k: cnnjax.fractional_max_pool(x, 2, 8, train=True, key=k)  # noqa: E731
    a, b, c = f(jax.random.key(0)), f(jax.random.key(0)), f(jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # The draws are the uniforms of the key, shape [N, C, d] in x's dtype.
    u = jax.random.uniform(jax.random.key(0), (4, 8, 2), jnp.float32)
    np.testing.assert_array_equal(a, cnnjax.fractional_max_pool(x, 2, 8, train=True, samples=u))
    # The pattern differs between examples and channels (not one draw for the batch).
    patterns = {tuple(ref.starts(v, 12, 2, 8, np.float32)) for v in np.asarray(u[..., 0]).ravel()}
    assert len(patterns) > 1
    # Given samples win over the key and over train=False.
    np.testing.assert_array_equal(
        cnnjax.fractional_max_pool(x, 2, 8, train=False, key=jax.random.key(5), samples=u), a)


def test_jit_vmap_dtypes(rng):
    x = rng.standard_normal((3, 10, 9, 2))
    u = rng.random((3, 2, 2))
    f = lambda v, s: cnnjax.fractional_max_pool(v, 2, (6, 7), train=True, samples=s)  # noqa
    np.testing.assert_array_equal(jax.jit(f)(x, u), f(x, u))  # traced samples
    np.testing.assert_array_equal(jax.vmap(lambda v, s: f(v[None], s[None])[0])(x, u), f(x, u))
    key_f = jax.jit(lambda v, k: cnnjax.fractional_max_pool(v, 2, 6, train=True, key=k))
    np.testing.assert_array_equal(
        key_f(x, jax.random.key(2)),
        cnnjax.fractional_max_pool(x, 2, 6, train=True, key=jax.random.key(2)))
    for dtype in (jnp.float32, jnp.float64, jnp.bfloat16):
        y = cnnjax.fractional_max_pool(x.astype(dtype), 2, 6, train=True, key=jax.random.key(0))
        assert y.dtype == dtype


@pytest.mark.parametrize("call,match", [
    (lambda: cnnjax.fractional_max_pool(jnp.ones((1, 6, 6, 2)), 3, 5, train=False),
     r"fractional_max_pool: output_shape \+ window_shape - 1 must be <= the input size in "
     r"every spatial dim, got 5 \+ 3 - 1 > 6 in spatial dim 0"),
    (lambda: cnnjax.fractional_max_pool(jnp.ones((1, 6, 6, 2)), 2, 4, train=True),
     r"fractional_max_pool: key must be given when train=True and samples is None, "
     r"got key=None\."),
    (lambda: cnnjax.fractional_max_pool(jnp.ones((1, 6, 6, 2)), 2, 4, train=False,
                                        samples=jnp.full((1, 2, 1), 0.5)),
     r"fractional_max_pool: samples must have shape \[N, C, d\] = \(1, 2, 2\), "
     r"got \(1, 2, 1\)\."),
    (lambda: cnnjax.fractional_max_pool(jnp.ones((1, 6, 6, 2)), 2, 4, train=False,
                                        samples=jnp.full((1, 2, 2), 1.0)),
     r"fractional_max_pool: samples must lie in \[0, 1\), got a value 1\.0\."),
    (lambda: cnnjax.fractional_max_pool(jnp.ones((1, 6, 6, 2)), 2, 4, train=1),
     r"fractional_max_pool: train must be a bool, got 1\."),
    (lambda: cnnjax.fractional_max_pool(jnp.ones((1, 6, 6, 2)), 2, 0, train=False),
     r"fractional_max_pool: output_shape must be >= 1 in every dim, got 0\."),
    (lambda: cnnjax.fractional_max_pool(jnp.ones((1, 6, 6, 2), jnp.int32), 2, 4, train=False),
     r"fractional_max_pool: x must have a floating dtype"),
    (lambda: cnnjax.fractional_max_pool(jnp.ones((1, 6, 6, 2)), 2, 4, train=False,
                                        samples=jnp.zeros((1, 2, 2), jnp.int32)),
     r"fractional_max_pool: samples must have a floating dtype, got int32\."),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
