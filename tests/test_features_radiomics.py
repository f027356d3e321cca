"""extract_radiomics: agreement with PyRadiomics, cache, resume after a kill, bad input, joblib and Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from replicate.data.cohort import Case
from replicate.features import count_features, extract_radiomics, load_params
from replicate.features import radiomics as rad
from replicate.features.radiomics import ExtractionError

SHAPE = (10, 24, 24)  # z, y, x
SPACING = (0.8, 0.8, 2.0)  # x, y, z


def _write(arr, path: Path, spacing=SPACING, origin=(0.0, 0.0, 0.0), direction=None) -> Path:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing[: arr.ndim])
    img.SetOrigin(origin[: arr.ndim])
    if direction is not None:
        img.SetDirection(direction)
    sitk.WriteImage(img, str(path))
    return path


def _volume(seed: int, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(SHAPE)
    img = (rng.normal(100, 25, SHAPE) + 3 * x + 2 * y + offset).astype(np.int16)
    r = 6 + seed % 3
    mask = (((y - 12) / r) ** 2 + ((x - 11) / (r + 1)) ** 2 + ((z - 5) / 3.5) ** 2 <= 1).astype(np.uint8)
    return img, mask


def make_case(root: Path, cid: str, seed: int = 0, **kw) -> Case:
    img, mask = _volume(seed, kw.pop("offset", 0.0))
    d = root / cid
    d.mkdir(parents=True, exist_ok=True)
    return Case(cid, _write(img, d / "image.nii.gz"), _write(mask, d / "mask.nii.gz"), "T1")


def make_cases(root: Path, n: int) -> list[Case]:
    return [make_case(root, f"P{i:02d}", seed=i) for i in range(n)]


# ----------------------------------------------------------------------------- parameters


def test_load_params_by_name_path_and_dict(tmp_path):
    by_name = load_params("default")
    assert by_name["imageType"] == {"Original": {}}
    p = tmp_path / "mine.yaml"
    p.write_text("imageType:\n  Original: {}\nfeatureClass:\n  firstorder:\nsetting:\n  binWidth: 10\n")
    assert load_params(p)["setting"]["binWidth"] == 10
    assert load_params({"featureClass": {"glcm": None}}) == {"featureClass": {"glcm": None}}
    with pytest.raises(FileNotFoundError, match="not found"):
        load_params("no_such_params")
    with pytest.raises(RuntimeError, match="binWidth"):
        load_params({"setting": {"binWidth": "not a number"}})


def test_count_features_default():
    assert count_features("default", ndim=3) == 107
    assert count_features("default", ndim=2) == 102  # shape2D (9) in place of shape (14)
    assert count_features({"featureClass": {"firstorder": None}}) == 18


def test_settings_hash_is_canonical():
    a = rad.settings_hash({"featureClass": {"firstorder": None}})
    b = rad.settings_hash({"featureClass": {"firstorder": []}, "setting": {"label": 1, "normalize": False}})
    assert a == b
    assert a != rad.settings_hash({"featureClass": {"firstorder": None}, "setting": {"binWidth": 10}})
    assert a != rad.settings_hash({"featureClass": {"firstorder": None}}, label=2)


# ----------------------------------------------------------------------------- agreement and cache


def test_matches_direct_pyradiomics_call(tmp_path):
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    cases = make_cases(tmp_path / "data", 2)
    t = extract_radiomics(cases, "default", cache_dir=tmp_path / "cache", progress=False)
    assert t.failures.empty
    assert list(t.features.index) == ["P00", "P01"]
    assert t.n_features == 107 == t.info["n_features"]
    assert not any(c.startswith("diagnostics_") for c in t.features.columns)
    assert "original_firstorder_Mean" in t.features.columns
    ext = RadiomicsFeatureExtractor(str(rad.params_dir() / "default.yaml"))
    for c in cases:
        direct = ext.execute(str(c.image), str(c.mask))
        direct = {k: float(v) for k, v in direct.items() if not k.startswith("diagnostics_")}
        assert list(direct) == list(t.features.columns)
        np.testing.assert_array_equal(t.features.loc[c.case_id].to_numpy(), np.array(list(direct.values())))
    diag = t.info["diagnostics"]["P00"]
    assert diag["Mask-original_VoxelNum"] == diag["roi_voxels"] > 0
    assert t.info["versions"]["pyradiomics"].lstrip("v").startswith("3.1")


def test_cache_hit_skips_work(tmp_path, monkeypatch):
    cases = make_cases(tmp_path / "data", 3)
    first = extract_radiomics(cases, "default", cache_dir=tmp_path / "cache", progress=False)
    assert first.info["n_extracted"] == 3 and first.info["n_cached"] == 0
    calls = []
    real = rad._extract_case
    monkeypatch.setattr(rad, "_extract_case", lambda task: calls.append(task["case_id"]) or real(task))
    second = extract_radiomics(cases, "default", cache_dir=tmp_path / "cache", progress=False)
    assert calls == []
    assert second.info["n_cached"] == 3
    pd.testing.assert_frame_equal(first.features, second.features)
    # other settings -> other key -> work again; a changed mask file -> that case again
    extract_radiomics(cases, {"featureClass": {"firstorder": None}}, cache_dir=tmp_path / "cache", progress=False)
    assert len(calls) == 3
    calls.clear()
    img, mask = _volume(8)  # another mask size than P01's
    _write(mask, cases[1].mask)
    third = extract_radiomics(cases, "default", cache_dir=tmp_path / "cache", progress=False)
    assert calls == ["P01"] and third.info["n_cached"] == 2


def test_interrupted_by_exception_resumes(tmp_path, monkeypatch):
    cases = make_cases(tmp_path / "data", 5)
    real = rad._extract_case
    done = []

    def boom(task):
        if len(done) == 3:
            raise KeyboardInterrupt
        done.append(task["case_id"])
        return real(task)

    monkeypatch.setattr(rad, "_extract_case", boom)
    with pytest.raises(KeyboardInterrupt):
        extract_radiomics(cases, "default", cache_dir=tmp_path / "cache", progress=False)
    calls = []
    monkeypatch.setattr(rad, "_extract_case", lambda task: calls.append(task["case_id"]) or real(task))
    t = extract_radiomics(cases, "default", cache_dir=tmp_path / "cache", progress=False)
    assert calls == ["P03", "P04"]
    assert t.info["n_cached"] == 3 and len(t.features) == 5 and t.failures.empty


_KILL_SCRIPT = """
import sys, time
from pathlib import Path
import radiomics.featureextractor as fe
from replicate.data.cohort import Case
from replicate.features import extract_radiomics
real = fe.RadiomicsFeatureExtractor.execute
def slow(self, *a, **k):
    out = real(self, *a, **k)
    time.sleep(0.6)          # a slow case: the kill lands part-way through the run
    return out
fe.RadiomicsFeatureExtractor.execute = slow
root, cache = Path(sys.argv[1]), Path(sys.argv[2])
cases = [Case(p.name, p / "image.nii.gz", p / "mask.nii.gz") for p in sorted(root.iterdir())]
print("start", flush=True)
extract_radiomics(cases, "default", cache_dir=cache, progress=False)
print("finished", flush=True)
"""


def test_killed_extraction_resumes_without_corrupt_entries(tmp_path, monkeypatch):
    """Acceptance: kill the process part-way; the next run reuses every finished case; no corrupt entry."""
    n = 6
    cases = make_cases(tmp_path / "data", n)
    cache = tmp_path / "cache"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(_KILL_SCRIPT))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "data"), str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if len(list(cache.rglob("*.json"))) >= 2 or proc.poll() is not None:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # no clean-up handlers run
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    entries = sorted(cache.rglob("*.json"))
    finished = len(entries)
    assert 2 <= finished < n
    for e in entries:  # every entry is complete JSON with its features
        d = json.loads(e.read_text())
        assert len(d["features"]) == 107 and d["key"] == e.stem
    calls = []
    real = rad._extract_case
    monkeypatch.setattr(rad, "_extract_case", lambda task: calls.append(task["case_id"]) or real(task))
    t = extract_radiomics(cases, "default", cache_dir=cache, progress=False)
    assert t.info["n_cached"] == finished
    assert len(calls) == n - finished
    assert len(t.features) == n and t.failures.empty
    fresh = extract_radiomics(cases, "default", cache_dir=tmp_path / "fresh", progress=False)
    pd.testing.assert_frame_equal(t.features, fresh.features)


# ----------------------------------------------------------------------------- bad input


def _bad_cases(root: Path) -> tuple[list[Case], dict[str, str]]:
    """Two good cases and one of each kind of bad input -> expected failure kind per case id."""
    good = [make_case(root, "good_a", 0), make_case(root, "good_b", 1)]
    img, mask = _volume(2)
    cases, expect = list(good), {}

    def add(cid, kind, image_arr=img, mask_arr=mask, **geo):
        d = root / cid
        d.mkdir(parents=True, exist_ok=True)
        ip = _write(image_arr, d / "image.nii.gz")
        mp = _write(mask_arr, d / "mask.nii.gz", **geo)
        cases.append(Case(cid, ip, mp))
        expect[cid] = kind
        return cases[-1]

    c = add("unreadable", "ReadError")
    c.image.write_bytes(b"this is not an image at all")
    c = add("truncated", "ReadError")  # ITK itself reads a truncated NIfTI without complaint
    data = c.mask.read_bytes()
    c.mask.write_bytes(data[: len(data) // 2])
    c = add("truncated_nii", "ReadError")
    d_nii = c.image.with_name("image.nii")
    _write(img, d_nii)
    data = d_nii.read_bytes()
    d_nii.write_bytes(data[: len(data) - 100])
    cases[-1] = Case("truncated_nii", d_nii, c.mask)
    cases.append(Case("missing", root / "nope" / "image.nii.gz", root / "nope" / "mask.nii.gz"))
    expect["missing"] = "ReadError"
    add("size", "GeometryMismatch", mask_arr=mask[:, :, :-2])
    add("spacing", "GeometryMismatch", spacing=(0.8, 0.8, 2.5))
    add("origin", "GeometryMismatch", origin=(0.0, 0.5, 0.0))
    add("direction", "GeometryMismatch", direction=(0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    add("empty", "EmptyMask", mask_arr=np.zeros_like(mask))
    one = np.zeros_like(mask)
    one[5, 12, 12] = 1
    add("one_voxel", "SingleVoxelMask", mask_arr=one)
    lab = mask.copy()
    lab[5, 12, 8:12] = 2
    add("labels", "UnexpectedLabels", mask_arr=lab)
    add("nonfinite", "NonFiniteFeatures", image_arr=img + 6000)  # the patched feature returns NaN for it
    return cases, expect


def test_bad_inputs_are_reported_per_case(tmp_path, monkeypatch):
    from radiomics.firstorder import RadiomicsFirstOrder

    real_mean = RadiomicsFirstOrder.getMeanFeatureValue
    monkeypatch.setattr(
        RadiomicsFirstOrder,
        "getMeanFeatureValue",
        lambda self: np.nan if np.nanmin(self.targetVoxelArray) > 4000 else real_mean(self),
    )
    cases, expect = _bad_cases(tmp_path / "data")
    t = extract_radiomics(cases, "default", cache_dir=tmp_path / "cache", progress=False)
    assert list(t.features.index) == ["good_a", "good_b"]
    assert np.isfinite(t.features.to_numpy()).all()
    got = dict(zip(t.failures["case_id"], t.failures["reason"]))
    assert set(got) == set(expect), got
    for cid, kind in expect.items():
        assert got[cid].startswith(kind + ":"), (cid, got[cid])
        assert f"case {cid}" in got[cid]
    assert "labels [0, 1, 2]" in got["labels"] and "not binarised" in got["labels"]
    assert "single voxel" in got["one_voxel"]
    assert "empty" in got["empty"]
    assert "size" in got["size"] and "spacing" in got["spacing"] and "origin" in got["origin"]
    assert "direction" in got["direction"]
    assert "original_firstorder_Mean" in got["nonfinite"]
    assert "corrupt or truncated" in got["truncated"] and "does not exist" in got["missing"]
    assert "NIfTI data is truncated" in got["truncated_nii"]
    assert list(t.failures.columns) == ["case_id", "reason"]
    assert t.info["n_failed"] == len(expect)


def test_strict_raises(tmp_path):
    cases, _ = _bad_cases(tmp_path / "data")
    with pytest.raises(ExtractionError, match="unreadable"):
        extract_radiomics(cases[:3], "default", cache_dir=tmp_path / "cache", progress=False, strict=True)


def test_nan_policy_keep(tmp_path, monkeypatch):
    from radiomics.firstorder import RadiomicsFirstOrder

    monkeypatch.setattr(RadiomicsFirstOrder, "getMeanFeatureValue", lambda self: np.inf)
    cases = make_cases(tmp_path / "data", 2)
    with pytest.warns(UserWarning, match="NaN/inf"):
        t = extract_radiomics(
            cases, {"featureClass": {"firstorder": None}}, cache_dir=False, progress=False, nan_policy="keep"
        )
    assert len(t.features) == 2 and t.failures.empty
    assert t.info["nonfinite"] == {"P00": ["original_firstorder_Mean"], "P01": ["original_firstorder_Mean"]}


def test_small_geometry_differences_within_tolerance_pass(tmp_path):
    img, mask = _volume(0)
    d = tmp_path / "c"
    d.mkdir()
    ip = _write(img, d / "i.nii.gz")
    mp = _write(mask, d / "m.nii.gz", origin=(0.0, 0.0, 2e-4))
    t = extract_radiomics([Case("c", ip, mp)], {"featureClass": {"firstorder": None}}, cache_dir=False, progress=False)
    assert t.failures.empty and len(t.features) == 1


def test_png_2d_and_0_255_masks(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.indices((48, 64))
    img = np.clip(rng.normal(90, 20, (48, 64)) + x, 0, 255).astype(np.uint8)
    mask = ((((y - 24) / 12) ** 2 + ((x - 30) / 16) ** 2) <= 1).astype(np.uint8) * 255
    sitk.WriteImage(sitk.GetImageFromArray(img), str(tmp_path / "img.png"))
    sitk.WriteImage(sitk.GetImageFromArray(mask), str(tmp_path / "mask.png"))
    rgb = np.repeat(img[..., None], 3, axis=2)
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(tmp_path / "rgb.png"))
    bad = mask.copy()
    bad[24, 28:32] = 128
    sitk.WriteImage(sitk.GetImageFromArray(bad), str(tmp_path / "bad.png"))
    cases = [
        Case("us1", tmp_path / "img.png", tmp_path / "mask.png"),
        Case("us_rgb", tmp_path / "rgb.png", tmp_path / "mask.png"),
        Case("us_bad", tmp_path / "img.png", tmp_path / "bad.png"),
    ]
    t = extract_radiomics(cases, "default", cache_dir=tmp_path / "cache", progress=False)
    assert list(t.features.index) == ["us1", "us_rgb"]
    assert t.n_features == count_features("default", ndim=2) == 102
    assert "original_shape2D_Perimeter" in t.features.columns
    np.testing.assert_array_equal(t.features.loc["us1"].to_numpy(), t.features.loc["us_rgb"].to_numpy())
    assert t.info["diagnostics"]["us1"]["mask_binarised"].startswith("mask values {0, 255}")
    reason = t.failures.set_index("case_id").loc["us_bad", "reason"]
    assert reason.startswith("UnexpectedLabels") and "[0, 128, 255]" in reason


# ----------------------------------------------------------------------------- parallel


def test_two_workers_give_identical_features(tmp_path):
    cases = make_cases(tmp_path / "data", 4)
    one = extract_radiomics(cases, "default", n_jobs=1, cache_dir=tmp_path / "c1", progress=False)
    two = extract_radiomics(cases, "default", n_jobs=2, cache_dir=tmp_path / "c2", progress=False)
    assert two.info["n_jobs"] == 2
    pd.testing.assert_frame_equal(one.features, two.features, check_exact=True)
    a = sorted(p.name for p in (tmp_path / "c1").rglob("*.json"))
    b = sorted(p.name for p in (tmp_path / "c2").rglob("*.json"))
    assert a == b and len(a) == 4


def test_dask_gives_same_features_and_cache(tmp_path):
    distributed = pytest.importorskip("distributed")
    cases = make_cases(tmp_path / "data", 3)
    local = extract_radiomics(cases, "default", cache_dir=tmp_path / "local", progress=False)
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl,
        distributed.Client(cl) as client,
    ):
        remote = extract_radiomics(cases, "default", scheduler=client, cache_dir=tmp_path / "dask", progress=False)
        by_address = extract_radiomics(
            cases, "default", scheduler=cl.scheduler_address, cache_dir=tmp_path / "dask", progress=False
        )
    pd.testing.assert_frame_equal(local.features, remote.features, check_exact=True)
    assert remote.info["n_extracted"] == 3
    assert by_address.info["n_cached"] == 3
    again = extract_radiomics(cases, "default", cache_dir=tmp_path / "dask", progress=False)
    assert again.info["n_cached"] == 3
    pd.testing.assert_frame_equal(local.features, again.features, check_exact=True)
