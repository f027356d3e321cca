"""Keep the features that are reproducible under segmentation perturbation (ICC filter), fitted on training rows only.

Papers extract features twice (two readers, or the original mask and an
eroded / dilated one) and keep the features with an intraclass correlation
coefficient above a threshold (0.75 in most). Done on the whole cohort, that
choice already uses the test patients; here it is a step of the pipeline:
``fit`` computes, for each column, the ICC between the rows of ``X`` (the
training patients) and the rows of the *same* patients in each perturbed
table, with :func:`replicate.features.icc.icc`, and keeps the columns whose
ICC is above ``threshold``. ``transform`` only selects those columns.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ._base import FrameSelector
from .combat import lookup

__all__ = ["ICCFilter"]


class ICCFilter(FrameSelector):
    """Keep columns with ICC > ``threshold`` between ``X`` and the perturbed tables of the same patients.

    Parameters
    ----------
    perturbed : list of pandas.DataFrame
        One or more re-extractions (indexed by patient id, same feature
        columns as ``X``). A single DataFrame is accepted as a list of one.
        With numpy ``X``, rows are labelled ``0..n-1`` and columns are taken
        by position from each perturbed table.
    threshold : float
        Columns with ``ICC > threshold`` are kept (strictly greater, as
        "ICC > 0.75" in the papers).
    kind : str
        ``"ICC(1,1)"``, ``"ICC(2,1)"`` or ``"ICC(3,1)"`` (passed to
        :func:`replicate.features.icc.icc`).
    min_features : int
        If fewer columns pass, the ``min_features`` columns with the highest
        ICC are kept anyway and a warning is raised (so a pipeline never
        receives an empty table); ``0`` disables this and raises instead.

    Attributes
    ----------
    icc_ : pandas.Series, the training-row ICC of every input column (NaN for undefined, e.g. constant columns)
    """

    def __init__(self, perturbed=None, threshold: float = 0.75, kind: str = "ICC(3,1)", min_features: int = 1):
        self.perturbed = perturbed
        self.threshold = threshold
        self.kind = kind
        self.min_features = min_features

    def _others(self, df: pd.DataFrame, was_pandas: bool) -> list[pd.DataFrame]:
        if self.perturbed is None:
            raise ValueError("ICCFilter: no perturbed tables given (ICCFilter(perturbed=[DataFrame, ...]))")
        tables = [self.perturbed] if isinstance(self.perturbed, pd.DataFrame) else list(self.perturbed)
        if not tables:
            raise ValueError("ICCFilter: perturbed is empty")
        out = []
        for k, t in enumerate(tables):
            if not isinstance(t, pd.DataFrame):
                t = pd.DataFrame(np.asarray(t))
            if was_pandas:
                missing = [c for c in df.columns if c not in t.columns]
                if missing:
                    raise KeyError(
                        f"ICCFilter: perturbed table {k} lacks {len(missing)} column(s) of X, e.g. {missing[:5]}"
                    )
                t = t.loc[:, list(df.columns)]
            else:
                if t.shape[1] != df.shape[1]:
                    raise ValueError(f"ICCFilter: perturbed table {k} has {t.shape[1]} columns, X has {df.shape[1]}")
                t = t.set_axis(list(df.columns), axis=1)
            rows = lookup(t, df.index, f"row in perturbed table {k}", "ICCFilter")
            out.append(rows.astype(float))
        return out

    def fit(self, X, y=None):
        from replicate.features.icc import icc

        was_pandas = isinstance(X, pd.DataFrame)
        df = self._fit_columns(X).astype(float)
        others = self._others(df, was_pandas)
        values = icc(df, others, kind=self.kind)
        values = pd.Series(values).reindex(df.columns).astype(float)
        self.icc_ = values
        keep = (values > float(self.threshold)).fillna(False).to_numpy()
        n_min = int(self.min_features)
        if keep.sum() < max(n_min, 1):
            if n_min <= 0:
                raise ValueError(f"ICCFilter: no feature has {self.kind} > {self.threshold} on the training rows")
            order = np.argsort(-values.fillna(-np.inf).to_numpy(), kind="stable")[:n_min]
            keep = np.zeros(len(values), dtype=bool)
            keep[order] = True
            warnings.warn(
                f"ICCFilter: {int((values > self.threshold).sum())} feature(s) have {self.kind} > "
                f"{self.threshold}; keeping the {n_min} most reproducible one(s) instead",
                UserWarning,
                stacklevel=2,
            )
        self._set_support(keep)
        return self
