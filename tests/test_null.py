"""The null-distribution framework: collection over seeds, the centring check, storage, the figure."""

import numpy as np

from replicate import null
from replicate.plots import null_distribution_plot


def _one_seed(bias):
    def run(seed):
        rng = np.random.default_rng(seed)
        return {
            "A": {
                "cohort": "cv",
                "auc": 0.5 + bias + rng.normal(0, 0.07),
                "se": 0.07,
                "n_positive": 19,
                "n_negative": 32,
            },
            "B": {"cohort": "cv", "auc": 0.5 + rng.normal(0, 0.07), "se": 0.07},
        }

    return run


def test_centred_models_pass_and_a_leak_is_caught(tmp_path):
    fair = null.run_null("toy", _one_seed(0.0), range(200), data="synthetic", progress=False)
    assert null.check_centred(fair) == {}
    s = fair.summary()["A"]
    assert s["n_seeds"] == 200 and abs(s["sd"] - 0.07) < 0.015 and abs(s["delong_sd"] - 0.07) < 1e-12
    leaky = null.run_null("toy", _one_seed(0.05), range(200), data="synthetic", progress=False)
    assert set(null.check_centred(leaky)) == {"A"}
    path = null.save(fair, tmp_path / "null_toy.json")
    back = null.load(path)
    assert back.models["A"]["aucs"] == fair.models["A"]["aucs"] and back.seeds == list(range(200))
    assert null.load(tmp_path / "missing.json") is None
    fig = null_distribution_plot(back)
    assert (
        "A (SD" in fig.axes[0].get_yticklabels()[-1].get_text()
        and "predicted 0.07" in fig.axes[0].get_yticklabels()[-1].get_text()
    )
