"""Jobs that outlive their process: who runs a job, what it leaves behind, how it ends.

A publish can end without reaching its ``except`` blocks (SIGKILL, a crashed kernel, a
power cut) or be asked to stop (SIGTERM). So that nothing dangles afterwards:

* the ledger records, for each running job, the PID, host name and process start time
  (from ``/proc/PID/stat``: a reused PID has another start time) — :func:`identity`;
* every S3 multipart upload is recorded (endpoint, bucket, key, UploadId, AWS profile
  name; never a key or secret) *before* its first part is sent, and forgotten once
  completed or aborted (or given up after a few failed aborts) —
  :class:`MultipartJournal`;
* the next run that lists jobs or publishes finds ``running`` jobs of this host whose
  process is gone, marks them ``interrupted`` and cleans their leftovers: temp files of
  the local store and open multipart uploads — :func:`reap`;
* SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main thread, so it
  takes Ctrl-C's path: multipart aborted, job marked failed, temp files removed —
  :func:`sigterm_as_interrupt`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import config

if TYPE_CHECKING:
    from types import FrameType

    from .bundle import Bundle
    from .ledger import Ledger

TERMINATED_REASON = "terminated by SIGTERM; nothing was left open (publish again, or resume)"


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interrupt so every Ctrl-C cleanup path runs for it too."""


# -- liveness ----------------------------------------------------------------------
def host_name() -> str:
    return socket.gethostname()


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22),
    or None where there is no /proc (then only the PID is checked)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def identity() -> tuple[int, str, str | None]:
    """(PID, host, start time) of this process, as recorded for a job it runs."""
    pid = os.getpid()
    return pid, host_name(), start_time(pid)


def is_alive(pid: int, started: str | None) -> bool:
    """Whether process ``pid`` of this host is still the one that started the job."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else: not our job's process
        return False
    if started is None:
        return True
    now = start_time(pid)
    return now is None or now == started


# -- leftovers ---------------------------------------------------------------------
def reap(ledger: Ledger, keep: str | None = None, *, abort_uploads: bool = True) -> list[str]:
    """Mark dead ``running`` jobs of this host ``interrupted`` and clean their leftovers.

    Returns the job IDs newly marked. Jobs of other hosts are left as they are (their
    process cannot be checked from here). ``keep`` is a job whose leftovers must stay
    (the one being resumed). A listing (``abort_uploads=False``) removes temp files but
    keeps a dead job's partial multipart uploads, so that ``resume`` after a look at
    ``jobs`` still sends only the missing parts; the next publish aborts them, in the
    background (see :func:`abort_in_background`), trying again on later runs a few times.
    """
    host = host_name()
    marked = []
    for row in ledger.running_jobs(host):
        if row["job_id"] == keep or row["pid"] is None or is_alive(row["pid"], row["proc_start"]):
            continue
        reason = (
            f"interrupted: process {row['pid']} on {host} ended before the job finished; "
            f"run `jupyter-publish resume {row['job_id']}` to continue it (before the next "
            "publish, which aborts its partial upload)"
        )
        if ledger.mark_interrupted(row["job_id"], row["pid"], reason):
            marked.append(row["job_id"])
    for job_id in set(marked) - {keep}:
        remove_temp_files(job_id)
    if abort_uploads:
        jobs = ledger.jobs_with_open_uploads() - {keep}
        for job_id in jobs:
            remove_temp_files(job_id)
        if jobs:
            abort_in_background(ledger, sorted(jobs))
    return marked


ABORT_TRIES = 5
"""Failed aborts of one recorded multipart upload before it is given up (and noted)."""
ABORT_MAX_AGE = 7 * 86400
"""Seconds after which a recorded upload that still cannot be aborted is given up."""
ABORT_WAIT = 2.0
"""Longest a publish waits for the aborts of earlier jobs' uploads (they go on behind it)."""
_aborting: dict[str, threading.Thread] = {}
_aborting_lock = threading.Lock()


def abort_in_background(ledger: Ledger, job_ids: list[str]) -> None:
    """Abort the jobs' open multipart uploads in a daemon thread, waiting ``ABORT_WAIT`` at most.

    An endpoint that is gone or firewalled would otherwise hold every publish (even to
    ``local``) for its timeouts; one thread per ledger at a time, so a slow abort is never
    tried twice at once.
    """
    where = str(ledger.path)
    with _aborting_lock:
        running = _aborting.get(where)
        if running is not None and running.is_alive():
            return
        worker = threading.Thread(
            target=_abort_all, args=(ledger, job_ids), daemon=True, name="jupyter-publish-abort"
        )
        _aborting[where] = worker
        worker.start()
    worker.join(ABORT_WAIT)


def _abort_all(ledger: Ledger, job_ids: list[str]) -> None:
    with contextlib.suppress(Exception):  # a ledger removed meanwhile, a full disk: next run
        for job_id in job_ids:
            clean_leftovers(ledger, job_id)


def clean_leftovers(ledger: Ledger, job_id: str) -> None:
    """Remove a finished or dead job's temp files and abort its open multipart uploads.

    Each failed abort counts; after ``ABORT_TRIES`` of them, or ``ABORT_MAX_AGE`` after
    the upload began, the record is dropped and the job's error text says what was left.
    """
    remove_temp_files(job_id)
    for record in ledger.open_uploads(job_id):
        tries = ledger.count_abort(record["upload_id"])
        if abort_upload(record):
            ledger.forget_upload(record["upload_id"])
        elif tries >= ABORT_TRIES or _age(record["created_at"]) >= ABORT_MAX_AGE:
            ledger.forget_upload(record["upload_id"])
            ledger.add_note(
                job_id,
                f"its multipart upload to s3://{record['bucket']}/{record['key']} (UploadId "
                f"{record['upload_id']}) could not be aborted in {tries} tries and was given up: "
                "abort it at the store, or let a lifecycle rule remove incomplete uploads",
            )


def _age(created_at: str | None) -> float:
    """Seconds since an ISO-8601 UTC time as the ledger stores it (0 if unreadable)."""
    from datetime import datetime, timezone

    try:
        then = datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - then).total_seconds()


def remove_temp_files(job_id: str) -> int:
    """Delete the local store's temp files of ``job_id``; return how many went."""
    store = config.home() / "store"
    pattern = glob.escape(job_id)
    found = glob.glob(os.path.join(store, "tmp", f"{pattern}-[0-9]*-*")) + glob.glob(
        os.path.join(store, "jobs", f"{pattern}.tmp")
    )
    for path in found:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return len(found)


def abort_upload(record: dict[str, Any]) -> bool:
    """Abort one recorded multipart upload; True once it is gone (aborted or unknown).

    With the AWS profile the upload was made with (recorded by name), else the default
    credential chain; explicit keys are never recorded, so their uploads may fail here.
    """
    import boto3
    import botocore.config
    import botocore.exceptions

    endpoint = record["endpoint"] or None
    options: dict[str, Any] = {"retries": {"max_attempts": 2}, "connect_timeout": 5, "read_timeout": 15}
    if endpoint and "amazonaws.com" not in endpoint:
        options.update(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
        )
    try:
        client = boto3.session.Session(profile_name=record.get("profile") or None).client(
            "s3",
            endpoint_url=endpoint,
            region_name=record["region"] or None,
            config=botocore.config.Config(**options),
        )
        client.abort_multipart_upload(
            Bucket=record["bucket"], Key=record["key"], UploadId=record["upload_id"]
        )
    except botocore.exceptions.ClientError as exc:
        return exc.response.get("Error", {}).get("Code") in {"NoSuchUpload", "404"}
    except (botocore.exceptions.BotoCoreError, ValueError):
        return False  # unreachable or no credentials now: tried again on the next run
    return True


class MultipartJournal:
    """What the S3 backend tells the ledger about a job's multipart uploads.

    ``opened`` is called after CreateMultipartUpload and before any part is sent;
    ``closed`` after CompleteMultipartUpload or AbortMultipartUpload. ``resuming`` jobs
    continue the uploads recorded earlier; ``kept``/``sent`` count parts for the report.
    """

    def __init__(self, ledger: Ledger, job_id: str, resuming: bool = False) -> None:
        self.ledger, self.job_id, self.resuming = ledger, job_id, resuming
        self.kept = self.sent = self.skipped = 0
        self._lock = threading.Lock()

    def opened(
        self,
        endpoint: str | None,
        region: str | None,
        bucket: str,
        key: str,
        upload_id: str,
        profile: str | None = None,
    ) -> None:
        self.ledger.record_upload(self.job_id, endpoint, region, bucket, key, upload_id, profile)

    def closed(self, upload_id: str) -> None:
        self.ledger.forget_upload(upload_id)

    def open_upload(self, bucket: str, key: str) -> str | None:
        """The UploadId a previous run of this job left open for ``bucket/key``, if any."""
        if not self.resuming:
            return None
        for record in self.ledger.open_uploads(self.job_id):
            if record["bucket"] == bucket and record["key"] == key:
                return str(record["upload_id"])
        return None

    def count(self, kept: int = 0, sent: int = 0, skipped: int = 0) -> None:
        with self._lock:
            self.kept += kept
            self.sent += sent
            self.skipped += skipped

    def summary(self) -> str:
        return (
            f"{self.kept} part(s) already stored were kept, {self.sent} sent; "
            f"{self.skipped} object(s) already complete were verified and skipped"
        )


# -- what resume needs -------------------------------------------------------------
def fingerprint(bundle: Bundle) -> list[list[Any]]:
    """[name, size, mtime_ns] of every source file: resume refuses if any changed."""
    rows = []
    for f in bundle.files:
        try:
            mtime = os.stat(f.path).st_mtime_ns
        except OSError:
            mtime = None
        rows.append([f.name, f.size, mtime])
    return rows


def changed(recorded: list[list[Any]], now: list[list[Any]]) -> str | None:
    """A short description of the first difference between two fingerprints, or None."""
    old = {r[0]: r for r in recorded}
    new = {r[0]: r for r in now}
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            return f"{name} is gone"
        if name not in old:
            return f"{name} is new"
        if old[name][1] != new[name][1]:
            return f"{name} changed size ({old[name][1]} -> {new[name][1]} bytes)"
        if old[name][2] != new[name][2]:
            return f"{name} was modified"
    return None


# -- SIGTERM -----------------------------------------------------------------------
class _TermState:
    received = False


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    if _TermState.received:  # a second SIGTERM must not break the cleanup of the first
        return
    _TermState.received = True
    raise Terminated()


def install_sigterm() -> None:
    """For the command line: SIGTERM raises :class:`Terminated` for the process's life."""
    _TermState.received = False
    signal.signal(signal.SIGTERM, _raise_terminated)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """During a publish in a kernel or script: SIGTERM runs Ctrl-C's cleanup first.

    Installed only in the main thread and only over the default disposition, so a
    host's own handler (a server, the CLI's) is never replaced. On the way out the
    default is restored and, if SIGTERM came, re-delivered: the process then ends as
    it was asked to, but only after the job was marked failed and nothing left open.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        installed = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        if installed:
            _TermState.received = False
            signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, OSError):  # not allowed here (an embedded interpreter)
        installed = False
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if _TermState.received:
                _TermState.received = False
                signal.raise_signal(signal.SIGTERM)
