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
also collects those per thread with the dispatcher that ``warning_capture.py``
used (``_legacy_warnings``): it replaces ``warnings._showwarnmsg_impl`` and
puts an ``"always"`` filter for ``LMMWarning`` first, so it is a patch of the
standard library, kept only for that transition. (Recording them with
:class:`warnings.catch_warnings` instead would need one lock around every
engine call of every session, because it records the warnings of all
threads: the served app then stopped answering HTTP while other sessions
fitted.) Once every engine module reports through the channel, set
:data:`LEGACY_WARNINGS` to False and delete ``_legacy_warnings`` and
``_install``.
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


#: Also collect ``LMMWarning`` s of engine modules that do not yet call ``report`` (see the module notes).
LEGACY_WARNINGS = True

_local = threading.local()
_install_lock = threading.Lock()


def _dispatch_message(msg: warnings.WarningMessage) -> None:
    """TEMPORARY ``warnings._showwarnmsg_impl``: this thread's sink for an ``LMMWarning``, else the previous output."""
    sink = getattr(_local, "sink", None)
    if sink is not None and issubclass(msg.category, LMMWarning):
        sink.receive(str(msg.message))
    else:
        _dispatch_message.previous(msg)


def _install() -> None:
    """TEMPORARY: put the dispatcher and an ``"always"`` filter in place (again, if something reset them)."""
    with _install_lock:
        if warnings._showwarnmsg_impl is not _dispatch_message:
            _dispatch_message.previous = warnings._showwarnmsg_impl
            warnings._showwarnmsg_impl = _dispatch_message
        first = warnings.filters[0] if warnings.filters else None
        if not (first and first[0] == "always" and first[2] is LMMWarning and first[1] is None):
            warnings.filterwarnings("always", category=LMMWarning)


@contextmanager
def _legacy_warnings(sink: Messages) -> Iterator[None]:
    """TEMPORARY: ``LMMWarning`` s raised by this thread inside the block go to ``sink`` (see the module notes)."""
    if not LEGACY_WARNINGS:
        yield
        return
    _install()
    outer = getattr(_local, "sink", None)
    _local.sink = sink
    try:
        yield
    finally:
        _local.sink = outer


@contextmanager
def engine_messages(rename: dict[str, str] | None = None) -> Iterator[Messages]:
    """Run engine calls inside the block and collect their messages (see the module notes)."""
    with collect_messages(rename) as sink, _legacy_warnings(sink):
        yield sink
