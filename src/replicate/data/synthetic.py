"""Seeded synthetic cohorts: every chapter's "synthetic twin", and the leakage tests' data.

A twin is described by a *design*: a plain dict, exactly what sits under a
paper spec's ``synthetic:`` key. :func:`make_cohort` turns it into a
:class:`~replicate.data.cohort.Cohort` with images and masks on disk
(NIfTI for volumes, 8-bit PNG for ultrasound), clinical covariates and
survival times, all drawn from ``seed``. The strength of every
label-dependent difference is scaled by ``effect_size``:

- ``effect_size = 1``: the design as written (e.g. a paper's Table 1);
- ``effect_size = 0``: an *uninformative* cohort: images, clinical
  covariates and survival are drawn from one distribution whatever the
  label (within a centre; see "Centres" below), so any model that scores
  above chance is leaking;
- ``effect_size = 2``: twice the separation (clearly learnable).

Each class-specific parameter is a pair ``[negative, positive]``; at effect
``e`` (= ``effect_size`` × the item's ``effect`` weight) class ``y`` uses
``mid + e * (value_y - mid)`` with ``mid = (negative + positive) / 2``
(categorical probabilities likewise, clipped and renormalised; survival on
the log-hazard scale). Everything random is drawn from standard
distributions in the same number and order for every patient, then mapped
through those parameters, so equal parameters give equal distributions.

Design (a complete example, as YAML in a spec)
----------------------------------------------

.. code-block:: yaml

    synthetic:
      kind: volume                 # volume (3-D NIfTI) | ultrasound (2-D PNG)
      outcome: lung_mets           # 0/1 outcome column = the cohort's default label
      positive_class: lung metastasis   # optional, for humans
      modalities: [T1, T2FS]       # see "Modalities"
      tumour_style: sarcoma        # volume: sarcoma | lipomatous ; ultrasound: breast
      image_effect: 1.0            # weight of the label effect on images (x effect_size); default 1
      id_prefix: STS               # patient ids STS0001, STS0002, ...; default SYN
      cohorts:                     # in this order; labels shuffled within each entry
        - {split: training, centre: Qingdao, n: 116, n_positive: 20}
        - {split: validation, centre: Jinan, n: 70, n_positive: 10}
        - {split: validation, centre: Shijiazhuang, n: 56, n_positive: 9}
      centres:                     # scanner shift per centre; centres not listed: identity
        Qingdao: {scale: 1.0, offset: 0.0, noise: 0.03, blur: 0.0}
        Jinan: {scale: 1.15, offset: 0.05, noise: 0.05, blur: 0.6, spacing: [0.8, 0.8, 3.5]}
        Shijiazhuang: {scale: {T1: 0.9, T2FS: 1.1}, offset: -0.03, noise: 0.04, blur: 0.3}
      geometry:
        shape: [64, 64, 24]        # voxels, ITK order (x, y, z); ultrasound: [width, height]
        spacing: [1.0, 1.0, 3.0]   # mm (x, y, z); ultrasound: one number (mm per pixel)
        tumour_diameter_mm: {mean: [32, 40], sd: [8, 10]}   # [negative, positive], lognormal
      image:                       # optional: override the style's per-class image parameters
        necrosis: [0.0, 0.5]       # [negative, positive]  (or {mean: [..], sd: .., clip: [lo, hi]})
      intensities:                 # optional: tissue intensities per modality (see MODALITY_TABLES)
        T2FS: {necrosis: 950}      # a modality this module does not know needs {like: T1, ...}
      clinical:
        - {name: age, type: normal, mean: [51.3, 48.1], sd: [18.9, 17.7], clip: [1, 93], decimals: 0}
        - {name: sex, type: categorical, levels: [male, female], p: [[0.65, 0.35], [0.60, 0.40]]}
        - {name: t_stage, type: categorical, levels: [1, 2, 3, 4],
           p: [[0.34, 0.46, 0.12, 0.08], [0.15, 0.35, 0.10, 0.40]]}
        - {name: ldh, type: lognormal, mean: [190, 240], sd: [50, 80], decimals: 0, effect: 0.5,
           missing: 0.05}
      survival:
        - {name: os, shape: 1.2, median_days: 1800, hazard_ratio: 2.5, size_hazard_ratio: 1.3,
           followup_days: [365, 2555], dropout: 0.05}

and an ultrasound twin (2-D grey-scale + Doppler):

.. code-block:: yaml

    synthetic:
      kind: ultrasound
      outcome: malignant
      modalities: [US, doppler]
      tumour_style: breast
      cohorts:
        - {split: training, centre: Hospital-1, n: 516, n_positive: 258}
        - {split: validation, centre: Hospital-2, n: 78, n_positive: 39}
      centres:
        Hospital-2: {scale: 0.9, offset: 0.04, noise: 0.03, speckle: 1.3, spacing: 0.25}
      geometry: {shape: [128, 128], spacing: 0.3, tumour_diameter_mm: {mean: [14, 20], sd: [5, 7]}}
      image: {blood_flow_grade: [[0.40, 0.35, 0.18, 0.07], [0.08, 0.22, 0.35, 0.35]]}
      clinical:
        - {name: age, type: normal, mean: [42, 55], sd: [14, 15], clip: [10, 90], decimals: 0}
        - {name: sex, type: categorical, levels: [female, male], p: [[0.55, 0.45], [0.45, 0.55]]}

Keys
~~~~

``kind`` (required): ``volume`` or ``ultrasound``. ``outcome`` (required):
name of the 0/1 label column. ``modalities`` (required). ``cohorts``
(required): list of ``{split: training|validation, centre, n, n_positive}``
(``n_negative`` may replace ``n_positive``). ``tumour_style``: default
``sarcoma`` (volume) / ``breast`` (ultrasound). ``centres``, ``geometry``,
``image``, ``intensities``, ``clinical``, ``survival``, ``image_effect``,
``id_prefix``, ``semantic`` (default true), ``positive_class``, ``name``:
optional. The JSON Schema ``specs/schema/synthetic.yaml`` lists every key
per kind, its type, range and default; an unknown key is an error (naming the
closest known one), and :func:`normalize_design` fills in the defaults.

Modalities
~~~~~~~~~~

Volumes: MR ``T1``, ``T1C`` (post-contrast; enhancement follows the
patient's ``enhancement``), ``T2``, ``T2FS`` (also ``STIR``, ``FS-T2WI``),
``PD``, ``DWI``, ``ADC``; ``CT`` (plain, HU); CT phases ``arterial``,
``venous`` (``portal``, ``CECT``), ``delayed`` — the tumour enhances by
``enhancement`` in every phase, more in the arterial phase and less in the
delayed phase by its ``washout``, both class dependent. All modalities of a
patient share one tissue map and one mask. Ultrasound: ``US`` (B-mode) and
``doppler`` (grey-scale colour Doppler: the B-mode at half brightness,
<= 128, with flow pixels drawn brighter, 140–255 = faster; the vessel count
follows ``blood_flow_grade`` 0–3, Adler-like).

Tumour styles and image parameters
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

:data:`STYLE_PARAMS` lists, per style, each image parameter's
``[negative, positive]`` values, per-patient sd (label independent) and
clip range; ``image:`` overrides them.

- ``sarcoma``: ``irregularity`` (surface perturbation, fraction of radius),
  ``heterogeneity`` (texture sd, fraction of the modality's range),
  ``necrosis`` (radius fraction of a dark-on-T1 / bright-on-T2 core),
  ``enhancement``, ``washout``.
- ``lipomatous`` (lipoma negative, WDLPS/ALT positive): fat-intensity
  tumour; ``septa_count``, ``septa_mm`` (thickness), ``nodules`` (non-fat
  fraction), ``irregularity``, ``heterogeneity``, ``enhancement``, ``washout``.
  Lipoma = small, homogeneous fat with thin septa; WDLPS = larger (via
  ``tumour_diameter_mm``), thick septa, non-fat nodules.
- ``breast`` (ultrasound; any hypoechoic solid lesion, e.g. superficial
  soft-tissue tumours): ``irregularity``, ``spiculation``, ``aspect``
  (width / depth; < 1.3 = taller-than-wide), ``heterogeneity``, ``echo``
  (lesion echogenicity), ``posterior`` (> 0 enhancement, < 0 shadowing),
  ``margin_blur_mm`` (unclear boundary) and ``blood_flow_grade`` (class
  probabilities of grades 0–3).

Sizes: ``geometry.tumour_diameter_mm`` (equivalent-sphere diameter for
volumes, largest lateral diameter for ultrasound; lognormal with the
class's mean / sd, clipped to fit the field of view). Defaults: volume
64×64×24 voxels at 1×1×3 mm, ``mean: [30, 38], sd: [7, 9]``; ultrasound
128×128 pixels at 0.3 mm, ``mean: [13, 16], sd: [4, 5]``.

Centres
~~~~~~~

``scale`` (multiplies intensities), ``offset`` and ``noise`` (fractions of
the modality's ``range``: 800 for MR, 200 HU for CT, 255 for ultrasound;
noise = sd of additive Gaussian noise, default 0.03 volume / 0.02
ultrasound), ``blur`` (extra Gaussian blur, voxels in-plane), ``spacing``
(voxel spacing [x, y, z] mm; the array shape stays, so the field of view
and the tumour's voxel count change), ultrasound ``speckle`` (speckle-size
factor). For volumes each value but ``spacing`` may be a number or
``{modality: number}`` (modalities not named: ``default``, else identity). Centres
differ by scanner only, not by anatomy or class parameters: at effect 0 the
images do not depend on the label *within a centre*; a pooled cohort whose
centres differ in class balance still links centre (hence scanner) and
label, as real multi-centre data do.

Clinical covariates
~~~~~~~~~~~~~~~~~~~

Each item: ``name``, ``type`` (``normal`` | ``lognormal`` | ``categorical``),
``mean`` and ``sd`` (natural scale, ``[negative, positive]`` or one number)
or ``levels`` and ``p`` (``[[p_neg...], [p_pos...]]`` or one list),
optional ``effect`` (weight, default 1), ``clip`` ``[lo, hi]``, ``decimals``,
``missing`` (label-independent fraction set to NaN).

Survival
~~~~~~~~

Each item adds ``<name>_time`` (days, int) and ``<name>_event`` (0/1):
Weibull event times with ``shape`` (default 1.2) and ``median_days``
(default 1500; the median at linear predictor 0, halfway between the
classes), proportional hazards ``exp(b * (y - 0.5) + b_s * z_size)`` with
``b = log(hazard_ratio) * e`` (default HR 2) and
``b_s = log(size_hazard_ratio) * e`` per sd of the patient's log tumour
size (default 1), ``e = effect_size * effect``; administrative censoring at
a follow-up uniform in ``followup_days`` (``[min, max]`` or one number;
default ``[365, 1825]``) and a ``dropout`` fraction lost at a uniform time
before that.

Table and files
~~~~~~~~~~~~~~~

Index ``patient_id`` (``<id_prefix>0001``...); columns: the outcome (0/1),
``split``, ``centre``, clinical columns, survival columns, semantic
columns (unless ``semantic: false``; derived from the image latents, so
consistent with the images: ``tumour_diameter_mm``; sarcoma ``necrosis``;
lipomatous ``thick_septa``, ``nodules``; ultrasound
``morphology_irregular``, ``boundary_unclear``, ``echo_uneven``,
``blood_flow_grade``), then ``image_<mod>`` and ``mask_<mod>`` (absolute
paths; all modalities of a patient share one mask file). Volumes:
``<id>_<mod>.nii.gz`` (int16, spacing and a centred origin) and
``<id>_mask.nii.gz`` (uint8 0/1). Ultrasound: ``<id>_<mod>.png`` (8-bit
grey) and ``<id>_mask.png`` (1-bit, read as 0/255 like BUS-BRA), pixel
spacing in ``meta["spacing"]``. Files are cached under
``data_dir()/synthetic/<name>-<key>/`` keyed on (design, seed,
effect_size, n_patients, :data:`GENERATOR_VERSION`), written atomically,
with ``cohort.json`` (their sha256) written last; a later call with the
same arguments reuses them. ``meta`` holds the normalised design, the
arguments, counts per entry, the spacing per centre, ``latents`` (a
DataFrame of every patient's image parameters), ``files_sha256``.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ..io import atomic_write_bytes, atomic_write_json, sha256_file, stable_hash
from ..spec import check
from .cohort import Cohort
from .synthetic_images import CT_PHASE_GAIN, modality_table, render_ultrasound, render_volume

GENERATOR_VERSION = "1"
MIN_PER_CLASS = 3

#: Per style: image parameter -> ([negative, positive], per-patient sd, (clip low, clip high)).
STYLE_PARAMS: dict[str, dict[str, tuple]] = {
    "sarcoma": {
        "irregularity": ([0.12, 0.24], 0.10, (0.0, 0.8)),
        "heterogeneity": ([0.06, 0.12], 0.05, (0.0, 0.6)),
        "necrosis": ([0.10, 0.35], 0.22, (0.0, 0.8)),
        "enhancement": ([0.90, 1.15], 0.20, (0.2, 2.5)),
        "washout": ([0.10, 0.25], 0.12, (0.0, 0.8)),
    },
    "lipomatous": {
        "irregularity": ([0.08, 0.16], 0.07, (0.0, 0.6)),
        "heterogeneity": ([0.03, 0.06], 0.025, (0.0, 0.4)),
        "septa_count": ([2.0, 4.5], 2.0, (0.0, 12.0)),
        "septa_mm": ([1.2, 2.2], 0.8, (0.3, 6.0)),
        "nodules": ([0.02, 0.10], 0.07, (0.0, 0.5)),
        "enhancement": ([0.90, 1.15], 0.20, (0.2, 2.5)),
        "washout": ([0.10, 0.20], 0.10, (0.0, 0.8)),
    },
    "breast": {
        "irregularity": ([0.08, 0.18], 0.08, (0.0, 0.6)),
        "spiculation": ([0.02, 0.08], 0.05, (0.0, 0.4)),
        "aspect": ([1.6, 1.25], 0.30, (0.6, 3.0)),
        "heterogeneity": ([0.15, 0.28], 0.11, (0.0, 0.8)),
        "echo": ([0.20, 0.15], 0.045, (0.03, 0.9)),
        "posterior": ([0.35, -0.30], 0.55, (-0.9, 1.5)),
        "margin_blur_mm": ([0.25, 0.50], 0.22, (0.05, 2.0)),
    },
}
# the semantic (radiologist-like) columns: column -> (latent, threshold taken at the style's mid value)
SEMANTIC = {
    "sarcoma": {"necrosis": "necrosis"},
    "lipomatous": {"thick_septa": "septa_mm", "nodules": "nodules"},
    "breast": {
        "morphology_irregular": "irregularity",
        "boundary_unclear": "margin_blur_mm",
        "echo_uneven": "heterogeneity",
    },
}
# stream ids of the seeded generators (never reorder: changes every cohort)
_S_LABELS, _S_LATENT, _S_IMAGE, _S_CLINICAL, _S_SURVIVAL = 0, 1, 2, 3, 4


class DesignError(ValueError):
    """A synthetic design that cannot be generated (message says which key and why)."""


# ----------------------------------------------------------------------------- design

#: The design's JSON Schema (keys, types, ranges, defaults): ``specs/schema/synthetic.yaml``.
SCHEMA = "schema/synthetic.yaml#/$defs/"


def _pair(value) -> list[float]:
    """``x`` -> ``[x, x]``; ``[negative, positive]`` kept (as floats)."""
    return [float(value)] * 2 if isinstance(value, (int, float)) else [float(v) for v in value]


def _probs(value, n_levels: int, what: str) -> list[list[float]]:
    """``[p...]`` or ``[[p_neg...], [p_pos...]]`` -> two probability lists (checked to sum to 1 +- 0.02)."""
    rows = value if isinstance(value[0], list) else [value, value]
    rows = [[float(v) for v in row] for row in rows]
    for row in rows:
        if len(row) != n_levels or abs(sum(row) - 1) > 0.02:
            raise DesignError(f"{what}: each probability list needs {n_levels} values summing to 1, got {row}")
    return rows  # renormalised when drawn


def _check(instance, definition: str, what: str) -> None:
    """Validate against the schema's ``definition``, filling in its defaults (in place)."""
    check(instance, SCHEMA + definition, where=what, error=DesignError)


def normalize_design(design: dict) -> dict:
    """Validate ``design`` and return a copy with every default filled in (what is hashed and stored).

    The schema (:data:`SCHEMA`) checks keys, types and ranges and fills in the defaults; this adds
    what a schema cannot say (known modalities, probabilities summing to 1, centres used by a cohort
    entry, distinct column names) and writes numbers as floats. Raises :class:`DesignError` naming the
    offending key.
    """
    if not isinstance(design, dict):
        raise DesignError(f"a design is a mapping, got {type(design).__name__}")
    d = copy.deepcopy(design)
    _check(d, "synthetic", "synthetic design")
    kind = d["kind"]
    if kind == "volume":
        _check_intensities(d["modalities"], d["intensities"])
    d["image_effect"] = float(d["image_effect"])
    d["cohorts"] = [_cohort(c, f"cohorts[{i}]") for i, c in enumerate(d["cohorts"])]
    geo = d["geometry"]
    geo["shape"] = [int(v) for v in geo["shape"]]
    geo["spacing"] = _spacing(geo["spacing"])
    geo["tumour_diameter_mm"] = {k: _pair(v) for k, v in geo["tumour_diameter_mm"].items()}
    d["centres"] = _centres(d)
    d["image"] = _image_params(d["image"], d["tumour_style"], kind)
    d["clinical"] = [_clinical(c) for c in d["clinical"]]
    d["survival"] = [_survival(s) for s in d["survival"]]
    _check_columns(d)
    return d


def _check_intensities(mods: list[str], intens: dict) -> None:
    """Every volume modality has an intensity table (known, or ``like`` a known one)."""
    for m in mods:
        try:
            modality_table(m, intens.get(m))
        except ValueError as exc:
            raise DesignError(str(exc)) from None
    extra = set(intens) - set(mods)
    if extra:
        raise DesignError(f"intensities for modalities not in the design: {sorted(extra)}")


def _cohort(c: dict, what: str) -> dict:
    """``{split, centre, n, n_positive[, description]}`` (``n_positive`` from ``n_negative`` if need be)."""
    n = int(c["n"])
    npos = int(c["n_positive"]) if "n_positive" in c else n - int(c["n_negative"])
    if not 0 <= npos <= n or ("n_negative" in c and npos + c["n_negative"] != n):
        raise DesignError(f"{what}: n_positive must be in [0, n] and n_positive + n_negative = n, got {c}")
    out = {"split": c["split"], "centre": c["centre"], "n": n, "n_positive": npos}
    if "description" in c:
        out["description"] = c["description"]
    return out


def _spacing(value):
    """Volume spacing ``[x, y, z]`` or ultrasound mm per pixel, as floats."""
    return float(value) if isinstance(value, (int, float)) else [float(v) for v in value]


def _centres(d: dict) -> dict:
    """Every centre a cohort entry names (unlisted ones: the schema's defaults), spacing filled in."""
    kind, mods, given = d["kind"], d["modalities"], d["centres"]
    names = list(dict.fromkeys(c["centre"] for c in d["cohorts"]))
    extra = set(given) - set(names)
    if extra:
        raise DesignError(f"centres {sorted(extra)} are not used by any cohort entry")
    centres = {}
    for name in names:
        c = given.get(name, {})
        _check(c, f"centre_{kind}", f"centres.{name}")
        c["spacing"] = _spacing(c.get("spacing", d["geometry"]["spacing"]))
        for k, v in c.items():
            per_modality = v if isinstance(v, dict) else {"default": v}
            if set(per_modality) - set(mods) - {"default"}:
                raise DesignError(f"centres.{name}.{k}: modalities {sorted(set(v) - set(mods))} not in the design")
            if k != "spacing" and not all(math.isfinite(x) for x in per_modality.values()):
                raise DesignError(f"centres.{name}.{k}: finite numbers expected, got {v!r}")
        centres[name] = c
    return centres


def _image_params(img: dict, style: str, kind: str) -> dict:
    """The style's image parameters (:data:`STYLE_PARAMS`) with the design's overrides."""
    params = {k: {"mean": list(v[0]), "sd": v[1], "clip": list(v[2])} for k, v in STYLE_PARAMS[style].items()}
    for k, v in img.items():
        if k == "blood_flow_grade":
            continue
        if isinstance(v, dict):
            params[k].update({key: float(x) if key == "sd" else _pair(x) for key, x in v.items()})
        else:
            params[k]["mean"] = _pair(v)
    if kind == "ultrasound":
        params["blood_flow_grade"] = _probs(img["blood_flow_grade"], 4, "image.blood_flow_grade")
    return params


def _clinical(c: dict) -> dict:
    """A clinical covariate with its numbers as floats (``[negative, positive]`` pairs, two p lists)."""
    out = {**c, "effect": float(c["effect"]), "missing": float(c["missing"])}
    if c["type"] == "categorical":
        out["p"] = _probs(c["p"], len(c["levels"]), f"clinical.{c['name']}.p")
    else:
        out.update({k: _pair(c[k]) for k in ("mean", "sd", "clip") if k in c})
        if "decimals" in c:
            out["decimals"] = int(c["decimals"])
    return out


def _survival(s: dict) -> dict:
    """A survival item with its numbers as floats."""
    floats = ("shape", "median_days", "hazard_ratio", "size_hazard_ratio", "dropout", "effect")
    out = {**s, **{k: float(s[k]) for k in floats}, "followup_days": _pair(s["followup_days"])}
    lo, hi = out["followup_days"]
    if lo > hi:
        raise DesignError(f"survival.{s['name']}.followup_days: [min, max] with min <= max expected, got {[lo, hi]}")
    return out


def _check_columns(d: dict) -> None:
    """The outcome, split, centre, clinical, survival and semantic columns are distinct."""
    cols = [
        d["outcome"],
        "split",
        "centre",
        *(c["name"] for c in d["clinical"]),
        *(f"{s['name']}_{x}" for s in d["survival"] for x in ("time", "event")),
    ]
    twice = sorted({c for c in cols if cols.count(c) > 1})
    if twice:
        raise DesignError(f"columns {twice} used twice")
    if d["semantic"]:
        sem = ["tumour_diameter_mm", *SEMANTIC[d["tumour_style"]]] + (
            ["blood_flow_grade"] if d["kind"] == "ultrasound" else []
        )
        clash = set(cols) & set(sem)
        if clash:
            raise DesignError(f"columns {sorted(clash)} clash with the semantic columns (set semantic: false)")


# ----------------------------------------------------------------------------- counts


def scale_counts(cohorts: list[dict], n_patients: int | None, min_per_class: int = MIN_PER_CLASS) -> list[dict]:
    """Cohort entries resized to ``n_patients`` in total, proportionally, keeping each entry's class balance.

    Each entry keeps at least ``min_per_class`` patients of each class it has;
    patients needed for that are taken from the largest entries, so the total
    is ``n_patients`` unless the minima alone exceed it. ``None``: as designed.
    """
    out = [dict(c) for c in cohorts]
    if n_patients is None:
        return out
    if not isinstance(n_patients, (int, np.integer)) or isinstance(n_patients, bool) or n_patients < 1:
        raise ValueError(f"n_patients must be a positive integer, got {n_patients!r}")
    n_patients = int(n_patients)
    total = sum(c["n"] for c in cohorts)
    need = [min(min_per_class, c["n_positive"]) + min(min_per_class, c["n"] - c["n_positive"]) for c in cohorts]
    raw = [c["n"] * n_patients / total for c in cohorts]
    sizes = [int(math.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - sizes[i]), i))
    for i in order[: n_patients - sum(sizes)]:
        sizes[i] += 1
    sizes = [max(n, k) for n, k in zip(sizes, need)]
    while sum(sizes) > n_patients:  # give back what the minima took, from the largest entries with room
        room = [i for i in range(len(sizes)) if sizes[i] > need[i]]
        if not room:
            break
        sizes[max(room, key=lambda i: (sizes[i] - need[i], -i))] -= 1
    for c, n, c0 in zip(out, sizes, cohorts):
        pos0, neg0 = c0["n_positive"], c0["n"] - c0["n_positive"]
        pos = int(round(pos0 * n / c0["n"]))
        c["n"], c["n_positive"] = n, min(max(pos, min(min_per_class, pos0)), n - min(min_per_class, neg0))
    return out


# ----------------------------------------------------------------------------- draws


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key)))


def _interp(pair, y: np.ndarray, e: float) -> np.ndarray:
    """Per-patient class value at effect ``e``: ``mid + e * (pair[y] - mid)``."""
    a, b = float(pair[0]), float(pair[1])
    mid = (a + b) / 2
    return mid + e * (np.where(y == 1, b, a) - mid)


def _interp_probs(p, y: np.ndarray, e: float) -> np.ndarray:
    """(n, k) per-patient probabilities, interpolated, clipped at 0, renormalised."""
    p0, p1 = np.asarray(p[0], float), np.asarray(p[1], float)
    mid = (p0 + p1) / 2
    pr = mid[None, :] + e * (np.where(y[:, None] == 1, p1[None, :], p0[None, :]) - mid[None, :])
    pr = np.clip(pr, 0, None)
    return pr / pr.sum(axis=1, keepdims=True)


def _lognormal(mean: np.ndarray, sd: np.ndarray, z: np.ndarray) -> np.ndarray:
    s2 = np.log1p((sd / mean) ** 2)
    return np.exp(np.log(mean) - s2 / 2 + np.sqrt(s2) * z)


def draw_labels(cohorts: list[dict], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (shuffled within each entry) and the entry index of every patient."""
    ys, entry = [], []
    for k, c in enumerate(cohorts):
        y = np.array([1] * c["n_positive"] + [0] * (c["n"] - c["n_positive"]), dtype=np.int64)
        ys.append(_rng(seed, _S_LABELS, k).permutation(y))
        entry.append(np.full(c["n"], k))
    return np.concatenate(ys), np.concatenate(entry)


def draw_latents(design: dict, y: np.ndarray, seed: int, effect_size: float) -> pd.DataFrame:
    """Every patient's image parameters (one row per patient, label-independent draws mapped by class)."""
    kind = design["kind"]
    e = effect_size * design["image_effect"]
    n = len(y)
    params = design["image"]
    names = sorted(k for k in params if k != "blood_flow_grade")
    # one fixed-length block of standard draws per patient
    k_draws = 1 + 3 + 3 + 3 + len(names) + 1
    Z = np.empty((n, k_draws))
    for i in range(n):
        r = _rng(seed, _S_LATENT, i)
        Z[i] = r.standard_normal(k_draws)
    Z[:, -1] = ndtr(Z[:, -1])  # a uniform, for categorical draws
    geo = design["geometry"]
    tdm = geo["tumour_diameter_mm"]
    mean, sd = _interp(tdm["mean"], y, e), _interp(tdm["sd"], y, e)
    diam = _lognormal(np.maximum(mean, 1.0), np.maximum(sd, 0.0), Z[:, 0])
    # fit the field of view of the smallest centre
    if kind == "volume":
        fovs = [np.array(geo["shape"]) * np.array(c["spacing"]) for c in design["centres"].values()]
        dmax = min(min(0.75 * min(f[0], f[1]), 0.9 * f[2]) for f in fovs)
    else:
        fovs = [np.array(geo["shape"]) * c["spacing"] for c in design["centres"].values()]
        dmax = min(0.6 * f[0] for f in fovs)
    lat = pd.DataFrame({"diameter_mm": np.clip(diam, 5.0, dmax), "z_size": Z[:, 0]})
    el = np.exp(0.15 * Z[:, 1:4])
    lat["elongation"] = list(el)
    lat["angles"] = list(np.pi * ndtr(Z[:, 4:7]) * np.array([2, 1, 2]))
    lat["offset"] = list(np.tanh(Z[:, 7:10]))
    for j, k in enumerate(names):
        p = params[k]
        v = _interp(p["mean"], y, e) + p["sd"] * Z[:, 10 + j]
        lat[k] = np.clip(v, p["clip"][0], p["clip"][1])
    if "septa_count" in lat:
        lat["septa_count"] = np.round(lat["septa_count"]).astype(int)
    if kind == "ultrasound":
        pr = _interp_probs(params["blood_flow_grade"], y, e)
        lat["blood_flow_grade"] = (Z[:, -1][:, None] > np.cumsum(pr, axis=1)[:, :-1]).sum(axis=1).astype(int)
    for k in ("enhancement", "washout", "necrosis", "septa_count", "septa_mm", "nodules", "heterogeneity"):
        if k not in lat:
            lat[k] = 0.0
    return lat


def draw_clinical(design: dict, y: np.ndarray, seed: int, effect_size: float) -> pd.DataFrame:
    """The clinical covariates (one column per item, in design order)."""
    out = {}
    n = len(y)
    for j, c in enumerate(design["clinical"]):
        r = _rng(seed, _S_CLINICAL, j)
        u = r.uniform(size=n)
        z = r.standard_normal(n)
        miss = r.uniform(size=n) < c["missing"]
        e = effect_size * c["effect"]
        if c["type"] == "categorical":
            pr = _interp_probs(c["p"], y, e)
            idx = (u[:, None] > np.cumsum(pr, axis=1)[:, :-1]).sum(axis=1)
            levels = c["levels"]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels):
                # numbers: int64 when all are integers and none is missing, else float with NaN
                as_int = all(float(v).is_integer() for v in levels) and not miss.any()
                vals = np.asarray(levels, dtype=np.int64 if as_int else float)[idx]
                if miss.any():
                    vals[miss] = np.nan
            else:
                vals = np.asarray([str(v) for v in levels], dtype=object)[idx]
                vals[miss] = np.nan
            out[c["name"]] = vals
            continue
        mean, sd = _interp(c["mean"], y, e), _interp(c["sd"], y, e)
        if c["type"] == "normal":
            v = mean + np.maximum(sd, 0) * z
        else:
            v = _lognormal(np.maximum(mean, 1e-9), np.maximum(sd, 0), z)
        if "clip" in c:
            v = np.clip(v, c["clip"][0], c["clip"][1])
        if "decimals" in c:
            v = np.round(v, c["decimals"])
        v = np.where(miss, np.nan, v)
        out[c["name"]] = v
    return pd.DataFrame(out)


def draw_survival(design: dict, y: np.ndarray, z_size: np.ndarray, seed: int, effect_size: float) -> pd.DataFrame:
    """``<name>_time`` (days, int >= 1) and ``<name>_event`` (0/1) per survival item."""
    out = {}
    n = len(y)
    for j, s in enumerate(design["survival"]):
        r = _rng(seed, _S_SURVIVAL, j)
        expo = r.exponential(size=n)
        fu_u = r.uniform(size=n)
        drop_u = r.uniform(size=n)
        drop_t = r.uniform(size=n)
        e = effect_size * s["effect"]
        lp = math.log(s["hazard_ratio"]) * e * (y - 0.5) + math.log(s["size_hazard_ratio"]) * e * z_size
        k = s["shape"]
        lam = s["median_days"] / math.log(2) ** (1 / k)
        t_event = lam * (expo * np.exp(-lp)) ** (1 / k)
        lo, hi = s["followup_days"]
        cens = lo + (hi - lo) * fu_u
        cens = np.where(drop_u < s["dropout"], cens * drop_t, cens)
        time = np.minimum(t_event, cens)
        out[f"{s['name']}_time"] = np.maximum(np.ceil(time), 1).astype(np.int64)
        out[f"{s['name']}_event"] = (t_event <= cens).astype(np.int64)
    return pd.DataFrame(out)


def semantic_columns(design: dict, lat: pd.DataFrame) -> pd.DataFrame:
    """Radiologist-like reads derived from the latents (so they agree with the images)."""
    out = {"tumour_diameter_mm": np.round(lat["diameter_mm"].to_numpy(), 1)}
    params = design["image"]
    for col, k in SEMANTIC[design["tumour_style"]].items():
        thr = float(np.mean(params[k]["mean"]))
        v = lat[k].to_numpy()
        if k == "irregularity" and "spiculation" in lat:
            v = v + lat["spiculation"].to_numpy()
            thr += float(np.mean(params["spiculation"]["mean"]))
        out[col] = (v > thr).astype(np.int64)
    if design["kind"] == "ultrasound":
        out["blood_flow_grade"] = lat["blood_flow_grade"].to_numpy().astype(np.int64)
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- files


def _write_nifti(path: Path, arr: np.ndarray, spacing, dtype) -> None:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(arr.astype(dtype, copy=False))
    img.SetSpacing([float(s) for s in spacing])
    size = arr.shape[::-1]
    img.SetOrigin([-(n - 1) / 2 * float(s) for n, s in zip(size, spacing)])
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".nii.gz")
    os.close(fd)
    try:
        sitk.WriteImage(img, tmp, True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "synthetic"


# ----------------------------------------------------------------------------- the cohort


def make_cohort(
    design: dict | str,
    *,
    seed: int = 0,
    effect_size: float = 1.0,
    n_patients: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    name: str | None = None,
) -> Cohort:
    """Generate (or reuse from the cache) the synthetic cohort of ``design``.

    ``design``: the design dict (module docstring), or a chapter id whose
    spec's ``synthetic:`` section is used. ``seed``: fixes every draw.
    ``effect_size``: >= 0, scales every label effect (0 = uninformative).
    ``n_patients``: total size, the design's entries rescaled proportionally
    with their class balance (at least 3 per class per entry, see
    :func:`scale_counts`); ``None``: as
    designed. ``cache_dir``: default ``data_dir()/"synthetic"``. ``name``:
    the cohort's name (default ``"synthetic:<design name or outcome>"``).

    Same arguments -> the same table and byte-identical image arrays; a
    second call reads the cached files instead of rendering them again.
    """
    if isinstance(design, str):
        from ..spec import load_spec

        spec_id = design
        design = load_spec(spec_id).synthetic
        if not design:
            raise DesignError(f"spec {spec_id!r} has no synthetic section")
        name = name or f"synthetic:{spec_id}"
    d = normalize_design(design)
    effect_size = float(effect_size)
    if not (effect_size >= 0 and math.isfinite(effect_size)):
        raise ValueError(f"effect_size must be a finite number >= 0, got {effect_size!r}")
    seed = int(seed)
    name = name or f"synthetic:{d.get('name') or d['outcome']}"
    cohorts = scale_counts(d["cohorts"], n_patients)
    key = stable_hash(
        {"design": d, "seed": seed, "effect_size": effect_size, "n_patients": n_patients, "version": GENERATOR_VERSION}
    )
    if cache_dir is None:
        from ..config import data_dir

        cache_dir = data_dir() / "synthetic"
    folder = Path(cache_dir) / f"{_slug(name)}-{key[:16]}"

    # --- the table (cheap: always recomputed, deterministic)
    y, entry = draw_labels(cohorts, seed)
    n = len(y)
    ids = [f"{d['id_prefix']}{i + 1:04d}" for i in range(n)]
    lat = draw_latents(d, y, seed, effect_size)
    lat.index = pd.Index(ids, name="patient_id")
    table = pd.DataFrame(index=pd.Index(ids, name="patient_id"))
    table[d["outcome"]] = y
    table["split"] = [cohorts[k]["split"] for k in entry]
    table["centre"] = [cohorts[k]["centre"] for k in entry]
    parts = [draw_clinical(d, y, seed, effect_size), draw_survival(d, y, lat["z_size"].to_numpy(), seed, effect_size)]
    if d["semantic"]:
        parts.append(semantic_columns(d, lat))
    for part in parts:
        for col in part:
            table[col] = part[col].to_numpy()
    ext = ".nii.gz" if d["kind"] == "volume" else ".png"
    mask_paths = [folder / f"{pid}_mask{ext}" for pid in ids]
    for m in d["modalities"]:
        table[f"image_{m}"] = [str(folder / f"{pid}_{_slug(m)}{ext}") for pid in ids]
    for m in d["modalities"]:
        table[f"mask_{m}"] = [str(p) for p in mask_paths]

    # --- the files (rendered once, then reused)
    stamp = folder / "cohort.json"
    files = [Path(p) for m in d["modalities"] for p in table[f"image_{m}"]] + mask_paths
    info = None
    if stamp.is_file():
        try:
            info = json.loads(stamp.read_text())
            if info.get("key") != key or not all(p.is_file() for p in files):
                info = None
        except (ValueError, OSError):
            info = None
    reused = info is not None
    if info is None:
        folder.mkdir(parents=True, exist_ok=True)
        _render_all(d, lat, table, entry, cohorts, seed, folder, ext)
        hashes = {p.name: sha256_file(p) for p in sorted(files)}
        info = {
            "key": key,
            "generator_version": GENERATOR_VERSION,
            "name": name,
            "seed": seed,
            "effect_size": effect_size,
            "n_patients": n_patients,
            "files": hashes,
            "files_sha256": stable_hash(hashes),
        }
        atomic_write_json(stamp, info)

    spacing = {c: cfg["spacing"] for c, cfg in d["centres"].items()}
    meta = {
        "kind": d["kind"],
        "design": d,
        "seed": seed,
        "effect_size": effect_size,
        "n_patients": n_patients,
        "generator_version": GENERATOR_VERSION,
        "cache_key": key,
        "folder": str(folder),
        "reused": reused,
        "counts": cohorts,
        "centres": sorted(d["centres"]),
        "splits": sorted(set(table["split"])),
        "spacing": spacing,
        "tumour_style": d["tumour_style"],
        "latents": lat,
        "files_sha256": info["files_sha256"],
        "positive_class": d.get("positive_class", ""),
    }
    source = (
        f"synthetic twin (replicate.data.synthetic v{GENERATOR_VERSION}; seed={seed}, "
        f"effect_size={effect_size:g}, n={n})"
    )
    return Cohort(name, table, label=d["outcome"], modalities=list(d["modalities"]), source=source, meta=meta)


def _render_all(
    d: dict,
    lat: pd.DataFrame,
    table: pd.DataFrame,
    entry: np.ndarray,
    cohorts: list[dict],
    seed: int,
    folder: Path,
    ext: str,
) -> None:
    kind = d["kind"]
    tables = {m: modality_table(m, d["intensities"].get(m)) for m in d["modalities"]} if kind == "volume" else {}
    for i, pid in enumerate(table.index):
        centre = d["centres"][cohorts[entry[i]]["centre"]]
        images, mask = render_patient(d, lat.iloc[i], centre, seed, i, tables)
        if kind == "volume":
            sp = centre["spacing"]
            for m, arr in images.items():
                _write_nifti(Path(table.at[pid, f"image_{m}"]), np.round(arr), sp, np.int16)
            _write_nifti(folder / f"{pid}_mask{ext}", mask, sp, np.uint8)
        else:
            for m, arr in images.items():
                _write_png(Path(table.at[pid, f"image_{m}"]), arr)
            _write_png(folder / f"{pid}_mask{ext}", mask.astype(bool))


def render_patient(design: dict, lat, centre: dict, seed: int, index: int, tables: dict | None = None):
    """Render one patient (``design`` normalised, ``lat`` its latent row, ``index`` its position).

    Returns ``({modality: array}, mask)`` as written by :func:`make_cohort`
    before rounding (volumes: float32 (z, y, x); ultrasound: uint8 (rows, cols)).
    """
    rng = _rng(seed, _S_IMAGE, index)
    lat = dict(lat)
    if design["kind"] == "volume":
        if tables is None:
            tables = {m: modality_table(m, design["intensities"].get(m)) for m in design["modalities"]}
        return render_volume(
            lat,
            shape_xyz=design["geometry"]["shape"],
            spacing_xyz=centre["spacing"],
            modalities=design["modalities"],
            tables=tables,
            style=design["tumour_style"],
            centre=centre,
            rng=rng,
        )
    return render_ultrasound(
        lat,
        shape_xy=design["geometry"]["shape"],
        spacing_mm=centre["spacing"],
        modalities=design["modalities"],
        centre=centre,
        rng=rng,
    )


def load_image(path: str | os.PathLike) -> np.ndarray:
    """The array of a synthetic image or mask file (NIfTI -> (z, y, x); PNG -> (rows, cols))."""
    path = Path(path)
    if path.name.endswith(".png"):
        from PIL import Image

        return np.array(Image.open(path))
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


__all__ = [
    "CT_PHASE_GAIN",
    "DesignError",
    "GENERATOR_VERSION",
    "STYLE_PARAMS",
    "draw_clinical",
    "draw_labels",
    "draw_latents",
    "draw_survival",
    "load_image",
    "make_cohort",
    "normalize_design",
    "render_patient",
    "scale_counts",
    "semantic_columns",
]
