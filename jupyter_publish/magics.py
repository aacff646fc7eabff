"""IPython magics: ``%%publish``, ``%publish``, ``%%fetch``, ``%fetch``, ``%jobs``, ``%cids``.

A thin layer over :mod:`jupyter_publish.api` that wires three parts: what a line
means (:mod:`.magic_args`), running a cell into its OUTPUT folder and handing the
outcome to the front door's job (:mod:`.cellrun`), and what is shown
(:mod:`.magic_display`). The magics never write the ledger or resolve placeholders:
the publisher does. Every error the user can act on becomes an ``IPython`` UsageError
(one line, no traceback). This module, its two ``magic_`` helpers and ``widgets`` are
the only ones that import IPython; the core is imported lazily so
``%load_ext jupyter_publish`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import magic_arguments
from traitlets import Bool, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from . import magic_args, magic_display
from .backends import DEFAULT_DESTINATION, all_options, backend_class, fetch_usage, usage
from .config import PROJECT_SECTION, find_project_settings

if TYPE_CHECKING:
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    from traitlets.utils.bunch import Bunch

    from .destinations import Destination
    from .publisher import Job
    from .results import FetchResult

# Backend options given as flags; a setting's value applies only to its own backend's
# destinations (explicit options always pass, so a misplaced --endpoint is still
# reported by the core).
_PUBLISH_BACKEND_ARGS = tuple(option.name for option in magic_args.PUBLISH_FLAGS)
_FETCH_BACKEND_ARGS = tuple(option.name for option in magic_args.FETCH_FLAGS)


def _setting_traits() -> dict[str, Unicode[str | None, str | bytes | None]]:
    """``PublishMagics.NAME`` settings for the backend options that declare one; a name
    the magics class has already (a plugin's ``shell`` or ``config`` would replace the
    shell with a string and stop the extension loading) is left out, with a warning."""
    traits: dict[str, Unicode[str | None, str | bytes | None]] = {}
    for option in all_options("publish"):
        if not option.setting:
            continue
        if hasattr(Magics, option.name) or hasattr(Configurable, option.name):
            warnings.warn(
                f"jupyter-publish: no PublishMagics.{option.name} setting (a name the magics use)",
                stacklevel=2,
            )
            continue
        traits[option.name] = Unicode(None, allow_none=True, help=option.setting).tag(
            config=True, backend_setting=True
        )
    return traits


# -- errors at the edge ----------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    """What a UsageError says: the error on one line, secrets masked."""
    from .text import one_line

    return one_line(exc, scrub=True)


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


def pin_placeholders(dest: Destination, job_id: str) -> Destination:
    """Resolve a key template once, so every sync and the final publish share one prefix.

    ``{executionID}`` differs per publish and is left to the publisher. Kept for
    callers of this name: the front door does it, :func:`jupyter_publish.api.begin_job`
    with ``resolve_placeholders=True``.
    """
    from .publisher import begin_job

    return begin_job(dest, job_id=job_id, resolve_placeholders=True, preflight=False).destination


def _setting_error(owner: str, exc: TraitError, given: Sequence[str] = ()) -> str:
    """``PublishMagics.quiet expected a boolean, not the int 3``: traitlets' message, on
    one line, naming the setting as it is written in ``%config`` (``given``: the
    settings being set, one of which is then the culprit)."""
    message = _one_line(exc)
    typed = re.match(r"The '(\w+)' trait of an? \w+ instance (.*)", message)
    if typed:
        return f"{owner}.{typed[1]} {typed[2]}"
    if re.match(r"\w+ must be", message):
        return f"{owner}.{message}"
    return f"{owner}.{given[0]}: {message}" if len(given) == 1 else f"{owner}: {message}"


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
        "its OUTPUT folders. Empty: fetch into the working folder; OUTPUT is a folder under "
        "./jupyter-publish-outputs/, removed once published, kept if the cell or its publish failed.",
    ).tag(config=True)

    catalog = Unicode(
        "",
        help="The team's catalog, s3://BUCKET/PREFIX/ or a folder: every publish also writes its "
        "job record there, and %jobs --catalog / %fetch read it. Empty: $JUPYTER_PUBLISH_CATALOG.",
    ).tag(config=True)

    project_file: Path | None = None
    """The pyproject.toml whose ``[tool.jupyter_publish]`` settings were applied, if any."""

    @validate("cid_version")
    def _valid_cid_version(self, proposal: Bunch) -> int:
        if proposal["value"] not in (0, 1):
            raise TraitError(f"cid_version must be 0 or 1, not {proposal['value']!r}")
        return int(proposal["value"])

    @validate("max_concurrency")
    def _valid_concurrency(self, proposal: Bunch) -> int | None:
        from .transfer import MAX_CONCURRENCY

        if proposal["value"] is None:
            return None
        if not 1 <= int(proposal["value"]) <= MAX_CONCURRENCY:
            raise TraitError(f"max_concurrency must be 1 to {MAX_CONCURRENCY}, not {proposal['value']!r}")
        return int(proposal["value"])

    @validate("compression")
    def _valid_compression(self, proposal: Bunch) -> str:
        if proposal["value"] not in ("gzip", "zstd", "none"):
            raise TraitError(f"compression must be gzip, zstd or none, not {proposal['value']!r}")
        return str(proposal["value"])

    @validate("default_destination")
    def _valid_destination(self, proposal: Bunch) -> str:
        from .destinations import parse_destination
        from .errors import DestinationError

        try:
            parse_destination(proposal["value"])
        except DestinationError as exc:
            raise TraitError(str(exc)) from None
        return str(proposal["value"])

    # -- configuration ------------------------------------------------------------

    def update_config(self, config: Config) -> None:
        """``%config PublishMagics.X = bad`` reports the rejected value through
        ``logging.error`` (``ERROR:root:…``, a traceback in some front ends): say it as
        the magics say every error instead, one ``UsageError:`` line; the old value stays.
        """
        try:
            super().update_config(config)
        except TraitError as exc:
            if self.shell is None:
                raise
            owner = type(self).__name__
            given = list(config[owner]) if owner in config else []
            self.shell.show_usage_error(UsageError(_setting_error(owner, exc, given)))

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

    def _parse(self, func: Callable[..., object], line: str, magic: str) -> argparse.Namespace:
        """Split like a shell, substitute ``{{name}}`` per argument, then parse."""
        return magic_args.parse(func, line, magic, self._namespace)

    def expand(self, text: str) -> str:
        """Replace ``{{name}}`` (or ``{{name.attr}}``) with the notebook value; ``{x}`` stays."""
        return magic_args.expand(text, self._namespace)

    @property
    def _namespace(self) -> dict[str, Any]:
        return self.shell.user_ns if self.shell is not None else {}

    # -- %publish / %%publish -----------------------------------------------------

    @no_var_expand
    @line_cell_magic
    @magic_arguments()
    @magic_args.publish_arguments
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
        magic_args.check_variable_name(args.out)
        facts = self._provenance(magic, line, cell)
        if cell is None:
            self._publish_line(args, facts)
        else:
            self._publish_cell(args, cell, facts)

    def _provenance(self, magic: str, line: str, cell: str | None) -> dict[str, Any]:
        """What the magic knows of a job that the core cannot: the line as typed with the
        notebook values it names, the cell as run, the notebook (VS Code says it in
        ``__vsc_ipynb_file__``; Jupyter in ``$JPY_SESSION_NAME``, which the core reads).
        The core keeps only what is not a secret."""
        facts: dict[str, Any] = {"magic_line": f"{magic} {line}".strip()}
        values = magic_args.line_values(line, self._namespace)
        if values:
            facts["magic_values"] = values
        if cell is not None:
            facts["cell_source"] = cell
        notebook = self._namespace.get("__vsc_ipynb_file__")
        if isinstance(notebook, str) and notebook:
            facts["notebook"] = notebook
        return facts

    def _destination(self, text: str, args: argparse.Namespace) -> Destination:
        """Parse and check the destination now, before any work (a typo fails fast)."""
        from .destinations import parse_destination
        from .publisher import check_options

        with _usage_errors():
            dest = parse_destination(text)
            defaults = {
                key: getattr(self, key)
                for key in (
                    o.name for o in backend_class(dest.scheme).options if o.setting and o.name in _SETTINGS
                )
                if getattr(self, key) and key not in dest.options
            }
            explicit = {
                key: getattr(args, key) for key in _PUBLISH_BACKEND_ARGS if getattr(args, key) is not None
            }
            dest = dest.with_options(**{**defaults, **explicit})  # a flag on the line wins
            check_options(dest)
        return dest

    def _publish_line(self, args: argparse.Namespace, facts: dict[str, Any]) -> None:
        if args.ui:
            magic_display.show_panel(
                "publish_panel", shell=self.shell, default_destination=self.default_destination
            )
            return
        magic_args.check_line_publish(args)
        dest = self._destination(args.to or self.default_destination, args)
        from .preflight import preflight

        with _usage_errors():
            preflight(dest)  # no credentials, a dead endpoint: one line before any copying
        options = magic_args.PublishOptions.settle(args, self)
        from . import api

        with tempfile.TemporaryDirectory(prefix="jp-vars-") as tmp, _usage_errors():
            sources = [magic_args.source(token, self._namespace, Path(tmp)) for token in args.targets]
            result = api.publish(
                sources,
                dest,
                name=args.name,
                provenance=facts,
                uses=args.uses or (),
                **self._catalog_args(args.catalog),
                **options.keywords(),
            )
        magic_display.show_result(result, args.out, self._namespace)

    def _publish_cell(self, args: argparse.Namespace, cell: str, facts: dict[str, Any]) -> None:
        from . import api, cellrun

        plan = magic_args.CellOptions.settle(args, self.default_destination)
        dest = self._destination(plan.destination, args)
        options = magic_args.PublishOptions.settle(args, self)
        with _usage_errors():
            # Sync rounds publish changed files while the cell runs; the final publish (after
            # they stop) is then the last sync: every file, plain, to the same prefix, so each
            # key holds its final contents and the manifest, written last, lists them all.
            job = api.begin_job(
                dest,
                name=args.name or "outputs",
                resolve_placeholders=plan.sync_every is not None,
                provenance=facts,
                uses=args.uses or (),
                **self._catalog_args(args.catalog),
            )
            folder, temporary = cellrun.output_folder(self.fetch_dir, job.job_id)
        notes = None if plan.sync_every is None else magic_display.Notes(self.shell, bool(options.quiet))
        try:
            outcome = cellrun.publish_cell(
                self.shell,
                cell,
                job,
                folder,
                temporary=temporary,
                options=options.keywords(),
                sync_every=plan.sync_every,
                note=notes,
                optional=plan.optional,
                publish_on_error=plan.publish_on_error,
            )
        except cellrun.CellFailed as failure:
            message = magic_display.cell_failed(failure)
            magic_display.show_failure(message, failure.error, failure.folder)
            magic_display.keep_record(args.out, self._failed(job, failure.folder), self._namespace)
            raise UsageError(message) from None
        except cellrun.NothingToPublish:
            raise UsageError(magic_display.NOTHING_TO_PUBLISH) from None
        except cellrun.OutputsKept as kept:
            magic_display.keep_record(args.out, self._failed(job, kept.folder), self._namespace)
            raise UsageError(magic_display.outputs_kept(_one_line(kept.cause), kept.folder)) from None
        if outcome.result is None:  # --optional, and nothing to publish
            if not options.quiet:
                print(magic_display.NOTHING_TO_PUBLISH_NOTE)
            return
        magic_display.show_result(outcome.result, args.out, self._namespace)
        if outcome.error is not None:
            message = magic_display.published_anyway(outcome.error, job.job_id)
            magic_display.show_failure(message, outcome.error, None)
            raise UsageError(message) from None

    @staticmethod
    def _failed(job: Job, folder: Path) -> dict[str, Any]:
        """A failed job's record for ``--out``: the ledger's row and where its outputs are."""
        return {**job.record(), "outputs": str(folder)}

    # -- %fetch / %%fetch ---------------------------------------------------------

    @no_var_expand
    @line_cell_magic
    @magic_arguments()
    @magic_args.fetch_arguments
    def fetch(self, line: str, cell: str | None = None) -> None:
        """Fetch published results back, verify every byte, and preview them inline.

        ``%fetch REF`` or, with one reference per line (blank lines and # comments
        ignored), ``%%fetch``. A reference is a job ID (or a unique prefix of one) or
        a URI any registered backend reads (REF below lists them).
        Write notebook variables as {{name}}, e.g. %fetch {{result.job_id}}.
        """
        magic = "%fetch" if cell is None else "%%fetch"
        args = self._parse(self.fetch, line, magic)
        magic_args.check_variable_name(args.out)
        if args.ui:
            magic_display.show_panel("fetch_panel")
            return
        refs = list(args.refs)
        if cell is not None:
            refs += [self.expand(ref) for ref in magic_args.reference_lines(cell)]
        if not refs:
            raise UsageError(
                f"give a reference: %fetch REF (a job ID, {fetch_usage()}) or one per line under %%fetch"
            )
        results = [self._fetch_one(ref, args, several=len(refs) > 1) for ref in refs]
        if args.out:
            self._namespace[args.out] = results[0] if len(results) == 1 else results

    def _fetch_one(self, ref: str, args: argparse.Namespace, several: bool) -> FetchResult:
        from . import api

        options = {
            key: getattr(self, key) for key in _FETCH_BACKEND_ARGS if key in _SETTINGS and getattr(self, key)
        }
        options.update({key: getattr(args, key) for key in _FETCH_BACKEND_ARGS if getattr(args, key)})
        settled = magic_args.FetchOptions.settle(args, self)
        catalog = self._catalog_args(None if args.catalog is True else args.catalog)
        with _usage_errors(f"{ref}: " if several else ""):
            target = self._fetch_target(ref, args.to)
            result = api.fetch(ref, target, **catalog, **settled.keywords(), **options)
        magic_display.show_fetched(result, self.preview and not args.no_preview)
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
    @magic_args.jobs_arguments
    def jobs(self, line: str) -> pd.DataFrame | None:
        """Every publish recorded in the ledger (newest first), as a pandas DataFrame.

        Shown compactly (short job ID, name, status, destination, files, sync rounds if any, size, time);
        the value (``_``) is the full DataFrame with every column.

        ``%jobs --lineage JOB``: the edges (used -> produced) upstream and downstream of
        JOB: what it used (fetched before it, or named with --uses) and what used it.
        """
        args = self._parse(self.jobs, line, "%jobs")
        if args.ui:
            magic_display.show_panel("jobs_browser")
            return None
        from . import api
        from .errors import OptionError
        from .table_view import compact_jobs

        with _usage_errors():
            if args.catalog is None:
                if args.lineage:
                    return api.lineage(args.lineage)
                return compact_jobs(api.jobs(args.limit, rounds=args.rounds))
            catalog = self._catalog_args(None if args.catalog is True else str(args.catalog))
            if not catalog["catalog"]:
                raise OptionError(
                    "no catalog: %jobs --catalog s3://BUCKET/PREFIX/ (or a folder), "
                    "or set PublishMagics.catalog or $JUPYTER_PUBLISH_CATALOG"
                )
            if args.lineage:
                return api.lineage(args.lineage, **catalog)
            return compact_jobs(api.jobs(args.limit, **catalog))

    def _catalog(self, given: str | None) -> str | None:
        """The catalog a line names, else ``PublishMagics.catalog``; None: the core's
        default (``$JUPYTER_PUBLISH_CATALOG``)."""
        return given if given is not None else (self.catalog or None)

    def _catalog_args(self, given: str | None) -> dict[str, Any]:
        """``catalog`` and ``catalog_options`` for the core, settled one way for every
        magic: the catalog a line names, else ``PublishMagics.catalog``, else the
        environment's (``""``: none); on S3 with :meth:`_catalog_options`. So a record a
        %publish writes is where %jobs --catalog, --lineage and %fetch read, and the
        ledger caches that bucket under one name."""
        from .catalog import configured

        text = configured(self._catalog(given))
        if text is None:
            return {"catalog": ""}
        s3 = text.lower().startswith("s3://")
        return {"catalog": text, "catalog_options": self._catalog_options() if s3 else {}}

    def _catalog_options(self) -> dict[str, Any]:
        """The S3 options a catalog takes from ``%config`` (``PublishMagics.endpoint``,
        ``region``, ``profile``): as a destination takes them, each giving way to one the
        location names inline (``,opt=endpoint=…``)."""
        from .catalog.location import S3_OPTIONS

        return {
            o.name: getattr(self, o.name)
            for o in backend_class("s3").options
            if o.setting and o.name in _SETTINGS and o.name in S3_OPTIONS and getattr(self, o.name)
        }

    @no_var_expand
    @line_cell_magic
    @magic_arguments()
    @magic_args.cids_arguments
    def cids(self, line: str, cell: str | None = None) -> pd.DataFrame:
        """CIDs as a pandas DataFrame.

        ``%cids [JOB]``: one row per published file, folder and archive (path, cid,
        size, sha256, destination), shown compactly (hashes shortened); the value is
        the full DataFrame. ``%%cids``: every CID found in the cell text
        (``ipfs add`` output, Bacalhau JSON, logs).
        """
        magic = "%cids" if cell is None else "%%cids"
        args = self._parse(self.cids, line, magic)
        if cell is not None:
            if args.job:
                raise UsageError("%%cids reads CIDs from the cell text and takes no job ID; use %cids JOB")
            return _cids_in_text(cell)
        from . import api
        from .table_view import compact_cids

        with _usage_errors():
            return compact_cids(api.cids(args.job))


def _cids_in_text(text: str) -> pd.DataFrame:
    try:
        from .bacalhau import cids_in_text
    except ImportError as exc:
        raise UsageError(f"%%cids needs jupyter_publish.bacalhau.cids_in_text: {exc}") from None
    with _usage_errors():
        return cids_in_text(text)


_SETTINGS = frozenset(PublishMagics.class_trait_names(backend_setting=True))
"""The backend settings the class kept (a method of the same name, defined later, wins)."""

# -- extension entry points ------------------------------------------------------------

_LOADED: dict[int, PublishMagics] = {}


def load_ipython_extension(ip: InteractiveShell) -> PublishMagics:
    """Register one PublishMagics (Magics.__init__ adds it to ``ip.configurables``)."""
    unload_ipython_extension(ip)
    magics = PublishMagics(shell=ip)
    magics.apply_project_settings()
    ip.register_magics(magics)
    _LOADED[id(ip)] = magics
    return magics


def unload_ipython_extension(ip: InteractiveShell) -> None:
    """Remove the magics and the configurable, so ``%reload_ext`` leaves no duplicate."""
    # Typed as what it is in ``ip.configurables`` (IPython infers that list's items as shells).
    magics: Configurable | None = _LOADED.pop(id(ip), None)
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
    "PROJECT_SECTION",
    "PublishMagics",
    "find_project_settings",
    "load_ipython_extension",
    "pin_placeholders",
    "unload_ipython_extension",
]
