"""Bootstrap confidence intervals (percentile), stratified by outcome by default.

Resampling scheme (shared by every function here, so results agree exactly):
``rng = numpy.random.default_rng(seed)``; for each resample ``b`` in order,
when ``stratified`` the positives are drawn with replacement
(``rng.integers(0, n_pos, n_pos)``) and then the negatives
(``rng.integers(0, n_neg, n_neg)``), keeping both class sizes fixed (pROC's
default ``stratified=TRUE``); otherwise ``rng.integers(0, N, N)`` over all
patients. :func:`bootstrap_indices` yields these resamples as index arrays;
:func:`bootstrap_auc` evaluates the AUC of all of them at once.

Vectorised AUC: a resample is a vector of multiplicities ``w`` (how often
each patient was drawn). With the negatives sorted by score, the weighted
count of negatives below (and tied with) every positive is a lookup into the
cumulative sum of the negatives' weights, so

    AUC_b = sum_i w_pos[b, i] * (W_below[b, i] + W_tied[b, i] / 2) / (sum w_pos[b] * sum w_neg[b])

costs O(n) per resample instead of a sort (2,000 resamples of n = 500 take
a few tens of milliseconds; see ``benchmarks/bench_stats.py``).

Percentile intervals use ``numpy.nanquantile`` with linear interpolation
(R's default quantile type 7, as in pROC).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import numpy as np

from ._util import as_binary, as_float, both_classes

__all__ = [
    "bootstrap_indices",
    "bootstrap_auc",
    "bootstrap_auc_ci",
    "bootstrap_ci",
    "bootstrap_values",
    "percentile_ci",
]

_CHUNK_ELEMENTS = 4_000_000  # resamples x patients held in memory at once


def percentile_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval ``(low, high)`` of bootstrap replicates (NaNs ignored)."""
    v = np.asarray(values, dtype=float)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if np.isnan(v).all():
        return (float("nan"), float("nan"))
    a = (1 - level) / 2
    lo, hi = np.nanquantile(v, [a, 1 - a])
    return (float(lo), float(hi))


def _draws(y: np.ndarray, n_boot: int, seed: int | np.random.Generator | None, stratified: bool):
    """Yield, per resample, the drawn positions: (pos_draw, neg_draw) or (all_draw,)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if stratified:
        n_pos, n_neg = both_classes(y, "a stratified bootstrap")
        for _ in range(n_boot):
            yield rng.integers(0, n_pos, n_pos), rng.integers(0, n_neg, n_neg)
    else:
        n = y.size
        for _ in range(n_boot):
            yield (rng.integers(0, n, n),)


def bootstrap_indices(y, n_boot: int = 2000, seed: int | None = 0, stratified: bool = True) -> Iterator[np.ndarray]:
    """Yield ``n_boot`` resamples as arrays of row indices into ``y`` (see module docstring)."""
    y = as_binary(y)
    pos_idx = np.flatnonzero(y == 1)
    neg_idx = np.flatnonzero(y == 0)
    for d in _draws(y, n_boot, seed, stratified):
        if stratified:
            yield np.concatenate([pos_idx[d[0]], neg_idx[d[1]]])
        else:
            yield d[0]


def _weighted_auc_chunk(
    pos_s: np.ndarray,
    neg_sorted: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    w_pos: np.ndarray,
    w_neg_sorted: np.ndarray,
) -> np.ndarray:
    b = w_pos.shape[0]
    cw = np.zeros((b, neg_sorted.size + 1), dtype=np.int64)
    np.cumsum(w_neg_sorted, axis=1, out=cw[:, 1:])
    below = cw[:, lo]
    tied = cw[:, hi] - below
    num = (w_pos * (2 * below + tied)).sum(axis=1) / 2.0
    den = w_pos.sum(axis=1).astype(float) * w_neg_sorted.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def bootstrap_auc(y, score, n_boot: int = 2000, seed: int | None = 0, stratified: bool = True) -> np.ndarray:
    """AUC of ``n_boot`` bootstrap resamples (vectorised; higher score = positive).

    Returns an array of length ``n_boot``. With ``stratified=False`` a
    resample that misses a class has AUC ``nan`` (a warning says how many);
    :func:`percentile_ci` ignores them.
    """
    y = as_binary(y)
    s = as_float(score, n=y.size)
    both_classes(y, "the AUC")
    pos_idx = np.flatnonzero(y == 1)
    neg_idx = np.flatnonzero(y == 0)
    order = np.argsort(s[neg_idx], kind="mergesort")
    neg_sorted = s[neg_idx][order]
    pos_s = s[pos_idx]
    lo = np.searchsorted(neg_sorted, pos_s, side="left")
    hi = np.searchsorted(neg_sorted, pos_s, side="right")
    m, n = pos_idx.size, neg_idx.size
    chunk = max(1, _CHUNK_ELEMENTS // (y.size + 1))
    out = np.empty(n_boot)
    draws = _draws(y, n_boot, seed, stratified)
    done = 0
    while done < n_boot:
        k = min(chunk, n_boot - done)
        rows = [next(draws) for _ in range(k)]
        if stratified:
            pd_ = np.stack([r[0] for r in rows])
            nd_ = np.stack([r[1] for r in rows])
            off = np.arange(k)[:, None]
            w_pos = np.bincount((pd_ + off * m).ravel(), minlength=k * m).reshape(k, m)
            w_neg = np.bincount((nd_ + off * n).ravel(), minlength=k * n).reshape(k, n)
        else:
            ad_ = np.stack([r[0] for r in rows])
            off = np.arange(k)[:, None] * y.size
            w = np.bincount((ad_ + off).ravel(), minlength=k * y.size).reshape(k, y.size)
            w_pos, w_neg = w[:, pos_idx], w[:, neg_idx]
        out[done : done + k] = _weighted_auc_chunk(pos_s, neg_sorted, lo, hi, w_pos, w_neg[:, order])
        done += k
    n_nan = int(np.isnan(out).sum())
    if n_nan:
        warnings.warn(
            f"{n_nan} of {n_boot} unstratified bootstrap resamples had a single class (AUC = nan)", stacklevel=2
        )
    return out


def bootstrap_auc_ci(
    y, score, n_boot: int = 2000, stratified: bool = True, seed: int | None = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Percentile bootstrap CI of the AUC as ``(low, auc, high)`` (auc = full-sample AUC)."""
    from .auc import auc_score

    lo, hi = percentile_ci(bootstrap_auc(y, score, n_boot=n_boot, seed=seed, stratified=stratified), level)
    return (lo, auc_score(y, score), hi)


def bootstrap_values(
    y, score, fn: Callable, n_boot: int = 2000, seed: int | None = 0, stratified: bool = True
) -> np.ndarray:
    """``fn(y[idx], score[idx])`` for every resample ``idx`` of :func:`bootstrap_indices`.

    ``score`` may be one array (N,) or a 2-D array (N, k) whose rows are
    resampled together (e.g. two models' scores, for a paired difference),
    or a tuple/list of arrays of length N (each resampled alike and passed
    on as a tuple). A resample on which ``fn`` raises ``ValueError`` gives
    ``nan``.
    """
    y = as_binary(y)
    if isinstance(score, (tuple, list)):
        arrays = [np.asarray(a) for a in score]
        take = lambda idx: tuple(a[idx] for a in arrays)  # noqa: E731
        n = arrays[0].shape[0]
    else:
        arr = np.asarray(score)
        take = lambda idx: arr[idx]  # noqa: E731
        n = arr.shape[0]
    if n != y.size:
        raise ValueError(f"score has {n} rows, y has {y.size}")
    out = np.empty(n_boot)
    for b, idx in enumerate(bootstrap_indices(y, n_boot, seed, stratified)):
        try:
            out[b] = fn(y[idx], take(idx))
        except ValueError:
            out[b] = np.nan
    return out


def bootstrap_ci(
    y, score, fn: Callable, n_boot: int = 2000, seed: int | None = 0, stratified: bool = True, level: float = 0.95
) -> tuple[float, float, float]:
    """Generic percentile bootstrap CI of ``fn(y, score)``, returned as ``(low, estimate, high)``.

    ``estimate`` is ``fn`` on the full sample. ``fn`` is called once per
    resample (a Python loop: use :func:`bootstrap_auc` for the AUC, which
    gives identical replicates much faster).
    """
    y_arr = as_binary(y)
    if isinstance(score, (tuple, list)):
        full = tuple(np.asarray(a) for a in score)
    else:
        full = np.asarray(score)
    est = float(fn(y_arr, full))
    lo, hi = percentile_ci(bootstrap_values(y_arr, score, fn, n_boot, seed, stratified), level)
    return (lo, est, hi)
