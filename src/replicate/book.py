"""Build the Jupyter Book: execute chapters (cached on their inputs), write summary/provenance, run jupyter-book.

``make book`` calls :func:`build`. A chapter is re-executed only when its
input hash (notebook, library code and data registries, its book parameters)
changed; otherwise the previous executed notebook and ``results.json`` are
reused. Chapters that have no notebook yet get a page saying so.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .config import repo_root
from .io import atomic_write_json, atomic_write_text
from .runner import ChapterError, has_notebook, input_hash, library_hash, run_chapter
from .results import PROXY_VERDICTS, SAME_DATA_VERDICTS, count_verdicts, results_table, what_it_shows
from .spec import CHAPTER_IDS, load_spec

EXTRA_PAGES = ("audit", "audit_quickstart", "ibsi")  # notebooks that are book pages but not paper chapters


def book_dir() -> Path:
    """The book's source folder (``REPLICATE_BOOK_DIR`` overrides, for tests)."""
    env = os.environ.get("REPLICATE_BOOK_DIR")
    return Path(env) if env else repo_root() / "book"


def book_parameters() -> dict[str, dict]:
    """Per-chapter parameters the book runs with (``book/chapters.yaml``)."""
    path = book_dir() / "chapters.yaml"
    return yaml.safe_load(path.read_text()) or {}


def _chapter_title(cid: str) -> str:
    try:
        return load_spec(cid).title
    except Exception:
        return cid


def execute_chapters(only: list[str] | None = None, force: bool = False, log=print) -> dict[str, dict]:
    """Run every chapter notebook that exists (cached). Returns id -> status dict."""
    params_all = book_parameters()
    status: dict[str, dict] = {}
    for cid in list(CHAPTER_IDS) + list(EXTRA_PAGES):
        if only and cid not in only:
            continue
        if not has_notebook(cid):
            status[cid] = {"state": "missing"}
            continue
        params = dict(params_all.get(cid, {}) or {})
        h = input_hash(cid, params, library_hash(cid))
        out = book_dir() / "_executed" / cid
        stamp = out / "stamp.json"
        executed = out / f"{cid}.ipynb"
        if not force and stamp.exists() and executed.exists():
            old = json.loads(stamp.read_text())
            if old.get("input_hash") == h and old.get("state") == "ok":
                log(f"[book] {cid}: unchanged, reusing executed notebook")
                status[cid] = {**old, "cached": True}
                continue
        log(f"[book] {cid}: executing with {params or 'defaults'} ...")
        t0 = time.perf_counter()
        try:
            run_chapter(cid, params, out, progress=True, require_results=cid in CHAPTER_IDS)
            st = {"state": "ok", "input_hash": h, "parameters": params,
                  "seconds": round(time.perf_counter() - t0, 1)}
        except (ChapterError, Exception) as exc:  # the book still builds; the page says what failed
            st = {"state": "failed", "input_hash": h, "parameters": params, "error": str(exc),
                  "seconds": round(time.perf_counter() - t0, 1)}
            log(f"[book] {cid}: FAILED: {exc}")
        atomic_write_json(stamp, st)
        status[cid] = st
    return status


def _results(cid: str) -> dict | None:
    path = book_dir() / "_executed" / cid / "results.json"
    return json.loads(path.read_text()) if path.exists() else None


def summary_markdown(status: dict[str, dict], figures: dict[str, str] | None = None) -> str:
    """The summary page: a headline that counts only same-data verdicts, then per chapter what its data can
    show (with its resolution), its forest plot (``figures``: id -> image path) and its table."""
    figures = figures or {}
    rows_out, sections = [], []
    same = dict.fromkeys(SAME_DATA_VERDICTS, 0)
    same_from = []
    for cid in CHAPTER_IDS:
        st = status.get(cid, {"state": "missing"})
        res = _results(cid) if st.get("state") == "ok" else None
        title = _chapter_title(cid)
        if res is None:
            state = {"missing": "not built yet", "failed": "execution failed"}.get(st.get("state"), st.get("state"))
            rows_out.append(f"| [{cid}]({cid}.md) | {title} | — | {state} | | | |")
            continue
        vc = count_verdicts(res["metrics"])
        for v in SAME_DATA_VERDICTS:
            same[v] += vc[v]
        if any(vc[v] for v in SAME_DATA_VERDICTS):
            same_from.append(cid)
        proxy = ", ".join(f"{vc[v]} {v.replace(' on proxy', '')}" for v in PROXY_VERDICTS if vc[v]) or "—"
        rows_out.append(f"| [{cid}]({cid}.ipynb) | {title} | {res['data']} | "
                        + " / ".join(str(vc[v]) for v in SAME_DATA_VERDICTS) + f" | {proxy} | {vc['not comparable']} |")
        table = results_table([m for m in res["metrics"] if m.get("reported") is not None])
        fig = f"![forest plot of {cid}]({figures[cid]})\n\n" if cid in figures else ""
        sections.append(f"## {cid}: {title}\n\nData: **{res['data']}**. {what_it_shows(res)}\n\n{fig}"
                        f"Evidence: the [chapter page]({cid}.ipynb).\n\n" + table.to_markdown(index=False) + "\n")
    headline = (f"**Verdicts on the same data as the paper: {same['reproduced']} reproduced, "
                f"{same['not reproduced']} not reproduced, {same['inconclusive']} inconclusive**"
                + (f" (from {', '.join(same_from)})." if same_from else "."))
    lines = ["# Summary: reported vs reproduced", "",
             headline + " A verdict is given only where we estimate the same quantity on the same patients and "
             "design as the paper, by an equivalence test with a margin declared before the run. Everywhere else "
             "the chapters run on proxies (other patients, modality or disease) or on synthetic twins: there a "
             "pair shows the difference from the paper with its interval and the smallest difference the proxy "
             "could detect, and a contrast word (*consistent / lower / higher on proxy*) that is never counted "
             "as a reproduction. A reported number a chapter could not compute, or cannot compare (another "
             "prevalence, an untrained CNN against an ImageNet one), is *not comparable*.", "",
             "| chapter | paper | data | same data: reproduced / not reproduced / inconclusive | proxy contrasts "
             "| not comparable |", "| --- | --- | --- | --- | --- | ---: |", *rows_out, ""]
    return "\n".join(lines + sections) + "\n"


def summary_figures(status: dict[str, dict], chapters: Path) -> dict[str, str]:
    """Draw each built chapter's forest plot for the summary page; returns id -> path relative to the page."""
    from .plots import forest_plot

    out = {}
    for cid in CHAPTER_IDS:
        res = _results(cid) if status.get(cid, {}).get("state") == "ok" else None
        if res is None:
            continue
        path = chapters / "figures" / "summary" / f"{cid}_forest.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig = forest_plot(res["metrics"], title=f"{cid}: reported vs reproduced ({res['data']} data)")
        fig.savefig(path, dpi=90, bbox_inches="tight")
        out[cid] = str(path.relative_to(chapters))
    return out


def provenance_markdown(status: dict[str, dict]) -> str:
    from .data.registry import DATASET_INFO  # citations of the public data

    lines = ["# Provenance", "", "What each chapter ran on, with which code and parameters, and how long it took.", ""]
    for cid in list(CHAPTER_IDS) + list(EXTRA_PAGES):
        st = status.get(cid, {"state": "missing"})
        lines.append(f"## {cid}")
        lines.append("")
        lines.append(f"- state: {st.get('state')}" + (" (reused from cache)" if st.get("cached") else ""))
        if "parameters" in st:
            lines.append(f"- book parameters: `{json.dumps(st['parameters'])}`")
        if "input_hash" in st:
            lines.append(f"- input hash: `{st['input_hash'][:16]}`")
        if "seconds" in st:
            lines.append(f"- execution time: {st['seconds']} s")
        res = _results(cid)
        if res and st.get("state") == "ok":
            prov = res.get("provenance", {})
            for key in ("git_commit", "runtime_s", "deep_weights", "data_files_sha256", "python", "machine"):
                if key in prov:
                    lines.append(f"- {key}: `{prov[key]}`")
            if "packages" in prov:
                lines.append("- packages: " + ", ".join(f"{k} {v}" for k, v in prov["packages"].items()))
        if st.get("state") == "failed":
            lines.append(f"- error: `{st.get('error', '')[:500]}`")
        lines.append("")
    lines += ["## Public data sets", ""]
    for name, ds in DATASET_INFO.items():
        lines.append(f"- **{name}**: {ds.citation} Licence: {ds.licence}")
    return "\n".join(lines) + "\n"


def placeholder_markdown(cid: str, st: dict) -> str:
    title = _chapter_title(cid)
    if st.get("state") == "failed":
        return (f"# {title}\n\n```{{error}}\nThis chapter failed to execute in this build:\n\n"
                f"{st.get('error', '')}\n```\n\nRun `replicate run {cid}` to reproduce the failure.\n")
    return (f"# {title}\n\n```{{note}}\nThis chapter is not built yet: its notebook "
            f"`notebooks/{cid}.md` does not exist in this version of the project. Nothing on this page "
            f"is a result.\n```\n")


def fold_code(executed: Path, dest: Path) -> None:
    """Copy an executed notebook for the reader's page with every code cell folded (``hide-input``:
    one click shows the code); outputs stay visible."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            tags = list(cell.metadata.get("tags", []))
            if "hide-input" not in tags and "remove-input" not in tags:
                cell.metadata["tags"] = tags + ["hide-input"]
    nbformat.write(nb, dest)


def assemble(status: dict[str, dict]) -> Path:
    """Write ``book/chapters/`` (executed notebooks or placeholder pages, summary, provenance)."""
    chapters = book_dir() / "chapters"
    if chapters.exists():
        shutil.rmtree(chapters)
    chapters.mkdir(parents=True)
    for cid in list(CHAPTER_IDS) + list(EXTRA_PAGES):
        st = status.get(cid, {"state": "missing"})
        executed = book_dir() / "_executed" / cid / f"{cid}.ipynb"
        if st.get("state") == "ok" and executed.exists():
            fold_code(executed, chapters / f"{cid}.ipynb")
            figs = executed.parent / "figures"
            if figs.exists():
                shutil.copytree(figs, chapters / "figures" / cid, dirs_exist_ok=True)
        else:
            atomic_write_text(chapters / f"{cid}.md", placeholder_markdown(cid, st))
    atomic_write_text(chapters / "summary.md", summary_markdown(status, summary_figures(status, chapters)))
    atomic_write_text(chapters / "provenance.md", provenance_markdown(status))
    return chapters


def build_html(strict: bool = False) -> Path:
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe), "build", str(book_dir()), "--builder", "html"]
    if strict:
        cmd.append("-W")
    subprocess.run(cmd, check=True)
    return book_dir() / "_build" / "html"


def build(only: list[str] | None = None, force: bool = False, html: bool = True) -> int:
    """Execute (cached), assemble and build the book. Returns a shell exit code (1 if a chapter failed)."""
    t0 = time.perf_counter()
    status = execute_chapters(only=only, force=force)
    if only:  # keep the other chapters' last state
        for cid in list(CHAPTER_IDS) + list(EXTRA_PAGES):
            if cid not in status:
                stamp = book_dir() / "_executed" / cid / "stamp.json"
                status[cid] = json.loads(stamp.read_text()) if stamp.exists() else {"state": "missing"}
    assemble(status)
    if html:
        out = build_html()
        print(f"[book] HTML in {out} ({time.perf_counter() - t0:.0f} s)")
    failed = [c for c, s in status.items() if s.get("state") == "failed"]
    if failed:
        print(f"[book] chapters that failed: {failed}", file=sys.stderr)
        return 1
    return 0
