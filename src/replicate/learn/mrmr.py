"""mRMR (minimum redundancy, maximum relevance) selection as a scikit-learn transformer.

Wraps :func:`mrmr.mrmr_classif` of the ``mrmr-selection`` package (the
implementation radiomics papers cite): relevance = ANOVA F-statistic of each
feature against the class, redundancy = mean absolute Pearson correlation
with the features already chosen, score = relevance / redundancy, greedy
forward selection of ``k`` features. Features with zero relevance (e.g.
constant ones) are never chosen, so fewer than ``k`` may come back.

Speed: the package computes the F-statistic and the correlations one
column at a time in pandas (about 3 s for 64 patients x 1,000 features).
With ``fast=True`` (default) and no missing values, the same two quantities
(and the mean/max of the redundancy row) are passed to ``mrmr_classif`` as
numpy callables (identical up to floating-point rounding, checked against
the package in the tests); the greedy loop is still the package's. With missing values, or ``fast=False``,
the package's own ``"f"`` / ``"c"`` functions are used.

Deterministic: no randomness; ties are broken by column order (the
package's ``argmax``).

Importing ``mrmr`` runs ``warnings.filterwarnings("ignore")`` globally; the
import here restores the warning filters afterwards.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.feature_selection import f_classif

from ._base import FrameSelector, as_series

__all__ = ["MRMRSelector", "import_mrmr"]


def import_mrmr():
    """``import mrmr`` without letting it silence every warning of the session."""
    with warnings.catch_warnings():
        import mrmr
    return mrmr


def _fast_relevance(X: pd.DataFrame, y: pd.Series) -> pd.Series:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        F, _ = f_classif(X.to_numpy(dtype=float), y.to_numpy())
    return pd.Series(F, index=X.columns).fillna(0.0)


def _row_mean(s: pd.Series) -> float:
    v = s.to_numpy()
    return v.sum() / v.size  # what pandas' mean computes for a complete float row


def _row_max(s: pd.Series) -> float:
    return s.to_numpy().max()


_FAST_DENOMINATORS = {"mean": _row_mean, "max": _row_max}


class _FastCorrelation:
    """Pearson correlation of one column with many (no missing values), from a standardised copy."""

    def __init__(self, X: pd.DataFrame):
        a = X.to_numpy(dtype=float)
        with np.errstate(all="ignore"):
            z = (a - a.mean(axis=0)) / a.std(axis=0)
        self.z = z / np.sqrt(a.shape[0])
        self.pos = {c: i for i, c in enumerate(X.columns)}

    def __call__(self, target_column, features, X=None) -> pd.Series:
        idx = [self.pos[f] for f in features]
        with np.errstate(all="ignore"):
            r = self.z[:, idx].T @ self.z[:, self.pos[target_column]]
        return pd.Series(r, index=list(features))


class MRMRSelector(FrameSelector):
    """Select ``k`` features by mRMR (``mrmr.mrmr_classif``).

    Parameters
    ----------
    k : int
        Number of features to select (at most; see the module docstring).
    relevance, redundancy, denominator : passed to ``mrmr_classif``
        (defaults ``"f"``, ``"c"``, ``"mean"``: the package's defaults).
    fast : bool
        Vectorised relevance/redundancy for complete data (same result).
    n_jobs : int
        Workers for the package's own column-wise functions (1: no processes).

    Attributes
    ----------
    ranking_ : list of the selected features in the order mRMR picked them
        (``selected_features_`` and the output keep the input column order)
    relevance_ : pandas.Series, the relevance of every input feature (0 where not positive)
    """

    def __init__(
        self, k: int = 15, relevance="f", redundancy="c", denominator="mean", fast: bool = True, n_jobs: int = 1
    ):
        self.k = k
        self.relevance = relevance
        self.redundancy = redundancy
        self.denominator = denominator
        self.fast = fast
        self.n_jobs = n_jobs

    def fit(self, X, y):
        mrmr = import_mrmr()
        df = self._fit_columns(X)
        df = df.astype(float)
        ys = as_series(y, df.index)
        if ys.nunique() < 2:
            raise ValueError("MRMRSelector: y has a single class")
        if int(self.k) < 1:
            raise ValueError("MRMRSelector: k must be >= 1")
        relevance, redundancy, denominator = self.relevance, self.redundancy, self.denominator
        complete = not df.isna().to_numpy().any()
        if self.fast and complete:
            if relevance == "f":
                relevance = _fast_relevance
            if redundancy == "c":
                redundancy = _FastCorrelation(df)
            if denominator in _FAST_DENOMINATORS:
                denominator = _FAST_DENOMINATORS[denominator]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            selected, rel, _ = mrmr.mrmr_classif(
                X=df,
                y=ys,
                K=int(self.k),
                relevance=relevance,
                redundancy=redundancy,
                denominator=denominator,
                return_scores=True,
                n_jobs=self.n_jobs,
                show_progress=False,
            )
        if not selected:
            raise ValueError("MRMRSelector: no feature has a positive relevance on the training rows")
        self.ranking_ = list(selected)
        self.relevance_ = pd.Series(rel, dtype=float).reindex(df.columns).fillna(0.0)
        chosen = set(selected)
        self._set_support([c in chosen for c in self._columns])  # output keeps the input column order
        return self
