"""The ``jupyter-publish`` command line: the same front door as the notebook.

Errors print one line on stderr and exit non-zero (2 for bad usage, 1 for failures);
``--json`` prints machine-readable results on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from .errors import DestinationError, PublishError
from .sizes import counted

EXIT_FAILURE, EXIT_USAGE = 1, 2
EXIT_TERMINATED = 128 + 15


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the whole usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_names_only(message)} (see {self.prog} --help)\n")


def _names_only(message: str) -> str:
    """argparse repeats every stray word; one may be a password typed after an option
    this command lacks (``fetch --auth user:pw``): only option names are echoed, as the
    magics do."""
    head, sep, words = message.partition("unrecognized arguments: ")
    if not sep:
        return message
    names = [word for word in words.split() if word.startswith("-")]
    hidden = len(words.split()) - len(names)
    shown = " ".join(names) + (f" and {counted(hidden, 'value')} not shown" if hidden else "")
    return f"{head}unrecognized arguments: {shown.strip()}"


def _catalog_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--catalog [LOC]``: a team catalog location, or (no LOC) $JUPYTER_PUBLISH_CATALOG's."""
    parser.add_argument("--catalog", metavar="LOC", nargs="?", const=True, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    from .backends import DEFAULT_DESTINATION, fetch_usage, registered_backends, usage

    parser = _Parser(prog="jupyter-publish", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("publish", help="publish files or folders; prints the job ID")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or glob patterns")
    p.add_argument("--to", default=DEFAULT_DESTINATION, metavar="DEST", help=usage())
    p.add_argument("--no-archive", dest="archive", action="store_false", help="upload file by file")
    p.add_argument("--name", help="a name for the result (default: the folder's name)")
    _backend_flags(p, "publish")
    p.add_argument("--cid-version", type=int, choices=(0, 1), default=0)
    p.add_argument(
        "--no-pin", dest="pin", action="store_false", help="do not pin what is published (stores that pin)"
    )
    p.add_argument(
        "--compression",
        choices=("gzip", "zstd", "none"),
        default="gzip",
        help="archive as .tar.gz (default), .tar.zst or .tar",
    )
    p.add_argument("--jobs", "-j", type=int, metavar="N", help="objects in flight at once (default 10)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _walk_flags(p)
    p.add_argument(
        "--uses",
        action="append",
        default=[],
        metavar="REF",
        help="what the job used (a job ID, CID, URI or path), recorded as its input; repeatable",
    )
    p.add_argument(
        "--catalog",
        metavar="LOC",
        help="also write the job's record to this team catalog, s3://BUCKET/PREFIX/ or a folder "
        '(default: $JUPYTER_PUBLISH_CATALOG; "" for none)',
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    f = sub.add_parser("fetch", help="fetch a URI or job ID, verified")
    f.add_argument("ref", metavar="REF", help=f"{fetch_usage()}, or a job ID")
    f.add_argument("--to", dest="dest", metavar="DIR", help="destination folder (default: ./REF-name)")
    f.add_argument("--no-verify", dest="verify", action="store_false")
    f.add_argument("--no-extract", dest="extract", action="store_false")
    f.add_argument(
        "--max-ratio",
        type=float,
        metavar="N",
        help="refuse an archive expanding more than N times its size past 1 GiB (default 200; 0: no cap)",
    )
    _backend_flags(f, "fetch")
    f.add_argument("--jobs", "-j", type=int, metavar="N", help="objects or ranges in flight (default 10)")
    f.add_argument("--quiet", "-q", action="store_true")
    _catalog_flag(
        f,
        "look up a job ID this machine never published in this team catalog "
        "(default, and with no LOC: $JUPYTER_PUBLISH_CATALOG)",
    )
    f.add_argument("--json", action="store_true")

    resumable = " or ".join(cls.label for cls in registered_backends() if cls.resumable)
    r = sub.add_parser("resume", help=f"continue an interrupted publish ({resumable})")
    r.add_argument("job", metavar="JOB", help="the job ID (a unique prefix is enough)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    r.add_argument("--json", action="store_true", help="print the result as JSON")

    j = sub.add_parser("jobs", help="list recorded jobs")
    j.add_argument("--limit", type=int)
    _catalog_flag(
        j,
        "the team's jobs in this catalog, s3://BUCKET/PREFIX/ or a folder "
        "(no LOC: $JUPYTER_PUBLISH_CATALOG; S3 options from the environment or ,opt=endpoint=URL)",
    )
    j.add_argument("--jobs", "-j", type=int, metavar="N", help="catalog records read at once (default 32)")
    j.add_argument(
        "--rounds", action="store_true", help="also list each --sync-every round as a job of its own"
    )
    j.add_argument("--json", action="store_true")

    li = sub.add_parser("lineage", help="what a job used and what used it (edges used -> produced)")
    li.add_argument("job", metavar="JOB", help="the job ID (a unique prefix is enough)")
    _catalog_flag(
        li,
        "also the jobs of this team catalog, s3://BUCKET/PREFIX/ or a folder "
        "(no LOC: $JUPYTER_PUBLISH_CATALOG)",
    )
    li.add_argument("--json", action="store_true")

    c = sub.add_parser("cids", help="list CIDs and checksums of published files")
    c.add_argument("job", nargs="?", metavar="JOB")
    c.add_argument("--json", action="store_true")

    x = sub.add_parser("export", help="write a citable record of a job (an RO-Crate)")
    x.add_argument("job", metavar="JOB", help="the job ID (a unique prefix is enough)")
    _catalog_flag(
        x, "a job the ledger lacks is read from this team catalog (no LOC: $JUPYTER_PUBLISH_CATALOG)"
    )
    x.add_argument(
        "--ro-crate",
        required=True,
        metavar="DIR",
        help="write DIR/ro-crate-metadata.json (DIR new, empty, or holding only a previous crate)",
    )
    x.add_argument("--license", metavar="SPDX|URL", help="the license of the results, e.g. CC-BY-4.0")
    x.add_argument("--json", action="store_true", help="print the crate's JSON-LD")

    one = sub.add_parser("cid", help="compute the IPFS CID of a file or folder, no daemon needed")
    one.add_argument("paths", nargs="+", metavar="PATH")
    one.add_argument("--cid-version", type=int, choices=(0, 1), default=0)
    _walk_flags(one)
    one.add_argument(
        "--symlinks",
        choices=("node", "follow"),
        default="node",
        help="node: a symlink is a symlink node, as ipfs add -r (default); follow: its target, as published",
    )
    one.add_argument("--json", action="store_true")

    s = sub.add_parser("serve", help="serve the local store read-only on 127.0.0.1")
    s.add_argument("--port", type=int, default=0)

    d = sub.add_parser("demo", help="publish a sample results folder to the local store")
    d.add_argument("--to", default=DEFAULT_DESTINATION, metavar="DEST")
    d.add_argument("--json", action="store_true")
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _backend_flags(parser: argparse.ArgumentParser, use: str) -> None:
    """``--NAME`` for every registered backend's options for ``use`` (``publish`` or
    ``fetch``), as the backends declare them. Secrets are no flags: ``ps`` shows them."""
    from .backends import all_options

    for option in all_options(use):
        if option.flag and not option.secret:
            extra: dict[str, Any] = {"metavar": option.metavar} if option.metavar else {}
            if option.choices:
                extra.update(type=str.upper, choices=option.choices)
            parser.add_argument(
                f"--{option.name.replace('_', '-')}", dest=option.name, help=option.help, **extra
            )


def _backend_options(args: argparse.Namespace, use: str) -> dict[str, Any]:
    from .backends import all_options

    return _options(args, [option.name for option in all_options(use)])


def _options(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _quiet(args: argparse.Namespace) -> bool | None:
    """``-q``/``--json`` silence the bar; otherwise the API's own rule decides (no bar
    under CI, with ``$JUPYTER_PUBLISH_QUIET``, or when stderr is not a terminal), never a
    forced one."""
    return True if (args.quiet or getattr(args, "json", False)) else None


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _frame_out(frame: Any, as_json: bool) -> None:
    if as_json:
        _print_json(json.loads(frame.to_json(orient="records", date_format="iso")))
    elif frame.empty:
        print("(none)")
    else:
        import pandas as pd

        from .text import printable

        shown = frame.copy()
        for column in shown.columns:  # a record's text is anyone's: no terminal commands in it
            values = shown[column]
            if not pd.api.types.is_numeric_dtype(values) and any(
                isinstance(v, str) and printable(v) != v for v in values
            ):  # only then: the other columns keep their dtype (and show <NA>)
                shown[column] = values.map(lambda v: printable(v) if isinstance(v, str) else v)
        with pd.option_context("display.width", 200, "display.max_colwidth", 60):
            print(shown.to_string(index=False))


def _walk_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-unreadable",
        action="store_true",
        help="leave out unreadable entries (and list them) instead of failing",
    )
    parser.add_argument(
        "--follow-symlinks", action="store_true", help="follow symlinks that lead out of a folder"
    )
    parser.add_argument(
        "--no-hidden",
        dest="hidden",
        action="store_false",
        help="leave out dotfiles and dotfolders (as ipfs add -r without --hidden)",
    )


def cmd_publish(args: argparse.Namespace) -> int:
    from .publisher import publish

    options = _backend_options(args, "publish")
    result = publish(
        args.paths,
        args.to,
        archive=args.archive,
        name=args.name,
        pin=args.pin,
        cid_version=args.cid_version,
        quiet=_quiet(args),
        max_concurrency=args.jobs,
        compression=args.compression,
        skip_unreadable=args.skip_unreadable,
        follow_symlinks=args.follow_symlinks,
        hidden=args.hidden,
        uses=args.uses,
        catalog=args.catalog,
        **options,
    )
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result)
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from .api import fetch

    options = _backend_options(args, "fetch")
    result = fetch(
        args.ref,
        args.dest,
        verify=args.verify,
        extract=args.extract,
        quiet=_quiet(args),
        max_concurrency=args.jobs,
        catalog=None if args.catalog is True else args.catalog,
        **({} if args.max_ratio is None else {"max_ratio": args.max_ratio}),
        **options,
    )
    if args.json:
        _print_json(
            {
                "ref": result.ref,
                "dest": str(result.dest),
                "verified": result.verified,
                "job_id": result.job_id,
                "files": [
                    {
                        "path": str(f.path),
                        "size": f.size,
                        "sha256": f.sha256,
                        "verified_against": f.verified_against,
                    }
                    for f in result.files
                ],
            }
        )
    else:
        print(result)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from .publisher import resume_job

    result, parts = resume_job(args.job, quiet=_quiet(args))
    print(f"jupyter-publish: resumed job {result.job_id}: {parts.summary()}", file=sys.stderr)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from .api import jobs

    if args.catalog is None:
        frame = jobs(args.limit, rounds=args.rounds)
    else:
        frame = jobs(args.limit, catalog=args.catalog, max_concurrency=args.jobs)
    if args.json:
        _frame_out(frame, True)
    elif frame.empty:
        print("(none)")
    else:
        print(_jobs_text(frame, catalog=args.catalog is not None))
    return 0


def _jobs_text(frame: Any, *, catalog: bool) -> str:
    """The jobs as a table that fits the terminal: short IDs, long values cut with …"""
    import pandas as pd

    from .ids import short_job_id
    from .sizes import human_size
    from .text_table import Column, render, terminal_width

    def text(value: Any) -> str:
        return "" if value is None or pd.isna(value) else str(value)

    def when(value: Any) -> str:
        return "" if pd.isna(value) else value.strftime("%Y-%m-%d %H:%M")

    with_rounds = bool((frame["rounds"].fillna(0) > 0).any())
    columns = [
        Column("job", cap=28),
        Column("status", cap=11),
        Column("created (UTC)", cap=16),
        Column("name", cap=32, shrinks=3, least=10),
        Column("files", cap=9, right=True),
        Column("size", cap=10, right=True),
        *([Column("rounds", cap=6, right=True)] if with_rounds else []),
        *([Column("user", cap=16, shrinks=4), Column("host", cap=20, shrinks=4)] if catalog else []),
        Column("uri", cap=60, shrinks=2, least=16),
        Column("error", cap=200, shrinks=1, least=16),
    ]
    rows = []
    for job in frame.to_dict("records"):
        size, rounds = job["total_size"], job["rounds"]
        row = [
            short_job_id(str(job["job_id"])),
            text(job["status"]),
            when(job["created_at"]),
            text(job["name"]),
            text(job["n_files"]),
            "" if pd.isna(size) else human_size(int(size)),
            *(["" if pd.isna(rounds) or not rounds else str(rounds)] if with_rounds else []),
            *([text(job["user"]), text(job["host"])] if catalog else []),
            text(job["uri"]) or text(job["destination"]),
            text(job["error"]),
        ]
        rows.append(row)
    return render(columns, rows, terminal_width())


def cmd_lineage(args: argparse.Namespace) -> int:
    from .api import lineage

    frame = lineage(args.job, catalog=args.catalog)
    if not args.json:
        frame = frame[["used", "used_job", "produced", "produced_name", "via", "kind"]]
    _frame_out(frame, args.json)
    return 0


def cmd_cids(args: argparse.Namespace) -> int:
    from .api import cids

    frame = cids(args.job)
    if not args.json:
        frame = frame[["job_id", "kind", "path", "cid", "size", "sha256"]]
    _frame_out(frame, args.json)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .api import export

    written = export(args.job, ro_crate=args.ro_crate, license=args.license, catalog=args.catalog)
    if args.json:
        sys.stdout.write(written.read_text(encoding="utf-8"))
    else:
        print(f"RO-Crate of job {args.job} written to {written}")
    return 0


def cmd_cid(args: argparse.Namespace) -> int:
    import warnings

    from .cid import cid_of

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        walk = {
            "skip_unreadable": args.skip_unreadable,
            "follow_symlinks": args.follow_symlinks,
            "symlinks": args.symlinks,
            "hidden": args.hidden,
        }
        found = {p: cid_of(p, args.cid_version, **walk) for p in args.paths}
    for warning in said:
        print(f"jupyter-publish: {warning.message}", file=sys.stderr)
    if args.json:
        _print_json([{"path": p, "cid": c} for p, c in found.items()])
    else:
        for path, cid in found.items():
            print(f"{cid}  {path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    serve(args.port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The quickstart: make a small results folder, publish it, show the ledger."""
    from .demo import run_demo

    return run_demo(args.to, as_json=args.json)


COMMANDS = {
    "publish": cmd_publish,
    "fetch": cmd_fetch,
    "resume": cmd_resume,
    "jobs": cmd_jobs,
    "cids": cmd_cids,
    "export": cmd_export,
    "lineage": cmd_lineage,
    "cid": cmd_cid,
    "serve": cmd_serve,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .journal import install_sigterm

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    if main_thread:
        install_sigterm()  # SIGTERM takes Ctrl-C's path: abort, mark failed, clean up
    try:
        return _run_command(args)
    finally:
        if main_thread:  # main() called in-process (a test, a kernel) leaves no handler behind
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _run_command(args: argparse.Namespace) -> int:
    """One command; every expected failure is one line on stderr and an exit code."""
    from .journal import Terminated
    from .redact import scrub
    from .text import one_line

    try:
        return COMMANDS[args.command](args)
    except Terminated:
        print("jupyter-publish: terminated by SIGTERM; any job it ran is marked failed", file=sys.stderr)
        _exit_now(EXIT_TERMINATED)
    except DestinationError as exc:
        # One line whatever a library put in the text (the edge's safety net).
        print(f"jupyter-publish: error: {one_line(exc, scrub=True)}", file=sys.stderr)
        return EXIT_USAGE
    except PublishError as exc:
        # One line whatever a library put in the text (the edge's safety net).
        print(f"jupyter-publish: error: {one_line(exc, scrub=True)}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # `jupyter-publish jobs | head`: the reader has gone
        sys.stderr.close()
        return 0
    except OSError as exc:  # e.g. --to a folder that cannot be created
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"jupyter-publish: error: {scrub(f'{where}{exc.strerror or exc}')}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("jupyter-publish: interrupted", file=sys.stderr)
        return 130


def _exit_now(code: int) -> NoReturn:
    """Exit at once after SIGTERM: the job is recorded and its uploads aborted, and a
    part stuck on a stalled link must not hold the exit for a socket timeout."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    raise SystemExit(main())
