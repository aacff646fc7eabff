"""HTTP publishing (nginx WebDAV PUT and a transfer.sh-style drop) end to end."""

from __future__ import annotations

import hashlib

import httpx
import pytest

import jupyter_publish as jp
from jupyter_publish.cid import cid_of
from jupyter_publish.errors import BackendError, CredentialsError, IntegrityError
from jupyter_publish.ledger import Ledger


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_text("x,y\n1,2\n")
    (root / "sub" / "b.txt").write_text("hello world\n")
    return root


@pytest.mark.parametrize("server", ["nginx_dav", "nginx_transfer"])
@pytest.mark.parametrize("archive", [True, False])
def test_publish_records_cids_and_round_trips(request, server, archive, results, tmp_path):
    nginx = request.getfixturevalue(server)
    result = jp.publish(results, f"{nginx.base_url}/drop/{{jobID}}/", archive=archive)
    assert result.type == "urlDownload"
    job = Ledger().status(result.job_id)  # the ledger's type is the result's, not the scheme
    assert (job["type"], job["scheme"]) == ("urlDownload", "http")
    cids = jp.cids(result.job_id)
    for name in ("a.csv", "sub/b.txt"):
        row = cids[cids["path"] == name].iloc[0]
        assert row["cid"] == cid_of(results / name)
        assert row["sha256"] == hashlib.sha256((results / name).read_bytes()).hexdigest()
    assert result.root_cid == cid_of(results)
    first = result.archive if archive else next(f for f in result.files if f.path == "a.csv")
    body = httpx.get(first.url).content
    assert hashlib.sha256(body).hexdigest() == first.sha256
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified
    for name in ("a.csv", "sub/b.txt"):
        assert (tmp_path / "back" / name).read_bytes() == (results / name).read_bytes()


def test_fetch_plain_url_with_recorded_checksum(nginx_dav, results, tmp_path):
    result = jp.publish(results, f"{nginx_dav.base_url}/u/", archive=False)
    record = next(f for f in result.files if f.path == "a.csv")
    fetched = jp.fetch(record.url, tmp_path / "one")
    assert fetched.verified  # the ledger knows what that URL should hold
    assert (tmp_path / "one" / "a.csv").read_text() == "x,y\n1,2\n"


def test_tampering_on_the_server_is_caught(nginx_dav, results, tmp_path):
    result = jp.publish(results, f"{nginx_dav.base_url}/t/{{jobID}}/", archive=False)
    (nginx_dav.root / "t" / result.job_id / "a.csv").write_text("x,y\n9,9\n")
    with pytest.raises(IntegrityError):
        jp.fetch(result.job_id, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_413_is_one_line_and_recorded(nginx_small, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 50_000)
    with pytest.raises(BackendError) as info:
        jp.publish(big, f"{nginx_small.base_url}/x/", archive=False)
    assert "413" in str(info.value) and "\n" not in str(info.value)
    assert Ledger().jobs()[0]["status"] == "failed"


def test_basic_auth_from_env_is_never_recorded(nginx_auth, results, monkeypatch):
    with pytest.raises(CredentialsError):
        jp.publish(results, f"{nginx_auth.base_url}/a/")
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_AUTH", f"{nginx_auth.auth_user}:{nginx_auth.auth_password}")
    result = jp.publish(results, f"{nginx_auth.base_url}/a/")
    assert result.status == "published"
    everything = str(result.to_dict()) + str(Ledger().jobs()) + str(jp.cids().to_dict())
    assert nginx_auth.auth_password not in everything
