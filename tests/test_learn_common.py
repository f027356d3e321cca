"""Contract shared by every learned step: get_params/clone round trip, pandas in/out, numpy in/out,
feature names, determinism, use inside cross_val_predict and an imblearn Pipeline."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from replicate.learn import (
    ComBat,
    DropConstant,
    FTestRFE,
    ICCFilter,
    Impute,
    LassoSelector,
    MRMRSelector,
    TTestFilter,
    ZScore,
)


def _data(n=60, p=12, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    cols = [f"feat_{j}" for j in range(p)]
    y = pd.Series((np.arange(n) % 3 == 0).astype(int), index=idx, name="label")
    X = pd.DataFrame(rng.normal(size=(n, p)), index=idx, columns=cols)
    X.iloc[:, :3] += 1.2 * y.to_numpy()[:, None]
    batch = pd.Series(np.where(np.arange(n) % 2 == 0, "A", "B"), index=idx, name="scanner")
    perturbed = [X + rng.normal(scale=0.2, size=X.shape), X + rng.normal(scale=0.2, size=X.shape)]
    return X, y, batch, perturbed


X0, Y0, BATCH0, PERT0 = _data()

ESTIMATORS = {
    "DropConstant": lambda: DropConstant(),
    "ZScore": lambda: ZScore(),
    "Impute": lambda: Impute(strategy="median"),
    "ICCFilter": lambda: ICCFilter(perturbed=PERT0, threshold=0.75),
    "ComBat": lambda: ComBat(batch=BATCH0),
    "MRMRSelector": lambda: MRMRSelector(k=5),
    "LassoSelector": lambda: LassoSelector(cv=5, random_state=1),
    "TTestFilter": lambda: TTestFilter(alpha=0.05),
    "FTestRFE": lambda: FTestRFE(percentile=50, n_features=3),
}


def _same(a, b) -> bool:
    """Equality of parameter values (clone deep-copies side-information tables)."""
    if isinstance(a, (pd.DataFrame, pd.Series)):
        return type(a) is type(b) and a.equals(b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, z) for x, z in zip(a, b))
    return a is b or a == b


@pytest.fixture(params=list(ESTIMATORS), ids=list(ESTIMATORS))
def make(request):
    return ESTIMATORS[request.param]


def test_get_params_clone_round_trip(make):
    est = make()
    params = est.get_params()
    twin = clone(est)
    assert type(twin) is type(est)
    p2 = twin.get_params()
    assert set(p2) == set(params)
    for k, v in params.items():
        assert _same(p2[k], v), k
    # set_params round trip
    est.set_params(**params)
    assert est.get_params().keys() == params.keys()


def test_pandas_in_pandas_out(make):
    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = est.fit(X0, Y0).transform(X0)
    assert isinstance(out, pd.DataFrame)
    assert out.index.equals(X0.index)
    assert list(out.columns) == list(est.get_feature_names_out())
    assert set(out.columns) <= set(X0.columns)
    # transform on other rows keeps their index, and a re-ordered frame works
    sub = X0.iloc[5:15][list(X0.columns[::-1])]
    out2 = est.transform(sub)
    assert out2.index.equals(sub.index)
    assert list(out2.columns) == list(out.columns)
    np.testing.assert_allclose(out2.to_numpy(), out.iloc[5:15].to_numpy(), atol=1e-10)


def test_missing_column_is_a_clear_error(make):
    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(X0, Y0)
    with pytest.raises(ValueError, match="lacks"):
        est.transform(X0.drop(columns=[X0.columns[0]]))


def test_numpy_in_numpy_out():
    # side-information steps need patient ids; for the others numpy works like pandas
    for name in ["DropConstant", "ZScore", "Impute", "MRMRSelector", "LassoSelector", "TTestFilter", "FTestRFE"]:
        est = ESTIMATORS[name]()
        out_pd = clone(est).fit(X0, Y0).transform(X0)
        out_np = est.fit(X0.to_numpy(), Y0.to_numpy()).transform(X0.to_numpy())
        assert isinstance(out_np, np.ndarray), name
        np.testing.assert_allclose(out_np, out_pd.to_numpy(), atol=1e-10, err_msg=name)
        names = est.get_feature_names_out()
        assert all(n.startswith("x") for n in names), name


def test_side_information_with_numpy_rows_by_position():
    # a numpy X has rows 0..n-1; side information indexed 0..n-1 works, patient ids give a clear error
    Xn = X0.to_numpy()
    b = BATCH0.reset_index(drop=True)
    out = ComBat(batch=b).fit(Xn).transform(Xn)
    assert isinstance(out, np.ndarray) and out.shape == Xn.shape
    with pytest.raises(KeyError, match="DataFrame indexed by patient id"):
        ComBat(batch=BATCH0).fit(Xn)
    pert = [p.reset_index(drop=True) for p in PERT0]
    assert ICCFilter(perturbed=pert).fit(Xn).transform(Xn).shape[0] == len(Xn)


def test_deterministic(make):
    a = make().fit(X0, Y0).transform(X0)
    b = make().fit(X0, Y0).transform(X0)
    pd.testing.assert_frame_equal(a, b)


def test_fitted_on_training_rows_only(make):
    """Changing the test rows (features and labels) changes nothing that was learned from the training rows."""
    train, test = X0.index[:40], X0.index[40:]
    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(X0.loc[train], Y0.loc[train])
    out_a = est.transform(X0.loc[test])
    X_b = X0.copy()
    X_b.loc[test] = X_b.loc[test] * 10 + 5  # wildly different test rows
    est2 = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est2.fit(X_b.loc[train], Y0.loc[train])
    assert list(est2.get_feature_names_out()) == list(est.get_feature_names_out())
    pd.testing.assert_frame_equal(est2.transform(X0.loc[test]), out_a)


@pytest.mark.parametrize("name", ["ICCFilter", "ComBat", "MRMRSelector", "LassoSelector", "TTestFilter", "ZScore"])
def test_inside_cross_val_predict_and_imblearn_pipeline(name):
    from imblearn.over_sampling import SMOTE

    pipe = Pipeline(
        [("step", ESTIMATORS[name]()), ("smote", SMOTE(random_state=0)), ("clf", LogisticRegression(max_iter=1000))]
    )
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        p = cross_val_predict(pipe, X0, Y0, cv=cv, method="predict_proba")[:, 1]
    assert p.shape == (len(X0),)
    assert np.isfinite(p).all()


def test_sklearn_set_output_pandas_is_compatible():
    from sklearn import config_context

    with config_context(transform_output="pandas"):
        out = ZScore().fit(X0.to_numpy()).transform(X0.to_numpy())
        assert isinstance(out, pd.DataFrame)
        out = DropConstant().fit(X0).transform(X0)
        assert out.index.equals(X0.index)
