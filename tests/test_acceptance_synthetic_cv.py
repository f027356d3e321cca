"""Foundation acceptance: synthetic images -> PyRadiomics -> a leak-free cross-validated model.

Effect size 0 must give an uninformative cohort (mean out-of-fold AUC 0.5 +- 0.1) and a strong
effect a clearly separable one (> 0.8). Everything learned (scaling, feature selection, the
classifier) is refitted inside every training fold.
"""

from __future__ import annotations

import pytest
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from replicate.data.synthetic import make_cohort
from replicate.features.radiomics import extract_radiomics
from replicate.learn import DropConstant, ZScore
from replicate.validation import repeated_cv_predict

DESIGN = {
    "kind": "volume",
    "outcome": "label",
    "modalities": ["T1"],
    "tumour_style": "sarcoma",
    "geometry": {"shape": [40, 40, 12], "spacing": [1.5, 1.5, 4.0]},
    "cohorts": [{"split": "training", "centre": "A", "n": 80, "n_positive": 40}],
    "clinical": [{"name": "age", "type": "normal", "mean": [55, 55], "sd": [12, 12]}],
}
PARAMS = {
    "setting": {"binWidth": 25, "label": 1},
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": [], "shape": [], "glcm": []},
}


def model():
    return make_pipeline(DropConstant(), ZScore(), SelectKBest(f_classif, k=10), LogisticRegression(max_iter=2000))


@pytest.mark.slow
@pytest.mark.parametrize("effect, check", [(0.0, lambda auc: abs(auc - 0.5) <= 0.1), (2.0, lambda auc: auc > 0.8)])
def test_effect_size_controls_cross_validated_auc(effect, check, tmp_path):
    cohort = make_cohort(DESIGN, seed=7, effect_size=effect, cache_dir=tmp_path / "syn")
    ft = extract_radiomics(cohort.cases("T1"), PARAMS, n_jobs=1, cache_dir=tmp_path / "feat", progress=False)
    assert ft.failures.empty and len(ft.features) == 80
    X = ft.features.loc[cohort.table.index]
    cv = repeated_cv_predict(model, X, cohort.y, n_splits=5, n_repeats=5, seed=0, progress=False)
    assert check(cv.auc_mean), f"effect {effect}: mean out-of-fold AUC {cv.auc_mean:.3f}"
