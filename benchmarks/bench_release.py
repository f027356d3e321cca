"""The feature release against extraction: build, size, unpack, and the chapter's read from the unpacked cache.

    .venv/bin/python benchmarks/bench_release.py [--params sts] [--image-types Original] [--extract 3]

On the 51 ``ibsi_sts`` T1 cases with the chapter's PyRadiomics settings it
(1) runs ``extract_radiomics`` with the feature log on (cache hits where the cache has them),
(2) builds a release from that log (time, compressed size, per-entry size),
(3) unpacks it into an empty feature cache and reads every case from there, as a chapter after
    ``make book`` unpacked the release would (time),
(4) extracts ``--extract`` cases from the images with the cache off and extrapolates to 51 cases:
    what a cold chapter pays without the release.
``run()`` returns rows for ``benchmarks/run_all.py``; ``ratio`` = extraction / (unpack + read).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def run(params: str = "sts", image_types: list[str] | None = None, n_extract: int = 3) -> list[dict]:
    from replicate.data import load_cohort
    from replicate.dlrn import _radiomics_params
    from replicate.features import release
    from replicate.features.radiomics import extract_radiomics

    cases = load_cohort("ibsi_sts").cases("T1")
    settings = _radiomics_params(params, image_types)
    tmp = Path(tempfile.mkdtemp(prefix="bench-release-"))
    log = tmp / "bench" / "features_used.jsonl"
    log.parent.mkdir()
    os.environ[release.FEATURE_LOG_ENV] = str(log)
    try:
        first = extract_radiomics(cases, settings, n_jobs=2, progress=False)
    finally:
        del os.environ[release.FEATURE_LOG_ENV]
    t0 = time.perf_counter()
    manifest = release.build_release([log], tmp / "rel" / release.ARCHIVE_NAME, max_bytes=None)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    release.unpack_release(tmp / "rel" / release.ARCHIVE_NAME, tmp / "cache")
    unpack_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = extract_radiomics(cases, settings, cache_dir=tmp / "cache", progress=False)
    read_s = time.perf_counter() - t0
    assert again.info["n_cached"] == len(cases) and again.features.equals(first.features)
    t0 = time.perf_counter()
    extract_radiomics(cases[:n_extract], settings, cache_dir=False, progress=False)
    per_case = (time.perf_counter() - t0) / n_extract
    n = len(cases)
    name = f"PyRadiomics {params} ({first.n_features} features), {n} ibsi_sts T1 cases"
    return [
        {
            "name": f"{name}: release unpack + read vs extraction (1 worker, extrapolated from {n_extract})",
            "ours_s": round(unpack_s + read_s, 2),
            "naive_s": round(per_case * n, 1),
            "ratio": round(per_case * n / (unpack_s + read_s), 1),
            "n_cases": n,
            "archive_bytes": manifest["archive_bytes"],
            "bytes_per_entry": manifest["archive_bytes"] // n,
            "build_s": round(build_s, 1),
        }
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="sts")
    ap.add_argument("--image-types", nargs="*", default=None, help="keep only these image types (default: all)")
    ap.add_argument("--extract", type=int, default=3)
    a = ap.parse_args()
    import pandas as pd

    print(pd.DataFrame(run(a.params, a.image_types, a.extract)).to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
