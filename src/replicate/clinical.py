"""Clinical model: univariate -> multivariable logistic regression (statsmodels), OR table, leak-free estimator.

The papers build their "clinical model" this way: every candidate variable
is tested alone (univariate logistic regression); those with
``P < p_enter`` (0.10 here; 0.05 or 0.10 in the papers) enter one
multivariable logistic regression; those with ``P < p_keep`` (0.05) there
are the "independent predictors", and the clinical model is the logistic
regression on them.

* :func:`univariate_multivariate` does that once on a table and returns a
  :class:`ClinicalSelection` with the paper-like ``table`` (variable,
  univariate OR [95% CI], P, multivariate OR [95% CI], P), the numbers
  behind it (``numeric``) and the ``selected`` variables.
* :class:`ClinicalLogit` is the same procedure as a scikit-learn
  classifier: selection happens inside ``fit``, so under cross-validation
  it only ever sees the training rows.
* :func:`nomogram_inputs` turns a fitted model into the arguments of
  :func:`replicate.plots.nomogram_plot`.

Conventions
-----------
* Outcome: the larger of the two labels is the event (1 = positive).
* Continuous variables enter as they are (OR per unit).
* Categorical variables (those in ``categorical``, plus any non-numeric
  column) are dummy-coded against a reference level: the level given in
  ``categorical={"var": ref}``, otherwise the first level (sorted, or the
  first category of a pandas Categorical). Terms are named
  ``"var[level]"``; a level absent from the training rows gets no term (and
  is treated as the reference when predicting, with a warning). A boolean
  column is numeric 0/1.
* P-values: Wald tests of the coefficients. A categorical variable with
  more than two levels enters / stays according to the likelihood-ratio
  test of all its terms together (its rows in the table show the per-level
  Wald P).
* ``method="single"`` (default, as the papers describe it): one
  multivariable model with every entered variable; its ORs are the
  table's multivariate columns and the variables with ``P < p_keep`` are
  selected. ``method="backward"``: backward elimination from that model
  (drop the variable with the largest P while it is ``>= p_keep``); the
  table then shows the final model.
* Perfect or quasi-complete separation (statsmodels'
  ``PerfectSeparationWarning``, non-convergence, or fitted probabilities
  of exactly 0 or 1): a separating variable is not estimable alone; it is
  reported in the table's ``note`` column and cannot enter (with a
  warning). If the multivariable model separates, :class:`SeparationError`
  (a ``ValueError``) names the variables; :class:`ClinicalLogit` then
  falls back (see there).
* Missing values in the candidates or the outcome are an error (the
  papers analyse complete cases; drop or impute first).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "ClinicalSelection",
    "ClinicalLogit",
    "SeparationError",
    "univariate_multivariate",
    "nomogram_inputs",
    "format_or",
    "format_p",
]

_EXTREME = 1e-8


class SeparationError(ValueError):
    """The outcome is perfectly (or quasi-completely) separated by the variables of a model."""


def format_p(p: float, decimals: int = 3) -> str:
    """``0.0123 -> "0.012"``, ``0.0002 -> "<0.001"`` (as the papers print P)."""
    if p is None or not np.isfinite(p):
        return ""
    floor = 10.0 ** (-decimals)
    return f"<{floor:.{decimals}f}" if p < floor else f"{p:.{decimals}f}"


def format_or(or_: float, low: float, high: float, decimals: int = 2) -> str:
    """``"2.31 [1.10, 4.85]"``; empty when not estimated."""
    if or_ is None or not np.isfinite(or_):
        return ""
    return f"{or_:.{decimals}f} [{low:.{decimals}f}, {high:.{decimals}f}]"


# --------------------------------------------------------------------------- encoding


@dataclass
class _Var:
    name: str
    categorical: bool
    levels: list = field(default_factory=list)  # categorical: non-reference levels seen in training
    reference: object = None
    lo: float = float("nan")  # numeric: training range
    hi: float = float("nan")

    @property
    def terms(self) -> list[str]:
        return [f"{self.name}[{lv}]" for lv in self.levels] if self.categorical else [self.name]


def _is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s))


def _categorical_spec(categorical) -> dict:
    if categorical is None:
        return {}
    if isinstance(categorical, Mapping):
        return dict(categorical)
    if isinstance(categorical, str):
        return {categorical: None}
    return {c: None for c in categorical}


def _encode_spec(df: pd.DataFrame, candidates: Sequence[str], categorical) -> dict[str, _Var]:
    spec = _categorical_spec(categorical)
    unknown = [c for c in spec if c not in candidates]
    if unknown:
        raise ValueError(f"categorical variables {unknown} are not among the candidates")
    out = {}
    for c in candidates:
        s = df[c]
        if c in spec or _is_categorical(s):
            if isinstance(s.dtype, pd.CategoricalDtype):
                present = set(s.dropna().unique())
                levels = [lv for lv in s.cat.categories if lv in present]
            else:
                levels = sorted(s.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
            ref = spec.get(c)
            if ref is None:
                ref = levels[0] if levels else None
            elif ref not in levels:
                raise ValueError(f"reference level {ref!r} of {c!r} is not among its levels {levels}")
            out[c] = _Var(c, True, [lv for lv in levels if lv != ref], ref)
        else:
            v = s.astype(float)
            out[c] = _Var(c, False, lo=float(v.min()), hi=float(v.max()))
    return out


def _design(df: pd.DataFrame, variables: Sequence[_Var], warn_unseen: bool = False) -> pd.DataFrame:
    cols = {}
    for v in variables:
        s = df[v.name]
        if v.categorical:
            if warn_unseen:
                seen = set(v.levels) | {v.reference}
                unseen = sorted({str(x) for x in s.dropna().unique() if x not in seen})
                if unseen:
                    warnings.warn(
                        f"{v.name}: level(s) {unseen} were not in the training data; "
                        f"treated as the reference {v.reference!r}",
                        UserWarning,
                        stacklevel=3,
                    )
            for lv in v.levels:
                cols[f"{v.name}[{lv}]"] = (s == lv).astype(float).to_numpy()
        else:
            cols[v.name] = s.astype(float).to_numpy()
    return pd.DataFrame(cols, index=df.index)


# --------------------------------------------------------------------------- fitting


@dataclass
class _Fit:
    params: pd.Series
    bse: pd.Series
    pvalues: pd.Series
    conf: pd.DataFrame
    llf: float
    separated: bool
    result: object


def _logit(y: np.ndarray, design: pd.DataFrame) -> _Fit:
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    Xc = sm.add_constant(design, has_constant="add")
    sep = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = sm.Logit(y, Xc).fit(disp=0, maxiter=200)
        except np.linalg.LinAlgError as e:
            raise SeparationError(f"singular design for {list(design.columns)}: {e}") from e
    for w in caught:
        if issubclass(w.category, (PerfectSeparationWarning, ConvergenceWarning)):
            sep = True
        elif not issubclass(w.category, RuntimeWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    conv = bool(res.mle_retvals.get("converged", True))
    p = np.asarray(res.predict(Xc))
    if not conv or np.any((p < _EXTREME) | (p > 1 - _EXTREME)):
        sep = True
    conf = res.conf_int()
    conf.columns = ["low", "high"]
    return _Fit(res.params, res.bse, res.pvalues, conf, float(res.llf), sep, res)


def _variable_p(y, design: pd.DataFrame, var: _Var, fit: _Fit) -> float:
    """Wald P for a one-term variable, likelihood-ratio P for a multi-term categorical."""
    from scipy import stats

    terms = var.terms
    if len(terms) == 1:
        return float(fit.pvalues[terms[0]])
    rest = design.drop(columns=terms)
    if rest.shape[1]:
        reduced = _logit(y, rest).llf
    else:
        ybar = y.mean()
        reduced = float(len(y) * (ybar * np.log(ybar) + (1 - ybar) * np.log(1 - ybar)))
    lr = 2 * (fit.llf - reduced)
    return float(stats.chi2.sf(max(lr, 0.0), df=len(terms)))


@dataclass
class ClinicalSelection:
    """Result of :func:`univariate_multivariate`.

    ``table``: the paper-like table (formatted strings), one row per term;
    ``numeric``: the same numbers as floats (index = term) with the
    variable-level P-values, ``entered`` / ``selected`` flags and notes;
    ``selected``: the variables kept (independent predictors);
    ``entered``: those that entered the multivariable model;
    ``univariate_p``: variable-level univariate P; ``multivariate``: the
    statsmodels result of the multivariable model shown in the table (None
    when nothing entered); ``notes``: separation and other messages.
    """

    table: pd.DataFrame
    numeric: pd.DataFrame
    selected: list
    entered: list
    univariate_p: pd.Series
    multivariate: object = None
    notes: list = field(default_factory=list)


def _prepare(df: pd.DataFrame, y, candidates: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    if not isinstance(df, pd.DataFrame):
        raise TypeError("the clinical table must be a pandas DataFrame (columns = variables)")
    candidates = list(candidates)
    missing = [c for c in candidates if c not in df.columns]
    if missing:
        raise KeyError(f"clinical variables {missing} are not columns of the table")
    if not candidates:
        raise ValueError("no candidate variables")
    sub = df.loc[:, candidates]
    if sub.isna().to_numpy().any():
        bad = {c: sub.index[sub[c].isna()].astype(str).tolist() for c in sub.columns[sub.isna().any()]}
        where = "; ".join(f"{c} missing for {ids}" for c, ids in bad.items())
        raise ValueError(f"missing values in {list(bad)} ({where}); drop or impute them first (complete-case analysis)")
    if isinstance(y, pd.Series) and not y.index.equals(df.index) and y.index.is_unique and df.index.isin(y.index).all():
        yv = y.loc[df.index].to_numpy()  # align a Series by patient id
    else:
        yv = np.asarray(y)
    if yv.shape != (len(df),):
        raise ValueError(f"y must have one value per row ({len(df)}), got shape {yv.shape}")
    if pd.isna(yv).any():
        raise ValueError(f"missing values in the outcome for {df.index[pd.isna(yv)].astype(str).tolist()}")
    classes = np.unique(yv)
    if len(classes) != 2:
        raise ValueError(f"the outcome must have exactly 2 classes, got {classes.tolist()}")
    return sub, (yv == classes[1]).astype(float), classes


def univariate_multivariate(
    df: pd.DataFrame,
    y,
    candidates: Sequence[str],
    p_enter: float = 0.10,
    p_keep: float = 0.05,
    categorical=None,
    method: str = "single",
    decimals: int = 2,
) -> ClinicalSelection:
    """Univariate screening (``P < p_enter``) then a multivariable logistic model (``P < p_keep`` kept).

    See the module docstring for the coding of categorical variables, the
    P-values, ``method`` and separation. Raises :class:`SeparationError` if
    the multivariable model is separated.
    """
    if method not in ("single", "backward"):
        raise ValueError("method must be 'single' or 'backward'")
    sub, yb, _ = _prepare(df, y, candidates)
    spec = _encode_spec(sub, list(candidates), categorical)
    rows = []
    notes: list[str] = []
    uni_p = {}
    for name, var in spec.items():
        terms = var.terms
        if not terms:
            notes.append(f"{name}: a single level in the data; not estimable")
            rows.append({"variable": name, "term": name, "note": "single level"})
            uni_p[name] = np.nan
            continue
        d = _design(sub, [var])
        try:
            f = _logit(yb, d)
        except SeparationError as e:
            f, msg = None, str(e)
        if f is None or f.separated:
            msg = "perfect separation: OR not estimable" if f is None or f.separated else msg
            notes.append(f"{name}: {msg}; it cannot enter the multivariable model")
            warnings.warn(
                f"clinical variable {name!r} separates the outcome (perfect or quasi-complete "
                "separation); its OR is not estimable and it is not entered",
                UserWarning,
                stacklevel=2,
            )
            uni_p[name] = np.nan
            for t in terms:
                rows.append({"variable": name, "term": t, "note": "perfect separation"})
            continue
        uni_p[name] = _variable_p(yb, d, var, f)
        for t, lv in zip(terms, var.levels if var.categorical else [None]):
            rows.append(
                {
                    "variable": name,
                    "term": t,
                    "level": lv if var.categorical else np.nan,
                    "reference": var.reference if var.categorical else np.nan,
                    "uni_or": float(np.exp(f.params[t])),
                    "uni_low": float(np.exp(f.conf.loc[t, "low"])),
                    "uni_high": float(np.exp(f.conf.loc[t, "high"])),
                    "uni_p": float(f.pvalues[t]),
                    "uni_p_variable": uni_p[name],
                }
            )
    numeric = pd.DataFrame(rows).set_index("term")
    for c in ("level", "reference", "uni_or", "uni_low", "uni_high", "uni_p", "uni_p_variable", "note"):
        if c not in numeric.columns:
            numeric[c] = np.nan if c != "note" else ""
    numeric["note"] = numeric["note"].fillna("")
    uni_p = pd.Series(uni_p, dtype=float)
    entered = [v for v in spec if np.isfinite(uni_p[v]) and uni_p[v] < p_enter]

    multi = None
    kept_vars = list(entered)
    multi_p = {}
    if entered:
        while True:
            vars_ = [spec[v] for v in kept_vars]
            d = _design(sub, vars_)
            f = _logit(yb, d)
            if f.separated:
                raise SeparationError(
                    f"the multivariable model on {kept_vars} separates the outcome perfectly "
                    "(ORs not estimable); drop or merge variables"
                )
            multi_p = {v.name: _variable_p(yb, d, v, f) for v in vars_}
            multi = f
            if method == "single":
                break
            worst = max(multi_p, key=multi_p.get)
            if multi_p[worst] < p_keep or len(kept_vars) == 1:
                break
            kept_vars.remove(worst)
    selected = [v for v in kept_vars if v in multi_p and multi_p[v] < p_keep]

    numeric["entered"] = numeric["variable"].isin(entered)
    numeric["selected"] = numeric["variable"].isin(selected)
    for c in ("multi_or", "multi_low", "multi_high", "multi_p", "multi_p_variable"):
        numeric[c] = np.nan
    if multi is not None:
        for t in multi.params.index:
            if t == "const":
                continue
            numeric.loc[t, ["multi_or", "multi_low", "multi_high", "multi_p"]] = [
                float(np.exp(multi.params[t])),
                float(np.exp(multi.conf.loc[t, "low"])),
                float(np.exp(multi.conf.loc[t, "high"])),
                float(multi.pvalues[t]),
            ]
        for v, p in multi_p.items():
            numeric.loc[numeric["variable"] == v, "multi_p_variable"] = p

    numeric = numeric[
        [
            "variable",
            "level",
            "reference",
            "uni_or",
            "uni_low",
            "uni_high",
            "uni_p",
            "uni_p_variable",
            "entered",
            "multi_or",
            "multi_low",
            "multi_high",
            "multi_p",
            "multi_p_variable",
            "selected",
            "note",
        ]
    ]

    def label(term, r):
        if pd.notna(r.get("level")) and r.get("level") is not None and term != r["variable"]:
            return f"{r['variable']}: {r['level']} vs {r['reference']}"
        return str(r["variable"])

    table = pd.DataFrame(
        {
            "Variable": [label(t, r) for t, r in numeric.iterrows()],
            "Univariate OR [95% CI]": [
                format_or(r.uni_or, r.uni_low, r.uni_high, decimals) for r in numeric.itertuples()
            ],
            "Univariate P": [format_p(r.uni_p) for r in numeric.itertuples()],
            "Multivariate OR [95% CI]": [
                format_or(r.multi_or, r.multi_low, r.multi_high, decimals) for r in numeric.itertuples()
            ],
            "Multivariate P": [format_p(r.multi_p) for r in numeric.itertuples()],
        }
    )
    if (numeric["note"] != "").any():
        table["Note"] = numeric["note"].to_numpy()
    return ClinicalSelection(
        table, numeric, selected, entered, uni_p, multi.result if multi is not None else None, notes
    )


# --------------------------------------------------------------------------- estimator


class ClinicalLogit(ClassifierMixin, BaseEstimator):
    """The clinical model as a leak-free classifier: selection inside ``fit``, then a multivariable logit.

    ``fit(X, y)``: :func:`univariate_multivariate` on the training rows of
    the ``candidates`` columns of ``X`` (other columns are ignored), then an
    (unpenalised, statsmodels) logistic regression on the selected
    variables. If no variable is selected — or the multivariable model is
    separated — the single variable with the smallest univariate P is used
    instead and the reason is recorded in ``fallback_`` (None otherwise; a
    warning is raised only for separation). If even the final model is
    separated, it is refitted with a mild L2 penalty
    (``LogisticRegression(C=1)``), recorded in ``fallback_``.

    Attributes: ``selected_`` (variables), ``terms_`` (design columns),
    ``table_`` (the :class:`ClinicalSelection`), ``coef_`` (Series of
    log-odds per term), ``intercept_``, ``odds_ratios_``, ``result_``
    (statsmodels result of the final model, or None), ``classes_``,
    ``fallback_``.
    """

    def __init__(
        self, candidates=None, p_enter: float = 0.10, p_keep: float = 0.05, categorical=None, method: str = "single"
    ):
        self.candidates = candidates
        self.p_enter = p_enter
        self.p_keep = p_keep
        self.categorical = categorical
        self.method = method

    def fit(self, X, y):
        if not isinstance(X, pd.DataFrame):
            raise TypeError("ClinicalLogit needs a DataFrame with the candidate variables as columns")
        candidates = list(self.candidates) if self.candidates is not None else list(X.columns)
        sub, yb, classes = _prepare(X, y, candidates)
        self.classes_ = classes
        self.fallback_ = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                sel = univariate_multivariate(
                    sub, yb, candidates, self.p_enter, self.p_keep, self.categorical, self.method
                )
                chosen = list(sel.selected)
                reason = (
                    None
                    if chosen
                    else (
                        f"no variable with multivariable P < {self.p_keep}"
                        if sel.entered
                        else f"no variable with univariate P < {self.p_enter}"
                    )
                )
            except SeparationError as e:
                sel, chosen, reason = None, [], f"multivariable model separated ({e})"
        if sel is None:
            # rebuild the univariate part for the table and the fallback
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                sel = univariate_multivariate(
                    sub, yb, candidates, p_enter=-1.0, p_keep=self.p_keep, categorical=self.categorical
                )
            warnings.warn(f"ClinicalLogit: {reason}; using the best univariate variable", UserWarning, stacklevel=2)
        self.table_ = sel
        if not chosen:
            p = sel.univariate_p.dropna()
            if p.empty:
                raise ValueError("ClinicalLogit: no candidate variable is estimable on the training rows")
            chosen = [p.idxmin()]
            self.fallback_ = f"{reason}; fell back to the best univariate variable {chosen[0]!r}"
        self.selected_ = chosen
        spec = _encode_spec(sub, candidates, self.categorical)
        self._vars = [spec[v] for v in chosen]
        design = _design(sub, self._vars)
        self.terms_ = list(design.columns)
        self.result_ = None
        try:
            f = _logit(yb, design)
            ok = not f.separated
        except SeparationError:
            ok = False
        if ok:
            self.result_ = f.result
            self.intercept_ = float(f.params["const"])
            self.coef_ = f.params.drop("const").astype(float)
        else:
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1.0, max_iter=5000).fit(design.to_numpy(), yb)
            self.intercept_ = float(lr.intercept_[0])
            self.coef_ = pd.Series(lr.coef_.ravel(), index=self.terms_, dtype=float)
            msg = "final model separated; refitted with an L2 penalty (C=1)"
            self.fallback_ = f"{self.fallback_}; {msg}" if self.fallback_ else msg
            warnings.warn(f"ClinicalLogit: {msg}", UserWarning, stacklevel=2)
        self.odds_ratios_ = np.exp(self.coef_)
        self.n_features_in_ = len(candidates)
        self.feature_names_in_ = np.asarray(candidates, dtype=object)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Linear predictor (log-odds of the positive class)."""
        check_is_fitted(self, "coef_")
        if not isinstance(X, pd.DataFrame):
            raise TypeError("ClinicalLogit needs a DataFrame with the candidate variables as columns")
        missing = [v.name for v in self._vars if v.name not in X.columns]
        if missing:
            raise KeyError(f"ClinicalLogit: X lacks the selected variable(s) {missing}")
        sub = X.loc[:, [v.name for v in self._vars]]
        if sub.isna().to_numpy().any():
            ids = sub.index[sub.isna().any(axis=1)].astype(str).tolist()
            raise ValueError(f"ClinicalLogit: missing values in the selected variables for {ids}")
        d = _design(sub, self._vars, warn_unseen=True)
        return self.intercept_ + d.to_numpy(dtype=float) @ self.coef_.to_numpy()

    def predict_proba(self, X) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def formula(self, decimals: int = 3) -> str:
        """``"logit(p) = b0 + b1 × var1 − …"``."""
        from replicate.learn.lasso import format_score_formula

        check_is_fitted(self, "coef_")
        return format_score_formula(self.intercept_, self.coef_, name="logit(p)", decimals=decimals)


def nomogram_inputs(fitted, X: pd.DataFrame | None = None) -> dict:
    """``{"coefficients", "intercept", "ranges"}`` for :func:`replicate.plots.nomogram_plot`.

    ``fitted``: a :class:`ClinicalLogit` (ranges = the training range of
    each continuous variable; a dummy term ``var[level]`` gets
    ``{reference: 0, level: 1}``), or any fitted binary linear classifier
    with ``coef_`` / ``intercept_`` (e.g. ``LogisticRegression``, or a
    Pipeline ending in one) together with the table ``X`` it was fitted on
    (ranges = column min/max; 0/1 columns get ``[0, 1]``).
    Use as ``plots.nomogram_plot(**nomogram_inputs(model))``.
    """
    if isinstance(fitted, ClinicalLogit):
        check_is_fitted(fitted, "coef_")
        ranges = {}
        for v in fitted._vars:
            if v.categorical:
                for lv in v.levels:
                    ranges[f"{v.name}[{lv}]"] = {str(v.reference): 0.0, str(lv): 1.0}
            else:
                lo, hi = v.lo, v.hi
                if not hi > lo:
                    hi = lo + 1.0
                ranges[v.name] = (lo, hi)
        return {
            "coefficients": {k: float(b) for k, b in fitted.coef_.items()},
            "intercept": float(fitted.intercept_),
            "ranges": ranges,
        }
    est = fitted.steps[-1][1] if hasattr(fitted, "steps") else fitted
    if not (hasattr(est, "coef_") and hasattr(est, "intercept_")):
        raise TypeError("nomogram_inputs needs a ClinicalLogit or a fitted linear classifier with coef_/intercept_")
    if X is None or not isinstance(X, pd.DataFrame):
        raise ValueError("pass the training DataFrame X to read the variables' names and ranges")
    coef = np.ravel(est.coef_)
    names = list(getattr(est, "feature_names_in_", X.columns))
    if len(names) != len(coef):
        raise ValueError(f"{len(coef)} coefficients but {len(names)} variable names")
    ranges = {}
    for n in names:
        s = X[n].astype(float)
        vals = set(np.unique(s))
        ranges[n] = [0.0, 1.0] if vals <= {0.0, 1.0} else (float(s.min()), float(s.max()))
    return {
        "coefficients": dict(zip(names, coef.astype(float).tolist())),
        "intercept": float(np.ravel(est.intercept_)[0]),
        "ranges": ranges,
    }
