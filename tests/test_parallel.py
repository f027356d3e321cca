"""replicate.parallel: the same numbers in this process, in joblib workers and on a two-worker Dask cluster."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from replicate import parallel
from replicate.parallel import SCHEDULER_ENV, map_tasks


def _square_plus(x, offset):
    return x * x + offset


def test_local_routes_keep_task_order(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    tasks = [(i, 0.5) for i in range(7)]
    expected = [i * i + 0.5 for i in range(7)]
    assert map_tasks(_square_plus, tasks) == expected
    assert map_tasks(_square_plus, tasks, n_jobs=2) == expected
    assert map_tasks(_square_plus, [], n_jobs=2) == []


def test_scheduler_resolution(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    assert parallel.resolve_scheduler(None) is None
    monkeypatch.setenv(SCHEDULER_ENV, "tcp://somewhere:8786")
    assert parallel.resolve_scheduler(None) == "tcp://somewhere:8786"
    assert parallel.resolve_scheduler(False) is None
    assert parallel.resolve_scheduler("tcp://other:1") == "tcp://other:1"
    with pytest.raises(TypeError, match="scheduler must be"):
        parallel.get_client(42)


def test_unreachable_scheduler_says_how_to_start_one():
    with pytest.raises(ConnectionError, match="dask scheduler"):
        parallel.get_client("tcp://127.0.0.1:1", timeout="2s")


def _cases(root, n=8):
    """Small 3-D images with a sphere mask whose texture depends on the class (label = i % 2)."""
    import SimpleITK as sitk

    from replicate.data.cohort import Case

    root.mkdir(parents=True, exist_ok=True)
    cases, labels = [], []
    grid = np.indices((16, 16, 16)) - 7.5
    mask = (np.sqrt((grid**2).sum(0)) <= 5).astype(np.uint8)
    for i in range(n):
        rng = np.random.default_rng(i)
        img = rng.normal(100 + 15 * (i % 2), 10 + 5 * (i % 2), (16, 16, 16)).astype(np.float32)
        for name, arr in (("image", img), ("mask", mask)):
            sitk.WriteImage(sitk.GetImageFromArray(arr), str(root / f"c{i}_{name}.nii.gz"))
        cases.append(Case(f"c{i}", root / f"c{i}_image.nii.gz", root / f"c{i}_mask.nii.gz"))
        labels.append(i % 2)
    return cases, pd.Series(labels, index=[c.case_id for c in cases])


PARAMS = {"imageType": {"Original": {}}, "featureClass": {"firstorder": None, "glcm": None}, "setting": {"binWidth": 5}}


def _workload(cases, y, scheduler):
    """A chapter in miniature: extraction, a 3x2 repeated CV and 6 random splits."""
    from replicate.features.radiomics import extract_radiomics
    from replicate.validation import evaluate_splits, random_splits, repeated_cv_predict

    ft = extract_radiomics(cases, PARAMS, cache_dir=False, progress=False, scheduler=scheduler)
    X = ft.features
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))
    cv = repeated_cv_predict(
        model, X, y.loc[X.index], n_splits=3, n_repeats=2, seed=3, progress=False, scheduler=scheduler
    )
    splits = evaluate_splits(model, X, y.loc[X.index], random_splits(y.loc[X.index], 6, seed=4), scheduler=scheduler)
    return ft, cv, splits


@pytest.mark.slow
def test_two_worker_cluster_gives_the_local_numbers(tmp_path, monkeypatch):
    """Extraction, CV folds and random splits on a local two-worker Dask cluster, passed as an address
    and through REPLICATE_SCHEDULER (as make book SCHEDULER=... does), equal the local run exactly."""
    distributed = pytest.importorskip("distributed")
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    cases, y = _cases(tmp_path / "data")
    ft0, cv0, sp0 = _workload(cases, y, scheduler=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        with distributed.get_task_stream(client=parallel.get_client(cl.scheduler_address)) as ts:
            ft1, cv1, sp1 = _workload(cases, y, scheduler=cl.scheduler_address)
        monkeypatch.setenv(SCHEDULER_ENV, cl.scheduler_address)
        ft2, cv2, sp2 = _workload(cases, y, scheduler=None)
        workers = {t["worker"] for t in ts.data}
        parallel.close_clients()
    assert len(workers) == 2  # the work really went to both workers
    assert ft1.info["scheduler"] == cl.scheduler_address
    for ft, cv, sp in ((ft1, cv1, sp1), (ft2, cv2, sp2)):
        pd.testing.assert_frame_equal(ft0.features, ft.features, check_exact=True)
        pd.testing.assert_frame_equal(cv0.per_repeat, cv.per_repeat, check_exact=True)
        pd.testing.assert_frame_equal(sp0, sp, check_exact=True)
    assert cv0.auc_mean > 0.5  # a real model, not constant scores
