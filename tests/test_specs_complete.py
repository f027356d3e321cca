"""Every chapter has a spec, it validates, and every row of the paper's results tables is transcribed.

The last part is checked against the spec's own ``tables`` list: a row counts as present when a
``reported`` entry (or a ``comparisons`` entry, for test rows such as "DLRN vs. DLRS") names that
table (or figure) and row in its ``where``. A chapter whose spec has not landed yet fails here on purpose.
"""

from __future__ import annotations

import pytest

from replicate.config import specs_dir
from replicate.spec import CHAPTER_IDS, load_spec


@pytest.mark.parametrize("cid", CHAPTER_IDS)
def test_chapter_has_a_spec(cid):
    assert (specs_dir() / f"{cid}.yaml").exists(), f"no spec for chapter {cid!r} yet"


def _existing():
    return [c for c in CHAPTER_IDS if (specs_dir() / f"{c}.yaml").exists()]


@pytest.mark.parametrize("cid", _existing())
def test_spec_validates(cid):
    spec = load_spec(cid)
    assert spec.id == cid and spec.reported


@pytest.mark.parametrize("cid", _existing())
def test_every_table_row_has_a_reported_entry(cid):
    spec = load_spec(cid)
    tables = spec.raw.get("tables", [])
    assert tables, f"{cid}: the spec lists no results tables"
    present = {
        ((e.get("where") or {}).get(key), (e.get("where") or {}).get("row"))
        for e in list(spec.reported) + list(spec.comparisons)
        for key in ("table", "figure")
    }
    missing = [f"{t['name']} / {row}" for t in tables for row in t["rows"] if (t["name"], row) not in present]
    assert not missing, f"{cid}: table rows without a reported entry: {missing}"
