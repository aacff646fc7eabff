"""A streamed ``multipart/form-data`` body: what HTTP form uploads and Kubo's ``add`` send.

Parts are iterables of bytes that are read as the body is sent, so a file of any size
passes through in chunks (never read whole), still through the caller's hashing reader.
Callers choose the file name's encoding (Kubo percent-encodes, a form endpoint takes
the name as is); the encoder only refuses a name that would break its header line.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field

__all__ = ["Form", "Part"]


@dataclass(frozen=True)
class Part:
    """One ``file`` field: its (already encoded) file name, content type and bytes."""

    filename: str
    content_type: str
    chunks: Iterable[bytes] = ()


@dataclass(frozen=True)
class Form:
    """One body's boundary, and the bytes around each part."""

    boundary: str = field(default_factory=lambda: "jupyter-publish-" + secrets.token_hex(16))

    @property
    def content_type(self) -> str:
        """The request's ``Content-Type`` header."""
        return f"multipart/form-data; boundary={self.boundary}"

    def head(self, part: Part) -> bytes:
        """The boundary and headers before a part's bytes."""
        if any(c in part.filename for c in '\r\n"'):
            raise ValueError(f"{part.filename!r} cannot be a multipart file name unencoded")
        return (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{part.filename}"\r\n'
            f"Content-Type: {part.content_type}\r\n\r\n"
        ).encode()

    def end(self) -> bytes:
        """The closing boundary, after the last part."""
        return f"--{self.boundary}--\r\n".encode()

    def overhead(self, parts: Iterable[Part]) -> int:
        """Bytes the body adds to the parts' own: a Content-Length is this plus their sizes."""
        return sum(len(self.head(p)) + 2 for p in parts) + len(self.end())

    def body(self, parts: Iterable[Part]) -> Generator[bytes, None, None]:
        """The whole body, one chunk at a time; each part is read only as it is sent."""
        for part in parts:
            yield self.head(part)
            try:
                for chunk in part.chunks:
                    if chunk:
                        yield chunk
            finally:  # a body closed mid-part stops its source now (an archive being made)
                close = getattr(part.chunks, "close", None)
                if close is not None:
                    close()
            yield b"\r\n"
        yield self.end()
