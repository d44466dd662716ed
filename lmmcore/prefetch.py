"""Work started in a background thread while the command line goes on importing and reading.

A command spends its first half second importing pandas and SciPy on one
core. Work that needs neither (reading a kinship with pyarrow, its
eigendecomposition: both release the GIL) can run meanwhile on the other
core: :class:`Prefetch` starts it, and :meth:`Prefetch.result` hands over its
result where the command used to compute it, so nothing changes for the
user but the time:

* its messages (:func:`lmmcore.errors.report`) are held back and reported
  by :meth:`~Prefetch.result` in the calling thread, in their order;
* its exception is raised by :meth:`~Prefetch.result`, where the command
  would have raised it.

The work runs in a copy of the caller's :mod:`contextvars` context (numpy's
error state included). It must not import modules the calling thread may be
importing at the same time (two threads importing one package can see it
half initialised): the caller imports what the work needs before starting it.

:func:`run_ahead` chains such jobs along an iterator: each item is computed
in the background while the caller works on the one before (the scan's next
group of traits while this group's tasks run).
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any, Callable, Iterator

from .errors import report, reporting

__all__ = ["Prefetch", "run_ahead"]

_DONE = object()


class Prefetch:
    """``fn(*args, **kwargs)`` in a daemon thread; :meth:`result` waits for it (module docstring)."""

    def __init__(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        self._messages: list[str] = []
        self._value: Any = None
        self._error: BaseException | None = None
        self._taken = False
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run, fn, args, kwargs),
                                        name="lmmcore-prefetch", daemon=True)
        self._thread.start()

    def _run(self, fn, args, kwargs) -> None:
        try:
            with reporting(self._messages.append):
                self._value = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self._error = exc

    def result(self) -> Any:
        """Wait for the work; report its messages (once) and return its value or raise its exception."""
        self._thread.join()
        if not self._taken:
            self._taken = True
            for message in self._messages:
                report(message)
        if self._error is not None:
            raise self._error
        return self._value

    def wait(self) -> None:
        """Wait for the work and drop its result, messages and exception (the caller stopped wanting it)."""
        self._thread.join()
        self._taken = True


def run_ahead(items: Iterator) -> Iterator:
    """The items of ``items``, each computed by a :class:`Prefetch` while the caller works on the one before.

    One item ahead at most. The messages sent while an item is computed are
    reported in the calling thread when that item is handed over, so they
    arrive where and in the order they would without the helper thread; an
    exception is raised at the item that met it. When the caller stops
    early, the item being computed is finished and dropped before the
    generator closes, so no work outlives it.
    """
    pending = Prefetch(next, items, _DONE)
    try:
        while True:
            item = pending.result()
            if item is _DONE:
                return
            pending = Prefetch(next, items, _DONE)
            yield item
    finally:
        pending.wait()
