"""A backend is one file plus one registry line: ``tests/memory_backend.py`` registered
with ``register_backend`` publishes, lists and fetches through every front door (the
API, the command line, the magics) with no other change to the package."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from IPython.utils.capture import capture_output
from memory_backend import NOTES, STORES, MemoryBackend

import jupyter_publish as jp
from jupyter_publish import backends, cli
from jupyter_publish.cards import result_card
from jupyter_publish.errors import BackendError, DestinationError

FILES = {
    "table.csv": b"a,b\n1,2\n",
    "sub/notes.txt": "naïve ünïcode\n".encode(),
    "sub/deep/x.bin": bytes(range(256)),
}


@pytest.fixture
def mem(monkeypatch):
    """``mem://`` registered for one test; the registry and the store are as before afterwards."""
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    monkeypatch.setattr(backends, "_CLASSES", dict(backends._CLASSES))
    STORES.clear()
    NOTES.clear()
    jp.register_backend("mem", MemoryBackend, clobber=True)  # the one registry line
    yield STORES
    STORES.clear()
    NOTES.clear()


@pytest.fixture
def results(tmp_path) -> Path:
    root = tmp_path / "results"
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "empty").mkdir()
    return root


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def same_tree(folder: Path) -> None:
    for name, data in FILES.items():
        assert (folder / name).read_bytes() == data, name
    assert (folder / "empty").is_dir()


# -- the API ----------------------------------------------------------------------------


def test_api_publishes_plain_lists_and_fetches_by_job_and_uri(mem, results, tmp_path):
    result = jp.publish(results, "mem://lab/runs/{jobID}/", archive=False, note="first run")
    assert result.type == "memory" and result.destination == "mem://lab/runs/{jobID}/"
    assert result.uri == f"mem://lab/runs/{result.job_id}/"
    assert {f"runs/{result.job_id}/{name}": data for name, data in FILES.items()} == mem["lab"]
    assert set(NOTES.values()) == {"first run"}  # the backend's own option reached it

    row = jp.jobs().set_index("job_id").loc[result.job_id]
    assert (row["status"], row["type"], row["scheme"]) == ("published", "memory", "mem")
    cids = jp.cids(result.job_id).set_index("path")
    for name, data in FILES.items():
        assert cids.loc[name, "sha256"] == sha256(data)
        assert cids.loc[name, "cid"] == jp.cid_of(results / name)
    assert cids.loc["empty", "kind"] == "dir"

    by_job = jp.fetch(result.job_id, tmp_path / "by-job")
    assert by_job.verified
    same_tree(tmp_path / "by-job")

    by_uri = jp.fetch(result.uri, tmp_path / "by-uri")
    assert by_uri.verified and by_uri.job_id is None
    # The store vouches for no checksum: each file matched the sha256 the ledger recorded.
    assert {f.verified_against for f in by_uri.files} == {"sha256"}
    for name, data in FILES.items():
        assert (tmp_path / "by-uri" / name).read_bytes() == data

    assert "to memory" in result_card(result)  # the card says what the class calls itself


def test_api_publishes_an_archive_and_fetches_it_by_job_and_uri(mem, results, tmp_path):
    result = jp.publish(results, "mem://lab/archives/", name="bundle")
    assert result.archive is not None and result.archive.path == "bundle.tar.gz"
    assert list(mem["lab"]) == ["archives/bundle.tar.gz"]
    assert result.uri == "mem://lab/archives/bundle.tar.gz"
    assert sha256(mem["lab"]["archives/bundle.tar.gz"]) == result.archive.sha256

    jp.fetch(result.job_id, tmp_path / "by-job")
    same_tree(tmp_path / "by-job")
    fetched = jp.fetch(result.uri, tmp_path / "by-uri")
    assert fetched.verified and fetched.extracted_from == "bundle.tar.gz"
    same_tree(tmp_path / "by-uri")


def test_a_tampered_object_is_refused(mem, results, tmp_path):
    result = jp.publish(results, "mem://lab/t/", archive=False)
    mem["lab"]["t/table.csv"] = b"a,b\n6,6\n"
    with pytest.raises(jp.IntegrityError):
        jp.fetch(result.job_id, tmp_path / "back")
    assert not (tmp_path / "back" / "table.csv").exists()


def test_the_backend_owns_its_destination_and_options(mem, results):
    with pytest.raises(DestinationError, match="no store"):
        jp.publish(results, "mem:///k")
    with pytest.raises(DestinationError, match="does not apply to mem"):
        jp.publish(results, "mem://lab/k/", endpoint="http://127.0.0.1:9")
    with pytest.raises(DestinationError, match="does not apply to local"):
        jp.publish(results, "local", note="mine only")
    assert "mem://STORE/PREFIX/" in backends.usage()


def test_a_registered_class_that_only_reads_is_no_destination(mem, results):
    """A class with only the reading half (fetch-only, like fsspec's smallest filesystems)
    is refused as a destination in one line, the job recorded as failed."""

    class ReadOnly:
        scheme = "ro"

        def __init__(self, **options):
            pass

        def list(self, ref):
            return []

        def read(self, location, offset=0, length=None):
            yield b""

        def close(self):
            pass

    jp.register_backend("ro", ReadOnly, clobber=True)
    with pytest.raises(BackendError, match="the ro backend only reads"):
        jp.publish(results, "ro://anywhere/")
    newest = jp.jobs().iloc[0]
    assert newest["status"] == "failed" and "only reads" in newest["error"]


# -- the command line -------------------------------------------------------------------


def cli_json(capsys, *argv: str):
    assert cli.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_publishes_lists_and_fetches(mem, results, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["publish", "--help"])
    help_text = capsys.readouterr().out
    assert "mem://STORE/PREFIX/" in help_text and "--note" in help_text  # from the class

    plain = cli_json(
        capsys, "publish", str(results), "--to", "mem://lab/cli/", "--no-archive", "--note", "cli"
    )
    assert plain["uri"] == "mem://lab/cli/" and set(NOTES.values()) == {"cli"}
    archive = cli_json(capsys, "publish", str(results), "--to", "mem://lab/cli-archive/", "--name", "b")
    assert archive["uri"] == "mem://lab/cli-archive/b.tar.gz"

    listed = {row["job_id"]: row for row in cli_json(capsys, "jobs")}
    assert listed[plain["job_id"]]["scheme"] == listed[archive["job_id"]]["scheme"] == "mem"
    assert listed[plain["job_id"]]["type"] == "memory"
    cids = {row["path"]: row for row in cli_json(capsys, "cids", plain["job_id"])}
    assert cids["table.csv"]["sha256"] == sha256(FILES["table.csv"])

    for ref, into in [
        (plain["job_id"], "plain-job"),
        ("mem://lab/cli/", "plain-uri"),
        (archive["job_id"], "archive-job"),
        (archive["uri"], "archive-uri"),
    ]:
        fetched = cli_json(capsys, "fetch", ref, "--to", str(tmp_path / into))
        assert fetched["verified"], ref
        for name, data in FILES.items():
            assert (tmp_path / into / name).read_bytes() == data, (ref, name)


# -- the magics -------------------------------------------------------------------------


@pytest.fixture
def run(ip, mem, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def run_cell(code: str):
        with capture_output() as io:
            outcome = ip.run_cell(code)
        error = outcome.error_before_exec or outcome.error_in_exec
        assert error is None, f"{error!r}\n{io.stdout}\n{io.stderr}"
        return outcome

    yield run_cell
    for name in ("r", "a", "f", "g", "h", "listed", "cids", "results_dir"):
        ip.user_ns.pop(name, None)


def test_magics_publish_list_and_fetch(ip, run, results, tmp_path):
    run(
        "%%publish mem://lab/cell/{jobID}/ --no-archive --out r\n"
        "(OUTPUT / 'table.csv').write_text('a,b\\n1,2\\n')\n"
        "print('from the cell')\n"
    )
    r = ip.user_ns["r"]
    assert r.type == "memory" and r.uri == f"mem://lab/cell/{r.job_id}/"
    assert STORES["lab"][f"cell/{r.job_id}/table.csv"] == b"a,b\n1,2\n"

    ip.user_ns["results_dir"] = str(results)
    # Registered after the extension loaded: its options ride in the destination (,opt=).
    run("%publish {{results_dir}} --to mem://lab/line/,opt=note=magic --name b --out a")
    a = ip.user_ns["a"]
    assert a.uri == "mem://lab/line/b.tar.gz" and set(NOTES.values()) == {"magic"}

    run("listed = %jobs")
    assert set(ip.user_ns["listed"]["job_id"]) >= {r.job_id, a.job_id}
    run(f"cids = %cids {a.job_id}")
    assert "table.csv" in set(ip.user_ns["cids"]["path"])

    run("%fetch {{r.job_id}} --to cell-back --no-preview --out f")
    assert ip.user_ns["f"].verified
    assert "from the cell" in (tmp_path / "cell-back" / "stdout").read_text()
    run("%fetch {{a.uri}} --to line-back --no-preview --out g")
    assert ip.user_ns["g"].verified
    same_tree(tmp_path / "line-back")
    run(f"%%fetch --no-preview --out h\nmem://lab/cell/{r.job_id}/\n")
    assert ip.user_ns["h"].verified
    assert (tmp_path / r.job_id / "table.csv").read_bytes() == b"a,b\n1,2\n"
