"""Execute a chapter notebook with papermill and read back its ``results.json``.

``run_chapter`` is what ``replicate run ID -p key=value --out DIR`` calls. Chapters are MyST
Markdown text notebooks (``notebooks/<id>.md``, jupytext); the ``.ipynb`` papermill executes is
made from the text at run time and only the executed copy is written.
``input_hash`` is what ``make book`` uses to skip a chapter whose inputs
(notebook, spec, parameter files, library code, parameters) did not change.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from . import progress as prog
from .config import PACKAGE_DIR, notebooks_dir, repo_root
from .io import atomic_write_json, sha256_file, stable_hash
from .spec import CHAPTER_IDS

KERNEL_NAME = "replicate"
PROGRESS_FILE = "progress.jsonl"  # the run's stage / counter events (replicate.progress)
FEATURES_LOG = "features_used.jsonl"  # the feature cache entries the run read or wrote (feature release)
TIMINGS_FILE = "timings.json"  # seconds per notebook section and library stage, written after the run


class ChapterError(RuntimeError):
    """A chapter notebook failed; the message names the chapter and the failing cell's error."""


def parse_parameters(pairs: list[str] | None) -> dict[str, Any]:
    """``["seed=1", "null_labels=true", "data=synthetic"]`` -> typed dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"parameter {pair!r} is not KEY=VALUE")
        key, value = pair.split("=", 1)
        key = key.strip()
        if not key.isidentifier():
            raise ValueError(f"parameter name {key!r} is not a valid identifier")
        out[key] = yaml.safe_load(value) if value.strip() else None
    return out


NOTEBOOK_SUFFIXES = (".md", ".ipynb")  # a MyST Markdown text notebook (jupytext) first


def notebook_path(chapter_id: str) -> Path:
    """``notebooks/<id>.md`` (the chapters' MyST Markdown text notebooks), else ``notebooks/<id>.ipynb``."""
    for suffix in NOTEBOOK_SUFFIXES:
        path = notebooks_dir() / f"{chapter_id}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"no notebook for chapter {chapter_id!r} (expected {notebooks_dir() / chapter_id}.md)")


def has_notebook(chapter_id: str) -> bool:
    return any((notebooks_dir() / f"{chapter_id}{s}").exists() for s in NOTEBOOK_SUFFIXES)


def read_notebook(path: Path):
    """The notebook papermill executes: a text notebook is converted by jupytext (nothing is written)."""
    import nbformat

    if path.suffix == ".md":
        import jupytext

        nb = jupytext.read(path, fmt="md:myst")
    else:
        nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):  # stable ids: the same text gives the same executed notebook
        cell["id"] = f"{path.stem}-{i:03d}"
    return nb


def kernel_name() -> str:
    """The project's kernel if registered (``make venv`` does), else the current interpreter's ``python3``."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    return KERNEL_NAME if KERNEL_NAME in specs else "python3"


def _module_file(name: str) -> Path | None:
    """The source file of module ``replicate.x.y`` (a package's ``__init__.py``), if it exists."""
    parts = name.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*parts)
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.exists():
            return cand
    return None


def _imports(source: str, module: str | None = None, is_package: bool = False) -> set[str]:
    """``replicate`` modules imported anywhere in ``source`` (also inside functions), as dotted names."""
    import ast

    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "replicate")
        elif isinstance(node, ast.ImportFrom):
            if node.level and module:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "replicate":
                continue
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from replicate import dlrn` names a module
    return out


def chapter_dependencies(chapter_id: str) -> list[Path]:
    """The library files a chapter's output depends on: every ``replicate`` module its notebook imports,
    followed through their imports (and their packages' ``__init__``), plus the package's data files
    (specs, parameter files, registries) except other chapters' specs."""
    nb = read_notebook(notebook_path(chapter_id))
    todo = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            try:
                todo |= _imports(cell.source)
            except SyntaxError:  # IPython magics: the cell is still run; it simply names no module
                continue
    todo.add("replicate.chapter")
    seen_mod, files = set(), set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # the module and every package above it
            mod = ".".join(parts[:i])
            if mod in seen_mod:
                continue
            seen_mod.add(mod)
            path = _module_file(mod)
            if path is None:
                continue
            files.add(path)
            todo |= _imports(path.read_text(), mod, path.name == "__init__.py") - seen_mod
    # the stored null distributions the chapter's "What chance looks like" shows (benchmarks/results)
    files.update((repo_root() / "benchmarks" / "results").glob(f"null_{chapter_id}*.json"))
    others = {f"{cid}.yaml" for cid in CHAPTER_IDS if cid != chapter_id}
    for path in PACKAGE_DIR.rglob("*"):
        if path.suffix in {".yaml", ".yml", ".csv", ".json", ".txt"} and "__pycache__" not in path.parts:
            # another chapter's spec (specs/<id>.yaml) or its schema (specs/schema/<id>.yaml)
            if not (path.parent.name in ("specs", "schema") and "specs" in path.parts and path.name in others):
                files.add(path)
    return sorted(files)


def library_hash(chapter_id: str | None = None) -> str:
    """Hash of the library code a chapter depends on (all of it when ``chapter_id`` is None) and
    ``requirements.txt``: editing one pipeline module re-runs only the chapters that import it."""
    if chapter_id is not None and has_notebook(chapter_id):
        paths = chapter_dependencies(chapter_id)
    else:
        paths = sorted(
            p
            for p in PACKAGE_DIR.rglob("*")
            if p.is_file()
            and "__pycache__" not in p.parts
            and p.suffix in {".py", ".yaml", ".yml", ".csv", ".json", ".txt"}
        )
    h = hashlib.sha256()
    for path in paths:
        h.update(
            str(
                path.relative_to(PACKAGE_DIR) if path.is_relative_to(PACKAGE_DIR) else path.relative_to(repo_root())
            ).encode()
        )
        h.update(_file_digest(path).encode())
    req = repo_root() / "requirements.txt"
    if req.exists():
        h.update(sha256_file(req).encode())
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    return sha256_file(path)


def input_hash(chapter_id: str, parameters: dict[str, Any], lib_hash: str | None = None) -> str:
    """Everything a chapter's output depends on (data are pinned by the registry hashes)."""
    return stable_hash(
        {
            "chapter": chapter_id,
            "notebook": sha256_file(notebook_path(chapter_id)),
            "library": lib_hash or library_hash(chapter_id),
            "parameters": parameters,
        }
    )


def kernel_manager_class(name: str):
    """A kernel manager class whose kernel ``name`` does not talk over plain TCP.

    ipykernel warns "Kernel is running over TCP without encryption" (and is right to) for the default
    transport. Where pyzmq has CurveZMQ and the kernelspec declares it (ipykernel >= 7 registers
    kernels that do; ``make venv`` does), the manager provisions Curve keys
    (``transport_encryption="auto"``); otherwise, on POSIX, the kernel listens on Unix sockets
    (``transport="ipc"``), which stay on this machine.
    """
    import zmq
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    try:
        declared = KernelSpecManager().get_kernel_spec(name).metadata.get("supported_encryption") or []
    except Exception:  # an unknown kernel fails later with jupyter_client's own message
        declared = []
    if isinstance(declared, str):
        declared = [declared]
    if zmq.has("curve") and "curve" in {str(d).lower() for d in declared}:
        return type("CurveKernelManager", (AsyncKernelManager,), {"transport_encryption": "auto"})
    if os.name == "posix":
        return type("IPCKernelManager", (AsyncKernelManager,), {"transport": "ipc"})
    return AsyncKernelManager


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables (inherited by the kernel papermill starts) for the block."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _Sections:
    """Progress stages for the notebook's sections (its ``##`` headings) and a cell counter, from
    papermill's cell callbacks in this process: every chapter reports where it is without any code."""

    def __init__(self, n_code_cells: int):
        self.n = n_code_cells
        self.k = 0
        self.heading = "setup"
        self.current: str | None = None
        self.t = 0.0

    def on_cell_start(self, cell, cell_index, **_):
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("## "):
                    self.heading = line[3:].strip().strip("#").strip() or self.heading
            return
        if cell.cell_type != "code":
            return
        self.k += 1
        if self.heading != self.current:
            self.close(ok=True)
            self.current, self.t = self.heading, time.perf_counter()
            prog.emit("start", f"notebook{prog.SEP}{self.current}")
        prog.emit("tick", "notebook", i=min(self.k, self.n), total=self.n, unit="cell")

    def close(self, ok: bool) -> None:
        if self.current is not None:
            prog.emit("end", f"notebook{prog.SEP}{self.current}", seconds=round(time.perf_counter() - self.t, 3), ok=ok)
            self.current = None


class _Follower(threading.Thread):
    """Reads a progress file as it grows and calls ``callback(state)`` after each batch of events."""

    def __init__(self, path: Path, state: prog.ProgressState, callback: Callable, interval: float = 0.5):
        super().__init__(daemon=True)
        self.path, self.state, self.callback, self.interval = path, state, callback, interval
        self.offset = 0
        self.stop = threading.Event()

    def poll(self) -> None:
        events, self.offset = prog.read_events(self.path, self.offset)
        for ev in events:
            self.state.update(ev)
        try:
            self.callback(self.state, events)
        except Exception:  # a display problem never stops the run
            pass

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.poll()
        self.poll()


def read_timings(out_dir: str | Path) -> dict:
    """The ``timings.json`` a previous run left in ``out_dir`` ({} if none)."""
    path = Path(out_dir) / TIMINGS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_timings(out: Path, total: float, ok: bool) -> dict:
    """Seconds per notebook section and per library stage of the run in ``out`` (from its progress file)."""
    events, _ = prog.read_events(out / PROGRESS_FILE)
    rows = prog.stage_table(events)
    timings = {
        "total": round(total, 1),
        "ok": ok,
        "sections": [r for r in rows if r["stage"].startswith(f"notebook{prog.SEP}")],
        "stages": [r for r in rows if not r["stage"].startswith("notebook")],
    }
    atomic_write_json(out / TIMINGS_FILE, timings)
    return timings


def run_chapter(
    chapter_id: str,
    parameters: dict[str, Any] | None = None,
    out_dir: str | Path | None = None,
    *,
    progress: bool = True,
    log_output: bool = False,
    require_results: bool = True,
    monitor: Callable[[prog.ProgressState, list[dict]], None] | None = None,
) -> dict:
    """Execute ``notebooks/<id>.md`` into ``out_dir`` (executed ``<id>.ipynb`` + ``results.json``).

    Returns the parsed ``results.json``. Raises :class:`ChapterError` naming the
    failing cell's exception when the notebook fails (the partially executed
    notebook is still written for inspection).

    While it runs, the notebook's sections and the library's stages and counters go to
    ``out_dir/progress.jsonl`` (:mod:`replicate.progress`), the feature cache entries it uses to
    ``out_dir/features_used.jsonl``; afterwards seconds per section and stage to ``timings.json``.
    ``progress`` shows papermill's cell bar; ``monitor(state, new_events)`` is called about twice a
    second with a :class:`replicate.progress.ProgressState` instead (``make book``'s status lines).
    """
    import papermill as pm

    from .features.release import FEATURE_LOG_ENV

    parameters = dict(parameters or {})
    out = Path(out_dir) if out_dir else repo_root() / "runs" / chapter_id
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    if results_path.exists():
        results_path.unlink()  # never mistake an old run's results for this one's
    history = read_timings(out)
    for name in (PROGRESS_FILE, FEATURES_LOG):
        (out / name).unlink(missing_ok=True)
    parameters["output_dir"] = str(out)
    executed = out / f"{chapter_id}.ipynb"
    nb = read_notebook(notebook_path(chapter_id))
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    n_code += any("parameters" in c.metadata.get("tags", []) for c in nb.cells)  # papermill's injected cell
    sections = _Sections(n_code)
    follower = None
    t0 = time.perf_counter()
    ok = False
    with _environment(**{prog.ENV: str(out / PROGRESS_FILE), FEATURE_LOG_ENV: str(out / FEATURES_LOG)}):
        prog.emit("start", "notebook", total=n_code, unit="cell", chapter=chapter_id)
        if monitor is not None:
            follower = _Follower(out / PROGRESS_FILE, prog.ProgressState(history if history.get("ok") else {}), monitor)
            follower.start()
        try:
            kernel = kernel_name()
            pm.execute_notebook(
                nb,
                str(executed),
                parameters=parameters,
                kernel_name=kernel,
                cwd=str(repo_root()),
                progress_bar=progress and monitor is None,
                log_output=log_output,
                request_save_on_cell_execute=False,
                kernel_manager_class=kernel_manager_class(kernel),
                on_cell_start=sections.on_cell_start,
            )
            ok = True
        except pm.PapermillExecutionError as exc:
            raise ChapterError(
                f"chapter {chapter_id!r} failed in cell {exc.exec_count}: {exc.ename}: "
                f"{exc.evalue}\n(executed notebook kept at {executed})"
            ) from None
        finally:
            sections.close(ok)
            prog.emit("end", "notebook", seconds=round(time.perf_counter() - t0, 3), ok=ok)
            if follower is not None:
                follower.stop.set()
                follower.join(timeout=5)
            write_timings(out, time.perf_counter() - t0, ok)
    if not results_path.exists():
        if not require_results:
            return {}
        raise ChapterError(
            f"chapter {chapter_id!r} ran but wrote no results.json into {out} (its last cell must call ctx.finish())"
        )
    results = json.loads(results_path.read_text())
    results.setdefault("provenance", {})["wall_time_s"] = round(time.perf_counter() - t0, 1)
    return results
