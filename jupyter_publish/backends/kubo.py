"""A thin client for the Kubo RPC API (``POST /api/v0/...``), on httpx.

Works against Kubo and js-ipfs alike, smoothing over their differences: CIDv1 comes
back in base32 whichever base the daemon printed, ``Size`` is always an int, and
directory listings say ``file``/``dir``. Uploads stream as a multipart body built by a
generator, so a file is never held in memory. Every call that looks content up sends
the RPC's own ``timeout=`` as well as a client timeout: an offline node asked for a CID
it does not have would otherwise wait forever.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from ..config import idle_timeout
from ..errors import (
    BackendError,
    CredentialsError,
    NotFoundError,
    OptionError,
    PublishError,
    TransientError,
)
from ..multipart import Form, Part
from ..retry import reset_while_connecting, stalled
from ..sizes import CHUNK
from ..text import one_line

DEFAULT_API = "http://127.0.0.1:5001"
_LIMIT = 300
"""Characters of a daemon's error message kept in ours."""
CAT_WINDOW = 64 * 1024 * 1024
"""``cat`` asks for this many bytes per request, so the RPC timeout bounds each window,
not the whole download of a large file."""
CONNECT_TIMEOUT = 10.0
ANSWER_LIMIT = 1024 * 1024
"""The most an answer to ``dag/import`` may be (one line per root), and the slack above
what ``add``'s one line per entry can be: a daemon that sends more is not believed."""

AddSource = BinaryIO | Iterator[bytes] | Iterable[bytes] | bytes | None
"""A file's content (a binary reader, chunks, or bytes); ``None`` marks a directory."""

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_UNIXFS_TYPES = {0: "file", 1: "dir", 2: "file", 3: "file", 4: "symlink", 5: "dir"}
_NOT_FOUND = re.compile(
    r"does not exist|not found|no link named|no such|not pinned|could not resolve",
    re.IGNORECASE,
)
_NO_SUCH_COMMAND = {"not found", "404 page not found", "method not allowed"}
_TIMED_OUT = re.compile(r"timed out|deadline exceeded", re.IGNORECASE)


# -- where the API is -----------------------------------------------------------------
def resolve_api(api: str | None = None) -> str:
    """The API base URL: ``api``, else ``$IPFS_API``, else ``$IPFS_PATH/api``, else :5001."""
    if api and api.strip():
        return api_url(api)
    env = os.environ.get("IPFS_API", "").strip()
    if env:
        return api_url(env)
    repo = Path(os.environ.get("IPFS_PATH") or Path.home() / ".ipfs").expanduser()
    try:
        written = (repo / "api").read_text().strip()
    except OSError:
        written = ""
    return api_url(written) if written else DEFAULT_API


def api_url(text: str) -> str:
    """Turn ``http://host:port``, ``/ip4/HOST/tcp/PORT`` or ``host:port`` into a base URL."""
    text = text.strip()
    try:
        if text.startswith("/"):
            return multiaddr_to_url(text)
        if "://" not in text:
            text = f"http://{text}"
        parts = urllib.parse.urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError
        parts.port  # noqa: B018 - raises ValueError on a bad port
        path = parts.path.rstrip("/")
        path = path[: -len("/api/v0")] if path.endswith("/api/v0") else path
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    except ValueError:
        raise OptionError(
            f"cannot use {_redact(text)!r} as an IPFS API address: "
            "write http://host:port, /ip4/HOST/tcp/PORT or host:port"
        ) from None


def multiaddr_to_url(addr: str) -> str:
    """``/ip4/1.2.3.4/tcp/5001[/http|/https|/tls/http]`` -> ``http://1.2.3.4:5001``."""
    parts = addr.strip().strip("/").split("/")
    if len(parts) < 4 or parts[2] != "tcp" or not parts[3].isdigit():
        raise ValueError(addr)
    proto, host, port, rest = parts[0], parts[1], parts[3], parts[4:]
    if proto == "ip6":
        host = f"[{host}]"
    elif proto not in ("ip4", "dns", "dns4", "dns6"):
        raise ValueError(addr)
    scheme = "https" if rest in (["https"], ["tls", "http"]) else "http"
    if rest not in ([], ["http"], ["https"], ["tls", "http"]):
        raise ValueError(addr)
    return f"{scheme}://{host}:{port}"


def _redact(url: str) -> str:
    """The URL without any user:password part, for messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid address>"
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


# -- normalising what the daemon says -------------------------------------------------------
def normalize_hash(text: str) -> str:
    """CIDv0 stays ``Qm…``, CIDv1 becomes base32; a trailing path is kept as is."""
    from ..cid import normalize_cid

    cid, sep, rest = str(text).partition("/")
    try:
        return normalize_cid(cid) + sep + rest
    except PublishError:
        return str(text)


def _is_cid(text: str) -> bool:
    from ..cid import parse_cid

    try:
        parse_cid(text)
    except PublishError:
        return False
    return True


def _int(value: Any) -> int:
    """Kubo sends sizes as strings, js-ipfs as numbers."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _entry_type(value: Any) -> str:
    if isinstance(value, str):
        return {"directory": "dir", "dir": "dir", "file": "file"}.get(value.lower(), value)
    return _UNIXFS_TYPES.get(_int(value), "unknown")


def ipfs_path(ref: str) -> str:
    """``CID[/p]``, ``/ipfs/CID[/p]`` or ``ipfs://CID[/p]`` -> ``/ipfs/CID[/p]``."""
    ref = ref.strip()
    if ref.startswith("ipfs://"):
        ref = ref[len("ipfs://") :]
    elif ref.startswith("/ipfs/"):
        ref = ref[len("/ipfs/") :]
    elif ref.startswith("/"):
        return ref  # /ipns/… or an MFS path: the daemon decides
    return "/ipfs/" + ref.strip("/")


# -- multipart bodies ------------------------------------------------------------------------
def _check_name(name: str) -> str:
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{name!r} is not a relative POSIX path for IPFS")
    return name


def _tree(files: Iterable[tuple[str, AddSource]]) -> list[tuple[str, AddSource]]:
    """Add the missing parent directories and order parts depth first.

    Each directory part must come before its contents and a directory's contents must
    be contiguous (Kubo's multipart walker does not re-enter a directory it has left).
    """
    entries: dict[str, AddSource] = {}
    dirs: set[str] = set()
    for name, source in files:
        name = _check_name(name)
        if name in entries or (source is not None and name in dirs):
            raise ValueError(f"{name!r} is given twice, or as both a file and a directory")
        if source is None:
            dirs.add(name)
        entries[name] = source
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if entries.get(parent) is not None:
                raise ValueError(f"{parent!r} is both a file and a directory")
            dirs.add(parent)
    for parent in dirs:
        entries.setdefault(parent, None)
    return sorted(entries.items(), key=lambda item: item[0].split("/"))


def _quote_filename(name: str) -> str:
    """Percent-encode like Kubo's CLI; js-ipfs drops filenames shorter than 2 characters."""
    quoted = urllib.parse.quote(name, safe="")
    if len(quoted) < 2:
        quoted = "".join(f"%{byte:02X}" for byte in name.encode())
    return quoted


def _chunks(source: AddSource) -> Generator[bytes, None, None]:
    if source is None:
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
    elif hasattr(source, "read"):
        while chunk := source.read(CHUNK):
            yield chunk
    else:
        yield from source


def _parts(entries: list[tuple[str, AddSource]], progress: Callable[[int], None] | None) -> Iterator[Part]:
    """The request's parts, in order; each file is read once, as it is sent."""
    for name, source in entries:
        kind = "application/x-directory" if source is None else "application/octet-stream"
        yield Part(_quote_filename(name), kind, _counted(_chunks(source), progress))


def _counted(
    chunks: Generator[bytes, None, None], progress: Callable[[int], None] | None
) -> Generator[bytes, None, None]:
    """The chunks, each counted once it was sent on; closing this closes the source."""
    try:
        for chunk in chunks:
            yield chunk
            if progress is not None and chunk:
                progress(len(chunk))
    finally:
        chunks.close()


# -- the client ------------------------------------------------------------------------------
class KuboClient:
    """POST-only client for a Kubo-compatible RPC API (Kubo, js-ipfs, pinning gateways)."""

    def __init__(self, api: str | None = None, *, timeout: float | None = None) -> None:
        url = resolve_api(api)
        parts = urllib.parse.urlsplit(url)
        auth = None
        if parts.username is not None or parts.password is not None:
            auth = httpx.BasicAuth(
                urllib.parse.unquote(parts.username or ""),
                urllib.parse.unquote(parts.password or ""),
            )
        self.api_url = _redact(url)
        # How long a lookup may take, and how long no byte may move (the idle limit).
        self.timeout = float(timeout) if timeout else idle_timeout()
        self.cat_window = CAT_WINDOW
        connect = min(self.timeout, CONNECT_TIMEOUT)
        # Requests that carry the RPC timeout wait a little longer than it, so the
        # daemon's own "timed out" answer arrives first; any other silence is a stall.
        self._lookup_timeout = httpx.Timeout(
            self.timeout + min(5.0, max(0.5, self.timeout / 2)), connect=connect
        )
        self._http = httpx.Client(
            base_url=f"{self.api_url}/api/v0/",
            auth=auth,
            timeout=httpx.Timeout(self.timeout, connect=connect),
            headers={"User-Agent": "jupyter-publish"},
            trust_env=parts.hostname not in _LOOPBACK,
        )

    # -- plumbing --------------------------------------------------------------------------
    def _query(self, params: Iterable[tuple[str, Any]], rpc_timeout: bool) -> tuple[tuple[str, str], ...]:
        query = [(k, ("true" if v else "false") if isinstance(v, bool) else str(v)) for k, v in params]
        if rpc_timeout:
            query.append(("timeout", f"{max(1, round(self.timeout * 1000))}ms"))
        return tuple(query)  # what httpx takes as repeated parameters, typed (a list is invariant)

    def _call(
        self,
        cmd: str,
        params: Iterable[tuple[str, Any]] = (),
        *,
        what: str | None = None,
        rpc_timeout: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, read whole; ``what`` names the content looked up, if any."""
        query = self._query(params, rpc_timeout)
        if rpc_timeout:
            kwargs.setdefault("timeout", self._lookup_timeout)
        try:
            response = self._http.post(cmd, params=query, **kwargs)
        except httpx.HTTPError as e:
            raise self._transport_error(e, cmd, what) from e
        if response.status_code != 200:
            raise self._daemon_error(response, cmd, what)
        return response

    def _call_capped(self, cmd: str, params: Iterable[tuple[str, Any]], limit: int, **kwargs: Any) -> str:
        """One upload request (no RPC timeout) whose answer is read up to ``limit`` bytes.

        The client timeout only bounds silence: a daemon that keeps talking (an endless
        or gigabyte answer to ``add`` or ``dag/import``) would otherwise fill memory.
        """
        query = self._query(params, rpc_timeout=False)
        try:
            request = self._http.build_request("POST", cmd, params=query, **kwargs)
            response = self._http.send(request, stream=True)
            try:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise BackendError(
                            f"the IPFS daemon at {self.api_url} answered {cmd} with more than "
                            f"{limit:,} bytes: not a Kubo answer, so nothing it said is used"
                        )
            finally:
                response.close()
        except httpx.HTTPError as e:
            raise self._transport_error(e, cmd, None) from e
        whole = httpx.Response(
            response.status_code,
            headers={"Content-Type": response.headers.get("Content-Type", "")},
            content=bytes(body),
            request=request,
        )
        if whole.status_code != 200:
            raise self._daemon_error(whole, cmd, None)
        return whole.text

    def _stream(self, cmd: str, params: Iterable[tuple[str, Any]], what: str) -> Iterator[bytes]:
        query = self._query(params, rpc_timeout=True)
        try:
            request = self._http.build_request("POST", cmd, params=query, timeout=self._lookup_timeout)
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as e:
            raise self._transport_error(e, cmd, what) from e
        try:
            if response.status_code != 200:
                response.read()
                raise self._daemon_error(response, cmd, what)
            yield from response.iter_bytes()
        except httpx.HTTPError as e:
            raise self._transport_error(e, cmd, what) from e
        finally:
            response.close()

    def _transport_error(self, error: httpx.HTTPError, cmd: str, what: str | None) -> PublishError:
        """Refused: final. Silent past the limit: a stall. Broken off: transient (retried)."""
        if isinstance(error, httpx.ConnectError) and not reset_while_connecting(error):
            return BackendError(
                f"cannot reach the IPFS API at {self.api_url}: is the daemon running? set --api or IPFS_API"
            )
        if isinstance(error, httpx.TimeoutException):
            return stalled(
                f"the IPFS API at {self.api_url}", f"IPFS {cmd} of {what or 'the upload'}", self.timeout
            )
        return TransientError(f"the IPFS API at {self.api_url} broke off {cmd}: {one_line(error, _LIMIT)}")

    def _not_found_in_time(self, what: str) -> NotFoundError:
        return NotFoundError(f"{what} not found on the IPFS node within {self.timeout:g}s")

    def _daemon_error(self, response: httpx.Response, cmd: str, what: str | None) -> PublishError:
        try:
            message = str(response.json().get("Message") or "")
        except (ValueError, AttributeError):
            message = response.text
        message = one_line(message, _LIMIT) or response.reason_phrase
        status = response.status_code
        if status in (401, 403):
            return CredentialsError(f"the IPFS API at {self.api_url} refused {cmd} ({status}): {message}")
        if status in (404, 405) and message.lower() in _NO_SUCH_COMMAND:
            return BackendError(
                f"{self.api_url} has no {cmd} RPC command ({status}): is it a Kubo RPC API and not a gateway?"
            )
        if what is not None and _TIMED_OUT.search(message):
            return self._not_found_in_time(what)
        if what is not None and _NOT_FOUND.search(message):
            return NotFoundError(f"{what} not found on the IPFS node: {message}")
        return BackendError(f"the IPFS daemon at {self.api_url} failed {cmd}: {message}")

    # -- commands ---------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        reply: dict[str, Any] = self._call("version").json()
        return reply

    def id(self) -> dict[str, Any]:
        reply: dict[str, Any] = self._call("id").json()
        return reply

    def add(
        self,
        files: Iterable[tuple[str, AddSource]],
        *,
        wrap_with_directory: bool = False,
        cid_version: int = 0,
        raw_leaves: bool | None = None,
        pin: bool = True,
        only_hash: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """``ipfs add`` files (name, content) in one streamed request; names may be nested.

        Parent directories are sent as ``application/x-directory`` parts, like
        ``ipfs add -r``. Returns ``{"Name", "Hash", "Size"}`` per file and directory,
        the wrapping root (``Name == ""``) last. No RPC timeout: an upload takes as
        long as it takes; the client timeout still bounds every read and write.
        """
        entries = _tree(files)
        form = Form()
        params: list[tuple[str, Any]] = [
            ("cid-version", int(cid_version)),
            ("pin", pin),
            ("wrap-with-directory", wrap_with_directory),
            ("only-hash", only_hash),
            ("progress", False),
        ]
        if raw_leaves is not None:
            params.append(("raw-leaves", raw_leaves))
        # One JSON line per entry: its name (JSON-escaped, at most 6 bytes a byte), CID, size.
        limit = ANSWER_LIMIT + sum(
            6 * len(name.encode("utf-8", "surrogateescape")) + 512 for name, _ in entries
        )
        answer = self._call_capped(
            "add",
            params,
            limit,
            content=form.body(_parts(entries, progress)),
            headers={"Content-Type": form.content_type},
        )
        added = []
        for entry in _json_lines(answer):
            if entry.get("Type") == "error" and "Message" in entry:
                raise BackendError(
                    f"the IPFS daemon at {self.api_url} failed add: {one_line(entry['Message'], _LIMIT)}"
                )
            if "Hash" in entry:
                added.append(
                    {
                        "Name": entry.get("Name", ""),
                        "Hash": normalize_hash(entry["Hash"]),
                        "Size": _int(entry.get("Size")),
                    }
                )
        return added

    def dag_import(self, car: Iterable[bytes], *, pin_roots: bool = True) -> list[str]:
        """``ipfs dag import`` one CAR stream; returns the roots the daemon reports.

        Blocks the CAR links to but does not hold must already be on the node (pinning a
        root pins its whole DAG). No RPC timeout, as for ``add``.
        """
        form = Form()
        answer = self._call_capped(
            "dag/import",
            [("pin-roots", pin_roots)],
            ANSWER_LIMIT,
            content=form.body(_parts([("dag.car", car)], None)),
            headers={"Content-Type": form.content_type},
        )
        roots = []
        for entry in _json_lines(answer):
            # {"Root": {"Cid": {"/": CID}, "PinErrorMsg": ""}}; any other shape is no root.
            root = entry.get("Root")
            if not isinstance(root, dict):
                continue
            if root.get("PinErrorMsg"):
                raise BackendError(
                    f"the IPFS daemon at {self.api_url} failed to pin an imported root: "
                    f"{one_line(root['PinErrorMsg'], _LIMIT)}"
                )
            cid = root.get("Cid")
            cid = cid.get("/") if isinstance(cid, dict) else cid
            if isinstance(cid, str) and _is_cid(cid):
                roots.append(normalize_hash(cid))
        return roots

    def cat(self, cid_path: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream a file's bytes from ``offset``, at most ``length`` of them.

        Asks in windows of ``cat_window`` bytes: the RPC timeout then bounds how long
        each window may take to arrive, and a missing CID fails within it.
        """
        path = ipfs_path(cid_path)
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        remaining = length
        while remaining is None or remaining > 0:
            want = self.cat_window if remaining is None else min(self.cat_window, remaining)
            got = 0
            params = [("arg", path), ("offset", offset), ("length", want)]
            for chunk in self._stream("cat", params, what=cid_path):
                got += len(chunk)
                yield chunk
            offset += got
            if remaining is not None:
                remaining -= got
            if got < want:
                return

    def get(self, cid_path: str) -> Iterator[bytes]:
        """Stream a file or a whole folder as the tar archive ``ipfs get`` would write.

        Extract it with :func:`jupyter_publish.extract.extract_archive` (never blindly:
        the names inside come from the network).
        """
        yield from self._stream("get", [("arg", ipfs_path(cid_path))], what=cid_path)

    def ls(self, cid_path: str) -> list[dict[str, Any]]:
        """The entries of one directory: ``{"Name", "Hash", "Size", "Type": file|dir|…}``."""
        path = ipfs_path(cid_path)
        response = self._call("ls", [("arg", path), ("resolve-type", True), ("size", True)], what=cid_path)
        links: list[dict[str, Any]] = []
        for reply in _json_lines(response.text):
            for obj in reply.get("Objects") or []:
                links.extend(obj.get("Links") or [])
        return [
            {
                "Name": link.get("Name", ""),
                "Hash": normalize_hash(link.get("Hash", "")),
                "Size": _int(link.get("Size")),
                "Type": _entry_type(link.get("Type")),
            }
            for link in links
        ]

    def files_stat(self, path: str) -> dict[str, Any]:
        """Type (file/dir), Hash, Size and CumulativeSize of an ``/ipfs/…`` path or CID."""
        stat: dict[str, Any] = self._call("files/stat", [("arg", ipfs_path(path))], what=path).json()
        stat["Hash"] = normalize_hash(stat.get("Hash", ""))
        stat["Type"] = _entry_type(stat.get("Type"))
        for key in ("Size", "CumulativeSize", "Blocks"):
            if key in stat:
                stat[key] = _int(stat[key])
        return stat

    def pin_add(self, cid_path: str, *, recursive: bool = True) -> list[str]:
        pins = self._call(
            "pin/add", [("arg", ipfs_path(cid_path)), ("recursive", recursive)], what=cid_path
        ).json()
        return [normalize_hash(p) for p in pins.get("Pins") or []]

    def pin_ls(self, cid_path: str | None = None, *, type: str = "all") -> dict[str, str]:
        """``{CID: pin type}`` for one CID (NotFoundError if unpinned) or for all pins."""
        params: list[tuple[str, Any]] = [("type", type)]
        if cid_path is not None:
            params.insert(0, ("arg", ipfs_path(cid_path)))
        response = self._call("pin/ls", params, what=cid_path)
        keys: dict[str, str] = {}
        for obj in _json_lines(response.text):
            if "Keys" in obj:
                for cid, info in (obj.get("Keys") or {}).items():
                    keys[normalize_hash(cid)] = (info or {}).get("Type", "")
            elif "Cid" in obj:  # Kubo with stream=true
                keys[normalize_hash(obj["Cid"])] = obj.get("Type", "")
        return keys

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KuboClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KuboClient({self.api_url!r})"


def _json_lines(text: str) -> Iterator[dict[str, Any]]:
    """Kubo answers streamed commands with one JSON document per line."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            try:
                value = json.loads(line)
            except ValueError:
                raise BackendError(
                    f"the IPFS API sent a reply that is not JSON: {one_line(line, 120)}"
                ) from None
            if isinstance(value, dict):
                yield value
