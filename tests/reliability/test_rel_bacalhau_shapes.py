"""Every Bacalhau output shape (v0.3 … v1.x, JSON and YAML, CLI, API and SDK) gives the
results and job IDs a careful reader would extract; peer IDs are marked, not listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_publish.bacalhau import BacalhauDocumentError, cids_from_bacalhau, cids_in_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bacalhau"
J_V1 = "j-46a509f4-5f1f-42ab-8b39-ea9e2e5f3a1c"
NODE_A = "QmYgxZiySj3MRkwLSL4X2MF5F9f2PMhAE3LV49XkfNL1o3"
NODE_C = "QmXaXu9N5GNetatsvwnTfQqNtSeKAD6uCmarbh3LMRYAcF"
HELLO = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
MIB = "Qmf5BJUJ129GdC2TuaEXvBV3q5cJ4oD7gBnUD64EcTJW4y"

# file -> the rows a careful reader extracts, as (job_id, node_id, type, cid or bucket/key or url, version_id)
EXPECTED = {
    "docs_s3_result.json": [
        (
            None,
            "QmYJ9QN9Pbi6gBKNrXVk5J36KSDGL5eUT6LMLF5t7zyaA7",
            "s3",
            "<bucket>/run3.tar.gz",
            "hZoNdqJsZxE_bFm3UGJuJ0RqkITe9dQ1",
        ),
    ],
    "docs_noaa_jq.txt": [(None, None, "ipfs", "QmYFhG668yJZmtk84SMMdbrz5Uvuh78Q8nLxTgLDWShkhR", None)],
    "docs_v1_published_result.yaml": [
        (None, None, "s3", "my-task-results/task123/result.tar.gz", "3/L4kqtJlcpXroDTDmJ+rmDbwQaHWyOb..."),
    ],
    "v1_job_describe.yaml": [(J_V1, NODE_A, "ipfs", MIB, None)],
    "v1_executions.json": [
        (J_V1, NODE_A, "s3", "results/j-46a509f4/result.tar.gz", "3HL4kqtJlcpXroDTDmJ-rmDbwQaHWyOb"),
        (J_V1, NODE_C, "local", "http://10.0.0.7:6001/e-77aa0c1d.tgz", None),
    ],
    "v1_results_published_results.json": [
        (J_V1, None, "ipfs", "bafybeifsyv5ykyj2c3sb4lnaravxx6tzmpc6wuv3g3p5xqoh5rhlhshcc4", None),
    ],
    "legacy_describe_v0_3.yaml": [("92d5d4ee-3765-4f78-8353-623f5f26df08", NODE_A, "ipfs", HELLO, None)],
    "legacy_events.json": [("5c2a1d3e-9b8f-4c7d-a6e5-4f3b2a1c0d9e", NODE_C, "ipfs", MIB, None)],
    "legacy_states.json": [("7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", NODE_A, "ipfs", HELLO, None)],
    "sdk_snake_case.json": [("1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", NODE_A, "ipfs", HELLO, None)],
}


def _where(row) -> str:
    for column in ("cid", "url"):
        if isinstance(row[column], str):
            return row[column]
    return f"{row['bucket']}/{row['key']}"


def _plain(value):
    return value if isinstance(value, str) else None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_bacalhau_samples(name: str) -> None:
    frame = cids_from_bacalhau((FIXTURES / name).read_text())
    got = [
        (_plain(r["job_id"]), _plain(r["node_id"]), r["type"], _where(r), _plain(r["version_id"]))
        for _, r in frame.iterrows()
    ]
    assert got == EXPECTED[name]


def test_fixture_table_covers_every_sample() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir() if p.name != "README.md") == sorted(EXPECTED)


def test_s3_checksum_kept_as_written() -> None:
    frame = cids_from_bacalhau((FIXTURES / "docs_s3_result.json").read_text())
    assert frame.iloc[0]["checksum_sha256"] == "e0uDqmflfT9b+rMfoCnO5G+cy+8WVTOPUtAqDMnXWbw="


@pytest.mark.parametrize(
    "text",
    ["Error: job not found", "hello: world\n", "WARN: x\n", "just some words", b"\xff\xfe"],
)
def test_text_that_is_no_document_gives_one_line(text) -> None:
    with pytest.raises(BacalhauDocumentError) as info:
        cids_from_bacalhau(text)
    assert "\n" not in str(info.value) and "no JSON or YAML" in str(info.value)


def test_text_with_cids_gives_content_cids_not_peers() -> None:
    text = f"NodeID: {NODE_A}\nresult is {HELLO}\nhost-{NODE_C} done\n"
    frame = cids_from_bacalhau(text)
    assert list(frame["cid"]) == [HELLO] and list(frame["type"]) == ["ipfs"]


def test_yaml_aliases_and_deep_nesting_are_one_line() -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nJob: {ID: j}\n"
    deep = "Job:\n" + "".join("  " * i + "- \n" for i in range(1, 400))
    for text in (bomb, deep, "Job: " + "[" * 5000):
        with pytest.raises(BacalhauDocumentError) as info:
            cids_from_bacalhau(text)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "line",
    [
        f'"NodeID": "{NODE_A}"',
        f"RequesterNodeID: {NODE_A}",
        f"PeerID={NODE_A}",
        f"node_id: {NODE_A}",
        f"Name: job-1-shard-0-host-{NODE_A}",
        f"/ip4/1.2.3.4/tcp/4001/p2p/{NODE_A}",
    ],
)
def test_cids_in_text_marks_peers(line: str) -> None:
    found = cids_in_text(f"{line}\nCID: {HELLO}\n")
    assert dict(zip(found["cid"], found["kind"], strict=True)) == {NODE_A: "peer", HELLO: "content"}
