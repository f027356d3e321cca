"""Reported vs reproduced: collect a chapter's metrics, pair them with the spec, judge, write results.json.

A reproduced value is whatever the pipeline computed in this run; a reported
value only ever comes from the paper's spec. The verdict rule is the one the
spec declares (before any run), see :func:`verdict`.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .io import atomic_write_json
from .spec import Spec

VERDICTS = ("reproduced", "not reproduced", "not comparable")
COHORT_NAMES = ("training", "validation", "cv")


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def verdict(rule: dict, data: str, value, ci, reported: dict | None) -> tuple[str, str]:
    """Judge one reproduced value against its reported counterpart.

    Returns ``(verdict, rule_text)``. Rules (declared in the spec):

    * ``reported_in_ci``: reproduced when the reported value lies inside the
      reproduced CI; without a reproduced CI, when ``|reproduced - reported| <=
      tolerance``.
    * ``ci_overlap``: reproduced when the reproduced and reported CIs overlap
      (falls back to ``reported_in_ci`` when the paper gives no CI).
    * ``abs_tolerance``: ``|reproduced - reported| <= tolerance``.

    A pair is *not comparable* when the paper gives no number, when this run
    computed none, or when the entry is not comparable on this kind of data
    (``comparable_on`` in the entry or the rule; synthetic twins by default are
    not comparable: their effect size is ours, not the paper's).
    """
    name = rule["rule"]
    tol = float(rule.get("tolerance", 0.05))
    text = rule.get("description", name)
    if reported is None or not _finite(reported.get("value")):
        return "not comparable", "the paper reports no value for this metric"
    comparable_on = reported.get("comparable_on", rule.get("comparable_on", ["public"]))
    if data not in comparable_on:
        return "not comparable", f"not comparable on {data} data ({text})"
    if not _finite(value):
        return "not comparable", "not computed in this run"
    rep = float(reported["value"])
    rep_ci = reported.get("ci")
    if name == "abs_tolerance" or (ci is None and name in ("reported_in_ci", "ci_overlap")):
        ok = abs(float(value) - rep) <= tol + 1e-12
        return ("reproduced" if ok else "not reproduced"), f"|reproduced - reported| <= {tol}"
    lo, hi = float(ci[0]), float(ci[1])
    if name == "ci_overlap" and rep_ci is not None:
        ok = lo <= float(rep_ci[1]) and float(rep_ci[0]) <= hi
        return ("reproduced" if ok else "not reproduced"), "reported and reproduced 95% CIs overlap"
    ok = lo <= rep <= hi
    return ("reproduced" if ok else "not reproduced"), "reported value inside reproduced 95% CI"


class ChapterResults:
    """Collects what a chapter computed and writes the contract's ``results.json``."""

    def __init__(self, spec: Spec, data: str, parameters: dict[str, Any]):
        self.spec = spec
        self.data = data
        self.parameters = dict(parameters)
        self.cohorts: list[dict] = []
        self.metrics: list[dict] = []
        self.comparisons: list[dict] = []
        self.deviations: list[str] = []
        self.provenance: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self._t0 = time.perf_counter()

    # collecting ----------------------------------------------------------
    def add_cohort(self, name: str, n: int, n_positive: int | None = None, source: str = "", **kw) -> None:
        if name not in COHORT_NAMES:
            raise ValueError(f"cohort name must be one of {COHORT_NAMES}, got {name!r}")
        self.cohorts = [c for c in self.cohorts if c["name"] != name]
        self.cohorts.append({"name": name, "n": int(n),
                             "n_positive": None if n_positive is None else int(n_positive),
                             "source": source, **kw})

    def add_metric(self, model: str, cohort: str, metric: str, value, ci=None, *,
                   variable: str | None = None, note: str | None = None, **extra) -> dict:
        """Record one computed metric; pairs it with the spec's reported number, if any."""
        if cohort not in COHORT_NAMES:
            raise ValueError(f"cohort name must be one of {COHORT_NAMES}, got {cohort!r}")
        value = None if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value)
        ci = None if ci is None else [float(ci[0]), float(ci[1])]
        rep = self.spec.find_reported(model, cohort, metric, variable)
        v, rule_text = verdict(self.spec.verdict_rule, self.data, value, ci, rep)
        row = {"model": model, "cohort": cohort, "metric": metric, "value": value, "ci": ci,
               "reported": None if rep is None else rep.get("value"),
               "reported_ci": None if rep is None else rep.get("ci"),
               "reported_id": None if rep is None else rep["id"],
               "verdict": v, "rule": rule_text}
        if variable is not None:
            row["variable"] = variable
        if note:
            row["note"] = note
        row.update(extra)
        self.metrics = [m for m in self.metrics if not (m["model"], m["cohort"], m["metric"], m.get("variable")) ==
                        (model, cohort, metric, variable)]
        self.metrics.append(row)
        return row

    def add_metrics(self, model: str, cohort: str, values: dict) -> None:
        """``values``: metric -> value or (value, low, high)."""
        for metric, v in values.items():
            if isinstance(v, (tuple, list)) and len(v) == 3:
                self.add_metric(model, cohort, metric, v[0], (v[1], v[2]))
            else:
                self.add_metric(model, cohort, metric, v)

    def add_comparison(self, model_a: str, model_b: str, cohort: str, **values) -> None:
        self.comparisons.append({"model_a": model_a, "model_b": model_b, "cohort": cohort, **values})

    def add_deviation(self, text: str) -> None:
        if text not in self.deviations:
            self.deviations.append(text)

    # views ----------------------------------------------------------------
    def unmatched_reported(self) -> list[dict]:
        """Reported entries this run has no value for (they still count: 'not comparable')."""
        seen = {m.get("reported_id") for m in self.metrics}
        return [r for r in self.spec.reported if r["id"] not in seen]

    def all_rows(self) -> list[dict]:
        rows = list(self.metrics)
        computed = {(m["model"], m["cohort"], m["metric"], m.get("variable")): m for m in self.metrics}
        for r in self.unmatched_reported():
            twin = computed.get((r["model"], r["cohort"], r["metric"], r.get("variable")))
            if twin is not None:
                if r.get("value") == twin["reported"] and r.get("ci") in (None, twin["reported_ci"]):
                    continue  # the same number stated again (abstract and table): one row is enough
                # The paper states the same metric twice, differently: judge ours against each statement.
                v, rule_text = verdict(self.spec.verdict_rule, self.data, twin["value"], twin["ci"], r)
                rows.append({**twin, "reported": r.get("value"), "reported_ci": r.get("ci"),
                             "reported_id": r["id"], "verdict": v, "rule": rule_text})
                continue
            row = {"model": r["model"], "cohort": r["cohort"], "metric": r["metric"], "value": None, "ci": None,
                   "reported": r.get("value"), "reported_ci": r.get("ci"), "reported_id": r["id"],
                   "verdict": "not comparable", "rule": "not computed in this run"}
            if r.get("variable"):
                row["variable"] = r["variable"]
            rows.append(row)
        return rows

    def table(self, only_reported: bool = False) -> pd.DataFrame:
        """Reported-vs-reproduced table for the page."""
        rows = self.all_rows()
        if only_reported:
            rows = [r for r in rows if r.get("reported") is not None]
        df = pd.DataFrame(rows)
        if df.empty:
            return df

        def fmt(v, ci):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "—"
            s = f"{v:.3f}"
            if ci is not None and not (isinstance(ci, float)):
                s += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
            return s

        out = pd.DataFrame({
            "model": df["model"], "cohort": df["cohort"],
            "metric": df["metric"] + (" " + df["variable"].fillna("") if "variable" in df else ""),
            "reported": [fmt(v, c) for v, c in zip(df["reported"], df["reported_ci"])],
            "reproduced": [fmt(v, c) for v, c in zip(df["value"], df["ci"])],
            "verdict": df["verdict"],
        })
        out["metric"] = out["metric"].str.strip()
        return out

    def verdict_counts(self) -> dict[str, int]:
        rows = [r for r in self.all_rows() if r.get("reported") is not None]
        return {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}

    # writing --------------------------------------------------------------
    def to_dict(self) -> dict:
        prov = dict(self.provenance)
        prov.setdefault("runtime_s", round(time.perf_counter() - self._t0, 1))
        return {
            "chapter": self.spec.id,
            "paper": self.spec.citation,
            "data": self.data,
            "parameters": self.parameters,
            "cohorts": self.cohorts,
            "metrics": self.all_rows(),
            "comparisons": self.comparisons,
            "verdict_counts": self.verdict_counts(),
            "verdict_rule": self.spec.verdict_rule,
            "deviations": self.deviations,
            "provenance": prov,
            **({"extra": self.extra} if self.extra else {}),
        }

    def write(self, out_dir: str | Path) -> Path:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(out_dir / "results.json", self.to_dict())
