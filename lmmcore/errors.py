"""Errors and warnings that the engine raises for its users, and the channel its messages travel on.

Every message is a full sentence that says what is wrong, where (file, column,
row or ID) and what to do. The command line turns :class:`LMMInputError` into
exit status 2 and the dashboard into a notification.

Messages that do not stop the work (individuals dropped, columns left out,
a boundary optimum) go through :func:`report`. By default it issues an
:class:`LMMWarning`; a caller that wants them itself passes ``report=`` to a
public entry point (a callable taking the message), which enters
:func:`reporting` for the length of the call. The receiver is held in a
:class:`contextvars.ContextVar`, so each thread (each dashboard session's
job, each test) has its own: no global state is swapped and no standard
library function is replaced.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

__all__ = ["LMMInputError", "LMMWarning", "Report", "report", "reporting"]

#: A receiver of the engine's messages: called with one full sentence.
Report = Callable[[str], None]


class LMMInputError(ValueError):
    """Input that the engine cannot use: bad files, shapes or values."""


class LMMWarning(UserWarning):
    """Something the user should know about but that does not stop the fit."""


_receiver: ContextVar[Report | None] = ContextVar("lmmcore_report", default=None)


def report(message: str, *, stacklevel: int = 2) -> None:
    """Send one message to the current receiver (default: an :class:`LMMWarning`).

    Parameters
    ----------
    message : str
        A full sentence for the user.
    stacklevel : int
        For the default receiver: which caller the warning points at
        (2 = the function that called :func:`report`).
    """
    receiver = _receiver.get()
    if receiver is None:
        warnings.warn(message, LMMWarning, stacklevel=stacklevel + 1)
    else:
        receiver(message)


@contextmanager
def reporting(receiver: Report | None) -> Iterator[None]:
    """Send the engine's messages to ``receiver`` inside the block (``None``: keep the current one).

    Used by the public entry points that take ``report=``; nests, and is
    local to the thread (and asyncio task) that enters it.
    """
    if receiver is None:
        yield
        return
    token = _receiver.set(receiver)
    try:
        yield
    finally:
        _receiver.reset(token)
