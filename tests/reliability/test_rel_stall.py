"""Stalls end (issue 9, item 5): no byte moving for ``$JUPYTER_PUBLISH_IDLE_TIMEOUT``
ends a download or an upload on every backend with one line naming the server and the
limit (a StalledError, itself retried per the policy, then reported)."""

from __future__ import annotations

import time

import pytest
from fake_drops import FakeServer
from fake_drops import Store as DropStore
from fault_proxy import Fault, FaultProxy
from rel_stores import KINDS, MiB, Store, source

import jupyter_publish as jp
from jupyter_publish.errors import StalledError, TransientError

IDLE = 1


@pytest.fixture(autouse=True)
def _policy(monkeypatch):
    monkeypatch.setenv("JUPYTER_PUBLISH_IDLE_TIMEOUT", str(IDLE))
    monkeypatch.setenv("JUPYTER_PUBLISH_RETRIES", "1")


def _assert_stalled(info, took, proxy, kind, what):
    message = str(info.value)
    assert "\n" not in message, message
    assert f"moved no byte for {IDLE}s" in message and "JUPYTER_PUBLISH_IDLE_TIMEOUT" in message, message
    assert f"127.0.0.1:{proxy.port}" in message, message  # names the server
    # Two tries (RETRIES=1) of about IDLE seconds each, plus a short backoff.
    assert took < 8, took
    print(f"{kind} {what}: stalled after {took:.1f}s: {message}")


@pytest.mark.servers  # Store asks for the server fixture by name
@pytest.mark.parametrize("kind", KINDS)
def test_a_stalled_download_ends_after_the_idle_limit(request, tmp_path, kind):
    store = Store(kind, request)
    src = source(tmp_path, 3 * MiB)
    with FaultProxy(store.port) as proxy:
        result = store.publish(src, proxy)
        proxy.add(Fault("stall", direction="down", at=256 * 1024, times=1000))
        started = time.monotonic()
        with pytest.raises(StalledError) as info:
            store.fetch(result, tmp_path / "out", proxy)
        _assert_stalled(info, time.monotonic() - started, proxy, kind, "fetch")
    assert not (tmp_path / "out" / "data.bin").exists()


@pytest.mark.servers  # Store asks for the server fixture by name
@pytest.mark.parametrize("kind", KINDS)
def test_a_server_that_never_answers_ends_after_the_idle_limit(request, tmp_path, kind):
    """Not one byte of the response: the S3 GET used to hang forever."""
    store = Store(kind, request)
    src = source(tmp_path, 100_000)
    with FaultProxy(store.port) as proxy:
        result = store.publish(src, proxy)
        proxy.add(Fault("stall", direction="down", at=0, times=1000))
        started = time.monotonic()
        with pytest.raises(StalledError) as info:
            store.fetch(result, tmp_path / "out", proxy)
        _assert_stalled(info, time.monotonic() - started, proxy, kind, "fetch, no answer")


@pytest.mark.servers  # Store asks for the server fixture by name
@pytest.mark.parametrize("kind", KINDS)
def test_a_stalled_upload_ends_after_the_idle_limit(request, tmp_path, kind):
    """The server stops reading the body: more than the socket buffers hold is sent."""
    store = Store(kind, request)
    src = source(tmp_path, 24 * MiB)
    with FaultProxy(store.port) as proxy:
        proxy.add(Fault("stall", direction="up", at=MiB, times=1000))
        started = time.monotonic()
        with pytest.raises(StalledError) as info:
            store.publish(src, proxy)
        _assert_stalled(info, time.monotonic() - started, proxy, kind, "publish")


@pytest.mark.servers  # Store asks for the server fixture by name
@pytest.mark.parametrize("kind", ["http", "ipfs"])
def test_a_stall_is_retried_once_however_many_retries_are_allowed(request, tmp_path, monkeypatch, kind):
    """RETRIES=4 is for faults a new attempt cures; a hung server gets one fresh
    connection, so no progress for about 2 x the idle limit ends the transfer."""
    monkeypatch.setenv("JUPYTER_PUBLISH_RETRIES", "4")
    store = Store(kind, request)
    src = source(tmp_path, 3 * MiB)
    with FaultProxy(store.port) as proxy:
        result = store.publish(src, proxy)
        before = proxy.connections
        proxy.add(Fault("stall", direction="down", at=256 * 1024, times=1000))
        started = time.monotonic()
        with pytest.raises(StalledError) as info:
            store.fetch(result, tmp_path / "out", proxy)
        took = time.monotonic() - started
        tries = proxy.connections - before
    assert "gave up after 2 attempts" in str(info.value), info.value
    assert tries <= 3, tries  # two tries (an IPFS fetch may ask once before reading)
    assert took < 2 * IDLE + 4, took


@pytest.mark.parametrize("action,tries", [("stall", 2), ("reset", 5)])
def test_a_large_file_whose_server_fails_is_asked_only_once_over(tmp_path, monkeypatch, action, tries):
    """A file large enough for ranged reads is first asked for its size (a HEAD, retried
    like every read): a hung or resetting server ends the fetch there, rather than after
    as many tries again of a whole read (4 x the idle limit for a hung server)."""
    monkeypatch.setenv("JUPYTER_PUBLISH_RETRIES", "4")
    server = FakeServer(DropStore(), "drop")
    try:
        with FaultProxy(server.httpd.server_address[1]) as proxy:
            result = jp.publish(source(tmp_path, 20 * MiB), f"{proxy.url}/drop/", archive=False)
            before = proxy.connections
            proxy.add(Fault(action, direction="down", at=0, times=1000))
            started = time.monotonic()
            with pytest.raises(TransientError) as info:
                jp.fetch(result.job_id, tmp_path / "out")
            took = time.monotonic() - started
            asked = proxy.connections - before
    finally:
        server.close()
    assert f"gave up after {tries} attempts" in str(info.value), info.value
    assert str(info.value).count("gave up") == 1, info.value
    assert asked == tries, asked
    if action == "stall":
        assert isinstance(info.value, StalledError)
        assert took < 2 * IDLE + 2, took
