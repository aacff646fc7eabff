"""Continuous output sync: publish what changed in a folder every few seconds.

DeepSquare's ``continuousOutputSync`` for a notebook cell: a long computation's partial
results are already published while it runs. Every round is a plain publish to the
final job's prefix; the final publish (after :meth:`Syncer.stop`) is a plain publish of
the whole folder to that prefix, so it overwrites every file with its final contents and
writes the complete manifest last.
"""

from __future__ import annotations

import contextlib
import contextvars
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .ids import decode_ulid, encode_ulid
from .sizes import counted
from .text import describe

if TYPE_CHECKING:
    from .results import PublishedResult

SYNC_THREAD_NAME = "jupyter-publish-sync"
ROUND_NAME_GLOB = "* sync [0-9]* of j-*"
"""An SQLite GLOB matching the ledger name of a sync round (:func:`round_name`)."""


def round_name(name: str, round_number: int, final_job_id: str) -> str:
    """``outputs sync 2 of j-…``: a round's name in the ledger, which ends with the final
    job's ID, so ``jobs()`` can count a job's rounds and leave them out of the list."""
    return f"{name} sync {round_number} of {final_job_id}"


def round_job_id(final_job_id: str, round_number: int) -> str:
    """A job ID for sync round ``round_number`` that sorts after earlier rounds and before the final job.

    The final job's ID is chosen when the cell starts (its prefix holds it), so IDs made
    later would sort after it. The ledger trusts the newest job ID's record of an object
    location, and every round writes to the final job's prefix: the final job must stay
    the newest, or a file changed after its last round would be checked against the draft.
    Rounds take the final ID's millisecond less one, the round number, then 40 random bits.
    """
    try:
        millis = decode_ulid(final_job_id.removeprefix("j-")) >> 80
    except ValueError:
        millis = -1
    if millis <= 0 or not 0 < round_number < 1 << 40:
        raise ValueError(f"not a job ID and round number: {final_job_id!r}, {round_number!r}")
    return "j-" + encode_ulid((millis - 1) << 80 | round_number << 40 | secrets.randbits(40))


class Syncer:
    """Publishes new and changed files of a folder every few seconds, in a thread.

    Like DeepSquare's continuous output sync. Each round copies the changed files into
    a snapshot first, so a file still being written can never disagree with the
    checksum recorded for it. A failed round is reported and retried next time.
    """

    def __init__(
        self,
        folder: Path,
        every: float,
        publish: Callable[[Path, int], PublishedResult],
        note: Callable[[str], None],
    ) -> None:
        self.folder, self.every, self._publish, self._note = folder, every, publish, note
        self.job_ids: list[str] = []
        self._seen: dict[str, tuple[int, int]] = {}
        self._rounds = 0
        self._stop = threading.Event()
        # The cell's context: a kernel's stdout routes a write by a context variable (the
        # cell's message header), which a plain thread would not have.
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._loop,), name=SYNC_THREAD_NAME, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for a round in progress, so it cannot race the final publish."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sync_once()
            except Exception as exc:  # keep syncing; the final publish still runs
                self._note(f"sync failed ({describe(exc, scrub=True)}); retrying in {self.every:g} s")

    def _changed(self) -> dict[str, tuple[int, int]]:
        changed = {}
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file()):
            try:
                info = path.stat()
            except OSError:
                continue  # deleted meanwhile
            rel = path.relative_to(self.folder).as_posix()
            signature = (info.st_size, info.st_mtime_ns)
            if info.st_size and self._seen.get(rel) != signature:
                changed[rel] = signature
        return changed

    def sync_once(self) -> PublishedResult | None:
        """One round: publish what changed since the last successful round."""
        changed = self._changed()
        if not changed:
            return None
        with tempfile.TemporaryDirectory(prefix="jp-sync-") as tmp:
            snapshot = Path(tmp) / "snapshot"
            copied = {}
            for rel, signature in changed.items():
                target = snapshot / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(OSError):
                    shutil.copy2(self.folder / rel, target)
                    copied[rel] = signature
            if not copied:
                return None
            self._rounds += 1
            result = self._publish(snapshot, self._rounds)
        self._seen.update(copied)
        self.job_ids.append(result.job_id)
        files = counted(len(copied), "file")
        self._note(f"synced {files} to {result.uri} (round {self._rounds}, job {result.job_id})")
        return result
