"""Read CIDs and published-result locations out of Bacalhau job descriptions and free text.

``cids_from_bacalhau`` turns ``bacalhau describe`` (legacy, ≤ v1.3) and
``bacalhau job describe`` (v1.2+) output, JSON or YAML, into one DataFrame row per
execution that published something, whichever publisher it used. It also reads what
users paste besides: API answers (a ``curl`` line above them included), ``bacalhau list``
and ``job get`` output, ``jq`` picks, Python SDK dicts as ``print``/``pprint`` show them,
and ``docker run`` logs with a "Results CID". Executions are selected on a non-empty
published result, never on a state number: the integer for "Completed" changed between
Bacalhau versions. A result without a job ID in its document takes the one from its
legacy name (``job-<ID>-shard-…``), else the one job the pasted text names.

``cids_in_text`` finds every valid CID in logs, ``ipfs add`` output, JSON and URLs.
Candidates come from a regex and are kept only if ``multiformats`` decodes them, so a
base58-looking word is not mistaken for content.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .errors import PublishError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BACALHAU_COLUMNS",
    "CID_COLUMNS",
    "BacalhauDocumentError",
    "checked_spec",
    "cids_from_bacalhau",
    "cids_in_text",
    "published_result_spec",
]


class BacalhauDocumentError(PublishError, ValueError):
    """A Bacalhau document or result spec is malformed: wrong types, too deep, not JSON."""


_SCAN_BUDGET = 2
"""Failed parse attempts may read at most this many times the text: a huge unterminated
document with many brackets must not take quadratic time."""

BACALHAU_COLUMNS = [
    "job_id",
    "execution_id",
    "node_id",
    "type",
    "cid",
    "bucket",
    "key",
    "region",
    "endpoint",
    "url",
    "checksum_sha256",
    "version_id",
    "state",
]
CID_COLUMNS = ["cid", "cid_v1", "version", "codec", "name", "line", "context", "kind"]

# Publisher names as v1 spells them, from either generation's spelling.
_TYPES = {
    "ipfs": "ipfs",
    "s3": "s3",
    "urldownload": "urlDownload",
    "url": "urlDownload",
    "s3managed": "s3managed",
    "local": "local",
    "localdirectory": "local",
    "inline": "inline",
}
# v1 Params key -> our column, for the S3-like publishers.
_S3_PARAMS = {
    "Bucket": "bucket",
    "Key": "key",
    "Region": "region",
    "Endpoint": "endpoint",
    "ChecksumSHA256": "checksum_sha256",
    "VersionID": "version_id",
}


# --------------------------------------------------------------------------- parsing

# Where a JSON object or array can start: ``{`` before a key or ``}``, ``[`` before a value.
_JSON_START = re.compile(r'\{\s*["}]|\[\s*[\[\]{"0-9tfn-]')


def _load_docs(doc: str | bytes | Mapping[str, Any] | list[Any]) -> list[Any]:
    """Accept a dict/list, or text with junk around one or more JSON documents."""
    if isinstance(doc, Mapping):
        return [_normalise(doc)]
    if isinstance(doc, list):  # several documents: parsed ones and text ones alike
        if any(isinstance(item, str | bytes | bytearray) for item in doc):
            return [parsed for item in doc if item is not None for parsed in _load_docs(item)]
        return [_normalise(doc)]
    if not isinstance(doc, str | bytes | bytearray):
        raise BacalhauDocumentError(
            f"expected Bacalhau describe output (JSON text, a dict or a list), not {type(doc).__name__}"
        )
    text = doc.decode("utf-8", errors="replace") if isinstance(doc, bytes | bytearray) else doc
    text = text.lstrip("\ufeff")
    try:
        return [_normalise(json.loads(text))]
    except RecursionError:
        raise _too_deep() from None
    except ValueError:  # JSONDecodeError, or an integer too long to convert
        pass
    python_doc = _load_python(text)  # before YAML: YAML reads a repr's None as the text "None"
    if python_doc is not None:
        return [python_doc]
    yaml_docs = _load_yaml(text)
    if yaml_docs:
        return yaml_docs
    return list(_scan_json(text)) or list(_scan_python(text))


def _load_python(text: str) -> Any | None:
    """The Python SDK and ``requests`` notebooks print dicts with ``print``/``pprint``:
    ``{'results': [{'data': {'cid': …, 'url': None}}]}``. Read such a repr as data
    (``ast.literal_eval`` evaluates literals only), or None if the text is not one."""
    stripped = text.strip()
    if stripped[:1] not in ("{", "[") or len(stripped) > _YAML_LIMIT:
        return None
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return _normalise(value) if isinstance(value, dict | list) else None


_LINE_START_BRACKET = re.compile(r"^[\[{]", re.MULTILINE)


def _scan_python(text: str) -> Iterator[Any]:
    """Yield each printed Python dict/list that starts a line, with other output around it
    (a notebook cell that pprints an answer and then prints more)."""
    if len(text) > _YAML_LIMIT:
        return
    budget = [_PYTHON_SCAN_EVENTS]  # brackets and quotes looked at, over all attempts
    pos = 0
    while (match := _LINE_START_BRACKET.search(text, pos)) is not None and budget[0] > 0:
        end = _bracket_end(text, match.start(), budget)
        found = _load_python(text[match.start() : end]) if end is not None else None
        if found is not None:
            yield found
        pos = end if found is not None and end is not None else match.end()


_PYTHON_SCAN_EVENTS = 300_000
"""A pprinted job is a few thousand brackets and quotes; text with hundreds of thousands of
unclosed ones is not worth more than a fraction of a second."""
_BRACKET_EVENT = re.compile(r"""[\[\]{}()'"\\\n]""")


def _bracket_end(text: str, start: int, budget: list[int]) -> int | None:
    """Where the bracket at ``start`` closes, skipping quoted strings; None if it does not
    before the end or before ``budget[0]`` (decremented here) runs out."""
    depth, quote, escaped = 0, "", False
    for match in _BRACKET_EVENT.finditer(text, start):
        budget[0] -= 1
        if budget[0] < 0:
            return None
        char = match.group()
        if escaped:
            escaped = False
        elif quote:
            if char == "\\":
                escaped = match.end() < len(text) and _BRACKET_EVENT.match(text, match.end()) is not None
            elif char == quote or char == "\n":  # a repr string never spans lines
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
            if depth == 0:
                return match.end()
    return None


_YAML_LIMIT = 1024 * 1024
"""YAML is only tried on text up to this size: describe output is kilobytes, and a
pure-Python YAML parse of a huge hostile text would take minutes."""
_YAML_DEPTH = 200
"""Deeper YAML than this is no job description (and libyaml's composer recurses)."""
_MARKER_NAMES = "Job Executions State JobState Items Results PublishedResult PublishedResults ID JobID \
APIVersion Spec NodeID Data Events JobEvents Shards Nodes Type Params StorageSource CID"
_MARKERS = frozenset(_MARKER_NAMES.split())


def _load_yaml(text: str) -> list[Any]:
    """``bacalhau describe`` prints YAML by default: the documents in ``text``, if it is YAML.

    Only documents that carry a Bacalhau key count, so ``Error: job not found`` (valid YAML)
    is not a job. Anchors/aliases are refused (no alias bombs) and nesting is bounded
    before anything is built. PyYAML is imported only here.
    """
    if len(text) > _YAML_LIMIT or not text.strip():
        return []
    try:
        import yaml
    except ImportError:  # PyYAML is a dependency, but JSON must keep working without it
        return []
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        depth = 0
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise BacalhauDocumentError(
                    "the Bacalhau YAML uses anchors or aliases, which bacalhau never prints"
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > _YAML_DEPTH:
                    raise _too_deep()
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        docs = [doc for doc in yaml.load_all(text, Loader=loader) if doc is not None]
    except RecursionError:
        raise _too_deep() from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError):  # not YAML (or JSON with junk)
        return []
    docs = [_normalise(doc) for doc in docs if isinstance(doc, dict | list)]
    return docs if any(_has_marker(doc) for doc in docs) else []


def _has_marker(doc: Any) -> bool:
    """A Bacalhau key at the top, or a few levels down (the legacy API wraps its answer in
    ``{"jobs": …}``, ``{"state": …}``, ``{"events": …}``). Looks at a bounded number of
    containers, breadth first, so a wide hostile document costs little."""
    level, budget = [doc], 2_000
    for _ in range(4):
        following: list[Any] = []
        for node in level:
            for item in node[:100] if isinstance(node, list) else [node]:
                budget -= 1
                if isinstance(item, dict):
                    if _MARKERS.intersection(item):
                        return True
                    following.extend(v for v in list(item.values())[:100] if isinstance(v, dict | list))
                elif isinstance(item, list):
                    following.append(item)
            if budget <= 0:
                return False
        level = following
    return False


_CANONICAL_NAMES = "PublishedResult PublishedResults StorageSource CID URL S3 Bucket Key Region \
Endpoint ChecksumSHA256 Checksum VersionID Name Type Params JobID ID NodeID ComputeReference State \
Executions Items Results Job Metadata Data Spec Tasks History RunOutput ComputeState StateType \
JobState Nodes Shards SourceNodeID Events JobEvents APIVersion Status"
_CANONICAL = {name.lower(): name for name in _CANONICAL_NAMES.split()}


def _canonical(key: Any) -> Any:
    """``cid``, ``Cid``, ``node_id``, ``published_results`` (the Python SDK) -> our spelling."""
    if not isinstance(key, str):
        return key
    return _CANONICAL.get(key.replace("_", "").replace("-", "").lower(), key)


def _normalise(root: Any) -> Any:
    """A copy of ``root`` with every known key in one spelling; iterative, any depth."""
    if not isinstance(root, dict | list):
        return root
    out: Any = {} if isinstance(root, dict) else []
    stack: list[tuple[Any, Any]] = [(root, out)]
    while stack:
        src, dst = stack.pop()
        pairs = src.items() if isinstance(src, dict) else enumerate(src)
        for key, value in pairs:
            if isinstance(value, dict | list):
                child: Any = {} if isinstance(value, dict) else []
                stack.append((value, child))
                value = child
            if isinstance(dst, dict):
                dst.setdefault(_canonical(key), value)
            else:
                dst.append(value)
    return out


def _too_deep() -> BacalhauDocumentError:
    return BacalhauDocumentError("the Bacalhau document is nested too deeply to be a job description")


def _scan_json(text: str) -> Iterator[Any]:
    """Yield every JSON object/array in ``text``, skipping warnings and log lines between them."""
    decoder = json.JSONDecoder()
    pos = 0
    budget = _SCAN_BUDGET * len(text) + 1_000_000
    while True:
        match = _JSON_START.search(text, pos)
        if match is None:
            return
        try:
            obj, end = _decode_at(decoder, text, match.start())
        except RecursionError:
            raise _too_deep() from None
        except ValueError as exc:  # exc.pos counts from match.start(): the work this attempt did
            budget -= max(getattr(exc, "pos", len(text) - match.start()), 64)
            if budget < 0:
                raise BacalhauDocumentError(
                    "no complete JSON document found in the Bacalhau output (is it cut short?)"
                ) from None
            pos = match.start() + 1
            continue
        if isinstance(obj, dict | list):
            yield _normalise(obj)
        pos = end


_WINDOW = 4096


def _decode_at(decoder: json.JSONDecoder, text: str, start: int) -> tuple[Any, int]:
    """``raw_decode`` of the document at ``start``, tried on a slice first.

    A JSONDecodeError works out its line number by counting newlines from the start of the
    string it was given, so failing on the whole text at every false start (``[2023-…`` log
    lines, ``[{'…`` reprs) would take quadratic time. Only a failure the cut itself may have
    caused (at the slice's end, or an unterminated string) is retried on the rest of the text.
    """
    window = text[start : start + _WINDOW]
    try:
        obj, end = decoder.raw_decode(window)
        return obj, start + end
    except json.JSONDecodeError as exc:
        cut = start + _WINDOW < len(text)
        if not cut or (exc.pos < len(window) - 8 and not exc.msg.startswith("Unterminated string")):
            raise
    obj, end = decoder.raw_decode(text[start:])
    return obj, start + end


def _walk_executions(root: Any, job_id: str | None = None) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Find execution records anywhere in a document, with the job ID of their job.

    Searching everywhere (rather than fixed paths) covers the CLI shapes, the REST API
    shapes, lists of jobs, and single executions alike. The search keeps its own stack
    (document order, depth first): a dict nested 100,000 levels deep is no RecursionError.
    """
    stack: list[tuple[Any, str | None]] = [(root, job_id)]
    while stack:
        node, job_id = stack.pop()
        if isinstance(node, list):
            stack.extend((item, job_id) for item in reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        if _is_result_list(node):  # {"PublishedResults": [spec, …]} with no execution around it
            job_id = _job_id_of(node) or job_id
            results: list[Any] = node["PublishedResults"]
            stack.extend(({"PublishedResults": item}, job_id) for item in reversed(results))
            continue
        if "PublishedResult" in node or "PublishedResults" in node:
            yield node, job_id
            continue
        if isinstance(node.get("Data"), dict) and "StorageSource" in node["Data"]:
            yield {"NodeID": node.get("NodeID"), "PublishedResults": node["Data"]}, job_id  # /results API
            continue
        job_id = _job_id_of(node) or job_id
        children = [
            (value, job_id)
            for key, value in node.items()
            if key not in ("Spec", "Tasks", "History", "RunOutput")  # intentions and events, not results
        ]
        stack.extend(reversed(children))


_EXECUTION_KEYS = ("NodeID", "ComputeReference", "State", "ComputeState", "ShardIndex")


def _is_result_list(node: dict[str, Any]) -> bool:
    """A results answer naming its list ``PublishedResults`` (not an execution's own result)."""
    results = node.get("PublishedResults")
    return isinstance(results, list) and not any(key in node for key in (*_EXECUTION_KEYS, "ID"))


def _job_id_of(node: dict[str, Any]) -> str | None:
    """The job ID a document carries: ``Job.ID``, ``Job.Metadata.ID``, ``State.JobID``, a
    ``JobID`` of its own (legacy JobState, events), or the ``ID``/``Metadata.ID`` of a
    legacy job object (v0.3: ID next to Spec/JobState)."""
    if node.get("JobID") and not isinstance(node.get("JobID"), dict):
        return _text(node["JobID"], "JobID")
    if any(key in node for key in ("Spec", "JobState", "APIVersion", "Deal")):
        meta = node.get("Metadata")
        found = _text(node.get("ID"), "ID") or (
            _text(meta.get("ID"), "Metadata.ID") if isinstance(meta, dict) else None
        )
        if found:
            return found
    job = node.get("Job")
    if isinstance(job, dict):
        meta = job.get("Metadata")
        found = _text(job.get("ID"), "Job.ID") or (
            _text(meta.get("ID"), "Job.Metadata.ID") if isinstance(meta, dict) else None
        )
        if found:
            return found
    state = node.get("State")
    if isinstance(state, dict) and state.get("JobID"):
        return _text(state["JobID"], "State.JobID")
    return None


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_RESULT_NAME = re.compile(rf"^job-((?:j-)?{_UUID})-shard-\d+-host-", re.IGNORECASE)
# A job ID as text names one: a v1 ``j-…`` ID anywhere; a legacy (bare UUID) one after
# "Job ID:", "job '…'", a ``bacalhau get|describe …`` command, ``/jobs/…`` or in a result name.
_V1_JOB_ID = re.compile(rf"(?<![0-9A-Za-z-])(j-{_UUID})(?![0-9A-Za-z-])", re.IGNORECASE)
_NAMED_JOB_ID = re.compile(
    r"(?:job[ _-]?id\s*[:=]\s*[\"']?|job\s+['\"]|/jobs?/|(?<![0-9A-Za-z-])job-"
    r"|bacalhau\s+(?:job\s+)?(?:get|describe|executions|logs|history|stop|cancel)\s+(?:-\S+\s+)*)"
    rf"({_UUID})(?![0-9A-Za-z])",
    re.IGNORECASE,
)
_BARE_UUID = re.compile(rf"(?<![0-9A-Za-z-])({_UUID})(?![0-9A-Za-z-])", re.IGNORECASE)


def _job_id_in_name(spec: Any) -> str | None:
    """Legacy publishers name a result ``job-<job ID>-shard-<n>-host-<node ID>``: the only
    place a ``/results`` answer or a jq-picked shard says which job it belongs to."""
    name = spec.get("Name") if isinstance(spec, Mapping) else None
    match = _RESULT_NAME.match(name) if isinstance(name, str) else None
    return match.group(1) if match else None


def _job_id_in_text(text: str) -> str | None:
    """The one job the text names (CLI output, a ``curl …/jobs/ID/results`` line above an
    answer, a ``bacalhau list`` table), or None if it names none or several. A bare UUID is
    taken unlabelled only when it is the only one in the text."""
    for pattern in (_V1_JOB_ID, _NAMED_JOB_ID, _BARE_UUID):
        found = {match.group(1).lower() for match in pattern.finditer(text)}
        if found:
            return found.pop() if len(found) == 1 else None
    return None


# --------------------------------------------------------------------------- rows


def _text(value: Any, what: str = "a field") -> str | None:
    """A field as text; an object or list where text belongs is a malformed document."""
    if value is None or value == "":
        return None
    if isinstance(value, dict | list | tuple | set | bytes | bytearray):
        raise BacalhauDocumentError(
            f"malformed Bacalhau document: {what} is a {type(value).__name__}, expected text"
        )
    return str(value)


def _norm_type(value: Any) -> str | None:
    text = _text(value, "the publisher Type")
    if text is None:
        return None
    return _TYPES.get(text.replace("_", "").replace("-", "").lower(), text)


def _is_storage_spec(spec: Mapping[str, Any]) -> bool:
    """A legacy ``StorageSpec`` (also found under the singular ``PublishedResult`` of events)."""
    return "Params" not in spec and any(k in spec for k in ("StorageSource", "CID", "S3", "URL", "Name"))


def _legacy_result(spec: Mapping[str, Any]) -> dict[str, str | None] | None:
    """Columns from a legacy ``StorageSpec`` (StorageSource/CID/URL/S3), or None if empty."""
    s3 = spec.get("S3") or {}
    if not isinstance(s3, dict):
        raise BacalhauDocumentError(
            f"malformed Bacalhau document: S3 is a {type(s3).__name__}, expected an object"
        )
    fields = {
        "type": _norm_type(spec.get("StorageSource")),
        "cid": _text(spec.get("CID"), "CID"),
        "url": _text(spec.get("URL") or spec.get("Url"), "URL"),
        "bucket": _text(s3.get("Bucket"), "S3.Bucket"),
        "key": _text(s3.get("Key"), "S3.Key"),
        "region": _text(s3.get("Region"), "S3.Region"),
        "endpoint": _text(s3.get("Endpoint"), "S3.Endpoint"),
        "checksum_sha256": _text(s3.get("ChecksumSHA256") or s3.get("Checksum"), "S3.ChecksumSHA256"),
        "version_id": _text(s3.get("VersionID"), "S3.VersionID"),
    }
    if not any(fields[k] for k in ("cid", "url", "bucket", "key")) and not _text(spec.get("Name"), "Name"):
        return None
    if fields["type"] is None or fields["type"].lower().startswith("storagesource"):
        fields["type"] = "ipfs" if fields["cid"] else "s3" if fields["bucket"] else None
    return fields


def _v1_result(spec: Mapping[str, Any]) -> dict[str, str | None] | None:
    """Columns from a v1 ``{"Type", "Params"}`` published result, or None if empty."""
    params = _params(spec)
    kind = _norm_type(spec.get("Type"))
    if not kind and not params:
        return None
    fields: dict[str, str | None] = {
        "type": kind,
        "cid": _text(params.get("CID"), "Params.CID"),
        "url": _text(params.get("URL"), "Params.URL"),
    }
    for param, column in _S3_PARAMS.items():
        fields[column] = _text(params.get(param), f"Params.{param}")
    return fields


def _params(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 spec's Params: an object, or nothing; a string, list or number is malformed."""
    params = spec.get("Params")
    if params is None or params == "" or params == []:
        return {}
    if not isinstance(params, dict):
        raise BacalhauDocumentError(
            f"malformed Bacalhau published result: Params is a {type(params).__name__}, expected an object"
        )
    return params


def _result_spec(value: Any, key: str) -> dict[str, Any] | None:
    """An execution's published result: an object, or nothing (a failed execution)."""
    if value is None or value == "" or value == {} or value == []:
        return None
    if not isinstance(value, dict):
        raise BacalhauDocumentError(
            f"malformed Bacalhau execution: {key} is a {type(value).__name__}, expected an object"
        )
    return value


def _state_of(execution: Mapping[str, Any]) -> str | None:
    """Legacy State is a name; v1 ComputeState.StateType is a name or a version-dependent int."""
    compute = execution.get("ComputeState")
    if isinstance(compute, dict):
        return _text(compute.get("StateType"), "ComputeState.StateType")
    state = execution.get("State")
    return None if isinstance(state, dict) else _text(state, "State")


def _row(execution: dict[str, Any], job_id: str | None) -> dict[str, str | None] | None:
    if "PublishedResult" in execution:
        spec = _result_spec(execution.get("PublishedResult"), "PublishedResult")
        parse = _legacy_result if spec is not None and _is_storage_spec(spec) else _v1_result
        fields = parse(spec) if spec is not None else None
        exec_id = execution.get("ID")
    else:
        spec = _result_spec(execution.get("PublishedResults"), "PublishedResults")
        parse = (
            _v1_result
            if spec is not None and not _is_storage_spec(spec) and "Type" in spec
            else _legacy_result
        )
        fields = parse(spec) if spec is not None else None
        exec_id = execution.get("ComputeReference") or execution.get("ID")
    if fields is None:
        return None
    row = dict.fromkeys(BACALHAU_COLUMNS)
    row.update(fields)
    row["job_id"] = _text(execution.get("JobID"), "JobID") or job_id or _job_id_in_name(spec)
    row["execution_id"] = _text(exec_id, "the execution ID")
    row["node_id"] = _text(execution.get("NodeID") or execution.get("SourceNodeID"), "NodeID")
    row["state"] = _state_of(execution)
    return row


def _frame(rows: list[dict[str, Any]], columns: list[str], ints: tuple[str, ...] = ()) -> pd.DataFrame:
    """Build a DataFrame with "string" dtype for text (missing = <NA>) and Int64 for counts."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=columns)
    dtypes = {c: ("Int64" if c in ints else "string") for c in columns}
    return df.astype(dtypes)


def cids_from_bacalhau(doc: str | bytes | Mapping[str, Any] | list[Any]) -> pd.DataFrame:
    """One row per execution with a non-empty published result, from any Bacalhau describe output.

    ``doc`` is the JSON, YAML or Python-repr text (leading warnings tolerated, several
    documents allowed), CLI output naming a result CID, or the parsed dict/list. Columns:
    job_id, execution_id, node_id, type, cid, bucket, key, region, endpoint, url,
    checksum_sha256, version_id, state.
    """
    docs = _load_docs(doc)
    text = doc.decode("utf-8", errors="replace") if isinstance(doc, bytes | bytearray) else doc
    if not docs:
        return _frame(_named_job(_rows_from_text(doc), text), BACALHAU_COLUMNS)
    if isinstance(text, str) and not any(_has_marker(d) for d in docs):
        try:  # e.g. `jq` output with `[]` in the command line: the CIDs, if any
            return _frame(_named_job(_rows_from_text(doc), text), BACALHAU_COLUMNS)
        except BacalhauDocumentError:
            pass
    rows = []
    for parsed in docs:
        executions = list(_walk_executions(parsed))
        found = [] if executions else _results_items(parsed)  # results answers have no executions
        for execution, job_id in executions:
            row = _row(execution, job_id)
            if row is not None:
                found.append(row)
        rows.extend(_dedupe(found))
    return _frame(_named_job(rows, text), BACALHAU_COLUMNS)


def _named_job(rows: list[dict[str, Any]], text: Any) -> list[dict[str, Any]]:
    """Rows the documents left without a job ID take the one job the pasted text names
    ("Job ID: …", ``bacalhau get …``, the ``curl …/jobs/ID/results`` line above an answer)."""
    if not isinstance(text, str) or all(row["job_id"] for row in rows):
        return rows
    job_id = _job_id_in_text(text)
    for row in rows:
        row["job_id"] = row["job_id"] or job_id
    return rows


_IDENTITY = ("job_id", "node_id", "execution_id", "type", "cid", "bucket", "key", "url", "version_id")


def _dedupe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A legacy document repeats a shard's result in its ``ResultsPublished`` event: one row
    per result within a document, the first, with gaps filled from the repeats."""
    kept: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        first = kept.setdefault(tuple(row[c] for c in _IDENTITY), row)
        for column, value in row.items():
            if first[column] is None:
                first[column] = value
    return list(kept.values())


def _rows_from_text(doc: Any) -> list[dict[str, Any]]:
    """No document in the text: its content CIDs (peer IDs left out), else one clear line."""
    raw = doc.decode("utf-8", errors="replace") if isinstance(doc, bytes | bytearray) else doc
    found = cids_in_text(raw) if isinstance(raw, str) else None
    if found is None or not (found["kind"] == "content").any():
        job_id = _job_id_in_text(raw) if isinstance(raw, str) else None
        if job_id:  # `bacalhau job run` output: the job, but not where its results went
            raise BacalhauDocumentError(
                f"no JSON or YAML Bacalhau document and no CID found in the text, only job {job_id}: "
                f"paste `bacalhau job describe {job_id} --output json` (v1) or "
                f"`bacalhau describe {job_id}` (v0.x) output"
            )
        raise BacalhauDocumentError(
            "no JSON or YAML Bacalhau document and no CID found in the text: "
            "paste `bacalhau describe` / `bacalhau job describe` output"
        )
    cids = dict.fromkeys(found.loc[found["kind"] == "content", "cid"])
    return [{**dict.fromkeys(BACALHAU_COLUMNS), "type": "ipfs", "cid": cid} for cid in cids]


def _results_items(doc: Any) -> list[dict[str, Any]]:
    """Results answers: ``{"Items" | "Results": [spec, …]}`` (v1 ``{"Type", "Params"}`` or legacy
    ``StorageSpec`` items), or the bare ``[spec, …]`` that ``bacalhau job get`` prints when it
    has no downloader for the publisher."""
    items: Any
    if isinstance(doc, list):
        items, doc = doc, {}
    elif isinstance(doc, dict):
        items = doc.get("Items") if isinstance(doc.get("Items"), list) else doc.get("Results")
    else:
        return []
    rows = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or "ID" in item:
            continue
        if _is_storage_spec(item):
            fields = _legacy_result(item)
        elif "Type" in item:
            fields = _v1_result(item)
        else:
            continue
        if fields is not None:
            job_id = _job_id_of(doc) or _job_id_in_name(item)
            rows.append({**dict.fromkeys(BACALHAU_COLUMNS), **fields, "job_id": job_id})
    return rows


# --------------------------------------------------------------------------- spec for fetch


def published_result_spec(row_or_dict: Any) -> dict[str, Any]:
    """The v1 ``{"Type": …, "Params": {…}}`` spec for fetching one published result.

    Accepts a row of :func:`cids_from_bacalhau` (Series or dict), a v1 spec (returned
    as is, copied), a v1 or legacy execution, or a legacy ``StorageSpec``.
    """
    data = row_or_dict.to_dict() if hasattr(row_or_dict, "to_dict") else row_or_dict
    if not isinstance(data, Mapping):
        raise BacalhauDocumentError(
            f"not a Bacalhau published result: a {type(data).__name__}, expected an object or a cids row"
        )
    data = dict(data)
    if "Type" in data and "Params" in data:
        params = _params(data)
        kind = _text(data["Type"], "Type")
        for name, value in params.items():
            _text(value, f"Params.{name}")
        return {"Type": kind, "Params": dict(params)}
    for key, parse in (("PublishedResult", _v1_result), ("PublishedResults", _legacy_result)):
        if key in data:  # an execution: its result, if it published one
            spec = _result_spec(data[key], key)
            if spec is None or parse(spec) is None:
                raise BacalhauDocumentError("this execution published nothing (it may have failed)")
            return published_result_spec(spec)
    if "StorageSource" in data or "S3" in data or "CID" in data:
        fields = _legacy_result(data)
        if fields is None:
            raise ValueError("the legacy published result is empty")
        return _spec_from_columns({**fields, "job_id": None, "execution_id": None})
    if "type" in data:
        return _spec_from_columns(data)
    raise ValueError("not a Bacalhau published result: expected Type/Params, StorageSource or a cids row")


def _present(value: Any) -> bool:
    """Not None, NaN, pd.NA or empty: rows from a DataFrame carry all of these."""
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return False
    return str(value) != ""


def _spec_from_columns(row: Mapping[str, Any]) -> dict[str, Any]:
    """Our columns back into Bacalhau's Params names, dropping empty values."""
    kind = _norm_type(row.get("type")) if _present(row.get("type")) else None
    params: dict[str, Any] = {}
    if kind == "ipfs" or (kind is None and _present(row.get("cid"))):
        params["CID"] = row.get("cid")
        kind = kind or "ipfs"
    elif kind in ("s3", "s3managed") or _present(row.get("bucket")):
        params = {p: row.get(c) for p, c in _S3_PARAMS.items() if _present(row.get(c))}
        if kind == "s3managed":
            params.update({"JobID": row.get("job_id"), "ExecutionID": row.get("execution_id")})
        kind = kind or "s3"
    if _present(row.get("url")):
        params["URL"] = row.get("url")
    params = {k: str(v) for k, v in params.items() if _present(v)}
    if kind is None:
        raise ValueError("the row names no publisher type, CID, bucket or URL")
    return {"Type": kind, "Params": params}


_SPEC_FIELDS = ("Type", "StorageSource", "CID", "Bucket", "Key", "Endpoint", "Region", "URL", "JobID")


def checked_spec(spec: Any) -> dict[str, Any]:
    """A published-result spec given to ``fetch``, checked for the types it is read with.

    ``fetch({"Type": "ipfs", "Params": "Qm…"})`` and the like are one line, not an
    AttributeError deep in the fetcher. Returns ``spec`` as a dict (itself when it is one).
    """
    if not isinstance(spec, Mapping):
        raise BacalhauDocumentError(f"a published-result spec is an object, not a {type(spec).__name__}")
    params = _params(spec) or spec
    for where, fields in (("", spec), ("Params.", params)):
        for name in _SPEC_FIELDS:
            _text(fields.get(name), where + name)
    return spec if isinstance(spec, dict) else dict(spec)


# --------------------------------------------------------------------------- CIDs in text

_B58 = "1-9A-HJ-NP-Za-km-z"
_CANDIDATE = re.compile(
    rf"(?<![0-9A-Za-z])("
    rf"Qm[{_B58}]{{44}}"  # CIDv0: base58btc sha2-256 multihash
    r"|b[a-z2-7]{58,}"  # CIDv1 base32 (what gateways and Kubo print)
    r"|B[A-Z2-7]{58,}"  # CIDv1 base32 upper
    rf"|z[{_B58}]{{46,}}"  # CIDv1 base58btc (js-ipfs default)
    r"|k[0-9a-z]{48,}"  # CIDv1 base36 (IPNS keys, subdomain gateways)
    r"|f01[0-9a-f]{64,}"  # CIDv1 base16
    r")(?![0-9A-Za-z])"
)
_ADDED = re.compile(r"^\s*added\s+(\S+)\s+(.+?)\s*$")
_PATH_AFTER = re.compile(r"""^(/[^\s"'<>()\[\]{}|\\^`]*)""")
_URL_PREFIX = re.compile(r"(?:/ipfs/|ipfs://)$")
_SUBDOMAIN = re.compile(r"^\.ipfs\.[A-Za-z0-9.-]+(?::\d+)?")


@functools.lru_cache(maxsize=1 << 16)
def _cid_facts(token: str) -> tuple[str, int, str] | None:
    """(CIDv1 in base32, version, codec name) of a CID string, or None if it is not one.

    A pasted log names the same CIDs again and again, and multiformats' checked decode
    costs ~0.5 ms a token: the canonical ``Qm…``/``b…`` forms take the binary fast path
    of :func:`.cid._cid_raw` (which only accepts strings that re-encode to themselves),
    everything else multiformats, and every answer is cached per distinct token.
    """
    from .cid import _cid_raw, _cid_str
    from .errors import DestinationError

    if not (token.startswith("Qm") and len(token) == 46) and not token.startswith("b"):
        return _slow_cid_facts(token)  # no fast path for it: decode it once, with multiformats
    try:
        raw = _cid_raw(token)
    except (DestinationError, ValueError):
        return None
    if len(raw) == 34 and raw[:2] == b"\x12\x20":  # CIDv0: a bare sha2-256 multihash, dag-pb
        return _cid_str(b"\x01\x70" + raw), 0, "dag-pb"
    if len(raw) == 36 and raw[:1] == b"\x01" and raw[1] < 0x80 and raw[2:4] == b"\x12\x20":
        codec = _codec_name(raw[1])
        if codec is not None:
            return _cid_str(raw), 1, codec
    return _slow_cid_facts(token)


@functools.lru_cache(maxsize=64)
def _codec_name(code: int) -> str | None:
    """The codec's name; None for a code no codec has (then the token is no CID we name)."""
    from multiformats import multicodec

    try:
        return str(multicodec.get(code=code).name)
    except KeyError:  # MulticodecKeyError: a token in pasted text that only looks like a CID
        return None


def _slow_cid_facts(token: str) -> tuple[str, int, str] | None:
    from multiformats import CID

    try:
        cid = CID.decode(token)
    except Exception:  # multiformats raises several unrelated types for invalid input
        return None
    v1 = cid.set(version=1, base="base32") if cid.version == 0 else cid.set(base="base32")
    return str(v1), int(cid.version), str(cid.codec.name)


def _url_name(line: str, start: int, end: int) -> str | None:
    """The path after a CID in a gateway, ``ipfs://`` or subdomain URL, if there is one."""
    before, after = line[:start], line[end:]
    if _URL_PREFIX.search(before):
        rest = after
    else:
        sub = _SUBDOMAIN.match(after)
        if sub is None or not before.endswith("//"):
            return None
        rest = after[sub.end() :]
    match = _PATH_AFTER.match(rest)
    if match is None:
        return None
    path = unquote(match.group(1).split("?")[0].split("#")[0]).strip("/").rstrip(".,;:")
    return path or None


def _json_line_name(line: str, token: str) -> str | None:
    """``ipfs add --enc=json`` prints ``{"Name": …, "Hash": …}`` one per line."""
    stripped = line.strip()
    if not (stripped.startswith("{") and len(stripped) < 10_000):
        return None
    try:
        obj = json.loads(stripped)
    except (ValueError, RecursionError):  # not JSON, or nested thousands deep
        return None
    if not isinstance(obj, dict):
        return None
    linked = obj.get("Hash") or obj.get("Cid") or obj.get("CID")
    if isinstance(linked, dict):
        linked = linked.get("/")
    name = obj.get("Name")
    return str(name) if linked == token and isinstance(name, str) and name else None


# A peer ID where the text says so: after a NodeID/RequesterNodeID/PeerID-like key, in
# ``host-Qm…`` (legacy result names) or a ``/p2p/`` multiaddr.
_PEER_BEFORE = re.compile(
    r"""(?:(?:requester|source|target|compute)?[_-]?node[_-]?id|peer[_-]?id|peer|node)"""
    r"""["']?\s*[:=]\s*["']?$|host-$|/p2p/$""",
    re.IGNORECASE,
)


def _kind(segment: str, start: int) -> str:
    """Kind "peer" when the text names the token a node/peer ID, else "content"."""
    return "peer" if _PEER_BEFORE.search(segment[max(0, start - 40) : start]) else "content"


def _name_for(segment: str, start: int, end: int, token: str) -> str | None:
    added = _ADDED.match(segment)
    if added and added.group(1) == token:
        return added.group(2)
    return _url_name(segment, start, end) or _json_line_name(segment, token)


def cids_in_text(text: str) -> pd.DataFrame:
    """Every valid CID in ``text`` (logs, ``ipfs add`` output, JSON, URLs), deduplicated.

    Columns: cid (as written), cid_v1 (base32), version, codec, name (from ``added CID
    NAME`` lines, JSON ``Name`` or the URL path), line (1-based), context (the line, ≤200
    chars), kind ("peer" for a node/peer ID the text names as such — ``NodeID: Qm…``,
    ``host-Qm…``, ``/p2p/Qm…`` — else "content"). Duplicates of (cid, name) keep their
    first occurrence.
    """
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None]] = set()
    # Split on \n only: splitlines() would also split on the \r of progress bars and
    # make line numbers disagree with an editor's. Each \r redraw is its own segment.
    for number, line in enumerate(text.split("\n"), start=1):
        for segment in line.split("\r"):
            for match in _CANDIDATE.finditer(segment):
                token = match.group(1)
                facts = _cid_facts(token)
                if facts is None:
                    continue
                cid_v1, version, codec = facts
                name = _name_for(segment, match.start(1), match.end(1), token)
                if (token, name) in seen:
                    continue
                seen.add((token, name))
                rows.append(
                    {
                        "cid": token,
                        "cid_v1": cid_v1,
                        "version": version,
                        "codec": codec,
                        "name": name,
                        "line": number,
                        "context": line.strip()[:200],
                        "kind": _kind(segment, match.start(1)),
                    }
                )
    return _frame(rows, CID_COLUMNS, ints=("version", "line"))
