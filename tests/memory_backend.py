"""A whole backend in one file: objects kept in this process's memory.

``mem://STORE/PREFIX/`` destinations and ``mem://STORE/KEY`` (or ``PREFIX/``)
references. It is what a new backend writes and nothing more: the class declarations
(:class:`~jupyter_publish.backends.base.BackendBase`) tell the publisher, the fetcher,
the magics, the widgets and the command line everything they need about ``mem://``, and
the per-object methods (:class:`~jupyter_publish.backends.base.ObjectBackend`) move the
bytes. One ``register_backend("mem", MemoryBackend)`` line makes it usable everywhere.

The store is a process-global dict, so the command line run in-process
(``jupyter_publish.cli.main``) and the notebook magics see what the API published.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from jupyter_publish.backends.base import (
    BackendBase,
    BackendOption,
    Destination,
    ProgressCallback,
    PublishTarget,
    RemoteObject,
    StoredObject,
    StoreOutcome,
    Upload,
)
from jupyter_publish.errors import DestinationError, NotFoundError

STORES: dict[str, dict[str, bytes]] = {}
"""store name -> {key: bytes}: every ``mem://`` object of this process."""
NOTES: dict[str, str] = {}
"""``mem://STORE/KEY`` -> the ``note`` option it was published with (shows options arrive)."""
_LOCK = threading.Lock()
_PREFIX = "mem://"


def split(ref: str) -> tuple[str, str]:
    """``mem://STORE/KEY`` -> (``STORE``, ``KEY``)."""
    if not ref.lower().startswith(_PREFIX):
        raise DestinationError(f"not a memory reference: {ref!r} (write mem://STORE/KEY)")
    store, _, key = ref[len(_PREFIX) :].partition("/")
    if not store:
        raise DestinationError(f"no store in {ref!r}: write mem://STORE/PREFIX/")
    return store, key


class MemoryBackend(BackendBase):
    """Objects in a dict; resumable and content-addressed it is not."""

    # -- what the rest of the package asks the class -------------------------------
    scheme: ClassVar[str] = "mem"
    result_type: ClassVar[str] = "memory"
    label: ClassVar[str] = "memory"
    example: ClassVar[str] = "mem://STORE/PREFIX/"
    fetch_example: ClassVar[str] = "mem://STORE/KEY"
    options: ClassVar[tuple[BackendOption, ...]] = (
        BackendOption("note", "A note kept with every object published.", metavar="TEXT", fetch=False),
    )

    @classmethod
    def parse_destination(cls, text: str) -> Destination | None:
        if not text.lower().startswith(_PREFIX):
            return None
        store, key = split(text)
        return Destination(cls.scheme, text, bucket=store, key=key)

    @classmethod
    def from_destination(cls, dest: Destination, target: PublishTarget) -> tuple[MemoryBackend, str]:
        key = target.object_key(target.resolve(dest.key))
        name = key.rsplit("/", 1)[-1] if target.archive else target.archive_name
        return cls(store=dest.bucket, key=key, **dest.options), name

    @classmethod
    def fetch_options(cls, result: Any) -> dict[str, Any]:
        return {}  # nothing to remember: the URI says it all

    @classmethod
    def for_reading(
        cls, ref: str, options: Mapping[str, Any], recorded_destination: Callable[[], str | None]
    ) -> MemoryBackend:
        return cls()

    @classmethod
    def spec_uri(cls, fields: Mapping[str, str], options: dict[str, Any]) -> str | None:
        return f"{_PREFIX}{fields['store']}/{fields.get('key', '')}" if fields.get("store") else None

    # -- the per-object protocol ------------------------------------------------------
    def __init__(self, *, store: str = "", key: str = "", note: str | None = None, **_ignored: Any) -> None:
        self.store, self.key, self.note = store, key, note

    def _key(self, name: str) -> str:
        """The key itself for a single archive, else ``name`` under the prefix."""
        return self.key if self.key and not self.key.endswith("/") else f"{self.key}{name}"

    def put(self, upload: Upload, progress: ProgressCallback | None = None) -> StoredObject:
        chunks = []
        with upload.open() as reader:  # read once, to its end: the core hashes as it goes
            while chunk := reader.read(1 << 16):
                chunks.append(chunk)
                if progress:
                    progress(len(chunk))
        key = self._key(upload.name)
        location = f"{_PREFIX}{self.store}/{key}"
        with _LOCK:
            STORES.setdefault(self.store, {})[key] = b"".join(chunks)
            if self.note is not None:
                NOTES[location] = self.note
        return StoredObject(upload.name, location)

    def outcome(self, objects: Sequence[StoredObject]) -> StoreOutcome:
        single = len(objects) == 1 and self.key and not self.key.endswith("/")
        key = self._key(objects[0].name) if single else self.key
        uri = f"{_PREFIX}{self.store}/{key}"
        return StoreOutcome(self.result_type, {"Store": self.store, "Key": key}, uri, list(objects))

    def list(self, ref: str) -> list[RemoteObject]:
        store, key = split(ref)
        objects = STORES.get(store, {})
        if key in objects:
            return [RemoteObject(key.rsplit("/", 1)[-1], ref, size=len(objects[key]))]
        prefix = key if not key or key.endswith("/") else f"{key}/"
        found = [
            RemoteObject(name[len(prefix) :], f"{_PREFIX}{store}/{name}", size=len(data))
            for name, data in sorted(objects.items())
            if name.startswith(prefix)
        ]
        if not found:
            raise NotFoundError(f"nothing at {ref}")
        return found

    def read(self, location: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        store, key = split(location)
        data = STORES.get(store, {}).get(key)
        if data is None:
            raise NotFoundError(f"{location} not found")
        yield data[offset : None if length is None else offset + length]

    def close(self) -> None:
        pass
