"""PyRadiomics extraction: our ``extract_radiomics`` against the ``pyradiomics`` command line, same cases and settings.

    .venv/bin/python benchmarks/bench_extraction.py [--n-cases 51] [--params sts]

On the first ``n_cases`` T1 cases of ``ibsi_sts`` it times, each as its own process
(so both pay their start-up and imports) and each with a cold cache:

(a) ``pyradiomics cases.csv --param <file> -j 1 -o out.csv -f csv`` (batch mode);
(b) ``extract_radiomics(cases, params, n_jobs=1, cache_dir=<empty folder>)``;
(c) the same with ``n_jobs=2``;

and checks that (a), (b) and (c) give the same feature values (``--repeat N`` alternates
the three N times and keeps each one's fastest, for a machine whose load varies). ``run()`` returns rows
``{name, ours_s, naive_s, ratio, goal, met, max_abs_diff, per_case_s, ...}`` for
``benchmarks/run_all.py``; ``naive_s`` is the CLI's wall time and ``ratio`` = CLI / ours
(> 1: ours is faster). The goal for (b) is ours <= 1.05 x the CLI, i.e. ratio >= 1 / 1.05.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

GOAL_RATIO = 1 / 1.05

_OURS = r"""
import json, sys, time
t0 = time.perf_counter()
import pandas as pd
from replicate.data.cohort import Case
from replicate.features import extract_radiomics
csv, params, n_jobs, cache, out = sys.argv[1:6]
df = pd.read_csv(csv)
cases = [Case(str(r.ID), r.Image, r.Mask) for r in df.itertuples()]
t1 = time.perf_counter()
t = extract_radiomics(cases, params, n_jobs=int(n_jobs), cache_dir=cache, progress=False)
t2 = time.perf_counter()
t.features.to_csv(out)
print(json.dumps({"import_s": t1 - t0, "extract_s": t2 - t1, "n_ok": len(t.features),
                  "n_failed": len(t.failures), "n_features": t.n_features,
                  "failures": t.failures.to_dict("records")}))
"""


def _params_file(params, workdir: Path) -> Path:
    from replicate.config import params_dir
    from replicate.features import load_params

    if isinstance(params, (str, os.PathLike)):
        p = Path(params)
        if p.suffix.lower() in {".yaml", ".yml", ".json"} and p.is_file():
            return p
        cand = params_dir() / f"{p.name}.yaml"
        if cand.is_file():
            return cand
    import yaml

    out = workdir / "params.yaml"
    out.write_text(yaml.safe_dump(load_params(params)))
    return out


def _timed(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return dt, r


def _cli_features(path: Path, ids: list[str]) -> pd.DataFrame:
    df = pd.read_csv(path)
    df.index = df["ID"].astype(str)
    df = df.loc[ids]
    cols = [c for c in df.columns if not c.startswith("diagnostics_") and c not in ("ID", "Image", "Mask")]
    return df[cols].astype(float)


def _max_rel_diff(a: pd.DataFrame, b: pd.DataFrame) -> float:
    a, b = a.align(b, join="inner")
    x, y = a.to_numpy(float), b.to_numpy(float)
    both_nan = np.isnan(x) & np.isnan(y)
    d = np.abs(x - y) / np.maximum(np.maximum(np.abs(x), np.abs(y)), 1e-12)
    d[both_nan] = 0.0
    return float(np.nanmax(d)) if d.size else float("nan")


def run(
    n_cases: int = 51, params="sts", workdir: str | os.PathLike | None = None, verbose: bool = True, repeat: int = 1
) -> list[dict]:
    """Time (a) the CLI, (b) ours with 1 worker, (c) ours with 2 workers; ``repeat`` > 1 alternates
    the three ``repeat`` times (each with a fresh cold cache) and keeps each one's fastest run."""
    from replicate.data import load_cohort
    from replicate.features import count_features
    from replicate.io import sha256_file

    cases = load_cohort("ibsi_sts").cases("T1")[:n_cases]
    n = len(cases)
    tmp = tempfile.TemporaryDirectory(prefix="bench_extraction_") if workdir is None else None
    wd = Path(tmp.name if tmp else workdir)
    wd.mkdir(parents=True, exist_ok=True)
    try:
        pfile = _params_file(params, wd)
        csv = wd / "cases.csv"
        pd.DataFrame(
            {
                "ID": [c.case_id for c in cases],
                "Image": [str(c.image) for c in cases],
                "Mask": [str(c.mask) for c in cases],
            }
        ).to_csv(csv, index=False)
        for c in cases:  # same warm OS file cache for every contender
            sha256_file(c.image), sha256_file(c.mask)
        env = dict(os.environ, PYTHONHASHSEED="0")
        bindir = Path(sys.executable).parent
        cli = str(bindir / "pyradiomics") if (bindir / "pyradiomics").exists() else "pyradiomics"

        cli_out = wd / "cli.csv"
        cli_times: list[float] = []
        ours_times: dict[int, list[float]] = {1: [], 2: []}
        ours: dict[int, tuple] = {}
        for rep in range(max(1, int(repeat))):
            if cli_out.exists():
                cli_out.unlink()  # the CLI appends to its output file
            dt, _ = _timed([cli, str(csv), "--param", str(pfile), "-j", "1", "-o", str(cli_out), "-f", "csv"], env)
            cli_times.append(dt)
            if verbose:
                print(f"[{rep + 1}] CLI -j 1: {dt:.2f} s ({dt / n:.3f} s/case)", flush=True)
            for jobs in (1, 2):
                out = wd / f"ours_{jobs}.csv"
                cache = wd / f"cache_{jobs}_{rep}"  # empty: a cold cache
                dt, r = _timed(
                    [sys.executable, "-c", _OURS, str(csv), str(pfile), str(jobs), str(cache), str(out)], env
                )
                meta = json.loads(r.stdout.strip().splitlines()[-1])
                feats = pd.read_csv(out, index_col=0)
                feats.index = feats.index.astype(str)
                ours_times[jobs].append(dt)
                ours[jobs] = (meta, feats)
                if verbose:
                    print(
                        f"[{rep + 1}] ours n_jobs={jobs}: {dt:.2f} s ({dt / n:.3f} s/case; extraction "
                        f"{meta['extract_s']:.2f} s, imports {meta['import_s']:.2f} s)",
                        flush=True,
                    )
        ref = _cli_features(cli_out, [c.case_id for c in cases])
        cli_s = min(cli_times)
        rows = []
        for jobs in (1, 2):
            meta, feats = ours[jobs]
            dt = min(ours_times[jobs])
            ratio = cli_s / dt
            rows.append(
                {
                    "name": f"PyRadiomics, {n} ibsi_sts T1 cases, params {Path(str(pfile)).stem} "
                    f"({count_features(str(pfile))} features): ours n_jobs={jobs} vs CLI -j 1",
                    "ours_s": round(dt, 2),
                    "naive_s": round(cli_s, 2),
                    "ratio": round(ratio, 3),
                    "goal": "ours <= 1.05 x CLI" if jobs == 1 else "",
                    "met": bool(ratio >= GOAL_RATIO) if jobs == 1 else None,
                    "max_abs_diff": _max_rel_diff(feats, ref),  # relative difference to the CLI's values
                    "per_case_s": round(dt / n, 3),
                    "cli_per_case_s": round(cli_s / n, 3),
                    "n_cases": n,
                    "n_failed": meta["n_failed"],
                    "n_features": meta["n_features"],
                    "repeat": max(1, int(repeat)),
                }
            )
        if verbose:
            for r in rows:
                print(
                    f"{r['name']}: CLI {r['naive_s']} s, ours {r['ours_s']} s, CLI/ours {r['ratio']}, "
                    f"max relative difference {r['max_abs_diff']:.2g}"
                )
        return rows
    finally:
        if tmp is not None:
            tmp.cleanup()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-cases", type=int, default=51)
    ap.add_argument("--params", default="sts")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the contenders N times, keep each one's best")
    a = ap.parse_args()
    rows = run(n_cases=a.n_cases, params=a.params, repeat=a.repeat)
    print(pd.DataFrame(rows).to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
