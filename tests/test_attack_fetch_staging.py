"""Adversarial: the staging folder's ``NAME.ok`` resume markers.

* Markers live beside the partial downloads, in the same namespace as the objects: a
  result holding ``model.bin`` and ``model.bin.ok`` (a common "done" flag) cannot be
  fetched, because downloading ``model.bin`` unlinks (and overwrites) the staged, already
  verified ``model.bin.ok`` (download.py: ``_marker(part).unlink`` in ``download``, and
  ``marker.write_text`` / ``marker.unlink`` in ``_ranged``). A raw FileNotFoundError follows.
* A marker holding a negative number makes ``_resume_point`` call ``truncate(-5)``: a raw
  ``OSError [Errno 22]`` on every later fetch, until the user finds and deletes the
  staging folder by hand.
"""

from __future__ import annotations

import os

import pytest

import jupyter_publish as jp

MiB = 1024 * 1024


@pytest.fixture
def with_done_flag(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.bin").write_bytes(os.urandom(20 * MiB))  # large: read after the small ones
    (src / "model.bin.ok").write_text("training finished\n")
    return src


def _check(result, dest, src):
    fetched = jp.fetch(result.job_id, dest)
    assert fetched.verified
    for name in ("model.bin", "model.bin.ok"):
        assert (dest / name).read_bytes() == (src / name).read_bytes(), name


def test_file_and_its_dot_ok_sibling_fetch_from_local(with_done_flag, tmp_path):
    result = jp.publish(with_done_flag, "local", archive=False)
    _check(result, tmp_path / "back", with_done_flag)


def test_file_and_its_dot_ok_sibling_fetch_from_s3(s3_env, s3_bucket, with_done_flag, tmp_path):
    result = jp.publish(with_done_flag, f"s3://{s3_bucket}/flag/", archive=False)
    _check(result, tmp_path / "back", with_done_flag)


def test_a_negative_marker_does_not_wedge_every_later_fetch(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(3 * MiB)
    (src / "d.bin").write_bytes(data)
    result = jp.publish(src, "local", archive=False)
    dest = tmp_path / "back"
    staged = tmp_path / ".back.jp-partial" / "objects"
    staged.mkdir(parents=True)
    (staged / "d.bin").write_bytes(data[:1000])
    (staged / "d.bin.ok").write_text("-5")
    for _ in range(2):  # a clear PublishError once is acceptable; being stuck is not
        try:
            fetched = jp.fetch(result.job_id, dest)
        except jp.PublishError:
            continue
        assert fetched.verified and (dest / "d.bin").read_bytes() == data
        return
    pytest.fail("two fetches in a row failed on a stale marker")
