"""The front door for a job begun before its outputs exist (``%%publish``): the publisher,
not the magics, resolves its placeholders once and records how it ended."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from IPython.utils.capture import capture_output

from jupyter_publish import api, ids
from jupyter_publish.destinations import parse_destination
from jupyter_publish.errors import DestinationError
from jupyter_publish.ledger import Ledger
from jupyter_publish.magics import pin_placeholders

PACKAGE = Path(__file__).resolve().parent.parent / "jupyter_publish"
# Columns that differ between any two jobs (identity, time, process), not in shape; and
# what the front door records that the magics never did (provenance, inputs: tested in
# test_provenance*.py).
_PER_JOB = {
    "job_id", "execution_id", "created_at", "finished_at", "pid", "proc_start",
    "provenance_json", "inputs_json",
}  # fmt: skip


def _old_record_failed(job_id: str, dest_text: str, name: str, reason: str) -> None:
    """What the magics wrote themselves before the front door did it (the reference row)."""
    dest = parse_destination(dest_text)
    ledger = Ledger()
    ledger.start(
        job_id=job_id,
        execution_id=ids.new_execution_id(),
        node_id=ids.node_id(),
        name=name,
        scheme=dest.scheme,
        destination=dest.text,
    )
    ledger.fail(job_id, reason)


def _shape(row: dict) -> dict:
    return {key: value for key, value in row.items() if key not in _PER_JOB}


@pytest.mark.parametrize("destination", ["local", "s3://bucket/runs/{jobID}/", "https://example.invalid/up/"])
def test_record_failure_writes_the_row_the_magics_wrote(destination):
    reason = "cell failed: ZeroDivisionError: division by zero"
    old_id, new_id = ids.new_job_id(), ids.new_job_id()
    _old_record_failed(old_id, destination, "outputs", reason)
    api.record_failure(new_id, destination, name="outputs", reason=reason)
    ledger = Ledger()
    old, new = ledger.job_row(old_id), ledger.job_row(new_id)
    assert _shape(new) == _shape(old)
    assert new["status"] == "failed" and new["error"] == reason and new["finished_at"]
    assert new["execution_id"].startswith("e-") and new["spec_json"] is None
    assert api.jobs().set_index("job_id").loc[new_id, "status"] == "failed"


def test_a_failed_cell_is_recorded_through_the_front_door(ip, isolated_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with capture_output():
        outcome = ip.run_cell("%%publish local --name nb\n1/0\n")
    message = str(outcome.error_in_exec)
    job_id = re.search(r"j-[0-9A-Z]{26}", message).group()
    reference = ids.new_job_id()
    _old_record_failed(reference, "local", "nb", "cell failed: ZeroDivisionError: division by zero")
    ledger = Ledger()
    assert _shape(ledger.job_row(job_id)) == _shape(ledger.job_row(reference))


def test_job_fail_scrubs_a_secret_from_the_reason():
    job = api.begin_job("local", name="n")
    job.fail("cell failed: ValueError: https://user:hunter2@example.invalid/x")
    row = Ledger().job_row(job.job_id)
    assert row["status"] == "failed" and "hunter2" not in row["error"]


def test_begin_job_resolves_placeholders_once_but_the_execution_id():
    template = "s3://bucket/runs/{jobID}/{user}/{executionID}/"
    job = api.begin_job(
        template, name="n", resolve_placeholders=True, endpoint="http://127.0.0.1:9", preflight=False
    )
    assert job.destination.key == f"runs/{job.job_id}/{ids.current_user()}/{{executionID}}/"
    assert job.destination.text == template  # what the ledger and the card show
    assert job.destination.options["endpoint"] == "http://127.0.0.1:9"
    untouched = api.begin_job(template, preflight=False)
    assert untouched.destination.key == "runs/{jobID}/{user}/{executionID}/"
    http = api.begin_job(
        "https://example.invalid/{jobID}/{date}/", resolve_placeholders=True, preflight=False
    )
    assert re.fullmatch(rf"https://example\.invalid/{http.job_id}/\d{{8}}/", http.destination.url)
    # The name kept for callers of the magics module is the same front door.
    dest = parse_destination(template)
    assert pin_placeholders(dest, "j-00000000000000000000000000").key.startswith(
        "runs/j-00000000000000000000000000/"
    )


def test_begin_job_checks_the_destination_before_any_work():
    with pytest.raises(DestinationError, match="endpoint"):
        api.begin_job("local", endpoint="http://127.0.0.1:9")
    with pytest.raises(DestinationError):
        api.begin_job("s3://bucket/{nope}/")
    assert Ledger().jobs() == []


def test_job_publish_and_rounds_share_its_identity(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    job = api.begin_job("local", name="run")
    first = job.publish_round(tmp_path, 1, cid_version=1)
    final = job.publish(tmp_path, archive=False, quiet=True)
    assert final.job_id == job.job_id and final.name == "run"
    assert first.job_id < job.job_id and first.archive is None and first.cid_version == 1
    rows = {row["job_id"]: row for row in Ledger().jobs(rounds=True)}
    assert rows[first.job_id]["name"] == f"run sync 1 of {job.job_id}"
    assert {rows[first.job_id]["status"], rows[job.job_id]["status"]} == {"published"}


def test_an_unnamed_jobs_rounds_are_named_as_the_ledger_names_it(tmp_path):
    # name=None is "results" in the ledger; its rounds were once "None sync 1 of …".
    (tmp_path / "a.txt").write_text("a")
    job = api.begin_job("local")
    first = job.publish_round(tmp_path, 1)
    final = job.publish(tmp_path, archive=False, quiet=True)
    rows = {row["job_id"]: row for row in Ledger().jobs(rounds=True)}
    assert rows[job.job_id]["name"] == final.name == tmp_path.name  # named as its card says
    assert rows[first.job_id]["name"] == f"results sync 1 of {job.job_id}"


def test_the_magic_modules_leave_the_ledger_and_placeholders_to_the_publisher():
    """The magics call the front door: none of their modules writes the ledger or resolves."""
    for name in ("magics.py", "magic_args.py", "magic_display.py", "cellrun.py"):
        text = (PACKAGE / name).read_text(encoding="utf-8")
        for word in ("Ledger", "placeholder_values", "resolve_some", "new_execution_id", "new_job_id"):
            assert word not in text, f"{name} uses {word}"


def test_job_publish_takes_provenance_and_uses_too(tmp_path):
    """``provenance=``/``uses=`` given to Job.publish add to the job's own, not a
    TypeError (review of issue 12, #25)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.txt").write_text("b")
    used = api.publish(tmp_path / "in", quiet=True)
    job = api.begin_job("local", name="run", provenance={"magic_line": "%%publish"})
    result = job.publish(
        tmp_path / "out", quiet=True, provenance={"notebook": "nb.ipynb"}, uses=[used.job_id]
    )
    assert result.provenance["magic_line"] == "%%publish" and result.provenance["notebook"] == "nb.ipynb"
    assert [i["job_id"] for i in result.inputs] == [used.job_id]
