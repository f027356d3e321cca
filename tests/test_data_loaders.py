"""load_cohort / load_worc_splits: parsing of the upstream tables, and the real cohorts on the mirror."""

import os
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from replicate.data import Cohort, load_cohort, load_worc_splits
from replicate.data.loaders import read_sts_clinical, worc_patient_id

MIRROR = os.environ.get("REPLICATE_DATA_MIRROR")

HEADERS = [
    "Patient ID",
    "Age",
    "Sex",
    "Histological type",
    "MSKCC type",
    "Site of primary STS",
    "Grade",
    "Time – diagnosis to MRI scan (days)",
    "Time – MRI scan to PET scan (days)",
    "Treatment",
    "Outcome (recurrence, mets)",
    "Time – diagnosis to outcome (days)",
    "Status (NED, AWD, D)",
    "Time – diagnosis to last follow-up (days)",
]


def _toy_sts(root: Path) -> Path:
    """A 4-patient stand-in of TCIA's xlsx, written like the original (en dashes, '--', 'N/A', notes)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Clinical Information"
    ws.append(HEADERS)
    ws.append(
        [
            "STS_001",
            59,
            "Male",
            "lipo",
            "Liposarcoma",
            "left thigh",
            "High",
            -7,
            4,
            "RT + S",
            "Mets – lungs",
            266,
            "D",
            845,
        ]
    )
    ws.append(
        [
            "STS_002",
            61,
            "Female",
            "lms",
            "Leiomyosarcoma",
            "left buttock",
            "N/A",
            -10,
            25,
            "RT + S",
            "--",
            "--",
            "NED",
            501,
        ]
    )
    ws.append(
        [
            "STS_003",
            17,
            "Female",
            "es",
            "Other",
            "right buttock",
            "Low",
            -13,
            15,
            "RT + S",
            "Recurrence – local",
            100,
            "AWD",
            756,
        ]
    )
    ws.append(
        ["STS_004", 40, "Male", "x", "MFH", "right calf", "Intermediate", 3, 1, "S", "Mets – bones", 300, "D", 400]
    )
    ws.append([None] * 14)
    ws.append(["NOTES"])
    ws.append(["Time – diagnosis to outcome: Days elapsed between ..."])
    ws.append(["N/A: Not Available"])
    v = wb.create_sheet("Outcome vector")
    v.append(["Patient ID", "LungMets"])
    for pid, y in [("STS_001", 1), ("STS_002", 0), ("STS_003", 0), ("STS_004", 0)]:
        v.append([pid, y])
    root.mkdir(parents=True, exist_ok=True)
    wb.save(root / "INFOclinical_STS.xlsx")
    return root


def test_sts_clinical_parsing_of_the_tcia_layout(tmp_path):
    root = _toy_sts(tmp_path / "sts")
    table, headers = read_sts_clinical(root / "INFOclinical_STS.xlsx")
    assert headers == HEADERS
    assert table.index.tolist() == ["STS_001", "STS_002", "STS_003", "STS_004"]  # notes ignored
    assert np.isnan(table.loc["STS_002", "grade"]) and table.loc["STS_001", "grade"] == "High"
    assert table.loc["STS_001", "outcome"] == "Mets – lungs"  # TCIA's text as written
    assert np.isnan(table.loc["STS_002", "outcome_days"])

    c = load_cohort("ibsi_sts", root=root)  # images absent -> listed as failures, never dropped
    t = c.table
    assert t["lung_mets"].tolist() == [1, 0, 0, 0]
    assert t["distant_mets"].tolist() == [1, 0, 0, 1]
    assert t["dm_event"].tolist() == [1, 0, 0, 1] and t["dm_time"].tolist() == [266, 501, 756, 300]
    assert t["pfs_event"].tolist() == [1, 0, 1, 1] and t["pfs_time"].tolist() == [266, 501, 100, 300]
    assert t["outcome_site"].tolist()[0] == "lungs"
    assert c.label == "lung_mets" and c.modalities == ["T1", "CT"]
    assert len(c) == 4 and set(c.failures["patient_id"]) == set(t.index)
    assert t.loc["STS_001", "image_T1"].endswith("STS_001/MR_T1_image.nii.gz")
    cases = c.cases("CT")
    assert cases[0].case_id == "STS_001" and cases[0].mask.name == "CT_mask.nii.gz"


def test_sts_lung_mets_cross_check_with_outcome_vector(tmp_path):
    root = _toy_sts(tmp_path / "sts")
    wb = openpyxl.load_workbook(root / "INFOclinical_STS.xlsx")
    wb["Outcome vector"]["B3"] = 1  # STS_002 claims a lung metastasis the outcome text lacks
    wb.save(root / "INFOclinical_STS.xlsx")
    with pytest.raises(ValueError, match="disagrees"):
        load_cohort("ibsi_sts", root=root)


def test_sts_missing_column_is_reported(tmp_path):
    root = _toy_sts(tmp_path / "sts")
    wb = openpyxl.load_workbook(root / "INFOclinical_STS.xlsx")
    wb["Clinical Information"]["G1"] = "Tumour stage"
    wb.save(root / "INFOclinical_STS.xlsx")
    with pytest.raises(ValueError, match="grade"):
        read_sts_clinical(root / "INFOclinical_STS.xlsx")


def test_worc_ids_and_splits_parsing(tmp_path):
    assert worc_patient_id("Lipo-001_0") == "Lipo-001" and worc_patient_id("Lipo-010") == "Lipo-010"
    root = tmp_path / "worc"
    root.mkdir()
    ids = [f"Lipo-{i:03d}" for i in range(1, 6)]
    pd.DataFrame(
        {
            "ID": [f"{p}_0" for p in ids],
            "label": ["liposarcoma", "lipoma", "lipoma", "liposarcoma", "lipoma"],
            "f1": [1, 2, 3, 4, 5],
            "f2": np.arange(5.0),
        }
    ).to_csv(root / "Lipo_radiomicFeatures.csv", index=False)
    splits = pd.DataFrame(
        {
            "0_train": ids[:4],
            "0_test": [ids[4], None, None, None],
            "1_train": ids[1:],
            "1_test": [ids[0], None, None, None],
        }
    )
    splits.to_csv(root / "crossvalidationsplits_Lipo.csv")
    c = load_cohort("worc_lipo", root=root)
    assert c.table.index.tolist() == ids and c.table["label"].tolist() == [1, 0, 0, 1, 0]
    assert list(c.table.columns) == ["label", "diagnosis", "feature_id"]  # features are not table columns
    feats = c.meta["features"]
    assert (
        feats.index.tolist() == ids
        and list(feats.columns) == ["f1", "f2"]
        and all(np.issubdtype(dt, np.floating) for dt in feats.dtypes)
    )
    s = load_worc_splits(root=root)
    assert s == [(ids[:4], [ids[4]]), (ids[1:], [ids[0]])]
    bad = splits.copy()
    bad.loc[1, "0_test"] = ids[0]
    bad.to_csv(root / "crossvalidationsplits_Lipo.csv")
    with pytest.raises(ValueError, match="overlap"):
        load_worc_splits(root=root)


def test_busbra_first_view_per_patient(tmp_path):
    root = tmp_path / "bus"
    (root / "Images").mkdir(parents=True)
    (root / "Masks").mkdir()
    rows = [
        ("bus_0001-l", 1, "idc", "malignant", 4, "GE Logiq 7 @10-14MHz"),
        ("bus_0001-r", 1, "idc", "malignant", 4, "GE Logiq 7 @10-14MHz"),
        ("bus_0002-s", 2, "fibroadenoma", "benign", 3, "Toshiba Aplio 300 @12-14 MHz"),
        ("bus_0003-l", 3, "cyst", "benign", 2, "U-Systems @10-14MHz"),
    ]
    df = pd.DataFrame(rows, columns=["ID", "Case", "Histology", "Pathology", "BIRADS", "Device"])
    df["Width"], df["Height"], df["Side"], df["BBOX"] = 10, 20, "left", "[1,2,3,4]"
    df.to_csv(root / "bus_data.csv", index=False)
    for i in ("0001-l", "0002-s"):
        (root / "Images" / f"bus_{i}.png").write_bytes(b"png")
        (root / "Masks" / f"mask_{i}.png").write_bytes(b"png")
    c = load_cohort("busbra", root=root)
    t = c.table
    assert t.index.tolist() == ["bus_0001-l", "bus_0002-s", "bus_0003-l"]
    assert t["malignant"].tolist() == [1, 0, 0]
    assert t["scanner_group"].tolist() == ["GE", "Toshiba Aplio 300", "U-Systems"]
    assert t["split"].tolist() == ["training", "validation", "validation"]
    assert t.loc["bus_0002-s", "mask_US"].endswith("Masks/mask_0002-s.png")
    assert c.failures["patient_id"].tolist() == ["bus_0003-l", "bus_0003-l"]  # missing files listed


def test_unknown_cohort():
    with pytest.raises(KeyError):
        load_cohort("nope")


# --------------------------------------------------------------------------- the real cohorts (mirror)


@pytest.fixture(scope="module")
def mirror_cache(tmp_path_factory):
    """One verified cache for this module's mirror tests (not the real data/cache)."""
    cache = tmp_path_factory.mktemp("loaders_cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("REPLICATE_DATA_DIR", str(cache))
    yield cache
    mp.undo()


@pytest.mark.mirror
@pytest.mark.xdist_group("data_mirror")
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_ibsi_sts_cohort(mirror_cache):
    c = load_cohort("ibsi_sts")
    assert isinstance(c, Cohort) and c.name == "ibsi_sts"
    t = c.table
    assert len(t) == 51 and t.index[0] == "STS_001" and t.index[-1] == "STS_051"
    assert t.index.name == "patient_id"
    assert int(t["lung_mets"].sum()) == 19
    assert int(t["distant_mets"].sum()) == 24
    assert int(t["grade"].isna().sum()) == 3
    assert set(t["grade"].dropna()) == {"Low", "Intermediate", "High"}
    assert int(t["pfs_event"].sum()) == 27 and int(t["dm_event"].sum()) == 24
    assert (t["dm_time"] > 0).all() and (t["pfs_time"] <= t["followup_days"]).all()
    assert set(t["status"]) == {"NED", "AWD", "D"}
    assert t.loc["STS_006", "outcome"] == "Mets – lungs" and t.loc["STS_006", "lung_mets"] == 1
    for col in (
        "age",
        "sex",
        "histology",
        "site",
        "treatment",
        "outcome",
        "followup_days",
        "image_T1",
        "mask_T1",
        "image_CT",
        "mask_CT",
    ):
        assert col in t
    assert c.label == "lung_mets" and c.modalities == ["T1", "CT"]
    assert c.failures.empty
    assert all(Path(p).is_file() for p in t["image_T1"]) and all(Path(p).is_file() for p in t["mask_CT"])
    assert str(mirror_cache) in t.loc["STS_001", "image_CT"]
    assert len(c.meta["files_sha256"]) == 205
    assert c.meta["clinical_headers"][0] == "Patient ID"


@pytest.mark.mirror
@pytest.mark.xdist_group("data_mirror")
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_busbra_cohort(mirror_cache):
    c = load_cohort("busbra")
    t = c.table
    assert len(t) == 1064 and t["case"].is_unique and c.failures.empty
    counts = t.groupby(["scanner", "malignant"]).size().unstack()
    assert counts.loc["GE Logiq 5"].tolist() == [350, 140]
    assert counts.loc["GE Logiq 7"].tolist() == [327, 161]
    assert counts.loc["Toshiba Aplio 300"].tolist() == [37, 35]
    assert counts.loc["U-Systems"].tolist() == [8, 6]
    assert t["split"].value_counts().to_dict() == {"training": 978, "validation": 86}
    assert t["scanner_group"].value_counts().to_dict() == {"GE": 978, "Toshiba Aplio 300": 72, "U-Systems": 14}
    assert c.label == "malignant" and c.modalities == ["US"] and int(t["malignant"].sum()) == 342
    assert {"birads", "device", "histology", "width", "height", "image_US", "mask_US"} <= set(t.columns)
    assert c.meta["n_views_upstream"] == 1875


@pytest.mark.mirror
@pytest.mark.xdist_group("data_mirror")
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_worc_lipo_cohort_and_splits(mirror_cache):
    c = load_cohort("worc_lipo")
    t = c.table
    assert len(t) == 115 and t.index[0] == "Lipo-001"
    assert t["label"].value_counts().to_dict() == {1: 58, 0: 57}
    feats = c.meta["features"]
    assert feats.shape == (115, 493) and (feats.index == t.index).all()
    assert not any(col.startswith("PREDICT_") for col in t.columns)
    splits = load_worc_splits()
    assert len(splits) == 100
    ids = set(t.index)
    for train, test in splits:
        assert len(train) == 92 and len(test) == 23
        assert not set(train) & set(test)
        assert set(train) | set(test) == ids
        assert len(set(train)) == 92 and len(set(test)) == 23
