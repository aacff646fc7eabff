"""No secret in any encoding reaches a message, the ledger, ``jobs --json`` or a notebook.

A fake drop echoes the request's ``Authorization`` header in its error body, as a
careless server does: raw, decoded, URL-encoded, JSON-escaped, or inside a base64 blob.
The publish is run through the API, the command line (a subprocess) and the magics
(an IPython shell) and the widget; then everything a user or another process could see
is searched with independent decoders (base64 at every alignment, percent-, JSON- and
HTML-unescaping): the exception text, stdout/stderr, cell output, ``jobs --json`` and
every byte under the home folder, the SQLite ledger included.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, unquote_plus

import pytest
from fake_drops import FakeServer, Store

import jupyter_publish as jp
from jupyter_publish import redact
from jupyter_publish.errors import BackendError
from jupyter_publish.ledger import Ledger

USER, PASSWORD = "ana", 'pa55/w:rd+&x"q~Z'
PAIR = f"{USER}:{PASSWORD}"
TOKEN = "bearer-9c1f0e77d2a4"
SECRETS = (PAIR, PASSWORD, TOKEN)
FORMS = ("header", "decoded", "urlencoded", "json", "b64blob")
_B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{6,}={0,2}")


def _decodings(text: str) -> Iterator[str]:
    """``text`` and what it decodes to, every way a secret could be hidden in it."""
    for candidate in (text, unquote(text), unquote_plus(text), html.unescape(text)):
        yield candidate
        yield candidate.replace('\\"', '"').replace("\\\\", "\\").replace("\\/", "/")
    for token in _B64_TOKEN.findall(text):
        for skip in range(4):
            chunk = token[skip:].rstrip("=")
            chunk = chunk[:-1] if len(chunk) % 4 == 1 else chunk
            chunk += "=" * (-len(chunk) % 4)
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    decoded = decode(chunk).decode("latin-1")
                except (binascii.Error, ValueError):
                    continue
                yield decoded


def assert_clean(where: str, text: str | bytes) -> None:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    once = set(_decodings(text))
    for decoded in once | {twice for d in once if d != text for twice in _decodings(d)}:
        for secret in SECRETS:
            assert secret not in decoded, f"{secret!r} found in {where}: {text[:300]!r}"


def assert_home_clean(home: Path) -> None:
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name.startswith("ledger.sqlite") for p in files)
    for path in files:
        assert_clean(str(path), path.read_bytes())


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    (root / "a.csv").write_text("x,y\n1,2\n")
    return root


@pytest.fixture(params=FORMS)
def echo(request) -> Iterator[str]:
    drop = FakeServer(Store(), "drop", mode=f"echo-{request.param}")
    try:
        yield drop.url
    finally:
        drop.close()


@pytest.fixture
def env_secrets(monkeypatch):
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_AUTH", PAIR)
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_HEADERS", f"X-Api-Key: {TOKEN}")


def test_unscrubbed_echo_would_leak(echo, results):
    """The test can see a leak: the server's raw answer holds the secret."""
    import httpx

    answer = httpx.put(f"{echo}/x", content=b"x", auth=(USER, PASSWORD)).text
    with pytest.raises(AssertionError):
        assert_clean("raw answer", answer)


def test_api_messages_and_ledger(echo, results, isolated_home, env_secrets):
    with pytest.raises(BackendError) as caught:
        jp.publish(results, f"{echo}/drop/")
    assert "HTTP 400" in str(caught.value)
    assert_clean("the exception", str(caught.value))
    (job,) = Ledger().jobs()
    assert job["status"] == "failed" and "***" in job["error"]
    assert_clean("jobs()", jp.jobs().to_json(date_format="iso"))
    assert_home_clean(isolated_home)


def test_explicit_auth_is_scrubbed_too(echo, results, isolated_home):
    with pytest.raises(BackendError) as caught:
        jp.publish(results, f"{echo}/drop/", auth=(USER, PASSWORD), headers={"X-Api-Key": TOKEN})
    assert_clean("the exception", str(caught.value))
    assert_home_clean(isolated_home)


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JUPYTER_PUBLISH_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_stderr_and_jobs_json(echo, results, isolated_home, env_secrets):
    done = _cli("publish", str(results), "--to", f"{echo}/drop/", home=isolated_home)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "HTTP 400" in done.stderr
    assert_clean("publish stderr", done.stderr + done.stdout)
    listed = _cli("jobs", "--json", home=isolated_home)
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["status"] == "failed"
    assert_clean("jobs --json", listed.stdout + listed.stderr)
    assert_home_clean(isolated_home)


def test_magics_and_widget_output(ip, echo, results, isolated_home, env_secrets):
    from IPython.core.error import UsageError
    from IPython.utils.capture import capture_output

    with capture_output() as io:
        outcome = ip.run_cell(f"%publish {results} --to {echo}/drop/")
    assert isinstance(outcome.error_in_exec, UsageError)
    assert "HTTP 400" in str(outcome.error_in_exec)
    assert_clean("cell output", io.stdout + io.stderr + str(outcome.error_in_exec))
    with capture_output() as io:
        ip.run_cell("%jobs")
    assert_clean("%jobs", io.stdout + io.stderr + "".join(str(o.data) for o in io.outputs))

    from jupyter_publish.testing.widgets import output_text
    from jupyter_publish.widgets import PublishPanel

    panel = PublishPanel(paths=[results], destination=f"{echo}/drop/")
    assert panel.publish_now() is None
    assert panel.last_error and "HTTP 400" in panel.last_error
    assert_clean("widget", f"{panel.status.value} {output_text(panel.output)} {panel.last_error}")
    assert_home_clean(isolated_home)


@pytest.mark.parametrize(
    "secret",
    ["wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEJr//////////wEaDH+session/token=="],
)
def test_s3_keys_are_scrubbed_in_every_form(secret):
    """Explicit S3 keys are registered by the backend that was handed them."""
    from jupyter_publish.backends.s3 import S3Backend

    S3Backend(bucket="b", aws_access_key_id="AKIAEXAMPLE0001", aws_secret_access_key=secret)
    prefix = b"<Error><Code>SignatureDoesNotMatch</Code><Stringtosign>"
    for shown in (
        f"refused {secret}",
        f"refused {json.dumps(secret)}",
        f"k={unquote(secret)}&q={secret.replace('/', '%2F').replace('+', '%2B').replace('=', '%3D')}",
        base64.b64encode(prefix + secret.encode() + b"</Stringtosign>").decode(),
        "x" + base64.b64encode(b"z" + secret.encode()).decode(),
    ):
        for decoded in _decodings(redact.scrub(shown)):
            assert secret not in decoded, (shown, redact.scrub(shown))
