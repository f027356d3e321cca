"""Univariate filters: Student's t-test filter and ANOVA F-test + recursive feature elimination.

Both are fitted on the training rows only (put them inside the pipeline).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone
from sklearn.feature_selection import RFE, RFECV, f_classif
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from ._base import FrameSelector, as_series

__all__ = ["TTestFilter", "FTestRFE"]


def _binary(y: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    yv = y.to_numpy()
    classes = np.unique(yv)
    if len(classes) != 2:
        raise ValueError(f"y must have exactly 2 classes, got {classes.tolist()}")
    return yv, classes


class TTestFilter(FrameSelector):
    """Keep features whose two-sample t-test between the classes has ``p < alpha``.

    ``equal_var=True``: Student's t-test (pooled variance), as the papers
    write; ``False``: Welch's. Missing values are omitted per feature.
    At least one feature is kept: if none has ``p < alpha``, the feature
    with the smallest p-value is kept (``fallback_`` is True; no warning,
    as this is routine on null data). Undefined p-values (constant
    features) count as 1.

    Attributes: ``pvalues_``, ``statistics_`` (Series over the input features).
    """

    def __init__(self, alpha: float = 0.05, equal_var: bool = True):
        self.alpha = alpha
        self.equal_var = equal_var

    def fit(self, X, y):
        df = self._fit_columns(X).astype(float)
        ys = as_series(y, df.index)
        yv, classes = _binary(ys)
        a = df.to_numpy()
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            t, p = stats.ttest_ind(
                a[yv == classes[1]], a[yv == classes[0]], axis=0, equal_var=self.equal_var, nan_policy="omit"
            )
        p = np.where(np.isnan(np.asarray(p, dtype=float)), 1.0, np.asarray(p, dtype=float))
        self.pvalues_ = pd.Series(p, index=self._columns)
        self.statistics_ = pd.Series(np.asarray(t, dtype=float), index=self._columns)
        keep = p < float(self.alpha)
        self.fallback_ = not keep.any()
        if self.fallback_:
            keep = np.zeros_like(keep)
            keep[int(np.argmin(p))] = True
        self._set_support(keep)
        return self


class FTestRFE(FrameSelector):
    """ANOVA F-test pre-filter (top ``percentile`` %) followed by recursive feature elimination.

    1. :func:`sklearn.feature_selection.f_classif` on the training rows;
       the top ``percentile`` % of features by F (at least 1) go on.
    2. :class:`~sklearn.feature_selection.RFE` down to ``n_features`` when
       it is given, otherwise :class:`~sklearn.feature_selection.RFECV`
       (the number chosen by stratified ``cv``-fold CV, shuffled with
       ``random_state``, scored by ``scoring``), removing ``step`` (a
       fraction or a count) of the features per round.

    ``estimator`` defaults to a linear SVM (``SVC(kernel="linear")``,
    ranked by ``|coef_|``). Attributes: ``scores_`` / ``pvalues_`` (F-test,
    Series over the input features), ``prefiltered_features_``,
    ``ranking_`` (Series; RFE rank of the pre-filtered features, 1 =
    kept), ``rfe_`` (the fitted RFE/RFECV).
    """

    def __init__(
        self,
        percentile: float = 20,
        n_features: int | None = None,
        estimator=None,
        step=0.1,
        cv: int = 5,
        scoring: str = "roc_auc",
        random_state: int = 0,
    ):
        self.percentile = percentile
        self.n_features = n_features
        self.estimator = estimator
        self.step = step
        self.cv = cv
        self.scoring = scoring
        self.random_state = random_state

    def fit(self, X, y):
        df = self._fit_columns(X).astype(float)
        if df.isna().to_numpy().any():
            raise ValueError("FTestRFE: X has missing values; impute first")
        ys = as_series(y, df.index)
        yv, _ = _binary(ys)
        a = df.to_numpy()
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            F, p = f_classif(a, yv)
        F = np.where(np.isnan(F), 0.0, F)
        p = np.where(np.isnan(p), 1.0, p)
        self.scores_ = pd.Series(F, index=self._columns)
        self.pvalues_ = pd.Series(p, index=self._columns)
        n_pre = max(1, int(np.ceil(a.shape[1] * float(self.percentile) / 100.0)))
        pre = np.sort(np.argsort(-F, kind="stable")[:n_pre])
        self.prefiltered_features_ = [self._columns[j] for j in pre]
        est = SVC(kernel="linear") if self.estimator is None else clone(self.estimator)
        ap = a[:, pre]
        if self.n_features is not None:
            n_sel = min(int(self.n_features), len(pre))
            rfe = RFE(est, n_features_to_select=n_sel, step=self.step)
        else:
            counts = np.unique(yv, return_counts=True)[1]
            n_splits = int(min(int(self.cv), counts.min()))
            if n_splits < 2:
                raise ValueError("FTestRFE: each class needs at least 2 training patients for RFECV")
            rfe = RFECV(
                est,
                step=self.step,
                cv=StratifiedKFold(n_splits, shuffle=True, random_state=self.random_state),
                scoring=self.scoring,
            )
        rfe.fit(ap, yv)
        self.rfe_ = rfe
        self.ranking_ = pd.Series(rfe.ranking_, index=self.prefiltered_features_)
        keep = np.zeros(a.shape[1], dtype=bool)
        keep[pre[rfe.support_]] = True
        self._set_support(keep)
        return self
