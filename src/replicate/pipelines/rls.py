"""Chapter ``rls``: Tian et al. 2024, a CECT deep learning radiomics nomogram (DLRN) for metachronous distant
metastasis after resection of retroperitoneal leiomyosarcoma. The steps ``notebooks/rls.md`` calls; what it shares
with ``sts`` is in :mod:`replicate.pipelines.dlrn_chapter`, the model in :class:`replicate.dlrn.DLRNModel`."""

from __future__ import annotations

import pandas as pd

from .. import dlrn
from ..stats import delong_test
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

MODELS = ["DLRN", "DLRS", "RS", "Clinical"]  # Table 3's rows, in its order
PAIRS = [
    ("DLRN", "DLRS"),
    ("DLRN", "RS"),
    ("DLRN", "Clinical"),
    ("DLRS", "Clinical"),
    ("DLRS", "RS"),
    ("RS", "Clinical"),
]


def rename_heads(scores: pd.DataFrame) -> pd.DataFrame:
    """The LASSO heads are the signatures themselves: "RS LASSO" is the RS; "DLRS LASSO" duplicates the DLRS."""
    return scores.rename(columns={"RS LASSO": "RS"}).drop(columns=["DLRS LASSO"])


def paper_name(col: str, deep_columns: list[str], prefix: dict) -> str:
    """A feature's name the way the paper prints its DLR-score: hand-crafted features prefixed with their phase's
    letter (A/V/D), deep features as ``X<k>``, their 1-based position among ``deep_columns`` (all phases)."""
    if col in deep_columns:
        return f"X{deep_columns.index(col) + 1}"
    modality, _, rest = col.partition("_hcr_")
    return f"{prefix.get(modality, modality)}_{rest}"


class RLSChapter(DLRNChapter):
    """One run of the ``rls`` chapter (see :class:`~replicate.pipelines.dlrn_chapter.DLRNChapter`)."""

    chapter = "rls"
    backbone = "ResNet-18"
    deep_models = "DLRS / DLRN"
    models = MODELS
    twin_descriptions = {"training": "twin: centre 1 (training)", "validation": "twin: centre 2 (external validation)"}
    risk_label = "Risk of MDM"
    risk_groups = ("low DLRN score", "high DLRN score")
    km_hidden = ("groups", "c_index", "c_low", "c_high")

    # -- data
    def load_cohort(self):
        """The 51 TCIA/IBSI patients with the CT of their PET/CT, outcome any distant metastasis (public), or the
        two-centre three-phase CECT twin (synthetic)."""
        from ..data import load_cohort

        if self.data == "public":
            self.cohort, self.modalities, self.label = load_cohort("ibsi_sts"), ["CT"], "distant_mets"
            self.cohort.table["mdm"] = self.cohort.table[self.label]
        else:
            self.cohort, self.modalities, self.label = self.synthetic_cohort(), list(self.design["modalities"]), "mdm"
        return self.cohort

    def gap_table(self) -> pd.DataFrame:
        """The proxy gap: the paper's cohort and design beside this run's."""
        table, public = self.table, self.data == "public"
        n, n_pos = len(table), int(table[self.label].sum())
        if public:
            print("distant-metastasis outcomes:", table.loc[table[self.label] == 1, "outcome"].value_counts().to_dict())
        ct = " + ".join(self.modalities) + (" (non-contrast CT of PET/CT)" if public else " (synthetic phases)")
        return dlrn.gap_table(
            {
                "patients": ("179 (121 training + 58 external)", f"{n}{split_text(table)}"),
                "tumours": (
                    "retroperitoneal leiomyosarcoma, R0-resected",
                    "extremity soft-tissue sarcomas (all histologies)" if public else "synthetic sarcoma volumes",
                ),
                "distant metastasis": (
                    "63 / 179 (35%): 48/121 training, 15/58 external",
                    f"{n_pos} / {n} ({n_pos / n:.0%})",
                ),
                "centres": ("2 (training: 1; external: 1)", centres_text(table)),
                "CT": ("contrast-enhanced: arterial + venous + delayed", ct),
                "clinical candidates": (
                    "age, sex, Ki-67, tumour size > 10 cm, N stage + 5 CECT semantic features",
                    ", ".join(self.design["clinical"]["columns"][self.data]),
                ),
                "DMFS clock": ("from surgery", "from diagnosis" if public else "synthetic Weibull times"),
                "validation": (
                    "external (centre 2)",
                    validation_text(self.data, self.protocol, self.counts, "external centre of the twin"),
                ),
                "deep features": ("ResNet-18 pre-trained on ImageNet", "ResNet-18, see the weights status below"),
            }
        )

    def features(self) -> pd.DataFrame:
        """Extract the features; a label-free random subset of the paper's re-delineated fraction is perturbed."""
        n_icc = int(round(self.design["robustness"]["subset_fraction"] * len(self.table)))
        by = "centre" if "centre" in self.table else None
        counts = self.extract_features(dlrn.reproducibility_subset(self.table, n_icc, seed=self.seed, by=by))
        info = self.imf.info
        self.n_hcr_total = sum(info["n_hcr"].values())
        print(
            f"hand-crafted features in all: {self.n_hcr_total} (paper: 5,502 = 3 x 1,834); deep: "
            f"{sum(info['n_deep'].values())} (paper: 1,536 = 3 x 512)"
        )
        return counts

    def tumour_size(self) -> pd.DataFrame | None:
        """Public cohort: derive female, grade code, the CT mask's maximum 3-D diameter and size > 10 cm; returns
        size > 10 cm by outcome."""
        if self.data != "public":
            return None
        table = self.table
        dlrn.derive_public_columns("rls", table)
        print("maximum 3-D diameter (mm):", table["diameter_mm"].describe().round(1).to_dict())
        print("tumour size > 10 cm by outcome:")
        return pd.crosstab(
            table["size_gt10"].map({0.0: "<= 10 cm", 1.0: "> 10 cm"}), table[self.label].map({0: "no DM", 1: "DM"})
        )

    def inputs(self) -> pd.DataFrame:
        """Model inputs and the DMFS end point (months, event)."""
        shown = self.build_inputs(self.label)
        surv = self.design["survival"]["columns"][self.data]
        self.t_months = self.table[f"{surv}_time"].astype(float) / DAYS_PER_MONTH
        self.event = self.table[f"{surv}_event"].astype(int)
        return shown

    # -- fit and score
    def rename_scores(self, scores):
        """See :func:`rename_heads`."""
        return rename_heads(scores)

    def cv_models(self):
        """Table 3's models; the RS is the "RS LASSO" head."""
        return MODELS, {"RS LASSO": "RS"}

    def worc_tables(self, split_aucs):
        """Table 3's models (the RS LASSO head as the RS)."""
        aucs = split_aucs[split_aucs["model"] != "DLRS LASSO"].replace({"model": {"RS LASSO": "RS"}})
        worc = dlrn.summarise_split_aucs(aucs).loc[MODELS]
        return worc.round(3), worc

    def fit_and_score(self):
        """Fit and score (see the base class); on the public cohort keeps the CV summary of Table 3's models."""
        shown = super().fit_and_score()
        if self.cross_validated:
            self.results.extra["cv_auc_summary"] = shown.loc[MODELS].round(4).reset_index().to_dict(orient="records")
            return shown.loc[MODELS, CV_COLUMNS].round(3)
        return shown

    # -- what the fit selected
    @paper_protocol
    def score_formulas(self) -> None:
        """Print the fitted DLR-score and RS-score the way the paper prints its own."""
        from ..learn import format_score_formula

        deep_cols = [c for c in self.sig_cols["DLRS"] if "_dl_" in c]
        prefix = self.design["phase_prefix"]
        for s, name in (("DLRS", "DLR-score"), ("RS", "RS-score")):
            las = self.fitted.selectors_[s].named_steps["lasso"]
            coef = las.coef_[las.support_].rename(lambda c: paper_name(c, deep_cols, prefix))
            print(format_score_formula(las.intercept_, coef, name=name, decimals=6))
            print(f"   ({len(coef)} features; lambda (glmnet scale) = {las.alpha_:.4f}, {las.n_splits_}-fold CV)\n")

    @paper_protocol
    def selection(self) -> pd.DataFrame:
        """Record the feature counts the paper states, draw the DLRS's LASSO coefficients, print the clinical
        model and the DLRN; returns the feature counts after each step."""
        fc, info = self.fitted.feature_counts(self.modalities), self.fitted.info_
        self._record_counts(fc, info)
        deep_cols = [c for c in self.sig_cols["DLRS"] if "_dl_" in c]
        names = pd.Series(info["signatures"]["DLRS"]["lasso_coef"])
        coef = names.rename(lambda c: paper_name(c, deep_cols, self.design["phase_prefix"])).sort_values()
        colours = ["#2471a3" if k.startswith("X") else "#c0392b" for k in coef.index]
        title = "DLRS: non-zero LASSO features (red hand-crafted, blue deep) — cf. Fig. 3c"
        self.ctx.figure(lasso_figure(coef, colours, list(coef.index), title, height=0.32), "lasso_coefficients")
        fallback = ("(" + info["clinical_fallback"] + ")") if info["clinical_fallback"] else ""
        print("clinical model: independent predictors =", info["clinical_selected"], fallback)
        print(
            "DLRN (logistic regression):",
            info["dlrn_coef"],
            " intercept",
            round(float(self.fitted.dlrn_.intercept_[0]), 3),
        )
        return fc

    def _record_counts(self, fc: pd.DataFrame, info: dict) -> None:
        icc_col = next(c for c in fc.columns if c.startswith("ICC"))
        sel_dlrs = list(info["signatures"]["DLRS"]["lasso_coef"])
        n_dl = sum("_dl_" in c for c in sel_dlrs)
        rs_rows, dl_rows = fc[fc["signature"] == "RS"], fc[fc["signature"] == "DLRS"]
        phases = f"{len(self.modalities)} phase(s)"
        for model, variable, value, note in [
            ("HCR features", "extracted (three phases)", self.n_hcr_total, phases),
            (
                "DL features",
                "after null elimination (three phases)",
                int(dl_rows.loc[dl_rows["source"] == "DL", "non-null"].sum()),
                f"{phases}, null = constant on the training rows",
            ),
            ("HCR features", "ICC > 0.8", int(rs_rows[icc_col].sum()), None),
            ("RS", "selected", len(info["signatures"]["RS"]["lasso_coef"]), None),
            ("DLRS", "after mRMR", int(dl_rows["mRMR"].sum()), None),
            ("DLRS", "selected deep", n_dl, None),
            ("DLRS", "selected hand-crafted", len(sel_dlrs) - n_dl, None),
            ("DLRS", "in the DLR-score", len(sel_dlrs), None),
        ]:
            self.results.add_metric(model, "training", "n_features", value, variable=variable, note=note)
        train = set(self.ys["training"].index)
        n_icc_train = sum(1 for i in (self.perturb_ids or self.ids) if i in train)
        self.results.add_metric(
            "Segmentation",
            "training",
            "n_patients",
            n_icc_train,
            variable="re-delineated for ICC",
            note="perturbed re-extraction (label-free random subset)",
        )

    # -- Table 3
    @paper_protocol
    def table3(self) -> pd.DataFrame:
        """Table 3 at the 0.5 cut-off: AUC (the repeated-CV headline out of fold), SPE, NPV, ACC, SEN, PPV of the
        four models (recorded)."""
        rows = []
        for coh in COHORTS:
            own_auc = not (coh == "validation" and self.cross_validated)
            for m in MODELS:
                rep = dlrn.evaluate(self.ys[coh], self.scores[coh][m], self.cfg.cutoff)
                metrics = ("AUC",) * own_auc + ("SPE", "NPV", "ACC", "SEN", "PPV")
                dlrn.record_metrics(self.results, m, coh, rep, metrics=metrics)
                auc = rep["AUC"] if own_auc else tuple(self.cv_summary.loc[m, ["mean", "low", "high"]])
                rows.append(
                    {
                        "cohort": coh,
                        "model": m,
                        "SPE": rep["SPE"][0],
                        "NPV": rep["NPV"][0],
                        "ACC": rep["ACC"][0],
                        "AUC": auc[0],
                        "95% CI": f"{auc[1]:.3f}-{auc[2]:.3f}",
                        "SEN": rep["SEN"][0],
                        "PPV": rep["PPV"][0],
                    }
                )
        return pd.DataFrame(rows).round(3)

    @paper_protocol
    def delong_table(self) -> pd.DataFrame:
        """Every pairwise DeLong test of Table 3 beside the paper's SE, CI and P and what the audit says of the
        paper's row (recorded as comparisons)."""
        audit_flags = dlrn.comparison_audit_flags(self.spec)  # replicate.audit on the paper's own numbers
        rows = []
        for coh in COHORTS:
            for a, b in PAIRS:
                rows.append(self._delong(coh, a, b, audit_flags))
        if self.cross_validated:
            print(
                "DeLong tests (ours vs the paper's Table 3) - validation on the repeat-averaged out-of-fold "
                "probabilities:"
            )
        return pd.DataFrame(rows)

    def _delong(self, coh: str, a: str, b: str, audit_flags: dict) -> dict:
        d = delong_test(self.ys[coh], self.scores[coh][a], self.scores[coh][b])
        rep = next(
            (
                c
                for c in self.spec.comparisons
                if c["model_a"] == a and c["model_b"] == b and c["cohort"] == coh and c.get("test") == "DeLong"
            ),
            {},
        )
        flags = audit_flags.get(rep.get("id"), [])
        scores = "repeat-averaged out-of-fold" if (coh == "validation" and self.cross_validated) else coh
        self.results.add_delong(
            a,
            b,
            coh,
            d,
            reported_se=rep.get("se"),
            reported_ci=rep.get("ci"),
            reported_p_value=rep.get("p_value"),
            reported_audit=flags,
            scores=scores,
        )
        return {
            "cohort": coh,
            "comparison": f"{a} vs. {b}",
            "AUC diff": round(d.diff, 3),
            "SE": round(d.se, 3),
            "95% CI": f"{d.ci[0]:.3f} to {d.ci[1]:.3f}",
            "P": round(d.p_value, 3),
            "paper SE": rep.get("se"),
            "paper 95% CI": rep.get("ci"),
            "paper P": rep.get("p_value"),
            "paper row, audited": "; ".join(flags) if flags else "consistent",
        }

    def auc_table(self) -> pd.DataFrame:
        """Every model's AUC recorded in this run, by cohort (paper-reported or not)."""
        rows = [
            {
                "model": m["model"],
                "value": m["value"],
                "cohort": m["cohort"] + (" (secondary: repeat-averaged OOF)" if m.get("variable") else ""),
            }
            for m in self.results.metrics
            if m["metric"] == "AUC"
        ]
        return pd.DataFrame(rows).pivot(index="model", columns="cohort", values="value").round(3)

    # -- survival
    @paper_protocol
    def survival(self) -> pd.DataFrame:
        """DMFS by DLRN risk group: log-rank P and the C-index of the DLRN and the DLRS per cohort."""
        return self.survival_curves("DMFS", self.t_months, self.event)

    def survival_cohort(self, coh, pid, kind, sv, row, time, event) -> None:
        """Record one cohort's log-rank P (beside the paper's) and the DLRN's and DLRS's C-index for DMFS."""
        rep = next((c for c in self.spec.comparisons if c["cohort"] == coh and "log-rank" in str(c.get("test"))), {})
        if sv["logrank_p"] is not None:
            self.results.add_comparison(
                "DLRN high risk",
                "DLRN low risk",
                coh,
                test="log-rank (DMFS)",
                p_value=sv["logrank_p"],
                reported_p_value=rep.get("p_value"),
                risk_from=kind,
            )
        for m in ("DLRN", "DLRS"):
            c = (
                sv
                if m == "DLRN"
                else dlrn.survival_by_risk(
                    time.loc[pid],
                    event.loc[pid],
                    self.scores[coh][m],
                    self.cfg.cutoff,
                    n_boot=self.counts["n_boot"],
                    seed=self.seed,
                )
            )
            if "c_index" in c:
                self.results.add_metric(
                    m,
                    coh,
                    "C-index",
                    c["c_index"],
                    (c["c_low"], c["c_high"]),
                    note=f"DMFS, Harrell; percentile bootstrap CI; risk {kind}",
                )
                row[f"C-index {m}"] = f"{c['c_index']:.3f} [{c['c_low']:.3f}, {c['c_high']:.3f}]"

    # -- deviations and provenance
    def deviations(self) -> list[str]:
        """Every departure from the paper this run made, numbered (see :meth:`finish_deviations` for the rest)."""
        dev, counts = self.results.add_deviation, self.counts
        self.cohort_deviations(PUBLIC_DEVIATIONS, TWIN_DEVIATIONS, "two centres", "external centre")
        quick = counts["radiomics_image_types"] != "all"
        dev(
            "Hand-crafted features: 1,834 per phase as in the paper, but PyRadiomics' LBP-3D filter (which the paper "
            "used: 'D_lbp-3D-k_ngtdm_Complexity') cannot run here (needs trimesh and SciPy's removed sph_harm); three "
            "more LoG sigmas stand in for its three images. Filters, bin width 25 HU and no resampling are our choice "
            "(the paper's Supplementary Appendix 4 is not available)"
            + ("; profile 'quick' keeps the original image only (105 per phase)." if quick else ".")
        )
        dev(
            "Second delineation: a perturbed mask (smooth random contour jitter, replicate.features.perturb) of a "
            f"label-free random {self.design['robustness']['subset_fraction']:.0%} of the patients (the paper: 60 of "
            "179 re-delineated) stands in for the paper's repeat delineation; ICC(2,1) > 0.8 on the training patients "
            "of every fit."
        )
        if self.deep_weights != "imagenet":
            dev(
                "Deep features from an UNTRAINED (randomly initialised, seeded) ResNet-18: ImageNet weights are not "
                "available on this machine. These are not the paper's pre-trained features."
            )
        size = counts["deep_input_size"]
        dev(
            "Deep features: 2-D crop (10% margin) of the axial slice with the largest tumour area, "
            f"{size}x{size} input, penultimate layer (512 per phase); null (constant) features are removed inside each "
            "training fit. The paper does not say how it fed the ROI to the 2-D network."
        )
        pool = f"; profile 'quick' pre-selects the {self.cfg.mrmr_pool} most relevant features before mRMR."
        dev(
            "mRMR (mrmr-selection, F-test relevance / correlation redundancy) keeps 25 features for both signatures "
            "(the paper states 25 for the DLRS only)" + (pool if self.cfg.mrmr_pool else ".")
        )
        for d in METHOD_DEVIATIONS:
            dev(d)
        if self.protocol == "worc":
            dev(
                "protocol='worc': 'cv' AUCs are the mean over random stratified 80/20 splits (corrected resampled "
                "t-test CI); the whole pipeline, ICC filter and ComBat included, is refitted on each training split."
            )
        return self.finish_deviations()

    def provenance(self):
        """Write results.json with the data files' hashes, the run's settings and timings."""
        return self.finish(self.cohort.meta.get("files_sha256"), n_features_per_phase=self.imf.info["n_hcr"])


PUBLIC_DEVIATIONS = [
    "Cohort: the 51 TCIA/IBSI extremity soft-tissue sarcoma patients (24 with distant metastasis, 47%) replace the "
    "paper's 179 retroperitoneal leiomyosarcomas (63 MDM, 35%) from two centres.",
    "Imaging: one non-contrast CT (of the PET/CT) replaces the three CECT phases (arterial, venous, delayed); the RS "
    "and DLRS use 1,834 hand-crafted + 512 deep features of that one CT instead of 5,502 + 1,536.",
    "Outcome: any distant metastasis in TCIA's outcome table ('Mets - ...'; 19 of 24 lung), metachronous or not; "
    "DMFS runs from diagnosis, not surgery, censored at the last follow-up.",
    "No external validation cohort: protocol='paper' reports {repeats}x{folds}-fold repeated stratified CV (the whole "
    "pipeline refitted in every fold) as 'validation', and the apparent performance of the model fitted on all 51 "
    "patients as 'training'. The validation AUC is the mean test-fold AUC with the corrected resampled t-test CI (its "
    "SE sets the resolution); the AUC of the repeat-averaged out-of-fold prediction is a labelled secondary. "
    "Threshold metrics, DeLong tests and the DMFS groups use the repeat-averaged out-of-fold probabilities (DeLong "
    "treats them as one set of predictions).",
    "DMFS: the event (any distant metastasis) is the classification label itself, so the Kaplan-Meier split and the "
    "log-rank test restate the AUC; they are shown as the paper shows them, not as separate evidence.",
    "Clinical candidates: age, sex, grade (not in the paper; 3 missing, imputed with the training-fold median inside "
    "the model) and tumour size > 10 cm measured on the CT mask (maximum 3-D diameter); Ki-67, N stage and the CECT "
    "semantic features are not available.",
    "One centre: no ComBat.",
]
TWIN_DEVIATIONS = [
    "Synthetic twin: its images, effect sizes and clinical associations are ours (Table 1's class-conditional "
    "frequencies of the training set, used for both centres, so the twin's clinical model does not collapse in the "
    "external set as the paper's did); nothing on the twin is compared with the paper's numbers.",
    "Twin DMFS: Weibull times whose hazard depends on the MDM label (hazard ratio 20), censored at a random "
    "follow-up: some non-MDM patients have events and some MDM patients are censored.",
]
METHOD_DEVIATIONS = [
    "The RS and DLRS scores are the LASSO models' own linear predictors (probability = logistic of the score); the "
    "paper's Discussion also mentions a KNN classifier, which its Methods and formula do not use.",
    "'LASSO logistic regression' (the paper's words) is run as an L1-penalised logistic regression; the paper's "
    "printed DLR-score, though, has intercept 0.39669421487603296 = 48/121, the training prevalence, as a "
    "least-squares LASSO on the 0/1 label with centred features would give: the paper may have fitted that instead.",
    "Clinical model: univariate P < 0.05 -> multivariable, P < 0.05 kept (the paper's thresholds are not stated; "
    "Table 2 fits 0.05), among the clinical candidates only; Table 2 is also shown with the DLR-score entered.",
    "Cut-off 0.5 on predicted probabilities for SPE/NPV/ACC/SEN/PPV and for the DMFS risk groups (not stated in the "
    "paper).",
]
