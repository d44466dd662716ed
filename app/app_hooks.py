"""Server hooks of the directory app (``panel serve app`` runs them; see docs/SERVING.md).

Uploads (:class:`app.views.upload.SizeLimitedFileInput`) arrive as one
websocket message holding the file base64-encoded (a third larger than the
file). The Bokeh server closes the connection on any message above its
``--websocket-max-message-size``, 20 MiB by default, so a 16 MB kinship file
would end the session. When the server runs with that default,
:func:`on_server_loaded` raises the limit to :data:`UPLOAD_MESSAGE_LIMIT`
(256 MiB: files up to about 75 MB, beyond which tornado's 100 MB read buffer
is the bound); a limit given explicitly on the command line is left as it is.
The dashboard refuses larger files in the browser, before sending them
(``$LMM_EXPLORER_MAX_UPLOAD_MB``, 64 MB by default).

:func:`serve_stylesheets_locally` keeps every stylesheet on this server.
Panel 1.9 gives a component whose model is not attached to a document (the
contents of a tab not on screen, updated when the phenotype changes) the
stylesheet URLs of its CDN (``cdn.holoviz.org``), which a lab server without
internet access cannot reach; the hook makes that fallback the server's own
copy (``static/extensions/panel/``, relative to the page).

:func:`on_session_destroyed` hands the memory of closed sessions back to the
operating system once they have been discarded (``--check-unused-sessions``,
``--unused-session-lifetime``), so that a server's resident size follows its
open sessions instead of staying at its busiest.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

from bokeh.server.tornado import DEFAULT_WEBSOCKET_MAX_MESSAGE_SIZE_BYTES
from bokeh.server.views.ws import WSHandler
from tornado.ioloop import IOLoop

__all__ = [
    "UPLOAD_MESSAGE_LIMIT",
    "RELEASE_DELAY_S",
    "allow_large_uploads",
    "serve_stylesheets_locally",
    "release_memory",
    "on_server_loaded",
    "on_session_destroyed",
]

#: Largest websocket message accepted when the server was started with the default limit.
UPLOAD_MESSAGE_LIMIT = 256 * 1024 * 1024

#: Seconds after the last session was discarded before its memory is released (sessions
#: discarded together give one release).
RELEASE_DELAY_S = 3.0

_log = logging.getLogger(__name__)
_release_handle = None


def _malloc_trim():
    """glibc's ``malloc_trim``, or None on other C libraries (macOS, musl)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def allow_large_uploads(limit: int = UPLOAD_MESSAGE_LIMIT) -> None:
    """Accept websocket messages up to ``limit`` bytes unless the server was given its own limit.

    Tornado reads ``max_message_size`` when each websocket connection opens,
    so this applies to every session that connects afterwards.
    """
    if getattr(WSHandler, "_lmm_explorer_limit", None) == limit:
        return
    configured = WSHandler.max_message_size  # tornado's property: the application setting

    def max_message_size(self) -> int:
        value = configured.fget(self)
        return limit if value == DEFAULT_WEBSOCKET_MAX_MESSAGE_SIZE_BYTES else value

    WSHandler.max_message_size = property(max_message_size)
    WSHandler._lmm_explorer_limit = limit
    _log.info("LMM Explorer: websocket messages up to %d MiB accepted (file uploads)", limit // 2**20)


def release_memory() -> None:
    """Collect garbage, then give the C library's free memory back to the operating system.

    glibc keeps memory freed by closed sessions (their data sets, fits and
    plots) in its heaps, so the server's resident size would stay at its
    busiest; ``malloc_trim`` returns what is free. Elsewhere only the
    collection runs.
    """
    global _release_handle
    _release_handle = None
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)


def serve_stylesheets_locally() -> None:
    """Make Panel's fallback stylesheet location the server's static files, not its CDN.

    Patches the module constant that :mod:`panel.reactive` uses when a
    model has no document; URLs are then rewritten from the CDN's prefix to
    Panel's local one (``panel.io.resources.LOCAL_DIST``), which the server
    serves. Only for ``panel serve``: in a notebook the CDN stays.
    """
    import panel.reactive
    from panel.io.resources import LOCAL_DIST

    panel.reactive.CDN_DIST = LOCAL_DIST


def on_server_loaded(server_context) -> None:
    """Bokeh hook: configure the server for large uploads and local stylesheets."""
    allow_large_uploads()
    serve_stylesheets_locally()


def on_session_destroyed(session_context) -> None:
    """Bokeh hook: once sessions stop being discarded, release their memory (see :func:`release_memory`).

    Debounced: many sessions closing together give one release, after the last.
    """
    global _release_handle
    loop = IOLoop.current()
    if _release_handle is not None:
        loop.remove_timeout(_release_handle)
    _release_handle = loop.call_later(RELEASE_DELAY_S, release_memory)
