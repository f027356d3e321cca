"""Build notebooks/sts.ipynb (Liang et al. 2022, lung metastasis in soft-tissue sarcoma, DLRN on MRI).

    .venv/bin/python notebooks/build/sts.py      # writes notebooks/sts.ipynb (no outputs)
"""
from __future__ import annotations

from pathlib import Path

from _nbbuild import code, md, write

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "sts.ipynb"


md(r"""
# Lung metastasis in soft-tissue sarcoma: a deep learning radiomics nomogram on MRI

**Paper.** Liang H-y, Yang S-f, *et al.* Deep Learning Radiomics Nomogram to Predict Lung Metastasis in
Soft-Tissue Sarcoma: A Multi-Center Study. *Front Oncol* 2022;12:897676. doi:10.3389/fonc.2022.897676

**Question.** Does a nomogram (DLRN) that combines an MRI radiomics signature — handcrafted (HCR) plus
deep-learning (DL) features — with the independent clinical predictor predict lung metastasis (LM)
better than the clinical model alone, and does it stratify progression-free survival (PFS)?

**The paper's design.** 242 patients with STS: a training set of 116 from one hospital (20 LM) and an
external validation set of 126 from two others (19 LM). T1WI and fat-suppressed T2WI; a 3-D ROI of the
primary tumour. 1,379 HCR features per ROI and ResNet34 (ImageNet) features from the last convolutional
layer (54 + 50 left after null features are eliminated). HCR features with ICC > 0.75, ComBat across
centres, z-score, mRMR (top 15) and LASSO (10-fold CV λ). Three signatures — HCR, DL and HD-Combined —
each with logistic regression, decision tree, random forest, SVM and AdaBoost, without and with SMOTE.
Clinical model: univariate logistic regression (P < 0.10) → multivariable (P < 0.05 kept): T-stage
only. DLRN = T-stage + the HD-Combined SVM-SMOTE signature, drawn as a nomogram. Evaluation: AUC,
accuracy, error rate, sensitivity, specificity, PPV, NPV (Table 3), DeLong tests, calibration curves,
decision curves, and Kaplan–Meier PFS by DLRN risk group.

**Here.** `data="public"`: the 51 patients of TCIA's Soft-tissue-Sarcoma collection (IBSI copy) with
T1 MRI and the GTV mask; there is no external cohort, so `protocol="paper"` reports out-of-fold
predictions of a repeated stratified cross-validation (the whole pipeline refitted in every fold) next to
the apparent (training) performance. `data="synthetic"`: a twin shaped like the paper (116 + 70 + 56
patients from three centres with scanner shifts, T1 + FS-T2, Table 1's clinical and semantic
variables). `protocol="worc"`: 100 random stratified 80/20 splits, mean AUC with the corrected
resampled t-test CI.
""")

code(r"""
data = "public"
seed = 0
profile = "full"
null_labels = False
protocol = "paper"
output_dir = None
n_patients = None
effect_size = 1.0
n_jobs = 2
""", tags=["parameters"])

code(r"""
import warnings

import numpy as np
import pandas as pd
from IPython.display import display

import replicate.chapter
from replicate import dlrn, plots
from replicate.clinical import univariate_multivariate
from replicate.data import load_cohort
from replicate.data.synthetic import make_cohort
from replicate.stats import decision_curve, delong_test, hosmer_lemeshow, logrank, youden_threshold

warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=RuntimeWarning)
warnings.filterwarnings("ignore", category=FutureWarning)
pd.set_option("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 80, "display.max_rows", 400)

ctx = replicate.chapter.start("sts", data=data, seed=seed, profile=profile, null_labels=null_labels,
                              protocol=protocol, output_dir=output_dir, n_patients=n_patients,
                              effect_size=effect_size, n_jobs=n_jobs)
spec, counts, results = ctx.spec, ctx.counts, ctx.results
design = spec.design
cfg = dlrn.DLRNConfig.from_spec(spec, counts)
print(f"data={data}  profile={profile}  protocol={protocol}  null_labels={null_labels}  seed={seed}")
print("profile counts:", counts)
""")

md(r"""
## The cohort and the proxy gap

The public proxy is much smaller than the paper's cohort, has a higher LM rate, a single centre, T1
only, and its clinical table has tumour grade (which the paper does not use) but no N-stage and no
semantic MRI reads. T-stage is derived here from the T1 mask the way the paper staged its patients on
MRI (AJCC 8th: greatest dimension ≤ 5 / 10 / 15 cm). The three patients without a grade keep it missing
in the table; the clinical model imputes the training-fold median grade (never using held-out
patients). PFS: the event is any recurrence or metastasis in TCIA's outcome column (no patient died
without one); the time runs from diagnosis to that event, else to the last follow-up — the paper's
clock starts at surgery.
""")

code(r"""
if data == "public":
    cohort = load_cohort("ibsi_sts")
    modalities = ["T1"]
else:
    cohort = make_cohort("sts", seed=seed, effect_size=effect_size, n_patients=n_patients)
    modalities = ["T1", "T2FS"]
table = cohort.table
mod_names = {"T1": "T1WI", "T2FS": "FS-T2WI"}
n, n_pos = len(table), int(cohort.y.sum())
centres = table["centre"].value_counts().sort_index().to_dict() if "centre" in table else {"TCIA (one collection)": n}
gap = dlrn.gap_table({
    "patients": ("242 (116 training + 126 external)", f"{n}" + (
        f" ({(table['split'] == 'training').sum()} training + {(table['split'] == 'validation').sum()} external)"
        if "split" in table else "")),
    "lung metastasis": ("39 / 242 (16%): 20/116 training, 19/126 external", f"{n_pos} / {n} ({n_pos / n:.0%})"),
    "centres": ("3 (training: 1; external: 2)", ", ".join(f"{k}: {v}" for k, v in centres.items())),
    "MRI": ("T1WI + FS-T2WI", " + ".join(mod_names[m] for m in modalities)),
    "clinical candidates": ("age, gender, T-stage, N-stage + 7 semantic MRI features",
                            ", ".join(design["clinical"]["columns"][data])),
    "validation": ("external (Institutions 2 + 3)",
                   "external split of the twin" if data == "synthetic" and protocol == "paper" else
                   f"{counts['cv_repeats']}×{counts['cv_folds']}-fold stratified CV (out-of-fold)"
                   if protocol == "paper" else f"{counts['worc_splits']} random stratified 80/20 splits"),
    "deep features": ("ResNet34 pre-trained on ImageNet", "ResNet34, see the weights status below"),
})
display(gap)
if cohort.failures is not None and len(cohort.failures):
    print("patients that could not be used:"); display(cohort.failures)
""")

md(r"""
## Features

PyRadiomics with `params/sts.yaml`: 14 shape features + 15 image types (original, 8 wavelet
decompositions, LoG σ = 1/3/5 mm, square, square root, logarithm) × 91 first-order and texture
features = **1,379 per ROI**, the paper's count (its Supplementary A4, which lists the actual filters, is
not available to us; the `quick` profile keeps the original image only). Each patient's mask is also
perturbed (smooth random contour jitter of about one voxel) and re-extracted: the stand-in for the
paper's second segmentation, from which the ICC filter keeps features with ICC(2,1) > 0.75 (computed on
the training patients of each fold). Deep features: ResNet34's last convolutional block, global-average
pooled (512 per crop), on a square crop around the tumour with a 20% peritumoral margin on the axial
slice of largest tumour area.
""")

code(r"""
deep_cfg = design["features"]["deep"]
perturb_ids = dlrn.reproducibility_subset(table, counts.get("icc_subset"), seed=seed,
                                          by="centre" if "centre" in table else None)
imf = dlrn.extract_image_features(
    cohort, modalities, params=design["features"]["hcr"]["params"], image_types=counts["radiomics_image_types"],
    deep=dict(backbone=deep_cfg["backbone"], layer=deep_cfg["layer"], size=counts["deep_input_size"],
              crop_margin=deep_cfg["crop_margin"], slices=deep_cfg["slices"]),
    perturb_ids=perturb_ids, seed=seed, n_jobs=n_jobs)
for pid, stage, reason in imf.failures.itertuples(index=False):
    cohort.add_failure(pid, stage, reason)
ids = list(imf.features.index)
deep_weights = imf.info["weights"]
print(pd.DataFrame({"HCR features": imf.info["n_hcr"], "DL features": imf.info["n_deep"],
                    "DL features constant (null) on all patients": imf.info["deep_null"]}).T.to_string())
print(f"patients with features: {len(ids)} of {n}; re-segmented (perturbed) for the ICC: "
      f"{imf.info['n_perturbed_patients']}; extraction seconds: {imf.info['seconds']}")
if imf.info["perturb_failures"]:
    print("no re-extraction (these patients keep their features but are left out of the ICC):")
    display(pd.DataFrame(imf.info["perturb_failures"]))
print(f"\nDEEP FEATURE WEIGHTS: {deep_weights}")
if deep_weights != "imagenet":
    print("ImageNet weights are not available on this machine: the DL features below come from a randomly "
          "initialised (seeded) ResNet34. They are NOT the pre-trained features of the paper, and every DL / "
          "HD-Combined / DLRN number in this chapter must be read that way.")
""")

code(r"""
clin_map = design["clinical"]["columns"][data]
if data == "public":
    table["gender"] = (table["sex"].str.lower() == "male").astype(float)
    table["grade_code"] = table["grade"].map({"Low": 1.0, "Intermediate": 2.0, "High": 3.0})
    diam = imf.features["T1_hcr_original_shape_Maximum3DDiameter"]
    table["t_stage"] = dlrn.ajcc_t_stage(diam).reindex(table.index)
clinical = pd.DataFrame({name: pd.to_numeric(table.loc[ids, col], errors="coerce") for name, col in clin_map.items()})
print("clinical candidates (missing values):", clinical.isna().sum().to_dict())
display(clinical.describe().T.round(2))

y_true = table.loc[ids, cohort.label].astype(int)
y = ctx.labels(y_true)
features = imf.features
if data == "synthetic" and protocol == "paper":
    # the paper's ComBat across its three centres; its training set is one centre, so (as in the paper)
    # ComBat is fitted on all patients' features, without labels
    features = dlrn.combat_all(features, table["centre"])
X = pd.concat([features, clinical], axis=1)
sig_cols = {s: imf.columns(src) for s, src in cfg.signatures.items()}
batch = table["centre"] if (data == "synthetic" and protocol == "worc") else None


def make_model(heads="all"):
    return lambda: dlrn.DLRNModel(cfg, sig_cols, list(clinical.columns), perturbed=imf.perturbed, batch=batch,
                                  heads=heads, seed=seed)


print(f"outcome: {int(y.sum())} / {len(y)} positive" + ("  (labels PERMUTED: null_labels=True)" if null_labels else ""))
print("signatures:", {s: len(c) for s, c in sig_cols.items()}, " classifiers:", cfg.classifiers,
      " SMOTE:", cfg.smote, " chosen:", cfg.chosen_model)
""")

md(r"""
## Models

Inside the training rows of every fit (`replicate.dlrn.DLRNModel`): per signature DropConstant (null
features) → ICC > 0.75 on the HCR columns → ComBat (twin, random splits) → z-score → mRMR top 15 →
LASSO (logistic, CV-chosen penalty); then five classifiers without and with SMOTE; the clinical model
(univariate P < 0.10 → multivariable, P < 0.05 kept); and the DLRN, a logistic regression of the
independent clinical predictors and the HD-Combined SVM-SMOTE signature (the paper's choice, fixed in
advance instead of re-selected on our test data).
""")

code(r"""
scores, ys, fitted = {}, {}, None
if protocol == "paper" and data == "synthetic":
    tr = [i for i in ids if table.at[i, "split"] == "training"]
    te = [i for i in ids if table.at[i, "split"] == "validation"]
    fitted, scores["training"], scores["validation"] = dlrn.fit_external(make_model(), X, y, tr, te)
    ys = {"training": y.loc[tr], "validation": y.loc[te]}
    results.add_cohort("training", len(tr), int(y_true.loc[tr].sum()), source=cohort.source,
                       description="twin: Institution-1 (training centre)")
    results.add_cohort("validation", len(te), int(y_true.loc[te].sum()), source=cohort.source,
                       description="twin: Institutions 2 and 3 (external validation)")
elif protocol == "paper":
    cv = dlrn.repeated_cv(make_model(), X, y, n_splits=counts["cv_folds"], n_repeats=counts["cv_repeats"],
                          seed=ctx.child_seed(1), n_jobs=n_jobs)
    fitted = make_model()().fit(X, y)   # the apparent fit on every patient (the 'training' rows)
    scores = {"training": fitted.predict_scores(X), "validation": cv.oof_frame()}
    ys = {"training": y, "validation": y}
    results.add_cohort("training", len(ids), int(y_true.sum()), source=cohort.source,
                       description="all patients, apparent (resubstitution) performance of the model fitted on them")
    results.add_cohort("validation", len(ids), int(y_true.sum()), source=cohort.source,
                       description=f"out-of-fold predictions (mean over {counts['cv_repeats']} repeats) of "
                                   f"{counts['cv_repeats']}x{counts['cv_folds']}-fold stratified CV; the whole "
                                   "pipeline refitted in every fold (no external cohort exists)")
    print(f"CV: {cv.n_repeats}x{cv.n_splits} folds in {cv.seconds} s; mean AUC over repeats:")
    display(cv.auc_per_repeat[["HCR SVM-SMOTE", "DL SVM-SMOTE", "Radiomics", "Clinical", "DLRN"]]
            .agg(["mean", "std"]).T.round(3))
else:
    split_aucs = dlrn.random_split_aucs(make_model("chosen"), X, y, n_splits=counts["worc_splits"],
                                        test_size=counts["worc_test_size"], seed=ctx.child_seed(2), n_jobs=n_jobs)
    worc = dlrn.summarise_split_aucs(split_aucs)
    results.add_cohort("cv", len(ids), int(y_true.sum()), source=cohort.source,
                       description=f"{counts['worc_splits']} random stratified "
                                   f"{round((1 - counts['worc_test_size']) * 100)}/{round(counts['worc_test_size'] * 100)} splits")
    for m, r in worc.iterrows():
        if m == cfg.chosen_model:
            continue  # the same model as "Radiomics"
        results.add_metric(m, "cv", "AUC", r["mean_AUC"], (r["low"], r["high"]),
                           note=f"mean over {int(r['n_splits'])} random splits, corrected resampled t-test CI")
    display(worc.round(3))
    fig = plots.bar_auc_plot(worc.drop(index=cfg.chosen_model).reset_index().rename(columns={"mean_AUC": "auc"}),
                             f"Mean test AUC over {counts['worc_splits']} random splits (corrected 95% CI)")
    ctx.figure(fig, "worc_auc")
""")

md(r"""
## What the pipeline selected (apparent / training fit)
""")

code(r"""
if fitted is not None:
    display(fitted.feature_counts(modalities))
    info = fitted.info_
    lasso = info["signatures"][cfg.chosen[0]]["lasso_coef"]
    print(f"{cfg.chosen[0]} signature, LASSO non-zero features ({len(lasso)}):")
    print(pd.Series(lasso).round(3).to_string())
    print("\nclinical model: independent predictors =", info["clinical_selected"],
          ("(" + info["clinical_fallback"] + ")") if info["clinical_fallback"] else "")
    print("DLRN (logistic regression):", info["dlrn_coef"], " intercept", round(float(fitted.dlrn_.intercept_[0]), 3))
    # the counts the paper states
    fc = fitted.feature_counts(modalities).set_index(["signature", "modality", "source"])
    icc_col = [c for c in fc.columns if c.startswith("ICC")]
    for m in modalities:
        name = mod_names[m]
        if icc_col and ("HCR", m, "HCR") in fc.index:
            results.add_metric("HCR features", "training", "n_features", fc.loc[("HCR", m, "HCR"), icc_col[0]],
                               variable=f"{name} ICC > 0.75")
        if ("DL", m, "DL") in fc.index:
            results.add_metric("DL features", "training", "n_features", fc.loc[("DL", m, "DL"), "non-null"],
                               variable=f"{name} after null elimination")
        if ("HCR", m, "HCR") in fc.index:
            results.add_metric("HCR features", "training", "n_features", fc.loc[("HCR", m, "HCR"), "extracted"],
                               variable="extracted per ROI")
    hd = cfg.chosen[0]
    results.add_metric(hd, "training", "n_features", sum(1 for c in lasso if "_hcr_" in c), variable="LASSO non-zero HCR")
    results.add_metric(hd, "training", "n_features", sum(1 for c in lasso if "_dl_" in c), variable="LASSO non-zero DL")
    lam = fitted.selectors_[hd].named_steps["lasso"].alpha_
    results.add_metric(hd, "training", "lambda", lam,
                       note="glmnet-scale lambda = 1 / (C x n) of the CV-chosen logistic LASSO")
    print(f"LASSO lambda (glmnet scale) = {lam:.4f} (ln lambda = {np.log(lam):.2f})")
    coef = pd.Series(lasso).sort_values()
    import matplotlib.pyplot as plt
    figc, axc = plt.subplots(figsize=(6.5, 0.35 * len(coef) + 1.2))
    axc.barh(range(len(coef)), coef.to_numpy(), color=["#c0392b" if "_hcr_" in c else "#2471a3" for c in coef.index])
    axc.set_yticks(range(len(coef)), [c.replace("_last_conv", "") for c in coef.index], fontsize=7)
    axc.set_xlabel("LASSO coefficient (z-scored features)")
    axc.set_title(f"{hd} signature: non-zero LASSO features (red HCR, blue DL)")
    plt.close(figc)
    ctx.figure(figc, "lasso_coefficients")
""")

md(r"""
## Clinical predictors (Table 2)

Univariate logistic regression of every candidate and of the signature's LASSO score ("Radi-score"),
then the multivariable model of those with P < 0.10 — on the training rows (for the public cohort:
all 51 patients; the Radi-score is then the apparent score of the model fitted on them).
""")

code(r"""
if fitted is not None:
    train_ids = list(ys["training"].index)
    t2 = clinical.loc[train_ids].copy()
    t2 = t2.fillna(t2.median())
    t2.insert(0, "Radi-score", fitted.rad_score(X.loc[train_ids]).to_numpy())
    sel2 = univariate_multivariate(t2, ys["training"], list(t2.columns), p_enter=cfg.p_enter, p_keep=cfg.p_keep,
                                   decimals=3)
    display(sel2.table)
    num = sel2.numeric
    for term, r in num.iterrows():
        if np.isfinite(r.get("uni_or", np.nan)):
            results.add_metric("Univariate logistic", "training", "OR", r["uni_or"], (r["uni_low"], r["uni_high"]),
                               variable=str(r["variable"]), p_value=float(r["uni_p"]))
        if np.isfinite(r.get("multi_or", np.nan)):
            results.add_metric("Multivariate logistic", "training", "OR", r["multi_or"],
                               (r["multi_low"], r["multi_high"]), variable=str(r["variable"]), p_value=float(r["multi_p"]))
""")

md(r"""
## Performance (Table 3)

Cut-off: the paper does not state one, but its clinical model has sensitivity 0 and specificity 1 in
both sets — every patient called negative — which only a fixed probability cut-off of 0.5 gives, so the
metrics paired with Table 3 use 0.5. A cut-off chosen by Youden's index on the training scores is shown
below for comparison.
""")

code(r"""
main_models = ["DLRN", cfg.chosen_name, "Clinical"]
if protocol == "paper":
    rows = []
    for coh in ("training", "validation"):
        for m in main_models:
            rep = dlrn.evaluate(ys[coh], scores[coh][m], cfg.cutoff)
            dlrn.record_metrics(results, m, coh, rep)
            rows.append({"set": coh, "model": m, **{k: rep[k][0] for k in dlrn.TABLE_METRICS},
                         "AUC 95% CI": f"{rep['AUC'][1]:.3f}-{rep['AUC'][2]:.3f}"})
        for m in [c for c in scores[coh].columns if c not in main_models]:
            rep = dlrn.evaluate(ys[coh], scores[coh][m], cfg.cutoff)
            dlrn.record_metrics(results, m, coh, rep, metrics=("AUC", "ACC"))
        for other in (cfg.chosen_name, "Clinical"):
            d = delong_test(ys[coh], scores[coh]["DLRN"], scores[coh][other])
            rep_p = next((c.get("p_value") for c in spec.comparisons if c["model_a"] == "DLRN"
                          and c["model_b"] == other and c["cohort"] == coh), None)
            results.add_comparison("DLRN", other, coh, test="DeLong", auc_a=d.auc_a, auc_b=d.auc_b, diff=d.diff,
                                   se=d.se, z=d.z, p_value=d.p_value, reported_p_value=rep_p)
            rows[-len(main_models) + main_models.index(other)]["P (DeLong vs DLRN)"] = round(d.p_value, 3)
    t3 = pd.DataFrame(rows)
    display(t3.round(3))
    # Youden's cut-off on the training scores, applied to both sets (for comparison only)
    yrows = []
    for m in main_models:
        thr = youden_threshold(ys["training"], scores["training"][m])
        for coh in ("training", "validation"):
            rep = dlrn.evaluate(ys[coh], scores[coh][m], thr)
            yrows.append({"set": coh, "model": m, "cut-off": thr, **{k: rep[k][0] for k in dlrn.TABLE_METRICS[1:]}})
    youden = pd.DataFrame(yrows)
    results.extra["youden_training_cutoff"] = youden.round(4).to_dict(orient="records")
    print("Youden cut-off chosen on the training scores:")
    display(youden.round(3))
""")

code(r"""
if protocol == "paper":
    heads = [c for c in scores["validation"].columns if c not in main_models]
    print("All signatures x classifiers x SMOTE on the validation rows (the paper's Tables S4/S5):")
    display(dlrn.signature_table(ys["validation"], scores["validation"], heads, cfg.cutoff))
""")

md(r"""
## Figures
""")

code(r"""
if protocol == "paper":
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    for ax, coh in zip(axes, ("training", "validation")):
        plots.roc_plot({m: (ys[coh], scores[coh][m]) for m in main_models}, f"ROC, {coh}", ax=ax)
    plt.close(fig)
    ctx.figure(fig, "roc")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    hl = {}
    for ax, coh in zip(axes, ("training", "validation")):
        plots.calibration_plot({"DLRN": (ys[coh], scores[coh]["DLRN"])}, f"DLRN calibration, {coh}",
                               n_bins=5 if len(ys[coh]) < 100 else 10, n_boot=counts["n_boot"], seed=seed, ax=ax)
        for m in main_models:
            try:
                r = hosmer_lemeshow(ys[coh], scores[coh][m], groups=10)
                hl[f"{m} / {coh}"] = {"chi2": round(float(r.chi2), 3), "df": int(r.df), "p": round(float(r.p_value), 4)}
            except (ValueError, AttributeError):
                pass
    plt.close(fig)
    ctx.figure(fig, "calibration")
    results.extra["hosmer_lemeshow"] = hl
    print("Hosmer-Lemeshow:", hl)
    dca = decision_curve(ys["validation"], {m: scores["validation"][m] for m in main_models},
                         thresholds=np.arange(0.01, 0.81, 0.01))
    fig = plots.decision_curve_plot(dca, "Decision curves, validation")
    ctx.figure(fig, "decision_curve")
""")

code(r"""
if fitted is not None:
    nom = fitted.nomogram_inputs()
    fig = plots.nomogram_plot(nom["coefficients"], nom["intercept"], nom["ranges"],
                              "DLRN nomogram (fitted on the training rows)", prob_label="Risk of lung metastasis")
    ctx.figure(fig, "nomogram")
""")

md(r"""
### Progression-free survival by DLRN risk group

High risk = DLRN probability ≥ the classification cut-off (0.5), fixed before looking at survival.
""")

code(r"""
if protocol == "paper" and {"pfs_time", "pfs_event"} <= set(table.columns):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    km = {}
    for ax, coh in zip(axes, ("training", "validation")):
        pid = list(ys[coh].index)
        t_m = table.loc[pid, "pfs_time"].astype(float) / 30.4375
        ev = table.loc[pid, "pfs_event"].astype(int)
        grp = np.where(scores[coh]["DLRN"].to_numpy() >= cfg.cutoff, "high risk", "low risk")
        km[coh] = {"n_high": int((grp == "high risk").sum()), "n_low": int((grp == "low risk").sum())}
        if len(set(grp)) > 1:
            p = logrank(t_m, ev, grp)
            km[coh]["logrank_p"] = p
            results.add_comparison("DLRN high risk", "DLRN low risk", coh, test="log-rank (PFS)", p_value=p,
                                   reported_p_value="<0.01")
        from lifelines import KaplanMeierFitter
        for g in ("high risk", "low risk"):
            if (grp == g).any():
                med = KaplanMeierFitter().fit(t_m[grp == g], ev[grp == g]).median_survival_time_
                km[coh][f"median_{g}"] = None if not np.isfinite(med) else float(med)
                results.add_metric(f"DLRN {g}", coh, "median_PFS_months", med if np.isfinite(med) else None,
                                   note="months; None = not reached")
        plots.km_plot(t_m, ev, grp, f"PFS by DLRN risk group, {coh}", xlabel="Months", ax=ax, at_risk=False)
    plt.close(fig)
    ctx.figure(fig, "kaplan_meier")
    print(km)
    results.extra["kaplan_meier"] = km
""")

md(r"""
## Reported vs reproduced

Every number the paper states, paired with ours (`reported` comes from the spec, never from this run).
On the public cohort, the paper's *external validation* numbers are paired with our out-of-fold CV
numbers; on the twin nothing is compared (its effect size is ours).
""")

code(r"""
tab = results.table()
display(tab[tab["reported"] != "—"].reset_index(drop=True))
print("verdicts:", results.verdict_counts())
""")

md(r"""
## Deviations from the paper
""")

code(r"""
dev = results.add_deviation
if data == "public":
    dev("Cohort: the 51 TCIA/IBSI soft-tissue sarcoma patients (19 LM, 37%) replace the paper's 242 (39 LM, 16%) "
        "from three centres.")
    dev("No external validation cohort: protocol='paper' reports out-of-fold predictions of "
        f"{counts['cv_repeats']}x{counts['cv_folds']}-fold repeated stratified CV (mean over repeats; the whole "
        "pipeline refitted in every fold) as 'validation', and the apparent performance of the model fitted on "
        "all 51 patients as 'training'.")
    dev("FS-T2WI is not available in the proxy: T1 only; the HCR, DL and HD-Combined signatures use T1 features only.")
    dev("Clinical candidates: age, gender, grade (not in the paper; 3 missing, imputed with the training-fold "
        "median inside the model) and T-stage derived from the T1 mask's maximum 3-D diameter (AJCC 8th size "
        "cut-offs); N-stage and the semantic MRI features are not available.")
    dev("One centre: no ComBat.")
    dev("PFS runs from diagnosis (biopsy) to any recurrence or metastasis, else last follow-up (TCIA's table); "
        "the paper's runs from surgery.")
else:
    dev("Synthetic twin: its images, effect sizes and clinical associations are ours (Table 1's class-conditional "
        "frequencies of the training set); nothing on the twin is compared with the paper's numbers.")
    dev("The paper does not split its external set between Institutions 2 and 3; the twin uses 70 + 56 patients.")
    if protocol == "paper":
        dev("ComBat (neuroCombat, no covariates) fitted on all patients' image features without labels, as the "
            "paper applied it across its three centres; the training set is a single centre, so an in-fold "
            "ComBat could not harmonise the external centres.")
dev("Second segmentation: a perturbed mask (smooth random contour jitter of about one voxel, "
    "replicate.features.perturb) stands in for the paper's re-segmentation; ICC(2,1) > 0.75 on the training "
    "patients of every fit" + (f" that belong to a label-free reproducibility subset of {counts.get('icc_subset')} patients"
                               if counts.get("icc_subset") else "") + ".")
dev("PyRadiomics settings: 1,379 features per ROI as in the paper (14 shape + 15 image types x 91), but the "
    "image types (original, wavelet, LoG 1/3/5 mm, square, square root, logarithm), z-normalised intensities "
    "and bin width 5 are our choice (the paper's Supplementary A4 is not available)"
    + ("; profile 'quick' keeps the original image only (105 features)." if counts["radiomics_image_types"] != "all" else "."))
if deep_weights != "imagenet":
    dev("Deep features from an UNTRAINED (randomly initialised, seeded) ResNet34: ImageNet weights are not "
        "available on this machine. These are not the paper's pre-trained features.")
dev("Deep features: 2-D crop (20% peritumoral margin) of the axial slice with the largest tumour area, "
    f"{counts['deep_input_size']}x{counts['deep_input_size']} input, global-average-pooled last convolutional "
    "block (512); null features are eliminated inside each training fold (DropConstant). The paper does not say "
    "how it fed the 3-D ROI to the 2-D network.")
dev("The DLRN uses the paper's choice of signature (HD-Combined, SVM, SMOTE) fixed in advance; the paper chose it "
    "by its accuracy on the external validation set.")
dev("The DLRN is a logistic regression (mild L2 penalty, C = 1) of the independent clinical predictors and the "
    "logit of the chosen signature's probability on the training rows.")
dev("Cut-off 0.5 on predicted probabilities for ACC/ER/SEN/SPE/PPV/NPV (implied by Table 3's clinical model); "
    "the paper does not state it. Youden-on-training metrics are shown alongside.")
dev(f"mRMR (mrmr-selection, F-test relevance / correlation redundancy) and LASSO (scikit-learn logistic L1, "
    f"{cfg.lasso_cv}-fold CV on log-loss) replace the paper's R packages (Table S2, not available)"
    + (f"; profile 'quick' pre-selects the {cfg.mrmr_pool} most relevant features before mRMR." if cfg.mrmr_pool else "."))
if protocol == "worc":
    dev("protocol='worc': only the chosen classifier (SVM-SMOTE) is fitted on each signature, plus the clinical "
        "model and the DLRN.")
if null_labels:
    dev("null_labels=True: the outcome was randomly permuted before anything was learned (leakage probe).")
for i, d in enumerate(results.deviations, 1):
    print(f"{i}. {d}")
""")

md(r"""
## Provenance
""")

code(r"""
files_sha = cohort.meta.get("files_sha256")
if isinstance(files_sha, dict):   # per-file hashes (public data): one digest of them all
    from replicate.io import stable_hash
    results.extra["data_files"] = len(files_sha)
    files_sha = stable_hash(files_sha)
path = ctx.finish(data_files_sha256=files_sha, deep_weights=deep_weights,
                  radiomics_settings_hash=imf.info.get("radiomics_settings_hash"),
                  feature_seconds=imf.info["seconds"], n_features_per_roi=imf.info["n_hcr"])
prov = results.provenance
print({k: prov[k] for k in ("runtime_s", "deep_weights", "git_commit", "data_files_sha256") if k in prov})
print("packages:", prov.get("packages"))
print("written:", path)
""")

write(OUT)
