"""Hosmer-Lemeshow (hand-worked example + an R-faithful restatement), calibration curve, Brier score."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from replicate.stats import (
    brier_score,
    calibration_curve_with_bands,
    calibration_intercept_slope,
    calibration_with_bands,
    hosmer_lemeshow,
    hosmer_lemeshow_table,
)


def test_hosmer_lemeshow_hand_worked():
    # 8 patients, g = 4. Type-7 quartiles of p: 0.1, 0.275, 0.5, 0.725, 0.9 -> groups of two:
    # {0.1,0.2 | y 0,0}, {0.3,0.4 | 1,0}, {0.6,0.7 | 1,0}, {0.8,0.9 | 1,1}
    # group 1: O1=0 E1=0.3, O0=2 E0=1.7 -> 0.09/0.3 + 0.09/1.7 ; group 4 mirrors it
    # group 2: O1=1 E1=0.7, O0=1 E0=1.3 -> 0.09/0.7 + 0.09/1.3 ; group 3 mirrors it
    # X2 = 2 * (0.3 + 0.0529412 + 0.1285714 + 0.0692308) = 1.1014867 ; df = 4 - 2 = 2 ; P = exp(-X2/2)
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    y = np.array([0, 0, 1, 0, 1, 0, 1, 1])
    chi2, df, pv = hosmer_lemeshow(y, p, groups=4)
    x2 = 2 * (0.3 + 0.09 / 1.7 + 0.09 / 0.7 + 0.09 / 1.3)
    assert chi2 == pytest.approx(x2, abs=1e-12)
    assert df == 2
    assert pv == pytest.approx(np.exp(-x2 / 2), abs=1e-12)
    t = hosmer_lemeshow_table(y, p, groups=4)
    assert t["n"].tolist() == [2, 2, 2, 2]
    assert t["expected_1"].tolist() == pytest.approx([0.3, 0.7, 1.3, 1.7])


def _hoslem_r(y, yhat, g=10):
    """ResourceSelection::hoslem.test restated with pandas.cut (independent binning code)."""
    qq = np.unique(np.quantile(yhat, np.arange(0, 1 + 1e-12, 1 / g)))
    cut = pd.cut(yhat, bins=qq, include_lowest=True, right=True)
    df = pd.DataFrame({"c": cut, "y1": y, "y0": 1 - y, "e1": yhat, "e0": 1 - yhat})
    tab = df.groupby("c", observed=True)[["y0", "y1", "e0", "e1"]].sum()
    chisq = (((tab[["y0", "y1"]].to_numpy() - tab[["e0", "e1"]].to_numpy()) ** 2) / tab[["e0", "e1"]].to_numpy()).sum()
    G = len(tab)
    return chisq, G - 2, 1 - st.chi2.cdf(chisq, G - 2)


@pytest.mark.parametrize("seed,g", [(0, 10), (1, 10), (2, 8), (3, 5)])
def test_hosmer_lemeshow_matches_r_definition(seed, g):
    rng = np.random.default_rng(seed)
    n = 237
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(0.3 + 1.2 * x)))
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(0.1 + 1.6 * x)))).astype(int)
    got = hosmer_lemeshow(y, p, groups=g)
    ref = _hoslem_r(y, p, g)
    assert got.chi2 == pytest.approx(ref[0], rel=1e-10)
    assert got.df == ref[1] == g - 2
    assert got.p_value == pytest.approx(ref[2], rel=1e-8)


def test_hosmer_lemeshow_with_tied_quantiles_drops_groups():
    p = np.r_[np.full(50, 0.2), np.linspace(0.3, 0.9, 50)]
    y = (np.random.default_rng(0).uniform(size=100) < p).astype(int)
    with pytest.warns(UserWarning, match="groups"):
        r = hosmer_lemeshow(y, p)
    assert r.df == _hoslem_r(y, p)[1] < 8
    assert r.chi2 == pytest.approx(_hoslem_r(y, p)[0])


def test_brier_matches_sklearn():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=50)
    y = (rng.uniform(size=50) < p).astype(int)
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p))


def test_calibration_curve_matches_sklearn_and_bands():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.98, 400)
    y = (rng.uniform(size=400) < p).astype(int)
    cur = calibration_curve_with_bands(y, p, n_bins=8, n_boot=400, seed=0)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=8, strategy="quantile")
    np.testing.assert_allclose(cur["observed"], prob_true)
    np.testing.assert_allclose(cur["mean_predicted"], prob_pred)
    assert list(cur.columns) == ["bin", "n", "mean_predicted", "observed", "low", "high"]
    assert cur["n"].sum() == 400
    assert ((cur["low"] <= cur["observed"]) & (cur["observed"] <= cur["high"])).all()
    # bands = percentile interval of per-bin observed rates over ordinary bootstrap resamples
    edges = np.unique(np.quantile(p, np.linspace(0, 1, 9)))
    b = np.clip(np.searchsorted(edges, p, side="left") - 1, 0, len(edges) - 2)
    draws = np.random.default_rng(0).integers(0, 400, (400, 400))
    reps = np.array([[y[d][b[d] == j].mean() for j in range(8)] for d in draws])
    np.testing.assert_allclose(cur["low"], np.quantile(reps, 0.025, axis=0))
    np.testing.assert_allclose(cur["high"], np.quantile(reps, 0.975, axis=0))
    wil = calibration_with_bands(y, p, n_bins=8, n_boot=0)
    assert np.isfinite(wil[["low", "high"]]).all().all()


def test_calibration_slope_and_intercept():
    rng = np.random.default_rng(2)
    lp = rng.normal(0, 1.5, 20000)
    p = 1 / (1 + np.exp(-lp))
    y = (rng.uniform(size=lp.size) < p).astype(int)
    good = calibration_intercept_slope(y, p)
    assert good["slope"] == pytest.approx(1, abs=0.05) and good["intercept"] == pytest.approx(0, abs=0.05)
    over = calibration_intercept_slope(y, 1 / (1 + np.exp(-2 * lp)))  # predictions too extreme
    assert over["slope"] == pytest.approx(0.5, abs=0.03)
