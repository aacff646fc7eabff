"""HTTP(S) upload backend: ``curl --upload-file`` and transfer.sh-style drops.

``PUT`` sends each file to ``url + name`` (WebDAV, nginx ``dav_methods``, transfer.sh,
presigned-style endpoints); ``POST`` sends a multipart form with one ``file`` part per
request (``curl -F file=@x``). Bodies are generators, so files stream in 1 MiB chunks
and memory stays flat. The download URL is what the server tells us: the first line of
the body (transfer.sh), else ``Location:`` (WebDAV's 201), else the URL we PUT to.

Credentials (``auth``, ``headers``, ``JUPYTER_PUBLISH_HTTP_AUTH``,
``JUPYTER_PUBLISH_HTTP_HEADERS``, ``user:pass@`` in the URL) are sent only to the
destination's own origin, and never appear in params, messages or logs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from jupyter_publish import redact
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
from jupyter_publish.config import idle_timeout
from jupyter_publish.errors import (
    BackendError,
    CredentialsError,
    DestinationError,
    NotFoundError,
    OptionError,
    RangeIgnored,
    TransientError,
)
from jupyter_publish.multipart import Form, Part
from jupyter_publish.retry import Replay, exactly, exhausted, reset_while_connecting, retrying, stalled
from jupyter_publish.sizes import CHUNK
from jupyter_publish.text import one_line

if TYPE_CHECKING:
    import httpx

    from jupyter_publish.results import PublishedResult

MAX_REDIRECTS = 5
HEADERS_ENV = "JUPYTER_PUBLISH_HTTP_HEADERS"
AUTH_ENV = "JUPYTER_PUBLISH_HTTP_AUTH"
METHODS = ("PUT", "POST")
_BODY_PEEK = 8192
_URL_LINE = re.compile(r"^https?://\S+$")
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}
_HEADER_SPLIT = re.compile(r"[;\n]\s*(?=[A-Za-z0-9!#$%&'*+.^_`|~-]+\s*:)")


def parse_headers(text: str) -> dict[str, str]:
    """``"Authorization: Bearer x; X-Foo: y"`` -> dict; a ``;`` inside a value is kept."""
    headers: dict[str, str] = {}
    for item in _HEADER_SPLIT.split(text.strip()):
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise OptionError(f"{HEADERS_ENV} must look like 'Name: value; Name2: value2'")
        headers[name.strip()] = value.strip().rstrip(";").strip()
    return headers


def parse_auth(text: str, source: str = AUTH_ENV) -> tuple[str, str]:
    """``"user:password"`` -> (user, password); the password may contain ``:``."""
    user, sep, password = text.partition(":")
    if not sep:
        raise OptionError(f"{source} must look like 'user:password'")
    return user, password


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _checked_url(url: str) -> str:
    """``url`` if it is a usable http(s) URL, else a DestinationError saying why."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise DestinationError(f"bad port in URL: {_shown(url)}") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise DestinationError(f"not an http(s) URL: {_shown(url)}")
    return url


def _shown(url: str) -> str:
    """``url`` without its credentials, for a message: a password holding an unencoded
    ``/`` ends the URL's host part early, so urlsplit alone would leave it in."""
    return redact.scrub(_strip_userinfo(url)[0])


def _strip_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """Split ``http://user:pw@host/x`` into the bare URL and the credentials in it."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    netloc = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, (unquote(parts.username), unquote(parts.password or ""))


def _quote_name(name: str) -> str:
    return "/".join(quote(segment, safe="") for segment in name.split("/"))


class HttpBackend(BackendBase):
    """Publish by HTTP upload; fetch back any http(s) URL."""

    scheme: ClassVar[str] = "http"
    schemes: ClassVar[tuple[str, ...]] = ("http", "https")
    result_type: ClassVar[str] = "urlDownload"
    spec_types: ClassVar[tuple[str, ...]] = ("urldownload", "url")
    label: ClassVar[str] = "HTTP"
    example: ClassVar[str] = "http(s)://HOST/PATH/"
    fetch_example: ClassVar[str] = "https://..."
    start: ClassVar[str] = "https://"
    options: ClassVar[tuple[BackendOption, ...]] = (
        BackendOption(
            "method",
            "HTTP upload method: PUT (default) or POST (form upload).",
            metavar="METHOD",
            choices=METHODS,
            fetch=False,
        ),
        BackendOption("headers", "Extra request headers (may carry tokens).", flag=False, secret=True),
        BackendOption(
            "auth",
            "HTTP basic auth; write --auth {{var}} so the secret stays out of the notebook. Never echoed.",
            metavar="USER:PASSWORD",
            secret=True,
        ),
        BackendOption("timeout", "Seconds without progress that end an attempt.", flag=False),
    )

    # -- declarations --------------------------------------------------------------
    @classmethod
    def parse_destination(cls, text: str) -> Destination | None:
        """``http(s)://HOST[:PORT]/PATH/``; credentials or tokens in it are refused (they
        would be recorded), and a password in it is never echoed."""
        import urllib.parse

        if not text.lower().startswith(("http://", "https://")):
            return None
        shown = redact.scrub(text)  # a password in the URL (even a malformed one) is never echoed
        try:
            parsed = urllib.parse.urlsplit(text)
            parsed.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise DestinationError(f"malformed URL {shown!r}: {redact.scrub(str(exc))}") from None
        if not parsed.hostname:
            raise DestinationError(f"no host in {shown!r}: write http(s)://HOST[:PORT]/PATH/")
        if parsed.username or parsed.password:
            raise DestinationError(
                "credentials in the destination URL would be recorded in the ledger: "
                "pass them with --auth or JUPYTER_PUBLISH_HTTP_AUTH instead"
            )
        if parsed.query or parsed.fragment:
            raise DestinationError(
                f"{parsed.scheme}://{parsed.netloc}{parsed.path} has a query string or fragment: "
                "uploads append file names to the path, and a token there would be recorded; "
                "pass tokens with JUPYTER_PUBLISH_HTTP_HEADERS or auth= instead"
            )
        return Destination(cls.scheme, text, url=text)

    @classmethod
    def from_destination(cls, dest: Destination, target: PublishTarget) -> tuple[HttpBackend, str]:
        """A URL ending in a file name names the archive; otherwise it is a folder."""
        url, archive_name = target.resolve(dest.url), target.archive_name
        if not url.endswith("/"):
            base, _, last = url.rpartition("/")
            if target.archive and "." in last:
                archive_name, url = last, base + "/"
            else:
                url += "/"
        backend = cls(
            url=url, max_concurrency=target.max_concurrency, expected_count=target.file_count, **dest.options
        )
        return backend, archive_name

    @classmethod
    def preflight(cls, dest: Destination) -> None:
        """The options valid (method, auth, headers) and the origin answering a TCP connect."""
        from ..preflight import check_reachable

        cls(url=dest.url, **dest.options).close()
        if "{" not in (urlsplit(dest.url).hostname or ""):
            check_reachable(dest.url, "the HTTP server", ": check the URL and that the server is running")

    @classmethod
    def fetch_options(cls, result: PublishedResult) -> dict[str, Any]:
        # Credentials go to the drop the user configured them for, not to whatever
        # origin its server named as the download URL.
        return {"url": result.destination if "://" in result.destination else ""}

    @classmethod
    def for_reading(
        cls, ref: str, options: Mapping[str, Any], recorded_destination: Callable[[], str | None]
    ) -> HttpBackend:
        """A recorded download URL gets the credentials of the drop it was published to
        (none if its server named another origin); any other URL those of its own origin."""
        url = options.get("url")
        if not {"url", "auth", "headers"} & set(options):
            recorded = recorded_destination()
            url = (
                ref
                if recorded is None
                else (recorded if recorded.startswith(("http://", "https://")) else "")
            )
        taken = {k: v for k, v in options.items() if k in cls.option_names("fetch") and v is not None}
        max_concurrency = options.get("max_concurrency", 10)
        return cls(url=url or (ref if "://" in ref else ""), max_concurrency=max_concurrency, **taken)

    @classmethod
    def spec_uri(cls, fields: Mapping[str, str], options: dict[str, Any]) -> str | None:
        return fields.get("url") or None

    ranged_reads: ClassVar[bool | None] = None
    """Only servers that say ``Accept-Ranges: bytes`` (a HEAD tells) are read in ranges."""

    def __init__(
        self,
        *,
        url: str = "",
        method: str = "PUT",
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | str | None = None,
        timeout: float | None = None,
        max_concurrency: int = 10,
        expected_count: int = 1,
        **_ignored: object,
    ) -> None:
        self.url, url_auth = _strip_userinfo(_checked_url(url)) if url else ("", None)
        self.method = method.upper()
        if self.method not in METHODS:
            raise OptionError(f"--method must be PUT or POST, not {method!r}")
        env_headers = os.environ.get(HEADERS_ENV, "")
        self._headers = parse_headers(env_headers) if env_headers.strip() else {}
        self._headers.update(headers or {})
        env_auth = os.environ.get(AUTH_ENV)
        if isinstance(auth, str):  # --auth user:password from the command line or a magic
            auth = parse_auth(auth, "--auth")
        self._auth = auth or url_auth or (parse_auth(env_auth) if env_auth else None)
        for name, value in self._headers.items():
            redact.register_header(name, value)
        if self._auth:
            redact.register_basic(*self._auth)
        # No byte moving for this long ends an attempt (connect, send or receive).
        self.timeout = float(timeout) if timeout else idle_timeout()
        self.max_concurrency = max_concurrency
        self.expected_count = expected_count
        """How many files this publish sends: one file may take the URL itself as its name."""
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------
    def _http(self) -> httpx.Client:
        """One client per job, its pool sized to the transfers in flight (thread-safe)."""
        with self._client_lock:
            if self._client is None:
                import httpx

                pool = self.max_concurrency + 2
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout),
                    headers={"User-Agent": "jupyter-publish"},
                    limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
                )
            return self._client

    def _credentials(self, url: str) -> tuple[dict[str, str], httpx.BasicAuth | None]:
        """Our headers and auth, but only for the destination's origin."""
        import httpx

        if not self.url or _origin(url) != _origin(self.url):
            return {}, None
        auth = httpx.BasicAuth(*self._auth) if self._auth else None
        return dict(self._headers), auth

    @staticmethod
    def _scrub(text: str) -> str:
        """Every known secret masked in every encoding (see :mod:`jupyter_publish.redact`)."""
        return one_line(text, 300, scrub=True)

    def _transport_error(self, url: str, exc: Exception) -> BackendError:
        """A refused connection is final; a timeout is a stall; a connection that broke
        off mid-request is transient (retried where the request is idempotent)."""
        import httpx

        reason = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ConnectError) and not reset_while_connecting(exc):
            return BackendError(self._scrub(f"cannot reach {url}: {reason}"))
        if isinstance(exc, httpx.TimeoutException):
            return stalled(urlsplit(url).netloc, self._scrub(f"transfer with {url}"), self.timeout)
        return TransientError(self._scrub(f"transfer with {url} broke off: {reason}"))

    def _check(self, response: httpx.Response, url: str, upload: Upload | None = None) -> None:
        """Turn an unsuccessful status into the error a user can act on."""
        status = response.status_code
        if 200 <= status < 300:
            return
        host = urlsplit(url).netloc
        if status in (401, 403):
            sent = "authorization" in response.request.headers
            what = "rejected the credentials" if sent else "refused access without credentials"
            raise CredentialsError(self._scrub(f"{host} {what} (HTTP {status}); set --auth or {AUTH_ENV}"))
        if status == 404:
            raise NotFoundError(self._scrub(f"{url} not found (HTTP 404)"))
        if status == 413 and upload is not None:
            raise BackendError(
                f"{host} refused {upload.name} ({upload.size} bytes) as too large (HTTP 413); "
                "raise the server's upload limit or publish with --archive off / smaller files"
            )
        if 300 <= status < 400:
            where = response.headers.get("location", "?")
            raise BackendError(
                self._scrub(f"{url} answered HTTP {status} redirecting to {where}; use that URL")
            )
        detail = response.reason_phrase or "error"
        peek = self._peek_text(response)
        if peek and response.headers.get("content-type", "").startswith("text/plain"):
            detail += f": {one_line(peek, 120, scrub=True)}"  # scrubbed before it is cut
        # A busy or restarting server: worth another try of an idempotent request.
        kind = TransientError if status in _TRANSIENT_STATUS else BackendError
        raise kind(self._scrub(f"{url} answered HTTP {status} {detail}"))

    @staticmethod
    def _peek_text(response: httpx.Response) -> str:
        """The start of a response body, without reading a huge one."""
        data = b""
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= _BODY_PEEK:
                break
        return data[:_BODY_PEEK].decode("utf-8", "replace")

    # -- publish -------------------------------------------------------------------
    def outcome(self, objects: Sequence[StoredObject]) -> StoreOutcome:
        """One file: its download URL is the result. Several: the folder they went to
        (each file's own URL is in the manifest; the job ID fetches them all)."""
        where = objects[0].location if len(objects) == 1 else self.url
        return StoreOutcome(
            type=self.result_type,
            params={"URL": where, "Method": self.method},
            uri=where,
            objects=list(objects),
            url=objects[0].url if len(objects) == 1 else None,
        )

    def target(self, name: str, count: int = 1) -> str:
        """curl --upload-file rules: a URL ending in ``/`` (or several files) is a folder."""
        if self.method == "POST":
            return self.url
        parts = urlsplit(self.url)
        if count == 1 and parts.path and not parts.path.endswith("/"):
            return self.url
        path = (parts.path if parts.path.endswith("/") else parts.path + "/") + _quote_name(name)
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))

    def put(self, upload: Upload, progress: ProgressCallback | None = None) -> StoredObject:
        """One request per file (any number at once: the client's pool is shared)."""

        if not self.url:
            raise DestinationError("an http(s) destination needs a URL, e.g. https://host/drop/")
        url = self.target(upload.name, self.expected_count)
        headers, auth = self._credentials(url)
        replay = Replay(upload.open, upload.path, upload.name, upload.remake)
        if self.method == "PUT":
            headers["Content-Type"] = upload.content_type
            if upload.size is not None:  # else chunked: an archive still being made
                headers["Content-Length"] = str(upload.size)

            def body() -> Generator[bytes, None, None]:
                return self._file_chunks(upload, replay, progress)
        else:
            form, part = Form(), Part(_form_filename(upload), upload.content_type)
            headers["Content-Type"] = form.content_type
            if upload.size is not None:
                headers["Content-Length"] = str(form.overhead([part]) + upload.size)

            def body() -> Generator[bytes, None, None]:
                chunks = self._file_chunks(upload, replay, progress)
                return form.body([dataclasses.replace(part, chunks=chunks)])

        def attempt() -> str:
            content = body()
            try:
                with self._http().stream(
                    self.method, url, content=content, headers=headers, auth=auth
                ) as response:
                    self._check(response, url, upload)
                    return self._download_url(response, url)
            finally:
                content.close()  # an archive made again for this attempt stops now

        try:
            location = self._retrying_upload(attempt, url, replay)
        finally:
            replay.close()
        if self.method == "PUT" or location != url:  # a form endpoint is not the object
            # A retried upload sends its bytes again: count each once (a stream's size is
            # known only once it was read to its end).
            self.read_back(location, upload.name, upload.size if upload.size is not None else replay.sent)
        return StoredObject(name=upload.name, location=location, url=location)

    def _retrying_upload(self, attempt: Callable[[], str], url: str, replay: Replay) -> str:
        """A PUT of the same bytes is idempotent: retried after a transient fault, sending
        the bytes again (a file re-read, an archive made again; never hashed twice). A POST
        is sent once: a form endpoint may store each request anew, so its fault says so."""
        import httpx

        failure: TransientError | None = None

        def once() -> str:
            nonlocal failure
            if failure is not None and not replay.replayable():
                raise exhausted(failure)  # a stream already partly sent cannot be sent again
            try:
                return attempt()
            except httpx.HTTPError as exc:
                error = self._transport_error(url, exc)
                if isinstance(error, TransientError):
                    failure = error
                raise error from None
            except TransientError as exc:
                failure = exc
                raise

        if self.method == "PUT":
            return retrying(once)
        try:
            return retrying(once, retries=0)
        except TransientError as exc:
            exc.args = (f"{exc} (a POST upload is sent once, as it may not be idempotent: publish again)",)
            raise

    def read_back(self, location: str, name: str, size: int) -> None:
        """A 200 is not proof: confirm the object is there with the bytes we sent, by a
        HEAD (or a one-byte ranged GET where HEAD is not allowed)."""
        # A HEAD is idempotent: a connection dropped while asking is asked again, so a
        # stored object is never called missing (and its job failed) for one fault.
        found = retrying(lambda: self._stored_size(location, "HEAD"))
        if found is _NO_HEAD:
            found = retrying(lambda: self._stored_size(location, "GET"))
        where = self._scrub(location)
        if found is None or found is _NO_HEAD:
            raise BackendError(
                f"the server accepted {name} but {where} is not there; it stored nothing, check the server"
            )
        if found != -1 and found != size:
            raise BackendError(
                f"the server accepted {name} ({size} bytes) but {where} holds {found} bytes; publish again"
            )

    def _stored_size(self, location: str, method: str) -> int | object | None:
        """Size of the stored object; -1 if the server does not say; None if it is missing."""
        extra = {"Range": "bytes=0-0"} if method == "GET" else {}
        with self._open(method, location, extra) as (response, url):
            status = response.status_code
            if method == "HEAD" and status in (405, 501):
                return _NO_HEAD
            if status in (404, 410):
                return None
            self._check(response, url)
            total = re.match(r"bytes \S+/(\d+)$", response.headers.get("content-range", "").strip())
            if status == 206 and total:
                return int(total.group(1))
            if status == 416:  # an empty object has no byte 0
                return 0
            length = response.headers.get("content-length", "")
            return int(length) if status != 206 and length.isdigit() else -1

    def _download_url(self, response: httpx.Response, url: str) -> str:
        first = self._peek_text(response).strip().splitlines()
        if first and _URL_LINE.match(first[0].strip()):
            return first[0].strip()
        location = response.headers.get("location")
        return urljoin(url, location) if location else url

    @staticmethod
    def _file_chunks(
        upload: Upload, replay: Replay, progress: ProgressCallback | None
    ) -> Generator[bytes, None, None]:
        """The upload's bytes: exactly its declared size, or one line saying it changed
        (and then the request is left incomplete, so the server keeps nothing)."""
        replayed = replay.sent  # bytes a failed attempt already counted in the bar
        for chunk in exactly(replay.chunks(CHUNK), upload.size, upload.name):
            yield chunk
            if progress:
                fresh = max(0, len(chunk) - replayed)  # a retry never takes the bar past 100%
                replayed = max(0, replayed - len(chunk))
                if fresh:
                    progress(fresh)

    # -- fetch ---------------------------------------------------------------------
    def _describe(self, ref: str) -> list[RemoteObject]:
        """The one object at ``ref``, by HEAD. A link signed for GET only (an S3 presigned
        URL: the method is part of what is signed) refuses HEAD with 403; a one-byte
        ranged GET then asks instead."""
        with self._open("HEAD", ref) as (response, url):
            size: int | None = None
            signed_get = response.status_code == 403 and bool(urlsplit(url).query)
            if response.status_code in (401, 403, 404) and not signed_get:
                self._refuse_folder(response, url)
                self._check(response, url)
            elif response.is_success and response.headers.get("content-length", "").isdigit():
                size = int(response.headers["content-length"])
            ranged = size is not None and "bytes" in response.headers.get("accept-ranges", "").lower()
        if signed_get:
            size, ranged, url = self._size_by_get(url)
        path = urlsplit(url).path.rstrip("/")
        name = unquote(path.rsplit("/", 1)[-1]) or urlsplit(url).hostname or "download"
        # The URL the redirects ended at: ranged reads go straight there.
        return [RemoteObject(name=name, location=url, size=size, ranged=ranged)]

    def list(self, ref: str) -> list[RemoteObject]:
        """One URL is one object; HEAD tells its size when the server says.

        A HEAD is idempotent: a connection dropped while asking is asked again, as every
        read is, so one fault on the first connection does not end the fetch."""
        return retrying(lambda: self._describe(ref))

    def _size_by_get(self, ref: str) -> tuple[int | None, bool, str]:
        """Size, whether ranges are served, and the final URL, from a ``bytes=0-0`` GET
        (its body is not read past that byte)."""
        with self._open("GET", ref, {"Range": "bytes=0-0"}) as (response, url):
            self._check(response, url)
            total = re.fullmatch(r"bytes 0-0/(\d+)", response.headers.get("content-range", "").strip())
            if response.status_code == 206 and total:
                return int(total.group(1)), True, url
            length = response.headers.get("content-length", "")
            return (int(length) if length.isdigit() else None), False, url

    def _refuse_folder(self, response: httpx.Response, url: str) -> None:
        """A folder URL the server will not list (a plain publish's URI): say so, rather
        than blame credentials nobody sent (nginx answers a folder with 403)."""
        sent = "authorization" in response.request.headers
        if urlsplit(url).path.endswith("/") and response.status_code in (403, 404) and not sent:
            raise DestinationError(
                self._scrub(
                    f"{url} is a folder, and an HTTP server lists no folders (HTTP {response.status_code}): "
                    "fetch a plain publish by its job ID, or each file by its URL"
                )
            )

    def read(self, location: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream ``location`` from ``offset``: a Range request, or skipping if ignored."""
        import httpx

        if length is not None and length <= 0:
            return
        if length is not None:
            extra = {"Range": f"bytes={offset}-{offset + length - 1}"}
        else:
            extra = {"Range": f"bytes={offset}-"} if offset > 0 else {}
        with self._open("GET", location, extra) as (response, url):
            if response.status_code == 416 and offset > 0:
                return  # nothing left past offset: the caller already has it all
            self._check(response, url)
            if length is not None and response.status_code != 206:
                raise RangeIgnored(f"{url} answered a range request with the whole file")
            skip = self._bytes_to_skip(response, url, offset)
            remaining = length
            try:
                # No decoding layer unless the server compressed anyway despite "identity".
                encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
                for chunk in response.iter_bytes(CHUNK) if encoded else response.iter_raw(CHUNK):
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                    if remaining is not None:
                        chunk = chunk[:remaining]
                        remaining -= len(chunk)
                    if chunk:
                        yield chunk
                    if remaining == 0:
                        return
            except httpx.HTTPError as exc:
                raise self._transport_error(url, exc) from exc

    @contextlib.contextmanager
    def _open(
        self, method: str, ref: str, extra: dict[str, str] | None = None
    ) -> Iterator[tuple[httpx.Response, str]]:
        """Send a request, following redirects by hand so that our headers and auth
        never travel to another origin (httpx would keep custom headers)."""
        import httpx

        current = ref
        for _ in range(MAX_REDIRECTS + 1):
            url, headers, auth = self._fetch_request(current)
            headers.update(extra or {})
            try:
                with self._http().stream(method, url, headers=headers, auth=auth) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(url, response.headers["location"])
                        continue
                    yield response, url
                    return
            except httpx.HTTPError as exc:
                raise self._transport_error(url, exc) from exc
        raise BackendError(f"{ref} redirected more than {MAX_REDIRECTS} times; giving up")

    @staticmethod
    def _bytes_to_skip(response: httpx.Response, url: str, offset: int) -> int:
        if response.status_code != 206:
            return offset  # the server ignored Range and sent everything
        match = re.match(r"bytes (\d+)-", response.headers.get("content-range", ""))
        if not match or int(match.group(1)) != offset:
            raise BackendError(f"{url} answered a range request with the wrong range")
        return 0

    def _fetch_request(self, ref: str) -> tuple[str, dict[str, str], httpx.BasicAuth | None]:
        """URL (without ``user:pw@``), headers and auth for a GET/HEAD of ``ref``."""
        import httpx

        url, url_auth = _strip_userinfo(_checked_url(ref))
        headers, auth = self._credentials(url)
        if url_auth:
            auth = httpx.BasicAuth(*url_auth)
        # The stored bytes, not a re-encoding of them: checksums are of the file.
        headers["Accept-Encoding"] = "identity"
        return url, headers, auth

    def close(self) -> None:
        """Release pooled connections."""
        if self._client is not None:
            self._client.close()
            self._client = None


_NO_HEAD = object()
"""The server refuses HEAD: ask with a ranged GET instead."""


def _form_filename(upload: Upload) -> str:
    """The form's file name: the last path segment, as ``curl -F file=@x`` sends it."""
    filename = upload.name.rsplit("/", 1)[-1]
    return re.sub(r"[\r\n]", "", filename).replace('"', "%22")
