"""Aggregating the finished runs of a study: one row per pool variant, over seeds.

Every metric of :data:`cnnjax.ablation.stats.METRICS` a run recorded is kept per seed
(:attr:`PoolSummary.values`) and summarised as a mean with its 95% Student-t confidence
interval (:attr:`PoolSummary.metrics`); a metric a results file does not record (older files
lack ``consistency`` and the other later fields) is simply absent.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from cnnjax.ablation.results import _canonical, _slug, hyperparameter_hash, run_key
from cnnjax.ablation.stats import METRICS, Estimate, mean_ci
from cnnjax.layers import pool_specs

#: The family of a pool spec the registry does not know (a spec of a newer version).
OTHER_FAMILY = "other"


def family_of(pool: str) -> str:
    """The registry family (:data:`cnnjax.layers.pool_specs.FAMILIES`) of a pool spec.

    Example:
        >>> family_of("mixed:learn")
        'max-average mix'
    """
    try:
        return pool_specs.parse(pool).method.family
    except (TypeError, ValueError):
        return OTHER_FAMILY


@dataclasses.dataclass(frozen=True)
class PoolSummary:
    """One row of the report: a pool variant aggregated over seeds.

    Attributes:
        pool: the pool spec.
        family: its registry family (:func:`family_of`).
        seeds: the seeds recorded, ascending.
        values: ``{metric: {seed: value}}`` for every metric at least one seed recorded.
        metrics: ``{metric: Estimate}`` over the seeds that recorded it.
        params: parameter count (of the first seed; the same for all).
        curve_mean, curve_low, curve_high: test accuracy per epoch, mean over seeds and its
            95% confidence interval (equal to the mean for one seed).
        curve_std: its sample standard deviation per epoch (0 for one seed).
    """

    pool: str
    family: str
    seeds: tuple[int, ...]
    values: Mapping[str, Mapping[int, float]]
    metrics: Mapping[str, Estimate]
    params: int
    curve_mean: tuple[float, ...]
    curve_low: tuple[float, ...]
    curve_high: tuple[float, ...]
    curve_std: tuple[float, ...]

    @property
    def accuracy_mean(self) -> float:
        return self.metrics["test_accuracy"].mean

    @property
    def accuracy_std(self) -> float:
        return self.metrics["test_accuracy"].std

    @property
    def loss_mean(self) -> float:
        return self.metrics["test_loss"].mean

    @property
    def loss_std(self) -> float:
        return self.metrics["test_loss"].std

    @property
    def seconds_per_epoch(self) -> float:
        return self.metrics["seconds_per_epoch"].mean


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    """All pool variants of one (model, dataset, hyperparameters) study cell."""

    model: str
    dataset: str
    hyperparameters: dict
    slug: str  # file-name stem shared by the report and the plots
    rows: tuple[PoolSummary, ...]

    def values(self, metric: str) -> dict[str, dict[int, float]]:
        """``{pool: {seed: value}}`` of one metric, for the variants that recorded it."""
        return {r.pool: dict(r.values[metric]) for r in self.rows if metric in r.values}

    def has(self, metric: str) -> bool:
        """Whether any variant of the cell recorded ``metric``."""
        return any(metric in r.values for r in self.rows)


def _number(value: Any) -> float | None:
    # None (not measured, e.g. peak memory on CPU) and non-numbers are "not recorded";
    # NaN (a diverged run) is kept, so a broken run shows in the mean instead of vanishing.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _row(pool: str, runs: list[Mapping[str, Any]]) -> PoolSummary:
    runs = sorted(runs, key=lambda r: int(r["seed"]))
    values: dict[str, dict[int, float]] = {}
    for m in METRICS:
        per_seed = {int(r["seed"]): _number(r.get(m.name)) for r in runs}
        per_seed = {s: v for s, v in per_seed.items() if v is not None}
        if per_seed:
            values[m.name] = per_seed
    n_epochs = min(len(r["history"]) for r in runs)
    curves = np.asarray([[h["test_accuracy"] for h in r["history"][:n_epochs]]
                         for r in runs], dtype=np.float64).reshape(len(runs), n_epochs)
    bands = [mean_ci(curves[:, e]) for e in range(n_epochs)]
    return PoolSummary(
        pool=pool, family=family_of(pool), seeds=tuple(int(r["seed"]) for r in runs),
        values=values, metrics={k: mean_ci(list(v.values())) for k, v in values.items()},
        params=int(runs[0]["params"]),
        curve_mean=tuple(b.mean for b in bands),
        curve_low=tuple(b.mean if b.low is None else b.low for b in bands),
        curve_high=tuple(b.mean if b.high is None else b.high for b in bands),
        curve_std=tuple(b.std for b in bands),
    )


def summarize(records: Iterable[Mapping[str, Any]]) -> list[GroupSummary]:
    """Aggregates finished runs per (model, dataset, hyperparameters) and pool.

    Rows keep the order in which pools first appear in ``records`` (the grid's order);
    a run recorded twice counts once. The slug is ``<model>_<dataset>``, with the
    hyperparameter hash appended when several hyperparameter sets share a model and dataset.
    """
    seen: set[tuple] = set()
    groups: dict[tuple, dict[str, list[Mapping[str, Any]]]] = {}
    for r in records:
        key = run_key(r)
        if key in seen:
            continue
        seen.add(key)
        gkey = (r["model"], r["dataset"], _canonical(r["hyperparameters"]))
        groups.setdefault(gkey, {}).setdefault(r["pool"], []).append(r)
    per_pair: dict[tuple, int] = {}
    for model, dataset, _ in groups:
        per_pair[(model, dataset)] = per_pair.get((model, dataset), 0) + 1
    out = []
    for (model, dataset, hp), pools in groups.items():
        hyperparameters = json.loads(hp)
        slug = f"{_slug(model)}_{_slug(dataset)}"
        if per_pair[(model, dataset)] > 1:
            slug += "_" + hyperparameter_hash(hyperparameters)
        rows = tuple(_row(pool, runs) for pool, runs in pools.items())
        out.append(GroupSummary(model, dataset, hyperparameters, slug, rows))
    return out

