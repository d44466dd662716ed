"""Traits with different missing values share one decomposition and one marker rotation.

A trait observed on the individuals O and missing on M (``r = |M|``) is
fitted on all n individuals of the scan, with its missing values set to 0
and one *indicator covariate* ``e_i`` per missing individual (1 for i, 0
elsewhere):

    X~ = [X_O padded with zeros on the rows M,  E_M].

Every kinship is then decomposed once on all n individuals, every chunk of
markers rotated once (``U'G``), and every missingness pattern served from
them: the indicator columns absorb the rows M of the phenotype, of the
covariates and of every marker's columns, and the fit is exactly the one on
the observed individuals.

Why it is exact
---------------
Write ``V = h K + (1 - h) I`` (times v) in blocks O and M. Minimising over
the indicators' coefficients c, for any z = y - X b - G a,

    min_c (z - E c)' V^{-1} (z - E c) = z_O' V_OO^{-1} z_O,

because ``V^{-1} - V^{-1} E (E'V^{-1}E)^{-1} E'V^{-1}`` is ``V_OO^{-1}``
padded with zeros. So at any fixed h the generalised least squares fit of
the covariates (and of a marker's columns) is the observed data's: the same
coefficients, covariance and residual sums of squares ``RSS0``, ``RSS1``,
hence the fixed-h2 LOD ``(n_O / 2) log10(RSS0 / RSS1)`` with ``n_O``
(:func:`lmmcore.fixed_scan.fixed_scan`'s ``n_obs``) and the effects. The REML
profile of :mod:`lmmcore.likelihood` is the observed data's too: by the
Schur complement on the M block, ``log |V| + log |X~'V^{-1}X~| = log |V_OO| +
log |X_O'V_OO^{-1}X_O|``, its degrees of freedom are ``n - (p + r) = n_O - p``
and ``|X~'X~| = |X_O'X_O|`` (the blocks do not overlap). So the REML null h2
is the observed data's, and so is the profile log-likelihood at it. In the
rotated basis ``U'E_M`` is the rows M of U, transposed: no product.

ML is not served: its profile on the observed data needs
``log |V_OO| = log |V| + log |(V^{-1})_MM|``, a term of its own per h and
pattern; the scan fits ML per pattern as before.

Scope (:func:`shared_patterns`)
-------------------------------
The fixed-h2 scan with the REML null, without permutations, on genotypes
without missing values (their mean imputation is over each pattern's
individuals), and without ``refit``. Everything else runs per pattern
(:func:`lmmcore.scan.scan`'s path of one decomposition and rotation per
pattern), with the same results as before. A trait whose null h2 lies on
the boundary h2 = 1 is also scanned per pattern (the limit at h = 1 depends
on the null space of the kinship of its own individuals).

Which patterns: a cost model
----------------------------
With m markers of q columns, p covariates and P traits, a pattern on its
own costs its decomposition and rotation, about ``c_e n_O^3 + 2 n_O^2 m q``
flops (``c_e`` = :data:`EIGH_FLOPS`), plus its scan; served by indicators it
costs the projection of the shared rotated block on its ``p + r``
covariates, ``4 n (p + r) m q``, and the scan with r more covariates, of
which the extra work is ``2 n m q r P`` (the products with the weighted
indicator columns), weighed :data:`SCAN_WEIGHT` times a GEMM's flop (thin
products run below the speed of the rotation's). A group serves by
indicators every pattern for which that is cheaper, when their savings
together exceed the shared decomposition and rotation
(``c_e n^3 + 2 n^2 m q``). With a few traits per pattern this holds
up to about ``r (1 + 3 P) < n_O / 2``; many traits that share a pattern
with many missing individuals keep their own decomposition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd

from .eigen import Eigendecomposition, RotatedData
from .fixed_scan import fixed_scan
from .genotypes import Genotypes
from .markers import (
    FLAG_COLLINEAR,
    FLAG_MONOMORPHIC,
    FLAG_RANK_DEFICIENT,
    RANK_TOLERANCE,
    MarkerBlock,
    marker_array,
)
from .nullmodel import NullModel, fit_null
from .scan_tasks import ScanPiece, ScanPieces, ScanTask, TaskResult, block_null

__all__ = [
    "DummyPattern",
    "SharedContext",
    "dummy_rotated",
    "shared_context",
    "shared_patterns",
    "shared_scan_task",
    "pattern_block",
    "take_null",
    "MODE",
    "EIGH_FLOPS",
    "SCAN_WEIGHT",
]

#: "auto": the cost model of the module docstring decides; "always": every eligible pattern is
#: served by indicators; "never": every pattern has its own decomposition (as before). For
#: comparisons and tests.
MODE = "auto"

#: An eigendecomposition of n individuals costs about this many n^3 flops of a matrix product
#: (LAPACK's divide and conquer ``eigh``, measured against OpenBLAS's GEMM: 27 at n = 261, 11 at
#: n = 500, 10 at n = 1000).
EIGH_FLOPS = 12.0

#: A flop of the scan's thin products (the weighted indicator columns, P traits at a time) costs
#: this many of the rotation's GEMM.
SCAN_WEIGHT = 3.0


@dataclass(frozen=True)
class DummyPattern:
    """One missingness pattern served from the shared decomposition (picklable).

    Attributes
    ----------
    phenotypes : tuple of str
        Its traits (those scanned here), in the scan's order.
    target : tuple of int
        Their columns among all scanned phenotypes.
    missing : ndarray of int, shape (r,)
        Positions of its missing individuals among the scan's n.
    n_obs : int
        ``n_O = n - r``.
    X : ndarray, shape (n, p + r)
        Rotated covariates with the indicator columns, ``U'X~``.
    Q : ndarray, shape (n, p + r)
        An orthonormal basis of ``X``.
    null : NullModel
        The null fit of its traits (h2, residuals ``U'y~ - X b`` in the shared basis).
    start : int
        Where its traits begin among the context's traits.
    """

    phenotypes: tuple[str, ...]
    target: tuple[int, ...]
    missing: np.ndarray
    n_obs: int
    X: np.ndarray
    Q: np.ndarray
    null: NullModel
    start: int

    @property
    def n_traits(self) -> int:
        return len(self.phenotypes)


@dataclass(frozen=True)
class SharedContext:
    """What every task of one kinship group needs when its patterns share the rotation (picklable).

    Attributes
    ----------
    label : str
        ``"all"`` or the chromosome the LOCO kinship leaves out.
    rows : ndarray of int, shape (n,)
        Row in the genotypes of each of the scan's individuals.
    rotation : ndarray, shape (n, n)
        ``U'``, the kinship's eigenvectors as rows.
    d : ndarray, shape (n,)
        The kinship's eigenvalues.
    patterns : tuple of DummyPattern
        In the scan's order; their traits one after another.
    effects : bool
        Compute the effects and standard errors.
    """

    label: str
    rows: np.ndarray
    rotation: np.ndarray
    d: np.ndarray
    patterns: tuple[DummyPattern, ...]
    effects: bool = True

    @property
    def n(self) -> int:
        return int(self.rows.size)

    @property
    def n_traits(self) -> int:
        return sum(p.n_traits for p in self.patterns)

    @property
    def phenotypes(self) -> tuple[str, ...]:
        return tuple(name for p in self.patterns for name in p.phenotypes)


def dummy_rotated(eig: Eigendecomposition, y: np.ndarray, X: np.ndarray, observed: np.ndarray,
                  constant_column: int = -1) -> RotatedData:
    """The rotated traits and covariates of one pattern with indicator columns for its missing individuals.

    Parameters
    ----------
    eig : Eigendecomposition
        Of the kinship of all n individuals.
    y : ndarray, shape (n_O, T)
        The traits on the observed individuals.
    X : ndarray, shape (n_O, p)
        The pattern's design on the observed individuals (full column rank).
    observed : ndarray of bool, shape (n,)
    constant_column : int
        A constant column of X (the intercept), or -1: the fit centres the
        traits through it (any shift along a column of X~ leaves the profile
        unchanged).

    Returns
    -------
    RotatedData
        ``y* = U_O'y``, ``X* = [U_O'X, U_M']`` (n x (p + r)), the eigenvalues,
        and ``log |X~'X~| = log |X'X|``.

    Notes
    -----
    ``U_O`` and ``U_M`` are the rows O and M of the eigenvectors U: the
    rotation of a matrix that is zero on the rows M, and of the indicators.
    """
    U = eig.vectors
    obs = np.flatnonzero(observed)
    miss = np.flatnonzero(~np.asarray(observed, dtype=bool))
    UO = U[obs]
    y = np.asarray(y, dtype=float).reshape(obs.size, -1)
    X = np.asarray(X, dtype=float)
    Xs = np.empty((U.shape[0], X.shape[1] + miss.size))
    Xs[:, : X.shape[1]] = UO.T @ X
    Xs[:, X.shape[1]:] = U[miss].T
    chol = np.linalg.cholesky(X.T @ X)
    logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))
    value = float(X[0, constant_column]) if constant_column >= 0 else 1.0
    return RotatedData(UO.T @ y, Xs, eig.values, logdet, int(constant_column), value, 0, False)


def shared_context(eig: Eigendecomposition, label: str, rows: np.ndarray, patterns: Sequence[tuple],
                   pheno: pd.DataFrame, index: dict[str, int], lrt_likelihood: str = "full",
                   effects: bool = True) -> tuple[SharedContext | None, list, dict[int, tuple[str, ...]]]:
    """The REML null fits of the patterns with indicator covariates, and the context their tasks share.

    Parameters
    ----------
    eig : Eigendecomposition
        Of the kinship of all the scan's individuals.
    label : str
    rows : ndarray of int
        The genotype row of each of the scan's individuals.
    patterns : sequence of (MissingnessPattern, Design)
        The patterns to serve and their designs (built on their observed individuals).
    pheno : DataFrame
        The phenotypes of the scan's individuals.
    index : dict
        Each phenotype's column among the scanned phenotypes.
    lrt_likelihood : str
        Passed to :func:`lmmcore.nullmodel.fit_null` (no exact scan here).
    effects : bool

    Returns
    -------
    context : SharedContext or None
        None when no trait is left.
    fits : list of (k, phenotypes, NullModel)
        The null fit of the traits kept of pattern k (its position in ``patterns``).
    leftover : dict
        Pattern k -> its traits whose null h2 is 1: the limit at h = 1 depends on
        the null space of the kinship of the pattern's own individuals, so
        they are left to the pattern's own decomposition.
    """
    kept: list[DummyPattern] = []
    fits, leftover = [], {}
    start = 0
    for k, (pattern, design) in enumerate(patterns):
        obs = pattern.observed
        cols = tuple(pattern.phenotypes)
        rot = dummy_rotated(eig, pheno.loc[obs, list(cols)].to_numpy(dtype=float), design.matrix, obs,
                            design.constant_column)
        null = fit_null(rot, "reml", False, cols, lrt_likelihood)
        edge = null.h2 >= 1.0  # (NaN, not identifiable: scanned at h2 = 0, as on the pattern's own)
        if edge.any():
            leftover[k] = tuple(c for c, e in zip(cols, edge) if e)
            keep = np.flatnonzero(~edge)
            if keep.size == 0:
                continue
            null, cols = take_null(null, keep), tuple(cols[j] for j in keep)
        fits.append((k, cols, null))
        kept.append(DummyPattern(phenotypes=cols, target=tuple(index[c] for c in cols),
                                 missing=np.flatnonzero(~obs), n_obs=pattern.n, X=rot.X,
                                 Q=np.linalg.qr(rot.X)[0], null=null, start=start))
        start += len(cols)
    if not kept:
        return None, fits, leftover
    context = SharedContext(label=label, rows=np.asarray(rows), rotation=np.ascontiguousarray(eig.vectors.T),
                            d=eig.values, patterns=tuple(kept), effects=effects)
    return context, fits, leftover


def take_null(null: NullModel, keep: np.ndarray) -> NullModel:
    """The null model of the traits ``keep`` (indices) only."""
    keep = np.asarray(keep, dtype=int)
    cut = (lambda a: None if a is None else a[..., keep])
    return replace(null, h2=null.h2[keep], h2_scan=null.h2_scan[keep], sigma2=null.sigma2[keep],
                   loglik=null.loglik[keep], resid=np.ascontiguousarray(null.resid[:, keep]),
                   h2_ml=cut(null.h2_ml), loglik_ml=cut(null.loglik_ml))


def shared_patterns(n: int, n_obs: Sequence[int], p: Sequence[int], traits: Sequence[int], m: int, q: int,
                    mode: str | None = None) -> list[int]:
    """Which patterns of a kinship group to serve by indicators (the cost model of the module docstring).

    Parameters
    ----------
    n : int
        The scan's individuals.
    n_obs, p, traits : sequence of int
        Each pattern's observed individuals, covariates and traits.
    m, q : int
        The group's markers and columns per marker.
    mode : {"auto", "always", "never"}, optional
        Default :data:`MODE`.

    Returns
    -------
    list of int
        The patterns' indices (empty: every pattern on its own, as before).
    """
    mode = MODE if mode is None else mode
    k = len(n_obs)
    if mode == "never" or k == 0 or (k == 1 and n_obs[0] == n):
        return []
    if mode == "always":
        return list(range(k))
    mq = float(m) * q
    saving = []
    for no, pp, T in zip(n_obs, p, traits):
        r = n - no
        own = EIGH_FLOPS * float(no) ** 3 + 2.0 * no * no * mq
        dummy = 4.0 * n * (pp + r) * mq + SCAN_WEIGHT * 2.0 * n * mq * r * T
        saving.append(own - dummy)
    chosen = [i for i, s in enumerate(saving) if s > 0]
    shared = EIGH_FLOPS * float(n) ** 3 + 2.0 * n * n * mq
    if sum(saving[i] for i in chosen) <= shared:
        return []
    return chosen


def pattern_block(rotated: np.ndarray, ss_all: np.ndarray, raw: np.ndarray, pattern: DummyPattern) -> MarkerBlock:
    """A chunk's whitened columns for one pattern, from the chunk rotated once for all patterns.

    Parameters
    ----------
    rotated : ndarray, shape (n, m q)
        ``G* = U'G`` of all n individuals.
    ss_all : ndarray, shape (m q,)
        Each column's raw sum of squares over all n individuals.
    raw : ndarray, shape (n, m, q)
        The chunk's genotype columns (for the flags).
    pattern : DummyPattern

    Returns
    -------
    MarkerBlock
        As :func:`lmmcore.markers.prepare_block` of the pattern's own
        individuals: ``R = (I - QQ') G*`` with Q the basis of the covariates
        and indicators is the rotation of the observed part of the marker with
        the covariates projected out (zero on the rows M), so its Gram matrix,
        the whitening ``T``, the rank and the flags are the observed data's.

    Notes
    -----
    A direction is kept when its eigenvalue of ``R_j'R_j`` exceeds
    ``RANK_TOLERANCE`` times the marker's largest raw sum of squares over the
    observed individuals, ``||G_a||^2 - ||G_{M,a}||^2``, as
    :func:`~lmmcore.markers.prepare_block` does.
    """
    n, m, q = raw.shape
    Q = pattern.Q
    C = Q.T @ rotated
    R = rotated - Q @ C
    ss_cols = np.einsum("ij,ij->j", R, R)
    ss_obs = ss_all
    if pattern.missing.size:
        rows_m = raw.reshape(n, m * q)[pattern.missing]
        ss_obs = ss_all - np.einsum("ij,ij->j", rows_m, rows_m)
    ref = ss_obs.reshape(m, q).max(axis=1)
    threshold = RANK_TOLERANCE * np.maximum(ref, np.finfo(float).tiny)
    if q == 1:
        keep = ss_cols > threshold
        scale = np.where(keep, 1.0 / np.sqrt(np.where(keep, ss_cols, 1.0)), 0.0)
        R *= scale
        G = R.reshape(n, m, 1)
        T = scale.reshape(m, 1, 1)
        keep = keep[:, None]
    else:
        R3 = R.reshape(n, m, q)
        gram = np.einsum("nma,nmb->mab", R3, R3)
        lam, vec = np.linalg.eigh(gram)
        keep = lam > threshold[:, None]
        inv_sqrt = np.where(keep, 1.0 / np.sqrt(np.where(keep, lam, 1.0)), 0.0)
        T = vec * inv_sqrt[:, None, :]
        G = np.einsum("nma,mab->nmb", R3, T, optimize=True)
    rank = keep.sum(axis=1)
    flag = np.full(m, "", dtype=object)
    flag[(rank > 0) & (rank < q)] = FLAG_RANK_DEFICIENT
    empty = np.flatnonzero(rank == 0)
    if empty.size:
        observed = np.setdiff1d(np.arange(n), pattern.missing, assume_unique=True)
        cols3 = raw[np.ix_(observed, empty, np.arange(q))]
        constant = np.all(cols3 == cols3[:1], axis=(0, 2))
        flag[empty] = np.where(constant, FLAG_MONOMORPHIC, FLAG_COLLINEAR)
    return MarkerBlock(G=G, T=T, pad=~keep, rank=rank, flag=flag, n_imputed=0)


def shared_scan_task(context: SharedContext, genotypes: Genotypes, task: ScanTask) -> TaskResult:
    """Do one task of a shared group: rotate the chunk once, test it for every pattern of the trait block.

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
    Pure, as :func:`lmmcore.scan_tasks.scan_task`. Per pattern:
    :func:`pattern_block`, then :func:`lmmcore.fixed_scan.fixed_scan` with
    the pattern's covariates and indicators and ``n_obs = n_O``.
    """
    seconds = dict.fromkeys(("rotate", "scan", "refit", "permute"), 0.0)
    mk = task.markers
    t0 = time.perf_counter()
    raw = marker_array(genotypes, context.rows, mk)
    n, m, q = raw.shape
    flat = raw.reshape(n, m * q)
    rotated = context.rotation @ flat
    ss_all = np.einsum("ij,ij->j", flat, flat)
    seconds["rotate"] += time.perf_counter() - t0
    parts = []
    counted = 0
    for pat in context.patterns:
        lo, hi = max(task.start, pat.start), min(task.stop, pat.start + pat.n_traits)
        if lo >= hi:
            continue
        counted += int(task.start <= pat.start < task.stop)
        traits = slice(lo - pat.start, hi - pat.start)
        null = block_null(pat.null, traits, pat.n_traits)
        t1 = time.perf_counter()
        block = pattern_block(rotated, ss_all, raw, pat)
        t2 = time.perf_counter()
        fixed = fixed_scan(block, pat.X, context.d, null.h2_scan, null.resid, effects=context.effects,
                           n_obs=pat.n_obs)
        seconds["rotate"] += t2 - t1
        seconds["scan"] += time.perf_counter() - t2
        parts.append(ScanPiece(markers=mk, phenotypes=pat.phenotypes[traits], target=pat.target[traits],
                               label=context.label, n=pat.n_obs, h2=null.h2_scan, flag=block.flag,
                               df=block.rank, fixed=fixed, exact=None))
    return TaskResult(task=task, piece=ScanPieces(markers=mk, parts=tuple(parts)), max_lod=None, n_imputed=0,
                      n_exact=0, n_markers=len(mk) * counted, n_perm_scans=0, seconds=seconds)
