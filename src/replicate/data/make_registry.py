"""Build the registry CSVs (``src/replicate/data/registry/<name>.csv``) from a data mirror.

Run once by a maintainer, never at import time::

    python -m replicate.data.make_registry [MIRROR] [--out DIR]

``MIRROR`` defaults to ``$REPLICATE_DATA_MIRROR`` (laid out like
``../shared/data``: ``<mirror>/<name>/<relative path>``). The script records,
for every file of the three public data sets, its relative path, the upstream
URL it comes from, its size and sha256 (the mirror files are unchanged copies
of upstream, except the ``ibsi_sts`` NIfTI images, which the mirror cropped and
re-encoded: for those it also records ``voxel_sha256`` and the cropped
geometry from the mirror's ``manifest.csv`` and sets ``verify = voxel``).

Mirror-only files (each data set's ``README.md``, ``ibsi_sts/manifest.csv``,
``ibsi_phantoms/manifest.csv``) are not part of the registry: they are
descriptions of the mirror, not upstream data. The one exception is
``ibsi_phantoms/reference_values.csv``: data the mirror derived (parsed from the
IBSI manual's tables), registered with ``verify = mirror`` because no upstream
copy of it exists to download.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from ..io import atomic_write_text, sha256_file

REGISTRY_DIR = Path(__file__).resolve().parent / "registry"

COLUMNS = [
    "path",
    "url",
    "sha256",
    "size",
    "verify",
    "voxel_sha256",
    "dtype",
    "size_xyz",
    "spacing_mm",
    "origin_mm",
    "source",
]

IBSI_NIFTI = (
    "https://raw.githubusercontent.com/theibsi/data_sets/6da96021bc91faf4c0cb7fd7fa56a4225d2064a8/"
    "ibsi_validation/nifti/"
)
TCIA_XLSX = "https://wiki.cancerimagingarchive.net/download/attachments/21266533/INFOclinical_STS.xlsx"
BUSBRA_BASE = (
    "https://raw.githubusercontent.com/solutionbeyondnumbers/Ultra-net-codes-/"
    "ad75b72f88df3a55fd9d3f5e0ad4f60be51df828/BUSBRA/"
)
WORC_FEATURES = (
    "https://raw.githubusercontent.com/jveenland/TM10007_ML_Project/"
    "c11e4f1374898bbfa1d28a2e9456405eb857146a/worclipo/Lipo_radiomicFeatures.csv"
)
IBSI_DATA_SETS = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
WORC_SPLITS = (
    "https://raw.githubusercontent.com/MStarmans91/WORCDatabase/"
    "9be98a217f97649d05aaf97b35c11ba8428ab64a/crossvalidationsplits/crossvalidationsplits_Lipo.csv"
)


def _row(root: Path, rel: str, url: str, **extra) -> dict:
    path = root / rel
    row = {c: "" for c in COLUMNS}
    row.update(path=rel, url=url, sha256=sha256_file(path), size=path.stat().st_size, verify="file")
    row.update(extra)
    return row


def ibsi_sts_rows(mirror: Path) -> list[dict]:
    root = mirror / "ibsi_sts"
    manifest = pd.read_csv(root / "manifest.csv", dtype=str)
    rows = []
    for rec in manifest.itertuples(index=False):
        rel = rec.file
        path = root / rel
        actual = sha256_file(path)
        if actual != rec.sha256:
            raise SystemExit(f"{path}: sha256 {actual} differs from manifest.csv {rec.sha256}")
        # Downloads use the upstream NIfTI; for the 17 images the mirror rebuilt
        # from the DICOM series the manifest notes that the NIfTI has the same voxels.
        url = IBSI_NIFTI + rel
        source = "" if rec.upstream == url else rec.upstream
        rows.append(
            dict(
                {c: "" for c in COLUMNS},
                path=rel,
                url=url,
                sha256=rec.sha256,
                size=path.stat().st_size,
                verify="voxel",
                voxel_sha256=rec.voxel_sha256,
                dtype=rec.dtype,
                size_xyz=rec.size_xyz,
                spacing_mm=rec.spacing_mm,
                origin_mm=rec.origin_mm,
                source=source,
            )
        )
    rows.append(
        _row(
            root,
            "INFOclinical_STS.xlsx",
            TCIA_XLSX,
            source="TCIA Soft-tissue-Sarcoma collection page attachment (mirror copy unchanged)",
        )
    )
    return rows


def busbra_rows(mirror: Path) -> list[dict]:
    root = mirror / "busbra"
    rels = ["bus_data.csv", "LICENSE.txt"]
    rels += sorted(f"Images/{p.name}" for p in (root / "Images").glob("*.png"))
    rels += sorted(f"Masks/{p.name}" for p in (root / "Masks").glob("*.png"))
    return [_row(root, rel, BUSBRA_BASE + rel) for rel in rels]


def worc_lipo_rows(mirror: Path) -> list[dict]:
    root = mirror / "worc_lipo"
    return [
        _row(root, "Lipo_radiomicFeatures.csv", WORC_FEATURES),
        _row(root, "crossvalidationsplits_Lipo.csv", WORC_SPLITS),
    ]


def ibsi_phantoms_rows(mirror: Path) -> list[dict]:
    """The IBSI-1 phantoms (byte-for-byte copies of theibsi/data_sets) and the parsed reference values.

    Hashes come from the mirror's ``manifest.csv`` and are checked against the files. The
    reference-value table has no upstream file (the mirror parsed it from the IBSI manual's
    ``.rst`` tables): its ``url`` names that source and ``verify = mirror`` makes ``fetch`` say so
    instead of downloading the ``.rst``.
    """
    root = mirror / "ibsi_phantoms"
    manifest = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False)
    rows = []
    for rec in manifest.itertuples(index=False):
        path = root / rec.file
        actual = sha256_file(path)
        if actual != rec.sha256:
            raise SystemExit(f"{path}: sha256 {actual} differs from manifest.csv {rec.sha256}")
        derived = rec.file == "reference_values.csv"
        upstream = rec.upstream_path.split(" ")[0] if derived else rec.upstream_path
        url = IBSI_DATA_SETS.format(repo=rec.upstream_repo, commit=rec.upstream_commit, path=upstream)
        row = dict(
            {c: "" for c in COLUMNS},
            path=rec.file,
            url=url,
            sha256=rec.sha256,
            size=path.stat().st_size,
            verify="mirror" if derived else "file",
            dtype=rec.dtype,
            size_xyz=rec.size_xyz,
            spacing_mm=rec.spacing_mm,
            voxel_sha256=rec.voxel_sha256,
        )
        if derived:
            row["source"] = (
                "parsed by the data mirror from the reference-value tables of the url (IBSI manual), "
                "with the corrections listed in its README; no upstream copy of the CSV exists"
            )
        rows.append(row)
    return rows


BUILDERS = {
    "ibsi_sts": ibsi_sts_rows,
    "busbra": busbra_rows,
    "worc_lipo": worc_lipo_rows,
    "ibsi_phantoms": ibsi_phantoms_rows,
}


def build(mirror: Path, out: Path = REGISTRY_DIR, names=None) -> dict[str, int]:
    counts = {}
    for name in names or BUILDERS:
        rows = BUILDERS[name](Path(mirror))
        df = pd.DataFrame(rows, columns=COLUMNS).sort_values("path", kind="stable")
        target = atomic_write_text(Path(out) / f"{name}.csv", df.to_csv(index=False, lineterminator="\n"))
        os.chmod(target, 0o644)
        counts[name] = len(df)
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mirror", nargs="?", default=os.environ.get("REPLICATE_DATA_MIRROR"))
    p.add_argument("--out", default=str(REGISTRY_DIR))
    p.add_argument("--only", nargs="*", default=None, choices=sorted(BUILDERS))
    args = p.parse_args(argv)
    if not args.mirror:
        p.error("give the mirror folder or set REPLICATE_DATA_MIRROR")
    for name, n in build(Path(args.mirror), Path(args.out), args.only).items():
        print(f"{name}: {n} files -> {Path(args.out) / (name + '.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
