"""IBSI compliance card: comparison rule, feature map, phantoms end to end, chapter cards, CLI and page."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from replicate import ibsi
from replicate.cli import main

MIRROR = os.environ.get("REPLICATE_DATA_MIRROR")


# --------------------------------------------------------------------------- the comparison rule


def test_printed_precision_is_half_a_unit_of_the_third_significant_digit():
    assert ibsi.printed_precision(0.698) == pytest.approx(0.0005)
    assert ibsi.printed_precision(556) == pytest.approx(0.5)
    assert ibsi.printed_precision(-0.0288) == pytest.approx(0.00005)
    assert ibsi.printed_precision(6.98e-05) == pytest.approx(5e-08)
    assert ibsi.printed_precision(1490) == pytest.approx(5)
    assert ibsi.printed_precision(0.0) == 0.0


def test_within_uses_the_tolerance_or_the_printed_precision():
    assert ibsi.within(559.9, 556, 4) and ibsi.within(552.0, 556, 4)
    assert not ibsi.within(560.1, 556, 4)
    assert ibsi.within(0.6984, 0.698, np.nan) and ibsi.within(0.6975, 0.698, None)
    assert not ibsi.within(0.6986, 0.698, np.nan)
    assert ibsi.within(2.1486, 2.15, np.nan) and not ibsi.within(2.144, 2.15, np.nan)
    assert not ibsi.within(np.nan, 1.0, 10.0) and not ibsi.within(None, 1.0, 10.0)
    assert ibsi.within(0.0, 0.0, np.nan) and not ibsi.within(1e-6, 0.0, np.nan)


def _ref(rows):
    cols = [
        "phantom",
        "config",
        "ibsi_feature_name",
        "ibsi_code",
        "ibsi_feature_tag",
        "aggregation",
        "aggregation_code",
        "value",
        "tolerance",
    ]
    df = pd.DataFrame(rows, columns=cols)
    df["family"] = df["ibsi_feature_tag"].str.split(".").str[0]
    return df


HAND_MADE = _ref(
    [
        ("digital", "digital", "Volume (mesh)", "RNU0", "morph.vol", "", "", 556.0, 4.0),
        ("digital", "digital", "Mean intensity", "Q4LE", "stat.mean", "", "", 2.15, np.nan),
        ("digital", "digital", "(Excess) intensity kurtosis", "IPH6", "stat.kurt", "", "", -0.355, np.nan),
        ("digital", "digital", "Joint maximum", "GYBY", "cm.joint.max", "3D, averaged", "ITBB", 0.503, np.nan),
        ("digital", "digital", "Joint maximum", "GYBY", "cm.joint.max", "2D, averaged", "BTW3", 0.519, np.nan),
        ("digital", "digital", "Contrast", "ACUI", "cm.contrast", "3D, averaged", "ITBB", 5.32, np.nan),
        ("digital", "digital", "Volume fraction at 10% intensity", "BC2M", "ivh.V10", "", "", 0.324, np.nan),
        (
            "digital",
            "digital",
            "Normalised grey level non-uniformity",
            "5SPA",
            "ngl.glnu.norm",
            "3D",
            "KOBO",
            0.512,
            np.nan,
        ),
    ]
)
HAND_VALUES = {
    ("shape:MeshVolume", ""): 556.33,
    ("firstorder:Mean", ""): 2.1486,
    ("firstorder:Kurtosis", ""): 2.6454,
    ("glcm:MaximumProbability", "ITBB"): 0.5028,
    ("glcm:Contrast", "ITBB"): 5.40,
    ("firstorder:Uniformity", ""): 0.5124,
}


def test_compare_on_hand_made_rows():
    rows = ibsi.compare(
        HAND_MADE, HAND_VALUES, produced_codes={"ITBB", "KOBO"}, explain=lambda row: f"because {row['tag']}"
    )
    status = dict(zip(rows["tag"] + "/" + rows["aggregation_code"], rows["status"]))
    assert status == {
        "morph.vol/": "match",
        "stat.mean/": "match",
        "stat.kurt/": "match after conversion",
        "cm.joint.max/ITBB": "match",
        "cm.joint.max/BTW3": "not mappable",
        "cm.contrast/ITBB": "mismatch",
        "ivh.V10/": "not mappable",
        "ngl.glnu.norm/KOBO": "match",  # PyRadiomics' first-order Uniformity, the whole ROI's value
    }
    by = rows.set_index(rows["tag"] + "/" + rows["aggregation_code"])
    assert by.loc["stat.kurt/", "converted"] == pytest.approx(2.6454 - 3)
    assert "excess kurtosis" in by.loc["stat.kurt/", "reason"]
    assert by.loc["cm.contrast/ITBB", "reason"] == "because cm.contrast"
    assert "per-slice" in by.loc["cm.joint.max/BTW3", "reason"]
    assert "intensity-volume histogram" in by.loc["ivh.V10/", "reason"]
    assert by.loc["stat.mean/", "tolerance_rule"] == "printed precision"
    assert by.loc["morph.vol/", "tolerance_rule"] == "IBSI"

    summary = ibsi.family_summary(rows.assign(route="pyradiomics"))
    cm = summary[summary["family"] == "cm"].iloc[0]
    assert (cm["reference values"], cm["compared"], cm["match"], cm["mismatch"], cm["not mappable"]) == (3, 2, 1, 1, 1)
    assert list(summary["family"]) == ["morph", "stat", "ivh", "cm", "ngl"]  # IBSI's order


def test_compare_refuses_a_missing_value():
    with pytest.raises(ibsi.IBSIError, match="no extracted value for shape:MeshVolume"):
        ibsi.compare(HAND_MADE.iloc[:1], {}, produced_codes=set())


# --------------------------------------------------------------------------- settings as data


def test_feature_map_and_configs_are_consistent():
    fmap = ibsi.load_feature_map()
    assert len(fmap) == 169 and fmap["ibsi_feature_tag"].is_unique
    mapped = fmap[fmap["pyradiomics"] != ""]
    assert len(mapped) == 15 + 15 + 2 + 25 + 16 + 16 + 5 + 15  # morph stat ih cm rlm szm ngt ngl
    assert set(fmap.loc[fmap["conversion"] != "", "ibsi_feature_tag"]) == {"stat.kurt", "morph.asphericity"}
    # every mapped PyRadiomics feature exists in PyRadiomics (deprecated ones raise, so none may be mapped)
    from radiomics import getFeatureClasses

    classes = getFeatureClasses()
    for key in mapped["pyradiomics"]:
        cls, name = key.split(":")
        names = classes[cls].getFeatureNames()
        assert name in names, key
        assert not names[name] or cls == "shape", f"{key} is deprecated: PyRadiomics computes no value"
    configs = ibsi.load_configs()
    assert list(configs) == list(ibsi.CONFIGS)
    assert [r.codes.get("glcm") for r in configs["digital"].runs] == ["ITBB", "IAZD", "JJUI", "ZW7Z"]
    assert configs["A"].setting["resegmentRange"] == [-500, 400] and configs["A"].setting["binWidth"] == 25
    assert configs["D"].setting["resegmentMode"] == "sigma"
    assert configs["E"].preprocessing["outlier_sd_after_range"] == 3
    assert all(c.preprocessing for n, c in configs.items() if n in "BCDE")


def test_malformed_feature_map_is_rejected(tmp_path, monkeypatch):
    bad = tmp_path / "ibsi"
    bad.mkdir()
    text = (
        (ibsi.SETTINGS_DIR / "feature_map.csv")
        .read_text()
        .replace(",firstorder:Kurtosis,x - 3,", ",firstorder:Kurtosis,x * 3,")
    )
    (bad / "feature_map.csv").write_text(text)
    monkeypatch.setattr(ibsi, "SETTINGS_DIR", bad)
    ibsi._feature_map.cache_clear()
    try:
        with pytest.raises(ibsi.IBSIError, match="unknown conversion"):
            ibsi.load_feature_map()
    finally:
        monkeypatch.undo()
        ibsi._feature_map.cache_clear()


def test_parse_configs():
    assert ibsi.parse_configs("all") == list(ibsi.CONFIGS)
    assert ibsi.parse_configs(["digital", "c", "C"]) == ["digital", "C"]
    with pytest.raises(ibsi.IBSIError, match="unknown IBSI configuration 'F'"):
        ibsi.parse_configs("F")


def test_centred_grid_follows_ibsi():
    import SimpleITK as sitk

    img = sitk.Image(204, 201, 60, sitk.sitkFloat32)
    img.SetSpacing((0.977, 0.977, 3.0))
    img.SetOrigin((-10.0, 5.0, 100.0))
    size, spacing, origin = ibsi._centred_grid(img, [2, 2, 2])
    assert size == [100, 99, 90]  # ceil(204 * 0.977 / 2), ceil(201 * 0.977 / 2), 60 * 3 / 2
    # same centre as the original grid
    for n0, s0, o0, n1, s1, o1 in zip(img.GetSize(), img.GetSpacing(), img.GetOrigin(), size, spacing, origin):
        assert o0 + s0 * (n0 - 1) / 2 == pytest.approx(o1 + s1 * (n1 - 1) / 2)
    size2, spacing2, origin2 = ibsi._centred_grid(img, [2, 2, 0])  # in-plane only (configuration B)
    assert size2[2] == 60 and spacing2[2] == 3.0 and origin2[2] == pytest.approx(100.0)


# --------------------------------------------------------------------------- the phantoms end to end


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    """The data set verified into a fresh cache, and a fresh feature cache (nothing read from the shared one)."""
    data = tmp_path_factory.mktemp("ibsi_data")
    mp = pytest.MonkeyPatch()
    mp.setenv("REPLICATE_DATA_DIR", str(data))
    yield {"root": ibsi.phantom_root(), "cache": tmp_path_factory.mktemp("ibsi_features")}
    mp.undo()


def _report(phantoms, configs, **kw):
    return ibsi.compliance(configs, root=phantoms["root"], cache_dir=phantoms["cache"], **kw)


@pytest.mark.mirror
@pytest.mark.xdist_group("ibsi_phantoms")
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_reference_table_is_fully_mapped(phantoms):
    ref = ibsi.load_reference(phantoms["root"])
    assert len(ref) == 1803
    assert ref.groupby("config").size().to_dict() == {"digital": 482, "A": 346, "B": 346, "C": 209, "D": 210, "E": 210}
    fmap = ibsi.load_feature_map().set_index("ibsi_feature_tag")
    assert set(ref["ibsi_feature_tag"]) == set(fmap.index)
    assert (fmap.loc[ref["ibsi_feature_tag"], "ibsi_code"].to_numpy() == ref["ibsi_code"].to_numpy()).all()
    texture_codes = set(ref["aggregation_code"]) - {""}
    produced = {c for cfg in ibsi.load_configs().values() for r in cfg.runs for c in r.codes.values() if c}
    assert texture_codes == produced | set(ibsi.not_expressible())


@pytest.mark.mirror
@pytest.mark.xdist_group("ibsi_phantoms")
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_digital_phantom_end_to_end(phantoms):
    report = _report(phantoms, "digital")
    rows = report.rows
    assert set(rows["route"]) == {"pyradiomics"}  # nothing to interpolate
    assert len(rows) == 482
    compared = rows[rows["status"] != "not mappable"]
    assert len(compared) >= 100
    vol = rows[rows["tag"] == "morph.vol"].iloc[0]
    assert vol["reference"] == 556 and vol["tolerance"] == 4
    assert vol["ours"] == pytest.approx(556.33, abs=0.01) and vol["status"] == "match"
    mean = rows[rows["tag"] == "stat.mean"].iloc[0]
    assert mean["reference"] == 2.15 and mean["ours"] == pytest.approx(159 / 74) and mean["status"] == "match"
    # every comparable value matches, except the documented ones
    off = compared[compared["status"] != "match"]
    assert dict(zip(off["tag"], off["status"])) == {
        "morph.asphericity": "match after conversion",
        "stat.kurt": "match after conversion",
        "morph.pca.minor": "mismatch",
        "morph.pca.least": "mismatch",
    }
    assert off.loc[off["tag"] == "morph.pca.minor", "reason"].str.contains("sample covariance").all()
    # every texture aggregation PyRadiomics can express was compared, the 2-D ones were not
    cm = compared[compared["family"] == "cm"]
    assert set(cm["aggregation_code"]) == {"ITBB", "IAZD", "JJUI", "ZW7Z"} and len(cm) == 100
    assert set(rows.loc[rows["aggregation_code"].isin(["BTW3", "SUJT", "8QNN"]), "status"]) == {"not mappable"}
    # a warm run reads the cache
    again = _report(phantoms, "digital")
    assert again.extractions[("digital", "pyradiomics")].cached
    pd.testing.assert_frame_equal(again.rows, rows)


@pytest.mark.slow
@pytest.mark.mirror
@pytest.mark.xdist_group("ibsi_phantoms")
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_ct_configuration_a_end_to_end(phantoms):
    report = _report(phantoms, "A")
    rows = report.rows
    compared = rows[rows["status"] != "not mappable"]
    assert len(compared) == 150
    assert (compared["status"].isin(["match", "match after conversion"])).all(), compared.loc[
        compared["status"] == "mismatch", "tag"
    ].tolist()
    assert set(compared.loc[compared["family"] == "cm", "aggregation_code"]) == {"JJUI", "ZW7Z"}
    assert report.extractions[("A", "pyradiomics")].grey_level_offset == 0  # the ROI reaches -500 HU
    text = ibsi.format_report(report, width=100)
    assert "NON-COMMERCIAL" in text and max(len(line) for line in text.splitlines()) <= 100


@pytest.mark.slow
@pytest.mark.mirror
@pytest.mark.xdist_group("ibsi_phantoms")
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_interpolating_configurations_both_routes(phantoms):
    report = _report(phantoms, ["B", "C", "D", "E"])
    t = report.totals().set_index(["route", "config"])
    for c in "BDE":  # with IBSI's interpolation every comparable value matches
        r = t.loc[("ibsi-preprocessed", c)]
        assert (r["compared"], r["match"] + r["match after conversion"]) == (150, 150), c
    for c in "BCDE":  # PyRadiomics' own interpolation misses most of them
        assert t.loc[("pyradiomics", c), "mismatch"] > 50, c
    rows = report.rows
    first = rows[(rows["route"] == "pyradiomics") & (rows["status"] == "mismatch")]
    assert first.loc[first["config"] != "C", "reason"].str.startswith("pre-processing").all()
    # C: what is left are the features of grey-level values, k bins below IBSI's, and the shift explains them
    k = report.extractions[("C", "ibsi-preprocessed")].grey_level_offset
    assert k == 2
    left = rows[(rows["route"] == "ibsi-preprocessed") & (rows["config"] == "C") & (rows["status"] == "mismatch")]
    assert set(left["tag"]) == set().union(*ibsi.GREY_LEVEL_VALUED.values())
    for tag, shift in (("cm.joint.avg", k), ("cm.sum.avg", 2 * k)):
        for r in left[left["tag"] == tag].itertuples():
            assert ibsi.within(r.ours + shift, r.reference, r.tolerance), (tag, r.ours, r.reference)
    # E: the range and the outlier filter combined into one range
    notes = report.extractions[("E", "ibsi-preprocessed")].notes
    lo, hi = notes["resegmentRange"]
    assert -1000 <= lo < hi <= 400 and notes["outlier_filter"]["k"] == 3


# --------------------------------------------------------------------------- chapter cards


def test_chapter_cards():
    sts = ibsi.chapter_card("sts")
    assert (sts.n_features, sts.n_original, sts.n_filtered) == (1379, 105, 1274)
    glcm = sts.classes.set_index("class").loc["glcm"]
    assert (glcm["features"], glcm["IBSI counterpart"]) == (22, 22)
    verdict = dict(zip(sts.settings["setting"], sts.settings["verdict"]))
    assert verdict["image types"] == "outside IBSI-1"
    assert verdict["voxelArrayShift"] == "differs"  # 300: energy and RMS are not IBSI's
    assert verdict["discretisation"] == "differs" and verdict["kurtosis"] == "differs"
    assert verdict["intensity normalisation"] == "not standardised by IBSI-1"

    us = ibsi.chapter_card("us")
    shape = us.classes.set_index("class").loc["shape2D"]
    assert shape["IBSI counterpart"] == 0
    assert dict(zip(us.settings["setting"], us.settings["verdict"]))["morphology"] == "outside IBSI-1"

    alt = ibsi.chapter_card("alt")  # settings from the spec; binCount is IBSI's fixed bin number
    assert alt.n_filtered == 0 and alt.source.startswith("spec alt")
    assert dict(zip(alt.settings["setting"], alt.settings["verdict"]))["discretisation"] == "conformant"
    with pytest.raises(ibsi.IBSIError, match="no IBSI card"):
        ibsi.chapter_card("nope")


# --------------------------------------------------------------------------- command line and page


@pytest.mark.mirror
@pytest.mark.xdist_group("ibsi_phantoms")
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_cli_json_and_text(phantoms, monkeypatch, capsys):
    monkeypatch.setenv("REPLICATE_FEATURE_CACHE", str(phantoms["cache"]))
    assert main(["ibsi", "--config", "digital", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"dataset", "licences", "tolerance_rule", "routes", "configs", "totals", "summary", "rows"}
    assert out["licences"] == {"digital": "IBSI digital phantom: CC BY 4.0"}
    assert list(out["configs"]) == ["digital"]
    assert len(out["rows"]) == 482
    row = next(r for r in out["rows"] if r["tag"] == "morph.vol")
    assert {
        "phantom",
        "config",
        "ibsi_code",
        "feature",
        "aggregation",
        "reference",
        "tolerance",
        "ours",
        "status",
        "reason",
    } <= set(row)
    assert row["ibsi_code"] == "RNU0" and row["status"] == "match"
    total = out["totals"][0]
    assert total["config"] == "digital" and total["compared"] >= 100
    assert main(["ibsi", "--config", "digital"]) == 0
    text = capsys.readouterr().out
    assert "CC BY 4.0" in text and max(len(line) for line in text.splitlines()) <= 100
    with pytest.raises(SystemExit):  # argparse rejects an unknown configuration
        main(["ibsi", "--config", "F"])


@pytest.mark.slow
@pytest.mark.mirror
@pytest.mark.xdist_group("ibsi_phantoms")
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_page_executes_through_the_runner(phantoms, tmp_path):
    from replicate.book import EXTRA_PAGES
    from replicate.runner import run_chapter

    assert "ibsi" in EXTRA_PAGES
    run_chapter("ibsi", {"configs": ["digital", "A"]}, tmp_path, progress=False, require_results=False)
    data = json.loads((tmp_path / "ibsi.json").read_text())
    assert list(data["configs"]) == ["digital", "A"]
    nb = json.loads((tmp_path / "ibsi.ipynb").read_text())
    text = json.dumps([o for c in nb["cells"] for o in c.get("outputs", [])])
    assert "NON-COMMERCIAL" in text and "### sts" in text and "Error" not in text
