"""``cnnjax train/ablate --config FILE.toml`` (file < flag, unknown keys, the saved effective
configuration) and ``cnnjax eval``."""
from __future__ import annotations

import tomllib

import pytest

from cnnjax.cli import _config, build_parser, main

TRAIN = ["train", "--dataset", "digits", "--limit", "128", "--quiet"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _parse(command, argv):
    parser = build_parser()
    _config.apply_config(parser, command, argv)
    return parser.parse_args(argv)


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_file_values_become_defaults_and_flags_override(tmp_path):
    cfg = _write(tmp_path / "c.toml", 'epochs = 7\nbatch_size = 16\nlr = 0.01\npool = "avg"\n'
                                      'weight-decay = 0.001\naugment = "none"\nquiet = true\n')
    args = _parse("train", ["train", "--config", cfg, "--epochs", "2", "--pool=lp:p=3"])
    assert (args.epochs, args.pool) == (2, "lp:p=3")  # flags win
    assert (args.batch_size, args.lr, args.weight_decay) == (16, 0.01, 0.001)
    assert args.augment == "none" and args.quiet is True


def test_ablate_lists_from_file_and_a_flag_replaces_them(tmp_path):
    cfg = _write(tmp_path / "c.toml", 'pools = ["max", "avg"]\nseeds = "0,4"\n'
                                      'no_plots = true\n')
    args = _parse("ablate", ["ablate", "--config", cfg])
    assert args.pools == [["max", "avg"]] and args.seeds == [[0, 4]] and args.no_plots
    args = _parse("ablate", ["ablate", "--config", cfg, "--pools", "spectral"])
    assert args.pools == [["spectral"]] and args.seeds == [[0, 4]]


@pytest.mark.parametrize("text, fragments", [
    ("foo = 1\n", ["unknown key 'foo'; valid keys for train: model, pool", "max-to-keep"]),
    ("epochs = 0\n", ["epochs must be a positive integer, got 0"]),
    ("quiet = 1\n", ["quiet must be true or false, got 1"]),
    ('augment = "flip"\n', ["augment must be one of auto, crop_flip, crop, none"]),
    ("epochs = [\n", ["is not valid TOML"]),
])
def test_bad_files_are_one_line_errors(capsys, tmp_path, text, fragments):
    cfg = _write(tmp_path / "c.toml", text)
    code, out, err = _run(capsys, "train", "--config", cfg)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"cnnjax train: error: --config {cfg}")
    for f in fragments:
        assert f in err, (f, err)


def test_missing_file(capsys, tmp_path):
    code, _, err = _run(capsys, "ablate", "--config", str(tmp_path / "nope.toml"))
    assert code == 2 and "--config must be a readable TOML file" in err


def test_saved_effective_config_repeats_the_run(capsys, tmp_path):
    workdir = tmp_path / "w"
    cfg = _write(tmp_path / "c.toml", "batch-size = 32\nepochs = 3\n")
    code, trained, err = _run(capsys, *TRAIN, "--config", cfg, "--epochs", "1", "--workdir",
                              str(workdir), "--momentum", "0.5")
    assert code == 0, err
    last_test_acc = next(l for l in trained.splitlines() if l.split()[:1] == ["1"]).split()[4]
    saved = tomllib.loads((workdir / "config.toml").read_text())
    assert saved["epochs"] == 1 and saved["batch-size"] == 32 and saved["momentum"] == 0.5
    assert saved["limit"] == 128 and "restart" not in saved and "data-dir" not in saved
    again = _parse("train", ["train", "--config", str(workdir / "config.toml")])
    first = _parse("train", [*TRAIN, "--config", cfg, "--epochs", "1", "--workdir",
                             str(workdir), "--momentum", "0.5"])
    assert vars(again) == {**vars(first), "config": str(workdir / "config.toml")}
    assert (workdir / "metrics.csv").exists()
    # eval on the same test subset prints what training reported for its last epoch.
    code, out, err = _run(capsys, "eval", "--workdir", str(workdir), "--limit", "128")
    assert code == 0, err
    assert out.startswith(f"digits test: accuracy {last_test_acc}, loss ") and "on 128 images (LeNet5 (pool=max), " \
                                                       "epoch 1 of " in out


def test_one_default_batch_size():
    from cnnjax.ablation import DEFAULTS
    for argv in (["train"], ["ablate"], ["eval", "--workdir", "w"]):
        assert build_parser().parse_args(argv).batch_size == DEFAULTS["batch_size"]


def test_eval_errors(capsys, tmp_path):
    code, _, err = _run(capsys, "eval", "--workdir", str(tmp_path / "none"))
    assert code == 2 and err.startswith("cnnjax eval: error: --workdir must be a training "
                                        "run's directory")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("x")
    code, _, err = _run(capsys, "eval", "--workdir", str(tmp_path / "foreign"))
    assert code == 2 and "workdir must hold fit checkpoints" in err
    assert sorted(p.name for p in (tmp_path / "foreign").iterdir()) == ["notes.txt"]
