"""Chapter sts's own steps (replicate.pipelines.sts): the chosen head is not counted twice."""

import pandas as pd

import replicate.chapter
from replicate.pipelines.sts import STSChapter


def _split_aucs(models):
    return pd.DataFrame(
        [
            {"split": k, "model": m, "AUC": 0.5 + 0.01 * k + 0.1 * i, "n_train": 40, "n_test": 11}
            for k in range(5)
            for i, m in enumerate(models)
        ]
    )


def test_worc_tables_show_the_chosen_head_but_do_not_record_it_twice(tmp_path):
    ctx = replicate.chapter.start("sts", data="synthetic", profile="quick", protocol="worc", output_dir=tmp_path)
    ch = STSChapter(ctx)
    chosen = ch.cfg.chosen_model
    shown, recorded = ch.worc_tables(_split_aucs(["DLRN", chosen, "Radiomics", "Clinical"]))
    assert chosen in shown.index and chosen not in recorded.index
    assert list(recorded.index) == ["DLRN", "Radiomics", "Clinical"]
    assert recorded.loc["Clinical", "mean_AUC"] > recorded.loc["DLRN", "mean_AUC"]


def test_cv_models_leave_out_the_chosen_head(tmp_path):
    ctx = replicate.chapter.start("sts", data="public", profile="quick", output_dir=tmp_path)
    ch = STSChapter(ctx)

    class CV:
        models = ["DLRN", "Radiomics", ch.cfg.chosen_model, "HCR LR"]

    ch.cv = CV()
    models, rename = ch.cv_models()
    assert models == ["DLRN", "Radiomics", "HCR LR"] and rename is None
