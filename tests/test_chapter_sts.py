"""Chapter `sts` (Liang et al. 2022, DLRN for lung metastasis in STS): spec, parameter file, and the
DLRN pipeline (replicate.dlrn) on a tiny synthetic twin with the quick profile."""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from replicate import dlrn
from replicate.results import ChapterResults
from replicate.spec import load_spec

TABLE3_METRICS = ("AUC", "ACC", "ER", "SEN", "SPE", "PPV", "NPV")
TABLE3_MODELS = {"DLRN": "DLRN", "Radiomics model": "Radiomics", "Clinical model": "Clinical"}


@pytest.fixture(scope="module")
def spec():
    return load_spec("sts")


# ----------------------------------------------------------------------------- the spec


def test_spec_loads_with_the_papers_cohorts(spec):
    c = spec.cohorts
    assert (c["training"]["n"], c["training"]["n_positive"]) == (116, 20)
    assert (c["validation"]["n"], c["validation"]["n_positive"]) == (126, 19)
    assert c["all"]["n"] == c["training"]["n"] + c["validation"]["n"]
    assert c["all"]["n_positive"] == c["training"]["n_positive"] + c["validation"]["n_positive"]
    assert spec.comparability("public")["level"] == "proxy"
    untrained = {"untrained_backbone"}
    auc = spec.find_reported("DLRN", "validation", "AUC")
    assert spec.comparability_of(auc, "public", untrained)[0] == "none"  # untrained CNN vs ImageNet
    assert spec.comparability_of(auc, "public")[0] == "proxy"  # with ImageNet weights: a proxy
    acc = spec.find_reported("Radiomics", "validation", "ACC")
    level, reason = spec.comparability_of(acc, "public")
    assert level == "none" and "prevalence" in reason


def test_every_results_table_row_is_in_reported(spec):
    for t in spec.raw["tables"]:
        for row in t["rows"]:
            hits = [r for r in spec.reported if r["where"].get("table") == t["name"] and r["where"].get("row") == row]
            assert hits, f"{t['name']} row {row!r} has no reported entry"


def test_table3_is_complete_and_consistent(spec):
    for _row, model in TABLE3_MODELS.items():
        for cohort in ("training", "validation"):
            for metric in TABLE3_METRICS:
                r = spec.find_reported(model, cohort, metric)
                assert r is not None and r["where"]["table"] == "Table 3", (model, cohort, metric)
            acc = spec.find_reported(model, cohort, "ACC")["value"]
            er = spec.find_reported(model, cohort, "ER")["value"]
            assert abs(acc + er - 1) < 1.5e-3, (model, cohort)
            auc = spec.find_reported(model, cohort, "AUC")
            lo, hi = auc["ci"]
            assert lo < auc["value"] < hi


def test_table3_counts_reproduce_the_printed_rates(spec):
    """The DLRN's and the external rows' rates are k/n of the set sizes (the notes give k/n)."""
    n = {"training": (20, 96), "validation": (19, 107)}
    for model, cohort, tp, tn in (
        ("DLRN", "training", 13, 93),
        ("DLRN", "validation", 9, 104),
        ("Radiomics", "validation", 5, 106),
        ("Clinical", "validation", 0, 107),
    ):
        pos, neg = n[cohort]
        fp, fn = neg - tn, pos - tp
        got = {"SEN": tp / pos, "SPE": tn / neg, "ACC": (tp + tn) / (pos + neg), "NPV": tn / (tn + fn)}
        if tp + fp:
            got["PPV"] = tp / (tp + fp)
        for metric, v in got.items():
            # printed to 3 decimals, halves rounded up (13/16 = 0.8125 -> 0.813)
            assert v == pytest.approx(spec.find_reported(model, cohort, metric)["value"], abs=5.01e-4), (
                model,
                cohort,
                metric,
            )


def test_table2_rows_have_or_ci_and_p(spec):
    uni = [r for r in spec.reported if r["model"] == "Univariate logistic"]
    multi = [r for r in spec.reported if r["model"] == "Multivariate logistic"]
    assert len(uni) == 12 and len(multi) == 5
    for r in uni + multi:
        assert r["metric"] == "OR" and r["variable"] and "p_value" in r
        assert r["ci"][0] < r["value"] < r["ci"][1]
        # Wald: the CI is symmetric on the log scale around the OR (to the printed decimals)
        mid = math.exp((math.log(r["ci"][0]) + math.log(r["ci"][1])) / 2)
        assert mid == pytest.approx(r["value"], rel=0.02), r["id"]


def test_twin_design_matches_table1(spec):
    d = spec.synthetic
    assert sum(c["n"] for c in d["cohorts"]) == 242
    assert sum(c["n_positive"] for c in d["cohorts"] if c["split"] == "training") == 20
    assert sum(c["n_positive"] for c in d["cohorts"] if c["split"] == "validation") == 19
    t1 = spec.design["table1"]["categorical"]["T-stage"]["training"]
    neg = np.array([r[0] for r in t1]) / 96
    pos = np.array([r[1] for r in t1]) / 20
    tstage = next(c for c in d["clinical"] if c["name"] == "t_stage")
    assert np.allclose(tstage["p"][0], neg, atol=1e-4) and np.allclose(tstage["p"][1], pos, atol=1e-4)
    for var, v in spec.design["table1"]["categorical"].items():
        for coh, (n_neg, n_pos) in (("training", (96, 20)), ("validation", (107, 19))):
            counts = np.array(v[coh])
            assert counts[:, 0].sum() == n_neg and counts[:, 1].sum() == n_pos, (var, coh)


def test_params_give_1379_features_per_roi():
    from replicate.features.radiomics import count_features

    assert count_features("sts") == 1379


# ----------------------------------------------------------------------------- pieces


def test_ajcc_t_stage():
    got = dlrn.ajcc_t_stage(pd.Series([10, 50, 50.1, 100, 149, 151, np.nan]))
    assert got.iloc[:6].tolist() == [1, 1, 2, 2, 3, 4] and np.isnan(got.iloc[6])


def test_partial_icc_filter_tests_only_reextracted_columns():
    rng = np.random.default_rng(0)
    idx = [f"p{i}" for i in range(30)]
    X = pd.DataFrame(rng.normal(size=(30, 4)), index=idx, columns=["h_stable", "h_noisy", "d1", "d2"])
    pert = X[["h_stable", "h_noisy"]].copy()
    pert["h_stable"] += rng.normal(scale=0.05, size=30)
    pert["h_noisy"] = rng.normal(size=30)
    f = dlrn.PartialICCFilter([pert.iloc[:20]], threshold=0.75).fit(X)
    assert f.selected_features_ == ["h_stable", "d1", "d2"]
    assert f.n_rows_ == 20 and f.n_tested_ == 2
    few = dlrn.PartialICCFilter([pert.iloc[:3]], threshold=0.75).fit(X)
    assert few.selected_features_ == list(X.columns) and few.note_


def test_config_from_spec(spec):
    cfg = dlrn.DLRNConfig.from_spec(spec, spec.profile("quick"))
    assert cfg.signatures == {"HCR": ["hcr"], "DL": ["deep"], "HD-Combined": ["hcr", "deep"]}
    assert cfg.classifiers == ["lr", "dt", "rf", "svm", "adaboost"] and cfg.smote == [False, True]
    assert cfg.chosen_model == "HD-Combined SVM-SMOTE" and cfg.chosen_name == "Radiomics"
    assert cfg.mrmr_k == 15 and cfg.cutoff == 0.5 and cfg.icc_threshold == 0.75
    assert len(cfg.heads("all")) == 30 and len(cfg.heads("chosen")) == 3
    assert dlrn.DLRNConfig.from_spec(spec, spec.profile("full")).lasso_cv == 10


def test_verdicts_pair_with_the_paper(spec):
    res = ChapterResults(spec, data="public", parameters={})
    row = res.add_metric("Radiomics", "validation", "AUC", 0.62, (0.45, 0.79))
    assert row["reported"] is not None and row["comparability"] == "proxy"
    assert row["verdict"] in ("consistent on proxy", "lower on proxy") and row["resolution"] > 0.1
    row = res.add_metric("DLRN", "validation", "AUC", 0.78, (0.70, 0.86))
    assert row["reported"] == 0.833 and row["verdict"] == "consistent on proxy"  # with ImageNet weights
    res.declare("untrained_backbone")
    dlrn_row = next(r for r in res.all_rows() if r["model"] == "DLRN" and r["metric"] == "AUC")
    assert dlrn_row["comparability"] == "none" and dlrn_row["verdict"] == "not comparable"
    row = res.add_metric("Clinical", "training", "PPV", None)
    assert row["verdict"] == "not comparable"
    syn = ChapterResults(spec, data="synthetic", parameters={})
    assert syn.add_metric("DLRN", "validation", "AUC", 0.83, (0.7, 0.9))["verdict"] == "not comparable"


# ----------------------------------------------------------------------------- the pipeline on a tiny twin


@pytest.fixture(scope="module")
def tiny(spec, tmp_path_factory):
    from replicate.data.synthetic import make_cohort

    counts = spec.profile("quick")
    cache = tmp_path_factory.mktemp("sts_cache")
    import os

    old = os.environ.get("REPLICATE_FEATURE_CACHE")
    os.environ["REPLICATE_FEATURE_CACHE"] = str(cache / "features")
    try:
        cohort = make_cohort("sts", seed=3, effect_size=2.0, n_patients=56, cache_dir=cache / "synthetic")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imf = dlrn.extract_image_features(
                cohort,
                ["T1", "T2FS"],
                params="sts",
                image_types=counts["radiomics_image_types"],
                deep=dict(backbone="resnet34", layer="last_conv", size=32, crop_margin=0.2, slices="max_area"),
                perturb_ids=dlrn.reproducibility_subset(cohort.table, 30, seed=0, by="centre"),
                seed=0,
                n_jobs=1,
            )
    finally:
        if old is None:
            os.environ.pop("REPLICATE_FEATURE_CACHE", None)
        else:
            os.environ["REPLICATE_FEATURE_CACHE"] = old
    cfg = dlrn.DLRNConfig.from_spec(spec, counts)
    cols = spec.design["clinical"]["columns"]["synthetic"]
    t = cohort.table.loc[imf.features.index]
    clinical = pd.DataFrame({k: t[v].astype(float) for k, v in cols.items()})
    X = pd.concat([dlrn.combat_all(imf.features, t["centre"]), clinical], axis=1)
    y = t["lung_mets"].astype(int)
    sig = {s: imf.columns(src) for s, src in cfg.signatures.items()}
    return dict(cohort=cohort, imf=imf, cfg=cfg, X=X, y=y, sig=sig, clin=list(cols), t=t)


def _make(tiny, heads="all", batch=None):
    return lambda: dlrn.DLRNModel(
        tiny["cfg"], tiny["sig"], tiny["clin"], perturbed=tiny["imf"].perturbed, batch=batch, heads=heads, seed=0
    )


@pytest.mark.slow
def test_image_features_of_the_twin(tiny):
    imf = tiny["imf"]
    assert len(imf.features) == 56 and imf.failures.empty
    assert imf.info["n_hcr"] == {"T1": 105, "T2FS": 105}
    assert imf.info["n_deep"] == {"T1": 512, "T2FS": 512}
    assert imf.info["weights"] in ("imagenet", "untrained (ImageNet weights not available)")
    assert set(imf.sources) == {"hcr", "deep"}
    assert all(c.startswith(("T1_hcr_", "T2FS_hcr_")) for c in imf.sources["hcr"])
    assert len(imf.perturbed) == 1 and 20 <= len(imf.perturbed[0]) <= 36
    assert set(imf.perturbed[0].columns) == set(imf.sources["hcr"])


@pytest.mark.slow
def test_external_split_fits_every_model(tiny):
    t = tiny["t"]
    tr = list(t.index[t["split"] == "training"])
    te = list(t.index[t["split"] == "validation"])
    model, s_tr, s_te = dlrn.fit_external(_make(tiny), tiny["X"], tiny["y"], tr, te)
    assert list(s_te.index) == te and list(s_tr.index) == tr
    expected = {tiny["cfg"].model_name(*h) for h in tiny["cfg"].heads("all")} | {"Radiomics", "Clinical", "DLRN"}
    assert set(s_te.columns) == expected
    assert ((s_te >= 0) & (s_te <= 1)).all().all()
    assert np.allclose(s_te["Radiomics"], s_te["HD-Combined SVM-SMOTE"])
    info = model.info_
    assert info["clinical_selected"] and "Rad-signature" in info["dlrn_coef"]
    fc = model.feature_counts(["T1", "T2FS"])
    assert (fc["LASSO"] <= fc["mRMR"]).all() and fc.groupby("signature")["mRMR"].sum().max() <= 15
    nom = model.nomogram_inputs()
    assert "Rad-signature" in nom["coefficients"]
    rep = dlrn.evaluate(tiny["y"].loc[te], s_te["DLRN"])
    assert set(dlrn.TABLE_METRICS) <= set(rep) and 0 <= rep["AUC"][0] <= 1
    assert len(model.rad_score(tiny["X"].loc[te])) == len(te)


@pytest.mark.slow
def test_repeated_cv_gives_out_of_fold_scores(tiny):
    cv = dlrn.repeated_cv(_make(tiny, heads="chosen"), tiny["X"], tiny["y"], n_splits=3, n_repeats=2, seed=1)
    oof = cv.oof_frame()
    assert oof.notna().all().all() and list(oof.index) == list(tiny["X"].index)
    assert {"Radiomics", "Clinical", "DLRN"} <= set(oof.columns)
    assert cv.auc_per_repeat.shape == (2, oof.shape[1])
    assert len(cv.fold_info) == 6


@pytest.mark.slow
def test_random_splits_with_in_fold_combat(tiny):
    df = dlrn.random_split_aucs(
        _make(tiny, heads="chosen", batch=tiny["t"]["centre"]), tiny["X"], tiny["y"], n_splits=3, test_size=0.25, seed=0
    )
    s = dlrn.summarise_split_aucs(df)
    assert {"DLRN", "Clinical", "Radiomics"} <= set(s.index) and (s["n_splits"] == 3).all()
    assert s["mean_AUC"].between(0, 1).all()


@pytest.mark.slow
def test_results_json_follows_the_contract(spec, tiny, tmp_path):
    t = tiny["t"]
    tr = list(t.index[t["split"] == "training"])
    te = list(t.index[t["split"] == "validation"])
    _, s_tr, s_te = dlrn.fit_external(_make(tiny, heads="chosen"), tiny["X"], tiny["y"], tr, te)
    res = ChapterResults(
        spec, data="synthetic", parameters={"seed": 0, "profile": "quick", "null_labels": False, "protocol": "paper"}
    )
    res.add_cohort("training", len(tr), int(tiny["y"].loc[tr].sum()), source="twin")
    res.add_cohort("validation", len(te), int(tiny["y"].loc[te].sum()), source="twin")
    for coh, ids, s in (("training", tr, s_tr), ("validation", te, s_te)):
        for m in ("DLRN", "Radiomics", "Clinical"):
            dlrn.record_metrics(res, m, coh, dlrn.evaluate(tiny["y"].loc[ids], s[m]))
    res.add_deviation("tiny twin")
    out = json.loads(res.write(tmp_path).read_text())
    assert out["chapter"] == "sts" and out["paper"] == spec.citation
    dl = [m for m in out["metrics"] if m["model"] == "DLRN" and m["cohort"] == "validation" and m["metric"] == "AUC"]
    assert dl and dl[0]["reported"] == 0.833 and dl[0]["verdict"] == "not comparable"
    assert all(m["verdict"] in ("reproduced", "not reproduced", "not comparable") for m in out["metrics"])


# ----------------------------------------------------------------------------- comparability on the proxy (issue 12)


def _public_levels(spec, untrained=True):
    cond = frozenset({"untrained_backbone"}) if untrained else frozenset()
    return {e["id"]: spec.comparability_of(e, "public", cond) for e in spec.reported}


def test_public_proxy_holds_only_like_for_like_pairs_against_the_paper(spec):
    """With an untrained CNN only the clinical model's AUC and three univariate ORs are held against Liang;
    every deep-feature model (the 'Radiomics' HD-Combined signature included), every threshold metric at
    another prevalence, the multivariable ORs, the Radi-score OR and the PFS medians are not."""
    lv = _public_levels(spec)
    proxy = {k for k, (level, _) in lv.items() if level == "proxy"}
    assert proxy == {"t3_train_clin_auc", "t3_ext_clin_auc", "t2_uni_age", "t2_uni_gender", "t2_uni_tstage"}
    assert "untrained backbone" in lv["t3_ext_rad_auc"][1] and "untrained backbone" in lv["t3_ext_dlrn_auc"][1]
    assert "SMOTE-augmented" in lv["t3_train_rad_auc"][1]  # the paper's own training row is off
    assert "prevalence" in lv["t3_ext_clin_spe"][1] and "prevalence" in lv["t3_ext_dlrn_sen"][1]
    assert "covariates" in lv["t2_multi_tstage"][1] and "score scale" in lv["t2_uni_radiscore"][1]
    assert "not available" in lv["t2_uni_nstage"][1]
    # with ImageNet weights the deep-feature models would be proxies; the PFS medians still would not be
    imagenet = _public_levels(spec, untrained=False)
    assert imagenet["t3_ext_rad_auc"][0] == "proxy" and "clock" in imagenet["txt_pfs_median_high_ext"][1]
    head = spec.comparability("public")["headline"]
    assert (head["model"], head["cohort"], head["metric"]) == ("Clinical", "validation", "AUC")
    assert all(level == "twin" for level, _ in (spec.comparability_of(e, "synthetic") for e in spec.reported))


def test_cv_auc_pair_uses_the_corrected_se_for_difference_and_resolution(spec):
    from replicate.stats.compare import resolution, se_from_ci

    res = ChapterResults(spec, data="public", parameters={})
    res.declare("untrained_backbone")
    res.add_cohort("validation", 51, 19)
    row = res.add_metric("Clinical", "validation", "AUC", 0.60, (0.40, 0.80), se=0.09)
    se_p, _ = se_from_ci(0.664, [0.523, 0.805], 0.95)
    assert row["comparability"] == "proxy" and row["resolution"] == pytest.approx(resolution(0.09, se_p))
    assert row["difference"] == pytest.approx(0.60 - 0.664)
    half = 1.959964 * np.hypot(0.09, se_p)
    assert row["difference_ci"] == pytest.approx([0.60 - 0.664 - half, 0.60 - 0.664 + half], abs=1e-4)
    assert row["verdict"] == "consistent on proxy"
    sec = res.add_metric("Clinical", "validation", "AUC", 0.58, (0.41, 0.75), variable=dlrn.SECONDARY_CV_AUC)
    assert sec["reported"] is None and sec["comparability"] == "none"  # the secondary is never paired
    words = dlrn.proxy_sentences(res.all_rows())
    assert len(words) == 1 and words[0].startswith("Clinical (validation) AUC: paper 0.66, here 0.60")
    assert "would reliably show" in words[0]
