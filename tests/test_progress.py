"""replicate.progress: stages and counters as JSON lines, the state a reader builds, the runner's sections."""

import json
import os
import time

import nbformat
import numpy as np
import pytest

from replicate import progress, runner


@pytest.fixture
def pfile(tmp_path, monkeypatch):
    path = tmp_path / "progress.jsonl"
    monkeypatch.setenv(progress.ENV, str(path))
    return path


def _events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_silent_without_a_listener(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with progress.stage("outer", total=3):
        assert progress.current_stage() == "outer"
        progress.tick(1)
        progress.note("hello")
    assert progress.current_stage() is None
    assert list(tmp_path.iterdir()) == []


def test_nested_stages_ticks_and_results(pfile, monkeypatch):
    monkeypatch.setattr(progress, "TICK_INTERVAL", 3600.0)
    with progress.stage("features", unit="case"):
        with progress.stage("PyRadiomics sts", total=5, unit="case"):
            for i in range(1, 6):
                progress.tick(i)
            progress.set_result(n_cached=2, n_extracted=3)
    ev = _events(pfile)
    assert [e["ev"] for e in ev] == ["start", "start", "tick", "tick", "end", "end"]
    assert ev[1]["stage"] == "features > PyRadiomics sts" and ev[1]["total"] == 5
    # throttled: the first and the last count go out, 2..4 do not
    assert [e["i"] for e in ev if e["ev"] == "tick"] == [1, 5]
    assert ev[4]["n_cached"] == 2 and ev[4]["ok"] is True and ev[4]["seconds"] >= 0
    assert {e["pid"] for e in ev} == {os.getpid()}


def test_failed_stage_is_marked(pfile):
    with pytest.raises(ZeroDivisionError):
        with progress.stage("boom"):
            raise ZeroDivisionError
    end = _events(pfile)[-1]
    assert end["ev"] == "end" and end["ok"] is False
    assert progress.stage_table(_events(pfile))[0]["failed"] is True


def test_read_events_leaves_a_partial_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"ev": "start", "stage": "a", "t": 1}\n{"ev": "ti')
    events, offset = progress.read_events(path)
    assert len(events) == 1 and offset == len('{"ev": "start", "stage": "a", "t": 1}\n')
    with open(path, "a") as fh:
        fh.write('ck", "stage": "a", "i": 2, "total": 4, "t": 2}\n')
    more, offset2 = progress.read_events(path, offset)
    assert more == [{"ev": "tick", "stage": "a", "i": 2, "total": 4, "t": 2}]
    assert offset2 == path.stat().st_size


def test_state_eta_and_paths_across_processes():
    st = progress.ProgressState(history={"total": 100.0})
    st.update({"t": 0.0, "pid": 1, "ev": "start", "stage": "notebook", "total": 10, "unit": "cell"})
    st.update({"t": 1.0, "pid": 1, "ev": "start", "stage": "notebook > Features"})
    st.update({"t": 2.0, "pid": 2, "ev": "start", "stage": "PyRadiomics sts", "total": 50, "unit": "case"})
    st.update({"t": 22.0, "pid": 2, "ev": "tick", "stage": "PyRadiomics sts", "i": 10, "total": 50, "unit": "case"})
    assert st.stage == "notebook > Features > PyRadiomics sts"
    c = st.counter()
    assert (c.i, c.total, c.unit) == (10, 50, "case")
    assert c.eta(22.0) == pytest.approx(80.0)  # 2 s per case, 40 cases left
    assert st.eta_run(22.0) == pytest.approx(78.0)
    line = st.line(22.0)
    assert "10/50 cases, 1m20s left" in line and "about 1m18s left (last run 1m40s)" in line
    st.update({"t": 30.0, "pid": 2, "ev": "end", "stage": "PyRadiomics sts", "seconds": 28.0})
    assert st.stage == "notebook > Features"
    assert "cell" in st.line(30.0) and "left |" not in st.line(30.0).split("|")[1]  # no rate for cells


def test_stage_table_sums_repeated_stages():
    ev = [
        {"ev": "start", "stage": "CV folds"},
        {"ev": "end", "stage": "CV folds", "seconds": 1.5, "n": 3},
        {"ev": "start", "stage": "CV folds"},
        {"ev": "end", "stage": "CV folds", "seconds": 2.0, "n": 4},
        {"ev": "start", "stage": "never ended"},
    ]
    assert progress.stage_table(ev) == [{"stage": "CV folds", "seconds": 3.5, "count": 2, "n": 7}]


def test_fmt_seconds():
    assert [progress.fmt_seconds(s) for s in (None, 5, 75, 3720)] == ["?", "5s", "1m15s", "1h02m"]


def test_validation_reports_folds(pfile):
    from sklearn.linear_model import LogisticRegression

    from replicate.validation import evaluate_splits, random_splits, repeated_cv_predict

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.r_[np.zeros(20), np.ones(20)]
    repeated_cv_predict(LogisticRegression(), X, y, 4, 2, progress=False)
    evaluate_splits(LogisticRegression(), X, y, random_splits(y, 5, seed=1))
    rows = {r["stage"]: r for r in progress.stage_table(_events(pfile))}
    assert set(rows) == {"CV folds", "random splits"}
    ticks = [e for e in _events(pfile) if e["ev"] == "tick"]
    assert ticks[-1]["i"] == 5 and ticks[-1]["unit"] == "split"
    assert any(e["i"] == 8 and e["unit"] == "fold" for e in ticks)


def _toy(path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seed = 0\noutput_dir = None")
    params.metadata["tags"] = ["parameters"]
    work = (
        "from replicate import progress\nimport time\n"
        "with progress.stage('work', total=3, unit='case'):\n"
        "    for i in range(1, 4):\n        time.sleep(0.05)\n        progress.tick(i)"
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Toy"),
        params,
        nbformat.v4.new_markdown_cell("## Features"),
        nbformat.v4.new_code_cell(work),
        nbformat.v4.new_markdown_cell("## Models"),
        nbformat.v4.new_code_cell("x = 1"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_runner_sections_timings_monitor_and_no_tcp_warning(tmp_path, monkeypatch, capfd):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    monkeypatch.setenv("REPLICATE_NOTEBOOKS_DIR", str(nbs))
    monkeypatch.delenv(progress.ENV, raising=False)
    _toy(nbs / "toy.ipynb")
    out = tmp_path / "out"
    seen = []
    runner.run_chapter(
        "toy", {"seed": 1}, out, require_results=False, monitor=lambda state, events: seen.append(state.stage)
    )
    err = capfd.readouterr().err
    assert "without encryption" not in err
    events = _events(out / runner.PROGRESS_FILE)
    stages = [e["stage"] for e in events if e["ev"] == "start"]
    assert stages == ["notebook", "notebook > setup", "notebook > Features", "work", "notebook > Models"]
    assert {e["pid"] for e in events if e["stage"] == "work"} != {os.getpid()}  # from the kernel
    timings = json.loads((out / runner.TIMINGS_FILE).read_text())
    assert timings["ok"] is True and timings["total"] > 0
    assert [r["stage"] for r in timings["sections"]] == ["notebook > setup", "notebook > Features", "notebook > Models"]
    assert timings["stages"][0]["stage"] == "work" and timings["stages"][0]["seconds"] >= 0.1
    assert progress.ENV not in os.environ  # restored after the run
    assert any(s and s.endswith("work") for s in seen) or "notebook > Models" in seen
    # the next run of the same chapter knows how long the last one took
    assert runner.read_timings(out)["total"] == timings["total"]


def test_kernel_manager_is_encrypted_or_local():
    km = runner.kernel_manager_class(runner.kernel_name())
    inst = km(kernel_name=runner.kernel_name())
    assert inst.transport == "ipc" or inst.transport_encryption == "auto"


def test_tick_interval_bounds_the_file(pfile):
    t0 = time.perf_counter()
    with progress.stage("many", total=100000):
        for i in range(1, 100001):
            progress.tick(i)
    assert time.perf_counter() - t0 < 5
    assert len(_events(pfile)) < 20


def test_extraction_stages_name_the_modality_and_the_perturbed_masks(pfile, tmp_path, monkeypatch):
    import SimpleITK as sitk

    from replicate.data.cohort import Case
    from replicate.features.perturb import perturbed_cases
    from replicate.features.radiomics import extract_radiomics

    monkeypatch.setenv("REPLICATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("REPLICATE_FEATURE_CACHE", raising=False)
    grid = np.indices((12, 12, 12)) - 5.5
    mask = (np.sqrt((grid**2).sum(0)) <= 4).astype(np.uint8)
    cases = []
    for i in range(2):
        img = np.random.default_rng(i).normal(100, 10, (12, 12, 12)).astype(np.float32)
        sitk.WriteImage(sitk.GetImageFromArray(img), str(tmp_path / f"i{i}.nii.gz"))
        sitk.WriteImage(sitk.GetImageFromArray(mask), str(tmp_path / f"m{i}.nii.gz"))
        cases.append(Case(f"c{i}", tmp_path / f"i{i}.nii.gz", tmp_path / f"m{i}.nii.gz", "T1"))
    params = {"imageType": {"Original": {}}, "featureClass": {"firstorder": None}}
    extract_radiomics(cases, params, progress=False)
    pert = perturbed_cases(cases, kinds=("dilate",))
    extract_radiomics(pert["dilate"], params, progress=False)
    extract_radiomics(pert["dilate"], params, progress=False)
    rows = {r["stage"]: r for r in progress.stage_table(_events(pfile))}
    assert list(rows) == [
        "PyRadiomics T1 (1 image types)",
        "perturb masks (dilate)",
        "PyRadiomics T1 (1 image types), perturbed masks",
    ]
    pm = rows["PyRadiomics T1 (1 image types), perturbed masks"]
    assert pm["count"] == 2 and pm["n_extracted"] == 2 and pm["n_cached"] == 2  # the second call read the cache
    assert rows["perturb masks (dilate)"]["n_made"] == 2
