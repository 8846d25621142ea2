"""Tests of the im2col convolution path (``_conv_im2col.py``): batch chunks and their
interleaving over devices, and its custom VJP (the impls' agreement is in test_conv.py)."""
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cnnjax
from cnnjax.ops import _conv_im2col
from tests.reference import conv as ref


def test_im2col_gradients_second_order_and_chunked(rng, monkeypatch):
    # Tiny chunks force the lax.scan batch-chunk path (with a tail) in forward and backward.
    monkeypatch.setattr(_conv_im2col, "_CHUNK_BYTES", 1)
    x = rng.normal(size=(3, 5, 5, 2))
    w = rng.normal(size=(3, 3, 1, 4))
    kw = dict(padding="SAME", groups=2, impl="im2col")
    f = jax.jit(lambda x, w: cnnjax.conv(x, w, **kw))
    check_grads(f, (x, w), order=2, modes=("rev",))
    g_im2col = jax.grad(lambda x, w: jnp.sum(jnp.sin(f(x, w))), (0, 1))(x, w)
    g_xla = jax.grad(lambda x, w: jnp.sum(jnp.sin(cnnjax.conv(x, w, padding="SAME", groups=2,
                                                               impl="xla"))), (0, 1))(x, w)
    for a, e in zip(g_im2col, g_xla):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk_bytes", [1, 300])
def test_batch_chunking_is_invisible(rng, monkeypatch, chunk_bytes):
    # 1 byte: one example per lax.scan step; 300 bytes: chunks of 2 plus a tail of 1.
    monkeypatch.setattr(_conv_im2col, "_CHUNK_BYTES", chunk_bytes)
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


def test_reused_host_memory_makes_the_patches_in_one_piece(monkeypatch):
    # MnistNet conv2 at batch 128: 663 kB of patches per example.
    from cnnjax import _host_memory
    from cnnjax.ops._conv_geometry import ConvGeometry
    geom = ConvGeometry((3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    shapes = ((128, 26, 26, 32), (3, 3, 32, 64), geom, 4)
    monkeypatch.setattr(_host_memory, "_applied", False)
    assert _conv_im2col._chunk(*shapes) == 2  # ~2 MB chunks (3 would leave a tail)
    monkeypatch.setattr(_host_memory, "_applied", True)  # the flag only: no mallopt here
    assert _conv_im2col._chunk(*shapes) == 128
    # Still bounded: 10k examples of 663 kB are 6.5 GB of patches.
    assert _conv_im2col._chunk((10_000, 26, 26, 32), (3, 3, 32, 64), geom, 4) < 10_000
    # Several processes compile one program whatever each set for itself: the plain chunks.
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    assert _conv_im2col._chunk(*shapes) == 2


def test_shard_friendly_chunk_sizes():
    chunk = _conv_im2col._shard_friendly_chunk
    assert chunk(128, 3, 1) == 3       # one device: untouched
    assert chunk(128, 3, 4) == 4       # divides 128, multiple of 4
    assert chunk(96, 5, 4) == 8
    assert chunk(10, 3, 4) == 3        # nothing fits: keep b + tail
    assert chunk(8, 20, 4) == 20       # b >= n: one chunk


_SHARDED_SCRIPT = r"""
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from cnnjax.ops import _conv_im2col
import cnnjax
_conv_im2col._CHUNK_BYTES = 4 * 9 * 8 * 8 * 3 * 4     # force ~4-example chunks
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
    out = subprocess.run([sys.executable, "-c", _SHARDED_SCRIPT], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
