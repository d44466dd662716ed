"""The engine's messages for one session's job: collected through :mod:`lmmcore.errors`' channel.

The engine sends its non-fatal messages (individuals dropped, columns left
out, a semicolon-delimited file, ...) with :func:`lmmcore.errors.report`. A
dashboard job wraps its engine calls in :func:`engine_messages`, which enters
:func:`lmmcore.errors.reporting` with a receiver of its own: the receiver is
held in a :class:`contextvars.ContextVar`, so jobs of different sessions
running at the same time in worker threads each collect only their own
messages, and nothing in the standard library is replaced.

Transition
----------
Engine modules not yet converted to :func:`~lmmcore.errors.report` still issue
``warnings.warn(..., LMMWarning)``. Until they are, :func:`engine_messages`
also records those with :class:`warnings.catch_warnings`. That swaps
process-wide state and records the warnings of every thread, so it is
entered by one job at a time (a lock) and every engine call of the app goes
through :func:`engine_messages`: no session can receive another's message,
but the engine calls of different sessions run one after another (a
session switching method waits for another session's scan). Once every
engine module reports through the channel, set :data:`LEGACY_WARNINGS` to
False (or delete ``_legacy_warnings``): the calls then run side by side.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from typing import Iterator

from lmmcore import LMMWarning
from lmmcore.errors import reporting

__all__ = ["Messages", "collect_messages", "engine_messages"]


class Messages(list):
    """The messages one job received, each once, in order, with temporary names replaced.

    Parameters
    ----------
    rename : dict, optional
        ``{text: replacement}`` applied to every message (longest first), e.g.
        a temporary file's path -> the user's file name.
    """

    def __init__(self, rename: dict[str, str] | None = None) -> None:
        super().__init__()
        self._rename = sorted((rename or {}).items(), key=lambda kv: len(kv[0]), reverse=True)

    def rename(self, text: str) -> str:
        """``text`` with the temporary names replaced."""
        for old, new in self._rename:
            text = text.replace(old, new)
        return text

    def receive(self, message: str) -> None:
        """The receiver passed to :func:`lmmcore.errors.reporting`."""
        text = self.rename(str(message))
        if text not in self:
            self.append(text)


@contextmanager
def collect_messages(rename: dict[str, str] | None = None) -> Iterator[Messages]:
    """Collect what the engine reports in this thread (or task) inside the block."""
    sink = Messages(rename)
    with reporting(sink.receive):
        yield sink


#: Also record ``LMMWarning`` s of engine modules that do not yet call ``report`` (see the module notes).
LEGACY_WARNINGS = True

_LEGACY_LOCK = threading.RLock()


@contextmanager
def _legacy_warnings(sink: Messages) -> Iterator[None]:
    """TEMPORARY: ``LMMWarning`` s of engine modules not yet converted to ``report`` (see the module notes)."""
    if not LEGACY_WARNINGS:
        yield
        return
    with _LEGACY_LOCK:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LMMWarning)
            try:
                yield
            finally:
                others = [w for w in caught if not issubclass(w.category, LMMWarning)]
                for w in caught:
                    if issubclass(w.category, LMMWarning):
                        sink.receive(str(w.message))
        for w in others:  # not ours to keep: back to where they would have gone
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@contextmanager
def engine_messages(rename: dict[str, str] | None = None) -> Iterator[Messages]:
    """Run engine calls inside the block and collect their messages (see the module notes)."""
    with collect_messages(rename) as sink, _legacy_warnings(sink):
        yield sink
