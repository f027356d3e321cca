"""Reported vs reproduced: collect a chapter's metrics, pair them with the spec, judge, write results.json.

A reproduced value is whatever the pipeline computed in this run; a reported
value only ever comes from the paper's spec. What a pair can show is declared in
the spec before any run (its ``comparability``); :func:`judge` applies the
project's rule for it: an equivalence test (TOST) on the same data, a difference
with its interval and the proxy's resolution on other data, nothing on the twin.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .io import atomic_write_json
from .spec import Spec
from .stats._util import z_crit
from .stats.auc import hanley_mcneil_se
from .stats.compare import contrast_word, method_se, mover_difference, resolution, se_from_ci, tost

# Verdict words by comparability (CHAPTER_CONTRACT.md): only same_data pairs carry a verdict about the
# paper; a proxy pair carries a contrast word that is never counted as a reproduction.
SAME_DATA_VERDICTS = ("reproduced", "not reproduced", "inconclusive")
PROXY_VERDICTS = ("consistent on proxy", "lower on proxy", "higher on proxy", "proxy, no interval")
VERDICTS = (*SAME_DATA_VERDICTS, *PROXY_VERDICTS, "not comparable")
COMPARABILITY = ("same_data", "proxy", "twin", "none")
COHORT_NAMES = ("training", "validation", "cv")
RATIO_METRICS = ("OR", "HR")  # compared on the log scale
AUC_METRICS = ("AUC", "C-index")
BINOMIAL_DENOMINATOR = {"SEN": "n_positive", "SPE": "n_negative", "ACC": "n", "ER": "n"}
RESULTS_SCHEMA_VERSION = "1.0"  # src/replicate/schemas/results-<version>.schema.json
LEVEL = 0.95  # proxy differences: 95 % CI
TOST_LEVEL = 0.90  # same_data equivalence: 90 % CI (two one-sided 5 % tests)


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _counts_se(metric: str, value: float, counts: dict) -> tuple[float | None, str]:
    """SE of ``metric`` at ``value`` for a cohort with ``counts`` (n, n_positive, n_negative), if known."""
    n, npos = counts.get("n"), counts.get("n_positive")
    nneg = counts.get("n_negative", None if n is None or npos is None else n - npos)
    if metric == "AUC" and npos and nneg:
        return hanley_mcneil_se(value, npos, nneg), f"Hanley-McNeil (n+={npos}, n-={nneg})"
    denom = {"n": n, "n_positive": npos, "n_negative": nneg}.get(BINOMIAL_DENOMINATOR.get(metric, ""), None)
    if denom and 0 <= value <= 1:
        # the Wilson interval's half-width / z: the binomial SE away from 0 and 1, and not 0 at 0 or 1
        z2 = z_crit(LEVEL) ** 2
        se = math.sqrt(value * (1 - value) / denom + z2 / (4 * denom**2)) / (1 + z2 / denom)
        return se, f"binomial, Wilson (n={denom})"
    return None, ""


def judge(
    spec: Spec, data: str, row: dict, reported: dict | None, conditions=frozenset(), our_counts: dict | None = None
) -> dict:
    """The pair's comparability, difference, resolution and verdict (fields added to a results row).

    ``row`` holds our ``value``, ``ci`` (95 %), and optionally ``se`` (our SE, e.g. the corrected resampled
    SE of a cross-validated mean) and ``seed_values`` (the estimate from R seed re-runs on the same splits).
    """
    if reported is None or not _finite(reported.get("value")):
        return {
            "comparability": "none",
            "comparability_reason": "the paper reports no value",
            "verdict": "not comparable",
            "rule": "the paper reports no value for this metric",
        }
    level, reason = spec.comparability_of(reported, data, conditions)
    out = {"comparability": level, "comparability_reason": reason}
    value, metric = row.get("value"), reported["metric"]
    if level in ("twin", "none"):
        word = "synthetic twin: its effect size is ours" if level == "twin" else reason
        return {**out, "verdict": "not comparable", "rule": f"not comparable ({word})"}
    if not _finite(value):
        return {**out, "verdict": "not comparable", "rule": "not computed in this run"}
    rep = float(reported["value"])
    if level == "same_data":
        return {**out, **_same_data(spec, metric, float(value), rep, row.get("seed_values"))}
    return {**out, **_proxy(spec, reported, metric, float(value), row.get("ci"), row.get("se"), rep, our_counts or {})}


def _same_data(spec: Spec, metric: str, value: float, rep: float, seed_values) -> dict:
    delta = spec.margin(metric)
    d = value - rep
    if delta is None:
        return {
            "difference": d,
            "verdict": "inconclusive",
            "rule": f"same data, but the spec declares no equivalence margin for {metric}",
        }
    if seed_values is None or len(seed_values) < 2:
        return {
            "difference": d,
            "margin": delta,
            "verdict": "inconclusive",
            "rule": "same data: the method's own variability is unknown (no seed re-runs; SE_d needs R >= 2)",
        }
    _, se_d, r = method_se(seed_values)
    eq = tost(d, se_d, delta, TOST_LEVEL)
    return {
        "difference": eq.d,
        "difference_ci": [eq.low, eq.high],
        "difference_ci_level": TOST_LEVEL,
        "margin": delta,
        "se_difference": se_d,
        "resolution": resolution(se_d),
        "resolution_kind": "80% power at two-sided 5%: 2.80 x SE_d (method variability)",
        "verdict": eq.verdict,
        "rule": (
            f"same data, TOST equivalence with margin {delta:g}: the {TOST_LEVEL:.0%} CI of "
            f"d = ours - paper's inside (-{delta:g}, {delta:g}) -> reproduced, clear of "
            f"[-{delta:g}, {delta:g}] -> not reproduced, else inconclusive; SE_d = s_seed x "
            f"sqrt(1 + 1/R) from R = {r} seed re-runs of our pipeline on the same splits "
            f"(s_seed = {float(np.std(seed_values, ddof=1)):.4f})"
        ),
    }


def _proxy(spec: Spec, reported: dict, metric: str, value: float, ci, se_ours, rep: float, our_counts: dict) -> dict:
    ratio = metric in RATIO_METRICS
    if ratio and (value <= 0 or rep <= 0):
        return {"verdict": "proxy, no interval", "rule": "independent samples; a ratio <= 0 has no log scale"}
    tr = math.log if ratio else (lambda x: x)
    scale = "log " if ratio else ""
    d = tr(value) - tr(rep)
    # the paper's SE: from its interval (on the scale where it is symmetric), else from its denominators
    rep_ci, rep_level = reported.get("ci"), float(reported.get("ci_level", LEVEL))
    se_p, how_p = None, ""
    if rep_ci is not None and rep_ci[0] <= rep <= rep_ci[1] and rep_ci[0] < rep_ci[1]:
        se_p, sc = se_from_ci(rep, rep_ci, rep_level, ratio=ratio)
        se_p, how_p = (se_p / rep if ratio else se_p), f"its {rep_level:.0%} CI ({sc} scale)"
    elif not ratio:
        se_p, how_p = _counts_se(metric, rep, spec.denominators(reported))
        how_p = f"its denominators, {how_p}" if se_p is not None else ""
    # our SE at our estimate (for the interval) and at the paper's value (for the resolution)
    if se_ours is not None:
        se_o, how_o, se_o_at_rep, how_res = float(se_ours), "given", float(se_ours), "our SE (resampling)"
    else:
        se_o, how_o = (None, "")
        if ci is not None and ci[0] <= value <= ci[1] and ci[0] < ci[1]:
            se_o, sc = se_from_ci(value, ci, LEVEL, ratio=ratio)
            se_o, how_o = (se_o / value if ratio else se_o), f"our 95% CI ({sc} scale)"
        se_o_at_rep, how_res = (None, "")
        if not ratio:
            se_o_at_rep, how_res = _counts_se(metric, rep, our_counts)
            how_res = f"{how_res} at the reported value" if se_o_at_rep is not None else ""
        if se_o_at_rep is None:
            se_o_at_rep, how_res = se_o, how_o
    out = {"difference": d}
    if se_o_at_rep is not None and se_p is not None:
        out["resolution"] = resolution(se_o_at_rep, se_p)
        out["resolution_kind"] = (
            f"smallest {scale}difference detectable with 80% power at two-sided 5%: "
            f"2.80 x sqrt(V_ours + SE_p^2), V_ours by {how_res}, SE_p from {how_p}"
        )
    if se_p is None or (se_o is None and ci is None):
        return {
            **out,
            "verdict": "proxy, no interval",
            "rule": "independent samples: no interval for the difference (an SE is missing on one side)",
        }
    if ci is not None and rep_ci is not None and not ratio and rep_level == LEVEL and se_ours is None:
        _, low, high = mover_difference(value, ci, rep, rep_ci)
        how = "MOVER (Zou & Donner 2008) from both 95% CIs"
    else:
        half = z_crit(LEVEL) * math.sqrt(se_o**2 + se_p**2)
        low, high, how = d - half, d + half, f"Wald, SE_ours from {how_o}, SE_p from {how_p}"
    word = contrast_word(low, high)
    return {
        **out,
        "difference_ci": [low, high],
        "difference_ci_level": LEVEL,
        "verdict": word,
        "rule": (
            f"independent samples (proxy): d = {scale}ours - {scale}paper's with its 95% CI by {how}; "
            "a contrast, never a reproduction"
        ),
    }


def prevalence_adjusted(sen: float, spe: float, prevalence: float) -> dict[str, float]:
    """PPV and NPV that our sensitivity and specificity would give at another prevalence (Bayes)."""
    ppv_den = sen * prevalence + (1 - spe) * (1 - prevalence)
    npv_den = spe * (1 - prevalence) + (1 - sen) * prevalence
    return {
        "PPV": sen * prevalence / ppv_den if ppv_den > 0 else float("nan"),
        "NPV": spe * (1 - prevalence) / npv_den if npv_den > 0 else float("nan"),
    }


class ChapterResults:
    """Collects what a chapter computed and writes the contract's ``results.json``.

    Pairs are judged when the rows are read (:meth:`all_rows`), so a condition the run declares late
    (e.g. ``untrained_backbone`` once the deep features are extracted) applies to every pair.
    """

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
        self.conditions: set[str] = set()
        self._t0 = time.perf_counter()

    # collecting ----------------------------------------------------------
    def declare(self, condition: str, holds: bool = True) -> None:
        """Declare a run condition the spec's comparability rules may name (e.g. ``untrained_backbone``)."""
        if holds:
            self.conditions.add(condition)
        else:
            self.conditions.discard(condition)

    def add_cohort(self, name: str, n: int, n_positive: int | None = None, source: str = "", **kw) -> None:
        if name not in COHORT_NAMES:
            raise ValueError(f"cohort name must be one of {COHORT_NAMES}, got {name!r}")
        self.cohorts = [c for c in self.cohorts if c["name"] != name]
        self.cohorts.append(
            {
                "name": name,
                "n": int(n),
                "n_positive": None if n_positive is None else int(n_positive),
                "source": source,
                **kw,
            }
        )

    def add_metric(
        self,
        model: str,
        cohort: str,
        metric: str,
        value,
        ci=None,
        *,
        variable: str | None = None,
        note: str | None = None,
        paper_model: str | None = None,
        paper_cohort: str | None = None,
        se: float | None = None,
        seed_values=None,
        **extra,
    ) -> dict:
        """Record one computed metric; it is paired with the spec's reported number, if any.

        ``paper_model`` / ``paper_cohort``: the paper's names when ours differ (e.g. a cohort this
        collector does not know). ``se``: our standard error when the CI alone does not give it (a
        cross-validated mean's corrected resampled SE). ``seed_values``: the estimate from R seed re-runs
        of the pipeline on the same data (``value`` must be their mean); same_data pairs need them.
        """
        if cohort not in COHORT_NAMES:
            raise ValueError(f"cohort name must be one of {COHORT_NAMES}, got {cohort!r}")
        value = None if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value)
        ci = None if ci is None else [float(ci[0]), float(ci[1])]
        row = {"model": model, "cohort": cohort, "metric": metric, "value": value, "ci": ci}
        if variable is not None:
            row["variable"] = variable
        if note:
            row["note"] = note
        if paper_model is not None or paper_cohort is not None:
            row["paper_model"], row["paper_cohort"] = paper_model or model, paper_cohort or cohort
        if se is not None:
            row["se"] = float(se)
        if seed_values is not None:
            seed_values = [float(v) for v in seed_values]
            if value is not None and abs(float(np.mean(seed_values)) - value) > 1e-9:
                raise ValueError(
                    f"{model} / {cohort} / {metric}: value {value} is not the mean of its seed re-runs {seed_values}"
                )
            row["seed_values"] = seed_values
        row.update(extra)
        key = (model, cohort, metric, variable)
        self.metrics = [m for m in self.metrics if (m["model"], m["cohort"], m["metric"], m.get("variable")) != key]
        self.metrics.append(row)
        return self._paired(row)

    def add_metrics(self, model: str, cohort: str, values: dict) -> None:
        """``values``: metric -> value or (value, low, high)."""
        for metric, v in values.items():
            if isinstance(v, (tuple, list)) and len(v) == 3:
                self.add_metric(model, cohort, metric, v[0], (v[1], v[2]))
            else:
                self.add_metric(model, cohort, metric, v)

    def add_performance(self, model: str, cohort: str, report: dict, metrics=None, **extra) -> None:
        """Record a :func:`replicate.stats.metrics.performance` report: each ``(value, low, high)`` metric
        (NaN -> not computed, a NaN bound -> no CI); ``metrics`` picks and orders them (default: all but HL)."""
        for k in metrics or [m for m in report if m != "HL"]:
            v, lo, hi = report[k]
            ok = v is not None and math.isfinite(v)
            ci = (lo, hi) if ok and all(b is not None and math.isfinite(b) for b in (lo, hi)) else None
            self.add_metric(model, cohort, k, float(v) if ok else None, ci, **extra)

    def add_comparison(self, model_a: str, model_b: str, cohort: str, **values) -> None:
        self.comparisons.append({"model_a": model_a, "model_b": model_b, "cohort": cohort, **values})

    def add_delong(self, model_a: str, model_b: str, cohort: str, d, *, test: str = "DeLong", **extra) -> None:
        """Record a DeLong test :class:`replicate.stats.auc.DeLongResult` ``d`` of ``model_a`` against ``model_b``
        (both AUCs, their difference with its SE, z, P and CI); ``extra``: e.g. the paper's P or SE beside ours."""
        self.add_comparison(
            model_a, model_b, cohort, test=test, auc_a=d.auc_a, auc_b=d.auc_b, diff=d.diff, se=d.se, z=d.z,
            p_value=d.p_value, ci=list(d.ci), **extra,
        )  # fmt: skip

    def add_deviation(self, text: str) -> None:
        if text not in self.deviations:
            self.deviations.append(text)

    # pairing ---------------------------------------------------------------
    def _lookup(self, row: dict) -> tuple:
        return (
            row.get("paper_model", row["model"]),
            row.get("paper_cohort", row["cohort"]),
            row["metric"],
            row.get("variable"),
        )

    def _our_counts(self, row: dict) -> dict:
        counts = next((c for c in self.cohorts if c["name"] == row["cohort"]), {})
        out = {k: counts.get(k) for k in ("n", "n_positive") if counts.get(k) is not None}
        out.update({k: int(row[k]) for k in ("n", "n_positive", "n_negative") if row.get(k) is not None})
        return out

    def _paired(self, row: dict, reported: dict | None = None) -> dict:
        rep = reported if reported is not None else self.spec.find_reported(*self._lookup(row))
        out = {
            **row,
            "reported": None if rep is None else rep.get("value"),
            "reported_ci": None if rep is None else rep.get("ci"),
            "reported_id": None if rep is None else rep["id"],
        }
        out.update(judge(self.spec, self.data, row, rep, frozenset(self.conditions), self._our_counts(row)))
        return out

    def unmatched_reported(self) -> list[dict]:
        """Reported entries this run has no value for (they still count: 'not comparable')."""
        seen = {self._paired(m).get("reported_id") for m in self.metrics}
        return [r for r in self.spec.reported if r["id"] not in seen]

    def all_rows(self) -> list[dict]:
        rows = [self._paired(m) for m in self.metrics]
        computed = {self._lookup(m): m for m in self.metrics}
        for r in self.unmatched_reported():
            twin = computed.get((r["model"], r["cohort"], r["metric"], r.get("variable")))
            if twin is not None:
                first = self._paired(twin)
                if r.get("value") == first["reported"] and r.get("ci") in (None, first["reported_ci"]):
                    continue  # the same number stated again (abstract and table): one row is enough
                # The paper states the same metric twice, differently: judge ours against each statement,
                # but count the number once (restatement rows are not counted).
                rows.append({**self._paired(twin, r), "restatement_of": first["reported_id"]})
                continue
            row = {"model": r["model"], "cohort": r["cohort"], "metric": r["metric"], "value": None, "ci": None}
            if r.get("variable"):
                row["variable"] = r["variable"]
            rows.append(self._paired(row, r))
        self._prevalence_adjust(rows)
        return rows

    def _prevalence_adjust(self, rows: list[dict]) -> None:
        """PPV / NPV not comparable at our prevalence: add what our SEN / SPE give at the paper's."""
        by_key = {(r["model"], r["cohort"], r["metric"]): r for r in rows if r.get("value") is not None}
        for r in rows:
            if r["metric"] not in ("PPV", "NPV") or r.get("reported") is None or r["comparability"] != "none":
                continue
            sen, spe = by_key.get((r["model"], r["cohort"], "SEN")), by_key.get((r["model"], r["cohort"], "SPE"))
            rep = next((e for e in self.spec.reported if e["id"] == r["reported_id"]), None)
            d = self.spec.denominators(rep) if rep else {}
            if sen is None or spe is None or not d.get("n") or d.get("n_positive") is None:
                continue
            prev = d["n_positive"] / d["n"]
            r["value_at_reported_prevalence"] = prevalence_adjusted(sen["value"], spe["value"], prev)[r["metric"]]
            r["reported_prevalence"] = prev

    def table(self, only_reported: bool = False) -> pd.DataFrame:
        """Reported-vs-reproduced table for the page."""
        rows = self.all_rows()
        if only_reported:
            rows = [r for r in rows if r.get("reported") is not None]
        return results_table(rows)

    def verdict_counts(self) -> dict[str, int]:
        """Pairs with a reported number by verdict (a number the paper states twice counts once)."""
        return count_verdicts(self.all_rows())

    # writing --------------------------------------------------------------
    def to_dict(self) -> dict:
        prov = dict(self.provenance)
        prov.setdefault("runtime_s", round(time.perf_counter() - self._t0, 1))
        rows = self.all_rows()
        return {
            "schema_version": RESULTS_SCHEMA_VERSION,
            "chapter": self.spec.id,
            "paper": self.spec.citation,
            "data": self.data,
            "parameters": self.parameters,
            "spec_sha256": self.spec.sha256,
            "conditions": sorted(self.conditions),
            "cohorts": self.cohorts,
            "metrics": rows,
            "comparisons": self.comparisons,
            "verdict_counts": count_verdicts(rows),
            "comparability_counts": count_comparability(rows),
            "comparability": self.spec.comparability(self.data),
            "margins": self.spec.margins,
            "deviations": self.deviations,
            "provenance": prov,
            **({"extra": self.extra} if self.extra else {}),
        }

    def write(self, out_dir: str | Path) -> Path:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(out_dir / "results.json", self.to_dict())


def validate_results(res: dict) -> None:
    """Check a ``results.json`` mapping against its versioned JSON Schema (raises ``jsonschema.ValidationError``)."""
    import json

    import jsonschema

    from .config import PACKAGE_DIR

    version = res.get("schema_version", RESULTS_SCHEMA_VERSION)
    schema = json.loads((PACKAGE_DIR / "schemas" / f"results-{version}.schema.json").read_text())
    jsonschema.validate(res, schema)


# views shared by the chapter page and the book's summary (they read results.json rows) -----------------
def _counted(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("reported") is not None and not r.get("restatement_of")]


def count_verdicts(rows: list[dict]) -> dict[str, int]:
    counted = _counted(rows)
    return {v: sum(r["verdict"] == v for r in counted) for v in VERDICTS}


def count_comparability(rows: list[dict]) -> dict[str, int]:
    counted = _counted(rows)
    return {c: sum(r.get("comparability") == c for r in counted) for c in COMPARABILITY}


def fmt_estimate(v, ci=None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    s = f"{v:.{digits}f}"
    if ci is not None and not isinstance(ci, float):
        s += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return s


def results_table(rows: list[dict]) -> pd.DataFrame:
    """Rows of results.json as the page's table: reported, reproduced, comparability, difference, verdict."""
    if not rows:
        return pd.DataFrame()

    def diff(r):
        if r.get("difference") is None:
            return ""
        s = ("log " if r["metric"] in RATIO_METRICS else "") + f"{r['difference']:+.3f}"
        if r.get("difference_ci"):
            lo, hi = r["difference_ci"]
            s += f" [{lo:+.3f}, {hi:+.3f}]"
        return s

    def res(r):
        return "" if r.get("resolution") is None else f"{r['resolution']:.3f}"

    def comp(r):
        c = r.get("comparability", "")
        return f"none: {r.get('comparability_reason', '')}" if c == "none" else c

    return pd.DataFrame(
        {
            "model": [r["model"] for r in rows],
            "cohort": [r["cohort"] for r in rows],
            "metric": [(r["metric"] + (" " + r["variable"] if r.get("variable") else "")).strip() for r in rows],
            "reported": [fmt_estimate(r.get("reported"), r.get("reported_ci")) for r in rows],
            "reproduced": [fmt_estimate(r.get("value"), r.get("ci")) for r in rows],
            "comparability": [comp(r) for r in rows],
            "difference [CI]": [diff(r) for r in rows],
            "resolution": [res(r) for r in rows],
            "verdict": [r["verdict"] for r in rows],
        }
    )


def what_it_shows(res: dict) -> str:
    """One paragraph on what a run's comparisons can and cannot show, with the headline pair's resolution.

    ``res`` is a ``results.json`` mapping; the words come from the spec's comparability declaration.
    """
    comp = res.get("comparability") or {}
    text = (comp.get("shows") or comp.get("reason") or "").strip()
    if res.get("data") == "synthetic":
        return (
            f"{text}. The synthetic twin shows the pipeline working on data shaped like the paper's; its "
            "effect sizes are ours, so nothing on it is compared with the paper."
        ).replace("..", ".")
    head = comp.get("headline")
    row = (
        None
        if not head
        else next(
            (
                r
                for r in res.get("metrics", [])
                if (r["model"], r["cohort"], r["metric"]) == (head["model"], head["cohort"], head["metric"])
                and not r.get("restatement_of")
            ),
            None,
        )
    )
    if row is not None and row.get("resolution") is not None:
        what = (
            "the method's own seed-to-seed variability"
            if row.get("comparability") == "same_data"
            else "both cohorts' sampling error"
        )
        text += (
            f" Resolution: for {row['model']} ({row['cohort']}), an {row['metric']} difference from the "
            f"paper's {row['reported']:.2f} smaller than about {row['resolution']:.2f} would go unnoticed "
            f"(80% power, given {what})."
        )
    return text
