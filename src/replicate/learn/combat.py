"""ComBat harmonisation (neuroCombat) as a scikit-learn transformer fitted on training rows only.

``ComBat(batch=Series)`` takes the batch (scanner, centre, vendor) of every
patient as a Series indexed by patient id and looks up ``X.index`` at
fit/transform time. ``fit`` runs :func:`neuroCombat.neuroCombat` on the
training rows (location/scale model, empirical Bayes, no covariates);
``transform`` applies those *training* estimates to any rows with
:func:`neuroCombat.neuroCombatFromTraining`, so a test patient never
influences the harmonisation. Transforming the training rows reproduces the
fit-time harmonised data (no covariates are modelled, so neuroCombat's
fit-time and from-training formulas coincide).

Edge cases, handled explicitly:

* a batch in the new rows that was not in the training rows -> ``ValueError``
  naming the batch and the patients;
* a single batch among the training rows -> nothing to harmonise: identity
  with a :class:`UserWarning` (``identity_`` is True);
* a training batch with fewer than 2 patients -> ``ValueError`` (its variance
  cannot be estimated);
* features that are constant on the training rows are passed through
  unchanged (ComBat's priors are undefined for them); put
  :class:`~replicate.learn.DropConstant` first to drop them instead;
* missing values -> ``ValueError`` (impute first);
* neuroCombat's non-parametric prior multiplies raw likelihoods and can
  underflow to 0/0 (NaN estimates for a batch x feature); those entries are
  replaced by the plain location/scale estimates (``gamma_hat`` /
  ``delta_hat``, what ``eb=False`` uses) with a warning
  (``nonfinite_estimates_`` counts them) instead of returning NaNs.

neuroCombat's console messages are silenced.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ._base import FrameTransformer

__all__ = ["ComBat", "lookup"]


def lookup(side: pd.Series | pd.DataFrame, index: pd.Index, what: str, owner: str):
    """Rows of a side-information object for the patients in ``index`` (clear error when some are missing)."""
    missing = index.difference(side.index)
    if len(missing):
        hint = ""
        if isinstance(index, pd.RangeIndex) and not isinstance(side.index, pd.RangeIndex):
            hint = " (X looks like a numpy array: pass a DataFrame indexed by patient id)"
        raise KeyError(f"{owner}: {len(missing)} patient(s) of X have no {what}, e.g. {list(missing[:5])}{hint}")
    return side.loc[index]


def _quiet(fn, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


class ComBat(FrameTransformer):
    """ComBat harmonisation fitted on the training rows (``neuroCombat``).

    Parameters
    ----------
    batch : pandas.Series
        Batch label of every patient, indexed by patient id (the rows of
        ``X`` are looked up by ``X.index``; numpy ``X`` has rows ``0..n-1``).
    parametric : bool
        Parametric (default) or non-parametric empirical Bayes priors.
    eb : bool
        Empirical Bayes shrinkage of the batch effects (default) or plain
        location/scale estimates.
    mean_only : bool
        Adjust only the batch means, not the variances.

    Attributes
    ----------
    batches_ : list of the training batches (as strings)
    estimates_ : neuroCombat's estimates dictionary (``None`` for identity)
    identity_ : True when the training rows came from a single batch
    harmonised_columns_ : columns that were harmonised (the others are constant on the training rows)
    fit_data_ : the harmonised training rows (equal to neuroCombat's output on them)
    """

    def __init__(self, batch=None, parametric: bool = True, eb: bool = True, mean_only: bool = False):
        self.batch = batch
        self.parametric = parametric
        self.eb = eb
        self.mean_only = mean_only

    def _batches(self, index: pd.Index) -> np.ndarray:
        if self.batch is None:
            raise ValueError("ComBat: no batch given (ComBat(batch=Series indexed by patient id))")
        b = self.batch if isinstance(self.batch, pd.Series) else pd.Series(self.batch)
        vals = lookup(b, index, "batch", "ComBat")
        if vals.isna().any():
            raise ValueError(f"ComBat: missing batch for {list(vals.index[vals.isna()][:5])}")
        return vals.astype(str).to_numpy()

    def fit(self, X, y=None):
        df = self._fit_columns(X)
        a = df.to_numpy(dtype=float)
        if np.isnan(a).any():
            raise ValueError("ComBat: X has missing values; impute first")
        b = self._batches(df.index)
        levels, counts = np.unique(b, return_counts=True)
        self.batches_ = [str(x) for x in levels]
        self.batch_counts_ = dict(zip(self.batches_, counts.tolist()))
        self.estimates_ = None
        self.identity_ = False
        const = np.ptp(a, axis=0) == 0
        self.harmonised_columns_ = [c for c, k in zip(self._columns, const) if not k]
        self._harm = ~const
        if len(levels) < 2:
            warnings.warn(
                f"ComBat: the training rows all come from one batch ({levels[0]!r}); "
                "nothing to harmonise, the transform is the identity",
                UserWarning,
                stacklevel=2,
            )
            self.identity_ = True
            return self
        small = [lv for lv, n in zip(levels, counts) if n < 2]
        if small:
            raise ValueError(
                f"ComBat: batch(es) {small} have fewer than 2 training patients; "
                "ComBat cannot estimate their variance (merge or drop them)"
            )
        if not self._harm.any():
            self.identity_ = True
            return self
        from neuroCombat import neuroCombat

        covars = pd.DataFrame({"batch": b})
        out = _quiet(
            neuroCombat,
            dat=a[:, self._harm].T.copy(),
            covars=covars,
            batch_col="batch",
            eb=self.eb,
            parametric=self.parametric,
            mean_only=self.mean_only,
        )
        est = out["estimates"]
        g = np.asarray(est["gamma.star"], dtype=float)
        d = np.asarray(est["delta.star"], dtype=float)
        bad = ~np.isfinite(g) | ~np.isfinite(d) | (d <= 0)
        self.nonfinite_estimates_ = int(bad.sum())
        if bad.any():
            # neuroCombat's non-parametric prior multiplies raw likelihoods, which underflow to 0/0
            g[bad] = np.asarray(est["gamma_hat"], dtype=float)[bad]
            d[bad] = np.asarray(est["delta_hat"], dtype=float)[bad]
            est = {**est, "gamma.star": g, "delta.star": d}
            cols = sorted({self.harmonised_columns_[j] for j in np.nonzero(bad)[1]})
            warnings.warn(
                f"ComBat: neuroCombat's empirical-Bayes estimates are not finite for {int(bad.sum())} "
                f"batch x feature pair(s) (e.g. {cols[:3]}; the non-parametric prior underflows); "
                "the plain location/scale estimates are used there",
                UserWarning,
                stacklevel=2,
            )
        self.estimates_ = est
        self.fit_data_ = self.transform(df)
        return self

    def transform(self, X):
        check_is_fitted(self, "identity_")
        df, was_pandas = self._frame(X)
        if self.identity_:
            b = self._batches(df.index)
            unseen = sorted(set(b) - set(self.batches_))
            if unseen:
                raise ValueError(f"ComBat: batch(es) {unseen} were not among the training batches {self.batches_}")
            return self._out(df.copy(), was_pandas)
        a = df.to_numpy(dtype=float)
        if np.isnan(a).any():
            raise ValueError("ComBat: X has missing values; impute first")
        b = self._batches(df.index)
        unseen = sorted(set(b) - set(self.batches_))
        if unseen:
            who = [str(i) for i, v in zip(df.index, b) if v in unseen][:5]
            raise ValueError(
                f"ComBat: batch(es) {unseen} (patients {who}) were not among the training "
                f"batches {self.batches_}; ComBat cannot harmonise an unseen batch"
            )
        from neuroCombat import neuroCombatFromTraining

        out = a.copy()
        if len(df):
            res = _quiet(neuroCombatFromTraining, dat=a[:, self._harm].T.copy(), batch=b, estimates=self.estimates_)
            out[:, self._harm] = np.asarray(res["data"]).T
        return self._out(pd.DataFrame(out, index=df.index, columns=df.columns), was_pandas)
