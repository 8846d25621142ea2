"""``report.md``: the study's tables, paired comparisons, published claims and figures.

The report is computed from the results file alone, so ``cnnjax ablate --report-only``
rewrites it at any time. It has one section per study cell (model, dataset and
hyperparameters) recorded: every metric per variant as mean ± 95% confidence interval over
seeds, the paired comparison of every variant with a baseline variant (:mod:`.stats`) and
the figures (:mod:`.plots`); then the published claims checked on each cell (:mod:`.claims`).
"""
from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cnnjax.ablation import claims as _claims
from cnnjax.ablation import stats
from cnnjax.ablation.plots import plot_ablation
from cnnjax.ablation.results import _atomic_write, load_results
from cnnjax.ablation.summary import GroupSummary, PoolSummary, summarize

REPORT_FILE = "report.md"

#: The metrics the paired comparison with the baseline covers (the ones a pooling choice is
#: judged on; speed and memory are reported, not tested).
COMPARED = ("test_accuracy", "consistency", "shifted_accuracy", "test_loss")

MISSING = "—"
MARK = "✱"

HOW_TO_READ = (
    "Every ± is the half-width of the 95% confidence interval of the mean over seeds "
    "(Student t; with 3 seeds about 2.5 standard deviations), so it says how well the seeds "
    "pin the mean down, not how much one run varies. Δ compares a variant with the baseline "
    "seed by seed (paired t-test over the seeds both have), and the Holm-adjusted p keeps the "
    f"chance of any false {MARK} (Holm p < {stats.ALPHA}) among the variants of a table at "
    f"{stats.ALPHA}; a difference without {MARK} is within the noise of the seeds, which is "
    "not evidence that the variants are equal.")

METRICS_NOTE = (
    "Metrics are taken after the last epoch; s/epoch is the mean training time of an epoch, "
    "leaving out the first (which includes compiling); consistency is the fraction of test "
    "images classified alike under two random shifts (Zhang 2019) and shifted accuracy the "
    f"accuracy under a shift. {MISSING} marks a metric these runs did not record.")

COMPARISON_NOTE = ("Δ = variant − baseline with its 95% CI, paired t-test p, Holm-adjusted p "
                   "across the variants")

CLAIMS_NOTE = (
    "Each claim is a set of pairwise comparisons, tested seed by seed with Holm's adjustment "
    "over the claim's comparisons: **reproduced** when every one is significant in the claimed "
    "direction, **contradicted** when one is significant in the opposite direction, "
    "**inconclusive** otherwise.")


def _num(metric: stats.Metric, value: float, *, signed: bool = False) -> str:
    v = metric.scale * value
    if metric.name == "params":
        return f"{v:,.0f}"
    return f"{v:{'+' if signed else ''}.{metric.digits}f}"


def format_estimate(row: PoolSummary, name: str) -> str:
    """``mean ± half-width`` of one metric of a row (``—`` when not recorded); the count of
    seeds is added when fewer seeds than the row's recorded the metric."""
    metric = stats.metric(name)
    est = row.metrics.get(name)
    if est is None:
        return MISSING
    text = _num(metric, est.mean)
    if est.half_width is not None and name != "params":
        text += f" ± {_num(metric, est.half_width)}"
    if est.n < len(row.seeds):
        text += f" (n={est.n})"
    return text


def format_table(group: GroupSummary) -> str:
    """The Markdown table of one study cell: one row per pool variant, every metric."""
    head = ["pool", "family", "n"] + [m.heading for m in stats.METRICS]
    lines = ["| " + " | ".join(head) + " |",
             "|---|---|---:|" + "---:|" * len(stats.METRICS)]
    for r in group.rows:
        cells = [f"`{r.pool}`", r.family, str(len(r.seeds))]
        cells += [format_estimate(r, m.name) for m in stats.METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _p(p: float | None) -> str:
    return MISSING if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def format_paired(c: stats.Paired, unit: str = "") -> str:
    """``Δ [CI]; p …, Holm …`` of one paired comparison (``unit`` after the interval),
    marked when significant."""
    if c.diff is None:
        return MISSING
    metric = stats.metric(c.metric)
    text = _num(metric, c.diff.mean, signed=True)
    if c.diff.low is not None:
        text += f" [{_num(metric, c.diff.low, signed=True)}, " \
                f"{_num(metric, c.diff.high, signed=True)}]"
    text += f"{unit}; p {_p(c.p)}, Holm {_p(c.p_holm)}"
    return text + (f" {MARK}" if c.significant else "")


def _seeds_note(c: stats.Paired, baseline_seeds: Sequence[int]) -> str:
    missing = [s for s in baseline_seeds if s not in c.seeds]
    text = str(len(c.seeds))
    if missing:
        text += f" (no seed {', '.join(map(str, missing))})"
    return text


def format_comparison(group: GroupSummary, baseline: str) -> str:
    """The paired comparison of every variant with ``baseline`` (a Markdown table), or a
    sentence saying why there is none."""
    rows = {r.pool: r for r in group.rows}
    if baseline not in rows:
        return (f"No `{baseline}` runs in this cell, so no paired comparison (choose another "
                "baseline with `--baseline`).")
    if len(rows) == 1:
        return f"Only `{baseline}` in this cell: nothing to compare."
    compared = {m: stats.compare(group.values(m), baseline, metric_name=m)
                for m in COMPARED if group.has(m)}
    heads = [f"Δ {stats.metric(m).label}" + (" (pp)" if stats.metric(m).unit == "%" else "")
             for m in COMPARED]
    lines = ["| pool | paired seeds | " + " | ".join(heads) + " |",
             "|---|---:|" + "---:|" * len(COMPARED)]
    base_seeds = rows[baseline].seeds
    for pool in rows:
        if pool == baseline:
            continue
        acc = compared["test_accuracy"][pool]
        cells = [f"`{pool}`", _seeds_note(acc, base_seeds)]
        for m in COMPARED:
            c = compared.get(m, {}).get(pool)
            cells.append(MISSING if c is None else format_paired(c))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_claims(group: GroupSummary, claims: Iterable[_claims.Claim] | None = None) -> str:
    """The published-claims table of one study cell: claim, paper, our numbers, verdict."""
    lines = ["| claim | paper | our numbers (Δ [95% CI], Holm p over the claim) | verdict |",
             "|---|---|---|---|"]
    for res in _claims.evaluate_claims(group, claims):
        numbers = []
        for c in res.tested:
            unit = " pp" if stats.metric(c.metric).unit == "%" else ""
            label = stats.metric(c.metric).label
            against = " (against the claim)" if c.significant and c.better is False else ""
            numbers.append(f"`{c.variant}` − `{c.reference}` {label}: "
                           f"{format_paired(c, unit)}{against}")
        numbers += [f"not tested: {u}" for u in res.untested]
        verdict = res.verdict
        if res.tested and res.untested:
            verdict += " (tested in part)"
        lines.append(f"| {res.claim.statement} | {res.claim.paper} | "
                     f"{'<br>'.join(numbers)} | **{verdict}** |")
    return "\n".join(lines)


def describe_hyperparameters(hyperparameters: Mapping[str, Any]) -> str:
    """``'batch_size=64, epochs=20, ...'``: the set values, sorted by name."""
    return ", ".join(f"{k}={v}" for k, v in sorted(hyperparameters.items()) if v is not None)


def _title(g: GroupSummary) -> str:
    return f"{g.model} on {g.dataset}"


def write_report(out_dir: str | os.PathLike, records: Sequence[Mapping[str, Any]] | None = None,
                 *, command: str | None = None, plots: bool = True,
                 baseline: str = "max") -> Path:
    """Writes ``out_dir/report.md`` (and the PNG plots it embeds).

    Args:
        out_dir: the ablation's output directory.
        records: the runs to report; default: every run in ``out_dir/results.jsonl``.
        command: a command line to quote in the report, besides the commands recorded with
            the runs.
        plots: draw the plots with :func:`cnnjax.ablation.plot_ablation` (needs matplotlib; when
            it is not installed the report says so and keeps the tables).
        baseline: the pool spec every variant is compared with, seed by seed.

    Returns:
        The path of the report.

    Raises:
        TypeError: if ``baseline`` is not a string.
    """
    if not isinstance(baseline, str):
        raise TypeError(f"write_report: baseline must be a pool spec string, got {baseline!r}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if records is None:
        records = load_results(out_dir)
    groups = summarize(records)
    commands = list(dict.fromkeys(
        ([command] if command else []) + [r["command"] for r in records if r.get("command")]))
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
    runs = sum(len(r.seeds) for g in groups for r in g.rows)
    cells = f"{len(groups)} cell{'s' if len(groups) != 1 else ''}"
    parts += [f"{runs} finished runs in {cells}; written {now}. {METRICS_NOTE}", "",
              f"How to read the tables: {HOW_TO_READ}", ""]
    if any(_claims.matches(name, r.pool) for g in groups for r in g.rows
           for name in ("mixed", "stochastic_mixed")):
        parts += [_claims.mixed_pooling_note(), ""]
    if plot_note:
        parts += [plot_note, ""]
    for g in groups:
        parts += [f"## {_title(g)}", "",
                  f"Hyperparameters: {describe_hyperparameters(g.hyperparameters)}.", "",
                  format_table(g), "",
                  f"Paired comparison with `{baseline}` ({COMPARISON_NOTE}):", "",
                  format_comparison(g, baseline), ""]
        for p in sorted(images.get(g.slug, []), key=lambda p: p.name):
            parts += [f"![{p.stem}]({p.name})", ""]
    if groups:
        parts += ["## Published claims", "", CLAIMS_NOTE, ""]
        for g in groups:
            if len(groups) > 1:
                hp = describe_hyperparameters(g.hyperparameters)
                parts += [f"### {_title(g)} ({hp})", ""]
            parts += [format_claims(g), ""]
    path = out_dir / REPORT_FILE
    _atomic_write(path, "\n".join(parts))
    return path
