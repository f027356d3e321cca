"""`make book` wall times: cold (empty chapter cache) and warm (nothing changed; goal <= 60 s).

Cold means the executed-chapter cache (book/_executed) is emptied; the feature
cache under data/cache is kept unless --cold-features is given (then every
chapter re-extracts its features too).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed_build() -> float:
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("replicate")), "book", "build"], cwd=ROOT, check=False)
    return time.perf_counter() - t0


def run(cold: bool = True, cold_features: bool = False) -> list[dict]:
    rows = []
    if cold:
        shutil.rmtree(ROOT / "book" / "_executed", ignore_errors=True)
        if cold_features:
            shutil.rmtree(ROOT / "data" / "cache" / "features", ignore_errors=True)
        rows.append(
            {
                "name": "make book, cold" + (" (features too)" if cold_features else " (features cached)"),
                "seconds": round(_timed_build(), 1),
                "goal": "",
            }
        )
    warm = _timed_build()
    rows.append(
        {"name": "make book, warm (nothing changed)", "seconds": round(warm, 1), "goal": "<= 60 s", "met": warm <= 60}
    )
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-cold", action="store_true")
    ap.add_argument("--cold-features", action="store_true")
    a = ap.parse_args()
    for r in run(cold=not a.no_cold, cold_features=a.cold_features):
        print(r)
