"""The one-BLAS-thread context shared by threads (lmmcore.blas_control), read back through threadpoolctl."""

import threading

import numpy as np  # noqa: F401 - loads the BLAS that threadpoolctl controls
import pytest
from threadpoolctl import threadpool_info

from lmmcore import blas_control
from lmmcore.blas_control import one_blas_thread


def _blas_threads() -> int:
    """BLAS threads as a fresh threadpoolctl scan reports them (the most of any BLAS loaded)."""
    counts = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    if not counts:
        pytest.skip("threadpoolctl finds no BLAS in this process")
    return max(counts)


@pytest.fixture
def many():
    """The process's BLAS thread count, which must be above 1 for a limit to 1 to show.

    """
    count = _blas_threads()
    if count < 2:
        pytest.skip("BLAS runs on one thread here: a limit to one thread cannot be seen")
    return count


def test_one_thread_inside_and_the_count_restored_after(many):
    with one_blas_thread():
        assert _blas_threads() == 1
        with one_blas_thread():  # nested in the same thread
            assert _blas_threads() == 1
        assert _blas_threads() == 1  # the outer user is still inside
    assert _blas_threads() == many


class _Recorder:
    """A stand-in for ``threadpoolctl.threadpool_limits`` that records every limit and restore."""

    def __init__(self):
        self.events = []

    def __call__(self, *, limits, user_api):
        self.events.append(("limit", limits, user_api))
        recorder = self

        class Limiter:
            def restore_original_limits(self):
                recorder.events.append(("restore",))

        return Limiter()


def test_interleaved_users_in_two_threads_limit_once_and_restore_once(monkeypatch):
    """A enters, B enters, A leaves, B leaves: one limit when A enters, one restore when B leaves.

    With a limit and a restore per user, B would save A's 1 thread and restore
    it, leaving BLAS on one thread for good.
    """
    import threadpoolctl

    recorder = _Recorder()
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", recorder)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with blas_control.one_blas_thread():
            a_in.set()
            b_in.wait(10)
        seen["after_a"] = list(recorder.events)
        a_out.set()

    def b():
        a_in.wait(10)
        with blas_control.one_blas_thread():
            b_in.set()
            a_out.wait(10)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen["after_a"] == [("limit", 1, "blas")]  # B still inside: nothing restored yet
    assert recorder.events == [("limit", 1, "blas"), ("restore",)]


def test_restored_after_an_exception(many):
    with pytest.raises(ValueError):
        with one_blas_thread():
            raise ValueError("inside")
    assert _blas_threads() == many


def test_every_blas_loaded_so_far_is_limited(many):
    """SciPy loads its own OpenBLAS beside NumPy's: both run on one thread inside the context."""
    import scipy.linalg  # noqa: F401 - loads SciPy's BLAS

    with one_blas_thread():
        counts = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert counts and set(counts) == {1}
