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

The work must not import modules the calling thread may be importing at
the same time (two threads importing one package can see it half
initialised): the caller imports what the work needs before starting it.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from .errors import report, reporting

__all__ = ["Prefetch"]


class Prefetch:
    """``fn(*args, **kwargs)`` in a daemon thread; :meth:`result` waits for it (module docstring)."""

    def __init__(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        self._messages: list[str] = []
        self._value: Any = None
        self._error: BaseException | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), name="lmmcore-prefetch",
                                        daemon=True)
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
