"""Fail before the cell runs (issue 13 item 1): no credentials, a dead endpoint, API or
origin, a bad option value stop ``%%publish``, ``%publish``, ``begin_job`` and the
publish panel with one line, before any work. Real servers where one must answer."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from jupyter_publish import api
from jupyter_publish.backends import backend_class
from jupyter_publish.destinations import parse_destination
from jupyter_publish.errors import BackendError, CredentialsError, OptionError
from jupyter_publish.ledger import Ledger
from jupyter_publish.preflight import preflight
from jupyter_publish.widgets import publish_panel


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS credentials anywhere, and the chain kept off the network."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def fake_aws(no_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials the chain resolves (no store would take them: nothing is sent)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPREFLIGHTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "preflight-secret-never-sent")


@pytest.fixture
def run(ip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    ip.user_ns.pop("ran", None)

    def run_cell(code: str) -> str:
        """Run ``code``; return the one-line UsageError it must raise."""
        with capture_output() as io:
            result = ip.run_cell(code)
        error = result.error_in_exec
        assert type(error) is UsageError, f"{error!r}\n{io.stdout}\n{io.stderr}"
        assert "\n" not in str(error) and "Traceback" not in io.stderr
        return str(error)

    yield run_cell
    ip.user_ns.pop("ran", None)


CELL = "ran = True\nopen('out.txt', 'w').write('x')"


def _jobs() -> list[dict]:
    return Ledger().jobs()


# -- %%publish: the cell never runs ---------------------------------------------------------


def test_cell_s3_unreachable_endpoint_stops_before_the_cell(ip, run, fake_aws, unused_port) -> None:
    message = run(f"%%publish s3://bucket/x --endpoint http://127.0.0.1:{unused_port}\n{CELL}")
    assert f"cannot reach the S3 endpoint at 127.0.0.1:{unused_port}" in message
    assert "ran" not in ip.user_ns and not Path("out.txt").exists()
    assert _jobs() == []


def test_cell_s3_without_credentials_stops_before_the_cell(ip, run, no_aws, s3_server) -> None:
    message = run(f"%%publish s3://bucket/x --endpoint {s3_server.endpoint}\n{CELL}")
    assert message.startswith("no AWS credentials found")
    assert "ran" not in ip.user_ns and _jobs() == []


def test_cell_s3_bad_option_value_stops_before_the_cell(ip, run, fake_aws, s3_server) -> None:
    message = run(f"%%publish s3://bucket/x --endpoint {s3_server.endpoint} --presign soon\n{CELL}")
    assert "cannot read duration 'soon'" in message
    assert "ran" not in ip.user_ns


def test_cell_ipfs_api_not_answering_stops_before_the_cell(ip, run, unused_port) -> None:
    message = run(f"%%publish ipfs:// --api http://127.0.0.1:{unused_port}\n{CELL}")
    assert f"cannot reach the IPFS API at http://127.0.0.1:{unused_port}" in message
    assert "ran" not in ip.user_ns


def test_cell_http_origin_unreachable_stops_before_the_cell(ip, run, unused_port) -> None:
    message = run(f"%%publish http://127.0.0.1:{unused_port}/drop/\n{CELL}")
    assert f"cannot reach the HTTP server at 127.0.0.1:{unused_port}" in message
    assert "ran" not in ip.user_ns


def test_cell_http_bad_auth_value_stops_before_the_cell(ip, run, nginx_dav, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_AUTH", "no-colon-here")
    message = run(f"%%publish {nginx_dav.base_url}/dav/\n{CELL}")
    assert "must look like 'user:password'" in message and "no-colon-here" not in message
    assert "ran" not in ip.user_ns


def test_cell_runs_when_every_check_passes(ip, run, s3_env, s3_bucket) -> None:
    """The checks pass against a real store (its 403 to an anonymous GET is no failure)."""
    with capture_output() as io:
        result = ip.run_cell(f"%%publish s3://{s3_bucket}/ok/ --quiet\n{CELL}")
    assert result.error_in_exec is None, io.stderr
    assert ip.user_ns.get("ran") is True
    assert [j["status"] for j in _jobs()] == ["published"]


def test_cell_ipfs_runs_against_a_real_node(ip, run, ipfs_env) -> None:
    with capture_output() as io:
        result = ip.run_cell(f"%%publish ipfs:// --quiet\n{CELL}")
    assert result.error_in_exec is None, io.stderr
    assert ip.user_ns.get("ran") is True


# -- %publish, begin_job, the panel ---------------------------------------------------------


def test_line_publish_unreachable_endpoint_is_one_line_and_no_job(
    ip, run, fake_aws, unused_port, tmp_path
) -> None:
    (tmp_path / "f.txt").write_text("x")
    message = run(f"%publish f.txt --to s3://bucket/x --endpoint http://127.0.0.1:{unused_port}")
    assert "cannot reach the S3 endpoint" in message
    assert _jobs() == []


def test_begin_job_checks_before_any_work(no_aws, s3_server) -> None:
    with pytest.raises(CredentialsError, match="no AWS credentials"):
        api.begin_job("s3://bucket/x", endpoint=s3_server.endpoint)
    assert _jobs() == []


def test_publish_panel_checks_before_copying(tmp_path: Path, fake_aws, unused_port) -> None:
    (tmp_path / "f.txt").write_text("x")
    panel = publish_panel(paths=[tmp_path / "f.txt"], destination="s3://bucket/x")
    panel.endpoint.value = f"http://127.0.0.1:{unused_port}"
    assert panel.publish_now() is None
    assert "cannot reach the S3 endpoint" in panel.status.value
    assert _jobs() == []


# -- the backend declarations ---------------------------------------------------------------


def test_default_preflight_is_a_no_op_and_local_passes() -> None:
    preflight(parse_destination("local"))
    assert backend_class("local").preflight.__qualname__ == "BackendBase.preflight"


def test_s3_preflight_with_explicit_keys_needs_no_chain(no_aws, s3_server) -> None:
    dest = parse_destination("s3://bucket/x").with_options(
        endpoint=s3_server.endpoint, aws_access_key_id="AKIAX", aws_secret_access_key="typed"
    )
    preflight(dest)  # resolvable and reachable: nothing is signed or sent


def test_s3_preflight_bad_endpoint_text(fake_aws) -> None:
    with pytest.raises(OptionError, match="not a URL"):
        preflight(parse_destination("s3://bucket/x").with_options(endpoint="localhost:9000"))


def test_unreachable_is_a_backend_error_naming_the_port(fake_aws, unused_port) -> None:
    dest = parse_destination("s3://bucket/x").with_options(endpoint=f"http://127.0.0.1:{unused_port}")
    with pytest.raises(BackendError, match=f"127.0.0.1:{unused_port}"):
        preflight(dest)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("%%publish s3://", "bucket"),
        ("%%publish nosuch://x/", "nosuch"),
        ("%%publish http://127.0.0.1:1/d/ --method DELETE", "method"),
        ("%%publish s3://bkt/{nope}/", "placeholder"),
    ],
)
def test_cell_unparsable_destination_or_bad_option_stops_before_the_cell(ip, run, line, said) -> None:
    message = run(f"{line}\n{CELL}")
    assert said in message.lower()
    assert "ran" not in ip.user_ns and not Path("out.txt").exists()
