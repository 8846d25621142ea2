"""Plots of the pooling ablation study, drawn headless with matplotlib.

Two PNGs per (model, dataset) study:

* ``accuracy_<slug>.png`` — final test accuracy per pool variant, mean over seeds with the
  sample standard deviation as error bars;
* ``curves_<slug>.png`` — test accuracy per epoch for every variant, mean over seeds (the
  shaded band is ± one std).

``<slug>`` is :attr:`cnnjax.ablation.GroupSummary.slug` (``<model>_<dataset>``), so the
report can embed the files it finds. matplotlib is imported only when drawing, and figures
are rendered by the Agg canvas without pyplot, so nothing needs a display and importing
this module does not need matplotlib.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cnnjax.ablation.results import load_results
from cnnjax.ablation.summary import GroupSummary, summarize


def _style(i: int):
    # Twelve variants exceed the 10-colour cycle: after ten, colours repeat with a dashed
    # line, so every curve of the default study stays distinguishable.
    import matplotlib

    return matplotlib.colormaps["tab10"](i % 10), ("-", "--", ":")[(i // 10) % 3]


def _figure(size: tuple[float, float]):
    # A bare Figure renders through the Agg canvas without pyplot: no display, no global
    # backend switch, and nothing left open in a user's pyplot session.
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=100)


def _accuracy_figure(group: GroupSummary, path: Path) -> Path:
    rows = group.rows
    names = [r.pool for r in rows]
    means = [100 * r.accuracy_mean for r in rows]
    stds = [100 * r.accuracy_std for r in rows]
    fig = _figure((7.0, 0.42 * len(rows) + 1.6))
    ax = fig.subplots()
    y = range(len(rows))
    ax.barh(list(y), means, xerr=stds, color=[_style(i)[0] for i in y], capsize=3,
            edgecolor="black", linewidth=0.5)
    ax.set_yticks(list(y), [f"{n}  {m:.2f} ± {sd:.2f}" for n, m, sd in zip(names, means, stds)],
                  fontsize=8)
    ax.invert_yaxis()  # first variant of the grid on top, as in the report's table
    lo = min(m - s for m, s in zip(means, stds))
    hi = max(m + s for m, s in zip(means, stds))
    # Zoom on the spread: differences between pools are often a few points near the top.
    pad = max(1.0, 0.2 * (hi - lo))
    ax.set_xlim(max(0.0, lo - pad), min(100.0, hi + pad))
    n = max(len(r.seeds) for r in rows)
    ax.set_xlabel(f"final test accuracy (%), mean ± std over {n} seed{'s' if n > 1 else ''}")
    ax.set_title(f"{group.model} on {group.dataset}: pooling variants")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _curves_figure(group: GroupSummary, path: Path) -> Path:
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    n_epochs = min(len(r.curve_mean) for r in group.rows)
    # Left: whole training; right: the second half zoomed in, where the variants have
    # converged and differ by fractions of a point that the full scale hides.
    zoom = n_epochs >= 4
    fig = _figure((13.0, 4.8) if zoom else (7.5, 4.8))
    axes = fig.subplots(1, 2 if zoom else 1, squeeze=False)[0]
    first = n_epochs // 2 + 1
    for i, r in enumerate(group.rows):
        color, ls = _style(i)
        mean = 100 * np.asarray(r.curve_mean)
        std = 100 * np.asarray(r.curve_std)
        epochs = np.arange(1, len(mean) + 1)
        for ax, sl in zip(axes, (slice(None), slice(first - 1, None))):
            ax.plot(epochs[sl], mean[sl], color=color, linestyle=ls, label=r.pool,
                    linewidth=1.5, marker="o" if len(mean) == 1 else None)
            if len(r.seeds) > 1 and ax is axes[0]:  # bands would bury the zoomed lines
                ax.fill_between(epochs[sl], (mean - std)[sl], (mean + std)[sl], color=color,
                                alpha=0.10, linewidth=0)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    n = max(len(r.seeds) for r in group.rows)
    axes[0].set_ylabel(f"test accuracy (%), mean over {n} seed{'s' if n > 1 else ''}")
    axes[0].set_title(f"{group.model} on {group.dataset}: test accuracy during training "
                      f"(band: ± 1 std)")
    if zoom:
        # Limits from the bulk of the curves: a single diverging epoch (a spike of one seed)
        # may leave the panel rather than flatten everything else.
        tail = np.concatenate([100 * np.asarray(r.curve_mean[first - 1:n_epochs])
                               for r in group.rows])
        final = [100 * r.curve_mean[n_epochs - 1] for r in group.rows]
        lo, hi = min(np.percentile(tail, 5), min(final)), tail.max()
        pad = max(0.25, 0.1 * (hi - lo))
        axes[1].set_ylim(lo - pad, min(100.0 + pad, hi + pad))
        axes[1].set_title(f"epochs {first}-{n_epochs}, zoomed")
        axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        axes[0].legend(fontsize=8, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_ablation(results: str | os.PathLike | Iterable[Mapping[str, Any]],
                  out_dir: str | os.PathLike) -> list[Path]:
    """Draws the ablation plots as PNG files.

    Args:
        results: a ``results.jsonl`` path, an ablation output directory holding one, or the
            records themselves (dicts as written by :func:`cnnjax.ablation.run_ablation`).
        out_dir: directory for the PNGs (created).

    Returns:
        The paths written: ``accuracy_<slug>.png`` and ``curves_<slug>.png`` per
        (model, dataset) study, in the order of the studies.

    Raises:
        ValueError: if there are no finished runs to plot.

    Example:
        >>> plot_ablation("runs/ablation/results.jsonl", "runs/ablation")  # doctest: +SKIP
        [PosixPath('runs/ablation/accuracy_lenet5_digits.png'), ...]
    """
    if isinstance(results, (str, os.PathLike)):
        source = str(results)
        records = load_results(results)
    else:
        source = "the records given"
        records = list(results)
    groups = summarize(records)
    if not groups:
        raise ValueError(f"plot_ablation: results must hold at least one finished run, "
                         f"got none in {source}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for g in groups:
        paths.append(_accuracy_figure(g, out_dir / f"accuracy_{g.slug}.png"))
        paths.append(_curves_figure(g, out_dir / f"curves_{g.slug}.png"))
    return paths
