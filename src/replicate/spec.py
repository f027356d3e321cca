"""Paper specs: one declarative YAML per paper (cohorts, design, reported numbers, verdict rule)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .config import specs_dir

CHAPTER_IDS = ("wdlps", "rls", "alt", "sts", "us")
SCHEMA_FILES = ("schema", "audit_schema")  # specs/*.yaml that are schemas, not papers


class SpecError(ValueError):
    """A spec that does not follow ``specs/schema.yaml`` or is internally inconsistent."""


@lru_cache(maxsize=1)
def schema() -> dict:
    return yaml.safe_load((specs_dir() / "schema.yaml").read_text())


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
    def verdict_rule(self) -> dict:
        return self.raw["verdict_rule"]

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
    """Schema validation plus the checks a schema cannot express."""
    try:
        jsonschema.validate(raw, schema())
    except jsonschema.ValidationError as exc:
        loc = "/".join(str(p) for p in exc.absolute_path)
        raise SpecError(f"{where}: {exc.message} (at {loc or 'top level'})") from None
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
