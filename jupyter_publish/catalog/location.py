"""Where the team's catalog is: an ``s3://BUCKET/PREFIX/`` or a (network) folder.

Settled in this order: the ``catalog=`` argument, then ``$JUPYTER_PUBLISH_CATALOG``
(the magics add ``PublishMagics.catalog`` and ``[tool.jupyter_publish] catalog`` in
front). An empty string turns the catalog off for one call.

S3 options (endpoint, region, profile, keys) are, first to last: written inline
(``s3://team/catalog/,opt=endpoint=https://…``); then passed as ``catalog_options``
(the magics pass ``PublishMagics.endpoint``, ``region`` and ``profile`` there, key by
key under what the location names, as they do for a destination); then,
when a job writes its record and its destination is S3 on the same endpoint (or the
catalog names none), that destination's options, so one set of credentials serves both;
then the environment (``AWS_ENDPOINT_URL_S3``, ``AWS_PROFILE``, the AWS key chain).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DestinationError

CATALOG_ENV = "JUPYTER_PUBLISH_CATALOG"
S3_OPTIONS = (
    "endpoint",
    "region",
    "profile",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
)
"""The S3 backend's options a catalog on S3 takes (its client is that backend's)."""


@dataclass(frozen=True)
class CatalogLocation:
    """A parsed catalog location: S3 (``bucket`` and ``prefix``) or a folder (``path``)."""

    text: str
    """As given, without inline options (never holds a secret: those go to ``options``)."""
    kind: str
    """``s3`` or ``folder``."""
    bucket: str = ""
    prefix: str = ""
    """The key prefix, ``""`` or ending in ``/``."""
    path: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    ident: str = field(init=False, default="", repr=False, compare=False)
    """What the local cache (and its pending records) files this catalog under: the
    same bucket on another endpoint is another catalog. Settled once, from the options
    as merged, when the location is made: every operation on one location agrees."""

    def __post_init__(self) -> None:
        if self.kind == "folder":
            ident = str(self.path)
        else:
            endpoint = str(self.options.get("endpoint") or _env_endpoint() or "aws").rstrip("/")
            ident = f"s3://{self.bucket}/{self.prefix} at {endpoint}"
        object.__setattr__(self, "ident", ident)

    def with_job_options(self, job_scheme: str, job_options: Mapping[str, Any]) -> CatalogLocation:
        """The options a job's record is written with: the job's own S3 options fill the
        gaps when the catalog is on the job's endpoint (or names none)."""
        if self.kind != "s3" or job_scheme != "s3":
            return self
        mine, theirs = self.options.get("endpoint"), job_options.get("endpoint")
        if mine and theirs and mine.rstrip("/") != str(theirs).rstrip("/"):
            return self
        merged = {k: v for k, v in job_options.items() if k in S3_OPTIONS and v}
        return CatalogLocation(
            self.text, self.kind, self.bucket, self.prefix, None, {**merged, **self.options}
        )


def _env_endpoint() -> str | None:
    from ..backends.s3 import endpoint_from_env

    return endpoint_from_env()


def configured(explicit: str | None) -> str | None:
    """The catalog location in force: ``explicit`` if given ("" = none), else the environment's."""
    if explicit is not None:
        return explicit.strip() or None
    return os.environ.get(CATALOG_ENV, "").strip() or None


def parse(text: str | os.PathLike[str], options: Mapping[str, Any] | None = None) -> CatalogLocation:
    """``s3://BUCKET/PREFIX/[,opt=NAME=VALUE…]`` or a folder path (``file://`` allowed)."""
    raw = os.fspath(text).strip()
    if not raw:
        raise DestinationError("empty catalog location: give s3://BUCKET/PREFIX/ or a folder path")
    extra = dict(options or {})
    if extra:
        from ..backends import register_secrets

        register_secrets(extra, "s3")  # an explicit key is masked wherever a message could show it
    if raw.lower().startswith("s3://"):
        from ..destinations import parse_destination

        dest = parse_destination(raw)
        unknown = sorted(set(dest.options) - set(S3_OPTIONS))
        if unknown:
            raise DestinationError(
                f"option {unknown[0]!r} does not apply to an S3 catalog ({', '.join(S3_OPTIONS)})"
            )
        prefix = dest.key if not dest.key or dest.key.endswith("/") else dest.key + "/"
        shown = f"s3://{dest.bucket}/{prefix}"
        # Inline options win, key by key: ``options`` are defaults (a destination's settings
        # give way to its own ``,opt=`` the same way).
        return CatalogLocation(shown, "s3", dest.bucket, prefix, None, {**extra, **dest.options})
    if "://" in raw and not raw.lower().startswith("file://"):
        raise DestinationError(f"a catalog is s3://BUCKET/PREFIX/ or a folder path, not {raw!r}")
    if extra:
        raise DestinationError(f"a folder catalog takes no options (got {', '.join(sorted(extra))})")
    path = Path(raw[7:] if raw.lower().startswith("file://") else raw).expanduser().absolute()
    return CatalogLocation(str(path), "folder", path=path)
