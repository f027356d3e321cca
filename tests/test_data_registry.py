"""The registry: every public file with upstream URL and hashes, citations and licences."""

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from replicate.data import list_datasets
from replicate.data.registry import DATASET_INFO, REGISTRY_DIR, Dataset, get_dataset, normalise_files

HEX64 = re.compile(r"^[0-9a-f]{64}$")
MIRROR = os.environ.get("REPLICATE_DATA_MIRROR")


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATE_DATA_DIR", str(tmp_path / "cache"))


def test_registered_datasets_and_counts():
    assert list(DATASET_INFO) == ["ibsi_sts", "busbra", "worc_lipo", "ibsi_phantoms"]
    sts = get_dataset("ibsi_sts").files
    assert len(sts) == 205
    images = sts[sts["path"].str.endswith(".nii.gz")]
    assert len(images) == 204 and (images["verify"] == "voxel").all()
    assert images["voxel_sha256"].str.match(HEX64).all()
    assert images["path"].str.split("/").str[0].nunique() == 51
    for kind in ("MR_T1_image", "MR_T1_mask", "CT_image", "CT_mask"):
        assert images["path"].str.endswith(f"/{kind}.nii.gz").sum() == 51
    xlsx = get_dataset("ibsi_sts").file("INFOclinical_STS.xlsx")
    assert xlsx["verify"] == "file"
    assert xlsx["url"] == "https://wiki.cancerimagingarchive.net/download/attachments/21266533/INFOclinical_STS.xlsx"
    # the 17 images the mirror rebuilt from DICOM keep a note of where they came from
    assert (sts["source"].str.contains("DICOM")).sum() == 17

    bus = get_dataset("busbra").files
    assert len(bus) == 2 + 1064 * 2
    assert bus["path"].str.startswith("Images/").sum() == 1064 and bus["path"].str.startswith("Masks/").sum() == 1064
    base = (
        "https://raw.githubusercontent.com/solutionbeyondnumbers/Ultra-net-codes-/"
        "ad75b72f88df3a55fd9d3f5e0ad4f60be51df828/BUSBRA/"
    )
    assert (bus["url"] == base + bus["path"]).all()

    worc = get_dataset("worc_lipo").files
    assert sorted(worc["path"]) == ["Lipo_radiomicFeatures.csv", "crossvalidationsplits_Lipo.csv"]
    assert (
        "c11e4f1374898bbfa1d28a2e9456405eb857146a" in get_dataset("worc_lipo").file("Lipo_radiomicFeatures.csv")["url"]
    )
    assert (
        "9be98a217f97649d05aaf97b35c11ba8428ab64a"
        in get_dataset("worc_lipo").file("crossvalidationsplits_Lipo.csv")["url"]
    )

    ph = get_dataset("ibsi_phantoms")
    assert sorted(ph.files["path"]) == sorted(
        f"{d}/{f}" for d in ("digital_phantom", "ct_phantom") for f in ("image.nii.gz", "mask.nii.gz", "LICENSE.md")
    ) + ["reference_values.csv"]
    images = ph.files[ph.files["path"].str.endswith(".nii.gz")]
    assert images["url"].str.contains("theibsi/data_sets/6da96021bc91faf4c0cb7fd7fa56a4225d2064a8").all()
    assert images["voxel_sha256"].str.match(HEX64).all()
    ref = ph.file("reference_values.csv")
    assert ref["verify"] == "mirror" and "b952e71e9d40569e8a9ff3c740bc389c04dd6c28" in ref["url"]
    assert "no upstream copy" in ref["source"]


@pytest.mark.parametrize("name", list(DATASET_INFO))
def test_every_row_is_complete(name):
    ds = get_dataset(name)
    f = ds.files
    assert f["sha256"].str.match(HEX64).all()
    assert f["url"].str.startswith("https://").all()
    assert (f["size"] > 0).all()
    assert f["verify"].isin(["file", "voxel", "mirror"]).all()
    assert not f["path"].duplicated().any()
    info = ds.info
    assert info.citation and info.licence and info.title and info.homepage
    assert len(ds.files_sha256) == len(f)


def test_citations_and_licences_from_readmes():
    assert "10.7937/K9/TCIA.2015.7GO2GSKS" in DATASET_INFO["ibsi_sts"].citation
    assert "Vallières" in DATASET_INFO["ibsi_sts"].citation and "Clark" in DATASET_INFO["ibsi_sts"].citation
    assert "CC BY 3.0" in DATASET_INFO["ibsi_sts"].licence
    assert "10.5281/zenodo.7730709" in DATASET_INFO["busbra"].citation
    assert "10.1101/2021.08.19.21262238" in DATASET_INFO["worc_lipo"].citation
    phantoms = DATASET_INFO["ibsi_phantoms"]
    assert "CC BY 4.0" in phantoms.licence and "CC BY-NC 3.0" in phantoms.licence
    assert "NON-COMMERCIAL" in phantoms.licence and "NON-COMMERCIAL" in phantoms.description
    assert "Radiology 2020;295:328" in phantoms.citation and "10.17195/candat.2016.08.1" in phantoms.citation


def test_list_datasets_columns():
    df = list_datasets()
    assert list(df.columns) == ["name", "title", "files", "size_mb", "citation", "licence", "cached"]
    assert df["name"].tolist() == ["ibsi_sts", "busbra", "worc_lipo", "ibsi_phantoms"]
    assert df.set_index("name").loc["busbra", "files"] == 2130
    assert not df["cached"].any()  # the temporary cache is empty


def test_unknown_dataset():
    with pytest.raises(KeyError, match="unknown data set"):
        get_dataset("nope")


def test_normalise_files_rejects_bad_tables():
    good = pd.DataFrame({"path": ["a.txt"], "url": ["https://x/a.txt"], "sha256": ["0" * 64]})
    out = normalise_files(good)
    assert out.loc[0, "verify"] == "file" and out.loc[0, "size"] == 0
    with pytest.raises(ValueError, match="verify mode"):
        normalise_files(good.assign(verify="maybe"))
    with pytest.raises(ValueError, match="without voxel_sha256"):
        normalise_files(good.assign(verify="voxel"))
    with pytest.raises(ValueError, match="relative"):
        normalise_files(good.assign(path="../etc/passwd"))
    with pytest.raises(ValueError, match="duplicated"):
        normalise_files(pd.concat([good, good]))
    with pytest.raises(ValueError, match="missing column"):
        normalise_files(good.drop(columns="sha256"))
    ds = Dataset(DATASET_INFO["worc_lipo"], good)
    assert ds.total_size == 0


@pytest.mark.mirror
@pytest.mark.skipif(not MIRROR, reason="needs REPLICATE_DATA_MIRROR")
def test_registry_matches_what_make_registry_builds_from_the_mirror(tmp_path):
    from replicate.data.make_registry import build

    counts = build(Path(MIRROR), tmp_path)
    assert counts == {"ibsi_sts": 205, "busbra": 2130, "worc_lipo": 2, "ibsi_phantoms": 7}
    for name in counts:
        assert (tmp_path / f"{name}.csv").read_text() == (REGISTRY_DIR / f"{name}.csv").read_text(), name
