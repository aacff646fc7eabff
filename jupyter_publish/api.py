"""The front door: what the magics, the widgets and the command line all call."""

from __future__ import annotations

from typing import Any

from .ledger import Ledger
from .publisher import Job, begin_job, publish, record_failure, resume


def jobs(limit: int | None = None, *, ledger: Ledger | None = None) -> Any:
    """Every recorded job as a pandas DataFrame, newest first."""
    from .tables import jobs_frame

    return jobs_frame((ledger or Ledger()).jobs(limit))


def cids(job: str | None = None, *, ledger: Ledger | None = None) -> Any:
    """One row per published file, folder and archive (of one job, or of all)."""
    from .tables import cids_frame

    return cids_frame((ledger or Ledger()).files(job))


def fetch(ref: Any, dest: Any = None, *, verify: bool = True, extract: bool = True, **options: Any) -> Any:
    """Fetch a URI, job ID, PublishedResult or Bacalhau result spec, verified."""
    from .fetcher import fetch as _fetch

    return _fetch(ref, dest, verify=verify, extract=extract, **options)


__all__ = ["Job", "begin_job", "cids", "fetch", "jobs", "publish", "record_failure", "resume"]
