"""PyRadiomics handcrafted features with a per-case cache, checks of the input, and joblib / Dask parallelism.

    table = extract_radiomics(cohort.cases("T1"), "sts", n_jobs=2)
    table.features      # index = case id, columns = PyRadiomics names (``original_firstorder_Mean`` ...)
    table.failures      # case_id, reason: every case that could not be used, and why
    table.info          # settings hash, versions, per-case diagnostics and timings

How it works
------------
* ``load_params`` reads a PyRadiomics parameter file (a name resolves to
  ``src/replicate/params/<name>.yaml``). The settings are validated by PyRadiomics
  itself and brought to a canonical form (all defaults filled in); its hash keys the cache.
* Each case is hashed (sha256 of the image file and of the mask file). The cache
  entry ``<cache>/radiomics/<settings hash>/<key>.json`` is keyed on (image hash,
  mask hash, settings hash, label, PyRadiomics version) and written atomically
  (temporary file + ``os.replace``): a run that is interrupted or killed resumes
  without redoing finished cases and never leaves a half-written entry.
* Before PyRadiomics runs, the case is checked (``read_case``): unreadable /
  truncated files, image/mask size, spacing, origin or direction mismatch (beyond
  ``geometry_tolerance`` mm), an empty mask, a one-voxel mask, labels other than
  0 and ``label``, non-finite image voxels. After it runs, NaN/inf features are
  reported. Each problem becomes one row of ``FeatureTable.failures`` naming the
  case and the problem; the other cases go on (``strict=True`` raises instead).
  ITK reads a truncated NIfTI (.nii or .nii.gz) without complaint, so gzip streams
  and NIfTI data sizes are verified first. A geometry difference within the
  tolerance (header rounding) is resolved by giving the mask the image's geometry
  (voxels unchanged; noted in the case's diagnostics).
* The per-case function ``_extract_case`` is the same whether the cases run in
  this process (``n_jobs=1``), in joblib's loky workers (``n_jobs>1``) or on a
  Dask cluster (``scheduler="tcp://..."`` or a ``distributed.Client``; the workers
  need ``replicate`` installed and the image paths and cache folder reachable).
  Results do not depend on the route: PyRadiomics is deterministic, and a case's
  cache entry is the same file whichever worker wrote it. Without ``scheduler=``,
  ``REPLICATE_SCHEDULER`` (``replicate.parallel``) names the cluster, if set.
* Progress: one ``replicate.progress`` stage per call (``PyRadiomics <params>``, or
  ``PyRadiomics <params> (perturbed masks)`` when every mask is a ``perturbed_cases`` file)
  with a case counter; its end event counts cache hits and extractions. Every entry used is
  logged for the feature release (``replicate.features.release``), and with
  ``REPLICATE_FEATURE_FRESH_SINCE`` set (``make book FROM=images``) entries written before that
  time are re-extracted.

2-D images (PNG, e.g. ultrasound) are read with SimpleITK and handled as 2-D
images by PyRadiomics. If the settings enable ``shape`` but not ``shape2D``, the
2-D extractor computes ``shape2D`` instead (3-D shape does not exist in 2-D).
RGB(A) images whose colour channels are equal are read as grey; true colour is
converted to luminance (0.299 R + 0.587 G + 0.114 B) and noted in the diagnostics.
A mask whose values are exactly {0, 255} (the usual 8-bit PNG mask) is binarised
to {0, 1}; any other label set except {0, label} is reported, never binarised silently.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import progress as prog
from ..config import feature_cache_dir, params_dir
from ..data.cohort import Case
from ..io import atomic_write_text, sha256_file, stable_hash
from ..parallel import describe, get_client, resolve_scheduler
from . import release
from .table import FeatureTable

CACHE_FORMAT = 1
DEFAULT_GEOMETRY_TOLERANCE = 1e-3  # mm (spacing, origin) and direction cosines
_MAX_NAMES_IN_MESSAGE = 8


# ----------------------------------------------------------------------------- errors


class CaseError(ValueError):
    """A problem with one case's input; ``kind`` is a short name used in the failure reason."""

    kind = "CaseError"

    def __init__(self, case_id: str, message: str):
        super().__init__(f"case {case_id}: {message}")
        self.case_id = case_id

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self}"


class ReadError(CaseError):
    kind = "ReadError"


class GeometryMismatch(CaseError):
    kind = "GeometryMismatch"


class EmptyMask(CaseError):
    kind = "EmptyMask"


class SingleVoxelMask(CaseError):
    kind = "SingleVoxelMask"


class UnexpectedLabels(CaseError):
    kind = "UnexpectedLabels"


class NonFiniteImage(CaseError):
    kind = "NonFiniteImage"


class NonFiniteFeatures(CaseError):
    kind = "NonFiniteFeatures"


class ExtractionFailed(CaseError):
    kind = "ExtractionFailed"


class ExtractionError(RuntimeError):
    """Raised by ``extract_radiomics(..., strict=True)`` when a case fails."""


# ----------------------------------------------------------------------------- parameters


def _pyradiomics_version() -> str:
    import radiomics

    return str(radiomics.__version__)


def load_params(params: str | os.PathLike | Mapping | None = "default") -> dict:
    """A PyRadiomics parameter dict from a name, a path (.yaml/.yml/.json) or a dict.

    A bare name (no suffix, no folder) resolves to ``src/replicate/params/<name>.yaml``.
    The dict is validated by PyRadiomics' own schema (an invalid setting raises here,
    before any case runs). Returned as read (a deep copy), not canonicalised.
    """
    return _load_validated(params)[0]


def _load_validated(params) -> tuple[dict, Any]:
    """(parameter dict as read, the 3-D extractor built from it: validation by PyRadiomics' schema)."""
    if params is None:
        params = "default"
    if isinstance(params, Mapping):
        out = copy.deepcopy(dict(params))
    else:
        p = Path(params)
        if p.suffix.lower() not in {".yaml", ".yml", ".json"} and len(p.parts) == 1 and not p.exists():
            p = params_dir() / f"{p.name}.yaml"
        if not p.is_file():
            known = sorted(x.stem for x in params_dir().glob("*.yaml"))
            raise FileNotFoundError(f"PyRadiomics parameter file {p} not found (known names: {known})")
        text = p.read_text()
        if p.suffix.lower() == ".json":
            out = json.loads(text)
        else:
            import yaml

            out = yaml.safe_load(text) or {}
    if not isinstance(out, dict):
        raise ValueError(f"PyRadiomics parameters must be a mapping, got {type(out).__name__}")
    return out, _make_extractor(out)  # validates (pykwalify schema of PyRadiomics)


def _quiet_radiomics() -> None:
    """PyRadiomics' own stderr handler to ERROR; its warnings are collected per case instead."""
    import radiomics

    if not getattr(_quiet_radiomics, "done", False):
        radiomics.setVerbosity(logging.ERROR)
        rlog = logging.getLogger("radiomics")
        if rlog.level < logging.WARNING and rlog.handlers == [radiomics.handler]:
            rlog.setLevel(logging.WARNING)  # as the pyradiomics CLI does: INFO records are not even built
        _quiet_radiomics.done = True


def _make_extractor(params: Mapping, ndim: int = 3):
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    _quiet_radiomics()
    params = copy.deepcopy(dict(params))
    if ndim == 2:
        fc = params.get("featureClass") or {}
        if "shape" in fc and "shape2D" not in fc:  # 3-D shape does not exist in 2-D: use shape2D in its place
            names = fc["shape"]
            if names:  # a list of 3-D shape features: keep those that exist in 2-D
                from radiomics.shape2D import RadiomicsShape2D

                valid = set(RadiomicsShape2D.getFeatureNames())
                names = [n for n in names if n in valid] or None
            params["featureClass"] = {
                ("shape2D" if k == "shape" else k): (names if k == "shape" else v) for k, v in fc.items()
            }
    return RadiomicsFeatureExtractor(params)


def canonical_params(params, label: int | None = None) -> dict:
    """The settings as PyRadiomics applies them (defaults filled in); ``None`` feature lists become ``[]``."""
    return _canonical(_load_validated(params)[1], label)


def _canonical(ext, label: int | None = None) -> dict:
    settings = dict(ext.settings)
    if label is not None:
        settings["label"] = int(label)
    return {
        "imageType": {k: dict(v or {}) for k, v in ext.enabledImagetypes.items()},
        "featureClass": {k: list(v or []) for k, v in ext.enabledFeatures.items()},
        "setting": settings,
    }


def settings_hash(params, label: int | None = None) -> str:
    """sha256 of the canonical settings (+ label); part of every cache key."""
    return stable_hash(canonical_params(params, label))


_COUNT_CACHE: dict[tuple[str, int], int] = {}


def _synthetic_case(params: dict, ndim: int):
    """A small textured image with a sphere/disc mask large enough for the enabled LoG sigmas."""
    import SimpleITK as sitk

    sig = params.get("imageType", {}).get("LoG", {}) or {}
    sigmas = sig.get("sigma", []) or [0]
    n = int(max(24, 2 * math.ceil(max(sigmas)) + 14))
    rng = np.random.default_rng(0)
    shape = (n,) * ndim
    img = rng.normal(100.0, 20.0, shape) + np.linspace(0, 50, n)[(...,) + (None,) * (ndim - 1)]
    grid = np.indices(shape) - (n - 1) / 2
    mask = (np.sqrt((grid**2).sum(0)) <= n / 3).astype(np.uint8)
    return sitk.GetImageFromArray(img.astype(np.float32)), sitk.GetImageFromArray(mask)


def count_features(params="default", ndim: int = 3) -> int:
    """How many features the settings produce (runs the extractor once on a small synthetic case).

    A real case can give fewer when PyRadiomics skips a filter for it (e.g. a LoG
    sigma larger than the cropped image); ``extract_radiomics`` reports that.
    """
    canon = canonical_params(params)
    key = (stable_hash(canon), int(ndim))
    if key not in _COUNT_CACHE:
        img, msk = _synthetic_case(canon, ndim)
        ext = _make_extractor(canon, ndim)
        out = ext.execute(img, msk, label=1)
        _COUNT_CACHE[key] = sum(1 for k in out if not k.startswith("diagnostics_"))
    return _COUNT_CACHE[key]


# ----------------------------------------------------------------------------- reading and checks


def _gunzip_head_and_size(path: Path, head: int = 544) -> tuple[bytes, int]:
    """First ``head`` bytes and total size of a gzip file's content; raises ValueError if truncated/corrupt."""
    import zlib

    d = zlib.decompressobj(wbits=31)
    first, total = b"", 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            try:
                out = d.decompress(chunk)
                while d.unconsumed_tail:
                    out += d.decompress(d.unconsumed_tail)
            except zlib.error as e:
                raise ValueError(f"gzip stream is corrupt ({e})") from None
            if len(first) < head:
                first += out[: head - len(first)]
            total += len(out)
            if d.eof:
                break
    if not d.eof:
        raise ValueError("gzip stream ends before its end marker (file truncated)")
    return first, total


def _nifti_expected_size(hdr: bytes) -> int | None:
    """Bytes a NIfTI-1/2 file must have (header + voxels), from its header; None if not NIfTI."""
    import struct

    if len(hdr) < 348:
        return None
    for end in "<>":
        n = struct.unpack(end + "i", hdr[:4])[0]
        if n == 348:
            dims = struct.unpack(end + "8h", hdr[40:56])
            bitpix = struct.unpack(end + "h", hdr[72:74])[0]
            vox_offset = struct.unpack(end + "f", hdr[108:112])[0]
            break
        if n == 540 and len(hdr) >= 540:
            bitpix = struct.unpack(end + "h", hdr[14:16])[0]
            dims = struct.unpack(end + "8q", hdr[16:80])
            vox_offset = struct.unpack(end + "q", hdr[168:176])[0]
            break
    else:
        return None
    nd = int(dims[0])
    if not 1 <= nd <= 7 or bitpix <= 0:
        return None
    n_vox = int(np.prod([max(int(x), 1) for x in dims[1 : nd + 1]]))
    return int(vox_offset) + n_vox * int(bitpix) // 8


def check_file_complete(path: str | os.PathLike) -> None:
    """Raise ValueError when a .gz file is truncated/corrupt or a NIfTI file holds fewer bytes than its header says.

    (ITK reads truncated NIfTI files without complaint, filling the missing voxels.)
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".gz"):
        head, size = _gunzip_head_and_size(path)
    elif name.endswith(".nii"):
        with open(path, "rb") as fh:
            head = fh.read(544)
        size = path.stat().st_size
    else:
        return
    if name.endswith((".nii", ".nii.gz")):
        need = _nifti_expected_size(head)
        if need is not None and size < need:
            raise ValueError(f"NIfTI data is truncated: {size} bytes, the header needs {need}")


def _read(path: Path, what: str, case_id: str):
    import SimpleITK as sitk

    path = Path(path)
    if not path.exists():
        raise ReadError(case_id, f"{what} file {path} does not exist")
    try:
        check_file_complete(path)
    except (ValueError, OSError) as e:
        raise ReadError(case_id, f"cannot read {what} file {path} (unreadable, corrupt or truncated): {e}") from None
    try:
        return sitk.ReadImage(str(path))
    except Exception as e:  # SimpleITK raises RuntimeError with a long ITK trace
        first = str(e).strip().splitlines()
        msg = next((ln.strip() for ln in first if "Exception" in ln or "rror" in ln), first[-1] if first else "")
        raise ReadError(
            case_id, f"cannot read {what} file {path} (unreadable, corrupt or truncated): {msg[:300]}"
        ) from None


def _to_scalar(img, what: str, case_id: str, notes: dict):
    """RGB(A) PNG -> grey: equal channels -> first channel; colour -> luminance (noted)."""
    import SimpleITK as sitk

    nc = img.GetNumberOfComponentsPerPixel()
    if nc == 1:
        return img
    arr = sitk.GetArrayFromImage(img)
    if nc == 4:
        arr = arr[..., :3]
    if nc >= 3 and (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
        grey = arr[..., 0]
    elif nc == 2:  # grey + alpha
        grey = arr[..., 0]
    else:
        if what == "mask":
            raise UnexpectedLabels(
                case_id, f"mask has {nc} colour channels with different values; expected a single-channel label image"
            )
        grey = (0.299 * arr[..., 0] + 0.587 * arr[..., 1] + 0.114 * arr[..., 2]).astype(np.float32)
        notes[f"{what}_colour"] = "RGB converted to luminance 0.299R+0.587G+0.114B"
    out = sitk.GetImageFromArray(grey)
    out.SetSpacing(img.GetSpacing())
    out.SetOrigin(img.GetOrigin())
    out.SetDirection(img.GetDirection())
    return out


def check_geometry(image, mask, case_id: str = "?", tolerance: float = DEFAULT_GEOMETRY_TOLERANCE) -> None:
    """Raise ``GeometryMismatch`` unless image and mask share dimension, size, spacing, origin, direction."""
    if image.GetDimension() != mask.GetDimension():
        raise GeometryMismatch(case_id, f"image is {image.GetDimension()}-D but mask is {mask.GetDimension()}-D")
    if image.GetSize() != mask.GetSize():
        raise GeometryMismatch(case_id, f"image size {image.GetSize()} != mask size {mask.GetSize()}")
    for name, a, b in (
        ("spacing", image.GetSpacing(), mask.GetSpacing()),
        ("origin", image.GetOrigin(), mask.GetOrigin()),
        ("direction", image.GetDirection(), mask.GetDirection()),
    ):
        d = float(np.max(np.abs(np.subtract(a, b))))
        if d > tolerance:
            unit = "" if name == "direction" else " mm"
            raise GeometryMismatch(
                case_id,
                f"image/mask {name} differ by {d:.4g}{unit} (> {tolerance:g}): "
                f"image {tuple(round(x, 6) for x in a)}, "
                f"mask {tuple(round(x, 6) for x in b)}",
            )


def _label_counts(arr: np.ndarray) -> dict[float, int]:
    if arr.dtype.kind in "ui" and arr.dtype.itemsize <= 2 and arr.min() >= 0:
        bc = np.bincount(arr.ravel())
        nz = np.flatnonzero(bc)
        return {int(v): int(bc[v]) for v in nz}
    vals, counts = np.unique(arr, return_counts=True)
    return {(int(v) if float(v).is_integer() else float(v)): int(c) for v, c in zip(vals, counts)}


def read_case(
    case: Case, *, label: int = 1, geometry_tolerance: float = DEFAULT_GEOMETRY_TOLERANCE, multilabel: bool = False
):
    """Read and check one case; returns ``(image, mask, notes)`` (SimpleITK images) or raises ``CaseError``.

    ``mask`` holds only 0 and ``label`` (a {0, 255} mask is binarised to {0, 1} when
    ``label == 1``, noted in ``notes``). ``multilabel=True`` accepts other labels
    besides ``label`` (PyRadiomics then uses ``label`` only).
    """
    import SimpleITK as sitk

    cid = str(case.case_id)
    notes: dict[str, Any] = {}
    image = _to_scalar(_read(case.image, "image", cid), "image", cid, notes)
    mask = _to_scalar(_read(case.mask, "mask", cid), "mask", cid, notes)
    check_geometry(image, mask, cid, geometry_tolerance)
    if (
        image.GetSpacing() != mask.GetSpacing()
        or image.GetOrigin() != mask.GetOrigin()
        or image.GetDirection() != mask.GetDirection()
    ):
        # within the tolerance (header rounding): the mask takes the image's geometry, voxels unchanged
        d = max(
            float(np.max(np.abs(np.subtract(getattr(image, g)(), getattr(mask, g)()))))
            for g in ("GetSpacing", "GetOrigin", "GetDirection")
        )
        mask = sitk.Image(mask)
        mask.CopyInformation(image)
        notes["mask_geometry_copied"] = (
            f"mask geometry differed from the image's by {d:.3g} (<= tolerance); image geometry used"
        )

    marr = sitk.GetArrayViewFromImage(mask)
    counts = _label_counts(marr)
    labels = sorted(counts)
    if any(isinstance(v, float) and not math.isfinite(v) for v in labels):
        raise UnexpectedLabels(cid, f"mask {case.mask} has non-finite values")
    if label == 1 and 255 in counts and set(labels) <= {0, 255}:
        mask = sitk.Cast(sitk.BinaryThreshold(mask, 255, 255, 1, 0), sitk.sitkUInt8)
        counts = {0: counts.get(0, 0), 1: counts[255]}
        labels = sorted(counts)
        notes["mask_binarised"] = "mask values {0, 255} read as {0, 1}"
    n_roi = counts.get(label, 0)
    other = [v for v in labels if v not in (0, label)]
    if other and not multilabel:
        shown = labels if len(labels) <= 12 else labels[:12] + ["..."]
        raise UnexpectedLabels(
            cid,
            f"mask {case.mask} has labels {shown}; expected only 0 and {label} "
            "(not binarised silently: fix the mask, or pass label=/multilabel=True)",
        )
    if n_roi == 0:
        raise EmptyMask(
            cid,
            f"mask {case.mask} is empty: no voxel with label {label}"
            + (f" (labels found: {labels})" if labels != [0] else ""),
        )
    if n_roi == 1:
        raise SingleVoxelMask(
            cid,
            f"mask {case.mask} has a single voxel with label {label}; PyRadiomics needs "
            "an ROI of at least 2 voxels in 2 dimensions (texture and shape are "
            "undefined or NaN on one voxel)",
        )
    pix = image.GetPixelID()
    if pix in (sitk.sitkFloat32, sitk.sitkFloat64):
        arr = sitk.GetArrayViewFromImage(image)
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise NonFiniteImage(cid, f"image {case.image} has {bad} NaN/inf voxel(s)")
    notes["roi_voxels"] = n_roi
    return image, mask, notes


# ----------------------------------------------------------------------------- per-case work

_EXTRACTORS: dict[tuple[str, int], Any] = {}


class _WarningCollector(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.thread = threading.get_ident()  # Dask may run several cases at once in threads

    def emit(self, record):
        if record.thread != self.thread:
            return
        msg = record.getMessage()
        if msg not in self.messages:
            self.messages.append(msg)


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist() if v.ndim else v.item()
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def _extract_case(task: dict) -> dict:
    """Check, extract and cache one case. Top-level and picklable: runs in-process, in loky or on Dask.

    Returns ``{"case_id", "ok", "reason"?, "features"?, "diagnostics"?, "seconds"}``.
    """
    t0 = time.perf_counter()
    cid = task["case_id"]
    if task.get("itk_threads"):
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(task["itk_threads"]))
    case = Case(cid, Path(task["image"]), Path(task["mask"]))
    collector = _WarningCollector()
    rlog = logging.getLogger("radiomics")
    try:
        image, mask, notes = read_case(
            case, label=task["label"], geometry_tolerance=task["geometry_tolerance"], multilabel=task["multilabel"]
        )
        ndim = image.GetDimension()
        key = (task["settings_hash"], ndim)
        ext = _EXTRACTORS.get(key)
        if ext is None:
            ext = _EXTRACTORS[key] = _make_extractor(task["params"], ndim)
        rlog.addHandler(collector)
        try:
            out = ext.execute(image, mask, label=task["label"])
        except Exception as e:
            raise ExtractionFailed(
                cid,
                f"PyRadiomics failed ({type(e).__name__}: {str(e).strip()[:400]}) "
                f"on image {case.image} / mask {case.mask}",
            ) from None
        finally:
            rlog.removeHandler(collector)
    except CaseError as e:
        return {"case_id": cid, "ok": False, "reason": e.reason, "seconds": time.perf_counter() - t0}
    except Exception as e:  # anything unforeseen is still one failed case, not a failed run
        return {
            "case_id": cid,
            "ok": False,
            "seconds": time.perf_counter() - t0,
            "reason": f"{type(e).__name__}: case {cid}: {str(e)[:400]}",
        }
    features, diag = {}, {}
    for k, v in out.items():
        if k.startswith("diagnostics_"):
            if not k.startswith(("diagnostics_Versions", "diagnostics_Configuration")):
                diag[k[len("diagnostics_") :]] = _jsonable(v)
        else:
            features[k] = float(v)
    diag.update(notes)
    if collector.messages:
        diag["pyradiomics_warnings"] = collector.messages
    entry = {
        "format": CACHE_FORMAT,
        "key": task["key"],
        "case_id": cid,
        "image": str(case.image),
        "mask": str(case.mask),
        "image_sha256": task["image_sha256"],
        "mask_sha256": task["mask_sha256"],
        "settings_hash": task["settings_hash"],
        "pyradiomics": task["version"],
        "seconds": round(time.perf_counter() - t0, 4),
        "features": features,
        "diagnostics": diag,
    }
    if task.get("cache_file"):
        atomic_write_text(task["cache_file"], json.dumps(entry, allow_nan=True))
    entry["ok"] = True
    entry["seconds"] = time.perf_counter() - t0
    return entry


def _versions_info() -> dict:
    import radiomics
    import SimpleITK as sitk

    return {
        "pyradiomics": str(radiomics.__version__),
        "SimpleITK": sitk.Version_VersionString(),
        "numpy": np.__version__,
    }


_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def _file_hash(path: Path) -> str:
    st = os.stat(path)
    k = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    h = _HASH_MEMO.get(k)
    if h is None:
        h = _HASH_MEMO[k] = sha256_file(path)
    return h


def _load_entry(path: Path, key: str) -> dict | None:
    if not release.is_fresh(path):
        return None
    try:
        entry = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except Exception as e:  # never expected (writes are atomic); treat as a miss and redo the case
        warnings.warn(f"ignoring unreadable feature cache entry {path}: {e}", stacklevel=3)
        return None
    if entry.get("key") != key or entry.get("format") != CACHE_FORMAT or "features" not in entry:
        return None
    entry["ok"] = True
    entry["seconds"] = None  # from the cache: no work done now
    return entry


def _run_tasks(tasks: list[dict], n_jobs: int, scheduler, on_result) -> None:
    """Run ``_extract_case`` over tasks: in-process, loky workers or Dask; results go to ``on_result``."""
    if not tasks:
        return
    if scheduler is not None:
        from distributed import as_completed

        client = get_client(scheduler)  # kept open for the next call (replicate.parallel)
        futures = client.map(_extract_case, tasks, pure=False)
        case_of = {f.key: t["case_id"] for f, t in zip(futures, tasks)}
        for fut in as_completed(futures):
            try:
                r = fut.result()
            except Exception as e:  # a lost worker: that case fails, the others go on
                cid = case_of[fut.key]
                r = {
                    "case_id": cid,
                    "ok": False,
                    "reason": f"WorkerError: case {cid}: the Dask task failed ({type(e).__name__}: {e})",
                }
            on_result(r)
        return
    if n_jobs == 1 or len(tasks) == 1:
        for t in tasks:
            on_result(_extract_case(t))
        return
    from joblib import Parallel, delayed

    with Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered") as par:
        for r in par(delayed(_extract_case)(t) for t in tasks):
            on_result(r)


def _effective_jobs(n_jobs: int, n_tasks: int) -> int:
    if n_jobs is None or n_jobs == 0:
        n_jobs = 1
    if n_jobs < 0:
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return max(1, min(int(n_jobs), max(1, n_tasks)))


def _stage_name(params, raw: dict, cases: list[Case]) -> str:
    """The progress stage of a call: ``PyRadiomics T1 (sts)``; the modality when the cases share one, the
    parameter file's name (or the number of image types of a settings dict), and ``perturbed masks``
    when every mask is a ``perturbed_cases`` file (the re-extraction for the ICC)."""
    if isinstance(params, str):
        what = params
    elif isinstance(params, os.PathLike):
        what = Path(params).stem
    else:
        what = f"{len(raw.get('imageType') or {'Original': {}})} image types"
    mods = {getattr(c, "modality", "") for c in cases}
    name = "PyRadiomics" + (f" {mods.pop()}" if len(mods) == 1 and "" not in mods else "") + f" ({what})"
    perturbed = feature_cache_dir() / "perturbed"
    if cases and all(Path(c.mask).is_relative_to(perturbed) for c in cases):
        name += ", perturbed masks"
    return name


def extract_radiomics(
    cases: Iterable[Case],
    params="default",
    *,
    n_jobs: int = 1,
    cache_dir: str | os.PathLike | None | bool = None,
    scheduler=None,
    progress: bool = True,
    label: int = 1,
    strict: bool = False,
    nan_policy: str = "fail",
    geometry_tolerance: float = DEFAULT_GEOMETRY_TOLERANCE,
    multilabel: bool = False,
) -> FeatureTable:
    """PyRadiomics features of ``cases`` (a list of ``Case``) with the settings ``params``.

    params: a name in ``src/replicate/params`` (``"default"``, ``"sts"``...), a path or a dict.
    n_jobs: cases in parallel with joblib/loky (-1: all cores); ignored when a scheduler is in use.
    cache_dir: folder of the per-case cache (default ``replicate.config.feature_cache_dir()``);
        ``False`` disables the cache.
    scheduler: a Dask scheduler address ``"tcp://host:port"`` or a ``distributed.Client``: the same
        per-case function runs on the cluster and writes into the same cache. Default:
        ``REPLICATE_SCHEDULER`` if set; ``False``: this machine whatever the environment says.
    label: the mask label to extract.
    strict: raise ``ExtractionError`` at the first failing case instead of listing it in ``failures``.
    nan_policy: ``"fail"`` (a case with NaN/inf features, or missing features that other
        cases have, is a failure naming them) or ``"keep"`` (kept with NaN; listed in
        ``info["nonfinite"]`` and warned about).
    geometry_tolerance: largest image/mask difference of spacing / origin (mm) and direction accepted.

    Returns a ``FeatureTable``: ``features`` (index = case ids in input order, columns in
    PyRadiomics order, ``diagnostics_*`` dropped), ``failures`` (case_id, reason) and
    ``info`` (settings, settings_hash, n_features, versions, per-case diagnostics,
    cached/extracted counts, timings).
    """
    from tqdm.auto import tqdm

    if nan_policy not in ("fail", "keep"):
        raise ValueError("nan_policy must be 'fail' or 'keep'")
    t_start = time.perf_counter()
    cases = list(cases)
    ids = [str(c.case_id) for c in cases]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"duplicated case ids: {dup}")
    scheduler = resolve_scheduler(scheduler)
    raw, ext0 = _load_validated(params)
    canon = _canonical(ext0, label)
    shash = stable_hash(canon)
    _EXTRACTORS.setdefault((shash, 3), ext0)  # in-process runs reuse the validated extractor
    version = _pyradiomics_version()
    use_cache = cache_dir is not False
    cdir = None
    if use_cache:
        cdir = (Path(cache_dir) if cache_dir not in (None, True) else feature_cache_dir()) / "radiomics" / shash[:16]
        cdir.mkdir(parents=True, exist_ok=True)

    results: dict[str, dict] = {}
    failures: list[tuple[str, str]] = []

    def fail(cid: str, reason: str) -> None:
        if strict:
            raise ExtractionError(reason)
        failures.append((cid, reason))

    bar = tqdm(total=len(cases), desc="PyRadiomics", unit="case", disable=not progress)
    tasks: list[dict] = []
    used: list[dict] = []  # cache entries read or written, for the feature release's log
    n_cached = 0
    done = 0

    def advance() -> None:
        nonlocal done
        bar.update()
        done += 1
        prog.tick(done)

    with prog.stage(_stage_name(params, raw, cases), total=len(cases), unit="case"):
        try:
            for c in cases:
                cid = str(c.case_id)
                try:
                    hashes = []
                    for what, p in (("image", c.image), ("mask", c.mask)):
                        try:
                            hashes.append(_file_hash(Path(p)))
                        except FileNotFoundError:
                            raise ReadError(cid, f"{what} file {p} does not exist") from None
                        except OSError as e:
                            raise ReadError(cid, f"cannot read {what} file {p}: {e.strerror or e}") from None
                except CaseError as e:
                    fail(cid, e.reason)
                    advance()
                    continue
                key = stable_hash([hashes[0], hashes[1], shash, version, CACHE_FORMAT])[:40]
                cfile = cdir / f"{key}.json" if use_cache else None
                if use_cache:
                    used.append(
                        {
                            "file": str(cfile),
                            "case_id": cid,
                            "image": str(c.image),
                            "mask": str(c.mask),
                            "image_sha256": hashes[0],
                            "mask_sha256": hashes[1],
                        }
                    )
                    entry = _load_entry(cfile, key)
                    if entry is not None:
                        results[cid] = entry
                        n_cached += 1
                        advance()
                        continue
                tasks.append(
                    {
                        "case_id": cid,
                        "image": str(c.image),
                        "mask": str(c.mask),
                        "params": raw,
                        "settings_hash": shash,
                        "label": int(label),
                        "version": version,
                        "key": key,
                        "image_sha256": hashes[0],
                        "mask_sha256": hashes[1],
                        "cache_file": str(cfile) if cfile else None,
                        "geometry_tolerance": geometry_tolerance,
                        "multilabel": multilabel,
                    }
                )
            jobs = _effective_jobs(n_jobs, len(tasks))
            if jobs > 1 and scheduler is None:
                threads = max(1, (os.cpu_count() or 1) // jobs)
                for t in tasks:
                    t["itk_threads"] = threads

            def on_result(r: dict) -> None:
                advance()
                if r["ok"]:
                    results[r["case_id"]] = r
                else:
                    fail(r["case_id"], r["reason"])

            _run_tasks(tasks, jobs, scheduler, on_result)
            prog.set_result(n_cases=len(cases), n_cached=n_cached, n_extracted=len(tasks), n_failed=len(failures))
        finally:
            bar.close()
    if use_cache:
        release.log_entries(
            "radiomics",
            shash,
            canon,
            cdir.parent.parent,
            [{**u, "seconds": results[u["case_id"]].get("seconds")} for u in used if u["case_id"] in results],
        )

    # assemble in input order; union of columns in first-seen order
    columns: dict[str, None] = {}
    for cid in ids:
        if cid in results:
            columns.update(dict.fromkeys(results[cid]["features"]))
    cols = list(columns)
    rows, kept, nonfinite, diagnostics, seconds = [], [], {}, {}, {}
    for cid in ids:
        r = results.get(cid)
        if r is None:
            continue
        feats = r["features"]
        vec = np.array([feats.get(k, np.nan) if feats.get(k) is not None else np.nan for k in cols], dtype=float)
        missing = [k for k in cols if k not in feats]
        bad = [k for k, v in zip(cols, vec) if not np.isfinite(v) and k in feats]
        if bad or missing:
            parts = []
            if bad:
                parts.append(
                    f"PyRadiomics returned NaN/inf for {len(bad)} feature(s): "
                    + ", ".join(bad[:_MAX_NAMES_IN_MESSAGE])
                    + (" ..." if len(bad) > _MAX_NAMES_IN_MESSAGE else "")
                )
            if missing:
                parts.append(
                    f"{len(missing)} feature(s) that other cases have were not computed (PyRadiomics "
                    "skipped them, e.g. a filter too large for the cropped image): "
                    + ", ".join(missing[:_MAX_NAMES_IN_MESSAGE])
                    + (" ..." if len(missing) > _MAX_NAMES_IN_MESSAGE else "")
                )
            if nan_policy == "fail":
                fail(cid, NonFiniteFeatures(cid, "; ".join(parts)).reason)
                continue
            nonfinite[cid] = bad + missing
        rows.append(vec)
        kept.append(cid)
        diagnostics[cid] = r.get("diagnostics", {})
        seconds[cid] = r.get("seconds")
    if nonfinite:
        warnings.warn(
            f"{len(nonfinite)} case(s) kept with NaN/inf features (nan_policy='keep'): "
            f"{list(nonfinite)[:_MAX_NAMES_IN_MESSAGE]}",
            stacklevel=2,
        )
    features = pd.DataFrame(
        np.vstack(rows) if rows else np.empty((0, len(cols))), index=pd.Index(kept, name="case_id"), columns=cols
    )
    fail_df = pd.DataFrame(failures, columns=["case_id", "reason"])
    if len(fail_df):
        order = {c: i for i, c in enumerate(ids)}
        fail_df = fail_df.sort_values("case_id", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    info = {
        "extractor": "pyradiomics",
        "params": params if isinstance(params, str) else (str(params) if isinstance(params, os.PathLike) else "dict"),
        "settings": canon,
        "settings_hash": shash,
        "label": int(label),
        "n_features": len(cols),
        "n_cases": len(ids),
        "n_ok": len(kept),
        "n_failed": len(fail_df),
        "n_cached": n_cached,
        "n_extracted": len(tasks),
        "versions": _versions_info(),
        "cache_dir": str(cdir) if cdir else None,
        "n_jobs": 1 if scheduler is not None else _effective_jobs(n_jobs, len(tasks)),
        "scheduler": describe(scheduler),
        "seconds_total": time.perf_counter() - t_start,
        "seconds_per_case": seconds,
        "diagnostics": diagnostics,
        "nonfinite": nonfinite,
    }
    return FeatureTable(features, fail_df, info)
