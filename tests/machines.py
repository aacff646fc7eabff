"""What the provenance, team and serve tests share: a git repository to work in, another
machine's command line (its own JUPYTER_PUBLISH_HOME, another process), and a running
``jupyter-publish serve``."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jupyter_publish

GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
"""git with an identity and no signing, whatever the machine's own configuration says."""


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its output, stripped (a failing command fails the test)."""
    done = subprocess.run([*GIT, "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_repo(root: Path, analysis: str = "v = 1\n") -> Path:
    """A git repository at ``root`` with one commit of ``analysis.py``."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "analysis.py").write_text(analysis)
    git(root, "add", "analysis.py")
    git(root, "commit", "-q", "-m", "first")
    return root


def cli_at(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``jupyter-publish ARGS`` as another process whose home (and ledger) is ``home``."""
    env = {
        **os.environ,
        "JUPYTER_PUBLISH_HOME": str(home),
        "PYTHONPATH": str(Path(jupyter_publish.__file__).parents[1]),
    }
    return subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextlib.contextmanager
def running_serve(home: Path) -> Iterator[str]:
    """``jupyter-publish serve`` for ``home``, in its own process until the block ends: the
    base URL it printed (``http://127.0.0.1:PORT/TOKEN``), once it advertises itself."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_publish.cli", "serve"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "JUPYTER_PUBLISH_HOME": str(home)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        printed = re.search(r"(http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]{32,})/JOB_ID/PATH", line)
        assert printed, line
        deadline = time.monotonic() + 10
        while not (home / "serve.json").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        yield printed.group(1)
    finally:
        proc.terminate()
        proc.wait(10)
