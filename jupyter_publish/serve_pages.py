"""The pages ``jupyter-publish serve`` shows a person: the jobs, and one job's files.

Plain HTML (no script runs: the server sends a Content-Security-Policy forbidding it),
every value escaped, every link built from quoted path segments, so a job or file named
``<script>`` or ``a"b`` is shown as text. The data comes from the ledger; a job the local
store holds but the ledger does not (another home's ledger, a deleted one) is listed from
the store's own index.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from .sizes import human_size

__all__ = ["job_page", "jobs_page"]

_STYLE = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em}"
    "table{border-collapse:collapse}th,td{padding:3px 10px;text-align:left;vertical-align:top}"
    "tr:nth-child(even){background:rgba(127,127,127,.1)}td.n{text-align:right}"
    "code{font-size:12px;word-break:break-all}td.k{white-space:nowrap}"
)


_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters and bidirectional overrides: a file named RLO + ``gnp.exe`` reads as
``exe.png``; shown as their escapes (``\\u202e``) instead."""


def _e(value: Any) -> str:
    if value is None:
        return ""
    text = _HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value))
    return html.escape(text, quote=True)


def _href(*segments: str) -> str:
    """An escaped absolute link from unquoted path segments (each may hold ``/``)."""
    parts = [urllib.parse.quote(s, safe="/") for s in segments]
    return html.escape("/" + "/".join(p.strip("/") for p in parts), quote=True)


def _time(value: Any) -> str:
    """``2026-12-07T12:08:19.040Z`` as ``2026-12-07 12:08:19 UTC``: one line, to the second."""
    text = str(value or "")
    if len(text) >= 19 and text[10] == "T" and text.endswith("Z"):
        return f"{text[:10]} {text[11:19]} UTC"
    return text


def _size(value: Any) -> str:
    return human_size(int(value)) if isinstance(value, int) else ""


def _page(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    ).encode()


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def jobs_page(token: str, jobs: Iterable[Mapping[str, Any]], stored_only: Iterable[str]) -> bytes:
    """Every job, newest first: time, name, files, size, content CID, status; each
    links to its page. ``stored_only``: job IDs in the store the ledger lacks."""
    rows = []
    for job in jobs:
        link = f"<a href='{_href(token, job['job_id'])}/'>{_e(job['job_id'])}</a>"
        rows.append(
            [
                f"<td class='k'>{_e(_time(job.get('created_at')))}</td>",
                f"<td>{_e(job.get('name'))}</td>",
                f"<td class='n'>{_e(job.get('n_files'))}</td>",
                f"<td class='n'>{_size(job.get('total_size'))}</td>",
                f"<td><code>{_e(job.get('root_cid'))}</code></td>",
                f"<td>{_e(job.get('status'))}</td>",
                f"<td>{_e(job.get('destination'))}</td>",
                f"<td class='k'>{link}</td>",
            ]
        )
    for job_id in sorted(stored_only, reverse=True):
        link = f"<a href='{_href(token, job_id)}/'>{_e(job_id)}</a>"
        rows.append(["<td></td>", "<td></td>", "<td></td>", "<td></td>", "<td></td>"])
        rows[-1] += ["<td>in the store only</td>", "<td>local</td>", f"<td class='k'>{link}</td>"]
    headers = ("time", "name", "files", "size", "content CID", "status", "destination", "job")
    table = _table(headers, rows) if rows else "<p>No jobs yet.</p>"
    return _page("jupyter-publish: jobs", f"<h1>Jobs</h1>{table}")


def job_page(
    token: str, job: Mapping[str, Any] | None, job_id: str, files: Iterable[Mapping[str, Any]], served: bool
) -> bytes:
    """One job's files: path, size, sha256, CID and a link (served from the local store
    when ``served``, else the recorded URL when it is an http(s) one)."""
    rows = []
    for f in files:
        path = str(f["path"])
        if served:
            link = f"<a href='{_href(token, job_id, path)}'>open</a>"
        elif str(f.get("url") or "").lower().startswith(("http://", "https://")):
            link = f"<a href='{_e(f['url'])}' rel='noreferrer'>open</a>"
        else:
            link = f"<code>{_e(f.get('location'))}</code>"
        rows.append(
            [
                f"<td>{_e(path)}</td>",
                f"<td class='n'>{_size(f.get('size'))}</td>",
                f"<td><code>{_e(f.get('sha256'))}</code></td>",
                f"<td><code>{_e(f.get('cid'))}</code></td>",
                f"<td>{link}</td>",
            ]
        )
    facts = ""
    if job is not None:
        items = [
            ("name", job.get("name")),
            ("status", job.get("status")),
            ("time", _time(job.get("created_at"))),
            ("destination", job.get("destination")),
            ("URI", job.get("uri")),
            ("content CID", job.get("root_cid")),
            ("error", job.get("error")),
        ]
        facts = "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items if v) + "</dl>"
    back = f"<p><a href='{_href(token)}/'>all jobs</a></p>"
    table = _table(("path", "size", "sha256", "CID", "link"), rows) if rows else "<p>No files.</p>"
    return _page(f"jupyter-publish: {job_id}", f"{back}<h1>Job {_e(job_id)}</h1>{facts}{table}")
