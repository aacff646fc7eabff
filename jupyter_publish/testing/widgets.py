"""Reading back what a widget shows: test support for the panels in :mod:`jupyter_publish.widgets`."""

from __future__ import annotations

from typing import Any

__all__ = ["output_text"]


def output_text(output: Any) -> str:
    """Everything an ``ipywidgets.Output`` shows, as one string (what a redaction check reads)."""
    parts = []
    for item in output.outputs:
        data = item.get("data") or {}
        parts += [str(v) for v in data.values()]
        parts.append(str(item.get("text", "")))
    return "\n".join(parts)
