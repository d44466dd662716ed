"""Server hooks of the directory app (run by ``panel serve app`` once, when the server starts).

Uploads through :class:`panel.widgets.FileInput` arrive as one websocket
message holding the file base64-encoded (a third larger than the file). The
Bokeh server closes the connection on any message above its
``--websocket-max-message-size``, 20 MiB by default, so a 16 MB kinship file
would end the session. When the server runs with that default, this hook
raises the limit to :data:`UPLOAD_MESSAGE_LIMIT` (256 MiB: files up to about
75 MB, beyond which tornado's 100 MB read buffer is the bound); a limit given
explicitly on the command line is left as it is.
"""

from __future__ import annotations

import logging

from bokeh.server.tornado import DEFAULT_WEBSOCKET_MAX_MESSAGE_SIZE_BYTES
from bokeh.server.views.ws import WSHandler

__all__ = ["UPLOAD_MESSAGE_LIMIT", "allow_large_uploads", "on_server_loaded"]

#: Largest websocket message accepted when the server was started with the default limit.
UPLOAD_MESSAGE_LIMIT = 256 * 1024 * 1024

_log = logging.getLogger(__name__)


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


def on_server_loaded(server_context) -> None:
    """Bokeh hook: configure the server for large uploads."""
    allow_large_uploads()
