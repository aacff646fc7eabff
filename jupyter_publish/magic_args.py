"""What the magics accept: their options, how a line is parsed, and what it settles.

Declarations (so ``%publish?`` lists every option, in order), the ``{{name}}``
substitution of notebook values, and the typed options a parsed line settles against
the configured traits. Only the magics import this module (it imports IPython).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import keyword
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument
from IPython.utils.process import arg_split  # type: ignore[attr-defined]  # re-exported, not declared

from .backends import BackendOption, all_options, fetch_usage, usage
from .sizes import counted
from .variables import variable_to_file

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}")
"""``{{name}}`` or ``{{name.attr}}``: a notebook value; single braces are placeholders."""


# -- declarations ----------------------------------------------------------------------


def _arguments(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Apply magic_arguments ``argument`` decorators so the help lists them in order."""

    def apply(func: Any) -> Any:
        for deco in reversed(decorators):
            func = deco(func)
        return func

    return apply


# Every backend option offered as a flag, from the registered backends' declarations.
PUBLISH_FLAGS = [option for option in all_options("publish") if option.flag]
FETCH_FLAGS = [option for option in all_options("fetch") if option.flag]


def _option_argument(option: BackendOption) -> Callable[[Any], Any]:
    """``--NAME`` for a backend option, as its backend declares it."""
    extra: dict[str, Any] = {"metavar": option.metavar} if option.metavar else {}
    if option.choices:
        extra.update(type=str.upper, choices=option.choices)
    return argument(f"--{option.name.replace('_', '-')}", dest=option.name, help=option.help, **extra)


_JOBS_ARG = argument(
    "--jobs",
    metavar="N",
    type=int,
    help="Objects (or ranges of a large one) in flight at once (default: PublishMagics.max_concurrency).",
)

publish_arguments = _arguments(
    argument(
        "targets",
        nargs="*",
        metavar="DEST_OR_SOURCE",
        help="Cell magic: the destination (default: PublishMagics.default_destination). "
        "Line magic: files, folders, globs or notebook variable names.",
    ),
    argument("--to", metavar="DEST", help=f"Destination: {usage()}."),
    argument(
        "--archive",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Publish one deterministic .tar.gz (default: PublishMagics.archive) or file by file.",
    ),
    argument("--name", metavar="NAME", help="A name for the result (archive NAME.tar.gz)."),
    argument("--out", metavar="VAR", help="Store the PublishedResult in this notebook variable."),
    argument(
        "--sync-every",
        metavar="DURATION",
        help="Cell magic: publish new and changed files of OUTPUT every DURATION (90, 2s, 500ms, 1m) while "
        "the cell runs, then all of OUTPUT file by file to the same prefix (not with --archive); "
        "one job, whose rounds %%jobs counts.",
    ),
    argument(
        "--optional",
        action="store_true",
        help="Cell magic: an empty OUTPUT (no files, nothing printed) is not an error.",
    ),
    argument(
        "--publish-on-error",
        action="store_true",
        help="Cell magic: publish OUTPUT even if the cell raised (exitCode 1).",
    ),
    argument("--quiet", action="store_true", help="No progress bars and no notes."),
    *(_option_argument(option) for option in PUBLISH_FLAGS),
    argument(
        "--cid-version",
        type=int,
        choices=(0, 1),
        help="IPFS CID version recorded for every file (default: PublishMagics.cid_version).",
    ),
    argument(
        "--compression",
        choices=("gzip", "zstd", "none"),
        help="Archive as .tar.gz, .tar.zst or .tar (default: PublishMagics.compression).",
    ),
    _JOBS_ARG,
    argument(
        "--skip-unreadable",
        action="store_true",
        help="Leave out (and list) unreadable entries instead of failing.",
    ),
    argument("--follow-symlinks", action="store_true", help="Follow symlinks that lead out of a folder."),
    argument(
        "--no-hidden",
        dest="hidden",
        action="store_false",
        help="Leave out dotfiles and dotfolders (as ipfs add -r without --hidden).",
    ),
    argument(
        "--uses",
        action="append",
        metavar="REF",
        default=None,
        help="What the job used, recorded as its input (lineage): a job ID, CID, URI or path. "
        "Repeatable; everything fetched in this kernel before is recorded anyway.",
    ),
    argument("--ui", action="store_true", help="Line magic: show the publish panel instead."),
    argument(
        "--catalog",
        metavar="LOC",
        help="Also write the job's record to this team catalog, s3://BUCKET/PREFIX/ or a folder "
        '(default: PublishMagics.catalog, else $JUPYTER_PUBLISH_CATALOG; "" for none).',
    ),
)

fetch_arguments = _arguments(
    argument("refs", nargs="*", metavar="REF", help=f"A job ID or a reference: {fetch_usage()}."),
    argument(
        "--to", metavar="DIR", help="Folder to fetch into (default: PublishMagics.fetch_dir or ./NAME)."
    ),
    argument("--no-preview", action="store_true", help="Show one line per fetch instead of a preview."),
    argument("--no-verify", action="store_true", help="Do not check sha256/CIDs (not recommended)."),
    argument("--no-extract", action="store_true", help="Keep archives as they are."),
    argument(
        "--max-ratio",
        type=float,
        metavar="N",
        default=None,
        help="Refuse an archive expanding more than N times its size past 1 GiB (default 200; 0: no cap).",
    ),
    argument("--out", metavar="VAR", help="Store the FetchResult (a list for several) in this variable."),
    argument("--quiet", action="store_true", help="No progress bars."),
    *(_option_argument(option) for option in FETCH_FLAGS),
    _JOBS_ARG,
    argument("--ui", action="store_true", help="Show the fetch panel instead."),
    argument(
        "--catalog",
        metavar="LOC",
        nargs="?",
        const=True,
        help="Look up job IDs this machine never published in this team catalog "
        "(default, and with no LOC: PublishMagics.catalog, else $JUPYTER_PUBLISH_CATALOG).",
    ),
)

jobs_arguments = _arguments(
    argument("--limit", type=int, metavar="N", help="Only the N newest jobs."),
    argument(
        "--lineage",
        metavar="JOB",
        help="The edges (used -> produced) upstream and downstream of JOB instead.",
    ),
    argument(
        "--catalog",
        metavar="LOC",
        nargs="?",
        const=True,
        help="The team's jobs in this catalog, s3://BUCKET/PREFIX/ or a folder "
        "(no LOC: PublishMagics.catalog, else $JUPYTER_PUBLISH_CATALOG).",
    ),
    argument(
        "--rounds",
        action="store_true",
        help="Also list each --sync-every round as a job of its own (by default a cell's "
        "run is one row, its rounds counted in the rounds column).",
    ),
    argument("--ui", action="store_true", help="Show the jobs browser instead."),
)

cids_arguments = _arguments(
    argument("job", nargs="?", metavar="JOB", help="A job ID (or unique prefix); default: every job."),
)


# -- parsing ---------------------------------------------------------------------------


def parse(func: Any, line: str, magic: str, namespace: Mapping[str, Any]) -> argparse.Namespace:
    """Split like a shell, substitute ``{{name}}`` per argument, then parse with ``func.parser``."""
    line = VARIABLE.sub(lambda match: "{{" + match.group(1) + "}}", line)  # {{ x }} is one word
    try:
        argv = arg_split(line, posix=os.name == "posix")
    except ValueError:
        raise UsageError(f"{magic}: unbalanced quotes in the arguments") from None
    argv = [expand(token, namespace) for token in argv]
    parser: argparse.ArgumentParser = func.parser
    try:
        args, extra = parser.parse_known_intermixed_args(argv)
    except UsageError as exc:
        raise UsageError(f"{magic}: {exc} (see {magic}?)") from None
    if extra:
        options = [token for token in extra if token.startswith("-")]
        # Only option names are echoed: a stray value might be a secret.
        what = f"unknown option {options[0]}" if options else f"{counted(len(extra), 'unexpected argument')}"
        raise UsageError(f"{magic}: {what} (see {magic}?)")
    return args


def expand(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{{name}}`` (or ``{{name.attr}}``) with the notebook value; ``{x}`` stays."""
    return VARIABLE.sub(lambda match: str(_lookup(match.group(1), namespace)), text)


def _lookup(dotted: str, namespace: Mapping[str, Any]) -> Any:
    head, *attributes = dotted.split(".")
    if head not in namespace:
        raise UsageError(f"no variable {head!r} in the notebook: define it or remove {{{{{dotted}}}}}")
    value = namespace[head]
    for attribute in attributes:
        if not hasattr(value, attribute):
            raise UsageError(f"{head!r} has no attribute {attribute!r} (in {{{{{dotted}}}}})")
        value = getattr(value, attribute)
    return value


def line_values(line: str, namespace: Mapping[str, Any]) -> dict[str, str]:
    """``{"{{name}}": value}`` for each notebook value a line names (what :func:`expand`
    put in it), for the job's provenance, which keeps only those that are not secrets."""
    values = {}
    for match in VARIABLE.finditer(line):
        try:
            values["{{" + match.group(1) + "}}"] = str(_lookup(match.group(1), namespace))
        except UsageError:  # the parse reported it already
            continue
    return values


def check_variable_name(name: str | None, option: str = "--out") -> None:
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise UsageError(f"{option} needs a Python variable name, not {name!r}")


def reference_lines(cell: str) -> list[str]:
    """``%%fetch``: one reference per line; blank lines and ``#`` comment lines are skipped."""
    lines = (line.strip() for line in cell.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# -- what a line settles ---------------------------------------------------------------


class Settings(Protocol):
    """The configured defaults an argument overrides (``PublishMagics``' traits)."""

    archive: bool
    quiet: bool
    cid_version: int
    max_concurrency: int | None
    compression: str


@dataclass(frozen=True)
class PublishOptions:
    """The keywords :func:`jupyter_publish.api.publish` takes from a ``%publish`` line."""

    archive: bool
    cid_version: int
    quiet: bool | None
    """``None``: the core decides (progress bars unless ``$JUPYTER_PUBLISH_QUIET``)."""
    max_concurrency: int | None
    compression: str
    skip_unreadable: bool
    follow_symlinks: bool
    hidden: bool

    @classmethod
    def settle(cls, args: argparse.Namespace, settings: Settings) -> PublishOptions:
        """An argument given wins over the configured default."""
        return cls(
            archive=settings.archive if args.archive is None else args.archive,
            cid_version=settings.cid_version if args.cid_version is None else args.cid_version,
            quiet=True if (args.quiet or settings.quiet) else None,
            max_concurrency=settings.max_concurrency if args.jobs is None else args.jobs,
            compression=settings.compression if args.compression is None else args.compression,
            skip_unreadable=args.skip_unreadable,
            follow_symlinks=args.follow_symlinks,
            hidden=args.hidden,
        )

    def keywords(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CellOptions:
    """What only ``%%publish`` takes: where, and how the cell's run is published."""

    destination: str
    sync_every: float | None
    optional: bool
    publish_on_error: bool

    @classmethod
    def settle(cls, args: argparse.Namespace, default_destination: str) -> CellOptions:
        """Refuse what the cell magic cannot do before the cell runs."""
        if args.ui:
            raise UsageError("--ui applies to the line magic: use %publish --ui")
        if len(args.targets) > 1:
            raise UsageError(
                "%%publish takes one destination; write files to OUTPUT in the cell, "
                "or publish existing files with %publish PATH... --to DEST"
            )
        if args.targets and args.to and args.targets[0] != args.to:
            raise UsageError("%%publish: give the destination once (either DEST or --to DEST)")
        every = None if args.sync_every is None else sync_interval(args.sync_every)
        if args.sync_every is not None and args.archive:
            raise UsageError(
                "--sync-every and --archive don't combine: syncing publishes OUTPUT file by file "
                "to one prefix (drop --archive)"
            )
        return cls(
            destination=(args.targets or [args.to or default_destination])[0],
            sync_every=every,
            optional=args.optional,
            publish_on_error=args.publish_on_error,
        )


def sync_interval(text: str) -> float:
    """``--sync-every``'s seconds (``2s``, ``1m``, ``90``), or one line saying what to write."""
    from .durations import seconds
    from .errors import OptionError

    try:
        return seconds(text, examples="90, 2s, 500ms or 1m")
    except OptionError as exc:
        raise UsageError(f"--sync-every: {exc}") from None


def check_line_publish(args: argparse.Namespace) -> None:
    """``%publish`` (the line magic) publishes what exists: no cell options, some sources."""
    for given, option in (
        (args.sync_every is not None, "--sync-every"),
        (args.optional, "--optional"),
        (args.publish_on_error, "--publish-on-error"),
    ):
        if given:
            raise UsageError(f"{option} applies to the cell magic %%publish only")
    if not args.targets:
        raise UsageError(
            "%publish needs files, folders, globs or notebook variables: %publish PATH_OR_VAR... --to DEST"
        )


def source(token: str, namespace: Mapping[str, Any], folder: Path) -> str:
    """An existing path wins; otherwise a notebook variable, serialised into ``folder``."""
    if _is_path(token):
        return token
    if token.isidentifier() and token in namespace:
        return str(variable_to_file(token, namespace[token], folder))
    if token.isidentifier():
        raise UsageError(f"cannot publish {token!r}: no such file, folder or notebook variable")
    return token  # the core explains missing paths and empty globs


def _is_path(token: str) -> bool:
    expanded = os.path.expanduser(token)
    if glob.has_magic(token):
        return bool(glob.glob(expanded, recursive=True))
    return os.path.lexists(expanded)


@dataclass(frozen=True)
class FetchOptions:
    """The keywords :func:`jupyter_publish.api.fetch` takes from a ``%fetch`` line."""

    verify: bool
    extract: bool
    quiet: bool | None
    max_concurrency: int | None
    max_ratio: float | None
    """``None``: the core's default cap."""

    @classmethod
    def settle(cls, args: argparse.Namespace, settings: Settings) -> FetchOptions:
        return cls(
            verify=not args.no_verify,
            extract=not args.no_extract,
            quiet=True if (args.quiet or settings.quiet) else None,
            max_concurrency=settings.max_concurrency if args.jobs is None else args.jobs,
            max_ratio=args.max_ratio,
        )

    def keywords(self) -> dict[str, Any]:
        kwargs = dataclasses.asdict(self)
        if self.max_ratio is None:
            del kwargs["max_ratio"]
        return kwargs
