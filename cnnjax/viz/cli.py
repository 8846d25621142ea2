"""``cnnjax viz ...``: draw the "Looking inside" figures from the command line.

Sub-commands (each writes PNG to ``--out`` and prints the path)::

    cnnjax viz filters              [--workdir DIR] [--model lenet5] [--epochs 2] --out F.png
    cnnjax viz feature-maps         [--workdir DIR] [--index 0] --out F.png
    cnnjax viz kernels              [--image PHOTO] --out F.png
    cnnjax viz receptive-field      [--model lenet5] [--input-shape 28,28,1] --out F.png
    cnnjax viz receptive-field      --layers 5,1,2,1;2,2,0,1 --input-shape 28,28 --out F.png
    cnnjax viz pooling-information  [--ratios 1/4,1/9,...] [--size 240,360] --out F.png
    cnnjax viz ablation RESULTS     [--out DIR]

``filters`` and ``feature-maps`` need a trained model: by default LeNet5 trained on the
embedded 8x8 digits for a couple of epochs (``cnnjax.train.fit``, seconds on a CPU); with
``--workdir`` the run is checkpointed there and a finished run is loaded instead of retrained.

The ``cnnjax`` command calls :func:`configure_parser` on its ``viz`` sub-parser and
:func:`run` with the parsed arguments. Exit codes: 0 success, 2 bad arguments (one line on
stderr).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from cnnjax.cli.args import positive_int

_DEFAULT_OUT = "figures"


def _shape(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated ints like 28,28,1, "
                                         f"got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be positive ints, got {text!r}")
    return values


def _ratios(text: str) -> list[float]:
    try:
        return [float(Fraction(v.strip())) for v in text.split(",")]
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"must be comma-separated fractions like 1/4,1/9, "
                                         f"got {text!r}") from None


def _layers(text: str) -> list[tuple[int, ...]]:
    try:
        layers = [tuple(int(v) for v in part.split(",")) for part in text.split(";")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'k,s,p,d;k,s,p,d;...', got {text!r}") from None
    if any(len(layer) not in (3, 4) for layer in layers):
        raise argparse.ArgumentTypeError(f"each layer needs 3 or 4 ints k,s,p[,d], got {text!r}")
    return layers


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="lenet5", help="model name (default: %(default)s)")
    p.add_argument("--pool", default="max", help="pool spec (default: %(default)s)")
    p.add_argument("--dataset", default="digits", help="dataset (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=2,
                   help="training epochs when no finished run is found (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="training batch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3,
                   help="learning rate (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--workdir", default=None, metavar="DIR",
                   help="checkpoint directory of a `cnnjax train` run (same --model, --pool, "
                        "--dataset, --epochs); trained there if not finished yet")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="train and test on the first N examples only (quick looks)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="dataset directory")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Adds the ``viz`` sub-commands to ``parser`` (the ``cnnjax viz`` sub-parser)."""
    parser.description = ("Draw the 'Looking inside' figures as PNG: learned filters, "
                          "feature maps, classic kernels, receptive fields, the information "
                          "kept by pooling, and the ablation plots.")
    sub = parser.add_subparsers(dest="viz_command", metavar="FIGURE",
                                parser_class=type(parser))
    sub.required = True

    p = sub.add_parser("filters", help="first-layer filters of a trained model")
    _add_model_options(p)
    p.add_argument("--out", default=f"{_DEFAULT_OUT}/filters.png", metavar="PNG",
                   help="output file (default: %(default)s)")

    p = sub.add_parser("feature-maps", help="feature maps of every conv/pool stage")
    _add_model_options(p)
    p.add_argument("--index", type=int, default=0,
                   help="which test image to show (default: %(default)s)")
    p.add_argument("--channels", type=positive_int, default=8,
                   help="maps per stage (default: %(default)s)")
    p.add_argument("--out", default=f"{_DEFAULT_OUT}/feature_maps.png", metavar="PNG",
                   help="output file (default: %(default)s)")

    p = sub.add_parser("kernels", help="the lectures' blur/edge/sharpen/vertical kernels")
    p.add_argument("--image", default=None, metavar="PHOTO",
                   help="image file (default: scikit-learn's china.jpg sample photo)")
    p.add_argument("--out", default=f"{_DEFAULT_OUT}/classic_kernels.png", metavar="PNG",
                   help="output file (default: %(default)s)")

    p = sub.add_parser("receptive-field", help="receptive field per layer of a model")
    p.add_argument("--model", default="lenet5", help="model name (default: %(default)s)")
    p.add_argument("--pool", default="max", help="pool spec (default: %(default)s)")
    p.add_argument("--input-shape", type=_shape, default=(28, 28, 1), metavar="H,W,C",
                   help="one example's shape (default: 28,28,1)")
    p.add_argument("--layers", type=_layers, default=None, metavar="K,S,P,D;...",
                   help="instead of a model: layers as kernel,stride,padding[,dilation] "
                        "separated by ';'")
    p.add_argument("--out", default=f"{_DEFAULT_OUT}/receptive_field.png", metavar="PNG",
                   help="output file (default: %(default)s)")

    p = sub.add_parser("pooling-information",
                       help="reconstruction error vs values kept (Rippel et al. 2015, Fig. 4)")
    p.add_argument("--ratios", type=_ratios, default=None, metavar="1/4,1/9,...",
                   help="fractions kept, each 1/k^2 (default: 1/4,1/9,1/16,1/25,1/36,1/64)")
    p.add_argument("--size", type=_shape, default=(240, 360), metavar="H,W",
                   help="resize the sample photos to H,W (default: 240,360)")
    p.add_argument("--p", type=float, default=2.0, help="Lp pool exponent (default: 2)")
    p.add_argument("--upsample", choices=("nearest", "linear"), default="nearest",
                   help="upsampling of the spatial pools (default: %(default)s)")
    p.add_argument("--out", default=f"{_DEFAULT_OUT}/pooling_information.png", metavar="PNG",
                   help="output file (default: %(default)s)")

    p = sub.add_parser("ablation", help="redraw the ablation study's plots")
    p.add_argument("results", metavar="RESULTS",
                   help="results.jsonl of `cnnjax ablate`, or its output directory")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: the results' directory)")


class _Usage(Exception):
    """A bad argument found after parsing (exit status 2)."""


def trained_model(args: argparse.Namespace):
    """``(model, variables, test_data, normalization)``: the run in ``args.workdir`` or a quick
    fresh one (``normalization`` = the ``(mean, std)`` the model's inputs were scaled with)."""
    from cnnjax import data, models, train

    try:
        train_data = data.load(args.dataset, "train", data_dir=args.data_dir)
        test_data = data.load(args.dataset, "test", data_dir=args.data_dir)
    except (ValueError, OSError) as e:
        raise _Usage(str(e)) from None
    if args.limit is not None:
        train_data = train_data._replace(images=train_data.images[:args.limit],
                                         labels=train_data.labels[:args.limit])
        test_data = test_data._replace(images=test_data.images[:args.limit],
                                       labels=test_data.labels[:args.limit])
    if args.model not in getattr(models, "NAMES", (args.model,)):
        raise _Usage(f"unknown model {args.model!r}; valid models: {', '.join(models.NAMES)}")
    model = models.get(args.model, num_classes=train_data.num_classes, pool=args.pool)
    # fit() resumes from the workdir's checkpoint: a finished run is loaded, not retrained.
    result = train.fit(model, train_data, test_data, epochs=args.epochs,
                       batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                       workdir=args.workdir)
    variables = {"params": result.state.params}
    if result.state.batch_stats:
        variables["batch_stats"] = result.state.batch_stats
    if result.history:
        h = result.history[-1]
        print(f"{args.model} (pool={args.pool}) on {args.dataset}: epoch {h['epoch']}, "
              f"test accuracy {100 * h['test_accuracy']:.2f}%")
    return model, variables, test_data, result.normalization


def _run(args: argparse.Namespace) -> list[Path]:
    from cnnjax import viz

    cmd = args.viz_command
    if cmd == "filters":
        model, variables, _, _ = trained_model(args)
        return [viz.plot_filters(variables, args.out,
                                 title=f"First-layer filters of {type(model).__name__} "
                                       f"trained on {args.dataset}")]
    if cmd == "feature-maps":
        from cnnjax.data import normalize

        model, variables, test_data, (mean, std) = trained_model(args)
        if not 0 <= args.index < len(test_data.images):
            raise _Usage(f"--index must be in [0, {len(test_data.images)}), got {args.index}")
        # The model saw inputs normalised with the training split's statistics; show it the same.
        image = normalize(test_data.images[args.index:args.index + 1], mean, std)
        return [viz.plot_feature_maps(model, variables, image, args.out,
                                      max_channels=args.channels)]
    if cmd == "kernels":
        image = None
        if args.image is not None:
            import matplotlib.image

            try:
                image = matplotlib.image.imread(args.image)
            except (OSError, ValueError) as e:
                raise _Usage(f"--image could not be read: {e}") from None
        return [viz.plot_classic_kernels(image, args.out)]
    if cmd == "receptive-field":
        if args.layers is not None:
            spec, name = args.layers, f"{len(args.layers)} layers"
        else:
            from cnnjax import models

            if args.model not in getattr(models, "NAMES", (args.model,)):
                raise _Usage(f"unknown model {args.model!r}; valid models: "
                             f"{', '.join(models.NAMES)}")
            spec = models.get(args.model, num_classes=10, pool=args.pool)
            name = type(spec).__name__
        shape = "x".join(str(v) for v in args.input_shape)
        return [viz.plot_receptive_field(spec, args.input_shape, args.out,
                                         title=f"Receptive field per layer of {name} "
                                               f"on a {shape} input")]
    if cmd == "pooling-information":
        if len(args.size) != 2:
            raise _Usage(f"--size must be H,W, got {args.size}")
        ratios = args.ratios  # None: the default 1/4 ... 1/64
        images = viz.sample_photos(tuple(args.size)).astype("float32")
        info = viz.pooling_information(images, ratios, p=args.p, upsample=args.upsample)
        print(f"{'kept':>6} " + " ".join(f"{m:>9}" for m in info["errors"]))
        for i, k in enumerate(info["windows"]):
            print(f"{'1/' + str(k * k):>6} "
                  + " ".join(f"{info['errors'][m][i]:>9.4f}" for m in info["errors"]))
        return [viz.plot_pooling_information(images, ratios, args.out, p=args.p,
                                             upsample=args.upsample)]
    if cmd == "ablation":
        results = Path(args.results)
        if not results.exists():
            raise _Usage(f"RESULTS must be a results.jsonl file or its directory, "
                         f"got {args.results!r} (not found)")
        out = args.out or (results if results.is_dir() else results.parent)
        return viz.plot_ablation(results, out)
    raise _Usage(f"unknown figure {cmd!r}")


def run(args: argparse.Namespace) -> int:
    """Draws the figure chosen on the command line; returns the exit status."""
    try:
        paths = _run(args)
    except (_Usage, ValueError, TypeError) as e:
        print(f"cnnjax viz {args.viz_command}: error: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``cnnjax viz`` on its own (``python -m cnnjax.viz.cli ...``)."""
    parser = argparse.ArgumentParser(prog="cnnjax viz")
    configure_parser(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
