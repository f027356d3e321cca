"""The papermill runner: parameters, results.json, failures, input hashing."""

from pathlib import Path

import nbformat
import pytest

from replicate import runner

FIX = Path(__file__).parent / "fixtures"


def _toy_notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seed = 0\nnull_labels = False\noutput_dir = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


GOOD = f"""
from replicate.results import ChapterResults
from replicate.spec import load_spec_file
res = ChapterResults(load_spec_file({str(FIX / "spec_toy.yaml")!r}), data="public",
                     parameters={{"seed": seed, "null_labels": null_labels}})
res.add_metric("Model", "validation", "AUC", 0.5 + seed / 100, (0.4, 0.6))
res.write(output_dir)
"""


@pytest.fixture
def nbdir(tmp_path, monkeypatch):
    d = tmp_path / "notebooks"
    d.mkdir()
    monkeypatch.setenv("REPLICATE_NOTEBOOKS_DIR", str(d))
    return d


def test_parse_parameters_types():
    assert runner.parse_parameters(["seed=3", "null_labels=true", "data=synthetic", "effect_size=0.5"]) == {
        "seed": 3,
        "null_labels": True,
        "data": "synthetic",
        "effect_size": 0.5,
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        runner.parse_parameters(["seed"])
    with pytest.raises(ValueError, match="identifier"):
        runner.parse_parameters(["not-a-name=1"])


def test_run_chapter_writes_results(nbdir, tmp_path):
    _toy_notebook(nbdir / "toy.ipynb", GOOD)
    out = tmp_path / "out"
    res = runner.run_chapter("toy", {"seed": 7, "null_labels": True}, out, progress=False)
    assert res["parameters"] == {"seed": 7, "null_labels": True}
    assert res["metrics"][0]["value"] == pytest.approx(0.57)
    assert (out / "toy.ipynb").exists()
    executed = nbformat.read(out / "toy.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_failing_chapter_names_the_error(nbdir, tmp_path):
    _toy_notebook(nbdir / "bad.ipynb", "raise ValueError('case STS_007: empty mask')")
    with pytest.raises(runner.ChapterError, match="bad.*ValueError: case STS_007: empty mask"):
        runner.run_chapter("bad", {}, tmp_path / "out", progress=False)


def test_chapter_without_results_is_an_error(nbdir, tmp_path):
    _toy_notebook(nbdir / "quiet.ipynb", "x = 1")
    with pytest.raises(runner.ChapterError, match="no results.json"):
        runner.run_chapter("quiet", {}, tmp_path / "out", progress=False)
    assert runner.run_chapter("quiet", {}, tmp_path / "out2", progress=False, require_results=False) == {}


def test_input_hash_tracks_notebook_and_parameters(nbdir):
    _toy_notebook(nbdir / "toy.ipynb", GOOD)
    lib = "fixed"
    h1 = runner.input_hash("toy", {"seed": 0}, lib)
    assert runner.input_hash("toy", {"seed": 0}, lib) == h1
    assert runner.input_hash("toy", {"seed": 1}, lib) != h1
    assert runner.input_hash("toy", {"seed": 0}, "changed") != h1
    _toy_notebook(nbdir / "toy.ipynb", GOOD + "\n# edited")
    assert runner.input_hash("toy", {"seed": 0}, lib) != h1


def test_missing_notebook():
    with pytest.raises(FileNotFoundError, match="no notebook for chapter 'nothing'"):
        runner.notebook_path("nothing")


TEXT_NOTEBOOK = f"""---
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A toy chapter

```{{code-cell}}
:tags: [parameters]

seed = 0
null_labels = False
output_dir = None
```

Some text between the cells.

```{{code-cell}}
{GOOD.strip()}
```
"""


@pytest.mark.slow
def test_text_notebook_is_converted_and_executed(nbdir, tmp_path):
    """Chapters are MyST Markdown text notebooks: the runner converts them (nothing written beside them)."""
    (nbdir / "toy.md").write_text(TEXT_NOTEBOOK)
    assert runner.notebook_path("toy").suffix == ".md"
    res = runner.run_chapter("toy", {"seed": 3}, tmp_path / "out", progress=False)
    assert res["metrics"][0]["value"] == pytest.approx(0.53)
    executed = nbformat.read(tmp_path / "out" / "toy.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert [c.id for c in executed.cells if c.cell_type == "markdown"][0].startswith("toy-")
    assert sorted(p.name for p in nbdir.iterdir()) == ["toy.md"]


def test_input_hash_is_the_text(nbdir):
    (nbdir / "toy.md").write_text(TEXT_NOTEBOOK)
    h1 = runner.input_hash("toy", {}, "lib")
    assert runner.input_hash("toy", {}, "lib") == h1
    (nbdir / "toy.md").write_text(TEXT_NOTEBOOK.replace("Some text", "Edited text"))
    assert runner.input_hash("toy", {}, "lib") != h1


def test_shipped_chapters_are_text_notebooks():
    from replicate.book import EXTRA_PAGES
    from replicate.config import notebooks_dir
    from replicate.spec import CHAPTER_IDS

    for cid in (*CHAPTER_IDS, *EXTRA_PAGES):
        assert runner.notebook_path(cid).suffix == ".md", cid
        nb = runner.read_notebook(runner.notebook_path(cid))
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{cid}: exactly one cell tagged 'parameters'"
    assert not list(notebooks_dir().glob("*.ipynb")), "no committed .ipynb: the text notebook is the source"
    assert not (notebooks_dir() / "build").exists()


@pytest.mark.slow
def test_a_chapter_depends_only_on_the_modules_it_imports():
    from replicate.config import PACKAGE_DIR
    from replicate.runner import chapter_dependencies

    names = {
        cid: {str(p.relative_to(PACKAGE_DIR)) for p in chapter_dependencies(cid) if p.is_relative_to(PACKAGE_DIR)}
        for cid in ("sts", "alt", "us")
    }
    assert "dlrn.py" in names["sts"] and "dlrn.py" not in names["alt"]
    assert "automl.py" in names["alt"] and "automl.py" not in names["sts"]
    assert "fusion.py" in names["us"] and "automl.py" not in names["us"]
    deps = [p.name for p in chapter_dependencies("us")]
    assert "null_us.json" in deps and "null_sts.json" not in deps  # the chapter's stored chance section
    for cid, files in names.items():  # shared layers and the chapter's own spec, never another's spec
        assert {"results.py", "chapter.py", "spec.py", "specs/schema.yaml", f"specs/{cid}.yaml"} <= files
        assert not ({"specs/sts.yaml", "specs/alt.yaml", "specs/us.yaml"} - {f"specs/{cid}.yaml"}) & files
        assert not ({"specs/schema/sts.yaml", "specs/schema/alt.yaml"} - {f"specs/schema/{cid}.yaml"}) & files


@pytest.mark.slow
def test_editing_one_pipeline_module_reruns_only_its_chapters(monkeypatch):
    real = runner._file_digest
    before = {cid: runner.input_hash(cid, {}) for cid in ("sts", "rls", "alt", "us")}
    monkeypatch.setattr(runner, "_file_digest", lambda p: real(p) + ("edited" if p.name == "automl.py" else ""))
    after = {cid: runner.input_hash(cid, {}) for cid in ("sts", "rls", "alt", "us")}
    assert [cid for cid in before if before[cid] != after[cid]] == ["alt"]
    monkeypatch.setattr(runner, "_file_digest", lambda p: real(p) + ("edited" if p.name == "results.py" else ""))
    assert all(runner.input_hash(cid, {}) != before[cid] for cid in before)  # a shared layer re-runs all


def test_tests_never_write_into_the_users_data_cache():
    from replicate.config import data_dir, repo_root

    assert data_dir() != repo_root() / "data" / "cache"
