"""Shared plumbing of the learned steps: pandas in -> pandas out, numpy in -> numpy out.

Every transformer of :mod:`replicate.learn` follows the same rules:

* A :class:`pandas.DataFrame` in gives a DataFrame out with the same index
  (patient ids) and the (selected) column names. At ``transform`` time the
  columns are looked up *by name* (so a re-ordered frame is fine; a missing
  column is a clear error).
* A numpy array in gives a numpy array out. Its columns are named
  ``x0, x1, ...`` internally (scikit-learn's convention) and matched by
  position; its rows are labelled ``0 .. n-1``.
* ``get_feature_names_out()`` gives the output column names;
  selectors also have ``support_`` (bool mask over the input columns),
  ``get_support()`` and ``selected_features_`` (list of names).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["as_frame", "as_series", "FrameTransformer", "FrameSelector"]


def as_frame(X, columns=None) -> tuple[pd.DataFrame, bool]:
    """``(DataFrame, was_pandas)``; a 2-D array gets columns ``x0..`` (or ``columns``) and a RangeIndex."""
    if isinstance(X, pd.DataFrame):
        return X, True
    if isinstance(X, pd.Series):
        raise ValueError("expected a 2-D table of features (DataFrame or array), got a Series")
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array of shape (n_samples, n_features), got shape {arr.shape}")
    if columns is None:
        columns = [f"x{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=list(columns)), False


def as_series(y, index) -> pd.Series:
    """``y`` as a Series aligned to ``index``: a Series with the same labels is re-ordered,
    anything else is taken positionally."""
    if isinstance(y, pd.Series):
        if y.index.equals(index):
            return y
        if len(y) == len(index) and y.index.isin(index).all() and index.isin(y.index).all() and index.is_unique:
            return y.loc[index]
        if len(y) == len(index):
            return pd.Series(y.to_numpy(), index=index, name=y.name)
        raise ValueError(f"y has {len(y)} values, X has {len(index)} rows")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or len(arr) != len(index):
        raise ValueError(f"y must be 1-D with {len(index)} values, got shape {arr.shape}")
    return pd.Series(arr, index=index)


class FrameTransformer(TransformerMixin, BaseEstimator):
    """Base class: records the input columns at fit and re-reads inputs consistently."""

    def _fit_columns(self, X) -> pd.DataFrame:
        df, was_pandas = as_frame(X)
        if df.shape[1] == 0:
            raise ValueError(f"{type(self).__name__}: X has no columns")
        if df.shape[0] == 0:
            raise ValueError(f"{type(self).__name__}: X has no rows")
        self.n_features_in_ = int(df.shape[1])
        if was_pandas:
            if not df.columns.is_unique:
                dup = df.columns[df.columns.duplicated()].unique().tolist()[:5]
                raise ValueError(f"{type(self).__name__}: duplicated column names {dup}")
            self.feature_names_in_ = np.asarray(df.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._columns = list(df.columns)
        return df

    def _frame(self, X) -> tuple[pd.DataFrame, bool]:
        """Input at transform time, columns in fit order."""
        check_is_fitted(self, "n_features_in_")
        if isinstance(X, pd.DataFrame):
            if X.columns.equals(pd.Index(self._columns)):
                return X, True
            missing = [c for c in self._columns if c not in X.columns]
            if missing:
                raise ValueError(
                    f"{type(self).__name__}: X lacks {len(missing)} column(s) seen at fit, e.g. {missing[:5]}"
                )
            return X.loc[:, self._columns], True
        df, _ = as_frame(X, columns=None)
        if df.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{type(self).__name__}: X has {df.shape[1]} features, {self.n_features_in_} were seen at fit"
            )
        df.columns = self._columns
        return df, False

    @staticmethod
    def _out(df: pd.DataFrame, was_pandas: bool):
        return df if was_pandas else df.to_numpy()

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "n_features_in_")
        return np.asarray([str(c) for c in self._columns], dtype=object)


class FrameSelector(FrameTransformer):
    """Base class of the feature selectors: subclasses set ``self.support_`` in ``fit``."""

    def _set_support(self, support) -> None:
        support = np.asarray(support, dtype=bool)
        if support.shape != (self.n_features_in_,):
            raise RuntimeError("support mask has the wrong shape")
        self.support_ = support
        self.selected_features_ = [c for c, s in zip(self._columns, support) if s]
        self.n_features_selected_ = int(support.sum())

    def get_support(self, indices: bool = False):
        check_is_fitted(self, "support_")
        return np.flatnonzero(self.support_) if indices else self.support_.copy()

    def transform(self, X):
        check_is_fitted(self, "support_")
        df, was_pandas = self._frame(X)
        return self._out(df.loc[:, self.selected_features_], was_pandas)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "support_")
        return np.asarray([str(c) for c in self.selected_features_], dtype=object)
