"""replicate.fusion: feature-level (pre-) and decision-level (post-) fusion, leak-free stacking, the CRDL family,
the ultrasound semantic stand-ins. Tiny synthetic tables only (seconds)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from replicate.fusion import (
    CRDL_MODELS,
    BlockFusion,
    PostFusionClassifier,
    SubsetICCFilter,
    TuneThenRefit,
    block_columns,
    block_of,
    crdl_models,
    cross_validate_fusion,
    external_validation,
    fallbacks_taken,
    fit_fusion_models,
    make_pre_fusion,
    operating_report,
    out_of_fold_proba,
    permute_within,
    prefix_block,
    ultrasound_semantics,
)
from replicate.learn import TTestFilter, ZScore
from replicate.models import make_classifier
from replicate.stats import youden_threshold


def blocks_data(n=120, seed=0, signal=1.5, null=False):
    """clin (3 cols, col 0 informative), rad (12, col 0 informative), dl (15, noise) with patient ids."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n // 2, int), np.ones(n - n // 2, int)]
    rng.shuffle(y)
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    clin = pd.DataFrame(rng.normal(size=(n, 3)), index=idx, columns=["size", "morph", "echo"])
    rad = pd.DataFrame(rng.normal(size=(n, 12)), index=idx, columns=[f"r{j}" for j in range(12)])
    dl = pd.DataFrame(rng.normal(size=(n, 15)), index=idx, columns=[f"d{j}" for j in range(15)])
    if not null:
        clin["size"] += signal * y
        rad["r0"] += signal * y
        dl["d0"] += 0.5 * signal * y
    X = pd.concat([prefix_block(clin, "clin"), prefix_block(rad, "rad"), prefix_block(dl, "dl")], axis=1)
    return X, pd.Series(y, index=idx, name="malignant")


# ----------------------------------------------------------------------------- blocks


def test_block_names():
    assert block_of("rad:original_firstorder_Mean") == "rad"
    assert block_of("x") == ""
    assert block_columns(["dl:a", "clin:b", "rad:c", "clin:d"], ["clin", "rad"]) == ["clin:b", "clin:d", "rad:c"]
    df = prefix_block(pd.DataFrame({"a": [1.0]}), "clin")
    assert list(df.columns) == ["clin:a"]
    with pytest.raises(ValueError):
        prefix_block(df, "a:b")


def test_block_fusion_selects_blocks_and_applies_per_block_step():
    X, y = blocks_data()
    f = BlockFusion(("clin", "rad"), per_block={"rad": TTestFilter(alpha=0.01)}).fit(X, y)
    out = f.transform(X)
    assert list(out.index) == list(X.index)
    assert [c for c in out.columns if c.startswith("clin:")] == ["clin:size", "clin:morph", "clin:echo"]
    assert "rad:r0" in out.columns and not any(c.startswith("dl:") for c in out.columns)
    # the t-test ran on the rad block only: clinical columns all kept, rad reduced
    assert len(f.block_features_["rad"]) < 12
    assert f.block_features_["clin"] == ["clin:size", "clin:morph", "clin:echo"]
    # new rows, shuffled columns: same output
    Xn = X.iloc[:10, ::-1]
    pd.testing.assert_frame_equal(f.transform(Xn), out.iloc[:10])
    assert list(f.get_feature_names_out()) == list(out.columns)
    with pytest.raises(ValueError, match="no column of block 'us'"):
        BlockFusion(("us",)).fit(X, y)
    with pytest.raises(ValueError, match="not in blocks"):
        BlockFusion(("clin",), per_block={"rad": ZScore()}).fit(X, y)


def test_pre_fusion_pipeline_learns_and_uses_only_its_blocks():
    X, y = blocks_data(n=160)
    m = make_pre_fusion(["clin", "rad"], LogisticRegression(), steps=[ZScore()]).fit(X, y)
    assert roc_auc_score(y, m.predict_proba(X)[:, 1]) > 0.85
    # dl columns are ignored: changing them changes nothing
    X2 = X.copy()
    X2[[c for c in X2 if c.startswith("dl:")]] = 99.0
    np.testing.assert_allclose(m.predict_proba(X2), m.predict_proba(X))


# ----------------------------------------------------------------------------- leak-free stacking


class Memoriser(ClassifierMixin, BaseEstimator):
    """Predicts 1 for rows it was trained on and 0 otherwise: any in-sample leak shows up as 1."""

    def fit(self, X, y):
        self.seen_ = set(X.index)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = np.array([1.0 if i in self.seen_ else 0.0 for i in X.index])
        return np.c_[1 - p, p]


class Recorder(ClassifierMixin, BaseEstimator):
    """A meta-classifier that records what it was trained on (then acts like logistic regression)."""

    def fit(self, X, y):
        self.X_seen_ = X.copy()
        self.lr_ = LogisticRegression().fit(X, y)
        self.classes_ = self.lr_.classes_
        return self

    def predict_proba(self, X):
        return self.lr_.predict_proba(X)

    def predict(self, X):
        return self.lr_.predict(X)


def test_out_of_fold_proba_never_predicts_a_row_with_a_model_trained_on_it():
    X, y = blocks_data()
    oof = out_of_fold_proba(Memoriser(), X, y, cv=5, random_state=0)
    assert list(oof.index) == list(X.index)
    assert (oof == 0.0).all()


def test_out_of_fold_proba_matches_a_manual_loop():
    X, y = blocks_data()
    est = make_pre_fusion(["clin"], LogisticRegression())
    oof = out_of_fold_proba(est, X, y, cv=4, random_state=3)
    manual = pd.Series(np.nan, index=X.index)
    for tr, te in StratifiedKFold(4, shuffle=True, random_state=3).split(X, y):
        m = make_pre_fusion(["clin"], LogisticRegression()).fit(X.iloc[tr], y.iloc[tr])
        manual.iloc[te] = m.predict_proba(X.iloc[te])[:, 1]
    pd.testing.assert_series_equal(oof, manual, check_names=False)


def test_post_fusion_meta_is_trained_on_out_of_fold_probabilities():
    X, y = blocks_data()
    post = PostFusionClassifier(
        [("a", Memoriser()), ("b", make_pre_fusion(["rad"], LogisticRegression()))],
        final_estimator=Recorder(),
        cv=5,
        random_state=0,
    ).fit(X, y)
    seen = post.final_estimator_.X_seen_
    assert list(seen.columns) == ["a", "b"]
    # the memoriser's in-sample probability would be 1 everywhere; out-of-fold it is 0 everywhere
    assert (seen["a"] == 0.0).all()
    pd.testing.assert_frame_equal(seen, post.oof_)
    # at prediction time, the bases refitted on all training rows feed the meta-classifier
    mf = post.meta_features(X)
    assert (mf["a"] == 1.0).all()
    assert post.predict_proba(X).shape == (len(X), 2)
    assert set(post.predict(X)) <= {0, 1}


def test_post_fusion_from_fitted_equals_fitting_from_scratch():
    X, y = blocks_data()
    bases = {
        "clin": make_pre_fusion(["clin"], LogisticRegression()),
        "rad": make_pre_fusion(["rad"], LogisticRegression()),
    }
    scratch = PostFusionClassifier(list(bases.items()), LogisticRegression(), cv=5, random_state=1).fit(X, y)
    fitted = {
        k: v.fit(X, y)
        for k, v in {
            k: make_pre_fusion(*a)
            for k, a in {"clin": (["clin"], LogisticRegression()), "rad": (["rad"], LogisticRegression())}.items()
        }.items()
    }
    oof = pd.DataFrame({k: out_of_fold_proba(bases[k], X, y, 5, 1) for k in bases})
    shared = PostFusionClassifier.from_fitted(fitted, oof, y, LogisticRegression(), cv=5, random_state=1)
    np.testing.assert_allclose(shared.predict_proba(X), scratch.predict_proba(X))
    with pytest.raises(KeyError):
        PostFusionClassifier.from_fitted({"dl": fitted["clin"]}, oof, y)


def test_post_fusion_errors():
    X, y = blocks_data(n=40)
    with pytest.raises(ValueError, match="no base"):
        PostFusionClassifier([]).fit(X, y)
    with pytest.raises(ValueError, match="duplicated"):
        PostFusionClassifier([("a", LogisticRegression()), ("a", LogisticRegression())]).fit(X, y)


@pytest.mark.slow
def test_null_labels_give_chance_auc_for_pre_and_post_fusion():
    """Leakage probe: on pure noise with permuted labels, held-out AUC averages ~0.5 for both fusion kinds."""
    aucs = {"pre": [], "post": []}
    for rep in range(16):
        X, y = blocks_data(n=120, seed=100 + rep, null=True)
        y = pd.Series(np.random.default_rng(rep).permutation(y.to_numpy()), index=y.index)
        tr, te = next(StratifiedKFold(3, shuffle=True, random_state=rep).split(X, y))
        sel = [("z", ZScore()), ("t", TTestFilter(alpha=0.2))]
        pre = make_pre_fusion(["clin", "rad", "dl"], LogisticRegression(C=0.1), steps=sel)
        post = PostFusionClassifier(
            [(b, make_pre_fusion([b], LogisticRegression(C=0.1), steps=sel)) for b in ("clin", "rad", "dl")],
            LogisticRegression(),
            cv=3,
            random_state=0,
        )
        for k, m in (("pre", pre), ("post", post)):
            m.fit(X.iloc[tr], y.iloc[tr])
            aucs[k].append(roc_auc_score(y.iloc[te], m.predict_proba(X.iloc[te])[:, 1]))
    for k, v in aucs.items():
        assert abs(np.mean(v) - 0.5) < 0.1, (k, v)


# ----------------------------------------------------------------------------- cut-offs (operating points)


class Marker(ClassifierMixin, BaseEstimator):
    """P = 1 for rows it was trained on, elsewhere a label-free score below 0.9: an in-sample score shows as 1."""

    def fit(self, X, y):
        self.seen_ = set(X.index)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = np.where(X.index.isin(list(self.seen_)), 1.0, 0.9 / (1 + np.exp(-X["clin:size"].to_numpy())))
        return np.c_[1 - p, p]


class CutoffRecorder:
    """A Youden cut-off rule that records the patients and scores it was given."""

    def __init__(self):
        self.seen = []

    def __call__(self, y, score):
        self.seen.append((set(y.index), np.asarray(score, dtype=float)))
        return youden_threshold(y, score)


def marker_family(rule):
    return dict(
        single={"A": Marker(), "B": Marker()},
        pre={"P": Marker()},
        post={"Q": ["A", "B"]},
        final_estimator=LogisticRegression(),
        cv=3,
        random_state=0,
        cutoff=rule,
    )


def test_cutoffs_are_chosen_on_out_of_fold_training_scores():
    X, y = blocks_data(n=90)
    tr, va = X.index[:60], X.index[60:]
    rule = CutoffRecorder()
    fm = fit_fusion_models(X.loc[tr], y.loc[tr], **marker_family(rule))
    # the detector works: every in-sample score of a marker model is 1
    assert (fm.predict_proba(X.loc[tr])[["A", "B", "P"]] == 1.0).all().all()
    assert len(rule.seen) == 4
    for ids, score in rule.seen:
        assert ids == set(tr) and score.max() < 0.95  # training rows only, never an in-sample score
    for n in ("A", "B", "P", "Q"):
        assert fm.thresholds[n] == youden_threshold(y.loc[tr], fm.oof[n])
    # the post-fusion score: its meta refitted on the other folds of the bases' out-of-fold probabilities
    manual = out_of_fold_proba(LogisticRegression(), fm.oof[["A", "B"]], y.loc[tr], 3, 0)
    pd.testing.assert_series_equal(fm.oof["Q"], manual, check_names=False)
    P = fm.predict_proba(X.loc[va])
    pd.testing.assert_frame_equal(fm.predict(X.loc[va]), (P >= fm.thresholds).astype(int))
    with pytest.raises(ValueError, match="without a cutoff"):
        fit_fusion_models(X.loc[tr], y.loc[tr], **marker_family(None)).predict(X.loc[va])


def test_no_score_of_the_evaluated_cohort_chooses_its_cutoff():
    """External cohort: cut-offs from out-of-fold training scores; training cohort: each fold's calls use the
    cut-off its family chose without that fold. Fails if any held-out or in-sample score of the cohort being
    evaluated enters a cut-off."""
    X, y = blocks_data(n=90)
    tr, va = X.index[:60], X.index[60:]
    rule = CutoffRecorder()
    ev = external_validation(X.loc[tr], y.loc[tr], X.loc[va], y.loc[va], cv_folds=3, seed=1, **marker_family(rule))
    assert len(rule.seen) == 4 + 3 * 4  # the full family, then 3 folds x 4 models
    for ids, score in rule.seen:
        assert not ids & set(va), "a validation patient's score chose a cut-off"
        assert score.max() < 0.95, "an in-sample score chose a cut-off"
    fold = ev.cv.fold
    for j in range(3):
        held_out = set(fold.index[fold == j])
        chooser = [ids for ids, _ in rule.seen if ids == set(tr) - held_out]
        assert len(chooser) == 4, j  # fold j's four cut-offs saw every other row
    expected = (ev.proba["training"] >= ev.cv.thresholds.loc[fold.to_numpy()].set_axis(fold.index)).astype(int)
    pd.testing.assert_frame_equal(ev.calls["training"], expected)
    pd.testing.assert_frame_equal(ev.calls["validation"], ev.family.predict(X.loc[va]))
    r = ev.report("P", "validation")
    assert set(r) == {"AUC", "ACC", "SEN", "SPE", "PPV", "NPV"}
    assert r == operating_report(y.loc[va], ev.proba["validation"]["P"], ev.calls["validation"]["P"])
    # the external cohort's labels enter nothing but its own metrics
    flipped = external_validation(
        X.loc[tr], y.loc[tr], X.loc[va], 1 - y.loc[va], cv_folds=3, seed=1, **marker_family(CutoffRecorder())
    )
    pd.testing.assert_series_equal(flipped.family.thresholds, ev.family.thresholds)
    pd.testing.assert_frame_equal(flipped.calls["validation"], ev.calls["validation"])
    with pytest.raises(ValueError, match="cutoff"):
        cross_validate_fusion(X, y, 3, **marker_family(None))


def test_permute_within_keeps_each_cohorts_positives():
    X, y = blocks_data(n=90)
    groups = pd.Series(np.where(np.arange(90) < 60, "training", "validation"), index=X.index)
    a, b = permute_within(y, groups, seed=3), permute_within(y, groups, seed=3)
    pd.testing.assert_series_equal(a, b)
    assert not a.equals(y)
    assert a.groupby(groups).sum().to_dict() == y.groupby(groups).sum().to_dict()
    with pytest.raises(ValueError, match="no group"):
        permute_within(y, groups.iloc[:80], seed=0)


# ----------------------------------------------------------------------------- the family


def test_fit_fusion_models_shares_single_models_and_checks_names():
    X, y = blocks_data()
    single = {"C": make_pre_fusion(["clin"], LogisticRegression()), "R": make_pre_fusion(["rad"], LogisticRegression())}
    fm = fit_fusion_models(
        X,
        y,
        single=single,
        pre={"P": make_pre_fusion(["clin", "rad"], LogisticRegression())},
        post={"Q": ["C", "R"]},
        final_estimator=LogisticRegression(),
        cv=3,
        random_state=0,
    )
    assert fm.names() == ["C", "R", "P", "Q"] and fm.names("post") == ["Q"]
    assert fm.models["Q"].estimators_["C"] is fm.models["C"]
    assert list(fm.oof.columns) == ["C", "R"]
    P = fm.predict_proba(X)
    assert list(P.columns) == ["C", "R", "P", "Q"] and ((P >= 0) & (P <= 1)).all().all()
    with pytest.raises(KeyError, match="not single models"):
        fit_fusion_models(X, y, single=single, post={"Q": ["C", "Z"]})
    with pytest.raises(ValueError, match="unique"):
        fit_fusion_models(X, y, single=single, pre={"C": single["C"]})


def test_crdl_family_fits_all_nine_models_with_icc_subset():
    X, y = blocks_data(n=120)
    rng = np.random.default_rng(5)
    ids = X.index[:40]
    pert = X.loc[ids].copy()
    noisy = [c for c in X if c.startswith(("rad:r1", "dl:d1"))]  # these become unreproducible
    pert[noisy] = rng.normal(size=(len(ids), len(noisy)))
    pert[[c for c in X if c not in noisy]] += rng.normal(scale=0.05, size=(len(ids), X.shape[1] - len(noisy)))
    icc = {"rad": [pert.filter(like="rad:")], "dl": [pert.filter(like="dl:")]}
    clf = make_classifier("svm", seed=0, gamma="auto")
    names = {k: k.upper() for k in CRDL_MODELS}
    single, pre, post, meta = crdl_models(clf, icc_tables=icc, lasso_cv=3, lasso_Cs=5, names=names)
    assert list(single) == ["CLINICAL", "RADIOMICS", "DL"]
    assert list(pre) == ["PRE_CLIN_RAD", "PRE_CLIN_DL", "PRE_CRDL"]
    assert post["POST_CRDL"] == ["CLINICAL", "RADIOMICS", "DL"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm = fit_fusion_models(X, y, single=single, pre=pre, post=post, final_estimator=meta, cv=3, random_state=0)
    P = fm.predict_proba(X)
    assert P.shape == (120, 9)
    assert roc_auc_score(y, P["PRE_CRDL"]) > 0.8
    rad_step = fm.models["RADIOMICS"].named_steps["fusion"].steps_["rad"].named_steps["icc"]
    assert "rad:r1" not in rad_step.selected_features_ and "rad:r0" in rad_step.selected_features_
    assert "rad:r10" not in rad_step.selected_features_  # also matched by the 'rad:r1' prefix: unreproducible
    assert len(rad_step.icc_rows_) == 40
    # a subset of the family pulls in the single models its post-fusion needs
    s2, p2, q2, _ = crdl_models(clf, keys=["post_clin_dl"])
    assert list(s2) == ["clinical", "dl"] and not p2 and q2 == {"post_clin_dl": ["clinical", "dl"]}
    with pytest.raises(KeyError):
        crdl_models(clf, keys=["nope"])


def test_fallbacks_taken_names_the_silent_fallbacks():
    """Pure noise with an impossible t-test level and unreproducible image features: every fallback shows."""
    X, y = blocks_data(n=80, null=True)
    rng = np.random.default_rng(1)
    ids = X.index[:30]
    icc = {
        b: [
            pd.DataFrame(
                rng.normal(size=(30, X.filter(like=f"{b}:").shape[1])),
                index=ids,
                columns=X.filter(like=f"{b}:").columns,
            )
        ]
        for b in ("rad", "dl")
    }
    single, pre, post, meta = crdl_models(
        LogisticRegression(), icc_tables=icc, ttest_alpha=1e-12, lasso_cv=3, lasso_Cs=3, keys=["radiomics", "clinical"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm = fit_fusion_models(X, y, single=single, pre=pre, post=post, final_estimator=meta, cv=3, random_state=0)
    taken = fallbacks_taken(fm)
    assert taken["clinical"] == []
    text = " | ".join(taken["radiomics"])
    assert "ICC filter (rad)" in text and "t-test" in text, text
    # a real signal and reproducible features: nothing to report
    X2, y2 = blocks_data(n=120)
    s2, p2, q2, m2 = crdl_models(LogisticRegression(), lasso_cv=3, lasso_Cs=5, keys=["radiomics"])
    fm2 = fit_fusion_models(X2, y2, single=s2, pre=p2, post=q2, final_estimator=m2, cv=3, random_state=0)
    assert fallbacks_taken(fm2) == {"radiomics": []}


def test_subset_icc_filter_needs_enough_rows():
    X, _ = blocks_data(n=30)
    with pytest.raises(ValueError, match="only 3"):
        SubsetICCFilter([X.iloc[:3]], min_rows=5).fit(X)


def test_tune_then_refit_matches_grid_search_and_gives_probabilities():
    X, y = blocks_data(n=100)
    Xc = X.filter(like="clin:")
    grid = {"clf__C": [0.1, 1.0, 10.0], "clf__gamma": ["scale", "auto"]}
    search = make_classifier("svm", tune=True, cv=3, seed=0, grid=grid, probability=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        t = TuneThenRefit(search, {"clf__probability": True}).fit(Xc, y)
        ref = make_classifier("svm", tune=True, cv=3, seed=0, grid=grid, probability=False).fit(Xc, y)
    assert t.best_params_ == ref.best_params_
    assert t.best_estimator_.named_steps["clf"].probability is True
    p = t.predict_proba(Xc)
    assert p.shape == (100, 2) and np.allclose(p.sum(1), 1)


# ----------------------------------------------------------------------------- semantic stand-ins


def _png(path, arr):
    from PIL import Image

    Image.fromarray(arr).save(path)
    return path


def test_ultrasound_semantics_measures_shape_margin_and_echo(tmp_path):
    from scipy import ndimage

    from replicate.data.cohort import Case

    yy, xx = np.mgrid[:80, :80]
    disc = (yy - 40) ** 2 + (xx - 40) ** 2 <= 20**2
    star = disc & ((np.arctan2(yy - 40, xx - 40) * 5 % (2 * np.pi)) < np.pi) | (
        (yy - 40) ** 2 + (xx - 40) ** 2 <= 10**2
    )
    rng = np.random.default_rng(0)
    sharp = np.where(disc, 60, 160).astype(float)
    blurred = ndimage.gaussian_filter(sharp, 6)
    het = sharp + np.where(disc, rng.normal(0, 25, disc.shape), 0)
    cases = []
    for name, img, m in (("sharp", sharp, disc), ("blurred", blurred, disc), ("het", het, disc), ("star", sharp, star)):
        cases.append(
            Case(
                name,
                _png(tmp_path / f"{name}.png", np.clip(img, 0, 255).astype(np.uint8)),
                _png(tmp_path / f"{name}_m.png", (m * 255).astype(np.uint8)),
            )
        )
    cases.append(Case("empty", cases[0].image, _png(tmp_path / "empty_m.png", np.zeros((80, 80), np.uint8))))
    cases.append(Case("small", cases[0].image, _png(tmp_path / "small_m.png", np.zeros((40, 40), np.uint8))))
    cases.append(Case("missing", tmp_path / "nope.png", cases[0].mask))
    tab, fails = ultrasound_semantics(cases, cache_dir=tmp_path / "cache")
    assert list(tab.columns) == ["size", "morphology", "boundary", "internal_echo"]
    assert sorted(fails["case_id"]) == ["empty", "missing", "small"]
    assert fails.set_index("case_id").loc["empty", "reason"].startswith("EmptyMask")
    assert fails.set_index("case_id").loc["small", "reason"].startswith("GeometryMismatch")
    assert abs(tab.loc["sharp", "size"] - 41) < 2.5  # Feret diameter of a radius-20 disc
    assert tab.loc["sharp", "morphology"] < 0.05 < tab.loc["star", "morphology"]
    assert tab.loc["sharp", "boundary"] > 2 * tab.loc["blurred", "boundary"]
    assert tab.loc["het", "internal_echo"] > 0.2 > tab.loc["sharp", "internal_echo"]
    # second call: read from the cache (one JSON per measured case), same numbers, same failures
    assert len(list((tmp_path / "cache" / "semantic").glob("*.json"))) == 4
    tab2, fails2 = ultrasound_semantics(cases, cache_dir=tmp_path / "cache", n_jobs=2)
    pd.testing.assert_frame_equal(tab, tab2)
    assert sorted(fails2["case_id"]) == ["empty", "missing", "small"]
