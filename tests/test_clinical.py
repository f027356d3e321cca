"""Clinical model: OR table against statsmodels, selection rules, ClinicalLogit, separation, nomogram inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from replicate.clinical import (
    ClinicalLogit,
    SeparationError,
    format_or,
    format_p,
    nomogram_inputs,
    univariate_multivariate,
)

CANDIDATES = ["age", "size", "grade", "sex", "noise"]


def _clinical(n=200, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    df = pd.DataFrame(
        {
            "age": rng.normal(60, 10, n),
            "size": rng.gamma(2, 3, n),
            "grade": rng.choice(["G1", "G2", "G3"], n),
            "sex": rng.choice(["F", "M"], n),
            "noise": rng.normal(size=n),
        },
        index=idx,
    )
    lp = -3 + 0.03 * (df.age - 60) + 0.25 * df["size"] + 1.0 * (df.grade == "G3") + 0.5 * (df.grade == "G2")
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int), index=idx, name="mets")
    return df, y


def test_univariate_ors_match_statsmodels():
    df, y = _clinical()
    sel = univariate_multivariate(df, y, CANDIDATES)
    d = df.assign(y=y)
    for var, formula, terms in [
        ("age", "y ~ age", {"age": "age"}),
        ("size", "y ~ size", {"size": "size"}),
        ("grade", "y ~ C(grade)", {"grade[G2]": "C(grade)[T.G2]", "grade[G3]": "C(grade)[T.G3]"}),
        ("sex", "y ~ C(sex)", {"sex[M]": "C(sex)[T.M]"}),
    ]:
        r = smf.logit(formula, data=d).fit(disp=0)
        ci = np.exp(r.conf_int())
        for ours, theirs in terms.items():
            row = sel.numeric.loc[ours]
            assert row.uni_or == pytest.approx(np.exp(r.params[theirs]), rel=1e-6)
            assert row.uni_low == pytest.approx(ci.loc[theirs, 0], rel=1e-6)
            assert row.uni_high == pytest.approx(ci.loc[theirs, 1], rel=1e-6)
            assert row.uni_p == pytest.approx(r.pvalues[theirs], rel=1e-6)
        if var == "grade":  # a 3-level variable enters by its likelihood-ratio test
            assert sel.univariate_p["grade"] == pytest.approx(r.llr_pvalue, rel=1e-6)


def test_multivariate_model_and_selection_rules():
    df, y = _clinical()
    sel = univariate_multivariate(df, y, CANDIDATES, p_enter=0.10, p_keep=0.05)
    entered = [v for v in CANDIDATES if sel.univariate_p[v] < 0.10]
    assert sel.entered == entered
    assert "noise" not in entered
    formula = "y ~ " + " + ".join(f"C({v})" if v in ("grade", "sex") else v for v in entered)
    r = smf.logit(formula, data=df.assign(y=y)).fit(disp=0)
    assert sel.numeric.loc["size", "multi_or"] == pytest.approx(np.exp(r.params["size"]), rel=1e-6)
    assert sel.numeric.loc["grade[G3]", "multi_p"] == pytest.approx(r.pvalues["C(grade)[T.G3]"], rel=1e-6)
    p_var = sel.numeric.groupby("variable")["multi_p_variable"].first()
    assert sel.selected == [v for v in entered if p_var[v] < 0.05]
    assert {"age", "size"} <= set(sel.selected)
    assert sel.numeric.loc["noise", "entered"] == False  # noqa: E712
    assert np.isnan(sel.numeric.loc["noise", "multi_or"])


def test_paper_like_table():
    df, y = _clinical()
    sel = univariate_multivariate(df, y, CANDIDATES)
    t = sel.table
    assert list(t.columns) == [
        "Variable",
        "Univariate OR [95% CI]",
        "Univariate P",
        "Multivariate OR [95% CI]",
        "Multivariate P",
    ]
    assert list(t["Variable"]) == ["age", "size", "grade: G2 vs G1", "grade: G3 vs G1", "sex: M vs F", "noise"]
    r = sel.numeric.loc["size"]
    assert t.loc[1, "Univariate OR [95% CI]"] == f"{r.uni_or:.2f} [{r.uni_low:.2f}, {r.uni_high:.2f}]"
    assert t.loc[5, "Multivariate OR [95% CI]"] == ""
    assert format_p(0.0004) == "<0.001" and format_p(0.0456) == "0.046"
    assert format_or(2.3149, 1.1, 4.85) == "2.31 [1.10, 4.85]"


def test_reference_level_and_backward_elimination():
    df, y = _clinical()
    sel = univariate_multivariate(df, y, CANDIDATES, categorical={"grade": "G3"})
    assert "grade[G1]" in sel.numeric.index and "grade[G3]" not in sel.numeric.index
    r = smf.logit("y ~ C(grade, Treatment('G3'))", data=df.assign(y=y)).fit(disp=0)
    assert sel.numeric.loc["grade[G1]", "uni_or"] == pytest.approx(
        np.exp(r.params["C(grade, Treatment('G3'))[T.G1]"]), rel=1e-6
    )
    back = univariate_multivariate(df, y, CANDIDATES, p_keep=0.05, method="backward")
    assert set(back.selected) <= set(back.entered)
    assert back.numeric.loc[back.numeric["variable"].isin(back.selected), "multi_p_variable"].lt(0.05).all()
    with pytest.raises(ValueError, match="reference level"):
        univariate_multivariate(df, y, CANDIDATES, categorical={"grade": "G9"})


def test_clinical_logit_reproduces_statsmodels():
    df, y = _clinical()
    m = ClinicalLogit(CANDIDATES).fit(df, y)
    sel = univariate_multivariate(df, y, CANDIDATES)
    assert m.selected_ == sel.selected and m.fallback_ is None
    formula = "y ~ " + " + ".join(f"C({v})" if v in ("grade", "sex") else v for v in m.selected_)
    r = smf.logit(formula, data=df.assign(y=y)).fit(disp=0)
    assert m.intercept_ == pytest.approx(r.params["Intercept"], rel=1e-6)
    assert m.odds_ratios_["size"] == pytest.approx(np.exp(r.params["size"]), rel=1e-6)
    np.testing.assert_allclose(m.predict_proba(df)[:, 1], r.predict(df), rtol=1e-6)
    assert set(m.predict(df)) <= {0, 1}
    assert m.formula().startswith("logit(p) = ")
    assert isinstance(clone(m), ClinicalLogit) and clone(m).get_params()["candidates"] == CANDIDATES


def test_clinical_logit_selects_inside_fit_only():
    df, y = _clinical()
    train = df.index[:120]
    m = ClinicalLogit(CANDIDATES).fit(df.loc[train], y.loc[train])
    assert m.selected_ == univariate_multivariate(df.loc[train], y.loc[train], CANDIDATES).selected
    # changing the other patients' data changes nothing
    df2, y2 = df.copy(), y.copy()
    df2.loc[df.index[120:], "noise"] = y.loc[df.index[120:]] * 10.0
    y2.loc[df.index[120:]] = 1 - y2.loc[df.index[120:]]
    m2 = ClinicalLogit(CANDIDATES).fit(df2.loc[train], y2.loc[train])
    pd.testing.assert_series_equal(m.coef_, m2.coef_)
    # usable in cross_val_predict (selection refitted per fold)
    p = cross_val_predict(
        ClinicalLogit(CANDIDATES), df, y, cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba"
    )[:, 1]
    assert p.shape == (len(df),) and np.isfinite(p).all()


def test_fallback_when_nothing_passes():
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    y = pd.Series(rng.integers(0, 2, 60))
    sel = univariate_multivariate(df, y, ["a", "b", "c"], p_enter=1e-6)
    assert sel.selected == [] and sel.entered == []
    m = ClinicalLogit(["a", "b", "c"], p_enter=1e-6).fit(df, y)
    assert m.selected_ == [sel.univariate_p.idxmin()]
    assert "univariate P" in m.fallback_
    assert m.predict_proba(df).shape == (60, 2)


def test_perfect_separation_is_handled_with_a_clear_message():
    df, y = _clinical(n=120)
    df["leak"] = y.astype(float)  # separates the outcome perfectly
    with pytest.warns(UserWarning, match="'leak' separates the outcome"):
        sel = univariate_multivariate(df, y, CANDIDATES + ["leak"])
    assert "leak" not in sel.entered
    assert sel.numeric.loc["leak", "note"] == "perfect separation"
    assert "Note" in sel.table.columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = ClinicalLogit(CANDIDATES + ["leak"]).fit(df, y)
    assert "leak" not in m.selected_
    # a multivariable model that separates: a SeparationError, and ClinicalLogit falls back
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=80)
    x2 = rng.normal(size=80)
    yy = pd.Series(((x1 + x2) > 0).astype(int))
    d = pd.DataFrame({"x1": x1, "x2": x2})
    with pytest.raises(SeparationError, match="separates the outcome"):
        univariate_multivariate(d, yy, ["x1", "x2"])
    with pytest.warns(UserWarning, match="separated"):
        m = ClinicalLogit(["x1", "x2"]).fit(d, yy)
    assert len(m.selected_) == 1 and m.fallback_


def test_unseen_level_and_missing_values():
    df, y = _clinical()
    m = ClinicalLogit(CANDIDATES).fit(df, y)
    new = df.iloc[:3].copy()
    new["grade"] = ["G1", "G4", "G2"]
    with pytest.warns(UserWarning, match="G4"):
        p = m.predict_proba(new)[:, 1]
    ref = df.iloc[:3].copy()
    ref["grade"] = ["G1", "G1", "G2"]
    np.testing.assert_allclose(p, m.predict_proba(ref)[:, 1])
    bad = df.copy()
    bad.iloc[0, 0] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        univariate_multivariate(bad, y, CANDIDATES)
    with pytest.raises(KeyError, match="not columns"):
        univariate_multivariate(df, y, ["nope"])


def test_nomogram_inputs_feed_the_nomogram_plot():
    from sklearn.linear_model import LogisticRegression

    from replicate import plots

    df, y = _clinical()
    m = ClinicalLogit(CANDIDATES).fit(df, y)
    nom = nomogram_inputs(m)
    assert set(nom["coefficients"]) == set(m.terms_)
    assert nom["intercept"] == m.intercept_
    assert nom["ranges"]["size"] == (df["size"].min(), df["size"].max())
    assert nom["ranges"]["grade[G3]"] == {"G1": 0.0, "G3": 1.0}
    fig = plots.nomogram_plot(**nom)
    assert fig is not None
    X = pd.DataFrame({"age": df.age, "male": (df.sex == "M").astype(float)})
    lr = LogisticRegression().fit(X, y)
    nom2 = nomogram_inputs(lr, X)
    assert nom2["ranges"]["male"] == [0.0, 1.0] and set(nom2["coefficients"]) == {"age", "male"}
    with pytest.raises(ValueError, match="training DataFrame"):
        nomogram_inputs(lr)
