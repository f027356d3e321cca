"""The null-label benchmark of the two DLRN chapters (``sts``, ``rls``): one ``prepare`` and one ``main``,
parameterised by what differs between them (:class:`DLRNNull`). Run through ``benchmarks/null_sts.py`` or
``benchmarks/null_rls.py``, whose docstrings say what each measures."""

from __future__ import annotations

import argparse
import datetime
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from replicate import dlrn, null
from replicate.data import load_cohort
from replicate.spec import load_spec


@dataclass(frozen=True)
class DLRNNull:
    """What one chapter's null benchmark needs: its modality, outcome column, headline models, how many
    patients are re-segmented for the ICC (``n_icc(spec, counts, table)``), the heads to fit, the renaming of
    score columns to model names, and whether its public columns are derived from the image features."""

    chapter: str
    modality: str
    label: str | None  # None: the cohort's default label
    models: tuple[str, ...]
    n_icc: Callable
    heads: str = "all"
    rename: dict | None = None
    derive_from_features: bool = False


def prepare(job: DLRNNull, counts: dict, spec, n_jobs: int):
    """The chapter's public inputs in the quick profile (the notebook's feature and clinical cells)."""
    cohort = load_cohort("ibsi_sts")
    table = cohort.table
    deep = spec.design["features"]["deep"]
    imf = dlrn.extract_image_features(
        cohort,
        [job.modality],
        params=spec.design["features"]["hcr"]["params"],
        image_types=counts["radiomics_image_types"],
        deep={
            "backbone": deep["backbone"],
            "layer": deep["layer"],
            "size": counts["deep_input_size"],
            "crop_margin": deep["crop_margin"],
            "slices": deep["slices"],
        },
        perturb_ids=dlrn.reproducibility_subset(table, job.n_icc(spec, counts, table), seed=0),
        seed=0,
        n_jobs=n_jobs,
    )
    if job.derive_from_features:
        dlrn.derive_public_columns(job.chapter, table, imf.features)
    else:
        dlrn.derive_public_columns(job.chapter, table)
    ids = list(imf.features.index)
    clin = pd.DataFrame(
        {
            k: pd.to_numeric(table.loc[ids, c], errors="coerce")
            for k, c in spec.design["clinical"]["columns"]["public"].items()
        }
    )
    cfg = dlrn.DLRNConfig.from_spec(spec, counts)
    sig_cols = {s: imf.columns(src) for s, src in cfg.signatures.items()}

    def make_model(seed):
        return dlrn.DLRNModel(cfg, sig_cols, list(clin.columns), perturbed=imf.perturbed, heads=job.heads, seed=seed)

    label = job.label or cohort.label
    return pd.concat([imf.features, clin], axis=1), table.loc[ids, label].astype(int), make_model


def main(job: DLRNNull, argv=None) -> Path:
    cid = job.chapter
    ap = argparse.ArgumentParser(description=f"null distribution of chapter {cid}'s headline AUCs")
    ap.add_argument("--seeds", type=int, default=100, help="number of seeds")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=1, help="feature-extraction workers (the CV runs serially)")
    ap.add_argument("--out", default=None, help=f"JSON path (default benchmarks/results/null_{cid}.json)")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    spec = load_spec(cid)
    counts = spec.profile("quick")
    X, y_true, make_model = prepare(job, counts, spec, a.n_jobs)
    seeds = range(a.first_seed, a.first_seed + a.seeds)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dist = null.run_null(
        cid,
        lambda s: dlrn.null_seed_aucs(cid, s, X, y_true, make_model, counts, job.models, rename=job.rename),
        seeds,
        data="public",
        profile="quick",
        generated_by=f"benchmarks/null_{cid}.py on {datetime.date.today().isoformat()} (git {commit or 'unknown'})",
    )
    dist.notes = [
        (
            f"{len(y_true)} patients, {int(y_true.sum())} positive; repeated stratified CV {counts['cv_repeats']} x "
            f"{counts['cv_folds']} folds (quick profile), the whole pipeline refitted in every fold."
        ),
        (
            "Features extracted once (seed 0); per seed: the chapter's permutation of the outcome (null_labels=True), "
            "its CV split seed and its model seed."
        ),
        (
            "'<model>': mean test-fold AUC with the corrected resampled SE (the chapter's headline); '(pooled OOF)': "
            "AUC of the repeat-averaged out-of-fold prediction with its DeLong SE (the secondary); "
            "'(per-repeat pooled)': mean of the per-repeat pooled AUCs with a corrected SE from those R values."
        ),
    ]
    return null.save(dist, a.out)
