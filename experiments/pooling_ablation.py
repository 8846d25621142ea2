"""The pooling ablation study: LeNet5 on the embedded 8×8 digits, every pooling variant.

Command (equivalent to ``cnnjax ablate --out runs/ablation``)::

    python experiments/pooling_ablation.py --out runs/ablation

Same network (the lectures' LeNet5: conv 20 k5 p2 → ReLU → pool 2/2 → conv 50 k5 p2 → ReLU →
pool 2/2 → dense 500 → ReLU → dense 10), trained with each of the twelve first-family pool
specs and three seeds: adam, learning rate 1e-3, batch 64, 20 epochs, on scikit-learn's
digits (1437 train / 360 test images, stratified split fixed by ``cnnjax.data``).
Results go to ``runs/ablation/results.jsonl`` and ``runs/ablation/report.md`` (with
``accuracy_lenet5_digits.png`` and ``curves_lenet5_digits.png``). Any extra arguments are
those of ``cnnjax ablate`` (``--pools``, ``--seeds``, ``--epochs``, ``--datasets mnist``...).

Numbers produced by ``cnnjax ablate --out /tmp/ablation_default`` (the same study) on
2026-11-22, jax 0.10.2 CPU, 2 cores shared with three other jobs (load average ~12): wall
time 19 min 48 s, 7 min 16 s of CPU time; on an idle 2-core machine expect a few minutes.
Test accuracy is mean ± sample std over seeds 0, 1, 2 after epoch 20 (360 test images, so
one image is 0.28 points); s/epoch is training time without the compiling first epoch::

    | pool | test accuracy (%) | final test loss | s/epoch | parameters | seeds |
    |---|---:|---:|---:|---:|---:|
    | `max` | 97.96 ± 0.42 | 0.0472 ± 0.0066 | 0.326 | 131,080 | 3 |
    | `avg` | 97.31 ± 0.32 | 0.0927 ± 0.0215 | 0.334 | 131,080 | 3 |
    | `sum` | 97.78 ± 0.56 | 0.0585 ± 0.0131 | 0.339 | 131,080 | 3 |
    | `lp:p=3` | 98.15 ± 0.32 | 0.0430 ± 0.0053 | 0.895 | 131,080 | 3 |
    | `lp:learn` | 98.43 ± 0.16 | 0.0411 ± 0.0046 | 0.607 | 131,082 | 3 |
    | `l2` | 97.78 ± 0.28 | 0.0512 ± 0.0029 | 0.688 | 131,080 | 3 |
    | `mixed:alpha=0.5` | 97.87 ± 0.32 | 0.0477 ± 0.0041 | 0.397 | 131,080 | 3 |
    | `mixed:learn` | 97.96 ± 0.16 | 0.0479 ± 0.0045 | 0.354 | 131,082 | 3 |
    | `stochastic_mixed` | 97.59 ± 0.80 | 0.0653 ± 0.0330 | 0.495 | 131,080 | 3 |
    | `gated` | 97.59 ± 0.42 | 0.0511 ± 0.0118 | 0.618 | 131,088 | 3 |
    | `stochastic` | 98.24 ± 0.16 | 0.0472 ± 0.0030 | 0.416 | 131,080 | 3 |
    | `spectral` | 96.76 ± 0.42 | 0.1024 ± 0.0148 | 0.460 | 131,080 | 3 |

Every variant reaches 96.8-98.4%; learned-p Lp pooling and stochastic pooling lead, average
and spectral pooling trail by over a point (and have the highest losses). Gaps between
neighbouring rows are mostly within two standard deviations of three seeds: read the
middle of the ranking as a tendency, not a result.

Compilation dominates on CPU. With the persistent compilation cache (on by default, in
``~/.cache/cnnjax/jax_cache``) a seed-0 run took 61 s on average (first epoch 26 s, as it
compiles the train and eval steps), a seed-1 or seed-2 run 17-18 s (first epoch 0.6 s).
The remaining per-run overhead is mostly the per-seed compilation of the initialisation and
the per-epoch checkpoints that make the study resumable.
"""
from __future__ import annotations

import sys

from cnnjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--out" not in args:
        args = ["--out", "runs/ablation", *args]
    sys.exit(main(["ablate", *args]))
