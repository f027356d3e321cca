"""The calibration simulator (replicate.audit_sim), small: consistent papers raise no error, planted errors
are found. The full calibration is benchmarks/bench_audit_calibration.py."""

from __future__ import annotations

import numpy as np
import pytest

from replicate.audit import auc_se_range, binormal_se, hanley_mcneil_se
from replicate.audit_sim import PLANTS, calibrate, plant, simulate_paper, summarise
from replicate.stats import delong_variance
from replicate.stats.proportions import PROPORTION_METHODS, proportion_ci, proportion_ci_table


def test_simulation_is_deterministic_and_plants_change_the_paper():
    a, b = simulate_paper(11), simulate_paper(11)
    assert a.spec == b.spec and a.methods == b.methods
    assert simulate_paper(12).spec != a.spec
    spec, ids = plant(a, "Table 1 count typo", seed=0)
    assert ids and spec != a.spec and plant(a, "Table 1 count typo", seed=0) == (spec, ids)


@pytest.fixture(scope="module")
def small():
    kinds = (
        "proportion typo",
        "comparison P",
        "Table 1 count typo",
        "metric swapped between models",
        "AUC CI too narrow",
        "CI of another count",
    )
    return summarise(calibrate(10, seed=5, n_planted=10, kinds=kinds))


@pytest.mark.slow
def test_consistent_papers_raise_no_error(small):
    fp = small["false_positives"]
    assert fp.attrs["papers"] == 10
    assert (fp[["error rate, undeclared", "error rate, declared"]] == 0).all().all(), fp
    # a declared CI method leaves no unexplained proportion CI (bootstrap papers included)
    assert fp.loc["ci_method", "warning rate, declared"] == 0


def test_planted_errors_are_found(small):
    det = small["detection"]
    assert (det["papers"] >= 5).all(), det
    assert (det["detected_as_error_or_warning"] >= 0.7).all(), det


def test_binormal_se_is_the_delong_se_of_binormal_scores():
    rng = np.random.default_rng(0)
    for auc, b in ((0.75, 1.0), (0.95, 0.5), (0.98, 2.0)):
        mu = __import__("scipy").stats.norm.ppf(auc) * np.sqrt(1 + b * b)
        y = np.r_[np.ones(3000), np.zeros(3000)]
        s = np.r_[rng.normal(mu, b, 3000), rng.normal(0, 1, 3000)]
        a_hat, var = delong_variance(y, s)
        assert binormal_se(a_hat, 3000, 3000, b) == pytest.approx(np.sqrt(var), rel=0.1)
    # near AUC 1 binormal scores have SEs well below Hanley-McNeil's (what made correct DeLong CIs look narrow)
    assert binormal_se(0.99, 7, 53, 0.5) < 0.5 * hanley_mcneil_se(0.99, 7, 53)
    assert auc_se_range(0.98, 67, 265)[0] < 0.6 * hanley_mcneil_se(0.98, 67, 265)
    lo, hi = auc_se_range(0.8, 40, 60)
    assert lo <= hanley_mcneil_se(0.8, 40, 60) <= hi


def test_vectorised_intervals_equal_the_scalar_ones():
    for n in (1, 7, 51):
        for m in PROPORTION_METHODS:
            lo, hi = proportion_ci_table(n, m)
            assert np.allclose(np.c_[lo, hi], [proportion_ci(k, n, m) for k in range(n + 1)], atol=1e-12, rtol=0)


def test_every_plant_kind_is_described():
    assert all(callable(f) and why for f, why in PLANTS.values())
