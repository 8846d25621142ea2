"""``report.md``: the study's tables (one per model and dataset) and the plots they embed."""
from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cnnjax.ablation.plots import plot_ablation
from cnnjax.ablation.results import _atomic_write, load_results
from cnnjax.ablation.summary import GroupSummary, summarize

REPORT_FILE = "report.md"


def format_table(group: GroupSummary) -> str:
    """The Markdown table of one study: one row per pool variant."""
    lines = [
        "| pool | test accuracy (%) | final test loss | s/epoch | parameters | seeds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in group.rows:
        lines.append(
            f"| `{row.pool}` | {100 * row.accuracy_mean:.2f} ± {100 * row.accuracy_std:.2f} "
            f"| {row.loss_mean:.4f} ± {row.loss_std:.4f} | {row.seconds_per_epoch:.3f} "
            f"| {row.params:,} | {len(row.seeds)} |")
    return "\n".join(lines)


def describe_hyperparameters(hyperparameters: Mapping[str, Any]) -> str:
    """``'batch_size=64, epochs=20, ...'``: the set values, sorted by name."""
    return ", ".join(f"{k}={v}" for k, v in sorted(hyperparameters.items()) if v is not None)


def write_report(out_dir: str | os.PathLike, records: Sequence[Mapping[str, Any]] | None = None,
                 *, command: str | None = None, plots: bool = True,
                 baseline: str = "max") -> Path:
    """Writes ``out_dir/report.md`` (and the PNG plots it embeds).

    Args:
        out_dir: the ablation's output directory.
        records: the runs to report; default: every run in ``out_dir/results.jsonl``.
        command: the command line that produced the results, quoted in the report;
            default: the commands recorded with the runs.
        plots: draw the plots with :func:`cnnjax.ablation.plot_ablation` (needs matplotlib; when
            it is not installed the report says so and keeps the tables).
        baseline: the pool variant other variants are compared with.

    Returns:
        The path of the report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if records is None:
        records = load_results(out_dir)
    groups = summarize(records)
    commands = [command] if command else list(dict.fromkeys(
        r["command"] for r in records if r.get("command")))
    images: dict[str, list[Path]] = {}
    plot_note = ""
    if plots and groups:
        try:
            paths = plot_ablation(list(records), out_dir)
        except ImportError as e:
            # matplotlib is an optional dependency (the 'viz' extra): reading results and
            # writing the tables must work without it.
            plot_note = f"_Plots skipped: {e} (install the `viz` extra: pip install cnnjax[viz])._"
        else:
            for p in paths:
                images.setdefault(p.stem.split("_", 1)[1], []).append(p)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = ["# Pooling ablation", ""]
    if commands:
        parts += ["Produced by:", "", "```", *commands, "```", ""]
    parts += [f"{sum(len(r.seeds) for g in groups for r in g.rows)} finished runs; "
              f"written {now}. Accuracy and loss are mean ± sample std over seeds, taken "
              "after the last epoch; s/epoch is the mean training time of an epoch, "
              "leaving out the first (which includes compiling).", ""]
    if plot_note:
        parts += [plot_note, ""]
    for g in groups:
        parts += [f"## {g.model} on {g.dataset}", "",
                  f"Hyperparameters: {describe_hyperparameters(g.hyperparameters)}.", "",
                  format_table(g), ""]
        for p in sorted(images.get(g.slug, []), key=lambda p: p.name):
            parts += [f"![{p.stem}]({p.name})", ""]
    path = out_dir / REPORT_FILE
    _atomic_write(path, "\n".join(parts))
    return path
