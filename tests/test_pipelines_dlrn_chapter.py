"""The steps the two DLRN chapters share (replicate.pipelines.dlrn_chapter): the texts of the gap table, where a
cohort's risk comes from, and the guard that keeps the fitted-model steps to protocol 'paper'."""

import pandas as pd
import pytest

import replicate.chapter
from replicate.pipelines import dlrn_chapter as dc
from replicate.pipelines.sts import STSChapter

COUNTS = {"worc_splits": 100, "cv_repeats": 5, "cv_folds": 3}


def test_split_and_centre_texts():
    twin = pd.DataFrame({"split": ["training"] * 3 + ["validation"] * 2, "centre": ["B", "A", "A", "B", "B"]})
    assert dc.split_text(twin) == " (3 training + 2 external)"
    assert dc.centres_text(twin) == "A: 2, B: 3"  # sorted by centre
    one = pd.DataFrame({"x": range(4)})
    assert dc.split_text(one) == ""
    assert dc.centres_text(one) == "TCIA (one collection): 4"


@pytest.mark.parametrize(
    ("data", "protocol", "expected"),
    [
        ("synthetic", "paper", "the twin's external centre"),
        ("public", "paper", "5×3-fold stratified CV (out-of-fold)"),
        ("public", "worc", "100 random stratified 80/20 splits"),
        ("synthetic", "worc", "100 random stratified 80/20 splits"),
    ],
)
def test_validation_text(data, protocol, expected):
    assert dc.validation_text(data, protocol, COUNTS, "the twin's external centre") == expected


def test_risk_source():
    assert dc.risk_source("validation", cross_validated=False) == "validation"
    assert dc.risk_source("training", cross_validated=True).startswith("apparent")
    assert dc.risk_source("validation", cross_validated=True) == "out-of-fold (repeat-averaged)"


@pytest.mark.parametrize("protocol", ["paper", "worc"])
def test_chapter_model_settings_follow_the_protocol(protocol, tmp_path):
    ctx = replicate.chapter.start("sts", data="synthetic", profile="quick", protocol=protocol, output_dir=tmp_path)
    ch = STSChapter(ctx)
    kwargs = ch.model_kwargs("chosen")
    assert kwargs["heads"] == "chosen"
    # the Youden cut-off (inner CV) is learned only where Table 3 is shown
    assert kwargs["cutoff_folds"] == (ctx.counts["cutoff_folds"] if protocol == "paper" else None)
    assert ch.models == ["DLRN", ch.cfg.chosen_name, "Clinical"]


def test_fitted_model_steps_say_why_they_do_not_run_without_a_fit(tmp_path, capsys):
    ctx = replicate.chapter.start("sts", data="synthetic", profile="quick", protocol="worc", output_dir=tmp_path)
    ch = STSChapter(ctx)
    assert ch.table3() is None and ch.nomogram() is None
    assert "not under protocol='worc'" in capsys.readouterr().out
    ch.fitted = object()  # once fitted, the step runs (and here fails on the stand-in)
    with pytest.raises(AttributeError):
        ch.nomogram()


def test_fit_infos_by_protocol(tmp_path):
    ctx = replicate.chapter.start("sts", data="synthetic", profile="quick", protocol="worc", output_dir=tmp_path)
    ch = STSChapter(ctx)
    ch.split_infos = [{"split": 1}]
    assert ch.fit_infos() == [{"split": 1}]
    ch.protocol = "paper"

    class Fit:
        info_ = {"apparent": True}

    class CV:
        fold_info = [{"info": {"fold": 0}}, {"info": {"fold": 1}}]

    ch.fitted, ch.cv = Fit(), CV()
    assert ch.fit_infos() == [{"fold": 0}, {"fold": 1}, {"apparent": True}]
