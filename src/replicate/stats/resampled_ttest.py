"""Corrected resampled t-test (Nadeau & Bengio 2003, Machine Learning 52:239).

For J random train/test splits with metric values u_1..u_J (e.g. the test
AUC of each split), the naive variance of the mean, S^2/J, ignores that the
training sets overlap. Nadeau & Bengio replace the factor 1/J by

    1/J + n_test / n_train,

so ``se = sqrt((1/J + n_test/n_train) * S^2)`` with ``S^2`` the sample
variance (ddof = 1), and use a t distribution with J - 1 degrees of freedom.
This is exactly WORC's ``compute_confidence`` (and PREDICT's), which
reports ``scipy.stats.t.interval(level, J - 1, loc=mean, scale=se)`` for
its 100 random-split experiments.

The interval is not truncated to the metric's range: an AUC's upper bound
can exceed 1. By default (``clip=False``) the raw bound is returned so the
caller can report it honestly (e.g. "0.92 [0.85, 1.02]" or "clipped to
1.00"); ``clip=True`` truncates to [0, 1].
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["corrected_resampled_ttest_ci", "corrected_resampled_ttest", "corrected_se", "ResampledTTestResult"]


def _values(values) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    if np.isnan(v).any():
        raise ValueError("values contain NaN")
    if v.size < 2:
        raise ValueError("need at least two resampled values")
    return v


def _ratio(n_train, n_test) -> float:
    n_train = float(np.mean(n_train))
    n_test = float(np.mean(n_test))
    if n_train <= 0 or n_test <= 0:
        raise ValueError("n_train and n_test must be positive")
    return n_test / n_train


def corrected_se(values, n_train, n_test) -> float:
    """Nadeau-Bengio corrected standard error of the mean of ``values``."""
    v = _values(values)
    return float(np.sqrt((1.0 / v.size + _ratio(n_train, n_test)) * np.var(v, ddof=1)))


def corrected_resampled_ttest_ci(
    values, n_train, n_test, level: float = 0.95, clip: bool = False
) -> tuple[float, float, float]:
    """``(mean, low, high)``: corrected resampled t-test CI of the mean over J splits.

    ``n_train`` / ``n_test`` are the training / test set sizes of one split
    (arrays are averaged when they vary between splits).
    """
    v = _values(values)
    mean = float(v.mean())
    se = corrected_se(v, n_train, n_test)
    if se == 0:
        low = high = mean
    else:
        low, high = stats.t.interval(level, v.size - 1, loc=mean, scale=se)
    if clip:
        low, high = min(max(low, 0.0), 1.0), min(max(high, 0.0), 1.0)
    return (mean, float(low), float(high))


class ResampledTTestResult(NamedTuple):
    mean: float  # mean of values_a - values_b (or of values_a)
    se: float  # corrected standard error
    t: float  # (mean - mu) / se
    df: int  # J - 1
    p_value: float


def corrected_resampled_ttest(
    values_a, values_b=None, *, n_train, n_test, mu: float = 0.0, alternative: str = "two-sided"
) -> ResampledTTestResult:
    """Corrected resampled t-test of ``mean(values_a - values_b) == mu`` (or ``mean(values_a) == mu``).

    Pass two models' per-split values (same splits, same order) to compare
    them, or one model's values and ``mu`` (e.g. 0.5 for chance AUC).
    ``alternative``: ``"two-sided"``, ``"greater"`` (mean > mu) or ``"less"``.
    """
    a = _values(values_a)
    d = a if values_b is None else a - _values(values_b)
    if d.size != a.size:
        raise ValueError("values_a and values_b differ in length")
    mean = float(d.mean())
    se = corrected_se(d, n_train, n_test)
    diff = mean - mu
    if se > 0:
        t = diff / se
    else:
        t = 0.0 if diff == 0 else float(np.sign(diff)) * np.inf
    df = d.size - 1
    if alternative == "two-sided":
        p = 2 * stats.t.sf(abs(t), df)
    elif alternative == "greater":
        p = stats.t.sf(t, df)
    elif alternative == "less":
        p = stats.t.cdf(t, df)
    else:
        raise ValueError("alternative must be 'two-sided', 'greater' or 'less'")
    return ResampledTTestResult(mean, se, float(t), int(df), float(p))
