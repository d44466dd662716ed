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

import numpy as np
from scipy import special

from .markers import MarkerBlock, pad_identity, to_original_columns, weighted_gram
from .wls import weights

__all__ = ["FixedScan", "fixed_scan"]


@dataclass(frozen=True)
class FixedScan:
    """The fixed-h2 tests of a block's markers for several phenotypes.

    Attributes
    ----------
    lod, p_value : ndarray, shape (m, P)
        NaN for a marker with no column left (see :mod:`lmmcore.markers`).
    beta, se : ndarray, shape (m, P, q), or None
        Effects on the genotype columns and their standard errors (None when
        not asked for).
    """

    lod: np.ndarray
    p_value: np.ndarray
    beta: np.ndarray | None
    se: np.ndarray | None


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
    flat = G.reshape(n, m * q)
    WR = W * resid
    A = np.einsum("na,nb,nP->Pab", X, X, W)
    Ainv = np.linalg.inv(A)
    Xr = X.T @ WR  # (p, P): X'W r, zero up to rounding
    rss0 = np.einsum("nP,nP->P", WR, resid) - np.einsum("aP,Pab,bP->P", Xr, Ainv, Xr)
    if not effects:
        return _lod_only(block, flat, X, W, WR, Ainv, Xr, rss0)
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
    p_value = np.where(valid, special.chdtrc(np.maximum(rank, 1), 2.0 * np.log(10.0) * np.nan_to_num(lod)), np.nan)
    sigma2 = rss1 / np.maximum(n - p - rank, 1)
    beta, se = to_original_columns(block.T, u, Sinv, sigma2)
    beta = np.where(valid[..., None], beta, np.nan)
    se = np.where(valid[..., None], se, np.nan)
    return FixedScan(lod=lod, p_value=p_value, beta=beta, se=se)




def _lod_only(block: MarkerBlock, flat: np.ndarray, X: np.ndarray, W: np.ndarray, WR: np.ndarray,
              Ainv: np.ndarray, Xr: np.ndarray, rss0: np.ndarray) -> FixedScan:
    """LOD and p-value without effects, every q x q quantity held as q(q+1)/2 contiguous (m, P) arrays.

    ``S_ab = G~_a'WG~_b - sum_ij B_ai (A^{-1})_ij B_bj`` and
    ``c_a = G~_a'Wr - sum_ij B_ai (A^{-1})_ij (X*'Wr)_j`` entry by entry (each
    ``G~_a'WG~_b`` one m x n times n x P product), then the Cholesky factor
    of every ``S`` and ``z = L^{-1} c`` entry by entry: ``c'S^{-1}c = z'z``.
    A pivot that rounding makes non-positive is raised to ``eps`` times the
    largest diagonal entry.
    """
    n, m, q = block.G.shape
    p, P = X.shape[1], W.shape[1]
    G = block.G
    c3 = (flat.T @ WR).reshape(m, q, P)
    XW = (X[:, :, None] * W[:, None, :]).reshape(n, p * P)
    B = (flat.T @ XW).reshape(m, q, p, P)
    AB = np.einsum("Pij,majP->maiP", Ainv, B)  # (A^{-1} B_a) per marker and trait
    v = np.einsum("Pij,jP->iP", Ainv, Xr)  # (p, P)
    pad = block.pad
    c = [np.where(pad[:, a, None], 0.0, c3[:, a, :] - np.einsum("miP,iP->mP", B[:, a], v)) for a in range(q)]
    S = {}
    for a in range(q):
        for b in range(a + 1):
            val = (G[:, :, a] * G[:, :, b]).T @ W  # (m, P)
            val -= np.einsum("miP,miP->mP", B[:, a], AB[:, b])
            if a == b:
                val += pad[:, a, None]
            S[a, b] = val
    floor = np.finfo(float).eps * np.maximum.reduce([S[a, a] for a in range(q)]) + np.finfo(float).tiny
    L: dict = {}
    z: list = []
    explained = np.zeros((m, P))
    for k in range(q):
        pivot = S[k, k] - sum((L[k, j] ** 2 for j in range(k)), np.zeros((m, P)))
        lkk = np.sqrt(np.maximum(pivot, floor))
        for i in range(k + 1, q):
            L[i, k] = (S[i, k] - sum((L[i, j] * L[k, j] for j in range(k)), np.zeros((m, P)))) / lkk
        L[k, k] = lkk
        zk = (c[k] - sum((L[k, j] * z[j] for j in range(k)), np.zeros((m, P)))) / lkk
        z.append(zk)
        explained += zk * zk
    rss1 = np.maximum(rss0[None, :] - explained, rss0[None, :] * np.finfo(float).eps)
    lod = 0.5 * n * np.log10(rss0[None, :] / rss1)
    rank = block.rank[:, None]
    valid = np.broadcast_to(rank > 0, lod.shape)
    lod = np.where(valid, np.maximum(lod, 0.0), np.nan)
    p_value = np.where(valid, special.chdtrc(np.maximum(rank, 1), 2.0 * np.log(10.0) * np.nan_to_num(lod)), np.nan)
    return FixedScan(lod=lod, p_value=p_value, beta=None, se=None)
