"""What every session state has: a notice for the user, a busy flag, and one body per sync/async job.

:class:`SessionState` is the base of :class:`~app.state.ExplorerState` and
:class:`~app.scan_state.ScanState`. Work that may take long is written once,
as a coroutine that calls :meth:`SessionState._run` for each slow step; the
synchronous entry point runs it with :func:`run_now` (every step inline, no
event loop), the asynchronous one awaits it (every step in a worker thread,
so the server keeps answering).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Coroutine, Iterator, Sequence, TypeVar

import param

__all__ = ["LEVELS", "SessionState", "run_now", "jobs_running", "states_in_memory"]

#: Notice levels, least to most urgent.
LEVELS = ("info", "warning", "error")

T = TypeVar("T")

# Process-wide, for the server's hooks (app/app_hooks.py): how many jobs of any session are running, and
# which session states are still in memory. Neither holds a session's data.
_jobs_lock = threading.Lock()
_jobs_running = 0
_states: "weakref.WeakSet[SessionState]" = weakref.WeakSet()


def jobs_running() -> int:
    """How many :meth:`SessionState.working` blocks of all the sessions in this process are open now."""
    return _jobs_running


def states_in_memory() -> int:
    """How many session states (of open or not yet collected sessions) this process holds."""
    return len(_states)


def _count_job(step: int) -> None:
    global _jobs_running
    with _jobs_lock:
        _jobs_running += step


def run_now(job: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine whose steps all run inline (``threaded=False``) to its end, without an event loop.

    Raises
    ------
    RuntimeError
        If the coroutine waits on something (it was not meant to run inline).
    """
    try:
        job.send(None)
    except StopIteration as done:
        return done.value
    job.close()
    raise RuntimeError("a job meant to run inline waited for something")


class SessionState(param.Parameterized):
    """Notices and the busy flag of one dashboard session's state.

    :attr:`notice` holds the latest message for the user
    (``{"level", "text", "serial", "clear"}``; ``clear``: earlier messages
    no longer apply, e.g. new data were loaded). The views turn each new
    notice into one notification.
    """

    notice = param.Dict(default=None, allow_None=True, doc="Latest message: level, text, serial, clear.")
    busy = param.Boolean(default=False, doc="Work is running (views show a loading indicator).")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._busy_count = 0
        self._serial = itertools.count(1)
        _states.add(self)

    # ------------------------------------------------------------------ notices

    def notify(self, level: str, text: str, *, clear: bool = False) -> None:
        """Send one message to the user (``level``: info, warning or error)."""
        if level not in LEVELS:
            raise ValueError(f"unknown notice level {level!r}; expected one of {LEVELS}")
        self.notice = {"level": level, "text": text, "serial": next(self._serial), "clear": bool(clear)}

    _notify = notify

    def notify_all(self, level: str, texts: Sequence[str], *, clear: bool = False, about: str = "") -> None:
        """Send several messages as one notice (one notification, not a stack of them).

        Nothing is sent when ``texts`` is empty, unless ``clear`` asks to
        clear the earlier ones (then an empty notice at level info clears them).
        """
        texts = list(dict.fromkeys(t for t in texts if t))
        if not texts:
            if clear:
                self.notice = {"level": "info", "text": "", "serial": next(self._serial), "clear": True}
            return
        if len(texts) == 1:
            text = texts[0]
        else:
            head = f"{len(texts)} notes{' ' + about if about else ''}: "
            text = head + " ".join(f"({i}) {t.rstrip('.')}." for i, t in enumerate(texts, start=1))
        self.notify(level, text, clear=clear)

    # ------------------------------------------------------------------ busy

    @contextmanager
    def working(self) -> Iterator[None]:
        """:attr:`busy` is True inside the block (nested and overlapping blocks count).

        The block also counts in :func:`jobs_running` (the server waits for
        no job to run before it collects garbage).
        """
        self._busy_count += 1
        _count_job(1)
        self.busy = True
        try:
            yield
        finally:
            self._busy_count -= 1
            _count_job(-1)
            self.busy = self._busy_count > 0

    @staticmethod
    async def _run(threaded: bool, fn: Callable[..., T], *args: Any) -> T:
        """One slow step of a job: in a worker thread when ``threaded``, else here."""
        if threaded:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)
