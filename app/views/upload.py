"""A file input that refuses files above a size limit in the browser, before anything is sent.

Panel's :class:`~panel.widgets.FileInput` (Panel 1.9) has no size limit: the
browser reads the whole file and sends it, base64-encoded, in one websocket
message, and a message above the server's ``--websocket-max-message-size``
makes the server close the connection, which ends the session ("Server
connection lost"). :class:`SizeLimitedFileInput` checks ``File.size`` first:
a file above :attr:`~SizeLimitedFileInput.max_bytes` is not read; the server
only hears its name and size and sets :attr:`~SizeLimitedFileInput.rejected`,
which the dashboard turns into a message. The server checks the size again
(a client could skip the browser's check).

It is a :class:`panel.custom.JSComponent`: plain JavaScript in the page, loaded
from the server itself (nothing from a CDN).
"""

from __future__ import annotations

import base64
import binascii
import itertools

import param
from panel.custom import JSComponent

__all__ = ["SizeLimitedFileInput"]

_ESM = r"""
export function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "lmm-upload";
  const title = document.createElement("label");
  title.className = "lmm-upload-title";
  const input = document.createElement("input");
  input.type = "file";
  input.className = "lmm-upload-input";
  const help = document.createElement("div");
  help.className = "lmm-upload-help";
  const id = "lmm-upload-" + Math.random().toString(36).slice(2);
  input.id = id;
  title.htmlFor = id;

  function megabytes(n) {
    const mb = n / 1048576;
    return (mb >= 10 || Number.isInteger(mb) ? mb.toFixed(0) : mb.toFixed(1)) + " MB";
  }
  function sync() {
    title.textContent = model.label || "";
    title.style.display = model.label ? "" : "none";
    input.accept = model.accept || "";
    input.disabled = !!model.disabled;
    const limit = "At most " + megabytes(model.max_bytes) + ".";
    help.textContent = model.description ? model.description + ". " + limit : limit;
  }
  sync();
  model.on(["label", "accept", "disabled", "description", "max_bytes"], sync);
  model.on("msg:custom", (msg) => { if (msg && msg.kind === "clear") { input.value = ""; } });

  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    if (!file) { return; }
    if (file.size > model.max_bytes) {
      // never read: only its name and size go to the server
      input.value = "";
      model.send_msg({ kind: "rejected", name: file.name, size: file.size });
      return;
    }
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result || "");
      const comma = url.indexOf(",");
      model.send_msg({ kind: "file", name: file.name, size: file.size,
                       content: comma >= 0 ? url.slice(comma + 1) : "" });
    };
    reader.onerror = () => {
      input.value = "";
      model.send_msg({ kind: "unreadable", name: file.name, size: file.size });
    };
    reader.readAsDataURL(file);
  });

  box.append(title, input, help);
  return box;
}
"""

_CSS = """
:host { display: block; }
.lmm-upload { display: flex; flex-direction: column; gap: 3px; font-size: var(--font-size, 14px); }
.lmm-upload-title { font-weight: 500; }
.lmm-upload-input {
  font: inherit; width: 100%; box-sizing: border-box; padding: 4px;
  border: 1px solid #ced4da; border-radius: 4px; background: #fff;
}
.lmm-upload-input:disabled { background: #f3f4f6; cursor: not-allowed; }
.lmm-upload-help { color: #6b7280; font-size: 12px; line-height: 1.3; }
"""


class SizeLimitedFileInput(JSComponent):
    """Upload one file of at most :attr:`max_bytes`; larger files are refused in the browser.

    Watch :attr:`value` (the file's bytes; :attr:`filename` is set first) and
    :attr:`rejected` (``{"filename", "size", "limit", "reason", "serial"}``)
    for a file that was refused.
    """

    label = param.String(default="", doc="Title shown above the input.")
    description = param.String(default="", doc="One line of help under the input.")
    accept = param.String(default="", doc="File types offered by the browser's picker (as the HTML attribute).")
    max_bytes = param.Integer(default=64 * 2**20, bounds=(1, None), doc="Largest file accepted, in bytes.")
    disabled = param.Boolean(default=False, doc="Whether the input is greyed out.")
    filename = param.String(default=None, allow_None=True, precedence=-1, doc="Name of the last file received.")
    value = param.Bytes(default=None, allow_None=True, precedence=-1, doc="Content of the last file received.")
    rejected = param.Dict(default=None, allow_None=True, precedence=-1, doc="The last file refused, and why.")

    _esm = _ESM
    _stylesheets = [_CSS]
    # the file's content reaches the server in a message, never as a synced property
    _rename = {"filename": None, "value": None, "rejected": None}

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._serial = itertools.count(1)

    def clear(self) -> None:
        """Empty the browser's input (so that the same file can be chosen again)."""
        self._send_msg({"kind": "clear"})

    def _reject(self, name: str, size: int, reason: str) -> None:
        self.rejected = {
            "filename": name, "size": int(size), "limit": int(self.max_bytes), "reason": reason,
            "serial": next(self._serial),
        }

    def _handle_msg(self, msg) -> None:
        if not isinstance(msg, dict):
            return
        name = str(msg.get("name") or "")
        try:
            size = int(msg.get("size") or 0)
        except (TypeError, ValueError):
            size = 0
        kind = msg.get("kind")
        if kind == "rejected":
            self._reject(name, size, "too large")
            return
        if kind == "unreadable":
            self._reject(name, size, "unreadable")
            return
        if kind != "file":
            return
        encoded = msg.get("content") or ""
        if not isinstance(encoded, str) or len(encoded) > 4 * (self.max_bytes + 2) // 3 + 4:
            self._reject(name, max(size, len(encoded) * 3 // 4), "too large")  # the browser skipped its check
            return
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            self._reject(name, size, "unreadable")
            return
        if len(content) > self.max_bytes:
            self._reject(name, len(content), "too large")
            return
        self.filename = name
        if self.value == content:
            self.param.trigger("value")  # the same file again: still a new upload
        else:
            self.value = content
