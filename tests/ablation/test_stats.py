"""Tests of cnnjax/ablation/stats.py against hand-computed numbers.

The t quantiles and p-values below come from closed forms, not from scipy: with two degrees of
freedom Student's t has ``F(t) = 1/2 + t / (2·sqrt(2 + t²))``, so the two-sided p-value is
``1 − |t| / sqrt(2 + t²)`` and the 97.5% quantile is ``sqrt(2/(1/0.95² − 1))`` = 4.302652...
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from cnnjax.ablation import stats

T975_DF2 = math.sqrt(2.0 / (1.0 / 0.95**2 - 1.0))  # 4.302652729911275


def _p_two_sided_df2(d):
    d = np.asarray(d, dtype=np.float64)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    return 1.0 - abs(t) / math.sqrt(2.0 + t * t)


# --------------------------------------------------------------------------- mean_ci


def test_mean_ci_by_hand():
    est = stats.mean_ci([0.90, 0.95, 0.92])
    mean = (0.90 + 0.95 + 0.92) / 3
    sd = math.sqrt(((0.90 - mean) ** 2 + (0.95 - mean) ** 2 + (0.92 - mean) ** 2) / 2)
    half = T975_DF2 * sd / math.sqrt(3)
    assert est.n == 3
    assert est.mean == pytest.approx(mean, abs=1e-15)
    assert est.std == pytest.approx(sd, rel=1e-12)
    assert (est.low, est.high) == pytest.approx((mean - half, mean + half), rel=1e-12)
    assert est.half_width == pytest.approx(0.0625160948, rel=1e-8)


def test_mean_ci_one_seed_has_no_interval():
    est = stats.mean_ci([0.7])
    assert (est.mean, est.std, est.low, est.high, est.n) == (0.7, 0.0, None, None, 1)
    assert est.half_width is None


def test_mean_ci_two_seeds_uses_t_with_one_degree_of_freedom():
    # t_{0.975, 1} = tan(0.95·π/2) = 12.7062...
    est = stats.mean_ci([1.0, 2.0])
    assert est.half_width == pytest.approx(math.tan(0.95 * math.pi / 2) * math.sqrt(0.5) /
                                           math.sqrt(2), rel=1e-12)


@pytest.mark.parametrize("values, confidence, match", [
    ([], 0.95, r"mean_ci: values must hold at least one number, got none\."),
    ([1.0, 2.0], 1.0, r"mean_ci: confidence must be in \(0, 1\), got 1\.0\."),
    ([1.0, 2.0], 0.0, r"mean_ci: confidence must be in \(0, 1\), got 0\.0\."),
])
def test_mean_ci_bad_input(values, confidence, match):
    with pytest.raises(ValueError, match=match):
        stats.mean_ci(values, confidence)


# --------------------------------------------------------------------------- Holm


def test_holm_hand_computed():
    # Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> running max 0.06.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Capped at 1 and monotone; None entries are not part of the family.
    assert stats.holm([0.5, None, 0.6]) == [1.0, None, 1.0]
    assert stats.holm([0.02, None]) == [0.02, None]
    assert stats.holm([]) == []


def test_holm_rejects_as_the_sequential_procedure(rng):
    # Definition: with p sorted ascending, reject H_(1..k-1) where k is the first index with
    # p_(k) > alpha / (m - k + 1). The adjusted p-values must reject exactly those.
    for _ in range(200):
        m = int(rng.integers(1, 8))
        p = list(rng.uniform(0, 0.1, m) ** rng.uniform(0.5, 2))
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        order = np.argsort(p)
        rejected = set()
        for k, i in enumerate(order):
            if p[i] > alpha / (m - k):
                break
            rejected.add(int(i))
        adjusted = stats.holm(p)
        assert {i for i, q in enumerate(adjusted) if q <= alpha} == rejected
        assert all(q >= pi for q, pi in zip(adjusted, p))


# --------------------------------------------------------------------------- paired


def test_paired_by_hand():
    a = {0: 0.90, 1: 0.95, 2: 0.92}
    b = {2: 0.86, 0: 0.85, 1: 0.80}  # order does not matter: pairs are by seed
    c = stats.paired(a, b, names=("max", "avg"))
    d = [0.05, 0.15, 0.06]
    assert (c.variant, c.reference, c.seeds, c.unpaired) == ("max", "avg", (0, 1, 2), ())
    assert c.diff.mean == pytest.approx(np.mean(d), rel=1e-12)
    half = T975_DF2 * np.std(d, ddof=1) / math.sqrt(3)
    assert (c.diff.low, c.diff.high) == pytest.approx((np.mean(d) - half, np.mean(d) + half))
    assert c.p == pytest.approx(_p_two_sided_df2(d), rel=1e-9)
    assert c.p == pytest.approx(0.1123746, rel=1e-5)
    assert c.p_holm is None and not c.significant  # a lone comparison is not adjusted yet
    assert c.better is True  # accuracy: higher is better


def test_paired_uses_the_intersection_of_seeds():
    a = {0: 0.90, 1: 0.95, 2: 0.92, 3: 0.91}
    b = {0: 0.85, 1: 0.80, 2: 0.86, 4: 0.5}
    c = stats.paired(a, b)
    assert c.seeds == (0, 1, 2) and c.unpaired == (3, 4)
    assert c.p == pytest.approx(_p_two_sided_df2([0.05, 0.15, 0.06]), rel=1e-9)
    # Missing values (None, e.g. peak memory on CPU) are missing seeds.
    c = stats.paired({0: 1.0, 1: None}, {0: 2.0, 1: 3.0})
    assert c.seeds == (0,) and c.unpaired == (1,)


def test_paired_without_shared_seeds_or_with_one():
    c = stats.paired({0: 0.5}, {1: 0.6})
    assert c.diff is None and c.p is None and c.unpaired == (0, 1)
    c = stats.paired({0: 0.5}, {0: 0.6})
    assert c.diff.mean == pytest.approx(-0.1) and c.diff.low is None and c.p is None


def test_paired_zero_variance_differences():
    same = {0: 0.7133333333333334, 1: 0.72, 2: 0.70}
    c = stats.paired(same, dict(same))
    assert c.p == 1.0 and c.diff.mean == 0.0 and (c.diff.low, c.diff.high) == (0.0, 0.0)
    shifted = {s: v + 0.01 for s, v in same.items()}
    c = stats.paired(shifted, same)
    assert c.p == 0.0 and c.diff.mean == pytest.approx(0.01)


def test_paired_differences_equal_up_to_round_off_raise_no_warning():
    # Accuracies are k/300: the same gap of 6 images gives differences that differ in the
    # last bits. That is no spread (warnings are errors in this suite).
    a = {s: k / 300 for s, k in enumerate((150, 151, 152))}
    b = {s: (k - 6) / 300 for s, k in enumerate((150, 151, 152))}
    diffs = [a[s] - b[s] for s in a]
    assert len(set(diffs)) > 1  # really not bit-identical
    c = stats.paired(a, b)
    assert c.p == 0.0 and c.diff.mean == pytest.approx(0.02)


def test_paired_non_finite_has_no_p():
    c = stats.paired({0: float("nan"), 1: 0.5}, {0: 0.4, 1: 0.4})
    assert c.p is None and math.isnan(c.diff.mean)


def test_better_follows_the_metric_direction():
    lower = stats.paired({0: 1.0, 1: 1.1}, {0: 2.0, 1: 2.3}, metric_name="test_loss")
    assert lower.diff.mean < 0 and lower.better is True
    assert stats.paired({0: 1.0, 1: 1.0}, {0: 1.0, 1: 1.0}).better is None


# --------------------------------------------------------------------------- compare


def test_compare_adjusts_across_variants():
    values = {
        "max": {0: 0.90, 1: 0.95, 2: 0.92},
        "avg": {0: 0.85, 1: 0.80, 2: 0.86},
        "soft": {0: 0.95, 1: 0.99, 2: 0.96},
        "same": {0: 0.90, 1: 0.95, 2: 0.92},
    }
    out = stats.compare(values, "max")
    assert list(out) == ["avg", "soft", "same"]
    ps = {k: _p_two_sided_df2([values[k][s] - values["max"][s] for s in range(3)])
          for k in ("avg", "soft")}
    ps["same"] = 1.0
    # Holm by hand: soft's p is the smallest (x3), avg's next (x2), same's 1.0 (x1).
    assert ps["soft"] < ps["avg"] < 1.0
    expected_soft = 3 * ps["soft"]
    expected_avg = max(expected_soft, 2 * ps["avg"])
    assert out["soft"].p_holm == pytest.approx(expected_soft, rel=1e-9)
    assert out["avg"].p_holm == pytest.approx(expected_avg, rel=1e-9)
    assert out["same"].p_holm == 1.0
    assert out["soft"].significant == (expected_soft < 0.05)
    assert stats.compare(values, "gated") == {}


def test_significance_at_alpha():
    base = {s: 0.5 for s in range(5)}
    better = {s: 0.6 + 0.001 * s for s in range(5)}
    out = stats.compare({"max": base, "x": better}, "max")
    assert out["x"].p_holm < 1e-6 and out["x"].significant and out["x"].better


def test_metric_lookup():
    assert stats.metric("consistency").higher_is_better is True
    assert stats.metric("test_loss").higher_is_better is False
    with pytest.raises(ValueError, match=r"metric: name must be one of .*got 'accuracy'\."):
        stats.metric("accuracy")
