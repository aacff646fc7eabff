"""The ledger's ``type`` is the published result's Type, as ``PublishedResult.type`` says;
where the job went is ``scheme``. Ledgers written before keep working."""

from __future__ import annotations

import json
import sqlite3

import jupyter_publish as jp
from jupyter_publish.ledger import Ledger

OLD_JOBS = (
    "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, execution_id TEXT NOT NULL, node_id TEXT NOT NULL,"
    " name TEXT NOT NULL, status TEXT NOT NULL, type TEXT NOT NULL, destination TEXT NOT NULL,"
    " uri TEXT, url TEXT, root_cid TEXT, n_files INTEGER, total_size INTEGER,"
    " created_at TEXT NOT NULL, finished_at TEXT, error TEXT, result_json TEXT);"
)


def test_an_old_ledger_is_migrated(isolated_home) -> None:
    path = isolated_home / "ledger.sqlite"
    result = {"Type": "urlDownload", "Params": {"URL": "http://127.0.0.1:1/x"}}
    with sqlite3.connect(path) as db:
        db.executescript(OLD_JOBS)
        db.executemany(
            "INSERT INTO jobs (job_id, execution_id, node_id, name, status, type, destination, created_at,"
            " result_json) VALUES (?, 'e', 'n', 'x', ?, ?, ?, '2024-01-01T00:00:00Z', ?)",
            [
                ("j-1", "published", "http", "http://127.0.0.1:1/", json.dumps(result)),
                ("j-2", "failed", "s3", "s3://b/k", None),
                ("j-3", "published", "local", "local", json.dumps({"Type": "local"})),
            ],
        )
    ledger = Ledger(path)
    got = {j["job_id"]: (j["type"], j["scheme"]) for j in ledger.jobs()}
    assert got == {"j-1": ("urlDownload", "http"), "j-2": (None, "s3"), "j-3": ("local", "local")}
    assert (ledger.status("j-1")["type"], ledger.status("j-1")["scheme"]) == ("urlDownload", "http")
    assert ledger.job_row("j-2")["scheme"] == "s3"
    assert Ledger(path).jobs() == ledger.jobs()  # opening again changes nothing


def test_a_publish_records_its_result_type(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("a")
    result = jp.publish(tmp_path / "a.txt")
    frame = jp.jobs()
    row = frame[frame["job_id"] == result.job_id].iloc[0]
    assert (row["type"], row["scheme"]) == (result.type, "local")
