"""What every chapter notebook calls first: parameters -> a ChapterContext.

The context holds the spec, the profile's repeat counts, the seed's random
generator, the results collector and the output folder; it saves figures and
finishes by writing ``results.json`` with provenance.
"""

from __future__ import annotations

import platform
import subprocess
import time
import zlib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import progress
from .config import repo_root
from .results import ChapterResults
from .spec import Spec, load_spec

DATA_CHOICES = ("public", "synthetic")
PROTOCOLS = ("paper", "worc")
PROFILES = ("full", "quick")
PROVENANCE_PACKAGES = (
    "pyradiomics-bhklab",
    "scikit-learn",
    "imbalanced-learn",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "lifelines",
    "torch",
    "torchvision",
    "timm",
    "SimpleITK",
    "neuroCombat",
    "mrmr-selection",
    "dcurves",
)


def package_versions(names=PROVENANCE_PACKAGES) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except Exception:
        return None


@dataclass
class ChapterContext:
    spec: Spec
    data: str
    seed: int
    profile: str
    null_labels: bool
    protocol: str
    output_dir: Path
    counts: dict
    results: ChapterResults
    extra_params: dict = field(default_factory=dict)
    t0: float = field(default_factory=time.perf_counter)

    @property
    def rng(self) -> np.random.Generator:
        """A fresh generator from the seed (same numbers every time it is asked for)."""
        return np.random.default_rng(self.seed)

    def child_seed(self, *keys: int | str) -> int:
        """A reproducible integer seed for a named random step."""
        # zlib.crc32, not hash(): str hashes are salted per process (PYTHONHASHSEED).
        material = [self.seed] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
        return int(np.random.SeedSequence(material).generate_state(1)[0] % (2**31 - 1))

    def labels(self, y: pd.Series) -> pd.Series:
        """The outcome to learn from: ``y`` itself, or a seeded permutation when ``null_labels``."""
        if not self.null_labels:
            return y
        perm = np.random.default_rng(self.child_seed("null_labels")).permutation(y.to_numpy())
        return pd.Series(perm, index=y.index, name=y.name)

    def stage(self, name: str, total: int | None = None, unit: str = "item", **fields: Any):
        """A named stage of the chapter (a context manager) for ``make book``'s progress lines and the
        per-stage timings (:mod:`replicate.progress`)::

            with ctx.stage("AutoML search", total=len(splits), unit="split"):
                for i, split in enumerate(splits, 1):
                    ...
                    ctx.tick(i)

        Library calls inside (extraction, CV folds, random splits) report their own stages nested in it.
        """
        return progress.stage(name, total=total, unit=unit, **fields)

    def tick(self, i: int, total: int | None = None) -> None:
        """Counter ``i`` (of ``total``, default the stage's) of the innermost open stage."""
        progress.tick(i, total)

    def figure(self, fig, name: str) -> None:
        """Save a matplotlib figure under ``output_dir/figures`` (PNG) and show it on the page."""
        path = self.output_dir / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:  # pragma: no cover
            return None
        if get_ipython() is not None:
            display(fig)  # rendered as PNG (see show_figures_as_png), whatever the matplotlib backend
        return None

    def comparison(self) -> pd.DataFrame:
        """The page's reported-vs-reproduced section: what this data can show (with the headline pair's
        resolution), the forest plot, and the table of every pair the paper reports (returned)."""
        from . import plots
        from .results import what_it_shows

        res = self.results.to_dict()
        try:
            from IPython.display import Markdown, display

            counts = {k: v for k, v in res["verdict_counts"].items() if v}
            display(
                Markdown(
                    f"**What this comparison can show.** {what_it_shows(res)}\n\n"
                    f"Pairs by comparability: {res['comparability_counts']}; by verdict: {counts}."
                )
            )
        except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks
            pass
        self.figure(
            plots.forest_plot(res["metrics"], title=f"{self.spec.id}: reported vs reproduced ({self.data} data)"),
            "forest",
        )
        return self.results.table(only_reported=True)

    def finish(self, **provenance: Any) -> Path:
        """Write ``results.json`` (with runtime, packages, commit) and return its path."""
        prov = self.results.provenance
        prov.setdefault("packages", package_versions())
        prov.setdefault("git_commit", git_commit())
        prov.setdefault("python", platform.python_version())
        prov.setdefault("machine", f"{platform.machine()} {platform.system()}")
        prov.update(provenance)
        prov["runtime_s"] = round(time.perf_counter() - self.t0, 1)
        return self.results.write(self.output_dir)


def show_figures_as_png() -> None:
    """In a notebook, render displayed matplotlib figures as PNG whatever the backend.

    ``make`` exports ``MPLBACKEND=Agg`` for headless runs; under a non-inline backend IPython
    shows a figure as its text repr (``<Figure size ...>``), so the book would lose every plot.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("png")


def start(
    chapter_id: str,
    *,
    data: str = "public",
    seed: int = 0,
    profile: str = "full",
    null_labels: bool = False,
    protocol: str = "paper",
    output_dir: str | Path | None = None,
    **extra: Any,
) -> ChapterContext:
    """Validate the chapter parameters and set up a :class:`ChapterContext`."""
    if data not in DATA_CHOICES:
        raise ValueError(f"{chapter_id}: data must be one of {DATA_CHOICES}, got {data!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"{chapter_id}: protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if profile not in PROFILES:
        raise ValueError(f"{chapter_id}: profile must be one of {PROFILES}, got {profile!r}")
    spec = load_spec(chapter_id)
    out = Path(output_dir) if output_dir else repo_root() / "runs" / chapter_id
    out.mkdir(parents=True, exist_ok=True)
    params = {
        "data": data,
        "seed": int(seed),
        "profile": profile,
        "null_labels": bool(null_labels),
        "protocol": protocol,
        **extra,
    }
    results = ChapterResults(spec, data=data, parameters=params)
    np.random.seed(int(seed))  # legacy global RNG, for libraries that still use it
    show_figures_as_png()
    return ChapterContext(
        spec=spec,
        data=data,
        seed=int(seed),
        profile=profile,
        null_labels=bool(null_labels),
        protocol=protocol,
        output_dir=out,
        counts=spec.profile(profile),
        results=results,
        extra_params=extra,
    )
