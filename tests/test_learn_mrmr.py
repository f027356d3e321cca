"""MRMRSelector against mrmr.mrmr_classif called directly."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from replicate.learn import MRMRSelector
from replicate.learn.mrmr import import_mrmr


def _data(n=60, p=200, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    y = pd.Series((rng.random(n) < 0.4).astype(int), index=idx)
    X = pd.DataFrame(rng.normal(size=(n, p)), index=idx, columns=[f"f{j:03d}" for j in range(p)])
    X.iloc[:, :5] += 0.9 * y.to_numpy()[:, None]
    X["f005"] = X["f000"] + rng.normal(scale=0.05, size=n)  # redundant copy of an informative feature
    return X, y


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [5, 15])
def test_same_selection_as_the_package(seed, k):
    X, y = _data(seed=seed)
    mrmr = import_mrmr()
    ref = mrmr.mrmr_classif(X=X, y=y, K=k, n_jobs=1, show_progress=False)
    sel = MRMRSelector(k=k).fit(X, y)
    assert sel.ranking_ == ref
    assert set(sel.selected_features_) == set(ref)
    assert sel.selected_features_ == [c for c in X.columns if c in set(ref)]  # output in input order


def test_fast_false_is_the_package_itself():
    X, y = _data(p=60)
    ref = import_mrmr().mrmr_classif(X=X, y=y, K=6, n_jobs=1, show_progress=False)
    assert MRMRSelector(k=6, fast=False).fit(X, y).ranking_ == ref


def test_missing_values_use_the_package_functions():
    X, y = _data(p=40)
    X.iloc[3, 2] = np.nan
    X.iloc[7, 10] = np.nan
    ref = import_mrmr().mrmr_classif(X=X, y=y, K=8, n_jobs=1, show_progress=False)
    assert MRMRSelector(k=8).fit(X, y).ranking_ == ref


def test_relevance_redundancy_behaviour():
    X, y = _data()
    sel = MRMRSelector(k=5).fit(X, y)
    informative = {"f000", "f001", "f002", "f003", "f004", "f005"}
    # an informative feature ranks first, most picks are informative, and the near-copy pair is not both picked
    assert sel.ranking_[0] in informative and sel.relevance_.idxmax() in informative
    assert sum(c in informative for c in sel.ranking_) >= 3
    assert not {"f000", "f005"} <= set(sel.ranking_)


def test_constant_features_never_chosen_and_k_capped():
    X, y = _data(p=6)
    X["const"] = 1.0
    sel = MRMRSelector(k=50).fit(X, y)
    assert "const" not in sel.selected_features_
    assert 1 <= len(sel.selected_features_) <= 6 and sel.relevance_["const"] == 0


def test_import_does_not_silence_warnings():
    import_mrmr()
    with warnings.catch_warnings(record=True) as w:
        warnings.warn("still visible", UserWarning, stacklevel=1)
    # catch_warnings(record=True) resets to the default action, so check the global filters instead
    assert ("ignore", None, Warning, None, 0) not in warnings.filters
    assert w


def test_single_class_is_an_error():
    X, y = _data(p=10)
    with pytest.raises(ValueError, match="single class"):
        MRMRSelector(k=3).fit(X, y * 0)
