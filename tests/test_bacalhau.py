"""cids_from_bacalhau / published_result_spec / cids_in_text on realistic Bacalhau output."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from jupyter_publish.bacalhau import (
    BACALHAU_COLUMNS,
    CID_COLUMNS,
    cids_from_bacalhau,
    cids_in_text,
    published_result_spec,
)

HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"  # b"hello world\n"
HELLO_V1 = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
MIB_V0 = "Qmf5BJUJ129GdC2TuaEXvBV3q5cJ4oD7gBnUD64EcTJW4y"
MIB_V1 = "bafybeifsyv5ykyj2c3sb4lnaravxx6tzmpc6wuv3g3p5xqoh5rhlhshcc4"
NOAA_CID = "QmYFhG668yJZmtk84SMMdbrz5Uvuh78Q8nLxTgLDWShkhR"
NODE_A = "QmYgxZiySj3MRkwLSL4X2MF5F9f2PMhAE3LV49XkfNL1o3"
NODE_B = "QmdZQ7ZbhnvWY1J12XYKGHApJ6aufKyLNSvf8jZBrBaAVL"

# `bacalhau describe 92d5d4ee --json` (v1.0.x, legacy model): one IPFS execution, one
# S3 execution, one that failed. Inputs in the Spec must not be mistaken for results.
LEGACY = {
    "Job": {
        "APIVersion": "V1beta2",
        "Metadata": {
            "ID": "92d5d4ee-3765-4f78-8353-623f5f26df08",
            "CreatedAt": "2023-09-12T10:31:24.118713614Z",
            "ClientID": "ac13188e93c97a9c2e7cf8e86c7313156a73436036f30da1ececc2ce79f9ea51",
            "Requester": {
                "RequesterNodeID": NODE_B,
                "RequesterPublicKey": "CAASpgIwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAw",
            },
        },
        "Spec": {
            "Engine": "Docker",
            "Verifier": "Noop",
            "Publisher": "IPFS",
            "PublisherSpec": {"Type": "IPFS"},
            "Docker": {"Image": "alpine", "Entrypoint": ["sh", "-c", "cp -r /inputs/* /outputs/"]},
            "Inputs": [
                {
                    "StorageSource": "S3",
                    "Name": "s3://noaa-goes16/ABI-L1b-RadC/2000/001/12/OR_ABI-L1b-RadC-M3C01*",
                    "S3": {
                        "Bucket": "noaa-goes16",
                        "Key": "ABI-L1b-RadC/2000/001/12/OR_ABI-L1b-RadC-M3C01*",
                        "Region": "us-east-1",
                    },
                    "Path": "/inputs",
                }
            ],
            "Outputs": [{"StorageSource": "IPFS", "Name": "outputs", "Path": "/outputs"}],
            "Deal": {"Concurrency": 3},
        },
    },
    "State": {
        "JobID": "92d5d4ee-3765-4f78-8353-623f5f26df08",
        "Executions": [
            {
                "JobID": "92d5d4ee-3765-4f78-8353-623f5f26df08",
                "NodeId": NODE_A,
                "ComputeReference": "e-8fa2b1c4-6a3d-4c1e-9d7b-2f5e0a9c3b11",
                "State": "Completed",
                "AcceptedAskForBid": True,
                "VerificationResult": {"Complete": True, "Result": True},
                "PublishedResults": {
                    "StorageSource": "IPFS",
                    "Name": "job-92d5d4ee-3765-4f78-8353-623f5f26df08",
                    "CID": NOAA_CID,
                },
                "RunOutput": {
                    "stdout": "",
                    "stdouttruncated": False,
                    "stderr": "",
                    "stderrtruncated": False,
                    "exitCode": 0,
                    "runnerError": "",
                },
                "Version": 5,
                "CreateTime": "2023-09-12T10:31:24.3Z",
                "UpdateTime": "2023-09-12T10:32:01.9Z",
            },
            {
                "JobID": "92d5d4ee-3765-4f78-8353-623f5f26df08",
                "NodeId": NODE_B,
                "ComputeReference": "e-1b7c9d2e-0f4a-4b8c-a1d3-5e6f7a8b9c0d",
                "State": "Failed",
                "Status": "docker: image pull failed: toomanyrequests",
                "AcceptedAskForBid": True,
                "VerificationResult": {"Complete": False, "Result": False},
                "PublishedResults": {},
                "RunOutput": {
                    "stdout": "",
                    "stderr": "pull rate limit",
                    "exitCode": 1,
                    "runnerError": "image pull failed",
                },
                "Version": 3,
                "CreateTime": "2023-09-12T10:31:24.3Z",
                "UpdateTime": "2023-09-12T10:31:40.0Z",
            },
            {
                "JobID": "92d5d4ee-3765-4f78-8353-623f5f26df08",
                "NodeId": "QmXaXu9N5GNetatsvwnTfQqNtSeKAD6uCmarbh3LMRYAcF",
                "ComputeReference": "e-77aa0c1d-3e2f-4a5b-8c9d-0e1f2a3b4c5d",
                "State": "Completed",
                "PublishedResults": {
                    "StorageSource": "S3",
                    "Name": "s3://my-results/run3.tar.gz",
                    "S3": {
                        "Bucket": "my-results",
                        "Key": "run3.tar.gz",
                        "Checksum": "e0uDqmflfT9b+rMfoCnO5G+cy+8WVTOPUtAqDMnXWbw=",
                        "VersionID": "hZoNdqJsZxE_bFm3UGJuJ0RqkITe9dQ1",
                        "Endpoint": "http://127.0.0.1:8333",
                        "Region": "us-east-1",
                    },
                },
                "Version": 6,
            },
        ],
        "State": "Completed",
        "Version": 9,
        "CreateTime": "2023-09-12T10:31:24.1Z",
        "UpdateTime": "2023-09-12T10:32:02.2Z",
        "TimeoutAt": "0001-01-01T00:00:00Z",
    },
}

JOB_V1 = "j-c4f7ad4a-0d9e-4d2b-9f5e-6f0c9c1f7c2b"


def _v1_execution(eid: str, node: str, state: int, published: dict | None, **extra) -> dict:
    item = {
        "ID": eid,
        "Namespace": "default",
        "EvalID": "0d1c2b3a-4f5e-6d7c-8b9a-0f1e2d3c4b5a",
        "Name": "",
        "NodeID": node,
        "JobID": JOB_V1,
        "AllocatedResources": {"Tasks": {}},
        "DesiredState": {"StateType": 2, "Message": "execution completed"},
        "ComputeState": {"StateType": state, "Message": ""},
        "PublishedResult": published,
        "RunOutput": {
            "Stdout": "done\n",
            "StdoutTruncated": False,
            "Stderr": "",
            "StderrTruncated": False,
            "ExitCode": 0,
            "ErrorMsg": "",
        },
        "PreviousExecution": "",
        "NextExecution": "",
        "FollowupEvalID": "",
        "Revision": 6,
        "CreateTime": 1706021234567890123,
        "ModifyTime": 1706021299123456789,
    }
    item.update(extra)
    return item


# `bacalhau job describe j-c4f7ad4a --output json` (v1.3): five executions on five nodes,
# mixed publishers, one failed with an empty published result.
V1 = {
    "Job": {
        "ID": JOB_V1,
        "Name": "noaa-copy",
        "Namespace": "default",
        "Type": "batch",
        "Priority": 0,
        "Count": 5,
        "Constraints": [],
        "Meta": {
            "bacalhau.org/requester.id": "n-7d1f0c2e",
            "bacalhau.org/client.id": "ac13188e93c97a9c2e7cf8e8",
        },
        "Labels": {},
        "Tasks": [
            {
                "Name": "main",
                "Engine": {"Type": "docker", "Params": {"Image": "alpine", "Entrypoint": ["sh", "-c"]}},
                "Publisher": {
                    "Type": "s3",
                    "Params": {"Bucket": "results", "Key": "jobs/{jobID}/{executionID}"},
                },
                "InputSources": [
                    {"Source": {"Type": "ipfs", "Params": {"CID": MIB_V0}}, "Target": "/inputs"}
                ],
                "ResultPaths": [{"Name": "outputs", "Path": "/outputs"}],
            }
        ],
        "State": {"StateType": "Completed", "Message": ""},
        "Version": 0,
        "Revision": 5,
        "CreateTime": 1706021234000000000,
        "ModifyTime": 1706021300000000000,
    },
    "History": [
        {
            "Type": "JobLevel",
            "JobID": JOB_V1,
            "Time": "2024-01-23T14:47:14Z",
            "JobState": {"Previous": 0, "New": 1},
            "Comment": "Job created",
        },
    ],
    "Executions": {
        "Items": [
            _v1_execution(
                "e-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
                "n-1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718",
                7,
                {
                    "Type": "s3",
                    "Params": {
                        "Bucket": "results",
                        "Key": f"jobs/{JOB_V1}/e-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d.tar.gz",
                        "Region": "us-east-1",
                        "Endpoint": "http://127.0.0.1:8333",
                        "ChecksumSHA256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
                        "VersionID": "3/L4kqtJlcpXroDTDmJ+rmDbwQaHWyOb",
                    },
                },
            ),
            _v1_execution(
                "e-11111111-2222-3333-4444-555555555555",
                NODE_A,
                7,
                {"Type": "ipfs", "Params": {"CID": MIB_V1}},
            ),
            _v1_execution(
                "e-66666666-7777-8888-9999-000000000000",
                NODE_B,
                8,
                {"Type": "", "Params": None},
                RunOutput={"Stdout": "", "Stderr": "boom", "ExitCode": 2, "ErrorMsg": "exit status 2"},
            ),
            _v1_execution(
                "e-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                "n-99887766-5544-3322-1100-ffeeddccbbaa",
                "Completed",
                {
                    "Type": "urlDownload",
                    "Params": {"URL": "http://192.168.1.10:6001/e-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee.tgz"},
                },
            ),
            _v1_execution(
                "e-12121212-3434-5656-7878-909090909090",
                "n-0a0b0c0d-0e0f-1011-1213-141516171819",
                7,
                {
                    "Type": "s3managed",
                    "Params": {"JobID": JOB_V1, "ExecutionID": "e-12121212-3434-5656-7878-909090909090"},
                },
            ),
        ],
        "NextToken": "",
    },
}


# --------------------------------------------------------------------------- cids_from_bacalhau


def test_legacy_describe() -> None:
    df = cids_from_bacalhau(LEGACY)
    assert list(df.columns) == BACALHAU_COLUMNS
    assert len(df) == 2  # the failed execution published nothing; Spec inputs are not results
    ipfs, s3 = df.iloc[0], df.iloc[1]
    assert ipfs["type"] == "ipfs" and ipfs["cid"] == NOAA_CID
    assert ipfs["job_id"] == "92d5d4ee-3765-4f78-8353-623f5f26df08"
    assert ipfs["execution_id"] == "e-8fa2b1c4-6a3d-4c1e-9d7b-2f5e0a9c3b11"
    assert ipfs["node_id"] == NODE_A and ipfs["state"] == "Completed"
    assert pd.isna(ipfs["bucket"])
    assert (s3["type"], s3["bucket"], s3["key"]) == ("s3", "my-results", "run3.tar.gz")
    assert s3["checksum_sha256"] == "e0uDqmflfT9b+rMfoCnO5G+cy+8WVTOPUtAqDMnXWbw="
    assert s3["version_id"] == "hZoNdqJsZxE_bFm3UGJuJ0RqkITe9dQ1"
    assert (s3["endpoint"], s3["region"]) == ("http://127.0.0.1:8333", "us-east-1")
    assert pd.isna(s3["cid"])


def test_v1_describe_mixed_publishers() -> None:
    df = cids_from_bacalhau(V1)
    assert list(df["type"]) == ["s3", "ipfs", "urlDownload", "s3managed"]
    assert set(df["job_id"]) == {JOB_V1}
    assert "e-66666666-7777-8888-9999-000000000000" not in set(
        df["execution_id"]
    )  # failed, nothing published
    s3 = df.iloc[0]
    assert s3["key"] == f"jobs/{JOB_V1}/e-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d.tar.gz"
    assert s3["checksum_sha256"] == "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
    assert s3["state"] == "7"  # an integer whose meaning changed between versions: kept as written
    assert df.iloc[1]["cid"] == MIB_V1 and df.iloc[1]["node_id"] == NODE_A
    assert df.iloc[2]["url"].endswith(".tgz") and df.iloc[2]["state"] == "Completed"
    # the input CID in the job's Tasks is not a result
    assert MIB_V0 not in set(df["cid"].dropna())


def test_text_columns_use_string_dtype() -> None:
    df = cids_from_bacalhau(V1)
    assert all(str(dtype) == "string" for dtype in df.dtypes)
    empty = cids_from_bacalhau({"Job": {"ID": "j-1"}, "Executions": {"Items": []}})
    assert empty.empty and list(empty.columns) == BACALHAU_COLUMNS


def test_accepts_text_bytes_with_leading_junk_and_several_documents() -> None:
    text = (
        "A new version of Bacalhau is available: v1.4.0 (you have v1.3.2)\n"
        "[WARN] client id file not found, generating one\n" + json.dumps(V1, indent=2) + "\n"
    )
    assert len(cids_from_bacalhau(text)) == 4
    assert len(cids_from_bacalhau(text.encode())) == 4
    both = "\n".join(["Fetching jobs [1/2]", json.dumps(LEGACY), "Fetching jobs [2/2]", json.dumps(V1)])
    assert len(cids_from_bacalhau(both)) == 6


def test_list_of_job_documents_and_single_execution() -> None:
    df = cids_from_bacalhau([LEGACY, V1])
    assert list(df["job_id"].unique()) == ["92d5d4ee-3765-4f78-8353-623f5f26df08", JOB_V1]
    one = cids_from_bacalhau(V1["Executions"]["Items"][1])  # `bacalhau job executions` item
    assert one.iloc[0]["cid"] == MIB_V1 and one.iloc[0]["job_id"] == JOB_V1


def test_selection_ignores_state_numbers() -> None:
    doc = copy.deepcopy(V1)
    for item in doc["Executions"]["Items"]:
        item["ComputeState"]["StateType"] = 5  # "Completed" in another release
    assert len(cids_from_bacalhau(doc)) == 4


def test_rejects_text_without_json() -> None:
    with pytest.raises(ValueError, match="no JSON"):
        cids_from_bacalhau("Error: job not found")


# --------------------------------------------------------------------------- published_result_spec


def test_spec_identity_for_v1() -> None:
    spec = V1["Executions"]["Items"][0]["PublishedResult"]
    out = published_result_spec(spec)
    assert out == spec and out["Params"] is not spec["Params"]
    assert published_result_spec(V1["Executions"]["Items"][1]) == {"Type": "ipfs", "Params": {"CID": MIB_V1}}


def test_spec_from_legacy() -> None:
    legacy_s3 = LEGACY["State"]["Executions"][2]["PublishedResults"]
    assert published_result_spec(legacy_s3) == {
        "Type": "s3",
        "Params": {
            "Bucket": "my-results",
            "Key": "run3.tar.gz",
            "Region": "us-east-1",
            "Endpoint": "http://127.0.0.1:8333",
            "ChecksumSHA256": "e0uDqmflfT9b+rMfoCnO5G+cy+8WVTOPUtAqDMnXWbw=",
            "VersionID": "hZoNdqJsZxE_bFm3UGJuJ0RqkITe9dQ1",
        },
    }
    assert published_result_spec(LEGACY["State"]["Executions"][0]) == {
        "Type": "ipfs",
        "Params": {"CID": NOAA_CID},
    }


def test_spec_round_trips_from_rows() -> None:
    df = cids_from_bacalhau(V1)
    specs = [published_result_spec(row) for _, row in df.iterrows()]
    originals = [i["PublishedResult"] for i in V1["Executions"]["Items"] if i["PublishedResult"]["Type"]]
    assert specs == originals
    with pytest.raises(ValueError):
        published_result_spec({"foo": 1})
    with pytest.raises(ValueError, match="published nothing"):
        published_result_spec(V1["Executions"]["Items"][2])  # the failed execution
    with pytest.raises(ValueError, match="published nothing"):
        published_result_spec(LEGACY["State"]["Executions"][1])


# --------------------------------------------------------------------------- cids_in_text

PROGRESS = " 12 B / 1.00 MiB [>-------]   0.00%\r 1.00 MiB / 1.00 MiB [========] 100.00%\r"
IPFS_ADD = f"""$ ipfs add -r results
{PROGRESS}added {HELLO_V0} results/hello.txt
added {MIB_V0} results/data.bin
added {NOAA_CID} results
"""


def test_ipfs_add_output() -> None:
    df = cids_in_text(IPFS_ADD)
    assert list(df.columns) == CID_COLUMNS
    assert list(df["cid"]) == [HELLO_V0, MIB_V0, NOAA_CID]
    assert list(df["name"]) == ["results/hello.txt", "results/data.bin", "results"]
    assert list(df["line"]) == [2, 3, 4]
    hello = df.iloc[0]
    assert hello["cid_v1"] == "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby"
    assert (hello["version"], hello["codec"]) == (0, "dag-pb")
    assert hello["context"].endswith("results/hello.txt") and len(hello["context"]) <= 200


def test_gateway_urls_json_and_logs() -> None:
    text = "\n".join(
        [
            f"plot: https://ipfs.io/ipfs/{MIB_V1}/plots/fig%201.png, table below.",
            f"mirror https://{HELLO_V1}.ipfs.dweb.link/hello.txt?download=true",
            f"native ipfs://{HELLO_V0}/a/b.csv",
            json.dumps({"Name": "x.csv", "Hash": HELLO_V1, "Size": "12"}),
            f'{{"PublishedResult": {{"Type": "ipfs", "Params": {{"CID": "{NOAA_CID}"}}}}}}',
            f"2024-01-23T14:47:14Z INFO published {MIB_V0} in 1.2s",
        ]
    )
    df = cids_in_text(text)
    got = list(zip(df["cid"], df["name"].fillna(""), df["line"], strict=True))
    assert got == [
        (MIB_V1, "plots/fig 1.png", 1),
        (HELLO_V1, "hello.txt", 2),
        (HELLO_V0, "a/b.csv", 3),
        (HELLO_V1, "x.csv", 4),
        (NOAA_CID, "", 5),
        (MIB_V0, "", 6),
    ]
    raw = df[df["cid"] == HELLO_V1].iloc[0]
    assert (raw["version"], raw["codec"], raw["cid_v1"]) == (1, "raw", HELLO_V1)


def test_false_positives_are_discarded() -> None:
    not_a_multihash = "Qm" + "1" * 44  # 46 base58 characters, decodes to no valid CID
    assert len(not_a_multihash) == 46
    text = "\n".join(
        [
            "QmHello and QmWorld are not CIDs",
            f"nor is {not_a_multihash}",
            f"nor {HELLO_V0}X (too long) or x{HELLO_V0} (glued)",
            "sha256 b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
            "b" + "a" * 58,
            f"but this one is: {HELLO_V0}",
        ]
    )
    df = cids_in_text(text)
    assert list(df["cid"]) == [HELLO_V0]
    assert list(df["line"]) == [6]


def test_a_cid_shaped_token_with_an_unknown_codec_is_no_cid() -> None:
    # Version 1, sha2-256, but codec 0x7e, which no multicodec has: the fast path once
    # raised MulticodecKeyError out of cids_in_text (and %%cids) instead of skipping it.
    import hashlib

    from jupyter_publish.cid import _cid_str

    unknown_codec = _cid_str(b"\x01\x7e\x12\x20" + hashlib.sha256(b"x").digest())
    df = cids_in_text(f"not a CID: {unknown_codec}\nthis one is: {HELLO_V0}")
    assert list(df["cid"]) == [HELLO_V0]


def test_dedupe_by_cid_and_name() -> None:
    text = f"added {HELLO_V0} a.txt\nadded {HELLO_V0} a.txt\nadded {HELLO_V0} b.txt\n{HELLO_V0}\n{HELLO_V0}\n"
    df = cids_in_text(text)
    assert list(df["name"].fillna("-")) == ["a.txt", "b.txt", "-"]
    assert list(df["line"]) == [1, 3, 4]


def test_empty_text() -> None:
    df = cids_in_text("nothing here")
    assert df.empty and list(df.columns) == CID_COLUMNS


def test_a_list_of_text_documents_is_parsed_item_by_item():
    cid = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    execution = {"JobID": "j1", "ComputeReference": "e1", "NodeId": "n1"}
    published = {"StorageSource": "IPFS", "CID": cid}
    doc = {"State": {"Executions": [{**execution, "PublishedResults": published}]}}
    import json as _json

    frame = cids_from_bacalhau([_json.dumps(doc), "notice: update available\n" + _json.dumps(doc)])
    assert len(frame) == 2
    assert set(frame["cid"]) == {cid}
