"""Step 3 of the genome scan: LOD scores at the null h2 (R/qtl2's ``scan1`` with a kinship; EMMAX).

h is estimated once under the null (:mod:`lmmcore.nullmodel`; per chromosome
with leave-one-chromosome-out kinships) and held fixed at every marker. With
weights ``w_i = 1 / (h d_i + 1 - h)`` in the eigenbasis of K, both models are
weighted least squares problems and

    LOD = (n / 2) log10(RSS0 / RSS1),

the difference of their ML log-likelihoods over ``ln 10`` (the
log-determinant of the covariance cancels). The p-value is
``P(chi2_df >= 2 ln(10) LOD)``.

With ``W = diag(w)``, ``A = X*'WX*``, ``B_j = X*'WG~_j`` (``G~_j`` the
whitened marker columns of :mod:`lmmcore.markers`), ``r`` the null residual
and ``c_j = G~_j'Wr - B_j' A^{-1} X*'Wr``,

    S_j = G~_j'WG~_j - B_j' A^{-1} B_j,
    RSS1_j = RSS0 - c_j' S_j^{-1} c_j,

which are matrix products over the whole chunk plus batched q x q solves
(the partitioned-regression formulas; no n x n inverse or determinant).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np
from scipy import special

from .markers import MarkerBlock
from .wls import weights

__all__ = ["FixedScan", "fixed_scan", "fixed_scan_designs", "lod_statistic", "PAIR_BLOCK_VALUES"]

#: Values (float64) of the work space of one tile of markers in :func:`lod_statistic` (2 MiB:
#: the products of a tile stay in cache between the matrix products and the Cholesky factor).
PAIR_BLOCK_VALUES = 1 << 20


@dataclass(frozen=True)
class FixedScan:
    """The fixed-h2 tests of a block's markers for several phenotypes.

    Attributes
    ----------
    lod : ndarray, shape (m, P)
        NaN for a marker with no column left (see :mod:`lmmcore.markers`).
    beta, se : ndarray, shape (m, P, q), or None
        Effects on the genotype columns and their standard errors (None when
        not asked for).
    df : ndarray of int, shape (m,)
        Degrees of freedom of each marker's test (its columns left).
    p_value : ndarray, shape (m, P)
        ``P(chi2_df >= 2 ln(10) LOD)``, NaN with the LOD; computed when first
        read (a summary of the LODs never needs it).
    """

    lod: np.ndarray
    beta: np.ndarray | None
    se: np.ndarray | None
    df: np.ndarray

    @cached_property
    def p_value(self) -> np.ndarray:
        rank = self.df[:, None]
        valid = np.broadcast_to(rank > 0, self.lod.shape)
        stat = 2.0 * np.log(10.0) * np.nan_to_num(self.lod)
        return np.where(valid, special.chdtrc(np.maximum(rank, 1), stat), np.nan)


def fixed_scan(block: MarkerBlock, X: np.ndarray, d: np.ndarray, h0: np.ndarray, resid: np.ndarray,
               effects: bool = True, n_obs: int | None = None) -> FixedScan:
    """LOD, p-value and effects of every marker of a block at the null h2 of every phenotype.

    Parameters
    ----------
    block : MarkerBlock
    X : ndarray, shape (n, p)
        Rotated covariates ``X* = U'X``.
    d : ndarray, shape (n,)
        Eigenvalues of the kinship.
    h0 : ndarray, shape (P,)
        The null h2 of each phenotype (finite, below 1 for a singular kinship).
    resid : ndarray, shape (n, P)
        Rotated null residuals ``y* - X* b`` (any b: X is projected out again).
    effects : bool
        Also the effects and their standard errors (on the same Cholesky
        factor, by one back and one forward substitution; see
        :func:`lod_statistic`).
    n_obs : int, optional
        The observations of the LOD's factor ``n / 2`` (default: the rows
        of ``G``). With indicator columns for missing individuals among the
        covariates (:mod:`lmmcore.pattern_dummies`), the observed ones: the
        RSS are then the observed data's, and so is ``sigma2``'s divisor
        ``n - p - df`` (the p columns of X count the indicators).

    Returns
    -------
    FixedScan

    Notes
    -----
    See :func:`lod_statistic`: per tile of markers, three matrix products
    across markers and phenotypes (BLAS-3), then O(q^3) per marker and
    phenotype entry by entry on whole (markers x phenotypes) arrays: the
    Cholesky factor ``S = L L'``, ``z = L^{-1} c`` (``RSS0 - RSS1 = z'z``)
    and, with effects, ``u = L^{-T} z`` and ``M = L^{-1} T'``: effects
    ``T u`` and variances ``sigma2 diag(M'M)``. No inverse is formed.
    """
    G = block.G
    n, m, q = G.shape
    p = X.shape[1]
    n_lod = n if n_obs is None else int(n_obs)
    W = np.ascontiguousarray(weights(h0, d).T)  # (n, P)
    if not effects:
        rss0, explained = lod_statistic(G, block.pad, X, W, resid)
        return _lod_table(block, n_lod, rss0, explained)
    rss0, explained, beta, var = _statistics(G, block.pad, X, W, resid, T=block.T)
    rss1 = np.maximum(rss0[None, :] - explained, rss0[None, :] * np.finfo(float).eps)
    lod = 0.5 * n_lod * np.log10(rss0[None, :] / rss1)
    rank = block.rank[:, None]
    valid = np.broadcast_to(rank > 0, lod.shape)
    lod = np.where(valid, np.maximum(lod, 0.0), np.nan)
    sigma2 = rss1 / np.maximum(n - p - rank, 1)
    se = np.sqrt(np.maximum(var, 0.0) * sigma2[..., None])
    beta = np.where(valid[..., None], beta, np.nan)
    se = np.where(valid[..., None], se, np.nan)
    return FixedScan(lod=lod, beta=beta, se=se, df=block.rank)




def fixed_scan_designs(block: MarkerBlock, designs: Sequence[tuple[np.ndarray, int, int]], d: np.ndarray,
                       h0: np.ndarray, resid: np.ndarray, effects: bool = True,
                       pad: np.ndarray | None = None) -> FixedScan:
    """:func:`fixed_scan` of traits in consecutive groups with covariates of their own, in one pass over the block.

    Parameters
    ----------
    block : MarkerBlock
    designs : sequence of (X, n_obs, P)
        For each group of traits, in order: its rotated covariates (n, p_k),
        its observations (the LOD's ``n``; see ``n_obs`` of
        :func:`fixed_scan`) and its number of traits.
    d, h0, resid, effects
        As :func:`fixed_scan`, for all traits of all groups.
    pad : ndarray of bool, shape (m, q, P), optional
        Directions left out per marker and trait (default: ``block.pad`` for
        every trait). A marker with all its directions left out for a trait
        explains nothing of it (LOD 0).

    Returns
    -------
    FixedScan
        The LODs, effects and SEs of each group's traits are :func:`fixed_scan`'s
        with that group's covariates: the products of the markers' column
        pairs with the weights of all traits are shared (one matrix product),
        the covariates enter through each trait's whitened columns ``X^``
        (zero columns pad the groups with fewer covariates, which changes
        nothing).
    """
    G = block.G
    n, m, q = G.shape
    W = np.ascontiguousarray(weights(h0, d).T)  # (n, P)
    groups = [(X, int(P)) for X, _, P in designs]
    n_lod = np.concatenate([np.full(P, float(n_obs)) for _, n_obs, P in designs])
    p = np.concatenate([np.full(P, X.shape[1]) for X, _, P in designs])
    T = block.T if effects else None
    rss0, explained, beta, var = _statistics(G, block.pad if pad is None else pad, groups, W, resid, T=T)
    rss1 = np.maximum(rss0[None, :] - explained, rss0[None, :] * np.finfo(float).eps)
    lod = 0.5 * n_lod[None, :] * np.log10(rss0[None, :] / rss1)
    rank = block.rank[:, None]
    valid = np.broadcast_to(rank > 0, lod.shape)
    lod = np.where(valid, np.maximum(lod, 0.0), np.nan)
    if not effects:
        return FixedScan(lod=lod, beta=None, se=None, df=block.rank)
    sigma2 = rss1 / np.maximum(n - p[None, :] - rank, 1)
    se = np.sqrt(np.maximum(var, 0.0) * sigma2[..., None])
    beta = np.where(valid[..., None], beta, np.nan)
    se = np.where(valid[..., None], se, np.nan)
    return FixedScan(lod=lod, beta=beta, se=se, df=block.rank)


def _lod_table(block: MarkerBlock, n: int, rss0: np.ndarray, explained: np.ndarray) -> FixedScan:
    """LOD and p-value from ``RSS0`` (P,) and ``c' S^{-1} c`` (m, P)."""
    rss1 = np.maximum(rss0[None, :] - explained, rss0[None, :] * np.finfo(float).eps)
    lod = np.log10(rss0[None, :] / rss1)
    lod *= 0.5 * n
    rank = block.rank[:, None]
    valid = np.broadcast_to(rank > 0, lod.shape)
    lod = np.where(valid, np.maximum(lod, 0.0), np.nan)
    return FixedScan(lod=lod, beta=None, se=None, df=block.rank)


def lod_statistic(G: np.ndarray, pad: np.ndarray, X: np.ndarray, W: np.ndarray,
                  resid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The null RSS of every trait and ``c_j' S_j^{-1} c_j`` (what marker j explains of it).

    Parameters
    ----------
    G : ndarray, shape (n, m, q)
        Whitened marker columns (zero where ``pad``).
    pad : ndarray of bool, shape (m, q) or (m, q, P)
        Dropped columns (an identity entry on S's diagonal; per trait when 3-d).
    X : ndarray, shape (n, p)
        Rotated covariates.
    W : ndarray, shape (n, P)
        Each trait's weights ``1 / (h_t d + 1 - h_t)`` (a column per trait).
    resid : ndarray, shape (n, P)
        Rotated null residuals r (any b: X* is projected out again).

    Returns
    -------
    rss0 : ndarray, shape (P,)
        ``r'W r - v'v``.
    explained : ndarray, shape (m, P)
        ``c' S^{-1} c``, so that ``RSS1 = rss0 - explained``.

    Notes
    -----
    With ``A_t = X*'W_t X* = L_t L_t'`` and ``X^_t = X* L_t^{-T}`` (so that
    ``X^_t' W_t X^_t = I``), ``E_t = X^_t' W_t G~`` and ``v_t = X^_t' W_t r_t``:

        S_ab = G~_a' W_t G~_b - sum_i E_ia E_ib,   c_a = G~_a' W_t r_t - sum_i E_ia v_i,

    the partitioned-regression formulas of the module docstring with
    ``B' A^{-1} B = E'E``. The work across markers and traits is three
    matrix products (BLAS-3, the GIL released): the ``q (q + 1) / 2``
    products ``G~_a * G~_b`` (mq(q+1)/2 x n) times the (n x P) weights,
    and the columns ``G~`` (mq x n) times ``[W r, W X^]`` (n x (1 + p) P).
    Then, on whole (m, P) arrays, the q x q Cholesky factor ``S = L L'``
    column by column (each column's entries updated together) and
    ``z = L^{-1} c``: ``c' S^{-1} c = z'z``. A pivot that rounding makes
    non-positive is raised to ``eps`` times the largest diagonal entry.
    Temporary memory: ``n m q (q + 1) / 2`` values for the products, about
    ``(q (q + 1) / 2 + (1 + p) q) m P`` for the results.
    """
    rss0, explained, _, _ = _statistics(G, pad, X, W, resid)
    return rss0, explained


def _statistics(G: np.ndarray, pad: np.ndarray, X: np.ndarray, W: np.ndarray, resid: np.ndarray,
                T: np.ndarray | None = None):
    """:func:`lod_statistic`, and with ``T`` (m, q, q) the effects ``T S^{-1} c`` and ``diag(T S^{-1} T')``.

    Returns ``(rss0, explained, beta, var)``; ``beta`` and ``var`` are (m, P, q)
    (None without ``T``): the effects on the original columns and their
    variances over ``sigma2``, by back substitution ``u = L^{-T} z`` and
    forward substitution ``M = L^{-1} T'`` (``diag(T S^{-1} T') = sum_k M_k^2``)
    on the same factor, entry by entry.
    """
    n, m, q = G.shape
    P = W.shape[1]
    K = q * (q + 1) // 2
    WR = W * resid
    # the covariates whitened in each trait's weights, X^_t = X* L_t^{-T}; the right-hand side [W r, W X^]
    if isinstance(X, np.ndarray):
        p = X.shape[1]
        rhs = np.empty((n, 1 + p, P))
        _whitened_covariates(X, W, rhs[:, 1:])
    else:  # consecutive groups of traits with covariates of their own: zero columns pad the narrower ones
        p = max(Xk.shape[1] for Xk, _ in X)
        rhs = np.zeros((n, 1 + p, P))
        t0 = 0
        for Xk, Pk in X:
            _whitened_covariates(Xk, W[:, t0:t0 + Pk], rhs[:, 1:1 + Xk.shape[1], t0:t0 + Pk])
            t0 += Pk
    rhs[:, 0] = WR
    v = np.einsum("nit,nt->it", rhs[:, 1:], WR)  # X^' W r: zero up to rounding at the null fit's h2
    rss0 = np.einsum("nt,nt->t", WR, resid) - np.einsum("it,it->t", v, v)
    rhs[:, 1:] *= W[:, None, :]
    rhs = rhs.reshape(n, (1 + p) * P)  # one matrix product per tile (thin products run slowly on BLAS threads)
    explained = np.empty((m, P))
    beta = var = None
    # markers in tiles whose products stay in cache: values per marker ~ K n + (K + (1 + p) q) P (+ effects)
    per_marker = K * n + (K + (1 + p) * q + (q * q + q if T is not None else 0)) * P
    step = int(max(1, min(m, PAIR_BLOCK_VALUES // per_marker)))
    shapes = [(K, n), (q, n), (K, P), (1 + p, q, P)]  # the work space, a tile's markers next to last
    if T is not None:
        shapes += [(q, P), (q, q, P)]
        beta, var = np.empty((m, P, q)), np.empty((m, P, q))
    work = [np.empty(step * int(np.prod(sh))) for sh in shapes]
    product = np.empty(step * q * (1 + p) * P)
    for s0 in range(0, m, step):
        s1 = min(m, s0 + step)
        b = s1 - s0
        views = [w[: b * int(np.prod(sh))].reshape(sh[:-1] + (b, sh[-1])) for w, sh in zip(work, shapes)]
        fx = None if T is None else (T[s0:s1], *views[4:], beta[s0:s1], var[s0:s1])
        _tile_statistic(G[:, s0:s1].transpose(2, 1, 0), pad[s0:s1], W, rhs, v, *views[:4], explained[s0:s1], fx,
                        product=product[: b * q * (1 + p) * P].reshape(q * b, (1 + p) * P))
    return rss0, explained, beta, var


def _whitened_covariates(X: np.ndarray, W: np.ndarray, out: np.ndarray) -> None:
    """``X^_t = X* L_t^{-T}`` with ``X*'W_t X* = L_t L_t'`` for every trait (column of W), into ``out`` (n, p, P)."""
    n, p = X.shape
    P = W.shape[1]
    XX = (X[:, :, None] * X[:, None, :]).reshape(n, p * p)
    A = (W.T @ XX).reshape(P, p, p)
    Linv = np.linalg.inv(np.linalg.cholesky(A))  # (P, p, p)
    out[...] = (X @ Linv.reshape(P * p, p).T).reshape(n, P, p).transpose(0, 2, 1)


def _tile_statistic(Gq: np.ndarray, pad: np.ndarray, W: np.ndarray, rhs: np.ndarray, v: np.ndarray,
                    pairs: np.ndarray, cols: np.ndarray, S: np.ndarray, CE: np.ndarray, out: np.ndarray,
                    effects: tuple | None = None, *, product: np.ndarray) -> None:
    """:func:`lod_statistic` for a tile of b markers, into ``out`` (b, P); ``pairs``, ``cols``, ``S``, ``CE`` are work space.

    ``Gq`` (q, b, n) holds the tile's columns (a view of ``G``, copied into ``cols``), ``rhs`` = ``[W r, W X^]``
    (n, (1 + p) P) and ``v = X^' W r`` (p, P); ``product`` (q b, (1 + p) P) is work space. ``S`` (q (q + 1) / 2, b, P)
    holds S's lower triangle column by column (column k: entries
    (k..q-1, k)) and is overwritten by the Cholesky factor; ``CE``
    (1 + p, q, b, P) holds ``c = G~'W r`` and ``E = X^'W G~``. Every entry is
    a contiguous (b, P) array, so each step below is one pass over whole
    entries.
    """
    q, b, n = Gq.shape
    P = W.shape[1]
    padq = pad.T[:, :, None] if pad.ndim == 2 else pad.transpose(1, 0, 2)  # (q, b, 1 or P)
    off = np.concatenate([[0], np.cumsum(np.arange(q, 0, -1))])
    np.copyto(cols, Gq)
    for k in range(q):
        np.multiply(cols[k:], cols[k], out=pairs[off[k]:off[k + 1]])
    np.matmul(pairs.reshape(-1, n), W, out=S.reshape(-1, P))
    np.matmul(cols.reshape(q * b, n), rhs, out=product)
    np.copyto(CE, product.reshape(q, b, -1, P).transpose(2, 0, 1, 3))  # each entry a contiguous (b, P) array
    c, E = CE[0], CE[1:]  # (q, b, P): G~'W r, then L^{-1} c in place; (p, q, b, P): X^'W G~
    for i, e in enumerate(E):
        c -= e * v[i]
    diag = S[off[:-1]]
    for e in E:
        diag -= e * e
    diag += padq
    floor = diag.max(axis=0)
    floor *= np.finfo(float).eps
    floor += np.finfo(float).tiny
    np.copyto(c, 0.0, where=padq)
    out[...] = 0.0
    for k in range(q):
        col = S[off[k]:off[k + 1]]  # (q - k, b, P): entries (k..q-1, k) of S, then of L
        for e in E:
            col -= e[k:] * e[k]
        for j in range(k):
            Lj = S[off[j] + (k - j):off[j + 1]]  # entries (k..q-1, j) of L
            col -= Lj * Lj[0]
        col[0] += padq[k]
        inv = np.maximum(col[0], floor)
        np.sqrt(inv, out=inv)
        np.reciprocal(inv, out=inv)
        zk = c[k]
        zk *= inv
        if k + 1 < q:
            col[1:] *= inv
            c[k + 1:] -= col[1:] * zk
        out += zk * zk
        if effects is not None:
            effects[1][k] = inv  # 1 / L_kk
    if effects is not None:
        _tile_effects(S, c, off, *effects)


def _tile_effects(L: np.ndarray, z: np.ndarray, off: np.ndarray, T: np.ndarray, invdiag: np.ndarray,
                  M: np.ndarray, beta: np.ndarray, var: np.ndarray) -> None:
    """Effects and their variances over sigma2 from a tile's Cholesky factor (see :func:`_statistics`).

    ``L`` packed as in :func:`_tile_statistic` (below the diagonal; ``invdiag``
    holds ``1 / L_kk``), ``z = L^{-1} c`` (q, b, P), ``T`` (b, q, q); ``M``
    (q, q, b, P) is work space. Writes ``beta`` and ``var``, (b, P, q).
    """
    q = z.shape[0]
    u = z  # back substitution in place: u = L^{-T} z
    for k in range(q - 1, -1, -1):
        if k + 1 < q:
            u[k] -= (L[off[k] + 1:off[k + 1]] * u[k + 1:]).sum(axis=0)
        u[k] *= invdiag[k]
    Tt = T.transpose(2, 1, 0)[:, :, :, None]  # (k, a, b, 1): T_ak
    # forward substitution: row k of M = L^{-1} T' is (T'_k - sum_{j<k} L_kj M_j) / L_kk
    for k in range(q):
        Mk = M[k]
        np.multiply(Tt[k], invdiag[k], out=Mk)
        for j in range(k):
            Mk -= M[j] * (L[off[j] + (k - j)] * invdiag[k])
    np.einsum("kabP,kabP->bPa", M, M, out=var)
    np.einsum("bak,kbP->bPa", T, u, out=beta)
