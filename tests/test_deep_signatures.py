"""replicate.deep_signatures: F-test -> RFE -> RBF-SVM, the paper's protocol, the nomogram, the signature as a
CNN head."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import RFE
from sklearn.metrics import roc_auc_score
from sklearn.svm import SVC

from replicate import deep_signatures as ds
from replicate.learn import DropConstant, ZScore
from replicate.results import ChapterResults
from replicate.spec import load_spec

SMALL = dict(n_features_grid=(1, 2, 4), C_grid=(1.0, 10.0), gamma_grid=("scale",), inner_cv=3)


def toy(n=48, p=40, informative=(0, 1), shift=1.5, seed=0):
    rng = np.random.default_rng(seed)
    y = pd.Series(np.r_[np.zeros(n // 2, int), np.ones(n - n // 2, int)], index=[f"P{i:03d}" for i in range(n)])
    X = pd.DataFrame(rng.normal(size=(n, p)), index=y.index, columns=[f"f{j}" for j in range(p)])
    for j in informative:
        X.iloc[:, j] += shift * y.to_numpy()
    return X, y


@pytest.mark.parametrize("kernel,C,gamma", [("linear", 1.0, "scale"), ("rbf", 10.0, "scale"), ("rbf", 0.1, 0.1)])
def test_fast_svm_equals_sklearn_svc(kernel, C, gamma):
    X, y = toy(n=50, p=12, seed=4)
    a, yv = X.to_numpy(), y.to_numpy()
    ref = SVC(kernel=kernel, C=C, gamma=gamma).fit(a[:35], yv[:35])
    fast = ds._SVM(kernel, C, gamma).fit(a[:35], yv[:35])
    assert np.allclose(fast.decision(a[35:]), ref.decision_function(a[35:]), atol=1e-8)
    if kernel == "linear":
        assert np.allclose(fast.coef(), ref.coef_, atol=1e-8)


def test_rfe_order_is_exact_rfe_below_the_threshold():
    X, y = toy(p=20)
    a, yv = X.to_numpy(), y.to_numpy()
    pre, order, _ = ds._rfe_order(a, yv, percentile=100, step=0.1, exact_below=32, C=1.0)
    assert sorted(pre.tolist()) == list(range(20)) and len(order) == 20
    for n in (1, 2, 5, 11):
        rfe = RFE(SVC(kernel="linear", C=1.0), n_features_to_select=n, step=1).fit(a, yv)
        assert set(order[:n].tolist()) == set(np.flatnonzero(rfe.support_).tolist())


def test_rfe_order_prefilters_the_top_percentile():
    X, y = toy(p=50)
    pre, order, _ = ds._rfe_order(X.to_numpy(), y.to_numpy(), percentile=20, step=0.1, exact_below=4, C=1.0)
    assert len(pre) == 10 and set(order.tolist()) == set(pre.tolist())
    assert {0, 1} <= set(pre.tolist())  # the informative columns pass the F-test


def test_ftest_rfe_svm_finds_the_signal_and_is_deterministic():
    X, y = toy()
    m = ds.FTestRFESVM(random_state=3, **SMALL).fit(X, y)
    assert set(m.selected_features_) <= {"f0", "f1"} and m.best_params_["n_features"] == len(m.selected_features_)
    assert {"n_features", "C", "gamma", "mean_auc"} <= set(m.cv_results_.columns)
    assert len(m.cv_results_) == 3 * 2
    p = m.predict_proba(X)
    assert p.shape == (len(X), 2) and np.allclose(p.sum(1), 1)
    assert roc_auc_score(y, m.decision_function(X)) > 0.8
    m2 = ds.FTestRFESVM(random_state=3, **SMALL).fit(X, y)
    assert np.allclose(m2.predict_proba(X), p) and m2.selected_features_ == m.selected_features_
    # numpy input works by position
    mn = ds.FTestRFESVM(random_state=3, **SMALL).fit(X.to_numpy(), y.to_numpy())
    assert np.allclose(mn.decision_function(X.to_numpy()), m.decision_function(X))


def test_ftest_rfe_svm_bad_input():
    X, y = toy()
    X.iloc[3, 5] = np.nan
    with pytest.raises(ValueError, match="missing or infinite"):
        ds.FTestRFESVM(**SMALL).fit(X, y)
    X, y = toy()
    with pytest.raises(ValueError, match="exactly 2 classes"):
        ds.FTestRFESVM(**SMALL).fit(X, pd.Series(0, index=X.index))
    m = ds.FTestRFESVM(**SMALL).fit(X, y)
    with pytest.raises(KeyError, match="selected feature"):
        m.predict_proba(X.drop(columns=m.selected_features_[0]))


def test_icc_step_drops_features_that_are_not_reproducible():
    X, y = toy(n=60, p=12)
    rng = np.random.default_rng(1)
    reseg = X.iloc[:20].copy()
    reseg["f1"] = rng.normal(size=20) * 5  # informative but not reproducible
    reseg.loc[:, [c for c in X.columns if c != "f1"]] += rng.normal(scale=0.01, size=(20, 11))
    m = ds.signature_pipeline(perturbed=reseg, icc_threshold=0.85, seed=0, percentile=100, **SMALL).fit(X, y)
    icc = m.named_steps["icc"]
    assert "f1" not in icc.selected_features_ and "f0" in icc.selected_features_
    assert "f1" not in m.named_steps["signature"].selected_features_


def test_signature_affine_reproduces_the_pipeline():
    X, y = toy(p=30)
    X["const"] = 1.0
    X = X * 7 + 3
    from sklearn.pipeline import Pipeline

    pipe = Pipeline(
        [("drop", DropConstant()), ("z", ZScore()), ("signature", ds.FTestRFESVM(random_state=0, **SMALL))]
    ).fit(X, y)
    aff = ds.signature_affine(pipe)
    assert np.allclose(aff.decision(X), pipe.decision_function(X), atol=1e-10)
    with pytest.raises(TypeError):
        ds.signature_affine(Pipeline([("z", ZScore()), ("svm", SVC())]).fit(X, y))


def test_combine_modalities_prefixes_and_reports_missing():
    a = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=["A", "B", "C"])
    b = pd.DataFrame({"x": [4.0, 5.0]}, index=["A", "C"])
    out, missing = ds.combine_modalities({"CT": a, "T1": b}, ["CT", "T1"])
    assert list(out.columns) == ["CT__x", "T1__x"] and list(out.index) == ["A", "C"]
    assert missing == ["B: no T1 features"]
    with pytest.raises(KeyError, match="T2FS"):
        ds.combine_modalities({"CT": a}, ["CT", "T2FS"])


class _Spy(ds.FTestRFESVM):
    def fit(self, X, y):
        self.seen_ = list(X.index)
        return super().fit(X, y)


def test_evaluate_model_protocol_and_cache(tmp_path):
    X, y = toy(n=40, p=15)
    tr = list(X.index[::2])  # 10 + 10 (toy: first half negative)
    va = [i for i in X.index if i not in tr]
    ev = ds.evaluate_model(
        "toy",
        _Spy(random_state=0, **SMALL),
        X.loc[tr],
        y.loc[tr],
        X.loc[va],
        y.loc[va],
        n_splits=3,
        n_repeats=2,
        seed=1,
        inspect=lambda m: m.seen_,
        cache_dir=tmp_path,
        cache_key={"m": 1},
    )
    assert ev.oof.index.equals(X.loc[tr].index) and ev.oof_per_repeat.shape == (len(tr), 2)
    assert not ev.oof_per_repeat.isna().any().any()
    for f in ev.fold_info:  # every outer fit saw only its training rows
        assert len(f["info"]) < len(tr) and set(f["info"]) <= set(tr)
    # the rows a fold was scored on are exactly those it did not see
    per_rep = {}
    for f in ev.fold_info:
        per_rep.setdefault(f["repeat"], []).append(set(tr) - set(f["info"]))
    for _r, tests in per_rep.items():
        assert set().union(*tests) == set(tr) and sum(len(t) for t in tests) == len(tr)
    assert ev.p_validation.index.equals(X.loc[va].index) and 0 <= ev.validation_auc <= 1
    assert not ev.cached
    ev2 = ds.evaluate_model(
        "toy",
        _Spy(random_state=0, **SMALL),
        X.loc[tr],
        y.loc[tr],
        X.loc[va],
        y.loc[va],
        n_splits=3,
        n_repeats=2,
        seed=1,
        inspect=lambda m: m.seen_,
        cache_dir=tmp_path,
        cache_key={"m": 1},
    )
    assert ev2.cached and np.allclose(ev2.oof, ev.oof)
    with pytest.raises(ValueError, match="same index"):
        ds.evaluate_model("bad", _Spy(**SMALL), X.loc[tr], y.loc[va[:5]])


def test_null_labels_give_chance_auc():
    """Pure noise, the outcome unrelated to the features: the out-of-fold AUC stays near 0.5 (no leakage)."""
    rng = np.random.default_rng(5)
    n = 120
    X = pd.DataFrame(rng.normal(size=(n, 200)), index=[f"N{i}" for i in range(n)])
    X.columns = [f"g{j}" for j in range(200)]
    y = pd.Series(rng.permutation(np.r_[np.zeros(60, int), np.ones(60, int)]), index=X.index)
    ev = ds.evaluate_model("null", ds.signature_pipeline(seed=0, **SMALL), X, y, n_splits=5, n_repeats=1, seed=0)
    assert abs(ev.cv_auc - 0.5) < 0.15
    # the apparent (resubstitution) AUC is optimistic: that is why the paper's training numbers need CV
    assert ev.apparent_auc > ev.cv_auc


def test_rank_models_by_validation_or_cv():
    def fake(cv_hi, val_hi):
        y = pd.Series([0, 0, 1, 1], index=list("abcd"))
        good, bad = pd.Series([0.1, 0.2, 0.8, 0.9], index=y.index), pd.Series([0.9, 0.2, 0.8, 0.1], index=y.index)
        return ds.ModelEvaluation(
            "m",
            y,
            good if cv_hi else bad,
            pd.DataFrame({0: good if cv_hi else bad}),
            pd.Series([1.0]),
            good,
            y,
            good if val_hi else bad,
            None,
        )

    evs = {"A": fake(True, False), "B": fake(False, True)}
    assert ds.rank_models(evs, by="validation").iloc[0]["model"] == "B"
    assert ds.rank_models(evs, by="cv").iloc[0]["model"] == "A"
    with pytest.raises(ValueError):
        ds.rank_models(evs, by="apparent")


def test_signature_nomogram_fits_inside_training_rows():
    X, y = toy(n=80, p=20)
    rng = np.random.default_rng(2)
    X["age"] = np.round(50 + 10 * y.to_numpy() + rng.normal(scale=8, size=len(y)))
    X["sex"] = np.where(rng.uniform(size=len(y)) < 0.5, "male", "female")
    X["ldh"] = rng.normal(160, 30, size=len(y))
    img = [c for c in X.columns if c.startswith("f")]
    nomo = ds.SignatureNomogram(
        signature=ds.signature_pipeline(seed=0, **SMALL),
        signature_columns=img,
        clinical=["age", "sex", "ldh"],
        inner_cv=3,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nomo.fit(X, y)
    assert "age" in nomo.clinical_selected_ and "sex" not in nomo.clinical_selected_
    assert nomo.oof_score_.notna().all()
    p = nomo.predict_proba(X)[:, 1]
    assert ((p > 0) & (p < 1)).all() and roc_auc_score(y, p) > 0.8
    assert list(nomo.logit_.coef_.index)[0] == "DL signature"
    with pytest.raises(TypeError):
        nomo.fit(X.to_numpy(), y)


def test_performance_uses_the_papers_interval():
    y = np.r_[np.ones(20, int), np.zeros(18, int)]
    p = np.r_[np.full(19, 0.9), [0.1], np.full(16, 0.1), [0.9, 0.9]]  # SEN 19/20, SPE 16/18
    perf = ds.performance(y, p, ci_method="wilson-cc")
    assert perf["SEN"][0] == pytest.approx(0.95) and perf["SEN"][1:] == pytest.approx((0.7306, 0.9974), abs=5e-5)
    assert perf["SPE"][1:] == pytest.approx((0.6393, 0.9805), abs=5e-5)  # Table 2, RN-DL validation
    assert perf["C-index"] == perf["AUC"] and 0 <= perf["AP"][0] <= 1
    res = ChapterResults(load_spec("wdlps"), data="synthetic", parameters={})
    ds.record_performance(res, "Toy", "validation", perf)
    got = {m["metric"] for m in res.metrics}
    assert set(ds.PERFORMANCE_METRICS) <= got


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory):
    from replicate.data.synthetic import make_cohort

    design = dict(load_spec("wdlps").synthetic)
    design["geometry"] = {
        "shape": [24, 24, 8],
        "spacing": [6.0, 6.0, 16.0],
        "tumour_diameter_mm": {"mean": [60, 80], "sd": [10, 10]},
    }
    design["centres"] = {k: {kk: vv for kk, vv in v.items() if kk != "spacing"} for k, v in design["centres"].items()}
    return make_cohort(design, seed=0, n_patients=10, cache_dir=tmp_path_factory.mktemp("syn"))


@pytest.mark.slow
def test_extract_feature_sets_and_signature_gradcam(tiny_cohort, tmp_path, monkeypatch):
    """The deep extractor on tiny inputs, and the signature's torch head equals the fitted pipeline."""
    import torch

    from replicate.features.deep import preprocess, tumour_crops

    monkeypatch.setenv("REPLICATE_FEATURE_CACHE", str(tmp_path / "fc"))
    params = {
        "imageType": {"Original": {}},
        "featureClass": {"firstorder": ["Mean", "Variance"]},
        "setting": {"binWidth": 25, "label": 1},
    }
    ids = list(tiny_cohort.table.index)
    fs = ds.extract_feature_sets(
        tiny_cohort,
        ["CT", "T1"],
        radiomics_params=params,
        resegment_ids=ids[:4],
        backbones=["resnet18"],
        layers={"resnet18": ["last_conv", "layer2"]},
        size=32,
    )
    assert fs.failures.empty
    n = len(ids)
    assert fs.hcr["CT"].shape == (n, 2) and fs.hcr_resegmented["T1"].shape == (4, 2)
    assert fs.deep[("resnet18", "last_conv", "CT")].shape == (n, 512)
    assert fs.deep[("resnet18", "layer2", "T1")].shape == (n, 128)
    assert fs.info["weights"]["resnet18"] in ("imagenet", "untrained (ImageNet weights not available)")
    X, _ = ds.combine_modalities({m: fs.deep[("resnet18", "last_conv", m)] for m in ("CT", "T1")}, ["CT", "T1"])
    y = tiny_cohort.table["wdlps"].astype(int)
    model = ds.signature_pipeline(seed=0, n_features_grid=(2, 3), C_grid=(1.0,), gamma_grid=("scale",), inner_cv=2).fit(
        X, y
    )
    pid = ids[0]
    case = next(c for c in tiny_cohort.cases("T1") if c.case_id == pid)
    _, crop = tumour_crops(case)[0]
    aff = ds.signature_affine(model)
    from replicate.features.deep import build_backbone, resolve_layer

    net, meta = build_backbone("resnet18", "auto", seed=0)
    head = ds.SignatureScore.build(
        net, resolve_layer("resnet18", "last_conv"), aff, "T1", "resnet18_last_conv_", X.loc[pid]
    )
    with torch.no_grad():
        d = head(preprocess(crop, 32, meta["mean"], meta["std"])[None])[0, 1].item()
    assert d == pytest.approx(float(model.decision_function(X.loc[[pid]])[0]), abs=1e-3)
    cam, n_used, cls = ds.signature_gradcam(model, X.loc[pid], crop, "T1", backbone="resnet18", seed=0, size=32)
    assert cam.shape == crop.shape and n_used == head.n_used
    assert cls == int(model.decision_function(X.loc[[pid]])[0] > 0)  # default: the predicted class
    if n_used:
        assert cam.min() >= 0 and cam.max() <= 1 + 1e-6
    else:
        assert not cam.any()


def test_f_test_keeps_the_top_20_percent_and_tuning_is_the_inner_cv_optimum():
    X, y = toy(n=60, p=45)
    m = ds.FTestRFESVM(random_state=0, percentile=20, **SMALL).fit(X, y)
    assert len(m.prefiltered_features_) == 9  # ceil(20% of 45)
    assert set(m.selected_features_) <= set(m.prefiltered_features_) and set(m.order_) == set(m.prefiltered_features_)
    # the full grid was scored by the inner CV, and the refit uses its (first) best combination
    assert len(m.cv_results_) == len(SMALL["n_features_grid"]) * len(SMALL["C_grid"]) * len(SMALL["gamma_grid"])
    best = m.cv_results_.iloc[int(np.nanargmax(m.cv_results_["mean_auc"].to_numpy()))]
    assert (best["n_features"], best["C"], best["gamma"]) == (
        m.best_params_["n_features"],
        m.best_params_["C"],
        m.best_params_["gamma"],
    )
    assert m.selected_features_ == m.order_[: m.best_params_["n_features"]]


def test_nested_cv_every_learned_step_sees_training_rows_only(monkeypatch):
    """Outer CV (evaluate_model) x inner CV (FTestRFESVM.fit): z-score, F-test, RFE and the SVM grid are fitted on
    rows of the current training part only; the validation cohort and each outer test fold never reach them."""
    X, y = toy(n=60, p=20)
    X["rowid"] = np.arange(len(X), dtype=float) + 1000.0  # a harmless feature that names the row
    seen: list[set] = []
    real = ds._zscore_fit

    def spy(a):
        seen.append(set(np.round(a[:, -1]).astype(int).tolist()))
        return real(a)

    monkeypatch.setattr(ds, "_zscore_fit", spy)
    ids = {pid: 1000 + i for i, pid in enumerate(X.index)}
    tr, va = list(X.index[:40]), list(X.index[40:])
    model = ds.FTestRFESVM(random_state=0, inner_cv=4, **{k: v for k, v in SMALL.items() if k != "inner_cv"})
    folds = []
    ev = ds.evaluate_model(
        "nested",
        model,
        X.loc[tr],
        y.loc[tr],
        X.loc[va],
        y.loc[va],
        n_splits=4,
        n_repeats=1,
        seed=0,
        inspect=lambda m: None,
    )
    train_rows, val_rows = {ids[i] for i in tr}, {ids[i] for i in va}
    assert seen and all(s <= train_rows and not (s & val_rows) for s in seen)
    # per outer fit: 4 inner fits on ~3/4 of its rows, then the refit on all of them (5 z-score fits)
    assert len(seen) == 5 * (4 + 1)
    for k in range(5):
        block = seen[5 * k : 5 * k + 5]
        outer_train = block[-1]
        assert all(s < outer_train for s in block[:-1])  # inner parts are strict subsets
        assert set().union(*block[:-1]) == outer_train  # ... that cover the outer training part
        folds.append(outer_train)
    for s in folds[:4]:  # the 4 outer folds leave out their test rows
        assert len(s) == 30 and s < train_rows
    assert folds[4] == train_rows  # the final model: every training row
    assert ev.p_validation.index.equals(y.loc[va].index)


@pytest.mark.slow
def test_the_papers_six_cnns_on_tiny_inputs(tiny_cohort, tmp_path):
    """Each of the paper's CNNs (last convolutional block, global average) gives the paper's number of features
    per image (2048/512/512/2048/2048/1536), labels its weights honestly, is deterministic and cached."""
    from replicate.features.deep import IMAGENET, UNTRAINED, extract_deep

    design = load_spec("wdlps").design["deep"]
    cases = tiny_cohort.cases("T2FS")[:2]
    for paper_name, backbone in design["backbones"].items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ft = extract_deep(cases, backbone, layer="last_conv", size=80, seed=0, cache_dir=tmp_path, progress=False)
            again = extract_deep(
                cases, backbone, layer="last_conv", size=80, seed=0, cache_dir=tmp_path, progress=False
            )
        assert ft.failures.empty, (paper_name, ft.failures)
        assert ft.features.shape == (2, design["n_features"][paper_name]), paper_name
        assert np.isfinite(ft.features.to_numpy()).all() and ft.features.to_numpy().std() > 0
        assert ft.info["weights"] in (IMAGENET, UNTRAINED)
        assert again.info["n_cached"] == 2 and np.array_equal(again.features.to_numpy(), ft.features.to_numpy())


# ---------------------------------------------------------------------- issue 12: cut-offs, repeated CV, fallbacks


def test_f_test_ranks_undefined_last_and_perfect_separation_first():
    """scikit-learn's convention: a column constant on the rows (F = 0/0) last, one constant within each class
    (F = inf) first."""
    X, y = toy(n=40, p=20, shift=0.8)
    X["const"] = 3.0
    X["perfect"] = y.to_numpy() * 2.0
    a = X.to_numpy()
    pre, order, n_undef = ds._rfe_order(a, y.to_numpy(), percentile=10, step=0.1, exact_below=4, C=1.0)
    cols = list(X.columns)
    assert n_undef == 1
    assert cols.index("perfect") in pre.tolist() and cols.index("const") not in pre.tolist()
    pre, _, _ = ds._rfe_order(a, y.to_numpy(), percentile=100, step=0.1, exact_below=4, C=1.0)
    assert len(pre) == a.shape[1]


def test_cutoff_is_fixed_before_the_evaluated_cohort_is_seen():
    """A cut-off chosen on the evaluated cohort's own scores (held-out or in-sample) would make these perfect;
    the fixed 0.5 keeps them as they are."""
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    p = np.r_[np.linspace(0.55, 0.70, 10), np.linspace(0.75, 0.95, 10)]  # separable at 0.72, not at 0.5
    perf = ds.performance(y, p, threshold=0.5)
    assert perf["threshold"] == 0.5 and perf["AUC"][0] == 1.0
    assert perf["SPE"][0] == 0.0 and perf["SEN"][0] == 1.0  # every score >= 0.5: all positive
    # the cross-validated training metrics: per repeat at the same fixed threshold
    idx = [f"P{i}" for i in range(20)]
    per = pd.DataFrame({0: p, 1: p[::-1].copy()}, index=idx)
    per.iloc[:10, 1] = np.linspace(0.55, 0.70, 10)
    ys = pd.Series(y, index=idx)
    ev = ds.ModelEvaluation(
        "fixed", ys, per.mean(axis=1), per, pd.Series([1.0, 1.0]), per[0], None, None, None, n_splits=5
    )
    cv = ds.cv_performance(ev, threshold=0.5)
    assert cv["threshold"] == 0.5 and cv["SPE"]["mean"] == 0.0 and cv["per_repeat"]["SPE"].tolist() == [0.0, 0.0]
    assert cv["pooled"]["threshold"] == 0.5 and cv["pooled"]["SPE"][0] == 0.0


def test_a_patients_probability_depends_on_training_rows_and_its_own_features_only():
    """No per-cohort scaling and no cohort-dependent cut-off: changing the other held-out patients changes nothing."""
    X, y = toy(n=60, p=20)
    tr, va = X.index[:40], X.index[40:]
    model = ds.signature_pipeline(seed=0, **SMALL).fit(X.loc[tr], y.loc[tr])
    first = model.predict_proba(X.loc[va])[0, 1]
    other = X.loc[va].copy()
    other.iloc[1:] = other.iloc[1:] * 10 + 5
    assert model.predict_proba(other)[0, 1] == pytest.approx(first, abs=1e-12)
    assert model.predict_proba(X.loc[va[:1]])[0, 1] == pytest.approx(first, abs=1e-12)


def test_repeat_summary_is_the_corrected_resampled_t_interval():
    from scipy import stats

    v = np.array([0.70, 0.80, 0.75, 0.72])
    s = ds.repeat_summary(v, n_splits=5, n=100)
    se = np.sqrt((1 / 4 + 20 / 80) * v.var(ddof=1))  # n_test / n_train = 1 / (K - 1)
    lo, hi = stats.t.interval(0.95, 3, loc=v.mean(), scale=se)
    assert s["mean"] == pytest.approx(v.mean()) and s["se"] == pytest.approx(se)
    assert (s["low"], s["high"]) == pytest.approx((lo, hi)) and s["n_repeats"] == 4
    one = ds.repeat_summary([0.7], n_splits=5, n=100)
    assert one["mean"] == 0.7 and np.isnan(one["low"]) and np.isnan(one["se"])
    assert ds.repeat_summary([0.7, np.nan, 0.8], 5, 100)["n_repeats"] == 2  # undefined repeats left out


def test_cv_performance_headlines_the_per_repeat_mean_and_labels_the_pooled_auc():
    X, y = toy(n=50, p=15, shift=1.0)
    ev = ds.evaluate_model("toy", ds.signature_pipeline(seed=0, **SMALL), X, y, n_splits=5, n_repeats=3, seed=2)
    per_repeat = [roc_auc_score(y, ev.oof_per_repeat[r]) for r in range(3)]
    cv = ds.cv_performance(ev)
    assert cv["AUC"]["mean"] == pytest.approx(np.mean(per_repeat)) == pytest.approx(ev.cv_auc_summary()["mean"])
    assert cv["pooled"]["AUC"][0] == pytest.approx(ev.cv_auc)  # the secondary
    assert cv["AUC"]["low"] < cv["AUC"]["mean"] < cv["AUC"]["high"] and cv["AUC"]["se"] > 0
    res = ChapterResults(load_spec("wdlps"), data="synthetic", parameters={})
    ds.record_cv_performance(res, "Toy", cv)
    rows = [m for m in res.metrics if m["metric"] == "AUC"]
    head = [m for m in rows if "variable" not in m]
    assert len(head) == 1 and head[0]["value"] == pytest.approx(cv["AUC"]["mean"])
    assert head[0]["se"] == pytest.approx(cv["AUC"]["se"]) and head[0]["n_repeats"] == 3
    second = [m for m in rows if m.get("variable") == ds.POOLED_OOF]
    assert len(second) == 1 and second[0]["value"] == pytest.approx(ev.cv_auc)
    assert {m["cohort"] for m in res.metrics} == {"training"}
    ranked = ds.rank_models({"toy": ev}, by="cv")
    assert ranked.iloc[0]["cv_auc"] == pytest.approx(np.mean(per_repeat))
    assert ranked.iloc[0]["cv_auc_pooled"] == pytest.approx(ev.cv_auc)


def test_fit_fallbacks_report_the_code_path_taken():
    X, y = toy(n=40, p=40)
    assert ds.fit_fallbacks(ds.signature_pipeline(seed=0, **SMALL).fit(X, y)) == []
    X = X.iloc[:, :10]
    # a class of 3 patients: the inner CV cannot have 5 folds
    few = y.index[(y == 0).to_numpy()].tolist() + y.index[(y == 1).to_numpy()].tolist()[:3]
    m = ds.FTestRFESVM(random_state=0, inner_cv=5, n_features_grid=(1, 2), C_grid=(1.0,), gamma_grid=("scale",))
    text = ds.fit_fallbacks(m.fit(X.loc[few], y.loc[few]))
    assert any("inner CV with 3 instead of 5 folds" in t for t in text)
    # more RFE features asked for than the F-test keeps
    m = ds.FTestRFESVM(random_state=0, percentile=20, n_features_grid=(1, 5), C_grid=(1.0,), gamma_grid=("scale",))
    assert any("capped at 2" in t for t in ds.fit_fallbacks(m.fit(X, y)))
    # a feature constant on a training part
    Xc = X.copy()
    Xc["const"] = 1.0
    m = ds.FTestRFESVM(random_state=0, **SMALL)
    assert any("F statistic undefined" in t for t in ds.fit_fallbacks(m.fit(Xc, y)))
    # the ICC filter keeps the most reproducible feature when none passes
    rng = np.random.default_rng(0)
    pert = pd.DataFrame(rng.normal(size=(10, X.shape[1])), index=X.index[:10], columns=X.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = ds.signature_pipeline(perturbed=pert, icc_threshold=0.99, icc_min_rows=5, seed=0, **SMALL).fit(X, y)
    assert any(t.startswith("ICC filter: 0 feature(s)") for t in ds.fit_fallbacks(pipe))
    # the clinical model's fallback to the best single variable, and evaluate_model's tally over fits
    from replicate.clinical import ClinicalLogit

    noise = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)}, index=X.index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = ds.evaluate_model(
            "clin",
            ClinicalLogit(candidates=["a", "b"], p_enter=1e-9, p_keep=1e-9),
            noise,
            y,
            n_splits=4,
            n_repeats=1,
            seed=0,
        )
    assert ev.n_fits == 5 and ev.fallbacks
    assert all(t.startswith("clinical model: no variable with univariate P") for t in ev.fallbacks)
    assert sum(ev.fallbacks.values()) == 5


def test_nomogram_reports_its_fallbacks():
    X, y = toy(n=40, p=12)
    rng = np.random.default_rng(3)
    X["age"] = rng.normal(50, 10, size=len(y))  # unrelated to the outcome: nothing is selected
    img = [c for c in X.columns if c.startswith("f")]
    nomo = ds.SignatureNomogram(
        signature=ds.signature_pipeline(seed=0, **SMALL),
        signature_columns=img,
        clinical=["age"],
        p_enter=1e-9,
        inner_cv=3,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nomo.fit(X, y)
    assert any(t.startswith("nomogram's clinical selection: no variable") for t in ds.fit_fallbacks(nomo))
