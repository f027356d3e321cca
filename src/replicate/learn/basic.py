"""Label-free preprocessing steps: drop constant features, z-score, impute.

All three learn their statistics from the rows passed to ``fit`` only (the
training fold) and apply them unchanged to new rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ._base import FrameSelector, FrameTransformer

__all__ = ["DropConstant", "ZScore", "Impute"]


class DropConstant(FrameSelector):
    """Eliminate null features: NaN-only columns and columns that are constant on the training rows.

    A column is dropped when all its values are NaN or when its range
    ``max - min`` over the non-missing training values is ``<= tol``
    (``tol=0``: exactly constant, e.g. an all-zero "null" feature).
    Infinite values count as values (a column with an ``inf`` is not
    constant). If every column would be dropped, an error is raised.
    """

    def __init__(self, tol: float = 0.0):
        self.tol = tol

    def fit(self, X, y=None):
        df = self._fit_columns(X)
        a = df.to_numpy(dtype=float)
        all_nan = np.isnan(a).all(axis=0)
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            rng = np.nanmax(a, axis=0) - np.nanmin(a, axis=0)
        # inf - inf is NaN (a column of +inf only is constant); -inf..+inf has an infinite range
        rng = np.where(np.isnan(rng) & ~all_nan, 0.0, rng)
        keep = ~all_nan & (rng > float(self.tol))
        if not keep.any():
            raise ValueError("DropConstant: every feature is constant or missing on the training rows")
        self._set_support(keep)
        self.dropped_features_ = [c for c, k in zip(self._columns, keep) if not k]
        return self


class ZScore(FrameTransformer):
    """z-score each column with the training mean and standard deviation (scikit-learn's StandardScaler, pandas-aware).

    Same conventions as :class:`sklearn.preprocessing.StandardScaler`:
    population SD (``ddof=0``), NaNs ignored when fitting and kept when
    transforming, a zero SD replaced by 1 (the column is only centred).
    ``mean_`` and ``scale_`` are numpy arrays in input-column order.
    """

    def __init__(self, with_mean: bool = True, with_std: bool = True):
        self.with_mean = with_mean
        self.with_std = with_std

    def fit(self, X, y=None):
        df = self._fit_columns(X)
        a = df.to_numpy(dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(a, axis=0) if self.with_mean else np.zeros(a.shape[1])
            sd = np.nanstd(a, axis=0) if self.with_std else np.ones(a.shape[1])
        mean = np.where(np.isnan(mean), 0.0, mean)
        sd = np.where(~np.isfinite(sd) | (sd < 10 * np.finfo(float).eps * np.maximum(np.abs(mean), 1.0)), 1.0, sd)
        self.mean_ = mean
        self.scale_ = sd
        self.var_ = sd**2
        return self

    def transform(self, X):
        df, was_pandas = self._frame(X)
        a = (df.to_numpy(dtype=float) - self.mean_) / self.scale_
        return self._out(pd.DataFrame(a, index=df.index, columns=df.columns), was_pandas)

    def inverse_transform(self, X):
        df, was_pandas = self._frame(X)
        a = df.to_numpy(dtype=float) * self.scale_ + self.mean_
        return self._out(pd.DataFrame(a, index=df.index, columns=df.columns), was_pandas)


class Impute(FrameTransformer):
    """Fill missing values with a per-column training statistic.

    ``strategy``: ``"median"`` (default), ``"mean"``, ``"most_frequent"``
    (smallest of the most frequent values) or ``"constant"``
    (``fill_value``). A column that is missing on every training row is
    filled with ``fill_value`` (0.0); put :class:`DropConstant` first to
    drop such columns instead. ``statistics_`` holds the fill values.
    """

    def __init__(self, strategy: str = "median", fill_value: float = 0.0):
        self.strategy = strategy
        self.fill_value = fill_value

    def fit(self, X, y=None):
        df = self._fit_columns(X)
        a = df.to_numpy(dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if self.strategy == "median":
                stat = np.nanmedian(a, axis=0)
            elif self.strategy == "mean":
                stat = np.nanmean(a, axis=0)
            elif self.strategy == "most_frequent":
                stat = np.array(
                    [
                        pd.Series(a[:, j]).mode(dropna=True).min() if (~np.isnan(a[:, j])).any() else np.nan
                        for j in range(a.shape[1])
                    ]
                )
            elif self.strategy == "constant":
                stat = np.full(a.shape[1], float(self.fill_value))
            else:
                raise ValueError(f"unknown strategy {self.strategy!r}: use median, mean, most_frequent or constant")
        self.statistics_ = np.where(np.isnan(stat), float(self.fill_value), stat)
        return self

    def transform(self, X):
        df, was_pandas = self._frame(X)
        a = df.to_numpy(dtype=float).copy()
        rows, cols = np.nonzero(np.isnan(a))
        a[rows, cols] = self.statistics_[cols]
        return self._out(pd.DataFrame(a, index=df.index, columns=df.columns), was_pandas)
