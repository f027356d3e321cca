"""LASSO feature selection with the penalty chosen by cross-validation (the papers' "Rad-score").

``LassoSelector`` fits an L1-penalised model on the training rows, with the
penalty chosen by ``cv``-fold cross-validation, and keeps the features with
non-zero coefficients. Two kinds, as in the papers:

* ``kind="logistic"`` (default): L1 logistic regression,
  :class:`sklearn.linear_model.LogisticRegressionCV` (``l1_ratios=(1.0,)``,
  i.e. ``penalty="l1"``; solver ``liblinear`` or ``saga``); the penalty
  grid is ``Cs`` (by default 20 values on a glmnet-like path from the
  smallest C that keeps any feature to 100 times it) and the CV criterion
  ``scoring`` (default ``"neg_log_loss"``, the binomial deviance that
  ``glmnet``'s ``cv.glmnet`` uses by default; computed by a lean
  equivalent of scikit-learn's scorer for speed). ``C_`` is the chosen inverse penalty and
  ``alpha_ = 1 / (C_ * n_samples)`` the equivalent glmnet ``lambda``.
* ``kind="linear"``: least-squares LASSO on the 0/1 label,
  :class:`sklearn.linear_model.LassoCV` (``alphas`` grid, mean squared
  error); ``alpha_`` is the chosen penalty.

The folds are stratified on the label, shuffled with ``random_state``
(deterministic); ``cv`` is lowered to the minority-class count when that
is smaller (at least 2).

The features are used on the scale they arrive in: put
:class:`~replicate.learn.ZScore` before (as the papers standardise before
LASSO). ``coef_`` (a Series over all input features, zeros included),
``intercept_`` and :meth:`score_formula` describe the fitted score, e.g.
``score = 0.312 + 0.845 × wavelet_glcm_Idm − 0.201 × original_shape_Sphericity``;
:meth:`rad_score` evaluates it.

If no coefficient survives (the CV chose a penalty that removes every
feature), the single best feature is kept with a :class:`UserWarning`:
the first feature to enter the LASSO path, ``argmax_j |x_j^T (y - mean(y))|``
on centred columns, refitted alone without penalty (``fallback_`` is True).
With ``max_features``, only the ``max_features`` largest ``|coef|`` are kept
(their coefficients are those of the CV-chosen fit; the others are set to 0).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LassoCV, LinearRegression, LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import l1_min_c
from sklearn.utils.validation import check_is_fitted

from ._base import FrameSelector, as_series

__all__ = ["LassoSelector", "format_score_formula"]


def format_score_formula(intercept: float, coef: pd.Series, name: str = "score", decimals: int = 3) -> str:
    """``"score = b0 + b1 × feature1 − b2 × feature2 …"`` (Unicode × and −; zero coefficients left out)."""

    def num(v):
        return f"{abs(v):.{decimals}f}"

    out = f"{name} = {'−' if intercept < 0 else ''}{num(intercept)}"
    for feat, b in coef.items():
        if b == 0:
            continue
        out += f" {'−' if b < 0 else '+'} {num(b)} × {feat}"
    return out


def _neg_log_loss(estimator, X, y) -> float:
    """``-log_loss(y, predict_proba(X))`` of a binary linear model, without scikit-learn's per-call checks.

    Same numbers as the ``"neg_log_loss"`` scorer (probabilities clipped to
    ``[eps, 1 - eps]``); used because the CV calls it for every fold x C.
    """
    z = np.asarray(X, dtype=float) @ estimator.coef_.ravel() + float(np.ravel(estimator.intercept_)[0])
    p = np.clip(expit(z), np.finfo(float).eps, 1 - np.finfo(float).eps)
    yy = (np.asarray(y) == estimator.classes_[1]).astype(float)
    return float(-np.mean(-(yy * np.log(p) + (1 - yy) * np.log(1 - p))))


class LassoSelector(FrameSelector):
    """Keep the features with non-zero LASSO coefficients, the penalty chosen by cross-validation.

    Parameters
    ----------
    cv : int
        Folds of the cross-validation that chooses the penalty (default 10).
    kind : ``"logistic"`` | ``"linear"``
    Cs : int or list of float
        Inverse penalties tried (logistic kind). An int gives a glmnet-like
        path: that many log-spaced values from the smallest C that keeps
        a feature (:func:`sklearn.svm.l1_min_c`, glmnet's ``lambda_max``)
        to ``path_ratio`` times it (glmnet's ``lambda.min.ratio = 0.01``).
    path_ratio : float
        Span of that path (default 100).
    alphas : int or list of float
        Penalties tried (linear kind; int: that many on LassoCV's automatic grid).
    scoring : str
        CV criterion of the logistic kind (default ``"neg_log_loss"``).
    solver : ``"liblinear"`` | ``"saga"``
        Solver of the logistic kind.
    random_state : int
        Seed of the fold shuffling (and of the solvers).
    max_features : int or None
        Keep at most this many features (largest ``|coef|``).
    max_iter : int
        Iterations of the solvers.
    """

    def __init__(
        self,
        cv: int = 10,
        kind: str = "logistic",
        Cs=20,
        path_ratio: float = 100.0,
        alphas=100,
        scoring: str = "neg_log_loss",
        solver: str = "liblinear",
        random_state: int = 0,
        max_features: int | None = None,
        max_iter: int = 10000,
    ):
        self.cv = cv
        self.kind = kind
        self.Cs = Cs
        self.path_ratio = path_ratio
        self.alphas = alphas
        self.scoring = scoring
        self.solver = solver
        self.random_state = random_state
        self.max_features = max_features
        self.max_iter = max_iter

    def _splitter(self, y: np.ndarray) -> StratifiedKFold:
        counts = np.unique(y, return_counts=True)[1]
        n = int(min(int(self.cv), counts.min()))
        if n < 2:
            raise ValueError("LassoSelector: each class needs at least 2 training patients for cross-validation")
        return StratifiedKFold(n_splits=n, shuffle=True, random_state=self.random_state)

    def fit(self, X, y):
        df = self._fit_columns(X).astype(float)
        if df.isna().to_numpy().any():
            raise ValueError("LassoSelector: X has missing values; impute first")
        ys = as_series(y, df.index)
        a = df.to_numpy()
        yv = ys.to_numpy()
        classes = np.unique(yv)
        if len(classes) != 2:
            raise ValueError(f"LassoSelector: y must have exactly 2 classes, got {classes.tolist()}")
        ybin = (yv == classes[1]).astype(float)
        self.classes_ = classes
        splitter = self._splitter(yv)
        self.n_splits_ = splitter.get_n_splits()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.kind == "logistic":
                if self.solver not in ("liblinear", "saga"):
                    raise ValueError("LassoSelector: solver must be 'liblinear' or 'saga' for the L1 penalty")
                Cs = self.Cs
                if isinstance(Cs, (int, np.integer)):
                    c0 = float(l1_min_c(a, ybin, loss="log"))
                    Cs = c0 * np.logspace(0, np.log10(float(self.path_ratio)), int(Cs))
                self.Cs_ = np.asarray(Cs, dtype=float)
                est = LogisticRegressionCV(
                    Cs=Cs,
                    l1_ratios=(1.0,),
                    cv=splitter,
                    solver=self.solver,
                    scoring=_neg_log_loss if self.scoring == "neg_log_loss" else self.scoring,
                    max_iter=self.max_iter,
                    random_state=self.random_state,
                    use_legacy_attributes=False,
                )
                est.fit(a, ybin)
                coef = est.coef_.ravel().copy()
                intercept = float(np.ravel(est.intercept_)[0])
                self.C_ = float(np.ravel(est.C_)[0])
                self.alpha_ = 1.0 / (self.C_ * a.shape[0])
            elif self.kind == "linear":
                est = LassoCV(
                    alphas=self.alphas,
                    cv=list(splitter.split(a, yv)),
                    max_iter=self.max_iter,
                    random_state=self.random_state,
                )
                est.fit(a, ybin)
                coef = est.coef_.ravel().copy()
                intercept = float(est.intercept_)
                self.alpha_ = float(est.alpha_)
                self.C_ = None
            else:
                raise ValueError(f"LassoSelector: kind must be 'logistic' or 'linear', got {self.kind!r}")
        self.estimator_ = est
        self.fallback_ = False
        if not np.any(coef != 0):
            ac = a - a.mean(axis=0)
            j = int(np.argmax(np.abs(ac.T @ (ybin - ybin.mean()))))
            warnings.warn(
                f"LassoSelector: no feature survived the CV-chosen penalty; keeping the first feature "
                f"to enter the LASSO path ({self._columns[j]!r}), refitted alone",
                UserWarning,
                stacklevel=2,
            )
            if self.kind == "logistic":
                single = LogisticRegression(C=np.inf, max_iter=self.max_iter).fit(a[:, [j]], ybin)
                b, b0 = float(single.coef_.ravel()[0]), float(single.intercept_[0])
            else:
                single = LinearRegression().fit(a[:, [j]], ybin)
                b, b0 = float(single.coef_.ravel()[0]), float(single.intercept_)
            coef = np.zeros(a.shape[1])
            coef[j] = b if b != 0 else np.finfo(float).tiny
            intercept = b0
            self.fallback_ = True
        if self.max_features is not None and np.count_nonzero(coef) > int(self.max_features):
            order = np.argsort(-np.abs(coef), kind="stable")
            coef[order[int(self.max_features) :]] = 0.0
        self.coef_ = pd.Series(coef, index=self._columns, dtype=float)
        self.intercept_ = intercept
        self._set_support(coef != 0)
        return self

    def score_formula(self, name: str = "score", decimals: int = 3) -> str:
        """The fitted score as the papers print it: ``"score = b0 + b1 × feature1 − b2 × feature2 …"``."""
        check_is_fitted(self, "coef_")
        return format_score_formula(self.intercept_, self.coef_[self.support_], name=name, decimals=decimals)

    def rad_score(self, X) -> pd.Series | np.ndarray:
        """``intercept_ + X @ coef_`` (the log-odds for the logistic kind) for new rows."""
        check_is_fitted(self, "coef_")
        df, was_pandas = self._frame(X)
        s = self.intercept_ + df.to_numpy(dtype=float) @ self.coef_.to_numpy()
        return pd.Series(s, index=df.index, name="rad_score") if was_pandas else s
