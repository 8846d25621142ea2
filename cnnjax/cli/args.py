"""Argument types, the one-line usage error and the checks of every `cnnjax` subcommand (also
``bench`` and ``viz``, whose parsers use these types)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

PROG = "cnnjax"


class UsageError(Exception):
    """A bad command-line argument found after parsing; exits with status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (status 2), pointing at ``--help``."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class Formatter(argparse.HelpFormatter):
    """Wraps descriptions to the terminal but keeps the examples epilog as written."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=32)

    def _fill_text(self, text, width, indent):
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


formatter = Formatter


# --------------------------------------------------------------------------- argument types


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def workers_count(text: str) -> int | str:
    """``'auto'`` or a positive integer (``ablate --workers``)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a positive integer, got "
                                         f"{text!r}") from None


def nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative finite number, got {text}")
    return value


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated non-negative integers, got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated non-negative integers, got {text!r}")
    return seeds


def name_list(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of names, got {text!r}")
    return names


def pool_list(text: str) -> list[str]:
    # Specs may carry comma-separated options ('mixed:learn,per_channel'); the registry knows
    # which fragments are options of the spec before them.
    from cnnjax.layers import pool_specs

    specs = pool_specs.split_spec_list(text)
    if not specs:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of pool specs, "
                                         f"got {text!r}")
    return specs


def shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"must be H,W,C with positive integers, got {text!r}")
    return shape


def flatten(lists: Sequence[Sequence] | None) -> list | None:
    # Options taking lists accept both "a,b" and repeated or space-separated values.
    if lists is None:
        return None
    return list(dict.fromkeys(v for group in lists for v in group))


# --------------------------------------------------------------------------- validation


def check_models(names: Sequence[str]) -> None:
    from cnnjax import models

    for name in names:
        if name.lower() not in models.NAMES:
            raise UsageError(f"unknown model {name!r}; valid models: {', '.join(models.NAMES)}")


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def check_pools(specs: Sequence[str]) -> None:
    from cnnjax.layers import pool_specs

    for spec in specs:
        name = spec.partition(":")[0].strip().lower()
        try:
            pool_specs.parse(spec)  # the registry's one check of names, options and values
        except (ValueError, TypeError) as e:
            if not any(m.name == name for m in pool_specs.METHODS):
                raise UsageError(f"unknown pool spec {spec!r}; valid specs: "
                                 f"{', '.join(pool_specs.POOL_SPECS)}") from None
            raise UsageError(f"invalid pool spec {spec!r}: {first_line(e)}") from None


def check_input_shape(model, name: str, shape: tuple[int, ...]) -> None:
    """The model must run on one ``shape`` image (checked abstractly, no compilation)."""
    import jax
    import jax.numpy as jnp

    from cnnjax.ops._autotune import static_only

    key = jax.random.PRNGKey(0)
    try:
        with static_only():  # an abstract trace: nothing to measure
            jax.eval_shape(lambda x: model.init({"params": key, "dropout": key, "pool": key},
                                                x, train=False),
                           jax.ShapeDtypeStruct((2, *shape), jnp.float32))
    except (ValueError, TypeError) as e:
        raise UsageError(f"--input-shape {','.join(map(str, shape))} is too small or otherwise "
                         f"unfit for {name}: {first_line(e)}") from None


def check_datasets(names: Sequence[str]) -> None:
    from cnnjax import data

    for name in names:
        if name not in data.DATASETS:
            raise UsageError(f"unknown dataset {name!r}; valid datasets: "
                             f"{', '.join(data.DATASETS)}")


def check_optimizer(name: str, schedule: str) -> None:
    from cnnjax.train import OPTIMIZERS, SCHEDULES

    if name not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {name!r}; valid optimizers: "
                         f"{', '.join(OPTIMIZERS)}")
    if schedule not in SCHEDULES:
        raise UsageError(f"unknown schedule {schedule!r}; valid schedules: "
                         f"{', '.join(SCHEDULES)}")


def check_writable(path: str, option: str) -> Path:
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


def check_batch(batch_size: int, devices: int | None, examples: int) -> None:
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


def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def load(name: str, split: str, data_dir: str | None):
    from cnnjax import data

    try:
        return data.load(name, split, data_dir=data_dir)
    except (data.DatasetNotFoundError, data.CorruptDatasetError) as e:
        raise UsageError(str(e)) from None
