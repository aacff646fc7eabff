"""The front door: what the magics, the widgets and the command line all call."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .ledger import Ledger
from .publisher import Job, begin_job, publish, record_failure, resume

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from .lineage import LineageRecord
    from .results import FetchRef, FetchResult, PublishedResult


def jobs(limit: int | None = None, *, ledger: Ledger | None = None) -> pd.DataFrame:
    """Every recorded job as a pandas DataFrame, newest first."""
    from .tables import jobs_frame

    return jobs_frame((ledger or Ledger()).jobs(limit))


def cids(job: str | None = None, *, ledger: Ledger | None = None) -> pd.DataFrame:
    """One row per published file, folder and archive (of one job, or of all)."""
    from .tables import cids_frame

    return cids_frame((ledger or Ledger()).files(job))


def lineage(
    job: str | PublishedResult,
    *,
    ledger: Ledger | None = None,
    records: Iterable[LineageRecord] = (),
) -> pd.DataFrame:
    """The edges (used -> produced) upstream and downstream of ``job``, as a DataFrame.

    Upstream: what the job used (fetched in the same process, fetched into the folder it
    published, or named with ``uses``), and what that used; downstream: the jobs that
    used its result. ``records`` (PublishedResults read elsewhere, a shared catalog's)
    join the ledger's jobs.
    """
    from .lineage import combined, lineage_edges

    job_id = job if isinstance(job, str) else job.job_id
    return lineage_edges(combined(ledger or Ledger(), list(records)), job_id)


def fetch(
    ref: FetchRef,
    dest: str | os.PathLike[str] | None = None,
    *,
    verify: bool = True,
    extract: bool = True,
    **options: Any,
) -> FetchResult:
    """Fetch a URI, job ID, PublishedResult or Bacalhau result spec, verified."""
    from .fetcher import fetch as _fetch

    return _fetch(ref, dest, verify=verify, extract=extract, **options)


def export(
    job: str | PublishedResult | dict[str, Any],
    *,
    ro_crate: str | os.PathLike[str],
    license: str | None = None,
    ledger: Ledger | None = None,
) -> Path:
    """Write an RO-Crate (https://w3id.org/ro/crate/1.1) describing a job (an ID, a
    unique prefix, or a result) to the folder ``ro_crate``: every file with its sha256,
    CID and location, and the provenance as a ``CreateAction``. ``license``: an SPDX ID
    or URL. Returns the path of the ``ro-crate-metadata.json`` written."""
    from .crate import export as _export

    return _export(job, ro_crate=ro_crate, license=license, ledger=ledger)


__all__ = [
    "Job",
    "begin_job",
    "cids",
    "export",
    "fetch",
    "jobs",
    "lineage",
    "publish",
    "record_failure",
    "resume",
]
