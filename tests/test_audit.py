"""replicate.audit: each planted inconsistency is found, a consistent spec gives no warning/error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from replicate import audit
from replicate.audit import Finding, audit_json, audit_spec, hanley_mcneil_se, summary_table
from replicate.spec import available_specs, load_spec_file

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def planted() -> list[Finding]:
    return audit_spec(load_spec_file(FIX / "audit_planted.yaml"))


@pytest.fixture(scope="module")
def clean() -> list[Finding]:
    return audit_spec(FIX / "audit_clean.yaml")


def _hits(findings, check, token, severity=None, issue=None):
    out = [f for f in findings if f.check == check and (token in f.where or token in json.dumps(f.evidence))]
    if severity:
        out = [f for f in out if f.severity == severity]
    if issue:
        out = [f for f in out if f.evidence.get("issue") == issue]
    return out


def test_clean_spec_has_no_warnings_or_errors(clean):
    bad = [f"{f.check}: {f.detail}" for f in clean if f.severity != "info"]
    assert not bad, bad
    # and the audit says what it reconstructed
    cm = [f for f in clean if f.check == "confusion_matrix" and "validation" in f.where]
    assert cm and cm[0].evidence["matrices"][0] == {"TP": 15, "FN": 5, "TN": 24, "FP": 6}
    ci = [f for f in clean if f.check == "ci_method"]
    assert ci and "wilson" in ci[0].detail


@pytest.mark.parametrize(
    "check, token, severity, issue",
    [
        ("feasibility", "feas_sen", "error", None),  # 0.730 is no k/20
        ("feasibility", "feas_trunc", "warning", None),  # 23/30 truncated, not rounded
        ("feasibility", "t1_va_f", "error", None),  # 12/50 printed as 25.0%
        ("estimate_in_ci", "inci_spe", "error", None),
        ("ci_method", "ci_other", "warning", None),  # CI of 16/20 next to 15/20
        ("ci_method", "ci_none", "warning", None),  # no method gives this CI
        ("confusion_matrix", "ModelX", "error", None),  # SEN, SPE, PPV incompatible
        ("class_split", "unknown", "error", None),  # no split of 78 fits
        ("auc_ci_width", "auc_narrow", "warning", None),  # far narrower than Hanley-McNeil
        ("auc_ci_width", "auc_above_one", "error", None),  # limit above 1
        ("comparison", "cmp_p", "error", "p_vs_z"),
        ("comparison", "cmp_sig", "error", "significance"),
        ("comparison", "cmp_centre", "error", "ci_centre"),
        ("comparison", "cmp_se", "error", "se_vs_ci"),
        ("odds_ratio", "or_counts", "error", None),
        ("ratio_ci_p", "or_lopsided", "warning", None),
        ("ratio_ci_p", "or_p", "warning", None),
        ("cohort_table", "t1_tr_m", "error", None),  # levels add to 95, not 100
        ("cohort_table", "t1_all_m", "error", None),  # all != training + validation
        ("cohort_table", "t1_p_sex", "warning", "p_value"),  # P the counts cannot give
        ("cross_reference", "xref_alpha", "error", None),
    ],
)
def test_planted_inconsistency_is_found(planted, check, token, severity, issue):
    hits = _hits(planted, check, token, severity, issue)
    assert hits, f"{check} did not flag {token}: " + "; ".join(f"{f.check}/{f.where}" for f in planted)
    assert all(f.detail and f.paper == "audit_planted" for f in hits)


def test_planted_details_explain(planted):
    (cm,) = _hits(planted, "confusion_matrix", "ModelX")
    assert "PPV = 0.714" in cm.detail and cm.evidence["consistent_without"]["PPV"]["matrix"]["TP"] == 15
    (centre,) = _hits(planted, "comparison", "cmp_centre", issue="ci_centre")
    assert "Alpha - Beta" in centre.detail  # the CI belongs to another pair
    (other,) = _hits(planted, "ci_method", "ci_other")
    assert "16/20" in other.detail
    (split,) = _hits(planted, "class_split", "unknown")
    assert "55, 61, 67, 73" in split.detail  # the splits SEN 83.6% allows


def test_means_over_resamples_are_exempt(planted):
    assert not [f for f in planted if "cv_mean_sen" in f.where]


def test_no_finding_without_evidence_of_a_problem(planted):
    # consistent entries of the planted spec raise nothing
    for token in ("auc_gamma", "t1_tr_f", "t1_all_f"):
        assert not [f for f in planted if token in f.where and f.severity != "info"], token


def test_hanley_mcneil_at_chance_is_the_mann_whitney_variance():
    # at AUC = 0.5, Q1 = Q2 = 1/3 and the variance is (nP + nN + 1) / (12 nP nN)
    for p, n in ((20, 30), (5, 70)):
        assert hanley_mcneil_se(0.5, p, n) ** 2 == pytest.approx((p + n + 1) / (12 * p * n))
    assert hanley_mcneil_se(0.9, 40, 60) < hanley_mcneil_se(0.9, 10, 15)


def test_audit_accepts_mapping_and_rejects_bad_input():
    raw = yaml.safe_load((FIX / "audit_clean.yaml").read_text())
    assert [f.check for f in audit_spec(raw) if f.severity != "info"] == []
    raw["reported"][0]["cohort"] = "nowhere"
    with pytest.raises(Exception, match="unknown cohort"):
        audit_spec(raw)
    with pytest.raises(TypeError):
        audit_spec(3.14)
    with pytest.raises(ValueError):
        Finding("p", "w", "feasibility", "fatal", "d")


def test_unknown_spec_is_reported_not_raised():
    (f,) = audit.audit(["no_such_paper"])
    assert f.check == "spec" and f.severity == "error" and "no_such_paper" in f.detail


def test_summary_table_and_json(planted):
    df = summary_table(planted)
    assert list(df.columns) == ["paper", "severity", "check", "where", "detail"]
    assert len(df) == len(planted) and df["severity"].iloc[0] == "error"
    assert set(summary_table(planted, min_severity="warning")["severity"]) == {"error", "warning"}
    assert summary_table([]).empty
    d = planted[0].to_dict()
    assert {"paper", "where", "check", "detail", "severity", "evidence"} <= set(d)
    json.dumps([f.to_dict() for f in planted])  # evidence is JSON-serialisable


@pytest.mark.parametrize("cid", available_specs())
def test_shipped_specs_audit_and_serialise(cid):
    rows = audit_json(cid)
    json.dumps(rows)
    for r in rows:
        assert r["paper"] == cid and r["severity"] in ("error", "warning", "info") and r["detail"]


@pytest.mark.slow
def test_audit_notebook_runs(tmp_path):
    """The book chapter executes (on one paper, to keep it short) and writes audit.json."""
    from replicate.runner import run_chapter

    run_chapter("audit", {"ids": ["rls"]}, tmp_path, progress=False, require_results=False)
    rows = json.loads((tmp_path / "audit.json").read_text())
    assert rows and {r["paper"] for r in rows} == {"rls"}
    assert (tmp_path / "audit.ipynb").exists()


def _one_ci(ci, **decl):
    spec = {
        "cohorts": {"v": {"n": 50, "n_positive": 20, **decl.get("cohort", {})}},
        "reported": [{"id": "sen", "cohort": "v", "metric": "SEN", "value": "0.750", "ci": ci}],
    }
    if "spec" in decl:
        spec["ci_method"] = decl["spec"]
    return [f for f in audit_spec(spec) if f.check == "ci_method"]


def test_declared_ci_method_is_the_one_checked():
    from replicate.stats import proportion_ci

    boot = ["0.550", "0.950"]  # a bootstrap interval of 15/20: no closed form gives it
    assert [f.severity for f in _one_ci(boot)] == ["warning"]
    assert not [f for f in _one_ci(boot, spec="bootstrap") if f.severity != "info"]
    assert not [f for f in _one_ci(boot, cohort={"ci_method": {"proportion": "bootstrap"}}) if f.severity != "info"]
    cp = [f"{x:.3f}" for x in proportion_ci(15, 20, "clopper-pearson")]
    assert not [f for f in _one_ci(cp) if f.severity != "info"]  # undeclared: any standard method
    (w,) = [f for f in _one_ci(cp, spec="wilson") if f.severity == "warning"]
    assert "declared method wilson" in w.detail and "clopper-pearson" in w.detail
