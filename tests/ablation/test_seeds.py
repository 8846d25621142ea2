"""Seeds trained as one vectorised program (cnnjax/train/_seeds.py) and the ablation's use of it.

The reference for every vectorised seed is ``fit`` itself, run alone with that seed: the
histories must agree to float32 round-off. LeNet5 on a slice of the embedded digits, two
epochs, keeps each test to a few seconds.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from cnnjax import data, models
from cnnjax.ablation import load_results, run_ablation
from cnnjax.train import fit
from cnnjax.train._seeds import estimate_memory_bytes, fit_seeds, unstack

SEEDS = (0, 1, 2)
SETTINGS = {"epochs": 2, "batch_size": 32, "learning_rate": 1e-3}
TIMES = ("seconds", "eval_seconds")


@pytest.fixture(scope="module")
def digits():
    train = data.load("digits", "train")
    test = data.load("digits", "test")
    return (train._replace(images=train.images[:160], labels=train.labels[:160]),
            test._replace(images=test.images[:70], labels=test.labels[:70]))


def _assert_same_history(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert set(g) == set(w)
        for key in w:
            if key in TIMES:
                continue
            if w[key] is None or isinstance(w[key], int):
                assert g[key] == w[key], key
            else:
                np.testing.assert_allclose(g[key], w[key], rtol=1e-5, atol=1e-6, err_msg=key)


# 'stochastic' draws pool noise per seed and step; 'max' is the deterministic baseline.
@pytest.mark.parametrize("pool", ["stochastic", pytest.param("max", marks=pytest.mark.slow)])
def test_each_seed_equals_fit_alone(digits, pool):
    train, test = digits
    model = models.get("lenet5", num_classes=10, pool=pool)
    together = fit_seeds(model, train, test, seeds=SEEDS, **SETTINGS)
    assert len(together.histories) == len(SEEDS)
    for i, seed in enumerate(SEEDS):
        alone = fit(model, train, test, seed=seed, progress=False, **SETTINGS)
        _assert_same_history(together.histories[i], alone.history)
        got, want = unstack(together.state.params, i), alone.state.params
        import jax
        for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(together.normalization[0], alone.normalization[0])
    # Different seeds really differ (per-seed initialisation and data order).
    accs = [h[-1]["train_loss"] for h in together.histories]
    assert len(set(accs)) == len(SEEDS)


class _Kill(Exception):
    pass


def test_killed_after_an_epoch_resumes_and_refuses_other_seeds(digits, tmp_path):
    train, test = digits
    model = models.get("lenet5", num_classes=10, pool="avg")
    workdir = str(tmp_path / "cell")
    seen = []

    def kill(entries):
        seen.append(entries)
        raise _Kill

    with pytest.raises(_Kill):
        fit_seeds(model, train, test, seeds=(0, 1), workdir=workdir, on_epoch_end=kill,
                  **SETTINGS)
    resumed_epochs = []
    resumed = fit_seeds(model, train, test, seeds=(0, 1), workdir=workdir,
                        on_epoch_end=lambda e: resumed_epochs.append(e[0]["epoch"]),
                        **SETTINGS)
    assert resumed_epochs == [2]  # epoch 1 came from the checkpoint
    assert [h[0] for h in resumed.histories] == seen[0]
    whole = fit_seeds(model, train, test, seeds=(0, 1), **SETTINGS)
    for got, want in zip(resumed.histories, whole.histories):
        _assert_same_history(got, want)
    with pytest.raises(ValueError, match=r"holds another run: seed was \[0, 1\], now \[0, 2\]"):
        fit_seeds(model, train, test, seeds=(0, 2), workdir=workdir, **SETTINGS)


@pytest.mark.parametrize("seeds, exc, match", [
    ((), ValueError, "fit_seeds: seeds must name at least one seed"),
    ((0, 0), ValueError, r"fit_seeds: seeds must be distinct, got \[0, 0\]"),
    ((0, -1), ValueError, "fit_seeds: seeds must be non-negative ints, got -1"),
    (3, TypeError, "fit_seeds: seeds must be a sequence of ints, got 3"),
])
def test_bad_seeds(digits, seeds, exc, match):
    model = models.get("lenet5", num_classes=10, pool="max")
    with pytest.raises(exc, match=match):
        fit_seeds(model, *digits, seeds=seeds, **SETTINGS)


def test_memory_estimate_counts_every_seed(digits):
    model = models.get("lenet5", num_classes=10, pool="max")
    sample = digits[0].images[:1]
    one = estimate_memory_bytes(model, sample, 1, 64)
    # At least the four float32 copies of LeNet5's 131,080 parameters (8x8 input).
    assert one >= 4 * 4 * 131_080
    assert estimate_memory_bytes(model, sample, 3, 64) == 3 * one
    assert estimate_memory_bytes(model, sample, 1, 128) > one


# --------------------------------------------------------------------------- run_ablation

GRID = {"pools": ("max", "stochastic"), "epochs": 2, "batch_size": 32, "limit": 96,
        "cache_dir": None, "report": False}
TIMING = {"seconds_per_epoch", "first_epoch_seconds", "seconds_total", "finished",
          "steps_per_second", "vectorized_seeds", "peak_memory_bytes"}


def _comparable(record):
    out = {k: v for k, v in record.items() if k not in TIMING}
    out["history"] = [{k: v for k, v in h.items() if k not in TIMES} for h in record["history"]]
    return out


def _assert_same_records(got, want):
    assert [r["run_id"] for r in got] == [r["run_id"] for r in want]
    for g, w in zip(got, want):
        g, w = _comparable(g), _comparable(w)
        assert set(g) == set(w)
        _assert_same_history(g.pop("history"), w.pop("history"))
        for key in w:
            if isinstance(w[key], float):
                np.testing.assert_allclose(g[key], w[key], rtol=1e-5, atol=1e-6, err_msg=key)
            else:
                assert g[key] == w[key], key


def test_results_do_not_depend_on_the_mode(tmp_path):
    grid = {**GRID, "pools": ("stochastic",)}
    seq = run_ablation(tmp_path / "seq", seeds=(0, 1), vectorize_seeds=False, **grid)
    vec = run_ablation(tmp_path / "vec", seeds=(0, 1), vectorize_seeds=True, **grid)
    assert [r["vectorized_seeds"] for r in seq] == [1] * 2
    assert [r["vectorized_seeds"] for r in vec] == [2] * 2
    _assert_same_records(vec, seq)
    for r in vec:
        assert 0.0 <= r["consistency"] <= 1.0 and 0.0 <= r["shifted_accuracy"] <= 1.0
        assert r["steps_per_second"] > 0
        assert r["steps_per_second"] == pytest.approx(3 / r["seconds_per_epoch"])
        assert r["peak_memory_bytes"] is None or r["peak_memory_bytes"] > 0
        assert r["hyperparameters"]["shift"] == 2 and r["hyperparameters"]["shift_trials"] == 5
    assert not any((tmp_path / "vec" / "runs").iterdir())


def test_half_done_cell_trains_only_the_missing_seeds_together(tmp_path):
    grid = {**GRID, "pools": ("avg",)}
    run_ablation(tmp_path, seeds=(1,), **grid)
    before = load_results(tmp_path)
    trained, epochs = [], []
    records = run_ablation(tmp_path, seeds=(0, 1, 2), vectorize_seeds=True,
                           callback=trained.append,
                           on_epoch_end=lambda rid, e: epochs.append((rid, e["epoch"])),
                           **grid)
    assert [r["seed"] for r in trained] == [0, 2]
    assert [r["vectorized_seeds"] for r in trained] == [2, 2]
    assert [r["seed"] for r in records] == [0, 1, 2]
    assert records[1] == before[0]  # recorded once, untouched
    assert sorted(e for _, e in epochs) == [1, 1, 2, 2]
    assert {rid for rid, _ in epochs} == {records[0]["run_id"], records[2]["run_id"]}
    alone = run_ablation(tmp_path / "alone", seeds=(0, 2), vectorize_seeds=False, **grid)
    _assert_same_records([records[0], records[2]], alone)


# Resuming seeds trained together: test_killed_after_an_epoch_resumes_and_refuses_other_seeds.
@pytest.mark.slow
def test_killed_vectorised_cell_resumes(tmp_path):
    # A checkpoint after every epoch, so that the kill after epoch 1 leaves one to resume.
    grid = {**GRID, "pools": ("max",), "seeds": (0, 1), "checkpoint_seconds": 0}

    def kill(rid, entry):
        raise _Kill

    with pytest.raises(_Kill):
        run_ablation(tmp_path, vectorize_seeds=True, on_epoch_end=kill, **grid)
    assert load_results(tmp_path) == []
    (cell,) = list((tmp_path / "runs").iterdir())
    assert cell.name.startswith("lenet5_digits_max_s0-1_")
    epochs = []
    records = run_ablation(tmp_path, vectorize_seeds=True,
                           on_epoch_end=lambda rid, e: epochs.append(e["epoch"]), **grid)
    assert epochs == [2, 2]
    whole = run_ablation(tmp_path / "whole", vectorize_seeds=True, **grid)
    _assert_same_records(records, whole)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(x)["seed"] for x in lines] == [0, 1]


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"vectorize_seeds": "yes"}, ValueError,
     "run_ablation: vectorize_seeds must be True, False or 'auto', got 'yes'"),
    ({"shift": -1}, ValueError, "run_ablation: shift must be an int >= 0, got -1"),
    ({"shift_trials": 0}, ValueError, "run_ablation: shift_trials must be >= 1, got 0"),
    ({"baseline": "avg"}, ValueError,
     r"run_ablation: baseline must be one of the pools \(max, stochastic\), got 'avg'"),
])
def test_bad_arguments(tmp_path, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        run_ablation(tmp_path, **{**GRID, **kwargs})


def test_measure_speedup_is_a_positive_ratio(digits):
    from cnnjax.train._seeds import measure_speedup

    model = models.get("lenet5", num_classes=10, pool="max")
    speedup = measure_speedup(model, digits[0], seeds=2, batch_size=32, learning_rate=1e-3,
                              steps=2)
    assert np.isfinite(speedup) and speedup > 0


@pytest.mark.parametrize("speedup, together", [(2.0, 2), (1.0, 1)])
def test_auto_vectorises_only_when_it_measures_faster(tmp_path, monkeypatch, speedup, together):
    from cnnjax.train import _seeds

    calls = []

    def fake(model, train, *, seeds, **kwargs):
        calls.append(seeds)
        return speedup

    monkeypatch.setattr(_seeds, "measure_speedup", fake)
    records = run_ablation(tmp_path, seeds=(0, 1), vectorize_seeds="auto",
                           **{**GRID, "pools": ("max",), "epochs": 1, "limit": 64})
    assert calls == [2]
    assert [r["vectorized_seeds"] for r in records] == [together] * 2
