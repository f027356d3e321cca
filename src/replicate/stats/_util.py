"""Small input checks shared by the statistics modules (private)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def as_binary(y, name: str = "y") -> np.ndarray:
    """Return ``y`` as a 1-D int array of 0/1; booleans are accepted, anything else raises."""
    a = np.asarray(y)
    if a.ndim != 1:
        a = a.ravel()
    if a.dtype == bool:
        return a.astype(np.int64)
    if a.size and not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{name} must be 0/1 (or bool); got dtype {a.dtype}")
    if a.size and np.isnan(a.astype(float)).any():
        raise ValueError(f"{name} contains NaN")
    u = np.unique(a)
    if not np.isin(u, (0, 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1; found {u[:5].tolist()}")
    return a.astype(np.int64)


def as_float(x, name: str = "score", n: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN")
    if n is not None and a.size != n:
        raise ValueError(f"{name} has {a.size} values, expected {n}")
    return a


def both_classes(y: np.ndarray, what: str = "this statistic") -> tuple[int, int]:
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"{what} needs both classes; got {n_pos} positives and {n_neg} negatives")
    return n_pos, n_neg


def z_crit(level: float) -> float:
    """Two-sided normal critical value for a ``level`` confidence interval (0.95 -> 1.959964)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(stats.norm.isf((1 - level) / 2))
