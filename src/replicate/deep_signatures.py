"""Imaging signatures as in Yang et al. 2022 (chapter ``wdlps``): per feature set, F-test -> RFE -> RBF-SVM.

Yang Y, Zhou Y, Zhou C, Ma X. Orphanet J Rare Dis 2022;17:158. For each
feature set (one CNN's features of CT, T1WI, T2FS, MRI = T1WI + T2FS or
Multimodality = CT + T1WI + T2FS, and the handcrafted radiomics of MRI and
Multimodality) the paper selects "the top 20% best features" by the ANOVA
F-test, then runs recursive feature elimination, and classifies with an SVM
(RBF kernel) whose parameters come from "10 iterations of five-fold nested
cross-validation". This module is that recipe, leak-free and generic:

* :class:`FTestRFESVM` -- one scikit-learn classifier: z-score -> F-test top
  ``percentile`` % -> the RFE elimination path (linear SVM, Guyon et al. 2002)
  -> RBF-SVM. The number of RFE features, ``C`` and ``gamma`` are tuned by an
  inner stratified K-fold CV *inside* ``fit`` (the inner loop of the nested
  CV), so an outer resampling never lets a held-out patient reach a learned step.
* :func:`signature_pipeline` -- ``DropConstant -> [ICC filter on the
  re-segmented training patients] -> FTestRFESVM`` (the handcrafted models
  keep only features with ICC > 0.85, as the paper does).
* :func:`combine_modalities` -- columns ``<modality>__<feature>`` of several
  modalities' tables (the MRI / multimodality models).
* :func:`evaluate_model` -- the paper's protocol for one model: repeated
  stratified K-fold CV on the training cohort (the outer loop) and one final
  fit on the whole training cohort applied to the validation cohort; results
  cached on disk. Every fit's fallbacks are tallied (:func:`fit_fallbacks`;
  the rules where the paper is silent are :data:`FALLBACK_RULES`).
* :func:`cv_performance` / :func:`record_cv_performance` -- the training
  cohort's measures as a repeated CV should give them: per repeat, then the
  mean with the corrected resampled t-test CI (:func:`repeat_summary`); the
  AUC of the repeat-averaged probability only as a labelled secondary.
* :func:`performance` -- the paper's measures in one cohort at a cut-off fixed
  before that cohort is seen.
* :func:`rank_models` -- the table of all models, ranked the paper's way
  (AUC in the validation cohort, Table 2 footnote a) or leak-free (training CV AUC).
* :class:`SignatureNomogram` -- the clinical-radiological nomogram: logistic
  regression of the signature score (logit of its out-of-fold probability in
  the training rows) and the clinical variables that survive univariate
  ``P < p_enter`` -> multivariable ``P < p_keep`` selection, all inside ``fit``.
* :func:`signature_affine` / :class:`SignatureScore` / :func:`signature_gradcam`
  -- the fitted signature as a differentiable function of one modality's CNN
  input, for Grad-CAM heat maps of the signature itself (Selvaraju et al. 2020).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_selection import f_classif
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted

from .io import atomic_write_bytes, stable_hash
from .learn import DropConstant, ZScore
from .learn._base import FrameSelector, as_series

__all__ = [
    "SEP",
    "FTestRFESVM",
    "signature_pipeline",
    "combine_modalities",
    "ModelEvaluation",
    "evaluate_model",
    "rank_models",
    "SignatureNomogram",
    "signature_affine",
    "SignatureAffine",
    "SignatureScore",
    "signature_gradcam",
    "logit",
    "frame_hash",
    "PERFORMANCE_METRICS",
    "performance",
    "record_performance",
    "FeatureSets",
    "extract_feature_sets",
    "fit_fallbacks",
    "repeat_summary",
    "cv_performance",
    "record_cv_performance",
    "POOLED_OOF",
    "FALLBACK_RULES",
]

#: separator between modality and feature name in combined tables
SEP = "__"
_EPS = 1e-4

#: What this module does where the paper is silent, and the fallbacks it may take: the chapter lists
#: these among its deviations (and, from :func:`fit_fallbacks`, how many fits took each fallback).
FALLBACK_RULES = (
    "RBF-SVM: libsvm's defaults apart from the tuned C and gamma (no class weights, tolerance 1e-3); "
    "probabilities by Platt scaling (SVC(probability=True): a sigmoid fitted by libsvm's own 5-fold CV on the "
    "training rows, seeded), and every cut-off is 0.5 on that probability",
    "RFE: a linear SVM with C = 1 (not tuned) ranks the features, 10% of the F-test-selected features eliminated "
    "per round down to 16 (or the largest grid value), then one at a time",
    "Tuning: the grids of RFE features, C and gamma are ours (the paper gives none); ties of the inner-CV mean AUC "
    "go to the fewest features, then the grid order; gamma 'scale' = 1 / (features x variance of the z-scored "
    "training features)",
    "F-test: the top ceil(20%) of the features; a feature constant on a training part has no F statistic and is "
    "ranked last (scikit-learn's convention)",
    "Scaling: every patient, validation cohort included, is z-scored with the training rows' means and SDs (no "
    "per-cohort re-standardisation, no harmonisation across centres); an SD of 0 is replaced by 1",
    "Inner CV: min(inner folds, size of the smaller class) folds when a class is small",
    "Clinical model and nomogram: when no variable passes univariate P < 0.10 then multivariable P < 0.05 (or the "
    "multivariable model is separated) the single variable with the smallest univariate P is used; a separated "
    "final logistic model is refitted with an L2 penalty (C = 1)",
    "ICC filter: when no feature has ICC > 0.85 on the re-segmented training patients, the most reproducible one "
    "is kept",
)


def logit(p) -> np.ndarray:
    """log(p / (1 - p)) with p clipped to [1e-4, 1 - 1e-4]."""
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _code_version() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def frame_hash(df: pd.DataFrame | pd.Series | None) -> str | None:
    """A content hash of a table (values, index, columns), for cache keys."""
    if df is None:
        return None
    h = pd.util.hash_pandas_object(df, index=True).to_numpy()
    cols = list(df.columns) if isinstance(df, pd.DataFrame) else [df.name]
    return stable_hash([hashlib.sha256(h.tobytes()).hexdigest(), [str(c) for c in cols]])


# ----------------------------------------------------------------------------- libsvm without the overhead

try:  # scikit-learn's own libsvm binding: the same solver as SVC, without SVC's per-call input validation
    from sklearn.svm import _libsvm as _LIBSVM
except ImportError:  # pragma: no cover - a future scikit-learn may move it; SVC is then used
    _LIBSVM = None


def _gamma_value(gamma, a: np.ndarray) -> float:
    """SVC's gamma: 'scale' = 1 / (n_features * X.var()), 'auto' = 1 / n_features, else the number."""
    if gamma == "scale":
        v = float(a.var())
        return 1.0 / (a.shape[1] * v) if v != 0 else 1.0
    if gamma == "auto":
        return 1.0 / a.shape[1]
    return float(gamma)


class _SVM:
    """A two-class ``SVC(kernel, C, gamma)`` (all other settings SVC's defaults) fitted by libsvm directly.

    ``decision(X)`` equals ``SVC.decision_function`` and ``coef()`` (linear kernel)
    equals ``SVC.coef_`` up to float rounding (checked in the tests). It skips
    scikit-learn's per-call validation, which costs 5x the fit itself on the
    small matrices of the inner CV. ``y`` must be 0/1 with both classes present.
    """

    def __init__(self, kernel: str, C: float, gamma="scale"):
        self.kernel, self.C, self.gamma = kernel, float(C), gamma

    def fit(self, a: np.ndarray, y: np.ndarray) -> _SVM:
        a = np.ascontiguousarray(a, dtype=np.float64)
        self._gamma = _gamma_value(self.gamma, a) if self.kernel == "rbf" else 0.0
        if _LIBSVM is None:
            self._svc = SVC(kernel=self.kernel, C=self.C, gamma=self._gamma if self.kernel == "rbf" else "scale")
            self._svc.fit(a, y)
            return self
        self._svc = None
        yy = np.asarray(y, dtype=np.float64)
        _LIBSVM.set_verbosity_wrap(0)  # libsvm's print switch is global: SVC sets it before every fit
        (
            self.support_,
            self.sv_,
            self.n_support_,
            self.dual_,
            self.intercept_,
            self.probA_,
            self.probB_,
            _status,
            _iters,
        ) = _LIBSVM.fit(
            a,
            yy,
            svm_type=0,
            sample_weight=np.empty(0),
            class_weight=np.empty(0),
            kernel=self.kernel,
            C=self.C,
            nu=0.5,
            probability=0,
            degree=3,
            shrinking=1,
            tol=1e-3,
            cache_size=200,
            coef0=0.0,
            gamma=self._gamma,
            epsilon=0.1,
            max_iter=-1,
            random_seed=0,
        )
        return self

    def decision(self, a: np.ndarray) -> np.ndarray:
        if self._svc is not None:
            return self._svc.decision_function(a)
        a = np.ascontiguousarray(a, dtype=np.float64)
        d = _LIBSVM.decision_function(
            a,
            self.support_,
            self.sv_,
            self.n_support_,
            self.dual_,
            self.intercept_,
            self.probA_,
            self.probB_,
            svm_type=0,
            kernel=self.kernel,
            degree=3,
            cache_size=200,
            coef0=0.0,
            gamma=self._gamma,
        )
        return -np.asarray(d).ravel()  # libsvm's first class is 0: flip, as SVC does for two classes

    def coef(self) -> np.ndarray:
        if self._svc is not None:
            return np.asarray(self._svc.coef_)
        return -(self.dual_ @ self.sv_)


# ----------------------------------------------------------------------------- selection + SVM


def _rfe_order(
    a: np.ndarray, y: np.ndarray, percentile: float, step: float, exact_below: int, C: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """F-test pre-filter and the RFE elimination path; returns (pre-filtered column positions, order, n_undefined).

    ``order`` lists the pre-filtered positions best first: the last feature
    standing, then the one eliminated just before it, ... Above
    ``exact_below`` remaining features, ``max(1, int(step * n_pre))`` are
    eliminated per round (scikit-learn's ``RFE(step=float)``); from there on
    one per round, so ``order[:n]`` is exactly ``RFE(n_features_to_select=n,
    step=1)`` started from ``exact_below`` features for every ``n <= exact_below``.
    ``n_undefined``: features whose F statistic is undefined on these rows (0 / 0: the
    feature is constant on them); as in scikit-learn's ``SelectPercentile`` they are
    ranked last (a fallback the caller reports), while an infinite F (constant within
    each class, different between them) ranks first.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        F, _ = f_classif(a, y)
    n_undefined = int(np.isnan(F).sum())
    F = np.where(np.isnan(F), -np.inf, F)
    n_pre = max(1, int(math.ceil(a.shape[1] * float(percentile) / 100.0)))
    pre = np.sort(np.argsort(-F, kind="stable")[:n_pre])
    current = list(range(len(pre)))
    eliminated: list[int] = []
    batch = max(1, int(step * len(pre)))
    ap = a[:, pre]
    while len(current) > 1:
        est = _SVM("linear", C).fit(ap[:, current], y)
        imp = np.square(est.coef()).sum(axis=0)
        n_remove = min(batch, len(current) - exact_below) if len(current) > exact_below else 1
        worst = np.argsort(imp, kind="stable")[:n_remove]
        # eliminate in order of increasing importance (the least important is ranked last)
        for w in worst:
            eliminated.append(current[w])
        drop = set(worst.tolist())
        current = [c for j, c in enumerate(current) if j not in drop]
    order = np.array(current + eliminated[::-1], dtype=int)
    return pre, pre[order], n_undefined


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney statistic (ties count 1/2); y is 0/1 with both classes present."""
    from scipy.stats import rankdata

    r = rankdata(s)
    n1 = int(y.sum())
    n0 = y.size - n1
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _zscore_fit(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = a.mean(axis=0)
    sd = a.std(axis=0, ddof=1) if a.shape[0] > 1 else np.ones(a.shape[1])
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    return mu, sd


class FTestRFESVM(ClassifierMixin, BaseEstimator):
    """F-test top ``percentile`` % -> recursive feature elimination -> RBF-SVM, tuned by an inner CV in ``fit``.

    Yang et al. 2022 (univariate F-test filter, RFE, SVM with a radial basis
    kernel; parameters from nested cross-validation). Inside ``fit`` (on the
    training rows only): the features are z-scored; for each of ``inner_cv``
    stratified folds (shuffled with ``random_state``) the F-test and the RFE
    path (linear SVM, ``rfe_C``) are computed on the inner training part and,
    for every ``n`` in ``n_features_grid`` and every ``C`` x ``gamma``, an RBF-SVM
    on the top ``n`` RFE features scores the inner test part (ROC AUC of the
    decision function). The combination with the best mean AUC (ties: fewer
    features, then the grid order) is refitted on all training rows
    (F-test + RFE again, then ``SVC(probability=True)``, Platt scaling seeded
    by ``random_state``). The SVMs of the inner CV and of RFE are fitted by
    scikit-learn's libsvm binding directly (:class:`_SVM`: the same solver and
    defaults as ``SVC``, without its per-call validation, 3-5x faster here).

    Attributes: ``selected_features_`` (names, best first), ``best_params_``
    (``n_features``, ``C``, ``gamma``), ``cv_results_`` (DataFrame of the grid
    with ``mean_auc``), ``prefiltered_features_``, ``order_`` (RFE order of
    the pre-filtered features, best first), ``mean_`` / ``scale_`` (Series, the
    z-score of the selected features), ``svm_`` (the fitted ``SVC``),
    ``classes_``, ``fallbacks_`` (the fallback code paths this fit took, as
    sentences; empty when none: see :data:`FALLBACK_RULES`).
    """

    def __init__(
        self,
        percentile: float = 20,
        n_features_grid: Sequence[int] = (1, 2, 3, 5, 8, 13),
        C_grid: Sequence[float] = (0.1, 1.0, 10.0, 100.0),
        gamma_grid: Sequence[Any] = ("scale", 0.1),
        inner_cv: int = 5,
        rfe_step: float = 0.1,
        exact_below: int = 16,
        rfe_C: float = 1.0,
        probability: bool = True,
        random_state: int = 0,
    ):
        self.percentile = percentile
        self.n_features_grid = n_features_grid
        self.C_grid = C_grid
        self.gamma_grid = gamma_grid
        self.inner_cv = inner_cv
        self.rfe_step = rfe_step
        self.exact_below = exact_below
        self.rfe_C = rfe_C
        self.probability = probability
        self.random_state = random_state

    # ----------------------------------------------------------------- helpers
    def _frame(self, X) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        a = np.asarray(X, dtype=float)
        if a.ndim != 2:
            raise ValueError(f"FTestRFESVM: X must be 2-D, got shape {a.shape}")
        return pd.DataFrame(a, columns=[f"x{i}" for i in range(a.shape[1])])

    def _path(self, a, y):
        exact = max(int(self.exact_below), max(int(n) for n in self.n_features_grid))
        return _rfe_order(a, y, self.percentile, float(self.rfe_step), exact, float(self.rfe_C))

    def fit(self, X, y):
        df = self._frame(X).astype(float)
        a = df.to_numpy()
        if not np.isfinite(a).all():
            bad = df.columns[~np.isfinite(a).all(axis=0)][:5].tolist()
            raise ValueError(f"FTestRFESVM: X has missing or infinite values (e.g. columns {bad}); impute first")
        ys = as_series(y, df.index)
        self.classes_ = np.unique(ys.to_numpy())
        if len(self.classes_) != 2:
            raise ValueError(f"FTestRFESVM: y must have exactly 2 classes, got {self.classes_.tolist()}")
        yb = (ys.to_numpy() == self.classes_[1]).astype(int)
        grid_n = sorted({int(n) for n in self.n_features_grid if int(n) >= 1})
        if not grid_n:
            raise ValueError("FTestRFESVM: n_features_grid needs at least one value >= 1")
        combos = [(n, C, g) for n in grid_n for C in self.C_grid for g in self.gamma_grid]
        minority = int(np.bincount(yb).min())
        n_splits = int(min(int(self.inner_cv), minority))
        if n_splits < 2:
            raise ValueError("FTestRFESVM: each class needs at least 2 training patients for the inner CV")
        fallbacks = []
        if n_splits < int(self.inner_cv):
            fallbacks.append(
                f"inner CV with {n_splits} instead of {int(self.inner_cv)} folds (a class has "
                f"{minority} training patients)"
            )
        skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
        scores = np.zeros((n_splits, len(combos)))
        undefined = 0
        for k, (tr, te) in enumerate(skf.split(a, yb)):
            mu, sd = _zscore_fit(a[tr])
            ztr, zte = (a[tr] - mu) / sd, (a[te] - mu) / sd
            _, order, n_undef = self._path(ztr, yb[tr])
            undefined += n_undef
            for j, (n, C, g) in enumerate(combos):
                cols = order[:n]
                svm = _SVM("rbf", C, g).fit(ztr[:, cols], yb[tr])
                scores[k, j] = _auc(yb[te], svm.decision(zte[:, cols]))  # stratified: both classes in te
        mean = scores.mean(axis=0)
        self.cv_results_ = pd.DataFrame([{"n_features": n, "C": C, "gamma": g} for n, C, g in combos])
        self.cv_results_["mean_auc"] = mean
        self.cv_results_["std_auc"] = scores.std(axis=0)
        best = int(np.argmax(mean))  # the first maximum: fewest features, then the grid order
        n, C, g = combos[best]
        mu, sd = _zscore_fit(a)
        z = (a - mu) / sd
        pre, order, n_undef = self._path(z, yb)
        if undefined or n_undef:
            fallbacks.append("F statistic undefined for feature(s) constant on a training part: ranked last")
        if grid_n[-1] > len(order):
            fallbacks.append(
                f"RFE grid values above the {len(order)} F-test-selected feature(s) capped at {len(order)}"
            )
        self.fallbacks_ = fallbacks
        cols = order[: min(n, len(order))]
        self.best_params_ = {"n_features": int(len(cols)), "C": C, "gamma": g}
        self.prefiltered_features_ = [str(df.columns[j]) for j in pre]
        self.order_ = [str(df.columns[j]) for j in order]
        self.selected_features_ = [str(df.columns[j]) for j in cols]
        self._cols = np.asarray(cols)
        self.mean_ = pd.Series(mu[cols], index=self.selected_features_)
        self.scale_ = pd.Series(sd[cols], index=self.selected_features_)
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="The `probability` parameter was deprecated", category=FutureWarning
            )
            self.svm_ = SVC(
                kernel="rbf", C=C, gamma=g, probability=bool(self.probability), random_state=self.random_state
            ).fit(z[:, cols], yb)
        self.feature_names_in_ = np.asarray([str(c) for c in df.columns], dtype=object)
        self.n_features_in_ = df.shape[1]
        return self

    def _z(self, X) -> np.ndarray:
        check_is_fitted(self, "svm_")
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.selected_features_ if c not in X.columns]
            if missing:
                raise KeyError(f"FTestRFESVM: X lacks the selected feature(s) {missing[:5]}")
            a = X.loc[:, self.selected_features_].to_numpy(dtype=float)
        else:
            a = np.asarray(X, dtype=float)[:, self._cols]
        return (a - self.mean_.to_numpy()) / self.scale_.to_numpy()

    def decision_function(self, X) -> np.ndarray:
        return self.svm_.decision_function(self._z(X))

    def predict_proba(self, X) -> np.ndarray:
        if not self.probability:
            raise AttributeError("FTestRFESVM(probability=False) has no predict_proba")
        return self.svm_.predict_proba(self._z(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def signature_pipeline(
    *,
    perturbed: Sequence[pd.DataFrame] | pd.DataFrame | None = None,
    icc_threshold: float = 0.85,
    icc_kind: str = "ICC(2,1)",
    icc_min_rows: int = 5,
    seed: int = 0,
    **svm_params,
) -> Pipeline:
    """``DropConstant -> [SubsetICCFilter] -> FTestRFESVM``: one imaging model of the paper.

    ``perturbed``: re-extractions of the features (same columns) for the
    re-segmented patients; when given, only features whose ICC between the
    original and re-segmented training rows exceeds ``icc_threshold`` go on
    (:class:`replicate.fusion.SubsetICCFilter`, fitted on the training rows of
    each fit). ``svm_params`` go to :class:`FTestRFESVM` (``random_state=seed``).
    """
    steps: list[tuple[str, Any]] = [("drop_constant", DropConstant())]
    if perturbed is not None:
        from .fusion import SubsetICCFilter

        steps.append(
            ("icc", SubsetICCFilter(perturbed=perturbed, threshold=icc_threshold, kind=icc_kind, min_rows=icc_min_rows))
        )
    steps.append(("signature", FTestRFESVM(random_state=seed, **svm_params)))
    return Pipeline(steps)


def _generic(text: str) -> str:
    """A fallback sentence without its fit-specific details (parenthesised remarks, quoted variable names),
    so that the same fallback in different fits is counted as one."""
    out, depth = [], 0
    for ch in text:
        depth += ch == "("
        if depth == 0:
            out.append(ch)
        depth -= ch == ")" and depth > 0
    return re.sub(r"\s+'[^']*'", "", "".join(out)).replace(" ;", ";").strip()


def fit_fallbacks(model) -> list[str]:
    """The fallback code paths a fitted model took, as sentences (empty when it took none).

    Walks a fitted :func:`signature_pipeline` (the ICC filter's keep-the-most-reproducible
    fallback, :attr:`FTestRFESVM.fallbacks_`), a :class:`SignatureNomogram` (its own
    ``fallbacks_``, which include its signatures') or a
    :class:`~replicate.clinical.ClinicalLogit` (``fallback_``). The chapter lists them as
    deviations, with the number of fits that took each.
    """
    out: list[str] = []
    steps = list(model.steps) if hasattr(model, "steps") else [("model", model)]
    for _, step in steps:
        icc = getattr(step, "filter_", None)
        if icc is not None and hasattr(icc, "icc_"):
            n_pass = int((icc.icc_ > float(icc.threshold)).sum())
            if n_pass < len(step.selected_features_):
                out.append(
                    f"ICC filter: {n_pass} feature(s) with {icc.kind} > {icc.threshold} on the re-segmented "
                    f"training patients; the {len(step.selected_features_)} most reproducible kept instead"
                )
        out += list(getattr(step, "fallbacks_", []) or [])
        if getattr(step, "fallback_", None):
            out.append(f"clinical model: {_generic(step.fallback_)}")
    return out


def combine_modalities(
    tables: Mapping[str, pd.DataFrame], modalities: Sequence[str], sep: str = SEP
) -> tuple[pd.DataFrame, list[str]]:
    """Side-by-side features of ``modalities`` (columns ``<modality><sep><feature>``), patients present in all.

    Returns ``(table, missing)``: ``missing`` lists ``"<patient>: no <modality> features"`` for each
    patient absent from some modality's table (reported by the caller, never silently dropped).
    """
    if not modalities:
        raise ValueError("combine_modalities: no modality given")
    absent = [m for m in modalities if m not in tables]
    if absent:
        raise KeyError(f"combine_modalities: no feature table for {absent} (have {sorted(tables)})")
    ids = None
    for m in modalities:
        ids = tables[m].index if ids is None else ids.intersection(tables[m].index, sort=False)
    every = pd.Index([])
    for m in modalities:
        every = every.union(tables[m].index, sort=False)
    missing = [
        f"{pid}: no {m} features"
        for pid in every.difference(ids, sort=False)
        for m in modalities
        if pid not in tables[m].index
    ]
    parts = [tables[m].loc[ids].add_prefix(f"{m}{sep}") for m in modalities]
    return pd.concat(parts, axis=1), missing


# ----------------------------------------------------------------------------- the paper's protocol


@dataclass
class ModelEvaluation:
    """One model under the paper's protocol.

    ``oof``: mean out-of-fold probability of each training patient over the
    repeats of the outer CV; ``oof_per_repeat``: patients x repeats;
    ``auc_per_repeat``; ``p_apparent``: the final model's probabilities on its own training rows;
    ``p_validation``: the final model's probabilities on the validation cohort;
    ``model``: the final fitted estimator; ``fold_info``: what ``inspect`` returned per outer fold;
    ``seconds``: wall time of the fits (0 when read from the cache); ``n_splits``: folds per
    repeat; ``fallbacks``: each fallback sentence (:func:`fit_fallbacks`) -> the number of
    the ``n_fits`` fits (outer folds and the final fit) that took it.
    """

    name: str
    y_train: pd.Series
    oof: pd.Series
    oof_per_repeat: pd.DataFrame
    auc_per_repeat: pd.Series
    p_apparent: pd.Series
    y_validation: pd.Series | None
    p_validation: pd.Series | None
    model: Any
    fold_info: list = field(default_factory=list)
    seconds: float = 0.0
    cached: bool = False
    n_splits: int = 5
    fallbacks: dict = field(default_factory=dict)
    n_fits: int = 0

    @property
    def cv_auc(self) -> float:
        """AUC of the repeat-averaged out-of-fold probability (a secondary: see :meth:`cv_auc_summary`)."""
        return float(roc_auc_score(self.y_train.to_numpy(), self.oof.to_numpy()))

    def cv_auc_summary(self, level: float = 0.95) -> dict:
        """The cross-validated AUC as the headline: the mean of the per-repeat AUCs with its corrected CI.

        Each repeat's AUC is that of its own out-of-fold probabilities (one K-fold CV that
        scores every patient once); their mean gets the corrected resampled t-test interval
        (Nadeau & Bengio 2003) with ``n_test / n_train = 1 / (K - 1)``, the training sets of
        the repeats overlapping as those of K-fold CV do (Bouckaert & Frank 2004). With one
        repeat there is no interval (``low`` / ``high`` / ``se`` are NaN).
        """
        return repeat_summary(self.auc_per_repeat.to_numpy(dtype=float), self.n_splits, len(self.y_train), level)

    @property
    def validation_auc(self) -> float:
        if self.p_validation is None or self.y_validation is None or self.y_validation.nunique() < 2:
            return float("nan")
        return float(roc_auc_score(self.y_validation.to_numpy(), self.p_validation.to_numpy()))

    @property
    def apparent_auc(self) -> float:
        return float(roc_auc_score(self.y_train.to_numpy(), self.p_apparent.to_numpy()))


def repeat_summary(values, n_splits: int, n: int, level: float = 0.95) -> dict:
    """Mean of per-repeat K-fold estimates with the corrected resampled t-test CI and SE.

    ``{"mean", "low", "high", "se", "sd", "n_repeats", "rule"}``; ``n_train = n (K - 1) / K``,
    ``n_test = n / K``. NaN values (a metric undefined in a repeat, e.g. a PPV with no positive
    call) are left out; with fewer than two values there is no interval (NaNs).
    """
    from .stats.resampled_ttest import corrected_resampled_ttest_ci, corrected_se

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    k = int(n_splits)
    n_train, n_test = n * (k - 1) / k, n / k
    out = {
        "mean": float(v.mean()) if v.size else float("nan"),
        "low": float("nan"),
        "high": float("nan"),
        "se": float("nan"),
        "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
        "n_repeats": int(v.size),
        "rule": (
            f"mean over {v.size} repeat(s) of {k}-fold CV; corrected resampled t-test CI (Nadeau & Bengio "
            f"2003; n_test/n_train = 1/{k - 1}, t with {max(v.size - 1, 0)} df)"
        ),
    }
    if v.size >= 2:
        _, out["low"], out["high"] = corrected_resampled_ttest_ci(v, n_train, n_test, level)
        out["se"] = corrected_se(v, n_train, n_test)
    return out


def _positive(model, X) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X))[:, 1]
    return np.asarray(model.decision_function(X), dtype=float)


def _fold(make_model, X, y, tr, te, inspect):
    m = make_model() if callable(make_model) and not hasattr(make_model, "fit") else clone(make_model)
    m.fit(X.iloc[tr], y.iloc[tr])
    return _positive(m, X.iloc[te]), (inspect(m) if inspect is not None else None), fit_fallbacks(m)


def evaluate_model(
    name: str,
    make_model,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_validation: pd.DataFrame | None = None,
    y_validation: pd.Series | None = None,
    *,
    n_splits: int = 5,
    n_repeats: int = 10,
    seed: int = 0,
    n_jobs: int | None = 1,
    inspect: Callable[[Any], Any] | None = None,
    cache_dir: str | Path | None = None,
    cache_key: Any = None,
    progress: bool = False,
) -> ModelEvaluation:
    """The paper's protocol for one model: repeated stratified K-fold CV on training + one external fit.

    Outer folds: ``RepeatedStratifiedKFold(n_splits, n_repeats, random_state=seed)``;
    every fold refits the whole model (selection and tuning included) on its
    training part. Then the model is fitted on all of ``X_train`` and applied
    to ``X_validation``. ``make_model``: a zero-argument factory or an
    estimator (cloned). With ``cache_dir``, the result (final model
    included) is stored under a key of the data (content hashes), ``seed``,
    the fold counts, ``cache_key`` (describe the model here: the cache cannot
    read it from the estimator) and this module's code.
    """
    import joblib
    from joblib import Parallel, delayed
    from sklearn.model_selection import RepeatedStratifiedKFold

    if not X_train.index.equals(y_train.index):
        raise ValueError(f"{name}: X_train and y_train must have the same index (patient ids)")
    if X_validation is not None and (y_validation is None or not X_validation.index.equals(y_validation.index)):
        raise ValueError(f"{name}: X_validation and y_validation must have the same index (patient ids)")
    path = None
    if cache_dir is not None:
        key = stable_hash(
            {
                "name": name,
                "X": frame_hash(X_train),
                "y": frame_hash(y_train),
                "Xv": frame_hash(X_validation),
                "yv": frame_hash(y_validation),
                "seed": int(seed),
                "n_splits": n_splits,
                "n_repeats": n_repeats,
                "key": cache_key,
                "code": _code_version(),
            }
        )
        path = Path(cache_dir) / f"{key[:32]}.joblib"
        if path.is_file():
            try:
                ev = joblib.load(path)
                ev.cached = True
                return ev
            except Exception as e:  # a corrupt entry is recomputed
                warnings.warn(f"{name}: ignoring unreadable cache entry {path}: {e}", stacklevel=2)
    t0 = time.perf_counter()
    yv = y_train.astype(int)
    rskf = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    splits = list(rskf.split(np.zeros(len(yv)), yv.to_numpy()))
    tasks = [delayed(_fold)(make_model, X_train, yv, tr, te, inspect) for tr, te in splits]
    if n_jobs in (None, 1):
        it = (t[0](*t[1], **t[2]) for t in tasks)
    else:
        it = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(tasks), desc=name, leave=False)
    out = list(it)
    per = np.full((len(yv), n_repeats), np.nan)
    info = []
    fallbacks: dict[str, int] = {}
    for k, ((_tr, te), (s, inf, fb)) in enumerate(zip(splits, out)):
        per[te, k // n_splits] = s
        info.append({"repeat": k // n_splits, "fold": k % n_splits, "info": inf})
        for text in dict.fromkeys(fb):
            fallbacks[text] = fallbacks.get(text, 0) + 1
    per_df = pd.DataFrame(per, index=X_train.index, columns=pd.RangeIndex(n_repeats, name="repeat"))
    aucs = pd.Series(
        [roc_auc_score(yv.to_numpy(), per[:, r]) for r in range(n_repeats)],
        index=pd.RangeIndex(n_repeats, name="repeat"),
        name="AUC",
    )
    final = make_model() if callable(make_model) and not hasattr(make_model, "fit") else clone(make_model)
    final.fit(X_train, yv)
    for text in dict.fromkeys(fit_fallbacks(final)):
        fallbacks[text] = fallbacks.get(text, 0) + 1
    p_app = pd.Series(_positive(final, X_train), index=X_train.index, name="p")
    p_val = None
    if X_validation is not None:
        p_val = pd.Series(_positive(final, X_validation), index=X_validation.index, name="p")
    ev = ModelEvaluation(
        name,
        yv,
        per_df.mean(axis=1).rename("p"),
        per_df,
        aucs,
        p_app,
        None if y_validation is None else y_validation.astype(int),
        p_val,
        final,
        info,
        time.perf_counter() - t0,
        n_splits=int(n_splits),
        fallbacks=fallbacks,
        n_fits=len(splits) + 1,
    )
    if path is not None:
        import io as _io

        buf = _io.BytesIO()
        joblib.dump(ev, buf)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    return ev


def rank_models(
    evaluations: Mapping[str, ModelEvaluation], by: str = "validation", meta: Mapping[str, Mapping] | None = None
) -> pd.DataFrame:
    """All models with their CV, apparent and validation AUCs, best first.

    ``cv_auc`` is the mean of the per-repeat AUCs (with ``cv_auc_low`` / ``cv_auc_high``, the
    corrected resampled t-test CI: :meth:`ModelEvaluation.cv_auc_summary`); ``cv_auc_pooled``
    the AUC of the repeat-averaged probability (a secondary). ``by="validation"``: the paper's
    choice of signature (Table 2, footnote a: "the best deep learning model considering AUC of
    the validation cohort"); ``by="cv"``: the leak-free choice (the Methods: "the highest AUC
    value during cross validation"), by ``cv_auc``. Ties keep the input order. ``meta[name]``
    adds columns (e.g. CNN, modality set, number of selected features).
    """
    if by not in ("validation", "cv"):
        raise ValueError("by must be 'validation' or 'cv'")
    rows = []
    for name, ev in evaluations.items():
        cv = ev.cv_auc_summary()
        row = {
            "model": name,
            **dict((meta or {}).get(name, {})),
            "cv_auc": cv["mean"],
            "cv_auc_low": cv["low"],
            "cv_auc_high": cv["high"],
            "cv_auc_sd_repeats": cv["sd"],
            "cv_auc_pooled": ev.cv_auc,
            "apparent_auc": ev.apparent_auc,
            "validation_auc": ev.validation_auc,
        }
        rows.append(row)
    df = pd.DataFrame(rows)
    col = "validation_auc" if by == "validation" else "cv_auc"
    df = df.sort_values(col, ascending=False, kind="stable", na_position="last").reset_index(drop=True)
    df.index = pd.RangeIndex(1, len(df) + 1, name="rank")
    return df


# ----------------------------------------------------------------------------- nomogram


class SignatureNomogram(ClassifierMixin, BaseEstimator):
    """Clinical-radiological nomogram: logistic regression of a signature score and selected clinical variables.

    ``fit(X, y)`` on the training rows only:

    1. the signature (``signature``, an unfitted estimator on
       ``signature_columns``) gets out-of-fold probabilities on the training
       rows by a stratified ``inner_cv``-fold CV (shuffled with ``random_state``),
       and is refitted on all training rows for new patients;
    2. the clinical variables are selected by
       :func:`replicate.clinical.univariate_multivariate` (univariate
       ``P < p_enter`` -> multivariable ``P < p_keep``) on the ``clinical``
       columns (with :class:`~replicate.clinical.ClinicalLogit`'s fallback to
       the best univariate variable when none is selected);
    3. a logistic regression (statsmodels, unpenalised; L2 fallback on
       separation) of ``score_name`` = logit(signature probability) and the
       selected variables.

    The out-of-fold score keeps the nomogram from trusting a signature that
    has memorised its training rows. Attributes: ``signature_`` (fitted),
    ``clinical_selected_``, ``logit_`` (the fitted ``ClinicalLogit`` of step 3),
    ``oof_score_`` (training out-of-fold logits), ``classes_``, ``fallbacks_``
    (the fallback code paths taken, its signatures' included: :func:`fit_fallbacks`).
    """

    def __init__(
        self,
        signature=None,
        signature_columns=None,
        clinical=None,
        p_enter: float = 0.10,
        p_keep: float = 0.05,
        categorical=None,
        inner_cv: int = 5,
        score_name: str = "DL signature",
        random_state: int = 0,
    ):
        self.signature = signature
        self.signature_columns = signature_columns
        self.clinical = clinical
        self.p_enter = p_enter
        self.p_keep = p_keep
        self.categorical = categorical
        self.inner_cv = inner_cv
        self.score_name = score_name
        self.random_state = random_state

    def _score(self, est, X) -> np.ndarray:
        return logit(_positive(est, X.loc[:, list(self.signature_columns)]))

    def fit(self, X, y):
        from .clinical import ClinicalLogit

        if not isinstance(X, pd.DataFrame):
            raise TypeError("SignatureNomogram needs a DataFrame with the signature and clinical columns")
        if self.signature is None or not self.signature_columns or not self.clinical:
            raise ValueError("SignatureNomogram needs signature, signature_columns and clinical")
        ys = as_series(y, X.index).astype(int)
        self.classes_ = np.unique(ys.to_numpy())
        yb = (ys.to_numpy() == self.classes_[-1]).astype(int)
        n_splits = int(min(int(self.inner_cv), np.bincount(yb).min()))
        if n_splits < 2:
            raise ValueError("SignatureNomogram: each class needs at least 2 training patients")
        fallbacks = []
        if n_splits < int(self.inner_cv):
            fallbacks.append(
                f"nomogram: signature score out-of-fold by {n_splits} instead of {int(self.inner_cv)} "
                "folds (small class)"
            )
        skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
        oof = np.full(len(yb), np.nan)
        for tr, te in skf.split(np.zeros(len(yb)), yb):
            est = clone(self.signature).fit(X.iloc[tr].loc[:, list(self.signature_columns)], ys.iloc[tr])
            oof[te] = self._score(est, X.iloc[te])
            fallbacks += [f"nomogram's signature (out-of-fold score): {t}" for t in fit_fallbacks(est)]
        self.oof_score_ = pd.Series(oof, index=X.index, name=self.score_name)
        self.signature_ = clone(self.signature).fit(X.loc[:, list(self.signature_columns)], ys)
        fallbacks += [f"nomogram's signature: {t}" for t in fit_fallbacks(self.signature_)]
        clin = X.loc[:, list(self.clinical)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            sel = ClinicalLogit(
                candidates=list(self.clinical), p_enter=self.p_enter, p_keep=self.p_keep, categorical=self.categorical
            ).fit(clin, ys)
        self.clinical_selection_ = sel
        self.clinical_selected_ = list(sel.selected_)
        design = clin.loc[:, self.clinical_selected_].copy()
        design.insert(0, self.score_name, self.oof_score_.to_numpy())
        self.logit_ = ClinicalLogit(
            candidates=list(design.columns), p_enter=1.01, p_keep=1.01, categorical=self.categorical
        ).fit(design, ys)
        fallbacks += [f"nomogram's clinical selection: {_generic(sel.fallback_)}"] if sel.fallback_ else []
        fallbacks += (
            [f"nomogram's logistic regression: {_generic(self.logit_.fallback_)}"] if self.logit_.fallback_ else []
        )
        self.fallbacks_ = list(dict.fromkeys(fallbacks))
        return self

    def _design(self, X) -> pd.DataFrame:
        check_is_fitted(self, "logit_")
        d = X.loc[:, self.clinical_selected_].copy()
        d.insert(0, self.score_name, self._score(self.signature_, X))
        return d

    def decision_function(self, X) -> np.ndarray:
        return self.logit_.decision_function(self._design(X))

    def predict_proba(self, X) -> np.ndarray:
        return self.logit_.predict_proba(self._design(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


# ----------------------------------------------------------------------------- the signature as a function


@dataclass
class SignatureAffine:
    """A fitted ``[selectors / z-scores] -> FTestRFESVM`` pipeline written out.

    decision(x) = sum_i dual_i * exp(-gamma * ||z - sv_i||^2) + intercept, with
    z = (x[columns] - center) / scale (all affine steps composed).
    """

    columns: list
    center: np.ndarray
    scale: np.ndarray
    support_vectors: np.ndarray
    dual_coef: np.ndarray
    intercept: float
    gamma: float

    def decision(self, X: pd.DataFrame) -> np.ndarray:
        z = (X.loc[:, self.columns].to_numpy(dtype=float) - self.center) / self.scale
        d2 = ((z[:, None, :] - self.support_vectors[None, :, :]) ** 2).sum(axis=2)
        return np.exp(-self.gamma * d2) @ self.dual_coef + self.intercept


def signature_affine(model) -> SignatureAffine:
    """Compose a fitted pipeline of column selectors, ``ZScore`` and a final :class:`FTestRFESVM`.

    Selectors (``DropConstant``, ICC filters, any step with ``selected_features_``)
    only choose columns; ``ZScore`` contributes ``(x - mean) / scale``. The
    result reproduces ``model.decision_function`` (checked in the tests).
    """
    steps = list(model.steps) if hasattr(model, "steps") else [("signature", model)]
    final = steps[-1][1]
    if not isinstance(final, FTestRFESVM):
        raise TypeError("signature_affine: the last step must be a fitted FTestRFESVM")
    check_is_fitted(final, "svm_")
    # per selected feature: x_final = (x_raw - c) / s, composed backwards through the z-scores
    cols = list(final.selected_features_)
    c = final.mean_.to_numpy(dtype=float).copy()
    s = final.scale_.to_numpy(dtype=float).copy()
    for _, step in reversed(steps[:-1]):
        if isinstance(step, ZScore):
            m = pd.Series(np.asarray(step.mean_, dtype=float), index=step._columns)
            sc = pd.Series(np.asarray(step.scale_, dtype=float), index=step._columns)
            mv, sv = m.loc[cols].to_numpy(), sc.loc[cols].to_numpy()
            # z1 = (x - mv) / sv ; z2 = (z1 - c) / s  ->  (x - (mv + c sv)) / (s sv)
            c = mv + c * sv
            s = s * sv
        elif isinstance(step, FrameSelector) or hasattr(step, "selected_features_"):
            continue
        else:
            raise TypeError(f"signature_affine: cannot write out step {type(step).__name__}")
    svm = final.svm_
    return SignatureAffine(
        cols,
        c,
        s,
        np.asarray(svm.support_vectors_, dtype=float),
        np.asarray(svm.dual_coef_, dtype=float).ravel(),
        float(np.ravel(svm.intercept_)[0]),
        float(svm._gamma),
    )


class SignatureScore:
    """Factory of a torch module: a CNN crop of one modality -> the signature's decision value.

    The module runs ``network`` (the same backbone and weights the features
    came from), global-average-pools the output of ``module_name`` (as
    :func:`replicate.features.deep.extract_deep` does), places those values in
    the signature's columns ``<modality><sep><prefix><i>`` and the patient's
    other features (``fixed``, a Series of every column) elsewhere, and
    returns ``[-d, d]`` (so class 1 = the positive class's logit).
    """

    @staticmethod
    def build(
        network, module_name: str, affine: SignatureAffine, modality: str, prefix: str, fixed: pd.Series, sep: str = SEP
    ):
        import torch

        from .features.deep import _get_module

        lead = f"{modality}{sep}{prefix}"
        idx, pos = [], []
        for j, col in enumerate(affine.columns):
            if str(col).startswith(lead):
                idx.append(int(str(col)[len(lead) :]))
                pos.append(j)
        base = np.array([float(fixed[c]) for c in affine.columns])

        class _Score(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = network
                self.tap = _get_module(network, module_name)
                self.register_buffer("base", torch.tensor(base, dtype=torch.float32))
                self.register_buffer("center", torch.tensor(affine.center, dtype=torch.float32))
                self.register_buffer("scale", torch.tensor(affine.scale, dtype=torch.float32))
                self.register_buffer("sv", torch.tensor(affine.support_vectors, dtype=torch.float32))
                self.register_buffer("dual", torch.tensor(affine.dual_coef, dtype=torch.float32))
                self.idx = torch.tensor(idx, dtype=torch.long)
                self.pos = torch.tensor(pos, dtype=torch.long)
                self.gamma = float(affine.gamma)
                self.intercept = float(affine.intercept)
                self.n_used = len(idx)

            def forward(self, x):
                store = {}
                h = self.tap.register_forward_hook(lambda m, i, o: store.__setitem__("out", o))
                try:
                    self.net(x)
                finally:
                    h.remove()
                out = store["out"]
                out = out[0] if isinstance(out, (tuple, list)) else out
                pooled = out.mean(dim=(2, 3)) if out.ndim == 4 else torch.flatten(out, 1)
                v = self.base.unsqueeze(0).repeat(x.shape[0], 1)
                if self.n_used:
                    v = v.index_copy(1, self.pos, pooled[:, self.idx])
                z = (v - self.center) / self.scale
                d2 = ((z.unsqueeze(1) - self.sv.unsqueeze(0)) ** 2).sum(dim=2)
                d = torch.exp(-self.gamma * d2) @ self.dual + self.intercept
                return torch.stack([-d, d], dim=1)

        return _Score().eval()


_NETS: dict = {}


def signature_gradcam(
    model,
    features: pd.Series,
    crop: np.ndarray,
    modality: str,
    *,
    backbone: str = "resnet50",
    layer: str = "last_conv",
    weights: str = "auto",
    seed: int = 0,
    size: int = 224,
    class_idx: int | None = None,
    sep: str = SEP,
) -> tuple[np.ndarray, int, int]:
    """Grad-CAM of the fitted signature ``model`` for one modality's crop of one patient.

    ``features``: that patient's full feature row (the columns the model was
    fitted on); ``crop``: the raw tumour crop the features came from
    (:func:`replicate.features.deep.tumour_crops`). The network is rebuilt
    exactly as for extraction (``backbone``, ``weights``, ``seed``); the heat
    map is taken at the backbone's last convolutional block for the evidence
    of class ``class_idx`` (1: the positive class, +decision value; 0: the
    negative class, -decision value; None: the class the signature predicts).
    Returns ``(heat map in [0, 1] of the crop's shape, number of the
    signature's features that come from this modality, class used)``; with
    none of its features from this modality the map is all zeros (the
    signature ignores the modality).
    """
    from .features.deep import build_backbone, gradcam, preprocess, resolve_layer

    affine = signature_affine(model)
    key = (str(backbone), str(weights), int(seed))
    if key not in _NETS:
        _NETS.clear()
        _NETS[key] = build_backbone(backbone, weights, seed=seed)
    net, meta = _NETS[key]
    module_name = resolve_layer(meta["backbone"], layer)
    prefix = f"{meta['backbone']}_{layer}_"
    score = SignatureScore.build(net, module_name, affine, modality, prefix, features, sep=sep)
    x = preprocess(np.asarray(crop, dtype=np.float32), size, meta["mean"], meta["std"])
    if class_idx is None:
        import torch

        with torch.no_grad():
            class_idx = int(score(x[None])[0].argmax())
    if score.n_used == 0:
        return np.zeros(np.asarray(crop).shape, dtype=float), 0, int(class_idx)
    target = resolve_layer(meta["backbone"], "last_conv")
    cam = gradcam(score, x, target_layer=score.net.get_submodule(target), class_idx=int(class_idx))
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.asarray(cam, dtype=np.float32))[None, None]
    cam = F.interpolate(t, size=np.asarray(crop).shape, mode="bilinear", align_corners=False)[0, 0].numpy()
    return np.clip(cam, 0.0, 1.0), score.n_used, int(class_idx)


# ----------------------------------------------------------------------------- the paper's metrics

#: the metrics :func:`performance` returns (in this order)
PERFORMANCE_METRICS = ("AUC", "C-index", "ACC", "SEN", "SPE", "PPV", "NPV", "AP")


def performance(
    y, p, *, threshold: float = 0.5, ci_method: str = "wilson-cc", level: float = 0.95, hl_groups: int = 10
) -> dict:
    """The paper's measures of one model in one cohort (Yang et al. 2022, 'Statistical analysis').

    ``{"AUC": (auc, low, high)}`` (DeLong CI), ``"C-index"`` (Harrell's C; for a
    binary outcome it equals the AUC, with the same CI), ``ACC, SEN, SPE, PPV,
    NPV`` of ``p >= threshold`` with ``ci_method`` intervals
    (:func:`replicate.stats.confusion_metrics`), ``"AP"`` (average precision,
    no CI) and ``"HL"`` = ``(chi2, df, p_value)`` of the Hosmer-Lemeshow test
    (NaNs when the test cannot be formed). Every entry but HL is ``(value, low, high)``.
    ``threshold`` is fixed before the cohort is seen (the chapter's 0.5 on a probability
    whose Platt / logistic scale was fitted on training rows); it is returned as ``"threshold"``,
    never chosen from ``y`` or ``p``.
    """
    from sklearn.metrics import average_precision_score

    from .stats import auc_ci, confusion_metrics, hosmer_lemeshow

    yv = np.asarray(y).astype(int)
    pv = np.asarray(p, dtype=float)
    low, auc, high = auc_ci(yv, pv, level=level, method="delong")
    out = {
        "AUC": (float(auc), float(min(low, auc)), float(min(max(high, auc), 1.0))),
        "C-index": (float(auc), float(min(low, auc)), float(min(max(high, auc), 1.0))),
    }
    cm = confusion_metrics(yv, (pv >= threshold).astype(int), ci_method=ci_method, level=level)
    for k in ("ACC", "SEN", "SPE", "PPV", "NPV"):
        out[k] = tuple(float(v) for v in cm[k])
    out["AP"] = (float(average_precision_score(yv, pv)), float("nan"), float("nan"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hl = hosmer_lemeshow(yv, np.clip(pv, 0.0, 1.0), groups=hl_groups)
        out["HL"] = (float(hl.chi2), int(hl.df), float(hl.p_value))
    except ValueError:
        out["HL"] = (float("nan"), 0, float("nan"))
    out["threshold"] = float(threshold)
    return out


def cv_performance(
    ev: ModelEvaluation, *, threshold: float = 0.5, ci_method: str = "wilson-cc", level: float = 0.95
) -> dict:
    """The training cohort's cross-validated measures, repeat by repeat (the headline of a repeated CV).

    For each repeat of the outer CV, :func:`performance` of that repeat's out-of-fold
    probabilities (every patient scored once, by a model that never saw it) at the fixed
    ``threshold``; each metric's headline is the mean over the repeats with the corrected
    resampled t-test CI (:func:`repeat_summary`). Returns ``{metric: summary}`` for
    :data:`PERFORMANCE_METRICS`, plus ``"per_repeat"`` (a repeats x metrics DataFrame),
    ``"pooled"`` (:func:`performance` of the repeat-averaged out-of-fold probability: a
    secondary, labelled as such where shown) and ``"threshold"``.
    """
    y = ev.y_train.to_numpy()
    rows = []
    for r in ev.oof_per_repeat.columns:
        perf = performance(y, ev.oof_per_repeat[r].to_numpy(), threshold=threshold, ci_method=ci_method, level=level)
        rows.append({k: perf[k][0] for k in PERFORMANCE_METRICS})
    per_repeat = pd.DataFrame(rows, index=ev.oof_per_repeat.columns)
    out = {k: repeat_summary(per_repeat[k].to_numpy(), ev.n_splits, len(y), level) for k in PERFORMANCE_METRICS}
    out["per_repeat"] = per_repeat
    out["pooled"] = performance(y, ev.oof.to_numpy(), threshold=threshold, ci_method=ci_method, level=level)
    out["threshold"] = float(threshold)
    return out


#: the label of the secondary training AUC (``variable`` of its results row)
POOLED_OOF = "repeat-averaged out-of-fold probability (secondary)"


def record_cv_performance(
    results, model: str, cv: Mapping, metrics: Sequence[str] = PERFORMANCE_METRICS, **extra
) -> None:
    """Record :func:`cv_performance` on cohort ``training``: the per-repeat means (with the corrected SE as
    ``se``) as the metrics, the repeat-averaged out-of-fold AUC and Hosmer-Lemeshow test as labelled
    secondaries (``variable`` = :data:`POOLED_OOF`)."""
    for k in metrics:
        s = cv[k]
        ok = np.isfinite(s["mean"])
        has_ci = ok and np.isfinite(s["low"]) and np.isfinite(s["high"])
        results.add_metric(
            model,
            "training",
            k,
            float(s["mean"]) if ok else None,
            (s["low"], s["high"]) if has_ci else None,
            se=float(s["se"]) if has_ci else None,
            n_repeats=s["n_repeats"],
            ci_method=s["rule"] if has_ci else "one repeat: no interval",
            **extra,
        )
    auc, lo, hi = cv["pooled"]["AUC"]
    results.add_metric(
        model,
        "training",
        "AUC",
        auc,
        (lo, hi),
        variable=POOLED_OOF,
        ci_method="DeLong, on the repeat-averaged out-of-fold probability (the average of the "
        "repeats' models, its CI as if it were one model's)",
        **extra,
    )
    chi2, df, pv = cv["pooled"]["HL"]
    if np.isfinite(pv):
        results.add_metric(
            model,
            "training",
            "P",
            pv,
            None,
            variable="Hosmer-Lemeshow",
            chi2=chi2,
            df=df,
            note=f"on the {POOLED_OOF}",
            **extra,
        )


def record_performance(
    results,
    model: str,
    cohort: str,
    perf: Mapping,
    metrics: Sequence[str] = PERFORMANCE_METRICS,
    hosmer_lemeshow: bool = True,
    **extra,
) -> None:
    """``results.add_metric`` for each metric of a :func:`performance` dict (NaN -> not computed; no CI -> None).

    The Hosmer-Lemeshow test is recorded as metric ``"P"`` with ``variable="Hosmer-Lemeshow"`` (chi2 and df as extras).
    """
    for k in metrics:
        v, lo, hi = perf[k]
        ok = v is not None and np.isfinite(v)
        ci = (lo, hi) if ok and np.isfinite(lo) and np.isfinite(hi) else None
        results.add_metric(model, cohort, k, float(v) if ok else None, ci, **extra)
    if hosmer_lemeshow and "HL" in perf and np.isfinite(perf["HL"][2]):
        chi2, df, pv = perf["HL"]
        results.add_metric(model, cohort, "P", pv, None, variable="Hosmer-Lemeshow", chi2=chi2, df=df, **extra)


# ----------------------------------------------------------------------------- features of a cohort


@dataclass
class FeatureSets:
    """Every feature table of a cohort, per modality.

    ``hcr[modality]``: PyRadiomics features; ``hcr_resegmented[modality]``:
    the same features on the second segmentation of the re-segmented
    patients; ``deep[(backbone, layer, modality)]``: CNN features;
    ``failures``: one row per (case, modality, source) that could not be
    used, with the reason; ``info``: weights label per backbone, counts, timings.
    """

    hcr: dict = field(default_factory=dict)
    hcr_resegmented: dict = field(default_factory=dict)
    deep: dict = field(default_factory=dict)
    failures: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["case_id", "modality", "source", "reason"])
    )
    info: dict = field(default_factory=dict)


def extract_feature_sets(
    cohort,
    modalities: Sequence[str],
    *,
    radiomics_params="default",
    resegment_ids: Sequence[str] = (),
    perturbation: str = "jitter",
    backbones: Sequence[str] = (),
    layers: Mapping[str, Sequence[str]] | None = None,
    size: int = 224,
    slices: str = "max_area",
    weights: str = "auto",
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool = False,
) -> FeatureSets:
    """Handcrafted and deep features of every modality of ``cohort`` (cached by the extractors).

    ``resegment_ids``: patients whose mask is segmented a second time
    (:func:`replicate.features.perturb.perturbed_cases` with ``perturbation``,
    one voxel, seeded by ``seed``: the stand-in for the second reader) and
    re-extracted. ``backbones`` are extracted at ``layers.get(backbone,
    ["last_conv"])`` with :func:`replicate.features.deep.extract_deep`.
    Nothing is dropped silently: failed cases are in ``failures``.
    """
    from .features.perturb import perturbed_cases
    from .features.radiomics import extract_radiomics

    out = FeatureSets()
    fails = []
    t0 = time.perf_counter()
    resegment_ids = [str(i) for i in resegment_ids]
    for m in modalities:
        cases = cohort.cases(m)
        ft = extract_radiomics(cases, radiomics_params, n_jobs=n_jobs, progress=progress)
        out.hcr[m] = ft.features
        fails += [(r.case_id, m, "radiomics", r.reason) for r in ft.failures.itertuples()]
        out.info.setdefault("n_hcr_features", {})[m] = int(ft.features.shape[1])
        if resegment_ids:
            sub = [c for c in cases if str(c.case_id) in set(resegment_ids)]
            pert = perturbed_cases(sub, kinds=(perturbation,), seed=seed)
            fails += [(r.case_id, m, f"resegmentation ({r.kind})", r.reason) for r in pert.failures.itertuples()]
            ftp = extract_radiomics(pert[perturbation], radiomics_params, n_jobs=n_jobs, progress=progress)
            out.hcr_resegmented[m] = ftp.features
            fails += [(r.case_id, m, "radiomics (second segmentation)", r.reason) for r in ftp.failures.itertuples()]
    out.info["seconds_hcr"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    weights_labels = {}
    # one task per (backbone, modality), every layer of that backbone in it; with n_jobs > 1 (and size >= 128)
    # the tasks run in joblib's worker processes; torch runs on one thread per process either way (its own
    # threads fight over shared cores: 10x slower on a busy machine)
    tasks = [(b, tuple((layers or {}).get(b, ["last_conv"])), m) for b in backbones for m in modalities]
    case_lists = {m: cohort.cases(m) for m in modalities}
    from .config import feature_cache_dir

    cdir = str(feature_cache_dir())  # resolved here: workers may have started under another environment
    job = [
        (b, lay, m, case_lists[m], size, slices, weights, seed, progress and int(n_jobs) == 1, cdir)
        for b, lay, m in tasks
    ]
    # worker processes (~5 s start-up each: torch, timm) only pay off on large inputs
    if int(n_jobs) > 1 and len(job) > 1 and int(size) >= 128:
        from joblib import Parallel, delayed

        outs = Parallel(n_jobs=int(n_jobs), backend="loky")(delayed(_deep_task)(*j) for j in job)
    else:
        outs = [_deep_task(*j) for j in job]
    seconds = {}
    for (b, _lay, m), res in zip(tasks, outs):
        for layer, ft in res.items():
            out.deep[(b, layer, m)] = ft.features
            weights_labels[b] = ft.info["weights"]
            seconds[f"{b} {layer} {m}"] = round(float(ft.info["seconds_total"]), 2)
            fails += [(r.case_id, m, f"deep {b} {layer}", r.reason) for r in ft.failures.itertuples()]
    out.info["seconds_deep_tasks"] = seconds
    out.info["seconds_deep"] = time.perf_counter() - t1
    out.info["weights"] = weights_labels
    out.failures = pd.DataFrame(fails, columns=["case_id", "modality", "source", "reason"])
    return out


def _deep_task(backbone, layers, modality, cases, size, slices, weights, seed, progress, cache_dir, threads: int = 1):
    """Every layer of one backbone on one modality's cases (run in this process or a joblib worker).

    torch runs on ``threads`` threads meanwhile (restored afterwards).
    """
    import torch

    from .features.deep import extract_deep

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    out = {}
    try:
        for layer in layers:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # the untrained-weights warning: in info
                out[layer] = extract_deep(
                    cases,
                    backbone,
                    layer=layer,
                    size=size,
                    slices=slices,
                    weights=weights,
                    seed=seed,
                    progress=progress,
                    cache_dir=cache_dir,
                )
    finally:
        torch.set_num_threads(before)
    return out
