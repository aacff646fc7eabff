"""The magics, driven through a real IPython shell against the local store (and real S3)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import jupyter_publish
from jupyter_publish.cellrun import OUTPUT_ENV
from jupyter_publish.ledger import Ledger
from jupyter_publish.magics import PublishMagics
from jupyter_publish.results import FetchResult, PublishedResult
from jupyter_publish.sync import SYNC_THREAD_NAME
from jupyter_publish.variables import variable_to_file

JOB_ID = re.compile(r"j-[0-9A-Z]{26}")


@pytest.fixture
def run(ip, magics):
    """Run a cell; return (ExecutionResult, captured output)."""

    def run_cell(code: str):
        with capture_output() as io:
            result = ip.run_cell(code)
        return result, io

    return run_cell


def ok(result, io):
    error = result.error_before_exec or result.error_in_exec
    assert error is None, f"{error!r}\nstdout: {io.stdout}\nstderr: {io.stderr}"


def usage_error(result, io) -> str:
    """The cell raised a one-line UsageError, shown without a traceback."""
    assert isinstance(result.error_in_exec, UsageError), repr(result.error_in_exec)
    assert type(result.error_in_exec) is UsageError
    message = str(result.error_in_exec)
    assert "\n" not in message
    assert f"UsageError: {message}" in io.stderr
    return message


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- loading and configuration ---------------------------------------------------------


def test_load_ext_registers_one_configurable_with_traits(ip, run):
    mine = [c for c in ip.configurables if isinstance(c, PublishMagics)]
    assert len(mine) == 1
    for kind, name in [("line", "publish"), ("cell", "publish"), ("line", "fetch"), ("cell", "fetch"),
                       ("line", "jobs"), ("line", "cids"), ("cell", "cids")]:  # fmt: skip
        assert name in ip.magics_manager.magics[kind]
    result, io = run("%config PublishMagics")
    ok(result, io)
    for trait in ("default_destination", "archive", "quiet", "preview", "cid_version", "endpoint",
                  "region", "profile", "api", "gateway", "fetch_dir"):  # fmt: skip
        assert f"PublishMagics.{trait}" in io.stdout


def test_reload_and_unload_leave_no_duplicates(ip, run):
    ok(*run("%reload_ext jupyter_publish"))
    assert sum(isinstance(c, PublishMagics) for c in ip.configurables) == 1
    ip.run_line_magic("unload_ext", "jupyter_publish")
    assert not any(isinstance(c, PublishMagics) for c in ip.configurables)
    assert "publish" not in ip.magics_manager.magics["cell"]
    ip.run_line_magic("load_ext", "jupyter_publish")
    assert "publish" in ip.magics_manager.magics["cell"]


def test_config_with_doubled_braces_keeps_placeholders(ip, run, magics):
    ok(*run("import time"))
    ok(*run('%config PublishMagics.default_destination = "s3://bucket/runs/{{jobID}}/{{time}}"'))
    assert magics.default_destination == "s3://bucket/runs/{jobID}/{time}"  # as README says


def test_config_default_destination_is_where_cell_publish_goes(ip, run, s3_env, s3_bucket):
    result, io = run(f'%config PublishMagics.default_destination = "s3://{s3_bucket}/nb/"')
    ok(result, io)
    result, io = run("%%publish --out r\n(OUTPUT / 'x.txt').write_text('x')")
    ok(result, io)
    r = ip.user_ns["r"]
    assert r.type == "s3"
    assert r.uri.startswith(f"s3://{s3_bucket}/nb/")


def test_config_rejects_a_malformed_default_destination(ip, run, magics, caplog):
    _, io = run('%config PublishMagics.default_destination = "ftp://nope"')
    assert "unknown destination 'ftp://nope'" in io.stderr  # one UsageError line, not a log record
    assert io.stderr.startswith("UsageError: PublishMagics.default_destination: unknown destination")
    assert "ERROR" not in caplog.text
    assert magics.default_destination == "local"


def test_pyproject_settings_apply_but_explicit_config_wins(ip, run, magics, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.jupyter_publish]\n"
        'default_destination = "s3://from-pyproject/{jobID}"\n'
        "archive = false\n"
        "cid_version = 1\n"
        'not_a_setting = "x"\n'
    )
    nested = tmp_path / "notebooks" / "deep"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    ok(*run("%config PublishMagics.cid_version = 0"))
    with pytest.warns(UserWarning, match="not_a_setting"):
        ip.run_line_magic("reload_ext", "jupyter_publish")
    reloaded = ip.magics_manager.registry["PublishMagics"]
    try:
        assert reloaded.project_file == tmp_path / "pyproject.toml"
        assert reloaded.default_destination == "s3://from-pyproject/{jobID}"
        assert reloaded.archive is False
        assert reloaded.cid_version == 0  # set with %config: wins over pyproject.toml
    finally:
        monkeypatch.chdir(tmp_path.parent)
        del ip.config["PublishMagics"]
        ip.run_line_magic("reload_ext", "jupyter_publish")
    assert ip.magics_manager.registry["PublishMagics"].default_destination == "local"


def test_help_lists_the_options(ip, run):
    for option in ("--out", "--no-archive", "--sync-every", "--publish-on-error", "--optional",
                   "--presign", "--endpoint", "--cid-version", "--to"):  # fmt: skip
        assert option in PublishMagics.publish.__doc__
    for option in ("--no-preview", "--no-verify", "--no-extract", "--to", "--out"):
        assert option in PublishMagics.fetch.__doc__
    assert "--limit" in PublishMagics.jobs.__doc__
    result, io = run("%publish?")
    ok(result, io)
    assert "--sync-every" in io.stdout


# -- %%publish -------------------------------------------------------------------------


def test_cell_publish_keeps_files_and_printed_output(ip, run):
    ip.user_ns["OUTPUT"] = "previous value"
    result, io = run(
        "%%publish local --out r\n"
        "import os\n"
        "(OUTPUT / 'table.csv').write_text('a,b\\n1,2\\n')\n"
        "print('hello from the cell')\n"
        f"assert os.environ['{OUTPUT_ENV}'] == str(OUTPUT)\n"
        "seen = OUTPUT\n"
    )
    ok(result, io)
    assert "hello from the cell" in io.stdout  # streamed live, not only captured
    r = ip.user_ns["r"]
    assert isinstance(r, PublishedResult)
    files = {f.path: f for f in r.files if f.kind == "file"}
    assert set(files) == {"table.csv", "stdout", "stderr", "exitCode"}
    assert files["table.csv"].sha256 == sha256(b"a,b\n1,2\n")
    assert files["exitCode"].sha256 == sha256(b"0")
    assert r.name == "outputs" and r.archive is not None
    assert ip.user_ns["OUTPUT"] == "previous value"  # restored
    assert OUTPUT_ENV not in os.environ
    assert not Path(ip.user_ns["seen"]).exists()  # temporary folder removed once published
    ok(*run("%fetch {{r.job_id}} --to back --no-preview --out f"))
    assert "hello from the cell" in (Path("back") / "stdout").read_text()
    assert isinstance(ip.user_ns["f"], FetchResult) and ip.user_ns["f"].verified
    del ip.user_ns["OUTPUT"]


def test_cell_publish_displays_a_card(ip, run):
    with capture_output() as io:
        result = ip.run_cell("%%publish local --no-archive\n(OUTPUT / 'a.txt').write_text('a')")
    ok(result, io)
    html = [o.data.get("text/html", "") for o in io.outputs]
    assert any("jupyter-publish-result" in h for h in html)


def test_braces_are_not_expanded_by_ipython(ip, run, s3_env, s3_bucket):
    ok(*run("import time\njobID = 'not me'"))
    result, io = run(
        "%%publish s3://" + s3_bucket + "/{jobID}/{time} --out r\n(OUTPUT / 'x.txt').write_text('x')"
    )
    ok(result, io)
    r = ip.user_ns["r"]
    assert re.fullmatch(rf"s3://{s3_bucket}/{r.job_id}/\d{{6}}\.tar\.gz", r.uri), r.uri
    assert "module" not in r.uri and "not me" not in r.uri
    ip.user_ns.pop("jobID")


def test_failing_cell_publishes_nothing_and_records_a_failed_job(ip, run, isolated_home):
    result, io = run("%%publish local --out r\n(OUTPUT / 'half.txt').write_text('x')\n1/0\n")
    message = usage_error(result, io)
    assert "cell failed at line 3 (ZeroDivisionError: division by zero)" in message  # as shown
    assert "nothing was published" in message and "--publish-on-error" in message
    assert "Traceback" not in io.stdout + io.stderr  # one line, as for every bad input
    assert len((io.stdout + io.stderr).strip().splitlines()) == 1
    assert "at line 3" in message
    kept = Path(re.search(r"kept in (\S+);", message).group(1))
    assert "ZeroDivisionError" in (kept / "stderr").read_text()  # the traceback, like a job's
    assert (kept / "half.txt").read_text() == "x"
    job_id = JOB_ID.search(message).group()
    row = Ledger().status(job_id)
    assert row["status"] == "failed" and "ZeroDivisionError" in row["error"]
    assert ip.user_ns.pop("r")["status"] == "failed"  # --out: the failed job's record
    assert not (isolated_home / "store" / "jobs" / f"{job_id}.json").exists()
    frame = ip.run_line_magic("cids", job_id)
    assert frame.empty


def test_syntax_error_in_the_cell_is_a_failed_cell(run):
    message = usage_error(*run("%%publish local\ndef broken(:\n"))
    assert message.startswith("cell failed at line 2 (SyntaxError")  # the magic line is line 1
    job_id = JOB_ID.search(message).group()
    assert Ledger().status(job_id)["status"] == "failed"


def test_publish_on_error_publishes_with_exit_code_1_and_still_fails_the_cell(ip, run):
    result, io = run("%%publish local --publish-on-error --out r\n(OUTPUT / 'half.txt').write_text('x')\n1/0")
    message = usage_error(result, io)
    assert "published anyway" in message
    r = ip.user_ns["r"]
    assert r.job_id in message and r.status == "published"
    files = {f.path: f for f in r.files if f.kind == "file"}
    assert files["exitCode"].sha256 == sha256(b"1")
    assert files["stderr"].size > 0  # the traceback is kept, like a job's stderr
    assert "half.txt" in files


def test_empty_output_is_an_error_unless_optional(ip, run):
    message = usage_error(*run("%%publish local\nx = 1"))
    assert "nothing to publish" in message and "--optional" in message
    result, io = run("%%publish local --optional --out r\nx = 1")
    ok(result, io)
    assert "nothing to publish" in io.stdout
    assert "r" not in ip.user_ns
    assert ip.run_line_magic("jobs", "").empty


def test_printing_alone_is_output(ip, run):
    ok(*run("%%publish local --out r\nprint('only a log line')"))
    files = {f.path: f for f in ip.user_ns["r"].files if f.kind == "file"}
    assert files["stdout"].size > 0


def test_fetch_dir_keeps_output_folders(ip, run, magics, tmp_path):
    magics.fetch_dir = str(tmp_path / "work")
    ok(*run("%%publish local --out r\n(OUTPUT / 'kept.txt').write_text('k')"))
    job_id = ip.user_ns["r"].job_id
    assert (tmp_path / "work" / job_id / "kept.txt").read_text() == "k"
    ok(*run(f"%fetch {job_id} --no-preview"))
    assert (tmp_path / "work" / job_id / "kept.txt").exists()


def test_sync_every_publishes_while_the_cell_runs(ip, run):
    result, io = run(
        "%%publish local --sync-every 1 --out r\n"
        "import time as _t\n"
        "(OUTPUT / 'first.txt').write_text('1')\n"
        "_t.sleep(2.5)\n"
        "_ = (OUTPUT / 'second.txt').write_text('2')\n"
    )
    ok(result, io)
    assert not any(t.name == SYNC_THREAD_NAME for t in threading.enumerate())
    r = ip.user_ns["r"]
    jobs = ip.run_line_magic("jobs", "--rounds")
    syncs = jobs[jobs["name"].str.contains(f"sync .* of {r.job_id}", regex=True)]
    assert len(syncs) >= 1
    one_row = ip.run_line_magic("jobs", "")  # the cell's run is one job, its rounds counted
    assert list(one_row["job_id"]) == [r.job_id] and list(one_row["rounds"]) == [len(syncs)]
    assert set(syncs["status"]) == {"published"}
    final = jobs[jobs["job_id"] == r.job_id].iloc[0]
    assert (syncs["created_at"] < final["created_at"]).all()
    # The final job stays the newest ID (the ledger trusts it over the rounds), rounds in order.
    assert jobs.iloc[0]["job_id"] == r.job_id and r.archive is None
    assert list(syncs.sort_values("created_at")["job_id"]) == sorted(syncs["job_id"])
    first_sync = syncs.sort_values("created_at").iloc[0]["job_id"]
    assert "first.txt" in set(ip.run_line_magic("cids", first_sync)["path"])
    assert {"first.txt", "second.txt"} <= {f.path for f in r.files}
    assert "synced" in io.stdout  # notes go to the cell's stream, not into OUTPUT/stdout
    stdout_record = next(f for f in r.files if f.path == "stdout")
    assert stdout_record.size == 0


def test_sync_every_shares_the_final_key_prefix_on_s3(ip, run, s3_env, s3_bucket):
    result, io = run(
        "%%publish s3://" + s3_bucket + "/runs/{jobID} --sync-every 0.5 --out r\n"
        "import time as _t\n(OUTPUT / 'early.txt').write_text('e')\n_t.sleep(1.5)\n"
    )
    ok(result, io)
    r = ip.user_ns["r"]
    assert r.uri == f"s3://{s3_bucket}/runs/{r.job_id}/" and r.archive is None
    synced = ip.run_line_magic("cids", "")
    early = synced[(synced["path"] == "early.txt") & (synced["job_id"] != r.job_id)]
    assert not early.empty
    assert set(early["location"]) == {f"s3://{s3_bucket}/runs/{r.job_id}/early.txt"}


def test_sync_every_leaves_one_coherent_verified_prefix_on_s3(ip, run, s3_env, s3_bucket, tmp_path):
    """Sync rounds and the final publish write one prefix: each file once, final contents."""
    result, io = run(
        "%%publish s3://" + s3_bucket + "/runs/{jobID}/ --sync-every 0.5 --out r\n"
        "import time as _t\n"
        "(OUTPUT / 'first.txt').write_text('first, draft')\n"
        "_t.sleep(1.5)\n"
        "(OUTPUT / 'second.txt').write_text('second')\n"
        "_ = (OUTPUT / 'first.txt').write_text('first, final version')\n"
    )
    ok(result, io)
    r = ip.user_ns["r"]
    prefix = f"runs/{r.job_id}/"
    assert r.uri == f"s3://{s3_bucket}/{prefix}" and r.archive is None
    cids = ip.run_line_magic("cids", "")
    drafts = cids[(cids["path"] == "first.txt") & (cids["job_id"] != r.job_id)]
    assert sha256(b"first, draft") in set(drafts["sha256"])  # a sync round did publish the draft

    fetched = jupyter_publish.fetch(f"s3://{s3_bucket}/{prefix}", tmp_path / "back")
    expected = {
        "first.txt": b"first, final version",
        "second.txt": b"second",
        "stdout": b"",
        "stderr": b"",
        "exitCode": b"0",
    }
    assert isinstance(fetched, FetchResult) and fetched.verified
    names = sorted(f.path.relative_to(fetched.dest).as_posix() for f in fetched.files)
    assert names == sorted(expected)  # once each: no archive beside the loose files
    on_disk = sorted(p.relative_to(tmp_path / "back").as_posix() for p in (tmp_path / "back").rglob("*"))
    assert on_disk == sorted(expected)
    for name, data in expected.items():
        assert (tmp_path / "back" / name).read_bytes().strip() == data

    keys = {o["Key"] for o in s3_env.client().list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert keys == {prefix + name for name in [*expected, ".jupyter-publish.json"]}
    body = s3_env.client().get_object(Bucket=s3_bucket, Key=prefix + ".jupyter-publish.json")["Body"]
    manifest = json.loads(body.read())
    assert manifest["job_id"] == r.job_id
    listed = {e["path"]: e["sha256"] for e in manifest["manifest"] if e.get("kind", "file") == "file"}
    assert listed == {name: sha256((tmp_path / "back" / name).read_bytes()) for name in expected}


def test_sync_every_does_not_combine_with_archive(run, isolated_home):
    message = usage_error(*run("%%publish local --sync-every 1 --archive\n(OUTPUT / 'x').write_text('x')"))
    assert "--sync-every" in message and "--archive" in message
    assert Ledger().jobs(10) == []  # refused before the cell ran


# -- %publish --------------------------------------------------------------------------


def test_line_publish_of_notebook_variables(ip, run):
    ip.user_ns.update(
        df=pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
        d={"loss": 0.1, "tags": ["a"]},
        s="some text",
        b=b"\x00\x01binary",
    )
    ok(*run("%publish df d s b --to local --no-archive --out r"))
    files = {f.path: f for f in ip.user_ns["r"].files if f.kind == "file"}
    assert set(files) == {"df.parquet", "d.json", "s.txt", "b.bin"}
    assert files["s.txt"].sha256 == sha256(b"some text")
    assert files["b.bin"].sha256 == sha256(b"\x00\x01binary")
    ok(*run("%fetch {{r.job_id}} --to back --no-preview"))
    assert json.loads(Path("back/d.json").read_text()) == {"loss": 0.1, "tags": ["a"]}
    pd.testing.assert_frame_equal(pd.read_parquet("back/df.parquet"), ip.user_ns["df"])


def test_line_publish_of_a_numpy_array_and_a_single_variable_name(ip, run):
    np = pytest.importorskip("numpy")
    ip.user_ns["arr"] = np.arange(6).reshape(2, 3)
    ok(*run("%publish arr --out r"))
    r = ip.user_ns["r"]
    assert [f.path for f in r.files if f.kind == "file"] == ["arr.npy"]
    assert r.name == "arr" and r.type == "local"


def test_dataframe_falls_back_to_csv_when_parquet_cannot_store_it(tmp_path):
    frame = pd.DataFrame({"mixed": [1, "x"]})  # an object column arrow cannot type
    path = variable_to_file("df", frame, tmp_path)
    assert path.name == "df.csv" and path.read_text() == "mixed\n1\nx\n"
    assert not (tmp_path / "df.parquet").exists()


def test_existing_path_wins_over_a_variable_of_the_same_name(ip, run, tmp_path):
    (tmp_path / "s").write_text("file content")
    ip.user_ns["s"] = "variable content"
    ok(*run("%publish s --out r"))
    files = [f for f in ip.user_ns["r"].files if f.kind == "file"]
    assert [(f.path, f.sha256) for f in files] == [("s", sha256(b"file content"))]


def test_line_publish_of_unsupported_or_unknown_names(ip, run):
    ip.user_ns["obj"] = object()
    message = usage_error(*run("%publish obj"))
    assert "'obj'" in message and "DataFrame" in message and "str" in message
    message = usage_error(*run("%publish no_such_thing"))
    assert "no such file, folder or notebook variable" in message
    message = usage_error(*run("%publish missing/*.csv"))
    assert "no files match" in message


def test_line_only_and_cell_only_options(run):
    assert "cell magic" in usage_error(*run("%publish x --sync-every 1"))
    assert "%publish --ui" in usage_error(*run("%%publish local --ui\nx = 1"))
    assert "one destination" in usage_error(*run("%%publish local s3://b/k\nx = 1"))
    assert "needs files" in usage_error(*run("%publish"))


def test_variables_in_double_braces(ip, run, tmp_path):
    (tmp_path / "data.txt").write_text("d")
    ip.user_ns.update(name="run-7", path=str(tmp_path / "data.txt"))
    ok(*run("%publish {{path}} --name {{name}} --out r"))
    assert ip.user_ns["r"].name == "run-7"
    ok(*run("%%publish local --name {{ name }} --out r\nprint(1)"))
    assert ip.user_ns["r"].name == "run-7"
    message = usage_error(*run("%publish {{nope}} --to local"))
    assert message == "no variable 'nope' in the notebook: define it or remove {{nope}}"


def test_unknown_option_is_one_line_without_echoing_values(run):
    result, io = run("%publish a.txt --token s3cr3t-value")
    message = usage_error(result, io)
    assert "unknown option --token" in message
    assert "s3cr3t" not in io.stdout + io.stderr
    assert "Traceback" not in io.stdout + io.stderr


def test_bad_option_values_and_destinations_are_usage_errors(run):
    assert "invalid choice" in usage_error(*run("%publish a --cid-version 7"))
    assert "unknown destination" in usage_error(*run("%%publish ftp://x\nprint(1)"))
    # Destination and options are checked before the cell runs.
    assert "does not apply to local" in usage_error(*run("%%publish local --endpoint http://x\nboom = 1"))
    assert "--out needs a Python variable name" in usage_error(*run("%%publish local --out 1x\nprint(1)"))


def test_an_option_given_on_the_line_wins_over_its_setting(magics):
    # A configured setting and the same flag on the line once met as two keywords of one
    # call (TypeError: multiple values for 'region'), a traceback instead of a publish.
    magics.region = "us-east-1"
    args = magics._parse(magics.publish, "a.txt --to s3://bucket/k --region eu-west-1", "%publish")
    dest = magics._destination("s3://bucket/k", args)
    assert dest.options["region"] == "eu-west-1"
    args = magics._parse(magics.publish, "a.txt --to s3://bucket/k", "%publish")
    assert magics._destination("s3://bucket/k", args).options["region"] == "us-east-1"


def test_auth_is_never_echoed(run, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    result, io = run("%publish a.txt --to http://127.0.0.1:9/up/ --auth user:s3cr3t-pw --quiet")
    usage_error(result, io)
    assert "s3cr3t" not in str(result.error_in_exec) + io.stdout + io.stderr


@pytest.fixture
def refusing_server():
    """An HTTP origin that answers (so the checks before the cell pass) but refuses every upload."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Refuse(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            self.send_error(403)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_outputs_are_kept_when_the_publish_itself_fails(ip, run, refusing_server):
    message = usage_error(
        *run(f"%%publish {refusing_server}/up/ --quiet\n(OUTPUT / 'precious.txt').write_text('p')\n")
    )
    kept = Path(re.search(r"kept in (\S+):", message).group(1))
    assert (kept / "precious.txt").read_text() == "p"
    ok(*run(f"%publish {kept} --out r"))
    assert "precious.txt" in {f.path for f in ip.user_ns["r"].files}
    shutil.rmtree(kept)


# -- %fetch / %%fetch ------------------------------------------------------------------


def test_cell_fetch_of_a_job_id_and_a_local_uri(ip, run):
    ok(*run("%%publish local --out r\n(OUTPUT / 'm.json').write_text('{\"a\": 1}')"))
    job_id = ip.user_ns["r"].job_id
    result, io = run(f"%%fetch --to one --out f\n# a comment\n\n{job_id}\n")
    ok(result, io)
    fetched = ip.user_ns["f"]
    assert isinstance(fetched, FetchResult) and fetched.verified
    assert (Path("one") / "m.json").read_text() == '{"a": 1}'
    assert any("text/html" in o.data for o in io.outputs)  # shown with its preview
    result, io = run(f"%%fetch --to two --out f\nlocal://{job_id}/\n{{{{r.job_id}}}}\n")
    ok(result, io)
    assert isinstance(ip.user_ns["f"], list) and len(ip.user_ns["f"]) == 2
    assert all(f.verified for f in ip.user_ns["f"])


def test_fetch_no_preview_prints_one_line(ip, run):
    ok(*run("%%publish local --out r\nprint('x')"))
    result, io = run("%fetch {{r.job_id}} --to here --no-preview")
    ok(result, io)
    assert io.outputs == []
    assert io.stdout.strip().startswith("fetched ") and "verified" in io.stdout


def test_fetch_errors_are_one_line(run):
    assert "no job" in usage_error(*run("%fetch j-NOSUCHJOB000"))
    assert "give a reference" in usage_error(*run("%%fetch\n# nothing\n"))
    assert "ftp://x" in usage_error(*run("%fetch ftp://x"))


# -- %jobs, %cids, %%cids --------------------------------------------------------------


def test_jobs_and_cids_return_dataframes(ip, run):
    ok(*run("%%publish local --out r\n(OUTPUT / 'a.txt').write_text('a')"))
    job_id = ip.user_ns["r"].job_id
    result, io = run("%jobs")
    ok(result, io)
    assert isinstance(result.result, pd.DataFrame) and list(result.result["job_id"]) == [job_id]
    result, io = run("%jobs --limit 1")
    assert len(result.result) == 1
    result, io = run(f"%cids {job_id}")
    ok(result, io)
    assert "a.txt" in set(result.result["path"])
    assert (result.result["job_id"] == job_id).all()
    result, io = run("%cids {{r.job_id}}")
    assert "a.txt" in set(result.result["path"])


def test_cell_cids_extracts_cids_from_text(run):
    bacalhau = pytest.importorskip("jupyter_publish.bacalhau")
    if not hasattr(bacalhau, "cids_in_text"):
        pytest.skip("jupyter_publish.bacalhau.cids_in_text is not there yet")
    result, io = run(
        "%%cids\n"
        "added QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o hello.txt\n"
        " 12 B / 12 B [====] 100.00%\n"
        "added bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4 hello-v1.txt\n"
    )
    ok(result, io)
    frame = result.result
    assert isinstance(frame, pd.DataFrame)
    text = frame.to_string()
    assert "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o" in text
    assert "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4" in text


# -- --ui ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "factory"),
    [("%publish --ui", "publish_panel"), ("%fetch --ui", "fetch_panel"), ("%jobs --ui", "jobs_browser")],
)
def test_ui_panels(run, line, factory):
    widgets = pytest.importorskip("jupyter_publish.widgets")
    if not hasattr(widgets, factory):
        pytest.skip(f"jupyter_publish.widgets.{factory} is not there yet")
    result, io = run(line)
    ok(result, io)
    assert io.outputs
