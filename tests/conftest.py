"""Shared fixtures. Real servers come from the plugin modules named below."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["servers_s3", "servers_ipfs", "servers_http"]

SERVER_FIXTURES = frozenset(
    {
        "s3_server",  # SeaweedFS
        "ipfs_node",  # the js-ipfs node
        "nginx_dav",
        "nginx_transfer",
        "nginx_small",
        "nginx_auth",
        "lab",  # JupyterLab + chromium (test_browser.py)
        "run_notebook",  # a Jupyter kernel running the tutorials, which start servers
    }
)
"""Fixtures that start a server process. A test using one, directly or through other
fixtures, is marked ``servers``; ``pytest -m "not servers"`` is the fast tier."""


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # fixturenames is the transitive closure; a parameter naming a server fixture is
        # one a test asks for with request.getfixturevalue.
        params = getattr(getattr(item, "callspec", None), "params", {}).values()
        used = set(getattr(item, "fixturenames", ())) | {p for p in params if isinstance(p, str)}
        if used & SERVER_FIXTURES:
            item.add_marker(pytest.mark.servers)
        if "reliability" in item.path.parts:  # the adversarial catalogue: faults, kills, races
            item.add_marker(pytest.mark.reliability)


def pytest_configure(config: pytest.Config) -> None:
    """In the fast tier no server may start: a test that starts one without the marker
    (a server built in the test, a fixture asked for by a computed name) fails, naming
    the fix, instead of slowing the tier down unseen."""
    if "not servers" not in (config.getoption("markexpr", "") or ""):
        return
    from jupyter_publish.testing.process import ServerProcess

    def refuse(self: ServerProcess) -> ServerProcess:
        raise RuntimeError(
            f"this test starts {self.name} but is not marked servers: "
            "add @pytest.mark.servers (or request the server fixture by name)"
        )

    ServerProcess._start_once = refuse  # type: ignore[method-assign]


@pytest.fixture(scope="session", autouse=True)
def private_temp_folder(tmp_path_factory):
    """The suite's temporary files go under its basetemp, never into the system temp
    folder: a kept OUTPUT folder, a fetch's staging, a subprocess's scratch files all
    land in this session's own folder (``tempfile`` and ``$TMPDIR``, which subprocesses
    inherit), removed with the basetemp; parallel runs each have their own."""
    import os
    import tempfile

    folder = tmp_path_factory.mktemp("tmp")
    saved = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(folder)
    os.environ["TMPDIR"] = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = saved[0]
        if saved[1] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[1]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own store and ledger, and no user config leaks in."""
    home = tmp_path_factory.mktemp("jp-home")
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(home))
    monkeypatch.setenv("JUPYTER_PUBLISH_QUIET", "1")
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "IPFS_API"):
        monkeypatch.delenv(var, raising=False)
    from jupyter_publish import redact

    redact.forget_all()  # secrets a previous test registered would mask this one's words
    return home


@pytest.fixture(scope="module")
def ip(tmp_path_factory):
    """One IPython shell with the extension loaded, per module (IPython keeps a
    singleton), history in memory."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.ipython_dir = str(tmp_path_factory.mktemp("ipython"))
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "jupyter_publish")
    yield shell
    shell.run_line_magic("unload_ext", "jupyter_publish")


@pytest.fixture
def magics(ip, tmp_path, monkeypatch):
    """The loaded PublishMagics, reset to its defaults after each test; cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    instance = ip.magics_manager.registry["PublishMagics"]
    yield instance
    if "PublishMagics" in ip.config:
        del ip.config["PublishMagics"]
    for name in instance.class_trait_names(config=True):
        setattr(instance, name, instance.trait_defaults(name))
    for name in ("r", "f", "df", "d", "s", "b", "arr", "obj", "name", "path", "frame"):
        ip.user_ns.pop(name, None)


# -- small folders several modules share ----------------------------------------------------


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A small results folder (a module with other needs defines its own)."""
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "metrics.json").write_text('{"loss": 0.1}')
    (folder / "table.csv").write_text("a,b\n1,2\n")
    return folder


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A team catalog in a folder (as a network share would be), empty."""
    folder = tmp_path / "team-catalog"
    (folder / "records").mkdir(parents=True)
    return folder


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder in no repository (git stops looking above tmp_path)."""
    folder = tmp_path / "plain"
    (folder / "results").mkdir(parents=True)
    (folder / "results" / "table.csv").write_text("x\n1\n")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(folder)
    return folder
