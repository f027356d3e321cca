"""Run every benchmark and print one table (the numbers in RESULTS.md come from this script).

.venv/bin/python benchmarks/run_all.py [--quick] [--skip-book] [--n-cases N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def machine() -> str:
    return f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-cases", type=int, default=51, help="ibsi_sts T1 cases for the extraction benchmark")
    ap.add_argument("--skip-book", action="store_true")
    ap.add_argument("--skip-extraction", action="store_true")
    a = ap.parse_args()
    rows: list[dict] = []
    import bench_stats

    rows += bench_stats.run()
    if not a.skip_extraction:
        import bench_extraction

        rows += bench_extraction.run(n_cases=a.n_cases, params="sts")
    if not a.skip_book:
        import bench_book

        rows += bench_book.run(cold=True)
    import pandas as pd

    df = pd.DataFrame(rows)
    print(f"# Benchmarks — {dt.date.today().isoformat()} — {machine()}\n")
    print(df.to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
