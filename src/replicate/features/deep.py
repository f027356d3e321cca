"""Deep CNN features of the tumour crop (ImageNet backbones used as fixed feature extractors).

    table = extract_deep(cohort.cases("T1"), "resnet34", layer="penultimate")
    table.info["weights"]   # exactly "imagenet" or "untrained (ImageNet weights not available)"

Backbones: torchvision ``resnet18``, ``resnet34``, ``resnet50``, ``vgg16``, ``vgg19``,
``inception_v3``; timm ``xception`` (= timm ``legacy_xception``, Chollet's original
Xception as ported from Keras; timm's ``xception41/65/71`` are the DeepLab variants)
and ``inception_resnet_v2``.

Input (per case): the image and mask are read and checked like PyRadiomics input
(``radiomics.read_case``: unreadable files, geometry mismatch, empty / one-voxel
masks, unexpected labels become failures). For 3-D images, axial slices (numpy
axis 0) through the tumour are chosen by ``slices``:

* ``"max_area"``: the slice with the largest tumour area (one crop);
* ``"three_max"``: the three largest-area slices, features averaged;
* ``"all_mean"``: every slice containing tumour, features averaged.

A 2-D image (PNG) is its own single slice. On each slice the tumour's bounding box
is enlarged to a square in millimetres (side = longest side x (1 + 2 x crop_margin)),
padded with the crop's lowest intensity where it leaves the image, resized to
``size`` x ``size`` (bilinear, anti-aliased), clipped to its 0.5-99.5 percentiles,
scaled to [0, 1] and normalised with the mean/std the backbone's ImageNet weights were
trained with (ImageNet mean/std for torchvision ResNet/VGG; 0.5/0.5 for Inception-v3
and the timm models, whose weights come from TensorFlow). Grey is copied into 3
channels; with ``in_channels=1`` the first convolution takes one channel, its weights
being the pretrained RGB kernels summed over the input channels (the response of the
3-channel network to a grey image; plain averaging would scale the first activations
by 1/3 against the BatchNorm statistics they were trained with).

Layers (``layer=``):

* ``"penultimate"``: the input of the final classifier. ResNet18/34: 512, ResNet50,
  Inception-v3, Xception: 2048 (global-average-pooled last block), Inception-ResNet-v2:
  1536, VGG16/19: 4096 (fc7 after its ReLU).
* ``"last_conv"``: global average of the last convolutional block. Equal to
  ``penultimate`` except for VGG, where it is 512 (pool5 averaged, Keras' ``pooling="avg"``,
  what Yang et al. 2022 report as 512 VGG features).
* any module name of the network (``"layer1"`` ... ``"layer4"`` of a ResNet, for Yang's
  earlier-layer comparison; ``"Mixed_6e"``; ``"features.29"``...): its output,
  global-average-pooled over space when it is a feature map.

Weights (``weights=``): ``"auto"`` uses ImageNet weights when they are on this machine
(torchvision's cache ``$TORCH_HOME/hub/checkpoints``, timm/Hugging Face caches) and
otherwise builds the network untrained with ``torch.manual_seed(seed)`` and warns;
``"imagenet"`` requires them (``FileNotFoundError`` otherwise); ``"untrained"`` builds the
seeded random network even where ImageNet weights exist (to re-extract features made without
them); a path loads that file. Nothing is ever downloaded. ``info["weights"]`` is exactly ``"imagenet"`` or
``"untrained (ImageNet weights not available)"``.

Each case's vector is cached (``<cache>/deep/<settings hash>/<key>.npy``, written
atomically) on (image sha256, mask sha256, backbone, layer, weights status and file,
crop/resize/slice settings, seed when untrained, library versions).

Speed: ``extract_deep_layers`` reads every requested layer of a backbone from one forward
pass; crops go through the network in batches (``batch_size``, default 16 or
``REPLICATE_DEEP_BATCH_SIZE``) under ``torch.inference_mode`` with an explicit number of
torch threads (``threads``, default ``REPLICATE_TORCH_THREADS`` or torch's current setting),
both recorded in ``info``; a case's crops are kept in memory for the next backbone over the
same cases. Each call reports a ``replicate.progress`` stage with a case counter and logs its
cache entries for the feature release (``replicate.features.release``).
"""

from __future__ import annotations

import io
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.cohort import Case
from ..io import atomic_write_bytes, stable_hash
from .radiomics import DEFAULT_GEOMETRY_TOLERANCE, CaseError, ExtractionError, _file_hash, read_case
from .table import FeatureTable

IMAGENET = "imagenet"
UNTRAINED = "untrained (ImageNet weights not available)"
DEEP_CACHE_FORMAT = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TF_MEAN = TF_STD = (0.5, 0.5, 0.5)
PERCENTILES = (0.5, 99.5)
SLICE_MODES = ("max_area", "three_max", "all_mean")

TORCHVISION = ("resnet18", "resnet34", "resnet50", "vgg16", "vgg19", "inception_v3")
TIMM = {
    "xception": "legacy_xception",
    "legacy_xception": "legacy_xception",
    "inception_resnet_v2": "inception_resnet_v2",
}
BACKBONES = TORCHVISION + ("xception", "inception_resnet_v2")

# (penultimate module, last-conv module, first conv module) per family
_LAYERS = {
    "resnet": ("avgpool", "layer4", "conv1"),
    "vgg": ("classifier.4", "features", "features.0"),
    "inception_v3": ("avgpool", "Mixed_7c", "Conv2d_1a_3x3.conv"),
    "legacy_xception": ("global_pool", "act4", "conv1"),
    "inception_resnet_v2": ("global_pool", "conv2d_7b", "conv2d_1a.conv"),
}


def _family(name: str) -> str:
    if name.startswith("resnet"):
        return "resnet"
    if name.startswith("vgg"):
        return "vgg"
    if name in TIMM:
        return TIMM[name]
    return name


def _canonical_backbone(name: str) -> str:
    n = str(name).lower().replace("-", "_")
    n = {"inceptionv3": "inception_v3", "inceptionresnetv2": "inception_resnet_v2"}.get(n, n)
    if n not in BACKBONES and n != "legacy_xception":
        raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")
    return "xception" if n == "legacy_xception" else n


# ----------------------------------------------------------------------------- weights (never downloaded)


def _torch_checkpoint_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _find_torchvision_weights(name: str) -> Path | None:
    import torchvision

    enum = torchvision.models.get_model_weights(name)
    members = list(enum)
    members.sort(key=lambda w: 0 if w.name.endswith("IMAGENET1K_V1") else 1)  # the original training first
    for w in members:
        p = _torch_checkpoint_dir() / os.path.basename(w.url)
        if p.is_file():
            return p
    return None


def _find_timm_weights(timm_name: str) -> Path | None:
    import timm

    cfg = timm.models.get_pretrained_cfg(timm_name)
    cands: list[Path] = []
    url = getattr(cfg, "url", None) if cfg is not None else None
    if url:
        cands.append(_torch_checkpoint_dir() / os.path.basename(url))
    hub_ids = []
    if cfg is not None and getattr(cfg, "hf_hub_id", None):
        hub_ids.append(cfg.hf_hub_id)
    hub_ids += [f"timm/{timm_name}.tf_in1k", f"timm/{timm_name}"]
    for p in cands:
        if p.is_file():
            return p
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    for hid in dict.fromkeys(hub_ids):
        for fname in ("model.safetensors", "pytorch_model.bin"):
            try:
                r = try_to_load_from_cache(hid, fname)
            except Exception:
                r = None
            if isinstance(r, str) and Path(r).is_file():
                return Path(r)
    return None


def find_weights(backbone: str) -> Path | None:
    """The local file of ImageNet weights for ``backbone``, or None (never downloads)."""
    b = _canonical_backbone(backbone)
    return _find_timm_weights(TIMM[b]) if b in TIMM else _find_torchvision_weights(b)


def build_backbone(backbone: str, weights: str | os.PathLike = "auto", *, seed: int = 0, in_channels: int = 3):
    """The full classification network (eval mode) and a dict describing it.

    Returns ``(model, meta)`` with ``meta = {"backbone", "family", "weights" (label),
    "weights_file", "mean", "std", "in_channels"}``. Never downloads.
    """
    import torch

    b = _canonical_backbone(backbone)
    if weights is None:
        weights = "auto"
    wfile: Path | None
    if str(weights) == "untrained":
        wfile = None
    elif isinstance(weights, (str, os.PathLike)) and str(weights) in ("auto", "imagenet"):
        wfile = find_weights(b)
        if wfile is None and str(weights) == "imagenet":
            raise FileNotFoundError(
                f"ImageNet weights for {b} are not on this machine (looked in {_torch_checkpoint_dir()} and the "
                "Hugging Face cache); they are never downloaded here. Put the file there, pass weights=<path>, "
                "or use weights='auto' to fall back to an untrained network."
            )
    else:
        wfile = Path(weights)
        if not wfile.is_file():
            raise FileNotFoundError(f"weights file {wfile} not found")
    torch.manual_seed(int(seed))
    if b in TIMM:
        import timm

        tname = TIMM[b]
        if wfile is not None:
            model = timm.create_model(tname, pretrained=True, pretrained_cfg_overlay={"file": str(wfile)})
        else:
            model = timm.create_model(tname, pretrained=False)
        cfg = model.pretrained_cfg or {}
        mean, std = tuple(cfg.get("mean", TF_MEAN)), tuple(cfg.get("std", TF_STD))
    else:
        import torchvision

        kw: dict[str, Any] = {}
        if b == "inception_v3":
            # we normalise to the network's own (TF) scaling ourselves: transform_input off
            kw = {"aux_logits": True, "transform_input": False, "init_weights": wfile is None}
        model = torchvision.models.get_model(b, weights=None, **kw)
        if wfile is not None:
            sd = torch.load(str(wfile), map_location="cpu", weights_only=True)
            model.load_state_dict(sd)
        mean, std = (TF_MEAN, TF_STD) if b == "inception_v3" else (IMAGENET_MEAN, IMAGENET_STD)
    fam = _family(b)
    if in_channels == 1:
        _to_single_channel(model, _LAYERS[fam][2])
        mean, std = (float(np.mean(mean)),), (float(np.mean(std)),)
    elif in_channels != 3:
        raise ValueError("in_channels must be 1 or 3")
    model.eval()
    meta = {
        "backbone": b,
        "family": fam,
        "weights": IMAGENET if wfile is not None else UNTRAINED,
        "weights_file": str(wfile) if wfile is not None else None,
        "mean": tuple(mean),
        "std": tuple(std),
        "in_channels": in_channels,
    }
    return model, meta


def _get_module(model, name: str):
    mods = dict(model.named_modules())
    if name not in mods:
        top = [n for n, _ in model.named_children()]
        raise ValueError(f"layer {name!r} not found in {type(model).__name__} (top-level modules: {top})")
    return mods[name]


def _set_module(model, name: str, new) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = _get_module(model, parent_name) if parent_name else model
    setattr(parent, child, new)


def _to_single_channel(model, conv_name: str) -> None:
    import torch

    conv = _get_module(model, conv_name)
    new = torch.nn.Conv2d(
        1,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
        conv.padding_mode,
    )
    with torch.no_grad():
        new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _set_module(model, conv_name, new)


def resolve_layer(backbone: str, layer: str) -> str:
    """The module name ``layer`` stands for (``penultimate`` / ``last_conv`` or a module name)."""
    fam = _family(_canonical_backbone(backbone))
    if layer == "penultimate":
        return _LAYERS[fam][0]
    if layer == "last_conv":
        return _LAYERS[fam][1]
    return layer


class _Stop(Exception):
    pass


class _LayerTap:
    """Runs the network until every module in ``module_names`` has produced its output and returns
    ``{module name: output pooled to a (batch, channels) tensor}`` (one forward pass, stopped early).

    ``seconds[name]`` accumulates the forward time from the previous tapped module's output (or the
    input) to this one's: what leaving that layer out of the pass would save."""

    def __init__(self, model, module_names):
        self.model = model
        self.names = [module_names] if isinstance(module_names, str) else list(module_names)
        self.modules = {n: _get_module(model, n) for n in self.names}
        self.out: dict[str, Any] = {}
        self.reached: dict[str, float] = {}
        self.seconds = dict.fromkeys(self.names, 0.0)

    def _hook(self, name):
        def hook(mod, inp, out):
            if name not in self.out:
                self.out[name] = out
                self.reached[name] = time.perf_counter()
            if len(self.out) == len(self.names):
                raise _Stop

        return hook

    def __call__(self, x):
        import torch

        handles = [m.register_forward_hook(self._hook(n)) for n, m in self.modules.items()]
        t_prev = time.perf_counter()
        try:
            self.model(x)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        for n, t in sorted(self.reached.items(), key=lambda kv: kv[1]):
            self.seconds[n] += t - t_prev
            t_prev = t
        self.reached = {}
        outs, self.out = self.out, {}
        missing = [n for n in self.names if n not in outs]
        if missing:
            raise RuntimeError(f"layer(s) {missing} were not reached in the forward pass")
        pooled = {}
        for n, out in outs.items():
            if isinstance(out, (tuple, list)):
                out = out[0]
            if out.ndim == 4:
                out = out.mean(dim=(2, 3))
            pooled[n] = torch.flatten(out, 1)
        return pooled


# ----------------------------------------------------------------------------- crops


def _percentile_unit(a: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(a, PERCENTILES)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return np.zeros_like(a, dtype=np.float32)
    return ((np.clip(a, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def _select_slices(mask3: np.ndarray, slices: str) -> list[int]:
    area = mask3.reshape(mask3.shape[0], -1).sum(1)
    idx = np.flatnonzero(area)
    if slices == "max_area":
        return [int(np.argmax(area))]
    if slices == "three_max":
        order = idx[np.argsort(-area[idx], kind="stable")]
        return sorted(int(i) for i in order[:3])
    if slices == "all_mean":
        return [int(i) for i in idx]
    raise ValueError(f"slices must be one of {SLICE_MODES}, got {slices!r}")


def _square_crop(img2: np.ndarray, m2: np.ndarray, spacing_yx, margin: float) -> np.ndarray:
    ys, xs = np.nonzero(m2)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    sy, sx = float(spacing_yx[0]), float(spacing_yx[1])
    side = max((y1 - y0) * sy, (x1 - x0) * sx) * (1 + 2 * margin)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    hy, hx = max(1, int(round(side / sy / 2))), max(1, int(round(side / sx / 2)))
    ty0, tx0 = int(np.floor(cy - hy)), int(np.floor(cx - hx))
    ty1, tx1 = ty0 + 2 * hy, tx0 + 2 * hx
    fill = float(np.min(img2))
    out = np.full((ty1 - ty0, tx1 - tx0), fill, dtype=np.float32)
    sy0, sx0 = max(ty0, 0), max(tx0, 0)
    sy1, sx1 = min(ty1, img2.shape[0]), min(tx1, img2.shape[1])
    out[sy0 - ty0 : sy1 - ty0, sx0 - tx0 : sx1 - tx0] = img2[sy0:sy1, sx0:sx1]
    return out


def tumour_crops(
    case: Case,
    *,
    slices: str = "max_area",
    crop_margin: float = 0.1,
    label: int = 1,
    geometry_tolerance: float = DEFAULT_GEOMETRY_TOLERANCE,
) -> list[tuple[int, np.ndarray]]:
    """``[(slice index, raw-intensity square crop)]`` of a case, as ``extract_deep`` uses them.

    Raises ``CaseError`` for bad input. Slice index is 0 for a 2-D image.
    """
    import SimpleITK as sitk

    image, mask, _ = read_case(case, label=label, geometry_tolerance=geometry_tolerance)
    img = sitk.GetArrayFromImage(image).astype(np.float32)
    m = sitk.GetArrayViewFromImage(mask) == label
    sp = image.GetSpacing()[::-1]  # numpy order
    if img.ndim == 2:
        return [(0, _square_crop(img, m, sp, crop_margin))]
    out = []
    for z in _select_slices(m, slices):
        out.append((z, _square_crop(img[z], m[z], sp[1:], crop_margin)))
    return out


def preprocess(crop: np.ndarray, size: int, mean, std):
    """Raw 2-D crop -> normalised tensor (C, size, size) with C = len(mean)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None, None]
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0, 0]
    a = _percentile_unit(t.numpy())
    t = torch.from_numpy(a)
    c = len(mean)
    t = t[None].expand(c, -1, -1)
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return (t - m) / s


# ----------------------------------------------------------------------------- extraction

_MODEL_MEMO: dict[tuple, tuple] = {}
DEFAULT_BATCH_SIZE = 16
BATCH_ENV = "REPLICATE_DEEP_BATCH_SIZE"
THREADS_ENV = "REPLICATE_TORCH_THREADS"


def default_batch_size() -> int:
    """Crops per forward pass: ``REPLICATE_DEEP_BATCH_SIZE`` if set, else ``DEFAULT_BATCH_SIZE``."""
    return int(os.environ.get(BATCH_ENV) or DEFAULT_BATCH_SIZE)


def default_threads() -> int:
    """torch intra-op threads for extraction: ``REPLICATE_TORCH_THREADS`` if set, else torch's current
    setting (callers that run several extractions side by side set it to 1 around the call)."""
    import torch

    return int(os.environ.get(THREADS_ENV) or torch.get_num_threads())


def _model_for(backbone, weights, seed, in_channels, device):
    key = (backbone, str(weights), int(seed), in_channels, str(device))
    if key not in _MODEL_MEMO:
        if len(_MODEL_MEMO) > 2:
            _MODEL_MEMO.clear()
        model, meta = build_backbone(backbone, weights, seed=seed, in_channels=in_channels)
        _MODEL_MEMO[key] = (model.to(device), meta)
    return _MODEL_MEMO[key]


def _versions() -> dict:
    import timm
    import torch
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__}


class _CropMemo:
    """Raw tumour crops of recently seen cases (keyed on image/mask sha256 and crop settings), so that
    several backbones over the same cases read and crop each image once. Bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int = 256 * 2**20):
        self.max_bytes = max_bytes
        self.items: dict[tuple, list[tuple[int, np.ndarray]]] = {}
        self.nbytes = 0

    def clear(self) -> None:
        self.items.clear()
        self.nbytes = 0

    def get(self, key):
        crops = self.items.pop(key, None)
        if crops is not None:
            self.items[key] = crops  # most recently used last
        return crops

    def put(self, key, crops) -> None:
        size = sum(c.nbytes for _, c in crops)
        if size > self.max_bytes:
            return
        while self.items and self.nbytes + size > self.max_bytes:
            old = self.items.pop(next(iter(self.items)))
            self.nbytes -= sum(c.nbytes for _, c in old)
        self.items[key] = crops
        self.nbytes += size


_CROPS = _CropMemo()


def extract_deep(
    cases: Iterable[Case],
    backbone: str = "resnet34",
    *,
    layer: str = "penultimate",
    size: int = 224,
    crop_margin: float = 0.1,
    slices: str = "max_area",
    in_channels: int = 3,
    weights: str | os.PathLike = "auto",
    device: str = "cpu",
    batch_size: int | None = None,
    threads: int | None = None,
    cache_dir: str | os.PathLike | None | bool = None,
    progress: bool = True,
    seed: int = 0,
    label: int = 1,
    strict: bool = False,
    geometry_tolerance: float = DEFAULT_GEOMETRY_TOLERANCE,
) -> FeatureTable:
    """Deep features of each case's tumour crop(s) at one layer; see the module doc for every option.

    Returns a ``FeatureTable``: ``features`` (index = case ids; columns
    ``<backbone>_<layer>_<i>``), ``failures`` (case_id, reason), ``info`` with
    ``weights`` ("imagenet" / "untrained (ImageNet weights not available)"),
    ``weights_file``, the module tapped, settings, versions, slices used per case, and the
    ``torch_threads`` and ``batch_size`` used. Several layers of one backbone:
    :func:`extract_deep_layers` (one forward pass for all of them).
    """
    return extract_deep_layers(
        cases,
        backbone,
        layers=(layer,),
        size=size,
        crop_margin=crop_margin,
        slices=slices,
        in_channels=in_channels,
        weights=weights,
        device=device,
        batch_size=batch_size,
        threads=threads,
        cache_dir=cache_dir,
        progress=progress,
        seed=seed,
        label=label,
        strict=strict,
        geometry_tolerance=geometry_tolerance,
    )[layer]


def extract_deep_layers(
    cases: Iterable[Case],
    backbone: str = "resnet34",
    *,
    layers: Sequence[str] = ("penultimate",),
    size: int = 224,
    crop_margin: float = 0.1,
    slices: str = "max_area",
    in_channels: int = 3,
    weights: str | os.PathLike = "auto",
    device: str = "cpu",
    batch_size: int | None = None,
    threads: int | None = None,
    cache_dir: str | os.PathLike | None | bool = None,
    progress: bool = True,
    seed: int = 0,
    label: int = 1,
    strict: bool = False,
    geometry_tolerance: float = DEFAULT_GEOMETRY_TOLERANCE,
) -> dict[str, FeatureTable]:
    """Deep features of several ``layers`` of one backbone in one pass: ``{layer: FeatureTable}``.

    Each case is read and cropped once (and kept for the next backbone over the same cases, see
    ``_CropMemo``); crops go through the network in batches of ``batch_size`` (default
    :func:`default_batch_size`) under ``torch.inference_mode`` with ``threads`` intra-op threads
    (default :func:`default_threads`; restored afterwards), and every requested layer is read from
    the same forward pass, which stops after the deepest of them. Each (case, layer) has its own
    cache entry, the same one :func:`extract_deep` reads and writes: batch size and thread count
    are not part of the key (they change float32 sums in the last bits, not the features).
    Arguments are those of :func:`extract_deep`.
    """
    import torch
    from tqdm.auto import tqdm

    from .. import progress as prog
    from ..config import feature_cache_dir
    from . import release

    t_start = time.perf_counter()
    if slices not in SLICE_MODES:
        raise ValueError(f"slices must be one of {SLICE_MODES}, got {slices!r}")
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise ValueError("layers is empty")
    b = _canonical_backbone(backbone)
    modules = {lay: resolve_layer(b, lay) for lay in layers}
    model, meta = _model_for(b, weights, seed, in_channels, device)
    for m in modules.values():
        _get_module(model, m)  # fails early on an unknown layer
    if meta["weights"] == UNTRAINED:
        why = (
            "as asked (weights='untrained')"
            if str(weights) == "untrained"
            else f"ImageNet weights were not found on this machine ({_torch_checkpoint_dir()} / Hugging Face cache) "
            "and are never downloaded"
        )
        warnings.warn(
            f"deep features come from an UNTRAINED {b} (random weights, seed {seed}): {why}. These are "
            "not the pretrained features the papers used.",
            UserWarning,
            stacklevel=3,
        )
    wsha = _file_hash(Path(meta["weights_file"])) if meta["weights_file"] else None
    settings = {
        lay: {
            "backbone": b,
            "layer": lay,
            "module": modules[lay],
            "size": int(size),
            "crop_margin": float(crop_margin),
            "slices": slices,
            "in_channels": int(in_channels),
            "weights": meta["weights"],
            "weights_sha256": wsha,
            "seed": None if wsha else int(seed),
            "label": int(label),
            "percentiles": PERCENTILES,
            "mean": meta["mean"],
            "std": meta["std"],
            "versions": _versions(),
            "format": DEEP_CACHE_FORMAT,
        }
        for lay in layers
    }
    shash = {lay: stable_hash(settings[lay]) for lay in layers}
    use_cache = cache_dir is not False
    root = (Path(cache_dir) if cache_dir not in (None, True, False) else feature_cache_dir()) if use_cache else None
    cdirs = {lay: root / "deep" / shash[lay][:16] for lay in layers} if use_cache else {}
    for d in cdirs.values():
        d.mkdir(parents=True, exist_ok=True)
    batch_size = int(batch_size or default_batch_size())
    threads = int(threads or default_threads())

    cases = list(cases)
    ids = [str(c.case_id) for c in cases]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicated case ids")
    vectors: dict[str, dict[str, np.ndarray]] = {lay: {} for lay in layers}
    used: dict[str, list[dict]] = {lay: [] for lay in layers}
    used_slices: dict[str, list[int]] = {}
    failures: list[tuple[str, str]] = []
    n_cached = {lay: 0 for lay in layers}
    tap = _LayerTap(model, list(dict.fromkeys(modules.values())))

    def fail(cid, reason):
        if strict:
            raise ExtractionError(reason)
        failures.append((cid, reason))

    pending: list[tuple[str, Any]] = []  # (case id, tensor)
    expected: dict[str, int] = {}
    partial: dict[tuple[str, str], list[np.ndarray]] = {}
    files: dict[tuple[str, str], Path] = {}
    todo: dict[str, list[str]] = {}  # case id -> layers still to compute

    def flush():
        if not pending:
            return
        x = torch.stack([t for _, t in pending]).to(device)
        with torch.inference_mode():
            outs = tap(x)
        for lay in layers:
            y = outs[modules[lay]].float().cpu().numpy()
            for (cid, _), v in zip(pending, y):
                if lay not in todo[cid]:
                    continue
                part = partial.setdefault((cid, lay), [])
                part.append(v)
                if len(part) == expected[cid]:
                    vec = np.mean(np.stack(partial.pop((cid, lay))), axis=0).astype(np.float32)
                    vectors[lay][cid] = vec
                    if (cid, lay) in files:
                        buf = io.BytesIO()
                        np.save(buf, vec, allow_pickle=False)
                        atomic_write_bytes(files[(cid, lay)], buf.getvalue())
        pending.clear()

    bar = tqdm(total=len(cases), desc=f"deep {b}", unit="case", disable=not progress)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    mods = {getattr(c, "modality", "") for c in cases}
    stage = f"deep {b} {'+'.join(layers)}" + (f" {mods.pop()}" if len(mods) == 1 and "" not in mods else "")
    try:
        with prog.stage(stage, total=len(cases), unit="case", batch_size=batch_size, torch_threads=threads):
            for k, c in enumerate(cases, 1):
                cid = str(c.case_id)
                try:
                    try:
                        h = [_file_hash(Path(c.image)), _file_hash(Path(c.mask))]
                    except OSError as e:
                        raise CaseError(cid, f"cannot read file: {e}") from None
                    todo[cid] = []
                    for lay in layers:
                        if use_cache:
                            f = cdirs[lay] / f"{stable_hash([h[0], h[1], shash[lay]])[:40]}.npy"
                            used[lay].append(
                                {
                                    "file": str(f),
                                    "case_id": cid,
                                    "image": str(c.image),
                                    "mask": str(c.mask),
                                    "image_sha256": h[0],
                                    "mask_sha256": h[1],
                                }
                            )
                            if f.is_file() and release.is_fresh(f):
                                try:
                                    vectors[lay][cid] = np.load(f, allow_pickle=False)
                                    n_cached[lay] += 1
                                    continue
                                except Exception as e:  # never expected (atomic writes); redo the case
                                    warnings.warn(f"ignoring unreadable cache entry {f}: {e}", stacklevel=2)
                            files[(cid, lay)] = f
                        todo[cid].append(lay)
                    if not todo[cid]:
                        bar.update()
                        prog.tick(k)
                        continue
                    ckey = (h[0], h[1], slices, float(crop_margin), int(label), float(geometry_tolerance))
                    crops = _CROPS.get(ckey)
                    if crops is None:
                        crops = tumour_crops(
                            c,
                            slices=slices,
                            crop_margin=crop_margin,
                            label=label,
                            geometry_tolerance=geometry_tolerance,
                        )
                        _CROPS.put(ckey, crops)
                except CaseError as e:
                    fail(cid, getattr(e, "reason", f"CaseError: {e}"))
                    bar.update()
                    prog.tick(k)
                    continue
                used_slices[cid] = [z for z, _ in crops]
                expected[cid] = len(crops)
                for _, crop in crops:
                    pending.append((cid, preprocess(crop, size, meta["mean"], meta["std"])))
                    if len(pending) >= batch_size:
                        flush()
                bar.update()
                prog.tick(k)
            flush()
            prog.set_result(
                n_cases=len(cases), n_cached=sum(n_cached.values()), n_extracted=sum(len(v) for v in todo.values())
            )
    finally:
        torch.set_num_threads(before)
        bar.close()
    out = {}
    elapsed = time.perf_counter() - t_start
    costs = _layer_costs(tap, modules, elapsed, sum(bool(v) for v in todo.values()))
    for lay in layers:
        kept = [cid for cid in ids if cid in vectors[lay]]
        dim = len(next(iter(vectors[lay].values()))) if vectors[lay] else 0
        cols = [f"{b}_{lay}_{i}" for i in range(dim)]
        feats = pd.DataFrame(
            np.vstack([vectors[lay][c] for c in kept]) if kept else np.empty((0, dim)),
            index=pd.Index(kept, name="case_id"),
            columns=cols,
        ).astype(float)
        if use_cache:
            cost = costs.get(lay)
            release.log_entries(
                "deep",
                shash[lay],
                settings[lay],
                root,
                [
                    {**u, "seconds": cost if lay in todo.get(u["case_id"], ()) else None}
                    for u in used[lay]
                    if u["case_id"] in vectors[lay]
                ],
            )
        info = {
            "extractor": "deep",
            "backbone": b,
            "layer": lay,
            "module": modules[lay],
            "weights": meta["weights"],
            "weights_file": meta["weights_file"],
            "weights_sha256": wsha,
            "settings": settings[lay],
            "settings_hash": shash[lay],
            "n_features": dim,
            "n_cases": len(ids),
            "n_ok": len(kept),
            "n_failed": len(failures),
            "n_cached": n_cached[lay],
            "n_extracted": sum(lay in v for v in todo.values()),
            "slices": used_slices,
            "device": str(device),
            "cache_dir": str(cdirs[lay]) if use_cache else None,
            "torch_threads": threads,
            "batch_size": batch_size,
            "layers_in_pass": layers,
            "seconds_total": elapsed,
        }
        out[lay] = FeatureTable(feats, pd.DataFrame(failures, columns=["case_id", "reason"]), info)
    return out


def _layer_costs(tap: _LayerTap, modules: dict[str, str], elapsed: float, n_cases: int) -> dict[str, float]:
    """Seconds one case's entry of each layer cost: the layer's own stretch of the forward pass plus an
    equal share of the rest (reading, cropping, the pooling), per case computed. The feature release
    ranks settings groups by these (time saved per byte)."""
    if n_cases == 0:
        return {}
    forward = sum(tap.seconds.values())
    per_module = {m: sum(1 for v in modules.values() if v == m) for m in set(modules.values())}
    rest = max(0.0, elapsed - forward) / len(modules)
    return {lay: (tap.seconds.get(m, 0.0) / per_module[m] + rest) / n_cases for lay, m in modules.items()}


# ----------------------------------------------------------------------------- Grad-CAM


def _last_conv_module_name(model) -> str:
    import torch

    name = None
    for n, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            name = n
    if name is None:
        raise ValueError("no Conv2d layer in the model")
    return name


def gradcam(
    model_or_backbone_name,
    image_crop,
    target_layer=None,
    *,
    class_idx: int | None = None,
    weights: str | os.PathLike = "auto",
    size: int = 224,
    seed: int = 0,
    device: str = "cpu",
) -> np.ndarray:
    """Grad-CAM heat map (Selvaraju et al. 2017) of a crop: an array of the crop's size, in [0, 1].

    model_or_backbone_name: a backbone name (built with ``weights``, full classifier) or a
        ``torch.nn.Module`` returning logits.
    image_crop: a raw 2-D crop (e.g. from ``tumour_crops``; resized to ``size`` and normalised
        as for feature extraction) or an already normalised tensor (C, H, W).
    target_layer: module name or module; default: the last convolutional block
        (``last_conv`` of the backbone; the last ``Conv2d`` of a custom module).
    class_idx: the logit whose gradient is used; default the top-scoring class.

    The map is ReLU(sum_k alpha_k A_k) with alpha_k the spatial mean of d score / d A_k,
    upsampled (bilinear) to the input size and divided by its maximum (all zeros if
    the map is zero everywhere).
    """
    import torch
    import torch.nn.functional as F

    if isinstance(model_or_backbone_name, str):
        model, meta = build_backbone(model_or_backbone_name, weights, seed=seed)
        mean, std = meta["mean"], meta["std"]
        default_layer = resolve_layer(meta["backbone"], "last_conv")
    else:
        model = model_or_backbone_name
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        default_layer = None
    model = model.to(device).eval()
    if isinstance(image_crop, torch.Tensor):
        x = image_crop.float()
        out_hw = tuple(x.shape[-2:])
    else:
        arr = np.asarray(image_crop, dtype=np.float32)
        if arr.ndim != 2:
            raise ValueError("image_crop must be a 2-D array (or a (C, H, W) tensor)")
        out_hw = arr.shape
        x = preprocess(arr, size, mean, std)
    if x.ndim == 3:
        x = x[None]
    x = x.to(device)
    if target_layer is None:
        target_layer = default_layer or _last_conv_module_name(model)
    module = _get_module(model, target_layer) if isinstance(target_layer, str) else target_layer
    store: dict[str, Any] = {}

    def fwd_hook(mod, inp, out):
        out = out[0] if isinstance(out, (tuple, list)) else out
        store["act"] = out
        out.register_hook(lambda g: store.__setitem__("grad", g))

    h = module.register_forward_hook(fwd_hook)
    try:
        with torch.enable_grad():
            x = x.clone().requires_grad_(True)
            logits = model(x)
            if isinstance(logits, (tuple, list)) or hasattr(logits, "logits"):
                logits = getattr(logits, "logits", logits[0] if isinstance(logits, (tuple, list)) else logits)
            idx = int(logits[0].argmax()) if class_idx is None else int(class_idx)
            model.zero_grad(set_to_none=True)
            logits[0, idx].backward()
    finally:
        h.remove()
    act, grad = store["act"].detach(), store["grad"].detach()
    alpha = grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((alpha * act).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=out_hw, mode="bilinear", align_corners=False)[0, 0]
    cam = torch.clamp(cam, min=0)
    mx = float(cam.max())
    cam = cam / mx if mx > 0 else torch.zeros_like(cam)
    return cam.cpu().numpy()
