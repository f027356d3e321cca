"""The steps the two deep-learning-radiomics-nomogram chapters share (``sts``: Liang 2022; ``rls``: Tian 2024).

A chapter notebook makes one :class:`DLRNChapter` (the chapter's subclass in :mod:`replicate.pipelines.sts` or
:mod:`replicate.pipelines.rls`) from its context and calls its steps in order: load the cohort, extract the
image features, build the model inputs, fit and score, then the tables and figures. The object keeps what the
steps share (``table``, ``X``, ``y``, ``scores``, ``fitted``, ``cv`` ...) so a teacher can look at any of it in a
cell. The ``data`` (public / synthetic) and ``protocol`` (paper / worc) branching lives here, not in the cells.
The models themselves are :class:`replicate.dlrn.DLRNModel`.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
from IPython.display import display

from .. import dlrn, plots
from ..clinical import univariate_multivariate
from ..null import check_centred
from ..null import load as load_null
from ..stats import decision_curve, hosmer_lemeshow

COHORTS = ("training", "validation")
DAYS_PER_MONTH = 30.4375
CV_COLUMNS = ["mean", "low", "high", "se", "per_repeat", "pooled", "pooled_low", "pooled_high"]


def notebook_defaults(max_colwidth: int = 80, max_rows: int | None = None) -> None:
    """Silence the warnings third-party libraries print on every fit and widen pandas' display for a page."""
    for category in (UserWarning, RuntimeWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    pd.set_option("display.width", 200, "display.max_columns", 30, "display.max_colwidth", max_colwidth)
    if max_rows:
        pd.set_option("display.max_rows", max_rows)


def split_text(table: pd.DataFrame) -> str:
    """ " (n training + m external)" for a cohort with a ``split`` column, else ""."""
    if "split" not in table:
        return ""
    return f" ({(table['split'] == 'training').sum()} training + {(table['split'] == 'validation').sum()} external)"


def centres_text(table: pd.DataFrame) -> str:
    """Patients per centre, "TCIA (one collection): n" for a cohort without a ``centre`` column."""
    centres = (
        table["centre"].value_counts().sort_index().to_dict()
        if "centre" in table
        else {"TCIA (one collection)": len(table)}
    )
    return ", ".join(f"{k}: {v}" for k, v in centres.items())


def validation_text(data: str, protocol: str, counts: dict, external: str) -> str:
    """What plays the paper's validation set here: the twin's external centre(s), repeated CV or random splits."""
    if protocol != "paper":
        return f"{counts['worc_splits']} random stratified 80/20 splits"
    if data == "synthetic":
        return external
    return f"{counts['cv_repeats']}×{counts['cv_folds']}-fold stratified CV (out-of-fold)"


def risk_source(cohort: str, cross_validated: bool) -> str:
    """Where a cohort's risk scores come from (shown beside every survival and DeLong result)."""
    if not cross_validated:
        return cohort
    return "apparent: the model fitted on these patients" if cohort == "training" else "out-of-fold (repeat-averaged)"


def lasso_figure(coef: pd.Series, colours: list[str], labels: list[str], title: str, height: float = 0.35):
    """Horizontal bars of a LASSO signature's non-zero coefficients (one colour per feature source)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, height * len(coef) + 1.2))
    ax.barh(range(len(coef)), coef.to_numpy(), color=colours)
    ax.set_yticks(range(len(coef)), labels, fontsize=7)
    ax.set_xlabel("LASSO coefficient (z-scored features)")
    ax.set_title(title)
    plt.close(fig)
    return fig


def paper_protocol(step):
    """A step on the fitted model and its two cohorts (Table 2, Table 3, figures, survival): protocol 'paper' only;
    under 'worc' the random splits keep only their AUCs, and the step says so instead of running."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        if self.fitted is None:
            print(f"{step.__name__}: not under protocol={self.protocol!r} (the random splits keep only their AUCs)")
            return None
        return step(self, *args, **kwargs)

    return wrapper


class DLRNChapter:
    """One run of a DLRN chapter: its parameters, data, features, fits and scores, and the steps on them.

    A subclass sets the paper's parts: ``load_cohort``, ``gap_table``, the models of Table 3 (``models``), the
    twin's cohort descriptions, the survival end point and the deviations.
    """

    chapter = ""
    backbone = ""  # the paper's CNN, e.g. "ResNet34"
    deep_models = ""  # the models that rest on the deep features, for the untrained-weights warning
    models: list[str] = []  # Table 3's models, in its order
    twin_descriptions = {"training": "", "validation": ""}
    risk_label = ""  # the nomogram's probability axis
    worc_heads = "all"  # the heads fitted on every random split (see DLRNConfig.heads)

    def __init__(self, ctx):
        self.ctx = ctx
        self.spec, self.counts, self.results = ctx.spec, ctx.counts, ctx.results
        self.design = ctx.spec.design
        self.data, self.protocol, self.seed = ctx.data, ctx.protocol, ctx.seed
        self.n_jobs = ctx.extra_params.get("n_jobs", 1)
        self.cfg = dlrn.DLRNConfig.from_spec(ctx.spec, ctx.counts)
        self.scores: dict[str, pd.DataFrame] = {}
        self.ys: dict[str, pd.Series] = {}
        self.fitted = self.cv = self.cv_summary = None
        self.split_infos: list = []

    def describe(self) -> None:
        """Print the run's parameters and profile counts."""
        c = self.ctx
        print(f"data={c.data}  profile={c.profile}  protocol={c.protocol}  null_labels={c.null_labels}  seed={c.seed}")
        print("profile counts:", self.counts)

    # -- data and features
    @property
    def table(self) -> pd.DataFrame:
        """The cohort's patient table (clinical columns, outcome, split, centre, survival)."""
        return self.cohort.table

    def synthetic_cohort(self):
        """The chapter's synthetic twin with the run's seed, effect size and size."""
        from ..data.synthetic import make_cohort

        p = self.ctx.extra_params
        return make_cohort(
            self.chapter, seed=self.seed, effect_size=p.get("effect_size", 1.0), n_patients=p.get("n_patients")
        )

    def show_failures(self) -> None:
        """List the patients the cohort loader could not use (nothing vanishes silently)."""
        if self.cohort.failures is not None and len(self.cohort.failures):
            print("patients that could not be used:")
            display(self.cohort.failures)

    def extract_features(self, perturb_ids) -> pd.DataFrame:
        """Hand-crafted (PyRadiomics, also on the perturbed masks of ``perturb_ids``) and deep features of every
        patient (cached); patients whose extraction failed are recorded as cohort failures. Returns the counts."""
        deep = self.design["features"]["deep"]
        self.perturb_ids = perturb_ids
        self.imf = imf = dlrn.extract_image_features(
            self.cohort,
            self.modalities,
            params=self.design["features"]["hcr"]["params"],
            image_types=self.counts["radiomics_image_types"],
            deep=dict(
                backbone=deep["backbone"],
                layer=deep["layer"],
                size=self.counts["deep_input_size"],
                crop_margin=deep["crop_margin"],
                slices=deep["slices"],
            ),
            perturb_ids=perturb_ids,
            seed=self.seed,
            n_jobs=self.n_jobs,
        )
        for pid, stage, reason in imf.failures.itertuples(index=False):
            self.cohort.add_failure(pid, stage, reason)
        self.ids = list(imf.features.index)
        self.deep_weights = imf.info["weights"]
        self.results.declare("untrained_backbone", self.deep_weights != "imagenet")  # named by the spec's rules
        return pd.DataFrame(
            {
                "hand-crafted (HCR)": imf.info["n_hcr"],
                f"deep ({self.backbone})": imf.info["n_deep"],
                "deep features constant (null) on all patients": imf.info["deep_null"],
            }
        ).T

    def report_extraction(self) -> None:
        """How many patients have features and were re-segmented, and whether the CNN was pre-trained."""
        info = self.imf.info
        print(
            f"patients with features: {len(self.ids)} of {len(self.table)}; re-segmented (perturbed) for the ICC: "
            f"{info['n_perturbed_patients']}; extraction seconds: {info['seconds']}"
        )
        if info["perturb_failures"]:
            print("no re-extraction (these patients keep their features but are left out of the ICC):")
            display(pd.DataFrame(info["perturb_failures"]))
        print(f"\nDEEP FEATURE WEIGHTS: {self.deep_weights}")
        if self.deep_weights != "imagenet":
            print(
                "ImageNet weights are not available on this machine: the deep features below come from a randomly "
                f"initialised (seeded) {self.backbone}. They are NOT the pre-trained features of the paper, and "
                f"every {self.deep_models} number in this chapter must be read that way."
            )

    def build_inputs(self, label: str) -> pd.DataFrame:
        """The model inputs: clinical candidates (numeric), the outcome (permuted when ``null_labels``), image
        features (ComBat on all patients for the twin's external protocol, as the paper did) and the in-fold
        ComBat batches for the twin's random splits. Returns the clinical candidates."""
        table, ids = self.table, self.ids
        clin_map = self.design["clinical"]["columns"][self.data]
        self.clinical = pd.DataFrame(
            {name: pd.to_numeric(table.loc[ids, col], errors="coerce") for name, col in clin_map.items()}
        )
        self.y_true = table.loc[ids, label].astype(int)
        self.y = self.ctx.labels(self.y_true)
        features = self.imf.features
        if self.data == "synthetic" and self.protocol == "paper":
            # the paper's training set is one centre, so (as in the paper) ComBat is fitted on all patients'
            # features, without labels
            features = dlrn.combat_all(features, table["centre"])
        self.X = pd.concat([features, self.clinical], axis=1)
        self.sig_cols = {s: self.imf.columns(src) for s, src in self.cfg.signatures.items()}
        self.batch = table["centre"] if (self.data == "synthetic" and self.protocol == "worc") else None
        print("clinical candidates (missing values):", self.clinical.isna().sum().to_dict())
        return self.clinical.describe().T.round(2)

    def describe_outcome(self) -> None:
        """Positives, whether the labels are permuted, and the signatures' sizes."""
        y = self.y
        permuted = "  (labels PERMUTED: null_labels=True)" if self.ctx.null_labels else ""
        print(f"outcome: {int(y.sum())} / {len(y)} positive" + permuted)
        print("signatures:", {s: len(c) for s, c in self.sig_cols.items()}, " clinical:", list(self.clinical.columns))

    def model_kwargs(self, heads: str) -> dict:
        """Chapter-specific keyword arguments of :class:`replicate.dlrn.DLRNModel`."""
        return {}

    def model_factory(self, heads: str = "all"):
        """A factory of unfitted DLRN models (a fresh one for every fold or split)."""
        kwargs = self.model_kwargs(heads)
        return lambda: dlrn.DLRNModel(
            self.cfg,
            self.sig_cols,
            list(self.clinical.columns),
            perturbed=self.imf.perturbed,
            batch=self.batch,
            seed=self.seed,
            **kwargs,
        )

    # -- fit and score
    def rename_scores(self, scores: pd.DataFrame) -> pd.DataFrame:
        """The chapter's names for the models' score columns (identity by default)."""
        return scores

    def cv_models(self) -> tuple[list[str], dict | None]:
        """The models whose repeated-CV AUCs are recorded, and a rename of score columns."""
        return self.models, None

    def worc_tables(self, split_aucs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The per-model summary of the random splits to show, and the rows to record and plot."""
        worc = dlrn.summarise_split_aucs(split_aucs)
        return worc, worc

    def fit_and_score(self):
        """Fit and score every model as the protocol and the data allow: the twin's external centre(s)
        (``paper``, synthetic), repeated stratified CV plus the apparent fit (``paper``, public: no external
        cohort exists) or random stratified splits (``worc``). Records the cohorts and the CV / split AUCs and
        returns the AUC summary to show."""
        if self.protocol == "worc":
            return self._fit_random_splits()
        if self.data == "synthetic":
            return self._fit_external()
        return self._fit_cv()

    def _add_cohort(self, name: str, ids, description: str) -> None:
        self.results.add_cohort(
            name, len(ids), int(self.y_true.loc[ids].sum()), source=self.cohort.source, description=description
        )

    def _fit_external(self) -> None:
        y, table = self.y, self.table
        tr = [i for i in self.ids if table.at[i, "split"] == "training"]
        te = [i for i in self.ids if table.at[i, "split"] == "validation"]
        self.fitted, s_tr, s_te = dlrn.fit_external(self.model_factory(), self.X, y, tr, te)
        self.scores = {"training": self.rename_scores(s_tr), "validation": self.rename_scores(s_te)}
        self.ys = {"training": y.loc[tr], "validation": y.loc[te]}
        for name, rows in (("training", tr), ("validation", te)):
            self._add_cohort(name, rows, self.twin_descriptions[name])
        return None

    def _fit_cv(self) -> pd.DataFrame:
        c, X, y = self.counts, self.X, self.y
        self.cv = cv = dlrn.repeated_cv(
            self.model_factory(),
            X,
            y,
            n_splits=c["cv_folds"],
            n_repeats=c["cv_repeats"],
            seed=self.ctx.child_seed(1),
            n_jobs=self.n_jobs,
        )
        self.fitted = self.model_factory()().fit(X, y)  # the apparent fit on every patient (the 'training' rows)
        self.scores = {
            "training": self.rename_scores(self.fitted.predict_scores(X)),
            "validation": self.rename_scores(cv.oof_frame()),
        }
        self.ys = {"training": y, "validation": y}
        self._add_cohort(
            "training", self.ids, "all patients, apparent (resubstitution) performance of the model fitted on them"
        )
        self._add_cohort(
            "validation",
            self.ids,
            f"{c['cv_repeats']}x{c['cv_folds']}-fold repeated stratified CV, the whole pipeline refitted in every "
            "fold (no external cohort exists): AUC = mean test-fold AUC (corrected resampled CI); other metrics on "
            "the out-of-fold probabilities averaged over the repeats",
        )
        models, rename = self.cv_models()
        self.cv_summary = dlrn.record_cv_aucs(self.results, cv, models, rename=rename)
        print(
            f"CV: {cv.n_repeats}x{cv.n_splits} folds in {cv.seconds} s. Headline: mean test-fold AUC with the "
            "corrected resampled 95% CI; secondary: AUC of the repeat-averaged out-of-fold prediction (DeLong CI)"
        )
        return self.cv_summary

    def _fit_random_splits(self) -> pd.DataFrame:
        c = self.counts
        split_aucs = dlrn.random_split_aucs(
            self.model_factory(self.worc_heads),
            self.X,
            self.y,
            n_splits=c["worc_splits"],
            test_size=c["worc_test_size"],
            seed=self.ctx.child_seed(2),
            n_jobs=self.n_jobs,
        )
        self.split_infos = split_aucs.attrs.get("fit_info", [])
        shown, recorded = self.worc_tables(split_aucs)
        test = c["worc_test_size"]
        self._add_cohort(
            "cv", self.ids, f"{c['worc_splits']} random stratified {round((1 - test) * 100)}/{round(test * 100)} splits"
        )
        for m, r in recorded.iterrows():
            self.results.add_metric(
                m,
                "cv",
                "AUC",
                r["mean_AUC"],
                (r["low"], r["high"]),
                note=f"mean over {int(r['n_splits'])} random splits, corrected resampled t-test CI",
            )
        fig = plots.bar_auc_plot(
            recorded.reset_index().rename(columns={"mean_AUC": "auc"}),
            f"Mean test AUC over {c['worc_splits']} random splits (corrected 95% CI)",
        )
        self.ctx.figure(fig, "worc_auc")
        return shown

    @property
    def cross_validated(self) -> bool:
        """True when 'validation' means out-of-fold predictions of the repeated CV (public cohort)."""
        return self.cv is not None

    # -- tables
    @paper_protocol
    def table2(self, score_name: str, signature: str | None = None):
        """Table 2: univariate logistic regression of every clinical candidate and the signature's score, then the
        multivariable model, on the training rows (the apparent score on the public cohort); records the ORs."""
        train_ids = list(self.ys["training"].index)
        t2 = self.clinical.loc[train_ids].copy()
        t2 = t2.fillna(t2.median())
        t2.insert(0, score_name, self.fitted.rad_score(self.X.loc[train_ids], signature).to_numpy())
        cfg = self.cfg
        sel = univariate_multivariate(
            t2, self.ys["training"], list(t2.columns), p_enter=cfg.p_enter, p_keep=cfg.p_keep, decimals=3
        )
        for _, r in sel.numeric.iterrows():
            var = str(r["variable"])
            if np.isfinite(r.get("uni_or", np.nan)):
                self.results.add_metric(
                    "Univariate logistic",
                    "training",
                    "OR",
                    r["uni_or"],
                    (r["uni_low"], r["uni_high"]),
                    variable=var,
                    p_value=float(r["uni_p"]),
                )
            if np.isfinite(r.get("multi_or", np.nan)):
                self.results.add_metric(
                    "Multivariate logistic",
                    "training",
                    "OR",
                    r["multi_or"],
                    (r["multi_low"], r["multi_high"]),
                    variable=var,
                    p_value=float(r["multi_p"]),
                )
        for note in sel.notes:
            print("note:", note)
        print(f"independent predictors with the {score_name} in the model:", sel.selected)
        return sel.table

    # -- figures
    @paper_protocol
    def roc_and_calibration(self) -> pd.DataFrame:
        """ROC curves of Table 3's models and the DLRN's calibration (bootstrap band) in both cohorts, with the
        Hosmer-Lemeshow test of every model (kept in ``results.extra``; a test that cannot run says why)."""
        import matplotlib.pyplot as plt

        ys, scores, models = self.ys, self.scores, self.models
        fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
        for ax, coh in zip(axes, COHORTS):
            plots.roc_plot({m: (ys[coh], scores[coh][m]) for m in models}, f"ROC, {coh}", ax=ax)
        plt.close(fig)
        self.ctx.figure(fig, "roc")
        fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
        hl = {}
        for ax, coh in zip(axes, COHORTS):
            plots.calibration_plot(
                {"DLRN": (ys[coh], scores[coh]["DLRN"])},
                f"DLRN calibration, {coh}",
                n_bins=5 if len(ys[coh]) < 100 else 10,
                n_boot=self.counts["n_boot"],
                seed=self.seed,
                ax=ax,
            )
            for m in models:
                try:
                    r = hosmer_lemeshow(ys[coh], scores[coh][m], groups=10)
                    hl[f"{m} / {coh}"] = {
                        "chi2": round(float(r.chi2), 3),
                        "df": int(r.df),
                        "p": round(float(r.p_value), 4),
                    }
                except (ValueError, AttributeError) as exc:
                    hl[f"{m} / {coh}"] = {"error": str(exc)}
        plt.close(fig)
        self.ctx.figure(fig, "calibration")
        self.results.extra["hosmer_lemeshow"] = hl
        return pd.DataFrame(hl).T

    @paper_protocol
    def decision_curves(self, cohorts=COHORTS) -> None:
        """Net-benefit decision curves of Table 3's models in each of ``cohorts``."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(cohorts), figsize=(6.5 * len(cohorts), 4.8), squeeze=False)
        for ax, coh in zip(axes[0], cohorts):
            dca = decision_curve(
                self.ys[coh], {m: self.scores[coh][m] for m in self.models}, thresholds=np.arange(0.01, 0.81, 0.01)
            )
            plots.decision_curve_plot(dca, f"Decision curves, {coh}", ax=ax)
        plt.close(fig)
        self.ctx.figure(fig, "decision_curve")

    @paper_protocol
    def nomogram(self) -> None:
        """The fitted DLRN drawn as a nomogram (the model fitted on the training rows)."""
        nom = self.fitted.nomogram_inputs()
        fig = plots.nomogram_plot(
            nom["coefficients"],
            nom["intercept"],
            nom["ranges"],
            "DLRN nomogram (fitted on the training rows)",
            prob_label=self.risk_label,
        )
        self.ctx.figure(fig, "nomogram")

    @paper_protocol
    def survival_curves(self, end_point: str, time: pd.Series, event: pd.Series) -> pd.DataFrame:
        """Kaplan-Meier curves of ``end_point`` by DLRN risk group (probability >= the classification cut-off) in
        both cohorts; the chapter's :meth:`survival_cohort` records its tests. Returns the per-cohort summary."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
        km = {}
        for ax, coh in zip(axes, COHORTS):
            pid = list(self.ys[coh].index)
            kind = risk_source(coh, self.cross_validated)
            sv = dlrn.survival_by_risk(
                time.loc[pid],
                event.loc[pid],
                self.scores[coh]["DLRN"].to_numpy(),
                self.cfg.cutoff,
                n_boot=self.counts["n_boot"],
                seed=self.seed,
                labels=self.risk_groups,
            )
            km[coh] = {
                "risk from": kind,
                **{k: v for k, v in sv.items() if k not in self.km_hidden},
                **dlrn.event_label_overlap(event.loc[pid], self.y_true.loc[pid]),
            }
            self.survival_cohort(coh, pid, kind, sv, km[coh], time, event)
            panel = (
                coh if not self.cross_validated else ("training: apparent fit" if coh == "training" else "out-of-fold")
            )
            title = f"{end_point} by DLRN risk group, {panel}"
            plots.km_plot(time.loc[pid], event.loc[pid], sv["groups"], title, xlabel="Months", ax=ax, at_risk=False)
        plt.close(fig)
        self.ctx.figure(fig, "kaplan_meier")
        self.results.extra["kaplan_meier"] = km
        o = km["validation"]
        print(
            f"Overlap of event and label: {o['events_in_label_positive']} of the {o['events']} {end_point} events "
            f"occur in the {o['label_positive']} patients with the label ({o['label_positive_without_event']} of "
            f"them without an event); {o['events_in_label_negative']} events in patients without it."
        )
        return pd.DataFrame(km).T

    risk_groups = ("low risk", "high risk")
    km_hidden: tuple[str, ...] = ("groups",)

    def survival_cohort(self, coh, pid, kind, sv, row, time, event) -> None:
        """Record one cohort's survival results (the chapter's end point and tests)."""
        raise NotImplementedError

    # -- the page's closing sections
    def proxy_lines(self) -> None:
        """In plain words, what each proxy pair of the public cohort shows (nothing is claimed on the twin)."""
        if self.data == "public":
            for line in dlrn.proxy_sentences(self.results.all_rows()):
                print("-", line)
        else:
            print("Synthetic twin: its effect sizes are ours; nothing on it is held against the paper.")

    def fit_infos(self) -> list[dict]:
        """What every fit of this run recorded (for the fallbacks it took)."""
        if self.protocol == "worc":
            return self.split_infos
        folds = [f["info"] for f in self.cv.fold_info] if self.cv is not None else []
        return folds + ([self.fitted.info_] if self.fitted is not None else [])

    def cohort_deviations(self, public: list[str], twin: list[str], centres: str, external: str) -> None:
        """The cohort's deviations (public proxy or twin; ``{repeats}``/``{folds}`` filled in) and, for the twin's
        external protocol, ComBat on all patients across the paper's ``centres``."""
        dev, counts = self.results.add_deviation, self.counts
        for d in public if self.data == "public" else twin:
            dev(d.format(folds=counts["cv_folds"], repeats=counts["cv_repeats"]))
        if self.data == "synthetic" and self.protocol == "paper":
            dev(
                "ComBat (neuroCombat, no covariates) fitted on all patients' image features without labels, as the "
                f"paper applied it across its {centres}; the training set is a single centre, so an in-fold ComBat "
                f"could not harmonise the {external}."
            )

    def finish_deviations(self) -> list[str]:
        """Add the model's method declarations and every fallback the fits actually took (none listed = none
        taken) to the deviations; returns them all, numbered on the page."""
        dev = self.results.add_deviation
        if self.ctx.null_labels:
            dev("null_labels=True: the outcome was randomly permuted before anything was learned (leakage probe).")
        for d in dlrn.method_declarations(self.model_factory()()):
            dev(d)
        for d in dlrn.fallback_deviations(self.fit_infos()):
            dev("Fallback taken: " + d)
        return [f"{i}. {d}" for i, d in enumerate(self.results.deviations, 1)]

    def finish(self, data_files_sha256, **provenance):
        """Write results.json with the run's provenance and print where it went."""
        imf = self.imf
        path = self.ctx.finish(
            data_files_sha256=data_files_sha256,
            deep_weights=self.deep_weights,
            radiomics_settings_hash=imf.info.get("radiomics_settings_hash"),
            feature_seconds=imf.info["seconds"],
            **provenance,
        )
        prov = self.results.provenance
        print({k: prov[k] for k in ("runtime_s", "deep_weights", "git_commit") if k in prov})
        files = prov.get("data_files_sha256")
        print(
            "data files:", f"{len(files)} files hashed (sha256 in results.json)" if isinstance(files, dict) else files
        )
        print("packages:", prov.get("packages"))
        print("written:", path)
        return path


def show_null_distribution(ctx, chapter: str) -> pd.DataFrame | None:
    """The stored null-label benchmark (``benchmarks/null_<chapter>.py``): the figure, each model's spread beside
    what one shuffle should show, the centring check and how the models' null AUCs correlate."""
    null_dist = load_null(chapter)
    if null_dist is None:
        print(
            "The null-distribution benchmark has not been run on this checkout: nothing is stored in "
            f"benchmarks/results/null_{chapter}.json (run `python benchmarks/null_{chapter}.py`)."
        )
        return None
    ctx.figure(plots.null_distribution_plot(null_dist), "null_distribution")
    ns = pd.DataFrame(null_dist.summary()).T[["n_seeds", "mean", "sd", "delong_sd", "tolerance", "min", "max"]]
    ns = ns.rename(columns={"delong_sd": "predicted SD (DeLong / corrected SE)", "tolerance": "3 SD / sqrt(seeds)"})
    display(ns.astype(float).round(3))
    off = check_centred(null_dist)
    seeds = null_dist.seeds
    print(
        f"stored result: {null_dist.generated_by}; {len(seeds)} seeds ({min(seeds)}-{max(seeds)}), "
        f"{null_dist.seconds / 60:.0f} min"
    )
    print(
        "centring check:",
        "every model's mean null AUC lies within 3 SD / sqrt(seeds) of 0.5"
        if not off
        else "OFF-CENTRE: " + ", ".join(f"{k} (mean {v['mean']:.3f})" for k, v in off.items()),
    )
    for note in null_dist.notes:
        print("note:", note)
    ctx.results.extra["null_distribution"] = {
        "generated_by": null_dist.generated_by,
        "n_seeds": len(seeds),
        "off_centre": sorted(off),
        "summary": ns.astype(float).round(4).to_dict(),
    }
    null_aucs = pd.DataFrame({m: v["aucs"] for m, v in null_dist.models.items() if "(" not in m})
    print("correlation of the headline models' null AUCs over the seeds:")
    return null_aucs.corr().round(2)
