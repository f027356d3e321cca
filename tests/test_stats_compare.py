"""Reported vs reproduced statistics: MOVER, SE from a CI, resolution, TOST (validated on published numbers)."""

import math

import numpy as np
import pytest

from replicate.stats import (
    POWER_FACTOR,
    contrast_word,
    hanley_mcneil_se,
    method_se,
    mover_difference,
    proportion_ci,
    resolution,
    se_from_ci,
    tost,
)


def test_mover_with_wilson_intervals_is_newcombes_method_10():
    """Newcombe (1998, Stat Med 17:873), Table II example (a): 56/70 vs 48/80 -> 0.0524 to 0.3339."""
    lo1, hi1 = proportion_ci(56, 70, method="wilson")
    lo2, hi2 = proportion_ci(48, 80, method="wilson")
    d, low, high = mover_difference(56 / 70, (lo1, hi1), 48 / 80, (lo2, hi2))
    assert d == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_mover_reduces_to_wald_for_symmetric_intervals():
    d, low, high = mover_difference(0.7, (0.6, 0.8), 0.8, (0.75, 0.85))
    half = math.hypot(0.1, 0.05)
    assert (d, low, high) == pytest.approx((-0.1, -0.1 - half, -0.1 + half))


def test_se_from_ci_picks_the_symmetric_scale():
    # a Wald / DeLong interval: symmetric on the raw scale
    se, scale = se_from_ci(0.80, (0.70, 0.90))
    assert scale == "raw" and se == pytest.approx(0.2 / (2 * 1.959964), rel=1e-5)
    # a logit interval: symmetric on the logit scale, carried back by the delta method
    p, se_logit = 0.9, 0.3
    lo, hi = (1 / (1 + math.exp(-(math.log(p / (1 - p)) + s * 1.959964 * se_logit))) for s in (-1, 1))
    se, scale = se_from_ci(p, (lo, hi))
    assert scale == "logit" and se == pytest.approx(se_logit * p * (1 - p), rel=1e-5)
    # an odds ratio's interval: symmetric on the log scale
    se, scale = se_from_ci(2.0, (2.0 * math.exp(-1.96 * 0.4), 2.0 * math.exp(1.96 * 0.4)), ratio=True)
    assert scale == "log" and se == pytest.approx(0.4 * 2.0, rel=1e-3)
    with pytest.raises(ValueError, match="does not contain"):
        se_from_ci(0.5, (0.6, 0.7))


def test_resolution_is_the_80_percent_power_difference():
    assert POWER_FACTOR == pytest.approx(1.959964 + 0.841621, rel=1e-6)
    assert resolution(0.03, 0.04) == pytest.approx(POWER_FACTOR * 0.05)
    # e.g. 19 positives / 32 negatives at a reported AUC of 0.83 with the paper's SE 0.05
    r = resolution(hanley_mcneil_se(0.83, 19, 32), 0.05)
    assert 0.2 < r < 0.3


def test_method_se_and_tost():
    mean, se_d, r = method_se([0.80, 0.82, 0.78])
    assert (mean, r) == (pytest.approx(0.80), 3)
    assert se_d == pytest.approx(0.02 * math.sqrt(4 / 3))
    with pytest.raises(ValueError, match=">= 2"):
        method_se([0.8])
    eq = tost(0.0, 0.01, 0.05)
    assert eq.verdict == "reproduced" and eq.low == pytest.approx(-1.644854 * 0.01, rel=1e-5)
    assert tost(-0.2, 0.01, 0.05).verdict == "not reproduced"
    assert tost(-0.05, 0.01, 0.05).verdict == "inconclusive"  # touches the margin
    assert tost(0.0, 0.1, 0.05).verdict == "inconclusive"  # too variable to tell
    with pytest.raises(ValueError):
        tost(0.0, 0.01, 0.0)


@pytest.mark.parametrize(
    "low, high, word",
    [(-0.3, -0.01, "lower on proxy"), (0.02, 0.2, "higher on proxy"), (-0.1, 0.1, "consistent on proxy")],
)
def test_contrast_words(low, high, word):
    assert contrast_word(low, high) == word


def test_tost_coverage_under_the_null_of_equivalence():
    """Simulated: when the method reproduces the paper exactly (true d = 0), TOST with R = 5 seeds and a margin
    of 3 method SDs says 'not reproduced' in < 5% of runs, and 'reproduced' most of the time."""
    rng = np.random.default_rng(0)
    sd, verdicts = 0.01, []
    for _ in range(2000):
        paper = 0.8 + rng.normal(0, sd)
        seeds = 0.8 + rng.normal(0, sd, 5)
        _, se_d, _ = method_se(seeds)
        verdicts.append(tost(seeds.mean() - paper, se_d, 3 * sd).verdict)
    share = {v: verdicts.count(v) / len(verdicts) for v in set(verdicts)}
    assert share.get("not reproduced", 0) < 0.05 and share["reproduced"] > 0.5
