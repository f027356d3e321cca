"""replicate.tumour_size: the maximum 3-D diameter of a mask equals PyRadiomics' Maximum3DDiameter."""

import numpy as np
import pytest
import SimpleITK as sitk

from replicate.tumour_size import max_3d_diameter, max_3d_diameters, surface_points


def _blob(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:18, :26, :28]
    r = rng.uniform(3, 11, size=3)
    m = ((x - 14) / r[0]) ** 2 + ((y - 13) / r[1]) ** 2 + ((z - 9) / max(r[2] / 2, 1.5)) ** 2 < 1
    m &= rng.random(m.shape) > 0.05  # holes: a rough surface
    m[9, 13, 14] = True
    return m.astype(np.uint8)


def _image(arr: np.ndarray, spacing) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    return img


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_pyradiomics_maximum3ddiameter(seed):
    from radiomics import shape

    m = _blob(seed)
    spacing = (0.8, 0.9, 3.0)
    msk = _image(m, spacing)
    img = _image(np.random.default_rng(seed).random(m.shape).astype(np.float32), spacing)
    f = shape.RadiomicsShape(img, msk)
    f.enableFeatureByName("Maximum3DDiameter")
    ref = float(f.execute()["Maximum3DDiameter"])
    assert max_3d_diameter(msk) == pytest.approx(ref, rel=1e-9)


def test_numpy_input_needs_spacing_and_follows_axis_order():
    m = np.zeros((5, 5, 5), dtype=np.uint8)
    m[2, 2, 2] = 1  # one voxel: opposite face centres are one voxel length apart
    assert max_3d_diameter(m, spacing=(1.0, 2.0, 3.0)) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="spacing"):
        max_3d_diameter(m)
    bar = np.zeros((12, 3, 3), dtype=np.uint8)
    bar[1:11, 1, 1] = 1  # 10 voxels along axis 0 at 2 mm
    d = max_3d_diameter(bar, spacing=(2.0, 1.0, 1.0))
    assert 19.0 < d <= np.hypot(20.0, 1.0) + 1e-9
    assert surface_points(bar, spacing=(2.0, 1.0, 1.0)).shape[1] == 3


def test_label_and_empty_mask():
    m = np.zeros((6, 6, 6), dtype=np.uint8)
    m[1:3, 1:3, 1:3] = 2
    with pytest.raises(ValueError, match="empty"):
        max_3d_diameter(m, spacing=(1, 1, 1), label=1)
    assert max_3d_diameter(m, spacing=(1, 1, 1), label=2) > 0
    assert max_3d_diameter(m, spacing=(1, 1, 1), label=None) == max_3d_diameter(m, spacing=(1, 1, 1), label=2)


def test_many_cases_from_files_and_errors_name_the_case(tmp_path):
    m = _blob(3)
    p = tmp_path / "a_mask.nii.gz"
    sitk.WriteImage(_image(m, (1.0, 1.0, 2.0)), str(p))
    s = max_3d_diameters({"A": str(p)})
    assert s.name == "max_3d_diameter_mm" and s["A"] == pytest.approx(max_3d_diameter(str(p)))
    with pytest.raises(ValueError, match="'B'"):
        max_3d_diameters({"A": str(p), "B": str(tmp_path / "missing.nii.gz")})
