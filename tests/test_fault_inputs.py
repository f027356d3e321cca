"""Bad inputs outside feature extraction give clear errors that name the problem (and the patients)."""

import numpy as np
import pandas as pd
import pytest

from replicate.clinical import ClinicalLogit, univariate_multivariate
from replicate.models import make_classifier
from replicate.stats import auc_ci, delong_test
from replicate.validation import random_splits, repeated_cv_predict

RNG = np.random.default_rng(0)
IDS = [f"P{i:02d}" for i in range(20)]


def test_one_class_outcome_is_refused_everywhere():
    y = pd.Series(np.ones(20, int), index=IDS)
    X = pd.DataFrame(RNG.random((20, 3)), index=IDS)
    with pytest.raises(ValueError, match="both classes"):
        auc_ci(y, RNG.random(20))
    with pytest.raises(ValueError, match="2 classes"):
        repeated_cv_predict(lambda: make_classifier("lr"), X, y, n_splits=3, n_repeats=1, progress=False)
    with pytest.raises(ValueError, match="2 classes"):
        ClinicalLogit(["a"]).fit(pd.DataFrame({"a": RNG.random(20)}, index=IDS), y)
    with pytest.raises(ValueError, match="2 classes"):
        random_splits(y, n_splits=5)
    with pytest.raises(ValueError):
        delong_test(y, RNG.random(20), RNG.random(20))


def test_missing_clinical_values_name_the_patients():
    df = pd.DataFrame({"age": RNG.random(20), "grade": RNG.random(20)}, index=IDS)
    df.loc["P07", "grade"] = np.nan
    y = pd.Series([0, 1] * 10, index=IDS)
    with pytest.raises(ValueError, match=r"grade missing for \['P07'\]"):
        univariate_multivariate(df, y, ["age", "grade"])
    with pytest.raises(ValueError, match="P07"):
        ClinicalLogit(["age", "grade"]).fit(df, y)
    y2 = y.astype(float)
    y2["P03"] = np.nan
    with pytest.raises(ValueError, match=r"outcome for \['P03'\]"):
        univariate_multivariate(df.fillna(0), y2, ["age"])


def test_non_finite_features_are_refused_by_the_models():
    X = pd.DataFrame(RNG.random((20, 3)), index=IDS)
    X.iloc[4, 1] = np.inf
    y = pd.Series([0, 1] * 10, index=IDS)
    with pytest.raises(ValueError, match="(?i)NaN|infinity|finite"):
        make_classifier("lr").fit(X, y)
