"""Tests of ``cnnjax tune`` (``cnnjax/bench/tune.py`` and its CLI block)."""
from __future__ import annotations

import json
import os

import pytest

from cnnjax.cli import main
from cnnjax.ops import _autotune


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tune_measures_every_conv_of_the_training_step(autotune, capsys, monkeypatch):
    # Measuring itself is tested in tests/ops/test_autotune.py; here a fixed timing (im2col
    # fastest) keeps the test to the tracing, the table and the cache.
    measured = []

    def fake(x_shape, w_shape, dtype, geometry, precision, names, static):
        measured.append((x_shape, w_shape))
        return {n: 0.001 if n == "im2col" else 0.002 for n in names}
    monkeypatch.setattr(_autotune, "measure", fake)
    monkeypatch.setattr(_autotune, "_MIN_FLOPS", 0)
    code, out, err = _run(capsys, "tune", "--model", "lenet5", "--input-shape", "12,12,1",
                          "--batch-size", "4")
    assert code == 0, err
    rows = [l for l in out.splitlines() if l.startswith("| 4x")]
    # LeNet5's two convs, at the step's batch size only (init runs at batch 1, unmeasured).
    assert [r.split("|")[1].strip() for r in rows] == ["4x12x12x1 k5x5 p2 -> 20",
                                                         "4x6x6x20 k5x5 p2 -> 50"], out
    assert all("| im2col | tuned | 2.00 | 1.00 | 2.00 |" in r for r in rows), rows
    assert len(measured) == 2
    (path,) = [f for f in os.listdir(autotune) if f.endswith(".json")]
    assert f"cache: {autotune / path}" in out
    with open(autotune / path) as f:
        assert len(json.load(f)["entries"]) == 2


@pytest.mark.parametrize("argv,fragment", [
    (("tune", "--model", "lenet6", "--input-shape", "28,28,1"), "unknown model 'lenet6'"),
    (("tune", "--model", "lenet5", "--input-shape", "28,28"), "must be H,W,C"),
    (("tune", "--model", "lenet5", "--input-shape", "28,28,1", "--pool", "nope"),
     "unknown pool spec 'nope'"),
    (("tune", "--model", "lenet5", "--input-shape", "2,2,1"), "--input-shape 2,2,1"),
    (("tune", "--model", "lenet5", "--input-shape", "28,28,1"), "CNNJAX_AUTOTUNE=0"),
])
def test_tune_errors_are_one_line_exit_2(capsys, argv, fragment):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[-1], err
