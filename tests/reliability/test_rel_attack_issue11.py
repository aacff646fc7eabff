"""Attacks on issue 11's extension point: a third-party backend registering a scheme,
options and parsing of its own must not take another backend's destinations, the core's
options, the front doors (a broken plugin) or a secret it declares."""

from __future__ import annotations

import json
import sqlite3
import sys
import warnings
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hostile import all_forms, assert_one_line, find_secrets
from memory_backend import STORES, MemoryBackend

import jupyter_publish as jp
from jupyter_publish import api, backends, cli
from jupyter_publish.backends.base import (
    BackendBase,
    BackendOption,
    Destination,
    ProgressCallback,
    StoredObject,
    Upload,
)
from jupyter_publish.destinations import parse_destination
from jupyter_publish.errors import BackendError, DestinationError
from jupyter_publish.text import one_line

TOKEN = "plugin-tok-9f8e7d6c5b4a"


@pytest.fixture
def registry(monkeypatch):
    """The registry as before after the test, whatever it registered."""
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    monkeypatch.setattr(backends, "_CLASSES", dict(backends._CLASSES))
    monkeypatch.setattr(backends, "_INSTALLED", {})
    STORES.clear()
    yield
    STORES.clear()


# -- schemes ------------------------------------------------------------------------------


def test_an_upper_case_scheme_is_the_lower_case_one_and_breaks_nothing(registry):
    """``register_backend("MEM", …)`` was stored as ``MEM`` but looked up as ``mem``: every
    listing of the backends (the CLI's parser, help texts) then raised."""
    backends.register_backend("MEM", MemoryBackend)
    assert "mem" in backends.known_schemes()
    cli.build_parser()
    assert parse_destination("MEM://lab/x/").scheme == "mem"


def test_an_upper_case_built_in_scheme_needs_clobber(registry):
    with pytest.raises(ValueError, match="already registered"):
        backends.register_backend("S3", MemoryBackend)


@pytest.mark.parametrize("scheme", ["", "a b", "1abc", "x://", "mem/x", "é"])
def test_a_scheme_that_is_no_uri_scheme_is_refused(registry, scheme):
    with pytest.raises(ValueError, match="not a URI scheme"):
        backends.register_backend(scheme, MemoryBackend)


@pytest.mark.parametrize("scheme", ["mem+v2", "mem.x", "mem-x"])
def test_schemes_with_plus_dot_dash_work(registry, scheme, tmp_path):
    cls = type("Plain", (BackendBase,), {"scheme": scheme})  # the default SCHEME://KEY parser
    backends.register_backend(scheme, cls)
    assert parse_destination(f"{scheme.upper()}://lab/p/").key == "lab/p/"
    assert backends.scheme_of(f"{scheme}://lab/p/") == scheme


def test_a_subclass_registered_under_a_new_scheme_does_not_hand_destinations_to_its_parent(registry):
    """A MinIO backend deriving from S3Backend inherits ``scheme = "s3"``: its
    destinations were dispatched by that scheme, i.e. published by S3Backend."""
    from jupyter_publish.backends.s3 import S3Backend

    class Minio(S3Backend):
        @classmethod
        def parse_destination(cls, text: str) -> Destination | None:
            return super().parse_destination(text.replace("minio://", "s3://", 1))

    with pytest.raises(ValueError, match="set scheme = 'minio'"):
        backends.register_backend("minio", Minio)


def test_a_destination_of_another_scheme_is_refused(registry):
    class Hijack(MemoryBackend):
        scheme = "hijack"

        @classmethod
        def parse_destination(cls, text: str) -> Destination | None:
            return Destination("s3", text, bucket="victim", key="k/")

    backends.register_backend("hijack", Hijack)
    with pytest.raises(DestinationError, match="made no hijack destination"):
        parse_destination("hijack://x/")


@pytest.mark.parametrize("made", [KeyError("boom"), "garbage"])
def test_a_parser_that_raises_or_returns_garbage_is_one_destination_error(registry, made):
    class Broken(MemoryBackend):
        scheme = "broken"

        @classmethod
        def parse_destination(cls, text: str) -> Any:
            if isinstance(made, Exception):
                raise made
            return made

    backends.register_backend("broken", Broken)
    with pytest.raises(DestinationError) as caught:
        parse_destination("broken://x/")
    assert_one_line(str(caught.value))
    assert "broken" in str(caught.value)


# -- options --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["name", "to", "archive", "quiet", "jobs", "compression", "json", "out"])
def test_an_option_named_like_a_core_one_is_refused(registry, name):
    """A plugin's ``name`` clashed with ``--name`` (the CLI and the magics could not be
    built); its ``compression`` was taken as the core's keyword."""
    cls = type("Clash", (MemoryBackend,), {"scheme": "clash", "options": (BackendOption(name, "x"),)})
    with pytest.raises(ValueError, match="core's own"):
        backends.register_backend("clash", cls)


def test_reserved_names_cover_every_core_keyword_and_flag():
    import inspect

    from jupyter_publish import fetcher, publisher

    for func in (publisher.publish, publisher.begin_job, publisher.resume, fetcher.fetch):
        for param in inspect.signature(func).parameters.values():
            if param.kind is not param.VAR_KEYWORD:
                assert param.name in backends.RESERVED_OPTIONS, (func.__name__, param.name)
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    backend_names = {o.name for o in backends.all_options("publish") + backends.all_options("fetch")}
    for command in sub.choices.values():
        for action in command._actions:
            if action.dest not in backend_names:
                assert action.dest in backends.RESERVED_OPTIONS, action.dest


def test_a_plugin_that_fails_to_load_is_one_warning_and_the_front_doors_stand(registry, monkeypatch):
    monkeypatch.setattr(backends, "_INSTALLED", {"ghost": "no_such_module_xyz.Ghost"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli.build_parser()
    lines = [str(w.message) for w in caught]
    assert any("'ghost' backend did not load" in line and "no_such_module_xyz" in line for line in lines)
    assert all("\n" not in line for line in lines)
    with pytest.raises(DestinationError, match="'ghost' backend did not load"):
        jp.fetch("ghost://x/y")


def test_a_plugin_with_a_core_option_from_an_entry_point_is_left_out(registry, monkeypatch):
    bad = type("Bad", (MemoryBackend,), {"scheme": "bad", "options": (BackendOption("name", "x"),)})
    monkeypatch.setattr(sys.modules[__name__], "Bad", bad, raising=False)
    monkeypatch.setattr(backends, "_INSTALLED", {"bad": f"{__name__}.Bad"})
    with pytest.warns(UserWarning, match="option 'name' is the core's own"):
        cli.build_parser()  # built: the plugin is left out, not the command line
        assert "bad" not in {cls.scheme for cls in backends.registered_backends()}


# -- a secret option ------------------------------------------------------------------


class Vault(MemoryBackend):
    """Takes a secret ``token`` and, like a server echoing the request, quotes it in its error."""

    scheme: ClassVar[str] = "vault"
    options: ClassVar[tuple[BackendOption, ...]] = (
        BackendOption("token", "An API token.", secret=True, flag=False),
    )

    @classmethod
    def parse_destination(cls, text: str) -> Destination | None:
        store, _, key = text.partition("://")[2].partition("/")
        return Destination(cls.scheme, text, bucket=store, key=key)

    def __init__(self, *, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token

    def put(self, upload: Upload, progress: ProgressCallback | None = None) -> StoredObject:
        import base64
        from urllib.parse import quote

        with upload.open() as reader:
            reader.read()
        token = self.token or ""
        raise BackendError(
            f"401 for Authorization: Bearer {token} (b64 {base64.b64encode(token.encode()).decode()}, "
            f"url {quote(token)})"
        )


class Public(MemoryBackend):
    """Declares ``token`` too, not secret (a public project token): it came first."""

    scheme: ClassVar[str] = "public"
    options: ClassVar[tuple[BackendOption, ...]] = (BackendOption("token", "A project name.", flag=False),)


def test_a_declared_secret_never_reaches_the_ledger_errors_or_repr(registry, tmp_path, isolated_home):
    backends.register_backend("public", Public)  # first: all_options kept its not-secret token
    backends.register_backend("vault", Vault)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("x\n")
    with pytest.raises(BackendError) as caught:
        jp.publish(src, "vault://v/runs/", archive=False, token=TOKEN)
    dest = parse_destination("vault://v/runs/", token=TOKEN)
    job = api.begin_job("vault://v/runs/", token=TOKEN)
    ledger = (
        sqlite3.connect(isolated_home / "ledger.sqlite")
        if (isolated_home / "ledger.sqlite").exists()
        else None
    )
    rows = json.dumps(jp.jobs().astype(str).to_dict("records"))
    texts = {
        "error as the edges show it": one_line(caught.value, scrub=True),
        "jobs": rows,
        "repr(dest)": repr(dest),
        "repr(job)": repr(job),
    }
    if ledger is not None:
        texts["ledger"] = json.dumps([list(r) for r in ledger.execute("SELECT * FROM jobs")])
    hits = find_secrets(all_forms([TOKEN]), texts, folders=[isolated_home])
    assert hits == [], "; ".join(hits)


# -- a ledger written by the code before the merge ------------------------------------------


def _old_ledger_module() -> Any:
    """The ledger module as it was before ``scheme`` (``git show 7ea5ad7:…/ledger.py``)."""
    import importlib.util
    import subprocess

    source = subprocess.run(
        ["git", "show", "7ea5ad7:jupyter_publish/ledger.py"],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
    )
    if source.returncode != 0:
        pytest.skip("no git history here to take the old ledger from")
    spec = importlib.util.spec_from_loader("jupyter_publish._old_ledger", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "jupyter_publish"
    exec(compile(source.stdout, "old_ledger.py", "exec"), module.__dict__)
    return module


def _old_ledger_with_jobs(tmp_path: Path, home: Path) -> tuple[Path, jp.PublishedResult, str]:
    """An old ledger holding a local publish (done by today's code, recorded by the old
    ledger), a published HTTP job, and an interrupted local job with its resume record."""
    old = _old_ledger_module()
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    (src / "b.txt").write_text("beta\n")
    result = jp.publish(src, archive=False)  # today's ledger, at home
    path = tmp_path / "old.sqlite"
    ledger = old.Ledger(path)
    ledger.start(
        job_id=result.job_id, execution_id=result.execution_id, node_id=result.node_id,
        name="src", type="local", destination="local",
    )  # fmt: skip
    ledger.finish(result)
    http = {"Type": "urlDownload", "Params": {"URL": "http://127.0.0.1:1/x/"}}
    ledger.start(
        job_id="j-http", execution_id="e", node_id="n", name="x", type="http",
        destination="http://127.0.0.1:1/x/",
    )  # fmt: skip
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE jobs SET status='published', result_json=? WHERE job_id='j-http'", (json.dumps(http),)
        )
    # an interrupted job: today's publisher writes the spec; copy its row's spec into the old ledger
    from jupyter_publish.ledger import Ledger

    row = Ledger().job_row(result.job_id)
    spec = json.loads(row["spec_json"])
    ledger.start(
        job_id="j-cut", execution_id="e2", node_id=result.node_id, name="src", type="local",
        destination="local", spec=spec,
    )  # fmt: skip
    ledger.fail("j-cut", "interrupted by the user")
    return path, result, "j-cut"


def test_an_old_ledger_reads_fetches_and_resumes(tmp_path, isolated_home):
    from jupyter_publish.ledger import Ledger

    path, result, cut = _old_ledger_with_jobs(tmp_path, isolated_home)
    ledger = Ledger(path)
    got = {j["job_id"]: (j["status"], j["type"], j["scheme"]) for j in ledger.jobs()}
    assert got[result.job_id] == ("published", "local", "local")
    assert got["j-http"] == ("published", "urlDownload", "http")
    assert got[cut] == ("failed", None, "local")
    fetched = jp.fetch(result.job_id, tmp_path / "back", ledger=ledger)
    assert fetched.verified and (tmp_path / "back" / "a.txt").read_text() == "alpha\n"
    resumed = jp.resume(cut, ledger=ledger)
    assert resumed.job_id == cut and {f.path for f in resumed.files} >= {"a.txt", "b.txt"}
    assert {j["job_id"]: j["scheme"] for j in ledger.jobs()}[cut] == "local"


def test_a_migration_cut_short_is_finished_on_the_next_open(tmp_path, isolated_home, monkeypatch):
    """``ALTER TABLE`` committed on its own: a process killed before the rows were
    migrated left ``scheme`` present and never filled (``type`` still ``http`` for
    an HTTP result). The column and its rows now change in one transaction."""
    from jupyter_publish import ledger as ledger_module

    path, _result, _cut = _old_ledger_with_jobs(tmp_path, isolated_home)

    def killed(db: sqlite3.Connection) -> None:
        db.execute("UPDATE jobs SET scheme = type WHERE scheme IS NULL")
        raise KeyboardInterrupt  # the kernel was interrupted mid-migration

    monkeypatch.setattr(ledger_module, "_migrate_type", killed)
    with pytest.raises(KeyboardInterrupt):
        ledger_module.Ledger(path)
    monkeypatch.undo()
    got = {j["job_id"]: (j["type"], j["scheme"]) for j in ledger_module.Ledger(path).jobs()}
    assert got["j-http"] == ("urlDownload", "http")


def test_two_processes_migrating_an_old_ledger_at_once(tmp_path, isolated_home):
    import subprocess

    path, _result, _cut = _old_ledger_with_jobs(tmp_path, isolated_home)
    code = (
        "import sys; from pathlib import Path; from jupyter_publish.ledger import Ledger;"
        "jobs = Ledger(Path(sys.argv[1])).jobs();"
        "print(sorted((j['job_id'], j['type'], j['scheme']) for j in jobs))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(6)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err.decode()[-500:] for _, err in outs]
    from jupyter_publish.ledger import Ledger

    final = sorted((j["job_id"], j["type"], j["scheme"]) for j in Ledger(path).jobs())
    assert ("j-http", "urlDownload", "http") in final
    for out, _ in outs:  # none saw a half-migrated ledger
        assert "('j-http', 'urlDownload', 'http')" in out.decode()


# -- the magics' settings -----------------------------------------------------------------


def _setting_options() -> list[BackendOption]:
    return [o for cls in backends.registered_backends() for o in cls.options if o.setting]


@pytest.mark.parametrize("option", _setting_options(), ids=lambda o: o.name)
def test_a_backend_setting_applies_to_its_own_destinations_only(ip, tmp_path, isolated_home, option):
    """``%config PublishMagics.NAME`` for each backend setting: a local publish is not
    refused for carrying another backend's option; that backend's destination gets it."""
    from jupyter_publish.magics import PublishMagics

    magics = ip.magics_manager.registry["PublishMagics"]
    assert isinstance(magics, PublishMagics)
    (tmp_path / "a.txt").write_text("a\n")
    value = "http://127.0.0.1:9" if option.name in ("endpoint", "api", "gateway") else "eu-west-1x"
    ip.run_line_magic("config", f"PublishMagics.{option.name} = {value!r}")
    try:
        assert getattr(magics, option.name) == value
        ip.run_line_magic("publish", f"{tmp_path / 'a.txt'} --to local --quiet --out jp_attack_r")
        assert ip.user_ns.pop("jp_attack_r").type == "local"
        owners = [cls for cls in backends.registered_backends() if option in cls.options]
        for cls in owners:
            text = cls.example.replace("BUCKET", "bucket").replace("…", "x").replace("HOST", "127.0.0.1:9")
            args = argparse_namespace()
            dest = magics._destination(text, args)
            assert dest.options.get(option.name) == value, (cls.scheme, dest.options)
    finally:
        ip.run_line_magic("config", f"PublishMagics.{option.name} = None")


def argparse_namespace() -> Any:
    import argparse

    from jupyter_publish import magic_args

    return argparse.Namespace(**{o.name: None for o in magic_args.PUBLISH_FLAGS})


def test_publish_help_lists_every_backend_flag(ip):
    from jupyter_publish.magics import PublishMagics

    help_text = PublishMagics.publish.__doc__ or ""
    fetch_help = PublishMagics.fetch.__doc__ or ""
    for cls in backends.registered_backends():
        for option in cls.options:
            if option.flag and option.publish:
                assert f"--{option.name.replace('_', '-')}" in help_text, option.name
            if option.flag and option.fetch:
                assert f"--{option.name.replace('_', '-')}" in fetch_help, option.name


@pytest.mark.parametrize("name", ["shell", "config", "parent", "cids", "expand"])
def test_a_plugin_setting_named_like_a_magics_attribute_does_not_break_the_extension(name, tmp_path):
    """A plugin (installed, so known when the magics class is made) declaring a setting
    ``shell``/``config``/``parent`` stopped ``%load_ext`` (the shell was validated as a
    string); ``cids``/``expand`` handed the magics' own method to the backend as a value."""
    import subprocess

    code = f"""
import sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
from memory_backend import MemoryBackend, STORES
from jupyter_publish import backends
from jupyter_publish.backends.base import BackendOption, Destination

class Plugin(MemoryBackend):
    scheme = "plug"
    options = (BackendOption({name!r}, "x", setting="a plugin setting", fetch=False),)

    @classmethod
    def parse_destination(cls, text):
        return Destination("plug", text, bucket="lab", key=text.partition("://")[2])

    def __init__(self, **kw):
        assert not callable(kw.get({name!r})), kw
        super().__init__(**{{k: v for k, v in kw.items() if k != {name!r}}})

backends.register_backend("plug", Plugin)
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "jupyter_publish")
open("a.txt", "w").write("a")
ip.run_line_magic("publish", "a.txt --to plug://runs/ --quiet --out r")
assert ip.user_ns["r"].type == "plug", ip.user_ns["r"]
print("OK")
"""
    env = {**__import__("os").environ, "JUPYTER_PUBLISH_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.stdout.strip().endswith("OK"), done.stderr[-2000:]


# -- begin_job / Job --------------------------------------------------------------------------


def test_a_job_is_recorded_once(tmp_path, isolated_home):
    """A Job published twice, or failed after it was published, hit the ledger's
    primary key and raised sqlite3.IntegrityError (not a PublishError: a traceback in a
    notebook). It is one PublishError now, and the published record stands."""
    from jupyter_publish.errors import PublishError

    (tmp_path / "a.txt").write_text("a\n")
    job = api.begin_job("local", resolve_placeholders=True)
    first = job.publish(tmp_path / "a.txt", archive=False)
    with pytest.raises(PublishError, match="already published"):
        job.publish(tmp_path / "a.txt", archive=False)
    with pytest.raises(PublishError, match="already published"):
        job.fail("a late failure")
    failed = api.begin_job("local")
    failed.fail("the cell raised")
    with pytest.raises(PublishError, match="already failed"):
        failed.fail("again")
    rows = {j["job_id"]: (j["status"], j["error"]) for j in jp.jobs().to_dict("records")}
    assert rows[first.job_id][0] == "published"
    assert rows[failed.job_id] == ("failed", "the cell raised")


def test_placeholders_are_resolved_once_for_every_round(registry, tmp_path, isolated_home, monkeypatch):
    import time

    jp.register_backend("mem", MemoryBackend, clobber=True)
    (tmp_path / "a.txt").write_text("a\n")
    job = api.begin_job("mem://lab/{jobID}/{date}-{time}/", resolve_placeholders=True)
    assert "{" not in job.destination.key
    first = job.publish_round(tmp_path / "a.txt", 1)
    time.sleep(1.1)  # a second {time} resolution would now differ
    last = job.publish(tmp_path / "a.txt", archive=False)
    assert first.uri == last.uri == f"mem://lab/{job.destination.key}"


def test_a_secret_in_a_failure_reason_is_not_stored(registry, tmp_path, isolated_home):
    backends.register_backend("vault", Vault)
    job = api.begin_job("vault://v/runs/", token=TOKEN)
    job.fail(f"the cell printed the token {TOKEN} and raised")
    hits = find_secrets(all_forms([TOKEN]), {"jobs": json.dumps(jp.jobs().astype(str).to_dict("records"))})
    assert hits == [] and "***" in jp.jobs()["error"].iloc[0]


# -- archive suffixes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("https://h/a/..", "fetched"),
        ("https://h/a/...zip", "fetched"),
        ("https://h/a/..tar.gz", "fetched"),
        ("s3://bucket/k/.", "fetched"),
        ("https://h/x.TAR.GZ", "x"),
        ("https://h/x.tar.gz.zip", "x.tar.gz"),
        ("https://h/x.Tar.Xz", "x"),
        ("https://h/.hidden.zip", ".hidden"),
    ],
)
def test_the_default_folder_is_never_dots(ref, name):
    from jupyter_publish.fetcher import default_name

    assert default_name(ref) == name


def test_fetching_a_dots_archive_stays_in_the_working_folder(tmp_path, isolated_home, monkeypatch):
    """``local://JOB/...zip`` cut to ``..`` by its suffix extracted into the parent of
    the working folder."""
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    with zipfile.ZipFile(src / "...zip", "w") as archive:
        archive.writestr("evil.txt", "x")
    result = jp.publish(src, archive=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    fetched = jp.fetch(result.uri + "...zip")
    assert not (tmp_path / "evil.txt").exists()
    assert fetched.dest.resolve().parent == cwd.resolve()
    assert (fetched.dest / "evil.txt").read_text() == "x"


@pytest.mark.parametrize("suffix", [".TAR.GZ", ".Tar.Bz2", ".tar.XZ", ".TGZ", ".ZIP", ".tar.zst"])
def test_every_archive_suffix_in_any_case_is_extracted(tmp_path, isolated_home, suffix):
    import io
    import tarfile
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    path = src / f"bundle{suffix}"
    lower = suffix.lower()
    if lower == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("inner/a.txt", "alpha")
    else:
        mode = {".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.bz2": "w:bz2", ".tar.xz": "w:xz"}.get(lower)
        if mode is None:  # zstd
            try:
                from compression import zstd  # type: ignore[import-not-found]
            except ImportError:
                from backports import zstd
            raw = io.BytesIO()
            with tarfile.open(fileobj=raw, mode="w") as tar:
                info = tarfile.TarInfo("inner/a.txt")
                info.size = 5
                tar.addfile(info, io.BytesIO(b"alpha"))
            path.write_bytes(zstd.compress(raw.getvalue()))
        else:
            with tarfile.open(path, mode) as tar:
                info = tarfile.TarInfo("inner/a.txt")
                info.size = 5
                tar.addfile(info, io.BytesIO(b"alpha"))
    result = jp.publish(src, archive=False)
    fetched = jp.fetch(result.uri + path.name, tmp_path / "out")
    assert (tmp_path / "out" / "inner" / "a.txt").read_text() == "alpha", fetched.files


# -- the multipart encoder --------------------------------------------------------------------


@pytest.mark.parametrize("name", ['quo"te.txt', "new\r\nline.txt", "naïve ünï 文件.txt", "back\\slash\\"])
def test_a_form_file_name_cannot_break_its_header_and_the_length_is_exact(name):
    from jupyter_publish.backends.http import _form_filename
    from jupyter_publish.multipart import Form, Part

    upload = Upload(name=f"dir/{name}", size=3, open=lambda: None)  # type: ignore[arg-type,return-value]
    part = Part(_form_filename(upload), "text/plain", [b"abc"])
    form = Form()
    body = b"".join(form.body([part]))
    assert len(body) == form.overhead([part]) + 3
    head = body.split(b"\r\n\r\n", 1)[0].decode()
    assert head.count("\r\n") == 2  # boundary, Content-Disposition, Content-Type: no line injected
    disposition = head.split("\r\n")[1]
    assert disposition.count('"') == 4  # name="file" and filename="…": the name opened no quote
    with pytest.raises(ValueError):
        form.head(Part('a"b', "text/plain"))


def test_a_form_body_streams_a_large_file(tmp_path):
    """A 512 MiB (sparse) file through the encoder: the process grows by far less than it."""
    import subprocess

    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(512 * 2**20)
    code = f"""
import resource
from jupyter_publish.multipart import Form, Part
def chunks():
    with open({str(big)!r}, "rb") as f:
        while block := f.read(1 << 20):
            yield block
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
form = Form()
sent = sum(len(c) for c in form.body([Part("big.bin", "application/octet-stream", chunks())]))
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(sent - form.overhead([Part("big.bin", "application/octet-stream")]), grown)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    sent, grown_kib = map(int, done.stdout.split())
    assert sent == 512 * 2**20
    assert grown_kib < 32 * 1024, f"grew {grown_kib} KiB"


def test_an_inline_secret_never_reaches_the_command_lines_output(registry, tmp_path, isolated_home, capsys):
    backends.register_backend("vault", Vault)
    (tmp_path / "a.txt").write_text("a\n")
    code = cli.main(["publish", str(tmp_path / "a.txt"), "--to", f"vault://v/r/,opt=token={TOKEN}", "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and "401" in err
    assert cli.main(["jobs", "--json"]) == 0
    listed, _ = capsys.readouterr()
    hits = find_secrets(all_forms([TOKEN]), {"stdout": out, "stderr": err, "jobs": listed}, [isolated_home])
    assert hits == [], "; ".join(hits)


def test_another_backends_setting_of_the_same_name_does_not_leak(ip, registry, isolated_home):
    """S3 declares an ``endpoint`` setting; a plugin's own ``endpoint`` option (no setting:
    it means something else there) got ``PublishMagics.endpoint``, S3's server, too."""

    class Relay(Vault):
        scheme: ClassVar[str] = "relay"
        options: ClassVar[tuple[BackendOption, ...]] = (BackendOption("endpoint", "The relay's own host."),)

    backends.register_backend("relay", Relay)
    magics = ip.magics_manager.registry["PublishMagics"]
    ip.run_line_magic("config", "PublishMagics.endpoint = 'http://127.0.0.1:9'")
    try:
        assert "endpoint" not in magics._destination("relay://v/runs/", argparse_namespace()).options
        s3 = magics._destination("s3://bucket/runs/", argparse_namespace())
        assert s3.options["endpoint"] == "http://127.0.0.1:9"
    finally:
        ip.run_line_magic("config", "PublishMagics.endpoint = None")


@pytest.mark.parametrize("name", ["s3", "HTTPS", "bad name"])
def test_an_installed_backend_cannot_shadow_a_built_in_one_silently(registry, monkeypatch, name):
    from importlib import metadata

    point = metadata.EntryPoint(name=name, value="evil_pkg:Evil", group="jupyter_publish.backends")
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [point])
    monkeypatch.setattr(backends, "_INSTALLED", None)
    with pytest.warns(UserWarning, match="evil_pkg:Evil ignored"):
        schemes = backends.known_schemes()
    assert name.lower() not in backends._INSTALLED
    assert "s3" in schemes and backends.backend_class("s3").__name__ == "S3Backend"


def test_a_local_publish_and_fetch_import_no_other_backend(tmp_path):
    """Masking secret options must not import every backend to learn their names: a
    local publish and fetch stay as light as before (backends are imported when used)."""
    import subprocess

    (tmp_path / "a.txt").write_text("a\n")
    code = (
        "import sys, jupyter_publish as jp\n"
        "r = jp.publish('a.txt')\n"
        "jp.fetch(r.job_id, 'back')\n"
        "print(sorted(m for m in sys.modules if m.startswith('jupyter_publish.backends.')"
        " or m.split('.')[0] in ('httpx', 'boto3', 'botocore')))\n"
    )
    env = {
        **__import__("os").environ,
        "JUPYTER_PUBLISH_HOME": str(tmp_path / "home"),
        "JUPYTER_PUBLISH_QUIET": "1",
    }
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = eval(done.stdout.strip().splitlines()[-1])
    assert set(loaded) <= {"jupyter_publish.backends.base", "jupyter_publish.backends.local"}, loaded
