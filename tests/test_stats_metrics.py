"""Confusion metrics against scikit-learn, CIs against proportion_ci / bootstrap, Youden against brute force."""

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_curve,
)

from replicate.stats import (
    METRICS,
    auc_ci,
    bootstrap_ci,
    classification_report,
    confusion_counts,
    confusion_metrics,
    proportion_ci,
    threshold_for_sensitivity,
    youden_threshold,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 400)
    score = y + rng.normal(size=400)
    pred = (score > 0.4).astype(int)
    return y, score, pred


def test_counts_match_sklearn(data):
    y, _, pred = data
    c = confusion_counts(y, pred)
    assert tuple(c) == tuple(confusion_matrix(y, pred).ravel())
    assert c.tp == int(((y == 1) & (pred == 1)).sum())


def test_values_match_sklearn(data):
    y, _, pred = data
    m = confusion_metrics(y, pred)
    assert list(m) == list(METRICS)
    assert m["ACC"][0] == pytest.approx(accuracy_score(y, pred))
    assert m["ER"][0] == pytest.approx(1 - accuracy_score(y, pred))
    assert m["SEN"][0] == pytest.approx(recall_score(y, pred))
    assert m["SPE"][0] == pytest.approx(recall_score(y, pred, pos_label=0))
    assert m["PPV"][0] == pytest.approx(precision_score(y, pred))
    assert m["NPV"][0] == pytest.approx(precision_score(y, pred, pos_label=0))
    assert m["BCA"][0] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["F1"][0] == pytest.approx(f1_score(y, pred))


@pytest.mark.parametrize("method", ["wilson", "wilson-cc", "clopper-pearson", "wald", "agresti-coull"])
def test_proportion_cis(data, method):
    y, _, pred = data
    c = confusion_counts(y, pred)
    m = confusion_metrics(y, pred, ci_method=method, level=0.9)
    assert m["SEN"][1:] == pytest.approx(proportion_ci(c.tp, c.tp + c.fn, method, 0.9))
    assert m["SPE"][1:] == pytest.approx(proportion_ci(c.tn, c.tn + c.fp, method, 0.9))
    assert m["PPV"][1:] == pytest.approx(proportion_ci(c.tp, c.tp + c.fp, method, 0.9))
    assert m["NPV"][1:] == pytest.approx(proportion_ci(c.tn, c.tn + c.fn, method, 0.9))
    assert m["ACC"][1:] == pytest.approx(proportion_ci(c.tp + c.tn, len(y), method, 0.9))
    assert m["ER"][1:] == pytest.approx(proportion_ci(c.fp + c.fn, len(y), method, 0.9))


def _f1(y, p):  # fast stand-ins for sklearn's scorers inside bootstrap loops
    tp = np.sum((y == 1) & (p == 1))
    return 2 * tp / (2 * tp + np.sum(y != p))


def _bca(y, p):
    return ((p[y == 1] == 1).mean() + (p[y == 0] == 0).mean()) / 2


def test_bca_mover_interval(data):
    y, _, pred = data
    assert _f1(y, pred) == pytest.approx(f1_score(y, pred))
    assert _bca(y, pred) == pytest.approx(balanced_accuracy_score(y, pred))
    m = confusion_metrics(y, pred)
    sen, spe = m["SEN"], m["SPE"]
    v = (sen[0] + spe[0]) / 2
    assert m["BCA"][1] == pytest.approx(v - np.hypot(sen[0] - sen[1], spe[0] - spe[1]) / 2)
    assert m["BCA"][2] == pytest.approx(v + np.hypot(sen[2] - sen[0], spe[2] - spe[0]) / 2)
    # the MOVER interval is close to the stratified bootstrap percentile interval
    lo, _, hi = bootstrap_ci(y, pred, _bca, n_boot=1500, seed=0)
    assert abs(lo - m["BCA"][1]) < 0.015 and abs(hi - m["BCA"][2]) < 0.015


def test_f1_delta_method_close_to_bootstrap(data):
    y, _, pred = data
    f1 = confusion_metrics(y, pred)["F1"]
    lo, est, hi = bootstrap_ci(y, pred, _f1, n_boot=1500, seed=0, stratified=False)
    assert est == pytest.approx(f1[0])
    assert abs(lo - f1[1]) < 0.015 and abs(hi - f1[2]) < 0.015


def test_empty_denominator_gives_nan():
    y = np.array([0, 0, 1, 1])
    m = confusion_metrics(y, np.zeros(4, int))  # nobody predicted positive
    assert all(np.isnan(m["PPV"]))
    assert m["SEN"][0] == 0 and m["SPE"][0] == 1


def _brute_youden(y, s, w):
    best, best_t = -np.inf, None
    for t in np.sort(np.unique(s)):  # ascending: ties keep the lowest threshold
        p = s >= t
        sen = p[y == 1].mean()
        spe = (~p)[y == 0].mean()
        j = w * sen + spe - 1
        if j > best + 1e-12:
            best, best_t = j, t
    return best_t


@pytest.mark.parametrize("w", [1.0, 0.5, 2.0, 4.0])
def test_youden_against_brute_force(w):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 150)
    s = np.round(y + rng.normal(size=150), 1)
    assert youden_threshold(y, s, weight=w) == pytest.approx(_brute_youden(y, s, w))


def test_youden_matches_sklearn_roc_curve():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    s = y + rng.normal(size=300)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    assert youden_threshold(y, s) == pytest.approx(thr[np.argmax(tpr - fpr)])
    t = threshold_for_sensitivity(y, s, 0.9)
    assert ((s >= t)[y == 1]).mean() >= 0.9
    assert ((s > t)[y == 1]).mean() < 0.9


def test_classification_report(data):
    y, score, _ = data
    t = youden_threshold(y, score)
    r = classification_report(y, score, t)
    assert set(r) == {"AUC", *METRICS}
    lo, auc, hi = auc_ci(y, score)
    assert r["AUC"] == pytest.approx((auc, lo, hi))
    assert r["SEN"] == pytest.approx(confusion_metrics(y, (score >= t).astype(int))["SEN"])


def test_performance_is_the_shared_report_with_extras():
    import numpy as np

    from replicate.stats import auc_ci, confusion_metrics, performance

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    s = y * 0.6 + rng.normal(0, 0.5, 80)
    rep = performance(y, s, 0.3, extra=("C-index", "AP", "HL"))
    low, auc, high = auc_ci(y, s)
    assert rep["AUC"] == pytest.approx((auc, low, high)) and rep["C-index"] == rep["AUC"]
    assert rep["SEN"] == pytest.approx(confusion_metrics(y, (s >= 0.3).astype(int))["SEN"])
    assert 0 < rep["AP"][0] <= 1 and len(rep["HL"]) == 3
    with pytest.raises(ValueError, match="unknown extra"):
        performance(y, s, 0.3, extra=("Brier",))


def test_add_performance_records_each_metric():
    from pathlib import Path

    from replicate.results import ChapterResults
    from replicate.spec import load_spec_file

    res = ChapterResults(load_spec_file(Path(__file__).parent / "fixtures" / "spec_toy.yaml"), "public", {})
    res.add_performance(
        "Model",
        "validation",
        {"AUC": (0.8, 0.7, 0.9), "SEN": (float("nan"),) * 3, "PPV": (0.5, float("nan"), float("nan"))},
    )
    rows = {m["metric"]: m for m in res.metrics}
    assert rows["AUC"]["ci"] == [0.7, 0.9] and rows["SEN"]["value"] is None and rows["PPV"]["ci"] is None
