"""The CPU speed benchmark of issue 6 (equivalent to ``cnnjax bench``).

Command (from the repository root; PyTorch rows need the ``test`` extra, else they are skipped)::

    python experiments/benchmark.py --profile --json runs/benchmark.json

Measured on the shared 2-core VM (every contender of a row side by side in one run, medians
of interleaved runs; the full output with the pooling, memory, FFT and profile tables is in
docs/benchmark.md)::

    cnnjax bench — 2026-11-22 09:36 UTC, jax 0.10.2 (cpu), 2 cores, AMD EPYC, torch 2.13.0+cpu, batch 128, median of 5 interleaved runs

    ### Issue 6 targets
    | target | measured | met |
    |---|---:|---:|
    | mnistnet step ≤ 1.0× PyTorch's time | 1.14× | **no** |
    | mnistnet step ≥ 3× faster than plain Flax | 3.60× | yes |
    | lenet5 step ≤ 1.0× PyTorch's time | 1.15× | **no** |
    | lenet5 step ≥ 3× faster than plain Flax | 1.50× | **no** |
    | conv fwd+bwd, 'auto' over 'xla', geometric mean ≥ 3× | 2.10× | **no** |
    | no conv layer fwd+bwd slower than 'xla' by > 5% | worst lenet5.conv2 0.84× | **no** |
    | k=11 on 64×64: 'fft' faster than 'xla' | fwd 1.31×, fwd+bwd 1.80× | yes |
    | k=11 on 64×64: 'auto' uses 'fft' | fft | yes |
    | k=15 on 64×64: 'fft' faster than 'xla' | fwd 2.17×, fwd+bwd 2.70× | yes |
    | k=15 on 64×64: 'auto' uses 'fft' | fft | yes |
    | folded-BN eval faster than unfolded | 1.17× | yes |

    ### Training step (Adam) — ms/step (lower is better)
    | model | batch | cnnjax | cnnjax[xla] | flax | torch | flax/cnnjax | cnnjax/torch |
    |---|---:|---:|---:|---:|---:|---:|---:|
    | mnistnet | 128 | 237.3 | 765.7 | 853.6 | 207.4 | 3.60× | 1.14× |
    | lenet5 | 128 | 130.8 | 142.9 | 196.2 | 113.3 | 1.50× | 1.15× |

    ### Conv layers, forward+backward — GFLOP/s (higher is better)
    | layer | shape | auto→ | xla | im2col | fft | auto | flax | torch | auto/xla | auto/torch | auto/peak |
    |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
    | lenet5.conv1 | 128x28x28x1 k5 s1 p2 -> 20 | xla_im2col_grad | 11.2 | 16.1 | 8.7 | 16.6 | 14.7 | 2.8 | 1.48× | 5.93× | 20% |
    | lenet5.conv2 | 128x14x14x20 k5 s1 p2 -> 50 | xla_im2col_grad | 45.7 | 32.9 | 54.2 | 38.5 | 47.4 | 19.3 | 0.84× | 2.00× | 46% |
    | mnistnet.conv1 | 128x28x28x1 k3 s1 p0 -> 32 | xla_im2col_grad | 4.0 | 15.4 | 1.9 | 8.3 | 4.3 | 1.2 | 2.06× | 6.81× | 10% |
    | mnistnet.conv2 | 128x26x26x32 k3 s1 p0 -> 64 | im2col | 15.5 | 56.0 | 31.3 | 53.6 | 15.1 | 29.9 | 3.45× | 1.80× | 64% |
    | vgg11.conv1 | 128x32x32x3 k3 s1 p1 -> 64 | xla_im2col_grad | 11.2 | 31.4 | 4.8 | 25.9 | 12.5 | 5.7 | 2.31× | 4.56× | 31% |
    | vgg11.conv2 | 128x16x16x64 k3 s1 p1 -> 128 | im2col | 27.2 | 60.8 | 45.4 | 70.3 | 29.7 | 46.7 | 2.58× | 1.51× | 84% |
    | vgg11.conv3 | 128x8x8x128 k3 s1 p1 -> 256 | im2col | 49.4 | 69.8 | 46.9 | 63.3 | 43.5 | 40.6 | 1.28× | 1.56× | 76% |
    | vgg11.conv4 | 128x8x8x256 k3 s1 p1 -> 256 | im2col | 43.8 | 67.4 | 43.0 | 63.3 | 50.1 | 42.3 | 1.45× | 1.50× | 76% |
    | vgg11.conv5 | 128x4x4x256 k3 s1 p1 -> 512 | im2col | 63.2 | 72.6 | 33.4 | 83.8 | 71.2 | 38.6 | 1.33× | 2.17× | 100% |
    | vgg11.conv6 | 128x4x4x512 k3 s1 p1 -> 512 | im2col | 70.4 | 80.3 | 33.3 | 75.8 | 71.6 | 43.0 | 1.08× | 1.76× | 91% |
    | vgg11.conv7 | 128x2x2x512 k3 s1 p1 -> 512 | im2col | 4.4 | 141.5 | 35.7 | 118.5 | 4.4 | 57.1 | 27.11× | 2.08× | 142% |
    | resnet20.stem | 128x32x32x3 k3 s1 p1 -> 16 | xla_im2col_grad | 7.9 | 22.0 | 9.9 | 30.5 | 9.2 | 17.4 | 3.85× | 1.75× | 36% |
    | resnet20.stage1 | 128x32x32x16 k3 s1 p1 -> 16 | xla_im2col_grad | 23.1 | 42.6 | 18.1 | 33.9 | 15.1 | 59.8 | 1.47× | 0.57× | 40% |
    | resnet20.stage2.down | 128x32x32x16 k3 s2 p1 -> 32 | xla_im2col_grad | 23.9 | 40.0 | 6.7 | 35.6 | 24.8 | 43.0 | 1.49× | 0.83× | 42% |
    | resnet20.stage2 | 128x16x16x32 k3 s1 p1 -> 32 | im2col | 48.7 | 51.4 | 48.9 | 47.6 | 45.9 | 71.4 | 0.98× | 0.67× | 57% |
    | resnet20.stage2.shortcut | 128x16x16x16 k1 s1 p0 -> 32 | xla_im2col_grad | 11.3 | 43.1 | 5.0 | 59.9 | 14.1 | 24.6 | 5.30× | 2.44× | 72% |
    | resnet20.stage3.down | 128x16x16x32 k3 s2 p1 -> 64 | xla_im2col_grad | 38.4 | 57.1 | 15.0 | 69.0 | 47.3 | 59.1 | 1.80× | 1.17× | 82% |
    | resnet20.stage3 | 128x8x8x64 k3 s1 p1 -> 64 | im2col | 57.1 | 78.1 | 52.1 | 82.0 | 54.8 | 93.8 | 1.44× | 0.87× | 98% |
    | resnet20.stage3.shortcut | 128x8x8x32 k1 s1 p0 -> 64 | im2col | 23.4 | 42.6 | 7.1 | 70.6 | 26.7 | 40.2 | 3.02× | 1.76× | 84% |
    | geometric mean |  |  | 22.5 | 46.8 | 18.1 | 47.3 | 23.7 | 26.9 | 2.10× | 1.76× |  |
"""
from __future__ import annotations

import sys

from cnnjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
