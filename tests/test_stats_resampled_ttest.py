"""Corrected resampled t-test: WORC/PREDICT's compute_confidence formula and scipy's t distribution."""

import numpy as np
import pytest
import scipy.stats as st

from replicate.stats import corrected_resampled_ttest, corrected_resampled_ttest_ci, corrected_se


def _worc_compute_confidence(metric, N_train, N_test, alpha=0.95):
    """WORC / PREDICT ``compute_confidence`` (Nadeau & Bengio 2003), restated."""
    N_iterations = len(metric)
    metric_average = np.mean(metric)
    S_uj = 1.0 / (N_iterations - 1) * np.sum((metric_average - metric) ** 2.0)
    metric_std = np.sqrt((1.0 / N_iterations + N_test / N_train) * S_uj)
    return st.t.interval(alpha, N_iterations - 1, loc=metric_average, scale=metric_std)


@pytest.mark.parametrize("level", [0.9, 0.95])
def test_matches_worc_formula(level):
    rng = np.random.default_rng(0)
    auc = rng.normal(0.75, 0.05, 100)
    mean, lo, hi = corrected_resampled_ttest_ci(auc, n_train=80, n_test=20, level=level)
    assert mean == pytest.approx(auc.mean())
    assert (lo, hi) == pytest.approx(_worc_compute_confidence(auc, 80, 20, level))
    # wider than the naive t interval by sqrt(1 + J n_test / n_train)
    naive = st.t.interval(level, 99, loc=auc.mean(), scale=auc.std(ddof=1) / 10)
    assert (hi - lo) / (naive[1] - naive[0]) == pytest.approx(np.sqrt(1 + 100 * 20 / 80))


def test_bounds_not_clipped_by_default():
    vals = np.array([0.99, 1.0, 0.97, 1.0, 0.98, 0.93])
    mean, lo, hi = corrected_resampled_ttest_ci(vals, 50, 50)
    assert hi > 1
    assert corrected_resampled_ttest_ci(vals, 50, 50, clip=True) == (mean, lo, 1.0)


def test_test_statistic_and_p_value():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.8, 0.04, 30), rng.normal(0.75, 0.04, 30)
    r = corrected_resampled_ttest(a, b, n_train=90, n_test=10)
    d = a - b
    se = np.sqrt((1 / 30 + 10 / 90) * d.var(ddof=1))
    assert r.se == pytest.approx(se) == corrected_se(d, 90, 10)
    assert r.t == pytest.approx(d.mean() / se) and r.df == 29
    assert r.p_value == pytest.approx(2 * st.t.sf(abs(d.mean() / se), 29))
    one = corrected_resampled_ttest(a, n_train=90, n_test=10, mu=0.5, alternative="greater")
    assert one.p_value == pytest.approx(st.t.sf((a.mean() - 0.5) / corrected_se(a, 90, 10), 29))
    # with n_test -> 0 the correction vanishes and the ordinary one-sample t-test is recovered
    plain = st.ttest_1samp(a, 0.5)
    tiny = corrected_resampled_ttest(a, n_train=1e12, n_test=1e-12, mu=0.5)
    assert tiny.t == pytest.approx(plain.statistic) and tiny.p_value == pytest.approx(plain.pvalue)


def test_errors():
    with pytest.raises(ValueError):
        corrected_resampled_ttest_ci([0.7], 10, 5)
    with pytest.raises(ValueError):
        corrected_resampled_ttest_ci([0.7, 0.8], 0, 5)
