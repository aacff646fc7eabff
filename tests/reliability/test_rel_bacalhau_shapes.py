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
NODE_D = "QmdZQ7ZbhnvWY1J12XYKGHApJ6aufKyLNSvf8jZBrBaAVL"
J_SWAGGER = "9304c616-291f-41ad-b862-54e133c0149e"  # the job of the legacy API reference examples
DATE_OUT = "QmTVmC7JBD2ES2qGPqBNVWnX1KeEPNrPGb7rJ8cpFgtefe"  # its result
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
    # Real samples collected from Bacalhau's docs, API reference, SDK README and example
    # notebooks (README.md names each source). Expected values were read off the samples.
    "nb_v0_2_describe.yaml": [
        (
            "75ef84c5-1f39-483f-a33f-508c9f7a789a",
            NODE_A,
            "ipfs",
            "QmRcanuDamGtJzYreoP79ButPimGYo6oz2v1T7FPr6GRhP",
            None,
        )
    ],
    # The node is named only by a short prefix ("Node QmYgxZiy"): no node ID to read.
    "nb_v0_2_docker_run.txt": [
        (
            "28850250-687d-440e-b6e6-fb809ead8f97",
            None,
            "ipfs",
            "QmSTbh1wRkwcNkjTmCWjUWxwaBs1q2BtG5r2U6mere5ARc",
            None,
        )
    ],
    "nb_v0_3_list_wide_ansi.txt": [
        (
            "12e1b4d9-00b0-4824-bbd1-6d75083dcae0",
            None,
            "ipfs",
            "QmaxiCCJ5vuwEfA2x7VVvMUXHxHN6iYNPhmvFhXSyUyNYx",
            None,
        )
    ],
    "nb_v0_3_list_json_jq_cids.txt": [
        (None, None, "ipfs", cid, None)
        for cid in (
            "QmV2uYcS7TqQGDvsLnoC2yn1inKoec9vVyTa548Gg6VTkr",
            "QmaZXQSxFDMjneyCv7ZjXdgWTNbLwPRmSEy3PMPjByeQZw",
            "QmQkafCQoSCevLN6hJKCJYRK67z3VEsFWk7qSq85GW9NUt",
            "QmZFzHeACRcqfPwTCzCfsikDLixX1NdBXCG6RHH1iiuCiY",
            "QmdZQ8vmzWRuzn9jVgzRxKnBhLsX1TQwvfT6QZdNDzcCsR",
            "QmVTL12jSTNR62zyM8zX7jVSCp1Mb5B2PUV1xkct4vo1SP",
            "QmaN5p8zteJ868cbmThTHd4yumB5eetWxXoLbcP4hWBzF1",
            "Qme3kw2tbNfmFPHXydDK9dKLzwfry8b2dxD5s4L1ij9QAL",
            "QmYki5KZQHroo1zzYWfPYrnNRDec8MVjkrvSRBCQqMzvHY",
            "QmNjarM2oxMPwN4cpQcy6NhuNbe4opHyfdce149oYkasjG",
        )
    ],
    "nb_v0_3_describe.yaml": [
        (
            "c2f245d6-43a6-43ec-9a3b-7ce9b6242c88",
            NODE_D,
            "ipfs",
            "QmehTNF6ogbESt26EgrSw9YGrApneSWhPesqw1A5T6ezBe",
            None,
        )
    ],
    # jq picked one shard: the job ID is only in the result's name, job-<ID>-shard-0-host-<node>.
    "nb_v0_3_list_json_jq_shard.json": [
        (
            "418f5335-8023-42ca-b65f-7844614151f0",
            NODE_D,
            "ipfs",
            "QmYT1RuLmhqh6xdXLG62kLjn2G513nHiWmuy6j6vm5QT5H",
            None,
        )
    ],
    "nb_v0_3_describe_executions.yaml": [
        (
            "61e542a7-bea1-4382-b3c9-40050d143ad6",
            NODE_A,
            "ipfs",
            "QmY2MEETWyX77BBYBNBpUW5bjkVAyP87EotPDVW2vjHG8K",
            None,
        )
    ],
    "nb_v1_api_executions_pprint.txt": [],  # noop publisher: PublishedResult {'Type': ''}
    "api_legacy_list.json": [
        (J_SWAGGER, NODE_D, "ipfs", DATE_OUT, None),
        (
            "92d5d4ee-3765-4f78-8353-623f5f26df08",
            NODE_A,
            "ipfs",
            "QmWUXBndMuq2G6B6ndQCmkRHjZ6CvyJ8qLxXBG3YsSFzQG",
            None,
        ),
    ],
    "api_legacy_states.json": [(J_SWAGGER, NODE_D, "ipfs", DATE_OUT, None)],
    "api_legacy_results.json": [(J_SWAGGER, NODE_D, "ipfs", DATE_OUT, None)],
    # "Example response (truncated)": `...` stands for left-out events, so it is no JSON.
    "api_legacy_events_truncated.json": [(J_SWAGGER, NODE_D, "ipfs", DATE_OUT, None)],
    "sdk_results_pprint.txt": [
        (
            "710a0bc2-81d1-4025-8f80-5327ca3ce170",
            NODE_A,
            "ipfs",
            "QmYEqqNDdDrsRhPRShKHzsnZwBq3F59Ti3kQmv9En4i5Sw",
            None,
        )
    ],
    "docs_v0_3_failed_shard.yaml": [],  # the shard failed: PublishedResults: {}
    # The job ID is in the request line the docs print above the answer.
    "api_v1_results_s3.txt": [
        (
            "j-479d160f-f9ab-4e32-aec9-a45554126450",
            None,
            "s3",
            "bacalhau-test-datasets/my-prefix/my-result-file.tar.gz",
            "bNS92VdFudVI7NPsXF51Qn.RPw31TKNG",
        )
    ],
    "api_v1_executions_noop.txt": [],  # three executions, each PublishedResult {"Type": "", "Params": null}
    "docs_v1_published_result_ipfs.yaml": [
        (None, None, "ipfs", "QmXoypizjW3WknFiJnKLwHCnL72vedxjQkDDP1mXWo6uco", None)
    ],
    "docs_v1_published_result_local.yaml": [
        (None, None, "local", "http://192.168.0.11:6001/e-c4b80d04-ff2b-49d6-9b99-d3a8e669a6bf.tgz", None)
    ],
    "docs_v1_job_get_ipfs.txt": [
        (
            "j-c6514250-2e97-4fb6-a1e6-6a5a8e8ba6aa",
            None,
            "ipfs",
            "QmSskRNnbbw8rNtkLdcJrUS2uC2mhiKofVJsahKRPgbGGj",
            None,
        )
    ],
}
# Real samples that name a job but print no published result: a careful reader learns the
# job ID and that the results are not in the text; the error says both.
NO_RESULT = {"docs_v1_job_run.txt": "j-c6514250-2e97-4fb6-a1e6-6a5a8e8ba6aa"}


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


@pytest.mark.parametrize("name", sorted(NO_RESULT))
def test_real_samples_without_a_result_name_their_job(name: str) -> None:
    with pytest.raises(BacalhauDocumentError) as info:
        cids_from_bacalhau((FIXTURES / name).read_text())
    assert "\n" not in str(info.value) and NO_RESULT[name] in str(info.value)


def test_fixture_table_covers_every_sample() -> None:
    names = sorted(p.name for p in FIXTURES.iterdir() if p.name != "README.md")
    assert names == sorted([*EXPECTED, *NO_RESULT])
    table = (FIXTURES / "README.md").read_text()
    assert all(f"`{name}`" in table for name in names)


def test_python_repr_none_is_no_value() -> None:
    """The SDK prints ``'url': None``: no URL, not the text "None" (as YAML would read it)."""
    frame = cids_from_bacalhau((FIXTURES / "sdk_results_pprint.txt").read_text())
    assert frame["url"].isna().all() and frame["cid"].notna().all()


def test_text_naming_two_jobs_names_none() -> None:
    other = "j-00000000-0000-4000-8000-000000000000"
    text = f"Job successfully submitted. Job ID: {J_V1}\nResults CID: {HELLO}\nbacalhau job get {other}\n"
    frame = cids_from_bacalhau(text)
    assert list(frame["cid"]) == [HELLO] and frame["job_id"].isna().all()
    assert list(cids_from_bacalhau(text.replace(other, J_V1))["job_id"]) == [J_V1]


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
