"""What chance looks like in `alt`: the Cohort-1 models' AUC under permuted labels, over many seeds.

    nice -n 10 .venv/bin/python benchmarks/null_alt.py [--seeds 100] [--first-seed 0] [--n-jobs 2]

writes ``benchmarks/results/null_alt.json`` (:mod:`replicate.null`), which the chapter's section "What
chance looks like" shows. Not part of ``make test`` or ``make book``.

The features are the public WORC Lipo features (computed by WORC from the images and masks, without the
labels), loaded once. For each seed the chapter's own permutation of the outcome is drawn
(``ChapterContext.labels`` with ``null_labels=True`` at that seed) before anything is learned, and the
chapter's quick-profile modelling runs for its headline models, the imaging and the volume model: the
WORC-style search (10 workflows, ensemble of the best 3, 3 inner splits) refitted on each of WORC's first
10 random splits, with the chapter's seeds (its first seed run). Two AUCs per model and seed:

* ``<model>``: the chapter's headline estimate, the mean of the 10 split AUCs; its ``se`` is the corrected
  resampled t-test SE (Nadeau & Bengio), the SE the chapter's CI uses (not DeLong's);
* ``<model>, pooled score``: the AUC of each patient's mean out-of-split score, with DeLong's SE.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import zlib
from datetime import date

CHAPTER = "alt"
MODELS = ("Imaging model", "Volume model")
CHUNK = 10  # seeds between saves
VOLUME = "PREDICT_original_sf_volume_2.5D"


def make_one_seed(n_jobs: int = 2, profile: str = "quick"):
    """``one_seed(seed) -> {entry: {cohort, auc, se, n_positive, n_negative}}`` for :func:`replicate.null.run_null`."""
    import replicate.chapter
    from replicate import automl
    from replicate.automl import WORCAutoML
    from replicate.data.loaders import load_cohort, load_worc_splits
    from replicate.stats.auc import delong_variance
    from replicate.stats.resampled_ttest import corrected_se

    cohort = load_cohort("worc_lipo")
    X = cohort.meta["features"]
    y_true = cohort.table["label"].astype(int)
    out_dir = tempfile.mkdtemp(prefix="null_alt_")
    counts = replicate.chapter.start(CHAPTER, data="public", profile=profile, output_dir=out_dir).counts
    splits = load_worc_splits()[: counts["n_splits"]]
    n_train, n_test = len(splits[0][0]), len(splits[0][1])
    columns = {"Imaging model": list(X.columns), "Volume model": [VOLUME]}

    def make_model(s):
        return WORCAutoML(
            n_workflows=counts["run_n_workflows"],
            n_top=counts["run_n_top"],
            inner_cv=counts["inner_splits"],
            inner_test_size=counts["inner_test_size"],
            scoring=counts["scoring"],
            seed=s,
            n_jobs=1,
        )

    def one_seed(seed: int) -> dict[str, dict]:
        ctx = replicate.chapter.start(
            CHAPTER, data="public", seed=seed, profile=profile, null_labels=True, output_dir=out_dir
        )
        y = ctx.labels(y_true)  # the chapter's permutation, before anything is learned

        def sseed(*keys):  # the notebook's seeds for named steps
            return ctx.child_seed(*[zlib.crc32(str(k).encode()) for k in keys])

        res = {}
        for name in MODELS:
            ev = automl.evaluate_random_splits(
                make_model, X[columns[name]], y, splits, seed=sseed("cv", name, 0), n_jobs=n_jobs
            )
            per = ev.per_split["AUC"].dropna().to_numpy()
            res[name] = {
                "cohort": "cv",
                "auc": float(per.mean()),
                "se": corrected_se(per, n_train, n_test),
                "n_positive": int(y.sum()),
                "n_negative": int((1 - y).sum()),
            }
            ps = ev.patient_scores()
            auc, var = delong_variance(ps["y"].to_numpy(), ps["score"].to_numpy())
            res[f"{name}, pooled score"] = {
                "cohort": "cv",
                "auc": auc,
                "se": math.sqrt(var),
                "n_positive": int(ps["y"].sum()),
                "n_negative": int((1 - ps["y"]).sum()),
            }
        return res

    return one_seed, counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--out", default=None, help="default benchmarks/results/null_alt.json")
    args = ap.parse_args(argv)
    from replicate import automl, null

    one_seed, counts = make_one_seed(args.n_jobs)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    notes = [
        f"Public WORC Lipo features (Cohort 1, 115 patients), WORC's first {counts['n_splits']} random splits; "
        f"quick-profile search: {counts['run_n_workflows']} workflows, ensemble of the best {counts['run_n_top']}, "
        f"{counts['inner_splits']} inner splits; the chapter's permutation and seeds (its first seed run).",
        "'<model>': the mean of the split AUCs (the chapter's headline estimate); its curve uses the corrected "
        "resampled t-test SE (Nadeau & Bengio), the SE behind the chapter's CI, not DeLong's.",
        "'<model>, pooled score': the AUC of each patient's mean out-of-split score; its curve uses DeLong's SE.",
        f"AutoML code version {automl._code_version()} (replicate.automl._code_version()).",
    ]
    generated_by = (
        f"benchmarks/null_alt.py --seeds {args.seeds} --first-seed {args.first_seed} ({date.today().isoformat()})"
    )
    t0 = time.perf_counter()
    dist = None
    for start in range(0, len(seeds), CHUNK):  # saved after every chunk: an interrupted run keeps its seeds
        part = null.run_null(
            CHAPTER, one_seed, seeds[start : start + CHUNK], data="public", profile="quick", generated_by=generated_by
        )
        if dist is None:
            dist = part
        else:
            dist.seeds += part.seeds
            for name, m in part.models.items():
                dist.models[name]["aucs"] += m["aucs"]
                dist.models[name]["ses"] += m["ses"]
        dist.seconds = round(time.perf_counter() - t0, 1)
        done = len(dist.seeds) == len(seeds)
        dist.notes = notes + [
            f"{len(dist.seeds)} seeds in {dist.seconds:.0f} s wall"
            + ("." if done else f" (partial: {len(dist.seeds)} of {len(seeds)} seeds so far).")
        ]
        null.save(dist, args.out)
    path = null.save(dist, args.out)
    print(path)
    for name, s in dist.summary().items():
        print(
            f"{name:32s} mean {s['mean']:.3f}  SD {s['sd']:.3f}  predicted {s['delong_sd']:.3f}  "
            f"tolerance {s['tolerance']:.3f}  range [{s['min']:.2f}, {s['max']:.2f}]"
        )
    off = null.check_centred(dist)
    print("centred (|mean - 0.5| <= 3 SD / sqrt(seeds)):", "all" if not off else f"NOT {sorted(off)}")
    return 0 if math.isfinite(dist.seconds) else 1


if __name__ == "__main__":
    sys.exit(main())
