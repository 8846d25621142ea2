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
        gx = tx.clone().requires_grad_(True)
        tct = torch.ones(cfg.batch, POOL_SHAPE[2], POOL_SHAPE[0] // 2, POOL_SHAPE[1] // 2)

        def t_fwd():
            with torch.no_grad():
                return torch.nn.functional.max_pool2d(tx, 2)

        def t_fb():
            y = torch.nn.functional.max_pool2d(gx, 2)
            return torch.autograd.grad(y, (gx,), tct)
        fwd["torch max_pool2d"], fb["torch max_pool2d"] = t_fwd, t_fb
    t_f = measure(fwd, cfg.repeats)
    t_b = measure(fb, cfg.repeats)
    base_f, base_b = t_f.get("max_pool"), t_b.get("max_pool")
    rows = [{"op": name, "fwd_ms": t_f[name] * 1e3, "fwd_bwd_ms": t_b[name] * 1e3,
             "fwd_vs_max_pool": ratio(t_f[name], base_f),
             "fwd_bwd_vs_max_pool": ratio(t_b[name], base_b)} for name in fwd]
    cfg.log(f"pool: {len(rows)} ops")
    return {"shape": [cfg.batch, *POOL_SHAPE], "rows": rows, "missing": missing}
