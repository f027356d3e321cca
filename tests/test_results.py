import json
from pathlib import Path

import pytest

from replicate.results import ChapterResults, verdict
from replicate.spec import load_spec_file

FIX = Path(__file__).parent / "fixtures"
RULE = {"rule": "reported_in_ci", "tolerance": 0.05, "comparable_on": ["public"], "description": "x"}


def test_verdict_rules():
    rep = {"value": 0.8, "ci": [0.7, 0.9]}
    assert verdict(RULE, "public", 0.75, (0.7, 0.85), rep)[0] == "reproduced"
    assert verdict(RULE, "public", 0.6, (0.5, 0.7), rep)[0] == "not reproduced"
    assert verdict(RULE, "synthetic", 0.8, (0.7, 0.9), rep)[0] == "not comparable"
    assert verdict(RULE, "public", None, None, rep)[0] == "not comparable"
    assert verdict(RULE, "public", 0.8, None, None)[0] == "not comparable"
    # without a reproduced CI, the tolerance applies
    assert verdict(RULE, "public", 0.84, None, rep)[0] == "reproduced"
    assert verdict(RULE, "public", 0.86, None, rep)[0] == "not reproduced"
    overlap = dict(RULE, rule="ci_overlap")
    assert verdict(overlap, "public", 0.6, (0.5, 0.71), rep)[0] == "reproduced"
    assert verdict(overlap, "public", 0.6, (0.5, 0.69), rep)[0] == "not reproduced"
    # an entry can be declared comparable on synthetic data too
    assert verdict(RULE, "synthetic", 0.8, (0.7, 0.9), dict(rep, comparable_on=["synthetic"]))[0] == "reproduced"


def test_results_pairing_counts_and_json(tmp_path):
    spec = load_spec_file(FIX / "spec_toy.yaml")
    res = ChapterResults(spec, data="public", parameters={"seed": 0})
    res.add_cohort("validation", 50, 20, source="toy")
    row = res.add_metric("Model", "validation", "AUC", 0.78, (0.66, 0.88))
    assert row["reported"] == 0.80 and row["verdict"] == "reproduced" and row["reported_id"] == "auc_val"
    res.add_metric("Model", "validation", "SEN", 0.50)  # |0.50 - 0.75| > 0.05
    res.add_metric("Other", "validation", "AUC", 0.6, (0.5, 0.7))  # not in the paper
    res.add_deviation("toy deviation")
    with pytest.raises(ValueError):
        res.add_metric("Model", "external", "AUC", 0.5)
    counts = res.verdict_counts()
    # auc_train is reported but was not computed: it counts as not comparable
    assert counts == {"reproduced": 1, "not reproduced": 1, "not comparable": 1}
    path = res.write(tmp_path)
    out = json.loads(path.read_text())
    assert out["chapter"] == "toy" and out["data"] == "public"
    assert {m["reported_id"] for m in out["metrics"] if m["reported_id"]} == {"auc_val", "sen_val", "auc_train"}
    other = [m for m in out["metrics"] if m["model"] == "Other"][0]
    assert other["reported"] is None and other["verdict"] == "not comparable"
    assert out["deviations"] == ["toy deviation"]
    table = res.table(only_reported=True)
    assert list(table.columns) == ["model", "cohort", "metric", "reported", "reproduced", "verdict"]
    assert len(table) == 3


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
    raw["reported"].append({"id": "auc_val_abstract", "model": "Model", "cohort": "validation", "metric": "AUC",
                            "value": 0.60, "where": {"section": "Abstract"}})
    p = tmp_path / "toy.yaml"
    p.write_text(yaml.safe_dump(raw))
    res = ChapterResults(load_spec_file(p), data="public", parameters={"seed": 0})
    res.add_metric("Model", "validation", "AUC", 0.78, (0.66, 0.88))
    rows = {r["reported_id"]: r for r in res.all_rows() if r["metric"] == "AUC" and r["cohort"] == "validation"}
    assert rows["auc_val"]["value"] == rows["auc_val_abstract"]["value"] == 0.78
    assert rows["auc_val"]["verdict"] == "reproduced"
    assert rows["auc_val_abstract"]["verdict"] == "not reproduced"  # 0.60 outside [0.66, 0.88]
    # the same number stated a second time adds no row
    raw["reported"][-1].update(value=0.80, ci=[0.70, 0.90])
    p.write_text(yaml.safe_dump(raw))
    res = ChapterResults(load_spec_file(p), data="public", parameters={"seed": 0})
    res.add_metric("Model", "validation", "AUC", 0.78, (0.66, 0.88))
    assert sum(r["metric"] == "AUC" and r["cohort"] == "validation" for r in res.all_rows()) == 1
