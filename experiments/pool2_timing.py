"""Forward+backward time of min, median, fractional max and tree pooling next to
``max_pool``, and of ``fractional_max_pool`` next to PyTorch's.

Command (from the repository root)::

    python experiments/pool2_timing.py           # [128, 24, 24, 64] float32

Each JAX op is ``jax.jit(jax.grad(lambda x: sum(op(x) * ct)))`` (the tree's filters are
differentiated too), as in ``experiments/pool_timing.py``; PyTorch runs
``fractional_max_pool2d`` forward and ``autograd.grad`` on the same data in its native
``[N, C, H, W]`` layout with the same samples. The ops are timed in interleaved rounds so
that load from other processes hits all of them alike; the table shows medians and minima
over all rounds. The fractional rows pool 24 → 17 (ratio ≈ 1/√2, Graham's choice) with
windows 2 and 3 and fixed samples.

Measured on this machine (2 CPU cores shared with other jobs, load average ~9, so the
medians are noisy and the min column is the less disturbed one), jax 0.10.2, torch 2.13.0
CPU, one run::

    | op                                          | median ms | × max_pool | min ms |
    |---------------------------------------------|----------:|-----------:|-------:|
    | max_pool 2x2                                |       6.3 |       1.00 |    1.8 |
    | min_pool 2x2                                |       6.4 |       1.01 |    2.3 |
    | median_pool 2x2                             |       5.7 |       0.90 |    3.1 |
    | median_pool 3x3/2 pad 1 reflect             |     299.2 |      47.45 |  184.9 |
    | tree_pool 2x2 depth 2 (+ filters)           |      44.1 |       7.00 |   24.7 |
    | fractional_max_pool 2x2 -> 12x12            |      28.0 |       4.44 |   13.0 |
    | fractional_max_pool k=2 -> 17x17            |      37.4 |       5.94 |   22.2 |
    | fractional_max_pool k=3 -> 17x17            |      88.0 |      13.95 |   55.6 |
    | (torch) fractional_max_pool2d k=2 -> 17x17  |     167.6 |      26.58 |   86.2 |
    | (torch) fractional_max_pool2d k=3 -> 17x17  |     199.6 |      31.66 |  133.8 |

``fractional_max_pool`` is 2-4× faster than PyTorch's on the same samples. The 3×3 median
with reflect padding pays for overlapping windows (``max_pool`` 3×3/2 pad 1 is ~12×
``max_pool`` 2×2, ``experiments/pool_timing.py``), for the median network and for the
mirrored padding (~2.5× the ``'zeros'`` padding mode).
"""
from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

import cnnjax
from cnnjax.bench.timing import jax_call, measure


def _jax_ops(n: int, c: int, out: int):
    u = jax.random.uniform(jax.random.key(2), (n, c, 2), jnp.float32)
    leaves = jnp.full((2, 2, 2), 0.25) + 0.025 * jax.random.normal(jax.random.key(3), (2, 2, 2))
    gates = jnp.zeros((1, 2, 2), jnp.float32)
    return [
        ("max_pool 2x2", lambda x: cnnjax.max_pool(x, 2), ()),
        ("min_pool 2x2", lambda x: cnnjax.min_pool(x, 2), ()),
        ("median_pool 2x2", lambda x: cnnjax.median_pool(x, 2), ()),
        ("median_pool 3x3/2 pad 1 reflect", lambda x: cnnjax.median_pool(x, 3, 2, 1), ()),
        ("tree_pool 2x2 depth 2 (+ filters)", lambda x, lv, gt: cnnjax.tree_pool(x, lv, gt, 2),
         (leaves, gates)),
        ("fractional_max_pool 2x2 -> 12x12",
         lambda x: cnnjax.fractional_max_pool(x, 2, 12, train=True, samples=u), ()),
        (f"fractional_max_pool k=2 -> {out}x{out}",
         lambda x: cnnjax.fractional_max_pool(x, 2, out, train=True, samples=u), ()),
        (f"fractional_max_pool k=3 -> {out}x{out}",
         lambda x: cnnjax.fractional_max_pool(x, 3, out, train=True, samples=u), ()),
    ], u


def _jax_step(fn, x, params):
    y = fn(x, *params)
    ct = jnp.cos(jnp.arange(y.size, dtype=x.dtype)).reshape(y.shape)
    step = jax.jit(jax.grad(lambda x, *p: jnp.sum(fn(x, *p) * ct),
                            argnums=tuple(range(1 + len(params)))))
    return jax_call(step, x, *params)


def _torch_steps(x: np.ndarray, u: np.ndarray, out: int):
    try:
        import torch
    except ImportError:
        return []
    tx = torch.from_numpy(np.moveaxis(x, -1, 1).copy()).requires_grad_(True)
    samples = torch.from_numpy(u[..., ::-1].copy())  # PyTorch lists W first
    steps = []
    for k in (2, 3):
        ct = torch.cos(torch.arange(x.shape[0] * x.shape[-1] * out * out, dtype=tx.dtype))
        ct = ct.reshape(x.shape[0], x.shape[-1], out, out)

        def step(k=k, ct=ct):
            y = torch.nn.functional.fractional_max_pool2d(tx, k, output_size=out,
                                                          _random_samples=samples)
            return torch.autograd.grad((y * ct).sum(), tx)

        step()
        steps.append((f"(torch) fractional_max_pool2d k={k} -> {out}x{out}", step))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=4, default=(128, 24, 24, 64))
    parser.add_argument("--out", type=int, default=17, help="fractional output size")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per round")
    args = parser.parse_args()
    n, h, w, c = args.shape
    x = jax.random.normal(jax.random.key(1), (n, h, w, c), jnp.float32)
    ops, u = _jax_ops(n, c, args.out)
    steps = [(name, _jax_step(fn, x, params)) for name, fn, params in ops]
    steps += _torch_steps(np.asarray(x), np.asarray(u), args.out)
    load = [os.getloadavg()[0]]
    cands = dict(steps)
    medians = measure(cands, args.rounds * args.repeats)
    minima = measure(cands, args.rounds * args.repeats, warmup=0, stat=min)
    load.append(os.getloadavg()[0])
    base = medians[steps[0][0]]
    print(f"shape {tuple(args.shape)} float32, forward+backward, {args.rounds} rounds × "
          f"{args.repeats} runs, load average {min(load):.1f}-{max(load):.1f} on "
          f"{os.cpu_count()} cores")
    print("| op                                          | median ms | × max_pool | min ms |")
    print("|---------------------------------------------|----------:|-----------:|-------:|")
    for name, med in medians.items():
        print(f"| {name:<43} | {med * 1e3:9.1f} | {med / base:10.2f} | {minima[name] * 1e3:6.1f} |")


if __name__ == "__main__":
    main()
