"""Training programs of a study run at once (``run_ablation(workers=N)``, ``--workers``).

Runs are pure functions of their settings, so the records must equal the one-at-a-time ones
exactly (the same compiled steps, the same data order and noise), apart from the timings; a
failing unit stops the study and a re-run completes it.
"""
from __future__ import annotations

import io
import threading
import time

import pytest

from cnnjax.ablation import load_results, run_ablation
from cnnjax.ablation.progress import StudyProgress, Unit

GRID = {"pools": ("max", "stochastic", "avg"), "seeds": (0, 1), "epochs": 2, "batch_size": 32,
        "limit": 96, "cache_dir": None, "report": False, "vectorize_seeds": False}
TIMING = {"seconds_per_epoch", "first_epoch_seconds", "seconds_total", "finished",
          "steps_per_second", "history"}


def _without_timing(record):
    out = {k: v for k, v in record.items() if k not in TIMING}
    out["history"] = [{k: v for k, v in h.items() if "seconds" not in k}
                      for h in record["history"]]
    return out


class _Boom(Exception):
    pass


def test_two_workers_give_the_same_records(tmp_path):
    threads = set()
    one = run_ablation(tmp_path / "one", workers=1, **GRID)
    two = run_ablation(tmp_path / "two", workers=2,
                       callback=lambda r: threads.add(threading.current_thread().name),
                       **GRID)
    assert [_without_timing(r) for r in two] == [_without_timing(r) for r in one]
    assert all(name.startswith("cnnjax-ablate") for name in threads) and len(threads) == 2
    on_disk = load_results(tmp_path / "two")
    assert sorted(r["run_id"] for r in on_disk) == sorted(r["run_id"] for r in one)


def test_a_failing_unit_stops_the_study_and_a_rerun_completes_it(tmp_path):
    grid = {**GRID, "seeds": (0,)}  # units: max, stochastic, avg
    seen, max_trained, failed = [], threading.Event(), threading.Event()

    def on_epoch_end(rid, entry):
        seen.append((rid.split("_")[2], entry["epoch"]))
        if "stochastic" in rid:  # fails while max is between its epochs 1 and 2
            assert max_trained.wait(60)
            failed.set()
            raise _Boom
        if "max" in rid and entry["epoch"] == 1:
            max_trained.set()
            assert failed.wait(60)
            time.sleep(0.5)  # the study has stopped by now

    with pytest.raises(_Boom):
        run_ablation(tmp_path, workers=2, on_epoch_end=on_epoch_end, **grid)
    # max stopped at its next epoch's end (epoch 2 never reached the callback), avg never
    # started, nothing was recorded.
    assert sorted(seen) == [("max", 1), ("stochastic", 1)]
    assert load_results(tmp_path) == []
    records = run_ablation(tmp_path, workers=2, **grid)
    assert [r["pool"] for r in records] == ["max", "stochastic", "avg"]
    alone = run_ablation(tmp_path / "alone", workers=1, **grid)
    assert [_without_timing(r) for r in records] == [_without_timing(r) for r in alone]


@pytest.mark.parametrize("workers, exc", [(0, ValueError), (-2, ValueError), (1.5, ValueError),
                                          (True, ValueError), ("many", ValueError)])
def test_bad_workers(tmp_path, workers, exc):
    with pytest.raises(exc, match=r"^run_ablation: workers must be an int >= 1 or 'auto', "
                                  r"got "):
        run_ablation(tmp_path, workers=workers, **GRID)


def test_cli_workers_flag(capsys):
    from cnnjax.cli import main

    assert main(["ablate", "--workers", "0"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "--workers" in err and "must be 'auto' or a positive integer, got '0'" in err


def test_progress_times_each_unit_from_its_own_start():
    units = [Unit(i + 1, 2, "lenet5", "digits", p, (0,), 2) for i, p in enumerate(("a", "b"))]
    progress = StudyProgress(stream=io.StringIO(), live=False)
    progress.plan(units)
    progress.workers = 2
    progress.start(0)
    progress.start(1)
    progress.epoch(0, 1, [0.5], seconds=4.0)
    progress.epoch(1, 1, [0.5], seconds=4.0)
    progress.epoch(0, 2, [0.5], seconds=2.0)
    # Left: unit 1's second epoch, 2 s (steady), shared by min(2 workers, 1 unit left) = 1.
    assert progress.eta() == pytest.approx(2.0)
    progress.close()
