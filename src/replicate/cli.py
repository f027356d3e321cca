"""The ``replicate`` command line.

replicate data list
replicate data fetch NAME              (ibsi_sts, busbra, worc_lipo, worc_lipo_images)
replicate run ID [-p KEY=VALUE ...] [--out DIR]
replicate features DATASET --modality M [--params NAME] [--jobs N] [--scheduler tcp://HOST:PORT] --out FILE.csv
replicate audit [ID | SPEC.yaml | PAPER.txt] [--json] [--draft OUT.yaml]
replicate audit init [PATH]
replicate ibsi [--config digital|A|B|C|D|E|all] [--json]
replicate spec validate [ID]
replicate release build|verify|unpack|info   (the verified feature release, data/release/features.tar.xz)
replicate book build [--only ID ...] [--force] [--no-html] [--scheduler tcp://HOST:PORT] [--from images]
replicate book check
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def _cmd_data(args) -> int:
    from . import data

    if args.action == "list":
        df = data.list_datasets()
        print(df.to_string(index=False))
        return 0
    if args.name == "worc_lipo_images":
        from .data.xnat_images import fetch_worc_lipo_images

        fetch_worc_lipo_images(args.dest)
        return 0
    root = data.fetch(args.name)
    print(f"{args.name}: verified in {root}")
    return 0


def _cmd_run(args) -> int:
    from .book import EXTRA_PAGES
    from .runner import ChapterError, parse_parameters, run_chapter

    params = parse_parameters(args.param)
    page = args.id in EXTRA_PAGES  # a book page that is not a paper chapter writes no results.json
    try:
        res = run_chapter(args.id, params, args.out, require_results=not page)
    except ChapterError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    out = Path(args.out or f"runs/{args.id}")
    if page:
        print(f"{args.id}: executed notebook in {out / (args.id + '.ipynb')}")
    else:
        counts = {k: v for k, v in (res.get("verdict_counts") or {}).items() if v}
        print(f"{args.id}: results in {out / 'results.json'} (pairs with a reported number: {counts})")
    return 0


def _cmd_features(args) -> int:
    from .data import load_cohort
    from .features.radiomics import extract_radiomics

    cohort = load_cohort(args.dataset)
    table = extract_radiomics(cohort.cases(args.modality), args.params, n_jobs=args.jobs, scheduler=args.scheduler)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.features.to_csv(args.out)
    print(f"{len(table.features)} cases x {table.n_features} features -> {args.out}")
    if len(table.failures):
        print("failed cases:", file=sys.stderr)
        print(table.failures.to_string(index=False), file=sys.stderr)
        return 1
    return 0


def _audit_init(path: str | None, force: bool) -> int:
    from .audit_spec import TEMPLATE

    out = Path(path or "audit_spec.yaml")
    if out.exists() and not force:
        print(f"replicate: error: {out} exists (use --force to overwrite)", file=sys.stderr)
        return 2
    out.write_text(TEMPLATE)
    print(f"wrote {out}: fill it in, then run: replicate audit {out}")
    return 0


def _audit_findings(target: str | None, draft: str | None):
    """The findings for ``replicate audit [TARGET]``: every chapter spec, a chapter id, a spec file or a text."""
    from . import audit
    from .spec import SpecError, available_specs

    if target is None:
        return audit.audit()
    path = Path(target)
    if path.suffix.lower() == ".pdf":
        raise ValueError(
            f"{path}: give the paper's plain text (e.g. `pdftotext -layout {path.name} paper.txt`), not the PDF"
        )
    if path.suffix.lower() in (".txt", ".text", ".md") or (
        path.is_file() and path.suffix.lower() not in (".yaml", ".yml")
    ):
        from .audit_text import audit_text, write_draft

        if not path.is_file():
            raise FileNotFoundError(f"no such text file: {path}")
        findings, spec = audit_text(path)
        if draft:
            write_draft(spec, draft)
            print(
                f"draft spec ({len(spec.get('reported', []))} numbers, {len(spec.get('comparisons', []))} "
                f"comparisons, {len(spec.get('table1', []))} Table-1 cells) written to {draft}",
                file=sys.stderr,
            )
        return findings
    if draft:
        raise ValueError("--draft needs a paper's text (PAPER.txt)")
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        return audit.audit_spec(path)
    if target in available_specs():
        return audit.audit(target)
    raise SpecError(
        f"{target!r} is neither a spec file (.yaml), a paper's text (.txt) nor a chapter id "
        f"({', '.join(available_specs())})"
    )


def _cmd_audit(args) -> int:
    from . import audit

    if args.target == "init":
        return _audit_init(args.path, args.force)
    if args.path:
        raise ValueError(f"unexpected argument {args.path!r} (only 'replicate audit init' takes a path)")
    findings = _audit_findings(args.target, args.draft)
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2, default=str))
        return 0
    width = args.width or min(100, shutil.get_terminal_size((100, 24)).columns)
    print(audit.format_findings(findings, width=max(60, width), min_severity=args.min_severity), end="")
    return 0


def _cmd_ibsi(args) -> int:
    from . import ibsi

    report = ibsi.compliance(args.config)
    if args.json:
        print(json.dumps(report.to_json(), indent=1, default=str))
        return 0
    print(ibsi.format_report(report, width=100))
    return 0


def _cmd_spec(args) -> int:
    from .spec import available_specs, load_spec

    for cid in [args.id] if args.id else available_specs():
        spec = load_spec(cid)
        print(f"{cid}: valid ({len(spec.reported)} reported numbers, {len(spec.comparisons)} comparisons)")
    return 0


def _cmd_release(args) -> int:
    from .features import release

    archive = Path(args.archive) if args.archive else release.default_archive()
    if args.action == "build":
        from .book import book_dir

        logs = [Path(x) for x in args.logs] or sorted((book_dir() / "_executed").glob("*/features_used.jsonl"))
        manifest = release.build_release(
            logs,
            archive,
            max_bytes=None if args.no_limit else release.MAX_BYTES,
            kinds=args.kinds,
            command=f"replicate release build --kinds {' '.join(args.kinds)}",
        )
        _print_sizes(manifest, archive)
        return 0
    if args.action == "unpack":
        summary = release.unpack_release(archive)
        print(json.dumps({k: v for k, v in summary.items() if k != "made"}, indent=1))
        return 0
    if args.action == "verify":
        report = release.verify_release(archive, per_group=args.per_group, seed=args.seed)
        print(json.dumps(report, indent=1))
        return 0 if report["ok"] else 1
    manifest = release.read_manifest(archive)
    print(json.dumps({k: manifest[k] for k in ("format", "made", "code")}, indent=1))
    _print_sizes(manifest, archive)
    return 0


def _print_sizes(manifest: dict, archive: Path) -> None:
    import pandas as pd

    from .features import release

    df = pd.DataFrame(release.release_sizes(manifest))
    print(df.to_string(index=False))
    print(
        f"{archive}: {manifest['archive_bytes'] / 2**20:.2f} MiB compressed, {len(manifest['entries'])} entries, "
        f"{df['bytes'].sum() / 2**20:.1f} MiB uncompressed (limit {release.MAX_BYTES / 2**20:.0f} MiB)"
    )


def _cmd_book(args) -> int:
    from .book import book_dir, build

    if args.action == "check":
        from .book_check import check_book

        problems = check_book(book_dir() / "_build" / "html")
        for p in problems:
            print(p, file=sys.stderr)
        print(f"book check: {len(problems)} problem(s)")
        return 1 if problems else 0
    return build(
        only=args.only,
        force=args.force,
        html=not args.no_html,
        scheduler=args.scheduler,
        from_images=args.source == "images",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="replicate", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="public data sets")
    dsub = d.add_subparsers(dest="action", required=True)
    dsub.add_parser("list", help="list the registered data sets")
    f = dsub.add_parser("fetch", help="download (or copy from REPLICATE_DATA_MIRROR) and verify a data set")
    f.add_argument("name")
    f.add_argument("--dest", default=None, help="destination folder (worc_lipo_images only)")
    d.set_defaults(func=_cmd_data)

    r = sub.add_parser("run", help="execute a chapter notebook with papermill")
    r.add_argument("id")
    r.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="notebook parameter (repeatable)")
    r.add_argument("--out", default=None, help="output folder (executed notebook + results.json)")
    r.set_defaults(func=_cmd_run)

    fe = sub.add_parser("features", help="extract PyRadiomics features of a data set")
    fe.add_argument("dataset")
    fe.add_argument("--modality", required=True)
    fe.add_argument("--params", default="default", help="parameter file name in src/replicate/params or a path")
    fe.add_argument("--jobs", type=int, default=1)
    fe.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://host:port) to scale out")
    fe.add_argument("--out", required=True)
    fe.set_defaults(func=_cmd_features)

    a = sub.add_parser(
        "audit",
        help="check a paper's reported numbers for internal consistency",
        description="replicate audit [ID | SPEC.yaml | PAPER.txt] [--json] [--draft OUT.yaml]; "
        "replicate audit init [PATH] writes a commented spec template.",
    )
    a.add_argument(
        "target",
        nargs="?",
        metavar="ID|SPEC.yaml|PAPER.txt|init",
        help="a chapter id, a spec file, a paper's plain text, or 'init' (default: every chapter)",
    )
    a.add_argument("path", nargs="?", help="with 'init': where to write the template (audit_spec.yaml)")
    a.add_argument("--json", action="store_true", help="findings as JSON")
    a.add_argument("--draft", metavar="OUT.yaml", help="with a text: write the extracted spec for completion")
    a.add_argument("--min-severity", choices=("error", "warning", "info"), default="info")
    a.add_argument("--width", type=int, default=None, help="terminal width of the table (default: <= 100)")
    a.add_argument("--force", action="store_true", help="with 'init': overwrite an existing file")
    a.set_defaults(func=_cmd_audit)

    ib = sub.add_parser("ibsi", help="PyRadiomics on the IBSI-1 phantoms against the IBSI reference values")
    ib.add_argument(
        "--config",
        default="all",
        choices=["digital", "A", "B", "C", "D", "E", "all"],
        help="IBSI configuration (digital phantom, CT configurations A-E, or all)",
    )
    ib.add_argument("--json", action="store_true", help="every compared row, the summaries and the settings as JSON")
    ib.set_defaults(func=_cmd_ibsi)

    s = sub.add_parser("spec", help="paper specs")
    ssub = s.add_subparsers(dest="action", required=True)
    v = ssub.add_parser("validate")
    v.add_argument("id", nargs="?")
    s.set_defaults(func=_cmd_spec)

    rl = sub.add_parser("release", help="the verified feature release (extracted features of the book's runs)")
    rl.add_argument(
        "action",
        choices=["build", "verify", "unpack", "info"],
        help="build: pack the feature cache entries the last book build used (its chapters' "
        "features_used.jsonl); verify: extract a sample again and compare; unpack: into the "
        "feature cache; info: manifest and sizes",
    )
    rl.add_argument("--archive", default=None, help="default data/release/features.tar.xz")
    rl.add_argument(
        "--logs",
        nargs="*",
        default=[],
        help="build: features_used.jsonl files (default: book/_executed/*/features_used.jsonl)",
    )
    rl.add_argument("--kinds", nargs="*", default=["radiomics", "deep"], choices=["radiomics", "deep"])
    rl.add_argument("--no-limit", action="store_true", help="build: write the archive even if over 20 MiB")
    rl.add_argument("--per-group", type=int, default=3, help="verify: cases per settings group")
    rl.add_argument("--seed", type=int, default=0, help="verify: seed of the sample")
    rl.set_defaults(func=_cmd_release)

    b = sub.add_parser("book", help="the Jupyter Book")
    bsub = b.add_subparsers(dest="action", required=True)
    bb = bsub.add_parser("build", help="execute chapters (cached) and build HTML")
    bb.add_argument("--only", nargs="*", default=None)
    bb.add_argument("--force", action="store_true")
    bb.add_argument("--no-html", action="store_true")
    bb.add_argument(
        "--scheduler", default=None, help="Dask scheduler (tcp://host:8786) for extraction and CV / random splits"
    )
    bb.add_argument(
        "--from",
        dest="source",
        choices=["release", "images"],
        default="release",
        help="features from the verified release when it matches (default) or re-extracted from the images",
    )
    bsub.add_parser("check", help="open every built page in headless Chromium (loads, images, links)")
    b.set_defaults(func=_cmd_book)
    return p


def main(argv: list[str] | None = None) -> int:
    from .data.fetch import DataUnavailableError, VerificationError
    from .features.release import ReleaseError
    from .spec import SpecError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (
        DataUnavailableError,
        VerificationError,
        SpecError,
        FileNotFoundError,
        KeyError,
        ValueError,
        ReleaseError,
        ConnectionError,
    ) as exc:
        print(f"replicate: error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
