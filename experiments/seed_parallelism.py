"""Two ways to train an ablation cell's seeds faster on a CPU: vmapped, or side by side.

Command (from the repository root)::

    python experiments/seed_parallelism.py

1. One LeNet-5 train step on the embedded digits (batch 64) for one seed, and the vmapped
   step of three seeds (``cnnjax/train/_seeds.py``), per conv ``impl``: medians of 30 steps.
   ``speed-up = 3 × one seed / three seeds``.
2. Two ``fit`` runs (different pools, 8 epochs) one after the other, then at the same time in
   two threads (what ``run_ablation(workers=2)`` does), twice.

Measured on the project's 2-core VM (jax 0.10.2, Sapphire Rapids), while a test run shared
the machine (load ~4)::

    auto: one seed 3.84 ms, 3 seeds vmapped 11.00 ms, speed-up 1.05
    im2col: one seed 3.65 ms, 3 seeds vmapped 9.77 ms, speed-up 1.12
    xla: one seed 9.72 ms, 3 seeds vmapped 13.33 ms, speed-up 2.19
    two fits: one after the other 1.69 s, in two threads 1.35 s (1.25x)
    two fits: one after the other 1.69 s, in two threads 1.22 s (1.39x)

A LeNet-5 step on 8×8 digits is ~0.21 GFLOP (forward and backward, batch 64): 3.84 ms is
~54 GFLOP/s, so vmapping has no dispatch overhead to amortise; but one step keeps only about
one of the two cores busy, which two programs at once use.
"""
from __future__ import annotations

import statistics
import threading
import time

import jax
import jax.numpy as jnp

from cnnjax import data, models
from cnnjax.data import normalization_stats
from cnnjax.train import _loop, _parallel, _seeds, fit


def step_times(model, train, seeds: int = 3, n: int = 30) -> tuple[float, float]:
    """Median ms of one seed's train step and of the vmapped step of ``seeds`` seeds."""
    _, tx = _loop._cached_optimizer("adam", "constant", 1e-3, None, None, 0.0, None)
    init1, step1, _ = _loop._steps(model, tx, None, _parallel.make_mesh(None))
    init_s, step_s, _ = _seeds._vmapped_steps(model, tx, None)
    mean, std = (jnp.asarray(a) for a in normalization_stats(train.images))
    one = init1(train.images[:1], jax.random.PRNGKey(0), mean, std)
    many = init_s(jnp.asarray(train.images[:1]),
                  jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)]), mean, std)
    x, y = jnp.asarray(train.images[:64]), jnp.asarray(train.labels[:64])
    xs, ys = jnp.stack([x] * seeds), jnp.stack([y] * seeds)

    def run(step, state, a, b):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            state, _ = step(state, a, b, mean, std)
            jax.block_until_ready(state)
            times.append(time.perf_counter() - t)
        return state, statistics.median(times) * 1e3

    one, _ = run(step1, one, x, y)  # compile and warm up
    many, _ = run(step_s, many, xs, ys)
    _, t_one = run(step1, one, x, y)
    _, t_many = run(step_s, many, xs, ys)
    return t_one, t_many


def main() -> None:
    train, test = data.load("digits"), data.load("digits", "test")
    for impl in ("auto", "im2col", "xla"):
        model = models.get("lenet5", num_classes=10, pool="max", impl=impl)
        t1, t3 = step_times(model, train)
        print(f"{impl}: one seed {t1:.2f} ms, 3 seeds vmapped {t3:.2f} ms, "
              f"speed-up {3 * t1 / t3:.2f}", flush=True)
    pair = [models.get("lenet5", num_classes=10, pool=p) for p in ("avg", "soft")]
    kw = dict(epochs=8, batch_size=64, learning_rate=1e-3, progress=False)
    for m in pair:  # compile first
        fit(m, train, test, seed=0, **dict(kw, epochs=1))
    for _ in range(2):
        t = time.perf_counter()
        for m in pair:
            fit(m, train, test, seed=1, **kw)
        sequential = time.perf_counter() - t
        t = time.perf_counter()
        threads = [threading.Thread(target=fit, args=(m, train, test), kwargs=dict(seed=1, **kw))
                   for m in pair]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        together = time.perf_counter() - t
        print(f"two fits: one after the other {sequential:.2f} s, in two threads "
              f"{together:.2f} s ({sequential / together:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
