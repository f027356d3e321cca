"""Shared by the notebook build scripts: collect markdown/code cells, write the notebook (no outputs)."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells: list = []


def md(text: str) -> None:
    cells.append(new_markdown_cell(text.strip("\n")))


def code(text: str, tags: list[str] | None = None) -> None:
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = tags
    cells.append(cell)


def write(out: Path) -> None:
    """Write the collected cells to ``out`` with the project's ``replicate`` kernel."""
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "replicate", "display_name": "replicate (.venv)", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.write(nb, out)
    print(f"wrote {out}")
