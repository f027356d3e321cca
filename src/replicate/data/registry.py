"""The public data sets: what they are, how to cite them, and every file with its upstream URL and hash.

Each data set has a table ``src/replicate/data/registry/<name>.csv`` (built once
from the mirror by ``python -m replicate.data.make_registry``) with one row per
file:

``path``
    path relative to the data set's root (the same below the cache and the mirror)
``url``
    where ``fetch`` downloads it from when there is no mirror
``sha256``, ``size``
    of the file as the mirror holds it (unchanged from upstream, except the
    ``ibsi_sts`` NIfTI images, which the mirror cropped and re-encoded)
``verify``
    ``file``: the file's sha256 must match; ``voxel``: the file's sha256 *or*
    the sha256 of its voxel array (``voxel_sha256``) must match; ``mirror``:
    the sha256 must match and the file can only come from a data mirror (data
    the mirror derived, with no upstream copy: ``url`` names its source)
``voxel_sha256``, ``dtype``, ``size_xyz``, ``spacing_mm``, ``origin_mm``
    (``voxel`` rows) the voxel-array hash (numpy C order, z-y-x as SimpleITK's
    ``GetArrayFromImage`` returns it) and the geometry of the mirror's cropped
    image, so a copy rebuilt from upstream can be checked (``ibsi_phantoms``
    records them for its images too, as information)
``source``
    a note where the mirror's own source differs from ``url``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

REGISTRY_DIR = Path(__file__).resolve().parent / "registry"

FILE_COLUMNS = [
    "path",
    "url",
    "sha256",
    "size",
    "verify",
    "voxel_sha256",
    "dtype",
    "size_xyz",
    "spacing_mm",
    "origin_mm",
    "source",
]
VERIFY_MODES = ("file", "voxel", "mirror")


@dataclass(frozen=True)
class DatasetInfo:
    """What a data set is and how to cite it (for ``list_datasets``, the README and the book)."""

    name: str
    title: str
    description: str
    citation: str
    licence: str
    homepage: str
    doi: str = ""


DATASET_INFO: dict[str, DatasetInfo] = {
    "ibsi_sts": DatasetInfo(
        name="ibsi_sts",
        title="TCIA Soft-tissue-Sarcoma (IBSI validation set)",
        description=(
            "51 patients with soft-tissue sarcoma of the extremities: pre-treatment T1-weighted MRI and the CT "
            "of the FDG-PET/CT exam with GTV masks (NIfTI, cropped to the mask's bounding box + 20 mm), as "
            "redistributed by the Image Biomarker Standardisation Initiative (theibsi/data_sets, "
            "ibsi_validation, commit 6da96021), and TCIA's clinical table INFOclinical_STS.xlsx."
        ),
        citation=(
            "Vallières M, Freeman CR, Skamene SR, El Naqa I. A radiomics model from joint FDG-PET and MRI "
            "texture features for the prediction of lung metastases in soft-tissue sarcomas of the "
            "extremities. Phys Med Biol 2015;60:5471–5496. Data: Vallières M et al. Soft-tissue-Sarcoma, The "
            "Cancer Imaging Archive, doi:10.7937/K9/TCIA.2015.7GO2GSKS. Clark K et al. The Cancer Imaging "
            "Archive (TCIA): maintaining and operating a public information repository. J Digit Imaging "
            "2013;26:1045–1057."
        ),
        licence="CC BY 3.0 (TCIA Soft-tissue-Sarcoma collection; cite the three references)",
        homepage="https://doi.org/10.7937/K9/TCIA.2015.7GO2GSKS",
        doi="10.7937/K9/TCIA.2015.7GO2GSKS",
    ),
    "busbra": DatasetInfo(
        name="busbra",
        title="BUS-BRA breast ultrasound (first view per patient)",
        description=(
            "1,064 patients, one view each (the first row per patient of bus_data.csv): 8-bit grayscale PNG "
            "ultrasound images and binary lesion masks, biopsy-proven benign/malignant, BI-RADS and scanner "
            "(GE Logiq 5/7, Toshiba Aplio 300, U-Systems). Copy in solutionbeyondnumbers/Ultra-net-codes- "
            "(folder BUSBRA, commit ad75b72f)."
        ),
        citation=(
            "Gómez-Flores W, Gregorio-Calas MJ, Coelho de Albuquerque Pereira W. BUS-BRA: a breast ultrasound "
            "dataset for assessing computer-aided diagnosis systems. Medical Physics 2024. Zenodo "
            "doi:10.5281/zenodo.7730709."
        ),
        licence="BUS-BRA licence (LICENSE.txt: MIT-style permissive; papers using the data must cite the article)",
        homepage="https://doi.org/10.5281/zenodo.7730709",
        doi="10.5281/zenodo.7730709",
    ),
    "worc_lipo": DatasetInfo(
        name="worc_lipo",
        title="WORC Lipo: radiomics features and the WORC cross-validation splits",
        description=(
            "115 patients (well-differentiated liposarcoma/ALT 58, lipoma 57; Cohort 1 of the ALT-vs-lipoma "
            "studies, Erasmus MC) with 493 WORC/PREDICT features from T1 MRI (teaching copy in "
            "jveenland/TM10007_ML_Project, commit c11e4f13) and WORC's 100 random 92/23 train/test splits "
            "(MStarmans91/WORCDatabase, commit 9be98a21). The images are on the WORC XNAT server "
            "(replicate.data.xnat_images)."
        ),
        citation=(
            "Starmans MPA, Timbergen MJM, Vos M, et al. The WORC database: MRI and CT scans, segmentations, "
            "and clinical labels for 932 patients from six radiomics studies. medRxiv 2021, "
            "doi:10.1101/2021.08.19.21262238. Vos M et al. Radiomics approach to distinguish between well "
            "differentiated liposarcomas and lipomas on MRI. Br J Surg 2019."
        ),
        licence=(
            "No data licence stated upstream; WORCDatabase asks users to cite the WORC database paper. The "
            "feature table is a teaching copy without a stated licence."
        ),
        homepage="https://xnat.bmia.nl/data/projects/worc",
        doi="10.1101/2021.08.19.21262238",
    ),
    "ibsi_phantoms": DatasetInfo(
        name="ibsi_phantoms",
        title="IBSI-1 digital phantom, CT radiomics phantom PAT1 and consensus reference values",
        description=(
            "The Image Biomarker Standardisation Initiative's chapter-1 benchmark: the 5x4x4 digital phantom "
            "(CC BY 4.0) and the CT of lung-cancer patient PAT1 with its GTV (CC BY-NC 3.0, NON-COMMERCIAL "
            "USE ONLY) as NIfTI (theibsi/data_sets, commit 6da96021), and 1,803 consensus reference values "
            "with tolerances for the digital phantom and CT configurations A-E, parsed from the IBSI reference "
            "manual (theibsi/ibsi-doc, docs/03_Image_features.rst, commit b952e71e)."
        ),
        citation=(
            "Zwanenburg A, Vallières M, Abdalah MA, et al. The Image Biomarker Standardization Initiative: "
            "standardized quantitative radiomics for high-throughput image-based phenotyping. Radiology "
            "2020;295:328–338. IBSI reference manual: arXiv:1612.07003. CT phantom: Lambin P, Leijenaar RTH, "
            "Deist TM, et al. Radiomics: the bridge between medical imaging and personalized medicine. Nat Rev "
            "Clin Oncol 2017;14:749–762; Lambin P. Radiomics Digital Phantom, CancerData 2016, "
            "doi:10.17195/candat.2016.08.1."
        ),
        licence=(
            "Digital phantom: CC BY 4.0. CT phantom PAT1: CC BY-NC 3.0 - NON-COMMERCIAL USE ONLY. Reference "
            "values: no licence file upstream (factual IBSI reference data; cite IBSI)."
        ),
        homepage="https://github.com/theibsi/data_sets",
        doi="10.17195/candat.2016.08.1",
    ),
}


@dataclass
class Dataset:
    """A registered data set: its description and its file table (one row per file)."""

    info: DatasetInfo
    files: pd.DataFrame = field(repr=False)

    @property
    def name(self) -> str:
        return self.info.name

    def __post_init__(self) -> None:
        self.files = normalise_files(self.files, self.name)

    def file(self, path: str) -> pd.Series:
        hit = self.files[self.files["path"] == path]
        if hit.empty:
            raise KeyError(f"{self.name}: no registered file {path!r}")
        return hit.iloc[0]

    @property
    def total_size(self) -> int:
        return int(self.files["size"].fillna(0).sum())

    @property
    def files_sha256(self) -> dict[str, str]:
        """relative path -> registered sha256 (for a chapter's provenance)."""
        return dict(zip(self.files["path"], self.files["sha256"]))


def normalise_files(df: pd.DataFrame, name: str = "?") -> pd.DataFrame:
    """Check a file table and fill its optional columns (``""`` for text, ``0`` for size)."""
    df = df.copy()
    for col in ("path", "url", "sha256"):
        if col not in df:
            raise ValueError(f"registry {name}: missing column {col!r}")
    for col in FILE_COLUMNS:
        if col not in df:
            df[col] = 0 if col == "size" else ""
    df["size"] = pd.to_numeric(df["size"], errors="coerce").fillna(0).astype("int64")
    text = [c for c in FILE_COLUMNS if c != "size"]
    df[text] = df[text].fillna("").astype(str)
    df.loc[df["verify"] == "", "verify"] = "file"
    bad = sorted(set(df["verify"]) - set(VERIFY_MODES))
    if bad:
        raise ValueError(f"registry {name}: unknown verify mode(s) {bad}")
    no_voxel = (df["verify"] == "voxel") & (df["voxel_sha256"] == "")
    if no_voxel.any():
        raise ValueError(f"registry {name}: verify=voxel without voxel_sha256 for {df.loc[no_voxel, 'path'].tolist()}")
    if df["path"].duplicated().any():
        raise ValueError(f"registry {name}: duplicated paths {df.loc[df['path'].duplicated(), 'path'].tolist()}")
    for p in df["path"]:
        if p.startswith("/") or ".." in Path(p).parts:
            raise ValueError(f"registry {name}: path {p!r} must be relative, inside the data set")
    return df[FILE_COLUMNS + [c for c in df.columns if c not in FILE_COLUMNS]].reset_index(drop=True)


def dataset_names() -> list[str]:
    return list(DATASET_INFO)


@cache
def _load(name: str) -> Dataset:
    csv = REGISTRY_DIR / f"{name}.csv"
    if not csv.exists():
        raise FileNotFoundError(
            f"registry table {csv} is missing (build it with python -m replicate.data.make_registry)"
        )
    files = pd.read_csv(csv, dtype=str, keep_default_na=False)
    return Dataset(DATASET_INFO[name], files)


def get_dataset(name: str) -> Dataset:
    """The registered data set ``name`` (``ibsi_sts``, ``busbra``, ``worc_lipo``, ``ibsi_phantoms``)."""
    if isinstance(name, Dataset):
        return name
    if name not in DATASET_INFO:
        raise KeyError(f"unknown data set {name!r}; registered: {', '.join(DATASET_INFO)}")
    ds = _load(name)
    return Dataset(ds.info, ds.files.copy())
