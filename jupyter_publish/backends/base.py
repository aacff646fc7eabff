"""The small, per-object protocol every storage backend speaks.

A backend only moves bytes, one object at a time. Hashing, CIDs, the manifest, the
ledger, concurrency, verification and progress all live in the core
(:mod:`jupyter_publish.transfer` schedules many objects at once), so a new backend is one
short module:

* :meth:`ObjectBackend.put` stores one :class:`Upload`, reading it once to its end (the
  reader hashes as it goes) and parallelising *inside* a large object if the store can
  (multipart parts); :meth:`ObjectBackend.outcome` then describes the whole publish.
* :meth:`ObjectBackend.list` expands a reference into objects; :meth:`ObjectBackend.read`
  streams one object's bytes, or one byte range of it (resumable, parallel ranged reads).

A store that must receive a whole publish in one request (IPFS ``add`` builds one folder)
implements :class:`BatchBackend` instead.

Everything the rest of the package knows about a scheme, the backend class declares
itself by deriving from :class:`BackendBase` (class attributes and classmethods: its
schemes, the Bacalhau result ``Type`` it produces, its options, how it parses its
destination text, how a destination and a job configure an instance, how a recorded
result becomes fetch options, its own check after a publish). The publisher, the
fetcher, the magics, the widgets, the command line and the cards ask the registry
(:mod:`jupyter_publish.backends`), so a new backend is one file plus one
:func:`~jupyter_publish.backends.register_backend` line.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from typing_extensions import Self

    from ..results import PublishedResult

ProgressCallback = Callable[[int], None]
"""Called with a number of bytes just transferred (from any thread)."""


@dataclass
class Upload:
    """One object to store: ``name`` is its path relative to the destination key/prefix.

    ``open()`` returns a fresh binary reader; the core wraps it so that reading it to the
    end also computes the object's sha256 and CID. A backend must read it exactly once,
    sequentially, to EOF (retries of a part must come from the backend's own buffer).
    """

    name: str
    size: int | None
    """None for a stream whose length is known only at its end (an archive being made)."""
    open: Callable[[], BinaryIO]
    content_type: str = "application/octet-stream"
    sha256: str | None = None
    """Known up front only when the bytes were hashed before the upload, else None."""
    path: Path | None = None
    """The regular file behind ``open()``, if any. A backend may re-read byte ranges of it
    to send (S3 parts, so as not to hold them in memory) after reading them through
    ``open()``, provided the store checks each range against the checksum of the bytes
    read (S3's ChecksumSHA256) and the file's size and mtime are unchanged at the end."""
    remake: Callable[[], BinaryIO] | None = None
    """For a stream (no ``path``): a fresh, unhashed reader of the same bytes from byte 0
    (the archive made again: it is deterministic), so that a retry can send the bytes
    already sent again; they are checked against the sha256 of what was sent."""


@dataclass
class StoredObject:
    """Where one uploaded object ended up, plus anything the store told us about it."""

    name: str
    location: str
    """A reference that ``read``/``fetch`` accept, e.g. ``s3://bucket/key``."""
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Store-specific facts: VersionID, ChecksumSHA256, CID, ETag…"""


@dataclass
class StoreOutcome:
    """What a backend reports after a successful publish."""

    type: str
    """Bacalhau's PublishedResult Type: ``local``, ``s3``, ``ipfs``, ``urlDownload``."""
    params: dict[str, Any]
    """Bacalhau-like Params (Bucket, Key, Endpoint, Region, CID, URL…)."""
    uri: str
    """One reference that fetches the whole result back."""
    objects: list[StoredObject]
    url: str | None = None
    """A link a person can open (presigned URL, gateway URL, download URL)."""


@dataclass
class RemoteObject:
    """One object found behind a reference, ready to be read."""

    name: str
    """Path relative to what was asked for (used to lay files out under ``dest``)."""
    location: str
    size: int | None = None
    sha256: str | None = None
    """A checksum the store itself vouches for (our metadata, a manifest), if any."""
    cid: str | None = None
    ranged: bool = False
    """The store serves byte ranges of it, so the core may read parts in parallel."""
    is_dir: bool = False
    """A folder of the published tree (no bytes to read): a fetch recreates it, empty or not."""


class _Reading(Protocol):
    scheme: ClassVar[str]

    def list(self, ref: str) -> list[RemoteObject]:
        """Expand ``ref`` (an object, a prefix, a glob, a directory CID) into objects."""
        ...

    def read(self, location: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream the bytes of one object from ``offset`` (``length`` bytes, or to its end)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class ObjectBackend(_Reading, Protocol):
    """A store that takes objects one at a time; the core puts many at once."""

    def put(self, upload: Upload, progress: ProgressCallback | None = None) -> StoredObject:
        """Store one upload (thread-safe: called from several workers at once)."""
        ...

    def outcome(self, objects: Sequence[StoredObject]) -> StoreOutcome:
        """Describe the publish once every object is stored (may write an index)."""
        ...


@runtime_checkable
class BatchBackend(_Reading, Protocol):
    """A store that must receive a whole publish in one request (IPFS ``add``)."""

    def publish(self, uploads: Sequence[Upload], progress: ProgressCallback | None = None) -> StoreOutcome:
        """Store every upload in one go; raise PublishError on failure."""
        ...


Backend = ObjectBackend | BatchBackend
"""Either kind, as the registry hands them out."""


@runtime_checkable
class ManifestSidecar(Protocol):
    """An optional extra: a store that keeps a plain publish's manifest beside its objects
    (S3), so a fetch by URI finds the checksums; the publisher hands it the result."""

    sidecar_manifest: ClassVar[bool]

    def write_manifest(self, manifest: dict[str, Any]) -> StoredObject:
        """Store ``manifest`` (a :meth:`PublishedResult.to_dict`) beside the objects."""
        ...


@dataclass(frozen=True)
class CopyProof:
    """What the core proved about local bytes before asking a store to copy an object it
    already holds instead of receiving them again (:class:`CopiesExisting`)."""

    size: int
    sha256: str
    """The sha256 of the local bytes, hashed through the core's :class:`~jupyter_publish.
    hashing.ContentHasher`: equal to the candidate's recorded sha256, or no copy is asked."""
    facts: Mapping[str, Any] = field(default_factory=dict)
    """What the store's own :meth:`CopiesExisting.copy_prover` computed from the same bytes
    (S3: the multipart checksums the store would report for them)."""
    metadata: bool = True
    """Whether a sha256 the object's metadata claims may stand in for the store's own
    checksum: only for an object this ledger recorded storing (metadata is anyone's to write)."""


class CopyProver(Protocol):
    """Fed the same bytes as the core's hasher, in order; :meth:`facts` once at their end."""

    def update(self, data: bytes | bytearray | memoryview) -> None: ...

    def facts(self) -> dict[str, Any]: ...


@runtime_checkable
class CopiesExisting(Protocol):
    """An optional extra: a store that makes a server-side copy of an object it already
    holds (S3 ``CopyObject``) instead of receiving the same bytes again.

    The core finds candidates (its ledger says where identical bytes were published), proves
    the local bytes' sha256 equal to a candidate's, and then asks :meth:`copy_existing`,
    which must confirm that the stored object still holds those bytes before copying. A
    refused copy returns None: the core uploads instead.
    """

    def copy_scope(self) -> tuple[str, dict[str, Any]]:
        """Where a candidate must be for this store to copy it: a location prefix
        (``s3://BUCKET/``) and the Params a recorded result must have (its ``Endpoint``)."""
        ...

    def copy_prover(self, size: int | None) -> CopyProver:
        """A fresh prover for one object's bytes (fed alongside the core's hasher);
        ``size`` is None for a stream (an archive being made)."""
        ...

    def copy_existing(self, upload: Upload, source: str, proof: CopyProof) -> StoredObject | None:
        """Store ``upload`` as a copy of the object at ``source`` if that object provably
        holds ``proof``'s bytes; None (nothing stored) when it does not, is gone, or the
        copy is refused. Thread-safe, like ``put``."""
        ...


# -- what a backend class declares -----------------------------------------------------

OPTION_ALIASES = {"endpoint_url": "endpoint", "region_name": "region"}
"""boto3's spellings, accepted for the short option names."""


@dataclass(frozen=True)
class Destination:
    """A parsed destination: which backend, where inside it, and backend options.

    Made by the owning backend's :meth:`BackendBase.parse_destination`; ``key`` and
    ``url`` are templates whose placeholders the publisher resolves per job.
    """

    scheme: str
    """The owning backend's scheme, e.g. ``local``, ``s3``, ``ipfs``, ``http``."""
    text: str
    """The destination as the user wrote it, minus ``,opt=`` options."""
    bucket: str = ""
    """A container inside the store (an S3 bucket), if it has one."""
    key: str = ""
    """Key template inside the store (placeholders unresolved)."""
    url: str = ""
    """Base URL template, for a backend addressed by URL (placeholders unresolved)."""
    options: Mapping[str, Any] = field(default_factory=dict)

    def with_options(self, **options: Any) -> Destination:
        """A copy with extra options; explicit ``None`` values are dropped."""
        merged = dict(self.options)
        merged.update({OPTION_ALIASES.get(k, k): v for k, v in options.items() if v is not None})
        return Destination(self.scheme, self.text, self.bucket, self.key, self.url, merged)

    def __repr__(self) -> str:
        """Scrubbed: the value of a secret option (registered with the scrubber when the
        destination was parsed or checked) is never shown, e.g. in a traceback."""
        from ..redact import scrub

        return scrub(
            f"Destination(scheme={self.scheme!r}, text={self.text!r}, bucket={self.bucket!r}, "
            f"key={self.key!r}, url={self.url!r}, options={dict(self.options)!r})"
        )


@dataclass(frozen=True)
class BackendOption:
    """One option a backend takes, from which every front door's flags, settings,
    panel fields, help and option checks are made."""

    name: str
    """The keyword of ``publish``/``fetch``, ``--NAME`` in the magics and the CLI."""
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    """Allowed values (compared in upper case), if the set is closed."""
    publish: bool = True
    """Taken by a publish (checked: another backend's option is refused)."""
    fetch: bool = True
    """Taken by a fetch (others are dropped: a job ID's scheme is not known up front)."""
    flag: bool = True
    """Offered as ``--NAME`` by the magics and (unless ``secret``) the command line."""
    secret: bool = False
    """Never recorded for resume, never a command-line flag (``ps`` shows those)."""
    setting: str | None = None
    """Help of a ``PublishMagics.NAME`` setting used for this backend's destinations, or None."""
    field: str | None = None
    """Label of a field in the publish panel, or None."""
    placeholder: str = ""
    """The panel field's placeholder text."""


@dataclass(frozen=True)
class PublishTarget:
    """What the publisher tells :meth:`BackendBase.from_destination` about one publish."""

    job_id: str
    archive: bool
    archive_name: str
    """The archive's default file name (``LABEL.tar.gz``)."""
    cid_version: int
    pin: bool
    max_concurrency: int
    dirs: tuple[str, ...]
    """Every folder of the published tree (a store that keeps folders needs the empty ones)."""
    file_count: int
    """How many objects this publish sends (1 for an archive)."""
    resolve: Callable[[str], str]
    """Fills this job's placeholders (``{jobID}``, ``{date}``…) into a template."""
    object_key: Callable[[str], str]
    """A resolved key -> the key Bacalhau would write (archive name, ``.tar.gz``, ``/``)."""


class BackendBase:
    """The class-level half of a backend: what the rest of the package asks its class.

    Subclasses set the class attributes and override the classmethods they need; the
    defaults suit a store addressed as ``SCHEME://KEY`` that takes no options. The
    per-object half is :class:`ObjectBackend` or :class:`BatchBackend` (instances).
    A registered class that does not derive from this one gets these defaults.
    """

    scheme: ClassVar[str]
    """Its scheme: ``SCHEME://…`` references and destinations are this backend's."""
    schemes: ClassVar[tuple[str, ...]] = ()
    """Every scheme it serves (default: ``(scheme,)``), e.g. ``http`` and ``https``."""
    result_type: ClassVar[str] = ""
    """Bacalhau's PublishedResult ``Type`` it produces (``s3``, ``ipfs``, ``urlDownload``…);
    default: the scheme."""
    spec_types: ClassVar[tuple[str, ...]] = ()
    """``Type`` spellings in Bacalhau specs it reads, lower case without ``_``/``-``
    (default: ``result_type`` so normalised)."""
    label: ClassVar[str] = ""
    """What cards and messages call it (``S3``); default: the scheme."""
    example: ClassVar[str] = ""
    """A destination as help texts show it (``s3://BUCKET/KEY``); default ``SCHEME://…``."""
    fetch_example: ClassVar[str] = ""
    """A reference as help texts show it (``ipfs://CID[/path]``); default: ``example``."""
    start: ClassVar[str] = ""
    """What a destination picker offers to start from (``s3://``); default ``SCHEME://``."""
    options: ClassVar[tuple[BackendOption, ...]] = ()
    resumable: ClassVar[bool] = False
    """An interrupted publish can be continued (``resume``)."""
    content_addressed: ClassVar[bool] = False
    """Locations name content (CIDs): a fetch checks each file's recorded CID too."""
    spec_checksum: ClassVar[bool] = False
    """Its Bacalhau specs carry a ``ChecksumSHA256`` a fetch must match."""
    credentials: ClassVar[str | None] = None
    """Title of the publish panel's key/secret boxes when they go to this backend."""

    def __init__(self, **options: Any) -> None:
        """Backends take their options (and ``max_concurrency``) as keywords."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        scheme = getattr(cls, "scheme", "")
        if not scheme:
            return
        # Defaults that follow from the scheme; each class sets its own, never inherits.
        own = vars(cls)
        if "schemes" not in own:
            cls.schemes = (scheme,)
        if not own.get("result_type"):
            cls.result_type = scheme
        if not own.get("spec_types"):
            cls.spec_types = (cls.result_type.replace("_", "").replace("-", "").lower(),)
        if not own.get("label"):
            cls.label = scheme
        if not own.get("example"):
            cls.example = f"{scheme}://…"
        if not own.get("fetch_example"):
            cls.fetch_example = cls.example
        if not own.get("start"):
            cls.start = f"{scheme}://"

    # -- options ---------------------------------------------------------------------
    @classmethod
    def option_names(cls, use: str) -> builtins.list[str]:
        """The options it takes for ``use``: ``"publish"`` or ``"fetch"``."""
        return [o.name for o in cls.options if getattr(o, use)]

    # -- publishing -----------------------------------------------------------------
    @classmethod
    def parse_destination(cls, text: str) -> Destination | None:
        """``text`` (its ``,opt=`` options already split off) as a :class:`Destination`.

        None when the text is not this backend's; DestinationError, in one line saying
        what to write, when it is but cannot be published to. Default: ``SCHEME://KEY``.
        """
        scheme, sep, rest = text.partition("://")
        if not sep or scheme.lower() not in cls.schemes:
            return None
        return Destination(cls.scheme, text, key=rest)

    @classmethod
    def from_destination(cls, dest: Destination, target: PublishTarget) -> tuple[Self, str]:
        """An instance configured for one publish, and the archive's file name.

        Default: ``cls(key=RESOLVED_KEY, max_concurrency=N, **options)``.
        """
        key = target.object_key(target.resolve(dest.key))
        name = key.rsplit("/", 1)[-1] if target.archive else target.archive_name
        return cls(key=key, max_concurrency=target.max_concurrency, **dest.options), name

    @classmethod
    def check_outcome(cls, outcome: StoreOutcome, sent_root: Callable[[], str]) -> None:
        """Its own check once a publish is stored; ``sent_root()`` is the CID of the
        folder the core sent (computed on demand). Raise IntegrityError on a mismatch."""

    # -- fetching -------------------------------------------------------------------
    @classmethod
    def fetch_options(cls, result: PublishedResult) -> dict[str, Any]:
        """Options a fetch of a recorded result takes from it (the endpoint, the node it
        went to…); what the caller passes wins."""
        return {}

    @classmethod
    def for_reading(
        cls, ref: str, options: Mapping[str, Any], recorded_destination: Callable[[], str | None]
    ) -> Self:
        """An instance that lists and reads ``ref`` (a URI, or the job ID of a recorded
        result), given the caller's options. ``recorded_destination()`` is the
        destination of the job that published ``ref``, if the ledger knows it.

        Default: ``cls(max_concurrency=N, **fetch options given)``.
        """
        taken = {k: v for k, v in options.items() if k in cls.option_names("fetch") and v is not None}
        return cls(max_concurrency=options.get("max_concurrency", 10), **taken)

    @classmethod
    def spec_uri(cls, fields: Mapping[str, str], options: dict[str, Any]) -> str | None:
        """A Bacalhau published-result spec of this type as a URI (None: too little to
        fetch). ``fields`` are its fields, keys lower case without ``_``/``-``, Params
        merged; options it carries (an endpoint) may be set in ``options``."""
        return None

    @classmethod
    def uri_cid(cls, uri: str) -> str | None:
        """The CID a result URI names, for a content-addressed store; else None."""
        return None

    @classmethod
    def typed_credentials(cls, key_id: str, secret: str) -> dict[str, str | None]:
        """The publish panel's key/secret boxes as options for this one publish."""
        return {}

    # -- the reading half of the per-object protocol (every backend implements it) -----
    def list(self, ref: str) -> builtins.list[RemoteObject]:
        """Expand ``ref`` into objects (see :class:`ObjectBackend`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list {ref!r}")

    def read(self, location: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream one object's bytes (see :class:`ObjectBackend`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot read {location!r}")

    def close(self) -> None:
        """Release connections (nothing to release by default)."""
