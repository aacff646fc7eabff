"""A fetch reports each file's CID in the version its publish recorded, not one guessed
from whether a CID starts with ``Qm`` (a local or S3 result records no CID per item)."""

from __future__ import annotations

from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.cid import cid_of


@pytest.mark.parametrize("archive", [False, True])
@pytest.mark.parametrize("cid_version", [0, 1])
def test_fetched_cids_are_in_the_recorded_version(tmp_path: Path, archive: bool, cid_version: int) -> None:
    folder = tmp_path / "results"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a\n")
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 2000)
    result = jp.publish(folder, archive=archive, cid_version=cid_version)
    recorded = {f.path: f.cid for f in result.files if f.kind == "file"}
    fetched = jp.fetch(result.job_id, tmp_path / "back")
    assert fetched.verified
    got = {f.path.relative_to(tmp_path / "back").as_posix(): f.cid for f in fetched.files}
    assert got == recorded
    assert got["sub/b.bin"] == cid_of(folder / "sub" / "b.bin", cid_version)
