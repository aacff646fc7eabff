"""The tutorials in notebooks/ run top to bottom in a real kernel and show what they promise.

Each notebook is copied into a temporary folder and executed there with nbclient, with its
own store and ledger (``JUPYTER_PUBLISH_HOME``) and its own ``TMPDIR``, so every server it
starts through ``jupyter_publish.testing`` keeps its files, and therefore its command line,
under that folder. Afterwards any process whose command line still names the folder is a
server the notebook failed to stop: it is killed by PID and the test fails. No output of
any notebook may show something shaped like a credential.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from jupyter_publish.crate import check_crate
from jupyter_publish.ledger import Ledger

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120
JOB_ID = re.compile(r"j-[0-9A-Z]{26}")
# What credentials look like when a notebook shows them: the variables' names next to a
# value, the access key IDs jupyter_publish.testing.SeaweedS3 makes, a presigned URL's
# signature, an Authorization header.
SECRET_SHAPES = re.compile(
    r"AWS_SECRET_ACCESS_KEY\W+[^\s'\"*]|AWS_SESSION_TOKEN\W+[^\s'\"*]|\bJ[PWR][0-9A-F]{18}\b"
    r"|(?i:X-Amz-Signature=|X-Amz-Credential=|Authorization:\s*[^\s*])"
)
# Settings of the machine running the tests that would point a tutorial elsewhere.
_FOREIGN_ENV = (
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "IPFS_API",
    "IPFS_GATEWAY",
    "IPFS_PATH",
    "JUPYTER_PUBLISH_HTTP_HEADERS",
    "JUPYTER_PUBLISH_HTTP_AUTH",
)


# -- processes ----------------------------------------------------------------------------


def processes_naming(path: Path) -> dict[int, str]:
    """PID -> command line of every process whose command line contains ``path``."""
    needle = str(path)
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle in cmdline:
            found[int(entry.name)] = cmdline.strip()
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is dead for our purpose
        status = Path(f"/proc/{pid}/stat").read_text()
        if status.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
    return True


def kill_by_pid(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM each PID (its whole group when it leads one, as our servers do), then SIGKILL."""

    def send(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:  # a server started in its own session: nginx workers too
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    for pid in pids:
        send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            send(pid, signal.SIGKILL)


# -- running a notebook -------------------------------------------------------------------


def kernel_env(home: Path, scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env.update(
        JUPYTER_PUBLISH_HOME=str(home),
        JUPYTER_PUBLISH_QUIET="1",
        TMPDIR=str(scratch),  # servers' work dirs (and so their command lines) land here
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


def execute(notebook: Path, root: Path) -> tuple[Any, Path, Path]:
    """Run a copy of ``notebook`` in ``root/work``; return (executed notebook, work dir, home)."""
    work, home, scratch = root / "work", root / "home", root / "tmp"
    for folder in (work, home, scratch):
        folder.mkdir(parents=True)
    copy = work / notebook.name
    shutil.copyfile(notebook, copy)
    nb = nbformat.read(copy, as_version=4)
    # The spec the notebooks name; jupyter_client runs it with this interpreter, and falls
    # back to ipykernel's own spec when no "python3" kernelspec is installed.
    manager = KernelManager(kernel_name="python3")
    manager.shutdown_wait_time = 30  # time for atexit handlers to stop servers, then SIGKILL
    client = NotebookClient(
        nb,
        km=manager,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(work)}},
    )
    try:
        client.execute(env=kernel_env(home, scratch), cwd=str(work))
    finally:
        # nbclient leaves a kernel it was handed running. A graceful shutdown lets the
        # notebook's atexit handlers stop its servers when a cell failed half-way.
        if manager.has_kernel:
            manager.shutdown_kernel(now=False)
    return nb, work, home


@pytest.fixture
def run_notebook(tmp_path: Path) -> Iterator[Any]:
    """Execute a notebook; afterwards, kill by PID any server it left running and fail."""
    root = tmp_path / "nb"
    before = set(processes_naming(root))

    def run(notebook: Path) -> tuple[Any, Path, Path]:
        return execute(notebook, root)

    leftovers: dict[int, str] = {}
    try:
        yield run
    finally:
        # The kernel is gone by now; give servers it stopped a moment to finish exiting.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            leftovers = {pid: cmd for pid, cmd in processes_naming(root).items() if pid not in before}
            if not leftovers:
                break
            time.sleep(0.2)
        kill_by_pid(sorted(leftovers))
    if leftovers:
        listing = "\n".join(f"  {pid}: {cmd[:200]}" for pid, cmd in sorted(leftovers.items()))
        pytest.fail(f"the notebook left servers running (killed now):\n{listing}")


# -- reading outputs -----------------------------------------------------------------------


def code_cell(nb: Any, start: str) -> Any:
    """The one code cell whose source starts with ``start``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.lstrip().startswith(start)]
    assert len(cells) == 1, f"expected one code cell starting with {start!r}, found {len(cells)}"
    return cells[0]


def texts(cell: Any, mime: str = "text/plain") -> list[str]:
    """Every output of ``cell`` as text: streams, and ``mime`` of rich outputs."""
    found = []
    for output in cell.outputs:
        if output.output_type == "stream":
            found.append(output.text)
        elif output.output_type in ("display_data", "execute_result") and mime in output.data:
            found.append(output.data[mime])
    return found


def text(cell: Any, mime: str = "text/plain") -> str:
    return "\n".join(texts(cell, mime))


def table_rows(html: str) -> int:
    """Rows in the body of a pandas HTML table."""
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    return len(re.findall(r"<tr\b", body.group(1))) if body else 0


def ledger_jobs(home: Path) -> list[dict[str, Any]]:
    return Ledger(home / "ledger.sqlite").jobs()


def assert_no_secrets(nb: Any) -> None:
    """No output (text, HTML, any text MIME type, tracebacks) shows something shaped like a credential."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            shown = [output.get("text", ""), *output.get("traceback", [])]
            shown += [v for v in output.get("data", {}).values() if isinstance(v, str)]
            for value in shown:
                found = SECRET_SHAPES.search(value)
                assert not found, f"cell {index} shows {found.group(0)!r}"


def assert_card(cell: Any) -> str:
    """A result card: 'Published', a job ID; returns the job ID."""
    html = text(cell, "text/html")
    assert "Published" in html, html[:500]
    match = JOB_ID.search(html)
    assert match, html[:500]
    return match.group(0)


def assert_verified_fetches(cell: Any, count: int) -> list[str]:
    fetches = [t for t in texts(cell) if t.startswith("fetched ")]
    assert len(fetches) == count, fetches
    for line in fetches:
        first = line.splitlines()[0]
        assert first.endswith("verified)") and "NOT verified" not in first, first
    return fetches


# -- the notebooks ----------------------------------------------------------------------------


def test_every_notebook_is_checked() -> None:
    assert [nb.stem for nb in NOTEBOOKS] == list(CHECKS), "add the new notebook's checks below"


def check_quickstart(nb: Any, work: Path, home: Path) -> None:
    publish = code_cell(nb, "%%publish --out run")
    job_id = assert_card(publish)
    assert "final loss" in text(publish)  # the cell's own output still shows

    jobs = ledger_jobs(home)
    assert [(j["job_id"], j["status"], j["type"]) for j in jobs] == [(job_id, "published", "local")]

    assert table_rows(text(code_cell(nb, "%jobs"), "text/html")) == 1
    cids = text(code_cell(nb, "%cids"), "text/html")
    assert table_rows(cids) >= 5 and "loss.csv" in cids and "loss.png" in cids

    fetch = code_cell(nb, "%fetch")
    assert_verified_fetches(fetch, 1)
    assert "<img" in text(fetch, "text/html")  # the plot is previewed inline
    assert (work / job_id / "loss.csv").is_file() and (work / job_id / "loss.png").is_file()
    assert "final loss" in (work / job_id / "stdout").read_text()

    matches = text(code_cell(nb, "from pathlib import Path"))
    assert matches.count("matches the ledger: True") == 3 and "False" not in matches
    assert "bafy" in matches

    errors = text(code_cell(nb, "attempts = {"))
    assert "NotFoundError" in errors and errors.count("DestinationError") == 2


def check_s3_ipfs_http(nb: Any, work: Path, home: Path) -> None:
    s3 = code_cell(nb, "%%publish s3://")
    s3_job = assert_card(s3)
    key = re.search(r"S3 key +(\S+)", text(code_cell(nb, 'print("stored at"')))
    assert key, text(code_cell(nb, 'print("stored at"'))
    # {time} reached the publisher even though `time` is a module in the notebook.
    assert re.fullmatch(rf"runs/{s3_job}/\d{{8}}-\d{{6}}/outputs\.tar\.gz", key.group(1)), key.group(1)
    assert "module" not in key.group(1)

    ipfs_job = assert_card(code_cell(nb, "%publish readings --to ipfs://"))
    http_job = assert_card(code_cell(nb, "%%publish {{drop_url}}"))
    jobs = {j["job_id"]: j for j in ledger_jobs(home)}
    # type is the result's (Bacalhau's Type, as PublishedResult.type); scheme where it went
    assert {job: (jobs[job]["type"], jobs[job]["scheme"]) for job in (s3_job, ipfs_job, http_job)} == {
        s3_job: ("s3", "s3"),
        ipfs_job: ("ipfs", "ipfs"),
        http_job: ("urlDownload", "http"),
    }
    assert all(j["status"] == "published" for j in jobs.values())

    fetch = code_cell(nb, "%%fetch")
    fetched = assert_verified_fetches(fetch, 4)
    assert fetched[0].startswith(f"fetched {s3_job} ")
    assert fetched[1].startswith(f"fetched {http_job} ")
    assert fetched[2].startswith(f"fetched ipfs://{jobs[ipfs_job]['root_cid']} ")
    assert fetched[3].startswith("fetched s3://tutorial-results/runs/*/outputs.tar.gz ")
    assert (work / s3_job / "summary.csv").is_file()
    assert (work / http_job / "report.md").is_file()
    assert (work / jobs[ipfs_job]["root_cid"] / "readings.parquet").is_file()
    assert (work / "outputs" / "summary.csv").is_file()

    assert table_rows(text(code_cell(nb, "%cids"), "text/html")) >= 10
    pasted = text(code_cell(nb, "%%cids"), "text/html")
    assert table_rows(pasted) == 4 and "station-data/alpha.csv" in pasted

    by_destination = text(code_cell(nb, "import jupyter_publish as jp"))
    assert "s3://tutorial-results/runs/{jobID}/{date}-{time}/" in by_destination
    assert "ipfs://" in by_destination and "/drop/{jobID}/" in by_destination


def check_bacalhau(nb: Any, work: Path, home: Path) -> None:
    published = text(code_cell(nb, "# A node may add results"))
    cids = re.findall(r"\b(bafy\w+|Qm\w+)", published)
    assert len(cids) == 2, published

    table = text(code_cell(nb, "import pandas as pd"), "text/html")
    assert table_rows(table) == 3 and "team-results" in table
    assert all(cid in table for cid in cids)

    ours = text(code_cell(nb, "on_ipfs = "), "text/html")
    assert table_rows(ours) == 2 and ours.count("True") == 2 and "False" not in ours

    fetch = code_cell(nb, "from jupyter_publish.bacalhau import")
    assert f"'CID': '{cids[0]}'" in text(fetch)
    assert_verified_fetches(fetch, 1)
    assert (work / "word-count" / "outputs" / "counts.csv").read_text().startswith("word,count\n")
    assert "whale" in text(code_cell(nb, "print(fetched)"), "text/html")

    found = text(code_cell(nb, "%%cids"), "text/html")
    assert table_rows(found) == 3 and "outputs/counts.csv" in found
    assert all(cid in found for cid in cids)


def check_team(nb: Any, work: Path, home: Path) -> None:
    alice_job = assert_card(code_cell(nb, "%%publish s3://{{bucket}}/runs/{jobID}/ --name station-summary"))
    bob_job = assert_card(code_cell(nb, "%%publish s3://{{bucket}}/runs/{jobID}/ --name warmest-station"))
    # Two machines, two ledgers: each holds only its own job; the kernel's default is unused.
    machines = work / "machines"
    assert [j["job_id"] for j in ledger_jobs(machines / "alice")] == [alice_job]
    assert [j["job_id"] for j in ledger_jobs(machines / "bob")] == [bob_job]
    assert not (home / "ledger.sqlite").exists()

    listing = code_cell(nb, 'machine("bob")\nprint')
    assert "jobs in Bob's own ledger: 0" in text(listing)
    listed = text(listing, "text/html")
    assert table_rows(listed) == 1 and alice_job in listed

    fetch = code_cell(nb, "alice_id = ")
    assert assert_verified_fetches(fetch, 1)[0].startswith(f"fetched {alice_job} ")
    assert "verified: True" in text(fetch)
    assert (work / "from-alice" / "summary.csv").read_text().startswith("station,min,mean,max\n")

    assert text(code_cell(nb, "[(i[")) == f"[('{alice_job}', 'fetch')]"
    for start in ('machine("alice")\nedges', 'machine("bob")\n%jobs --lineage'):
        edges = text(code_cell(nb, start), "text/html")
        assert table_rows(edges) == 1 and alice_job in edges and bob_job in edges, start

    crate = json.loads((work / "crate-station-summary" / "ro-crate-metadata.json").read_text())
    assert check_crate(crate) == []
    assert "summary.csv" in text(code_cell(nb, "import json"))


def check_steps(nb: Any, work: Path, home: Path) -> None:
    generate = assert_card(code_cell(nb, "%%publish local --name generate"))
    summarise = assert_card(code_cell(nb, "%%publish local --name summarise"))
    assert "input verified: True" in text(code_cell(nb, "%%publish local --name summarise"))
    assert text(code_cell(nb, "[(i[")) == f"[('{generate}', 'fetch')]"
    step3 = re.search(r"step 3 published (j-\w+)", text(code_cell(nb, "done = subprocess.run(")))
    assert step3, text(code_cell(nb, "done = subprocess.run("))
    report = step3.group(1)
    assert (work / "report" / "report.md").read_text().endswith("Warmest station: charlie\n")

    edges = text(code_cell(nb, "edges = jp.lineage"), "text/html")
    assert table_rows(edges) == 2 and all(job in edges for job in (generate, summarise, report))

    assert "nothing to publish (--optional)" in text(
        code_cell(nb, "%%publish local --name alerts --optional")
    )
    assert "a job named alerts: False" in text(code_cell(nb, 'print("a job named alerts'))
    assert "UsageError: nothing to publish" in text(code_cell(nb, "from IPython.core.error import"))

    made = text(code_cell(nb, "from jupyter_publish.lineage import forget_fetches"))
    assert "same content CID: True" in made and "inputs recorded: [] []" in made
    stored = text(code_cell(nb, "pd.concat("), "text/html")
    assert table_rows(stored) == 7 and stored.count("model.tar.gz") == 1
    assert sorted(p.name for p in (work / "steps" / "weights-only").iterdir()) == ["weights.csv"]
    assert sorted(p.name for p in (work / "steps" / "model").iterdir()) == ["config.json", "weights.csv"]

    jobs = ledger_jobs(home)
    assert sorted(j["name"] for j in jobs) == ["generate", "model", "model", "report", "summarise"]
    assert all(j["status"] == "published" for j in jobs)


def check_s3_job(nb: Any, work: Path, home: Path) -> None:
    jobs = {j["name"]: j for j in ledger_jobs(home)}
    assert {name: (j["type"], j["status"]) for name, j in jobs.items()} == {
        "goes16-sample": ("s3", "published"),
        "goes16-radiance": ("ipfs", "published"),
    }

    # The glob picked the four channel-1 scans of 12:00, none of the decoys beside them.
    glob = "s3://goes16-sample/ABI-L1b-RadC/2000/001/12/OR_ABI-L1b-RadC-M3C01*"
    fetch = code_cell(nb, "%fetch s3://")
    assert assert_verified_fetches(fetch, 1)[0].startswith(f"fetched {glob} -> inputs ")
    fetched = sorted(p.name for p in (work / "inputs").iterdir())
    assert len(fetched) == 4 and all(n.startswith("OR_ABI-L1b-RadC-M3C01_") for n in fetched), fetched
    assert sorted(p.name for p in (work / "sample" / "12").iterdir() if "M3C01" in p.name) == fetched

    publish = code_cell(nb, "%%publish ipfs://")
    job_id = assert_card(publish)
    assert job_id == jobs["goes16-radiance"]["job_id"]
    assert text(publish).count("2017") == 4  # one summary row per scan
    root = jobs["goes16-radiance"]["root_cid"]
    cids = text(code_cell(nb, 'print("root CID"'), "text/html")
    assert table_rows(cids) == 6 and root in cids and "summary.csv" in cids and "scans.png" in cids
    assert text(code_cell(nb, '[(i["ref"]')) == f"[('{glob}',\n  'uri',\n  'fetch')]"

    check = code_cell(nb, "%fetch ipfs://")
    assert assert_verified_fetches(check, 1)[0].startswith(f"fetched ipfs://{root} -> from-ipfs ")
    assert "folder: True" in text(check)
    same = text(check, "text/html")
    assert table_rows(same) == 5 and same.count("<td>True</td>") == 5 and "False" not in same
    summary = (work / "from-ipfs" / "summary.csv").read_text().splitlines()
    assert summary[0] == "created,mean,max,cloudy_%" and len(summary) == 5, summary


def check_long_running(nb: Any, work: Path, home: Path) -> None:
    jobs = {j["job_id"]: j for j in ledger_jobs(home)}
    by_name = {j["name"]: j for j in jobs.values()}
    training_cell = code_cell(nb, "%%publish {{drop_url}} --sync-every 1s --name training")
    training = by_name["training"]
    assert "Published" in text(training_cell, "text/html") and training["job_id"] in text(
        training_cell, "text/html"
    )
    assert training["status"] == "published" and training["rounds"] >= 1
    # Rounds were pushed while the cell ran (only then): their notes are in its output.
    shown = text(training_cell)
    assert shown.index("epoch 1:") < shown.index("(round 1, job j-"), shown
    (jobs_cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.strip() == "%jobs"]
    listed = text(jobs_cell)  # one row, its rounds counted
    assert re.search(rf"training +published +\S+ +10 +{training['rounds']} ", listed), listed
    assert table_rows(text(code_cell(nb, "%jobs --rounds"), "text/html")) == 1 + training["rounds"]

    links = text(code_cell(nb, "files = [(f.path"), "text/html")
    assert table_rows(links) == 10 and links.count("http://127.0.0.1:") == 10
    assert "sha256 as recorded: True" in text(code_cell(nb, "metrics_link = "))

    failed = code_cell(nb, "%%publish {{drop_url}} --sync-every 1s --name simulation --out crashed")
    assert "UsageError: cell failed at line 9 (FloatingPointError" in text(failed)
    crashed = by_name["simulation"]
    assert f"job {crashed['job_id']} recorded as failed" in text(failed)
    assert crashed["status"] == "failed" and crashed["rounds"] >= 1
    kept = work / "jupyter-publish-outputs" / crashed["job_id"]
    assert (kept / "state-4.txt").is_file() and (kept / "exitCode").read_text() == "1"
    assert "FloatingPointError: simulation diverged at step 4" in (kept / "stderr").read_text()
    record = text(code_cell(nb, 'print("job    "'))
    assert (
        f"{crashed['job_id']} failed" in record
        and f"kept in jupyter-publish-outputs/{crashed['job_id']}" in record
    )

    recovered = text(code_cell(nb, "all_jobs = jp.jobs(rounds=True)"))
    assert recovered.count("verified: True") == crashed["rounds"] and "False" not in recovered
    assert (work / "recovered" / "round-1" / "state-1.txt").is_file()

    assert by_name["simulation (partial)"]["n_files"] == 7
    assert by_name["simulation-resumed"]["status"] == "published"
    assert text(code_cell(nb, 'sorted(i["job_id"] for i in resumed.inputs)')) == "True"

    anyway = code_cell(nb, "%%publish {{drop_url}} --no-archive --name quick-check --publish-on-error")
    checked = by_name["quick-check"]
    assert checked["status"] == "published" and checked["job_id"] in text(anyway, "text/html")
    assert f"published anyway as job {checked['job_id']}" in text(anyway)
    assert f"{checked['job_id']} exitCode: 1" in text(code_cell(nb, "print(checked.job_id"))


def check_widgets(nb: Any, work: Path, home: Path) -> None:
    jobs = {j["name"]: j for j in ledger_jobs(home)}
    assert sorted(jobs) == ["station-summary", "warmest-station"]  # the refused publish left no row
    summary, warmest = jobs["station-summary"], jobs["warmest-station"]
    assert all(j["status"] == "published" for j in jobs.values())
    widget = "application/vnd.jupyter.widget-view+json"
    assert "0 of 0 jobs" in text(code_cell(nb, "browser = jobs_browser()"))
    assert texts(code_cell(nb, "panel = publish_panel()"), widget)

    published = text(code_cell(nb, 'panel.paths.value = "results"'), "text/html")
    assert f"Published job <code>{summary['job_id']}</code>" in published and "Published" in published
    assert summary["n_files"] == 2

    fields = text(code_cell(nb, "for destination in ("))
    assert re.search(r"local +option fields: none +credentials: hidden", fields), fields
    assert re.search(r"s3://\S+ +option fields: endpoint, region\b.* credentials: shown", fields), fields
    assert "no bucket in" in text(code_cell(nb, 'panel.destination.value = "s3://"'), "text/html")

    listing = text(code_cell(nb, "print(browser.count.value)"))
    assert "2 of 2 jobs" in listing and "filtered: 1 of 2 jobs" in listing
    assert "station-summary" in listing and "warmest-station" in listing

    selected = code_cell(nb, "browser.select(")
    assert table_rows(text(selected, "text/html")) == 4
    assert f"Copy CID copies: {summary['root_cid']}" in text(selected)

    browsed = text(code_cell(nb, "browser.fetch_button.click()"), "text/html")
    assert "Fetched 2 files into" in browsed and "verified" in browsed and "<img" in browsed
    assert (work / summary["job_id"] / "summary.csv").read_text().startswith("station,min,mean,max\n")

    fetched = text(code_cell(nb, "fetcher.ref.value = warmest.job_id"), "text/html")
    assert "Fetched 4 files into <code>fetched/warmest</code>, verified" in fetched
    assert "Warmest station" in fetched  # the report, previewed
    assert "charlie" in (work / "fetched" / "warmest" / "report.md").read_text()
    assert warmest["job_id"] in fetched

    assert "no job &#x27;j-NOSUCHJOB&#x27;" in text(
        code_cell(nb, 'fetcher.ref.value = "j-NOSUCHJOB"'), "text/html"
    )
    assert texts(code_cell(nb, "%jobs --ui"), widget)


CHECKS = {
    "01-quickstart-local": check_quickstart,
    "02-s3-ipfs-http": check_s3_ipfs_http,
    "03-bacalhau-results": check_bacalhau,
    "04-working-as-a-team": check_team,
    "05-passing-results-between-steps": check_steps,
    "06-a-job-over-s3-data": check_s3_job,
    "07-long-running-work": check_long_running,
    "08-widgets": check_widgets,
}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(notebook: Path, run_notebook: Any) -> None:
    nb, work, home = run_notebook(notebook)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert_no_secrets(nb)
    CHECKS[notebook.stem](nb, work, home)
