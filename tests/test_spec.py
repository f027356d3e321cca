from pathlib import Path

import pytest
import yaml

from replicate.spec import CHAPTER_IDS, SpecError, available_specs, load_spec, load_spec_file, validate

FIX = Path(__file__).parent / "fixtures"


def test_toy_spec_loads_and_indexes():
    spec = load_spec_file(FIX / "spec_toy.yaml")
    assert spec.id == "toy"
    assert spec.find_reported("Model", "validation", "AUC")["value"] == 0.80
    assert spec.find_reported("Model", "validation", "ACC") is None
    assert spec.denominators(spec.find_reported("Model", "validation", "SEN")) == {"n": 50, "n_positive": 20,
                                                                                    "n_negative": 30}
    assert spec.profile("quick") == {"n_splits": 5}
    with pytest.raises(SpecError):
        spec.profile("medium")


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("comparability"), "comparability"),
    (lambda r: r.pop("margins"), "margins"),
    (lambda r: r["comparability"]["public"].update(level="reproducible"), "reproducible"),
    (lambda r: r["reported"][0].update(comparability={"level": "none"}), "without a reason"),
    (lambda r: r["reported"][0].update(cohort="nowhere"), "unknown cohort"),
    (lambda r: r["reported"][1].update(id="auc_val"), "duplicate"),
    (lambda r: r["reported"][0].update(ci=[0.9, 0.7]), "lower bound"),
    (lambda r: r["cohorts"]["training"].update(n_positive=50), "n_positive"),
    (lambda r: r["reported"][0].update(colour="red"), "Additional properties"),
])
def test_invalid_specs_are_rejected(mutate, message):
    raw = yaml.safe_load((FIX / "spec_toy.yaml").read_text())
    mutate(raw)
    with pytest.raises(SpecError, match=message):
        validate(raw)


@pytest.mark.parametrize("cid", available_specs())
def test_every_shipped_spec_validates(cid):
    spec = load_spec(cid)
    assert spec.id == cid
    assert spec.reported, f"{cid}: a spec without reported numbers"
    assert cid in CHAPTER_IDS


def test_unknown_spec_is_a_clear_error():
    with pytest.raises(SpecError, match="no spec for chapter 'nope'"):
        load_spec("nope")
