"""What chance looks like for chapter ``sts`` (issue 12, item 5): the headline AUCs under permuted labels.

The public proxy (51 TCIA patients, 19 with lung metastasis) in the chapter's ``quick`` profile and its
``protocol="paper"`` design: repeated stratified cross-validation (2 x 3 folds), the whole DLRN pipeline
refitted in every fold. Features are extracted once (seed 0: the mask perturbation, the reproducibility
subset and the untrained CNN's weights): they do not depend on the labels. For every seed the outcome is
permuted exactly as the chapter permutes it with ``null_labels=True`` at that seed, and the CV splits and
every model seed follow that seed (:func:`replicate.dlrn.null_seed_aucs`). Only what the three headline
models need is fitted (heads ``"dlrn"``): the DLRN, the HD-Combined SVM-SMOTE signature ("Radiomics")
and the clinical model. Per model two estimates are kept: the chapter's headline (mean test-fold AUC,
corrected resampled SE) and ``(pooled OOF)``, the AUC of the repeat-averaged out-of-fold prediction
(DeLong SE); for the DLRN also ``(per-repeat pooled)``, the alternative the chapter does not use.

Run (one core, about 15-25 min; not part of ``make test`` or ``make book``)::

    nice -n 10 python benchmarks/null_sts.py --seeds 100

and commit ``benchmarks/results/null_sts.json``: the chapter page shows the stored result.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import warnings
from pathlib import Path

import pandas as pd

from replicate import dlrn, null
from replicate.data import load_cohort
from replicate.spec import load_spec

CHAPTER = "sts"
MODELS = ("DLRN", "Radiomics", "Clinical")


def prepare(counts: dict, spec, n_jobs: int):
    """The chapter's public inputs in the quick profile (the notebook's feature and clinical cells)."""
    cohort = load_cohort("ibsi_sts")
    table = cohort.table
    deep = spec.design["features"]["deep"]
    imf = dlrn.extract_image_features(
        cohort,
        ["T1"],
        params=spec.design["features"]["hcr"]["params"],
        image_types=counts["radiomics_image_types"],
        deep={
            "backbone": deep["backbone"],
            "layer": deep["layer"],
            "size": counts["deep_input_size"],
            "crop_margin": deep["crop_margin"],
            "slices": deep["slices"],
        },
        perturb_ids=dlrn.reproducibility_subset(table, counts.get("icc_subset"), seed=0),
        seed=0,
        n_jobs=n_jobs,
    )
    dlrn.derive_public_columns(CHAPTER, table, imf.features)
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
        return dlrn.DLRNModel(cfg, sig_cols, list(clin.columns), perturbed=imf.perturbed, heads="dlrn", seed=seed)

    return pd.concat([imf.features, clin], axis=1), table.loc[ids, cohort.label].astype(int), make_model


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description="null distribution of chapter sts's headline AUCs")
    ap.add_argument("--seeds", type=int, default=100, help="number of seeds")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=1, help="feature-extraction workers (the CV runs serially)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/null_sts.json)")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    spec = load_spec(CHAPTER)
    counts = spec.profile("quick")
    X, y_true, make_model = prepare(counts, spec, a.n_jobs)
    seeds = range(a.first_seed, a.first_seed + a.seeds)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dist = null.run_null(
        CHAPTER,
        lambda s: dlrn.null_seed_aucs(CHAPTER, s, X, y_true, make_model, counts, MODELS),
        seeds,
        data="public",
        profile="quick",
        generated_by=f"benchmarks/null_{CHAPTER}.py on {datetime.date.today().isoformat()} (git {commit or 'unknown'})",
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


if __name__ == "__main__":
    print(main())
