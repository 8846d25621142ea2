"""The study's progress lines (cnnjax/ablation/progress.py): format and ETA arithmetic."""
from __future__ import annotations

import io

import pytest

from cnnjax.ablation.progress import (StudyProgress, Unit, estimate_remaining, format_duration,
                                      format_line)


def _unit(cell, seeds=(0, 1, 2), epochs=5, pool="avg"):
    return Unit(cell, 25, "lenet5", "digits", pool, tuple(seeds), epochs)


@pytest.mark.parametrize("seconds, text", [
    (None, "?"), (0.2, "0s"), (45, "45s"), (59.6, "1m00s"), (190.4, "3m10s"),
    (3600, "1h00m"), (3725, "1h02m"), (-3, "0s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_line():
    line = format_line(_unit(3), 2, [0.971, 0.964, 0.9749], 190)
    assert line == ("[cell 3/25] lenet5 digits pool=avg seeds=0,1,2 epoch 2/5 · "
                    "test acc 0.97/0.96/0.97 · ETA 3m10s")
    assert format_line(_unit(1, seeds=(4,)), 1, [None], None) == (
        "[cell 1/25] lenet5 digits pool=avg seeds=4 epoch 1/5 · ETA ?")


def test_estimate_remaining():
    # Nothing measured yet: unknown; nothing left: zero.
    assert estimate_remaining([], [], [(True, 5)]) is None
    assert estimate_remaining([10.0], [1.0], [(False, 0), (True, 0)]) == 0.0
    # Mean first epoch 9 s (compiling), mean steady epoch 2 s: the current unit has 3
    # steady epochs left, two units to come have a first and four steady epochs each.
    eta = estimate_remaining([8.0, 10.0], [1.0, 3.0], [(False, 3), (True, 5), (True, 5)])
    assert eta == pytest.approx(3 * 2 + 2 * (9 + 4 * 2))
    # Only first epochs measured: they stand for the steady ones too (an overestimate).
    assert estimate_remaining([6.0], [], [(False, 2), (True, 2)]) == pytest.approx(2 * 6 + 12)


def test_plain_lines_one_per_epoch_with_eta():
    out = io.StringIO()
    p = StudyProgress(out, live=False)
    units = [_unit(1, epochs=3), _unit(2, epochs=3, pool="max")]
    p.plan(units)
    p.start(0)
    p.epoch(0, 1, [0.5, 0.6, 0.7], seconds=10.0)  # the first epoch, compiling
    p.epoch(0, 2, [0.8, 0.8, 0.9], seconds=2.0)
    p.epoch(0, 3, [0.9, 0.9, 0.9], seconds=2.0)
    p.start(1, done_epochs=1)  # resumed from a checkpoint of epoch 1
    p.epoch(1, 2, [0.9, 0.9, 0.9], seconds=4.0)
    p.close()
    lines = out.getvalue().splitlines()
    assert lines == [
        # After epoch 1 only a first epoch (10 s) is known; it stands for the steady ones:
        # 2 epochs of unit 1 left, 3 of unit 2 → 5 × 10 s.
        "[cell 1/25] lenet5 digits pool=avg seeds=0,1,2 epoch 1/3 · test acc 0.50/0.60/0.70 "
        "· ETA 50s",
        # Then steady epochs take 2 s: 1 × 2 s + (10 s + 2 × 2 s), and 0 + (10 s + 2 × 2 s).
        "[cell 1/25] lenet5 digits pool=avg seeds=0,1,2 epoch 2/3 · test acc 0.80/0.80/0.90 "
        "· ETA 16s",
        "[cell 1/25] lenet5 digits pool=avg seeds=0,1,2 epoch 3/3 · test acc 0.90/0.90/0.90 "
        "· ETA 14s",
        # unit 2's first epoch in this process was measured (4 s → first-epoch mean 7 s);
        # one steady epoch (mean 2 s) is left.
        "[cell 2/25] lenet5 digits pool=max seeds=0,1,2 epoch 2/3 · test acc 0.90/0.90/0.90 "
        "· ETA 2s",
    ]


def test_live_line_in_a_terminal_keeps_finished_units():
    pytest.importorskip("rich")
    out = io.StringIO()
    p = StudyProgress(out, live=True)
    p.plan([_unit(1, seeds=(0,), epochs=2)])
    p.start(0)
    p.epoch(0, 1, [0.5], seconds=1.0)
    p.epoch(0, 2, [0.75], seconds=1.0)
    p.close()
    # The finished unit's last line stays on screen; the transient live line is gone.
    assert "[cell 1/25] lenet5 digits pool=avg seeds=0 epoch 2/2 · test acc 0.75 · ETA 0s" \
        in out.getvalue()


def test_cli_quiet_prints_no_progress(capsys, tmp_path):
    pytest.importorskip("cnnjax.models")
    from cnnjax.cli import main

    argv = ["ablate", "--out", str(tmp_path), "--pools", "max", "--seeds", "0", "--epochs", "1",
            "--batch-size", "32", "--limit", "64", "--cache-dir", "none", "--no-plots",
            "--shift-trials", "1"]
    assert main([*argv, "--quiet"]) == 0
    assert "[cell" not in capsys.readouterr().err
