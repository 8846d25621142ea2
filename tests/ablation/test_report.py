"""Tests of report.md and its figures (cnnjax/ablation/report.py, plots.py) on synthetic
records: new-style runs (consistency, shifted accuracy, speed, memory) and old-style ones."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cnnjax.ablation import append_record, summarize, write_report
from cnnjax.ablation.report import format_comparison
from cnnjax.layers.pool_specs import FAMILIES

HP = {"epochs": 3, "batch_size": 32, "learning_rate": 0.001, "shift": 2, "shift_trials": 5}
OLD_HP = {"epochs": 3, "batch_size": 32, "learning_rate": 0.001}
NOISE = (0.0, 0.01, -0.008, 0.004)  # the seed's share, common to all variants
# A variant's own share on odd seeds, so differences are not all constant.
JITTER = {"avg": 0.001, "mixed": 0.002, "gated": 0.003, "blur": 0.001}


def _record(pool, seed, acc, *, cons=None, hp=HP, model="lenet5", command=None):
    history = [{"epoch": e + 1, "test_accuracy": acc - 0.1 * (2 - e), "test_loss": 1.0 - acc}
               for e in range(3)]
    r = {"pool": pool, "model": model, "dataset": "digits", "seed": seed,
         "hyperparameters": dict(hp), "params": 1000 + (8 if pool == "gated" else 0),
         "history": history, "test_accuracy": acc, "test_loss": 1.0 - acc,
         "seconds_per_epoch": 0.05}
    if cons is not None:
        r.update(consistency=cons, shifted_accuracy=acc - 0.03, steps_per_second=200.0 + seed,
                 peak_memory_bytes=None)
    if command:
        r["command"] = command
    return r


def _new_cell(seeds=(0, 1, 2, 3)):
    table = {"max": (0.90, 0.80), "avg": (0.80, 0.84), "mixed": (0.905, 0.81),
             "gated": (0.91, 0.81), "blur": (0.88, 0.92), "maxblur": (0.90, 0.91)}
    return [_record(pool, s, acc + NOISE[s] + JITTER.get(pool, 0.0) * (s % 2),
                    cons=cons + NOISE[s], command="cnnjax ablate --out X")
            for pool, (acc, cons) in table.items() for s in seeds]


def _old_cell():
    return [_record(pool, s, acc + NOISE[s], hp=OLD_HP, model="resnet20")
            for pool, acc in (("max", 0.7), ("soft", 0.72)) for s in (0, 1, 2)]


def test_report_covers_every_cell_and_metric(tmp_path):
    records = _new_cell() + _old_cell() + [_record("fractional", 0, 0.5, hp={**HP, "epochs": 9})]
    for r in records:
        append_record(tmp_path / "results.jsonl", r)
    text = write_report(tmp_path, plots=False).read_text()  # every cell of the results file
    assert text.count("\n## lenet5 on digits\n") == 2 and "\n## resnet20 on digits\n" in text
    assert "Hyperparameters: batch_size=32, epochs=9" in text
    assert "cnnjax ablate --out X" in text
    # New-style rows: every metric; old-style rows: "—" for what they did not record.
    assert f"| `max` | max/average | 4 | {100 * (0.9 + np.mean(NOISE)):.2f} ± " in text
    old_max = next(line for line in text.splitlines()
                   if line.startswith("| `max` | max/average | 3"))
    assert old_max.split(" | ")[4:6] == ["—", "—"]
    # One seed: a mean without an interval, and no paired comparison possible.
    assert "| `fractional` | stochastic | 1 | 50.00 |" in text
    assert "Only `max`" not in text and "No `max` runs in this cell" in text
    # The naming of the two mixed poolings, once.
    assert text.count('Two papers call their method "mixed pooling"') == 1
    assert "How to read the tables:" in text and "Holm" in text
    assert text.count("## Published claims") == 1


def test_paired_comparison_table(tmp_path):
    records = _new_cell()
    # blur lacks seed 3: compared on seeds 0-2, and the table says so.
    records = [r for r in records if not (r["pool"] == "blur" and r["seed"] == 3)]
    (group,) = summarize(records)
    table = format_comparison(group, "max")
    rows = {line.split(" | ")[0][2:].strip("`"): line for line in table.splitlines()[2:]}
    assert list(rows) == ["avg", "mixed", "gated", "blur", "maxblur"]
    assert rows["blur"].split(" | ")[1] == "3 (no seed 3)"
    assert rows["avg"].split(" | ")[1] == "4"
    # avg is 10 points below max on seeds 0 and 2, 9.9 on 1 and 3: significant after Holm.
    acc = rows["avg"].split(" | ")[2]
    assert acc.startswith("-9.95 [") and acc.endswith("✱")
    # maxblur equals max on accuracy seed by seed: p = 1, no mark.
    assert rows["maxblur"].split(" | ")[2] == "+0.00 [+0.00, +0.00]; p 1.000, Holm 1.000"
    # consistency: blur +12 points, significant; column order follows the header.
    header = table.splitlines()[0].split(" | ")
    assert header[2:] == ["Δ test accuracy (pp)", "Δ consistency (pp)",
                          "Δ shifted accuracy (pp)", "Δ test loss |"]
    assert rows["blur"].split(" | ")[3].startswith("+12.00") and "✱" in rows["blur"]
    assert "No `soft` runs" in format_comparison(group, "soft")


def test_claims_section_and_baseline(tmp_path):
    text = write_report(tmp_path, _new_cell(), plots=False, baseline="avg").read_text()
    assert "Paired comparison with `avg`" in text
    claims = text[text.index("## Published claims"):]
    lines = {line.split(" | ")[1]: line for line in claims.splitlines()
             if line.startswith("| ") and " | " in line and not line.startswith("| claim")
             and not line.startswith("|---")}
    zhang = lines["Zhang 2019, Making convolutional networks shift-invariant again"]
    assert zhang.endswith("| **reproduced** |")
    assert "`blur` − `max` consistency: +12.00" in zhang
    zeiler = next(v for k, v in lines.items() if k.startswith("Zeiler"))
    assert "not tested: stochastic > max (test accuracy): no `stochastic` runs" in zeiler
    assert zeiler.endswith("| **reproduced (tested in part)** |")  # max > avg holds
    assert next(v for k, v in lines.items() if k.startswith("Graham")).endswith(
        "| **not in this study** |")
    with pytest.raises(TypeError, match=r"write_report: baseline must be a pool spec string, "
                                        r"got 3\."):
        write_report(tmp_path, _new_cell(), baseline=3)


def test_report_only_from_the_command_line(tmp_path, capsys):
    from cnnjax.cli import main

    for r in _new_cell():
        append_record(tmp_path / "results.jsonl", r)
    assert main(["ablate", "--out", str(tmp_path), "--report-only", "--no-plots",
                 "--baseline", "mixed"]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "Paired comparison with `mixed`" in text and "cnnjax ablate --out X" in text
    assert "| `max` | max/average | 4 |" in capsys.readouterr().out


# --------------------------------------------------------------------------- figures


def _assert_contains(lim, values):
    finite = [v for v in values if math.isfinite(v)]
    assert lim[0] < min(finite) and max(finite) < lim[1], (lim, min(finite), max(finite))


def test_figures_written_and_embedded(tmp_path):
    pytest.importorskip("matplotlib")
    text = write_report(tmp_path, _new_cell() + _old_cell()).read_text()
    for name in ("accuracy_lenet5_digits", "consistency_lenet5_digits", "curves_lenet5_digits",
                 "accuracy_resnet20_digits", "curves_resnet20_digits"):
        assert f"![{name}]({name}.png)" in text
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Old runs recorded no consistency: no scatter for them.
    assert not (tmp_path / "consistency_resnet20_digits.png").exists()


def test_one_family_colour_mapping_in_every_figure():
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_rgba

    from cnnjax.ablation import plots

    (group,) = summarize(_new_cell())
    colour = {r.pool: plots.family_colour(r.family) for r in group.rows}
    assert len({plots.family_colour(f) for f in FAMILIES}) == len(FAMILIES)
    assert colour["mixed"] == colour["gated"] != colour["max"] == colour["avg"]

    acc = plots.accuracy_figure(group).axes[0]
    dots = [c for c in acc.collections if type(c).__name__ == "PathCollection"]
    assert [tuple(d.get_facecolor()[0][:3]) for d in dots] == [
        colour[r.pool][:3] for r in group.rows]
    curves = plots.curves_figure(group).axes[0]
    lines = {ln.get_label(): to_rgba(ln.get_color()) for ln in curves.get_lines()}
    assert all(lines[p] == colour[p] for p in colour)
    scatter = plots.consistency_figure(group).axes[0]
    points = [ln for ln in scatter.get_lines() if ln.get_marker() == "o"]
    assert [to_rgba(ln.get_color()) for ln in points] == [colour[r.pool] for r in group.rows]
    # Every figure has a legend of the families present.
    for ax in (acc, curves, scatter):
        titles = [leg.get_title().get_text() for leg in ax.findobj(
            lambda a: type(a).__name__ == "Legend")]
        assert "family" in titles


def test_axis_limits_hold_every_point_and_interval():
    pytest.importorskip("matplotlib")
    from cnnjax.ablation import plots

    records = _new_cell()
    records.append(_record("avg", 4, 0.2, cons=0.3))  # an outlier seed far from the rest
    (group,) = summarize(records)
    acc = plots.accuracy_figure(group).axes[0]
    values = [100 * v for r in group.rows for v in r.values["test_accuracy"].values()]
    values += [100 * e for r in group.rows for e in (r.metrics["test_accuracy"].low,
                                                      r.metrics["test_accuracy"].high)]
    _assert_contains(acc.get_xlim(), values)
    assert "axis" in acc.get_xlabel()  # the range shown is stated

    scatter = plots.consistency_figure(group).axes[0]
    for lim, name in ((scatter.get_xlim(), "consistency"), (scatter.get_ylim(), "test_accuracy")):
        _assert_contains(lim, [100 * e for r in group.rows
                               for e in (r.metrics[name].low, r.metrics[name].high)])

    curves = plots.curves_figure(group).axes[0]
    _assert_contains(curves.get_ylim(), [100 * v for r in group.rows
                                         for v in (*r.curve_mean, *np.clip(r.curve_low, 0, 1))])
