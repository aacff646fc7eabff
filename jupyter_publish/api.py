"""The front door: what the magics, the widgets and the command line all call."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .ledger import Ledger
from .publisher import Job, begin_job, publish, record_failure, resume

if TYPE_CHECKING:
    import pandas as pd

    from .catalog import CatalogLocation
    from .results import FetchRef, FetchResult


def jobs(
    limit: int | None = None,
    *,
    ledger: Ledger | None = None,
    catalog: str | bool | CatalogLocation | None = None,
    catalog_options: Mapping[str, Any] | None = None,
    max_concurrency: int | None = None,
) -> pd.DataFrame:
    """Every recorded job as a pandas DataFrame, newest first.

    ``catalog`` (``s3://BUCKET/PREFIX/``, a folder, or True for ``$JUPYTER_PUBLISH_CATALOG``)
    lists the team's jobs instead: the records written there since the last listing are
    read (``max_concurrency`` at once) and cached in the ledger; the columns are the same,
    plus ``user``, ``host`` and ``catalog_key``.
    """
    if catalog is None or catalog is False:
        from .tables import jobs_frame

        return jobs_frame((ledger or Ledger()).jobs(limit))
    from .catalog import open_catalog
    from .tables import catalog_jobs_frame

    where = None if catalog is True else catalog
    with open_catalog(where, ledger=ledger, options=catalog_options, max_concurrency=max_concurrency) as cat:
        cat.sync()
        rows = cat.rows()
    return catalog_jobs_frame(rows[:limit] if limit else rows)


def cids(job: str | None = None, *, ledger: Ledger | None = None) -> pd.DataFrame:
    """One row per published file, folder and archive (of one job, or of all)."""
    from .tables import cids_frame

    return cids_frame((ledger or Ledger()).files(job))


def fetch(
    ref: FetchRef,
    dest: str | os.PathLike[str] | None = None,
    *,
    verify: bool = True,
    extract: bool = True,
    catalog: str | None = None,
    catalog_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> FetchResult:
    """Fetch a URI, job ID, PublishedResult or Bacalhau result spec, verified.

    A job ID the local ledger does not hold is looked up in ``catalog`` (default
    ``$JUPYTER_PUBLISH_CATALOG``; ``""`` for none) and verified against its record there.
    """
    from .fetcher import fetch as _fetch

    return _fetch(
        ref, dest, verify=verify, extract=extract, catalog=catalog, catalog_options=catalog_options, **options
    )


__all__ = ["Job", "begin_job", "cids", "fetch", "jobs", "publish", "record_failure", "resume"]
