"""Run a cell into an output folder, as Bacalhau runs a job into its result bundle.

``OUTPUT`` (and ``$JUPYTER_PUBLISH_OUTPUT``) point at the folder while the cell runs;
stdout and stderr are teed into ``stdout``/``stderr`` files so output stays live and is
also published; ``exitCode`` says whether the cell raised. No IPython import here.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

OUTPUT_ENV = "JUPYTER_PUBLISH_OUTPUT"
"""Environment variable holding the ``%%publish`` output folder (for subprocesses)."""
OUTPUT_NAME = "OUTPUT"
BUNDLE_FILES = ("stdout", "stderr", "exitCode")
"""Written into every ``%%publish`` output folder, like Bacalhau's result bundle."""


class Tee:
    """A stream that writes to the notebook and to a file: output stays live and is kept."""

    def __init__(self, stream: TextIO, path: Path) -> None:
        self.stream = stream
        self._file = open(path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        written = self.stream.write(text)
        with self._lock:
            if not self._file.closed:
                self._file.write(text)
                self._file.flush()
        return len(text) if written is None else written

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def close_file(self) -> None:
        with self._lock:
            self._file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def teed(folder: Path) -> Iterator[None]:
    """Copy ``sys.stdout``/``sys.stderr`` into ``folder/stdout`` and ``folder/stderr``."""
    out, err = Tee(sys.stdout, folder / "stdout"), Tee(sys.stderr, folder / "stderr")
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out.stream, err.stream
        out.close_file()
        err.close_file()


@contextlib.contextmanager
def bound_output(namespace: dict[str, Any], folder: Path) -> Iterator[None]:
    """``OUTPUT`` and ``$JUPYTER_PUBLISH_OUTPUT`` point at ``folder``; restored afterwards."""
    missing = object()
    old_value = namespace.get(OUTPUT_NAME, missing)
    old_env = os.environ.get(OUTPUT_ENV)
    namespace[OUTPUT_NAME] = folder
    os.environ[OUTPUT_ENV] = str(folder)
    try:
        yield
    finally:
        if old_value is missing:
            namespace.pop(OUTPUT_NAME, None)
        else:
            namespace[OUTPUT_NAME] = old_value
        if old_env is None:
            os.environ.pop(OUTPUT_ENV, None)
        else:
            os.environ[OUTPUT_ENV] = old_env


def write_exit_code(folder: Path, error: BaseException | None) -> None:
    (folder / "exitCode").write_text("0" if error is None else "1", encoding="utf-8")
    if error is not None:  # a kernel shows tracebacks out of band: keep one in stderr
        with open(folder / "stderr", "a", encoding="utf-8", errors="replace") as handle:
            handle.write("".join(traceback.format_exception(error)))


def is_empty(folder: Path) -> bool:
    """Empty means the cell wrote no files and printed nothing (the bundle files don't count)."""
    if any(entry.name not in BUNDLE_FILES for entry in folder.iterdir()):
        return False
    return all(
        not (folder / name).exists() or (folder / name).stat().st_size == 0 for name in ("stdout", "stderr")
    )
