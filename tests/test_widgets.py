"""The notebook widgets, driven at the state level (no browser): values in, clicks, ledger out."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jupyter_publish import api
from jupyter_publish.errors import SourceError
from jupyter_publish.progress import listening, progress_bar
from jupyter_publish.testing.widgets import output_text
from jupyter_publish.widgets import (
    FetchPanel,
    JobsBrowser,
    PublishPanel,
    fetch_panel,
    jobs_browser,
    publish_panel,
    split_paths,
)

ACCESS_KEY = "AKIAWIDGETTEST0000001"
SECRET_KEY = "s3cr3t-typed-into-a-password-box-XYZ"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    (folder / "logs").mkdir(parents=True)
    (folder / "table.csv").write_text("step,loss\n1,0.5\n2,0.25\n")
    (folder / "notes.txt").write_text("hello from the widget test\n")
    (folder / "logs" / "stdout").write_text("epoch 1: ok\n")
    return folder


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _jobs() -> dict[str, dict]:
    return {row["job_id"]: row for row in api.jobs().to_dict("records")}


def _ledger_bytes(home: Path) -> bytes:
    """Everything the ledger holds on disk, WAL included."""
    return b"".join(p.read_bytes() for p in home.glob("ledger.sqlite*"))


def _assert_one_line_error(panel: PublishPanel | FetchPanel, *needles: str) -> None:
    assert panel.last_error and "\n" not in panel.last_error
    assert "Traceback" not in panel.status.value and "var(--jp-error-color1" in panel.status.value
    assert panel.progress.bar_style == "danger"
    for needle in needles:
        assert needle in panel.last_error


# -- publish panel ----------------------------------------------------------------------


def test_publish_now_records_the_job_and_shows_the_card(results: Path) -> None:
    panel = publish_panel(paths=[results], destination="local")
    result = panel.publish_now()

    assert result is not None and panel.last_result is result and panel.last_error is None
    row = _jobs()[result.job_id]
    assert row["status"] == "published" and row["n_files"] == 3
    for record in (f for f in result.files if f.kind == "file"):
        assert record.sha256 == _sha256(results / record.path)
    assert result.job_id in panel.status.value
    shown = output_text(panel.output)
    assert "Published" in shown and result.job_id in shown and result.root_cid in shown
    assert panel.progress.value == 1.0 and panel.progress.bar_style == "success"


def test_button_click_publishes_in_a_background_thread(results: Path, monkeypatch) -> None:
    seen: list[threading.Thread] = []
    real_publish = api.publish

    def spy(*args, **kwargs):
        seen.append(threading.current_thread())
        return real_publish(*args, **kwargs)

    monkeypatch.setattr(api, "publish", spy)
    panel = publish_panel(paths=str(results), name="clicked", archive=False)
    panel.button.click()
    assert panel.wait(60)

    assert seen and seen[0] is not threading.main_thread()
    assert panel.last_result is not None and panel.last_result.name == "clicked"
    assert panel.last_result.archive is None  # the Options accordion's checkbox was honoured
    assert _jobs()[panel.last_result.job_id]["status"] == "published"
    assert not panel.button.disabled


def test_progress_moves_the_bar(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    panel = publish_panel(paths=[big], archive=False)
    values: list[float] = []
    panel.progress.observe(lambda change: values.append(change["new"]), names="value")
    assert panel.publish_now() is not None
    assert any(0.0 < v < 1.0 for v in values), values
    assert values[-1] == 1.0 and len(values) <= 102  # 1% steps, not one message per chunk


def test_bad_destination_is_one_line_and_records_nothing(results: Path) -> None:
    panel = publish_panel(paths=[results], destination="ftp://x")
    assert panel.publish_now() is None
    _assert_one_line_error(panel, "ftp://x")
    assert panel.last_result is None and panel.output.outputs == ()
    assert _jobs() == {}


def test_missing_path_is_one_line_and_a_failed_row(tmp_path: Path) -> None:
    panel = publish_panel(paths=[tmp_path / "no-such-folder"])
    panel.button.click()
    assert panel.wait(30)
    _assert_one_line_error(panel, "no-such-folder")
    (row,) = _jobs().values()
    assert row["status"] == "failed" and "no-such-folder" in row["error"]


def test_empty_paths_ask_for_paths_without_a_row() -> None:
    panel = publish_panel(paths=" , ")
    assert panel.publish_now() is None
    _assert_one_line_error(panel, "nothing to publish")
    assert _jobs() == {}


def test_default_paths_come_from_OUTPUT(monkeypatch, tmp_path: Path) -> None:
    import IPython

    shell = type("Shell", (), {"user_ns": {"OUTPUT": tmp_path / "out"}})()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    assert publish_panel().paths.value == str(tmp_path / "out")
    assert publish_panel(paths=["a.csv", tmp_path]).paths.value == f"a.csv, {tmp_path}"
    assert split_paths(" a.csv, results/ ,, *.png ") == ["a.csv", "results/", "*.png"]


def test_the_magics_way_of_calling_the_panel(tmp_path: Path) -> None:
    """``%publish --ui`` passes its shell and configured default destination."""
    shell = type("Shell", (), {"user_ns": {"OUTPUT": tmp_path / "cell-output"}})()
    panel = publish_panel(shell=shell, default_destination="s3://bucket/{jobID}/")
    assert panel.paths.value == str(tmp_path / "cell-output")
    assert panel.destination.value == "s3://bucket/{jobID}/"
    assert panel.extra_options == {}
    assert publish_panel(destination="ipfs://", default_destination="s3://b/k").destination.value == "ipfs://"
    assert publish_panel().destination.value == "local"


def test_options_fill_fields_and_only_matching_ones_reach_the_backend() -> None:
    panel = publish_panel(destination="s3://b/k", endpoint="http://127.0.0.1:9", region="eu-west-1", name="n")
    assert panel.endpoint.value == "http://127.0.0.1:9" and panel.name.value == "n"
    assert panel.backend_options("s3") == {"endpoint": "http://127.0.0.1:9", "region": "eu-west-1"}
    assert panel.backend_options("local") == {}
    panel.api.value = "http://127.0.0.1:5001"
    assert panel.backend_options("ipfs") == {"api": "http://127.0.0.1:5001"}


def test_recent_destinations_are_offered(results: Path) -> None:
    api.publish(results, "local", quiet=True)
    options = publish_panel().destination.options
    assert options[0] == "local" and "ipfs://" in options and "s3://" in options


@pytest.fixture
def env_writes(monkeypatch) -> list[tuple[str, str, str | None]]:
    """Every write to os.environ from any thread while the test runs: (op, name, value)."""
    writes: list[tuple[str, str, str | None]] = []
    environ_type = type(os.environ)
    real_set, real_del = environ_type.__setitem__, environ_type.__delitem__

    def recording_set(self, key, value):
        writes.append(("set", key, value))
        real_set(self, key, value)

    def recording_del(self, key):
        writes.append(("del", key, None))
        real_del(self, key)

    monkeypatch.setattr(environ_type, "__setitem__", recording_set)
    monkeypatch.setattr(environ_type, "__delitem__", recording_del)
    return writes


def _assert_env_untouched(writes: list[tuple[str, str, str | None]], *secrets: str) -> None:
    assert not [w for w in writes if w[1].startswith("AWS_")], writes
    assert not [w for w in writes if w[2] and any(s in w[2] for s in secrets)]


def test_passwords_never_leak_into_result_ledger_or_display(results: Path, isolated_home: Path) -> None:
    panel = publish_panel(paths=[results])
    panel.access_key.value, panel.secret_key.value = ACCESS_KEY, SECRET_KEY
    result = panel.publish_now()
    assert result is not None
    _assert_no_secret(panel, isolated_home, json.dumps(result.to_dict()))
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ
    assert panel.access_key.value == "" and panel.secret_key.value == ""  # not kept in widget state


def _assert_no_secret(panel: PublishPanel, home: Path, *texts: str) -> None:
    shown = [panel.status.value, output_text(panel.output), str(panel.last_error), repr(panel), *texts]
    shown += [api.jobs().to_csv(), api.cids().to_csv()]
    for secret in (SECRET_KEY, ACCESS_KEY):
        assert all(secret not in text for text in shown)
        assert secret.encode() not in _ledger_bytes(home)


def test_typed_keys_go_to_publish_as_options_for_s3_only(results: Path, monkeypatch, env_writes) -> None:
    calls: list[dict] = []

    def stop_here(*args, **kwargs):
        calls.append(kwargs)
        raise SourceError("stopped by the test")

    checked: list = []
    monkeypatch.setattr(api, "publish", stop_here)
    # The checks before any copying see the typed keys too (tests/test_preflight.py runs them).
    monkeypatch.setattr("jupyter_publish.preflight.preflight", checked.append)
    panel = publish_panel(paths=[results], destination="s3://some-bucket/x/", aws_session_token="other")
    panel.access_key.value, panel.secret_key.value = ACCESS_KEY, SECRET_KEY
    assert panel.publish_now() is None
    _assert_one_line_error(panel, "stopped by the test")
    (kwargs,) = calls
    assert kwargs["aws_access_key_id"] == ACCESS_KEY and kwargs["aws_secret_access_key"] == SECRET_KEY
    assert kwargs["aws_session_token"] is None  # a token belongs to other keys
    assert checked[0].options["aws_access_key_id"] == ACCESS_KEY
    assert "aws_session_token" not in checked[0].options
    assert panel.access_key.value == panel.secret_key.value == ""

    calls.clear()
    panel = publish_panel(paths=[results], destination="local")
    panel.access_key.value, panel.secret_key.value = ACCESS_KEY, SECRET_KEY
    assert panel.publish_now() is None
    (kwargs,) = calls
    assert not {k for k in kwargs if k.startswith("aws_")}
    assert panel.access_key.value == panel.secret_key.value == ""
    _assert_env_untouched(env_writes, ACCESS_KEY, SECRET_KEY)


def test_half_typed_credentials_are_refused_before_any_row(results: Path) -> None:
    panel = publish_panel(paths=[results], destination="s3://some-bucket/x/")
    panel.access_key.value = ACCESS_KEY
    assert panel.publish_now() is None
    _assert_one_line_error(panel, "both the access key and the secret key")
    assert _jobs() == {}
    assert panel.access_key.value == ""


@pytest.fixture
def bare_aws_env(monkeypatch) -> None:
    """No credentials anywhere but what the panel's password boxes provide."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_typed_s3_credentials_publish_to_a_real_store(
    results: Path, s3_server, s3_bucket: str, bare_aws_env: None, isolated_home: Path
) -> None:
    panel = publish_panel(paths=[results], destination=f"s3://{s3_bucket}/runs/{{jobID}}/")
    panel.endpoint.value = s3_server.endpoint
    panel.access_key.value, panel.secret_key.value = s3_server.access_key, s3_server.secret_key
    panel.button.click()
    assert panel.wait(60)

    result = panel.last_result
    assert result is not None, panel.last_error
    assert result.uri.startswith(f"s3://{s3_bucket}/runs/{result.job_id}/")
    assert "AWS_ACCESS_KEY_ID" not in os.environ and "AWS_SECRET_ACCESS_KEY" not in os.environ
    assert s3_server.secret_key not in json.dumps(result.to_dict())
    assert s3_server.secret_key.encode() not in _ledger_bytes(isolated_home)
    assert s3_server.secret_key not in panel.status.value + output_text(panel.output)
    assert panel.access_key.value == "" and panel.secret_key.value == ""


def test_typed_keys_never_enter_os_environ_and_env_changes_survive(
    results: Path, s3_server, s3_bucket: str, monkeypatch, env_writes
) -> None:
    """Other kernel code sees the environment it had, before, during and after the upload."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "outer-key-that-the-store-refuses")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "outer-secret-that-the-store-refuses")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    before = dict(os.environ)
    seen_during: list[dict[str, str]] = []
    real_publish = api.publish

    def probe(*args, **kwargs):
        seen_during.append(dict(os.environ))
        # Kernel code changes the environment meanwhile: that must survive the publish,
        # and a token from there must not be paired with the typed keys.
        os.environ["AWS_SESSION_TOKEN"] = "set-by-other-code-meanwhile"
        return real_publish(*args, **kwargs)

    monkeypatch.setattr(api, "publish", probe)
    panel = publish_panel(paths=[results], destination=f"s3://{s3_bucket}/env/{{jobID}}/")
    panel.endpoint.value = s3_server.endpoint
    panel.access_key.value, panel.secret_key.value = s3_server.access_key, s3_server.secret_key
    env_writes.clear()  # the set-up above wrote some
    panel.button.click()
    assert panel.wait(60)

    assert panel.last_result is not None, panel.last_error  # the typed keys won, not the outer ones
    (during,) = seen_during
    assert during == before
    probe_write = ("set", "AWS_SESSION_TOKEN", "set-by-other-code-meanwhile")
    assert probe_write in env_writes
    _assert_env_untouched(
        [w for w in env_writes if w != probe_write], s3_server.access_key, s3_server.secret_key
    )
    assert os.environ.pop("AWS_SESSION_TOKEN") == "set-by-other-code-meanwhile"  # not clobbered
    assert dict(os.environ) == before
    assert panel.access_key.value == "" and panel.secret_key.value == ""


def test_wrong_s3_secret_is_one_line_a_failed_row_and_no_secret(
    results: Path, s3_server, s3_bucket: str, bare_aws_env: None, isolated_home: Path
) -> None:
    panel = publish_panel(paths=[results], destination=f"s3://{s3_bucket}/x/")
    panel.endpoint.value = s3_server.endpoint
    panel.access_key.value, panel.secret_key.value = ACCESS_KEY, SECRET_KEY
    assert panel.publish_now() is None
    _assert_one_line_error(panel)
    assert "refused" in panel.last_error.lower() or "credential" in panel.last_error.lower(), panel.last_error
    (row,) = _jobs().values()
    assert row["status"] == "failed"
    _assert_no_secret(panel, isolated_home, row["error"])
    assert panel.access_key.value == "" and panel.secret_key.value == ""  # cleared after a failure too


# -- fetch panel --------------------------------------------------------------------------


def test_fetch_panel_fetches_a_job_and_previews_it(results: Path, tmp_path: Path) -> None:
    published = api.publish(results, "local", quiet=True)
    panel = fetch_panel(published.job_id)
    panel.dest.value = str(tmp_path / "back")
    fetched = panel.fetch_now()

    assert fetched is not None and panel.last_result is fetched and fetched.verified
    assert _sha256(tmp_path / "back" / "table.csv") == _sha256(results / "table.csv")
    assert "verified" in panel.status.value and str(tmp_path / "back") in panel.status.value
    shown = output_text(panel.preview)
    assert "jupyter-publish-fetch" in shown and published.job_id in shown
    assert "table.csv" in shown and "notes.txt" in shown  # the inline preview lists the files
    assert "no preview" not in shown


def test_fetch_panel_accepts_a_result_and_runs_in_a_thread(results: Path, tmp_path: Path) -> None:
    published = api.publish(results, "local", quiet=True)
    panel = fetch_panel(published)
    assert panel.ref.value == published.job_id
    panel.dest.value = str(tmp_path / "threaded")
    panel.button.click()
    assert panel.wait(60)
    assert panel.last_result is not None and panel.last_result.job_id == published.job_id


def test_fetch_panel_unknown_job_is_one_line() -> None:
    panel = fetch_panel("j-DOESNOTEXIST")
    assert panel.fetch_now() is None
    _assert_one_line_error(panel, "j-DOESNOTEXIST")
    assert panel.preview.outputs == ()


# -- jobs browser -------------------------------------------------------------------------


@pytest.fixture
def three_jobs(results: Path, tmp_path: Path) -> dict[str, str]:
    alpha = api.publish(results, "local", name="alpha", quiet=True)
    beta = api.publish(results / "notes.txt", "local", name="beta", quiet=True)
    with pytest.raises(Exception, match="no such file"):
        api.publish(tmp_path / "missing", "local", name="gamma", quiet=True)
    failed = next(j for j in _jobs().values() if j["status"] == "failed")
    return {
        "alpha": alpha.job_id,
        "beta": beta.job_id,
        "failed": failed["job_id"],
        "alpha_cid": alpha.root_cid,
    }


def test_jobs_browser_filters_narrow_the_rows(three_jobs: dict[str, str]) -> None:
    browser = jobs_browser()
    assert len(browser.rows) == 3 and len(browser.jobs.options) == 3
    browser.filter.value = "alpha"
    assert [r["job_id"] for r in browser.rows] == [three_jobs["alpha"]]
    browser.filter.value = three_jobs["beta"][-8:].lower()  # a piece of a job ID, any case
    assert [r["job_id"] for r in browser.rows] == [three_jobs["beta"]]
    browser.filter.value = ""
    browser.status_filter.value = "failed"
    assert [r["job_id"] for r in browser.rows] == [three_jobs["failed"]]
    assert "missing" in browser.status.value  # a failed job says why
    browser.filter.value = "local alpha"  # every word must match
    assert browser.rows == [] and browser.jobs.value is None
    assert "0 of 3" in browser.count.value


def test_jobs_browser_selection_shows_files_and_copies_the_root_cid(three_jobs: dict[str, str]) -> None:
    browser = JobsBrowser()
    browser.select(three_jobs["alpha"])
    shown = output_text(browser.details)
    for row in api.cids(three_jobs["alpha"]).to_dict("records"):
        assert row["cid"] in shown
    assert browser.copy_cid() == three_jobs["alpha_cid"]
    assert browser.copy_button.text == three_jobs["alpha_cid"]  # what a click copies, in the page
    assert three_jobs["alpha_cid"] in browser.cid.value
    browser.select(three_jobs["failed"])
    assert browser.copy_cid() is None and "no CID" in browser.status.value


def test_jobs_browser_copy_button_and_refresh(three_jobs: dict[str, str], results: Path) -> None:
    browser = JobsBrowser()
    browser.filter.value = "alpha"
    assert browser.copy_button.text == three_jobs["alpha_cid"]  # what a click copies, in the page
    newer = api.publish(results, "local", name="alpha-two", quiet=True)
    browser._unsubscribe()  # as if published by another process: Refresh finds it
    newest = api.publish(results, "local", name="alpha-three", quiet=True)
    assert newest.job_id not in [r["job_id"] for r in browser.rows]
    browser.refresh_button.click()
    assert {newer.job_id, newest.job_id} <= {r["job_id"] for r in browser.rows}


def test_jobs_browser_fetch_and_preview(three_jobs: dict[str, str], tmp_path: Path) -> None:
    browser = JobsBrowser()
    browser.select(three_jobs["beta"])
    browser.fetcher.dest.value = str(tmp_path / "beta")
    browser.fetch_button.click()
    assert browser.fetcher.wait(60)
    assert browser.fetcher.last_result is not None and browser.fetcher.last_result.verified
    assert (tmp_path / "beta" / "notes.txt").is_file()
    assert "notes.txt" in output_text(browser.fetcher.preview)


# -- the progress hook and the import boundary -------------------------------------------


def test_progress_listener_gets_cumulative_updates_even_when_quiet() -> None:
    seen: list[tuple[int, int | None]] = []
    with (
        listening(lambda done, total: seen.append((done, total))),
        progress_bar(100, "x", quiet=True) as update,
    ):
        assert update is not None
        update(40)
        update(60)
    assert seen == [(40, 100), (100, 100)]
    with progress_bar(100, "x", quiet=True) as update:
        assert update is None  # nobody listening, nothing shown: unchanged behaviour


def test_the_core_never_imports_ipython_or_ipywidgets() -> None:
    code = (
        "import sys, jupyter_publish, jupyter_publish.api, jupyter_publish.publisher, "
        "jupyter_publish.fetcher, jupyter_publish.cards, jupyter_publish.progress;"
        "bad = [m for m in ('IPython', 'ipywidgets') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_jobs_browser_copies_the_pinned_cid_of_an_ipfs_job(ipfs_env, results: Path) -> None:
    published = api.publish(results, "ipfs://", quiet=True)  # archive: pinned CID != content CID
    assert published.params["CID"] != published.root_cid
    browser = JobsBrowser()
    browser.select(published.job_id)
    assert browser.copy_cid() == published.params["CID"]


def test_jobs_browser_shows_an_interrupted_job_and_why() -> None:
    """A job whose process died is `interrupted`: a filter of its own, and the reason."""
    import sqlite3

    from jupyter_publish.ledger import Ledger

    ledger = Ledger()
    ledger.start(
        job_id="j-killed", execution_id="e", node_id="n", name="x", scheme="s3", destination="s3://b/k"
    )
    no_such_pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # never a live process
    with sqlite3.connect(ledger.path) as db:
        db.execute("UPDATE jobs SET pid=?, proc_start=NULL WHERE job_id='j-killed'", (no_such_pid,))
    browser = JobsBrowser()
    browser.status_filter.value = "interrupted"
    assert [r["job_id"] for r in browser.rows] == ["j-killed"]
    browser.select("j-killed")
    assert "interrupted" in browser.status.value and "resume" in browser.status.value
