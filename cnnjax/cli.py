"""The ``cnnjax`` command: train, run the pooling ablation, manage data, inspect models.

Subcommands::

    cnnjax train    --model lenet5 --pool stochastic --dataset mnist --epochs 3
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
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

PROG = "cnnjax"

_EXAMPLES = """\
examples:
  cnnjax ablate                                  # default study: LeNet5 on 8x8 digits, all
                                                 # 12 pool specs x 3 seeds -> runs/ablation/
  cnnjax ablate --pools max,avg,spectral --seeds 0,1 --epochs 10 --out /tmp/abl
  cnnjax data fetch mnist && cnnjax ablate --datasets mnist --epochs 2 --out runs/mnist
  cnnjax train --model lenet5 --pool stochastic --dataset mnist --epochs 3
  cnnjax summary lenet5 --input-shape 28,28,1
  cnnjax data list
"""


class UsageError(Exception):
    """A bad command-line argument found after parsing; exits with status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (status 2), pointing at ``--help``."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Formatter(argparse.HelpFormatter):
    """Wraps descriptions to the terminal but keeps the examples epilog as written."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=32)

    def _fill_text(self, text, width, indent):
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


_formatter = _Formatter


# --------------------------------------------------------------------------- argument types


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated non-negative integers, got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated non-negative integers, got {text!r}")
    return seeds


def _name_list(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of names, got {text!r}")
    return names


def _pool_list(text: str) -> list[str]:
    # Specs may carry comma-separated options ('mixed:learn,per_channel'); the registry knows
    # which fragments are options of the spec before them.
    from cnnjax.layers import pool_specs

    specs = pool_specs.split_spec_list(text)
    if not specs:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of pool specs, "
                                         f"got {text!r}")
    return specs


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"must be H,W,C with positive integers, got {text!r}")
    return shape


def _flatten(lists: Sequence[Sequence] | None) -> list | None:
    # Options taking lists accept both "a,b" and repeated or space-separated values.
    if lists is None:
        return None
    return list(dict.fromkeys(v for group in lists for v in group))


# --------------------------------------------------------------------------- validation


def _check_models(names: Sequence[str]) -> None:
    from cnnjax import models

    for name in names:
        if name.lower() not in models.NAMES:
            raise UsageError(f"unknown model {name!r}; valid models: {', '.join(models.NAMES)}")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _check_pools(specs: Sequence[str]) -> None:
    from cnnjax.layers import pool_specs

    for spec in specs:
        name = spec.partition(":")[0].strip().lower()
        try:
            pool_specs.parse(spec)  # the registry's one check of names, options and values
        except (ValueError, TypeError) as e:
            if not any(m.name == name for m in pool_specs.METHODS):
                raise UsageError(f"unknown pool spec {spec!r}; valid specs: "
                                 f"{', '.join(pool_specs.POOL_SPECS)}") from None
            raise UsageError(f"invalid pool spec {spec!r}: {_first_line(e)}") from None


def _check_input_shape(model, name: str, shape: tuple[int, ...]) -> None:
    """The model must run on one ``shape`` image (checked abstractly, no compilation)."""
    import jax
    import jax.numpy as jnp

    key = jax.random.PRNGKey(0)
    try:
        jax.eval_shape(lambda x: model.init({"params": key, "dropout": key, "pool": key}, x,
                                            train=False),
                       jax.ShapeDtypeStruct((2, *shape), jnp.float32))
    except (ValueError, TypeError) as e:
        raise UsageError(f"--input-shape {','.join(map(str, shape))} is too small or otherwise "
                         f"unfit for {name}: {_first_line(e)}") from None


def _check_datasets(names: Sequence[str]) -> None:
    from cnnjax import data

    for name in names:
        if name not in data.DATASETS:
            raise UsageError(f"unknown dataset {name!r}; valid datasets: "
                             f"{', '.join(data.DATASETS)}")


def _check_optimizer(name: str, schedule: str) -> None:
    from cnnjax.train import OPTIMIZERS, SCHEDULES

    if name not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {name!r}; valid optimizers: "
                         f"{', '.join(OPTIMIZERS)}")
    if schedule not in SCHEDULES:
        raise UsageError(f"unknown schedule {schedule!r}; valid schedules: "
                         f"{', '.join(SCHEDULES)}")


def _check_writable(path: str, option: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".cnnjax-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"{option} must be a writable directory, got {path!r} "
                         f"({e.strerror or e})") from None
    return out


def _check_batch(batch_size: int, devices: int | None, examples: int) -> None:
    import jax

    available = jax.device_count()
    if devices is not None and devices > available:
        raise UsageError(f"--devices must be at most the {available} available device"
                         f"{'s' if available > 1 else ''}, got {devices}")
    n = devices or available
    if batch_size % n:
        raise UsageError(f"--batch-size must be a multiple of the {n} device"
                         f"{'s' if n > 1 else ''} in use, got {batch_size}")
    if batch_size > examples:
        raise UsageError(f"--batch-size must be at most the {examples} training examples, "
                         f"got {batch_size}")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def _load(name: str, split: str, data_dir: str | None):
    from cnnjax import data

    try:
        return data.load(name, split, data_dir=data_dir)
    except (data.DatasetNotFoundError, data.CorruptDatasetError) as e:
        raise UsageError(str(e)) from None


# --------------------------------------------------------------------------- subcommands


def _cmd_train(args: argparse.Namespace) -> int:
    _check_datasets([args.dataset])
    _check_pools([args.pool])
    _check_models([args.model])
    _check_optimizer(args.optimizer, args.schedule)
    if args.workdir is not None:
        _check_writable(args.workdir, "--workdir")
    train_data = _load(args.dataset, "train", args.data_dir)
    test_data = _load(args.dataset, "test", args.data_dir)
    if args.limit is not None:
        train_data = train_data._replace(images=train_data.images[:args.limit],
                                         labels=train_data.labels[:args.limit])
        test_data = test_data._replace(images=test_data.images[:args.limit],
                                       labels=test_data.labels[:args.limit])

    import jax
    import numpy as np

    from cnnjax import models, train

    _check_batch(args.batch_size, args.devices, len(train_data.labels))
    model = models.get(args.model, num_classes=train_data.num_classes, pool=args.pool)
    epochs = f"{args.epochs} epoch{'s' if args.epochs > 1 else ''}"
    print(f"training {args.model} (pool={args.pool}) on {args.dataset}: "
          f"{len(train_data.labels)} train / {len(test_data.labels)} test images "
          f"{tuple(train_data.images.shape[1:])}, {epochs}, batch {args.batch_size}, "
          f"{args.optimizer} lr={args.lr}, seed {args.seed}", flush=True)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            result = train.fit(model, train_data, test_data, epochs=args.epochs,
                               batch_size=args.batch_size, learning_rate=args.lr,
                               seed=args.seed, optimizer=args.optimizer,
                               schedule=args.schedule, workdir=args.workdir,
                               restart=args.restart, devices=args.devices,
                               progress="auto" if not args.quiet else False)
    # fit's own checks (one sentence each, "fit: ..."): a model that does not fit the data,
    # a workdir holding another run or no intact checkpoint. Anything else is a bug.
    except (ValueError, TypeError) as e:
        if not str(e).startswith("fit: "):
            raise
        raise UsageError(str(e)[len("fit: "):]) from None
    params = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(result.state.params))
    print(f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {'test loss':>9} "
          f"{'test acc':>8} {'seconds':>8}")
    for h in result.history:
        print(f"{h['epoch']:>5} {h['train_loss']:>10.4f} {100 * h['train_accuracy']:>8.2f}% "
              f"{h['test_loss']:>9.4f} {100 * h['test_accuracy']:>7.2f}% {h['seconds']:>8.2f}")
    print(f"parameters: {params:,}")
    if args.workdir is not None:
        print(f"checkpoints: {args.workdir}")
    return 0


def _cmd_ablate(args: argparse.Namespace) -> int:
    from cnnjax import ablation

    out = _check_writable(args.out, "--out")
    command = " ".join(shlex.quote(a) for a in [PROG, *args.argv])
    if args.report_only:
        records = ablation.load_results(out)
        if not records:
            raise UsageError(f"--report-only needs finished runs, but {out / 'results.jsonl'} "
                             "holds none")
        # The report quotes the commands recorded with the runs, not this one.
        report = ablation.write_report(out, records, plots=not args.no_plots)
    else:
        pools = _flatten(args.pools) or list(ablation.POOL_SPECS)
        models = _flatten(args.models) or ["lenet5"]
        datasets = _flatten(args.datasets) or ["digits"]
        _check_datasets(datasets)
        _check_pools(pools)
        _check_models(models)
        _check_optimizer(args.optimizer, args.schedule)
        for name in datasets:  # fail before training anything if a dataset is missing
            _load(name, "test", args.data_dir)
        cache = None if args.cache_dir.lower() == "none" else args.cache_dir

        def log(line: str) -> None:
            if not args.quiet:
                print(line, file=sys.stderr, flush=True)

        def done(r: dict) -> None:
            log(f"    test accuracy {100 * r['test_accuracy']:.2f}%, "
                f"{r['seconds_total']:.1f} s")

        records = ablation.run_ablation(
            out, pools=pools, models=models, datasets=datasets,
            seeds=_flatten(args.seeds) or [0, 1, 2], epochs=args.epochs,
            batch_size=args.batch_size, learning_rate=args.lr,
            optimizer=args.optimizer, schedule=args.schedule, limit=args.limit,
            data_dir=args.data_dir,
            devices=args.devices, cache_dir=cache, keep_checkpoints=args.keep_checkpoints,
            plots=not args.no_plots, command=command, progress=False, log=log, callback=done)
        report = out / ablation.REPORT_FILE
    for group in ablation.summarize(records):
        print(f"\n{group.model} on {group.dataset} "
              f"({ablation.describe_hyperparameters(group.hyperparameters)}):\n")
        print(ablation.format_table(group))
    print(f"\nreport: {report}")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from cnnjax import data

    if args.data_command == "list":
        rows = data.list_datasets(args.data_dir)
        print(f"{'name':<14} {'available':<9} {'classes':>7}  {'image shape':<12} source")
        for r in rows:
            shape = "x".join(map(str, r.image_shape))
            state = "yes" if r.available else ("damaged" if r.problem else "no")
            print(f"{r.name:<14} {state:<9} {r.num_classes:>7}  {shape:<12} {r.source}")
        for r in rows:
            if r.problem:
                print(f"\n{r.name}: {r.problem}; run `{PROG} data fetch {r.name} --force` to "
                      "download it again")
        return 0
    _check_datasets([args.name])
    if args.data_dir is not None:
        _check_writable(args.data_dir, "--data-dir")
    try:
        where = data.fetch(args.name, args.data_dir, force=args.force)
    except ValueError as e:  # a name that cannot be fetched, or damaged files present
        raise UsageError(str(e)) from None
    except data.DatasetNotFoundError as e:
        print(f"{PROG} data fetch: error: {e}", file=sys.stderr)
        return 1
    print(f"{args.name}: ready ({where})")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    _check_models([args.model])
    _check_pools([args.pool])
    from cnnjax import models

    model = models.get(args.model, num_classes=args.num_classes, pool=args.pool)
    _check_input_shape(model, args.model, args.input_shape)
    print(models.summary(model, args.input_shape))
    return 0


# --------------------------------------------------------------------------- parser


def _add_train_options(p: argparse.ArgumentParser, *, epochs: int, batch_size: int,
                       lr: float) -> None:
    p.add_argument("--epochs", type=_positive_int, default=epochs, metavar="N",
                   help="training epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=batch_size, metavar="N",
                   help="examples per step (default: %(default)s)")
    p.add_argument("--lr", type=_positive_float, default=lr, metavar="RATE",
                   help="learning rate (default: %(default)s)")
    p.add_argument("--optimizer", default="adam",
                   help="adam, adamw or sgd (cnnjax.train.OPTIMIZERS; default: %(default)s)")
    p.add_argument("--schedule", default="constant",
                   help="learning-rate schedule: constant, cosine or warmup_cosine "
                        "(default: %(default)s)")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="use only the first N examples of each split (quick looks)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where downloaded datasets live (default: ~/.cache/cnnjax or "
                        "$CNNJAX_DATA)")
    p.add_argument("--devices", type=_positive_int, default=None, metavar="N",
                   help="shard each batch over N local devices (default: all)")
    p.add_argument("--quiet", action="store_true", help="print only the final results")


def build_parser(delegate: str | None = None) -> argparse.ArgumentParser:
    """The ``cnnjax`` argument parser.

    ``bench`` and ``viz`` are configured by their own modules; their subparsers are filled
    in only when ``delegate`` names them, so building the parser imports nothing heavy.
    """
    from cnnjax.ablation import DEFAULTS

    parser = _Parser(
        prog=PROG, formatter_class=_formatter, epilog=_EXAMPLES,
        description="CNN building blocks for JAX, and the pooling ablation study: the same "
                    "network trained with every pooling variant over several seeds, "
                    "reported as a table and plots.")
    from cnnjax import __version__
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "train", help="train one model with one pooling variant",
        formatter_class=_formatter,
        description="Train one model with one pooling variant and print the per-epoch "
                    "history. With --workdir it checkpoints every epoch and resumes there.",
        epilog="examples:\n  cnnjax train --model lenet5 --pool stochastic --dataset mnist "
               "--epochs 3\n  cnnjax train --dataset digits --pool spectral --epochs 20 "
               "--workdir runs/spectral\n")
    p.add_argument("--model", default="lenet5", help="model name (default: %(default)s)")
    p.add_argument("--pool", default="max",
                   help="pool spec, e.g. max, avg, lp:p=3, mixed:learn, spectral "
                        "(default: %(default)s)")
    p.add_argument("--dataset", default="digits", help="dataset name (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--workdir", default=None, metavar="DIR",
                   help="checkpoint directory; an interrupted run resumes from it (only the "
                        "same run: any other setting but --epochs is refused)")
    p.add_argument("--restart", action="store_true",
                   help="delete the checkpoints in --workdir first and train from scratch")
    _add_train_options(p, epochs=3, batch_size=128, lr=1e-3)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "ablate", help="run the pooling ablation study (the main job)",
        formatter_class=_formatter,
        description="Train every pool spec x model x dataset x seed, record each finished "
                    "run in OUT/results.jsonl and write OUT/report.md (a table per model and "
                    "dataset: test accuracy mean ± std, final loss, seconds/epoch, "
                    "parameters) with PNG plots. Re-running skips finished runs and resumes "
                    "an interrupted one from its checkpoint, so a kill loses at most the "
                    "current epoch. List options take comma-separated values.",
        epilog="examples:\n  cnnjax ablate                        # the default study\n"
               "  cnnjax ablate --pools max,avg,spectral --seeds 0 --epochs 5 --out /tmp/a\n"
               "  cnnjax ablate --datasets mnist --epochs 2 --out runs/mnist\n"
               "  cnnjax ablate --out runs/ablation --report-only\n")
    p.add_argument("--out", default="runs/ablation", metavar="DIR",
                   help="output directory (default: %(default)s)")
    p.add_argument("--pools", type=_pool_list, action="append", metavar="SPEC,...",
                   help="pool specs (default: every one of cnnjax.layers.POOL_SPECS)")
    p.add_argument("--models", type=_name_list, action="append", metavar="NAME,...",
                   help="models (default: lenet5)")
    p.add_argument("--datasets", type=_name_list, action="append", metavar="NAME,...",
                   help="datasets (default: digits)")
    p.add_argument("--seeds", type=_seed_list, action="append", metavar="N,...",
                   help="seeds (default: 0,1,2)")
    _add_train_options(p, epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"],
                       lr=DEFAULTS["learning_rate"])
    p.add_argument("--cache-dir", default="auto", metavar="DIR",
                   help="JAX persistent compilation cache: 'auto' (~/.cache/cnnjax/jax_cache),"
                        " a directory, or 'none' (default: %(default)s)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep OUT/runs/<run>/ checkpoints of finished runs")
    p.add_argument("--no-plots", action="store_true", help="write the tables without plots")
    p.add_argument("--report-only", action="store_true",
                   help="only rewrite the report from OUT/results.jsonl")
    p.set_defaults(func=_cmd_ablate, models=None, datasets=None, seeds=None)

    p = sub.add_parser("data", help="list or fetch datasets", formatter_class=_formatter,
                       description="List the known datasets or download one.",
                       epilog="examples:\n  cnnjax data list\n  cnnjax data fetch mnist\n")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser)
    dsub.required = True
    q = dsub.add_parser("list", help="show every dataset and whether it is available locally")
    q.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where downloaded datasets live")
    q = dsub.add_parser("fetch", help="download and verify a dataset (mnist, fashion_mnist)")
    q.add_argument("name", help="dataset name")
    q.add_argument("--data-dir", default=None, metavar="DIR",
                   help="target directory (default: ~/.cache/cnnjax/NAME or $CNNJAX_DATA)")
    q.add_argument("--force", action="store_true",
                   help="download again even if verified files are present")
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("summary", help="print a model's layer table",
                       formatter_class=_formatter,
                       description="Print a model's layers with output sizes, weight sizes, "
                                   "parameter count and receptive field.",
                       epilog="examples:\n  cnnjax summary lenet5\n"
                              "  cnnjax summary resnet20 --input-shape 32,32,3 --pool avg\n")
    p.add_argument("model", help="model name")
    p.add_argument("--input-shape", type=_shape, default=(28, 28, 1), metavar="H,W,C",
                   help="one example's shape (default: 28,28,1)")
    p.add_argument("--pool", default="max", help="pool spec (default: %(default)s)")
    p.add_argument("--num-classes", type=_positive_int, default=10, metavar="N",
                   help="output classes (default: %(default)s)")
    p.set_defaults(func=_cmd_summary)

    for name, module, help_ in (("bench", "cnnjax.bench", "benchmark the ops (cnnjax.bench)"),
                                ("viz", "cnnjax.viz.cli", "draw figures (cnnjax.viz)")):
        if name == delegate:
            p = sub.add_parser(name, help=help_, formatter_class=_formatter)
            mod = _import_delegate(name, module)
            mod.configure_parser(p)
            p.set_defaults(func=mod.run)
        else:
            # A stand-in so the top-level help lists it without importing the module.
            p = sub.add_parser(name, help=help_, add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _import_delegate(name: str, module: str):
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise UsageError(f"'{PROG} {name}' is not available: module {module} is not "
                             "installed in this version of cnnjax") from None
        raise UsageError(f"'{PROG} {name}' needs the package {e.name!r}, which is not "
                         "installed (pip install 'cnnjax[all]')") from None
    if not (hasattr(mod, "configure_parser") and hasattr(mod, "run")):
        raise UsageError(f"'{PROG} {name}' is not available: {module} does not provide "
                         "configure_parser() and run()")
    return mod


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``cnnjax`` command; returns the exit status (0 ok, 2 bad arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    delegate = command if command in ("bench", "viz") else None
    try:
        parser = build_parser(delegate)
        args = parser.parse_args(argv)
        args.argv = argv
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
