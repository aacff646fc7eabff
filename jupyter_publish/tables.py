"""Ledger rows as pandas DataFrames with sensible dtypes (pandas is imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

JOB_COLUMNS = [
    "job_id", "name", "status", "type", "scheme", "destination", "uri", "url", "root_cid",
    "n_files", "total_size", "rounds", "created_at", "finished_at", "duration_s", "error",
    "notebook", "user", "host", "git_commit", "execution_id", "node_id",
]  # fmt: skip
"""``duration_s``, ``notebook``, ``user``, ``host``, ``git_commit`` (12 characters) come
from each job's provenance (:mod:`.provenance`); the rest of it is in ``--json``/the card."""
CID_PARAM_COLUMNS = ["cid_version", "raw_leaves", "chunker", "hidden", "symlinks"]
"""How each CID was made (``cid_of(path, **those)`` recomputes it), so "same file, different
CID" is answered in the table itself."""
CID_COLUMNS = [
    "job_id", "path", "kind", "cid", "size", "sha256", "destination", "location", "url", *CID_PARAM_COLUMNS,
]  # fmt: skip


def _frame(
    rows: Sequence[dict[str, Any]],
    columns: list[str],
    ints: list[str],
    times: list[str],
    bools: Sequence[str] = (),
    floats: Sequence[str] = (),
) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=columns)
    for col in columns:
        if col in ints:
            frame[col] = frame[col].astype("Int64")
        elif col in floats:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Float64")
        elif col in bools:
            frame[col] = frame[col].astype("boolean")
        elif col in times:
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
        else:
            frame[col] = frame[col].astype("string")
    return frame


def jobs_frame(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per job, newest first (``columns``: JOB_COLUMNS unless given)."""
    frame = _frame(
        rows,
        list(columns or JOB_COLUMNS),
        ["n_files", "total_size", "rounds"],
        ["created_at", "finished_at"],
        floats=["duration_s"],
    )
    frame["status"] = frame["status"].astype("category")
    return frame


def cids_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per published file, folder or archive, with how its CID was made."""
    return _frame(rows, CID_COLUMNS, ["size", "cid_version"], [], ["raw_leaves", "hidden"])


CATALOG_JOB_COLUMNS = [*JOB_COLUMNS, "catalog_key"]
"""A catalog listing: the ledger's job columns (``user`` and ``host``: who wrote each
record, from where, as it says) and the record's name in the catalog."""


def catalog_jobs_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per job in a shared catalog, newest first."""
    return jobs_frame(rows, CATALOG_JOB_COLUMNS)
