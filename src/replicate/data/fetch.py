"""Get a public data set into the cache, verified file by file.

``fetch(name)`` puts every registered file of ``name`` under
``replicate.config.data_dir() / name`` and returns that folder:

* with ``REPLICATE_DATA_MIRROR`` set, each file is **copied** from
  ``<mirror>/<name>/<path>`` (a copy, not a link, so nothing done to the cache
  can touch the mirror);
* otherwise it is **downloaded** from its upstream URL with ``pooch`` (with the
  registered sha256 as ``known_hash``); a ``verify = mirror`` row (data the
  mirror derived, e.g. ``ibsi_phantoms/reference_values.csv``) has no upstream
  copy and raises ``DataUnavailableError`` saying so. ``ibsi_sts`` images are published
  upstream uncropped: they are downloaded, cropped to the registered geometry
  (the mirror's crop: mask bounding box + 20 mm), cast to the registered dtype,
  and then verified by their voxel hash.

Verification. A ``file`` row must match its sha256. A ``voxel`` row (the
``ibsi_sts`` NIfTI files) is accepted when its sha256 matches or, failing
that, when the sha256 of its voxel array (SimpleITK ``GetArrayFromImage``,
numpy C order) matches ``voxel_sha256`` — a copy re-encoded or rebuilt from
upstream has other bytes but the same voxels. A file that fails is never kept:
it is written to a temporary name, verified, and only then renamed into place
(or deleted), and the error names the file and both hashes.

Once verified, a file gets a small stamp ``<root>/.verified/<path>.json``
recording its size, mtime and the expected hashes; a later ``fetch`` whose
stamp still matches does not re-copy or re-hash the file. A cached file whose
stamp does not match (edited, replaced, registry changed) is verified again
and replaced when it fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from ..io import atomic_write_json, sha256_file
from .registry import DATASET_INFO, Dataset, get_dataset

STAMP_DIR = ".verified"
STAGING_DIR = ".download"
STAMP_VERSION = 1
DOWNLOAD_TIMEOUT_S = float(os.environ.get("REPLICATE_DOWNLOAD_TIMEOUT", "60"))


class DataUnavailableError(RuntimeError):
    """A data set cannot be obtained here (offline without a mirror, or the mirror lacks a file)."""


class VerificationError(ValueError):
    """One or more files did not match their registered hashes (they were not kept)."""


@dataclass
class Check:
    ok: bool
    matched: str = ""  # "file" or "voxel"
    actual_sha256: str = ""
    actual_voxel_sha256: str = ""
    detail: str = ""


# --------------------------------------------------------------------------- hashing


def voxel_sha256(path: str | os.PathLike) -> str:
    """sha256 of an image's voxel array as SimpleITK reads it (z-y-x, numpy C order, stored dtype)."""
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    return _array_sha256(arr)


def _array_sha256(arr: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def check_file(path: str | os.PathLike, row) -> Check:
    """Verify ``path`` against one registry row (``sha256``, ``verify``, ``voxel_sha256``)."""
    actual = sha256_file(path)
    if actual == row["sha256"]:
        return Check(True, "file", actual)
    if row["verify"] != "voxel":
        return Check(False, "", actual, detail=f"sha256 expected {row['sha256']}, got {actual}")
    try:
        vox = voxel_sha256(path)
    except Exception as exc:  # not an image SimpleITK can read
        return Check(
            False,
            "",
            actual,
            detail=(
                f"sha256 expected {row['sha256']}, got {actual}; voxel array unreadable ({type(exc).__name__}: {exc})"
            ),
        )
    if vox == row["voxel_sha256"]:
        return Check(True, "voxel", actual, vox)
    return Check(
        False,
        "",
        actual,
        vox,
        detail=(
            f"sha256 expected {row['sha256']}, got {actual}; voxel_sha256 expected {row['voxel_sha256']}, got {vox}"
        ),
    )


# --------------------------------------------------------------------------- stamps


def _stamp_path(root: Path, rel: str) -> Path:
    return root / STAMP_DIR / f"{rel}.json"


def _stamp_key(row) -> dict:
    return {
        "version": STAMP_VERSION,
        "sha256": row["sha256"],
        "voxel_sha256": row["voxel_sha256"],
        "verify": row["verify"],
    }


def _stamp_valid(root: Path, row) -> bool:
    import json

    dest, stamp = root / row["path"], _stamp_path(root, row["path"])
    try:
        st = dest.stat()
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return (
        all(data.get(k) == v for k, v in _stamp_key(row).items())
        and data.get("size") == st.st_size
        and data.get("mtime_ns") == st.st_mtime_ns
    )


def _write_stamp(root: Path, row, check: Check) -> None:
    st = (root / row["path"]).stat()
    atomic_write_json(
        _stamp_path(root, row["path"]),
        dict(
            _stamp_key(row),
            path=row["path"],
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            matched=check.matched,
            verified_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ),
    )


def _discard(root: Path, rel: str) -> None:
    for p in (root / rel, _stamp_path(root, rel)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------- obtaining one file


def _temp_beside(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    # keep the file's own name (and extension) at the end: SimpleITK picks its reader by extension
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-", suffix=f"-{dest.name}")
    os.close(fd)
    return Path(tmp)


def _install(tmp: Path, dest: Path, row, root: Path, origin: str) -> Check:
    """Verify ``tmp``; rename it to ``dest`` when it passes, delete it otherwise."""
    try:
        check = check_file(tmp, row)
        if not check.ok:
            raise VerificationError(f"{root.name}/{row['path']} (from {origin}) rejected and not kept: {check.detail}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    _write_stamp(root, row, check)
    return check


def _from_mirror(mirror: Path, name: str, row, root: Path) -> Check:
    src = mirror / name / row["path"]
    if not src.is_file():
        raise DataUnavailableError(
            f"data set {name!r}: {row['path']} is not in the mirror REPLICATE_DATA_MIRROR={mirror} (looked for "
            f"{src}). Point REPLICATE_DATA_MIRROR at a complete mirror (laid out <mirror>/{name}/<files>), or "
            f"unset it to download from upstream ({row['url']})."
        )
    dest = root / row["path"]
    tmp = _temp_beside(dest)
    shutil.copyfile(src, tmp)
    return _install(tmp, dest, row, root, f"mirror {src}")


def _unavailable(name: str, url: str, exc: BaseException) -> DataUnavailableError:
    return DataUnavailableError(
        f"data set {name!r} is not available: downloading {url} failed ({type(exc).__name__}: {exc}). "
        f"To get it, either set REPLICATE_DATA_MIRROR to a local copy laid out as <mirror>/{name}/<files> "
        f"(e.g. ../shared/data), or go online and run `replicate data fetch {name}` "
        f"(files are cached in {config.data_dir() / name})."
    )


def _download(name: str, row, root: Path) -> Check:
    import pooch
    import requests

    if row["verify"] == "mirror":
        raise DataUnavailableError(
            f"data set {name!r}: {row['path']} exists only in a data mirror ({row['source'] or 'derived data'}; "
            f"source {row['url']}). Set REPLICATE_DATA_MIRROR to a mirror laid out <mirror>/{name}/<files> "
            f"(e.g. ../shared/data)."
        )
    dest = root / row["path"]
    staging = root / STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    fname = row["path"].replace("/", "__")
    voxel = row["verify"] == "voxel"
    known = None if voxel else f"sha256:{row['sha256']}"
    try:
        got = Path(
            pooch.retrieve(
                row["url"],
                known_hash=known,
                fname=fname,
                path=staging,
                progressbar=False,
                downloader=pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT_S),
            )
        )
    except ValueError as exc:  # pooch: hash mismatch (the download was deleted)
        raise VerificationError(
            f"{name}/{row['path']} downloaded from {row['url']} rejected and not kept: "
            f"expected sha256 {row['sha256']}; {exc}"
        ) from exc
    except (requests.exceptions.RequestException, OSError) as exc:
        raise _unavailable(name, row["url"], exc) from exc
    tmp = _temp_beside(dest)
    try:
        if voxel and sha256_file(got) != row["sha256"]:
            rebuild_to_registry_geometry(got, row, tmp)
        else:
            shutil.copyfile(got, tmp)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        got.unlink(missing_ok=True)
    return _install(tmp, dest, row, root, row["url"])


_DTYPES = {"int16": np.int16, "uint8": np.uint8, "int32": np.int32, "uint16": np.uint16, "float32": np.float32}


def rebuild_to_registry_geometry(src: str | os.PathLike, row, out: str | os.PathLike) -> Path:
    """Crop an upstream image to the registered grid (``size_xyz`` at ``origin_mm``) and cast it.

    This is the mirror's derivation (README of ``ibsi_sts``, steps 2–3): the
    crop box is read from the registry rather than recomputed, so the result
    has exactly the registered voxels when upstream is unchanged. The voxel
    hash is checked afterwards by the caller.
    """
    import SimpleITK as sitk

    img = sitk.ReadImage(str(src))
    if row["size_xyz"] and row["origin_mm"]:
        size = [int(v) for v in str(row["size_xyz"]).split("x")]
        origin = [float(v) for v in str(row["origin_mm"]).split()]
        start = [int(round(v)) for v in img.TransformPhysicalPointToContinuousIndex(origin)]
        full = img.GetSize()
        if any(s < 0 or s + n > f for s, n, f in zip(start, size, full)):
            raise VerificationError(
                f"{row['path']}: registered crop (start {start}, size {size}) lies outside "
                f"the downloaded image (size {list(full)})"
            )
        if list(start) != [0, 0, 0] or list(size) != list(full):
            img = sitk.RegionOfInterest(img, size, start)
    arr = sitk.GetArrayFromImage(img)
    dtype = _DTYPES.get(str(row["dtype"]))
    if dtype is not None and arr.dtype != dtype:
        arr = np.rint(arr).astype(dtype) if np.issubdtype(arr.dtype, np.floating) else arr.astype(dtype)
    new = sitk.GetImageFromArray(arr)
    new.CopyInformation(img)
    sitk.WriteImage(new, str(out), useCompression=True)
    return Path(out)


# --------------------------------------------------------------------------- public API


def dataset_root(name: str) -> Path:
    """Where ``fetch(name)`` puts the data set (``config.data_dir() / name``); not created."""
    return config.data_dir() / name


def _fetch_file(name: str, row, root: Path, mirror: Path | None) -> str | None:
    """Make one registered file present and verified; returns the verification failure, if any."""
    dest = root / row["path"]
    if _stamp_valid(root, row):
        return None
    if dest.is_file():  # present but not (or no longer) stamped: verify in place
        check = check_file(dest, row)
        if check.ok:
            _write_stamp(root, row, check)
            return None
        _discard(root, row["path"])
    try:
        if mirror is not None:
            _from_mirror(mirror, name, row, root)
        else:
            _download(name, row, root)
    except VerificationError as exc:
        _discard(root, row["path"])
        return str(exc)
    return None


def fetch(name: str | Dataset, progress: bool = True, *, files: list[str] | None = None) -> Path:
    """Make every file of data set ``name`` present and verified in the cache; return its root folder.

    ``files`` restricts the work to some relative paths. Raises
    ``DataUnavailableError`` when a file cannot be obtained (offline without a
    mirror; a mirror lacking the file) and ``VerificationError`` listing every
    file that did not match its hashes (those files are deleted).
    """
    from tqdm.auto import tqdm

    from .. import progress as prog

    ds = get_dataset(name)
    table = ds.files
    if files is not None:
        wanted = set(files)
        unknown = sorted(wanted - set(table["path"]))
        if unknown:
            raise KeyError(f"{ds.name}: not registered: {unknown[:5]}")
        table = table[table["path"].isin(wanted)]
    root = dataset_root(ds.name)
    root.mkdir(parents=True, exist_ok=True)
    mirror = config.mirror_dir()
    failures: list[str] = []
    rows = [r for _, r in table.iterrows()]
    with prog.stage(f"fetch/verify {ds.name}", total=len(rows), unit="file"):
        for i, row in enumerate(
            tqdm(rows, desc=f"{ds.name} ({'mirror' if mirror else 'download'})", unit="file", disable=not progress), 1
        ):
            prog.tick(i)
            failure = _fetch_file(ds.name, row, root, mirror)
            if failure:
                failures.append(failure)
    staging = root / STAGING_DIR
    if staging.is_dir() and not any(staging.iterdir()):
        staging.rmdir()
    if failures:
        head = "\n  ".join(failures[:20])
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        raise VerificationError(
            f"data set {ds.name!r}: {len(failures)} file(s) failed verification and were "
            f"removed from the cache:\n  {head}{more}"
        )
    return root


def cached_status(name: str | Dataset) -> pd.DataFrame:
    """Per file: ``path`` and ``verified`` (present with a matching stamp; no hashing)."""
    ds = get_dataset(name)
    root = dataset_root(ds.name)
    ok = [_stamp_valid(root, r) for _, r in ds.files.iterrows()]
    return pd.DataFrame({"path": ds.files["path"], "verified": ok})


def is_cached(name: str | Dataset) -> bool:
    """True when every file of the data set is in the cache with a valid verified-stamp."""
    return bool(cached_status(name)["verified"].all())


def list_datasets() -> pd.DataFrame:
    """The registered data sets: name, title, files, size_mb, citation, licence, cached."""
    rows = []
    for name, info in DATASET_INFO.items():
        ds = get_dataset(name)
        rows.append(
            {
                "name": name,
                "title": info.title,
                "files": len(ds.files),
                "size_mb": round(ds.total_size / 1e6, 1),
                "citation": info.citation,
                "licence": info.licence,
                "cached": is_cached(ds),
            }
        )
    return pd.DataFrame(rows)
