"""The ablation and the CLI on the flax.nnx front end give the linen front end's numbers."""
import json

import pytest

from cnnjax.ablation import load_results, run_ablation
from cnnjax.cli import main

TINY = {"pools": ("max", "gem:learn"), "seeds": (0,), "epochs": 1, "batch_size": 32,
        "limit": 96, "cache_dir": None, "report": False}
NUMBERS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


@pytest.mark.slow
def test_nnx_front_end_gives_the_linen_numbers(tmp_path):
    linen = run_ablation(tmp_path / "linen", **TINY)
    nnx = run_ablation(tmp_path / "nnx", frontend="nnx", **TINY)
    assert [r["pool"] for r in nnx] == [r["pool"] for r in linen]
    for a, b in zip(linen, nnx):
        assert a["params"] == b["params"]
        for key in NUMBERS:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (a["pool"], key)
        # Recorded only when not linen, so existing results and run ids stay valid.
        assert "frontend" not in a["hyperparameters"]
        assert b["hyperparameters"]["frontend"] == "nnx" and a["run_id"] != b["run_id"]
    # Re-running skips the finished NNX runs (results.jsonl holds them in the order they
    # finished, which two programs at once can swap).
    again = run_ablation(tmp_path / "nnx", frontend="nnx", **TINY)
    assert again == nnx
    assert sorted(load_results(tmp_path / "nnx"), key=lambda r: r["run_id"]) == sorted(
        nnx, key=lambda r: r["run_id"])


def test_frontend_errors(tmp_path):
    with pytest.raises(ValueError, match="run_ablation: frontend must be 'linen' or 'nnx', got "
                                         "'torch'"):
        run_ablation(tmp_path, frontend="torch", **TINY)


def test_cli_frontend(tmp_path, capsys):
    args = ["--dataset", "digits", "--epochs", "1", "--batch-size", "32", "--limit", "96",
            "--quiet"]
    assert main(["train", *args]) == 0
    linen = capsys.readouterr().out
    assert main(["train", "--frontend", "nnx", *args]) == 0
    nnx = capsys.readouterr().out
    assert "lenet5 as flax.nnx" in nnx

    def row(out):
        lines = out.strip().splitlines()
        header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["epoch"])
        return lines[header + 1].split()[:5]

    assert row(nnx) == row(linen)
    assert main(["ablate", "--frontend", "nnx", "--pools", "max", "--seeds", "0", "--epochs",
                 "1", "--batch-size", "32", "--limit", "96", "--out", str(tmp_path / "a"),
                 "--cache-dir", "none", "--no-plots", "--quiet"]) == 0
    record = json.loads((tmp_path / "a" / "results.jsonl").read_text().splitlines()[0])
    assert record["hyperparameters"]["frontend"] == "nnx"
    assert main(["ablate", "--frontend", "nnx", "--models", "lenet5,alexnet", "--pools", "max",
                 "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "--frontend" in capsys.readouterr().err
