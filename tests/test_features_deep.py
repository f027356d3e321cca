"""extract_deep: shapes, weights label (never a download), determinism, cache, slices, layers, Grad-CAM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from replicate.data.cohort import Case
from replicate.features import build_backbone, extract_deep, gradcam, tumour_crops
from replicate.features import deep as deep_mod

UNTRAINED = "untrained (ImageNet weights not available)"


@pytest.fixture(autouse=True)
def no_weights_no_network(tmp_path, monkeypatch):
    """An empty torch hub / HF cache, and every download function made to fail loudly."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import torch

    def forbidden(*a, **k):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", forbidden)
    monkeypatch.setattr(torch.hub, "download_url_to_file", forbidden)
    try:
        import huggingface_hub

        monkeypatch.setattr(huggingface_hub, "hf_hub_download", forbidden)
    except ImportError:
        pass
    deep_mod._MODEL_MEMO.clear()
    yield
    deep_mod._MODEL_MEMO.clear()


def _case3d(root, cid, seed):
    rng = np.random.default_rng(seed)
    shape = (9, 40, 44)
    z, y, x = np.indices(shape)
    r = 8 + seed
    m = ((((y - 20) / r) ** 2 + ((x - 22) / (r + 3)) ** 2 + ((z - 4) / 3.5) ** 2) <= 1).astype(np.uint8)
    img = (rng.normal(100, 20, shape) + 60 * m + 2 * x).astype(np.int16)
    d = root / cid
    d.mkdir(parents=True)
    for arr, name in ((img, "image.nii.gz"), (m, "mask.nii.gz")):
        im = sitk.GetImageFromArray(arr)
        im.SetSpacing((0.7, 0.7, 3.0))
        sitk.WriteImage(im, str(d / name))
    return Case(cid, d / "image.nii.gz", d / "mask.nii.gz", "T1")


def _case2d(root, cid):
    rng = np.random.default_rng(5)
    y, x = np.indices((60, 80))
    m = ((y - 30) / 12) ** 2 + ((x - 40) / 20) ** 2 <= 1
    img = np.clip(rng.normal(80, 15, (60, 80)) + 70 * m, 0, 255).astype(np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(img), str(root / f"{cid}.png"))
    sitk.WriteImage(sitk.GetImageFromArray(m.astype(np.uint8) * 255), str(root / f"{cid}_mask.png"))
    return Case(cid, root / f"{cid}.png", root / f"{cid}_mask.png", "US")


@pytest.fixture
def cases(tmp_path):
    return [_case3d(tmp_path / "data", "A", 0), _case2d(tmp_path / "data", "B")]


def test_resnet18_shape_label_warning_and_determinism(cases, tmp_path):
    with pytest.warns(UserWarning, match="UNTRAINED resnet18"):
        t1 = extract_deep(cases, "resnet18", size=64, cache_dir=False, progress=False)
    assert t1.features.shape == (2, 512)
    assert list(t1.features.index) == ["A", "B"] and t1.failures.empty
    assert t1.info["weights"] == UNTRAINED
    assert t1.features.columns[0] == "resnet18_penultimate_0"
    assert np.isfinite(t1.features.to_numpy()).all()
    deep_mod._MODEL_MEMO.clear()  # rebuild the network: the seed makes it the same
    with pytest.warns(UserWarning):
        t2 = extract_deep(cases, "resnet18", size=64, cache_dir=False, progress=False)
    pd.testing.assert_frame_equal(t1.features, t2.features, check_exact=True)
    with pytest.warns(UserWarning):
        t3 = extract_deep(cases, "resnet18", size=64, cache_dir=False, progress=False, seed=1)
    assert not np.allclose(t1.features.to_numpy(), t3.features.to_numpy())


def test_cache_reuses_vectors(cases, tmp_path, monkeypatch):
    with pytest.warns(UserWarning):
        first = extract_deep(cases, "resnet18", size=64, cache_dir=tmp_path / "cache", progress=False)
    assert first.info["n_extracted"] == 2 and first.info["n_cached"] == 0
    monkeypatch.setattr(deep_mod, "tumour_crops", lambda *a, **k: pytest.fail("cache miss"))
    with pytest.warns(UserWarning):
        second = extract_deep(cases, "resnet18", size=64, cache_dir=tmp_path / "cache", progress=False)
    assert second.info["n_cached"] == 2
    pd.testing.assert_frame_equal(first.features, second.features, check_exact=True)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2


def test_imagenet_required_but_absent_raises(cases):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        extract_deep(cases, "resnet18", weights="imagenet", size=64, cache_dir=False, progress=False)


def test_local_weights_file_is_found_and_labelled_imagenet(cases, tmp_path):
    import torch
    import torchvision

    # a stand-in checkpoint under torchvision's file name in $TORCH_HOME/hub/checkpoints
    torch.manual_seed(123)
    ref = torchvision.models.resnet18()
    ckpt = tmp_path / "torch_home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), ckpt)
    t = extract_deep(cases, "resnet18", size=64, cache_dir=False, progress=False)
    assert t.info["weights"] == "imagenet" and t.info["weights_file"] == str(ckpt)
    model, meta = build_backbone("resnet18")
    assert meta["weights"] == "imagenet"
    assert torch.equal(model.conv1.weight, ref.conv1.weight)
    deep_mod._MODEL_MEMO.clear()
    by_path = extract_deep(cases, "resnet18", size=64, cache_dir=False, progress=False, weights=ckpt)
    pd.testing.assert_frame_equal(t.features, by_path.features, check_exact=True)


def test_layers_and_slices(cases):
    with pytest.warns(UserWarning):
        l2 = extract_deep(cases[:1], "resnet18", layer="layer2", size=64, cache_dir=False, progress=False)
        lc = extract_deep(cases[:1], "resnet18", layer="last_conv", size=64, cache_dir=False, progress=False)
        pen = extract_deep(cases[:1], "resnet18", layer="penultimate", size=64, cache_dir=False, progress=False)
        three = extract_deep(cases, "resnet18", slices="three_max", size=64, cache_dir=False, progress=False)
        allm = extract_deep(cases, "resnet18", slices="all_mean", size=64, cache_dir=False, progress=False)
    assert l2.features.shape == (1, 128) and l2.info["module"] == "layer2"
    np.testing.assert_allclose(lc.features.to_numpy(), pen.features.to_numpy(), rtol=1e-5, atol=1e-6)
    assert three.info["slices"]["A"] == [3, 4, 5] and three.info["slices"]["B"] == [0]
    assert allm.info["slices"]["A"] == list(range(1, 8))
    assert not np.allclose(three.features.loc["A"], pen.features.loc["A"])
    with pytest.raises(ValueError, match="not found"):
        extract_deep(cases, "resnet18", layer="layer9", size=64, cache_dir=False, progress=False)
    with pytest.raises(ValueError, match="unknown backbone"):
        extract_deep(cases, "alexnet", size=64, cache_dir=False, progress=False)


def test_single_channel_first_layer(cases):
    import torch

    m3, _ = build_backbone("resnet18", seed=0)
    m1, meta = build_backbone("resnet18", seed=0, in_channels=1)
    assert m1.conv1.in_channels == 1 and len(meta["mean"]) == 1
    assert torch.allclose(m1.conv1.weight, m3.conv1.weight.sum(1, keepdim=True))
    with pytest.warns(UserWarning):
        t = extract_deep(cases, "resnet18", in_channels=1, size=64, cache_dir=False, progress=False)
    assert t.features.shape == (2, 512)


def test_bad_input_is_a_failure_not_a_crash(cases, tmp_path):
    empty = tmp_path / "empty_mask.nii.gz"
    m = sitk.ReadImage(str(cases[0].mask)) * 0
    sitk.WriteImage(m, str(empty))
    bad = cases + [Case("C", cases[0].image, empty), Case("D", tmp_path / "nope.nii.gz", empty)]
    with pytest.warns(UserWarning):
        t = extract_deep(bad, "resnet18", size=64, cache_dir=False, progress=False)
    assert list(t.features.index) == ["A", "B"]
    got = dict(zip(t.failures["case_id"], t.failures["reason"]))
    assert got["C"].startswith("EmptyMask") and "case C" in got["C"]
    assert "case D" in got["D"]


def test_crops_are_square_in_mm(cases):
    ((z, crop),) = tumour_crops(cases[0])
    assert z == 4
    assert abs(crop.shape[0] - crop.shape[1]) <= 1  # in-plane spacing is isotropic here
    # tumour x-extent 2*11+1 voxels, margin 10 % on each side
    assert crop.shape[1] == pytest.approx(23 * 1.2, abs=2)


def test_gradcam_map_has_input_size_and_is_non_negative(cases):
    ((_, crop),) = tumour_crops(cases[1])
    cam = gradcam("resnet18", crop, size=64)
    assert cam.shape == crop.shape
    assert (cam >= 0).all() and cam.max() <= 1.0 + 1e-6
    model, _ = build_backbone("resnet18")
    cam2 = gradcam(model, crop, "layer3", size=64, class_idx=3)
    assert cam2.shape == crop.shape and (cam2 >= 0).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    "backbone,layer,dim",
    [
        ("resnet34", "penultimate", 512),
        ("resnet50", "penultimate", 2048),
        ("resnet50", "layer1", 256),
        ("resnet50", "layer3", 1024),
        ("vgg16", "penultimate", 4096),
        ("vgg19", "last_conv", 512),
        ("inception_v3", "penultimate", 2048),
        ("xception", "penultimate", 2048),
        ("inception_resnet_v2", "penultimate", 1536),
    ],
)
def test_every_backbone_gives_its_documented_dimension(cases, backbone, layer, dim):
    with pytest.warns(UserWarning, match="UNTRAINED"):
        t = extract_deep(cases[1:], backbone, layer=layer, size=96, cache_dir=False, progress=False)
    assert t.features.shape == (1, dim) and t.info["weights"] == UNTRAINED
    assert np.isfinite(t.features.to_numpy()).all()
