"""Deep features on CPU: one pass per backbone, batches, explicit threads, crops read once, against the code before.

    .venv/bin/python benchmarks/bench_deep.py [--n-cases 24] [--repeat 3] [--threads 1 2] [--baseline-ref 5b23965]

On a synthetic cohort (``make_cohort("wdlps")``, T1, the first ``n_cases`` patients; cache off) it times

(a) the wdlps pattern: ResNet50 at four layers (``last_conv`` and the paper's three earlier
    layers), i.e. the baseline's four ``extract_deep`` calls against one ``extract_deep_layers`` pass;
(b) the sts pattern: ResNet34 ``last_conv``, the baseline's ``extract_deep`` against ours (both in
    batches of 16; ours sets the threads explicitly), and ours with one crop per forward pass (batch 1);
(c) two backbones over the same cases (ResNet18 then ResNet34): ours reads and crops each case once;

each at every ``--threads`` value (torch intra-op threads, set for both sides), the fastest of
``--repeat`` runs (the machine's load varies). The baseline is ``src/replicate/features/deep.py`` at
``--baseline-ref`` (the commit before this work), loaded from git. Every row checks that both sides
give the same features: ``max_rel_diff`` = max |ours - baseline| / max |baseline|.
``run()`` returns rows for ``benchmarks/run_all.py``; ``ratio`` = baseline / ours (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WDLPS_LAYERS = ("last_conv", "layer1", "layer2", "layer3")


def load_baseline(ref: str):
    """``replicate.features.deep`` as it was at git ``ref`` (imported as a sibling module)."""
    src = subprocess.run(
        ["git", "show", f"{ref}:src/replicate/features/deep.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "deep_baseline.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("replicate.features._deep_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def cohort_cases(n: int):
    from replicate.data.synthetic import make_cohort

    return make_cohort("wdlps", seed=0).cases("T1")[:n]


def _best(fn, repeat: int):
    """Fastest of ``repeat`` runs, each from cold memos (networks built, cases read and cropped)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        for memo in _memos():
            memo.clear()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _memos():
    from replicate.features import deep

    base = sys.modules.get("replicate.features._deep_baseline")
    out = [deep._CROPS]
    if base is not None:
        out.append(base._MODEL_MEMO)
    out.append(deep._MODEL_MEMO)
    return out


def _rel_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) or 1.0))


def _rows_at(t, base, deep, cases, kw, base_kw, repeat, n_cases) -> list[dict]:
    """The four comparisons at ``t`` torch threads."""
    rows = []

    def old_wdlps():
        return {lay: base.extract_deep(cases, "resnet50", layer=lay, **base_kw) for lay in WDLPS_LAYERS}

    def new_wdlps():
        return deep.extract_deep_layers(cases, "resnet50", layers=WDLPS_LAYERS, threads=t, **kw)

    b_s, b = _best(old_wdlps, repeat)
    o_s, o = _best(new_wdlps, repeat)
    rows.append(
        {
            "name": f"ResNet50 at 4 layers (wdlps), {n_cases} cases, {t} thread(s): one pass vs 4 calls",
            "ours_s": round(o_s, 2),
            "naive_s": round(b_s, 2),
            "ratio": round(b_s / o_s, 2),
            "max_rel_diff": max(_rel_diff(o[lay].features, b[lay].features) for lay in WDLPS_LAYERS),
            "n_cases": n_cases,
            "threads": t,
        }
    )

    b_s, b = _best(lambda: base.extract_deep(cases, "resnet34", layer="last_conv", **base_kw), repeat)
    o_s, o = _best(lambda: deep.extract_deep(cases, "resnet34", layer="last_conv", threads=t, **kw), repeat)
    one_s, one = _best(
        lambda: deep.extract_deep(cases, "resnet34", layer="last_conv", threads=t, batch_size=1, **kw), repeat
    )
    rows.append(
        {
            "name": f"ResNet34 last_conv (sts), {n_cases} cases, {t} thread(s): ours vs baseline (both batch 16)",
            "ours_s": round(o_s, 2),
            "naive_s": round(b_s, 2),
            "ratio": round(b_s / o_s, 2),
            "max_rel_diff": _rel_diff(o.features, b.features),
            "n_cases": n_cases,
            "threads": t,
        }
    )
    rows.append(
        {
            "name": f"ResNet34 last_conv (sts), {n_cases} cases, {t} thread(s): batch 16 vs batch 1",
            "ours_s": round(o_s, 2),
            "naive_s": round(one_s, 2),
            "ratio": round(one_s / o_s, 2),
            "max_rel_diff": _rel_diff(o.features, one.features),
            "n_cases": n_cases,
            "threads": t,
        }
    )

    def old_two():
        return [base.extract_deep(cases, b_, layer="last_conv", **base_kw) for b_ in ("resnet18", "resnet34")]

    def new_two():
        return [deep.extract_deep(cases, b_, layer="last_conv", threads=t, **kw) for b_ in ("resnet18", "resnet34")]

    b_s, b = _best(old_two, repeat)
    o_s, o = _best(new_two, repeat)
    rows.append(
        {
            "name": f"ResNet18 + ResNet34 over the same {n_cases} cases, {t} thread(s): crops read once",
            "ours_s": round(o_s, 2),
            "naive_s": round(b_s, 2),
            "ratio": round(b_s / o_s, 2),
            "max_rel_diff": max(_rel_diff(x.features, y.features) for x, y in zip(o, b)),
            "n_cases": n_cases,
            "threads": t,
        }
    )
    return rows


def run(n_cases: int = 24, repeat: int = 3, threads=(1, 2), baseline_ref: str = "5b23965") -> list[dict]:
    import torch

    from replicate.features import deep

    base = load_baseline(baseline_ref)
    cases = cohort_cases(n_cases)
    kw = {"size": 224, "slices": "max_area", "weights": "untrained", "cache_dir": False, "progress": False}
    base_kw = {**kw, "weights": "auto"}
    if deep.find_weights("resnet50") is not None:  # keep both sides on the same (untrained) network
        raise SystemExit("ImageNet weights are on this machine; the baseline cannot be forced untrained")
    warnings.simplefilter("ignore", UserWarning)
    rows = []
    for t in threads:
        torch.set_num_threads(t)
        rows += _rows_at(t, base, deep, cases, kw, base_kw, repeat, n_cases)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-cases", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--baseline-ref", default="5b23965")
    a = ap.parse_args()
    import pandas as pd

    df = pd.DataFrame(run(a.n_cases, a.repeat, a.threads, a.baseline_ref))
    print(df.to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
