"""Validation protocols: external split, repeated stratified CV (out-of-fold), WORC-style random splits.

Every protocol refits the *whole* model — selection steps included — on the
training rows of each split and only predicts the held-out rows, so no
held-out label or feature value ever reaches a fitted step.

``make_model`` is either a zero-argument callable returning an unfitted
estimator (e.g. ``lambda: make_pipeline([...], "svm", smote=True)``) or an
unfitted estimator, which is cloned for every fit. Scores are the predicted
probability of the positive class (``predict_proba[:, 1]``; the larger of
the two labels), or ``decision_function`` for estimators without
probabilities.

Folds and splits run where :func:`replicate.parallel.map_tasks` sends them: in this process,
in ``n_jobs`` joblib workers, or on a Dask cluster (``scheduler=`` or ``REPLICATE_SCHEDULER``);
the numbers do not depend on the route. Each protocol reports a :mod:`replicate.progress`
stage with a fold / split counter.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedShuffleSplit

__all__ = [
    "CVPredictions", "external_validation", "repeated_cv_predict", "random_splits", "evaluate_splits",
    "summarise_splits", "permute_labels", "new_model", "positive_scores", "SPLIT_METRICS",
]

#: Metrics :func:`evaluate_splits` can compute (scores thresholded at ``threshold`` for all but AUC).
SPLIT_METRICS = ("AUC", "ACC", "BCA", "SEN", "SPE", "PPV", "NPV", "F1")


def new_model(make_model):
    """A fresh unfitted estimator from a factory callable or by cloning an estimator."""
    if hasattr(make_model, "fit"):
        return clone(make_model)
    if callable(make_model):
        m = make_model()
        if not hasattr(m, "fit"):
            raise TypeError("make_model() must return an estimator with fit()")
        return m
    raise TypeError("make_model must be an estimator or a callable returning one")


def _take(X, idx):
    return X.iloc[idx] if isinstance(X, (pd.DataFrame, pd.Series)) else np.asarray(X)[idx]


def _index(X) -> pd.Index:
    return X.index if isinstance(X, (pd.DataFrame, pd.Series)) else pd.RangeIndex(len(X))


def _y_array(y) -> np.ndarray:
    yv = np.asarray(y)
    if yv.ndim != 1:
        raise ValueError("y must be 1-D")
    return yv


def positive_scores(model, X) -> np.ndarray:
    """Score of the positive class (the larger label): ``predict_proba[:, 1]`` or ``decision_function``."""
    if hasattr(model, "predict_proba"):
        try:
            p = np.asarray(model.predict_proba(X))
            classes = list(getattr(model, "classes_", [0, 1]))
            return p[:, classes.index(max(classes))] if p.ndim == 2 else p
        except AttributeError:
            pass
    return np.asarray(model.decision_function(X), dtype=float).ravel()


def _as_y_series(y, index) -> pd.Series:
    if isinstance(y, pd.Series):
        return pd.Series(y.to_numpy(), index=index, name=y.name)
    return pd.Series(np.asarray(y), index=index)


def external_validation(make_model, X_train, y_train, X_test):
    """Fit once on the training cohort; ``(fitted, p_train, p_test)``.

    ``p_train`` are the *apparent* (resubstitution) training probabilities
    the papers report for their training cohort; ``p_test`` the external /
    validation probabilities. Both are Series indexed like the inputs.
    """
    model = new_model(make_model)
    model.fit(X_train, y_train)
    p_train = pd.Series(positive_scores(model, X_train), index=_index(X_train), name="p")
    p_test = pd.Series(positive_scores(model, X_test), index=_index(X_test), name="p")
    return model, p_train, p_test


@dataclass
class CVPredictions:
    """Out-of-fold predictions of a repeated stratified K-fold CV.

    ``per_repeat``: patients x repeats (column ``r`` = repeat ``r``), each
    patient's out-of-fold score in that repeat; ``oof_mean``: the mean over
    repeats (the score the chapters evaluate, e.g. AUC with DeLong CI);
    ``auc_per_repeat``: the AUC of each repeat's out-of-fold scores;
    ``fold_info``: what ``inspect(fitted_model)`` returned per fit (``None`` when not asked),
    as a list of dicts ``{"repeat", "fold", "info"}``.
    """

    y: pd.Series
    per_repeat: pd.DataFrame
    auc_per_repeat: pd.Series
    n_splits: int
    n_repeats: int
    seed: int
    fold_info: list = field(default_factory=list)

    @property
    def oof_mean(self) -> pd.Series:
        return self.per_repeat.mean(axis=1).rename("p")

    @property
    def auc_mean(self) -> float:
        return float(self.auc_per_repeat.mean())

    @property
    def auc_of_mean(self) -> float:
        """AUC of the repeat-averaged out-of-fold score."""
        return float(roc_auc_score(self.y.to_numpy(), self.oof_mean.to_numpy()))


def _fit_predict(make_model, X, y, train, test, inspect):
    model = new_model(make_model)
    model.fit(_take(X, train), _take(y, train))
    s = positive_scores(model, _take(X, test))
    info = inspect(model) if inspect is not None else None
    return s, info


def _run(fn, tasks, n_jobs, progress, desc, unit, scheduler):
    """``[fn(*t) for t in tasks]`` via :func:`replicate.parallel.map_tasks` (a tqdm bar when ``progress``
    and the work stays in this process)."""
    from .parallel import map_tasks, resolve_scheduler

    if progress and n_jobs in (None, 1) and resolve_scheduler(scheduler) is None:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, leave=False)

        def step(*args):
            out = fn(*args)
            bar.update()
            return out

        try:
            return map_tasks(step, tasks, n_jobs=1, scheduler=False, desc=desc, unit=unit)
        finally:
            bar.close()
    return map_tasks(fn, tasks, n_jobs=n_jobs, scheduler=scheduler, desc=desc, unit=unit)


def repeated_cv_predict(make_model, X, y, n_splits: int = 5, n_repeats: int = 10, seed: int = 0,
                        progress: bool = True, n_jobs: int | None = 1,
                        inspect: Callable[[Any], Any] | None = None, scheduler=None) -> CVPredictions:
    """Repeated stratified K-fold CV; the whole pipeline is refitted in every fold.

    Folds: :class:`sklearn.model_selection.RepeatedStratifiedKFold`
    (``n_splits``, ``n_repeats``, ``random_state=seed``). ``n_jobs`` fits
    folds in parallel with joblib, ``scheduler`` on a Dask cluster (default:
    ``REPLICATE_SCHEDULER`` if set; ``False``: never); results do not depend on either.
    ``progress`` shows a tqdm bar; ``inspect(fitted)`` is called on every
    fitted fold model (e.g. to record the selected features).
    """
    yv = _y_array(y)
    idx = _index(X)
    if len(yv) != len(idx):
        raise ValueError(f"X has {len(idx)} rows, y has {len(yv)}")
    classes = np.unique(yv)
    if len(classes) != 2:
        raise ValueError(f"y must have exactly 2 classes, got {classes.tolist()}")
    rskf = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    splits = list(rskf.split(np.zeros(len(yv)), yv))
    tasks = [(make_model, X, y, tr, te, inspect) for tr, te in splits]
    results = _run(_fit_predict, tasks, n_jobs, progress, "CV folds", "fold", scheduler)
    per = np.full((len(yv), n_repeats), np.nan)
    info = []
    for k, ((tr, te), (s, inf)) in enumerate(zip(splits, results)):
        r = k // n_splits
        per[te, r] = s
        if inspect is not None:
            info.append({"repeat": r, "fold": k % n_splits, "info": inf})
    per_repeat = pd.DataFrame(per, index=idx, columns=pd.RangeIndex(n_repeats, name="repeat"))
    ys = _as_y_series(y, idx)
    pos = (yv == classes.max()).astype(int)
    aucs = pd.Series([roc_auc_score(pos, per[:, r]) for r in range(n_repeats)],
                     index=pd.RangeIndex(n_repeats, name="repeat"), name="AUC")
    return CVPredictions(ys, per_repeat, aucs, n_splits, n_repeats, seed, info)


def random_splits(y, n_splits: int = 100, test_size: float = 0.2, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """WORC's evaluation design: ``n_splits`` stratified random train/test splits (default 80/20).

    Returns ``[(train_positions, test_positions), ...]`` (sorted integer
    positions into ``y``), from :class:`StratifiedShuffleSplit`
    (``random_state=seed``). Pass WORC's own published splits instead where
    the data set provides them (``replicate.data.load_worc_splits``).
    """
    yv = _y_array(y)
    classes, counts = np.unique(yv, return_counts=True)
    if len(classes) != 2:
        raise ValueError(f"random_splits: the outcome must have exactly 2 classes, got {classes.tolist()}")
    sss = StratifiedShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in sss.split(np.zeros(len(yv)), yv)]


def _metrics(y_pos: np.ndarray, s: np.ndarray, threshold: float, metrics: Sequence[str]) -> dict[str, float]:
    pred = (s >= threshold).astype(int)
    tp = int(np.sum((y_pos == 1) & (pred == 1)))
    tn = int(np.sum((y_pos == 0) & (pred == 0)))
    fp = int(np.sum((y_pos == 0) & (pred == 1)))
    fn = int(np.sum((y_pos == 1) & (pred == 0)))

    def ratio(a, b):
        return a / b if b else float("nan")

    sen, spe = ratio(tp, tp + fn), ratio(tn, tn + fp)
    values = {
        "AUC": float(roc_auc_score(y_pos, s)) if len(np.unique(y_pos)) == 2 else float("nan"),
        "ACC": ratio(tp + tn, len(y_pos)),
        "SEN": sen,
        "SPE": spe,
        "BCA": (sen + spe) / 2,
        "PPV": ratio(tp, tp + fp),
        "NPV": ratio(tn, tn + fn),
        "F1": ratio(2 * tp, 2 * tp + fp + fn),
    }
    unknown = [m for m in metrics if m not in values]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {list(SPLIT_METRICS)}")
    return {m: float(values[m]) for m in metrics}


def evaluate_splits(make_model, X, y, splits, metrics=("AUC", "BCA", "SEN", "SPE"), threshold: float = 0.5,
                    n_jobs: int | None = 1, progress: bool = False, scheduler=None) -> pd.DataFrame:
    """Fit on each split's training rows, score its test rows; one row per split.

    Columns: ``split``, ``n_train``, ``n_test``, then each metric (AUC on
    the scores; the others on ``score >= threshold``, WORC's 0.5 cut-off
    on the posterior). ``splits`` are position pairs as from
    :func:`random_splits`. ``n_jobs`` / ``scheduler``: where the splits are fitted, as in
    :func:`repeated_cv_predict`.
    """
    yv = _y_array(y)
    pos = (yv == np.unique(yv).max()).astype(int)
    tasks = [(make_model, X, y, np.asarray(tr), np.asarray(te), None) for tr, te in splits]
    results = _run(_fit_predict, tasks, n_jobs, progress, "random splits", "split", scheduler)
    rows = []
    for k, ((tr, te), (s, _)) in enumerate(zip(splits, results)):
        row = {"split": k, "n_train": len(tr), "n_test": len(te)}
        row.update(_metrics(pos[np.asarray(te)], np.asarray(s, dtype=float), threshold, metrics))
        rows.append(row)
    return pd.DataFrame(rows)


def summarise_splits(df: pd.DataFrame, n_train=None, n_test=None, level: float = 0.95,
                     metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean of each metric over the splits with the corrected resampled t-test CI (Nadeau & Bengio 2003).

    ``n_train`` / ``n_test`` default to the mean of the ``n_train`` /
    ``n_test`` columns of ``df``. Returns one row per metric with ``mean``,
    ``low``, ``high``, ``sd`` and ``n_splits`` (NaN values of a metric,
    e.g. an undefined PPV, are left out of that metric).
    """
    from replicate.stats.resampled_ttest import corrected_resampled_ttest_ci

    if n_train is None:
        n_train = float(df["n_train"].mean())
    if n_test is None:
        n_test = float(df["n_test"].mean())
    if metrics is None:
        metrics = [c for c in df.columns if c not in ("split", "n_train", "n_test")]
    rows = {}
    for m in metrics:
        v = df[m].dropna().to_numpy(dtype=float)
        if v.size >= 2:
            mean, low, high = corrected_resampled_ttest_ci(v, n_train, n_test, level)
        else:
            mean, low, high = (float(v.mean()) if v.size else float("nan")), float("nan"), float("nan")
        rows[m] = {"mean": mean, "low": low, "high": high,
                   "sd": float(np.std(v, ddof=1)) if v.size >= 2 else float("nan"), "n_splits": int(v.size)}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "metric"
    return out


def permute_labels(y, seed: int = 0):
    """The labels randomly permuted (same type; a Series keeps its index): the null-label / leakage probe."""
    rng = np.random.default_rng(seed)
    if isinstance(y, pd.Series):
        return pd.Series(rng.permutation(y.to_numpy()), index=y.index, name=y.name)
    return rng.permutation(np.asarray(y))
