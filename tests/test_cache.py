"""The one cache: content-addressed keys, atomic writes, exact round trips, corrupt entries recomputed."""

import numpy as np
import pandas as pd
import pytest

from replicate.cache import Store, content_key


def test_key_is_the_content(tmp_path):
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})
    s = Store("predictions/toy", root=tmp_path)
    assert s.path({"a": 1}).parent == tmp_path / "predictions" / "toy"


@pytest.mark.parametrize("fmt", ["json", "frame", "joblib"])
def test_round_trips_are_exact_and_computed_once(tmp_path, fmt):
    s = Store("toy", root=tmp_path)
    df = pd.DataFrame(
        {"p": np.random.default_rng(0).random(5), "y": [0, 1, 0, 1, 1]},
        index=pd.Index([f"P{i}" for i in range(5)], name="patient_id"),
    )
    obj = {"x": [0.1, 1 / 3], "n": 3} if fmt == "json" else df
    calls = []

    def compute():
        calls.append(1)
        return obj

    first = s.get_or_compute({"k": fmt}, compute, fmt=fmt)
    again = s.get_or_compute({"k": fmt}, compute, fmt=fmt)
    assert calls == [1]
    if fmt == "json":
        assert again == obj
    else:
        pd.testing.assert_frame_equal(again, df)
        assert (again["p"].to_numpy() == df["p"].to_numpy()).all()  # bit-exact floats
    assert first is obj
    assert not list(s.root.glob(".*.tmp")) and not list(s.root.glob(".*"))  # no temporary files left


def test_a_corrupt_entry_is_recomputed(tmp_path):
    s = Store("toy", root=tmp_path)
    s.save({"k": 1}, {"v": 1})
    s.path({"k": 1}).write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable entry"):
        assert s.get_or_compute({"k": 1}, lambda: {"v": 2}) == {"v": 2}
    assert s.load({"k": 1}) == {"v": 2}


def test_nifti_round_trip(tmp_path):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    img.SetSpacing((0.5, 0.7, 2.0))
    s = Store("masks/toy", root=tmp_path)
    s.save({"case": "A"}, img, fmt="nifti")
    back = s.load({"case": "A"}, fmt="nifti")
    assert back.GetSpacing() == pytest.approx((0.5, 0.7, 2.0))
    assert (sitk.GetArrayFromImage(back) == sitk.GetArrayFromImage(img)).all()
