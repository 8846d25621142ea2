"""Tests of the pooling ablation study (cnnjax/ablation/: results file, summary, report, plots, runner).

The results-file, summary and report tests use hand-made records (fast, no JAX programs);
the grid tests train LeNet5 on a 96-example slice of the embedded digits for 1-2 epochs
with two pool variants, which is enough to exercise recording, skipping and resuming.
"""
from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from cnnjax import ablation
from cnnjax.ablation import (
    load_results,
    run_ablation,
    run_id,
    run_key,
    summarize,
    write_report,
)

HP = {"epochs": 3, "batch_size": 32, "learning_rate": 0.001, "optimizer": "adam", "limit": None}


def _record(pool, seed, accs, *, model="lenet5", dataset="digits", hp=HP, params=1000,
            seconds=(2.0, 0.5, 0.7)):
    history = [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "train_accuracy": a,
                "test_loss": 1.5 / (i + 1) + seed, "test_accuracy": a, "seconds": s}
               for i, (a, s) in enumerate(zip(accs, seconds))]
    return {"run_id": run_id(pool, model, dataset, seed, hp), "pool": pool, "model": model,
            "dataset": dataset, "seed": seed, "hyperparameters": dict(hp), "params": params,
            "history": history, "test_accuracy": accs[-1],
            "test_loss": history[-1]["test_loss"], "seconds_per_epoch": float(
                np.mean(seconds[1:len(accs)])), "finished": "2026-01-01T00:00:00+00:00"}


def _records():
    return [
        _record("max", 0, [0.5, 0.8, 0.9]), _record("avg", 0, [0.4, 0.7, 0.85]),
        _record("max", 1, [0.6, 0.85, 0.95]), _record("avg", 1, [0.5, 0.75, 0.8]),
        _record("max", 2, [0.55, 0.8, 0.92]), _record("avg", 2, [0.45, 0.7, 0.86]),
    ]


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


# --------------------------------------------------------------------------- results file


def test_append_and_load_roundtrip(tmp_path):
    path = tmp_path / "results.jsonl"
    records = _records()[:3]
    for r in records:
        ablation.append_record(path, r)
    assert load_results(path) == records
    assert load_results(tmp_path) == records  # the directory works too
    # No temporary files are left behind by the atomic rewrite (only the lock file).
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.jsonl.lock",
                                                          "results.jsonl"]


def test_load_missing_file_is_empty(tmp_path):
    assert load_results(tmp_path / "nothing.jsonl") == []


def test_incomplete_last_line_is_ignored_and_dropped_on_next_write(tmp_path):
    path = tmp_path / "results.jsonl"
    first, second = _records()[:2]
    full = json.dumps(first) + "\n"
    path.write_text(full + json.dumps(second)[:40])  # a write cut short
    assert load_results(path) == [first]
    ablation.append_record(path, second)
    assert load_results(path) == [first, second]
    assert path.read_text().count("\n") == 2


def test_corrupt_middle_line_raises(tmp_path):
    path = tmp_path / "results.jsonl"
    first, second = _records()[:2]
    path.write_text(json.dumps(first) + "\n{not json\n" + json.dumps(second) + "\n")
    with pytest.raises(ValueError, match="line 2 of .* is not valid JSON"):
        load_results(path)


def test_run_id_is_stable_and_depends_on_hyperparameters():
    a = run_id("lp:p=3", "lenet5", "digits", 0, HP)
    assert a == run_id("lp:p=3", "lenet5", "digits", 0, dict(reversed(list(HP.items()))))
    assert a != run_id("lp:p=3", "lenet5", "digits", 0, {**HP, "epochs": 4})
    assert a != run_id("lp:p=3", "lenet5", "digits", 1, HP)
    assert "/" not in a and ":" not in a and "=" not in a


# --------------------------------------------------------------------------- summaries


def test_summarize_matches_numpy():
    records = _records()
    (group,) = summarize(records)
    assert (group.model, group.dataset, group.slug) == ("lenet5", "digits", "lenet5_digits")
    assert [r.pool for r in group.rows] == ["max", "avg"]  # grid order
    for row in group.rows:
        runs = [r for r in records if r["pool"] == row.pool]
        acc = [r["test_accuracy"] for r in runs]
        loss = [r["test_loss"] for r in runs]
        np.testing.assert_allclose(row.accuracy_mean, np.mean(acc))
        np.testing.assert_allclose(row.accuracy_std, np.std(acc, ddof=1))
        np.testing.assert_allclose(row.loss_mean, np.mean(loss))
        np.testing.assert_allclose(row.loss_std, np.std(loss, ddof=1))
        curves = [[h["test_accuracy"] for h in r["history"]] for r in runs]
        np.testing.assert_allclose(row.curve_mean, np.mean(curves, axis=0))
        np.testing.assert_allclose(row.curve_std, np.std(curves, axis=0, ddof=1))
        assert row.seeds == (0, 1, 2)
        assert row.params == 1000


def test_summarize_counts_duplicates_once_and_splits_hyperparameters():
    records = _records()
    other = {**HP, "epochs": 2}
    extra = [_record("max", 0, [0.1, 0.2], hp=other)]
    groups = summarize(records + records[:2] + extra)
    assert len(groups) == 2
    assert [len(r.seeds) for r in groups[0].rows] == [3, 3]
    # Two hyperparameter sets for one (model, dataset): the slugs must differ.
    assert groups[0].slug != groups[1].slug
    assert groups[1].rows[0].accuracy_std == 0.0  # one seed has no spread


def test_format_table_has_one_row_per_pool():
    (group,) = summarize(_records())
    table = ablation.format_table(group)
    lines = table.splitlines()
    assert lines[0].startswith("| pool | family | n | test accuracy (%) |")
    assert len(lines) == 2 + 2
    mean = 100 * np.mean([0.9, 0.95, 0.92])
    # ± is the 95% Student-t half-width: t_{0.975, 2} = 4.3027 times the standard error.
    half = 4.302652729911275 * 100 * np.std([0.9, 0.95, 0.92], ddof=1) / np.sqrt(3)
    assert lines[2].startswith(f"| `max` | max/average | 3 | {mean:.2f} ± {half:.2f} |")
    # Fields older results files lack are shown as missing, not as zeros.
    cells = lines[2].split(" | ")
    assert cells[4:6] == ["—", "—"] and cells[7] == "—" and cells[-1] == "— |"


# --------------------------------------------------------------------------- report + plots


def test_report_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    records = _records()
    for r in records:
        ablation.append_record(tmp_path / "results.jsonl", r)
    report = write_report(tmp_path, command="cnnjax ablate --out X")
    text = report.read_text()
    assert "cnnjax ablate --out X" in text
    assert "## lenet5 on digits" in text
    assert "![accuracy_lenet5_digits](accuracy_lenet5_digits.png)" in text
    assert "![curves_lenet5_digits](curves_lenet5_digits.png)" in text
    for name in ("accuracy_lenet5_digits.png", "curves_lenet5_digits.png"):
        w, h = _png_size(tmp_path / name)
        assert w >= 400 and h >= 150


def test_plot_ablation_from_path_and_records(tmp_path):
    pytest.importorskip("matplotlib")
    from cnnjax.ablation import plot_ablation

    records = _records()
    for r in records:
        ablation.append_record(tmp_path / "results.jsonl", r)
    from_path = plot_ablation(tmp_path / "results.jsonl", tmp_path / "a")
    from_records = plot_ablation(records, tmp_path / "b")
    assert [p.name for p in from_path] == [p.name for p in from_records] == [
        "accuracy_lenet5_digits.png", "curves_lenet5_digits.png"]
    for p in from_path + from_records:
        assert p.stat().st_size > 1000
    with pytest.raises(ValueError, match="plot_ablation: results must hold at least one"):
        plot_ablation(tmp_path / "missing.jsonl", tmp_path / "c")


def test_report_without_plots(tmp_path):
    write_report(tmp_path, _records(), plots=False)
    assert "| `avg` |" in (tmp_path / "report.md").read_text()
    assert not list(tmp_path.glob("*.png"))


# --------------------------------------------------------------------------- argument errors


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"epochs": 0}, ValueError, "run_ablation: epochs must be >= 1, got 0"),
    ({"epochs": 2.5}, TypeError, "run_ablation: epochs must be a positive int"),
    ({"batch_size": -4}, ValueError, "run_ablation: batch_size must be >= 1"),
    ({"learning_rate": 0.0}, ValueError, "run_ablation: learning_rate must be a positive"),
    ({"pools": ()}, ValueError, "run_ablation: pools must name at least one"),
    ({"seeds": (-1,)}, ValueError, "run_ablation: seeds must be non-negative ints, got -1"),
    ({"seeds": (0.5,)}, TypeError, "run_ablation: seeds must be non-negative ints, got 0.5"),
    ({"models": ("lenet5", 7)}, TypeError, "run_ablation: models must contain non-empty"),
    ({"seeds": ()}, ValueError, "run_ablation: seeds must contain at least one"),
    ({"limit": 0}, ValueError, "run_ablation: limit must be >= 1"),
])
def test_bad_arguments(tmp_path, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        run_ablation(tmp_path, **kwargs)


def test_unwritable_out_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="run_ablation: out_dir must be a writable directory"):
        run_ablation(blocker / "sub", pools=("max",), seeds=(0,), epochs=1)


def test_enable_compilation_cache_writes_programs(tmp_path):
    # In a subprocess: the persistent cache is process-global state that must not leak
    # into the rest of the test session.
    script = (
        "import sys, jax, jax.numpy as jnp\n"
        "from cnnjax.ablation import enable_compilation_cache\n"
        "path = enable_compilation_cache(sys.argv[1])\n"
        "jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.ones((64, 64)))\n"
        "print(path)\n")
    env = {**os.environ, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-c", script, str(cache)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(cache)
    assert any(cache.iterdir())
    # A cache directory the user configured is kept.
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "mine")
    proc = subprocess.run([sys.executable, "-c", script, str(cache)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "mine")


# --------------------------------------------------------------------------- the grid
# LeNet5 on the first 96 train / 96 test digits, batch 32: three steps per epoch.

# One program at a time: these tests check what a kill leaves, in the grid's order
# (tests/ablation/test_workers.py runs programs at once).
TINY = {"pools": ("max", "avg"), "seeds": (0,), "epochs": 2, "batch_size": 32, "limit": 96,
        "cache_dir": None, "workers": 1}


class _Interrupt(Exception):
    """Stands in for a kill: raised from a callback, it aborts the study mid-way."""


def _needs_models():
    models = pytest.importorskip("cnnjax.models")
    if not hasattr(models, "get"):
        pytest.skip("cnnjax.models is not available")
    return models


def _param_count(model, shape):
    import jax
    import jax.numpy as jnp

    keys = {k: jax.random.key(0) for k in ("params", "dropout", "pool")}
    variables = jax.eval_shape(lambda: model.init(keys, jnp.zeros(shape, jnp.float32),
                                                  train=False))
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(variables["params"]))


def test_grid_killed_after_first_run_then_completed(tmp_path):
    models = _needs_models()
    first_runs = []

    def kill_after_first(record):
        first_runs.append(record)
        raise _Interrupt

    with pytest.raises(_Interrupt):
        run_ablation(tmp_path, callback=kill_after_first, **TINY)
    assert load_results(tmp_path) == first_runs
    assert first_runs[0]["pool"] == "max"

    trained = []
    records = run_ablation(tmp_path, callback=trained.append, **TINY)
    assert [r["pool"] for r in trained] == ["avg"]  # the finished run was not retrained
    on_disk = load_results(tmp_path)
    assert on_disk == records
    assert on_disk[0] == first_runs[0]  # recorded once, untouched (same 'finished' stamp)
    assert sorted(run_key(r) for r in on_disk) == sorted(set(run_key(r) for r in on_disk))

    for r, pool in zip(records, ("max", "avg")):
        assert (r["pool"], r["model"], r["dataset"], r["seed"]) == (pool, "lenet5", "digits", 0)
        assert r["hyperparameters"] == {
            "epochs": 2, "batch_size": 32, "learning_rate": 1e-3, "optimizer": "adam",
            "schedule": "constant", "limit": 96, "shift": 2, "shift_trials": 5}
        assert [h["epoch"] for h in r["history"]] == [1, 2]
        assert r["test_accuracy"] == r["history"][-1]["test_accuracy"]
        assert 0.0 <= r["test_accuracy"] <= 1.0 and np.isfinite(r["test_loss"])
        assert r["seconds_per_epoch"] == r["history"][1]["seconds"]
        model = models.get("lenet5", num_classes=10, pool=pool)
        assert r["params"] == _param_count(model, (1, 8, 8, 1))
    # Checkpoints of finished runs are removed; the study leaves results, report, plots.
    assert not any((tmp_path / "runs").iterdir())
    report = (tmp_path / "report.md").read_text()
    assert "| `max` |" in report and "| `avg` |" in report
    if importlib.util.find_spec("matplotlib"):
        for name in ("accuracy_lenet5_digits.png", "curves_lenet5_digits.png"):
            assert f"({name})" in report
            assert (tmp_path / name).stat().st_size > 1000


def test_run_killed_mid_epochs_resumes_from_its_checkpoint(tmp_path):
    _needs_models()
    grid = {**TINY, "pools": ("max",), "checkpoint_seconds": 0}  # one after every epoch
    first = []

    def kill_after_epoch_1(rid, entry):
        first.append((rid, entry))
        raise _Interrupt

    with pytest.raises(_Interrupt):
        run_ablation(tmp_path, on_epoch_end=kill_after_epoch_1, **grid)
    assert load_results(tmp_path) == []
    (rid, entry), = first
    assert entry["epoch"] == 1 and (tmp_path / "runs" / rid).is_dir()

    epochs_trained = []
    (record,) = run_ablation(tmp_path, keep_checkpoints=True,
                             on_epoch_end=lambda r, e: epochs_trained.append(e["epoch"]),
                             **grid)
    assert epochs_trained == [2]  # epoch 1 came from the checkpoint
    assert record["run_id"] == rid
    assert record["history"][0] == entry  # including its measured seconds
    assert (tmp_path / "runs" / rid).is_dir()  # kept on request


def test_a_kill_before_the_first_checkpoint_starts_the_run_over(tmp_path):
    _needs_models()
    grid = {**TINY, "pools": ("max",)}  # the default interval: no checkpoint before the last

    def kill_after_epoch_1(rid, entry):
        raise _Interrupt

    with pytest.raises(_Interrupt):
        run_ablation(tmp_path, on_epoch_end=kill_after_epoch_1, **grid)
    assert load_results(tmp_path) == []
    epochs_trained = []
    (record,) = run_ablation(tmp_path, on_epoch_end=lambda r, e: epochs_trained.append(
        e["epoch"]), **grid)
    assert epochs_trained == [1, 2]
    (whole,) = run_ablation(tmp_path / "whole", **grid)
    assert [h["train_loss"] for h in record["history"]] == [
        h["train_loss"] for h in whole["history"]]


def test_a_record_without_required_fields_is_an_error(tmp_path):
    path = tmp_path / "results.jsonl"
    good = _record("max", 0, [0.5, 0.6, 0.7])
    broken = {k: v for k, v in _record("avg", 0, [0.5, 0.6, 0.7]).items() if k != "test_loss"}
    path.write_text(json.dumps(good) + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(ValueError, match=r"line 2 of .* lacks the field\(s\) 'test_loss'"):
        load_results(path)
