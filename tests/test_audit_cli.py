"""``replicate audit`` on any spec file, from any folder; the template; the minimal audit schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from replicate import audit
from replicate.audit_spec import TEMPLATE, load_audit_spec, parse_number
from replicate.cli import main
from replicate.config import specs_dir
from replicate.spec import SpecError, available_specs

SRC = Path(__file__).resolve().parents[1] / "src"


def test_template_is_a_consistent_paper(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["audit", "init"]) == 0
    assert (tmp_path / "audit_spec.yaml").read_text() == TEMPLATE
    assert main(["audit", "init"]) == 2  # never overwrites without --force
    assert "exists" in capsys.readouterr().err
    findings = audit.audit_spec(tmp_path / "audit_spec.yaml")
    assert [f.detail for f in findings if f.severity != "info"] == []
    checks = {f.check for f in findings}
    assert {"confusion_matrix", "ci_method", "cohort_table"} <= checks  # the template exercises the checks


def test_audit_a_spec_file_from_another_folder(tmp_path, monkeypatch, capsys):
    raw = yaml.safe_load(TEMPLATE)
    raw["reported"][2]["value"] = "77.0%"  # no count of 40 negatives is 77.0%
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    assert main(["audit", "mine.yaml", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    bad = [r for r in rows if r["severity"] == "error"]
    assert bad and {r["paper"] for r in rows} == {"my_paper"}
    assert any(r["check"] == "feasibility" and "r003" in r["ids"] and "0.770" in r["detail"] for r in bad)


def test_python_dash_m_from_any_folder(tmp_path):
    (tmp_path / "paper.yaml").write_text(TEMPLATE)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-m", "replicate", "audit", "paper.yaml", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {r["check"] for r in json.loads(out)} >= {"confusion_matrix"}


def test_chapter_spec_by_path_equals_by_id():
    by_id = audit.audit_json("wdlps")
    by_path = [f.to_dict() for f in audit.audit_spec(specs_dir() / "wdlps.yaml")]
    assert by_id == by_path


def test_unknown_target_and_bad_spec_are_clear_errors(tmp_path, capsys):
    assert main(["audit", "no_such_thing"]) == 2
    assert "neither a spec file" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("reported: []\n")
    assert main(["audit", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "cohorts" in err
    (tmp_path / "bad2.yaml").write_text("cohorts: {a: {n: 10}}\nreported: [{cohort: b, metric: AUC, value: 0.7}]\n")
    assert main(["audit", str(tmp_path / "bad2.yaml")]) == 2
    assert "unknown cohort 'b'" in capsys.readouterr().err


@pytest.mark.parametrize("cid", available_specs())
def test_terminal_table_fits_100_columns(cid):
    text = audit.format_findings(audit.audit(cid), width=100)
    assert max(len(line) for line in text.splitlines()) <= 100
    for f in audit.audit(cid):  # nothing is cut, only wrapped
        assert f.detail.split()[-1] in text


def test_printed_numbers_keep_their_decimals():
    assert parse_number("85.30%") == (pytest.approx(0.853), 4)
    assert parse_number("0.850") == (0.85, 3)
    assert parse_number(0.85) == (0.85, None)
    with pytest.raises(SpecError, match="not a number"):
        parse_number("0.8O", "r001.value")
    spec = load_audit_spec(
        {
            "cohorts": {"v": {"n": 50, "n_positive": 20}},
            "reported": [{"cohort": "v", "metric": "SEN", "value": "75.0%", "ci": ["53.1%", "88.8%"]}],
            "table1": [
                {"characteristic": "Sex", "level": "F", "cohort": "v", "k": 12, "percent": "24.0"},
                {"characteristic": "Sex", "cohort": "v", "p_value": "<0.01"},
            ],
        }
    )
    sen, f, p = spec.reported
    assert (sen["value"], sen["decimals"], sen["ci"], sen["model"]) == (0.75, 3, pytest.approx([0.531, 0.888]), "model")
    assert (f["metric"], f["variable"], f["value"], f["decimals"], f["denominators"]) == (
        "PROP",
        "Sex: F",
        pytest.approx(0.24),
        3,
        {"k": 12},
    )
    assert (p["metric"], p["p_value"]) == ("P", "<0.01")
    assert spec.cohorts["v"]["n_negative"] == 30
