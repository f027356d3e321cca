"""The verified feature release: built from the extractors' logs, unpacked into the cache, verified by
re-extraction, refused when corrupt, ignored under FROM=images."""

import io
import json
import lzma
import os
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from replicate.data.cohort import Case
from replicate.features import release
from replicate.features.deep import extract_deep
from replicate.features.radiomics import extract_radiomics

PARAMS = {"imageType": {"Original": {}}, "featureClass": {"firstorder": None, "glcm": None}, "setting": {"binWidth": 5}}
DEEP = {"size": 32, "weights": "untrained", "progress": False}
pytestmark = pytest.mark.filterwarnings("ignore:deep features come from an UNTRAINED")


def _cases(root: Path, n: int = 5):
    import SimpleITK as sitk

    root.mkdir(parents=True, exist_ok=True)
    grid = np.indices((16, 16, 16)) - 7.5
    mask = (np.sqrt((grid**2).sum(0)) <= 5).astype(np.uint8)
    out = []
    for i in range(n):
        img = np.random.default_rng(i).normal(100, 10 + i, (16, 16, 16)).astype(np.float32)
        sitk.WriteImage(sitk.GetImageFromArray(img), str(root / f"c{i}_image.nii.gz"))
        sitk.WriteImage(sitk.GetImageFromArray(mask), str(root / f"c{i}_mask.nii.gz"))
        out.append(Case(f"c{i}", root / f"c{i}_image.nii.gz", root / f"c{i}_mask.nii.gz"))
    return out


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A data folder with five cases, a feature cache inside it, and a chapter run logging its entries."""
    data = tmp_path / "data"
    monkeypatch.setenv("REPLICATE_DATA_DIR", str(data))
    monkeypatch.delenv("REPLICATE_FEATURE_CACHE", raising=False)
    monkeypatch.delenv(release.FRESH_ENV, raising=False)
    log = tmp_path / "executed" / "toy" / "features_used.jsonl"
    log.parent.mkdir(parents=True)
    monkeypatch.setenv(release.FEATURE_LOG_ENV, str(log))
    cases = _cases(data / "cohort")
    rad = extract_radiomics(cases, PARAMS, progress=False)
    deep = extract_deep(cases, "resnet18", **DEEP)
    monkeypatch.delenv(release.FEATURE_LOG_ENV)
    return {
        "cases": cases,
        "rad": rad,
        "deep": deep,
        "log": log,
        "archive": tmp_path / "rel" / "features.tar.xz",
        "tmp": tmp_path,
    }


@pytest.mark.slow
def test_build_unpack_and_use(run, tmp_path):
    manifest = release.build_release([run["log"]], run["archive"])
    assert manifest["format"] == release.FORMAT
    kinds = sorted(e["kind"] for e in manifest["entries"])
    assert kinds == ["deep"] * 5 + ["radiomics"] * 5
    e = next(e for e in manifest["entries"] if e["kind"] == "radiomics")
    assert e["image"] == "cohort/c0_image.nii.gz" or e["image"].startswith("cohort/")  # portable paths
    assert e["chapters"] == ["toy"] and len(e["sha256"]) == 64
    assert set(manifest["settings"]) == {
        f"radiomics/{run['rad'].info['settings_hash']}",
        f"deep/{run['deep'].info['settings_hash']}",
    }
    side = json.loads((run["archive"].parent / release.MANIFEST_NAME).read_text())
    assert side["entries"] == manifest["entries"]
    # unpacked into an empty cache, the extractors find every entry and give the same numbers
    fresh = tmp_path / "fresh_cache"
    summary = release.unpack_release(run["archive"], fresh)
    assert summary["unpacked"] == {"radiomics": 5, "deep": 5} and not summary["skipped_reasons"]
    rad = extract_radiomics(run["cases"], PARAMS, cache_dir=fresh, progress=False)
    deep = extract_deep(run["cases"], "resnet18", cache_dir=fresh, **DEEP)
    assert rad.info["n_cached"] == 5 and deep.info["n_cached"] == 5
    assert rad.features.equals(run["rad"].features) and deep.features.equals(run["deep"].features)
    assert release.unpack_release(run["archive"], fresh)["present"] == {"radiomics": 5, "deep": 5}


def test_the_same_entries_give_the_same_archive(run):
    release.build_release([run["log"]], run["archive"])
    first = lzma.decompress(run["archive"].read_bytes())
    release.build_release([run["log"]], run["archive"])
    second = lzma.decompress(run["archive"].read_bytes())

    def members(raw):  # the manifest holds the build time; every entry must be byte-identical
        tar = tarfile.open(fileobj=io.BytesIO(raw))
        return [(m.name, m.mtime, tar.extractfile(m).read()) for m in tar.getmembers() if m.name != "manifest.json"]

    assert members(first) == members(second) and len(members(first)) == 10


def test_verification_re_extracts_and_passes(run):
    release.build_release([run["log"]], run["archive"])
    report = release.verify_release(run["archive"], per_group=2)
    assert report["ok"] is True and report["checked"] == 4 and not report["mismatches"]


def _rewrite_cache_entry(run, kind, change):
    root = Path(os.environ["REPLICATE_DATA_DIR"]) / "features"
    path = sorted((root / kind).rglob("*.json" if kind == "radiomics" else "*.npy"))[0]
    change(path)
    return path


def test_verification_fails_when_the_code_drifts(run):
    """A release whose values the code no longer produces (simulated by editing an entry before the build,
    which keeps its sha256 consistent) fails verification, naming the case."""

    def bump(path):
        e = json.loads(path.read_text())
        name = next(k for k in e["features"] if k.endswith("firstorder_Mean"))
        e["features"][name] += 1e-9
        path.write_text(json.dumps(e))

    _rewrite_cache_entry(run, "radiomics", bump)
    release.build_release([run["log"]], run["archive"])
    report = release.verify_release(run["archive"], per_group=5, kinds=("radiomics",))
    assert report["ok"] is False
    assert len(report["mismatches"]) == 1 and "firstorder_Mean" in report["mismatches"][0]["problem"]


def test_deep_tolerance_is_enforced(run):
    def scale(path):
        v = np.load(path)
        np.save(path, (v * 1.001).astype(np.float32))

    _rewrite_cache_entry(run, "deep", scale)
    release.build_release([run["log"]], run["archive"])
    report = release.verify_release(run["archive"], per_group=5, kinds=("deep",))
    assert report["ok"] is False and "outside the tolerance" in report["mismatches"][0]["problem"]


def test_corrupt_archive_is_refused(run, tmp_path):
    release.build_release([run["log"]], run["archive"])
    raw = lzma.decompress(run["archive"].read_bytes())
    src = tarfile.open(fileobj=io.BytesIO(raw))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name.startswith("radiomics/") and b"firstorder" in data:
                data = data.replace(b"firstorder", b"firstOrder", 1)
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    run["archive"].write_bytes(lzma.compress(buf.getvalue()))
    with pytest.raises(release.ReleaseError, match="does not match its sha256"):
        release.unpack_release(run["archive"], tmp_path / "c")


def test_size_limit_and_missing_entries(run):
    with pytest.raises(release.ReleaseError, match="no settings group fits in 0.00 MiB"):
        release.build_release([run["log"]], run["archive"], max_bytes=100)
    with pytest.raises(release.ReleaseError, match="over the 0 MiB limit"):
        release.build_release([run["log"]], run["archive"], max_bytes=100, select=False)
    assert run["archive"].exists()  # written anyway, so its parts can be inspected
    for f in (Path(os.environ["REPLICATE_DATA_DIR"]) / "features" / "deep").rglob("*.npy"):
        f.unlink()
    with pytest.raises(release.ReleaseError, match="is not in the cache"):
        release.build_release([run["log"]], run["archive"])
    assert release.build_release([run["log"]], run["archive"], kinds=("radiomics",))["parts"]


def test_other_extractor_versions_are_not_unpacked(run, monkeypatch, tmp_path):
    release.build_release([run["log"]], run["archive"])
    real = release._code_versions()
    monkeypatch.setattr(release, "_code_versions", lambda: {**real, "pyradiomics-bhklab": "0.0.1"})
    summary = release.unpack_release(run["archive"], tmp_path / "c")
    assert summary["unpacked"] == {"deep": 5} and summary["skipped"] == {"radiomics": 5}
    assert "pyradiomics-bhklab" in summary["skipped_reasons"]["radiomics"]


def test_from_images_re_extracts_older_entries(run, monkeypatch):
    monkeypatch.setenv(release.FRESH_ENV, repr(time.time() + 1))
    time.sleep(1.1)
    again = extract_radiomics(run["cases"], PARAMS, progress=False)
    deep = extract_deep(run["cases"], "resnet18", **DEEP)
    assert again.info["n_extracted"] == 5 and again.info["n_cached"] == 0
    assert deep.info["n_extracted"] == 5
    assert again.features.equals(run["rad"].features)
    third = extract_radiomics(run["cases"], PARAMS, progress=False)  # written during this build: reused
    assert third.info["n_cached"] == 5


@pytest.mark.slow
@pytest.mark.mirror
def test_shipped_release_matches_the_code():
    """The committed release re-extracts to the same values (a sample of every settings group)."""
    archive = release.default_archive()
    if not archive.exists():
        pytest.skip(f"no feature release committed at {archive}")
    report = release.verify_release(archive, per_group=2)
    assert report["ok"], report


def test_groups_that_save_least_time_per_byte_are_left_out_first():
    parts = {
        "radiomics/aaaa": {"entries": 10, "xz_bytes": 100, "extraction_s": 90.0},  # 0.9 s/B
        "deep/bbbb": {"entries": 10, "xz_bytes": 300, "extraction_s": 30.0},  # 0.1 s/B
        "deep/cccc": {"entries": 10, "xz_bytes": 200, "extraction_s": 100.0},  # 0.5 s/B
        "deep/dddd": {"entries": 10, "xz_bytes": 50, "extraction_s": None},
    }  # unknown: 0
    assert release.select_groups(parts, 10_000) == []
    out = release.select_groups(parts, 320)
    assert [g["group"] for g in out] == ["deep/dddd", "deep/bbbb"]  # 650 -> 600 -> 300 <= 320
    assert all("extracted by the book instead" in g["reason"] for g in out)


def test_build_leaves_out_groups_over_the_budget(run):
    full = release.build_release([run["log"]], run["archive"], max_bytes=None)
    assert full["left_out"] == [] and len(full["parts"]) == 2
    assert all(e.get("seconds") for e in full["entries"])  # every entry was extracted now: its cost is known
    budget = full["archive_bytes"] - min(p["xz_bytes"] for p in full["parts"].values()) // 2
    small = release.build_release([run["log"]], run["archive"], max_bytes=budget)
    assert len(small["left_out"]) >= 1 and small["archive_bytes"] <= budget
    assert {release._group(e) for e in small["entries"]} == set(small["parts"])
    assert not set(small["parts"]) & {g["group"] for g in small["left_out"]}
    rows = release.release_sizes(small)
    assert len(rows) == 2 and False in [r["in_release"] for r in rows]
