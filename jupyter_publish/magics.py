"""IPython magics: ``%%publish``, ``%publish``, ``%%fetch``, ``%fetch``, ``%jobs``, ``%cids``.

A thin layer over :mod:`jupyter_publish.api`: parse arguments, substitute ``{{name}}``
notebook variables, run the cell with an ``OUTPUT`` folder, then call the core and
show its result. Every error the user can act on becomes an ``IPython`` UsageError
(one line, no traceback). This module and ``widgets`` are the only ones that import
IPython; the core is imported lazily so ``%load_ext jupyter_publish`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display
from IPython.utils.process import arg_split
from traitlets import Bool, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from .backends import DEFAULT_DESTINATION, BackendOption, all_options, backend_class, fetch_usage, usage
from .cellrun import bound_output, is_empty, teed, write_exit_code
from .sync import Syncer, round_job_id
from .variables import variable_to_file

if TYPE_CHECKING:
    from .destinations import Destination
    from .results import FetchResult, PublishedResult

PROJECT_SECTION = "jupyter_publish"

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}")
# Every backend option offered as a flag (from the registered backends' declarations);
# a setting's value applies only to its own backend's destinations (explicit options
# always pass, so a misplaced --endpoint is still reported by the core).
_PUBLISH_FLAGS = [option for option in all_options("publish") if option.flag]
_FETCH_FLAGS = [option for option in all_options("fetch") if option.flag]
_PUBLISH_BACKEND_ARGS = tuple(option.name for option in _PUBLISH_FLAGS)
_FETCH_BACKEND_ARGS = tuple(option.name for option in _FETCH_FLAGS)


# -- argument declarations -------------------------------------------------------------


def _arguments(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Apply magic_arguments ``argument`` decorators so the help lists them in order."""

    def apply(func: Any) -> Any:
        for deco in reversed(decorators):
            func = deco(func)
        return func

    return apply


def _setting_traits() -> dict[str, Unicode]:
    """``PublishMagics.NAME`` settings for the backend options that declare one."""
    return {
        option.name: Unicode(None, allow_none=True, help=option.setting).tag(config=True)
        for option in all_options("publish")
        if option.setting
    }


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

_publish_arguments = _arguments(
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
        metavar="SECONDS",
        type=float,
        help="Cell magic: publish new and changed files of OUTPUT every SECONDS while the cell runs, "
        "then all of OUTPUT file by file to the same prefix (not with --archive).",
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
    *(_option_argument(option) for option in _PUBLISH_FLAGS),
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
    argument("--ui", action="store_true", help="Line magic: show the publish panel instead."),
)

_fetch_arguments = _arguments(
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
    *(_option_argument(option) for option in _FETCH_FLAGS),
    _JOBS_ARG,
    argument("--ui", action="store_true", help="Show the fetch panel instead."),
)


# -- small helpers ---------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    from .redact import scrub

    text = " ".join(scrub(str(exc)).split())
    return text or type(exc).__name__


def _describe(exc: BaseException, limit: int = 200) -> str:
    """``ZeroDivisionError: division by zero``, one line, not too long."""
    from .redact import scrub

    detail = " ".join(scrub(str(exc)).split())
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def _usage_errors(prefix: str = "") -> Iterator[None]:
    """Errors a user can act on become one-line UsageErrors (IPython hides their traceback)."""
    from .errors import PublishError

    try:
        yield
    except UsageError:
        raise
    except (PublishError, OSError) as exc:
        raise UsageError(f"{prefix}{_one_line(exc)}") from None


def _check_variable_name(name: str | None, option: str = "--out") -> None:
    import keyword

    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise UsageError(f"{option} needs a Python variable name, not {name!r}")


def _is_path(token: str) -> bool:
    expanded = os.path.expanduser(token)
    if glob.has_magic(token):
        return bool(glob.glob(expanded, recursive=True))
    return os.path.lexists(expanded)


def pin_placeholders(dest: Destination, job_id: str) -> Destination:
    """Resolve a key template once, so every sync and the final publish share one prefix.

    ``{executionID}`` differs per publish and is left to the publisher.
    """
    from . import ids
    from .destinations import placeholder_values, resolve_some

    values = placeholder_values(
        job_id=job_id,
        execution_id="",
        node_id=ids.node_id(),
        user=ids.current_user(),
        notebook=ids.notebook_name(),
        now=datetime.now(timezone.utc),
    )
    values.pop("executionID")
    return dataclasses.replace(dest, key=resolve_some(dest.key, values), url=resolve_some(dest.url, values))


@contextlib.contextmanager
def _quiet_tracebacks(shell: Any) -> Iterator[None]:
    """While the cell runs, its traceback is not printed: the magic reports the failure
    in one line, and the traceback is written to OUTPUT/stderr like a job's."""
    saved = {name: shell.__dict__.get(name) for name in ("showtraceback", "showsyntaxerror")}
    shell.showtraceback = shell.showsyntaxerror = lambda *args, **kwargs: None
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                shell.__dict__.pop(name, None)
            else:
                shell.__dict__[name] = value


def _where(error: BaseException) -> str:
    """`` at line N`` of the cell, when the traceback says so."""
    line = getattr(error, "lineno", None)  # SyntaxError
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<ipython-input-") or "ipykernel_" in (
            tb.tb_frame.f_code.co_filename
        ):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" at line {line}" if line else ""


class _Notes:
    """Where progress notes go.

    In a kernel: an ``ipywidgets.Output`` displayed now, so notes from the sync thread
    land in this cell (a thread's prints follow the *current* parent header). Elsewhere:
    the stdout of the moment the cell started, never the tee into OUTPUT/stdout.
    """

    def __init__(self, shell: Any, quiet: bool) -> None:
        self.quiet = quiet
        self._stream = sys.stdout
        self._widget: Any = None
        if not quiet and getattr(shell, "kernel", None) is not None:
            try:
                import ipywidgets

                self._widget = ipywidgets.Output()
                display(self._widget)
            except Exception:  # no widgets: notes go to the stream
                self._widget = None

    def __call__(self, text: str) -> None:
        if self.quiet:
            return
        line = f"jupyter-publish: {text}\n"
        if self._widget is not None:
            self._widget.append_stdout(line)
        else:
            self._stream.write(line)
            self._stream.flush()


# -- project settings ------------------------------------------------------------------


def find_project_settings(start: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The nearest ``pyproject.toml`` (from ``start`` upwards) with a ``[tool.jupyter_publish]`` table."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            return None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            warnings.warn(f"jupyter-publish: cannot read {candidate}: {exc}", stacklevel=2)
            continue
        section = data.get("tool", {}).get(PROJECT_SECTION)
        if isinstance(section, dict):
            return candidate, section
    return None


# -- the magics ------------------------------------------------------------------------


@magics_class
class PublishMagics(Magics, Configurable):
    """Publish notebook results and fetch them back, verified.

    Configure with ``%config PublishMagics.default_destination = "DEST"``, in an
    IPython profile, or in ``pyproject.toml`` under ``[tool.jupyter_publish]``.
    """

    default_destination = Unicode(
        DEFAULT_DESTINATION,
        help=f"Where %%publish and %publish go when no destination is given: {usage()}.",
    ).tag(config=True)
    archive = Bool(True, help="Publish one deterministic .tar.gz (False: file by file).").tag(config=True)
    quiet = Bool(False, help="No progress bars and no notes.").tag(config=True)
    preview = Bool(True, help="Preview fetched results inline.").tag(config=True)
    cid_version = Int(0, help="IPFS CID version recorded for every file: 0 (Qm..) or 1 (bafy..).").tag(
        config=True
    )
    # One setting per backend option that declares one (endpoint, region, api…).
    locals().update(_setting_traits())
    max_concurrency = Int(
        None,
        allow_none=True,
        help="Objects (or byte ranges of one large object) moved at once, 1 to 64. "
        "None: $JUPYTER_PUBLISH_JOBS, else 10.",
    ).tag(config=True)
    compression = Unicode(
        "gzip", help="Archive compression: gzip (.tar.gz, Bacalhau's format), zstd (.tar.zst) or none (.tar)."
    ).tag(config=True)
    fetch_dir = Unicode(
        "",
        help="Folder that %fetch fills (one sub-folder per reference) and where %%publish keeps "
        "its OUTPUT folders. Empty: fetch into the working folder; OUTPUT is a temporary "
        "folder removed once published.",
    ).tag(config=True)

    project_file: Path | None = None
    """The pyproject.toml whose ``[tool.jupyter_publish]`` settings were applied, if any."""

    @validate("cid_version")
    def _valid_cid_version(self, proposal: Any) -> int:
        if proposal["value"] not in (0, 1):
            raise TraitError(f"cid_version must be 0 or 1, not {proposal['value']!r}")
        return int(proposal["value"])

    @validate("max_concurrency")
    def _valid_concurrency(self, proposal: Any) -> int | None:
        from .transfer import MAX_CONCURRENCY

        if proposal["value"] is None:
            return None
        if not 1 <= int(proposal["value"]) <= MAX_CONCURRENCY:
            raise TraitError(f"max_concurrency must be 1 to {MAX_CONCURRENCY}, not {proposal['value']!r}")
        return int(proposal["value"])

    @validate("compression")
    def _valid_compression(self, proposal: Any) -> str:
        if proposal["value"] not in ("gzip", "zstd", "none"):
            raise TraitError(f"compression must be gzip, zstd or none, not {proposal['value']!r}")
        return str(proposal["value"])

    @validate("default_destination")
    def _valid_destination(self, proposal: Any) -> str:
        from .destinations import parse_destination
        from .errors import DestinationError

        try:
            parse_destination(proposal["value"])
        except DestinationError as exc:
            raise TraitError(str(exc)) from None
        return str(proposal["value"])

    # -- configuration ------------------------------------------------------------

    def apply_project_settings(self, start: Path | None = None) -> Path | None:
        """Take settings from pyproject.toml; values set through IPython config win."""
        found = find_project_settings(start)
        if found is None:
            return None
        path, section = found
        configurable = set(self.class_trait_names(config=True))
        for raw_key, value in section.items():
            key = raw_key.replace("-", "_")
            if key not in configurable:
                warnings.warn(f"jupyter-publish: unknown setting {raw_key!r} in {path}", stacklevel=2)
                continue
            if f"{type(self).__name__}.{key}" in self.config:
                continue
            try:
                setattr(self, key, value)
            except TraitError as exc:
                warnings.warn(f"jupyter-publish: ignoring {raw_key!r} in {path}: {exc}", stacklevel=2)
        self.project_file = path
        return path

    # -- parsing ------------------------------------------------------------------

    def _parse(self, func: Any, line: str, magic: str) -> argparse.Namespace:
        """Split like a shell, substitute ``{{name}}`` per argument, then parse."""
        line = _VARIABLE.sub(lambda match: "{{" + match.group(1) + "}}", line)  # {{ x }} is one word
        try:
            argv = arg_split(line, posix=os.name == "posix")
        except ValueError:
            raise UsageError(f"{magic}: unbalanced quotes in the arguments") from None
        argv = [self.expand(token) for token in argv]
        try:
            args, extra = func.parser.parse_known_intermixed_args(argv)
        except UsageError as exc:
            raise UsageError(f"{magic}: {exc} (see {magic}?)") from None
        if extra:
            options = [token for token in extra if token.startswith("-")]
            # Only option names are echoed: a stray value might be a secret.
            what = f"unknown option {options[0]}" if options else f"{len(extra)} unexpected argument(s)"
            raise UsageError(f"{magic}: {what} (see {magic}?)")
        return args

    def expand(self, text: str) -> str:
        """Replace ``{{name}}`` (or ``{{name.attr}}``) with the notebook value; ``{x}`` stays."""
        return _VARIABLE.sub(lambda match: str(self._lookup(match.group(1))), text)

    def _lookup(self, dotted: str) -> Any:
        head, *attributes = dotted.split(".")
        namespace = self.shell.user_ns if self.shell is not None else {}
        if head not in namespace:
            raise UsageError(f"no variable {head!r} in the notebook: define it or remove {{{{{dotted}}}}}")
        value = namespace[head]
        for attribute in attributes:
            if not hasattr(value, attribute):
                raise UsageError(f"{head!r} has no attribute {attribute!r} (in {{{{{dotted}}}}})")
            value = getattr(value, attribute)
        return value

    # -- %publish / %%publish -----------------------------------------------------

    @no_var_expand
    @line_cell_magic
    @magic_arguments()
    @_publish_arguments
    def publish(self, line: str, cell: str | None = None) -> None:
        """Publish results with a job ID, sha256 and IPFS CID for every file.

        As a cell magic, ``%%publish [DEST]`` runs the cell with a fresh folder in
        ``OUTPUT`` (a pathlib.Path; also ``$JUPYTER_PUBLISH_OUTPUT``), keeps what it
        prints in OUTPUT/stdout and OUTPUT/stderr (plus OUTPUT/exitCode), then
        publishes the folder and shows a result card. Nothing is published if the cell
        raises (the job is recorded as failed) unless --publish-on-error.

        As a line magic, ``%publish PATH_OR_VAR... [--to DEST]`` publishes files,
        folders, globs or notebook variables (DataFrame -> .parquet/.csv, Figure ->
        .png, dict/list -> .json, str -> .txt, bytes -> .bin, numpy array -> .npy).

        Write notebook variables as {{name}} in any argument; single-brace
        placeholders {jobID} {executionID} {nodeID} {date} {time} {user} {notebook}
        are resolved by the publisher in keys and paths, e.g. runs/{jobID}/{date}.
        """
        magic = "%publish" if cell is None else "%%publish"
        args = self._parse(self.publish, line, magic)
        _check_variable_name(args.out)
        if cell is None:
            self._publish_line(args)
        else:
            self._publish_cell(args, cell)

    def _destination(self, text: str, args: argparse.Namespace) -> Destination:
        """Parse and check the destination now, before any work (a typo fails fast)."""
        from .destinations import parse_destination
        from .publisher import check_options

        with _usage_errors():
            dest = parse_destination(text)
            defaults = {
                key: getattr(self, key)
                for key in (option.name for option in backend_class(dest.scheme).options if option.setting)
                if getattr(self, key) and key not in dest.options
            }
            explicit = {
                key: getattr(args, key) for key in _PUBLISH_BACKEND_ARGS if getattr(args, key) is not None
            }
            dest = dest.with_options(**defaults, **explicit)
            check_options(dest)
        return dest

    def _publish_kwargs(self, args: argparse.Namespace, name: str | None) -> dict[str, Any]:
        return {
            "archive": self.archive if args.archive is None else args.archive,
            "name": name,
            "cid_version": self.cid_version if args.cid_version is None else args.cid_version,
            "quiet": True if (args.quiet or self.quiet) else None,
            "max_concurrency": self.max_concurrency if args.jobs is None else args.jobs,
            "compression": self.compression if args.compression is None else args.compression,
            "skip_unreadable": args.skip_unreadable,
            "follow_symlinks": args.follow_symlinks,
            "hidden": args.hidden,
        }

    def _show_result(self, result: Any, out: str | None) -> None:
        if out:
            self.shell.user_ns[out] = result
        display(result)

    def _publish_line(self, args: argparse.Namespace) -> None:
        if args.ui:
            self._ui("publish_panel", shell=self.shell, default_destination=self.default_destination)
            return
        for given, option in (
            (args.sync_every is not None, "--sync-every"),
            (args.optional, "--optional"),
            (args.publish_on_error, "--publish-on-error"),
        ):
            if given:
                raise UsageError(f"{option} applies to the cell magic %%publish only")
        if not args.targets:
            raise UsageError(
                "%publish needs files, folders, globs or notebook variables: "
                "%publish PATH_OR_VAR... --to DEST"
            )
        dest = self._destination(args.to or self.default_destination, args)
        kwargs = self._publish_kwargs(args, args.name)
        from . import api

        with tempfile.TemporaryDirectory(prefix="jp-vars-") as tmp, _usage_errors():
            sources = [self._source(token, Path(tmp)) for token in args.targets]
            result = api.publish(sources, dest, **kwargs)
        self._show_result(result, args.out)

    def _source(self, token: str, folder: Path) -> str:
        """An existing path wins; otherwise a notebook variable, serialised into ``folder``."""
        if _is_path(token):
            return token
        namespace = self.shell.user_ns
        if token.isidentifier() and token in namespace:
            return str(variable_to_file(token, namespace[token], folder))
        if token.isidentifier():
            raise UsageError(f"cannot publish {token!r}: no such file, folder or notebook variable")
        return token  # the core explains missing paths and empty globs

    def _cell_destination(self, args: argparse.Namespace) -> str:
        if args.ui:
            raise UsageError("--ui applies to the line magic: use %publish --ui")
        if len(args.targets) > 1:
            raise UsageError(
                "%%publish takes one destination; write files to OUTPUT in the cell, "
                "or publish existing files with %publish PATH... --to DEST"
            )
        if args.targets and args.to and args.targets[0] != args.to:
            raise UsageError("%%publish: give the destination once (either DEST or --to DEST)")
        if args.sync_every is not None and args.sync_every <= 0:
            raise UsageError("--sync-every needs a positive number of seconds")
        if args.sync_every is not None and args.archive:
            raise UsageError(
                "--sync-every and --archive don't combine: syncing publishes OUTPUT file by file "
                "to one prefix (drop --archive)"
            )
        return (args.targets or [args.to or self.default_destination])[0]

    def _publish_cell(self, args: argparse.Namespace, cell: str) -> None:
        from . import api, ids
        from .errors import PublishError

        dest = self._destination(self._cell_destination(args), args)
        kwargs = self._publish_kwargs(args, args.name or "outputs")
        job_id = ids.new_job_id()
        if args.sync_every is not None:
            # Rounds publish changed files to this prefix while the cell runs; the final
            # publish (after the thread stops) is then the last sync: every file, plain, so
            # each key holds its final contents and the manifest, written last, lists all.
            dest = pin_placeholders(dest, job_id)
            kwargs["archive"] = False
        folder, temporary = self._output_folder(job_id)
        keep = not temporary
        try:
            error = self._run_into(folder, cell, dest, job_id, args, kwargs)
            if error is not None and not args.publish_on_error:
                self._record_failed(job_id, dest, kwargs["name"], error)
                keep = True  # the partial outputs, and the traceback in its stderr file
                raise UsageError(
                    f"cell failed{_where(error)} ({_describe(error)}); nothing was published — job "
                    f"{job_id} recorded as failed; outputs and traceback kept in {folder}; "
                    "use --publish-on-error to publish anyway"
                ) from None
            if is_empty(folder):
                if args.optional:
                    if not kwargs["quiet"]:
                        print(
                            "jupyter-publish: nothing to publish (--optional): the cell wrote no files "
                            "to OUTPUT and printed nothing"
                        )
                    return
                raise UsageError(
                    "nothing to publish: the cell wrote no files to OUTPUT and printed nothing "
                    "(use --optional if that can happen)"
                )
            try:
                result = api.publish(folder, dest, job_id=job_id, **kwargs)
            except BaseException as exc:
                keep = True  # a long computation must not be lost to a network error
                if not isinstance(exc, PublishError):
                    raise
                raise UsageError(
                    f"{_one_line(exc)} — the cell's outputs are kept in {folder}: "
                    f"publish them with %publish {folder} --to DEST"
                ) from None
        finally:
            if not keep:
                shutil.rmtree(folder, ignore_errors=True)
        self._show_result(result, args.out)
        if error is not None:
            raise UsageError(
                f"cell failed{_where(error)} ({_describe(error)}); published anyway as job {job_id} "
                "(--publish-on-error), the traceback in its stderr"
            ) from None

    def _output_folder(self, job_id: str) -> tuple[Path, bool]:
        """A fresh OUTPUT folder: kept under fetch_dir if configured, else temporary."""
        if self.fetch_dir:
            folder = Path(self.fetch_dir).expanduser() / job_id
            with _usage_errors():
                folder.mkdir(parents=True)
            return folder, False
        return Path(tempfile.mkdtemp(prefix=f"{job_id}-output-")), True

    def _run_into(
        self,
        folder: Path,
        cell: str,
        dest: Destination,
        job_id: str,
        args: argparse.Namespace,
        kwargs: dict[str, Any],
    ) -> BaseException | None:
        """Run the cell with OUTPUT bound and its output teed; return its exception, if any."""
        syncer = None
        if args.sync_every is not None:
            notes = _Notes(self.shell, bool(kwargs["quiet"]))
            syncer = Syncer(folder, args.sync_every, self._sync_publisher(dest, job_id, kwargs), notes)
        with bound_output(self.shell.user_ns, folder), teed(folder), _quiet_tracebacks(self.shell):
            if syncer is not None:
                syncer.start()
            try:
                outcome = self.shell.run_cell(cell)
            finally:
                if syncer is not None:
                    syncer.stop()
        error = outcome.error_before_exec or outcome.error_in_exec
        write_exit_code(folder, error)
        return error

    def _sync_publisher(
        self, dest: Destination, job_id: str, kwargs: dict[str, Any]
    ) -> Callable[[Path, int], PublishedResult]:
        from . import api

        def publish_snapshot(snapshot: Path, round_number: int) -> PublishedResult:
            options = {**kwargs, "archive": False, "quiet": True}
            options["name"] = f"{kwargs['name']} sync {round_number} of {job_id}"
            return api.publish(snapshot, dest, job_id=round_job_id(job_id, round_number), **options)

        return publish_snapshot

    @staticmethod
    def _record_failed(job_id: str, dest: Destination, name: str, error: BaseException) -> None:
        from . import ids
        from .ledger import Ledger

        ledger = Ledger()
        ledger.start(
            job_id=job_id,
            execution_id=ids.new_execution_id(),
            node_id=ids.node_id(),
            name=name,
            type=dest.scheme,
            destination=dest.text,
        )
        ledger.fail(job_id, f"cell failed: {_describe(error)}")

    # -- %fetch / %%fetch ---------------------------------------------------------

    @no_var_expand
    @line_cell_magic
    @magic_arguments()
    @_fetch_arguments
    def fetch(self, line: str, cell: str | None = None) -> None:
        """Fetch published results back, verify every byte, and preview them inline.

        ``%fetch REF`` or, with one reference per line (blank lines and # comments
        ignored), ``%%fetch``. A reference is a job ID (or a unique prefix of one) or
        a URI any registered backend reads (REF below lists them).
        Write notebook variables as {{name}}, e.g. %fetch {{result.job_id}}.
        """
        magic = "%fetch" if cell is None else "%%fetch"
        args = self._parse(self.fetch, line, magic)
        _check_variable_name(args.out)
        if args.ui:
            self._ui("fetch_panel")
            return
        refs = list(args.refs)
        if cell is not None:
            refs += [self.expand(ref) for ref in _reference_lines(cell)]
        if not refs:
            raise UsageError(
                f"give a reference: %fetch REF (a job ID, {fetch_usage()}) or one per line under %%fetch"
            )
        results = [self._fetch_one(ref, args, several=len(refs) > 1) for ref in refs]
        if args.out:
            self.shell.user_ns[args.out] = results[0] if len(results) == 1 else results

    def _fetch_one(self, ref: str, args: argparse.Namespace, several: bool) -> FetchResult:
        from . import api

        options = {key: getattr(self, key) for key in _FETCH_BACKEND_ARGS if getattr(self, key, None)}
        options.update({key: getattr(args, key) for key in _FETCH_BACKEND_ARGS if getattr(args, key)})
        with _usage_errors(f"{ref}: " if several else ""):
            result = api.fetch(
                ref,
                self._fetch_target(ref, args.to),
                verify=not args.no_verify,
                extract=not args.no_extract,
                quiet=True if (args.quiet or self.quiet) else None,
                max_concurrency=self.max_concurrency if args.jobs is None else args.jobs,
                **({} if args.max_ratio is None else {"max_ratio": args.max_ratio}),
                **options,
            )
        if self.preview and not args.no_preview:
            display(result)
        else:
            print(str(result))
        return result

    def _fetch_target(self, ref: str, to: str | None) -> Path | None:
        if to:
            return Path(to).expanduser()
        if not self.fetch_dir:
            return None  # the core's default: ./NAME
        from .fetcher import default_name

        name = default_name(ref) if "://" in ref else ref
        return Path(self.fetch_dir).expanduser() / name

    # -- %jobs, %cids, %%cids -----------------------------------------------------

    @no_var_expand
    @line_magic
    @magic_arguments()
    @argument("--limit", type=int, metavar="N", help="Only the N newest jobs.")
    @argument("--ui", action="store_true", help="Show the jobs browser instead.")
    def jobs(self, line: str) -> Any:
        """Every publish recorded in the ledger (newest first), as a pandas DataFrame."""
        args = self._parse(self.jobs, line, "%jobs")
        if args.ui:
            self._ui("jobs_browser")
            return None
        from . import api

        with _usage_errors():
            return api.jobs(args.limit)

    @no_var_expand
    @line_cell_magic
    @magic_arguments()
    @argument("job", nargs="?", metavar="JOB", help="A job ID (or unique prefix); default: every job.")
    def cids(self, line: str, cell: str | None = None) -> Any:
        """CIDs as a pandas DataFrame.

        ``%cids [JOB]``: one row per published file, folder and archive (path, cid,
        size, sha256, destination). ``%%cids``: every CID found in the cell text
        (``ipfs add`` output, Bacalhau JSON, logs).
        """
        magic = "%cids" if cell is None else "%%cids"
        args = self._parse(self.cids, line, magic)
        if cell is not None:
            if args.job:
                raise UsageError("%%cids reads CIDs from the cell text and takes no job ID; use %cids JOB")
            return _cids_in_text(cell)
        from . import api

        with _usage_errors():
            return api.cids(args.job)

    # -- widgets ------------------------------------------------------------------

    def _ui(self, factory: str, **kwargs: Any) -> None:
        """Show a panel from ``jupyter_publish.widgets`` (imported only when asked for)."""
        try:
            from . import widgets

            make = getattr(widgets, factory)
        except (ImportError, AttributeError) as exc:
            raise UsageError(f"--ui needs jupyter_publish.widgets.{factory} (ipywidgets): {exc}") from None
        display(make(**kwargs))


def _reference_lines(cell: str) -> list[str]:
    """One reference per line; blank lines and ``#`` comment lines are skipped."""
    lines = (line.strip() for line in cell.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _cids_in_text(text: str) -> Any:
    try:
        from .bacalhau import cids_in_text
    except ImportError as exc:
        raise UsageError(f"%%cids needs jupyter_publish.bacalhau.cids_in_text: {exc}") from None
    with _usage_errors():
        return cids_in_text(text)


# -- extension entry points ------------------------------------------------------------

_LOADED: dict[int, PublishMagics] = {}


def load_ipython_extension(ip: Any) -> PublishMagics:
    """Register one PublishMagics (Magics.__init__ adds it to ``ip.configurables``)."""
    unload_ipython_extension(ip)
    magics = PublishMagics(shell=ip)
    magics.apply_project_settings()
    ip.register_magics(magics)
    _LOADED[id(ip)] = magics
    return magics


def unload_ipython_extension(ip: Any) -> None:
    """Remove the magics and the configurable, so ``%reload_ext`` leaves no duplicate."""
    magics = _LOADED.pop(id(ip), None)
    if magics is None:
        return
    for table in ip.magics_manager.magics.values():
        for name, func in list(table.items()):
            if getattr(func, "__self__", None) is magics:
                del table[name]
    registry = ip.magics_manager.registry
    if registry.get(type(magics).__name__) is magics:
        del registry[type(magics).__name__]
    ip.configurables[:] = [c for c in ip.configurables if c is not magics]


__all__ = [
    "PublishMagics",
    "find_project_settings",
    "load_ipython_extension",
    "pin_placeholders",
    "unload_ipython_extension",
]
