"""The pooling ablation study: one network, every pooling variant, several seeds.

The grid is pool spec × model × dataset × seed. Every run trains with :func:`cnnjax.train.fit`
and, once finished, is recorded as one JSON object (one line) in ``out_dir/results.jsonl``.
The file is always rewritten whole through a temporary file and :func:`os.replace`, so it
holds complete records only, whatever moment the process is killed at. Re-running the same
study skips the runs already recorded (keyed by pool, model, dataset, seed and the
hyperparameters) and resumes an interrupted run from its per-run checkpoint directory
``out_dir/runs/<run id>`` (``fit(..., workdir=...)`` checkpoints every epoch), so an
interruption loses at most the epoch in progress.

At the end :func:`write_report` writes ``out_dir/report.md``: one Markdown table per
(model, dataset) — pool | test accuracy mean ± std over seeds | final test loss | seconds per
epoch | parameters — with the command that produced it, and embeds the plots drawn by
:func:`cnnjax.viz.plot_ablation` (accuracy per variant with error bars; mean test-accuracy
curves), which ``cnnjax viz ablation RESULTS`` can redraw from the results file alone.

Defaults (:data:`DEFAULTS`) make the default study — LeNet5 on the embedded 8×8 ``'digits'``,
all twelve pool specs of the contract, three seeds — finish in a few minutes on two CPU
cores; ``experiments/pooling_ablation.py`` records the numbers it produced.

Example:
    >>> from cnnjax.ablation import run_ablation
    >>> records = run_ablation("runs/ablation", pools=("max", "avg"), seeds=(0,))  # doctest: +SKIP
    >>> print(open("runs/ablation/report.md").read())  # doctest: +SKIP

This module imports only the standard library and NumPy at import time (JAX, Flax, the data
and training code are imported when a study runs), so reading results and writing reports
stays cheap.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_FILE = "results.jsonl"
REPORT_FILE = "report.md"
RUNS_DIR = "runs"

# The contract's pool specs (``cnnjax.nn.POOL_SPECS`` holds the same tuple); repeated here so
# that reading results and building the CLI never has to import Flax.
POOL_SPECS = (
    "max", "avg", "sum", "lp:p=3", "lp:learn", "l2", "mixed:alpha=0.5", "mixed:learn",
    "stochastic_mixed", "gated", "stochastic", "spectral",
)

# Chosen by measurement (see experiments/pooling_ablation.py): on 2 CPU cores the default
# grid (12 pools × 3 seeds of LeNet5 on 8×8 digits) takes a few minutes, and by epoch 20
# every variant's test accuracy has been on its plateau for ~8 epochs (one epoch is 22
# steps of 64), so the table compares converged networks, not training speed.
DEFAULTS: dict[str, Any] = {
    "epochs": 20,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "optimizer": "adam",
    "schedule": "constant",
}

_OP = "run_ablation"


def _fail(message: str, exc: type[Exception] = ValueError) -> None:
    raise exc(f"{_OP}: {message}")


# --------------------------------------------------------------------------- results file


def results_path(out_dir: str | os.PathLike) -> Path:
    """``out_dir/results.jsonl``."""
    return Path(out_dir) / RESULTS_FILE


def load_results(path: str | os.PathLike) -> list[dict]:
    """Reads the finished runs recorded in a results file.

    Args:
        path: ``results.jsonl`` or the ablation's output directory holding it.

    Returns:
        One dict per finished run, in the order they finished; ``[]`` if there is no file.
        An incomplete last line (a write cut short by an external appender) is ignored;
        any other line that is not a JSON object raises ``ValueError`` naming the line,
        because a corrupt results file must never be silently summarised.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # no trailing newline: the last write never completed
                break
            raise ValueError(
                f"load_results: line {i + 1} of {path} is not valid JSON; the results file "
                f"is corrupt (delete that line to re-run the run it recorded).") from None
        if not isinstance(record, dict):
            raise ValueError(f"load_results: line {i + 1} of {path} must be a JSON object, "
                             f"got {type(record).__name__}.")
        records.append(record)
    return records


def _append_record(path: Path, record: Mapping[str, Any]) -> None:
    """Appends one record by rewriting the whole file atomically.

    Rewriting (temp file in the same directory, fsync, ``os.replace``) instead of appending
    in place means a reader, or a re-run after ``kill -9``, sees either the old file or the
    new one, never half a line. The file is small (one line per run), so this costs nothing.
    """
    with _locked(path):
        _rewrite_with(path, record)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock beside ``path``, so two studies writing the same results
    file cannot lose each other's records (read-modify-write); a no-op without fcntl."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with open(path.with_name("." + path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _rewrite_with(path: Path, record: Mapping[str, Any]) -> None:
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if old and not old.endswith("\n"):
        # Drop an incomplete last line left by some other writer (load_results ignores it).
        old = old[: old.rfind("\n") + 1]
    _atomic_write(path, old + json.dumps(record, sort_keys=True, allow_nan=True) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file in the same directory and
    ``os.replace`` (atomic on POSIX and Windows): readers never see a partial file."""
    # A plain open (not mkstemp) so the file gets the usual umask permissions, not 0600.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


# --------------------------------------------------------------------------- run identity


def _canonical(hyperparameters: Mapping[str, Any]) -> str:
    return json.dumps(dict(hyperparameters), sort_keys=True, separators=(",", ":"))


def hyperparameter_hash(hyperparameters: Mapping[str, Any]) -> str:
    """Eight hex digits identifying a set of hyperparameters (stable across runs)."""
    return hashlib.sha1(_canonical(hyperparameters).encode()).hexdigest()[:8]


def run_key(record: Mapping[str, Any]) -> tuple:
    """The identity of a run: ``(pool, model, dataset, seed, hyperparameters)``."""
    return (record["pool"], record["model"], record["dataset"], int(record["seed"]),
            _canonical(record["hyperparameters"]))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(text)).strip("-")


def run_id(pool: str, model: str, dataset: str, seed: int,
           hyperparameters: Mapping[str, Any]) -> str:
    """A file-system-safe name for one run, e.g. ``lenet5_digits_lp-p-3_s0_1a2b3c4d``."""
    return (f"{_slug(model)}_{_slug(dataset)}_{_slug(pool)}_s{int(seed)}_"
            f"{hyperparameter_hash(hyperparameters)}")


# --------------------------------------------------------------------------- summaries


@dataclasses.dataclass(frozen=True)
class PoolSummary:
    """One row of the report: a pool variant aggregated over seeds."""

    pool: str
    seeds: tuple[int, ...]
    accuracy_mean: float
    accuracy_std: float
    loss_mean: float
    loss_std: float
    seconds_per_epoch: float
    params: int
    curve_mean: tuple[float, ...]  # test accuracy per epoch, mean over seeds
    curve_std: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    """All pool variants of one (model, dataset, hyperparameters) study."""

    model: str
    dataset: str
    hyperparameters: dict
    slug: str  # file-name stem shared by the report and the plots
    rows: tuple[PoolSummary, ...]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    # Sample std (ddof=1) across seeds, as papers report it; one seed has no spread.
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def summarize(records: Iterable[Mapping[str, Any]]) -> list[GroupSummary]:
    """Aggregates finished runs per (model, dataset, hyperparameters) and pool.

    Rows keep the order in which pools first appear in ``records`` (the grid's order);
    a run recorded twice counts once. The slug is ``<model>_<dataset>``, with the
    hyperparameter hash appended when several hyperparameter sets share a model and dataset.
    """
    seen: set[tuple] = set()
    groups: dict[tuple, dict[str, list[Mapping[str, Any]]]] = {}
    for r in records:
        key = run_key(r)
        if key in seen:
            continue
        seen.add(key)
        gkey = (r["model"], r["dataset"], _canonical(r["hyperparameters"]))
        groups.setdefault(gkey, {}).setdefault(r["pool"], []).append(r)
    per_pair: dict[tuple, int] = {}
    for model, dataset, _ in groups:
        per_pair[(model, dataset)] = per_pair.get((model, dataset), 0) + 1
    out = []
    for (model, dataset, hp), pools in groups.items():
        hyperparameters = json.loads(hp)
        slug = f"{_slug(model)}_{_slug(dataset)}"
        if per_pair[(model, dataset)] > 1:
            slug += "_" + hyperparameter_hash(hyperparameters)
        rows = []
        for pool, runs in pools.items():
            runs = sorted(runs, key=lambda r: int(r["seed"]))
            acc = _mean_std([r["test_accuracy"] for r in runs])
            loss = _mean_std([r["test_loss"] for r in runs])
            n_epochs = min(len(r["history"]) for r in runs)
            curves = np.asarray([[h["test_accuracy"] for h in r["history"][:n_epochs]]
                                 for r in runs], dtype=np.float64)
            curve_std = (curves.std(axis=0, ddof=1) if len(runs) > 1
                         else np.zeros(n_epochs))
            rows.append(PoolSummary(
                pool=pool,
                seeds=tuple(int(r["seed"]) for r in runs),
                accuracy_mean=acc[0], accuracy_std=acc[1],
                loss_mean=loss[0], loss_std=loss[1],
                seconds_per_epoch=float(np.mean([r["seconds_per_epoch"] for r in runs])),
                params=int(runs[0]["params"]),
                curve_mean=tuple(float(v) for v in curves.mean(axis=0)),
                curve_std=tuple(float(v) for v in curve_std),
            ))
        out.append(GroupSummary(model, dataset, hyperparameters, slug, tuple(rows)))
    return out


def format_table(group: GroupSummary) -> str:
    """The Markdown table of one study: one row per pool variant."""
    lines = [
        "| pool | test accuracy (%) | final test loss | s/epoch | parameters | seeds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in group.rows:
        lines.append(
            f"| `{row.pool}` | {100 * row.accuracy_mean:.2f} ± {100 * row.accuracy_std:.2f} "
            f"| {row.loss_mean:.4f} ± {row.loss_std:.4f} | {row.seconds_per_epoch:.3f} "
            f"| {row.params:,} | {len(row.seeds)} |")
    return "\n".join(lines)


def describe_hyperparameters(hyperparameters: Mapping[str, Any]) -> str:
    """``'batch_size=64, epochs=20, ...'``: the set values, sorted by name."""
    return ", ".join(f"{k}={v}" for k, v in sorted(hyperparameters.items()) if v is not None)


def write_report(out_dir: str | os.PathLike, records: Sequence[Mapping[str, Any]] | None = None,
                 *, command: str | None = None, plots: bool = True) -> Path:
    """Writes ``out_dir/report.md`` (and the PNG plots it embeds).

    Args:
        out_dir: the ablation's output directory.
        records: the runs to report; default: every run in ``out_dir/results.jsonl``.
        command: the command line that produced the results, quoted in the report;
            default: the commands recorded with the runs.
        plots: draw the plots with :func:`cnnjax.viz.plot_ablation` (needs matplotlib; when
            it is not installed the report says so and keeps the tables).

    Returns:
        The path of the report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if records is None:
        records = load_results(out_dir)
    groups = summarize(records)
    commands = [command] if command else list(dict.fromkeys(
        r["command"] for r in records if r.get("command")))
    images: dict[str, list[Path]] = {}
    plot_note = ""
    if plots and groups:
        try:
            # viz sits beside this module at the top of the stack; imported here so that
            # matplotlib stays an optional dependency of reading and training.
            from cnnjax.viz._ablation import plot_ablation
        except ImportError as e:
            plot_note = f"_Plots skipped: {e} (install the `viz` extra: pip install cnnjax[viz])._"
        else:
            for p in plot_ablation(list(records), out_dir):
                images.setdefault(p.stem.split("_", 1)[1], []).append(p)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = ["# Pooling ablation", ""]
    if commands:
        parts += ["Produced by:", "", "```", *commands, "```", ""]
    parts += [f"{sum(len(r.seeds) for g in groups for r in g.rows)} finished runs; "
              f"written {now}. Accuracy and loss are mean ± sample std over seeds, taken "
              "after the last epoch; s/epoch is the mean training time of an epoch, "
              "leaving out the first (which includes compiling).", ""]
    if plot_note:
        parts += [plot_note, ""]
    for g in groups:
        parts += [f"## {g.model} on {g.dataset}", "",
                  f"Hyperparameters: {describe_hyperparameters(g.hyperparameters)}.", "",
                  format_table(g), ""]
        for p in sorted(images.get(g.slug, []), key=lambda p: p.name):
            parts += [f"![{p.stem}]({p.name})", ""]
    path = out_dir / REPORT_FILE
    _atomic_write(path, "\n".join(parts))
    return path


# --------------------------------------------------------------------------- the grid


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cnnjax/jax_cache`` (``~/.cache/cnnjax/jax_cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnjax" / "jax_cache"


def enable_compilation_cache(cache_dir: str | os.PathLike) -> Path:
    """Turns on JAX's persistent compilation cache in ``cache_dir`` (unless one is set).

    Compilation dominates a small study on CPU, and every seed (and every re-run) of a
    pool variant compiles the same programs, so caching them on disk lets seeds 1, 2, ...
    and resumed studies skip XLA. Small programs count too: the minimum compile time worth
    caching is lowered from JAX's default 1 s to 0.1 s. A cache directory the user already
    configured (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is kept.
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    path = Path(cache_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    if jax.config.jax_persistent_cache_min_compile_time_secs >= 1.0:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    return path


def _check_names(values: Any, name: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    values = tuple(values)
    if not values:
        _fail(f"{name} must name at least one entry, got an empty sequence.")
    for v in values:
        if not isinstance(v, str) or not v:
            _fail(f"{name} must contain non-empty strings, got {v!r}.", TypeError)
    return tuple(dict.fromkeys(values))  # drop repeats, keep order


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        _fail(f"{name} must be a positive int, got {value!r}.", TypeError)
    if value < 1:
        _fail(f"{name} must be >= 1, got {value!r}.")
    return int(value)


def _subset(data: Any, limit: int | None) -> Any:
    if limit is None or len(data.labels) <= limit:
        return data
    return data._replace(images=data.images[:limit], labels=data.labels[:limit])


def _final_record(pool: str, model_name: str, dataset: str, seed: int,
                  hyperparameters: Mapping[str, Any], rid: str, params: int,
                  history: Sequence[Mapping[str, Any]], seconds_total: float,
                  devices: int, command: str | None) -> dict:
    history = [{k: (float(v) if isinstance(v, (float, np.floating)) else
                    int(v) if isinstance(v, (int, np.integer)) else v)
                for k, v in h.items()} for h in history]
    epoch_seconds = [h["seconds"] for h in history]
    # The first epoch includes compiling the train and eval steps; leaving it out makes the
    # column compare the pooling ops, not XLA.
    steady = epoch_seconds[1:] or epoch_seconds
    last = history[-1]
    import jax

    from cnnjax import __version__
    return {
        "run_id": rid,
        "pool": pool,
        "model": model_name,
        "dataset": dataset,
        "seed": int(seed),
        "hyperparameters": dict(hyperparameters),
        "params": int(params),
        "history": history,
        "epochs_trained": len(history),
        "test_accuracy": float(last["test_accuracy"]),
        "test_loss": float(last["test_loss"]),
        "train_accuracy": float(last["train_accuracy"]),
        "train_loss": float(last["train_loss"]),
        "seconds_per_epoch": float(np.mean(steady)),
        "first_epoch_seconds": float(epoch_seconds[0]),
        "seconds_total": float(seconds_total),
        "devices": int(devices),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"cnnjax": __version__, "jax": jax.__version__},
        "command": command,
    }


def run_ablation(
    out_dir: str | os.PathLike,
    *,
    pools: Sequence[str] | None = None,
    models: Sequence[str] = ("lenet5",),
    datasets: Sequence[str] = ("digits",),
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    learning_rate: float = DEFAULTS["learning_rate"],
    optimizer: str = DEFAULTS["optimizer"],
    schedule: str = DEFAULTS["schedule"],
    limit: int | None = None,
    data_dir: str | os.PathLike | None = None,
    devices: int | None = None,
    cache_dir: str | os.PathLike | None = "auto",
    keep_checkpoints: bool = False,
    report: bool = True,
    plots: bool = True,
    command: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    callback: Callable[[dict], None] | None = None,
    on_epoch_end: Callable[[str, dict], None] | None = None,
) -> list[dict]:
    """Trains every (pool, model, dataset, seed) of the grid and reports the results.

    Args:
        out_dir: output directory (created): ``results.jsonl``, ``report.md``, the plots and
            ``runs/<run id>/`` checkpoints of unfinished runs.
        pools: pool spec strings for ``cnnjax.nn.make_pool``; default: all of
            ``cnnjax.nn.POOL_SPECS`` (the contract's twelve).
        models: names for ``cnnjax.models.get``.
        datasets: names for ``cnnjax.data.load`` (``'train'`` and ``'test'`` splits).
        seeds: one run per seed; the seed fixes initialisation, shuffling and stochastic pools.
        epochs, batch_size, learning_rate, optimizer, schedule: passed to
            ``cnnjax.train.fit``.
        limit: if given, train and test on the first ``limit`` examples of each split
            (quick looks and tests); part of the hyperparameters.
        data_dir: where ``cnnjax.data.load`` looks for downloaded datasets.
        devices: number of local devices ``fit`` shards each batch over (default: all).
        cache_dir: JAX persistent compilation cache; ``'auto'`` → :func:`default_cache_dir`,
            ``None`` leaves JAX's configuration alone.
        keep_checkpoints: keep ``runs/<run id>/`` after a run is recorded (default: delete
            it; checkpoints exist to resume interrupted runs).
        report, plots: write ``report.md`` (and its PNGs) when the grid is done.
        command: the command line quoted in the report.
        progress: show ``fit``'s per-epoch progress bar.
        log: called with one line of text before each run (the CLI prints it).
        callback: called with each new record right after it is saved.
        on_epoch_end: called with ``(run id, history entry)`` after each epoch's checkpoint
            is written.

    Returns:
        The records of the grid's runs (newly trained and previously finished), grid order.

    Every finished run is one line of ``out_dir/results.jsonl`` with keys ``run_id, pool,
    model, dataset, seed, hyperparameters, params, history, epochs_trained, test_accuracy,
    test_loss, train_accuracy, train_loss, seconds_per_epoch, first_epoch_seconds,
    seconds_total, devices, finished, versions, command``.
    """
    pools = _check_names(POOL_SPECS if pools is None else pools, "pools")
    models = tuple(m.lower() for m in _check_names(models, "models"))
    datasets = _check_names(datasets, "datasets")
    if isinstance(seeds, (int, np.integer)):
        seeds = (seeds,)
    seeds = tuple(dict.fromkeys(seeds))
    if not seeds:
        _fail("seeds must contain at least one int, got an empty sequence.")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            _fail(f"seeds must be non-negative ints, got {s!r}.", TypeError)
        if s < 0:
            _fail(f"seeds must be non-negative ints, got {s!r}.")
    epochs = _check_positive_int(epochs, "epochs")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if not isinstance(learning_rate, (int, float, np.floating)) or not (
            math.isfinite(learning_rate) and learning_rate > 0):
        _fail(f"learning_rate must be a positive finite number, got {learning_rate!r}.")
    if limit is not None:
        limit = _check_positive_int(limit, "limit")

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        _fail(f"out_dir must be a writable directory, got {str(out_dir)!r} ({e.strerror}).",
              OSError)

    # Heavy imports only now that there is work to do.
    import jax

    from cnnjax import data as cdata
    from cnnjax import models as cmodels
    from cnnjax import nn as cnn
    from cnnjax import train as ctrain

    for m in models:
        if m.lower() not in cmodels.NAMES:
            _fail(f"models must be names from cnnjax.models.NAMES "
                  f"({', '.join(cmodels.NAMES)}), got {m!r}.")
    for p in pools:
        cnn.make_pool(p)  # raises ValueError listing the valid specs

    if cache_dir is not None:
        enable_compilation_cache(default_cache_dir() if cache_dir == "auto" else cache_dir)

    n_devices = jax.local_device_count() if devices is None else int(devices)
    hyperparameters = {"epochs": epochs, "batch_size": batch_size,
                       "learning_rate": float(learning_rate), "optimizer": optimizer,
                       "schedule": schedule, "limit": limit}
    path = results_path(out_dir)
    done = {run_key(r): r for r in load_results(path)}
    grid = [(d, m, s, p) for d in datasets for m in models for s in seeds for p in pools]
    # Load every dataset with pending runs before training anything, so a missing one
    # fails at once rather than after hours of other runs.
    pending = {d for d, m, s, p in grid
               if (p, m, d, int(s), _canonical(hyperparameters)) not in done}
    loaded = {d: (_subset(cdata.load(d, "train", data_dir=data_dir), limit),
                  _subset(cdata.load(d, "test", data_dir=data_dir), limit))
              for d in datasets if d in pending}
    records: list[dict] = []
    for i, (dataset, model_name, seed, pool) in enumerate(grid):
        key = (pool, model_name, dataset, int(seed), _canonical(hyperparameters))
        if key in done:
            records.append(done[key])
            continue
        rid = run_id(pool, model_name, dataset, seed, hyperparameters)
        train_data, test_data = loaded[dataset]
        workdir = out_dir / RUNS_DIR / rid
        if log is not None:
            resumed = " (resuming)" if workdir.exists() else ""
            log(f"[{i + 1}/{len(grid)}] {model_name} on {dataset}, pool={pool}, "
                f"seed={seed}{resumed}")
        model = cmodels.get(model_name, num_classes=train_data.num_classes, pool=pool)
        start = time.perf_counter()
        hook = None if on_epoch_end is None else functools.partial(on_epoch_end, rid)
        result = ctrain.fit(model, train_data, test_data, epochs=epochs, batch_size=batch_size,
                            learning_rate=learning_rate, seed=int(seed), optimizer=optimizer,
                            schedule=schedule, workdir=str(workdir), devices=devices,
                            progress=progress, on_epoch_end=hook)
        seconds = time.perf_counter() - start
        params = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(result.state.params))
        record = _final_record(pool, model_name, dataset, seed, hyperparameters, rid, params,
                               result.history, seconds, n_devices, command)
        _append_record(path, record)
        done[key] = record
        records.append(record)
        if not keep_checkpoints:
            # Only after the record is on disk: killed in between, the run is still recorded.
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
        if callback is not None:
            callback(record)
    if report:
        write_report(out_dir, records, command=command, plots=plots)
    return records
