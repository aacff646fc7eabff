"""Run a cell into an output folder, as Bacalhau runs a job into its result bundle.

``OUTPUT`` (and ``$JUPYTER_PUBLISH_OUTPUT``) point at the folder while the cell runs;
stdout and stderr are teed into ``stdout``/``stderr`` files so output stays live and is
also published; ``exitCode`` says whether the cell raised. :func:`publish_cell` is the
whole ``%%publish`` run: the cell (synced every few seconds if asked), then its outcome
handed to the front door's :class:`~jupyter_publish.publisher.Job`, which records it.
No IPython import here: the shell is whatever runs the cell.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .redact import scrub

if TYPE_CHECKING:
    from .publisher import Job
    from .results import PublishedResult

OUTPUT_ENV = "JUPYTER_PUBLISH_OUTPUT"
"""Environment variable holding the ``%%publish`` output folder (for subprocesses)."""
OUTPUT_NAME = "OUTPUT"
BUNDLE_FILES = ("stdout", "stderr", "exitCode")
"""Written into every ``%%publish`` output folder, like Bacalhau's result bundle."""


class Tee:
    """A stream that writes to the notebook and to a file: output stays live and is kept."""

    def __init__(self, stream: TextIO, path: Path) -> None:
        self.stream = stream
        self._file = open(path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        written = self.stream.write(text)
        with self._lock:
            if not self._file.closed:
                self._file.write(text)
                self._file.flush()
        return len(text) if written is None else written

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def close_file(self) -> None:
        with self._lock:
            self._file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def teed(folder: Path) -> Iterator[None]:
    """Copy ``sys.stdout``/``sys.stderr`` into ``folder/stdout`` and ``folder/stderr``."""
    out, err = Tee(sys.stdout, folder / "stdout"), Tee(sys.stderr, folder / "stderr")
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out.stream, err.stream
        out.close_file()
        err.close_file()


@contextlib.contextmanager
def bound_output(namespace: dict[str, Any], folder: Path) -> Iterator[None]:
    """``OUTPUT`` and ``$JUPYTER_PUBLISH_OUTPUT`` point at ``folder``; restored afterwards."""
    missing = object()
    old_value = namespace.get(OUTPUT_NAME, missing)
    old_env = os.environ.get(OUTPUT_ENV)
    namespace[OUTPUT_NAME] = folder
    os.environ[OUTPUT_ENV] = str(folder)
    try:
        yield
    finally:
        if old_value is missing:
            namespace.pop(OUTPUT_NAME, None)
        else:
            namespace[OUTPUT_NAME] = old_value
        if old_env is None:
            os.environ.pop(OUTPUT_ENV, None)
        else:
            os.environ[OUTPUT_ENV] = old_env


def write_exit_code(folder: Path, error: BaseException | None) -> None:
    (folder / "exitCode").write_text("0" if error is None else "1", encoding="utf-8")
    if error is not None:  # a kernel shows tracebacks out of band: keep one in stderr
        # Scrubbed as the folded one shown is: this file is kept, and published with
        # --publish-on-error (a presigned link or a password in the error's message).
        with open(folder / "stderr", "a", encoding="utf-8", errors="replace") as handle:
            handle.write(scrub(cell_traceback(error)))


def is_cell_code(filename: str) -> bool:
    """Whether code came from a cell (IPython's ``<ipython-input-…>``, ipykernel's file)."""
    return filename.startswith("<ipython-input-") or "ipykernel_" in filename


def cell_traceback(error: BaseException) -> str:
    """The cell's traceback from its own first frame (IPython's frames that ran it left
    out), line numbers as the cell is shown (:func:`as_shown`)."""
    tb = error.__traceback__
    while tb is not None and not is_cell_code(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb or error.__traceback__))


def is_empty(folder: Path) -> bool:
    """Empty means the cell wrote no files and printed nothing (the bundle files don't count)."""
    if any(entry.name not in BUNDLE_FILES for entry in folder.iterdir()):
        return False
    return all(
        not (folder / name).exists() or (folder / name).stat().st_size == 0 for name in ("stdout", "stderr")
    )


# -- a %%publish cell, run and published ------------------------------------------------


class CellFailed(Exception):
    """The cell raised and ``publish_on_error`` was not asked: nothing was published, the
    job is recorded as failed, and the folder (with the traceback in stderr) is kept."""

    def __init__(self, job_id: str, folder: Path, error: BaseException) -> None:
        super().__init__(f"cell failed: {describe(error)}")
        self.job_id, self.folder, self.error = job_id, folder, error


class NothingToPublish(Exception):
    """The cell wrote no files and printed nothing, and that was not ``optional``."""


class OutputsKept(Exception):
    """Publishing the cell's outputs failed; they are kept in ``folder`` to publish again."""

    def __init__(self, folder: Path, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.folder, self.cause = folder, cause


@dataclass(frozen=True)
class CellOutcome:
    """A ``%%publish`` run that did not fail the cell's way (see :class:`CellFailed`)."""

    result: PublishedResult | None
    """``None``: nothing to publish and ``optional``."""
    error: BaseException | None
    """The cell's error, published anyway (``publish_on_error``)."""


def describe(exc: BaseException, limit: int = 200) -> str:
    """``ZeroDivisionError: division by zero``, one line, not too long, no secret."""
    from .text import describe as one_line_description

    return one_line_description(exc, limit, scrub=True)


KEPT_UNDER = "jupyter-publish-outputs"
"""The folder, under the working folder, that holds a ``%%publish`` cell's OUTPUT when no
``fetch_dir`` is set: removed once published, kept when the cell or its publish failed,
where the notebook's file browser can open it (the system temp folder is out of its reach)."""


def output_folder(keep_under: str | os.PathLike[str] | None, job_id: str) -> tuple[Path, bool]:
    """A fresh OUTPUT folder, and whether it is temporary: ``keep_under/JOB_ID`` if given
    (kept after the publish), else ``./jupyter-publish-outputs/JOB_ID`` removed once
    published (the system temp folder only if the working folder is read-only)."""
    if keep_under:
        folder = Path(keep_under).expanduser() / job_id
        folder.mkdir(parents=True)
        return folder, False
    folder = Path(KEPT_UNDER).absolute() / job_id
    try:
        folder.mkdir(parents=True)
    except OSError:
        return Path(tempfile.mkdtemp(prefix=f"{job_id}-output-")), True
    return folder, True


def remove_output(folder: Path) -> None:
    """Remove a published temporary OUTPUT folder, and ``jupyter-publish-outputs`` with it
    when nothing else is kept there (no empty folder left in the user's working folder)."""
    shutil.rmtree(folder, ignore_errors=True)
    if folder.parent.name == KEPT_UNDER:
        with contextlib.suppress(OSError):  # not empty: another job's kept outputs
            folder.parent.rmdir()


@contextlib.contextmanager
def quiet_tracebacks(shell: Any) -> Iterator[None]:
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


MAGIC_LINE = "# %%publish\n"
"""Put back in place of the magic line IPython takes off a cell magic's body, so line
numbers (the traceback's, the one-line report's, a SyntaxError's) count as the cell is
shown: its line 1 is the ``%%publish`` line."""


def as_shown(cell: str) -> str:
    """The body to run, its lines numbered as in the notebook; a body that starts with a
    cell magic of its own (``%%time``) runs as it is: a cell magic must come first."""
    return cell if cell.lstrip().startswith("%%") else MAGIC_LINE + cell


def run_into(shell: Any, folder: Path, cell: str, syncer: Any = None) -> BaseException | None:
    """Run the cell with OUTPUT bound and its output teed; return its exception, if any.

    ``syncer`` (a :class:`~jupyter_publish.sync.Syncer`) runs only while the cell does.
    """
    with bound_output(shell.user_ns, folder), teed(folder), quiet_tracebacks(shell):
        if syncer is not None:
            syncer.start()
        try:
            outcome = shell.run_cell(as_shown(cell))
        finally:
            if syncer is not None:
                syncer.stop()
    error: BaseException | None = outcome.error_before_exec or outcome.error_in_exec
    write_exit_code(folder, error)
    return error


def publish_cell(
    shell: Any,
    cell: str,
    job: Job,
    folder: Path,
    *,
    temporary: bool,
    options: dict[str, Any],
    sync_every: float | None = None,
    note: Callable[[str], None] | None = None,
    optional: bool = False,
    publish_on_error: bool = False,
) -> CellOutcome:
    """Run ``cell`` into ``folder`` and publish it as ``job`` with ``options``.

    With ``sync_every``, what changed is published every so many seconds while the cell
    runs (to ``job``'s destination, which should have its placeholders resolved), then
    the final publish is the last sync: every file, plain. A temporary folder is removed
    once published; kept when the cell failed or the publish did (a long computation
    must not be lost to a network error).
    """
    from .errors import PublishError
    from .sync import Syncer

    syncer = None
    if sync_every is not None:
        options = {**options, "archive": False}
        syncer = Syncer(folder, sync_every, _round_publisher(job, options), note or (lambda text: None))
    keep = not temporary
    try:
        error = run_into(shell, folder, cell, syncer)
        if error is not None and not publish_on_error:
            keep = True  # the partial outputs, and the traceback in its stderr file
            failure = CellFailed(job.job_id, folder, error)
            job.fail(str(failure))
            raise failure
        if is_empty(folder):
            if optional:
                return CellOutcome(None, error)
            raise NothingToPublish("the cell wrote no files to OUTPUT and printed nothing")
        try:
            result = job.publish(folder, **options)
        except BaseException as exc:
            keep = True
            if not isinstance(exc, PublishError):
                raise
            raise OutputsKept(folder, exc) from None
    finally:
        if not keep:
            remove_output(folder)
    return CellOutcome(result, error)


def _round_publisher(job: Job, options: dict[str, Any]) -> Callable[[Path, int], PublishedResult]:
    """What a :class:`~jupyter_publish.sync.Syncer` round calls: ``job``'s round publish."""

    def publish_snapshot(snapshot: Path, round_number: int) -> PublishedResult:
        return job.publish_round(snapshot, round_number, **options)

    return publish_snapshot
