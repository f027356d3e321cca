"""The ``us`` chapter's steps (ultrasound CRDL fusion of clinical, radiomics and deep features).

The notebook ``notebooks/us.md`` tells the story and calls these functions; the data branching (BUS-BRA
proxy or synthetic twin) and the protocol branching (``paper``: training -> external validation;
``worc``: random splits of the training cohort) live here. A step of the other protocol returns ``None``
(nothing is computed or shown). The models themselves are :mod:`replicate.fusion`'s.
"""

from __future__ import annotations

import time
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from .. import plots, stats
from ..fusion import CRDL_MODELS, external_validation, fallbacks_taken, fit_fusion_models, permute_within

COHORTS = ("training", "validation")


# ----------------------------------------------------------------------------- small helpers


def step_seed(ctx, *keys) -> int:
    """A reproducible seed for a named step: the chapter seed and the crc32 of each name (stable across
    processes, unlike ``hash``)."""
    return ctx.child_seed(*[zlib.crc32(str(k).encode()) for k in keys])


@contextmanager
def timed(timings: dict, key: str):
    """Record the wall time of the ``with`` block in ``timings[key]`` (seconds, one decimal)."""
    t0 = time.perf_counter()
    yield
    timings[key] = round(time.perf_counter() - t0, 1)


def model_kinds(design) -> tuple[dict, dict]:
    """``NAME``: :data:`~replicate.fusion.CRDL_MODELS` key -> the spec's model name; ``KIND``: model name ->
    single / pre / post."""
    name = dict(design["models"])
    return name, {name[k]: CRDL_MODELS[k][0] for k in name}


# ----------------------------------------------------------------------------- data


def load_cohort(data: str, counts, *, seed: int, n_patients=None, effect_size: float = 1.0):
    """The cohort and its label column: BUS-BRA (``data="public"``, label ``malignant``) or the synthetic
    twin (``n_patients`` or the profile's ``synthetic_n_patients``)."""
    if data == "public":
        from ..data.loaders import load_cohort as load

        return load("busbra"), "malignant"
    from ..data.synthetic import make_cohort

    n_twin = n_patients if n_patients is not None else counts["synthetic_n_patients"]
    cohort = make_cohort("us", seed=seed, effect_size=effect_size, n_patients=n_twin)
    return cohort, cohort.label


def class_counts(table: pd.DataFrame, label: str) -> pd.DataFrame:
    """Benign / malignant patients per split."""
    return table.groupby(["split", label]).size().unstack().rename(columns={0: "benign", 1: "malignant"})


def proxy_gap(ctx, table: pd.DataFrame, label: str) -> pd.DataFrame:
    """The paper's design beside this run's data (on BUS-BRA each proxy-gap line is also a deviation)."""
    paper, px, public = ctx.spec.cohorts, ctx.spec.proxy, ctx.data == "public"

    def cohort(split):
        rows = table.split == split
        return f"{rows.sum()} ({int(table.loc[rows, label].sum())} malignant)"

    gap = pd.DataFrame(
        {
            "paper": [
                f"{paper['training']['n']} (Hospital-1)",
                f"{paper['validation']['n']} (Hospital-2)",
                "soft-tissue tumours (superficial)",
                "grey-scale + colour Doppler",
                "age, gender, 5 semantic readings",
                "2 radiologists (Table 4)",
            ],
            "this run": [
                cohort("training"),
                cohort("validation"),
                px["tissue"] if public else "synthetic hypoechoic lesions",
                "grey-scale only" if public else "grey-scale + Doppler (Doppler not used by the models)",
                "image/mask stand-ins (4 measurements)" if public else "age + 5 semantic readings",
                "BI-RADS category (dataset)" if public else "none",
            ],
        },
        index=["training cohort", "external validation", "lesions", "images", "clinical / semantic", "radiologists"],
    )
    if public:
        for line in px["gap"]:
            ctx.results.add_deviation("Proxy gap: " + line)
    return gap


# ----------------------------------------------------------------------------- features


def record_failures(results, failures: pd.DataFrame) -> pd.DataFrame | None:
    """Record the patients an extractor left out (extra and one deviation each); the table, or ``None``."""
    if not len(failures):
        return None
    results.extra["failures"] = failures.to_dict(orient="records")
    for r in failures.itertuples():
        results.add_deviation(f"Patient {r.patient_id} left out ({r.stage}): {r.reason}")
    return failures


def record_feature_counts(results, inp) -> None:
    """The pipeline counts the paper states (never compared: the spec's comparability rules say so)."""
    results.add_metric("Radiomics features", "training", "n_features", inp.rad.n_features, variable="extracted per ROI")
    results.add_metric("DL features", "training", "n_features", inp.dl.n_features, variable="extracted per ROI")
    results.add_metric("Clinical", "training", "n_features", inp.clin.shape[1], variable="clinical predictors")
    results.add_metric(
        "Segmentation",
        "training",
        "n_patients",
        len(inp.rad_p.features),
        variable="re-segmented for ICC",
        note="perturbed masks, not a second reader",
    )


def icc_pass_lines(inp, rob) -> list[str]:
    """For the page only (label-free): per image block, how many features pass ICC > threshold on all the
    re-segmented patients."""
    from ..features.icc import icc as icc_values

    lines = []
    for name, ref, per in (
        ("radiomics", inp.rad.features, inp.rad_p.features),
        ("deep", inp.dl.features, inp.dl_p.features),
    ):
        ids = [i for i in per.index if i in ref.index]
        v = pd.Series(icc_values(ref.loc[ids], [per.loc[ids]], kind=rob["icc_kind"]))
        lines.append(
            f"{name}: {int((v > rob['icc_threshold']).sum())} / {len(v)} features with {rob['icc_kind']} > "
            f"{rob['icc_threshold']} on {len(ids)} re-segmented patients (perturbation: {rob['perturbation']})"
        )
    return lines


# ----------------------------------------------------------------------------- outcome and cohorts


def outcome(ctx, table: pd.DataFrame, label: str, ok) -> pd.Series:
    """The outcome of the patients with all features; with ``null_labels`` permuted within each cohort (the
    leakage probe: each cohort keeps its number of malignant lesions, so a null AUC is one at its size)."""
    y = table.loc[ok, label].astype(int)
    if ctx.null_labels:
        y = permute_within(y, table.loc[ok, "split"], seed=step_seed(ctx, "null labels"))
    return y


def split_ids(table: pd.DataFrame, ok) -> tuple[list, list]:
    """Training and external-validation patient ids among ``ok``."""
    return [i for i in ok if table.at[i, "split"] == "training"], [
        i for i in ok if table.at[i, "split"] == "validation"
    ]


# ----------------------------------------------------------------------------- protocol worc


def _one_split(k, a, b, Xtr, ytr, family):
    fm = fit_fusion_models(Xtr.iloc[a], ytr.iloc[a], **family)
    P = fm.predict_proba(Xtr.iloc[b])
    return [
        {"split": k, "model": m, "AUC": stats.auc_score(ytr.iloc[b], P[m]), "n_train": len(a), "n_test": len(b)}
        for m in P
    ]


def worc_protocol(ctx, X, y, tr, family, model_names, *, n_jobs: int = 1, timings=None) -> pd.DataFrame | None:
    """``protocol="worc"``: the family refitted on each of the profile's random stratified 80/20 splits of the
    training cohort; per model the mean held-out AUC with the corrected resampled t-test CI, recorded on
    cohort ``cv`` (and the bar figure); returns that summary (rounded for the page). ``None`` under another
    protocol."""
    if ctx.protocol != "worc":
        return None
    from ..parallel import map_tasks
    from ..validation import random_splits

    counts, timings = ctx.counts, {} if timings is None else timings
    Xtr, ytr = X.loc[tr], y.loc[tr]
    splits = random_splits(
        ytr, n_splits=counts["worc_splits"], test_size=counts["worc_test_size"], seed=step_seed(ctx, "worc splits")
    )
    tasks = [(k, a, b, Xtr, ytr, family) for k, (a, b) in enumerate(splits)]
    with timed(timings, "worc_s"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = map_tasks(_one_split, tasks, n_jobs=n_jobs, desc="random splits", unit="split")
    worc = pd.DataFrame([r for rr in rows for r in rr])
    n_train, n_test = worc["n_train"].mean(), worc["n_test"].mean()
    src = "BUS-BRA GE" if ctx.data == "public" else "synthetic twin"
    ctx.results.add_cohort(
        "cv",
        n=len(tr),
        n_positive=int(ytr.sum()),
        source=f"{src} training cohort, {len(splits)} random stratified 80/20 splits",
        n_splits=len(splits),
        n_train=int(n_train),
        n_test=int(n_test),
    )
    summary = []
    for m in model_names:
        v = worc.loc[worc.model == m, "AUC"].to_numpy()
        mean, lo, hi = stats.corrected_resampled_ttest_ci(v, n_train, n_test)
        ctx.results.add_metric(
            m,
            "cv",
            "AUC",
            mean,
            (lo, hi),
            se=stats.corrected_se(v, n_train, n_test),
            n_splits=len(v),
            ci_method="corrected resampled t-test (Nadeau & Bengio 2003)",
        )
        summary.append({"model": m, "auc": mean, "low": lo, "high": hi})
    summary = pd.DataFrame(summary)
    title = f"Mean AUC over {len(splits)} random splits (training cohort)"
    ctx.figure(plots.bar_auc_plot(summary, title=title), "worc_auc")
    print(f"{len(splits)} splits in {timings['worc_s']:.0f} s")
    return summary.round(3)


# ----------------------------------------------------------------------------- protocol paper


@dataclass
class PaperFit:
    """The ``paper`` protocol's fitted state: the external validation (``ev``), the outcome and the
    probabilities per cohort (training: cross-validated), the final models' fallbacks and, once
    :func:`operating_reports` ran, each (model, cohort)'s report."""

    ev: Any
    y_tr: pd.Series
    y_va: pd.Series
    cutoff: Any
    fallbacks: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)

    @property
    def family(self):
        return self.ev.family

    @property
    def P_tr(self) -> pd.DataFrame:
        return self.ev.proba["training"]

    @property
    def P_va(self) -> pd.DataFrame:
        return self.ev.proba["validation"]

    def cohorts(self):
        """``(name, y, probabilities)`` of the training (cross-validated) and external cohorts."""
        return (("training", self.y_tr, self.P_tr), ("validation", self.y_va, self.P_va))


def cutoff_rule(design):
    """The operating-point rule: the weighted Youden index with the spec's weight."""
    return partial(stats.youden_threshold, weight=design["cutoff"]["weight"])


def fit_paper(ctx, X, y, tr, va, family, *, n_jobs: int = 1, timings=None) -> PaperFit | None:
    """``protocol="paper"``: fit the family on the training cohort, apply it to the external one at the cut-offs
    chosen on out-of-fold training probabilities, and cross-validate the training cohort
    (:func:`~replicate.fusion.external_validation`); records both cohorts. ``None`` under another protocol."""
    if ctx.protocol != "paper":
        return None
    counts, timings = ctx.counts, {} if timings is None else timings
    folds, cutoff = counts["cutoff_cv_folds"], cutoff_rule(ctx.spec.design)
    y_tr, y_va = y.loc[tr], y.loc[va]
    with timed(timings, "fit_s"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = external_validation(
            X.loc[tr],
            y_tr,
            X.loc[va],
            y_va,
            cv_folds=folds,
            seed=step_seed(ctx, "training cv"),
            n_jobs=n_jobs,
            cutoff=cutoff,
            **family,
        )
    public = ctx.data == "public"
    src = "BUS-BRA" if public else "synthetic twin"
    ctx.results.add_cohort(
        "training",
        n=len(tr),
        n_positive=int(y_tr.sum()),
        source=f"{src}: {'GE Logiq 5 / 7' if public else 'Hospital-1'} (cross-validated, {folds} folds)",
    )
    ctx.results.add_cohort(
        "validation",
        n=len(va),
        n_positive=int(y_va.sum()),
        source=f"{src}: {'Toshiba Aplio 300 + U-Systems' if public else 'Hospital-2'} (external)",
    )
    print(f"fitted the family and its {folds}-fold cross-validation in {timings['fit_s']:.0f} s")
    fallbacks = {m: f for m, f in fallbacks_taken(ev.family).items() if f}
    return PaperFit(ev=ev, y_tr=y_tr, y_va=y_va, cutoff=cutoff, fallbacks=fallbacks)


def _kept(est) -> dict:
    """What one single or pre-fusion model kept at each step."""
    fusion = est.named_steps["fusion"]
    row = {"input": " + ".join(f"{b} {len(fusion.input_columns_[b])}" for b in fusion.blocks)}
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
    return row


def selection_table(pf: PaperFit | None, kind: dict) -> pd.DataFrame | None:
    """What each final model kept: features per block after ICC, t-test and LASSO, the SVM's parameters
    (a post-fusion model: the models it fuses)."""
    if pf is None:
        return None
    rows = []
    for m, est in pf.family.models.items():
        if kind[m] == "post":
            rows.append({"model": m, "input": " + ".join(est.estimators_), "selected": len(est.estimators_)})
        else:
            rows.append({"model": m} | _kept(est))
    return pd.DataFrame(rows).set_index("model").fillna("")


def _fmt(t) -> str:
    return f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"


def operating_reports(results, pf: PaperFit | None, model_names) -> pd.DataFrame | None:
    """AUC (DeLong CI) and ACC, SEN, SPE, PPV, NPV (Wilson CIs) of every model on both cohorts, recorded with
    the cut-off(s) used (training: per fold, pooled out-of-fold probabilities); kept in ``pf.report``."""
    if pf is None:
        return None
    thr_cv = pf.ev.cv.thresholds
    for m in model_names:
        for cohort in COHORTS:
            r = pf.ev.report(m, cohort)
            pf.report[(m, cohort)] = r
            where = (
                {"threshold": round(float(pf.family.thresholds[m]), 6)}
                if cohort == "validation"
                else {"thresholds_by_fold": [round(float(t), 6) for t in thr_cv[m]]}
            )
            pooled = " (pooled out-of-fold probabilities)" if cohort == "training" else ""
            for metric, (v, lo, hi) in r.items():
                results.add_metric(
                    m,
                    cohort,
                    metric,
                    v,
                    (lo, hi),
                    **where,
                    ci_method=("DeLong" if metric == "AUC" else "Wilson") + pooled,
                )
    perf = pd.DataFrame({(m, c): {k: _fmt(v) for k, v in d.items()} for (m, c), d in pf.report.items()}).T
    perf.index.names = ["model", "cohort"]
    return perf


def cutoff_table(results, pf: PaperFit | None, X_tr, model_names) -> pd.DataFrame | None:
    """External SEN / SPE at the cut-off each model gets from its in-sample training scores beside the one
    from its out-of-fold scores (for teaching; recorded in ``extra``, never as a result)."""
    if pf is None:
        return None
    P_in = pf.family.predict_proba(X_tr)  # in-sample: for this comparison only
    rows = []
    for m in model_names:
        row = {"model": m}
        for how, thr in (("in-sample", pf.cutoff(pf.y_tr, P_in[m])), ("out-of-fold", pf.family.thresholds[m])):
            cm = stats.confusion_metrics(pf.y_va, (pf.P_va[m] >= thr).astype(int))
            row |= {
                f"{how} cut-off": round(thr, 3),
                f"{how} SEN": round(cm["SEN"][0], 3),
                f"{how} SPE": round(cm["SPE"][0], 3),
            }
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model")
    results.extra["cutoff_in_sample_vs_out_of_fold"] = table.reset_index().to_dict(orient="records")
    return table


def delong_table(ctx, pf: PaperFit | None, name: dict) -> pd.DataFrame | None:
    """The spec's DeLong comparisons (paired, both cohorts), recorded with the paper's P where it has one."""
    if pf is None:
        return None
    spec, rows = ctx.spec, []
    for a, b in spec.design["comparisons"]:
        a, b = name[a], name[b]
        for cohort, yy, P in pf.cohorts():
            d = stats.delong_test(yy, P[a], P[b])
            rep = next(
                (c for c in spec.comparisons if c["model_a"] == a and c["model_b"] == b and c["cohort"] == cohort), None
            )
            rep_p = None if rep is None else rep.get("p_value")
            ctx.results.add_delong(a, b, cohort, d, reported_p=rep_p, reported_id=None if rep is None else rep["id"])
            rows.append(
                {
                    "model A": a,
                    "model B": b,
                    "cohort": cohort,
                    "AUC A": d.auc_a,
                    "AUC B": d.auc_b,
                    "diff": d.diff,
                    "P": d.p_value,
                    "paper P": rep_p,
                }
            )
    return pd.DataFrame(rows).round(4)


# ----------------------------------------------------------------------------- figures

_PANELS = {"training": "training (cross-validated)", "validation": "external validation"}


def figure_groups(name: dict, kind: dict, model_names) -> dict[str, list[str]]:
    """The paper's two figure groups: clinical + pre-fusion (Figure 4) and single + post-fusion (Supp. Fig. 1)."""
    return {
        "pre-fusion": [name["clinical"]] + [m for m in model_names if kind[m] == "pre"],
        "single and post-fusion": [m for m in model_names if kind[m] in ("single", "post")],
    }


def roc_figures(ctx, pf: PaperFit | None, groups: dict) -> None:
    """ROC curves of each figure group on both cohorts (one figure per group)."""
    if pf is None:
        return
    import matplotlib.pyplot as plt

    for gname, ms in groups.items():
        fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
        for ax, (cohort, yy, P) in zip(axes, pf.cohorts()):
            plots.roc_plot({m: (yy, P[m]) for m in ms}, title=_PANELS[cohort], ax=ax)
        fig.suptitle(f"ROC: {gname} models")
        fig.tight_layout()
        plt.close(fig)
        ctx.figure(fig, f"roc_{gname.replace(' ', '_')}")


def calibration_figures(ctx, pf: PaperFit | None, models, model_names) -> None:
    """Calibration and decision curves of ``models`` on both cohorts, and the AUC bars of every model."""
    if pf is None:
        return
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 11))
    for j, (cohort, yy, P) in enumerate(pf.cohorts()):
        cname = _PANELS[cohort]
        plots.calibration_plot(
            {m: (yy, P[m]) for m in models},
            title=f"Calibration, {cname}",
            n_boot=ctx.counts["n_boot"],
            seed=step_seed(ctx, "calibration", cname),
            ax=axes[0, j],
        )
        dca = stats.decision_curve(yy, {m: P[m].to_numpy() for m in models})
        plots.decision_curve_plot(dca, title=f"Decision curves, {cname}", ax=axes[1, j])
    fig.tight_layout()
    plt.close(fig)
    ctx.figure(fig, "calibration_decision_prefusion")
    rep = pf.report
    bars = pd.DataFrame(
        [
            {
                "model": m,
                "cohort": c,
                "auc": rep[(m, c)]["AUC"][0],
                "low": rep[(m, c)]["AUC"][1],
                "high": rep[(m, c)]["AUC"][2],
            }
            for m in model_names
            for c in COHORTS
        ]
    )
    ctx.figure(plots.bar_auc_plot(bars, title="AUC (95% DeLong CI) of the nine models", group="cohort"), "auc_bars")


# ----------------------------------------------------------------------------- radiologist


def radiologist(ctx, pf: PaperFit | None, table: pd.DataFrame, y: pd.Series, tr, va, crdl: str):
    """BUS-BRA's BI-RADS reading (>= ``positive_from`` = malignant call; the category as an ordinal score)
    beside ``crdl`` on both cohorts: its metrics, paired DeLong and McNemar tests (recorded), and the external
    ROC figure. ``None`` (with a note) on the twin or under ``protocol="worc"``."""
    if pf is None or ctx.data != "public":
        print("No radiologist reading in this run (synthetic twin, or protocol='worc').")
        return None
    cfg, results = ctx.spec.design["radiologist"], ctx.results
    reader, rows = cfg["model_name"], []
    for cname, ids, P in (("training", tr, pf.P_tr), ("validation", va, pf.P_va)):
        yy, birads = y.loc[ids], table.loc[ids, "birads"].astype(float)
        call = (birads >= cfg["positive_from"]).astype(int)
        lo, auc, hi = stats.auc_ci(yy, birads)
        results.add_metric(reader, cname, "AUC", auc, (lo, hi), ci_method="DeLong", note="BI-RADS category as score")
        cm = stats.confusion_metrics(yy, call)
        for metric in ("ACC", "SEN", "SPE", "PPV", "NPV"):
            v, lo_m, hi_m = cm[metric]
            results.add_metric(
                reader,
                cname,
                metric,
                v,
                (lo_m, hi_m),
                ci_method="Wilson",
                note=f"BI-RADS >= {cfg['positive_from']} = malignant",
            )
        d = stats.delong_test(yy, P[crdl], birads)
        mc = stats.mcnemar(yy, pf.ev.calls[cname][crdl], call)
        results.add_delong(crdl, reader, cname, d)
        results.add_comparison(
            crdl, reader, cname, test="McNemar", p_value=mc.p_value, statistic=mc.statistic, b=mc.b, c=mc.c,
            exact=mc.exact,
        )  # fmt: skip
        rows.append(
            {
                "cohort": cname,
                "BI-RADS AUC": f"{auc:.3f} [{lo:.3f}, {hi:.3f}]",
                "BI-RADS>=4 SEN": round(cm["SEN"][0], 3),
                "BI-RADS>=4 SPE": round(cm["SPE"][0], 3),
                "BI-RADS>=4 ACC": round(cm["ACC"][0], 3),
                f"{crdl} AUC": round(d.auc_a, 3),
                "DeLong P": round(d.p_value, 4),
                "McNemar P": round(mc.p_value, 4),
                "only CRDL right": mc.b,
                "only BI-RADS right": mc.c,
            }
        )
    scores = {crdl: (pf.y_va, pf.P_va[crdl]), reader: (pf.y_va, table.loc[va, "birads"].astype(float))}
    ctx.figure(plots.roc_plot(scores, title="External cohort: pre-fusion CRDL vs BI-RADS reading"), "roc_radiologist")
    return pd.DataFrame(rows).set_index("cohort")


# ----------------------------------------------------------------------------- comparison and claims


def comparison_notes(ctx) -> list[str]:
    """In words, per proxy pair: ours vs the paper's, the verdict, the difference with its interval and the
    resolution (the smallest true difference the two cohorts would usually detect); then one line per
    reason a reported number is not compared."""
    results = ctx.results
    rows = [r for r in results.all_rows() if r.get("reported") is not None and not r.get("restatement_of")]
    vc = {c["name"]: c for c in results.cohorts}
    lines = []
    for r in rows:
        if r["comparability"] != "proxy" or r.get("resolution") is None:
            continue
        c = vc.get(r["cohort"], {})
        lo, hi = r.get("difference_ci") or (float("nan"), float("nan"))
        n_pos = c.get("n_positive")
        lines.append(
            f"{r['model']}, {r['cohort']} {r['metric']}: ours {r['value']:.3f} vs the paper's {r['reported']:.3f} "
            f"-> {r['verdict']}; difference {r['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}]. With "
            f"{n_pos} malignant / {c.get('n', 0) - (n_pos or 0)} benign lesions here "
            f"and the paper's {ctx.spec.cohorts[r['cohort']]['n']} patients, a true difference smaller than about "
            f"{r['resolution']:.2f} would usually go unnoticed (80% power)."
        )
    lines.append("\nNot compared:")
    none = pd.DataFrame([r for r in rows if r["comparability"] == "none"])
    for reason, group in none.groupby("comparability_reason", sort=False):
        g = group.iloc[0]
        lines.append(f"- {len(group)} number(s), e.g. {g['model']} {g['cohort']} {g['metric']}: {reason}")
    return lines


def claims_checked(results, pf: PaperFit | None, name: dict, kind: dict, model_names) -> pd.DataFrame | None:
    """The paper's claims this run can check on its own data, each with what the paper says, what this run
    gives and whether it holds here (recorded in ``extra``)."""
    if pf is None:
        return None
    y_tr, y_va, P_tr, P_va, report = pf.y_tr, pf.y_va, pf.P_tr, pf.P_va, pf.report
    crdl, cm_name, crad = name["pre_crdl"], name["clinical"], name["pre_clin_rad"]
    singles = [m for m in model_names if kind[m] == "single"]
    best_single = max(singles, key=lambda m: report[(m, "training")]["AUC"][0])
    checks = []
    for a, b, paper_says in (
        (crdl, cm_name, "0.948 vs 0.870, P = 0.01"),
        (crdl, crad, "0.948 vs 0.923, P = 0.017"),
        (crdl, best_single, "CRDL best of all models"),
    ):
        d = stats.delong_test(y_va, P_va[a], P_va[b])  # paired, external cohort
        checks.append(
            {
                "claim": f"{a} beats {b} on the external cohort",
                "paper": paper_says,
                "this run": f"{d.auc_a:.3f} vs {d.auc_b:.3f}, DeLong P = {d.p_value:.3g}",
                "holds here": bool(d.diff > 0 and d.p_value < 0.05),
            }
        )
    tr_r, va_r = report[(crdl, "training")], report[(crdl, "validation")]
    shift = max(abs(va_r[k][0] - tr_r[k][0]) for k in ("SEN", "SPE"))
    checks.append(
        {
            "claim": f"{crdl}'s training cut-off carries over: external SEN and SPE within 0.10 of training",
            "paper": "SEN 90.8 -> 83.6 %, SPE 81.0 -> 89.3 %",
            "this run": f"SEN {tr_r['SEN'][0]:.1%} -> {va_r['SEN'][0]:.1%}, SPE {tr_r['SPE'][0]:.1%} -> "
            f"{va_r['SPE'][0]:.1%}",
            "holds here": bool(shift <= 0.10),
        }
    )
    d = stats.delong_test_unpaired(y_va, P_va[crdl], y_tr, P_tr[crdl])
    checks.append(
        {
            "claim": f"{crdl} is not worse on the external scanner(s) than in training (unpaired DeLong)",
            "paper": "0.948 external vs 0.911 training",
            "this run": f"{d.auc_a:.3f} external vs {d.auc_b:.3f} cross-validated training, P = {d.p_value:.3g}",
            "holds here": bool(d.diff >= 0 or d.p_value >= 0.05),
        }
    )
    ps = [
        stats.delong_test(y_va, P_va[name["post_crdl"]], P_va[name[k]]).p_value
        for k in ("post_clin_rad", "post_clin_dl")
    ]
    checks.append(
        {
            "claim": "no significant difference between the post-fusion models (DeLong P >= 0.05)",
            "paper": "no significant difference (Supplementary Table 6)",
            "this run": ", ".join(f"P = {p:.3g}" for p in ps),
            "holds here": bool(min(ps) >= 0.05),
        }
    )
    checks = pd.DataFrame(checks).set_index("claim")
    results.extra["claims_checked"] = checks.reset_index().to_dict(orient="records")
    return checks


# ----------------------------------------------------------------------------- chance


def null_result(data: str):
    """The stored null-distribution benchmark of ``benchmarks/null_us.py`` for ``data`` (``None`` when it has
    not been run) and the path it is read from."""
    import replicate.null

    path = replicate.null.results_path("us")
    if data == "synthetic":
        path = path.with_name("null_us_synthetic.json")
    return replicate.null.load(path), path


def null_comovement(null) -> str:
    """How the models' null AUCs move together from seed to seed: the median and highest pairwise correlation."""
    corr = pd.DataFrame({m: v["aucs"] for m, v in null.models.items()}).corr()
    pair = corr.where(np.triu(np.ones(corr.shape, bool), 1)).stack().sort_values()
    return (
        f"Seed-to-seed correlation of two models' null AUCs: median {pair.median():.2f}, highest "
        f"{pair.iloc[-1]:.2f} ({' and '.join(pair.index[-1])})."
    )


# ----------------------------------------------------------------------------- deviations


def _svm_deviation(design, counts) -> str:
    if counts["svm_tune"]:
        how = (
            ", ".join(f"{k} in {v}" for k, v in counts["svm_grid"].items())
            + f" by {counts['svm_cv_folds']}-fold CV (ROC AUC on the decision function), then refitted with "
            "Platt-scaled probabilities (SVC's internal 5-fold CV)"
        )
    else:
        how = (
            f"NOT tuned in this profile: scikit-learn's RBF SVC with {design['classifier']['untuned']} (the paper's "
            "optimum for CRDL names gamma='auto' only) and Platt-scaled probabilities (SVC's internal 5-fold CV)"
        )
    return (
        "SVM hyper-parameters: the paper's grid is in its supplement (not available); ours: "
        + how
        + ". The post-fusion meta-classifier is the same SVM (tuned alike) on the single models' probabilities."
    )


def _method_deviations(ctx, inp) -> list[str]:
    """Departures of the methods from the paper (every run)."""
    design, counts, rob = ctx.spec.design, ctx.counts, ctx.spec.design["robustness"]
    return [
        f"Radiomics: PyRadiomics on a 2-D ROI gives {inp.rad.n_features} features per ROI with the composition that "
        "gives the paper's 851 on a 3-D ROI (Original + coif1 wavelets: 2-D has 9 shape2D features instead of 14 3-D "
        "shape features and 4 wavelet decompositions instead of 8); bin width 5 after PyRadiomics' z-normalisation "
        "(scale 100) is ours (the paper gives no discretisation).",
        f"Deep features: {inp.dl.info['weights']}. The paper used a PRE-TRAINED 3-D ResNet-18 (511 features); "
        f"ImageNet weights are not available on this machine and nothing is downloaded, so the {inp.dl.n_features} "
        f"features come from a randomly initialised (seed {ctx.seed}) 2-D ResNet-18 with a single-channel first "
        "layer: random convolutional features, not learned ones. 2-D because each patient has one 2-D image. Input: "
        f"the square tumour crop (bounding box + 10 % margin, {counts['deep_input_size']} px); the paper's masking "
        "of the background inside the crop is not applied.",
        f"Feature robustness: ICC ({rob['icc_kind']}) > {rob['icc_threshold']} between the original mask and a "
        f"perturbed one ({rob['perturbation']}) on {len(inp.icc_ids)} random training patients, fitted inside each "
        "model's training rows (inside a cross-validation fold, on the ICC patients among that fold's training "
        "rows, at least 5); the paper compared two radiologists' segmentations of 50 patients.",
        f"Operating point: the paper's 'weighted Youden index' does not give its weight; we use weight "
        f"{design['cutoff']['weight']} on sensitivity (plain Youden), chosen for each model on its out-of-fold "
        f"training probabilities ({counts['post_fusion_cv_folds']} folds; a post-fusion model: its meta-SVM refitted "
        "on the other folds of the single models' out-of-fold probabilities), never on in-sample scores. The paper "
        "does not say on which scores it chose the cut-off.",
        "Training-cohort metrics are cross-validated: the whole procedure (selection, tuning, stacking, cut-off) "
        f"refitted on {counts['cutoff_cv_folds'] - 1} of {counts['cutoff_cv_folds']} folds classifies the held-out "
        "fold at the cut-off it chose on its own training rows. The paper's training numbers are probably apparent "
        "(in-sample) performance, so they are not compared with ours.",
        _svm_deviation(design, counts),
        "Post-fusion: the paper does not say how the probabilities fed to the fusion SVM were obtained on the "
        f"training cohort; we use {counts['post_fusion_cv_folds']}-fold out-of-fold probabilities (leak-free "
        "stacking).",
        "Order of the steps: we filter image features by ICC BEFORE the t-test and LASSO (a step of each model, "
        "on its training rows); the paper evaluated the stability of the features AFTER selection ('Following the "
        "feature selection process, we proceeded to evaluate the stability of the selected features').",
        "z-scoring: every feature is standardised with the TRAINING rows' mean and SD, applied unchanged to the "
        "external cohort. The paper's 'to mitigate the variability across the TC and the EVC, the data underwent "
        "normalization through the z-score technique' reads like each cohort standardised by its own statistics "
        "(which would use the external cohort's feature distribution); we do not do that.",
        "'LASSO regression with 10-fold cross-validation' is an L1-penalised LOGISTIC regression "
        f"(scikit-learn LogisticRegressionCV, liblinear, a {counts['lasso_Cs']}-value glmnet-like penalty path, the "
        f"penalty with the best {counts['lasso_cv_folds']}-fold cross-validated log-loss); the paper does not say "
        "logistic or linear, nor its CV criterion. Constant features are dropped before it (ours).",
        "Silent fallbacks the code may take (each listed here; the ones taken in this run are listed below): the "
        "t-test keeps the single feature with the smallest p when none has p < 0.05; LASSO keeps the first feature "
        "to enter its path when the CV-chosen penalty removes every feature; the ICC filter keeps the most "
        "reproducible feature when none passes the threshold.",
        "Clinical-model selection: the paper kept its five variables by univariate + multivariate logistic "
        "regression (Supplementary Table 3); we use its result (the variables) as fixed inputs, not a re-selection.",
    ]


_PUBLIC_DEVIATIONS = [
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
_TWIN_DEVIATION = (
    "Synthetic twin: its effect sizes are ours; its numbers are never compared with the paper's (verdicts: "
    "not comparable). Doppler images are generated but the models use the grey-scale image (the paper's "
    "features come from the ROI; the blood-flow grade enters the clinical model)."
)


def record_deviations(ctx, inp, pf: PaperFit | None) -> list[str]:
    """Every departure from the paper for this run (methods, the fallbacks the final models took, null labels,
    the data, the profile), recorded; returns all the run's deviations (the proxy gap's and failures' too)."""
    dev = _method_deviations(ctx, inp)
    for m, taken in (pf.fallbacks if pf is not None else {}).items():
        dev.append(f"Fallback taken in this run by {m} (final model): {'; '.join(taken)}.")
    if ctx.null_labels:
        dev.append(
            "null_labels=True: the outcome is permuted within each cohort before anything is learned "
            "(the leakage probe; every number of this run is chance)."
        )
    dev += _PUBLIC_DEVIATIONS if ctx.data == "public" else [_TWIN_DEVIATION]
    if ctx.profile == "quick":
        dev.append(f"Quick profile: {ctx.counts}")
    for d in dev:
        ctx.results.add_deviation(d)
    return list(ctx.results.deviations)
