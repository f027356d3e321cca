"""Simulated papers for calibrating :mod:`replicate.audit`: internally consistent by construction, then
with one error planted at a time.

:func:`simulate_paper` draws one paper from a seed: a training and a validation cohort (sizes 20-400,
prevalence 10-60 %), two to four models whose scores are correlated binormal variables (separations up to
AUC ~0.99, unequal variances, some with tied scores), each model's AUC with a CI by the paper's method
(DeLong, bootstrap or Hanley-McNeil), a Youden cut-off chosen on the training cohort and the resulting
confusion metrics (SEN, SPE, ACC, PPV, NPV, sometimes ER and BCA) with CIs by the paper's proportion
method (Wald, Wilson, Wilson-cc, Clopper-Pearson, Agresti-Coull or bootstrap), paired DeLong comparisons,
an abstract that repeats the best model's numbers, a Table 1 of categorical characteristics with counts,
percentages and the P value of one of the usual tests, and univariate odds ratios of binary
characteristics. Every number is printed as papers print it: percentages or fractions at the paper's
decimals, P values at three decimals or "<0.001". The spec is an audit spec
(``specs/audit_schema.yaml``) with quoted numbers, so the printed decimals travel with it.

:data:`PLANTS` are the error types :func:`plant` can put into a paper, one at a time; each returns the
ids of the entries it changed, which a finding must name to count as a detection.
``benchmarks/bench_audit_calibration.py`` runs the full calibration; ``tests/test_audit_sim.py`` a
small one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .stats import auc_ci, bootstrap_auc, delong_test, percentile_ci, proportion_ci
from .stats.proportions import PROPORTION_METHODS

__all__ = [
    "SimPaper",
    "simulate_paper",
    "plant",
    "PLANTS",
    "calibrate",
    "summarise",
    "stored_calibration",
    "AUC_METHODS",
    "P_METHODS",
]

AUC_METHODS = ("delong", "bootstrap", "hanley-mcneil")
P_METHODS = PROPORTION_METHODS + ("bootstrap",)
_N_BOOT = 400


@dataclass
class SimPaper:
    """One simulated paper: its audit spec (undeclared CI methods), the methods it used, and what
    planting needs (the confusion matrices and the printed entries by role)."""

    seed: int
    spec: dict
    methods: dict
    roles: dict = field(default_factory=dict)

    def declared(self) -> dict:
        """The same spec with its CI methods declared."""
        s = copy.deepcopy(self.spec)
        s["ci_method"] = dict(self.methods)
        return s


# --------------------------------------------------------------------------- printing
def _pf(x: float, d: int) -> str:
    return f"{x:.{d}f}"


def _pp(p: float) -> str | float:
    return "<0.001" if p < 0.001 else float(f"{p:.3f}")


class _Printer:
    """How this paper prints proportions: a percentage with 1-2 decimals or a fraction with 2-3."""

    def __init__(self, rng):
        self.percent = bool(rng.random() < 0.6)
        self.d = int(rng.choice([1, 2], p=[0.6, 0.4])) if self.percent else int(rng.choice([2, 3], p=[0.3, 0.7]))

    def __call__(self, x: float) -> str:
        return f"{100 * x:.{self.d}f}%" if self.percent else f"{x:.{self.d}f}"


# --------------------------------------------------------------------------- data
def _scores(rng, y: np.ndarray, sep: np.ndarray, sd: np.ndarray, rho: float, tied: np.ndarray) -> np.ndarray:
    """Correlated binormal scores, one column per model (positives shifted by ``sep``, scaled by ``sd``)."""
    n, m = y.size, sep.size
    noise = math.sqrt(rho) * rng.standard_normal((n, 1)) + math.sqrt(1 - rho) * rng.standard_normal((n, m))
    s = y[:, None] * sep[None, :] + noise * np.where(y[:, None] == 1, sd[None, :], 1.0)
    s[:, tied] = np.round(s[:, tied] * 2) / 2  # a coarse score (e.g. a clinical score): ties
    return s


def _classes(rng, n: int, prev: float) -> np.ndarray:
    p = int(min(max(rng.binomial(n, prev), 3), n - 3))
    return np.r_[np.ones(p, int), np.zeros(n - p, int)]


def _youden(y: np.ndarray, s: np.ndarray) -> float:
    cuts = np.unique(s)
    best, thr = -1.0, cuts[0]
    for c in cuts:
        pred = s >= c
        j = pred[y == 1].mean() + (~pred[y == 0]).mean()
        if j > best:
            best, thr = j, c
    return float(thr)


def _prop_ci(rng, k: int, m: int, method: str) -> tuple[float, float]:
    if method == "bootstrap":
        return percentile_ci(rng.binomial(m, k / m, _N_BOOT) / m)
    return proportion_ci(k, m, method=method)


def _auc_and_ci(y, s, method: str, seed: int) -> tuple[float, float, float]:
    if method == "bootstrap":
        lo, hi = percentile_ci(bootstrap_auc(y, s, n_boot=_N_BOOT, seed=seed))
        return auc_ci(y, s, method="delong")[1], lo, hi
    lo, a, hi = auc_ci(y, s, method=method)
    return a, lo, hi


# --------------------------------------------------------------------------- one paper
def simulate_paper(seed: int) -> SimPaper:
    """A consistent paper drawn from ``seed`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    methods = {
        "proportion": str(rng.choice(P_METHODS, p=[0.15, 0.25, 0.15, 0.2, 0.1, 0.15])),
        "auc": str(rng.choice(AUC_METHODS, p=[0.6, 0.3, 0.1])),
    }
    pr = _Printer(rng)
    d_auc = int(rng.choice([2, 3], p=[0.3, 0.7]))
    n = {
        "training": int(round(math.exp(rng.uniform(math.log(30), math.log(400))))),
        "validation": int(round(math.exp(rng.uniform(math.log(20), math.log(200))))),
    }
    prev = rng.uniform(0.1, 0.6)
    y = {c: _classes(rng, n[c], prev) for c in n}
    m = int(rng.integers(2, 5))
    models = [f"Model {chr(65 + i)}" for i in range(m)]
    sep = rng.uniform(0.3, 3.6, m)
    sd = np.exp(rng.uniform(math.log(0.5), math.log(2.0), m))
    tied = rng.random(m) < 0.2
    rho = rng.uniform(0.2, 0.8)
    drop = rng.uniform(0.7, 1.0)
    s = {
        "training": _scores(rng, y["training"], sep, sd, rho, tied),
        "validation": _scores(rng, y["validation"], sep * drop, sd, rho, tied),
    }
    hide_split = rng.random() < 0.25  # the validation cohort's class counts are not printed
    cohorts = {c: {"n": n[c], "n_positive": int(y[c].sum())} for c in n}
    if hide_split:
        del cohorts["validation"]["n_positive"]
    cohorts["all"] = {"n": n["training"] + n["validation"], "composed_of": ["training", "validation"]}
    if not hide_split:
        cohorts["all"]["n_positive"] = int(y["training"].sum() + y["validation"].sum())
    spec = {
        "id": f"sim{seed}",
        "title": f"simulated paper {seed}",
        "cohorts": cohorts,
        "reported": [],
        "comparisons": [],
        "table1": [],
    }
    roles: dict[str, list] = {
        "proportion": [],
        "auc": [],
        "acc_count": [],
        "comparison": [],
        "t1": [],
        "t1_p": [],
        "or": [],
        "abstract_auc": [],
    }
    for c in ("training", "validation"):
        for j, model in enumerate(models):
            _model_rows(
                rng,
                spec,
                roles,
                model,
                j,
                c,
                y[c],
                s[c][:, j],
                _youden(y["training"], s["training"][:, j]),
                methods,
                pr,
                d_auc,
                seed,
            )
        _comparisons(rng, spec, roles, models, c, y[c], s[c])
    _abstract(rng, spec, roles, pr, d_auc)
    _table1(rng, spec, roles, y, methods)
    return SimPaper(seed, spec, methods, roles)


def _model_rows(rng, spec, roles, model, j, cohort, y, s, thr, methods, pr, d_auc, seed) -> None:
    rid = f"{cohort[:2]}{j}"
    where = {"section": "Results", "table": "Table 2", "row": model}
    a, lo, hi = _auc_and_ci(y, s, methods["auc"], seed * 7 + j)
    spec["reported"].append(
        {
            "id": f"{rid}_auc",
            "model": model,
            "cohort": cohort,
            "metric": "AUC",
            "value": _pf(a, d_auc),
            "ci": [_pf(lo, d_auc), _pf(hi, d_auc)],
            "where": {**where, "column": f"{cohort} AUC"},
        }
    )
    roles["auc"].append(
        dict(
            id=f"{rid}_auc",
            model=model,
            cohort=cohort,
            auc=a,
            ci=(lo, hi),
            P=int(y.sum()),
            N=int((1 - y).sum()),
            d=d_auc,
        )
    )
    pred = s >= thr
    P, N = int(y.sum()), int((1 - y).sum())
    tp, tn = int((pred & (y == 1)).sum()), int((~pred & (y == 0)).sum())
    fp, fn = N - tn, P - tp
    counts = {"SEN": (tp, P), "SPE": (tn, N), "ACC": (tp + tn, P + N), "PPV": (tp, tp + fp), "NPV": (tn, tn + fn)}
    extra = {"ER": (fp + fn, P + N)} if rng.random() < 0.2 else {}
    for metric, (k, mm) in {**counts, **extra}.items():
        if mm == 0 or rng.random() > 0.85:
            continue
        e = {
            "id": f"{rid}_{metric.lower()}",
            "model": model,
            "cohort": cohort,
            "metric": metric,
            "value": pr(k / mm),
            "where": {**where, "column": f"{cohort} {metric}"},
        }
        if metric != "ER" and rng.random() < (0.3 if metric == "ACC" else 0.7):
            lo, hi = _prop_ci(rng, k, mm, methods["proportion"])
            e["ci"] = [pr(lo), pr(hi)]
        if metric == "ACC" and rng.random() < 0.3:
            e["denominators"] = {"k": k}
            roles["acc_count"].append(e["id"])
        spec["reported"].append(e)
        roles["proportion"].append(
            dict(id=e["id"], metric=metric, k=k, m=mm, model=model, cohort=cohort, matrix=(tp, fn, tn, fp))
        )
    if rng.random() < 0.15 and P and N:
        spec["reported"].append(
            {
                "id": f"{rid}_bca",
                "model": model,
                "cohort": cohort,
                "metric": "BCA",
                "value": pr((tp / P + tn / N) / 2),
                "where": {**where, "column": f"{cohort} BCA"},
            }
        )


def _comparisons(rng, spec, roles, models, cohort, y, s) -> None:
    if cohort == "training" and rng.random() < 0.5:
        return
    show_diff = rng.random() < 0.5
    for j in range(1, len(models)):
        r = delong_test(y, s[:, 0], s[:, j])
        c = {
            "id": f"{cohort[:2]}_cmp{j}",
            "model_a": models[0],
            "model_b": models[j],
            "cohort": cohort,
            "test": "DeLong",
            "se": _pf(r.se, 3),
            "ci": [_pf(r.ci[0], 3), _pf(r.ci[1], 3)],
            "p_value": _pp(r.p_value),
            "decimals": 3,
            "where": {"section": "Results", "table": "Table 3", "row": f"{models[0]} vs {models[j]}"},
        }
        if show_diff:
            c["diff"] = _pf(r.diff, 3)
        spec["comparisons"].append(c)
        roles["comparison"].append(dict(id=c["id"], se=r.se, diff=r.diff, p=r.p_value))


def _abstract(rng, spec, roles, pr, d_auc) -> None:
    """The abstract repeats the validation AUC (and SEN, SPE) of the best model, possibly at fewer decimals."""
    val = [a for a in roles["auc"] if a["cohort"] == "validation"]
    best = max(val, key=lambda a: a["auc"])
    d = 2 if rng.random() < 0.4 else d_auc
    spec["reported"].append(
        {
            "id": "abs_auc",
            "model": best["model"],
            "cohort": "validation",
            "metric": "AUC",
            "value": _pf(best["auc"], d),
            "ci": [_pf(best["ci"][0], d), _pf(best["ci"][1], d)],
            "where": {"section": "Abstract", "quote": "an AUC of ..."},
        }
    )
    roles["abstract_auc"].append(dict(id="abs_auc", of=best["id"], d=d))


_TESTS = ("chi-square", "chi-square (Yates)", "Fisher exact", "likelihood ratio")


def _test_p(table: np.ndarray, test: str) -> float:
    if table.shape == (2, 2) and test == "Fisher exact":
        return float(stats.fisher_exact(table)[1])
    if test == "likelihood ratio":
        return float(stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")[1])
    return float(stats.chi2_contingency(table, correction=test == "chi-square (Yates)" and table.shape == (2, 2))[1])


def _table1(rng, spec, roles, y, methods) -> None:
    """Categorical characteristics per patient (outcome-dependent), tabulated by cohort or by outcome group."""
    by_group = rng.random() < 0.4  # Table 1 columns: outcome groups of the training cohort
    test = str(rng.choice(_TESTS))
    d_pct = int(rng.choice([0, 1], p=[0.3, 0.7]))
    for i in range(int(rng.integers(2, 5))):
        char = f"Char{i + 1}"
        n_lv = int(rng.choice([2, 2, 3, 4]))
        levels = [f"L{v + 1}" for v in range(n_lv)]
        base = rng.dirichlet(np.ones(n_lv) * 3)
        shift = rng.normal(0, 0.6, n_lv)
        x = {}
        for c, yy in y.items():
            lp = np.log(base)[None, :] + yy[:, None] * shift[None, :]
            pr = np.exp(lp) / np.exp(lp).sum(axis=1, keepdims=True)
            x[c] = np.array([rng.choice(n_lv, p=p) for p in pr])
        if by_group:
            cols = {"positive": x["training"][y["training"] == 1], "negative": x["training"][y["training"] == 0]}
            cohort, groups = "training", True
        else:
            cols = {
                "training": x["training"],
                "validation": x["validation"],
                "all": np.r_[x["training"], x["validation"]],
            }
            cohort, groups = "all", False
        table = np.array([[int((v == lv).sum()) for k, v in cols.items() if k != "all"] for lv in range(n_lv)])
        for k, v in cols.items():
            for lv, name in enumerate(levels):
                cnt = int((v == lv).sum())
                row = {
                    "id": f"t1_{i}_{k[:3]}_{lv}",
                    "characteristic": char,
                    "level": name,
                    "k": cnt,
                    "percent": f"{100 * cnt / v.size:.{d_pct}f}",
                    "where": {"section": "Results", "table": "Table 1", "row": f"{char}: {name}", "column": k},
                }
                if groups:
                    row.update(cohort="training", group=k, n=int(v.size))
                else:
                    row["cohort"] = k
                spec["table1"].append(row)
                roles["t1"].append(dict(id=row["id"], char=i, col=k, level=lv, k=cnt, n=int(v.size), d=d_pct))
        if (table.sum(axis=1) > 0).all():
            p = _test_p(table, test if n_lv == 2 or test in ("chi-square", "likelihood ratio") else "chi-square")
            spec["table1"].append(
                {
                    "id": f"t1_{i}_p",
                    "characteristic": char,
                    "cohort": cohort,
                    "p_value": _pp(p),
                    "where": {"section": "Results", "table": "Table 1", "row": char, "column": "P"},
                }
            )
            roles["t1_p"].append(dict(id=f"t1_{i}_p", p=p))
        if n_lv == 2:
            _odds_ratio(spec, roles, char, x["training"], y["training"], groups)


def _odds_ratio(spec, roles, char, x, y, counts_printed) -> None:
    a, c = int(((x == 1) & (y == 1)).sum()), int(((x == 1) & (y == 0)).sum())
    b, d = int(((x == 0) & (y == 1)).sum()), int(((x == 0) & (y == 0)).sum())
    if min(a, b, c, d) == 0:
        return
    orr = a * d / (b * c)
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    lo, hi = orr * math.exp(-1.959964 * se), orr * math.exp(1.959964 * se)
    p = 2 * stats.norm.sf(abs(math.log(orr)) / se)
    e = {
        "id": f"or_{char}",
        "model": "Univariate logistic",
        "cohort": "training",
        "metric": "OR",
        "variable": char,
        "value": _pf(orr, 3),
        "ci": [_pf(lo, 3), _pf(hi, 3)],
        "p_value": _pp(p),
        "where": {"section": "Results", "table": "Table 4", "row": char},
    }
    if counts_printed:
        e["denominators"] = {"exposed_positive": a, "exposed_negative": c}
    spec["reported"].append(e)
    roles["or"].append(dict(id=e["id"], orr=orr, se=se, p=p))


# --------------------------------------------------------------------------- planting errors
def _entry(spec: dict, eid: str) -> dict:
    for key in ("reported", "comparisons", "table1"):
        for e in spec.get(key, []):
            if e.get("id") == eid:
                return e
    raise KeyError(eid)


def _digit_change(rng, s: str) -> str | None:
    """A printed number with one digit changed or two neighbouring digits transposed (a typo)."""
    digits = [i for i, ch in enumerate(s) if ch.isdigit()]
    if len(digits) < 2:
        return None
    for _ in range(20):
        t = list(s)
        if rng.random() < 0.5:
            i = int(rng.choice(digits[1:] if len(digits) > 2 else digits))
            t[i] = str((int(t[i]) + int(rng.integers(1, 10))) % 10)
        else:
            j = int(rng.integers(0, len(digits) - 1))
            a, b = digits[j], digits[j + 1]
            t[a], t[b] = t[b], t[a]
        out = "".join(t)
        if out != s and abs(float(out.rstrip("%")) - float(s.rstrip("%"))) >= 2 * 10 ** -_decs(s):
            return out
    return None


def _decs(s: str) -> int:
    s = str(s).rstrip("%")
    return len(s.split(".")[1]) if "." in s else 0


def _plant_proportion_typo(rng, sim):
    e = rng.choice(sim.roles["proportion"])
    spec = copy.deepcopy(sim.spec)
    ent = _entry(spec, e["id"])
    new = _digit_change(rng, ent["value"])
    if new is None or not (0 <= float(new.rstrip("%")) / (100 if new.endswith("%") else 1) <= 1):
        return None
    ent["value"] = new
    return spec, [e["id"]]


def _plant_estimate_of_other_metric(rng, sim):
    """The estimate of one metric printed in another's place (its CI left as it was)."""
    with_ci = [r for r in sim.roles["proportion"] if "ci" in _entry(sim.spec, r["id"])]
    rng.shuffle(with_ci)
    for r in with_ci:
        spec = copy.deepcopy(sim.spec)
        ent = _entry(spec, r["id"])
        others = [
            o
            for o in sim.roles["proportion"]
            if o["model"] == r["model"]
            and o["cohort"] == r["cohort"]
            and o["id"] != r["id"]
            and _entry(spec, o["id"])["value"] != ent["value"]
        ]
        if others:
            ent["value"] = _entry(spec, others[0]["id"])["value"]
            return spec, [r["id"]]
    return None


def _plant_ci_other_count(rng, sim):
    """A proportion's CI computed from a count two off the estimate's."""
    with_ci = [r for r in sim.roles["proportion"] if "ci" in _entry(sim.spec, r["id"]) and r["m"] >= 10]
    if not with_ci:
        return None
    r = with_ci[int(rng.integers(len(with_ci)))]
    k = r["k"] + (2 if r["k"] + 2 <= r["m"] else -2)
    spec = copy.deepcopy(sim.spec)
    ent = _entry(spec, r["id"])
    meth = sim.methods["proportion"] if sim.methods["proportion"] != "bootstrap" else "wilson"
    lo, hi = proportion_ci(k, r["m"], method=meth)
    pr = _printer_of(ent["value"])
    ent["ci"] = [pr(lo), pr(hi)]
    return spec, [r["id"]]


def _printer_of(example: str) -> Callable[[float], str]:
    d = _decs(example)
    if example.endswith("%"):
        return lambda x: f"{100 * x:.{d}f}%"
    return lambda x: f"{x:.{d}f}"


def _plant_swap_between_models(rng, sim):
    """One metric's values exchanged between two models of a cohort (e.g. two NPVs)."""
    props = sim.roles["proportion"]
    pairs = [
        (a, b)
        for a in props
        for b in props
        if a["cohort"] == b["cohort"]
        and a["metric"] == b["metric"]
        and a["model"] < b["model"]
        and a["metric"] != "ACC"
    ]
    rng.shuffle(pairs)
    for a, b in pairs:
        spec = copy.deepcopy(sim.spec)
        ea, eb = _entry(spec, a["id"]), _entry(spec, b["id"])
        if abs(float(ea["value"].rstrip("%")) - float(eb["value"].rstrip("%"))) < 2 * 10 ** -_decs(ea["value"]):
            continue
        ea["value"], eb["value"] = eb["value"], ea["value"]
        ea.pop("ci", None), eb.pop("ci", None)
        return spec, [a["id"], b["id"]]
    return None


def _plant_wrong_denominator(rng, sim):
    """A sensitivity computed over all patients, or a specificity over the positives."""
    cands = [r for r in sim.roles["proportion"] if r["metric"] in ("SEN", "SPE")]
    rng.shuffle(cands)
    for r in cands:
        tp, fn, tn, fp = r["matrix"]
        P, N = tp + fn, tn + fp
        wrong = r["k"] / (P + N) if rng.random() < 0.5 else r["k"] / (N if r["metric"] == "SEN" else P)
        if wrong > 1:
            continue
        spec = copy.deepcopy(sim.spec)
        ent = _entry(spec, r["id"])
        new = _printer_of(ent["value"])(wrong)
        if new == ent["value"]:
            continue
        ent["value"] = new
        ent.pop("ci", None)
        return spec, [r["id"]]
    return None


def _plant_abstract_mismatch(rng, sim):
    spec = copy.deepcopy(sim.spec)
    ent = _entry(spec, "abs_auc")
    new = _digit_change(rng, ent["value"])
    if new is None or not 0 < float(new) <= 1:
        return None
    ent["value"] = new
    return spec, ["abs_auc"]


def _plant_auc_swap(rng, sim):
    """Two models' AUCs (with their CIs) exchanged in the results table."""
    val = [a for a in sim.roles["auc"] if a["cohort"] == "validation"]
    pairs = [(a, b) for a in val for b in val if a["model"] < b["model"] and abs(a["auc"] - b["auc"]) > 0.02]
    if not pairs:
        return None
    a, b = pairs[int(rng.integers(len(pairs)))]
    spec = copy.deepcopy(sim.spec)
    ea, eb = _entry(spec, a["id"]), _entry(spec, b["id"])
    (ea["value"], ea["ci"]), (eb["value"], eb["ci"]) = (eb["value"], eb["ci"]), (ea["value"], ea["ci"])
    return spec, [a["id"], b["id"]]


def _plant_comparison_p(rng, sim):
    """A comparison's P value replaced by another comparison's or a random one."""
    cands = [c for c in sim.roles["comparison"]]
    if not cands:
        return None
    c = cands[int(rng.integers(len(cands)))]
    for _ in range(20):
        p = float(rng.uniform(0.001, 0.9))
        if abs(math.log(p) - math.log(max(c["p"], 1e-4))) > 1.0:
            break
    spec = copy.deepcopy(sim.spec)
    _entry(spec, c["id"])["p_value"] = _pp(p)
    return spec, [c["id"]]


def _plant_comparison_se(rng, sim):
    cands = sim.roles["comparison"]
    if not cands:
        return None
    c = cands[int(rng.integers(len(cands)))]
    factor = float(rng.choice([0.5, 0.6, 1.6, 2.0]))
    spec = copy.deepcopy(sim.spec)
    _entry(spec, c["id"])["se"] = _pf(c["se"] * factor, 3)
    if _entry(spec, c["id"])["se"] == _pf(c["se"], 3):
        return None
    return spec, [c["id"]]


def _plant_auc_ci_narrow(rng, sim):
    """An AUC CI a third as wide as it should be (e.g. the SE taken for the half-width)."""
    cands = [a for a in sim.roles["auc"] if a["ci"][1] < 0.999 and a["ci"][0] > 0.001]
    if not cands:
        return None
    a = cands[int(rng.integers(len(cands)))]
    spec = copy.deepcopy(sim.spec)
    ent = _entry(spec, a["id"])
    lo, hi = a["ci"]
    ent["ci"] = [_pf(a["auc"] - (a["auc"] - lo) / 3, a["d"]), _pf(a["auc"] + (hi - a["auc"]) / 3, a["d"])]
    return spec, [a["id"]]


def _plant_t1_count(rng, sim):
    """A Table 1 count with a typo (its percentage left as printed)."""
    r = sim.roles["t1"][int(rng.integers(len(sim.roles["t1"])))]
    spec = copy.deepcopy(sim.spec)
    ent = _entry(spec, r["id"])
    ent["k"] = max(0, ent["k"] + int(rng.choice([-10, -2, -1, 1, 2, 10]))) or ent["k"] + 1
    return spec, [r["id"]]


def _plant_t1_percent(rng, sim):
    r = sim.roles["t1"][int(rng.integers(len(sim.roles["t1"])))]
    spec = copy.deepcopy(sim.spec)
    ent = _entry(spec, r["id"])
    new = _digit_change(rng, ent["percent"] if "." in ent["percent"] else ent["percent"] + ".")
    if new is None:
        return None
    new = new.rstrip(".")
    if float(new) > 100 or abs(float(new) - float(ent["percent"])) < 2 * 10 ** -r["d"]:
        return None
    ent["percent"] = new
    return spec, [r["id"]]


def _plant_t1_swap(rng, sim):
    """Two levels' cells (count and percentage) exchanged in one column of Table 1."""
    by = {}
    for r in sim.roles["t1"]:
        by.setdefault((r["char"], r["col"]), []).append(r)
    cands = [
        (a, b)
        for rs in by.values()
        for a in rs
        for b in rs
        if a["level"] < b["level"] and a["k"] != b["k"] and a["col"] != "all"
    ]
    if not cands:
        return None
    a, b = cands[int(rng.integers(len(cands)))]
    spec = copy.deepcopy(sim.spec)
    ea, eb = _entry(spec, a["id"]), _entry(spec, b["id"])
    (ea["k"], ea["percent"]), (eb["k"], eb["percent"]) = (eb["k"], eb["percent"]), (ea["k"], ea["percent"])
    return spec, [a["id"], b["id"]]


def _plant_t1_p(rng, sim):
    if not sim.roles["t1_p"]:
        return None
    r = sim.roles["t1_p"][int(rng.integers(len(sim.roles["t1_p"])))]
    for _ in range(20):
        p = float(rng.uniform(0.001, 0.95))
        if abs(math.log(p) - math.log(max(r["p"], 1e-4))) > 1.0:
            break
    spec = copy.deepcopy(sim.spec)
    _entry(spec, r["id"])["p_value"] = _pp(p)
    return spec, [r["id"]]


def _plant_or_swap(rng, sim):
    ors = [r for r in sim.roles["or"] if "denominators" in _entry(sim.spec, r["id"])]
    pairs = [(a, b) for a in ors for b in ors if a["id"] < b["id"] and abs(a["orr"] - b["orr"]) > 0.05]
    if not pairs:
        return None
    a, b = pairs[int(rng.integers(len(pairs)))]
    spec = copy.deepcopy(sim.spec)
    ea, eb = _entry(spec, a["id"]), _entry(spec, b["id"])
    for key in ("value", "ci", "p_value"):
        ea[key], eb[key] = eb[key], ea[key]
    return spec, [a["id"], b["id"]]


def _plant_or_p(rng, sim):
    if not sim.roles["or"]:
        return None
    r = sim.roles["or"][int(rng.integers(len(sim.roles["or"])))]
    p_true = r["p"]
    p = min(0.95, p_true * 20) if p_true < 0.03 else max(0.0005, p_true / 20)
    spec = copy.deepcopy(sim.spec)
    _entry(spec, r["id"])["p_value"] = _pp(p)
    if _entry(spec, r["id"])["p_value"] == _pp(p_true):
        return None
    return spec, [r["id"]]


def _plant_acc_count(rng, sim):
    if not sim.roles["acc_count"]:
        return None
    eid = sim.roles["acc_count"][int(rng.integers(len(sim.roles["acc_count"])))]
    spec = copy.deepcopy(sim.spec)
    ent = _entry(spec, eid)
    ent["denominators"]["k"] += int(rng.choice([-2, 2, 3]))
    cohort_n = spec["cohorts"][ent["cohort"]]["n"]
    if not 0 <= ent["denominators"]["k"] <= cohort_n:
        return None
    return spec, [eid]


#: error type -> (planting function, what it imitates)
PLANTS: dict[str, tuple[Callable, str]] = {
    "proportion typo": (_plant_proportion_typo, "a digit of a SEN/SPE/ACC/PPV/NPV changed or two transposed"),
    "estimate of another metric": (_plant_estimate_of_other_metric, "one metric's estimate printed in another's place"),
    "CI of another count": (_plant_ci_other_count, "a proportion CI computed from a count two off"),
    "metric swapped between models": (_plant_swap_between_models, "e.g. two models' NPVs exchanged"),
    "wrong denominator": (_plant_wrong_denominator, "SEN over all patients, SPE over the positives"),
    "abstract differs": (_plant_abstract_mismatch, "the abstract's AUC with a typo"),
    "AUCs swapped between models": (_plant_auc_swap, "two models' validation AUCs exchanged in the table"),
    "comparison P": (_plant_comparison_p, "a DeLong P value that its difference and SE do not give"),
    "comparison SE": (_plant_comparison_se, "a DeLong SE off by a factor 0.5-2"),
    "AUC CI too narrow": (_plant_auc_ci_narrow, "an AUC CI a third of its width"),
    "Table 1 count typo": (_plant_t1_count, "a count changed, its percentage not"),
    "Table 1 percent typo": (_plant_t1_percent, "a percentage changed, its count not"),
    "Table 1 cells swapped": (_plant_t1_swap, "two levels' cells exchanged in one column"),
    "Table 1 P": (_plant_t1_p, "a P value the counts do not give"),
    "OR rows swapped": (_plant_or_swap, "two variables' OR rows exchanged"),
    "OR P": (_plant_or_p, "an OR's P value 20 times too small or large"),
    "ACC count": (_plant_acc_count, "the count printed next to an accuracy off by 2-3"),
}


def plant(sim: SimPaper, kind: str, seed: int, declared: bool = False) -> tuple[dict, list[str]] | None:
    """``sim``'s spec with one error of type ``kind`` (a key of :data:`PLANTS`), and the changed entries'
    ids; ``None`` when the paper has nothing to plant it in."""
    rng = np.random.default_rng(seed)
    base = SimPaper(sim.seed, sim.declared() if declared else sim.spec, sim.methods, sim.roles)
    return PLANTS[kind][0](rng, base)


# --------------------------------------------------------------------------- calibration
def _audit(spec: dict):
    """Audit a simulated spec (valid by construction: the schema validation is skipped for speed)."""
    from .audit import audit_spec
    from .audit_spec import normalise
    from .spec import Spec, check_consistency

    raw = normalise(spec, spec["id"])
    check_consistency(raw, spec["id"])
    return audit_spec(Spec(raw))


def hanley_mcneil_only_flags(spec: dict) -> int:
    """How many AUC CIs of a spec the former width rule flagged: width below 0.5x or above 2x the
    Hanley-McNeil width (no binormal range, no rounding allowance). Kept to show why it was replaced."""
    from .audit import _clipped_width, hanley_mcneil_se

    n = 0
    for e in spec["reported"]:
        c = spec["cohorts"][e["cohort"]]
        if e["metric"] != "AUC" or "ci" not in e or "n_positive" not in c:
            continue
        v, lo, hi = float(e["value"]), float(e["ci"][0]), float(e["ci"][1])
        if not 0 < v < 1:
            continue
        exp_w = _clipped_width(v, hanley_mcneil_se(v, c["n_positive"], c["n"] - c["n_positive"]), 1.959964)
        n += exp_w > 0 and not 0.5 <= (min(hi, 1) - max(lo, 0)) / exp_w <= 2.0
    return n


def _key(f) -> tuple:
    return (f.check, f.severity, f.evidence.get("issue"), tuple(f.ids))


def calibrate(
    n_papers: int, seed: int = 0, n_planted: int | None = None, kinds: tuple[str, ...] | None = None
) -> dict[str, pd.DataFrame]:
    """Audit ``n_papers`` consistent papers without and with their CI methods declared, and plant each error
    type in ``n_planted`` of them (default: all). Returns tidy tables:

    ``clean``: one row per paper x declared x check with the number of error / warning findings;
    ``planted``: one row per planted paper with whether an error (and an error or warning) names a planted
    entry that the clean paper's audit did not already flag, and the checks that did.
    """
    kinds = tuple(kinds or PLANTS)
    n_planted = n_papers if n_planted is None else n_planted
    from .audit import CHECKS

    clean_rows, plant_rows = [], []
    for i in range(n_papers):
        sim = simulate_paper(seed * 1_000_003 + i)
        for declared in (False, True):
            spec = sim.declared() if declared else sim.spec
            found = _audit(spec)
            for check in CHECKS + ("auc_ci_width (Hanley-McNeil only, former rule)",):
                hm = check.startswith("auc_ci_width (")
                clean_rows.append(
                    {
                        "paper": i,
                        "declared": declared,
                        "check": check,
                        "errors": 0 if hm else sum(f.check == check and f.severity == "error" for f in found),
                        "warnings": hanley_mcneil_only_flags(spec)
                        if hm
                        else sum(f.check == check and f.severity == "warning" for f in found),
                        "auc_method": sim.methods["auc"],
                        "proportion_method": sim.methods["proportion"],
                    }
                )
            if declared or i >= n_planted:
                continue
            before = {_key(f) for f in found}
            for kind in kinds:
                res = plant(sim, kind, seed=i * 31 + kinds.index(kind))
                if res is None:
                    continue
                spec_p, ids = res
                new = [f for f in _audit(spec_p) if _key(f) not in before and set(f.ids) & set(ids)]
                plant_rows.append(
                    {
                        "paper": i,
                        "kind": kind,
                        "error": any(f.severity == "error" for f in new),
                        "error_or_warning": any(f.severity in ("error", "warning") for f in new),
                        "checks": ",".join(sorted({f.check for f in new if f.severity != "info"})),
                    }
                )
    return {"clean": pd.DataFrame(clean_rows), "planted": pd.DataFrame(plant_rows)}


def summarise(res: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The calibration tables: per check, the share of consistent papers with an error (and a warning),
    without and with declared CI methods; per error type, the detection rates and the checks that fire."""
    clean = res["clean"]
    papers = clean.groupby("declared")["paper"].nunique()
    fp = (
        clean.assign(any_error=clean["errors"] > 0, any_warning=clean["warnings"] > 0)
        .groupby(["check", "declared"])[["any_error", "any_warning"]]
        .mean()
        .unstack("declared")
    )
    fp.columns = [
        f"{'error' if a == 'any_error' else 'warning'} rate, {'declared' if d else 'undeclared'}" for a, d in fp.columns
    ]
    fp = fp[
        [
            c
            for c in (
                "error rate, undeclared",
                "error rate, declared",
                "warning rate, undeclared",
                "warning rate, declared",
            )
            if c in fp.columns
        ]
    ]
    fp.attrs["papers"] = int(papers.max())
    pl = res["planted"]
    det = pl.groupby("kind").agg(
        papers=("paper", "size"),
        detected_as_error=("error", "mean"),
        detected_as_error_or_warning=("error_or_warning", "mean"),
    )
    det["checks that fire"] = pl.groupby("kind")["checks"].agg(
        lambda s: ", ".join(
            f"{c} {n}"
            for c, n in pd.Series(",".join(s).split(",")).replace("", np.nan).dropna().value_counts().head(3).items()
        )
    )
    det = det.reindex([k for k in PLANTS if k in det.index])
    return {"false_positives": fp, "detection": det}


def stored_calibration(path=None) -> dict | None:
    """The stored result of ``benchmarks/bench_audit_calibration.py`` (``replicate/data/audit_calibration.json``):
    metadata plus the ``false_positives`` and ``detection`` tables as DataFrames; None if it was never run."""
    import json
    from pathlib import Path

    p = Path(path) if path else Path(__file__).resolve().parent / "data" / "audit_calibration.json"
    if not p.exists():
        return None
    raw = json.loads(p.read_text())
    out = {k: v for k, v in raw.items() if k not in ("false_positives", "detection")}
    out["false_positives"] = pd.DataFrame(raw["false_positives"]).set_index("check")
    out["detection"] = pd.DataFrame(raw["detection"]).set_index("kind")
    return out
