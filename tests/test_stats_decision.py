"""Decision curves (dcurves) against net benefit computed by hand."""

import numpy as np
import pytest

from replicate.stats import TREAT_ALL, TREAT_NONE, decision_curve, net_benefit


def test_hand_computed_net_benefit():
    # 10 patients, 4 events. At t = 0.3, the model treats p >= 0.3: patients 3..9
    y = np.array([0, 0, 0, 1, 0, 1, 0, 1, 1, 0])
    p = np.array([0.05, 0.1, 0.2, 0.3, 0.35, 0.5, 0.6, 0.7, 0.9, 0.95])
    # treated: TP = 4 (idx 3,5,7,8), FP = 3 (idx 4,6,9) -> NB = 4/10 - 3/10 * 0.3/0.7
    nb_model = 0.4 - 0.3 * 0.3 / 0.7
    nb_all = 0.4 - 0.6 * 0.3 / 0.7
    df = decision_curve(y, {"m": p}, thresholds=[0.3, 0.5])
    row = df[(df.model == "m") & np.isclose(df.threshold, 0.3)].iloc[0]
    assert row.net_benefit == pytest.approx(nb_model)
    assert net_benefit(y, p, 0.3) == pytest.approx(nb_model)
    assert df[(df.model == TREAT_ALL) & np.isclose(df.threshold, 0.3)].net_benefit.item() == pytest.approx(nb_all)
    assert (df[df.model == TREAT_NONE].net_benefit == 0).all()
    # at t = 0.5: treated idx 5..9 -> TP 3, FP 2
    row = df[(df.model == "m") & np.isclose(df.threshold, 0.5)].iloc[0]
    assert row.net_benefit == pytest.approx(0.3 - 0.2 * 1.0)


def test_tidy_output_many_models():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    probs = {"a": rng.uniform(size=80), "b": np.clip(0.4 * y + rng.uniform(0, 0.6, 80), 0, 1)}
    df = decision_curve(y, probs)
    assert list(df.model.unique()) == ["a", "b", TREAT_ALL, TREAT_NONE]
    assert len(df) == 4 * len(np.arange(0.01, 0.99, 0.01))
    for name, p in probs.items():
        sub = df[df.model == name]
        expected = [net_benefit(y, p, t) for t in sub.threshold]
        np.testing.assert_allclose(sub.net_benefit, expected, atol=1e-12)
    assert {"threshold", "net_benefit", "prevalence"} <= set(df.columns)


def test_errors():
    with pytest.raises(ValueError):
        decision_curve([0, 1], {"all": [0.1, 0.9]})
    with pytest.raises(ValueError):
        decision_curve([0, 1], {"m": [0.1, 1.9]})
    with pytest.raises(ValueError):
        decision_curve([0, 1], {"m": [0.1, 0.9]}, thresholds=[0, 0.5])
