"""make book's execution loop: resuming after an interruption, status lines, the final timing table,
where features come from (release / FROM=images) and the scheduler handed to the chapters."""

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from replicate import book, progress
from replicate.features import release
from replicate.parallel import SCHEDULER_ENV
from replicate.spec import CHAPTER_IDS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bookdir(tmp_path, monkeypatch):
    d = tmp_path / "book"
    d.mkdir()
    for name in ("_config.yml", "_toc.yml", "intro.md"):
        shutil.copy(ROOT / "book" / name, d / name)
    (d / "chapters.yaml").write_text("sts: {}\nrls: {}\nalt: {}\n")
    monkeypatch.setenv("REPLICATE_BOOK_DIR", str(d))
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    for cid in ("sts", "rls", "alt"):
        nbformat.write(nb, nbs / f"{cid}.ipynb")
    monkeypatch.setenv("REPLICATE_NOTEBOOKS_DIR", str(nbs))
    monkeypatch.setattr(book, "library_hash", lambda *a: "lib")
    return d


class FakeRun:
    """Stands in for run_chapter: records calls and the environment the kernel would get."""

    def __init__(self, interrupt_at=None):
        self.calls, self.env, self.interrupt_at = [], [], interrupt_at

    def __call__(self, cid, params, out, **kw):
        self.calls.append(cid)
        self.env.append({k: os.environ.get(k) for k in (SCHEDULER_ENV, release.FRESH_ENV)})
        if cid == self.interrupt_at:
            raise KeyboardInterrupt
        Path(out).mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(), Path(out) / f"{cid}.ipynb")
        (Path(out) / "timings.json").write_text(
            json.dumps(
                {
                    "total": 12.0,
                    "ok": True,
                    "sections": [{"stage": "notebook > Features", "seconds": 10.0, "count": 1}],
                    "stages": [
                        {"stage": "PyRadiomics sts", "seconds": 9.0, "count": 1, "n_cached": 2, "n_extracted": 49}
                    ],
                }
            )
        )
        return {}


def test_interrupted_build_resumes_where_it_stopped(bookdir, monkeypatch):
    order = [c for c in CHAPTER_IDS if c in ("sts", "rls", "alt")]  # the build's order
    first = FakeRun(interrupt_at=order[1])
    monkeypatch.setattr(book, "run_chapter", first)
    with pytest.raises(KeyboardInterrupt):
        book.execute_chapters(only=order, log=lambda *_: None)
    assert first.calls == order[:2]
    assert not (bookdir / "_executed" / order[1] / "stamp.json").exists()  # never marked done
    second = FakeRun()
    monkeypatch.setattr(book, "run_chapter", second)
    status = book.execute_chapters(only=order, log=lambda *_: None)
    assert second.calls == order[1:]  # the finished chapter is not run again
    assert status[order[0]]["cached"] is True and status[order[1]]["state"] == "ok"


def test_a_chapter_interrupted_on_a_rerun_loses_its_old_stamp(bookdir, monkeypatch):
    monkeypatch.setattr(book, "run_chapter", FakeRun())
    book.execute_chapters(only=["sts"], log=lambda *_: None)
    monkeypatch.setattr(book, "run_chapter", FakeRun(interrupt_at="sts"))
    with pytest.raises(KeyboardInterrupt):
        book.execute_chapters(only=["sts"], force=True, log=lambda *_: None)
    again = FakeRun()
    monkeypatch.setattr(book, "run_chapter", again)
    book.execute_chapters(only=["sts"], log=lambda *_: None)
    assert again.calls == ["sts"]  # its half-written output is not taken for a finished run


def test_status_lines_are_rate_limited(monkeypatch):
    lines = []
    now = [1000.0]
    monkeypatch.setattr(book, "time", type("Clock", (), {"time": staticmethod(lambda: now[0])}))
    sl = book.StatusLines("[book 1/5] sts", lines.append, interval=10.0, min_gap=2.0, heartbeat=60.0)
    st = progress.ProgressState()
    st.update({"t": 1000.0, "pid": 1, "ev": "start", "stage": "PyRadiomics sts", "total": 51, "unit": "case"})
    sl(st, [{}])
    now[0] += 1
    st.update({"t": 1001.0, "pid": 1, "ev": "tick", "stage": "PyRadiomics sts", "i": 3, "total": 51})
    sl(st, [{}])  # same stage, 1 s later: no line
    now[0] += 10
    sl(st, [{}])  # counters moved and 10 s passed: a line
    now[0] += 1
    sl(st, [])  # nothing new: no line
    now[0] += 61
    sl(st, [])  # a heartbeat
    assert len(lines) == 3
    assert lines[0].startswith("[book 1/5] sts | PyRadiomics sts | 0/51 cases")
    assert "3/51 cases" in lines[1]


def test_final_table_lists_chapters_and_stages(bookdir, monkeypatch):
    monkeypatch.setattr(book, "run_chapter", FakeRun())
    status = book.execute_chapters(only=["sts"], log=lambda *_: None)
    rows = book.timing_rows(status)
    assert [r["stage"] for r in rows] == ["(total)", "Features", "  PyRadiomics sts"]
    text = book.format_timings(rows)
    assert "sts" in text and "12s" in text and "[49 extracted, 2 from cache]" in text


def _fake_release(monkeypatch, tmp_path):
    archive = tmp_path / "release" / release.ARCHIVE_NAME
    archive.parent.mkdir()
    archive.write_bytes(b"not read: unpack_release is replaced")
    monkeypatch.setattr(release, "default_archive", lambda: archive)
    called = []

    def fake_unpack(path):
        called.append(path)
        return {
            "unpacked": {"radiomics": 3},
            "present": {},
            "skipped": {},
            "skipped_reasons": {},
            "seconds": 0.1,
            "archive_sha256": "ab" * 32,
        }

    monkeypatch.setattr(release, "unpack_release", fake_unpack)
    return archive, called


def test_from_images_ignores_the_release_and_forces(bookdir, monkeypatch, tmp_path):
    fake = FakeRun()
    monkeypatch.setattr(book, "run_chapter", fake)
    monkeypatch.setattr(book, "assemble", lambda status: None)
    archive, called = _fake_release(monkeypatch, tmp_path)
    book.build(only=["sts"], html=False)
    assert called == [archive]
    assert book.build(only=["sts"], html=False, from_images=True) == 0
    assert called == [archive]  # not unpacked for FROM=images
    assert fake.calls == ["sts", "sts"]  # FROM=images re-executes an unchanged chapter
    assert fake.env[1][release.FRESH_ENV] is not None and fake.env[0][release.FRESH_ENV] is None
    assert release.FRESH_ENV not in os.environ
    stamp = json.loads((bookdir / "_executed" / "sts" / "stamp.json").read_text())
    assert "FROM=images" in stamp["features"]


def test_release_is_unpacked_when_present(monkeypatch, tmp_path):
    archive, called = _fake_release(monkeypatch, tmp_path)
    info = book.prepare_features(from_images=False, log=lambda *_: None)
    assert called == [archive] and "sha256 " + "ab" * 32 in info["features"]
    archive.unlink()
    info = book.prepare_features(from_images=False, log=lambda *_: None)
    assert called == [archive] and info["features"] == "extracted (no feature release)"


def test_scheduler_reaches_the_chapters(bookdir, monkeypatch):
    fake = FakeRun()
    monkeypatch.setattr(book, "run_chapter", fake)
    monkeypatch.setattr(book, "assemble", lambda status: None)

    class FakeClient:
        def scheduler_info(self):
            return {"workers": {"a": {}, "b": {}}}

    import replicate.parallel as par

    monkeypatch.setattr(par, "get_client", lambda address: FakeClient())
    book.build(only=["sts"], html=False, scheduler="tcp://cluster:8786")
    assert fake.env[0][SCHEDULER_ENV] == "tcp://cluster:8786"
    assert SCHEDULER_ENV not in os.environ
    saved = json.loads((bookdir / "_executed" / "timings.json").read_text())
    assert saved["scheduler"] == "tcp://cluster:8786" and saved["rows"][0]["chapter"] == "sts"
