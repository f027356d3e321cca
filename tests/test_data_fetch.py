"""fetch(): mirror copy / download, sha256 and voxel-hash verification, stamps, offline errors."""

import gzip
import hashlib
import importlib
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import SimpleITK as sitk

from replicate.data import DataUnavailableError, VerificationError, fetch, list_datasets
from replicate.data.fetch import check_file, is_cached, voxel_sha256
from replicate.data.registry import Dataset, DatasetInfo, get_dataset
from replicate.io import sha256_file

# `replicate.data.fetch` is the function (re-exported by the package); the module is in sys.modules
fetch_mod = importlib.import_module("replicate.data.fetch")
MIRROR = os.environ.get("REPLICATE_DATA_MIRROR")
INFO = DatasetInfo(name="toy", title="toy", description="d", citation="c", licence="l", homepage="h")


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _nifti(path: Path, arr: np.ndarray, origin=(0.0, 0.0, 0.0), spacing=(1.0, 1.0, 2.0)) -> Path:
    img = sitk.GetImageFromArray(arr)
    img.SetOrigin(origin)
    img.SetSpacing(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), useCompression=True)
    return path


def _regzip(src: Path, dest: Path) -> Path:
    """Same NIfTI content, other gzip bytes (level and header mtime): a 're-encoded' copy."""
    raw = gzip.decompress(src.read_bytes())
    dest.write_bytes(gzip.compress(raw, compresslevel=1, mtime=123456))
    return dest


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A tiny registered data set and a mirror of it: two text files and one voxel-verified image."""
    mirror = tmp_path / "mirror"
    root = mirror / "toy"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.txt").write_text("bravo\n")
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) - 50
    img = _nifti(root / "P1" / "image.nii.gz", arr)
    rows = []
    for rel in ("a.txt", "sub/b.txt"):
        rows.append(
            {
                "path": rel,
                "url": f"https://example.invalid/toy/{rel}",
                "sha256": sha256_file(root / rel),
                "size": (root / rel).stat().st_size,
                "verify": "file",
            }
        )
    rows.append(
        {
            "path": "P1/image.nii.gz",
            "url": "https://example.invalid/toy/P1/image.nii.gz",
            "sha256": sha256_file(img),
            "size": img.stat().st_size,
            "verify": "voxel",
            "voxel_sha256": _sha(arr.tobytes()),
            "dtype": "int16",
            "size_xyz": "6x5x4",
            "origin_mm": "0 0 0",
            "spacing_mm": "1 1 2",
        }
    )
    ds = Dataset(INFO, pd.DataFrame(rows))
    cache = tmp_path / "cache"
    monkeypatch.setenv("REPLICATE_DATA_DIR", str(cache))
    monkeypatch.setenv("REPLICATE_DATA_MIRROR", str(mirror))
    return ds, mirror, cache, arr


def test_fetch_from_mirror_verifies_copies_and_stamps(toy, monkeypatch):
    ds, mirror, cache, _ = toy
    root = fetch(ds, progress=False)
    assert root == cache / "toy"
    assert (root / "a.txt").read_text() == "alpha\n" and (root / "sub" / "b.txt").read_text() == "bravo\n"
    assert (root / "P1" / "image.nii.gz").is_file()
    # copies, not links: the mirror is safe from anything done to the cache
    assert (root / "a.txt").stat().st_ino != (mirror / "toy" / "a.txt").stat().st_ino
    for rel in ("a.txt", "sub/b.txt", "P1/image.nii.gz"):
        assert (root / ".verified" / f"{rel}.json").is_file()
    assert is_cached(ds)
    assert not list(root.rglob(".part-*"))

    # a second fetch neither copies nor hashes again
    def boom(*a, **k):
        raise AssertionError("re-copied or re-hashed a verified file")

    monkeypatch.setattr(fetch_mod.shutil, "copyfile", boom)
    monkeypatch.setattr(fetch_mod, "sha256_file", boom)
    assert fetch(ds, progress=False) == root


def test_tampered_mirror_file_is_rejected_and_not_kept(toy):
    ds, mirror, cache, _ = toy
    (mirror / "toy" / "sub" / "b.txt").write_text("tampered\n")
    expected = ds.file("sub/b.txt")["sha256"]
    actual = sha256_file(mirror / "toy" / "sub" / "b.txt")
    with pytest.raises(VerificationError) as err:
        fetch(ds, progress=False)
    msg = str(err.value)
    assert "sub/b.txt" in msg and expected in msg and actual in msg
    root = cache / "toy"
    assert not (root / "sub" / "b.txt").exists()
    assert not (root / ".verified" / "sub" / "b.txt.json").exists()
    assert not list(root.rglob(".part-*"))
    # the good files are kept and stamped
    assert (root / "a.txt").is_file() and (root / "P1" / "image.nii.gz").is_file()
    assert not is_cached(ds)


def test_file_changed_in_the_cache_is_verified_again_and_replaced(toy):
    ds, mirror, cache, _ = toy
    root = fetch(ds, progress=False)
    (root / "a.txt").write_text("edited in the cache\n")
    assert not is_cached(ds)  # size/mtime no longer match the stamp
    fetch(ds, progress=False)
    assert (root / "a.txt").read_text() == "alpha\n"
    assert is_cached(ds)


def test_unstamped_good_file_in_cache_is_adopted(toy, monkeypatch):
    ds, mirror, cache, _ = toy
    root = cache / "toy"
    root.mkdir(parents=True)
    shutil.copy(mirror / "toy" / "a.txt", root / "a.txt")
    copied = []
    real = fetch_mod.shutil.copyfile
    monkeypatch.setattr(fetch_mod.shutil, "copyfile", lambda s, d: copied.append(Path(s).name) or real(s, d))
    fetch(ds, progress=False)
    assert "a.txt" not in copied and (root / ".verified" / "a.txt.json").is_file()


def test_voxel_hash_accepts_reencoded_image(toy):
    ds, mirror, cache, _ = toy
    src = mirror / "toy" / "P1" / "image.nii.gz"
    tmp = src.with_name("x.nii.gz")
    _regzip(src, tmp)
    os.replace(tmp, src)
    row = ds.file("P1/image.nii.gz")
    assert sha256_file(src) != row["sha256"]
    check = check_file(src, row)
    assert check.ok and check.matched == "voxel"
    root = fetch(ds, progress=False)
    import json

    stamp = json.loads((root / ".verified" / "P1" / "image.nii.gz.json").read_text())
    assert stamp["matched"] == "voxel"


def test_voxel_hash_rejects_changed_voxels(toy):
    ds, mirror, cache, arr = toy
    bad = arr.copy()
    bad[0, 0, 0] += 1
    _nifti(mirror / "toy" / "P1" / "image.nii.gz", bad)
    with pytest.raises(VerificationError) as err:
        fetch(ds, progress=False)
    row = ds.file("P1/image.nii.gz")
    assert "P1/image.nii.gz" in str(err.value) and row["voxel_sha256"] in str(err.value)
    assert _sha(bad.tobytes()) in str(err.value)
    assert not (cache / "toy" / "P1" / "image.nii.gz").exists()


def test_a_file_mode_row_does_not_fall_back_to_voxels(toy):
    ds, mirror, cache, _ = toy
    row = ds.file("P1/image.nii.gz").copy()
    row["verify"] = "file"
    src = mirror / "toy" / "P1" / "image.nii.gz"
    _regzip(src, src.with_name("y.nii.gz"))
    assert not check_file(src.with_name("y.nii.gz"), row).ok


def test_mirror_without_the_file(toy):
    ds, mirror, cache, _ = toy
    (mirror / "toy" / "a.txt").unlink()
    with pytest.raises(DataUnavailableError, match="not in the mirror"):
        fetch(ds, progress=False)


def test_offline_without_mirror_is_a_clear_error(toy, monkeypatch):
    ds, mirror, cache, _ = toy
    monkeypatch.delenv("REPLICATE_DATA_MIRROR")
    calls = []

    def offline(url, **kw):
        calls.append(url)
        raise requests.exceptions.ConnectionError(f"Failed to resolve host for {url}")

    monkeypatch.setattr("pooch.retrieve", offline)
    with pytest.raises(DataUnavailableError) as err:
        fetch(ds, progress=False)
    msg = str(err.value)
    assert "'toy'" in msg and calls[0] in msg and "REPLICATE_DATA_MIRROR" in msg and "online" in msg
    assert len(calls) == 1  # stops at the first failure
    assert not list((cache / "toy").rglob("*.txt"))


def test_mirror_only_file_is_never_downloaded(toy, monkeypatch):
    """A ``verify = mirror`` row (data the mirror derived) says where to get it instead of downloading its url."""
    ds, mirror, cache, _ = toy
    files = ds.files.copy()
    files.loc[files["path"] == "a.txt", ["verify", "source"]] = ["mirror", "parsed by the mirror"]
    derived = Dataset(INFO, files)
    fetch(derived, progress=False, files=["a.txt"])  # from the mirror: copied and verified as usual
    assert (cache / "toy" / "a.txt").read_text() == "alpha\n"
    (cache / "toy" / "a.txt").unlink()
    monkeypatch.delenv("REPLICATE_DATA_MIRROR")
    calls = []
    monkeypatch.setattr("pooch.retrieve", lambda url, **kw: calls.append(url))
    with pytest.raises(DataUnavailableError, match="exists only in a data mirror") as err:
        fetch(derived, progress=False, files=["a.txt"])
    assert "parsed by the mirror" in str(err.value) and "REPLICATE_DATA_MIRROR" in str(err.value)
    assert calls == []


def test_offline_error_for_a_registered_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATE_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("REPLICATE_DATA_MIRROR", raising=False)
    monkeypatch.setattr(
        "pooch.retrieve",
        lambda url, **kw: (_ for _ in ()).throw(requests.exceptions.ConnectTimeout(f"timed out: {url}")),
    )
    with pytest.raises(DataUnavailableError) as err:
        fetch("worc_lipo", progress=False)
    assert "worc_lipo" in str(err.value) and "raw.githubusercontent.com" in str(err.value)


def _fake_pooch(upstream: Path, seen: list):
    """pooch.retrieve stand-in serving files from a local 'upstream' folder (checks known_hash like pooch)."""

    def retrieve(url, known_hash=None, fname=None, path=None, **kw):
        seen.append((url, known_hash))
        src = upstream / url.split("/toy/", 1)[1]
        data = src.read_bytes()
        if known_hash is not None and known_hash.split(":", 1)[1] != _sha(data):
            raise ValueError(
                f"SHA256 hash of downloaded file ({fname}) does not match the known hash: expected "
                f"{known_hash.split(':', 1)[1]} but got {_sha(data)}. Deleted download for safety."
            )
        out = Path(path) / fname
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        return str(out)

    return retrieve


def test_download_with_pooch_and_rebuild_of_a_cropped_image(toy, tmp_path, monkeypatch):
    ds, mirror, cache, arr = toy
    monkeypatch.delenv("REPLICATE_DATA_MIRROR")
    # upstream holds the uncropped image: the registered one is its sub-block at index (x=2, y=1, z=3)
    upstream = tmp_path / "upstream"
    shutil.copytree(mirror / "toy", upstream)
    big = np.zeros((10, 9, 11), dtype=np.float32)
    big[3:7, 1:6, 2:8] = arr
    _nifti(upstream / "P1" / "image.nii.gz", big, origin=(-2.0, -1.0, -6.0))
    seen = []
    monkeypatch.setattr("pooch.retrieve", _fake_pooch(upstream, seen))
    root = fetch(ds, progress=False)
    assert ("https://example.invalid/toy/a.txt", f"sha256:{ds.file('a.txt')['sha256']}") in seen
    assert ("https://example.invalid/toy/P1/image.nii.gz", None) in seen  # voxel rows: verified after the crop
    got = sitk.ReadImage(str(root / "P1" / "image.nii.gz"))
    assert got.GetSize() == (6, 5, 4) and np.allclose(got.GetOrigin(), (0, 0, 0))
    assert sitk.GetArrayFromImage(got).dtype == np.int16
    assert voxel_sha256(root / "P1" / "image.nii.gz") == ds.file("P1/image.nii.gz")["voxel_sha256"]
    assert not (root / ".download").exists() or not any((root / ".download").iterdir())
    assert is_cached(ds)


def test_download_hash_mismatch_is_rejected(toy, tmp_path, monkeypatch):
    ds, mirror, cache, _ = toy
    monkeypatch.delenv("REPLICATE_DATA_MIRROR")
    upstream = tmp_path / "upstream"
    shutil.copytree(mirror / "toy", upstream)
    (upstream / "a.txt").write_text("changed upstream\n")
    monkeypatch.setattr("pooch.retrieve", _fake_pooch(upstream, []))
    with pytest.raises(VerificationError) as err:
        fetch(ds, progress=False)
    assert "a.txt" in str(err.value) and ds.file("a.txt")["sha256"] in str(err.value)
    assert _sha(b"changed upstream\n") in str(err.value)
    assert not (cache / "toy" / "a.txt").exists()


def test_fetch_subset_and_unknown_file(toy):
    ds, mirror, cache, _ = toy
    root = fetch(ds, progress=False, files=["a.txt"])
    assert (root / "a.txt").is_file() and not (root / "sub" / "b.txt").exists()
    with pytest.raises(KeyError):
        fetch(ds, progress=False, files=["zzz"])


def test_worc_images_fail_offline_with_a_clear_message(tmp_path):
    from replicate.data.xnat_images import fetch_worc_lipo_images

    # a closed local port: fails at once, no real network
    with pytest.raises(DataUnavailableError) as err:
        fetch_worc_lipo_images(tmp_path / "img", server="http://127.0.0.1:9", timeout=2, progress=False)
    msg = str(err.value)
    assert "WORC" in msg and "127.0.0.1:9" in msg and "internet" in msg
    with pytest.raises(KeyError):
        fetch_worc_lipo_images(tmp_path / "img", dataset="Nope")


def test_worc_images_default_server_is_worc_xnat():
    from replicate.data import xnat_images

    assert xnat_images.WORC_XNAT_URL == "https://xnat.bmia.nl" and xnat_images.WORC_PROJECT == "worc"


# --------------------------------------------------------------------------- the real mirror


@pytest.fixture(scope="session")
def full_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("full_fetch_cache")


@pytest.mark.mirror
@pytest.mark.slow
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_fetch_ibsi_sts_verifies_all_204_images_from_the_mirror(full_cache, monkeypatch):
    monkeypatch.setenv("REPLICATE_DATA_DIR", str(full_cache))
    root = fetch("ibsi_sts", progress=False)
    files = get_dataset("ibsi_sts").files
    images = files[files["path"].str.endswith(".nii.gz")]
    assert len(images) == 204
    for rel, _sha in zip(images["path"], images["sha256"]):
        assert (root / ".verified" / f"{rel}.json").is_file(), rel
    # an independent re-hash of every cached image, by file and by voxel array (the registered voxel
    # hashes are what accepts a copy rebuilt from upstream, so they must hold for every image)
    assert all(sha256_file(root / rel) == sha for rel, sha in zip(images["path"], images["sha256"]))
    assert all(voxel_sha256(root / rel) == vox for rel, vox in zip(images["path"], images["voxel_sha256"]))
    assert list_datasets().set_index("name").loc["ibsi_sts", "cached"]


@pytest.mark.mirror
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_real_image_reencoded_is_accepted_by_voxel_hash(tmp_path, monkeypatch):
    rel = "STS_001/CT_image.nii.gz"
    mirror = tmp_path / "mirror"
    (mirror / "ibsi_sts" / "STS_001").mkdir(parents=True)
    _regzip(Path(MIRROR) / "ibsi_sts" / rel, mirror / "ibsi_sts" / rel)
    monkeypatch.setenv("REPLICATE_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("REPLICATE_DATA_DIR", str(tmp_path / "cache"))
    row = get_dataset("ibsi_sts").file(rel)
    assert sha256_file(mirror / "ibsi_sts" / rel) != row["sha256"]
    root = fetch("ibsi_sts", progress=False, files=[rel])
    assert voxel_sha256(root / rel) == row["voxel_sha256"]
