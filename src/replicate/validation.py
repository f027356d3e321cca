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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedShuffleSplit

__all__ = [
    "CVResult",
    "repeated_cv",
    "score_frame",
    "tuned",
    "split_scores",
    "CVPredictions",
    "external_validation",
    "repeated_cv_predict",
    "random_splits",
    "evaluate_splits",
    "summarise_splits",
    "permute_labels",
    "new_model",
    "positive_scores",
    "SPLIT_METRICS",
]

#: Metrics :func:`evaluate_splits` can compute (scores thresholded at ``threshold`` for all but AUC).
SPLIT_METRICS = ("AUC", "ACC", "BCA", "SEN", "SPE", "PPV", "NPV", "F1")


def new_model(make_model):
    """A fresh unfitted estimator from a factory callable or by cloning an estimator."""
    if hasattr(make_model, "fit") and not isinstance(make_model, type):
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


def score_frame(model, X) -> pd.DataFrame:
    """Every score a fitted estimator gives, one column per model: its ``predict_scores(X)`` (estimators that
    carry several models, e.g. a DLRN's signatures and nomogram) or else :func:`positive_scores` as ``"score"``."""
    if hasattr(model, "predict_scores"):
        out = model.predict_scores(X)
        return pd.DataFrame(out).set_axis(_index(X), axis=0)
    return pd.DataFrame({"score": positive_scores(model, X)}, index=_index(X))


@dataclass
class CVResult:
    """Out-of-fold scores of a repeated stratified K-fold CV, for every model an estimator scores.

    ``per_repeat[model]``: patients x repeats, each patient's out-of-fold score in that repeat;
    ``fold_of``: patients x repeats, each patient's test fold; ``fold_aucs``: one row per fold and model
    (``repeat``, ``fold``, ``model``, ``AUC``, ``n_train``, ``n_test``); ``fold_info``: what
    ``inspect(fitted)`` returned per fit, as dicts ``{"repeat", "fold", "info"}``; ``seconds``: wall time.
    """

    y: pd.Series
    per_repeat: dict
    n_splits: int
    n_repeats: int
    seed: int
    fold_of: pd.DataFrame
    fold_aucs: pd.DataFrame
    fold_info: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def models(self) -> list[str]:
        return list(self.per_repeat)

    def oof(self, model: str) -> pd.Series:
        """The repeat-averaged out-of-fold score of ``model``."""
        return self.per_repeat[model].mean(axis=1).rename(model)

    def oof_frame(self) -> pd.DataFrame:
        return pd.DataFrame({m: self.oof(m) for m in self.per_repeat})

    @property
    def auc_per_repeat(self) -> pd.DataFrame:
        """AUC of each repeat's pooled out-of-fold scores (repeats x models)."""
        yv = self.y.to_numpy()
        return pd.DataFrame(
            {m: [roc_auc_score(yv, df[r].to_numpy()) for r in df.columns] for m, df in self.per_repeat.items()}
        )

    def auc_summary(self, level: float = 0.95) -> pd.DataFrame:
        """Per model: the headline, the mean test-fold AUC with the corrected resampled t-test CI, and the
        secondary AUC of the repeat-averaged out-of-fold score (DeLong CI).

        ``mean``: the mean of the R x K test-fold AUCs (= the mean over repeats of each repeat's mean fold
        AUC); ``se``, ``low``, ``high``: Nadeau & Bengio's corrected standard error and t interval over those
        R x K values (J = R x K, n_test / n_train of the folds: Bouckaert & Frank's corrected repeated k-fold
        test). Each fold AUC is a test-set estimate, so their spread carries the patient-sampling error the
        correction needs; the AUC of a repeat's pooled predictions does not (every repeat scores the same
        patients). ``per_repeat``: each repeat's mean fold AUC. ``pooled``, ``pooled_low``, ``pooled_high``,
        ``pooled_se``: AUC of :meth:`oof` with its DeLong CI (a labelled secondary).
        """
        from .stats.auc import auc_ci, delong_variance
        from .stats.resampled_ttest import corrected_resampled_ttest_ci, corrected_se

        rows = []
        yv = self.y.to_numpy()
        for m, g in self.fold_aucs.groupby("model", sort=False):
            v = g["AUC"].to_numpy(dtype=float)
            n_tr, n_te = float(g["n_train"].mean()), float(g["n_test"].mean())
            mean, lo, hi = corrected_resampled_ttest_ci(v, n_tr, n_te, level)
            p = self.oof(m).to_numpy()
            plo, pauc, phi = auc_ci(yv, p, level=level)
            rows.append(
                {
                    "model": m,
                    "mean": mean,
                    "low": lo,
                    "high": hi,
                    "se": corrected_se(v, n_tr, n_te),
                    "sd_folds": float(np.std(v, ddof=1)),
                    "n_folds": int(v.size),
                    "per_repeat": g.groupby("repeat")["AUC"].mean().round(4).tolist(),
                    "pooled": pauc,
                    "pooled_low": plo,
                    "pooled_high": phi,
                    "pooled_se": float(np.sqrt(delong_variance(yv, p)[1])),
                }
            )
        return pd.DataFrame(rows).set_index("model")


@dataclass
class CVPredictions:
    """One model's view of a :class:`CVResult` (:func:`repeated_cv_predict`).

    ``per_repeat``: patients x repeats; ``oof_mean``: the mean over repeats; ``auc_per_repeat``: the AUC
    of each repeat's out-of-fold scores; ``fold_info`` as in :class:`CVResult`; ``result``: the whole
    :class:`CVResult` (:meth:`auc_summary` is its headline summary of this model).
    """

    y: pd.Series
    per_repeat: pd.DataFrame
    auc_per_repeat: pd.Series
    n_splits: int
    n_repeats: int
    seed: int
    fold_info: list = field(default_factory=list)
    result: CVResult | None = None

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

    def auc_summary(self, level: float = 0.95) -> pd.Series:
        return self.result.auc_summary(level).iloc[0]


def _fit_scores(make_model, X, y, train, test, inspect):
    model = new_model(make_model)
    model.fit(_take(X, train), _take(y, train))
    scores = score_frame(model, _take(X, test))
    info = inspect(model) if inspect is not None else None
    return scores, info


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


def _check_outcome(X, y) -> np.ndarray:
    yv = _y_array(y)
    if len(yv) != len(_index(X)):
        raise ValueError(f"X has {len(_index(X))} rows, y has {len(yv)}")
    classes = np.unique(yv)
    if len(classes) != 2:
        raise ValueError(f"y must have exactly 2 classes, got {classes.tolist()}")
    return (yv == classes.max()).astype(int)


def repeated_cv(
    make_model,
    X,
    y,
    n_splits: int = 5,
    n_repeats: int = 10,
    seed: int = 0,
    *,
    n_jobs: int | None = 1,
    scheduler=None,
    inspect: Callable[[Any], Any] | None = None,
    progress: bool = False,
) -> CVResult:
    """Repeated stratified K-fold CV of every model an estimator scores (:func:`score_frame`); the whole
    pipeline is refitted in every fold and every fold's test AUC is kept (:meth:`CVResult.auc_summary`).

    Folds: :class:`sklearn.model_selection.RepeatedStratifiedKFold` (``n_splits``, ``n_repeats``,
    ``random_state=seed``). ``n_jobs`` fits folds with joblib, ``scheduler`` on a Dask cluster (default:
    ``REPLICATE_SCHEDULER`` if set; ``False``: never); results do not depend on either. ``inspect(fitted)``
    is called on every fitted fold model (e.g. to record the selected features or a learned cut-off).
    A nested CV is this with a ``make_model`` that tunes itself on its training rows (:func:`tuned`).
    """
    t0 = time.perf_counter()
    pos = _check_outcome(X, y)
    idx = _index(X)
    rskf = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    splits = list(rskf.split(np.zeros(len(pos)), pos))
    tasks = [(make_model, X, y, tr, te, inspect) for tr, te in splits]
    results = _run(_fit_scores, tasks, n_jobs, progress, "CV folds", "fold", scheduler)
    per: dict[str, np.ndarray] = {}
    fold_of = np.full((len(pos), n_repeats), -1, dtype=int)
    aucs, info = [], []
    for k, ((tr, te), (scores, inf)) in enumerate(zip(splits, results)):
        r, f = divmod(k, n_splits)
        fold_of[te, r] = f
        if len(np.unique(pos[te])) < 2:
            raise ValueError(
                f"repeated_cv: test fold {f} of repeat {r} holds one class only; stratified folds "
                "need at least n_splits patients of each class"
            )
        for name in scores.columns:
            s = scores[name].to_numpy(dtype=float)
            per.setdefault(name, np.full((len(pos), n_repeats), np.nan))[te, r] = s
            aucs.append(
                {
                    "repeat": r,
                    "fold": f,
                    "model": name,
                    "AUC": float(roc_auc_score(pos[te], s)),
                    "n_train": len(tr),
                    "n_test": len(te),
                }
            )
        if inspect is not None:
            info.append({"repeat": r, "fold": f, "info": inf})
    cols = pd.RangeIndex(n_repeats, name="repeat")
    return CVResult(
        _as_y_series(y, idx),
        {m: pd.DataFrame(a, index=idx, columns=cols) for m, a in per.items()},
        n_splits,
        n_repeats,
        seed,
        pd.DataFrame(fold_of, index=idx, columns=cols),
        pd.DataFrame(aucs),
        info,
        round(time.perf_counter() - t0, 1),
    )


def repeated_cv_predict(
    make_model,
    X,
    y,
    n_splits: int = 5,
    n_repeats: int = 10,
    seed: int = 0,
    progress: bool = True,
    n_jobs: int | None = 1,
    inspect: Callable[[Any], Any] | None = None,
    scheduler=None,
) -> CVPredictions:
    """:func:`repeated_cv` of a one-score estimator, as that model's :class:`CVPredictions`."""
    res = repeated_cv(
        make_model,
        X,
        y,
        n_splits,
        n_repeats,
        seed,
        n_jobs=n_jobs,
        scheduler=scheduler,
        inspect=inspect,
        progress=progress,
    )
    name = res.models[0]
    pos = _check_outcome(X, y)
    aucs = pd.Series(
        [roc_auc_score(pos, res.per_repeat[name][r].to_numpy()) for r in range(n_repeats)],
        index=pd.RangeIndex(n_repeats, name="repeat"),
        name="AUC",
    )
    return CVPredictions(res.y, res.per_repeat[name], aucs, n_splits, n_repeats, seed, res.fold_info, res)


def tuned(make_model, param_grid: dict, *, inner_cv: int = 5, scoring: str = "roc_auc", seed: int = 0):
    """A factory of ``make_model`` wrapped in a grid search over ``param_grid`` on its own training rows
    (stratified ``inner_cv``-fold, shuffled with ``seed``): passed to :func:`repeated_cv` it makes a nested CV."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    def make():
        return GridSearchCV(
            new_model(make_model),
            param_grid,
            scoring=scoring,
            cv=StratifiedKFold(inner_cv, shuffle=True, random_state=seed),
        )

    return make


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


def split_scores(
    make_model,
    X,
    y,
    splits,
    metrics=("AUC",),
    threshold: float = 0.5,
    *,
    n_jobs: int | None = 1,
    progress: bool = False,
    scheduler=None,
    inspect: Callable[[Any], Any] | None = None,
) -> pd.DataFrame:
    """Fit on each split's training rows, score its test rows, for every model the estimator scores
    (:func:`score_frame`): one row per split and model (``split``, ``model``, ``n_train``, ``n_test`` and each
    metric: AUC on the scores, the others on ``score >= threshold``). ``splits`` are position pairs as from
    :func:`random_splits` (WORC's design) or any other split list. ``attrs["fit_info"]``: ``inspect(fitted)``
    per split. ``n_jobs`` / ``scheduler`` as in :func:`repeated_cv`.
    """
    pos = _check_outcome(X, y)
    tasks = [(make_model, X, y, np.asarray(tr), np.asarray(te), inspect) for tr, te in splits]
    results = _run(_fit_scores, tasks, n_jobs, progress, "random splits", "split", scheduler)
    rows = []
    for k, ((tr, te), (scores, _)) in enumerate(zip(splits, results)):
        for name in scores.columns:
            row = {"split": k, "model": name, "n_train": len(tr), "n_test": len(te)}
            row.update(_metrics(pos[np.asarray(te)], scores[name].to_numpy(dtype=float), threshold, metrics))
            rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["fit_info"] = [inf for _, inf in results] if inspect is not None else []
    return out


def evaluate_splits(
    make_model,
    X,
    y,
    splits,
    metrics=("AUC", "BCA", "SEN", "SPE"),
    threshold: float = 0.5,
    n_jobs: int | None = 1,
    progress: bool = False,
    scheduler=None,
) -> pd.DataFrame:
    """:func:`split_scores` of a one-score estimator: one row per split (``split``, ``n_train``, ``n_test``,
    then each metric; WORC's 0.5 cut-off on the posterior by default)."""
    df = split_scores(
        make_model, X, y, splits, metrics, threshold, n_jobs=n_jobs, progress=progress, scheduler=scheduler
    )
    return df.drop(columns="model")


def summarise_splits(
    df: pd.DataFrame, n_train=None, n_test=None, level: float = 0.95, metrics: Sequence[str] | None = None
) -> pd.DataFrame:
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
    if "model" in df.columns:  # one summary per model (rows: model, metric)
        return pd.concat(
            {
                m: summarise_splits(g.drop(columns="model"), n_train, n_test, level, metrics)
                for m, g in df.groupby("model", sort=False)
            },
            names=["model", "metric"],
        )
    if metrics is None:
        metrics = [c for c in df.columns if c not in ("split", "n_train", "n_test")]
    rows = {}
    for m in metrics:
        v = df[m].dropna().to_numpy(dtype=float)
        if v.size >= 2:
            mean, low, high = corrected_resampled_ttest_ci(v, n_train, n_test, level)
        else:
            mean, low, high = (float(v.mean()) if v.size else float("nan")), float("nan"), float("nan")
        rows[m] = {
            "mean": mean,
            "low": low,
            "high": high,
            "sd": float(np.std(v, ddof=1)) if v.size >= 2 else float("nan"),
            "n_splits": int(v.size),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "metric"
    return out


def permute_labels(y, seed: int = 0):
    """The labels randomly permuted (same type; a Series keeps its index): the null-label / leakage probe."""
    rng = np.random.default_rng(seed)
    if isinstance(y, pd.Series):
        return pd.Series(rng.permutation(y.to_numpy()), index=y.index, name=y.name)
    return rng.permutation(np.asarray(y))
