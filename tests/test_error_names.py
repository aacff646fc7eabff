"""Errors are named for what is wrong; the old ``except DestinationError`` still catches them."""

from __future__ import annotations

import pytest

import jupyter_publish as jp
from jupyter_publish.cid import parse_cid
from jupyter_publish.errors import CidError, DestinationError, OptionError, RefError
from jupyter_publish.transfer import concurrency


def test_a_bad_cid_is_a_cid_error() -> None:
    with pytest.raises(CidError, match="is not a valid CID"):
        parse_cid("Qm-not-a-cid")
    with pytest.raises(DestinationError):  # callers written before CidError keep working
        parse_cid("Qm-not-a-cid")


@pytest.mark.parametrize("ref", ["ftp://host/file", "local://", "s3://", "ipfs://", 12345])
def test_a_bad_fetch_reference_is_a_ref_error(tmp_path, ref: object) -> None:
    with pytest.raises(RefError):
        jp.fetch(ref, tmp_path / "out")  # type: ignore[arg-type]


def test_a_bad_option_is_an_option_error(tmp_path, monkeypatch) -> None:
    (tmp_path / "a.txt").write_text("a")
    with pytest.raises(OptionError, match="cid_version"):
        jp.publish(tmp_path / "a.txt", cid_version=7)
    with pytest.raises(OptionError, match="compression"):
        jp.publish(tmp_path / "a.txt", compression="rar")
    with pytest.raises(OptionError, match="does not apply to local"):
        jp.publish(tmp_path / "a.txt", "local://", endpoint="http://127.0.0.1:1")
    monkeypatch.setenv("JUPYTER_PUBLISH_JOBS", "0")
    with pytest.raises(OptionError, match="JUPYTER_PUBLISH_JOBS"):
        concurrency()
    assert issubclass(OptionError, DestinationError) and issubclass(RefError, DestinationError)


def test_a_bad_destination_is_still_a_destination_error(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("a")
    with pytest.raises(DestinationError) as info:
        jp.publish(tmp_path / "a.txt", "s4://bucket/key")
    assert type(info.value) is DestinationError
