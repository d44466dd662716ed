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
own costs its decomposition, rotation and whitening and the products of the
markers' column pairs, about
``c_e n_O^3 + 2 n_O^2 m q + 4 n_O m q^2 + n_O m q (q + 1) / 2`` flops
(``c_e`` = :data:`EIGH_FLOPS`). Served by indicators, all of that is shared;
what it adds is the scan's products with its r weighted indicator columns,
``2 n m q r P`` flops weighed :data:`SCAN_WEIGHT` (with the entry-wise
steps that grow with them), and a null fit with ``p + r`` covariates, about
``n (p + r)^2`` flops per profile evaluation weighed :data:`NULL_EVALS`. A
group serves by indicators every pattern for which that is cheaper, when
their savings together exceed the shared decomposition and rotation
(``c_e n^3 + 2 n^2 m q``). Measured on 261 mice, 500 markers of 8 founders,
one complete trait and P traits missing the same r mice (wall seconds,
per-pattern / shared, a busy 2-core machine): r = 2: 1.7 (P = 1), 1.2
(P = 50); r = 5: 1.3 (P = 1), 0.94 (P = 50); r = 10: 1.5 (P = 1), 0.5
(P = 50); r = 20: 1.5 (P = 1), 0.6 (P = 20); r = 40: 0.74 (P = 1), 0.24
(P = 50). The model picks the shared path where it was faster (every
P = 1 up to r = 20, and r = 2 with P = 50) and the pattern's own where it
was slower: sporadic missing values (a few mice, few traits per pattern)
share; many traits that miss the same mice, or many missing mice, keep
their own decomposition.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd

from .eigen import Eigendecomposition, RotatedData
from .markers import marker_rotation
from .nullmodel import NullModel, fit_null_stacked

__all__ = [
    "DummyPattern",
    "SharedContext",
    "dummy_rotated",
    "shared_context",
    "shared_patterns",
    "indicator_basis",
    "take_null",
    "MODE",
    "EIGH_FLOPS",
    "SCAN_WEIGHT",
    "NULL_EVALS",
]

#: "auto": the cost model of the module docstring decides; "always": every eligible pattern is
#: served by indicators; "never": every pattern has its own decomposition (as before). For
#: comparisons and tests.
MODE = "auto"

#: An eigendecomposition of n individuals costs about this many n^3 flops of a matrix product
#: (LAPACK's divide and conquer ``eigh``, measured against OpenBLAS's GEMM: 27 at n = 261, 11 at
#: n = 500, 10 at n = 1000).
EIGH_FLOPS = 12.0

#: A flop of the scan's products with the weighted indicator columns (and its entry-wise steps)
#: costs this many of the rotation's GEMM (module docstring: fitted to the measurements there).
SCAN_WEIGHT = 3.0

#: Traits whose null fits share one h2 search (:func:`lmmcore.nullmodel.fit_null_stacked`; bounds
#: the memory of their sufficient statistics, ``(1 + p) n`` values per trait).
NULL_BLOCK = 512

#: Profile evaluations (grid, brackets, root, polish) of a null fit, times their overhead: each
#: costs about ``n (p + r)^2`` flops (module docstring: fitted to the measurements there).
NULL_EVALS = 2000.0


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
    B : ndarray, shape (n, r')
        An orthonormal basis of what the indicators add to the covariates of
        all individuals: ``span(X) = span(U'X_all) + span(B)``, ``B`` orthogonal
        to ``U'X_all`` (``r' <= r``; fewer when an indicator lies in that span).
    S : ndarray, shape (r', r)
        With ``F = (I - Q0 Q0') U'E_M``, ``B'x = S F'x``
        (:func:`indicator_basis`).
    QM : ndarray, shape (r, p0)
        The rows M of ``U Q0`` (Q0 the rotated covariates of all
        individuals): ``U Q0`` is an orthonormal basis of ``X_all``.
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
    B: np.ndarray
    S: np.ndarray
    QM: np.ndarray
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
    rotation : ndarray, shape (n + p, n)
        :func:`lmmcore.markers.marker_rotation`'s matrix of the kinship's
        eigenvectors and the basis of the covariates of all individuals
        (``X_all``, p columns): every chunk is rotated, projected and
        whitened with it once (:mod:`lmmcore.shared_scan`).
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
    def p(self) -> int:
        """The most covariates of a pattern, indicators included (the ``p`` of the tasks' memory bound)."""
        return max(pat.X.shape[1] for pat in self.patterns)

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


def shared_context(eig: Eigendecomposition, label: str, rows: np.ndarray, X_all: np.ndarray,
                   patterns: Sequence[tuple], pheno: pd.DataFrame, index: dict[str, int],
                   effects: bool = True) -> tuple[SharedContext | None, list, dict[int, tuple[str, ...]]]:
    """The REML null fits of the patterns with indicator covariates, and the context their tasks share.

    Parameters
    ----------
    eig : Eigendecomposition
        Of the kinship of all the scan's individuals.
    label : str
    rows : ndarray of int
        The genotype row of each of the scan's individuals.
    X_all : ndarray, shape (n, p)
        The design of the covariates of all the scan's individuals (full
        column rank). Each pattern's own design on its individuals, padded
        with zeros, spans with its indicators the same columns as ``X_all``
        with them (a column of ``X_all`` is the padded one plus indicators).
    patterns : sequence of (MissingnessPattern, Design)
        The patterns to serve and their designs (built on their observed individuals).
    pheno : DataFrame
        The phenotypes of the scan's individuals.
    index : dict
        Each phenotype's column among the scanned phenotypes.
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
    Q0 = np.linalg.qr(eig.vectors.T @ X_all)[0]
    values = pheno.to_numpy(dtype=float)  # once (a .loc per pattern costs more than its null fit)
    where = {name: j for j, name in enumerate(pheno.columns)}
    rots = []
    for pattern, design in patterns:
        obs = pattern.observed
        y = values[np.ix_(obs, [where[c] for c in pattern.phenotypes])]
        rots.append(dummy_rotated(eig, y, design.matrix, obs, design.constant_column))
    nulls = []
    for batch in _batches([rot.n_phenotypes for rot in rots], NULL_BLOCK):  # one h2 search per batch
        nulls += fit_null_stacked([rots[k] for k in batch], [patterns[k][0].phenotypes for k in batch])
    for k, (pattern, design) in enumerate(patterns):
        obs = pattern.observed
        cols = tuple(pattern.phenotypes)
        rot, null = rots[k], nulls[k]
        edge = null.h2 >= 1.0  # (NaN, not identifiable: scanned at h2 = 0, as on the pattern's own)
        if edge.any():
            leftover[k] = tuple(c for c, e in zip(cols, edge) if e)
            keep = np.flatnonzero(~edge)
            if keep.size == 0:
                continue
            null, cols = take_null(null, keep), tuple(cols[j] for j in keep)
        fits.append((k, cols, null))
        E = rot.X[:, design.p:]  # U'E_M: the rows M of U, transposed
        B, S = indicator_basis(Q0, E)
        kept.append(DummyPattern(phenotypes=cols, target=tuple(index[c] for c in cols),
                                 missing=np.flatnonzero(~obs), n_obs=pattern.n, X=rot.X, B=B, S=S,
                                 QM=E.T @ Q0, null=null, start=start))
        start += len(cols)
    if not kept:
        return None, fits, leftover
    context = SharedContext(label=label, rows=np.asarray(rows), rotation=marker_rotation(eig.vectors, Q0),
                            d=eig.values, patterns=tuple(kept), effects=effects)
    return context, fits, leftover


def _batches(sizes: Sequence[int], block: int) -> list[list[int]]:
    """Consecutive runs of items whose sizes add up to at most ``block`` (an item larger than it alone)."""
    out: list[list[int]] = []
    total = block
    for k, size in enumerate(sizes):
        if total + size > block:
            out.append([])
            total = 0
        out[-1].append(k)
        total += size
    return out


def indicator_basis(Q0: np.ndarray, E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An orthonormal basis of the part of the rotated indicators ``E`` off the columns ``Q0``, and its map.

    Parameters
    ----------
    Q0 : ndarray, shape (n, p)
        Orthonormal columns (the rotated covariates of all individuals).
    E : ndarray, shape (n, r)
        The rotated indicators, ``U'E_M`` (the rows M of U, transposed).

    Returns
    -------
    B : ndarray, shape (n, r')
        ``F = (I - Q0 Q0') E = V_F diag(s) W'`` (its singular value
        decomposition): the columns of ``V_F`` with ``s > 1e-8`` (an
        indicator in the span of the covariates, e.g. the only individual of
        a level, missing, adds nothing).
    S : ndarray, shape (r', r)
        ``diag(1 / s) W'`` on those: ``B'x = S F'x`` for every x.
    """
    if E.shape[1] == 0:
        return np.empty((E.shape[0], 0)), np.empty((0, 0))
    F = E - Q0 @ (Q0.T @ E)
    V, s, Wt = np.linalg.svd(F, full_matrices=False)
    keep = s > 1e-8
    return np.ascontiguousarray(V[:, keep]), Wt[keep] / s[keep, None]


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
        own = EIGH_FLOPS * float(no) ** 3 + 2.0 * no * no * mq + 4.0 * no * mq * q + no * mq * (q + 1) / 2.0
        dummy = SCAN_WEIGHT * 2.0 * n * mq * r * T + NULL_EVALS * n * float(pp + r) ** 2
        saving.append(own - dummy)
    chosen = [i for i, s in enumerate(saving) if s > 0]
    shared = EIGH_FLOPS * float(n) ** 3 + 2.0 * n * n * mq
    if all(n_obs[i] == n for i in chosen) or sum(saving[i] for i in chosen) <= shared:
        return []  # (a complete pattern alone is the per-pattern path)
    return chosen
