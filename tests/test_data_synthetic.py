"""Synthetic twins: design validation, sizes, determinism, cache, effect size (0 = uninformative), survival."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from PIL import Image
from sklearn.metrics import roc_auc_score

from replicate.data import synthetic as S
from replicate.data.cohort import Cohort

ENTRIES = [
    {"split": "training", "centre": "A", "n": 12, "n_positive": 5},
    {"split": "validation", "centre": "B", "n": 8, "n_positive": 3},
    {"split": "validation", "centre": "C", "n": 6, "n_positive": 2},
]
CLINICAL = [
    {"name": "age", "type": "normal", "mean": [50, 60], "sd": [10, 10], "clip": [18, 90], "decimals": 0},
    {"name": "ldh", "type": "lognormal", "mean": [200, 300], "sd": [60, 90]},
    {"name": "sex", "type": "categorical", "levels": ["female", "male"], "p": [[0.6, 0.4], [0.3, 0.7]]},
    {"name": "grade", "type": "categorical", "levels": [1, 2, 3], "p": [[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]]},
]
SURVIVAL = [{"name": "os", "shape": 1.2, "median_days": 1200, "hazard_ratio": 3.0, "followup_days": [365, 1825]}]


def volume_design(**kw) -> dict:
    d = {
        "kind": "volume",
        "outcome": "lung_mets",
        "modalities": ["T1", "T2FS"],
        "tumour_style": "sarcoma",
        "cohorts": ENTRIES,
        "clinical": CLINICAL,
        "survival": SURVIVAL,
        "centres": {"B": {"scale": 1.2, "offset": 0.05, "noise": 0.05, "blur": 0.5, "spacing": [0.8, 0.8, 3.5]}},
    }
    d.update(kw)
    used = {c["centre"] for c in d["cohorts"]}
    d["centres"] = {k: v for k, v in d["centres"].items() if k in used}
    return d


def us_design(n=40, n_pos=20, **kw) -> dict:
    d = {
        "kind": "ultrasound",
        "outcome": "malignant",
        "modalities": ["US", "doppler"],
        "cohorts": [{"split": "training", "centre": "H1", "n": n, "n_positive": n_pos}],
        "clinical": CLINICAL[:2],
    }
    d.update(kw)
    return d


def docstring_designs() -> list[dict]:
    out = []
    for block in S.__doc__.split(".. code-block:: yaml")[1:]:
        lines = []
        for ln in block.split("\n")[1:]:
            if ln.strip() and not ln.startswith("    "):
                break
            lines.append(ln[4:])
        out.append(yaml.safe_load("\n".join(lines))["synthetic"])
    return out


@pytest.fixture(scope="module")
def vol(tmp_path_factory) -> Cohort:
    return S.make_cohort(volume_design(), seed=3, cache_dir=tmp_path_factory.mktemp("syn"))


@pytest.fixture(scope="module")
def us(tmp_path_factory) -> Cohort:
    return S.make_cohort(us_design(), seed=3, cache_dir=tmp_path_factory.mktemp("syn"))


def tumour_stats(cohort: Cohort, modality: str) -> pd.DataFrame:
    rows = []
    for case in cohort.cases(modality):
        img = S.load_image(case.image).astype(float)
        m = S.load_image(case.mask) > 0
        rows.append({"mean": img[m].mean(), "sd": img[m].std(), "size": m.sum()})
    return pd.DataFrame(rows, index=cohort.table.index)


def auc(y, x) -> float:
    return float(roc_auc_score(np.asarray(y), np.asarray(x, dtype=float)))


# ----------------------------------------------------------------------------- design


def test_docstring_examples_are_valid_designs():
    designs = docstring_designs()
    assert [d["kind"] for d in designs] == ["volume", "ultrasound"]
    for d in designs:
        nd = S.normalize_design(d)
        assert S.normalize_design(nd) == nd  # normalising is idempotent
    liang = S.normalize_design(designs[0])
    assert [(c["split"], c["n"], c["n_positive"]) for c in liang["cohorts"]] == [
        ("training", 116, 20),
        ("validation", 70, 10),
        ("validation", 56, 9),
    ]
    assert liang["centres"]["Jinan"]["spacing"] == [0.8, 0.8, 3.5]
    assert liang["image"]["necrosis"]["mean"] == [0.0, 0.5]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kind": "mri"}, "kind"),
        ({"colour": 1}, "unknown key 'colour' in the top level"),
        ({"modalities": ["T1", "FLAIR3"]}, "unknown modality"),
        ({"tumour_style": "breast"}, "tumour_style"),
        ({"cohorts": [{"split": "test", "centre": "A", "n": 10, "n_positive": 2}]}, "split"),
        ({"cohorts": [{"split": "training", "centre": "A", "n": 10, "n_positive": 12}]}, "n_positive"),
        (
            {"clinical": [{"name": "sex", "type": "categorical", "levels": ["f", "m"], "p": [[0.5, 0.2], [0.5, 0.5]]}]},
            "sum",
        ),
        ({"clinical": [{"name": "age", "type": "weird"}]}, "type"),
        ({"image": {"septa_mm": [1, 2]}}, "unknown key 'septa_mm' in image"),
        ({"centres": {"Z": {"scale": 1}}}, "not used"),
        ({"survival": [{"name": "os", "hazard_ratio": 0}]}, "survival/0/hazard_ratio"),
        ({"clinical": [{"name": "tumour_diameter_mm", "type": "normal", "mean": 1, "sd": 1}]}, "semantic"),
    ],
)
def test_bad_designs_are_refused_with_the_key(change, message):
    with pytest.raises(S.DesignError, match=message):
        d = volume_design()
        d.update(change)
        S.normalize_design(d)


def test_a_typo_in_a_design_names_the_key_and_a_close_one():
    d = volume_design()
    d["centres"]["B"]["noize"] = d["centres"]["B"].pop("noise")
    with pytest.raises(
        S.DesignError, match=re.escape("synthetic design: unknown key 'noize' in centres/B (did you mean 'noise'?)")
    ):
        S.normalize_design(d)
    with pytest.raises(S.DesignError, match=re.escape("unknown key 'sdd' in image/necrosis (did you mean 'sd'?)")):
        S.normalize_design(volume_design(image={"necrosis": {"mean": [0.1, 0.4], "sdd": 0.1}}))
    with pytest.raises(S.DesignError, match=re.escape("unknown key 'mean' in clinical/0")):
        S.normalize_design(
            volume_design(
                clinical=[{"name": "sex", "type": "categorical", "levels": ["f", "m"], "p": [0.5, 0.5], "mean": 1}]
            )
        )


def test_the_schemas_defaults_are_filled_in():
    d = S.normalize_design(
        {
            "kind": "volume",
            "outcome": "y",
            "modalities": ["T1"],
            "cohorts": [{"split": "training", "n": 20, "n_negative": 12}],
            "clinical": [{"name": "age", "mean": 50, "sd": 10}],
            "survival": [{"name": "os"}],
        }
    )
    assert d["tumour_style"] == "sarcoma" and d["image_effect"] == 1.0 and d["id_prefix"] == "SYN"
    assert d["semantic"] is True and d["intensities"] == {}
    assert d["cohorts"] == [{"split": "training", "centre": "centre", "n": 20, "n_positive": 8}]
    assert d["geometry"] == {
        "shape": [64, 64, 24],
        "spacing": [1.0, 1.0, 3.0],
        "tumour_diameter_mm": {"mean": [30.0, 38.0], "sd": [7.0, 9.0]},
    }
    assert d["centres"] == {
        "centre": {"scale": 1.0, "offset": 0.0, "noise": 0.03, "blur": 0.0, "spacing": [1.0, 1.0, 3.0]}
    }
    assert d["clinical"] == [
        {"name": "age", "type": "normal", "mean": [50.0, 50.0], "sd": [10.0, 10.0], "effect": 1.0, "missing": 0.0}
    ]
    assert d["survival"] == [
        {
            "name": "os",
            "shape": 1.2,
            "median_days": 1500.0,
            "hazard_ratio": 2.0,
            "size_hazard_ratio": 1.0,
            "followup_days": [365.0, 1825.0],
            "dropout": 0.0,
            "effect": 1.0,
        }
    ]
    assert d["image"]["necrosis"] == {"mean": [0.10, 0.35], "sd": 0.22, "clip": [0.0, 0.8]}
    u = S.normalize_design(us_design())
    assert u["centres"]["H1"] == {
        "scale": 1.0,
        "offset": 0.0,
        "noise": 0.02,
        "blur": 0.0,
        "speckle": 1.0,
        "spacing": 0.3,
    }
    assert u["geometry"]["shape"] == [128, 128] and u["image"]["blood_flow_grade"][1] == [0.08, 0.22, 0.35, 0.35]


def test_the_schema_names_the_image_parameters_of_each_style():
    from replicate.spec import _registry

    defs = _registry().contents("schema/synthetic.yaml")["$defs"]
    for style, params in S.STYLE_PARAMS.items():
        assert set(defs[f"image_{style}"]["properties"]) - {"blood_flow_grade"} == set(params), style


@pytest.mark.parametrize("cid", ["sts", "rls", "alt", "wdlps", "us"])
def test_a_specs_twin_normalises_the_same_from_the_file_and_from_the_loaded_spec(cid):
    """Loading a spec fills in the schema's defaults; the twin (and its cache key) must not change."""
    from replicate.config import specs_dir
    from replicate.io import stable_hash
    from replicate.spec import load_spec

    raw = yaml.load((specs_dir() / f"{cid}.yaml").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    a, b = S.normalize_design(raw["synthetic"]), S.normalize_design(load_spec(cid).synthetic)
    assert a == b and stable_hash(a) == stable_hash(b)


def test_unknown_modality_with_intensities_like_a_known_one():
    d = S.normalize_design(
        volume_design(modalities=["T1", "FLAIR3"], intensities={"FLAIR3": {"like": "T2", "fat": 300}})
    )
    assert d["modalities"] == ["T1", "FLAIR3"]


# ----------------------------------------------------------------------------- sizes, columns, files


def test_sizes_class_counts_centres_and_columns(vol):
    t = vol.table
    assert len(vol) == 26 and vol.label == "lung_mets" and vol.modalities == ["T1", "T2FS"]
    assert list(t.index[:2]) == ["SYN0001", "SYN0002"] and t.index.name == "patient_id"
    got = t.groupby(["split", "centre"])["lung_mets"].agg(["size", "sum"])
    for e in ENTRIES:
        assert tuple(got.loc[(e["split"], e["centre"])]) == (e["n"], e["n_positive"])
    assert set(t["lung_mets"]) == {0, 1} and t["lung_mets"].dtype == np.int64
    for col in [
        "split",
        "centre",
        "age",
        "ldh",
        "sex",
        "grade",
        "os_time",
        "os_event",
        "tumour_diameter_mm",
        "necrosis",
        "image_T1",
        "image_T2FS",
        "mask_T1",
        "mask_T2FS",
    ]:
        assert col in t, col
    assert set(t["sex"]) <= {"female", "male"} and set(t["grade"]) <= {1, 2, 3}
    assert (t["age"] == t["age"].round()).all() and t["age"].between(18, 90).all()
    assert t["os_time"].dtype == np.int64 and (t["os_time"] >= 1).all() and set(t["os_event"]) <= {0, 1}
    assert vol.failures.empty and vol.summary()["centres"] == {"A": 12, "B": 8, "C": 6}
    assert vol.meta["counts"] == [dict(e) for e in ENTRIES]
    assert len(vol.cases("T1")) == 26


def test_nifti_files_have_the_centre_geometry_and_a_binary_tumour_mask(vol):
    t = vol.table
    for pid in [t.index[t.centre == "A"][0], t.index[t.centre == "B"][0]]:
        img = sitk.ReadImage(t.at[pid, "image_T1"])
        msk = sitk.ReadImage(t.at[pid, "mask_T1"])
        assert img.GetSize() == (64, 64, 24) and msk.GetSize() == (64, 64, 24)
        assert img.GetPixelID() == sitk.sitkInt16 and msk.GetPixelID() == sitk.sitkUInt8
        want = (1.0, 1.0, 3.0) if t.at[pid, "centre"] == "A" else (0.8, 0.8, 3.5)
        assert np.allclose(img.GetSpacing(), want) and np.allclose(msk.GetSpacing(), want)
        assert np.allclose(img.GetOrigin(), msk.GetOrigin())
        m = sitk.GetArrayFromImage(msk)
        assert set(np.unique(m)) == {0, 1}
        assert 0.02 < m.mean() < 0.6  # the tumour fills a decent part, not all
        assert t.at[pid, "mask_T1"] == t.at[pid, "mask_T2FS"]  # co-registered: one mask
    names = os.listdir(vol.meta["folder"])
    assert "cohort.json" in names and not [n for n in names if n.startswith(".")]  # no temporary files left
    assert len(names) == 1 + 3 * 26  # stamp + two images and one mask per patient


def test_ultrasound_png_files_like_busbra(us):
    t = us.table
    assert len(us) == 40 and int(t["malignant"].sum()) == 20
    pid = t.index[0]
    img, msk = Image.open(t.at[pid, "image_US"]), Image.open(t.at[pid, "mask_US"])
    assert img.mode == "L" and img.size == (128, 128) and msk.mode == "1"
    assert set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(t.at[pid, "mask_US"])))) == {0, 255}
    assert Image.open(t.at[pid, "image_doppler"]).mode == "L"
    for col in ["blood_flow_grade", "morphology_irregular", "boundary_unclear", "echo_uneven", "tumour_diameter_mm"]:
        assert col in t
    assert set(t["blood_flow_grade"]) <= {0, 1, 2, 3}
    # the Doppler map shows more flow at higher grades
    flow = [(np.asarray(Image.open(p)) > 128).sum() for p in t["image_doppler"]]
    g = t["blood_flow_grade"].to_numpy()
    assert np.mean(np.asarray(flow)[g >= 2]) > np.mean(np.asarray(flow)[g <= 1])
    assert us.meta["spacing"] == {"H1": 0.3}


def test_ct_phases_enhance_the_tumour(tmp_path):
    d = volume_design(
        modalities=["CT", "arterial", "venous", "delayed"], cohorts=[ENTRIES[0]], clinical=[], survival=[]
    )
    c = S.make_cohort(d, seed=1, n_patients=6, cache_dir=tmp_path)
    means = tumour_stats(c, "CT")["mean"]
    for phase in ["arterial", "venous", "delayed"]:
        assert (tumour_stats(c, phase)["mean"] > means + 15).all()


# ----------------------------------------------------------------------------- counts


def test_scale_counts_keeps_structure_and_balance():
    liang = [
        {"split": "training", "centre": "A", "n": 116, "n_positive": 20},
        {"split": "validation", "centre": "B", "n": 70, "n_positive": 10},
        {"split": "validation", "centre": "C", "n": 56, "n_positive": 9},
    ]
    got = S.scale_counts(liang, 60)
    assert sum(c["n"] for c in got) == 60 and [c["n"] for c in got] == [29, 17, 14]
    assert [c["n_positive"] for c in got] == [5, 3, 3]
    tiny = S.scale_counts(liang, 10)
    assert all(c["n_positive"] >= 3 and c["n"] - c["n_positive"] >= 3 for c in tiny)
    assert sum(c["n"] for c in tiny) == 18  # the minima exceed 10
    assert [(c["n"], c["n_positive"]) for c in S.scale_counts(liang, 30)] == [(14, 3), (9, 3), (7, 3)]
    assert [c["split"] for c in tiny] == ["training", "validation", "validation"]
    assert S.scale_counts(liang, None) == liang
    assert sum(c["n"] for c in S.scale_counts(liang, 484)) == 484
    with pytest.raises(ValueError):
        S.scale_counts(liang, 0)


def test_n_patients_rescales_the_cohort(tmp_path):
    d = S.normalize_design(docstring_designs()[1])  # ultrasound 516 / 78, balanced
    c = S.make_cohort(d, n_patients=30, cache_dir=tmp_path, seed=0)
    assert len(c) == 30
    got = c.table.groupby("split")["malignant"].agg(["size", "sum"])
    # 30 x 78 / 594 = 4 validation patients, raised to 3 per class, taken from training
    assert tuple(got.loc["training"]) == (24, 12) and tuple(got.loc["validation"]) == (6, 3)


# ----------------------------------------------------------------------------- determinism and cache


def test_same_arguments_give_identical_tables_and_arrays(tmp_path, vol):
    again = S.make_cohort(volume_design(), seed=3, cache_dir=tmp_path)  # a fresh folder: rendered again
    assert not again.meta["reused"]
    strip = lambda t: t.drop(columns=[c for c in t if c.startswith(("image_", "mask_"))])  # noqa: E731
    pd.testing.assert_frame_equal(strip(again.table), strip(vol.table))
    for col in ["image_T1", "image_T2FS", "mask_T1"]:
        for a, b in zip(again.table[col][:4], vol.table[col][:4]):
            x, y = S.load_image(a), S.load_image(b)
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    assert again.meta["files_sha256"] == vol.meta["files_sha256"]
    other = S.make_cohort(volume_design(), seed=4, cache_dir=tmp_path)
    assert not strip(other.table).equals(strip(vol.table))
    first = [S.load_image(t["image_T1"].iloc[0]).tobytes() for t in (other.table, vol.table)]
    assert first[0] != first[1]


def test_second_call_reuses_the_cache(tmp_path):
    d = us_design(n=10, n_pos=5)
    first = S.make_cohort(d, seed=0, cache_dir=tmp_path)
    files = list(first.table["image_US"]) + list(first.table["mask_US"])
    mtimes = [os.stat(p).st_mtime_ns for p in files]
    second = S.make_cohort(d, seed=0, cache_dir=tmp_path)
    assert not first.meta["reused"] and second.meta["reused"]
    assert list(second.table["image_US"]) == list(first.table["image_US"])
    assert [os.stat(p).st_mtime_ns for p in files] == mtimes
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1
    # other arguments -> another folder; a missing file -> rendered again
    S.make_cohort(d, seed=0, effect_size=0.5, cache_dir=tmp_path)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2
    os.unlink(files[0])
    third = S.make_cohort(d, seed=0, cache_dir=tmp_path)
    assert not third.meta["reused"] and os.path.exists(files[0])


def test_default_cache_is_under_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATE_DATA_DIR", str(tmp_path))
    c = S.make_cohort(us_design(n=6, n_pos=3, modalities=["US"]), seed=0)
    assert c.meta["folder"].startswith(str(tmp_path / "synthetic"))
    assert re.fullmatch(r"synthetic_malignant-[0-9a-f]{16}", c.meta["folder"].rsplit("/", 1)[1])


# ----------------------------------------------------------------------------- effect size


@pytest.mark.parametrize("style", ["sarcoma", "lipomatous", "breast"])
def test_effect_zero_draws_do_not_depend_on_the_label(style):
    kind = "ultrasound" if style == "breast" else "volume"
    d = S.normalize_design(
        {
            "kind": kind,
            "outcome": "y",
            "modalities": ["US"] if kind == "ultrasound" else ["T1"],
            "tumour_style": style,
            "cohorts": [{"split": "training", "centre": "A", "n": 50, "n_positive": 25}],
            "clinical": CLINICAL,
            "survival": SURVIVAL,
        }
    )
    y = np.array([0, 1] * 25)
    y2 = np.random.default_rng(0).permutation(y)
    for e, same in [(0.0, True), (1.0, False)]:
        a, b = S.draw_latents(d, y, 7, e), S.draw_latents(d, y2, 7, e)
        assert (
            a.drop(columns=["elongation", "angles", "offset"]).equals(
                b.drop(columns=["elongation", "angles", "offset"])
            )
            is same
        )
        assert S.draw_clinical(d, y, 7, e).equals(S.draw_clinical(d, y2, 7, e)) is same
        z = a["z_size"].to_numpy()
        assert S.draw_survival(d, y, z, 7, e).equals(S.draw_survival(d, y2, z, 7, e)) is same


@pytest.mark.slow
def test_effect_zero_images_and_covariates_are_uninformative(tmp_path):
    c = S.make_cohort(us_design(n=240, n_pos=120), seed=11, effect_size=0.0, cache_dir=tmp_path)
    st = tumour_stats(c, "US")
    y = c.y
    for name, x in [
        ("mean", st["mean"]),
        ("sd", st["sd"]),
        ("size", st["size"]),
        ("age", c.table.age),
        ("ldh", c.table.ldh),
        ("flow", c.table.blood_flow_grade),
    ]:
        assert abs(auc(y, x) - 0.5) < 0.15, name
    v = S.make_cohort(
        volume_design(modalities=["T1"], cohorts=[{"split": "training", "centre": "A", "n": 100, "n_positive": 50}]),
        seed=11,
        effect_size=0.0,
        cache_dir=tmp_path,
    )
    st = tumour_stats(v, "T1")
    for name in ["mean", "sd", "size"]:
        assert abs(auc(v.y, st[name]) - 0.5) < 0.15, name
    for name in ["age", "ldh", "os_time", "os_event"]:
        assert abs(auc(v.y, v.table[name]) - 0.5) < 0.15, name


@pytest.mark.slow
def test_strong_effect_is_clearly_separable(tmp_path):
    v = S.make_cohort(
        volume_design(modalities=["T1"], cohorts=[{"split": "training", "centre": "A", "n": 60, "n_positive": 30}]),
        seed=5,
        effect_size=2.0,
        cache_dir=tmp_path,
    )
    st = tumour_stats(v, "T1")
    assert auc(v.y, st["size"]) > 0.8 and auc(v.y, st["sd"]) > 0.8
    assert auc(v.y, v.table.age) > 0.8
    lip = S.make_cohort(
        volume_design(
            modalities=["T1"],
            tumour_style="lipomatous",
            cohorts=[{"split": "training", "centre": "A", "n": 60, "n_positive": 30}],
        ),
        seed=5,
        effect_size=2.0,
        cache_dir=tmp_path,
    )
    assert auc(lip.y, -tumour_stats(lip, "T1")["mean"]) > 0.8  # septa and nodules: darker than fat on T1
    u = S.make_cohort(us_design(n=60, n_pos=30), seed=5, effect_size=2.0, cache_dir=tmp_path)
    assert auc(u.y, tumour_stats(u, "US")["size"]) > 0.8
    assert auc(u.y, u.table.blood_flow_grade) > 0.8


# ----------------------------------------------------------------------------- survival


def test_weibull_times_positives_fail_earlier_when_effect_is_positive():
    d = S.normalize_design(
        volume_design(
            survival=[
                {
                    "name": "os",
                    "shape": 1.3,
                    "median_days": 1000,
                    "hazard_ratio": 3.0,
                    "followup_days": [700, 2500],
                    "dropout": 0.1,
                }
            ]
        )
    )
    y = np.array([0, 1] * 500)
    z = np.random.default_rng(1).standard_normal(len(y))
    s = S.draw_survival(d, y, z, 0, 1.0)
    pos, neg = s[y == 1], s[y == 0]
    assert pos.os_event.mean() > neg.os_event.mean() + 0.1
    assert pos.os_time.median() < neg.os_time.median()
    assert (s.os_time <= 2500).all() and set(s.os_event) == {0, 1}
    # no effect: same event rate in both classes
    s0 = S.draw_survival(d, y, z, 0, 0.0)
    assert abs(s0[y == 1].os_event.mean() - s0[y == 0].os_event.mean()) < 0.08
    # the hazard ratio is recovered (Weibull PH: log-rank like check via lifelines)
    from lifelines import CoxPHFitter

    df = pd.DataFrame({"t": s.os_time, "e": s.os_event, "y": y})
    hr = float(np.exp(CoxPHFitter().fit(df, "t", "e").params_["y"]))
    assert 2.2 < hr < 4.0
