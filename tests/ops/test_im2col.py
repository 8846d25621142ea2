"""Tests of ``cnnjax.im2col`` / ``cnnjax.col2im`` and the chunked im2col conv path."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnjax
from cnnjax.ops import _im2col
from tests.reference import conv as ref

CASES = [  # d, kernel_size, stride, padding, dilation
    (1, 3, 1, "VALID", 1),
    (1, 2, 3, "SAME", 2),
    (2, 3, 1, 1, 1),
    (2, (2, 3), (2, 1), [(1, 0), (0, 2)], (1, 2)),
    (2, 3, 3, "VALID", 1),  # stride > kernel: some pixels are in no window
    (3, 2, 2, "SAME", 1),
]


@pytest.mark.parametrize("d,k,stride,padding,dilation", CASES)
def test_im2col_matches_reference_and_col2im_is_its_adjoint(rng, d, k, stride, padding, dilation):
    x = rng.normal(size=(2,) + (7,) * d + (3,))
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    cols = jax.jit(lambda x: cnnjax.im2col(x, k, **kw))(x)
    np.testing.assert_array_equal(cols, ref.im2col(x, k, **kw))
    c = rng.normal(size=cols.shape)
    back = jax.jit(lambda c: cnnjax.col2im(c, x.shape, k, **kw))(c)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-12)


def test_conv_is_im2col_times_reshaped_kernel(rng):
    x = rng.normal(size=(2, 6, 5, 3))
    w = rng.normal(size=(3, 2, 3, 4))
    kw = dict(stride=(1, 2), padding="SAME", dilation=(2, 1))
    cols = cnnjax.im2col(x, (3, 2), **kw)
    np.testing.assert_allclose(cols @ w.reshape(-1, 4), cnnjax.conv(x, w, impl="xla", **kw),
                               rtol=1e-12, atol=1e-12)


def test_col2im_counts_windows():
    x = jnp.ones((1, 4, 4, 1))
    counts = cnnjax.col2im(cnnjax.im2col(x, 3), x.shape, 3)[0, :, :, 0]
    np.testing.assert_array_equal(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


def test_eager_vmap_and_dtype(rng):
    x = rng.normal(size=(3, 5, 5, 2)).astype(np.float32)
    cols = cnnjax.im2col(x, 2, stride=2, padding=1)
    assert cols.dtype == jnp.float32
    np.testing.assert_array_equal(cols, ref.im2col(x, 2, stride=2, padding=1))
    mapped = jax.vmap(lambda xi: cnnjax.im2col(xi[None], 2, stride=2, padding=1)[0])(x)
    np.testing.assert_array_equal(mapped, cols)
    back = cnnjax.col2im(cols, x.shape, 2, stride=2, padding=1)
    assert back.dtype == jnp.float32
    mapped = jax.vmap(lambda c: cnnjax.col2im(c[None], (1, *x.shape[1:]), 2, stride=2,
                                              padding=1)[0])(cols)
    np.testing.assert_allclose(mapped, back)


@pytest.mark.parametrize("chunk_bytes", [1, 300])
def test_batch_chunking_is_invisible(rng, monkeypatch, chunk_bytes):
    # 1 byte: one example per lax.scan step; 300 bytes: chunks of 2 plus a tail of 1.
    monkeypatch.setattr(_im2col, "_CHUNK_BYTES", chunk_bytes)
    x = rng.normal(size=(5, 4, 4, 2))
    w = rng.normal(size=(3, 3, 1, 4))
    f = lambda x, w: cnnjax.conv(x, w, padding=1, groups=2, impl="im2col")  # noqa: E731
    loss = lambda f: lambda x, w: jnp.sum(jnp.cos(f(x, w)))  # noqa: E731
    np.testing.assert_allclose(jax.jit(f)(x, w), ref.conv(x, w, padding=1, groups=2), rtol=1e-10)
    xla = lambda x, w: cnnjax.conv(x, w, padding=1, groups=2, impl="xla")  # noqa: E731
    got = jax.jit(jax.grad(loss(f), (0, 1)))(x, w)
    want = jax.grad(loss(xla), (0, 1))(x, w)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)


def test_bad_input():
    x = np.ones((1, 4, 4, 2))
    with pytest.raises(ValueError, match="im2col: x must have rank"):
        cnnjax.im2col(np.ones((4, 2)), 3)
    with pytest.raises(ValueError, match="im2col: kernel_size .* is larger than the padded input"):
        cnnjax.im2col(x, 5)
    with pytest.raises(ValueError, match="im2col: stride must be >= 1"):
        cnnjax.im2col(x, 3, stride=0)
    with pytest.raises(ValueError, match=r"col2im: cols must have shape \(1, 2, 2, 18\)"):
        cnnjax.col2im(np.ones((1, 2, 2, 9)), x.shape, 3)
    with pytest.raises(ValueError, match="col2im: input_shape must be"):
        cnnjax.col2im(np.ones((1, 2, 2, 18)), (4, 4), 3)


def test_shard_friendly_chunk_sizes():
    assert _im2col._shard_friendly_chunk(128, 3, 1) == 3       # one device: untouched
    assert _im2col._shard_friendly_chunk(128, 3, 4) == 4       # divides 128, multiple of 4
    assert _im2col._shard_friendly_chunk(96, 5, 4) == 8
    assert _im2col._shard_friendly_chunk(10, 3, 4) == 3        # nothing fits: keep b + tail
    assert _im2col._shard_friendly_chunk(8, 20, 4) == 20       # b >= n: one chunk


_SHARDED_SCRIPT = r"""
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from cnnjax.ops import _im2col
import cnnjax
_im2col._CHUNK_BYTES = 4 * 9 * 8 * 8 * 3 * 4     # force ~4-example chunks
mesh = Mesh(np.array(jax.devices()), ("data",))
x = jax.random.normal(jax.random.key(0), (16, 10, 10, 3))
w = jax.random.normal(jax.random.key(1), (3, 3, 3, 5))
grad = lambda impl: jax.jit(jax.grad(
    lambda x, w: jnp.sum(jnp.sin(cnnjax.conv(x, w, impl=impl))), argnums=(0, 1)))
want = grad("xla")(x, w)
got = grad("im2col")(jax.device_put(x, NamedSharding(mesh, P("data"))), w)
for a, b in zip(got, want):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-3)
print("ok")
"""


def test_interleaved_chunks_on_a_sharded_batch_match_xla():
    """With several devices the chunks interleave the batch; results must not change."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", _SHARDED_SCRIPT], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
