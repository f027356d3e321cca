"""The command line: data, spec, run, errors."""

import json
from pathlib import Path

import pytest

from replicate.cli import main
from replicate.spec import available_specs


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("data", "run", "features", "audit", "ibsi", "spec", "book"):
        assert cmd in out


def test_data_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("ibsi_sts", "busbra", "worc_lipo"):
        assert name in out


def test_unknown_dataset_is_a_clear_error(capsys):
    assert main(["data", "fetch", "no_such_data"]) == 2
    assert "no_such_data" in capsys.readouterr().err


def test_spec_validate_all(capsys):
    assert main(["spec", "validate"]) == 0
    out = capsys.readouterr().out
    for cid in available_specs():
        assert f"{cid}: valid" in out


def test_run_toy_chapter(tmp_path, monkeypatch, capsys):
    import nbformat

    nbs = tmp_path / "nb"
    nbs.mkdir()
    monkeypatch.setenv("REPLICATE_NOTEBOOKS_DIR", str(nbs))
    fix = Path(__file__).parent / "fixtures" / "spec_toy.yaml"
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("seed = 0\noutput_dir = None")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [
        p,
        nbformat.v4.new_code_cell(
            "from replicate.results import ChapterResults\nfrom replicate.spec import load_spec_file\n"
            f"r = ChapterResults(load_spec_file({str(fix)!r}), 'public', {{'seed': seed}})\n"
            "r.add_metric('Model', 'validation', 'AUC', 0.8, (0.7, 0.9))\nr.write(output_dir)"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbs / "toy.ipynb")
    out = tmp_path / "out"
    assert main(["run", "toy", "-p", "seed=4", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["parameters"] == {"seed": 4}
    assert main(["run", "nothing", "--out", str(out)]) == 2
    assert "no notebook for chapter 'nothing'" in capsys.readouterr().err
