"""``jupyter-publish serve``'s pages in a real browser (Debian's chromium): the jobs list
and one job's files render as tables, a job named like a script is shown as text and runs
nothing (no dialog, no console error), and a click leads from the list to the job.
Screenshots go to ``tests/artifacts/serve-*.png``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.serve import make_server

pytestmark = [pytest.mark.browser, pytest.mark.servers, pytest.mark.timeout(120)]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
HOSTILE = "<img src=x onerror=alert(1)><script>alert('job')</script>\"q"
TOKEN = "t" * 43


@pytest.fixture
def served(isolated_home: Path) -> Iterator[str]:
    """This home's store served on a free loopback port (in this process): the base URL."""
    server = make_server(0, TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{TOKEN}"
    finally:
        server.shutdown()
        server.server_close()


def test_serve_pages_in_chromium(served: str, tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "Debian's chromium is not installed: apt-get install chromium"
    from playwright.sync_api import expect, sync_playwright

    results = tmp_path / "results"
    (results / "tables").mkdir(parents=True)
    (results / "tables" / "a.csv").write_text("x,y\n1,2\n")
    (results / "<b>bold<b>.txt").write_text("b")
    older = jp.publish(results, "local", name="archived")
    newer = jp.publish(results, "local", archive=False, name=HOSTILE)

    dialogs: list[str] = []
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 700})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(served + "/")
            rows = page.locator("tbody tr")
            expect(rows).to_have_count(2)
            expect(rows.nth(0)).to_contain_text(HOSTILE)  # newest first, its name as text
            expect(rows.nth(1)).to_contain_text("archived")
            assert older.root_cid and older.root_cid in rows.nth(1).inner_text()
            headers = page.locator("thead th").all_inner_texts()
            assert headers[:6] == ["time", "name", "files", "size", "content CID", "status"]
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "serve-jobs.png"), full_page=True)

            page.get_by_role("link", name=newer.job_id).click()
            expect(page.locator("h1")).to_contain_text(newer.job_id)
            files = page.locator("tbody tr")
            expect(files).to_have_count(2)
            expect(page.locator("tbody")).to_contain_text("<b>bold<b>.txt")
            record = next(f for f in newer.files if f.path == "tables/a.csv")
            expect(page.locator("tbody")).to_contain_text(record.sha256)
            page.screenshot(path=str(ARTIFACTS / "serve-job.png"), full_page=True)

            page.get_by_role("link", name="all jobs").click()
            page.get_by_role("link", name=older.job_id).click()
            expect(page.locator("tbody")).to_contain_text("tables/a.csv")  # inside the archive
        finally:
            browser.close()
    assert dialogs == [] and problems == []
