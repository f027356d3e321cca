"""Area under the ROC curve: confidence intervals and DeLong's test.

Conventions
-----------
* ``y`` is 0/1 (or bool); **1 is the positive class**.
* **A higher score means "more likely positive"**. There is no automatic
  direction: a score that is lower for positives gives AUC < 0.5 (pass
  ``-score`` to flip it). pROC's ``direction="auto"`` picks, for each
  predictor, the direction in which the median score of the cases exceeds
  that of the controls; for the aSAH reference predictors (wfns, s100b, ndka
  against outcome Poor) that is the same "higher = positive" direction,
  which is why our numbers reproduce pROC's there.
* Ties between a positive and a negative count 1/2 (the Mann-Whitney
  definition used by pROC and ``sklearn.metrics.roc_auc_score``).

Variance
--------
DeLong, DeLong & Clarke-Pearson (1988) structural components, computed
with the O(n log n) midrank algorithm of Sun & Xu (2014, IEEE Signal
Processing Letters 21:1389): with ``m`` positives X and ``n`` negatives Y,
midranks ``Tz`` in the pooled sample and ``Tx``/``Ty`` within each class,

    V10_i = (Tz_i - Tx_i) / n           (placement of positive i)
    V01_j = 1 - (Tz_{m+j} - Ty_j) / m   (placement of negative j)
    AUC   = mean(V10),  S = cov(V10) / m + cov(V01) / n   (ddof = 1)

which is exactly what pROC's ``var(method="delong")``, ``ci.auc`` and
``roc.test(method="delong")`` use; ``tests/test_stats_auc.py`` reproduces
pROC's own test-suite values on the aSAH data to 1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._util import as_binary, as_float, both_classes, z_crit

__all__ = [
    "auc_score",
    "delong_placements",
    "delong_covariance",
    "delong_variance",
    "auc_ci",
    "DeLongResult",
    "delong_test",
    "delong_test_unpaired",
    "hanley_mcneil_se",
]


def _midrank(a: np.ndarray) -> np.ndarray:
    """Midranks (average ranks for ties) along the last axis."""
    return stats.rankdata(a, method="average", axis=-1)


def _prepare(y, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (y, scores as k x N array, was_1d)."""
    y = as_binary(y)
    s = np.asarray(scores, dtype=float)
    if s.ndim == 1:
        s = s[None, :]
    elif s.ndim == 2 and s.shape[0] == y.size and s.shape[1] != y.size:
        s = s.T
    if s.shape[-1] != y.size:
        raise ValueError(f"score has {s.shape[-1]} values per model, y has {y.size}")
    if np.isnan(s).any():
        raise ValueError("score contains NaN")
    both_classes(y, "the AUC")
    return y, s


def delong_placements(y, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DeLong structural components by the fast midrank algorithm.

    ``scores`` is one score vector (N,) or several (k, N) for the same
    patients. Returns ``(auc (k,), v10 (k, m), v01 (k, n))``: the placement
    of each positive among the negatives and of each negative among the
    positives.
    """
    y, s = _prepare(y, scores)
    pos = y == 1
    x, z = s[:, pos], s[:, ~pos]
    m, n = x.shape[1], z.shape[1]
    tx = _midrank(x)
    ty = _midrank(z)
    tz = _midrank(np.concatenate([x, z], axis=1))
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    auc = v10.mean(axis=1)
    return auc, v10, v01


def delong_covariance(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and their DeLong covariance matrix (k, k) for k scores on the same patients."""
    auc, v10, v01 = delong_placements(y, scores)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10, ddof=1)) if m > 1 else np.zeros((len(auc), len(auc)))
    s01 = np.atleast_2d(np.cov(v01, ddof=1)) if n > 1 else np.zeros((len(auc), len(auc)))
    return auc, s10 / m + s01 / n


def delong_variance(y, score) -> tuple[float, float]:
    """``(auc, var)`` of one score (DeLong)."""
    auc, cov = delong_covariance(y, score)
    return float(auc[0]), float(cov[0, 0])


def auc_score(y, score) -> float:
    """AUC (Mann-Whitney, ties 1/2; higher score = positive). Equals sklearn's ``roc_auc_score``."""
    auc, _, _ = delong_placements(y, score)
    return float(auc[0])


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982, Radiology 143:29) standard error of an AUC with n+ positives, n- negatives."""
    if n_pos < 1 or n_neg < 1:
        raise ValueError(f"the Hanley-McNeil SE needs both classes; got n+={n_pos}, n-={n_neg}")
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


def auc_ci(
    y, score, level: float = 0.95, method: str = "delong", *, n_boot: int = 2000, seed: int = 0, stratified: bool = True
) -> tuple[float, float, float]:
    """Confidence interval of the AUC, returned as ``(low, auc, high)``.

    method
        ``"delong"``: AUC +- z * sqrt(DeLong variance), truncated to [0, 1]
        (pROC ``ci.auc(method="delong")``).
        ``"hanley-mcneil"``: Hanley & McNeil (1982, Radiology 143:29) standard
        error with Q1 = A/(2-A), Q2 = 2A^2/(1+A); normal interval truncated to [0, 1].
        ``"bootstrap"``: percentile interval of ``n_boot`` (stratified by
        default, like pROC) bootstrap resamples, see
        :func:`replicate.stats.bootstrap.bootstrap_auc`.
    """
    y = as_binary(y)
    score = as_float(score, n=y.size)
    method = method.lower().replace("_", "-")
    if method == "delong":
        auc, var = delong_variance(y, score)
        half = z_crit(level) * np.sqrt(var)
        return (float(max(auc - half, 0.0)), auc, float(min(auc + half, 1.0)))
    if method in ("hanley-mcneil", "hanley"):
        n_pos, n_neg = both_classes(y, "the AUC")
        auc = auc_score(y, score)
        half = z_crit(level) * hanley_mcneil_se(auc, n_pos, n_neg)
        return (float(max(auc - half, 0.0)), auc, float(min(auc + half, 1.0)))
    if method == "bootstrap":
        from .bootstrap import bootstrap_auc, percentile_ci

        boots = bootstrap_auc(y, score, n_boot=n_boot, seed=seed, stratified=stratified)
        low, high = percentile_ci(boots, level)
        return (low, auc_score(y, score), high)
    raise ValueError(f"unknown method {method!r}; use 'delong', 'bootstrap' or 'hanley-mcneil'")


@dataclass(frozen=True)
class DeLongResult:
    """Result of :func:`delong_test`. ``diff = auc_a - auc_b``; ``ci`` is the CI of ``diff``."""

    auc_a: float
    auc_b: float
    diff: float
    se: float
    z: float
    p_value: float
    ci: tuple[float, float]
    paired: bool = True
    level: float = 0.95


def _z_and_p(diff: float, se: float) -> tuple[float, float]:
    if se > 0:
        z = diff / se
    elif diff == 0:
        z = 0.0
    else:
        z = float(np.sign(diff)) * np.inf
    return float(z), float(2 * stats.norm.sf(abs(z)))


def delong_test(y, score_a, score_b, paired: bool = True, *, y_b=None, level: float = 0.95) -> DeLongResult:
    """DeLong's test of ``AUC(score_a) == AUC(score_b)`` (two-sided).

    ``paired=True`` (the default): both scores are for the same patients
    ``y`` (pROC ``roc.test(paired=TRUE, method="delong")``): the variance of
    the difference uses the DeLong covariance, ``Var = S_aa + S_bb - 2 S_ab``.

    ``paired=False``: two independent sets of patients (e.g. two cohorts);
    ``score_a`` goes with ``y`` and ``score_b`` with ``y_b`` (if ``y_b`` is
    omitted, ``y`` is used for both, which only makes sense when the second
    cohort happens to have the same label vector). The variance of the
    difference is ``Var_a + Var_b`` (pROC's unpaired DeLong test). See also
    :func:`delong_test_unpaired`.

    ``ci`` is the Wald interval ``diff +- z * se`` of the AUC difference
    (pROC's ``conf.int`` of ``roc.test``).
    """
    zc = z_crit(level)
    if paired:
        if y_b is not None:
            raise ValueError("a paired test uses one outcome vector; drop y_b or use paired=False")
        y = as_binary(y)
        a = as_float(score_a, "score_a", y.size)
        b = as_float(score_b, "score_b", y.size)
        auc, cov = delong_covariance(y, np.vstack([a, b]))
        var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
        auc_a, auc_b = float(auc[0]), float(auc[1])
    else:
        y_a = as_binary(y, "y")
        y_bb = y_a if y_b is None else as_binary(y_b, "y_b")
        auc_a, var_a = delong_variance(y_a, as_float(score_a, "score_a", y_a.size))
        auc_b, var_b = delong_variance(y_bb, as_float(score_b, "score_b", y_bb.size))
        var = var_a + var_b
    se = float(np.sqrt(max(var, 0.0)))
    diff = auc_a - auc_b
    z, p = _z_and_p(diff, se)
    return DeLongResult(
        auc_a=auc_a,
        auc_b=auc_b,
        diff=float(diff),
        se=se,
        z=z,
        p_value=p,
        ci=(float(diff - zc * se), float(diff + zc * se)),
        paired=paired,
        level=level,
    )


def delong_test_unpaired(y_a, score_a, y_b, score_b, level: float = 0.95) -> DeLongResult:
    """Unpaired DeLong test for two AUCs measured on two different cohorts."""
    return delong_test(y_a, score_a, score_b, paired=False, y_b=y_b, level=level)
