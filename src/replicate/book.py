"""Build the Jupyter Book: execute chapters (cached on their inputs), write summary/provenance, run jupyter-book.

``make book`` calls :func:`build`. A chapter is re-executed only when its
input hash (notebook, library code and data registries, its book parameters)
changed; otherwise the previous executed notebook and ``results.json`` are
reused. Chapters that have no notebook yet get a page saying so.

While a chapter runs, one status line per update says the section and library stage it is
in, its case / fold / split counter with the time that stage has left, and the chapter's time
left from its previous run (``replicate.progress``); at the end a table gives the time per
chapter and stage. A chapter's stamp is written only when it finishes, so an interrupted
build resumes with the first chapter that did not finish (and that chapter finds the
features and split predictions it had already computed in the caches).

Before the chapters run, the verified feature release (``data/release/features.tar.xz``,
``replicate.features.release``) is unpacked into the feature cache when present;
``from_images=True`` (``make book FROM=images``) ignores it, re-executes every chapter and
re-extracts every feature. ``scheduler`` (``make book SCHEDULER=tcp://host:8786``) sends
extraction and CV / random splits to a Dask cluster (``replicate.parallel``).
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

from . import progress as prog
from .config import repo_root
from .io import atomic_write_json, atomic_write_text
from .results import PROXY_VERDICTS, SAME_DATA_VERDICTS, count_verdicts, results_table, what_it_shows
from .runner import ChapterError, has_notebook, input_hash, library_hash, read_timings, run_chapter
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


class StatusLines:
    """``monitor`` of :func:`replicate.runner.run_chapter` for ``make book``: one line per update.

    A line goes out when the chapter enters another stage (at most one per ``min_gap`` seconds),
    when its counters moved and ``interval`` seconds passed, and at least every ``heartbeat``
    seconds; e.g. ``[book 1/7] sts | notebook > Features > PyRadiomics sts | 31/51 cases, 40s left |
    elapsed 2m10s, about 6m left (last run 8m20s)``.
    """

    def __init__(self, label: str, log=print, interval: float = 10.0, min_gap: float = 2.0, heartbeat: float = 60.0):
        self.label, self.log = label, log
        self.interval, self.min_gap, self.heartbeat = interval, min_gap, heartbeat
        self.last_line = 0.0
        self.last_stage: str | None = None

    def __call__(self, state: prog.ProgressState, events: list[dict]) -> None:
        now = time.time()
        since = now - self.last_line
        if state.stage is None and state.t0 is not None:
            return  # between the notebook's end and the "done" line the build prints
        moved = state.stage != self.last_stage
        if (moved and since >= self.min_gap) or (events and since >= self.interval) or since >= self.heartbeat:
            self.log(f"{self.label} | {state.line(now)}")
            self.last_line, self.last_stage = now, state.stage


def execute_chapters(
    only: list[str] | None = None, force: bool = False, log=print, follow: bool = True, record: dict | None = None
) -> dict[str, dict]:
    """Run every chapter notebook that exists (cached). Returns id -> status dict.

    ``follow``: status lines while a chapter runs (:class:`StatusLines`) instead of papermill's
    cell bar. ``record``: fields added to the stamp of every chapter executed now (e.g. where its
    features came from). A chapter's ``stamp.json`` is removed before it runs and written when it ends, so an
    interrupted build re-runs that chapter, and only the chapters after it, next time.
    """
    params_all = book_parameters()
    status: dict[str, dict] = {}
    todo = [c for c in list(CHAPTER_IDS) + list(EXTRA_PAGES) if not only or c in only]
    for k, cid in enumerate(todo, 1):
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
        label = f"[book {k}/{len(todo)}] {cid}"
        last = read_timings(out).get("total")
        log(
            f"{label}: executing with {params or 'defaults'}"
            + (f" (last run {prog.fmt_seconds(last)})" if last else "")
            + " ..."
        )
        stamp.unlink(missing_ok=True)  # written again only when this run ends
        t0 = time.perf_counter()
        try:
            run_chapter(
                cid,
                params,
                out,
                progress=not follow,
                require_results=cid in CHAPTER_IDS,
                monitor=StatusLines(label, log) if follow else None,
            )
            st = {
                "state": "ok",
                "input_hash": h,
                "parameters": params,
                "seconds": round(time.perf_counter() - t0, 1),
                **(record or {}),
            }
            log(f"{label}: done in {prog.fmt_seconds(st['seconds'])}")
        except (ChapterError, Exception) as exc:  # the book still builds; the page says what failed
            st = {
                "state": "failed",
                "input_hash": h,
                "parameters": params,
                "error": str(exc),
                "seconds": round(time.perf_counter() - t0, 1),
                **(record or {}),
            }
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
        rows_out.append(
            f"| [{cid}]({cid}.ipynb) | {title} | {res['data']} | "
            + " / ".join(str(vc[v]) for v in SAME_DATA_VERDICTS)
            + f" | {proxy} | {vc['not comparable']} |"
        )
        table = results_table([m for m in res["metrics"] if m.get("reported") is not None])
        fig = f"![forest plot of {cid}]({figures[cid]})\n\n" if cid in figures else ""
        sections.append(
            f"## {cid}: {title}\n\nData: **{res['data']}**. {what_it_shows(res)}\n\n{fig}"
            f"Evidence: the [chapter page]({cid}.ipynb).\n\n" + table.to_markdown(index=False) + "\n"
        )
    headline = (
        f"**Verdicts on the same data as the paper: {same['reproduced']} reproduced, "
        f"{same['not reproduced']} not reproduced, {same['inconclusive']} inconclusive**"
        + (f" (from {', '.join(same_from)})." if same_from else ".")
    )
    lines = [
        "# Summary: reported vs reproduced",
        "",
        headline + " A verdict is given only where we estimate the same quantity on the same patients and "
        "design as the paper, by an equivalence test with a margin declared before the run. Everywhere else "
        "the chapters run on proxies (other patients, modality or disease) or on synthetic twins: there a "
        "pair shows the difference from the paper with its interval and the smallest difference the proxy "
        "could detect, and a contrast word (*consistent / lower / higher on proxy*) that is never counted "
        "as a reproduction. A reported number a chapter could not compute, or cannot compare (another "
        "prevalence, an untrained CNN against an ImageNet one), is *not comparable*.",
        "",
        "| chapter | paper | data | same data: reproduced / not reproduced / inconclusive | proxy contrasts "
        "| not comparable |",
        "| --- | --- | --- | --- | --- | ---: |",
        *rows_out,
        "",
    ]
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
        if "features" in st:
            lines.append(f"- features: {st['features']}")
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
        return (
            f"# {title}\n\n```{{error}}\nThis chapter failed to execute in this build:\n\n"
            f"{st.get('error', '')}\n```\n\nRun `replicate run {cid}` to reproduce the failure.\n"
        )
    return (
        f"# {title}\n\n```{{note}}\nThis chapter is not built yet: its notebook "
        f"`notebooks/{cid}.md` does not exist in this version of the project. Nothing on this page "
        f"is a result.\n```\n"
    )


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


def timing_rows(status: dict[str, dict], top: int = 6) -> list[dict]:
    """Time per chapter and stage: each chapter's total, its notebook sections, and its ``top`` longest
    library stages (from the ``timings.json`` of its run; a chapter reused from the cache shows its
    last run's, marked ``cached``)."""
    rows = []
    for cid, st in status.items():
        if st.get("state") == "missing":
            continue
        t = read_timings(book_dir() / "_executed" / cid)
        total = t.get("total", st.get("seconds"))
        state = "cached" if st.get("cached") else st.get("state", "?")
        rows.append({"chapter": cid, "state": state, "stage": "(total)", "seconds": total})
        for r in t.get("sections", []):
            rows.append(
                {"chapter": cid, "state": state, "stage": r["stage"].split(prog.SEP, 1)[1], "seconds": r["seconds"]}
            )
        for r in sorted(t.get("stages", []), key=lambda r: -r["seconds"])[:top]:
            extra = {k: r[k] for k in ("n_cached", "n_extracted", "count") if k in r}
            rows.append({"chapter": cid, "state": state, "stage": "  " + r["stage"], "seconds": r["seconds"], **extra})
    return rows


def format_timings(rows: list[dict]) -> str:
    """The final table of :func:`build`: chapter, state, stage, time (and cache hits / extractions)."""
    lines = [f"{'chapter':<8} {'state':<7} {'time':>8}  stage"]
    for r in rows:
        extra = ""
        if "n_extracted" in r:
            extra = f"  [{r.get('n_extracted', 0)} extracted, {r.get('n_cached', 0)} from cache]"
        elif r.get("count", 1) > 1:
            extra = f"  [x{r['count']}]"
        first = r["stage"] == "(total)"
        lines.append(
            f"{r['chapter'] if first else '':<8} {r['state'] if first else '':<7} "
            f"{prog.fmt_seconds(r['seconds']):>8}  {r['stage']}{extra}"
        )
    return "\n".join(lines)


def prepare_features(from_images: bool, log=print) -> dict:
    """Before the chapters run: unpack the verified feature release into the feature cache (when
    present), or with ``from_images`` set ``REPLICATE_FEATURE_FRESH_SINCE`` so that every feature
    entry, perturbed mask and deep vector older than now is extracted again. Returns what was done."""
    from .features import release

    if from_images:
        os.environ[release.FRESH_ENV] = repr(time.time())
        log("[book] FROM=images: the feature release is not used; every feature is extracted from the images")
        return {"features": "extracted from the images (FROM=images)"}
    archive = release.default_archive()
    if not archive.exists():
        log(f"[book] no feature release at {archive}: chapters extract their features (slow on a cold cache)")
        return {"features": "extracted (no feature release)"}
    try:
        summary = release.unpack_release(archive)
    except release.ReleaseError as exc:
        log(f"[book] feature release NOT used: {exc}")
        return {"features": f"extracted (release not used: {exc})"}
    n_new = sum(summary["unpacked"].values())
    n_old = sum(summary["present"].values())
    log(
        f"[book] feature release {archive.name} (sha256 {summary['archive_sha256'][:12]}): {n_new} entries "
        f"unpacked, {n_old} already in the cache ({summary['seconds']} s)"
        + "".join(f"; {k} entries skipped: {v}" for k, v in summary["skipped_reasons"].items())
    )
    return {"features": f"feature release {archive.name}, sha256 {summary['archive_sha256']}", "release": summary}


def build(
    only: list[str] | None = None,
    force: bool = False,
    html: bool = True,
    scheduler: str | None = None,
    from_images: bool = False,
) -> int:
    """Execute (cached), assemble and build the book. Returns a shell exit code (1 if a chapter failed).

    ``scheduler``: a Dask scheduler address for extraction and CV / random splits (every chapter's
    kernel gets ``REPLICATE_SCHEDULER``). ``from_images``: ignore the feature release and re-extract
    every feature (implies ``force``).
    """
    from .features.release import FRESH_ENV
    from .parallel import SCHEDULER_ENV, get_client

    t0 = time.perf_counter()
    saved = {k: os.environ.get(k) for k in (SCHEDULER_ENV, FRESH_ENV)}
    try:
        if scheduler:
            client = get_client(scheduler)  # fails now, clearly, if the cluster cannot be reached
            n_workers = len(client.scheduler_info().get("workers", {}))
            print(f"[book] Dask scheduler {scheduler}: {n_workers} worker(s)")
            os.environ[SCHEDULER_ENV] = scheduler
        features = prepare_features(from_images)
        status = execute_chapters(only=only, force=force or from_images, record={"features": features["features"]})
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    t_chapters = time.perf_counter() - t0
    rows = timing_rows(status)
    if only:  # keep the other chapters' last state
        for cid in list(CHAPTER_IDS) + list(EXTRA_PAGES):
            if cid not in status:
                stamp = book_dir() / "_executed" / cid / "stamp.json"
                status[cid] = json.loads(stamp.read_text()) if stamp.exists() else {"state": "missing"}
    t1 = time.perf_counter()
    assemble(status)
    if html:
        out = build_html()
        print(f"[book] HTML in {out} ({time.perf_counter() - t0:.0f} s)")
    t_html = time.perf_counter() - t1
    if rows:
        print(
            "[book] time per chapter and stage:\n"
            + format_timings(rows)
            + f"\n{'':<8} {'':<7} {prog.fmt_seconds(t_html):>8}  pages and HTML"
        )
    atomic_write_json(
        book_dir() / "_executed" / "timings.json",
        {
            "chapters_s": round(t_chapters, 1),
            "pages_html_s": round(t_html, 1),
            "rows": rows,
            "features": {k: v for k, v in features.items() if k != "release"}
            | ({"release_unpack_s": features["release"]["seconds"]} if "release" in features else {}),
            "scheduler": scheduler,
        },
    )
    failed = [c for c, s in status.items() if s.get("state") == "failed"]
    if failed:
        print(f"[book] chapters that failed: {failed}", file=sys.stderr)
        return 1
    return 0
