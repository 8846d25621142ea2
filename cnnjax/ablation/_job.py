"""Training one unit of an ablation study (one seed, or a cell's seeds together) and recording it."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import numpy as np

from cnnjax.ablation import _frontend
from cnnjax.ablation.progress import StudyProgress, Unit
from cnnjax.ablation.results import (
    _canonical,
    _slug,
    append_record,
    hyperparameter_hash,
    run_id,
)
from cnnjax.ablation.shift import shift_consistency

RUNS_DIR = "runs"
#: The shifts of the consistency measurement come from this key: every run of a study (all
#: variants, all seeds) is measured on the same shifted images, a paired comparison.
SHIFT_KEY_SEED = 0


def group_id(pool: str, model: str, dataset: str, seeds: Sequence[int],
             hyperparameters: Mapping[str, Any]) -> str:
    """The checkpoint directory name of seeds trained together, e.g.
    ``lenet5_digits_avg_s0-1-2_1a2b3c4d``."""
    return (f"{_slug(model)}_{_slug(dataset)}_{_slug(pool)}_s"
            f"{'-'.join(str(int(s)) for s in seeds)}_{hyperparameter_hash(hyperparameters)}")


@functools.lru_cache(maxsize=64)
def _predictor(model, stacked: bool) -> Callable:
    """``f(variables, images, mean, std) -> logits`` in eval mode, jitted; vmapped over a
    leading seed axis of the variables when ``stacked``."""
    import jax

    from cnnjax.data import normalize

    def apply(variables, x, mean, std):
        return model.apply(variables, normalize(x, mean, std), train=False)

    return jax.jit(jax.vmap(apply, in_axes=(0, None, None, None)) if stacked else apply)


@dataclasses.dataclass
class Job:
    """What every unit of one ``run_ablation`` call shares."""
    out_dir: Path
    hyperparameters: dict
    loaded: dict
    n_devices: int
    devices: int | None
    command: str | None
    progress: bool
    keep_checkpoints: bool
    checkpoint_seconds: float
    cmodels: Any
    results: Path
    done: dict
    callback: Callable[[dict], None] | None
    on_epoch_end: Callable[[str, dict], None] | None
    monitor: StudyProgress | None
    #: Set when the study stops (a unit failed, or the caller was interrupted): units that
    #: are training then stop at their next epoch's end.
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)

    def workdir(self, unit: Unit) -> Path:
        hp = self.hyperparameters
        name = (run_id(unit.pool, unit.model, unit.dataset, unit.seeds[0], hp)
                if len(unit.seeds) == 1 else
                group_id(unit.pool, unit.model, unit.dataset, unit.seeds, hp))
        return self.out_dir / RUNS_DIR / name

    def logs(self, rid: str) -> Path:
        """Where a run's ``metrics.csv`` and TensorBoard files go (kept after recording)."""
        return self.out_dir / "logs" / rid

    def train(self, index: int, unit: Unit) -> None:
        """Trains ``unit``, measures and records each of its seeds."""
        import jax

        from cnnjax import train as ctrain
        from cnnjax.train import _nnx, _seeds
        from cnnjax.train._logs import MetricsLog

        hp = self.hyperparameters
        train_data, test_data = self.loaded[unit.dataset]
        # A seed's NNX twin holds that seed's linen init, so vectorised units are linen.
        model = _frontend.build_model(hp.get("frontend", "linen"), unit.model, pool=unit.pool,
                                      train_data=train_data, seed=unit.seeds[0],
                                      batch_size=hp["batch_size"], devices=self.devices)
        workdir = self.workdir(unit)
        rids = [run_id(unit.pool, unit.model, unit.dataset, s, hp) for s in unit.seeds]
        if self.monitor is not None:
            self.monitor.start(index, _epochs_on_disk(workdir))

        def hook(entries):
            if self.stop.is_set():
                raise _Stopped
            entries = entries if isinstance(entries, list) else [entries]
            if self.on_epoch_end is not None:
                for rid, entry in zip(rids, entries):
                    self.on_epoch_end(rid, entry)
            if self.monitor is not None:
                self.monitor.epoch(index, entries[0]["epoch"],
                                   [e["test_accuracy"] for e in entries])

        common = dict(epochs=hp["epochs"], batch_size=hp["batch_size"],
                      learning_rate=hp["learning_rate"], optimizer=hp["optimizer"],
                      schedule=hp["schedule"], workdir=str(workdir), on_epoch_end=hook,
                      checkpoint_seconds=self.checkpoint_seconds)
        start = time.perf_counter()
        if len(unit.seeds) == 1:
            result = ctrain.fit(model, train_data, test_data, seed=unit.seeds[0],
                                devices=self.devices, progress=self.progress,
                                log_dir=str(self.logs(rids[0])), **common)
            histories, state = [result.history], result.state
        else:
            result = _seeds.fit_seeds(model, train_data, test_data, seeds=unit.seeds,
                                      **common)
            histories, state = result.histories, result.state
            for rid, history in zip(rids, histories):  # the logs fit writes for one seed
                log = MetricsLog(self.logs(rid), restart=True)
                for entry in history:
                    log.append(entry)
                log.close()
        seconds = time.perf_counter() - start
        mean, std = result.normalization
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        apply = _predictor(_nnx.NnxModel.wrap(model) if _nnx.is_nnx(model) else model,
                           len(unit.seeds) > 1)

        def predict(x):
            return apply(variables, x, mean, std)

        consistency, shifted = shift_consistency(
            predict, test_data.images, test_data.labels, max_shift=hp["shift"],
            trials=hp["shift_trials"], key=jax.random.PRNGKey(SHIFT_KEY_SEED))
        consistency, shifted = np.atleast_1d(consistency), np.atleast_1d(shifted)
        params = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(state.params))
        params //= len(unit.seeds)
        steps = len(train_data.labels) // hp["batch_size"]
        records = []
        for i, (seed, rid) in enumerate(zip(unit.seeds, rids)):
            metrics = {"consistency": consistency[i], "shifted_accuracy": shifted[i],
                       "steps_per_epoch": steps, "vectorized_seeds": len(unit.seeds)}
            record = final_record(unit.pool, unit.model, unit.dataset, seed, hp, rid, params,
                                  histories[i], seconds, self.n_devices, self.command,
                                  metrics)
            append_record(self.results, record)
            self.done[(unit.pool, unit.model, unit.dataset, int(seed), _canonical(hp))] = record
            records.append(record)
        if not self.keep_checkpoints:
            # Only after the records are on disk: killed in between, the runs are recorded.
            # A seed's own checkpoints (left by a one-seed run) go too.
            shutil.rmtree(workdir, ignore_errors=True)
            for rid in rids:
                shutil.rmtree(self.out_dir / RUNS_DIR / rid, ignore_errors=True)
        if self.callback is not None:
            for record in records:
                self.callback(record)


class _Stopped(Exception):
    """A unit stopped because the study stopped (another unit's error or an interrupt)."""


def run_units(job: Job, units: Sequence[Unit], workers: int,
              log: Callable[[str], None] | None) -> None:
    """Trains ``units`` in order, ``workers`` at a time (threads; each unit is one program).

    A run's result is a pure function of its unit and settings, so running two at once
    changes only the wall time: on a 2-core CPU a LeNet-5 step on the digits keeps about
    one core busy, and one unit's compilation overlaps another's training. The first error
    (or an interrupt of the caller) stops the study: the other running unit stops at its next
    epoch's end, units not started never start, and the error is raised.
    """
    def one(i: int, unit: Unit) -> None:
        if job.stop.is_set():
            return
        if log is not None:
            resumed = " (resuming)" if job.workdir(unit).exists() else ""
            log(f"[cell {unit.cell}/{unit.cells}] {unit.model} on {unit.dataset}, "
                f"pool={unit.pool}, seed{'s' if len(unit.seeds) > 1 else ''}="
                f"{','.join(map(str, unit.seeds))}{resumed}")
        try:
            job.train(i, unit)
        except BaseException:
            job.stop.set()  # before this thread can take the next unit
            raise

    if workers <= 1 or len(units) < 2:
        for i, unit in enumerate(units):
            one(i, unit)
        return
    pool = futures.ThreadPoolExecutor(workers, thread_name_prefix="cnnjax-ablate")
    running = [pool.submit(one, i, unit) for i, unit in enumerate(units)]
    try:
        futures.wait(running, return_when=futures.FIRST_EXCEPTION)
        errors = [f.exception() for f in running if f.done() and not f.cancelled()]
        errors = [e for e in errors if e is not None]
        if errors:  # the cause, not a unit that stopped because of it
            raise next((e for e in errors if not isinstance(e, _Stopped)), errors[0])
    except BaseException:
        job.stop.set()
        for f in running:
            f.cancel()
        raise
    finally:
        pool.shutdown(wait=True)


def _epochs_on_disk(workdir: Path) -> int:
    """The newest checkpointed epoch in ``workdir`` (0 if none), from directory names only."""
    if not workdir.is_dir():
        return 0
    return max((int(p.name) for p in workdir.iterdir() if p.name.isdigit()), default=0)


def final_record(pool: str, model_name: str, dataset: str, seed: int,
                  hyperparameters: Mapping[str, Any], rid: str, params: int,
                  history: Sequence[Mapping[str, Any]], seconds_total: float,
                  devices: int, command: str | None, metrics: Mapping[str, Any]) -> dict:
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
        "consistency": float(metrics["consistency"]),
        "shifted_accuracy": float(metrics["shifted_accuracy"]),
        "steps_per_second": float(metrics["steps_per_epoch"] / np.mean(steady)),
        "peak_memory_bytes": _peak_memory_bytes(),
        "vectorized_seeds": int(metrics["vectorized_seeds"]),
        "seconds_per_epoch": float(np.mean(steady)),
        "first_epoch_seconds": float(epoch_seconds[0]),
        "seconds_total": float(seconds_total),
        "devices": int(devices),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"cnnjax": __version__, "jax": jax.__version__},
        "command": command,
    }


def _peak_memory_bytes() -> int | None:
    """The device's peak allocation so far (process-wide), where the backend reports it.

    GPU and TPU runtimes report ``peak_bytes_in_use``; the CPU backend reports nothing
    (``memory_stats()`` is ``None``), so CPU runs record ``None``.
    """
    import jax

    stats = jax.local_devices()[0].memory_stats()
    peak = (stats or {}).get("peak_bytes_in_use")
    return None if peak is None else int(peak)


