"""Server hooks of the directory app (``panel serve app`` runs them; see docs/SERVING.md).

Uploads (:class:`app.views.upload.SizeLimitedFileInput`) arrive as one
websocket message holding the file base64-encoded (a third larger than the
file). The Bokeh server closes the connection on any message above its
``--websocket-max-message-size`` (20 MiB by default), so the server must be
started with a limit above 4/3 of the upload cap:
``--websocket-max-message-size 268435456`` (:data:`UPLOAD_MESSAGE_LIMIT`,
256 MiB) as ``make serve`` and docs/SERVING.md do. That flag is Bokeh's
supported setting; this module no longer changes the limit itself.

:func:`serve_stylesheets_locally` keeps every stylesheet on this server.
Panel 1.9 gives a component whose model is not attached to a document (the
contents of a tab not on screen, updated when the phenotype changes) the
stylesheet URLs of its CDN (``cdn.holoviz.org``), which a lab server without
internet access cannot reach; the hook makes that fallback the server's own
copy (``static/extensions/panel/``, relative to the page).

:func:`on_session_destroyed` hands the memory of closed sessions back to the
operating system once they have been discarded (``--check-unused-sessions``,
``--unused-session-lifetime``), so that a server's resident size follows its
open sessions instead of staying at its busiest. The collection runs on the
server's event loop and holds the interpreter: with ten sessions in memory it
took 1-6 s on a loaded 2-core machine, during which no page got an answer. It
therefore waits until no session has a job running (:func:`app.base.jobs_running`:
an upload, fit or scan and the redraws after it), so that a tab closed, or an
unused session discarded, while others work does not stall them. After each
release the server logs how many session states are still in memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

from tornado.ioloop import IOLoop

from app.base import jobs_running, states_in_memory

__all__ = [
    "UPLOAD_MESSAGE_LIMIT",
    "RELEASE_DELAY_S",
    "serve_stylesheets_locally",
    "RELEASED_MESSAGE",
    "release_memory",
    "on_server_loaded",
    "on_session_destroyed",
]

#: The ``--websocket-max-message-size`` the server needs for uploads up to the 64 MB default cap (and
#: the 72 MB ceiling) of ``$LMM_EXPLORER_MAX_UPLOAD_MB``: what ``make serve`` passes.
UPLOAD_MESSAGE_LIMIT = 256 * 1024 * 1024

#: Seconds after the last session was discarded before its memory is released (sessions
#: discarded together give one release); also how long the release waits again while jobs run.
RELEASE_DELAY_S = 3.0

#: The message logged after each release (the concurrency test reads it).
RELEASED_MESSAGE = "memory released; dashboard session states in memory: %d"

_release_handle = None
_log = logging.getLogger("lmm_explorer.app_hooks")


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
    _log.info(RELEASED_MESSAGE, states_in_memory())


def _release_when_idle() -> None:
    """:func:`release_memory` now if no session has a job running, else :data:`RELEASE_DELAY_S` later."""
    global _release_handle
    if jobs_running():
        _release_handle = IOLoop.current().call_later(RELEASE_DELAY_S, _release_when_idle)
        return
    release_memory()


def serve_stylesheets_locally() -> None:
    """Make Panel's fallback stylesheet location the server's static files, not its CDN.

    Sets the module constant that :mod:`panel.reactive` uses when a model has
    no document; URLs are then rewritten from the CDN's prefix to Panel's
    local one (``panel.io.resources.LOCAL_DIST``), which the server serves.
    Only for ``panel serve``: in a notebook the CDN stays.

    This is the one patch of a dependency left in the app, because Panel 1.9
    has no supported setting for it: a document's ``dist_url`` template
    variable (set by ``app/main.py``) covers models attached to a document,
    and ``PANEL_CDN_ROOT`` (``pn.config.cdn_root``) is read once at import and
    can only name another CDN, not the server's own ``static/extensions/panel/``.
    Upstream: holoviz/panel#7073 (stylesheets fetched from the CDN on an
    offline server, open). Remove this when Panel resolves the fallback to the
    server's static files.
    """
    import panel.reactive
    from panel.io.resources import LOCAL_DIST

    panel.reactive.CDN_DIST = LOCAL_DIST


def on_server_loaded(server_context) -> None:
    """Bokeh hook: keep the stylesheets on this server (see :func:`serve_stylesheets_locally`).

    Also lets this module's notes (the memory releases) into the server's log:
    ``panel serve`` sets the level of Bokeh's logger only, and the root
    logger's WARNING would hide them.
    """
    serve_stylesheets_locally()
    _log.setLevel(logging.INFO)


def on_session_destroyed(session_context) -> None:
    """Bokeh hook: once sessions stop being discarded and no job runs, release their memory.

    Debounced: many sessions closing together give one release, after the
    last; while any session has a job running the release waits (see the
    module notes).
    """
    global _release_handle
    loop = IOLoop.current()
    if _release_handle is not None:
        loop.remove_timeout(_release_handle)
    _release_handle = loop.call_later(RELEASE_DELAY_S, _release_when_idle)
