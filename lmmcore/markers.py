"""Marker blocks of a genome scan: gather, impute, rotate, project out the covariates, whiten.

Both scans (:mod:`lmmcore.fixed_scan` at the null h2, :mod:`lmmcore.refit`
with h2 re-estimated) and the permutations (:mod:`lmmcore.permute`) read the
markers through this module, one chunk at a time.

Marker columns
--------------
Dosages contribute one column. Genotype probabilities of k genotypes
contribute the last k - 1 (the first genotype is the reference: the
intercept absorbs it, as in R/qtl2), so the effects are contrasts with the
first genotype. Missing values are replaced by their marker's mean
(:func:`impute_mean`).

Algorithm
---------
For a chunk of m markers with q columns each, with ``U`` the kinship's
eigenvectors and ``Q`` an orthonormal basis of the rotated covariates
``X* = U'X``:

1. rotate the columns, ``G* = U' G`` (an n x n times n x mq product: the
   dominant cost of a scan), and project out the covariates (the intercept
   among them), ``R = (I - Q Q') G*``; one product with
   :func:`marker_rotation`'s matrix gives both ``R`` and ``C = Q'G*``;
2. whiten each marker's columns, ``G~_j = R_j T_j`` with ``T_j`` from the
   eigendecomposition of ``R_j' R_j`` (dropping directions with eigenvalue
   below :data:`RANK_TOLERANCE` of the marker's sum of squares), so
   ``G~_j' G~_j = I``. A marker with no direction left is *monomorphic* (or
   *collinear* with the covariates) and gets NaN and a flag.

Effects on the whitened columns map back to the genotype columns with
:func:`to_original_columns`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .genotypes import Genotypes

__all__ = [
    "MarkerBlock",
    "marker_columns",
    "marker_array",
    "impute_mean",
    "marker_rotation",
    "prepare_block",
    "to_original_columns",
    "weighted_gram",
    "RANK_TOLERANCE",
    "FLAG_MONOMORPHIC",
    "FLAG_COLLINEAR",
    "FLAG_ALL_MISSING",
    "FLAG_RANK_DEFICIENT",
]

#: A marker direction whose residual sum of squares (after the covariates) is
#: below this fraction of the marker's raw sum of squares is dropped.
RANK_TOLERANCE = 1e-12

FLAG_MONOMORPHIC = "monomorphic"
FLAG_COLLINEAR = "collinear_with_covariates"
FLAG_ALL_MISSING = "all_missing"
FLAG_RANK_DEFICIENT = "rank_deficient"


@dataclass(frozen=True)
class MarkerBlock:
    """Rotated, covariate-adjusted and whitened marker columns of one chunk.

    Attributes
    ----------
    G : ndarray, shape (n, m, q)
        ``G~_j = (I - QQ') U' (G_j - mean) T_j``; columns of dropped
        directions are zero.
    T : ndarray, shape (m, q, q)
        Effects on the original (centred) genotype columns are ``T_j a~``.
    pad : ndarray of bool, shape (m, q)
        The dropped (zero) columns of ``G``.
    rank : ndarray of int, shape (m,)
        Degrees of freedom of each marker's test.
    flag : ndarray of object, shape (m,)
    n_imputed : int
        Missing genotype values replaced by the marker mean.
    """

    G: np.ndarray
    T: np.ndarray
    pad: np.ndarray
    rank: np.ndarray
    flag: np.ndarray
    n_imputed: int


def marker_columns(genotypes: Genotypes) -> tuple[str, ...]:
    """Names of the effects a marker adds: ``("dosage",)`` or the genotypes after the first."""
    if genotypes.kind == "dosage":
        return ("dosage",)
    return tuple(genotypes.genotype_names[1:])


def as_slice(idx: np.ndarray):
    """A slice for a run of consecutive indices (a view instead of a copy), else the indices."""
    if idx.size and idx[-1] - idx[0] == idx.size - 1:
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def is_identity_index(rows: np.ndarray, n: int) -> bool:
    """True when ``rows`` is ``0, 1, ..., n - 1``."""
    return rows.size == n and bool(np.all(rows == np.arange(n)))


def marker_array(genotypes: Genotypes, rows: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """The (n, m, q) float64 marker columns of ``rows``.

    A view into the genotypes when that needs no copy (dosages of every
    individual in order, a contiguous run of markers): treat it as read-only.
    """
    cols = as_slice(np.asarray(markers))
    if genotypes.kind == "dosage":
        dosage = genotypes.dosage
        if isinstance(cols, slice) and is_identity_index(rows, dosage.shape[0]) and dosage.dtype == np.float64:
            return dosage[:, cols][:, :, None]
        out = dosage[rows, cols] if isinstance(cols, slice) else dosage[np.ix_(rows, cols)]
        return np.ascontiguousarray(out, dtype=np.float64)[:, :, None]
    probs = genotypes.probs
    out = probs[rows, cols, 1:] if isinstance(cols, slice) else probs[np.ix_(rows, cols, np.arange(1, probs.shape[2]))]
    return np.ascontiguousarray(out, dtype=np.float64)


def impute_mean(flat: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Replace the ``missing`` entries of each column by the mean of its other entries (in a copy).

    Parameters
    ----------
    flat : ndarray, shape (n, c)
    missing : ndarray of bool, shape (n, c)
        The entries to fill in; entries outside it are used as they are.

    Returns
    -------
    filled : ndarray
        The completed array; a column with every entry missing gets 0.
    empty : ndarray of bool, shape (c,)
        Columns with nothing observed.
    n_imputed : int
        Values filled in (columns with nothing observed not counted).
    """
    n = flat.shape[0]
    count = n - missing.sum(axis=0)
    sums = np.where(missing, 0.0, flat).sum(axis=0)
    means = np.where(count > 0, sums / np.maximum(count, 1), 0.0)
    out = np.array(flat, dtype=np.float64)
    r, c = np.nonzero(missing)
    out[r, c] = means[c]
    return out, count == 0, int(missing[:, count > 0].sum())


def marker_rotation(U: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """The (n + p) x n matrix that rotates marker columns and splits off the covariates.

    Its first n rows are ``(I - QQ') U'`` and its last p rows ``Q'U'``, so
    one product with G gives both ``R = (I - QQ') U'G`` and ``C = Q'U'G``
    (step 1 of the module docstring without a second pass over the chunk).
    """
    QtUt = Q.T @ U.T  # (p, n)
    out = np.empty((U.shape[0] + Q.shape[1], U.shape[0]))
    out[: U.shape[0]] = U.T
    out[: U.shape[0]] -= Q @ QtUt
    out[U.shape[0]:] = QtUt
    return out


def prepare_block(raw: np.ndarray, rotation: np.ndarray, check_missing: bool = True) -> MarkerBlock:
    """Steps 1-2 of the module docstring for one chunk (``raw`` is not modified).

    Notes
    -----
    Missing values are replaced by the column mean (a column with none
    observed is flagged ``all_missing``). ``rotation`` is
    :func:`marker_rotation`'s matrix: with ``G* = U'G``, ``C = Q'G*`` and
    ``R = G* - QC`` (the part of the marker not explained by the
    covariates), a direction of ``R_j`` is kept when its eigenvalue of
    ``R_j'R_j`` exceeds ``RANK_TOLERANCE`` times the marker's largest raw sum
    of squares ``max_a ||G_ja||^2 = max_a (||R_ja||^2 + ||C_ja||^2)`` (U is
    orthogonal and Q orthonormal, so no extra pass over the data is needed).
    Projecting out ``Q`` also removes each column's mean, since the
    covariates include an intercept.
    """
    n, m, q = raw.shape
    flat = raw.reshape(n, m * q)
    n_imputed = 0
    all_missing = np.zeros(m, dtype=bool)
    if check_missing:
        missing = np.isnan(flat)
        if missing.any():
            flat, empty, n_imputed = impute_mean(flat, missing)
            all_missing = empty.reshape(m, q).any(axis=1)
    RC = rotation @ flat
    R, C = RC[:n], RC[n:]
    ss_cols = np.einsum("ij,ij->j", R, R)
    ref = (ss_cols + np.einsum("ij,ij->j", C, C)).reshape(m, q).max(axis=1)
    threshold = RANK_TOLERANCE * np.maximum(ref, np.finfo(float).tiny)
    if q == 1:
        keep = (ss_cols > threshold) & ~all_missing
        scale = np.where(keep, 1.0 / np.sqrt(np.where(keep, ss_cols, 1.0)), 0.0)
        R *= scale
        G = R.reshape(n, m, 1)
        T = scale.reshape(m, 1, 1)
        keep = keep[:, None]
    else:
        R3 = R.reshape(n, m, q)
        gram = np.einsum("nma,nmb->mab", R3, R3)
        lam, vec = np.linalg.eigh(gram)
        keep = (lam > threshold[:, None]) & ~all_missing[:, None]
        inv_sqrt = np.where(keep, 1.0 / np.sqrt(np.where(keep, lam, 1.0)), 0.0)
        T = vec * inv_sqrt[:, None, :]
        G = np.einsum("nma,mab->nmb", R3, T, optimize=True)
    rank = keep.sum(axis=1)
    flag = np.full(m, "", dtype=object)
    flag[(rank > 0) & (rank < q)] = FLAG_RANK_DEFICIENT
    empty = np.flatnonzero(rank == 0)
    if empty.size:
        cols3 = flat.reshape(n, m, q)[:, empty, :]
        constant = np.all(cols3 == cols3[:1], axis=(0, 2))
        flag[empty] = np.where(constant, FLAG_MONOMORPHIC, FLAG_COLLINEAR)
    flag[all_missing] = FLAG_ALL_MISSING
    return MarkerBlock(G=G, T=T, pad=~keep, rank=rank, flag=flag, n_imputed=n_imputed)


def to_original_columns(T: np.ndarray, u: np.ndarray, Sinv: np.ndarray, sigma2: np.ndarray):
    """Effects and standard errors on the original genotype columns.

    ``a = T_j u`` and ``cov(a) = sigma2 T_j S^{-1} T_j'`` (u, Sinv per marker
    and phenotype: (m, P, q) and (m, P, q, q)).
    """
    Tm = T[:, None]  # (m, 1, q, q)
    beta = (Tm @ u[..., None])[..., 0]
    cov = Tm @ Sinv @ np.swapaxes(Tm, -1, -2)
    se = np.sqrt(np.maximum(np.diagonal(cov, axis1=-2, axis2=-1), 0.0) * sigma2[..., None])
    return beta, se


def pad_identity(pad: np.ndarray) -> np.ndarray:
    """Identity entries on the diagonal of dropped directions: ``pad.shape + (q,)``."""
    q = pad.shape[-1]
    out = np.zeros(pad.shape + (q,))
    idx = np.arange(q)
    out[..., idx, idx] = pad
    return out


def weighted_gram(G: np.ndarray, W: np.ndarray, pair_products: np.ndarray | None = None, *,
                  by_column: bool = False) -> np.ndarray:
    """``G_j' diag(w_h) G_j`` for every weight vector ``w_h`` and marker j of G (n, m, q).

    Parameters
    ----------
    G : ndarray, shape (n, m, q)
    W : ndarray
        The weight vectors as rows, (H, n), or with ``by_column`` as
        columns, (n, H).
    pair_products : ndarray, shape (n, m, pairs), optional
        ``G_a * G_b`` for the column pairs ``a <= b`` in row-major order;
        otherwise each product is formed when needed.
    by_column : bool
        The layout of W, which is also that of the result.

    Returns
    -------
    ndarray
        (H, m, q, q), or (m, H, q, q) with ``by_column``.

    Notes
    -----
    Entry ``(a, b)`` is ``sum_i w_i G_ia G_ib``: one matrix product of the
    weights with the products ``G_a * G_b`` per pair (or with all cached
    pairs at once). The two layouts are the two callers' (the exact scan
    weights many h per marker, the fixed-h2 scan many phenotypes); each
    product keeps its caller's operand order, so results do not move by a
    rounding error when one of them changes.
    """
    n, m, q = G.shape
    H = W.shape[1] if by_column else W.shape[0]
    pairs = [(a, b) for a in range(q) for b in range(a, q)]
    out = np.empty((m, H, q, q) if by_column else (H, m, q, q))

    def product(prods: np.ndarray) -> np.ndarray:
        return prods.T @ W if by_column else W @ prods

    if pair_products is not None:
        vals = product(pair_products.reshape(n, -1))
        vals = vals.reshape(m, len(pairs), H).transpose(0, 2, 1) if by_column else vals.reshape(H, m, len(pairs))
    for k, (a, b) in enumerate(pairs):
        val = vals[:, :, k] if pair_products is not None else product(G[:, :, a] * G[:, :, b])
        out[:, :, a, b] = val
        out[:, :, b, a] = val
    return out
