"""End to end in a real browser: JupyterLab + the three panels + Debian's chromium.

Starts JupyterLab on a free loopback port with a private token, config and state, opens a
notebook whose cells show ``publish_panel``, ``jobs_browser`` and ``fetch_panel``, runs
them, and drives each as a person would: the publish panel's Options (only the chosen
destination's fields, every input inside its box), Publish (the result card that the
kernel's background thread writes through widget traits), the jobs browser (the new job
listed without Refresh, its files table inside the cell, Copy CID read back from the
clipboard) and the fetch panel (the job fetched, its preview shown). The ledger in the
server's ``JUPYTER_PUBLISH_HOME`` must hold the job the page shows. Screenshots go to
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
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

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
    notebook = _notebook(CELL, BROWSER_CELL, FETCH_CELL, JOBS_CELL)
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
        try:
            page = context.pages[0] if context.pages else context.new_page()
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
