"""The built book opens in headless Chromium: every page loads, images render, internal links resolve."""

import shutil
from pathlib import Path

import matplotlib
import nbformat
import pytest

from replicate import book
from replicate.book_check import check_book

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]


def _executed_chapter_with_figure(out: Path, cid: str) -> None:
    import base64
    import io

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"image/png": base64.b64encode(buf.getvalue()).decode(), "text/plain": "<Figure>"}
        )
    ]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {cid}\n\nSee the [summary](summary.md)."), cell]
    out.mkdir(parents=True)
    nbformat.write(nb, out / f"{cid}.ipynb")
    (out / "results.json").write_text(
        f'{{"chapter": "{cid}", "paper": "p", "data": "synthetic", "parameters": {{}},'
        ' "cohorts": [], "metrics": [], "verdict_counts": {}, "deviations": [],'
        ' "provenance": {}}'
    )


@pytest.mark.slow
def test_built_book_pages_load_in_chromium(tmp_path, monkeypatch):
    d = tmp_path / "book"
    d.mkdir()
    for name in ("_config.yml", "_toc.yml", "intro.md", "chapters.yaml"):
        shutil.copy(ROOT / "book" / name, d / name)
    monkeypatch.setenv("REPLICATE_BOOK_DIR", str(d))
    _executed_chapter_with_figure(d / "_executed" / "sts", "sts")
    book.assemble({"sts": {"state": "ok"}})
    html = book.build_html()
    problems = check_book(html)
    assert problems == []
    # the check is not blind: a missing image and a broken link are found
    page = html / "chapters" / "sts.html"
    text = page.read_text()
    page.write_text(text.replace("</main>", '<img src="nowhere.png"><a href="missing.html">x</a></main>', 1))
    problems = check_book(html)
    assert any("image does not render" in p for p in problems)
    assert any("broken link" in p for p in problems)
