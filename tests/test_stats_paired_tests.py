"""McNemar's test against statsmodels and the exact binomial test."""

import numpy as np
import pytest
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from replicate.stats import mcnemar


def test_table_and_exact_p():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0])
    a = np.array([1, 1, 1, 0, 0, 0, 1, 0, 1, 0])  # wrong on 3, 6
    b = np.array([1, 0, 0, 0, 0, 1, 1, 1, 1, 0])  # wrong on 1, 2, 3, 5, 6, 7
    r = mcnemar(y, a, b)
    assert r.exact and (r.b, r.c) == (4, 0)
    assert r.table.tolist() == [[4, 4], [0, 2]]
    assert r.p_value == pytest.approx(binomtest(0, 4, 0.5).pvalue)


def test_asymptotic_matches_statsmodels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    a = np.where(rng.uniform(size=300) < 0.8, y, 1 - y)
    b = np.where(rng.uniform(size=300) < 0.7, y, 1 - y)
    r = mcnemar(y, a, b)
    assert not r.exact and r.b + r.c >= 25
    ref = sm_mcnemar(r.table, exact=False, correction=True)
    assert r.statistic == pytest.approx(ref.statistic) and r.p_value == pytest.approx(ref.pvalue)
    chi2 = (abs(r.b - r.c) - 1) ** 2 / (r.b + r.c)
    assert r.statistic == pytest.approx(chi2)
    assert mcnemar(y, a, b, exact=True).p_value == pytest.approx(binomtest(min(r.b, r.c), r.b + r.c).pvalue)
