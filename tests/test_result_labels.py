"""What a result says about itself is what was recorded: no "(pinned)" without a pin."""

from __future__ import annotations

import pytest

from jupyter_publish.results import PublishedResult


def _ipfs_result(params: dict[str, object]) -> PublishedResult:
    return PublishedResult(
        job_id="j-1",
        execution_id="e-1",
        node_id="n-1",
        type="ipfs",
        destination="ipfs://",
        uri="ipfs://QmRoot",
        params={"CID": "QmRoot", **params},
        files=[],
        created_at="2026-01-01T00:00:00Z",
    )


@pytest.mark.parametrize(
    ("params", "label"),
    [({"Pinned": True}, " (pinned)"), ({"Pinned": False}, " (not pinned)"), ({}, "")],
)
def test_the_pin_label_says_what_was_recorded(params: dict[str, object], label: str) -> None:
    result = _ipfs_result(params)
    assert f"IPFS CID QmRoot{label}\n" in str(result) + "\n"
    html = result._repr_html_()
    assert f"<code>QmRoot</code>{label}</td>" in html
    if not params.get("Pinned"):
        assert "(pinned)" not in str(result) and "(pinned)" not in html
    # The label survives the ledger's JSON round trip.
    assert PublishedResult.from_dict(result.to_dict()).pin_note == label
