"""Chapter rls's own steps (replicate.pipelines.rls): the LASSO heads as the paper's signatures, and feature names
printed the way the paper prints its DLR-score."""

import pandas as pd

import replicate.chapter
from replicate.pipelines.rls import MODELS, RLSChapter, paper_name, rename_heads


def test_rename_heads():
    s = pd.DataFrame({"DLRN": [0.1], "DLRS": [0.2], "DLRS LASSO": [0.2], "RS LASSO": [0.3], "Clinical": [0.4]})
    out = rename_heads(s)
    assert list(out.columns) == ["DLRN", "DLRS", "RS", "Clinical"]
    assert out.loc[0, "RS"] == 0.3


def test_paper_name():
    deep = ["A_dl_penultimate_7", "V_dl_penultimate_3"]
    prefix = {"arterial": "A", "venous": "V"}
    assert paper_name("V_dl_penultimate_3", deep, prefix) == "X2"  # 1-based position among all phases' deep columns
    assert paper_name("venous_hcr_original_glcm_Contrast", deep, prefix) == "V_original_glcm_Contrast"
    assert paper_name("CT_hcr_original_shape_Sphericity", deep, prefix) == "CT_original_shape_Sphericity"


def test_worc_tables_keep_table3s_models(tmp_path):
    ctx = replicate.chapter.start("rls", data="synthetic", profile="quick", protocol="worc", output_dir=tmp_path)
    ch = RLSChapter(ctx)
    rows = [
        {"split": k, "model": m, "AUC": 0.6 + 0.01 * k, "n_train": 40, "n_test": 11}
        for k in range(4)
        for m in ["Clinical", "RS LASSO", "DLRS LASSO", "DLRS", "DLRN"]
    ]
    shown, recorded = ch.worc_tables(pd.DataFrame(rows))
    assert list(recorded.index) == MODELS  # Table 3's order; the RS is the RS LASSO head, DLRS LASSO dropped
    assert (recorded["n_splits"] == 4).all()
