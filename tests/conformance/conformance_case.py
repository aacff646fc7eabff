"""What the conformance suite needs to know about one backend: :class:`BackendCase`.

A case is built per test by the backend's entry in ``conftest.DESCRIPTORS``, against the
real server of that backend (started by the fixtures in ``tests/servers_*.py``).
Features a backend lacks are named in :attr:`BackendCase.unsupported` with the reason;
the suite then asserts that using them fails in one clear line, never skips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_publish.results import FileRecord, PublishedResult

Tamper = Callable[[PublishedResult, FileRecord], dict[str, Any]]
"""Make the store answer other bytes (same size) for one published object; return the
extra fetch options under which a fetch meets the tampered answer."""

RESUME = "resume"
"""``jp.resume`` continues an interrupted publish under its job ID."""
FETCH_PLAIN_BY_URI = "fetch_plain_by_uri"
"""``result.uri`` of a plain (one object per file) publish fetches every file back."""
FEATURES = (RESUME, FETCH_PLAIN_BY_URI)


@dataclass(frozen=True)
class BackendCase:
    scheme: str
    to: str
    """A destination to publish to (a template: two publishes never share a key)."""
    result_type: str
    """The Bacalhau ``Type`` its results carry."""
    tamper: Tamper
    options: dict[str, Any] = field(default_factory=dict)
    """Backend options every publish passes (the server's endpoint, API…)."""
    fetch_options: dict[str, Any] = field(default_factory=dict)
    """Options a fetch by URI needs to reach the server (a job ID carries its own)."""
    unsupported: dict[str, str] = field(default_factory=dict)
    """Feature -> why this backend cannot do it."""
    resume_counts_skipped: bool = False
    """A resume reports the objects a previous run completed as verified and skipped."""

    def __post_init__(self) -> None:
        unknown = set(self.unsupported) - set(FEATURES)
        assert not unknown, f"{self.scheme}: unknown features {sorted(unknown)}; known: {FEATURES}"

    def supports(self, feature: str) -> bool:
        assert feature in FEATURES, feature
        return feature not in self.unsupported

    def publish(self, paths: Any, **kwargs: Any) -> PublishedResult:
        import jupyter_publish as jp

        return jp.publish(paths, self.to, **{**self.options, **kwargs})
