"""The engine's warnings, collected per thread: what one session's job said goes to that session.

The dashboard turns :class:`~lmmcore.errors.LMMWarning` messages (individuals
dropped, columns left out, ...) into notifications. Jobs of different
sessions run at the same time in worker threads, and
``warnings.catch_warnings`` is not thread-safe: it swaps module-wide state,
so with two jobs at once one session's messages could land in the other
session's list (showing it another user's IDs or file names) or be lost, and
the swapped state could outlive both jobs.

:func:`collect_warnings` instead installs, once, a dispatcher as the warnings
module's output step: an ``LMMWarning`` raised while a thread collects goes
to that thread's list; everything else goes where it went before. It also
keeps an ``"always"`` filter for ``LMMWarning`` at the front of the filters,
so that a message is not suppressed for having been shown once before (by
another session).

Limits: other code that enters ``warnings.catch_warnings`` at the same moment
(a plotting library, a test runner) swaps the output step for the length of
its block, and a message raised then goes to that code instead: it is lost,
never shown to another session. :func:`collect_warnings` puts the dispatcher
back whenever it finds it replaced.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from typing import Iterator

from lmmcore import LMMWarning

__all__ = ["collect_warnings"]

_local = threading.local()
_install_lock = threading.Lock()


def _sink() -> list | None:
    return getattr(_local, "sink", None)


def _dispatch_message(msg: warnings.WarningMessage) -> None:
    """``warnings._showwarnmsg_impl`` while installed: the collecting thread's list, else the previous output."""
    sink = _sink()
    if sink is not None and issubclass(msg.category, LMMWarning):
        sink.append(msg)
    else:
        _dispatch_message.previous(msg)


def _dispatch_show(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` while installed over a replaced one (e.g. by IPython)."""
    sink = _sink()
    if sink is not None and issubclass(category, LMMWarning):
        sink.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
    else:
        _dispatch_show.previous(message, category, filename, lineno, file, line)


def _always_first() -> bool:
    first = warnings.filters[0] if warnings.filters else None
    return bool(first) and first[0] == "always" and first[2] is LMMWarning and first[1] is None


def _install() -> None:
    """Put the dispatchers and the filter in place (again, if something such as a test runner reset them)."""
    with _install_lock:
        if warnings._showwarnmsg_impl is not _dispatch_message:
            _dispatch_message.previous = warnings._showwarnmsg_impl
            warnings._showwarnmsg_impl = _dispatch_message
        show = warnings.showwarning
        if show is not warnings._showwarning_orig and show is not _dispatch_show:
            _dispatch_show.previous = show
            warnings.showwarning = _dispatch_show
        if not _always_first():
            warnings.filterwarnings("always", category=LMMWarning)


@contextmanager
def collect_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collect the ``LMMWarning`` s that this thread raises inside the block.

    Yields
    ------
    list of warnings.WarningMessage
        Filled as the warnings are raised; other threads' warnings never
        appear in it. Nested blocks collect into the innermost list.
    """
    _install()
    outer = _sink()
    caught: list[warnings.WarningMessage] = []
    _local.sink = caught
    try:
        yield caught
    finally:
        _local.sink = outer
