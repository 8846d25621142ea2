"""The ``cnnjax`` argument parser (``bench`` and ``viz`` configure their own subparsers)."""
from __future__ import annotations

import argparse
import importlib

from cnnjax.cli.args import (PROG, Parser, UsageError, formatter, name_list, pool_list, positive_float, positive_int, seed_list, shape)
from cnnjax.cli.args import non_negative_float, nonnegative_int, workers_count
from cnnjax.cli._commands import (cmd_ablate, cmd_data, cmd_summary, cmd_train)
from cnnjax.cli._commands import cmd_eval, cmd_tune

_EXAMPLES = """\
examples:
  cnnjax ablate                                  # default study: LeNet5 on 8x8 digits, all
                                                 # 25 pool specs x 3 seeds -> runs/ablation/
  cnnjax ablate --pools max,avg,spectral --seeds 0,1 --epochs 10 --out /tmp/abl
  cnnjax data fetch mnist && cnnjax ablate --datasets mnist --epochs 2 --out runs/mnist
  cnnjax train --model lenet5 --pool stochastic --dataset mnist --epochs 3
  cnnjax summary lenet5 --input-shape 28,28,1
  cnnjax data list
  cnnjax train --config train.toml --epochs 5      # a flag overrides the file
  cnnjax eval --workdir runs/spectral --dataset digits
"""




def _add_train_options(p: argparse.ArgumentParser, *, epochs: int, batch_size: int,
                       lr: float) -> None:
    p.add_argument("--epochs", type=positive_int, default=epochs, metavar="N",
                   help="training epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=batch_size, metavar="N",
                   help="examples per step (default: %(default)s, the one default of train, "
                        "ablate and eval: cnnjax.ablation.DEFAULTS)")
    p.add_argument("--lr", type=positive_float, default=lr, metavar="RATE",
                   help="learning rate (default: %(default)s)")
    p.add_argument("--optimizer", default="adam",
                   help="adam, adamw or sgd (cnnjax.train.OPTIMIZERS; default: %(default)s)")
    p.add_argument("--schedule", default="constant",
                   help="learning-rate schedule: constant, cosine or warmup_cosine "
                        "(default: %(default)s)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="use only the first N examples of each split (quick looks)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where downloaded datasets live (default: ~/.cache/cnnjax or "
                        "$CNNJAX_DATA)")
    p.add_argument("--devices", type=positive_int, default=None, metavar="N",
                   help="shard each batch over N local devices (default: all)")
    p.add_argument("--quiet", action="store_true", help="print only the final results")


def _add_config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, metavar="FILE.toml",
                   help="read options from a TOML file (keys: the long option names; flags "
                        "given here override it); the run saves its effective options as "
                        "config.toml")


def build_parser(delegate: str | None = None) -> argparse.ArgumentParser:
    """The ``cnnjax`` argument parser.

    ``bench`` and ``viz`` are configured by their own modules; their subparsers are filled
    in only when ``delegate`` names them, so building the parser imports nothing heavy.
    """
    from cnnjax.ablation import CHECKPOINT_SECONDS, DEFAULTS

    parser = Parser(
        prog=PROG, formatter_class=formatter, epilog=_EXAMPLES,
        description="CNN building blocks for JAX, and the pooling ablation study: the same "
                    "network trained with every pooling variant over several seeds, "
                    "reported as a table and plots.")
    from cnnjax import __version__
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    p = sub.add_parser(
        "train", help="train one model with one pooling variant",
        formatter_class=formatter,
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
    _add_train_options(p, epochs=3, batch_size=DEFAULTS["batch_size"], lr=1e-3)
    # The rest of fit's options, and the configuration file.
    _add_config_option(p)
    p.add_argument("--weight-decay", type=non_negative_float, default=0.0, metavar="W",
                   help="L2 penalty (adam, sgd) or decoupled decay (adamw) (default: 0)")
    p.add_argument("--momentum", type=non_negative_float, default=0.9, metavar="M",
                   help="SGD momentum (default: %(default)s)")
    p.add_argument("--warmup-steps", type=positive_int, default=None, metavar="N",
                   help="warmup of --schedule warmup_cosine (default: 5%% of all steps)")
    p.add_argument("--augment", default="auto", choices=("auto", "crop_flip", "crop", "none"),
                   help="augmentation: auto (crop+flip on CIFAR, crop on SVHN, none "
                        "otherwise), crop_flip, crop, none (default: %(default)s)")
    p.add_argument("--eval-batch-size", type=positive_int, default=None, metavar="N",
                   help="test batch size (default: --batch-size)")
    p.add_argument("--max-to-keep", type=positive_int, default=2, metavar="N",
                   help="checkpoints kept in --workdir (default: %(default)s)")
    p.add_argument("--log-dir", default=None, metavar="DIR",
                   help="where metrics.csv and TensorBoard files go (default: --workdir)")
    p.add_argument("--checkpoint-seconds", type=non_negative_float, default=0.0, metavar="S",
                   help="write an epoch's checkpoint only when S seconds have passed since "
                        "the last one (the last epoch always; default: 0, every epoch)")
    p.add_argument("--frontend", choices=("linen", "nnx"), default="linen",
                   help="Flax front end of the model: linen, or its flax.nnx twin starting "
                        "from the same parameters (default: %(default)s)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "ablate", help="run the pooling ablation study (the main job)",
        formatter_class=formatter,
        description="Train every pool spec x model x dataset x seed, record each finished "
                    "run in OUT/results.jsonl and write OUT/report.md (per model, dataset "
                    "and hyperparameters: every metric's mean ± 95% CI over seeds, a paired "
                    "comparison with --baseline, the published claims) with PNG plots. "
                    "Re-running skips finished runs and resumes an interrupted one from its "
                    "checkpoint, so a kill loses at most --checkpoint-seconds plus one epoch of "
                    "the run in progress. List options take "
                    "comma-separated values.",
        epilog="examples:\n  cnnjax ablate                        # the default study\n"
               "  cnnjax ablate --pools max,avg,spectral --seeds 0 --epochs 5 --out /tmp/a\n"
               "  cnnjax ablate --datasets mnist --epochs 2 --out runs/mnist\n"
               "  cnnjax ablate --out runs/ablation --report-only\n")
    p.add_argument("--out", default="runs/ablation", metavar="DIR",
                   help="output directory (default: %(default)s)")
    p.add_argument("--pools", type=pool_list, action="append", metavar="SPEC,...",
                   help="pool specs (default: every one of cnnjax.layers.POOL_SPECS)")
    p.add_argument("--models", type=name_list, action="append", metavar="NAME,...",
                   help="models (default: lenet5)")
    p.add_argument("--datasets", type=name_list, action="append", metavar="NAME,...",
                   help="datasets (default: digits)")
    p.add_argument("--seeds", type=seed_list, action="append", metavar="N,...",
                   help="seeds (default: 0,1,2)")
    _add_train_options(p, epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"],
                       lr=DEFAULTS["learning_rate"])
    p.add_argument("--cache-dir", default="auto", metavar="DIR",
                   help="JAX persistent compilation cache: 'auto' (~/.cache/cnnjax/jax_cache),"
                        " a directory, or 'none' (default: %(default)s)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep OUT/runs/<run>/ checkpoints of finished runs")
    p.add_argument("--checkpoint-seconds", type=non_negative_float,
                   default=CHECKPOINT_SECONDS, metavar="S",
                   help="a run writes a checkpoint after an epoch only when S seconds have "
                        "passed since its last one, and after its last epoch (default: "
                        "%(default)s; 0: every epoch)")
    p.add_argument("--workers", type=workers_count, default="auto", metavar="N",
                   help="training programs run at once, each in a thread; 'auto': 2 on a "
                        "CPU with one device and at least 2 cores when they fit in memory, "
                        "else 1 (results do not depend on it; default: %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="write the tables without plots")
    p.add_argument("--report-only", action="store_true",
                   help="only rewrite the report from OUT/results.jsonl")
    p.add_argument("--vectorize-seeds", action=argparse.BooleanOptionalAction, default=None,
                   help="train a cell's seeds together as one vectorised program (default: "
                        "on with one CPU device when the seeds fit in memory)")
    p.add_argument("--shift", type=nonnegative_int, default=DEFAULTS["shift"], metavar="N",
                   help="largest shift in pixels of the shift-consistency measurement "
                        "(default: %(default)s)")
    p.add_argument("--shift-trials", type=positive_int, default=DEFAULTS["shift_trials"],
                   metavar="N", help="shift pairs per test image (default: %(default)s)")
    p.add_argument("--baseline", default=None, metavar="SPEC",
                   help="pool variant the report compares with (default: max, or the first "
                        "pool when max is not in the grid)")
    p.add_argument("--frontend", choices=("linen", "nnx"), default="linen",
                   help="Flax front end of the models: linen, or their flax.nnx twins starting "
                        "from the same parameters (default: %(default)s)")
    _add_config_option(p)
    p.set_defaults(func=cmd_ablate, models=None, datasets=None, seeds=None)

    p = sub.add_parser(
        "eval", help="evaluate a trained model (a train --workdir) on a dataset split",
        formatter_class=formatter,
        description="Load the model a `cnnjax train --workdir` run saved (any device count) "
                    "and print its accuracy and mean cross-entropy on a dataset split.",
        epilog="examples:\n  cnnjax eval --workdir runs/spectral --dataset digits\n"
               "  cnnjax eval --workdir runs/mnist --dataset mnist --split train\n")
    p.add_argument("--workdir", required=True, metavar="DIR", help="the training run's workdir")
    p.add_argument("--dataset", default=None,
                   help="dataset name (default: the one the model was trained on)")
    p.add_argument("--split", default="test", choices=("train", "test"),
                   help="dataset split (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=DEFAULTS["batch_size"],
                   metavar="N", help="images per forward pass (default: %(default)s)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="use only the first N examples")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where downloaded datasets live")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("data", help="list or fetch datasets", formatter_class=formatter,
                       description="List the known datasets or download one.",
                       epilog="examples:\n  cnnjax data list\n  cnnjax data fetch mnist\n")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=Parser)
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
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("summary", help="print a model's layer table",
                       formatter_class=formatter,
                       description="Print a model's layers with output sizes, weight sizes, "
                                   "parameter count and receptive field.",
                       epilog="examples:\n  cnnjax summary lenet5\n"
                              "  cnnjax summary resnet20 --input-shape 32,32,3 --pool avg\n")
    p.add_argument("model", help="model name")
    p.add_argument("--input-shape", type=shape, default=(28, 28, 1), metavar="H,W,C",
                   help="one example's shape (default: 28,28,1)")
    p.add_argument("--pool", default="max", help="pool spec (default: %(default)s)")
    p.add_argument("--num-classes", type=positive_int, default=10, metavar="N",
                   help="output classes (default: %(default)s)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser(
        "tune", help="measure impl='auto' for every conv of a model's training step",
        formatter_class=formatter,
        description="Trace and run one training step of MODEL on random images so that "
                    "every convolution's impl='auto' choice is measured and cached "
                    "($CNNJAX_CACHE_DIR or ~/.cache/cnnjax), then print each conv's choice "
                    "and the forward+backward time of every impl.",
        epilog="examples:\n  cnnjax tune --model mnistnet --input-shape 28,28,1\n"
               "  cnnjax tune --model resnet20 --input-shape 32,32,3 --batch-size 64\n")
    p.add_argument("--model", required=True, help="model name")
    p.add_argument("--input-shape", type=shape, required=True, metavar="H,W,C",
                   help="one example's shape")
    p.add_argument("--batch-size", type=positive_int, default=128, metavar="N",
                   help="examples per step (default: %(default)s)")
    p.add_argument("--pool", default="max", help="pool spec (default: %(default)s)")
    p.set_defaults(func=cmd_tune)

    for name, module, help_ in (("bench", "cnnjax.bench", "benchmark the ops (cnnjax.bench)"),
                                ("viz", "cnnjax.viz.cli", "draw figures (cnnjax.viz)")):
        if name == delegate:
            p = sub.add_parser(name, help=help_, formatter_class=formatter)
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
