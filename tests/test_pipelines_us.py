"""The ``us`` chapter's step functions (replicate.pipelines.us) that have logic of their own: the data and
protocol branching, the null-label outcome and the deviations a run records. The whole chapter runs in
tests/test_notebooks.py."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import replicate.chapter
from replicate.pipelines import us


def _ctx(tmp_path, **kw):
    kw = {"data": "synthetic", "profile": "quick", **kw}
    return replicate.chapter.start("us", output_dir=tmp_path / "run", **kw)


def _table(n_tr=40, n_va=20, seed=0):
    rng = np.random.default_rng(seed)
    split = ["training"] * n_tr + ["validation"] * n_va
    y = np.r_[rng.permutation([0, 1] * (n_tr // 2)), rng.permutation([0] * (n_va - 5) + [1] * 5)]
    return pd.DataFrame({"split": split, "malignant": y}, index=[f"p{i:03d}" for i in range(n_tr + n_va)])


def test_outcome_is_the_label_unless_null_labels_which_permutes_within_each_cohort(tmp_path):
    table = _table()
    ok = list(table.index[1:])  # one patient without features is not in the outcome
    y = us.outcome(_ctx(tmp_path), table, "malignant", ok)
    assert list(y.index) == ok and (y == table.loc[ok, "malignant"]).all()

    ctx = _ctx(tmp_path, null_labels=True)
    y0 = us.outcome(ctx, table, "malignant", ok)
    assert list(y0.index) == ok and not (y0 == y).all()
    for split in ("training", "validation"):  # each cohort keeps its number of positives
        ids = [i for i in ok if table.at[i, "split"] == split]
        assert y0[ids].sum() == y[ids].sum()
    assert (us.outcome(ctx, table, "malignant", ok) == y0).all()  # seeded


def test_split_ids_and_class_counts():
    table = _table()
    tr, va = us.split_ids(table, list(table.index[::2]))
    assert len(tr) == 20 and len(va) == 10 and set(tr).isdisjoint(va)
    assert all(table.at[i, "split"] == "training" for i in tr)
    counts = us.class_counts(table, "malignant")
    assert counts.loc["validation", "malignant"] == 5 and counts.loc["training", "benign"] == 20


def test_the_proxy_gap_is_a_deviation_on_the_public_data_only(tmp_path):
    table = _table()
    for data, n_dev in (("public", None), ("synthetic", 0)):
        ctx = _ctx(tmp_path, data=data)
        gap = us.proxy_gap(ctx, table, "malignant")
        assert gap.loc["training cohort", "this run"] == "40 (20 malignant)"
        assert gap.loc["external validation", "paper"].startswith(str(ctx.spec.cohorts["validation"]["n"]))
        expected = len(ctx.spec.proxy["gap"]) if n_dev is None else n_dev
        assert len(ctx.results.deviations) == expected
        assert all(d.startswith("Proxy gap: ") for d in ctx.results.deviations)


def test_each_protocol_runs_only_its_own_steps(tmp_path, capsys):
    X = pd.DataFrame({"clin:a": np.arange(8.0)})
    y = pd.Series([0, 1] * 4, index=X.index)
    paper = _ctx(tmp_path, protocol="paper")
    assert us.worc_protocol(paper, X, y, list(X.index), {}, []) is None
    worc = _ctx(tmp_path, protocol="worc")
    assert us.fit_paper(worc, X, y, list(X.index[:6]), list(X.index[6:]), {}) is None
    for step in (us.selection_table(None, {}), us.operating_reports(worc.results, None, []),
                 us.delong_table(worc, None, {}), us.claims_checked(worc.results, None, {}, {}, [])):  # fmt: skip
        assert step is None
    assert us.radiologist(worc, None, None, y, [], [], crdl="Pre-FM CRDL") is None
    assert "No radiologist reading" in capsys.readouterr().out
    assert worc.results.metrics == [] and worc.results.comparisons == []


def _inputs():
    return SimpleNamespace(
        rad=SimpleNamespace(n_features=474),
        dl=SimpleNamespace(n_features=512, info={"weights": "untrained (random init, seed 0)"}),
        icc_ids=list(range(12)),
    )


@pytest.mark.parametrize("data", ["public", "synthetic"])
def test_record_deviations_lists_the_runs_own_departures(tmp_path, data):
    ctx = _ctx(tmp_path, data=data, null_labels=True)
    pf = SimpleNamespace(fallbacks={"Radiomics": ["t-test: no feature with p < alpha, the smallest p kept"]})
    dev = us.record_deviations(ctx, _inputs(), pf)
    assert dev == list(ctx.results.deviations)
    assert any(d.startswith("Radiomics: PyRadiomics on a 2-D ROI gives 474 features") for d in dev)
    assert any("on 12 random training patients" in d for d in dev)
    assert "Fallback taken in this run by Radiomics (final model): t-test" in " ".join(dev)
    assert any(d.startswith("null_labels=True") for d in dev)
    assert any(d.startswith("Quick profile:") for d in dev)
    assert any(d.startswith("Synthetic twin:") for d in dev) == (data == "synthetic")
    assert any(d.startswith("Radiologist comparison: the BI-RADS") for d in dev) == (data == "public")
    quiet = us.record_deviations(_ctx(tmp_path, data=data, profile="full"), _inputs(), None)
    assert not any(d.startswith(("Fallback taken", "null_labels", "Quick profile")) for d in quiet)


def test_the_svm_deviation_says_whether_the_profile_tunes(tmp_path):
    design = _ctx(tmp_path).spec.design
    tuned = us._svm_deviation(design, {"svm_tune": True, "svm_grid": {"C": [1, 10]}, "svm_cv_folds": 5})
    assert "C in [1, 10] by 5-fold CV" in tuned and "NOT tuned" not in tuned
    assert "NOT tuned in this profile" in us._svm_deviation(design, {"svm_tune": False})


def test_figure_groups_follow_the_papers_figures(tmp_path):
    name, kind = us.model_kinds(_ctx(tmp_path).spec.design)
    models = list(kind)
    groups = us.figure_groups(name, kind, models)
    assert groups["pre-fusion"][0] == name["clinical"]
    assert {kind[m] for m in groups["pre-fusion"][1:]} == {"pre"}
    assert {kind[m] for m in groups["single and post-fusion"]} == {"single", "post"}
    assert len(groups["pre-fusion"]) + len(groups["single and post-fusion"]) == len(models) + 1


def test_timed_records_seconds():
    timings = {}
    with us.timed(timings, "step_s"):
        pass
    assert timings["step_s"] == 0.0
