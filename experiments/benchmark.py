"""The CPU speed benchmark (equivalent to ``cnnjax bench``).

Command (from the repository root; PyTorch rows need the ``test`` extra, else they are skipped)::

    python experiments/benchmark.py --profile --json runs/benchmark.json

Measured on the project's 2-core VM, idle, every contender of a row side by side in one run
(medians of 7 interleaved runs; the full output with the conv, pooling, memory, FFT and profile
tables is in docs/benchmark.md)::

    cnnjax bench — 2026-11-22 12:01 UTC, jax 0.10.2 (cpu), 2 cores, AMD EPYC, torch 2.13.0+cpu, batch 128, median of 7 interleaved runs

    ### Targets
    | target | measured | met |
    |---|---:|---:|
    | mnistnet step ≤ 1.0× PyTorch's time | 1.15× | **no** |
    | mnistnet step ≥ 3× faster than plain Flax | 3.38× | yes |
    | lenet5 step ≤ 1.0× PyTorch's time | 1.16× | **no** |
    | lenet5 step ≥ 3× faster than plain Flax | 1.35× | **no** |
    | conv fwd+bwd, 'auto' over 'xla', geometric mean ≥ 3× | 2.09× | **no** |
    | no conv layer fwd+bwd slower than 'xla' by > 5% | worst vgg11.conv4 0.93× | **no** |
    | k=11 on 64×64: 'fft' faster than 'xla' | fwd 1.49×, fwd+bwd 1.69× | yes |
    | k=11 on 64×64: 'auto' uses 'fft' | fft | yes |
    | k=15 on 64×64: 'fft' faster than 'xla' | fwd 1.99×, fwd+bwd 2.76× | yes |
    | k=15 on 64×64: 'auto' uses 'fft' | fft | yes |
    | folded-BN eval faster than unfolded | 1.04× | yes |
"""
from __future__ import annotations

import sys

from cnnjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
