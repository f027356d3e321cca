import copy
from pathlib import Path

import pytest
import yaml

from replicate.config import specs_dir
from replicate.spec import CHAPTER_IDS, SpecError, available_specs, load_spec, load_spec_file, validate

FIX = Path(__file__).parent / "fixtures"


def test_toy_spec_loads_and_indexes():
    spec = load_spec_file(FIX / "spec_toy.yaml")
    assert spec.id == "toy"
    assert spec.find_reported("Model", "validation", "AUC")["value"] == 0.80
    assert spec.find_reported("Model", "validation", "ACC") is None
    assert spec.denominators(spec.find_reported("Model", "validation", "SEN")) == {
        "n": 50,
        "n_positive": 20,
        "n_negative": 30,
    }
    assert spec.profile("quick") == {"n_splits": 5}
    with pytest.raises(SpecError):
        spec.profile("medium")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.pop("comparability"), "comparability"),
        (lambda r: r.pop("margins"), "margins"),
        (lambda r: r["comparability"]["public"].update(level="reproducible"), "reproducible"),
        (lambda r: r["reported"][0].update(comparability={"level": "none"}), "without a reason"),
        (lambda r: r["reported"][0].update(cohort="nowhere"), "unknown cohort"),
        (lambda r: r["reported"][1].update(id="auc_val"), "duplicate"),
        (lambda r: r["reported"][0].update(ci=[0.9, 0.7]), "lower bound"),
        (lambda r: r["cohorts"]["training"].update(n_positive=50), "n_positive"),
        (lambda r: r["reported"][0].update(colour="red"), "spec: unknown key 'colour' in reported/0$"),
    ],
)
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


# ----------------------------------------------------------------------------- the strict sections


def _raw(cid: str) -> dict:
    return yaml.load((specs_dir() / f"{cid}.yaml").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _rename(node: dict, old: str, new: str) -> None:
    node[new] = node.pop(old)


@pytest.mark.parametrize(
    "cid, path, old, new",
    [
        ("sts", ["profiles", "quick"], "cv_repeats", "cv_repeat"),
        ("us", ["profiles", "full"], "svm_grid", "svm_grids"),
        ("alt", ["profiles", "quick"], "n_patients", "n_patient"),
        ("rls", ["design", "robustness"], "icc_threshold", "icc_treshold"),
        ("wdlps", ["design"], "handcrafted_sets", "handcrafted_set"),
        ("alt", ["design", "twin"], "cohort_names", "cohort_name"),
        ("sts", ["synthetic", "centres", "Institution-2"], "noise", "noize"),
        ("us", ["synthetic", "centres", "Hospital-2"], "speckle", "speckel"),
        ("rls", ["synthetic", "survival", 0], "hazard_ratio", "hazard_ration"),
    ],
)
def test_a_typo_is_an_error_naming_the_file_and_the_key(tmp_path, cid, path, old, new):
    raw = _raw(cid)
    node = raw
    for part in path:
        node = node[part]
    _rename(node, old, new)
    (tmp_path / f"{cid}.yaml").write_text(yaml.dump(raw, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    where = "/".join(map(str, path))
    with pytest.raises(SpecError) as err:
        load_spec_file(tmp_path / f"{cid}.yaml")
    assert str(err.value) == f"{cid}.yaml: unknown key {new!r} in {where} (did you mean {old!r}?)"


def test_an_unknown_key_far_from_any_known_one_gets_no_suggestion():
    raw = _raw("sts")
    raw["profiles"]["quick"]["colour"] = "red"
    with pytest.raises(SpecError, match=r"^sts.yaml: unknown key 'colour' in profiles/quick$"):
        validate(raw, "sts.yaml")


@pytest.mark.parametrize(
    "cid, path, value, message",
    [
        ("sts", ["profiles", "full", "cv_folds"], 1, "1 is less than the minimum of 2 (at profiles/full/cv_folds)"),
        ("rls", ["design", "features", "deep", "layer"], "fc", "'fc' is not one of"),
        ("us", ["design", "robustness", "perturbation"], "shrink", "'shrink' is not one of"),
        (
            "wdlps",
            ["profiles", "quick", "hcr_image_types"],
            ["Original", "Wavlet"],
            "'Wavlet' is not one of ['Original', 'Wavelet',",
        ),
        ("alt", ["synthetic", "kind"], "mri", "'mri' is not one of ['volume', 'ultrasound'] (at synthetic/kind)"),
    ],
)
def test_a_wrong_value_is_an_error_naming_its_place(cid, path, value, message):
    raw = _raw(cid)
    node = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(SpecError) as err:
        validate(raw, f"{cid}.yaml")
    assert str(err.value).startswith(f"{cid}.yaml: ") and message in str(err.value)


@pytest.mark.parametrize("cid", CHAPTER_IDS)
@pytest.mark.parametrize("section", ["design", "synthetic", "profiles"])
def test_a_chapter_spec_needs_its_strict_sections(cid, section):
    raw = _raw(cid)
    raw.pop(section)
    with pytest.raises(SpecError, match=f"'{section}' is a required property"):
        validate(raw, f"{cid}.yaml")


def test_defaults_are_filled_in_from_the_schema():
    raw = _raw("sts")
    raw["design"].pop("dlrn", None)
    raw["design"]["robustness"].pop("icc_kind")
    raw["design"]["chosen_signature"].pop("smote")
    raw["profiles"]["quick"].pop("mrmr_pool")
    for key in ("semantic", "id_prefix", "geometry"):
        raw["synthetic"].pop(key, None)
    raw["synthetic"]["survival"][0].pop("dropout")
    validate(raw, "sts.yaml")
    d, syn = raw["design"], raw["synthetic"]
    assert d["dlrn"] == {"score_name": "Rad-signature"}
    assert d["robustness"]["icc_kind"] == "ICC(2,1)" and d["chosen_signature"]["smote"] is False
    assert raw["profiles"]["quick"]["mrmr_pool"] is None
    assert syn["semantic"] is True and syn["id_prefix"] == "SYN"
    assert syn["geometry"] == {
        "shape": [64, 64, 24],
        "spacing": [1.0, 1.0, 3.0],
        "tumour_diameter_mm": {"mean": [30, 38], "sd": [7, 9]},
    }
    assert syn["survival"][0]["dropout"] == 0.0 and syn["clinical"][0]["missing"] == 0.0
    assert syn["centres"]["Institution-1"] == {"scale": 1.0, "offset": 0.0, "noise": 0.03, "blur": 0.0}


def test_filling_defaults_is_idempotent_and_leaves_given_values():
    raw = _raw("us")
    once = copy.deepcopy(raw)
    validate(once, "us.yaml")
    twice = copy.deepcopy(once)
    validate(twice, "us.yaml")
    assert twice == once
    assert once["profiles"]["quick"]["svm_grid"] == raw["profiles"]["quick"]["svm_grid"]
    assert once["synthetic"]["centres"]["Hospital-2"]["noise"] == raw["synthetic"]["centres"]["Hospital-2"]["noise"]
    assert once["synthetic"]["centres"]["Hospital-2"]["blur"] == 0.0  # not in the file: the default


def test_defaults_are_copies():
    a, b = _raw("alt"), _raw("alt")
    validate(a, "alt.yaml")
    a["synthetic"]["survival"].append({"name": "os"})
    validate(b, "alt.yaml")
    assert b["synthetic"]["survival"] == []


@pytest.mark.parametrize("path", sorted(FIX.glob("*.yaml")), ids=lambda p: p.name)
def test_the_fixture_specs_still_load(path):
    spec = load_spec_file(path)
    assert spec.id and spec.reported


def _schema_files() -> list[Path]:
    return [specs_dir() / "schema.yaml", *sorted((specs_dir() / "schema").glob("*.yaml"))]


@pytest.mark.parametrize("path", _schema_files(), ids=lambda p: p.name)
def test_schema_files_are_valid_and_keep_defaults_out_of_branches(path):
    from jsonschema import Draft202012Validator

    node = yaml.safe_load(path.read_text())
    Draft202012Validator.check_schema(node)
    bad = []

    def walk(x, where, in_branch):
        if isinstance(x, dict):
            if in_branch and "default" in x:
                bad.append(where)
            for k, v in x.items():
                walk(v, f"{where}/{k}", in_branch or k in ("anyOf", "oneOf", "if", "not"))
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{where}/{i}", in_branch)

    walk(node, path.name, False)
    assert not bad, f"a default under anyOf/oneOf/if/not is filled in even when its branch fails: {bad}"
