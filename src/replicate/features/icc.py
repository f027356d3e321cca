"""Intraclass correlation of every feature at once (vectorised two-way ANOVA).

    icc(reference, [perturbed_1, perturbed_2], kind="ICC(3,1)")  -> Series (one ICC per column)

``reference`` and each of ``others`` are DataFrames (rows = subjects, e.g. patients;
columns = features); the k = 1 + len(others) tables are the k "raters" (readers,
segmentations, perturbations). Rows are matched on the index, columns on name.

Forms (Shrout & Fleiss 1979, Psychol Bull 86:420; names of McGraw & Wong 1996,
Psychol Methods 1:30), with n subjects, k raters and the mean squares of the
two-way ANOVA: MSR (rows / subjects), MSC (columns / raters), MSE (residual),
MSW (within subjects, one-way):

* ``ICC(1,1)``  one-way random, single rater:            (MSR - MSW) / (MSR + (k-1) MSW)
* ``ICC(2,1)``  two-way random, absolute agreement:     (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n)
* ``ICC(3,1)``  two-way mixed, consistency:             (MSR - MSE) / (MSR + (k-1) MSE)
* ``ICC(1,k)``, ``ICC(2,k)``, ``ICC(3,k)``: the same for the mean of k raters.

These equal pingouin's ``intraclass_corr`` (0.7 labels them ``ICC(1,1)``,
``ICC(A,1)``, ``ICC(C,1)``, ``ICC(1,k)``, ``ICC(A,k)``, ``ICC(C,k)``; older versions
``ICC1`` ... ``ICC3k``), checked in ``tests/test_features_icc.py``. A subject with a missing/non-finite value for a
feature is left out of that feature's ICC only. A constant column (all values
equal) has no between-subject variance: its ICC is NaN, never 1 or 0, and is
listed in ``result.attrs["notes"]`` with a warning.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

_KINDS = {
    "ICC(1,1)": "ICC1",
    "ICC(2,1)": "ICC2",
    "ICC(3,1)": "ICC3",
    "ICC(1,k)": "ICC1k",
    "ICC(2,k)": "ICC2k",
    "ICC(3,k)": "ICC3k",
}
_ALIASES = {
    "icc1": "ICC(1,1)",
    "icc2": "ICC(2,1)",
    "icc3": "ICC(3,1)",
    "icc1k": "ICC(1,k)",
    "icc2k": "ICC(2,k)",
    "icc3k": "ICC(3,k)",
    "icc(a,1)": "ICC(2,1)",
    "icc(c,1)": "ICC(3,1)",
    "icc(a,k)": "ICC(2,k)",
    "icc(c,k)": "ICC(3,k)",
}
ALL_KINDS = tuple(_KINDS)


def _norm_kind(kind: str) -> str:
    k = re.sub(r"\s+", "", str(kind))
    if k.upper().replace("K", "k") in _KINDS:
        return k.upper().replace("K", "k")
    k2 = _ALIASES.get(k.lower())
    if k2 is None:
        raise ValueError(f"unknown ICC kind {kind!r}; use one of {list(_KINDS)} (or pingouin's ICC1..ICC3k)")
    return k2


def _stack(ref: pd.DataFrame, others: Sequence[pd.DataFrame]) -> tuple[np.ndarray, pd.Index, pd.Index]:
    if isinstance(others, pd.DataFrame):
        others = [others]
    if len(others) < 1:
        raise ValueError("ICC needs at least two raters: the reference and one other table")
    cols = ref.columns
    for i, o in enumerate(others):
        missing = cols.difference(o.columns)
        if len(missing):
            raise KeyError(
                f"table {i + 1} of `others` lacks {len(missing)} column(s) of the reference, e.g. {list(missing[:5])}"
            )
    idx = ref.index
    for o in others:
        idx = idx[idx.isin(o.index)]
    if len(idx) < len(ref.index):
        warnings.warn(
            f"ICC: {len(ref.index) - len(idx)} reference row(s) are missing from another table and are left out",
            stacklevel=3,
        )
    if idx.has_duplicates:
        raise ValueError("ICC: duplicated row labels in the reference table")
    Y = np.stack(
        [ref.loc[idx, cols].to_numpy(dtype=float)] + [o.loc[idx, cols].to_numpy(dtype=float) for o in others], axis=1
    )  # (n, k, p)
    return Y, idx, cols


def _mean_squares(Y: np.ndarray) -> dict[str, np.ndarray]:
    """Two-way ANOVA mean squares per feature from (n subjects, k raters, p features)."""
    n_all, k, p = Y.shape
    valid = np.isfinite(Y).all(axis=1)  # (n, p): subject usable for that feature
    n = valid.sum(axis=0).astype(float)  # (p,)
    Y0 = np.where(valid[:, None, :], Y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        row = Y0.sum(axis=1) / k  # (n, p)
        col = Y0.sum(axis=0) / n  # (k, p)
        grand = Y0.sum(axis=(0, 1)) / (n * k)  # (p,)
        v = valid.astype(float)
        ssr = k * (v * (row - grand) ** 2).sum(axis=0)
        ssc = n * ((col - grand) ** 2).sum(axis=0)
        resid = Y0 - row[:, None, :] - col[None, :, :] + grand
        sse = (v[:, None, :] * resid**2).sum(axis=(0, 1))
        ssw = (v[:, None, :] * (Y0 - row[:, None, :]) ** 2).sum(axis=(0, 1))
        msr = ssr / (n - 1)
        msc = ssc / (k - 1)
        mse = sse / ((n - 1) * (k - 1))
        msw = ssw / (n * (k - 1))
    vmax = np.where(valid[:, None, :], Y, -np.inf).max(axis=(0, 1))
    vmin = np.where(valid[:, None, :], Y, np.inf).min(axis=(0, 1))
    return {
        "n": n,
        "k": np.full(p, float(k)),
        "msr": msr,
        "msc": msc,
        "mse": mse,
        "msw": msw,
        "constant": (vmax == vmin) & (n > 0),
    }


def _icc_from(ms: dict[str, np.ndarray], kind: str) -> np.ndarray:
    n, k, msr, msc, mse, msw = ms["n"], ms["k"], ms["msr"], ms["msc"], ms["mse"], ms["msw"]
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "ICC(1,1)":
            out = (msr - msw) / (msr + (k - 1) * msw)
        elif kind == "ICC(2,1)":
            out = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        elif kind == "ICC(3,1)":
            out = (msr - mse) / (msr + (k - 1) * mse)
        elif kind == "ICC(1,k)":
            out = (msr - msw) / msr
        elif kind == "ICC(2,k)":
            out = (msr - mse) / (msr + (msc - mse) / n)
        else:  # ICC(3,k)
            out = (msr - mse) / msr
    out = np.where(ms["constant"] | (n < 2) | ~np.isfinite(out), np.nan, out)
    return out


def _notes(ms: dict[str, np.ndarray], cols: pd.Index) -> dict[str, str]:
    notes = {}
    for j, c in enumerate(cols):
        if ms["n"][j] < 2:
            notes[c] = f"fewer than 2 subjects with finite values for all raters (n = {int(ms['n'][j])})"
        elif ms["constant"][j]:
            notes[c] = "constant across all subjects and raters: no between-subject variance, ICC undefined (NaN)"
    return notes


def icc(ref: pd.DataFrame, others: Sequence[pd.DataFrame], kind: str = "ICC(3,1)") -> pd.Series | pd.DataFrame:
    """ICC of every column of ``ref`` between ``ref`` and ``others`` (rows matched on the index).

    ``kind``: ``"ICC(1,1)"``, ``"ICC(2,1)"``, ``"ICC(3,1)"`` (default), ``"ICC(1,k)"``,
    ``"ICC(2,k)"``, ``"ICC(3,k)"`` (``"ICC1"`` ... ``"ICC3k"`` and McGraw & Wong's
    ``"ICC(A,1)"``, ``"ICC(C,1)"``, ``"ICC(A,k)"``, ``"ICC(C,k)"`` are accepted too), or ``"all"`` for a
    DataFrame with one column per form. Constant columns give NaN (listed in ``.attrs["notes"]``, with a warning).
    """
    Y, idx, cols = _stack(ref, others)
    ms = _mean_squares(Y)
    notes = _notes(ms, cols)
    if notes:
        n_const = sum("constant" in v for v in notes.values())
        first = list(notes)[:5]
        warnings.warn(
            f"ICC is NaN for {len(notes)} feature(s) ({n_const} constant, "
            f"{len(notes) - n_const} with < 2 usable subjects), e.g. {first}",
            stacklevel=2,
        )
    if str(kind).lower() == "all":
        out = pd.DataFrame({k: _icc_from(ms, k) for k in ALL_KINDS}, index=cols)
    else:
        k = _norm_kind(kind)
        out = pd.Series(_icc_from(ms, k), index=cols, name=k)
    out.attrs["notes"] = notes
    out.attrs["n_subjects"] = int(len(idx))
    out.attrs["n_raters"] = int(Y.shape[1])
    return out
