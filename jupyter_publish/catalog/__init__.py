"""A catalog at a shared location: every job's record where the whole team can read it.

``catalog="s3://bucket/prefix/"`` (or a folder path, or ``$JUPYTER_PUBLISH_CATALOG``)
makes every publish, to any destination, also write its job record there: one small
immutable object per job, named so a listing is in time order and any tampering shows
(:mod:`.records`). ``jobs(catalog=…)`` lists the team's jobs; ``fetch(JOB, catalog=…)``
fetches one published on another machine, verified against that record. The pieces:
:mod:`.location` (where, with which options), :mod:`.stores` (put / list / get),
:mod:`.cache` (the local ledger's copy), :mod:`.catalog` (writing and reading).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from .location import CATALOG_ENV, CatalogLocation, configured, parse
from .records import RecordTooLargeError, TamperedRecordError

if TYPE_CHECKING:
    from ..ledger import Ledger
    from ..results import PublishedResult
    from .catalog import Catalog


def open_catalog(
    location: str | CatalogLocation | None = None,
    *,
    ledger: Ledger | None = None,
    options: Mapping[str, Any] | None = None,
    max_concurrency: int | None = None,
    one_try: bool = False,
) -> Catalog:
    """The catalog at ``location`` (default: ``$JUPYTER_PUBLISH_CATALOG``); OptionError if none.
    ``one_try``: each request a single short attempt (a publish writing its record)."""
    from ..errors import OptionError
    from .catalog import Catalog

    if not isinstance(location, CatalogLocation):
        text = configured(location)
        if text is None:
            raise OptionError(
                f"no catalog given: pass catalog='s3://BUCKET/PREFIX/' or a folder, or set {CATALOG_ENV}"
            )
        location = parse(text, options)
    return Catalog(location, ledger=ledger, max_concurrency=max_concurrency, one_try=one_try)


def write_record(
    ledger: Ledger,
    job_id: str,
    catalog: str | None,
    options: Mapping[str, Any] | None = None,
    *,
    job_scheme: str = "",
    job_options: Mapping[str, Any] | None = None,
) -> str | None:
    """Write ``job_id``'s record to ``catalog`` (a settled location, or None: nothing to do).

    Never raises: a job is published whatever happens to its record. Each request is one
    short try (the pending table is the retry: a dead catalog costs a publish seconds, not
    botocore's retries). Returns the record's name, or None (no catalog, or the record
    waits in the ledger: a one-line warning said so).
    """
    if not catalog:
        return None
    from .catalog import warn

    try:
        location = parse(catalog, options).with_job_options(job_scheme, job_options or {})
        with open_catalog(location, ledger=ledger, one_try=True) as cat:
            return cat.write_job(job_id)
    except Exception as exc:  # a bad location, a bug: still never the publish's failure
        from ..text import one_line

        warn(f"job {job_id}: no catalog record written to {catalog}: {one_line(exc)}")
        return None


def keep_record(
    ledger: Ledger,
    job_id: str,
    catalog: str | None,
    options: Mapping[str, Any] | None = None,
    *,
    reason: str,
    job_scheme: str = "",
    job_options: Mapping[str, Any] | None = None,
) -> None:
    """Keep ``job_id``'s record pending in the ledger for ``catalog`` (no network): an
    interrupted job must end now, and the next catalog operation sends it. Never raises."""
    if not catalog:
        return
    from .catalog import Catalog, warn

    try:
        location = parse(catalog, options).with_job_options(job_scheme, job_options or {})
        Catalog(location, ledger=ledger).keep_pending(job_id, reason)
    except Exception as exc:  # a bad location, a full disk: still never the job's failure
        from ..text import one_line

        warn(f"job {job_id}: its catalog record was not kept for {catalog}: {one_line(exc)}")


def catalog_result(
    job_id: str,
    catalog: str | None,
    *,
    ledger: Ledger | None = None,
    options: Mapping[str, Any] | None = None,
) -> PublishedResult:
    """The published result of a job the local ledger does not hold, from the catalog."""
    with open_catalog(catalog, ledger=ledger, options=options) as cat:
        return cat.result(job_id)


def cached_results(
    catalog: str | CatalogLocation | None, ledger: Ledger, sizes: Collection[int] | None = None
) -> list[PublishedResult]:
    """The published results the ledger has already read from ``catalog`` (verified again,
    no network): what dedup and lineage consult besides the local jobs. None: no catalog.
    ``sizes``: only results that may list a file or archive of one of those sizes (the
    rest are neither parsed nor verified: what dedup asks for on every publish)."""
    if catalog is None or (isinstance(catalog, str) and not configured(catalog)):
        return []
    with open_catalog(catalog, ledger=ledger) as cat:
        return cat.results(sizes)


__all__ = [
    "CATALOG_ENV",
    "CatalogLocation",
    "RecordTooLargeError",
    "TamperedRecordError",
    "cached_results",
    "catalog_result",
    "configured",
    "keep_record",
    "open_catalog",
    "parse",
    "write_record",
]
