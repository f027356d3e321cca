"""Chapter ``sts``: Liang et al. 2022, a deep learning radiomics nomogram (DLRN) for lung metastasis in soft-tissue
sarcoma on MRI. The steps ``notebooks/sts.md`` calls; what it shares with ``rls`` is in
:mod:`replicate.pipelines.dlrn_chapter`, the model in :class:`replicate.dlrn.DLRNModel`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import dlrn
from ..stats import c_index_ci, delong_test
from .dlrn_chapter import (
    COHORTS,
    CV_COLUMNS,
    DAYS_PER_MONTH,
    DLRNChapter,
    centres_text,
    lasso_figure,
    paper_protocol,
    split_text,
    validation_text,
)

MOD_NAMES = {"T1": "T1WI", "T2FS": "FS-T2WI"}


class STSChapter(DLRNChapter):
    """One run of the ``sts`` chapter (see :class:`~replicate.pipelines.dlrn_chapter.DLRNChapter`)."""

    chapter = "sts"
    backbone = "ResNet34"
    deep_models = "DL / HD-Combined / DLRN"
    twin_descriptions = {
        "training": "twin: Institution-1 (training centre)",
        "validation": "twin: Institutions 2 and 3 (external validation)",
    }
    risk_label = "Risk of lung metastasis"
    worc_heads = "chosen"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.models = ["DLRN", self.cfg.chosen_name, "Clinical"]  # Table 3's rows
        # the Youden cut-offs shown beside Table 3 are learned inside every fit, from its own training rows
        self.cutoff_folds = self.counts["cutoff_folds"] if self.protocol == "paper" else None

    # -- data
    def load_cohort(self):
        """The 51 TCIA/IBSI patients with T1 MRI (public) or the three-centre T1 + FS-T2 twin (synthetic)."""
        from ..data import load_cohort

        if self.data == "public":
            self.cohort, self.modalities = load_cohort("ibsi_sts"), ["T1"]
        else:
            self.cohort, self.modalities = self.synthetic_cohort(), ["T1", "T2FS"]
        return self.cohort

    def gap_table(self) -> pd.DataFrame:
        """The proxy gap: the paper's cohort and design beside this run's."""
        table, counts = self.table, self.counts
        n, n_pos = len(table), int(self.cohort.y.sum())
        external = "external split of the twin"
        return dlrn.gap_table(
            {
                "patients": ("242 (116 training + 126 external)", f"{n}{split_text(table)}"),
                "lung metastasis": (
                    "39 / 242 (16%): 20/116 training, 19/126 external",
                    f"{n_pos} / {n} ({n_pos / n:.0%})",
                ),
                "centres": ("3 (training: 1; external: 2)", centres_text(table)),
                "MRI": ("T1WI + FS-T2WI", " + ".join(MOD_NAMES[m] for m in self.modalities)),
                "clinical candidates": (
                    "age, gender, T-stage, N-stage + 7 semantic MRI features",
                    ", ".join(self.design["clinical"]["columns"][self.data]),
                ),
                "validation": (
                    "external (Institutions 2 + 3)",
                    validation_text(self.data, self.protocol, counts, external),
                ),
                "deep features": ("ResNet34 pre-trained on ImageNet", "ResNet34, see the weights status below"),
            }
        )

    def features(self) -> pd.DataFrame:
        """Extract the features; the ICC's re-segmented patients are the spec's label-free subset (all when unset)."""
        by = "centre" if "centre" in self.table else None
        ids = dlrn.reproducibility_subset(self.table, self.counts["icc_subset"], seed=self.seed, by=by)
        return self.extract_features(ids)

    def inputs(self) -> pd.DataFrame:
        """Model inputs; on the public cohort gender, grade code and T-stage (from the T1 mask) are derived first."""
        if self.data == "public":
            dlrn.derive_public_columns("sts", self.table, self.imf.features)
        return self.build_inputs(self.cohort.label)

    def model_kwargs(self, heads: str) -> dict:
        """Which heads to fit, and the inner folds of the Youden cut-off (paper protocol only)."""
        return {"heads": heads, "cutoff_folds": self.cutoff_folds}

    # -- fit and score
    def cv_models(self):
        """Every model but the chosen head, which is the same model as "Radiomics"."""
        return [m for m in self.cv.models if m != self.cfg.chosen_model], None

    def worc_tables(self, split_aucs):
        """All models shown; the chosen head (= "Radiomics") is not recorded twice."""
        worc = dlrn.summarise_split_aucs(split_aucs)
        return worc.round(3), worc.drop(index=self.cfg.chosen_model)

    def fit_and_score(self):
        """Fit and score (see the base class); on the public cohort keeps the CV summary and shows its main rows."""
        shown = super().fit_and_score()
        if self.cross_validated:
            self.results.extra["cv_auc_summary"] = shown.round(4).reset_index().to_dict(orient="records")
            rows = ["DLRN", self.cfg.chosen_name, "Clinical", "HCR SVM-SMOTE", "DL SVM-SMOTE"]
            return shown.loc[rows, CV_COLUMNS].round(3)
        return shown

    # -- what the fit selected
    @paper_protocol
    def selection(self) -> pd.DataFrame:
        """The apparent fit's LASSO features, clinical predictors and DLRN, and the feature counts the paper states
        (recorded). Returns the feature counts after each step."""
        fitted, info, hd = self.fitted, self.fitted.info_, self.cfg.chosen[0]
        lasso = info["signatures"][hd]["lasso_coef"]
        print(f"{hd} signature, LASSO non-zero features ({len(lasso)}):")
        print(pd.Series(lasso).round(3).to_string())
        fallback = ("(" + info["clinical_fallback"] + ")") if info["clinical_fallback"] else ""
        print("\nclinical model: independent predictors =", info["clinical_selected"], fallback)
        print(
            "DLRN (logistic regression):", info["dlrn_coef"], " intercept", round(float(fitted.dlrn_.intercept_[0]), 3)
        )
        fc = fitted.feature_counts(self.modalities)
        self._record_counts(fc.set_index(["signature", "modality", "source"]), lasso, hd)
        coef = pd.Series(lasso).sort_values()
        colours = ["#c0392b" if "_hcr_" in c else "#2471a3" for c in coef.index]
        labels = [c.replace("_last_conv", "") for c in coef.index]
        title = f"{hd} signature: non-zero LASSO features (red HCR, blue DL)"
        self.ctx.figure(lasso_figure(coef, colours, labels, title), "lasso_coefficients")
        return fc

    def _record_counts(self, fc: pd.DataFrame, lasso: dict, hd: str) -> None:
        add = self.results.add_metric
        icc_col = [c for c in fc.columns if c.startswith("ICC")]
        for m in self.modalities:
            name, hcr = MOD_NAMES[m], ("HCR", m, "HCR")
            rows = [(hcr, icc_col[0], "HCR features", f"{name} ICC > 0.75")] if icc_col else []
            rows += [
                (("DL", m, "DL"), "non-null", "DL features", f"{name} after null elimination"),
                (hcr, "extracted", "HCR features", "extracted per ROI"),
            ]
            for key, column, model, variable in rows:
                if key in fc.index:
                    add(model, "training", "n_features", fc.loc[key, column], variable=variable)
        add(hd, "training", "n_features", sum(1 for c in lasso if "_hcr_" in c), variable="LASSO non-zero HCR")
        add(hd, "training", "n_features", sum(1 for c in lasso if "_dl_" in c), variable="LASSO non-zero DL")
        lam = self.fitted.selectors_[hd].named_steps["lasso"].alpha_
        add(hd, "training", "lambda", lam, note="glmnet-scale lambda = 1 / (C x n) of the CV-chosen logistic LASSO")
        print(f"LASSO lambda (glmnet scale) = {lam:.4f} (ln lambda = {np.log(lam):.2f})")

    # -- Table 3
    @paper_protocol
    def table3(self) -> pd.DataFrame:
        """Table 3 at the 0.5 cut-off: every metric of the three main models (recorded), accuracy of every other
        head, and DeLong tests of the DLRN against the radiomics and clinical models beside the paper's P."""
        rows = []
        for coh in COHORTS:
            own_auc = not (coh == "validation" and self.cross_validated)  # else the repeated-CV AUC recorded
            for m in self.models:
                rep = dlrn.evaluate(self.ys[coh], self.scores[coh][m], self.cfg.cutoff)
                metrics = dlrn.TABLE_METRICS if own_auc else dlrn.TABLE_METRICS[1:]
                dlrn.record_metrics(self.results, m, coh, rep, metrics=metrics)
                auc = rep["AUC"] if own_auc else tuple(self.cv_summary.loc[m, ["mean", "low", "high"]])
                rows.append(
                    {
                        "set": coh,
                        "model": m,
                        **{k: rep[k][0] for k in dlrn.TABLE_METRICS},
                        "AUC": auc[0],
                        "AUC 95% CI": f"{auc[1]:.3f}-{auc[2]:.3f}",
                    }
                )
            for m in [c for c in self.scores[coh].columns if c not in self.models]:
                rep = dlrn.evaluate(self.ys[coh], self.scores[coh][m], self.cfg.cutoff)
                dlrn.record_metrics(self.results, m, coh, rep, metrics=("AUC", "ACC") if own_auc else ("ACC",))
            for other in self.models[1:]:
                rows[-len(self.models) + self.models.index(other)]["P (DeLong vs DLRN)"] = self._delong(coh, other)
        if self.cross_validated:
            print(
                "validation AUC: mean test-fold AUC with the corrected resampled CI; the other columns and the "
                "DeLong P values use the repeat-averaged out-of-fold probabilities"
            )
        return pd.DataFrame(rows).round(3)

    def _delong(self, coh: str, other: str) -> float:
        ys, scores = self.ys[coh], self.scores[coh]
        d = delong_test(ys, scores["DLRN"], scores[other])
        rep_p = next(
            (
                c.get("p_value")
                for c in self.spec.comparisons
                if c["model_a"] == "DLRN" and c["model_b"] == other and c["cohort"] == coh
            ),
            None,
        )
        self.results.add_delong("DLRN", other, coh, d, reported_p_value=rep_p)
        return round(d.p_value, 3)

    @paper_protocol
    def youden_table(self) -> pd.DataFrame:
        """The main models' metrics at a Youden cut-off learned inside each fit from its own training rows (never
        from the patients it is applied to); kept in ``results.extra``."""
        print(
            "At a Youden cut-off learned from each fit's own training rows (never from the patients it is applied to):"
        )
        rows, other = [], dlrn.TABLE_METRICS[1:]
        for m in self.models:
            thr = self.fitted.cutoffs_[m]
            rep = dlrn.evaluate(self.ys["training"], self.scores["training"][m], thr)
            rows.append(
                {"set": "training (apparent)", "model": m, "cut-off": f"{thr:.3f}", **{k: rep[k][0] for k in other}}
            )
            if self.cross_validated:
                cuts = [c[m] for c in self.cv.fold_cutoffs]
                rows.append(
                    {
                        "set": "validation (out-of-fold)",
                        "model": m,
                        "cut-off": f"per fold, {min(cuts):.3f}-{max(cuts):.3f}",
                        **self.cv.cutoff_metrics(m),
                    }
                )
            else:
                rep = dlrn.evaluate(self.ys["validation"], self.scores["validation"][m], thr)
                rows.append(
                    {
                        "set": "validation (external)",
                        "model": m,
                        "cut-off": f"{thr:.3f}",
                        **{k: rep[k][0] for k in other},
                    }
                )
        youden = pd.DataFrame(rows)
        self.results.extra["youden_cutoff"] = {
            "rule": f"Youden's index on out-of-fold probabilities of a {self.cutoff_folds}-fold CV inside each fit's "
            "training rows; training rows: the model fitted on them (apparent); out-of-fold: each patient called "
            "with its fold model's cut-off, metrics averaged over repeats",
            "rows": youden.to_dict(orient="records"),
        }
        return youden.round(3)

    @paper_protocol
    def signature_table(self) -> pd.DataFrame:
        """Every signature x classifier x SMOTE head on the validation rows (the paper's Tables S4/S5); out of fold,
        the headline mean test-fold AUC is added beside the pooled one."""
        heads = [c for c in self.scores["validation"].columns if c not in self.models]
        print("All signatures x classifiers x SMOTE on the validation rows (the paper's Tables S4/S5):")
        tab = dlrn.signature_table(self.ys["validation"], self.scores["validation"], heads, self.cfg.cutoff)
        if self.cross_validated:
            s = self.cv_summary
            tab.insert(
                3,
                "mean fold AUC [corrected CI]",
                [f"{s.loc[m, 'mean']:.3f} [{s.loc[m, 'low']:.3f}, {s.loc[m, 'high']:.3f}]" for m in heads],
            )
            tab = tab.rename(columns={"AUC": "pooled OOF AUC", "AUC 95% CI": "pooled 95% CI"})
        return tab

    # -- survival
    @paper_protocol
    def survival(self) -> pd.DataFrame | None:
        """PFS by DLRN risk group (when the cohort has PFS): log-rank, medians, C-index, and the C-index among the
        patients without lung metastasis (the part of PFS that is not the label)."""
        table = self.table
        if not {"pfs_time", "pfs_event"} <= set(table.columns):
            print("This cohort has no PFS columns.")
            return None
        time = table.loc[self.ids, "pfs_time"].astype(float) / DAYS_PER_MONTH
        return self.survival_curves("PFS", time, table.loc[self.ids, "pfs_event"].astype(int))

    def survival_cohort(self, coh, pid, kind, sv, row, time, event) -> None:
        """Record one cohort's log-rank P, median PFS per group and C-indices."""
        add, n_boot = self.results.add_metric, self.counts["n_boot"]
        if sv["logrank_p"] is not None:
            self.results.add_comparison(
                "DLRN high risk",
                "DLRN low risk",
                coh,
                test="log-rank (PFS)",
                p_value=sv["logrank_p"],
                reported_p_value="<0.01",
                risk_from=kind,
            )
        for g in ("high risk", "low risk"):
            if sv[f"n_{g}"]:
                add(f"DLRN {g}", coh, "median_PFS_months", sv[f"median_{g}"], note="months; None = not reached")
        if "c_index" in sv:
            add(
                "DLRN",
                coh,
                "C-index",
                sv["c_index"],
                (sv["c_low"], sv["c_high"]),
                note=f"PFS, Harrell; percentile bootstrap CI; risk {kind}",
            )
        # the part of PFS that is not the label: progression among patients without lung metastasis
        t, ev, risk = time.loc[pid], event.loc[pid], self.scores[coh]["DLRN"].to_numpy()
        neg = (self.y_true.loc[pid] == 0).to_numpy()
        if ev[neg].sum() >= 3:
            lo, c, hi = c_index_ci(t[neg], risk[neg], ev[neg], n_boot=n_boot, seed=self.seed)
            row["C-index among LM-negative"] = f"{c:.3f} [{lo:.3f}, {hi:.3f}] ({int(ev[neg].sum())} events)"
            add(
                "DLRN",
                coh,
                "C-index",
                c,
                (lo, hi),
                variable="PFS among patients without lung metastasis",
                note="progression that is not the predicted label; percentile bootstrap CI",
            )

    # -- deviations and provenance
    def deviations(self) -> list[str]:
        """Every departure from the paper this run made, numbered (see :meth:`finish_deviations` for the rest)."""
        dev, counts = self.results.add_deviation, self.counts
        self.cohort_deviations(PUBLIC_DEVIATIONS, TWIN_DEVIATIONS, "three centres", "external centres")
        icc = counts["icc_subset"]
        subset = f" that belong to a label-free reproducibility subset of {icc} patients" if icc else ""
        dev(
            "Second segmentation: a perturbed mask (smooth random contour jitter of about one voxel, "
            "replicate.features.perturb) stands in for the paper's re-segmentation; ICC(2,1) > 0.75 on the training "
            f"patients of every fit{subset}."
        )
        quick = counts["radiomics_image_types"] != "all"
        dev(
            "PyRadiomics settings: 1,379 features per ROI as in the paper (14 shape + 15 image types x 91), but the "
            "image types (original, wavelet, LoG 1/3/5 mm, square, square root, logarithm), z-normalised intensities "
            "and bin width 5 are our choice (the paper's Supplementary A4 is not available)"
            + ("; profile 'quick' keeps the original image only (105 features)." if quick else ".")
        )
        if self.deep_weights != "imagenet":
            dev(
                "Deep features from an UNTRAINED (randomly initialised, seeded) ResNet34: ImageNet weights are not "
                "available on this machine. These are not the paper's pre-trained features."
            )
        size = counts["deep_input_size"]
        dev(
            "Deep features: 2-D crop (20% peritumoral margin) of the axial slice with the largest tumour area, "
            f"{size}x{size} input, global-average-pooled last convolutional block (512); null features are "
            "eliminated inside each training fold (DropConstant). The paper does not say how it fed the 3-D ROI to "
            "the 2-D network."
        )
        self._method_deviations()
        return self.finish_deviations()

    def _method_deviations(self) -> None:
        dev, cfg = self.results.add_deviation, self.cfg
        dev(
            "The DLRN uses the paper's choice of signature (HD-Combined, SVM, SMOTE) fixed in advance; the paper "
            "chose it by its accuracy on the external validation set."
        )
        youden = (
            f" Metrics at a Youden cut-off are shown alongside: each fit learns it from out-of-fold "
            f"probabilities of a {self.cutoff_folds}-fold CV inside its own training rows."
            if self.cutoff_folds
            else ""
        )
        dev(
            "Cut-off 0.5 on predicted probabilities for ACC/ER/SEN/SPE/PPV/NPV and the PFS risk groups (implied by "
            "Table 3's clinical model); the paper does not state it." + youden
        )
        pool = (
            f"; profile 'quick' pre-selects the {cfg.mrmr_pool} most relevant features before mRMR."
            if cfg.mrmr_pool
            else "."
        )
        dev(
            "mRMR (mrmr-selection, F-test relevance / correlation redundancy) and LASSO (see below) replace the "
            "paper's R packages (Table S2, not available)" + pool
        )
        if self.protocol == "worc":
            dev(
                "protocol='worc': only the chosen classifier (SVM-SMOTE) is fitted on each signature, plus the "
                "clinical model and the DLRN."
            )

    def provenance(self):
        """Write results.json: one digest of the public data files' hashes, the run's settings and timings."""
        files_sha = self.cohort.meta.get("files_sha256")
        if isinstance(files_sha, dict):  # per-file hashes (public data): one digest of them all
            from ..io import stable_hash

            self.results.extra["data_files"] = len(files_sha)
            files_sha = stable_hash(files_sha)
        return self.finish(files_sha, n_features_per_roi=self.imf.info["n_hcr"])


PUBLIC_DEVIATIONS = [
    "Cohort: the 51 TCIA/IBSI soft-tissue sarcoma patients (19 LM, 37%) replace the paper's 242 (39 LM, 16%) from "
    "three centres.",
    "No external validation cohort: protocol='paper' reports {repeats}x{folds}-fold repeated stratified CV (the whole "
    "pipeline refitted in every fold) as 'validation', and the apparent performance of the model fitted on all 51 "
    "patients as 'training'. The validation AUC is the mean test-fold AUC with the corrected resampled t-test CI (its "
    "SE sets the resolution); the AUC of the repeat-averaged out-of-fold prediction is a labelled secondary; "
    "threshold metrics, DeLong tests and the PFS groups use the repeat-averaged out-of-fold probabilities.",
    "FS-T2WI is not available in the proxy: T1 only; the HCR, DL and HD-Combined signatures use T1 features only.",
    "Clinical candidates: age, gender, grade (not in the paper; 3 missing, imputed with the training-fold median "
    "inside the model) and T-stage derived from the T1 mask's maximum 3-D diameter (AJCC 8th size cut-offs); N-stage "
    "and the semantic MRI features are not available.",
    "One centre: no ComBat.",
    "PFS runs from diagnosis (biopsy) to any recurrence or metastasis, else last follow-up (TCIA's table); the "
    "paper's runs from surgery.",
]
TWIN_DEVIATIONS = [
    "Synthetic twin: its images, effect sizes and clinical associations are ours (Table 1's class-conditional "
    "frequencies of the training set); nothing on the twin is compared with the paper's numbers.",
    "The paper does not split its external set between Institutions 2 and 3; the twin uses 70 + 56 patients.",
]
