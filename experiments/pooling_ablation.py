"""The pooling ablation study: LeNet5 on the embedded 8×8 digits, every pooling variant.

Command (equivalent to ``cnnjax ablate --out runs/ablation``)::

    python experiments/pooling_ablation.py --out runs/ablation

Same network (the seeds' LeNet5: conv 20 k5 p2 → ReLU → pool 2/2 → conv 50 k5 p2 → ReLU →
pool 2/2 → dense 500 → ReLU → dense 10), trained with each of the contract's twelve pool
specs and three seeds: adam, learning rate 1e-3, batch 64, 20 epochs, on scikit-learn's
digits (1437 train / 360 test images, stratified split fixed by ``cnnjax.data``).
Results go to ``runs/ablation/results.jsonl`` and ``runs/ablation/report.md`` (with
``accuracy_lenet5_digits.png`` and ``curves_lenet5_digits.png``). Any extra arguments are
those of ``cnnjax ablate`` (``--pools``, ``--seeds``, ``--epochs``, ``--datasets mnist``...).

Numbers produced (RESULTS_PENDING).
"""
from __future__ import annotations

import sys

from cnnjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--out" not in args:
        args = ["--out", "runs/ablation", *args]
    sys.exit(main(["ablate", *args]))
