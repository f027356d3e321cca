"""How well does `replicate audit PAPER.txt` extract a paper's numbers? Recall and precision of extracted
values against the five hand-made chapter specs, per paper, leave-one-paper-out.

    .venv/bin/python benchmarks/bench_audit_text.py [--papers DIR] [--json OUT]

Ground truth: every number of a chapter spec (src/replicate/specs/<id>.yaml) of a kind the extractor
targets: AUC / C-index / SEN / SPE / ACC / PPV / NPV / BCA / ER values (with their CI when the spec has
one), odds ratios (value and CI), model comparisons (SE, else CI), Table-1 counts with their
percentages, and the cohort sizes and class counts. A value counts as found when an extracted value of
the same kind, metric and printed value (and CI) exists; values are matched one to one (a number stated
three times must be extracted three times). Recall = found / in the spec; precision = extracted values
that match a spec value / extracted values. "linked" is the share of found model metrics whose
extracted cohort has the size of the spec's cohort.

Three columns per paper: the core extractor alone; held out (the core plus the rules motivated by the
*other* four papers: the paper is measured without the rules its own text motivated,
replicate.audit_text.RULES); and all rules (in sample).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from replicate.audit_text import RULES, extract_file  # noqa: E402
from replicate.config import specs_dir  # noqa: E402

PAPERS = {
    "wdlps": "yang2022_wdlps_vs_lipoma_ct_mri_deep_features.txt",
    "rls": "tian2024_rls_metachronous_metastasis_cect_dlrn.txt",
    "alt": "spaanderman2024_alt_vs_lipoma_external_validation_worc.txt",
    "sts": "liang2022_sts_lung_metastasis_mri_dlrn.txt",
    "us": "ultrasound_stt_benign_malignant_crdl_fusion.txt",
}
MODEL_METRICS = {"AUC", "C-index", "SEN", "SPE", "ACC", "PPV", "NPV", "BCA", "ER"}


def _r(x, scale=10_000) -> int:
    return int(round(float(x) * scale))


def truth(cid: str) -> tuple[Counter, dict]:
    """The spec's values as matching keys (a multiset), and each model-metric key's cohort sizes."""
    spec = yaml.safe_load((specs_dir() / f"{cid}.yaml").read_text())
    keys, sizes = Counter(), {}
    cohorts = spec["cohorts"]
    for e in spec.get("reported", []):
        v = e.get("value")
        if v is None or isinstance(v, str):
            continue
        if e["metric"] in MODEL_METRICS and not e.get("variable"):
            k = ("metric", e["metric"], _r(v), tuple(_r(c) for c in e["ci"]) if e.get("ci") else None)
            keys[k] += 1
            sizes.setdefault(k, set()).add(cohorts[e["cohort"]]["n"])
        elif e["metric"] == "OR":
            keys[("OR", _r(v, 1000), tuple(_r(c, 1000) for c in e["ci"]) if e.get("ci") else None)] += 1
        elif e["metric"] == "PROP" and e.get("variable") and (e.get("denominators") or {}).get("k") is not None:
            keys[("table1", _r(v), int(e["denominators"]["k"]))] += 1
    for c in spec.get("comparisons", []):
        keys[_cmp_key(c.get("se"), c.get("ci"))] += 1
    for c in cohorts.values():
        for key in ("n", "n_positive", "n_negative"):
            if c.get(key):
                keys[("size", int(c[key]))] = 1
        if c.get("n") and c.get("n_positive") is not None:
            keys[("size", int(c["n"]) - int(c["n_positive"]))] = 1
    return keys, sizes


def _cmp_key(se, ci) -> tuple:
    if se is not None:
        return ("comparison", "se", _r(se, 1000))
    return ("comparison", "ci", tuple(_r(c, 1000) for c in ci) if ci else None)


def extracted(cid: str, papers: Path, exclude: tuple[str, ...]) -> tuple[Counter, dict]:
    ex = extract_file(papers / PAPERS[cid], exclude=exclude)
    keys, sizes = Counter(), {}
    seen = set()
    for it in ex.items:
        if it.kind == "reported":
            dup = (it.metric, it.value, it.ci, it.line, it.cohort, it.model)
            if dup in seen:
                continue
            seen.add(dup)
            k = ("metric", it.metric, _r(it.value), tuple(_r(c) for c in it.ci) if it.ci else None)
            sizes.setdefault(k, []).append((ex.cohorts.get(it.cohort or "", {}) or {}).get("n"))
        elif it.kind == "ratio":
            k = ("OR", _r(it.value, 1000), tuple(_r(c, 1000) for c in it.ci) if it.ci else None)
        elif it.kind == "comparison":
            k = _cmp_key(_num(it.extra.get("se")), it.ci)
        elif it.kind == "table1":
            k = ("table1", _r(it.value), it.extra["k"])
        else:
            continue
        keys[k] += 1
    for c in ex.cohorts.values():
        for key in ("n", "n_positive"):
            if c.get(key):
                keys[("size", int(c[key]))] = 1
        if c.get("n") and c.get("n_positive") is not None:
            keys[("size", int(c["n"]) - int(c["n_positive"]))] = 1
    return keys, sizes


def _num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def score(cid: str, papers: Path, exclude: tuple[str, ...]) -> dict:
    t, t_sizes = truth(cid)
    e, e_sizes = extracted(cid, papers, exclude)
    found = sum(min(n, e[k]) for k, n in t.items())
    model_found = sum(min(n, e[k]) for k, n in t.items() if k[0] == "metric")
    linked = sum(
        min(n, sum(1 for s in e_sizes.get(k, []) if s in t_sizes.get(k, set())))
        for k, n in t.items()
        if k[0] == "metric"
    )
    by_kind = {}
    for kind in ("metric", "OR", "comparison", "table1", "size"):
        tk = sum(n for k, n in t.items() if k[0] == kind)
        ek = sum(n for k, n in e.items() if k[0] == kind)
        fk = sum(min(n, e[k]) for k, n in t.items() if k[0] == kind)
        by_kind[kind] = {"in_spec": tk, "extracted": ek, "found": fk}
    return {
        "in_spec": sum(t.values()),
        "extracted": sum(e.values()),
        "found": found,
        "recall": found / max(1, sum(t.values())),
        "precision": found / max(1, sum(e.values())),
        "linked": linked / max(1, model_found),
        "by_kind": by_kind,
    }


def run(papers: Path) -> dict:
    everyone = tuple(PAPERS)
    out = {}
    for cid in PAPERS:
        out[cid] = {
            "core": score(cid, papers, exclude=everyone),
            "held_out": score(cid, papers, exclude=(cid,)),
            "all_rules": score(cid, papers, exclude=()),
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--papers", default=str(HERE.parent.parent / "shared" / "papers"))
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    papers = Path(a.papers)
    if not papers.is_dir():
        papers = Path("/work/shared/papers")
    res = run(papers)
    print(
        "| paper | values in spec | core: recall / precision | held out: recall / precision (linked) | "
        "all rules: recall / precision |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    tot = {m: Counter() for m in ("core", "held_out", "all_rules")}
    for cid, r in res.items():
        cells = []
        for m in ("core", "held_out", "all_rules"):
            s = r[m]
            tot[m].update(found=s["found"], extracted=s["extracted"], in_spec=s["in_spec"])
            cells.append(
                f"{s['recall']:.0%} / {s['precision']:.0%}" + (f" ({s['linked']:.0%})" if m == "held_out" else "")
            )
        print(f"| {cid} | {r['core']['in_spec']} | " + " | ".join(cells) + " |")
    print(
        "| all five | {} | ".format(tot["core"]["in_spec"])
        + " | ".join(
            f"{t['found'] / t['in_spec']:.0%} / {t['found'] / max(1, t['extracted']):.0%}" for t in tot.values()
        )
        + " |"
    )
    print()
    print("held out, by kind (found / in spec, extracted):")
    for cid, r in res.items():
        print(
            f"  {cid}: "
            + "; ".join(
                f"{k} {v['found']}/{v['in_spec']} ({v['extracted']})" for k, v in r["held_out"]["by_kind"].items()
            )
        )
    print(f"\nrules: {len(RULES)} (" + ", ".join(f"{r.name} <- {r.motivated_by}" for r in RULES) + ")")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
