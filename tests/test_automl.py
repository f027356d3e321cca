"""replicate.automl: the WORC-style search (sampling, workflows, fast path, ensemble), WORC's evaluation
(corrected resampled t-test over random splits, test-set bootstrap) and replicate.segmentation_quality."""

import collections
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score

from replicate import automl
from replicate.automl import (
    LegacyQDA,
    RobustZScore,
    WORCAutoML,
    build_workflow,
    feature_group,
    feature_groups,
    sample_workflow,
)


def _data(n=90, p=30, seed=0, informative=4, nan_frac=0.0):
    X, y = make_classification(
        n_samples=n, n_features=p, n_informative=informative, n_redundant=2, class_sep=1.2, random_state=seed
    )
    names = (
        [f"PREDICT_original_sf_f{i}" for i in range(5)]
        + [f"PREDICT_original_hf_f{i}" for i in range(5)]
        + [f"PREDICT_original_tf_GLCM_f{i}" for i in range(10)]
        + [f"PREDICT_original_tf_Gabor_f{i}" for i in range(max(0, p - 20))]
    )[:p]
    X = pd.DataFrame(X, columns=names, index=[f"P{i:03d}" for i in range(n)])
    if nan_frac:
        mask = np.random.default_rng(seed).random(X.shape) < nan_frac
        X = X.mask(mask)
    return X, pd.Series(y, index=X.index, name="label")


# ------------------------------------------------------------------------------------------- search space


def test_sampling_is_seeded_and_follows_worc_space():
    groups = ["shape", "histogram", "texture_GLCM", "other"]
    a = [sample_workflow(np.random.default_rng(3), groups) for _ in range(1)]
    b = [sample_workflow(np.random.default_rng(3), groups) for _ in range(1)]
    assert a == b
    rng = np.random.default_rng(0)
    cfgs = [sample_workflow(rng, groups) for _ in range(4000)]
    clf = collections.Counter(c["classifier"]["name"] for c in cfgs)
    # WORC's list: SVM 9/26, RF/LR/LDA/QDA/GaussianNB 3/26 each, AdaBoost and XGB 1/26 each
    assert abs(clf["SVM"] / 4000 - 9 / 26) < 0.03
    assert abs(clf["LDA"] / 4000 - 3 / 26) < 0.02
    assert abs(clf["XGBClassifier"] / 4000 - 1 / 26) < 0.015
    for step in ("relief", "select_from_model", "pca", "statistical_test", "resampling"):
        frac = np.mean([c[step] is not None for c in cfgs])
        assert abs(frac - 0.2) < 0.03, step  # WORC: each optional step with p = 0.2
    assert all(c["variance"] for c in cfgs)  # Featsel.Variance = 1.0
    assert set(cfgs[0]["groups"]) == {"shape", "histogram", "texture_GLCM"}  # 'other' is never searched
    svm = [c["classifier"] for c in cfgs if c["classifier"]["name"] == "SVM"]
    assert min(s["C"] for s in svm) >= 1 and max(s["C"] for s in svm) <= 1e6  # 10 ** U(0, 6)
    assert min(s["gamma"] for s in svm) >= 1e-5 and max(s["gamma"] for s in svm) <= 1  # 10 ** U(-5, 0)
    assert {s["degree"] for s in svm} <= set(range(1, 7))
    rf = [c["classifier"] for c in cfgs if c["classifier"]["name"] == "RF"]
    assert {r["max_depth"] for r in rf} <= set(range(5, 10)) and min(r["n_estimators"] for r in rf) >= 10
    st = [c["statistical_test"]["threshold"] for c in cfgs if c["statistical_test"]]
    assert min(st) >= 1e-3 and max(st) <= 10**-0.5


def test_group_draws_never_select_nothing():
    """A single-group model (the volume model) keeps its group in every workflow; with two groups each is
    on with probability 2/3 (0.5 conditioned on not both off); an 'other' column makes any draw valid."""
    rng = np.random.default_rng(0)
    assert all(sample_workflow(rng, ["shape"])["groups"] == {"shape": True} for _ in range(200))
    two = [sample_workflow(rng, ["shape", "histogram"])["groups"] for _ in range(3000)]
    assert all(any(g.values()) for g in two)
    assert abs(np.mean([g["shape"] for g in two]) - 2 / 3) < 0.03
    with_other = [sample_workflow(rng, ["shape", "other"])["groups"] for _ in range(2000)]
    assert abs(np.mean([g["shape"] for g in with_other]) - 0.5) < 0.04
    X, y = _data(n=60, p=12, seed=2)
    m = WORCAutoML(n_workflows=10, n_top=3, inner_cv=2, seed=0).fit(X[["PREDICT_original_sf_f0"]], y)
    assert m.fallbacks_["workflows_failed"] == int(m.cv_results_["mean_score"].isna().sum())
    assert all(len(automl.selected_columns(c, m.groups_)) == 1 for c in m.workflows_)


def test_every_sampled_workflow_builds_and_fits():
    X, y = _data(n=60, p=24)
    groups = feature_groups(X.columns)
    rng = np.random.default_rng(1)
    fitted = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(60):
            cfg = sample_workflow(rng, sorted(set(groups)))
            if len(automl.selected_columns(cfg, groups)) == 0:
                continue
            p = build_workflow(cfg, groups).fit(X.to_numpy(), y.to_numpy()).predict_proba(X.to_numpy())
            assert p.shape == (60, 2) and np.all(np.isfinite(p))
            fitted += 1
    assert fitted > 50


def test_feature_groups_worc_and_pyradiomics_names():
    assert feature_group("PREDICT_original_sf_volume_2.5D") == "shape"
    assert feature_group("PREDICT_original_tf_GLCMMS_contrastd1.0A0.0") == "texture_GLCMMS"
    assert feature_group("PREDICT_original_tf_GLCM_contrastd1.0A0.0") == "texture_GLCM"
    assert feature_group("PREDICT_original_logf_min_sigma1") == "log"
    assert feature_group("original_shape_MeshVolume") == "shape"
    assert feature_group("original_firstorder_Mean") == "histogram"
    assert feature_group("wavelet-LLH_glcm_Idmn") == "wavelet"
    assert feature_group("age") == feature_group("location=trunk") == "other"


def test_robust_z_score_is_worcs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    X[0, 0] = 50.0
    z = RobustZScore().fit(X)
    lo, hi = np.percentile(X, 5, axis=0), np.percentile(X, 95, axis=0)
    for j in range(3):
        inner = X[(X[:, j] > lo[j]) & (X[:, j] < hi[j]), j]
        assert z.mean_[j] == pytest.approx(inner.mean())
        assert z.scale_[j] == pytest.approx(inner.std())
    const = RobustZScore().fit(np.ones((10, 1)))
    assert np.all(np.isfinite(const.transform(np.ones((3, 1)))))


def test_legacy_qda_handles_more_features_than_patients():
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

    X, y = _data(n=40, p=30)
    p = LegacyQDA(reg_param=1e-3).fit(X.to_numpy(), y).predict_proba(X.to_numpy())
    assert p.shape == (40, 2) and np.all(np.isfinite(p))
    Xs, ys = X.iloc[:, :3].to_numpy(), y.to_numpy()  # full rank: same as scikit-learn's
    a = LegacyQDA(reg_param=0.0).fit(Xs, ys).predict(Xs)
    b = QuadraticDiscriminantAnalysis(reg_param=0.0).fit(Xs, ys).predict(Xs)
    assert (a == b).mean() > 0.95


# ------------------------------------------------------------------------------------------- the estimator


@pytest.mark.slow
def test_prefix_cache_equals_full_pipelines():
    """The fast path (imputation + scaling + variance computed once per inner split) scores every
    workflow exactly as its full Pipeline does."""
    X, y = _data(n=70, p=24, nan_frac=0.05)
    kw = dict(n_workflows=25, n_top=5, inner_cv=3, seed=4)
    fast = WORCAutoML(**kw, use_prefix_cache=True).fit(X, y)
    slow = WORCAutoML(**kw, use_prefix_cache=False).fit(X, y)
    pd.testing.assert_series_equal(fast.cv_results_["mean_score"], slow.cv_results_["mean_score"])
    assert fast.member_ids_ == slow.member_ids_
    np.testing.assert_allclose(fast.predict_proba(X), slow.predict_proba(X))


@pytest.mark.slow
def test_fit_predict_learns_and_is_deterministic_and_parallel_safe():
    X, y = _data(n=120, p=30, seed=2)
    tr, te = X.index[:90], X.index[90:]
    m1 = WORCAutoML(n_workflows=30, n_top=6, inner_cv=3, seed=0, n_jobs=1).fit(X.loc[tr], y.loc[tr])
    m2 = WORCAutoML(n_workflows=30, n_top=6, inner_cv=3, seed=0, n_jobs=2).fit(X.loc[tr], y.loc[tr])
    p1, p2 = m1.predict_proba(X.loc[te])[:, 1], m2.predict_proba(X.loc[te])[:, 1]
    np.testing.assert_allclose(p1, p2)
    assert roc_auc_score(y.loc[te], p1) > 0.8
    assert len(m1.members_) == 6 and m1.cv_results_["rank"].min() == 1
    assert set(m1.predict(X.loc[te])) <= {0, 1}
    # scikit-learn conventions
    c = clone(m1)
    assert c.get_params()["n_workflows"] == 30 and not hasattr(c, "members_")
    # roc_auc scoring also works
    m3 = WORCAutoML(n_workflows=10, n_top=3, inner_cv=2, seed=1, scoring="roc_auc").fit(X.loc[tr], y.loc[tr])
    assert m3.cv_results_["mean_score"].dropna().between(0, 1).all()


def test_single_feature_model_runs():
    """The volume-only model: one column, kept by every workflow (a group draw never selects nothing)."""
    X, y = _data(n=80, p=24, seed=5)
    Xv = X[["PREDICT_original_sf_f0"]]
    m = WORCAutoML(n_workflows=20, n_top=4, inner_cv=3, seed=0).fit(Xv, y)
    assert all(c["groups"] == {"shape": True} for c in m.workflows_)
    assert len(m.members_) == 4
    assert np.all(np.isfinite(m.predict_proba(Xv)))


# ------------------------------------------------------------------------------------------- evaluation


@pytest.mark.slow
def test_random_splits_null_labels_give_chance_auc(tmp_path):
    """Leak-free: with permuted labels the mean AUC over random splits is ~0.5."""
    from replicate.validation import permute_labels, random_splits

    X, y = _data(n=100, p=20, seed=7)
    y0 = permute_labels(y, seed=1)
    pos = random_splits(y0, n_splits=12, test_size=0.2, seed=0)
    splits = [(list(y0.index[a]), list(y0.index[b])) for a, b in pos]
    ev = automl.evaluate_random_splits(
        lambda s: WORCAutoML(n_workflows=8, n_top=3, inner_cv=2, seed=s), X, y0, splits, seed=0, n_jobs=2
    )
    assert abs(ev.summary.loc["AUC", "value"] - 0.5) < 0.12


def test_corrected_t_test_is_used_and_ci_clipped(tmp_path):
    """The summary's CI is replicate.stats' corrected resampled t-test with the splits' sizes; bounds
    beyond [0, 1] are clipped and the raw bound kept."""
    from replicate.stats.resampled_ttest import corrected_resampled_ttest_ci

    rng = np.random.default_rng(0)
    rows = []
    for k in range(30):
        y = np.r_[np.ones(11), np.zeros(12)].astype(int)
        s = np.where(y == 1, rng.uniform(0.3, 1, 23), rng.uniform(0, 0.75, 23))
        rows.append(pd.DataFrame({"split": k, "patient_id": [f"p{i}" for i in range(23)], "y": y, "score": s}))
    preds = pd.concat(rows, ignore_index=True)
    summ = automl.summarize_random_splits(preds, n_train=92, n_test=23)
    per = automl.per_split_metrics(preds)
    m, lo, hi = corrected_resampled_ttest_ci(per["AUC"].to_numpy(), 92, 23)
    assert summ.loc["AUC", "value"] == pytest.approx(m)
    assert summ.loc["AUC", "low_raw"] == pytest.approx(lo) and summ.loc["AUC", "high_raw"] == pytest.approx(hi)
    naive = 1.96 * per["AUC"].std(ddof=1) / np.sqrt(30)
    assert (hi - lo) / 2 > 2 * naive  # the correction widens the naive CI a lot
    # a metric near 1 whose t-interval passes 1
    preds2 = preds.assign(score=preds["y"] * 0.9 + rng.uniform(0, 0.2, len(preds)))
    s2 = automl.summarize_random_splits(preds2, n_train=92, n_test=23)
    assert s2.loc["AUC", "high"] <= 1.0 and s2.loc["AUC", "low"] <= s2.loc["AUC", "value"]


def test_worc_bootstrap_matches_worc_definition():
    from replicate.stats.bootstrap import bootstrap_auc

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 150)
    s = 1 / (1 + np.exp(-(y + rng.normal(0, 1.2, 150))))
    b = automl.worc_bootstrap(y, s, n_boot=500, seed=3)
    boots = bootstrap_auc(y, s, n_boot=500, seed=3)
    assert b.loc["AUC", "value"] == pytest.approx(roc_auc_score(y, s))
    half = 1.959963984540054 * boots.std()
    assert b.loc["AUC", "low_raw"] == pytest.approx(b.loc["AUC", "value"] - half)
    assert b.loc["AUC", "high_raw"] == pytest.approx(b.loc["AUC", "value"] + half)
    assert b.loc["BCA", "value"] == pytest.approx((b.loc["SEN", "value"] + b.loc["SPE", "value"]) / 2)


def test_split_predictions_are_cached(tmp_path):
    X, y = _data(n=60, p=12, seed=3)
    splits = [(list(X.index[:45]), list(X.index[45:])), (list(X.index[15:]), list(X.index[:15]))]
    calls = []

    def factory(s):
        calls.append(s)
        return WORCAutoML(n_workflows=4, n_top=2, inner_cv=2, seed=s)

    a = automl.run_random_splits(factory, X, y, splits, seed=0, n_jobs=1, cache_dir=tmp_path, cache_key={"m": 1})
    assert len(calls) == 2

    def broken(s):
        raise AssertionError("should have been read from the cache")

    b = automl.run_random_splits(broken, X, y, splits, seed=0, n_jobs=1, cache_dir=tmp_path, cache_key={"m": 1})
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    with pytest.raises(AssertionError):  # another key -> no cache hit
        automl.run_random_splits(broken, X, y, splits, seed=0, n_jobs=1, cache_dir=tmp_path, cache_key={"m": 2})


def test_compare_split_evaluations():
    X, y = _data(n=80, p=16, seed=11)
    from replicate.validation import random_splits

    splits = [(list(y.index[a]), list(y.index[b])) for a, b in random_splits(y, 6, 0.2, seed=0)]
    mk = lambda s: WORCAutoML(n_workflows=6, n_top=2, inner_cv=2, seed=s)  # noqa: E731
    full = automl.evaluate_random_splits(mk, X, y, splits, seed=0)
    one = automl.evaluate_random_splits(mk, X[[X.columns[0]]], y, splits, seed=0)
    c = automl.compare_split_evaluations(one, full)
    assert 0 <= c["ttest_p"] <= 1 and 0 <= c["delong_p"] <= 1
    assert c["n_patients"] == len({i for _, te in splits for i in te})


def test_encode_table():
    t = pd.DataFrame({"age": [50, 60, 70], "sex": ["male", "female", "male"], "loc": ["a", "b", "c"]})
    e = automl.encode_table(t, ["age", "sex", "loc"])
    assert list(e.columns) == ["age", "sex=male", "loc=a", "loc=b", "loc=c"]
    assert set(feature_groups(e.columns)) == {"other"}


# ------------------------------------------------------------------------------------------- segmentation quality


def test_degrade_mask_reaches_target_dice():
    from replicate.segmentation_quality import assign_grades, degrade_mask, dice

    zz, yy, xx = np.mgrid[:24, :48, :48]
    mask = ((xx - 24) ** 2 + (yy - 24) ** 2) / 15**2 + ((zz - 12) * 3) ** 2 / 30**2 < 1
    for target in (0.95, 0.85, 0.78):
        out, d = degrade_mask(mask, target, np.random.default_rng(0), spacing=(3.0, 1.0, 1.0))
        assert abs(d - target) < 0.01 and d == pytest.approx(dice(out, mask))
    g = assign_grades([f"p{i}" for i in range(100)], {"excellent": 296, "sufficient": 133}, seed=0)
    assert g.value_counts().to_dict() == {"excellent": 69, "sufficient": 31}  # 296 : 133


def test_degraded_mask_cache_follows_the_source_mask_across_effect_sizes(tmp_path):
    """Issue 12: the twin rendered at two effect sizes has other tumours under the same case ids; degrading
    both into ONE cache folder with the same grades and seed must give each its own masks (keyed on the
    source mask's content and the target Dice), each within its grade's range of ITS source mask."""
    import SimpleITK as sitk

    from replicate.data.synthetic import make_cohort
    from replicate.segmentation_quality import assign_grades, degrade_cases, dice
    from replicate.spec import load_spec

    spec = load_spec("alt")
    design = dict(spec.synthetic)
    design["cohorts"] = design["cohorts"][:2]
    design["centres"] = {k: v for k, v in design["centres"].items() if k in {c["centre"] for c in design["cohorts"]}}
    sq = spec.design["twin"]["segmentation_quality"]
    ranges = {g: tuple(v["dice"]) for g, v in sq.items()}
    cache = tmp_path / "degraded"

    def read(path):
        return sitk.GetArrayFromImage(sitk.ReadImage(str(path))) > 0

    runs = {}
    for effect in (0.0, 1.0):
        cohort = make_cohort(
            design,
            seed=0,
            effect_size=effect,
            n_patients=16,
            name="synthetic:alt_cache",
            cache_dir=tmp_path / "cohorts",
        )
        ext = [c for c in cohort.cases("T1") if cohort.table.loc[c.case_id, "split"] == "validation"]
        grades = assign_grades([c.case_id for c in ext], {g: v["n"] for g, v in sq.items()}, seed=0)
        runs[effect] = (ext, *degrade_cases(ext, grades, ranges, cache, seed=5), grades)
    (ext0, new0, tab0, g0), (ext1, new1, tab1, g1) = runs[0.0], runs[1.0]
    assert [c.case_id for c in ext0] == [c.case_id for c in ext1] and g0.equals(g1)  # same ids, grades, seed
    differ = [k for k in range(len(ext0)) if not np.array_equal(read(ext0[k].mask), read(ext1[k].mask))]
    assert differ, "the two effect sizes should render different tumours"
    for k in differ:
        assert new0[k].mask != new1[k].mask  # not the other run's cached mask
    for ext, new, tab in ((ext0, new0, tab0), (ext1, new1, tab1)):
        for src, deg in zip(ext, new):
            d = dice(read(deg.mask), read(src.mask))
            lo, hi = ranges[tab.loc[src.case_id, "grade"]]
            assert lo <= d <= hi and d == pytest.approx(tab.loc[src.case_id, "dice"])
    again = degrade_cases(ext1, g1, ranges, cache, seed=5)  # a re-run reuses its own files
    assert [c.mask for c in again[0]] == [c.mask for c in new1]


def test_degraded_mask_outside_its_grade_range_names_the_case(tmp_path, monkeypatch):
    import SimpleITK as sitk

    from replicate import segmentation_quality as sq
    from replicate.data.cohort import Case

    zz, yy, xx = np.mgrid[:12, :24, :24]
    m = (((xx - 12) ** 2 + (yy - 12) ** 2 + (zz - 6) ** 2) < 5**2).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(m), str(tmp_path / "m.nii.gz"))
    case = Case("P7", tmp_path / "m.nii.gz", tmp_path / "m.nii.gz")
    grades = pd.Series({"P7": "sufficient"})
    # a degradation that misses its target (here: returns the mask eroded far below the range)
    monkeypatch.setattr(
        sq,
        "degrade_mask",
        lambda mask, target, rng, spacing: (
            np.zeros_like(mask, dtype=bool) | (np.asarray(mask, bool) & (zz == 6)),
            0.0,
        ),
    )
    with pytest.raises(ValueError, match=r"case P7: .*outside the 'sufficient' range"):
        sq.degrade_cases([case], grades, {"sufficient": (0.75, 0.90)}, tmp_path / "out", seed=0)


# ------------------------------------------------------------------------------------------- search mechanics


def test_search_is_deterministic_given_the_seed():
    X, y = _data(n=80, p=20, seed=8)
    a = WORCAutoML(n_workflows=15, n_top=4, inner_cv=3, seed=11).fit(X, y)
    b = WORCAutoML(n_workflows=15, n_top=4, inner_cv=3, seed=11).fit(X, y)
    pd.testing.assert_frame_equal(a.cv_results_, b.cv_results_)
    assert a.workflows_ == b.workflows_ and a.member_ids_ == b.member_ids_
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = WORCAutoML(n_workflows=15, n_top=4, inner_cv=3, seed=12).fit(X, y)
    assert c.workflows_ != a.workflows_  # another seed, another search


def test_inner_cv_uses_only_the_training_rows(tmp_path):
    """The search inside an outer split sees the split's training patients only: its inner splits
    partition positions 0..n_train-1, and scrambling the outer test patients' features and labels
    changes nothing the search did (same inner scores, same members)."""
    X, y = _data(n=90, p=20, seed=9)
    splits = [(list(X.index[:70]), list(X.index[70:])), (list(X.index[20:]), list(X.index[:20]))]
    fitted = {}

    def factory(tag):
        def make(s):
            m = WORCAutoML(n_workflows=10, n_top=3, inner_cv=3, seed=s)
            fitted.setdefault(tag, []).append(m)
            return m

        return make

    automl.run_random_splits(factory("clean"), X, y, splits, seed=0)
    Xs, ys = X.copy(), y.copy()
    for _, te in splits[:1]:
        Xs.loc[te] = np.random.default_rng(0).normal(50, 30, size=(len(te), X.shape[1]))
        ys.loc[te] = 1 - ys.loc[te]
    automl.run_random_splits(factory("scrambled"), Xs, ys, splits[:1], seed=0)
    clean, scrambled = fitted["clean"][0], fitted["scrambled"][0]
    n_train = len(splits[0][0])
    for tr, te in clean.inner_splits_:
        assert len(set(tr) & set(te)) == 0 and set(tr) | set(te) <= set(range(n_train))
        assert len(te) == int(np.ceil(0.15 * n_train))
    pd.testing.assert_frame_equal(clean.cv_results_, scrambled.cv_results_)
    assert clean.member_ids_ == scrambled.member_ids_
    Xtr = X.loc[splits[0][0]]
    np.testing.assert_array_equal(clean.predict_proba(Xtr), scrambled.predict_proba(Xtr))


def test_ensemble_is_the_mean_of_the_top_k_workflows_probabilities():
    X, y = _data(n=80, p=20, seed=10)
    tr, te = X.index[:60], X.index[60:]
    m = WORCAutoML(n_workflows=20, n_top=5, inner_cv=3, seed=2).fit(X.loc[tr], y.loc[tr])
    res = m.cv_results_.set_index("workflow")
    # the members are the best-ranked workflows, in rank order (none failed to refit here)
    ranked = res.sort_values("rank").index[:5].tolist()
    assert m.member_ids_ == ranked
    assert res.loc[ranked, "mean_score"].min() >= res.drop(index=ranked)["mean_score"].max()
    # each member is its workflow refitted on all training rows; the ensemble averages their probabilities
    groups = feature_groups(X.columns)
    probs = [
        build_workflow(m.workflows_[i], groups)
        .fit(X.loc[tr].to_numpy(), y.loc[tr].to_numpy())
        .predict_proba(X.loc[te].to_numpy())[:, 1]
        for i in ranked
    ]
    np.testing.assert_allclose(m.predict_proba(X.loc[te])[:, 1], np.mean(probs, axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.predict_proba(X.loc[te]).sum(axis=1), 1.0)


def test_f1_weighted_equals_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    cases = [(rng.integers(0, 2, 14), rng.integers(0, 2, 14)) for _ in range(200)]
    cases += [
        (np.ones(5, int), np.zeros(5, int)),
        (np.zeros(6, int), np.zeros(6, int)),
        (np.r_[np.ones(3), np.zeros(4)].astype(int), np.ones(7, int)),
    ]
    for t, p in cases:
        assert automl.f1_weighted(t, p) == pytest.approx(f1_score(t, p, average="weighted", zero_division=0), abs=1e-12)


def test_cached_param_names_is_exact_and_restored():
    from sklearn.base import BaseEstimator
    from sklearn.ensemble import RandomForestClassifier

    before = BaseEstimator.__dict__["_get_param_names"]
    rf = RandomForestClassifier(n_estimators=7, max_depth=3)
    plain = rf.get_params()
    with automl.cached_param_names():
        assert rf.get_params() == plain and clone(rf).get_params() == plain
    assert BaseEstimator.__dict__["_get_param_names"] is before


# ------------------------------------------------------------------------------------------- corrected t-test


def test_corrected_t_ci_hand_computed():
    """Nadeau & Bengio on four split AUCs, by hand: mean 0.7875; S^2 = 0.021875 / 3 = 0.00729167;
    se = sqrt((1/4 + 20/80) * S^2) = 0.0603807; t(0.975, df 3) = 3.1824463; CI = 0.7875 -+ 0.1921585."""
    mean, lo, hi = automl.corrected_t_ci([0.8, 0.7, 0.9, 0.75], n_train=80, n_test=20)
    assert mean == pytest.approx(0.7875, abs=1e-12)
    assert lo == pytest.approx(0.5953415, abs=1e-6) and hi == pytest.approx(0.9796585, abs=1e-6)
    # the naive t interval (no n_test / n_train term) is sqrt(1 + 4 * 20 / 80) = sqrt(2) times narrower
    assert (hi - lo) / 2 == pytest.approx(3.1824463 * np.sqrt(0.00729167 / 4) * np.sqrt(2), abs=1e-6)
    # undefined splits (nan) are dropped, as WORC does
    assert automl.corrected_t_ci([0.8, np.nan, 0.7, 0.9, 0.75], 80, 20) == pytest.approx((mean, lo, hi))
    # the comparison test on per-split differences, by hand: d = (0.05, 0.02, 0.08, 0.01), mean 0.04,
    # S^2 = 0.003 / 3 = 0.001, se = sqrt(0.5 * 0.001) = 0.0223607, t = 1.7888544
    from replicate.stats.resampled_ttest import corrected_resampled_ttest

    r = corrected_resampled_ttest([0.85, 0.72, 0.98, 0.76], [0.8, 0.7, 0.9, 0.75], n_train=80, n_test=20)
    assert r.mean == pytest.approx(0.04) and r.se == pytest.approx(0.0223607, abs=1e-7)
    assert r.t == pytest.approx(1.7888544, abs=1e-6) and r.df == 3


# ------------------------------------------------------------------------------------------- fallbacks (issue 12)


def test_resampler_skips_what_worc_skips_and_substitutes_nothing():
    from replicate.automl import SafeResampler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = np.r_[np.zeros(40), np.ones(20)].astype(int)

    def run(method, strategy, **kw):
        r = SafeResampler(method, strategy, random_state=0, **kw)
        Xr, yr = r.fit_resample(X, y)
        return r.skipped_, np.bincount(yr).tolist()

    # a strategy the sampler does not accept: skipped (not replaced by 'auto', which would resample the minority)
    assert run("RandomUnderSampling", "minority") == (True, [40, 20])
    assert run("RandomOverSampling", "majority") == (True, [40, 20])
    assert run("NeighbourhoodCleaningRule", "minority", threshold_cleaning=0.5) == (True, [40, 20])
    assert run("SMOTEENN", "majority") == (True, [40, 20])
    # accepted strategies resample
    assert run("RandomOverSampling", "minority") == (False, [40, 40])
    assert run("RandomUnderSampling", "not minority") == (False, [20, 20])
    # SMOTE ignores the drawn strategy (WORC passes none: 'auto')
    assert run("SMOTE", "majority", k_neighbors=5) == (False, [40, 40])
    # more neighbours than minority patients: skipped (WORC: imbalanced-learn's ValueError -> skipped)
    assert run("SMOTE", "auto", k_neighbors=25)[0] is True
    # fewer than 10 patients left in a class: skipped
    y_small = np.r_[np.zeros(51), np.ones(9)].astype(int)
    r = SafeResampler("RandomUnderSampling", "all", random_state=0)
    _, yr = r.fit_resample(X, y_small)
    assert r.skipped_ and np.bincount(yr).tolist() == [51, 9]


def test_lr_solver_is_declared_against_worcs():
    from replicate.automl import lr_solver, make_classifier, worc_lr_solver

    for penalty, drawn, ours, worc in (
        ("l1", "lbfgs", "liblinear", "saga"),
        ("l2", "lbfgs", "liblinear", "lbfgs"),
        ("l2", "saga", "liblinear", "saga"),
        ("elasticnet", "lbfgs", "saga", "saga"),
    ):
        clf = {"name": "LR", "penalty": penalty, "solver": drawn, "C": 0.5, "l1_ratio": 0.3}
        assert (lr_solver(clf), worc_lr_solver(clf)) == (ours, worc)
        assert make_classifier(clf).solver == ours


@pytest.mark.slow
def test_fallbacks_are_counted_and_travel_with_cached_predictions(tmp_path):
    X, y = _data(n=70, p=20, seed=4)
    m = WORCAutoML(n_workflows=40, n_top=6, inner_cv=2, seed=3).fit(X, y)
    assert set(m.fallbacks_) | {"predict_failures"} == set(automl.FALLBACKS)
    assert m.fallbacks_["workflows_failed"] == int(m.cv_results_["mean_score"].isna().sum())
    assert m.fallbacks_["ensemble_short"] == 6 - len(m.members_)
    skipped = sum(bool(getattr(mem.named_steps.get("resampling"), "skipped_", False)) for mem in m.members_)
    assert m.fallbacks_["resampling_skipped"] == skipped
    lr = [m.workflows_[i]["classifier"] for i in m.member_ids_ if m.workflows_[i]["classifier"]["name"] == "LR"]
    assert m.fallbacks_["lr_solver_replaced"] == sum(c["penalty"] in ("l1", "l2") for c in lr)
    # the counts are stored with each split's cached predictions and summed over the splits
    splits = [(list(X.index[:50]), list(X.index[50:])), (list(X.index[20:]), list(X.index[:20]))]
    mk = lambda s: WORCAutoML(n_workflows=12, n_top=3, inner_cv=2, seed=s)  # noqa: E731
    ev = automl.evaluate_random_splits(mk, X, y, splits, seed=0, cache_dir=tmp_path, cache_key="fb")
    again = automl.evaluate_random_splits(None, X, y, splits, seed=0, cache_dir=tmp_path, cache_key="fb")
    assert set(ev.fallbacks()) == set(automl.FALLBACKS) and ev.fallbacks() == again.fallbacks()
    per_split = [
        fit_fb
        for fit_fb in (
            automl.fallback_counts(mk(s).fit(X.loc[tr], y.loc[tr]))
            for s, (tr, _) in zip(np.random.SeedSequence(0).generate_state(2), splits)
        )
    ]
    assert ev.fallbacks()["ensemble_short"] == sum(f["ensemble_short"] for f in per_split)


def test_a_member_that_fails_to_predict_is_left_out_and_counted():
    X, y = _data(n=60, p=12, seed=5)
    m = WORCAutoML(n_workflows=10, n_top=3, inner_cv=2, seed=0).fit(X, y)
    good = [mem.predict_proba(X.to_numpy())[:, 1] for mem in m.members_[1:]]

    class Broken:
        def predict_proba(self, X):
            raise ValueError("broken member")

    m.members_[0] = Broken()
    np.testing.assert_allclose(m.predict_proba(X)[:, 1], np.mean(good, axis=0))
    assert m.predict_failures_ == 1 and automl.fallback_counts(m)["predict_failures"] == 1
    m.members_ = [Broken(), Broken()]
    with pytest.raises(RuntimeError, match="all 2 ensemble members failed"):
        m.predict_proba(X)


@pytest.mark.slow
def test_seed_reruns_on_the_same_splits_pool_to_their_mean():
    X, y = _data(n=80, p=16, seed=12)
    from replicate.results import ChapterResults
    from replicate.spec import load_spec
    from replicate.validation import random_splits

    splits = [(list(y.index[a]), list(y.index[b])) for a, b in random_splits(y, 5, 0.2, seed=0)]
    mk = lambda s: WORCAutoML(n_workflows=6, n_top=2, inner_cv=2, seed=s)  # noqa: E731
    runs = [automl.evaluate_random_splits(mk, X, y, splits, seed=s) for s in (1, 2, 3)]
    pooled = automl.pool_seed_runs(runs)
    assert pooled.seed_values["AUC"] == [r.summary.loc["AUC", "value"] for r in runs]
    assert len(set(pooled.seed_values["AUC"])) > 1  # the seed changes the method's result
    assert pooled.summary.loc["AUC", "value"] == pytest.approx(np.mean(pooled.seed_values["AUC"]))
    np.testing.assert_allclose(pooled.per_split["AUC"], np.mean([r.per_split["AUC"] for r in runs], axis=0))
    m, lo, hi = automl.corrected_t_ci(pooled.per_split["AUC"], pooled.n_train, pooled.n_test)
    assert (pooled.summary.loc["AUC", "low_raw"], pooled.summary.loc["AUC", "high_raw"]) == (lo, hi)
    assert pooled.cpu_seconds == pytest.approx(sum(r.cpu_seconds for r in runs))
    ps = pooled.patient_scores()
    pid = splits[0][1][0]
    assert ps.loc[pid, "score"] == pytest.approx(
        np.mean([r.preds.loc[r.preds["patient_id"] == pid, "score"].mean() for r in runs])
    )
    # recorded with its seed values, a same-data pair gets a three-way TOST verdict on the method's variability
    res = ChapterResults(load_spec("alt"), data="public", parameters={})
    row = res.add_metric(
        "Imaging model",
        "cv",
        "AUC",
        pooled.summary.loc["AUC", "value"],
        (pooled.summary.loc["AUC", "low"], pooled.summary.loc["AUC", "high"]),
        seed_values=pooled.seed_values["AUC"],
    )
    assert row["comparability"] == "same_data" and row["verdict"] in ("reproduced", "not reproduced", "inconclusive")
    assert "R = 3 seed re-runs" in row["rule"]
    with pytest.raises(ValueError, match="same splits"):
        automl.pool_seed_runs([runs[0], automl.evaluate_random_splits(mk, X, y, splits[:3], seed=1)])


def test_lazy_imputer_equals_its_imputer():
    from sklearn.impute import KNNImputer, SimpleImputer

    from replicate.automl import LazyImputer

    rng = np.random.default_rng(0)
    clean = rng.normal(size=(40, 6))
    holes = clean.copy()
    holes[rng.random(holes.shape) < 0.1] = np.nan
    for base in (
        SimpleImputer(strategy="most_frequent", keep_empty_features=True),
        SimpleImputer(strategy="median", keep_empty_features=True),
        KNNImputer(n_neighbors=3),
    ):
        for train in (clean, holes):
            lazy = LazyImputer(base).fit(train)
            ref = clone(base).fit(train)
            for test in (clean[:10], holes[:10]):
                np.testing.assert_array_equal(lazy.transform(test), ref.transform(test))
    assert LazyImputer(SimpleImputer()).fit(clean).imputer_ is None  # nothing computed until a NaN comes


def test_seed_sd_from_splits_and_fallback_sentence():
    rng = np.random.default_rng(0)
    J, R = 50, 3
    noise = rng.normal(0, 0.04, size=(R, J))  # independent seed noise per split
    runs = []
    for r in range(R):
        per = pd.DataFrame({"AUC": 0.8 + noise[r]}, index=pd.Index(range(J), name="split"))
        summ = pd.DataFrame({"value": [per["AUC"].mean()]}, index=["AUC"])
        runs.append(automl.SplitEvaluation(pd.DataFrame({"split": [], "patient_id": []}), per, summ, 92, 23))
    pooled = automl.pool_seed_runs(runs)
    sd_runs = np.std(pooled.seed_values["AUC"], ddof=1)
    est = pooled.seed_sd_from_splits("AUC")
    assert est == pytest.approx(0.04 / np.sqrt(J), rel=0.15)  # J (R - 1) = 100 df: close to the truth
    assert np.isfinite(sd_runs)  # (2 df: anywhere near it)
    text = automl.describe_fallbacks(
        {"workflows_failed": 3, "resampling_skipped": 2, "pca_skipped": 0, "scaling_fallback_columns": 7}, 4, 10, 3
    )
    assert "3 of 40 sampled workflows that failed" in text and "2 of 12 ensemble members whose resampling" in text
    assert "; 7 feature columns" in text and "PCA" not in text
    assert automl.describe_fallbacks({}, 2, 10, 3).endswith("none.")


def test_logistic_regression_stops_at_its_iteration_cap_and_is_counted():
    """Robust z-scoring can leave features in the tens of thousands; an l1 liblinear fit on such data ran
    for minutes at WORC's max_iter (100,000): the cap bounds it and the fit counts the member."""
    from replicate.automl import LR_MAX_ITER, make_classifier

    clf = {"name": "LR", "penalty": "l1", "solver": "lbfgs", "C": 0.9, "l1_ratio": 0.5}
    assert make_classifier(clf).max_iter == LR_MAX_ITER == 1000
    assert make_classifier({**clf, "penalty": "elasticnet"}).max_iter == LR_MAX_ITER
    X, y = _data(n=70, p=20, seed=4)
    m = WORCAutoML(n_workflows=40, n_top=6, inner_cv=2, seed=3).fit(X, y)
    capped = 0
    for mem, i in zip(m.members_, m.member_ids_):
        if m.workflows_[i]["classifier"]["name"] == "LR":
            lr = mem.named_steps["classifier"]
            capped += int(np.max(lr.n_iter_) >= lr.max_iter)
    assert m.fallbacks_["lr_iteration_cap"] == capped
