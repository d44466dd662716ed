"""The server hooks' memory release (app/app_hooks.py) and the process-wide counts it reads (app/base.py).

Regression: a session discarded while others worked (a tab closed, or a page fetched and never
connected) made the server collect garbage on its event loop at once; with ten sessions in memory
that took 1-6 s on a loaded 2-core machine (15 s once), and no page or health check got an
answer meanwhile (``tests/test_app_concurrency.py`` failed on its liveness check).
"""

from __future__ import annotations

import asyncio
import gc
import logging

from app import app_hooks
from app.base import SessionState, jobs_running, states_in_memory


def test_jobs_and_states_are_counted_across_sessions():
    gc.collect()  # states that earlier tests left as garbage would be collected below and spoil the count
    before_jobs, before_states = jobs_running(), states_in_memory()
    a, b = SessionState(), SessionState()
    assert states_in_memory() == before_states + 2
    with a.working():
        with b.working(), a.working():
            assert jobs_running() == before_jobs + 3 and a.busy and b.busy
        assert jobs_running() == before_jobs + 1 and a.busy and not b.busy
    assert jobs_running() == before_jobs and not a.busy
    del a, b
    gc.collect()
    assert states_in_memory() == before_states


def test_the_release_waits_while_a_job_runs_then_logs_the_states_left(caplog):
    async def scenario() -> tuple[list[str], list[str], bool]:
        state = SessionState()
        with caplog.at_level(logging.INFO, logger="lmm_explorer.app_hooks"):
            with state.working():
                app_hooks._release_when_idle()  # a job runs: the release is put off
                waiting = [r.getMessage() for r in caplog.records]
                postponed = app_hooks._release_handle is not None
            from tornado.ioloop import IOLoop

            IOLoop.current().remove_timeout(app_hooks._release_handle)
            app_hooks._release_when_idle()  # no job: released now
            done = [r.getMessage() for r in caplog.records]
        return waiting, done, postponed

    waiting, done, postponed = asyncio.run(scenario())
    assert waiting == [] and postponed
    assert len(done) == 1 and done[0] == app_hooks.RELEASED_MESSAGE % states_in_memory()
    assert app_hooks._release_handle is None
