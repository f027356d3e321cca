"""Tumour size from a segmentation mask: the maximum 3-D diameter (greatest dimension), in mm.

Staging systems (AJCC 8th edition for soft-tissue sarcoma: T1 <= 5 cm, ..., and
the "> 10 cm" cut-off of retroperitoneal sarcoma papers) use the tumour's greatest
dimension. Measured on a mask it is the largest distance between two points of the
tumour surface. As in PyRadiomics' ``shape`` feature ``Maximum3DDiameter``
(van Griethuysen et al. 2017, Cancer Res 77:e104), the surface is the marching-cubes
surface of the binary mask at level 0.5: its vertices lie half-way between every
inside voxel centre and each of its outside face neighbours (the mask is zero-padded,
so a tumour touching the volume border is closed there). The diameter is the largest
pairwise distance among those vertices in physical space (voxel spacing applied),
found on their convex hull.

:func:`max_3d_diameter` measures one mask (SimpleITK image, NIfTI path or a numpy
array with a spacing); :func:`max_3d_diameters` measures many (e.g. a cohort's
``mask_CT`` column), naming the case in any error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["surface_points", "max_3d_diameter", "max_3d_diameters"]


def _as_array(mask, spacing, label: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(boolean array in x, y, z order, spacing x, y, z in mm)."""
    if isinstance(mask, (str, os.PathLike)):
        import SimpleITK as sitk

        mask = sitk.ReadImage(str(mask))
    if hasattr(mask, "GetSpacing") and hasattr(mask, "GetSize"):
        import SimpleITK as sitk

        sp = np.asarray(mask.GetSpacing(), dtype=float) if spacing is None else np.asarray(spacing, dtype=float)
        arr = np.transpose(sitk.GetArrayFromImage(mask))  # SimpleITK arrays are z, y, x
    else:
        arr = np.asarray(mask)
        if spacing is None:
            raise ValueError("a numpy mask needs its voxel spacing (mm per axis, same axis order as the array)")
        sp = np.asarray(spacing, dtype=float)
    if arr.ndim == 2:
        arr = arr[:, :, None]
        sp = np.append(sp, 1.0) if sp.size == 2 else sp
    if arr.ndim != 3:
        raise ValueError(f"mask must be 2-D or 3-D, got {arr.ndim}-D")
    if sp.shape != (3,) or not np.all(sp > 0):
        raise ValueError(f"spacing must be 3 positive numbers, got {sp.tolist()}")
    inside = (arr == label) if label is not None else (arr != 0)
    return inside, sp


def surface_points(mask, spacing=None, label: int | None = 1) -> np.ndarray:
    """Marching-cubes vertices of the binary mask (``n x 3``, mm, axis order of ``spacing``)."""
    inside, sp = _as_array(mask, spacing, label)
    if not inside.any():
        raise ValueError("the mask is empty (no voxel with the label)")
    pad = np.pad(inside, 1)
    pts = []
    for axis in range(3):
        # a boundary between voxels i and i + 1 along this axis: one inside, the other outside
        idx = np.argwhere(np.diff(pad.astype(np.int8), axis=axis) != 0).astype(float)
        idx[:, axis] += 0.5  # the vertex lies half-way between the two voxel centres
        pts.append(idx)
    p = np.vstack(pts) - 1.0  # back to unpadded voxel indices
    return p * sp


def max_3d_diameter(mask, spacing=None, label: int | None = 1) -> float:
    """Greatest distance (mm) between two points of the tumour surface (PyRadiomics' Maximum3DDiameter).

    ``mask``: SimpleITK image, path to an image file, or numpy array (then ``spacing`` is required, in
    the array's axis order). ``label``: the tumour's label (``None``: any non-zero voxel).
    """
    from scipy.spatial import ConvexHull
    from scipy.spatial.distance import pdist

    p = np.unique(surface_points(mask, spacing, label), axis=0)
    if len(p) > 4:
        try:
            p = p[ConvexHull(p).vertices]
        except Exception:  # degenerate hull: fall back to every point
            pass
    return float(pdist(p).max()) if len(p) > 1 else 0.0


def max_3d_diameters(masks: Mapping[str, object] | pd.Series, label: int | None = 1) -> pd.Series:
    """:func:`max_3d_diameter` of every case (``{case id: mask path or image}``), as a Series in mm.

    A mask that cannot be read or is empty raises ``ValueError`` naming the case.
    """
    items = masks.items() if isinstance(masks, (Mapping, pd.Series)) else dict(masks).items()
    out = {}
    for cid, m in items:
        try:
            out[cid] = max_3d_diameter(m, label=label)
        except Exception as exc:  # name the case
            raise ValueError(
                f"case {cid!r}: cannot measure the tumour diameter from {m!r}: {type(exc).__name__}: {exc}"
            ) from exc
    return pd.Series(out, name="max_3d_diameter_mm", dtype=float)
