"""Public cohorts as ``Cohort`` objects: ``load_cohort("ibsi_sts" | "busbra" | "worc_lipo")``.

Each loader calls ``fetch`` (cheap once the files carry verified-stamps) unless
``root`` points at a folder laid out like the data set, then parses the
upstream tables as published. Image/mask columns hold absolute paths.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .cohort import Cohort
from .fetch import fetch
from .registry import DATASET_INFO, get_dataset

# ----------------------------------------------------------------------------- ibsi_sts

STS_XLSX = "INFOclinical_STS.xlsx"
STS_SHEET = "Clinical Information"
STS_CHECK_SHEET = "Outcome vector"
STS_MODALITY_FILES = {"T1": ("MR_T1_image.nii.gz", "MR_T1_mask.nii.gz"), "CT": ("CT_image.nii.gz", "CT_mask.nii.gz")}

# Our column <- a pattern matched against TCIA's header (normalised: lower case, any dash -> "-",
# whitespace collapsed). TCIA's headers (2015 xlsx): "Patient ID", "Age", "Sex", "Histological type",
# "MSKCC type", "Site of primary STS", "Grade", "Time – diagnosis to MRI scan (days)",
# "Time – MRI scan to PET scan (days)", "Treatment", "Outcome (recurrence, mets)",
# "Time – diagnosis to outcome (days)", "Status (NED, AWD, D)", "Time – diagnosis to last follow-up (days)".
STS_COLUMNS = {
    "patient_id": r"^patient ?id",
    "age": r"^age\b",
    "sex": r"^(sex|gender)\b",
    "histology": r"^histolog",
    "mskcc_type": r"^mskcc",
    "site": r"^site",
    "grade": r"^grade",
    "days_diagnosis_to_mri": r"diagnosis to mri",
    "days_mri_to_pet": r"mri scan to pet",
    "treatment": r"^treatment",
    "outcome": r"^outcome",
    "outcome_days": r"diagnosis to outcome",
    "status": r"^status",
    "followup_days": r"diagnosis to last follow",
}
_MISSING = {"", "--", "-", "n/a", "na", "nan", "none", "unknown", "?"}
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"


def _norm(text) -> str:
    s = str(text)
    for d in _DASHES:
        s = s.replace(d, "-")
    return re.sub(r"\s+", " ", s).strip()


def _clean(value):
    """Missing markers of the TCIA table ("--", "N/A") -> NaN; text kept as written (outer spaces stripped)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, str):
        s = value.strip()
        return np.nan if _norm(s).lower() in _MISSING else s
    return value


def read_sts_clinical(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Parse TCIA's ``INFOclinical_STS.xlsx`` as published.

    Returns (table with our column names, one row per ``STS_nnn`` patient, the
    notes below the patients dropped; the raw header list as found).
    """
    raw = pd.read_excel(path, sheet_name=STS_SHEET, header=None, dtype=object, keep_default_na=False)
    # the header row is the first row whose first cell reads "Patient ID"
    first = raw.iloc[:, 0].map(lambda v: _norm(v).lower())
    header_rows = first[first.str.match(STS_COLUMNS["patient_id"])].index
    if len(header_rows) == 0:
        raise ValueError(f"{path}: no 'Patient ID' header row in sheet {STS_SHEET!r}")
    h = header_rows[0]
    headers = [str(v).strip() for v in raw.iloc[h].tolist()]
    body = raw.iloc[h + 1 :].copy()
    body.columns = range(body.shape[1])
    ids = body[0].map(lambda v: _norm(v))
    body = body[ids.str.fullmatch(r"STS_\d{3}")]  # the notes after STS_051 are not patients
    found: dict[str, int] = {}
    normed = [_norm(x).lower() for x in headers]
    for ours, pattern in STS_COLUMNS.items():
        hits = [i for i, x in enumerate(normed) if re.search(pattern, x)]
        if len(hits) != 1:
            raise ValueError(
                f"{path}: expected one column matching {pattern!r} for {ours!r}, found "
                f"{[headers[i] for i in hits]} among headers {headers}"
            )
        found[ours] = hits[0]
    table = pd.DataFrame({ours: body[i].map(_clean).to_numpy() for ours, i in found.items()})
    table["patient_id"] = table["patient_id"].astype(str)
    table = table.set_index("patient_id")
    if table.index.duplicated().any():
        raise ValueError(f"{path}: duplicated patient ids {table.index[table.index.duplicated()].tolist()}")
    for col in ("age", "days_diagnosis_to_mri", "days_mri_to_pet", "outcome_days", "followup_days"):
        table[col] = pd.to_numeric(table[col], errors="raise").astype(float)
    if table["age"].notna().all() and (table["age"] % 1 == 0).all():
        table["age"] = table["age"].astype(int)
    return table, headers


def _sts_outcomes(t: pd.DataFrame) -> pd.DataFrame:
    """Outcome columns derived from TCIA's 'Outcome (recurrence, mets)' text and day counts."""
    outcome = t["outcome"].map(lambda v: v if pd.isna(v) else _norm(v))  # "Mets – lungs" -> "Mets - lungs"
    kind = outcome.str.extract(r"^(mets|recurrence)\b", flags=re.IGNORECASE)[0].str.lower()
    where = outcome.str.extract(r"-\s*(.+)$")[0].str.lower().str.strip()
    is_mets = kind.eq("mets").fillna(False)
    any_event = outcome.notna()
    unknown = outcome[any_event & kind.isna()]
    if len(unknown):
        raise ValueError(f"unrecognised outcome text(s): {sorted(set(unknown))}")
    out = pd.DataFrame(index=t.index)
    out["lung_mets"] = (is_mets & where.isin(["lung", "lungs"]).fillna(False)).astype(int)
    out["distant_mets"] = is_mets.astype(int)
    out["outcome_site"] = where
    missing_time = any_event & t["outcome_days"].isna()
    if missing_time.any():
        raise ValueError(f"outcome without a time for {t.index[missing_time].tolist()}")
    out["dm_event"] = is_mets.astype(int)
    out["dm_time"] = np.where(is_mets, t["outcome_days"], t["followup_days"]).astype(float)
    out["pfs_event"] = any_event.astype(int)
    out["pfs_time"] = np.where(any_event, t["outcome_days"], t["followup_days"]).astype(float)
    return out


def load_ibsi_sts(root: str | Path | None = None, progress: bool = False) -> Cohort:
    """TCIA Soft-tissue-Sarcoma (IBSI copy): 51 patients, T1 MRI + CT with GTV masks, clinical table.

    Columns: ``age``, ``sex``, ``histology``, ``mskcc_type``, ``site``,
    ``grade`` (Low/Intermediate/High; NaN where TCIA writes "N/A": 3),
    ``treatment``, ``outcome`` (TCIA's text as written, e.g. "Mets – lungs" with
    an en dash; NaN for "--"), ``outcome_site`` ("lungs", "bones", "regional", ...), ``outcome_days``,
    ``status`` (NED/AWD/D),
    ``followup_days``, ``days_diagnosis_to_mri``, ``days_mri_to_pet``,
    ``lung_mets`` (outcome "Mets – lungs": 19), ``distant_mets`` (any
    "Mets – …": 24), ``dm_time``/``dm_event`` (days from diagnosis to the
    metastasis, else censored at last follow-up; a local/regional recurrence is
    censored too), ``pfs_time``/``pfs_event`` (event = any outcome, metastasis
    or recurrence: 27; time = days to it, else last follow-up. TCIA records no
    deaths without an outcome, so death does not change these), and
    ``image_T1``, ``mask_T1``, ``image_CT``, ``mask_CT``.
    """
    root = Path(root) if root is not None else fetch("ibsi_sts", progress=progress)
    table, headers = read_sts_clinical(root / STS_XLSX)
    table = table.join(_sts_outcomes(table))
    order = [
        "age",
        "sex",
        "histology",
        "mskcc_type",
        "site",
        "grade",
        "treatment",
        "outcome",
        "outcome_site",
        "outcome_days",
        "status",
        "followup_days",
        "lung_mets",
        "distant_mets",
        "dm_time",
        "dm_event",
        "pfs_time",
        "pfs_event",
        "days_diagnosis_to_mri",
        "days_mri_to_pet",
    ]
    table = table[order]
    # cross-check with TCIA's own lung-metastasis vector (second sheet)
    check = pd.read_excel(root / STS_XLSX, sheet_name=STS_CHECK_SHEET, dtype=object)
    check = check[check.iloc[:, 0].astype(str).str.fullmatch(r"STS_\d{3}")].set_index(check.columns[0])
    vec = pd.to_numeric(check.iloc[:, 0]).astype(int).reindex(table.index)
    if vec.isna().any() or not (vec == table["lung_mets"]).all():
        bad = table.index[vec.ne(table["lung_mets"])].tolist()
        raise ValueError(f"lung_mets from the outcome text disagrees with sheet {STS_CHECK_SHEET!r} for {bad}")
    ds = get_dataset("ibsi_sts")
    cohort = Cohort(
        "ibsi_sts",
        table,
        label="lung_mets",
        modalities=list(STS_MODALITY_FILES),
        source=DATASET_INFO["ibsi_sts"].citation,
        meta={
            "root": str(root),
            "clinical_headers": headers,
            "clinical_sheet": STS_SHEET,
            "files_sha256": ds.files_sha256,
            "dataset": "ibsi_sts",
        },
    )
    for mod, (img, msk) in STS_MODALITY_FILES.items():
        cohort.table[f"image_{mod}"] = [str(root / pid / img) for pid in cohort.table.index]
        cohort.table[f"mask_{mod}"] = [str(root / pid / msk) for pid in cohort.table.index]
        for pid in cohort.table.index:
            for f in (img, msk):
                if not (root / pid / f).is_file():
                    cohort.add_failure(pid, "load", f"missing file {pid}/{f}")
    return cohort


# ----------------------------------------------------------------------------- busbra


def _device_short(device: str) -> str:
    """'GE Logiq 5 @10-12MHz' -> 'GE Logiq 5' (the probe frequency dropped)."""
    return str(device).split("@")[0].strip()


def load_busbra(root: str | Path | None = None, progress: bool = False) -> Cohort:
    """BUS-BRA: 1,064 patients, the first view of each (row order of ``bus_data.csv``).

    Index: the view id (``bus_0001-l``, the PNG's stem), one row per patient.
    Columns: ``case`` (patient number), ``malignant`` (Pathology, 0/1),
    ``pathology``, ``histology``, ``birads``, ``device`` (as in the CSV, e.g.
    "GE Logiq 5 @10-12MHz"), ``scanner`` (device without the probe frequency),
    ``scanner_group`` ("GE" for the two GE Logiq, else ``scanner``), ``split``
    ("training" for GE: 978, "validation" for Toshiba Aplio 300 + U-Systems:
    86), ``side``, ``bbox``, ``width``, ``height``, ``image_US``, ``mask_US``.
    """
    root = Path(root) if root is not None else fetch("busbra", progress=progress)
    views = pd.read_csv(root / "bus_data.csv")
    first = views.drop_duplicates("Case", keep="first").copy()
    path = first["Pathology"].str.strip().str.lower()
    if not path.isin(["benign", "malignant"]).all():
        raise ValueError(f"unexpected Pathology values {sorted(set(path) - {'benign', 'malignant'})}")
    t = pd.DataFrame(index=first["ID"].astype(str).to_numpy())
    t["case"] = first["Case"].astype(int).to_numpy()
    t["malignant"] = (path == "malignant").astype(int).to_numpy()
    t["pathology"] = path.to_numpy()
    t["histology"] = first["Histology"].to_numpy()
    t["birads"] = first["BIRADS"].to_numpy()
    t["device"] = first["Device"].to_numpy()
    t["scanner"] = first["Device"].map(_device_short).to_numpy()
    t["scanner_group"] = np.where(t["scanner"].str.startswith("GE Logiq"), "GE", t["scanner"])
    t["split"] = np.where(t["scanner_group"] == "GE", "training", "validation")
    t["side"] = first["Side"].to_numpy()
    t["bbox"] = first["BBOX"].to_numpy()
    t["width"] = first["Width"].astype(int).to_numpy()
    t["height"] = first["Height"].astype(int).to_numpy()
    t["image_US"] = [str(root / "Images" / f"{i}.png") for i in t.index]
    t["mask_US"] = [str(root / "Masks" / f"{i.replace('bus_', 'mask_', 1)}.png") for i in t.index]
    ds = get_dataset("busbra")
    cohort = Cohort(
        "busbra",
        t,
        label="malignant",
        modalities=["US"],
        source=DATASET_INFO["busbra"].citation,
        meta={
            "root": str(root),
            "n_views_upstream": int(len(views)),
            "view": "first per patient",
            "files_sha256": ds.files_sha256,
            "dataset": "busbra",
            "split_rule": "training = GE Logiq 5/7; validation = Toshiba Aplio 300 + U-Systems",
        },
    )
    for pid, r in t.iterrows():
        for col in ("image_US", "mask_US"):
            if not Path(r[col]).is_file():
                cohort.add_failure(pid, "load", f"missing file {Path(r[col]).relative_to(root)}")
    return cohort


# ----------------------------------------------------------------------------- worc_lipo

WORC_FEATURES = "Lipo_radiomicFeatures.csv"
WORC_SPLITS = "crossvalidationsplits_Lipo.csv"
WORC_LABELS = {"liposarcoma": 1, "lipoma": 0}


def worc_patient_id(feature_id: str) -> str:
    """``Lipo-001_0`` (WORC's patient + image index) -> ``Lipo-001`` (the id in the splits file)."""
    return re.sub(r"_\d+$", "", str(feature_id).strip())


def load_worc_lipo(root: str | Path | None = None, progress: bool = False) -> Cohort:
    """WORC Lipo: 115 patients, ``label`` 1 = liposarcoma (WDLPS/ALT, 58), 0 = lipoma (57).

    Index: ``Lipo-001`` … (the splits file's ids; the feature file's
    ``Lipo-001_0`` with the image index dropped). The 493 features are in
    ``cohort.meta["features"]`` (DataFrame, same index, float), not in the
    table. Images are on XNAT only (``replicate.data.xnat_images``), so there
    are no image columns and ``modalities`` is empty.
    """
    root = Path(root) if root is not None else fetch("worc_lipo", progress=progress)
    raw = pd.read_csv(root / WORC_FEATURES)
    ids = raw["ID"].map(worc_patient_id)
    if ids.duplicated().any():
        raise ValueError(f"two feature rows map to one patient: {ids[ids.duplicated()].tolist()}")
    diagnosis = raw["label"].str.strip().str.lower()
    if not diagnosis.isin(list(WORC_LABELS)).all():
        raise ValueError(f"unexpected labels {sorted(set(diagnosis) - set(WORC_LABELS))}")
    table = pd.DataFrame(
        {
            "label": diagnosis.map(WORC_LABELS).astype(int).to_numpy(),
            "diagnosis": diagnosis.to_numpy(),
            "feature_id": raw["ID"].to_numpy(),
        },
        index=ids.to_numpy(),
    )
    features = raw.drop(columns=["ID", "label"]).astype(float)
    features.index = pd.Index(ids.to_numpy(), name="patient_id")
    ds = get_dataset("worc_lipo")
    return Cohort(
        "worc_lipo",
        table,
        label="label",
        modalities=[],
        source=DATASET_INFO["worc_lipo"].citation,
        meta={
            "root": str(root),
            "features": features,
            "n_features": int(features.shape[1]),
            "image_modality": "T1 MRI (WORC XNAT, not downloaded)",
            "files_sha256": ds.files_sha256,
            "dataset": "worc_lipo",
            "positive_class": "liposarcoma (WDLPS/ALT)",
        },
    )


def load_worc_splits(root: str | Path | None = None, progress: bool = False) -> list[tuple[list[str], list[str]]]:
    """WORC's 100 random train/test splits of Lipo: ``[(train_ids, test_ids), ...]`` (92/23 patients each).

    Ids are ``Lipo-001`` …, the index of ``load_cohort("worc_lipo").table``.
    The file's columns are ``<k>_train`` / ``<k>_test`` (k = 0…99), one id per
    row, padded with empty cells.
    """
    root = Path(root) if root is not None else fetch("worc_lipo", progress=progress)
    raw = pd.read_csv(root / WORC_SPLITS, index_col=0, dtype=str)
    ks = sorted({int(m.group(1)) for c in raw.columns if (m := re.fullmatch(r"(\d+)_(train|test)", str(c)))})
    if ks != list(range(len(ks))):
        raise ValueError(f"{WORC_SPLITS}: split numbers are not 0..n-1: {ks[:5]}…")
    splits = []
    for k in ks:
        tr = [worc_patient_id(v) for v in raw[f"{k}_train"].dropna() if str(v).strip()]
        te = [worc_patient_id(v) for v in raw[f"{k}_test"].dropna() if str(v).strip()]
        if set(tr) & set(te):
            raise ValueError(f"split {k}: train and test overlap on {sorted(set(tr) & set(te))}")
        splits.append((tr, te))
    return splits


# ----------------------------------------------------------------------------- dispatch

LOADERS = {"ibsi_sts": load_ibsi_sts, "busbra": load_busbra, "worc_lipo": load_worc_lipo}


def load_cohort(name: str, root: str | Path | None = None, progress: bool = False) -> Cohort:
    """Load a public cohort (``ibsi_sts``, ``busbra``, ``worc_lipo``), fetching it first when needed.

    ``root``: read from this folder (laid out like the data set) instead of
    the verified cache — e.g. the mirror itself.
    """
    if name not in LOADERS:
        raise KeyError(f"no loader for {name!r}; available: {', '.join(LOADERS)}")
    return LOADERS[name](root=root, progress=progress)
