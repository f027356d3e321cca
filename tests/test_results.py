import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from replicate.results import SAME_DATA_VERDICTS, ChapterResults, judge, prevalence_adjusted, validate_results
from replicate.spec import Spec, load_spec_file, validate
from replicate.stats import hanley_mcneil_se

FIX = Path(__file__).parent / "fixtures"


def toy_raw() -> dict:
    return yaml.safe_load((FIX / "spec_toy.yaml").read_text())


def toy(**comparability) -> Spec:
    raw = toy_raw()
    raw["comparability"]["public"].update(comparability)
    validate(raw)
    return Spec(raw)


def test_proxy_pair_gets_difference_interval_resolution_and_a_contrast_word():
    spec = toy()
    rep = spec.find_reported("Model", "validation", "AUC")  # 0.80 [0.70, 0.90]
    row = {"value": 0.60, "ci": [0.45, 0.75]}
    out = judge(spec, "public", row, rep, our_counts={"n": 60, "n_positive": 20})
    assert out["comparability"] == "proxy" and out["verdict"] == "lower on proxy"
    assert out["difference"] == pytest.approx(-0.20)
    # MOVER: L = d - sqrt((0.60-0.45)^2 + (0.90-0.80)^2), U = d + sqrt((0.75-0.60)^2 + (0.80-0.70)^2)
    half = np.sqrt(0.15**2 + 0.10**2)
    assert out["difference_ci"] == pytest.approx([-0.20 - half, -0.20 + half])
    # resolution: 2.80 x sqrt(V_HM(0.80; 20, 40) + SE_p^2), SE_p = 0.20 / (2 x 1.96) (symmetric raw CI)
    se_p = 0.20 / (2 * 1.959964)
    expected = 2.8016 * np.sqrt(hanley_mcneil_se(0.80, 20, 40) ** 2 + se_p**2)
    assert out["resolution"] == pytest.approx(expected, rel=1e-3)
    assert "Hanley-McNeil (n+=20, n-=40)" in out["resolution_kind"]
    # a proxy never says reproduced, whatever the numbers
    same = judge(spec, "public", {"value": 0.80, "ci": [0.70, 0.90]}, rep, our_counts={"n": 60, "n_positive": 20})
    assert same["verdict"] == "consistent on proxy"
    assert judge(spec, "public", {"value": 0.95, "ci": [0.92, 0.98]}, rep)["verdict"] == "higher on proxy"


def test_proxy_pair_uses_a_given_se_for_cross_validated_estimates():
    spec = toy()
    rep = spec.find_reported("Model", "validation", "AUC")
    out = judge(
        spec, "public", {"value": 0.70, "ci": [0.6, 0.8], "se": 0.04}, rep, our_counts={"n": 60, "n_positive": 20}
    )
    se_p = 0.20 / (2 * 1.959964)
    assert out["resolution"] == pytest.approx(2.8016 * np.sqrt(0.04**2 + se_p**2), rel=1e-3)
    half = 1.959964 * np.sqrt(0.04**2 + se_p**2)
    assert out["difference_ci"] == pytest.approx([-0.1 - half, -0.1 + half], rel=1e-4)


def test_proxy_pair_without_a_paper_interval_uses_its_denominators():
    spec = toy()
    rep = spec.find_reported("Model", "validation", "SEN")  # 0.75, no CI; paper n+ = 20
    out = judge(spec, "public", {"value": 0.50, "ci": [0.30, 0.70]}, rep, our_counts={"n": 40, "n_positive": 16})

    def wilson_se(p, n, z2=1.959964**2):  # half-width of the Wilson interval / z
        return np.sqrt(p * (1 - p) / n + z2 / (4 * n**2)) / (1 + z2 / n)

    assert "Wilson (n=20)" in out["rule"] and out["verdict"] in ("lower on proxy", "consistent on proxy")
    assert out["resolution"] == pytest.approx(2.8016 * np.hypot(wilson_se(0.75, 16), wilson_se(0.75, 20)), rel=1e-3)
    # at 0 or 1 the SE does not collapse to 0 (a paper's 100% specificity still has sampling error)
    assert wilson_se(1.0, 20) > 0.02


def test_declared_none_and_twin_carry_no_verdict():
    spec = toy(rules=[{"metrics": ["SEN"], "level": "none", "reason": "prevalence differs"}])
    rep = spec.find_reported("Model", "validation", "SEN")
    out = judge(spec, "public", {"value": 0.75, "ci": [0.6, 0.9]}, rep)
    assert out == {
        "comparability": "none",
        "comparability_reason": "prevalence differs",
        "verdict": "not comparable",
        "rule": "not comparable (prevalence differs)",
    }
    twin = judge(spec, "synthetic", {"value": 0.80, "ci": [0.7, 0.9]}, spec.find_reported("Model", "validation", "AUC"))
    assert twin["comparability"] == "twin" and twin["verdict"] == "not comparable" and "difference" not in twin


def test_conditions_switch_rules_on():
    spec = toy(
        rules=[
            {"models": ["Model"], "condition": "untrained_backbone", "level": "none", "reason": "untrained backbone"}
        ]
    )
    rep = spec.find_reported("Model", "validation", "AUC")
    assert judge(spec, "public", {"value": 0.7, "ci": [0.6, 0.8]}, rep)["comparability"] == "proxy"
    out = judge(spec, "public", {"value": 0.7, "ci": [0.6, 0.8]}, rep, frozenset({"untrained_backbone"}))
    assert out["comparability"] == "none" and out["verdict"] == "not comparable"


def test_an_entry_overrides_the_spec():
    raw = toy_raw()
    raw["reported"][0]["comparability"] = {"level": "same_data", "reason": "the paper's own patients"}
    validate(raw)
    spec = Spec(raw)
    rep = spec.find_reported("Model", "validation", "AUC")
    assert spec.comparability_of(rep, "public") == ("same_data", "the paper's own patients")
    assert spec.comparability_of(rep, "synthetic")[0] == "twin"  # the override covers public data only


@pytest.mark.parametrize(
    "seeds, expected",
    [
        ([0.80, 0.81, 0.79, 0.80], "reproduced"),  # d = 0, tiny method SE
        ([0.70, 0.71, 0.69, 0.70], "not reproduced"),  # d = -0.10, clear of the 0.05 margin
        ([0.70, 0.86, 0.74, 0.90], "inconclusive"),  # d = 0, but the method varies too much
        ([0.76, 0.78, 0.74, 0.76], "inconclusive"),  # d = -0.04: its CI crosses -0.05
    ],
)
def test_same_data_pairs_are_judged_by_tost_on_the_methods_own_variability(seeds, expected):
    raw = toy_raw()
    raw["comparability"]["public"] = {"level": "same_data", "reason": "same patients"}
    spec = Spec(raw)
    rep = spec.find_reported("Model", "validation", "AUC")
    value = float(np.mean(seeds))
    out = judge(spec, "public", {"value": value, "ci": [value - 0.1, value + 0.1], "seed_values": seeds}, rep)
    assert out["verdict"] == expected
    se_d = np.std(seeds, ddof=1) * np.sqrt(1 + 1 / len(seeds))
    assert out["se_difference"] == pytest.approx(se_d)
    assert out["difference_ci"] == pytest.approx([value - 0.8 - 1.644854 * se_d, value - 0.8 + 1.644854 * se_d])
    assert out["difference_ci_level"] == 0.90 and out["margin"] == 0.05 and "R = 4" in out["rule"]


def test_same_data_without_seed_reruns_is_inconclusive_never_reproduced():
    """'reported value inside our CI' is too lenient (alt quick: 0.717 [0.55, 0.88] vs 0.83)."""
    raw = toy_raw()
    raw["comparability"]["public"] = {"level": "same_data", "reason": "same patients"}
    spec = Spec(raw)
    rep = spec.find_reported("Model", "validation", "AUC")
    out = judge(spec, "public", {"value": 0.717, "ci": [0.55, 0.88]}, rep)
    assert out["verdict"] == "inconclusive" and "no seed re-runs" in out["rule"]


def test_seed_values_must_average_to_the_value():
    res = ChapterResults(load_spec_file(FIX / "spec_toy.yaml"), data="public", parameters={})
    with pytest.raises(ValueError, match="not the mean"):
        res.add_metric("Model", "validation", "AUC", 0.9, seed_values=[0.7, 0.8])


def test_prevalence_adjusted_ppv_npv():
    out = prevalence_adjusted(0.8, 0.9, 0.16)
    assert out["PPV"] == pytest.approx(0.8 * 0.16 / (0.8 * 0.16 + 0.1 * 0.84))
    assert out["NPV"] == pytest.approx(0.9 * 0.84 / (0.9 * 0.84 + 0.2 * 0.16))


def test_results_pairing_counts_and_json(tmp_path):
    spec = load_spec_file(FIX / "spec_toy.yaml")
    res = ChapterResults(
        spec, data="public", parameters={"seed": 0, "profile": "quick", "null_labels": False, "protocol": "paper"}
    )
    res.add_cohort("validation", 50, 20, source="toy")
    row = res.add_metric("Model", "validation", "AUC", 0.78, (0.66, 0.88))
    assert row["reported"] == 0.80 and row["verdict"] == "consistent on proxy" and row["reported_id"] == "auc_val"
    assert row["comparability"] == "proxy" and row["resolution"] > 0.1
    res.add_metric("Model", "validation", "SEN", 0.30, (0.15, 0.52))
    res.add_metric("Other", "validation", "AUC", 0.6, (0.5, 0.7))  # not in the paper
    res.add_deviation("toy deviation")
    with pytest.raises(ValueError):
        res.add_metric("Model", "external", "AUC", 0.5)
    counts = res.verdict_counts()
    # auc_train is reported but was not computed: it counts as not comparable
    assert counts["consistent on proxy"] == 1 and counts["lower on proxy"] == 1 and counts["not comparable"] == 1
    assert not any(counts[v] for v in SAME_DATA_VERDICTS)
    path = res.write(tmp_path)
    out = json.loads(path.read_text())
    validate_results(out)
    assert out["chapter"] == "toy" and out["data"] == "public" and out["schema_version"] == "1.0"
    assert out["spec_sha256"] == spec.sha256 and len(out["spec_sha256"]) == 64
    assert out["comparability_counts"] == {"same_data": 0, "proxy": 3, "twin": 0, "none": 0}
    assert {m["reported_id"] for m in out["metrics"] if m["reported_id"]} == {"auc_val", "sen_val", "auc_train"}
    other = [m for m in out["metrics"] if m["model"] == "Other"][0]
    assert other["reported"] is None and other["verdict"] == "not comparable"
    assert out["deviations"] == ["toy deviation"]
    table = res.table(only_reported=True)
    assert list(table.columns) == [
        "model",
        "cohort",
        "metric",
        "reported",
        "reproduced",
        "comparability",
        "difference [CI]",
        "resolution",
        "verdict",
    ]
    assert len(table) == 3


def test_conditions_declared_late_apply_to_every_pair():
    raw = toy_raw()
    raw["comparability"]["public"]["rules"] = [
        {"models": ["Model"], "condition": "untrained_backbone", "level": "none", "reason": "untrained backbone"}
    ]
    res = ChapterResults(Spec(raw), data="public", parameters={})
    res.add_metric("Model", "validation", "AUC", 0.78, (0.66, 0.88))
    res.declare("untrained_backbone")
    assert res.all_rows()[0]["comparability"] == "none"
    assert res.to_dict()["conditions"] == ["untrained_backbone"]


def test_adding_a_metric_twice_replaces_it():
    spec = load_spec_file(FIX / "spec_toy.yaml")
    res = ChapterResults(spec, data="public", parameters={})
    res.add_metric("Model", "validation", "AUC", 0.5, (0.4, 0.6))
    res.add_metric("Model", "validation", "AUC", 0.79, (0.7, 0.88))
    assert [m["value"] for m in res.metrics] == [0.79]


def test_a_metric_reported_twice_is_judged_against_both(tmp_path):
    """Papers state some numbers twice (abstract and table, sometimes differently): ours meets each."""
    import yaml

    raw = yaml.safe_load((FIX / "spec_toy.yaml").read_text())
    raw["reported"].append(
        {
            "id": "auc_val_abstract",
            "model": "Model",
            "cohort": "validation",
            "metric": "AUC",
            "value": 0.50,
            "where": {"section": "Abstract"},
        }
    )
    p = tmp_path / "toy.yaml"
    p.write_text(yaml.safe_dump(raw))
    res = ChapterResults(load_spec_file(p), data="public", parameters={"seed": 0})
    res.add_metric("Model", "validation", "AUC", 0.78, (0.66, 0.88))
    rows = {r["reported_id"]: r for r in res.all_rows() if r["metric"] == "AUC" and r["cohort"] == "validation"}
    assert rows["auc_val"]["value"] == rows["auc_val_abstract"]["value"] == 0.78
    assert rows["auc_val"]["verdict"] == "consistent on proxy"
    assert rows["auc_val_abstract"]["verdict"] == "higher on proxy"  # 0.78 [0.66, 0.88] vs 0.50
    assert rows["auc_val_abstract"]["restatement_of"] == "auc_val"
    # a number the paper states twice counts once
    # auc_val, and sen_val / auc_train (not computed): the restatement is not counted again
    assert sum(res.verdict_counts().values()) == 3
    # the same number stated a second time adds no row
    raw["reported"][-1].update(value=0.80, ci=[0.70, 0.90])
    p.write_text(yaml.safe_dump(raw))
    res = ChapterResults(load_spec_file(p), data="public", parameters={"seed": 0})
    res.add_metric("Model", "validation", "AUC", 0.78, (0.66, 0.88))
    assert sum(r["metric"] == "AUC" and r["cohort"] == "validation" for r in res.all_rows()) == 1


def test_the_results_schema_rejects_a_verdict_on_a_proxy():
    import jsonschema

    res = ChapterResults(
        load_spec_file(FIX / "spec_toy.yaml"),
        data="public",
        parameters={"seed": 0, "profile": "quick", "null_labels": False, "protocol": "paper"},
    )
    res.add_cohort("validation", 50, 20)
    res.add_metric("Model", "validation", "AUC", 0.78, (0.66, 0.88))
    res.add_deviation("toy")
    out = json.loads(json.dumps(res.to_dict()))
    validate_results(out)
    bad = json.loads(json.dumps(out))
    bad["metrics"][0]["verdict"] = "reproduced"  # a proxy pair cannot be reproduced
    with pytest.raises(jsonschema.ValidationError):
        validate_results(bad)
    bad = json.loads(json.dumps(out))
    del bad["metrics"][0]["resolution"]  # a proxy AUC pair shows its resolution
    with pytest.raises(jsonschema.ValidationError):
        validate_results(bad)


def test_the_results_schema_takes_the_papers_cohort_names_only_for_rows_we_did_not_compute():
    """A reported-only row keeps the paper's cohort (e.g. 'all', 'prospective'); a computed one is ours."""
    import jsonschema

    res = ChapterResults(
        load_spec_file(FIX / "spec_toy.yaml"),
        data="public",
        parameters={"seed": 0, "profile": "quick", "null_labels": False, "protocol": "paper"},
    )
    res.add_cohort("validation", 50, 20)
    res.add_metric("Model", "validation", "AUC", 0.78, (0.66, 0.88))
    res.add_deviation("toy")
    out = json.loads(json.dumps(res.to_dict()))
    paper_only = {**out["metrics"][0], "cohort": "prospective", "value": None, "ci": None}
    out["metrics"].append(paper_only)
    validate_results(out)
    bad = json.loads(json.dumps(out))
    bad["metrics"][-1]["value"] = 0.7  # computed on a cohort this run does not have
    with pytest.raises(jsonschema.ValidationError):
        validate_results(bad)
    bad["metrics"][-1]["cohort"] = "all cohorts"  # not an identifier
    bad["metrics"][-1]["value"] = None
    with pytest.raises(jsonschema.ValidationError):
        validate_results(bad)


def test_add_delong_records_both_aucs_the_difference_and_its_interval():
    from replicate.stats.auc import delong_test

    res = ChapterResults(load_spec_file(FIX / "spec_toy.yaml"), data="public", parameters={"seed": 0})
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(30), np.ones(30)].astype(int)
    a, b = y + rng.normal(0, 1, 60), y + rng.normal(0, 3, 60)
    d = delong_test(y, a, b)
    res.add_delong("A", "B", "validation", d, reported_p_value=0.04)
    c = res.comparisons[-1]
    assert (c["model_a"], c["model_b"], c["cohort"], c["test"]) == ("A", "B", "validation", "DeLong")
    assert c["auc_a"] == d.auc_a > c["auc_b"] == d.auc_b and c["diff"] == pytest.approx(d.auc_a - d.auc_b)
    assert c["ci"][0] < c["diff"] < c["ci"][1] and 0 <= c["p_value"] <= 1 and c["reported_p_value"] == 0.04
