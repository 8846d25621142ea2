"""What reusing freed host memory does to a training step: page faults, system time, wall time.

Command (from the repository root)::

    python experiments/host_memory.py [--rounds 3]

Each round starts two fresh processes one after the other, one with
``CNNJAX_REUSE_HOST_MEMORY=0`` (glibc's defaults; im2col in ~2 MB batch chunks) and one with
``=1`` (``cnnjax.train.reuse_host_memory`` at import; im2col patches in one piece), and each
times 20 Adam steps of MnistNet and of LeNet5 at batch 128 (``cnnjax bench``'s step, after 5
warm-up steps): wall ms per step, the process's user and system CPU ms per step
(``getrusage``), and minor page faults per step. CPU times are the steadier measure on a
shared machine: the faults are system time, and they go with the setting.

Measured on the project's 2-core VM (Sapphire Rapids, jax 0.10.2), 2026-12-02 — see
``docs/benchmark.md`` ("Host memory") for the table.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

MODELS = ("mnistnet", "lenet5")


def child() -> None:
    import jax.numpy as jnp

    import cnnjax.models
    from cnnjax import _host_memory
    from cnnjax.bench.train_suite import JaxTrainer, train_inputs

    x, y = (jnp.asarray(a) for a in train_inputs(128))
    for name in MODELS:
        step = JaxTrainer(cnnjax.models.get(name, num_classes=10), x, y)
        for _ in range(5):
            step()
        walls = []
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(20):
            t0 = time.perf_counter()
            step()
            walls.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        print(name, _host_memory.reused(), statistics.median(walls) * 1e3,
              (r1.ru_utime - r0.ru_utime) / 20 * 1e3, (r1.ru_stime - r0.ru_stime) / 20 * 1e3,
              (r1.ru_minflt - r0.ru_minflt) / 20, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows: dict[tuple[str, str], list[list[float]]] = {}
    for _ in range(args.rounds):
        for setting in ("0", "1"):
            env = {**os.environ, "CNNJAX_REUSE_HOST_MEMORY": setting}
            out = subprocess.run([sys.executable, __file__, "--child"], env=env, check=True,
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                name, reused, *values = line.split()
                rows.setdefault((name, reused), []).append([float(v) for v in values])
    print("| model | host memory reused | wall ms/step | user CPU ms | system CPU ms | "
          "page faults/step |")
    print("|---|---|---:|---:|---:|---:|")
    for (name, reused), runs in sorted(rows.items()):
        cells = [" / ".join(f"{run[i]:.0f}" for run in runs) for i in range(4)]
        print(f"| {name} | {reused} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        child()
    else:
        main()
