"""A job as an RO-Crate: the metadata Zenodo, WorkflowHub and other registries read.

``export(job, ro_crate=DIR)`` writes ``DIR/ro-crate-metadata.json`` (RO-Crate 1.1,
following the Process Run Crate 0.5 profile) describing one job: every file, folder and
archive with its sha256, CID, size, media type and where it is stored, and how it was
made as a ``CreateAction`` (who ran it, with which notebook, Python and packages, from
which inputs, when, and whether it succeeded). The files themselves stay where they were
published: the crate is the citable record, not a second copy of the data.

Identifiers are absolute URIs (RO-Crate's web-based data entities): a file's is its
recorded location (``s3://bucket/key``, ``ipfs://CID/path``, ``local://JOB/path``,
``…/results.tar.gz#member`` inside an archive). A file's CID is its ``identifier`` as an
``ipfs://`` URI: any IPFS node holding the content serves exactly these bytes.

The crate is built with the maintained ``rocrate`` package (ro-crate-py) and nothing
is fetched: its data entities are added without ``fetch_remote``/``validate_url``, and
the JSON is written by us (atomically, every string scrubbed of secrets). Presigned
links are never exported: they expire, and their signature is a bearer token; the link
is kept without its query when that leaves no secret.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import DestinationError
from .redact import public_url, scrub
from .results import FileRecord, PublishedResult

if TYPE_CHECKING:
    from .ledger import Ledger

RO_CRATE_VERSION = "1.1"
RO_CRATE_SPEC = "https://w3id.org/ro/crate/1.1"
PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
METADATA_FILE = "ro-crate-metadata.json"
CRATE_FILES = frozenset({METADATA_FILE, "ro-crate-preview.html"})
"""What a previous export left in a folder: such a folder may be exported over."""
EXTRA_TERMS = {"sha256": "http://schema.org/sha256"}
"""schema.org's ``sha256`` (newer than the RO-Crate 1.1 context, which lacks it)."""
HOMEPAGE = "https://github.com/jupyter-publish/jupyter-publish"
LICENSE_ENV = "JUPYTER_PUBLISH_LICENSE"
NO_LICENSE = "#no-license-stated"
COMPLETED = "http://schema.org/CompletedActionStatus"
FAILED = "http://schema.org/FailedActionStatus"

_ARCHIVE_TYPES = {".tar.gz": "application/gzip", ".tgz": "application/gzip", ".tar.zst": "application/zstd"}
_MIME = mimetypes.MimeTypes()
"""Python's built-in table only (not the host's /etc/mime.types): the same crate on every machine."""


def export(
    job: str | PublishedResult | Mapping[str, Any],
    *,
    ro_crate: str | os.PathLike[str],
    license: str | None = None,
    ledger: Ledger | None = None,
) -> Path:
    """Write an RO-Crate describing ``job`` (an ID, a unique prefix, or a result) to the
    folder ``ro_crate``; returns the path of its ``ro-crate-metadata.json``.

    ``license``: an SPDX identifier (``CC-BY-4.0``) or a URL (default: the job's recorded
    license, else ``$JUPYTER_PUBLISH_LICENSE``); without one the crate says that none was
    stated (RO-Crate 1.1 requires the property; a license is the author's to choose, never
    guessed). The folder may be new,
    empty, or hold only a previous crate (which is replaced); anything else is refused.
    """
    result = _result(job, ledger)
    target = Path(ro_crate).expanduser()
    _check_target(target)  # before any work: a wrong folder is a one-line refusal
    document = crate_metadata(result, license=license)
    return _write(target, document)


def crate_metadata(result: PublishedResult, *, license: str | None = None) -> dict[str, Any]:
    """The RO-Crate JSON-LD document of ``result``, every string scrubbed of secrets."""
    from rocrate.rocrate import ROCrate

    crate = ROCrate(version=RO_CRATE_VERSION)
    crate.metadata.extra_terms = dict(EXTRA_TERMS)
    _CrateBuilder(crate, result, license).build()
    document: dict[str, Any] = _compacted(crate.metadata.generate())
    return _scrubbed(document)


def _result(job: str | PublishedResult | Mapping[str, Any], ledger: Ledger | None) -> PublishedResult:
    if isinstance(job, PublishedResult):
        return job
    if isinstance(job, Mapping):
        return PublishedResult.from_dict(dict(job))
    from .ledger import Ledger

    return (ledger or Ledger()).result(str(job))


class _CrateBuilder:
    """Adds the entities of one job to a fresh ``ROCrate``."""

    def __init__(self, crate: Any, result: PublishedResult, license: str | None) -> None:
        self.crate = crate
        self.result = result
        self.prov: dict[str, Any] = dict(result.provenance)
        self.license = license or _text(self.prov.get("license")) or os.environ.get(LICENSE_ENV, "").strip()
        self.parts: list[str] = []
        self.agent: str | None = None
        self.file_counts: dict[str, int] = {}

    def build(self) -> None:
        self._data_entities()
        action = self._action()
        self._root(action)

    # -- data entities -----------------------------------------------------------------

    def _data_entities(self) -> None:
        result = self.result
        base = _base(result)
        archive_id = None
        if result.archive is not None:
            archive_id = self._file(result.archive, _entity_id(result.archive, None, result))
        dirs: dict[str, list[str]] = {}
        dir_records = [r for r in result.files if r.kind == "dir"]
        known_dirs = {_dir_key(r.path) for r in dir_records}
        for record in result.files:
            if record.kind == "dir":
                continue
            entity_id = self._file(record, _entity_id(record, base, result))
            parent = _parent(record.path, known_dirs)
            dirs.setdefault(parent, []).append(entity_id)
            if record.kind == "file":
                self._count_in(parent, known_dirs)
        deepest_first = sorted(
            dir_records, key=lambda r: _dir_key(r.path).count("/") + 1 if _dir_key(r.path) else 0
        )
        for record in reversed(deepest_first):
            key = _dir_key(record.path)
            entity_id = _dir_id(key, base, result)
            if key:
                dirs.setdefault(_parent(record.path, known_dirs), []).append(entity_id)
            self._dataset(record, entity_id, dirs.get(key, []), archive_id if not key else None)

    def _count_in(self, folder: str, known: set[str]) -> None:
        """One more file in ``folder`` and in every recorded folder above it."""
        while True:
            self.file_counts[folder] = self.file_counts.get(folder, 0) + 1
            if not folder:
                return
            folder = _parent(folder, known)

    def _file(self, record: FileRecord, entity_id: str) -> str:
        properties: dict[str, Any] = {
            "name": PurePosixPath(record.path).name or record.path,
            "alternateName": record.path,
            "contentSize": str(record.size),
            "encodingFormat": _media_type(record.path),
            "sdDatePublished": self.result.created_at,
        }
        if record.kind == "archive":
            properties["description"] = (
                f"The archive of every file below, as published (job {self.result.job_id})"
            )
        elif self.result.archive is not None:
            properties["description"] = f"{record.path} inside the archive {self.result.archive.path}"
        if record.sha256:
            properties["sha256"] = record.sha256
        if record.cid:
            properties["identifier"] = f"ipfs://{record.cid}"
        self._where(properties, record, entity_id)
        entity = self.crate.add_file(
            source=entity_id, fetch_remote=False, validate_url=False, properties=properties
        )
        entity_id = str(entity.id)
        self.parts.append(entity_id)
        return entity_id

    def _dataset(
        self, record: FileRecord, entity_id: str, children: list[str], archive_id: str | None
    ) -> None:
        top = not _dir_key(record.path)
        files = self.file_counts.get(_dir_key(record.path), 0)
        properties: dict[str, Any] = {
            "name": self.result.name if top else PurePosixPath(record.path).name,
            "alternateName": "." if top else record.path,
            "description": f"{_count(files, 'file')}, {_count(record.size, 'byte')}"
            + (", the published folder" if top else ""),
        }
        if children:
            properties["hasPart"] = [{"@id": child} for child in sorted(children)]
        if record.cid:
            properties["identifier"] = f"ipfs://{record.cid}"
        if archive_id is not None:
            properties["distribution"] = {"@id": archive_id}
        self._where(properties, record, entity_id)
        entity = self.crate.add_dataset(
            source=entity_id, fetch_remote=False, validate_url=False, properties=properties
        )
        self.parts.append(str(entity.id))

    def _where(self, properties: dict[str, Any], record: FileRecord, entity_id: str) -> None:
        """``contentUrl``: where jupyter-publish recorded it (fetchable with ``fetch``; the
        location as a URI, which is the entity's ID); ``url``: its download link, when it
        has one that is no secret."""
        if record.location:
            properties["contentUrl"] = entity_id
        link = _public_link(record.url)
        if link:
            properties["url"] = link

    # -- provenance --------------------------------------------------------------------

    def _action(self) -> str:
        result, prov = self.result, self.prov
        action_id = f"#publish-{result.job_id}"
        status = _text(prov.get("status")) or result.status
        properties: dict[str, Any] = {
            "name": f"Publish {result.name} (jupyter-publish job {result.job_id})",
            "description": _text(prov.get("magic_line"))
            or f"jupyter-publish publish to {result.destination}",
            "endTime": _timestamp(_text(prov.get("finished_at")) or result.created_at),
            # A string, as the Process Run Crate examples and its validator have it.
            "actionStatus": FAILED if status == "failed" else COMPLETED,
        }
        if prov.get("started_at"):
            properties["startTime"] = _timestamp(_text(prov["started_at"]))
        if status == "failed" and prov.get("error"):
            properties["error"] = _text(prov["error"])
        self.agent = self._agent()
        if self.agent:
            properties["agent"] = {"@id": self.agent}
        inputs = self._inputs()
        instrument = [{"@id": self._tool()}]
        notebook = self._notebook()
        if notebook:
            instrument.append({"@id": notebook})
        self.crate.add_action(
            instrument=instrument,
            identifier=action_id,
            object=[{"@id": i} for i in inputs],
            result=[{"@id": p} for p in self.parts],
            properties=properties,
        )
        return action_id

    def _agent(self) -> str | None:
        user = _text(self.prov.get("user"))
        if not user:
            return None
        host = _text(self.prov.get("host"))
        person_id = f"#person-{quote(user, safe='')}"
        properties: dict[str, Any] = {"name": user}
        if host:
            properties["description"] = f"the account {user} on {host}"
        self._add(person_id, "Person", properties)
        return person_id

    def _tool(self) -> str:
        tool = _text(self.prov.get("tool"))
        properties: dict[str, Any] = {
            "name": "jupyter-publish",
            "url": HOMEPAGE,
            "description": "Published the files, recording the sha256 and CID of each",
        }
        version = tool.rpartition(" ")[2] if tool else ""
        if version and version != tool:
            properties["softwareVersion"] = version
        return self._add(HOMEPAGE, "SoftwareApplication", properties)

    def _notebook(self) -> str | None:
        """The notebook (or Python session) that made the files, with what it ran on."""
        prov = self.prov
        requirements = self._requirements()
        path = _text(prov.get("notebook"))
        git: dict[str, Any] = _mapping(prov.get("git"))
        has_cell = bool(prov.get("cell_source") or prov.get("cell_sha256"))
        if not (path or git or has_cell or requirements):
            return None
        properties: dict[str, Any] = {
            "name": PurePosixPath(path.replace("\\", "/")).name if path else "Python session",
        }
        if path:
            properties["alternateName"] = path
        if git.get("commit"):
            properties["version"] = _text(git["commit"]) + ("-dirty" if git.get("dirty") else "")
            branch = f" on branch {_text(git['branch'])}" if git.get("branch") else ""
            dirty = " with uncommitted changes" if git.get("dirty") else ""
            properties["description"] = f"git commit {_text(git['commit'])}{branch}{dirty}"
        remote = _public_link(_text(git.get("remote"))) if git.get("remote") else None
        if remote:
            properties["codeRepository"] = properties["url"] = remote
        if requirements:
            properties["softwareRequirements"] = [{"@id": r} for r in requirements]
        if has_cell:
            cell: dict[str, Any] = {"name": "The %%publish cell", "isPartOf": {"@id": "#notebook"}}
            if prov.get("cell_source"):
                cell["text"] = _text(prov["cell_source"])
            if prov.get("cell_sha256"):
                cell["sha256"] = _text(prov["cell_sha256"])
            self._add("#cell", "SoftwareSourceCode", cell)
            properties["hasPart"] = {"@id": "#cell"}
        self._add("#notebook", ["SoftwareSourceCode", "SoftwareApplication"], properties)
        return "#notebook"

    def _requirements(self) -> list[str]:
        prov, found = self.prov, []
        if prov.get("python"):
            python = {
                "name": "Python",
                "url": "https://www.python.org/",
                "softwareVersion": _text(prov["python"]),
            }
            found.append(self._add("https://www.python.org/", "SoftwareApplication", python))
        if prov.get("kernel"):
            kernel = _text(prov["kernel"])
            name, _, version = kernel.partition(" ")
            properties = {"name": name, **({"softwareVersion": version} if version else {})}
            found.append(self._add("#kernel", "SoftwareApplication", properties))
        packages = _mapping(prov.get("packages"))
        for name, version in sorted(packages.items()):
            page = f"https://pypi.org/project/{quote(_text(name), safe='')}/"
            properties = {"name": _text(name), "url": page, "softwareVersion": _text(version)}
            found.append(self._add(page, "SoftwareApplication", properties))
        return found

    def _inputs(self) -> list[str]:
        ids: list[str] = []
        for n, item in enumerate(self.result.inputs, 1):
            entity_id, properties = _input_entity(item, n)
            if entity_id not in ids:
                ids.append(self._add(entity_id, "CreativeWork", properties))
        return ids

    # -- the root ----------------------------------------------------------------------

    def _root(self, action_id: str) -> None:
        result, root = self.result, self.crate.root_dataset
        root["name"] = f"{result.name} (jupyter-publish job {result.job_id})"
        root["description"] = _description(result, self.prov)
        root["datePublished"] = result.created_at
        root["identifier"] = result.job_id
        root["conformsTo"] = {"@id": PROCESS_RUN_CRATE}
        root["hasPart"] = [{"@id": p} for p in self.parts]
        root["mentions"] = {"@id": action_id}
        if self.agent:  # who ran it: the one name the record has (an account, not an ORCID)
            root["author"] = {"@id": self.agent}
        self._add(PROCESS_RUN_CRATE, "CreativeWork", {"name": "Process Run Crate", "version": "0.5"})
        root["license"] = {"@id": self._license(self.license) if self.license else self._no_license()}

    def _no_license(self) -> str:
        description = (
            "No license was stated for these results: ask the author before reusing them. "
            "`jupyter-publish export JOB --ro-crate DIR --license SPDX-ID` states one."
        )
        return self._add(
            NO_LICENSE, "CreativeWork", {"name": "No license stated", "description": description}
        )

    def _license(self, text: str) -> str:
        if "://" in text:
            self._add(text, "CreativeWork", {"name": text, "url": text})
            return text
        license_id = f"https://spdx.org/licenses/{quote(text, safe='.-+')}"
        self._add(license_id, "CreativeWork", {"name": text, "identifier": text})
        return license_id

    def _add(self, entity_id: str, kind: str | list[str], properties: dict[str, Any]) -> str:
        if self.crate.get(entity_id) is None:
            self.crate.add_jsonld({"@id": entity_id, "@type": kind, **properties})
        return entity_id


def _description(result: PublishedResult, prov: Mapping[str, Any]) -> str:
    from .sizes import human_size

    files = sum(f.kind == "file" for f in result.files)
    where = _public_link(result.uri) or result.uri
    text = (
        f"{_count(files, 'file')} ({human_size(result.total_size)}) published with jupyter-publish"
        f" to {where} "
        f"on {result.created_at}, job {result.job_id}."
    )
    if prov.get("notebook"):
        text += f" Made by the notebook {_text(prov['notebook'])}."
    params = result.cid_params
    if params:
        how = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in params.items())
        text += f" Each CID is the one `ipfs add` makes with {how}."
    if result.skipped:
        text += f" {len(result.skipped)} unreadable entries were left out."
    return text


def _input_entity(item: Mapping[str, Any], n: int) -> tuple[str, dict[str, Any]]:
    """A used job, CID or URI as a contextual entity (it is not part of this crate)."""
    kind, ref = _text(item.get("kind")), _text(item.get("ref"))
    job_id, cid = _text(item.get("job_id")), _text(item.get("cid"))
    shown = _public_link(ref) or ("" if "://" in ref else scrub(ref))
    properties: dict[str, Any] = {"name": shown or f"input {n}"}
    if item.get("via"):
        properties["description"] = f"used via {_text(item['via'])}"
    if kind == "job" and job_id:
        entity_id = f"#job-{quote(job_id, safe='')}"
        properties["identifier"] = job_id
    elif cid:
        entity_id = f"ipfs://{cid}"
        properties["identifier"] = entity_id
    elif "://" in ref and shown:
        entity_id = _iri(shown)
        properties["url"] = entity_id
    else:
        entity_id = f"#input-{n}"
    if job_id and "identifier" not in properties:
        properties["identifier"] = job_id
    return entity_id, properties


# -- identifiers ---------------------------------------------------------------------------

_UNSAFE = re.compile(r"[\x00-\x20\"<>\\^`{|}\x7f]|%(?![0-9A-Fa-f]{2})")


def _iri(text: str) -> str:
    """``text`` as a valid IRI: spaces, quotes and other characters an IRI cannot hold
    (and a ``%`` that starts no escape) percent-encoded; letters of any script kept."""
    return _UNSAFE.sub(lambda m: quote(m.group(0), safe=""), text)


def _path_part(path: str) -> str:
    """A published path as the path of a URI: also ``%``, ``#`` and ``?`` escaped."""
    return _iri(path.replace("%", "%25").replace("#", "%23").replace("?", "%3F"))


def _base(result: PublishedResult) -> str | None:
    """The URI that a published path is relative to: the archive (``…tar.gz#``) or the
    prefix the files went under (from a file whose location ends with its path)."""
    if result.archive is not None and result.archive.location:
        return _iri(result.archive.location) + "#"
    for record in result.files:
        location = record.location
        if record.kind == "file" and location and location.endswith("/" + record.path):
            return _iri(location[: -len(record.path)])
    return None


def _entity_id(record: FileRecord, base: str | None, result: PublishedResult) -> str:
    if record.kind != "archive" and base is not None:
        return base + _path_part(record.path)
    if record.location:
        return _iri(record.location)
    return _fallback_base(result) + _path_part(record.path)


def _dir_id(key: str, base: str | None, result: PublishedResult) -> str:
    root = base if base is not None else _fallback_base(result)
    if not key:
        return root + "./" if root.endswith("#") else root
    return root + _path_part(key) + "/"


def _fallback_base(result: PublishedResult) -> str:
    """A record without a location (an older or hand-made one): under the job's URI."""
    uri = _iri(result.uri or f"local://{result.job_id}/")
    return uri if uri.endswith("/") else uri + "#"


def _dir_key(path: str) -> str:
    return "" if path in ("", ".", "./") else path.strip("/")


def _parent(path: str, known: set[str]) -> str:
    """The nearest recorded folder above ``path`` (``""``: the published folder)."""
    parent = path.strip("/").rpartition("/")[0]
    while parent and parent not in known:
        parent = parent.rpartition("/")[0]
    return parent


def _media_type(path: str) -> str:
    lowered = path.lower()
    for suffix, kind in _ARCHIVE_TYPES.items():
        if lowered.endswith(suffix):
            return kind
    guessed, encoding = _MIME.guess_type(PurePosixPath(path).name, strict=False)
    if encoding == "gzip":
        return "application/gzip"
    return guessed or "application/octet-stream"


def _public_link(url: str | None) -> str | None:
    """A link with nothing secret in it (:func:`redact.public_url`), as an IRI; None when
    no such form is left."""
    if not url:
        return None
    public = public_url(url)
    return _iri(public) if public else None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _timestamp(text: str) -> str:
    """ISO 8601 with ``+00:00`` for ``Z``: the form the Process Run Crate validator expects."""
    return text[:-1] + "+00:00" if text.endswith("Z") else text


def _compacted(value: Any) -> Any:
    """A one-item list of references becomes its item, as RO-Crate 1.1 recommends."""
    if isinstance(value, list):
        if len(value) == 1 and isinstance(value[0], dict):
            return _compacted(value[0])
        return [_compacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _compacted(v) for k, v in value.items()}
    return value


def _scrubbed(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every secret scrubbed (one a server echoed into a record, a
    token typed into a magic line): the crate is for sharing. The text is scrubbed in
    one pass (one property per line, so no match spans two values); should a mask ever
    break the JSON, each string is scrubbed on its own instead."""
    text = json.dumps(document, indent=2, ensure_ascii=False)
    cleaned = scrub(text)
    if cleaned == text:
        return document
    try:
        parsed: dict[str, Any] = json.loads(cleaned)
    except ValueError:
        parsed = _each_scrubbed(document)
    return parsed


def _each_scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [_each_scrubbed(v) for v in value]
    if isinstance(value, dict):
        return {k: _each_scrubbed(v) for k, v in value.items()}
    return value


# -- writing -------------------------------------------------------------------------------


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise DestinationError(f"{target} is a file: give a folder for the RO-Crate")
    if target.is_dir():
        names = {p.name for p in target.iterdir()}
        if names and (METADATA_FILE not in names or not names <= CRATE_FILES):
            raise DestinationError(
                f"{target} is not empty and holds more than an RO-Crate: give a new or empty folder"
            )


def _write(target: Path, document: dict[str, Any]) -> Path:
    """``document`` as ``target/ro-crate-metadata.json``, all or nothing: a new folder is
    made under a temporary name and renamed; in an existing one the file is replaced."""
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if target.is_dir():
        _replace_file(target / METADATA_FILE, text)
        with contextlib.suppress(FileNotFoundError):
            (target / "ro-crate-preview.html").unlink()  # it described the crate replaced
        return target / METADATA_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_name(target.parent, target.name)
    staging.mkdir()  # modes as the umask says (mkdtemp's are 0700; reading the umask sets it)
    try:
        (staging / METADATA_FILE).write_text(text, encoding="utf-8")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target / METADATA_FILE


def _replace_file(path: Path, text: str) -> None:
    temp = _new_name(path.parent, path.name)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # the umask applies
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _new_name(folder: Path, name: str) -> Path:
    """A name no one else uses in ``folder``, for something written then renamed to ``name``."""
    return folder / f".{name}.{secrets.token_hex(8)}.partial"


def check_crate(document: Mapping[str, Any]) -> list[str]:
    """The RO-Crate 1.1 requirements ``document`` breaks (empty: none). Used by the tests
    and by anyone who wants to check a crate without a validator installed."""
    problems: list[str] = []
    context = document.get("@context")
    contexts = context if isinstance(context, list) else [context]
    if f"{RO_CRATE_SPEC}/context" not in contexts:
        problems.append(f"@context does not reference {RO_CRATE_SPEC}/context")
    graph = document.get("@graph")
    if not isinstance(graph, list):
        return [*problems, "no @graph list"]
    entities: dict[str, Mapping[str, Any]] = {}
    for entity in graph:
        entity_id = entity.get("@id") if isinstance(entity, Mapping) else None
        if not isinstance(entity_id, str):
            problems.append(f"an entity without an @id: {entity!r:.80}")
        elif entity_id in entities:
            problems.append(f"@id {entity_id} is defined twice")
        elif "@type" not in entity:
            problems.append(f"{entity_id} has no @type")
        else:
            entities[entity_id] = entity
    descriptor = entities.get(METADATA_FILE)
    if descriptor is None:
        return [*problems, f"no {METADATA_FILE} descriptor"]
    if "CreativeWork" not in _types(descriptor):
        problems.append("the descriptor is not a CreativeWork")
    if _ref(descriptor.get("conformsTo")) != RO_CRATE_SPEC:
        problems.append(f"the descriptor does not conform to {RO_CRATE_SPEC}")
    root_id = _ref(descriptor.get("about"))
    root = entities.get(root_id or "")
    if root is None or root_id != "./":
        return [*problems, "the descriptor is not about ./ or ./ is missing"]
    if "Dataset" not in _types(root):
        problems.append("the root is not a Dataset")
    for name in ("name", "description", "datePublished"):
        if not isinstance(root.get(name), str) or not root[name]:
            problems.append(f"the root has no {name}")
    if isinstance(root.get("datePublished"), str) and not _ISO_8601.match(root["datePublished"]):
        problems.append(f"datePublished {root['datePublished']!r} is not ISO 8601")
    license_ref = _ref(root.get("license"))
    if license_ref is None and not (isinstance(root.get("license"), str) and root["license"]):
        problems.append("the root has no license")
    elif license_ref is not None and license_ref not in entities and not _is_absolute(license_ref):
        problems.append(f"the license {license_ref} is not described in the crate")
    for part in _refs(root.get("hasPart")):
        if part not in entities:
            problems.append(f"hasPart {part} is not in @graph")
        elif not {"File", "Dataset"} & _types(entities[part]):
            problems.append(f"data entity {part} is neither a File nor a Dataset")
        elif "Dataset" in _types(entities[part]) and not part.endswith("/"):
            problems.append(f"folder {part} does not end with /")
    for entity_id, entity in entities.items():
        if not _is_uri_reference(entity_id):
            problems.append(f"@id {entity_id!r} is not a URI reference")
        for key, value in entity.items():
            for ref in _refs(value):
                if ref not in entities and not _is_absolute(ref):
                    problems.append(f"{entity_id} {key} refers to {ref}, which is not described")
    return problems


_ISO_8601 = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?)?$")


def _types(entity: Mapping[str, Any]) -> set[str]:
    kind = entity.get("@type")
    return set(kind) if isinstance(kind, list) else {str(kind)}


def _ref(value: Any) -> str | None:
    refs = _refs(value)
    return refs[0] if len(refs) == 1 else None


def _refs(value: Any) -> list[str]:
    items: Iterable[Any] = value if isinstance(value, list) else [value]
    return [i["@id"] for i in items if isinstance(i, Mapping) and isinstance(i.get("@id"), str)]


def _is_absolute(ref: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", ref))


def _is_uri_reference(ref: str) -> bool:
    return bool(ref) and _UNSAFE.search(ref) is None
