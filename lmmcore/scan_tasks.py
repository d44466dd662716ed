"""The unit of work of a genome scan: one task = a chunk of markers x a block of traits.

:func:`lmmcore.scan.scan` fits, for every kinship group and missingness
pattern, the null model of the pattern's traits once, and freezes what every
marker of the group needs in a :class:`GroupContext`. The markers and traits
are then cut into :class:`ScanTask` s, and each is done by the pure function
:func:`scan_task`:

1. gather the chunk's genotype rows, impute, rotate and whiten them
   (:func:`lmmcore.markers.prepare_block`);
2. test every marker at the null h2 of every trait of the block
   (:func:`lmmcore.fixed_scan.fixed_scan`);
3. with ``refit``, re-estimate h2 at every marker (:func:`lmmcore.refit.refit_block`);
4. with permutations, the largest LOD of the chunk under each permutation
   (:func:`lmmcore.permute.permuted_max_lod`).

It returns a :class:`TaskResult` (the tests, the permuted maxima and counts)
and touches nothing else: no callbacks, no shared state. That is the seam of
a distributed scan: an *executor* is any callable

    executor(scan_task, context, genotypes, tasks) -> iterable of TaskResult

that yields ``scan_task(context, genotypes, task)`` for every task, **in the
order of** ``tasks``. :func:`serial_executor` (the default) is a plain
in-process map; a cluster executor ships ``context`` and ``genotypes`` once
to its workers (both pickle) and runs the tasks there.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import numpy as np

from .eigen import RotatedData
from .fixed_scan import FixedScan, fixed_scan
from .genotypes import Genotypes
from .markers import marker_array, prepare_block
from .nullmodel import NullModel
from .permute import permuted_max_lod

if TYPE_CHECKING:  # pragma: no cover
    from .refit import ExactScan

__all__ = [
    "GroupContext",
    "ScanTask",
    "ScanPiece",
    "ScanPieces",
    "TaskResult",
    "block_null",
    "Executor",
    "make_tasks",
    "task_bytes",
    "task_shape",
    "memory_budget",
    "MEMORY_CAP",
    "MIN_CHUNK",
    "scan_task",
    "serial_executor",
    "thread_executor",
]


@dataclass(frozen=True)
class GroupContext:
    """What every task of one (kinship group, missingness pattern) needs; picklable.

    Attributes
    ----------
    label : str
        ``"all"`` (one kinship) or the chromosome its LOCO kinship leaves out.
    phenotypes : tuple of str
        The pattern's traits, in the scan's order.
    target : tuple of int
        Their columns among all scanned phenotypes (``ScanInputs.names``).
    rows : ndarray of int, shape (n,)
        Row in the genotypes of each individual of the pattern.
    rotation : ndarray, shape (n + p, n)
        :func:`lmmcore.markers.marker_rotation`'s matrix (the kinship's
        eigenvectors and the covariates' basis).
    rot : RotatedData
        Rotated traits and covariates ``y*, X*`` and the eigenvalues ``d``.
    null : NullModel
        The null fit of the pattern's traits (h2, residuals, and the null ML
        fit of the exact scan).
    refit : bool
        Also run the exact scan.
    check_missing : bool
        The genotypes may have missing values (imputed by the marker mean).
    perm_rows : ndarray of int or None
        With permutations: the genotype row of every individual of the scan.
    perms : ndarray of int or None, shape (n_perm, n)
        The permutations restricted to the pattern's individuals
        (positions in ``perm_rows``).
    effects : bool
        Compute the fixed-h2 effects and standard errors (a summary of
        LODs does not need them; see :func:`lmmcore.fixed_scan.fixed_scan`).
    """

    label: str
    phenotypes: tuple[str, ...]
    target: tuple[int, ...]
    rows: np.ndarray
    rotation: np.ndarray
    rot: RotatedData
    null: NullModel
    refit: bool
    check_missing: bool
    perm_rows: np.ndarray | None = None
    perms: np.ndarray | None = None
    effects: bool = True

    @property
    def n(self) -> int:
        return int(self.rows.size)

    @property
    def p(self) -> int:
        """Covariates of the model (the ``p`` of :func:`task_bytes`)."""
        return self.rot.p

    @property
    def n_traits(self) -> int:
        return len(self.phenotypes)


@dataclass(frozen=True)
class ScanTask:
    """One task: the markers ``markers`` (indices in the genotypes) x traits ``start:stop`` of the context."""

    index: int
    markers: np.ndarray
    start: int
    stop: int

    @property
    def traits(self) -> slice:
        return slice(self.start, self.stop)


@dataclass(frozen=True)
class ScanPiece:
    """The tests of one task: a chunk of markers for a block of traits of one missingness pattern."""

    markers: np.ndarray
    phenotypes: tuple[str, ...]
    target: tuple[int, ...]  # their columns among all scanned phenotypes
    label: str
    n: int
    h2: np.ndarray  # (P,) the null h2 of the fixed-h2 scan
    flag: np.ndarray
    df: np.ndarray
    fixed: FixedScan
    exact: ExactScan | None

    @property
    def pieces(self) -> tuple["ScanPiece", ...]:
        """The piece itself, as the one piece of its task (see :class:`ScanPieces`)."""
        return (self,)


@dataclass(frozen=True)
class ScanPieces:
    """The pieces of one task that serves several missingness patterns (one piece each).

    A task of a group whose patterns share one rotation of the markers
    (:mod:`lmmcore.pattern_dummies`) tests the same chunk of markers for
    the traits of every pattern, each with its own individuals, covariates
    and flags. ``markers`` is held once: :attr:`pieces` gives each part with
    it, so relabelling the task's markers (``replace(result.piece,
    markers=...)``, as a cluster executor does) relabels every part.
    """

    markers: np.ndarray
    parts: tuple[ScanPiece, ...]

    @property
    def pieces(self) -> tuple[ScanPiece, ...]:
        return tuple(replace(part, markers=self.markers) for part in self.parts)


@dataclass(frozen=True)
class TaskResult:
    """What :func:`scan_task` returns.

    Attributes
    ----------
    task : ScanTask
    piece : ScanPiece or ScanPieces
        The task's tests (``piece.pieces``: one :class:`ScanPiece` per
        missingness pattern it served).
    max_lod : ndarray or None, shape (n_perm, P)
        With permutations: the chunk's largest LOD under each permutation
        (``-inf`` where no marker has one), for the block's traits.
    n_imputed : int
        Missing genotype values replaced by their marker's mean.
    n_exact : int
        Exact-scan profiles maximised on the exact likelihood.
    n_markers : int
        Marker scans done (markers of the task).
    n_perm_scans : int
        Marker scans done under permutation (markers x permutations).
    seconds : dict
        Seconds spent in the stages ``rotate, scan, refit, permute``.
    """

    task: ScanTask
    piece: ScanPiece | ScanPieces
    max_lod: np.ndarray | None
    n_imputed: int
    n_exact: int
    n_markers: int
    n_perm_scans: int
    seconds: dict = field(default_factory=dict)


Executor = Callable[[Callable, GroupContext, Genotypes, Sequence[ScanTask]], Iterable[TaskResult]]


#: The default memory budget of a task is min(1/4 of the available memory, MEMORY_CAP).
MEMORY_CAP = 1 << 30

#: Markers per chunk below which traits are cut into blocks instead (a smaller
#: chunk would make each product of the fixed-h2 scan too thin to run at speed).
MIN_CHUNK = 32


def memory_budget(memory: int | None = None) -> int:
    """The bytes one task may use: ``memory``, else min(1/4 of the available memory, 1 GiB).

    The available memory is ``MemAvailable`` of ``/proc/meminfo`` (Linux),
    else the free physical pages (``os.sysconf``), else 4 GiB is assumed.
    """
    if memory is not None:
        return int(memory)
    available = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 4 << 30
    return int(min(available // 4, MEMORY_CAP))


def task_bytes(m: int, P: int, n: int, p: int, q: int, refit: bool = False) -> int:
    """An upper bound of the bytes a task of m markers x P traits holds at once (float64 arrays).

    Notes
    -----
    Counted in 8-byte values, every array of the task alive together (a
    bound, not the typical peak):

    * per marker and trait, ``8 q^2 + 3 p q + 13 q + 18`` (the fixed-h2
      scan's ``B`` (p x q), ``X*'W G~``, ``G~'W G~``, ``S``, ``S^{-1}`` and
      ``cov`` (q x q), ``c``, ``u``, effects and SEs (q), LOD, p-value,
      RSS), plus ``2 q + 11`` with ``refit`` (its output);
    * per marker, ``5 n q`` (the gathered, imputed, rotated and whitened
      columns) and ``n q (q + 1) / 2`` (the products of column pairs of the
      LOD-only kernel, :func:`lmmcore.fixed_scan.lod_statistic`, at most a
      tile of markers at a time), plus ``n q (q + 1) / 2`` with ``refit``
      (the exact scan's cached products of column pairs);
    * per trait, ``(p + 3) n`` (weights, weighted residuals, weighted covariates).

    Never a T x m x k array: a task holds its own block only. The group's
    :class:`GroupContext` (the ``(n + p) x n`` rotation, the null fit) and
    the sink's output come on top.
    """
    per_pair = 8 * q * q + 3 * p * q + 13 * q + 18 + ((2 * q + 11) if refit else 0)
    pairs = (n * q * (q + 1)) // 2
    per_marker = 5 * n * q + pairs + (pairs if refit else 0)
    per_trait = (p + 3) * n
    return 8 * (m * P * per_pair + m * per_marker + P * per_trait)


def task_shape(n_markers: int, n_traits: int, chunk: int, budget: int, n: int, p: int, q: int,
               refit: bool = False) -> tuple[int, int]:
    """Markers per chunk and traits per block of a group's tasks, within ``budget`` bytes.

    Keeps ``chunk`` and all traits in one block when they fit (the scan is
    then the same as without a budget); else shrinks the chunk down to
    :data:`MIN_CHUNK` markers, and only then cuts the traits into blocks
    (each block rotates the markers again, so blocks are kept large), and
    grows the chunk back as far as the budget allows. Never below one
    marker x one trait.
    """
    m0 = max(1, min(int(chunk), int(n_markers)))
    P = max(1, int(n_traits))

    def fits(m: int, t: int) -> bool:
        return task_bytes(m, t, n, p, q, refit) <= budget

    def largest(lo: int, hi: int, ok) -> int:
        """The largest x in [lo, hi] with ok(x) (ok is monotone decreasing); lo if none."""
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if ok(mid):
                lo = mid
            else:
                hi = mid - 1
        return lo

    if fits(m0, P):
        return m0, P
    m_floor = min(m0, MIN_CHUNK)
    if fits(m_floor, P):
        return largest(m_floor, m0, lambda m: fits(m, P)), P
    block = largest(1, P, lambda t: fits(m_floor, t))
    return largest(1, m0, lambda m: fits(m, block)), block


def make_tasks(marker_idx: np.ndarray, n_traits: int, chunk: int, trait_block: int | None = None) -> list[ScanTask]:
    """Cut markers into chunks of ``chunk`` and traits into blocks of ``trait_block`` (default: all).

    The order is trait block, then chunk: every chunk of the first block of
    traits, then of the next.
    """
    trait_block = n_traits if not trait_block else max(1, int(trait_block))
    chunk = max(1, int(chunk))
    tasks = []
    for t0 in range(0, n_traits, trait_block):
        for start in range(0, len(marker_idx), chunk):
            tasks.append(ScanTask(index=len(tasks), markers=marker_idx[start:start + chunk],
                                  start=t0, stop=min(n_traits, t0 + trait_block)))
    return tasks


def block_null(null: NullModel, traits: slice, n_traits: int) -> NullModel:
    """The null model of the traits ``traits`` only (the same object for all of them)."""
    if traits.start == 0 and traits.stop == n_traits:
        return null
    cut = (lambda a: None if a is None else a[..., traits])
    return replace(null, h2=null.h2[traits], h2_scan=null.h2_scan[traits], sigma2=null.sigma2[traits],
                   loglik=null.loglik[traits], resid=np.ascontiguousarray(null.resid[:, traits]),
                   h2_ml=cut(null.h2_ml), loglik_ml=cut(null.loglik_ml))


def scan_task(context: GroupContext, genotypes: Genotypes, task: ScanTask) -> TaskResult:
    """Do one task: the fixed-h2 tests (and exact tests, permuted maxima) of a chunk x trait block.

    Parameters
    ----------
    context : GroupContext
    genotypes : Genotypes
        The scan's genotypes (read through ``context.rows``).
    task : ScanTask

    Returns
    -------
    TaskResult

    Notes
    -----
    Pure: the result depends on the arguments only, so tasks may run in any
    order, anywhere; the caller puts them together in task order.
    """
    seconds = dict.fromkeys(("rotate", "scan", "refit", "permute"), 0.0)
    null = block_null(context.null, task.traits, context.n_traits)
    rot = context.rot
    mk = task.markers
    t0 = time.perf_counter()
    block = prepare_block(marker_array(genotypes, context.rows, mk), context.rotation, context.check_missing)
    t1 = time.perf_counter()
    fixed = fixed_scan(block, rot.X, rot.d, null.h2_scan, null.resid, effects=context.effects)
    t2 = time.perf_counter()
    seconds["rotate"], seconds["scan"] = t1 - t0, t2 - t1
    exact = None
    n_exact = 0
    if context.refit:
        from .refit import refit_block  # here: a fixed-h2 scan never imports lmmcore.refit

        exact = refit_block(block, rot, null)
        n_exact = exact.n_exact
        seconds["refit"] = time.perf_counter() - t2
    piece = ScanPiece(markers=mk, phenotypes=context.phenotypes[task.traits], target=context.target[task.traits],
                      label=context.label, n=rot.n, h2=null.h2_scan, flag=block.flag, df=block.rank,
                      fixed=fixed, exact=exact)
    n_imputed = block.n_imputed
    del block
    max_lod = None
    n_perm_scans = 0
    if context.perms is not None:
        t3 = time.perf_counter()
        max_lod = permuted_max_lod(genotypes, context.perm_rows, context.perms, mk, context.rotation, rot.X, rot.d,
                                   null.h2_scan, null.resid, context.check_missing)
        n_perm_scans = context.perms.shape[0] * len(mk)
        seconds["permute"] = time.perf_counter() - t3
    return TaskResult(task=task, piece=piece, max_lod=max_lod, n_imputed=n_imputed, n_exact=n_exact,
                      n_markers=len(mk), n_perm_scans=n_perm_scans, seconds=seconds)


def serial_executor(fn: Callable, context: GroupContext, genotypes: Genotypes,
                    tasks: Sequence[ScanTask]) -> Iterator[TaskResult]:
    """The default executor: ``fn(context, genotypes, task)`` for each task, in order, in this process."""
    for task in tasks:
        yield fn(context, genotypes, task)


def thread_executor(workers: int) -> Executor:
    """An executor that runs ``workers`` tasks at a time on threads, each with one BLAS thread.

    Results are yielded in task order; at most ``2 workers`` tasks are in
    flight (done but not yet consumed included), so memory stays within
    ``2 workers`` times the task budget.

    Notes
    -----
    numpy releases the GIL in its matrix products and array loops, so the
    tasks run in parallel. One BLAS thread per task, instead of one task at
    a time with several BLAS threads, keeps the small products of a task
    (and a machine shared with other jobs) from waiting on each other: on a
    busy 2-core machine a chunk took 20 times the CPU time with two BLAS
    threads. The BLAS limit applies to the whole process while the tasks
    run (threadpoolctl).
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    workers = max(1, int(workers))

    def run(fn, context, genotypes, tasks):
        with threadpool_limits(1), ThreadPoolExecutor(max_workers=workers) as pool:
            pending: deque = deque()
            for task in tasks:
                pending.append(pool.submit(fn, context, genotypes, task))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    run.workers = workers  # the scan cuts groups into at least this many tasks, and prepares the next group
    return run
