"""Fusion of clinical, radiomics and deep-learning features: pre-fusion (feature level) and post-fusion
(decision level).

The ultrasound CRDL paper (chapter ``us``; its refs. 11, 15-18) builds

* **single models** on one block of features (clinical, radiomics, deep learning);
* **pre-fusion models** (Pre-FM) on the *concatenated* blocks (feature-level fusion:
  Clinic + Rad, Clinic + DL, Clinic + Rad + DL = CRDL), selection then runs on the
  concatenation;
* **post-fusion models** (Post-FM): "an SVM to fuse the probabilities from the
  respective model sets" (decision-level fusion, i.e. stacking; Wolpert 1992,
  Neural Networks 5:241).

Feature tables carry one column per feature named ``"<block>:<feature>"`` (e.g.
``"rad:original_firstorder_Mean"``, ``"dl:f017"``, ``"clin:size"``), so every model
takes the same ``X`` and picks its blocks itself: :class:`BlockFusion` keeps the
columns of the named blocks, applies an optional per-block step (e.g. the ICC filter,
which exists only for image features) and concatenates the blocks;
:func:`make_pre_fusion` puts it in front of shared steps and a classifier.

:class:`PostFusionClassifier` is leak-free stacking: the meta-classifier is trained on
*out-of-fold* probabilities of the base models within the training data (each base
model refitted on k-1 folds predicts the held-out fold), never on in-sample
probabilities, and the base models used at prediction time are refitted on all
training rows. :func:`fit_fusion_models` fits a whole family (single, pre- and
post-fusion) sharing the single models' fits and out-of-fold probabilities.

Operating points are learned like every other step: with a ``cutoff`` rule (e.g. the
Youden index) :func:`fit_fusion_models` chooses each model's cut-off on its *out-of-fold*
training probabilities, never on in-sample ones (an RBF SVM's in-sample probabilities are
overconfident, and a cut-off chosen on them lands too low for new patients).
:func:`cross_validate_fusion` cross-validates that whole procedure on the training rows
and :func:`external_validation` puts both together for a training -> external design:
no patient's own score, held-out or in-sample, chooses the cut-off that classifies them.

All estimators follow the scikit-learn API and keep pandas indexes (patient ids).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .learn._base import FrameTransformer, as_frame, as_series

__all__ = [
    "SEP",
    "block_of",
    "block_columns",
    "prefix_block",
    "BlockFusion",
    "make_pre_fusion",
    "SubsetICCFilter",
    "TuneThenRefit",
    "positive_proba",
    "out_of_fold_proba",
    "PostFusionClassifier",
    "FusionModels",
    "fit_fusion_models",
    "FusionCV",
    "cross_validate_fusion",
    "operating_report",
    "ExternalValidation",
    "external_validation",
    "fallbacks_taken",
    "permute_within",
    "CRDL_MODELS",
    "crdl_models",
    "crdl_family",
    "CRDLInputs",
    "crdl_inputs",
    "ultrasound_semantics",
    "SEMANTIC_COLUMNS",
]

SEP = ":"


# ----------------------------------------------------------------------------- feature blocks


def block_of(column: str, sep: str = SEP) -> str:
    """The block of a column name ``"<block>:<feature>"`` (``""`` when it has no block prefix)."""
    s = str(column)
    return s.split(sep, 1)[0] if sep in s else ""


def block_columns(columns, blocks: Sequence[str], sep: str = SEP) -> list[str]:
    """Columns of ``columns`` that belong to one of ``blocks``, in block order then column order."""
    cols = [str(c) for c in columns]
    return [c for b in blocks for c in cols if block_of(c, sep) == b]


def prefix_block(df: pd.DataFrame, block: str, sep: str = SEP) -> pd.DataFrame:
    """``df`` with every column renamed ``"<block>:<column>"``."""
    if sep in block:
        raise ValueError(f"block name {block!r} must not contain {sep!r}")
    return df.rename(columns=lambda c: f"{block}{sep}{c}")


class BlockFusion(FrameTransformer):
    """Feature-level fusion: keep the columns of ``blocks``, transform each block, concatenate.

    Parameters
    ----------
    blocks : sequence of str
        Block names (column prefixes before ``sep``), e.g. ``("clin", "rad")``.
    per_block : mapping block -> transformer or ``"passthrough"``
        Optional step fitted on that block's columns only (e.g. an ICC filter for
        image features). Blocks not named pass through unchanged.
    sep : str
        The separator between block and feature name.

    Attributes
    ----------
    block_features_ : dict block -> list of output column names
    """

    def __init__(self, blocks: Sequence[str] = (), per_block: Mapping | None = None, sep: str = SEP):
        self.blocks = blocks
        self.per_block = per_block
        self.sep = sep

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def _columns_of(self, df: pd.DataFrame, block: str) -> list[str]:
        return [c for c in df.columns if block_of(c, self.sep) == block]

    def fit_transform(self, X, y=None, **fit_params):
        if isinstance(self.blocks, str) or not len(self.blocks):
            raise ValueError("BlockFusion: blocks must be a non-empty sequence of block names")
        df = self._fit_columns(X)
        per = dict(self.per_block or {})
        unknown = set(per) - set(self.blocks)
        if unknown:
            raise ValueError(f"BlockFusion: per_block names blocks {sorted(unknown)} not in blocks {list(self.blocks)}")
        self.steps_: dict[str, Any] = {}
        self.input_columns_: dict[str, list[str]] = {}
        parts = []
        for b in self.blocks:
            cols = self._columns_of(df, b)
            if not cols:
                raise ValueError(
                    f"BlockFusion: X has no column of block {b!r} (columns are named "
                    f"'<block>{self.sep}<feature>'; blocks present: "
                    f"{sorted({block_of(c, self.sep) for c in df.columns})})"
                )
            self.input_columns_[b] = cols
            step = per.get(b, "passthrough")
            part = df.loc[:, cols]
            if step is not None and step != "passthrough":
                step = clone(step)
                out = step.fit_transform(part, y)
                part = (
                    out
                    if isinstance(out, pd.DataFrame)
                    else pd.DataFrame(out, index=df.index, columns=_names_out(step, cols))
                )
            self.steps_[b] = step
            parts.append(part)
        out = pd.concat(parts, axis=1)
        self.block_features_ = {b: list(p.columns) for b, p in zip(self.blocks, parts)}
        self._out_columns = list(out.columns)
        return out if isinstance(X, pd.DataFrame) else out.to_numpy()

    def transform(self, X):
        check_is_fitted(self, "steps_")
        df, was_pandas = self._frame(X)
        parts = []
        for b in self.blocks:
            part = df.loc[:, self.input_columns_[b]]
            step = self.steps_[b]
            if step is not None and step != "passthrough":
                out = step.transform(part)
                part = (
                    out
                    if isinstance(out, pd.DataFrame)
                    else pd.DataFrame(out, index=df.index, columns=self.block_features_[b])
                )
            parts.append(part)
        return self._out(pd.concat(parts, axis=1), was_pandas)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "steps_")
        return np.asarray(self._out_columns, dtype=object)


def _names_out(step, cols) -> list[str]:
    try:
        return [str(c) for c in step.get_feature_names_out()]
    except Exception:  # noqa: BLE001 - a step without names: keep the input names if the width matches
        return list(cols)


def make_pre_fusion(
    blocks: Sequence[str], classifier, steps: Sequence = (), per_block: Mapping | None = None, sep: str = SEP
) -> Pipeline:
    """A pre-fusion (feature-level) model: ``BlockFusion(blocks) -> *steps -> classifier``.

    A single-block model is the same with one block. ``steps`` are ``(name,
    estimator)`` pairs or bare estimators (named ``step0``, ``step1``...);
    they are cloned, so one list can serve several models.
    """
    named = [("fusion", BlockFusion(tuple(blocks), dict(per_block or {}) or None, sep))]
    for i, s in enumerate(steps):
        name, est = s if isinstance(s, tuple) else (f"step{i}", s)
        named.append((name, clone(est)))
    named.append(("classifier", clone(classifier)))
    return Pipeline(named)


class SubsetICCFilter(FrameTransformer):
    """ICC filter when only some patients were segmented twice (the paper's 50 re-segmented patients).

    Fits :class:`replicate.learn.ICCFilter` on the rows of ``X`` that have a
    perturbed/re-segmented row (training patients only, as X is the training
    fold) and keeps its columns. Needs at least ``min_rows`` such rows; with
    fewer it raises (the ICC of a handful of patients is meaningless).
    """

    def __init__(
        self, perturbed=None, threshold: float = 0.8, kind: str = "ICC(2,1)", min_rows: int = 5, min_features: int = 1
    ):
        self.perturbed = perturbed
        self.threshold = threshold
        self.kind = kind
        self.min_rows = min_rows
        self.min_features = min_features

    def fit(self, X, y=None):
        from .learn import ICCFilter

        df = self._fit_columns(X)
        tables = [self.perturbed] if isinstance(self.perturbed, pd.DataFrame) else list(self.perturbed or [])
        if not tables:
            raise ValueError("SubsetICCFilter: no perturbed tables given")
        rows = df.index
        for t in tables:
            rows = rows.intersection(t.index)
        if len(rows) < self.min_rows:
            raise ValueError(
                f"SubsetICCFilter: only {len(rows)} training row(s) have a perturbed version (need >= {self.min_rows})"
            )
        self.icc_rows_ = list(rows)
        self.filter_ = ICCFilter(
            perturbed=[t.loc[rows] for t in tables],
            threshold=self.threshold,
            kind=self.kind,
            min_features=self.min_features,
        ).fit(df.loc[rows])
        self.icc_ = self.filter_.icc_
        self.selected_features_ = list(self.filter_.selected_features_)
        return self

    def transform(self, X):
        df, was_pandas = self._frame(X)
        return self._out(df.loc[:, self.selected_features_], was_pandas)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "selected_features_")
        return np.asarray(self.selected_features_, dtype=object)


# ----------------------------------------------------------------------------- tuning


class TuneThenRefit(ClassifierMixin, BaseEstimator):
    """Choose hyper-parameters with a cheap search, then refit the best with extra settings.

    ``search`` is an unfitted ``GridSearchCV`` (e.g. ``make_classifier("svm",
    tune=True, probability=False)``: RBF SVMs scored by ROC AUC on their decision
    function, no Platt scaling inside the search); after it is fitted on the
    training rows, its best estimator is cloned, ``refit_params`` are set (e.g.
    ``{"clf__probability": True}``: Platt-scaled probabilities, Platt 1999) and it
    is refitted on the same rows. The ranking of candidates does not depend on
    Platt scaling, so the chosen parameters are those a search with it would choose
    (up to ties), at a sixth of the cost.
    """

    def __init__(self, search=None, refit_params: Mapping | None = None):
        self.search = search
        self.refit_params = refit_params

    def fit(self, X, y):
        s = clone(self.search).fit(X, y)
        self.best_params_ = dict(s.best_params_)
        self.cv_results_ = s.cv_results_
        best = clone(s.best_estimator_)
        if self.refit_params:
            best.set_params(**dict(self.refit_params))
        self.best_estimator_ = best.fit(X, y)
        self.classes_ = self.best_estimator_.classes_
        return self

    def predict_proba(self, X):
        return self.best_estimator_.predict_proba(X)

    def decision_function(self, X):
        return self.best_estimator_.decision_function(X)

    def predict(self, X):
        return self.best_estimator_.predict(X)


# ----------------------------------------------------------------------------- post-fusion (stacking)


def positive_proba(estimator, X) -> np.ndarray:
    """P(class 1) of a fitted binary classifier (``predict_proba``; else a logistic of ``decision_function``)."""
    if hasattr(estimator, "predict_proba"):
        try:
            p = np.asarray(estimator.predict_proba(X))
            classes = list(getattr(estimator, "classes_", [0, 1]))
            return p[:, classes.index(1) if 1 in classes else -1].astype(float)
        except AttributeError:  # e.g. SVC(probability=False) exposes the method but cannot use it
            pass
    d = np.asarray(estimator.decision_function(X), dtype=float)
    return 1.0 / (1.0 + np.exp(-d))


def _cv(cv, random_state):
    if isinstance(cv, (int, np.integer)):
        return StratifiedKFold(int(cv), shuffle=True, random_state=random_state)
    return check_cv(cv, classifier=True)


def out_of_fold_proba(estimator, X, y, cv=5, random_state=None) -> pd.Series:
    """Out-of-fold P(positive) of ``estimator`` on ``(X, y)``: each fold predicted by a clone fitted on the others.

    ``cv``: number of stratified folds (shuffled with ``random_state``) or a
    scikit-learn splitter. Returns a Series indexed like ``X``.
    """
    df, _ = as_frame(X)
    ys = as_series(y, df.index)
    out = pd.Series(np.nan, index=df.index, dtype=float)
    for tr, te in _cv(cv, random_state).split(df, ys):
        est = clone(estimator).fit(df.iloc[tr], ys.iloc[tr])
        out.iloc[te] = positive_proba(est, df.iloc[te])
    return out


def _default_meta(random_state=None):
    from sklearn.svm import SVC

    return SVC(kernel="rbf", probability=True, random_state=random_state)


class PostFusionClassifier(ClassifierMixin, BaseEstimator):
    """Decision-level fusion: a meta-classifier (default: RBF SVM) on the base models' probabilities.

    ``fit`` computes each base model's out-of-fold P(positive) on the training
    rows (``cv`` stratified folds), fits ``final_estimator`` on them, then refits
    every base model on all training rows. ``predict_proba`` feeds the refitted
    base models' probabilities on new rows to the meta-classifier.

    Attributes: ``estimators_`` (name -> fitted base model), ``oof_`` (DataFrame of
    out-of-fold probabilities, one column per base), ``final_estimator_``.
    """

    def __init__(self, estimators: Sequence[tuple[str, Any]] = (), final_estimator=None, cv=5, random_state=None):
        self.estimators = estimators
        self.final_estimator = final_estimator
        self.cv = cv
        self.random_state = random_state

    def _names(self) -> list[str]:
        names = [n for n, _ in self.estimators]
        if not names:
            raise ValueError("PostFusionClassifier: no base estimators")
        if len(set(names)) != len(names):
            raise ValueError(f"PostFusionClassifier: duplicated base names {names}")
        return names

    def fit(self, X, y):
        names = self._names()
        df, _ = as_frame(X)
        ys = as_series(y, df.index)
        oof = pd.DataFrame(
            {n: out_of_fold_proba(e, df, ys, self.cv, self.random_state) for n, e in self.estimators}, index=df.index
        )
        fitted = {n: clone(e).fit(df, ys) for n, e in self.estimators}
        return self._fit_meta(fitted, oof[names], ys)

    def _fit_meta(self, fitted: dict, oof: pd.DataFrame, ys: pd.Series):
        if oof.isna().any().any():
            raise ValueError("PostFusionClassifier: out-of-fold probabilities have missing rows")
        self.estimators_ = dict(fitted)
        self.oof_ = oof
        meta = self.final_estimator if self.final_estimator is not None else _default_meta(self.random_state)
        self.final_estimator_ = clone(meta).fit(oof, ys.loc[oof.index])
        self.classes_ = np.unique(ys.to_numpy())
        return self

    @classmethod
    def from_fitted(
        cls, fitted: Mapping[str, Any], oof: pd.DataFrame, y, final_estimator=None, cv=5, random_state=None
    ) -> PostFusionClassifier:
        """Build from base models already fitted on all training rows and their out-of-fold probabilities.

        ``oof`` must have been computed on the same training rows (e.g. by
        :func:`out_of_fold_proba`); its columns are the base names.
        """
        names = list(fitted)
        missing = [n for n in names if n not in oof.columns]
        if missing:
            raise KeyError(f"no out-of-fold probabilities for {missing}")
        self = cls([(n, fitted[n]) for n in names], final_estimator, cv, random_state)
        return self._fit_meta(dict(fitted), oof.loc[:, names], as_series(y, oof.index))

    def meta_features(self, X) -> pd.DataFrame:
        """The base models' P(positive) on ``X`` (the meta-classifier's input)."""
        check_is_fitted(self, "final_estimator_")
        df, _ = as_frame(X)
        return pd.DataFrame({n: positive_proba(e, df) for n, e in self.estimators_.items()}, index=df.index)

    def predict_proba(self, X) -> np.ndarray:
        return self.final_estimator_.predict_proba(self.meta_features(X))

    def decision_function(self, X) -> np.ndarray:
        return self.final_estimator_.decision_function(self.meta_features(X))

    def predict(self, X) -> np.ndarray:
        return self.final_estimator_.predict(self.meta_features(X))


# ----------------------------------------------------------------------------- a family of models


@dataclass
class FusionModels:
    """Fitted single, pre-fusion and post-fusion models; ``kinds[name]`` is ``single``/``pre``/``post``.

    ``oof``: out-of-fold P(positive) on the training rows: of the single models the post-fusion models
    fuse and, when the family was fitted with a ``cutoff`` rule, of every model (see
    :func:`fit_fusion_models`). ``thresholds``: each model's cut-off (``None`` without a rule).
    """

    models: dict[str, Any]
    kinds: dict[str, str]
    oof: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    thresholds: pd.Series | None = None

    def predict_proba(self, X) -> pd.DataFrame:
        """P(positive) of every model on ``X`` (one column per model, index = ``X``'s)."""
        df, _ = as_frame(X)
        return pd.DataFrame({n: positive_proba(m, df) for n, m in self.models.items()}, index=df.index)

    def predict(self, X) -> pd.DataFrame:
        """Every model's call on ``X`` (1 = positive) at its cut-off: ``P(positive) >= threshold``."""
        if self.thresholds is None:
            raise ValueError("FusionModels.predict: the family was fitted without a cutoff rule")
        P = self.predict_proba(X)
        return (P >= self.thresholds.reindex(P.columns)).astype(int)

    def names(self, kind: str | None = None) -> list[str]:
        return [n for n, k in self.kinds.items() if kind is None or k == kind]


def fit_fusion_models(
    X,
    y,
    *,
    single: Mapping[str, Any],
    pre: Mapping[str, Any] | None = None,
    post: Mapping[str, Sequence[str]] | None = None,
    final_estimator=None,
    cv=5,
    random_state=None,
    cutoff: Callable | None = None,
    progress: bool = False,
) -> FusionModels:
    """Fit single models, pre-fusion models and post-fusion models on the training rows ``(X, y)``.

    ``single`` / ``pre``: name -> unfitted estimator (e.g. from :func:`make_pre_fusion`).
    ``post``: name -> names of the single models whose probabilities it fuses. The
    single models' full fits and out-of-fold probabilities are computed once and
    shared by every post-fusion model (:meth:`PostFusionClassifier.from_fitted`), which
    is the same as fitting each :class:`PostFusionClassifier` from scratch with the
    same ``cv`` and ``random_state``.

    ``cutoff``: a rule ``cutoff(y, score) -> threshold`` (e.g. :func:`replicate.stats.youden_threshold`).
    With it, each model's operating point is learned like everything else, from the training rows only
    and never from in-sample scores (an RBF SVM's in-sample probabilities are overconfident): the rule
    is applied to the model's *out-of-fold* probabilities on the training rows (same ``cv`` folds).
    For a single or pre-fusion model these come from the whole model refitted on the other folds; for
    a post-fusion model from its meta-classifier refitted on the other folds' rows of the single models'
    out-of-fold probabilities (the meta's own input). ``thresholds`` and :meth:`FusionModels.predict`
    then give the calls.
    """
    import time

    from tqdm.auto import tqdm

    pre = dict(pre or {})
    post = dict(post or {})
    df, _ = as_frame(X)
    ys = as_series(y, df.index)
    names = list(single) + list(pre) + list(post)
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique across single/pre/post: {names}")
    for n, bases in post.items():
        unknown = [b for b in bases if b not in single]
        if unknown:
            raise KeyError(f"post-fusion model {n!r} fuses {unknown}, which are not single models")
    needed = list(dict.fromkeys(b for bases in post.values() for b in bases))
    if cutoff is not None:  # every model needs its own out-of-fold scores
        needed = list(single) + [b for b in needed if b not in single] + list(pre)
    bar = tqdm(total=len(single) + len(pre) + len(needed), desc="fit models", unit="fit", disable=not progress)
    models: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    secs: dict[str, float] = {}
    for kind, group in (("single", single), ("pre", pre)):
        for n, est in group.items():
            t = time.perf_counter()
            models[n] = clone(est).fit(df, ys)
            kinds[n] = kind
            secs[n] = time.perf_counter() - t
            bar.update(1)
    oof = pd.DataFrame(index=df.index)
    for b in needed:
        t = time.perf_counter()
        oof[b] = out_of_fold_proba(single.get(b, pre.get(b)), df, ys, cv, random_state)
        secs[f"{b} (out-of-fold)"] = time.perf_counter() - t
        bar.update(1)
    bar.close()
    for n, bases in post.items():
        models[n] = PostFusionClassifier.from_fitted(
            {b: models[b] for b in bases}, oof, ys, final_estimator, cv, random_state
        )
        kinds[n] = "post"
        if cutoff is not None:
            meta = final_estimator if final_estimator is not None else _default_meta(random_state)
            oof[n] = out_of_fold_proba(meta, oof.loc[:, list(bases)], ys, cv, random_state)
    thresholds = None
    if cutoff is not None:
        thresholds = pd.Series({n: float(cutoff(ys, oof[n])) for n in models}, name="threshold")
    return FusionModels(models, kinds, oof, secs, thresholds)


@dataclass
class FusionCV:
    """Cross-validation of a whole family on its training rows (:func:`cross_validate_fusion`).

    ``proba``: each row's P(positive) from the family fitted without its fold; ``calls``: the same
    family's call at the cut-off it chose on its own training rows; ``fold``: each row's fold;
    ``thresholds``: fold x model, the cut-offs used.
    """

    proba: pd.DataFrame
    calls: pd.DataFrame
    fold: pd.Series
    thresholds: pd.DataFrame


def _families(df: pd.DataFrame, ys: pd.Series, row_sets, family: Mapping, n_jobs: int) -> list[FusionModels]:
    """:func:`fit_fusion_models` on each set of row positions, in parallel (joblib)."""
    from joblib import Parallel, delayed

    if family.get("cutoff") is None:
        raise ValueError("give the family's cutoff rule (cutoff=...): the calls need each model's cut-off")
    return Parallel(n_jobs=n_jobs)(delayed(fit_fusion_models)(df.iloc[r], ys.iloc[r], **family) for r in row_sets)


def _held_out(df: pd.DataFrame, splits, families: Sequence[FusionModels]) -> FusionCV:
    fold = pd.Series(0, index=df.index, name="fold")
    for j, (_, te) in enumerate(splits):
        fold.iloc[te] = j
    proba = pd.concat([fm.predict_proba(df.iloc[te]) for fm, (_, te) in zip(families, splits)]).loc[df.index]
    calls = pd.concat([fm.predict(df.iloc[te]) for fm, (_, te) in zip(families, splits)]).loc[df.index]
    thresholds = pd.DataFrame([fm.thresholds for fm in families], index=pd.RangeIndex(len(splits), name="fold"))
    return FusionCV(proba, calls, fold, thresholds)


def cross_validate_fusion(X, y, folds: int = 5, *, seed: int = 0, n_jobs: int = 1, **family) -> FusionCV:
    """Held-out probabilities and calls of a family on its own training rows (``folds``-fold CV).

    The whole procedure of :func:`fit_fusion_models` (``**family``, which must include ``cutoff``):
    selection, tuning, stacking and the cut-off is refitted on ``folds - 1`` stratified folds (shuffled
    with ``seed``) and scores the held-out fold; no held-out score takes part in choosing the cut-off
    that classifies it. Folds run in parallel (``n_jobs``, joblib).
    """
    df, _ = as_frame(X)
    ys = as_series(y, df.index)
    splits = list(StratifiedKFold(int(folds), shuffle=True, random_state=seed).split(df, ys))
    return _held_out(df, splits, _families(df, ys, [tr for tr, _ in splits], family, n_jobs))


def operating_report(y, proba, calls) -> dict[str, tuple[float, float, float]]:
    """AUC (DeLong CI) of ``proba`` and ACC, SEN, SPE, PPV, NPV (Wilson CIs) of ``calls`` against ``y``."""
    from .stats import auc_ci, confusion_metrics

    yv = np.asarray(y, dtype=int)
    lo, auc, hi = auc_ci(yv, np.asarray(proba, dtype=float))
    cm = confusion_metrics(yv, np.asarray(calls, dtype=int))
    return {"AUC": (float(auc), float(lo), float(hi)), **{k: cm[k] for k in ("ACC", "SEN", "SPE", "PPV", "NPV")}}


@dataclass
class ExternalValidation:
    """A family fitted on a training cohort, cross-validated on it, and applied to an external cohort.

    ``family``: fitted on every training row (with each model's cut-off); ``cv``: the training cohort
    cross-validated (:class:`FusionCV`). ``y`` / ``proba`` / ``calls``: per cohort (``"training"``:
    held-out probabilities and calls of the cross-validation; ``"validation"``: the family's).
    """

    family: FusionModels
    cv: FusionCV
    y: dict[str, pd.Series]
    proba: dict[str, pd.DataFrame]
    calls: dict[str, pd.DataFrame]

    def report(self, model: str, cohort: str) -> dict[str, tuple[float, float, float]]:
        """:func:`operating_report` of ``model`` on ``cohort``."""
        return operating_report(self.y[cohort], self.proba[cohort][model], self.calls[cohort][model])


def external_validation(
    X_train, y_train, X_valid, y_valid, *, cv_folds: int = 5, seed: int = 0, n_jobs: int = 1, **family
) -> ExternalValidation:
    """The paper's design, leak-free: fit on the training cohort, judge on the external one.

    The external cohort is scored by the family fitted on all training rows at the cut-offs it chose on
    its out-of-fold training probabilities (:func:`fit_fusion_models` with ``cutoff``); the training
    cohort's own metrics are cross-validated (as :func:`cross_validate_fusion`, ``cv_folds`` folds): no
    patient's score, held-out or in-sample, ever chooses the cut-off that classifies that patient. The
    ``cv_folds + 1`` family fits run in parallel (``n_jobs``).
    """
    df, _ = as_frame(X_train)
    ys = as_series(y_train, df.index)
    splits = list(StratifiedKFold(int(cv_folds), shuffle=True, random_state=seed).split(df, ys))
    # the family on every training row and on each fold's complement, in one parallel batch
    fm, *folds = _families(df, ys, [np.arange(len(df))] + [tr for tr, _ in splits], family, n_jobs)
    cvf = _held_out(df, splits, folds)
    dv, _ = as_frame(X_valid)
    return ExternalValidation(
        family=fm,
        cv=cvf,
        y={"training": as_series(y_train, cvf.proba.index), "validation": as_series(y_valid, dv.index)},
        proba={"training": cvf.proba, "validation": fm.predict_proba(dv)},
        calls={"training": cvf.calls, "validation": fm.predict(dv)},
    )


def fallbacks_taken(family: FusionModels) -> dict[str, list[str]]:
    """Per model, the silent fallbacks its fitted steps took (empty lists when none):

    * ICC filter: fewer than ``min_features`` features above the threshold, the most reproducible kept;
    * t-test: no feature with ``p < alpha``, the one with the smallest p kept (``TTestFilter.fallback_``);
    * LASSO: no coefficient survived the CV-chosen penalty, the first feature on the path kept
      (``LassoSelector.fallback_``).
    """
    out: dict[str, list[str]] = {}
    for name, est in family.models.items():
        taken: list[str] = []
        steps = getattr(est, "named_steps", {})
        fusion = steps.get("fusion")
        for block, step in (getattr(fusion, "steps_", None) or {}).items():
            icc = getattr(step, "named_steps", {}).get("icc")
            if icc is not None:
                above = int((icc.icc_ > icc.threshold).sum())
                if above < len(icc.selected_features_):
                    taken.append(
                        f"ICC filter ({block}): {above} feature(s) with {icc.kind} > {icc.threshold}, "
                        f"the {len(icc.selected_features_)} most reproducible kept"
                    )
        if getattr(steps.get("ttest"), "fallback_", False):
            taken.append("t-test: no feature with p < alpha, the smallest p kept")
        if getattr(steps.get("lasso"), "fallback_", False):
            taken.append("LASSO: no coefficient survived the CV-chosen penalty, the first feature on its path kept")
        out[name] = taken
    return out


def permute_within(y: pd.Series, groups: pd.Series, seed: int) -> pd.Series:
    """``y`` permuted within each group (e.g. cohort), seeded: the null-label probe that keeps each group's
    number of positives, so a null AUC in the external cohort is one at that cohort's n+ / n-."""
    rng = np.random.default_rng(seed)
    g = groups.reindex(y.index)
    if g.isna().any():
        raise ValueError(f"permute_within: no group for {list(y.index[g.isna()][:5])}")
    out = y.copy()
    for key in sorted(g.unique(), key=str):
        idx = y.index[g == key]
        out.loc[idx] = rng.permutation(y.loc[idx].to_numpy())
    return out


# ----------------------------------------------------------------------------- the paper's nine models

#: The CRDL paper's models: key -> (kind, blocks for single/pre, base model keys for post).
CRDL_MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "clinical": ("single", ("clin",)),
    "radiomics": ("single", ("rad",)),
    "dl": ("single", ("dl",)),
    "pre_clin_rad": ("pre", ("clin", "rad")),
    "pre_clin_dl": ("pre", ("clin", "dl")),
    "pre_crdl": ("pre", ("clin", "rad", "dl")),
    "post_clin_rad": ("post", ("clinical", "radiomics")),
    "post_clin_dl": ("post", ("clinical", "dl")),
    "post_crdl": ("post", ("clinical", "radiomics", "dl")),
}


def crdl_models(
    classifier,
    *,
    icc_tables: Mapping[str, Sequence[pd.DataFrame]] | None = None,
    icc_threshold: float = 0.8,
    icc_kind: str = "ICC(2,1)",
    icc_min_rows: int = 5,
    ttest_alpha: float = 0.05,
    lasso_cv: int = 10,
    lasso_Cs=20,
    seed: int = 0,
    meta_classifier=None,
    names: Mapping[str, str] | None = None,
    keys: Sequence[str] | None = None,
) -> tuple[dict, dict, dict[str, list[str]], Any]:
    """The paper's model family as unfitted estimators: ``(single, pre, post, meta_classifier)``.

    * clinical model: z-score -> ``classifier`` on the ``clin`` block (its
      variables are fixed beforehand, as the paper's five independent predictors);
    * radiomics-only, DL-only and every pre-fusion model: the blocks concatenated
      (:class:`BlockFusion`; constant columns dropped and, when ``icc_tables`` gives
      perturbed tables for a block, the ICC filter applied to that image block),
      then z-score -> Student's t-test (``p < ttest_alpha``) -> LASSO with
      ``lasso_cv``-fold CV -> ``classifier``;
    * post-fusion models: ``meta_classifier`` (default: ``classifier``) on the
      out-of-fold probabilities of the single models (``post[name]`` lists them).

    ``names`` maps the keys of :data:`CRDL_MODELS` to display names (e.g. the spec's);
    ``keys`` restricts the family (post-fusion keys pull in their single models).
    """
    from sklearn.pipeline import Pipeline as SkPipeline

    from .learn import DropConstant, LassoSelector, TTestFilter, ZScore

    names = dict(names or {})
    keys = list(keys) if keys is not None else list(CRDL_MODELS)
    unknown = [k for k in keys if k not in CRDL_MODELS]
    if unknown:
        raise KeyError(f"unknown CRDL model keys {unknown}; known: {list(CRDL_MODELS)}")
    needed = list(keys) + [b for k in keys if CRDL_MODELS[k][0] == "post" for b in CRDL_MODELS[k][1]]
    keys = [k for k in CRDL_MODELS if k in needed]
    name = {k: names.get(k, k) for k in CRDL_MODELS}
    icc_tables = dict(icc_tables or {})

    def image_step(block):
        steps = [("drop_constant", DropConstant())]
        if block in icc_tables:
            steps.append(
                (
                    "icc",
                    SubsetICCFilter(
                        list(icc_tables[block]), threshold=icc_threshold, kind=icc_kind, min_rows=icc_min_rows
                    ),
                )
            )
        return SkPipeline(steps)

    selection = [
        ("zscore", ZScore()),
        ("ttest", TTestFilter(alpha=ttest_alpha)),
        ("lasso", LassoSelector(cv=lasso_cv, Cs=lasso_Cs, random_state=seed)),
    ]
    single, pre, post = {}, {}, {}
    for k in keys:
        kind, parts = CRDL_MODELS[k]
        if k == "clinical":
            single[name[k]] = make_pre_fusion(parts, classifier, steps=[("zscore", ZScore())])
        elif kind in ("single", "pre"):
            per_block = {b: image_step(b) for b in parts if b != "clin"}
            est = make_pre_fusion(parts, classifier, steps=selection, per_block=per_block)
            (single if kind == "single" else pre)[name[k]] = est
        else:
            post[name[k]] = [name[b] for b in parts]
    return single, pre, post, (meta_classifier if meta_classifier is not None else classifier)


def crdl_family(
    design: Mapping, counts: Mapping, icc_tables: Mapping[str, Sequence[pd.DataFrame]] | None, seed: int
) -> dict:
    """The ``us`` chapter's family as keyword arguments of :func:`fit_fusion_models`, from its spec.

    ``design``: the spec's ``design`` (model names, robustness, selection, classifier); ``counts``: the
    profile's counts. The classifier is an RBF SVM: tuned by ``svm_cv_folds``-fold CV over ``svm_grid``
    (ROC AUC) then refitted with Platt-scaled probabilities (:class:`TuneThenRefit`) when ``svm_tune``;
    else the untuned defaults ``design["classifier"]["untuned"]`` (Platt-scaled). The same SVM is the
    post-fusion meta-classifier. Shared by the chapter and ``benchmarks/null_us.py``.
    """
    from .models import make_classifier

    if counts["svm_tune"]:
        grid = {f"clf__{k}": list(v) for k, v in counts["svm_grid"].items()}
        svm = TuneThenRefit(
            make_classifier("svm", tune=True, cv=counts["svm_cv_folds"], seed=seed, grid=grid, probability=False),
            {"clf__probability": True},
        )
    else:
        svm = make_classifier("svm", seed=seed, **design["classifier"]["untuned"])
    rob = design["robustness"]
    single, pre, post, meta = crdl_models(
        svm,
        icc_tables=icc_tables,
        icc_threshold=rob["icc_threshold"],
        icc_kind=rob["icc_kind"],
        ttest_alpha=design["selection"]["ttest_alpha"],
        lasso_cv=counts["lasso_cv_folds"],
        lasso_Cs=counts["lasso_Cs"],
        seed=seed,
        names=dict(design["models"]),
    )
    return dict(
        single=single, pre=pre, post=post, final_estimator=meta, cv=counts["post_fusion_cv_folds"], random_state=seed
    )


@dataclass
class CRDLInputs:
    """The ``us`` chapter's inputs: ``X`` (one row per patient with every block; ``clin:`` / ``rad:`` / ``dl:``
    columns), the perturbed re-extractions of the ICC patients (``icc_tables``, per image block), the
    patients left out with their reasons (``failures``) and the extraction results behind them."""

    X: pd.DataFrame
    icc_tables: dict[str, list[pd.DataFrame]]
    icc_ids: list[str]
    failures: pd.DataFrame
    clin: pd.DataFrame
    rad: Any
    dl: Any
    rad_p: Any
    dl_p: Any
    timings: dict[str, Any]


def crdl_inputs(
    cohort,
    *,
    data: str,
    design: Mapping,
    proxy: Mapping,
    counts: Mapping,
    seed: int,
    icc_seed: int,
    perturb_seed: int,
    n_jobs: int = 1,
) -> CRDLInputs:
    """Extract (or read from the caches) the three feature blocks and the ICC re-extractions of a cohort.

    * clinical block: on ``data="public"`` the image/mask stand-ins of :func:`ultrasound_semantics`
      (``proxy["clinical_model"]`` columns); on the twin its columns ``design["clinical"]["twin_columns"]``;
    * radiomics: PyRadiomics with ``params/us.yaml`` (image types cut to ``counts["radiomics_image_types"]``);
    * deep features: ``design["features"]["deep"]`` at ``counts["deep_input_size"]`` px (network seed ``seed``);
    * ICC: ``counts["icc_patients"]`` training patients drawn with ``icc_seed``, their masks perturbed
      (``design["robustness"]["perturbation"]``, ``perturb_seed``) and re-extracted.

    Nothing here sees the outcome. A patient any extractor fails on is listed in ``failures`` and left out
    of ``X``. Shared by the chapter and ``benchmarks/null_us.py``.
    """
    import time

    from .features.deep import extract_deep
    from .features.perturb import perturbed_cases
    from .features.radiomics import extract_radiomics, load_params

    table = cohort.table
    cases = cohort.cases("US")
    failures = (
        [] if cohort.failures.empty else [(r.patient_id, r.stage, r.reason) for r in cohort.failures.itertuples()]
    )
    timings: dict[str, Any] = {}
    t0 = time.perf_counter()
    if data == "public":
        clin, fails = ultrasound_semantics(cases, n_jobs=n_jobs)
        failures += [(r.case_id, "clinical stand-ins", r.reason) for r in fails.itertuples()]
        clin = clin[list(proxy["clinical_model"])]
    else:
        cols = design["clinical"]["twin_columns"]
        clin = table[list(cols.values())].astype(float).rename(columns={v: k for k, v in cols.items()})
    timings["clinical_s"] = round(time.perf_counter() - t0, 1)

    params = load_params("us")
    if counts["radiomics_image_types"] != "all":
        params["imageType"] = {k: (params["imageType"].get(k) or {}) for k in counts["radiomics_image_types"]}
    dcfg = design["features"]["deep"]

    def deep(cs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the untrained-weights warning: the chapter states it
            return extract_deep(
                cs,
                dcfg["backbone"],
                layer=dcfg["layer"],
                in_channels=dcfg["in_channels"],
                size=counts["deep_input_size"],
                seed=seed,
                progress=False,
            )

    t0 = time.perf_counter()
    rad = extract_radiomics(cases, params, n_jobs=n_jobs, progress=False)
    timings["radiomics_s"] = round(time.perf_counter() - t0, 1)
    timings["radiomics_cached"] = f"{rad.info.get('n_cached', 0)}/{len(cases)}"
    failures += [(r.case_id, "radiomics", r.reason) for r in rad.failures.itertuples()]
    t0 = time.perf_counter()
    dl = deep(cases)
    timings["deep_s"] = round(time.perf_counter() - t0, 1)
    timings["deep_cached"] = f"{dl.info.get('n_cached', 0)}/{len(cases)}"
    failures += [(r.case_id, "deep", r.reason) for r in dl.failures.itertuples()]

    failures = pd.DataFrame(failures, columns=["patient_id", "stage", "reason"])
    bad = set(failures["patient_id"])
    ok = [
        i
        for i in table.index
        if i not in bad and i in clin.index and i in rad.features.index and i in dl.features.index
    ]
    X = pd.concat(
        [
            prefix_block(clin.loc[ok], "clin"),
            prefix_block(rad.features.loc[ok], "rad"),
            prefix_block(dl.features.loc[ok], "dl"),
        ],
        axis=1,
    )

    rob = design["robustness"]
    train_ok = [i for i in ok if table.at[i, "split"] == "training"]
    rng = np.random.default_rng(icc_seed)
    icc_ids = sorted(rng.choice(train_ok, size=min(counts["icc_patients"], len(train_ok)), replace=False))
    pert = perturbed_cases(
        [c for c in cases if c.case_id in set(icc_ids)], kinds=(rob["perturbation"],), seed=perturb_seed
    )
    t0 = time.perf_counter()
    rad_p = extract_radiomics(pert[rob["perturbation"]], params, n_jobs=n_jobs, progress=False)
    dl_p = deep(pert[rob["perturbation"]])
    timings["perturbed_s"] = round(time.perf_counter() - t0, 1)
    icc_tables = {"rad": [prefix_block(rad_p.features, "rad")], "dl": [prefix_block(dl_p.features, "dl")]}
    return CRDLInputs(X, icc_tables, list(icc_ids), failures, clin, rad, dl, rad_p, dl_p, timings)


# ----------------------------------------------------------------------------- ultrasound semantic stand-ins

SEMANTIC_COLUMNS = ("size", "morphology", "boundary", "internal_echo")


def _one_semantics(image: np.ndarray, mask: np.ndarray, ring_px: int) -> dict[str, float]:
    from scipy import ndimage
    from scipy.spatial import ConvexHull, QhullError

    m = mask > 0
    area = float(m.sum())
    ys, xs = np.nonzero(m)
    # pixel corners, so a one-pixel-wide mask still has a hull
    pts = np.concatenate([np.c_[xs + dx, ys + dy] for dx in (-0.5, 0.5) for dy in (-0.5, 0.5)]).astype(float)
    try:
        hull = ConvexHull(pts)
        hp = pts[hull.vertices]
        diam = float(np.max(np.sqrt(((hp[:, None, :] - hp[None, :, :]) ** 2).sum(-1))))
        solidity = area / float(hull.volume)
    except QhullError:
        diam, solidity = math.nan, math.nan
    img = image.astype(float)
    inside = img[m]
    inner = m & ~ndimage.binary_erosion(m, iterations=ring_px)
    outer = ndimage.binary_dilation(m, iterations=ring_px) & ~m
    a, b = img[inner], img[outer]
    # pooled SD, floored at one grey level (the quantisation step of an 8-bit image)
    pooled = max(math.sqrt((a.var() + b.var()) / 2), 1.0) if a.size and b.size else math.nan
    contrast = abs(b.mean() - a.mean()) / pooled
    mean_in = inside.mean()
    return {
        "size": diam,
        "morphology": 1.0 - solidity,
        "boundary": contrast,
        "internal_echo": float(inside.std() / mean_in) if mean_in > 0 else math.nan,
    }


SEMANTIC_VERSION = 1


def _semantics_case(image, mask, case_id: str, ring_px: int) -> tuple[dict | None, str | None]:
    """``(values, None)`` or ``(None, failure reason)`` for one case (top-level: runs in joblib workers)."""
    from PIL import Image

    try:
        img = np.asarray(Image.open(image).convert("L"))
        msk = np.asarray(Image.open(mask).convert("L"))
    except (OSError, ValueError) as e:
        return None, f"ReadError: case {case_id}: {e}"
    if img.shape != msk.shape:
        return None, f"GeometryMismatch: case {case_id}: image {img.shape} != mask {msk.shape}"
    if (msk > 0).sum() < 3:
        return None, f"EmptyMask: case {case_id}: mask has {(msk > 0).sum()} pixel(s)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        vals = _one_semantics(img, msk, ring_px)
    bad = [k for k, v in vals.items() if not np.isfinite(v)]
    if bad:
        return None, f"NonFiniteFeatures: case {case_id}: {bad} undefined"
    return vals, None


def ultrasound_semantics(
    cases, ring_px: int = 3, *, n_jobs: int = 1, cache_dir=None, progress: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measurable stand-ins for the radiologists' ultrasound semantic features, from each image and mask.

    Returns ``(table, failures)``; table columns (index = case id):

    * ``size``: maximum diameter of the lesion (max Feret diameter, pixels);
    * ``morphology``: irregularity = 1 - solidity (area / convex-hull area); 0 = convex;
    * ``boundary``: margin definition = |mean grey outside - inside| across a
      ``ring_px`` band on each side of the contour, over the pooled SD (floored at 1 grey level)
      (a high value = a well-defined margin);
    * ``internal_echo``: internal echo heterogeneity = coefficient of variation
      of the grey values inside the lesion.

    They replace the paper's graded readings (maximum diameter; morphology
    regular/irregular; boundary clear/unclear; internal echo uniform/uneven) with
    continuous measurements. A case that cannot be read or measured is listed in
    ``failures`` (case_id, reason), never dropped silently. Cases run in parallel
    (``n_jobs``, joblib) and each result is cached as JSON under ``cache_dir``
    (default ``feature_cache_dir()/semantic``; ``False`` disables), keyed on the
    image and mask sha256, ``ring_px`` and the code version.
    """
    import json

    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from .config import feature_cache_dir
    from .io import atomic_write_json, sha256_file, stable_hash

    cases = list(cases)
    cdir = None
    if cache_dir is not False:
        cdir = (Path(cache_dir) if cache_dir not in (None, True) else feature_cache_dir()) / "semantic"
        cdir.mkdir(parents=True, exist_ok=True)
    rows, fails, todo, keys = {}, [], [], {}
    for c in cases:
        cid = str(c.case_id)
        if cdir is not None:
            try:
                key = stable_hash([sha256_file(c.image), sha256_file(c.mask), int(ring_px), SEMANTIC_VERSION])[:40]
            except OSError:
                key = None  # unreadable: the worker reports it
            if key is not None:
                keys[cid] = cdir / f"{key}.json"
                if keys[cid].is_file():
                    rows[cid] = json.loads(keys[cid].read_text())
                    continue
        todo.append(c)
    jobs = (delayed(_semantics_case)(str(c.image), str(c.mask), str(c.case_id), ring_px) for c in todo)
    out = (
        Parallel(n_jobs=n_jobs)(
            tqdm(jobs, total=len(todo), desc="semantic stand-ins", unit="case", disable=not progress)
        )
        if todo
        else []
    )
    for c, (vals, reason) in zip(todo, out):
        cid = str(c.case_id)
        if reason is not None:
            fails.append((cid, reason))
            continue
        rows[cid] = vals
        if cid in keys:
            atomic_write_json(keys[cid], vals)
    order = [str(c.case_id) for c in cases if str(c.case_id) in rows]
    table = pd.DataFrame.from_dict({k: rows[k] for k in order}, orient="index", columns=list(SEMANTIC_COLUMNS))
    table.index.name = "case_id"
    return table.astype(float), pd.DataFrame(fails, columns=["case_id", "reason"])
