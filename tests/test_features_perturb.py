"""Mask perturbations: geometry kept, erosion/dilation in mm, seeded contour jitter, cached files, ICC pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from replicate.data.cohort import Case
from replicate.features import PerturbationError, extract_radiomics, icc, perturb_mask, perturbed_cases

SPACING = (0.8, 0.8, 2.0)


def _mask_image(shape=(12, 32, 32), r=(4, 9, 10), spacing=SPACING, origin=(1.0, -2.0, 3.0)):
    z, y, x = np.indices(shape)
    c = [(s - 1) / 2 for s in shape]
    m = (((z - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((x - c[2]) / r[2]) ** 2 <= 1).astype(np.uint8)
    img = sitk.GetImageFromArray(m)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    return img


def _arr(img):
    return sitk.GetArrayFromImage(img).astype(bool)


def _dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_erode_dilate_keep_geometry_and_change_volume():
    m = _mask_image()
    base = _arr(m)
    ero = perturb_mask(m, "erode", seed=0, radius_mm=0.8)
    dil = perturb_mask(m, "dilate", seed=0, radius_mm=0.8)
    for out in (ero, dil):
        assert out.GetSize() == m.GetSize()
        assert out.GetSpacing() == m.GetSpacing() and out.GetOrigin() == m.GetOrigin()
        assert out.GetDirection() == m.GetDirection()
        assert set(np.unique(sitk.GetArrayViewFromImage(out))) <= {0, 1}
    e, d = _arr(ero), _arr(dil)
    assert (e <= base).all() and (base <= d).all()  # erosion inside, dilation outside
    assert e.sum() < base.sum() < d.sum()
    # radius 0.8 mm = one in-plane voxel, less than a slice (2 mm): only in-plane neighbours change
    assert (e[base] == 0).sum() > 0
    assert _arr(perturb_mask(m, "dilate", seed=0, radius_mm=2.0)).sum() > d.sum()


def test_default_radius_is_one_finest_voxel():
    m = _mask_image()
    np.testing.assert_array_equal(
        _arr(perturb_mask(m, "erode", seed=0)), _arr(perturb_mask(m, "erode", seed=0, radius_mm=0.8))
    )


def test_erosion_to_empty_is_refused():
    thin = np.zeros((5, 20, 20), np.uint8)
    thin[2, 5:15, 10] = 1  # one voxel wide
    img = sitk.GetImageFromArray(thin)
    with pytest.raises(PerturbationError, match="leaves the mask empty"):
        perturb_mask(img, "erode", seed=0, radius_mm=1.0)
    with pytest.raises(PerturbationError, match="no voxel"):
        perturb_mask(sitk.GetImageFromArray(np.zeros((5, 20, 20), np.uint8)), "dilate", seed=0)
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb_mask(img, "shrink", seed=0)


def test_jitter_is_seeded_smooth_and_close_to_the_original():
    m = _mask_image()
    base = _arr(m)
    a = _arr(perturb_mask(m, "jitter", seed=1, radius_mm=0.8))
    b = _arr(perturb_mask(m, "jitter", seed=1, radius_mm=0.8))
    c = _arr(perturb_mask(m, "jitter", seed=2, radius_mm=0.8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, base)
    assert _dice(a, base) > 0.85
    assert (a & ~base).any() and (base & ~a).any()  # moved out in places, in in others


def test_2d_png_masks(tmp_path):
    y, x = np.indices((40, 50))
    mask = ((((y - 20) / 10) ** 2 + ((x - 25) / 14) ** 2) <= 1).astype(np.uint8) * 255
    img = sitk.GetImageFromArray(mask)
    out = perturb_mask(img, "dilate", seed=0)
    assert out.GetDimension() == 2 and _arr(out).sum() > (mask > 0).sum()


def _write_case(root, cid, seed):
    rng = np.random.default_rng(seed)
    m = _mask_image(r=(4, 8 + seed % 3, 9))
    arr = (rng.normal(100, 20, m.GetSize()[::-1]) + 40 * sitk.GetArrayFromImage(m)).astype(np.int16)
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(m)
    d = root / cid
    d.mkdir(parents=True)
    sitk.WriteImage(img, str(d / "image.nii.gz"))
    sitk.WriteImage(m, str(d / "mask.nii.gz"))
    return Case(cid, d / "image.nii.gz", d / "mask.nii.gz", "T1")


def test_perturbed_cases_are_cached_files_and_feed_the_extractor(tmp_path):
    cases = [_write_case(tmp_path / "data", f"P{i}", i) for i in range(4)]
    thin = np.zeros((12, 32, 32), np.uint8)
    thin[6, 10:20, 16] = 1
    t = sitk.GetImageFromArray(thin)
    t.CopyInformation(_mask_image())
    sitk.WriteImage(t, str(cases[3].mask))  # cannot be eroded
    out = tmp_path / "perturbed"
    with pytest.warns(UserWarning, match="perturbation"):
        pert = perturbed_cases(cases, seed=0, out_dir=out)
    assert set(pert) == {"erode", "dilate", "jitter"}
    assert [c.case_id for c in pert["erode"]] == ["P0", "P1", "P2"]
    assert [c.case_id for c in pert["dilate"]] == ["P0", "P1", "P2", "P3"]
    assert list(pert.failures["case_id"]) == ["P3"] and pert.failures["kind"].iloc[0] == "erode"
    assert "PerturbationError" in pert.failures["reason"].iloc[0]
    for kind, cs in pert.items():
        for c, orig in zip(cs, cases):
            assert c.image == orig.image and c.mask.parent == out / kind and c.mask.exists()
    files = sorted(out.rglob("*.nii.gz"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert not list(out.rglob("*.tmp*"))
    with pytest.warns(UserWarning):
        again = perturbed_cases(cases, seed=0, out_dir=out)
    assert [f.stat().st_mtime_ns for f in sorted(out.rglob("*.nii.gz"))] == mtimes  # reused, not rewritten
    assert [c.mask for c in again["jitter"]] == [c.mask for c in pert["jitter"]]
    other_seed = perturbed_cases(cases[:1], kinds=("jitter",), seed=1, out_dir=out)
    assert other_seed["jitter"][0].mask != pert["jitter"][0].mask

    params = {"featureClass": {"firstorder": None, "glcm": None}}
    ref = extract_radiomics(cases[:3], params, cache_dir=tmp_path / "cache", progress=False)
    tabs = [
        extract_radiomics(
            [c for c in pert[k] if c.case_id != "P3"], params, cache_dir=tmp_path / "cache", progress=False
        ).features
        for k in ("erode", "dilate", "jitter")
    ]
    assert all(list(t.index) == ["P0", "P1", "P2"] for t in tabs)
    values = icc(ref.features, tabs)
    assert values.index.equals(ref.features.columns)
