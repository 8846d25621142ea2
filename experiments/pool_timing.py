"""Forward+backward time of every pooling op relative to ``max_pool``.

Command (from the repository root)::

    python experiments/pool_timing.py            # [128, 24, 24, 64] float32, 2x2 windows

Each op is ``jax.jit(jax.grad(lambda x: sum(op(x) * ct)))`` (learnable parameters are
inputs of the differentiated function too), warmed up once, then timed ``--repeats``
times. Stochastic ops run in training mode with a fixed key. Spectral/adaptive ops pool
to the 12x12 that 2x2 windows give. The table shows medians and minima and the ratios to
``max_pool``.

Measured on this machine (2 CPU cores shared with other jobs — load average 6.1 during
the run, so single rows can be off by 2×; the min column is the less disturbed one),
jax 0.10.2, one run::

    | op                                  | median ms | × max_pool | min ms | × max_pool |
    |-------------------------------------|----------:|-----------:|-------:|-----------:|
    | max_pool                            |       8.4 |       1.00 |    3.9 |       1.00 |
    | avg_pool                            |       5.7 |       0.68 |    1.8 |       0.47 |
    | sum_pool                            |       3.3 |       0.39 |    2.0 |       0.52 |
    | max_pool_with_indices               |       7.9 |       0.94 |    4.2 |       1.07 |
    | lp_pool(p=3)                        |      51.3 |       6.13 |   41.9 |      10.76 |
    | lp_pool(p learned)                  |     245.7 |      29.36 |  198.2 |      50.87 |
    | l2_pool                             |      11.4 |       1.37 |   10.2 |       2.62 |
    | mixed_pool(alpha learned, [C])      |      18.4 |       2.20 |    7.2 |       1.84 |
    | stochastic_mixed_pool(train)        |       9.1 |       1.08 |    7.6 |       1.94 |
    | gated_pool(gate [2,2,C])            |      90.5 |      10.82 |   44.6 |      11.44 |
    | stochastic_pool(train)              |      45.9 |       5.49 |   16.0 |       4.11 |
    | stochastic_pool(inference)          |      17.4 |       2.08 |   13.0 |       3.34 |
    | spectral_pool                       |       6.6 |       0.79 |    2.1 |       0.55 |
    | spectral_pool(train)                |      33.7 |       4.02 |   21.2 |       5.43 |
    | adaptive_avg_pool                   |       2.3 |       0.27 |    2.1 |       0.53 |
    | adaptive_max_pool                   |      12.0 |       1.43 |    7.5 |       1.92 |
    | global_avg_pool                     |       5.4 |       0.65 |    1.3 |       0.32 |
    | global_max_pool                     |      35.9 |       4.29 |   15.9 |       4.07 |
    | (ref) lax.reduce_window max         |     294.3 |      35.17 |  258.9 |      66.45 |
    | (ref) max_pool 3x3/2 pad 1          |     100.2 |      11.97 |   44.9 |      11.52 |
    | (ref) max_pool 2x2/1 dilation 2     |      28.4 |       3.40 |   19.0 |       4.89 |

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

import jax
import jax.numpy as jnp
from jax import lax

import cnnjax
from cnnjax.bench.timing import jax_call, measure


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


def _step(fn, x, params):
    """A jitted forward+backward (gradient w.r.t. x and params) as a timing candidate."""
    y = fn(x, *params)
    ct = jnp.cos(jnp.arange(y.size, dtype=x.dtype)).reshape(y.shape)
    step = jax.jit(jax.grad(lambda x, *p: jnp.sum(fn(x, *p) * ct),
                            argnums=tuple(range(1 + len(params)))))
    return jax_call(step, x, *params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=4, default=(128, 24, 24, 64))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    x = jax.random.normal(jax.random.key(1), tuple(args.shape), jnp.float32)
    load = os.getloadavg()[0]
    steps = {name: _step(fn, x, params) for name, fn, params in _ops(args.shape[-1])}
    medians = measure(steps, args.repeats)
    minima = measure(steps, args.repeats, warmup=0, stat=min)
    rows = [(name, medians[name], minima[name]) for name in steps]
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
