"""What chance looks like in `wdlps`: its headline AUCs under permuted diagnoses, over many seeds (issue 12).

For each seed the outcome is permuted (``ChapterContext.labels``, exactly as
``replicate run wdlps -p null_labels=True -p seed=SEED`` permutes it) before anything is learned, and the
chapter's quick-profile modelling is run for its headline models:

* the real-patient arm (WORC Lipo, 115 patients, WORC's T1 features): cross-validated AUC of the training
  part (mean over the repeats) and the hold-out AUC;
* the synthetic twin (the quick profile's cohort, its features extracted once: they do not depend on the
  labels): RN-DL (ResNet50-Multimodality), handcrafted Radiomics-Multimodality and the clinical model (CV and
  external AUC), the "DL signature" chosen the paper's way (the best external AUC of the five ResNet50
  models) and the clinical-DL nomogram built on it (external AUC).

Model seeds, splits and the permutation follow the chapter's own (``ctx.child_seed``); only the twin cohort
is fixed (seed 0) so that its features are extracted once. The result is stored in
``benchmarks/results/null_wdlps.json`` (``replicate.null``) and shown by the chapter's "What chance looks
like" section. Not part of ``make test`` or ``make book``. Run it quietly in the background:

    nice -n 10 python benchmarks/null_wdlps.py --seeds 100 > null_wdlps.log 2>&1 &
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

from replicate import deep_signatures as ds
from replicate import null
from replicate.chapter import start
from replicate.spec import load_spec
from replicate.stats.auc import delong_variance

CHAPTER = "wdlps"
SPEC = load_spec(CHAPTER)
Q = SPEC.profile("quick")
DESIGN = SPEC.design
SVM = dict(
    percentile=DESIGN["selection"]["percentile"],
    n_features_grid=Q["n_features_grid"],
    C_grid=Q["C_grid"],
    gamma_grid=Q["gamma_grid"],
    inner_cv=Q["inner_cv"],
)
CV = dict(n_splits=Q["outer_splits"], n_repeats=Q["outer_repeats"], n_jobs=1)


def _auc_se(y, p) -> tuple[float, float]:
    auc, var = delong_variance(np.asarray(y).astype(int), np.asarray(p, dtype=float))
    return float(auc), float(np.sqrt(var))


def _cv_entry(ev: ds.ModelEvaluation) -> dict:
    """The CV headline (mean of the repeats' AUCs) with the mean DeLong SE of one repeat."""
    ses = [_auc_se(ev.y_train, ev.oof_per_repeat[r])[1] for r in ev.oof_per_repeat.columns]
    y = ev.y_train
    return {
        "cohort": "training (CV)",
        "auc": ev.cv_auc_summary()["mean"],
        "se": float(np.mean(ses)),
        "n_positive": int(y.sum()),
        "n_negative": int((y == 0).sum()),
    }


def _external_entry(y, p, cohort: str) -> dict:
    auc, se = _auc_se(y, p)
    return {"cohort": cohort, "auc": auc, "se": se, "n_positive": int(np.sum(y)), "n_negative": int(np.sum(1 - y))}


def prepare() -> dict:
    """Everything that does not depend on the labels: the WORC features, the twin and its features."""
    from replicate.data.loaders import load_cohort
    from replicate.data.synthetic import make_cohort
    from replicate.features.radiomics import load_params

    lipo = load_cohort("worc_lipo")
    tmp = tempfile.mkdtemp(prefix="null_wdlps_")  # start() wants an output folder; nothing is written
    ctx0 = start(CHAPTER, data="public", seed=0, profile="quick", output_dir=tmp)
    twin = make_cohort(CHAPTER, seed=0, effect_size=1.0, n_patients=Q["n_patients"])
    tab = twin.table
    train_ids = list(tab.index[tab["split"] == "training"])
    val_ids = list(tab.index[tab["split"] == "validation"])
    rng = np.random.default_rng(ctx0.child_seed("resegmented"))
    n_reseg = int(round(DESIGN["segmentation"]["resegmented_fraction"] * len(train_ids)))
    reseg = sorted(rng.choice(train_ids, size=n_reseg, replace=False).tolist())
    params = load_params(DESIGN["handcrafted"]["params"])
    params["imageType"] = {k: v for k, v in params["imageType"].items() if k in Q["hcr_image_types"]}
    params["featureClass"] = {k: v for k, v in params["featureClass"].items() if k in Q["hcr_feature_classes"]}
    backbone = DESIGN["deep"]["backbones"]["ResNet50"]
    mods = list(DESIGN["modalities"])
    fs = ds.extract_feature_sets(
        twin,
        mods,
        radiomics_params=params,
        resegment_ids=reseg,
        backbones=[backbone],
        layers={backbone: [DESIGN["deep"]["layer"]]},
        size=Q["deep_size"],
        slices=DESIGN["deep"]["slices"],
        seed=0,
        n_jobs=1,
    )
    sets = DESIGN["modality_sets"]
    deep = {
        f"ResNet50-{s}": ds.combine_modalities(
            {m: fs.deep[(backbone, DESIGN["deep"]["layer"], m)] for m in mods}, sets[s]
        )[0]
        for s in sets
    }
    hcr, _ = ds.combine_modalities(fs.hcr, sets["Multimodality"])
    hcr_pert, _ = ds.combine_modalities(fs.hcr_resegmented, sets["Multimodality"])
    return {
        "X_real": lipo.meta["features"].astype(float),
        "y_real": lipo.table["label"].astype(int),
        "tab": tab,
        "train": train_ids,
        "val": val_ids,
        "deep": deep,
        "hcr": hcr,
        "hcr_pert": hcr_pert,
        "icc_min_rows": max(3, min(5, n_reseg // 2)),
        "weights": sorted(set(fs.info["weights"].values())),
        "tmp": tmp,
    }


def one_seed(seed: int, prep: dict) -> dict[str, dict]:
    """The headline models' AUCs for one permutation of the diagnoses (the chapter's seed ``seed``)."""
    from sklearn.model_selection import train_test_split

    from replicate.clinical import ClinicalLogit

    ctx = start(CHAPTER, data="public", seed=seed, profile="quick", null_labels=True, output_dir=prep["tmp"])
    out: dict[str, dict] = {}
    # real patients: WORC Lipo, T1 features
    y = ctx.labels(prep["y_real"])
    X = prep["X_real"]
    tr, va = train_test_split(
        list(y.index), test_size=SPEC.proxy["split"]["test_size"], stratify=y, random_state=ctx.child_seed("real split")
    )
    tr, va = sorted(tr), sorted(va)
    ev = ds.evaluate_model(
        "real",
        ds.signature_pipeline(seed=ctx.child_seed("real"), **SVM),
        X.loc[tr],
        y.loc[tr],
        X.loc[va],
        y.loc[va],
        seed=ctx.child_seed("real cv"),
        **CV,
    )
    out["Real T1 radiomics · CV"] = _cv_entry(ev)
    out["Real T1 radiomics · hold-out"] = _external_entry(ev.y_validation, ev.p_validation, "validation (hold-out)")
    # the twin: permuted over both centres, as the chapter does
    tab, tr, va = prep["tab"], prep["train"], prep["val"]
    yt = ctx.labels(tab["wdlps"].astype(int))
    ext = {}
    for name, Xd in prep["deep"].items():
        make = ds.signature_pipeline(seed=ctx.child_seed("model", name), **SVM)
        if name == "ResNet50-Multimodality":
            ev = ds.evaluate_model(
                name, make, Xd.loc[tr], yt.loc[tr], Xd.loc[va], yt.loc[va], seed=ctx.child_seed("cv", name), **CV
            )
            out["Twin RN-DL · CV"] = _cv_entry(ev)
            p = ev.p_validation
        else:  # only its external AUC is needed (for the paper's choice of signature)
            p = pd.Series(make.fit(Xd.loc[tr], yt.loc[tr]).predict_proba(Xd.loc[va])[:, 1], index=va)
        ext[name] = _external_entry(yt.loc[va].to_numpy(), p.loc[va].to_numpy(), "validation (external)")
    out["Twin RN-DL · external"] = ext["ResNet50-Multimodality"]
    sig = max(ext, key=lambda k: ext[k]["auc"])  # the first maximum, in the chapter's order
    out["Twin DL signature, paper's choice · external"] = ext[sig]
    name = "Radiomics-Multimodality"
    make = ds.signature_pipeline(
        perturbed=prep["hcr_pert"],
        icc_threshold=DESIGN["segmentation"]["icc_threshold"],
        icc_kind=DESIGN["segmentation"]["icc_kind"],
        icc_min_rows=prep["icc_min_rows"],
        seed=ctx.child_seed("model", name),
        **SVM,
    )
    Xh = prep["hcr"]
    ev = ds.evaluate_model(
        name, make, Xh.loc[tr], yt.loc[tr], Xh.loc[va], yt.loc[va], seed=ctx.child_seed("cv", name), **CV
    )
    out["Twin Radiomics-Multimodality · CV"] = _cv_entry(ev)
    out["Twin Radiomics-Multimodality · external"] = _external_entry(
        ev.y_validation.to_numpy(), ev.p_validation.to_numpy(), "validation (external)"
    )
    clin = list(DESIGN["clinical"]["candidates"])
    kw = dict(p_enter=DESIGN["clinical"]["p_enter"], p_keep=DESIGN["clinical"]["p_keep"])
    C = tab[clin]
    ev = ds.evaluate_model(
        "Clinical",
        ClinicalLogit(candidates=clin, **kw),
        C.loc[tr],
        yt.loc[tr],
        C.loc[va],
        yt.loc[va],
        seed=ctx.child_seed("cv", "Clinical"),
        **CV,
    )
    out["Twin Clinical · CV"] = _cv_entry(ev)
    out["Twin Clinical · external"] = _external_entry(
        ev.y_validation.to_numpy(), ev.p_validation.to_numpy(), "validation (external)"
    )
    Xs = prep["deep"][sig]
    nomo = ds.SignatureNomogram(
        signature=ds.signature_pipeline(seed=ctx.child_seed("model", sig), **SVM),
        signature_columns=list(Xs.columns),
        clinical=clin,
        inner_cv=Q["nomogram_inner_cv"],
        random_state=ctx.child_seed("nomogram", sig),
        **kw,
    )
    Xn = pd.concat([Xs, C], axis=1, join="inner")
    p = nomo.fit(Xn.loc[tr], yt.loc[tr]).predict_proba(Xn.loc[va])[:, 1]
    out["Twin Clinical-DL nomogram (paper's signature) · external"] = _external_entry(
        yt.loc[va].to_numpy(), p, "validation (external)"
    )
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100, help="number of permutations (seeds first .. first+seeds-1)")
    ap.add_argument("--first", type=int, default=1, help="first seed")
    ap.add_argument("--out", default=None, help="output JSON (default benchmarks/results/null_wdlps.json)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    prep = prepare()
    print(f"features ready in {time.perf_counter() - t0:.0f} s (CNN weights: {prep['weights']})", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dist = null.run_null(
            CHAPTER,
            lambda s: one_seed(s, prep),
            range(args.first, args.first + args.seeds),
            data="public (real-patient arm) + synthetic twin (quick cohort, seed 0)",
            profile="quick",
            generated_by="benchmarks/null_wdlps.py",
        )
    dist.notes += [
        f"date: {time.strftime('%Y-%m-%d')}; CNN weights: {', '.join(prep['weights'])}",
        "CV rows: the mean of the repeats' out-of-fold AUCs; their DeLong SE is one repeat's (the mean over repeats)",
        "the twin's models are refitted on each permutation; its features (cohort seed 0) are extracted once",
        "'DL signature, paper's choice' = the best external AUC of the five ResNet50 models (Table 2 footnote a)",
    ]
    path = null.save(dist, args.out)
    print(f"saved {path} ({dist.seconds:.0f} s for {len(dist.seeds)} seeds)")
    for k, v in dist.summary().items():
        print(
            f"{k:60s} mean {v['mean']:.3f}  SD {v['sd']:.3f}  DeLong {v['delong_sd']:.3f}  "
            f"tolerance {v['tolerance']:.3f}  range {v['min']:.2f}-{v['max']:.2f}"
        )
    off = null.check_centred(dist)
    print("off-centre:", {k: round(v["mean"], 3) for k, v in off.items()} or "none")


if __name__ == "__main__":
    main()
