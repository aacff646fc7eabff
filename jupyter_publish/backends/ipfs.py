"""IPFS through a Kubo-compatible RPC API: one publish is one UnixFS directory.

A :class:`~jupyter_publish.backends.base.BatchBackend`: all uploads go up in a single
streamed ``add`` request with ``wrap-with-directory``, so the
result has one root CID (the folder) and every file keeps its relative path under it:
``ipfs://ROOT/path/to/file``. With ``cid_version=1`` leaves are raw, as ``ipfs add
--cid-version=1`` makes them, so the CIDs match what the core computes locally.
"""

from __future__ import annotations

import builtins
import os
import urllib.parse
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import BackendError, DestinationError, OptionError, RefError, SourceError, TransientError
from ..retry import Replay, exactly, exhausted, retrying
from .base import (
    BackendBase,
    BackendOption,
    Destination,
    PublishTarget,
    RemoteObject,
    StoredObject,
    StoreOutcome,
    Upload,
)

if TYPE_CHECKING:
    from ..results import PublishedResult

# The Kubo client (httpx) is imported when first used: the magics read this class's
# declarations when the extension loads, which must stay light.

SCHEME = "ipfs://"


def gateway_base(gateway: str | None = None) -> str | None:
    """``gateway`` or ``$IPFS_GATEWAY`` (URL or multiaddr) as ``http(s)://host[:port]``."""
    text = (gateway or os.environ.get("IPFS_GATEWAY") or "").strip().rstrip("/")
    if not text:
        return None
    if text.startswith("/"):  # a multiaddr, as in Kubo's Addresses.Gateway
        from .kubo import multiaddr_to_url

        try:
            return multiaddr_to_url(text)
        except ValueError:
            raise OptionError(f"cannot use {text!r} as an IPFS gateway address") from None
    if "://" not in text:
        text = f"http://{text}"
    if text.endswith("/ipfs"):
        text = text[: -len("/ipfs")]
    return text


def split_ref(ref: str) -> tuple[str, str]:
    """``ipfs://CID/a/b`` (or ``/ipfs/CID/a/b``, ``CID/a/b``) -> (normalised CID, ``a/b``)."""
    from ..cid import parse_cid
    from .kubo import normalize_hash

    text = ref.strip()
    for prefix in (SCHEME, "/ipfs/"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    cid, _, path = text.partition("/")
    if not cid:
        raise RefError(f"no CID in {ref!r}: write ipfs://CID[/path]")
    parse_cid(cid)
    path = "/".join(part for part in path.split("/") if part)
    return normalize_hash(cid), path


def _sent(upload: Upload, replay: Replay) -> Generator[bytes, None, None]:
    """The upload's bytes, opened only when its part is sent; a file that changed size
    fails in one line before the part is complete (the daemon then adds nothing)."""
    from ..sizes import CHUNK

    return exactly(replay.chunks(CHUNK), upload.size, upload.name)


class IpfsBackend(BackendBase):
    """Adds results to an IPFS node (pinned by default) and reads them back by CID."""

    scheme: ClassVar[str] = "ipfs"
    label: ClassVar[str] = "IPFS"
    example: ClassVar[str] = "ipfs://"
    fetch_example: ClassVar[str] = "ipfs://CID[/path]"
    content_addressed: ClassVar[bool] = True
    options: ClassVar[tuple[BackendOption, ...]] = (
        BackendOption(
            "api",
            "Kubo-compatible RPC API (default: IPFS_API, ~/.ipfs/api).",
            metavar="URL",
            setting="IPFS (Kubo RPC) API URL for ipfs:// destinations.",
            field="IPFS API",
            placeholder="http://127.0.0.1:5001 (IPFS_API)",
        ),
        BackendOption(
            "gateway",
            "IPFS gateway for links and reads (default: IPFS_GATEWAY).",
            metavar="URL",
            setting="IPFS gateway URL for ipfs:// links and reads.",
            field="IPFS gateway",
            placeholder="https://ipfs.io (IPFS_GATEWAY)",
        ),
        BackendOption("timeout", "Seconds without progress that end a request.", flag=False),
    )

    # -- declarations --------------------------------------------------------------------
    @classmethod
    def parse_destination(cls, text: str) -> Destination | None:
        """``ipfs://`` only: content IDs are computed from the bytes, never chosen."""
        lowered = text.lower()
        if lowered in {"ipfs", "ipfs:", "ipfs://"}:
            return Destination(cls.scheme, "ipfs://")
        if lowered.startswith("ipfs://"):
            raise DestinationError(
                f"cannot publish to {text!r}: IPFS content IDs are computed, not chosen; use ipfs://"
            )
        return None

    @classmethod
    def from_destination(cls, dest: Destination, target: PublishTarget) -> tuple[IpfsBackend, str]:
        empty_dirs = () if target.archive else target.dirs
        backend = cls(cid_version=target.cid_version, pin=target.pin, empty_dirs=empty_dirs, **dest.options)
        return backend, target.archive_name

    @classmethod
    def preflight(cls, dest: Destination) -> None:
        """The options valid and the RPC API answering ``version`` (a short timeout)."""
        from ..preflight import REACH_TIMEOUT
        from .kubo import KuboClient

        gateway_base(dest.options.get("gateway"))
        client = KuboClient(dest.options.get("api"), timeout=REACH_TIMEOUT)
        try:
            client.version()
        finally:
            client.close()

    @classmethod
    def check_outcome(cls, outcome: StoreOutcome, sent_root: Callable[[], str]) -> None:
        """The daemon's root CID must be the one the core computed from the same bytes."""
        from ..cid import same_content_cid
        from ..errors import IntegrityError

        remote = outcome.params.get("CID")
        if remote and not same_content_cid(remote, expected := sent_root()):
            raise IntegrityError("IPFS root CID of the published folder", expected, remote)

    @classmethod
    def fetch_options(cls, result: PublishedResult) -> dict[str, Any]:
        return {"api": result.params["API"]} if result.params.get("API") else {}  # the node it went to

    @classmethod
    def for_reading(
        cls, ref: str, options: Mapping[str, Any], recorded_destination: Callable[[], str | None]
    ) -> IpfsBackend:
        taken = {k: v for k, v in options.items() if k in cls.option_names("fetch") and v is not None}
        return cls(**taken)

    @classmethod
    def spec_uri(cls, fields: Mapping[str, str], options: dict[str, Any]) -> str | None:
        return f"{SCHEME}{fields['cid']}" if fields.get("cid") else None

    @classmethod
    def uri_cid(cls, uri: str) -> str | None:
        """The CID pinned on the node: ``ipfs://CID`` names it."""
        return uri[len(SCHEME) :].rstrip("/") or None if uri.startswith(SCHEME) else None

    ranged_reads: ClassVar[bool] = False  # cat is read in windows already

    def __init__(
        self,
        *,
        api: str | None = None,
        gateway: str | None = None,
        cid_version: int = 0,
        pin: bool = True,
        timeout: float | None = None,
        empty_dirs: Sequence[str] = (),
        **_ignored: Any,
    ) -> None:
        self.empty_dirs = list(empty_dirs)
        """Folders with no files, added too so the root CID is the folder's ``cid_of``."""
        if int(cid_version) not in (0, 1):
            raise OptionError(f"cid_version must be 0 or 1, not {cid_version!r}")
        self.cid_version = int(cid_version)
        self.pin = bool(pin)
        self.gateway = gateway_base(gateway)
        from .kubo import KuboClient

        self.client = KuboClient(api, timeout=timeout)
        self.timeout = timeout
        # Fetching through a gateway was asked for: an explicit gateway and no API.
        self.read_via_gateway = bool(gateway) and api is None

    # -- publish -------------------------------------------------------------------------
    def publish(
        self, uploads: Sequence[Upload], progress: Callable[[int], None] | None = None
    ) -> StoreOutcome:
        if not uploads:
            raise SourceError("nothing to publish to IPFS: no files were given")
        replays = [Replay(u.open, u.path, u.name, u.remake) for u in uploads]
        failure: TransientError | None = None

        def add() -> list[dict[str, Any]]:
            # Content-addressed, so adding again is idempotent: after a broken connection
            # every file is sent again (what was sent re-read from disk, or the archive
            # made again, and checked: never re-hashed).
            nonlocal failure
            if failure is not None and not all(r.replayable() for r in replays):
                raise exhausted(failure)  # a stream already partly sent cannot be sent again
            bodies = [(u.name, _sent(u, r)) for u, r in zip(uploads, replays, strict=True)]
            try:
                return self.client.add(
                    [*bodies, *((name, None) for name in self.empty_dirs)],
                    wrap_with_directory=True,
                    cid_version=self.cid_version,
                    raw_leaves=True if self.cid_version == 1 else None,
                    pin=self.pin,
                    progress=progress,
                )
            except TransientError as exc:
                failure = exc
                raise
            finally:
                for _, body in bodies:
                    body.close()  # an archive made again for this attempt stops now

        try:
            added = retrying(add)
        finally:
            for replay in replays:
                replay.close()
        cids = {entry["Name"]: entry["Hash"] for entry in added}
        root = cids.get("")
        if root is None:
            raise BackendError(f"the IPFS daemon at {self.client.api_url} reported no root CID")
        # Checked before anything is built over them or sent back (dag/import).
        for name in [upload.name for upload in uploads] + [""]:
            self._check_reported(name, cids.get(name))
        root = self._our_root(root, added, uploads)
        objects = []
        for upload in uploads:
            cid = cids[upload.name]
            location = f"{SCHEME}{root}/{upload.name}"
            objects.append(
                StoredObject(upload.name, location, self.gateway_url(root, upload.name), {"CID": cid})
            )
        return StoreOutcome(
            type=self.result_type,
            params={"CID": root, "Pinned": self.pin, **self._api_param()},
            uri=f"{SCHEME}{root}",
            objects=objects,
            url=self.gateway_url(root),
        )

    def _check_reported(self, name: str, cid: Any) -> None:
        """Each file the daemon added must come back with a CID (and only a CID)."""
        from ..cid import parse_cid

        what = repr(name) if name else "the folder"
        if cid is None:
            raise BackendError(f"the IPFS daemon at {self.client.api_url} did not report a CID for {what}")
        try:
            parse_cid(cid)
        except DestinationError:
            shown = repr(cid) if len(str(cid)) <= 80 else repr(str(cid)[:80] + "…")
            raise BackendError(
                f"the IPFS daemon at {self.client.api_url} reported {shown} for {what}, which is not a CID"
            ) from None

    def _our_root(self, root: str, added: list[dict[str, Any]], uploads: Sequence[Upload]) -> str:
        """The folder's root as ``cid_of`` builds it, over the file CIDs the daemon reported.

        Daemons wrap a large folder differently (Kubo shards above 256 KiB of links and
        versions differ at the threshold; the js-ipfs test node makes one basic folder
        where Kubo shards). When the daemon's root
        is not ours, our directory blocks (basic and HAMT; small, links only) go to it as a
        CAR through ``dag/import``, pinned: the file blocks are already there from ``add``,
        so the pinned root is ours by construction. Its own wrap from ``add`` stays (pinned).
        """
        from ..car import encode_car
        from ..cid import DagNode, _cid_raw, same_content_cid, tree_blocks

        by_name = {entry["Name"]: entry for entry in added}
        files: dict[str, DagNode | None] = {
            u.name: DagNode(by_name[u.name]["Hash"], by_name[u.name]["Size"], u.size or 0)
            for u in uploads
            if u.name in by_name
        }
        files.update(dict.fromkeys(self.empty_dirs))
        ours, blocks = tree_blocks(files, self.cid_version)
        if same_content_cid(ours.cid, root):
            return root
        roots = retrying(
            lambda: self.client.dag_import(encode_car([_cid_raw(ours.cid)], blocks), pin_roots=self.pin)
        )
        if self.pin and not any(same_content_cid(ours.cid, r) for r in roots):
            raise BackendError(
                f"the IPFS daemon at {self.client.api_url} did not pin the imported root {ours.cid}"
            )
        return ours.cid

    def _api_param(self) -> dict[str, str]:
        """Where it was published, so a fetch by job ID finds the node (never with credentials)."""
        return {} if "@" in self.client.api_url else {"API": self.client.api_url}

    def gateway_url(self, cid: str, path: str = "") -> str | None:
        """A link a browser can open, if a gateway is known."""
        if self.gateway is None:
            return None
        suffix = "/" + urllib.parse.quote(path) if path else ""
        return f"{self.gateway}/ipfs/{cid}{suffix}"

    # -- fetch ---------------------------------------------------------------------------
    def list(self, ref: str) -> list[RemoteObject]:
        """A file -> itself; a directory -> every file (and empty folder) under it, relative to it."""
        cid, path = split_ref(ref)
        target = f"{cid}/{path}" if path else cid
        if self.read_via_gateway:  # a gateway cannot list folders: one file, checked by CID
            name = path.rsplit("/", 1)[-1] if path else cid
            return [RemoteObject(name, f"{SCHEME}{target}", cid=None if path else cid)]
        stat = self.client.files_stat(f"{SCHEME}{target}")
        if stat["Type"] != "dir":
            name = path.rsplit("/", 1)[-1] if path else cid
            return [RemoteObject(name, f"{SCHEME}{target}", size=stat.get("Size"), cid=stat["Hash"])]
        return self._walk(target)

    def _walk(self, target: str) -> builtins.list[RemoteObject]:  # `list` is the method above
        found: list[RemoteObject] = []
        pending = [""]
        while pending:
            rel_dir = pending.pop()
            here = f"{target}/{rel_dir}" if rel_dir else target
            entries = self.client.ls(f"{SCHEME}{here}")
            if not entries and rel_dir:  # no file implies it: list the empty folder itself
                found.append(RemoteObject(rel_dir, f"{SCHEME}{here}", is_dir=True))
            for entry in entries:
                rel = f"{rel_dir}/{entry['Name']}" if rel_dir else entry["Name"]
                if entry["Type"] == "dir":
                    pending.append(rel)
                elif entry["Type"] == "file":
                    found.append(
                        RemoteObject(rel, f"{SCHEME}{target}/{rel}", size=entry["Size"], cid=entry["Hash"])
                    )
        return sorted(found, key=lambda obj: obj.name)

    def read(self, location: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        cid, path = split_ref(location)
        if self.read_via_gateway:
            return self._read_gateway(cid, path, offset, length)
        return self.client.cat(f"{SCHEME}{cid}/{path}" if path else f"{SCHEME}{cid}", offset, length)

    def _read_gateway(self, cid: str, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        from .http import HttpBackend

        reader = HttpBackend(url=self.gateway_url(cid, path) or "", timeout=self.timeout)
        try:
            yield from reader.read(reader.url, offset, length)
        finally:
            reader.close()

    def close(self) -> None:
        self.client.close()
