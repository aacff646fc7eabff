"""S3 and S3-compatible stores through boto3.

Credentials come from the standard chain (env, profile, config files, instance roles);
the endpoint from ``--endpoint``, ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``.
Uploads stream through boto3's managed transfer (multipart above 64 MiB, parts sent in
parallel) while the core hashes the same bytes; afterwards a HEAD records VersionId and
S3's own ChecksumSHA256 when the store keeps one.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from ..errors import BackendError, CredentialsError, DestinationError, NotFoundError, PublishError
from .base import RemoteObject, StoredObject, StoreOutcome, Upload

MiB = 1024 * 1024
MULTIPART_THRESHOLD = 64 * MiB
MANIFEST_NAME = ".jupyter-publish.json"
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
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = str(text).strip().lower()
    try:
        seconds = int(raw[:-1]) * units[raw[-1]] if raw[-1] in units else int(raw)
    except (ValueError, IndexError):
        raise DestinationError(f"cannot read duration {text!r}: write e.g. 3600, 15m, 1h or 7d") from None
    if not 1 <= seconds <= 7 * 86400:
        raise DestinationError(f"presigned URLs last 1 second to 7 days, not {text!r}")
    return seconds


def endpoint_from_env() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


class S3Backend:
    """Publish to ``s3://bucket/key`` and read back objects, prefixes and globs."""

    scheme: ClassVar[str] = "s3"
    sidecar_manifest: ClassVar[bool] = True

    def __init__(
        self,
        *,
        bucket: str = "",
        key: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        presign: str | int | None = None,
        max_concurrency: int = 4,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        **_ignored: Any,
    ) -> None:
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise DestinationError(f"S3 endpoint {endpoint!r} is not a URL: write http(s)://HOST[:PORT]")
        # Explicit keys (the widget's password fields) go to this client only: never to
        # the environment, the result or the ledger.
        self._keys = {
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
        }
        self.bucket = bucket
        self.key = key
        self.endpoint = endpoint or endpoint_from_env()
        self.region = region
        self.profile = profile
        self.presign_seconds = parse_duration(presign)
        self.max_concurrency = max_concurrency
        self._client: Any = None

    # -- client --------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            import botocore.config
            import botocore.exceptions

            options: dict[str, Any] = {
                "retries": {"max_attempts": 5, "mode": "standard"},
                "signature_version": "s3v4",
            }
            if self.endpoint and "amazonaws.com" not in self.endpoint:
                # boto3 >= 1.36 sends CRC checksums many S3-compatible stores reject;
                # we keep our own sha256 of every object instead (FACTS.md).
                options.update(
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    s3={"addressing_style": "path"},
                )
            try:
                keys = {k: v for k, v in self._keys.items() if v}
                session = boto3.session.Session(profile_name=None if keys else self.profile, **keys)
            except botocore.exceptions.ProfileNotFound:
                raise CredentialsError(
                    f"AWS profile {self.profile!r} not found: check ~/.aws/config or drop --profile"
                ) from None
            self.region = self.region or session.region_name or "us-east-1"
            self._client = session.client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=self.region,
                config=botocore.config.Config(**options),
            )
        return self._client

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=8 * MiB,
            max_concurrency=self.max_concurrency,
            use_threads=True,
        )
        # Bounds the parts read ahead of the network: memory stays flat at any size.
        config.max_in_memory_upload_chunks = self.max_concurrency + 2
        return config

    # -- publish -------------------------------------------------------------------
    def publish(
        self, uploads: Sequence[Upload], progress: Callable[[int], None] | None = None
    ) -> StoreOutcome:
        objects = [self._put(upload, progress) for upload in uploads]
        single = len(uploads) == 1 and not self.key.endswith("/")
        key = objects[0].extra["Key"] if single else self.key
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Region": self.region,
        }
        if self.endpoint:
            params["Endpoint"] = self.endpoint
        if single:
            for field in ("VersionID", "ChecksumSHA256"):
                if objects[0].extra.get(field):
                    params[field] = objects[0].extra[field]
        url = objects[0].url if single else None
        return StoreOutcome(
            type="s3", params=params, uri=f"s3://{self.bucket}/{key}", objects=objects, url=url
        )

    def object_key(self, name: str) -> str:
        """Where ``name`` goes: the key itself for a single archive, else under the prefix."""
        if self.key and not self.key.endswith("/"):
            return self.key
        return f"{self.key}{name}"

    def _put(self, upload: Upload, progress: Callable[[int], None] | None) -> StoredObject:
        key = self.object_key(upload.name)
        extra: dict[str, Any] = {"ContentType": upload.content_type}
        if upload.sha256:
            extra["Metadata"] = {"sha256": upload.sha256}
            if upload.size < MULTIPART_THRESHOLD:
                # The store checks this itself and answers BadDigest on any mismatch.
                extra["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(upload.sha256)).decode()
        with upload.open() as reader:
            self._call(
                lambda: self._transfer(reader, key, extra, upload.size), what=f"s3://{self.bucket}/{key}"
            )
        try:  # Bacalhau's publisher policy grants PutObject only: the HEAD is a bonus
            head = self._call(
                lambda: self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED"),
                what=f"s3://{self.bucket}/{key}",
            )
        except CredentialsError:
            head = {}
        facts: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ETag": head.get("ETag")}
        if head.get("VersionId") and head["VersionId"] != "null":
            facts["VersionID"] = head["VersionId"]
        if head.get("ChecksumSHA256"):
            facts["ChecksumSHA256"] = head["ChecksumSHA256"]
        if head.get("ContentLength") is not None and head["ContentLength"] != upload.size:
            raise BackendError(
                f"s3://{self.bucket}/{key} holds {head['ContentLength']} bytes after upload, "
                f"expected {upload.size}"
            )
        location = f"s3://{self.bucket}/{key}"
        if facts.get("VersionID"):  # this exact version, even after the key is overwritten
            location += f"?versionId={facts['VersionID']}"
        return StoredObject(upload.name, location, self._presign(key), facts)

    def _transfer(self, reader: Any, key: str, extra: dict[str, Any], size: int) -> None:
        """boto3's managed upload, told the size up front.

        Our reader cannot seek, and s3transfer would otherwise buffer a whole multipart
        threshold in memory just to find out whether the stream is large.
        """
        from boto3.s3.transfer import create_transfer_manager
        from s3transfer.subscribers import BaseSubscriber

        class KnownSize(BaseSubscriber):  # type: ignore[misc]
            def on_queued(self, future: Any, **kwargs: Any) -> None:
                future.meta.provide_transfer_size(size)

        with create_transfer_manager(self.client, self._transfer_config()) as manager:
            manager.upload(reader, self.bucket, key, extra_args=extra, subscribers=[KnownSize()]).result()

    def _presign(self, key: str) -> str | None:
        if not self.presign_seconds:
            return None
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=self.presign_seconds,
        )

    def write_manifest(self, manifest: dict[str, Any]) -> StoredObject:
        """Store the manifest beside a plain publish, last, as its completion marker."""
        key = f"{self.key}{MANIFEST_NAME}"
        body = json.dumps(manifest, indent=1).encode()
        self._call(
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
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
            raise CredentialsError(
                "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile"
            ) from None
        except bx.EndpointConnectionError:
            raise BackendError(
                f"cannot reach the S3 endpoint {self.endpoint or 'of AWS'}: check --endpoint "
                "and that the server is running"
            ) from None
        except bx.ClientError as exc:
            raise self._client_error(exc, what) from None
        except bx.BotoCoreError as exc:
            raise BackendError(f"S3 request for {what} failed: {exc}") from None

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
        manifest: dict[str, Any] | None = None
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(lambda: list(paginator.paginate(Bucket=bucket, Prefix=prefix)), what=ref)
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"]
                if magic and not fnmatch.fnmatchcase(name, key):
                    continue
                if name.endswith("/"):
                    continue
                rel = name[len(base) :] if magic else name[len(prefix) :]
                if rel == MANIFEST_NAME and not magic:
                    manifest = self._load_manifest(bucket, name)
                    continue
                found.append(RemoteObject(rel, f"s3://{bucket}/{name}", size=int(item.get("Size", 0))))
        if not found:
            raise NotFoundError(f"nothing found at {ref}")
        if manifest:
            recorded = {e["path"]: e for e in manifest.get("manifest", [])}
            for obj in found:
                entry = recorded.get(obj.name)
                if entry:
                    obj.sha256, obj.cid = entry.get("sha256"), entry.get("cid")
        return found

    def _head(self, bucket: str, key: str, version: str | None = None) -> dict[str, Any] | None:
        extra = {"VersionId": version} if version else {}
        try:
            return self._call(
                lambda: self.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", **extra),
                what=f"s3://{bucket}/{key}",
            )
        except NotFoundError:
            return None

    def _remote(self, bucket: str, key: str, name: str, head: dict[str, Any]) -> RemoteObject:
        sha = (head.get("Metadata") or {}).get("sha256")
        checksum = head.get("ChecksumSHA256")
        if not sha and checksum and "-" not in checksum:
            sha = base64.b64decode(checksum).hex()
        return RemoteObject(name, f"s3://{bucket}/{key}", size=int(head.get("ContentLength", 0)), sha256=sha)

    def _load_manifest(self, bucket: str, key: str) -> dict[str, Any] | None:
        body = self._call(lambda: self.client.get_object(Bucket=bucket, Key=key), what=key)["Body"]
        try:
            return json.loads(body.read())
        except ValueError:
            return None
        finally:
            body.close()

    def read(self, location: str, offset: int = 0) -> Iterator[bytes]:
        location, version = _split_version(location)
        bucket, key = split_s3_uri(location)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version:
            kwargs["VersionId"] = version
        if offset:
            kwargs["Range"] = f"bytes={offset}-"
        response = self._call(lambda: self.client.get_object(**kwargs), what=location)
        body = response["Body"]
        if offset and response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 200:
            _skip(body, offset)
        return _iter_body(body)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _iter_body(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size=MiB)
    finally:
        body.close()


def _skip(body: Any, count: int) -> None:
    while count > 0:
        chunk = body.read(min(count, MiB))
        if not chunk:
            break
        count -= len(chunk)


def _split_version(uri: str) -> tuple[str, str | None]:
    """``s3://b/k?versionId=V`` -> (``s3://b/k``, ``V``)."""
    base, sep, query = uri.partition("?versionId=")
    return (base, query) if sep else (uri, None)


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise DestinationError(f"not an S3 URI: {uri!r} (expected s3://BUCKET/KEY)")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise DestinationError(f"no bucket in {uri!r}: write s3://BUCKET/KEY")
    return bucket, key
