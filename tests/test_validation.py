"""Validation protocols, and the key acceptance test of the leak-free design.

The acceptance test: on pure-noise features with many more features than
patients, the full pipeline (DropConstant -> ZScore -> mRMR(15) -> LASSO ->
SMOTE + SVM) refitted inside every fold gives a cross-validated AUC near 0.5,
while selecting the features on the whole data set first (the leaky way)
gives a clearly inflated AUC; with a planted signal the leak-free AUC is high.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from replicate.learn import DropConstant, LassoSelector, MRMRSelector, ZScore
from replicate.models import make_classifier, make_pipeline
from replicate.stats.resampled_ttest import corrected_resampled_ttest_ci
from replicate.validation import (
    CVPredictions,
    evaluate_splits,
    external_validation,
    permute_labels,
    random_splits,
    repeated_cv_predict,
    summarise_splits,
)


def _cohort(n=80, p=1000, n_pos=32, signal=0.0, n_informative=10, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    y = pd.Series((np.arange(n) < n_pos).astype(int), index=idx, name="label")
    X = pd.DataFrame(rng.normal(size=(n, p)), index=idx, columns=[f"feature_{j:04d}" for j in range(p)])
    X["null_feature"] = 0.0  # eliminated by DropConstant
    if signal:
        X.iloc[:, :n_informative] += signal * y.to_numpy()[:, None]
    return X, y


def _radiomics_pipeline():
    return make_pipeline(
        [DropConstant(), ZScore(), MRMRSelector(k=15), LassoSelector(cv=10)], "svm", smote=True, seed=0
    )


# ------------------------------------------------------------------------ the acceptance test


@pytest.mark.slow
def test_leak_free_pipeline_on_noise_is_at_chance_and_leaky_selection_is_not():
    X, y = _cohort(signal=0.0, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cv = repeated_cv_predict(_radiomics_pipeline, X, y, n_splits=5, n_repeats=2, seed=0, progress=False)
        assert abs(cv.auc_mean - 0.5) <= 0.1, cv.auc_per_repeat.tolist()

        # the leaky way: select on all 80 patients first, then cross-validate only the classifier
        selector = make_pipeline(
            [DropConstant(), ZScore(), MRMRSelector(k=15), LassoSelector(cv=10)], LogisticRegression()
        ).steps[:-1]
        from imblearn.pipeline import Pipeline

        pre = Pipeline(selector).fit(X, y)
        X_sel = pre.transform(X)
        leaky = repeated_cv_predict(
            make_classifier("svm", smote=True, seed=0), X_sel, y, n_splits=5, n_repeats=2, seed=0, progress=False
        )
    assert leaky.auc_mean > 0.75, leaky.auc_per_repeat.tolist()
    assert leaky.auc_mean - cv.auc_mean > 0.2


@pytest.mark.slow
def test_leak_free_pipeline_finds_a_planted_signal():
    X, y = _cohort(signal=1.2, n_informative=10, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cv = repeated_cv_predict(
            _radiomics_pipeline,
            X,
            y,
            n_splits=5,
            n_repeats=2,
            seed=0,
            progress=False,
            inspect=lambda m: m.named_steps["lasso_selector"].selected_features_,
        )
    assert cv.auc_mean > 0.8, cv.auc_per_repeat.tolist()
    # the selected features are mostly the informative ones
    informative = set(X.columns[:10])
    share = np.mean([len(informative & set(f["info"])) / len(f["info"]) for f in cv.fold_info])
    assert share > 0.5


# ------------------------------------------------------------------------ no leakage, mechanically


class Spy(ClassifierMixin, BaseEstimator):
    """Records the patients it was fitted on and asked about."""

    log: list = []

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.train_ = list(X.index)
        Spy.log.append(("fit", list(X.index)))
        return self

    def predict_proba(self, X):
        Spy.log.append(("predict", list(X.index), self.train_))
        p = np.full(len(X), 0.5)
        return np.column_stack([1 - p, p])


def test_repeated_cv_never_predicts_a_training_patient():
    X, y = _cohort(n=40, p=5)
    Spy.log = []
    cv = repeated_cv_predict(Spy(), X, y, n_splits=4, n_repeats=3, seed=2, progress=False)
    preds = [e for e in Spy.log if e[0] == "predict"]
    assert len(preds) == 12
    for _, test, train in preds:
        assert not set(test) & set(train)
        assert len(set(test) | set(train)) == 40
    # each patient is predicted exactly once per repeat
    for r in range(3):
        seen = sum((e[1] for e in preds[4 * r : 4 * r + 4]), [])
        assert sorted(seen) == sorted(X.index)
    assert cv.per_repeat.notna().all().all()


def test_repeated_cv_outputs():
    X, y = _cohort(n=60, p=4, signal=1.0, n_informative=2)
    cv = repeated_cv_predict(make_classifier("lr"), X, y, n_splits=5, n_repeats=3, seed=3, progress=False)
    assert isinstance(cv, CVPredictions)
    assert cv.per_repeat.shape == (60, 3) and cv.per_repeat.index.equals(X.index)
    pd.testing.assert_series_equal(cv.oof_mean, cv.per_repeat.mean(axis=1).rename("p"))
    for r in range(3):
        assert cv.auc_per_repeat[r] == pytest.approx(roc_auc_score(y, cv.per_repeat[r]))
    assert cv.auc_of_mean == pytest.approx(roc_auc_score(y, cv.oof_mean))
    assert cv.y.index.equals(X.index)
    # different repeats use different folds, the same seed the same folds
    assert not np.allclose(cv.per_repeat[0], cv.per_repeat[1])
    again = repeated_cv_predict(lambda: make_classifier("lr"), X, y, n_splits=5, n_repeats=3, seed=3, progress=False)
    pd.testing.assert_frame_equal(cv.per_repeat, again.per_repeat)
    # numpy inputs work too
    npcv = repeated_cv_predict(
        make_classifier("lr"), X.to_numpy(), y.to_numpy(), n_splits=5, n_repeats=3, seed=3, progress=False
    )
    np.testing.assert_allclose(npcv.per_repeat.to_numpy(), cv.per_repeat.to_numpy())


def test_repeated_cv_parallel_equals_serial():
    X, y = _cohort(n=50, p=4, signal=1.0, n_informative=2)
    a = repeated_cv_predict(make_classifier("lr", smote=True), X, y, n_splits=5, n_repeats=2, progress=False)
    from joblib import parallel_config

    with parallel_config(backend="threading"):  # the joblib path without process start-up cost
        b = repeated_cv_predict(
            make_classifier("lr", smote=True), X, y, n_splits=5, n_repeats=2, progress=False, n_jobs=2
        )
    pd.testing.assert_frame_equal(a.per_repeat, b.per_repeat)


def test_external_validation():
    X, y = _cohort(n=90, p=5, signal=1.0, n_informative=2)
    tr, te = X.index[:60], X.index[60:]
    model, p_train, p_test = external_validation(make_classifier("lr"), X.loc[tr], y.loc[tr], X.loc[te])
    assert p_train.index.equals(tr) and p_test.index.equals(te)
    ref = make_classifier("lr").fit(X.loc[tr], y.loc[tr])
    np.testing.assert_allclose(p_test.to_numpy(), ref.predict_proba(X.loc[te])[:, 1])
    np.testing.assert_allclose(p_train.to_numpy(), ref.predict_proba(X.loc[tr])[:, 1])
    assert hasattr(model, "predict_proba")


# ------------------------------------------------------------------------ WORC-style random splits


def test_random_splits_are_stratified_80_20():
    y = pd.Series([1] * 30 + [0] * 70)
    splits = random_splits(y, n_splits=20, test_size=0.2, seed=4)
    assert len(splits) == 20
    for tr, te in splits:
        assert len(te) == 20 and len(tr) == 80 and not set(tr) & set(te)
        assert y.iloc[te].sum() == 6
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, random_splits(y, 20, 0.2, seed=4)))
    assert not np.array_equal(splits[0][1], splits[1][1])


def test_evaluate_and_summarise_splits():
    X, y = _cohort(n=100, p=5, signal=1.0, n_informative=2)
    splits = random_splits(y, n_splits=6, seed=0)
    df = evaluate_splits(make_classifier("lr"), X, y, splits, metrics=("AUC", "BCA", "SEN", "SPE"))
    assert list(df.columns) == ["split", "n_train", "n_test", "AUC", "BCA", "SEN", "SPE"] and len(df) == 6
    tr, te = splits[2]
    p = make_classifier("lr").fit(X.iloc[tr], y.iloc[tr]).predict_proba(X.iloc[te])[:, 1]
    yt = y.iloc[te].to_numpy()
    pred = (p >= 0.5).astype(int)
    sen, spe = pred[yt == 1].mean(), 1 - pred[yt == 0].mean()
    row = df.iloc[2]
    assert row["AUC"] == pytest.approx(roc_auc_score(yt, p))
    assert row["SEN"] == pytest.approx(sen) and row["SPE"] == pytest.approx(spe)
    assert row["BCA"] == pytest.approx((sen + spe) / 2)

    summ = summarise_splits(df)
    assert list(summ.index) == ["AUC", "BCA", "SEN", "SPE"]
    m, lo, hi = corrected_resampled_ttest_ci(df["AUC"], 80, 20, 0.95)
    assert summ.loc["AUC", "mean"] == pytest.approx(m)
    assert summ.loc["AUC", "low"] == pytest.approx(lo) and summ.loc["AUC", "high"] == pytest.approx(hi)
    assert summ.loc["AUC", "n_splits"] == 6
    wider = summarise_splits(df, n_train=50, n_test=50)
    assert wider.loc["AUC", "high"] - wider.loc["AUC", "low"] > hi - lo
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_splits(make_classifier("lr"), X, y, splits[:1], metrics=("XYZ",))


def test_permute_labels():
    y = pd.Series([1] * 10 + [0] * 30, index=[f"p{i}" for i in range(40)], name="lbl")
    a = permute_labels(y, seed=1)
    assert a.index.equals(y.index) and a.name == "lbl" and a.sum() == 10
    assert not a.equals(y)
    pd.testing.assert_series_equal(a, permute_labels(y, seed=1))
    assert not a.equals(permute_labels(y, seed=2))
    arr = permute_labels(y.to_numpy(), seed=1)
    assert isinstance(arr, np.ndarray) and arr.sum() == 10


def _data(seed=0):
    X, y = _cohort(n=60, p=5, n_pos=25, signal=1.0, n_informative=2, seed=seed)
    return X.drop(columns="null_feature"), y


class _TwoScores:
    """An estimator that scores two models at once (like a DLRN: a signature and a nomogram)."""

    def __init__(self):
        from sklearn.linear_model import LogisticRegression

        self.a, self.b = LogisticRegression(), LogisticRegression(C=0.01)

    def fit(self, X, y):
        self.a.fit(X, y)
        self.b.fit(X.iloc[:, :1], y)
        return self

    def predict_scores(self, X):
        return pd.DataFrame(
            {"A": self.a.predict_proba(X)[:, 1], "B": self.b.predict_proba(X.iloc[:, :1])[:, 1]}, index=X.index
        )


def test_repeated_cv_scores_every_model_and_summarises_fold_aucs():
    from replicate.stats import corrected_resampled_ttest_ci
    from replicate.validation import repeated_cv

    X, y = _data(seed=5)
    res = repeated_cv(_TwoScores, X, y, n_splits=4, n_repeats=3, seed=1)
    assert res.models == ["A", "B"] and res.per_repeat["A"].shape == (len(y), 3)
    assert not res.per_repeat["A"].isna().any().any() and (res.fold_of.to_numpy() >= 0).all()
    s = res.auc_summary()
    a = res.fold_aucs[res.fold_aucs.model == "A"]
    mean, lo, hi = corrected_resampled_ttest_ci(a["AUC"], a["n_train"].mean(), a["n_test"].mean())
    assert (s.loc["A", "mean"], s.loc["A", "low"], s.loc["A", "high"]) == pytest.approx((mean, lo, hi))
    assert s.loc["A", "n_folds"] == 12 and len(s.loc["A", "per_repeat"]) == 3
    # the one-model view is the same computation
    single = repeated_cv_predict(make_classifier("lr"), X, y, n_splits=4, n_repeats=3, seed=1, progress=False)
    assert single.auc_summary()["n_folds"] == 12 and single.result.models == ["score"]


def test_split_scores_and_per_model_summary():
    from replicate.validation import split_scores

    X, y = _data(seed=6)
    splits = random_splits(y, n_splits=5, seed=2)
    df = split_scores(_TwoScores, X, y, splits, metrics=("AUC", "SEN"))
    assert len(df) == 10 and set(df["model"]) == {"A", "B"}
    summ = summarise_splits(df)
    assert set(summ.index.get_level_values("model")) == {"A", "B"} and summ.loc[("A", "AUC"), "n_splits"] == 5


def test_tuned_makes_a_nested_cv():
    from replicate.validation import repeated_cv, tuned

    X, y = _data(seed=7)
    seen = []
    res = repeated_cv(
        tuned(make_classifier("lr"), {"clf__C": [0.01, 1.0]}, inner_cv=3),
        X,
        y,
        n_splits=3,
        n_repeats=1,
        inspect=lambda m: seen.append(m.best_params_) or m.best_params_,
    )
    assert len(seen) == 3 and all(set(p) == {"clf__C"} for p in seen) and res.models == ["score"]
