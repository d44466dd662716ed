"""BLAS on one thread while some work runs: the process's one threadpoolctl controller.

Small matrix products (the HMM's per-individual steps, the decomposition of
a kinship of a few hundred individuals, many scan tasks in parallel threads)
are slower with several BLAS threads than with one. threadpoolctl sets the
thread count, which is a setting of the whole process:

* :func:`controller` makes threadpoolctl's controller once per process.
  Making one scans every loaded shared library, which costs 3 to 50 ms
  (more while another thread imports); limits set through the cached
  controller cost about 0.1 ms.
* :func:`one_blas_thread` is a context shared by every thread that wants
  one BLAS thread (two dashboard sessions, the HMM and a decomposition).
  The first to enter sets the limit and the last to leave restores the
  thread count the first one found. Separate limits and restores would
  interleave (A limits, B limits and saves A's 1, A restores, B restores 1)
  and leave BLAS on one thread for good; nobody waits for another's work.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["controller", "one_blas_thread"]

_LOCK = threading.Lock()
_STATE: dict = {"controller": None, "users": 0, "limiter": None}


def controller():
    """threadpoolctl's ``ThreadpoolController`` for this process, made on first use (module docstring)."""
    with _LOCK:
        if _STATE["controller"] is None:
            from threadpoolctl import ThreadpoolController

            _STATE["controller"] = ThreadpoolController()
        return _STATE["controller"]


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS and LAPACK run on one thread inside this context, whichever threads enter it (module docstring)."""
    ctl = controller()
    with _LOCK:
        if _STATE["users"] == 0:
            _STATE["limiter"] = ctl.limit(limits=1, user_api="blas")
        _STATE["users"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["users"] -= 1
            if _STATE["users"] == 0:
                _STATE["limiter"].restore_original_limits()
                _STATE["limiter"] = None
