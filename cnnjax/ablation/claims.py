"""Published claims about pooling, checked against a study's own runs.

:data:`CLAIMS` is the table: each :class:`Claim` is a paper's finding written as pairwise
comparisons ("variant a beats variant b on metric m"). For one study cell, :func:`evaluate`
tests every comparison whose two variants the cell holds with a paired t-test over their
shared seeds (:func:`cnnjax.ablation.stats.paired`), adjusts the claim's p-values together
with Holm's method, and gives a verdict:

* ``'reproduced'`` — every tested comparison is significant (Holm p < 0.05) in the claimed
  direction;
* ``'contradicted'`` — some comparison is significant in the opposite direction;
* ``'inconclusive'`` — neither (differences within the noise of the seeds);
* ``'not in this study'`` — the cell holds no comparison's pair of variants (or does not
  record the metric).

A claim can be tested in part (``ClaimResult.untested`` names what is missing). Variants are
named by registry method (``'mixed'`` matches ``'mixed'``, ``'mixed:alpha=0.5'`` and
``'mixed:learn'``: each spec of the cell counts as a pair of its own) or by an exact spec.
To check another finding, add a :class:`Claim` to a copy of the table::

    my_claims = CLAIMS + (Claim("Me 2026", "lp:learn beats max",
                                (Comparison("lp:learn", "max"),)),)
    evaluate_claims(group, my_claims)
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from cnnjax.ablation.stats import ALPHA, Paired, adjust, metric, paired
from cnnjax.ablation.summary import GroupSummary
from cnnjax.layers import pool_specs

VERDICTS = ("reproduced", "contradicted", "inconclusive", "not in this study")


@dataclasses.dataclass(frozen=True)
class Comparison:
    """``better`` beats ``worse`` on ``metric`` (in the metric's direction: higher accuracy
    or consistency, lower loss).

    Attributes:
        better, worse: registry method names (``'max'``) or exact pool specs.
        metric: a record key of :data:`cnnjax.ablation.stats.METRICS`.
    """

    better: str
    worse: str
    metric: str = "test_accuracy"

    def __post_init__(self):
        if metric(self.metric).higher_is_better is None:
            raise ValueError(f"Comparison: metric must be one a variant can win on, "
                             f"got {self.metric!r}.")

    def __str__(self) -> str:
        sign = ">" if metric(self.metric).higher_is_better else "<"
        return f"{self.better} {sign} {self.worse} ({metric(self.metric).label})"


@dataclasses.dataclass(frozen=True)
class Claim:
    """A published finding: the paper, the finding in words, and its comparisons."""

    paper: str
    statement: str
    comparisons: tuple[Comparison, ...]


#: The published claims the report checks, oldest first.
CLAIMS: tuple[Claim, ...] = (
    Claim("Zeiler & Fergus 2013, Stochastic pooling for regularization of deep CNNs",
          "stochastic pooling has lower test error than max pooling, max lower than average",
          (Comparison("stochastic", "max"), Comparison("max", "avg"))),
    Claim("Graham 2014, Fractional max-pooling",
          "fractional max pooling beats max pooling",
          (Comparison("fractional", "max"),)),
    Claim("Lee et al. 2016, Generalizing pooling functions in CNNs: mixed, gated, and tree",
          "mixed and gated pooling beat both max and average pooling",
          (Comparison("mixed", "max"), Comparison("mixed", "avg"),
           Comparison("gated", "max"), Comparison("gated", "avg"))),
    Claim("Zhang 2019, Making convolutional networks shift-invariant again",
          "anti-aliased pooling (blur, max-blur) is more shift-consistent than max pooling",
          (Comparison("blur", "max", "consistency"), Comparison("maxblur", "max", "consistency"))),
    Claim("Stergiou et al. 2021, Refining activation downsampling with SoftPool",
          "SoftPool beats max and average pooling",
          (Comparison("soft", "max"), Comparison("soft", "avg"))),
)


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    """A claim checked on one study cell.

    Attributes:
        claim: the claim.
        verdict: one of :data:`VERDICTS`.
        tested: the paired comparisons made (``variant`` is the claimed better one), with
            Holm-adjusted p-values over the claim.
        untested: the comparisons that could not be made, each with the reason.
    """

    claim: Claim
    verdict: str
    tested: tuple[Paired, ...]
    untested: tuple[str, ...]


def _method(spec: str) -> str | None:
    try:
        return pool_specs.parse(spec).method.name
    except (TypeError, ValueError):
        return None


def matches(name: str, spec: str) -> bool:
    """Whether a claim's variant ``name`` (method name or exact spec) covers pool ``spec``."""
    return spec == name or _method(spec) == name


def verdict(tested: Sequence[Paired]) -> str:
    """The verdict of a claim's Holm-adjusted comparisons (see the module docstring)."""
    if not tested:
        return "not in this study"
    if any(c.significant and c.better is False for c in tested):
        return "contradicted"
    if all(c.significant and c.better for c in tested):
        return "reproduced"
    return "inconclusive"


def evaluate(claim: Claim, group: GroupSummary, *, alpha: float = ALPHA) -> ClaimResult:
    """Checks one claim on one study cell (see the module docstring for the verdicts)."""
    pools = [r.pool for r in group.rows]
    tested: list[Paired] = []
    untested: list[str] = []
    for comp in claim.comparisons:
        better = [p for p in pools if matches(comp.better, p)]
        worse = [p for p in pools if matches(comp.worse, p)]
        missing = [n for n, found in ((comp.better, better), (comp.worse, worse)) if not found]
        if missing:
            untested.append(f"{comp}: no {' or '.join(f'`{n}`' for n in missing)} runs")
            continue
        values = group.values(comp.metric)
        for a in better:
            for b in worse:
                if a not in values or b not in values:
                    untested.append(f"{comp}: `{comp.metric}` not recorded for "
                                    f"`{a if a not in values else b}`")
                    continue
                tested.append(paired(values[a], values[b], names=(a, b),
                                     metric_name=comp.metric, alpha=alpha))
    tested = adjust(tested)
    return ClaimResult(claim, verdict(tested), tuple(tested), tuple(untested))


def evaluate_claims(group: GroupSummary, claims: Iterable[Claim] | None = None, *,
                    alpha: float = ALPHA) -> list[ClaimResult]:
    """:func:`evaluate` for every claim (default: :data:`CLAIMS`), in the table's order."""
    return [evaluate(c, group, alpha=alpha) for c in (CLAIMS if claims is None else claims)]


def mixed_pooling_note() -> str:
    """Which "mixed pooling" is which, from the registry's own descriptions of the two."""
    mixed = pool_specs.parse("mixed").method.summary
    drawn = pool_specs.parse("stochastic_mixed").method.summary
    return ('Two papers call their method "mixed pooling": `mixed` is ' + mixed
            + "; `stochastic_mixed` is " + drawn + ".")
