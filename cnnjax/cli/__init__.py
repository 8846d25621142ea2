"""The ``cnnjax`` command: train, run the pooling ablation, manage data, inspect models.

Subcommands::

    cnnjax train    --model lenet5 --pool stochastic --dataset mnist --epochs 3
    cnnjax train    --config run.toml [--flags that override it]
    cnnjax eval     --workdir DIR [--dataset D] [--split test]
    cnnjax ablate   --out runs/ablation            # the main job: every pool × 3 seeds
    cnnjax data     list | fetch NAME [--data-dir DIR] [--force]
    cnnjax summary  MODEL [--input-shape 28,28,1] [--pool max]
    cnnjax bench    ...                            # delegated to cnnjax.bench
    cnnjax viz      ...                            # delegated to cnnjax.viz.cli

Exit codes: 0 success; 2 a user error (unknown model, pool, dataset or optimizer, a bad
pool value, a non-positive number, a batch size or device count that does not fit, an input
shape a model cannot take, an unwritable output directory, a dataset that is not available
or damaged, a workdir holding another run or no intact checkpoint), with one line on stderr
that says what is wrong and no traceback; 1 when ``data fetch`` finds no reachable source;
130 when interrupted (Ctrl-C; ``ablate`` resumes when run again). Everything heavy (JAX programs, Flax, datasets, matplotlib)
is imported inside the subcommand that needs it, so ``cnnjax --help`` stays quick.

Run as a program, the commands that train or time (``HEAVY_COMMANDS``) first make the process
reuse freed host memory (:func:`cnnjax.train.reuse_host_memory`;
``CNNJAX_REUSE_HOST_MEMORY=0`` turns it off).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from cnnjax._host_memory import reuse_host_memory
from cnnjax.cli.args import PROG, UsageError
from cnnjax.cli._parser import build_parser

__all__ = ["PROG", "UsageError", "build_parser", "main"]

# The commands that run training steps or time them: their process keeps freed host memory.
# Not ``ablate``: the default study took 5 min 6 s with it against 3 min 56 s without
# (system time 39 vs 16 s; one clean-clone run each, docs/benchmark.md), its digits buffers
# are too small to fault much, and with it ``vectorize_seeds='auto'`` measured the vmapped
# seeds faster and took them (``vectorized_seeds`` 3 instead of 1 in results.jsonl).
HEAVY_COMMANDS = ("train", "eval", "bench", "tune")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``cnnjax`` command; returns the exit status (0 ok, 2 bad arguments).

    ``argv=None`` means the process's own command line: only then, for the
    ``HEAVY_COMMANDS``, is the process set to reuse freed host memory before anything runs
    (a caller passing ``argv`` owns its process and decides that itself).
    """
    own_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if own_process and command in HEAVY_COMMANDS:
        reuse_host_memory()
    delegate = command if command in ("bench", "viz") else None
    try:
        parser = build_parser(delegate)
        if command in ("train", "ablate"):
            from cnnjax.cli import _config
            _config.apply_config(parser, command, argv)
        args = parser.parse_args(argv)
        args.argv = argv
        if command in ("train", "ablate"):
            args.effective_config = _config.effective_config(parser, command, args)
        return int(args.func(args) or 0)
    except UsageError as e:
        where = f"{PROG} {command}" if command else PROG
        print(f"{where}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # argparse: --help, --version (0) and usage errors (2)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except KeyboardInterrupt:
        resumable = command == "ablate" or (command == "train" and "--workdir" in argv)
        hint = "; run the same command again to resume" if resumable else ""
        print(f"{PROG}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
