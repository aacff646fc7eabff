"""Hostile Bacalhau JSON: one line (a PublishError), never RecursionError/TypeError/AttributeError."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import jupyter_publish as jp
from jupyter_publish.bacalhau import (
    BacalhauDocumentError,
    cids_from_bacalhau,
    cids_in_text,
    published_result_spec,
)
from jupyter_publish.errors import PublishError

CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def v1(result: Any) -> dict[str, Any]:
    return {
        "Job": {"ID": "j-1"},
        "Executions": {"Items": [{"ID": "e-1", "NodeID": "n", "PublishedResult": result}]},
    }


def legacy(results: Any) -> dict[str, Any]:
    return {
        "Job": {"Metadata": {"ID": "j-1"}},
        "State": {"Executions": [{"NodeId": "n", "PublishedResults": results}]},
    }


def deep_dict(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    for _ in range(levels):
        node = {"a": node}
    return node


# id -> (document, "error" (one line) or the number of rows it must give)
HOSTILE: dict[str, tuple[Any, Any]] = {
    "deep-brackets": ("[" * 100_000, "error"),
    "deep-braces": ("{" * 100_000, "error"),
    "deep-valid-objects": ('{"a":' * 100_000 + "1" + "}" * 100_000, "error"),
    "deep-after-junk": ("WARN: x\n" + '[{"a":' * 50_000, "error"),
    "deep-parsed-dict": (deep_dict(100_000), 0),
    "params-string": (v1({"Type": "ipfs", "Params": CID}), "error"),
    "params-list": (v1({"Type": "ipfs", "Params": [CID]}), "error"),
    "params-number": (v1({"Type": "ipfs", "Params": 42}), "error"),
    "params-null": (v1({"Type": "ipfs", "Params": None}), 1),
    "type-missing": (v1({"Params": {"CID": CID}}), 1),
    "type-object": (v1({"Type": {"x": 1}, "Params": {"CID": CID}}), "error"),
    "cid-list": (v1({"Type": "ipfs", "Params": {"CID": [CID]}}), "error"),
    "result-list": (v1([{"Type": "ipfs"}]), "error"),
    "result-string": (v1("ipfs"), "error"),
    "items-object": ({"Executions": {"Items": {"x": {"ID": "e", "PublishedResult": {"Type": "s3"}}}}}, 1),
    "items-scalars": ({"Executions": {"Items": [1, "two", None, True]}}, 0),
    "job-id-list": ({"Job": {"ID": ["j"]}, "Executions": {"Items": []}}, "error"),
    "legacy-s3-string": (legacy({"StorageSource": "s3", "S3": "bucket/key"}), "error"),
    "legacy-results-list": (legacy([{"CID": CID}]), "error"),
    "legacy-name-object": (legacy({"Name": {"n": 1}}), "error"),
    "non-utf8": (b"\xff\xfe\x80 no json \xc3\x28", "error"),
    "non-utf8-inside-json": (
        b'{"Executions":{"Items":[{"ID":"e\xff","PublishedResult":{"Type":"url","Params":{"URL":"x"}}}]}}',
        1,
    ),
    "number": (12345, "error"),
    "none": (None, "error"),
    "bare-string-json": ('"just a string"', 0),
    "huge-int": ("[" + "9" * 100_000 + "]", "error"),
    "unterminated-huge": (("[" + "1," * 20_000) * 200, "error"),
    # Every "[2023-" is a JSON false start: each failure must not cost a pass over the text.
    "log-timestamps-then-json": (
        "[2023-01-01T00:00:00] INFO x\n" * 20_000 + json.dumps(v1({"Type": "ipfs", "Params": {"CID": CID}})),
        1,
    ),
    "repr-brackets-never-closed": ("{'a': [\n" * 100_000, "error"),
    "repr-line-start-braces": ("{\n" * 300_000, "error"),
    "repr-set-value": ("{'Executions': {1, 2}}", 0),
    "repr-after-print": (
        "Execution ID: e-1\n{'Items': [{'ID': 'e-1', 'PublishedResult': {'Type': ''}}]}\n",
        0,
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bacalhau_documents(case: str) -> None:
    doc, expected = HOSTILE[case]
    started = time.monotonic()
    if expected == "error":
        with pytest.raises(BacalhauDocumentError) as info:
            cids_from_bacalhau(doc)
        message = str(info.value)
        assert isinstance(info.value, PublishError) and message and "\n" not in message and len(message) < 300
    else:
        assert len(cids_from_bacalhau(doc)) == expected
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "spec",
    [
        "Qm…",
        ["Type", "ipfs"],
        42,
        {"Type": "ipfs", "Params": CID},
        {"Type": "ipfs", "Params": [CID]},
        {"Type": ["s3"], "Params": {"Bucket": "b"}},
        {"Type": "s3", "Params": {"Bucket": {"b": 1}, "Key": "k"}},
        {"PublishedResult": "ipfs"},
        {"PublishedResults": [CID]},
    ],
    ids=lambda s: json.dumps(s)[:40],
)
def test_hostile_specs_for_published_result_spec_and_fetch(spec: Any, tmp_path) -> None:
    with pytest.raises(BacalhauDocumentError) as info:
        published_result_spec(spec)
    assert "\n" not in str(info.value)
    if isinstance(spec, dict) and ("Params" in spec or "Type" in spec):
        with pytest.raises(PublishError) as fetched:
            jp.fetch(spec, tmp_path / "out")
        assert "\n" not in str(fetched.value)
        assert not (tmp_path / "out").exists()


def test_cids_in_text_survives_deeply_nested_json_lines() -> None:
    line = '{"Name": "x", "Hash": "' + CID + '", "z": ' + "[" * 9_000 + "}"
    found = cids_in_text(f"added {CID} ok\n{line}\n")
    assert list(found["cid"]) == [CID, CID] or list(found["cid"]) == [CID]


def test_cids_cell_magic_with_hostile_text() -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "jupyter_publish")
    try:
        cell = f"%%cids\n{CID}\n" + '{"Hash": "' + CID + '", "a": ' + "[" * 9_000 + "\n" + "\xff\ufffd" * 1000
        with capture_output() as io:
            result = shell.run_cell(cell)
        assert result.error_in_exec is None and result.error_before_exec is None, io.stderr
        assert "Traceback" not in io.stdout + io.stderr
        assert list(result.result["cid"]) == [CID]
    finally:
        shell.run_line_magic("unload_ext", "jupyter_publish")
