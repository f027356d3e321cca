"""replicate.dlrn on tiny feature tables (no images): every learned step stays inside the training rows,
SMOTE only ever resamples training rows, the same seed gives the same numbers, a null effect scores
AUC ~ 0.5 out of fold (while the same selection done on all rows first does not), and a strong effect
scores a high AUC."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

from replicate import dlrn, models
from replicate.results import ChapterResults
from replicate.spec import load_spec
from replicate.stats.metrics import youden_threshold as youden

HCR = [f"T1_hcr_f{i:03d}" for i in range(40)]
DL = [f"T1_dl_{i:03d}" for i in range(30)]
CLIN = ["age", "t_stage"]


def toy(
    n: int = 90,
    effect: float = 0.0,
    seed: int = 0,
    n_hcr: int = 40,
    n_dl: int = 30,
    pos_rate: float = 0.3,
    clin_effect: float | None = None,
):
    """Feature table of ``n`` patients: HCR + DL noise columns, two of each shifted by ``effect`` SDs in the
    positives, age (noise) and an ordinal T-stage (shifted by ``clin_effect``, default ``effect``), plus one
    perturbed HCR re-extraction (half the HCR columns stable, half pure noise) of 2/3 of the patients."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(n)]
    n_pos = int(round(pos_rate * n))
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, n_pos, replace=False)] = 1
    hcr = [f"T1_hcr_f{i:03d}" for i in range(n_hcr)]
    dl = [f"T1_dl_{i:03d}" for i in range(n_dl)]
    H = rng.normal(size=(n, n_hcr))
    D = rng.normal(size=(n, n_dl))
    H[:, :2] += effect * y[:, None]
    D[:, :2] += effect * y[:, None]
    ce = effect if clin_effect is None else clin_effect
    t = np.clip(np.round(2.0 + 0.8 * rng.normal(size=n) + 0.6 * ce * y), 1, 4)
    X = pd.DataFrame(np.hstack([H, D]), index=pd.Index(ids, name="patient_id"), columns=hcr + dl)
    X["age"] = np.round(50 + 15 * rng.normal(size=n))
    X["t_stage"] = t
    pert = X[hcr].copy()
    stable = hcr[::2]
    pert[stable] += rng.normal(scale=0.1, size=(n, len(stable)))
    pert[hcr[1::2]] = rng.normal(size=(n, len(hcr[1::2])))
    # the informative HCR columns are both stable (0 is in hcr[::2]; make 1 stable too)
    pert[hcr[1]] = X[hcr[1]] + rng.normal(scale=0.1, size=n)
    pert = pert.iloc[: (2 * n) // 3]
    sig = {"HCR": hcr, "DL": dl, "HD-Combined": hcr + dl}
    return X, pd.Series(y, index=X.index, name="lung_mets"), sig, [pert]


def config(classifiers=("lr", "svm"), mrmr_k: int = 5, lasso_cv: int = 3) -> dlrn.DLRNConfig:
    return dlrn.DLRNConfig(
        signatures={"HCR": ["hcr"], "DL": ["deep"], "HD-Combined": ["hcr", "deep"]},
        classifiers=list(classifiers),
        smote=[False, True],
        chosen=("HD-Combined", "svm", True),
        mrmr_k=mrmr_k,
        lasso_cv=lasso_cv,
    )


def maker(sig, perturbed, cfg=None, heads="all", seed=0, batch=None, cls=dlrn.DLRNModel):
    cfg = cfg or config()
    return lambda: cls(cfg, sig, CLIN, perturbed=perturbed, batch=batch, heads=heads, seed=seed)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ----------------------------------------------------------------------------- leak-free by construction


class SpyModel(dlrn.DLRNModel):
    """A DLRNModel that records the rows it was fitted on and the rows it was asked to score."""

    log: list = []

    def fit(self, X, y):
        SpyModel.log.append(("fit", list(X.index)))
        return super().fit(X, y)

    def predict_scores(self, X):
        SpyModel.log.append(("predict", list(X.index)))
        return super().predict_scores(X)


def test_repeated_cv_fits_every_step_on_the_training_fold_only():
    X, y, sig, pert = toy(n=60, effect=1.0, seed=1)
    SpyModel.log = []
    cv = dlrn.repeated_cv(maker(sig, pert, heads="chosen", cls=SpyModel), X, y, n_splits=3, n_repeats=2, seed=7)
    splits = list(RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=7).split(np.zeros(len(y)), y))
    fits = [ids for kind, ids in SpyModel.log if kind == "fit"]
    preds = [ids for kind, ids in SpyModel.log if kind == "predict"]
    assert len(fits) == len(preds) == len(splits) == 6
    for (tr, te), f, p in zip(splits, fits, preds):
        assert f == list(X.index[tr]) and p == list(X.index[te])
        assert not set(f) & set(p)
    # the ICC filter of every fold used the re-extracted patients of that fold's training rows only
    perturbed_ids = set(pert[0].index)
    for (tr, _), fi in zip(splits, cv.fold_info):
        n_icc = len(perturbed_ids & set(X.index[tr]))
        for s in ("HCR", "HD-Combined"):
            assert fi["info"]["signatures"][s]["icc_rows"] == n_icc < len(perturbed_ids)
    # every patient got exactly one out-of-fold score per repeat
    for m, df in cv.per_repeat.items():
        assert df.notna().all().all() and df.shape == (60, 2), m


def test_selection_and_heads_never_see_held_out_rows():
    """Fitting on the training rows, then changing the held-out rows' features and labels arbitrarily,
    changes nothing that was learned; and a held-out row's score does not depend on the other rows scored
    with it (no transductive step at prediction)."""
    X, y, sig, pert = toy(n=72, effect=1.5, seed=2)
    tr, te = list(X.index[:48]), list(X.index[48:])
    m1, s_tr1, s_te1 = dlrn.fit_external(maker(sig, pert), X, y, tr, te)
    X2, y2 = X.copy(), y.copy()
    rng = np.random.default_rng(0)
    X2.loc[te, HCR + DL] = rng.normal(scale=5, size=(len(te), len(HCR + DL)))
    y2.loc[te] = 1 - y2.loc[te]
    m2, s_tr2, _ = dlrn.fit_external(maker(sig, pert), X2, y2, tr, te)
    pd.testing.assert_frame_equal(s_tr1, s_tr2)
    for sig_name, a in m1.info_["signatures"].items():
        b = m2.info_["signatures"][sig_name]
        assert a["mrmr"] == b["mrmr"] and a["icc_kept_columns"] == b["icc_kept_columns"], sig_name
        assert a["lasso_coef"].keys() == b["lasso_coef"].keys(), sig_name
        np.testing.assert_allclose(list(a["lasso_coef"].values()), list(b["lasso_coef"].values()), rtol=1e-9)
    part = m1.predict_scores(X.loc[te[:5]])
    pd.testing.assert_frame_equal(part, s_te1.loc[te[:5]])
    alone = m1.predict_scores(X.loc[[te[3]]])
    pd.testing.assert_frame_equal(alone, s_te1.loc[[te[3]]])


def test_smote_resamples_training_rows_only(monkeypatch):
    X, y, sig, pert = toy(n=60, effect=1.0, seed=3)
    seen = []
    orig = models.AdaptiveSMOTE._fit_resample

    def spy(self, Xs, ys):
        seen.append(len(ys))
        Xr, yr = orig(self, Xs, ys)
        seen.append(("out", len(yr), int(np.sum(yr == 1)), int(np.sum(yr == 0))))
        return Xr, yr

    monkeypatch.setattr(models.AdaptiveSMOTE, "_fit_resample", spy)
    tr, te = list(X.index[:40]), list(X.index[40:])
    model, _, s_te = dlrn.fit_external(maker(sig, pert), X, y, tr, te)
    n_in = [s for s in seen if not isinstance(s, tuple)]
    outs = [s for s in seen if isinstance(s, tuple)]
    # one SMOTE per SMOTE head (2 classifiers x 3 signatures), each on exactly the 40 training rows,
    # balancing them; nothing is resampled when scoring
    assert n_in == [40] * 6
    n_neg = int((y.loc[tr] == 0).sum())
    assert all(o == ("out", 2 * n_neg, n_neg, n_neg) for o in outs)
    before = len(seen)
    s = model.predict_scores(X.loc[te])
    assert len(seen) == before and len(s) == len(te)
    # under repeated CV, SMOTE sees each fold's training rows (never all 60)
    seen.clear()
    dlrn.repeated_cv(maker(sig, pert, heads="chosen"), X, y, n_splits=3, n_repeats=1, seed=0)
    n_in = [s for s in seen if not isinstance(s, tuple)]
    assert n_in and set(n_in) == {40}


# ----------------------------------------------------------------------------- determinism


@pytest.mark.slow
def test_same_seed_same_numbers():
    X, y, sig, pert = toy(n=60, effect=1.0, seed=4)
    a = dlrn.repeated_cv(maker(sig, pert, heads="chosen"), X, y, n_splits=3, n_repeats=1, seed=5)
    b = dlrn.repeated_cv(maker(sig, pert, heads="chosen"), X, y, n_splits=3, n_repeats=1, seed=5)
    pd.testing.assert_frame_equal(a.oof_frame(), b.oof_frame(), check_exact=True)
    c = dlrn.repeated_cv(maker(sig, pert, heads="chosen"), X, y, n_splits=3, n_repeats=1, seed=6)
    assert not np.allclose(a.oof_frame().to_numpy(), c.oof_frame().to_numpy())
    tr, te = list(X.index[:40]), list(X.index[40:])
    _, _, s1 = dlrn.fit_external(maker(sig, pert), X, y, tr, te)
    _, _, s2 = dlrn.fit_external(maker(sig, pert), X, y, tr, te)
    pd.testing.assert_frame_equal(s1, s2, check_exact=True)
    r1 = dlrn.random_split_aucs(maker(sig, pert, heads="chosen"), X, y, n_splits=2, seed=1)
    r2 = dlrn.random_split_aucs(maker(sig, pert, heads="chosen"), X, y, n_splits=2, seed=1)
    pd.testing.assert_frame_equal(r1, r2)


@pytest.mark.slow
def test_parallel_cv_equals_serial_cv():
    X, y, sig, pert = toy(n=45, effect=1.0, seed=5)
    a = dlrn.repeated_cv(maker(sig, pert, heads="chosen"), X, y, n_splits=3, n_repeats=1, seed=0, n_jobs=1)
    b = dlrn.repeated_cv(maker(sig, pert, heads="chosen"), X, y, n_splits=3, n_repeats=1, seed=0, n_jobs=2)
    pd.testing.assert_frame_equal(a.oof_frame(), b.oof_frame(), check_exact=True)


# ----------------------------------------------------------------------------- null and strong effects


def _leaky_cv_auc(X, y, sig, pert, seed=0) -> float:
    """The mistake the canary exists for: ICC/mRMR/LASSO fitted on ALL rows, then CV of a classifier."""
    sel = dlrn.selection_pipeline(config(), perturbed=pert).fit(X[sig["HD-Combined"]], y)
    Z = sel.transform(X[sig["HD-Combined"]])
    oof = np.zeros(len(y))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(Z, y):
        oof[te] = LogisticRegression(max_iter=1000).fit(Z.iloc[tr], y.iloc[tr]).predict_proba(Z.iloc[te])[:, 1]
    return roc_auc_score(y, oof)


@pytest.mark.slow
def test_null_effect_gives_chance_auc_out_of_fold():
    """No signal anywhere: every leak-free model scores AUC ~ 0.5 out of fold (mean over 3 data sets x 2
    repeats), while selecting features on all rows first (a leak) is clearly optimistic on the same data."""
    per_model, leaky = {}, []
    for s in range(3):
        X, y, sig, pert = toy(n=60, effect=0.0, seed=100 + s, n_hcr=150, n_dl=100)
        cv = dlrn.repeated_cv(maker(sig, pert, heads="chosen"), X, y, n_splits=5, n_repeats=2, seed=s)
        for m, v in cv.auc_per_repeat.mean().items():
            per_model.setdefault(m, []).append(v)
        leaky.append(_leaky_cv_auc(X, y, sig, pert, seed=s))
    means = {m: float(np.mean(v)) for m, v in per_model.items()}
    assert {"DLRN", "Radiomics", "Clinical", "HCR SVM-SMOTE", "DL SVM-SMOTE"} <= set(means)
    bad = {m: round(v, 3) for m, v in means.items() if abs(v - 0.5) > 0.1}
    assert not bad, f"null-effect AUC away from 0.5: {bad}"
    assert np.mean(leaky) > 0.7, f"the leaky contrast should be optimistic: {np.round(leaky, 3)}"
    assert np.mean(leaky) - means["Radiomics"] > 0.15


@pytest.mark.slow
def test_strong_effect_gives_high_auc():
    X, y, sig, pert = toy(n=90, effect=2.0, seed=8)
    cv = dlrn.repeated_cv(maker(sig, pert, heads="chosen"), X, y, n_splits=5, n_repeats=2, seed=0)
    auc = cv.auc_per_repeat.mean()
    assert auc["DLRN"] > 0.9 and auc["Radiomics"] > 0.85 and auc["HCR SVM-SMOTE"] > 0.8
    assert auc["Clinical"] > 0.6
    # and the selection found the informative columns
    model = maker(sig, pert)().fit(X, y)
    lasso = model.info_["signatures"]["HD-Combined"]["lasso_coef"]
    assert {"T1_hcr_f000", "T1_hcr_f001", "T1_dl_000", "T1_dl_001"} & set(lasso)
    assert all(v > 0 for k, v in lasso.items() if k in {"T1_hcr_f000", "T1_hcr_f001", "T1_dl_000", "T1_dl_001"})
    assert model.info_["clinical_selected"] == ["t_stage"]


# ----------------------------------------------------------------------------- the model's parts


def test_dlrn_is_a_logit_of_clinical_predictors_and_the_chosen_signature():
    X, y, sig, pert = toy(n=90, effect=1.5, seed=9)
    m = maker(sig, pert)().fit(X, y)
    assert m.dlrn_columns_ == list(m.clinical_.selected_) + ["Rad-signature"]
    s = m.predict_scores(X)
    expected = {m.config.model_name(*h) for h in m.config.heads("all")} | {"Radiomics", "Clinical", "DLRN"}
    assert set(s.columns) == expected and len(expected) == 15
    np.testing.assert_array_equal(s["Radiomics"], s["HD-Combined SVM-SMOTE"])
    D = m.imputer_.transform(X[CLIN])[m.clinical_.selected_].astype(float)
    D["Rad-signature"] = dlrn.logit(s["HD-Combined SVM-SMOTE"])
    np.testing.assert_allclose(m.dlrn_.predict_proba(D)[:, 1], s["DLRN"])
    nom = m.nomogram_inputs()
    assert set(nom["coefficients"]) == set(m.dlrn_columns_)
    # the LASSO rad-score is the selection LASSO's linear predictor
    rs = m.rad_score(X)
    assert rs.index.equals(X.index) and np.isfinite(rs).all()


def test_clinical_missing_values_are_imputed_with_the_training_median():
    X, y, sig, pert = toy(n=60, effect=1.5, seed=10)
    X.loc[X.index[:3], "t_stage"] = np.nan
    tr, te = list(X.index[:40]), list(X.index[40:])
    m = maker(sig, pert, heads="chosen")().fit(X.loc[tr], y.loc[tr])
    assert m.imputer_.transform(X.loc[[tr[0]], CLIN])["t_stage"].iloc[0] == X.loc[tr[3:], "t_stage"].median()
    Xt = X.loc[te].copy()
    Xt.loc[te[0], "t_stage"] = np.nan
    s = m.predict_scores(Xt)
    assert s.notna().all().all()


def test_partial_icc_filter_drops_unstable_hcr_and_passes_deep_columns():
    X, y, sig, pert = toy(n=60, seed=11)
    f = dlrn.PartialICCFilter(pert, threshold=0.75).fit(X[sig["HD-Combined"]])
    kept = set(f.selected_features_)
    assert set(DL) <= kept
    assert set(HCR[::2]) | {HCR[1]} <= kept
    assert not kept & (set(HCR[1::2]) - {HCR[1]})
    assert f.n_rows_ == 40 and f.n_tested_ == 40


def test_relevance_pool_keeps_the_top_f_statistics():
    X, y, sig, _ = toy(n=80, effect=2.0, seed=12)
    p = dlrn.RelevancePool(k=4).fit(X[HCR + DL], y)
    assert set(p.selected_features_) == {"T1_hcr_f000", "T1_hcr_f001", "T1_dl_000", "T1_dl_001"}
    assert dlrn.RelevancePool(k=None).fit(X[HCR], y).selected_features_ == HCR


def test_lasso_head_scores_with_the_selection_lasso():
    X, y, sig, _ = toy(n=80, effect=2.0, seed=13)
    cfg = config(classifiers=("lasso",))
    cfg.smote = [False]
    cfg.chosen = ("HD-Combined", "lasso", False)
    m = dlrn.DLRNModel(cfg, sig, CLIN, heads="all").fit(X, y)
    s = m.predict_scores(X)
    lin = m.rad_score(X, "HD-Combined")
    np.testing.assert_allclose(s["HD-Combined LASSO"], 1 / (1 + np.exp(-lin.to_numpy())), rtol=1e-10)
    with pytest.raises(ValueError, match="SMOTE"):
        dlrn._make_head("lasso", True, None, None, None, 0)


def test_in_fold_combat_and_combat_all():
    X, y, sig, pert = toy(n=90, effect=1.0, seed=14)
    centre = pd.Series(np.where(np.arange(90) % 3 == 0, "A", np.where(np.arange(90) % 3 == 1, "B", "C")), index=X.index)
    Xs = X.copy()
    Xs.loc[centre == "B", HCR + DL] = Xs.loc[centre == "B", HCR + DL] * 2.0 + 3.0
    h = dlrn.combat_all(Xs[HCR + DL], centre)
    raw, means = Xs[HCR + DL].groupby(centre).mean(), h.groupby(centre).mean()
    rsd, sd = Xs[HCR + DL].groupby(centre).std(), h.groupby(centre).std()
    assert (raw.loc["B"] - raw.loc["A"]).abs().mean() > 2.5 and (rsd.loc["B"] / rsd.loc["A"]).mean() > 1.7
    assert (means.loc["B"] - means.loc["A"]).abs().mean() < 0.3  # the centre shift is gone ...
    assert 0.75 < (sd.loc["B"] / sd.loc["A"]).mean() < 1.33  # ... and so is the scale change
    with pytest.raises(ValueError, match="no batch"):
        dlrn.combat_all(Xs[HCR], centre.iloc[1:])
    with pytest.raises(ValueError, match="fewer than 2"):
        dlrn.combat_all(Xs[HCR], centre.where(centre != "C", "A").where(centre.index != X.index[2], "Z"))
    # the model with in-fold ComBat fits and scores (the 'worc' protocol's path)
    df = dlrn.random_split_aucs(maker(sig, pert, heads="chosen", batch=centre), Xs, y, n_splits=2, seed=0)
    assert df["AUC"].between(0, 1).all() and set(df["split"]) == {0, 1}
    summ = dlrn.summarise_split_aucs(df)
    assert (summ["n_splits"] == 2).all() and (summ["low"] <= summ["mean_AUC"]).all()


def test_reproducibility_subset():
    t = pd.DataFrame({"centre": ["A"] * 30 + ["B"] * 10}, index=[f"P{i}" for i in range(40)])
    a = dlrn.reproducibility_subset(t, 20, seed=1, by="centre")
    assert a == dlrn.reproducibility_subset(t, 20, seed=1, by="centre") and a == sorted(a)
    assert sum(i in a for i in t.index[30:]) == 5 and len(a) == 20
    assert dlrn.reproducibility_subset(t, 40) is None and dlrn.reproducibility_subset(t, None) is None
    assert len(dlrn.reproducibility_subset(t, 10, seed=2)) == 10


def test_config_heads_and_names():
    cfg = config(classifiers=("lr", "dt", "svm"))
    assert cfg.heads("dlrn") == [("HD-Combined", "svm", True)]
    assert len(cfg.heads("all")) == 3 * 3 * 2 and cfg.heads("chosen") == [
        ("HCR", "svm", True),
        ("DL", "svm", True),
        ("HD-Combined", "svm", True),
    ]
    assert cfg.model_name("HD-Combined", "adaboost", False) == "HD-Combined AdaBoost"
    with pytest.raises(ValueError):
        cfg.heads("some")


def test_evaluate_record_and_signature_table():
    y = np.array([0] * 8 + [1] * 4)
    s = np.array([0.1, 0.2, 0.3, 0.1, 0.2, 0.4, 0.6, 0.2, 0.7, 0.8, 0.4, 0.9])
    r = dlrn.evaluate(y, s, 0.5)
    assert r["AUC"][0] == pytest.approx(roc_auc_score(y, s))
    assert r["SEN"][0] == pytest.approx(3 / 4) and r["SPE"][0] == pytest.approx(7 / 8)
    assert r["ACC"][0] + r["ER"][0] == pytest.approx(1.0)
    res = ChapterResults(load_spec("sts"), data="synthetic", parameters={})
    dlrn.record_metrics(res, "DLRN", "validation", r)
    rows = [m for m in res.metrics if m["model"] == "DLRN"]
    assert {m["metric"] for m in rows} == set(dlrn.TABLE_METRICS)
    tab = dlrn.signature_table(
        y, pd.DataFrame({"HD-Combined SVM-SMOTE": s, "HCR LR": 1 - s}), ["HD-Combined SVM-SMOTE", "HCR LR"]
    )
    assert tab["SMOTE"].tolist() == [True, False] and tab["classifier"].tolist() == ["SVM", "LR"]
    assert tab["AUC"].iloc[1] == pytest.approx(1 - tab["AUC"].iloc[0], abs=1e-3)


def test_ajcc_and_logit():
    assert dlrn.ajcc_t_stage(np.array([49.0, 120.0, 200.0])).tolist() == [1, 3, 4]
    assert np.isfinite(dlrn.logit([0.0, 1.0])).all()
    assert dlrn.logit([0.5])[0] == 0.0


# ----------------------------------------------------------------------------- learned cut-offs (issue 12)


def _spy_youden(monkeypatch):
    calls = []
    orig = dlrn.youden_threshold

    def spy(y, score, *a, **k):
        calls.append((list(pd.Series(y).index), np.asarray(score, dtype=float).copy()))
        return orig(y, score, *a, **k)

    monkeypatch.setattr(dlrn, "youden_threshold", spy)
    return calls


def test_learned_cutoff_comes_from_inner_out_of_fold_training_scores(monkeypatch):
    """The Youden cut-off is chosen on out-of-fold probabilities of an inner CV of the training rows: not on
    the held-out patients' scores, not on the model's own in-sample scores; changing the held-out patients
    changes nothing."""
    calls = _spy_youden(monkeypatch)
    X, y, sig, pert = toy(n=72, effect=1.5, seed=21)
    tr, te = list(X.index[:48]), list(X.index[48:])
    make = maker(sig, pert, heads="chosen")
    m = dlrn.DLRNModel(make().config, sig, CLIN, perturbed=pert, heads="chosen", seed=0, cutoff_folds=3)
    m.fit(X.loc[tr], y.loc[tr])
    cfg = m.config
    assert set(m.cutoffs_) == set(cfg.cutoff_models) and len(calls) == 3
    in_sample = m.predict_scores(X.loc[tr])
    held_out = m.predict_scores(X.loc[te])
    inner = StratifiedKFold(3, shuffle=True, random_state=0)
    oof = pd.DataFrame(index=tr, columns=cfg.cutoff_models, dtype=float)
    ytr = y.loc[tr]
    for a, b in inner.split(np.zeros(len(tr)), ytr):
        sub = dlrn.DLRNModel(cfg, sig, CLIN, perturbed=pert, heads="dlrn", seed=0).fit(X.loc[tr].iloc[a], ytr.iloc[a])
        oof.iloc[b] = sub.predict_scores(X.loc[tr].iloc[b])[cfg.cutoff_models].to_numpy()
    for (idx, score), model in zip(calls, cfg.cutoff_models):
        assert set(idx) <= set(tr) and not set(idx) & set(te), "a held-out patient chose the cut-off"
        np.testing.assert_allclose(score, oof.loc[idx, model].to_numpy(dtype=float), rtol=1e-10)
        assert not np.allclose(score, in_sample.loc[idx, model].to_numpy()), "in-sample scores chose the cut-off"
        assert m.cutoffs_[model] == youden(ytr, oof[model])
    assert held_out.notna().all().all()
    # the held-out patients can be anything: the cut-offs do not move
    X2, y2 = X.copy(), y.copy()
    X2.loc[te, HCR + DL] = np.random.default_rng(1).normal(scale=5, size=(len(te), len(HCR + DL)))
    y2.loc[te] = 1 - y2.loc[te]
    m2 = dlrn.DLRNModel(cfg, sig, CLIN, perturbed=pert, heads="chosen", seed=0, cutoff_folds=3)
    m2.fit(X2.loc[tr], y2.loc[tr])
    assert m2.cutoffs_ == pytest.approx(m.cutoffs_, rel=1e-12)


@pytest.mark.slow
def test_cv_cutoffs_are_learned_in_each_training_fold(monkeypatch):
    calls = _spy_youden(monkeypatch)
    X, y, sig, pert = toy(n=60, effect=1.5, seed=22)
    cfg = config()

    def make():
        return dlrn.DLRNModel(cfg, sig, CLIN, perturbed=pert, heads="dlrn", seed=0, cutoff_folds=3)

    cv = dlrn.repeated_cv(make, X, y, n_splits=3, n_repeats=2, seed=3)
    splits = list(RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=3).split(np.zeros(len(y)), y))
    per_fold = len(cfg.cutoff_models)
    assert len(calls) == per_fold * len(splits) and len(cv.fold_cutoffs) == len(splits)
    for k, (tr, te) in enumerate(splits):
        for idx, _ in calls[k * per_fold : (k + 1) * per_fold]:
            assert set(idx) <= set(X.index[tr]) and not set(idx) & set(X.index[te]), f"fold {k}"
    # each patient's call uses the cut-off of the fold model that scored it
    calls01 = cv.predictions_at_cutoff("DLRN")
    for k, (_, te) in enumerate(splits):
        r = k // 3
        thr = cv.fold_cutoffs[k]["DLRN"]
        expected = (cv.per_repeat["DLRN"].iloc[te, r] >= thr).astype(int).to_numpy()
        np.testing.assert_array_equal(calls01.iloc[te, r].to_numpy(), expected)
    met = cv.cutoff_metrics("DLRN")
    assert set(met) == set(dlrn.TABLE_METRICS[1:]) and 0 <= met["SEN"] <= 1
    with pytest.raises(ValueError, match="no learned cut-off"):
        dlrn.repeated_cv(maker(sig, pert, heads="dlrn"), X, y, n_splits=3, n_repeats=1).predictions_at_cutoff("DLRN")


# ----------------------------------------------------------------------------- repeated-CV estimate (issue 12)


def test_auc_summary_is_the_mean_fold_auc_with_the_corrected_resampled_ci():
    from replicate.stats import auc_ci
    from replicate.stats.resampled_ttest import (
        corrected_resampled_ttest_ci,
        corrected_se,
    )

    X, y, sig, pert = toy(n=60, effect=1.0, seed=23)
    cv = dlrn.repeated_cv(maker(sig, pert, heads="dlrn"), X, y, n_splits=3, n_repeats=2, seed=4)
    splits = list(RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=4).split(np.zeros(len(y)), y))
    fa = cv.fold_aucs[cv.fold_aucs["model"] == "DLRN"].reset_index(drop=True)
    assert len(fa) == 6
    for k, (tr, te) in enumerate(splits):
        s = cv.per_repeat["DLRN"].iloc[te, k // 3]
        assert fa.loc[k, "AUC"] == pytest.approx(roc_auc_score(y.iloc[te], s))
        assert (fa.loc[k, "n_train"], fa.loc[k, "n_test"]) == (len(tr), len(te))
    summ = cv.auc_summary().loc["DLRN"]
    mean, lo, hi = corrected_resampled_ttest_ci(fa["AUC"], fa["n_train"].mean(), fa["n_test"].mean())
    assert (summ["mean"], summ["low"], summ["high"]) == pytest.approx((mean, lo, hi))
    assert summ["se"] == pytest.approx(corrected_se(fa["AUC"], fa["n_train"].mean(), fa["n_test"].mean()))
    # the corrected SE is wider than the naive SD / sqrt(J) of the same values
    assert summ["se"] > fa["AUC"].std(ddof=1) / np.sqrt(len(fa))
    assert summ["per_repeat"] == pytest.approx(fa.groupby("repeat")["AUC"].mean().round(4).tolist())
    plo, pauc, phi = auc_ci(y, cv.oof("DLRN"))
    assert (summ["pooled"], summ["pooled_low"], summ["pooled_high"]) == pytest.approx((pauc, plo, phi))


# ----------------------------------------------------------------------------- declared fallbacks (issue 12)


def test_fallbacks_taken_are_recorded_and_worded():
    # pure noise, few patients: the clinical model finds no variable, the LASSO often keeps nothing
    X, y, sig, pert = toy(n=40, effect=0.0, seed=24, clin_effect=0.0)
    X["t_stage"] = 2.0 + np.random.default_rng(0).normal(scale=1e-3, size=len(X))  # no signal at all
    X["age"] = np.random.default_rng(1).normal(size=len(X))
    m = maker(sig, pert, heads="dlrn")().fit(X, y)
    steps = {fb["step"] for fb in m.info_["fallbacks"]}
    assert "clinical" in steps
    words = dlrn.fallback_deviations([m.info_])
    clin = [w for w in words if w.startswith("Clinical model")]
    assert clin and "in 1 of 1 model fits" in clin[0] and "smallest univariate P" in clin[0]
    if "lasso_keep_one" in steps:
        assert any("'never empty' fallback" in w for w in words)
    # counting across fits (and inner cut-off fits), and nothing when no fallback was taken
    infos = [
        {
            "fallbacks": [{"step": "lasso_keep_one", "where": "HCR", "detail": "f1"}],
            "inner_fits": [{"fallbacks": [{"step": "lasso_keep_one", "where": "HCR", "detail": "f2"}]}],
        },
        {"fallbacks": []},
    ]
    assert dlrn.fallback_deviations(infos) == [
        (
            "LASSO (HCR): the cross-validated penalty removed every feature; the single feature that enters the LASSO "
            "path first was kept and refitted without penalty (LassoSelector's 'never empty' fallback) (in 2 of 3 "
            "model fits)."
        )
    ]
    assert dlrn.fallback_deviations([{"fallbacks": []}]) == []
    sep = [
        {
            "fallbacks": [
                {
                    "step": "clinical",
                    "where": "Clinical",
                    "detail": f"multivariable model separated (on {v}); "
                    f"fell back to the best univariate variable {v[0]!r}",
                }
            ]
        }
        for v in (["Age", "Grade"], ["Age"])
    ]
    assert dlrn.fallback_deviations(sep) == [
        (
            "Clinical model in 2 of 2 model fits: multivariable model separated; the single variable with the smallest "
            "univariate P was used instead (ClinicalLogit's fallback): Age (2x)."
        )
    ]


def test_method_declarations_read_the_fitted_settings():
    X, y, sig, pert = toy(n=60, effect=1.0, seed=25)
    m = maker(sig, pert, cfg=config(classifiers=("lr", "svm", "adaboost")))().fit(X, y)
    text = " ".join(dlrn.method_declarations(m))
    assert "SVC(kernel='rbf', C=1.0, gamma='scale', probability=True" in text and "Platt scaling" in text
    assert (
        "LogisticRegression(l1_ratio=0.0, C=1.0" in text
        and "an L2 penalty" in text
        and "depth-1 decision stumps" in text
    )
    assert "k_neighbors=5" in text and "L1-penalised logistic regression" in text and "3-fold" in text
    assert "training rows" in text


# ----------------------------------------------------------------------------- survival and audit helpers


def test_survival_by_risk_and_event_label_overlap():
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    rng = np.random.default_rng(5)
    n = 80
    score = rng.uniform(size=n)
    t = rng.exponential(scale=np.where(score >= 0.5, 10, 40))
    e = (rng.uniform(size=n) < 0.8).astype(int)
    r = dlrn.survival_by_risk(t, e, score, 0.5, n_boot=50, seed=0)
    hi = score >= 0.5
    assert (r["n_high risk"], r["n_low risk"]) == (hi.sum(), (~hi).sum())
    assert r["events_high risk"] == e[hi].sum()
    assert r["logrank_p"] == pytest.approx(logrank_test(t[hi], t[~hi], e[hi], e[~hi]).p_value)
    med = KaplanMeierFitter().fit(t[hi], e[hi]).median_survival_time_
    assert r["median_high risk"] == pytest.approx(med)
    assert r["c_low"] <= r["c_index"] <= r["c_high"] and r["c_index"] > 0.5
    assert dlrn.survival_by_risk(t, e, score, 2.0, n_boot=10)["logrank_p"] is None
    ov = dlrn.event_label_overlap([1, 1, 0, 1, 0], [1, 0, 0, 1, 1])
    assert ov == {
        "events": 3,
        "events_in_label_positive": 2,
        "events_in_label_negative": 1,
        "label_positive": 3,
        "label_positive_without_event": 1,
    }


def test_comparison_audit_flags_name_the_papers_inconsistent_delong_rows():
    flags = dlrn.comparison_audit_flags(load_spec("rls"))
    assert any("DLRS - Clinical" in f for f in flags["t3_ext_dlrn_clin"])
    assert any("DLRN - Clinical" in f for f in flags["t3_ext_dlrs_clin"])
    assert "t3_train_dlrn_clin" not in flags  # a consistent row is not flagged
    assert dlrn.comparison_audit_flags(load_spec("sts")) == {}
