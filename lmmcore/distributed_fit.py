"""``lmmcore fit --scheduler``: the heritability of many phenotypes on a Dask cluster.

Each missingness pattern's sub-kinship is decomposed once, on the client,
and scattered with the pattern's covariates (:func:`lmmcore.distributed.scatter_context`);
each task fits a block of the pattern's phenotypes with the public
:func:`lmmcore.batch.fit_phenotypes` on the pattern's individuals, and the
fits come back in order (:func:`lmmcore.distributed.run_tasks`).

The fit of one pattern is vectorised over blocks of its phenotypes, and
the rounding of a matrix product depends on its shape, so a value depends on
the block its phenotype was fitted in. ``fit_phenotypes`` therefore always
rotates and fits a pattern in consecutive blocks of ``block`` phenotypes
(:data:`lmmcore.batch.FIT_BLOCK` by default), and every task here fits whole
such blocks: the results are ``fit_phenotypes(data, block=block)``'s (and
those of the in-process ``lmmcore fit``) byte for byte, however the blocks
are spread over tasks and workers (same BLAS threads).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from .distributed import TransferLog, open_cluster, run_tasks, scatter_context, worker_threads
from .errors import Report, reporting

__all__ = ["fit_phenotypes_distributed", "cluster_fit"]


@dataclass(frozen=True)
class _FitContext:
    """What every task of one missingness pattern shares: its individuals' data and decomposition."""

    data: Any  # LMMData of the pattern's individuals, without phenotypes
    eig: Any  # Eigendecomposition of their kinship
    method: str
    tol: float
    grid: Any
    kinship_scale: float
    block: int


def _fit_block(context: _FitContext, phenotypes) -> list:
    """On a worker: :func:`lmmcore.batch.fit_phenotypes` of a block of phenotypes of one pattern."""
    from .batch import PatternCache, fit_phenotypes

    data = replace(context.data, phenotypes=phenotypes)
    cache = PatternCache(rotations=False)
    cache.add_decomposition(data.kinship, context.eig)
    return fit_phenotypes(data, list(phenotypes.columns), method=context.method, tol=context.tol,
                          grid=context.grid, kinship_scale=context.kinship_scale, cache=cache, block=context.block)


def fit_phenotypes_distributed(client, data, phenotypes: Sequence[str] | None = None, *, method: str = "reml",
                               tol: float | None = None, grid=None, kinship_scale: float | str = 1.0,
                               block: int | None = None, progress: Callable[[int, int, str], None] | None = None,
                               cache=None, log: TransferLog | None = None, report: Report | None = None) -> list:
    """:func:`lmmcore.batch.fit_phenotypes` on a Dask cluster: blocks of phenotypes of one pattern per task.

    Parameters
    ----------
    client : distributed.Client
    data, phenotypes, method, tol, grid, kinship_scale
        As :func:`lmmcore.batch.fit_phenotypes`.
    block : int, optional
        Phenotypes fitted together (default :data:`lmmcore.batch.FIT_BLOCK`,
        as the in-process fit); each task fits one or more whole blocks of a
        pattern (about twice as many tasks as worker threads, when a
        pattern has that many blocks).
    progress : callable, optional
        ``progress(done, total, description)`` after each task.
    cache : PatternCache or dict, optional
        Decompositions made here are looked up and kept there (as
        :func:`~lmmcore.batch.fit_phenotypes` does), e.g. for a profile
        afterwards or a saved decomposition (``--eigen``).
    log : TransferLog, optional

    Returns
    -------
    list of FitResult
        In the order of ``phenotypes``; those of
        ``fit_phenotypes(data, phenotypes, block=block)`` byte for byte.

    Notes
    -----
    Each pattern's sub-kinship is decomposed once, here, and scattered with
    the pattern's covariates; a task fits its block with the public
    :func:`~lmmcore.batch.fit_phenotypes` on the pattern's individuals
    (every one observed), with the kinship scale resolved here on the whole
    kinship (``diag`` and ``gower`` depend on every individual).
    """
    from .batch import FIT_BLOCK, check_fit_request, kinship_scale_factor, missingness_patterns, pattern_decomposition
    from .optimize import DEFAULT_GRID, DEFAULT_TOL

    with reporting(report):
        fit_block = int(block or FIT_BLOCK)
        method, names, table = check_fit_request(data, phenotypes, method, fit_block)
        factor = kinship_scale_factor(data.kinship, kinship_scale)
        patterns = missingness_patterns(table)
        threads = worker_threads(client)
        plan = []  # (pattern, its blocks of phenotype names)
        for pattern in patterns:
            cols = list(pattern.phenotypes)
            n_blocks = -(-len(cols) // fit_block)
            size = fit_block * max(1, -(-n_blocks // max(1, 2 * threads)))  # whole blocks per task
            plan.append((pattern, [cols[k:k + size] for k in range(0, len(cols), size)]))
        total = sum(len(blocks) for _, blocks in plan)
        by_name: dict = {}
        finished = 0
        for pattern, blocks in plan:
            obs = pattern.observed
            eig = pattern_decomposition(data.kinship, obs, cache)
            sub = replace(data, ids=tuple(np.asarray(data.ids, dtype=object)[obs]),
                          kinship=data.kinship if obs.all() else data.kinship[np.ix_(obs, obs)],
                          phenotypes=table.iloc[:0, :0],
                          covariates=None if data.covariates is None else data.covariates.loc[obs])
            context = scatter_context(client, _FitContext(sub, eig, method, DEFAULT_TOL if tol is None else tol,
                                                          DEFAULT_GRID if grid is None else grid, factor,
                                                          fit_block), log)
            frame = table.loc[obs]

            def tick(_i, fits, pattern=pattern):
                nonlocal finished
                finished += 1
                if progress is not None:
                    progress(finished, total, f"{len(fits)} phenotype(s) on {pattern.n} individuals")

            for fits in run_tasks(client, _fit_block, context, lambda i, _resend, b=blocks, f=frame: (f[b[i]],),
                                  len(blocks), done=tick, log=log, what="block of phenotypes"):
                by_name.update({f.phenotype: f for f in fits})
            context.release()
        return [by_name[name] for name in names]


def cluster_fit(spec: str, data, phenotypes=None, *, say: Callable[[str], None] | None = None, **options) -> list:
    """:func:`fit_phenotypes_distributed` on the cluster ``spec`` (opened and closed here); ``lmmcore fit --scheduler``."""
    with open_cluster(spec, say=say) as client:
        log = TransferLog()
        fits = fit_phenotypes_distributed(client, data, phenotypes, log=log, **options)
        if say is not None:
            say(log.summary())
    return fits
