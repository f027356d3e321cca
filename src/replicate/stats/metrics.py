"""Confusion-matrix metrics with confidence intervals, and cut-offs.

Definitions (TP, FP, TN, FN from ``y`` = 0/1 truth and ``y_pred`` = 0/1
prediction; positive = 1):

=====  ======================  ==================================================
ACC    (TP + TN) / N           CI: ``ci_method`` on (TP + TN, N)
ER     (FP + FN) / N = 1 - ACC CI: ``ci_method`` on (FP + FN, N)
SEN    TP / (TP + FN)          CI: ``ci_method`` on (TP, TP + FN)
SPE    TN / (TN + FP)          CI: ``ci_method`` on (TN, TN + FP)
PPV    TP / (TP + FP)          CI: ``ci_method`` on (TP, TP + FP)
NPV    TN / (TN + FN)          CI: ``ci_method`` on (TN, TN + FN)
BCA    (SEN + SPE) / 2         CI: MOVER (Zou & Donner 2008, Stat Med 27:1693)
                               from the SEN and SPE intervals (independent
                               patients): [BCA - sqrt((SEN-l1)^2 + (SPE-l2)^2)/2,
                               BCA + sqrt((u1-SEN)^2 + (u2-SPE)^2)/2]
F1     2TP / (2TP + FP + FN)   CI: delta method on the multinomial
                               (TP, FP, FN, TN) / N (as in Takahashi et al.
                               2022, Appl Intell 52:4961), Wald, truncated to [0, 1]
=====  ======================  ==================================================

A metric whose denominator is 0 is ``(nan, nan, nan)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ._util import as_binary, as_float, both_classes, z_crit
from .proportions import proportion_ci

__all__ = [
    "ConfusionCounts",
    "confusion_counts",
    "confusion_metrics",
    "METRICS",
    "youden_threshold",
    "threshold_for_sensitivity",
    "classification_report",
]

METRICS = ("ACC", "ER", "SEN", "SPE", "PPV", "NPV", "BCA", "F1")
NAN3 = (float("nan"), float("nan"), float("nan"))


class ConfusionCounts(NamedTuple):
    """Counts in scikit-learn's ``confusion_matrix(...).ravel()`` order."""

    tn: int
    fp: int
    fn: int
    tp: int


def confusion_counts(y, y_pred) -> ConfusionCounts:
    """``ConfusionCounts(tn, fp, fn, tp)`` for 0/1 truth and 0/1 predictions."""
    y = as_binary(y)
    p = as_binary(y_pred, "y_pred")
    if p.size != y.size:
        raise ValueError(f"y_pred has {p.size} values, y has {y.size}")
    tp = int(np.sum((y == 1) & (p == 1)))
    fp = int(np.sum((y == 0) & (p == 1)))
    fn = int(np.sum((y == 1) & (p == 0)))
    tn = int(np.sum((y == 0) & (p == 0)))
    return ConfusionCounts(tn, fp, fn, tp)


def _prop(k: int, n: int, method: str, level: float) -> tuple[float, float, float]:
    if n == 0:
        return NAN3
    lo, hi = proportion_ci(k, n, method, level)
    return (k / n, lo, hi)


def _bca(sen, spe) -> tuple[float, float, float]:
    if np.isnan(sen[0]) or np.isnan(spe[0]):
        return NAN3
    v = (sen[0] + spe[0]) / 2
    lo = v - np.hypot(sen[0] - sen[1], spe[0] - spe[1]) / 2
    hi = v + np.hypot(sen[2] - sen[0], spe[2] - spe[0]) / 2
    return (float(v), float(max(lo, 0.0)), float(min(hi, 1.0)))


def _f1(c: ConfusionCounts, level: float) -> tuple[float, float, float]:
    n = c.tn + c.fp + c.fn + c.tp
    d = 2 * c.tp + c.fp + c.fn
    if d == 0:
        return NAN3
    f1 = 2 * c.tp / d
    p = np.array([c.tp, c.fp, c.fn, c.tn], dtype=float) / n
    dd = 2 * p[0] + p[1] + p[2]
    g = np.array([2 * (p[1] + p[2]), -2 * p[0], -2 * p[0], 0.0]) / dd**2
    cov = np.diag(p) - np.outer(p, p)
    se = float(np.sqrt(max(g @ cov @ g / n, 0.0)))
    h = z_crit(level) * se
    return (float(f1), float(max(f1 - h, 0.0)), float(min(f1 + h, 1.0)))


def confusion_metrics(
    y, y_pred, ci_method: str = "wilson", level: float = 0.95
) -> dict[str, tuple[float, float, float]]:
    """``{metric: (value, low, high)}`` for ACC, ER, SEN, SPE, PPV, NPV, BCA, F1 (see module docstring).

    ``ci_method`` is any method of :func:`replicate.stats.proportions.proportion_ci`.
    """
    c = confusion_counts(y, y_pred)
    n = c.tn + c.fp + c.fn + c.tp
    out = {
        "ACC": _prop(c.tp + c.tn, n, ci_method, level),
        "ER": _prop(c.fp + c.fn, n, ci_method, level),
        "SEN": _prop(c.tp, c.tp + c.fn, ci_method, level),
        "SPE": _prop(c.tn, c.tn + c.fp, ci_method, level),
        "PPV": _prop(c.tp, c.tp + c.fp, ci_method, level),
        "NPV": _prop(c.tn, c.tn + c.fn, ci_method, level),
    }
    out["BCA"] = _bca(out["SEN"], out["SPE"])
    out["F1"] = _f1(c, level)
    return {k: tuple(float(x) for x in out[k]) for k in METRICS}


def _roc_points(y: np.ndarray, s: np.ndarray):
    """Candidate thresholds (distinct scores, descending) with SEN and SPE for ``score >= t``."""
    n_pos, n_neg = both_classes(y, "a cut-off")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), s_sorted.size - 1]
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    return s_sorted[last], tp / n_pos, 1 - fp / n_neg


def youden_threshold(y, score, weight: float = 1.0) -> float:
    """Cut-off maximising the (weighted) Youden index; predict positive iff ``score >= threshold``.

    J_w(t) = weight * SEN(t) + SPE(t) - 1, maximised over the distinct
    observed scores t. ``weight = 1`` is Youden's J (Youden 1950). Other
    weights give the cost/prevalence-weighted optimum of Perkins & Schisterman
    (2006, Am J Epidemiol 163:670) and pROC's ``coords(best.method="youden",
    best.weights=c(cost, prevalence))``, which maximise SEN + r * SPE with
    r = (1 - prevalence) / (cost * prevalence): the same cut-off as ours with
    ``weight = 1 / r``. ``weight > 1`` favours sensitivity.

    The returned value is an observed score (not a midpoint between two
    scores as in pROC), so the rule ``score >= threshold`` reproduces the
    optimum on these data; ties in J_w go to the lowest such threshold
    (highest sensitivity).
    """
    if weight <= 0:
        raise ValueError("weight must be > 0")
    y = as_binary(y)
    s = as_float(score, n=y.size)
    thr, sen, spe = _roc_points(y, s)
    j = weight * sen + spe - 1
    best = np.flatnonzero(j >= j.max() - 1e-12)
    return float(thr[best[-1]])


def threshold_for_sensitivity(y, score, sensitivity: float) -> float:
    """Highest cut-off (observed score) whose sensitivity for ``score >= t`` is at least ``sensitivity``."""
    y = as_binary(y)
    s = as_float(score, n=y.size)
    thr, sen, _ = _roc_points(y, s)
    ok = np.flatnonzero(sen >= sensitivity - 1e-12)
    return float(thr[ok[0]])


def performance(
    y,
    score,
    threshold: float = 0.5,
    *,
    level: float = 0.95,
    ci_method: str = "wilson",
    auc_method: str = "delong",
    extra: Sequence[str] = (),
) -> dict[str, tuple[float, float, float]]:
    """The one performance function of the chapters: AUC with its CI (DeLong by default) and the confusion
    metrics (:func:`confusion_metrics`, ``ci_method`` intervals) of ``score >= threshold``.

    Choose ``threshold`` on training data only (e.g. :func:`youden_threshold` on training-fold scores) and
    apply it here to the evaluated cohort. ``extra`` adds ``"C-index"`` (for a binary outcome Harrell's C
    equals the AUC, with its CI), ``"AP"`` (average precision, no CI) and ``"HL"`` (Hosmer-Lemeshow
    ``(chi2, df, p_value)`` of the scores read as probabilities; NaNs when it cannot be formed). Every
    entry but HL is ``(value, low, high)``; NaN where undefined.
    """
    from .auc import auc_ci

    y = as_binary(y)
    s = as_float(score, n=y.size)
    low, auc, high = auc_ci(y, s, level=level, method=auc_method)
    out = {"AUC": (float(auc), float(min(low, auc)), float(min(max(high, auc), 1.0)))}
    out.update(confusion_metrics(y, (s >= threshold).astype(int), ci_method=ci_method, level=level))
    unknown = set(extra) - {"C-index", "AP", "HL"}
    if unknown:
        raise ValueError(f"unknown extra metric(s) {sorted(unknown)}; use C-index, AP, HL")
    if "C-index" in extra:
        out["C-index"] = out["AUC"]
    if "AP" in extra:
        from sklearn.metrics import average_precision_score

        out["AP"] = (float(average_precision_score(y, s)), float("nan"), float("nan"))
    if "HL" in extra:
        import warnings

        from .calibration import hosmer_lemeshow

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hl = hosmer_lemeshow(y, np.clip(s, 0.0, 1.0))
            out["HL"] = (float(hl.chi2), int(hl.df), float(hl.p_value))
        except ValueError:
            out["HL"] = (float("nan"), 0, float("nan"))
    return out


def classification_report(
    y, score, threshold: float, *, level: float = 0.95, ci_method: str = "wilson", auc_method: str = "delong"
) -> dict[str, tuple[float, float, float]]:
    """:func:`performance` without extras (kept for existing callers)."""
    return performance(y, score, threshold, level=level, ci_method=ci_method, auc_method=auc_method)
