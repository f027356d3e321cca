"""What chance looks like: a chapter's headline AUCs under permuted labels, over many seeds.

With ``null_labels=True`` one seed is not a test: at n = 19 positives a single permutation can put a
model at AUC 0.3 or 0.7 by chance. A *null distribution* re-runs the chapter's modelling (quick profile,
features extracted once: they do not depend on the labels) over many seeds, each with its own
permutation of the outcome, and records each headline model's AUC with DeLong's standard error.

The distribution is computed by a ``benchmarks/`` job (not by ``make test`` or ``make book``) and
stored as JSON in ``benchmarks/results/null_<chapter>.json``; the chapter page shows the stored result,
labelled as such, beside DeLong's prediction (the spread one permutation of this cohort should show).
:func:`check_centred` is the test a teacher can read: every model's mean null AUC must lie within
``3 * SD / sqrt(seeds)`` of 0.5 (a leak lifts every seed alike; chance does not).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .config import repo_root
from .io import atomic_write_json

__all__ = ["NullDistribution", "run_null", "check_centred", "results_path", "load"]


@dataclass
class NullDistribution:
    """Per model: the AUC and DeLong SE of every seed (``aucs[i]`` / ``ses[i]`` belong to ``seeds[i]``)."""

    chapter: str
    data: str
    profile: str
    seeds: list[int]
    models: dict[str, dict]  # model -> {"cohort", "aucs", "ses", "n_positive", "n_negative"}
    generated_by: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, dict]:
        """Per model: mean, SD (ddof 1), the DeLong-predicted SD (root mean square SE), and the tolerance."""
        out = {}
        for name, m in self.models.items():
            a = np.asarray(m["aucs"], dtype=float)
            se = np.asarray(m.get("ses", []), dtype=float)
            sd = float(a.std(ddof=1)) if a.size > 1 else float("nan")
            out[name] = {
                "cohort": m.get("cohort"),
                "n_seeds": int(a.size),
                "mean": float(a.mean()),
                "sd": sd,
                "delong_sd": float(np.sqrt(np.mean(se**2))) if se.size else float("nan"),
                "tolerance": 3 * sd / math.sqrt(a.size) if a.size > 1 else float("nan"),
                "min": float(a.min()),
                "max": float(a.max()),
            }
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "summary": self.summary()}


def run_null(
    chapter: str,
    one_seed: Callable[[int], dict[str, dict]],
    seeds: Iterable[int],
    *,
    data: str,
    profile: str = "quick",
    generated_by: str = "",
    progress: bool = True,
) -> NullDistribution:
    """Call ``one_seed(seed)`` for every seed and collect its models' AUCs.

    ``one_seed`` permutes the outcome with ``seed`` before anything is learned, runs the chapter's
    modelling and returns ``{model: {"cohort": ..., "auc": ..., "se": ..., "n_positive": ..., "n_negative": ...}}``.
    """
    seeds = [int(s) for s in seeds]
    models: dict[str, dict] = {}
    t0 = time.perf_counter()
    for i, seed in enumerate(seeds, 1):
        for name, r in one_seed(seed).items():
            m = models.setdefault(
                name,
                {
                    "cohort": r.get("cohort"),
                    "aucs": [],
                    "ses": [],
                    "n_positive": r.get("n_positive"),
                    "n_negative": r.get("n_negative"),
                },
            )
            m["aucs"].append(float(r["auc"]))
            m["ses"].append(float(r.get("se", float("nan"))))
        if progress:
            el = time.perf_counter() - t0
            print(
                f"[null {chapter}] seed {i}/{len(seeds)}  {el:.0f} s elapsed, ~{el / i * (len(seeds) - i):.0f} s left",
                flush=True,
            )
    return NullDistribution(chapter, data, profile, seeds, models, generated_by, round(time.perf_counter() - t0, 1))


def check_centred(dist: NullDistribution) -> dict[str, dict]:
    """Models whose mean null AUC lies further than ``3 * SD / sqrt(seeds)`` from 0.5 (empty when all pass)."""
    return {k: v for k, v in dist.summary().items() if abs(v["mean"] - 0.5) > v["tolerance"]}


def results_path(chapter: str) -> Path:
    return repo_root() / "benchmarks" / "results" / f"null_{chapter}.json"


def save(dist: NullDistribution, path: str | Path | None = None) -> Path:
    return atomic_write_json(Path(path) if path else results_path(dist.chapter), dist.to_dict())


def load(chapter_or_path: str | Path) -> NullDistribution | None:
    """The stored distribution of a chapter (or a path), or None when the benchmark has not been run."""
    p = Path(chapter_or_path)
    if not p.suffix:
        p = results_path(str(chapter_or_path))
    if not p.exists():
        return None
    raw = json.loads(p.read_text())
    raw.pop("summary", None)
    return NullDistribution(**raw)
