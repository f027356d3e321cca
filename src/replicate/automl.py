"""A WORC-style AutoML radiomics classifier built from scikit-learn / imbalanced-learn.

WORC (Workflow for Optimal Radiomics Classification; Starmans et al.,
arXiv:2108.08618, code github.com/MStarmans91/WORC) treats a radiomics
model as a *workflow*: imputation -> feature-group selection -> scaling ->
variance threshold -> optional RELIEF / model-based selection / PCA /
univariate-test selection -> optional resampling -> classifier. It samples
``N_iterations = 1000`` random workflows (algorithms *and* hyperparameters),
scores each in an inner random-split cross-validation on the training data
(``HyperOptimization``: 5 random splits, 15 % held out, scored by the
weighted F1-score), refits the best ``Ensemble.Use = 100`` workflows on the
whole training set and averages their posterior probabilities.

:class:`WORCAutoML` is that procedure as one scikit-learn classifier. Every
workflow is an :class:`imblearn.pipeline.Pipeline` built by
:func:`build_workflow` from a plain, JSON-serialisable configuration drawn by
:func:`sample_workflow` from :data:`WORC_SEARCH_SPACE`, which transcribes
WORC's default configuration (``WORC.defaultconfig()``, WORC 3.x: sections
``Imputation``, ``FeatureScaling``, ``Featsel``, ``SelectFeatGroup``,
``Resampling``, ``Classification``, ``HyperOptimization``, ``Ensemble``)
with WORC's own sampling conventions (``uniform(loc, scale)`` on
``[loc, loc + scale]``; ``log_uniform`` = ``10 ** uniform``;
``discrete_uniform`` = ``int(uniform)``; a step is switched on with the
probability WORC gives it, e.g. 0.2 for each optional feature selector).

Where this implementation departs from WORC it says so in
:data:`DEPARTURES` (the chapter prints them as deviations).

Speed: the inner cross-validation is the cost (``n_workflows x inner_cv``
fits per outer split). Steps before any label is used (imputation, scaling
per column, the variance threshold per column) are computed once per inner
split and imputation method and reused by every workflow (their result for a
feature subset is the column subset of their result on all features, so this
is exact, and a test checks it). SVMs are fitted without Platt scaling during
the search (their hard predictions and ranking do not depend on it); the
refitted ensemble members do use it, as WORC does. The weighted F1-score is
computed in numpy (:func:`f1_weighted`, equal to scikit-learn's) and scikit-learn's
per-``clone`` signature inspection is memoised during a search (:func:`cached_param_names`). An ensemble
member's imputer computes its statistics only when a value is missing (:class:`LazyImputer`, same output)
and the robust z-score uses the vectorised percentile when nothing is missing (same values).
Workflows are evaluated in parallel with joblib (``n_jobs``).

Fallbacks: every step that can skip itself, fail or be replaced is listed in :data:`DEPARTURES`; a fit
counts the ones it took (``fallbacks_``, :data:`FALLBACKS`), the counts travel with the cached split
predictions (:meth:`SplitEvaluation.fallbacks`), and the chapter lists them with its deviations.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats as st
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.utils.validation import validate_data

# ---------------------------------------------------------------------------------------------
# The search space: WORC's default configuration (WORC.defaultconfig(), WORC 3.x)
# ---------------------------------------------------------------------------------------------

#: WORC's default search space, transcribed. Ranges are WORC's ``loc, scale`` pairs.
WORC_SEARCH_SPACE: dict[str, Any] = {
    "source": "WORC.defaultconfig() (MStarmans91/WORC, WORC/WORC.py), WORC 3.x defaults",
    # config['Imputation']: use True; strategy 'mean, median, most_frequent, constant, knn'; n_neighbors '5, 5'
    "imputation": {"strategy": ["mean", "median", "most_frequent", "constant", "knn"], "n_neighbors": (5, 5)},
    # config['Featsel']['GroupwiseSearch'] True; config['SelectFeatGroup'][<group>] = 'True, False'
    "groupwise_search": True,
    # config['FeatureScaling']['scaling_method'] = 'robust_z_score'
    "scaling": "robust_z_score",
    # config['Featsel']['Variance'] = '1.0' (always on); selfeat_variance(thresh=0.99) -> var > 0.99 * 0.01
    "variance": {"use": 1.0, "threshold": 0.99 * (1 - 0.99)},
    # config['Featsel']['ReliefUse'] 0.2, ReliefNN '2, 4', ReliefSampleSize '0.75, 0.2',
    # ReliefDistanceP '1, 3', ReliefNumFeatures '10, 40'
    "relief": {
        "use": 0.2,
        "n_neighbors": (2, 4),
        "sample_size": (0.75, 0.2),
        "distance_p": (1, 3),
        "n_features": (10, 40),
    },
    # config['Featsel']['SelectFromModel'] 0.2, estimator 'Lasso, LR, RF', lasso_alpha '0.1, 1.4', n_trees '10, 90'
    "select_from_model": {
        "use": 0.2,
        "estimator": ["Lasso", "LR", "RF"],
        "lasso_alpha": (0.1, 1.4),
        "n_trees": (10, 90),
    },
    # config['Featsel']['UsePCA'] 0.2, PCAType '95variance, 10, 50, 100'
    "pca": {"use": 0.2, "type": ["95variance", 10, 50, 100]},
    # config['Featsel']['StatisticalTestUse'] 0.2, metric 'MannWhitneyU', threshold log_uniform '-3, 2.5'
    "statistical_test": {"use": 0.2, "metric": "MannWhitneyU", "threshold": (-3, 2.5)},
    # config['Resampling']: Use 0.20; methods; sampling_strategy; n_neighbors '3, 12'; k_neighbors '5, 15';
    # threshold_cleaning '0.25, 0.5'
    "resampling": {
        "use": 0.2,
        "method": [
            "RandomUnderSampling",
            "RandomOverSampling",
            "NearMiss",
            "NeighbourhoodCleaningRule",
            "ADASYN",
            "BorderlineSMOTE",
            "SMOTE",
            "SMOTEENN",
            "SMOTETomek",
        ],
        "sampling_strategy": ["majority", "minority", "not minority", "not majority", "all"],
        "n_neighbors": (3, 12),
        "k_neighbors": (5, 15),
        "threshold_cleaning": (0.25, 0.5),
    },
    # config['Classification']['classifiers']: the list WORC samples from uniformly (so SVM has weight 9/26)
    "classifiers": ["SVM"] * 9
    + ["RF"] * 3
    + ["LR"] * 3
    + ["LDA"] * 3
    + ["QDA"] * 3
    + ["GaussianNB"] * 3
    + ["AdaBoostClassifier", "XGBClassifier"],
    "SVM": {"kernel": ["linear", "poly", "rbf"], "C": (0, 6), "degree": (1, 6), "coef0": (0, 1), "gamma": (-5, 5)},
    "RF": {"n_estimators": (10, 90), "min_samples_split": (2, 3), "max_depth": (5, 5)},
    "LR": {"penalty": ["l1", "l2", "elasticnet"], "C": (0.01, 0.99), "solver": ["lbfgs", "saga"], "l1_ratio": (0, 1)},
    "LDA": {"solver": ["svd", "lsqr", "eigen"], "shrinkage": (-5, 5)},
    "QDA": {"reg_param": (-5, 5)},
    "AdaBoostClassifier": {"n_estimators": (10, 90), "learning_rate": (0.01, 0.99)},
    "XGBClassifier": {
        "n_estimators": (10, 90),
        "max_depth": (3, 12),
        "learning_rate": (0.01, 0.99),
        "gamma": (0.01, 0.99),
        "min_child_weight": (1, 6),
        "colsample_bytree": (0.3, 0.7),
    },
    "max_iter": 100000,
    # config['HyperOptimization']: scoring_method f1_weighted, test_size 0.15, n_splits 5, N_iterations 1000
    "inner_cv": {"n_splits": 5, "test_size": 0.15, "scoring": "f1_weighted"},
    "n_workflows": 1000,
    # config['Ensemble']['Use'] = 100: the top 100 workflows, probabilities averaged
    "n_top": 100,
    # config['CrossValidation']: random_split, 100 iterations, test_size 0.2
    "outer_cv": {"type": "random_split", "n_splits": 100, "test_size": 0.2},
}

#: Where this implementation knowingly departs from WORC, and the fallbacks its code can take
#: (printed as deviations by the chapter; :data:`FALLBACKS` counts which ones a run actually took).
DEPARTURES: list[str] = [
    "WORC's XGBClassifier (xgboost) is replaced by scikit-learn's GradientBoostingClassifier with the same "
    "ranges for boosting rounds, maximum depth and learning rate; min_child_weight -> min_samples_leaf, "
    "colsample_bytree -> max_features; XGBoost's gamma has no counterpart and is not used (xgboost is not "
    "a dependency of this project).",
    "RELIEF: WORC's single-label implementation searches near misses among the same class (a bug that "
    "zeroes every score) and samples its sample size with int() (always 0); here standard ReliefF "
    "(k nearest hits and misses, Manhattan/Minkowski distance) on a uniform 75-95 % sample is used.",
    "Logistic regression: the solver is drawn from WORC's list (lbfgs, saga) but not used. l1 and l2 are "
    "fitted with liblinear, elastic net with saga; WORC fits l2 with the drawn solver and switches l1 and "
    "elastic net to saga. liblinear minimises the same penalised likelihood except that it also penalises "
    "the intercept (small on robust-z-scored features); it is used because lbfgs takes up to a second per "
    "fit and saga stalls on robust-z-scored features. Both stop after 1,000 iterations / epochs, converged "
    "or not (WORC: max_iter 100,000): robust z-scoring leaves some features with values in the tens of "
    "thousands, on which one l1 fit ran for over ten minutes. scikit-learn >= 1.8 expresses the penalty as "
    "l1_ratio (l2 = 0, l1 = 1, elastic net = drawn).",
    "Resampling is WORC's ObjectSampler: SMOTE and BorderlineSMOTE ignore the drawn sampling strategy "
    "(WORC passes none, so 'auto'); NearMiss and the neighbourhood cleaning rule use 3 neighbours, ADASYN the "
    "drawn n_neighbors, SMOTE the drawn k_neighbors. As in WORC, a drawn strategy the sampler does not "
    "accept ('minority' for an under-sampler or the cleaning rule, 'majority' for an over-sampler), more "
    "neighbours than patients, or fewer than 10 patients left in a class skips resampling for that "
    "workflow (the data pass unchanged); nothing is substituted. The sampler's random state is seeded "
    "(WORC draws it unseeded).",
    "SVMs are fitted without Platt scaling while workflows are scored in the inner cross-validation (their "
    "hard predictions, and hence the weighted F1-score, are identical); the ensemble members are refitted "
    "with probability=True as in WORC.",
    "QDA is fitted as scikit-learn < 1.7 (the versions WORC ran on) fitted it: a class with no more "
    "patients than features gets its covariance in the subspace its patients span plus reg_param; "
    "scikit-learn 1.7+ raises instead.",
    "Feature-group and toolbox draws never select nothing: WORC also draws a toolbox (All, PREDICT, "
    "PyRadiomics), which against the PREDICT-only public features selects no feature in a third of its "
    "workflows, and its group switches can turn every group off (half the workflows of the single-feature "
    "volume model); WORC scores such workflows as failed. Here the toolbox is not drawn and an all-off group "
    "draw is redrawn, so every workflow has features: as WORC with the empty draws discarded, i.e. a larger "
    "WORC search (the volume model's 50 workflows are all valid, WORC's 1,000 hold about 333 valid ones).",
    "Fallbacks: a workflow that fails in any inner split is never ranked; a top workflow whose refit fails is "
    "passed over for the next best; an ensemble "
    "member that fails to predict is left out of the mean (all failing is an error); variance threshold, "
    "SelectFromModel and Mann-Whitney selection keep every feature when they would keep none, a fixed-size "
    "PCA not smaller than the features is skipped (all as WORC); a feature with no value strictly between "
    "its 5th and 95th percentiles is z-scored with its ordinary mean and SD. The fallbacks a run took are "
    "counted and listed with the deviations.",
]

#: The fallbacks :class:`WORCAutoML` counts in ``fallbacks_`` (and per prediction ``predict_failures_``),
#: in words for the chapter's deviations.
FALLBACKS: dict[str, str] = {
    "workflows_failed": "sampled workflows that failed in the inner cross-validation (never ranked)",
    "refits_failed": "top-ranked workflows whose refit failed (passed over for the next best)",
    "ensemble_short": "ensemble places left empty (fewer workflows could be refitted than the ensemble size)",
    "predict_failures": "ensemble members that failed to predict (left out of the mean)",
    "resampling_skipped": "ensemble members whose resampling was skipped (strategy not accepted by the sampler, "
    "sampler error, or fewer than 10 patients left in a class; as WORC)",
    "variance_skipped": "ensemble members whose variance threshold would have removed every feature (all kept)",
    "select_from_model_skipped": "ensemble members whose SelectFromModel selected nothing (skipped)",
    "pca_skipped": "ensemble members whose fixed-size PCA was not smaller than the features (skipped)",
    "statistical_test_skipped": "ensemble members whose Mann-Whitney selection passed no feature (skipped)",
    "lr_solver_replaced": "logistic-regression ensemble members fitted with another solver than WORC's "
    "(liblinear for l1 / l2)",
    "lr_iteration_cap": "logistic-regression ensemble members stopped at the 1,000-iteration cap before converging",
    "scaling_fallback_columns": "feature columns (summed over ensemble members) z-scored with the ordinary "
    "mean and SD (no value strictly between their 5th and 95th percentiles)",
}

#: Workflow steps that can skip themselves (their ``skipped_`` attribute), counted per ensemble member.
_SKIPPABLE_STEPS = ("resampling", "variance", "select_from_model", "pca", "statistical_test")


def _u(rng: np.random.Generator, loc_scale) -> float:
    loc, scale = loc_scale
    return float(loc + scale * rng.random())


def _logu(rng, loc_scale) -> float:
    return float(10.0 ** _u(rng, loc_scale))


def _du(rng, loc_scale) -> int:
    return int(_u(rng, loc_scale))


def _choice(rng, options):
    return options[int(rng.integers(len(options)))]


# ---------------------------------------------------------------------------------------------
# Feature groups (WORC's SelectFeatGroup) for PREDICT / WORC names and PyRadiomics names
# ---------------------------------------------------------------------------------------------

_PREDICT_GROUPS = [
    ("tf_GLCMMS", "texture_GLCMMS"),
    ("tf_GLCM_", "texture_GLCM"),
    ("tf_Gabor", "texture_Gabor"),
    ("tf_LBP", "texture_LBP"),
    ("tf_GLRLM", "texture_GLRLM"),
    ("tf_GLSZM", "texture_GLSZM"),
    ("tf_NGTDM", "texture_NGTDM"),
    ("tf_GLDM", "texture_GLDM"),
    ("sf_", "shape"),
    ("hf_", "histogram"),
    ("of_", "orientation"),
    ("logf_", "log"),
    ("vf_", "vessel"),
    ("phasef_", "phase"),
    ("fracf_", "fractal"),
    ("locf_", "location"),
]
_PYRAD_CLASSES = {
    "shape": "shape",
    "shape2D": "shape",
    "firstorder": "histogram",
    "glcm": "texture_GLCM",
    "glrlm": "texture_GLRLM",
    "glszm": "texture_GLSZM",
    "gldm": "texture_GLDM",
    "ngtdm": "texture_NGTDM",
}


def feature_group(name: str) -> str:
    """The WORC feature group of a column name, or ``"other"`` (never switched off).

    WORC/PREDICT names (``PREDICT_original_sf_volume_2.5D``, ``..._tf_Gabor_...``) map by WORC's
    prefixes (``sf_`` shape, ``hf_`` histogram, ``of_`` orientation, ``tf_<X>`` texture_<X>,
    ``logf_`` log, ``vf_`` vessel, ``phasef_`` phase). PyRadiomics names (``original_glcm_Contrast``,
    ``wavelet-LLH_firstorder_Mean``, ``log-sigma-1-0-mm-3D_...``) map by feature class; filtered images
    form their own groups (``wavelet``, ``log``) as WORC's ``wavelet_features``/``log_features``.
    Clinical columns (age, sex, location) fall in ``other`` and are always kept.
    """
    m = re.match(
        r"^(?:[A-Za-z0-9]+_)?(original|wavelet[-A-Z]*|log-sigma[-0-9a-zA-Z]*|square|squareroot|"
        r"logarithm|exponential|gradient|lbp[-0-9a-zA-Z]*)_([A-Za-z0-9]+)_",
        name,
    )
    if m:
        image_type, cls = m.group(1), m.group(2)
        if image_type.startswith("wavelet"):
            return "wavelet"
        if image_type.startswith("log-sigma"):
            return "log"
        if image_type != "original":
            return "filtered"
        if cls in _PYRAD_CLASSES:
            return _PYRAD_CLASSES[cls]
    for prefix, group in _PREDICT_GROUPS:
        if prefix in name:
            return group
    return "other"


def feature_groups(columns: Sequence[str]) -> np.ndarray:
    return np.array([feature_group(str(c)) for c in columns], dtype=object)


# ---------------------------------------------------------------------------------------------
# Workflow steps (numpy in, numpy out; every optional selector skips itself if it would empty X)
# ---------------------------------------------------------------------------------------------


class ColumnSubset(BaseEstimator, TransformerMixin):
    """Keep the given column indices (WORC's groupwise feature selection)."""

    def __init__(self, columns=None):
        self.columns = columns

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X)[:, list(self.columns)] if self.columns is not None else np.asarray(X)


class RobustZScore(BaseEstimator, TransformerMixin):
    """WORC's ``robust_z_score``: z-score with mean/sd computed on the values strictly between the
    5th and 95th percentile of each feature (WORC.featureprocessing.Scalers.RobustStandardScaler).
    Features with no such values fall back to the ordinary mean/sd (counted in ``n_fallback_``); a zero
    sd becomes 1."""

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        # np.percentile is vectorised, np.nanpercentile loops over columns (~50x slower); same values without NaN
        lo, hi = (np.nanpercentile if np.isnan(X).any() else np.percentile)(X, [5, 95], axis=0)
        inner = np.where((X > lo) & (X < hi), X, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(inner, axis=0)
            sd = np.nanstd(inner, axis=0)
        empty = ~np.isfinite(mean)
        self.n_fallback_ = int(empty.sum())
        if empty.any():
            mean[empty] = np.nanmean(X[:, empty], axis=0)
            sd[empty] = np.nanstd(X[:, empty], axis=0)
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        self.mean_, self.scale_ = mean, sd
        return self

    def transform(self, X):
        return (np.asarray(X, dtype=float) - self.mean_) / self.scale_


class SafeVarianceThreshold(BaseEstimator, TransformerMixin):
    """Keep features with variance above ``threshold``; keep all if none would remain (as WORC)."""

    def __init__(self, threshold=0.0099):
        self.threshold = threshold

    def fit(self, X, y=None):
        keep = np.nanvar(np.asarray(X, dtype=float), axis=0) > self.threshold
        self.skipped_ = not keep.any()
        self.support_ = keep if keep.any() else np.ones_like(keep)
        return self

    def transform(self, X):
        return np.asarray(X)[:, self.support_]


class ReliefSelector(BaseEstimator, TransformerMixin):
    """ReliefF: score_j = mean over sampled patients of (|x_j - near misses| - |x_j - near hits|)."""

    def __init__(self, n_neighbors=3, sample_size=0.85, distance_p=1, n_features=20, random_state=None):
        self.n_neighbors = n_neighbors
        self.sample_size = sample_size
        self.distance_p = distance_p
        self.n_features = n_features
        self.random_state = random_state

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        n, p = X.shape
        rng = np.random.default_rng(self.random_state)
        idx = rng.choice(n, max(2, int(round(n * self.sample_size))), replace=False)
        diff = np.abs(X[idx, None, :] - X[None, :, :])  # (s, n, p)
        dist = (diff**self.distance_p).sum(axis=2) ** (1.0 / self.distance_p)
        dist[np.arange(len(idx)), idx] = np.inf  # not yourself
        scores = np.zeros(p)
        k = int(self.n_neighbors)
        for r, i in enumerate(idx):
            same = np.flatnonzero(y == y[i])
            other = np.flatnonzero(y != y[i])
            same = same[same != i]
            if len(same) == 0 or len(other) == 0:
                continue
            hits = same[np.argsort(dist[r, same])[:k]]
            misses = other[np.argsort(dist[r, other])[:k]]
            scores += diff[r, misses].mean(axis=0) - diff[r, hits].mean(axis=0)
        order = np.argsort(-scores, kind="stable")
        self.scores_ = scores
        self.support_ = np.sort(order[: min(int(self.n_features), p)])
        return self

    def transform(self, X):
        return np.asarray(X)[:, self.support_]


class SafeSelectFromModel(BaseEstimator, TransformerMixin):
    """WORC's SelectFromModel with a Lasso, a logistic regression or a random forest (scikit-learn's
    default threshold: mean importance); skipped when it would select nothing (as WORC)."""

    def __init__(self, estimator="Lasso", lasso_alpha=1.0, n_trees=50, random_state=None):
        self.estimator = estimator
        self.lasso_alpha = lasso_alpha
        self.n_trees = n_trees
        self.random_state = random_state

    def fit(self, X, y):
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.feature_selection import SelectFromModel
        from sklearn.linear_model import Lasso, LogisticRegression

        if self.estimator == "Lasso":
            est = Lasso(alpha=self.lasso_alpha, random_state=self.random_state)
        elif self.estimator == "LR":
            est = LogisticRegression(solver="liblinear", max_iter=1000)  # l2, C=1 as WORC's LogisticRegression()
        elif self.estimator == "RF":
            est = RandomForestClassifier(n_estimators=int(self.n_trees), random_state=self.random_state)
        else:
            raise ValueError(f"unknown SelectFromModel estimator {self.estimator!r}")
        sel = SelectFromModel(est).fit(X, y)
        keep = sel.get_support()
        self.skipped_ = not keep.any()
        self.support_ = keep if keep.any() else np.ones_like(keep)
        return self

    def transform(self, X):
        return np.asarray(X)[:, self.support_]


class WORCPCA(BaseEstimator, TransformerMixin):
    """WORC's PCA step: the components explaining 95 % of the variance, or a fixed number
    (at most the number of patients; skipped when not fewer than the features)."""

    def __init__(self, pca_type="95variance", random_state=None):
        self.pca_type = pca_type
        self.random_state = random_state

    def fit(self, X, y=None):
        from sklearn.decomposition import PCA

        X = np.asarray(X, dtype=float)
        n, p = X.shape
        if self.pca_type == "95variance":
            full = PCA(random_state=self.random_state).fit(X)
            k = int(np.searchsorted(np.cumsum(full.explained_variance_ratio_), 0.95) + 1)
            k = max(1, min(k, min(n, p)))
        else:
            k = min(n, int(self.pca_type))
            if k >= p:
                self.pca_, self.skipped_ = None, True
                return self
        self.skipped_ = False
        self.pca_ = PCA(n_components=k, random_state=self.random_state).fit(X)
        return self

    def transform(self, X):
        return np.asarray(X) if self.pca_ is None else self.pca_.transform(np.asarray(X, dtype=float))


class MannWhitneySelector(BaseEstimator, TransformerMixin):
    """Keep features whose Mann-Whitney U p-value (positives vs negatives) is below ``threshold``;
    skipped when none pass (as WORC's StatisticalTestThreshold)."""

    def __init__(self, threshold=0.05):
        self.threshold = threshold

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            p = st.mannwhitneyu(X[y == 1], X[y == 0], axis=0).pvalue
        p = np.where(np.isfinite(p), p, 1.0)
        keep = p < self.threshold
        self.pvalues_ = p
        self.skipped_ = not keep.any()
        self.support_ = keep if keep.any() else np.ones_like(keep)
        return self

    def transform(self, X):
        return np.asarray(X)[:, self.support_]


class SafeResampler(BaseEstimator):
    """WORC's ObjectSampler (WORC/classification/ObjectSampler.py) as called by its ``fit_and_score``.

    The sampler gets what WORC gives it: RandomUnderSampling, RandomOverSampling, NearMiss and
    NeighbourhoodCleaningRule the sampled ``sampling_strategy`` (NearMiss and the cleaning rule their
    default 3 neighbours, the rule the sampled ``threshold_cleaning``); ADASYN the strategy and the sampled
    ``n_neighbors``; SMOTE and BorderlineSMOTE the sampled ``k_neighbors`` and *no* strategy (so
    ``"auto"``); SMOTEENN and SMOTETomek the strategy and their default inner samplers. As in WORC, a
    sampler that raises ``ValueError`` (e.g. ``"minority"`` for an under-sampler, ``"majority"`` for an
    over-sampler, more neighbours than patients) or leaves fewer than 10 patients in a class is skipped:
    the data pass unchanged and ``skipped_`` is True. Any other error (e.g. ADASYN's "not suited for this
    dataset") propagates, so the workflow fails, as in WORC."""

    def __init__(
        self,
        method="SMOTE",
        sampling_strategy="auto",
        n_neighbors=3,
        k_neighbors=5,
        threshold_cleaning=0.5,
        random_state=None,
    ):
        self.method = method
        self.sampling_strategy = sampling_strategy
        self.n_neighbors = n_neighbors
        self.k_neighbors = k_neighbors
        self.threshold_cleaning = threshold_cleaning
        self.random_state = random_state

    def _sampler(self):
        from imblearn import combine, over_sampling, under_sampling

        strategy, rs, m = self.sampling_strategy, self.random_state, self.method
        if m == "RandomUnderSampling":
            return under_sampling.RandomUnderSampler(sampling_strategy=strategy, random_state=rs)
        if m == "RandomOverSampling":
            return over_sampling.RandomOverSampler(sampling_strategy=strategy, random_state=rs)
        if m == "NearMiss":
            return under_sampling.NearMiss(sampling_strategy=strategy)
        if m == "NeighbourhoodCleaningRule":
            return under_sampling.NeighbourhoodCleaningRule(
                sampling_strategy=strategy, threshold_cleaning=self.threshold_cleaning
            )
        if m == "ADASYN":
            return over_sampling.ADASYN(sampling_strategy=strategy, n_neighbors=int(self.n_neighbors), random_state=rs)
        if m == "BorderlineSMOTE":
            return over_sampling.BorderlineSMOTE(k_neighbors=int(self.k_neighbors), random_state=rs)
        if m == "SMOTE":
            return over_sampling.SMOTE(k_neighbors=int(self.k_neighbors), random_state=rs)
        if m == "SMOTEENN":
            return combine.SMOTEENN(sampling_strategy=strategy, random_state=rs)
        if m == "SMOTETomek":
            return combine.SMOTETomek(sampling_strategy=strategy, random_state=rs)
        raise ValueError(f"unknown resampling method {m!r}")

    def fit_resample(self, X, y):
        self.skipped_ = True
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Xr, yr = self._sampler().fit_resample(X, y)
        except ValueError:  # WORC: WORCValueError -> "Skipping resampling"
            return X, y
        if np.bincount(np.asarray(yr, dtype=int), minlength=2).min() < 10:
            return X, y  # WORC: "to few objects returned" -> skipped
        self.skipped_ = False
        return Xr, yr

    def fit(self, X, y):
        self.fit_resample(X, y)
        return self


# ---------------------------------------------------------------------------------------------
# Sampling and building workflows
# ---------------------------------------------------------------------------------------------


def _draw_groups(rng: np.random.Generator, searchable: Sequence[str], has_other: bool) -> dict[str, bool]:
    """WORC's groupwise search: each feature group on with probability 0.5, conditioned on the workflow
    keeping at least one feature. A draw that switches off every group (with no ``other`` column to keep)
    selects nothing, and WORC scores such a workflow as failed; it is redrawn here (see DEPARTURES). The
    redraw consumes random numbers only when it happens, so other draws are WORC's."""
    while True:
        draw = {g: bool(rng.random() < 0.5) for g in searchable}
        if has_other or not draw or any(draw.values()):
            return draw


def sample_workflow(rng: np.random.Generator, groups: Sequence[str] = (), space: dict | None = None) -> dict:
    """Draw one workflow configuration (a plain dict) from ``space`` (default :data:`WORC_SEARCH_SPACE`).

    ``groups``: the feature groups present in the data (each is switched on with probability 0.5,
    ``"other"`` always)."""
    s = space or WORC_SEARCH_SPACE
    cfg: dict[str, Any] = {}
    imp = s["imputation"]
    cfg["imputation"] = {"strategy": _choice(rng, imp["strategy"]), "n_neighbors": _du(rng, imp["n_neighbors"])}
    searchable = sorted(g for g in set(groups) if g != "other")
    cfg["groups"] = _draw_groups(rng, searchable, "other" in groups) if s.get("groupwise_search", True) else {}
    cfg["variance"] = bool(rng.random() < s["variance"]["use"])
    r = s["relief"]
    cfg["relief"] = (
        {
            "n_neighbors": _du(rng, r["n_neighbors"]),
            "sample_size": _u(rng, r["sample_size"]),
            "distance_p": _du(rng, r["distance_p"]),
            "n_features": _du(rng, r["n_features"]),
        }
        if rng.random() < r["use"]
        else None
    )
    m = s["select_from_model"]
    cfg["select_from_model"] = (
        {
            "estimator": _choice(rng, m["estimator"]),
            "lasso_alpha": _u(rng, m["lasso_alpha"]),
            "n_trees": _du(rng, m["n_trees"]),
        }
        if rng.random() < m["use"]
        else None
    )
    p = s["pca"]
    cfg["pca"] = {"type": _choice(rng, p["type"])} if rng.random() < p["use"] else None
    t = s["statistical_test"]
    cfg["statistical_test"] = (
        {"metric": t["metric"], "threshold": _logu(rng, t["threshold"])} if rng.random() < t["use"] else None
    )
    rs = s["resampling"]
    cfg["resampling"] = (
        {
            "method": _choice(rng, rs["method"]),
            "sampling_strategy": _choice(rng, rs["sampling_strategy"]),
            "n_neighbors": _du(rng, rs["n_neighbors"]),
            "k_neighbors": _du(rng, rs["k_neighbors"]),
            "threshold_cleaning": _u(rng, rs["threshold_cleaning"]),
        }
        if rng.random() < rs["use"]
        else None
    )
    name = _choice(rng, s["classifiers"])
    clf: dict[str, Any] = {"name": name}
    if name == "SVM":
        h = s["SVM"]
        clf.update(
            kernel=_choice(rng, h["kernel"]),
            C=_logu(rng, h["C"]),
            degree=_du(rng, h["degree"]),
            coef0=_u(rng, h["coef0"]),
            gamma=_logu(rng, h["gamma"]),
        )
    elif name == "RF":
        h = s["RF"]
        clf.update(
            n_estimators=_du(rng, h["n_estimators"]),
            min_samples_split=_du(rng, h["min_samples_split"]),
            max_depth=_du(rng, h["max_depth"]),
        )
    elif name == "LR":
        h = s["LR"]
        clf.update(
            penalty=_choice(rng, h["penalty"]),
            C=_u(rng, h["C"]),
            solver=_choice(rng, h["solver"]),
            l1_ratio=_u(rng, h["l1_ratio"]),
        )
    elif name == "LDA":
        h = s["LDA"]
        clf.update(solver=_choice(rng, h["solver"]), shrinkage=_logu(rng, h["shrinkage"]))
    elif name == "QDA":
        clf.update(reg_param=_logu(rng, s["QDA"]["reg_param"]))
    elif name == "AdaBoostClassifier":
        h = s["AdaBoostClassifier"]
        clf.update(n_estimators=_du(rng, h["n_estimators"]), learning_rate=_u(rng, h["learning_rate"]))
    elif name == "XGBClassifier":
        h = s["XGBClassifier"]
        clf.update(
            n_estimators=_du(rng, h["n_estimators"]),
            max_depth=_du(rng, h["max_depth"]),
            learning_rate=_u(rng, h["learning_rate"]),
            gamma=_u(rng, h["gamma"]),
            min_child_weight=_du(rng, h["min_child_weight"]),
            colsample_bytree=_u(rng, h["colsample_bytree"]),
        )
    cfg["classifier"] = clf
    cfg["random_seed"] = int(rng.integers(2**31 - 1))
    return cfg


def make_classifier(clf: dict, random_state: int | None = None, probability: bool = True, max_iter: int | None = None):
    """The scikit-learn classifier of a workflow configuration (WORC's construct_classifier)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble import AdaBoostClassifier, GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.svm import SVC

    max_iter = max_iter or WORC_SEARCH_SPACE["max_iter"]
    name = clf["name"]
    if name == "SVM":
        return SVC(
            kernel=clf["kernel"],
            C=clf["C"],
            degree=clf["degree"],
            coef0=clf["coef0"],
            gamma=clf["gamma"],
            class_weight="balanced",
            probability=probability,
            max_iter=max_iter,
            random_state=random_state,
        )
    if name == "RF":
        return RandomForestClassifier(
            n_estimators=clf["n_estimators"],
            min_samples_split=clf["min_samples_split"],
            max_depth=clf["max_depth"],
            class_weight="balanced",
            n_jobs=1,
            random_state=random_state,
        )
    if name == "LR":
        l1 = {"l2": 0.0, "l1": 1.0}.get(clf["penalty"], clf["l1_ratio"])
        solver = lr_solver(clf)
        return LogisticRegression(
            C=clf["C"], l1_ratio=l1, solver=solver, random_state=random_state, max_iter=min(max_iter, LR_MAX_ITER)
        )
    if name == "LDA":
        shrink = None if clf["solver"] == "svd" else clf["shrinkage"]
        return LinearDiscriminantAnalysis(solver=clf["solver"], shrinkage=shrink)
    if name == "QDA":
        return LegacyQDA(reg_param=clf["reg_param"])
    if name == "GaussianNB":
        return GaussianNB()
    if name == "AdaBoostClassifier":
        return AdaBoostClassifier(
            n_estimators=clf["n_estimators"], learning_rate=clf["learning_rate"], random_state=random_state
        )
    if name == "XGBClassifier":
        return GradientBoostingClassifier(
            n_estimators=clf["n_estimators"],
            max_depth=clf["max_depth"],
            learning_rate=clf["learning_rate"],
            min_samples_leaf=clf["min_child_weight"],
            max_features=clf["colsample_bytree"],
            random_state=random_state,
        )
    raise ValueError(f"unknown classifier {name!r}")


#: Logistic regression stops after this many iterations (liblinear) or epochs (saga), converged or not (see
#: DEPARTURES): robust z-scoring leaves some PREDICT features with values in the tens of thousands, on which
#: an l1 fit can run 1,000 liblinear iterations in 6 s and WORC's 100,000 for ten minutes.
LR_MAX_ITER = 1000


def lr_solver(clf: dict) -> str:
    """The solver our logistic regression uses: liblinear for l1 and l2 (it converges in ~10 ms where
    lbfgs takes up to a second and saga stalls on robust-z-scored features), saga for elastic net (the
    only solver for it). The sampled ``solver`` is not used (see :data:`DEPARTURES`)."""
    return "saga" if clf["penalty"] == "elasticnet" else "liblinear"


def worc_lr_solver(clf: dict) -> str:
    """The solver WORC's construct_classifier uses: the sampled one, except that l1 and elastic net with
    lbfgs are switched to saga ("[WORC Warning] ... penalty requires saga solver ... Changing solver.")."""
    return "saga" if clf["penalty"] in ("l1", "elasticnet") else clf["solver"]


class LegacyQDA(QuadraticDiscriminantAnalysis):
    """QDA as scikit-learn fitted it before 1.7 (the versions WORC ran on): when a class has no more
    patients than features, its covariance is used in the subspace its patients span, with
    ``reg_param`` added to the scalings (older versions warned "Variables are collinear"; 1.7+ raise)."""

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError("QDA needs two classes")
        _, cnts = np.unique(y, return_counts=True)
        self.priors_ = cnts / float(len(y)) if self.priors is None else np.asarray(self.priors)
        means, scalings, rotations = [], [], []
        for c in self.classes_:
            Xg = X[y == c]
            if len(Xg) < 2:
                raise ValueError(f"class {c} has fewer than 2 patients")
            mu = Xg.mean(0)
            _, S, Vt = np.linalg.svd(Xg - mu, full_matrices=False)
            S2 = (1 - self.reg_param) * (S**2) / (len(Xg) - 1) + self.reg_param
            if np.any(S2 <= 0):
                raise np.linalg.LinAlgError("singular class covariance")
            means.append(mu)
            scalings.append(S2)
            rotations.append(Vt.T)
        self.means_, self.scalings_, self.rotations_ = np.asarray(means), scalings, rotations
        return self


class LazyImputer(BaseEstimator, TransformerMixin):
    """A scikit-learn imputer whose statistics are computed when a value has to be filled, not before.

    Fitted on data without NaN it keeps the training data and passes NaN-free data through unchanged;
    the first NaN it meets fits ``imputer`` on the training data. The output equals ``imputer``'s (its
    statistics depend on the training data only). Why: every ensemble member starts with an imputer, and
    SimpleImputer's ``most_frequent`` on ~500 continuous features costs ~0.5 s per fit, wasted when (as in
    WORC Lipo) nothing is missing."""

    def __init__(self, imputer=None):
        self.imputer = imputer

    def fit(self, X, y=None):
        from sklearn.base import clone

        X = np.asarray(X, dtype=float)
        self.imputer_ = clone(self.imputer).fit(X) if np.isnan(X).any() else None
        self.X_fit_ = None if self.imputer_ is not None else X
        return self

    def transform(self, X):
        from sklearn.base import clone

        X = np.asarray(X, dtype=float)
        if self.imputer_ is None:
            if not np.isnan(X).any():
                return X
            self.imputer_ = clone(self.imputer).fit(self.X_fit_)
        return self.imputer_.transform(X)


def _imputer(imp: dict):
    from sklearn.impute import KNNImputer, SimpleImputer

    if imp["strategy"] == "knn":
        base = KNNImputer(n_neighbors=imp["n_neighbors"], keep_empty_features=True)
    else:
        base = SimpleImputer(strategy=imp["strategy"], fill_value=0.0, keep_empty_features=True)
    return LazyImputer(base)


def selected_columns(cfg: dict, groups: np.ndarray) -> np.ndarray:
    """Column indices kept by the workflow's groupwise selection (``other`` always kept)."""
    on = cfg.get("groups", {})
    keep = np.array([g == "other" or on.get(g, True) for g in groups], dtype=bool)
    return np.flatnonzero(keep)


def _suffix_steps(cfg: dict, probability: bool = True) -> list:
    seed = cfg["random_seed"]
    steps: list = []
    if cfg.get("relief"):
        r = cfg["relief"]
        steps.append(
            (
                "relief",
                ReliefSelector(
                    n_neighbors=r["n_neighbors"],
                    sample_size=r["sample_size"],
                    distance_p=r["distance_p"],
                    n_features=r["n_features"],
                    random_state=seed,
                ),
            )
        )
    if cfg.get("select_from_model"):
        m = cfg["select_from_model"]
        steps.append(
            (
                "select_from_model",
                SafeSelectFromModel(m["estimator"], m["lasso_alpha"], m["n_trees"], random_state=seed),
            )
        )
    if cfg.get("pca"):
        steps.append(("pca", WORCPCA(cfg["pca"]["type"], random_state=seed)))
    if cfg.get("statistical_test"):
        steps.append(("statistical_test", MannWhitneySelector(cfg["statistical_test"]["threshold"])))
    if cfg.get("resampling"):
        r = cfg["resampling"]
        steps.append(
            (
                "resampling",
                SafeResampler(
                    r["method"],
                    r["sampling_strategy"],
                    r["n_neighbors"],
                    r["k_neighbors"],
                    r["threshold_cleaning"],
                    random_state=seed,
                ),
            )
        )
    steps.append(("classifier", make_classifier(cfg["classifier"], random_state=seed, probability=probability)))
    return steps


def _prefix_steps(cfg: dict, columns: np.ndarray) -> list:
    steps = [
        ("imputation", _imputer(cfg["imputation"])),
        ("groups", ColumnSubset(columns.tolist())),
        ("scaling", RobustZScore()),
    ]
    if cfg.get("variance", True):
        steps.append(("variance", SafeVarianceThreshold(WORC_SEARCH_SPACE["variance"]["threshold"])))
    return steps


def build_workflow(cfg: dict, groups: np.ndarray, probability: bool = True):
    """The full workflow of a configuration as an imbalanced-learn Pipeline (numpy in).

    ``groups``: :func:`feature_groups` of the training columns."""
    from imblearn.pipeline import Pipeline

    cols = selected_columns(cfg, groups)
    if len(cols) == 0:
        raise ValueError("groupwise selection left no features")
    return Pipeline(_prefix_steps(cfg, cols) + _suffix_steps(cfg, probability))


def describe_workflow(cfg: dict) -> str:
    """One line: the steps and the classifier of a workflow configuration."""
    parts = [f"impute:{cfg['imputation']['strategy']}"]
    if cfg.get("groups"):
        parts.append("groups:" + "+".join(g for g, on in cfg["groups"].items() if on) or "none")
    for key in ("relief", "select_from_model", "pca", "statistical_test", "resampling"):
        if cfg.get(key):
            extra = cfg[key].get("estimator") or cfg[key].get("method") or cfg[key].get("type") or ""
            parts.append(f"{key}{':' + str(extra) if extra else ''}")
    c = cfg["classifier"]
    parts.append(c["name"] + (f"({c['kernel']})" if c["name"] == "SVM" else ""))
    return " | ".join(parts)


# ---------------------------------------------------------------------------------------------
# Scoring in the inner cross-validation (with cached label-free prefixes)
# ---------------------------------------------------------------------------------------------

#: scikit-learn settings while workflows are scored: the parameters were validated when the workflow was
#: sampled and the data are finite after imputation, so per-call validation is skipped (~25 % faster).
_FAST_SKLEARN = {"skip_parameter_validation": True, "assume_finite": True}


def _imputation_key(imp: dict, has_nan: bool) -> str:
    if not has_nan:
        return "none"
    return f"knn{imp['n_neighbors']}" if imp["strategy"] == "knn" else imp["strategy"]


@dataclass
class _Prefix:
    """Imputed + robust-z-scored training/test arrays of one inner split, all columns, and the
    per-column variance mask (training rows)."""

    Xtr: np.ndarray
    Xte: np.ndarray
    var_ok: np.ndarray


def _build_prefixes(X, y, splits, cfgs, has_nan) -> dict:
    cache: dict = {}
    thr = WORC_SEARCH_SPACE["variance"]["threshold"]
    for s, (tr, te) in enumerate(splits):
        for cfg in cfgs:
            key = (s, _imputation_key(cfg["imputation"], has_nan))
            if key in cache:
                continue
            Xtr, Xte = X[tr], X[te]
            if has_nan:
                imp = _imputer(cfg["imputation"]).fit(Xtr)
                Xtr, Xte = imp.transform(Xtr), imp.transform(Xte)
            sc = RobustZScore().fit(Xtr)
            Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
            cache[key] = _Prefix(Xtr, Xte, np.nanvar(Xtr, axis=0) > thr)
    return cache


@contextlib.contextmanager
def cached_param_names():
    """Within the block, ``BaseEstimator._get_param_names`` (``inspect.signature`` of ``__init__``, run
    on every ``clone`` / ``get_params``, e.g. for each tree of a random forest) is memoised per class.
    Exact (the signatures do not change while a search runs); ~15 % of a search's time. Restored after."""
    from sklearn.base import BaseEstimator

    original = BaseEstimator.__dict__["_get_param_names"]
    memo: dict = {}

    def _names(cls):
        try:
            return memo[cls]
        except KeyError:
            memo[cls] = out = original.__func__(cls)
            return out

    BaseEstimator._get_param_names = classmethod(_names)
    try:
        yield
    finally:
        BaseEstimator._get_param_names = original


def f1_weighted(y_true, y_pred) -> float:
    """scikit-learn's ``f1_score(average="weighted", zero_division=0)`` in numpy (exact; ~100x faster,
    which matters when it is called 5,000 times per search): per label in ``y_true`` or ``y_pred``,
    F1 = 2 TP / (2 TP + FP + FN) (0 when the denominator is 0), averaged with the labels' support in
    ``y_true`` as weights."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    total = 0.0
    for c in np.union1d(y_true, y_pred):
        t, p = y_true == c, y_pred == c
        tp = float(np.sum(t & p))
        denom = 2 * tp + float(np.sum(~t & p)) + float(np.sum(t & ~p))
        if denom > 0:
            total += float(t.sum()) * 2 * tp / denom
    return total / len(y_true) if len(y_true) else 0.0


def _score(y_true, y_pred, y_score, scoring: str) -> float:
    if scoring == "f1_weighted":
        return f1_weighted(y_true, y_pred)
    if scoring == "roc_auc":
        if len(np.unique(y_true)) < 2:
            return float("nan")
        return float(roc_auc_score(y_true, y_score))
    raise ValueError(f"unknown scoring {scoring!r} (use 'f1_weighted' or 'roc_auc')")


def _continuous_score(model, X) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        try:
            return model.predict_proba(X)[:, 1]
        except (AttributeError, NotImplementedError):
            pass
    return model.decision_function(X)


def _evaluate_chunk(X, y, splits, prefixes, cfgs_idx, groups, has_nan, scoring, use_prefix_cache) -> list:
    import sklearn
    from imblearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    out = []
    with (
        threadpool_limits(1),
        sklearn.config_context(**_FAST_SKLEARN),
        cached_param_names(),
        warnings.catch_warnings(),
        np.errstate(all="ignore"),
    ):
        warnings.simplefilter("ignore")
        for i, cfg in cfgs_idx:
            cols = selected_columns(cfg, groups)
            scores = []
            if len(cols) == 0:
                out.append((i, [float("nan")] * len(splits)))
                continue
            for s, (tr, te) in enumerate(splits):
                try:
                    if use_prefix_cache:
                        pre = prefixes[(s, _imputation_key(cfg["imputation"], has_nan))]
                        ok = pre.var_ok[cols] if cfg.get("variance", True) else np.ones(len(cols), bool)
                        use = cols[ok] if ok.any() else cols
                        Xtr, Xte = pre.Xtr[:, use], pre.Xte[:, use]
                        model = Pipeline(_suffix_steps(cfg, probability=False)).fit(Xtr, y[tr])
                    else:
                        Xtr, Xte = X[tr], X[te]
                        model = build_workflow(cfg, groups, probability=False).fit(Xtr, y[tr])
                    pred = model.predict(Xte)
                    cont = _continuous_score(model, Xte) if scoring == "roc_auc" else None
                    scores.append(_score(y[te], pred, cont, scoring))
                except Exception:  # noqa: BLE001 - a failing workflow scores nan
                    scores.append(float("nan"))
            out.append((i, scores))
    return out


# ---------------------------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------------------------


class WORCAutoML(ClassifierMixin, BaseEstimator):
    """WORC-style AutoML: random search over whole radiomics workflows, ensemble of the best.

    Parameters
    ----------
    n_workflows : number of random workflows (WORC: ``HyperOptimization.N_iterations`` = 1000).
    n_top : workflows in the ensemble (WORC: ``Ensemble.Use`` = 100); their probabilities are averaged.
    inner_cv : number of inner random stratified splits (WORC: ``n_splits`` = 5 with ``test_size`` 0.15),
        or a scikit-learn splitter.
    seed : fixes the sampled workflows, the inner splits and every workflow's own random state.
    n_jobs : joblib workers for scoring the workflows (1 = in process).
    scoring : ``"f1_weighted"`` (WORC's default ``scoring_method``) or ``"roc_auc"``.
    inner_test_size : fraction held out in each inner split (WORC: 0.15).
    space : the search space (default :data:`WORC_SEARCH_SPACE`).

    After ``fit``: ``workflows_`` (the sampled configurations), ``cv_results_`` (DataFrame: mean and
    per-split inner scores, rank, description), ``members_`` (the refitted ensemble pipelines),
    ``member_ids_`` and ``classes_``.
    """

    def __init__(
        self,
        n_workflows: int = 1000,
        n_top: int = 100,
        inner_cv: Any = 5,
        seed: int = 0,
        n_jobs: int = 1,
        scoring: str = "f1_weighted",
        inner_test_size: float = 0.15,
        space: dict | None = None,
        use_prefix_cache: bool = True,
    ):
        self.n_workflows = n_workflows
        self.n_top = n_top
        self.inner_cv = inner_cv
        self.seed = seed
        self.n_jobs = n_jobs
        self.scoring = scoring
        self.inner_test_size = inner_test_size
        self.space = space
        self.use_prefix_cache = use_prefix_cache

    # -- helpers -----------------------------------------------------------------------------
    def _as_array(self, X) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            if hasattr(self, "feature_names_in_"):
                missing = [c for c in self.feature_names_in_ if c not in X.columns]
                if missing:
                    raise ValueError(f"columns missing at predict time: {missing[:5]}")
                X = X[list(self.feature_names_in_)]
            return X.to_numpy(dtype=float)
        return np.asarray(X, dtype=float)

    def _splits(self, y) -> list:
        if isinstance(self.inner_cv, (int, np.integer)):
            cv = StratifiedShuffleSplit(
                n_splits=int(self.inner_cv),
                test_size=self.inner_test_size,
                random_state=int(np.random.SeedSequence([self.seed, 1]).generate_state(1)[0]),
            )
        else:
            cv = self.inner_cv
        return [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(np.zeros(len(y)), y)]

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, X, y):
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            names = [str(c) for c in X.columns]
        else:
            names = [f"x{i}" for i in range(np.asarray(X).shape[1])]
        Xa = self._as_array(X)
        y = np.asarray(y).astype(int)
        self.classes_ = np.array([0, 1])
        if set(np.unique(y)) - {0, 1} or len(np.unique(y)) < 2:
            raise ValueError("WORCAutoML needs a binary 0/1 outcome with both classes present")
        self.groups_ = feature_groups(names)
        rng = np.random.default_rng(self.seed)
        present = sorted(set(self.groups_))
        self.workflows_ = [sample_workflow(rng, present, self.space) for _ in range(int(self.n_workflows))]
        splits = self._splits(y)
        has_nan = bool(np.isnan(Xa).any())
        prefixes = _build_prefixes(Xa, y, splits, self.workflows_, has_nan) if self.use_prefix_cache else {}
        items = list(enumerate(self.workflows_))
        n_jobs = int(self.n_jobs or 1)
        if n_jobs == 1:
            results = _evaluate_chunk(
                Xa, y, splits, prefixes, items, self.groups_, has_nan, self.scoring, self.use_prefix_cache
            )
        else:
            chunks = [items[k :: n_jobs * 4] for k in range(n_jobs * 4)]
            parts = Parallel(n_jobs=n_jobs)(
                delayed(_evaluate_chunk)(
                    Xa, y, splits, prefixes, c, self.groups_, has_nan, self.scoring, self.use_prefix_cache
                )
                for c in chunks
                if c
            )
            results = [r for part in parts for r in part]
        results.sort(key=lambda r: r[0])
        scores = np.array([r[1] for r in results], dtype=float)  # (n_workflows, n_splits)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            failed = np.isnan(scores).any(axis=1)
            mean = np.where(failed, np.nan, np.nanmean(np.where(np.isnan(scores), 0, scores), axis=1))
        order = np.lexsort((np.arange(len(mean)), -np.nan_to_num(mean, nan=-np.inf)))
        rank = np.empty(len(order), dtype=int)
        rank[order] = np.arange(1, len(order) + 1)
        self.cv_results_ = pd.DataFrame(
            {
                "workflow": np.arange(len(mean)),
                "mean_score": mean,
                "rank": rank,
                "classifier": [c["classifier"]["name"] for c in self.workflows_],
                "description": [describe_workflow(c) for c in self.workflows_],
                **{f"split{s}_score": scores[:, s] for s in range(scores.shape[1])},
            }
        )
        self.inner_splits_ = splits
        # refit the best workflows on all training data (skipping any that fail)
        self.members_, self.member_ids_ = [], []
        refits_failed = 0
        import sklearn

        with (
            sklearn.config_context(skip_parameter_validation=True),
            cached_param_names(),
            warnings.catch_warnings(),
            np.errstate(all="ignore"),
        ):
            warnings.simplefilter("ignore")
            for i in order:
                if len(self.members_) >= int(self.n_top) or not np.isfinite(mean[i]):
                    break
                try:
                    member = build_workflow(self.workflows_[i], self.groups_).fit(Xa, y)
                    if not np.all(np.isfinite(member.predict_proba(Xa[:5]))):
                        refits_failed += 1
                        continue
                except Exception:  # noqa: BLE001 - WORC skips a failing refit
                    refits_failed += 1
                    continue
                self.members_.append(member)
                self.member_ids_.append(int(i))
        if not self.members_:
            raise RuntimeError("WORCAutoML: no workflow could be fitted")
        self.fallbacks_ = self._fallbacks(failed, refits_failed)
        return self

    def _fallbacks(self, failed: np.ndarray, refits_failed: int) -> dict[str, int]:
        """What the fit did that the workflows as sampled did not ask for (see :data:`FALLBACKS`): counts
        over the search (failed workflows) and over the refitted ensemble members (skipped steps)."""
        out = {
            "workflows_failed": int(failed.sum()),
            "refits_failed": int(refits_failed),
            "ensemble_short": max(0, int(self.n_top) - len(self.members_)),
            "lr_solver_replaced": 0,
            "lr_iteration_cap": 0,
            "scaling_fallback_columns": 0,
        }
        for step in _SKIPPABLE_STEPS:
            out[f"{step}_skipped"] = 0
        for member, i in zip(self.members_, self.member_ids_):
            for step in _SKIPPABLE_STEPS:
                est = member.named_steps.get(step)
                out[f"{step}_skipped"] += int(bool(getattr(est, "skipped_", False)))
            clf = self.workflows_[i]["classifier"]
            out["lr_solver_replaced"] += int(clf["name"] == "LR" and lr_solver(clf) != worc_lr_solver(clf))
            lr = member.named_steps["classifier"]
            out["lr_iteration_cap"] += int(clf["name"] == "LR" and int(np.max(lr.n_iter_)) >= lr.max_iter)
            scaler = member.named_steps.get("scaling")
            out["scaling_fallback_columns"] += int(getattr(scaler, "n_fallback_", 0))
        return out

    # -- predict -----------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """The mean of the ensemble members' probabilities. A member that fails on ``X`` is left out and
        counted in ``predict_failures_`` (a fallback the chapter reports); if every member fails this raises."""
        Xa = self._as_array(X)
        probs = []
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for m in self.members_:
                try:
                    p = m.predict_proba(Xa)[:, 1]
                except Exception:  # noqa: BLE001 - a member that fails is left out
                    continue
                if np.all(np.isfinite(p)):
                    probs.append(p)
        self.predict_failures_ = len(self.members_) - len(probs)
        if not probs:
            raise RuntimeError(f"WORCAutoML: all {len(self.members_)} ensemble members failed to predict")
        p = np.mean(np.vstack(probs), axis=0)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def decision_function(self, X) -> np.ndarray:
        return self.predict_proba(X)[:, 1]


# ---------------------------------------------------------------------------------------------
# WORC's evaluation: 100 random splits (corrected resampled t-test) and bootstrap on a test set
# ---------------------------------------------------------------------------------------------


def binary_metrics(y, score, threshold: float = 0.5) -> dict[str, float]:
    """AUC, BCA, SEN, SPE (and ACC) of scores with the class cut at ``threshold`` (WORC: 0.5)."""
    y = np.asarray(y).astype(int)
    score = np.asarray(score, dtype=float)
    pred = (score >= threshold).astype(int)
    pos, neg = y == 1, y == 0
    sen = float(pred[pos].mean()) if pos.any() else float("nan")
    spe = float((1 - pred[neg]).mean()) if neg.any() else float("nan")
    auc = float(roc_auc_score(y, score)) if pos.any() and neg.any() else float("nan")
    return {"AUC": auc, "BCA": (sen + spe) / 2, "SEN": sen, "SPE": spe, "ACC": float((pred == y).mean())}


def _code_version() -> str:
    """sha256 of this module's code (its syntax tree without docstrings, so comments and docs do not
    count): cached predictions are reused only by the same code."""
    import ast
    import hashlib

    tree = ast.parse(Path(__file__).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    tree.body = [
        n
        for n in tree.body
        if not (isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") in ("DEPARTURES", "FALLBACKS"))
    ]
    return hashlib.sha256(ast.unparse(tree).encode()).hexdigest()[:16]


def data_fingerprint(X: pd.DataFrame, y: pd.Series) -> str:
    """A hash of the feature values, column names, index and outcome (for cache keys)."""
    import hashlib

    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    h.update("|".join(map(str, X.columns)).encode())
    h.update(pd.util.hash_pandas_object(pd.Series(np.asarray(y), index=X.index), index=True).to_numpy().tobytes())
    return h.hexdigest()[:32]


def fallback_counts(model) -> dict[str, int]:
    """A fitted :class:`WORCAutoML`'s fallbacks (:data:`FALLBACKS`) after its last prediction; {} otherwise."""
    if not hasattr(model, "fallbacks_"):
        return {}
    return {**model.fallbacks_, "predict_failures": int(getattr(model, "predict_failures_", 0))}


def fit_predict_split(
    make_model: Callable[[int], Any], X: pd.DataFrame, y: pd.Series, train_ids, test_ids, seed: int, cache_file=None
) -> pd.DataFrame:
    """Fit ``make_model(seed)`` on ``train_ids`` and return the test patients' scores
    (read from / written to ``cache_file`` when given)."""
    import sklearn
    from threadpoolctl import threadpool_limits

    from replicate.io import atomic_write_text

    if cache_file is not None and Path(cache_file).exists():
        return pd.read_json(Path(cache_file), orient="split", dtype={"patient_id": str})
    import time

    t_wall, t_cpu = time.perf_counter(), time.process_time()
    with threadpool_limits(1), sklearn.config_context(assume_finite=False):
        model = make_model(seed).fit(X.loc[list(train_ids)], y.loc[list(train_ids)])
        p = model.predict_proba(X.loc[list(test_ids)])[:, 1]
    out = pd.DataFrame(
        {
            "patient_id": [str(i) for i in test_ids],
            "y": y.loc[list(test_ids)].to_numpy().astype(int),
            "score": p,
            "fit_wall_s": time.perf_counter() - t_wall,
            "fit_cpu_s": time.process_time() - t_cpu,
        }
    )
    for k, v in fallback_counts(model).items():
        out[f"fb_{k}"] = v
    if cache_file is not None:
        atomic_write_text(cache_file, out.to_json(orient="split", index=False, double_precision=15))
    return out


def run_random_splits(
    make_model: Callable[[int], Any],
    X: pd.DataFrame,
    y: pd.Series,
    splits: Sequence[tuple[Sequence, Sequence]],
    seed: int = 0,
    n_jobs: int = 1,
    cache_dir=None,
    cache_key: Any = None,
) -> pd.DataFrame:
    """Fit a fresh model on each split's training patients and score its test patients.

    ``make_model(seed) -> estimator``; ``splits``: (train_ids, test_ids) pairs of ``X.index`` labels.
    Returns a long DataFrame (split, patient_id, y, score, fit_wall_s, fit_cpu_s: the split's fit time,
    and ``fb_<name>``: the split's fallback counts, :func:`fallback_counts`, both repeated on its rows).
    Parallel over splits (``n_jobs``).

    ``cache_dir`` + ``cache_key`` (anything JSON-able that identifies the model, e.g. its parameters):
    each split's predictions are stored under a hash of (key, data, split, seed, this module's code),
    so an interrupted or repeated run only fits the splits it has not done yet."""
    from replicate.io import stable_hash

    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(len(splits))]
    files: list = [None] * len(splits)
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        fp = data_fingerprint(X, y)
        code = _code_version()
        files = [
            cache_dir
            / (
                stable_hash(
                    {
                        "key": cache_key,
                        "data": fp,
                        "train": list(map(str, tr)),
                        "test": list(map(str, te)),
                        "seed": s,
                        "code": code,
                    }
                )[:40]
                + ".json"
            )
            for (tr, te), s in zip(splits, seeds)
        ]
    parts = Parallel(n_jobs=n_jobs)(
        delayed(fit_predict_split)(make_model, X, y, tr, te, s, f) for (tr, te), s, f in zip(splits, seeds, files)
    )
    return pd.concat([p.assign(split=k) for k, p in enumerate(parts)], ignore_index=True)


def corrected_t_ci(values, n_train: int, n_test: int, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the corrected resampled t-test CI (Nadeau & Bengio 2003) of the mean over
    splits, unclipped (:func:`replicate.stats.resampled_ttest.corrected_resampled_ttest_ci`, which is
    WORC's ``compute_confidence``). Splits where the metric is undefined (nan) are dropped, as WORC does."""
    from replicate.stats.resampled_ttest import corrected_resampled_ttest_ci

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        m = float(v.mean()) if len(v) else float("nan")
        return m, m, m
    return corrected_resampled_ttest_ci(v, n_train=n_train, n_test=n_test, level=level, clip=False)


def per_split_metrics(preds: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    """AUC, BCA, SEN, SPE, ACC of every split of :func:`run_random_splits`'s output."""
    rows = []
    for k, g in preds.groupby("split", sort=True):
        rows.append({"split": k, **binary_metrics(g["y"], g["score"], threshold)})
    return pd.DataFrame(rows).set_index("split")


def summarize_random_splits(
    preds: pd.DataFrame, n_train: int, n_test: int, threshold: float = 0.5, level: float = 0.95
) -> pd.DataFrame:
    """Per-split metrics -> mean and corrected resampled t-test CI per metric (WORC's evaluation).

    Returns a DataFrame indexed by metric with columns value, low, high, low_raw, high_raw, n_splits.
    ``low``/``high`` are clipped to [0, 1] (a mean of proportions cannot leave it; WORC does not clip and
    its t-interval can pass 1), ``*_raw`` are the unclipped bounds."""
    per = per_split_metrics(preds, threshold)
    rows = {}
    for metric in ("AUC", "BCA", "SEN", "SPE", "ACC"):
        m, lo, hi = corrected_t_ci(per[metric].to_numpy(), n_train, n_test, level)
        rows[metric] = {
            "value": m,
            "low": max(0.0, lo),
            "high": min(1.0, hi),
            "low_raw": lo,
            "high_raw": hi,
            "n_splits": int(per[metric].notna().sum()),
        }
    return pd.DataFrame(rows).T


def worc_bootstrap(
    y, score, n_boot: int = 10000, seed: int = 0, threshold: float = 0.5, level: float = 0.95, stratified: bool = True
) -> pd.DataFrame:
    """WORC's test-set bootstrap: each metric on the whole test set, with the CI
    ``metric +/- z * sd(bootstrap metrics)`` (WORC.plotting.compute_CI.compute_confidence_bootstrap),
    resampling stratified on the outcome (as the paper). The resamples are those of
    :func:`replicate.stats.bootstrap.bootstrap_indices` (AUCs by the vectorised
    :func:`replicate.stats.bootstrap.bootstrap_auc` on the same draws).

    DataFrame indexed by metric: value (whole set), boot_mean, low, high (clipped to [0, 1]),
    low_raw, high_raw, n_boot."""
    from replicate.stats.bootstrap import bootstrap_auc, bootstrap_indices

    y = np.asarray(y).astype(int)
    score = np.asarray(score, dtype=float)
    full = binary_metrics(y, score, threshold)
    pred = (score >= threshold).astype(int)
    idx = np.stack(list(bootstrap_indices(y, n_boot=n_boot, seed=seed, stratified=stratified)))  # (B, N)
    yb, pb = y[idx], pred[idx]
    npos, nneg = yb.sum(axis=1), (1 - yb).sum(axis=1)
    sen = np.where(npos > 0, (pb * yb).sum(axis=1) / np.maximum(npos, 1), np.nan)
    spe = np.where(nneg > 0, ((1 - pb) * (1 - yb)).sum(axis=1) / np.maximum(nneg, 1), np.nan)
    boot = {
        "AUC": bootstrap_auc(y, score, n_boot=n_boot, seed=seed, stratified=stratified),
        "SEN": sen,
        "SPE": spe,
        "BCA": (sen + spe) / 2,
        "ACC": (pb == yb).mean(axis=1),
    }
    z = float(st.norm.ppf(0.5 + level / 2))
    rows = {}
    for k, v in full.items():
        sd = float(np.nanstd(boot[k]))
        lo, hi = v - z * sd, v + z * sd
        rows[k] = {
            "value": v,
            "boot_mean": float(np.nanmean(boot[k])),
            "low": max(0.0, lo),
            "high": min(1.0, hi),
            "low_raw": lo,
            "high_raw": hi,
            "n_boot": n_boot,
        }
    return pd.DataFrame(rows).T


# ---------------------------------------------------------------------------------------------
# Evaluating several models over the same random splits; comparing them
# ---------------------------------------------------------------------------------------------


@dataclass
class SplitEvaluation:
    """One model over a set of random train/test splits (WORC's cross-validation).

    ``preds``: split, patient_id, y, score (one row per test patient per split); ``per_split``: AUC, BCA,
    SEN, SPE, ACC per split; ``summary``: mean and corrected resampled t-test CI per metric
    (:func:`summarize_random_splits`); ``n_train`` / ``n_test``: mean split sizes. ``seed_values``: when
    the evaluation pools R re-runs with different seeds (:func:`pool_seed_runs`), each run's value per
    metric; ``None`` for a single run."""

    preds: pd.DataFrame
    per_split: pd.DataFrame
    summary: pd.DataFrame
    n_train: float
    n_test: float
    seed_values: dict[str, list[float]] | None = None
    run_per_split: pd.DataFrame | None = None

    def seed_sd_from_splits(self, metric: str) -> float:
        """The SD of one run's mean over the splits, estimated from the runs' spread *within* each split:
        ``sqrt(sum_j s_j^2) / J`` (``s_j``: SD over the R runs at split j). Each split's fit draws its own
        seeds, so its seed noise is independent of the other splits'; this estimate has J (R - 1) degrees
        of freedom where the SD of the R run means has R - 1. NaN for a single run."""
        if self.run_per_split is None:
            return float("nan")
        var = self.run_per_split[metric].groupby(level="split").var(ddof=1).dropna()
        return float(np.sqrt(var.sum()) / len(var)) if len(var) else float("nan")

    def patient_scores(self) -> pd.DataFrame:
        """Each patient's mean test score over the splits that tested it (y, score, n_tested)."""
        g = self.preds.groupby("patient_id", sort=True)
        return pd.DataFrame({"y": g["y"].first(), "score": g["score"].mean(), "n_tested": g.size()})

    def _per_fit(self) -> pd.DataFrame:
        """One row per fit (split, and run when pooled)."""
        keys = ["run", "split"] if "run" in self.preds else ["split"]
        return self.preds.groupby(keys).first()

    @property
    def cpu_seconds(self) -> float:
        return float(self._per_fit()["fit_cpu_s"].sum()) if "fit_cpu_s" in self.preds else 0.0

    def fallbacks(self) -> dict[str, int]:
        """The fallbacks (:data:`FALLBACKS`) the fits took, summed over the splits (and runs)."""
        per_fit = self._per_fit()
        return {c[3:]: int(per_fit[c].sum()) for c in per_fit.columns if c.startswith("fb_")}


def evaluate_random_splits(
    make_model: Callable[[int], Any],
    X: pd.DataFrame,
    y: pd.Series,
    splits: Sequence[tuple[Sequence, Sequence]],
    *,
    seed: int = 0,
    n_jobs: int = 1,
    cache_dir=None,
    cache_key: Any = None,
    threshold: float = 0.5,
    level: float = 0.95,
) -> SplitEvaluation:
    """:func:`run_random_splits` + per-split metrics + the corrected resampled t-test summary."""
    preds = run_random_splits(
        make_model, X, y, splits, seed=seed, n_jobs=n_jobs, cache_dir=cache_dir, cache_key=cache_key
    )
    n_train = float(np.mean([len(tr) for tr, _ in splits]))
    n_test = float(np.mean([len(te) for _, te in splits]))
    return SplitEvaluation(
        preds,
        per_split_metrics(preds, threshold),
        summarize_random_splits(preds, n_train, n_test, threshold, level),
        n_train,
        n_test,
    )


def pool_seed_runs(runs: Sequence[SplitEvaluation], level: float = 0.95) -> SplitEvaluation:
    """R re-runs of one model on the SAME splits with different seeds, as one evaluation.

    The seed changes everything the method draws (the workflows searched, the inner splits, each
    workflow's random state), not the patients: the runs' spread is the method's own variability, which
    an equivalence test on the same data needs (``seed_values``). The pooled ``per_split`` metrics are
    the runs' per-split means; ``summary``'s value per metric is the mean of the runs' values (which
    ``seed_values`` holds), its CI the corrected resampled t-test on the pooled per-split metrics;
    ``preds`` stacks the runs (column ``run``), so :meth:`SplitEvaluation.patient_scores` averages a
    patient's scores over runs and splits."""
    if not runs:
        raise ValueError("pool_seed_runs needs at least one run")
    if any(not r.per_split.index.equals(runs[0].per_split.index) for r in runs):
        raise ValueError("seed re-runs must cover the same splits")
    per_split = pd.concat([r.per_split for r in runs]).groupby(level=0).mean()
    seed_values = {m: [float(r.summary.loc[m, "value"]) for r in runs] for m in runs[0].summary.index}
    rows = {}
    for metric, vals in seed_values.items():
        _, lo, hi = corrected_t_ci(per_split[metric].to_numpy(), runs[0].n_train, runs[0].n_test, level)
        rows[metric] = {
            "value": float(np.mean(vals)),
            "low": max(0.0, lo),
            "high": min(1.0, hi),
            "low_raw": lo,
            "high_raw": hi,
            "n_splits": int(per_split[metric].notna().sum()),
        }
    preds = pd.concat([r.preds.assign(run=k) for k, r in enumerate(runs)], ignore_index=True)
    run_per_split = pd.concat({k: r.per_split for k, r in enumerate(runs)}, names=["run", "split"])
    return SplitEvaluation(
        preds, per_split, pd.DataFrame(rows).T, runs[0].n_train, runs[0].n_test, seed_values, run_per_split
    )


def describe_fallbacks(counts: dict[str, int], n_fits: int, n_workflows: int, n_top: int) -> str:
    """One sentence for the deviations: which fallbacks (:data:`FALLBACKS`) ``n_fits`` searches took."""
    per = {"workflows": n_fits * n_workflows, "members": n_fits * n_top}
    parts = []
    for key, text in FALLBACKS.items():
        k = int(counts.get(key, 0))
        if not k:
            continue
        if key == "scaling_fallback_columns":
            parts.append(f"{k} {text}")
        else:
            parts.append(f"{k} of {per['workflows'] if key.startswith('workflows') else per['members']} {text}")
    head = (
        f"AutoML fallbacks taken in this run ({n_fits} searches, {per['workflows']} sampled workflows, "
        f"up to {per['members']} ensemble members)"
    )
    return f"{head}: " + "; ".join(parts) + "." if parts else f"{head}: none."


def compare_split_evaluations(a: SplitEvaluation, b: SplitEvaluation, level: float = 0.95) -> dict:
    """Model ``a`` against model ``b`` evaluated on the same splits.

    * ``ttest_*``: corrected resampled t-test (Nadeau & Bengio) of the per-split AUC difference a - b,
      the test that matches a random-split design;
    * ``delong_*``: paired DeLong test on each patient's mean out-of-split score (one score per patient:
      the paper applies DeLong to Cohort 1 without saying how; this is our reading)."""
    from replicate.stats.auc import delong_test
    from replicate.stats.resampled_ttest import corrected_resampled_ttest

    da, db = a.per_split["AUC"], b.per_split["AUC"]
    ok = da.notna() & db.notna()
    t = corrected_resampled_ttest(da[ok].to_numpy(), db[ok].to_numpy(), n_train=a.n_train, n_test=a.n_test)
    pa, pb = a.patient_scores(), b.patient_scores()
    common = pa.index.intersection(pb.index)
    d = delong_test(
        pa.loc[common, "y"].to_numpy(),
        pa.loc[common, "score"].to_numpy(),
        pb.loc[common, "score"].to_numpy(),
        level=level,
    )
    return {
        "diff": float(da[ok].mean() - db[ok].mean()),
        "ttest_se": t.se,
        "ttest_t": t.t,
        "ttest_p": t.p_value,
        "n_splits": int(ok.sum()),
        "delong_auc_a": d.auc_a,
        "delong_auc_b": d.auc_b,
        "delong_diff": d.diff,
        "delong_se": d.se,
        "delong_z": d.z,
        "delong_p": d.p_value,
        "delong_ci": list(d.ci),
        "n_patients": int(len(common)),
    }


def encode_table(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Clinical / semantic columns as numbers: numeric columns as they are, a two-level column as 0/1,
    other categorical columns one-hot (all levels; WORC's OneHotEncoding). Column names keep the
    variable's name first (``location=trunk``), so :func:`feature_group` files them under ``other``."""
    parts = []
    for c in columns:
        col = table[c]
        if pd.api.types.is_numeric_dtype(col):
            parts.append(col.astype(float).rename(c))
            continue
        levels = sorted(col.dropna().astype(str).unique())
        if len(levels) == 2:
            parts.append((col.astype(str) == levels[1]).astype(float).where(col.notna()).rename(f"{c}={levels[1]}"))
        else:
            for lev in levels:
                parts.append((col.astype(str) == lev).astype(float).where(col.notna()).rename(f"{c}={lev}"))
    return pd.concat(parts, axis=1)
