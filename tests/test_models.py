"""Classifier factory: every name builds, fits and predicts; SMOTE placement; tuning; make_pipeline."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from replicate.learn import DropConstant, MRMRSelector, ZScore
from replicate.models import (
    DISPLAY_NAMES,
    PARAM_GRIDS,
    AdaptiveSMOTE,
    available_classifiers,
    display_name,
    make_classifier,
    make_pipeline,
)


def _data(n=80, p=6, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    y = pd.Series((np.arange(n) < n // 4).astype(int), index=idx)  # imbalanced 1:3
    X = pd.DataFrame(rng.normal(size=(n, p)), index=idx, columns=[f"f{j}" for j in range(p)])
    X["f0"] += 2.0 * y
    return X, y


@pytest.mark.parametrize("name", available_classifiers())
@pytest.mark.parametrize("smote", [False, True])
def test_every_classifier_fits_and_predicts(name, smote):
    X, y = _data()
    m = make_classifier(name, seed=3, smote=smote)
    assert isinstance(m, Pipeline) and m.steps[-1][0] == "clf"
    assert [s for s, _ in m.steps] == (["scale", "smote", "clf"] if smote else ["scale", "clf"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecation noise from the factory
        m.fit(X, y)
        p = m.predict_proba(X)[:, 1]
    assert p.shape == (len(X),) and np.all((p >= 0) & (p <= 1))
    assert np.corrcoef(p, X["f0"])[0, 1] > 0.3
    # deterministic given the seed
    p2 = clone(m).fit(X, y).predict_proba(X)[:, 1]
    np.testing.assert_array_equal(p, p2)


def test_display_names_registry():
    assert set(DISPLAY_NAMES) == set(available_classifiers()) == set(PARAM_GRIDS)
    assert display_name("lr") == "Logistic regression" and display_name("svm") == "SVM"
    assert display_name("unknown") == "unknown"
    with pytest.raises(ValueError, match="unknown classifier"):
        make_classifier("xgboost")


def test_seed_reaches_random_estimators():
    m = make_classifier("rf", seed=11, smote=True)
    assert m.named_steps["clf"].random_state == 11
    assert m.named_steps["smote"].random_state == 11
    assert make_classifier("svm", seed=5).named_steps["clf"].probability is True
    assert make_classifier("svm").named_steps["clf"].kernel == "rbf"
    assert make_classifier("svm_linear").named_steps["clf"].kernel == "linear"
    assert make_classifier("lr", C=0.1).named_steps["clf"].C == 0.1
    assert [s for s, _ in make_classifier("gnb", scale=False).steps] == ["clf"]


def test_smote_only_resamples_training_rows():
    X, y = _data()
    m = make_classifier("lr", smote=True).fit(X, y)
    # SMOTE balanced the training data the classifier saw ...
    assert m.named_steps["clf"].n_features_in_ == X.shape[1]
    Xs, ys = m.named_steps["smote"].fit_resample(m.named_steps["scale"].transform(X), y)
    assert (ys == 1).sum() == (ys == 0).sum()
    # ... but predicting never resamples: one score per input row
    assert m.predict_proba(X.iloc[:7]).shape == (7, 2)


def test_adaptive_smote_small_minority():
    X, y = _data(n=40)
    y[:] = 0
    y.iloc[:3] = 1  # 3 minority samples < k_neighbors + 1
    with pytest.raises(ValueError):
        SMOTE(random_state=0).fit_resample(X, y)
    s = AdaptiveSMOTE(random_state=0)
    Xr, yr = s.fit_resample(X, y)
    assert (yr == 1).sum() == (yr == 0).sum() and s.k_neighbors_used_ == 2 and s.k_neighbors == 5
    y[:] = 0
    y.iloc[:1] = 1
    with pytest.warns(UserWarning, match="single training sample"):
        Xr, yr = AdaptiveSMOTE(random_state=0).fit_resample(X, y)
    assert len(yr) == len(y)
    # identical to SMOTE when the minority is large enough
    X, y = _data()
    a = AdaptiveSMOTE(random_state=4).fit_resample(X, y)[0]
    b = SMOTE(random_state=4).fit_resample(X, y)[0]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_tune_wraps_in_grid_search():
    X, y = _data()
    g = make_classifier("svm", tune=True, cv=3, seed=1, grid={"clf__C": [0.1, 10.0]})
    assert isinstance(g, GridSearchCV)
    g.fit(X, y)
    assert g.best_params_["clf__C"] in (0.1, 10.0)
    assert g.cv.n_splits == 3 and g.cv.shuffle and g.cv.random_state == 1
    assert g.predict_proba(X).shape == (len(X), 2)
    g2 = make_classifier("lr", tune=True)
    assert g2.param_grid == PARAM_GRIDS["lr"]


def test_make_pipeline_prepends_steps():
    X, y = _data(p=20)
    pipe = make_pipeline([DropConstant(), ("mrmr", MRMRSelector(k=3))], "svm", smote=True, seed=2)
    assert [s for s, _ in pipe.steps] == ["drop_constant", "mrmr", "scale", "smote", "clf"]
    pipe.fit(X, y)
    assert pipe.predict_proba(X).shape == (len(X), 2)
    assert len(pipe.named_steps["mrmr"].selected_features_) == 3
    # an estimator or a GridSearchCV becomes the last step; steps are cloned, never the caller's objects
    z = ZScore()
    pipe2 = make_pipeline([z, ZScore()], make_classifier("lr", tune=True, cv=3))
    assert [s for s, _ in pipe2.steps] == ["z_score", "z_score_2", "clf"]
    assert pipe2.steps[0][1] is not z
    pipe2.fit(X, y)
    with pytest.raises(TypeError):
        make_pipeline([], make_classifier("lr"), seed=1)
