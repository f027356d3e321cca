"""Mask perturbations for feature robustness (a stand-in for a second reader's segmentation).

    pert = perturbed_cases(cohort.cases("T1"), kinds=("erode", "dilate", "jitter"), seed=0,
                           out_dir=cache / "perturbed")
    tables = {k: extract_radiomics(v, "sts") for k, v in pert.items()}
    reliability = icc(reference.features, [t.features for t in tables.values()])

Kinds (all in physical units, geometry of the mask kept; the result holds 0/1):

* ``erode``: keep the voxels farther than ``radius_mm`` from the background
  (Euclidean distance with the voxel spacing: a ball structuring element in mm).
  A mask that would vanish is refused (``PerturbationError``), never returned empty.
* ``dilate``: add the background voxels within ``radius_mm`` of the mask.
* ``jitter``: random contour jitter. The boundary moves along its normal by a
  smooth random displacement d(x): white noise (seeded) smoothed with a Gaussian of
  ``smooth_mm`` (default 4 x radius) and scaled so that its standard deviation is
  ``radius_mm``; the new mask is {x : signed_distance(x) < d(x)} (inside negative),
  so the boundary moves out where d > 0 and in where d < 0.

``radius_mm=None`` means one voxel of the finest spacing (e.g. 0.98 mm in plane for
the ibsi_sts T1 series; 1 pixel for PNG, whose spacing is 1).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.cohort import Case
from ..io import sha256_file, stable_hash

KINDS = ("erode", "dilate", "jitter")
PERTURB_VERSION = 1


class PerturbationError(ValueError):
    """A perturbation that cannot be applied to this mask (e.g. erosion to nothing)."""


class PerturbedCases(dict):
    """``dict[kind -> list[Case]]`` with ``failures`` (case_id, kind, reason) for masks that could not be perturbed."""

    failures: pd.DataFrame

    def __init__(self, *a, failures: pd.DataFrame | None = None, **kw):
        super().__init__(*a, **kw)
        self.failures = failures if failures is not None else pd.DataFrame(columns=["case_id", "kind", "reason"])


def _edt(binary: np.ndarray, spacing_zyx) -> np.ndarray:
    from scipy import ndimage

    return ndimage.distance_transform_edt(binary, sampling=spacing_zyx)


def _signed_distance(m: np.ndarray, spacing_zyx) -> np.ndarray:
    """Signed Euclidean distance (mm) to the boundary: negative inside, positive outside."""
    inside = _edt(m, spacing_zyx)
    outside = _edt(~m, spacing_zyx)
    return np.where(m, -inside, outside)


def perturb_mask(
    mask_image,
    kind: str,
    *,
    seed: int | Sequence[int] | None = 0,
    radius_mm: float | None = None,
    label: int = 1,
    smooth_mm: float | None = None,
):
    """Perturbed copy of a SimpleITK mask (same size, spacing, origin, direction; values 0/1, UInt8).

    ``kind`` is ``"erode"``, ``"dilate"`` or ``"jitter"`` (see the module doc). ``seed`` fixes the
    jitter field (erode/dilate are deterministic). Raises ``PerturbationError`` when the result
    would be empty or the input mask has no voxel with ``label``.
    """
    import SimpleITK as sitk

    if kind not in KINDS:
        raise ValueError(f"unknown perturbation {kind!r}; expected one of {KINDS}")
    arr = sitk.GetArrayViewFromImage(mask_image)
    m = (
        np.asarray(arr == label)
        if not (label == 1 and set(np.unique(arr).tolist()) == {0, 255})
        else np.asarray(arr == 255)
    )
    n = int(m.sum())
    if n == 0:
        raise PerturbationError(f"mask has no voxel with label {label}: nothing to perturb")
    spacing = np.array(mask_image.GetSpacing(), dtype=float)[::-1]  # numpy (z, y, x) order
    r = float(np.min(spacing) if radius_mm is None else radius_mm)
    if r <= 0:
        raise ValueError("radius_mm must be positive")
    eps = 1e-6 * r
    if kind == "erode":
        out = _edt(m, spacing) > r + eps
        if not out.any():
            raise PerturbationError(
                f"eroding by {r:g} mm leaves the mask empty (mask has {n} voxel(s), "
                f"thinner than {2 * r:g} mm everywhere); refusing to return an empty mask"
            )
    elif kind == "dilate":
        out = m | (_edt(~m, spacing) <= r + eps)
    else:
        from scipy import ndimage

        rng = np.random.default_rng(seed)
        s_mm = float(4 * r if smooth_mm is None else smooth_mm)
        # only a band around the contour matters; compute on a crop around the mask for speed
        pad = np.ceil((3 * r + 3 * s_mm) / spacing).astype(int) + 1
        nz = np.argwhere(m)
        lo = np.maximum(nz.min(0) - pad, 0)
        hi = np.minimum(nz.max(0) + pad + 1, m.shape)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi))
        mc = m[sl]
        noise = rng.standard_normal(mc.shape)
        field = ndimage.gaussian_filter(noise, sigma=s_mm / spacing, mode="reflect")
        sd = field.std()
        field = field / sd * r if sd > 0 else np.zeros_like(field)
        sdist = _signed_distance(mc, spacing)
        # move the contour, not the whole mask: the displacement acts within a band of 3 r of the boundary
        new = sdist < np.clip(field, -3 * r, 3 * r)
        out = np.zeros_like(m)
        out[sl] = new
        if not out.any():
            raise PerturbationError(f"contour jitter of {r:g} mm left the mask empty (mask has {n} voxel(s))")
    img = sitk.GetImageFromArray(out.astype(np.uint8))
    img.CopyInformation(mask_image)
    return img


def _mask_suffix(path: Path) -> str:
    name = path.name.lower()
    for suf in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png", ".tif", ".tiff", ".bmp"):
        if name.endswith(suf):
            return ".nii.gz" if suf in (".nii", ".mhd") else suf
    return ".nii.gz"


def _atomic_write_image(img, path: Path) -> None:
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = _mask_suffix(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    try:
        sitk.WriteImage(img, tmp, useCompression=suffix == ".nii.gz")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _case_seed(seed: int, case_id: str, kind: str) -> list[int]:
    h = int(stable_hash([str(case_id), kind])[:8], 16)
    return [int(seed), h]


def perturbed_cases(
    cases: Iterable[Case],
    kinds: Sequence[str] = KINDS,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    *,
    radius_mm: float | None = None,
    label: int = 1,
    smooth_mm: float | None = None,
    progress: bool = False,
) -> PerturbedCases:
    """Perturbed masks of every case, written as files, as ``{kind: [Case(same id, same image, new mask)]}``.

    Files go to ``out_dir/<kind>/<case_id>_<hash>.<ext>`` (default: the feature cache's
    ``perturbed`` folder), the hash covering (mask sha256, kind, seed, radius, smoothing,
    label, version): an existing file is reused, a new one is written atomically. The
    image file is the original one, so ``extract_radiomics`` (and its cache) handles
    the perturbed cases like any others. A case that cannot be perturbed (unreadable
    mask, erosion to nothing) is left out of that kind's list and listed in ``.failures``.
    Reports a ``replicate.progress`` stage (``perturb masks (<kinds>)``) with a case counter;
    under ``make book FROM=images`` files older than the build are made again.
    """
    from .. import progress as prog
    from ..config import feature_cache_dir

    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown perturbation {k!r}; expected one of {KINDS}")
    out_root = Path(out_dir) if out_dir is not None else feature_cache_dir() / "perturbed"
    cases = list(cases)
    result = PerturbedCases({k: [] for k in kinds})
    fails: list[tuple[str, str, str]] = []
    with prog.stage(f"perturb masks ({', '.join(kinds)})", total=len(cases), unit="case"):
        made = _perturb_all(cases, kinds, seed, out_root, radius_mm, label, smooth_mm, progress, result, fails)
        prog.set_result(n_cases=len(cases), n_made=made)
    result.failures = pd.DataFrame(fails, columns=["case_id", "kind", "reason"])
    if fails:
        import warnings

        warnings.warn(f"{len(fails)} perturbation(s) failed; see .failures (first: {fails[0][2]})", stacklevel=2)
    return result


def _perturb_all(cases, kinds, seed, out_root, radius_mm, label, smooth_mm, progress, result, fails) -> int:
    """The loop of :func:`perturbed_cases`; returns how many mask files it wrote."""
    import SimpleITK as sitk
    from tqdm.auto import tqdm

    from .. import progress as prog
    from .release import is_fresh

    made = 0
    for i, c in enumerate(tqdm(cases, desc="perturb masks", unit="case", disable=not progress), 1):
        prog.tick(i)
        cid = str(c.case_id)
        try:
            msha = sha256_file(c.mask)
        except OSError as e:
            for k in kinds:
                fails.append((cid, k, f"ReadError: case {cid}: cannot read mask file {c.mask}: {e.strerror or e}"))
            continue
        mask_img = None
        for k in kinds:
            tag = stable_hash(
                [msha, k, int(seed), radius_mm, smooth_mm if k == "jitter" else None, int(label), PERTURB_VERSION]
            )[:16]
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in cid)
            path = out_root / k / f"{safe}_{tag}{_mask_suffix(Path(c.mask))}"
            if not path.exists() or not is_fresh(path):
                try:
                    if mask_img is None:
                        mask_img = sitk.ReadImage(str(c.mask))
                        if mask_img.GetNumberOfComponentsPerPixel() > 1:
                            mask_img = sitk.VectorIndexSelectionCast(mask_img, 0)
                    out = perturb_mask(
                        mask_img,
                        k,
                        seed=_case_seed(seed, cid, k),
                        radius_mm=radius_mm,
                        label=label,
                        smooth_mm=smooth_mm,
                    )
                except PerturbationError as e:
                    fails.append((cid, k, f"PerturbationError: case {cid}: {e}"))
                    continue
                except RuntimeError as e:
                    fails.append(
                        (
                            cid,
                            k,
                            f"ReadError: case {cid}: cannot read mask file {c.mask}: "
                            f"{str(e).strip().splitlines()[-1][:300] if str(e).strip() else e}",
                        )
                    )
                    continue
                _atomic_write_image(out, path)
                made += 1
            result[k].append(Case(cid, Path(c.image), path, c.modality))
    return made
