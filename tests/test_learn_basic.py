"""DropConstant, ZScore, Impute."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

from replicate.learn import DropConstant, Impute, ZScore


def _frame():
    idx = pd.Index(["a", "b", "c", "d"], name="patient_id")
    return pd.DataFrame(
        {
            "ok": [1.0, 2.0, 3.0, 4.0],
            "zero": [0.0, 0.0, 0.0, 0.0],  # "null" feature
            "const": [0.1, 0.1, 0.1, 0.1],
            "nan_only": [np.nan] * 4,
            "const_with_nan": [5.0, np.nan, 5.0, 5.0],
            "tiny": [1.0, 1.0 + 1e-12, 1.0, 1.0],
            "with_nan": [1.0, np.nan, 2.0, 3.0],
        },
        index=idx,
    )


def test_drop_constant_eliminates_null_constant_and_nan_only():
    X = _frame()
    dc = DropConstant().fit(X)
    assert dc.selected_features_ == ["ok", "tiny", "with_nan"]
    assert dc.dropped_features_ == ["zero", "const", "nan_only", "const_with_nan"]
    out = dc.transform(X)
    assert list(out.columns) == ["ok", "tiny", "with_nan"] and out.index.equals(X.index)
    assert list(DropConstant(tol=1e-6).fit(X).selected_features_) == ["ok", "with_nan"]


def test_drop_constant_uses_training_rows_only():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 0.0, 0.0, 9.0]}, index=list("pqrs"))
    dc = DropConstant().fit(X.iloc[:3])  # b is constant on the training rows
    assert dc.selected_features_ == ["a"]
    assert list(dc.transform(X).columns) == ["a"]
    with pytest.raises(ValueError, match="every feature"):
        DropConstant().fit(X[["b"]].iloc[:3])


def test_zscore_matches_standard_scaler():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(3, 2, size=(30, 4)), columns=list("abcd"), index=[f"p{i}" for i in range(30)])
    X["c"] = 7.0  # constant: centred only, like StandardScaler
    z = ZScore().fit(X.iloc[:20])
    ref = StandardScaler().fit(X.iloc[:20].to_numpy())
    np.testing.assert_allclose(z.transform(X).to_numpy(), ref.transform(X.to_numpy()), atol=1e-12)
    np.testing.assert_allclose(z.mean_, ref.mean_)
    np.testing.assert_allclose(z.scale_, ref.scale_)
    back = z.inverse_transform(z.transform(X))
    np.testing.assert_allclose(back.to_numpy(), X.to_numpy(), atol=1e-12)


def test_zscore_keeps_nans_and_ignores_them_when_fitting():
    X = _frame()[["ok", "with_nan"]]
    out = ZScore().fit_transform(X)
    assert np.isnan(out.loc["b", "with_nan"])
    np.testing.assert_allclose(np.nanmean(out["with_nan"]), 0.0, atol=1e-12)


@pytest.mark.parametrize("strategy", ["median", "mean", "most_frequent"])
def test_impute_matches_simple_imputer(strategy):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, size=(25, 3)).astype(float)
    a[rng.random(a.shape) < 0.2] = np.nan
    X = pd.DataFrame(a, columns=["x", "y", "z"])
    ours = Impute(strategy=strategy).fit(X.iloc[:15]).transform(X)
    ref = SimpleImputer(strategy=strategy).fit(a[:15]).transform(a)
    np.testing.assert_allclose(ours.to_numpy(), ref)


def test_impute_all_missing_column_gets_fill_value():
    X = _frame()[["ok", "nan_only"]]
    out = Impute(fill_value=-1.0).fit_transform(X)
    assert (out["nan_only"] == -1.0).all()
    with pytest.raises(ValueError, match="unknown strategy"):
        Impute(strategy="mode").fit(X)
