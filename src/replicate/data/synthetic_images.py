"""Image renderers of the synthetic twins (used by :mod:`replicate.data.synthetic`).

Two renderers, both pure functions of (per-patient latent parameters, centre
settings, a seeded generator):

- :func:`render_volume` -- a 3-D limb-like cross-section extruded along z
  (air, skin/subcutaneous fat, muscle with intermuscular fat planes, a bone
  with cortex and marrow) holding one tumour: an irregular blob (a rotated
  ellipsoid whose surface is perturbed by smoothed noise). The tumour's inside
  depends on ``style``: ``sarcoma`` (solid tissue with texture and a
  necrosis-like core), ``lipomatous`` (fat with septa and non-fat nodules).
  Every modality is a lookup of one shared tissue map (so modalities are
  co-registered and share one mask) through an intensity table
  (:data:`MODALITY_TABLES`), plus texture, contrast enhancement (CT phases,
  T1 post-contrast), the centre's blur / scale / offset / noise.
- :func:`render_ultrasound` -- a 2-D B-mode image (skin, subcutaneous fat,
  fascia, muscle, bone line) with a hypoechoic lesion (polar-perturbed
  ellipse, smooth or irregular/spiculated margin, sharp or blurred boundary),
  posterior enhancement or shadowing, multiplicative Rayleigh speckle, depth
  attenuation and log compression; plus a Doppler image: the B-mode at half
  brightness (<= 128) with colour-flow pixels drawn brighter (140-255), the
  vessel count following the blood-flow grade.

All randomness comes from the generator passed in, drawn in the same order
whatever the latent values, so equal latents give equal images.
"""

from __future__ import annotations

import math
import re

import numpy as np
import scipy.fft as sfft
from scipy import ndimage as ndi

# ----------------------------------------------------------------------------- tissues and modalities

TISSUES = ("air", "fat", "muscle", "cortex", "marrow", "solid", "necrosis", "septum", "nodule", "tumour_fat")
T = {name: i for i, name in enumerate(TISSUES)}
TUMOUR_TISSUES = (T["solid"], T["necrosis"], T["septum"], T["nodule"], T["tumour_fat"])

#: Mean intensity of each tissue per base modality; ``range`` is the unit of texture,
#: noise and offsets (a centre's ``noise: 0.03`` = sd of 3 % of ``range``);
#: ``floor`` clips (MR magnitude >= 0, CT >= -1024 HU).
MODALITY_TABLES: dict[str, dict[str, float]] = {
    "T1": dict(
        air=5,
        fat=900,
        muscle=330,
        cortex=30,
        marrow=760,
        solid=400,
        necrosis=230,
        septum=360,
        nodule=420,
        tumour_fat=880,
        range=800,
        floor=0,
    ),
    "T1C": dict(
        air=5,
        fat=880,
        muscle=380,
        cortex=30,
        marrow=790,
        solid=640,
        necrosis=235,
        septum=560,
        nodule=620,
        tumour_fat=860,
        range=800,
        floor=0,
    ),
    "T2": dict(
        air=5,
        fat=620,
        muscle=200,
        cortex=25,
        marrow=520,
        solid=600,
        necrosis=900,
        septum=420,
        nodule=560,
        tumour_fat=600,
        range=800,
        floor=0,
    ),
    "T2FS": dict(
        air=5,
        fat=110,
        muscle=190,
        cortex=25,
        marrow=130,
        solid=680,
        necrosis=930,
        septum=440,
        nodule=620,
        tumour_fat=120,
        range=800,
        floor=0,
    ),
    "PD": dict(
        air=5,
        fat=800,
        muscle=330,
        cortex=30,
        marrow=700,
        solid=560,
        necrosis=760,
        septum=450,
        nodule=540,
        tumour_fat=790,
        range=800,
        floor=0,
    ),
    "DWI": dict(
        air=5,
        fat=60,
        muscle=150,
        cortex=10,
        marrow=90,
        solid=520,
        necrosis=200,
        septum=200,
        nodule=480,
        tumour_fat=60,
        range=500,
        floor=0,
    ),
    "ADC": dict(
        air=0,
        fat=100,
        muscle=1500,
        cortex=50,
        marrow=400,
        solid=1100,
        necrosis=2400,
        septum=1300,
        nodule=1000,
        tumour_fat=100,
        range=1500,
        floor=0,
    ),
    "CT": dict(
        air=-1000,
        fat=-105,
        muscle=50,
        cortex=1100,
        marrow=220,
        solid=38,
        necrosis=15,
        septum=35,
        nodule=40,
        tumour_fat=-100,
        range=200,
        floor=-1024,
    ),
}

#: Contrast uptake (HU) per CT phase for the enhancing tissues; the tumour's parts are
#: multiplied by the patient's ``enhancement`` and, for the arterial / delayed phase,
#: by (1 + washout / 2) / (1 - washout): positives enhance early and wash out.
CT_PHASE_GAIN = {
    "arterial": dict(muscle=15, marrow=20, solid=45, septum=25, nodule=40),
    "venous": dict(muscle=20, marrow=25, solid=65, septum=35, nodule=55),
    "delayed": dict(muscle=15, marrow=20, solid=55, septum=30, nodule=45),
}

_ALIASES = {
    "T1": "T1",
    "T1W": "T1",
    "T1WI": "T1",
    "T1WSE": "T1",
    "T1C": "T1C",
    "T1CE": "T1C",
    "T1GD": "T1C",
    "T1POST": "T1C",
    "CET1": "T1C",
    "T1WICE": "T1C",
    "T1PLUSC": "T1C",
    "T2": "T2",
    "T2W": "T2",
    "T2WI": "T2",
    "T2FS": "T2FS",
    "FST2": "T2FS",
    "FST2W": "T2FS",
    "FST2WI": "T2FS",
    "T2WIFS": "T2FS",
    "STIR": "T2FS",
    "T2STIR": "T2FS",
    "T2FSE": "T2FS",
    "PD": "PD",
    "PDW": "PD",
    "PDFS": "T2FS",
    "DWI": "DWI",
    "ADC": "ADC",
    "CT": "CT",
    "NCCT": "CT",
    "PLAIN": "CT",
    "UNENHANCED": "CT",
    "NONCONTRAST": "CT",
    "ARTERIAL": "arterial",
    "AP": "arterial",
    "ART": "arterial",
    "VENOUS": "venous",
    "PORTAL": "venous",
    "PORTALVENOUS": "venous",
    "PV": "venous",
    "VP": "venous",
    "CECT": "venous",
    "DELAYED": "delayed",
    "DP": "delayed",
    "EQUILIBRIUM": "delayed",
}
US_MODALITIES = ("US", "doppler")


def base_modality(name: str) -> str:
    """``"FS-T2WI"`` -> ``"T2FS"``, ``"portal venous"`` -> ``"venous"``; ``KeyError`` when unknown."""
    key = re.sub(r"[^A-Z0-9]", "", str(name).upper().replace("+", "PLUS"))
    if key not in _ALIASES:
        raise KeyError(name)
    return _ALIASES[key]


def modality_table(name: str, overrides: dict | None = None) -> dict:
    """The tissue -> intensity table of modality ``name`` (with ``phase`` for CT phases).

    ``overrides`` (the design's ``intensities[name]``) may name a base with
    ``like`` (needed for names this module does not know) and replace any
    tissue value, ``range`` or ``floor``.
    """
    overrides = dict(overrides or {})
    like = overrides.pop("like", None)
    try:
        base = base_modality(like if like is not None else name)
    except KeyError:
        raise ValueError(
            f"unknown modality {name!r}: use one of {sorted(MODALITY_TABLES)} or a CT phase "
            f"{sorted(CT_PHASE_GAIN)} (aliases: {sorted(_ALIASES)}), or give "
            f"intensities: {{{name}: {{like: T1, ...}}}} in the design"
        ) from None
    phase = base if base in CT_PHASE_GAIN else None
    table = dict(MODALITY_TABLES["CT" if phase else base])
    unknown = set(overrides) - set(table)
    if unknown:
        raise ValueError(f"intensities for {name!r}: unknown keys {sorted(unknown)} (tissues: {list(TISSUES)})")
    table.update({k: float(v) for k, v in overrides.items()})
    table["phase"] = phase
    table["base"] = base
    return table


# ----------------------------------------------------------------------------- helpers


def smooth_noise(rng: np.random.Generator, shape, sigma_vox, *, dtype=np.float32) -> np.ndarray:
    """White noise smoothed by a periodic Gaussian (``sigma_vox`` per axis, via FFT), mean 0 and sd 1."""
    shape = tuple(int(n) for n in shape)
    sig = np.broadcast_to(np.asarray(sigma_vox, dtype=np.float64), (len(shape),))
    white = rng.standard_normal(shape, dtype=np.float32)
    spec = sfft.rfftn(white)
    h = np.ones((), dtype=np.float32)
    for ax, (n, sg) in enumerate(zip(shape, sig)):
        f = sfft.rfftfreq(n) if ax == len(shape) - 1 else sfft.fftfreq(n)
        g = np.exp(-2 * math.pi**2 * (f * sg) ** 2).astype(np.float32)
        h = h[..., None] * g if ax else g
    f = sfft.irfftn(spec * h, s=shape, axes=tuple(range(len(shape)))).astype(dtype, copy=False)
    f -= f.mean()
    sd = f.std()
    return f / sd if sd > 0 else f


def rotation_matrix(angles) -> np.ndarray:
    """Rotation from three angles (radians) about z, y, x."""
    a, b, c = angles
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rx = np.array([[1, 0, 0], [0, math.cos(c), -math.sin(c)], [0, math.sin(c), math.cos(c)]])
    return rz @ ry @ rx


def largest_component(mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Clear the border, keep the largest connected component, fill its holes (work on the bounding box)."""
    mask = mask.copy()
    for ax in range(mask.ndim):
        idx = [slice(None)] * mask.ndim
        idx[ax] = [0, -1]
        mask[tuple(idx)] = False
    if not mask.any():
        return mask
    box = ndi.find_objects(mask.view(np.uint8))[0]
    out = np.zeros_like(mask)
    out[box] = ndi.binary_fill_holes(largest_component(mask[box]))
    return out


# ----------------------------------------------------------------------------- volumes


def render_volume(
    lat: dict,
    *,
    shape_xyz,
    spacing_xyz,
    modalities: list[str],
    tables: dict[str, dict],
    style: str,
    centre: dict,
    rng: np.random.Generator,
):
    """One patient's co-registered volumes.

    ``lat``: the tumour's latent parameters (``diameter_mm``, ``elongation``,
    ``irregularity``, ``heterogeneity``, ``necrosis``, ``enhancement``,
    ``washout``, ``septa_count``, ``septa_mm``, ``nodules``, ``angles``,
    ``offset``). ``shape_xyz`` / ``spacing_xyz``: ITK order. Returns
    ``({modality: float32 array (z, y, x)}, mask uint8 (z, y, x))``.
    """
    nx, ny, nz = (int(v) for v in shape_xyz)
    sx, sy, sz = (float(v) for v in spacing_xyz)
    shp = (nz, ny, nx)
    sig = lambda mm: (mm / sz, mm / sy, mm / sx)  # noqa: E731  (mm -> voxels, array order)
    z = ((np.arange(nz) - (nz - 1) / 2) * sz)[:, None, None]
    y = ((np.arange(ny) - (ny - 1) / 2) * sy)[None, :, None]
    x = ((np.arange(nx) - (nx - 1) / 2) * sx)[None, None, :]
    fov = np.array([nx * sx, ny * sy, nz * sz])

    # --- anatomy (label independent): body ellipse, fat layer, muscle, bone
    u = rng.uniform(size=8)
    ax_b, ay_b = 0.46 * fov[0] * (0.95 + 0.08 * u[0]), 0.43 * fov[1] * (0.95 + 0.08 * u[1])
    taper = 1 + 0.04 * z / max(fov[2], 1)
    rb = np.sqrt((x / (ax_b * taper)) ** 2 + (y / (ay_b * taper)) ** 2)
    fat_mm = 3.0 + 3.0 * u[2]
    inner = rb < 1 - fat_mm / min(ax_b, ay_b)
    theta = 2 * math.pi * u[3]
    bx, by = 0.38 * ax_b * math.cos(theta), 0.38 * ay_b * math.sin(theta)
    br = 0.10 * min(fov[0], fov[1]) * (0.9 + 0.3 * u[4])
    tilt = 0.05 * (u[5] - 0.5)
    dbone = np.sqrt((x - bx - tilt * z) ** 2 + (y - by) ** 2)
    tissue = np.zeros(shp, dtype=np.uint8)
    body = np.broadcast_to(rb < 1, shp)
    tissue[body] = T["fat"]
    muscle = np.broadcast_to(inner, shp).copy()
    planes = smooth_noise(rng, shp, sig(9.0))
    muscle &= np.abs(planes) > 0.07  # intermuscular fat planes
    tissue[muscle] = T["muscle"]
    tissue[np.broadcast_to(dbone < br, shp)] = T["cortex"]
    tissue[np.broadcast_to(dbone < br - 2.0, shp)] = T["marrow"]
    tex_muscle = smooth_noise(rng, shp, (4.0 / sz, 1.2 / sy, 1.2 / sx))
    tex_fat = smooth_noise(rng, shp, sig(1.5))

    # --- tumour: rotated ellipsoid, surface perturbed by smoothed noise, opposite the bone
    d = float(lat["diameter_mm"])
    el = np.asarray(lat["elongation"], dtype=float)  # relative semi-axes (mean 1)
    semi = d / 2 * el / np.cbrt(np.prod(el))
    off = np.asarray(lat["offset"], dtype=float)  # in [-1, 1]^3
    margin = fov / 2 - semi.max() * 1.15 - 2 * np.array([sx, sy, sz])
    margin = np.maximum(margin, 0)
    c_xy = -np.array([bx, by]) / max(math.hypot(bx, by), 1e-6) * min(0.25 * min(ax_b, ay_b), margin[:2].min())
    cx, cy = np.clip(c_xy + off[:2] * 0.15 * fov[:2], -margin[:2], margin[:2])
    cz = np.clip(off[2] * 0.1 * fov[2], -margin[2], margin[2])
    R = rotation_matrix(lat["angles"]).T
    px, py, pz = x - cx, y - cy, z - cz
    u_ = (R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz) / semi[0]
    v_ = (R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz) / semi[1]
    w_ = (R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz) / semi[2]
    r = np.sqrt(u_**2 + v_**2 + w_**2)
    lob = 0.35 * d / 2
    shape_f = (smooth_noise(rng, shp, sig(lob)) + 0.5 * smooth_noise(rng, shp, sig(lob / 2.5))) / 1.118
    irr = float(lat["irregularity"])
    mask = clean_mask(r < 1 + irr * shape_f)
    if mask.sum() < 8:  # degenerate draw: fall back to the plain ellipsoid
        mask = clean_mask(r < 1)
    tissue[mask] = T["solid"]

    het = smooth_noise(rng, shp, sig(1.6))
    inner_f = smooth_noise(rng, shp, sig(0.25 * d / 2))
    if style == "lipomatous":
        tissue[mask] = T["tumour_fat"]
        # non-fat nodules: the top `nodules` fraction of a smooth field inside the tumour
        frac = float(lat["nodules"])
        if frac > 0:
            vals = inner_f[mask]
            thr = np.quantile(vals, 1 - min(frac, 0.9))
            tissue[mask & (inner_f >= thr)] = T["nodule"]
        # septa: gently curved planes through the tumour, thickness septa_mm
        normals = rng.standard_normal((12, 3))
        shifts = rng.uniform(-0.7, 0.7, size=12)
        bend = smooth_noise(rng, shp, sig(0.5 * d / 2))
        ns = int(lat["septa_count"])
        half = max(float(lat["septa_mm"]), 0.3) / 2
        for k in range(min(ns, 12)):
            n = normals[k] / np.linalg.norm(normals[k])
            dist = n[0] * px + n[1] * py + n[2] * pz - shifts[k] * d / 2 + 0.12 * d / 2 * bend
            sel = mask & (np.abs(dist) < half)
            tissue[sel & (tissue != T["nodule"])] = T["septum"]
    else:
        nec = float(lat["necrosis"])
        if nec > 0:
            core = r < nec * (1 + 0.3 * inner_f)
            tissue[mask & core] = T["necrosis"]

    # --- modalities: tissue lookup + texture + enhancement + centre (blur, scale, offset, noise)
    h = float(lat["heterogeneity"])
    tex = np.zeros(shp, dtype=np.float32)  # texture in units of each modality's range
    sel = tissue == T["muscle"]
    tex[sel] = 0.04 * tex_muscle[sel]
    sel = (tissue == T["fat"]) | (tissue == T["tumour_fat"])
    tex[sel] = 0.02 * tex_fat[sel]
    sel = np.isin(tissue, TUMOUR_TISSUES) & (tissue != T["necrosis"])
    tex[sel] += h * het[sel]
    enh, wash = float(lat["enhancement"]), float(lat["washout"])
    noise_fields = {m: rng.standard_normal(shp, dtype=np.float32) for m in modalities}
    images = {}
    for m in modalities:
        tb = tables[m]
        rng_unit = float(tb["range"])
        lut = np.array([tb[t] for t in TISSUES], dtype=np.float32)
        if tb["phase"] is not None:
            tumour_gain = enh * (
                (1 + wash / 2) if tb["phase"] == "arterial" else (1 - wash) if tb["phase"] == "delayed" else 1.0
            )
            for t, g in CT_PHASE_GAIN[tb["phase"]].items():
                lut[T[t]] += g * (tumour_gain if T[t] in TUMOUR_TISSUES else 1.0)
        elif tb["base"] == "T1C":
            t1 = MODALITY_TABLES["T1"]
            for t in ("solid", "septum", "nodule"):
                lut[T[t]] = t1[t] + (tb[t] - t1[t]) * enh
        img = lut[tissue]
        img += rng_unit * tex
        # scanner: point-spread blur, intensity scale / offset, noise
        blur = _per_mod(centre.get("blur", 0.0), m, 0.0)
        sig_vox = (0.35, math.sqrt(0.5**2 + blur**2), math.sqrt(0.5**2 + blur**2))
        img = ndi.gaussian_filter(img, sig_vox, mode="nearest", truncate=3.0)
        img *= _per_mod(centre.get("scale", 1.0), m, 1.0)
        img += _per_mod(centre.get("offset", 0.0), m, 0.0) * rng_unit
        img += _per_mod(centre.get("noise", 0.03), m, 0.03) * rng_unit * noise_fields[m]
        np.maximum(img, tb["floor"], out=img)
        images[m] = img
    return images, mask.astype(np.uint8)


def _per_mod(value, modality: str, default: float) -> float:
    """A centre setting: a number for every modality, or ``{modality: number}`` (others: ``default``)."""
    if isinstance(value, dict):
        return float(value.get(modality, value.get("default", default)))
    return float(value)


# ----------------------------------------------------------------------------- ultrasound


def _periodic_noise(rng: np.random.Generator, theta: np.ndarray, kmin: int, kmax: int) -> np.ndarray:
    """A smooth random function of the angle: harmonics kmin..kmax with 1/k amplitudes, sd ~ 1."""
    ks = np.arange(kmin, kmax + 1)
    amp = rng.standard_normal(len(ks)) / ks
    ph = rng.uniform(0, 2 * math.pi, len(ks))
    f = np.zeros_like(theta)
    for k, a, p in zip(ks, amp, ph):
        f = f + a * np.cos(k * theta + p)
    norm = math.sqrt(float(np.sum((1 / ks) ** 2)) / 2)
    return f / norm


def render_ultrasound(
    lat: dict, *, shape_xy, spacing_mm: float, modalities: list[str], centre: dict, rng: np.random.Generator
):
    """One patient's B-mode image (and Doppler vascularity map) as uint8 arrays (rows = depth, cols)."""
    nx, ny = (int(v) for v in shape_xy)
    s = float(spacing_mm)
    depth = (np.arange(ny) * s)[:, None]  # mm below the probe
    lat_x = ((np.arange(nx) - (nx - 1) / 2) * s)[None, :]
    fov_x, fov_y = nx * s, ny * s
    u = rng.uniform(size=10)

    # --- lesion geometry: polar-perturbed ellipse below the skin
    wave = lambda amp, k0: amp * _periodic_noise(rng, lat_x[0] / fov_x * 2 * math.pi, 1, k0)  # noqa: E731
    skin = 1.0 + 0.3 * u[0] + wave(0.15, 3)
    d = float(lat["diameter_mm"])
    a = d / 2  # lateral semi-axis
    b = min(a / max(float(lat["aspect"]), 0.3), 0.4 * fov_y)  # depth semi-axis
    off = np.asarray(lat["offset"], dtype=float)
    cx = float(np.clip(off[0] * 0.12 * fov_x, -(fov_x / 2 - a * 1.3), fov_x / 2 - a * 1.3))
    cy_lo, cy_hi = float(skin.max()) + b * 1.2 + 0.5, fov_y - b * 1.2 - 6.0
    cy = cy_lo + (cy_hi - cy_lo) * (0.25 + 0.4 * (off[1] + 1) / 2) if cy_hi > cy_lo else cy_lo
    ang = (float(lat["angles"][0]) / math.pi - 1) * 0.25  # +-15 degrees
    dx, dy = lat_x - cx, depth - cy
    ca, sa = math.cos(ang), math.sin(ang)
    ux, uy = (ca * dx + sa * dy) / a, (-sa * dx + ca * dy) / b
    rad = np.sqrt(ux**2 + uy**2)
    th = np.arctan2(uy, ux)
    low = _periodic_noise(rng, th, 2, 7)
    high = _periodic_noise(rng, th, 12, 24)
    boundary = 1 + float(lat["irregularity"]) * low + float(lat["spiculation"]) * np.maximum(high, 0)
    boundary = np.maximum(boundary, 0.35)
    mask = clean_mask(rad < boundary)
    if mask.sum() < 8:
        mask = clean_mask(rad < 1)
    rows = np.flatnonzero(mask.any(axis=1))
    lesion_bottom = (rows.max() + 1) * s

    # --- layers with wavy boundaries (label independent); the deep fascia / bone below the lesion
    fat_end = skin + 0.22 * fov_y * (0.7 + 0.6 * u[1]) + wave(0.8, 4)
    bone = np.maximum(0.85 * fov_y * (0.92 + 0.1 * u[2]) + wave(1.0, 3), lesion_bottom + 7.0 + 3.0 * u[5])
    echo = np.full((ny, nx), 0.55, dtype=np.float64)  # muscle
    striae = 0.12 * np.sin(2 * math.pi * (depth + wave(0.6, 5)[None, :]) / (1.3 + 0.6 * u[3]))
    echo = echo + striae
    fat = (depth >= skin[None, :]) & (depth < fat_end[None, :])
    lob = smooth_noise(rng, (ny, nx), (2.5 / s, 4.0 / s))
    echo[fat] = 0.30 + 0.06 * lob[fat]
    fsept = fat & (np.abs(smooth_noise(rng, (ny, nx), (1.5 / s, 3.0 / s))) < 0.08)
    echo[fsept] = 0.75
    echo[depth < skin[None, :]] = 0.95
    fascia = np.abs(depth - fat_end[None, :]) < 0.35
    echo[fascia] = 0.95
    bone_line = np.abs(depth - bone[None, :]) < 0.45
    below = depth > bone[None, :] + 0.45
    echo[bone_line] = 1.15
    echo[below] = 0.06

    # --- lesion echo, texture, blurred margin
    het = smooth_noise(rng, (ny, nx), (0.7 / s, 0.9 / s))
    lesion_echo = float(lat["echo"]) * (1 + float(lat["heterogeneity"]) * het)
    lesion_echo = np.clip(lesion_echo, 0.02, None)
    soft = ndi.gaussian_filter(mask.astype(np.float64), max(float(lat["margin_blur_mm"]), 0.05) / s)
    echo = echo * (1 - soft) + lesion_echo * soft

    # --- posterior acoustic enhancement (>0) / shadowing (<0) below the lesion
    cols = mask.any(axis=0)
    if cols.any():
        bottom = np.where(cols, ny - 1 - np.argmax(mask[::-1, :], axis=0), 0) * s
        lateral = ndi.gaussian_filter(cols.astype(np.float64), 0.6 / s)
        below_l = np.clip(depth - bottom[None, :], 0, None)
        prof = np.where(depth > bottom[None, :], np.exp(-below_l / 10.0), 0.0) * lateral[None, :]
        echo = echo * np.clip(1 + float(lat["posterior"]) * prof, 0.05, None)

    # --- speckle (Rayleigh amplitude of a correlated complex field), attenuation, log compression
    psf = float(centre.get("speckle", 1.0))
    blur = float(centre.get("blur", 0.0))
    sig = (psf * 0.8 + blur, psf * 1.6 + blur)
    re_ = ndi.gaussian_filter(rng.standard_normal((ny, nx)), sig, mode="wrap")
    im_ = ndi.gaussian_filter(rng.standard_normal((ny, nx)), sig, mode="wrap")
    speck = np.sqrt(re_**2 + im_**2)
    speck /= math.sqrt(float(np.mean(speck**2)))
    atten = np.exp(-0.012 * depth) * (1 + 0.25 * depth / fov_y)  # imperfect TGC
    amp = echo * speck * atten
    dr = 45.0
    bmode = (20 * np.log10(np.maximum(amp, 1e-6) / 5.0) + dr) / dr * 255
    bmode = bmode * float(centre.get("scale", 1.0)) + float(centre.get("offset", 0.0)) * 255
    bmode = bmode + float(centre.get("noise", 0.02)) * 255 * rng.standard_normal((ny, nx))
    images = {"US": np.clip(np.round(bmode), 0, 255).astype(np.uint8)}

    # --- Doppler vascularity map: vessels (smooth random walks) in and around the lesion
    grade = int(lat["blood_flow_grade"])
    n_vessels = [int(u[4] < 0.3), 1 + int(u[4] < 0.5), 3 + int(3 * u[4]), 6 + int(5 * u[4])][grade]
    flow = np.zeros((ny, nx), dtype=np.float64)
    starts = rng.uniform(-1, 1, size=(12, 2))
    headings = rng.uniform(0, 2 * math.pi, size=12)
    turns = rng.standard_normal((12, 40)) * 0.35
    speeds = rng.uniform(0.5, 1.0, size=12)
    inside_frac = [0.0, 0.3, 0.6, 0.8][grade]
    for k in range(min(n_vessels, 12)):
        rr = 0.6 if (k / max(n_vessels, 1)) < inside_frac else 1.15
        px_ = cx + starts[k, 0] * a * rr
        py_ = cy + starts[k, 1] * b * rr
        hd = headings[k]
        steps = 6 + 6 * grade
        for t in range(min(steps, 40)):
            hd += turns[k, t]
            px_ += 0.35 * math.cos(hd)
            py_ += 0.35 * math.sin(hd)
            i, j = int(round(py_ / s)), int(round(px_ / s + (nx - 1) / 2))
            if 0 <= i < ny and 0 <= j < nx:
                flow[i, j] = max(flow[i, j], speeds[k])
    flow = ndi.grey_dilation(flow, size=(3, 3))
    flow = ndi.gaussian_filter(flow, 0.6)
    # colour pixels (flow, 140-255) over the B-mode at half brightness (<= 128), as a grey-scale image
    colour = np.where(flow > 0.05, 140 + 115 * flow / max(float(flow.max()), 1e-9), 0.0)
    images["doppler"] = np.maximum(images["US"] // 2, np.round(colour).astype(np.uint8))
    return {m: images[m] for m in modalities}, mask.astype(np.uint8)
