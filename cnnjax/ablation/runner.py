"""Running the grid: every (pool, model, dataset, seed), resumable, each run recorded when done."""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnjax.ablation import _frontend
from cnnjax.ablation._job import RUNS_DIR, Job, _epochs_on_disk, run_units  # noqa: F401 (RUNS_DIR is public)
from cnnjax.ablation.progress import StudyProgress, Unit
from cnnjax.ablation.report import write_report
from cnnjax.ablation.results import _canonical, load_results, results_path, run_key
from cnnjax.layers import pool_specs

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
    "shift": 2,
    "shift_trials": 5,
}

_OP = "run_ablation"

#: ``vectorize_seeds='auto'`` trains seeds together only when a short measurement finds the
#: vectorised step at least this much faster than the seeds' steps one after another.
AUTO_MIN_SPEEDUP = 1.1

#: A study's runs write a checkpoint at most once per this many seconds (and after their last
#: epoch): on small data an epoch takes a fraction of a second and writing a checkpoint after
#: each one took longer than the training (``fit``'s ``checkpoint_seconds``).
CHECKPOINT_SECONDS = 60.0

#: ``workers='auto'`` runs this many training programs at once where it can (see
#: ``run_ablation``).
AUTO_WORKERS = 2


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
    shift: int = DEFAULTS["shift"],
    shift_trials: int = DEFAULTS["shift_trials"],
    data_dir: str | os.PathLike | None = None,
    devices: int | None = None,
    vectorize_seeds: bool | str = "auto",
    cache_dir: str | os.PathLike | None = "auto",
    keep_checkpoints: bool = False,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    workers: int | str = "auto",
    report: bool = True,
    plots: bool = True,
    baseline: str | None = None,
    command: str | None = None,
    progress: bool = False,
    monitor: StudyProgress | None = None,
    log: Callable[[str], None] | None = None,
    callback: Callable[[dict], None] | None = None,
    on_epoch_end: Callable[[str, dict], None] | None = None,
    frontend: str = "linen",
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
        shift, shift_trials: the largest shift in pixels and the number of shift pairs per
            test image of the shift-consistency measurement
            (:func:`cnnjax.ablation.shift.shift_consistency`); part of the hyperparameters.
        data_dir: where ``cnnjax.data.load`` looks for downloaded datasets.
        devices: number of local devices ``fit`` shards each batch over (default: all).
        vectorize_seeds: train the pending seeds of a grid cell together (linen models; with
            ``frontend='nnx'`` seeds train one after another) as one vectorised
            program (:func:`cnnjax.train._seeds.fit_seeds`, ``jax.vmap`` over the seeds) —
            ``True``, ``False``, or ``'auto'``: on when the backend is the CPU, one device
            is used, the estimated memory of the seeds
            (:func:`~cnnjax.train._seeds.estimate_memory_bytes`: parameters, gradient,
            Adam moments and one batch's activations of every seed) is at most half the
            free host memory, and it pays: per (model, dataset), before training,
            :func:`~cnnjax.train._seeds.measure_speedup` times a few steps of both programs
            and vectorising needs at least :data:`AUTO_MIN_SPEEDUP` (XLA:CPU runs vmapped
            convolutions as grouped ones, which can make the vectorised step slower than
            the seeds' steps one after another; the one-seed step it compiles is reused).
            Vectorised training runs on one device without sharding, so
            with more than one device the seeds run one by one (``True`` is then an error).
            A cell with one pending seed always runs alone. Results, run ids, the records'
            fields and resuming do not depend on the mode; only the timings do (the
            record's ``vectorized_seeds`` says how many seeds shared the program).
        cache_dir: JAX persistent compilation cache; ``'auto'`` → :func:`default_cache_dir`,
            ``None`` leaves JAX's configuration alone.
        keep_checkpoints: keep ``runs/<run id>/`` after a run is recorded (default: delete
            it; checkpoints exist to resume interrupted runs).
        checkpoint_seconds: a run writes a checkpoint after an epoch only when this many
            seconds have passed since its last one (and always after its last epoch); a
            kill loses at most this long plus one epoch of the run in progress. Not a
            hyperparameter: results do not depend on it. ``0``: after every epoch.
        workers: training programs run at once, each in its own thread (``int >= 1``), or
            ``'auto'``: without ``progress`` (one progress bar at a time),
            :data:`AUTO_WORKERS` on the CPU backend with one device, at least that
            many cores and the memory of that many programs
            (:func:`~cnnjax.train._seeds.estimate_memory_bytes`) at most half the free host
            memory; else 1. Runs are pure functions of their settings, so results do not
            depend on it (only the order of the lines of ``results.jsonl`` does); on a
            2-core CPU two LeNet-5 trainings on the digits ran 1.25-1.39× faster side by side
            than one after the other (``experiments/seed_parallelism.py``), and one program
            compiles while another trains.
        report, plots: write ``report.md`` (and its PNGs) when the grid is done.
        baseline: the pool variant the report compares the others with; must be one of
            ``pools``. Default: ``'max'`` when it is in the grid, else the first pool.
        command: the command line quoted in the report.
        progress: show ``fit``'s per-epoch progress bar (runs of one seed).
        monitor: a :class:`~cnnjax.ablation.progress.StudyProgress` told about every unit
            and epoch (the CLI's live line).
        log: called with one line of text before each training program.
        callback: called with each new record right after it is saved.
        on_epoch_end: called with ``(run id, history entry)`` after each epoch's checkpoint
            (and checkpoint, if one is written) (once per seed when seeds train together).
        frontend: ``'linen'`` (:mod:`cnnjax.models`) or ``'nnx'`` (the :mod:`cnnjax.nnx.models`
            twin, starting from the linen model's initial parameters for the seed, so both
            give the same numbers); recorded in the hyperparameters when not ``'linen'``.

    Returns:
        The records of the grid's runs (newly trained and previously finished), grid order.

    Every finished run is one line of ``out_dir/results.jsonl`` with keys ``run_id, pool,
    model, dataset, seed, hyperparameters, params, history, epochs_trained, test_accuracy,
    test_loss, train_accuracy, train_loss, consistency, shifted_accuracy, steps_per_second,
    peak_memory_bytes, vectorized_seeds, seconds_per_epoch, first_epoch_seconds,
    seconds_total, devices, finished, versions, command``. ``steps_per_second`` is the
    optimizer steps per second of the epochs after the first (which includes compiling);
    ``peak_memory_bytes`` is the device's process-wide peak allocation when the run ends,
    ``None`` on the CPU backend, which does not report it.
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
    if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)) or shift < 0:
        _fail(f"shift must be an int >= 0, got {shift!r}.")
    shift_trials = _check_positive_int(shift_trials, "shift_trials")
    from cnnjax.train import _validate
    _validate.check_checkpoint_seconds(checkpoint_seconds, _OP)
    if workers != "auto" and (isinstance(workers, bool) or not isinstance(
            workers, (int, np.integer)) or workers < 1):
        _fail(f"workers must be an int >= 1 or 'auto', got {workers!r}.")
    if not (isinstance(vectorize_seeds, bool) or vectorize_seeds == "auto"):
        _fail(f"vectorize_seeds must be True, False or 'auto', got {vectorize_seeds!r}.")
    if baseline is None:
        baseline = "max" if "max" in pools else pools[0]
    elif baseline not in pools:
        _fail(f"baseline must be one of the pools ({', '.join(pools)}), got {baseline!r}.")

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

    for m in models:
        if m.lower() not in cmodels.NAMES:
            _fail(f"models must be names from cnnjax.models.NAMES "
                  f"({', '.join(cmodels.NAMES)}), got {m!r}.")
    for p in pools:
        pool_specs.parse(p)  # raises ValueError listing the valid specs
    _frontend.check_frontend(frontend, models, _OP)

    if cache_dir is not None:
        enable_compilation_cache(default_cache_dir() if cache_dir == "auto" else cache_dir)

    n_devices = jax.local_device_count() if devices is None else int(devices)
    if vectorize_seeds is True and n_devices > 1:
        _fail(f"vectorize_seeds=True trains on one device, so devices must be 1, got "
              f"{n_devices}.")
    if vectorize_seeds is True and frontend != "linen":
        _fail(f"vectorize_seeds=True trains linen models only (an NNX model starts from its "
              f"own parameters, one per seed), got frontend={frontend!r}.")
    hyperparameters = {"epochs": epochs, "batch_size": batch_size,
                       "learning_rate": float(learning_rate), "optimizer": optimizer,
                       "schedule": schedule, "limit": limit, "shift": int(shift),
                       "shift_trials": shift_trials}
    if frontend != "linen":  # only then: linen results files and run ids stay valid
        hyperparameters["frontend"] = frontend
    path = results_path(out_dir)
    done = {run_key(r): r for r in load_results(path)}
    canon = _canonical(hyperparameters)
    grid = [(d, m, s, p) for d in datasets for m in models for s in seeds for p in pools]
    pending = [g for g in grid if (g[3], g[1], g[0], int(g[2]), canon) not in done]
    # Load every dataset with pending runs before training anything, so a missing one
    # fails at once rather than after hours of other runs.
    loaded = {d: (_subset(cdata.load(d, "train", data_dir=data_dir), limit),
                  _subset(cdata.load(d, "test", data_dir=data_dir), limit))
              for d in datasets if d in {g[0] for g in pending}}
    cells = [(d, m, p) for d in datasets for m in models for p in pools]
    vectorize = {}
    for d, m in dict.fromkeys((g[0], g[1]) for g in pending):
        cell_pending = [sum(1 for g in pending if g[:2] == (d, m) and g[3] == p)
                        for p in pools]
        first = pools[int(np.argmax(cell_pending))]
        vectorize[d, m] = frontend == "linen" and _vectorize(vectorize_seeds, n_devices, cmodels, m, first,
                                                             loaded[d][0], max(cell_pending),
                                                             hyperparameters)
    units: list[Unit] = []
    for d, m, s, p in pending:
        cell_seeds = tuple(int(x) for x in seeds if (d, m, x, p) in pending)
        together = vectorize[d, m] and len(cell_seeds) > 1
        if together and any(u.seeds == cell_seeds and (u.dataset, u.model, u.pool) == (d, m, p)
                            for u in units):
            continue
        units.append(Unit(cells.index((d, m, p)) + 1, len(cells), m, d, p,
                          cell_seeds if together else (int(s),), epochs))
    job = Job(out_dir, hyperparameters, loaded, n_devices, devices, command, progress,
              keep_checkpoints, checkpoint_seconds, cmodels, path, done, callback,
              on_epoch_end, monitor)
    if monitor is not None:
        monitor.plan(units, [_epochs_on_disk(job.workdir(u)) for u in units])
    n_workers = _workers(workers, n_devices, cmodels, units, loaded, hyperparameters,
                         progress)
    if monitor is not None:
        monitor.workers = n_workers
    try:
        run_units(job, units, n_workers, log)
    finally:
        if monitor is not None:
            monitor.close()
    records = [done[(p, m, d, int(s), canon)] for d, m, s, p in grid]
    if report:
        # Every cell recorded in results.jsonl, not only this grid's.
        write_report(out_dir, command=command, plots=plots, baseline=baseline)
    return records


def _workers(mode: int | str, n_devices: int, cmodels, units, loaded, hp: dict,
             progress: bool) -> int:
    """How many training programs run at once (see ``run_ablation``'s ``workers``)."""
    if mode != "auto":
        return int(mode)
    import jax

    if (progress or jax.default_backend() != "cpu" or n_devices > 1 or len(units) < 2
            or (os.cpu_count() or 1) < AUTO_WORKERS):
        return 1
    # One pool per (model, dataset): the variants' activations are of the same sizes.
    firsts = {(u.model, u.dataset, len(u.seeds)): u.pool for u in reversed(units)}
    fits = all(_fits_in_memory(cmodels, m, p, loaded[d][0], AUTO_WORKERS * n, hp["batch_size"])
               for (m, d, n), p in firsts.items())
    return AUTO_WORKERS if fits else 1


def _fits_in_memory(cmodels, model_name: str, pool: str, train, n_seeds: int,
                    batch_size: int) -> bool:
    """Whether ``n_seeds`` trainings of the model at once need at most half the free memory."""
    from cnnjax.train import _seeds
    model = cmodels.get(model_name, num_classes=train.num_classes, pool=pool)
    need = _seeds.estimate_memory_bytes(model, train.images[:1], n_seeds, batch_size)
    free = _seeds.available_memory_bytes()
    return free is not None and need <= free // 2


def _vectorize(mode: bool | str, n_devices: int, cmodels, model_name: str, pool: str, train,
               n_seeds: int, hyperparameters: dict) -> bool:
    """Whether the seeds of this (model, dataset) train together (see ``run_ablation``)."""
    if mode is not True and (mode is False or n_devices > 1 or n_seeds < 2):
        return False
    if mode is True:
        return True
    import jax

    from cnnjax.train import _seeds
    if jax.default_backend() != "cpu":
        return False
    hp = hyperparameters
    if not _fits_in_memory(cmodels, model_name, pool, train, n_seeds, hp["batch_size"]):
        return False
    model = cmodels.get(model_name, num_classes=train.num_classes, pool=pool)
    speedup = _seeds.measure_speedup(
        model, train, seeds=n_seeds, batch_size=hp["batch_size"],
        learning_rate=hp["learning_rate"], optimizer=hp["optimizer"],
        schedule=hp["schedule"], epochs=hp["epochs"])
    return speedup >= AUTO_MIN_SPEEDUP
