"""The CPU speed benchmark of issue 6 (equivalent to ``cnnjax bench``).

Command::

    python experiments/benchmark.py --json runs/benchmark.json

Measured table: RESULTS_PENDING (see docs/benchmark.md).
"""
from __future__ import annotations

import sys

from cnnjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
