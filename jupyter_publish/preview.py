"""Inline previews of fetched results: a file or a whole folder, in a notebook or a terminal.

``preview(path)`` returns a :class:`Preview` whose ``_repr_mimebundle_`` makes IPython
render it inline (HTML tables, images, sandboxed HTML, audio/video players) and whose
``str()`` is a plain-text form for terminals and logs.

Results are untrusted and may be huge, so every reader is bounded: tables read
``max_rows`` rows, Parquet reads the footer plus one page per column, text reads
``max_bytes``, images are embedded only below ``max_embed_bytes``. Everything taken
from a file or a file name is HTML-escaped; HTML documents render in a sandboxed
iframe. Heavy imports (pandas, pyarrow, IPython, xarray, h5py) happen inside the
functions that need them, so the plain-text path works without IPython.
"""

from __future__ import annotations

import base64
import bz2
import codecs
import gzip
import html
import io
import json
import lzma
import os
import re
import stat
import zlib
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from .errors import SourceError
from .sizes import counted, file_count, human_size
from .text import one_line

__all__ = ["Preview", "kind_of", "preview"]

_JSON_PARSE_LIMIT = 4 * 2**20  # parse whole JSON documents up to this size
_TABLE_READ_LIMIT = 4 * 2**20  # raw bytes handed to read_csv for a head
_ARCHIVE_SCAN_LIMIT = 10_000  # members listed to compute archive totals
_ARCHIVE_SHOWN = 50
_MAX_LINES = 50
_MAX_COLUMNS = 30
_THUMB_MAX_BYTES = 256 * 1024
_THUMB_BUDGET = 2 * 2**20
_FOLDER_SCAN_LIMIT = 10_000

_COMPRESSED: dict[str, Callable[[Path], io.BufferedIOBase]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}
_IMAGE_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}
_IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}
_SUFFIX_KIND = {
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".svg"), "image"),
    ".csv": "csv",
    **dict.fromkeys((".tsv", ".tab"), "tsv"),
    **dict.fromkeys((".parquet", ".pq"), "parquet"),
    **dict.fromkeys((".json", ".geojson", ".ipynb"), "json"),
    **dict.fromkeys((".jsonl", ".ndjson"), "jsonl"),
    **dict.fromkeys((".md", ".markdown"), "markdown"),
    **dict.fromkeys((".html", ".htm"), "html"),
    **dict.fromkeys((".nc", ".nc4", ".netcdf"), "netcdf"),
    **dict.fromkeys((".h5", ".hdf5", ".he5"), "hdf5"),
    **dict.fromkeys((".wav", ".mp3", ".ogg", ".oga", ".flac", ".m4a", ".aac", ".opus"), "audio"),
    **dict.fromkeys((".mp4", ".webm", ".mov", ".ogv", ".m4v"), "video"),
    **dict.fromkeys(
        (
            ".txt", ".log", ".out", ".err", ".py", ".r", ".jl", ".sh", ".bash", ".yaml", ".yml",
            ".toml", ".ini", ".cfg", ".conf", ".xml", ".tex", ".rst", ".c", ".h", ".cpp", ".hpp",
            ".rs", ".go", ".java", ".js", ".ts", ".sql", ".css", ".env", ".dockerfile", ".diff",
            ".patch", ".fasta", ".fa", ".fastq", ".vcf", ".sam", ".bed", ".gff", ".pdb",
        ),
        "text",
    ),
}  # fmt: skip
_TEXT_KINDS = {"csv", "tsv", "json", "jsonl", "markdown", "text"}


# --------------------------------------------------------------------------- the result


@dataclass
class Preview:
    """A rendered preview: plain text always, plus whatever rich forms fit the content."""

    kind: str
    text: str
    html: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # other mimetypes: image/png, text/markdown…
    path: Path | None = None
    display_object: object = None  # e.g. the IPython Audio/Video behind an audio preview

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> dict[str, Any]:
        """IPython's hook: text/plain plus the rich forms, filtered as IPython asks."""
        bundle: dict[str, Any] = {"text/plain": self.text}
        if self.html is not None:
            bundle["text/html"] = self.html
        bundle.update(self.data)
        if include:
            bundle = {k: v for k, v in bundle.items() if k in include or k == "text/plain"}
        if exclude:
            bundle = {k: v for k, v in bundle.items() if k not in exclude}
        return bundle

    def html_fragment(self) -> str:
        """HTML to embed in a bigger view (a folder): rich if possible, else escaped text."""
        if self.html is not None:
            return self.html
        for mime in ("image/png", "image/jpeg", "image/gif"):
            if mime in self.data:
                return _img_tag(mime, self.data[mime], "max-width:100%")
        return f"<pre>{_e(self.text)}</pre>"

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        where = f" {self.path.name!r}" if self.path else ""
        return f"<Preview {self.kind}{where}>"


@dataclass(frozen=True)
class _Opts:
    max_rows: int
    max_bytes: int
    max_embed_bytes: int
    max_files: int
    max_inline: int


def preview(
    path: str | os.PathLike[str],
    *,
    max_rows: int = 10,
    max_bytes: int = 64 * 1024,
    max_embed_bytes: int = 10 * 2**20,
    max_files: int = 200,
    max_inline: int = 3,
) -> Preview:
    """Preview a file or folder without ever reading a large file whole.

    ``max_rows`` bounds tables, ``max_bytes`` bounds text, ``max_embed_bytes`` bounds
    images/audio/video embedded in the notebook; folders list up to ``max_files`` files
    and show up to ``max_inline`` of them inline.
    """
    p = Path(path)
    if not os.path.lexists(p):
        raise SourceError(f"{p}: no such file or directory, nothing to preview")
    opts = _Opts(max_rows, max_bytes, max_embed_bytes, max_files, max_inline)
    if p.is_dir():
        return _preview_folder(p, opts)
    if not p.is_file():
        return _note_preview(p, "special", "not a regular file; not previewed")
    kind = kind_of(p)
    return _safely(_READERS[kind], p, opts, kind)


def kind_of(path: str | os.PathLike[str]) -> str:
    """Name the kind of preview a path gets, from its name first, then its first bytes.

    One of: folder, image, csv, tsv, parquet, json, jsonl, markdown, text, html, archive,
    netcdf, hdf5, audio, video, binary, special.
    """
    from .extract import archive_format, archive_suffix

    p = Path(path)
    if p.is_dir():
        return "folder"
    if p.exists() and not p.is_file():
        return "special"  # FIFOs, sockets, devices: opening one could block or have effects
    if archive_suffix(p.name) is not None:
        return "archive"
    suffixes = [s.lower() for s in p.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in _COMPRESSED
    named = _SUFFIX_KIND.get(suffixes[-2] if compressed and len(suffixes) > 1 else p.suffix.lower())
    if named is not None and (not compressed or named in _TEXT_KINDS):
        return named  # by its name: a folder of 10,000 files is not opened five times each
    if archive_format(p) is not None:  # no telling name: a tar is sniffed by its magic
        return "archive"
    if compressed:
        return "binary"
    return "text" if _looks_like_text(p) else "binary"


def _safely(reader: Callable[[Path, _Opts], Preview], p: Path, opts: _Opts, kind: str) -> Preview:
    """A malformed file falls back to its text or bytes with a note; previews never raise."""
    try:
        return reader(p, opts)
    except Exception as exc:  # parsers raise many types (pandas, pyarrow, json, zlib…)
        note = f"could not read as {kind}: {one_line(exc, 200)}"
    if kind in _TEXT_KINDS or _looks_like_text(p):
        try:  # e.g. a CSV pandas can't parse is still worth reading as text
            return _with_note(_preview_text(p, opts), note)
        except (OSError, EOFError, ValueError, zlib.error):  # a corrupt .gz: fall through to bytes
            pass
    return _with_note(_preview_binary(p, opts), note)


# --------------------------------------------------------------------------- helpers


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _header_text(p: Path, label: str, notes: list[str]) -> str:
    extra = "".join(f"\n({n})" for n in notes)
    return f"{p.name} — {label}, {human_size(_size(p))}{extra}"


_META = "opacity:0.75"
"""Secondary text (kind, size, counts): the theme's own text colour, fainter. A fixed grey
(#666) was 3.3:1 on JupyterLab Dark's background, below the 4.5:1 text needs."""
_NOTE = "border-left:3px solid #e08a00;padding-left:6px"
"""A note (raw HTML left out, rows cut) in the text colour, marked by an orange bar: no
fixed orange reads as text on both a white and a near-black page."""


def _header_html(p: Path, label: str, notes: list[str]) -> str:
    meta = f"{_e(label)} · {_e(human_size(_size(p)))}"
    note_html = "".join(f'<div style="{_NOTE}">{_e(n)}</div>' for n in notes)
    return (
        f'<div style="font-family:monospace"><b>{_e(p.name)}</b> '
        f'<span style="{_META}">{meta}</span></div>{note_html}'
    )


def _wrap(p: Path, label: str, notes: list[str], body_html: str) -> str:
    return f'<div class="jp-publish-preview">{_header_html(p, label, notes)}{body_html}</div>'


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _with_note(result: Preview, note: str) -> Preview:
    result.text = f"{result.text}\n({note})"
    if result.html is not None:
        result.html += f'<div style="{_NOTE}">{_e(note)}</div>'
    return result


def _note_preview(p: Path, kind: str, note: str) -> Preview:
    return Preview(kind, _header_text(p, kind, [note]), _wrap(p, kind, [note], ""), path=p)


def _open_binary(p: Path) -> io.BufferedIOBase:
    """Open a file, transparently decompressing ``.gz``/``.bz2``/``.xz``."""
    opener = _COMPRESSED.get(p.suffix.lower())
    return opener(p) if opener is not None else p.open("rb")


def _read_head(p: Path, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes; say whether there was more."""
    with _open_binary(p) as fh:
        data = fh.read(limit + 1)
    return data[:limit], len(data) > limit


def _decode_head(data: bytes, truncated: bool) -> str:
    """Decode UTF-8, dropping a multi-byte character cut in half by the byte limit."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(data, final=not truncated)


def _looks_like_text(p: Path) -> bool:
    """Extension-less results (Bacalhau's stdout, stderr, exitCode) are usually text."""
    try:
        with p.open("rb") as fh:
            chunk = fh.read(8192)
    except OSError:
        return False
    if b"\x00" in chunk:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(chunk, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _head_lines(text: str, max_lines: int) -> tuple[str, bool]:
    lines = text.splitlines()
    if len(lines) > max_lines:
        return "\n".join(lines[:max_lines]), True
    return text, False


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """An HTML table; ``rows`` hold cell HTML that the caller has already escaped.

    Names sit left and sizes right, each cell saying so: a notebook's stylesheet
    right-aligns every cell, which put a short path a column away from a long one's start.
    """
    align = [f" style='text-align:{'right' if h == 'size' else 'left'}'" for h in headers]
    head = "".join(f"<th{a}>{_e(h)}</th>" for h, a in zip(headers, align, strict=True))
    body = "".join(
        "<tr>" + "".join(f"<td{a}>{c}</td>" for c, a in zip(row, align, strict=True)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img_tag(mime: str, b64: str, style: str) -> str:
    return f'<img src="data:{_e(mime)};base64,{b64}" style="{_e(style)}"/>'


# --------------------------------------------------------------------------- text-like


def _text_body(p: Path, opts: _Opts) -> tuple[str, list[str]]:
    data, more = _read_head(p, opts.max_bytes)
    text, cut = _head_lines(_decode_head(data, more), _MAX_LINES)
    notes = []
    if more or cut:
        notes.append(f"showing the first {len(text.splitlines())} lines")
    if not data:
        notes.append("empty file")
    return text, notes


def _preview_text(p: Path, opts: _Opts) -> Preview:
    text, notes = _text_body(p, opts)
    label = "text"
    html_ = _wrap(p, label, notes, f'<pre style="max-height:30em;overflow:auto">{_e(text)}</pre>')
    return Preview("text", f"{_header_text(p, label, notes)}\n{text}", html_, path=p)


_RAW_HTML = re.compile(r"<\s*[A-Za-z!/?]")


def _preview_markdown(p: Path, opts: _Opts) -> Preview:
    """Markdown rendered as Markdown, sanitized (:func:`markdown_html`): a README or a
    report reads as written, and raw HTML in it (which could run) is left out."""
    text, notes = _text_body(p, opts)
    plain = f"{_header_text(p, 'markdown', notes)}\n{text}"
    if _RAW_HTML.search(text):
        notes = [*notes, "raw HTML left out"]
    body = (
        f'<div class="jp-publish-markdown" style="max-height:40em;overflow:auto">{markdown_html(text)}</div>'
    )
    return Preview("markdown", plain, _wrap(p, "markdown", notes, body), path=p)


def markdown_html(text: str) -> str:
    """Markdown as HTML with nothing in it that runs: raw HTML blocks and tags are
    dropped (their text between tags stays), everything else is escaped, and links or
    images to ``javascript:``, ``vbscript:``, ``file:`` or non-image ``data:`` URLs are
    neutralised (mistune's renderer). Tables, strikethrough and bare URLs as GitHub does."""
    import mistune
    from mistune.renderers.html import HTMLRenderer

    class Sanitized(HTMLRenderer):
        def block_html(self, html: str) -> str:
            return ""

        def inline_html(self, html: str) -> str:
            return ""

    render = mistune.create_markdown(
        escape=True, renderer=Sanitized(escape=True), plugins=["table", "strikethrough", "url"]
    )
    return str(render(text))


def _preview_html(p: Path, opts: _Opts) -> Preview:
    """Render an HTML document in a sandboxed iframe: no scripts, no same-origin access."""
    data, more = _read_head(p, opts.max_bytes)
    doc = _decode_head(data, more)
    text, cut = _head_lines(doc, _MAX_LINES)
    notes = [f"rendering the first {opts.max_bytes} bytes"] if more else []
    if cut:
        notes.append(f"text form shows the first {_MAX_LINES} lines")
    frame = (
        f'<iframe sandbox="" srcdoc="{_e(doc)}" '
        'style="width:100%;height:360px;border:1px solid #ddd;background:white"></iframe>'
    )
    return Preview(
        "html", f"{_header_text(p, 'HTML', notes)}\n{text}", _wrap(p, "HTML", notes, frame), path=p
    )


# --------------------------------------------------------------------------- tables


def _frame_preview(
    p: Path, kind: str, label: str, df: pd.DataFrame, notes: list[str], extra_text: str = ""
) -> Preview:
    """Render a DataFrame head: escaped HTML table + aligned text."""
    table_html = df.to_html(max_rows=len(df), max_cols=_MAX_COLUMNS, escape=True, border=0)
    table_text = df.to_string(max_rows=len(df), max_cols=_MAX_COLUMNS, max_colwidth=40)
    pre = f"<pre>{_e(extra_text)}</pre>" if extra_text else ""
    text = f"{_header_text(p, label, notes)}\n{extra_text + chr(10) if extra_text else ''}{table_text}"
    return Preview(kind, text, _wrap(p, label, notes, pre + table_html), path=p)


def _preview_csv(p: Path, opts: _Opts, sep: str = ",") -> Preview:
    import pandas as pd

    data, more = _read_head(p, _TABLE_READ_LIMIT)
    if more:  # keep whole lines only; the rest of the file is never read
        data = data[: data.rfind(b"\n") + 1] or data
    df = pd.read_csv(io.BytesIO(data), sep=sep, nrows=opts.max_rows, encoding_errors="replace")
    label = "TSV" if sep == "\t" else "CSV"
    complete = not more and len(df) < opts.max_rows
    shown = counted(len(df), "row") if complete else f"first {counted(len(df), 'row')}"
    return _frame_preview(p, label.lower(), label, df, [f"{shown} × {counted(len(df.columns), 'column')}"])


def _preview_tsv(p: Path, opts: _Opts) -> Preview:
    return _preview_csv(p, opts, sep="\t")


def _preview_parquet(p: Path, opts: _Opts) -> Preview:
    """Footer metadata for the totals, then one page per column for the head rows."""
    import pyarrow.parquet as pq

    # pre_buffer=False + buffer_size: stream pages instead of loading whole column chunks.
    pf = pq.ParquetFile(str(p), pre_buffer=False, buffer_size=64 * 1024)
    try:
        md = pf.metadata
        schema = pf.schema_arrow
        columns = schema.names[:_MAX_COLUMNS]
        batch = None
        if md.num_row_groups and md.num_rows:
            batches = pf.iter_batches(
                batch_size=opts.max_rows, row_groups=[0], columns=columns, use_threads=False
            )
            batch = next(iter(batches), None)
    finally:
        pf.close()
    df = batch.to_pandas() if batch is not None else schema.empty_table().to_pandas()
    df = df.head(opts.max_rows)
    fields = [f"  {f.name}: {f.type}" for f in list(schema)[:50]]
    if len(schema) > 50:
        fields.append(f"  … {len(schema) - 50} more columns")
    summary = (
        f"{counted(md.num_rows, 'row')} × {counted(md.num_columns, 'column')}"
        f" in {counted(md.num_row_groups, 'row group')}"
    )
    notes = [summary, f"showing the first {len(df)} rows"]
    return _frame_preview(p, "parquet", "Parquet", df, notes, "schema:\n" + "\n".join(fields))


def _preview_json(p: Path, opts: _Opts) -> Preview:
    data, more = _read_head(p, _JSON_PARSE_LIMIT)
    if more:
        head, cut_notes = _text_body(p, opts)
        notes = [f"larger than {human_size(_JSON_PARSE_LIMIT)}: showing the start of the text", *cut_notes]
        body = f'<pre style="max-height:30em;overflow:auto">{_e(head)}</pre>'
        return Preview(
            "json", f"{_header_text(p, 'JSON', notes)}\n{head}", _wrap(p, "JSON", notes, body), path=p
        )
    doc = json.loads(data.decode("utf-8-sig", errors="replace"))
    tabular = _json_frame(doc, opts.max_rows)
    if tabular is not None:
        df, total = tabular
        return _frame_preview(p, "json", "JSON", df, [f"{total:,} records, showing {len(df)}"])
    pretty = json.dumps(doc, indent=2, ensure_ascii=False)
    shown, cut = _head_lines(pretty[: opts.max_bytes], _MAX_LINES)
    notes = ["truncated"] if cut or len(pretty) > opts.max_bytes else []
    body = f'<pre style="max-height:30em;overflow:auto">{_e(shown)}</pre>'
    return Preview(
        "json", f"{_header_text(p, 'JSON', notes)}\n{shown}", _wrap(p, "JSON", notes, body), path=p
    )


def _json_frame(doc: Any, max_rows: int) -> tuple[pd.DataFrame, int] | None:
    """A DataFrame head for record lists and dicts of equal-length columns, else None."""
    import pandas as pd

    if isinstance(doc, list) and doc and all(isinstance(r, dict) for r in doc[:max_rows]):
        return pd.DataFrame.from_records(doc[:max_rows]), len(doc)
    if isinstance(doc, dict) and doc and all(isinstance(v, list) for v in doc.values()):
        lengths = {len(v) for v in doc.values()}
        if len(lengths) == 1:
            return pd.DataFrame({str(k): v[:max_rows] for k, v in doc.items()}), lengths.pop()
    return None


def _preview_jsonl(p: Path, opts: _Opts) -> Preview:
    import pandas as pd

    records: list[Any] = []
    more = False
    with _open_binary(p) as fh:
        for raw in iter(lambda: fh.readline(opts.max_bytes + 1), b""):
            if len(raw) > opts.max_bytes:
                raise ValueError(f"a line is longer than {opts.max_bytes} bytes")
            if not raw.strip():
                continue
            if len(records) == opts.max_rows:
                more = True
                break
            records.append(json.loads(raw))
    shown = f"first {len(records)} lines" if more else f"{len(records)} lines"
    if records and all(isinstance(r, dict) for r in records):
        return _frame_preview(p, "jsonl", "JSON lines", pd.DataFrame.from_records(records), [shown])
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    body = f"<pre>{_e(text)}</pre>"
    return Preview(
        "jsonl",
        f"{_header_text(p, 'JSON lines', [shown])}\n{text}",
        _wrap(p, "JSON lines", [shown], body),
        path=p,
    )


# --------------------------------------------------------------------------- images and media


def _preview_image(p: Path, opts: _Opts) -> Preview:
    suffix = p.suffix.lower()
    if suffix == ".svg":
        return _preview_svg(p, opts)
    mime = _IMAGE_MIME[suffix]
    size = _size(p)
    with p.open("rb") as fh:
        head = fh.read(64 * 1024)
    if not head.startswith(_IMAGE_MAGIC[mime]):
        result = _preview_binary(p, opts)
        return _with_note(result, f"named {suffix} but not a {mime.split('/')[1].upper()} image")
    dims = _image_dims(mime, head)
    label = f"{mime.split('/')[1].upper()} image" + (f", {dims[0]}×{dims[1]}" if dims else "")
    if size > opts.max_embed_bytes:
        note = f"too large to preview, {size:,} bytes"
        return Preview("image", _header_text(p, label, [note]), _wrap(p, label, [note], ""), path=p)
    b64 = base64.b64encode(p.read_bytes()).decode("ascii")
    return Preview("image", _header_text(p, label, []), None, {mime: b64}, path=p)


def _preview_svg(p: Path, opts: _Opts) -> Preview:
    """SVG may carry scripts: the rich form is an <img> data URI, where scripts never run."""
    size = _size(p)
    if size > opts.max_embed_bytes:
        note = f"too large to preview, {size:,} bytes"
        return Preview(
            "image", _header_text(p, "SVG image", [note]), _wrap(p, "SVG image", [note], ""), path=p
        )
    raw = p.read_bytes()
    b64 = base64.b64encode(raw).decode("ascii")
    tag = _img_tag("image/svg+xml", b64, "max-width:100%")
    data = {"image/svg+xml": raw.decode("utf-8", errors="replace")}
    return Preview("image", _header_text(p, "SVG image", []), _wrap(p, "SVG image", [], tag), data, path=p)


def _image_dims(mime: str, head: bytes) -> tuple[int, int] | None:
    """Width × height from the header bytes, so the text form says what the image is."""
    if mime == "image/png" and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if mime == "image/gif" and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    if mime == "image/jpeg":
        return _jpeg_dims(head)
    return None


def _jpeg_dims(head: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        length = int.from_bytes(head[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(head[i + 7 : i + 9], "big"), int.from_bytes(head[i + 5 : i + 7], "big")
        i += 2 + length
    return None


def _preview_media(p: Path, opts: _Opts, kind: str) -> Preview:
    """Audio/video players via IPython.display, embedded only when small enough."""
    size = _size(p)
    if size > opts.max_embed_bytes:
        return _note_preview(p, kind, f"too large to embed, {size:,} bytes")
    try:
        from IPython.display import Audio, Video
    except ImportError:
        return _note_preview(p, kind, "install IPython to play it inline")
    obj: Audio | Video
    if kind == "audio":
        obj = Audio(filename=str(p))
        player: str = obj._repr_html_()
    else:
        obj = Video(str(p), embed=True)
        player = obj._repr_html_()
    return Preview(kind, _header_text(p, kind, []), _wrap(p, kind, [], player), path=p, display_object=obj)


def _preview_audio(p: Path, opts: _Opts) -> Preview:
    return _preview_media(p, opts, "audio")


def _preview_video(p: Path, opts: _Opts) -> Preview:
    return _preview_media(p, opts, "video")


# --------------------------------------------------------------------------- archives, science


def _preview_archive(p: Path, opts: _Opts) -> Preview:
    from .extract import _clean_name, _Refused, list_archive

    members = list_archive(p, limit=_ARCHIVE_SCAN_LIMIT)
    complete = len(members) < _ARCHIVE_SCAN_LIMIT
    files = [m for m in members if not m.is_dir]
    total = sum(m.size for m in files)
    count = counted(len(members), "member") if complete else f"at least {len(members):,} members"
    notes = [f"{count}, {counted(len(files), 'file')}, {human_size(total)} uncompressed"]
    rows_html, rows_text = [], []
    for m in members[:_ARCHIVE_SHOWN]:
        try:  # flag what extract_archive would refuse, before anyone tries
            _clean_name(m.name)
            warn = ""
        except _Refused as exc:
            warn = f"unsafe: {exc.reason}"
        size = "" if m.is_dir else human_size(m.size)
        rows_html.append([_e(m.name), _e(size), _e(m.kind), _e(warn)])
        rows_text.append(f"  {m.name}{'/' if m.is_dir else ''}  {size}  {m.kind}  {warn}".rstrip())
    if len(members) > _ARCHIVE_SHOWN:
        notes.append(f"showing the first {_ARCHIVE_SHOWN} members")
    table = _table(["name", "size", "type", ""], rows_html)
    text = _header_text(p, "archive", notes) + "\n" + "\n".join(rows_text)
    return Preview("archive", text, _wrap(p, "archive", notes, table), path=p)


def _preview_netcdf(p: Path, opts: _Opts) -> Preview:
    result = _xarray_summary(p, "netcdf")
    if result is None and _is_hdf5(p):
        result = _h5py_summary(p, "netcdf")
    return result or _note_preview(
        p, "netcdf", "install xarray and netCDF4 (pip install xarray netCDF4) to preview NetCDF"
    )


def _preview_hdf5(p: Path, opts: _Opts) -> Preview:
    result = _h5py_summary(p, "hdf5") or _xarray_summary(p, "hdf5")
    return result or _note_preview(p, "hdf5", "install h5py (pip install h5py) to preview HDF5")


def _is_hdf5(p: Path) -> bool:
    with p.open("rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"


def _xarray_summary(p: Path, kind: str) -> Preview | None:
    """xarray opens lazily: only metadata is read for the summary."""
    try:
        import xarray
    except ImportError:
        return None
    with xarray.open_dataset(p) as ds:
        text = str(ds)
        rich = ds._repr_html_()
    shown, _ = _head_lines(text, 200)
    return Preview(kind, f"{_header_text(p, kind, [])}\n{shown}", _wrap(p, kind, [], rich), path=p)


def _h5py_summary(p: Path, kind: str) -> Preview | None:
    try:
        import h5py
    except ImportError:
        return None
    rows: list[tuple[str, str, str]] = []

    def visit(name: str, obj: Any) -> None:
        if len(rows) < 200:
            if isinstance(obj, h5py.Dataset):
                rows.append((name, str(obj.shape), str(obj.dtype)))
            else:
                rows.append((name + "/", "", "group"))

    with h5py.File(p, "r") as f:
        f.visititems(visit)
    text = "\n".join(f"  {n}  {s}  {d}".rstrip() for n, s, d in rows)
    table = _table(["name", "shape", "dtype"], [[_e(c) for c in row] for row in rows])
    return Preview(kind, f"{_header_text(p, kind, [])}\n{text}", _wrap(p, kind, [], table), path=p)


# --------------------------------------------------------------------------- binary


def _preview_binary(p: Path, opts: _Opts) -> Preview:
    """Unknown bytes: size and a hex dump of the start, so the user can tell what it is."""
    with p.open("rb") as fh:
        head = fh.read(64)
    dump = _hexdump(head)
    text = f"{_header_text(p, 'binary', [])}\n{dump}"
    return Preview("binary", text, _wrap(p, "binary", [], f"<pre>{_e(dump)}</pre>"), path=p)


def _hexdump(data: bytes) -> str:
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {hexes:<47}  |{ascii_}|")
    return "\n".join(lines)


# --------------------------------------------------------------------------- folders


@dataclass
class _Entry:
    rel: str
    depth: int
    is_dir: bool
    size: int
    kind: str
    link: str | None = None


def _preview_folder(p: Path, opts: _Opts) -> Preview:
    entries = list(_tree(p, _FOLDER_SCAN_LIMIT))
    files = [e for e in entries if not e.is_dir]
    total = sum(e.size for e in files)
    complete = len(entries) < _FOLDER_SCAN_LIMIT
    count = file_count(e.rel for e in files) if complete else f"at least {len(files):,} files"
    notes = [f"{count}, {human_size(total)}"]
    listed = entries[: opts.max_files]
    if len(entries) > len(listed):
        notes.append(f"listing the first {len(listed)} entries")
    text = "\n".join([f"{p.name}/  ({'; '.join(notes)})", *_tree_lines(listed)])
    table = _folder_table(p, [e for e in listed if not e.is_dir])
    inline = _inline_previews(p, files, opts)
    header = (
        f'<div style="font-family:monospace"><b>{_e(p.name)}/</b> '
        f'<span style="{_META}">{_e("; ".join(notes))}</span></div>'
    )
    return Preview("folder", text, f'<div class="jp-publish-preview">{header}{table}{inline}</div>', path=p)


def _tree(root: Path, limit: int) -> Iterator[_Entry]:
    """Entries in tree order, depth-first and sorted, without following symlinks."""
    budget = [limit]

    def walk(folder: Path, depth: int) -> Iterator[_Entry]:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if budget[0] <= 0:
                return
            budget[0] -= 1
            rel = Path(entry.path).relative_to(root).as_posix()
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                yield _Entry(rel, depth, False, 0, "symlink", os.readlink(entry.path))
            elif stat.S_ISDIR(st.st_mode):
                yield _Entry(rel, depth, True, 0, "folder")
                yield from walk(Path(entry.path), depth + 1)
            elif stat.S_ISREG(st.st_mode):
                yield _Entry(rel, depth, False, st.st_size, kind_of(Path(entry.path)))
            else:
                yield _Entry(rel, depth, False, 0, "special")

    return walk(root, 0)


def _tree_lines(entries: list[_Entry]) -> list[str]:
    """Draw the listing as an indented tree (``├──``/``└──``), like ``tree``."""
    lines = []
    for i, e in enumerate(entries):
        later = entries[i + 1 :]
        last = not any(x.depth == e.depth for x in _until_shallower(later, e.depth))
        prefix = "".join("    " if not _has_sibling_after(entries, i, d) else "│   " for d in range(e.depth))
        name = e.rel.rsplit("/", 1)[-1]
        if e.is_dir:
            detail = f"{name}/"
        elif e.link is not None:
            detail = f"{name} -> {e.link}"
        else:
            detail = f"{name}  {human_size(e.size)}  {e.kind}"
        lines.append(f"{prefix}{'└── ' if last else '├── '}{detail}")
    return lines


def _until_shallower(entries: list[_Entry], depth: int) -> Iterator[_Entry]:
    for x in entries:
        if x.depth < depth:
            return
        yield x


def _has_sibling_after(entries: list[_Entry], index: int, depth: int) -> bool:
    """Whether the ancestor of ``entries[index]`` at ``depth`` has a later sibling."""
    return any(x.depth == depth for x in _until_shallower(entries[index + 1 :], depth))


def _folder_table(root: Path, files: list[_Entry]) -> str:
    """Path, size, kind, and a thumbnail for small images (within a total budget)."""
    budget = _THUMB_BUDGET
    rows: list[list[str]] = []
    for e in files:
        thumb = ""
        if e.kind == "image" and e.size <= min(_THUMB_MAX_BYTES, budget):
            thumb = _thumbnail(root / e.rel)
            budget -= e.size if thumb else 0
        name = f"{e.rel} -> {e.link}" if e.link is not None else e.rel
        size = "" if e.link is not None else human_size(e.size)
        rows.append([_e(name), _e(size), _e(e.kind), thumb])
    return _table(["path", "size", "kind", ""], rows)


def _thumbnail(path: Path) -> str:
    mime = "image/svg+xml" if path.suffix.lower() == ".svg" else _IMAGE_MIME.get(path.suffix.lower())
    if mime is None:
        return ""
    data = path.read_bytes()
    if mime in _IMAGE_MAGIC and not data.startswith(_IMAGE_MAGIC[mime]):
        return ""
    return _img_tag(mime, base64.b64encode(data).decode("ascii"), "max-height:48px;max-width:96px")


_RICH_KINDS = frozenset(
    {
        "image",
        "csv",
        "tsv",
        "parquet",
        "json",
        "jsonl",
        "markdown",
        "html",
        "netcdf",
        "hdf5",
        "audio",
        "video",
    }
)
_LOG_NAMES = frozenset({"stdout", "stderr"})
_LOG_SUFFIXES = frozenset({".log", ".out", ".err"})
_STATUS_NAMES = frozenset({"exitCode", "exitcode", "exit_code"})
_SHOW_ALL_LIMIT = 30
_SHOW_ALL_EMBED = 2 * 2**20


def _usefulness(e: _Entry) -> int:
    """How early a file is previewed: what the job made (plots, tables, reports) first,
    then its logs, then other text, and its exit code last (one character, said by the
    listing already)."""
    name = e.rel.rsplit("/", 1)[-1]
    if name in _STATUS_NAMES:
        return 4
    if e.kind in _RICH_KINDS:
        return 0
    if name in _LOG_NAMES or Path(name).suffix.lower() in _LOG_SUFFIXES:
        return 1
    return 2 if e.kind == "text" else 3


def _inline_previews(root: Path, files: list[_Entry], opts: _Opts) -> str:
    """Preview the most useful few files open (:func:`_usefulness`: a table or a log before
    ``exitCode``), the rest under a folded "show all" (bounded in count and in embedded bytes).

    Symlinks, binaries and empty files are skipped.
    """
    candidates = [e for e in files if e.link is None and e.size and e.kind not in ("binary", "special")]
    chosen = sorted(candidates, key=_usefulness)  # stable: listing order within a rank

    def shown(e: _Entry, embed: int, folded: str) -> str:
        child = preview(
            root / e.rel,
            max_rows=opts.max_rows,
            max_bytes=min(opts.max_bytes, 16 * 1024),
            max_embed_bytes=embed,
        )
        return f"<details{folded}><summary>{_e(e.rel)}</summary>{child.html_fragment()}</details>"

    parts = [shown(e, opts.max_embed_bytes, " open") for e in chosen[: opts.max_inline]]
    rest = chosen[opts.max_inline :]
    if rest:
        inner = [shown(e, min(opts.max_embed_bytes, _SHOW_ALL_EMBED), "") for e in rest[:_SHOW_ALL_LIMIT]]
        if len(rest) > _SHOW_ALL_LIMIT:
            inner.append(f"<div>… and {len(rest) - _SHOW_ALL_LIMIT} more: <code>preview(path)</code></div>")
        parts.append(
            '<details class="jp-publish-show-all">'
            f"<summary>show {len(rest)} more ({len(chosen)} in all)</summary>"
            f"{''.join(inner)}</details>"
        )
    return "".join(parts)


_READERS: dict[str, Callable[[Path, _Opts], Preview]] = {
    "image": _preview_image,
    "csv": _preview_csv,
    "tsv": _preview_tsv,
    "parquet": _preview_parquet,
    "json": _preview_json,
    "jsonl": _preview_jsonl,
    "markdown": _preview_markdown,
    "text": _preview_text,
    "html": _preview_html,
    "archive": _preview_archive,
    "netcdf": _preview_netcdf,
    "hdf5": _preview_hdf5,
    "audio": _preview_audio,
    "video": _preview_video,
    "binary": _preview_binary,
}
