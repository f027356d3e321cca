"""ComBat against neuroCombat applied directly; training estimates applied to new rows; edge cases."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest
from neuroCombat import neuroCombat

from replicate.learn import ComBat


def _batched(n=90, p=6, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    batch = pd.Series(np.array(["siemens", "ge", "philips"])[np.arange(n) % 3], index=idx, name="scanner")
    shift = {"siemens": 0.0, "ge": 2.0, "philips": -1.5}
    scale = {"siemens": 1.0, "ge": 2.5, "philips": 0.6}
    base = rng.normal(size=(n, p)) * np.arange(1, p + 1) + 10
    a = np.array([base[i] * scale[b] + shift[b] * (1 + np.arange(p)) for i, b in enumerate(batch)])
    return pd.DataFrame(a, index=idx, columns=[f"f{j}" for j in range(p)]), batch


def _direct(X, batch, **kw):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = neuroCombat(
            dat=X.to_numpy().T, covars=pd.DataFrame({"batch": batch.loc[X.index].to_numpy()}), batch_col="batch", **kw
        )
    return out["data"].T


@pytest.mark.parametrize(
    "kw", [dict(), dict(parametric=False), dict(eb=False)], ids=["parametric", "nonparam", "no-eb"]
)
def test_matches_neurocombat_on_training_data(kw):
    X, batch = _batched(seed=1)
    cb = ComBat(batch=batch, **kw).fit(X)
    ref = _direct(X, batch, **kw)
    assert np.isfinite(ref).all()
    # transforming the training rows with the training estimates reproduces neuroCombat's fit-time output
    out = cb.transform(X)
    assert isinstance(out, pd.DataFrame) and out.index.equals(X.index) and list(out.columns) == list(X.columns)
    np.testing.assert_allclose(out.to_numpy(), ref, rtol=1e-8, atol=1e-8)
    pd.testing.assert_frame_equal(cb.fit_data_, out)


def test_nonparametric_underflow_falls_back_to_location_scale_estimates():
    X, batch = _batched(seed=0)  # neuroCombat's non-parametric prior gives NaN for f0 here
    ref = _direct(X, batch, parametric=False)
    assert np.isnan(ref[:, 0]).all()
    with pytest.warns(UserWarning, match="not finite"):
        cb = ComBat(batch=batch, parametric=False).fit(X)
    out = cb.transform(X)
    assert np.isfinite(out.to_numpy()).all() and cb.nonfinite_estimates_ == 1
    np.testing.assert_allclose(out.to_numpy()[:, 1:], ref[:, 1:], rtol=1e-8, atol=1e-8)
    # the fixed batch x feature uses the eb=False estimates
    plain = ComBat(batch=batch, eb=False).fit(X).transform(X)
    b = batch.to_numpy()
    lv = list(np.asarray(cb.estimates_["batches"], dtype=str))
    bad_batch = lv[int(np.argwhere(~np.isfinite(_direct_gamma(X, batch)))[0, 0])]
    np.testing.assert_allclose(out.loc[b == bad_batch, "f0"], plain.loc[b == bad_batch, "f0"], rtol=1e-8)


def _direct_gamma(X, batch):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = neuroCombat(
            dat=X.to_numpy().T,
            covars=pd.DataFrame({"batch": batch.loc[X.index].to_numpy()}),
            batch_col="batch",
            parametric=False,
        )
    return np.asarray(out["estimates"]["gamma.star"], dtype=float)


def test_batch_effect_removed():
    X, batch = _batched(n=150)
    out = ComBat(batch=batch).fit_transform(X)
    raw_means = X.groupby(batch).mean()
    new_means = out.groupby(batch).mean()
    assert (raw_means.max() - raw_means.min()).min() > 1.0
    assert ((new_means.max() - new_means.min()) < 0.3 * (raw_means.max() - raw_means.min())).all()


def test_new_rows_use_training_estimates_only():
    X, batch = _batched()
    train, test = X.index[:60], X.index[60:]
    cb = ComBat(batch=batch).fit(X.loc[train])
    est_before = {k: np.array(v, dtype=object, copy=True) for k, v in cb.estimates_.items()}
    out = cb.transform(X.loc[test])
    # applying to each test patient alone gives the same (no test-set statistics are used)
    alone = pd.concat([cb.transform(X.loc[[i]]) for i in test])
    np.testing.assert_allclose(alone.to_numpy(), out.to_numpy(), rtol=1e-10)
    for k, v in cb.estimates_.items():
        np.testing.assert_array_equal(np.array(v, dtype=object), est_before[k])
    # manual application of the training estimates (neuroCombatFromTraining's formula)
    e = cb.estimates_
    lv = list(np.asarray(e["batches"], dtype=str))
    b = batch.loc[test].to_numpy()
    g = np.array([e["gamma.star"][lv.index(x)] for x in b])
    d = np.array([e["delta.star"][lv.index(x)] for x in b])
    sm = e["stand.mean"][:, 0]
    vp = np.sqrt(e["var.pooled"][:, 0])
    manual = ((X.loc[test].to_numpy() - sm) / vp - g) / np.sqrt(d) * vp + sm
    np.testing.assert_allclose(out.to_numpy(), manual, rtol=1e-8)


def test_unseen_batch_is_a_clear_error():
    X, batch = _batched()
    train = batch.index[batch != "philips"]
    cb = ComBat(batch=batch).fit(X.loc[train])
    with pytest.raises(ValueError, match="philips.*not among the training batches"):
        cb.transform(X)


def test_single_training_batch_is_identity_with_warning():
    X, batch = _batched()
    train = batch.index[batch == "ge"]
    with pytest.warns(UserWarning, match="one batch"):
        cb = ComBat(batch=batch).fit(X.loc[train])
    assert cb.identity_
    pd.testing.assert_frame_equal(cb.transform(X.loc[train]), X.loc[train])
    with pytest.raises(ValueError, match="not among the training batches"):
        cb.transform(X)


def test_tiny_batch_missing_batch_and_nan_errors():
    X, batch = _batched()
    idx = list(batch.index[batch != "philips"]) + [batch.index[batch == "philips"][0]]
    with pytest.raises(ValueError, match="fewer than 2"):
        ComBat(batch=batch).fit(X.loc[idx])
    with pytest.raises(KeyError, match="no batch"):
        ComBat(batch=batch.iloc[:-1]).fit(X)
    Xn = X.copy()
    Xn.iloc[0, 0] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        ComBat(batch=batch).fit(Xn)
    with pytest.raises(ValueError, match="no batch given"):
        ComBat().fit(X)


def test_constant_training_columns_pass_through():
    X, batch = _batched()
    X["const"] = 3.0
    cb = ComBat(batch=batch).fit(X)
    assert "const" not in cb.harmonised_columns_
    out = cb.transform(X)
    assert (out["const"] == 3.0).all()
    np.testing.assert_allclose(
        out.drop(columns="const").to_numpy(), _direct(X.drop(columns="const"), batch), rtol=1e-8, atol=1e-8
    )


def test_quiet():
    X, batch = _batched()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ComBat(batch=batch).fit(X).transform(X)
    assert buf.getvalue() == ""
