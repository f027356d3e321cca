"""Proportion CIs against statsmodels and Newcombe (1998) Table I."""

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from replicate.stats import PROPORTION_METHODS, proportion_ci

SM = {"wald": "normal", "wilson": "wilson", "clopper-pearson": "beta", "agresti-coull": "agresti_coull"}

# Newcombe RG (1998) Two-sided confidence intervals for the single proportion: comparison of seven
# methods. Stat Med 17:857-872, Table I (95% limits, 4 decimals).
NEWCOMBE_TABLE_I = {
    # (k, n): {method: (low, high)}
    (81, 263): {
        "wald": (0.2522, 0.3638),
        "wilson": (0.2553, 0.3662),
        "wilson-cc": (0.2535, 0.3682),
        "clopper-pearson": (0.2527, 0.3676),
    },
    (15, 148): {
        "wald": (0.0527, 0.1500),
        "wilson": (0.0624, 0.1605),
        "wilson-cc": (0.0598, 0.1644),
        "clopper-pearson": (0.0578, 0.1617),
    },
    (0, 20): {"wilson": (0.0000, 0.1611), "wilson-cc": (0.0000, 0.2005), "clopper-pearson": (0.0000, 0.1684)},
    (1, 29): {"wilson": (0.0061, 0.1718), "wilson-cc": (0.0018, 0.1963), "clopper-pearson": (0.0009, 0.1776)},
}


@pytest.mark.parametrize("kn", list(NEWCOMBE_TABLE_I))
def test_newcombe_table_i(kn):
    for method, (lo, hi) in NEWCOMBE_TABLE_I[kn].items():
        got = proportion_ci(*kn, method=method)
        assert round(got[0], 4) == pytest.approx(lo, abs=1e-12), (kn, method)
        assert round(got[1], 4) == pytest.approx(hi, abs=1e-12), (kn, method)


@pytest.mark.parametrize("method", list(SM))
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_against_statsmodels(method, level):
    for n in (1, 2, 7, 30, 113, 500):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            if k < 0 or k > n:
                continue
            ref = proportion_confint(k, n, alpha=1 - level, method=SM[method])
            got = proportion_ci(k, n, method=method, level=level)
            np.testing.assert_allclose(got, ref, atol=1e-10, err_msg=f"{method} {k}/{n}")


def _wilson_cc_by_inversion(k, n, level=0.95):
    """Independent route: invert the continuity-corrected score test |p_hat - p| - 1/(2n) <= z sqrt(p(1-p)/n)."""
    from scipy import optimize, stats

    z = stats.norm.isf((1 - level) / 2)
    ph = k / n

    def f_low(p):
        return (ph - p) - 1 / (2 * n) - z * np.sqrt(p * (1 - p) / n)

    def f_high(p):
        return (p - ph) - 1 / (2 * n) - z * np.sqrt(p * (1 - p) / n)

    lo = 0.0 if k == 0 else optimize.brentq(f_low, 1e-12, ph)
    hi = 1.0 if k == n else optimize.brentq(f_high, ph, 1 - 1e-12)
    return lo, hi


def test_wilson_cc_matches_test_inversion():
    for n in (5, 20, 29, 148, 263):
        for k in range(0, n + 1, max(1, n // 7)):
            np.testing.assert_allclose(proportion_ci(k, n, "wilson-cc"), _wilson_cc_by_inversion(k, n), atol=1e-9)


def test_methods_listed_and_errors():
    assert set(PROPORTION_METHODS) == {"wald", "wilson", "wilson-cc", "clopper-pearson", "agresti-coull"}
    assert all(np.isnan(proportion_ci(0, 0)))
    with pytest.raises(ValueError):
        proportion_ci(3, 2)
    with pytest.raises(ValueError):
        proportion_ci(1, 2, method="bayes")
    # intervals stay inside [0, 1]
    for m in PROPORTION_METHODS:
        lo, hi = proportion_ci(1, 3, m)
        assert 0 <= lo <= 1 / 3 <= hi <= 1
