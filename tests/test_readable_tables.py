"""Tables people can read, and a jobs browser that keeps up (issue 13, items 8 and 9).

``%jobs``/``%cids`` show a compact view and keep the whole DataFrame as their value; the
jobs browser's files table is compact too; the publish panel's Options show the chosen
destination's backend only; a job recorded in this process shows up in an open jobs
browser without a Refresh; Copy CID hands the page the CID to copy. (The clipboard
itself, and what fits on screen, are checked in a real browser: tests/test_browser.py.)
"""

from __future__ import annotations

import gc
import html
import re
from pathlib import Path

import pandas as pd
import pytest
from IPython.utils.capture import capture_output

from jupyter_publish import api, events
from jupyter_publish.ids import short_job_id
from jupyter_publish.table_view import CompactFrame
from jupyter_publish.testing.widgets import output_text
from jupyter_publish.widgets import JobsBrowser, PublishPanel


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "table.csv").write_text("step,loss\n1,0.5\n")
    (folder / "notes.txt").write_text("hello\n")
    return folder


def _formatted(ip, value) -> dict:  # type: ignore[no-untyped-def]
    data, _ = ip.display_formatter.format(value)
    return data


def _cells(markup: str) -> list[list[str]]:
    """The text of each body row's cells."""
    body = markup.split("<tbody>", 1)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body)
    return [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in rows]


# -- %jobs and %cids ------------------------------------------------------------------------


def test_jobs_magic_shows_a_compact_table_and_keeps_the_full_frame(ip, results: Path) -> None:
    published = api.publish(results, "local", name="readable", quiet=True)
    with capture_output():
        result = ip.run_cell("%jobs")
    frame = result.result
    # The value: the whole DataFrame, every column, as _ holds it.
    assert isinstance(frame, pd.DataFrame) and isinstance(frame, CompactFrame)
    assert list(frame.columns) == list(api.jobs().columns)
    # what the display hook keeps as _ (the shared shell's user_ns["_"] stops following it
    # once any earlier cell assigned _ itself, e.g. `for _ in range(20)`)
    assert ip.displayhook._ is frame
    assert frame.iloc[0]["job_id"] == published.job_id
    assert frame.iloc[0]["uri"] == published.uri  # the columns the view leaves out are there
    # What is shown: seven columns, the short job ID on one line, no <NA>.
    shown = _formatted(ip, frame)
    markup = shown["text/html"]
    headers = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", markup)
    assert headers == ["job", "name", "status", "destination", "files", "size", "time (UTC)"]
    row = _cells(markup)[0]
    assert row[0] == short_job_id(published.job_id) and row[1:5] == ["readable", "published", "local", "2"]
    first = re.search(r"<td ([^>]*)>", markup.split("<tbody>")[1]).group(1)  # type: ignore[union-attr]
    assert "white-space:nowrap" in first and f'title="{published.job_id}"' in first  # the full ID on hover
    assert "<NA>" not in markup and "NaN" not in markup and "None" not in markup
    assert "uri" not in headers and published.uri not in markup
    assert "21 columns in the value" in shown["text/plain"] or "columns in the value" in shown["text/plain"]
    # Anything derived from it is an ordinary DataFrame, shown in full.
    assert type(frame[frame["status"] == "published"]) is pd.DataFrame
    assert type(frame.copy()) is pd.DataFrame and "job_id" in frame.full().to_html()


def test_a_failed_job_shows_blank_cells_not_na(ip, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no such file"):
        api.publish(tmp_path / "missing", "local", name="gone", quiet=True)
    with capture_output():
        frame = ip.run_cell("%jobs").result
    assert pd.isna(frame.iloc[0]["n_files"])  # the value keeps <NA>
    shown = _formatted(ip, frame)
    row = _cells(shown["text/html"])[0]
    assert row[2] == "failed" and row[4] == "" and row[5] == ""
    assert "<NA>" not in shown["text/html"] and "<NA>" not in shown["text/plain"]


def test_jobs_view_shows_the_sync_rounds_column_only_when_a_job_had_rounds(ip, results: Path) -> None:
    api.publish(results, "local", name="plain", quiet=True)
    with capture_output():
        plain = _formatted(ip, ip.run_cell("%jobs").result)
    assert "rounds" not in re.findall(r"<th(?: [^>]*)?>(.*?)</th>", plain["text/html"])
    with capture_output():
        synced = ip.run_cell(
            "%%publish local --sync-every 200ms --name synced\n"
            "import time as _t\n"
            "(OUTPUT / 'first.txt').write_text('1')\n"
            "_t.sleep(0.7)\n"
        )
    assert synced.success
    with capture_output():
        frame = ip.run_cell("%jobs").result
    rounds = int(frame[frame["name"] == "synced"].iloc[0]["rounds"])
    assert rounds >= 1
    shown = _formatted(ip, frame)
    headers = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", shown["text/html"])
    assert headers == ["job", "name", "status", "destination", "files", "rounds", "size", "time (UTC)"]
    by_name = {row[1]: row for row in _cells(shown["text/html"])}
    assert by_name["synced"][5] == str(rounds) and by_name["plain"][5] == ""  # blank, not 0
    assert re.search(rf"synced +published +local +\d+ +{rounds} ", shown["text/plain"]), shown["text/plain"]


def test_cids_magic_is_compact_with_hashes_shortened_and_full_on_hover(ip, results: Path) -> None:
    published = api.publish(results, "local", archive=False, quiet=True)
    with capture_output():
        result = ip.run_cell(f"%cids {published.job_id}")
    frame = result.result
    assert isinstance(frame, CompactFrame) and list(frame.columns) == list(api.cids().columns)
    assert ip.displayhook._ is frame
    markup = _formatted(ip, frame)["text/html"]
    table = next(f for f in published.files if f.path == "table.csv")
    assert f'title="{table.sha256}">{table.sha256[:12]}…</td>' in markup
    assert table.cid in markup  # whole: people copy CIDs
    assert "<NA>" not in markup and "cid_version" not in markup and "raw_leaves" not in markup
    assert max(len(line) for line in repr(frame).splitlines()) < 160  # a terminal's text too


def test_compact_view_escapes_what_it_shows(ip, results: Path) -> None:
    api.publish(results, "local", name="<img src=x onerror=alert(1)>", quiet=True)
    with capture_output():
        frame = ip.run_cell("%jobs").result
    markup = _formatted(ip, frame)["text/html"]
    assert "<img" not in markup and "&lt;img src=x onerror=alert(1)&gt;" in markup


# -- the jobs browser -----------------------------------------------------------------------


def test_jobs_browser_files_table_is_compact(results: Path) -> None:
    published = api.publish(results, "local", archive=False, quiet=True)
    browser = JobsBrowser()
    browser.select(published.job_id)
    bundle = browser.details.outputs[0]["data"]
    markup = bundle["text/html"]
    headers = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", markup)
    assert headers == ["path", "kind", "size", "CID", "sha256"]  # no job ID, destination: all the same
    table = next(f for f in published.files if f.path == "table.csv")
    assert f'title="{table.sha256}">{table.sha256[:12]}…' in markup and table.cid in markup
    assert "max-width:100%" in markup and "<NA>" not in output_text(browser.details)


def test_a_job_published_in_this_process_appears_without_refresh(results: Path) -> None:
    browser = JobsBrowser()
    assert browser.rows == []
    published = api.publish(results, "local", name="live", quiet=True)
    assert [r["job_id"] for r in browser.rows] == [published.job_id]
    assert browser.rows[0]["status"] == "published"  # the finished row, not the running one
    assert browser.copy_button.text == published.root_cid  # selected: ready to copy
    assert "live" in browser.jobs.options[0][0]


def test_a_closed_or_dropped_browser_is_no_longer_told(results: Path) -> None:
    closed = JobsBrowser()
    closed.close()
    calls: list[str] = []

    class Listener:
        def changed(self, job_id: str, _ledger: Path) -> None:
            calls.append(job_id)

    listener = Listener()
    events.on_job_changed(listener.changed)
    del listener
    gc.collect()
    api.publish(results, "local", quiet=True)
    assert closed.rows == [] and calls == []


def test_a_listener_that_raises_never_fails_a_publish(results: Path) -> None:
    def broken(_job_id: str, _ledger: Path) -> None:
        raise RuntimeError("a view in trouble")

    unsubscribe = events.on_job_changed(broken)
    try:
        assert api.publish(results, "local", quiet=True).job_id
    finally:
        unsubscribe()


def test_copy_cid_hands_the_page_the_selected_jobs_cid(results: Path) -> None:
    published = api.publish(results, "local", quiet=True)
    browser = JobsBrowser()
    browser.select(published.job_id)
    assert browser.copy_cid() == published.root_cid == browser.copy_button.text
    assert published.root_cid in browser.cid.value
    # The page answers the click (what the front end sends after navigator.clipboard).
    browser.copy_button._answer(browser.copy_button, {"event": "copied", "text": published.root_cid}, [])
    assert browser.copied_cid == published.root_cid and "Copied" in browser.status.value
    browser.copy_button._answer(browser.copy_button, {"event": "failed", "error": "NotAllowedError"}, [])
    assert "NotAllowedError" in browser.status.value
    assert "navigator.clipboard.writeText" in browser.copy_button._esm


# -- the publish panel's Options ------------------------------------------------------------


def test_options_show_only_the_destinations_backend_fields() -> None:
    panel = PublishPanel(destination="local")
    assert panel.shown_option_fields == []
    assert panel.credential_fields.layout.display == "none"
    panel.destination.value = "s3://bucket/results/"
    assert panel.shown_option_fields == ["endpoint", "region", "profile", "presign"]
    assert panel.credential_fields.layout.display is None
    assert panel.accordion.get_title(1) == "S3 credentials"
    panel.destination.value = "ipfs://"
    assert panel.shown_option_fields == ["api", "gateway"]
    assert panel.credential_fields.layout.display == "none"
    panel.destination.value = "https://example.test/upload/"
    assert panel.shown_option_fields == []
    panel.destination.value = "s3"  # still typing: a scheme it knows already
    assert "endpoint" in panel.shown_option_fields
    panel.destination.value = "s"  # not one yet: every field, nothing hidden
    assert panel.shown_option_fields == list(panel.option_fields)


def test_a_browser_gone_from_the_page_waits_until_it_is_shown_again(results: Path) -> None:
    browser = JobsBrowser()
    browser._view_count = 1  # what the page reports: shown once...
    browser._view_count = 0  # ...then its cell was run again or cleared
    published = api.publish(results, "local", quiet=True)
    assert browser.rows == []  # not re-read for nobody
    browser._view_count = 1  # the page shows it again (a reload)
    assert [r["job_id"] for r in browser.rows] == [published.job_id]


def test_a_browser_is_not_reread_for_another_ledgers_writes(results: Path, tmp_path: Path) -> None:
    """A write to a ledger this browser does not list (a test's, another home's) costs it nothing."""
    from jupyter_publish.ledger import Ledger

    browser = JobsBrowser()
    reads: list[int] = []
    real, real_update = browser.refresh, browser._update
    browser.refresh = lambda **kw: reads.append(1) or real(**kw)  # type: ignore[method-assign]
    browser._update = lambda *a, **kw: reads.append(1) or real_update(*a, **kw)  # type: ignore[method-assign]
    try:
        api.publish(results, "local", quiet=True, ledger=Ledger(tmp_path / "elsewhere.sqlite"))
        assert reads == [] and browser.rows == []
        api.publish(results, "local", quiet=True)
        assert reads and len(browser.rows) == 1
    finally:
        browser.close()
