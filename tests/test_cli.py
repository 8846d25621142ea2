"""Tests of the ``cnnjax`` command (cnnjax/cli.py): help, exit codes, messages, subcommands.

Most tests call ``cnnjax.cli.main([...])`` in-process (it returns the exit status); one runs
``python -m cnnjax`` in a subprocess to cover the module entry point.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from cnnjax import ablation
from cnnjax.cli import main

SUBCOMMANDS = ("train", "ablate", "data", "summary")


def _models():
    # The model zoo is a sibling package; skip (not fail) the model tests without it.
    models = pytest.importorskip("cnnjax.models")
    if not hasattr(models, "NAMES"):
        pytest.skip("cnnjax.models is not available")
    return models


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


# --------------------------------------------------------------------------- help


def test_top_level_help(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    for name in (*SUBCOMMANDS, "bench", "viz"):
        assert f"    {name} " in out
    assert "examples:" in out and "cnnjax ablate" in out


@pytest.mark.parametrize("argv", [[c, "--help"] for c in SUBCOMMANDS]
                         + [["data", "fetch", "--help"], ["data", "list", "--help"]])
def test_subcommand_help(capsys, argv):
    code, out, _ = _run(capsys, *argv)
    assert code == 0
    assert out.startswith(f"usage: cnnjax {' '.join(argv[:-1])}")


def test_ablate_help_shows_defaults(capsys):
    _, out, _ = _run(capsys, "ablate", "--help")
    assert f"(default: {ablation.DEFAULTS['epochs']})" in out
    assert "runs/ablation" in out


def test_version(capsys):
    code, out, _ = _run(capsys, "--version")
    assert code == 0 and out.strip().startswith("cnnjax ")


def test_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "cnnjax", "train", "--epochs", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    _one_line_error(proc.stderr, "cnnjax train: error:", "--epochs", "positive integer", "0")


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("argv, fragments", [
    (["train", "--epochs", "-3"], ["--epochs", "must be a positive integer, got -3"]),
    (["ablate", "--epochs", "0"], ["--epochs", "must be a positive integer, got 0"]),
    (["ablate", "--batch-size", "x"], ["--batch-size", "must be a positive integer"]),
    (["ablate", "--lr", "-1"], ["--lr", "must be a positive finite number"]),
    (["ablate", "--seeds", "0,-1"], ["--seeds", "non-negative integers"]),
    (["summary", "lenet5", "--input-shape", "28,28"], ["--input-shape", "H,W,C"]),
    (["frobnicate"], ["invalid choice", "frobnicate"]),
    ([], ["required", "COMMAND"]),
    (["data"], ["required", "ACTION"]),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, fragments):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    _one_line_error(err, "error:", *fragments)


def test_unknown_model_lists_valid_ones(capsys):
    models = _models()
    code, _, err = _run(capsys, "train", "--model", "lenet6")
    assert code == 2
    _one_line_error(err, "cnnjax train: error: unknown model 'lenet6'", *models.NAMES)


def test_unknown_pool_lists_valid_ones(capsys, tmp_path):
    from cnnjax import nn

    code, _, err = _run(capsys, "ablate", "--out", str(tmp_path), "--pools", "max,median3")
    assert code == 2
    _one_line_error(err, "cnnjax ablate: error: unknown pool spec 'median3'", *nn.POOL_SPECS)
    assert not (tmp_path / "results.jsonl").exists()


def test_unknown_dataset_lists_valid_ones(capsys, tmp_path):
    from cnnjax import data

    code, _, err = _run(capsys, "ablate", "--out", str(tmp_path), "--datasets", "imagenet")
    assert code == 2
    _one_line_error(err, "unknown dataset 'imagenet'", *data.DATASETS)


def test_missing_dataset_reports_the_data_modules_message(capsys, tmp_path, monkeypatch):
    from cnnjax import data

    monkeypatch.setenv("CNNJAX_DATA", str(tmp_path / "empty"))
    try:
        data.load("fashion_mnist", "test", data_dir=str(tmp_path / "empty"))
    except data.DatasetNotFoundError as e:
        message = str(e)
    else:
        pytest.skip("fashion_mnist is available on this machine")
    code, _, err = _run(capsys, "ablate", "--out", str(tmp_path / "o"), "--datasets",
                        "fashion_mnist", "--data-dir", str(tmp_path / "empty"))
    assert code == 2
    assert err.strip() == f"cnnjax ablate: error: {message}"


def test_unwritable_output_dir(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = _run(capsys, "ablate", "--out", str(blocker / "sub"))
    assert code == 2
    _one_line_error(err, "cnnjax ablate: error: --out must be a writable directory",
                    str(blocker / "sub"))


def test_report_only_without_results(capsys, tmp_path):
    code, _, err = _run(capsys, "ablate", "--out", str(tmp_path), "--report-only")
    assert code == 2
    _one_line_error(err, "--report-only needs finished runs")


@pytest.mark.parametrize("name, module", [("bench", "cnnjax.bench"), ("viz", "cnnjax.viz.cli")])
def test_delegated_subcommands(capsys, name, module):
    code, out, err = _run(capsys, name, "--help")
    if importlib.util.find_spec(module.rsplit(".", 1)[0]) and importlib.util.find_spec(module):
        assert code == 0
        assert out.startswith(f"usage: cnnjax {name}")
    else:
        assert code == 2
        _one_line_error(err, f"cnnjax {name}: error:", module, "not")


# --------------------------------------------------------------------------- subcommands


def test_data_list(capsys):
    from cnnjax import data

    code, out, _ = _run(capsys, "data", "list")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["name", "available"]
    assert [line.split()[0] for line in lines[1:]] == list(data.DATASETS)
    assert lines[1].split()[1] == "yes"  # digits is embedded


def test_data_fetch_rejects_embedded_dataset(capsys):
    code, _, err = _run(capsys, "data", "fetch", "digits")
    assert code == 2
    _one_line_error(err, "cnnjax data: error: fetch: name must be 'mnist' or 'fashion_mnist'")


def test_summary_prints_the_models_table(capsys):
    models = _models()
    code, out, _ = _run(capsys, "summary", "lenet5")
    assert code == 0
    expected = models.summary(models.get("lenet5", num_classes=10, pool="max"), (28, 28, 1))
    assert out.strip() == expected.strip()
    assert "1,256,080" in out or "1256080" in out  # the lectures' LeNet5 parameter count


def test_train_one_epoch_on_digits(capsys, tmp_path):
    _models()
    code, out, err = _run(capsys, "train", "--dataset", "digits", "--pool", "avg",
                          "--epochs", "1", "--batch-size", "64", "--limit", "256",
                          "--workdir", str(tmp_path / "w"), "--quiet")
    assert code == 0, err
    lines = out.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["epoch"])
    row = lines[header + 1].split()
    assert row[0] == "1"
    assert 0.0 <= float(row[2].rstrip("%")) <= 100.0
    assert any(line.startswith("parameters: ") for line in lines)
    assert any((tmp_path / "w").iterdir())  # a checkpoint was written


def test_ablate_prints_table_and_report_only_redraws(capsys, tmp_path):
    _models()
    out_dir = tmp_path / "abl"
    argv = ["ablate", "--out", str(out_dir), "--pools", "max", "--seeds", "0", "--epochs", "1",
            "--batch-size", "32", "--limit", "96", "--cache-dir", "none", "--no-plots"]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    assert "| `max` |" in out and "report: " in out
    assert "[cell 1/1] lenet5 digits pool=max seeds=0 epoch 1/1 · test acc " in err
    (record,) = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    assert record["hyperparameters"]["epochs"] == 1
    assert "cnnjax ablate --out" in (out_dir / "report.md").read_text()
    assert 'pools = ["max"]' in (out_dir / "config.toml").read_text()
    assert (out_dir / "logs" / record["run_id"] / "metrics.csv").read_text().count("\n") == 2
    # Re-running trains nothing: no progress line, same single record.
    code, out, err = _run(capsys, *argv)
    assert code == 0 and "[cell" not in err
    assert len((out_dir / "results.jsonl").read_text().splitlines()) == 1
    code, out, _ = _run(capsys, "ablate", "--out", str(out_dir), "--report-only", "--no-plots")
    assert code == 0 and "| `max` |" in out
    # The redrawn report still quotes the command that trained the runs.
    assert " ".join(["cnnjax", *argv]) in (out_dir / "report.md").read_text()


def test_pool_lists_keep_comma_separated_spec_options(capsys, tmp_path):
    from cnnjax.layers.pool_specs import split_spec_list as _pool_list

    assert _pool_list("max,mixed:learn,per_channel,lp:p=3,gated:per_channel") == [
        "max", "mixed:learn,per_channel", "lp:p=3", "gated:per_channel"]
    # Each resulting spec is validated whole: only the bad one is reported.
    code, _, err = _run(capsys, "ablate", "--out", str(tmp_path),
                        "--pools", "mixed:learn,per_channel,median3")
    assert code == 2
    _one_line_error(err, "unknown pool spec 'median3'")


def test_unknown_optimizer_lists_valid_ones(capsys, tmp_path):
    from cnnjax.train import OPTIMIZERS

    code, _, err = _run(capsys, "train", "--optimizer", "lbfgs")
    assert code == 2
    _one_line_error(err, "cnnjax train: error: unknown optimizer 'lbfgs'", *OPTIMIZERS)
    code, _, err = _run(capsys, "ablate", "--out", str(tmp_path), "--schedule", "linear")
    assert code == 2
    _one_line_error(err, "cnnjax ablate: error: unknown schedule 'linear'", "cosine")


# --------------------------------------------------------------------------- user errors


def _assert_user_error(code, err, *fragments):
    assert code == 2, err
    assert "Traceback" not in err
    _one_line_error(err, "error:", *fragments)


@pytest.mark.parametrize("argv, fragments", [
    (["summary", "lenet5", "--input-shape", "2,2,1"],
     ["cnnjax summary: error: --input-shape 2,2,1 is too small or otherwise unfit for lenet5: "
      "max_pool: window_shape"]),
    (["train", "--batch-size", "5000", "--limit", "256"],
     ["cnnjax train: error: --batch-size must be at most the 256 training examples, got 5000"]),
    (["train", "--devices", "3"], ["cnnjax train: error: --devices must be at most the",
                                   "available device", "got 3"]),
    (["train", "--pool", "lp:p=-1"],
     ["cnnjax train: error: invalid pool spec 'lp:p=-1': make_pool: option 'p' in pooling "
      "spec 'lp:p=-1' must be a number > 0 (or inf), got '-1'."]),
    (["ablate", "--pools", "max,lp:p=0", "--out", "{tmp}"],
     ["cnnjax ablate: error: invalid pool spec 'lp:p=0': make_pool: option 'p' in pooling "
      "spec 'lp:p=0' must be a number > 0"]),
    # fit's own check of the model against the data, as one line.
    (["train", "--model", "alexnet", "--limit", "64", "--batch-size", "32"],
     ["cnnjax train: error: the model cannot run on train_data's images of shape (8, 8, 1)"]),
])
def test_user_errors_are_one_line_exit_2(capsys, tmp_path, argv, fragments):
    _models()
    code, _, err = _run(capsys, *(a.format(tmp=tmp_path) for a in argv))
    _assert_user_error(code, err, *fragments)


def test_user_error_in_a_real_process_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "cnnjax", "summary", "lenet5",
                           "--input-shape", "2,2,1"], capture_output=True, text=True,
                          timeout=120, check=False)
    _assert_user_error(proc.returncode, proc.stderr, "--input-shape 2,2,1")


TRAIN = ["train", "--dataset", "digits", "--limit", "128", "--batch-size", "64", "--quiet"]


def test_resume_with_another_pool_is_refused_and_restart_starts_over(capsys, tmp_path):
    _models()
    workdir = str(tmp_path / "w")
    code, _, err = _run(capsys, *TRAIN, "--pool", "max", "--epochs", "1", "--workdir", workdir)
    assert code == 0, err
    code, _, err = _run(capsys, *TRAIN, "--pool", "avg", "--epochs", "1", "--workdir", workdir)
    _assert_user_error(code, err, "cnnjax train: error: workdir", "holds another run: "
                       "model.pool was 'max', now 'avg'", "--restart")
    code, out, err = _run(capsys, *TRAIN, "--pool", "avg", "--epochs", "1", "--workdir",
                          workdir, "--restart")
    assert code == 0, err
    code, _, err = _run(capsys, *TRAIN, "--pool", "avg", "--epochs", "2", "--workdir", workdir)
    assert code == 0, err  # the restarted avg-pool run is extended


def _damage(step_dir):
    with open(step_dir / "meta" / "metadata", "w") as f:
        f.write("{garbage")


# fit's fallback and its one-line error: tests/train/test_checkpoint.py (default set).
@pytest.mark.slow
@pytest.mark.filterwarnings("always::RuntimeWarning")
def test_damaged_checkpoints_warn_then_fail_in_one_line(capsys, tmp_path):
    _models()
    workdir = tmp_path / "w"
    argv = [*TRAIN, "--epochs", "2", "--workdir", str(workdir)]
    assert _run(capsys, *argv)[0] == 0
    _damage(workdir / "2")
    code, _, err = _run(capsys, *argv)
    assert code == 0, err
    assert "cnnjax: warning: fit: the checkpoint of epoch 2 in" in err
    assert "resuming from epoch 1" in err and "Traceback" not in err
    _damage(workdir / "1")
    _damage(workdir / "2")
    code, _, err = _run(capsys, *argv)
    _assert_user_error(code, err, "cnnjax train: error: no intact checkpoint in",
                       f"delete {workdir / '2'} and {workdir / '1'}")
    # In a real process too: nothing (orbax's background clean-up included) adds a traceback.
    proc = subprocess.run([sys.executable, "-m", "cnnjax", *argv], capture_output=True,
                          text=True, timeout=300, check=False)
    _assert_user_error(proc.returncode, proc.stderr, "no intact checkpoint in")


def test_data_list_verifies_files_and_fetch_force_downloads_again(capsys, tmp_path,
                                                                  monkeypatch):
    import numpy as np

    from cnnjax.data import _fetch, write_idx

    monkeypatch.setenv("CNNJAX_DATA", str(tmp_path / "none"))
    directory = tmp_path / "mnist"
    directory.mkdir()
    for base in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        write_idx(directory / base, np.zeros((3, 28, 28) if "images" in base else (3,),
                                             np.uint8))
    code, out, _ = _run(capsys, "data", "list", "--data-dir", str(tmp_path))
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("mnist "))
    assert row.split()[1] == "damaged"
    assert "mnist: " in out and "cnnjax data fetch mnist --force" in out
    # fetch refuses the damaged files in one line; --force downloads again.
    code, _, err = _run(capsys, "data", "fetch", "mnist", "--data-dir", str(tmp_path))
    _assert_user_error(code, err, "expected 60000", "--force")
    calls = []
    monkeypatch.setattr(_fetch, "_fetch_tfds", lambda name, force: calls.append(force))
    code, out, err = _run(capsys, "data", "fetch", "mnist", "--data-dir", str(tmp_path),
                          "--force")
    assert code == 0, err
    assert calls == [True] and out.strip() == "mnist: downloaded from tfds\nmnist: ready (tfds)"
