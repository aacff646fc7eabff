"""What a review of issue 9's change found: each case failed before its fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.extract import remove_tree
from jupyter_publish.ledger import Ledger


def test_a_plain_header_value_does_not_rewrite_the_record(tmp_path, monkeypatch):
    """`X-Team: genomics` is no secret: masking it turned `genomics.csv` into `***.csv`
    in the ledger, and the job could not be fetched back."""
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_HEADERS", "X-Team: genomics; X-Api-Key: k3y-0123456789")
    src = tmp_path / "src"
    src.mkdir()
    (src / "genomics.csv").write_text("a,b\n1,2\n")
    result = jp.publish(src, "local", archive=False)
    assert [f.path for f in result.files if f.kind == "file"] == ["genomics.csv"]
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified and (tmp_path / "back" / "genomics.csv").read_text() == "a,b\n1,2\n"


def test_resume_walks_the_sources_as_the_job_did(tmp_path, monkeypatch):
    """A job published with follow_symlinks=True is resumed with it too (resume refused
    the link out of the folder before)."""
    import jupyter_publish.publisher as publisher

    outside = tmp_path / "outside.txt"
    outside.write_text("linked in\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "link.txt").symlink_to(outside)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C once the sources were walked and recorded

    with monkeypatch.context() as patch:
        patch.setattr(publisher, "_run", interrupted)
        with pytest.raises(KeyboardInterrupt):
            jp.publish(src, "local", follow_symlinks=True)
    [job] = Ledger().jobs()
    assert job["status"] == "failed"
    result = jp.resume(job["job_id"])
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified and (tmp_path / "back" / "link.txt").read_text() == "linked in\n"


def test_remove_tree_never_empties_a_linked_folder(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    staging = tmp_path / ".out.jp-partial"
    staging.symlink_to(precious, target_is_directory=True)
    remove_tree(staging)
    assert not os.path.lexists(staging)
    assert (precious / "keep.txt").read_text() == "mine"


def test_no_extract_does_not_unpack_the_folders_of_the_archive(tmp_path):
    src = tmp_path / "src"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "sub" / "deep" / "a.txt").write_text("a")
    result = jp.publish(src, "local")
    back = jp.fetch(result.job_id, tmp_path / "back", extract=False)
    [only] = Path(tmp_path / "back").iterdir()
    assert only.name.endswith(".tar.gz") and only.is_file()
    assert back.dirs == []


def test_the_command_line_called_in_process_leaves_sigterm_as_it_was(capsys):
    """`cli.main()` in a kernel or a test must not leave its SIGTERM handler behind."""
    import signal

    from jupyter_publish import cli

    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["jobs"]) == 0
    assert signal.getsignal(signal.SIGTERM) == before
