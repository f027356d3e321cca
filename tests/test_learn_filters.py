"""TTestFilter and FTestRFE against scipy / scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.feature_selection import RFE, RFECV, SelectPercentile, f_classif
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from replicate.learn import FTestRFE, TTestFilter


def _data(n=60, p=30, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    y = pd.Series((np.arange(n) % 2).astype(int), index=idx)
    X = pd.DataFrame(rng.normal(size=(n, p)), index=idx, columns=[f"g{j:02d}" for j in range(p)])
    X.iloc[:, :4] += np.array([1.5, 1.0, 0.8, 0.6]) * y.to_numpy()[:, None]
    return X, y


@pytest.mark.parametrize("equal_var", [True, False])
def test_ttest_filter_matches_scipy(equal_var):
    X, y = _data()
    f = TTestFilter(alpha=0.05, equal_var=equal_var).fit(X, y)
    p = np.array([stats.ttest_ind(X.loc[y == 1, c], X.loc[y == 0, c], equal_var=equal_var).pvalue for c in X.columns])
    np.testing.assert_allclose(f.pvalues_.to_numpy(), p, rtol=1e-10)
    assert f.selected_features_ == [c for c, q in zip(X.columns, p) if q < 0.05]
    assert {"g00", "g01"} <= set(f.selected_features_)


def test_ttest_filter_keeps_at_least_one():
    X, y = _data()
    X = X.iloc[:, 10:]  # noise only
    f = TTestFilter(alpha=1e-9).fit(X, y)
    assert f.fallback_ and f.selected_features_ == [f.pvalues_.idxmin()]
    X["const"] = 2.0
    assert TTestFilter().fit(X, y).pvalues_["const"] == 1.0


def test_ftest_rfe_matches_sklearn_steps():
    X, y = _data(p=40)
    sel = FTestRFE(percentile=25, n_features=3).fit(X, y)
    pre = SelectPercentile(f_classif, percentile=25).fit(X.to_numpy(), y)
    pre_cols = list(X.columns[pre.get_support()])
    assert sel.prefiltered_features_ == pre_cols
    rfe = RFE(SVC(kernel="linear"), n_features_to_select=3, step=0.1).fit(X[pre_cols].to_numpy(), y)
    assert sel.selected_features_ == [c for c, s in zip(pre_cols, rfe.support_) if s]
    np.testing.assert_allclose(sel.scores_.to_numpy(), f_classif(X.to_numpy(), y)[0])


def test_ftest_rfecv_when_no_count_given():
    X, y = _data(p=40)
    sel = FTestRFE(percentile=20, random_state=3).fit(X, y)
    pre_cols = sel.prefiltered_features_
    ref = RFECV(
        SVC(kernel="linear"), step=0.1, cv=StratifiedKFold(5, shuffle=True, random_state=3), scoring="roc_auc"
    ).fit(X[pre_cols].to_numpy(), y)
    assert sel.selected_features_ == [c for c, s in zip(pre_cols, ref.support_) if s]
    assert len(sel.selected_features_) >= 1
    assert sel.ranking_.index.tolist() == pre_cols
