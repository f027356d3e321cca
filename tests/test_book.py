"""The book: cached execution decisions, summary/provenance pages, placeholders, HTML build."""

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from replicate import book
from replicate.spec import CHAPTER_IDS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bookdir(tmp_path, monkeypatch):
    d = tmp_path / "book"
    d.mkdir()
    for name in ("_config.yml", "_toc.yml", "intro.md", "chapters.yaml"):
        shutil.copy(ROOT / "book" / name, d / name)
    monkeypatch.setenv("REPLICATE_BOOK_DIR", str(d))
    return d


def _fake_run(bookdir: Path, cid: str) -> None:
    out = bookdir / "_executed" / cid
    out.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# Chapter {cid}\n\nfake executed chapter"),
        nbformat.v4.new_code_cell("print('a result')"),
    ]
    nbformat.write(nb, out / f"{cid}.ipynb")
    res = {
        "chapter": cid,
        "paper": "Fake 2020",
        "data": "public",
        "parameters": {},
        "cohorts": [{"name": "validation", "n": 10, "n_positive": 4}],
        "metrics": [
            {
                "model": "M",
                "cohort": "validation",
                "metric": "AUC",
                "value": 0.71,
                "ci": [0.6, 0.8],
                "reported": 0.75,
                "reported_ci": [0.7, 0.8],
                "comparability": "same_data",
                "difference": -0.04,
                "difference_ci": [-0.06, -0.02],
                "resolution": 0.03,
                "verdict": "inconclusive",
                "rule": "r",
            },
            {
                "model": "M",
                "cohort": "validation",
                "metric": "SEN",
                "value": 0.4,
                "ci": [0.2, 0.6],
                "reported": 0.9,
                "reported_ci": None,
                "comparability": "proxy",
                "difference": -0.5,
                "difference_ci": [-0.7, -0.3],
                "resolution": 0.2,
                "verdict": "lower on proxy",
                "rule": "r",
            },
            {
                "model": "M",
                "cohort": "training",
                "metric": "AUC",
                "value": 0.9,
                "ci": [0.8, 1.0],
                "reported": 0.91,
                "reported_ci": [0.85, 0.97],
                "comparability": "same_data",
                "difference": -0.01,
                "difference_ci": [-0.02, 0.0],
                "resolution": 0.01,
                "verdict": "reproduced",
                "rule": "r",
            },
            {
                "model": "M",
                "cohort": "training",
                "metric": "AUC",
                "value": 0.9,
                "ci": [0.8, 1.0],
                "reported": 0.6,
                "reported_ci": None,
                "comparability": "same_data",
                "restatement_of": "x",
                "verdict": "not reproduced",
                "rule": "r",
            },
            {
                "model": "N",
                "cohort": "validation",
                "metric": "AUC",
                "value": 0.6,
                "ci": None,
                "reported": None,
                "reported_ci": None,
                "comparability": "none",
                "verdict": "not comparable",
                "rule": "r",
            },
        ],
        "comparability": {
            "level": "proxy",
            "reason": "fake proxy",
            "shows": "What the fake proxy shows.",
            "headline": {"model": "M", "cohort": "validation", "metric": "AUC"},
        },
        "deviations": ["fake"],
        "provenance": {"runtime_s": 1.0, "git_commit": "abc"},
    }
    (out / "results.json").write_text(json.dumps(res))


def test_summary_and_placeholders(bookdir):
    _fake_run(bookdir, "sts")
    status = {
        "sts": {"state": "ok", "parameters": {}, "input_hash": "0" * 64, "seconds": 1.0},
        "rls": {"state": "failed", "error": "ValueError: boom"},
    }
    chapters = book.assemble(status)
    summary = (chapters / "summary.md").read_text()
    assert "| [sts](sts.ipynb) |" in summary and "| 1 / 0 / 1 | 1 lower | 0 |" in summary
    # the headline counts same-data verdicts only (a restatement once, a proxy contrast never)
    assert "1 reproduced, 0 not reproduced, 1 inconclusive** (from sts)" in summary
    assert "What the fake proxy shows. Resolution: for M (validation), an AUC difference" in summary
    assert "0.750 [0.700, 0.800]" in summary and "0.710 [0.600, 0.800]" in summary
    assert "![forest plot of sts](figures/summary/sts_forest.png)" in summary
    assert (chapters / "figures" / "summary" / "sts_forest.png").stat().st_size > 5000
    assert "not built yet" in summary and "execution failed" in summary
    assert (chapters / "sts.ipynb").exists()
    page = nbformat.read(chapters / "sts.ipynb", as_version=4)
    assert all("hide-input" in c.metadata.get("tags", []) for c in page.cells if c.cell_type == "code")
    assert "not built yet" in (chapters / "us.md").read_text()
    assert "ValueError: boom" in (chapters / "rls.md").read_text()
    prov = (chapters / "provenance.md").read_text()
    assert "abc" in prov and "Public data sets" in prov
    for cid in CHAPTER_IDS:
        assert (chapters / f"{cid}.ipynb").exists() or (chapters / f"{cid}.md").exists()


def test_unchanged_chapter_is_not_re_executed(bookdir, monkeypatch, tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    monkeypatch.setenv("REPLICATE_NOTEBOOKS_DIR", str(nbs))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, nbs / "audit.ipynb")
    calls = []

    def fake_run(cid, params, out, **kw):
        calls.append(cid)
        Path(out).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(out) / f"{cid}.ipynb")
        return {}

    monkeypatch.setattr(book, "run_chapter", fake_run)
    monkeypatch.setattr(book, "library_hash", lambda *a: "lib")
    assert book.execute_chapters(log=lambda *_: None)["audit"]["state"] == "ok"
    assert book.execute_chapters(log=lambda *_: None)["audit"]["cached"] is True
    assert calls == ["audit"]
    (bookdir / "chapters.yaml").write_text("audit: {seed: 1}\n")  # a parameter change re-executes it
    book.execute_chapters(log=lambda *_: None)
    assert calls == ["audit", "audit"]


@pytest.mark.slow
def test_html_build(bookdir):
    _fake_run(bookdir, "sts")
    book.assemble({"sts": {"state": "ok"}})
    html = book.build_html()
    assert (html / "index.html").exists()
    assert (html / "chapters" / "summary.html").exists()
    assert (html / "chapters" / "sts.html").exists()
    assert "not built yet" in (html / "chapters" / "us.html").read_text()
