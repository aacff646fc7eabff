"""Adversarial: a file that changes size between collect and its upload.

S3, IPFS and local report a one-line SourceError/BackendError and record the job as
failed with it. A plain HTTP publish (PUT with the collected Content-Length) instead
lets h11's ``LocalProtocolError: Too much/little data for declared Content-Length``
escape ``HttpBackend.put`` (it is not an ``httpx.HTTPError``): a raw exception and a
traceback in the CLI and the notebook instead of a one-line error.
"""

from __future__ import annotations

import os

import pytest

import jupyter_publish as jp
import jupyter_publish.publisher as publisher


@pytest.mark.parametrize("change", ["grow", "shrink"])
@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_http_file_changing_size_is_a_one_line_publish_error(
    nginx_transfer, tmp_path, monkeypatch, change, method
):
    src = tmp_path / "src"
    src.mkdir()
    target = src / "a.bin"
    target.write_bytes(os.urandom(4096))
    (src / "b.txt").write_text("b")
    real_collect = publisher.collect

    def collect(paths, **options):
        bundle = real_collect(paths, **options)
        with open(target, "r+b") as handle:  # the notebook is still writing it
            if change == "grow":
                handle.seek(0, 2)
                handle.write(b"x" * 100)
            else:
                handle.truncate(4000)
        return bundle

    monkeypatch.setattr(publisher, "collect", collect)
    with pytest.raises(jp.PublishError) as info:
        jp.publish(src, nginx_transfer.base_url + "/", archive=False, method=method)
    assert "\n" not in str(info.value)
    assert jp.jobs().iloc[0]["status"] == "failed"
