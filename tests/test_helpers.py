"""The package's one copy of each small helper: error lines, sizes, ULIDs, multipart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import jupyter_publish
from jupyter_publish import ids, redact
from jupyter_publish.multipart import Form, Part
from jupyter_publish.sizes import CHUNK, human_size
from jupyter_publish.sync import round_job_id
from jupyter_publish.text import describe, one_line

PACKAGE = Path(jupyter_publish.__file__).parent


def test_one_line_collapses_cuts_and_names_a_silent_exception() -> None:
    assert one_line("tarfile: tried\n  gz\n  bz2\t xz ") == "tarfile: tried gz bz2 xz"
    assert one_line(ValueError()) == "ValueError"
    assert one_line("") == ""
    assert one_line("x" * 50, 10) == "x" * 9 + "…" and len(one_line("x" * 50, 10)) == 10
    assert one_line("x" * 10, 10) == "x" * 10
    assert describe(ZeroDivisionError("division\nby zero")) == "ZeroDivisionError: division by zero"
    assert describe(KeyError()) == "KeyError"
    assert len(describe(RuntimeError("y" * 500))) == 200


def test_one_line_scrubs_only_when_asked() -> None:
    redact.register("hunter2-very-secret")
    text = "login failed for hunter2-very-secret"
    assert "hunter2-very-secret" in one_line(text)
    assert "hunter2-very-secret" not in one_line(text, scrub=True)
    assert "hunter2-very-secret" not in describe(RuntimeError(text), scrub=True)


def test_no_module_collapses_error_text_by_itself() -> None:
    """The one-line idiom lives in text.py only."""
    idiom = re.compile(r"join\(.*\.split\(\)\)")
    copies = [p.name for p in PACKAGE.rglob("*.py") if p.name != "text.py" and idiom.search(p.read_text())]
    assert copies == []


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 1536, CHUNK, 5 * 1024**4, 2048 * 1024**4)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "1.0 MiB",
        "5.0 TiB",
        "2048.0 TiB",
    ]


def test_no_module_defines_its_own_chunk_size() -> None:
    own = re.compile(r"^(CHUNK|MiB)\s*=", re.M)
    assert [p.name for p in PACKAGE.rglob("*.py") if own.search(p.read_text())] == ["sizes.py"]


def test_ulid_round_trips_and_keeps_its_time() -> None:
    made = ids.ulid(1_700_000_000_123)
    assert ids.encode_ulid(ids.decode_ulid(made)) == made
    assert ids.decode_ulid("j-" + made) >> 80 == 1_700_000_000_123
    for bad in ("", "j-123", "8" + made[1:], made[:-1] + "U", made.lower()):
        with pytest.raises(ValueError):
            ids.decode_ulid(bad)


def test_sync_rounds_sort_between_the_previous_job_and_the_final_one() -> None:
    final = "j-" + ids.ulid(1_700_000_000_500)
    earlier = "j-" + ids.ulid(1_700_000_000_498)
    rounds = [round_job_id(final, n) for n in (1, 2, 3)]
    assert earlier < rounds[0] < rounds[1] < rounds[2] < final
    assert ids.decode_ulid(rounds[0]) >> 80 == 1_700_000_000_499
    with pytest.raises(ValueError):
        round_job_id("j-not-a-ulid", 1)


def test_a_multipart_body_streams_its_parts_and_counts_its_length() -> None:
    form = Form("b0undary")
    sent: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        for piece in (b"abc", b"", b"def"):
            sent.append(piece)
            yield piece

    parts = [Part("a%20b.txt", "text/plain", chunks()), Part("dir", "application/x-directory")]
    body = form.body(parts)
    assert next(body).startswith(b"--b0undary\r\n") and sent == []  # nothing read before it is sent
    rest = b"".join(body)
    assert rest == (
        b"abcdef\r\n"
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="dir"\r\n'
        b"Content-Type: application/x-directory\r\n\r\n\r\n"
        b"--b0undary--\r\n"
    )
    assert form.content_type == "multipart/form-data; boundary=b0undary"
    assert form.overhead(parts) + 6 == len(
        b"".join(Form("b0undary").body([Part("a%20b.txt", "text/plain", [b"abcdef"]), parts[1]]))
    )
    with pytest.raises(ValueError):
        form.head(Part('a"b', "text/plain"))


def test_closing_a_multipart_body_closes_the_part_being_sent() -> None:
    closed = []

    def source() -> Iterator[bytes]:
        try:
            yield b"x"
            yield b"y"
        finally:
            closed.append(True)

    body = Form().body([Part("f", "application/octet-stream", source())])
    next(body), next(body)
    body.close()
    assert closed == [True]


def test_a_failed_sync_round_is_noted_without_a_secret(tmp_path: Path) -> None:
    # The note goes to the cell's output: a server quoting a token in its error must not
    # put it there (the edges scrub; this line was the one that did not).
    import threading
    from typing import NoReturn

    from jupyter_publish.sync import Syncer

    redact.register("tok-3f9a1c77e2b5")
    (tmp_path / "out.txt").write_text("x")
    notes: list[str] = []
    noted = threading.Event()

    def publish(snapshot: Path, round_number: int) -> NoReturn:
        raise RuntimeError("server said: bad token tok-3f9a1c77e2b5")

    def note(text: str) -> None:
        notes.append(text)
        noted.set()

    syncer = Syncer(tmp_path, 0.01, publish, note)
    syncer.start()
    try:
        assert noted.wait(10)
    finally:
        syncer.stop()
    assert notes[0].startswith("sync failed (RuntimeError: server said: bad token ")
    assert "tok-3f9a1c77e2b5" not in notes[0]
