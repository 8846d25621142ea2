"""Aggregating the finished runs of a study: one row per pool variant, over seeds."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from cnnjax.ablation.results import _canonical, _slug, hyperparameter_hash, run_key


@dataclasses.dataclass(frozen=True)
class PoolSummary:
    """One row of the report: a pool variant aggregated over seeds."""

    pool: str
    seeds: tuple[int, ...]
    accuracy_mean: float
    accuracy_std: float
    loss_mean: float
    loss_std: float
    seconds_per_epoch: float
    params: int
    curve_mean: tuple[float, ...]  # test accuracy per epoch, mean over seeds
    curve_std: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    """All pool variants of one (model, dataset, hyperparameters) study."""

    model: str
    dataset: str
    hyperparameters: dict
    slug: str  # file-name stem shared by the report and the plots
    rows: tuple[PoolSummary, ...]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    # Sample std (ddof=1) across seeds, as papers report it; one seed has no spread.
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


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
        rows = []
        for pool, runs in pools.items():
            runs = sorted(runs, key=lambda r: int(r["seed"]))
            acc = _mean_std([r["test_accuracy"] for r in runs])
            loss = _mean_std([r["test_loss"] for r in runs])
            n_epochs = min(len(r["history"]) for r in runs)
            curves = np.asarray([[h["test_accuracy"] for h in r["history"][:n_epochs]]
                                 for r in runs], dtype=np.float64)
            curve_std = (curves.std(axis=0, ddof=1) if len(runs) > 1
                         else np.zeros(n_epochs))
            rows.append(PoolSummary(
                pool=pool,
                seeds=tuple(int(r["seed"]) for r in runs),
                accuracy_mean=acc[0], accuracy_std=acc[1],
                loss_mean=loss[0], loss_std=loss[1],
                seconds_per_epoch=float(np.mean([r["seconds_per_epoch"] for r in runs])),
                params=int(runs[0]["params"]),
                curve_mean=tuple(float(v) for v in curves.mean(axis=0)),
                curve_std=tuple(float(v) for v in curve_std),
            ))
        out.append(GroupSummary(model, dataset, hyperparameters, slug, tuple(rows)))
    return out
