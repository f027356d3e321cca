"""replicate.pipelines.wdlps: the functions with logic of their own (the rest runs in the chapter's notebook)."""

from types import SimpleNamespace

import numpy as np

from replicate.pipelines.wdlps import REAL_MODEL, chance_verdict, fallbacks_taken


def test_chance_verdict_reads_both_lower_bounds():
    assert chance_verdict(0.6, 0.55, 3, False) == "better than chance in both estimates"
    assert chance_verdict(0.45, 0.2, 3, False) == "no better than chance could be shown at this size"
    assert "hold-out interval includes 0.5" in chance_verdict(0.6, 0.5, 3, False)
    assert "(from 2 repeats) is too wide" in chance_verdict(0.4, 0.7, 2, False)


def test_chance_verdict_without_a_cv_interval_cannot_say_and_names_a_null_run():
    # one repeat gives no cross-validated interval: never read as "above chance"
    assert chance_verdict(np.nan, 0.7, 1, False).startswith("better than chance on the hold-out")
    assert chance_verdict(0.6, 0.6, 3, True).endswith(
        "(this run permuted the diagnoses: chance is what it should show)"
    )


def _ev(fallbacks, n_fits):
    return SimpleNamespace(fallbacks=fallbacks, n_fits=n_fits)


def test_fallbacks_taken_sums_fits_over_the_models_that_took_them():
    evals = {f"m{i}": _ev({"no feature passed the ICC filter": 1}, 10) for i in range(6)}
    evals["clean"] = _ev({}, 10)
    evals["other"] = _ev({"one class in a fold": 2}, 4)
    lines = fallbacks_taken(evals)
    assert len(lines) == 2
    assert lines[0] == (
        "Fallback taken in this run: no feature passed the ICC filter (6 of 60 fits of m0, m1, m2, m3 and 2 more)."
    )
    assert lines[1] == "Fallback taken in this run: one class in a fold (2 of 4 fits of other)."
    assert fallbacks_taken({"clean": _ev({}, 3)}) == []


def test_the_real_patient_arm_has_a_name_of_its_own():
    from replicate.spec import load_spec

    assert REAL_MODEL not in {r["model"] for r in load_spec("wdlps").reported}
