"""Survival statistics via ``lifelines``: Harrell's C-index, Kaplan-Meier, log-rank, Cox HR.

Sign convention: ``score`` is a **risk score, higher = shorter survival**
(e.g. a Cox linear predictor or a radiomics risk score). lifelines'
``concordance_index(event_times, predicted_scores, event_observed)`` expects
the opposite (higher = longer survival), so :func:`c_index` passes
``-score``. A C-index below 0.5 therefore means the score is inversely
related to risk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["c_index", "c_index_ci", "kaplan_meier_groups", "logrank", "risk_groups", "cox_hazard_ratio"]


def _surv(time, event, n_expected: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time, dtype=float).ravel()
    e = np.asarray(event).ravel()
    if np.isnan(t).any():
        raise ValueError("time contains NaN")
    if (t < 0).any():
        raise ValueError("time must be >= 0")
    e = e.astype(float)
    if not np.isin(np.unique(e), (0, 1)).all():
        raise ValueError("event must be 0/1")
    if e.size != t.size or (n_expected is not None and t.size != n_expected):
        raise ValueError("time, event (and score/group) differ in length")
    return t, e.astype(int)


def c_index(time, score, event) -> float:
    """Harrell's concordance index of a risk score (higher score = higher risk = shorter time)."""
    from lifelines.utils import concordance_index

    s = np.asarray(score, dtype=float).ravel()
    t, e = _surv(time, event, s.size)
    return float(concordance_index(t, -s, e))


def c_index_ci(
    time, score, event, n_boot: int = 1000, seed: int | None = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """``(low, c, high)``: C-index with a percentile bootstrap CI (patients resampled with replacement)."""
    from lifelines.utils import concordance_index

    s = np.asarray(score, dtype=float).ravel()
    t, e = _surv(time, event, s.size)
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        i = rng.integers(0, t.size, t.size)
        try:
            reps[b] = concordance_index(t[i], -s[i], e[i])
        except ZeroDivisionError:  # no admissible pairs in this resample
            reps[b] = np.nan
    a = (1 - level) / 2
    lo, hi = np.nanquantile(reps, [a, 1 - a])
    return (float(lo), c_index(t, s, e), float(hi))


def kaplan_meier_groups(time, event, group) -> dict:
    """One fitted ``lifelines.KaplanMeierFitter`` per group label (labels sorted), keyed by label."""
    from lifelines import KaplanMeierFitter

    g = np.asarray(group).ravel()
    t, e = _surv(time, event, g.size)
    out = {}
    for lab in sorted(pd.unique(g), key=str):
        m = g == lab
        out[lab] = KaplanMeierFitter(label=str(lab)).fit(t[m], e[m])
    return out


def logrank(time, event, group) -> float:
    """Log-rank test p-value across the groups (two or more; lifelines ``multivariate_logrank_test``)."""
    from lifelines.statistics import multivariate_logrank_test

    g = np.asarray(group).ravel()
    t, e = _surv(time, event, g.size)
    if pd.unique(g).size < 2:
        raise ValueError("the log-rank test needs at least two groups")
    return float(multivariate_logrank_test(t, g, e).p_value)


def risk_groups(score, cutoff: float | None = None, labels: tuple[str, str] = ("low", "high")) -> np.ndarray:
    """Dichotomise a risk score: ``labels[1]`` ("high") iff ``score >= cutoff``.

    ``cutoff=None`` uses the median of ``score`` (fix it on the training
    cohort and reuse it on validation cohorts). Returns an object array of
    labels.
    """
    s = np.asarray(score, dtype=float).ravel()
    c = float(np.median(s)) if cutoff is None else float(cutoff)
    return np.where(s >= c, labels[1], labels[0]).astype(object)


def cox_hazard_ratio(time, event, x, level: float = 0.95) -> tuple[float, float, float]:
    """``(hr, low, high)`` of a univariable Cox model of ``x`` (per unit; 0/1 for a group indicator).

    Uses lifelines ``CoxPHFitter`` (Efron ties); Wald CI exp(b +- z se).
    """
    from lifelines import CoxPHFitter

    xv = np.asarray(x, dtype=float).ravel()
    t, e = _surv(time, event, xv.size)
    cph = CoxPHFitter().fit(pd.DataFrame({"T": t, "E": e, "x": xv}), "T", "E")
    b = float(cph.params_["x"])
    se = float(cph.standard_errors_["x"])
    z = float(stats.norm.isf((1 - level) / 2))
    return (float(np.exp(b)), float(np.exp(b - z * se)), float(np.exp(b + z * se)))
