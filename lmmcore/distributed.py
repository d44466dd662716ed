"""Scans and fits on a Dask cluster (``--scheduler``): one machine's work as tasks on many.

``lmmcore scan ... --scheduler tcp://host:8786`` (a running
``dask.distributed`` scheduler) or ``--scheduler local:N`` (a
``LocalCluster`` of N worker processes on this machine, one task at a time each) runs
the scan's tasks (:mod:`lmmcore.scan_tasks`: a chunk of markers x a block of
traits) on the cluster's workers through :class:`DaskExecutor`, the
``executor=`` of :func:`lmmcore.scan.scan`; ``lmmcore fit ... --scheduler``
does the same for many phenotypes (:mod:`lmmcore.distributed_fit`).
``distributed`` is an optional dependency: ``pip install 'lmm-explorer[dask]'``.

What travels
------------
Scan: the per-(kinship, missingness pattern) context (the rotation matrix
``(n + p) x n`` that carries the kinship's eigenvectors, the rotated
covariates, the eigenvalues, the null fit: about ``8 n^2`` bytes) is
scattered once to every worker (``Client.scatter(..., broadcast=True)``: the
client uploads it once, the scheduler copies it between workers);
each task then carries only its marker indices (and a 16-byte digest of its
chunk), and the worker reads its chunk from the genotype file
(:mod:`lmmcore.genochunks`); genotypes held only in memory send the chunk
(``8 n m q`` bytes). Each result is the chunk's tests (``m x P`` values per
column). :class:`TransferLog` counts these bytes.

Order, completeness, failures
-----------------------------
Results are gathered in task order, and each task runs with the client's
number of BLAS threads (OpenBLAS's rounding depends on it), so the output is
the in-process run's, byte for byte, on the same kind of machine. A worker
that dies mid-task has its tasks rescheduled by the scheduler on the others
(a task is given up after
``distributed.scheduler.allowed-failures`` deaths, default 3); a task that
could not finish stops the run with a :class:`ClusterError` that says what
happened, and the gathered results are checked to cover every task before
anything is assembled: never a silently incomplete table.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import numpy as np

from .errors import LMMInputError, report, reporting
from .scheduler_spec import INSTALL_HINT, add_scheduler_argument, parse_scheduler, scheduler_arg

__all__ = [
    "INSTALL_HINT",
    "ClusterError",
    "TransferLog",
    "require_distributed",
    "parse_scheduler",
    "scheduler_arg",
    "open_cluster",
    "add_scheduler_argument",
    "cluster_executor",
    "run_tasks",
    "scatter_context",
    "worker_threads",
    "blas_threads",
    "pickled_size",
    "DaskExecutor",
]


#: Tasks in flight per worker thread: enough to keep every worker busy while
#: the client holds at most this many chunks it sends itself.
TASKS_PER_THREAD = 3

_CONTROLLER = None  # on a worker: its threadpoolctl controller (made once, by _warm_worker or the first task)


class ClusterError(RuntimeError):
    """The cluster could not finish the work (a worker died too often, the scheduler went away).

    The command line prints its message and exits with :attr:`exit_status`.
    """

    exit_status = 1


def require_distributed():
    """The ``distributed`` module, or an :class:`LMMInputError` that says how to install it."""
    try:
        import distributed
    except ImportError:
        raise LMMInputError(f"--scheduler needs Dask's distributed scheduler, which is not installed; install it "
                            f"with {INSTALL_HINT}") from None
    return distributed


@contextmanager
def open_cluster(spec: str, *, say: Callable[[str], None] | None = None, timeout: float = 30.0,
                 local_options: dict | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler ``spec`` (see :func:`parse_scheduler`), closed at the end.

    ``local:N`` starts a ``LocalCluster`` of N worker processes with one
    thread each (their BLAS single-threaded: Dask's default
    ``distributed.nanny.pre-spawn-environ``) and stops it at the end; an
    address connects to a running scheduler (within ``timeout`` seconds).
    ``say`` receives one line with the dashboard address.
    """
    distributed = require_distributed()
    kind, value = parse_scheduler(spec)
    cluster = None
    try:
        if kind == "local":
            options = dict(n_workers=value, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
            options.update(local_options or {})
            cluster = distributed.LocalCluster(**options)
            client = distributed.Client(cluster, timeout=timeout)
        else:
            if kind == "file" and not os.path.isfile(value):
                raise LMMInputError(f"the Dask scheduler file {value} does not exist; start the scheduler with "
                                    f"'dask scheduler --scheduler-file {value}' first")
            try:
                client = (distributed.Client(scheduler_file=value, timeout=timeout) if kind == "file"
                          else distributed.Client(value, timeout=timeout))
            except (OSError, TimeoutError) as exc:
                raise LMMInputError(f"could not connect to the Dask scheduler of {value} within {timeout:g} s "
                                    f"({exc}); check the address and that the scheduler is running") from None
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    try:
        _prepare_workers(client)
        if say is not None:
            workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            say(f"Dask cluster {client.scheduler.address} with {workers} worker(s); dashboard at "
                f"{client.dashboard_link}")
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _warm_worker() -> str:
    """On each worker: import what the tasks use (once, before the first task) and say lmmcore's version."""
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController

    from . import batch, genochunks, scan  # noqa: F401 - imported for the tasks
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _lmmcore_version()


def _lmmcore_version() -> str:
    try:
        from importlib.metadata import version

        return version("lmm-explorer")
    except Exception:  # noqa: BLE001 - not installed as a package
        return "unknown"


def _prepare_workers(client) -> None:
    """Import lmmcore on every worker; a clear error when a worker cannot, a message when versions differ."""
    try:
        versions = client.run(_warm_worker)
    except ImportError as exc:
        raise LMMInputError(f"the Dask workers cannot import lmmcore ({exc}); install lmm-explorer (the same "
                            "version as here) in every worker's Python environment") from None
    mine = _lmmcore_version()
    other = sorted({v for v in versions.values() if v != mine})
    if other:
        report(f"the Dask workers run lmm-explorer {', '.join(other)} and this process {mine}; results may "
               "differ from an in-process run (install the same version everywhere)")


def cluster_executor(spec: str | None, say: Callable[[str], None] | None = None) -> "DaskExecutor | None":
    """A :class:`DaskExecutor` on the cluster ``spec`` (its own client), or None without ``spec``.

    For :func:`lmmcore.scan.scan`'s ``executor=``; :meth:`DaskExecutor.close`
    closes the client (and stops a ``local:N`` cluster). ``say`` receives the
    dashboard address and, at the end, what was sent
    (:meth:`TransferLog.summary`).
    """
    if not spec:
        return None
    stack = ExitStack()
    client = stack.enter_context(open_cluster(spec, say=say))
    try:
        return DaskExecutor(client, log=TransferLog(), say=say, owns=stack)
    except BaseException:
        stack.close()
        raise


# --------------------------------------------------------------------------- #
# Running tasks: in order, complete, with the bytes counted
# --------------------------------------------------------------------------- #
@dataclass
class TransferLog:
    """Bytes sent to and received from the workers (pickled sizes), and the tasks run.

    Attributes
    ----------
    context_bytes : int
        Scattered contexts, counted once per worker that holds a copy (the
        client uploads each once; the scheduler copies it between workers).
    task_bytes : int
        The tasks' own arguments (indices, digests, phenotype blocks,
        chunks the client sent).
    result_bytes : int
        The results gathered.
    tasks : int
    chunks_sent : int
        Marker chunks the client sent because no worker could read them.
    workers : dict
        Tasks finished by each worker address.
    """

    context_bytes: int = 0
    task_bytes: int = 0
    result_bytes: int = 0
    tasks: int = 0
    chunks_sent: int = 0
    workers: dict = field(default_factory=dict)

    @property
    def sent_bytes(self) -> int:
        """Everything sent to the workers."""
        return self.context_bytes + self.task_bytes

    def summary(self) -> str:
        """One line for the terminal."""
        return (f"{self.tasks} task(s) on {len(self.workers)} worker(s); sent {_mb(self.sent_bytes)} "
                f"(contexts {_mb(self.context_bytes)}, tasks {_mb(self.task_bytes)}), received "
                f"{_mb(self.result_bytes)}")


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.3g} MB"


def pickled_size(obj) -> int:
    """Bytes of ``obj`` pickled as Dask sends it (protocol 5, buffers counted)."""
    buffers: list = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return len(head) + sum(memoryview(b).nbytes for b in buffers)


def scatter_context(client, context, log: TransferLog | None = None, attempts: int = 3):
    """Scatter ``context`` to every worker once; its future (to pass to :func:`run_tasks`).

    A worker that dies during the broadcast makes it fail; it is tried again
    (``attempts`` times) on the workers that are left.
    """
    for attempt in range(attempts):
        try:
            future = client.scatter(context, broadcast=True, hash=False)
            break
        except OSError:  # a connection to a worker that died (distributed's CommClosedError is an OSError)
            if attempt == attempts - 1:
                raise ClusterError("could not send the scan's context to the workers (they keep dying); no result "
                                   "was written") from None
            time.sleep(0.5)
    if log is not None:
        log.context_bytes += pickled_size(context) * max(1, len(client.who_has(future).get(future.key, ())))
    return future


def blas_threads() -> int:
    """The BLAS threads of this process (the in-process run's; 1 if no BLAS is found)."""
    from threadpoolctl import threadpool_info

    counts = [int(i.get("num_threads", 1)) for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(counts, default=1)


def _call(fn, shared, args, threads, measure):
    """On a worker: ``fn(shared, *args)`` with ``threads`` BLAS threads; its messages, result size, worker.

    The same thread count as the client's process makes the same floating
    point operations in the same order (OpenBLAS's blocking, hence its
    rounding, depends on it), so a result is the in-process run's, byte for
    byte, on the same kind of machine.
    """
    global _CONTROLLER
    from distributed import get_worker
    from threadpoolctl import ThreadpoolController

    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    messages: list[str] = []
    with _CONTROLLER.limit(limits=threads, user_api="blas"), reporting(messages.append):
        value = fn(shared, *args)
    return value, messages, pickled_size(value) if measure else 0, get_worker().address


class _Retry(Exception):
    """Internal: the task's arguments must be rebuilt (a worker could not read its chunk)."""


def run_tasks(client, fn: Callable, shared, args_of: Callable[[int, bool], tuple], count: int, *,
              done: Callable[[int, Any], None] | None = None, log: TransferLog | None = None,
              retry_on: tuple[type[BaseException], ...] = (), what: str = "task",
              blas: int | None = None, retry_message: str | None = None,
              window: int | None = None, timeout: float | None = None) -> Iterator[Any]:
    """Run ``fn(shared, *args_of(i, False))`` for ``i < count`` on the cluster; the results in order of i.

    Parameters
    ----------
    client : distributed.Client
    fn : callable
        A module-level function (pickled by reference).
    shared : Future or tuple of Futures
        What every task shares, scattered once (:func:`scatter_context`);
        the worker receives the values.
    args_of : callable
        ``args_of(i, resend)``: the task's other arguments; ``resend`` is
        True when a first attempt raised one of ``retry_on`` (then the
        arguments must carry what the worker could not get itself).
    count : int
        Number of tasks.
    done : callable, optional
        ``done(i, result)`` as each task finishes (in any order: progress).
    log : TransferLog, optional
        Counts the bytes of the arguments and results.
    retry_on : tuple of exception types
        Raised by a task that should be sent again with ``args_of(i, True)``.
    what : str
        What a task is, for messages.
    blas : int, optional
        BLAS threads of each task (default: this process's, see :func:`_call`).
    retry_message : str, optional
        Reported (once) when a task is sent again.
    window : int, optional
        Tasks in flight at once (default :data:`TASKS_PER_THREAD` per
        worker thread of the cluster).
    timeout : float, optional
        Seconds for all the tasks (default: no limit).

    Yields
    ------
    The results, in the order of i (each as soon as it and those before
    it are in). Messages the tasks reported are reported here once.

    Raises
    ------
    ClusterError
        A task could not finish (its workers died ``allowed-failures``
        times, the scheduler went away or lost the context); the remaining
        tasks are cancelled.
    LMMInputError
        Raised by a task (bad input found on a worker).
    """
    from distributed import as_completed

    window = max(2, TASKS_PER_THREAD * worker_threads(client)) if window is None else max(1, int(window))
    blas = blas_threads() if blas is None else int(blas)
    measure = log is not None
    index_of: dict = {}
    pending = as_completed(timeout=timeout)
    next_submit = 0
    results: dict[int, Any] = {}
    said: set[str] = set()
    next_yield = 0

    def submit(i: int, resend: bool = False) -> None:
        args = args_of(i, resend)
        if log is not None:
            log.task_bytes += pickled_size(args)
        future = client.submit(_call, fn, shared, args, blas, measure, pure=False)
        index_of[future.key] = (i, resend)
        pending.add(future)

    try:
        while next_submit < min(window, count):
            submit(next_submit)
            next_submit += 1
        for future in _bounded(pending, timeout, what):
            i, resent = index_of.pop(future.key)
            value = _outcome(future, i, what, retry_on if not resent else ())
            if value is _Retry:
                if retry_message and retry_message not in said:
                    said.add(retry_message)
                    report(retry_message)
                submit(i, resend=True)
                if log is not None:
                    log.chunks_sent += 1
                continue
            result, messages, nbytes, worker = value
            for message in messages:
                if message not in said:
                    said.add(message)
                    report(message)
            if log is not None:
                log.result_bytes += nbytes
                log.tasks += 1
                log.workers[worker] = log.workers.get(worker, 0) + 1
            results[i] = result
            if done is not None:
                done(i, result)
            if next_submit < count:
                submit(next_submit)
                next_submit += 1
            while next_yield in results:
                yield results.pop(next_yield)
                next_yield += 1
    finally:
        leftover = list(pending.futures) if hasattr(pending, "futures") else []
        if leftover:
            client.cancel(leftover)
    if next_yield != count:  # every task accounted for, or nothing is assembled
        raise ClusterError(f"only {next_yield} of {count} {what}s came back from the cluster; no result was written")


def _bounded(pending, timeout: float | None, what: str) -> Iterator:
    """The futures of ``pending`` as they finish; a :class:`ClusterError` after ``timeout`` seconds."""
    iterator = iter(pending)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except TimeoutError:
            raise ClusterError(f"the cluster did not finish the {what}s within {timeout:g} s; no result was "
                               "written") from None


def _outcome(future, i: int, what: str, retry_on: tuple):
    """The value of a finished future, :class:`_Retry`, or the error that stops the run."""
    from distributed.scheduler import KilledWorker

    status = future.status
    if status == "finished":
        return future.result()
    if status == "error":
        exc = future.exception()
        if retry_on and isinstance(exc, retry_on):
            return _Retry
        if isinstance(exc, KilledWorker):
            raise ClusterError(
                f"{what} {i + 1} could not finish: the workers that ran it died "
                f"(distributed.scheduler.allowed-failures times; out of memory? see the workers' logs); "
                "no result was written") from None
        raise exc
    raise ClusterError(f"{what} {i + 1} was {status} by the cluster (its scheduler or its scattered context was "
                       "lost); no result was written")


# --------------------------------------------------------------------------- #
# Genome scans: the executor of lmmcore.scan (chunk x trait-block tasks)
# --------------------------------------------------------------------------- #
def _scan_chunk(shared, fn, task, payload, digest):
    """On a worker: read the task's markers (or take the client's), then ``fn(context, chunk, task)``.

    The chunk is a :class:`~lmmcore.genotypes.Genotypes` of the task's
    markers only, so the task runs on local marker indices ``0..m-1``; the
    result is labelled back with the scan's indices.
    """
    from .genochunks import ChunkMismatch, chunk_digest

    context, source = shared
    mk = task.markers
    if payload is None:
        try:
            values = source.read(mk)
        except Exception as exc:  # noqa: BLE001 - any failure to read: the client sends the chunk
            raise ChunkMismatch(f"could not read the markers from {source.source}: {exc}") from None
        if digest is not None and chunk_digest(values) != digest:
            raise ChunkMismatch(f"the markers read from {source.source} differ from the client's")
    else:
        values = payload
    local = replace(task, markers=np.arange(len(mk)))
    result = fn(context, source.record(mk, values), local)
    return replace(result, task=task, piece=replace(result.piece, markers=mk))


class DaskExecutor:
    """The executor of :func:`lmmcore.scan.scan` on a Dask cluster (its ``executor=`` argument).

    ``executor(scan_task, context, genotypes, tasks)`` scatters ``context``
    (one kinship group and missingness pattern) to every worker, and, once
    per genotypes record, the description of where its chunks come from
    (:func:`lmmcore.genochunks.chunk_source`); each task then carries its
    marker indices and the digest of its chunk, or the chunk itself when the
    genotypes have no file the workers can read. Results come back in task
    order (:func:`run_tasks`).

    Parameters
    ----------
    client : distributed.Client
    log : TransferLog, optional
        Counts the bytes sent and received.
    blas : int, optional
        BLAS threads per task (default: the client's, for results identical
        to the in-process run).
    verify : bool
        Check each chunk a worker reads against the client's copy by digest
        (default True; False trusts the file and skips one pass over the
        genotypes on the client).
    say : callable, optional
        Receives :meth:`TransferLog.summary` when the executor is closed.
    owns : ExitStack, optional
        Closed with the executor (the client and cluster it was made with).
    timeout : float, optional
        Seconds for the tasks of one kinship group and pattern (default: no
        limit).
    """

    def __init__(self, client, *, log: TransferLog | None = None, blas: int | None = None, verify: bool = True,
                 say: Callable[[str], None] | None = None, owns: ExitStack | None = None,
                 timeout: float | None = None):
        self.client = client
        self.timeout = timeout
        self._say = say
        self._owns = owns
        self.log = log
        self.verify = verify
        self._sources: dict = {}  # id(genotypes) -> (genotypes, source, its future)
        self._hinted = False
        self.threads = worker_threads(client)
        self.window = max(2, TASKS_PER_THREAD * self.threads)
        self.blas = blas_threads() if blas is None else int(blas)

    def _source(self, genotypes):
        from .genochunks import chunk_source

        held = self._sources.get(id(genotypes))
        if held is None or held[0] is not genotypes:
            source = chunk_source(genotypes)
            held = (genotypes, source, scatter_context(self.client, source, self.log))
            self._sources[id(genotypes)] = held
        return held[1], held[2]

    def __call__(self, fn, context, genotypes, tasks) -> Iterator:
        from .genochunks import chunk_digest

        source, source_future = self._source(genotypes)
        if len(tasks) < self.threads and not self._hinted:
            self._hinted = True
            report(f"the scan has {len(tasks)} task(s) for a kinship group but the cluster has "
                   f"{self.threads} worker thread(s): some stay idle; a smaller --chunk cuts the "
                   "markers into more tasks (the in-process scan with the same --chunk gives the same results)")
        context_future = scatter_context(self.client, context, self.log)
        data = genotypes.data

        def args_of(i: int, resend: bool) -> tuple:
            task = tasks[i]
            if resend or not source.reads_file:
                if self.log is not None and not source.reads_file:
                    self.log.chunks_sent += 1
                return fn, task, np.ascontiguousarray(data[:, task.markers]), None
            digest = chunk_digest(data[:, task.markers]) if self.verify else None
            return fn, task, None, digest

        from .genochunks import ChunkMismatch

        try:
            yield from run_tasks(self.client, _scan_chunk, (context_future, source_future), args_of, len(tasks),
                                 log=self.log, retry_on=(ChunkMismatch,), what="scan task", blas=self.blas, window=self.window,
                                 timeout=self.timeout,
                                 retry_message=f"the workers could not read some marker chunks from "
                                               f"{source.source} as the client holds them (the file changed, or "
                                               "is not at the same path on the workers); the client sent those "
                                               "chunks itself")
        finally:
            context_future.release()

    def close(self) -> None:
        """Release the scattered genotype sources (and close the client and cluster it owns)."""
        try:
            for _, _, future in self._sources.values():
                future.release()
            self._sources.clear()
            if self._say is not None and self.log is not None and self.log.tasks:
                self._say(self.log.summary())
        finally:
            if self._owns is not None:
                self._owns.close()
                self._owns = None


def worker_threads(client) -> int:
    """Threads of all the cluster's workers together (at least 1)."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
