"""The team catalog in a shared folder: two homes (separate ledgers) and one catalog.

The second home shares the first one's local store (as two machines share a network
drive), so a job published on the first is listed and fetched, verified, on the second.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.api import begin_job, jobs
from jupyter_publish.catalog import CATALOG_ENV, TamperedRecordError, open_catalog, parse, records
from jupyter_publish.cli import main
from jupyter_publish.errors import DestinationError, IntegrityError, NotFoundError, OptionError, PublishError
from jupyter_publish.ids import short_job_id
from jupyter_publish.ledger import Ledger


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """``use("a")`` / ``use("b")`` switch machines: own home and ledger, one shared store."""
    a, b = tmp_path / "home-a", tmp_path / "home-b"
    a.mkdir()
    b.mkdir()
    (a / "store").mkdir(mode=0o700)
    (b / "store").symlink_to(a / "store")

    def use(name: str) -> Path:
        home = {"a": a, "b": b}[name]
        monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(home))
        return home

    use("a")
    return use


def record_files(shared: Path) -> list[Path]:
    return sorted((shared / "records").glob("*.json"))


# -- the record format ---------------------------------------------------------------


def test_a_record_proves_its_name_and_job():
    name, data = records.make(
        {"job_id": "j-01ABCDEFGHJKMNPQRSTVWXYZ01", "status": "published", "result": None}
    )
    parsed = records.parse_name(name)
    assert parsed is not None and parsed.job_id == "j-01ABCDEFGHJKMNPQRSTVWXYZ01"
    assert parsed.sha256 == hashlib.sha256(data).hexdigest()
    assert records.verify(f"s3://b/p/records/{name}", data)["status"] == "published"
    with pytest.raises(TamperedRecordError, match="bytes have sha256"):
        records.verify(name, data.replace(b"published", b"failed\x20\x20\x20"))
    other = name.replace("j-01ABCDEFGHJKMNPQRSTVWXYZ01", "j-01ABCDEFGHJKMNPQRSTVWXYZ02")
    with pytest.raises(TamperedRecordError, match="holds job"):
        records.verify(other, data)
    later = "7" + name[1:]
    with pytest.raises(TamperedRecordError, match="renamed"):
        records.verify(later, data)
    with pytest.raises(TamperedRecordError, match="name is not"):
        records.verify("records/whatever.json", data)
    # Names sort by write time: a record written later lists after, whatever its job.
    first, _ = records.make({"job_id": "j-9"}, now_ms=1_000)
    second, _ = records.make({"job_id": "j-1"}, now_ms=2_000)
    assert first < second
    assert records.written_floor(second[:26], 1_000) <= first < second


def test_locations_parse_and_settle(monkeypatch, tmp_path):
    s3 = parse("s3://team/cat,opt=endpoint=http://127.0.0.1:9")
    assert (s3.kind, s3.bucket, s3.prefix, s3.text) == ("s3", "team", "cat/", "s3://team/cat/")
    assert s3.options == {"endpoint": "http://127.0.0.1:9"}
    # The job's own options fill the gaps on the same endpoint, never across endpoints.
    same = s3.with_job_options("s3", {"endpoint": "http://127.0.0.1:9", "profile": "team"})
    assert same.options == {"endpoint": "http://127.0.0.1:9", "profile": "team"}
    assert s3.with_job_options("s3", {"endpoint": "http://other", "profile": "x"}).options == s3.options
    assert parse("s3://team/").with_job_options("s3", {"region": "eu-west-1"}).options == {
        "region": "eu-west-1"
    }
    assert parse("s3://team/").with_job_options("local", {"region": "x"}).options == {}
    folder = parse(f"file://{tmp_path}/c")
    assert folder.kind == "folder" and folder.path == tmp_path / "c"
    with pytest.raises(DestinationError, match="a catalog is"):
        parse("ipfs://x")
    with pytest.raises(DestinationError, match="does not apply"):
        parse("s3://team/c,opt=api=http://x")


# -- two machines, one folder catalog ---------------------------------------------------


def test_a_job_published_on_one_home_is_listed_and_fetched_verified_on_the_other(
    homes, results, shared, tmp_path, capsys
):
    published = jp.publish(results, catalog=str(shared))
    with pytest.raises(PublishError):
        jp.publish(tmp_path / "missing", catalog=str(shared))  # a failed job is recorded too
    assert len(record_files(shared)) == 2
    failed_id = Ledger().jobs()[0]["job_id"]

    homes("b")
    with pytest.raises(NotFoundError):
        Ledger().result(published.job_id)  # the second ledger never saw it
    frame = jobs(catalog=str(shared))
    assert list(frame["job_id"]) == sorted([published.job_id, failed_id], reverse=True)
    row = frame.set_index("job_id").loc[published.job_id]
    assert row["status"] == "published" and row["n_files"] == 2 and row["user"] and row["host"]
    assert frame.set_index("job_id").loc[failed_id, "status"] == "failed"
    assert "missing" in frame.set_index("job_id").loc[failed_id, "error"]

    fetched = jp.fetch(published.job_id, tmp_path / "out", catalog=str(shared))
    assert fetched.verified and fetched.job_id == published.job_id
    assert (tmp_path / "out" / "metrics.json").read_text() == '{"loss": 0.1}'
    # A unique prefix is enough, as for the local ledger.
    assert jp.fetch(published.job_id[:20], tmp_path / "out2", catalog=str(shared)).verified
    with pytest.raises(NotFoundError, match="status failed"):
        jp.fetch(failed_id, tmp_path / "out3", catalog=str(shared))
    assert "warning" not in capsys.readouterr().err


def test_the_catalog_comes_from_the_environment_and_can_be_turned_off(
    homes, results, shared, tmp_path, monkeypatch
):
    monkeypatch.setenv(CATALOG_ENV, str(shared))
    first = jp.publish(results)
    jp.publish(results, catalog="")  # off for this one
    assert [records.parse_name(p.name).job_id for p in record_files(shared)] == [first.job_id]  # type: ignore[union-attr]
    homes("b")
    assert jp.fetch(first.job_id, tmp_path / "out").verified  # the configured catalog, by default
    assert list(jobs(catalog=True)["job_id"]) == [first.job_id]


def test_a_tampered_record_is_refused_naming_its_key(homes, results, shared, tmp_path):
    result = jp.publish(results, catalog=str(shared))
    path = record_files(shared)[0]
    doc = json.loads(path.read_bytes())
    doc["result"]["manifest"][0]["sha256"] = "0" * 64  # point the check at other bytes
    path.write_bytes(records.encode(doc))
    homes("b")
    with pytest.raises(TamperedRecordError, match=rf"{path.name} refused: its bytes have sha256") as caught:
        jp.fetch(result.job_id, tmp_path / "out", catalog=str(shared))
    assert "\n" not in str(caught.value) and not (tmp_path / "out").exists()
    assert result.job_id not in set(jobs(catalog=str(shared))["job_id"])  # never listed as good


def test_a_record_renamed_to_another_job_is_refused(homes, results, shared, tmp_path):
    real = jp.publish(results, catalog=str(shared))
    path = record_files(shared)[0]
    fake_id = "j-" + "7" * 26
    renamed = path.with_name(path.name.replace(real.job_id, fake_id))
    path.rename(renamed)
    homes("b")
    with pytest.raises(TamperedRecordError, match=rf"{renamed.name} refused: it holds job"):
        jp.fetch(fake_id, tmp_path / "out", catalog=str(shared))


def test_a_replaced_object_fails_verification(homes, results, shared, tmp_path):
    result = jp.publish(results, catalog=str(shared), archive=False)
    digest = hashlib.sha256(b'{"loss": 0.1}').hexdigest()
    stored = homes("a") / "store" / "blobs" / "sha256" / digest[:2] / digest  # content-addressed
    stored.chmod(0o600)
    stored.write_text('{"loss": 9.9}')
    homes("b")
    with pytest.raises(IntegrityError):
        jp.fetch(result.job_id, tmp_path / "out", catalog=str(shared))


def test_a_record_changed_after_it_was_read_is_no_longer_trusted(homes, results, shared, tmp_path):
    result = jp.publish(results, catalog=str(shared))
    homes("b")
    assert len(jobs(catalog=str(shared))) == 1  # read and cached
    path = record_files(shared)[0]
    path.write_bytes(path.read_bytes() + b" ")
    assert len(jobs(catalog=str(shared))) == 0
    with pytest.raises(TamperedRecordError, match="changed after it was read"):
        jp.fetch(result.job_id, tmp_path / "out", catalog=str(shared))


def test_the_cache_is_checked_again_when_used(homes, results, shared, tmp_path):
    result = jp.publish(results, catalog=str(shared))
    homes("b")
    jobs(catalog=str(shared))
    ledger = Ledger()
    with sqlite3.connect(ledger.path) as db:  # someone edits the cached copy
        (data,) = db.execute("SELECT record FROM catalog_records").fetchone()
        db.execute("UPDATE catalog_records SET record=?", (bytes(data).replace(b"metrics", b"metricz"),))
    with pytest.raises(TamperedRecordError, match="bytes have sha256"):
        jp.fetch(result.job_id, tmp_path / "out", catalog=str(shared))


def test_a_listing_reads_only_records_it_has_not_read(homes, results, shared, monkeypatch):
    from jupyter_publish.catalog.stores import FolderStore

    for _ in range(3):
        jp.publish(results, catalog=str(shared))
    reads: list[str] = []
    real_get = FolderStore.get
    monkeypatch.setattr(FolderStore, "get", lambda self, name: reads.append(name) or real_get(self, name))
    homes("b")
    assert len(jobs(catalog=str(shared))) == 3 and len(reads) == 3
    homes("a")
    newest = jp.publish(results, catalog=str(shared))
    homes("b")
    reads.clear()
    frame = jobs(catalog=str(shared))
    assert len(frame) == 4 and frame["job_id"][0] == newest.job_id
    assert [records.parse_name(n).job_id for n in reads] == [newest.job_id]  # type: ignore[union-attr]
    reads.clear()
    assert len(jobs(catalog=str(shared))) == 4 and reads == []


def test_a_record_that_cannot_be_written_waits_and_is_sent_later(homes, results, shared, tmp_path, capsys):
    shutil.rmtree(shared)  # the network drive is not mounted
    result = jp.publish(results, catalog=str(shared))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning" in err and result.job_id in err and "sent again" in err
    assert "does not exist" in err
    assert Ledger().status(result.job_id)["status"] == "published"  # the publish stands
    with sqlite3.connect(Ledger().path) as db:
        assert db.execute("SELECT job_id FROM catalog_pending").fetchall() == [(result.job_id,)]
    assert not shared.exists()  # never created in its place
    shared.mkdir()
    assert list(jobs(catalog=str(shared))["job_id"]) == [result.job_id]  # sent, then listed
    with sqlite3.connect(Ledger().path) as db:
        assert db.execute("SELECT count(*) FROM catalog_pending").fetchone() == (0,)
    homes("b")
    assert jp.fetch(result.job_id, tmp_path / "out", catalog=str(shared)).verified


def test_a_failed_cell_job_reaches_the_catalog(homes, shared):
    job = begin_job(name="cell", catalog=str(shared))
    job.fail("ZeroDivisionError: division by zero")
    homes("b")
    frame = jobs(catalog=str(shared))
    assert list(frame["status"]) == ["failed"] and "ZeroDivisionError" in frame["error"][0]


def test_the_command_line_lists_and_fetches_from_the_catalog(homes, results, shared, tmp_path, capsys):
    assert main(["publish", str(results), "--catalog", str(shared), "--json", "-q"]) == 0
    job_id = json.loads(capsys.readouterr().out)["job_id"]
    homes("b")
    assert main(["jobs", "--catalog", str(shared), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["job_id"] for r in listed] == [job_id] and listed[0]["user"]
    assert main(["jobs", "--catalog", str(shared)]) == 0
    short = short_job_id(job_id)  # what the table shows, and what a person types back
    assert short in capsys.readouterr().out
    assert main(["fetch", job_id, "--catalog", str(shared), "--to", str(tmp_path / "o"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verified"] is True
    assert main(["fetch", short, "--catalog", str(shared), "--to", str(tmp_path / "s"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["job_id"] == job_id
    os.environ.pop(CATALOG_ENV, None)
    assert main(["jobs", "--catalog"]) == 2  # bad usage
    assert "no catalog given" in capsys.readouterr().err


def test_open_catalog_without_a_location_says_how(monkeypatch):
    monkeypatch.delenv(CATALOG_ENV, raising=False)
    with pytest.raises(OptionError, match=CATALOG_ENV):
        open_catalog()


# -- packs: what one cold reader read one by one, the next reads in one GET ---------------


def _publish_some(results: Path, shared: Path, count: int) -> list[str]:
    return [jp.publish(results, catalog=str(shared)).job_id for _ in range(count)]


def test_a_cold_reader_leaves_a_pack_and_the_next_one_reads_it(homes, results, shared, tmp_path, monkeypatch):
    from jupyter_publish.catalog import packs
    from jupyter_publish.catalog.stores import FolderStore

    monkeypatch.setattr(packs, "MIN_RECORDS", 3)
    ids = _publish_some(results, shared, 4)
    reads: list[str] = []
    real_get = FolderStore.get
    monkeypatch.setattr(
        FolderStore,
        "get",
        lambda self, name, folder="records/": reads.append(folder) or real_get(self, name, folder),
    )
    homes("b")
    with open_catalog(str(shared)) as cat:
        first = cat.sync()
    assert (first.read, first.from_packs) == (4, 0) and first.packed
    assert [p.name for p in (shared / "packs").iterdir()] == [first.packed]
    (tmp_path / "home-c").mkdir()
    (tmp_path / "home-c" / "store").symlink_to(tmp_path / "home-a" / "store")
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_path / "home-c"))  # a third, cold machine
    reads.clear()
    with open_catalog(str(shared)) as cat:
        second = cat.sync()
    assert (second.read, second.from_packs, second.packed) == (0, 4, None)
    assert reads == ["packs/"]  # one GET for four records
    assert sorted(jobs(catalog=str(shared))["job_id"]) == sorted(ids)
    assert jp.fetch(ids[0], tmp_path / "out", catalog=str(shared)).verified


def test_a_pack_cannot_change_a_record_nor_hide_a_refused_one(homes, results, shared, tmp_path, monkeypatch):
    from jupyter_publish.catalog import packs

    monkeypatch.setattr(packs, "MIN_RECORDS", 2)
    ids = _publish_some(results, shared, 4)
    items = [(p.name, p.read_bytes()) for p in record_files(shared)]
    forged = dict(items[:3])
    first = items[0][0]
    forged[first] = forged[first].replace(b"metrics.json", b"metricz.json")  # edited inside the pack
    tampered = record_files(shared)[3]  # refused by the pack's writer, say; and it is tampered
    tampered.write_bytes(tampered.read_bytes().replace(b"metrics.json", b"metricz.json"))
    name, data = packs.make(sorted(forged.items()), unread=[tampered.name])
    (shared / "packs").mkdir()
    (shared / "packs" / name).write_bytes(data)
    homes("b")
    with open_catalog(str(shared)) as cat:
        report = cat.sync()
    assert report.from_packs == 2  # the edited one was read alone, and so was the unread one
    assert report.read == 2 and report.refused == [tampered.name]
    assert sorted(jobs(catalog=str(shared))["job_id"]) == sorted(ids[:3])
    with pytest.raises(TamperedRecordError, match="refused"):
        jp.fetch(ids[3], tmp_path / "x", catalog=str(shared))
    (shared / "packs" / name).write_bytes(data[:-1] + b"x")  # a pack that is not what its name says
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_path / "home-c"))
    with open_catalog(str(shared)) as cat:
        assert cat.sync().read == 4


def test_a_reader_that_keeps_up_packs_what_it_read_once_it_is_enough(
    homes, results, shared, tmp_path, monkeypatch
):
    from jupyter_publish.catalog import packs

    monkeypatch.setattr(packs, "MIN_RECORDS", 3)
    ids = _publish_some(results, shared, 2)
    homes("b")
    with open_catalog(str(shared)) as cat:
        assert cat.sync().packed is None  # two read: not worth a pack yet
    homes("a")
    ids += _publish_some(results, shared, 2)
    homes("b")
    with open_catalog(str(shared)) as cat:
        report = cat.sync()
    assert report.read == 2 and report.packed is not None and report.packed.split(".")[1] == "4"
    with open_catalog(str(shared)) as cat:
        assert cat.sync().packed is None  # nothing left to pack
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_path / "home-c"))
    with open_catalog(str(shared)) as cat:
        cold = cat.sync()
    assert (cold.from_packs, cold.read, cold.packed) == (4, 0, None)
    assert sorted(r["job_id"] for r in cat.rows()) == sorted(ids)


def traced_sql(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement run from here on, in order (each new connection is traced)."""
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args, **kwargs):  # type: ignore[no-untyped-def]
        db = connect(*args, **kwargs)
        db.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(sqlite3, "connect", traced)
    return statements


def test_a_listing_counts_what_it_could_pack_without_loading_records(homes, results, shared, monkeypatch):
    """Whether there is enough to pack is a count: a listing below the threshold loads
    no record's bytes from the cache (it loaded every unpacked one on every listing)."""
    import re

    _publish_some(results, shared, 3)
    homes("b")
    statements = traced_sql(monkeypatch)
    assert len(jobs(catalog=str(shared))) == 3
    assert len(jobs(catalog=str(shared))) == 3
    loads = [s for s in statements if re.search(r"SELECT\b[^;]*\brecord\b[^;]*FROM catalog_records", s)]
    assert statements and not loads, loads


def test_packs_are_named_for_what_they_cover_and_not_written_twice(
    homes, results, shared, tmp_path, monkeypatch
):
    """A pack is FIRST-LAST.COUNT; a reader about to write one leaves out what a listed
    pack covers already (N readers left N overlapping packs), and a cold reader still
    lists everything."""
    from jupyter_publish.catalog import packs

    monkeypatch.setattr(packs, "MIN_RECORDS", 3)
    home_c = tmp_path / "home-c"
    home_c.mkdir()
    (home_c / "store").symlink_to(tmp_path / "home-a" / "store")
    ids = _publish_some(results, shared, 2)
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(home_c))
    assert len(jobs(catalog=str(shared))) == 2  # C reads two: not worth a pack
    homes("a")
    ids += _publish_some(results, shared, 1)
    homes("b")
    assert len(jobs(catalog=str(shared))) == 3  # B reads three, packs them
    names = sorted(p.name for p in record_files(shared))
    (pack,) = [p.name for p in (shared / "packs").iterdir()]
    assert pack == f"{names[0][:26]}-{names[-1][:26]}.3.json.gz"
    homes("a")
    ids += _publish_some(results, shared, 1)
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(home_c))
    assert len(jobs(catalog=str(shared))) == 4  # C holds four unpacked; B's pack covers three
    assert [p.name for p in (shared / "packs").iterdir()] == [pack]
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_path / "home-d"))
    assert sorted(jobs(catalog=str(shared))["job_id"]) == sorted(ids)


def test_a_listing_reads_why_records_were_refused_once(homes, results, shared, monkeypatch, capsys):
    """Each refused record is warned about with its reason, read from the cache in one
    query, not one query per refused record (quadratic in a catalog someone flooded)."""
    _publish_some(results, shared, 4)
    for path in record_files(shared)[:3]:
        path.write_bytes(path.read_bytes().replace(b"metrics.json", b"metricz.json"))
    homes("b")
    statements = traced_sql(monkeypatch)
    with open_catalog(str(shared)) as cat:
        assert len(cat.sync().refused) == 3
    assert capsys.readouterr().err.count("refused: ") == 3
    assert sum("problem IS NOT NULL" in s for s in statements) <= 1


def test_a_record_sent_late_is_named_when_sent_so_readers_still_see_it(homes, results, shared, monkeypatch):
    from jupyter_publish.catalog import catalog as catalog_module

    monkeypatch.setattr(catalog_module, "LOOKBACK_MS", 0)  # no margin at all
    shutil.rmtree(shared)
    late = jp.publish(results, catalog=str(shared))  # kept pending
    shared.mkdir()
    homes("b")
    early = jp.publish(results, catalog=str(shared))
    assert list(jobs(catalog=str(shared))["job_id"]) == [early.job_id]
    homes("a")
    assert open_catalog(str(shared)).flush_pending() is None  # sent now, named now
    homes("b")
    assert sorted(jobs(catalog=str(shared))["job_id"]) == sorted([late.job_id, early.job_id])


# -- the magics and the project's settings ----------------------------------------------


def test_the_magics_write_and_read_the_catalog_from_pyproject(
    homes, results, shared, ip, tmp_path, monkeypatch
):
    from IPython.core.error import UsageError
    from IPython.utils.capture import capture_output

    monkeypatch.delenv(CATALOG_ENV, raising=False)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(f'[tool.jupyter_publish]\ncatalog = "{shared}"\n')
    monkeypatch.chdir(project)
    magics = ip.magics_manager.registry["PublishMagics"]
    try:
        assert magics.apply_project_settings() == project / "pyproject.toml"
        assert magics.catalog == str(shared)
        with capture_output():
            ip.run_line_magic("publish", f"{results} --out r")
            failed = ip.run_cell("%%publish\nraise ValueError('bad cell')")
        assert failed.error_in_exec is not None
        job_id = ip.user_ns["r"].job_id
        homes("b")
        frame = ip.run_line_magic("jobs", "--catalog")
        assert len(frame) == 2 and set(frame["status"]) == {"published", "failed"}
        assert "bad cell" in frame.set_index("status").loc["failed", "error"]
        with capture_output():  # PublishMagics.catalog is where unknown job IDs are looked up
            ip.run_line_magic("fetch", f"{job_id} --to {tmp_path / 'm'} --no-preview --out f")
        assert ip.user_ns["f"].verified
        magics.catalog = ""
        with pytest.raises(UsageError, match="no catalog"):
            ip.run_line_magic("jobs", "--catalog")
        assert list(ip.run_line_magic("jobs", f"--catalog {shared}")["job_id"]).count(job_id) == 1
    finally:
        magics.catalog = ""
        magics.project_file = None
        for name in ("r", "f"):
            ip.user_ns.pop(name, None)


def test_a_malformed_catalog_fails_before_anything_is_published(results, monkeypatch):
    monkeypatch.setenv(CATALOG_ENV, "ftp://nowhere/")
    with pytest.raises(DestinationError, match="a catalog is"):
        jp.publish(results)
    assert Ledger().jobs() == []


def test_any_catalog_operation_sends_every_catalog_s_waiting_records(results, shared, tmp_path):
    """A record that waits for one catalog is sent by a listing of, or a publish to,
    another: the pending table is flushed whole (its locations as recorded)."""
    later, other = tmp_path / "later", tmp_path / "other"
    first = jp.publish(results, catalog=str(later))  # the share is not mounted yet: it waits
    second = jp.publish(results, catalog=str(other))
    later.mkdir()
    other.mkdir()
    jobs(catalog=str(shared))  # another catalog's listing
    assert [p.name.split(".")[1] for p in record_files(later)] == [first.job_id]
    assert [p.name.split(".")[1] for p in record_files(other)] == [second.job_id]
    with sqlite3.connect(Ledger().path) as db:
        assert db.execute("SELECT count(*) FROM catalog_pending").fetchone() == (0,)
    third = jp.publish(results, catalog=str(tmp_path / "third"))
    (tmp_path / "third").mkdir()
    jp.publish(results, catalog=str(shared))  # another catalog's write
    assert [p.name.split(".")[1] for p in record_files(tmp_path / "third")] == [third.job_id]


def test_two_flushes_at_once_send_a_waiting_record_once(results, tmp_path, monkeypatch):
    """Each waiting record is claimed before its PUT: two processes (here two threads,
    each with its own ledger connection) flushing together write it once, not twice."""
    import threading

    from jupyter_publish.catalog.catalog import Catalog
    from jupyter_publish.catalog.stores import FolderStore

    later = tmp_path / "later"
    result = jp.publish(results, catalog=str(later))
    later.mkdir()
    both = threading.Barrier(2, timeout=2)
    put = FolderStore.put

    def together(self, name, data, folder="records/"):  # type: ignore[no-untyped-def]
        with contextlib.suppress(threading.BrokenBarrierError):
            both.wait()  # both senders inside a PUT at once, if both got that far
        return put(self, name, data, folder)

    monkeypatch.setattr(FolderStore, "put", together)
    errors: list[BaseException] = []

    def flush() -> None:
        try:
            with Catalog(parse(str(later)), ledger=Ledger()) as cat:
                cat.flush_pending()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=flush) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert [p.name.split(".")[1] for p in record_files(later)] == [result.job_id]
    with sqlite3.connect(Ledger().path) as db:
        assert db.execute("SELECT count(*) FROM catalog_pending").fetchone() == (0,)


def test_an_unreachable_catalog_costs_a_publish_one_short_try(results, monkeypatch):
    """The record's PUT after a publish is one attempt (no botocore retries, a short
    timeout): the pending table is its retry, so a dead catalog barely delays the publish."""
    from jupyter_publish.backends.s3 import S3Backend
    from jupyter_publish.testing.process import free_ports

    sent: list[str] = []
    make = S3Backend._make_client

    def counted(self):  # type: ignore[no-untyped-def]
        client = make(self)
        client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
        return client

    monkeypatch.setattr(S3Backend, "_make_client", counted)
    (port,) = free_ports(1)  # a closed loopback port: every connection is refused
    catalog = f"s3://team-bucket/catalog/,opt=endpoint=http://127.0.0.1:{port}"
    keys = {"aws_access_key_id": "AKIACATALOGKEY0002", "aws_secret_access_key": "s" * 40}
    began = time.monotonic()
    result = jp.publish(results, catalog=catalog, catalog_options=keys)
    took = time.monotonic() - began
    assert Ledger().status(result.job_id)["status"] == "published"
    with sqlite3.connect(Ledger().path) as db:
        pending = [row[0] for row in db.execute("SELECT job_id FROM catalog_pending")]
    assert pending == [result.job_id]
    assert len(sent) == 1, sent  # one try, not botocore's five
    assert took < 10


def test_catalog_keys_are_used_but_never_stored_or_shown(results, monkeypatch, capsys):
    from jupyter_publish.testing.process import free_ports

    monkeypatch.setenv("JUPYTER_PUBLISH_RETRIES", "0")
    secret = "catalog-secret-" + "x" * 20
    (port,) = free_ports(1)  # nothing listens there: the write fails, the record waits
    catalog = f"s3://team-bucket/catalog/,opt=endpoint=http://127.0.0.1:{port}"
    keys = {"aws_access_key_id": "AKIACATALOGKEY0001", "aws_secret_access_key": secret}
    result = jp.publish(results, catalog=catalog, catalog_options=keys)
    err = capsys.readouterr().err
    assert result.job_id in err and "sent again" in err and secret not in err
    ledger = Ledger()
    assert ledger.status(result.job_id)["status"] == "published"
    with sqlite3.connect(ledger.path) as db:
        stored = "\n".join(
            str(row) for table in ("jobs", "catalog_pending") for row in db.execute(f"SELECT * FROM {table}")
        )
    assert secret not in stored and f"127.0.0.1:{port}" in stored  # the endpoint is kept, the key is not


def test_a_malformed_catalog_fails_when_the_job_begins(tmp_path, monkeypatch):
    """A %%publish cell's job begins before the cell runs: a bad catalog must stop it
    then, not after an hour of work."""
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_path / "home"))
    with pytest.raises(PublishError, match="bucket"):
        begin_job("local", catalog="s3://")
    assert begin_job("local", catalog=str(tmp_path / "team")).catalog == str(tmp_path / "team")


@pytest.mark.parametrize("signal", ["ctrl-c", "sigterm"])
def test_an_interrupted_job_reaches_the_catalog_with_the_next_operation(
    homes, results, shared, monkeypatch, signal
):
    """Ctrl-C or SIGTERM keeps the failed job's record in the ledger (no network: the job
    must end now); the next catalog operation sends it (review of issue 12, #14)."""
    import jupyter_publish.publisher as publisher
    from jupyter_publish import journal

    def interrupted(*args, **kwargs):
        raise journal.Terminated if signal == "sigterm" else KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(publisher, "_run", interrupted)
        with pytest.raises(KeyboardInterrupt):
            jp.publish(results, catalog=str(shared))
    job_id = Ledger().jobs()[0]["job_id"]
    assert record_files(shared) == []  # nothing sent while interrupted
    with sqlite3.connect(homes("a") / "ledger.sqlite") as db:
        assert db.execute("SELECT job_id FROM catalog_pending").fetchall() == [(job_id,)]
    jobs(catalog=str(shared))
    [written] = record_files(shared)
    body = json.loads(written.read_bytes())
    assert body["job_id"] == job_id and body["status"] == "failed"
    assert body["provenance"]["status"] == "failed"


def test_an_ambiguous_job_prefix_is_its_own_error_everywhere(homes, results, shared, tmp_path):
    """A prefix of two jobs is an AmbiguousJobError in the ledger, in the catalog, in
    lineage and in ``uses=``: never looked up elsewhere, never recorded as an input
    (review of issue 12, #15)."""
    from jupyter_publish.errors import AmbiguousJobError

    first = jp.publish(results, catalog=str(shared)).job_id
    second = jp.publish(results, catalog=str(shared)).job_id
    prefix = first[: next(i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b)]
    assert len(prefix) >= 6
    with pytest.raises(AmbiguousJobError):
        Ledger().job_row(prefix)
    with pytest.raises(AmbiguousJobError):
        jp.fetch(prefix, tmp_path / "a-got", catalog=str(shared))
    with pytest.raises(AmbiguousJobError):
        jp.lineage(prefix)
    with pytest.raises(AmbiguousJobError):
        jp.publish(results, uses=[prefix])
    homes("b")  # another machine: only the catalog knows both
    with pytest.raises(AmbiguousJobError):
        jp.fetch(prefix, tmp_path / "b-got", catalog=str(shared))
    with pytest.raises(AmbiguousJobError):
        jp.lineage(prefix, catalog=str(shared))
    assert jp.fetch(first, tmp_path / "b-first", catalog=str(shared)).job_id == first


def test_a_record_too_large_is_its_own_problem_not_tampering(
    homes, results, shared, tmp_path, monkeypatch, capsys
):
    """A catalog object past the size limit is not read, and said so: not "tampered"
    (review of issue 12, #23)."""
    from jupyter_publish.catalog import RecordTooLargeError

    job_id = jp.publish(results, catalog=str(shared)).job_id
    [written] = record_files(shared)
    monkeypatch.setattr(records, "MAX_RECORD_BYTES", written.stat().st_size - 1)
    homes("b")
    jobs(catalog=str(shared))
    warned = capsys.readouterr().err
    assert "too large" in warned and "sha256" not in warned
    with pytest.raises(RecordTooLargeError, match="too large") as raised:
        jp.fetch(job_id, tmp_path / "got", catalog=str(shared))
    assert not isinstance(raised.value, TamperedRecordError)
