"""BLAS on one thread while some work runs, shared by every thread that asks.

Small matrix products (the HMM's steps over a group of individuals, the
decomposition of a kinship of a few hundred individuals) are slower with
several BLAS threads than with one. threadpoolctl sets the thread count,
a setting of the whole process, and restores it afterwards.

When two threads limit and restore on their own (two dashboard sessions, the
HMM in one and a decomposition in the other), their steps can interleave:
A limits to 1, B limits and saves A's 1, A restores the original count, B
restores 1, and BLAS stays on one thread for good. :func:`one_blas_thread`
is one context for all of them: the first thread to enter sets the limit,
the last to leave restores the count the first one found, and nobody waits
for another's work.

The limit is set through a fresh ``threadpool_limits`` each time the first
thread enters, so that it reaches every BLAS loaded by then (SciPy loads its
own OpenBLAS beside NumPy's when ``scipy.linalg`` is first imported).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["one_blas_thread"]

_LOCK = threading.Lock()
_STATE: dict = {"users": 0, "limiter": None}


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS and LAPACK run on one thread inside this context, whichever threads enter it (module docstring)."""
    with _LOCK:
        if _STATE["users"] == 0:
            from threadpoolctl import threadpool_limits

            _STATE["limiter"] = threadpool_limits(limits=1, user_api="blas")
        _STATE["users"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["users"] -= 1
            if _STATE["users"] == 0:
                _STATE["limiter"].restore_original_limits()
                _STATE["limiter"] = None
