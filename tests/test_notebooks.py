"""Every chapter notebook that exists runs end to end on quick synthetic data (so CI catches a broken
notebook), writes a results.json that follows the chapter contract, and passes the leakage canary."""

import json

import numpy as np
import pytest

from replicate.results import SAME_DATA_VERDICTS, VERDICTS, validate_results
from replicate.runner import has_notebook, run_chapter
from replicate.spec import CHAPTER_IDS, load_spec

# One xdist group per chapter: its runs share a worker (and the cached first run).
EXISTING = [
    pytest.param(cid, marks=pytest.mark.xdist_group(f"chapter-{cid}")) for cid in CHAPTER_IDS if has_notebook(cid)
]
QUICK = {"data": "synthetic", "profile": "quick", "seed": 0}


def check_contract(res: dict, cid: str) -> None:
    validate_results(res)  # the versioned results.json schema
    assert res["chapter"] == cid
    assert res["paper"] == load_spec(cid).citation
    assert res["data"] in ("public", "synthetic")
    for key in ("seed", "profile", "null_labels", "protocol"):
        assert key in res["parameters"], key
    assert res["cohorts"], "no cohorts"
    for c in res["cohorts"]:
        assert c["name"] in ("training", "validation", "cv") and c["n"] > 0
    assert res["metrics"], "no metrics"
    computed = [m for m in res["metrics"] if m["value"] is not None]
    assert computed, "no metric was computed"
    assert len(res["spec_sha256"]) == 64
    for m in res["metrics"]:
        assert {"model", "cohort", "metric", "value", "ci", "reported", "verdict", "rule", "comparability"} <= set(m)
        assert m["verdict"] in VERDICTS
        if m["verdict"] in SAME_DATA_VERDICTS:  # a verdict is a claim: same data only
            assert m["comparability"] == "same_data", m
        if m["comparability"] == "proxy" and m["metric"] == "AUC" and m["value"] is not None:
            assert m.get("difference") is not None and m.get("resolution") is not None, m
        if m["metric"] == "AUC" and m["value"] is not None:
            assert 0.0 <= m["value"] <= 1.0
    assert isinstance(res["deviations"], list) and res["deviations"], "a proxy always deviates: list how"
    prov = res["provenance"]
    assert "runtime_s" in prov and "packages" in prov


_RUNS: dict = {}


def quick_run(cid, tmp_path_factory):
    if cid not in _RUNS:
        out = tmp_path_factory.mktemp(f"{cid}_quick")
        _RUNS[cid] = (run_chapter(cid, dict(QUICK), out, progress=False), out)
    return _RUNS[cid]


def strip_timings(res: dict) -> dict:
    res = json.loads(json.dumps(res))
    res.pop("provenance", None)
    return res


@pytest.mark.slow
@pytest.mark.parametrize("cid", EXISTING)
def test_chapter_runs_quick_on_synthetic(cid, tmp_path_factory):
    res, out = quick_run(cid, tmp_path_factory)
    check_contract(res, cid)
    assert json.loads((out / "results.json").read_text())["chapter"] == cid
    # the page shows its plots: figures are rendered as images, not as "<Figure size ...>" text
    nb = json.loads((out / f"{cid}.ipynb").read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the executed notebook shows no figure"
    as_text = [
        o
        for o in outputs
        if "image/png" not in o.get("data", {})
        and "".join(o.get("data", {}).get("text/plain", "")).startswith("<Figure size")
    ]
    assert not as_text, "a figure was displayed as text"


@pytest.mark.slow
@pytest.mark.parametrize("cid", EXISTING)
def test_chapter_is_deterministic(cid, tmp_path_factory, tmp_path):
    """Same parameters, same numbers: two runs give identical results.json apart from provenance/timings."""
    first, _ = quick_run(cid, tmp_path_factory)
    second = run_chapter(cid, dict(QUICK), tmp_path / cid, progress=False)
    assert strip_timings(first) == strip_timings(second)


# Two independent permutations (seeds 0 and 1): one permutation of ~100 labels can correlate by chance with
# a real nuisance (e.g. tumour size, |r| ~ 0.25 about once in a hundred draws); the mean over permutations
# estimates the null expectation, while a leak lifts every permutation alike.
CANARY_SEEDS = (0, 1)


@pytest.mark.slow
@pytest.mark.parametrize("cid", EXISTING)
def test_leakage_canary_null_labels(cid, tmp_path):
    """Permuted outcome: every leak-free model's mean AUC over random splits must be 0.5 ± 0.1."""
    per_model: dict[str, list[float]] = {}
    for seed in CANARY_SEEDS:
        res = run_chapter(
            cid, dict(QUICK, seed=seed, null_labels=True, protocol="worc"), tmp_path / f"{cid}_{seed}", progress=False
        )
        aucs = [
            m
            for m in res["metrics"]
            if m["metric"] == "AUC" and m["cohort"] == "cv" and m["value"] is not None and m.get("leak_free", True)
        ]
        assert aucs, "protocol=worc must report the mean AUC of each leak-free model on cohort 'cv'"
        for m in aucs:
            per_model.setdefault(m["model"], []).append(m["value"])
    mean = {k: float(np.mean(v)) for k, v in per_model.items()}
    bad = {k: (round(mean[k], 3), [round(x, 3) for x in per_model[k]]) for k in mean if abs(mean[k] - 0.5) > 0.1}
    assert not bad, f"null-label AUC outside 0.5 ± 0.1 (leakage?): {bad}"
