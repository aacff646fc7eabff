"""A job is listed under what the user published: the panel, the magics and the API
give the ledger (``jobs()``, ``%jobs``, the jobs browser) the name the card and the
archive show, not a generic ``results``."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.utils.capture import capture_output

from jupyter_publish import api
from jupyter_publish.errors import SourceError
from jupyter_publish.widgets import JobsBrowser, publish_panel


@pytest.fixture
def panel_results(tmp_path: Path) -> Path:
    folder = tmp_path / "panel_results"
    folder.mkdir()
    (folder / "table.csv").write_text("step,loss\n1,0.5\n")
    return folder


def _name(job_id: str) -> str:
    rows = api.jobs().to_dict("records")
    return next(str(row["name"]) for row in rows if row["job_id"] == job_id)


def test_the_api_names_a_folder_job_after_the_folder(panel_results: Path) -> None:
    result = api.publish(panel_results, "local", quiet=True)

    assert result.name == "panel_results" and result.archive is not None
    assert result.archive.path == "panel_results.tar.gz"
    assert _name(result.job_id) == "panel_results"


def test_a_file_job_is_named_after_the_file_and_several_paths_results(panel_results: Path) -> None:
    other = panel_results.parent / "notes.md"
    other.write_text("# notes\n")

    one = api.publish(other, "local", quiet=True)
    several = api.publish([other, panel_results], "local", quiet=True)
    glob_one = api.publish(str(panel_results.parent / "panel_*"), "local", quiet=True)

    assert _name(one.job_id) == "notes" == one.name
    assert _name(several.job_id) == "results" == several.name
    assert _name(glob_one.job_id) == "panel_results" == glob_one.name


def test_a_failed_publish_is_listed_under_its_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        api.publish(tmp_path / "missing_results", "local", quiet=True)
    row = api.jobs().to_dict("records")[0]
    assert row["status"] == "failed" and row["name"] == "missing_results"


def test_the_publish_panel_job_is_found_by_its_folder_name(panel_results: Path) -> None:
    panel = publish_panel(paths=[panel_results], destination="local")
    result = panel.publish_now()

    assert result is not None and result.name == "panel_results"
    assert _name(result.job_id) == "panel_results"
    browser = JobsBrowser()
    browser.filter.value = "panel_results"  # what the user typed into the jobs browser
    assert [job_id for _label, job_id in browser.jobs.options] == [result.job_id]


def test_the_publish_magic_names_the_job_after_the_folder(ip, panel_results: Path, monkeypatch) -> None:
    monkeypatch.chdir(panel_results.parent)
    with capture_output():
        outcome = ip.run_cell("%publish panel_results --to local --out r")
    assert outcome.error_in_exec is None, outcome.error_in_exec
    result = ip.user_ns.pop("r")
    assert result.name == "panel_results" and _name(result.job_id) == "panel_results"
    with capture_output():
        listed = ip.run_cell("%jobs").result
    assert list(listed[listed["name"] == "panel_results"]["job_id"]) == [result.job_id]
