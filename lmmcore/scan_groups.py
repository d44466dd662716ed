"""Step 2 of the genome scan: each kinship group's decompositions, null fits and tasks.

For every kinship (one, or one per chromosome with leave-one-chromosome-out
kinships) :func:`group_contexts` prepares what the tasks of
:mod:`lmmcore.scan_tasks` need, one missingness pattern of the traits at a
time (:func:`lmmcore.batch.missingness_patterns`):

* by default each pattern's individuals get their own decomposition of K
  (``K_OO = U D U'``, :mod:`lmmcore.eigen`), null fit
  (:mod:`lmmcore.nullmodel`) and marker rotation: a
  :class:`~lmmcore.scan_tasks.GroupContext` and :func:`~lmmcore.scan_tasks.scan_task`;
* the patterns that the cost model of :mod:`lmmcore.pattern_dummies` picks
  (REML, fixed-h2 scan) share one decomposition of K on all individuals and
  one rotation of each chunk of markers, with an indicator covariate for
  each missing individual: one :class:`~lmmcore.pattern_dummies.SharedContext`
  and :func:`~lmmcore.shared_scan.shared_scan_task`. The results are the
  same.

The arguments ``plan, run, clock, options, progress`` are
:mod:`lmmcore.scan`'s plan of the scan, what its run gathers (the null fits
go to ``run.nulls`` as :class:`NullFit` s), its stage clock, its executor
options and its progress counter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator

import numpy as np

from .design import design_matrix
from .eigen import decompose_kinship, rotate
from .markers import is_identity_index, marker_columns, marker_rotation
from .nullmodel import NullModel, fit_null
from .pattern_dummies import shared_context, shared_patterns
from .scan_tasks import MIN_CHUNK, GroupContext, ScanTask, make_tasks, scan_task, task_shape

__all__ = ["NullFit", "group_contexts"]


@dataclass(frozen=True)
class NullFit:
    """The null model of the phenotypes of one missingness pattern under one kinship."""

    label: str  # "all" or the chromosome left out
    n: int
    phenotypes: tuple[str, ...]
    model: NullModel
    key: tuple[int, int] = (0, 0)  # (kinship group, pattern): the null table's order


def group_contexts(plan, run, clock, options, workers: int,
                   progress) -> Iterator[tuple[Callable, object, list[ScanTask], str]]:
    """Every kinship group's task function, context, tasks and progress label, in order.

    The patterns that :func:`_shared` picks share one decomposition of the
    group's kinship and one rotation of its markers
    (:mod:`lmmcore.pattern_dummies`: one :class:`~lmmcore.pattern_dummies.SharedContext`);
    every other pattern, and the traits of a shared pattern whose null h2 is
    1, get a :class:`GroupContext` of their own.
    """
    for g, (label, marker_idx) in enumerate(plan.groups):
        rows = plan.kin_rows
        # a saved decomposition (--eigen) serves the patterns observed on all of its individuals
        saved = plan.source.decomposition(label) if is_identity_index(rows, len(plan.source.ids)) else None
        held: list = []

        def kinship() -> np.ndarray:
            """The kinship of the scan's individuals, formed on first use."""
            if not held:
                with clock("kinship"):
                    K_full = plan.source.matrix(label)
                    held.append(K_full if is_identity_index(rows, K_full.shape[0]) else K_full[np.ix_(rows, rows)])
                    del K_full
            return held[0]

        shared = _shared(plan, len(marker_idx))
        leftover: dict[int, tuple[str, ...]] = {}
        if shared:
            item, leftover = _shared_group(plan, run, clock, g, label, marker_idx, None if saved is not None
                                           else kinship(), saved, shared, options, workers)
            if item is not None:
                yield item
        for i, (pattern, design) in enumerate(zip(plan.patterns, plan.designs)):
            if i in shared:
                if i not in leftover:
                    continue
                pattern = replace(pattern, phenotypes=leftover[i])
                if any(fit.key == (g, i) for fit in run.nulls):  # its other traits counted its markers already
                    progress.total += len(marker_idx)
            K = kinship() if saved is None or not pattern.observed.all() else None
            yield _scan_group(plan, run, clock, label, marker_idx, K, pattern, design, options, workers,
                              saved=saved, key=(g, i))
        held.clear()


def _shared(plan, m: int) -> list[int]:
    """The patterns of a group of m markers served by indicator covariates (:mod:`lmmcore.pattern_dummies`).

    None for ML (its profile needs a term of its own per pattern), the exact
    scan, permutations and genotypes with missing values (imputed over each
    pattern's individuals); else the cost model of
    :func:`~lmmcore.pattern_dummies.shared_patterns`.
    """
    inputs = plan.inputs
    if inputs.method != "reml" or inputs.refit or plan.perms is not None or plan.has_missing:
        return []
    return shared_patterns(len(plan.ids), [pat.n for pat in plan.patterns], [d.p for d in plan.designs],
                           [len(pat.phenotypes) for pat in plan.patterns], m,
                           len(marker_columns(inputs.genotypes)))


def _shared_group(plan, run, clock, g: int, label: str, marker_idx: np.ndarray,
                  K: np.ndarray | None, saved, shared: list[int], options, workers: int):
    """The shared context and tasks of a group's patterns ``shared`` (:func:`~lmmcore.pattern_dummies.shared_context`).

    Returns the executor's item (None when no trait is left) and the traits
    to scan with their own pattern's decomposition, by pattern index.
    """
    inputs = plan.inputs
    with clock("eigen"):
        eig = saved if saved is not None else decompose_kinship(K, check=False)
    with clock("null"):
        context, fits, leftover = shared_context(
            eig, label, plan.geno_rows, _all_design(plan), [(plan.patterns[i], plan.designs[i]) for i in shared],
            plan.pheno, plan.name_index, run.sink.needs_effects)
    del eig
    for k, cols, null in fits:
        run.nulls.append(NullFit(label=label, n=plan.patterns[shared[k]].n, phenotypes=cols, model=null,
                                 key=(g, shared[k])))
    leftover = {shared[k]: cols for k, cols in leftover.items()}
    if context is None:
        return None, leftover
    P = context.n_traits
    chunk, block = task_shape(len(marker_idx), P, inputs.chunk, options.budget, context.n,
                              context.p, len(marker_columns(inputs.genotypes)))
    if workers > 1 and block >= P:
        chunk = min(chunk, max(MIN_CHUNK, -(-len(marker_idx) // workers)))
    tasks = make_tasks(marker_idx, P, chunk, block)
    from .shared_scan import shared_scan_task  # here: only patterns that share a decomposition need it

    return (shared_scan_task, context, tasks, f"chr {label}" if label != "all" else "scan"), leftover


def _scan_group(plan, run, clock, label: str, marker_idx: np.ndarray,
                K: np.ndarray | None, pattern, design, options, workers: int = 1,
                saved=None, key: tuple[int, int] = (0, 0)) -> tuple[Callable, GroupContext, list[ScanTask], str]:
    """The context and tasks of one kinship group for the phenotypes of one missingness pattern.

    Decomposes the kinship of the pattern's individuals and fits the null
    model (:class:`GroupContext`), and cuts the markers and traits into tasks
    (at least ``workers`` of them when the markers allow chunks of
    :data:`~lmmcore.scan_tasks.MIN_CHUNK`, so that parallel workers share a
    group).
    """
    inputs = plan.inputs
    obs = pattern.observed
    cols = tuple(pattern.phenotypes)
    with clock("eigen"):
        if saved is not None and obs.all():
            eig = saved
        else:
            eig = decompose_kinship(K if obs.all() else K[np.ix_(obs, obs)], check=False)
    with clock("null"):
        rot = rotate(eig, plan.pheno.loc[obs, list(cols)].to_numpy(dtype=float), design.matrix)
        null = fit_null(rot, inputs.method, inputs.refit, cols, inputs.lrt_likelihood)
    run.nulls.append(NullFit(label=label, n=rot.n, phenotypes=cols, model=null, key=key))

    rotation = marker_rotation(eig.vectors, np.linalg.qr(rot.X)[0])
    del eig  # the eigenvectors live on inside ``rotation``; n x n memory once
    index = plan.name_index
    context = GroupContext(
        label=label, phenotypes=cols, target=tuple(index[c] for c in cols),
        rows=plan.geno_rows[obs], rotation=rotation, rot=rot, null=null, refit=inputs.refit,
        check_missing=plan.has_missing, perm_rows=plan.geno_rows if plan.perms is not None else None,
        perms=plan.perms[:, obs] if plan.perms is not None else None, effects=run.sink.needs_effects)
    del rotation
    chunk, block = task_shape(len(marker_idx), len(cols), inputs.chunk, options.budget, rot.n, rot.p,
                              len(marker_columns(inputs.genotypes)), inputs.refit)
    if workers > 1 and block >= len(cols):
        chunk = min(chunk, max(MIN_CHUNK, -(-len(marker_idx) // workers)))
    tasks = make_tasks(marker_idx, len(cols), chunk, block)
    return scan_task, context, tasks, (f"chr {label}" if label != "all" else "scan")


def _all_design(plan) -> np.ndarray:
    """The design of the covariates of all the scan's individuals (a complete pattern's, when there is one)."""
    for pattern, design in zip(plan.patterns, plan.designs):
        if pattern.observed.all():
            return design.matrix
    covar = plan.inputs.covariates
    covar = covar.loc[list(plan.ids)] if covar is not None else None
    return design_matrix(covar, len(plan.ids), warn=False).matrix
