"""Stages and counters a long run reports while it works, as JSON lines anyone can follow.

    from replicate import progress

    with progress.stage("PyRadiomics sts", total=len(cases), unit="case"):
        for i, case in enumerate(cases, 1):
            ...
            progress.tick(i)

The events go to the file named by ``REPLICATE_PROGRESS_FILE`` (``replicate run`` and
``make book`` set it to ``<output folder>/progress.jsonl`` for the chapter's kernel). When the
variable is not set every call returns after one dictionary lookup, so library code can report
unconditionally. One event per line::

    {"t": 1767225600.12, "pid": 4242, "ev": "start", "stage": "features > PyRadiomics sts", "total": 51, "unit": "case"}
    {"t": ..., "ev": "tick", "stage": "...", "i": 31, "total": 51, "unit": "case"}
    {"t": ..., "ev": "end", "stage": "...", "seconds": 42.7, "ok": true, "n_cached": 20}
    {"t": ..., "ev": "note", "stage": "...", ...}

Stages nest (``" > "`` joins the names of the open stages of a process). Counter events are
throttled to one per ``TICK_INTERVAL`` seconds per stage (the last one, ``i == total``, always
goes out). Readers: :func:`read_events`, :class:`ProgressState` (what a run is doing now and
how long it has left) and :func:`stage_table` (seconds per stage afterwards).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV = "REPLICATE_PROGRESS_FILE"
TICK_INTERVAL = 1.0  # seconds between two counter events of one stage
SEP = " > "

_local = threading.local()


def progress_file() -> Path | None:
    """The file events go to (``REPLICATE_PROGRESS_FILE``), or None when nobody listens."""
    path = os.environ.get(ENV)
    return Path(path) if path else None


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def _emit(event: dict) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    event = {"t": round(time.time(), 3), "pid": os.getpid(), **event}
    line = (json.dumps(event, default=str) + "\n").encode()
    try:  # one append-mode write per line: lines of several processes never interleave
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:  # progress is advisory: a full disk or a removed folder never stops the work
        pass


@dataclass
class _Open:
    name: str
    path: str
    t0: float
    total: int | None
    unit: str
    last_tick: float = 0.0
    fields: dict = field(default_factory=dict)


def _stack() -> list[_Open]:
    st = getattr(_local, "stack", None)
    if st is None:
        st = _local.stack = []
    return st


def current_stage() -> str | None:
    """The path of the innermost open stage of this thread (``"a > b"``), or None."""
    st = _stack()
    return st[-1].path if st else None


@contextmanager
def stage(name: str, total: int | None = None, unit: str = "item", **fields: Any) -> Iterator[_Open]:
    """Report a named stage: a start event now, an end event with its seconds when the block ends.

    ``total``/``unit`` describe the counter :func:`tick` advances; ``fields`` go into the start event.
    Call :func:`set_result` inside the block to add fields to the end event (e.g. cache hits).
    The block's exceptions pass through (the end event then says ``"ok": false``).
    """
    st = _stack()
    path = SEP.join([s.name for s in st] + [name])
    entry = _Open(name, path, time.perf_counter(), total, unit)
    st.append(entry)
    if enabled():
        _emit({"ev": "start", "stage": path, "total": total, "unit": unit, **fields})
    ok = False
    try:
        yield entry
        ok = True
    finally:
        st.pop()
        if enabled():
            _emit(
                {
                    "ev": "end",
                    "stage": path,
                    "seconds": round(time.perf_counter() - entry.t0, 3),
                    "ok": ok,
                    **entry.fields,
                }
            )


def set_result(**fields: Any) -> None:
    """Add fields to the end event of the innermost open stage."""
    st = _stack()
    if st:
        st[-1].fields.update(fields)


def tick(i: int, total: int | None = None, unit: str | None = None, *, force: bool = False) -> None:
    """Counter ``i`` (of ``total``; default the stage's) of the innermost open stage, throttled."""
    if not enabled():
        return
    st = _stack()
    if not st:
        return
    top = st[-1]
    if total is not None:
        top.total = total
    now = time.perf_counter()
    last = top.total is not None and i >= top.total
    if not (force or last or i <= 1 or now - top.last_tick >= TICK_INTERVAL):
        return
    top.last_tick = now
    _emit({"ev": "tick", "stage": top.path, "i": int(i), "total": top.total, "unit": unit or top.unit})


def emit(ev: str, stage_path: str, **fields: Any) -> None:
    """A raw ``start`` / ``end`` / ``tick`` event for a stage managed by hand (the runner's notebook
    sections, which begin and end in papermill's cell callbacks rather than in one block)."""
    if enabled():
        _emit({"ev": ev, "stage": stage_path, **fields})


def note(message: str | None = None, **fields: Any) -> None:
    """A free-form event (e.g. "features from the release") attached to the current stage."""
    if enabled():
        _emit({"ev": "note", "stage": current_stage(), "message": message, **fields})


# ----------------------------------------------------------------------------- reading


def read_events(path: str | os.PathLike, offset: int = 0) -> tuple[list[dict], int]:
    """Complete event lines of ``path`` from byte ``offset``; returns (events, new offset).

    A line still being written (no newline yet) is left for the next call.
    """
    p = Path(path)
    if not p.exists():
        return [], offset
    with open(p, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1
    events = []
    for raw in data[:end].splitlines():
        try:
            events.append(json.loads(raw))
        except ValueError:
            continue
    return events, offset + end


def fmt_seconds(s: float | None) -> str:
    """``75 -> "1m15s"``, ``3720 -> "1h02m"``, ``None -> "?"``."""
    if s is None:
        return "?"
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


@dataclass
class Counter:
    i: int
    total: int | None
    unit: str
    t_stage: float  # when its stage started (event time)
    t: float  # time of the last tick

    def eta(self, now: float) -> float | None:
        """Seconds left at the stage's mean rate so far (None without a total or a first item, and for
        notebook cells, whose durations differ too much for a rate to mean anything)."""
        if not self.total or self.i <= 0 or self.unit == "cell":
            return None
        rate = (self.t - self.t_stage) / self.i
        return max(0.0, rate * (self.total - self.i) - (now - self.t))


class ProgressState:
    """What a run is doing now, built from its events: open stages, the innermost counter, time left.

    ``history``: seconds of the previous run of the same chapter (``{"total": s, ...}``), for a
    whole-run estimate.
    """

    def __init__(self, history: dict | None = None):
        self.t0: float | None = None
        self.open: dict[tuple[int, str], float] = {}  # (pid, stage path) -> start time
        self.counters: dict[tuple[int, str], Counter] = {}
        self.order: list[tuple[int, str]] = []  # open stages, most recent last
        self.history = history or {}
        self.last_event: dict | None = None

    def update(self, ev: dict) -> None:
        t = float(ev.get("t", time.time()))
        if self.t0 is None:
            self.t0 = t
        key = (ev.get("pid", 0), ev.get("stage") or "")
        kind = ev.get("ev")
        if kind == "start":
            self.open[key] = t
            if key in self.order:
                self.order.remove(key)
            self.order.append(key)
            if ev.get("total"):
                self.counters[key] = Counter(0, ev.get("total"), ev.get("unit") or "item", t, t)
        elif kind == "end":
            self.open.pop(key, None)
            self.counters.pop(key, None)
            if key in self.order:
                self.order.remove(key)
        elif kind == "tick":
            start = self.open.get(key, t)
            prev = self.counters.get(key)
            unit = ev.get("unit") or (prev.unit if prev else "item")
            self.counters[key] = Counter(int(ev.get("i", 0)), ev.get("total"), unit, start, t)
        self.last_event = ev

    @property
    def stage(self) -> str | None:
        """The open stages, innermost of each process, in the order they started (e.g. the runner's
        ``"notebook > Features"`` then the kernel's ``"PyRadiomics sts"``), joined by ``" > "``."""
        inner: dict[int, tuple[float, str]] = {}
        for pid, path in self.order:
            inner[pid] = (self.open[(pid, path)], path)
        return SEP.join(path for _, path in sorted(inner.values())) or None

    def counter(self) -> Counter | None:
        for key in reversed(self.order):
            if key in self.counters:
                return self.counters[key]
        return None

    def eta_run(self, now: float) -> float | None:
        """Whole-run seconds left from the previous run's total (None without history)."""
        total = self.history.get("total")
        if not total or self.t0 is None:
            return None
        return max(0.0, float(total) - (now - self.t0))

    def line(self, now: float | None = None) -> str:
        """One status line: stage, counter with its time left, elapsed and the run's time left."""
        now = time.time() if now is None else now
        parts = [self.stage or ("finishing" if self.t0 is not None else "starting")]
        c = self.counter()
        if c is not None and c.total:
            eta = c.eta(now)
            parts.append(f"{c.i}/{c.total} {c.unit}s" + (f", {fmt_seconds(eta)} left" if eta is not None else ""))
        elapsed = now - self.t0 if self.t0 is not None else 0.0
        tail = f"elapsed {fmt_seconds(elapsed)}"
        eta_run = self.eta_run(now)
        if eta_run is not None:
            tail += f", about {fmt_seconds(eta_run)} left (last run {fmt_seconds(self.history.get('total'))})"
        parts.append(tail)
        return " | ".join(parts)


def stage_table(events: list[dict]) -> list[dict]:
    """Seconds per finished stage, in the order stages started: ``[{"stage", "seconds", "count", ...}]``.

    A stage that ran several times (the same path) is one row with the summed seconds and ``count``;
    fields of its end events that are numbers (e.g. ``n_cached``) are summed too.
    """
    rows: dict[str, dict] = {}
    for ev in events:
        if ev.get("ev") == "start":
            rows.setdefault(ev["stage"], {"stage": ev["stage"], "seconds": 0.0, "count": 0})
        elif ev.get("ev") == "end":
            row = rows.setdefault(ev["stage"], {"stage": ev["stage"], "seconds": 0.0, "count": 0})
            row["seconds"] = round(row["seconds"] + float(ev.get("seconds", 0.0)), 3)
            row["count"] += 1
            for k, v in ev.items():
                if (
                    k not in ("t", "pid", "ev", "stage", "seconds", "ok")
                    and isinstance(v, (int, float))
                    and not isinstance(v, bool)
                ):
                    row[k] = row.get(k, 0) + v
            if not ev.get("ok", True):
                row["failed"] = True
    return [r for r in rows.values() if r["count"]]
