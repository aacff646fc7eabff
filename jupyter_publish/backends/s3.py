"""S3 and S3-compatible stores through boto3.

Credentials come from the standard chain (env, profile, config files, instance roles);
the endpoint from ``--endpoint``, ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``.
The core puts many objects at once (:mod:`jupyter_publish.transfer`); this backend puts
one: a single PUT with ``ChecksumSHA256`` up to one part (8 MiB), else a multipart upload
whose parts are read in order through the core's hashing reader and sent several at a
time, each with its own ``ChecksumSHA256`` so the store verifies every byte. VersionId,
ETag and S3's checksum come from the PUT / CompleteMultipartUpload responses (no HEAD).
Large objects are read back as parallel 8 MiB ranged GETs (see ``RemoteObject.ranged``).
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import fnmatch
import hashlib
import io
import itertools
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import (
    BackendError,
    CidError,
    CredentialsError,
    DestinationError,
    NotFoundError,
    OptionError,
    PublishError,
    RangeIgnored,
    RefError,
    SourceError,
    TransientError,
)
from ..hashing import SHA256_HEX
from ..retry import exhausted, retrying, stalled
from ..sizes import MiB, human_size
from .base import (
    BackendBase,
    BackendOption,
    CopyProof,
    Destination,
    PublishTarget,
    RemoteObject,
    StoredObject,
    StoreOutcome,
    Upload,
)

if TYPE_CHECKING:
    from ..journal import MultipartJournal
    from ..results import PublishedResult

PART_SIZE = 8 * MiB
"""Multipart part and ranged-GET size, as AWS's performance guidelines suggest (8-16 MB)."""
MAX_PARTS = 10_000
PART_CONCURRENCY = 10
"""Parts of one file in flight (sent from disk: no memory held), as boto3 does."""
STREAM_PART_SIZE = 5 * MiB
"""S3's smallest part: a stream's parts are held in memory until sent, so small parts let
more connections run (a link caps each one) for the same memory."""
STREAM_PARTS = 8
"""Parts of a stream (an archive being made) in flight: 8 x 5 MiB held at most."""
COPY_MAX = 5 * 1024 * MiB
"""S3's largest single CopyObject; larger objects are copied in parts (UploadPartCopy)."""
COPY_PART = 256 * MiB
"""Part size of a managed copy: no bytes pass through us, so large parts cost nothing."""
MANIFEST_NAME = ".jupyter-publish.json"
KEY_OPTIONS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
"""Explicit keys: handed to that one boto3 session, never recorded."""
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$")
"""Written last in a plain (non-archive) publish: the file list with sha256s, and the
marker that the upload completed."""
_CREDENTIAL_CODES = {
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "403",
}


def parse_duration(text: str | int | float | None) -> int | None:
    """``3600``, ``90s``, ``15m``, ``1h``, ``7d`` -> seconds (presigned URL lifetime)."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        return int(text)
    from ..durations import seconds as read_seconds

    raw = str(text).strip()
    try:
        seconds = round(read_seconds(raw, examples="3600, 15m, 1h or 7d"))
    except OptionError:
        if not raw.lstrip("-").isdigit():
            raise
        seconds = int(raw)  # 0 or less: said as out of range below
    if not 1 <= seconds <= 7 * 86400:
        raise OptionError(f"presigned URLs last 1 second to 7 days, not {text!r}")
    return seconds


NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile"
)


def endpoint_from_env() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _register_secrets(keys: dict[str, str | None]) -> None:
    """Explicit keys are masked wherever a message or record could show them."""
    from .. import redact

    redact.register(keys["aws_secret_access_key"])
    redact.register(keys["aws_session_token"])
    redact.register(keys["aws_access_key_id"], identifier=True)


class S3Backend(BackendBase):
    """Publish to ``s3://bucket/key`` and read back objects, prefixes and globs."""

    scheme: ClassVar[str] = "s3"
    label: ClassVar[str] = "S3"
    example: ClassVar[str] = "s3://BUCKET/KEY"
    fetch_example: ClassVar[str] = "s3://BUCKET/KEY (or a prefix*)"
    resumable: ClassVar[bool] = True
    spec_checksum: ClassVar[bool] = True
    credentials: ClassVar[str | None] = "S3 credentials"
    options: ClassVar[tuple[BackendOption, ...]] = (
        BackendOption(
            "endpoint",
            "S3 endpoint URL (MinIO, SeaweedFS, Ceph...).",
            metavar="URL",
            setting="S3 endpoint URL for s3:// destinations.",
            field="S3 endpoint",
            placeholder="https://… (AWS_ENDPOINT_URL_S3)",
        ),
        BackendOption(
            "region",
            "S3 region.",
            setting="S3 region for s3:// destinations.",
            field="S3 region",
            placeholder="us-east-1",
        ),
        BackendOption(
            "profile",
            "AWS profile for the credentials.",
            setting="AWS profile for s3:// destinations.",
            field="AWS profile",
            placeholder="a profile in ~/.aws/config",
        ),
        BackendOption(
            "presign",
            "S3: add a presigned download link valid 90s, 15m, 1h, 7d.",
            metavar="DURATION",
            fetch=False,
            field="Presigned link",
            placeholder="lifetime, e.g. 1h or 7d",
        ),
        *(
            BackendOption(key, "An explicit AWS key (never recorded).", flag=False, secret=True)
            for key in KEY_OPTIONS
        ),
    )
    sidecar_manifest: ClassVar[bool] = True
    parallel_above: ClassVar[int] = PART_SIZE
    """Larger objects go multipart, parts in parallel: the core puts them one at a time."""
    ranged_reads: ClassVar[bool] = True

    def __init__(
        self,
        *,
        bucket: str = "",
        key: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        presign: str | int | None = None,
        max_concurrency: int = 10,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        **_ignored: Any,
    ) -> None:
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise OptionError(f"S3 endpoint {endpoint!r} is not a URL: write http(s)://HOST[:PORT]")
        # Explicit keys (the widget's password fields) go to this client only: never to
        # the environment, the result or the ledger.
        self._keys = {
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
        }
        _register_secrets(self._keys)
        self.bucket = bucket
        self.key = key
        self.endpoint = endpoint or endpoint_from_env()
        self.region = region
        self.profile = profile
        self.presign_seconds = parse_duration(presign)
        self.max_concurrency = max_concurrency
        self.part_concurrency = max(1, min(max_concurrency, PART_CONCURRENCY))
        from .. import config

        self._attempts = config.retries() + 1
        """Tries of each request (botocore retries them itself)."""
        self._timeout: float | None = None
        """Seconds to connect and between bytes; None: the idle limit (:meth:`single_try`)."""
        self._retry_config: dict[str, Any] = {"max_attempts": self._attempts, "mode": "standard"}
        """botocore's ``retries`` (its ``max_attempts`` counts the retries after the first)."""
        self._client: Any = None  # boto3's S3 client (its typed responses: a later pass)
        self._client_lock = threading.Lock()  # workers share one client (one pool)
        self.parse_timestamps = True
        """False: timestamps in responses stay text. A listing of 10,000 keys spent half its
        time in dateutil parsing LastModified, which the catalog never reads."""
        self.journal: MultipartJournal | None = None
        """A :class:`~jupyter_publish.journal.MultipartJournal` the publisher sets: open
        multipart uploads are recorded before their parts go, so a killed job's can be
        aborted or continued later (``resume``)."""

    # -- declarations --------------------------------------------------------------
    @classmethod
    def parse_destination(cls, text: str) -> Destination | None:
        if not text.lower().startswith("s3://"):
            return None
        bucket, _, key = text[5:].partition("/")
        if not bucket:
            raise DestinationError(f"no bucket in {text!r}: write s3://BUCKET/KEY")
        if "{" in bucket or not _BUCKET_RE.match(bucket):
            raise DestinationError(
                f"invalid bucket name {bucket!r} in {text!r}: use 3-63 lowercase letters, digits, '.', '-'"
            )
        return Destination(cls.scheme, text, bucket=bucket, key=key)

    @classmethod
    def from_destination(cls, dest: Destination, target: PublishTarget) -> tuple[S3Backend, str]:
        key = target.object_key(target.resolve(dest.key))
        name = key.rsplit("/", 1)[-1] if target.archive else target.archive_name
        backend = cls(bucket=dest.bucket, key=key, max_concurrency=target.max_concurrency, **dest.options)
        return backend, name

    @classmethod
    def fetch_options(cls, result: PublishedResult) -> dict[str, Any]:
        recorded = {"endpoint": result.params.get("Endpoint"), "region": result.params.get("Region")}
        return {name: value for name, value in recorded.items() if value}

    @classmethod
    def spec_uri(cls, fields: Mapping[str, str], options: dict[str, Any]) -> str | None:
        if not fields.get("bucket"):
            return None
        for name in ("endpoint", "region"):
            if fields.get(name):
                options.setdefault(name, fields[name])
        uri = f"s3://{fields['bucket']}/{fields.get('key', '')}"
        version = fields.get("versionid")
        return f"{uri}?versionId={version}" if version and version != "null" else uri

    @classmethod
    def typed_credentials(cls, key_id: str, secret: str) -> dict[str, str | None]:
        """Both keys replace the chain's for this one client, session token included (it
        belongs to other keys); neither: the AWS chain."""
        if not key_id and not secret:
            return {}
        if not (key_id and secret):
            raise CredentialsError("give both the access key and the secret key, or neither")
        return {"aws_access_key_id": key_id, "aws_secret_access_key": secret, "aws_session_token": None}

    # -- client --------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def single_try(self, timeout: float) -> None:
        """Each request one attempt, ``timeout`` seconds to connect and between bytes (at
        most the idle limit): for a write that has a retry of its own, which a dead store
        must not hold up. Set before the first request (the client is made once)."""
        from .. import config

        self._attempts = 1
        self._timeout = min(timeout, config.idle_timeout())
        self._retry_config = {"total_max_attempts": 1, "mode": "standard"}

    def _make_client(self) -> Any:
        import botocore.config

        from .. import config

        idle = self._timeout or config.idle_timeout()
        options: dict[str, Any] = {
            # botocore retries each request (connection faults, 5xx, SlowDown, timeouts);
            # a body cut mid-read is retried by the core, resuming where it stopped.
            "retries": self._retry_config,
            # No byte for the idle limit ends an attempt (a stalled store, a dead link).
            "connect_timeout": idle,
            "read_timeout": idle,
            "signature_version": "s3v4",
            # One connection per object or part in flight, reused across the job.
            "max_pool_connections": self.max_concurrency + self.part_concurrency,
            # Every write carries the ChecksumSHA256 of its body in a signed header, which
            # the store verifies: hashing each body once more for the signature (botocore
            # does on http://) only costs CPU.
            "s3": {"payload_signing_enabled": False},
        }
        if self.endpoint and "amazonaws.com" not in self.endpoint:
            # boto3 >= 1.36 sends CRC checksums many S3-compatible stores reject;
            # we keep our own sha256 of every object instead (FACTS.md).
            options.update(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path", **options["s3"]},
            )
        session = self._session()
        self.region = self.region or session.region_name or "us-east-1"
        return session.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            config=botocore.config.Config(**options),
        )

    def _session(self) -> Any:
        """A boto3 session with this backend's keys or profile (no request is sent)."""
        import boto3
        import botocore.exceptions
        import botocore.session

        try:
            keys = {k: v for k, v in self._keys.items() if v}
            core = botocore.session.get_session()  # a new one: its parser settings are this client's
            if not self.parse_timestamps:
                core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
            return boto3.session.Session(
                aws_access_key_id=keys.get("aws_access_key_id"),
                aws_secret_access_key=keys.get("aws_secret_access_key"),
                aws_session_token=keys.get("aws_session_token"),
                profile_name=None if keys else self.profile,
                botocore_session=core,
            )
        except botocore.exceptions.ProfileNotFound:
            raise CredentialsError(
                f"AWS profile {self.profile!r} not found: check ~/.aws/config or drop --profile"
            ) from None

    @classmethod
    def preflight(cls, dest: Destination) -> None:
        """Options valid, credentials resolvable through the AWS chain, the endpoint
        answering a TCP connect. No request is signed or sent: nothing beyond PutObject
        is needed. The chain asks the network (instance metadata, a container's endpoint)
        only when nothing local holds credentials, as the publish itself would."""
        import botocore.exceptions

        from ..preflight import check_reachable

        backend = cls(bucket=dest.bucket, **dest.options)  # endpoint form, presign duration
        session = backend._session()
        try:
            credentials = session.get_credentials()
        except botocore.exceptions.BotoCoreError as exc:
            raise CredentialsError(f"cannot read the AWS credentials: {exc}") from None
        if credentials is None:
            raise CredentialsError(NO_CREDENTIALS)
        # Read from a profile or the chain, they are masked from here on: the cell runs
        # next, and its error may repeat them before any publish registers them.
        frozen = credentials.get_frozen_credentials()
        keys = {"aws_access_key_id": frozen.access_key, "aws_secret_access_key": frozen.secret_key}
        _register_secrets({**keys, "aws_session_token": frozen.token})
        region = backend.region or session.region_name or "us-east-1"
        endpoint = backend.endpoint or f"https://s3.{region}.amazonaws.com"
        check_reachable(endpoint, "the S3 endpoint", ": check --endpoint and that the server is running")

    # -- publish -------------------------------------------------------------------
    def put(self, upload: Upload, progress: Callable[[int], None] | None = None) -> StoredObject:
        """One object: a single PUT up to one part's size, else a parallel multipart upload.

        Every PUT and part carries the ChecksumSHA256 of its bytes, so the store verifies
        each byte it keeps, and everything we record comes from the PUT /
        CompleteMultipartUpload responses: no HEAD afterwards (one request per small file;
        only ``s3:PutObject`` needed).
        """
        key = self.object_key(upload.name)
        what = f"s3://{self.bucket}/{key}"
        with upload.open() as reader:
            if upload.path is not None and upload.size is not None:
                parts = _file_parts(reader, upload.path, upload.size, self._part_size)
            else:
                parts = _buffered_parts(reader, upload.size, self._part_size)
            first = next(parts)
            second = next(parts, None)
            if second is None:
                response = self._stored_already(key, first.checksum, first.size, 1)
                if response is None:
                    response = self._call(lambda: self._put_single(key, upload, first), what=what)
            else:
                response = self._put_multipart(key, upload, itertools.chain([first, second], parts), what)
        return self._stored(upload.name, key, response)

    def _stored(self, name: str, key: str, response: Mapping[str, Any]) -> StoredObject:
        """The StoredObject for ``key`` from a PUT, CompleteMultipartUpload or copy response."""
        facts: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ETag": response.get("ETag")}
        if response.get("VersionId") and response["VersionId"] != "null":
            facts["VersionID"] = response["VersionId"]
        if response.get("ChecksumSHA256"):
            facts["ChecksumSHA256"] = response["ChecksumSHA256"]
        location = f"s3://{self.bucket}/{key}"
        if facts.get("VersionID"):  # this exact version, even after the key is overwritten
            location += f"?versionId={facts['VersionID']}"
        return StoredObject(name, location, self._presign(key), facts)

    # -- server-side copies of identical objects (CopiesExisting) -------------------
    def copy_scope(self) -> tuple[str, dict[str, Any]]:
        """A copy needs the source in this bucket at this endpoint (None: AWS's own)."""
        return f"s3://{self.bucket}/", {"Endpoint": self.endpoint}

    def copy_prover(self, size: int | None) -> _CopyProver:
        return _CopyProver(size, self._part_size)

    def copy_existing(self, upload: Upload, source: str, proof: CopyProof) -> StoredObject | None:
        """``CopyObject`` (a managed ``UploadPartCopy`` above 5 GiB) from ``source``, once a
        HEAD shows it still holds the proven bytes: its size, and S3's checksum of it (whole,
        or per part as we upload them), or the sha256 our publishes write into its metadata.

        The copy is conditional on the ETag the HEAD saw, so an object replaced meanwhile is
        not copied. Refused (a PutObject-only identity cannot HEAD or read the source), gone,
        changed or failed: None, and the core uploads the bytes instead.
        """
        location, version = _split_version(source)
        bucket, source_key = split_s3_uri(location)
        if bucket != self.bucket:
            return None
        key = self.object_key(upload.name)
        try:
            head = self._head(bucket, source_key, version)
            if head is None or not _holds(head, proof):
                return None
            if source_key == key and version is None:
                return self._stored(upload.name, key, head)  # the very object: nothing to copy
            response = self._copy(bucket, source_key, version, key, upload, proof, head)
        except PublishError:
            return None
        return self._stored(upload.name, key, response)

    def _copy(
        self,
        bucket: str,
        source_key: str,
        version: str | None,
        key: str,
        upload: Upload,
        proof: CopyProof,
        head: Mapping[str, Any],
    ) -> dict[str, Any]:
        """One CopyObject (at most 5 GiB), else boto3's managed multipart copy; the response
        facts (ETag, VersionId, ChecksumSHA256) of the new object."""
        what = f"s3://{self.bucket}/{key}"
        copy_source = {"Bucket": bucket, "Key": source_key, **({"VersionId": version} if version else {})}
        extra: dict[str, Any] = {
            # Our metadata goes with the copy (its full sha256, whatever its parts were).
            "MetadataDirective": "REPLACE",
            "Metadata": {"sha256": proof.sha256},
            "ContentType": upload.content_type,
            "CopySourceIfMatch": head["ETag"],
        }
        if proof.size <= COPY_MAX:
            response = self._call(
                lambda: self.client.copy_object(Bucket=self.bucket, Key=key, CopySource=copy_source, **extra),
                what=what,
            )
            result = response.get("CopyObjectResult") or {}
            facts = {"ETag": result.get("ETag"), "VersionId": response.get("VersionId")}
            facts["ChecksumSHA256"] = result.get("ChecksumSHA256")
        else:
            from boto3.s3.transfer import TransferConfig

            config = TransferConfig(
                multipart_threshold=COPY_MAX,
                multipart_chunksize=max(COPY_PART, -(-proof.size // MAX_PARTS)),
                max_concurrency=self.part_concurrency,
            )
            self._call(
                lambda: self.client.copy(copy_source, self.bucket, key, ExtraArgs=extra, Config=config),
                what=what,
            )
            after = self._head(self.bucket, key)
            if after is None:
                raise NotFoundError(f"{what} is gone right after its copy")
            facts = {k: after.get(k) for k in ("ETag", "VersionId", "ChecksumSHA256")}
        etag = str(facts.get("ETag") or "")
        if etag and not etag.startswith('"'):
            facts["ETag"] = etag = f'"{etag}"'  # as PUT answers it
        if not facts.get("ChecksumSHA256") and etag == head.get("ETag"):
            # The same ETag: the same parts, so the same checksum the store reports for them.
            facts["ChecksumSHA256"] = head.get("ChecksumSHA256")
        return facts

    @staticmethod
    def _part_size(size: int | None, part_number: int) -> int:
        """8 MiB parts of a file (larger when its size would pass S3's 10,000 parts); 5 MiB
        parts of a stream of unknown length, growing by 5 MiB every 1,000 parts."""
        if size is not None:
            return max(PART_SIZE, -(-size // MAX_PARTS))
        return STREAM_PART_SIZE * (1 + (part_number - 1) // 1000)

    def _put_single(self, key: str, upload: Upload, part: _Part) -> dict[str, Any]:
        with part.body() as body:
            response: dict[str, Any] = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=upload.content_type,
                # The store checks this itself and answers BadDigest on any mismatch.
                ChecksumSHA256=part.checksum,
                Metadata={"sha256": base64.b64decode(part.checksum).hex()},
            )
        part.check_unchanged()
        response.setdefault("ChecksumSHA256", part.checksum)  # the store verified it or refused
        return response

    def _put_multipart(self, key: str, upload: Upload, parts: Iterator[_Part], what: str) -> dict[str, Any]:
        """Parts come in order from the hashing reader and go up several at a time.

        A part of a file is sent by re-reading its range from disk (no memory held; the
        store checks it against the checksum of the bytes we hashed); a part of a stream
        is held in memory until sent, at most ``part_concurrency`` of them (flat RSS).
        """
        from concurrent.futures import FIRST_COMPLETED, Future, wait

        from ..transfer import DaemonPool

        resuming = self.journal is not None and self.journal.resuming
        if resuming and upload.path is not None:
            # A file's parts are only ranges (no memory held): hash them all first, and
            # skip the object if a previous run completed it with the same bytes.
            listed = list(parts)
            size = sum(p.size for p in listed)
            done = self._stored_already(key, _composite(listed), size, len(listed))
            if done is not None:
                listed[-1].check_unchanged()
                return done
            parts = iter(listed)
        upload_id, stored = self._open_multipart(key, upload, what)
        sent: dict[int, dict[str, Any]] = {}
        running: dict[Future[dict[str, Any]], int] = {}
        limit = self.part_concurrency if upload.path is not None else min(self.part_concurrency, STREAM_PARTS)
        # Daemon workers: a part stuck on a stalled store never holds up Ctrl-C or exit.
        pool = DaemonPool(limit, "jupyter-publish-s3-part", threading.Event())
        try:
            last: _Part | None = None
            for part in parts:
                last = part
                kept = stored.get(part.number)
                if kept is not None and part.matches(kept):  # stored by a previous run
                    sent[part.number] = {
                        "PartNumber": part.number, "ETag": kept["ETag"], "ChecksumSHA256": part.checksum
                    }  # fmt: skip
                    if self.journal is not None:  # parts are kept only when resuming from it
                        self.journal.count(kept=1)
                    continue
                while len(running) >= limit:
                    _collect(wait(running, return_when=FIRST_COMPLETED)[0], running, sent)
                running[pool.submit(self._send_part, key, upload_id, part, what)] = part.number
                if self.journal is not None:
                    self.journal.count(sent=1)
            while running:
                _collect(wait(running)[0], running, sent)
            if last is not None:
                last.check_unchanged()
            ordered = [sent[n] for n in sorted(sent)]
            response: dict[str, Any] = self._call(
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": ordered}
                ),
                what=what,
            )
            if self.journal is not None:
                self.journal.closed(upload_id)
            return response
        except BaseException:
            for future in running:
                future.cancel()
            # Not waiting for parts in flight: one stuck on a stalled link would hold
            # Ctrl-C / SIGTERM for a socket timeout; the abort fails them anyway.
            pool.shutdown(cancel=True)

            def abort() -> None:  # leave no invisible parts behind to pay for
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                if self.journal is not None:
                    self.journal.closed(upload_id)  # else the next run aborts it

            self._bounded(abort)  # without waiting out a stalled store
            raise
        finally:
            pool.shutdown()

    def _open_multipart(self, key: str, upload: Upload, what: str) -> tuple[str, dict[int, dict[str, Any]]]:
        """The UploadId to send parts to, and the parts it already holds (resume only).

        A new upload is recorded in the job's journal before any part is sent, so a
        killed process's upload can be found again (aborted, or continued by resume).
        """
        journal = self.journal
        previous = journal.open_upload(self.bucket, key) if journal is not None else None
        if journal is not None and previous is not None:
            stored = self._listed_parts(key, previous, what)
            if stored is not None:
                return previous, stored
            journal.closed(previous)  # aborted or completed meanwhile: start afresh
        extra: dict[str, Any] = {"ContentType": upload.content_type, "ChecksumAlgorithm": "SHA256"}
        if upload.sha256:
            extra["Metadata"] = {"sha256": upload.sha256}
        created = self._call(
            lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra), what=what
        )
        if self.journal is not None:
            self.journal.opened(
                self.endpoint, self.region, self.bucket, key, created["UploadId"], self._abort_profile()
            )
        return created["UploadId"], {}

    def _abort_profile(self) -> str | None:
        """The profile a later run aborts this job's uploads with (none with explicit keys)."""
        return None if any(self._keys.values()) else self.profile

    def _listed_parts(self, key: str, upload_id: str, what: str) -> dict[int, dict[str, Any]] | None:
        """ListParts of an upload a previous run left open: {number: part}, or None if gone."""
        import botocore.exceptions as bx

        paginator = self.client.get_paginator("list_parts")
        try:
            pages = list(paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id))
        except bx.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchUpload", "404", "NoSuchKey"}:
                return None
            raise self._client_error(exc, what) from None
        return {int(p["PartNumber"]): p for page in pages for p in page.get("Parts", [])}

    def _stored_already(self, key: str, checksum: str, size: int, parts: int) -> dict[str, Any] | None:
        """When resuming: the object's HEAD if a previous run stored exactly these bytes.

        ``checksum`` is the sha256 of a single PUT or the composite of a multipart upload
        (sha256 of the parts' sha256s, ``-N``), as the store reports it.
        """
        if self.journal is None or not self.journal.resuming:
            return None
        head = self._head(self.bucket, key)
        if head is None or int(head.get("ContentLength", -1)) != size:
            return None
        reported = str(head.get("ChecksumSHA256") or "")
        if parts == 1:
            same = reported == checksum or (head.get("Metadata") or {}).get("sha256") == _hex(checksum)
        else:
            same = reported == f"{checksum}-{parts}"
        if not same:
            return None
        self.journal.count(skipped=1)
        found = {k: head.get(k) for k in ("ETag", "VersionId") if head.get(k)}
        return {**found, "ChecksumSHA256": reported}

    @staticmethod
    def _bounded(action: Callable[[], Any], seconds: float = 2.0) -> None:
        """Run a clean-up call for at most ``seconds`` (in a daemon thread), ignoring errors:
        after Ctrl-C or a stall it must not hold the user for the store's timeouts."""

        def run() -> None:
            with contextlib.suppress(Exception):
                action()

        worker = threading.Thread(target=run, daemon=True, name="jupyter-publish-cleanup")
        worker.start()
        worker.join(seconds)

    def _send_part(self, key: str, upload_id: str, part: _Part, what: str) -> dict[str, Any]:
        def send() -> dict[str, Any]:
            with part.body() as body:
                stored: dict[str, Any] = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=part.number,
                    Body=body,
                    ChecksumSHA256=part.checksum,
                )
                return stored

        response = self._call(send, what=what)
        return {"PartNumber": part.number, "ETag": response["ETag"], "ChecksumSHA256": part.checksum}

    def outcome(self, objects: Sequence[StoredObject]) -> StoreOutcome:
        single = len(objects) == 1 and not self.key.endswith("/")
        key = objects[0].extra["Key"] if single else self.key
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Region": self.region}
        if self.endpoint:
            params["Endpoint"] = self.endpoint
        if single:
            for field in ("VersionID", "ChecksumSHA256"):
                if objects[0].extra.get(field):
                    params[field] = objects[0].extra[field]
        url = objects[0].url if single else None
        return StoreOutcome(
            type=self.result_type,
            params=params,
            uri=f"s3://{self.bucket}/{key}",
            objects=list(objects),
            url=url,
        )

    def object_key(self, name: str) -> str:
        """Where ``name`` goes: the key itself for a single archive, else under the prefix."""
        if self.key and not self.key.endswith("/"):
            return self.key
        return f"{self.key}{name}"

    def _presign(self, key: str) -> str | None:
        if not self.presign_seconds:
            return None
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=self.presign_seconds,
        )
        return url

    def write_manifest(self, manifest: dict[str, Any]) -> StoredObject:
        """Store the manifest beside a plain publish, last, as its completion marker."""
        key = f"{self.key}{MANIFEST_NAME}"
        body = json.dumps(manifest, indent=1).encode()
        checksum = base64.b64encode(hashlib.sha256(body).digest()).decode()
        self._call(
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                ChecksumSHA256=checksum,
            ),
            what=f"s3://{self.bucket}/{key}",
        )
        return StoredObject(MANIFEST_NAME, f"s3://{self.bucket}/{key}")

    # -- errors --------------------------------------------------------------------
    def _call(self, action: Callable[[], Any], *, what: str) -> Any:
        """Run one boto3 call, turning its exceptions into one-line PublishErrors."""
        import botocore.exceptions as bx

        try:
            return action()
        except PublishError:
            raise
        except bx.NoCredentialsError:
            raise CredentialsError(NO_CREDENTIALS) from None
        except bx.EndpointConnectionError:
            raise BackendError(
                f"cannot reach the S3 endpoint {self.endpoint or 'of AWS'}: check --endpoint "
                "and that the server is running"
            ) from None
        except bx.ClientError as exc:
            raise self._client_error(exc, what) from None
        except (bx.BotoCoreError, ConnectionError, TimeoutError) as exc:
            # botocore has retried these already: the core does not retry them once more.
            raise exhausted(self._transport_error(exc, what), self._attempts) from None

    def _transport_error(self, exc: BaseException, what: str) -> PublishError:
        """A timeout is a stall, a dropped connection or short body transient; one line."""
        import botocore.exceptions as bx
        import urllib3.exceptions as ux

        server = f"the S3 endpoint {self.endpoint or 'of AWS'}"
        if _timed_out(exc):
            return stalled(server, f"S3 transfer of {what}")
        if isinstance(
            exc,
            bx.HTTPClientError | bx.IncompleteReadError | bx.ResponseStreamingError | ux.HTTPError | OSError,
        ):
            reason = str(exc).split("\n")[0] or type(exc).__name__
            return TransientError(f"S3 transfer of {what} from {server} broke off: {reason}")
        return BackendError(f"S3 request for {what} failed: {exc}")

    def _client_error(self, exc: Any, what: str) -> PublishError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        where = f" at {self.endpoint}" if self.endpoint else ""
        if code == "NoSuchBucket":
            return NotFoundError(f"bucket {self.bucket!r} does not exist{where}: create it or check the name")
        if code in {"NoSuchKey", "404", "NotFound"}:
            return NotFoundError(f"{what} does not exist{where}")
        if code in _CREDENTIAL_CODES or status == 403:
            detail = {
                "SignatureDoesNotMatch": "the secret key is wrong",
                "InvalidAccessKeyId": "the access key is unknown",
                "ExpiredToken": "the session token has expired",
            }.get(code, "access denied")
            return CredentialsError(
                f"S3 refused the request for {what}{where} ({code or status}: {detail}); "
                "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --profile"
            )
        message = error.get("Message") or exc
        if (isinstance(status, int) and status >= 500) or code in {"SlowDown", "InternalError"}:
            # Already retried by botocore (its standard mode retries 5xx and SlowDown).
            error = TransientError(f"S3 error for {what}{where}: {code or status} {message}")
            return exhausted(error, self._attempts)
        return BackendError(f"S3 error for {what}{where}: {code or status} {message}")

    # -- fetch ---------------------------------------------------------------------
    def list(self, ref: str) -> list[RemoteObject]:
        """An object, a ``prefix/``, or a glob like ``s3://b/dir/OR_*`` -> objects."""
        ref, version = _split_version(ref)
        bucket, key = split_s3_uri(ref)
        self.bucket = bucket
        if version:
            head = self._head(bucket, key, version)
            if head is None:
                raise NotFoundError(f"{ref} has no version {version}")
            remote = self._remote(bucket, key, os.path.basename(key), head)
            remote.location += f"?versionId={version}"
            return [remote]
        magic = any(ch in key for ch in "*?[")
        if not magic and key and not key.endswith("/"):
            head = self._head(bucket, key)
            if head is not None:
                return [self._remote(bucket, key, os.path.basename(key), head)]
            key += "/"
        prefix = key.split("*")[0].split("?")[0].split("[")[0] if magic else key
        base = prefix.rpartition("/")[0] + "/" if "/" in prefix else ""
        found: list[RemoteObject] = []
        dirs: list[RemoteObject] = []
        manifest: Any = None
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(lambda: list(paginator.paginate(Bucket=bucket, Prefix=prefix)), what=ref)
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"]
                if magic and not fnmatch.fnmatchcase(name, key):
                    continue
                rel = name[len(base) :] if magic else name[len(prefix) :]
                if name.endswith("/"):  # a folder marker, as consoles make for empty folders
                    if not magic and rel.strip("/"):
                        dirs.append(RemoteObject(rel.strip("/"), f"s3://{bucket}/{name}", is_dir=True))
                    continue
                if rel == MANIFEST_NAME and not magic:
                    manifest = self._load_manifest(bucket, name)
                    continue
                size = int(item.get("Size", 0))
                found.append(RemoteObject(rel, f"s3://{bucket}/{name}", size=size, ranged=True))
        if manifest is not None:
            where = f"s3://{bucket}/{prefix}{MANIFEST_NAME}"
            recorded, folders = manifest_entries(manifest, where)
            for obj in found:
                if obj.name in recorded:
                    obj.sha256, obj.cid = recorded[obj.name]
            dirs += [RemoteObject(d, f"s3://{bucket}/{prefix}{d}/", is_dir=True) for d in folders]
        if not found and not dirs:
            raise NotFoundError(f"nothing found at {ref}")
        return found + dirs

    def _head(self, bucket: str, key: str, version: str | None = None) -> dict[str, Any] | None:
        extra = {"VersionId": version} if version else {}
        try:
            head: dict[str, Any] = self._call(
                lambda: self.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", **extra),
                what=f"s3://{bucket}/{key}",
            )
            return head
        except NotFoundError:
            return None

    def _remote(self, bucket: str, key: str, name: str, head: dict[str, Any]) -> RemoteObject:
        sha = (head.get("Metadata") or {}).get("sha256")
        checksum = head.get("ChecksumSHA256")
        if not sha and checksum and "-" not in checksum:
            sha = base64.b64decode(checksum).hex()
        size = int(head.get("ContentLength", 0))
        return RemoteObject(name, f"s3://{bucket}/{key}", size=size, sha256=sha, ranged=True)

    def _load_manifest(self, bucket: str, key: str) -> Any:
        """The sidecar manifest's JSON; anything else at that key is one line, never a traceback.

        Read again (with backoff) when the connection breaks off mid-body, like every
        other read: botocore retries the request, not a body that stops half way.
        """
        where = f"s3://{bucket}/{key}"
        data = retrying(lambda: self._manifest_bytes(bucket, key, where))
        if len(data) > MAX_MANIFEST_BYTES:
            raise _bad_manifest(where, f"larger than {human_size(MAX_MANIFEST_BYTES)}")
        try:
            return json.loads(data)
        except RecursionError:
            raise _bad_manifest(where, "nested too deeply") from None
        except ValueError as exc:  # includes UnicodeDecodeError
            raise _bad_manifest(where, f"not JSON: {str(exc)[:80]}") from None

    def _manifest_bytes(self, bucket: str, key: str, where: str) -> bytes:
        """One GET of the manifest (at most one byte past the cap); a cut is a TransientError."""
        body = self._call(lambda: self.client.get_object(Bucket=bucket, Key=key), what=where)["Body"]
        fault = partial(self._transport_error, what=where)
        return b"".join(_iter_body(body, MAX_MANIFEST_BYTES + 1, fault))

    def read(self, location: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """One GET from ``offset`` (``length`` bytes, or to the end) as a ranged request."""
        location, version = _split_version(location)
        bucket, key = split_s3_uri(location)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version:
            kwargs["VersionId"] = version
        if length is not None:
            if length <= 0:
                return iter(())
            kwargs["Range"] = f"bytes={offset}-{offset + length - 1}"
        elif offset:
            kwargs["Range"] = f"bytes={offset}-"
        response = self._call(lambda: self.client.get_object(**kwargs), what=location)
        body = response["Body"]
        whole = response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 200
        if whole and length is not None:
            body.close()
            raise RangeIgnored(f"{location}: the store answered a range request with the whole object")
        if offset and whole:
            # The store ignored Range and sent everything: a cut while skipping is retried too.
            _skip(body, offset, lambda exc: self._transport_error(exc, location))
        return _iter_body(body, length, lambda exc: self._transport_error(exc, location))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass
class _Part:
    """One part (or the whole of a small object), with the sha256 of the bytes hashed."""

    number: int
    checksum: str
    """Base64 sha256, as S3's ChecksumSHA256 wants it."""
    data: list[bytes] | None = None
    """The bytes themselves, as read (a stream's part), or None: re-read ``span`` of ``path``."""
    path: Path | None = None
    span: tuple[int, int] = (0, 0)
    stat: tuple[int, int] | None = None
    """(size, mtime_ns) of ``path`` when its hashing started."""

    @property
    def size(self) -> int:
        return sum(map(len, self.data)) if self.data is not None else self.span[1]

    def matches(self, stored: dict[str, Any]) -> bool:
        """Whether a part a previous run stored (from ListParts) holds these bytes.

        Its ChecksumSHA256 is compared when the store lists it; SeaweedFS lists none, so
        then its ETag, the MD5 of the part, is compared with the MD5 of our bytes.
        """
        if int(stored.get("Size", -1)) != self.size:
            return False
        if stored.get("ChecksumSHA256"):
            return bool(stored["ChecksumSHA256"] == self.checksum)
        etag = str(stored.get("ETag", "")).strip('"')
        if len(etag) != 32:
            return False
        md5 = hashlib.md5(usedforsecurity=False)
        with self.body() as body:
            while chunk := body.read(MiB):
                md5.update(chunk)
        return md5.hexdigest() == etag

    def body(self) -> Any:
        """A context manager giving a body boto3 can send (and seek back in, to retry)."""
        if self.data is not None:
            return contextlib.closing(_ChunksBody(self.data))
        from s3transfer.utils import ReadFileChunk

        assert self.path is not None
        return ReadFileChunk.from_filename(str(self.path), *self.span, enable_callbacks=False)

    def check_unchanged(self) -> None:
        """A re-read file must be the one we hashed (for stores that ignore checksums)."""
        if self.path is None or self.stat is None:
            return
        now = os.stat(self.path)
        if (now.st_size, now.st_mtime_ns) != self.stat:
            raise SourceError(f"{self.path} changed while it was being published; publish again")


def _holds(head: Mapping[str, Any], proof: CopyProof) -> bool:
    """Whether a HEAD shows the object holds the proven bytes: its size, then S3's own
    checksum (whole, or of parts laid out as we upload them), else our sha256 metadata."""
    if int(head.get("ContentLength", -1)) != proof.size:
        return False
    reported = str(head.get("ChecksumSHA256") or "")
    if reported and "-" not in reported:
        return reported == base64.b64encode(bytes.fromhex(proof.sha256)).decode()
    if reported and reported in proof.facts.get("composites", ()):
        return True
    return proof.metadata and (head.get("Metadata") or {}).get("sha256") == proof.sha256


class _PartSums:
    """The sha256 of each part of some bytes, cut as ``part_size(number)`` says."""

    def __init__(self, part_size: Callable[[int], int]) -> None:
        self._part_size = part_size
        self._number = 1
        self._left = part_size(1)
        self._sha = hashlib.sha256()
        self._open = False
        self.digests: list[bytes] = []

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            take = min(self._left, len(view))
            self._sha.update(view[:take])
            self._left -= take
            view = view[take:]
            self._open = True
            if not self._left:
                self.digests.append(self._sha.digest())
                self._number += 1
                self._left = self._part_size(self._number)
                self._sha, self._open = hashlib.sha256(), False

    def composite(self) -> str | None:
        """S3's checksum of these bytes uploaded in these parts (None: one part, a PUT)."""
        digests = self.digests + ([self._sha.digest()] if self._open else [])
        if len(digests) < 2:
            return None
        return f"{base64.b64encode(hashlib.sha256(b''.join(digests)).digest()).decode()}-{len(digests)}"


class _CopyProver:
    """The multipart checksum S3 reports for an object we uploaded, from the local bytes:
    parts cut as ``put`` cuts a file's (``size`` known) or a stream's (an archive's).

    One layout only (a sha256 pass costs ~1.5 s per GiB a core): an object stored in other
    parts (a file once published as our archive, another client's upload) is proven by
    the whole checksum or our metadata instead, else uploaded."""

    def __init__(self, size: int | None, part_size: Callable[[int | None, int], int]) -> None:
        self._layouts = [_PartSums(partial(part_size, size))]

    def update(self, data: bytes | bytearray | memoryview) -> None:
        for layout in self._layouts:
            layout.update(data)

    def facts(self) -> dict[str, Any]:
        return {"composites": [c for layout in self._layouts if (c := layout.composite())]}


def _buffered_parts(
    reader: Any, size: int | None, part_size: Callable[[int | None, int], int]
) -> Iterator[_Part]:
    """Parts of a stream (an archive being made): read in order, held until sent."""
    number = 1
    while True:
        # Kept as the chunks the reader gave (no joined copy of each 8 MiB part).
        want, chunks, sha = part_size(size, number), [], hashlib.sha256()
        while want and (chunk := reader.read(min(want, MiB))):
            sha.update(chunk)
            chunks.append(chunk)
            want -= len(chunk)
        if not chunks and number > 1:
            return
        yield _Part(number, base64.b64encode(sha.digest()).decode(), data=chunks)
        number += 1


class _ChunksBody(io.RawIOBase):
    """A seekable read-only view of a list of byte chunks: botocore sends it (and seeks
    back to retry) without the chunks ever being joined into one big copy."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._starts = list(itertools.accumulate((len(c) for c in chunks), initial=0))
        self._size = self._starts[-1]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, min(self._size, base + offset))
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            index = bisect.bisect_right(self._starts, self._pos) - 1
            at = self._pos - self._starts[index]
            piece = self._chunks[index][at : at + len(view) - done]
            view[done : done + len(piece)] = piece
            done += len(piece)
            self._pos += len(piece)
        return done


def _file_parts(
    reader: Any, path: Path, size: int, part_size: Callable[[int | None, int], int]
) -> Iterator[_Part]:
    """Parts of a file: every byte goes through the hashing reader in order (and into each
    part's checksum), then only the range is remembered, to be re-read when sent."""
    info = os.stat(path)
    stat = (info.st_size, info.st_mtime_ns)
    start, number = 0, 1
    while start < size or number == 1:
        length = min(part_size(size, number), size - start)
        sha = hashlib.sha256()
        left = length
        while left and (chunk := reader.read(min(left, MiB))):
            sha.update(chunk)
            left -= len(chunk)
        if left:
            raise SourceError(f"{path} shrank while it was being published; publish again")
        if start + length >= size and reader.read(1):
            raise SourceError(f"{path} grew while it was being published; publish again")
        checksum = base64.b64encode(sha.digest()).decode()
        yield _Part(number, checksum, path=path, span=(start, length), stat=stat)
        start += length
        number += 1


def _composite(parts: Sequence[_Part]) -> str:
    """S3's checksum of a multipart object: sha256 of its parts' sha256s (base64)."""
    joined = b"".join(base64.b64decode(p.checksum) for p in parts)
    return base64.b64encode(hashlib.sha256(joined).digest()).decode()


def _hex(checksum: str) -> str:
    return base64.b64decode(checksum).hex()


def _collect(done: Any, running: dict[Any, int], parts: dict[int, dict[str, Any]]) -> None:
    for future in done:
        parts[running.pop(future)] = future.result()


def _timed_out(exc: BaseException) -> bool:
    """Whether a socket timeout is behind ``exc``: botocore reports a send that timed
    out (the store stopped reading the body) as a closed connection."""
    import botocore.exceptions as bx
    import urllib3.exceptions as ux

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, bx.ReadTimeoutError | bx.ConnectTimeoutError | ux.TimeoutError | TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _iter_body(
    body: Any, length: int | None, fault: Callable[[BaseException], PublishError]
) -> Iterator[bytes]:
    """The body's chunks; a connection that drops or stalls mid-body is one line (a
    TransientError the core retries from the next byte), never botocore's traceback."""
    import botocore.exceptions as bx
    import urllib3.exceptions as ux

    chunks = body.iter_chunks(chunk_size=MiB)
    try:
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except (bx.BotoCoreError, ux.HTTPError, OSError) as exc:
                raise fault(exc) from None
            if length is not None:
                chunk = chunk[:length]
                length -= len(chunk)
            if chunk:
                yield chunk
            if length == 0:
                break
    finally:
        with contextlib.suppress(Exception):
            body.close()


def _skip(body: Any, count: int, fault: Callable[[BaseException], PublishError]) -> None:
    """Read past ``count`` bytes of ``body``; a connection that breaks off is ``fault(exc)``."""
    import botocore.exceptions as bx
    import urllib3.exceptions as ux

    try:
        while count > 0:
            chunk = body.read(min(count, MiB))
            if not chunk:
                break
            count -= len(chunk)
    except (bx.BotoCoreError, ux.HTTPError, OSError) as exc:
        with contextlib.suppress(Exception):
            body.close()
        raise fault(exc) from None


MAX_MANIFEST_BYTES = 256 * 2**20
"""A manifest of a million files is ~300 MB; anything larger is not one of ours."""


def _bad_manifest(where: str, why: str) -> BackendError:
    return BackendError(
        f"{where} is not a jupyter-publish manifest ({why}); "
        "delete it or publish again, or fetch the files by their own names"
    )


def manifest_entries(doc: Any, where: str) -> tuple[dict[str, tuple[str | None, str | None]], list[str]]:
    """``{path: (sha256, cid)}`` of the files and the folder paths a sidecar manifest records.

    The document comes from a store anyone may write to: every field is checked for its
    type and form, and anything unexpected is one BackendError naming the manifest.
    """
    from ..cid import parse_cid

    if not isinstance(doc, dict):
        raise _bad_manifest(where, f"a JSON {type(doc).__name__} instead of an object")
    entries = doc.get("manifest")
    if not isinstance(entries, list):
        raise _bad_manifest(where, '"manifest" is not a list')
    files: dict[str, tuple[str | None, str | None]] = {}
    dirs: list[str] = []
    for number, entry in enumerate(entries):
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not path:
            raise _bad_manifest(where, f"entry {number} has no path")
        sha, cid, kind = entry.get("sha256"), entry.get("cid"), entry.get("kind", "file")
        if sha is not None and not (isinstance(sha, str) and SHA256_HEX.fullmatch(sha)):
            raise _bad_manifest(where, f"entry {number} has a sha256 that is not 64 hex digits")
        if cid is not None:
            try:
                parse_cid(cid)
            except CidError:
                raise _bad_manifest(where, f"entry {number} has an invalid CID") from None
        if kind == "dir":
            if path not in (".", ""):
                dirs.append(path)
        elif kind == "file":
            files[path] = (sha, cid)
        elif kind != "archive":
            raise _bad_manifest(where, f"entry {number} is of unknown kind {str(kind)[:20]!r}")
    return files, dirs


def _split_version(uri: str) -> tuple[str, str | None]:
    """``s3://b/k?versionId=V`` -> (``s3://b/k``, ``V``)."""
    base, sep, query = uri.partition("?versionId=")
    return (base, query) if sep else (uri, None)


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise RefError(f"not an S3 URI: {uri!r} (expected s3://BUCKET/KEY)")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise RefError(f"no bucket in {uri!r}: write s3://BUCKET/KEY")
    return bucket, key
