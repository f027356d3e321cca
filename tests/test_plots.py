"""Each plot returns a Figure with the expected artists on tiny data (and leaves no pyplot figure open)."""

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from replicate import plots
from replicate.stats import auc_ci, decision_curve, hosmer_lemeshow


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    n = 60
    y = np.r_[np.ones(25, int), np.zeros(35, int)]
    s1 = y + rng.normal(size=n)
    s2 = 0.3 * y + rng.normal(size=n)
    return y, s1, s2, 1 / (1 + np.exp(-s1))


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_roc_plot(toy):
    y, s1, s2, _ = toy
    fig = plots.roc_plot({"A": (y, s1), "B": (y, s2)}, "ROC")
    assert isinstance(fig, Figure) and plt.get_fignums() == []
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # two curves + chance diagonal
    lo, auc, hi = auc_ci(y, s1)
    assert _legend(ax)[0] == f"A: AUC {auc:.3f} [{lo:.3f}, {hi:.3f}]"
    assert ax.get_title() == "ROC"


def test_pr_plot(toy):
    y, s1, s2, _ = toy
    fig = plots.pr_plot({"A": (y, s1), "B": (y, s2)})
    texts = _legend(fig.axes[0])
    assert texts[0].startswith("A: AP ") and any(t.startswith("Prevalence") for t in texts)


def test_calibration_plot(toy):
    y, _, _, p = toy
    fig = plots.calibration_plot({"A": (y, p)}, n_bins=5, n_boot=100, groups=5)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and len(ax.collections) == 1  # curve + ideal, one band
    hl = hosmer_lemeshow(y, p, groups=5)
    assert _legend(ax)[0] == f"A (Hosmer-Lemeshow {plots.format_p(hl.p_value)})"
    assert isinstance(plots.calibration_plot((y, p), n_bins=4, n_boot=50, groups=5), Figure)


def test_decision_curve_plot(toy):
    y, _, _, p = toy
    df = decision_curve(y, {"A": p}, thresholds=np.arange(0.05, 0.95, 0.05))
    fig = plots.decision_curve_plot(df, "DCA")
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.lines] == ["A", "Treat all", "Treat none"]
    assert len(ax.lines[0].get_xdata()) == 18


def test_km_plot(toy):
    y, s1, _, _ = toy
    rng = np.random.default_rng(1)
    t = rng.exponential(100 * np.exp(-s1))
    e = rng.integers(0, 2, len(t))
    g = np.where(s1 > np.median(s1), "high", "low")
    fig = plots.km_plot(t, e, g, "KM")
    ax = fig.axes[0]
    assert ax.get_legend().get_title().get_text().startswith("Log-rank P")
    assert len(fig.axes) == 2  # survival axes + numbers-at-risk axes
    assert isinstance(plots.km_plot(t, e, g, at_risk=False), Figure)


def test_nomogram_scales_and_plot():
    coefs = {"age": 0.04, "size": 0.3, "sex": -0.8, "grade": 0.6}
    ranges = {"age": (20, 90), "size": (1, 25), "sex": {"female": 0, "male": 1}, "grade": [1, 2, 3]}
    sc = plots.nomogram_scales(coefs, -3.0, ranges)
    # size has the widest effect: 0.3 * 24 = 7.2 logit units = 100 points
    assert sc.max_points["size"] == pytest.approx(100)
    assert sc.max_points["age"] == pytest.approx(100 * 0.04 * 70 / 7.2)
    assert sc.points("sex", 1) == pytest.approx(0) and sc.points("sex", 0) == pytest.approx(100 * 0.8 / 7.2)
    patient = {"age": 63, "size": 8.5, "sex": 0, "grade": 2}
    lp = -3.0 + sum(coefs[k] * patient[k] for k in coefs)
    assert sc.probability(sc.total_points(patient)) == pytest.approx(1 / (1 + np.exp(-lp)))
    assert sc.points_for_probability(sc.probability(42.0)) == pytest.approx(42.0)
    fig = plots.nomogram_plot(coefs, -3.0, ranges, "Nomogram")
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"Points", "age", "size", "sex", "grade", "Total points", "Predicted probability"} <= texts
    assert {"female", "male", "100"} <= texts
    with pytest.raises(ValueError):
        plots.nomogram_scales({"a": 0.0}, 0.0, {"a": (0, 1)})


def test_bar_auc_plot():
    df = pd.DataFrame(
        {
            "model": ["A", "B", "A", "B"],
            "auc": [0.8, 0.7, 0.75, 0.6],
            "low": [0.7, 0.6, 0.65, np.nan],
            "high": [0.9, 0.8, 0.85, np.nan],
            "cohort": ["training", "training", "validation", "validation"],
        }
    )
    fig = plots.bar_auc_plot(df, "AUC", group="cohort")
    ax = fig.axes[0]
    assert len(ax.patches) == 4
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B"]
    fig1 = plots.bar_auc_plot(df[df.cohort == "training"])
    assert len(fig1.axes[0].patches) == 2
    assert plt.get_fignums() == []


def test_ax_argument_draws_into_existing_axes(toy):
    y, s1, _, _ = toy
    fig, (a1, a2) = plt.subplots(1, 2)
    try:
        out = plots.roc_plot({"A": (y, s1)}, ax=a2)
        assert out is fig and len(a2.lines) == 2 and len(a1.lines) == 0
    finally:
        plt.close(fig)


def test_format_p():
    assert plots.format_p(0.0004) == "P < 0.001"
    assert plots.format_p(0.0123) == "P = 0.012"


def test_forest_plot_draws_pairs_by_comparability():
    from replicate.plots import forest_plot

    rows = [
        {
            "model": "A",
            "cohort": "cv",
            "metric": "AUC",
            "value": 0.8,
            "ci": [0.7, 0.9],
            "reported": 0.83,
            "reported_ci": [0.75, 0.9],
            "comparability": "same_data",
            "verdict": "reproduced",
        },
        {
            "model": "B",
            "cohort": "validation",
            "metric": "AUC",
            "value": 0.6,
            "ci": [0.5, 0.7],
            "reported": 0.8,
            "reported_ci": None,
            "comparability": "proxy",
            "verdict": "lower on proxy",
        },
        {
            "model": "C",
            "cohort": "validation",
            "metric": "SEN",
            "value": 0.6,
            "ci": None,
            "reported": 0.7,
            "comparability": "none",
            "verdict": "not comparable",
        },  # not drawn: none, not an AUC
        {
            "model": "B",
            "cohort": "validation",
            "metric": "AUC",
            "value": 0.6,
            "ci": [0.5, 0.7],
            "reported": 0.5,
            "comparability": "proxy",
            "restatement_of": "x",
            "verdict": "higher on proxy",
        },  # not drawn twice
        {"model": "D", "cohort": "validation", "metric": "AUC", "value": None, "reported": 0.7},
    ]
    fig = forest_plot(rows, title="toy")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["B · validation · AUC", "A · cv · AUC"]
    words = [t.get_text() for t in ax.texts]
    assert words == ["reproduced", "lower on proxy"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["reported (paper)", "ours: same data (verdict)", "ours: proxy (contrast only)"]
    empty = forest_plot([], title="nothing")
    assert "no pair" in empty.axes[0].texts[0].get_text()
