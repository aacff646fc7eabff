"""What a newcomer trips on outside the notebook (issue 13 items 5 and 12): the testing
imports the README names, the demo folder ignored, counts said right, the CLI's bars and
jobs table, short job IDs, durations, sync rounds as one job, a clean temp folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.errors import NotFoundError, OptionError
from jupyter_publish.ledger import Ledger
from jupyter_publish.publisher import begin_job, record_failure

ROOT = Path(__file__).resolve().parent.parent


def cli(
    *args: str, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", *args],
        capture_output=True,
        text=True,
        env={**environment, **(env or {})},
        timeout=120,
    )


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "run_results"
    root.mkdir()
    (root / "only.txt").write_text("one file\n")
    return root


# -- the README's promises --------------------------------------------------------------


def test_testing_exports_the_server_launchers_the_readme_names():
    named = re.search(r"live in `jupyter_publish\.testing`\s*\(([^)]*)\)", (ROOT / "README.md").read_text())
    assert named, "the README names the launchers"
    names = re.findall(r"`(\w+)`", named.group(1))
    assert names == ["SeaweedS3", "IpfsNode", "Nginx"]
    code = f"from jupyter_publish.testing import {', '.join(names)}; print({', '.join(names)})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert all(f"{name}'" in out.stdout for name in names)


def test_the_demo_folder_is_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "check-ignore", "-q", "jupyter-publish-demo/results/x.csv"], cwd=ROOT, timeout=30
    )
    assert out.returncode == 0, ".gitignore should list jupyter-publish-demo/"


def test_publish_on_error_is_in_the_readme_with_the_other_cell_flags():
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `%%publish"))
    for flag in ("--sync-every", "--optional", "--publish-on-error"):
        assert flag in row
    assert "--publish-on-error`: then OUTPUT is published" in readme


# -- counts --------------------------------------------------------------------------------


def test_one_file_is_said_one_file(folder, tmp_path):
    result = jp.publish(folder)
    assert "1 file," in str(result) and "1 files" not in str(result)
    assert "(1 file," in repr(result)
    card = result._repr_html_()
    assert "1 file, " in card and "1 file (sha256, CID)" in card and "1 files" not in card
    fetched = jp.fetch(result.job_id, tmp_path / "back")
    assert "(1 file, verified)" in str(fetched)


def test_previews_and_messages_count_in_words_too(tmp_path, capsys):
    from jupyter_publish.cli import main
    from jupyter_publish.preview import preview

    (tmp_path / "one.csv").write_text("a\n1\n")
    assert "1 row × 1 column" in preview(tmp_path / "one.csv").text
    (tmp_path / "two.csv").write_text("a,b\n1,2\n3,4\n")
    assert "2 rows × 2 columns" in preview(tmp_path / "two.csv").text
    with pytest.raises(SystemExit):
        main(["jobs", "--limit", "1", "stray"])
    assert "unrecognized arguments: and 1 value not shown" in capsys.readouterr().err


# -- the command line ----------------------------------------------------------------------


def test_cli_draws_no_progress_bar_into_a_pipe(tmp_path):
    """A CI log (stderr a pipe) gets no bar, even with CI and JUPYTER_PUBLISH_QUIET unset."""
    many = tmp_path / "many"
    many.mkdir()
    for i in range(300):
        (many / f"part-{i:03d}.bin").write_bytes(os.urandom(32 * 1024))  # 9.4 MiB: past the bar's floor
    out = cli("publish", str(many), "--no-archive", drop=("CI", "JUPYTER_PUBLISH_QUIET"))
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stderr and "%|" not in out.stderr, out.stderr[:300]
    back = cli(
        "fetch", out.stdout.split()[1], "--to", str(tmp_path / "back"), drop=("CI", "JUPYTER_PUBLISH_QUIET")
    )
    assert back.returncode == 0, back.stderr
    assert "\r" not in back.stderr


def test_the_quiet_rule_sees_a_terminal_only_when_there_is_one(monkeypatch):
    from jupyter_publish import config

    monkeypatch.delenv("JUPYTER_PUBLISH_QUIET", raising=False)
    monkeypatch.delenv("CI", raising=False)

    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    assert config.quiet_by_default() is False  # someone watches: a bar
    monkeypatch.setenv("CI", "true")
    assert config.quiet_by_default() is True


def test_cli_jobs_table_fits_the_terminal_and_cuts_long_errors(folder):
    from jupyter_publish.ids import short_job_id

    ok = jp.publish(folder)
    failed = "j-" + ok.job_id[2:-1] + ("0" if ok.job_id[-1] != "0" else "1")
    reason = "BackendError: the server said " + "very long complaint " * 40 + "THE END"
    record_failure(failed, "local", name="broken", reason=reason)
    out = cli("jobs", env={"COLUMNS": "100"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and all(len(line) <= 100 for line in lines), out.stdout
    broken = next(line for line in lines if "broken" in line)
    assert broken.endswith("…") and "THE END" not in broken and "BackendError" in broken
    assert short_job_id(ok.job_id) in out.stdout and ok.job_id not in out.stdout
    whole = json.loads(cli("jobs", "--json").stdout)
    assert {j["job_id"]: j["error"] for j in whole}[failed].endswith("THE END")  # --json keeps it all


def test_the_jobs_table_prints_no_control_characters():
    """A name in a shared catalog is a colleague's text: an escape sequence in it is shown,
    not sent to the terminal."""
    from jupyter_publish.text_table import Column, render

    table = render([Column("name"), Column("error")], [["\x1b]0;pwned\x07red\x1b[31m", "a\tb\r\nc"]], 80)
    assert table.splitlines()[1] == "?]0;pwned?red?[31m  a b c"


# -- short job IDs ---------------------------------------------------------------------------


def test_short_ids_of_jobs_made_together_differ_and_fetch_takes_them(folder, tmp_path):
    from jupyter_publish.ids import SHORT_TAIL, short_job_id

    results = [jp.publish(folder) for _ in range(5)]  # within a second: long shared prefixes
    ids = [r.job_id for r in results]
    assert len({i[:8] for i in ids}) < len(ids)  # what a person shortened to before: ambiguous
    shorts = [short_job_id(i) for i in ids]
    assert len(set(shorts)) == len(ids) and all(len(s) == 2 + SHORT_TAIL for s in shorts)
    assert short_job_id("not-a-job") == "not-a-job"
    target = results[2]
    short = short_job_id(target.job_id)
    assert f"(short: <code>{short}</code>)" in target._repr_html_()
    fetched = jp.fetch(short, tmp_path / "back")
    assert fetched.verified and (tmp_path / "back" / "only.txt").read_text() == "one file\n"
    assert set(jp.cids(short[2:].lower())["job_id"]) == {target.job_id}  # typed without j-, lower case
    out = cli("fetch", short, "--to", str(tmp_path / "cli-back"))
    assert out.returncode == 0, out.stderr
    used = jp.publish(folder, uses=[short])  # lineage reads the short form too
    edges = jp.lineage(short_job_id(used.job_id))
    assert target.job_id in set(edges["used_job"]), edges
    assert Ledger().job_row(target.job_id[:-3])["job_id"] == target.job_id  # prefixes still work
    with pytest.raises(NotFoundError, match="ambiguous"):
        Ledger().job_row(ids[0][:6])


# -- durations and sync rounds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2s", 2), ("1m", 60), ("90", 90), ("0.5", 0.5), ("500ms", 0.5), ("1h", 3600), (" 2 S ", 2)],
)
def test_durations_read_as_people_write_them(text, expected):
    from jupyter_publish.durations import seconds

    assert seconds(text) == expected


@pytest.mark.parametrize("text", ["2x", "", "0", "-1s", "nan", "inf", "s", "ms", "5mss"])
def test_a_bad_duration_is_one_line(text):
    from jupyter_publish.durations import seconds

    with pytest.raises(OptionError) as caught:
        seconds(text)
    assert "\n" not in str(caught.value) and "2s" in str(caught.value)


def test_presign_still_reads_its_durations():
    from jupyter_publish.backends.s3 import parse_duration

    assert [parse_duration(t) for t in ("3600", "90s", "15m", "1h", "7d")] == [3600, 90, 900, 3600, 604800]
    for bad, says in (
        ("8d", "1 second to 7 days"),
        ("0", "1 second to 7 days"),
        ("x", "cannot read duration"),
    ):
        with pytest.raises(OptionError, match=says):
            parse_duration(bad)


def test_sync_rounds_are_one_job_with_rounds(folder, tmp_path):
    job = begin_job("local", name="outputs", resolve_placeholders=True)
    for n in (1, 2, 3):
        (folder / f"round{n}.txt").write_text(str(n))
        job.publish_round(folder, n, archive=False)
    job.publish(folder, archive=False)
    other = jp.publish(folder)
    frame = jp.jobs()
    assert list(frame["job_id"]) == [other.job_id, job.job_id]
    assert list(frame["rounds"]) == [0, 3]
    everything = jp.jobs(rounds=True)
    assert len(everything) == 5 and everything["name"].str.contains(f"sync . of {job.job_id}").sum() == 3
    assert list(jp.jobs(1)["job_id"]) == [other.job_id]
    text = cli("jobs").stdout
    assert "rounds" in text.splitlines()[0] and len(text.splitlines()) == 3
    assert len(cli("jobs", "--rounds").stdout.splitlines()) == 6


# -- the suite's own temp files ------------------------------------------------------------------


def test_temporary_files_stay_in_the_sessions_basetemp(tmp_path_factory):
    """The system temp folder is shared (other runs, other users): the suite writes its
    temporary files, its subprocesses' too, under its own basetemp."""
    base = tmp_path_factory.getbasetemp().resolve()
    assert base in Path(tempfile.gettempdir()).resolve().parents
    probe = "import tempfile; print(tempfile.mkdtemp(prefix='jp-probe-'))"
    made = Path(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    assert base in made.resolve().parents


@pytest.mark.servers  # the inner session starts nginx and SeaweedFS
def test_a_green_run_leaves_nothing_in_the_system_temp_folder(tmp_path):
    """A whole pytest session, its servers' and subprocesses' scratch files included,
    writes under the system temp folder only what pytest itself removes when the run is
    green (the empty ``pytest-of-USER`` folder aside)."""
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    inner = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "tests/test_small_things.py::test_one_file_is_said_one_file",
            "tests/test_small_things.py::test_temporary_files_stay_in_the_sessions_basetemp",
            "tests/test_http_publish.py::test_fetch_plain_url_with_recorded_checksum",
            "tests/test_s3.py::test_plain_publish_uploads_each_file_and_a_manifest",
        ],
        cwd=ROOT,
        env={**environment, "TMPDIR": str(system_temp), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert inner.returncode == 0, inner.stdout[-2000:] + inner.stderr[-2000:]
    left = [p for p in system_temp.rglob("*") if not p.is_dir() or any(p.iterdir())]
    assert not left, [p.relative_to(system_temp).as_posix() for p in left][:10]


@pytest.mark.servers
def test_seaweedfs_takes_its_sockets_in_tmp_away_when_it_stops():
    """``weed`` puts a unix socket per gRPC listener at a fixed /tmp path and leaves it
    there; the launcher removes its own (22 were left in /tmp by a day of test runs)."""
    from jupyter_publish.testing import SeaweedS3

    with SeaweedS3().serving() as server:
        sockets = [
            Path(f"/tmp/seaweedfs-{name}-grpc-{port + 10000}.sock") for name, port in server.ports.items()
        ]
        assert any(path.exists() for path in sockets)
    assert not [path for path in sockets if path.exists()]
