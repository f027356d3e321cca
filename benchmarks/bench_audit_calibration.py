"""Calibration of `replicate audit` on simulated papers (replicate.audit_sim).

    .venv/bin/python benchmarks/bench_audit_calibration.py [--papers 1000] [--planted 200] [--seed 0]

Audits ``--papers`` internally consistent simulated papers twice (CI methods undeclared, then declared)
and reports, per check, the share of papers with at least one error (the goal: < 1 %) and with at least
one warning. Then plants each error type of ``replicate.audit_sim.PLANTS`` into ``--planted`` of them,
one at a time, and reports the share in which a new finding names the changed entry (as an error, and as
an error or a warning). Writes ``src/replicate/data/audit_calibration.json`` (the stored result the book page
"Audit a paper in ten minutes" shows, read by ``replicate.audit_sim.stored_calibration``) and prints the
tables as Markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from replicate.audit_sim import calibrate, summarise  # noqa: E402
from replicate.io import atomic_write_text  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--papers", type=int, default=1000)
    ap.add_argument("--planted", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE.parent / "src" / "replicate" / "data" / "audit_calibration.json"))
    a = ap.parse_args()
    t0 = time.perf_counter()
    res = calibrate(a.papers, seed=a.seed, n_planted=a.planted)
    tables = summarise(res)
    seconds = time.perf_counter() - t0
    fp, det = tables["false_positives"], tables["detection"]
    out = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": f"benchmarks/bench_audit_calibration.py --papers {a.papers} --planted {a.planted} --seed {a.seed}",
        "papers": a.papers,
        "planted_per_kind": a.planted,
        "seed": a.seed,
        "seconds": round(seconds, 1),
        "goal": "error rate < 1 % of consistent papers for every check",
        "goal_met": bool((fp[["error rate, undeclared", "error rate, declared"]] < 0.01).all().all()),
        "false_positives": fp.reset_index().to_dict(orient="records"),
        "detection": det.reset_index().to_dict(orient="records"),
    }
    atomic_write_text(Path(a.out), json.dumps(out, indent=1))
    print(
        f"## Audit calibration: {a.papers} consistent papers, each error type planted in up to {a.planted} "
        f"({seconds / 60:.1f} min)\n"
    )
    print((fp * 100).round(1).to_markdown() + "\n")
    det_pct = det.copy()
    for col in ("detected_as_error", "detected_as_error_or_warning"):
        det_pct[col] = (det_pct[col] * 100).round(1)
    print(det_pct.to_markdown() + "\n")
    print(f"goal (error rate < 1 % per check) met: {out['goal_met']}; wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
