"""Attacks on issue 11's extension point: a third-party backend registering a scheme,
options and parsing of its own must not take another backend's destinations, the core's
options, the front doors (a broken plugin) or a secret it declares."""

from __future__ import annotations

import json
import sqlite3
import sys
import warnings
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
