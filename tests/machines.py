"""What the provenance and team tests share: a git repository to work in, and another
machine's command line (its own JUPYTER_PUBLISH_HOME, another process)."""

from __future__ import annotations

import os
import subprocess
import sys
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
