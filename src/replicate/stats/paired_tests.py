"""McNemar's test of two classifiers on the same patients (statsmodels).

The 2 x 2 table counts agreement of the two classifiers' *correctness*:

    [[both correct,          A correct & B wrong],
     [A wrong & B correct,   both wrong        ]]

and the test uses the discordant cells ``b`` (A right, B wrong) and ``c``
(A wrong, B right). ``exact=None`` picks the exact binomial test when
``b + c < 25`` and the chi-square statistic with continuity correction
otherwise (the usual rule; statsmodels ``mcnemar`` docs).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._util import as_binary

__all__ = ["McNemarResult", "mcnemar"]


class McNemarResult(NamedTuple):
    statistic: float  # chi-square (asymptotic) or min(b, c) (exact), as statsmodels reports it
    p_value: float
    b: int  # A correct, B wrong
    c: int  # A wrong, B correct
    exact: bool
    table: np.ndarray


def mcnemar(y, pred_a, pred_b, exact: bool | None = None, correction: bool = True) -> McNemarResult:
    """McNemar's test that classifiers A and B have the same accuracy on these patients."""
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    y = as_binary(y)
    a = as_binary(pred_a, "pred_a") == y
    b_ = as_binary(pred_b, "pred_b") == y
    if a.size != y.size or b_.size != y.size:
        raise ValueError("y, pred_a and pred_b differ in length")
    table = np.array([[np.sum(a & b_), np.sum(a & ~b_)], [np.sum(~a & b_), np.sum(~a & ~b_)]])
    b, c = int(table[0, 1]), int(table[1, 0])
    if exact is None:
        exact = (b + c) < 25
    res = sm_mcnemar(table, exact=exact, correction=correction)
    return McNemarResult(float(res.statistic), float(res.pvalue), b, c, bool(exact), table)
