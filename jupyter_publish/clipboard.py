"""A button that copies a text to the browser's clipboard (an anywidget).

The kernel cannot reach the user's clipboard: only the page can, and browsers allow it
in answer to a click. So the text to copy lives in the widget (``text``, synced as the
selection changes) and the click is handled in the page, which writes
``navigator.clipboard`` at once (the old ``execCommand("copy")`` where that API is
missing, as on a plain-HTTP notebook server that is not on localhost) and tells the
kernel what happened: ``on_copied(text)`` or ``on_failed(reason)``.

anywidget ships the front-end loader as a prebuilt JupyterLab extension, so this needs
no build step of ours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

_ESM = """
function legacyCopy(text) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
  area.remove();
  return ok;
}

function render({ model, el }) {
  const button = document.createElement("button");
  button.className = "jupyter-widgets jupyter-button widget-button jupyter-publish-copy";
  const icon = document.createElement("i");
  icon.className = "fa fa-copy";
  const label = document.createElement("span");
  button.append(icon, label);
  const sync = () => {
    const text = model.get("text");
    label.textContent = " " + model.get("description");
    button.disabled = !text;
    button.title = text ? "Copy " + text + " to the clipboard" : model.get("empty_hint");
  };
  sync();
  model.on("change:text", sync);
  model.on("change:description", sync);
  button.addEventListener("click", async () => {
    const text = model.get("text");
    if (!text) return;
    try {
      if (!navigator.clipboard) throw new Error("this page has no clipboard API");
      await navigator.clipboard.writeText(text);
      model.send({ event: "copied", text });
    } catch (err) {
      if (legacyCopy(text)) model.send({ event: "copied", text });
      else model.send({ event: "failed", error: String(err && err.message || err) });
    }
  });
  el.appendChild(button);
  return () => {
    model.off("change:text", sync);
    model.off("change:description", sync);
  };
}

export default { render };
"""


class CopyButton(anywidget.AnyWidget):
    """``CopyButton(description="Copy CID")``; set ``text``; a click copies it in the page."""

    _esm = _ESM
    text = traitlets.Unicode("").tag(sync=True)
    """What a click copies (empty: the button is disabled)."""
    description = traitlets.Unicode("Copy").tag(sync=True)
    empty_hint = traitlets.Unicode("nothing to copy").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._copied: list[Callable[[str], Any]] = []
        self._failed: list[Callable[[str], Any]] = []
        self.on_msg(self._answer)

    def on_copied(self, callback: Callable[[str], Any]) -> None:
        """``callback(text)`` after the page put ``text`` on the clipboard."""
        self._copied.append(callback)

    def on_failed(self, callback: Callable[[str], Any]) -> None:
        """``callback(reason)`` when the page could not (permission refused, no clipboard)."""
        self._failed.append(callback)

    def _answer(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if content.get("event") == "copied":
            for callback in self._copied:
                callback(str(content.get("text", "")))
        elif content.get("event") == "failed":
            for callback in self._failed:
                callback(str(content.get("error", "")))
