"""A verified feature release: the feature cache entries the book uses, packed with a manifest.

A cold ``make book`` spends most of its time extracting features. The release carries the
*derived* features (never images) of the book's runs: every PyRadiomics and deep-feature cache
entry the chapters read or wrote, in one compressed archive with a manifest. ``make book``
unpacks it into the feature cache before the chapters run; the chapters then find their
features there exactly as they would after extracting them, because the cache keys already
hold everything a value depends on (image and mask sha256, settings hash, extractor version).
An entry whose key the current code does not ask for is simply never read: a release built
from other settings or code costs disk space, never a wrong number.

    replicate release build      # after a book build: pack what the chapters used
    replicate release verify     # re-extract a sample of cases and compare with the release
    replicate release unpack     # what make book does (sha256 of every entry checked)
    replicate release info       # sizes by part, settings, how it was made

How the entries are known: ``extract_radiomics`` and ``extract_deep`` append one line per
case to the file named by ``REPLICATE_FEATURE_LOG`` (the runner sets it to
``<chapter output>/features_used.jsonl``): the cache file, the case, its image and mask with
their sha256, the settings hash and the settings. ``build_release`` reads those logs.

Archive: ``data/release/features.tar.xz`` (xz, preset 9e) holding ``manifest.json`` and the
entries under their cache paths (``radiomics/<hash16>/<key>.json``, ``deep/<hash16>/<key>.npy``);
a copy of the manifest sits beside it (``features.manifest.json``) for reading and diffs.
Manifest format ``replicate-feature-release/1``:

* ``made``: when, by which command, git commit (and whether the tree had changes), the
  chapter logs it was built from;
* ``packages`` and ``code`` (cache formats, PyRadiomics / torch versions): what produced it;
* ``settings``: per ``<kind>/<settings hash>`` the full settings (PyRadiomics' canonical
  settings; the deep extractor's backbone, layer, crop, weights status and versions);
* ``entries``: per cache file its path, kind, settings hash, sha256, size, case id, image and
  mask (relative to the data folder when inside it) with their sha256, and the chapters that used it;
* ``parts``: entries and bytes per kind and settings, and the archive's size.

``make book FROM=images`` does not unpack it and sets ``REPLICATE_FEATURE_FRESH_SINCE`` so
every entry older than the build is extracted again (:func:`is_fresh`).

Verification (:func:`verify_release`, ``replicate release verify``, and a test): a seeded sample
of entries per settings group whose images are on this machine is extracted again with the
recorded settings and the cache off. PyRadiomics values must be identical (PyRadiomics is
deterministic); CNN features must agree within ``DEEP_RTOL`` / ``DEEP_ATOL`` (torch threads
fixed at one: different thread counts and batch compositions change float32 sums in the
last bits).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import tarfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FEATURE_LOG_ENV = "REPLICATE_FEATURE_LOG"
FRESH_ENV = "REPLICATE_FEATURE_FRESH_SINCE"
FORMAT = "replicate-feature-release/1"
KINDS = ("radiomics", "deep")
ARCHIVE_NAME = "features.tar.xz"
MANIFEST_NAME = "features.manifest.json"
MAX_BYTES = 20 * 1024 * 1024
DEEP_RTOL = 1e-4  # relative tolerance of re-extracted CNN features (torch threads fixed at 1)
DEEP_ATOL = 1e-5  # absolute tolerance, in units of the feature vector's largest magnitude


class ReleaseError(RuntimeError):
    """A release that cannot be built, read or trusted (the message says which entry and why)."""


def default_release_dir() -> Path:
    from ..config import repo_root

    return repo_root() / "data" / "release"


def default_archive() -> Path:
    return default_release_dir() / ARCHIVE_NAME


# ----------------------------------------------------------------------------- the extractors' side


def is_fresh(path: str | os.PathLike) -> bool:
    """False when ``REPLICATE_FEATURE_FRESH_SINCE`` (a Unix time) is set and ``path`` is older: the
    entry is then extracted again (``make book FROM=images``). True otherwise (also when missing)."""
    since = os.environ.get(FRESH_ENV)
    if not since:
        return True
    try:
        return os.stat(path).st_mtime >= float(since)
    except FileNotFoundError:
        return True


def log_entries(
    kind: str, settings_hash: str, settings: dict, cache_root: str | os.PathLike, entries: Iterable[dict]
) -> None:
    """Append the cache entries one extractor call used to ``REPLICATE_FEATURE_LOG`` (if set).

    ``entries``: dicts with ``file`` (the cache file), ``case_id``, ``image``, ``mask``,
    ``image_sha256``, ``mask_sha256`` and, for an entry computed now, ``seconds`` (what it cost;
    the release keeps the features that save most time per byte). One line per entry; the
    settings go on a header line (``{"settings": ...}``) once per call.
    """
    path = os.environ.get(FEATURE_LOG_ENV)
    if not path:
        return
    root = Path(cache_root)
    lines = [json.dumps({"kind": kind, "settings_hash": settings_hash, "settings": settings}, default=str)]
    for e in entries:
        rel = Path(e["file"]).relative_to(root).as_posix()
        lines.append(
            json.dumps(
                {
                    "kind": kind,
                    "settings_hash": settings_hash,
                    "path": rel,
                    **{k: str(e[k]) for k in ("case_id", "image", "mask", "image_sha256", "mask_sha256")},
                    "seconds": round(float(e["seconds"]), 4) if e.get("seconds") else None,
                }
            )
        )
    try:
        with open(path, "a") as fh:
            fh.write("\n".join(lines) + "\n")
    except OSError:  # the log serves the release; it never stops an extraction
        pass


# ----------------------------------------------------------------------------- building


def _data_relative(path: str) -> str:
    """``path`` relative to the data folder when inside it (portable between machines), else absolute."""
    from ..config import data_dir

    p = Path(path).resolve()
    try:
        return p.relative_to(data_dir().resolve()).as_posix()
    except ValueError:
        return str(p)


def _resolve_data_path(path: str) -> Path:
    from ..config import data_dir

    p = Path(path)
    return p if p.is_absolute() else data_dir() / p


def read_logs(logs: Sequence[str | os.PathLike]) -> tuple[dict[str, dict], dict[str, dict]]:
    """(entries by archive path, settings by ``kind/settings hash``) from feature logs; the
    chapter of a log is the name of its folder."""
    entries: dict[str, dict] = {}
    settings: dict[str, dict] = {}
    for log in logs:
        chapter = Path(log).parent.name
        for raw in Path(log).read_text().splitlines():
            if not raw.strip():
                continue
            rec = json.loads(raw)
            group = f"{rec['kind']}/{rec['settings_hash']}"
            if "settings" in rec:
                settings[group] = {
                    "kind": rec["kind"],
                    "settings_hash": rec["settings_hash"],
                    "settings": rec["settings"],
                }
                continue
            path = rec["path"]  # relative to the feature cache: <kind>/<hash16>/<key>.<ext>
            e = entries.setdefault(
                path,
                {
                    "path": path,
                    "kind": rec["kind"],
                    "settings_hash": rec["settings_hash"],
                    "case_id": rec["case_id"],
                    "image": _data_relative(rec["image"]),
                    "mask": _data_relative(rec["mask"]),
                    "image_sha256": rec["image_sha256"],
                    "mask_sha256": rec["mask_sha256"],
                    "chapters": [],
                },
            )
            if chapter not in e["chapters"]:
                e["chapters"].append(chapter)
            if rec.get("seconds"):
                e["seconds"] = max(e.get("seconds") or 0.0, float(rec["seconds"]))
    return entries, settings


def _code_versions() -> dict:
    from importlib import metadata

    from .deep import DEEP_CACHE_FORMAT
    from .radiomics import CACHE_FORMAT

    out = {"radiomics_cache_format": CACHE_FORMAT, "deep_cache_format": DEEP_CACHE_FORMAT}
    for name in ("pyradiomics-bhklab", "SimpleITK", "numpy", "torch", "torchvision", "timm"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _git() -> dict:
    import subprocess

    from ..config import repo_root

    def run(*args):
        try:
            return subprocess.run(
                ["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=20
            ).stdout.strip()
        except Exception:
            return ""

    return {"git_commit": run("rev-parse", "HEAD") or None, "git_dirty": bool(run("status", "--porcelain"))}


def build_release(
    logs: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    max_bytes: int | None = MAX_BYTES,
    kinds: Sequence[str] = KINDS,
    select: bool = True,
    command: str = "replicate release build",
) -> dict:
    """Pack the cache entries named in ``logs`` into ``out`` (default ``data/release/features.tar.xz``).

    Every entry is read from the feature cache (``cache_dir``, default the configured one), checked
    (a radiomics entry's key must match its file name; a deep entry must load as a float vector) and
    hashed. ``kinds`` keeps only those kinds. Values are stored exactly as cached (float32 CNN
    vectors, PyRadiomics' float64 values): a book built from the release computes what a book
    built from the images does.

    When everything does not fit in ``max_bytes`` and ``select`` is on, whole settings groups are
    left out, those that save the least extraction time per compressed byte first (deep groups
    before PyRadiomics groups at equal worth); the manifest's ``left_out`` lists them, and the book
    extracts them as usual. Raises :class:`ReleaseError` when an entry is missing or unreadable, or
    when the archive is still larger than ``max_bytes`` (``None``: no limit; the archive is then
    still written, with its size in the message). Returns the manifest.
    """
    import hashlib
    import lzma

    from ..chapter import package_versions
    from ..config import feature_cache_dir
    from ..io import atomic_write_bytes, atomic_write_json

    root = Path(cache_dir) if cache_dir is not None else feature_cache_dir()
    out = Path(out) if out is not None else default_archive()
    entries, settings = read_logs(logs)
    entries = {p: e for p, e in sorted(entries.items()) if e["kind"] in kinds}
    if not entries:
        raise ReleaseError(
            f"no feature cache entries in {[str(x) for x in logs]} (were the chapters run with "
            "replicate run / make book, which write features_used.jsonl?)"
        )
    blobs: dict[str, bytes] = {}
    for path, e in entries.items():
        f = root / path
        try:
            data = f.read_bytes()
        except OSError as exc:
            raise ReleaseError(f"{e['kind']} entry of case {e['case_id']} is not in the cache: {f} ({exc})") from None
        _check_entry(e, data)
        if e["kind"] == "radiomics" and not e.get("seconds"):  # read from the cache: the entry knows its cost
            e["seconds"] = json.loads(data).get("seconds")
        e["sha256"] = hashlib.sha256(data).hexdigest()
        e["bytes"] = len(data)
        blobs[path] = data
    parts = group_stats(entries.values(), blobs)
    _previous_costs(parts, out.with_name(MANIFEST_NAME))
    left_out = []
    if select and max_bytes is not None:  # room for the manifest (its entry list) first
        reserve = len(lzma.compress(json.dumps(list(entries.values())).encode(), preset=9 | lzma.PRESET_EXTREME))
        left_out = select_groups(parts, max_bytes, reserve=reserve + 1024)
    if left_out:
        gone = {g["group"] for g in left_out}
        entries = {p: e for p, e in entries.items() if _group(e) not in gone}
        blobs = {p: blobs[p] for p in entries}
        parts = {k: v for k, v in parts.items() if k not in gone}
        if not entries:
            raise ReleaseError(
                f"no settings group fits in {max_bytes / 2**20:.2f} MiB (left out: {[g['group'] for g in left_out]})"
            )
    used = {f"{e['kind']}/{e['settings_hash']}" for e in entries.values()}
    used |= {k for k in settings if any(k.startswith(g["group"]) for g in left_out)}
    manifest = {
        "format": FORMAT,
        "made": {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": command,
            **_git(),
            "from_logs": [
                _data_relative(str(x)) if not Path(x).is_absolute() else os.path.relpath(x, out.parent) for x in logs
            ],
        },
        "packages": package_versions(),
        "code": _code_versions(),
        "settings": {k: v for k, v in sorted(settings.items()) if k in used},
        "parts": parts,
        "left_out": left_out,
        "entries": list(entries.values()),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
        for path, data in blobs.items():
            _add(tar, path, data)
    packed = lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME)
    manifest["archive_bytes"] = len(packed)
    atomic_write_bytes(out, packed)
    atomic_write_json(out.with_name(MANIFEST_NAME), manifest)
    if max_bytes is not None and len(packed) > max_bytes:
        raise ReleaseError(
            f"the release is {len(packed) / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB "
            f"limit ({out}); sizes by part: {release_sizes(manifest)}"
        )
    return manifest


def _group(e: dict) -> str:
    return f"{e['kind']}/{e['settings_hash'][:16]}"


def group_stats(entries: Iterable[dict], blobs: dict[str, bytes]) -> dict[str, dict]:
    """Per settings group (``<kind>/<hash16>``): entries, bytes, compressed bytes (the group packed
    alone) and the extraction seconds the logs recorded (entries logged from the cache count at the
    group's mean)."""
    import lzma

    groups: dict[str, list[dict]] = {}
    for e in entries:
        groups.setdefault(_group(e), []).append(e)
    out = {}
    for g, es in sorted(groups.items()):
        known = [e["seconds"] for e in es if e.get("seconds")]
        seconds = (sum(known) / len(known) * len(es)) if known else None
        packed = len(lzma.compress(b"".join(blobs[e["path"]] for e in es), preset=9 | lzma.PRESET_EXTREME))
        out[g] = {
            "entries": len(es),
            "bytes": sum(e["bytes"] for e in es),
            "xz_bytes": packed,
            "extraction_s": round(seconds, 1) if seconds is not None else None,
        }
    return out


def _previous_costs(parts: dict[str, dict], manifest_path: Path) -> None:
    """Extraction seconds of groups whose entries all came from the cache (e.g. unpacked from the last
    release), taken from the last release's manifest when it recorded them."""
    try:
        old = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return
    before = {**old.get("parts", {}), **{g["group"]: g for g in old.get("left_out", [])}}
    for g, p in parts.items():
        if p["extraction_s"] is None and (before.get(g) or {}).get("extraction_s"):
            p["extraction_s"] = before[g]["extraction_s"]
            p["extraction_s_from"] = "the previous release's manifest"


def select_groups(parts: dict[str, dict], max_bytes: int, reserve: int = 0) -> list[dict]:
    """The groups to leave out so that the rest (plus ``reserve`` bytes for the manifest) fits in
    ``max_bytes``: least extraction seconds per compressed byte first (a group without recorded seconds
    counts as saving nothing), deep before PyRadiomics at equal worth.
    Returns ``[{"group", "entries", "xz_bytes", "extraction_s", "reason"}]``."""
    total = sum(p["xz_bytes"] for p in parts.values()) + reserve
    if total <= max_bytes:
        return []

    def worth(item):
        g, p = item
        return ((p["extraction_s"] or 0.0) / max(p["xz_bytes"], 1), 0 if g.startswith("deep/") else 1, g)

    out = []
    for g, p in sorted(parts.items(), key=worth):
        if total <= max_bytes:
            break
        total -= p["xz_bytes"]
        out.append(
            {
                "group": g,
                "entries": p["entries"],
                "xz_bytes": p["xz_bytes"],
                "extraction_s": p["extraction_s"],
                "reason": f"the release would exceed {max_bytes / 2**20:.0f} MiB; this group saves the least "
                "extraction time per byte (extracted by the book instead)",
            }
        )
    return out


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0  # the same entries give the same archive bytes
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _check_entry(e: dict, data: bytes) -> None:
    where = f"{e['kind']} entry {e['path']} (case {e['case_id']})"
    if e["kind"] == "radiomics":
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise ReleaseError(f"{where} is not valid JSON: {exc}") from None
        if Path(e["path"]).stem != obj.get("key") or "features" not in obj:
            raise ReleaseError(f"{where}: its key does not match its file name, or it holds no features")
        if obj.get("settings_hash") != e["settings_hash"]:
            raise ReleaseError(
                f"{where}: made with settings {obj.get('settings_hash', '?')[:16]}, logged with "
                f"{e['settings_hash'][:16]}"
            )
    elif e["kind"] == "deep":
        vec = _load_npy(data, where)
        if vec.ndim != 1 or vec.dtype.kind != "f":
            raise ReleaseError(f"{where} is not a float vector ({vec.dtype}, shape {vec.shape})")
    else:
        raise ReleaseError(f"{where}: unknown kind")


def _load_npy(data: bytes, where: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:
        raise ReleaseError(f"{where} is not a readable .npy file: {exc}") from None


# ----------------------------------------------------------------------------- reading


def _open(archive: str | os.PathLike) -> tarfile.TarFile:
    archive = Path(archive)
    if not archive.is_file():
        raise ReleaseError(f"no feature release at {archive}")
    return tarfile.open(archive, mode="r:xz")


def read_manifest(archive: str | os.PathLike | None = None) -> dict:
    """The manifest inside ``archive`` (default ``data/release/features.tar.xz``)."""
    archive = Path(archive) if archive is not None else default_archive()
    with _open(archive) as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise ReleaseError(f"{archive} has no manifest.json")
        manifest = json.loads(member.read())
    if manifest.get("format") != FORMAT:
        raise ReleaseError(f"{archive}: unknown release format {manifest.get('format')!r} (this code reads {FORMAT})")
    manifest["archive_bytes"] = archive.stat().st_size
    return manifest


def iter_entries(archive: str | os.PathLike) -> Iterable[tuple[dict, bytes]]:
    """(manifest entry, bytes) of every entry of ``archive``, each checked against its sha256."""
    import hashlib

    manifest = read_manifest(archive)
    by_path = {e["path"]: e for e in manifest["entries"]}
    seen = set()
    with _open(archive) as tar:
        for member in tar:
            if member.name == "manifest.json" or not member.isfile():
                continue
            e = by_path.get(member.name)
            if e is None:
                raise ReleaseError(f"{archive}: {member.name} is not in the manifest")
            data = tar.extractfile(member).read()
            if hashlib.sha256(data).hexdigest() != e["sha256"]:
                raise ReleaseError(
                    f"{archive}: {member.name} (case {e['case_id']}) does not match its sha256 "
                    "in the manifest: the archive is corrupt or was altered"
                )
            seen.add(member.name)
            yield e, data
    missing = set(by_path) - seen
    if missing:
        raise ReleaseError(
            f"{archive}: {len(missing)} manifest entries are not in the archive, e.g. {sorted(missing)[:3]}"
        )


def code_mismatches(manifest: dict) -> dict[str, str]:
    """Per kind, why this code cannot use the release's entries (cache format or extractor version
    differ); empty when it can. Such entries would never be looked up, so they are not unpacked."""
    here, there = _code_versions(), manifest.get("code", {})
    out = {}
    for kind, keys in (
        ("radiomics", ("radiomics_cache_format", "pyradiomics-bhklab")),
        ("deep", ("deep_cache_format", "torch", "torchvision", "timm")),
    ):
        diff = [f"{k} {there.get(k)} (here {here.get(k)})" for k in keys if str(there.get(k)) != str(here.get(k))]
        if diff:
            out[kind] = "built with " + ", ".join(diff)
    return out


def unpack_release(archive: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None) -> dict:
    """Copy the release's entries into the feature cache (atomic writes; present entries kept).

    Every entry's sha256 is checked first (a corrupt archive raises :class:`ReleaseError` and
    writes nothing of the bad entry). Kinds built by another cache format or extractor version
    are skipped (see :func:`code_mismatches`). Returns counts: ``unpacked``, ``present``,
    ``skipped`` per kind, ``skipped_reasons``, ``seconds``, the archive's sha256.
    """
    from ..config import feature_cache_dir
    from ..io import atomic_write_bytes, sha256_file

    t0 = time.perf_counter()
    archive = Path(archive) if archive is not None else default_archive()
    root = Path(cache_dir) if cache_dir is not None else feature_cache_dir()
    manifest = read_manifest(archive)
    skip = code_mismatches(manifest)
    counts = {"unpacked": {}, "present": {}, "skipped": {}}
    for e, data in iter_entries(archive):
        kind = e["kind"]
        if kind in skip:
            bucket = "skipped"
        elif (root / e["path"]).exists():
            bucket = "present"
        else:
            atomic_write_bytes(root / e["path"], data)
            bucket = "unpacked"
        counts[bucket][kind] = counts[bucket].get(kind, 0) + 1
    return {
        **counts,
        "skipped_reasons": skip,
        "seconds": round(time.perf_counter() - t0, 2),
        "archive": str(archive),
        "archive_sha256": sha256_file(archive),
        "made": manifest.get("made"),
    }


def release_sizes(manifest: dict) -> list[dict]:
    """Entries and bytes per kind and settings group (uncompressed), from a manifest."""
    rows = []
    parts = {**manifest.get("parts", {}), **{g["group"]: {**g, "left_out": True} for g in manifest.get("left_out", [])}}
    for group, part in sorted(parts.items()):
        kind, h = group.split("/")
        full = next((s for k, s in manifest.get("settings", {}).items() if k.startswith(f"{kind}/{h}")), {})
        st = full.get("settings", {})
        what = (
            f"{st.get('backbone')} {st.get('layer')} {st.get('size')}px"
            if kind == "deep"
            else f"PyRadiomics: {len(st.get('featureClass', {}))} feature classes on "
            f"{len(st.get('imageType', {}))} image types"
        )
        rows.append(
            {
                "kind": kind,
                "settings": h,
                "what": what,
                "in_release": not part.get("left_out"),
                **{k: part.get(k) for k in ("entries", "bytes", "xz_bytes", "extraction_s")},
            }
        )
    return rows


# ----------------------------------------------------------------------------- verification


def _sample(entries: list[dict], n: int, seed: int) -> list[dict]:
    if len(entries) <= n:
        return entries
    rng = np.random.default_rng(seed)
    return [entries[i] for i in sorted(rng.choice(len(entries), size=n, replace=False))]


def _available(e: dict) -> bool:
    """The entry's image and mask are on this machine with the recorded content."""
    from .radiomics import _file_hash

    try:
        return (
            _file_hash(_resolve_data_path(e["image"])) == e["image_sha256"]
            and _file_hash(_resolve_data_path(e["mask"])) == e["mask_sha256"]
        )
    except OSError:
        return False


def verify_release(
    archive: str | os.PathLike | None = None,
    *,
    per_group: int = 3,
    seed: int = 0,
    kinds: Sequence[str] = KINDS,
    deep_rtol: float = DEEP_RTOL,
    deep_atol: float = DEEP_ATOL,
) -> dict:
    """Extract a seeded sample of the release's cases again and compare with the release.

    ``per_group`` cases per settings group whose image and mask are on this machine (same sha256)
    are extracted with the recorded settings and the cache off. PyRadiomics: every value identical
    (NaN equal to NaN); deep: ``|a - b| <= deep_atol * max|b| + deep_rtol * |b|`` with torch on one
    thread. Returns ``{"ok", "checked", "unavailable", "mismatches": [...], "groups": {...}}``;
    ``ok`` is False on any mismatch or when nothing could be checked.
    """
    archive = Path(archive) if archive is not None else default_archive()
    manifest = read_manifest(archive)
    skip = code_mismatches(manifest)
    wanted: dict[str, list[dict]] = {}
    for e in manifest["entries"]:
        if e["kind"] in kinds and e["kind"] not in skip:
            wanted.setdefault(f"{e['kind']}/{e['settings_hash']}", []).append(e)
    picked: dict[str, list[dict]] = {}
    unavailable = 0
    for group, es in wanted.items():
        avail = [e for e in es if _available(e)]
        unavailable += len(es) - len(avail)
        picked[group] = _sample(avail, per_group, seed)
    paths = {e["path"] for es in picked.values() for e in es}
    stored = {e["path"]: data for e, data in iter_entries(archive) if e["path"] in paths}
    mismatches, groups, checked = [], {}, 0
    for group, es in picked.items():
        if not es:
            groups[group] = "no case of this group is on this machine"
            continue
        kind = group.split("/")[0]
        settings = manifest["settings"][group]["settings"]
        fresh = (_reextract_radiomics if kind == "radiomics" else _reextract_deep)(es, settings, group)
        for e in es:
            problem = _compare(kind, e, stored[e["path"]], fresh.get(e["case_id"]), deep_rtol, deep_atol)
            checked += 1
            if problem:
                mismatches.append({"group": group, "case_id": e["case_id"], "path": e["path"], "problem": problem})
        groups[group] = f"{len(es)} case(s) checked"
    return {
        "ok": checked > 0 and not mismatches,
        "checked": checked,
        "unavailable": unavailable,
        "mismatches": mismatches,
        "groups": groups,
        "skipped_kinds": skip,
        "tolerance": {"radiomics": "identical", "deep": {"rtol": deep_rtol, "atol_of_max": deep_atol}},
    }


def _cases(es: list[dict]):
    from ..data.cohort import Case

    return [Case(e["case_id"], _resolve_data_path(e["image"]), _resolve_data_path(e["mask"])) for e in es]


def _reextract_radiomics(es: list[dict], settings: dict, group: str) -> dict[str, Any]:
    from .radiomics import extract_radiomics

    label = settings.get("setting", {}).get("label", 1)
    ft = extract_radiomics(
        _cases(es), settings, cache_dir=False, progress=False, label=label, nan_policy="keep", scheduler=False
    )
    if ft.info["settings_hash"] != group.split("/")[1]:
        raise ReleaseError(
            f"{group}: the recorded settings give settings hash {ft.info['settings_hash'][:16]} "
            "here; this code cannot reproduce the group"
        )
    out: dict[str, Any] = {cid: row for cid, row in ft.features.iterrows()}
    out.update({r.case_id: f"extraction failed: {r.reason}" for r in ft.failures.itertuples()})
    return out


def _reextract_deep(es: list[dict], settings: dict, group: str) -> dict[str, Any]:
    from .deep import IMAGENET, extract_deep

    if settings["weights"] == IMAGENET:
        from .deep import find_weights

        weights: Any = find_weights(settings["backbone"])
        if weights is None:
            return {e["case_id"]: "ImageNet weights are not on this machine" for e in es}
    else:
        weights = "untrained"
    import warnings

    with warnings.catch_warnings():  # the untrained-network warning: the settings say so already
        warnings.simplefilter("ignore", UserWarning)
        ft = extract_deep(
            _cases(es),
            settings["backbone"],
            layer=settings["layer"],
            size=settings["size"],
            crop_margin=settings["crop_margin"],
            slices=settings["slices"],
            in_channels=settings["in_channels"],
            weights=weights,
            seed=settings["seed"] or 0,
            label=settings["label"],
            cache_dir=False,
            progress=False,
            threads=1,
        )
    if ft.info["settings_hash"] != group.split("/")[1]:
        raise ReleaseError(
            f"{group}: the recorded settings give settings hash {ft.info['settings_hash'][:16]} "
            "here; this code cannot reproduce the group"
        )
    out: dict[str, Any] = {cid: row.to_numpy() for cid, row in ft.features.iterrows()}
    out.update({r.case_id: f"extraction failed: {r.reason}" for r in ft.failures.itertuples()})
    return out


def _compare(kind: str, e: dict, data: bytes, fresh, rtol: float, atol: float) -> str | None:
    if fresh is None:
        return "not extracted again"
    if isinstance(fresh, str):
        return fresh
    if kind == "radiomics":
        stored = json.loads(data)["features"]
        diff = []
        for name, v in stored.items():
            w = fresh.get(name, np.nan) if hasattr(fresh, "get") else np.nan
            same = (v is None and not np.isfinite(w)) or (v is not None and (v == w or (np.isnan(v) and np.isnan(w))))
            if not same:
                diff.append(f"{name}: release {v!r}, now {w!r}")
        extra = set(fresh.index) - set(stored)
        if extra:
            diff.append(f"features not in the release: {sorted(extra)[:3]}")
        return f"{len(diff)} value(s) differ, e.g. {diff[:3]}" if diff else None
    stored = _load_npy(data, e["path"]).astype(np.float64)
    now = np.asarray(fresh, dtype=np.float64)
    if stored.shape != now.shape:
        return f"shape {stored.shape} in the release, {now.shape} now"
    tol = atol * float(np.max(np.abs(stored)) or 1.0) + rtol * np.abs(stored)
    bad = np.abs(now - stored) > tol
    if bad.any():
        worst = float(np.max(np.abs(now - stored)))
        return f"{int(bad.sum())} of {len(stored)} values outside the tolerance (largest difference {worst:.3g})"
    return None
