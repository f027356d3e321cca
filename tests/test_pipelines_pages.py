"""The appendix pages' table display (replicate.pipelines.pages.show)."""

import IPython.display
import pandas as pd

from replicate.pipelines.pages import show


def _shown(monkeypatch, *args):
    out = []
    monkeypatch.setattr(IPython.display, "display", out.append)
    show(*args)
    assert len(out) == 1
    return out[0]


def test_show_renders_a_left_aligned_table_without_index_and_caption(monkeypatch):
    df = pd.DataFrame({"check": ["a", "b"], "value": [0.123456, None]}, index=["x", "y"])
    html = _shown(monkeypatch, df, "my caption").to_html()
    assert "my caption" in html and "text-align: left" in html
    assert "0.1235" in html and "0.123456" not in html  # 4 decimals, NaN blank
    assert ">x<" not in html  # the index is hidden
    assert "<caption>" not in _shown(monkeypatch, df).to_html()


def test_show_says_when_there_is_nothing_to_show(monkeypatch):
    for empty in (None, pd.DataFrame()):
        assert "nothing to show" in _shown(monkeypatch, empty).data
