"""Attacks on issue 12 after its review fixes: packs named by coverage, listings that
start after the newest record read, one secret-name rule and public URLs, pending
records with claims. Anyone who may write to a team's catalog may write a record or a
pack (the trust model): what they write must never hide the rest of the team's jobs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
import zlib
from pathlib import Path

import pytest
from hostile import claiming_result

import jupyter_publish as jp
from jupyter_publish.catalog import open_catalog, packs, records
from jupyter_publish.ids import ulid
from jupyter_publish.ledger import Ledger

HOUR_MS = 3600 * 1000


def write_record(shared: Path, job_id: str, now_ms: int | None = None) -> str:
    """A well-formed failed job's record, written at ``now_ms`` (a writer's own clock)."""
    body = {"job_id": job_id, "status": "failed", "job": {"job_id": job_id, "status": "failed"}}
    name, data = records.make(body, now_ms)
    (shared / "records" / name).write_bytes(data)
    return name


def now_ms() -> int:
    return int(time.time() * 1000)


def listed(shared: Path) -> set[str]:
    with open_catalog(str(shared), ledger=Ledger()) as cat:
        cat.sync()
        return {r["job_id"] for r in cat.rows()}


def test_a_record_from_a_clock_a_day_ahead_never_hides_later_records(shared):
    """A colleague whose clock runs a day ahead (or anyone who may write a record) wrote
    one record named a day from now: every reader that read it listed only after it from
    then on, so no job the team published for the next day reached any of them."""
    write_record(shared, "j-before")
    assert listed(shared) == {"j-before"}
    write_record(shared, "j-ahead", now_ms() + 24 * HOUR_MS)
    assert listed(shared) == {"j-before", "j-ahead"}
    write_record(shared, "j-after")
    assert "j-after" in listed(shared)


def plant_pack(shared: Path, items: list[tuple[str, bytes]], first: str, last: str) -> str:
    doc = {"format": packs.FORMAT, "records": {n: d.decode() for n, d in items}, "unread": []}
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    data = deflate.compress(json.dumps(doc).encode()) + deflate.flush()
    name = f"{first}-{last}.{len(items)}.json.gz"
    (shared / "packs").mkdir(exist_ok=True)
    (shared / "packs" / name).write_bytes(data)
    return name


@pytest.mark.parametrize("ahead_ms", [0, 24 * HOUR_MS], ids=["now", "a-day-ahead"])
def test_a_pack_of_one_record_never_hides_the_teams_older_records_from_a_cold_reader(
    shared, tmp_path, monkeypatch, ahead_ms
):
    """A pack that holds one record (its own, well-formed) named as covering everything
    from the first possible time: a cold reader trusted the packs to hold every record
    before the newest they hold, listed records/ only from a little before it, and so
    never saw any job the team published earlier (every new machine, CI job, Binder)."""
    older = [write_record(shared, f"j-old-{i}", now_ms() - 2 * HOUR_MS) for i in range(3)]
    name, data = records.make({"job_id": "j-evil", "status": "failed"}, now_ms() + ahead_ms)
    (shared / "records" / name).write_bytes(data)
    plant_pack(shared, [(name, data)], "0" * 26, name[:26])
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_path / "cold"))
    found = listed(shared)
    assert {f"j-old-{i}" for i in range(3)} <= found, (older, found)
    write_record(shared, "j-new")
    assert "j-new" in listed(shared)


# -- secrets in the cell, the magic line and links: every catalog reader sees them -------

SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLE9"
"""Not registered, not in the environment: only its shape or its name gives it away."""


@pytest.mark.parametrize(
    "cell",
    [
        f"%env AWS_SECRET_ACCESS_KEY={SECRET}",
        f"!export AWS_SECRET_ACCESS_KEY={SECRET}",
        f"!PGPASSWORD={SECRET} psql -h db",
        f"secret = '''{SECRET}'''",
        f'password = """{SECRET}"""',
        f"TOKEN = ('{SECRET}')",
        f"pw: str = '{SECRET}'",
        f"headers = {{'Authorization': '{SECRET}'}}",
        f"link = 'https://b.s3.amazonaws.com/k?X-Amz-Signature%3D{SECRET}'",
        f"link = 'https://h/login?next=https%3A%2F%2Fb%2Fk%3FX-Amz-Signature%3D{SECRET}'",
        f"!git remote add origin https://{SECRET}@github.com/team/repo.git",
        f"%publish out s3://b/k secret_key={SECRET}",
        f"%publish out s3://b/k --secret-key {SECRET}",
    ],
)
def test_a_secret_in_a_cell_never_reaches_the_team_catalog(shared, tmp_path, cell):
    """Each was stored as typed in the cell source: in the ledger, and in the shared,
    immutable catalog record every team member, CI job and Binder reads (and packs)."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.txt").write_text("a")
    result = jp.publish(
        tmp_path / "r", catalog=str(shared), provenance={"cell_source": cell, "magic_line": "%%publish"}
    )
    assert result.provenance["cell_sha256"] == hashlib.sha256(cell.encode()).hexdigest()
    written = b"".join(p.read_bytes() for p in (shared / "records").iterdir())
    assert SECRET.encode() not in written and SECRET not in json.dumps(result.to_dict())


@pytest.mark.parametrize(
    "url",
    [
        f"https://h/k?next=https%3A%2F%2Fb%2Fk%3FX-Amz-Signature%3D{SECRET}",
        f"https://maps.example/api?key={SECRET}",
        f"https://h/k?api_key={SECRET}",
        f"https://h/k?password={SECRET}&x=1",
        f"https://h/k?auth={SECRET}",
    ],
)
def test_public_url_drops_a_query_that_carries_a_secret(url):
    """The catalog's and the RO-Crate's links: a signed link inside another's ``next=``,
    or a key under a name that says so, was kept in the query as is."""
    from jupyter_publish.redact import public_url

    kept = public_url(url)
    assert kept is not None and SECRET not in kept and kept.startswith("https://")


def test_ordinary_source_is_kept_as_typed():
    """What the new rules must not mask: code that names a secret but holds none."""
    from jupyter_publish.provenance import scrub_source

    for text in ("password = get_password()", "sorted(x, key=len)", "tokenizer = load('bert')",
                 "author = 'Ada Lovelace'", "run --output results/final", "%env MPLBACKEND=Agg"):  # fmt: skip
        assert scrub_source(text) == text


# -- a dead catalog someone named once ------------------------------------------------------


@pytest.fixture
def silent_port():
    """A loopback port that accepts connections and never answers (a firewall that drops,
    a VPN that went down): every request waits for its timeout."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()
    for conn in held:
        conn.close()


def test_a_dead_catalog_named_once_does_not_tax_every_later_operation(
    shared, tmp_path, monkeypatch, silent_port
):
    """One publish named an S3 catalog whose endpoint never answers: its record waits in
    the ledger, and every later catalog operation tried it again. A listing of another,
    healthy folder catalog took 188 s (botocore's retries times its timeouts), and every
    publish to it ~6 s more, for as long as the record waited (forever)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIACATALOGKEY0003")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s" * 40)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.txt").write_text("a")
    dead = f"s3://team/catalog/,opt=endpoint=http://127.0.0.1:{silent_port}"
    jp.publish(tmp_path / "r", catalog=dead)  # one short try: kept pending
    began = time.monotonic()
    jp.jobs(catalog=str(shared))
    assert time.monotonic() - began < 15, "a listing of a healthy catalog"
    took = []
    for _ in range(3):
        began = time.monotonic()
        jp.publish(tmp_path / "r", catalog=str(shared))
        took.append(time.monotonic() - began)
    assert sorted(took)[1] < 2, took  # the dead one is tried now and then, not by every publish
    with sqlite3.connect(Ledger().path) as db:
        assert db.execute("SELECT count(*) FROM catalog_pending").fetchone() == (1,)  # still waiting


# -- names a pack hands a reader ---------------------------------------------------------


def test_a_pack_cannot_make_a_reader_read_outside_the_catalog(shared, tmp_path, monkeypatch):
    """A pack's ``unread`` names were checked by their last path segment only, so
    ``../../other-team/records/NAME`` made a cold reader read another catalog on the same
    share (one the pack's writer may not read), list its job as this team's, and pack its
    bytes into this catalog, where the writer could read them."""
    other = tmp_path / "other-team"
    (other / "records").mkdir(parents=True)
    theirs = write_record(other, "j-private")
    write_record(shared, "j-ours")
    name, data = records.make({"job_id": "j-evil", "status": "failed"})
    (shared / "records" / name).write_bytes(data)
    doc = {
        "format": packs.FORMAT,
        "records": {name: data.decode()},
        "unread": [f"../../other-team/records/{theirs}"],
    }
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    (shared / "packs").mkdir()
    planted = f"{name[:26]}-{name[:26]}.1.json.gz"
    (shared / "packs" / planted).write_bytes(deflate.compress(json.dumps(doc).encode()) + deflate.flush())
    monkeypatch.setattr(packs, "MIN_RECORDS", 1)
    found = listed(shared)
    assert found == {"j-ours", "j-evil"}
    for pack in (shared / "packs").iterdir():  # the reader's own pack, if it left one
        if pack.name != planted:
            assert b"j-private" not in zlib.decompress(pack.read_bytes(), 31)


# -- what a record shows on a colleague's terminal ---------------------------------------


def test_a_record_cannot_drive_a_colleagues_terminal(shared, capsys):
    """A record's name, user, host and error were printed raw by ``jupyter-publish jobs
    --catalog``: ESC sequences cleared the screen, set the window title, or moved up and
    erased the rows above (hiding other jobs, or drawing fake ones); a right-to-left
    override reordered what was shown."""
    from jupyter_publish.cli import main

    write_record(shared, "j-ours")
    body = {
        "job_id": "j-evil", "status": "failed", "user": "eve\x1b]0;owned\x07", "host": "h\rFAKE",
        "job": {"job_id": "j-evil", "status": "failed", "name": "n\x1b[2J\u202etxt.exe",
                "error": "\x1b[1A\x1b[2K"},
    }  # fmt: skip
    name, data = records.make(body)
    (shared / "records" / name).write_bytes(data)
    assert main(["jobs", "--catalog", str(shared)]) == 0
    out = capsys.readouterr().out
    assert "j-ours" in out and "j-evil" in out
    assert not any(ch in out for ch in "\x1b\x07\r\u202e"), repr(out)


# -- dedup: a checksum the writer claims --------------------------------------------------


@pytest.mark.servers
def test_a_checksum_header_the_writer_lies_in_never_makes_a_publish_copy_other_bytes(
    s3_env, s3_bucket, shared, tmp_path
):
    """Dedup trusts S3's own ``ChecksumSHA256`` for a colleague's object. A writer that
    sends that checksum itself, for other bytes: if the store kept it unchecked, a forged
    record placing our sha256 there made our publish copy their bytes under our key."""
    import base64
    import os

    from botocore.exceptions import ClientError

    from jupyter_publish.results import PublishedResult

    mine = tmp_path / "mine"
    mine.mkdir()
    data = os.urandom(2 << 20)
    (mine / "weights.bin").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    client = s3_env.client()
    with contextlib.suppress(ClientError):  # a store that checks the claim refuses it
        client.put_object(
            Bucket=s3_bucket, Key="evil/weights.bin", Body=os.urandom(2 << 20),
            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha)).decode(),
        )  # fmt: skip
    shape = claiming_result(tmp_path, s3_bucket, sha)
    assert PublishedResult.from_dict(shape).job_id == "j-evil"
    body = {"job_id": "j-evil", "status": "published", "job": {"job_id": "j-evil"}, "result": shape}
    name, raw = records.make(body)
    (shared / "records" / name).write_bytes(raw)
    with open_catalog(str(shared), ledger=Ledger()) as cat:
        cat.sync()
    result = jp.publish(mine, f"s3://{s3_bucket}/runs/{{jobID}}/", archive=False, catalog=str(shared))
    got = client.get_object(Bucket=s3_bucket, Key=f"runs/{result.job_id}/weights.bin")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == sha, "the published object is not the bytes recorded"


# -- a job ID prefix: the ledger's job, or the catalog's -----------------------------------


def test_a_prefix_that_names_a_local_job_and_a_colleagues_is_ambiguous(shared, tmp_path):
    """Job IDs begin with their time, so a prefix a user copies from ``jobs --catalog``
    (a colleague's job) often also names a job of their own from the same minutes: the
    ledger's job was fetched, silently, and the colleague's never considered."""
    from jupyter_publish.errors import AmbiguousJobError

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.txt").write_text("a")
    mine = jp.publish(tmp_path / "r").job_id  # no catalog: only in this ledger
    theirs = mine[:12] + ("Z" if mine[12] != "Z" else "Y") + mine[13:]
    write_record(shared, theirs)
    assert theirs in set(jp.jobs(catalog=str(shared))["job_id"])  # the listing the user read
    with pytest.raises(AmbiguousJobError, match="ambiguous"):
        jp.fetch(mine[:12], tmp_path / "out", catalog=str(shared))
    assert jp.fetch(mine, tmp_path / "out", catalog=str(shared)).verified  # the whole ID: no doubt


def test_a_pack_name_claiming_everything_does_not_stop_readers_packing(shared, tmp_path, monkeypatch):
    """A pack named as holding a billion records from the first time to the last (its
    bytes anything): every reader took its records as packed already by it and never left
    a pack, so every cold reader GETs every record one by one (and warns), for good."""
    monkeypatch.setattr(packs, "MIN_RECORDS", 4)
    for i in range(6):
        write_record(shared, f"j-{i}")
    (shared / "packs").mkdir()
    (shared / "packs" / f"{'0' * 26}-{'7' + 'Z' * 25}.999999999.json.gz").write_bytes(b"not a pack")
    with open_catalog(str(shared), ledger=Ledger()) as cat:
        report = cat.sync()
    assert report.packed is not None and report.packed.endswith(".6.json.gz")
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_path / "cold"))
    with open_catalog(str(shared), ledger=Ledger()) as cat:
        cold = cat.sync()
    assert (cold.from_packs, cold.read) == (6, 0)


# -- a folder catalog on a shared drive: what else a name in records/ can be ---------------


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_record_name_that_is_no_file_never_hangs_or_floods_a_listing(shared, tmp_path, kind):
    """Anyone who may write to the shared folder made a record's name a named pipe (every
    reader's ``jobs --catalog`` then blocked in open() for good) or a link to /dev/zero
    (listed as 0 bytes, read to 256 MiB, 32 at once: GiBs of memory per listing)."""
    import os
    import subprocess
    import sys

    write_record(shared, "j-ours")
    name = f"{ulid()}.j-evil.{'0' * 64}.json"
    if kind == "fifo":
        os.mkfifo(shared / "records" / name)
    else:
        for i in range(4):
            os.symlink("/dev/zero", shared / "records" / name.replace("j-evil", f"j-evil{i}"))
    script = (
        "import resource, sys\n"
        "import jupyter_publish as jp\n"
        "print(sorted(jp.jobs(catalog=sys.argv[1])['job_id']))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
    )
    env = {**os.environ, "JUPYTER_PUBLISH_HOME": str(tmp_path / "reader")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(shared)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "'j-ours'" in done.stdout
    assert int(done.stdout.split()[-1]) < 500, "peak RSS (MiB) of the listing"


# -- a later record of someone else's job --------------------------------------------------


def test_a_later_failed_record_cannot_hide_a_published_job(shared, tmp_path):
    """A job once published stays published (a failed job may be resumed and published,
    never the reverse), but the listing showed each job's newest record: anyone who may
    write one made a colleague's published job show as failed, with any error, in every
    team member's ``jobs --catalog``."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.txt").write_text("a")
    job = jp.publish(tmp_path / "r", catalog=str(shared)).job_id
    body = {
        "job_id": job,
        "status": "failed",
        "job": {"job_id": job, "status": "failed", "error": "withdrawn"},
    }
    name, data = records.make(body)
    (shared / "records" / name).write_bytes(data)
    tmp_home = tmp_path / "colleague"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_home))
        rows = jp.jobs(catalog=str(shared))
    (row,) = rows[rows["job_id"] == job].to_dict("records")
    assert row["status"] == "published" and row["error"] != "withdrawn"


def test_a_packs_unread_list_cannot_send_a_cold_reader_after_records_that_do_not_exist(
    shared, tmp_path, monkeypatch
):
    """A pack's ``unread`` names were each read one by one by every cold reader: a pack
    of millions of made-up names (they gzip to little) cost each one a GET per name, and
    each missing one counted as a failed read, so no listing ever moved past it or left
    a pack. Every record that exists is listed anyway (a cold start lists them all)."""
    write_record(shared, "j-ours")
    name, data = records.make({"job_id": "j-evil", "status": "failed"})
    (shared / "records" / name).write_bytes(data)
    made_up = [f"{ulid()}.j-ghost{i}.{'0' * 64}.json" for i in range(2000)]
    doc = {"format": packs.FORMAT, "records": {name: data.decode()}, "unread": made_up}
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    (shared / "packs").mkdir()
    (shared / "packs" / f"{name[:26]}-{name[:26]}.1.json.gz").write_bytes(
        deflate.compress(json.dumps(doc).encode()) + deflate.flush()
    )
    with open_catalog(str(shared), ledger=Ledger()) as cat:
        report = cat.sync()
        assert {r["job_id"] for r in cat.rows()} == {"j-ours", "j-evil"}
    assert report.failed == [] and report.read <= 2, (len(report.failed), report.read)


def test_a_url_encoded_session_token_is_masked_whole():
    """A security token is base64: in a link it carries ``%2F``/``%2B``/``%3D``, and the
    whole value is the secret, not its text up to the first escape."""
    from jupyter_publish.provenance import scrub_source

    head, tail = SECRET[:12], SECRET[12:]
    for text in (
        f"u = 'https://b/k?X-Amz-Security-Token={head}%2F{tail}%3D&X-Amz-Date=1'",
        f"u = 'https://h/?next=https%3A%2F%2Fb%3FX-Amz-Security-Token%3D{head}%252F{tail}%26x%3D1'",
    ):
        out = scrub_source(text)
        assert head not in out and tail not in out, out
