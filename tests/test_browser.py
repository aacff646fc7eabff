"""End to end in a real browser: JupyterLab + the three panels + Debian's chromium.

Starts JupyterLab on a free loopback port with a private token, config and state, opens a
notebook whose cells show ``publish_panel``, ``jobs_browser`` and ``fetch_panel``, runs
them, and drives each as a person would: the publish panel's Options (only the chosen
destination's fields, every input inside its box), Publish (the result card that the
kernel's background thread writes through widget traits), the jobs browser (the new job
listed without Refresh, its files table inside the cell, Copy CID read back from the
clipboard) and the fetch panel (the job fetched, its preview shown). Then issue 13's
browser items: a folder ``panel_results`` published from the panel is found by that name
(item 7); a ``%%publish`` cell's card and its fetched previews (Markdown rendered with its
raw HTML dropped and nothing run, the most useful files first, "show all", values beside
labels; item 10); a failing ``%%publish --out r`` cell (the folded traceback, its line as
shown, kept outputs linked under the working folder; item 11); and every text of the cards
and the jobs browser readable under JupyterLab Dark (contrast measured). The ledger in the
server's ``JUPYTER_PUBLISH_HOME`` must hold the jobs the page shows. Screenshots go to
tests/artifacts/. Everything started here is stopped by PID, and the test checks that
nothing survives.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from images import png_bytes

from jupyter_publish import api
from jupyter_publish.ids import short_job_id

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
JOB_ID = re.compile(r"\bj-[0-9A-HJKMNP-TV-Z]{26}\b")
CELL = (
    "from jupyter_publish.widgets import publish_panel\n"
    'p = publish_panel(paths=["results"], destination="local")\n'
    "p"
)
BROWSER_CELL = "from jupyter_publish.widgets import jobs_browser\nb = jobs_browser()\nb"
FETCH_CELL = "from jupyter_publish.widgets import fetch_panel\nf = fetch_panel()\nf"
JOBS_CELL = "%load_ext jupyter_publish\n%jobs"
MADE_CELL = (
    "%%publish --out made\n"
    "import shutil, sys\n"
    'shutil.copytree("made", OUTPUT, dirs_exist_ok=True)\n'
    'print("training finished")\n'
    'print("a warning", file=sys.stderr)'
)
"""Item 10: a cell that makes four files (README.md, a CSV, a log, a PNG) + stdout, stderr, exitCode."""
FETCH_MADE_CELL = 'import jupyter_publish as jp\njp.fetch(made, "fetched_made")'
FAILING_CELL = "%%publish --out r\n(OUTPUT / 'half.txt').write_text('x')\n1/0\nprint('not reached')"
"""Item 11: raises on its 3rd line as the notebook shows it (the magic line is line 1)."""
STATUS_CELL = 'r["status"]'
README = """# Run 7

The loss went *down*:

- epoch 1: 0.9
- epoch 2: 0.5

<script>alert("readme")</script>

<img src=x onerror=alert(2)>
"""
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Lab:
    """A running JupyterLab: its process, address and token."""

    proc: subprocess.Popen[bytes]
    port: int
    token: str
    root: Path
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def request(self, path: str, method: str = "GET", timeout: float = 5) -> bytes:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.read()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _notebook(*sources: str) -> dict:
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell{number}",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for number, source in enumerate(sources)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _prepare_root(base: Path) -> Path:
    """The server's folder: the notebook and a small results folder to publish."""
    root = base / "root"
    (root / "results").mkdir(parents=True)
    (root / "results" / "metrics.json").write_text(json.dumps({"loss": 0.039, "accuracy": 0.996}))
    (root / "results" / "measurements.csv").write_text("step,loss\n1,0.5\n2,0.25\n3,0.125\n")
    (root / "panel_results").mkdir()
    (root / "panel_results" / "scores.csv").write_text("model,score\nA,0.91\n")
    made = root / "made"
    made.mkdir()
    (made / "README.md").write_text(README)
    (made / "metrics.csv").write_text("epoch,loss\n1,0.9\n2,0.5\n")
    (made / "run.log").write_text("epoch 1 done\nepoch 2 done\n")
    (made / "plot.png").write_bytes(png_bytes(24, 16))
    notebook = _notebook(
        CELL, BROWSER_CELL, FETCH_CELL, JOBS_CELL, MADE_CELL, FETCH_MADE_CELL, FAILING_CELL, STATUS_CELL
    )
    (root / "demo.ipynb").write_text(json.dumps(notebook, indent=1))
    return root


def _lab_env(base: Path, home: Path) -> dict[str, str]:
    """Private config, runtime and IPython dirs; the repo under test first on the path."""
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(base / name.lower())
    env["JUPYTER_PUBLISH_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _quiet_settings(settings: Path) -> None:
    """No news, no update check: nothing reaches for the internet or covers the page."""
    target = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def _lab_command(port: int, token: str, root: Path, base: Path) -> list[str]:
    return [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        f"--LabApp.user_settings_dir={base / 'settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]  # fmt: skip


def _wait_ready(lab: Lab, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {lab.proc.returncode}:\n{lab.log.read_text()[-3000:]}")
        try:
            lab.request("api/status", timeout=2)
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    pytest.fail(f"JupyterLab did not answer in {timeout:.0f} s:\n{lab.log.read_text()[-3000:]}")


# -- stopping everything we started, by PID ---------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (kernels run in sessions of their own, so killpg misses them)."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _kill(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def stop_lab(lab: Lab) -> list[int]:
    """Ask the server to shut down (it stops its kernels), then make sure; return survivors."""
    spawned = descendants(lab.proc.pid)
    try:
        lab.request("api/shutdown", method="POST")
        lab.proc.wait(15)
    except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
        if lab.proc.poll() is None:
            os.killpg(lab.proc.pid, signal.SIGTERM)
            try:
                lab.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(lab.proc.pid, signal.SIGKILL)
                lab.proc.wait(5)
    _kill([p for p in spawned if _alive(p)], signal.SIGTERM)
    left = _wait_gone(spawned, 5)
    _kill(left, signal.SIGKILL)
    return _wait_gone(left, 5)


@pytest.fixture
def lab(tmp_path: Path, isolated_home: Path) -> Iterator[Lab]:
    # scripts/check.sh installs both; a machine without them fails rather than passing quietly.
    assert Path(CHROMIUM).exists(), "Debian's chromium is not installed: apt-get install chromium"
    import playwright.sync_api  # noqa: F401 - part of the [test] extra

    root = _prepare_root(tmp_path)
    _quiet_settings(tmp_path / "settings")
    port, token = _free_port(), secrets.token_hex(24)
    log = tmp_path / "jupyterlab.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            _lab_command(port, token, root, tmp_path),
            cwd=root,
            env=_lab_env(tmp_path, isolated_home),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    running = Lab(proc, port, token, root, log)
    try:
        _wait_ready(running, 90)
        yield running
    finally:
        survivors = stop_lab(running)
        assert not survivors, f"processes left behind: {survivors}"


# -- the test -----------------------------------------------------------------------------


def _open_notebook(page, lab: Lab) -> None:  # type: ignore[no-untyped-def]
    """Open the notebook and wait for its kernel."""
    from playwright.sync_api import expect

    page.goto(lab.url("lab/tree/demo.ipynb"), wait_until="domcontentloaded", timeout=60_000)
    page.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor").first.wait_for(timeout=60_000)
    kernel_idle = page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\|\s*Idle"))
    expect(kernel_idle.first).to_be_visible(timeout=60_000)


def _run_cell(page, index: int) -> None:  # type: ignore[no-untyped-def]
    """Run cell ``index`` until the run is queued.

    A Shift+Enter that lands before the kernel is connected moves the cursor without
    queueing anything (seen here on a cold start), so look at the prompt and try again.
    """
    from playwright.sync_api import expect

    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    editor = cell.locator(".jp-InputArea-editor")
    prompt = cell.locator(".jp-InputPrompt")
    for _attempt in range(4):
        editor.click()
        page.keyboard.press("Shift+Enter")
        try:
            expect(prompt).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=10_000)
            return
        except AssertionError:
            continue
    raise AssertionError(f"cell {index} never started running")


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def _field(scope, label: str):  # type: ignore[no-untyped-def]
    """The input of the text widget labelled ``label``."""
    return (
        scope.locator(f".widget-inline-hbox:has(> label:text-is('{label}'))").locator("input, textarea").first
    )


def _overflow(locator) -> dict:  # type: ignore[no-untyped-def]
    """How far an element's content reaches past its box (0: it fits)."""
    return locator.evaluate("e => ({scroll: e.scrollWidth, client: e.clientWidth})")


def _clipped(box) -> list[str]:  # type: ignore[no-untyped-def]
    """Boxes in ``box`` (itself included) that cut off what they hold on the right.

    The Options' inputs used to be cut this way: 100% wide plus their margin, inside a
    container that hides what overflows. Form controls scroll their own text: not counted.
    """
    return box.evaluate(
        """box => [box, ...box.querySelectorAll('*')]
          .filter(e => e.offsetParent !== null)
          .filter(e => !['INPUT', 'TEXTAREA', 'SELECT', 'OPTION'].includes(e.tagName))
          .filter(e => getComputedStyle(e).overflowX !== 'visible' && e.scrollWidth > e.clientWidth + 1)
          .map(e => `${e.className} (${e.scrollWidth} in ${e.clientWidth})`)"""
    )


def _check_options(page) -> None:  # type: ignore[no-untyped-def]
    """Only the destination's backend fields, and every input inside its box."""
    from playwright.sync_api import expect

    panel = page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".jp-Cell-outputArea")
    panel.get_by_text("Options", exact=True).first.click()
    endpoint = _field(panel, "S3 endpoint")
    expect(_field(panel, "Name")).to_be_visible()
    expect(endpoint).to_be_hidden()  # local: no S3 fields
    destination = _field(panel, "Destination")
    destination.fill("s3://bucket/results/")
    expect(endpoint).to_be_visible()
    expect(_field(panel, "IPFS API")).to_be_hidden()
    assert _clipped(panel) == []
    panel.scroll_into_view_if_needed()
    _shot(page, "browser-options-s3.png")
    destination.fill("local")
    expect(endpoint).to_be_hidden()
    panel.get_by_text("Options", exact=True).first.click()  # folded again


def _check_jobs_browser(page, job_id: str, cid: str) -> None:  # type: ignore[no-untyped-def]
    """The job published above is listed without Refresh; its files fit; Copy CID copies."""
    from playwright.sync_api import expect

    out = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-Cell-outputArea")
    expect(out.locator("select option", has_text=short_job_id(job_id))).to_have_count(1, timeout=30_000)
    expect(out.locator(".widget-html", has_text="1 of 1 jobs")).to_be_visible()
    table = out.locator("table", has_text="metrics.json")
    expect(table).to_be_visible(timeout=30_000)
    for box in (table.locator("xpath=.."), out):  # nothing scrolls sideways, nothing is cut
        size = _overflow(box)
        assert size["scroll"] <= size["client"], f"wider than its area: {size}"
    assert _clipped(out) == []
    assert table.evaluate("t => t.getBoundingClientRect().right") <= out.evaluate(
        "o => o.getBoundingClientRect().right"
    )
    copy = out.locator("button.jupyter-publish-copy")
    expect(copy).to_be_enabled()
    copy.click()
    expect(out.locator(".widget-html", has_text="Copied")).to_be_visible(timeout=30_000)
    assert page.evaluate("navigator.clipboard.readText()") == cid
    out.scroll_into_view_if_needed()
    _shot(page, "browser-jobs.png")


def _check_fetch(page, job_id: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    out = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-Cell-outputArea")
    _field(out, "Reference").fill(job_id)
    out.locator(".jupyter-widgets.widget-button", has_text="Fetch").click()
    card = out.locator(".jupyter-publish-fetch")
    expect(card).to_contain_text("verified", timeout=60_000)
    expect(out).to_contain_text("measurements.csv")
    expect(out).to_contain_text("0.996")  # metrics.json's content, previewed
    assert _clipped(out) == []
    card.scroll_into_view_if_needed()
    _shot(page, "browser-fetch.png")


def _check_jobs_table(page, job_id: str) -> None:  # type: ignore[no-untyped-def]
    """%jobs: the compact table, the short job ID on one line, left-aligned, no <NA>."""
    from playwright.sync_api import expect

    _run_cell(page, 3)
    out = page.locator(".jp-Notebook .jp-Cell").nth(3).locator(".jp-Cell-outputArea")
    table = out.locator("table.jupyter-publish-table")
    expect(table).to_contain_text(short_job_id(job_id), timeout=30_000)
    expect(out).not_to_contain_text("<NA>")
    first = table.locator("tbody td").first
    style = first.evaluate("e => [getComputedStyle(e).whiteSpace, getComputedStyle(e).textAlign, e.title]")
    assert style == ["nowrap", "left", job_id]
    size = _overflow(out.locator(".jupyter-publish-table-wrap"))
    assert size["scroll"] <= size["client"], f"wider than its area: {size}"
    out.scroll_into_view_if_needed()
    _shot(page, "browser-jobs-table.png")


def _out(page, index: int):  # type: ignore[no-untyped-def]
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-Cell-outputArea")


def _check_named_as_published(page) -> str:  # type: ignore[no-untyped-def]
    """Item 7: the folder ``panel_results`` published from the panel is the job
    ``panel_results`` everywhere: the card, the jobs browser's filter, ``%jobs``."""
    from playwright.sync_api import expect

    panel = _out(page, 0)
    _field(panel, "Paths").fill("panel_results")
    panel.locator(".jupyter-widgets.widget-button", has_text="Publish").click()
    card = panel.locator(".jupyter-publish-result")
    expect(card).to_contain_text("Published panel_results", timeout=60_000)
    job_id = JOB_ID.search(card.inner_text()).group(0)  # type: ignore[union-attr]
    browser = _out(page, 1)
    short = short_job_id(job_id)
    expect(browser.locator("select option", has_text=short)).to_have_count(1, timeout=30_000)  # live
    _field(browser, "Filter").fill("panel_results")
    expect(browser.locator(".widget-html", has_text="1 of 2 jobs")).to_be_visible(timeout=30_000)
    listed = browser.locator("select[size] option")  # the jobs list, not the Status dropdown
    expect(listed).to_have_count(1)
    assert re.search(rf"^{short}\s.*\bpanel_results\b", listed.first.inner_text()), listed.first.inner_text()
    _shot(page, "browser-panel-results-filter.png")
    _field(browser, "Filter").fill("")
    _run_cell(page, 3)  # %jobs again
    table = _out(page, 3).locator("table.jupyter-publish-table")
    expect(table).to_contain_text(short, timeout=30_000)
    row = table.evaluate(
        """(t, id) => {
          const heads = [...t.querySelectorAll('thead th')].map(h => h.innerText.trim());
          const row = [...t.querySelectorAll('tbody tr')].find(r => r.querySelector(`td[title="${id}"]`));
          const cells = [...row.querySelectorAll('td')];
          return Object.fromEntries(cells.map((d, i) => [heads[i], d.innerText.trim()]));
        }""",
        job_id,
    )
    assert row["name"] == "panel_results", row
    return job_id


def _check_labels_beside_values(card) -> None:  # type: ignore[no-untyped-def]
    """The facts' values start where their labels' column ends, on the left of the card
    (a notebook's stylesheet right-aligns cells and centres tables otherwise)."""
    rows = card.locator("table").first.evaluate(
        """t => [...t.rows].map(r => {
          const text = e => {
            const range = document.createRange();
            range.selectNodeContents(e);
            return range.getBoundingClientRect();
          };
          const [th, td] = r.cells;
          return {label: th.innerText, labelRight: th.getBoundingClientRect().right,
                  labelLeft: text(th).left, valueLeft: text(td).left,
                  tableLeft: t.getBoundingClientRect().left,
                  cardLeft: t.parentElement.getBoundingClientRect().left};
        })"""
    )
    assert len(rows) >= 3
    for row in rows:
        assert 0 <= row["valueLeft"] - row["labelRight"] < 8, row  # beside the label, not across the page
        assert row["labelLeft"] - row["tableLeft"] < 8 and row["tableLeft"] - row["cardLeft"] < 20, row


def _check_previews(page, problems: list[str], dialogs: list[str]) -> str:  # type: ignore[no-untyped-def]
    """Item 10: a %%publish cell's card counts what the cell made and names what every
    job adds, its values beside their labels; fetched back, the README renders as
    Markdown (its <script> and <img onerror> dropped, nothing run), the most useful files
    are previewed first and the rest (exitCode last) folded under "show all"."""
    from playwright.sync_api import expect

    seen = len(problems)
    _run_cell(page, 4)
    card = _out(page, 4).locator(".jupyter-publish-result")
    expect(card).to_contain_text("Published", timeout=60_000)
    expect(card).to_contain_text("Size4 files + stdout, stderr, exit code", use_inner_text=False)
    expect(card).not_to_contain_text("7 files")
    _check_labels_beside_values(card)
    card.scroll_into_view_if_needed()
    _shot(page, "browser-made-card.png")
    job_id = JOB_ID.search(card.inner_text()).group(0)  # type: ignore[union-attr]

    _run_cell(page, 5)
    out = _out(page, 5)
    head = out.locator(".jupyter-publish-fetch")
    expect(head).to_contain_text("verified", timeout=60_000)
    expect(head).to_contain_text("(4 files + stdout, stderr, exit code)")
    listing = out.locator(".jp-publish-preview > table").first  # the folder's files
    lefts = listing.evaluate(
        """t => [...t.querySelectorAll('tbody tr td:first-child')].map(d => {
          const range = document.createRange();
          range.selectNodeContents(d);
          return range.getBoundingClientRect().left - t.getBoundingClientRect().left;
        })"""
    )
    assert len(lefts) == 7 and max(lefts) < 12, lefts  # paths start at the left, not right-aligned
    markdown = out.locator(".jp-publish-markdown")
    expect(markdown.locator("h1")).to_have_text("Run 7")
    expect(markdown.locator("li")).to_have_count(2)
    expect(markdown.locator("em")).to_have_text("down")
    assert markdown.locator("script, img").count() == 0
    expect(out).not_to_contain_text("alert(")  # dropped, not shown as text
    opened = out.locator(".jp-publish-preview > details[open] > summary").all_inner_texts()
    assert len(opened) == 3 and set(opened) <= {"README.md", "metrics.csv", "plot.png"}, opened
    expect(out.locator("details[open] img[src^='data:image/png']")).to_have_count(1)  # the plot, shown
    show_all = out.locator("details.jp-publish-show-all")
    expect(show_all).not_to_have_attribute("open", "")
    folded = show_all.locator(":scope > details > summary").all_text_contents()  # folded: no inner text
    assert folded[0] == "run.log" and folded[-1] == "exitCode", folded  # the log before the exit code
    show_all.locator(":scope > summary").click()
    expect(show_all.locator(":scope > details > summary", has_text="exitCode")).to_be_visible()
    page.wait_for_timeout(300)  # an <img onerror> that ran would have reported by now
    assert dialogs == [] and problems[seen:] == [], (dialogs, problems[seen:])
    out.scroll_into_view_if_needed()
    _shot(page, "browser-made-previews.png")
    return job_id


def _check_failing_cell(page, lab: Lab) -> str:  # type: ignore[no-untyped-def]
    """Item 11: the failed cell's traceback is one click away and counts lines as the cell
    is shown; its kept outputs are linked under the working folder; ``--out r`` holds the
    failed job's record."""
    from playwright.sync_api import expect

    _run_cell(page, 6)
    out = _out(page, 6)
    failure = out.locator(".jupyter-publish-failure")
    expect(failure).to_contain_text("cell failed at line 3", timeout=60_000)
    expect(out.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")).to_contain_text(
        "UsageError: cell failed at line 3 (ZeroDivisionError"
    )
    details = failure.locator("details")
    traceback = details.locator("pre")
    expect(traceback).to_be_hidden()  # folded
    details.locator("summary", has_text="Traceback").click()
    expect(traceback).to_be_visible()
    expect(traceback).to_contain_text("ZeroDivisionError: division by zero")
    text = traceback.inner_text()
    assert re.search(r"line 3\b", text) and "1/0" in text and "line 4" not in text, text
    links = [
        urllib.parse.unquote(href)
        for href in failure.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    ]
    kept = [h for h in links if "jupyter-publish-outputs/" in h]
    assert len(kept) == 2 and not any(h.startswith(("/tmp", "file:")) for h in links), links
    folder = lab.root / re.search(r"jupyter-publish-outputs/[^/?#]+", kept[0]).group(0)  # type: ignore[union-attr]
    assert (folder / "half.txt").read_text() == "x" and "ZeroDivisionError" in (folder / "stderr").read_text()
    failure.scroll_into_view_if_needed()
    _shot(page, "browser-failed-cell.png")
    _run_cell(page, 7)
    expect(_out(page, 7).locator(".jp-OutputArea-output")).to_have_text("'failed'", timeout=30_000)
    return failure.inner_text()


CONTRAST = """root => {
  const parse = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = rgb => {
    const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
  };
  const over = (fg, bg, alpha) => fg.slice(0, 3).map((c, i) => c * alpha + bg[i] * (1 - alpha));
  const background = e => {
    for (; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0.5) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const opacity = e => {
    let o = 1;
    for (; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
    return o;
  };
  const found = [];
  for (const e of [root, ...root.querySelectorAll('*')]) {
    const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !e.getClientRects().length) continue;
    const bg = background(e), fg = parse(getComputedStyle(e).color);
    const seen = over(fg, bg, (fg.length === 4 ? fg[3] : 1) * opacity(e));
    const [a, b] = [lum(seen), lum(bg)];
    found.push({ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05),
                text: e.textContent.trim().slice(0, 40),
                color: getComputedStyle(e).color, background: bg.join(',')});
  }
  return found.sort((x, y) => x.ratio - y.ratio);
}"""
"""Every visible text under ``root`` with its contrast ratio against what is behind it
(WCAG's formula), lowest first."""


def _check_dark_theme(page) -> None:  # type: ignore[no-untyped-def]
    """Under JupyterLab Dark the cards and the jobs browser stay readable: every text in
    them has at least WCAG AA's 4.5:1 contrast with its background."""
    from playwright.sync_api import expect

    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^JupyterLab Dark$")).click()
    expect(page.locator("body[data-jp-theme-light='false']")).to_have_count(1, timeout=30_000)
    page.wait_for_timeout(500)  # the theme's stylesheet applied
    for name, scope in (
        ("publish card", _out(page, 4).locator(".jupyter-publish-result")),
        ("fetched previews", _out(page, 5)),
        ("failure", _out(page, 6).locator(".jupyter-publish-failure")),
        ("jobs browser", _out(page, 1)),
    ):
        texts = scope.evaluate(CONTRAST)
        assert texts and texts[0]["ratio"] >= 4.5, (name, texts[:3])
    _out(page, 4).scroll_into_view_if_needed()
    _shot(page, "browser-dark-card.png")
    _out(page, 1).scroll_into_view_if_needed()
    _shot(page, "browser-dark-jobs.png")


def test_publish_button_in_jupyterlab(lab: Lab, tmp_path: Path, isolated_home: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1000},
            permissions=["clipboard-read", "clipboard-write"],
        )
        browser_pid_dir = tmp_path / "chromium-profile"
        dialogs: list[str] = []
        problems: list[str] = []
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            _open_notebook(page, lab)
            for index in range(3):
                _run_cell(page, index)
            button = page.locator(".jupyter-widgets.widget-button", has_text="Publish")
            expect(button).to_be_enabled(timeout=60_000)
            browser_out = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-Cell-outputArea")
            expect(browser_out.locator(".widget-html", has_text="0 of 0 jobs")).to_be_visible(timeout=60_000)
            _check_options(page)
            button.click()
            card = page.locator(".jupyter-publish-result")
            expect(card).to_contain_text("Published", timeout=60_000)
            job_id = JOB_ID.search(card.inner_text()).group(0)  # type: ignore[union-attr]
            expect(page.locator(".widget-html", has_text=job_id).first).to_be_visible()  # the status line
            card.scroll_into_view_if_needed()
            _shot(page, "browser-publish.png")
            cid = api.jobs().set_index("job_id").loc[job_id]["root_cid"]
            _check_jobs_browser(page, job_id, cid)
            _check_fetch(page, job_id)
            _check_jobs_table(page, job_id)
            panel_job = _check_named_as_published(page)
            made_job = _check_previews(page, problems, dialogs)
            _check_failing_cell(page, lab)
            _check_dark_theme(page)
            print("console errors:", problems)
        except Exception:
            _shot(page, "browser-failure.png")
            print(lab.log.read_text()[-4000:])
            raise
        finally:
            context.close()
    assert not _chromium_left(browser_pid_dir)

    row = api.jobs().set_index("job_id").loc[job_id]
    assert os.environ["JUPYTER_PUBLISH_HOME"] == str(isolated_home)
    assert row["status"] == "published" and row["n_files"] == 2
    published = {r["path"] for r in api.cids(job_id).to_dict("records") if r["kind"] == "file"}
    assert published == {"metrics.json", "measurements.csv"}
    jobs = api.jobs().set_index("job_id")
    assert jobs.loc[panel_job, "name"] == "panel_results"
    assert jobs.loc[made_job, "status"] == "published" and jobs.loc[made_job, "n_files"] == 7
    assert (jobs["status"] == "failed").sum() == 1
    assert time.monotonic() - started < 200


def _chromium_left(profile: Path) -> list[int]:
    """Chromium processes still using this test's profile folder."""
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(profile).encode() in cmdline and _alive(int(entry.name)):
                left.append(int(entry.name))
    return left
