"""The pooling ablation study: LeNet5 on the embedded 8×8 digits, every pooling variant.

Command (equivalent to ``cnnjax ablate --out runs/ablation``)::

    python experiments/pooling_ablation.py --out runs/ablation

Same network (the lectures' LeNet5: conv 20 k5 p2 → ReLU → pool 2/2 → conv 50 k5 p2 → ReLU →
pool 2/2 → dense 500 → ReLU → dense 10), trained with each of the 25 canonical pool specs
(``cnnjax.layers.POOL_SPECS``) and three seeds: adam, learning rate 1e-3, batch 64, 20 epochs,
on scikit-learn's digits (1437 train / 360 test images, stratified split fixed by
``cnnjax.data``). Results go to ``runs/ablation/results.jsonl`` and ``runs/ablation/report.md``
(with ``accuracy_lenet5_digits.png`` and ``curves_lenet5_digits.png``). Any extra arguments are
those of ``cnnjax ablate`` (``--pools``, ``--seeds``, ``--epochs``, ``--datasets mnist``...).

Numbers produced by ``cnnjax ablate --out runs/ablation`` from a clean clone on 2026-12-01,
jax 0.10.2 CPU, 2 cores, empty compilation cache: 5 min 00 s wall, 6 min 22 s of CPU time.
Test accuracy is mean ± sample std over seeds 0, 1, 2 after epoch 20 (360 test images, so one
image is 0.28 points); s/epoch is training time without the compiling first epoch::

    | pool | test accuracy (%) | final test loss | s/epoch | parameters | seeds |
    |---|---:|---:|---:|---:|---:|
    | `max` | 98.06 ± 0.48 | 0.0471 ± 0.0065 | 0.066 | 131,080 | 3 |
    | `avg` | 97.31 ± 0.32 | 0.0927 ± 0.0212 | 0.058 | 131,080 | 3 |
    | `sum` | 97.96 ± 0.32 | 0.0576 ± 0.0124 | 0.057 | 131,080 | 3 |
    | `lp:p=3` | 98.24 ± 0.16 | 0.0430 ± 0.0053 | 0.071 | 131,080 | 3 |
    | `lp:learn` | 98.43 ± 0.16 | 0.0411 ± 0.0046 | 0.075 | 131,082 | 3 |
    | `l2` | 97.69 ± 0.16 | 0.0511 ± 0.0027 | 0.067 | 131,080 | 3 |
    | `mixed:alpha=0.5` | 97.78 ± 0.48 | 0.0478 ± 0.0040 | 0.069 | 131,080 | 3 |
    | `mixed:learn` | 97.96 ± 0.16 | 0.0476 ± 0.0056 | 0.064 | 131,082 | 3 |
    | `stochastic_mixed` | 97.59 ± 0.58 | 0.0641 ± 0.0302 | 0.068 | 131,080 | 3 |
    | `gated` | 97.69 ± 0.32 | 0.0519 ± 0.0134 | 0.082 | 131,088 | 3 |
    | `stochastic` | 97.96 ± 0.16 | 0.0511 ± 0.0046 | 0.071 | 131,080 | 3 |
    | `spectral` | 96.76 ± 0.42 | 0.1026 ± 0.0136 | 0.067 | 131,080 | 3 |
    | `blur` | 96.76 ± 0.85 | 0.1107 ± 0.0307 | 0.068 | 131,080 | 3 |
    | `maxblur` | 98.43 ± 0.32 | 0.0520 ± 0.0202 | 0.071 | 131,080 | 3 |
    | `soft` | 98.15 ± 0.16 | 0.0483 ± 0.0008 | 0.063 | 131,080 | 3 |
    | `lip` | 97.69 ± 0.58 | 0.0769 ± 0.0263 | 0.077 | 134,050 | 3 |
    | `gem:p=3` | 97.78 ± 0.28 | 0.0502 ± 0.0055 | 0.072 | 131,080 | 3 |
    | `gem:learn` | 97.96 ± 0.16 | 0.0500 ± 0.0066 | 0.077 | 131,082 | 3 |
    | `lse:r=1` | 97.87 ± 0.16 | 0.0594 ± 0.0088 | 0.077 | 131,080 | 3 |
    | `lse:learn` | 97.78 ± 0.28 | 0.0593 ± 0.0098 | 0.077 | 131,082 | 3 |
    | `min` | 97.04 ± 0.16 | 0.0998 ± 0.0125 | 0.070 | 131,080 | 3 |
    | `median` | 96.76 ± 0.58 | 0.0929 ± 0.0169 | 0.068 | 131,080 | 3 |
    | `fractional` | 96.57 ± 1.58 | 0.1054 ± 0.0407 | 0.097 | 131,080 | 3 |
    | `tree` | 97.59 ± 0.42 | 0.0830 ± 0.0193 | 0.074 | 131,104 | 3 |
    | `strided_conv` | 97.78 ± 0.28 | 0.1018 ± 0.0052 | 0.068 | 142,750 | 3 |

Read the middle of the ranking as a tendency, not a result: most neighbouring gaps are within
two standard deviations of three seeds.
"""
from __future__ import annotations

import sys

from cnnjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--out" not in args:
        args = ["--out", "runs/ablation", *args]
    sys.exit(main(["ablate", *args]))
