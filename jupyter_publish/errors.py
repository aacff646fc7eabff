"""Exceptions a user can act on.

Every error raised on purpose by jupyter-publish derives from :class:`PublishError`
and carries a one-line message saying what is wrong and what to do. The magics turn
these into IPython ``UsageError`` (one line, no traceback) and the command line into
a message on stderr and a non-zero exit code. Messages never contain secrets.
"""

from __future__ import annotations


class PublishError(Exception):
    """Base class: a failure the user can act on, explained in one line."""


class DestinationError(PublishError, ValueError):
    """A destination or reference string is malformed or uses an unknown placeholder."""


class OptionError(DestinationError):
    """An option or setting has a value it cannot take (``cid_version=7``, ``--jobs 0``,
    ``$JUPYTER_PUBLISH_RETRIES=-3``, an endpoint that is not a URL).

    A :class:`DestinationError` only so that ``except DestinationError`` written before
    this class existed still catches it; the name says what is wrong."""


class RefError(DestinationError):
    """What was given to fetch (a URI, a job ID, a result, a Bacalhau spec) cannot be read
    as one. A :class:`DestinationError` for the same reason as :class:`OptionError`."""


class CidError(RefError):
    """A text is not a valid CID (a CID is a reference to content)."""


class SourceError(PublishError, OSError):
    """A path to publish is missing, unreadable, or empty."""


class CredentialsError(PublishError):
    """The store refused our credentials (wrong secret, unknown key, expired token)."""


class NotFoundError(PublishError, LookupError):
    """A bucket, object, CID, URL or job ID does not exist."""


class AmbiguousJobError(NotFoundError):
    """A job ID prefix names more than one job: no single job is found, and looking for
    it elsewhere (the catalog) would only pick one at random."""


class BackendError(PublishError):
    """The store answered with an error we cannot fix for the user (5xx, 413, timeouts)."""


class IntegrityError(PublishError):
    """Content did not match its recorded checksum or CID; nothing was kept."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        self.what, self.expected, self.actual = what, expected, actual
        super().__init__(f"{what}: expected {expected}, got {actual}; the download was discarded")


class UnsafeArchiveError(PublishError):
    """An archive member would escape the destination, is a device, or is too large."""


class RangeIgnored(BackendError):
    """A store answered a byte-range request with the whole object (HTTP 200, not 206):
    the reader falls back to one stream instead of fetching the object once per range."""


class TransientError(BackendError):
    """A connection dropped, was reset or timed out mid-transfer. An idempotent transfer
    (a read, a PUT of the same bytes, an IPFS add) may be retried, resuming from the
    bytes already verified; the message still names what failed if retries run out."""


class StalledError(TransientError):
    """No byte moved for the idle limit (``$JUPYTER_PUBLISH_IDLE_TIMEOUT``): a hung server
    or a dead link ends the transfer in one line instead of waiting forever."""
