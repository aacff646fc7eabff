"""What a publish or a fetch returns: plain data, JSON-able, with a notebook card."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import pandas as pd

from .cards import escape as escape  # re-exported: cards once imported it from here
from .sizes import counted, human_size

DEFAULT_NAME = "results"
"""A job's name when nobody gave one and its files suggest none."""


def _version(value: Any) -> int:
    """A record's ``cid_version``; anything but a whole number reads as 0 (how it began)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _mapping(value: Any) -> dict[str, Any]:
    """A recorded dict, or empty for anything else (a hand-edited or older record)."""
    return dict(value) if isinstance(value, dict) else {}


def _count(value: Any) -> int | None:
    """A recorded byte count: a non-negative whole number, or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@dataclass
class FileRecord:
    """One entry of a manifest: a published file, folder or archive."""

    path: str
    size: int
    sha256: str | None
    cid: str | None
    kind: str = "file"
    """``file``, ``dir`` (CID of a folder, no sha256) or ``archive``."""
    location: str | None = None
    url: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileRecord:
        # Every manifest entry is an ``asdict`` of this class; naming each field here makes
        # a renamed field a type error rather than a silent None.
        return cls(
            path=data["path"],
            size=data["size"],
            sha256=data.get("sha256"),
            cid=data.get("cid"),
            kind=data.get("kind", "file"),
            location=data.get("location"),
            url=data.get("url"),
        )


@dataclass(repr=False)
class PublishedResult:
    """One publish: IDs, where it went, and the checksum/CID of everything in it."""

    job_id: str
    execution_id: str
    node_id: str
    type: str
    """Bacalhau's PublishedResult Type (``local``, ``s3``, ``ipfs``, ``urlDownload``)."""
    destination: str
    uri: str
    params: dict[str, Any]
    files: list[FileRecord]
    created_at: str
    name: str = DEFAULT_NAME
    url: str | None = None
    archive: FileRecord | None = None
    root_cid: str | None = None
    cid_version: int = 0
    status: str = "published"
    skipped: list[str] = field(default_factory=list)
    """Unreadable entries left out because the publish was asked to skip them."""
    cid_params: dict[str, Any] = field(default_factory=dict)
    """How every CID here was made, as ``cid_of`` keywords (:func:`.cid.cid_params`):
    ``cid_of(folder, **result.cid_params) == result.root_cid``. Empty: the defaults below."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """What produced the job, captured without the user doing anything (:mod:`.provenance`):
    notebook, cell source and its sha256, magic line, kernel, Python, package versions, git
    commit and dirtiness, host, user, start/end time, duration, status. Never a secret."""
    inputs: list[dict[str, Any]] = field(default_factory=list)
    """What the job used (:mod:`.lineage`): one dict per input, ``{"ref", "kind", "job_id",
    "cid", "via"}`` (``kind``: job, cid or uri; ``via``: fetch, line or source)."""
    sent_bytes: int | None = None
    """Bytes this publish sent over the wire (None: not counted, an older record)."""
    copied_bytes: int | None = None
    """Bytes the store copied server-side instead (``CopyObject`` of an identical object)."""

    def __post_init__(self) -> None:
        if not self.cid_params:  # a result or ledger row from before they were recorded
            from .cid import cid_params

            self.cid_params = cid_params(self.cid_version)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files if f.kind == "file")

    @property
    def pin_note(self) -> str:
        """`` (pinned)`` or `` (not pinned)`` after an IPFS CID, as recorded; nothing when
        the record does not say (results from before it was recorded)."""
        pinned = self.params.get("Pinned")
        return "" if pinned is None else " (pinned)" if pinned else " (not pinned)"

    @property
    def transfer_note(self) -> str:
        """``sent 1.2 KiB, copied 256.0 MiB in the store (identical objects it held)`` when
        something was copied instead of sent; empty otherwise."""
        if not self.copied_bytes:
            return ""
        sent = human_size(self.sent_bytes or 0)
        return f"sent {sent}, copied {human_size(self.copied_bytes)} in the store (identical objects it held)"

    def manifest(self) -> list[dict[str, Any]]:
        # FileRecord holds only plain values: a shallow copy is what asdict makes, 20x faster.
        return [dict(f.__dict__) for f in self.files]

    def to_dict(self) -> dict[str, Any]:
        """Bacalhau-like: ``{"Type", "Params"}`` plus our IDs and the manifest."""
        return {
            "Type": self.type,
            "Params": dict(self.params),
            "job_id": self.job_id,
            "execution_id": self.execution_id,
            "node_id": self.node_id,
            "name": self.name,
            "destination": self.destination,
            "uri": self.uri,
            "url": self.url,
            "created_at": self.created_at,
            "root_cid": self.root_cid,
            "cid_version": self.cid_version,
            "archive": asdict(self.archive) if self.archive else None,
            "manifest": self.manifest(),
            "skipped": list(self.skipped),
            "cid_params": dict(self.cid_params),
            "provenance": dict(self.provenance),
            "inputs": [dict(i) for i in self.inputs],
            "sent_bytes": self.sent_bytes,
            "copied_bytes": self.copied_bytes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PublishedResult:
        from .cid import recorded_params

        archive = data.get("archive")
        return cls(
            job_id=data["job_id"],
            execution_id=data["execution_id"],
            node_id=data.get("node_id", ""),
            type=data["Type"],
            destination=data.get("destination", ""),
            uri=data["uri"],
            params=dict(data.get("Params") or {}),
            files=[FileRecord.from_dict(f) for f in data.get("manifest") or []],
            created_at=data.get("created_at", ""),
            name=data.get("name", DEFAULT_NAME),
            url=data.get("url"),
            archive=FileRecord.from_dict(archive) if archive else None,
            root_cid=data.get("root_cid"),
            cid_version=_version(data.get("cid_version")),
            skipped=[str(s) for s in data.get("skipped") or []],
            cid_params=recorded_params(data.get("cid_params")),
            provenance=_mapping(data.get("provenance")),
            inputs=[dict(i) for i in data.get("inputs") or [] if isinstance(i, dict)],
            sent_bytes=_count(data.get("sent_bytes")),
            copied_bytes=_count(data.get("copied_bytes")),
        )

    def cids(self) -> pd.DataFrame:
        """This result's manifest as a DataFrame (same columns as ``cids()``)."""
        from .tables import cids_frame

        return cids_frame([self.files_row(f) for f in self.all_records()])

    def all_records(self) -> list[FileRecord]:
        return [*self.files, *([self.archive] if self.archive else [])]

    def files_row(self, record: FileRecord) -> dict[str, Any]:
        from .cid import CID_PARAM_KEYS

        how = {key: self.cid_params.get(key) for key in CID_PARAM_KEYS}  # never over the record's own
        return {"job_id": self.job_id, "destination": self.destination, **asdict(record), **how}

    def __str__(self) -> str:
        lines = [
            f"job {self.job_id} -> {self.uri}",
            f"  {counted(sum(f.kind == 'file' for f in self.files), 'file')}, {human_size(self.total_size)}",
        ]
        if self.params.get("CID"):
            lines.append(f"  IPFS CID {self.params['CID']}{self.pin_note}")
        if self.root_cid and self.root_cid != self.params.get("CID"):
            lines.append(f"  content CID {self.root_cid} (the folder, as `jupyter-publish cid` computes it)")
        if self.archive:
            lines.append(f"  archive sha256 {self.archive.sha256}")
        if self.copied_bytes:
            lines.append(f"  {self.transfer_note}")
        if self.url:
            lines.append(f"  {self.url}")
        if self.skipped:
            from .walk import skipped_line

            lines.append(f"  {skipped_line(self.skipped)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        files = counted(sum(f.kind == "file" for f in self.files), "file")
        return f"<PublishedResult {self.job_id} {self.uri} ({files}, content CID {self.root_cid})>"

    def _repr_html_(self) -> str:
        from .cards import result_card

        return result_card(self)


@dataclass
class FetchedFile:
    """One file a fetch wrote, and how it was checked."""

    path: Path
    size: int
    sha256: str
    verified_against: str | None
    """``sha256`` or ``cid`` when checked against a recorded value, None when nothing was recorded."""
    source: str = ""
    cid: str | None = None


@dataclass
class FetchResult:
    """Where fetched content landed, and proof of what it is."""

    ref: str
    dest: Path
    files: list[FetchedFile] = field(default_factory=list)
    extracted_from: str | None = None
    job_id: str | None = None
    checked: bool = True
    """False for ``verify=False`` / ``--no-verify``: then nothing is called verified."""
    dirs: list[Path] = field(default_factory=list)
    """The published folders recreated under ``dest`` (empty ones included)."""

    @property
    def verified(self) -> bool:
        return self.checked and bool(self.files) and all(f.verified_against for f in self.files)

    @property
    def paths(self) -> list[Path]:
        return [f.path for f in self.files]

    def __str__(self) -> str:
        reason = "nothing recorded to check against" if self.checked else "--no-verify"
        state = "verified" if self.verified else f"NOT verified ({reason})"
        return f"fetched {self.ref} -> {self.dest} ({counted(len(self.files), 'file')}, {state})"

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, Any]:
        from .cards import fetch_card

        return fetch_card(self)


FetchRef: TypeAlias = "str | os.PathLike[str] | PublishedResult | dict[str, Any]"
"""What ``fetch`` takes: a URI or job ID, a :class:`PublishedResult`, or a Bacalhau result spec."""
