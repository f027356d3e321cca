"""Calibration of predicted probabilities: Hosmer-Lemeshow, binned curve with bootstrap bands, Brier score.

``hosmer_lemeshow`` follows R's ``ResourceSelection::hoslem.test`` (the
version that drops duplicated quantiles):

    qq  <- unique(quantile(p, probs = seq(0, 1, 1/g)))       # type-7 quantiles
    cut <- cut(p, breaks = qq, include.lowest = TRUE)        # (a, b], first [a, b]
    X2  <- sum over groups and both outcomes of (O - E)^2 / E
    df  <- G - 2, G = number of groups formed (= g unless quantiles coincide)

The expected counts of a group are ``sum(p)`` (events) and
``sum(1 - p)`` (non-events), i.e. the usual Hosmer & Lemeshow (1980)
"deciles of risk" statistic.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from ._util import as_binary, as_float

__all__ = [
    "HosmerLemeshowResult",
    "hosmer_lemeshow",
    "hosmer_lemeshow_table",
    "calibration_curve_with_bands",
    "calibration_with_bands",
    "calibration_intercept_slope",
    "brier_score",
]


class HosmerLemeshowResult(NamedTuple):
    chi2: float
    df: int
    p_value: float


def _check_probs(y, p):
    y = as_binary(y)
    p = as_float(p, "p", y.size)
    if (p < 0).any() or (p > 1).any():
        raise ValueError("p must be probabilities in [0, 1]")
    return y, p


def _hl_groups(p: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    qq = np.unique(np.quantile(p, np.linspace(0, 1, groups + 1)))
    if qq.size < 2:
        raise ValueError("all predicted probabilities are equal; the Hosmer-Lemeshow test needs at least 2 groups")
    idx = np.searchsorted(qq, p, side="left") - 1
    idx[idx < 0] = 0
    return idx, qq


def hosmer_lemeshow_table(y, p, groups: int = 10) -> pd.DataFrame:
    """Observed and expected counts per group (``hoslem.test``'s ``observed``/``expected``)."""
    y, p = _check_probs(y, p)
    idx, qq = _hl_groups(p, groups)
    k = qq.size - 1
    n = np.bincount(idx, minlength=k)
    o1 = np.bincount(idx, weights=y, minlength=k)
    e1 = np.bincount(idx, weights=p, minlength=k)
    lab = [f"{'[' if i == 0 else '('}{qq[i]:.4g}, {qq[i + 1]:.4g}]" for i in range(k)]
    df = pd.DataFrame(
        {"group": lab, "n": n, "observed_1": o1, "expected_1": e1, "observed_0": n - o1, "expected_0": n - e1}
    )
    return df[df["n"] > 0].reset_index(drop=True)


def hosmer_lemeshow(y, p, groups: int = 10) -> HosmerLemeshowResult:
    """Hosmer-Lemeshow goodness-of-fit test ``(chi2, df, p_value)`` (see module docstring).

    Groups that would be empty are skipped (R would give NaN there).
    """
    t = hosmer_lemeshow_table(y, p, groups)
    o = t[["observed_0", "observed_1"]].to_numpy(float)
    e = t[["expected_0", "expected_1"]].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = float(np.sum((o - e) ** 2 / e))
    g_formed = len(t)
    if g_formed < groups:
        warnings.warn(f"the data allowed only {g_formed} of the {groups} requested groups", stacklevel=2)
    df = g_formed - 2
    if df < 1:
        raise ValueError(f"only {g_formed} groups could be formed; need at least 3")
    return HosmerLemeshowResult(chi2, int(df), float(stats.chi2.sf(chi2, df)))


def brier_score(y, p) -> float:
    """Mean squared difference between the outcome (0/1) and the predicted probability."""
    y, p = _check_probs(y, p)
    return float(np.mean((p - y) ** 2))


def calibration_curve_with_bands(
    y, p, n_bins: int = 10, n_boot: int = 1000, seed: int | None = 0, *, strategy: str = "quantile", level: float = 0.95
) -> pd.DataFrame:
    """Binned calibration curve with percentile bootstrap bands of the observed event rate.

    Patients are binned once on the full sample (``strategy="quantile"``:
    equal-count bins at quantiles of ``p``, duplicate edges dropped;
    ``"uniform"``: ``n_bins`` equal-width bins on [0, 1]). Each of the
    ``n_boot`` (ordinary, unstratified) bootstrap resamples recomputes the
    observed event fraction of every bin; ``low``/``high`` are its
    percentile interval (bins empty in a resample are ignored for that
    resample). ``n_boot=0`` gives Wilson intervals instead.

    Returns a DataFrame with one row per non-empty bin: ``bin, n,
    mean_predicted, observed, low, high``.
    """
    from .bootstrap import percentile_ci
    from .proportions import proportion_ci

    y, p = _check_probs(y, p)
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
        if edges.size < 2:
            edges = np.array([p.min(), p.max() + 1e-12])
    elif strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        raise ValueError("strategy must be 'quantile' or 'uniform'")
    k = edges.size - 1
    idx = np.clip(np.searchsorted(edges, p, side="left") - 1, 0, k - 1)
    n = np.bincount(idx, minlength=k)
    obs = np.bincount(idx, weights=y, minlength=k)
    mp = np.bincount(idx, weights=p, minlength=k)
    keep = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = obs / n
        mean_pred = mp / n
    low = np.full(k, np.nan)
    high = np.full(k, np.nan)
    if n_boot and n_boot > 0:
        rng = np.random.default_rng(seed)
        onehot = np.zeros((y.size, k))
        onehot[np.arange(y.size), idx] = 1.0
        chunk = max(1, 2_000_000 // y.size)
        reps = []
        done = 0
        while done < n_boot:
            b = min(chunk, n_boot - done)
            draw = rng.integers(0, y.size, (b, y.size))
            w = np.bincount((draw + np.arange(b)[:, None] * y.size).ravel(), minlength=b * y.size)
            w = w.reshape(b, y.size).astype(float)
            cnt = w @ onehot
            ev = (w * y) @ onehot
            with np.errstate(invalid="ignore", divide="ignore"):
                reps.append(np.where(cnt > 0, ev / np.where(cnt > 0, cnt, 1), np.nan))
            done += b
        reps = np.vstack(reps)
        for j in np.flatnonzero(keep):
            low[j], high[j] = percentile_ci(reps[:, j], level)
    else:
        for j in np.flatnonzero(keep):
            low[j], high[j] = proportion_ci(int(obs[j]), int(n[j]), "wilson", level)
    out = pd.DataFrame(
        {"bin": np.arange(k), "n": n, "mean_predicted": mean_pred, "observed": observed, "low": low, "high": high}
    )
    return out[keep].reset_index(drop=True)


#: Alias used in ARCHITECTURE.md.
calibration_with_bands = calibration_curve_with_bands


def calibration_intercept_slope(y, p) -> dict[str, float]:
    """Calibration slope and calibration-in-the-large (Cox 1958; Van Calster et al. 2016).

    ``slope``: coefficient of ``logit(p)`` in a logistic regression of ``y``
    on ``logit(p)`` (1 = ideal, < 1 = predictions too extreme).
    ``intercept``: intercept of the logistic model with ``logit(p)`` as an
    offset (0 = ideal, > 0 = risks underestimated on average).
    Probabilities are clipped to [1e-8, 1 - 1e-8] before the logit.
    """
    import statsmodels.api as sm

    y, p = _check_probs(y, p)
    lp = np.log(np.clip(p, 1e-8, 1 - 1e-8) / (1 - np.clip(p, 1e-8, 1 - 1e-8)))
    fam = sm.families.Binomial()
    slope = sm.GLM(y, sm.add_constant(lp), family=fam).fit().params[1]
    intercept = sm.GLM(y, np.ones((y.size, 1)), family=fam, offset=lp).fit().params[0]
    return {"intercept": float(intercept), "slope": float(slope)}
