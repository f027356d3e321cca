"""Statistics benchmarks: fast DeLong vs naive O(n^2) DeLong; vectorised vs looped bootstrap of the AUC.

    .venv/bin/python benchmarks/bench_stats.py

``run()`` returns rows ``{name, ours_s, naive_s, ratio, goal, met, max_abs_diff}``
(``ratio`` = naive / ours, i.e. the speed-up) for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import time

import numpy as np


def _best_of(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def naive_delong_paired(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) paired z and p from the O(m n) pairwise kernel (row-chunked)."""
    from scipy import stats

    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    v10, v01 = [], []
    for s in (a, b):
        x, z = s[pos], s[neg]
        row = np.empty(m)
        col = np.zeros(n)
        step = max(1, 2_000_000 // n)
        for i in range(0, m, step):
            psi = (x[i : i + step, None] > z[None, :]) + 0.5 * (x[i : i + step, None] == z[None, :])
            row[i : i + step] = psi.mean(axis=1)
            col += psi.sum(axis=0)
        v10.append(row)
        v01.append(col / m)
    s10 = np.cov(np.vstack(v10))
    s01 = np.cov(np.vstack(v01))
    s = s10 / m + s01 / n
    auc = [r.mean() for r in v10]
    z = (auc[0] - auc[1]) / np.sqrt(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    return float(z), float(2 * stats.norm.sf(abs(z)))


def bench_delong(n: int = 10_000, seed: int = 0) -> dict:
    from replicate.stats import delong_test

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = y + rng.normal(size=n)
    b = 0.8 * y + rng.normal(size=n)
    ours_s, r = _best_of(lambda: delong_test(y, a, b))
    naive_s, (z, _) = _best_of(lambda: naive_delong_paired(y, a, b), repeat=1)
    return {
        "name": f"DeLong paired test, n = {n:,}",
        "ours_s": round(ours_s, 4),
        "naive_s": round(naive_s, 3),
        "ratio": round(naive_s / ours_s, 1),
        "goal": "",
        "met": None,
        "max_abs_diff": float(abs(r.z - z)),
    }


def bench_bootstrap(n: int = 500, n_boot: int = 2000, seed: int = 0) -> dict:
    from sklearn.metrics import roc_auc_score

    from replicate.stats import bootstrap_auc, bootstrap_indices

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = y + rng.normal(size=n)
    ours_s, fast = _best_of(lambda: bootstrap_auc(y, s, n_boot=n_boot, seed=1, stratified=True))

    def loop():
        return np.array([roc_auc_score(y[i], s[i]) for i in bootstrap_indices(y, n_boot, seed=1, stratified=True)])

    naive_s, slow = _best_of(loop, repeat=1)
    return {
        "name": f"stratified bootstrap AUC, {n_boot:,} resamples, n = {n}",
        "ours_s": round(ours_s, 4),
        "naive_s": round(naive_s, 3),
        "ratio": round(naive_s / ours_s, 1),
        "goal": "<= 2 s",
        "met": bool(ours_s <= 2.0),
        "max_abs_diff": float(np.max(np.abs(fast - slow))),
    }


def run() -> list[dict]:
    rows = [bench_delong(), bench_bootstrap()]
    return rows


if __name__ == "__main__":
    import pandas as pd

    print(pd.DataFrame(run()).to_markdown(index=False))
