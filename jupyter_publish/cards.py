"""HTML cards for notebooks: a published result, a fetched result.

Plain HTML strings (no IPython import), escaped everywhere, readable in light and dark
themes because they only use borders and the inherited text colour.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends import type_label
from .ids import short_job_id
from .sizes import file_count, human_size

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
        f"<tr><td style='{_VALUE}'><code>{escape(f.path)}</code></td>"
        f"<td style='text-align:right'>{human_size(f.size)}</td>"
        f"<td style='{_VALUE}'><code title='{escape(f.sha256)}'>{escape((f.sha256 or '')[:16])}…</code></td>"
        f"<td style='{_VALUE}'><code>{escape(f.cid)}</code></td></tr>"
        for f in files[:_MAX_ROWS]
    )
    heads = "".join(f"<th style='{_VALUE}'>{h}</th>" for h in ("path", "size", "sha256", "CID"))
    more = (
        f"<tr><td colspan=4>… and {len(files) - _MAX_ROWS} more (see <code>cids()</code>)</td></tr>"
        if len(files) > _MAX_ROWS
        else ""
    )
    facts = [
        ("Job ID", f"<code>{escape(result.job_id)}</code>{_short_form(result.job_id)}"),
        ("Destination", f"<code>{escape(result.uri)}</code>"),
        ("Size", f"{file_count(f.path for f in files)}, {human_size(result.total_size)}"),
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
    return (
        f"<div class='jupyter-publish-result' style='{_STYLE}'>"
        f"<div style='font-weight:600;margin-bottom:4px'>&#x2714; Published "
        f"<code>{escape(result.name)}</code> to {escape(type_label(result.type))}</div>"
        f"{facts_table(facts)}"
        f"<details><summary>{file_count(f.path for f in files)} (sha256, CID)</summary>"
        "<table style='margin:0;table-layout:auto'>"
        f"<tr>{heads}</tr>{rows}{more}</table></details>"
        f"{provenance_section(result.provenance, result.inputs)}"
        "</div>"
    )


_LABEL = "text-align:left;padding:2px 12px 2px 0;vertical-align:top;white-space:nowrap"
_VALUE = "text-align:left;padding:2px 0"


def facts_table(facts: Iterable[tuple[str, str]]) -> str:
    """Labels and their values side by side. Each cell says where it sits: a notebook's
    stylesheet right-aligns table cells and centres tables, which puts a short value a
    screen away from its label when another row is long."""
    rows = "".join(f"<tr><th style='{_LABEL}'>{k}</th><td style='{_VALUE}'>{v}</td></tr>" for k, v in facts)
    return f"<table style='margin:0;table-layout:auto'>{rows}</table>"


def _short_form(job_id: str) -> str:
    """`` (short: j-X7K2M9QZ)``: what a person types back (``%fetch j-X7K2M9QZ``)."""
    short = short_job_id(job_id)
    return "" if short == job_id else f" (short: <code>{escape(short)}</code>)"


_MAX_SOURCE_SHOWN = 20_000


def failure_card(message: str, traceback_text: str, kept: str | None) -> str:
    """A failed ``%%publish`` cell: what happened, where its outputs are kept (a link the
    notebook opens: a path relative to the working folder) and its traceback, folded."""
    where = ""
    if kept:
        # A link is a URL: a folder named ``runs #2`` or ``100%`` is quoted, not cut at its ``#``.
        href = urllib.parse.quote(kept.rstrip("/"))
        where = (
            f"<div>Outputs kept in <a href='{escape(href)}'><code>{escape(kept)}</code></a> "
            f"(the traceback also in <a href='{escape(href)}/stderr'><code>stderr</code></a>)</div>"
        )
    return (
        f"<div class='jupyter-publish-failure' style='{_STYLE}'>"
        f"<div style='font-weight:600'>&#x2718; {escape(message)}</div>{where}"
        f"<details><summary>Traceback</summary><pre style='white-space:pre-wrap'>"
        f"{escape(traceback_text[-_MAX_SOURCE_SHOWN:])}</pre></details></div>"
    )


def provenance_section(facts: dict[str, Any], inputs: list[dict[str, Any]]) -> str:
    """A folded section: what produced the job (:mod:`.provenance`) and what it used."""
    if not facts and not inputs:
        return ""
    rows: list[tuple[str, str]] = []
    git = facts.get("git") if isinstance(facts.get("git"), dict) else None
    summary = ["Provenance"]
    if git:
        commit = str(git.get("commit") or "")
        dirty = " (dirty)" if git.get("dirty") else ""
        where = " ".join(escape(git[k]) for k in ("branch", "remote") if git.get(k))
        rows.append(("Git", f"<code title='{escape(commit)}'>{escape(commit[:12])}</code>{dirty} {where}"))
        summary.append(f"git {escape(commit[:8])}{dirty}")
    for key, label in (("notebook", "Notebook"), ("magic_line", "Magic line")):
        if facts.get(key):
            rows.append((label, f"<code>{escape(facts[key])}</code>"))
    values = facts.get("magic_values")
    if isinstance(values, dict) and values:
        shown = ", ".join(f"<code>{escape(k)}</code> = <code>{escape(v)}</code>" for k, v in values.items())
        rows.append(("Values", shown))
    if facts.get("cell_sha256"):
        rows.append(("Cell sha256", f"<code>{escape(facts['cell_sha256'])}</code>"))
    runtime = ", ".join(
        escape(v)
        for v in (f"Python {facts['python']}" if facts.get("python") else None, facts.get("kernel"))
        if v
    )
    if runtime:
        rows.append(("Runtime", runtime))
    if facts.get("user") or facts.get("host"):
        rows.append(("Where", escape(f"{facts.get('user', '?')}@{facts.get('host', '?')}")))
    if facts.get("started_at"):
        took = facts.get("duration_s")
        rows.append(
            (
                "When",
                f"{escape(facts['started_at'])} &rarr; {escape(facts.get('finished_at', '…'))}"
                + (f" ({escape(took)} s)" if took is not None else ""),
            )
        )
        if took is not None:
            summary.append(f"{escape(took)} s")
    if facts.get("status"):
        rows.append(("Status", escape(facts["status"])))
    packages = facts.get("packages")
    if isinstance(packages, dict) and packages:
        listed = ", ".join(f"{escape(name)}&nbsp;{escape(version)}" for name, version in packages.items())
        rows.append((f"Packages ({len(packages)})", f"<span style='font-size:12px'>{listed}</span>"))
        summary.append(f"{len(packages)} packages")
    if inputs:
        used = "<br>".join(
            f"{escape(i.get('via', ''))}: <code>{escape(i.get('ref', ''))}</code>"
            + (
                f" (job <code>{escape(i['job_id'])}</code>)"
                if i.get("job_id") and i["job_id"] != i.get("ref")
                else ""
            )
            for i in inputs
        )
        rows.append((f"Used ({len(inputs)})", used))
        summary.append(f"{len(inputs)} inputs")
    source = facts.get("cell_source")
    cell = (
        f"<details><summary>cell source</summary><pre style='white-space:pre-wrap'>"
        f"{escape(str(source)[:_MAX_SOURCE_SHOWN])}</pre></details>"
        if source
        else ""
    )
    return (
        f"<details class='jupyter-publish-provenance'><summary>{', '.join(summary)}</summary>"
        f"{facts_table(rows)}{cell}</details>"
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:  # a single file fetched to its own name
        return Path(path).name


def fetch_card(result: FetchResult) -> dict[str, Any]:
    """A mimebundle: a verification line, then the inline preview of what was fetched."""
    status = "&#x2714; verified" if result.verified else "&#x26A0;&#xFE0F; not verified"
    head = (
        f"<div class='jupyter-publish-fetch' style='{_STYLE}'>{status}: "
        f"<code>{escape(result.ref)}</code> &rarr; <code>{escape(result.dest)}</code> "
        f"({file_count(_relative(f.path, result.dest) for f in result.files)})</div>"
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
