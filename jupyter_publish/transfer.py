"""The one place that moves many objects at once: a bounded pool with clean cancellation.

Real links have latency and a per-connection ceiling, so one object after another wastes
most of the link (AWS's S3 guidelines scale by parallel connections). Backends therefore do
per-object work and the core runs it here: at most ``max_concurrency`` objects in flight,
tasks submitted lazily (20,000 files never become 20,000 pending futures), the first
failure stops the rest (running tasks see :func:`check_cancelled` fail at their next read)
and is the one raised. Ctrl-C in the calling thread cancels the same way.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from .errors import OptionError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .backends.base import Backend, StoreOutcome, Upload

T = TypeVar("T")

DEFAULT_CONCURRENCY = 10
"""Objects in flight, as boto3's transfer manager and ``aws s3 cp --recursive`` use."""
CONCURRENCY_ENV = "JUPYTER_PUBLISH_JOBS"
MAX_CONCURRENCY = 64


class Cancelled(Exception):
    """Raised inside a task whose transfer was cancelled by another task's failure."""


_state = threading.local()


def check_cancelled() -> None:
    """Raise :class:`Cancelled` if the transfer this thread works for was cancelled."""
    event: threading.Event | None = getattr(_state, "cancel", None)
    if event is not None and event.is_set():
        raise Cancelled("cancelled because another transfer of the same job failed")


def concurrency(value: float | str | None = None) -> int:
    """``value``, else ``$JUPYTER_PUBLISH_JOBS``, else 10; checked to be a whole number 1…64."""
    source = "max_concurrency"
    if value is None or value == "":
        value = os.environ.get(CONCURRENCY_ENV) or DEFAULT_CONCURRENCY
        source = CONCURRENCY_ENV if os.environ.get(CONCURRENCY_ENV) else source
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise OptionError(f"{source} must be a whole number, not {value!r}")
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise OptionError(f"{source} must be a whole number, not {value!r}") from None
    if not 1 <= count <= MAX_CONCURRENCY:
        raise OptionError(f"{source} must be 1 to {MAX_CONCURRENCY}, not {count}")
    return count


def pause(seconds: float) -> None:
    """Sleep ``seconds`` (a retry's backoff), ending early with :class:`Cancelled` when this
    thread's transfer is cancelled; in short steps, so Ctrl-C is never held up."""
    event: threading.Event | None = getattr(_state, "cancel", None)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if event is not None:
            event.wait(min(left, 0.1))
        else:
            time.sleep(min(left, 0.1))
        check_cancelled()


@contextmanager
def cancel_scope(event: threading.Event) -> Iterator[None]:
    """Make :func:`check_cancelled` in this thread follow ``event``."""
    previous = getattr(_state, "cancel", None)
    _state.cancel = event
    try:
        yield
    finally:
        _state.cancel = previous


def run_all(tasks: Iterable[Callable[[], T]], max_concurrency: int) -> list[T]:
    """Run ``tasks`` with at most ``max_concurrency`` at once; results in task order.

    The first exception cancels everything not yet started, lets running tasks stop at
    their next :func:`check_cancelled`, and is re-raised; Ctrl-C does the same. Tasks
    stuck in a read that never returns (a stalled server) are waited for at most
    :data:`GRACE` seconds: the workers are daemon threads, so neither the caller nor the
    interpreter's exit waits out a socket timeout. With one worker the tasks run in the
    calling thread (no threads at all).
    """
    cancel = threading.Event()
    if max_concurrency <= 1:
        with cancel_scope(cancel):
            return [task() for task in tasks]
    todo: queue.SimpleQueue[tuple[int, Callable[[], T]] | None] = queue.SimpleQueue()
    finished: queue.SimpleQueue[tuple[int, tuple[T] | BaseException]] = queue.SimpleQueue()
    workers = [
        threading.Thread(
            target=_work, args=(todo, finished, cancel), daemon=True, name=f"jupyter-publish-transfer-{i}"
        )
        for i in range(max_concurrency)
    ]
    for worker in workers:
        worker.start()
    results: dict[int, T] = {}
    source = enumerate(tasks)
    failure: BaseException | None = None
    in_flight = 0
    try:
        exhausted = False
        while True:
            while not exhausted and failure is None and in_flight < 2 * max_concurrency:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                todo.put(item)
                in_flight += 1
            if not in_flight:
                break
            try:  # a short timeout keeps Ctrl-C deliverable to this thread
                index, outcome = finished.get(timeout=0.25)
            except queue.Empty:
                continue
            in_flight -= 1
            if not isinstance(outcome, BaseException):
                results[index] = outcome[0]
                continue
            # The first real error wins over the Cancelled it caused in other tasks.
            if failure is None or (isinstance(failure, Cancelled) and not isinstance(outcome, Cancelled)):
                failure = outcome
            cancel.set()
            break  # the rest is _wind_down's: a bounded wait for what is still running
    except BaseException:  # KeyboardInterrupt while waiting: stop the workers too
        cancel.set()
        _wind_down(todo, finished, workers, in_flight)
        raise
    _wind_down(todo, finished, workers, in_flight if failure is not None else 0)
    if failure is not None:
        raise failure
    return [results[i] for i in range(len(results))]


GRACE = 1.0
"""Seconds a cancelled transfer waits for tasks still running before it gives up on them
(they are daemon threads: one stuck in a stalled read ends with the idle limit, alone)."""


def _work(
    todo: queue.SimpleQueue[tuple[int, Callable[[], T]] | None],
    finished: queue.SimpleQueue[tuple[int, tuple[T] | BaseException]],
    cancel: threading.Event,
) -> None:
    # A result travels as a 1-tuple, so a task that returns an exception is not a failure.
    with cancel_scope(cancel):
        while (item := todo.get()) is not None:
            index, task = item
            try:
                check_cancelled()
                finished.put((index, (task(),)))
            except BaseException as exc:  # reported to run_all, in its thread
                finished.put((index, exc))


def _wind_down(
    todo: queue.SimpleQueue[tuple[int, Callable[[], T]] | None],
    finished: queue.SimpleQueue[tuple[int, tuple[T] | BaseException]],
    workers: list[threading.Thread],
    in_flight: int,
) -> None:
    """Tell the workers to stop; wait (at most GRACE s) for the tasks still in flight."""
    for _ in workers:
        todo.put(None)
    deadline = time.monotonic() + GRACE
    while in_flight and (left := deadline - time.monotonic()) > 0:
        try:
            finished.get(timeout=min(left, 0.25))
            in_flight -= 1
        except queue.Empty:
            continue
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))


def store_all(backend: Backend, uploads: list[Upload], max_concurrency: int) -> StoreOutcome:
    """Put every upload: small ones ``max_concurrency`` at a time, then each large one alone
    (the backend parallelises inside it, e.g. multipart parts), so memory stays bounded.

    A :class:`~jupyter_publish.backends.base.BatchBackend` gets them all in one call.
    """
    from .backends.base import ObjectBackend

    if not isinstance(backend, ObjectBackend):
        return backend.publish(uploads, None)
    # A backend may know that threads do not pay off for it (the local disk store).
    max_concurrency = min(max_concurrency, getattr(backend, "max_concurrency_hint", max_concurrency))
    inside: int | None = getattr(backend, "parallel_above", None)
    small: list[Upload] = []
    large: list[Upload] = []
    for upload in uploads:
        fits = inside is None or (upload.size is not None and upload.size <= inside)
        (small if fits else large).append(upload)
    stored = run_all([partial(backend.put, upload) for upload in small], max_concurrency)
    stored += [backend.put(upload) for upload in large]
    by_name = {obj.name: obj for obj in stored}
    return backend.outcome([by_name[upload.name] for upload in uploads])


class DaemonPool:
    """A small thread pool whose workers never hold up Ctrl-C or the interpreter's exit.

    ``concurrent.futures.ThreadPoolExecutor`` joins its workers at exit and in
    ``shutdown(wait=True)``, so one worker stuck in a read from a stalled server holds the
    caller (and a Ctrl-C) for the whole socket timeout. Here workers are daemon threads
    and :meth:`shutdown` waits at most :data:`GRACE` seconds for running tasks.
    Tasks run inside ``cancel_scope(cancel)`` when an event is given.
    """

    def __init__(self, workers: int, name: str, cancel: threading.Event | None = None) -> None:
        from concurrent.futures import Future

        self._future = Future
        # (run the task into its future, cancel that future); None tells a worker to stop.
        self._todo: queue.SimpleQueue[tuple[Callable[[], None], Callable[[], bool]] | None]
        self._todo = queue.SimpleQueue()
        self._cancel = cancel
        self._shut = False
        self._threads = [
            threading.Thread(target=self._work, daemon=True, name=f"{name}-{i}") for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        future: Future[T] = self._future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

        self._todo.put((run, future.cancel))
        return future

    def _work(self) -> None:
        with cancel_scope(self._cancel or threading.Event()):
            while (item := self._todo.get()) is not None:
                item[0]()

    def shutdown(self, *, cancel: bool = False, grace: float = GRACE) -> None:
        """Stop taking tasks; wait for running ones (at most ``grace`` s if cancelling).
        Only the first call does anything."""
        if self._shut:
            return
        self._shut = True
        if cancel and self._cancel is not None:
            self._cancel.set()
        if cancel:  # drop what has not started
            while True:
                try:
                    item = self._todo.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[1]()
        for _ in self._threads:
            self._todo.put(None)
        deadline = time.monotonic() + grace if cancel else None
        for thread in self._threads:
            if deadline is None:
                while thread.is_alive():  # short joins: Ctrl-C stays deliverable
                    thread.join(0.25)
            else:
                thread.join(max(0.0, deadline - time.monotonic()))
