"""The task of a kinship group whose missingness patterns share one rotation: whiten once, test per pattern.

With indicator covariates for missing individuals (:mod:`lmmcore.pattern_dummies`)
every pattern of a group is fitted on all n individuals, in the basis of the
one decomposition ``K = U D U'``. A task (a chunk of markers x a block of
traits, :mod:`lmmcore.scan_tasks`) then:

1. rotates the chunk once, projects out the covariates of all individuals
   (``Q0``, a basis of ``U'X_all``) and whitens each marker once:
   ``R0 = (I - Q0 Q0') U'G``, ``G~ = R0 T0`` with ``G~'G~ = I`` (as
   :func:`lmmcore.markers.prepare_block` does for one pattern);
2. tests the chunk for the traits of every pattern of its block at once
   (:func:`lmmcore.fixed_scan.fixed_scan_designs`): the same ``G~``, the
   products of its column pairs with the weights of all traits shared, each
   trait with its pattern's covariates and indicators ``X~`` and
   ``n_obs = n_O``.

Why one whitening serves every pattern
--------------------------------------
The fixed-h2 statistics project the covariates out again with the weights
of each trait, ``S = G'WG - G'WX (X'WX)^{-1} X'WG``, which does not change
when G changes by columns in the span of X; and the LOD and the effects on
the genotype columns (``T u``) do not depend on the basis T of a marker's
columns. So the pattern's own whitening (of ``R = (I - BB') R0``, B the
basis of what its indicators add, :func:`lmmcore.pattern_dummies.indicator_basis`)
is not needed, provided the marker keeps all its directions on the
pattern's individuals and ``G~`` stays well conditioned there. In whitened
coordinates the pattern's Gram matrix is ``I - D'D`` with ``D = B'G~``
(r x q per marker): its smallest eigenvalue is at least ``1 - ||D||_F^2``.
A marker is tested on the shared ``G~`` when it has all q directions on all
individuals, ``1 - ||D||_F^2 >= WELL_CONDITIONED`` (at most about one digit
lost), and its smallest eigenvalue on the pattern's individuals, at least
``(1 - ||D||_F^2) lambda_min(R0'R0)``, is far (1e4 times) above the rank
threshold of :func:`~lmmcore.markers.prepare_block` (``RANK_TOLERANCE`` times
the marker's largest raw sum of squares on those individuals). Every other
marker of the chunk (monomorphic or collinear on the pattern's individuals,
its variation mostly on the missing ones, or rank deficient) is whitened on
the pattern's own (:func:`own_block`): the same flags, ranks and numbers as
the pattern's own decomposition gives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .fixed_scan import FixedScan, fixed_scan, fixed_scan_designs
from .genotypes import Genotypes
from .markers import (
    FLAG_COLLINEAR,
    FLAG_MONOMORPHIC,
    FLAG_RANK_DEFICIENT,
    RANK_TOLERANCE,
    MarkerBlock,
    marker_array,
)
from .pattern_dummies import DummyPattern, SharedContext
from .scan_tasks import ScanPiece, ScanPieces, ScanTask, TaskResult, block_null

__all__ = ["SharedBlock", "shared_block", "own_block", "own_markers", "pattern_tests", "shared_scan_task",
           "WELL_CONDITIONED"]

#: A marker is tested on the shared whitening when the smallest eigenvalue of its Gram matrix on a
#: pattern's individuals, relative to all individuals', is at least this (module docstring).
WELL_CONDITIONED = 0.1

#: The margin above the rank threshold (module docstring).
RANK_MARGIN = 1e4


@dataclass(frozen=True)
class SharedBlock:
    """A chunk rotated, projected and whitened once for all patterns of a group.

    Attributes
    ----------
    block : MarkerBlock
        ``G~ = R0 T0`` and its ranks and flags on all individuals.
    lam_min : ndarray, shape (m,)
        The smallest eigenvalue of ``R0_j'R0_j`` (each marker's q x q Gram).
    C : ndarray, shape (p0, m q)
        ``Q0'U'G``: the coordinates of the columns on the covariates' basis.
    ss : ndarray, shape (m q,)
        Each column's raw sum of squares over all individuals.
    raw : ndarray, shape (n, m, q)
        The chunk's genotype columns.
    """

    block: MarkerBlock
    lam_min: np.ndarray
    C: np.ndarray
    ss: np.ndarray
    raw: np.ndarray


def _whiten(R: np.ndarray, ref: np.ndarray, raw: np.ndarray) -> tuple[MarkerBlock, np.ndarray]:
    """Whiten each marker's columns of ``R`` (n, m q); ``ref`` (m,) the raw sums of squares of the rank rule.

    As :func:`lmmcore.markers.prepare_block` (no missing values here); ``raw``
    (the rows to look at, (n', m, q)) decides monomorphic or collinear for a
    marker with no direction left. Returns the block and each marker's
    smallest eigenvalue of ``R_j'R_j``. ``R`` is not modified.
    """
    n = R.shape[0]
    m, q = raw.shape[1], raw.shape[2]
    threshold = RANK_TOLERANCE * np.maximum(ref, np.finfo(float).tiny)
    if q == 1:
        lam = np.einsum("ij,ij->j", R, R)
        keep = lam > threshold
        scale = np.where(keep, 1.0 / np.sqrt(np.where(keep, lam, 1.0)), 0.0)
        G = (R * scale).reshape(n, m, 1)
        T = scale.reshape(m, 1, 1)
        keep = keep[:, None]
        lam_min = lam
    else:
        R3 = R.reshape(n, m, q)
        gram = np.matmul(R3.transpose(1, 2, 0), R3.transpose(1, 0, 2))
        lam, vec = np.linalg.eigh(gram)
        keep = lam > threshold[:, None]
        inv_sqrt = np.where(keep, 1.0 / np.sqrt(np.where(keep, lam, 1.0)), 0.0)
        T = vec * inv_sqrt[:, None, :]
        G = np.einsum("nma,mab->nmb", R3, T, optimize=True)
        lam_min = lam[:, 0]
    rank = keep.sum(axis=1)
    flag = np.full(m, "", dtype=object)
    flag[(rank > 0) & (rank < q)] = FLAG_RANK_DEFICIENT
    empty = np.flatnonzero(rank == 0)
    if empty.size:
        cols3 = raw[:, empty, :]
        constant = np.all(cols3 == cols3[:1], axis=(0, 2))
        flag[empty] = np.where(constant, FLAG_MONOMORPHIC, FLAG_COLLINEAR)
    return MarkerBlock(G=G, T=T, pad=~keep, rank=rank, flag=flag, n_imputed=0), lam_min


def shared_block(raw: np.ndarray, rotation: np.ndarray) -> SharedBlock:
    """Step 1 of the module docstring: ``RC = rotation @ G`` gives ``R0`` and ``C = Q0'U'G``.

    The rank rule is :func:`~lmmcore.markers.prepare_block`'s on all
    individuals (``||R0_a||^2 + ||C_a||^2`` is the raw sum of squares).
    """
    n, m, q = raw.shape
    flat = raw.reshape(n, m * q)
    RC = rotation @ flat
    R0, C = RC[:n], RC[n:]
    ss = np.einsum("ij,ij->j", R0, R0) + np.einsum("ij,ij->j", C, C)
    block, lam_min = _whiten(R0, ss.reshape(m, q).max(axis=1), raw)
    return SharedBlock(block=block, lam_min=lam_min, C=C, ss=ss, raw=raw)


def own_block(raw: np.ndarray, markers: np.ndarray, rotation: np.ndarray, pattern: DummyPattern) -> MarkerBlock:
    """The markers ``markers`` (positions in the chunk) whitened on the pattern's individuals.

    The columns with their rows M set to 0 (the indicators absorb those
    rows), rotated and projected: ``R = (I - BB') (I - Q0 Q0') U' G_O``, the
    rotated observed part of each marker with the pattern's covariates
    projected out. Its Gram matrix is the observed data's and its rounding
    is relative to the observed values (a marker that is 0 on every observed
    individual gives exactly 0), so the whitening, rank and flags are those
    of :func:`lmmcore.markers.prepare_block` on the pattern's own
    decomposition.
    """
    n, q = raw.shape[0], raw.shape[2]
    sub = np.array(raw[:, markers, :], dtype=float)
    sub[pattern.missing] = 0.0
    flat = sub.reshape(n, -1)
    R = rotation[:n] @ flat
    B = pattern.B
    if B.shape[1]:
        R -= B @ (B.T @ R)
    ref = np.einsum("ij,ij->j", flat, flat).reshape(markers.size, q).max(axis=1)
    observed = np.setdiff1d(np.arange(n), pattern.missing, assume_unique=True)
    block, _ = _whiten(R, ref, sub[observed])
    return block


def pattern_tests(shared: SharedBlock, rotation: np.ndarray, patterns: list[tuple[DummyPattern, slice]],
                  d: np.ndarray, h2: np.ndarray, resid: np.ndarray,
                  effects: bool) -> list[tuple[FixedScan, np.ndarray, np.ndarray]]:
    """Step 2 of the module docstring for the traits of several patterns: ``(tests, flags, ranks)`` of each.

    Parameters
    ----------
    shared : SharedBlock
    rotation : ndarray
        The context's marker rotation (for the markers whitened on a pattern's own).
    patterns : list of (DummyPattern, slice)
        Each pattern and its traits (a slice of the pattern's), in order.
    d : ndarray
        The kinship's eigenvalues.
    h2, resid : ndarray
        The null h2 (P,) and rotated null residuals (n, P) of all those traits, in order.
    effects : bool

    Notes
    -----
    One :func:`lmmcore.fixed_scan.fixed_scan_designs` for all traits with
    the same number of covariates (the products of the markers' column pairs
    with the weights are shared); the
    markers a pattern whitens on its own (:func:`own_markers`) are left out
    of it for that pattern's traits and tested by
    :func:`lmmcore.fixed_scan.fixed_scan` on :func:`own_block`.
    """
    block = shared.block
    sizes = [sl.stop - sl.start for _, sl in patterns]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    own = [own_markers(shared, pat) for pat, _ in patterns]
    pad = None
    if any(o.size for o in own):
        m, q = block.pad.shape
        pad = np.repeat(block.pad[:, :, None], int(bounds[-1]), axis=2)
        for k, o in enumerate(own):
            pad[o, :, bounds[k]:bounds[k + 1]] = True  # tested on their own whitening below
    # one pass per number of covariates (a trait pays for its own indicators, not for the widest pattern's)
    widths = sorted({pat.X.shape[1] for pat, _ in patterns})
    results = {}
    for width in widths:
        ks = [k for k, (pat, _) in enumerate(patterns) if pat.X.shape[1] == width]
        idx = np.concatenate([np.arange(bounds[k], bounds[k + 1]) for k in ks])
        designs = [(patterns[k][0].X, patterns[k][0].n_obs, sizes[k]) for k in ks]
        fixed = fixed_scan_designs(block, designs, d, h2[idx], resid[:, idx], effects=effects,
                                   pad=None if pad is None else pad[:, :, idx])
        start = 0
        for k in ks:
            results[k] = (fixed, slice(start, start + sizes[k]))
            start += sizes[k]
    out = []
    for k, (pat, _) in enumerate(patterns):
        fixed, cols = results[k]
        lod = fixed.lod[:, cols]
        beta = se = None
        if effects:
            beta, se = fixed.beta[:, cols], fixed.se[:, cols]
        rank, flag = block.rank, block.flag
        bad = own[k]
        if bad.size:
            ob = own_block(shared.raw, bad, rotation, pat)
            own_cols = slice(int(bounds[k]), int(bounds[k + 1]))
            part = fixed_scan(ob, pat.X, d, h2[own_cols], resid[:, own_cols], effects=effects, n_obs=pat.n_obs)
            lod = lod.copy()
            lod[bad] = part.lod
            if effects:
                beta, se = beta.copy(), se.copy()
                beta[bad], se[bad] = part.beta, part.se
            rank, flag = rank.copy(), flag.copy()
            rank[bad], flag[bad] = ob.rank, ob.flag
        out.append((FixedScan(lod=lod, beta=beta, se=se, df=rank), flag, rank))
    return out


def own_markers(shared: SharedBlock, pattern: DummyPattern) -> np.ndarray:
    """The chunk's markers that the pattern tests on its own whitening (the rule of the module docstring)."""
    if pattern.missing.size == 0:
        return np.empty(0, dtype=int)
    block, raw = shared.block, shared.raw
    n, m, q = raw.shape
    rows_m = raw.reshape(n, m * q)[pattern.missing]
    ref = (shared.ss - np.einsum("ij,ij->j", rows_m, rows_m)).reshape(m, q).max(axis=1)
    if pattern.B.shape[1]:
        # D = B'G~ = S F'G~, and F'G~ = rows M of U G~ = rows M of (G - U Q0 C) T0: no product over n
        H = pattern.S @ (rows_m - pattern.QM @ shared.C)
        D = np.einsum("rma,mab->rmb", H.reshape(-1, m, q), block.T)
        frob = np.einsum("rmb,rmb->m", D, D)
    else:
        frob = np.zeros(m)
    well = 1.0 - frob
    good = (block.rank == q) & (well >= WELL_CONDITIONED) & (
        well * shared.lam_min > RANK_MARGIN * RANK_TOLERANCE * ref)
    return np.flatnonzero(~good)


def shared_scan_task(context: SharedContext, genotypes: Genotypes, task: ScanTask) -> TaskResult:
    """Do one task of a shared group: rotate and whiten the chunk once, test it for every pattern of the block.

    Parameters
    ----------
    context : SharedContext
    genotypes : Genotypes
        The scan's genotypes (read through ``context.rows``; no missing values).
    task : ScanTask
        Its traits ``start:stop`` count the patterns' traits one after another.

    Returns
    -------
    TaskResult
        ``piece`` is a :class:`~lmmcore.scan_tasks.ScanPieces`: one piece per
        pattern with traits in the block. ``n_markers`` counts the chunk once
        for every pattern whose first trait is in the block (each pattern's
        markers once in all).

    Notes
    -----
    Pure, as :func:`lmmcore.scan_tasks.scan_task`.
    """
    seconds = dict.fromkeys(("rotate", "scan", "refit", "permute"), 0.0)
    mk = task.markers
    t0 = time.perf_counter()
    shared = shared_block(marker_array(genotypes, context.rows, mk), context.rotation)
    seconds["rotate"] += time.perf_counter() - t0
    t1 = time.perf_counter()
    chosen, nulls = [], []
    counted = 0
    for pat in context.patterns:
        lo, hi = max(task.start, pat.start), min(task.stop, pat.start + pat.n_traits)
        if lo >= hi:
            continue
        counted += int(task.start <= pat.start < task.stop)
        traits = slice(lo - pat.start, hi - pat.start)
        chosen.append((pat, traits))
        nulls.append(block_null(pat.null, traits, pat.n_traits))
    h2 = np.concatenate([null.h2_scan for null in nulls])
    resid = np.concatenate([null.resid for null in nulls], axis=1) if len(nulls) > 1 else nulls[0].resid
    tests = pattern_tests(shared, context.rotation, chosen, context.d, h2, resid, context.effects)
    parts = [ScanPiece(markers=mk, phenotypes=pat.phenotypes[traits], target=pat.target[traits],
                       label=context.label, n=pat.n_obs, h2=null.h2_scan, flag=flag, df=rank, fixed=fixed, exact=None)
             for (pat, traits), null, (fixed, flag, rank) in zip(chosen, nulls, tests)]
    seconds["scan"] += time.perf_counter() - t1
    return TaskResult(task=task, piece=ScanPieces(markers=mk, parts=tuple(parts)), max_lod=None, n_imputed=0,
                      n_exact=0, n_markers=len(mk) * counted, n_perm_scans=0, seconds=seconds)
