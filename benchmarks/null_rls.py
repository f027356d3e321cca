"""What chance looks like for chapter ``rls`` (issue 12, item 5): the headline AUCs under permuted labels.

The public proxy (51 TCIA patients, 24 with distant metastasis, the non-contrast CT of their PET/CT) in the
chapter's ``quick`` profile and its ``protocol="paper"`` design: repeated stratified cross-validation
(2 x 3 folds), the whole pipeline refitted in every fold. Features are extracted once (seed 0: the mask
perturbation, the reproducibility subset and the untrained CNN's weights): they do not depend on the labels.
For every seed the outcome is permuted exactly as the chapter permutes it with ``null_labels=True`` at that
seed, and the CV splits and every model seed follow that seed (:func:`replicate.dlrn.null_seed_aucs`).
Headline models: the DLRN, the DLRS (hand-crafted + deep LASSO score), the RS (hand-crafted LASSO score)
and the clinical model. Per model two estimates are kept: the chapter's headline (mean test-fold AUC,
corrected resampled SE) and ``(pooled OOF)``, the AUC of the repeat-averaged out-of-fold prediction
(DeLong SE); for the DLRN also ``(per-repeat pooled)``, the alternative the chapter does not use.

Run (one core, about 15-25 min; not part of ``make test`` or ``make book``)::

    nice -n 10 python benchmarks/null_rls.py --seeds 100

and commit ``benchmarks/results/null_rls.json``: the chapter page shows the stored result.
"""

from __future__ import annotations

from null_dlrn import DLRNNull, main

JOB = DLRNNull(
    chapter="rls",
    modality="CT",
    label="distant_mets",
    models=("DLRN", "DLRS", "RS", "Clinical"),
    n_icc=lambda spec, counts, table: round(spec.design["robustness"]["subset_fraction"] * len(table)),
    rename={"RS LASSO": "RS"},  # the LASSO heads are the signatures themselves (as in the chapter)
)


if __name__ == "__main__":
    print(main(JOB))
