"""Deep learning radiomics nomogram (DLRN): signatures x classifiers x SMOTE, a clinical model, a nomogram.

The design of Liang et al. 2022 (chapter ``sts``, MRI) and Tian et al. 2024
(chapter ``rls``, CECT), driven by the spec's ``design`` section:

1. **Image features** (:func:`extract_image_features`): PyRadiomics
   handcrafted features (HCR) and CNN features (DL) of every modality,
   columns ``<modality>_hcr_<name>`` / ``<modality>_dl_<i>``, plus HCR
   re-extractions on perturbed masks (the robustness check).
2. **Signatures** (:func:`selection_pipeline`): for each signature (a set of
   feature *sources*, e.g. HCR, DL, HCR + DL = "HD-Combined"), fitted on the
   training rows only: DropConstant (null features) -> ICC filter on the HCR
   columns (:class:`PartialICCFilter`) -> ComBat across centres (when there
   are centres) -> z-score -> [relevance pool] -> mRMR (top k) -> LASSO with a
   CV-chosen penalty.
3. **Heads**: each classifier (``replicate.models``: lr, dt, rf, svm,
   adaboost...) without and with SMOTE (inside the training rows) on the
   signature's selected features. Model names: ``"<signature> <CLF>"`` and
   ``"<signature> <CLF>-SMOTE"``, e.g. ``"HD-Combined SVM-SMOTE"``.
4. **Clinical model**: :class:`replicate.clinical.ClinicalLogit`
   (univariate P < p_enter -> multivariable, P < p_keep kept), after a
   training-median imputation of missing values.
5. **DLRN**: a logistic regression of the independent clinical predictors and
   the chosen signature's score (logit of its probability on the training
   rows, as the papers fit their nomograms), drawn as a nomogram.

Everything in 2-5 is one scikit-learn-style estimator, :class:`DLRNModel`,
refitted from scratch on the training rows of every split by the protocols
:func:`fit_external`, :func:`repeated_cv` and :func:`random_split_aucs`, so
the selection steps never see a held-out patient. A data-driven cut-off
(Youden's index, ``cutoff_folds``) is learned like any other parameter: from
out-of-fold probabilities of an inner cross-validation on the fit's own
training rows, never from the scores of the patients it is applied to.

Repeated cross-validation is summarised by the mean test-fold AUC with the
corrected resampled t-test CI (:meth:`CVResult.auc_summary`); the AUC of the
repeat-averaged out-of-fold prediction is a secondary number. Every fallback a
fit takes is recorded in ``info_["fallbacks"]`` and turned into words by
:func:`fallback_deviations`; the fixed method choices by :func:`method_declarations`.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from . import validation
from .learn import ComBat, DropConstant, Impute, LassoSelector, MRMRSelector, ZScore
from .learn._base import FrameSelector, as_series
from .models import display_name, make_classifier
from .stats.metrics import youden_threshold

__all__ = [
    "DLRNConfig",
    "ImageFeatures",
    "extract_image_features",
    "combat_all",
    "PartialICCFilter",
    "RelevancePool",
    "selection_pipeline",
    "DLRNModel",
    "LassoHead",
    "fit_external",
    "repeated_cv",
    "CVResult",
    "random_split_aucs",
    "summarise_split_aucs",
    "evaluate",
    "record_metrics",
    "signature_table",
    "SHORT_CLF",
    "logit",
    "ajcc_t_stage",
    "reproducibility_subset",
    "gap_table",
    "derive_public_columns",
    "null_seed_aucs",
    "record_cv_aucs",
    "SECONDARY_CV_AUC",
    "fallback_deviations",
    "method_declarations",
    "survival_by_risk",
    "event_label_overlap",
    "comparison_audit_flags",
    "proxy_sentences",
]

#: Short classifier labels used in model names (the papers' abbreviations).
SHORT_CLF = {
    "lasso": "LASSO",
    "lr": "LR",
    "dt": "DT",
    "rf": "RF",
    "svm": "SVM",
    "adaboost": "AdaBoost",
    "svm_linear": "LinSVM",
    "lda": "LDA",
    "qda": "QDA",
    "gnb": "NB",
    "gbm": "GBM",
}
TABLE_METRICS = ("AUC", "ACC", "ER", "SEN", "SPE", "PPV", "NPV")

SOURCES = ("hcr", "deep")
_EPS = 1e-4


def logit(p) -> np.ndarray:
    """log(p / (1 - p)) with p clipped to [1e-4, 1 - 1e-4] (a probability as a linear score)."""
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


# ----------------------------------------------------------------------------- configuration


@dataclass
class DLRNConfig:
    """What the spec's ``design`` (and the profile's counts) say the pipeline is."""

    signatures: dict[str, list[str]]
    classifiers: list[str]
    smote: list[bool] = field(default_factory=lambda: [False, True])
    chosen: tuple[str, str, bool] = ("HD-Combined", "svm", True)
    chosen_name: str = "Radiomics"
    icc_threshold: float = 0.75
    icc_kind: str = "ICC(2,1)"
    mrmr_k: int = 15
    mrmr_pool: int | None = None
    lasso_cv: int = 10
    p_enter: float = 0.10
    p_keep: float = 0.05
    dlrn_C: float = 1.0
    cutoff: float = 0.5
    score_name: str = "Rad-signature"

    @classmethod
    def from_spec(cls, spec, counts: dict | None = None) -> DLRNConfig:
        d = spec.design if hasattr(spec, "design") else dict(spec.get("design", {}))
        counts = dict(counts or {})
        sigs = {name: list(v["sources"]) for name, v in d["signatures"].items()}
        clfs = [c["key"] if isinstance(c, dict) else str(c) for c in d["classifiers"]]
        ch = d.get("chosen_signature", {})
        sel = {s["step"]: s for s in d.get("selection", [])}
        cut = d.get("cutoff", {}).get("rule", "probability_0.5")
        cutoff = float(cut.split("_")[-1]) if str(cut).startswith("probability_") else 0.5
        pool = counts.get("mrmr_pool")
        return cls(
            signatures=sigs,
            classifiers=clfs,
            smote=[bool(x) for x in d.get("smote", [False, True])],
            chosen=(ch.get("signature", next(iter(sigs))), ch.get("classifier", clfs[0]), bool(ch.get("smote", False))),
            chosen_name=ch.get("model_name", "Radiomics"),
            icc_threshold=float(d.get("robustness", {}).get("icc_threshold", 0.75)),
            icc_kind=str(d.get("robustness", {}).get("icc_kind", "ICC(2,1)")),
            mrmr_k=int(counts.get("mrmr_k", sel.get("mrmr", {}).get("k", 15))),
            mrmr_pool=None if pool in (None, "none", 0) else int(pool),
            lasso_cv=int(counts.get("lasso_cv_folds", sel.get("lasso", {}).get("cv_folds", 10))),
            p_enter=float(d.get("clinical", {}).get("univariate_p", 0.10)),
            p_keep=float(d.get("clinical", {}).get("multivariate_p", 0.05)),
            cutoff=cutoff,
            score_name=str(d.get("dlrn", {}).get("score_name", "Rad-signature")),
        )

    @staticmethod
    def model_name(signature: str, clf: str, smote: bool) -> str:
        return f"{signature} {SHORT_CLF.get(clf, display_name(clf))}{'-SMOTE' if smote else ''}"

    def heads(self, which: str = "all") -> list[tuple[str, str, bool]]:
        """(signature, classifier, smote) of the heads to fit: ``"all"``, ``"chosen"`` (the chosen
        classifier/SMOTE on every signature) or ``"dlrn"`` (only the chosen signature's chosen head: what
        the DLRN needs)."""
        if which == "all":
            return [(s, c, m) for s in self.signatures for c in self.classifiers for m in self.smote]
        if which == "chosen":
            return [(s, self.chosen[1], self.chosen[2]) for s in self.signatures]
        if which == "dlrn":
            return [self.chosen]
        raise ValueError("heads must be 'all', 'chosen' or 'dlrn'")

    @property
    def chosen_model(self) -> str:
        return self.model_name(*self.chosen)

    @property
    def cutoff_models(self) -> list[str]:
        """The models whose data-driven (Youden) cut-off a fit learns when ``cutoff_folds`` is set."""
        return ["DLRN", self.chosen_name, "Clinical"]


# ----------------------------------------------------------------------------- image features


@dataclass
class ImageFeatures:
    """Image features of a cohort: ``features`` (patients x columns), the columns of each source
    (``sources["hcr"]``, ``sources["deep"]``), the HCR re-extractions on perturbed masks
    (``perturbed``: list of DataFrames, HCR columns only, possibly a subset of patients), the
    patients that failed, and what was run (``info``)."""

    features: pd.DataFrame
    sources: dict[str, list[str]]
    perturbed: list[pd.DataFrame]
    failures: pd.DataFrame
    info: dict

    def columns(self, sources: Sequence[str]) -> list[str]:
        return [c for s in sources for c in self.sources.get(s, [])]


def _radiomics_params(params, image_types) -> dict:
    from .features.radiomics import load_params

    p = copy.deepcopy(load_params(params))
    if image_types not in (None, "all"):
        p["imageType"] = {k: p["imageType"].get(k, {}) or {} for k in image_types}
    return p


def extract_image_features(
    cohort,
    modalities: Sequence[str],
    *,
    params="default",
    image_types=None,
    deep: dict | None = None,
    perturb_kinds: Sequence[str] = ("jitter",),
    perturb_ids: Sequence[str] | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool = False,
    torch_threads: int | None = 1,
) -> ImageFeatures:
    """HCR (+ DL) features of every modality of ``cohort``, and HCR features on perturbed masks.

    ``params``: PyRadiomics parameter name/path/dict; ``image_types``: keep only these image types
    (``None``/``"all"``: as in the file; the quick profile uses ``["Original"]``). ``deep``: keyword
    arguments of :func:`replicate.features.deep.extract_deep` (``backbone``, ``layer``, ``size``,
    ``crop_margin``, ``slices``) or ``None`` for no deep features. ``perturb_kinds``: mask
    perturbations (``replicate.features.perturb``) re-extracted for the ICC filter; ``perturb_ids``:
    the patients to perturb (default all; a "reproducibility subset"). ``torch_threads``: torch
    intra-op threads while extracting deep features (1 is fastest next to joblib workers on 2 cores).
    A patient that fails any extraction is dropped from ``features`` and listed in ``failures``; a
    patient whose mask cannot be perturbed (or whose perturbed extraction fails) keeps its features,
    is left out of the ICC only, and is listed in ``info["perturb_failures"]``.
    """
    from .features.perturb import perturbed_cases
    from .features.radiomics import extract_radiomics

    t0 = time.perf_counter()
    rparams = _radiomics_params(params, image_types)
    tables, sources = [], {"hcr": [], "deep": []}
    pert_tables: dict[str, list[pd.DataFrame]] = {k: [] for k in perturb_kinds}
    fails: list[tuple[str, str, str]] = []
    pert_fails: list[tuple[str, str, str]] = []
    info: dict[str, Any] = {
        "modalities": list(modalities),
        "n_hcr": {},
        "n_deep": {},
        "deep_null": {},
        "weights": None,
        "seconds": {},
    }
    for m in modalities:
        cases = cohort.cases(m)
        t = time.perf_counter()
        ft = extract_radiomics(cases, rparams, n_jobs=n_jobs, progress=progress)
        info["seconds"][f"hcr_{m}"] = round(time.perf_counter() - t, 1)
        info["radiomics_settings_hash"] = ft.info.get("settings_hash")
        for cid, reason in ft.failures[["case_id", "reason"]].itertuples(index=False):
            fails.append((cid, f"radiomics {m}", reason))
        f = ft.features.add_prefix(f"{m}_hcr_")
        info["n_hcr"][m] = f.shape[1]
        sources["hcr"] += list(f.columns)
        tables.append(f)
        if perturb_kinds:
            ids = set(map(str, perturb_ids)) if perturb_ids is not None else None
            sub = [c for c in cases if ids is None or c.case_id in ids]
            t = time.perf_counter()
            pc = perturbed_cases(sub, kinds=perturb_kinds, seed=seed)
            for cid, kind, reason in pc.failures[["case_id", "kind", "reason"]].itertuples(index=False):
                pert_fails.append((str(cid), f"perturb {m} {kind}", str(reason)))
            for k in perturb_kinds:
                pft = extract_radiomics(pc[k], rparams, n_jobs=n_jobs, progress=progress)
                for cid, reason in pft.failures[["case_id", "reason"]].itertuples(index=False):
                    pert_fails.append((str(cid), f"radiomics {m} perturbed {k}", str(reason)))
                pert_tables[k].append(pft.features.add_prefix(f"{m}_hcr_"))
            info["seconds"][f"hcr_perturbed_{m}"] = round(time.perf_counter() - t, 1)
        if deep is not None:
            from .features.deep import extract_deep

            t = time.perf_counter()
            old = None
            try:
                import torch

                if torch_threads:
                    old = torch.get_num_threads()
                    torch.set_num_threads(int(torch_threads))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    dft = extract_deep(cases, seed=seed, progress=progress, **deep)
            finally:
                if old is not None:
                    torch.set_num_threads(old)
            info["seconds"][f"deep_{m}"] = round(time.perf_counter() - t, 1)
            info["weights"] = dft.info.get("weights")
            for cid, reason in dft.failures[["case_id", "reason"]].itertuples(index=False):
                fails.append((cid, f"deep {m}", reason))
            d = dft.features.add_prefix(f"{m}_dl_")
            d.columns = [c.replace(f"{deep.get('backbone', 'resnet34')}_", "", 1) for c in d.columns]
            info["n_deep"][m] = d.shape[1]
            info["deep_null"][m] = int(((d.max() - d.min()).fillna(0) <= 0).sum())
            sources["deep"] += list(d.columns)
            tables.append(d)
    feats = pd.concat(tables, axis=1, join="inner")
    bad = {cid for cid, _, _ in fails}
    feats = feats.loc[[i for i in feats.index if i not in bad]]
    perturbed = []
    for parts in pert_tables.values():
        if parts:
            p = pd.concat(parts, axis=1, join="inner")
            perturbed.append(p.loc[[i for i in p.index if i in feats.index]])
    info["n_patients"] = int(len(feats))
    info["n_perturbed_patients"] = int(len(perturbed[0])) if perturbed else 0
    info["perturb_kinds"] = list(perturb_kinds)
    # patients without a usable re-extraction keep their features; they only drop out of the ICC
    info["perturb_failures"] = [{"patient_id": c, "stage": st, "reason": r} for c, st, r in pert_fails]
    info["seconds"]["total"] = round(time.perf_counter() - t0, 1)
    failures = pd.DataFrame(fails, columns=["patient_id", "stage", "reason"])
    return ImageFeatures(feats, {k: v for k, v in sources.items() if v}, perturbed, failures, info)


def combat_all(features: pd.DataFrame, batch: pd.Series) -> pd.DataFrame:
    """ComBat (neuroCombat, parametric empirical Bayes, no covariates) fitted on *all* rows, label-free.

    The transductive use a multi-centre paper makes when its training set is a single centre (the
    in-fold :class:`replicate.learn.ComBat` cannot harmonise a centre it has not seen): every
    centre is mapped to the pooled location/scale using all patients' feature distributions, never
    their labels. Columns constant within any batch are left unchanged.
    """
    b = batch.reindex(features.index)
    if b.isna().any():
        raise ValueError("combat_all: a patient has no batch")
    b = b.astype(str)
    a = features.to_numpy(dtype=float)
    ok = np.ones(a.shape[1], dtype=bool)
    for lv in b.unique():
        rows = (b == lv).to_numpy()
        if rows.sum() < 2:
            raise ValueError(f"combat_all: batch {lv!r} has fewer than 2 patients")
        ok &= np.nanstd(a[rows], axis=0) > 0
    out = features.astype(float).copy()
    if ok.any():
        cols = list(features.columns[ok])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[cols] = ComBat(batch=b).fit_transform(features[cols].astype(float))
    return out


# ----------------------------------------------------------------------------- selection steps


class PartialICCFilter(FrameSelector):
    """ICC filter on the columns that have re-extractions; other columns pass through.

    Like :class:`replicate.learn.ICCFilter`, but (a) only the columns present in every
    ``perturbed`` table are tested (e.g. the HCR columns; deep features pass), and (b) the ICC is
    computed on the training rows that have re-extractions (a reproducibility subset of the
    training patients, as papers re-segment a subset). With fewer than ``min_rows`` such rows the
    filter keeps every column (and says so in ``note_``); when every column of a table with no
    untested column fails the threshold, the most reproducible one is kept (``fallback_`` True).
    ``icc_`` holds the ICC of each tested column; ``n_tested_``, ``n_kept_tested_`` and ``n_rows_``
    what happened.
    """

    def __init__(self, perturbed=None, threshold: float = 0.75, kind: str = "ICC(2,1)", min_rows: int = 5):
        self.perturbed = perturbed
        self.threshold = threshold
        self.kind = kind
        self.min_rows = min_rows

    def fit(self, X, y=None):
        from .features.icc import icc

        df = self._fit_columns(X).astype(float)
        tables = [self.perturbed] if isinstance(self.perturbed, pd.DataFrame) else list(self.perturbed or [])
        tested = [c for c in df.columns if tables and all(c in t.columns for t in tables)]
        rows = [i for i in df.index if tables and all(i in t.index for t in tables)]
        keep = np.ones(df.shape[1], dtype=bool)
        self.icc_ = pd.Series(dtype=float)
        self.n_rows_ = len(rows)
        self.note_ = None
        self.fallback_ = False
        if tested and len(rows) >= int(self.min_rows):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                vals = icc(df.loc[rows, tested], [t.loc[rows, tested] for t in tables], kind=self.kind)
            self.icc_ = pd.Series(vals, index=tested, dtype=float)
            ok = (self.icc_ > float(self.threshold)).fillna(False)
            pos = {c: j for j, c in enumerate(df.columns)}
            for c in tested:
                keep[pos[c]] = bool(ok[c])
            if not keep.any():  # never hand an empty table on: keep the most reproducible column
                keep[pos[self.icc_.fillna(-np.inf).idxmax()]] = True
                self.fallback_ = True
        elif tested:
            self.note_ = f"only {len(rows)} training patient(s) have re-extractions: no ICC filtering"
        self.n_tested_ = len(tested)
        self.n_kept_tested_ = int(sum(keep[j] for j, c in enumerate(df.columns) if c in set(tested)))
        self._set_support(keep)
        return self


class RelevancePool(FrameSelector):
    """Keep the ``k`` columns with the largest ANOVA F statistic on the training rows (``None``: all).

    A speed-up before mRMR, whose first criterion is this same relevance.
    """

    def __init__(self, k: int | None = None):
        self.k = k

    def fit(self, X, y):
        from sklearn.feature_selection import f_classif

        df = self._fit_columns(X).astype(float)
        if self.k is None or int(self.k) >= df.shape[1]:
            self._set_support(np.ones(df.shape[1], dtype=bool))
            return self
        ys = as_series(y, df.index)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            f, _ = f_classif(df.to_numpy(), ys.to_numpy())
        f = np.nan_to_num(f, nan=-1.0)
        order = np.argsort(-f, kind="stable")[: int(self.k)]
        keep = np.zeros(df.shape[1], dtype=bool)
        keep[order] = True
        self._set_support(keep)
        return self


def selection_pipeline(
    config: DLRNConfig, *, perturbed=None, batch: pd.Series | None = None, seed: int = 0
) -> Pipeline:
    """DropConstant -> [ICC filter] -> [ComBat] -> z-score -> [relevance pool] -> mRMR -> LASSO (CV penalty)."""
    steps: list[tuple[str, Any]] = [("drop_constant", DropConstant())]
    if perturbed is not None and len(perturbed):
        steps.append(("icc", PartialICCFilter(perturbed, config.icc_threshold, config.icc_kind)))
    if batch is not None:
        steps.append(("combat", ComBat(batch=batch)))
    steps.append(("zscore", ZScore()))
    if config.mrmr_pool:
        steps.append(("pool", RelevancePool(config.mrmr_pool)))
    steps.append(("mrmr", MRMRSelector(k=config.mrmr_k)))
    steps.append(("lasso", LassoSelector(cv=config.lasso_cv, random_state=seed)))
    return Pipeline(steps)


# ----------------------------------------------------------------------------- the whole model


class LassoHead(BaseEstimator):
    """The signature's own LASSO logistic model as its classifier (classifier key ``"lasso"``).

    Tian et al. 2024 score patients with the LASSO linear predictor itself ("a linear combination of the
    selected features weighted by their respective LASSO coefficients"): no second classifier is fitted.
    ``predict_proba`` is the logistic function of that score on the selected (z-scored) features.
    """

    def __init__(self, lasso=None):
        self.lasso = lasso

    def fit(self, X=None, y=None):  # the LASSO was fitted by the selection pipeline
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, Z) -> np.ndarray:
        coef = self.lasso.coef_[self.lasso.support_]
        a = Z[list(coef.index)].to_numpy(dtype=float) if isinstance(Z, pd.DataFrame) else np.asarray(Z, dtype=float)
        return float(self.lasso.intercept_) + a @ coef.to_numpy()

    def predict_proba(self, Z) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(Z)))
        return np.column_stack([1 - p, p])


def _make_head(clf: str, smote: bool, sel: Pipeline, Z, ys, seed: int):
    """A fitted head on the selected features ``Z``: a ``replicate.models`` classifier, or ``"lasso"``
    (:class:`LassoHead`, the selection pipeline's own LASSO; no SMOTE)."""
    if clf == "lasso":
        if smote:
            raise ValueError("the 'lasso' head is the selection LASSO itself: SMOTE does not apply")
        return LassoHead(sel.named_steps["lasso"]).fit()
    return make_classifier(clf, seed=seed, smote=smote).fit(Z, ys)


def _pos_proba(model, X) -> np.ndarray:
    p = np.asarray(model.predict_proba(X))
    classes = list(getattr(model, "classes_", [0, 1]))
    return p[:, classes.index(max(classes))]


class DLRNModel(BaseEstimator):
    """Signatures x heads, the clinical model and the DLRN, fitted together on the training rows.

    Parameters
    ----------
    config : DLRNConfig
    signature_columns : dict signature -> list of feature columns of ``X``
    clinical_columns : candidate clinical variables (numeric columns of ``X``; NaN imputed with the
        training median)
    perturbed : HCR re-extractions for the ICC filter (see :class:`PartialICCFilter`)
    batch : centre of every patient (Series by patient id) for in-fold ComBat, or None
    heads : ``"all"``, ``"chosen"`` or ``"dlrn"`` (see :meth:`DLRNConfig.heads`)
    seed : seeds every random step
    cutoff_folds : learn a Youden cut-off for each of ``config.cutoff_models`` from the out-of-fold
        probabilities of a stratified ``cutoff_folds``-fold CV *inside the training rows* (the DLRN
        model refitted, heads ``"dlrn"``, on each inner training part); ``None``: no learned cut-off

    After ``fit``: ``selectors_`` (signature -> fitted selection pipeline), ``heads_`` (model name
    -> fitted classifier), ``clinical_`` (ClinicalLogit), ``dlrn_`` (LogisticRegression on
    ``dlrn_columns_``), ``cutoffs_`` (model -> learned cut-off; empty without ``cutoff_folds``),
    ``info_`` (selected features, ICC counts, clinical selection, ``fallbacks``: every fallback this
    fit took, see :func:`fallback_deviations`). :meth:`predict_scores` gives every model's
    probability for new rows.
    """

    def __init__(
        self,
        config: DLRNConfig,
        signature_columns: dict,
        clinical_columns: Sequence[str],
        perturbed=None,
        batch: pd.Series | None = None,
        heads: str = "all",
        seed: int = 0,
        cutoff_folds: int | None = None,
    ):
        self.config = config
        self.signature_columns = signature_columns
        self.clinical_columns = clinical_columns
        self.perturbed = perturbed
        self.batch = batch
        self.heads = heads
        self.seed = seed
        self.cutoff_folds = cutoff_folds

    # -- fitting
    def fit(self, X: pd.DataFrame, y):
        from .clinical import ClinicalLogit

        cfg = self.config
        ys = as_series(y, X.index).astype(int)
        self.classes_ = np.array([0, 1])
        self.selectors_, self.heads_, self.info_ = {}, {}, {"signatures": {}}
        heads = cfg.heads(self.heads)
        needed = {s for s, _, _ in heads} | {cfg.chosen[0]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for sig in [s for s in self.signature_columns if s in needed]:
                cols = list(self.signature_columns[sig])
                sel = selection_pipeline(cfg, perturbed=self.perturbed, batch=self.batch, seed=self.seed)
                sel.fit(X[cols], ys)
                self.selectors_[sig] = sel
                self.info_["signatures"][sig] = self._selection_info(sel, cols)
                Z = sel.transform(X[cols])
                for s, clf, smote in heads:
                    if s != sig:
                        continue
                    name = cfg.model_name(s, clf, smote)
                    self.heads_[name] = _make_head(clf, smote, sel, Z, ys, self.seed)
                if cfg.chosen[0] == sig and cfg.chosen_model not in self.heads_:
                    self.heads_[cfg.chosen_model] = _make_head(cfg.chosen[1], cfg.chosen[2], sel, Z, ys, self.seed)
            # clinical model
            clin = list(self.clinical_columns)
            self.imputer_ = Impute("median").fit(X[clin])
            C = self.imputer_.transform(X[clin])
            self.clinical_ = ClinicalLogit(candidates=clin, p_enter=cfg.p_enter, p_keep=cfg.p_keep).fit(C, ys)
            self.info_["clinical_selected"] = list(self.clinical_.selected_)
            self.info_["clinical_fallback"] = self.clinical_.fallback_
            # DLRN: independent clinical predictors + the chosen signature's score
            D = self._dlrn_design(X, C)
            self.dlrn_columns_ = list(D.columns)
            self.dlrn_ = LogisticRegression(C=cfg.dlrn_C, max_iter=5000).fit(D, ys)
            self.dlrn_train_ = D
        self.info_["dlrn_coef"] = dict(zip(self.dlrn_columns_, self.dlrn_.coef_.ravel().round(4).tolist()))
        self.info_["fallbacks"] = self._fallbacks()
        self.cutoffs_ = self._learn_cutoffs(X, ys) if self.cutoff_folds else {}
        self.info_["cutoffs"] = dict(self.cutoffs_)
        return self

    def _learn_cutoffs(self, X: pd.DataFrame, ys: pd.Series) -> dict[str, float]:
        """Youden cut-offs from inner out-of-fold probabilities of the training rows ``X`` only.

        The inner folds are stratified and seeded; each inner model is this model refitted from scratch
        (heads ``"dlrn"``, no cut-off of its own) on the other inner folds. Neither the patients this model
        will later score nor its own in-sample scores enter the choice.
        """
        k = min(int(self.cutoff_folds), int(ys.value_counts().min()))
        if k < 2:
            raise ValueError(
                f"cutoff_folds: the training rows hold {int(ys.value_counts().min())} patient(s) of "
                "one class; an inner cross-validation needs at least 2"
            )
        inner = StratifiedKFold(n_splits=k, shuffle=True, random_state=self.seed)
        models = self.config.cutoff_models
        oof = pd.DataFrame(np.nan, index=X.index, columns=models)
        for tr, te in inner.split(np.zeros(len(ys)), ys.to_numpy()):
            sub = type(self)(
                self.config,
                self.signature_columns,
                self.clinical_columns,
                perturbed=self.perturbed,
                batch=self.batch,
                heads="dlrn",
                seed=self.seed,
                cutoff_folds=None,
            )
            sub.fit(X.iloc[tr], ys.iloc[tr])
            oof.iloc[te] = sub.predict_scores(X.iloc[te])[models].to_numpy()
            self.info_.setdefault("inner_fits", []).append({"fallbacks": sub.info_["fallbacks"]})
        self.info_["cutoff_inner_folds"] = k
        return {m: float(youden_threshold(ys, oof[m])) for m in models}

    def _fallbacks(self) -> list[dict]:
        """Every fallback this fit took: ``{"step", "where", "detail"}`` (see :func:`fallback_deviations`)."""
        out = []
        for sig, sel in self.selectors_.items():
            icc = sel.named_steps.get("icc")
            if icc is not None and icc.note_:
                out.append({"step": "icc_skipped", "where": sig, "detail": icc.note_})
            if icc is not None and icc.fallback_:
                out.append({"step": "icc_keep_one", "where": sig, "detail": "no column passed the ICC threshold"})
            lasso = sel.named_steps["lasso"]
            if lasso.fallback_:
                out.append({"step": "lasso_keep_one", "where": sig, "detail": ", ".join(lasso.selected_features_)})
            if getattr(lasso, "n_splits_", lasso.cv) < int(lasso.cv):
                out.append({"step": "lasso_fewer_folds", "where": sig, "detail": f"{lasso.n_splits_} folds"})
        for name, head in self.heads_.items():
            steps = getattr(head, "named_steps", {})
            sm = steps.get("smote") if hasattr(steps, "get") else None
            used = getattr(sm, "k_neighbors_used_", None) if sm is not None else None
            if used is not None and used < int(sm.k_neighbors):
                out.append(
                    {
                        "step": "smote_no_samples" if used == 0 else "smote_fewer_neighbours",
                        "where": name,
                        "detail": f"k_neighbors {used}",
                    }
                )
        for part in (self.clinical_.fallback_ or "").split("; final model separated"):
            if "best univariate variable" in part:
                out.append({"step": "clinical", "where": "Clinical", "detail": part})
            elif "L2 penalty" in part:
                out.append({"step": "clinical_l2", "where": "Clinical", "detail": part})
        return out

    @staticmethod
    def _selection_info(sel: Pipeline, cols: list[str]) -> dict:
        out = {"n_in": len(cols), "n_after_null": int(sel.named_steps["drop_constant"].n_features_selected_)}
        icc = sel.named_steps.get("icc")
        if icc is not None:
            out.update(
                icc_tested=int(icc.n_tested_),
                icc_kept=int(icc.n_kept_tested_),
                icc_rows=int(icc.n_rows_),
                icc_kept_columns=[c for c in icc.selected_features_ if c in icc.icc_.index],
            )
        out["mrmr"] = list(sel.named_steps["mrmr"].ranking_)
        lasso = sel.named_steps["lasso"]
        out["lasso_coef"] = {k: float(v) for k, v in lasso.coef_[lasso.support_].items()}
        out["lasso_C"] = getattr(lasso, "C_", None)
        out["lasso_fallback"] = bool(lasso.fallback_)
        return out

    def feature_counts(self, modalities: Sequence[str]) -> pd.DataFrame:
        """Features per signature and modality/source after each step (extracted, non-null, ICC, mRMR, LASSO)."""
        rows = []
        for sig, sel in self.selectors_.items():
            cols = list(self.signature_columns[sig])
            steps = [("extracted", cols), ("non-null", sel.named_steps["drop_constant"].selected_features_)]
            if "icc" in sel.named_steps:
                steps.append((f"ICC > {self.config.icc_threshold:.2f}", sel.named_steps["icc"].selected_features_))
            steps.append(("mRMR", sel.named_steps["mrmr"].selected_features_))
            steps.append(("LASSO", sel.named_steps["lasso"].selected_features_))
            for m in modalities:
                for src, tag in (("HCR", "_hcr_"), ("DL", "_dl_")):
                    if not any(c.startswith(m + tag) for c in cols):
                        continue
                    row = {"signature": sig, "modality": m, "source": src}
                    for name, kept in steps:
                        row[name] = sum(1 for c in kept if c.startswith(m + tag))
                    rows.append(row)
        return pd.DataFrame(rows)

    def _chosen_score(self, X: pd.DataFrame) -> np.ndarray:
        sig = self.config.chosen[0]
        Z = self.selectors_[sig].transform(X[list(self.signature_columns[sig])])
        return logit(_pos_proba(self.heads_[self.config.chosen_model], Z))

    def _dlrn_design(self, X: pd.DataFrame, C: pd.DataFrame) -> pd.DataFrame:
        D = C.loc[:, list(self.clinical_.selected_)].astype(float).copy()
        D[self.config.score_name] = self._chosen_score(X)
        return D

    # -- predicting
    def rad_score(self, X: pd.DataFrame, signature: str | None = None) -> pd.Series:
        """The LASSO linear predictor of a signature (the papers' "Rad-score")."""
        sig = signature or self.config.chosen[0]
        sel = self.selectors_[sig]
        Z = sel[:-1].transform(X[list(self.signature_columns[sig])])
        return sel.named_steps["lasso"].rad_score(Z)

    def predict_scores(self, X: pd.DataFrame) -> pd.DataFrame:
        """Probability of the positive class for every model (columns) and row of ``X``."""
        out = {}
        for sig, sel in self.selectors_.items():
            Z = sel.transform(X[list(self.signature_columns[sig])])
            for name, m in self.heads_.items():
                if name.startswith(sig + " "):
                    out[name] = _pos_proba(m, Z)
        out[self.config.chosen_name] = out[self.config.chosen_model]
        C = self.imputer_.transform(X[list(self.clinical_columns)])
        out["Clinical"] = self.clinical_.predict_proba(C)[:, 1]
        D = self._dlrn_design(X, C)
        out["DLRN"] = self.dlrn_.predict_proba(D[self.dlrn_columns_])[:, 1]
        return pd.DataFrame(out, index=X.index)

    def nomogram_inputs(self) -> dict:
        """Arguments of :func:`replicate.plots.nomogram_plot` for the fitted DLRN."""
        from .clinical import nomogram_inputs

        return nomogram_inputs(self.dlrn_, self.dlrn_train_)


# ----------------------------------------------------------------------------- helpers


def ajcc_t_stage(diameter_mm) -> pd.Series | np.ndarray:
    """AJCC 8th-edition T category of extremity/trunk (and retroperitoneal) soft-tissue sarcoma from the
    greatest tumour dimension: T1 <= 50 mm, T2 <= 100 mm, T3 <= 150 mm, T4 > 150 mm (1-4; NaN stays NaN)."""
    d = pd.Series(diameter_mm, dtype=float) if not isinstance(diameter_mm, pd.Series) else diameter_mm.astype(float)
    out = pd.cut(d, [-np.inf, 50, 100, 150, np.inf], labels=[1, 2, 3, 4]).astype(float)
    return out if isinstance(diameter_mm, pd.Series) else out.to_numpy()


def reproducibility_subset(
    table: pd.DataFrame, n: int | None, seed: int = 0, by: str | None = None
) -> list[str] | None:
    """A seeded, label-free random subset of ``n`` patients (stratified by ``by``, e.g. centre) whose masks
    are re-segmented (perturbed) for the ICC filter; ``None``: every patient."""
    if n is None or int(n) >= len(table):
        return None
    rng = np.random.default_rng(seed)
    if by is None:
        return sorted(rng.choice(table.index.to_numpy(), int(n), replace=False).tolist())
    out = []
    frac = int(n) / len(table)
    for _, g in table.groupby(by, sort=True):
        k = max(2, int(round(frac * len(g))))
        out += rng.choice(g.index.to_numpy(), min(k, len(g)), replace=False).tolist()
    return sorted(out)


GRADE_CODES = {"Low": 1.0, "Intermediate": 2.0, "High": 3.0}


def derive_public_columns(chapter: str, table: pd.DataFrame, features: pd.DataFrame | None = None) -> pd.DataFrame:
    """Add the clinical columns the public TCIA/IBSI cohort lacks as such (in place; returns ``table``).

    ``sts``: ``gender`` (male = 1), ``grade_code`` (Low/Intermediate/High = 1/2/3, missing stays NaN) and
    ``t_stage`` (AJCC 8th from the T1 mask's maximum 3-D diameter, PyRadiomics' shape feature in
    ``features``). ``rls``: ``female`` (female = 1), ``grade_code``, ``diameter_mm`` (maximum 3-D
    diameter of the CT mask) and ``size_gt10`` (> 100 mm). Label-free: no outcome is read.
    """
    table["grade_code"] = table["grade"].map(GRADE_CODES)
    if chapter == "sts":
        if features is None:
            raise ValueError("sts: the T-stage needs the T1 features (Maximum3DDiameter)")
        table["gender"] = (table["sex"].str.lower() == "male").astype(float)
        table["t_stage"] = ajcc_t_stage(features["T1_hcr_original_shape_Maximum3DDiameter"]).reindex(table.index)
    elif chapter == "rls":
        from .tumour_size import max_3d_diameters

        table["female"] = (table["sex"].str.lower() == "female").astype(float)
        table["diameter_mm"] = max_3d_diameters(table["mask_CT"])
        table["size_gt10"] = (table["diameter_mm"] > 100).astype(float)
    else:
        raise ValueError(f"derive_public_columns: unknown chapter {chapter!r}")
    return table


def gap_table(rows: dict) -> pd.DataFrame:
    """The proxy gap as a table: ``{aspect: (the paper, this run)}`` -> one row per aspect."""
    return pd.DataFrame([{"": k, "paper": p, "this run": o} for k, (p, o) in rows.items()]).set_index("")


# ----------------------------------------------------------------------------- protocols


def fit_external(make_model: Callable[[], DLRNModel], X: pd.DataFrame, y: pd.Series, train_ids, test_ids):
    """Fit once on the training patients; ``(model, scores_train, scores_test)`` (apparent / external)."""
    train_ids, test_ids = list(train_ids), list(test_ids)
    model = make_model().fit(X.loc[train_ids], y.loc[train_ids])
    return model, model.predict_scores(X.loc[train_ids]), model.predict_scores(X.loc[test_ids])


@dataclass
class CVResult(validation.CVResult):
    """:class:`replicate.validation.CVResult` of a DLRN model (every head at once), plus the cut-offs each
    fold model learned on its own training rows: ``fold_cutoffs`` (empty dicts without ``cutoff_folds``);
    ``fold_info``: each fold model's ``info_`` (``{"repeat", "fold", "info"}``).
    """

    fold_cutoffs: list = field(default_factory=list)

    def predictions_at_cutoff(self, model: str) -> pd.DataFrame:
        """0/1 out-of-fold calls (patients x repeats): each patient's score against the cut-off its own
        fold model learned on that fold's training rows (:attr:`DLRNModel.cutoffs_`)."""
        if not self.fold_cutoffs or not all(model in c for c in self.fold_cutoffs):
            raise ValueError(f"no learned cut-off for {model!r}: run repeated_cv with cutoff_folds")
        thr = np.array(
            [
                [
                    self.fold_cutoffs[r * self.n_splits + int(self.fold_of.iat[i, r])][model]
                    for r in range(self.n_repeats)
                ]
                for i in range(len(self.y))
            ]
        )
        calls = (self.per_repeat[model].to_numpy() >= thr).astype(int)
        return pd.DataFrame(calls, index=self.y.index, columns=self.per_repeat[model].columns)

    def cutoff_metrics(self, model: str, metrics: Sequence[str] = TABLE_METRICS[1:]) -> dict[str, float]:
        """Threshold metrics of :meth:`predictions_at_cutoff`, computed per repeat and averaged over repeats."""
        from .stats.metrics import confusion_metrics

        calls = self.predictions_at_cutoff(model)
        per = [confusion_metrics(self.y.to_numpy(), calls[r].to_numpy()) for r in calls.columns]
        return {k: float(np.nanmean([p[k][0] for p in per])) for k in metrics}


def _fold_state(fitted) -> tuple[dict, dict]:
    """What :func:`repeated_cv` keeps of each fold model: its ``info_`` and its learned cut-offs."""
    return fitted.info_, dict(getattr(fitted, "cutoffs_", {}) or {})


def repeated_cv(
    make_model,
    X: pd.DataFrame,
    y: pd.Series,
    n_splits: int = 5,
    n_repeats: int = 10,
    seed: int = 0,
    n_jobs: int | None = 1,
) -> CVResult:
    """Repeated stratified K-fold of a DLRN model: :func:`replicate.validation.repeated_cv` (the whole model
    refitted in every fold, every fold's test AUC kept for :meth:`CVResult.auc_summary`), keeping each fold
    model's ``info_`` and learned cut-offs."""
    y = as_series(y, X.index).astype(int)
    res = validation.repeated_cv(make_model, X, y, n_splits, n_repeats, seed, n_jobs=n_jobs, inspect=_fold_state)
    base = {f.name: getattr(res, f.name) for f in fields(validation.CVResult)}
    base["fold_info"] = [{**d, "info": d["info"][0]} for d in res.fold_info]
    return CVResult(**base, fold_cutoffs=[d["info"][1] for d in res.fold_info])


def _fit_info(fitted) -> dict:
    return fitted.info_


def random_split_aucs(
    make_model,
    X: pd.DataFrame,
    y: pd.Series,
    n_splits: int = 100,
    test_size: float = 0.2,
    seed: int = 0,
    n_jobs: int | None = 1,
) -> pd.DataFrame:
    """WORC's evaluation: ``n_splits`` stratified random train/test splits
    (:func:`replicate.validation.random_splits`) scored by :func:`replicate.validation.split_scores`; one row
    per split and model with the test AUC. Each split model's ``info_`` is in ``attrs["fit_info"]``."""
    y = as_series(y, X.index).astype(int)
    splits = validation.random_splits(y, n_splits=n_splits, test_size=test_size, seed=seed)
    return validation.split_scores(make_model, X, y, splits, ("AUC",), n_jobs=n_jobs, inspect=_fit_info)


def summarise_split_aucs(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean AUC per model over the splits with the corrected resampled t-test CI (Nadeau & Bengio)."""
    from .stats.resampled_ttest import corrected_resampled_ttest_ci

    rows = []
    for m, g in df.groupby("model", sort=False):
        mean, lo, hi = corrected_resampled_ttest_ci(
            g["AUC"].to_numpy(), float(g["n_train"].mean()), float(g["n_test"].mean()), level
        )
        rows.append(
            {
                "model": m,
                "mean_AUC": mean,
                "low": lo,
                "high": hi,
                "sd": float(g["AUC"].std(ddof=1)),
                "n_splits": int(len(g)),
            }
        )
    return pd.DataFrame(rows).set_index("model")


def null_seed_aucs(
    chapter: str,
    seed: int,
    X: pd.DataFrame,
    y_true: pd.Series,
    make_model: Callable[[int], Any],
    counts: dict,
    models: Sequence[str],
    rename: dict | None = None,
    scratch=None,
) -> dict[str, dict]:
    """One seed of a chapter's null distribution (:func:`replicate.null.run_null`'s ``one_seed``).

    The outcome is permuted exactly as the chapter permutes it with ``null_labels=True`` at ``seed``; the
    repeated CV (the quick profile's ``cv_repeats`` x ``cv_folds``, split seed ``child_seed(1)`` as in the
    chapter) refits ``make_model(seed)`` in every fold. Per model: the headline (mean test-fold AUC, corrected
    resampled SE) as ``model`` and the secondary (repeat-averaged out-of-fold AUC, DeLong SE) as
    ``"<model> (pooled OOF)"``; for the first model also ``"<model> (per-repeat pooled)"``: the mean of the
    R per-repeat pooled AUCs with the corrected resampled SE of those R values (the alternative the chapter
    does not use: the null spread shows whether that SE covers the patient-sampling error).
    """
    import tempfile

    from .chapter import start

    with tempfile.TemporaryDirectory() as tmp:
        ctx = start(chapter, data="public", seed=seed, profile="quick", null_labels=True, output_dir=scratch or tmp)
        y = ctx.labels(y_true)
        cv = repeated_cv(
            lambda: make_model(seed),
            X,
            y,
            n_splits=counts["cv_folds"],
            n_repeats=counts["cv_repeats"],
            seed=ctx.child_seed(1),
            n_jobs=1,
        )
    from .stats.resampled_ttest import corrected_se

    summ = cv.auc_summary().rename(index=rename or {})
    per_repeat = cv.auc_per_repeat.rename(columns=rename or {})
    npos, nneg = int(y.sum()), int(len(y) - y.sum())
    n_test = len(y) / counts["cv_folds"]
    out = {}
    for i, m in enumerate(models):
        r = summ.loc[m]
        base = {"cohort": "validation", "n_positive": npos, "n_negative": nneg}
        out[m] = {**base, "auc": float(r["mean"]), "se": float(r["se"])}
        out[f"{m} (pooled OOF)"] = {**base, "auc": float(r["pooled"]), "se": float(r["pooled_se"])}
        if i == 0:  # the rejected alternative, for the record: a t-interval on the R per-repeat pooled AUCs
            v = per_repeat[m].to_numpy()
            out[f"{m} (per-repeat pooled)"] = {
                **base,
                "auc": float(v.mean()),
                "se": corrected_se(v, len(y) - n_test, n_test),
            }
    return out


# ----------------------------------------------------------------------------- evaluation


def evaluate(y, score, threshold: float = 0.5) -> dict[str, tuple[float, float, float]]:
    """AUC (DeLong CI) and ACC, ER, SEN, SPE, PPV, NPV (Wilson CIs) of ``score >= threshold``."""
    from .stats.metrics import classification_report

    return classification_report(np.asarray(y).astype(int), np.asarray(score, dtype=float), threshold)


def record_metrics(results, model: str, cohort: str, report: dict, metrics=TABLE_METRICS, **extra) -> None:
    """``results.add_metric`` for each metric of an :func:`evaluate` report (NaN -> not computed)."""
    for k in metrics:
        v, lo, hi = report[k]
        ok = np.isfinite(v)
        ci = (lo, hi) if ok and np.isfinite(lo) and np.isfinite(hi) else None
        results.add_metric(model, cohort, k, float(v) if ok else None, ci, **extra)


SECONDARY_CV_AUC = "secondary: repeat-averaged out-of-fold prediction"


def record_cv_aucs(
    results, cv: CVResult, models: Sequence[str], cohort: str = "validation", rename: dict | None = None
) -> pd.DataFrame:
    """Record each model's repeated-CV AUC: the headline (mean test-fold AUC, corrected resampled t-test CI,
    its SE passed as ``se`` so the proxy's resolution uses it) and, as ``variable`` :data:`SECONDARY_CV_AUC`,
    the AUC of the repeat-averaged out-of-fold prediction (DeLong CI). Returns the summary table."""
    summ = cv.auc_summary().rename(index=rename or {})
    design = f"{cv.n_repeats} repeats x {cv.n_splits} folds"
    for m in models:
        r = summ.loc[m]
        results.add_metric(
            m,
            cohort,
            "AUC",
            r["mean"],
            (r["low"], r["high"]),
            se=r["se"],
            note=f"mean of the {int(r['n_folds'])} test-fold AUCs ({design}); 95% CI by the corrected "
            "resampled t-test (Nadeau & Bengio), whose SE also sets the resolution",
        )
        results.add_metric(
            m,
            cohort,
            "AUC",
            r["pooled"],
            (r["pooled_low"], r["pooled_high"]),
            variable=SECONDARY_CV_AUC,
            note="AUC of each patient's out-of-fold probability averaged over the repeats, DeLong CI "
            "(treats the averaged predictions as one set of scores)",
        )
    return summ


def signature_table(
    y, scores: pd.DataFrame, models: Sequence[str], threshold: float = 0.5, decimals: int = 3
) -> pd.DataFrame:
    """AUC [95% CI], ACC, SEN, SPE of each model (the papers' Tables S4/S5)."""
    rows = []
    for m in models:
        r = evaluate(y, scores[m], threshold)
        sig, _, head = m.rpartition(" ")
        rows.append(
            {
                "signature": sig,
                "classifier": head.replace("-SMOTE", ""),
                "SMOTE": head.endswith("-SMOTE"),
                "AUC": round(r["AUC"][0], decimals),
                "AUC 95% CI": f"{r['AUC'][1]:.{decimals}f}-{r['AUC'][2]:.{decimals}f}",
                "ACC": round(r["ACC"][0], decimals),
                "SEN": round(r["SEN"][0], decimals),
                "SPE": round(r["SPE"][0], decimals),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- what the code did (deviations)

_FALLBACK_WORDS = {
    "lasso_keep_one": (
        "LASSO ({where}): the cross-validated penalty removed every feature; the single feature "
        "that enters the LASSO path first was kept and refitted without penalty (LassoSelector's "
        "'never empty' fallback)"
    ),
    "lasso_fewer_folds": (
        "LASSO ({where}): the penalty's cross-validation used fewer folds than declared, because "
        "the training rows held fewer patients of one class"
    ),
    "icc_keep_one": (
        "ICC filter ({where}): no hand-crafted feature reached the ICC threshold; the most reproducible one was kept"
    ),
    "icc_skipped": (
        "ICC filter ({where}): fewer than 5 training patients had a re-extraction, so no ICC filtering was done"
    ),
    "smote_fewer_neighbours": (
        "SMOTE: the minority class of the training rows had no more than k_neighbors "
        "patients, so fewer neighbours were used"
    ),
    "smote_no_samples": "SMOTE: a single minority training patient, so no synthetic patient was made",
    "clinical_l2": (
        "Clinical model: the final logistic model was separated (it predicted the training rows "
        "perfectly), so it was refitted with a mild L2 penalty (C = 1)"
    ),
}


def _walk_fits(infos):
    for info in infos:
        yield info
        yield from _walk_fits(info.get("inner_fits", []))


def fallback_deviations(infos: Sequence[dict], what: str = "model fits") -> list[str]:
    """The fallbacks the fits behind ``infos`` (``DLRNModel.info_`` dicts, e.g. every CV fold plus the
    apparent fit) actually took, one sentence each with how often: ``[]`` when none was taken.

    Inner cut-off fits (``info_["inner_fits"]``) count as fits too. Sentences are the chapter's
    deviations: a fallback is a departure from the paper's method, even when it is rare.
    """
    fits = list(_walk_fits(infos))
    n = len(fits)
    events: dict[tuple, list] = {}
    for i, info in enumerate(fits):
        for fb in info.get("fallbacks", []):
            where = fb["where"] if fb["step"] not in ("smote_fewer_neighbours", "smote_no_samples") else ""
            # clinical: group by the reason, without its parenthesised particulars (e.g. the separated variables)
            key = (fb["step"], where, fb["detail"].split(";")[0].split(" (")[0] if fb["step"] == "clinical" else "")
            events.setdefault(key, []).append((i, fb))
    out = []
    for (step, where, head), evs in events.items():
        k = len({i for i, _ in evs})
        share = f"in {k} of {n} {what}"
        if step == "clinical":
            chosen = pd.Series(
                [
                    fb["detail"].split("variable ")[-1].strip("'")
                    for _, fb in evs
                    if "best univariate variable" in fb["detail"]
                ]
            ).value_counts()
            tail = (
                (
                    "; the single variable with the smallest univariate P was used instead (ClinicalLogit's "
                    "fallback): " + ", ".join(f"{v} ({c}x)" for v, c in chosen.items())
                )
                if len(chosen)
                else ""
            )
            out.append(f"Clinical model {share}: {head}{tail}.")
        else:
            out.append(f"{_FALLBACK_WORDS[step].format(where=where)} ({share}).")
    return out


_CLASSIFIER_PARAMS = {
    "SVC": ("kernel", "C", "gamma", "probability", "class_weight"),
    "SVMClassifier": ("kernel", "C", "gamma", "probability", "class_weight"),
    "LogisticRegression": ("penalty", "l1_ratio", "C", "solver", "class_weight"),
    "DecisionTreeClassifier": ("criterion", "max_depth", "min_samples_leaf"),
    "RandomForestClassifier": ("n_estimators", "max_features", "max_depth"),
    "AdaBoostClassifier": ("n_estimators", "learning_rate", "estimator"),
}


def _params_text(est) -> str:
    names = _CLASSIFIER_PARAMS.get(type(est).__name__, ())
    p = est.get_params(deep=False)
    parts = [f"{k}={p[k]!r}" for k in names if k in p and k != "estimator" and p[k] != "deprecated"]
    if type(est).__name__ == "AdaBoostClassifier" and p.get("estimator") is None:
        parts.append("depth-1 decision stumps")
    if type(est).__name__ == "LogisticRegression" and p.get("l1_ratio") in (0, 0.0):
        parts.append("an L2 penalty")
    if p.get("probability"):
        parts.append("probabilities by Platt scaling (libsvm's internal 5-fold CV)")
    return f"{type(est).__name__.replace('SVMClassifier', 'SVC')}({', '.join(parts)})"


def method_declarations(model: DLRNModel) -> list[str]:
    """Fixed method choices of a :class:`DLRNModel` (fitted or not), read from the objects its fit builds
    (the same factories): untuned classifier settings, SMOTE's neighbours, the kind of 'LASSO', z-scoring."""
    cfg = model.config
    out = []
    clfs, smote_k = {}, set()
    for _, clf, smote in cfg.heads(model.heads) + [cfg.chosen]:
        if clf == "lasso":
            continue
        head = make_classifier(clf, seed=model.seed, smote=smote)
        est = head.named_steps["clf"]
        clfs.setdefault(type(est).__name__, est)
        if smote:
            smote_k.add(int(head.named_steps["smote"].k_neighbors))
    if clfs:
        out.append(
            "Classifiers run with fixed library settings, not tuned (the paper reports no tuning): "
            + "; ".join(_params_text(c) for c in clfs.values())
            + "."
            + (
                f" SMOTE: k_neighbors={min(smote_k)}, the minority class oversampled to balance, on the "
                "training rows of each fit only."
                if smote_k
                else ""
            )
        )
    lp = selection_pipeline(cfg, seed=model.seed).named_steps["lasso"].get_params()
    if lp["kind"] == "logistic":
        out.append(
            f"'LASSO' is an L1-penalised logistic regression (scikit-learn, solver {lp['solver']!r}); its "
            f"penalty is chosen by {lp['cv']}-fold stratified CV on {lp['scoring'].replace('neg_', '')} over "
            f"{lp['Cs']} values spanning {lp['path_ratio']:g}x from the smallest penalty that keeps a feature "
            "(glmnet's binomial path); the paper's LASSO software and criterion are not stated."
        )
    else:
        out.append(f"'LASSO' is a least-squares LASSO on the 0/1 label (scikit-learn LassoCV, {lp['cv']}-fold CV).")
    out.append(
        f"The DLRN is a logistic regression with an L2 penalty (C = {cfg.dlrn_C:g}) of the independent clinical "
        f"predictors and the logit of the {cfg.chosen_name} probability, clipped to [{_EPS:g}, 1 - {_EPS:g}] so "
        "that a probability of 0 or 1 stays finite."
    )
    out.append(
        "z-scores (and ComBat where it is fitted in-fold) use the mean and SD of each fit's training rows and "
        "are applied unchanged to held-out patients; the paper does not say on which patients it z-scored "
        "(z-scoring each cohort on its own would use the validation patients' own mean and SD)."
    )
    return out


# ----------------------------------------------------------------------------- survival by risk group


def event_label_overlap(event, label) -> dict[str, int]:
    """How much a survival event and the classification label overlap (both 0/1, aligned)."""
    e = np.asarray(event, dtype=int)
    lab = np.asarray(label, dtype=int)
    return {
        "events": int(e.sum()),
        "events_in_label_positive": int((e & lab).sum()),
        "events_in_label_negative": int((e & (1 - lab)).sum()),
        "label_positive": int(lab.sum()),
        "label_positive_without_event": int((lab & (1 - e)).sum()),
    }


def survival_by_risk(
    time,
    event,
    score,
    cutoff: float,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    labels: tuple[str, str] = ("low risk", "high risk"),
) -> dict:
    """Risk groups ``score >= cutoff`` (high) vs below (low): sizes, events, log-rank P (None with one group),
    Kaplan-Meier medians (None = not reached), and Harrell's C-index of ``score`` with a bootstrap CI."""
    from lifelines import KaplanMeierFitter

    from .stats.survival import c_index_ci, logrank

    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=int)
    s = np.asarray(score, dtype=float)
    grp = np.where(s >= cutoff, labels[1], labels[0])
    out: dict[str, Any] = {"groups": grp, "cutoff": float(cutoff)}
    for g in labels:
        m = grp == g
        out[f"n_{g}"], out[f"events_{g}"] = int(m.sum()), int(e[m].sum())
        med = KaplanMeierFitter().fit(t[m], e[m]).median_survival_time_ if m.any() else np.nan
        out[f"median_{g}"] = float(med) if np.isfinite(med) else None
    out["logrank_p"] = logrank(t, e, grp) if len(set(grp)) > 1 else None
    if e.sum() > 0:
        lo, c, hi = c_index_ci(t, s, e, n_boot=n_boot, seed=seed)
        out.update(c_index=c, c_low=lo, c_high=hi)
    return out


# ----------------------------------------------------------------------------- plain words for the page


def proxy_sentences(rows: Sequence[dict]) -> list[str]:
    """One plain sentence per proxy pair of ``results.json`` rows that has a number on both sides: the
    paper's value, ours, the difference with its interval, and the smallest difference the comparison could
    have detected (its resolution). A number the paper states twice is described once."""
    out = []
    for r in rows:
        if (
            r.get("comparability") != "proxy"
            or r.get("value") is None
            or r.get("reported") is None
            or r.get("restatement_of")
        ):
            continue
        what = f"{r['model']} ({r['cohort']}) {r['metric']}" + (f" of {r['variable']}" if r.get("variable") else "")
        ci = r.get("ci")
        ours = f"{r['value']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
        text = f"{what}: paper {r['reported']:.2f}, here {ours}"
        ratio = r["metric"] in ("OR", "HR")  # judged on the log scale: said as a ratio ("x 1.3")
        dci = r.get("difference_ci")
        if r.get("difference") is not None and ratio:
            text += f"; ours / paper's = {math.exp(r['difference']):.2f}"
            text += f" [{math.exp(dci[0]):.2f}, {math.exp(dci[1]):.2f}]" if dci else ""
        elif r.get("difference") is not None:
            text += f"; difference {r['difference']:+.2f}" + (f" [{dci[0]:+.2f}, {dci[1]:+.2f}]" if dci else "")
        if r.get("resolution") is not None:
            text += (
                f"; only a ratio beyond about x{math.exp(r['resolution']):.1f} (or / that) would reliably show"
                if ratio
                else f"; only a difference above about {r['resolution']:.2f} would reliably show"
            )
        out.append(f"{text} — {r['verdict']}.")
    return out


# ----------------------------------------------------------------------------- the paper's tests, audited


def comparison_audit_flags(spec) -> dict[str, list[str]]:
    """Short flags per comparison id (``spec.comparisons``) where :func:`replicate.audit.audit_spec` finds the
    paper's test inconsistent (errors and warnings), e.g. a DeLong CI centred on another pair's difference.
    Findings the audit merged under one root cause are read through to the checks they merged."""
    import re

    from .audit import audit_spec

    ids = {c["id"] for c in spec.comparisons}

    def atoms():
        for f in audit_spec(spec):
            if f.severity not in ("error", "warning"):
                continue
            ev = f.evidence or {}
            yield f.severity, f.where, f.detail, ev, list(getattr(f, "ids", None) or [])
            for m in ev.get("merged", []):
                yield f.severity, m.get("where", ""), m.get("detail", ""), m.get("evidence") or {}, m.get("ids", [])

    flags: dict[str, list[str]] = {}
    for severity, where, detail, ev, named in atoms():
        named = named or re.findall(r"\[([A-Za-z0-9_]+)\]", where)
        hit = [i for i in dict.fromkeys(named) if i in ids]
        if not hit:
            continue
        issue = ev.get("issue")
        if issue == "ci_centre" and ev.get("ci_centre") is not None and ev.get("diff") is not None:
            text = f"CI centred on {ev['ci_centre']:+.3f}, not on the AUC difference {ev['diff']:+.3f}"
            if ev.get("matches_other_pairs"):
                text += f" (that is {'; '.join(ev['matches_other_pairs'])})"
        elif issue == "se_vs_ci" and ev.get("se_from_ci") is not None:
            text = f"SE {ev.get('se')} does not match the CI (half-width / 1.96 = {ev['se_from_ci']:.3f})"
        elif issue == "p_vs_z":
            text = "P does not follow from the difference and its SE"
        elif issue == "significance":
            text = "the CI and P disagree about significance"
        elif issue is None and ev.get("merged"):
            continue  # the checks it merged speak for themselves
        else:
            text = detail if len(detail) <= 120 else detail[:117] + "..."
        for i in hit:
            if f"{severity}: {text}" not in flags.get(i, []):
                flags.setdefault(i, []).append(f"{severity}: {text}")
    return flags
