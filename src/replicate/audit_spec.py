"""What ``replicate audit`` reads: a chapter spec, or a minimal *audit spec* of any paper.

An audit spec (schema ``specs/audit_schema.yaml``; ``replicate audit init`` writes a commented
example, :data:`TEMPLATE`) holds only what the checks need: cohorts with their sizes and class
counts, the reported numbers, the comparisons between models and the patient-characteristics
(Table 1) rows. :func:`load_audit_spec` validates it and turns it into the :class:`~replicate.spec.Spec`
the checks read, so the chapter specs (strict schema ``specs/schema.yaml``) and audit specs go
through the same checks:

* numbers may be written as the paper prints them, in quotes (``"0.850"``, ``"85.3%"``): the printed
  decimals are kept (``decimals``) and percents become fractions;
* ``table1`` rows become ``metric: PROP`` / ``metric: P`` entries of model ``Patients`` with the
  variable ``"Characteristic: level [group]"`` the checks expect;
* missing ids, models and ``where`` get defaults (``r001``, ``model``, ``{section: "reported #1"}``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .config import specs_dir
from .spec import Spec, SpecError, check_consistency, validate

__all__ = [
    "TEMPLATE",
    "audit_schema",
    "load_audit_spec",
    "normalise",
    "is_chapter_spec",
    "ci_method_of",
    "parse_number",
]

_NUM = re.compile(r"^\s*([+-]?)(\d+(?:\.(\d*))?|\.\d+)\s*(%?)\s*$")


@lru_cache(maxsize=1)
def audit_schema() -> dict:
    return yaml.safe_load((specs_dir() / "audit_schema.yaml").read_text())


@lru_cache(maxsize=1)
def _validator():
    cls = jsonschema.validators.validator_for(audit_schema())
    cls.check_schema(audit_schema())
    return cls(audit_schema())


def is_chapter_spec(raw: Mapping) -> bool:
    """A chapter spec declares what its comparisons can show (``comparability``); an audit spec never does."""
    return "comparability" in raw


def parse_number(v, where: str = "") -> tuple[float | None, int | None]:
    """``"85.30%"`` -> (0.853, 4); ``"0.850"`` -> (0.85, 3); ``0.85`` -> (0.85, None): value and printed decimals
    (of the fraction), ``None`` when the decimals cannot be read off (a YAML number)."""
    if v is None or isinstance(v, bool):
        return None, None
    if isinstance(v, (int, float)):
        return float(v), None
    m = _NUM.match(str(v).replace("\u2212", "-"))
    if not m:
        raise SpecError(f'{where}: {v!r} is not a number (write 0.85, "0.850" or "85.0%")')
    sign, body, dec, pct = m.groups()
    x = float(sign + body)
    d = len(dec) if dec is not None else (0 if "." not in body else len(body.split(".")[1]))
    if pct:
        return x / 100.0, d + 2
    return x, d


def _fix_numbers(entry: dict, keys: tuple[str, ...], where: str) -> None:
    """Parse quoted numbers in place; the first one's printed decimals become ``decimals``."""
    found = None
    for key in keys:
        if key not in entry:
            continue
        if key == "ci":
            parsed = [parse_number(x, f"{where}.ci") for x in entry["ci"]]
            entry["ci"] = [x for x, _ in parsed]
            d = max((d for _, d in parsed if d is not None), default=None)
        else:
            entry[key], d = parse_number(entry[key], f"{where}.{key}")
        if found is None and d is not None:
            found = d
    if found is not None and entry.get("decimals") is None:
        entry["decimals"] = found


def _table1_entries(rows: list[dict], cohorts: Mapping) -> list[dict]:
    out = []
    for i, row in enumerate(rows, 1):
        where = dict(row.get("where") or {"section": "Table 1"})
        where.setdefault("section", "Results")
        where.setdefault("table", "Table 1")
        char = str(row["characteristic"])
        group = f" [{row['group']}]" if row.get("group") else ""
        rid = row.get("id") or f"t1_{i:03d}"
        base = {"id": rid, "model": "Patients", "cohort": row["cohort"], "where": where}
        if row.get("note"):
            base["note"] = row["note"]
        if row.get("level") is not None:
            value, d = parse_number(row.get("percent"), f"table1[{i}].percent")
            e = {
                **base,
                "metric": "PROP",
                "variable": f"{char}: {row['level']}{group}",
                "value": None if value is None else value / 100.0,
            }
            if d is not None:
                e["decimals"] = d + 2
            den = {}
            if row.get("n") is not None:
                den["n"] = int(row["n"])
            if row.get("k") is not None:
                den["k"] = int(row["k"])
            if den:
                e["denominators"] = den
            out.append(e)
        if row.get("p_value") is not None:
            p = row["p_value"]
            out.append(
                {
                    **base,
                    "id": rid if row.get("level") is None else f"{rid}_p",
                    "metric": "P",
                    "variable": f"{char}{group}",
                    "value": p if not isinstance(p, str) else None,
                    "p_value": p,
                }
            )
    return out


def normalise(raw: Mapping, name: str = "paper") -> dict:
    """An audit spec as the checks read it (a new dict; ``raw`` is not changed)."""
    out: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("table1",)}
    out["id"] = str(raw.get("id") or re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower() or "paper")
    out.setdefault("title", out["id"])
    cohorts = {str(k): dict(v) for k, v in (raw.get("cohorts") or {}).items()}
    for c in cohorts.values():
        if c.get("n") is not None and c.get("n_positive") is not None and c.get("n_negative") is None:
            c["n_negative"] = int(c["n"]) - int(c["n_positive"])
    out["cohorts"] = cohorts
    reported = []
    for i, e in enumerate(raw.get("reported") or [], 1):
        e = dict(e)
        e.setdefault("id", f"r{i:03d}")
        e.setdefault("model", "model")
        e["where"] = dict(e.get("where") or {})
        e["where"].setdefault("section", f"reported #{i}")
        if e.get("denominators"):
            e["denominators"] = dict(e["denominators"])
        _fix_numbers(e, ("value", "ci"), e["id"])
        reported.append(e)
    reported += _table1_entries(list(raw.get("table1") or []), cohorts)
    out["reported"] = reported
    comparisons = []
    for i, c in enumerate(raw.get("comparisons") or [], 1):
        c = dict(c)
        c.setdefault("id", f"c{i:03d}")
        c["where"] = dict(c.get("where") or {})
        c["where"].setdefault("section", f"comparison #{i}")
        _fix_numbers(c, ("diff", "se", "ci", "z"), c["id"])
        comparisons.append(c)
    out["comparisons"] = comparisons
    return out


def validate_audit(raw: Mapping, where: str = "audit spec") -> None:
    err = jsonschema.exceptions.best_match(_validator().iter_errors(raw))
    if err is not None:
        loc = "/".join(str(p) for p in err.absolute_path)
        raise SpecError(f"{where}: {err.message} (at {loc or 'top level'})")


def load_audit_spec(source, name: str | None = None) -> Spec:
    """A :class:`Spec` to audit from a YAML path or a mapping: a chapter spec (strict schema) as it is,
    anything else as an audit spec (``specs/audit_schema.yaml``), normalised."""
    path = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise SpecError(f"no such spec file: {path}")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise SpecError(f"{path.name}: not valid YAML ({exc})") from None
        name = name or path.stem
    elif isinstance(source, Mapping):
        raw = dict(source)
    else:
        raise TypeError(f"load_audit_spec needs a path or a mapping, got {type(source).__name__}")
    where = path.name if path else str(raw.get("id", name or "spec"))
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: an audit spec is a mapping with at least 'cohorts'")
    if is_chapter_spec(raw):
        validate(dict(raw), where=where)
        return Spec(dict(raw), path)
    validate_audit(raw, where)
    spec = normalise(raw, name or str(raw.get("id") or "paper"))
    check_consistency(spec, where)
    return Spec(spec, path)


_PROPORTION_ALIASES = {
    "wilson_cc": "wilson-cc",
    "newcombe": "wilson-cc",
    "exact": "clopper-pearson",
    "clopper_pearson": "clopper-pearson",
    "agresti_coull": "agresti-coull",
    "normal": "wald",
}


def ci_method_of(spec: Spec, cohort: str | None, kind: str = "proportion") -> str | None:
    """The CI method the spec declares for ``kind`` (``proportion`` or ``auc``) in a cohort (the cohort's
    declaration first, then the spec's); ``None`` when nothing is declared."""
    for decl in ((spec.cohorts.get(cohort) or {}).get("ci_method") if cohort else None, spec.raw.get("ci_method")):
        if decl is None:
            continue
        m = (
            decl
            if isinstance(decl, str) and kind == "proportion"
            else decl.get(kind)
            if isinstance(decl, Mapping)
            else None
        )
        if m:
            return _PROPORTION_ALIASES.get(m, m)
    return None


TEMPLATE = """\
# An audit spec: the numbers of one paper that `replicate audit THIS_FILE.yaml` checks for internal
# consistency. Fill in what the paper prints; leave out what it does not. Schema:
# src/replicate/specs/audit_schema.yaml. Numbers may be quoted as printed ("0.850", "85.3%") so that
# the audit knows their printed decimals (a printed 0.850 stands for anything in [0.8495, 0.8505]).
id: my_paper
title: "First author et al. Year, Journal"

# How the paper computed its CIs, if it says so (proportions: wald, wilson, wilson-cc, clopper-pearson,
# agresti-coull, bootstrap; AUC: delong, hanley-mcneil, bootstrap). Without it every standard method is tried.
# ci_method: {proportion: wilson, auc: delong}

cohorts:                        # every cohort a number refers to
  training:   {n: 150, n_positive: 45}          # n_negative = n - n_positive
  validation: {n: 60, n_positive: 20}
  all:        {n: 210, n_positive: 65, composed_of: [training, validation]}
  # cv: {n: 150, n_positive: 45, estimate: mean}   # means over resamples are not k/n: count checks skip them

reported:                       # one row per printed number: model, cohort, metric, value [, ci]
  # metrics: AUC, C-index, SEN, SPE, ACC, ER, BCA, PPV, NPV (proportions as fractions or "xx.x%"),
  # OR / HR (with ci and p_value), PROP (a share of patients: give denominators {k, n})
  - {model: Radiomics, cohort: validation, metric: AUC, value: "0.850", ci: ["0.752", "0.948"],
     where: {section: Abstract, quote: "an AUC of 0.850 (95% CI 0.752-0.948)"}}
  - {model: Radiomics, cohort: validation, metric: SEN, value: "80.0%", ci: ["58.4%", "91.9%"]}
  - {model: Radiomics, cohort: validation, metric: SPE, value: "77.5%"}
  - {model: Radiomics, cohort: validation, metric: ACC, value: "78.3%", denominators: {k: 47}}
  - {model: Clinical, cohort: validation, metric: AUC, value: "0.700", ci: ["0.561", "0.839"]}

comparisons:                    # tests between two models' AUCs (DeLong): any of diff, se, ci, z, p_value
  - {model_a: Radiomics, model_b: Clinical, cohort: validation, test: DeLong, se: "0.060",
     ci: ["0.032", "0.268"], p_value: 0.012}

table1:                         # patient characteristics: counts (and printed percents) per cohort / group
  - {characteristic: Sex, level: Male, cohort: training, k: 80, percent: "53.3"}
  - {characteristic: Sex, level: Female, cohort: training, k: 70, percent: "46.7"}
  - {characteristic: Sex, level: Male, cohort: validation, k: 30, percent: "50.0"}
  - {characteristic: Sex, level: Female, cohort: validation, k: 30, percent: "50.0"}
  - {characteristic: Sex, cohort: all, p_value: 0.66}     # the P value comparing the cohorts
"""
