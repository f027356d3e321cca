"""IBSI compliance card: PyRadiomics on the IBSI-1 phantoms against the IBSI consensus reference values.

    report = compliance(["digital", "C"])      # extracts (cached), maps, compares
    report.rows          # one row per IBSI reference value: reference, tolerance, ours, status, reason
    report.summary       # per configuration and feature family: compared, matching, not mappable
    chapter_card("sts")  # which of a chapter's features have IBSI counterparts; are its settings conformant

What is compared
----------------
The data set ``ibsi_phantoms`` (``replicate.data``) holds the IBSI-1 digital phantom (CC BY 4.0), the
CT phantom PAT1 (CC BY-NC 3.0: **non-commercial use only**) and 1,803 reference values: the digital
phantom and the CT phantom under IBSI's configurations A-E. ``params/ibsi/configs.yaml`` writes each
configuration as PyRadiomics settings and lists every IBSI setting PyRadiomics cannot express;
``params/ibsi/feature_map.csv`` maps each IBSI feature (tag and code) to a PyRadiomics feature, to a
PyRadiomics feature through a known conversion (``x - 3`` for kurtosis, ``x - 1`` for asphericity), or
to nothing, with the reason.

A value matches when ``|ours - reference| <= tolerance``. Where IBSI printed no tolerance, the value
stands for the interval it rounds from: IBSI's values are rounded to 3 significant digits, so the
tolerance is half a unit of the third significant digit (``printed_precision``). A feature matches
*after conversion* when only the converted value matches: PyRadiomics' own feature is then not the
IBSI feature, but its difference is the documented one.

Two routes. ``pyradiomics``: PyRadiomics does everything its settings can express, interpolation
included: what a study using PyRadiomics gets. ``ibsi-preprocessed`` (configurations B-E, which
interpolate): replicate interpolates the image and the ROI as IBSI prescribes (centred grid, rounded
intensities, ROI interpolated and thresholded at 0.5; for E the range and the outlier filter combined)
and PyRadiomics only computes the features. A value that matches in the second route but not in the
first is explained by pre-processing; what is left after it is a feature definition.

Extraction runs through :func:`replicate.features.radiomics.extract_radiomics`, so its cache
(keyed on the image and mask hashes, the settings and the PyRadiomics version) makes a warm run
cost seconds.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .config import params_dir

DATASET = "ibsi_phantoms"
CONFIGS = ("digital", "A", "B", "C", "D", "E")
PHANTOM_DIRS = {"digital": "digital_phantom", "ct": "ct_phantom"}
LICENCES = {
    "digital": "IBSI digital phantom: CC BY 4.0",
    "ct": "IBSI CT phantom PAT1: CC BY-NC 3.0 - NON-COMMERCIAL USE ONLY",
}
FAMILIES = {  # IBSI tag prefix -> family name as the reference table prints it
    "morph": "Morphological features",
    "loc": "Local intensity features",
    "stat": "Intensity-based statistical features",
    "ih": "Intensity histogram features",
    "ivh": "Intensity-volume histogram features",
    "cm": "Grey level co-occurrence based features",
    "rlm": "Grey level run length based features",
    "szm": "Grey level size zone based features",
    "dzm": "Grey level distance zone based features",
    "ngt": "Neighbourhood grey tone difference based features",
    "ngl": "Neighbouring grey level dependence based features",
}
FAMILY_SHORT = {
    "morph": "morphology",
    "loc": "local intensity",
    "stat": "statistics",
    "ih": "int. histogram",
    "ivh": "int.-vol. hist.",
    "cm": "GLCM",
    "rlm": "GLRLM",
    "szm": "GLSZM",
    "dzm": "GLDZM",
    "ngt": "NGTDM",
    "ngl": "NGLDM",
}
PYRADIOMICS_CLASSES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
TEXTURE_CLASSES = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")
CLASS_FAMILY = {
    "shape": "morph",
    "firstorder": "stat",
    "glcm": "cm",
    "glrlm": "rlm",
    "glszm": "szm",
    "gldm": "ngl",
    "ngtdm": "ngt",
}
# Features whose value depends on the grey-level numbers themselves, not only on their differences or
# counts: a shift of every grey level by k bins changes them (see ``grey_level_offset``).
GREY_LEVEL_VALUED = {
    "cm": {"cm.joint.avg", "cm.sum.avg", "cm.auto.corr"},
    "rlm": {"rlm.lgre", "rlm.hgre", "rlm.srlge", "rlm.srhge", "rlm.lrlge", "rlm.lrhge"},
    "szm": {"szm.lgze", "szm.hgze", "szm.szlge", "szm.szhge", "szm.lzlge", "szm.lzhge"},
    "ngl": {"ngl.lgce", "ngl.hgce", "ngl.ldlge", "ngl.ldhge", "ngl.hdlge", "ngl.hdhge"},
    "ngt": {"ngt.busyness"},
}
CONVERSIONS = {"": None, "x - 3": -3.0, "x - 1": -1.0}
ROUTES = ("pyradiomics", "ibsi-preprocessed")
ROUTE_TEXT = {
    "pyradiomics": "PyRadiomics does everything its settings can express (interpolation included)",
    "ibsi-preprocessed": (
        "replicate interpolates image and ROI as IBSI prescribes (and, for E, combines range and "
        "outlier filter into one range); PyRadiomics computes the features"
    ),
}
STATUSES = ("match", "match after conversion", "mismatch", "not mappable")
SIGNIFICANT_DIGITS = 3
# Filters (PyRadiomics image types) IBSI-1 does not cover: it standardises features of the unfiltered image.
IBSI1_IMAGE_TYPES = ("Original",)
SETTINGS_DIR = params_dir() / "ibsi"


class IBSIError(ValueError):
    """A malformed IBSI settings file or feature map, or an unknown configuration."""


# ----------------------------------------------------------------------------- settings as data


@dataclass(frozen=True)
class Run:
    """One PyRadiomics extraction of a configuration: its settings and the IBSI aggregation it yields."""

    dimension: str  # "3D" or "2.5D"
    kind: str  # "averaged" or "merged"
    params: dict  # the PyRadiomics parameter dict
    codes: dict  # PyRadiomics class -> IBSI aggregation code ("" for non-texture classes)


@dataclass(frozen=True)
class IBSIConfig:
    name: str
    phantom: str  # "digital" or "ct"
    title: str
    ibsi: dict  # the IBSI settings, as text
    setting: dict  # PyRadiomics settings (common + this configuration's)
    dimensions: tuple
    departures: tuple  # dicts: setting, ibsi, pyradiomics, affects
    bin_origin: float | None  # IBSI's first bin edge for a fixed bin size with a re-segmentation range
    preprocessing: dict | None = None  # IBSI interpolation done by replicate (route "ibsi-preprocessed")
    runs: tuple = field(default=(), repr=False)

    @property
    def licence(self) -> str:
        return LICENCES[self.phantom]


_CONFIG_KEYS = {"phantom", "title", "ibsi", "setting", "dimensions", "departures", "bin_origin", "preprocessing"}
_OPTIONAL_KEYS = {"bin_origin", "preprocessing"}
_PREPROCESSING_KEYS = {"spacing", "image", "roi", "partial_volume", "round", "outlier_sd_after_range"}
INTERPOLATORS = {"linear": "sitkLinear", "bspline": "sitkBSpline"}
RESAMPLING_SETTINGS = ("resampledPixelSpacing", "interpolator")
_DEPARTURE_KEYS = {"setting", "ibsi", "pyradiomics", "affects"}


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise IBSIError(f"{SETTINGS_DIR / 'configs.yaml'}: {msg}")


@cache
def _settings_file() -> dict:
    raw = yaml.safe_load((SETTINGS_DIR / "configs.yaml").read_text())
    _check(
        isinstance(raw, dict)
        and set(raw) == {"common", "shape_features", "aggregations", "not_expressible", "configs"},
        "top-level keys must be common, shape_features, aggregations, not_expressible, configs",
    )
    _check(tuple(raw["configs"]) == CONFIGS, f"configs must be {CONFIGS} in that order")
    for dim, kinds in raw["aggregations"].items():
        _check(set(kinds) == {"averaged", "merged"}, f"aggregations.{dim} needs averaged and merged")
        for kind, spec in kinds.items():
            _check(
                set(spec) == {"setting", "classes", "codes"}, f"aggregations.{dim}.{kind}: keys setting, classes, codes"
            )
            _check(set(spec["classes"]) <= set(PYRADIOMICS_CLASSES), f"aggregations.{dim}.{kind}: unknown class")
            _check(set(spec["codes"]) <= set(spec["classes"]), f"aggregations.{dim}.{kind}: code for a class not run")
    for name, c in raw["configs"].items():
        _check(
            set(c) <= _CONFIG_KEYS and _CONFIG_KEYS - _OPTIONAL_KEYS <= set(c),
            f"configs.{name}: keys must be {sorted(_CONFIG_KEYS)} ({sorted(_OPTIONAL_KEYS)} optional)",
        )
        pre = c.get("preprocessing")
        if pre is not None:
            _check(
                set(pre) <= _PREPROCESSING_KEYS and _PREPROCESSING_KEYS - {"outlier_sd_after_range"} <= set(pre),
                f"configs.{name}.preprocessing: keys must be {sorted(_PREPROCESSING_KEYS)}",
            )
            _check(
                pre["image"] in INTERPOLATORS and pre["roi"] in INTERPOLATORS,
                f"configs.{name}.preprocessing: interpolators must be one of {list(INTERPOLATORS)}",
            )
            _check(len(pre["spacing"]) == 3, f"configs.{name}.preprocessing.spacing: three values (0: keep)")
        _check(c["phantom"] in PHANTOM_DIRS, f"configs.{name}.phantom must be one of {list(PHANTOM_DIRS)}")
        _check(all(d in raw["aggregations"] for d in c["dimensions"]), f"configs.{name}: unknown dimension")
        for d in c["departures"]:
            _check(set(d) == _DEPARTURE_KEYS, f"configs.{name}.departures: keys must be {sorted(_DEPARTURE_KEYS)}")
            _check(set(d["affects"]) <= set(FAMILIES), f"configs.{name}.departures: unknown family in affects")
    return raw


def _runs(raw: dict, setting: dict, dimensions) -> tuple[Run, ...]:
    runs = []
    for dim in dimensions:
        for kind in ("averaged", "merged"):
            spec = raw["aggregations"][dim][kind]
            classes = {c: (list(raw["shape_features"]) if c == "shape" else None) for c in spec["classes"]}
            params = {"imageType": {"Original": {}}, "featureClass": classes, "setting": {**setting, **spec["setting"]}}
            codes = {c: spec["codes"].get(c, "") for c in spec["classes"]}
            runs.append(Run(dim, kind, params, codes))
    return tuple(runs)


def load_configs() -> dict[str, IBSIConfig]:
    """The six IBSI-1 configurations (``digital``, ``A``-``E``) from ``params/ibsi/configs.yaml``."""
    raw = _settings_file()
    out = {}
    for name, c in raw["configs"].items():
        setting = {**raw["common"], **c["setting"]}
        out[name] = IBSIConfig(
            name=name,
            phantom=c["phantom"],
            title=c["title"],
            ibsi=dict(c["ibsi"]),
            setting=setting,
            dimensions=tuple(c["dimensions"]),
            departures=tuple(dict(d) for d in c["departures"]),
            bin_origin=c.get("bin_origin"),
            preprocessing=c.get("preprocessing"),
            runs=_runs(raw, setting, c["dimensions"]),
        )
    return out


def get_config(name: str) -> IBSIConfig:
    configs = load_configs()
    if name not in configs:
        raise IBSIError(f"unknown IBSI configuration {name!r}; known: {', '.join(CONFIGS)}")
    return configs[name]


def not_expressible() -> dict[str, str]:
    """IBSI aggregation code -> why PyRadiomics cannot compute it."""
    return dict(_settings_file()["not_expressible"])


@cache
def _feature_map() -> pd.DataFrame:
    path = SETTINGS_DIR / "feature_map.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    cols = ["ibsi_code", "ibsi_feature_tag", "pyradiomics", "conversion", "note"]
    if list(df.columns) != cols:
        raise IBSIError(f"{path}: columns must be {cols}")
    if df["ibsi_feature_tag"].duplicated().any():
        raise IBSIError(
            f"{path}: duplicated tags {df.loc[df['ibsi_feature_tag'].duplicated(), 'ibsi_feature_tag'].tolist()}"
        )
    bad_conv = sorted(set(df["conversion"]) - set(CONVERSIONS))
    if bad_conv:
        raise IBSIError(f"{path}: unknown conversion(s) {bad_conv}; allowed {list(CONVERSIONS)}")
    mapped = df["pyradiomics"] != ""
    cls = df.loc[mapped, "pyradiomics"].str.split(":").str[0]
    if not cls.isin(PYRADIOMICS_CLASSES).all() or not df.loc[mapped, "pyradiomics"].str.count(":").eq(1).all():
        raise IBSIError(f"{path}: pyradiomics must be '<class>:<Feature>' with a class in {PYRADIOMICS_CLASSES}")
    if ((df["pyradiomics"] == "") & (df["note"] == "")).any():
        raise IBSIError(f"{path}: an IBSI feature without a PyRadiomics counterpart needs a note saying why")
    if ((df["conversion"] != "") & ~mapped).any():
        raise IBSIError(f"{path}: a conversion needs a PyRadiomics feature")
    df["family"] = df["ibsi_feature_tag"].str.split(".").str[0]
    if not df["family"].isin(list(FAMILIES)).all():
        raise IBSIError(f"{path}: unknown tag prefix in {sorted(set(df['family']) - set(FAMILIES))}")
    return df


def load_feature_map() -> pd.DataFrame:
    """The PyRadiomics -> IBSI table: ``ibsi_code, ibsi_feature_tag, pyradiomics, conversion, note, family``."""
    return _feature_map().copy()


# ----------------------------------------------------------------------------- data


def phantom_root() -> Path:
    """The verified ``ibsi_phantoms`` folder (copied from the mirror or downloaded on first use)."""
    from .data.fetch import fetch

    return fetch(DATASET, progress=False)


def load_reference(root: Path | None = None) -> pd.DataFrame:
    """The 1,803 IBSI reference values, with ``value`` and ``tolerance`` as floats (NaN: no tolerance)."""
    root = Path(root) if root is not None else phantom_root()
    ref = pd.read_csv(root / "reference_values.csv", dtype=str, keep_default_na=False)
    ref["value"] = ref["value"].astype(float)
    ref["tolerance"] = pd.to_numeric(ref["tolerance"].replace("", np.nan))
    ref["family"] = ref["ibsi_feature_tag"].str.split(".").str[0]
    return ref


# ----------------------------------------------------------------------------- comparison


def printed_precision(reference: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """Half a unit of the last significant digit IBSI prints: the tolerance of a value printed without one.

    ``printed_precision(0.698) == 0.0005``, ``printed_precision(556) == 0.5``; a printed 0 is exact.
    """
    if reference == 0 or not math.isfinite(reference):
        return 0.0
    return 0.5 * 10.0 ** (math.floor(math.log10(abs(reference))) - (digits - 1))


def within(ours: float, reference: float, tolerance: float | None) -> bool:
    """``|ours - reference| <= tolerance``; a missing tolerance means the printed precision."""
    if ours is None or not np.isfinite(ours):
        return False
    tol = printed_precision(reference) if tolerance is None or not np.isfinite(tolerance) else float(tolerance)
    return abs(float(ours) - float(reference)) <= tol + 1e-9 * max(1.0, abs(float(reference)))


def convert(value: float, conversion: str) -> float:
    """Apply a feature map conversion (``""``: none; ``"x - 3"``; ``"x - 1"``)."""
    shift = CONVERSIONS[conversion]
    return value if shift is None else value + shift


def compare(
    reference: pd.DataFrame,
    values: dict[tuple[str, str], float],
    feature_map: pd.DataFrame | None = None,
    *,
    produced_codes: set[str] | None = None,
    explain=None,
) -> pd.DataFrame:
    """One row per reference value: phantom, config, family, IBSI code and name, aggregation, reference,
    tolerance, tolerance_rule, pyradiomics, ours, converted, status and reason.

    ``values`` maps ``(pyradiomics feature "class:Feature", aggregation code or "")`` to our value.
    ``produced_codes``: the texture aggregation codes the extraction ran (others are *not mappable*).
    ``explain(row) -> str``: the reason given for a mismatch (default: the feature map's note).
    """
    fmap = (feature_map if feature_map is not None else _feature_map()).set_index("ibsi_feature_tag")
    gaps = not_expressible()
    rows = []
    for r in reference.itertuples(index=False):
        if r.ibsi_feature_tag not in fmap.index:
            raise IBSIError(f"reference feature {r.ibsi_feature_tag} ({r.ibsi_code}) is not in the feature map")
        m = fmap.loc[r.ibsi_feature_tag]
        tol = r.tolerance if np.isfinite(r.tolerance) else np.nan
        row = {
            "phantom": r.phantom,
            "config": r.config,
            "family": r.family,
            "ibsi_code": r.ibsi_code,
            "feature": r.ibsi_feature_name,
            "tag": r.ibsi_feature_tag,
            "aggregation": r.aggregation,
            "aggregation_code": r.aggregation_code,
            "reference": r.value,
            "tolerance": tol,
            "tolerance_rule": "IBSI" if np.isfinite(tol) else "printed precision",
            "pyradiomics": m["pyradiomics"],
            "conversion": m["conversion"],
            "ours": np.nan,
            "converted": np.nan,
            "status": "not mappable",
            "reason": "",
        }
        code = r.aggregation_code or ""
        if not m["pyradiomics"]:
            row["reason"] = m["note"]
        elif code and produced_codes is not None and code not in produced_codes:
            row["reason"] = gaps.get(code, f"aggregation {code} not extracted")
        else:
            texture = m["pyradiomics"].split(":")[0] in TEXTURE_CLASSES
            key = (m["pyradiomics"], code if texture else "")  # shape / first order: whole ROI
            if key not in values:
                raise IBSIError(
                    f"config {r.config}: no extracted value for {m['pyradiomics']} with aggregation "
                    f"{code or '(none)'} (IBSI {r.ibsi_feature_tag})"
                )
            ours = float(values[key])
            row["ours"] = ours
            row["converted"] = convert(ours, m["conversion"])
            if within(ours, r.value, tol):
                row["status"], row["reason"] = "match", ""
            elif m["conversion"] and within(row["converted"], r.value, tol):
                row["status"], row["reason"] = "match after conversion", m["note"]
            else:
                row["status"] = "mismatch"
                row["reason"] = explain(row) if explain else m["note"]
        rows.append(row)
    return pd.DataFrame(rows)


def family_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (route,) configuration and family: reference values, compared, match, match after conversion,
    mismatch, not mappable. ``compared`` = reference values - not mappable."""
    keys = [k for k in ("route", "config", "family") if k in rows]
    counts = pd.crosstab([rows[k] for k in keys], rows["status"]).reindex(columns=list(STATUSES), fill_value=0)
    counts.insert(0, "reference values", counts.sum(axis=1))
    counts.insert(1, "compared", counts["reference values"] - counts["not mappable"])
    counts = counts.reset_index()
    counts.columns.name = None
    order = {"route": list(ROUTES), "config": list(CONFIGS), "family": list(FAMILIES)}
    return counts.sort_values(
        keys, key=lambda col: col.map({v: i for i, v in enumerate(order[col.name])}), kind="stable"
    ).reset_index(drop=True)


# ----------------------------------------------------------------------------- extraction

PREPROCESSING_FORMAT = 1


@dataclass
class Extraction:
    """What PyRadiomics computed for one configuration along one route."""

    config: str
    route: str
    values: dict  # (class:Feature, aggregation code) -> value
    produced_codes: set
    seconds: float  # wall time of this call (cached runs cost only the lookups)
    extraction_seconds: float  # PyRadiomics' own time for the runs when they were computed (cold)
    cached: bool  # every run came from the feature cache
    grey_level_offset: int | None  # IBSI grey level - PyRadiomics grey level (fixed bin size with a range)
    settings_hashes: list
    notes: dict = field(default_factory=dict)


def _case(config: IBSIConfig, root: Path):
    from .data.cohort import Case

    folder = root / PHANTOM_DIRS[config.phantom]
    return Case(f"ibsi_{config.name}", folder / "image.nii.gz", folder / "mask.nii.gz")


def _centred_grid(img, spacing) -> tuple[list, list, list]:
    """IBSI's interpolation grid: size ceil(n s / s'), centred on the original grid (0 keeps an axis)."""
    sa, na = np.array(img.GetSpacing()), np.array(img.GetSize())
    sb = np.array([s if s else a for s, a in zip(spacing, sa)], dtype=float)
    nb = np.ceil(np.round(na * sa / sb, 6)).astype(int)
    shift = (sa * (na - 1) - sb * (nb - 1)) / 2.0
    origin = np.array(img.GetOrigin()) + np.array(img.GetDirection()).reshape(3, 3) @ shift
    return [int(n) for n in nb], [float(s) for s in sb], [float(o) for o in origin]


def _resample(img, grid, interpolator: str):
    import SimpleITK as sitk

    size, spacing, origin = grid
    f = sitk.ResampleImageFilter()
    f.SetSize(size)
    f.SetOutputSpacing(spacing)
    f.SetOutputOrigin(origin)
    f.SetOutputDirection(img.GetDirection())
    f.SetInterpolator(getattr(sitk, INTERPOLATORS[interpolator]))
    f.SetUseNearestNeighborExtrapolator(True)  # grid points just outside the image take the edge value
    return f.Execute(sitk.Cast(img, sitk.sitkFloat32))


def ibsi_preprocess(cfg: IBSIConfig, image_path: Path, mask_path: Path):
    """IBSI's interpolation of ``cfg`` (see ``params/ibsi/configs.yaml``): (image, mask, notes).

    The image and the ROI are interpolated onto the centred grid; intensities are rounded to
    integers; the ROI keeps voxels whose interpolated fraction is >= the partial-volume threshold.
    With ``outlier_sd_after_range`` the re-segmentation range and then mean +- k SD of what remains
    are combined into one absolute range (an interval intersected with an interval), returned in
    ``notes["resegmentRange"]``.
    """
    import SimpleITK as sitk

    pre = cfg.preprocessing
    img = sitk.Cast(sitk.ReadImage(str(image_path)), sitk.sitkFloat32)
    msk = sitk.ReadImage(str(mask_path))
    grid = _centred_grid(img, pre["spacing"])
    out_img = _resample(img, grid, pre["image"])
    arr = sitk.GetArrayFromImage(out_img)
    if pre["round"]:
        arr = np.rint(arr)
    new_img = sitk.GetImageFromArray(arr.astype(np.float32))
    new_img.CopyInformation(out_img)
    frac = sitk.GetArrayFromImage(_resample(msk, grid, pre["roi"]))
    roi = (frac >= pre["partial_volume"]).astype(np.uint8)
    new_msk = sitk.GetImageFromArray(roi)
    new_msk.CopyInformation(out_img)
    notes = {"size": grid[0], "spacing": grid[1], "origin": grid[2], "roi_voxels": int(roi.sum())}
    k = pre.get("outlier_sd_after_range")
    if k is not None:
        lo, hi = cfg.setting["resegmentRange"]
        vals = arr[(roi > 0) & (arr >= lo) & (arr <= hi)]
        mu, sd = float(vals.mean()), float(vals.std())
        notes["resegmentRange"] = [max(lo, mu - k * sd), min(hi, mu + k * sd)]
        notes["outlier_filter"] = {"mean": mu, "sd": sd, "k": k}
    return new_img, new_msk, notes


def _preprocessed_case(cfg: IBSIConfig, root: Path, cache_dir) -> tuple:
    """The IBSI-interpolated phantom of ``cfg`` as NIfTI files, cached on (inputs, settings): (Case, notes)."""
    import json

    import SimpleITK as sitk

    from .config import feature_cache_dir
    from .data.cohort import Case
    from .data.registry import get_dataset
    from .io import atomic_write_json, stable_hash

    case = _case(cfg, root)
    ds = get_dataset(DATASET).files_sha256
    rel = PHANTOM_DIRS[cfg.phantom]
    key = stable_hash(
        [
            PREPROCESSING_FORMAT,
            cfg.preprocessing,
            cfg.setting.get("resegmentRange"),
            ds[f"{rel}/image.nii.gz"],
            ds[f"{rel}/mask.nii.gz"],
        ]
    )[:16]
    base = Path(cache_dir) if cache_dir not in (None, True, False) else feature_cache_dir()
    folder = base / "ibsi_preprocessed" / f"{cfg.name}-{key}"
    meta = folder / "notes.json"
    if not meta.exists():
        image, mask, notes = ibsi_preprocess(cfg, case.image, case.mask)
        folder.mkdir(parents=True, exist_ok=True)
        for name, im in (("image.nii.gz", image), ("mask.nii.gz", mask)):
            tmp = folder / f".part-{os.getpid()}-{name}"
            sitk.WriteImage(im, str(tmp), useCompression=True)
            os.replace(tmp, folder / name)
        atomic_write_json(meta, notes)  # written last: its presence means the folder is complete
    notes = json.loads(meta.read_text())
    return Case(f"ibsi_{cfg.name}_preprocessed", folder / "image.nii.gz", folder / "mask.nii.gz"), notes


def extract(
    config: str | IBSIConfig, route: str = "pyradiomics", *, root: Path | None = None, cache_dir=None
) -> Extraction:
    """Extract the phantom of ``config`` along ``route`` (every run, cached)."""
    from .features.radiomics import extract_radiomics

    cfg = get_config(config) if isinstance(config, str) else config
    if route not in ROUTES:
        raise IBSIError(f"unknown route {route!r}; known: {ROUTES}")
    root = Path(root) if root is not None else phantom_root()
    t0 = time.perf_counter()
    notes: dict = {}
    runs = cfg.runs
    if route == "pyradiomics":
        case = _case(cfg, root)
    else:
        if cfg.preprocessing is None:
            raise IBSIError(f"configuration {cfg.name} has no interpolation: only route 'pyradiomics' applies")
        case, notes = _preprocessed_case(cfg, root, cache_dir)
        runs = [_without_resampling(r, notes.get("resegmentRange")) for r in runs]
    values: dict[tuple[str, str], float] = {}
    produced, hashes, cached, cold = set(), [], True, 0.0
    for run in runs:
        table = extract_radiomics(
            [case], run.params, cache_dir=cache_dir, progress=False, strict=True, nan_policy="keep"
        )
        hashes.append(table.info["settings_hash"])
        cached &= table.info["n_cached"] == 1
        cold += _cold_seconds(table)
        for name, v in table.features.iloc[0].items():
            _, cls, feat = name.split("_", 2)
            if cls in run.codes:
                values.setdefault((f"{cls}:{feat}", run.codes[cls]), float(v))
        produced |= {c for c in run.codes.values() if c}
    return Extraction(
        cfg.name,
        route,
        values,
        produced,
        time.perf_counter() - t0,
        cold,
        cached,
        _grey_level_offset(cfg, values),
        hashes,
        notes,
    )


def _without_resampling(run: Run, reseg_range) -> Run:
    setting = {k: v for k, v in run.params["setting"].items() if k not in RESAMPLING_SETTINGS}
    if reseg_range is not None:
        setting.update(resegmentRange=[float(x) for x in reseg_range], resegmentMode="absolute")
    return Run(run.dimension, run.kind, {**run.params, "setting": setting}, run.codes)


def _cold_seconds(table) -> float:
    """PyRadiomics' time for the case: measured now if computed now, else what its cache entry recorded."""
    import json

    sec = next(iter(table.info["seconds_per_case"].values()), None)
    if sec is not None:
        return float(sec)
    cdir = table.info.get("cache_dir")
    for entry in sorted(Path(cdir).glob("*.json")) if cdir else []:
        data = json.loads(entry.read_text())
        if data.get("case_id") == table.features.index[0]:
            return float(data.get("seconds") or 0.0)
    return 0.0


def _grey_level_offset(cfg: IBSIConfig, values: dict) -> int | None:
    """How many bins IBSI's grey levels sit above PyRadiomics' for a fixed bin size with a range.

    IBSI numbers the bins from the re-segmentation range's lower bound; PyRadiomics from the bin
    holding the ROI's minimum (its ``getBinEdges``). They agree when the ROI reaches the lower bound.
    """
    width = cfg.setting.get("binWidth")
    if cfg.bin_origin is None or width is None or "binCount" in cfg.setting:
        return None
    minimum = values.get(("firstorder:Minimum", ""))
    if minimum is None:
        return None
    return int(math.floor(minimum / width) - math.floor(cfg.bin_origin / width))


# ----------------------------------------------------------------------------- explanations


@cache
def _known_differences() -> dict:
    path = SETTINGS_DIR / "known_differences.yaml"
    raw = yaml.safe_load(path.read_text()) or {}
    tags = set(_feature_map()["ibsi_feature_tag"])
    out = {}
    for entry in raw.get("differences", []):
        if set(entry) != {"tags", "reason"} or not set(entry["tags"]) <= tags:
            raise IBSIError(f"{path}: each difference needs tags (IBSI tags of the feature map) and a reason")
        for t in entry["tags"]:
            out[t] = " ".join(entry["reason"].split())
    return out


def known_differences() -> dict[str, str]:
    """IBSI tag -> PyRadiomics' documented definitional difference (``params/ibsi/known_differences.yaml``)."""
    return dict(_known_differences())


def explain_mismatch(row: dict, cfg: IBSIConfig, extraction: Extraction) -> str:
    """The known reasons a mapped feature differs from IBSI under ``cfg``: its definition, the grey-level
    numbering, then the settings PyRadiomics cannot express (route ``pyradiomics`` only)."""
    reasons = []
    tag, fam = row["tag"], row["family"]
    if tag in _known_differences():
        reasons.append(_known_differences()[tag])
    if extraction.grey_level_offset and tag in GREY_LEVEL_VALUED.get(fam, set()):
        reasons.append(
            f"grey levels are numbered from the bin of the ROI minimum, IBSI's from {cfg.bin_origin:g} "
            f"HU: each is {extraction.grey_level_offset} below IBSI's"
        )
    if extraction.route == "pyradiomics":
        settings = [d["setting"] for d in cfg.departures if fam in d["affects"]]
        if settings:
            reasons.append("IBSI settings PyRadiomics cannot express: " + "; ".join(settings))
    return " | ".join(reasons) or "no known reason"


# ----------------------------------------------------------------------------- the report


@dataclass
class IBSIReport:
    rows: pd.DataFrame  # every reference value of every configuration and route
    summary: pd.DataFrame  # per route, configuration and family
    extractions: dict  # (config, route) -> Extraction
    configs: dict  # config -> IBSIConfig

    def totals(self) -> pd.DataFrame:
        """Per route and configuration: counts by status and the extraction time."""
        s = self.summary.drop(columns="family").groupby(["route", "config"], sort=False).sum().reset_index()
        ex = [self.extractions[(c, r)] for r, c in zip(s["route"], s["config"])]
        s["extraction s"] = [round(e.extraction_seconds, 2) for e in ex]
        s["this call s"] = [round(e.seconds, 2) for e in ex]
        s["cached"] = [e.cached for e in ex]
        return s

    def mismatches(self, route: str = "pyradiomics") -> pd.DataFrame:
        keep = self.rows["status"].isin(["mismatch", "match after conversion"]) & (self.rows["route"] == route)
        return self.rows[keep].reset_index(drop=True)

    def to_json(self) -> dict:
        """The report as plain data (``replicate ibsi --json``)."""
        return {
            "dataset": DATASET,
            "licences": {p: LICENCES[p] for p in sorted({c.phantom for c in self.configs.values()})},
            "tolerance_rule": (
                "|ours - reference| <= tolerance; without a tolerance, half a unit of the "
                f"{SIGNIFICANT_DIGITS}rd significant digit (the printed precision)"
            ),
            "routes": {r: ROUTE_TEXT[r] for r in sorted(set(self.rows["route"]), key=ROUTES.index)},
            "configs": {
                c: {
                    "title": cfg.title,
                    "phantom": cfg.phantom,
                    "licence": cfg.licence,
                    "ibsi": cfg.ibsi,
                    "pyradiomics_setting": cfg.setting,
                    "departures": list(cfg.departures),
                    "preprocessing": cfg.preprocessing,
                    "extractions": {
                        r: {
                            "grey_level_offset": e.grey_level_offset,
                            "extraction_seconds": round(e.extraction_seconds, 3),
                            "seconds": round(e.seconds, 3),
                            "cached": e.cached,
                            "notes": e.notes,
                        }
                        for (c2, r), e in self.extractions.items()
                        if c2 == c
                    },
                }
                for c, cfg in self.configs.items()
            },
            "totals": json_records(self.totals()),
            "summary": json_records(self.summary),
            "rows": json_records(self.rows),
        }


def json_records(df: pd.DataFrame) -> list[dict]:
    """DataFrame -> list of dicts with NaN as None (valid JSON)."""
    out = []
    for rec in df.to_dict(orient="records"):
        out.append(
            {
                k: (
                    None
                    if isinstance(v, float) and not np.isfinite(v)
                    else (v.item() if isinstance(v, np.generic) else v)
                )
                for k, v in rec.items()
            }
        )
    return out


def parse_configs(which: str | list[str] | None) -> list[str]:
    """``"all"``/None -> every configuration; ``"C"``, ``"c"`` or ``["digital", "C"]`` -> those (validated)."""
    if which in (None, "all"):
        return list(CONFIGS)
    names = [which] if isinstance(which, str) else list(which)
    out = []
    for n in names:
        if n == "all":
            return list(CONFIGS)
        n = n.upper() if len(n) == 1 else n
        if n not in CONFIGS:
            raise IBSIError(f"unknown IBSI configuration {n!r}; known: {', '.join(CONFIGS)}, all")
        out.append(n)
    return list(dict.fromkeys(out))


def compliance(
    which: str | list[str] | None = "all", *, routes=ROUTES, root: Path | None = None, cache_dir=None
) -> IBSIReport:
    """Extract, map and compare every configuration in ``which`` along ``routes`` (see the module docstring).

    Route ``ibsi-preprocessed`` applies only to configurations that interpolate (B-E). A mismatch of
    route ``pyradiomics`` that matches in route ``ibsi-preprocessed`` is marked as caused by the
    pre-processing PyRadiomics cannot express.
    """
    names = parse_configs(which)
    root = Path(root) if root is not None else phantom_root()
    reference = load_reference(root)
    configs = load_configs()
    parts, extractions = [], {}
    for name in names:
        cfg = configs[name]
        ref = reference[reference["config"] == name]
        for route in routes:
            if route == "ibsi-preprocessed" and cfg.preprocessing is None:
                continue
            ex = extract(cfg, route, root=root, cache_dir=cache_dir)
            extractions[(name, route)] = ex
            rows = compare(
                ref,
                ex.values,
                produced_codes=ex.produced_codes,
                explain=lambda row, cfg=cfg, ex=ex: explain_mismatch(row, cfg, ex),
            )
            rows.insert(0, "route", route)
            parts.append(rows)
    rows = _mark_preprocessing_causes(pd.concat(parts, ignore_index=True))
    return IBSIReport(rows, family_summary(rows), extractions, {n: configs[n] for n in names})


def _mark_preprocessing_causes(rows: pd.DataFrame) -> pd.DataFrame:
    """Route-``pyradiomics`` mismatches that match once replicate pre-processes as IBSI says: say so."""
    key = ["config", "tag", "aggregation_code"]
    pre = rows[rows["route"] == "ibsi-preprocessed"].set_index(key)["status"]
    if pre.empty:
        return rows
    rows = rows.copy()
    for i in rows.index[(rows["route"] == "pyradiomics") & (rows["status"] == "mismatch")]:
        k = tuple(rows.loc[i, key])
        if k in pre.index and pre.loc[k] in ("match", "match after conversion"):
            rows.loc[i, "reason"] = (
                "pre-processing: matches when replicate interpolates as IBSI prescribes | " + rows.loc[i, "reason"]
            )
    return rows


# ----------------------------------------------------------------------------- tables for the page


def reasons_table(report: IBSIReport, route: str | None = None) -> pd.DataFrame:
    """Mismatches grouped by (route, configuration, reason): how many values, which IBSI features."""
    rows = report.rows[report.rows["status"] == "mismatch"]
    if route is not None:
        rows = rows[rows["route"] == route]
    out = [
        {"route": r, "config": c, "values": len(g), "features": ", ".join(dict.fromkeys(g["tag"])), "reason": why}
        for (r, c, why), g in rows.groupby(["route", "config", "reason"], sort=False)
    ]
    return pd.DataFrame(out, columns=["route", "config", "values", "features", "reason"])


def departures_table(report: IBSIReport) -> pd.DataFrame:
    """Every IBSI setting PyRadiomics cannot express, per configuration, and the aggregations it lacks."""
    rows = [
        {
            "config": c,
            "setting": d["setting"],
            "IBSI": d["ibsi"],
            "PyRadiomics": d["pyradiomics"],
            "families affected": ", ".join(FAMILY_SHORT[f] for f in d["affects"]),
        }
        for c, cfg in report.configs.items()
        for d in cfg.departures
    ]
    offsets = {c: e.grey_level_offset for (c, r), e in report.extractions.items() if r == "pyradiomics"}
    for c, k in offsets.items():
        if k:
            cfg = report.configs[c]
            rows.append(
                {
                    "config": c,
                    "setting": "fixed bin size origin",
                    "IBSI": f"bins from the range's lower bound {cfg.bin_origin:g} HU",
                    "PyRadiomics": f"bins from the ROI minimum's bin: grey levels {k} below IBSI's",
                    "families affected": "features of grey-level values",
                }
            )
    for code, why in not_expressible().items():
        rows.append(
            {
                "config": "all",
                "setting": f"aggregation {code}",
                "IBSI": why.split(":")[0],
                "PyRadiomics": why.split(": ", 1)[1],
                "families affected": "texture",
            }
        )
    return pd.DataFrame(rows)


def unmapped_table() -> pd.DataFrame:
    """IBSI-1 features PyRadiomics does not compute, per family, with the reason."""
    fmap = _feature_map()
    fmap = fmap[fmap["pyradiomics"] == ""]
    out = [
        {
            "family": FAMILY_SHORT[f],
            "features": len(g),
            "IBSI tags": ", ".join(g["ibsi_feature_tag"]),
            "why": "; ".join(dict.fromkeys(g["note"])),
        }
        for f, g in fmap.groupby("family", sort=False)
    ]
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- per-chapter card

VERDICTS = ("conformant", "differs", "outside IBSI-1", "not standardised by IBSI-1")


@dataclass
class ChapterCard:
    """How one chapter's PyRadiomics features relate to IBSI-1."""

    chapter: str
    images: str
    source: str  # where the settings come from
    image_types: list
    n_features: int  # per ROI, as PyRadiomics computes them with the chapter's settings
    n_original: int  # of which from the original (unfiltered) image
    classes: pd.DataFrame  # per feature class of the original image
    settings: pd.DataFrame  # setting, chapter, IBSI-1, verdict

    @property
    def n_filtered(self) -> int:
        return self.n_features - self.n_original


@cache
def _chapters_file() -> dict:
    path = SETTINGS_DIR / "chapters.yaml"
    raw = yaml.safe_load(path.read_text()) or {}
    for cid, c in raw.items():
        if set(c) - {"params", "spec_path", "images", "ndim"} or ("params" in c) == ("spec_path" in c):
            raise IBSIError(f"{path}: {cid} needs images, ndim and exactly one of params / spec_path")
    return raw


def chapter_ids() -> list[str]:
    return list(_chapters_file())


def chapter_params(chapter: str) -> tuple[dict, str]:
    """The chapter's PyRadiomics parameter dict and where it comes from."""
    from .features.radiomics import load_params
    from .spec import load_spec

    entry = _chapters_file().get(chapter)
    if entry is None:
        raise IBSIError(f"no IBSI card for chapter {chapter!r}; known: {', '.join(chapter_ids())}")
    if "params" in entry:
        return load_params(entry["params"]), f"src/replicate/params/{entry['params']}.yaml"
    node = load_spec(chapter).raw
    for part in entry["spec_path"].split("."):
        node = node[part]
    return load_params(node), f"spec {chapter}: {entry['spec_path']}"


def _class_features(canon: dict, ndim: int) -> dict[str, list[str]]:
    """Original-image feature names per PyRadiomics class, as the settings enable them."""
    from radiomics import getFeatureClasses

    classes = getFeatureClasses()
    out = {}
    for cls, names in canon["featureClass"].items():
        if ndim == 2 and cls == "shape":
            cls = "shape2D"
        if not names:
            names = [n for n, deprecated in classes[cls].getFeatureNames().items() if not deprecated]
        out[cls] = list(names)
    return out


def _verified(report: IBSIReport | None) -> dict[str, bool] | None:
    """PyRadiomics feature -> matched IBSI raw in every compared row of the configurations whose settings
    PyRadiomics expresses (digital phantom and CT A, route pyradiomics); None without a report."""
    if report is None:
        return None
    rows = report.rows
    rows = rows[
        (rows["route"] == "pyradiomics")
        & rows["config"].isin(["digital", "A"])
        & (rows["status"] != "not mappable")
        & (rows["conversion"] == "")
    ]
    if rows.empty:
        return None
    return rows.groupby("pyradiomics")["status"].apply(lambda s: bool((s == "match").all())).to_dict()


def chapter_card(chapter: str, report: IBSIReport | None = None) -> ChapterCard:
    """The IBSI card of ``chapter``: feature classes with IBSI counterparts, and its settings checked.

    With ``report`` (from :func:`compliance` with the digital phantom and configuration A) each class
    also counts its features whose PyRadiomics definition matched IBSI on the phantoms.
    """
    from .features.radiomics import canonical_params, count_features

    params, source = chapter_params(chapter)
    entry = _chapters_file()[chapter]
    ndim = int(entry["ndim"])
    canon = canonical_params(params)
    fmap = _feature_map()
    direct = fmap[(fmap["pyradiomics"] != "") & (fmap["conversion"] == "")].groupby("pyradiomics")["ibsi_code"]
    direct = direct.apply(lambda s: sorted(set(s))).to_dict()
    converted = set(fmap.loc[fmap["conversion"] != "", "pyradiomics"]) - set(direct)
    verified = _verified(report)
    rows = []
    for cls, names in _class_features(canon, ndim).items():
        keys = [f"{cls}:{n}" for n in names]
        with_ibsi = [k for k in keys if k in direct]
        row = {
            "class": cls,
            "IBSI family": FAMILIES.get(CLASS_FAMILY.get(cls, ""), "none (IBSI-1 morphology is 3-D)"),
            "features": len(names),
            "IBSI counterpart": len(with_ibsi),
            "via conversion": ", ".join(k.split(":")[1] for k in keys if k in converted),
            "no IBSI counterpart": ", ".join(k.split(":")[1] for k in keys if k not in direct and k not in converted),
        }
        if verified is not None:
            row["match IBSI on the phantoms"] = sum(bool(verified.get(k)) for k in with_ibsi)
        rows.append(row)
    classes = pd.DataFrame(rows)
    n_total = count_features(params, ndim=ndim)
    n_original = int(classes["features"].sum())
    return ChapterCard(
        chapter,
        " ".join(str(entry["images"]).split()),
        source,
        list(canon["imageType"]),
        n_total,
        n_original,
        classes,
        _settings_check(canon, ndim, n_total - n_original),
    )


def _settings_check(canon: dict, ndim: int, n_filtered: int) -> pd.DataFrame:
    s = canon["setting"]
    rows = []

    def add(setting, value, ibsi, verdict, why):
        assert verdict in VERDICTS
        rows.append({"setting": setting, "chapter": value, "IBSI-1": ibsi, "verdict": verdict, "why": why})

    filters = [t for t in canon["imageType"] if t not in IBSI1_IMAGE_TYPES]
    add(
        "image types",
        ", ".join(canon["imageType"]),
        "original image only",
        "outside IBSI-1" if filters else "conformant",
        (
            f"{n_filtered} features come from filtered images ({', '.join(filters)}); IBSI-1 standardises features "
            "of the unfiltered image only (convolutional filters are IBSI chapter 2)"
        )
        if filters
        else "",
    )
    if s.get("binCount"):
        add(
            "discretisation",
            f"fixed bin number {s['binCount']}",
            "fixed bin number (FBN) or fixed bin size (FBS)",
            "conformant",
            "PyRadiomics' binCount is IBSI's fixed bin number (configurations B, D, E match)",
        )
    elif s.get("resegmentRange"):
        add(
            "discretisation",
            f"fixed bin size {s.get('binWidth', 25)}",
            "FBS from the range's lower bound",
            "differs",
            "PyRadiomics puts bin edges at multiples of the width and numbers grey levels from the bin of "
            "the ROI minimum (getBinEdges), IBSI from the re-segmentation range's lower bound: "
            "features of grey-level values (joint average, grey level emphases...) shift",
        )
    else:
        add(
            "discretisation",
            f"fixed bin size {s.get('binWidth', 25)}, no re-segmentation range",
            "FBS from the range's lower bound; not recommended without a range",
            "differs",
            "IBSI takes the lower bound of the re-segmentation range as FBS's origin and does not "
            "recommend FBS without one; PyRadiomics puts bin edges at multiples of the width and numbers "
            "grey levels from the bin of each ROI's minimum, so a grey level means another intensity "
            "in each image",
        )
    if s.get("normalize"):
        add(
            "intensity normalisation",
            f"z-score x {s.get('normalizeScale', 1)} (whole image)",
            "none in the reference configurations",
            "not standardised by IBSI-1",
            "normalisation changes every intensity feature; IBSI-1 asks that it be reported, not how to do it",
        )
    shift = s.get("voxelArrayShift", 0) or 0
    add(
        "voxelArrayShift",
        shift,
        "0 (intensities as they are)",
        "conformant" if shift == 0 else "differs",
        ""
        if shift == 0
        else f"Energy, TotalEnergy and RootMeanSquared add {shift} to every intensity: not IBSI's energy and RMS",
    )
    spacing = s.get("resampledPixelSpacing")
    if spacing:
        add(
            "interpolation",
            f"{spacing} mm, {s.get('interpolator')}",
            "centred grid, ROI interpolated + 0.5 threshold, intensities rounded",
            "differs",
            "PyRadiomics aligns the grid at the image corner, resamples the ROI by "
            "nearest neighbour and does not round (IBSI configurations B-E)",
        )
    else:
        add(
            "interpolation",
            "none (native voxels)",
            "optional; configurations C-E resample to 2 mm isotropic",
            "conformant",
            "no interpolation is IBSI-conformant (as configuration A); 3-D texture on anisotropic "
            "voxels is, however, not rotation-invariant",
        )
    reseg = s.get("resegmentRange")
    add(
        "re-segmentation",
        f"{s.get('resegmentMode', 'absolute')} {reseg}" if reseg else "none",
        "optional range and/or outlier filter",
        "conformant",
        "" if not reseg else "a range and an outlier filter together cannot be expressed (IBSI configuration E)",
    )
    if ndim == 2:
        agg = "2-D image: 4 in-plane directions averaged (IBSI 2D averaged / 2D on a single slice)"
    elif s.get("force2D"):
        agg = "force2D: in-plane directions, all slices pooled (IBSI 2.5D)"
    else:
        agg = "3-D: 13 directions, features averaged (GLCM/GLRLM: IBSI 3D averaged; GLSZM/GLDM/NGTDM: 3D)"
    if s.get("weightingNorm"):
        agg += f"; weightingNorm {s['weightingNorm']}"
    add("texture aggregation", agg, "any IBSI aggregation, reported", "conformant", "")
    dist = s.get("distances", [1])
    add("neighbourhood distance", dist, "Chebyshev distance 1", "conformant" if list(dist) == [1] else "differs", "")
    add("NGLDM alpha (gldm_a)", s.get("gldm_a", 0), "0", "conformant" if s.get("gldm_a", 0) == 0 else "differs", "")
    if "firstorder" in canon["featureClass"]:
        add("kurtosis", "PyRadiomics Kurtosis", "excess kurtosis", "differs", "PyRadiomics' Kurtosis = IBSI's + 3")
    if ndim == 2:
        add(
            "morphology",
            "shape2D",
            "3-D morphological features",
            "outside IBSI-1",
            "IBSI-1 defines no 2-D morphological features",
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- text output


def family_matrix(summary: pd.DataFrame, route: str = "pyradiomics") -> pd.DataFrame:
    """Family x configuration table of ``matching/compared`` (matching counts raw matches; ``+k`` after a
    known conversion); ``-`` where nothing could be compared."""
    s = summary[summary["route"] == route] if "route" in summary else summary
    cells: dict[str, dict[str, str]] = {}
    for r in s.to_dict(orient="records"):
        conv = r["match after conversion"]
        text = "-" if r["compared"] == 0 else f"{r['match']}{f'+{conv}' if conv else ''}/{r['compared']}"
        cells.setdefault(FAMILY_SHORT[r["family"]], {})[r["config"]] = text
    out = pd.DataFrame(cells).T
    out = out[[c for c in CONFIGS if c in out.columns]]
    totals = s.groupby("config", sort=False)[["match", "match after conversion", "compared"]].sum()
    out.loc["all families"] = [
        f"{totals.loc[c, 'match']}+{totals.loc[c, 'match after conversion']}/{totals.loc[c, 'compared']}"
        for c in out.columns
    ]
    out.index.name = "family"
    return out


def format_report(report: IBSIReport, width: int = 100) -> str:
    """The report as text that fits ``width`` columns (``replicate ibsi``)."""
    import textwrap

    import radiomics

    def wrap(text, bullet=False):
        return textwrap.fill(text, width, initial_indent="- " if bullet else "", subsequent_indent="  ")

    lines = [f"IBSI-1 compliance of PyRadiomics {radiomics.__version__} (data set {DATASET})"]
    lines += [f"  {LICENCES[p]}" for p in dict.fromkeys(c.phantom for c in report.configs.values())]
    lines += [
        wrap(
            "Match: |ours - reference| <= IBSI's tolerance; without one, half a unit of the 3rd "
            "significant digit (IBSI's printed precision)."
        ),
        "",
    ]
    totals = report.totals()
    for route in [r for r in ROUTES if r in set(report.rows["route"])]:
        lines += [wrap(f"Route {route}: {ROUTE_TEXT[route]}."), ""]
        t = totals[totals["route"] == route][
            [
                "config",
                "reference values",
                "compared",
                "match",
                "match after conversion",
                "mismatch",
                "not mappable",
                "extraction s",
                "cached",
            ]
        ]
        t = t.rename(
            columns={
                "reference values": "values",
                "match after conversion": "converted",
                "not mappable": "unmapped",
                "extraction s": "extract s",
            }
        )
        lines += [
            t.to_string(index=False),
            "",
            "matching/compared per family (+k: after a known conversion):",
            family_matrix(report.summary, route).to_string(),
            "",
        ]
    left = report.rows[(report.rows["status"] == "mismatch") & ~report.rows["reason"].str.startswith("pre-processing")]
    if len(left):
        lines.append("Mismatches that IBSI pre-processing does not remove, by reason:")
        for (route, config, reason), g in left.groupby(["route", "config", "reason"], sort=False):
            tags = ", ".join(dict.fromkeys(g["tag"]))
            lines.append(wrap(f"{config} ({route}), {len(g)} values: {reason}. Features: {tags}", bullet=True))
    lines += ["", "Every row with its reference, tolerance, value and reason: replicate ibsi --json"]
    return "\n".join(lines)
