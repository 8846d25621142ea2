"""``cnnjax viz ...``: configure_parser + run, as the ``cnnjax`` command calls them."""
import argparse
import json

import pytest

from cnnjax.viz import cli
from tests.viz._helpers import png_shape


def _run(argv):
    parser = argparse.ArgumentParser(prog="cnnjax viz")
    cli.configure_parser(parser)
    return cli.run(parser.parse_args(argv))


def test_kernels(tmp_path, capsys):
    out = tmp_path / "a" / "k.png"
    assert _run(["kernels", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert png_shape(out) == (352, 960)


def test_pooling_information_prints_the_numbers(tmp_path, capsys):
    out = tmp_path / "p.png"
    # The sizes and ratios of test_pooling_information: its programs are compiled once.
    assert _run(["pooling-information", "--size", "240,360", "--ratios", "1/4,1/16",
                 "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["kept", "spectral", "max", "avg", "lp"]
    assert [line.split()[0] for line in lines[1:3]] == ["1/4", "1/16"]
    spectral, max_ = (float(v) for v in lines[1].split()[1:3])
    assert 0 < spectral < max_ < 1
    assert png_shape(out) == (450, 1200)


def test_receptive_field(tmp_path):
    out = tmp_path / "rf.png"
    assert _run(["receptive-field", "--layers", "3,1,1;3,2,1,1;3,1,0,2", "--input-shape",
                 "16,16", "--out", str(out)]) == 0
    assert png_shape(out) == (480, 1100)
    out = tmp_path / "lenet.png"
    assert _run(["receptive-field", "--model", "lenet5", "--out", str(out)]) == 0
    assert png_shape(out) == (480, 1100)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("lenet5_digits")


@pytest.mark.slow
def test_filters_and_feature_maps_from_a_quick_training(workdir, tmp_path, capsys):
    common = ["--epochs", "1", "--limit", "128", "--workdir", str(workdir)]
    assert _run(["filters", *common, "--out", str(tmp_path / "f.png")]) == 0
    assert "epoch 1, test accuracy" in capsys.readouterr().out
    assert png_shape(tmp_path / "f.png")[1] == 600
    # Same workdir: the finished run is loaded from its checkpoint.
    assert _run(["feature-maps", *common, "--index", "3", "--channels", "4",
                 "--out", str(tmp_path / "m.png")]) == 0
    assert png_shape(tmp_path / "m.png") == (round(100 * (1.3 * 5 + 0.5)), 650)


def test_ablation(tmp_path):
    records = [
        {"run_id": f"{pool}-{seed}", "pool": pool, "model": "lenet5", "dataset": "digits",
         "seed": seed, "hyperparameters": {"epochs": 2}, "params": 100,
         "history": [{"epoch": e, "test_accuracy": 0.5 + 0.1 * e + 0.01 * seed}
                     for e in (1, 2)],
         "test_accuracy": 0.7 + 0.01 * seed, "test_loss": 0.5, "seconds_per_epoch": 1.0}
        for pool in ("max", "spectral") for seed in (0, 1)]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert _run(["ablation", str(results), "--out", str(tmp_path / "plots")]) == 0
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["accuracy_lenet5_digits.png", "curves_lenet5_digits.png"]


def test_errors(tmp_path, capsys):
    assert _run(["ablation", str(tmp_path / "missing.jsonl")]) == 2
    assert "cnnjax viz ablation: error: RESULTS must be a results.jsonl" in capsys.readouterr().err
    assert _run(["receptive-field", "--model", "nope", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert _run(["filters", "--dataset", "nope", "--out", str(tmp_path / "x.png")]) == 2
    assert "cnnjax viz filters: error:" in capsys.readouterr().err
    assert _run(["pooling-information", "--ratios", "1/3", "--size", "12,12",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "ratios must be 1/k**2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        _run(["pooling-information", "--ratios", "a/b"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        _run([])  # a figure must be chosen


def test_through_the_cnnjax_command(tmp_path):
    from cnnjax.cli import main

    out = tmp_path / "k.png"
    assert main(["viz", "kernels", "--out", str(out)]) == 0
    assert out.is_file()
