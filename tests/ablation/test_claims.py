"""Tests of cnnjax/ablation/claims.py: every verdict on synthetic records (no training)."""
from __future__ import annotations

import dataclasses

import pytest

from cnnjax.ablation import claims, stats, summarize
from cnnjax.ablation.claims import CLAIMS, Claim, Comparison, evaluate, evaluate_claims

HP = {"epochs": 1, "batch_size": 32, "learning_rate": 0.001}


def _record(pool, seed, acc, consistency=None, loss=1.0):
    r = {"pool": pool, "model": "lenet5", "dataset": "digits", "seed": seed,
         "hyperparameters": HP, "params": 10, "test_accuracy": acc, "test_loss": loss,
         "seconds_per_epoch": 0.1,
         "history": [{"epoch": 1, "test_accuracy": acc, "test_loss": loss}]}
    if consistency is not None:
        r["consistency"] = consistency
    return r


def _group(table, consistency=None):
    """``table``: {pool: [accuracy per seed]}; ``consistency``: the same for consistency."""
    records = []
    for pool, accs in table.items():
        for seed, acc in enumerate(accs):
            cons = None if consistency is None else consistency[pool][seed]
            records.append(_record(pool, seed, acc, cons))
    (group,) = summarize(records)
    return group


def _claim(paper_start):
    return next(c for c in CLAIMS if c.paper.startswith(paper_start))


NOISE = (0.000, 0.004, -0.003, 0.002, -0.002)  # the seed's share, common to all variants


def _seeds(mean, jitter=(0.0, 0.001, -0.001, 0.0005, -0.0005)):
    return [mean + n + j for n, j in zip(NOISE, jitter)]


def test_the_table_holds_the_published_claims():
    papers = [c.paper.split(",")[0] for c in CLAIMS]
    assert papers == ["Zeiler & Fergus 2013", "Graham 2014", "Lee et al. 2016", "Zhang 2019",
                      "Stergiou et al. 2021"]
    zeiler = _claim("Zeiler")
    assert zeiler.comparisons == (Comparison("stochastic", "max"), Comparison("max", "avg"))
    assert {c.metric for c in _claim("Zhang").comparisons} == {"consistency"}


def test_reproduced():
    group = _group({"max": _seeds(0.90), "blur": _seeds(0.89), "maxblur": _seeds(0.91)},
                   {"max": _seeds(0.80), "blur": _seeds(0.88), "maxblur": _seeds(0.86)})
    res = evaluate(_claim("Zhang"), group)
    assert res.verdict == "reproduced" and res.untested == ()
    assert [(c.variant, c.reference, c.metric) for c in res.tested] == [
        ("blur", "max", "consistency"), ("maxblur", "max", "consistency")]
    assert all(c.significant and c.better for c in res.tested)
    assert res.tested[0].diff.mean == pytest.approx(0.08)


def test_contradicted_when_one_comparison_goes_the_other_way():
    # max beats avg as claimed, but stochastic is clearly worse than max.
    group = _group({"max": _seeds(0.90), "avg": _seeds(0.85), "stochastic": _seeds(0.80)})
    res = evaluate(_claim("Zeiler"), group)
    assert res.verdict == "contradicted"
    stoch, max_avg = res.tested
    assert stoch.significant and stoch.better is False
    assert max_avg.significant and max_avg.better is True


def test_inconclusive_when_within_noise():
    group = _group({"max": [0.90, 0.95, 0.92], "avg": [0.88, 0.97, 0.90],
                    "soft": [0.93, 0.91, 0.94]})
    res = evaluate(_claim("Stergiou"), group)
    assert res.verdict == "inconclusive"
    assert not any(c.significant for c in res.tested)


def test_holm_over_the_claims_comparisons_decides():
    # Each comparison alone has p < 0.05 (0.037 and 0.044), but the claim makes two:
    # Holm's smallest adjusted p is 2 * 0.037 > 0.05, so the claim is not reproduced.
    soft = [0.60, 0.62, 0.65]
    group = _group({"max": [0.55, 0.55, 0.55],
                    "avg": [s - d for s, d in zip(soft, (0.05, 0.06, 0.10))], "soft": soft})
    res = evaluate(_claim("Stergiou"), group)
    assert [round(c.p, 3) for c in res.tested] == [0.037, 0.044]
    assert [round(c.p_holm, 3) for c in res.tested] == [0.074, 0.074]
    assert res.verdict == "inconclusive"


def test_not_in_this_study_and_not_recorded():
    group = _group({"max": _seeds(0.9), "avg": _seeds(0.8)})
    res = evaluate(_claim("Graham"), group)
    assert res.verdict == "not in this study" and res.tested == ()
    assert res.untested == ("fractional > max (test accuracy): no `fractional` runs",)
    # Both variants present, but an older results file without consistency.
    group = _group({"max": _seeds(0.9), "blur": _seeds(0.8)})
    res = evaluate(_claim("Zhang"), group)
    assert res.verdict == "not in this study"
    assert res.untested[0] == "blur > max (consistency): `consistency` not recorded for `blur`"


def test_tested_in_part_and_every_spec_of_a_method_counts():
    group = _group({"max": _seeds(0.80), "avg": _seeds(0.75), "mixed:alpha=0.5": _seeds(0.85),
                    "mixed:learn": _seeds(0.86), "stochastic_mixed": _seeds(0.70)})
    res = evaluate(_claim("Lee"), group)
    assert [(c.variant, c.reference) for c in res.tested] == [
        ("mixed:alpha=0.5", "max"), ("mixed:learn", "max"),
        ("mixed:alpha=0.5", "avg"), ("mixed:learn", "avg")]  # not stochastic_mixed
    assert res.verdict == "reproduced"
    assert [u.split(":")[0] for u in res.untested] == ["gated > max (test accuracy)",
                                                       "gated > avg (test accuracy)"]


def test_one_seed_is_inconclusive():
    group = _group({"max": [0.5], "fractional": [0.9]})
    res = evaluate(_claim("Graham"), group)
    assert res.verdict == "inconclusive" and res.tested[0].p is None


def test_a_user_extends_the_table():
    mine = Claim("Me 2026", "lp:p=3 has a lower loss than max",
                 (Comparison("lp:p=3", "max", "test_loss"),))
    records = [_record(p, s, 0.9, loss=loss + 0.01 * s)
               for p, loss in (("max", 0.5), ("lp:p=3", 0.4), ("lp:learn", 0.9))
               for s in range(3)]
    (group,) = summarize(records)
    results = evaluate_claims(group, CLAIMS + (mine,))
    assert [r.claim for r in results][-1] is mine
    assert results[-1].verdict == "reproduced"
    assert [c.variant for c in results[-1].tested] == ["lp:p=3"]  # an exact spec
    assert {r.verdict for r in results[:-1]} == {"not in this study"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.paper = "x"


def test_comparison_metric_must_be_directional():
    with pytest.raises(ValueError, match=r"Comparison: metric must be one a variant can win "
                                         r"on, got 'params'\."):
        Comparison("a", "b", "params")
    with pytest.raises(ValueError, match=r"metric: name must be one of"):
        Comparison("a", "b", "accuracy")


def test_verdicts_and_matching():
    assert claims.verdict([]) == "not in this study"
    assert claims.matches("mixed", "mixed:learn")
    assert not claims.matches("mixed", "stochastic_mixed")
    assert claims.matches("lp:p=3", "lp:p=3") and not claims.matches("lp:p=3", "lp:learn")
    assert not claims.matches("max", "not-a-spec")
    assert set(claims.VERDICTS) == {"reproduced", "contradicted", "inconclusive",
                                    "not in this study"}
    note = claims.mixed_pooling_note()
    assert "`mixed` is" in note and "Lee et al. 2016" in note
    assert "`stochastic_mixed` is" in note and "Yu et al. 2014" in note
    assert stats.ALPHA == 0.05
