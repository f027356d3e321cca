"""Segmentations of a chosen quality: degrade a reference mask until its Dice with the reference lies in a range.

The ALT chapter's segmentation-quality analysis (Spaanderman et al. 2024, Fig. 4B) compares the radiomics
model on patients whose automatic / interactive segmentations were graded "Excellent" with those graded
"Sufficient". A synthetic twin has perfect masks; this module gives each patient a mask whose Dice
similarity coefficient (DSC) with the true mask is drawn from the grade's range.

How a mask is degraded (:func:`degrade_mask`): the signed distance to the true surface (mm, positive
inside) plus ``a`` times a smooth random field (Gaussian-filtered white noise, correlation length
``correlation_mm``, unit sd, plus a per-patient bias: under- or over-segmentation) is thresholded at 0;
the largest connected component is kept. The amplitude ``a`` (mm) is found by bisection so that the DSC
is within ``tol`` of the target (DSC falls monotonically, in expectation, as ``a`` grows). The result
is deterministic given the seed.

Degraded masks are cached on disk by what they depend on: the source mask's content (voxels and
geometry), the target DSC, the seed and the algorithm's version (:func:`degraded_mask_key`). A cache keyed
by case id alone would hand a later run (another effect size, cohort size or profile, hence another
tumour shape under the same id) a mask of the wrong tumour, whose shape carries the earlier run's labels.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

__all__ = [
    "dice",
    "degrade_mask",
    "degrade_mask_file",
    "degraded_mask_key",
    "mask_content_hash",
    "assign_grades",
    "degrade_cases",
]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice similarity coefficient of two binary masks (1.0 when both are empty)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2.0 * np.logical_and(a, b).sum() / s)


def _largest_component(m: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(m)
    if n <= 1:
        return m
    sizes = ndimage.sum(m, lab, index=np.arange(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def degrade_mask(
    mask: np.ndarray,
    target_dice: float,
    rng: np.random.Generator,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    correlation_mm: float = 12.0,
    bias_range: tuple[float, float] = (-0.6, 0.6),
    tol: float = 0.005,
    max_iter: int = 40,
) -> tuple[np.ndarray, float]:
    """A degraded copy of ``mask`` (array, axes in the same order as ``spacing``) with DSC ~ ``target_dice``.

    Returns ``(mask, achieved_dice)``. ``target_dice`` in (0, 1]; 1 returns the mask unchanged."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        raise ValueError("cannot degrade an empty mask")
    if target_dice >= 1.0:
        return m.copy(), 1.0
    spacing = tuple(float(s) for s in spacing)
    inside = ndimage.distance_transform_edt(m, sampling=spacing)
    outside = ndimage.distance_transform_edt(~m, sampling=spacing)
    sdist = np.where(m, inside, -outside)
    sigma = [correlation_mm / s for s in spacing]
    field = ndimage.gaussian_filter(rng.standard_normal(m.shape), sigma=sigma, mode="reflect")
    field = (field - field.mean()) / (field.std() + 1e-12)
    field = field + rng.uniform(*bias_range)

    def make(a: float) -> tuple[np.ndarray, float]:
        out = sdist + a * field > 0
        if not out.any():
            return out, 0.0
        out = _largest_component(out)
        return out, dice(out, m)

    lo, hi = 0.0, 1.0
    best, best_d = m.copy(), 1.0
    # grow the upper bound until the DSC falls below the target
    for _ in range(30):
        cand, d = make(hi)
        if d <= target_dice:
            break
        best, best_d = cand, d
        lo, hi = hi, hi * 2
    for _ in range(max_iter):
        mid = (lo + hi) / 2
        cand, d = make(mid)
        if abs(d - target_dice) < abs(best_d - target_dice):
            best, best_d = cand, d
        if abs(d - target_dice) <= tol:
            break
        if d > target_dice:
            lo = mid
        else:
            hi = mid
    return best, float(best_d)


#: Version of the degradation algorithm, part of every cached mask's key (bump it when the algorithm changes).
DEGRADE_VERSION = 1


def mask_content_hash(img) -> str:
    """sha256 of a mask's content: its voxels (as booleans) and its geometry (size, spacing, origin, direction).

    ``img``: a SimpleITK image. Two files with the same tumour hash alike whatever their compression."""
    import hashlib

    import SimpleITK as sitk

    h = hashlib.sha256()
    h.update(np.ascontiguousarray(sitk.GetArrayFromImage(img) > 0).tobytes())
    h.update(repr((img.GetSize(), img.GetSpacing(), img.GetOrigin(), img.GetDirection())).encode())
    return h.hexdigest()


def degraded_mask_key(source_hash: str, target_dice: float, seed: int) -> str:
    """The cache key of a degraded mask: the source mask's content, the target DSC, the seed, the algorithm.

    A degraded mask depends on nothing else, so a mask rendered for another effect size, cohort size or
    profile (another tumour shape) can never be mistaken for this one."""
    from .io import stable_hash

    return stable_hash(
        {
            "source": source_hash,
            "target_dice": round(float(target_dice), 12),
            "seed": int(seed),
            "version": DEGRADE_VERSION,
        }
    )[:24]


def degrade_mask_file(
    mask_path: str | os.PathLike, out_dir: str | os.PathLike, target_dice: float, seed: int, case_id: str | None = None
) -> tuple[Path, float]:
    """Read a mask (NIfTI), degrade it to ``target_dice`` and write it with the same geometry.

    The file goes to ``out_dir/<case>_<key>.nii.gz``, ``key`` = :func:`degraded_mask_key` of the source
    mask's content hash, the target and the seed; an existing file with that key is reused (its DSC is
    recomputed against the source). Returns ``(path, achieved DSC)``."""
    import SimpleITK as sitk

    from .io import atomic_write_bytes

    ref_img = sitk.ReadImage(str(mask_path))
    ref = sitk.GetArrayFromImage(ref_img) > 0  # (z, y, x)
    name = case_id if case_id is not None else Path(str(mask_path)).name.split(".")[0]
    out_path = Path(out_dir) / f"{name}_{degraded_mask_key(mask_content_hash(ref_img), target_dice, seed)}.nii.gz"
    if out_path.exists():
        return out_path, dice(sitk.GetArrayFromImage(sitk.ReadImage(str(out_path))) > 0, ref)
    spacing_zyx = tuple(reversed(ref_img.GetSpacing()))
    new, d = degrade_mask(ref, target_dice, np.random.default_rng(seed), spacing=spacing_zyx)
    img = sitk.GetImageFromArray(new.astype(np.uint8))
    img.CopyInformation(ref_img)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp.nii.gz")
    sitk.WriteImage(img, str(tmp), True)
    atomic_write_bytes(out_path, tmp.read_bytes())
    tmp.unlink()
    return out_path, d


def assign_grades(ids: Iterable[str], counts: Mapping[str, int], seed: int) -> pd.Series:
    """Give each id a grade, in the proportions of ``counts`` (e.g. {"excellent": 296, "sufficient": 133}),
    by a seeded shuffle: exact proportions up to rounding."""
    ids = list(ids)
    names = list(counts)
    w = np.array([counts[k] for k in names], dtype=float)
    n = np.floor(w / w.sum() * len(ids)).astype(int)
    n[np.argmax(w)] += len(ids) - n.sum()
    labels = np.repeat(names, n)
    np.random.default_rng(seed).shuffle(labels)
    return pd.Series(labels, index=pd.Index(ids, name="patient_id"), name="grade")


def degrade_cases(
    cases,
    grades: pd.Series,
    dice_ranges: Mapping[str, tuple[float, float]],
    out_dir,
    seed: int = 0,
    n_jobs: int = 1,
    tol: float = 0.005,
):
    """Degraded copies of the cases' masks, each to a DSC drawn uniformly from its grade's range.

    ``cases``: :class:`replicate.data.cohort.Case` list; ``grades``: case id -> grade (a key of
    ``dice_ranges``). Targets are drawn from ``[lo + tol, hi - tol]`` (the bisection stops within ``tol``
    of its target), and every achieved DSC must lie in its grade's ``[lo, hi]``: a case that misses
    raises ``ValueError`` naming it. Files are cached by the source mask's content, the target and the
    seed (:func:`degrade_mask_file`). Returns ``(new_cases, table)`` with ``table`` = case id, grade,
    target and achieved DSC."""
    from dataclasses import replace

    from joblib import Parallel, delayed

    jobs, rows = [], []
    for k, c in enumerate(cases):
        g = grades.loc[str(c.case_id)]
        lo, hi = dice_ranges[g]
        if not 0 < lo + tol < hi - tol <= 1:
            raise ValueError(f"grade {g!r}: Dice range {lo}-{hi} is too narrow for the tolerance {tol}")
        rs = np.random.default_rng([seed, k])
        target = float(rs.uniform(lo + tol, hi - tol))
        jobs.append((c, target, int(rs.integers(2**31 - 1))))
        rows.append({"case_id": str(c.case_id), "grade": g, "target_dice": target})
    done = Parallel(n_jobs=n_jobs)(
        delayed(degrade_mask_file)(c.mask, out_dir, t, s, case_id=str(c.case_id)) for c, t, s in jobs
    )
    table = pd.DataFrame(rows)
    table["dice"] = [d for _, d in done]
    for r in table.itertuples():
        lo, hi = dice_ranges[r.grade]
        if not lo <= r.dice <= hi:
            raise ValueError(
                f"case {r.case_id}: the degraded mask reached Dice {r.dice:.4f}, outside the "
                f"{r.grade!r} range [{lo}, {hi}] (target {r.target_dice:.4f})"
            )
    new_cases = [replace(c, mask=path) for (c, _, _), (path, _) in zip(jobs, done)]
    return new_cases, table.set_index("case_id")
