"""The engine's messages for one session's job: collected through :mod:`lmmcore.errors`' channel.

The engine sends its non-fatal messages (individuals dropped, columns left
out, a semicolon-delimited file, ...) with :func:`lmmcore.errors.report`. A
dashboard job wraps its engine calls in :func:`engine_messages`, which enters
:func:`lmmcore.errors.reporting` with a receiver of its own: the receiver is
held in a :class:`contextvars.ContextVar`, so jobs of different sessions
running at the same time in worker threads each collect only their own
messages, and nothing in the standard library is replaced.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from lmmcore.errors import reporting

__all__ = ["Messages", "collect_messages", "engine_messages"]


class Messages(list):
    """The messages one job received, each once, in order, with temporary names replaced.

    Parameters
    ----------
    rename : dict, optional
        ``{text: replacement}`` applied to every message (longest first): a
        temporary file's path -> the user's file name. Only PLINK uploads need
        it (their reader wants files on disk); the CSV readers take the bytes
        and the user's file name.
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


@contextmanager
def engine_messages(rename: dict[str, str] | None = None) -> Iterator[Messages]:
    """Run engine calls inside the block and collect their messages (see the module notes)."""
    with collect_messages(rename) as sink:
        yield sink
