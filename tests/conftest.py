"""Shared fixtures. Real servers come from the plugin modules named below."""

from __future__ import annotations

import pytest

pytest_plugins = ["servers_s3", "servers_ipfs", "servers_http"]


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
