"""Reported vs reproduced: the difference, its interval, what a cohort can resolve, and equivalence.

Two designs, two questions (``replicate.results`` picks one from the pair's declared comparability):

* **Proxy** (independent samples: other patients, modality or design). The paper's estimate and ours
  each carry their own sampling error, so the interval of ``d = ours - reported`` combines both
  intervals by MOVER (method of variance estimates recovery; Zou & Donner 2008, Stat Med 27:1693;
  Newcombe 1998, Stat Med 17:873, method 10, for two proportions), which respects asymmetric
  intervals. The *resolution* is the smallest true difference the pair detects with 80 % power in a
  two-sided 5 % test: ``(z_0.975 + z_0.80) * sqrt(V_ours + SE_p^2) = 2.80 * sqrt(...)``, with ``V_ours``
  the variance our cohort would have *at the reported value* (Hanley & McNeil 1982 for an AUC with
  our n+ / n-, binomial for sensitivity / specificity / accuracy) and ``SE_p`` the paper's standard
  error recovered from its interval on the scale where that interval is symmetric.
* **Same data** (the same patients and design). Patient sampling is shared, so the only variability
  between the paper's number and ours is the method's own (random seeds, searches, resampling):
  ``SE_d = s_seed * sqrt(1 + 1/R)`` from R re-runs of our pipeline with different seeds on the same
  splits (the paper's value is one draw of the method, ours the mean of R draws). Equivalence is
  judged by two one-sided tests (TOST) with a margin declared before the run: reproduced when the
  90 % CI of d lies inside (-delta, delta), not reproduced when it does not touch [-delta, delta],
  inconclusive otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._util import z_crit
from .auc import hanley_mcneil_se

__all__ = [
    "hanley_mcneil_se",
    "se_from_ci",
    "mover_difference",
    "resolution",
    "Equivalence",
    "tost",
    "contrast_word",
    "method_se",
    "POWER_FACTOR",
]

#: z_{0.975} + z_{0.80}: a difference of POWER_FACTOR * SE is detected with 80 % power at two-sided 5 %.
POWER_FACTOR = float(stats.norm.ppf(0.975) + stats.norm.ppf(0.80))


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def se_from_ci(value: float, ci, level: float = 0.95, *, ratio: bool = False) -> tuple[float, str]:
    """Standard error of ``value`` recovered from its interval: ``(se on the value's own scale, scale)``.

    The interval is read on the scale where it is most nearly symmetric about the estimate: raw
    (Wald, DeLong, t), logit (Wilson-like or logit intervals of proportions and AUCs near 0 or 1), or,
    for ratios (``ratio=True``: odds / hazard ratios), log; an SE found on the logit / log scale is
    carried back by the delta method (``se * p(1 - p)`` / ``se * value``).
    """
    lo, hi = float(ci[0]), float(ci[1])
    v = float(value)
    if not lo <= v <= hi or hi <= lo:
        raise ValueError(f"interval {ci} does not contain its estimate {value} (or is empty)")
    z = z_crit(level)

    def asym(a, b, c):
        return abs((c - b) - (b - a)) / (c - a)

    candidates = [(asym(lo, v, hi), (hi - lo) / (2 * z), "raw")]
    if ratio and lo > 0:
        se_log = (math.log(hi) - math.log(lo)) / (2 * z)
        candidates.append((asym(math.log(lo), math.log(v), math.log(hi)), se_log * v, "log"))
    if not ratio and 0 < lo and hi < 1:
        se_logit = (_logit(hi) - _logit(lo)) / (2 * z)
        candidates.append((asym(_logit(lo), _logit(v), _logit(hi)), se_logit * v * (1 - v), "logit"))
    _, se, scale = min(candidates, key=lambda c: c[0])
    return float(se), scale


def mover_difference(ours: float, ours_ci, reported: float, reported_ci) -> tuple[float, float, float]:
    """``(d, low, high)``: MOVER interval of ``d = ours - reported`` for two independent estimates.

    Both intervals must have the same level; the result has that level (Zou & Donner 2008, eq. 4):
    ``L = d - sqrt((ours - l1)^2 + (u2 - reported)^2)``, ``U = d + sqrt((u1 - ours)^2 + (reported - l2)^2)``.
    """
    l1, u1 = float(ours_ci[0]), float(ours_ci[1])
    l2, u2 = float(reported_ci[0]), float(reported_ci[1])
    d = float(ours) - float(reported)
    low = d - math.sqrt((ours - l1) ** 2 + (u2 - reported) ** 2)
    high = d + math.sqrt((u1 - ours) ** 2 + (reported - l2) ** 2)
    return d, float(low), float(high)


def resolution(se_ours: float, se_reported: float = 0.0) -> float:
    """Smallest true difference detected with 80 % power at two-sided 5 %: ``2.80 * sqrt(se1^2 + se2^2)``."""
    return float(POWER_FACTOR * math.sqrt(se_ours**2 + se_reported**2))


def method_se(seed_values) -> tuple[float, float, int]:
    """``(mean, SE_d, R)`` from R seed re-runs of a pipeline: ``SE_d = s_seed * sqrt(1 + 1/R)``.

    ``s_seed`` is the standard deviation (ddof = 1) of the R estimates: the method's own variability.
    The reported value is one draw of the method (variance s^2), our mean one of R (s^2 / R).
    """
    v = np.asarray(seed_values, dtype=float).ravel()
    if v.size < 2 or not np.isfinite(v).all():
        raise ValueError(f"method variability needs >= 2 finite seed re-runs; got {v.tolist()}")
    return float(v.mean()), float(v.std(ddof=1) * math.sqrt(1 + 1 / v.size)), int(v.size)


@dataclass(frozen=True)
class Equivalence:
    """Result of :func:`tost`: ``d`` with its ``level`` CI against the margin ``delta``."""

    verdict: str  # "reproduced" | "not reproduced" | "inconclusive"
    d: float
    low: float
    high: float
    delta: float
    level: float


def tost(d: float, se: float, delta: float, level: float = 0.90) -> Equivalence:
    """Two one-sided tests at ``(1 - level) / 2`` each: the ``level`` CI of ``d`` against ``(-delta, delta)``.

    reproduced: the CI lies inside (-delta, delta) (equivalent); not reproduced: the CI does not touch
    [-delta, delta] (a difference of at least delta); inconclusive: neither.
    """
    if delta <= 0:
        raise ValueError(f"the equivalence margin must be positive, got {delta}")
    if se < 0 or not math.isfinite(se):
        raise ValueError(f"SE must be finite and >= 0, got {se}")
    half = z_crit(level) * se
    low, high = d - half, d + half
    if -delta < low and high < delta:
        verdict = "reproduced"
    elif high < -delta or low > delta:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    return Equivalence(verdict, float(d), float(low), float(high), float(delta), float(level))


def contrast_word(low: float, high: float) -> str:
    """What a proxy's difference interval says: never a reproduction, only a contrast."""
    if high < 0:
        return "lower on proxy"
    if low > 0:
        return "higher on proxy"
    return "consistent on proxy"
