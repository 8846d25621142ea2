"""Running the grid: every (pool, model, dataset, seed), resumable, each run recorded when done."""
from __future__ import annotations

import datetime as _dt
import functools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnjax.ablation.report import write_report
from cnnjax.ablation.results import (_canonical, append_record, load_results, results_path,
                                     run_id, run_key)
from cnnjax.layers import pool_specs

RUNS_DIR = "runs"

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

_OP = "run_ablation"


def _fail(message: str, exc: type[Exception] = ValueError) -> None:
    raise exc(f"{_OP}: {message}")

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
            every canonical spec of :data:`cnnjax.layers.POOL_SPECS`.
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
    pools = _check_names(pool_specs.POOL_SPECS if pools is None else pools, "pools")
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
    from cnnjax import train as ctrain

    for m in models:
        if m.lower() not in cmodels.NAMES:
            _fail(f"models must be names from cnnjax.models.NAMES "
                  f"({', '.join(cmodels.NAMES)}), got {m!r}.")
    for p in pools:
        pool_specs.parse(p)  # raises ValueError listing the valid specs

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
                            progress=progress, on_epoch_end=hook,
                            log_dir=str(out_dir / "logs" / rid))
        seconds = time.perf_counter() - start
        params = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(result.state.params))
        record = _final_record(pool, model_name, dataset, seed, hyperparameters, rid, params,
                               result.history, seconds, n_devices, command)
        append_record(path, record)
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
