"""The chapter-notebook linter: one parameters cell, short cells, ruff-clean code."""

from replicate.lint_notebooks import problems

HEAD = "---\nkernelspec:\n  name: python3\n  display_name: Python 3\n  language: python\n---\n\n"


def _nb(tmp_path, body):
    p = tmp_path / "toy.md"
    p.write_text(HEAD + body)
    return p


def test_a_clean_notebook_has_no_problems(tmp_path):
    p = _nb(
        tmp_path,
        "```{code-cell}\n:tags: [parameters]\n\nseed = 0\n```\n\n# Text\n\n"
        "```{code-cell}\nimport math\n\nmath.sqrt(seed)\n```\n",
    )
    assert problems(p) == []


def test_missing_parameters_long_cells_and_lint_errors_are_found(tmp_path):
    long_cell = "\n".join(f"x{i} = {i}" for i in range(31))
    p = _nb(tmp_path, f"```{{code-cell}}\nimport os\n{long_cell}\n```\n")
    found = "\n".join(problems(p, max_cell_lines=30))
    assert "0 code cells tagged 'parameters'" in found
    assert "code cell 1 has 32 lines (> 30)" in found
    assert "F401" in found  # `import os` unused
