"""LassoSelector: picks informative features, CV-chosen penalty, score formula, fallback."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LassoCV, LogisticRegressionCV
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold

from replicate.learn import LassoSelector


def _problem(n=120, p=40, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    X = pd.DataFrame(rng.normal(size=(n, p)), index=idx, columns=[f"feat_{j:02d}" for j in range(p)])
    lp = 1.5 * X["feat_00"] - 1.2 * X["feat_01"] + 1.0 * X["feat_02"]
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int), index=idx)
    return X, y


@pytest.mark.parametrize("kind", ["logistic", "linear"])
def test_picks_the_informative_features(kind):
    X, y = _problem()
    sel = LassoSelector(kind=kind).fit(X, y)
    assert {"feat_00", "feat_01", "feat_02"} <= set(sel.selected_features_)
    assert set(sel.coef_.abs().sort_values(ascending=False).index[:3]) == {"feat_00", "feat_01", "feat_02"}
    assert len(sel.selected_features_) < X.shape[1] / 2
    assert sel.coef_["feat_00"] > 0 and sel.coef_["feat_01"] < 0
    assert sel.alpha_ > 0
    assert list(sel.transform(X).columns) == sel.selected_features_


def test_logistic_kind_is_logistic_regression_cv_with_l1():
    X, y = _problem(seed=3)
    sel = LassoSelector(cv=10, random_state=7).fit(X, y)
    ref = LogisticRegressionCV(
        Cs=sel.Cs_,
        l1_ratios=(1.0,),
        solver="liblinear",
        max_iter=10000,
        cv=StratifiedKFold(10, shuffle=True, random_state=7),
        scoring="neg_log_loss",
        random_state=7,
        use_legacy_attributes=False,
    ).fit(X.to_numpy(), y.to_numpy())
    assert sel.C_ == pytest.approx(float(np.ravel(ref.C_)[0]))
    np.testing.assert_allclose(sel.coef_.to_numpy(), ref.coef_.ravel(), atol=1e-10)
    assert sel.intercept_ == pytest.approx(float(ref.intercept_[0]))
    assert sel.alpha_ == pytest.approx(1 / (sel.C_ * len(X)))
    # the lean log-loss scorer chooses the same C as scikit-learn's scorer
    slow = LassoSelector(cv=10, random_state=7, scoring=get_scorer("neg_log_loss")).fit(X, y)
    assert slow.C_ == pytest.approx(sel.C_)


def test_linear_kind_is_lasso_cv():
    X, y = _problem(seed=4)
    sel = LassoSelector(kind="linear", cv=5, random_state=2).fit(X, y)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=2).split(X, y))
    ref = LassoCV(cv=folds, max_iter=10000, random_state=2).fit(X.to_numpy(), y.to_numpy().astype(float))
    assert sel.alpha_ == pytest.approx(ref.alpha_)
    np.testing.assert_allclose(sel.coef_.to_numpy(), ref.coef_, atol=1e-12)


def test_deterministic_and_seed_matters_only_through_folds():
    X, y = _problem(seed=5)
    a = LassoSelector(random_state=0).fit(X, y)
    b = LassoSelector(random_state=0).fit(X, y)
    pd.testing.assert_series_equal(a.coef_, b.coef_)


def test_score_formula_and_rad_score():
    X, y = _problem()
    sel = LassoSelector().fit(X, y)
    f = sel.score_formula(name="Rad-score", decimals=3)
    assert f.startswith("Rad-score = ")
    for feat in sel.selected_features_:
        assert f"× {feat}" in f
    assert "− " in f  # feat_01 has a negative coefficient
    assert "× feat_39" not in f or "feat_39" in sel.selected_features_
    # the formula evaluates to rad_score (up to rounding)
    terms = re.findall(r"([+−]) (\d+\.\d+) × (\w+)", f)
    b0 = float(f.split(" = ")[1].split(" ")[0].replace("−", "-"))
    row = X.iloc[0]
    manual = b0 + sum((1 if s == "+" else -1) * float(b) * row[c] for s, b, c in terms)
    assert manual == pytest.approx(sel.rad_score(X).iloc[0], abs=5e-3 * (1 + len(terms)) * 3)
    np.testing.assert_allclose(sel.rad_score(X).to_numpy(), sel.intercept_ + X.to_numpy() @ sel.coef_.to_numpy())


def test_nothing_survives_keeps_the_first_feature_of_the_path():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 5)), columns=list("abcde"))
    y = pd.Series(np.r_[np.ones(20, int), np.zeros(20, int)])
    X["c"] += 1.0 * y  # the most correlated: first to enter the path
    Xc = X - X.mean()
    assert (Xc.T @ (y - y.mean())).abs().idxmax() == "c"
    with pytest.warns(UserWarning, match="no feature survived"):
        sel = LassoSelector(Cs=[1e-6]).fit(X, y)
    assert sel.fallback_ and sel.selected_features_ == ["c"]
    assert sel.coef_["c"] > 0


def test_max_features():
    X, y = _problem()
    sel = LassoSelector(max_features=2).fit(X, y)
    assert len(sel.selected_features_) == 2
    full = LassoSelector().fit(X, y)
    top2 = full.coef_.abs().sort_values(ascending=False).index[:2]
    assert set(sel.selected_features_) == set(top2)


def test_cv_lowered_to_minority_count():
    X, y = _problem(n=40)
    y[:] = 0
    y.iloc[:4] = 1
    sel = LassoSelector(cv=10).fit(X, y)
    assert sel.n_splits_ == 4
    with pytest.raises(ValueError, match="exactly 2 classes"):
        LassoSelector().fit(X, y * 0)
