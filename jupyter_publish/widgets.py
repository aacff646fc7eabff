"""Notebook widgets: publish, fetch and browse jobs by pointing and clicking.

Thin layers over :mod:`jupyter_publish.api`, so a click does exactly what the
functions, magics and command line do. Publishing and fetching run in a background
thread to keep the notebook responsive; the thread only sets widget traits (progress,
status, ``Output.outputs``), which ipywidgets 8 syncs from any thread, and never prints:
printed output from a thread lands in whichever cell runs at that moment (FACTS.md).

This is the only module (with ``magics``) that imports ipywidgets and IPython.
"""

from __future__ import annotations

import html
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import ipywidgets as w

from . import api, config
from .backends import (
    DEFAULT_DESTINATION,
    BackendOption,
    all_options,
    backend_class,
    fetch_usage,
    registered_backends,
    scheme_of,
    usage,
)
from .errors import DestinationError, PublishError, RefError, SourceError
from .ids import short_job_id
from .progress import listening
from .results import FetchResult, PublishedResult
from .sizes import counted, human_size
from .text import one_line

log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    # The old constants, now made from the registered backends' declarations.
    if name == "DEFAULT_DESTINATIONS":
        return tuple(default_destinations())
    if name == "SCHEME_OPTIONS":
        return {
            cls.scheme: scheme_options(cls.scheme)
            for cls in registered_backends()
            if scheme_options(cls.scheme)
        }
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_destinations() -> list[str]:
    """The starting point of every registered backend's destinations (its ``start``)."""
    return [cls.start for cls in registered_backends()]


def scheme_options(scheme: str) -> tuple[str, ...]:
    """The option fields that apply to ``scheme``'s destinations (the core rejects the others)."""
    return tuple(option.name for option in backend_class(scheme).options if option.field)


def _uri_cid(uri: str) -> str | None:
    """The CID a result URI names (a content-addressed store's), if any."""
    try:
        return backend_class(scheme_of(uri)).uri_cid(uri) if "://" in uri else None
    except DestinationError:
        return None


def _panel_options() -> list[BackendOption]:
    """Every backend option with a field in the publish panel, once per name."""
    return [option for option in all_options("publish") if option.field]


_STATUS_FILTERS = [("any status", ""), *((s, s) for s in ("published", "failed", "interrupted", "running"))]


# -- small helpers ----------------------------------------------------------------------


def _wide() -> w.Layout:
    # "auto", not "100%": a widget's own margin comes on top of a 100% width, which
    # pushed the Options' inputs past the accordion's right edge.
    return w.Layout(width="auto", max_width="760px")


def _text(description: str, value: str = "", placeholder: str = "", cls: type = w.Text) -> Any:
    style = {"description_width": "110px"}
    return cls(value=value, description=description, placeholder=placeholder, layout=_wide(), style=style)


def _n_files(n: int) -> str:
    return counted(n, "file")


_ERROR_LIMIT = 400
"""Characters of an error a widget shows: the notebook shows one line, not a traceback."""


_DONE = "<span style='color:var(--jp-success-color1,#2e7d32)'>&#x2714;</span>"
"""A check mark every font has (an emoji needs an emoji font the browser may lack)."""


def _error_html(message: str) -> str:
    return (
        "<span style='color:var(--jp-error-color1,#d32f2f)'>"
        f"&#x26A0; {html.escape(one_line(message, _ERROR_LIMIT))}</span>"
    )


def _display_data(bundle: dict[str, Any]) -> dict[str, Any]:
    return {"output_type": "display_data", "data": bundle, "metadata": {}}


def mimebundle(obj: Any) -> dict[str, Any]:
    """Format any object the way the notebook would (DataFrames, previews, cards)."""
    from IPython import get_ipython

    data: dict[str, Any]
    shell = get_ipython()
    if shell is not None:
        data, _ = shell.display_formatter.format(obj)
        return data
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(obj)
    return data


def show(output: w.Output, *bundles: dict[str, Any]) -> None:
    """Replace an Output's contents; safe from a thread because it never uses ``with out:``."""
    output.outputs = tuple(_display_data(b) for b in bundles)


def split_paths(text: str) -> list[str]:
    """``"a.csv, results/ , *.png"`` -> ``["a.csv", "results/", "*.png"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _paths_text(paths: Sequence[Any] | str | os.PathLike[str] | None, shell: Any = None) -> str:
    if paths is None:
        return _output_folder(shell)
    if isinstance(paths, (str, os.PathLike)):
        return os.fspath(paths)
    return ", ".join(os.fspath(p) for p in paths)


def _output_folder(shell: Any = None) -> str:
    """``OUTPUT`` from the user's namespace (set by ``%%publish``), when there is one."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    value = shell.user_ns.get("OUTPUT") if shell is not None else None
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else ""


def recent_destinations(limit: int = 20) -> list[str]:
    """Destinations that worked before (newest first), then the usual starting points."""
    from .ledger import Ledger

    try:
        rows = Ledger().jobs(500)
    except Exception:  # an unreadable ledger must not stop the panel from opening
        log.debug("could not read the ledger for recent destinations", exc_info=True)
        rows = []
    used = [r["destination"] for r in rows if r["status"] == "published" and r["destination"]]
    return list(dict.fromkeys([*used, *default_destinations()]))[:limit]


# -- the shared run-in-a-thread machinery -------------------------------------------------


_R = TypeVar("_R")
"""What a panel's call returns (a PublishedResult, a FetchResult)."""


class _TaskPanel(w.VBox, Generic[_R]):
    """A button that runs one call, with a progress bar, a status line and an Output."""

    def __init__(self, label: str, icon: str) -> None:
        super().__init__()
        self.button = w.Button(description=label, icon=icon, button_style="primary")
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="320px"))
        self.status = w.HTML("")
        self.output = w.Output()
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None
        self.button.on_click(lambda _button: self.start())

    # subclasses fill these in
    def _task(self) -> _R:
        raise NotImplementedError

    def _describe(self) -> str:
        raise NotImplementedError

    def _succeed(self, result: _R) -> None:
        raise NotImplementedError

    def _redact(self, message: str) -> str:
        return message

    def _after(self) -> None:
        """Called after every attempt, success or failure (after the status is shown)."""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> threading.Thread | None:
        """What the button does: run the call in a background thread (ignored if one runs)."""
        if self.running:
            return None
        self.button.disabled = True
        self._thread = threading.Thread(target=self.run, name=f"jupyter-publish-{self.button.description}")
        self._thread.daemon = True
        self._thread.start()
        return self._thread

    def wait(self, timeout: float | None = None) -> bool:
        """Join the background call; True when it has finished (for tests and scripts)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def run(self) -> _R | None:
        """Run the call here and now; return its result, or None after showing the error."""
        self._begin()
        try:
            with listening(self._on_progress):
                result = self._task()
            self.progress.value, self.progress.bar_style = 1.0, "success"
            self._succeed(result)
        except Exception as exc:  # a thread must not die with a traceback in some cell
            self._fail(exc)
            return None
        finally:
            self.button.disabled = False
            self._after()
        return result

    def _begin(self) -> None:
        self.button.disabled = True
        self.last_error = None
        self.progress.value, self.progress.bar_style = 0.0, "info"
        self.output.outputs = ()
        self.status.value = html.escape(self._describe())

    def _on_progress(self, done: int, total: int | None) -> None:
        """Move the bar in 1% steps: every trait change is a message to the browser."""
        if not total:
            return
        fraction = min(done / total, 1.0)
        if fraction - self.progress.value >= 0.01 or fraction >= 1.0:
            self.progress.value = fraction

    def _fail(self, exc: Exception) -> None:
        """One red line; unexpected errors keep their type name, the traceback goes to a debug log."""
        if isinstance(exc, PublishError):
            message = str(exc)
        else:
            log.debug("jupyter-publish widget call failed", exc_info=True)  # not stderr: see FACTS.md
            message = f"{type(exc).__name__}: {exc}"
        from .redact import scrub

        self.last_error = one_line(scrub(self._redact(message)), _ERROR_LIMIT)
        self.progress.bar_style = "danger"
        self.status.value = _error_html(self.last_error)


# -- publish ------------------------------------------------------------------------------


class PublishPanel(_TaskPanel[PublishedResult]):
    """Paths, destination, options and credentials, and a Publish button."""

    def __init__(
        self,
        *,
        paths: Sequence[Any] | str | os.PathLike[str] | None = None,
        destination: str | None = DEFAULT_DESTINATION,
        shell: Any = None,
        default_destination: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__("Publish", "upload")
        self.last_result: PublishedResult | None = None
        self.paths = _text("Paths", _paths_text(paths, shell), "results/, table.csv, *.png (comma-separated)")
        self.destination = w.Combobox(
            value=destination or default_destination or DEFAULT_DESTINATION,
            options=recent_destinations(),
            ensure_option=False,
            description="Destination",
            placeholder=usage(),
            layout=_wide(),
            style={"description_width": "110px"},
        )
        self._build_option_fields(options)
        self.extra_options = options
        """Further keyword options for ``publish`` (``method``, ``headers``, ``cid_version``…)."""
        self.access_key = _text("Access key", "", "from the AWS credential chain", w.Password)
        self.secret_key = _text("Secret key", "", "", w.Password)
        self.accordion = self._accordion()
        self.destination.observe(lambda _c: self.show_backend_fields(), names="value")
        self.show_backend_fields()
        self.children = [
            self.paths,
            self.destination,
            self.accordion,
            w.HBox([self.button, self.progress]),
            self.status,
            self.output,
        ]

    def _build_option_fields(self, options: dict[str, Any]) -> None:
        def field(key: str, description: str, placeholder: str) -> w.Text:
            value = options.pop(key, None)
            return _text(description, "" if value is None else str(value), placeholder)

        # One field per backend option that declares one (endpoint, region, api…), as
        # an attribute of that name: panel.endpoint.value.
        self.option_fields = {
            option.name: field(option.name, option.field or option.name, option.placeholder)
            for option in _panel_options()
        }
        for name, text in self.option_fields.items():
            setattr(self, name, text)
        self.name = field("name", "Name", "a label for the job (default: the folder name)")
        self.archive = w.Checkbox(value=bool(options.pop("archive", True)), description="one .tar.gz archive")

    def _accordion(self) -> w.Accordion:
        fields = [self.name, self.archive, *self.option_fields.values()]
        self.credentials_note = w.HTML("")
        note = w.HTML(
            "<small>Given to this publish's client only (never put in the environment, "
            "recorded in the ledger or shown), and cleared after each publish.</small>"
        )
        self.credential_fields = w.VBox([self.access_key, self.secret_key, note])
        return w.Accordion(
            children=[w.VBox(fields), w.VBox([self.credentials_note, self.credential_fields])],
            titles=("Options", "Credentials"),
            selected_index=None,
            layout=_wide(),
        )

    @property
    def scheme(self) -> str | None:
        """The backend scheme of the destination as typed so far (None: not one yet)."""
        text = self.destination.value.strip() or DEFAULT_DESTINATION
        head = text.partition("://")[0] if "://" in text else text.partition(",")[0].rstrip(":")
        try:
            return backend_class(head).scheme
        except DestinationError:
            return None

    def show_backend_fields(self) -> None:
        """Show the option fields and credentials of the destination's backend only.

        A destination still being typed (no known scheme yet) shows every field.
        """
        scheme = self.scheme
        wanted = set(scheme_options(scheme)) if scheme else set(self.option_fields)
        for name, text in self.option_fields.items():
            text.layout.display = None if name in wanted else "none"
        credentials = backend_class(scheme).credentials if scheme else None
        self.credential_fields.layout.display = None if credentials or not scheme else "none"
        self.credentials_note.value = (
            ""
            if credentials or not scheme
            else f"<small>{html.escape(scheme)} destinations take no keys.</small>"
        )
        self.accordion.set_title(1, credentials or "Credentials")

    @property
    def shown_option_fields(self) -> list[str]:
        """The names of the backend option fields on show (for tests and scripts)."""
        return [name for name, text in self.option_fields.items() if text.layout.display != "none"]

    def publish_now(self) -> PublishedResult | None:
        """Publish synchronously (tests, scripts); errors show in the status and return None."""
        return self.run()

    def _describe(self) -> str:
        destination = self.destination.value.strip() or DEFAULT_DESTINATION
        return f"Publishing {self.paths.value.strip() or '…'} to {destination}…"

    def backend_options(self, scheme: str) -> dict[str, str]:
        """The filled-in option fields that apply to this scheme's backend."""
        values = {name: self.option_fields[name].value.strip() for name in scheme_options(scheme)}
        return {name: value for name, value in values.items() if value}

    def _task(self) -> PublishedResult:
        from .destinations import parse_destination
        from .preflight import preflight

        paths = split_paths(self.paths.value)
        if not paths:
            raise SourceError("nothing to publish: type one or more paths, separated by commas")
        destination = self.destination.value.strip() or DEFAULT_DESTINATION
        parsed = parse_destination(destination)  # a bad destination stops here, unrecorded
        scheme = parsed.scheme
        options = {**self.extra_options, **self.backend_options(scheme)}
        options.update(self._typed_keys(scheme))
        taken = set(backend_class(scheme).option_names("publish"))
        # No credentials, a dead endpoint: one line before any copying.
        preflight(parsed.with_options(**{k: v for k, v in options.items() if k in taken}))
        return api.publish(
            paths,
            destination,
            archive=self.archive.value,
            name=self.name.value.strip() or None,
            quiet=True,
            **options,
        )

    def _typed_keys(self, scheme: str) -> dict[str, str | None]:
        """The password boxes as explicit options for this one publish's client (empty:
        the backend's own chain), as the destination's backend takes them.

        They go to that client only, never to os.environ, and are cleared afterwards.
        """
        return backend_class(scheme).typed_credentials(self.access_key.value, self.secret_key.value)

    def _redact(self, message: str) -> str:
        """Belt and braces: a store's error text must never echo a typed secret."""
        for secret in (self.secret_key.value, self.access_key.value):
            if secret:
                message = message.replace(secret, "***")
        return message

    def _after(self) -> None:
        """Forget the typed keys: widget state is synced to the browser and saved in notebooks."""
        self.access_key.value = ""
        self.secret_key.value = ""

    def _succeed(self, result: PublishedResult) -> None:
        from .cards import result_card

        self.last_result = result
        n_files = sum(f.kind == "file" for f in result.files)
        self.status.value = (
            f"{_DONE} Published job <code>{html.escape(result.job_id)}</code> to "
            f"<code>{html.escape(result.uri)}</code> ({_n_files(n_files)}, {human_size(result.total_size)})"
        )
        show(self.output, {"text/plain": str(result), "text/html": result_card(result)})
        self._remember_destination(result.destination)

    def _remember_destination(self, destination: str) -> None:
        if destination and destination not in self.destination.options:
            self.destination.options = (destination, *self.destination.options)


# -- fetch --------------------------------------------------------------------------------


class FetchPanel(_TaskPanel[FetchResult]):
    """A reference (job ID or URI), where to put it, and a Fetch button with a preview."""

    def __init__(self, ref: Any = "", *, dest: str = "", verify: bool = True) -> None:
        super().__init__("Fetch", "download")
        self.last_result: FetchResult | None = None
        self.ref = _text("Reference", _ref_text(ref), f"job ID, {fetch_usage()}")
        self.dest = _text("Into", dest, "a folder (default: ./NAME in the working folder)")
        self.verify = w.Checkbox(value=verify, description="verify sha256 / CID")
        self.preview = self.output
        """The fetched result's card and inline preview (same widget as ``output``)."""
        self.children = [
            self.ref,
            self.dest,
            self.verify,
            w.HBox([self.button, self.progress]),
            self.status,
            self.output,
        ]

    def fetch_now(self) -> FetchResult | None:
        """Fetch synchronously (tests, scripts); errors show in the status and return None."""
        return self.run()

    def _describe(self) -> str:
        return f"Fetching {self.ref.value.strip() or '…'}…"

    def _task(self) -> FetchResult:
        ref = self.ref.value.strip()
        if not ref:
            raise RefError("nothing to fetch: type a job ID or a URI")
        dest = self.dest.value.strip() or None
        return api.fetch(ref, dest, verify=self.verify.value, quiet=True)

    def _succeed(self, result: FetchResult) -> None:
        from .cards import fetch_card

        self.last_result = result
        state = "verified" if result.verified else "<b>not verified</b> (nothing recorded to check against)"
        where = html.escape(str(result.dest))
        count = _n_files(len(result.files))
        self.status.value = f"{_DONE} Fetched {count} into <code>{where}</code>, {state}"
        show(self.output, fetch_card(result))


def _ref_text(ref: Any) -> str:
    job_id = getattr(ref, "job_id", None)
    return str(job_id) if job_id else os.fspath(ref) if ref else ""


# -- jobs ---------------------------------------------------------------------------------


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (a home given as a relative path or a symlink)."""
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


class JobsBrowser(w.VBox):
    """The ledger as a filterable list: pick a job to see its files and CIDs, fetch it, copy its CID.

    It stays current: a job this process records (a magic, the API, a panel) is listed
    as soon as the ledger has it, through :mod:`jupyter_publish.events`.
    """

    def __init__(self, *, limit: int | None = 1000) -> None:
        from .clipboard import CopyButton

        super().__init__(layout=w.Layout(width="100%"))
        self.limit = limit
        self.all_rows: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        """The jobs currently listed (after the filters)."""
        self._labels: dict[str, str] = {}
        """Each listed job's label, made once per row read (1,000 of them cost 64 ms a relist)."""
        self.copied_cid: str | None = None
        """The CID last put on the clipboard (the page says so after the click)."""
        self._relisting = False
        self._lock = threading.RLock()
        self.filter = _text("Filter", "", "job ID, name, destination or status")
        self.filter.layout.width = "440px"
        self.status_filter = w.Dropdown(options=_STATUS_FILTERS, value="", description="Status")
        self.jobs = w.Select(options=[], rows=10, layout=w.Layout(width="auto", max_width="960px"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.fetch_button = w.Button(description="Fetch & preview", icon="download")
        self.copy_button = CopyButton(description="Copy CID", empty_hint="select a job that has a CID")
        self.cid = w.HTML("", layout=w.Layout(width="auto", max_width="960px"))
        """The selected job's CID, as the Copy CID button will copy it."""
        self.count = w.HTML("")
        self.status = w.HTML("")
        self.details = w.Output(layout=w.Layout(width="auto", max_width="960px", overflow="auto"))
        self.fetcher = FetchPanel()
        self._wire()
        wrap = w.Layout(flex_flow="row wrap", align_items="center")
        self.children = [
            w.HBox([self.filter, self.status_filter, self.count], layout=wrap),
            self.jobs,
            w.HBox([self.refresh_button, self.fetch_button, self.copy_button], layout=wrap),
            self.cid,
            self.status,
            self.details,
            self.fetcher,
        ]
        self.refresh()
        from .events import on_job_changed

        self._unsubscribe = on_job_changed(self._job_changed)
        self._shown = False
        self._stale = False
        self._view_count = 0  # ask the page to count this browser's views (ipywidgets' own trait)
        self.observe(self._views_changed, names="_view_count")

    def _wire(self) -> None:
        self.filter.observe(lambda _c: self.apply_filter(), names="value")
        self.status_filter.observe(lambda _c: self.apply_filter(), names="value")
        self.jobs.observe(lambda _c: None if self._relisting else self.show_files(), names="value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.fetch_button.on_click(lambda _b: self.fetch_selected())
        self.copy_button.on_copied(self._copied)
        self.copy_button.on_failed(self._copy_failed)

    def _job_changed(self, _job_id: str, ledger_path: Path) -> None:
        """A job was recorded or finished in this process: list it (no Refresh needed).
        A write to another ledger (another home's, a test's) is not what this browser lists.

        A browser whose output is gone from the page (its cell run again or cleared) is
        not re-read on every publish: it is marked stale and re-read if a view comes back.
        """
        if not _same_file(ledger_path, config.home() / "ledger.sqlite"):
            return
        if self._shown and not self._view_count:
            self._stale = True
            return
        # Another job's files are not shown again: with a 5,000-file job selected, each
        # publish (two row changes) re-drew its table, a second and more per publish.
        self._update(_job_id, files=_job_id == self.jobs.value)

    def _update(self, job_id: str, files: bool) -> None:
        """``job_id``'s row alone read again and put in its place: re-reading 1,000 jobs
        cost 0.45 s, twice per publish, with a browser open while publishing many."""
        from .ledger import Ledger
        from .tables import jobs_frame

        with self._lock:
            try:
                fresh = _records(jobs_frame(Ledger().jobs(job_id=job_id)))
            except Exception:
                fresh = []
            if not fresh:  # a sync round (its job's count changed), or gone: read them all
                self.refresh(files=files)
                return
            rows = [r for r in self.all_rows if r["job_id"] != job_id]
            rows.append(fresh[0])
            rows.sort(key=lambda r: str(r["job_id"]), reverse=True)  # newest first, as listed
            self.all_rows = rows[: self.limit] if self.limit else rows
            self._labels[job_id] = _label(fresh[0])
            self._apply_filter(files)

    def _views_changed(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._shown = True
            if self._stale:
                self._stale = False
                self.refresh()

    def close(self) -> None:
        self._unsubscribe()
        super().close()

    @property
    def selected(self) -> dict[str, Any] | None:
        """The selected job's ledger row."""
        return next((r for r in self.rows if r["job_id"] == self.jobs.value), None)

    def refresh(self, files: bool = True) -> None:
        """Re-read the ledger (after publishing from another process). ``files=False``:
        the selected job's files are shown again only if the selection changed."""
        with self._lock:  # the publishing thread and the notebook's may both ask
            try:
                self.all_rows = _records(api.jobs(self.limit))
            except Exception as exc:
                self.status.value = _error_html(f"cannot read the ledger: {exc}")
                return
            self._labels = {r["job_id"]: _label(r) for r in self.all_rows}
            self._apply_filter(files)

    def apply_filter(self) -> None:
        """List the jobs matching every word of the filter and the status choice."""
        with self._lock:
            self._apply_filter()

    def _apply_filter(self, files: bool = True) -> None:
        words = self.filter.value.lower().split()
        wanted = self.status_filter.value
        self.rows = [
            r
            for r in self.all_rows
            if (not wanted or r["status"] == wanted) and all(word in _haystack(r) for word in words)
        ]
        self.count.value = f"{len(self.rows)} of {len(self.all_rows)} jobs"
        keep = self.jobs.value
        ids = [r["job_id"] for r in self.rows]
        self._relisting = True  # one show_files() below, not one per intermediate selection
        try:
            self.jobs.options = [(self._labels.get(r["job_id"]) or _label(r), r["job_id"]) for r in self.rows]
            self.jobs.value = keep if keep in ids else (ids[0] if ids else None)
        finally:
            self._relisting = False
        if files or self.jobs.value != keep:
            self.status.value = ""
            self.show_files()

    def select(self, job_id: str) -> None:
        self.jobs.value = job_id

    def show_files(self) -> None:
        """The selected job's files with sha256 and CID (``cids(job)``)."""
        row = self.selected
        cid = _row_cid(row) if row is not None else None
        self.copy_button.text = cid or ""
        self.cid.value = f"CID <code style='user-select:all'>{html.escape(cid)}</code>" if cid else ""
        if row is None:
            self.details.outputs = ()
            return
        if row["status"] in ("failed", "interrupted"):
            self.status.value = _error_html(
                f"{row['job_id']} {row['status']}: {row.get('error') or 'no reason recorded'}"
            )
        try:
            frame = api.cids(row["job_id"])
        except Exception as exc:
            self.status.value = _error_html(str(exc))
            return
        from .table_view import FILE_VIEW, html_table, text_table

        files = frame.reset_index(drop=True)
        show(
            self.details,
            {"text/plain": text_table(files, FILE_VIEW), "text/html": html_table(files, FILE_VIEW)},
        )

    def copy_cid(self) -> str | None:
        """The selected job's CID, the one Copy CID copies (None, with a reason, if none).

        For a content-addressed store's job that is the CID its URI names (pinned); for the
        others, the folder's content CID. The copying itself happens in the page, on the
        button's click: only the page can write the clipboard.
        """
        row = self.selected
        if row is None:
            self.status.value = _error_html("select a job first")
            return None
        cid = _row_cid(row)
        if not cid:
            self.status.value = _error_html(f"job {row['job_id']} has no CID (status {row['status']})")
            return None
        self.copy_button.text = cid
        return cid

    def _copied(self, text: str) -> None:
        self.copied_cid = text
        self.status.value = f"{_DONE} Copied <code>{html.escape(text)}</code> to the clipboard."

    def _copy_failed(self, reason: str) -> None:
        self.status.value = _error_html(f"the browser refused the clipboard ({reason}): select the CID above")

    def fetch_selected(self) -> threading.Thread | None:
        """Fetch the selected job in the background and preview it below."""
        row = self.selected
        if row is None:
            self.status.value = _error_html("select a job first")
            return None
        self.fetcher.ref.value = row["job_id"]
        return self.fetcher.start()


def _records(frame: Any) -> list[dict[str, Any]]:
    """DataFrame rows as plain dicts, missing values as None."""
    import pandas as pd

    return [
        {k: (None if _is_missing(v, pd) else v) for k, v in row.items()} for row in frame.to_dict("records")
    ]


def _is_missing(value: Any, pd: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _row_cid(row: dict[str, Any]) -> str | None:
    """A job's CID: the one its URI names (a content-addressed store's), else its root CID."""
    return _uri_cid(str(row.get("uri") or "")) or row.get("root_cid") or None


def _haystack(row: dict[str, Any]) -> str:
    keys = ("job_id", "name", "destination", "status", "uri", "root_cid")
    return " ".join(str(row.get(k) or "") for k in keys).lower()


def _label(row: dict[str, Any]) -> str:
    created = row.get("created_at")
    if created is not None and hasattr(created, "strftime"):
        when = created.strftime("%Y-%m-%d %H:%M")
    else:
        when = str(created or "")
    n_files = row.get("n_files")
    size = f"{_n_files(n_files)}, {human_size(int(row['total_size'] or 0))}" if n_files else ""
    job = short_job_id(row["job_id"])
    parts = [job, row["status"], when, row.get("name") or "", f"→ {row['destination']}", size]
    return "  ".join(p for p in parts if p)


# -- the factories the magics call -------------------------------------------------------


def publish_panel(
    *,
    paths: Sequence[Any] | str | os.PathLike[str] | None = None,
    destination: str | None = None,
    shell: Any = None,
    default_destination: str | None = None,
    **options: Any,
) -> PublishPanel:
    """A form to publish files (default: ``OUTPUT``) with a live progress bar and result card.

    ``destination`` falls back to ``default_destination`` (the magics pass their configured
    one), then ``local``; ``shell`` is the IPython shell whose ``OUTPUT`` is the default path.
    Other keywords prefill the option fields or go to :func:`publish` as they are.
    """
    return PublishPanel(
        paths=paths, destination=destination, shell=shell, default_destination=default_destination, **options
    )


def fetch_panel(ref: Any = "", **options: Any) -> FetchPanel:
    """A form to fetch a job ID or URI, verified, with an inline preview."""
    return FetchPanel(ref, **options)


def jobs_browser() -> JobsBrowser:
    """Browse the ledger: filter jobs, see their files and CIDs, fetch, copy a CID."""
    return JobsBrowser()


__all__ = [
    "FetchPanel",
    "JobsBrowser",
    "PublishPanel",
    "fetch_panel",
    "jobs_browser",
    "publish_panel",
]
