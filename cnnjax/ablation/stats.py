"""Statistics of an ablation study: confidence intervals over seeds and paired comparisons.

Every variant of a study cell (one model, dataset and set of hyperparameters) is trained with
the same seeds, and a seed fixes the initialisation and the data order, so two variants' runs
of one seed are a matched pair. Differences are therefore tested *paired by seed*
(Student's paired t-test, :func:`scipy.stats.ttest_rel`), which removes the seed-to-seed
spread the variants share, and the p-values of the variants of one cell, all compared with
the same baseline, are adjusted for multiple testing with Holm's step-down method
(:func:`holm`; Holm 1979, "A simple sequentially rejective multiple test procedure").

Example:
    >>> est = mean_ci([0.90, 0.95, 0.92])
    >>> round(est.mean, 4), round(est.half_width, 4)
    (0.9233, 0.0625)
    >>> r = compare({"max": {0: 0.90, 1: 0.95, 2: 0.92},
    ...              "avg": {0: 0.85, 1: 0.80, 2: 0.86}}, "max")["avg"]
    >>> round(r.diff.mean, 4), r.significant
    (-0.0867, False)
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

#: Significance level of every test in the report.
ALPHA = 0.05

#: Confidence level of every interval in the report.
CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Metric:
    """A per-run metric of the results file and how the report shows it.

    Attributes:
        name: the record's key (``'test_accuracy'``).
        label: the column heading (``'test accuracy'``).
        unit: shown after the label (``'%'``, ``'MiB'``; ``''`` for none).
        scale: factor from the recorded value to the shown one (100 for fractions shown in %).
        digits: decimals shown.
        higher_is_better: True or False for metrics a variant can win on; None for
            descriptive ones (parameter count).
    """

    name: str
    label: str
    unit: str = ""
    scale: float = 1.0
    digits: int = 2
    higher_is_better: bool | None = True

    @property
    def heading(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


#: The metrics a run records, in the report's column order. Older results files lack the
#: later ones (``consistency``, ``shifted_accuracy``, ``steps_per_second``,
#: ``peak_memory_bytes``); ``peak_memory_bytes`` is None where the backend does not report it.
METRICS: tuple[Metric, ...] = (
    Metric("test_accuracy", "test accuracy", "%", 100.0, 2, True),
    Metric("consistency", "consistency", "%", 100.0, 2, True),
    Metric("shifted_accuracy", "shifted accuracy", "%", 100.0, 2, True),
    Metric("test_loss", "test loss", "", 1.0, 4, False),
    Metric("steps_per_second", "steps/s", "", 1.0, 1, True),
    Metric("seconds_per_epoch", "s/epoch", "", 1.0, 3, False),
    Metric("params", "parameters", "", 1.0, 0, None),
    Metric("peak_memory_bytes", "peak memory", "MiB", 1.0 / 2**20, 1, False),
)

_BY_NAME = {m.name: m for m in METRICS}


def metric(name: str) -> Metric:
    """The :class:`Metric` called ``name``; a ``ValueError`` names the known ones."""
    if name not in _BY_NAME:
        raise ValueError(f"metric: name must be one of {', '.join(map(repr, _BY_NAME))}, "
                         f"got {name!r}.")
    return _BY_NAME[name]


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Mean of ``n`` values and its Student-t confidence interval.

    ``low``/``high`` are None when ``n < 2`` (one seed says nothing about the spread).
    """

    mean: float
    std: float  # sample standard deviation (ddof=1); 0.0 for n < 2
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        """``high - mean`` (the interval is symmetric), or None without an interval."""
        return None if self.high is None else self.high - self.mean


def _t_quantile(n: int, confidence: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, n - 1))


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean and confidence interval of values that are independent draws (one per seed).

    ``mean ± t_{(1+c)/2, n-1} · s / √n`` with ``s`` the sample standard deviation.

    Args:
        values: one value per seed.
        confidence: the interval's coverage, in (0, 1).

    Returns:
        An :class:`Estimate` (no interval for fewer than two values).

    Raises:
        ValueError: if ``values`` is empty or ``confidence`` is outside (0, 1).
    """
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError("mean_ci: values must hold at least one number, got none.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"mean_ci: confidence must be in (0, 1), got {confidence!r}.")
    mean = float(a.mean())
    if a.size < 2:
        return Estimate(mean, 0.0, None, None, int(a.size))
    std = float(a.std(ddof=1))
    half = _t_quantile(a.size, confidence) * std / math.sqrt(a.size)
    return Estimate(mean, std, mean - half, mean + half, int(a.size))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None entries are left out).

    With the ``m`` p-values sorted ascending, ``p_(1) ≤ … ≤ p_(m)``, the adjusted value is
    ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j))``; rejecting where ``p̃ < α`` keeps the
    family-wise error rate at ``α`` under any dependence between the tests.

    Example:
        >>> holm([0.01, 0.04, 0.03, None])
        [0.03, 0.06, 0.06, None]
    """
    order = sorted((i for i, p in enumerate(pvalues) if p is not None),
                   key=lambda i: pvalues[i])
    m = len(order)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


@dataclasses.dataclass(frozen=True)
class Paired:
    """A variant against a reference variant on one metric, paired by seed.

    Attributes:
        variant, reference: the pool specs; differences are ``variant − reference``.
        metric: the metric's record key.
        seeds: the seeds both have, which the comparison uses.
        unpaired: seeds only one of the two has (left out).
        diff: mean difference over ``seeds`` and its confidence interval.
        p: two-sided paired t-test p-value; None with fewer than two pairs (or a
            non-finite difference).
        p_holm: ``p`` adjusted over the comparison's family (:func:`holm`); None before
            adjustment or without ``p``.
        alpha: the significance level.
    """

    variant: str
    reference: str
    metric: str
    seeds: tuple[int, ...]
    unpaired: tuple[int, ...]
    diff: Estimate | None
    p: float | None
    p_holm: float | None = None
    alpha: float = ALPHA

    @property
    def significant(self) -> bool:
        """Holm-adjusted p below ``alpha``."""
        return self.p_holm is not None and self.p_holm < self.alpha

    @property
    def better(self) -> bool | None:
        """Whether the variant's mean beats the reference's (the metric's direction);
        None for a descriptive metric or no difference."""
        direction = metric(self.metric).higher_is_better
        if direction is None or self.diff is None or self.diff.mean == 0:
            return None
        return (self.diff.mean > 0) == direction


def paired(variant: Mapping[int, float], reference: Mapping[int, float], *,
           names: tuple[str, str] = ("variant", "reference"), metric_name: str = "test_accuracy",
           alpha: float = ALPHA, confidence: float = CONFIDENCE) -> Paired:
    """Paired comparison of two variants' per-seed values over the seeds both have.

    Args:
        variant, reference: ``{seed: value}``; seeds with value None count as missing.
        names: the two pool specs, recorded in the result.
        metric_name: the metric's record key, recorded in the result.
        alpha: significance level kept with the result.
        confidence: coverage of the difference's interval.

    Returns:
        A :class:`Paired` with ``p_holm`` unset (a single comparison is its own family:
        use :func:`compare` or :func:`adjust` for families).

    Differences that are all equal (identical runs, or equal up to round-off) have no
    spread for the t statistic: ``p`` is then 1 if they are zero and 0 otherwise.
    """
    a = {int(s): float(v) for s, v in variant.items() if v is not None}
    b = {int(s): float(v) for s, v in reference.items() if v is not None}
    seeds = tuple(sorted(a.keys() & b.keys()))
    unpaired = tuple(sorted(a.keys() ^ b.keys()))
    if not seeds:
        return Paired(names[0], names[1], metric_name, seeds, unpaired, None, None,
                      alpha=alpha)
    x = np.array([a[s] for s in seeds])
    y = np.array([b[s] for s in seeds])
    d = x - y
    diff = mean_ci(d, confidence)
    if len(seeds) < 2 or not np.all(np.isfinite(d)):
        return Paired(names[0], names[1], metric_name, seeds, unpaired, diff, None, alpha=alpha)
    # Round-off of the subtraction is ~eps·max|value|; a spread within a few dozen ulps is
    # no spread (and scipy would warn of catastrophic cancellation, not return a p-value).
    tol = 64 * np.finfo(np.float64).eps * max(float(np.abs(x).max()), float(np.abs(y).max()))
    if float(np.abs(d - d.mean()).max()) <= tol:
        p = 1.0 if abs(float(d.mean())) <= tol else 0.0
        const = Estimate(float(d.mean()), 0.0, float(d.mean()), float(d.mean()), len(seeds))
        return Paired(names[0], names[1], metric_name, seeds, unpaired, const, p, alpha=alpha)
    from scipy import stats

    p = float(stats.ttest_rel(x, y).pvalue)
    return Paired(names[0], names[1], metric_name, seeds, unpaired, diff, p, alpha=alpha)


def adjust(family: Sequence[Paired]) -> list[Paired]:
    """The comparisons with ``p_holm`` set by :func:`holm` over the whole family."""
    adjusted = holm([c.p for c in family])
    return [dataclasses.replace(c, p_holm=q) for c, q in zip(family, adjusted)]


def compare(values: Mapping[str, Mapping[int, float]], baseline: str, *,
            metric_name: str = "test_accuracy", alpha: float = ALPHA) -> dict[str, Paired]:
    """Every variant against ``baseline``, paired by seed, Holm-adjusted across variants.

    Args:
        values: ``{pool spec: {seed: value}}`` of one study cell and one metric.
        baseline: the reference pool spec (a key of ``values``).
        metric_name: the metric's record key.
        alpha: significance level.

    Returns:
        ``{pool spec: Paired}`` for every variant except the baseline, in ``values``' order;
        ``{}`` if ``baseline`` is not in ``values``.
    """
    if baseline not in values:
        return {}
    family = [paired(v, values[baseline], names=(name, baseline), metric_name=metric_name,
                     alpha=alpha)
              for name, v in values.items() if name != baseline]
    return {c.variant: c for c in adjust(family)}
