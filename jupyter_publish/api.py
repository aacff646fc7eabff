"""The front door: what the magics, the widgets and the command line all call."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .ledger import Ledger
from .publisher import Job, begin_job, publish, record_failure, resume

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from .catalog import CatalogLocation
    from .lineage import LineageRecord
    from .results import FetchRef, FetchResult, PublishedResult


def jobs(
    limit: int | None = None,
    *,
    ledger: Ledger | None = None,
    catalog: str | bool | CatalogLocation | None = None,
    catalog_options: Mapping[str, Any] | None = None,
    max_concurrency: int | None = None,
    rounds: bool = False,
) -> pd.DataFrame:
    """Every recorded job as a pandas DataFrame, newest first.

    A ``%%publish --sync-every`` cell is one row whose ``rounds`` column counts its sync
    rounds; ``rounds=True`` lists the rounds as rows of their own too.

    ``catalog`` (``s3://BUCKET/PREFIX/``, a folder, or True for ``$JUPYTER_PUBLISH_CATALOG``)
    lists the team's jobs instead: the records written there since the last listing are
    read (``max_concurrency`` at once) and cached in the ledger; the columns are the same,
    plus ``user``, ``host`` and ``catalog_key``. ``catalog_options``: its S3 options
    (endpoint, region, profile, keys), each under one the location names inline.
    """
    if catalog is None or catalog is False:
        from .tables import jobs_frame

        return jobs_frame((ledger or Ledger()).jobs(limit, rounds=rounds))
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


def lineage(
    job: str | PublishedResult,
    *,
    ledger: Ledger | None = None,
    records: Iterable[LineageRecord] = (),
    catalog: str | bool | CatalogLocation | None = None,
    catalog_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The edges (used -> produced) upstream and downstream of ``job``, as a DataFrame.

    Upstream: what the job used (fetched in the same process, fetched into the folder it
    published, or named with ``uses``), and what that used; downstream: the jobs that
    used its result. ``records`` (PublishedResults read elsewhere) and the jobs of
    ``catalog`` (a location, or True for ``$JUPYTER_PUBLISH_CATALOG``; read up to date
    first; ``catalog_options`` as for :func:`jobs`) join the ledger's jobs, so the chain
    crosses machines.
    """
    from .lineage import combined, lineage_edges

    ledger = ledger or Ledger()
    found = list(records)
    job_id = job if isinstance(job, str) else job.job_id
    if catalog is None or catalog is False:
        return lineage_edges(combined(ledger, found), job_id)
    from .catalog import open_catalog
    from .errors import AmbiguousJobError, NotFoundError

    where = None if catalog is True else catalog
    with open_catalog(where, ledger=ledger, options=catalog_options) as cat:
        cat.sync()
        try:
            return lineage_edges(combined(ledger, [*found, *cat.results()]), job_id)
        except AmbiguousJobError:
            raise
        except NotFoundError:
            cat.check_refused(job_id)  # a tampered record says so, rather than "no job"
            raise


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


def export(
    job: str | PublishedResult | dict[str, Any],
    *,
    ro_crate: str | os.PathLike[str],
    license: str | None = None,
    ledger: Ledger | None = None,
    catalog: str | bool | None = None,
) -> Path:
    """Write an RO-Crate (https://w3id.org/ro/crate/1.1) describing a job (an ID, a
    unique prefix, or a result) to the folder ``ro_crate``: every file with its sha256,
    CID and location, and the provenance as a ``CreateAction``. ``license``: an SPDX ID
    or URL. A job ID the ledger does not hold is read from ``catalog`` (a location, True
    or None for ``$JUPYTER_PUBLISH_CATALOG``), its record verified. Returns the path of
    the ``ro-crate-metadata.json`` written."""
    from .crate import export as _export

    if isinstance(job, str):
        from .fetcher import recorded_result

        ledger = ledger or Ledger()
        where = None if catalog is True or catalog is None else (catalog or "")
        job = recorded_result(job, ledger, catalog=where, catalog_options=None, options={})
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
