"""Do a paper's reported numbers hang together? Internal-consistency checks of a spec.

Every check uses only the numbers the paper prints (the spec's ``reported``,
``comparisons`` and ``cohorts``) and the precision it printed them with
(``decimals``): a value ``v`` printed with ``d`` decimals stands for any
number in ``v +- 0.5 * 10**-d``. Nothing here runs a model.

Checks (the ``check`` field of a :class:`Finding`):

``feasibility``
    A proportion (SEN, SPE, ACC, ER, BCA, PPV, NPV, PROP) must be ``k / n`` for an
    integer ``k`` with the cohort's denominators (SEN over positives, SPE over
    negatives, ACC/ER over all; PPV/NPV need some confusion matrix) at the
    printed rounding. Brown & Heathers' GRIM test (2017, Soc Psychol Personal
    Sci 8:363) applied to proportions.
``estimate_in_ci``
    The point estimate lies inside its own confidence interval.
``ci_method``
    Which standard binomial interval (Wald, Wilson, Wilson with continuity
    correction, Clopper-Pearson, Agresti-Coull; :func:`replicate.stats.proportion_ci`)
    reproduces each printed CI from the implied count; a CI no method explains,
    or one that matches a *different* count than its estimate, is flagged.
``confusion_matrix``
    Integer TP/FN/TN/FP consistent with all of a model's metrics in a cohort at
    once (SEN, SPE, PPV, NPV, ACC, ER, BCA).
``class_split``
    Where the paper gives a cohort's size but not its class counts: the splits
    into positives/negatives that every reported SEN/SPE/... of that cohort allows.
``auc_ci_width``
    An AUC interval's width against the widths plausible for the cohort's positives and
    negatives: those of Hanley & McNeil's (1982, Radiology 143:29) standard error and of the
    large-sample DeLong SE of binormal scores with SD ratios ``BINORMAL_SD_RATIOS`` (near AUC 1
    Hanley-McNeil overstates the SE). Narrower than ``AUC_WIDTH_RATIO[0]`` (0.5) x the narrowest
    or wider than ``AUC_WIDTH_RATIO[1]`` (2) x the widest, beyond the printed rounding, is
    implausible; limits outside [0, 1] are impossible. A declared Hanley-McNeil interval must be one.
``comparison``
    A test between two models (DeLong): the difference (stated, or derived from
    the two reported AUCs), its SE, CI and P must agree: CI = diff +- z SE,
    P = 2 (1 - Phi(|diff| / SE)), and "CI excludes 0" iff P < 0.05.
``ratio_ci_p``
    An odds/hazard ratio with CI and P: Wald intervals are symmetric on the log
    scale and give P = 2 (1 - Phi(|log OR| / SE)) with SE from the CI.
``odds_ratio``
    An odds ratio whose 2x2 counts the paper prints elsewhere (``denominators``:
    ``exposed_positive``, ``exposed_negative``, ``n_positive``, ``n_negative``)
    must equal the cross-product ratio of those counts.
``cohort_table``
    Patient-characteristics counts (``metric: PROP``, ``variable: "Name: level [group]"``,
    ``denominators: {n, k}``): percentages equal k/n, the levels of a variable add
    up to the group size, groups add up to the cohort, and cohorts declared
    ``composed_of`` others add up to them (so do their n, n_positive, n_negative);
    a characteristic's P value (``metric: P``) must be what a chi-square (with or
    without Yates' correction), Fisher's exact or likelihood-ratio test gives from
    the printed counts.
``cross_reference``
    The same model, cohort and metric stated in two places with different values
    (and, where one value is another model's, a hint that the two are swapped).
``spec``
    The spec itself cannot be audited (does not load, names an unknown cohort).

Without ``decimals`` an entry's precision is read off the value as written, but
never taken as coarser than 2 decimals for a non-integer value.

Severity: ``error`` = a contradiction beyond the printed rounding (the numbers
cannot all be right); ``warning`` = implausible or unexplained but possible (a slip
of one unit in the last digit is a warning, not an error); ``info`` = what the audit
reconstructed (counts, CI method, confusion matrix).

One root cause, one finding: every finding names the spec entries it is about
(``Finding.ids``) and, where it can tell, the one it suspects (``evidence['culprit']``);
findings that suspect the same entry, or that a finding naming a swap or a balanced
conflict explains, are merged into one (:func:`merge_root_causes`) whose detail lists the
others ("Same root cause: ...") and what they agree the number should be; the merged
findings stay in ``evidence['merged']``. A spec (or cohort) may declare how its CIs were
computed (``ci_method``: a proportion method, ``bootstrap``, or ``{proportion: ..., auc:
...}``); then only that method is checked, and bootstrap CIs are not expected to follow a
formula. The thresholds are calibrated on simulated consistent papers
(:mod:`replicate.audit_sim`, ``benchmarks/bench_audit_calibration.py``).

Cohorts whose estimates are averages over resamples (``estimate: mean`` or
``bootstrap_mean`` in the cohort, and any cohort named ``cv`` unless it says
``estimate: proportion``) are exempt from the count-based checks: a mean over
splits is not ``k / n``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .audit_spec import ci_method_of, load_audit_spec
from .spec import Spec, SpecError, available_specs, load_spec
from .stats.proportions import PROPORTION_METHODS, proportion_ci, proportion_ci_table

__all__ = [
    "Finding",
    "audit_spec",
    "audit",
    "audit_json",
    "summary_table",
    "format_findings",
    "hanley_mcneil_se",
    "feasible_counts",
    "ci_method_table",
    "auc_width_table",
    "comparison_table",
    "odds_ratio_table",
    "confusion_table",
    "AUC_WIDTH_RATIO",
    "RATIO_ASYMMETRY",
    "RATIO_SE_TOLERANCE",
    "SE_RATIO_WARN",
    "CHECKS",
    "SEVERITIES",
    "CHECK_GUIDE",
    "check_guide",
    "binormal_se",
    "auc_se_range",
    "merge_root_causes",
]

SEVERITIES = ("error", "warning", "info")
CHECKS = (
    "feasibility",
    "estimate_in_ci",
    "ci_method",
    "confusion_matrix",
    "class_split",
    "auc_ci_width",
    "comparison",
    "ratio_ci_p",
    "odds_ratio",
    "cohort_table",
    "cross_reference",
    "spec",
)
CONFUSION_METRICS = ("SEN", "SPE", "PPV", "NPV", "ACC", "ER", "BCA")
PROPORTION_METRICS = CONFUSION_METRICS + ("PROP",)
RATIO_METRICS = ("OR", "HR")
#: an AUC CI narrower than half the narrowest, or wider than twice the widest, plausible width is flagged
AUC_WIDTH_RATIO = (0.5, 2.0)
#: binormal SD ratios (positives / negatives) whose DeLong SEs, with Hanley-McNeil's, span the plausible AUC SEs
BINORMAL_SD_RATIOS = (1 / 3, 1 / 2, 1.0, 2.0, 3.0)
#: an OR/HR CI whose two log-scale arms differ by more than this factor is flagged
RATIO_ASYMMETRY = 2.0
#: an OR/HR whose CI-implied log SE is within these factors of the SE its P needs passes (profile CIs)
RATIO_SE_TOLERANCE = (0.8, 1.25)
#: a comparison's SE within these factors of the CI-implied SE (beyond rounding) is a warning, else an error
SE_RATIO_WARN = (0.9, 1.1)
#: how to read each check: (what it asks, what a finding usually means, what to do)
CHECK_GUIDE = {
    "feasibility": (
        "Is each printed proportion a count over its denominator (SEN over positives, SPE over "
        "negatives, ACC over all), at the printed rounding?",
        "a typo, a value of another metric or cohort (the detail lists denominators it does fit), or a "
        "mean over resamples printed as if it were one count; one unit off in the last digit: a slip "
        "(warning)",
        "check the number against the paper's table; a cohort whose numbers are means over resamples "
        "gets `estimate: mean`",
    ),
    "estimate_in_ci": (
        "Does the estimate lie inside its own CI?",
        "one of the three numbers is a typo",
        "the ci_method and confusion_matrix findings merged with it say which",
    ),
    "ci_method": (
        "Which standard interval (Wald, Wilson, Wilson-cc, Clopper-Pearson, Agresti-Coull) gives the "
        "printed CI from the estimate's count?",
        "a CI that is exactly another count's belongs to another number; none at all: a bootstrap or "
        "another method (warning)",
        "declare the paper's method (`ci_method: bootstrap` or `wilson`, ...) to check every CI against it",
    ),
    "confusion_matrix": (
        "Is there one integer TP/FN/TN/FP that gives all of a model's printed SEN, SPE, PPV, NPV, ACC at once?",
        "no: at least one is wrong; 'without X the rest fit' names the odd one out, and two models' "
        "odd ones out that are each other's printed values are a swap",
        "info findings give the reconstructed matrix: the paper's own numbers, recovered",
    ),
    "class_split": (
        "With n but no class counts: which splits into positives and negatives do the printed proportions allow?",
        "none: the proportions contradict each other or come from other cohorts",
        "give the class counts (n_positive) if the paper prints them anywhere",
    ),
    "auc_ci_width": (
        "Is an AUC CI as wide as its cohort allows (between the narrowest and widest width "
        "Hanley-McNeil's and binormal DeLong SEs give)?",
        "far narrower: an SE taken for a CI half-width, a CI over another cohort, a typo; a limit "
        "outside [0, 1]: an untruncated Wald interval (error)",
        "a warning, not an error: bootstrap and DeLong CIs vary; declare `ci_method: {auc: ...}`",
    ),
    "comparison": (
        "Do a DeLong comparison's difference, SE, CI and P agree (CI = diff +- 1.96 SE, P from diff / SE, "
        "CI excludes 0 iff P < 0.05)?",
        "a CI centred on another pair's difference (the detail names it), an SE or P of another row",
        "the AUCs the difference is taken from are named in the finding's ids",
    ),
    "ratio_ci_p": (
        "Is an odds / hazard ratio's CI symmetric on the log scale and its P what the CI implies?",
        "lopsided CI or P off by more than profile-likelihood CIs explain (warning)",
        "check the row",
    ),
    "odds_ratio": (
        "Does an odds ratio equal the cross-product of the 2x2 counts the paper prints?",
        "rows swapped (one finding names both) or the reference level inverted",
        "check Table 1 vs Table 2",
    ),
    "cohort_table": (
        "Do Table-1 counts add up (levels to the group, groups and cohorts to the total) and do the "
        "P values follow from them (chi-square, Yates, Fisher, likelihood ratio)?",
        "a typo in one count (the detail says which level and what it should be), two cells swapped, "
        "or a P value from other counts (warning)",
        "the merged detail says what the numbers agree on",
    ),
    "cross_reference": (
        "Is the same model, cohort and metric printed with the same number everywhere (abstract, "
        "text, tables, discussion)?",
        "a typo in one place, or two models' values swapped; when as many places support each "
        "version, the finding says one is wrong, not which",
        "read both quotes",
    ),
    "spec": (
        "Can the spec be read?",
        "a missing cohort, a malformed number, or an automatic extraction to check",
        "fix the file; for a text, write the draft and correct it",
    ),
}

#: the order in which sources are trusted when a metric is printed in several places
_SOURCE_RANK = {"table": 0, "results": 1, "abstract": 2, "methods": 3, "figure": 4, "discussion": 5}
_EPS = 1e-9


@dataclass
class Finding:
    """One observation about a paper's reported numbers."""

    paper: str
    where: str
    check: str
    severity: str
    detail: str
    evidence: dict = field(default_factory=dict)
    #: the spec entries (reported / comparison ids, or ``cohort:<name>``) the finding is about
    ids: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- small helpers
def _decimals(entry: Mapping, value=None) -> int:
    """Printed decimals: the entry's ``decimals``, else those of the value as written."""
    d = entry.get("decimals")
    if d is not None:
        return int(d)
    v = entry.get("value") if value is None else value
    if v is None:
        return 3
    if isinstance(v, int) and not isinstance(v, bool):
        return 0
    s = repr(float(v))
    if "e" in s or "E" in s:
        return 6
    return max(2, len(s.split(".")[1].rstrip("0")) if "." in s else 0)


def _half(d: int) -> float:
    return 0.5 * 10.0 ** (-d) + _EPS


def _fmt(x, d: int = 3) -> str:
    if x is None:
        return "NA"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{d}f}"


def _fmt_p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _fmt_ci(ci, d: int = 3) -> str:
    return f"[{_fmt(ci[0], d)}, {_fmt(ci[1], d)}]" if ci is not None else ""


def _where(e: Mapping) -> str:
    w = e.get("where", {}) or {}
    head = w.get("table") or w.get("figure") or w.get("section", "?")
    parts = [head]
    if w.get("table") and w.get("section") and w["section"].lower() not in ("results",):
        parts[0] = f"{w['section']}, {head}"
    if w.get("row"):
        parts.append(f"row '{w['row']}'")
    if w.get("column"):
        parts.append(f"column '{w['column']}'")
    s = ", ".join(parts)
    return f"{s} [{e.get('id', '?')}]"


def _where_group(entries: Iterable[Mapping]) -> str:
    """Where a model's metrics are printed: "Table 3, row 'DLRN'" (or the sections)."""
    places = []
    for e in sorted(entries, key=_rank):
        w = e.get("where", {}) or {}
        if w.get("table"):
            p = w["table"] + (f", row '{w['row']}'" if w.get("row") else "")
        else:
            p = w.get("figure") or w.get("section", "?")
        places.append(p)
    return "; ".join(dict.fromkeys(places))


def _label(e: Mapping) -> str:
    var = f" ({e['variable']})" if e.get("variable") else ""
    return f"{e.get('model', '?')}{var} {e.get('metric', '?')}, {e.get('cohort', '?')}"


def _source(e: Mapping) -> str:
    w = e.get("where", {}) or {}
    if w.get("table"):
        return "table"
    sec = (w.get("section") or "").lower()
    for key in ("results", "abstract", "methods", "discussion"):
        if key in sec:
            return key
    return "figure" if w.get("figure") else "other"


def _rank(e: Mapping) -> int:
    return _SOURCE_RANK.get(_source(e), 6)


def _num(v) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _p_interval(p, decimals: int | None = None) -> tuple[float, float] | None:
    """A printed P value as the interval of true values it allows ("<0.001" -> (0, 0.001))."""
    if p is None:
        return None
    if isinstance(p, str):
        s = p.replace(" ", "").replace("P", "").replace("p", "").replace("=", "")
        s = s.replace("≤", "<").replace("≥", ">")
        if s.startswith("<"):
            return (0.0, float(s.lstrip("<")))
        if s.startswith(">"):
            return (float(s.lstrip(">")), 1.0)
        try:
            p = float(s)
        except ValueError:
            return None
        decimals = len(s.split(".")[1]) if "." in s else 0
    d = decimals if decimals is not None else _decimals({}, p)
    h = _half(d)
    return (max(0.0, float(p) - h), min(1.0, float(p) + h))


def _p_two_sided(z: float) -> float:
    return float(2.0 * stats.norm.sf(abs(z)))


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] + _EPS and b[0] <= a[1] + _EPS


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2.0))


def _parse_variable(var: str) -> tuple[str, str | None, str | None]:
    """``"Gender: Male [MDM]"`` -> ("Gender", "Male", "MDM")."""
    m = re.match(r"^\s*(.*?)\s*(?:\[(.*)\])?\s*$", var or "")
    body, group = m.group(1), m.group(2)
    if ":" in body:
        char, level = body.split(":", 1)
        return char.strip(), level.strip(), group.strip() if group else None
    return body.strip(), None, group.strip() if group else None


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC (Hanley & McNeil 1982, Radiology 143:29, eq. 2)."""
    a = float(auc)
    q1 = a / (2.0 - a)
    q2 = 2.0 * a * a / (1.0 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return float(math.sqrt(max(var, 0.0)))


# --------------------------------------------------------------------------- the audit context
class _Ctx:
    """The spec, its cohorts' denominators and the findings collected so far."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.paper = spec.id
        self.findings: list[Finding] = []
        self.cohorts = spec.cohorts
        self.splits: dict[str, list[int]] = {}  # cohort -> feasible n_positive (class counts not stated)
        self.swaps: list[dict] = []  # swapped Table-1 counts found (cells, the finding)

    def add(self, where: str, check: str, severity: str, detail: str, **evidence) -> None:
        self.findings.append(
            Finding(self.paper, where, check, severity, detail, _jsonable(evidence), _finding_ids(where, evidence))
        )

    def counts_apply(self, cohort: str) -> bool:
        """Are this cohort's proportions k/n of its patients (not means over resamples)?"""
        c = self.cohorts.get(cohort, {})
        est = c.get("estimate")
        if est is None:
            return cohort != "cv"
        return est in ("proportion", "k/n", "pooled")

    def counts_apply_to(self, e: Mapping) -> bool:
        """Is this entry a count over patients? Characteristics of patients (``PROP`` with a variable)
        always are; model metrics are unless their cohort's estimates are means over resamples."""
        return (e.get("metric") == "PROP" and bool(e.get("variable"))) or self.counts_apply(e["cohort"])

    def auc_width_applies(self, cohort: str) -> bool:
        """Hanley-McNeil widths fit k/n cohorts and bootstrap CIs, not means over CV splits."""
        est = self.cohorts.get(cohort, {}).get("estimate")
        return est != "mean" and not (est is None and cohort == "cv")

    def denominators(self, e: Mapping) -> dict:
        d = self.spec.denominators(e) if e.get("cohort") in self.cohorts else dict(e.get("denominators", {}))
        return d

    def related_cohorts(self, cohort: str) -> list[str]:
        """The cohort itself, the cohorts it is composed of and those composed of it."""
        out = [cohort]
        for name, c in self.cohorts.items():
            comp = c.get("composed_of") or []
            if name == cohort:
                out += [x for x in comp if x in self.cohorts]
            elif cohort in comp:
                out.append(name)
        return list(dict.fromkeys(out))

    def all_denominators(self, cohort: str | None = None) -> list[tuple[str, int]]:
        out = []
        names = self.related_cohorts(cohort) if cohort else list(self.cohorts)
        for name in names:
            c = self.cohorts[name]
            n, p = c.get("n"), c.get("n_positive")
            neg = c.get("n_negative", (n - p) if (n is not None and p is not None) else None)
            for lab, v in (("n", n), ("n_positive", p), ("n_negative", neg)):
                if v:
                    out.append((f"{lab} of {name}", int(v)))
        return out


def _finding_ids(where: str, evidence: Mapping) -> list[str]:
    """The spec entries a finding names: its evidence's ``ids``, else the ``[id]`` tags of ``where``,
    else the cohort it is about (``cohort:<name>``)."""
    ids = list(evidence.get("ids") or []) or re.findall(r"\[([A-Za-z0-9_.-]+)\]", where)
    if not ids:
        ids = [f"cohort:{c}" for c in re.findall(r"cohort '([^']+)'", where)]
    return sorted(dict.fromkeys(ids))


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    return o


# --------------------------------------------------------------------------- confusion grids
def _grid(metric: str, tp, tn, P: int, N: int):
    fn = P - tp
    fp = N - tn
    n = P + N
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "SEN":
            return tp / P if P else np.full(np.broadcast(tp, tn).shape, np.nan)
        if metric == "SPE":
            return tn / N if N else np.full(np.broadcast(tp, tn).shape, np.nan)
        if metric == "ACC":
            return (tp + tn) / n
        if metric == "ER":
            return (fn + fp) / n
        if metric == "PPV":
            return np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        if metric == "NPV":
            return np.where(tn + fn > 0, tn / np.maximum(tn + fn, 1), np.nan)
        if metric == "BCA":
            return (tp / P + tn / N) / 2.0 if P and N else np.full(np.broadcast(tp, tn).shape, np.nan)
    raise ValueError(metric)


def _solve(
    constraints: Mapping[str, tuple[float, float]], P: int, N: int, fixed: Mapping[str, int] | None = None
) -> np.ndarray:
    """All (TP, TN) with every metric within its (centre, tolerance); shape (m, 2)."""
    tp = np.arange(P + 1)[:, None]
    tn = np.arange(N + 1)[None, :]
    ok = np.ones((P + 1, N + 1), dtype=bool)
    for metric, (centre, tol) in constraints.items():
        g = _grid(metric, tp, tn, P, N)
        ok &= np.abs(g - centre) <= tol
    for metric, k in (fixed or {}).items():
        if metric == "SEN":
            ok &= tp == k
        elif metric == "SPE":
            ok &= tn == k
        elif metric == "ACC":
            ok &= (tp + tn) == k
        elif metric == "ER":
            ok &= (P - tp + N - tn) == k
        elif metric == "PPV":
            ok &= tp == k
        elif metric == "NPV":
            ok &= tn == k
    return np.argwhere(ok)


def _single_counts(metric: str, value: float, tol: float, P: int | None, N: int | None, n: int | None):
    """Counts a single proportion implies: list of (k, denominator)."""
    if metric in ("SEN", "SPE", "ACC", "ER", "PROP"):
        m = {"SEN": P, "SPE": N}.get(metric, n)
        if not m:
            return None
        ks = np.arange(m + 1)
        hit = ks[np.abs(ks / m - value) <= tol]
        return [(int(k), int(m)) for k in hit]
    if metric in ("PPV", "NPV", "BCA"):
        if not P or not N:
            return None
        sol = _solve({metric: (value, tol)}, P, N)
        out = set()
        for tp, tn in sol:
            if metric == "PPV":
                out.add((int(tp), int(tp + N - tn)))
            elif metric == "NPV":
                out.add((int(tn), int(tn + P - tp)))
            else:
                out.add((int(tp), int(tn)))
        return sorted(out)
    return None


# --------------------------------------------------------------------------- check 1: feasibility
def _proportion_entries(ctx: _Ctx):
    for e in ctx.spec.reported:
        if e.get("metric") in PROPORTION_METRICS and _num(e.get("value")) is not None:
            yield e


def _slip(printed: float, exact: float, d: int) -> bool:
    """Is ``printed`` one unit of its last digit away from the correctly rounded ``exact``?"""
    return abs(exact - printed) <= 1.5 * 10.0 ** (-d) + _EPS


def _own_denominator(metric: str, P, N, n):
    return {"SEN": P, "SPE": N}.get(metric, n) if metric in ("SEN", "SPE", "ACC", "ER", "PROP") else None


def check_feasibility(ctx: _Ctx) -> None:
    for e in _proportion_entries(ctx):
        v = float(e["value"])
        d = _decimals(e)
        tol = _half(d)
        metric = e["metric"]
        if not (-tol <= v <= 1 + tol):
            ctx.add(
                _where(e),
                "feasibility",
                "error",
                f"{_label(e)} = {_fmt(v, d)} is not a proportion (outside 0-1); spec values are fractions.",
                value=v,
                culprit=[e["id"]],
            )
            continue
        if not ctx.counts_apply_to(e):
            continue
        den = ctx.denominators(e)
        P, N, n = den.get("n_positive"), den.get("n_negative"), den.get("n")
        k_stated = den.get("k")
        if metric == "PROP" and n is None:
            continue
        if metric in ("SEN", "SPE", "PPV", "NPV", "BCA") and (P is None or N is None):
            continue  # class counts unknown: the class_split check handles it
        counts = _single_counts(metric, v, tol, P, N, n)
        if counts is None:
            continue
        m = _own_denominator(metric, P, N, n)
        if k_stated is not None and m:
            _check_stated_count(ctx, e, v, d, int(k_stated), int(m))
            continue
        if counts:
            continue
        _report_infeasible(ctx, e, v, d, den)


def _check_stated_count(ctx: _Ctx, e: Mapping, v: float, d: int, k: int, m: int) -> None:
    """A proportion printed next to its count: ``k / m`` must round to it."""
    exact = k / m
    if abs(exact - v) <= _half(d):
        return
    slip = _slip(v, exact, d)
    ks = feasible_counts(v, d, m)
    txt = (
        f"{_label(e)}: the paper prints {_fmt(v, d)} next to the count {k}/{m}, but {k}/{m} = "
        f"{exact:.{d + 2}f}, which rounds to {_fmt(exact, d)}"
    )
    if slip:
        txt += ": a slip in the last digit."
    else:
        txt += "." + (f" The printed {_fmt(v, d)} is {ks[0]}/{m}." if len(ks) == 1 else "")
    ctx.add(
        _where(e),
        "feasibility",
        "warning" if slip else "error",
        txt,
        value=v,
        k=k,
        n=m,
        exact=exact,
        slip=slip,
        culprit=[e["id"]],
        implied={"k": ks[0]} if len(ks) == 1 and not slip else {},
        summary=f"the printed {_fmt(v, d)} is not {k}/{m} = {_fmt(exact, d)}",
    )


def _report_infeasible(ctx: _Ctx, e: Mapping, v: float, d: int, den: Mapping) -> None:
    """A proportion no count gives at the printed rounding: truncated? a slip? another denominator?"""
    metric = e["metric"]
    P, N, n = den.get("n_positive"), den.get("n_negative"), den.get("n")
    trunc = _single_counts(metric, v + 0.5 * 10.0 ** (-d), 0.5 * 10.0 ** (-d) - _EPS, P, N, n)
    m = _own_denominator(metric, P, N, n)
    near, slip = "", False
    if m:
        lo_k = math.floor(v * m)
        near = (
            f" The nearest counts give {lo_k}/{m} = {_fmt(lo_k / m, d)} and {lo_k + 1}/{m} = {_fmt((lo_k + 1) / m, d)}."
        )
        slip = any(_slip(v, k / m, d) for k in (lo_k, lo_k + 1) if 0 <= k <= m)
    alt = []
    if m:
        pool = (
            ctx.all_denominators(e["cohort"])
            if metric in ("ACC", "ER", "PROP")
            else [(f"{lab} of {e['cohort']}", x) for lab, x in (("n", n), ("n_positive", P), ("n_negative", N)) if x]
        )
        for lab, mm in pool:
            ks = [] if mm == m else feasible_counts(v, d, mm)
            if ks:
                alt.append(f"{ks[0]}/{mm} ({lab})")
    alt = list(dict.fromkeys(alt))
    den_txt = {
        "SEN": f"{P} positives",
        "SPE": f"{N} negatives",
        "ACC": f"{n} patients",
        "ER": f"{n} patients",
        "PROP": f"n = {n}",
    }.get(metric, f"{P} positives and {N} negatives")
    common = dict(value=v, decimals=d, culprit=[e["id"]], summary=f"{_fmt(v, d)} is no count over {den_txt}")
    if trunc:
        ctx.add(
            _where(e),
            "feasibility",
            "warning",
            f"{_label(e)} = {_fmt(v, d)} cannot be a count over {den_txt} rounded to {d} decimals; "
            f"it fits only if the paper truncated instead of rounding (e.g. {trunc[0][0]}/{trunc[0][1]})." + near,
            truncated_counts=trunc[:5],
            slip=True,
            **common,
        )
    elif slip:
        ctx.add(
            _where(e),
            "feasibility",
            "warning",
            f"{_label(e)} = {_fmt(v, d)} cannot be a count over {den_txt} at {d} decimals, but it is one unit "
            f"of its last digit from one: a rounding slip." + near,
            slip=True,
            **common,
        )
    else:
        extra = f" It does fit {', '.join(alt[:4])}." if alt else ""
        ctx.add(
            _where(e),
            "feasibility",
            "error",
            f"{_label(e)} = {_fmt(v, d)} cannot be obtained as a count over {den_txt} at {d} decimals." + near + extra,
            denominators=dict(den),
            fits_other_denominators=alt[:6],
            **common,
        )


# --------------------------------------------------------------------------- check 2: estimate inside CI
def check_estimate_in_ci(ctx: _Ctx) -> None:
    for e in ctx.spec.reported:
        v, ci = _num(e.get("value")), e.get("ci")
        if v is None or not ci:
            continue
        d = _decimals(e)
        tol = _half(d)
        lo, hi = float(ci[0]), float(ci[1])
        if not (lo - tol <= v <= hi + tol):
            ctx.add(
                _where(e),
                "estimate_in_ci",
                "error",
                f"{_label(e)} = {_fmt(v, d)} lies outside its own CI {_fmt_ci(ci, d)}.",
                value=v,
                ci=[lo, hi],
                culprit=[e["id"]],
                summary=f"{_fmt(v, d)} lies outside its own CI {_fmt_ci(ci, d)}",
            )


# --------------------------------------------------------------------------- check 3: CI method
@lru_cache(maxsize=4096)
def _ci_grid(m: int, level: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every standard interval of every count ``k = 0..m`` (computed once per denominator)."""
    return {meth: proportion_ci_table(m, meth, level) for meth in PROPORTION_METHODS}


def _ci_matches(k: int, m: int, ci, tol: float, level: float, methods=PROPORTION_METHODS) -> list[str]:
    grid = _ci_grid(int(m), float(level))
    return [meth for meth in methods if abs(grid[meth][0][k] - ci[0]) <= tol and abs(grid[meth][1][k] - ci[1]) <= tol]


def _counts_for_ci(ci, dens: Iterable[int], tol: float, level: float, methods, d: int) -> list[dict]:
    """Every count ``k/m`` (over the denominators ``dens``) whose interval by one of ``methods`` is ``ci``."""
    out = []
    for m in sorted({int(x) for x in dens if x}):
        grid = _ci_grid(m, float(level))
        hits: dict[int, list[str]] = defaultdict(list)
        for meth in methods:
            lo, hi = grid[meth]
            for k in np.flatnonzero((np.abs(lo - ci[0]) <= tol) & (np.abs(hi - ci[1]) <= tol)):
                hits[int(k)].append(meth)
        out += [{"k": k, "n": m, "estimate": round(k / m, d + 2), "methods": ms} for k, ms in sorted(hits.items())]
    return out


def check_ci_method(ctx: _Ctx) -> None:
    explained: dict[str, list[str]] = {}
    declared_any: set[str] = set()
    bootstrap = []
    for e in _proportion_entries(ctx):
        ci = e.get("ci")
        metric = e["metric"]
        if not ci or metric == "BCA" or not ctx.counts_apply_to(e):
            continue
        den = ctx.denominators(e)
        P, N, n = den.get("n_positive"), den.get("n_negative"), den.get("n")
        if metric in ("SEN", "SPE", "PPV", "NPV") and (P is None or N is None):
            continue
        declared = ci_method_of(ctx.spec, e["cohort"], "proportion")
        if declared == "bootstrap":
            bootstrap.append(e["id"])
            continue
        methods = (declared,) if declared else PROPORTION_METHODS
        if declared:
            declared_any.add(declared)
        v = float(e["value"])
        d = _decimals(e)
        tol = _half(d)
        level = float(e.get("ci_level", 0.95))
        m_own = _own_denominator(metric, P, N, n)
        counts = _single_counts(metric, v, tol, P, N, n) or []
        if den.get("k") is not None and m_own:
            counts = [(int(den["k"]), int(m_own))]
        if not counts:
            if m_own:
                _ci_of_infeasible(ctx, e, ci, m_own, tol, level, methods, d)
            continue
        matches = {f"{k}/{m}": ms for k, m in counts if (ms := _ci_matches(k, m, ci, tol, level, methods))}
        if matches:
            explained[e["id"]] = sorted({mm for ms in matches.values() for mm in ms})
            continue
        _unexplained_ci(ctx, e, ci, counts, tol, level, methods, d, declared)
    _ci_method_summary(ctx, explained, declared_any, bootstrap)


def _ci_of_infeasible(ctx: _Ctx, e: Mapping, ci, m: int, tol: float, level: float, methods, d: int) -> None:
    """An estimate that is no count can still have a CI that is one: say which count it belongs to."""
    own = _counts_for_ci(ci, [m], tol, level, methods, d)
    if not own:
        return
    o = own[0]
    ctx.add(
        _where(e),
        "ci_method",
        "warning",
        f"{_label(e)} = {_fmt(float(e['value']), d)} is no count over {m}, but its CI {_fmt_ci(ci, d)} is exactly "
        f"{', '.join(o['methods'])} of {o['k']}/{m} = {_fmt(o['k'] / m, d)}: the CI belongs to {o['k']}/{m}.",
        ci_matches_counts=own[:5],
        culprit=[e["id"]],
        implied={"k": o["k"], "value": o["k"] / m},
        summary=f"its CI {_fmt_ci(ci, d)} is exactly {o['methods'][0]} of {o['k']}/{m} = {_fmt(o['k'] / m, d)}",
    )


def _unexplained_ci(ctx: _Ctx, e: Mapping, ci, counts, tol, level, methods, d, declared) -> None:
    v = float(e["value"])
    den = ctx.denominators(e)
    m_own = _own_denominator(e["metric"], den.get("n_positive"), den.get("n_negative"), den.get("n"))
    dens = {m for _, m in counts} | {mm for _, mm in ctx.all_denominators(e["cohort"])}
    other = _counts_for_ci(ci, dens, tol, level, methods, d)
    k0, m0 = counts[0]
    ref = {meth: [round(x, d) for x in proportion_ci(k0, m0, method=meth, level=level)] for meth in PROPORTION_METHODS}
    by = f"the declared method ({declared})" if declared else "no standard interval"
    if other:
        o = other[0]
        own = o["n"] == m_own
        ctx.add(
            _where(e),
            "ci_method",
            "warning",
            f"{_label(e)} = {_fmt(v, d)} {_fmt_ci(ci, d)}: {by} reproduces the CI from the estimate's count "
            f"{k0}/{m0}{' (it gives ' + _fmt_ci(ref[declared], d) + ')' if declared else ''}, but "
            f"{', '.join(o['methods'])} does from {o['k']}/{o['n']} (= {_fmt(o['k'] / o['n'], d)}): the CI "
            "belongs to a different count than its estimate.",
            implied_counts=[f"{k}/{m}" for k, m in counts[:5]],
            ci_matches_other_counts=other[:5],
            intervals_from_implied_count=ref,
            culprit=[e["id"]],
            implied={"k": o["k"], "value": o["k"] / o["n"]} if own else {},
            summary=f"its CI {_fmt_ci(ci, d)} is {o['methods'][0]} of {o['k']}/{o['n']}, not of {k0}/{m0}",
        )
        return
    others = [
        meth for meth in PROPORTION_METHODS if meth not in methods and _ci_matches(k0, m0, ci, tol, level, (meth,))
    ]
    txt = f"{_label(e)} = {_fmt(v, d)} {_fmt_ci(ci, d)}: " + (
        f"the declared method {declared} gives {_fmt_ci(ref[declared], d)} from {k0}/{m0}"
        + (f"; {', '.join(others)} gives the printed CI." if others else "; no standard method gives it.")
        if declared
        else f"none of {', '.join(PROPORTION_METHODS)} reproduces this CI from {k0}/{m0} (nor from any other "
        f"count over the cohort's denominators). Wilson would give {_fmt_ci(ref['wilson'], d)}, "
        f"Clopper-Pearson {_fmt_ci(ref['clopper-pearson'], d)}."
    )
    ctx.add(
        _where(e),
        "ci_method",
        "warning",
        txt,
        implied_counts=[f"{k}/{m}" for k, m in counts[:5]],
        intervals_from_implied_count=ref,
        other_methods=others,
        culprit=[e["id"]],
        summary=f"no {'declared' if declared else 'standard'} method gives its CI {_fmt_ci(ci, d)}",
    )


def _ci_method_summary(ctx: _Ctx, explained: dict, declared: set, bootstrap: list) -> None:
    if bootstrap:
        ctx.add(
            "all proportion CIs",
            "ci_method",
            "info",
            f"{len(bootstrap)} proportion CI(s) are declared bootstrap intervals: not reproducible from counts, "
            "only checked for containing their estimate.",
            ids=bootstrap[:50],
        )
    if not explained:
        return
    tally = Counter(m for ms in explained.values() for m in ms)
    common = [m for m in PROPORTION_METHODS if all(m in ms for ms in explained.values())]
    best = tally.most_common(1)[0][0]
    ev = dict(n_explained=len(explained), methods_per_ci=explained, tally=dict(tally))
    if declared:
        ctx.add(
            "all proportion CIs",
            "ci_method",
            "info",
            f"{len(explained)} proportion CI(s) are reproduced from their implied counts by the declared "
            f"method ({', '.join(sorted(declared))}).",
            **ev,
        )
    elif common:
        ctx.add(
            "all proportion CIs",
            "ci_method",
            "info",
            f"{len(explained)} proportion CI(s) are reproduced from their implied counts; "
            f"method(s) that explain all of them: {', '.join(common)}.",
            **ev,
        )
    else:
        ctx.add(
            "all proportion CIs",
            "ci_method",
            "warning",
            f"{len(explained)} proportion CI(s) are reproduced from their implied counts, but no single "
            f"method explains all of them (most often {best}: {tally[best]}/{len(explained)}); "
            "the paper mixed interval methods.",
            **ev,
        )


# --------------------------------------------------------------------------- check 4: confusion matrix
def _model_groups(ctx: _Ctx) -> dict[tuple[str, str], dict[str, dict]]:
    """(model, cohort) -> metric -> the most authoritative entry (table > results > abstract > ...)."""
    groups: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for e in sorted(_proportion_entries(ctx), key=_rank):
        if e["metric"] == "PROP" or e.get("variable"):
            continue
        groups[(e["model"], e["cohort"])].setdefault(e["metric"], e)
    return groups


def _constraints(entries: Mapping[str, dict]):
    cons, fixed = {}, {}
    for metric, e in entries.items():
        cons[metric] = (float(e["value"]), _half(_decimals(e)))
        k = (e.get("denominators") or {}).get("k")
        if k is not None and metric in ("SEN", "SPE", "ACC", "ER"):
            fixed[metric] = int(k)
    return cons, fixed


def _describe_matrix(tp, tn, P, N) -> dict:
    return {"TP": int(tp), "FN": int(P - tp), "TN": int(tn), "FP": int(N - tn)}


def check_confusion(ctx: _Ctx) -> None:
    unique: list[dict] = []  # inconsistent groups that one metric's removal repairs
    for (model, cohort), entries in _model_groups(ctx).items():
        if len(entries) < 2 or not ctx.counts_apply(cohort):
            continue
        den = ctx.spec.denominators(next(iter(entries.values())))
        P, N = den.get("n_positive"), den.get("n_negative")
        if P is None or N is None:
            continue
        cons, fixed = _constraints(entries)
        where = f"{_where_group(entries.values())} [{model}, {cohort}]"
        ids = [e["id"] for e in entries.values()]
        printed = {m: round(c[0], 6) for m, c in cons.items()}
        sol = _solve(cons, P, N, fixed)
        if len(sol):
            mats = [_describe_matrix(tp, tn, P, N) for tp, tn in sol[:5]]
            uniq = "the unique" if len(sol) == 1 else f"{len(sol)} possible; e.g. the"
            m0 = mats[0]
            ctx.add(
                where,
                "confusion_matrix",
                "info",
                f"{model} ({cohort}, {P} positives / {N} negatives): {', '.join(entries)} are all reproduced by "
                f"{uniq} confusion matrix TP={m0['TP']}, FN={m0['FN']}, TN={m0['TN']}, FP={m0['FP']}.",
                printed=printed,
                matrices=mats,
                n_solutions=len(sol),
                ids=ids,
            )
            continue
        drops = _drop_one(cons, fixed, P, N)
        head = (
            f"{model} ({cohort}, {P} positives / {N} negatives): no integer confusion matrix gives "
            f"{', '.join(f'{m} {_fmt(cons[m][0], _decimals(entries[m]))}' for m in cons)} at once"
        )
        slip = any(_slip(cons[m][0], x["implied_value"], _decimals(entries[m])) for m, x in drops.items())
        rec = dict(
            model=model,
            cohort=cohort,
            where=where,
            head=head,
            entries=entries,
            drops=drops,
            slip=slip,
            ev=dict(printed=printed, consistent_without=drops, ids=ids),
        )
        if len(drops) == 1:
            unique.append(rec)
        else:
            _report_confusion(ctx, rec)
    for rec in _swapped_metrics(ctx, unique):
        _report_confusion(ctx, rec)


def _drop_one(cons, fixed, P, N) -> dict:
    """For each metric: the matrix the other metrics allow without it, and the value it would then have."""
    drops = {}
    for metric in cons:
        c2 = {k: v for k, v in cons.items() if k != metric}
        f2 = {k: v for k, v in fixed.items() if k != metric}
        if not c2:
            continue
        s2 = _solve(c2, P, N, f2)
        if len(s2):
            tp, tn = s2[0]
            implied = float(_grid(metric, np.array(tp), np.array(tn), P, N))
            drops[metric] = {
                "matrix": _describe_matrix(tp, tn, P, N),
                "n_solutions": int(len(s2)),
                "implied_value": round(implied, 4),
            }
    return drops


def _report_confusion(ctx: _Ctx, rec: dict) -> None:
    entries, drops = rec["entries"], rec["drops"]
    if drops:
        txt = "; ".join(
            f"without {m} the rest fit TP={x['matrix']['TP']}, FN={x['matrix']['FN']}, "
            f"TN={x['matrix']['TN']}, FP={x['matrix']['FP']} (which gives {m} = "
            f"{_fmt(x['implied_value'], _decimals(entries[m]))}, printed "
            f"{_fmt(float(entries[m]['value']), _decimals(entries[m]))})"
            for m, x in drops.items()
        )
    else:
        txt = "no single metric's removal makes the rest consistent"
    extra = {}
    if len(drops) == 1:
        ((m, x),) = drops.items()
        e = entries[m]
        extra = dict(
            culprit=[e["id"]],
            implied={"value": x["implied_value"]},
            summary=f"the model's other printed metrics force {m} = {_fmt(x['implied_value'], _decimals(e))}",
        )
    else:
        extra = dict(suspects=rec["ev"]["ids"])
    detail = (
        rec["head"]
        + "; "
        + txt
        + "."
        + (
            " Every drop is within one unit of the last digit: a rounding slip."
            if rec["slip"] and len(drops) == 1
            else ""
        )
    )
    if rec.get("swap"):
        detail = rec["swap"]
    ctx.add(
        rec["where"],
        "confusion_matrix",
        "warning" if rec["slip"] and len(drops) == 1 else "error",
        detail,
        **rec["ev"],
        **extra,
    )


def _swapped_metrics(ctx: _Ctx, recs: list[dict]) -> list[dict]:
    """Two models of one cohort whose inconsistent metric is each the other's printed value: one swap."""
    out, used = [], set()
    for i, a in enumerate(recs):
        for j in range(i + 1, len(recs)):
            b = recs[j]
            if i in used or j in used or a["cohort"] != b["cohort"] or set(a["drops"]) != set(b["drops"]):
                continue
            (m,) = a["drops"]
            ea, eb = a["entries"][m], b["entries"][m]
            tol = _half(_decimals(ea)) + _half(_decimals(eb))
            if (
                abs(a["drops"][m]["implied_value"] - float(eb["value"])) <= tol
                and abs(b["drops"][m]["implied_value"] - float(ea["value"])) <= tol
            ):
                used |= {i, j}
                d = _decimals(ea)
                ids = a["ev"]["ids"] + b["ev"]["ids"]
                out.append(
                    dict(
                        a,
                        where=f"{a['where']}; {b['where']}",
                        slip=False,
                        drops={},
                        ev=dict(
                            printed={a["model"]: a["ev"]["printed"], b["model"]: b["ev"]["printed"]},
                            consistent_without={a["model"]: a["drops"], b["model"]: b["drops"]},
                            ids=ids,
                            swapped=[ea["id"], eb["id"]],
                        ),
                        swap=(
                            f"{m} of {a['model']} and {b['model']} ({a['cohort']}) look swapped: the other "
                            f"metrics of {a['model']} force {m} = {_fmt(a['drops'][m]['implied_value'], d)}, "
                            f"which is printed for {b['model']}, and those of {b['model']} force "
                            f"{_fmt(b['drops'][m]['implied_value'], d)}, printed for {a['model']}."
                        ),
                    )
                )
    return out + [r for k, r in enumerate(recs) if k not in used]


def check_class_split(ctx: _Ctx) -> None:
    """Cohorts with n but no class counts: which splits do the reported proportions allow?"""
    groups = _model_groups(ctx)
    for cohort, c in ctx.cohorts.items():
        if (
            c.get("n_positive") is not None
            or c.get("n_negative") is not None
            or not ctx.counts_apply(cohort)
            or not c.get("n")
        ):
            continue
        n = int(c["n"])
        per_model: dict[str, list[int]] = {}
        per_metric: dict[str, dict[str, list[int]]] = {}
        for (model, coh), entries in groups.items():
            if coh != cohort or not any(m in entries for m in ("SEN", "SPE", "PPV", "NPV", "BCA")):
                continue
            cons, fixed = _constraints(entries)
            per_model[model] = [P for P in range(1, n) if len(_solve(cons, P, n - P, fixed))]
            per_metric[model] = {
                m: [
                    P
                    for P in range(1, n)
                    if len(_solve({m: cons[m]}, P, n - P, {k: v for k, v in fixed.items() if k == m}))
                ]
                for m in cons
            }
        if not per_model:
            continue
        common = sorted(set.intersection(*(set(v) for v in per_model.values())))
        ctx.splits[cohort] = common
        models = ", ".join(per_model)
        if common:
            ctx.add(
                f"cohort '{cohort}'",
                "class_split",
                "info",
                f"The paper gives n = {n} for '{cohort}' but not its class counts; the proportions reported for "
                f"{models} allow {len(common)} split(s): positives in {_ranges(common)}.",
                n=n,
                feasible_n_positive=common,
                per_model={k: _ranges(v) for k, v in per_model.items()},
            )
            continue
        parts = []
        for model, mets in per_metric.items():
            txt = "; ".join(
                f"{m} {_fmt(c2[0], _decimals(groups[(model, cohort)][m]))} allows "
                + (f"positives in {_ranges(v, 8)}" if v and len(v) < n - 1 else "any split" if v else "no split")
                for m, v in mets.items()
                for c2 in [(float(groups[(model, cohort)][m]["value"]),)]
            )
            parts.append(f"{model}: {txt}")
        ctx.add(
            f"cohort '{cohort}'",
            "class_split",
            "error",
            f"The paper gives n = {n} for '{cohort}' but not its class counts, and no split of {n} patients into "
            f"positives and negatives reproduces the reported proportions together ({' | '.join(parts)}).",
            n=n,
            per_model={k: _ranges(v) for k, v in per_model.items()},
            per_metric={k: {m: _ranges(v) for m, v in mets.items()} for k, mets in per_metric.items()},
        )


def _ranges(xs: Iterable[int], most: int | None = None) -> str:
    """``[1, 2, 3, 7]`` -> "1-3, 7" (the first ``most`` runs, then "...")."""
    xs = sorted(xs)
    out = []
    for _, g in itertools.groupby(enumerate(xs), lambda t: t[1] - t[0]):
        g = [v for _, v in g]
        out.append(f"{g[0]}" if len(g) == 1 else f"{g[0]}-{g[-1]}")
    if most is not None and len(out) > most:
        out = out[:most] + ["..."]
    return ", ".join(out)


# --------------------------------------------------------------------------- check 5: AUC intervals
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(64)
_GH_W = _GH_W / _GH_W.sum()


def binormal_se(auc: float, n_pos: int, n_neg: int, sd_ratio: float = 1.0) -> float:
    """Large-sample DeLong SE of an AUC for binormal scores (negatives N(0, 1), positives N(mu, sd_ratio))
    with that AUC: Var = Var(placement of a positive) / n_pos + Var(placement of a negative) / n_neg."""
    a = min(max(float(auc), 1e-6), 1 - 1e-9)
    b = float(sd_ratio)
    mu = stats.norm.ppf(a) * math.sqrt(1 + b * b)
    v10 = float((stats.norm.cdf(mu + b * _GH_X) ** 2 * _GH_W).sum()) - a * a
    v01 = float((stats.norm.sf((_GH_X - mu) / b) ** 2 * _GH_W).sum()) - a * a
    return math.sqrt(max(v10, 0.0) / n_pos + max(v01, 0.0) / n_neg)


def auc_se_range(auc: float, n_pos: int, n_neg: int) -> tuple[float, float]:
    """The SEs an AUC's CI can plausibly rest on: Hanley-McNeil's and the binormal DeLong SEs for SD ratios
    ``BINORMAL_SD_RATIOS`` (near AUC 1 the binormal SEs are half Hanley-McNeil's or less)."""
    ses = [hanley_mcneil_se(auc, n_pos, n_neg)] + [binormal_se(auc, n_pos, n_neg, b) for b in BINORMAL_SD_RATIOS]
    return min(ses), max(ses)


def _clipped_width(v: float, se: float, z: float) -> float:
    return min(1.0, v + z * se) - max(0.0, v - z * se)


def _expected_widths(v: float, splits, z: float) -> tuple[float, float]:
    """The narrowest and widest plausible CI widths over the class splits ``[(P, N), ...]``."""
    lows, highs = [], []
    for p_, n_ in splits:
        se_lo, se_hi = auc_se_range(v, p_, n_)
        lows.append(_clipped_width(v, se_lo, z))
        highs.append(_clipped_width(v, se_hi, z))
    return min(lows), max(highs)


def check_auc_ci(ctx: _Ctx) -> None:
    for e in ctx.spec.reported:
        if e.get("metric") != "AUC":
            continue
        v, ci = _num(e.get("value")), e.get("ci")
        d = _decimals(e)
        if v is not None and not (0 <= v <= 1):
            ctx.add(
                _where(e),
                "auc_ci_width",
                "error",
                f"{_label(e)} = {_fmt(v, d)} is outside [0, 1].",
                value=v,
                culprit=[e["id"]],
            )
        if not ci:
            continue
        lo, hi = float(ci[0]), float(ci[1])
        if lo < -_EPS or hi > 1 + _EPS:
            ctx.add(
                _where(e),
                "auc_ci_width",
                "error",
                f"{_label(e)}: the CI {_fmt_ci(ci, d)} leaves [0, 1]; an AUC cannot (a Wald interval that was "
                "not truncated).",
                ci=[lo, hi],
                culprit=[e["id"]],
            )
        if v is None or not (0 < v < 1) or not ctx.auc_width_applies(e["cohort"]):
            continue
        den = ctx.denominators(e)
        P, N, n = den.get("n_positive"), den.get("n_negative"), den.get("n")
        if P and N:
            splits, who = [(int(P), int(N))], f"{P} positives and {N} negatives"
        elif n and n > 1:
            cands = ctx.splits.get(e["cohort"]) or list(range(1, int(n)))
            splits, who = [(p_, int(n) - p_) for p_ in cands], f"{n} patients whatever their class split"
        else:
            continue
        z = _z(float(e.get("ci_level", 0.95)))
        if ci_method_of(ctx.spec, e["cohort"], "auc") == "hanley-mcneil" and len(splits) == 1:
            _check_declared_hanley_mcneil(ctx, e, v, lo, hi, d, z, *splits[0])
            continue
        _check_auc_width(ctx, e, v, lo, hi, d, z, splits, who)


def _check_auc_width(ctx: _Ctx, e, v, lo, hi, d, z, splits, who) -> None:
    """An AUC CI far narrower or wider than any plausible SE gives (beyond the printed rounding)."""
    lo_r, hi_r = AUC_WIDTH_RATIO
    w = min(hi, 1.0) - max(lo, 0.0)
    tol = 2 * _half(d)
    w_min, w_max = _expected_widths(v, splits, z)
    if w_min <= tol:
        return
    ev = dict(
        auc=v,
        ci=[lo, hi],
        width=round(w, 4),
        expected_width_range=[round(w_min, 4), round(w_max, 4)],
        thresholds=list(AUC_WIDTH_RATIO),
        splits=len(splits),
    )
    if w + tol < lo_r * w_min:
        kind, ref = "narrow", f"{w_min:.3f}, the narrowest width"
    elif w - tol > hi_r * w_max:
        kind, ref = "wide", f"{w_max:.3f}, the widest width"
    else:
        return
    ctx.add(
        _where(e),
        "auc_ci_width",
        "warning",
        f"{_label(e)} = {_fmt(v, d)} {_fmt_ci(e['ci'], d)} is implausibly {kind} for {who}: width {w:.3f} vs "
        f"{ref} that Hanley-McNeil's or a binormal DeLong SE gives (flagged below x{lo_r} or above x{hi_r} "
        "of that range).",
        culprit=[e["id"]],
        summary=f"its CI is implausibly {kind} (width {w:.3f})",
        **ev,
    )


def _check_declared_hanley_mcneil(ctx: _Ctx, e, v, lo, hi, d, z, P, N) -> None:
    se = hanley_mcneil_se(v, P, N)
    exp = (max(0.0, v - z * se), min(1.0, v + z * se))
    dse = abs(hanley_mcneil_se(v + _half(d), P, N) - se) + _half(d)  # the AUC's own rounding
    tol = _half(d) + z * dse
    if abs(exp[0] - lo) > tol or abs(exp[1] - hi) > tol:
        ctx.add(
            _where(e),
            "auc_ci_width",
            "warning",
            f"{_label(e)} = {_fmt(v, d)} {_fmt_ci(e['ci'], d)}: the declared Hanley-McNeil interval for {P} "
            f"positives and {N} negatives is {_fmt_ci(exp, d)}.",
            culprit=[e["id"]],
            expected_ci=list(exp),
            summary="its CI is not the declared Hanley-McNeil interval",
        )


# --------------------------------------------------------------------------- check 6: comparisons
def _auc_entry(ctx: _Ctx, model: str, cohort: str) -> dict | None:
    cands = [
        e
        for e in ctx.spec.reported
        if e.get("model") == model
        and e.get("cohort") == cohort
        and e.get("metric") == "AUC"
        and _num(e.get("value")) is not None
        and not e.get("variable")
    ]
    return sorted(cands, key=_rank)[0] if cands else None


def _cohort_auc_pairs(ctx: _Ctx, cohort: str) -> list[tuple[str, str, float, float]]:
    aucs = {}
    for e in sorted(ctx.spec.reported, key=_rank):
        if (
            e.get("cohort") == cohort
            and e.get("metric") == "AUC"
            and _num(e.get("value")) is not None
            and not e.get("variable")
        ):
            aucs.setdefault(e["model"], (float(e["value"]), _half(_decimals(e))))
    out = []
    for a, b in itertools.permutations(aucs, 2):
        out.append((a, b, aucs[a][0] - aucs[b][0], aucs[a][1] + aucs[b][1]))
    return out


def check_comparisons(ctx: _Ctx) -> None:
    for c in ctx.spec.comparisons:
        where = _where(c) + f" ({c.get('cohort')})"
        name = f"{c['model_a']} vs {c['model_b']} ({c['cohort']})"
        dc = c.get("decimals")
        tol_c = _half(dc if dc is not None else 3)
        diff, tol_diff, diff_src = _num(c.get("diff")), tol_c, "stated"
        ids_diff = [c["id"]]  # the entries a finding about the difference rests on
        if diff is None:
            a, b = _auc_entry(ctx, c["model_a"], c["cohort"]), _auc_entry(ctx, c["model_b"], c["cohort"])
            if a is not None and b is not None:
                ids_diff += [a["id"], b["id"]]
                diff = float(a["value"]) - float(b["value"])
                tol_diff = _half(_decimals(a)) + _half(_decimals(b))
                diff_src = f"from the reported AUCs {_fmt(a['value'], _decimals(a))} - {_fmt(b['value'], _decimals(b))}"
        se = _num(c.get("se"))
        ci = c.get("ci")
        zst = _num(c.get("z"))
        p_int = _p_interval(
            c.get("p_value"),
            None
            if isinstance(c.get("p_value"), str)
            else _decimals({}, c.get("p_value"))
            if c.get("p_value") is not None
            else None,
        )
        zc = _z(0.95)
        ev: dict[str, Any] = dict(
            diff=diff, diff_source=diff_src, se=se, ci=ci, z=zst, p_value=c.get("p_value"), comparison=c["id"]
        )
        mid = half = None
        if ci:
            lo, hi = float(ci[0]), float(ci[1])
            mid, half = (lo + hi) / 2, (hi - lo) / 2
            ev.update(ci_centre=round(mid, 4), se_from_ci=round(half / zc, 4))
        # (a) the CI's centre is the difference
        if mid is not None and diff is not None:
            sign = 1.0
            if abs(mid + diff) < abs(mid - diff) and abs(diff) > tol_diff:
                sign = -1.0  # the CI is of model_b - model_a
            gap = abs(mid - sign * diff)
            if gap > tol_c + tol_diff:
                hint = [
                    f"{a} - {b} = {dd:.3f}"
                    for a, b, dd, t in _cohort_auc_pairs(ctx, c["cohort"])
                    if abs(dd - mid) <= tol_c + t and {a, b} != {c["model_a"], c["model_b"]}
                ]
                ptxt = ""
                if se is not None and p_int is not None:
                    p_mid = _p_two_sided(mid / se)
                    p_diff = _p_two_sided(diff / se) if se else None
                    ptxt = (
                        f" With SE {se:g}, P would be {p_diff:.3f} for the AUC difference and {p_mid:.3f} for "
                        f"the CI's centre; the printed P is {c.get('p_value')}."
                    )
                htxt = f" The centre matches {'; '.join(hint)} instead." if hint else ""
                ctx.add(
                    where,
                    "comparison",
                    "error",
                    f"{name}: the CI {_fmt_ci(ci, 3)} is centred on {mid:.4f}, but the AUC difference is "
                    f"{diff:.3f} ({diff_src}); a DeLong CI is diff +- 1.96 SE." + htxt + ptxt,
                    issue="ci_centre",
                    matches_other_pairs=hint,
                    ids=ids_diff,
                    summary=f"the CI of {name} is centred on {mid:.3f}, not on the AUC difference {diff:.3f}",
                    **ev,
                )
        # (b) SE and CI half-width
        if se is not None and half is not None:
            se_int = (se - tol_c, se + tol_c)
            from_ci = ((half - tol_c) / zc, (half + tol_c) / zc)
            if not _overlap(se_int, from_ci):
                closest = se_int[1] / from_ci[0] if se_int[1] < from_ci[0] else se_int[0] / from_ci[1]
                sev = "warning" if SE_RATIO_WARN[0] <= closest <= SE_RATIO_WARN[1] else "error"
                ctx.add(
                    where,
                    "comparison",
                    sev,
                    f"{name}: SE {se:g} does not match the CI {_fmt_ci(ci, 3)}, whose half-width "
                    f"{half:.4f} implies SE = {half / zc:.4f} (ratio {se / (half / zc):.2f}; "
                    f"{closest:.2f} at the closest rounding).",
                    issue="se_vs_ci",
                    closest_ratio=round(closest, 3),
                    **ev,
                )
        # (c) P and z
        if p_int is not None:
            se_use = se if se is not None else (half / zc if half else None)
            tol_se = tol_c if se is not None else tol_c / zc
            cands = {}
            if zst is not None:
                cands["stated z"] = (abs(zst) - tol_c, abs(zst) + tol_c)
            if se_use:
                for lab, centre, t in (("AUC difference", diff, tol_diff), ("CI centre", mid, tol_c)):
                    if centre is None:
                        continue
                    zlo = max(abs(centre) - t, 0.0) / (se_use + tol_se)
                    zhi = (abs(centre) + t) / max(se_use - tol_se, 1e-12)
                    cands[lab] = (zlo, zhi)
            if mid is not None and half:
                zlo = max(abs(mid) - tol_c, 0.0) / ((half + tol_c) / zc)
                zhi = (abs(mid) + tol_c) / max((half - tol_c) / zc, 1e-12)
                cands["CI alone"] = (zlo, zhi)
            if cands:
                p_of = {lab: (_p_two_sided(z[1]), _p_two_sided(z[0])) for lab, z in cands.items()}
                ev["p_implied"] = {k: [round(x, 4) for x in v] for k, v in p_of.items()}
                if not any(_overlap(pi, p_int) for pi in p_of.values()):
                    txt = "; ".join(f"{lab}: P in [{v[0]:.4f}, {v[1]:.4f}]" for lab, v in p_of.items())
                    ctx.add(
                        where,
                        "comparison",
                        "error",
                        f"{name}: the printed P = {c.get('p_value')} does not follow from z = diff / SE ({txt}).",
                        issue="p_vs_z",
                        ids=ids_diff,
                        **ev,
                    )
        # (d) significance and the CI
        if ci and p_int is not None:
            lo, hi = float(ci[0]), float(ci[1])
            excl = lo > tol_c or hi < -tol_c
            incl = lo < -tol_c and hi > tol_c
            if excl and p_int[0] > 0.05:
                ctx.add(
                    where,
                    "comparison",
                    "error",
                    f"{name}: the CI {_fmt_ci(ci, 3)} excludes 0 but P = {c.get('p_value')} is not below 0.05.",
                    issue="significance",
                    **ev,
                )
            elif incl and p_int[1] < 0.05:
                ctx.add(
                    where,
                    "comparison",
                    "error",
                    f"{name}: the CI {_fmt_ci(ci, 3)} includes 0 but P = {c.get('p_value')} is below 0.05.",
                    issue="significance",
                    **ev,
                )


# --------------------------------------------------------------------------- ratios (OR/HR): CI <-> P, 2x2 counts
def check_ratios(ctx: _Ctx) -> None:
    zc = _z(0.95)
    for e in ctx.spec.reported:
        if e.get("metric") not in RATIO_METRICS:
            continue
        v, ci = _num(e.get("value")), e.get("ci")
        if v is None or not ci or v <= 0 or ci[0] <= 0:
            continue
        d = _decimals(e)
        tol = _half(d)
        lo, hi = float(ci[0]), float(ci[1])
        arm_lo, arm_hi = math.log(v / lo), math.log(hi / v)
        ev = dict(value=v, ci=[lo, hi], log_arms=[round(arm_lo, 4), round(arm_hi, 4)])
        if min(arm_lo, arm_hi) > 0 and max(arm_lo, arm_hi) / min(arm_lo, arm_hi) > RATIO_ASYMMETRY:
            gm = math.sqrt(lo * hi)
            ctx.add(
                _where(e),
                "ratio_ci_p",
                "warning",
                f"{_label(e)} = {_fmt(v, d)} {_fmt_ci(ci, d)}: the CI is lopsided on the log scale (arms "
                f"{arm_lo:.2f} and {arm_hi:.2f}, ratio {max(arm_lo, arm_hi) / min(arm_lo, arm_hi):.1f}); a Wald CI "
                f"would be centred on the estimate, this one on {gm:.3f}.",
                geometric_centre=round(gm, 4),
                **ev,
            )
        p_int = _p_interval(
            e.get("p_value"),
            None
            if isinstance(e.get("p_value"), str)
            else (_decimals({}, e.get("p_value")) if e.get("p_value") is not None else None),
        )
        if p_int is None or abs(math.log(v)) < tol / v:
            continue
        # the log-scale SE the printed P needs (Wald z = log(OR) / SE) against the SE the CI implies
        se_ci = (math.log(hi) - math.log(lo)) / (2 * zc)
        z_lo = stats.norm.isf(min(p_int[1], 1.0) / 2) if p_int[1] < 1 else 0.0
        z_hi = stats.norm.isf(max(p_int[0], 1e-300) / 2)
        se_need = (abs(math.log(v)) / z_hi, abs(math.log(v)) / z_lo if z_lo > 0 else math.inf)
        lo_r, hi_r = RATIO_SE_TOLERANCE
        if se_ci < se_need[0] * lo_r or se_ci > se_need[1] * hi_r:
            p_ci = _p_two_sided(math.log(v) / se_ci)
            ctx.add(
                _where(e),
                "ratio_ci_p",
                "warning",
                f"{_label(e)} = {_fmt(v, d)} {_fmt_ci(ci, d)}, P = {e.get('p_value')}: the CI implies a log-scale "
                f"SE of {se_ci:.3f} and a Wald P of {_fmt_p(p_ci)}; the printed P needs an SE in "
                f"[{se_need[0]:.3f}, {se_need[1]:.3f}] (tolerated: x{lo_r}-x{hi_r}, to allow profile-likelihood CIs).",
                se_from_ci=round(se_ci, 4),
                se_for_p=[round(x, 4) for x in se_need],
                p_from_ci=round(p_ci, 4),
                **ev,
            )


def _or_from_counts(den: Mapping) -> tuple[float, list[float]] | None:
    try:
        a = float(den["exposed_positive"])
        c = float(den["exposed_negative"])
        P, N = float(den["n_positive"]), float(den["n_negative"])
    except KeyError:
        return None
    b, dd = P - a, N - c
    if min(a, b, c, dd) <= 0:
        return None
    orr = (a * dd) / (b * c)
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / dd)
    zc = _z(0.95)
    return orr, [orr * math.exp(-zc * se), orr * math.exp(zc * se)]


def check_odds_ratios(ctx: _Ctx) -> None:
    ors = [e for e in ctx.spec.reported if e.get("metric") == "OR" and _num(e.get("value")) is not None]
    wrong = []  # (entry, OR from counts, evidence)
    for e in ors:
        den = e.get("denominators") or {}
        res = _or_from_counts({**ctx.denominators(e), **den}) if "exposed_positive" in den else None
        if res is None:
            continue
        orr, wald = res
        v = float(e["value"])
        d = _decimals(e)
        tol = _half(d)
        ev = dict(
            value=v,
            or_from_counts=round(orr, 4),
            wald_ci_from_counts=[round(x, 4) for x in wald],
            counts={k: den[k] for k in ("exposed_positive", "exposed_negative") if k in den},
        )
        if abs(orr - v) <= tol:
            ci = e.get("ci")
            if ci and not (abs(wald[0] - ci[0]) <= tol and abs(wald[1] - ci[1]) <= tol):
                ctx.add(
                    _where(e),
                    "odds_ratio",
                    "info",
                    f"{_label(e)} = {_fmt(v, d)} equals the cross-product ratio of the printed counts; its CI "
                    f"{_fmt_ci(ci, d)} is not the Wald CI {_fmt_ci(wald, d)} (likely profile likelihood).",
                    **ev,
                )
            continue
        wrong.append((e, orr, ev))
    done = set()
    for i, (e, orr, ev) in enumerate(wrong):
        if i in done:
            continue
        tol = _half(_decimals(e))
        mate = next(
            (
                j
                for j, (o, orr2, _) in enumerate(wrong)
                if j != i
                and j not in done
                and o.get("model") == e.get("model")
                and abs(float(o["value"]) - orr) <= tol
                and abs(float(e["value"]) - orr2) <= _half(_decimals(o))
            ),
            None,
        )
        if mate is not None:
            done |= {i, mate}
            o, orr2, _ = wrong[mate]
            ctx.add(
                _where(e),
                "odds_ratio",
                "error",
                f"{e.get('model')}: the ORs of '{e.get('variable')}' ({_fmt(float(e['value']), _decimals(e))}) and "
                f"'{o.get('variable')}' ({_fmt(float(o['value']), _decimals(o))}) look swapped: the counts the "
                f"paper prints give {orr:.3f} for '{e.get('variable')}' and {orr2:.3f} for '{o.get('variable')}'.",
                ids=[e["id"], o["id"]],
                swapped=[e["id"], o["id"]],
                culprit=[e["id"], o["id"]],
                **ev,
            )
            continue
        v, d = float(e["value"]), _decimals(e)
        hint = (
            " It equals the inverse ratio: the reference level is the other way round."
            if abs(1 / orr - v) <= _half(d) * 2
            else ""
        )
        ctx.add(
            _where(e),
            "odds_ratio",
            "error",
            f"{_label(e)} = {_fmt(v, d)}, but the counts the paper prints for this variable give OR = {orr:.3f}."
            + hint,
            culprit=[e["id"]],
            summary=f"the counts give OR = {orr:.3f}",
            **ev,
        )


# --------------------------------------------------------------------------- patient-characteristics tables
def _k_of(e: Mapping):
    return (e.get("denominators") or {}).get("k")


def _fits_own(ctx: _Ctx, e: Mapping, k=None) -> bool | None:
    """Does the entry's printed percentage equal its count (or ``k``) over its denominator? None: cannot tell."""
    k = _k_of(e) if k is None else k
    n, v = ctx.denominators(e).get("n"), _num(e.get("value"))
    if k is None or not n or v is None:
        return None
    return abs(int(k) / int(n) - v) <= _half(_decimals(e))


def _copied_from(ctx: _Ctx, e: Mapping) -> dict | None:
    """Another cell of the same table printed with the same count and percentage (a copy-paste slip?)."""
    w = (e.get("where") or {}).get("table")
    for o in ctx.spec.reported:
        if (
            o is not e
            and o.get("metric") == "PROP"
            and (o.get("where") or {}).get("table") == w
            and _k_of(o) == _k_of(e)
            and _num(o.get("value")) == _num(e.get("value"))
        ):
            return o
    return None


def check_cohort_tables(ctx: _Ctx) -> None:
    """Patient-characteristics counts: levels add up to their group, groups and cohorts to their totals."""
    props = [e for e in ctx.spec.reported if e.get("metric") == "PROP" and e.get("variable")]
    by_key: dict[tuple, list[dict]] = defaultdict(list)  # (cohort, char, group) -> entries
    cells: dict[tuple, list[dict]] = defaultdict(list)  # (cohort, char, level, group) -> entries
    for e in props:
        char, level, group = _parse_variable(e["variable"])
        by_key[(e["cohort"], char, group)].append(e)
        cells[(e["cohort"], char, level, group)].append(e)
    for (cohort, char, group), es in by_key.items():
        levels = [e for e in es if _parse_variable(e["variable"])[1] is not None and _source(e) == "table"]
        if len(levels) >= 2 and all(_k_of(e) is not None for e in levels):
            _check_levels(ctx, cohort, char, group, levels)
    mismatches = []
    groups_of: dict[tuple, set] = defaultdict(set)
    for cohort, char, _level, group in cells:
        if group is not None:
            groups_of[(cohort, char)].add(group)
    for (cohort, char, level, group), es in cells.items():
        if group is None and level is not None and groups_of.get((cohort, char)):
            gs = sorted(groups_of[(cohort, char)])
            parts = [cells.get((cohort, char, level, g), []) for g in gs]
            ng = [ctx.denominators(p[0]).get("n") for p in parts if p]
            if len(ng) == len(gs) and sum(ng) == ctx.denominators(es[0]).get("n"):  # the groups cover the cohort
                mismatches += _sum_mismatch(
                    es, parts, (cohort, char, None, tuple(gs), "groups"), level, [(cohort, char, level, g) for g in gs]
                )
    for cohort, c in ctx.cohorts.items():
        for (coh, char, level, group), es in cells.items():
            if coh == cohort and c.get("composed_of"):
                comp = c["composed_of"]
                parts = [cells.get((p, char, level, group), []) for p in comp]
                mismatches += _sum_mismatch(
                    es,
                    parts,
                    (cohort, char, group, tuple(comp), "cohorts"),
                    level,
                    [(p, char, level, group) for p in comp],
                )
    _report_sum_mismatches(ctx, mismatches)


def _check_levels(ctx: _Ctx, cohort: str, char: str, group, levels: list[dict]) -> None:
    ns = {ctx.denominators(e).get("n") for e in levels}
    gname = f"{cohort}{' / ' + group if group else ''}"
    where = f"{_where(levels[0]).split(' [')[0]} ({char}, {gname})"
    ids = [e["id"] for e in levels]
    if len(ns) > 1:
        ctx.add(
            where,
            "cohort_table",
            "error",
            f"'{char}' in {gname}: its levels have different denominators {sorted(ns)}.",
            ids=ids,
            suspects=ids,
        )
        return
    n = ns.pop()
    tot = sum(int(_k_of(e)) for e in levels)
    if tot == n:
        return
    detail = (
        f"'{char}' in {gname}: the levels' counts ({' + '.join(str(_k_of(e)) for e in levels)} = {tot}) "
        f"do not add up to n = {n}."
    )
    bad = [e for e in levels if _fits_own(ctx, e) is False]
    ev: dict[str, Any] = dict(counts={_parse_variable(e["variable"])[1]: _k_of(e) for e in levels}, n=n, ids=ids)
    if len(bad) == 1:  # the one level whose count is not its own percentage
        e = bad[0]
        k_fix = n - (tot - int(_k_of(e)))
        level = _parse_variable(e["variable"])[1]
        detail += f" Only '{level}' ({_k_of(e)}) disagrees with its printed percentage; {n} - the others = {k_fix}."
        src = _copied_from(ctx, e)
        if src:
            pct = _fmt(float(e["value"]) * 100, max(_decimals(e) - 2, 0))
            detail += f" {_k_of(e)} ({pct}%) is also what {_where(src)} prints."
        ev.update(
            culprit=[e["id"]],
            implied={"k": k_fix},
            copied_from=src["id"] if src else None,
            summary=f"the levels of '{char}' in {gname} add up to {tot}, not {n} ({n} - the others = {k_fix})",
        )
    else:
        ev.update(suspects=ids)
    ctx.add(where, "cohort_table", "error", detail, **ev)


def _sum_mismatch(total: list[dict], parts: list[list[dict]], key: tuple, level, part_cells: list) -> list[dict]:
    """The total and parts of one level when the parts do not add up to the total (else nothing)."""
    te = next((e for e in total if _k_of(e) is not None), None)
    pe = [next((e for e in p if _k_of(e) is not None), None) for p in parts]
    if te is None or any(e is None for e in pe):
        return []
    kp = [int(_k_of(e)) for e in pe]
    if int(_k_of(te)) == sum(kp):
        return []
    return [dict(key=key, level=level, total=te, parts=pe, kt=int(_k_of(te)), kp=kp, part_cells=part_cells)]


def _report_sum_mismatches(ctx: _Ctx, mismatches: list[dict]) -> None:
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for m in mismatches:
        by_key[m["key"]].append(m)
    for key, ms in by_key.items():
        swap = _find_swap(ms) if len(ms) == 2 else None
        if swap:
            _report_swap(ctx, key, ms, swap)
            continue
        for m in ms:
            _report_one_sum(ctx, key, m)


def _what(key: tuple, level) -> str:
    cohort, char, group, parts, kind = key
    lv = f": {level}" if level else ""
    g = f" [{group}]" if group else ""
    return (
        f"'{char}{lv}' in {cohort} (groups {', '.join(parts)})"
        if kind == "groups"
        else f"'{char}{lv}'{g} in {cohort} = {' + '.join(parts)}"
    )


def _report_one_sum(ctx: _Ctx, key: tuple, m: dict) -> None:
    te, kt, kp = m["total"], m["kt"], m["kp"]
    ids = [te["id"]] + [e["id"] for e in m["parts"]]
    detail = f"{_what(key, m['level'])}: {kt} in total but the parts give {' + '.join(map(str, kp))} = {sum(kp)}."
    ev: dict[str, Any] = dict(total=kt, parts=kp, ids=ids)
    if _fits_own(ctx, te) is False and _fits_own(ctx, te, sum(kp)):
        detail += f" The total's printed percentage fits {sum(kp)}, not {kt}."
        ev.update(
            culprit=[te["id"]],
            implied={"k": sum(kp)},
            summary=f"the parts add up to {sum(kp)}, and {sum(kp)} is the printed percentage's count",
        )
    else:
        ev.update(
            suspects=ids,
            implied_for={te["id"]: sum(kp), **{e["id"]: kt - (sum(kp) - k) for e, k in zip(m["parts"], kp)}},
        )
    ctx.add(_where(te), "cohort_table", "error", detail, **ev)


def _find_swap(ms: list[dict]):
    """Two levels whose totals, or whose counts in one part, swapped back make every sum right."""
    a, b = ms
    if a["kt"] == sum(b["kp"]) and b["kt"] == sum(a["kp"]):
        return ("total", None)
    for j in range(len(a["kp"])):
        sa = sum(a["kp"]) - a["kp"][j] + b["kp"][j]
        sb = sum(b["kp"]) - b["kp"][j] + a["kp"][j]
        if sa == a["kt"] and sb == b["kt"]:
            return ("part", j)
    return None


def _report_swap(ctx: _Ctx, key: tuple, ms: list[dict], swap) -> None:
    a, b = ms
    cohort, char = key[0], key[1]
    kind, j = swap
    if kind == "total":
        ea, eb = a["total"], b["total"]
        cells = None
    else:
        ea, eb = a["parts"][j], b["parts"][j]
        cells = (a["part_cells"][j], b["part_cells"][j])
    ids = sorted({m["total"]["id"] for m in ms} | {e["id"] for m in ms for e in m["parts"]})
    w = ea.get("where") or {}
    cell = f"{w['table']}, column '{w['column']}'" if w.get("table") and w.get("column") else f"the {_place(ea)}"
    detail = (
        f"'{char}' in {cohort}: '{a['level']}' ({a['kt']} in total, parts {' + '.join(map(str, a['kp']))}) and "
        f"'{b['level']}' ({b['kt']}, parts {' + '.join(map(str, b['kp']))}) do not add up, but with the "
        f"'{a['level']}' and '{b['level']}' counts in {cell} ({_k_of(ea)} and {_k_of(eb)}) swapped they do: "
        "the two counts look swapped."
    )
    ctx.add(
        _where(ea), "cohort_table", "error", detail, ids=ids, swapped=[ea["id"], eb["id"]], culprit=[ea["id"], eb["id"]]
    )
    if cells:
        ctx.swaps.append({"cells": cells, "finding": ctx.findings[-1]})


def _table_tests(table: np.ndarray) -> dict[str, float]:
    """P values of the usual tests of a levels x groups count table."""
    out = {}
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return out
    out["chi-square"] = float(stats.chi2_contingency(table, correction=False)[1])
    if table.shape == (2, 2):
        out["chi-square (Yates)"] = float(stats.chi2_contingency(table, correction=True)[1])
        out["Fisher exact"] = float(stats.fisher_exact(table)[1])
    out["likelihood ratio"] = float(stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")[1])
    return out


def _p_table(ctx: _Ctx, cells: Mapping[tuple, int], cohort: str, char: str):
    """The levels x groups (or levels x parts) count table a characteristic's P value is about, else None."""
    levels = sorted({lv for (c, ch, lv, g) in cells if c == cohort and ch == char})
    groups = sorted({g for (c, ch, lv, g) in cells if c == cohort and ch == char and g is not None})
    if levels and len(groups) >= 2:
        if all((cohort, char, lv, g) in cells for lv in levels for g in groups):
            return np.array([[cells[(cohort, char, lv, g)] for g in groups] for lv in levels]), levels, groups
        return None
    parts = ctx.cohorts.get(cohort, {}).get("composed_of")
    if not parts:
        return None
    levels = sorted({lv for (c, ch, lv, g) in cells if c in parts and ch == char})
    rows = []
    for lv in levels:
        row = []
        for p in parts:
            if (p, char, lv, None) in cells:
                row.append(cells[(p, char, lv, None)])
            else:
                gs = [k for (c, ch, l2, g), k in cells.items() if c == p and ch == char and l2 == lv and g]
                row.append(sum(gs) if gs else None)
        rows.append(row)
    if levels and all(x is not None for r in rows for x in r):
        return np.array(rows), levels, list(parts)
    return None


def _p_explained_by_swap(ctx: _Ctx, cells: dict, cohort: str, char: str, p_int) -> tuple[dict, str, float] | None:
    """A swap found in the counts (``ctx.swaps``) that, undone, gives the printed P value."""
    for sw in ctx.swaps:
        a, b = sw["cells"]
        if a[1] != char or a not in cells or b not in cells:
            continue
        fixed = dict(cells)
        fixed[a], fixed[b] = cells[b], cells[a]
        res = _p_table(ctx, fixed, cohort, char)
        if res is None or res[0].shape[0] < 2:
            continue
        for test, p in _table_tests(res[0]).items():
            if p_int[0] - _EPS <= p <= p_int[1] + _EPS:
                return sw, test, p
    return None


def check_table_p_values(ctx: _Ctx) -> None:
    """Patient-characteristics P values against the tests their printed counts allow."""
    cells: dict[tuple, int] = {}
    cell_ids: dict[tuple, str] = {}
    for e in ctx.spec.reported:
        if e.get("metric") == "PROP" and e.get("variable") and _k_of(e) is not None:
            char, level, group = _parse_variable(e["variable"])
            if level is not None and (e["cohort"], char, level, group) not in cells:
                cells[(e["cohort"], char, level, group)] = int(_k_of(e))
                cell_ids[(e["cohort"], char, level, group)] = e["id"]
    explained, unexplained = {}, 0
    for e in ctx.spec.reported:
        if e.get("metric") != "P" or not e.get("variable"):
            continue
        p_raw = e.get("p_value", e.get("value"))
        p_int = _p_interval(
            p_raw, None if isinstance(p_raw, str) else _decimals({}, p_raw) if p_raw is not None else None
        )
        if p_int is None:
            continue
        char, cohort = _parse_variable(e["variable"])[0], e["cohort"]
        res = _p_table(ctx, cells, cohort, char)
        if res is None or res[0].shape[0] < 2:
            continue
        table, levels, cols = res
        tests = _table_tests(table)
        if not tests:
            continue
        ok = [t for t, p in tests.items() if p_int[0] - _EPS <= p <= p_int[1] + _EPS]
        ev = dict(
            table={"levels": levels, "groups": cols, "counts": table.tolist()},
            p_printed=p_raw,
            p_tests={t: round(p, 4) for t, p in tests.items()},
        )
        if ok:
            explained[e["id"]] = ok
            continue
        unexplained += 1
        swap = _p_explained_by_swap(ctx, cells, cohort, char, p_int)
        if swap:  # the same root cause as the swapped counts: say so there
            sw, test, p = swap
            f = sw["finding"]
            f.detail += f" With them swapped back, the {test} P of '{char}' is {p:.3f}, as printed ({p_raw})."
            f.ids = sorted(set(f.ids) | {e["id"]})
            continue
        ctx.add(
            _where(e),
            "cohort_table",
            "warning",
            f"'{char}' ({' vs '.join(map(str, cols))} in {cohort}): the printed P = {p_raw} is not what the "
            f"printed counts give with the usual tests (" + ", ".join(f"{t} {p:.3f}" for t, p in tests.items()) + ").",
            issue="p_value",
            ids=[e["id"]] + [i for (c, ch, lv, g), i in cell_ids.items() if ch == char and c in cols + [cohort]],
            **ev,
        )
    if explained:
        tally = Counter(t for ts in explained.values() for t in ts)
        ctx.add(
            "patient-characteristics P values",
            "cohort_table",
            "info",
            f"{len(explained)} of {len(explained) + unexplained} P values of categorical characteristics are "
            f"reproduced from the printed counts ({', '.join(f'{t}: {n}' for t, n in tally.most_common())}).",
            issue="p_value",
            tests_per_p=explained,
            tally=dict(tally),
        )


def check_cohort_sizes(ctx: _Ctx) -> None:
    for cohort, c in ctx.cohorts.items():
        comp = c.get("composed_of")
        if not comp:
            continue
        unknown = [p for p in comp if p not in ctx.cohorts]
        if unknown:
            ctx.add(
                f"cohort '{cohort}'",
                "spec",
                "error",
                f"cohort '{cohort}' is composed_of {unknown}, which the spec does not define.",
                unknown=unknown,
            )
            continue
        for key in ("n", "n_positive", "n_negative"):
            if c.get(key) is None or any(ctx.cohorts.get(p, {}).get(key) is None for p in comp):
                continue
            s = sum(int(ctx.cohorts[p][key]) for p in comp)
            if s != int(c[key]):
                ctx.add(
                    f"cohort '{cohort}'",
                    "cohort_table",
                    "error",
                    f"cohort '{cohort}' has {key} = {c[key]}, but its parts {comp} add up to {s}.",
                    key=key,
                    total=int(c[key]),
                    parts={p: ctx.cohorts[p][key] for p in comp},
                )


# --------------------------------------------------------------------------- check 7: cross-references
def _place(e: Mapping) -> str:
    """Where a statement is, at the granularity of an independent place (a table, a section)."""
    w = e.get("where") or {}
    return w.get("table") or w.get("figure") or w.get("section", "?")


def _swap_partner(ctx: _Ctx, primary: Mapping, key: tuple, e: Mapping) -> dict | None:
    """The entry whose (primary) value ``e`` carries: another model, or another level of the same
    characteristic, in the same cohort and metric."""
    vb, cb = _num(e.get("value")), e.get("ci")
    if vb is None:
        return None
    tb = _half(_decimals(e))
    char_e = _parse_variable(key[3])[::2] if key[3] else None
    for k2, p in primary.items():
        if k2 == key or k2[1:3] != key[1:3] or _num(p.get("value")) is None:
            continue
        if (k2[3] is None) != (key[3] is None) or (char_e and _parse_variable(k2[3])[::2] != char_e):
            continue  # a different variable: never a swap partner
        tol = tb + _half(_decimals(p))
        if abs(float(p["value"]) - vb) <= tol and (not cb or not p.get("ci") or abs(p["ci"][0] - cb[0]) <= tol):
            return p
    return None


def _key(e: Mapping) -> tuple:
    return (e.get("model"), e.get("cohort"), e.get("metric"), e.get("variable"))


def check_cross_references(ctx: _Ctx) -> None:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in ctx.spec.reported:
        groups[_key(e)].append(e)
    # the value each (model, cohort, metric) has in its most authoritative place
    primary = {key: sorted(es, key=_rank)[0] for key, es in groups.items()}
    conflicts = []
    for key, es in groups.items():
        es = sorted(es, key=_rank)
        ref = es[0]
        for e in es[1:]:
            problems = _disagreements(e, ref)
            if problems:
                conflicts.append(
                    dict(key=key, e=e, ref=ref, problems=problems, partner=_swap_partner(ctx, primary, key, e))
                )
    failing = {
        f.evidence["culprit"][0]
        for f in ctx.findings
        if f.severity == "error" and len(f.evidence.get("culprit") or []) == 1
    }
    for c in conflicts:  # the more authoritative statement is the one that fails its own checks
        c["ref_fails"] = c["ref"]["id"] in failing and c["e"]["id"] not in failing
    done: set[int] = set()
    for i, c in enumerate(conflicts):
        if i in done or c["partner"] is None:
            continue
        j = next(
            (
                j
                for j, c2 in enumerate(conflicts)
                if j != i
                and j not in done
                and c2["partner"] is not None
                and c2["key"] == _key(c["partner"])
                and _key(c2["partner"]) == c["key"]
            ),
            None,
        )
        if j is not None:
            done |= {i, j}
            _report_value_swap(ctx, groups, c, conflicts[j])
    for i, c in enumerate(conflicts):
        if i not in done:
            _report_conflict(ctx, c)


def _disagreements(e: Mapping, ref: Mapping) -> list[str]:
    problems = []
    va, vb = _num(ref.get("value")), _num(e.get("value"))
    ta, tb = _half(_decimals(ref)), _half(_decimals(e))
    if va is not None and vb is not None and abs(va - vb) > ta + tb:
        problems.append(f"value {_fmt(vb, _decimals(e))} vs {_fmt(va, _decimals(ref))}")
    ca, cb = ref.get("ci"), e.get("ci")
    if ca and cb and (abs(ca[0] - cb[0]) > ta + tb or abs(ca[1] - cb[1]) > ta + tb):
        problems.append(f"CI {_fmt_ci(cb, _decimals(e))} vs {_fmt_ci(ca, _decimals(ref))}")
    ka, kb = _k_of(ref), _k_of(e)
    if ka is not None and kb is not None and ka != kb:
        problems.append(f"count {kb} vs {ka}")
    return problems


def _report_conflict(ctx: _Ctx, c: dict) -> None:
    e, ref, same = c["e"], c["ref"], c["partner"]
    vb = _num(e.get("value"))
    hint = ""
    if same is not None:
        hint = (
            f" The value {_fmt(vb, _decimals(e))} is what {_where(same).split(' [')[0]} gives for "
            f"{same['model']}{' (' + same['variable'] + ')' if same.get('variable') else ''}"
            ": the two look swapped."
        )
    if c.get("ref_fails"):
        hint += f" Of the two, {_where(ref).split(' [')[0]}'s fails its own checks."
    ctx.add(
        f"{_where(e)} vs {_where(ref)}",
        "cross_reference",
        "error",
        f"{_label(e)} is stated twice with different numbers: {'; '.join(c['problems'])} "
        f"({(e.get('where') or {}).get('section', '?')} vs {_where(ref).split(' [')[0]}).{hint}",
        ids=[e["id"], ref["id"]],
        values=[vb, _num(ref.get("value"))],
        cis=[e.get("ci"), ref.get("ci")],
        swapped_with=[same["id"]] if same is not None else [],
        culprit=[ref["id"] if c.get("ref_fails") else e["id"]],
        summary=(
            f"{_place(e)} prints {_fmt(vb, _decimals(e))}"
            if c.get("ref_fails")
            else f"{_label(e)} is {_fmt(vb, _decimals(e))} in {_place(e)}"
        ),
    )


def _agrees(e: Mapping, value: float, d: int) -> bool:
    v = _num(e.get("value"))
    return v is not None and abs(v - value) <= _half(_decimals(e)) + _half(d)


def _report_value_swap(ctx: _Ctx, groups: Mapping, c1: dict, c2: dict) -> None:
    """Two statements' values exchanged between two models (or levels): which version has more support?"""
    x, y = c1["key"], c2["key"]
    a, b = float(c1["ref"]["value"]), float(c2["ref"]["value"])
    da, db = _decimals(c1["ref"]), _decimals(c2["ref"])
    as_ref = [e for e in groups[x] if _agrees(e, a, da)] + [e for e in groups[y] if _agrees(e, b, db)]
    swapped = [e for e in groups[x] if _agrees(e, b, db)] + [e for e in groups[y] if _agrees(e, a, da)]
    places_ref = list(dict.fromkeys(_place(e) for e in as_ref))
    places_sw = list(dict.fromkeys(_place(e) for e in swapped))
    fit_ref, fit_sw = _comparisons_fitting(ctx, x, y, a, b) if x[2] == "AUC" else ([], [])
    for cmp, places in ((fit_ref, places_ref), (fit_sw, places_sw)):
        places += list(dict.fromkeys(f"the comparisons of {_place(c)}" for c in cmp))
    name = lambda k: k[0] + (f" ({k[3]})" if k[3] else "")  # noqa: E731
    v_ref = f"{name(x)} {_fmt(a, da)}, {name(y)} {_fmt(b, db)}"
    v_sw = f"{name(x)} {_fmt(b, db)}, {name(y)} {_fmt(a, da)}"
    cmp_txt = (
        (
            f" ({', '.join(c['model_a'] + ' vs ' + c['model_b'] for c in fit_sw)}: their CIs are centred on the "
            "differences of the swapped values)"
        )
        if fit_sw
        else ""
    )
    detail = (
        f"{x[2]} of {name(x)} and {name(y)} ({x[1]}) is printed both ways round: "
        f"{' and '.join(places_ref)} give {v_ref}; {' and '.join(places_sw)}{cmp_txt} give {v_sw}. "
    )
    if len(places_ref) == len(places_sw):
        detail += (
            f"The evidence is balanced ({len(places_ref)} place(s) each): one of the two versions is wrong, "
            "and the printed numbers cannot tell which."
        )
        verdict = "balanced"
    else:
        more, fewer = (v_ref, v_sw) if len(places_ref) > len(places_sw) else (v_sw, v_ref)
        detail += f"More places support {more} than {fewer}: the latter is the likelier error."
        verdict = "reference" if len(places_ref) > len(places_sw) else "swapped"
    ids = [e["id"] for e in as_ref + swapped] + [c["id"] for c in fit_ref + fit_sw]
    ctx.add(
        f"{_where(c1['e'])} vs {_where(c1['ref'])}",
        "cross_reference",
        "error",
        detail,
        ids=ids,
        versions={"as_in_" + _place(c1["ref"]): places_ref, "swapped": places_sw},
        verdict=verdict,
        explains=[c["id"] for c in fit_sw],
        culprit=[c1["e"]["id"], c2["e"]["id"]],
    )


def _comparisons_fitting(ctx: _Ctx, x: tuple, y: tuple, a: float, b: float) -> tuple[list, list]:
    """The cohort's model comparisons whose CI centre (or stated difference) fits the two AUCs as printed
    in the reference place (x = a, y = b), and those that fit them swapped, but not both."""
    cohort = x[1]
    aucs = {}
    for e in sorted(ctx.spec.reported, key=_rank):
        if (
            e.get("cohort") == cohort
            and e.get("metric") == "AUC"
            and not e.get("variable")
            and _num(e.get("value")) is not None
        ):
            aucs.setdefault(e["model"], (float(e["value"]), _half(_decimals(e))))
    fit_ref, fit_sw = [], []
    for c in ctx.spec.comparisons:
        if c.get("cohort") != cohort or not ({c["model_a"], c["model_b"]} & {x[0], y[0]}):
            continue
        centre = _num(c.get("diff"))
        if centre is None and c.get("ci"):
            centre = (c["ci"][0] + c["ci"][1]) / 2
        if centre is None or c["model_a"] not in aucs or c["model_b"] not in aucs:
            continue
        tol = (
            _half(c.get("decimals") if c.get("decimals") is not None else 3)
            + aucs[c["model_a"]][1]
            + aucs[c["model_b"]][1]
        )
        fits = []
        for version in ({x[0]: a, y[0]: b}, {x[0]: b, y[0]: a}):
            va = version.get(c["model_a"], aucs[c["model_a"]][0])
            vb = version.get(c["model_b"], aucs[c["model_b"]][0])
            fits.append(abs((va - vb) - centre) <= tol or abs((vb - va) - centre) <= tol)
        if fits[0] and not fits[1]:
            fit_ref.append(c)
        elif fits[1] and not fits[0]:
            fit_sw.append(c)
    return fit_ref, fit_sw


# --------------------------------------------------------------------------- one root cause, one finding
#: which finding of a merged group speaks for it (the rest become its "same root cause" clauses)
_PRIMARY_ORDER = (
    "cross_reference",
    "cohort_table",
    "feasibility",
    "estimate_in_ci",
    "confusion_matrix",
    "ci_method",
    "comparison",
    "class_split",
    "auc_ci_width",
    "ratio_ci_p",
    "odds_ratio",
    "spec",
)


def _root_cause_groups(findings: list[Finding]) -> list[list[int]]:
    """Indices of errors/warnings that share a root cause: the same single suspected entry (``culprit``),
    an entry among the suspects of a finding that could not name one (``suspects``), or comparisons a
    finding explains (``explains``)."""
    parent = list(range(len(findings)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i, j):
        parent[find(i)] = find(j)

    active = [i for i, f in enumerate(findings) if f.severity != "info"]
    single: dict[str, int] = {}
    for i in active:
        culprit = findings[i].evidence.get("culprit") or []
        if len(culprit) == 1:
            if culprit[0] in single:
                union(i, single[culprit[0]])
            else:
                single[culprit[0]] = i
    for i in active:
        ev = findings[i].evidence
        for s in ev.get("suspects") or []:
            if s in single:
                union(i, single[s])
        explains = set(ev.get("explains") or [])
        for j in active:
            f = findings[j]
            if (
                explains
                and j != i
                and f.check == "comparison"
                and f.evidence.get("issue") == "ci_centre"
                and f.evidence.get("comparison") in explains
            ):
                union(i, j)
    out: dict[int, list[int]] = defaultdict(list)
    for i in active:
        out[find(i)].append(i)
    return [g for g in out.values() if len(g) > 1]


def _consensus(members: list[Finding]) -> str:
    """What the merged findings agree the suspected number should be."""
    culprits = {c for f in members for c in (f.evidence.get("culprit") or [])}
    implied = [f.evidence.get("implied") or {} for f in members]
    implied += [
        {"k": f.evidence["implied_for"][c]}
        for f in members
        for c in culprits
        if c in (f.evidence.get("implied_for") or {})
    ]
    ks = {i["k"] for i in implied if "k" in i}
    vals = [i["value"] for i in implied if "value" in i]
    if len(implied) < 2 or len(ks) > 1 or (vals and max(vals) - min(vals) > 1e-3):
        return ""
    if vals and ks:
        n = next((round(i["k"] / i["value"]) for i in implied if "k" in i and i.get("value")), None)
        return (
            f" They agree on {vals[0]:.4g}"
            + (f" ({ks.pop()}/{n})" if n else "")
            + ": the printed number is the odd one out."
        )
    if vals:
        return f" They agree on {vals[0]:.4g}: the printed number is the odd one out."
    if ks:
        return f" They agree on a count of {ks.pop()}: the printed count is the odd one out."
    return ""


def _merge(findings: list[Finding], members: list[int]) -> Finding:
    group = [findings[i] for i in members]
    culprits = {c for f in group for c in (f.evidence.get("culprit") or []) if len(f.evidence.get("culprit")) == 1}
    umbrellas = [f for f in group if f.evidence.get("suspects") and not f.evidence.get("culprit")]
    explaining = [f for f in group if f.evidence.get("explains") or f.evidence.get("swapped")]
    if explaining:
        primary = explaining[0]
    elif umbrellas and len(culprits) > 1:
        primary = umbrellas[0]
    else:
        ranked = [f for f in group if f not in umbrellas] or group
        primary = min(
            ranked,
            key=lambda f: (
                _PRIMARY_ORDER.index(f.check) if f.check in _PRIMARY_ORDER else 99,
                SEVERITIES.index(f.severity),
            ),
        )
    others = [f for f in group if f is not primary]
    clauses = [f.evidence.get("summary") or f.detail.rstrip(".") for f in others]
    detail = primary.detail.rstrip() + " Same root cause: " + "; ".join(dict.fromkeys(clauses)) + "."
    detail += _consensus(group)
    severity = min((f.severity for f in group), key=SEVERITIES.index)
    ev = dict(primary.evidence, merged=[{k: v for k, v in f.to_dict().items() if k != "paper"} for f in others])
    ids = sorted({i for f in group for i in f.ids})
    return Finding(primary.paper, primary.where, primary.check, severity, detail, ev, ids)


def merge_root_causes(findings: list[Finding]) -> list[Finding]:
    """One root cause, one finding: errors and warnings that point at the same wrong number are merged
    into one (its ``evidence['merged']`` keeps the others)."""
    groups = _root_cause_groups(findings)
    drop = {i for g in groups for i in g}
    out = [f for i, f in enumerate(findings) if i not in drop]
    out += [_merge(findings, g) for g in groups]
    return out


# --------------------------------------------------------------------------- entry points
_CHECKS = (
    check_feasibility,
    check_estimate_in_ci,
    check_ci_method,
    check_confusion,
    check_class_split,
    check_auc_ci,
    check_comparisons,
    check_ratios,
    check_odds_ratios,
    check_cohort_tables,
    check_table_p_values,
    check_cohort_sizes,
    check_cross_references,
)


def _as_spec(spec) -> Spec:
    """A :class:`Spec` from a Spec, a mapping (chapter or audit spec), a YAML path or a chapter id."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, (str, Path)):
        p = Path(spec)
        return load_audit_spec(p) if p.suffix in (".yaml", ".yml") or p.exists() else load_spec(str(spec))
    if isinstance(spec, Mapping):
        return load_audit_spec(spec)
    raise TypeError(f"audit_spec needs a Spec, a mapping, a chapter id or a path; got {type(spec).__name__}")


def audit_spec(spec) -> list[Finding]:
    """Run every check on one spec (a :class:`Spec`, a raw mapping, a chapter id or a YAML path)."""
    spec = _as_spec(spec)
    ctx = _Ctx(spec)
    for check in _CHECKS:
        check(ctx)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(merge_root_causes(ctx.findings), key=lambda f: (order[f.severity], CHECKS.index(f.check), f.where))


def audit(ids: Iterable[str] | str | None = None) -> list[Finding]:
    """Audit the shipped specs (all of them, or those named in ``ids``: chapter ids or spec file paths);
    a spec that cannot be read is one ``spec`` error, not an exception."""
    if ids is None:
        ids = available_specs()
    elif isinstance(ids, str):
        ids = [ids]
    out: list[Finding] = []
    for cid in ids:
        try:
            spec = _as_spec(cid)
        except SpecError as exc:
            where = str(cid) if Path(str(cid)).suffix in (".yaml", ".yml") else f"specs/{cid}.yaml"
            out.append(Finding(str(cid), where, "spec", "error", f"spec cannot be audited: {exc}"))
            continue
        out.extend(audit_spec(spec))
    return out


def audit_json(ids: Iterable[str] | str | None = None) -> list[dict]:
    """:func:`audit` as plain dicts (``paper``, ``where``, ``check``, ``severity``, ``detail``, ``evidence``)."""
    return [f.to_dict() for f in audit(ids)]


# --------------------------------------------------------------------------- tables for teaching / the book
def feasible_counts(value: float, decimals: int, n: int) -> list[int]:
    """The integers ``k`` with ``k / n`` printed as ``value`` at ``decimals`` decimals (GRIM for proportions)."""
    tol = _half(decimals)
    return [k for k in range(int(n) + 1) if abs(k / n - value) <= tol]


def ci_method_table(spec) -> pd.DataFrame:
    """Each proportion CI beside the five standard intervals of its implied count (first count if several)."""
    spec = _as_spec(spec)
    ctx = _Ctx(spec)
    rows = []
    for e in _proportion_entries(ctx):
        if not e.get("ci") or e["metric"] in ("BCA",) or not ctx.counts_apply(e["cohort"]):
            continue
        den = ctx.denominators(e)
        P, N, n = den.get("n_positive"), den.get("n_negative"), den.get("n")
        if e["metric"] in ("SEN", "SPE", "PPV", "NPV") and (P is None or N is None):
            continue
        d = _decimals(e)
        counts = _single_counts(e["metric"], float(e["value"]), _half(d), P, N, n) or []
        if den.get("k") is not None and e["metric"] in ("SEN", "SPE", "ACC", "ER", "PROP"):
            counts = [(int(den["k"]), {"SEN": P, "SPE": N}.get(e["metric"], n))]
        if not counts:
            continue
        level = float(e.get("ci_level", 0.95))
        k, m = next(((k, m) for k, m in counts if _ci_matches(k, m, e["ci"], _half(d), level)), counts[0])
        row = {
            "id": e["id"],
            "model": e["model"],
            "cohort": e["cohort"],
            "metric": e["metric"],
            "value": e["value"],
            "count": f"{k}/{m}",
            "printed CI": _fmt_ci(e["ci"], d),
        }
        for meth in PROPORTION_METHODS:
            row[meth] = _fmt_ci(proportion_ci(k, m, method=meth, level=level), d)
        row["matches"] = ", ".join(_ci_matches(k, m, e["ci"], _half(d), level)) or "none"
        rows.append(row)
    return pd.DataFrame(rows)


def auc_width_table(spec) -> pd.DataFrame:
    """Every AUC CI with known class counts beside the plausible widths (Hanley-McNeil's, the binormal
    DeLong range) the audit judges it against."""
    spec = _as_spec(spec)
    ctx = _Ctx(spec)
    rows = []
    for e in spec.reported:
        if e.get("metric") != "AUC" or not e.get("ci") or _num(e.get("value")) is None:
            continue
        den = ctx.denominators(e)
        P, N = den.get("n_positive"), den.get("n_negative")
        v = float(e["value"])
        if not ctx.auc_width_applies(e["cohort"]) or not P or not N or not 0 < v < 1:
            continue
        lo, hi = e["ci"]
        z = _z(float(e.get("ci_level", 0.95)))
        se = hanley_mcneil_se(v, P, N)
        w_min, w_max = _expected_widths(v, [(int(P), int(N))], z)
        w = min(hi, 1.0) - max(lo, 0.0)
        rows.append(
            {
                "id": e["id"],
                "model": e["model"],
                "cohort": e["cohort"],
                "AUC": v,
                "CI": _fmt_ci(e["ci"], _decimals(e)),
                "positives": P,
                "negatives": N,
                "Hanley-McNeil SE": round(se, 4),
                "Hanley-McNeil width": round(_clipped_width(v, se, z), 3),
                "plausible widths": f"{w_min:.3f}-{w_max:.3f}",
                "width": round(w, 3),
                "ratio to narrowest": round(w / w_min, 2) if w_min > 0 else None,
            }
        )
    return pd.DataFrame(rows)


def comparison_table(spec) -> pd.DataFrame:
    """Each model comparison: the printed SE, CI and P beside what the other printed numbers imply."""
    spec = _as_spec(spec)
    ctx = _Ctx(spec)
    zc = _z(0.95)
    rows = []
    for c in spec.comparisons:
        a, b = _auc_entry(ctx, c["model_a"], c["cohort"]), _auc_entry(ctx, c["model_b"], c["cohort"])
        diff = _num(c.get("diff"))
        if diff is None and a is not None and b is not None:
            diff = float(a["value"]) - float(b["value"])
        se, ci = _num(c.get("se")), c.get("ci")
        if diff is None and se is None and not ci:
            continue
        mid = (ci[0] + ci[1]) / 2 if ci else None
        se_ci = (ci[1] - ci[0]) / 2 / zc if ci else None
        rows.append(
            {
                "comparison": f"{c['model_a']} vs {c['model_b']}",
                "cohort": c["cohort"],
                "AUC difference": None if diff is None else round(diff, 3),
                "CI": _fmt_ci(ci, 3) if ci else "",
                "CI centre": None if mid is None else round(mid, 4),
                "SE": se,
                "SE from CI": None if se_ci is None else round(se_ci, 4),
                "P printed": c.get("p_value"),
                "P from difference / SE": None if (diff is None or not se) else _fmt_p(_p_two_sided(diff / se)),
                "P from CI alone": None if not ci or not se_ci else _fmt_p(_p_two_sided(mid / se_ci)),
            }
        )
    return pd.DataFrame(rows)


def odds_ratio_table(spec) -> pd.DataFrame:
    """Odds ratios whose 2x2 counts the paper prints: printed OR beside the counts' cross-product ratio."""
    spec = _as_spec(spec)
    ctx = _Ctx(spec)
    rows = []
    for e in spec.reported:
        den = e.get("denominators") or {}
        if e.get("metric") != "OR" or "exposed_positive" not in den or _num(e.get("value")) is None:
            continue
        res = _or_from_counts({**ctx.denominators(e), **den})
        if res is None:
            continue
        orr, wald = res
        d = _decimals(e)
        rows.append(
            {
                "variable": e.get("variable"),
                "model": e["model"],
                "printed OR": e["value"],
                "printed CI": _fmt_ci(e.get("ci"), d) if e.get("ci") else "",
                "exposed positives / negatives": f"{den['exposed_positive']} / {den['exposed_negative']}",
                "OR from counts": round(orr, d),
                "Wald CI from counts": _fmt_ci(wald, d),
                "agrees": abs(orr - float(e["value"])) <= _half(d),
            }
        )
    return pd.DataFrame(rows)


def _confusion_rows(paper: str, where: str, ev: Mapping) -> list[dict]:
    printed = ev.get("printed") or {}
    if printed and all(isinstance(v, Mapping) for v in printed.values()):  # two models' metrics swapped
        m = re.findall(r"\[([^\[\]]+), ([^\[\]]+)\]", where)
        return [
            {
                "paper": paper,
                "model": model,
                "cohort": cohort,
                "printed": ", ".join(f"{k} {v:g}" for k, v in printed.get(model, {}).items()),
                "TP": None,
                "FN": None,
                "TN": None,
                "FP": None,
                "solutions": 0,
            }
            for model, cohort in m
        ]
    m = re.search(r"\[([^\[\]]+), ([^\[\]]+)\]$", where)
    row = {
        "paper": paper,
        "model": m.group(1) if m else "?",
        "cohort": m.group(2) if m else "?",
        "printed": ", ".join(f"{k} {v:g}" for k, v in printed.items()),
    }
    mats = ev.get("matrices") or []
    if mats:
        row.update(mats[0])
        row["solutions"] = ev.get("n_solutions", len(mats))
    else:
        row.update({"TP": None, "FN": None, "TN": None, "FP": None, "solutions": 0})
    return [row]


def confusion_table(findings: Iterable[Finding]) -> pd.DataFrame:
    """The confusion matrices the audit reconstructed (or failed to), one row per model and cohort
    (including those merged into another finding of the same root cause)."""
    rows = []
    for f in findings:
        parts = [(f.where, f.check, f.evidence)] + [
            (g["where"], g["check"], g["evidence"]) for g in f.evidence.get("merged") or []
        ]
        for where, check, ev in parts:
            if check == "confusion_matrix":
                rows += _confusion_rows(f.paper, where, ev)
    df = pd.DataFrame(rows, columns=["paper", "model", "cohort", "printed", "TP", "FN", "TN", "FP", "solutions"])
    for col in ("TP", "FN", "TN", "FP", "solutions"):
        df[col] = df[col].astype("Int64")
    return df


def format_findings(findings: Iterable[Finding], width: int = 100, min_severity: str = "info") -> str:
    """Findings as a plain-text table for a terminal ``width`` columns wide (the detail column wraps):
    one block per paper, errors first."""
    import textwrap

    df = summary_table(findings, min_severity=min_severity)
    if df.empty:
        return "no findings"
    w_sev, w_chk = 8, 16
    w_where = max(18, (width - w_sev - w_chk - 6) // 3)
    w_det = max(20, width - w_sev - w_chk - w_where - 6)
    lines = []
    for paper, sub in df.groupby("paper", sort=False):
        n = sub["severity"].value_counts()
        head = f"{paper}: " + ", ".join(
            f"{n.get(s, 0)} {s}{'s' if n.get(s, 0) != 1 and s != 'info' else ''}" for s in SEVERITIES
        )
        lines += [head, "-" * min(width, max(len(head), 20))]
        for r in sub.itertuples():
            cols = [
                textwrap.wrap(r.severity, w_sev) or [""],
                textwrap.wrap(r.check, w_chk) or [""],
                textwrap.wrap(r.where, w_where) or [""],
                textwrap.wrap(r.detail, w_det) or [""],
            ]
            for i in range(max(map(len, cols))):
                cells = [c[i] if i < len(c) else "" for c in cols]
                lines.append(f"{cells[0]:<{w_sev}}  {cells[1]:<{w_chk}}  {cells[2]:<{w_where}}  {cells[3]}".rstrip())
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def check_guide() -> pd.DataFrame:
    """How to read each check (:data:`CHECK_GUIDE`) as a table."""
    return pd.DataFrame(
        [{"check": c, "asks": a, "a finding usually means": m, "what to do": w} for c, (a, m, w) in CHECK_GUIDE.items()]
    )


def summary_table(findings: Iterable[Finding], min_severity: str = "info") -> pd.DataFrame:
    """Findings as a DataFrame (paper, severity, check, where, detail), errors first.

    ``min_severity="warning"`` keeps errors and warnings only.
    """
    keep = SEVERITIES[: SEVERITIES.index(min_severity) + 1]
    rows = [
        {"paper": f.paper, "severity": f.severity, "check": f.check, "where": f.where, "detail": f.detail}
        for f in findings
        if f.severity in keep
    ]
    df = pd.DataFrame(rows, columns=["paper", "severity", "check", "where", "detail"])
    if len(df):
        df["_s"] = df["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
        df["_c"] = df["check"].map(lambda c: CHECKS.index(c) if c in CHECKS else len(CHECKS))
        df = df.sort_values(["paper", "_s", "_c", "where"], kind="stable").drop(columns=["_s", "_c"])
        df = df.reset_index(drop=True)
    return df
