"""Survival helpers against lifelines and a naive Harrell C-index."""

import numpy as np
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import concordance_index

from replicate.stats import c_index, c_index_ci, cox_hazard_ratio, kaplan_meier_groups, logrank, risk_groups


@pytest.fixture
def surv():
    rng = np.random.default_rng(0)
    n = 90
    risk = rng.normal(size=n)
    t = rng.exponential(np.exp(-0.8 * risk)) * 365
    c = rng.exponential(2 * 365, n)
    return np.minimum(t, c), (t <= c).astype(int), risk


def _naive_harrell(time, risk, event):
    """Harrell's C for a risk score: usable pairs have the shorter time with an event."""
    num = den = 0.0
    n = len(time)
    for i in range(n):
        for j in range(n):
            if event[i] and time[i] < time[j]:
                den += 1
                num += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return num / den


def test_c_index_sign_and_reference(surv):
    t, e, risk = surv
    c = c_index(t, risk, e)
    assert c == pytest.approx(concordance_index(t, -risk, e))
    assert c == pytest.approx(_naive_harrell(t, risk, e), abs=1e-12)
    assert c > 0.6  # higher risk = shorter time
    assert c_index(t, -risk, e) == pytest.approx(1 - c, abs=1e-12)  # no tied risks / times here
    lo, cc, hi = c_index_ci(t, risk, e, n_boot=200, seed=0)
    assert lo < cc == c < hi


def test_km_and_logrank(surv):
    t, e, risk = surv
    g = risk_groups(risk)
    assert set(g) == {"low", "high"} and (g == "high").sum() == 45
    fit = kaplan_meier_groups(t, e, g)
    assert list(fit) == ["high", "low"]
    ref = KaplanMeierFitter().fit(t[g == "high"], e[g == "high"])
    np.testing.assert_allclose(fit["high"].survival_function_.to_numpy(), ref.survival_function_.to_numpy())
    m = g == "high"
    assert logrank(t, e, g) == pytest.approx(logrank_test(t[m], t[~m], e[m], e[~m]).p_value)
    three = np.where(risk > 0.5, "a", np.where(risk > -0.5, "b", "c"))
    assert 0 <= logrank(t, e, three) < 0.05


def test_risk_groups_cutoff():
    assert risk_groups([0.1, 0.5, 0.9], cutoff=0.5).tolist() == ["low", "high", "high"]
    assert risk_groups([1, 2, 3, 4]).tolist() == ["low", "low", "high", "high"]


def test_cox_hr(surv):
    t, e, risk = surv
    x = (risk > 0).astype(int)
    hr, lo, hi = cox_hazard_ratio(t, e, x)
    import pandas as pd

    cph = CoxPHFitter().fit(pd.DataFrame({"T": t, "E": e, "x": x}), "T", "E")
    assert hr == pytest.approx(float(np.exp(cph.params_["x"])))
    ci = np.exp(cph.confidence_intervals_.loc["x"].to_numpy())
    assert (lo, hi) == pytest.approx(tuple(ci))
