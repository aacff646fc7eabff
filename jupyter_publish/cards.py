"""HTML cards for notebooks: a published result, a fetched result.

Plain HTML strings (no IPython import), escaped everywhere, readable in light and dark
themes because they only use borders and the inherited text colour.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .backends import type_label
from .sizes import human_size

if TYPE_CHECKING:
    from .results import FetchResult, PublishedResult


def escape(value: object) -> str:
    """Text made safe inside HTML, attribute values included."""
    return html.escape(str(value), quote=True)


_STYLE = (
    "border:1px solid #8884;border-radius:6px;padding:8px 12px;margin:4px 0;"
    "font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;max-width:960px"
)
_MAX_ROWS = 20


def _link(url: str | None, text: str | None = None) -> str:
    if not url:
        return ""
    if url.startswith(("http://", "https://")):
        return f'<a href="{escape(url)}" target="_blank" rel="noopener">{escape(text or url)}</a>'
    return f"<code>{escape(text or url)}</code>"


def result_card(result: PublishedResult) -> str:
    """The card shown after a publish: IDs, where, link, and the checksummed files."""
    files = [f for f in result.files if f.kind == "file"]
    rows = "".join(
        f"<tr><td><code>{escape(f.path)}</code></td><td style='text-align:right'>{human_size(f.size)}</td>"
        f"<td><code title='{escape(f.sha256)}'>{escape((f.sha256 or '')[:16])}…</code></td>"
        f"<td><code>{escape(f.cid)}</code></td></tr>"
        for f in files[:_MAX_ROWS]
    )
    more = (
        f"<tr><td colspan=4>… and {len(files) - _MAX_ROWS} more (see <code>cids()</code>)</td></tr>"
        if len(files) > _MAX_ROWS
        else ""
    )
    facts = [
        ("Job ID", f"<code>{escape(result.job_id)}</code>"),
        ("Destination", f"<code>{escape(result.uri)}</code>"),
        ("Size", f"{len(files)} files, {human_size(result.total_size)}"),
    ]
    ipfs_cid = result.params.get("CID")
    if ipfs_cid:
        facts.append(("IPFS CID", f"<code>{escape(ipfs_cid)}</code>{escape(result.pin_note)}"))
    if result.root_cid and result.root_cid != ipfs_cid:
        facts.append(("Content CID", f"<code>{escape(result.root_cid)}</code>"))
    if result.archive:
        facts.append(("Archive sha256", f"<code>{escape(result.archive.sha256)}</code>"))
    if result.copied_bytes:
        facts.append(("Transfer", escape(result.transfer_note)))
    for key in ("VersionID", "ChecksumSHA256"):
        if result.params.get(key):
            facts.append((key, f"<code>{escape(result.params[key])}</code>"))
    if result.url:
        facts.append(("Link", _link(result.url)))
    table = "".join(
        f"<tr><th style='text-align:left;padding-right:12px'>{k}</th><td>{v}</td></tr>" for k, v in facts
    )
    return (
        f"<div class='jupyter-publish-result' style='{_STYLE}'>"
        f"<div style='font-weight:600;margin-bottom:4px'>&#x2714; Published "
        f"<code>{escape(result.name)}</code> to {escape(type_label(result.type))}</div>"
        f"<table>{table}</table>"
        f"<details><summary>{len(files)} files (sha256, CID)</summary><table>"
        f"<tr><th>path</th><th>size</th><th>sha256</th><th>CID</th></tr>{rows}{more}</table></details>"
        "</div>"
    )


def fetch_card(result: FetchResult) -> dict[str, Any]:
    """A mimebundle: a verification line, then the inline preview of what was fetched."""
    status = "&#x2714; verified" if result.verified else "&#x26A0;&#xFE0F; not verified"
    head = (
        f"<div class='jupyter-publish-fetch' style='{_STYLE}'>{status}: "
        f"<code>{escape(result.ref)}</code> &rarr; <code>{escape(result.dest)}</code> "
        f"({len(result.files)} files)</div>"
    )
    bundle: dict[str, Any] = {"text/plain": str(result), "text/html": head}
    try:
        from .preview import preview

        shown = preview(result.dest)
        inner = shown._repr_mimebundle_()
        if "text/html" in inner:
            bundle["text/html"] = head + inner["text/html"]
        bundle["text/plain"] = f"{result}\n{inner.get('text/plain', '')}"
    except Exception as exc:  # a preview must never hide a successful fetch
        bundle["text/html"] = head + f"<div>(no preview: {escape(exc)})</div>"
    return bundle
