"""Figures of the chapters: ROC, PR, calibration, decision curves, Kaplan-Meier, nomogram, AUC bars.

Every function returns the ``matplotlib.figure.Figure`` and never calls
``plt.show()``. Figures are created with pyplot (so Jupyter's inline
backend can render them) and then *closed* in pyplot's registry before being
returned: a notebook shows the figure once (as the cell's value, or via
``ctx.figure(fig, name)``), and scripts/tests do not accumulate open
figures. Pass ``ax=`` to draw into an existing axes instead (that figure is
left alone).

Conventions are those of :mod:`replicate.stats`: ``y`` is 0/1 with 1 =
positive, a higher score means "more likely positive", and survival scores
are risk scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .stats import auc_ci, calibration_curve_with_bands, hosmer_lemeshow, kaplan_meier_groups, logrank

__all__ = [
    "roc_plot",
    "pr_plot",
    "calibration_plot",
    "decision_curve_plot",
    "km_plot",
    "nomogram_plot",
    "nomogram_scales",
    "NomogramScales",
    "bar_auc_plot",
    "forest_plot",
    "null_distribution_plot",
    "format_p",
]


def _plt():
    from matplotlib import pyplot as plt

    return plt


def _fig_ax(ax=None, figsize=(5.5, 5.0)):
    """Return (fig, ax, owned): a new closed-in-registry figure unless ``ax`` is given."""
    if ax is not None:
        return ax.figure, ax, False
    plt = _plt()
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax, True


def _finish(fig, owned: bool):
    if owned:
        try:
            fig.tight_layout()
        except Exception:  # noqa: BLE001 - layout is cosmetic
            pass
        _plt().close(fig)
    return fig


def format_p(p: float, digits: int = 3) -> str:
    """``"P = 0.012"`` or ``"P < 0.001"``."""
    if p is None or not np.isfinite(p):
        return "P = n/a"
    floor = 10 ** (-digits)
    return f"P < {floor:.{digits}f}" if p < floor else f"P = {p:.{digits}f}"


def _as_models(y_by_model, default: str = "Model") -> dict:
    if isinstance(y_by_model, Mapping):
        return dict(y_by_model)
    if isinstance(y_by_model, (tuple, list)) and len(y_by_model) == 2:
        return {default: tuple(y_by_model)}
    raise TypeError("expected a dict name -> (y, score) or a (y, score) pair")


# --------------------------------------------------------------------------- ROC / PR


def roc_plot(
    y_by_model, title: str | None = None, *, level: float = 0.95, method: str = "delong", decimals: int = 3, ax=None
):
    """ROC curves, one per model; legend ``"name: AUC 0.812 [0.741, 0.883]"`` (DeLong CI by default).

    ``y_by_model``: ``{name: (y, score)}`` (each model may have its own ``y``).
    """
    from sklearn.metrics import roc_curve

    fig, ax, owned = _fig_ax(ax)
    for name, (y, s) in _as_models(y_by_model).items():
        y = np.asarray(y).astype(int)
        s = np.asarray(s, dtype=float)
        fpr, tpr, _ = roc_curve(y, s)
        lo, auc, hi = auc_ci(y, s, level=level, method=method)
        d = decimals
        ax.plot(fpr, tpr, lw=1.8, label=f"{name}: AUC {auc:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]")
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="0.6", label="_chance")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 - Specificity")
    ax.set_ylabel("Sensitivity")
    ax.legend(loc="lower right", fontsize=8, title=f"AUC [{int(round(level * 100))}% CI]", title_fontsize=8)
    if title:
        ax.set_title(title)
    return _finish(fig, owned)


def pr_plot(y_by_model, title: str | None = None, *, decimals: int = 3, ax=None):
    """Precision-recall curves with average precision (AP, scikit-learn) in the legend; dashed line = prevalence."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig, ax, owned = _fig_ax(ax)
    prevalences = []
    for name, (y, s) in _as_models(y_by_model).items():
        y = np.asarray(y).astype(int)
        s = np.asarray(s, dtype=float)
        prec, rec, _ = precision_recall_curve(y, s)
        ap = average_precision_score(y, s)
        ax.step(rec, prec, where="post", lw=1.8, label=f"{name}: AP {ap:.{decimals}f}")
        prevalences.append(float(y.mean()))
    for prev in sorted(set(round(p, 6) for p in prevalences)):
        ax.axhline(prev, ls="--", lw=1, color="0.6", label=f"Prevalence {prev:.2f}")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("Recall (sensitivity)")
    ax.set_ylabel("Precision (PPV)")
    ax.legend(loc="lower left", fontsize=8)
    if title:
        ax.set_title(title)
    return _finish(fig, owned)


# --------------------------------------------------------------------------- calibration


def calibration_plot(
    y_by_model,
    title: str | None = None,
    *,
    n_bins: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    groups: int = 10,
    level: float = 0.95,
    ax=None,
):
    """Binned calibration curves with bootstrap bands; Hosmer-Lemeshow P in the legend.

    ``y_by_model``: ``{name: (y, p)}`` or a single ``(y, p)`` pair. Points
    are the mean predicted vs observed event rate per quantile bin
    (:func:`replicate.stats.calibration_curve_with_bands`); the shaded band
    is the percentile bootstrap interval of the observed rate.
    """
    fig, ax, owned = _fig_ax(ax)
    for name, (y, p) in _as_models(y_by_model).items():
        y = np.asarray(y).astype(int)
        p = np.asarray(p, dtype=float)
        cur = calibration_curve_with_bands(y, p, n_bins=n_bins, n_boot=n_boot, seed=seed, level=level)
        try:
            hl = hosmer_lemeshow(y, p, groups=groups)
            lab = f"{name} (Hosmer-Lemeshow {format_p(hl.p_value)})"
        except ValueError:
            lab = f"{name} (Hosmer-Lemeshow n/a)"
        (line,) = ax.plot(cur["mean_predicted"], cur["observed"], marker="o", ms=4, lw=1.5, label=lab)
        ax.fill_between(
            cur["mean_predicted"], cur["low"], cur["high"], color=line.get_color(), alpha=0.2, lw=0, label="_band"
        )
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="0.6", label="Ideal")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("Predicted probability")
    ax.set_ylabel("Observed proportion")
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    return _finish(fig, owned)


# --------------------------------------------------------------------------- decision curves


def decision_curve_plot(
    df: pd.DataFrame, title: str | None = None, *, ylim: tuple[float, float] | None = None, ax=None
):
    """Net benefit vs threshold from :func:`replicate.stats.decision_curve` (one line per model)."""
    from .stats import TREAT_ALL, TREAT_NONE

    fig, ax, owned = _fig_ax(ax, figsize=(6.5, 4.5))
    for name, g in df.groupby("model", sort=False):
        g = g.sort_values("threshold")
        style = {}
        if name == TREAT_ALL:
            style = dict(color="0.45", lw=1.2)
        elif name == TREAT_NONE:
            style = dict(color="black", lw=1.2, ls="--")
        ax.plot(g["threshold"], g["net_benefit"], label=str(name), **({"lw": 1.8} | style))
    if ylim is None:
        top = float(np.nanmax(df["net_benefit"])) if len(df) else 1.0
        ylim = (-0.05, max(top * 1.1, 0.05))
    ax.set_ylim(*ylim)
    ax.set_xlim(float(df["threshold"].min()), float(df["threshold"].max()))
    ax.set_xlabel("Threshold probability")
    ax.set_ylabel("Net benefit")
    ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(title)
    return _finish(fig, owned)


# --------------------------------------------------------------------------- Kaplan-Meier


def km_plot(
    time,
    event,
    group,
    title: str | None = None,
    *,
    at_risk: bool = True,
    ci_show: bool = False,
    xlabel: str = "Time",
    ax=None,
):
    """Kaplan-Meier curves per group with the log-rank P (legend title) and numbers at risk below."""
    fig, ax, owned = _fig_ax(ax, figsize=(6.5, 5.0))
    fitters = kaplan_meier_groups(time, event, group)
    for kmf in fitters.values():
        kmf.plot_survival_function(ax=ax, ci_show=ci_show, show_censors=True, censor_styles={"ms": 4})
    p = logrank(time, event, group) if len(fitters) > 1 else float("nan")
    ax.legend(title=f"Log-rank {format_p(p)}", fontsize=8, title_fontsize=8, loc="lower left")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Survival probability")
    if title:
        ax.set_title(title)
    if at_risk:
        from lifelines.plotting import add_at_risk_counts

        add_at_risk_counts(*fitters.values(), ax=ax, fig=fig, rows_to_show=["At risk"])
    return _finish(fig, owned)


# --------------------------------------------------------------------------- nomogram


@dataclass
class NomogramScales:
    """Points scales of a logistic-regression nomogram.

    The predictor with the widest range of ``coef * value`` spans 0-100
    points; every predictor gets 0 points at the value that minimises its
    contribution (``ref``). ``lp = intercept + sum(coef * ref) +
    total_points * lp_per_point``; probability = 1 / (1 + exp(-lp)).
    """

    coefficients: dict
    intercept: float
    ranges: dict
    ref: dict = field(default_factory=dict)
    lp_per_point: float = 1.0
    max_points: dict = field(default_factory=dict)

    @property
    def max_total(self) -> float:
        return float(sum(self.max_points.values()))

    @property
    def lp_at_zero(self) -> float:
        return float(self.intercept + sum(self.coefficients[k] * self.ref[k] for k in self.coefficients))

    def points(self, name: str, value) -> np.ndarray | float:
        v = np.asarray(value, dtype=float)
        return self.coefficients[name] * (v - self.ref[name]) / self.lp_per_point

    def total_points(self, values: Mapping) -> float:
        return float(sum(self.points(k, values[k]) for k in self.coefficients))

    def linear_predictor(self, total_points) -> np.ndarray | float:
        return self.lp_at_zero + np.asarray(total_points, dtype=float) * self.lp_per_point

    def probability(self, total_points) -> np.ndarray | float:
        return 1.0 / (1.0 + np.exp(-self.linear_predictor(total_points)))

    def points_for_probability(self, p) -> np.ndarray | float:
        p = np.asarray(p, dtype=float)
        return (np.log(p / (1 - p)) - self.lp_at_zero) / self.lp_per_point


def _levels(spec) -> tuple[list[float], list[str], bool]:
    """(values, labels, continuous) of a ``ranges`` entry."""
    if isinstance(spec, Mapping):
        return [float(v) for v in spec.values()], [str(k) for k in spec.keys()], False
    if isinstance(spec, tuple) and len(spec) == 2:
        lo, hi = float(spec[0]), float(spec[1])
        if not hi > lo:
            raise ValueError(f"continuous range must be (min, max) with max > min, got {spec}")
        return [lo, hi], [f"{lo:g}", f"{hi:g}"], True
    if isinstance(spec, (list, np.ndarray, Sequence)) and not isinstance(spec, str):
        vals = [float(v) for v in spec]
        return vals, [f"{v:g}" for v in vals], False
    raise TypeError(f"cannot read range {spec!r}: use (min, max), a list of levels or {{label: value}}")


def nomogram_scales(coefficients: Mapping, intercept: float, ranges: Mapping) -> NomogramScales:
    """Compute the points scales of :func:`nomogram_plot` (see :class:`NomogramScales`)."""
    coefs = {k: float(v) for k, v in coefficients.items()}
    missing = set(coefs) - set(ranges)
    if missing:
        raise ValueError(f"no range given for {sorted(missing)}")
    ref, span = {}, {}
    for k, b in coefs.items():
        vals, _, _ = _levels(ranges[k])
        lo, hi = min(vals), max(vals)
        ref[k] = lo if b >= 0 else hi
        span[k] = abs(b) * (hi - lo)
    widest = max(span.values()) if span else 0.0
    if widest <= 0:
        raise ValueError("all predictors have zero effect over their ranges")
    lp_per_point = widest / 100.0
    return NomogramScales(
        coefs, float(intercept), dict(ranges), ref, lp_per_point, {k: span[k] / lp_per_point for k in coefs}
    )


def nomogram_plot(
    coefficients: Mapping,
    intercept: float,
    ranges: Mapping,
    title: str | None = None,
    *,
    prob_ticks: Sequence[float] = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99),
    n_ticks: int = 6,
    prob_label: str = "Predicted probability",
):
    """Points nomogram of a logistic model ``logit(p) = intercept + sum(coef * x)``.

    ``ranges[name]`` is ``(min, max)`` (a 2-tuple: continuous axis with
    about ``n_ticks`` round ticks), a list of levels (``[0, 1]``,
    ``[0, 1, 2]``: ticks at those values only) or ``{label: value}``
    (e.g. ``{"female": 0, "male": 1}``). Rows: ``Points`` (0-100), one axis
    per predictor, ``Total points`` and the predicted probability. A
    negative coefficient gives an axis that increases to the left.
    """
    from matplotlib.ticker import MaxNLocator

    sc = nomogram_scales(coefficients, intercept, ranges)
    names = list(sc.coefficients)
    rows = len(names) + 3
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 0.55 * rows + 0.8))
    total = sc.max_total
    y = 0.0
    tick_h = 0.12

    def axis_row(label: str, xs: Sequence[float], labels: Sequence[str], y: float):
        xs = np.asarray(xs, dtype=float)
        ax.plot([xs.min(), xs.max()], [y, y], color="black", lw=1)
        for x, t in zip(xs, labels):
            ax.plot([x, x], [y, y + tick_h], color="black", lw=1)
            ax.text(x, y + tick_h + 0.05, t, ha="center", va="bottom", fontsize=7)
        ax.text(-4, y, label, ha="right", va="center", fontsize=9)

    pts = np.arange(0, 101, 10)
    axis_row("Points", pts, [f"{v:g}" for v in pts], y)
    for name in names:
        y -= 1
        vals, labs, cont = _levels(sc.ranges[name])
        if cont:
            lo, hi = vals
            ticks = [t for t in MaxNLocator(nbins=n_ticks).tick_values(lo, hi) if lo - 1e-9 <= t <= hi + 1e-9]
            vals, labs = ticks, [f"{t:g}" for t in ticks]
        axis_row(name, [float(sc.points(name, v)) for v in vals], labs, y)
    y -= 1
    tot_ticks = MaxNLocator(nbins=8).tick_values(0, total)
    tot_ticks = [t for t in tot_ticks if -1e-9 <= t <= total + 1e-9]
    axis_row("Total points", [t * 100 / total for t in tot_ticks], [f"{t:g}" for t in tot_ticks], y)
    y -= 1
    pt = [(p, sc.points_for_probability(p)) for p in prob_ticks]
    pt = [(p, t) for p, t in pt if -1e-9 <= t <= total + 1e-9]
    if len(pt) >= 2:
        axis_row(prob_label, [t * 100 / total for _, t in pt], [f"{p:g}" for p, _ in pt], y)
    else:
        ax.text(-4, y, prob_label, ha="right", va="center", fontsize=9)
        ax.text(50, y, "(range too narrow for the tick set)", ha="center", va="center", fontsize=7)
    ax.set_xlim(-30, 105)
    ax.set_ylim(y - 0.6, 0.8)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return _finish(fig, True)


# --------------------------------------------------------------------------- AUC bars


def bar_auc_plot(
    df: pd.DataFrame,
    title: str | None = None,
    *,
    group: str | None = None,
    reference: float | None = 0.5,
    model_col: str = "model",
    auc_col: str = "auc",
    low_col: str = "low",
    high_col: str = "high",
    ylabel: str = "AUC",
    ax=None,
):
    """Bar chart of AUCs with CI error bars (columns model, auc, low, high).

    ``group`` names an optional column (e.g. ``"cohort"`` or ``"source"``
    = reported / reproduced) drawn as side-by-side bars per model. Missing
    ``low``/``high`` (NaN) give a bar without error bar.
    """
    fig, ax, owned = _fig_ax(ax, figsize=(max(4.5, 0.9 * df[model_col].nunique() + 2.5), 4.5))
    models = list(pd.unique(df[model_col]))
    groups = list(pd.unique(df[group])) if group else [None]
    width = 0.8 / len(groups)
    x0 = np.arange(len(models))
    for gi, g in enumerate(groups):
        sub = df if g is None else df[df[group] == g]
        sub = sub.set_index(model_col).reindex(models)
        auc = sub[auc_col].to_numpy(float)
        lo = sub[low_col].to_numpy(float) if low_col in sub else np.full(len(models), np.nan)
        hi = sub[high_col].to_numpy(float) if high_col in sub else np.full(len(models), np.nan)
        xs = x0 - 0.4 + width * (gi + 0.5)
        ax.bar(xs, auc, width=width * 0.95, label=None if g is None else str(g))
        ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(auc)
        if ok.any():
            err = np.vstack([auc[ok] - lo[ok], hi[ok] - auc[ok]])
            ax.errorbar(xs[ok], auc[ok], yerr=err, fmt="none", ecolor="black", elinewidth=1, capsize=3)
    if reference is not None:
        ax.axhline(reference, ls="--", lw=1, color="0.5")
    ax.set_xticks(x0)
    ax.set_xticklabels(
        [str(m) for m in models], rotation=30 if len(models) > 4 else 0, ha="right" if len(models) > 4 else "center"
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    if group:
        ax.legend(fontsize=8, title=group, title_fontsize=8)
    if title:
        ax.set_title(title)
    return _finish(fig, owned)


COMPARABILITY_STYLE = {  # colour-blind-safe (Okabe-Ito) colours, and a marker per comparability
    "same_data": ("#0072B2", "o", "same data (verdict)"),
    "proxy": ("#E69F00", "s", "proxy (contrast only)"),
    "twin": ("#CC79A7", "^", "synthetic twin"),
    "none": ("#999999", "x", "not comparable"),
}
FOREST_METRICS = ("AUC", "C-index", "BCA", "SEN", "SPE", "ACC", "PPV", "NPV")


def forest_plot(
    rows: Sequence[Mapping],
    title: str | None = None,
    *,
    metrics: Sequence[str] = FOREST_METRICS,
    all_none: bool = False,
    ax=None,
):
    """Reported vs reproduced, pair by pair: the paper's estimate (open diamond, grey interval) above ours
    (coloured and shaped by the pair's comparability), one line per model, cohort and metric, the verdict
    or contrast word at the right. ``rows`` are ``results.json`` metrics (or ``ChapterResults.all_rows()``);
    only pairs with a number on both sides are drawn, and a number the paper states twice once. Pairs
    that are not comparable are drawn (grey) for AUC / C-index only, unless ``all_none``."""
    pairs = [
        r
        for r in rows
        if r.get("metric") in metrics
        and r.get("reported") is not None
        and r.get("value") is not None
        and not r.get("restatement_of")
        and (all_none or r.get("comparability") != "none" or r["metric"] in ("AUC", "C-index"))
    ]
    order = {m: i for i, m in enumerate(metrics)}
    pairs.sort(key=lambda r: (order[r["metric"]], r["cohort"], r["model"]))
    height = max(2.2, 0.42 * len(pairs) + 1.2)
    fig, ax, owned = _fig_ax(ax, figsize=(9.0, height))
    if not pairs:
        ax.text(0.5, 0.5, "no pair with a number on both sides", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        _finish(fig, owned)
        return fig
    labels = []
    for i, r in enumerate(pairs):
        y = len(pairs) - 1 - i
        colour, marker, _ = COMPARABILITY_STYLE.get(r.get("comparability", "none"), COMPARABILITY_STYLE["none"])
        if r.get("reported_ci"):
            ax.hlines(y + 0.17, *r["reported_ci"], color="#555555", lw=1.4)
        ax.plot(r["reported"], y + 0.17, marker="D", mfc="white", mec="#333333", ms=6, ls="none")
        if r.get("ci"):
            ax.hlines(y - 0.17, *r["ci"], color=colour, lw=2.0)
        ax.plot(r["value"], y - 0.17, marker=marker, color=colour, ms=6.5, ls="none")
        labels.append(f"{r['model']} · {r['cohort']} · {r['metric']}")
        ax.annotate(
            r.get("verdict", ""),
            xy=(1.01, y),
            xycoords=("axes fraction", "data"),
            va="center",
            fontsize=8,
            color=colour,
        )
    ax.set_yticks(range(len(pairs)))
    ax.set_yticklabels(labels[::-1], fontsize=8)
    ax.set_ylim(-0.7, len(pairs) - 0.3)
    lows = (
        [0.4]
        + [min(r.get("ci") or [r["value"]]) for r in pairs]
        + [min(r.get("reported_ci") or [r["reported"]]) for r in pairs]
    )
    ax.set_xlim(max(-0.02, min(lows) - 0.05), 1.02)
    ax.axvline(0.5, color="#cccccc", lw=0.8, ls=":")
    ax.set_xlabel("estimate with its 95% interval (paper: open diamond, above; ours: below)")
    handles = [ax.plot([], [], marker="D", mfc="white", mec="#333333", ls="none", label="reported (paper)")[0]]
    for key in dict.fromkeys(r.get("comparability", "none") for r in pairs):
        colour, marker, text = COMPARABILITY_STYLE.get(key, COMPARABILITY_STYLE["none"])
        handles.append(ax.plot([], [], marker=marker, color=colour, ls="none", label=f"ours: {text}")[0])
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=min(4, len(handles)),
        fontsize=8,
        frameon=False,
    )
    if title:
        ax.set_title(title, pad=24)
    _finish(fig, owned)
    return fig


def null_distribution_plot(dist, title: str | None = None, *, ax=None):
    """What chance looks like: each headline model's AUC over many permuted-label seeds (a stored
    :class:`replicate.null.NullDistribution`), with the normal curve each run's own standard error predicts
    (DeLong's, or the corrected resampled SE of a cross-validated mean; mean 0.5, SD = root-mean-square SE)
    and the 0.5 line."""
    from scipy import stats as st

    summary = dist.summary()
    names = list(dist.models)
    fig, ax, owned = _fig_ax(ax, figsize=(7.5, 0.55 * len(names) + 1.8))
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        a = np.asarray(dist.models[name]["aucs"], dtype=float)
        y = len(names) - 1 - i
        ax.scatter(a, y + rng.uniform(-0.18, 0.18, a.size), s=9, alpha=0.5, color="#0072B2", lw=0)
        s = summary[name]
        ax.plot([s["mean"]], [y], marker="|", ms=18, mew=2.5, color="#D55E00")
        if np.isfinite(s["delong_sd"]):
            xs = np.linspace(0.5 - 3 * s["delong_sd"], 0.5 + 3 * s["delong_sd"], 60)
            dens = st.norm.pdf(xs, 0.5, s["delong_sd"])
            ax.plot(xs, y - 0.38 + 0.3 * dens / dens.max(), color="#555555", lw=1)
    ax.axvline(0.5, color="#999999", ls=":", lw=1)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(
        [f"{n} (SD {summary[n]['sd']:.2f}; predicted {summary[n]['delong_sd']:.2f})" for n in names][::-1], fontsize=8
    )
    ax.set_xlim(0, 1)
    ax.set_xlabel(
        f"AUC under permuted labels, {len(dist.seeds)} seeds (dots); mean (bar); "
        "the SD each run's own SE predicts (DeLong, or the corrected resampled SE of a CV mean; curve)"
    )
    ax.set_title(
        title or f"{dist.chapter}: what chance looks like ({dist.data}, {dist.profile} profile; stored result)"
    )
    _finish(fig, owned)
    return fig
