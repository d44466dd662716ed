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

import numpy as np
from scipy import special

from .markers import MarkerBlock, pad_identity, to_original_columns, weighted_gram
from .wls import weights

__all__ = ["FixedScan", "fixed_scan", "lod_statistic", "PAIR_BLOCK_VALUES"]

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
               effects: bool = True) -> FixedScan:
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
        Also the effects and their standard errors. Without them the LOD
        comes from the Cholesky factor ``S_j = L L'``, built entry by entry
        across all markers and phenotypes at once (``c' S^{-1} c = |L^{-1} c|^2``,
        no inverse; equal to the other way to rounding), which is faster
        for many phenotypes (:func:`_lod_only`).

    Returns
    -------
    FixedScan

    Notes
    -----
    Per chunk, the work across markers and phenotypes is matrix products
    (BLAS-3): ``G~'WR`` (mq x n times n x P), ``G~'WX*`` (mq x n times
    n x pP) and ``G~_a' diag(W) G~_b`` for each pair of columns a <= b (m x n
    times n x P); what is left is O(q^3 + p q^2) per marker and phenotype on
    q x q matrices, done on whole stacks of them.
    """
    G = block.G
    n, m, q = G.shape
    p = X.shape[1]
    P = h0.size
    W = np.ascontiguousarray(weights(h0, d).T)  # (n, P)
    if not effects:
        rss0, explained = lod_statistic(G, block.pad, X, W, resid)
        return _lod_table(block, n, rss0, explained)
    flat = G.reshape(n, m * q)
    WR = W * resid
    A = np.einsum("na,nb,nP->Pab", X, X, W)
    Ainv = np.linalg.inv(A)
    Xr = X.T @ WR  # (p, P): X'W r, zero up to rounding
    rss0 = np.einsum("nP,nP->P", WR, resid) - np.einsum("aP,Pab,bP->P", Xr, Ainv, Xr)
    c = (flat.T @ WR).reshape(m, q, P).transpose(0, 2, 1)  # (m, P, q)
    XW = (X[:, :, None] * W[:, None, :]).reshape(n, p * P)
    B = (flat.T @ XW).reshape(m, q, p, P).transpose(0, 3, 2, 1)  # (m, P, p, q)
    GWG = weighted_gram(G, W, by_column=True)  # (m, P, q, q)
    Bt = np.swapaxes(B, -1, -2)
    S = GWG - Bt @ (Ainv[None] @ B)
    S = S + pad_identity(block.pad)[:, None]
    c = c - (Bt @ (Ainv @ Xr.T[:, :, None])[None])[..., 0]
    c = np.where(block.pad[:, None, :], 0.0, c)
    Sinv = np.linalg.inv(S)
    u = (Sinv @ c[..., None])[..., 0]
    explained = np.einsum("mPq,mPq->mP", c, u)
    rss1 = np.maximum(rss0[None, :] - explained, rss0[None, :] * np.finfo(float).eps)
    lod = 0.5 * n * np.log10(rss0[None, :] / rss1)
    rank = block.rank[:, None]
    valid = np.broadcast_to(rank > 0, lod.shape)
    lod = np.where(valid, np.maximum(lod, 0.0), np.nan)
    sigma2 = rss1 / np.maximum(n - p - rank, 1)
    beta, se = to_original_columns(block.T, u, Sinv, sigma2)
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
    pad : ndarray of bool, shape (m, q)
        Dropped columns (an identity entry on S's diagonal).
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
    n, m, q = G.shape
    p, P = X.shape[1], W.shape[1]
    K = q * (q + 1) // 2
    WR = W * resid
    # the covariates whitened in each trait's weights, X^_t = X* L_t^{-T}; the right-hand side [W r, W X^]
    XX = (X[:, :, None] * X[:, None, :]).reshape(n, p * p)
    A = (W.T @ XX).reshape(P, p, p)
    Linv = np.linalg.inv(np.linalg.cholesky(A))  # (P, p, p)
    rhs = np.empty((n, 1 + p, P))
    rhs[:, 0] = WR
    rhs[:, 1:] = (X @ Linv.reshape(P * p, p).T).reshape(n, P, p).transpose(0, 2, 1)  # X^ (n, p, P)
    v = np.einsum("nit,nt->it", rhs[:, 1:], WR)  # X^' W r: zero up to rounding at the null fit's h2
    rss0 = np.einsum("nt,nt->t", WR, resid) - np.einsum("it,it->t", v, v)
    rhs[:, 1:] *= W[:, None, :]
    rhs = np.ascontiguousarray(rhs.transpose(1, 0, 2))  # (1 + p, n, P)
    explained = np.empty((m, P))
    # markers in tiles whose products stay in cache: values per marker ~ K n + (K + (1 + p) q) P
    step = int(max(1, min(m, PAIR_BLOCK_VALUES // (K * n + (K + (1 + p) * q) * P))))
    shapes = ((K, n), (q, n), (K, P), (1 + p, q, P))  # the work space, a tile's markers next to last
    work = [np.empty(step * int(np.prod(sh))) for sh in shapes]
    for s0 in range(0, m, step):
        s1 = min(m, s0 + step)
        b = s1 - s0
        views = [w[: b * int(np.prod(sh))].reshape(sh[:-1] + (b, sh[-1])) for w, sh in zip(work, shapes)]
        _tile_statistic(G[:, s0:s1].transpose(2, 1, 0), pad[s0:s1], W, rhs, v, *views, explained[s0:s1])
    return rss0, explained


def _tile_statistic(Gq: np.ndarray, pad: np.ndarray, W: np.ndarray, rhs: np.ndarray, v: np.ndarray,
                    pairs: np.ndarray, cols: np.ndarray, S: np.ndarray, CE: np.ndarray, out: np.ndarray) -> None:
    """:func:`lod_statistic` for a tile of b markers, into ``out`` (b, P); ``pairs``, ``cols``, ``S``, ``CE`` are work space.

    ``Gq`` (q, b, n) holds the tile's columns (a view of ``G``, copied into ``cols``), ``rhs`` = ``[W r, W X^]``
    (1 + p, n, P) and ``v = X^' W r`` (p, P). ``S`` (q (q + 1) / 2, b, P)
    holds S's lower triangle column by column (column k: entries
    (k..q-1, k)) and is overwritten by the Cholesky factor; ``CE``
    (1 + p, q, b, P) holds ``c = G~'W r`` and ``E = X^'W G~``. Every entry is
    a contiguous (b, P) array, so each step below is one pass over whole
    entries.
    """
    q, b, n = Gq.shape
    P = W.shape[1]
    off = np.concatenate([[0], np.cumsum(np.arange(q, 0, -1))])
    np.copyto(cols, Gq)
    for k in range(q):
        np.multiply(cols[k:], cols[k], out=pairs[off[k]:off[k + 1]])
    np.matmul(pairs.reshape(-1, n), W, out=S.reshape(-1, P))
    flat = cols.reshape(q * b, n)
    for i in range(rhs.shape[0]):
        np.matmul(flat, rhs[i], out=CE[i].reshape(q * b, P))
    c, E = CE[0], CE[1:]  # (q, b, P): G~'W r, then L^{-1} c in place; (p, q, b, P): X^'W G~
    for i, e in enumerate(E):
        c -= e * v[i]
    diag = S[off[:-1]]
    for e in E:
        diag -= e * e
    diag += pad.T[:, :, None]
    floor = diag.max(axis=0)
    floor *= np.finfo(float).eps
    floor += np.finfo(float).tiny
    c[pad.T] = 0.0
    out[...] = 0.0
    for k in range(q):
        col = S[off[k]:off[k + 1]]  # (q - k, b, P): entries (k..q-1, k) of S, then of L
        for e in E:
            col -= e[k:] * e[k]
        for j in range(k):
            Lj = S[off[j] + (k - j):off[j + 1]]  # entries (k..q-1, j) of L
            col -= Lj * Lj[0]
        col[0] += pad[:, k, None]
        inv = np.maximum(col[0], floor)
        np.sqrt(inv, out=inv)
        np.reciprocal(inv, out=inv)
        zk = c[k]
        zk *= inv
        if k + 1 < q:
            col[1:] *= inv
            c[k + 1:] -= col[1:] * zk
        out += zk * zk
