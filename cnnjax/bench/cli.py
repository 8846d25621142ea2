"""``cnnjax bench``: the command line (``configure_parser``, ``run``, ``main``) and :func:`benchmark`."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax

from cnnjax.bench.config import SUITES, Config
from cnnjax.bench.conv_suite import (
    CONV_BATCHES,
    CONV_LAYERS,
    FFT_KERNELS,
    QUICK_LAYERS,
    bench_conv,
    bench_fft,
    bench_matmul,
)
from cnnjax.bench.peers import load_torch
from cnnjax.bench.pool_suite import bench_pool
from cnnjax.bench.report import markdown, targets
from cnnjax.bench.train_suite import TRAIN_MODELS, bench_train
from cnnjax.cli.args import positive_int
from cnnjax.ops._autotune import cores, cpu_model


def _csv(choices: Sequence[str] | None = None):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(s.strip() for s in text.split(",") if s.strip())
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        bad = [s for s in items if choices is not None and s not in choices]
        if bad:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(bad)}; choose from {', '.join(choices)}")
        return items
    return parse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Adds the ``cnnjax bench`` options to ``parser``."""
    parser.description = (
        "Benchmark cnnjax on this machine, every contender side by side in one run: the conv "
        "layers of LeNet5/MnistNet/VGG/ResNet-20 per impl vs Flax and PyTorch, every pooling "
        "op, training steps vs plain Flax and PyTorch, BN folding, memory, FFT convs. Prints "
        "Markdown tables (medians of interleaved timed runs after warm-up).")
    parser.add_argument("--suite", type=_csv(SUITES), default=SUITES, metavar="NAME,...",
                        help=f"suites to run, from {','.join(SUITES)} (default: all)")
    parser.add_argument("--repeats", type=positive_int, default=None, metavar="N",
                        help="timed runs per contender (default: 5, --quick: 3)")
    parser.add_argument("--batch", type=positive_int, default=None, metavar="N",
                        help="batch size (default: 128, the conv suite 128 and 16; --quick: "
                             "16)")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the results as JSON to PATH")
    parser.add_argument("--quick", action="store_true",
                        help="a small configuration: 3 conv layers, MnistNet only, kernels 3 and 11 "
                             "in the FFT check, batch 16, 3 repeats")
    parser.add_argument("--layers", type=_csv(), default=None, metavar="TEXT,...",
                        help="only conv layers whose name contains one of these "
                             "(e.g. mnistnet,vgg11.conv3)")
    parser.add_argument("--models", type=_csv(TRAIN_MODELS), default=TRAIN_MODELS,
                        metavar="NAME,...", help="training-step models (default: all)")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip the PyTorch rows even when torch is installed")
    parser.add_argument("--profile", action="store_true",
                        help="with the train suite: profile the cnnjax training steps with "
                             "the XLA profiler and report the time per layer and top ops")
    parser.add_argument("--verbose", action="store_true",
                        help="print each row to stderr as it finishes (the default)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the final tables (no per-row lines on stderr)")


def make_config(args: argparse.Namespace) -> Config:
    """Resolves parsed arguments (defaults depend on ``--quick``)."""
    quick = bool(args.quick)
    layers = CONV_LAYERS
    if args.layers:
        layers = tuple(l for l in CONV_LAYERS if any(p in l.name for p in args.layers))
    elif quick:
        layers = tuple(l for l in CONV_LAYERS if l.name in QUICK_LAYERS)
    torch = None if args.no_torch else load_torch()
    if torch is not None:
        torch.set_num_threads(cores())
    return Config(
        suites=tuple(args.suite), batch=args.batch or (16 if quick else 128),
        repeats=args.repeats or (3 if quick else 5), quick=quick, layers=layers,
        models=("mnistnet",) if quick and args.models == TRAIN_MODELS else tuple(args.models),
        fft_kernels=(3, 11) if quick else FFT_KERNELS,
        torch=torch, verbose=not getattr(args, "quiet", False),
        profile=bool(getattr(args, "profile", False)),
        conv_batches=() if quick or args.batch else CONV_BATCHES)


def benchmark(cfg: Config) -> dict[str, Any]:
    """Runs the configured suites; returns the JSON-able result."""
    t0 = time.perf_counter()
    notes = []
    if cfg.torch is None:
        notes.append("PyTorch rows skipped (torch not installed or --no-torch).")
    result: dict[str, Any] = {"notes": notes}
    if "conv" in cfg.suites:
        result["matmul"] = bench_matmul(cfg)
        result["conv"] = bench_conv(cfg)
    if "pool" in cfg.suites:
        result["pool"] = bench_pool(cfg)
    if "train" in cfg.suites or "memory" in cfg.suites:
        result["train"] = bench_train(cfg, with_memory="memory" in cfg.suites)
    if "fft" in cfg.suites:
        result["fft"] = bench_fft(cfg)
    result["targets"] = targets(result)
    result["meta"] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "jax": jax.__version__, "backend": jax.default_backend(), "cores": cores(),
        "cpu": cpu_model(), "torch": None if cfg.torch is None else cfg.torch.__version__,
        "batch": cfg.batch, "repeats": cfg.repeats, "suites": list(cfg.suites),
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
        "seconds": time.perf_counter() - t0}
    return result


def run(args: argparse.Namespace) -> int:
    """Runs ``cnnjax bench`` with parsed ``args``; prints Markdown, optionally writes JSON."""
    cfg = make_config(args)
    result = benchmark(cfg)
    sys.stdout.write(markdown(result) + "\n")
    sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m cnnjax.bench``)."""
    parser = argparse.ArgumentParser(prog="cnnjax bench")
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
