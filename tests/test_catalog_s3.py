"""The team catalog on a real S3 server (SeaweedFS): two homes, one bucket.

Machine A publishes to the bucket and writes its job records to ``s3://BUCKET/catalog/``;
machine B, with its own ledger, lists the team's jobs and fetches A's job by ID, verified,
through the API, the command line (a subprocess) and the magics. Tampering is caught; a
second listing asks only for what is new; a PutObject-only identity can write records.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from machines import cli_at

import jupyter_publish as jp
from jupyter_publish.api import jobs
from jupyter_publish.backends.s3 import S3Backend
from jupyter_publish.catalog import TamperedRecordError, records
from jupyter_publish.errors import IntegrityError
from jupyter_publish.ledger import Ledger

pytestmark = pytest.mark.servers


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """``use("a")`` / ``use("b")``: two machines, each its own home and ledger."""
    paths = {name: tmp_path / f"home-{name}" for name in "ab"}

    def use(name: str) -> Path:
        monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(paths[name]))
        return paths[name]

    use("a")
    return use


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "metrics.json").write_text('{"accuracy": 0.93}')
    (folder / "model.bin").write_bytes(os.urandom(5000))
    return folder


@pytest.fixture
def requests(monkeypatch):
    """Every HTTP request our S3 clients send, as ``(method, path?query)`` (a botocore hook)."""
    sent: list[tuple[str, str]] = []
    make = S3Backend._make_client

    def counted(self):  # type: ignore[no-untyped-def]
        client = make(self)
        client.meta.events.register(
            "before-send.s3",
            lambda request, **_: sent.append((request.method, request.url.split("/", 3)[-1])),
        )
        return client

    monkeypatch.setattr(S3Backend, "_make_client", counted)
    return sent


def catalog_keys(s3_env, bucket: str) -> list[str]:
    listed = s3_env.client().list_objects_v2(Bucket=bucket, Prefix="catalog/records/")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_two_homes_one_bucket_through_the_api(s3_env, s3_bucket, homes, results, tmp_path, capsys):
    catalog = f"s3://{s3_bucket}/catalog/"
    published = jp.publish(results, f"s3://{s3_bucket}/runs/{{jobID}}/", catalog=catalog)
    with pytest.raises(jp.PublishError):  # a failed job goes to the catalog too
        jp.publish(tmp_path / "nothing-here", f"s3://{s3_bucket}/runs/", catalog=catalog)
    assert len(catalog_keys(s3_env, s3_bucket)) == 2

    homes("b")
    frame = jobs(catalog=catalog)
    assert len(frame) == 2 and set(frame["status"]) == {"published", "failed"}
    row = frame.set_index("job_id").loc[published.job_id]
    assert row["uri"] == published.uri and row["n_files"] == 2 and row["host"]
    fetched = jp.fetch(published.job_id, tmp_path / "out", catalog=catalog)
    assert fetched.verified and {f.verified_against for f in fetched.files} == {"sha256"}
    assert (tmp_path / "out" / "metrics.json").read_text() == '{"accuracy": 0.93}'
    assert not Ledger().jobs()  # B's own ledger published nothing
    assert "warning" not in capsys.readouterr().err


def test_two_homes_through_the_command_line(s3_env, s3_bucket, homes, results, tmp_path):
    catalog = f"s3://{s3_bucket}/catalog/"

    def cli(home: str, *args: str) -> subprocess.CompletedProcess[str]:
        return cli_at(homes(home), *args)

    done = cli("a", "publish", str(results), "--to", f"s3://{s3_bucket}/cli/", "--catalog", catalog, "--json")
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["job_id"]
    listed = cli("b", "jobs", "--catalog", catalog, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["job_id"] for r in json.loads(listed.stdout)] == [job_id]
    fetched = cli("b", "fetch", job_id, "--catalog", catalog, "--to", str(tmp_path / "cli-out"), "--json")
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["verified"] is True
    assert cli("b", "fetch", job_id, "--to", str(tmp_path / "no")).returncode == 1  # no catalog: unknown here


def test_two_homes_through_the_magics(s3_env, s3_bucket, homes, ip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    magics = ip.magics_manager.registry["PublishMagics"]
    catalog = f"s3://{s3_bucket}/catalog/"
    try:
        magics.catalog = catalog  # %config PublishMagics.catalog = "s3://…"
        with capture_output():
            result = ip.run_cell(
                f"%%publish s3://{s3_bucket}/cells/{{jobID}}/ --out r\n"
                "(OUTPUT / 'a.txt').write_text('from A')"
            )
        assert result.error_in_exec is None, result.error_in_exec
        job_id = ip.user_ns["r"].job_id
        magics.catalog = ""
        homes("b")
        frame = ip.run_line_magic("jobs", f"--catalog {catalog}")
        assert list(frame["job_id"]) == [job_id] and frame["status"][0] == "published"
        with pytest.raises(UsageError, match="no job"):
            ip.run_line_magic("fetch", f"{job_id} --to {tmp_path / 'nope'} --no-preview")
        with capture_output():
            ip.run_line_magic(
                "fetch", f"{job_id} --catalog {catalog} --to {tmp_path / 'm'} --no-preview --out f"
            )
        assert ip.user_ns["f"].verified and (tmp_path / "m" / "a.txt").read_text() == "from A"
    finally:
        magics.catalog = ""
        for name in ("r", "f"):
            ip.user_ns.pop(name, None)


def test_a_tampered_record_or_object_on_s3_is_detected(s3_env, s3_bucket, homes, results, tmp_path):
    catalog = f"s3://{s3_bucket}/catalog/"
    good = jp.publish(results, f"s3://{s3_bucket}/good/", catalog=catalog, archive=False)
    bad = jp.publish(results, f"s3://{s3_bucket}/bad/", catalog=catalog, archive=False)
    s3 = s3_env.client()
    key = next(k for k in catalog_keys(s3_env, s3_bucket) if bad.job_id in k)
    doc = json.loads(s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
    doc["result"]["uri"] = "s3://elsewhere/"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=records.encode(doc))
    s3.put_object(Bucket=s3_bucket, Key="good/metrics.json", Body=b'{"accuracy": 0.99}')  # object replaced

    homes("b")
    with pytest.raises(TamperedRecordError, match=rf"s3://{s3_bucket}/{key} refused"):
        jp.fetch(bad.job_id, tmp_path / "bad", catalog=catalog)
    with pytest.raises(IntegrityError, match=r"metrics\.json"):
        jp.fetch(good.job_id, tmp_path / "good", catalog=catalog)
    assert list(jobs(catalog=catalog)["job_id"]) == [good.job_id]


def test_a_second_listing_asks_only_for_new_records(s3_env, s3_bucket, homes, results, requests):
    catalog = f"s3://{s3_bucket}/catalog/"
    for _ in range(3):
        jp.publish(results, f"s3://{s3_bucket}/r/{{jobID}}/", catalog=catalog)
    homes("b")
    requests.clear()
    assert len(jobs(catalog=catalog)) == 3
    gets = Counter(method for method, _ in requests)
    assert gets == {"GET": 5}  # a cold start: packs listed (none), records listed, three read
    homes("a")
    newest = jp.publish(results, f"s3://{s3_bucket}/r/{{jobID}}/", catalog=catalog)
    homes("b")
    requests.clear()
    assert len(jobs(catalog=catalog)) == 4
    listing, *reads = requests
    assert "list-type=2" in listing[1] and "start-after=" in listing[1]
    assert len(reads) == 1 and newest.job_id in reads[0][1]
    requests.clear()
    assert len(jobs(catalog=catalog)) == 4 and len(requests) == 1  # nothing new: one listing


def test_a_put_only_identity_writes_records(s3_env, s3_bucket, homes, results, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_env.writer_access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_env.writer_secret_key)
    catalog = f"s3://{s3_bucket}/catalog/"
    with pytest.raises(jp.PublishError):  # the writer may not read: proof of the identity
        jobs(catalog=catalog)
    result = jp.publish(results, f"s3://{s3_bucket}/w/", catalog=catalog)
    assert "warning" not in capsys.readouterr().err
    (key,) = catalog_keys(s3_env, s3_bucket)
    body = s3_env.client().get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert records.verify(key, body)["result"]["job_id"] == result.job_id
    head = s3_env.client().head_object(Bucket=s3_bucket, Key=key, ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == hashlib.sha256(body).hexdigest()


def test_a_record_the_store_refused_is_kept_and_sent_later(
    s3_env, s3_bucket, homes, results, tmp_path, capsys
):
    missing = f"{s3_bucket}-later"
    catalog = f"s3://{missing}/catalog/"
    result = jp.publish(results, f"s3://{s3_bucket}/p/", catalog=catalog)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err and "sent again" in err
    assert Ledger().status(result.job_id)["status"] == "published"
    s3_env.create_bucket(missing)
    assert list(jobs(catalog=catalog)["job_id"]) == [result.job_id]  # sent first, then listed
    homes("b")
    assert jp.fetch(result.job_id, tmp_path / "out", catalog=catalog).verified


def test_a_cold_reader_after_a_pack_reads_one_object(
    s3_env, s3_bucket, homes, results, requests, tmp_path, monkeypatch
):
    from jupyter_publish.catalog import packs

    monkeypatch.setattr(packs, "MIN_RECORDS", 3)
    catalog = f"s3://{s3_bucket}/catalog/"
    ids = [jp.publish(results, f"s3://{s3_bucket}/r/{{jobID}}/", catalog=catalog).job_id for _ in range(3)]
    homes("b")
    assert len(jobs(catalog=catalog)) == 3  # reads three records, leaves a pack
    listed = s3_env.client().list_objects_v2(Bucket=s3_bucket, Prefix="catalog/packs/")
    assert [o["Key"].rsplit("/", 1)[1].split(".")[1] for o in listed["Contents"]] == ["3"]
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_path / "home-c"))
    requests.clear()
    assert sorted(jobs(catalog=catalog)["job_id"]) == sorted(ids)
    paths = [path for _, path in requests]
    assert len(paths) == 3 and "catalog/packs/" in paths[1]  # list packs, GET the pack, list after it
    assert not any("catalog/records/" in p and "list-type" not in p for p in paths)  # no record GET


@pytest.fixture
def hosts(monkeypatch):
    """The host of every request our S3 clients send; one past loopback is never sent
    (it fails as an unreachable endpoint would), so a test cannot reach AWS."""
    from urllib.parse import urlsplit

    import botocore.exceptions

    seen: list[str] = []
    make = S3Backend._make_client

    def guard(request, **_):  # type: ignore[no-untyped-def]
        host = urlsplit(request.url).hostname or ""
        seen.append(host)
        if host not in ("127.0.0.1", "localhost"):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url=request.url)

    def guarded(self):  # type: ignore[no-untyped-def]
        client = make(self)
        client.meta.events.register("before-send.s3", guard)
        return client

    monkeypatch.setattr(S3Backend, "_make_client", guarded)
    return seen


def test_the_magics_write_and_read_the_catalog_at_the_configured_endpoint(
    s3_env, s3_bucket, homes, ip, tmp_path, monkeypatch, hosts
):
    """``%config PublishMagics.endpoint`` (not the environment) is where every magic
    finds the catalog: a %publish to a local folder writes its record there, and
    %jobs --catalog, --lineage and %fetch read it there; nothing goes to AWS."""
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "table.csv").write_text("x\n1\n")
    magics = ip.magics_manager.registry["PublishMagics"]
    catalog = f"s3://{s3_bucket}/catalog/"
    try:
        magics.endpoint = s3_env.endpoint
        magics.catalog = catalog
        with capture_output() as shown:
            ip.run_line_magic("publish", "table.csv --to local --out r")
        job_id = ip.user_ns["r"].job_id
        assert "warning" not in shown.stderr
        assert [k for k in catalog_keys(s3_env, s3_bucket) if job_id in k]  # written at the endpoint
        homes("b")
        frame = ip.run_line_magic("jobs", "--catalog")
        assert list(frame["job_id"]) == [job_id]
        edges = ip.run_line_magic("jobs", f"--lineage {job_id} --catalog")
        assert edges is not None
        # %fetch finds the job in the catalog (else "no job … in the ledger or in the
        # catalog"); its bytes are in machine A's local store, which B does not have.
        with pytest.raises(UsageError, match="in the local store at"):
            ip.run_line_magic("fetch", f"{job_id} --to {tmp_path / 'back'} --no-preview")
        assert hosts and set(hosts) <= {"127.0.0.1", "localhost"}
        with sqlite3.connect(Ledger().path) as db:
            cached = {row[0] for row in db.execute("SELECT catalog FROM catalog_state")}
        assert len(cached) == 1  # one bucket, one ident, whichever magic read it
    finally:
        magics.endpoint = None
        magics.catalog = ""
        for name in ("r", "f"):
            ip.user_ns.pop(name, None)


def test_a_record_get_is_retried_by_botocore_alone(s3_env, s3_bucket, homes, results, monkeypatch, capsys):
    """A record the store keeps answering 503 costs one GET's botocore tries, not those
    times the core's retries (the listing reads it again next time): the core retries
    only a body cut off mid-read, which botocore does not."""
    from botocore.awsrequest import AWSResponse

    catalog = f"s3://{s3_bucket}/catalog/"
    result = jp.publish(results, f"s3://{s3_bucket}/r/", catalog=catalog)
    homes("b")
    monkeypatch.setenv("JUPYTER_PUBLISH_RETRIES", "1")  # botocore: 2 retries after the first try
    gets: list[str] = []

    class Busy:
        def stream(self, **_):  # type: ignore[no-untyped-def]
            yield b"<Error><Code>ServiceUnavailable</Code><Message>busy</Message></Error>"

    def busy(request, **_):  # type: ignore[no-untyped-def]
        if request.method == "GET" and "/catalog/records/" in request.url and "list-type" not in request.url:
            gets.append(request.url)
            return AWSResponse(request.url, 503, {}, Busy())
        return None

    make = S3Backend._make_client

    def hooked(self):  # type: ignore[no-untyped-def]
        client = make(self)
        client.meta.events.register("before-send.s3", busy)
        return client

    monkeypatch.setattr(S3Backend, "_make_client", hooked)
    assert len(jobs(catalog=catalog)) == 0
    assert "could not be read now" in capsys.readouterr().err
    assert len(gets) == 3 and all(result.job_id in url for url in gets)


def test_a_reader_the_store_refuses_a_pack_does_not_send_one_every_listing(
    s3_env, s3_bucket, homes, results, requests, monkeypatch
):
    """A colleague who may read the catalog but not write it is refused the pack it
    would leave; that is remembered, so its next listings neither build nor send one."""
    from jupyter_publish.catalog import packs

    monkeypatch.setattr(packs, "MIN_RECORDS", 3)
    catalog = f"s3://{s3_bucket}/catalog/"
    for _ in range(3):
        jp.publish(results, f"s3://{s3_bucket}/r/{{jobID}}/", catalog=catalog)
    homes("b")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_env.reader_access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_env.reader_secret_key)
    requests.clear()
    for _ in range(3):
        assert len(jobs(catalog=catalog)) == 3
    puts = [path for method, path in requests if method == "PUT"]
    assert len(puts) == 1 and "catalog/packs/" in puts[0]
    assert "Contents" not in s3_env.client().list_objects_v2(Bucket=s3_bucket, Prefix="catalog/packs/")
