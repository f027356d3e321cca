"""Before/after check for refactors: every chapter's quick-profile metrics must not change.

    # 1. results of the code before the change (a git worktree of the old commit)
    git worktree add /tmp/before <old-commit>
    python benchmarks/refactor_check.py run /tmp/before runs/before
    # 2. results of the working tree
    python benchmarks/refactor_check.py run . runs/after
    # 3. compare: every metric within 1e-9 (provenance and timings excluded)
    python benchmarks/refactor_check.py compare runs/before runs/after [--allow FILE]

`run` executes `replicate run` with the tree's own code (PYTHONPATH=<tree>/src), so the old
commit runs its own notebooks and library. `compare` lists every difference; a difference that
another issue asks for, or that unifying a definition implies, is listed in an --allow YAML file
(`- {chapter: us, data: synthetic, model: ..., metric: ..., reason: ...}`) and reported, not failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

CHAPTERS = ("sts", "rls", "alt", "wdlps", "us")
RUNS = {
    "synthetic": {"data": "synthetic", "profile": "quick", "seed": 0},
    "public": {"data": "public", "profile": "quick", "seed": 0},
}
TOL = 1e-9


def run(tree: Path, out: Path, chapters, kinds) -> int:
    tree = tree.resolve()
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), REPLICATE_ROOT=str(tree))
    venv_bin = Path(sys.executable).parent
    failed = 0
    for cid in chapters:
        for kind in kinds:
            dest = (out / f"{cid}_{kind}").resolve()
            args = [str(venv_bin / "replicate"), "run", cid, "--out", str(dest)]
            for k, v in RUNS[kind].items():
                args += ["-p", f"{k}={v}"]
            t0 = time.perf_counter()
            rc = subprocess.run(args, cwd=tree, env=env).returncode
            print(f"[refactor_check] {cid} {kind}: rc={rc} in {time.perf_counter() - t0:.0f} s", flush=True)
            failed += rc != 0
    return 1 if failed else 0


def _key(m: dict) -> tuple:
    return (m["model"], m["cohort"], m["metric"], m.get("variable"), m.get("reported_id"))


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= TOL
    return a == b


def compare(before: Path, after: Path, allow: list[dict]) -> int:
    bad = 0
    for path in sorted(before.glob("*/results.json")):
        name = path.parent.name
        cid, kind = name.rsplit("_", 1)
        other = after / name / "results.json"
        if not other.exists():
            print(f"{name}: missing after the change")
            bad += 1
            continue
        b = {_key(m): m for m in json.loads(path.read_text())["metrics"]}
        a = {_key(m): m for m in json.loads(other.read_text())["metrics"]}
        diffs = []
        for k in sorted(set(a) | set(b), key=str):
            mb, ma = b.get(k), a.get(k)
            if mb is None or ma is None:
                diffs.append((k, "only before" if ma is None else "only after", None, None))
                continue
            for field in ("value", "ci"):
                if not _close(mb.get(field), ma.get(field)):
                    diffs.append((k, field, mb.get(field), ma.get(field)))
        n_allowed = 0
        for k, field, vb, va in diffs:
            reason = next(
                (
                    r["reason"]
                    for r in allow
                    if r.get("chapter") == cid
                    and r.get("data", kind) == kind
                    and r.get("model", k[0]) == k[0]
                    and r.get("metric", k[2]) == k[2]
                ),
                None,
            )
            tag = f"allowed ({reason})" if reason else "CHANGED"
            n_allowed += bool(reason)
            print(f"{name}: {tag}: {k[:4]} {field}: {vb} -> {va}")
        n_bad = len(diffs) - n_allowed
        print(f"{name}: {len(b)} metrics before, {len(a)} after; {n_bad} unexplained differences, {n_allowed} allowed")
        bad += n_bad
    return 1 if bad else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("tree", type=Path)
    r.add_argument("out", type=Path)
    r.add_argument("--chapters", nargs="*", default=list(CHAPTERS))
    r.add_argument("--kinds", nargs="*", default=list(RUNS))
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    c.add_argument("--allow", type=Path)
    a = p.parse_args(argv)
    if a.cmd == "run":
        return run(a.tree, a.out, a.chapters, a.kinds)
    allow = []
    if a.allow:
        import yaml

        allow = yaml.safe_load(a.allow.read_text()) or []
    return compare(a.before, a.after, allow)


if __name__ == "__main__":
    sys.exit(main())
