"""A failing ``%%publish`` cell can be debugged from the notebook: its traceback is one
click away (a folded section), its outputs are kept under the working folder (which the
notebook's file browser opens), line numbers count as the cell is shown, and ``--out``
receives the failed job's record. Driven through a real IPython shell."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from jupyter_publish.ledger import Ledger

KEPT_UNDER = "jupyter-publish-outputs"  # the folder under the working folder

FAILING = "%%publish local --out r\n(OUTPUT / 'half.txt').write_text('x')\n\nx = 1\n1/0\n"
"""Shown in the notebook, ``1/0`` is line 5 (the magic line is line 1)."""


@pytest.fixture
def cwd(ip, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in ("r", "x"):
        ip.user_ns.pop(name, None)


def _fail(ip, cell: str):
    with capture_output() as io:
        result = ip.run_cell(cell)
    assert type(result.error_in_exec) is UsageError, repr(result.error_in_exec)
    html = "".join(o.data.get("text/html", "") for o in io.outputs)
    return str(result.error_in_exec), html, io


def test_the_line_reported_is_the_line_shown(ip, cwd: Path) -> None:
    message, html, _io = _fail(ip, FAILING)
    assert "cell failed at line 5 (ZeroDivisionError" in message
    assert "line 5" in html  # the folded traceback counts the same way
    message, _html, _io = _fail(ip, "%%publish local\n\n\nx = (\n")
    assert re.search(r"cell failed at line [45] \(SyntaxError", message), message


def test_a_body_with_its_own_cell_magic_still_runs(ip, cwd: Path) -> None:
    with capture_output() as io:
        result = ip.run_cell("%%publish local --out r\n%%capture\n(OUTPUT / 'a.txt').write_text('a')\n")
    assert result.error_in_exec is None, io.stderr
    assert "a.txt" in {f.path for f in ip.user_ns["r"].files}


def test_the_traceback_is_folded_in_the_output_and_the_line_stays_one(ip, cwd: Path) -> None:
    message, html, io = _fail(ip, FAILING)
    assert len((io.stdout + io.stderr).strip().splitlines()) == 1  # the one-line report
    folded = re.search(r"<details><summary>Traceback</summary><pre[^>]*>(.*?)</pre></details>", html, re.S)
    assert folded, html
    assert "ZeroDivisionError: division by zero" in folded.group(1)
    assert "1/0" in folded.group(1)  # the cell's own frame, with its source line
    assert "interactiveshell.py" not in folded.group(1)  # not IPython's frames that ran it
    assert "<details open" not in html  # folded: one click away, not in the way
    kept = re.search(r"kept in (\S+);", message).group(1)
    link = f"{KEPT_UNDER}/{Path(kept).name}"
    assert f"href='{link}'" in html and f"href='{link}/stderr'" in html  # opens in the notebook


def test_kept_outputs_live_under_the_working_folder(ip, cwd: Path) -> None:
    message, _html, _io = _fail(ip, FAILING)
    kept = Path(re.search(r"kept in (\S+);", message).group(1))
    assert kept.parent == cwd / KEPT_UNDER
    assert (kept / "half.txt").read_text() == "x"
    assert "ZeroDivisionError" in (kept / "stderr").read_text()
    assert (kept / "exitCode").read_text() == "1"


def test_a_published_cell_leaves_no_folder_behind(ip, cwd: Path) -> None:
    with capture_output() as io:
        result = ip.run_cell("%%publish local --out r\nseen = OUTPUT\n(OUTPUT / 'a.txt').write_text('a')\n")
    assert result.error_in_exec is None, io.stderr
    seen = Path(ip.user_ns.pop("seen"))
    assert seen.parent == cwd / KEPT_UNDER  # ran where the browser can reach it
    assert not (cwd / KEPT_UNDER).exists()  # and removed, parent and all, once published


def test_out_receives_the_failed_jobs_record(ip, cwd: Path) -> None:
    message, _html, _io = _fail(ip, FAILING)
    record = ip.user_ns["r"]
    assert isinstance(record, dict) and record["status"] == "failed"
    assert record["job_id"] in message and "ZeroDivisionError" in record["error"]
    assert Path(record["outputs"]).is_dir() and (Path(record["outputs"]) / "half.txt").exists()
    row = Ledger().status(record["job_id"])
    assert {k: v for k, v in record.items() if k != "outputs"} == {
        k: v for k, v in row.items() if not k.endswith("_json")
    }
    assert not any(key.endswith("_json") for key in record)


def test_published_anyway_also_shows_the_traceback(ip, cwd: Path) -> None:
    message, html, _io = _fail(ip, FAILING.replace("--out r", "--out r --publish-on-error"))
    assert "published anyway" in message and "at line 5" in message
    assert "<summary>Traceback</summary>" in html and "ZeroDivisionError" in html
    assert ip.user_ns["r"].status == "published"
