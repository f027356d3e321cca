"""Classifier factory: the papers' classifiers as imblearn pipelines (scaler -> optional SMOTE -> classifier).

``make_classifier(name)`` returns an unfitted
:class:`imblearn.pipeline.Pipeline` with steps ``scale`` (a
:class:`~replicate.learn.ZScore`, when ``scale=True``), ``smote``
(:class:`AdaptiveSMOTE`, when ``smote=True``; applied to the training rows
only, never to rows being predicted) and ``clf``. ``tune=True`` wraps it in
:class:`~sklearn.model_selection.GridSearchCV` over :data:`PARAM_GRIDS`
with an inner stratified ``cv``-fold CV (shuffled with ``seed``, scored by
ROC AUC, refitted on the whole training set), so tuning happens inside
whatever outer resampling the caller uses.

Names (:data:`DISPLAY_NAMES` gives the labels the chapters print):

=============  ======================  ===============================================
name           display name            estimator
=============  ======================  ===============================================
``lr``         Logistic regression     ``LogisticRegression(C=1, lbfgs)``
``dt``         Decision tree           ``DecisionTreeClassifier``
``rf``         Random forest           ``RandomForestClassifier(n_estimators=200)``
``svm``        SVM                     ``SVC(kernel="rbf", probability=True)`` (:class:`SVMClassifier`)
``svm_linear`` Linear SVM              ``SVC(kernel="linear", probability=True)``
``adaboost``   AdaBoost                ``AdaBoostClassifier`` (50 stumps)
``lda``        LDA                     ``LinearDiscriminantAnalysis`` (lsqr, Ledoit-Wolf shrinkage)
``qda``        QDA                     ``QuadraticDiscriminantAnalysis(reg_param=0.1)``
``gnb``        Naive Bayes             ``GaussianNB``
``gbm``        Gradient boosting       ``GradientBoostingClassifier``
=============  ======================  ===============================================

Every random estimator gets ``random_state=seed``. LDA uses shrinkage and
QDA a small regularisation so that they are defined when there are more
features than patients in a class (radiomics); both are documented
departures from the scikit-learn defaults.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.base import BaseEstimator, clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.ensemble import AdaBoostClassifier, GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from replicate.learn import ZScore

__all__ = [
    "CLASSIFIERS",
    "DISPLAY_NAMES",
    "PARAM_GRIDS",
    "AdaptiveSMOTE",
    "SVMClassifier",
    "make_classifier",
    "make_pipeline",
    "display_name",
    "available_classifiers",
    "base_classifier",
]

#: Display names of the classifiers, as the chapters print them.
DISPLAY_NAMES: dict[str, str] = {
    "lr": "Logistic regression",
    "dt": "Decision tree",
    "rf": "Random forest",
    "svm": "SVM",
    "svm_linear": "Linear SVM",
    "adaboost": "AdaBoost",
    "lda": "LDA",
    "qda": "QDA",
    "gnb": "Naive Bayes",
    "gbm": "Gradient boosting",
}

#: The small grids searched when ``tune=True`` (keys are ``clf__<parameter>``).
PARAM_GRIDS: dict[str, dict[str, list]] = {
    "lr": {"clf__C": [0.01, 0.1, 1.0, 10.0, 100.0]},
    "dt": {"clf__max_depth": [2, 3, 5, None], "clf__min_samples_leaf": [1, 5]},
    "rf": {"clf__max_depth": [None, 3, 6], "clf__max_features": ["sqrt", 0.3]},
    "svm": {"clf__C": [0.1, 1.0, 10.0, 100.0], "clf__gamma": ["scale", 0.001, 0.01, 0.1]},
    "svm_linear": {"clf__C": [0.001, 0.01, 0.1, 1.0, 10.0]},
    "adaboost": {"clf__n_estimators": [50, 100, 200], "clf__learning_rate": [0.1, 0.5, 1.0]},
    "lda": {"clf__shrinkage": ["auto", 0.1, 0.5, 0.9]},
    "qda": {"clf__reg_param": [0.0, 0.1, 0.5, 0.9]},
    "gnb": {"clf__var_smoothing": [1e-9, 1e-6, 1e-3, 1e-1]},
    "gbm": {"clf__n_estimators": [100, 200], "clf__learning_rate": [0.05, 0.1], "clf__max_depth": [2, 3]},
}


class SVMClassifier(SVC):
    """:class:`sklearn.svm.SVC` whose ``probability=True`` (libsvm's Platt scaling) stays quiet.

    scikit-learn 1.9 deprecates ``SVC(probability=True)`` in favour of
    ``CalibratedClassifierCV(SVC(), ensemble=False)`` (removal planned for
    1.11; the project pins 1.9). The papers' SVMs are libsvm with Platt
    scaling, which is what ``probability=True`` runs (internal 5-fold CV,
    seeded by ``random_state``), so it is kept and only its FutureWarning is
    silenced. Parameters are SVC's.
    """

    def fit(self, X, y, sample_weight=None):
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="The `probability` parameter was deprecated", category=FutureWarning
            )
            return super().fit(X, y, sample_weight=sample_weight)


def base_classifier(name: str, seed: int = 0) -> BaseEstimator:
    """The bare, unfitted estimator behind ``name`` (see the module table)."""
    makers = {
        "lr": lambda: LogisticRegression(C=1.0, max_iter=5000, random_state=seed),
        "dt": lambda: DecisionTreeClassifier(random_state=seed),
        "rf": lambda: RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1),
        "svm": lambda: SVMClassifier(kernel="rbf", probability=True, random_state=seed),
        "svm_linear": lambda: SVMClassifier(kernel="linear", probability=True, random_state=seed),
        "adaboost": lambda: AdaBoostClassifier(random_state=seed),
        "lda": lambda: LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"),
        "qda": lambda: QuadraticDiscriminantAnalysis(reg_param=0.1),
        "gnb": lambda: GaussianNB(),
        "gbm": lambda: GradientBoostingClassifier(random_state=seed),
    }
    if name not in makers:
        raise ValueError(f"unknown classifier {name!r}; available: {sorted(makers)}")
    return makers[name]()


#: name -> a zero-argument-besides-seed constructor (``CLASSIFIERS[name](seed)``).
CLASSIFIERS = {name: (lambda seed=0, _n=name: base_classifier(_n, seed)) for name in DISPLAY_NAMES}


def available_classifiers() -> list[str]:
    return list(DISPLAY_NAMES)


def display_name(name: str) -> str:
    """``"svm" -> "SVM"``; unknown names are returned unchanged."""
    return DISPLAY_NAMES.get(name, name)


class AdaptiveSMOTE(SMOTE):
    """SMOTE whose neighbour count shrinks to what a small training fold allows.

    Identical to :class:`imblearn.over_sampling.SMOTE` when every class to
    oversample has more than ``k_neighbors`` members; otherwise
    ``k_neighbors`` is lowered to ``n_minority - 1`` for that fit (recorded
    in ``k_neighbors_used_``), and with a single minority sample no
    synthetic sample can be made, so the data pass through unchanged (with a
    warning). The ``k_neighbors`` parameter itself is never modified.
    """

    def _validate_estimator(self):
        k = getattr(self, "_k_effective", None)
        if k is None or not isinstance(self.k_neighbors, (int, np.integer)):
            return super()._validate_estimator()
        from imblearn.utils import check_neighbors_object

        self.nn_k_ = check_neighbors_object("k_neighbors", int(k), additional_neighbor=1)

    def _fit_resample(self, X, y):
        targets = [c for c, n in self.sampling_strategy_.items() if n > 0]
        self._k_effective = None
        if targets and isinstance(self.k_neighbors, (int, np.integer)):
            n_min = min(int(np.sum(y == c)) for c in targets)
            if n_min < 2:
                warnings.warn(
                    "AdaptiveSMOTE: a class to oversample has a single training sample; no synthetic samples made",
                    UserWarning,
                    stacklevel=2,
                )
                self.k_neighbors_used_ = 0
                return X, y
            self._k_effective = min(int(self.k_neighbors), n_min - 1)
            self.k_neighbors_used_ = self._k_effective
        try:
            return super()._fit_resample(X, y)
        finally:
            self._k_effective = None


def make_classifier(
    name: str,
    *,
    seed: int = 0,
    smote: bool = False,
    scale: bool = True,
    tune: bool = False,
    cv: int = 5,
    k_neighbors: int = 5,
    grid: dict | None = None,
    scoring: str = "roc_auc",
    n_jobs: int | None = None,
    **params: Any,
):
    """An unfitted classifier pipeline: ``[ZScore] -> [AdaptiveSMOTE(random_state=seed)] -> clf``.

    ``params`` are set on the classifier (e.g. ``C=10``). ``tune=True``
    returns ``GridSearchCV(pipeline, grid or PARAM_GRIDS[name],
    cv=StratifiedKFold(cv, shuffle=True, random_state=seed),
    scoring=scoring)``.
    """
    clf = base_classifier(name, seed)
    if params:
        clf.set_params(**params)
    steps: list[tuple[str, Any]] = []
    if scale:
        steps.append(("scale", ZScore()))
    if smote:
        steps.append(("smote", AdaptiveSMOTE(random_state=seed, k_neighbors=k_neighbors)))
    steps.append(("clf", clf))
    pipe = Pipeline(steps)
    if not tune:
        return pipe
    return GridSearchCV(
        pipe,
        grid if grid is not None else PARAM_GRIDS[name],
        cv=StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed),
        scoring=scoring,
        refit=True,
        n_jobs=n_jobs,
        error_score="raise",
    )


def _step_name(est) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(est).__name__).lower()


def make_pipeline(steps_before: Sequence, classifier, **classifier_kwargs):
    """Prepend selection steps to a classifier: ``Pipeline([*steps_before, *classifier steps])``.

    ``steps_before``: estimators or ``(name, estimator)`` pairs (unnamed
    ones are named after their class, e.g. ``mrmr_selector``).
    ``classifier``: a name for :func:`make_classifier` (``classifier_kwargs``
    are passed on), an imblearn/sklearn ``Pipeline`` (its steps are
    appended, so ``clf`` stays the last step) or any estimator (including a
    ``GridSearchCV``, which then tunes only the classifier part on the
    selected features, inside each training fold). Estimators are cloned,
    so the arguments are never fitted in place.
    """
    if isinstance(classifier, str):
        classifier = make_classifier(classifier, **classifier_kwargs)
    elif classifier_kwargs:
        raise TypeError("classifier_kwargs are only used with a classifier name")
    steps: list[tuple[str, Any]] = []
    used: set[str] = set()

    def add(name, est):
        base, k = name, 2
        while name in used:
            name = f"{base}_{k}"
            k += 1
        used.add(name)
        steps.append((name, clone(est)))

    for s in steps_before:
        if isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str):
            add(s[0], s[1])
        else:
            add(_step_name(s), s)
    if hasattr(classifier, "steps") and isinstance(classifier.steps, list):
        for n, e in classifier.steps:
            add(n, e)
    else:
        add("clf", classifier)
    return Pipeline(steps)
