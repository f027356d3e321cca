"""Vectorised ICC against pingouin.intraclass_corr, constant columns, missing values."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
import pytest

from replicate.features import icc
from replicate.features.icc import ALL_KINDS

# pingouin 0.7 labels the forms with McGraw & Wong's names
PG_NAME = {
    "ICC(1,1)": "ICC(1,1)",
    "ICC(2,1)": "ICC(A,1)",
    "ICC(3,1)": "ICC(C,1)",
    "ICC(1,k)": "ICC(1,k)",
    "ICC(2,k)": "ICC(A,k)",
    "ICC(3,k)": "ICC(C,k)",
}


def _raters(n=30, p=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"P{i:02d}" for i in range(n)], name="patient_id")
    cols = [f"f{j}" for j in range(p)]
    truth = rng.normal(0, 1, (n, p)) * np.arange(1, p + 1)
    noise_sd = np.linspace(0.1, 3, p)
    bias = rng.normal(0, 0.5, (k, p))
    tables = [
        pd.DataFrame(truth + bias[r] + rng.normal(0, 1, (n, p)) * noise_sd, index=idx, columns=cols) for r in range(k)
    ]
    return tables[0], tables[1:]


def _pingouin(ref, others, col):
    long = pd.concat(
        [
            pd.DataFrame({"subject": t.index, "rater": r, "value": t[col].to_numpy()})
            for r, t in enumerate([ref, *others])
        ],
        ignore_index=True,
    )
    res = pg.intraclass_corr(long, targets="subject", raters="rater", ratings="value", nan_policy="omit")
    return res.set_index("Type")["ICC"]


@pytest.mark.parametrize("k", [2, 3, 4])
def test_matches_pingouin_all_forms(k):
    ref, others = _raters(k=k, seed=k)
    table = icc(ref, others, kind="all")
    assert list(table.columns) == list(ALL_KINDS)
    for col in ["f0", "f2", "f4"]:
        expected = _pingouin(ref, others, col)
        for kind in ALL_KINDS:
            assert table.loc[col, kind] == pytest.approx(expected[PG_NAME[kind]], abs=1e-10), (col, kind)


def test_single_form_series_and_aliases():
    ref, others = _raters()
    s = icc(ref, others)  # default ICC(3,1)
    assert isinstance(s, pd.Series) and s.name == "ICC(3,1)" and list(s.index) == list(ref.columns)
    pd.testing.assert_series_equal(s, icc(ref, others, kind="ICC3"), check_names=False)
    pd.testing.assert_series_equal(
        icc(ref, others, kind="ICC(2,1)"), icc(ref, others, kind="icc(a,1)"), check_names=False
    )
    with pytest.raises(ValueError, match="unknown ICC kind"):
        icc(ref, others, kind="ICC(4,1)")
    # the first column is the noisiest-but-smallest-signal one: reliability increases with signal/noise
    assert s["f0"] > s["f4"]
    assert s.attrs["n_subjects"] == 30 and s.attrs["n_raters"] == 3


def test_rows_matched_on_index_and_columns_on_name():
    ref, others = _raters(k=2)
    shuffled = others[0].sample(frac=1.0, random_state=1)[list(reversed(ref.columns))]
    pd.testing.assert_series_equal(icc(ref, others), icc(ref, [shuffled]))
    with pytest.raises(KeyError, match="lacks"):
        icc(ref, [others[0].drop(columns="f1")])


def test_constant_column_is_nan_with_note():
    ref, others = _raters(k=2)
    ref = ref.assign(const=5.0)
    others = [o.assign(const=5.0) for o in others]
    with pytest.warns(UserWarning, match="constant"):
        s = icc(ref, others)
    assert np.isnan(s["const"])
    assert "constant" in s.attrs["notes"]["const"]
    assert np.isfinite(s.drop("const")).all()


def test_missing_values_drop_subject_for_that_feature_only():
    ref, others = _raters(k=3, seed=4)
    ref = ref.copy()
    ref.iloc[3, 1] = np.nan
    others[1].iloc[7, 1] = np.inf
    s = icc(ref, others, kind="all")
    keep = [i for i in range(len(ref)) if i not in (3, 7)]
    sub_ref, sub_others = ref.iloc[keep], [o.iloc[keep] for o in others]
    exp = _pingouin(sub_ref, sub_others, "f1")
    for kind in ALL_KINDS:
        assert s.loc["f1", kind] == pytest.approx(exp[PG_NAME[kind]], abs=1e-10)
    exp0 = _pingouin(ref, others, "f0")  # f0 is complete: all 30 subjects count
    assert s.loc["f0", "ICC(3,1)"] == pytest.approx(exp0["ICC(C,1)"], abs=1e-10)


def test_vectorised_is_fast_on_many_columns():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(rng.normal(size=(100, 2000)))
    others = [ref + rng.normal(scale=0.3, size=ref.shape) for _ in range(2)]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = icc(ref, others)
    assert time.perf_counter() - t0 < 2.0
    assert s.between(0.8, 1.0).all()
