"""Chapter `wdlps` (Yang et al. 2022): the steps its notebook calls, in the order it calls them.

`WdlpsRun` holds the chapter's state (the context, the twin, its feature sets, the fitted models) so each
notebook cell is one short call. The data branching (`data == "public"` adds the real-patient WORC Lipo arm)
and the protocol branching (`protocol == "paper"`: training CV + external validation; `"worc"`: random
80/20 splits of the pooled twin) live here, not in the cells. The paper-independent machinery (selection,
SVM, nomogram, CNN features, evaluation) is :mod:`replicate.deep_signatures`.
"""

from __future__ import annotations

import time
import warnings
import zlib

import numpy as np
import pandas as pd

from replicate import audit, plots
from replicate import deep_signatures as ds
from replicate.config import data_dir

REAL_MODEL = "WORC-T1 radiomics (real patients)"  # its own name: never paired with a model of the paper
REAL_ARM = "real patients (WORC Lipo, T1 features)"
DEEP_SEED = 0  # the seed of the untrained networks (the same for extraction and Grad-CAM)
CORRECTED_T = "corrected resampled t-test (Nadeau & Bengio 2003)"
TABLE2_MODELS = {  # Table 2 row -> the spec's model name
    "Age": "Age",
    "LDH": "LDH",
    "DL signature": "ResNet50-Multimodality",
    "Clinical model": "Clinical",
    "Clinical-DL model": "Clinical-DL nomogram",
}


def chance_verdict(cv_low: float, val_low: float, n_repeats: int, null_labels: bool) -> str:
    """Whether the real-patient arm beats chance, in words, from the lower 95 % bounds of its two AUCs.

    A non-finite cross-validated bound (one repeat gives no interval) counts as "cannot say".
    """
    cv_above, va_above = bool(np.isfinite(cv_low) and cv_low > 0.5), bool(val_low > 0.5)
    verdict = {
        (True, True): "better than chance in both estimates",
        (False, True): (
            f"better than chance on the hold-out; the cross-validated interval (from {n_repeats} repeats) is too "
            "wide to say"
        ),
        (True, False): "better than chance in cross-validation; the hold-out interval includes 0.5",
        (False, False): "no better than chance could be shown at this size",
    }[(cv_above, va_above)]
    if null_labels:
        verdict += " (this run permuted the diagnoses: chance is what it should show)"
    return verdict


def fallbacks_taken(evaluations: dict) -> list[str]:
    """One deviation line per fallback the fits of this run took, summed over the models that took it.

    ``evaluations`` maps a model name to a :class:`~replicate.deep_signatures.ModelEvaluation` (its
    ``fallbacks``: text -> number of fits that took it, ``n_fits``: the fits it made).
    """
    taken: dict[str, dict] = {}
    for name, ev in evaluations.items():
        for text, k in ev.fallbacks.items():
            t = taken.setdefault(text, {"fits": 0, "of": 0, "models": []})
            t["fits"] += k
            t["of"] += ev.n_fits
            t["models"].append(name)
    lines = []
    for text, t in taken.items():
        names = ", ".join(t["models"][:4]) + (f" and {len(t['models']) - 4} more" if len(t["models"]) > 4 else "")
        lines.append(f"Fallback taken in this run: {text} ({t['fits']} of {t['of']} fits of {names}).")
    return lines


def _ci_text(lo: float, hi: float) -> str:
    """An interval in words, or why there is none."""
    return f"{lo:.2f} to {hi:.2f}" if np.isfinite(lo) and np.isfinite(hi) else "no interval (one repeat)"


def _present(ids: list, X: pd.DataFrame) -> list:
    """The ids of ``ids`` that have a row in ``X`` (a model leaves out patients missing a modality)."""
    return [i for i in ids if i in X.index]


class WdlpsRun:
    """The state of one run of the chapter: every step is a method the notebook calls once, in order."""

    def __init__(self, ctx, *, n_jobs: int = 1):
        self.ctx, self.spec, self.counts, self.results = ctx, ctx.spec, ctx.counts, ctx.results
        self.data, self.protocol, self.null_labels, self.n_jobs = ctx.data, ctx.protocol, ctx.null_labels, n_jobs
        self.design = ctx.spec.design
        self.tw = " (twin)" if ctx.data == "public" else ""  # twin model names never collide with the paper's
        self.cache = data_dir() / "predictions" / "wdlps"
        self.timings: dict = {}
        self.threshold = float(self.design["evaluation"]["threshold"])
        self.ci_method = "wilson"
        self.real: dict = {}
        self.models: dict = {}  # name -> dict(X=..., make=..., meta=..., pert_hash=...)
        self.evals: dict = {}  # imaging models (paper protocol)
        self.other: dict = {}  # single variables, clinical model, nomograms (paper protocol)
        self.sig_paper = self.sig_free = None
        self.lipo = None

    # --- settings -------------------------------------------------------------------------------------------
    def seed(self, *keys) -> int:
        """A reproducible seed for a named step (crc32 of the names: stable across processes)."""
        return self.ctx.child_seed(*[zlib.crc32(str(k).encode()) for k in keys])

    @property
    def svm(self) -> dict:
        """The profile's `FTestRFESVM` settings (its random_state is the pipeline's seed)."""
        c = self.counts
        return dict(
            percentile=self.design["selection"]["percentile"],
            n_features_grid=c["n_features_grid"],
            C_grid=c["C_grid"],
            gamma_grid=c["gamma_grid"],
            inner_cv=c["inner_cv"],
        )

    def _cv(self, ev) -> dict:
        """Cross-validated performance (mean of repeats) at the chapter's cut-off and CI method."""
        return ds.cv_performance(ev, threshold=self.threshold, ci_method=self.ci_method)

    def _val(self, ev) -> dict:
        """Validation-cohort performance at the chapter's cut-off and CI method."""
        return ds.performance(ev.y_validation, ev.p_validation, threshold=self.threshold, ci_method=self.ci_method)

    # --- proxy gap and the paper's CI method ----------------------------------------------------------------
    def record_proxy_gap(self) -> pd.DataFrame:
        """Record the spec's real-patient proxy gap as deviations and return it as a table."""
        for line in self.spec.proxy["gap"]:
            self.results.add_deviation("Real-patient arm (proxy gap): " + line)
        return pd.DataFrame({"real-patient proxy gap": self.spec.proxy["gap"]})

    def choose_ci_method(self) -> pd.DataFrame:
        """Use the proportion-CI method that reproduces most of the paper's printed CIs (`audit.ci_method_table`)."""
        ci_table = audit.ci_method_table(self.spec)
        tally = ci_table["matches"].str.split(", ").explode().value_counts()
        self.ci_method = tally.index[0] if len(tally) else "wilson"
        explained = int(ci_table["matches"].str.contains(self.ci_method, regex=False).sum())
        print(
            f"{explained} of {len(ci_table)} printed proportion CIs are reproduced by '{self.ci_method}' "
            f"(all matches: {tally.to_dict()})"
        )
        design_ci = self.design["evaluation"]["proportion_ci"]
        if self.ci_method != design_ci:
            self.results.add_deviation(
                f"The audit found {self.ci_method} as the paper's CI method (the spec's design says "
                f"{design_ci}); {self.ci_method} is used."
            )
        return ci_table.head(6)[["model", "cohort", "metric", "count", "printed CI", "wilson", "wilson-cc", "matches"]]

    # --- Part A: real patients ------------------------------------------------------------------------------
    def real_arm(self) -> None:
        """The handcrafted arm on WORC Lipo's T1 features (public data only): paper split or WORC's splits."""
        if self.data != "public":
            print("data='synthetic': the real-patient arm is not run (it needs the public WORC Lipo features).")
            return
        from replicate.data.loaders import load_cohort

        t0 = time.perf_counter()
        self.lipo = load_cohort("worc_lipo")
        X = self.lipo.meta["features"].astype(float)
        y = self.ctx.labels(self.lipo.table["label"].astype(int))
        print(
            f"WORC Lipo: {len(y)} patients ({int(y.sum())} WDLPS/ALT, {int((y == 0).sum())} lipoma), "
            f"{X.shape[1]} features; non-finite values: {int((~np.isfinite(X.to_numpy())).sum())}"
        )
        make = ds.signature_pipeline(seed=self.seed("real"), **self.svm)  # cloned for every fit
        if self.protocol == "paper":
            self._real_paper(make, X, y)
        else:
            self._real_worc(make, X, y)
        self.timings["real_arm_s"] = round(time.perf_counter() - t0, 1)
        self.results.add_deviation(
            f"Real-patient arm: recorded as '{REAL_MODEL}', under no model name of the paper: a T1-only "
            "model on WORC's features of one centre is not the paper's CT + T1WI + T2FS "
            "'Radiomics-Multimodality' model on an external cohort, and is not judged against it."
        )
        self.results.add_deviation("Real-patient arm: no ICC filter (no second segmentation of the WORC patients).")

    def _real_paper(self, make, X: pd.DataFrame, y: pd.Series) -> None:
        """Seeded stratified ~70/30 split: repeated CV on the training part, one model on the hold-out."""
        from sklearn.model_selection import train_test_split

        c, res = self.counts, self.results
        tr, va = train_test_split(
            list(y.index),
            test_size=self.spec.proxy["split"]["test_size"],
            stratify=y,
            random_state=self.seed("real split"),
        )
        tr, va = sorted(tr), sorted(va)
        key = {"model": "real hcr", "svm": self.svm, "seed": self.seed("real")}
        ev = ds.evaluate_model(
            REAL_MODEL,
            make,
            X.loc[tr],
            y.loc[tr],
            X.loc[va],
            y.loc[va],
            n_splits=c["outer_splits"],
            n_repeats=c["outer_repeats"],
            seed=self.seed("real cv"),
            n_jobs=self.n_jobs,
            cache_dir=self.cache,
            cache_key=key,
        )
        self.real["eval"] = ev
        res.add_cohort(
            "training",
            n=len(tr),
            n_positive=int(y.loc[tr].sum()),
            source="WORC Lipo (real patients), seeded stratified ~70% part; "
            f"{c['outer_repeats']} x {c['outer_splits']}-fold CV (per-repeat mean)",
        )
        res.add_cohort(
            "validation",
            n=len(va),
            n_positive=int(y.loc[va].sum()),
            source="WORC Lipo (real patients), seeded stratified ~30% hold-out of the same centre (not external)",
        )
        self.real["cv"] = self._cv(ev)
        ds.record_cv_performance(res, REAL_MODEL, self.real["cv"], arm=REAL_ARM)
        self.real["val"] = self._val(ev)
        ds.record_performance(res, REAL_MODEL, "validation", self.real["val"], arm=REAL_ARM)
        final = ev.model.steps[-1][1]
        print(f"training {len(tr)} / validation {len(va)}; {'cached' if ev.cached else f'{ev.seconds:.0f} s'}")
        print(
            f"final model: {len(final.prefiltered_features_)} features after the F-test, "
            f"{final.best_params_['n_features']} after RFE {final.selected_features_}; "
            f"C = {final.best_params_['C']}, gamma = {final.best_params_['gamma']}"
        )

    def _record_split_auc(self, name: str, df: pd.DataFrame, arm: str) -> pd.Series:
        """Record a model's mean AUC over random splits (cohort `cv`, corrected resampled t-test CI)."""
        from replicate.stats import corrected_se
        from replicate.validation import summarise_splits

        s = summarise_splits(df).loc["AUC"]
        self.results.add_metric(
            name,
            "cv",
            "AUC",
            s["mean"],
            (s["low"], s["high"]),
            n_splits=int(s["n_splits"]),
            se=corrected_se(df["AUC"], df["n_train"].mean(), df["n_test"].mean()),
            ci_method=CORRECTED_T,
            arm=arm,
        )
        return s

    def _real_worc(self, make, X: pd.DataFrame, y: pd.Series) -> None:
        """WORC's own random 80/20 splits of WORC Lipo: mean AUC with the corrected resampled t-test CI."""
        from replicate.data.loaders import load_worc_splits
        from replicate.validation import evaluate_splits

        pos = {pid: i for i, pid in enumerate(y.index)}
        splits = [
            ([pos[i] for i in tr], [pos[i] for i in te]) for tr, te in load_worc_splits()[: self.counts["n_splits"]]
        ]
        df = evaluate_splits(make, X, y, splits, metrics=("AUC",), n_jobs=self.n_jobs)
        self.results.add_cohort(
            "cv",
            n=len(y),
            n_positive=int(y.sum()),
            source="WORC Lipo (real patients), WORC's own random 80/20 splits",
            n_splits=len(splits),
        )
        s = self._record_split_auc(REAL_MODEL, df, REAL_ARM)
        self.real["worc"] = s
        print(
            f"{REAL_MODEL} on WORC's {len(splits)} splits: mean AUC {s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}]"
        )

    def real_arm_text(self) -> str | None:
        """What the real-patient arm shows and cannot show, in words (Markdown); None where it did not run."""
        if "eval" not in self.real:
            return None
        from replicate.spec import load_spec

        alt = load_spec("alt")
        c1 = {m: alt.find_reported(m, "cv", "AUC") for m in ("Imaging model", "Volume model")}
        ev = self.real["eval"]
        a, v = self.real["cv"]["AUC"], self.real["val"]["AUC"]
        n_tr, n_va = len(ev.y_train), len(ev.y_validation)
        chosen = ev.model.steps[-1][1].selected_features_
        verdict = chance_verdict(a["low"], v[1], a["n_repeats"], self.null_labels)
        im, vol = c1["Imaging model"], c1["Volume model"]
        return (
            f"**What it shows.** In {n_tr + n_va} real patients with an MDM2-confirmed diagnosis, the paper's "
            f"selection and SVM recipe applied to T1 MRI radiomics separates well-differentiated liposarcoma (ALT) "
            f"from lipoma "
            f"{verdict}: cross-validated AUC **{a['mean']:.2f}** (95 % CI {_ci_text(a['low'], a['high'])}; "
            f"mean of {a['n_repeats']} repeats of {ev.n_splits}-fold CV on {n_tr} patients), and "
            f"**{v[0]:.2f}** (95 % CI {v[1]:.2f} to {v[2]:.2f}, DeLong) on the {n_va} held-out patients of the same "
            f"hospital. With about {n_va // 2} patients of each class in the hold-out, its interval is wide: it can "
            f"tell a useful model from a coin toss, not an AUC of 0.75 from one of 0.85. The model fitted on all "
            f"{n_tr} training patients keeps {len(chosen)} feature(s): {', '.join(f'`{c}`' for c in chosen)}.\n\n"
            f"**What it cannot show.** Anything about the paper's numbers: it has no CT, no fat-suppressed T2, no CNN "
            f"features, no age or LDH, and no second hospital, so it says nothing about the RN-DL model (0.950), the "
            f"nomogram (0.942) or the paper's handcrafted multimodality model (0.594, external). Nor does it show "
            f"that a model transfers to another scanner: the hold-out comes from the same centre.\n\n"
            f"**Context, not a verdict.** On the same 115 patients' T1 features, WORC's own AutoML reached "
            f"AUC {im['value']:.2f} ({im['ci'][0]:.2f} to {im['ci'][1]:.2f}) and tumour volume alone did as well "
            f"({vol['value']:.2f}; Spaanderman et al. 2024, 100 random splits, the `alt` chapter): "
            f"much of what T1 radiomics picks up in these tumours may be their size."
        )

    # --- Part B: the synthetic twin -------------------------------------------------------------------------
    def make_twin(self, seed: int, effect_size: float, n_patients: int | None) -> pd.DataFrame:
        """Render the twin, split it by protocol and draw the re-segmented patients; a count per centre."""
        from replicate.data.synthetic import make_cohort

        key = "worc_n_patients" if self.protocol == "worc" else "n_patients"
        n_twin = n_patients if n_patients is not None else self.counts.get(key)
        self.twin = make_cohort("wdlps", seed=seed, effect_size=effect_size, n_patients=n_twin)
        tab = self.tab = self.twin.table
        self.y = self.ctx.labels(tab["wdlps"].astype(int))
        self.mods = list(self.design["modalities"])
        if self.protocol == "paper":
            self.train_ids = list(tab.index[tab["split"] == "training"])
            self.val_ids = list(tab.index[tab["split"] == "validation"])
        else:
            self.train_ids, self.val_ids = list(tab.index), []
        rng = np.random.default_rng(self.seed("resegmented"))
        self.n_reseg = int(round(self.design["segmentation"]["resegmented_fraction"] * len(self.train_ids)))
        self.reseg_ids = sorted(rng.choice(self.train_ids, size=self.n_reseg, replace=False).tolist())
        summary = tab.groupby(["split", "centre"])["wdlps"].agg(n="size", WDLPS="sum")
        summary["lipoma"] = summary["n"] - summary["WDLPS"]
        print(self.twin.source)
        which = "training " if self.protocol == "paper" else ""
        print(f"second segmentation (ICC) of {self.n_reseg} randomly chosen {which}patients")
        return summary

    def extract_features(self) -> pd.DataFrame:
        """Handcrafted (both segmentations) and CNN features of the profile's networks; a table of their sizes."""
        from replicate.features.radiomics import load_params

        t0, d, c = time.perf_counter(), self.design, self.counts
        names = c["backbones"] if self.protocol == "paper" else c["worc_backbones"]
        self.backbones = {name: d["deep"]["backbones"][name] for name in names}
        self.layer = d["deep"]["layer"]
        early = {k: d["deep"]["earlier_layers"][k] for k in c["earlier_layers"]}
        self.early = early if self.protocol == "paper" else {}
        params = load_params(d["handcrafted"]["params"])
        params["imageType"] = {k: v for k, v in params["imageType"].items() if k in c["hcr_image_types"]}
        params["featureClass"] = {k: v for k, v in params["featureClass"].items() if k in c["hcr_feature_classes"]}
        self.layers = {
            b: [self.layer] + (list(self.early.values()) if name == "ResNet50" else [])
            for name, b in self.backbones.items()
        }
        try:
            import torch

            torch.set_num_threads(1)  # one thread per process: torch threads thrash on shared cores
        except Exception:
            pass
        fs = self.fs = ds.extract_feature_sets(
            self.twin,
            self.mods,
            radiomics_params=params,
            resegment_ids=self.reseg_ids,
            backbones=list(self.backbones.values()),
            layers=self.layers,
            size=c["deep_size"],
            slices=d["deep"]["slices"],
            seed=DEEP_SEED,
            n_jobs=self.n_jobs,
        )
        self._record_feature_timings(time.perf_counter() - t0)
        self.weights = sorted(set(fs.info["weights"].values()))
        self.results.declare("untrained_backbone", self.weights != ["imagenet"])  # the spec's comparability rules
        if len(fs.failures):
            print("cases that could not be used:")
            print(fs.failures.to_string())
            for r in fs.failures.itertuples():
                self.results.add_deviation(f"Twin: {r.case_id} {r.modality} {r.source} failed: {r.reason}")
        print(f"deep weights: {self.weights}")
        return self._feature_table()

    def _record_feature_timings(self, seconds: float) -> None:
        """Extraction timings (total, handcrafted, CNNs, CNN worker seconds per network) and one line about them."""
        info, t = self.fs.info, self.timings
        t["twin_features_s"] = round(seconds, 1)
        t["twin_hcr_features_s"] = round(info["seconds_hcr"], 1)
        t["twin_deep_features_s"] = round(info["seconds_deep"], 1)
        per_cnn: dict = {}
        for key, sec in info["seconds_deep_tasks"].items():  # "<backbone> <layer> <modality>": seconds
            per_cnn[key.split()[0]] = round(per_cnn.get(key.split()[0], 0.0) + sec, 1)
        t["twin_deep_features_s_per_cnn"] = per_cnn
        print(
            f"feature extraction: {t['twin_features_s']:.0f} s (handcrafted {t['twin_hcr_features_s']:.0f} s, "
            f"CNNs {t['twin_deep_features_s']:.0f} s; cached features are only read); CNN seconds summed over "
            f"modalities and layers (worker time, in parallel): {per_cnn}"
        )

    def _feature_table(self) -> pd.DataFrame:
        """Features per patient and patients per feature set."""
        fs = self.fs
        rows = [
            {
                "features": f"handcrafted {m}",
                "per patient": fs.hcr[m].shape[1],
                "patients": fs.hcr[m].shape[0],
                "second segmentation": fs.hcr_resegmented[m].shape[0],
            }
            for m in self.mods
        ]
        rows += [
            {
                "features": f"{name} {m} ({layer})",
                "per patient": fs.deep[(b, layer, m)].shape[1],
                "patients": fs.deep[(b, layer, m)].shape[0],
                "weights": fs.info["weights"][b],
            }
            for name, b in self.backbones.items()
            for layer in self.layers[b]
            for m in self.mods
        ]
        return pd.DataFrame(rows)

    def record_feature_deviations(self) -> dict:
        """Record how the CNNs and feature sets differ from the paper's; return the settings used."""
        d, c, fs, add = self.design, self.counts, self.fs, self.results.add_deviation
        profile = self.ctx.profile
        if any("untrained" in w for w in self.weights):
            add(
                "Twin: the six CNNs run UNTRAINED (random seeded weights): ImageNet weights are not "
                "available on this machine, so no deep number here is an ImageNet-pretrained result."
            )
        if c["deep_size"] != d["deep"]["size"]:
            add(
                f"profile={profile}: CNN input {c['deep_size']} x {c['deep_size']} instead of "
                f"{d['deep']['size']} x {d['deep']['size']}."
            )
        n_hcr = fs.info["n_hcr_features"][self.mods[0]]
        if n_hcr != d["handcrafted"]["n_per_modality"]:
            add(
                f"profile={profile}: handcrafted features from {c['hcr_image_types']} images, "
                f"classes {c['hcr_feature_classes']} only ({n_hcr} per "
                f"modality instead of {d['handcrafted']['n_per_modality']})."
            )
        if set(self.backbones) != set(d["deep"]["backbones"]):
            add(f"profile={profile}, protocol={self.protocol}: CNNs {list(self.backbones)} only (paper: six).")
        return {
            "weights": fs.info["weights"],
            "layer": self.layer,
            "input size": c["deep_size"],
            "slice": d["deep"]["slices"],
            "handcrafted per modality": fs.info["n_hcr_features"],
        }

    # --- the imaging models ---------------------------------------------------------------------------------
    def _add_model(self, name: str, tables: dict, mods: list, meta: dict, perturbed: dict | None = None) -> None:
        """One imaging model: its joined feature table and an unfitted pipeline (cloned for every fit)."""
        X, missing = ds.combine_modalities(tables, mods)
        for text in missing:
            self.results.add_deviation(f"Twin model {name}: {text} (patient left out of this model)")
        pert = ds.combine_modalities(perturbed, mods)[0] if perturbed is not None else None
        seg = self.design["segmentation"]
        est = ds.signature_pipeline(
            perturbed=pert,
            icc_threshold=seg["icc_threshold"],
            icc_kind=seg["icc_kind"],
            icc_min_rows=self.icc_min_rows,
            seed=self.seed("model", name),
            **self.svm,
        )
        self.models[name] = {"X": X, "make": est, "meta": meta, "pert_hash": ds.frame_hash(pert)}

    def build_models(self) -> None:
        """The handcrafted and deep models of the protocol (paper: 2 + 5 per CNN + earlier ResNet50 layers)."""
        sets, fs, paper = self.design["modality_sets"], self.fs, self.protocol == "paper"
        self.icc_min_rows = max(3, min(5, self.n_reseg // 2))  # fewest re-segmented rows an ICC is computed from
        for s in self.design["handcrafted_sets"] if paper else ["Multimodality"]:
            meta = {"features": "handcrafted", "set": s}
            self._add_model(f"Radiomics-{s}", fs.hcr, sets[s], meta, perturbed=fs.hcr_resegmented)
        self.deep_sets = list(sets) if paper else ["Multimodality"]
        for cnn, b in self.backbones.items():
            tables = {m: fs.deep[(b, self.layer, m)] for m in self.mods}
            for s in self.deep_sets:
                self._add_model(f"{cnn}-{s}", tables, sets[s], {"features": cnn, "set": s})
        for tag, layer in self.early.items():
            tables = {m: fs.deep[(self.backbones["ResNet50"], layer, m)] for m in self.mods}
            meta = {"features": f"ResNet50 {tag} ({layer})", "set": "Multimodality"}
            self._add_model(f"ResNet50-Multimodality [{tag}]", tables, sets["Multimodality"], meta)
        print(f"{len(self.models)} imaging models:", ", ".join(self.models))

    def evaluate_models(self) -> None:
        """Paper protocol: every imaging model by repeated CV on the training centre + the external centre."""
        if self.protocol != "paper":
            return
        t0, c = time.perf_counter(), self.counts
        for name, mdl in self.models.items():
            X = mdl["X"]
            tr, va = _present(self.train_ids, X), _present(self.val_ids, X)
            key = {
                "model": name,
                "svm": self.svm,
                "perturbed": mdl["pert_hash"],
                "seed": self.seed("model", name),
                "icc": self.design["segmentation"],
            }
            ev = self.evals[name] = ds.evaluate_model(
                name,
                mdl["make"],
                X.loc[tr],
                self.y.loc[tr],
                X.loc[va],
                self.y.loc[va],
                n_splits=c["outer_splits"],
                n_repeats=c["outer_repeats"],
                seed=self.seed("cv", name),
                n_jobs=self.n_jobs,
                cache_dir=self.cache,
                cache_key=key,
            )
            print(
                f"{name:38s} CV AUC {ev.cv_auc_summary()['mean']:.3f}  validation AUC {ev.validation_auc:.3f}  "
                f"features {ev.model.steps[-1][1].best_params_['n_features']:2d}  "
                f"{'(cached)' if ev.cached else f'{ev.seconds:.0f} s'}"
            )
        self.timings["twin_imaging_models_s"] = round(time.perf_counter() - t0, 1)

    def rank_models(self) -> pd.DataFrame | None:
        """Record the AUCs of the models not recorded in full, choose the DL signature two ways, rank them all."""
        if self.protocol != "paper":
            return None
        meta = {}
        for name, ev in self.evals.items():
            meta[name] = {**self.models[name]["meta"], "n_selected": ev.model.steps[-1][1].best_params_["n_features"]}
            if not (name in ("Radiomics-MRI", "Radiomics-Multimodality") or name.startswith("ResNet50-Multimodality")):
                self._record_aucs(name, ev)  # the others are recorded in full later
        deep_only = {k: v for k, v in self.evals.items() if not k.startswith("Radiomics") and "[" not in k}
        self.ranked = ds.rank_models(deep_only, by="validation", meta=meta)
        ranked_cv = ds.rank_models(deep_only, by="cv", meta=meta)
        self.sig_paper, self.sig_free = self.ranked.iloc[0]["model"], ranked_cv.iloc[0]["model"]
        print(f"DL signature, the paper's way (best validation AUC): {self.sig_paper}")
        print(f"DL signature, leak-free (best training-CV AUC):      {self.sig_free}")
        hcr = ds.rank_models(
            {k: v for k, v in self.evals.items() if k.startswith("Radiomics")}, by="validation", meta=meta
        )
        cols = [
            "model",
            "features",
            "set",
            "n_selected",
            "cv_auc",
            "cv_auc_low",
            "cv_auc_high",
            "cv_auc_pooled",
            "apparent_auc",
            "validation_auc",
        ]
        table = pd.concat([self.ranked[cols], hcr[cols]], ignore_index=True)
        table.index = pd.RangeIndex(1, len(table) + 1, name="rank (validation AUC)")
        return table

    def _record_aucs(self, name: str, ev) -> None:
        """A model's training-CV AUC (mean of repeats, corrected CI) and validation AUC."""
        cv = ev.cv_auc_summary()
        ok = np.isfinite(cv["low"])
        self.results.add_metric(
            name + self.tw,
            "training",
            "AUC",
            cv["mean"],
            (cv["low"], cv["high"]) if ok else None,
            se=cv["se"] if ok else None,
            n_repeats=cv["n_repeats"],
            ci_method=cv["rule"],
            arm="synthetic twin",
        )
        auc, lo, hi = self._val(ev)["AUC"]
        self.results.add_metric(name + self.tw, "validation", "AUC", auc, (lo, hi), arm="synthetic twin")

    def deep_models_figure(self) -> None:
        """Heat maps of every deep model's training-CV and validation AUC (CNN x modality set)."""
        if self.protocol != "paper":
            return
        import matplotlib.pyplot as plt

        cols = [s for s in self.design["modality_sets"] if s in self.deep_sets]
        grids = {
            title: self.ranked.pivot_table(index="features", columns="set", values=v).reindex(
                index=list(self.backbones), columns=cols
            )
            for title, v in (("training (CV) AUC", "cv_auc"), ("validation AUC", "validation_auc"))
        }
        n_rows = len(grids["validation AUC"])
        fig, axes = plt.subplots(1, 2, figsize=(12, 0.5 * n_rows + 2.4), sharey=True, layout="constrained")
        for ax, (title, g) in zip(axes, grids.items()):
            im = ax.imshow(g.to_numpy(float), vmin=0.3, vmax=1.0, cmap="viridis")
            ax.set_xticks(range(g.shape[1]), g.columns, rotation=30, ha="right")
            ax.set_yticks(range(g.shape[0]), g.index)
            ax.tick_params(axis="y", labelleft=ax is axes[0])
            for (i, j), v in np.ndenumerate(g.to_numpy(float)):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.75 else "k", fontsize=8)
            ax.set_title(f"Twin deep models: {title}")
        fig.colorbar(im, ax=axes, shrink=0.8)
        self.ctx.figure(fig, "deep_models_auc")

    def earlier_layers_table(self) -> pd.DataFrame | None:
        """ResNet50-Multimodality on earlier blocks' features against the last block (Table S6)."""
        if self.protocol != "paper" or not self.early:
            print("earlier-layer comparison not run in this profile / protocol")
            return None
        rows = []
        for tag, layer in list(self.early.items()) + [("res5c", "layer4")]:
            last = tag == "res5c"
            ev = self.evals["ResNet50-Multimodality" if last else f"ResNet50-Multimodality [{tag}]"]
            X = self.fs.deep[(self.backbones["ResNet50"], self.layer if last else layer, self.mods[0])]
            rows.append(
                {
                    "layer": f"{tag} ({layer})",
                    "features per modality": X.shape[1],
                    "selected": ev.model.steps[-1][1].best_params_["n_features"],
                    "training CV AUC (mean of repeats)": ev.cv_auc_summary()["mean"],
                    "validation AUC": ev.validation_auc,
                }
            )
        return pd.DataFrame(rows)

    # --- clinical model and nomogram ------------------------------------------------------------------------
    @property
    def clinical(self) -> list[str]:
        """The twin's candidate clinical variables (Table 1 without tumour size)."""
        return list(self.design["clinical"]["candidates"])

    @property
    def clin_kw(self) -> dict:
        """The clinical selection's entry and keep P values."""
        return dict(p_enter=self.design["clinical"]["p_enter"], p_keep=self.design["clinical"]["p_keep"])

    def _nomogram(self, sig: str):
        """An unfitted nomogram of signature ``sig`` + the clinical variables, and its input table."""
        Xs = self.models[sig]["X"]
        make = ds.SignatureNomogram(
            signature=self.models[sig]["make"],
            signature_columns=list(Xs.columns),
            clinical=self.clinical,
            inner_cv=self.counts["nomogram_inner_cv"],
            random_state=self.seed("nomogram", sig),
            **self.clin_kw,
        )
        return make, pd.concat([Xs, self.tab[self.clinical]], axis=1, join="inner")

    def clinical_selection(self) -> pd.DataFrame | None:
        """The clinical variable selection on the whole training cohort (univariate -> multivariable)."""
        if self.protocol != "paper":
            return None
        from replicate.clinical import SeparationError, univariate_multivariate

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                sel = univariate_multivariate(
                    self.tab.loc[self.train_ids, self.clinical],
                    self.y.loc[self.train_ids],
                    self.clinical,
                    **self.clin_kw,
                )
        except SeparationError as e:
            print(f"training cohort: {e}; ClinicalLogit falls back to the best univariate variable")
            return None
        print("selected (training cohort):", sel.selected or "none (ClinicalLogit falls back to the best univariate)")
        return sel.table

    def evaluate_clinical_and_nomograms(self) -> None:
        """Age, LDH, the clinical model and the nomogram(s) (paper's and leak-free signature), paper protocol."""
        if self.protocol != "paper":
            return
        from replicate.clinical import ClinicalLogit

        t0, c, tr, va, y = time.perf_counter(), self.counts, self.train_ids, self.val_ids, self.y
        C_tr, C_va = self.tab.loc[tr, self.clinical], self.tab.loc[va, self.clinical]
        single = {
            "Age": (ClinicalLogit(candidates=["age"], p_enter=1.01, p_keep=1.01), ["age"]),
            "LDH": (ClinicalLogit(candidates=["ldh"], p_enter=1.01, p_keep=1.01), ["ldh"]),
            "Clinical": (ClinicalLogit(candidates=self.clinical, **self.clin_kw), self.clinical),
        }
        for name, (make, cols) in single.items():
            self.other[name] = ds.evaluate_model(
                name,
                make,
                C_tr[cols],
                y.loc[tr],
                C_va[cols],
                y.loc[va],
                n_splits=c["outer_splits"],
                n_repeats=c["outer_repeats"],
                seed=self.seed("cv", name),
                n_jobs=1,
            )
        for label, sig in (
            ("Clinical-DL nomogram", self.sig_paper),
            ("Clinical-DL nomogram (leak-free signature)", self.sig_free),
        ):
            if label != "Clinical-DL nomogram" and sig == self.sig_paper:
                continue
            make, Xn = self._nomogram(sig)
            key = {
                "model": label,
                "signature": sig,
                "svm": self.svm,
                "clin": self.clinical,
                "inner": c["nomogram_inner_cv"],
                "perturbed": self.models[sig]["pert_hash"],
            }
            self.other[label] = ds.evaluate_model(
                label,
                make,
                Xn.loc[tr],
                y.loc[tr],
                Xn.loc[va],
                y.loc[va],
                n_splits=c["outer_splits"],
                n_repeats=c["outer_repeats"],
                seed=self.seed("cv", label),
                n_jobs=self.n_jobs,
                cache_dir=self.cache,
                cache_key=key,
            )
        self.nomo = self.other["Clinical-DL nomogram"].model
        print(
            f"nomogram (signature {self.sig_paper}): clinical variables {self.nomo.clinical_selected_}; "
            f"{self.nomo.logit_.formula()}"
        )
        self.timings["twin_clinical_nomogram_s"] = round(time.perf_counter() - t0, 1)

    # --- Table 2 and the recorded metrics -------------------------------------------------------------------
    def table2(self) -> pd.DataFrame | None:
        """Table 2's rows: the paper's numbers (not for ImageNet-CNN rows while untrained) beside the twin's."""
        if self.protocol != "paper":
            return None
        twin_eval = {
            "Age": self.other["Age"],
            "LDH": self.other["LDH"],
            "DL signature": self.evals[self.sig_paper],
            "Clinical model": self.other["Clinical"],
            "Clinical-DL model": self.other["Clinical-DL nomogram"],
        }
        untrained = "untrained_backbone" in self.results.conditions
        rows = []
        for row, ev in twin_eval.items():
            cv, val = self._cv(ev), self._val(ev)
            for metric in ("AUC", "ACC", "SEN", "SPE", "PPV", "NPV"):
                c = cv[metric]
                for cohort, (v, lo, hi) in (
                    ("training", (c["mean"], c["low"], c["high"])),
                    ("validation", val[metric]),
                ):
                    rep = self.spec.find_reported(TABLE2_MODELS[row], cohort, metric)
                    if rep is None:
                        paper = None
                    elif untrained and row in ("DL signature", "Clinical-DL model"):
                        paper = "(ImageNet CNN: not shown)"
                    else:
                        ci = f" ({rep['ci'][0]:.3f}-{rep['ci'][1]:.3f})" if rep.get("ci") else ""
                        paper = f"{rep['value']:.3f}" + ci
                    twin = f"{v:.3f}" + (f" ({lo:.3f}-{hi:.3f})" if np.isfinite(lo) else "")
                    rows.append({"row": row, "cohort": cohort, "metric": metric, "paper": paper, "twin": twin})
        print(f"DL signature of the twin: {self.sig_paper}")
        return (
            pd.DataFrame(rows)
            .pivot_table(index=["row", "metric"], columns="cohort", values=["paper", "twin"], aggfunc="first")
            .reindex(list(twin_eval), level=0)
        )

    def record_twin_models(self) -> None:
        """Record in full the signature, handcrafted, clinical, single-variable and nomogram models; the cohorts."""
        if self.protocol != "paper":
            return
        ev, other, res = self.evals, self.other, self.results
        full = {k: other[k] for k in ("Age", "LDH", "Clinical", "Clinical-DL nomogram")}
        full.update({k: ev[k] for k in ev if k.startswith("Radiomics") or k.startswith("ResNet50-Multimodality")})
        if self.sig_paper != "ResNet50-Multimodality":
            full[f"DL signature ({self.sig_paper})"] = ev[self.sig_paper]
        if "Clinical-DL nomogram (leak-free signature)" in other:
            full["Clinical-DL nomogram (leak-free signature)"] = other["Clinical-DL nomogram (leak-free signature)"]
        for name, e in full.items():
            extra = {"arm": "synthetic twin"}
            if name == "Clinical-DL nomogram":
                extra["signature"] = self.sig_paper
                extra["signature_choice"] = "validation AUC (paper): validation numbers optimistic"
            ds.record_cv_performance(res, name + self.tw, self._cv(e), **extra)
            ds.record_performance(res, name + self.tw, "validation", self._val(e), **extra)
        tr, va, c = self.train_ids, self.val_ids, self.counts
        if self.data == "synthetic":
            res.add_cohort(
                "training",
                n=len(tr),
                n_positive=int(self.y.loc[tr].sum()),
                source=f"synthetic twin, training centre; {c['outer_repeats']} x "
                f"{c['outer_splits']}-fold CV (per-repeat mean)",
            )
            res.add_cohort(
                "validation",
                n=len(va),
                n_positive=int(self.y.loc[va].sum()),
                source="synthetic twin, external validation centre",
            )
        res.extra["twin_cohorts"] = {
            "training": {"n": len(tr), "n_positive": int(self.y.loc[tr].sum())},
            "validation": {"n": len(va), "n_positive": int(self.y.loc[va].sum())},
        }
        res.extra["twin_signature"] = {
            "paper_choice_by_validation_auc": self.sig_paper,
            "leak_free_choice_by_cv_auc": self.sig_free,
        }
        print(f"recorded {len(res.metrics)} metrics")

    # --- figures --------------------------------------------------------------------------------------------
    def _shown(self) -> dict:
        """The models the figures show."""
        return {
            "DL signature": self.evals[self.sig_paper],
            "Clinical": self.other["Clinical"],
            "Clinical-DL nomogram": self.other["Clinical-DL nomogram"],
            "Radiomics-Multimodality": self.evals["Radiomics-Multimodality"],
        }

    def _train_and_validation(self, plot, name: str, show: dict, **kw) -> None:
        """One figure: ``plot`` on the training OOF scores (left) and the validation scores (right)."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 5))
        plot(
            {k: (v.y_train, v.oof) for k, v in show.items()},
            title="Twin training (repeat-averaged out-of-fold)",
            ax=axes[0],
            **kw,
        )
        plot({k: (v.y_validation, v.p_validation) for k, v in show.items()}, title="Twin validation", ax=axes[1], **kw)
        self.ctx.figure(fig, name)

    def roc_pr_figures(self) -> None:
        """ROC and precision-recall curves, training (OOF) and validation (Fig. 3B, C)."""
        if self.protocol == "paper":
            self._train_and_validation(plots.roc_plot, "roc", self._shown())
            self._train_and_validation(plots.pr_plot, "precision_recall", self._shown())

    def calibration_and_decision_figures(self) -> None:
        """Calibration with bootstrap bands (Fig. 3D) and decision curves on the validation cohort (Fig. 3E)."""
        if self.protocol != "paper":
            return
        from replicate.stats import decision_curve

        show = self._shown()
        cal = {k: show[k] for k in ("DL signature", "Clinical-DL nomogram")}
        self._train_and_validation(
            plots.calibration_plot, "calibration", cal, n_boot=self.counts["n_boot"], seed=self.seed("cal")
        )
        yv = self.other["Clinical-DL nomogram"].y_validation
        dca = decision_curve(yv, {k: v.p_validation.loc[yv.index] for k, v in show.items()})
        self.ctx.figure(plots.decision_curve_plot(dca, title="Twin validation: decision curves"), "decision_curve")

    def nomogram_figure(self) -> None:
        """The fitted nomogram's points chart (Fig. 3A)."""
        if self.protocol != "paper":
            return
        from replicate.clinical import nomogram_inputs

        fig = plots.nomogram_plot(
            **nomogram_inputs(self.nomo.logit_),
            title=f"Twin clinical-DL nomogram ({self.sig_paper} signature)",
            prob_label="Probability of WDLPS",
        )
        self.ctx.figure(fig, "nomogram")

    def gradcam_figure(self) -> None:
        """Grad-CAM of the ResNet50-Multimodality signature for the most typical validation lipoma and WDLPS."""
        if self.protocol != "paper" or "ResNet50" not in self.backbones:
            return
        import matplotlib.pyplot as plt

        t0 = time.perf_counter()
        rn, Xr = self.evals["ResNet50-Multimodality"], self.models["ResNet50-Multimodality"]["X"]
        pv, yv = rn.p_validation, rn.y_validation
        examples = [pv[yv == 0].idxmin(), pv[yv == 1].idxmax()]  # the most typical lipoma and WDLPS
        n_m = len(self.mods)
        fig, axes = plt.subplots(len(examples), n_m, figsize=(3.3 * n_m, 3.4 * len(examples)))
        for i, pid in enumerate(examples):
            for j, m in enumerate(self.mods):
                self._gradcam_panel(
                    axes[i, j], rn.model, Xr.loc[pid], pid, m, f"{'WDLPS' if yv[pid] else 'lipoma'}, p={pv[pid]:.2f}"
                )
        fig.suptitle("Grad-CAM of the twin's ResNet50-Multimodality signature (UNTRAINED ResNet50)", fontsize=10)
        self.ctx.figure(fig, "gradcam")
        self.timings["gradcam_s"] = round(time.perf_counter() - t0, 1)

    def _gradcam_panel(self, ax, model, x: pd.Series, pid, modality: str, label: str) -> None:
        """One Grad-CAM panel: the tumour crop of ``pid`` in ``modality`` with the signature's evidence map."""
        from replicate.features.deep import tumour_crops

        case = next(c for c in self.twin.cases(modality) if c.case_id == pid)
        _, crop = tumour_crops(case, slices=self.design["deep"]["slices"])[0]
        cam, n_used, cls = ds.signature_gradcam(
            model,
            x,
            crop,
            modality,
            backbone=self.backbones["ResNet50"],
            layer=self.layer,
            seed=DEEP_SEED,
            size=self.counts["deep_size"],
        )
        ax.imshow(crop, cmap="gray")
        if n_used:
            ax.imshow(cam, cmap="jet", alpha=0.4, vmin=0, vmax=1)
        ax.set_title(
            f"{pid} ({label})\n{modality}: {n_used} signature feature(s); map of "
            f"{'WDLPS' if cls else 'lipoma'} evidence",
            fontsize=8,
        )
        ax.axis("off")

    # --- protocol "worc" ------------------------------------------------------------------------------------
    def worc_protocol(self) -> pd.DataFrame | None:
        """Every leak-free model refitted on each random 80/20 split of the pooled twin; mean AUC on cohort `cv`."""
        if self.protocol != "worc":
            return None
        from replicate.clinical import ClinicalLogit
        from replicate.validation import evaluate_splits, random_splits

        t0, tr = time.perf_counter(), self.train_ids
        yw = self.y.loc[tr]
        splits = random_splits(yw, n_splits=self.counts["n_splits"], test_size=0.2, seed=self.seed("worc splits"))
        todo = {name: (m["make"], m["X"].loc[tr]) for name, m in self.models.items()}
        todo["Clinical"] = (ClinicalLogit(candidates=self.clinical, **self.clin_kw), self.tab.loc[tr, self.clinical])
        if "ResNet50-Multimodality" in self.models:  # the paper's signature, fixed in advance
            make, Xn = self._nomogram("ResNet50-Multimodality")
            todo["Clinical-DL nomogram"] = (make, Xn.loc[tr])
        rows = []
        for name, (make, X) in todo.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                df = evaluate_splits(make, X, yw, splits, metrics=("AUC",), n_jobs=self.n_jobs)
            s = self._record_split_auc(name + self.tw, df, "synthetic twin")
            rows.append(
                {
                    "model": name + self.tw,
                    "mean AUC": s["mean"],
                    "low": s["low"],
                    "high": s["high"],
                    "splits": int(s["n_splits"]),
                }
            )
        if self.data == "synthetic":
            self.results.add_cohort(
                "cv",
                n=len(yw),
                n_positive=int(yw.sum()),
                n_splits=len(splits),
                source="synthetic twin (both centres pooled), random stratified 80/20 splits",
            )
        self.results.extra["twin_cohorts"] = {
            "cv": {"n": len(yw), "n_positive": int(yw.sum()), "n_splits": len(splits)}
        }
        self.timings["worc_protocol_s"] = round(time.perf_counter() - t0, 1)
        return pd.DataFrame(rows)

    # --- deviations and provenance --------------------------------------------------------------------------
    def record_deviations(self) -> list[str]:
        """Record every departure from the paper, the profile's and the fallbacks this run took; return them all."""
        c, add = self.counts, self.results.add_deviation
        add(
            "Training-cohort numbers are cross-validated: each metric is the mean over the "
            f"{c['outer_repeats']} repeats of the outer {c['outer_splits']}-fold CV of that "
            "repeat's out-of-fold value, with the corrected resampled t-test CI (the paper reports 'cross "
            "validation in the training cohort' without saying how folds were pooled); the AUC of the "
            "repeat-averaged probability is recorded only as a labelled secondary."
        )
        add(
            "Cut-off for accuracy, sensitivity, specificity, PPV and NPV: predicted probability >= 0.5, "
            "fixed before any data are seen (not stated in the paper); the probability's scale (Platt "
            "sigmoid, logistic regression) is fitted on training rows only, never on the cohort evaluated."
        )
        add(
            "Selection and tuning: the number of RFE features, C and gamma of the RBF-SVM are tuned "
            "together by the inner CV of every fit."
        )
        for rule in ds.FALLBACK_RULES:
            add("Where the paper is silent (our rule): " + rule + ".")
        add("C-index equals the AUC for a binary outcome; it is reported with the AUC's DeLong CI.")
        self._record_twin_deviations()
        if self.null_labels:
            add("null_labels=True: the outcome was permuted before anything was learned (leakage probe).")
        if c["outer_repeats"] < 10 or c["n_splits"] < 100:
            add(
                f"profile={self.ctx.profile}: {c['outer_repeats']} x {c['outer_splits']}-fold outer CV "
                f"(paper 10 x 5), inner CV {c['inner_cv']}-fold, {c['n_splits']} random splits "
                "under protocol='worc' (WORC: 100)."
            )
        every = {
            **({REAL_MODEL: self.real["eval"]} if "eval" in self.real else {}),
            **{k + self.tw: v for k, v in self.evals.items()},
            **{k + self.tw: v for k, v in self.other.items()},
        }
        for line in fallbacks_taken(every):
            add(line)
        return list(self.results.deviations)

    def _record_twin_deviations(self) -> None:
        """The twin's departures from the paper's design (features, segmentation, CNN input, clinical, effects)."""
        seg, add = self.design["segmentation"], self.results.add_deviation
        add(
            "Twin: modalities are joined side by side before the F-test (the paper selected MRI "
            "features first and added two CT features for the multimodality handcrafted model)."
        )
        add(
            "Twin: the second segmentation is the true mask with a seeded one-voxel contour jitter "
            f"on {seg['resegmented_fraction']:.0%} of the training patients; "
            f"ICC kind {seg['icc_kind']} (not stated)."
        )
        add(
            "Twin: CNN features from the largest-area axial slice of the tumour (the paper's 2-D input "
            "from a 3-D ROI is not described); volumes are coarse (3.5 x 3.5 x 8 mm) to keep "
            "extraction feasible on CPU."
        )
        add(
            "Twin: clinical candidates are Table 1's variables except tumour size (an imaging "
            "measurement); only age and LDH differ between the classes; the nomogram's signature "
            "score is out-of-fold on the training rows (the paper does not say)."
        )
        add(
            "Twin: the DL signature is chosen as in the paper by validation AUC, which makes its and "
            "the nomogram's validation numbers optimistic; the leak-free choice (training-CV AUC) is "
            "shown beside it."
        )
        add("Twin: image and clinical effect sizes are ours; no twin number is compared with the paper.")
        add(
            "Twin, CPU budget: the CNNs see one crop per tumour and modality (largest-area slice) at "
            f"{self.counts['deep_size']} x {self.counts['deep_size']} pixels, i.e. one forward pass per patient, "
            "modality and CNN (plus one per earlier ResNet50 layer); features are cached on the image "
            "and mask hashes, so a re-run with the same inputs only reads them."
        )
        if self.early:
            add(
                "Twin: ResNet50 earlier layers (Table S6) are the outputs of torchvision's residual "
                "stages layer1/layer2/layer3 (Keras res2c/res3d/res4f), global-average pooled."
            )

    def finish(self):
        """Write results.json with the data hashes, CNN weights, code version and step timings; its path."""
        hashes = {"twin": self.twin.meta["files_sha256"]}
        if self.lipo is not None:
            hashes["worc_lipo"] = self.lipo.meta["files_sha256"]
        weights = "; ".join(f"{k}: {v}" for k, v in self.fs.info["weights"].items())
        return self.ctx.finish(
            data_files_sha256=hashes,
            deep_weights=weights,
            deep_signatures_code=ds._code_version(),
            step_runtimes_s=self.timings,
        )
