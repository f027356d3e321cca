"""extract_deep_layers: several layers from one forward pass, batches, explicit threads, shared cache entries."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from replicate.data.cohort import Case
from replicate.features import deep as deep_mod
from replicate.features import extract_deep, extract_deep_layers

pytestmark = pytest.mark.filterwarnings("ignore:deep features come from an UNTRAINED")
KW = {"size": 48, "weights": "untrained", "progress": False, "slices": "three_max"}


@pytest.fixture
def cases(tmp_path):
    out = []
    for i in range(5):
        rng = np.random.default_rng(i)
        shape = (7, 36, 40)
        z, y, x = np.indices(shape)
        m = ((((y - 18) / (7 + i)) ** 2 + ((x - 20) / 10) ** 2 + ((z - 3) / 3) ** 2) <= 1).astype(np.uint8)
        img = (rng.normal(100, 20, shape) + 50 * m + x).astype(np.int16)
        d = tmp_path / f"c{i}"
        d.mkdir()
        for arr, name in ((img, "image.nii.gz"), (m, "mask.nii.gz")):
            sitk.WriteImage(sitk.GetImageFromArray(arr), str(d / name))
        out.append(Case(f"c{i}", d / "image.nii.gz", d / "mask.nii.gz", "T1"))
    deep_mod._MODEL_MEMO.clear()
    deep_mod._CROPS.clear()
    return out


def test_one_pass_gives_each_layer_as_a_call_of_its_own(cases):
    layers = ["last_conv", "layer1", "layer2"]
    together = extract_deep_layers(cases, "resnet18", layers=layers, cache_dir=False, **KW)
    assert list(together) == layers
    for lay in layers:
        alone = extract_deep(cases, "resnet18", layer=lay, cache_dir=False, **KW)
        np.testing.assert_array_equal(together[lay].features.to_numpy(), alone.features.to_numpy())
        assert together[lay].info["settings_hash"] == alone.info["settings_hash"]
    assert together["layer1"].n_features == 64 and together["last_conv"].n_features == 512


def test_layers_share_the_single_layer_cache(cases, tmp_path):
    cache = tmp_path / "cache"
    first = extract_deep_layers(cases, "resnet18", layers=["last_conv", "layer3"], cache_dir=cache, **KW)
    assert first["layer3"].info["n_extracted"] == 5
    again = extract_deep(cases, "resnet18", layer="layer3", cache_dir=cache, **KW)
    assert again.info["n_cached"] == 5 and again.features.equals(first["layer3"].features)
    # a pass over a cached layer and a new one computes only the new one
    mixed = extract_deep_layers(cases, "resnet18", layers=["layer3", "layer2"], cache_dir=cache, **KW)
    assert mixed["layer3"].info["n_cached"] == 5 and mixed["layer2"].info["n_extracted"] == 5


def test_batch_size_and_threads_are_set_recorded_and_restored(cases, monkeypatch):
    import torch

    before = torch.get_num_threads()
    seen = []
    real = deep_mod._LayerTap.__call__

    def spy(self, x):
        seen.append((x.shape[0], torch.get_num_threads()))
        return real(self, x)

    monkeypatch.setattr(deep_mod._LayerTap, "__call__", spy)
    monkeypatch.setenv(deep_mod.BATCH_ENV, "4")
    t = extract_deep(cases, "resnet18", cache_dir=False, threads=1, **KW)
    assert t.info["batch_size"] == 4 and t.info["torch_threads"] == 1
    n_crops = sum(len(v) for v in t.info["slices"].values())
    assert [b for b, _ in seen] == [4] * (n_crops // 4) + ([n_crops % 4] if n_crops % 4 else [])
    assert {th for _, th in seen} == {1}
    assert torch.get_num_threads() == before
    seen.clear()
    one = extract_deep(cases, "resnet18", cache_dir=False, threads=1, batch_size=1, **KW)
    assert {b for b, _ in seen} == {1}
    # one crop at a time or four: the same features (single thread)
    np.testing.assert_allclose(one.features.to_numpy(), t.features.to_numpy(), rtol=1e-5, atol=1e-6)


def test_crops_are_read_once_for_several_backbones(cases, monkeypatch):
    calls = []
    real = deep_mod.tumour_crops
    monkeypatch.setattr(deep_mod, "tumour_crops", lambda c, **kw: calls.append(c.case_id) or real(c, **kw))
    extract_deep(cases, "resnet18", cache_dir=False, **KW)
    extract_deep(cases, "resnet34", cache_dir=False, **KW)
    assert sorted(calls) == sorted(c.case_id for c in cases)


def test_unknown_layer_fails_before_any_work(cases):
    with pytest.raises(ValueError, match="not found"):
        extract_deep_layers(cases, "resnet18", layers=["last_conv", "nope"], cache_dir=False, **KW)


def test_each_layer_entry_knows_its_cost(cases, tmp_path, monkeypatch):
    """The cost logged for the feature release: a deeper layer costs more than an earlier one of the same
    pass (its own stretch of the network), and cached entries cost nothing now."""
    import json

    from replicate.features import release

    log = tmp_path / "features_used.jsonl"
    monkeypatch.setenv(release.FEATURE_LOG_ENV, str(log))
    extract_deep_layers(cases, "resnet50", layers=["layer1", "last_conv"], cache_dir=tmp_path / "c", **KW)
    extract_deep_layers(cases, "resnet50", layers=["layer1", "last_conv"], cache_dir=tmp_path / "c", **KW)
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    first = [r for r in recs[:12] if "path" in r]
    cost = {r["path"].split("/")[1]: r["seconds"] for r in first}
    by_layer = {}
    for r in recs[:12]:
        if "settings" in r:
            layer = r["settings"]["layer"]
        elif "path" in r:
            by_layer.setdefault(layer, []).append(r["seconds"])
    assert len(cost) == 2 and all(s > 0 for v in by_layer.values() for s in v)
    assert min(by_layer["last_conv"]) > max(by_layer["layer1"])
    assert all(r["seconds"] is None for r in recs[12:] if "path" in r)
