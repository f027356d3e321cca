"""Build notebooks/us.ipynb (ultrasound CRDL fusion: benign vs malignant soft-tissue tumours).

    .venv/bin/python notebooks/build/us.py      # writes notebooks/us.ipynb (no outputs)
"""
from __future__ import annotations

from pathlib import Path

from _nbbuild import code, md, write

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "us.ipynb"


md(r"""
# Benign vs malignant soft-tissue tumours on ultrasound: clinical + radiomics + deep-learning fusion (CRDL)

**Paper.** An ultrasound-based fusion model of clinical, radiomics and deep-learning features (CRDL) for
the diagnosis of benign and malignant soft-tissue tumours (STTs); two hospitals, 2021-2023
(`ultrasound_stt_benign_malignant_crdl_fusion.txt`).

**Question.** Does fusing clinical/semantic ultrasound features, PyRadiomics features and deep-learning
(ResNet-18) features - either at the feature level (*pre-fusion*) or at the decision level (*post-fusion*,
an SVM on the single models' probabilities) - diagnose malignant STTs better than a clinical model, on an
external hospital?

**Design (paper).** 516 training patients (Hospital-1) and 78 external-validation patients (Hospital-2);
one grey-scale and one colour-Doppler image each; intermediate lesions (n = 11) counted as malignant.
ROIs drawn in 3D-Slicer; 851 PyRadiomics features and 511 deep features (a pre-trained 3-D ResNet-18 with a
single-channel first layer, classifier removed, penultimate layer); z-score; ICC > 0.8 between two readers
(50 re-segmented patients); Student's t-test, then LASSO with 10-fold CV. Nine SVM (RBF) models, their
parameters chosen by 5-fold CV on the training cohort: the clinical model (age, size, blood-flow signal,
morphology, internal echo), radiomics-only, DL-only, three pre-fusion models (Clinic + Rad, Clinic + DL,
CRDL) and three post-fusion models. AUC (95 % CI), ACC, SEN, SPE, PPV, NPV at a weighted-Youden operating
point; DeLong tests (Table 3); calibration and decision curves; two radiologists with and without the
model (McNemar).
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
import time
import warnings
import zlib

import numpy as np
import pandas as pd

import replicate.chapter
from replicate import plots, stats
from replicate.fusion import (CRDL_MODELS, TuneThenRefit, crdl_models, fit_fusion_models, prefix_block,
                              ultrasound_semantics)
from replicate.models import make_classifier

warnings.filterwarnings("ignore", category=FutureWarning)   # scikit-learn 1.9: SVC(probability=True) deprecation
ctx = replicate.chapter.start("us", data=data, seed=seed, profile=profile, null_labels=null_labels,
                              protocol=protocol, output_dir=output_dir, n_patients=n_patients,
                              effect_size=effect_size, n_jobs=n_jobs)
spec, counts, results = ctx.spec, ctx.counts, ctx.results
design = spec.design
NAME = dict(design["models"])                        # CRDL_MODELS key -> the spec's model name
KIND = {NAME[k]: CRDL_MODELS[k][0] for k in NAME}     # model name -> single / pre / post
timings = {}
print(f"data={data}  profile={profile}  protocol={protocol}  null_labels={null_labels}  seed={seed}")
print("profile counts:", counts)


def sseed(*keys):
    # a reproducible seed for a named step (crc32 of the names: stable across processes)
    return ctx.child_seed(*[zlib.crc32(str(k).encode()) for k in keys])
""")

md(r"""
## The proxy and the proxy gap

**Public proxy: BUS-BRA** (Gómez-Flores *et al.*, Med Phys 2024): 1,064 patients with one breast-ultrasound
image and a lesion mask each, biopsy-proven benign / malignant, four scanners. It is *not* soft tissue: it is
the closest public data set with the paper's structure (one 2-D grey-scale image + ROI per patient,
benign vs malignant, two sites). Training = the two GE Logiq scanners (978 patients), external validation =
Toshiba Aplio 300 + U-Systems (86 patients), the paper's two-hospital design. There is no age and no colour
Doppler: the clinical model uses what can be measured on the image and its mask as stand-ins for the
radiologists' semantic features (maximum diameter, shape irregularity, margin definition, internal-echo
heterogeneity). BI-RADS, a radiologist's reading, is never a model input: it is the radiologist comparison.

**Synthetic twin** (`data="synthetic"`): 516 / 78 patients with grey-scale and Doppler images, age, size,
blood-flow grade, morphology, boundary and internal echo (`replicate.data.synthetic`, spec `synthetic:`).
Its effect sizes are ours, so its numbers are never compared with the paper's.
""")

code(r"""
from replicate.data.loaders import load_cohort

t0 = time.perf_counter()
if data == "public":
    cohort = load_cohort("busbra")
    label = "malignant"
else:
    from replicate.data.synthetic import make_cohort

    n_twin = n_patients if n_patients is not None else counts.get("synthetic_n_patients")
    cohort = make_cohort("us", seed=seed, effect_size=effect_size, n_patients=n_twin)
    label = cohort.label
timings["load_cohort_s"] = round(time.perf_counter() - t0, 1)
table = cohort.table
print(cohort.source)
print(table.groupby(["split", label]).size().unstack().rename(columns={0: "benign", 1: "malignant"}))

paper = spec.cohorts
px = spec.proxy
gap = pd.DataFrame({
    "paper": [f"{paper['training']['n']} (Hospital-1)", f"{paper['validation']['n']} (Hospital-2)",
              "soft-tissue tumours (superficial)", "grey-scale + colour Doppler", "age, gender, 5 semantic readings",
              "2 radiologists (Table 4)"],
    "this run": [f"{(table.split == 'training').sum()} ({int(table.loc[table.split == 'training', label].sum())} malignant)",
                 f"{(table.split == 'validation').sum()} ({int(table.loc[table.split == 'validation', label].sum())} malignant)",
                 px["tissue"] if data == "public" else "synthetic hypoechoic lesions",
                 "grey-scale only" if data == "public" else "grey-scale + Doppler (Doppler not used by the models)",
                 "image/mask stand-ins (4 measurements)" if data == "public" else "age + 5 semantic readings",
                 "BI-RADS category (dataset)" if data == "public" else "none"],
}, index=["training cohort", "external validation", "lesions", "images", "clinical / semantic", "radiologists"])
if data == "public":
    for line in px["gap"]:
        results.add_deviation("Proxy gap: " + line)
gap
""")

md(r"""
## Features

Every extractor caches each case (keyed on the image and mask hashes and the settings), so a re-run only
reads the cache.

* **Clinical block.** Public: `replicate.fusion.ultrasound_semantics` measures on each image and mask the
  maximum (Feret) diameter, irregularity (1 - solidity), margin definition (grey-level contrast across the
  contour) and internal-echo heterogeneity (coefficient of variation inside the lesion). Synthetic: the
  twin's age, size, blood-flow grade, morphology and internal echo, the paper's five clinical-model
  variables.
* **Radiomics.** PyRadiomics on the 2-D ROI with `params/us.yaml`: the composition that gives the paper's
  851 features on a 3-D ROI (Original + 8 wavelets) gives 474 on a 2-D image (9 shape2D + 93, and 4 wavelet
  decompositions x 93).
* **Deep features.** ResNet-18 (torchvision) with a single-channel first convolution, final classifier
  removed, the 512 penultimate (global-average-pooled) features of the square tumour crop. The paper used a
  pre-trained 3-D ResNet-18 on its images; our images are single 2-D frames, so a 2-D network is the
  faithful counterpart. **ImageNet weights are not available on this machine (nothing is downloaded): the
  network is untrained (randomly initialised with the chapter seed), so these are random convolutional
  features, not pre-trained ones; the run's provenance labels them "untrained".**
* **Robustness.** The paper re-segmented 50 training patients and kept features with ICC > 0.8. We
  perturb the masks of 50 random training patients (smooth contour jitter, a stand-in for the second
  reader) and re-extract; the ICC filter is a step of every image-feature model, fitted on the training
  patients among those 50.
""")

code(r"""
from replicate.features.deep import extract_deep
from replicate.features.perturb import perturbed_cases
from replicate.features.radiomics import extract_radiomics, load_params

cases = cohort.cases("US")
failures = [] if cohort.failures.empty else [(r.patient_id, r.stage, r.reason) for r in cohort.failures.itertuples()]

# clinical block
t0 = time.perf_counter()
if data == "public":
    clin, fails = ultrasound_semantics(cases, n_jobs=n_jobs)
    failures += [(r.case_id, "clinical stand-ins", r.reason) for r in fails.itertuples()]
    clin = clin[list(px["clinical_model"])]
else:
    cols = design["clinical"]["twin_columns"]
    clin = table[list(cols.values())].astype(float).rename(columns={v: k for k, v in cols.items()})
timings["clinical_s"] = round(time.perf_counter() - t0, 1)

# radiomics
params = load_params("us")
if counts["radiomics_image_types"] != "all":
    params["imageType"] = {k: (params["imageType"].get(k) or {}) for k in counts["radiomics_image_types"]}
t0 = time.perf_counter()
rad = extract_radiomics(cases, params, n_jobs=n_jobs, progress=False)
timings["radiomics_s"] = round(time.perf_counter() - t0, 1)
timings["radiomics_cached"] = f"{rad.info.get('n_cached', 0)}/{len(cases)}"
failures += [(r.case_id, "radiomics", r.reason) for r in rad.failures.itertuples()]

# deep features
dcfg = design["features"]["deep"]
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)   # the untrained-weights warning: stated below and in provenance
    dl = extract_deep(cases, dcfg["backbone"], layer=dcfg["layer"], in_channels=dcfg["in_channels"],
                      size=counts["deep_input_size"], seed=seed, progress=False)
timings["deep_s"] = round(time.perf_counter() - t0, 1)
timings["deep_cached"] = f"{dl.info.get('n_cached', 0)}/{len(cases)}"
failures += [(r.case_id, "deep", r.reason) for r in dl.failures.itertuples()]
DEEP_WEIGHTS = dl.info["weights"]

failures = pd.DataFrame(failures, columns=["patient_id", "stage", "reason"])
bad = set(failures["patient_id"])
ok = [i for i in table.index if i not in bad and i in clin.index and i in rad.features.index and i in dl.features.index]
X = pd.concat([prefix_block(clin.loc[ok], "clin"), prefix_block(rad.features.loc[ok], "rad"),
               prefix_block(dl.features.loc[ok], "dl")], axis=1)
print(f"clinical block: {clin.shape[1]} ({', '.join(clin.columns)});  radiomics: {rad.n_features};  "
      f"deep ({dcfg['backbone']}, {dl.info['layer']}): {dl.n_features};  weights: {DEEP_WEIGHTS}")
print(f"patients with all features: {len(ok)} / {len(table)}")
print("timings (s):", timings)
if len(failures):
    print("patients left out (listed, not dropped silently):")
    display(failures)
    results.extra["failures"] = failures.to_dict(orient="records")
    for r in failures.itertuples():
        results.add_deviation(f"Patient {r.patient_id} left out ({r.stage}): {r.reason}")
""")

code(r"""
# robustness: perturbed masks of the ICC patients (training cohort only), re-extracted
rob = design["robustness"]
train_ok = [i for i in ok if table.at[i, "split"] == "training"]
rng = np.random.default_rng(sseed("icc patients"))
icc_ids = sorted(rng.choice(train_ok, size=min(counts["icc_patients"], len(train_ok)), replace=False))
pert = perturbed_cases([c for c in cases if c.case_id in set(icc_ids)], kinds=(rob["perturbation"],),
                       seed=sseed("perturb"))
pcases = pert[rob["perturbation"]]
t0 = time.perf_counter()
rad_p = extract_radiomics(pcases, params, n_jobs=n_jobs, progress=False)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    dl_p = extract_deep(pcases, dcfg["backbone"], layer=dcfg["layer"], in_channels=dcfg["in_channels"],
                        size=counts["deep_input_size"], seed=seed, progress=False)
timings["perturbed_s"] = round(time.perf_counter() - t0, 1)
icc_tables = {"rad": [prefix_block(rad_p.features, "rad")], "dl": [prefix_block(dl_p.features, "dl")]}

# the pipeline counts the paper states (never compared: comparable_on is empty in the spec)
results.add_metric("Radiomics features", "training", "n_features", rad.n_features, variable="extracted per ROI")
results.add_metric("DL features", "training", "n_features", dl.n_features, variable="extracted per ROI")
results.add_metric("Clinical", "training", "n_features", clin.shape[1], variable="clinical predictors")
results.add_metric("Segmentation", "training", "n_patients", len(rad_p.features), variable="re-segmented for ICC",
                   note="perturbed masks, not a second reader")

# for the page only (label-free): how many features pass ICC > threshold on all ICC patients
from replicate.features.icc import icc as icc_values

for name, ref, per in (("radiomics", rad.features, rad_p.features), ("deep", dl.features, dl_p.features)):
    ids = [i for i in per.index if i in ref.index]
    v = pd.Series(icc_values(ref.loc[ids], [per.loc[ids]], kind=rob["icc_kind"]))
    print(f"{name}: {int((v > rob['icc_threshold']).sum())} / {len(v)} features with {rob['icc_kind']} > "
          f"{rob['icc_threshold']} on {len(ids)} re-segmented patients (perturbation: {rob['perturbation']})")
""")

md(r"""
## The models as run

`replicate.fusion.crdl_models` builds the nine models; every learned step sits inside the model, so it is
fitted on training rows only (and inside every cross-validation fold):

* **Clinical model**: z-score -> SVM on the clinical block.
* **Radiomics-only, DL-only, pre-fusion** (feature-level concatenation of the blocks,
  `replicate.fusion.BlockFusion`): drop constant features -> ICC filter on each image block -> z-score ->
  Student's t-test (p < 0.05) -> LASSO (L1 logistic regression, penalty by 10-fold CV) -> SVM.
* **Post-fusion** (`replicate.fusion.PostFusionClassifier`): an SVM on the single models' probabilities.
  The meta-SVM is trained on *out-of-fold* probabilities of the single models within the training cohort
  (5 folds), never on their in-sample probabilities; at prediction time the single models refitted on the
  whole training cohort feed it.
* **SVM**: RBF kernel, `C` and `gamma` chosen by 5-fold CV on the training data (ROC AUC), then refitted with
  Platt-scaled probabilities (`replicate.fusion.TuneThenRefit`).
""")

code(r"""
clf_cfg = design["classifier"]
if counts["svm_tune"]:
    grid = {f"clf__{k}": list(v) for k, v in counts["svm_grid"].items()}
    svm = TuneThenRefit(make_classifier("svm", tune=True, cv=counts["svm_cv_folds"], seed=seed, grid=grid,
                                        probability=False), {"clf__probability": True})
else:
    svm = make_classifier("svm", seed=seed, **clf_cfg["untuned"])
single, pre, post, meta = crdl_models(
    svm, icc_tables=icc_tables, icc_threshold=rob["icc_threshold"], icc_kind=rob["icc_kind"],
    ttest_alpha=design["selection"]["ttest_alpha"], lasso_cv=counts["lasso_cv_folds"], lasso_Cs=counts["lasso_Cs"],
    seed=seed, names=NAME)
FIT = dict(single=single, pre=pre, post=post, final_estimator=meta, cv=counts["post_fusion_cv_folds"],
           random_state=seed)
MODEL_NAMES = list(single) + list(pre) + list(post)
y_all = table.loc[ok, label].astype(int)
if null_labels:
    # the leakage probe: labels permuted before anything is learned (seeded by name with crc32, so every
    # process permutes alike; ctx.labels seeds with Python's per-process salted str hash)
    from replicate.validation import permute_labels

    y_all = permute_labels(y_all, seed=sseed("null labels"))
tr = [i for i in ok if table.at[i, "split"] == "training"]
va = [i for i in ok if table.at[i, "split"] == "validation"]
print("single:", list(single), "\npre-fusion:", list(pre), "\npost-fusion:", {k: v for k, v in post.items()})
print(f"training {len(tr)} ({int(y_all[tr].sum())} positive), validation {len(va)} ({int(y_all[va].sum())} positive)"
      + ("  [labels permuted: null_labels=True]" if null_labels else ""))
""")

md(r"""
## Protocol `worc`: random splits of the training cohort

Under `protocol="worc"` the whole family is refitted on each of the profile's random stratified 80/20
splits of the training cohort (100 in `full`) and scores the held-out 20 %; the mean AUC per model with the
corrected resampled t-test CI (Nadeau & Bengio 2003) is recorded on cohort `cv`. This is also the shared
leakage canary (`null_labels=True` must give 0.5 ± 0.1 for every model). Under `protocol="paper"` this
section is skipped.
""")

code(r"""
worc = None
if protocol == "worc":
    from joblib import Parallel, delayed

    from replicate.validation import random_splits

    Xtr, ytr = X.loc[tr], y_all.loc[tr]
    splits = random_splits(ytr, n_splits=counts["worc_splits"], test_size=counts["worc_test_size"],
                           seed=sseed("worc splits"))

    def one_split(k, a, b):
        fm = fit_fusion_models(Xtr.iloc[a], ytr.iloc[a], **FIT)
        P = fm.predict_proba(Xtr.iloc[b])
        return [{"split": k, "model": m, "AUC": stats.auc_score(ytr.iloc[b], P[m]), "n_train": len(a),
                 "n_test": len(b)} for m in P]

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = Parallel(n_jobs=n_jobs)(delayed(one_split)(k, a, b) for k, (a, b) in enumerate(splits))
    timings["worc_s"] = round(time.perf_counter() - t0, 1)
    worc = pd.DataFrame([r for rr in rows for r in rr])
    n_train, n_test = worc["n_train"].mean(), worc["n_test"].mean()
    results.add_cohort("cv", n=len(tr), n_positive=int(ytr.sum()),
                       source=f"{'BUS-BRA GE' if data == 'public' else 'synthetic twin'} training cohort, "
                              f"{len(splits)} random stratified 80/20 splits",
                       n_splits=len(splits), n_train=int(n_train), n_test=int(n_test))
    summary = []
    for m in MODEL_NAMES:
        v = worc.loc[worc.model == m, "AUC"].to_numpy()
        mean, lo, hi = stats.corrected_resampled_ttest_ci(v, n_train, n_test)
        results.add_metric(m, "cv", "AUC", mean, (lo, hi), n_splits=len(v),
                           ci_method="corrected resampled t-test (Nadeau & Bengio 2003)")
        summary.append({"model": m, "auc": mean, "low": lo, "high": hi})
    summary = pd.DataFrame(summary)
    print(f"{len(splits)} splits in {timings['worc_s']:.0f} s")
    display(summary.round(3))
    ctx.figure(plots.bar_auc_plot(summary, title=f"Mean AUC over {len(splits)} random splits (training cohort)"),
               "worc_auc")
""")

md(r"""
## Protocol `paper`: training cohort -> external validation

All nine models are fitted on the training cohort and applied to the external cohort. Training-cohort
metrics are apparent (in-sample), as in the paper's Table 2. The operating point of each model is the cut-off
maximising the weighted Youden index on the **training** cohort, applied unchanged to the external cohort.
""")

code(r"""
fm = P_tr = P_va = None
if protocol == "paper":
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm = fit_fusion_models(X.loc[tr], y_all.loc[tr], **FIT)
    timings["fit_s"] = round(time.perf_counter() - t0, 1)
    P_tr, P_va = fm.predict_proba(X.loc[tr]), fm.predict_proba(X.loc[va])
    y_tr, y_va = y_all.loc[tr], y_all.loc[va]
    src = "BUS-BRA" if data == "public" else "synthetic twin"
    results.add_cohort("training", n=len(tr), n_positive=int(y_tr.sum()),
                       source=f"{src}: {'GE Logiq 5 / 7' if data == 'public' else 'Hospital-1'} (apparent performance)")
    results.add_cohort("validation", n=len(va), n_positive=int(y_va.sum()),
                       source=f"{src}: {'Toshiba Aplio 300 + U-Systems' if data == 'public' else 'Hospital-2'} (external)")
    print(f"fitted {len(fm.models)} models in {timings['fit_s']:.0f} s")

    # what each model kept
    rows = []
    for m, est in fm.models.items():
        if KIND[m] == "post":
            rows.append({"model": m, "input": " + ".join(est.estimators_), "selected": len(est.estimators_)})
            continue
        fusion = est.named_steps["fusion"]
        row = {"model": m, "input": " + ".join(f"{b} {len(fusion.input_columns_[b])}" for b in fusion.blocks)}
        row["after ICC"] = " + ".join(f"{b} {len(v)}" for b, v in fusion.block_features_.items())
        if "ttest" in est.named_steps:
            row["after t-test"] = est.named_steps["ttest"].n_features_selected_
            sel = est.named_steps["lasso"].selected_features_
            row["after LASSO"] = " + ".join(f"{b} {sum(s.startswith(b + ':') for s in sel)}" for b in fusion.blocks)
            row["selected"] = len(sel)
        else:
            row["selected"] = len(fusion.get_feature_names_out())
        clf = est.named_steps["classifier"]
        row["SVM"] = ", ".join(f"{k.split('__')[-1]}={v}" for k, v in getattr(clf, "best_params_", {}).items()) or "fixed"
        rows.append(row)
    display(pd.DataFrame(rows).set_index("model").fillna(""))
""")

code(r"""
cut = design["cutoff"]
report = {}
if protocol == "paper":
    for m in MODEL_NAMES:
        thr = stats.youden_threshold(y_tr, P_tr[m], weight=cut["weight"])
        for cohort_name, yy, pp in (("training", y_tr, P_tr[m]), ("validation", y_va, P_va[m])):
            r = stats.classification_report(yy, pp, thr)
            report[(m, cohort_name)] = {k: r[k] for k in ("AUC", "ACC", "SEN", "SPE", "PPV", "NPV")} | {"threshold": thr}
            for metric in ("AUC", "ACC", "SEN", "SPE", "PPV", "NPV"):
                v, lo, hi = r[metric]
                results.add_metric(m, cohort_name, metric, v, (lo, hi), threshold=round(float(thr), 6),
                                   ci_method="DeLong" if metric == "AUC" else "Wilson")

    def fmt(t):
        return f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"

    perf = pd.DataFrame({(m, c): {k: fmt(v) for k, v in d.items() if k != "threshold"}
                         for (m, c), d in report.items()}).T
    perf.index.names = ["model", "cohort"]
    display(perf)
""")

md(r"""
### DeLong tests (the paper's Table 3 and Supplementary Table 6)

Pre-fusion CRDL against the clinical model and the other pre-fusion models; post-fusion CRDL against the
other post-fusion models; both cohorts. Paired DeLong test of the AUCs (same patients).
""")

code(r"""
if protocol == "paper":
    rows = []
    for a, b in design["comparisons"]:
        a, b = NAME[a], NAME[b]
        for cohort_name, yy, P in (("training", y_tr, P_tr), ("validation", y_va, P_va)):
            d = stats.delong_test(yy, P[a], P[b])
            rep = next((c for c in spec.comparisons if c["model_a"] == a and c["model_b"] == b
                        and c["cohort"] == cohort_name), None)
            results.add_comparison(a, b, cohort_name, test="DeLong", auc_a=d.auc_a, auc_b=d.auc_b, diff=d.diff,
                                   se=d.se, z=d.z, p_value=d.p_value, ci=list(d.ci),
                                   reported_p=None if rep is None else rep.get("p_value"),
                                   reported_id=None if rep is None else rep["id"])
            rows.append({"model A": a, "model B": b, "cohort": cohort_name, "AUC A": d.auc_a, "AUC B": d.auc_b,
                         "diff": d.diff, "P": d.p_value, "paper P": None if rep is None else rep.get("p_value")})
    display(pd.DataFrame(rows).round(4))
""")

md(r"""
### Figures

ROC curves of the clinical and pre-fusion models (the paper's Figure 4) and of the single and post-fusion
models (its Supplementary Figure 1); calibration and decision curves of the pre-fusion models (Figure 5).
""")

code(r"""
if protocol == "paper":
    import matplotlib.pyplot as plt

    groups = {"pre-fusion": [NAME["clinical"]] + [m for m in MODEL_NAMES if KIND[m] == "pre"],
              "single and post-fusion": [m for m in MODEL_NAMES if KIND[m] in ("single", "post")]}
    for gname, ms in groups.items():
        fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
        for ax, (cname, yy, P) in zip(axes, (("training", y_tr, P_tr), ("external validation", y_va, P_va))):
            plots.roc_plot({m: (yy, P[m]) for m in ms}, title=f"{cname}", ax=ax)
        fig.suptitle(f"ROC: {gname} models")
        fig.tight_layout()
        plt.close(fig)
        ctx.figure(fig, f"roc_{gname.replace(' ', '_')}")
""")

code(r"""
if protocol == "paper":
    ms = groups["pre-fusion"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 11))
    for j, (cname, yy, P) in enumerate((("training", y_tr, P_tr), ("external validation", y_va, P_va))):
        plots.calibration_plot({m: (yy, P[m]) for m in ms}, title=f"Calibration, {cname}",
                               n_boot=counts["n_boot"], seed=sseed("calibration", cname), ax=axes[0, j])
        dca = stats.decision_curve(yy, {m: P[m].to_numpy() for m in ms})
        plots.decision_curve_plot(dca, title=f"Decision curves, {cname}", ax=axes[1, j])
    fig.tight_layout()
    plt.close(fig)
    ctx.figure(fig, "calibration_decision_prefusion")
    bars = pd.DataFrame([{"model": m, "cohort": c, "auc": report[(m, c)]["AUC"][0], "low": report[(m, c)]["AUC"][1],
                          "high": report[(m, c)]["AUC"][2]} for m in MODEL_NAMES for c in ("training", "validation")])
    ctx.figure(plots.bar_auc_plot(bars, title="AUC (95% DeLong CI) of the nine models", group="cohort"),
                       "auc_bars")
""")

md(r"""
## Radiologist comparison

The paper's two radiologists read the 78 external patients without and then with the model (Table 4,
McNemar). BUS-BRA carries one radiologist reading per patient, the **BI-RADS category** (2-5): we read
BI-RADS >= 4 as a malignant call and use the category itself as an ordinal score (AUC over the categories).
It is compared with the pre-fusion CRDL on the external cohort: paired DeLong test of the AUCs, McNemar
test of the calls (CRDL at its training operating point). BI-RADS is never a model input. There is no
model-assisted second reading. The synthetic twin has no radiologist.
""")

code(r"""
rad_cfg = design["radiologist"]
if protocol == "paper" and data == "public":
    crdl = NAME["pre_crdl"]
    reader = rad_cfg["model_name"]
    rows = []
    for cname, ids, P in (("training", tr, P_tr), ("validation", va, P_va)):
        yy = y_all.loc[ids]
        birads = table.loc[ids, "birads"].astype(float)
        call = (birads >= rad_cfg["positive_from"]).astype(int)
        lo, auc, hi = stats.auc_ci(yy, birads)
        results.add_metric(reader, cname, "AUC", auc, (lo, hi), ci_method="DeLong", note="BI-RADS category as score")
        cm = stats.confusion_metrics(yy, call)
        for metric in ("ACC", "SEN", "SPE", "PPV", "NPV"):
            v, l, h = cm[metric]
            results.add_metric(reader, cname, metric, v, (l, h), ci_method="Wilson",
                               note=f"BI-RADS >= {rad_cfg['positive_from']} = malignant")
        thr = report[(crdl, "training")]["threshold"]
        model_call = (P[crdl] >= thr).astype(int)
        d = stats.delong_test(yy, P[crdl], birads)
        mc = stats.mcnemar(yy, model_call, call)
        results.add_comparison(crdl, reader, cname, test="DeLong", auc_a=d.auc_a, auc_b=d.auc_b, diff=d.diff,
                               se=d.se, z=d.z, p_value=d.p_value, ci=list(d.ci))
        results.add_comparison(crdl, reader, cname, test="McNemar", p_value=mc.p_value, statistic=mc.statistic,
                               b=mc.b, c=mc.c, exact=mc.exact)
        rows.append({"cohort": cname, "BI-RADS AUC": f"{auc:.3f} [{lo:.3f}, {hi:.3f}]",
                     "BI-RADS>=4 SEN": round(cm["SEN"][0], 3), "BI-RADS>=4 SPE": round(cm["SPE"][0], 3),
                     "BI-RADS>=4 ACC": round(cm["ACC"][0], 3), f"{crdl} AUC": round(d.auc_a, 3),
                     "DeLong P": round(d.p_value, 4), "McNemar P": round(mc.p_value, 4),
                     "only CRDL right": mc.b, "only BI-RADS right": mc.c})
    display(pd.DataFrame(rows).set_index("cohort"))
    if protocol == "paper":
        fig = plots.roc_plot({crdl: (y_va, P_va[crdl]),
                              reader: (y_va, table.loc[va, "birads"].astype(float))},
                             title="External cohort: pre-fusion CRDL vs BI-RADS reading")
        ctx.figure(fig, "roc_radiologist")
else:
    print("No radiologist reading in this run (synthetic twin, or protocol='worc').")
""")

md(r"""
## Reported vs reproduced

Every number the paper states for a model (spec `reported:`) next to ours, judged by the rule the spec
declared before any run. The paper's cohorts are soft-tissue tumours and ours breast lesions: a verdict says
whether the same pipeline lands on the same number on *this* proxy, not whether the paper is right.
""")

code(r"""
tab = results.table()
pd.set_option("display.max_rows", 400)
display(tab[tab["reported"] != "—"])
print("verdicts:", results.verdict_counts())
""")

md(r"""
## Deviations from the paper
""")

code(r"""
dev = [
    f"Radiomics: PyRadiomics on a 2-D ROI gives {rad.n_features} features per ROI with the composition that gives "
    "the paper's 851 on a 3-D ROI (Original + coif1 wavelets: 2-D has 9 shape2D features instead of 14 3-D "
    "shape features and 4 wavelet decompositions instead of 8); bin width 5 after PyRadiomics' z-normalisation "
    "(scale 100) is ours (the paper gives no discretisation).",
    f"Deep features: {DEEP_WEIGHTS}. The paper used a PRE-TRAINED 3-D ResNet-18 (511 features); ImageNet weights "
    f"are not available on this machine and nothing is downloaded, so the {dl.n_features} features come from a "
    f"randomly initialised (seed {seed}) 2-D ResNet-18 with a single-channel first layer: random convolutional "
    "features, not learned ones. 2-D because each patient has one 2-D image. Input: the square tumour crop "
    f"(bounding box + 10 % margin, {counts['deep_input_size']} px); the paper's masking of the background inside "
    "the crop is not applied.",
    f"Feature robustness: ICC ({rob['icc_kind']}) > {rob['icc_threshold']} between the original mask and a "
    f"perturbed one ({rob['perturbation']}) on {len(icc_ids)} random training patients, fitted inside each "
    "model's training rows; the paper compared two radiologists' segmentations of 50 patients.",
    f"Operating point: the paper's 'weighted Youden index' does not give its weight; we use weight "
    f"{cut['weight']} on sensitivity (plain Youden), chosen on the training cohort.",
    f"SVM hyper-parameters: the paper's grid is in its supplement (not available); ours: "
    + (", ".join(f"{k} in {v}" for k, v in counts["svm_grid"].items()) + f" by {counts['svm_cv_folds']}-fold CV (ROC AUC), "
       "then refitted with Platt-scaled probabilities" if counts["svm_tune"] else
       f"not tuned in the quick profile ({clf_cfg['untuned']}, the paper's optimum for CRDL)") + ".",
    "Post-fusion: the paper does not say how the probabilities fed to the fusion SVM were obtained on the "
    f"training cohort; we use {counts['post_fusion_cv_folds']}-fold out-of-fold probabilities (leak-free stacking).",
    "Clinical-model selection: the paper kept its five variables by univariate + multivariate logistic "
    "regression (Supplementary Table 3); we use its result (the variables) as fixed inputs, not a re-selection.",
    "Training-cohort metrics are apparent (in-sample) performance of the models fitted on that cohort.",
]
if data == "public":
    dev += [
        "Clinical model on BUS-BRA: no age, gender or colour Doppler (blood-flow grade); the semantic readings are "
        "replaced by continuous image/mask measurements (maximum diameter in pixels, irregularity = 1 - solidity, "
        "margin contrast, internal-echo coefficient of variation). Margin definition enters the clinical model "
        "although the paper's multivariate analysis left boundary out (its stand-in replaces the missing age and "
        "blood flow as the fourth measurable reading).",
        "Radiologist comparison: the BI-RADS category recorded in BUS-BRA (BI-RADS >= 4 = malignant call) stands in "
        "for the paper's two radiologists; there is no model-assisted second reading.",
        "Pixel sizes of BUS-BRA are not given: sizes and shape features are in pixels; images of different scanners "
        "have different pixel sizes.",
    ]
else:
    dev += ["Synthetic twin: its effect sizes are ours; its numbers are never compared with the paper's (verdicts: "
            "not comparable). Doppler images are generated but the models use the grey-scale image (the paper's "
            "features come from the ROI; the blood-flow grade enters the clinical model)."]
if profile == "quick":
    dev.append(f"Quick profile: {counts}")
for d in dev:
    results.add_deviation(d)
for i, d in enumerate(results.deviations, 1):
    print(f"{i}. {d}")
""")

md(r"""
## Provenance
""")

code(r"""
path = ctx.finish(data_files_sha256=cohort.meta.get("files_sha256"), deep_weights=DEEP_WEIGHTS,
                  timings=timings, n_patients_used=len(ok))
prov = dict(results.provenance)
print(f"results written to {path}")
pd.Series({k: (v if not isinstance(v, dict) else ", ".join(f"{a}={b}" for a, b in v.items()))
           for k, v in prov.items()}, name="provenance").to_frame()
""")

write(OUT)
