"""``checkpoint_seconds``: checkpoints at most once per interval, always after the last epoch.

Which epochs get a checkpoint depends on the clock, never the results: a run that wrote none
before a kill starts over and ends where the uninterrupted run ends.
"""
import os
import time
import types

import pytest

from cnnjax import models
from cnnjax.ablation import run_ablation
from cnnjax.train import _loop, fit
from cnnjax.train._seeds import fit_seeds
from tests.train.tiny_models import TinyNoBN, digits_subset

COMMON = dict(batch_size=32, learning_rate=3e-3, seed=0, progress=False)
NEVER = 1e9  # seconds: no checkpoint but the last epoch's


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def digits():
    return digits_subset()


def saved_epochs(workdir):
    return sorted(int(n) for n in os.listdir(workdir) if n.isdigit())


def test_only_the_last_epoch_is_written_within_the_interval(digits, tmp_path):
    seen = []
    run = fit(TinyNoBN(), *digits, epochs=3, workdir=tmp_path, checkpoint_seconds=NEVER,
              max_to_keep=5, on_epoch_end=lambda e: seen.append(e["epoch"]), **COMMON)
    assert seen == [1, 2, 3]  # the callback and the logs still see every epoch
    assert saved_epochs(tmp_path) == [3]
    plain = fit(TinyNoBN(), *digits, epochs=3, **COMMON)
    assert [h["train_loss"] for h in run.history] == [h["train_loss"] for h in plain.history]
    # The default writes every epoch.
    fit(TinyNoBN(), *digits, epochs=3, workdir=tmp_path / "every", max_to_keep=5, **COMMON)
    assert saved_epochs(tmp_path / "every") == [1, 2, 3]


def test_interval_is_measured_on_the_clock(digits, tmp_path, monkeypatch):
    # Every reading of the fake clock is 10 s after the previous one: start 10, epoch 1 at
    # 20 (10 s since the start: not due), epoch 2 at 30 (due; written, clock 40), epoch 3
    # at 50 (10 s: not due), epoch 4 the last (always written).
    ticks = iter(range(10, 10_000, 10))
    clock = types.SimpleNamespace(perf_counter=time.perf_counter,
                                  monotonic=lambda: float(next(ticks)))
    monkeypatch.setattr(_loop, "time", clock)
    fit(TinyNoBN(), *digits, epochs=4, workdir=tmp_path, checkpoint_seconds=15,
        max_to_keep=5, **COMMON)
    assert saved_epochs(tmp_path) == [2, 4]


def test_a_kill_before_any_checkpoint_restarts_and_ends_the_same(digits, tmp_path):
    kw = dict(COMMON, epochs=3)
    full = fit(TinyNoBN(), *digits, **kw)

    def stop_after_two(entry):
        if entry["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(TinyNoBN(), *digits, workdir=tmp_path, checkpoint_seconds=NEVER,
            on_epoch_end=stop_after_two, **kw)
    assert saved_epochs(tmp_path) == []
    epochs = []
    resumed = fit(TinyNoBN(), *digits, workdir=tmp_path, checkpoint_seconds=NEVER,
                  on_epoch_end=lambda e: epochs.append(e["epoch"]), **kw)
    assert epochs == [1, 2, 3]
    for a, b in zip(resumed.history, full.history):
        assert a["train_loss"] == b["train_loss"] and a["test_accuracy"] == b["test_accuracy"]


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), "5", True, None])
def test_bad_checkpoint_seconds(digits, value):
    with pytest.raises(ValueError, match=r"^fit: checkpoint_seconds must be a finite number "
                                         r">= 0, got "):
        fit(TinyNoBN(), *digits, epochs=1, checkpoint_seconds=value, **COMMON)


def test_fit_seeds_and_the_ablation_take_the_interval(digits, tmp_path):
    train, test = digits
    model = models.get("lenet5", num_classes=10, pool="max")
    fit_seeds(model, train, test, seeds=(0, 1), epochs=2, batch_size=32, learning_rate=1e-3,
              workdir=str(tmp_path / "seeds"), checkpoint_seconds=NEVER, max_to_keep=5)
    assert saved_epochs(tmp_path / "seeds") == [2]
    with pytest.raises(ValueError, match=r"^fit_seeds: checkpoint_seconds must be"):
        fit_seeds(model, train, test, seeds=(0, 1), epochs=1, batch_size=32,
                  learning_rate=1e-3, checkpoint_seconds=-5)
    with pytest.raises(ValueError, match=r"^run_ablation: checkpoint_seconds must be a finite "
                                         r"number >= 0, got -1.0\.$"):
        run_ablation(tmp_path / "study", pools=("max",), seeds=(0,), epochs=1,
                     checkpoint_seconds=-1.0)


@pytest.mark.parametrize("command", ["train", "ablate"])
def test_cli_flag(command, capsys):
    from cnnjax.cli import main

    code = main([command, "--checkpoint-seconds", "-1"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--checkpoint-seconds" in err, err
    main([command, "--help"])
    assert "--checkpoint-seconds" in capsys.readouterr().out
