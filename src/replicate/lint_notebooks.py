"""Lint the chapter notebooks (MyST Markdown text notebooks): they parse, have one ``parameters`` cell,
no code cell longer than :data:`MAX_CELL_LINES`, and their code passes ruff.

    python -m replicate.lint_notebooks [notebooks/*.md]     # what `make lint` and pre-commit run
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from .config import notebooks_dir, repo_root

MAX_CELL_LINES = 30
# A notebook is read top to bottom: imports may follow prose (E402), and a cell's last expression is
# what the page shows (B018). IPython provides `display`.
RUFF_IGNORE = ["E402", "B018"]


def problems(path: Path, max_cell_lines: int = MAX_CELL_LINES) -> list[str]:
    """What is wrong with one text notebook (empty when nothing)."""
    import jupytext

    try:
        nb = jupytext.read(path, fmt="md:myst")
    except Exception as exc:  # noqa: BLE001 - any parse failure is the finding
        return [f"{path}: does not parse as a MyST notebook: {exc}"]
    out = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        out.append(f"{path}: {len(tagged)} code cells tagged 'parameters' (papermill needs exactly one)")
    for i, c in enumerate(code, 1):
        n = len(c.source.splitlines())
        if n > max_cell_lines:
            first = c.source.splitlines()[0][:60]
            out.append(f"{path}: code cell {i} has {n} lines (> {max_cell_lines}): {first!r} ...")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / f"{path.stem}.py"
        script.write_text(
            "\n\n".join(
                f"# %% cell {i}\n{c.source}"
                for i, c in enumerate(code, 1)
                if not c.source.lstrip().startswith(("%", "!"))
            )
            + "\n"
        )
        ruff = Path(sys.executable).with_name("ruff")
        res = subprocess.run(
            [
                str(ruff if ruff.exists() else "ruff"),
                "check",
                "--quiet",
                "--no-fix",
                "--config",
                str(repo_root() / "pyproject.toml"),
                "--config",
                "builtins = ['display']",
                "--extend-ignore",
                ",".join(RUFF_IGNORE),
                "--output-format",
                "concise",
                str(script),
            ],
            capture_output=True,
            text=True,
        )
        if res.returncode not in (0, 1):
            return out + [f"{path}: ruff failed: {res.stderr.strip()}"]
        out += [f"{path}: {line.replace(str(script) + ':', 'line ')}" for line in res.stdout.splitlines() if line]
    return out


def main(argv: list[str] | None = None) -> int:
    paths = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        paths = sorted(p for p in notebooks_dir().glob("*.md") if p.name != "README.md")
    found = [msg for p in paths for msg in problems(p)]
    for msg in found:
        print(msg)
    print(f"{len(paths)} notebooks, {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
