"""Build notebooks/audit.ipynb: the book chapter "Auditing the reported numbers".

    .venv/bin/python notebooks/build/audit.py      # writes notebooks/audit.ipynb (no outputs)

The notebook only calls `replicate.audit`; every table it shows is computed from the papers' specs
(`src/replicate/specs/<id>.yaml`) when it runs.
"""
from __future__ import annotations

from pathlib import Path

from _nbbuild import code, md, write

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "audit.ipynb"


md(r"""
# Auditing the reported numbers

Before we try to reproduce a paper, we can ask a cheaper question: **do the paper's own numbers hang
together?** A sensitivity is a count of patients divided by another count; a confidence interval is a
formula of that count; an accuracy, a sensitivity and a specificity of the same model must come from
one confusion matrix; an AUC difference, its standard error, its confidence interval and its P value
are four views of one z statistic. When a paper prints several of these, they constrain each other,
and a contradiction shows that at least one printed number is wrong — without any data.

The audit below (`replicate.audit`) runs these checks on every number each paper's spec transcribes
(`src/replicate/specs/<id>.yaml`: the abstract, the results text, every results table, figure captions,
the discussion). It uses one rule throughout: **a number printed with *d* decimals stands for every
value within half a unit of its last digit** (0.875 means anything in [0.8745, 0.8755]). A check fails
only when *no* values inside those rounding intervals fit together.

Severity:

* **error** — a contradiction beyond rounding: the printed numbers cannot all be right;
* **warning** — implausible or unexplained, but possible (a CI no standard method gives, an AUC interval
  far narrower than its sample size allows, a value that fits only if the authors truncated);
* **info** — what the audit reconstructed (the confusion matrix, the CI method, the class split).

The audit judges the *paper*, not our replication: it runs before, and independently of, any model.
""")

code(r"""
ids = None            # audit these specs (None: every spec that exists)
min_severity = "warning"
output_dir = None     # where audit.json is written (the book runner sets it)
""", tags=["parameters"])

code(r"""
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from replicate import audit
from replicate.spec import available_specs, load_spec
from replicate.stats import proportion_ci

pd.set_option("display.max_colwidth", None)
pd.set_option("display.max_rows", 500)


def show(df, caption=None):
    # a left-aligned table without the index
    if df is None or len(df) == 0:
        display(Markdown("*(nothing to show)*"))
        return
    sty = df.style.hide(axis="index").set_properties(**{"text-align": "left", "vertical-align": "top"})
    sty = sty.format(precision=4, na_rep="")
    if caption:
        sty = sty.set_caption(caption)
    display(sty)


papers = list(ids) if ids else available_specs()
findings = audit.audit(papers)
specs = {p: load_spec(p) for p in papers}
sev = pd.DataFrame([{"paper": f.paper, "severity": f.severity} for f in findings], columns=["paper", "severity"])
counts = pd.crosstab(sev["paper"], sev["severity"]).reindex(index=papers, columns=list(audit.SEVERITIES),
                                                              fill_value=0)
counts.insert(0, "reported numbers", [len(specs[p].reported) + len(specs[p].comparisons) for p in counts.index])
counts.index.name = "paper"
counts
""")

md(r"""
## The checks, with examples from the papers

Each check below is shown on a paper where it bites; the full findings per paper follow at the end.
The thresholds are declared in `replicate.audit` before any paper was audited:
""")

code(r"""
pd.DataFrame([
    ("AUC CI width vs Hanley-McNeil width", f"flag below x{audit.AUC_WIDTH_RATIO[0]} or above x{audit.AUC_WIDTH_RATIO[1]}"),
    ("OR/HR CI asymmetry on the log scale", f"flag when one arm is more than x{audit.RATIO_ASYMMETRY} the other"),
    ("OR/HR: SE implied by the CI vs SE the printed P needs", f"tolerate x{audit.RATIO_SE_TOLERANCE[0]}-x{audit.RATIO_SE_TOLERANCE[1]} (profile-likelihood CIs)"),
    ("comparison: SE vs CI half-width / 1.96, beyond rounding", f"warning within x{audit.SE_RATIO_WARN[0]}-x{audit.SE_RATIO_WARN[1]}, error outside"),
    ("everything else", "exact up to the printed rounding"),
], columns=["check", "threshold"]).style.hide(axis="index")
""")

md(r"""
### 1. Is a proportion a count? (feasibility)

A sensitivity over *P* positive patients can only take the values 0/*P*, 1/*P*, …, *P*/*P*. With few
patients these values are far apart, so a printed value often cannot be *any* count at the printed
precision — the idea of Brown & Heathers' GRIM test (2017) for means, applied to proportions.
Sensitivity is over positives, specificity over negatives, accuracy and error rate over everyone; PPV
and NPV need some confusion matrix.

Tian et al. (chapter `rls`) print, for the clinical model in the training cohort (73 patients without
and 48 with metastasis), a specificity of 0.875:
""")

code(r"""
rows = []
for label, n in (("specificity: k / 73 negatives", 73), ("sensitivity: k / 48 positives", 48)):
    ks = audit.feasible_counts(0.875, 3, n)
    near = [k for k in range(n + 1) if abs(k / n - 0.875) < 0.02]
    rows.append({"reading": label, "counts near 0.875": ", ".join(f"{k}/{n} = {k / n:.4f}" for k in near),
                 "counts printed as 0.875": ", ".join(f"{k}/{n}" for k in ks) or "none"})
show(pd.DataFrame(rows))
""")

md(r"""
No count of the 73 negatives rounds to 0.875, but 42 of the 48 positives does. And the clinical model
is a single yes/no variable (tumour size > 10 cm), whose confusion matrix Table 1 prints: 42 of 48
patients with metastasis and 32 of 73 without have tumours > 10 cm. So its sensitivity is 42/48 = 0.875,
its specificity 41/73 = 0.562, NPV 41/47 = 0.872, accuracy 83/121 = 0.686 and AUC (0.875 + 0.562)/2 =
0.718 — every number of the row except the label of the first column.

### 2. Is the estimate inside its own interval?

Yang et al. (chapter `wdlps`) print the LDH model's training specificity as 44.09% with a 95% CI of
85.41–99.32%. An estimate outside its own CI is a typo in one of the three numbers; the confusion matrix
(check 4) says which: accuracy 56/89, sensitivity 7/38 and PPV 7/9 force 49 true negatives, i.e. a
specificity of 49/51 = 96.08%, which the CI fits.

### 3. Which confidence-interval method?

For a count *k* of *n* the common 95% intervals are Wald (*p* ± 1.96 √(*p*(1−*p*)/*n*)), Wilson's score
interval, Wilson's interval with continuity correction (Newcombe 1998, method 4), the exact
Clopper–Pearson interval and Agresti–Coull's adjusted Wald interval. Given the implied count, at most one
or two of them reproduce a printed interval to the last digit, which tells us the method the authors
used — and a printed interval that no method gives from the estimate's count (but one does from a
*different* count) shows that the estimate and its CI were not computed from the same numbers.
Every proportion CI in Yang et al. is Newcombe's continuity-corrected Wilson interval:
""")

code(r"""
t = audit.ci_method_table("wdlps")
tally = ", ".join(f"{m}: {k}" for m, k in t["matches"].value_counts().items())
display(Markdown(f"**{(t['matches'] != 'none').sum()} of {len(t)}** proportion CIs are reproduced from "
                 f"their implied counts (methods that reproduce each: {tally})."))
show(t.head(8)[["model", "cohort", "metric", "value", "count", "printed CI", "wald", "wilson", "wilson-cc",
                "clopper-pearson", "agresti-coull", "matches"]])
""")

md(r"""
### 4. Rebuilding the confusion matrix

With *P* positives and *N* negatives fixed, a model's predictions are one point (TP, TN) of a
(*P*+1) × (*N*+1) grid; every metric is a function of it (SEN = TP/*P*, SPE = TN/*N*,
ACC = (TP+TN)/(*P*+*N*), PPV = TP/(TP+FP), NPV = TN/(TN+FN)). The audit evaluates every printed metric
on the whole grid and keeps the cells where all of them round to the printed values. One cell left:
the paper's confusion matrix, recovered. No cell left: the printed metrics contradict each other, and
dropping one metric at a time shows which one is the odd one out.
""")

code(r"""
show(audit.confusion_table(findings))
""")

md(r"""
In Tian et al.'s Table 3, for instance, the DLRN's training specificity 0.959 (70/73) and accuracy 0.884
(107/121) force 11 false negatives, hence an NPV of 70/81 = 0.864 — which is the NPV printed for the RS
row, whose own numbers need 0.868 — the DLRN's printed NPV. The two NPVs are swapped.

### 5. When the class counts are not printed

The ultrasound paper (chapter `us`) gives its cohorts' sizes (516 and 78) but the benign/malignant
split is only in its Table 1, which the paper file lacks. The audit then asks which splits the printed
proportions allow: a sensitivity of 83.6% needs 55, 61, 67 or 73 malignant tumours among the 78, a
specificity of 89.3% needs 3, 22 or 50 — no split allows both.

### 6. AUC intervals against the sample size

Hanley & McNeil (1982) give the standard error of an AUC *A* from the numbers of positives and negatives:
SE² = [*A*(1−*A*) + (*P*−1)(*Q*₁−*A*²) + (*N*−1)(*Q*₂−*A*²)] / (*P N*), with *Q*₁ = *A*/(2−*A*) and
*Q*₂ = 2*A*²/(1+*A*). DeLong and bootstrap intervals differ from it, but rarely by a factor of two: an
interval less than half or more than twice as wide as *A* ± 1.96 SE (clipped to [0, 1]) is flagged,
and so is any limit outside [0, 1].
""")

code(r"""
widths = [audit.auc_width_table(p).assign(paper=p) for p in papers]
widths = pd.concat([w for w in widths if len(w)], ignore_index=True) if any(len(w) for w in widths) else None
show(None if widths is None else widths[["paper", "model", "cohort", "AUC", "CI", "positives", "negatives",
                                         "Hanley-McNeil SE", "expected width", "width", "ratio"]])
""")

md(r"""
### 7. Comparisons between models (DeLong)

DeLong's test prints a difference *d*, its standard error SE, a 95% CI *d* ± 1.96 SE and
P = 2(1 − Φ(|*d*|/SE)). When the difference itself is not printed, the difference of the two printed
AUCs stands in for it. Four checks: the CI is centred on *d*; its half-width is 1.96 SE; P follows from
*d*/SE; the CI excludes 0 exactly when P < 0.05. Tian et al.'s Table 3:
""")

code(r"""
show(audit.comparison_table("rls"))
""")

md(r"""
In most rows the printed SE, CI and P agree with each other (compare *P printed* with *P from CI alone*)
but not with the difference of the AUCs printed above them: in the external validation set the CI of
"DLRN vs Clinical" is centred on 0.275, the AUC difference of DLRS and clinical, and the CI of
"DLRS vs Clinical" on 0.311, the difference of DLRN and clinical.

### 8. Odds ratios against their own counts

An univariate odds ratio of a yes/no variable is the cross-product ratio of a 2 × 2 table — which the
patient-characteristics table often prints. Tian et al.'s Table 2 against their Table 1 (training set):
""")

code(r"""
show(audit.odds_ratio_table("rls"))
""")

md(r"""
"Tumor contours" and "Adjacent organ involvement" have each other's odds ratio (two rows swapped), and
the "Cystic spaces or necrosis" odds ratio does not follow from its counts at all. The CIs that do match
are not Wald intervals but slightly wider ones — profile-likelihood intervals, R's `confint()` default.

### 9. Patient-characteristics tables

Counts of a characteristic's levels must add up to the group size, groups to the cohort, and cohorts to
the total; a printed percentage must be its count over its denominator; a P value must be what a
standard test (χ² with or without Yates' correction, Fisher's exact test, the likelihood-ratio test)
gives from the printed counts. In Yang et al.'s Table 1, 62 men + 60 women make 122, not 127 (51 + 16 =
67 men is what the training and validation columns give, and 67/127 is the printed 52.8%), and the
validation column's normal/abnormal haemoglobin counts are swapped.

### 10. The same number in two places

The abstract, the results text, a table and the discussion often repeat a number. Tian et al.'s abstract
lists the external AUCs of "the integrated DLRN, DLRS, and RS models … (AUC 0.786 … vs. 0.822 …)", the
reverse of Table 3 (DLRN 0.822, DLRS 0.786); the ultrasound paper's Discussion gives a sensitivity of
85.6% and a specificity of 90.3% that match neither cohort of its Results (90.8/81.0% and 83.6/89.3%),
and an accuracy of 86.5% that is no count of 78 nor of 516 patients.
""")

md(r"""
## Findings per paper

Every finding at or above the chosen severity (parameter `min_severity`), errors first. `where` names
the table, row and column (or the section) and, in brackets, the spec entry's id.
""")

code(r"""
for p in papers:
    spec = specs[p]
    sub = [f for f in findings if f.paper == p]
    n = {s: sum(f.severity == s for f in sub) for s in audit.SEVERITIES}
    display(Markdown(f"### {spec.title}\n\n*{spec.citation}* — chapter `{p}`: "
                     f"{len(spec.reported)} reported numbers and {len(spec.comparisons)} comparisons audited; "
                     f"**{n['error']} errors, {n['warning']} warnings**, {n['info']} notes."))
    show(audit.summary_table(sub, min_severity=min_severity)[["severity", "check", "where", "detail"]])
""")

md(r"""
## What the audit cannot see

* It checks the numbers the paper prints, as transcribed in the spec. Supplementary tables that are not
  available (Yang et al.'s thirty deep models, the ultrasound paper's Tables 1–4, whose bodies are
  missing from its file) are not audited.
* Consistent numbers can still be wrong: a confusion matrix that fits every printed metric says nothing
  about how the predictions were made (e.g. whether the cut-off was chosen on the test set).
* A failed check says that *some* printed number is wrong, not which one; the details name the most
  economical explanation (a swapped row, a mislabelled column, a typo), which remains a hypothesis.
* Cross-validated estimates that are means over resamples (`estimate: mean` in a spec's cohort) are not
  counts and are exempt from the count checks.
""")

code(r"""
if output_dir is not None:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps([f.to_dict() for f in findings], indent=1, default=str))
    print(f"wrote {out / 'audit.json'} ({len(findings)} findings)")
""")

write(OUT)
