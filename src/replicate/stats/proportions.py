"""Confidence intervals for a single binomial proportion ``k / n``.

Methods (``level`` = two-sided confidence, z = its normal critical value):

``"wald"``
    p +- z sqrt(p(1-p)/n) (statsmodels ``method="normal"``).
``"wilson"``
    Wilson (1927) score interval (statsmodels ``"wilson"``; Newcombe 1998 method 3).
``"wilson-cc"``
    Wilson score interval with continuity correction, Newcombe (1998,
    Statistics in Medicine 17:857, method 4; eq. in section 2):
    L = (2np + z^2 - 1 - z sqrt(z^2 - 2 - 1/n + 4p(n(1-p) + 1))) / (2(n + z^2)),
    U = (2np + z^2 + 1 + z sqrt(z^2 + 2 - 1/n + 4p(n(1-p) - 1))) / (2(n + z^2)),
    with L = 0 when k = 0 and U = 1 when k = n. Reproduces Newcombe's
    Table I (81/263, 15/148, 0/20, 1/29) to the published 4 decimals.
``"clopper-pearson"``
    Exact (beta quantile) interval (statsmodels ``"beta"``).
``"agresti-coull"``
    Agresti & Coull (1998) adjusted Wald: n~ = n + z^2, p~ = (k + z^2/2)/n~
    (statsmodels ``"agresti_coull"``).

All intervals are truncated to [0, 1] (as statsmodels does for wald,
wilson and agresti-coull; the others never leave it). ``n = 0`` gives
``(nan, nan)``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ._util import z_crit

__all__ = ["proportion_ci", "proportion_ci_table", "PROPORTION_METHODS"]

PROPORTION_METHODS = ("wald", "wilson", "wilson-cc", "clopper-pearson", "agresti-coull")

_ALIASES = {
    "normal": "wald",
    "wald": "wald",
    "wilson": "wilson",
    "score": "wilson",
    "wilson-cc": "wilson-cc",
    "wilson_cc": "wilson-cc",
    "wilsoncc": "wilson-cc",
    "newcombe": "wilson-cc",
    "clopper-pearson": "clopper-pearson",
    "clopper_pearson": "clopper-pearson",
    "exact": "clopper-pearson",
    "beta": "clopper-pearson",
    "agresti-coull": "agresti-coull",
    "agresti_coull": "agresti-coull",
}


def proportion_ci(k, n, method: str = "wilson", level: float = 0.95) -> tuple[float, float]:
    """Two-sided CI ``(low, high)`` of the proportion ``k / n``; methods in the module docstring."""
    try:
        m = _ALIASES[method.lower()]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; use one of {PROPORTION_METHODS}") from None
    k = float(k)
    n = float(n)
    if n < 0 or k < 0 or k > n or k != np.floor(k) or n != np.floor(n):
        raise ValueError(f"need integers 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (float("nan"), float("nan"))
    z = z_crit(level)
    p = k / n
    if m == "wald":
        h = z * np.sqrt(p * (1 - p) / n)
        lo, hi = p - h, p + h
    elif m == "wilson":
        z2 = z * z
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        h = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
        lo, hi = centre - h, centre + h
    elif m == "wilson-cc":
        z2 = z * z
        den = 2 * (n + z2)
        if k == 0:
            lo = 0.0
        else:
            lo = (2 * n * p + z2 - 1 - z * np.sqrt(z2 - 2 - 1 / n + 4 * p * (n * (1 - p) + 1))) / den
        if k == n:
            hi = 1.0
        else:
            hi = (2 * n * p + z2 + 1 + z * np.sqrt(z2 + 2 - 1 / n + 4 * p * (n * (1 - p) - 1))) / den
    elif m == "clopper-pearson":
        a = (1 - level) / 2
        lo = 0.0 if k == 0 else stats.beta.ppf(a, k, n - k + 1)
        hi = 1.0 if k == n else stats.beta.isf(a, k + 1, n - k)
    else:  # agresti-coull
        z2 = z * z
        nt = n + z2
        pt = (k + z2 / 2) / nt
        h = z * np.sqrt(pt * (1 - pt) / nt)
        lo, hi = pt - h, pt + h
    return (float(min(max(lo, 0.0), 1.0)), float(min(max(hi, 0.0), 1.0)))


def proportion_ci_table(n: int, method: str = "wilson", level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` arrays of the CI of ``k / n`` for every ``k = 0..n`` at once (the same intervals as
    :func:`proportion_ci`, vectorised: what the audit needs to search every count of a denominator)."""
    try:
        m = _ALIASES[method.lower()]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; use one of {PROPORTION_METHODS}") from None
    n = int(n)
    if n < 1:
        raise ValueError(f"need n >= 1, got {n}")
    k = np.arange(n + 1, dtype=float)
    z = z_crit(level)
    z2 = z * z
    p = k / n
    with np.errstate(invalid="ignore", divide="ignore"):
        if m == "wald":
            h = z * np.sqrt(p * (1 - p) / n)
            lo, hi = p - h, p + h
        elif m == "wilson":
            centre = (p + z2 / (2 * n)) / (1 + z2 / n)
            h = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
            lo, hi = centre - h, centre + h
        elif m == "wilson-cc":
            den = 2 * (n + z2)
            lo = (2 * n * p + z2 - 1 - z * np.sqrt(np.maximum(z2 - 2 - 1 / n + 4 * p * (n * (1 - p) + 1), 0))) / den
            hi = (2 * n * p + z2 + 1 + z * np.sqrt(np.maximum(z2 + 2 - 1 / n + 4 * p * (n * (1 - p) - 1), 0))) / den
            lo[0], hi[-1] = 0.0, 1.0
        elif m == "clopper-pearson":
            a = (1 - level) / 2
            lo = stats.beta.ppf(a, np.maximum(k, 1), n - k + 1)
            hi = stats.beta.isf(a, k + 1, np.maximum(n - k, 1))
            lo[0], hi[-1] = 0.0, 1.0
        else:
            nt = n + z2
            pt = (k + z2 / 2) / nt
            h = z * np.sqrt(pt * (1 - pt) / nt)
            lo, hi = pt - h, pt + h
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
