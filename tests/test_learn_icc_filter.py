"""ICCFilter: keeps reproducible features, computed through replicate.features.icc on training patients only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from replicate.features.icc import icc
from replicate.learn import ICCFilter


def _tables(n=50, seed=0):
    """Features f0..f5 with increasing perturbation noise: f0-f2 reproducible, f3-f5 not."""
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    cols = [f"f{j}" for j in range(6)]
    X = pd.DataFrame(rng.normal(size=(n, 6)), index=idx, columns=cols)
    noise = np.array([0.05, 0.2, 0.3, 1.5, 2.0, 3.0])
    pert = [X + rng.normal(size=X.shape) * noise for _ in range(2)]
    # the perturbed tables hold more patients than X, in another order
    extra = pd.DataFrame(rng.normal(size=(5, 6)), index=[f"Z{i}" for i in range(5)], columns=cols)
    pert = [pd.concat([p, extra]).sample(frac=1.0, random_state=k) for k, p in enumerate(pert)]
    return X, pert


def test_keeps_columns_with_icc_above_threshold():
    X, pert = _tables()
    f = ICCFilter(perturbed=pert, threshold=0.75).fit(X)
    expected = icc(X, [p.loc[X.index] for p in pert], kind="ICC(3,1)")
    pd.testing.assert_series_equal(f.icc_, expected.astype(float), check_names=False)
    assert f.selected_features_ == [c for c in X.columns if expected[c] > 0.75]
    assert f.selected_features_ == ["f0", "f1", "f2"]
    out = f.transform(X)
    assert list(out.columns) == ["f0", "f1", "f2"] and out.index.equals(X.index)


@pytest.mark.parametrize("kind", ["ICC(1,1)", "ICC(2,1)", "ICC(3,1)"])
def test_kind_is_passed_to_icc(kind):
    X, pert = _tables(seed=2)
    f = ICCFilter(perturbed=pert, kind=kind, threshold=0.5).fit(X)
    expected = icc(X, [p.loc[X.index] for p in pert], kind=kind)
    np.testing.assert_allclose(f.icc_.to_numpy(), expected.to_numpy(dtype=float))


def test_uses_training_patients_only():
    X, pert = _tables()
    train = X.index[:30]
    f = ICCFilter(perturbed=pert).fit(X.loc[train])
    expected = icc(X.loc[train], [p.loc[train] for p in pert])
    np.testing.assert_allclose(f.icc_.to_numpy(), expected.to_numpy(dtype=float))
    # corrupting the test patients' perturbed rows changes nothing
    bad = [p.copy() for p in pert]
    for b in bad:
        b.loc[X.index[30:]] = 1e6
    g = ICCFilter(perturbed=bad).fit(X.loc[train])
    pd.testing.assert_series_equal(f.icc_, g.icc_)
    # and transforming test rows needs no perturbed rows at all
    assert list(g.transform(X.loc[X.index[30:]]).columns) == f.selected_features_


def test_missing_patient_or_column_is_a_clear_error():
    X, pert = _tables()
    with pytest.raises(KeyError, match="no row in perturbed table"):
        ICCFilter(perturbed=[p.drop(index=X.index[0]) for p in pert]).fit(X)
    with pytest.raises(KeyError, match="lacks"):
        ICCFilter(perturbed=[p.drop(columns="f1") for p in pert]).fit(X)
    with pytest.raises(ValueError, match="no perturbed"):
        ICCFilter().fit(X)


def test_nothing_passes_keeps_the_best_with_warning():
    X, pert = _tables()
    with pytest.warns(UserWarning, match="keeping the 1 most reproducible"):
        f = ICCFilter(perturbed=pert, threshold=0.999).fit(X)
    assert f.selected_features_ == ["f0"]
    with pytest.raises(ValueError, match="no feature"):
        ICCFilter(perturbed=pert, threshold=0.999, min_features=0).fit(X)


def test_single_dataframe_accepted():
    X, pert = _tables()
    a = ICCFilter(perturbed=pert[0]).fit(X)
    b = ICCFilter(perturbed=[pert[0]]).fit(X)
    pd.testing.assert_series_equal(a.icc_, b.icc_)
