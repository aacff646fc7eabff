"""What produced a job, captured without the user doing anything.

Every publish (API, command line, magics, widgets, sync rounds) records where it ran
and from what: notebook, the ``%%publish`` cell's text (scrubbed) and its sha256, the
magic line as typed with the values of its placeholders that are not secrets, kernel,
Python, the versions of the packages the process had imported, the git commit of the
notebook's repository and whether it was dirty, host, user, start and end time,
duration and status. The facts a caller knows better (the cell, the line, the
notebook) come in as ``extra``; the rest is read here, cheaply: package names come
from the ``*.dist-info`` folders of ``sys.path`` (listed once per process, again only
after an install changed a folder), git from one ``git status`` with a short timeout.
Nothing here imports IPython: a kernel's versions are read from ``sys.modules``.
Anything that cannot be found is left out, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from . import redact

GIT_TIMEOUT = 3.0
"""Seconds ``git status`` may take (a huge repository on a slow disk): then no git field."""
MAX_SOURCE = 100_000
"""Characters of a cell's source kept (its sha256 is of the whole cell)."""

_ASSIGNED = re.compile(
    r"""(?x)
    (?<![\w.\-])([A-Za-z_][\w.\-]*)           # a name (whether it is a secret's: redact.is_secret_name)
    (['"]?\]?(?:\s*:\s*[A-Za-z_][\w.\[\]]*)?\s*(?:=|:|,)\s*\(?\s*[rbuf]{0,2})  # = : , (annotation first)
    ('{3}|"{3}|['"])((?:(?!\3).){4,}?)\3     # a quoted value of 4 characters or more (triple too)
    """
)
"""``password = "…"``, ``{"aws_secret_access_key": "…"}``, ``setenv("TOKEN", "…")``,
``env["db_key"] = "…"``, ``token: str = "…"``."""
_VALUE = r"""([^\s'"`,;&|()\[\]{}<>=]{4,})"""
_UNQUOTED = re.compile(
    rf"(?<![\w.\-])(-{{0,2}}[A-Za-z_][\w.\-]*)(=){_VALUE}|(?<![\w.\-])(--?[A-Za-z_][\w.\-]*)([ \t]+){_VALUE}"
)
"""``%env AWS_SECRET_ACCESS_KEY=…``, ``!PGPASSWORD=… psql``, ``f(token=tok)``, and a
magic line's ``secret_key=…`` or ``--secret-key …``: an unquoted value after a secret's
name (after a space only for an option, ``--name value``)."""
_URL_USER = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/@\s:'\"]{16,})@")
"""``https://TOKEN@github.com/…``: a token as a URL's user name (git remotes do that)."""
_TOKEN = re.compile(
    r"""(?x)
    \b(?:AKIA|ASIA|AROA)[0-9A-Z]{16}\b              # AWS access key IDs
    | \bgh[pousr]_[A-Za-z0-9]{30,}\b                 # GitHub tokens
    | \bgithub_pat_[A-Za-z0-9_]{40,}\b
    | \bglpat-[A-Za-z0-9_\-]{20,}\b                   # GitLab
    | \bxox[abpsr]-[A-Za-z0-9\-]{10,}\b                # Slack
    | \bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b        # OpenAI, Anthropic style keys
    | \bAIza[0-9A-Za-z_\-]{35}\b                     # Google API keys
    | \beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}  # JWTs
    | (?i:\b(?:bearer|basic|token)\s+[A-Za-z0-9._~+/\-]{16,}=*)     # Authorization values
    | -----BEGIN[ A-Z]*PRIVATE\ KEY-----[\s\S]*?(?:-----END[ A-Z]*PRIVATE\ KEY-----|\Z)
    """
)
"""Tokens that look like credentials wherever they appear."""


def scrub_source(text: str) -> str:
    """``text`` (a cell, a magic line) as it may be stored: every registered or
    environment secret masked (:func:`redact.scrub`), and anything that looks like one:
    a quoted value assigned to a secret-sounding name, a known token format, a URL's
    password, a presigned signature."""
    text = redact.scrub(text)
    text = _ASSIGNED.sub(_mask_assigned, text)
    text = _UNQUOTED.sub(_mask_unquoted, text)
    text = _URL_USER.sub(
        lambda m: f"{m.group(1)}{redact.MASK}@" if _random_word(m.group(2)) else m.group(0), text
    )
    return _TOKEN.sub(redact.MASK, text)


def _mask_unquoted(match: re.Match[str]) -> str:
    name, between, value = match.group(1, 2, 3) if match.group(1) else match.group(4, 5, 6)
    if value == redact.MASK or not redact.is_secret_name(name):
        return match.group(0)
    return f"{name}{between}{redact.MASK}"


def _mask_assigned(match: re.Match[str]) -> str:
    name, between, quote = match.group(1), match.group(2), match.group(3)
    if not redact.is_secret_name(name):
        return match.group(0)
    return f"{name}{between}{quote}{redact.MASK}{quote}"


_RANDOM = re.compile(r"[A-Za-z0-9+/=_\-]{16,}")


def looks_secret(name: str, value: str) -> bool:
    """Whether a placeholder's value must not be shown: a secret-sounding name, a value
    the scrubber would change, a token format, or a long random-looking word (upper and
    lower case letters and digits, like a key; not a job ID or a CID)."""
    if redact.is_secret_name(name) or scrub_source(value) != value:
        return True
    return any(_random_word(word) for word in value.split())


def _random_word(word: str) -> bool:
    mixed = all(re.search(chars, word) for chars in ("[A-Z]", "[a-z]", "[0-9]"))
    if not (mixed and _RANDOM.fullmatch(word)) or re.fullmatch(r"[je]-[0-9A-Z]{26}", word):
        return False
    from .cid import parse_cid
    from .errors import CidError

    try:
        parse_cid(word)  # a CID looks random, and is no secret
    except CidError:
        return True
    return False


def public_values(values: Mapping[str, Any]) -> dict[str, str]:
    """The ``{{var}}``/``{placeholder}`` values that are not secrets, as text."""
    shown = {}
    for name, value in values.items():
        text = str(value)[:500]
        if not looks_secret(str(name), text):
            shown[str(name)] = text
    return shown


# -- capture -------------------------------------------------------------------------------


def capture(
    extra: Mapping[str, Any] | None = None,
    *,
    notebook: str | None = None,
    started_at: str | None = None,
    placeholders: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The facts of a job starting now (``started_at`` if it began earlier).

    ``extra`` (from the magics) may hold ``cell_source`` (the cell as run),
    ``magic_line``, ``magic_values`` (``{"{{name}}": value}``), ``notebook`` and
    ``kernel``; they win over what is found here. ``placeholders`` are the publisher's
    ``{jobID}``-style values: those used in the magic line are recorded with it.
    Unsafe to show as is: :func:`public` makes what is stored.
    """
    return begin(extra, notebook=notebook, started_at=started_at, placeholders=placeholders).facts()


class Pending:
    """Facts being captured: ``git status`` (5-30 ms, more in a large repository) runs in
    a thread while the publish moves bytes; :meth:`facts` waits for it."""

    def __init__(self, facts: dict[str, Any], folder: Path | None) -> None:
        self._facts = facts
        self._git: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._read_git, args=(folder,), daemon=True, name="jp-git")
        self._thread.start()

    def _read_git(self, folder: Path | None) -> None:
        self._git = git_state(folder) if folder is not None else None

    def facts(self) -> dict[str, Any]:
        """Every fact, git included once known (a git that outlives its timeout: none)."""
        self._thread.join(2 * GIT_TIMEOUT + 1)
        facts = dict(self._facts)
        if self._git and not self._thread.is_alive():
            facts["git"] = dict(self._git)
        return facts

    def known(self) -> dict[str, Any]:
        """The facts known without waiting (git only if it has answered)."""
        return self.facts() if not self._thread.is_alive() else dict(self._facts)


def begin(
    extra: Mapping[str, Any] | None = None,
    *,
    notebook: str | None = None,
    started_at: str | None = None,
    placeholders: Mapping[str, str] | None = None,
) -> Pending:
    """:func:`capture`, with git read in the background."""
    from .ledger import utc_now

    given = dict(extra or {})
    facts: dict[str, Any] = {}
    path = given.pop("notebook", None) or notebook or _notebook_from_environment()
    if path:
        facts["notebook"] = str(path)
    cell = given.pop("cell_source", None)
    if isinstance(cell, str):
        facts["cell_sha256"] = given.pop("cell_sha256", None) or hashlib.sha256(cell.encode()).hexdigest()
        facts["cell_source"] = cell
    line = given.pop("magic_line", None)
    if isinstance(line, str):
        facts["magic_line"] = line
        values = dict(given.pop("magic_values", None) or {})
        for name, value in (placeholders or {}).items():
            if "{" + name + "}" in line:
                values["{" + name + "}"] = value
        if values:
            facts["magic_values"] = values
    kernel = given.pop("kernel", None) or kernel_version()
    if kernel:
        facts["kernel"] = kernel
    facts["python"] = platform.python_version()
    facts["packages"] = imported_packages()
    facts["host"] = _host()
    facts["user"] = _user()
    facts["started_at"] = given.pop("started_at", None) or started_at or utc_now()
    facts["tool"] = f"jupyter-publish {_tool_version()}"
    facts.update({k: v for k, v in given.items() if isinstance(k, str)})
    return Pending(facts, _repository_folder(facts.get("notebook")))


def again(recorded: Mapping[str, Any]) -> Pending:
    """The facts a job recorded when it began, for a run that resumes it: git is asked
    again (for the recorded notebook's folder) if it had not answered when the row was
    written, as happens when the first run was killed moments after it started."""
    folder = None if "git" in recorded else _repository_folder(recorded.get("notebook"))
    return Pending(dict(recorded), folder)


def finished(facts: Mapping[str, Any], status: str) -> dict[str, Any]:
    """``facts`` of a job that ended now with ``status``, as stored (:func:`public`)."""
    from .ledger import utc_now

    done = dict(facts)
    done["finished_at"] = utc_now()
    done["status"] = status
    duration = _seconds_between(done.get("started_at"), done["finished_at"])
    if duration is not None:
        done["duration_s"] = duration
    return public(done)


def public(facts: Mapping[str, Any]) -> dict[str, Any]:
    """``facts`` as they may be stored and shown: the cell and the line scrubbed (with
    the secrets known now, which may be more than when the job began), placeholder
    values that look secret left out."""
    shown = dict(facts)
    if isinstance(shown.get("cell_source"), str):
        shown["cell_source"] = scrub_source(shown["cell_source"][:MAX_SOURCE])
    if isinstance(shown.get("magic_line"), str):
        shown["magic_line"] = scrub_source(shown["magic_line"])
    if "magic_values" in shown:
        values = public_values(shown.pop("magic_values") or {})
        if values:
            shown["magic_values"] = values
    return shown


def _seconds_between(start: Any, end: str) -> float | None:
    try:
        began = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        ended = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round(max(0.0, (ended - began).total_seconds()), 3)


def _notebook_from_environment() -> str | None:
    """The notebook Jupyter says this kernel runs (``JPY_SESSION_NAME``), if any."""
    return os.environ.get("JPY_SESSION_NAME") or None


def _repository_folder(notebook: str | None) -> Path | None:
    """Where to look for git: the notebook's folder when it exists, else the working
    folder (None if that was deleted under the process: then no git field)."""
    with contextlib.suppress(OSError, ValueError):
        if notebook:
            path = Path(notebook).expanduser()
            if path.is_file():
                return path.resolve().parent
        return Path.cwd()
    return None


def _host() -> str:
    import socket

    return socket.gethostname()


def _user() -> str:
    from .ids import current_user

    return current_user()


def _tool_version() -> str:
    # The package is imported (it is this module's parent); importing it by name here
    # would be a cycle: the package's magics import the publisher, which imports this.
    return str(getattr(sys.modules.get(__package__ or ""), "__version__", "unknown"))


def kernel_version() -> str | None:
    """``ipykernel X (IPython Y)`` for what this process has imported; None in a plain
    process. Read from ``sys.modules``: nothing is imported here."""
    parts = []
    for name in ("ipykernel", "IPython"):
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None) if module is not None else None
        if isinstance(version, str):
            parts.append(f"{name} {version}")
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else f"{parts[0]} ({parts[1]})"


# -- git -------------------------------------------------------------------------------


def git_state(folder: Path, timeout: float = GIT_TIMEOUT) -> dict[str, Any] | None:
    """``{"commit", "dirty", "branch"?, "remote"?}`` of the repository holding ``folder``.

    One ``git status --porcelain=v2 --branch`` gives the commit, branch and whether a
    tracked file changed (untracked files, such as outputs, do not make it dirty); the
    remote's URL is read with its credentials taken out. No git, not a repository, a
    repository without commits, a refusal or a timeout: None.
    """
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    status = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], folder, env, timeout)
    if status is None:
        return None
    commit = branch = upstream = None
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2].strip()
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2].strip()
        elif line.startswith("# branch.upstream "):
            upstream = line.split(" ", 2)[2].strip()
        elif line and not line.startswith("#"):
            dirty = True
    if not commit or not re.fullmatch(r"[0-9a-f]{40,64}", commit):
        return None  # "(initial)": a repository without a commit has none to record
    found: dict[str, Any] = {"commit": commit, "dirty": dirty}
    if branch and branch != "(detached)":
        found["branch"] = branch
    remote_name = upstream.split("/", 1)[0] if upstream else "origin"
    url = _git(["config", "--get", f"remote.{remote_name}.url"], folder, env, timeout)
    if url and url.strip():
        found["remote"] = strip_credentials(url.strip())
    return found


def _git(args: list[str], folder: Path, env: dict[str, str], timeout: float) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return done.stdout if done.returncode == 0 else None


def strip_credentials(url: str) -> str:
    """A remote URL without the user, password or query (``https://TOKEN@host/x`` is
    common): :func:`redact.public_url`; an scp-like ``git@host:x`` names no secret and stays."""
    return redact.public_url(url, query=False) or redact.MASK


# -- packages ------------------------------------------------------------------------------

_lock = threading.Lock()
_index: _Index | None = None
"""What the ``*.dist-info`` folders of ``sys.path`` say, for one fingerprint of it."""


class _Index:
    """Installed distributions as the folders name them: by module name, and per
    ``sys.path`` folder (to find a module's owner in its RECORD when the names differ)."""

    def __init__(self, stamp: tuple[tuple[str, int], ...]) -> None:
        self.stamp = stamp
        self.by_module: dict[str, list[tuple[str, str]]] = {}
        self.by_folder: dict[str, list[tuple[str, tuple[str, str]]]] = {}
        """sys.path folder -> [(dist-info folder, (distribution, version))]."""
        self.owners: dict[str, tuple[str, str] | None] = {}
        """Modules found (or not) in a RECORD already."""
        for entry, _ in stamp:
            self._scan(entry or ".")

    def _scan(self, entry: str) -> None:
        try:
            names = os.listdir(entry)
        except OSError:
            return
        for folder in names:
            match = _DIST_INFO.match(folder)
            if match is None:
                continue
            name, version = match.group("name"), match.group("version")
            pair = (name.replace("_", "-") if folder.endswith(".dist-info") else name, version)
            path = os.path.join(entry, folder)
            self.by_folder.setdefault(os.path.realpath(entry), []).append((path, pair))
            for key in {_normal(name), *_top_levels(path)}:
                if pair not in self.by_module.setdefault(key, []):
                    self.by_module[key].append(pair)

    def owner(self, top: str, module: Any) -> tuple[str, str] | None:
        """The distribution whose RECORD lists ``top`` (``dateutil`` is python-dateutil's,
        ``zmq`` pyzmq's): only that module's ``sys.path`` folder is read, the likeliest
        names first, and the answer kept."""
        with _lock:
            if top in self.owners:
                return self.owners[top]
        found = None
        where = _site_folder(module)
        if where is not None:
            pattern = re.compile(rf"^(?:\.\./)?{re.escape(top)}(?:/|\.[^/,\n]*[,\n])", re.MULTILINE)
            likely = sorted(
                self.by_folder.get(where, []),
                key=lambda item: (
                    _normal(top) not in _normal(item[1][0]) and _normal(item[1][0]) not in _normal(top)
                ),
            )
            for folder, pair in likely:
                if any(pattern.search(text) for text in _listings(folder)):
                    found = pair
                    break
        with _lock:
            self.owners[top] = found
        return found


def imported_packages() -> dict[str, str]:
    """``{distribution: version}`` of every installed distribution whose top-level
    module this process has imported (the standard library left out).

    Read from the ``*.dist-info`` folders' names (no metadata parsed): a module is its
    distribution's by name (``pandas``), by ``top_level.txt``, or else by the RECORD
    of a distribution in the module's own folder (``zmq``: pyzmq), found once per
    process. ``importlib.metadata.packages_distributions()`` reads every RECORD
    instead: 0.3 s in a large environment.
    """
    index = _distribution_index()
    found: dict[str, str] = {}
    stdlib = sys.stdlib_module_names
    for top in sorted({name.partition(".")[0] for name in list(sys.modules)}):
        if top in stdlib or top.startswith("__") or top in sys.builtin_module_names:
            continue
        matched = index.by_module.get(top) or index.by_module.get(_normal(top))
        if matched:
            found.update(matched)
            continue
        module = sys.modules.get(top)
        if _site_folder(module) is not None:
            owner = index.owner(top, module)
            if owner is not None:
                found[owner[0]] = owner[1]
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def _normal(name: str) -> str:
    """A distribution or module name compared as the packaging spec does (PEP 503)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _site_folder(module: Any) -> str | None:
    """The ``site-packages``-like folder a top-level module was loaded from, as
    ``site-packages/NAME.py`` or ``site-packages/NAME/__init__.py``: None for a
    notebook's own module, or a compiled helper a package registers under a top-level
    name (pandas' ``_cyutility`` lives in ``pandas/_libs``)."""
    where = getattr(module, "__file__", None)
    if not isinstance(where, str):
        return None
    folder = Path(where).parent
    if Path(where).stem == "__init__":
        folder = folder.parent
    return os.path.realpath(folder) if folder.name in ("site-packages", "dist-packages") else None


def _fingerprint() -> tuple[tuple[str, int], ...]:
    """Each folder of ``sys.path`` and its mtime: an install or uninstall changes it."""
    seen = []
    for entry in sys.path:
        try:
            seen.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    return tuple(seen)


def _distribution_index() -> _Index:
    global _index
    stamp = _fingerprint()
    with _lock:
        if _index is not None and _index.stamp == stamp:
            return _index
    index = _Index(stamp)
    with _lock:
        _index = index
    return index


_DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+?)(?:-py\d[\d.]*)?\.(?:dist|egg)-info$")


def _top_levels(folder: str) -> list[str]:
    try:
        with open(os.path.join(folder, "top_level.txt"), encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError):
        return []


def _listings(folder: str) -> list[str]:
    """A distribution's list of installed files: RECORD (a wheel's), or an egg's
    installed-files.txt (paths relative to the egg-info folder: ``../NAME/…``)."""
    texts = []
    for name in ("RECORD", "installed-files.txt"):
        with (
            contextlib.suppress(OSError, UnicodeDecodeError),
            open(os.path.join(folder, name), encoding="utf-8") as f,
        ):
            texts.append(f.read())
    return texts


__all__ = [
    "Pending",
    "again",
    "begin",
    "capture",
    "finished",
    "git_state",
    "imported_packages",
    "kernel_version",
    "public",
    "public_values",
    "scrub_source",
    "strip_credentials",
]
