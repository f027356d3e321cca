"""AUC, DeLong variance / test: pROC's own test-suite values on aSAH, sklearn, a naive O(n^2) DeLong."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from replicate.stats import (
    auc_ci,
    auc_score,
    delong_covariance,
    delong_test,
    delong_test_unpaired,
    delong_variance,
)

ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    Path(os.environ["REPLICATE_REFERENCE_DIR"]) / "proc_asah" if os.environ.get("REPLICATE_REFERENCE_DIR") else None,
    ROOT / "tests" / "fixtures" / "proc_asah",
    ROOT.parent / "shared" / "reference" / "proc_asah",
]
ASAH = next((p for p in _CANDIDATES if p is not None and (p / "aSAH.csv").exists()), None)
# The reference ships in tests/fixtures (a copy of ../shared/reference/proc_asah): never skipped.
assert ASAH is not None, "pROC aSAH reference not found (tests/fixtures/proc_asah)"


def needs_asah(fn):
    return fn


@pytest.fixture(scope="module")
def asah():
    d = pd.read_csv(ASAH / "aSAH.csv")
    y = (d["outcome"] == "Poor").astype(int).to_numpy()
    return d, y, json.loads((ASAH / "expected.json").read_text())


@needs_asah
def test_delong_paired_reproduces_proc(asah):
    d, y, exp = asah
    assert len(exp["delong_paired"]) >= 2
    for ref in exp["delong_paired"]:
        r = delong_test(y, d[ref["roc1"]], d[ref["roc2"]], paired=True)
        assert r.z == pytest.approx(ref["Z"], abs=1e-9)
        assert r.p_value == pytest.approx(ref["p_value"], abs=1e-9)
        assert r.ci[0] == pytest.approx(ref["ci_diff"][0], abs=1e-9)
        assert r.ci[1] == pytest.approx(ref["ci_diff"][1], abs=1e-9)
        assert r.diff == pytest.approx(r.auc_a - r.auc_b)
        assert r.auc_a == pytest.approx(roc_auc_score(y, d[ref["roc1"]]), abs=1e-12)


@needs_asah
def test_delong_ci_reproduces_proc(asah):
    d, y, exp = asah
    for ref in exp["ci_auc_delong"]:
        lo, auc, hi = auc_ci(y, d[ref["predictor"]], method="delong")
        np.testing.assert_allclose([lo, auc, hi], ref["ci"], atol=1e-9)


@needs_asah
def test_symmetry_of_paired_test(asah):
    d, y, _ = asah
    a = delong_test(y, d["wfns"], d["s100b"])
    b = delong_test(y, d["s100b"], d["wfns"])
    assert b.z == pytest.approx(-a.z) and b.p_value == pytest.approx(a.p_value)


def _naive_delong(y, scores):
    """O(m n) DeLong et al. (1988) structural components, straight from the definition."""
    y = np.asarray(y)
    scores = np.atleast_2d(scores)
    k = scores.shape[0]
    v10s, v01s, aucs = [], [], []
    for s in scores:
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
        aucs.append(psi.mean())
    v10, v01 = np.array(v10s), np.array(v01s)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.array(
        [[np.sum((v10[i] - v10[i].mean()) * (v10[j] - v10[j].mean())) / (m - 1) for j in range(k)] for i in range(k)]
    )
    s01 = np.array(
        [[np.sum((v01[i] - v01[i].mean()) * (v01[j] - v01[j].mean())) / (n - 1) for j in range(k)] for i in range(k)]
    )
    return np.array(aucs), s10 / m + s01 / n


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_delong_equals_naive_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 157
    y = rng.integers(0, 2, n)
    s = np.vstack(
        [
            np.round(y + rng.normal(size=n), 1),  # many ties
            rng.integers(0, 4, n).astype(float),  # heavy ties
            0.3 * y + rng.normal(size=n),
        ]
    )
    auc, cov = delong_covariance(y, s)
    auc_n, cov_n = _naive_delong(y, s)
    np.testing.assert_allclose(auc, auc_n, atol=1e-12)
    np.testing.assert_allclose(cov, cov_n, atol=1e-12)
    for row in s:
        assert auc_score(y, row) == pytest.approx(roc_auc_score(y, row), abs=1e-12)


def test_direction_is_higher_score_positive():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([1, 2, 3, 4, 5, 6.0])
    assert auc_score(y, s) == 1.0
    assert auc_score(y, -s) == 0.0
    lo, auc, hi = auc_ci(y, s)
    assert (lo, auc, hi) == (1.0, 1.0, 1.0)  # zero variance: degenerate interval, no NaN


def test_hanley_mcneil_formula():
    """Hanley & McNeil (1982) SE: sqrt((A(1-A) + (n1-1)(Q1-A^2) + (n2-1)(Q2-A^2)) / (n1 n2))."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(40, int), np.zeros(60, int)]
    s = np.r_[rng.normal(1, 1, 40), rng.normal(0, 1, 60)]
    a, n1, n2 = roc_auc_score(y, s), 40, 60
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2))
    lo, auc, hi = auc_ci(y, s, method="hanley-mcneil")
    assert auc == pytest.approx(a)
    assert hi - auc == pytest.approx(1.959963984540054 * se, rel=1e-9)
    assert auc - lo == pytest.approx(1.959963984540054 * se, rel=1e-9)


def test_bootstrap_ci_method_close_to_delong():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = y + rng.normal(size=300)
    lo_d, auc_d, hi_d = auc_ci(y, s)
    lo_b, auc_b, hi_b = auc_ci(y, s, method="bootstrap", n_boot=2000, seed=1)
    assert auc_b == auc_d
    assert abs(lo_b - lo_d) < 0.015 and abs(hi_b - hi_d) < 0.015


def test_unpaired_test_uses_sum_of_variances():
    rng = np.random.default_rng(5)
    ya, yb = rng.integers(0, 2, 120), rng.integers(0, 2, 90)
    sa, sb = ya + rng.normal(size=120), 0.4 * yb + rng.normal(size=90)
    r = delong_test_unpaired(ya, sa, yb, sb)
    (aa, va), (ab, vb) = delong_variance(ya, sa), delong_variance(yb, sb)
    assert not r.paired
    assert r.se == pytest.approx(np.sqrt(va + vb))
    assert r.z == pytest.approx((aa - ab) / np.sqrt(va + vb))
    assert r == delong_test(ya, sa, sb, paired=False, y_b=yb)


def test_input_errors():
    with pytest.raises(ValueError):
        auc_ci([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        auc_ci([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        auc_ci([0, 1], [0.1, 0.2], method="magic")
