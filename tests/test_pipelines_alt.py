"""replicate.pipelines.alt: the functions with logic of their own (the rest runs in the chapter's notebook)."""

import functools
import pickle
from types import SimpleNamespace

import pytest

from replicate.pipelines.alt import AltRun, make_automl, profile_count
from replicate.results import ChapterResults
from replicate.spec import load_spec

SPEC = load_spec("alt")


def test_profile_count_prefers_the_parameter_then_the_profile_then_the_fallback():
    counts = {"run_n_top": 5, "n_top": 100, "n_splits": 10}
    assert profile_count(7, counts, "run_n_top", "n_top") == 7
    assert profile_count(None, counts, "run_n_top", "n_top") == 5
    assert profile_count(None, {"n_top": 100}, "run_n_top", "n_top") == 100
    assert profile_count(None, {}, "seed_reruns", default=1) == 1
    assert profile_count("3", counts, "n_splits") == 3  # a papermill -p value arrives as a string
    with pytest.raises(KeyError):
        profile_count(None, {}, "n_splits")


def test_record_routes_an_unknown_cohort_to_validation_and_keeps_the_papers_pairing():
    res = ChapterResults(SPEC, data="synthetic", parameters={})
    stub = SimpleNamespace(results=res)
    row = AltRun.record(stub, "Imaging model", "external2", "AUC", 0.7, (0.6, 0.8))
    assert row["model"] == "Imaging model [external2]" and row["cohort"] == "validation"
    assert row["reported"] == SPEC.find_reported("Imaging model", "external2", "AUC")["value"]
    known = AltRun.record(stub, "Imaging model", "cv", "AUC", 0.8, (0.7, 0.9))
    assert known["model"] == "Imaging model" and known["cohort"] == "cv"


def test_the_model_factory_pickles_and_builds_the_chapters_search():
    make = functools.partial(make_automl, n_workflows=4, n_top=2, inner_cv=2, inner_test_size=0.15, scoring="f1")
    model = pickle.loads(pickle.dumps(make))(11)  # parallel splits send the factory to worker processes
    p = model.get_params()
    assert (p["n_workflows"], p["n_top"], p["inner_cv"], p["seed"], p["n_jobs"]) == (4, 2, 2, 11, 1)
