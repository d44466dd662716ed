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
    beta, se : ndarray, shape (m, P, q)
        Effects on the genotype columns and their standard errors.
    """

    lod: np.ndarray
    p_value: np.ndarray
    beta: np.ndarray
    se: np.ndarray


def fixed_scan(block: MarkerBlock, X: np.ndarray, d: np.ndarray, h0: np.ndarray, resid: np.ndarray) -> FixedScan:
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

    Returns
    -------
    FixedScan
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

