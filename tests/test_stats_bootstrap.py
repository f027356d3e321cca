"""Vectorised bootstrap of the AUC against a loop over the same resamples with sklearn."""

import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from replicate.stats import (
    bootstrap_auc,
    bootstrap_auc_ci,
    bootstrap_ci,
    bootstrap_indices,
    bootstrap_values,
    percentile_ci,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 200)
    s = np.round(y + rng.normal(size=200), 1)  # with ties
    return y, s


@pytest.mark.parametrize("stratified", [True, False])
def test_vectorised_equals_loop_on_same_resamples(data, stratified):
    y, s = data
    fast = bootstrap_auc(y, s, n_boot=200, seed=5, stratified=stratified)
    slow = np.array([roc_auc_score(y[i], s[i]) for i in bootstrap_indices(y, 200, seed=5, stratified=stratified)])
    np.testing.assert_allclose(fast, slow, atol=1e-12)
    np.testing.assert_allclose(bootstrap_values(y, s, roc_auc_score, 200, seed=5, stratified=stratified), slow)


def test_stratified_keeps_class_sizes(data):
    y, _ = data
    for idx in bootstrap_indices(y, 20, seed=1):
        assert idx.size == y.size and y[idx].sum() == y.sum()


def test_reproducible_and_seed_dependent(data):
    y, s = data
    a = bootstrap_auc(y, s, 100, seed=1)
    assert np.array_equal(a, bootstrap_auc(y, s, 100, seed=1))
    assert not np.array_equal(a, bootstrap_auc(y, s, 100, seed=2))


def test_chunking_does_not_change_results(data, monkeypatch):
    import replicate.stats.bootstrap as b

    y, s = data
    full = bootstrap_auc(y, s, 250, seed=3)
    monkeypatch.setattr(b, "_CHUNK_ELEMENTS", 1000)  # 4 resamples per chunk
    np.testing.assert_array_equal(full, bootstrap_auc(y, s, 250, seed=3))


def test_percentile_ci_and_generic(data):
    y, s = data
    boots = bootstrap_auc(y, s, 300, seed=0)
    lo, hi = percentile_ci(boots, 0.9)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(boots, [0.05, 0.95])))
    low, est, high = bootstrap_auc_ci(y, s, n_boot=300, seed=0, level=0.9)
    assert (low, high) == pytest.approx((lo, hi)) and est == pytest.approx(roc_auc_score(y, s))
    g = bootstrap_ci(y, s, roc_auc_score, n_boot=300, seed=0, level=0.9)
    assert g == pytest.approx((low, est, high))
    # 2-D score: paired difference of two models, resampled together
    s2 = np.c_[s, -s]
    diff = bootstrap_ci(
        y, s2, lambda yy, ss: roc_auc_score(yy, ss[:, 0]) - roc_auc_score(yy, ss[:, 1]), n_boot=50, seed=0
    )
    assert diff[1] == pytest.approx(2 * roc_auc_score(y, s) - 1)


def test_unstratified_single_class_resample_is_nan():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0])
    s = np.arange(8.0)
    with pytest.warns(UserWarning, match="single class"):
        a = bootstrap_auc(y, s, 200, seed=0, stratified=False)
    assert np.isnan(a).any() and not np.isnan(a).all()
    assert np.isfinite(percentile_ci(a)).all()


def test_speed_2000_resamples_n500():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = y + rng.normal(size=500)
    t0 = time.perf_counter()
    bootstrap_auc(y, s, n_boot=2000, seed=0)
    assert time.perf_counter() - t0 < 2.0
