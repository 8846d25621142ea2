"""The timing harness: contenders of one row timed in interleaved rounds, medians reported.

Every contender is compiled and warmed up first, then timed in rounds (one call each per round,
``repeats`` rounds) so background load hits all of them alike; the median is reported.
``experiments/`` scripts time with the same :func:`measure`.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax


def block(out: Any) -> Any:
    return jax.block_until_ready(out)


def measure(candidates: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
            stat: Callable[[list[float]], float] = statistics.median,
            settle: int = 0) -> dict[str, float]:
    """Median (or ``stat``) seconds per call of each candidate, timed in interleaved rounds.

    Every candidate runs ``warmup`` times first (compilation, allocator warm-up); then each
    of ``repeats`` rounds calls every candidate once. Interleaving makes background load
    (other processes on the shared cores) affect all candidates of a row alike.

    ``settle`` untimed calls of the same candidate precede each timed one. A training step
    timed right after another framework's step pays for that framework's memory traffic
    (its freed buffers, the caches it evicted): measured on the 2-core VM, PyTorch's
    MnistNet step took 161 ms interleaved without settling and 116-120 ms after a step of
    its own, as in its own process, while cnnjax's barely moved. A training loop runs its
    steps back to back, so the train suite settles one step.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            for _ in range(settle):
                fn()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: stat(ts) for name, ts in times.items()}


def jax_call(fn: Callable, *args) -> Callable[[], Any]:
    return lambda: block(fn(*args))


def geomean(values: Sequence[float]) -> float:
    values = [v for v in values if v and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b
