"""Forward+backward time of every pooling op relative to ``max_pool`` (issue 3, issue 6).

Command (from the repository root)::

    python experiments/pool_timing.py            # [128, 24, 24, 64] float32, 2x2 windows

Each op is ``jax.jit(jax.grad(lambda x: sum(op(x) * ct)))`` (learnable parameters are
inputs of the differentiated function too), warmed up once, then timed ``--repeats``
times. Stochastic ops run in training mode with a fixed key. Spectral/adaptive ops pool
to the 12x12 that 2x2 windows give. The table shows medians and minima and the ratios to
``max_pool``.

Measured on this machine (2 CPU cores shared with other jobs — load average 6.8 during
the run, so medians are noisy; the min column is the less disturbed one), jax 0.10.2,
one run::

    | op                                  | median ms | × max_pool | min ms | × max_pool |
    |-------------------------------------|----------:|-----------:|-------:|-----------:|
    | max_pool                            |       8.4 |       1.00 |    4.4 |       1.00 |
    | avg_pool                            |       2.7 |       0.32 |    2.4 |       0.55 |
    | sum_pool                            |       5.8 |       0.69 |    2.2 |       0.49 |
    | max_pool_with_indices               |       9.2 |       1.10 |    4.6 |       1.05 |
    | lp_pool(p=3)                        |      68.1 |       8.12 |   34.6 |       7.90 |
    | lp_pool(p learned)                  |     292.4 |      34.86 |  189.8 |      43.30 |
    | l2_pool                             |      48.5 |       5.78 |   21.4 |       4.87 |
    | mixed_pool(alpha learned, [C])      |      29.7 |       3.54 |   16.0 |       3.65 |
    | stochastic_mixed_pool(train)        |      11.2 |       1.34 |    3.9 |       0.89 |
    | gated_pool(gate [2,2,C])            |      84.4 |      10.07 |   42.9 |       9.79 |
    | stochastic_pool(train)              |      26.3 |       3.13 |   19.2 |       4.38 |
    | stochastic_pool(inference)          |      32.7 |       3.90 |   11.7 |       2.66 |
    | spectral_pool                       |       5.1 |       0.61 |    2.3 |       0.52 |
    | spectral_pool(train)                |      36.1 |       4.30 |   26.9 |       6.14 |
    | adaptive_avg_pool                   |       6.6 |       0.78 |    2.0 |       0.47 |
    | adaptive_max_pool                   |       8.6 |       1.03 |    6.4 |       1.45 |
    | global_avg_pool                     |       6.3 |       0.75 |    2.2 |       0.50 |
    | global_max_pool                     |      22.8 |       2.71 |   17.5 |       3.99 |
    | (ref) lax.reduce_window max         |     280.5 |      33.45 |  241.9 |      55.18 |
    | (ref) max_pool 3x3/2 pad 1          |      63.0 |       7.51 |   36.0 |       8.22 |
    | (ref) max_pool 2x2/1 dilation 2     |      24.2 |       2.89 |   17.6 |       4.02 |

Where the time goes: XLA's CPU ``log``/``exp``/``pow`` are slow (``lp_pool`` with a
non-integer or learned ``p`` is dominated by ``exp(p·log r)`` on every window element),
threefry random bits are ~half of ``stochastic_pool(train)``, and the gated pool pays for
the gate's per-position reductions and a sigmoid.

``(ref)`` rows are for context: XLA's own ``reduce_window`` max with its VJP (what
``flax.linen.max_pool`` does) and two overlapping / dilated max-pool geometries.
"""
from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import cnnjax


def _ops(c: int):
    key = jax.random.key(0)
    alpha = jnp.full((c,), 0.5, jnp.float32)
    gate = jnp.zeros((2, 2, c), jnp.float32)
    # (name, fn(x, *params), params)
    return [
        ("max_pool", lambda x: cnnjax.max_pool(x, 2), ()),
        ("avg_pool", lambda x: cnnjax.avg_pool(x, 2), ()),
        ("sum_pool", lambda x: cnnjax.sum_pool(x, 2), ()),
        ("max_pool_with_indices", lambda x: cnnjax.max_pool_with_indices(x, 2)[0], ()),
        ("lp_pool(p=3)", lambda x: cnnjax.lp_pool(x, 2, p=3.0), ()),
        ("lp_pool(p learned)", lambda x, p: cnnjax.lp_pool(x, 2, p=p), (jnp.float32(3.0),)),
        ("l2_pool", lambda x: cnnjax.l2_pool(x, 2), ()),
        ("mixed_pool(alpha learned, [C])", lambda x, a: cnnjax.mixed_pool(x, 2, alpha=a),
         (alpha,)),
        ("stochastic_mixed_pool(train)",
         lambda x: cnnjax.stochastic_mixed_pool(x, 2, train=True, key=key), ()),
        ("gated_pool(gate [2,2,C])", lambda x, g: cnnjax.gated_pool(x, g, 2), (gate,)),
        ("stochastic_pool(train)", lambda x: cnnjax.stochastic_pool(x, 2, train=True, key=key),
         ()),
        ("stochastic_pool(inference)", lambda x: cnnjax.stochastic_pool(x, 2, train=False), ()),
        ("spectral_pool", lambda x: cnnjax.spectral_pool(x, (12, 12)), ()),
        ("spectral_pool(train)",
         lambda x: cnnjax.spectral_pool(x, (12, 12), train=True, key=key), ()),
        ("adaptive_avg_pool", lambda x: cnnjax.adaptive_avg_pool(x, (12, 12)), ()),
        ("adaptive_max_pool", lambda x: cnnjax.adaptive_max_pool(x, (12, 12)), ()),
        ("global_avg_pool", cnnjax.global_avg_pool, ()),
        ("global_max_pool", cnnjax.global_max_pool, ()),
        ("(ref) lax.reduce_window max",
         lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"),
         ()),
        ("(ref) max_pool 3x3/2 pad 1", lambda x: cnnjax.max_pool(x, 3, 2, 1), ()),
        ("(ref) max_pool 2x2/1 dilation 2", lambda x: cnnjax.max_pool(x, 2, 1, dilation=2), ()),
    ]


def time_op(fn, x, params, repeats: int) -> tuple[float, float]:
    """(median, min) seconds of a jitted forward+backward (gradient w.r.t. x and params)."""
    ct = jnp.cos(jnp.arange(fn(x, *params).size, dtype=x.dtype)).reshape(fn(x, *params).shape)

    def loss(x, *params):
        return jnp.sum(fn(x, *params) * ct)

    step = jax.jit(jax.grad(loss, argnums=tuple(range(1 + len(params)))))
    jax.block_until_ready(step(x, *params))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(step(x, *params))
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=4, default=(128, 24, 24, 64))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    x = jax.random.normal(jax.random.key(1), tuple(args.shape), jnp.float32)
    load = os.getloadavg()[0]
    rows = [(name, *time_op(fn, x, params, args.repeats))
            for name, fn, params in _ops(args.shape[-1])]
    base_med, base_min = rows[0][1], rows[0][2]
    print(f"shape {tuple(args.shape)} float32, 2x2 windows, forward+backward, "
          f"{args.repeats} timed runs, load average {load:.1f} on {os.cpu_count()} cores")
    print("| op                                  | median ms | × max_pool | min ms | × max_pool |")
    print("|-------------------------------------|----------:|-----------:|-------:|-----------:|")
    for name, med, mn in rows:
        print(f"| {name:<35} | {med * 1e3:9.1f} | {med / base_med:10.2f} | {mn * 1e3:6.1f} "
              f"| {mn / base_min:10.2f} |")


if __name__ == "__main__":
    main()
