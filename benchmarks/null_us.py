"""What chance looks like in `us`: the nine models' external AUC under permuted labels, over many seeds.

    nice -n 10 .venv/bin/python benchmarks/null_us.py [--seeds 100] [--first-seed 0] [--data public]

writes ``benchmarks/results/null_us.json`` (:mod:`replicate.null`; ``--out`` elsewhere), which the chapter's
section "What chance looks like" shows. Not part of ``make test`` or ``make book``.

The features are the chapter's (quick profile, chapter seed 0: the same network weights, ICC patients and
perturbed masks as ``replicate run us -p profile=quick``), extracted once through
:func:`replicate.fusion.crdl_inputs`: they do not depend on the outcome. For each seed the chapter's own
permutation of the outcome is drawn (within each cohort, seeded like the notebook's ``null_labels=True``
at that seed) before anything is learned, then the chapter's quick-profile family
(:func:`replicate.fusion.crdl_family` with that seed) is fitted on the training cohort and scores the
external cohort: each model's external AUC with DeLong's SE. The cut-offs do not enter an AUC and are not
fitted here.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from datetime import date

CHAPTER = "us"


def make_one_seed(data: str = "public", n_jobs: int = 2, profile: str = "quick"):
    """``one_seed(seed) -> {model: {cohort, auc, se, n_positive, n_negative}}`` for :func:`replicate.null.run_null`."""
    import replicate.chapter
    from replicate.data.loaders import load_cohort
    from replicate.fusion import crdl_family, crdl_inputs, fit_fusion_models, permute_within
    from replicate.stats.auc import delong_variance

    out_dir = tempfile.mkdtemp(prefix="null_us_")
    ctx0 = replicate.chapter.start(CHAPTER, data=data, profile=profile, seed=0, output_dir=out_dir)
    spec, counts = ctx0.spec, ctx0.counts
    if data == "public":
        cohort, label = load_cohort("busbra"), "malignant"
    else:
        from replicate.data.synthetic import make_cohort

        cohort = make_cohort(CHAPTER, seed=0, n_patients=counts.get("synthetic_n_patients"))
        label = cohort.label
    t0 = time.perf_counter()
    inp = crdl_inputs(
        cohort,
        data=data,
        design=spec.design,
        proxy=spec.proxy,
        counts=counts,
        seed=0,
        icc_seed=ctx0.child_seed("icc patients"),
        perturb_seed=ctx0.child_seed("perturb"),
        n_jobs=n_jobs,
    )
    print(f"[null us] features for {len(inp.X)} patients in {time.perf_counter() - t0:.0f} s", flush=True)
    X = inp.X
    split = cohort.table.loc[X.index, "split"]
    y_true = cohort.table.loc[X.index, label].astype(int)
    tr, va = X.index[split == "training"], X.index[split == "validation"]

    def one_seed(seed: int) -> dict[str, dict]:
        ctx = replicate.chapter.start(
            CHAPTER, data=data, seed=seed, profile=profile, null_labels=True, output_dir=out_dir
        )
        y = permute_within(y_true, split, seed=ctx.child_seed("null labels"))  # the notebook's permutation
        family = crdl_family(spec.design, counts, inp.icc_tables, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fm = fit_fusion_models(X.loc[tr], y.loc[tr], **family)
        P = fm.predict_proba(X.loc[va])
        yv = y.loc[va].to_numpy()
        res = {}
        for m in P:
            auc, var = delong_variance(yv, P[m].to_numpy())
            res[m] = {
                "cohort": "validation",
                "auc": auc,
                "se": math.sqrt(var),
                "n_positive": int(yv.sum()),
                "n_negative": int((1 - yv).sum()),
            }
        return res

    return one_seed, counts, inp


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--data", choices=("public", "synthetic"), default="public")
    ap.add_argument("--n-jobs", type=int, default=2, help="feature extraction only (cached after the first run)")
    ap.add_argument("--out", default=None, help="default benchmarks/results/null_us.json")
    args = ap.parse_args(argv)
    from replicate import null

    one_seed, counts, inp = make_one_seed(args.data, args.n_jobs)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    t0 = time.perf_counter()
    dist = null.run_null(
        CHAPTER,
        one_seed,
        seeds,
        data=args.data,
        profile="quick",
        generated_by=f"benchmarks/null_us.py --seeds {args.seeds} --first-seed {args.first_seed} "
        f"--data {args.data} ({date.today().isoformat()})",
    )
    dist.notes += [
        f"{'BUS-BRA' if args.data == 'public' else 'synthetic twin'}, {len(inp.X)} patients with every feature block; "
        "the chapter's quick-profile features (seed 0), extracted once; per seed the outcome permuted within "
        "each cohort (the notebook's null_labels=True at that seed) and the chapter's quick-profile family "
        f"refitted (untuned RBF SVM {counts['svm_grid'] if counts['svm_tune'] else 'C=1, gamma=auto'}, "
        f"{counts['lasso_cv_folds']}-fold LASSO, {counts['post_fusion_cv_folds']}-fold stacking).",
        "Each model's external AUC; its curve uses DeLong's SE.",
        f"{len(dist.seeds)} seeds in {time.perf_counter() - t0:.0f} s wall.",
    ]
    path = null.save(dist, args.out)
    print(path)
    for name, s in dist.summary().items():
        print(
            f"{name:20s} mean {s['mean']:.3f}  SD {s['sd']:.3f}  DeLong {s['delong_sd']:.3f}  "
            f"tolerance {s['tolerance']:.3f}  range [{s['min']:.2f}, {s['max']:.2f}]"
        )
    off = null.check_centred(dist)
    print("centred (|mean - 0.5| <= 3 SD / sqrt(seeds)):", "all" if not off else f"NOT {sorted(off)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
