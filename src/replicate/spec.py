"""Paper specs: one declarative YAML per paper (cohorts, design, reported numbers, verdict rule)."""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from .config import specs_dir

CHAPTER_IDS = ("wdlps", "rls", "alt", "sts", "us")
SCHEMA_FILES = ("schema", "audit_schema")  # specs/*.yaml that are schemas, not papers


class SpecError(ValueError):
    """A spec that does not follow ``specs/schema.yaml`` or is internally inconsistent."""


@lru_cache(maxsize=1)
def schema() -> dict:
    """The spec schema (``specs/schema.yaml``; its strict parts are in ``specs/schema/*.yaml``)."""
    return yaml.safe_load((specs_dir() / "schema.yaml").read_text())


@lru_cache(maxsize=1)
def _registry() -> Registry:
    """``specs/schema/*.yaml`` under the relative URIs ``schema/<name>.yaml`` that ``$ref`` uses."""
    return Registry().with_resources(
        (f"schema/{p.name}", DRAFT202012.create_resource(yaml.safe_load(p.read_text())))
        for p in sorted((specs_dir() / "schema").glob("*.yaml"))
    )


def _properties_with_defaults(validator, properties, instance, schema):
    """The ``properties`` keyword, which first fills in a copy of each absent property's ``default``
    (jsonschema's "extending with defaults" recipe): validating a spec completes it."""
    if validator.is_type(instance, "object"):
        for key, sub in properties.items():
            if key not in instance and isinstance(sub, dict) and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
    yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


_FillingValidator = validators.extend(Draft202012Validator, {"properties": _properties_with_defaults})


@cache
def _validator(ref: str | None) -> Draft202012Validator:
    """A default-filling validator of the whole spec (``ref=None``) or of one definition, e.g.
    ``"schema/synthetic.yaml#/$defs/synthetic"``."""
    return _FillingValidator(schema() if ref is None else {"$ref": ref}, registry=_registry())


def _unknown_keys(error: ValidationError) -> list[str]:
    """The keys an ``additionalProperties: false`` error is about."""
    known = error.schema.get("properties", {})
    return [k for k in error.instance if k not in known]


def _describe(error: ValidationError, where: str) -> str:
    """One line naming the file (``where``), the key and its place; a close known key is suggested."""
    loc = "/".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = list(error.schema.get("properties", {}))
        lines = []
        for key in _unknown_keys(error):
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.7)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(f"{where}: unknown key {key!r} in {loc or 'the top level'}{hint}")
        return "; ".join(lines)
    return f"{where}: {error.message} (at {loc or 'top level'})"


def _first_error(errors: list[ValidationError]) -> ValidationError | None:
    """An unknown key first (also inside anyOf branches), else jsonschema's most relevant error."""
    todo = list(errors)
    while todo:
        e = todo.pop(0)
        if e.validator == "additionalProperties" and e.validator_value is False:
            return e
        todo.extend(e.context)
    return best_match(errors)


def check(instance: Any, ref: str | None = None, *, where: str = "spec", error: type[Exception] | None = None) -> None:
    """Validate ``instance`` against the spec schema (``ref=None``) or one of its definitions, filling in
    the schema's defaults in place; raise ``error`` (default :class:`SpecError`) naming ``where``, the
    key and its place (an unknown key with the closest known one)."""
    errors = list(_validator(ref).iter_errors(instance))
    if errors:
        raise (error or SpecError)(_describe(_first_error(errors), where))


@dataclass
class Spec:
    """A loaded, validated paper spec (the raw mapping is in ``raw``)."""

    raw: dict
    path: Path | None = None
    _index: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for r in self.reported:
            key = (r["model"], r["cohort"], r["metric"], r.get("variable"))
            self._index.setdefault(key, r)

    # convenient accessors -------------------------------------------------
    @property
    def id(self) -> str:
        return self.raw["id"]

    @property
    def title(self) -> str:
        return self.raw["title"]

    @property
    def citation(self) -> str:
        return self.raw["paper"]["citation"]

    @property
    def cohorts(self) -> dict:
        return self.raw["cohorts"]

    @property
    def design(self) -> dict:
        return self.raw.get("design", {})

    @property
    def synthetic(self) -> dict:
        return self.raw.get("synthetic", {})

    @property
    def proxy(self) -> dict:
        return self.raw.get("proxy", {})

    @property
    def margins(self) -> dict[str, float]:
        """TOST equivalence margins per metric (same_data pairs), declared before any run."""
        return dict(self.raw["margins"])

    def margin(self, metric: str) -> float | None:
        return self.margins.get(metric)

    def comparability(self, data: str) -> dict:
        """The declaration for one kind of data (``public`` / ``synthetic``)."""
        return self.raw["comparability"][data]

    def comparability_of(self, entry: dict, data: str, conditions=frozenset()) -> tuple[str, str]:
        """``(level, reason)`` of a reported number on this kind of data.

        The number's own ``comparability`` (when it covers ``data``) wins; then the first of the kind's
        rules whose models / cohorts / metrics all match (and whose ``condition``, if any, the run
        declared); else the kind's level.
        """
        own = entry.get("comparability")
        if own is not None and data in own.get("data", ["public"]):
            return own["level"], own.get("reason", "")
        kind = self.comparability(data)
        for rule in kind.get("rules", []):
            if rule.get("condition") and rule["condition"] not in conditions:
                continue
            if all(
                entry.get(field) in rule[key]
                for key, field in (("models", "model"), ("cohorts", "cohort"), ("metrics", "metric"))
                if key in rule
            ):
                return rule["level"], rule["reason"]
        return kind["level"], kind["reason"]

    @property
    def sha256(self) -> str | None:
        """sha256 of the spec file judged by (recorded in results.json)."""
        from .io import sha256_file

        return sha256_file(self.path) if self.path is not None else None

    @property
    def reported(self) -> list[dict]:
        return self.raw.get("reported", [])

    @property
    def comparisons(self) -> list[dict]:
        return self.raw.get("comparisons", [])

    def profile(self, name: str) -> dict:
        profiles = self.raw.get("profiles", {})
        if name not in ("full", "quick"):
            raise SpecError(f"{self.id}: unknown profile {name!r} (use 'full' or 'quick')")
        return dict(profiles.get(name, {}))

    def find_reported(self, model: str, cohort: str, metric: str, variable: str | None = None) -> dict | None:
        return self._index.get((model, cohort, metric, variable))

    def denominators(self, entry: dict) -> dict:
        """The entry's own denominators, else those of its cohort."""
        d = dict(self.cohorts.get(entry["cohort"], {}))
        d = {k: d[k] for k in ("n", "n_positive", "n_negative") if d.get(k) is not None}
        if "n" in d and "n_positive" in d and "n_negative" not in d:
            d["n_negative"] = d["n"] - d["n_positive"]
        d.update(entry.get("denominators", {}))
        return d


def validate(raw: dict, where: str = "spec") -> None:
    """Schema validation (filling in the schema's defaults, in place) plus the checks a schema cannot
    express."""
    check(raw, where=where)
    check_consistency(raw, where)


def check_consistency(raw: dict, where: str = "spec") -> None:
    """What a schema cannot express: unique ids, known cohorts, ordered CIs, class counts adding up."""
    ids = [r["id"] for r in raw.get("reported", [])] + [c["id"] for c in raw.get("comparisons", [])]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise SpecError(f"{where}: duplicate reported ids {dup}")
    for r in raw.get("reported", []):
        if r["cohort"] not in raw["cohorts"]:
            raise SpecError(f"{where}: reported {r['id']!r} names unknown cohort {r['cohort']!r}")
        ci = r.get("ci")
        if ci is not None and ci[0] > ci[1]:
            raise SpecError(f"{where}: reported {r['id']!r} has CI lower bound above upper bound")
    for r in raw.get("reported", []):
        own = r.get("comparability")
        if own is not None and own["level"] == "none" and not own.get("reason"):
            raise SpecError(f"{where}: reported {r['id']!r} is declared not comparable without a reason")
    for c in raw.get("comparisons", []):
        if c["cohort"] not in raw["cohorts"]:
            raise SpecError(f"{where}: comparison {c['id']!r} names unknown cohort {c['cohort']!r}")
    for name, c in raw["cohorts"].items():
        if "n_positive" in c and "n_negative" in c and c["n_positive"] + c["n_negative"] != c["n"]:
            raise SpecError(f"{where}: cohort {name!r}: n_positive + n_negative != n")


def load_spec_file(path: str | Path) -> Spec:
    path = Path(path)
    raw = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    validate(raw, where=str(path.name))
    return Spec(raw, path)


def load_spec(chapter_id: str) -> Spec:
    """Load and validate ``specs/<chapter_id>.yaml``."""
    path = specs_dir() / f"{chapter_id}.yaml"
    if not path.exists():
        raise SpecError(f"no spec for chapter {chapter_id!r} (expected {path})")
    return load_spec_file(path)


def available_specs() -> list[str]:
    return sorted(p.stem for p in specs_dir().glob("*.yaml") if p.stem not in SCHEMA_FILES)


def dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True)
