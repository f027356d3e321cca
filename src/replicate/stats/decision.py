"""Decision curve analysis (Vickers & Elkin 2006) via the ``dcurves`` package.

Net benefit of treating patients whose predicted risk is ``>= t``:

    NB(t) = TP/N - FP/N * t / (1 - t)

"Treat all" uses TP = all events, FP = all non-events; "treat none" is 0.
``dcurves.dca`` computes these (``decision_curve`` only builds its input
frame and tidies its output); ``tests/test_stats_decision.py`` checks the
values against the formula by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._util import as_binary, as_float

__all__ = ["decision_curve", "net_benefit", "TREAT_ALL", "TREAT_NONE"]

TREAT_ALL = "Treat all"
TREAT_NONE = "Treat none"
_OUTCOME = "__outcome__"


def net_benefit(y, p, threshold: float) -> float:
    """Net benefit of the rule ``p >= threshold`` (plain formula, no dcurves)."""
    y = as_binary(y)
    p = as_float(p, "p", y.size)
    treat = p >= threshold
    n = y.size
    tp = np.sum(treat & (y == 1))
    fp = np.sum(treat & (y == 0))
    return float(tp / n - fp / n * threshold / (1 - threshold))


DEFAULT_THRESHOLDS = tuple(np.arange(0.01, 0.99, 0.01))


def decision_curve(y, probs: dict, thresholds=DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """Net benefit of each model in ``probs`` (name -> predicted probabilities) plus treat-all / treat-none.

    Returns a tidy DataFrame with columns ``model, threshold, net_benefit,
    tp_rate, fp_rate, test_pos_rate, net_intervention_avoided, n,
    prevalence``; the reference strategies are named ``"Treat all"`` and
    ``"Treat none"``. Thresholds must lie in (0, 1).
    """
    import dcurves

    y = as_binary(y)
    thresholds = [float(t) for t in np.asarray(thresholds, dtype=float).ravel()]
    if not thresholds or min(thresholds) <= 0 or max(thresholds) >= 1:
        raise ValueError("thresholds must lie strictly between 0 and 1")
    data = {_OUTCOME: y}
    for name, p in probs.items():
        if name in ("all", "none", _OUTCOME, TREAT_ALL, TREAT_NONE):
            raise ValueError(f"model name {name!r} is reserved")
        p = as_float(p, f"probs[{name!r}]", y.size)
        if (p < 0).any() or (p > 1).any():
            raise ValueError(f"probs[{name!r}] must be probabilities in [0, 1]")
        data[str(name)] = p
    names = [str(k) for k in probs]
    df = dcurves.dca(data=pd.DataFrame(data), outcome=_OUTCOME, modelnames=names, thresholds=thresholds)
    df = df.copy()
    df["model"] = df["model"].replace({"all": TREAT_ALL, "none": TREAT_NONE})
    cols = [
        "model",
        "threshold",
        "net_benefit",
        "tp_rate",
        "fp_rate",
        "test_pos_rate",
        "net_intervention_avoided",
        "n",
        "prevalence",
    ]
    order = {m: i for i, m in enumerate(names + [TREAT_ALL, TREAT_NONE])}
    df = df[cols].sort_values(["model", "threshold"], key=lambda s: s.map(order) if s.name == "model" else s)
    return df.reset_index(drop=True)
