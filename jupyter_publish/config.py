"""Where jupyter-publish keeps its state, and small settings read from the environment."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

PROJECT_SECTION = "jupyter_publish"
"""The ``[tool.jupyter_publish]`` table of a ``pyproject.toml``: the magics' settings."""
HOME_ENV = "JUPYTER_PUBLISH_HOME"
QUIET_ENV = "JUPYTER_PUBLISH_QUIET"


def home() -> Path:
    """The store and ledger folder: ``$JUPYTER_PUBLISH_HOME`` or the user's data dir."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        path = Path(configured).expanduser()
    else:
        from platformdirs import user_data_path

        path = user_data_path("jupyter-publish", appauthor=False)
    try:
        private_dir(path)
    except OSError as exc:
        from .errors import SourceError

        raise SourceError(
            f"cannot create the jupyter-publish home {path}: {exc.strerror or exc}; "
            f"set {HOME_ENV} to a writable folder"
        ) from None
    return path


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
"""The home holds presigned links (bearer tokens) and results: on a shared host (JupyterHub,
an HPC login node) no other account may read it, whatever the umask."""


def tighten(path: Path, mode: int) -> None:
    """Drop group/other bits of something we own (an old home made 0755/0644)."""
    info = path.stat()
    if info.st_mode & 0o077 and info.st_uid == getattr(os, "getuid", lambda: info.st_uid)():
        os.chmod(path, info.st_mode & mode & 0o7777)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (created 0700; tightened if ours)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)  # a umask only removes bits
    tighten(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file only its owner can read (created empty 0600; tightened if ours)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE))
    tighten(path, PRIVATE_FILE)
    return path


def quiet_by_default() -> bool:
    """Progress bars are off under CI, when asked, and when nobody watches them: stderr
    is not a terminal (a pipe, a CI log, a file), where a bar is thousands of ``\\r``
    updates. A notebook's stderr is no terminal either, but there the bar is a widget."""
    if os.environ.get(QUIET_ENV, "").strip().lower() in {"1", "true", "yes"}:
        return True
    if os.environ.get("CI"):
        return True
    return not (_stderr_is_terminal() or _in_kernel())


def _stderr_is_terminal() -> bool:
    try:
        return bool(sys.stderr is not None and sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced by an object without it, or closed
        return False


def _in_kernel() -> bool:
    """A Jupyter kernel runs this process (tqdm.auto then draws a widget). Looked up
    among loaded modules only: the core never imports IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    shell = ipython.get_ipython()
    return getattr(shell, "kernel", None) is not None


IDLE_TIMEOUT_ENV = "JUPYTER_PUBLISH_IDLE_TIMEOUT"
DEFAULT_IDLE_TIMEOUT = 30.0
"""Seconds a connection may go without moving a byte before it is called stalled. A
stall is retried once on a fresh connection, so a hung server ends a transfer within
about a minute without progress."""
RETRIES_ENV = "JUPYTER_PUBLISH_RETRIES"
DEFAULT_RETRIES = 4
"""Extra attempts after a transient fault (so 5 in all), with exponential backoff."""


def _number(name: str, default: float, low: float, high: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # also refuses nan
        from .errors import OptionError

        raise OptionError(f"{name} must be a number from {low:g} to {high:g}, not {text!r}")
    return value


def idle_timeout() -> float:
    """``$JUPYTER_PUBLISH_IDLE_TIMEOUT`` seconds (0.1–3600), default 30."""
    return _number(IDLE_TIMEOUT_ENV, DEFAULT_IDLE_TIMEOUT, 0.1, 3600)


def retries() -> int:
    """``$JUPYTER_PUBLISH_RETRIES`` extra attempts after a transient fault (0–20), default 4."""
    value = _number(RETRIES_ENV, float(DEFAULT_RETRIES), 0, 20)
    if not value.is_integer():
        from .errors import OptionError

        raise OptionError(f"{RETRIES_ENV} must be a whole number, not {value:g}")
    return int(value)


def find_project_settings(start: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The nearest ``pyproject.toml`` (from ``start`` upwards) with a ``[tool.jupyter_publish]`` table."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: tomli if it is there, else no project settings
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            return None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            warnings.warn(f"jupyter-publish: cannot read {candidate}: {exc}", stacklevel=2)
            continue
        section = data.get("tool", {}).get(PROJECT_SECTION)
        if isinstance(section, dict):
            return candidate, section
    return None
