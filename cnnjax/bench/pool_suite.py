"""The pooling suite: every pooling op forward and forward+backward, beside ``max_pool`` and
PyTorch."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np

import cnnjax
import cnnjax.models
from cnnjax.bench.config import Config
from cnnjax.bench.peers import nchw
from cnnjax.bench.timing import jax_call, measure, ratio

POOL_SHAPE = (24, 24, 64)


def _pool_ops():
    """``name -> fn(x, key)`` for every pooling op the installed cnnjax provides."""
    gate = jnp.full((2, 2), 0.1, jnp.float32)
    leaves = jnp.full((2, 2, 2), 0.25, jnp.float32)  # tree pooling of depth 2
    gates = jnp.zeros((1, 2, 2), jnp.float32)
    half = (POOL_SHAPE[0] // 2, POOL_SHAPE[1] // 2)
    specs: dict[str, Callable] = {
        "max_pool": lambda op: lambda x, k: op(x, 2),
        "max_pool_with_indices": lambda op: lambda x, k: op(x, 2)[0],
        "avg_pool": lambda op: lambda x, k: op(x, 2),
        "sum_pool": lambda op: lambda x, k: op(x, 2),
        "lp_pool": lambda op: lambda x, k: op(x, 2, p=3.0),
        "l2_pool": lambda op: lambda x, k: op(x, 2),
        "mixed_pool": lambda op: lambda x, k: op(x, 2, alpha=0.5),
        "stochastic_mixed_pool": lambda op: lambda x, k: op(x, 2, alpha=0.5, train=True, key=k),
        "gated_pool": lambda op: lambda x, k: op(x, gate, 2),
        "stochastic_pool": lambda op: lambda x, k: op(x, 2, train=True, key=k),
        "spectral_pool": lambda op: lambda x, k: op(x, half),
        "adaptive_avg_pool": lambda op: lambda x, k: op(x, half),
        "adaptive_max_pool": lambda op: lambda x, k: op(x, half),
        "global_avg_pool": lambda op: lambda x, k: op(x),
        "global_max_pool": lambda op: lambda x, k: op(x),
        "blur_pool": lambda op: lambda x, k: op(x, 3, 2),
        "max_blur_pool": lambda op: lambda x, k: op(x, 2, 2, filter_size=3),
        "soft_pool": lambda op: lambda x, k: op(x, 2),
        "lip_pool": lambda op: lambda x, k: op(x, 0.5 * x, 2),
        "gem_pool": lambda op: lambda x, k: op(x, 2, p=3.0),
        "lse_pool": lambda op: lambda x, k: op(x, 2, r=1.0),
        "min_pool": lambda op: lambda x, k: op(x, 2),
        "median_pool": lambda op: lambda x, k: op(x, 2),
        "fractional_max_pool": lambda op: lambda x, k: op(x, 2, FRACTIONAL_OUT, train=True,
                                                          key=k),
        "tree_pool": lambda op: lambda x, k: op(x, leaves, gates, 2),
        "spatial_pyramid_pool": lambda op: lambda x, k: op(x),
        "global_gem_pool": lambda op: lambda x, k: op(x),
        "global_lse_pool": lambda op: lambda x, k: op(x),
    }
    ops, missing = {}, []
    for name, make in specs.items():
        op = getattr(cnnjax, name, None)
        if op is None:
            missing.append(name)
        else:
            ops[name] = make(op)
    ops["flax.linen.max_pool"] = lambda x, k: fnn.max_pool(x, (2, 2), (2, 2))
    return ops, missing


#: fractional_max_pool's output on the 24x24 maps: a ratio of about 1.4, window 2.
FRACTIONAL_OUT = (17, 17)


def _torch_pools(torch, channels: int) -> dict[str, Callable]:
    """PyTorch's equivalent of each op it has (``NCHW`` in, ``NCHW`` out), by display name."""
    F = torch.nn.functional
    taps = torch.tensor([1.0, 2.0, 1.0]) / 4
    blur = (taps[:, None] * taps[None, :]).expand(channels, 1, 3, 3).contiguous()

    def blur2(t):  # antialiased-cnns BlurPool: reflect pad, depthwise binomial conv, stride 2
        return F.conv2d(F.pad(t, (1, 1, 1, 1), mode="reflect"), blur, stride=2, groups=channels)

    def median(t):  # unfold + median, the usual PyTorch median pooling
        n, c, h, w = t.shape
        cols = F.unfold(t, 2, stride=2).view(n, c, 4, (h // 2) * (w // 2))
        return cols.median(dim=2).values.view(n, c, h // 2, w // 2)

    samples = torch.rand(1, channels, 2, generator=torch.Generator().manual_seed(0))
    return {
        "torch max_pool2d": lambda t: F.max_pool2d(t, 2),
        "torch avg_pool2d": lambda t: F.avg_pool2d(t, 2),
        "torch lp_pool2d(p=3)": lambda t: F.lp_pool2d(t, 3.0, 2),
        "torch -max_pool2d(-x) (min)": lambda t: -F.max_pool2d(-t, 2),
        "torch unfold+median": median,
        "torch pad+depthwise conv (blur)": blur2,
        "torch max_pool2d(s=1)+blur (maxblur)": lambda t: blur2(F.max_pool2d(t, 2, stride=1)),
        "torch fractional_max_pool2d": lambda t: F.fractional_max_pool2d(
            t, 2, output_size=FRACTIONAL_OUT,
            _random_samples=samples[:1].expand(t.shape[0], -1, -1).contiguous()),
    }


def _torch_candidates(torch, fn: Callable, tx) -> tuple[Callable, Callable]:
    """(forward, forward+backward) timing closures of a PyTorch pooling function."""
    gx = tx.clone().requires_grad_(True)
    with torch.no_grad():
        tct = torch.ones_like(fn(tx))

    def t_fwd():
        with torch.no_grad():
            return fn(tx)

    def t_fb():
        y = fn(gx)
        return y, torch.autograd.grad(y, (gx,), tct)
    return t_fwd, t_fb


def bench_pool(cfg: Config) -> dict[str, Any]:
    """Every pooling op, forward and forward+backward, in ms and relative to ``max_pool``."""
    key = jax.random.key(2)
    x = jax.random.normal(key, (cfg.batch, *POOL_SHAPE), jnp.float32)
    ops, missing = _pool_ops()
    fwd, fb = {}, {}
    for name, fn in ops.items():
        y = jax.eval_shape(fn, x, key)
        ct = jnp.ones(y.shape, y.dtype)

        def vjp_fn(x, k, ct, fn=fn):  # returns y too, so the forward is not dead code
            y, vjp = jax.vjp(lambda x: fn(x, k), x)
            return (y, *vjp(ct))
        fwd[name] = jax_call(jax.jit(fn), x, key)
        fb[name] = jax_call(jax.jit(vjp_fn), x, key, ct)
    torch = cfg.torch
    if torch is not None:
        tx = torch.from_numpy(nchw(np.asarray(x).transpose(0, 3, 1, 2)))
        for name, tfn in _torch_pools(torch, POOL_SHAPE[2]).items():
            fwd[name], fb[name] = _torch_candidates(torch, tfn, tx)
    t_f = measure(fwd, cfg.repeats)
    t_b = measure(fb, cfg.repeats)
    base_f, base_b = t_f.get("max_pool"), t_b.get("max_pool")
    rows = [{"op": name, "fwd_ms": t_f[name] * 1e3, "fwd_bwd_ms": t_b[name] * 1e3,
             "fwd_vs_max_pool": ratio(t_f[name], base_f),
             "fwd_bwd_vs_max_pool": ratio(t_b[name], base_b)} for name in fwd]
    for r in rows:  # measured interleaved, so every row finishes at once
        cfg.log(f"pool {r['op']}: fwd {r['fwd_ms']:.2f} ms, fwd+bwd {r['fwd_bwd_ms']:.2f} ms")
    return {"shape": [cfg.batch, *POOL_SHAPE], "rows": rows, "missing": missing}
