"""One cache for everything the chapters compute once and reuse: content-addressed and atomic.

A :class:`Store` is a folder of one kind of result (``features/radiomics``, ``predictions/alt``,
``masks/alt``, ...) under :func:`replicate.config.data_dir`. An entry's key is the sha256 of a JSON-able
*payload* that names everything the result depends on (input hashes, settings, seed, code version), so a
changed input is a different entry, never a stale one. Entries are written through a temporary file and
``os.replace`` (an interrupted run leaves no half-written entry and simply resumes), and an unreadable
entry is reported and recomputed, never trusted.

    store = Store("predictions/alt")
    df = store.get_or_compute({"model": name, "split": k, "data": data_hash, "code": CODE}, fit_and_predict,
                              fmt="frame")

Formats: ``"json"`` (JSON-able objects), ``"frame"`` (a pandas DataFrame, JSON ``split`` orient, exact
float round trip), ``"joblib"`` (any picklable object), ``"nifti"`` (a SimpleITK image).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import data_dir
from .io import atomic_write_text, stable_hash

__all__ = ["Store", "content_key", "FORMATS"]

FORMATS = {"json": ".json", "frame": ".frame.json", "joblib": ".joblib", "nifti": ".nii.gz"}


def content_key(payload: Any) -> str:
    """The entry key of a payload: sha256 of its canonical JSON (dict keys sorted), 32 hex characters."""
    return stable_hash(payload)[:32]


def _atomic_via_tmp(path: Path, write: Callable[[str], None]) -> None:
    """Let ``write(tmp_name)`` produce the file, then move it into place atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix  # writers choose by it
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=ext)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Store:
    """A content-addressed folder of cached results of one ``kind`` (see the module docstring)."""

    def __init__(self, kind: str, root: str | os.PathLike | None = None):
        self.kind = kind
        self.root = (Path(root) if root is not None else data_dir()) / kind

    def __repr__(self) -> str:
        return f"Store({self.kind!r}, root={str(self.root.parent)!r})"

    def path(self, payload_or_key: Any, fmt: str = "json") -> Path:
        key = (
            payload_or_key
            if isinstance(payload_or_key, str) and len(payload_or_key) == 32
            else content_key(payload_or_key)
        )
        return self.root / f"{key}{FORMATS[fmt]}"

    def has(self, payload: Any, fmt: str = "json") -> bool:
        return self.path(payload, fmt).exists()

    def load(self, payload: Any, fmt: str = "json"):
        """The cached result, or None when there is none (an unreadable entry is reported and removed)."""
        path = self.path(payload, fmt)
        if not path.exists():
            return None
        try:
            return _read(path, fmt)
        except Exception as exc:  # noqa: BLE001 - any corrupt entry is recomputed, never trusted
            warnings.warn(
                f"cache {self.kind}: unreadable entry {path.name} ({type(exc).__name__}: {exc}); recomputing it",
                stacklevel=2,
            )
            path.unlink(missing_ok=True)
            return None

    def save(self, payload: Any, obj: Any, fmt: str = "json") -> Path:
        path = self.path(payload, fmt)
        _write(path, obj, fmt)
        return path

    def get_or_compute(self, payload: Any, compute: Callable[[], Any], fmt: str = "json"):
        """The cached result for ``payload``, computing and storing it first when missing."""
        obj = self.load(payload, fmt)
        if obj is None:
            obj = compute()
            self.save(payload, obj, fmt)
        return obj


def _read(path: Path, fmt: str):
    if fmt == "json":
        return json.loads(path.read_text())
    if fmt == "frame":
        import pandas as pd

        raw = json.loads(path.read_text())
        df = pd.DataFrame(raw["data"], index=pd.Index(raw["index"], name=raw["index_name"]), columns=raw["columns"])
        return df.astype(raw["dtypes"])
    if fmt == "joblib":
        import joblib

        return joblib.load(path)
    if fmt == "nifti":
        import SimpleITK as sitk

        return sitk.ReadImage(str(path))
    raise ValueError(f"unknown cache format {fmt!r}; use one of {sorted(FORMATS)}")


def _write(path: Path, obj: Any, fmt: str) -> None:
    if fmt == "json":
        atomic_write_text(path, json.dumps(obj, allow_nan=True, sort_keys=True))
    elif fmt == "frame":
        # Python's JSON writes floats as repr: an exact round trip (pandas' to_json rounds to 15 digits)
        atomic_write_text(
            path,
            json.dumps(
                {
                    "index": obj.index.tolist(),
                    "index_name": obj.index.name,
                    "columns": obj.columns.tolist(),
                    "data": obj.to_numpy().tolist(),
                    "dtypes": {str(c): str(t) for c, t in obj.dtypes.items()},
                },
                allow_nan=True,
            ),
        )
    elif fmt == "joblib":
        import joblib

        _atomic_via_tmp(path, lambda tmp: joblib.dump(obj, tmp))
    elif fmt == "nifti":
        import SimpleITK as sitk

        _atomic_via_tmp(path, lambda tmp: sitk.WriteImage(obj, tmp, True))
    else:
        raise ValueError(f"unknown cache format {fmt!r}; use one of {sorted(FORMATS)}")
