"""Cold `make book`: the whole book built from empty caches in a scratch copy, timed per chapter and stage.

    .venv/bin/python benchmarks/bench_cold_book.py [--runs 3] [--from release|images] [--no-check]
                                                   [--only ID ...] [--scratch DIR] [--keep] [--no-write]

Each run copies this checkout (tracked files and untracked files git does not ignore, so the
feature release in ``data/release/`` comes along when it is there) into a fresh scratch folder and
runs ``replicate book build`` (and ``replicate book check``, as ``make book`` does) there with
*empty* caches: ``REPLICATE_DATA_DIR`` points into the scratch folder, so every data set is copied
from the mirror and verified again, every feature is extracted or unpacked from the release, every
split fitted. Your own ``data/cache`` and ``book/`` are never read or touched. The scratch copy
is deleted afterwards unless ``--keep``.

Per run it records the wall time of the build and of the check, the time of every chapter and of
its notebook sections and library stages (``book/_executed/timings.json``, from
``replicate.progress``), the feature-release unpacking and the HTML build, and the load average
before the run (a cold build measures the machine as much as the code: run it on a quiet one).
The table of medians over the runs (and each run's value) replaces the section between
``<!-- cold-book-<from>:begin -->`` and ``<!-- cold-book-<from>:end -->`` of ``benchmarks/RESULTS.md``
(appended when absent); the raw numbers go to ``benchmarks/cold_book_<from>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def markers(source: str) -> tuple[str, str]:
    """The block of RESULTS.md that a ``--from source`` measurement replaces."""
    return f"<!-- cold-book-{source}:begin -->", f"<!-- cold-book-{source}:end -->"


def checkout_files() -> list[str]:
    """Tracked files and untracked files that git does not ignore (what a fresh clone plus your
    uncommitted work would hold)."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    return [p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def make_scratch(parent: Path | None) -> Path:
    base = Path(tempfile.mkdtemp(prefix="cold-book-", dir=parent))
    for rel in checkout_files():
        dest = base / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    return base


def scratch_env(scratch: Path) -> dict[str, str]:
    """The build's environment: the scratch copy's code and empty caches; the data mirror as make sets it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICATE_") or k in ("REPLICATE_DATA_MIRROR",)}
    mirror = os.environ.get("REPLICATE_DATA_MIRROR") or (
        str((ROOT.parent / "shared" / "data").resolve()) if (ROOT.parent / "shared" / "data").is_dir() else None
    )
    if mirror:
        env["REPLICATE_DATA_MIRROR"] = mirror
    env.update(
        {
            "REPLICATE_ROOT": str(scratch),
            "REPLICATE_DATA_DIR": str(scratch / "data" / "cache"),
            "PYTHONPATH": str(scratch / "src"),
            "MPLBACKEND": "Agg",
            "PYTHONHASHSEED": "0",
        }
    )
    return env


def _run(cmd: list[str], cwd: Path, env: dict, log: Path) -> tuple[int, float]:
    """Run ``cmd``, echoing its output and keeping it in ``log``; (exit code, seconds)."""
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            sys.stdout.write(line)
            fh.write(line)
        rc = proc.wait()
    return rc, time.perf_counter() - t0


def one_run(k: int, args) -> dict:
    scratch = make_scratch(Path(args.scratch) if args.scratch else None)
    env = scratch_env(scratch)
    exe = str(Path(sys.executable).with_name("replicate"))
    log = scratch / "cold_book.log"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"\n=== cold build {k}: {scratch} (load average {load}) ===", flush=True)
    build = [exe, "book", "build", "--from", args.source] + (["--only", *args.only] if args.only else [])
    rc, build_s = _run(build, scratch, env, log)
    check_s, rc_check = None, None
    if not args.no_check and rc == 0:
        rc_check, check_s = _run([exe, "book", "check"], scratch, env, log)
    timings_path = scratch / "book" / "_executed" / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    run = {
        "run": k,
        "load_before": load,
        "exit_code": rc,
        "check_exit_code": rc_check,
        "build_s": round(build_s, 1),
        "check_s": round(check_s, 1) if check_s is not None else None,
        "total_s": round(build_s + (check_s or 0), 1),
        "timings": timings,
        "scratch": str(scratch),
    }
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return run


def stage_rows(runs: list[dict]) -> list[dict]:
    """One row per (chapter, stage) seen in any run: median seconds and each run's seconds."""
    keys: list[tuple[str, str]] = []
    values: dict[tuple[str, str], list[float | None]] = {}
    for i, run in enumerate(runs):
        rows = run["timings"].get("rows", [])
        extra = [("book", "feature release unpacked"), ("book", "pages and HTML"), ("book", "book check")]
        vals = {(r["chapter"], r["stage"]): r["seconds"] for r in rows}
        vals[extra[0]] = (run["timings"].get("features") or {}).get("release_unpack_s")
        vals[extra[1]] = run["timings"].get("pages_html_s")
        vals[extra[2]] = run.get("check_s")
        vals[("book", "(whole build + check)")] = run["total_s"]
        for key, v in vals.items():
            if key not in values:
                keys.append(key)
                values[key] = [None] * len(runs)
            values[key][i] = v
    out = []
    for key in keys:
        got = [v for v in values[key] if v is not None]
        if not got:
            continue
        out.append({"chapter": key[0], "stage": key[1], "median_s": statistics.median(got), "runs_s": values[key]})
    return out


def _fmt(s) -> str:
    if s is None:
        return "—"
    s = int(float(s) + 0.5)
    return f"{s} s" if s < 120 else f"{s // 60} min {s % 60:02d} s"


def markdown(runs: list[dict], args) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    rows = stage_rows(runs)
    head = (
        f"### Cold `make book` (`bench_cold_book.py --runs {len(runs)} --from {args.source}`)\n\n"
        f"{dt.date.today().isoformat()}, commit {commit}, {platform.node()} {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. Load average before each run: "
        + ", ".join(f"{r['load_before']:.1f}" if r["load_before"] is not None else "?" for r in runs)
        + ". Exit codes: "
        + ", ".join(str(r["exit_code"]) for r in runs)
        + ". Empty data and feature caches "
        "in a scratch copy of the checkout; features "
        + (
            "unpacked from the verified release where it matches"
            if args.source == "release"
            else "re-extracted from the images (FROM=images)"
        )
        + ". Rows marked (library) are library stages, summed over "
        "their calls (they overlap the notebook sections they run in; the six longest per chapter).\n\n"
    )
    lines = [
        "| chapter | stage | median | " + " | ".join(f"run {r['run']}" for r in runs) + " |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in runs) + " |",
    ]
    for r in rows:
        lines.append(
            f"| {r['chapter']} | {r['stage'].strip() if r['stage'] != '(total)' else '**total**'}"
            f"{' (library)' if r['stage'].startswith('  ') else ''} | {_fmt(r['median_s'])} | "
            + " | ".join(_fmt(v) for v in r["runs_s"])
            + " |"
        )
    return head + "\n".join(lines) + "\n"


def write_results(text: str, source: str) -> Path:
    path = ROOT / "benchmarks" / "RESULTS.md"
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    begin, end = markers(source)
    block = f"{begin}\n{text}{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n## Cold `make book`, per chapter and stage\n\n" + block + "\n"
    path.write_text(new)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--from", dest="source", choices=["release", "images"], default="release")
    ap.add_argument("--only", nargs="*", default=None, help="chapters to build (default: all)")
    ap.add_argument("--no-check", action="store_true", help="skip `replicate book check` (headless Chromium)")
    ap.add_argument("--scratch", default=None, help="parent folder of the scratch copies (default: the temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies")
    ap.add_argument("--no-write", action="store_true", help="print the table; leave RESULTS.md alone")
    args = ap.parse_args()
    runs = [one_run(k, args) for k in range(1, args.runs + 1)]
    text = markdown(runs, args)
    print("\n" + text)
    if not args.no_write:
        raw = ROOT / "benchmarks" / f"cold_book_{args.source}.json"
        raw.write_text(json.dumps(runs, indent=1))
        print(f"written to {write_results(text, args.source)} (raw numbers: {raw.relative_to(ROOT)})")
    return 0 if all(r["exit_code"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
