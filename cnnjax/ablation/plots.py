"""Plots of the pooling ablation study, drawn headless with matplotlib.

Up to three PNGs per study cell (one model, dataset and set of hyperparameters):

* ``accuracy_<slug>.png`` — final test accuracy of every seed (dots) with the mean and its
  95% confidence interval, one row per variant;
* ``consistency_<slug>.png`` — mean test accuracy against mean shift consistency per
  variant, with both 95% intervals as cross bars (only when the runs recorded consistency);
* ``curves_<slug>.png`` — test accuracy per epoch, mean over seeds with a 95% band.

Every figure colours a variant by its family (:data:`cnnjax.layers.pool_specs.FAMILIES`)
through one mapping, :func:`family_colour`, and has a legend of the families; axis limits are
computed from every plotted value, interval ends included, so nothing is clipped, and the
axis label states the range shown. ``<slug>`` is :attr:`cnnjax.ablation.GroupSummary.slug`,
so the report can embed the files it finds. matplotlib is imported only when drawing, and
figures are rendered by the Agg canvas without pyplot, so nothing needs a display and
importing this module does not need matplotlib.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cnnjax.ablation.results import load_results
from cnnjax.ablation.summary import OTHER_FAMILY, GroupSummary, PoolSummary, summarize
from cnnjax.layers.pool_specs import FAMILIES

_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def family_colour(family: str) -> tuple[float, float, float, float]:
    """The colour of a pooling family, the same in every figure (``tab10`` in
    :data:`~cnnjax.layers.pool_specs.FAMILIES` order; grey for an unknown family)."""
    import matplotlib

    if family not in FAMILIES:
        return (0.5, 0.5, 0.5, 1.0)
    return tuple(matplotlib.colormaps["tab10"](FAMILIES.index(family) % 10))


def _variant_styles(rows: Sequence[PoolSummary]) -> dict[str, tuple[Any, str, str]]:
    # Colour says the family; within a family, the n-th variant gets the n-th line style
    # and marker, so variants of one family stay distinguishable.
    rank: dict[str, int] = {}
    out = {}
    for r in rows:
        i = rank[r.family] = rank.get(r.family, -1) + 1
        out[r.pool] = (family_colour(r.family), _LINESTYLES[i % len(_LINESTYLES)],
                       _MARKERS[i % len(_MARKERS)])
    return out


def _family_legend(ax, rows: Sequence[PoolSummary], **kwargs) -> None:
    from matplotlib.lines import Line2D

    present = [f for f in (*FAMILIES, OTHER_FAMILY) if any(r.family == f for r in rows)]
    handles = [Line2D([], [], color=family_colour(f), marker="o", linestyle="", label=f)
               for f in present]
    ax.legend(handles=handles, title="family", fontsize=8, title_fontsize=8, **kwargs)


def _limits(values: Iterable[float | None], *, floor: float = 0.5) -> tuple[float, float]:
    """Axis limits holding every finite value, padded by 5% of the span (at least
    ``floor``) on each side."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    pad = max(floor, 0.05 * (hi - lo))
    return lo - pad, hi + pad


def _range(lim: tuple[float, float]) -> str:
    return f"axis {lim[0]:.1f} to {lim[1]:.1f}"


def _figure(size: tuple[float, float]):
    # A bare Figure renders through the Agg canvas without pyplot: no display, no global
    # backend switch, and nothing left open in a user's pyplot session.
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=100)


def _ci(row: PoolSummary, name: str, scale: float = 100.0) -> tuple[float, float, float] | None:
    est = row.metrics.get(name)
    if est is None:
        return None
    low = est.mean if est.low is None else est.low
    high = est.mean if est.high is None else est.high
    return scale * est.mean, scale * low, scale * high


def accuracy_figure(group: GroupSummary):
    """Dot plot: every seed's final test accuracy, the mean and its 95% CI, per variant."""
    rows = group.rows
    fig = _figure((7.5, 0.42 * len(rows) + 1.9))
    ax = fig.subplots()
    points: list[float] = []
    for y, r in enumerate(rows):
        colour = family_colour(r.family)
        seeds = r.values["test_accuracy"]
        # Seeds spread a little vertically so equal accuracies do not hide each other.
        offsets = [0.25 * (i - (len(seeds) - 1) / 2) / max(1, len(seeds) - 1)
                   for i in range(len(seeds))]
        xs = [100 * v for v in seeds.values()]
        ax.scatter(xs, [y + o for o in offsets], color=colour, s=16, alpha=0.7, zorder=2)
        mean, low, high = _ci(r, "test_accuracy")
        ax.errorbar([mean], [y], xerr=[[mean - low], [high - mean]], color="black",
                    marker="|", markersize=12, capsize=3, linewidth=1.2, zorder=3)
        points += xs + [low, high]
    labels = []
    for r in rows:
        est = r.metrics["test_accuracy"]
        hw = "" if est.half_width is None else f" ± {100 * est.half_width:.2f}"
        labels.append(f"{r.pool}  {100 * est.mean:.2f}{hw}")
    ax.set_yticks(list(range(len(rows))), labels, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first variant of the grid on top, as in the table
    lim = _limits(points)
    ax.set_xlim(*lim)
    n = max(len(r.seeds) for r in rows)
    ax.set_xlabel(f"final test accuracy (%), {_range(lim)}: dots = {n} seed"
                  f"{'s' if n > 1 else ''}, bar = mean and 95% CI", fontsize=9)
    ax.set_title(f"{group.model} on {group.dataset}: pooling variants")
    ax.grid(axis="x", alpha=0.3)
    _family_legend(ax, rows, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def consistency_figure(group: GroupSummary):
    """Mean test accuracy against mean shift consistency per variant, with 95% CI cross
    bars and each point labelled; None if no variant recorded consistency."""
    rows = [r for r in group.rows if "consistency" in r.metrics]
    if not rows:
        return None
    fig = _figure((9.5, 7.0))
    ax = fig.subplots()
    xs: list[float] = []
    ys: list[float] = []
    for i, r in enumerate(rows):
        cx, cxl, cxh = _ci(r, "consistency")
        ay, ayl, ayh = _ci(r, "test_accuracy")
        colour = family_colour(r.family)
        ax.errorbar([cx], [ay], xerr=[[cx - cxl], [cxh - cx]], yerr=[[ay - ayl], [ayh - ay]],
                    color=colour, marker="o", markersize=5, capsize=2, linewidth=0.8,
                    alpha=0.75)  # translucent: crossing bars of many variants stay readable
        # Labels alternate above and below their points, so neighbours' labels do not collide.
        ax.annotate(r.pool, (cx, ay), textcoords="offset points",
                    xytext=(4, 4 if i % 2 == 0 else -11), fontsize=8)
        xs += [cx, cxl, cxh]
        ys += [ay, ayl, ayh]
    xlim, ylim = _limits(xs), _limits(ys)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel(f"shift consistency (%), {_range(xlim)}")
    ax.set_ylabel(f"final test accuracy (%), {_range(ylim)}")
    ax.set_title(f"{group.model} on {group.dataset}: accuracy vs shift consistency "
                 "(mean, 95% CI)", fontsize=10)
    ax.grid(alpha=0.3)
    _family_legend(ax, rows, loc="best")
    fig.tight_layout()
    return fig


def curves_figure(group: GroupSummary):
    """Test accuracy per epoch, mean over seeds with its 95% CI band, per variant."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    styles = _variant_styles(group.rows)
    n_families = len({r.family for r in group.rows})
    fig = _figure((10.0, max(5.2, 0.19 * (len(group.rows) + n_families) + 2.0)))
    ax = fig.subplots()
    points: list[float] = []
    for r in group.rows:
        colour, ls, marker = styles[r.pool]
        mean, low, high = (100 * np.asarray(c) for c in (r.curve_mean, r.curve_low,
                                                          r.curve_high))
        epochs = np.arange(1, len(mean) + 1)
        ax.plot(epochs, mean, color=colour, linestyle=ls, label=r.pool, linewidth=1.5,
                marker=marker if len(mean) <= 12 else None, markersize=3)
        # An accuracy outside 0-100 % is impossible; the t interval of a few seeds is not
        # bounded, so its band is cut there (the tables give the interval as computed).
        low, high = np.clip(low, 0.0, 100.0), np.clip(high, 0.0, 100.0)
        if len(r.seeds) > 1:
            ax.fill_between(epochs, low, high, color=colour, alpha=0.08, linewidth=0)
        points += [*mean, *low, *high]
    lim = _limits(points)
    ax.set_ylim(*lim)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test accuracy (%), {_range(lim)}")
    ax.set_title(f"{group.model} on {group.dataset}: test accuracy during training "
                 "(mean over seeds, band: 95% CI within 0-100 %)", fontsize=10)
    ax.grid(alpha=0.3)
    variants = ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                         title="variant", title_fontsize=8)
    ax.add_artist(variants)  # a second legend would replace it otherwise
    _family_legend(ax, group.rows, loc="lower left", bbox_to_anchor=(1.01, 0.0))
    fig.tight_layout()
    return fig


def plot_ablation(results: str | os.PathLike | Iterable[Mapping[str, Any]],
                  out_dir: str | os.PathLike) -> list[Path]:
    """Draws the ablation plots as PNG files.

    Args:
        results: a ``results.jsonl`` path, an ablation output directory holding one, or the
            records themselves (dicts as written by :func:`cnnjax.ablation.run_ablation`).
        out_dir: directory for the PNGs (created).

    Returns:
        The paths written, per study cell in the order of the cells:
        ``accuracy_<slug>.png``, ``consistency_<slug>.png`` (when consistency was
        recorded) and ``curves_<slug>.png``.

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
        for kind, draw in (("accuracy", accuracy_figure), ("consistency", consistency_figure),
                           ("curves", curves_figure)):
            fig = draw(g)
            if fig is not None:
                path = out_dir / f"{kind}_{g.slug}.png"
                fig.savefig(path)
                paths.append(path)
    return paths
