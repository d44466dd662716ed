"""Step 4 of the genome scan: h2 re-estimated at every marker (GEMMA's ``-lmm 2`` and ``-lmm 1``).

For every marker of a chunk (columns already rotated, covariate-adjusted and
whitened by :mod:`lmmcore.markers`) and every phenotype, the ML and the REML
profile log-likelihoods of the marker model are maximised over h; the ML
maximum gives the likelihood-ratio test against the null ML fit, the REML
maximum the Wald test.

How, without a pass over the n individuals for every marker and h:

1. all markers on a coarse grid shared by all of them: h = 0,
   ``log lambda = -10 .. 10`` (:data:`REFIT_LOG_LAMBDA`, ``lambda = h / (1 - h)``)
   and the largest h, by matrix products (:meth:`_MarkerProfiles.grid`);
2. every local maximum of a marker's grid profile (within
   :data:`REFIT_PEAK_MARGIN` of its best) gives an interval of two grid steps;
   the markers with the same interval are evaluated together at
   :data:`REFIT_NODES` Chebyshev-Lobatto nodes of it (matrix products again),
   and each profile is replaced by the polynomial through its values, whose
   maximum :func:`lmmcore.chebyshev.maximize_series` finds. The profile is
   analytic in ``log lambda`` (the weights ``(1 + lambda) / (1 + lambda d_i)``
   have their poles at imaginary part ``+-pi``, whatever the eigenvalues
   ``d_i``), so the polynomial matches it to about 1e-11;
3. where the last Chebyshev coefficients put the interpolation error above
   :data:`REFIT_INTERPOLATION_TOL`, Brent's method runs on the exact profile
   instead, one lane per profile (:func:`lmmcore.optimize.brent_maximize`).

The log-likelihoods, from the weighted cross products of y, X and the
marker's columns, are in :func:`_likelihoods`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import numpy as np
from scipy import special

from . import chebyshev
# SINGULAR_EDGE, GOLDEN and to_original_columns lived here and stay importable from here
from .constants import SINGULAR_EDGE
from .likelihood import loglik_from_rss
from .markers import MarkerBlock, pad_identity, to_original_columns, weighted_gram
from .nullmodel import NullModel
from .optimize import GOLDEN, grid_peaks, search_brackets

__all__ = [
    "REFIT_LOG_LAMBDA",
    "REFIT_NODES",
    "REFIT_INTERPOLATION_TOL",
    "REFIT_PEAK_MARGIN",
    "REFIT_TOL",
    "SINGULAR_EDGE",
    "GOLDEN",
    "LANE_BLOCK",
    "ExactScan",
    "refit_block",
    "to_original_columns",
]

#: The exact scan's coarse grid in ``log lambda`` (``lambda = h / (1 - h)``),
#: to which h = 0 and the largest h are added.
REFIT_LOG_LAMBDA = np.arange(-10.0, 11.0)
#: Chebyshev-Lobatto nodes on which each marker's profile is interpolated
#: between two coarse grid points (interpolation error about 1e-11 in the
#: log-likelihood on the benchmark's data).
REFIT_NODES = 17
#: Largest estimated interpolation error (log-likelihood units) that is
#: accepted; a profile beyond it is maximised by Brent's method instead.
REFIT_INTERPOLATION_TOL = 1e-8
#: A local maximum of a marker's profile on the coarse grid is refined when its grid value is
#: within this many log-likelihood units of the best grid value (the best is always refined).
#: Farther below, the profile would have to rise that much within one grid step (a factor e in
#: lambda) to win; with a centred kinship every ML profile has such a point at the cap, about 60
#: units down at n = 2000.
REFIT_PEAK_MARGIN = 20.0
#: Absolute tolerance on h of the Brent search used where interpolation is not trusted (the
#: log-likelihood is then within about ``curvature * tol^2`` of its maximum, far below 1e-6).
REFIT_TOL = 1e-6
#: Column pairs of a marker whose products the exact scan keeps (one or two genotype columns).
_CACHED_PAIRS = 3
#: Lanes of the exact scan evaluated together (their n-long work rows stay in cache).
LANE_BLOCK = 256


# --------------------------------------------------------------------------- #
# Log-likelihoods from sufficient statistics
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Stats:
    """Weighted cross products of y, X and a marker's columns at some h.

    Leading shapes broadcast: marker-free terms may have a size-1 marker axis.
    """

    yy: np.ndarray  # (..., )
    Xy: np.ndarray  # (..., p)
    XX: np.ndarray  # (..., p, p)
    Gy: np.ndarray  # (..., q)
    XG: np.ndarray  # (..., p, q)
    GG: np.ndarray  # (..., q, q)
    logdet_V: np.ndarray  # (..., )


def _likelihoods(st: _Stats, pad: np.ndarray, rank: np.ndarray, n: int, p: int, logdet_XtX: float,
                 h: np.ndarray, r0: np.ndarray):
    """ML and REML log-likelihoods of the marker model from its sufficient statistics.

    Returns ``(L_ml, L_reml, rss0, rss1, u, Sinv)`` with ``u = S^{-1} c`` the
    whitened effects.

    Notes
    -----
    ``r0`` counts the directions of K's null space that the model's columns
    span (1 for a centred kinship with an intercept). ML leaves them out, as
    :mod:`lmmcore.likelihood` does: ``n' = n - r0`` observations and a
    ``- r0 log(1 - h)`` term in the log-determinant; otherwise the ML
    likelihood grows without bound as h -> 1.
    """
    Ainv = np.linalg.inv(st.XX)
    b0 = (Ainv @ st.Xy[..., None])[..., 0]
    rss0 = st.yy - np.einsum("...a,...a->...", st.Xy, b0)
    chol_A = np.linalg.cholesky(st.XX)
    logdet_A = 2.0 * np.log(np.diagonal(chol_A, axis1=-2, axis2=-1)).sum(axis=-1)
    XGt = np.swapaxes(st.XG, -1, -2)
    q = st.GG.shape[-1]
    S = st.GG - XGt @ (Ainv @ st.XG) + pad_identity(pad)
    c = st.Gy - (XGt @ b0[..., None])[..., 0]
    c = np.where(pad, 0.0, c)
    if q == 1:  # one column (dosages): scalars, no batched LAPACK calls
        with np.errstate(divide="ignore", invalid="ignore"):
            logdet_S = np.log(S[..., 0, 0])
            Sinv = 1.0 / S
    else:
        chol_S = np.linalg.cholesky(S)
        logdet_S = 2.0 * np.log(np.diagonal(chol_S, axis1=-2, axis2=-1)).sum(axis=-1)
        Sinv = np.linalg.inv(S)
    u = (Sinv @ c[..., None])[..., 0]
    rss1 = rss0 - np.einsum("...a,...a->...", c, u)
    rss1 = np.maximum(rss1, rss0 * np.finfo(float).eps)
    L_ml = loglik_from_rss("ml", rss1, n, p, st.logdet_V, r0=r0, h=h)
    L_reml = loglik_from_rss("reml", rss1, n, p + rank, st.logdet_V, logdet_XtWX=(logdet_A, logdet_S),
                             logdet_XtX=logdet_XtX)
    return L_ml, L_reml, rss0, rss1, u, Sinv


#: Most factors multiplied together before one log in :func:`_sum_log_rows`.
_LOG_GROUP = 16


def _log_group_size(max_abs_log: float) -> int:
    """How many factors with ``|log v| <= max_abs_log`` multiply without overflow or underflow.

    A product of k such factors lies in ``[e^{-k a}, e^{k a}]``; k is chosen
    so that ``k a <= 600`` (float64 spans ``e^{+-708}``).
    """
    if not np.isfinite(max_abs_log):
        return 1
    return int(min(_LOG_GROUP, max(1, 600.0 // max(max_abs_log, 1e-300))))


def _sum_log_rows(v: np.ndarray, group: int) -> np.ndarray:
    """``np.log(v).sum(axis=1)`` with one log per ``group`` factors.

    Notes
    -----
    ``sum_i log v_i = sum_b log prod_{i in b} v_i`` over blocks b of
    ``group`` factors: the log, the costly part of evaluating the
    log-determinant ``sum_i log(h d_i + 1 - h)`` of many lanes, is taken
    ``group`` times less often. The products are formed by elementwise
    multiplication of strided slices (contiguous, vectorised); each has a
    relative rounding error of at most ``group`` ulps, so the sum is as
    accurate as the sum of the logs. ``group`` comes from
    :func:`_log_group_size`, so no product overflows or underflows.
    """
    L, n = v.shape
    k = max(1, int(group))
    if k == 1 or n < 2 * k:
        return np.log(v).sum(axis=1)
    cols = n // k
    head = v[:, : cols * k].reshape(L, k, cols)
    prod = head[:, 0].copy()
    for j in range(1, k):
        prod *= head[:, j]
    out = np.log(prod).sum(axis=1)
    if cols * k < n:
        out += np.log(v[:, cols * k:]).sum(axis=1)
    return out


def _null_space_columns(block: MarkerBlock, d: np.ndarray) -> np.ndarray:
    """How many of each marker's (whitened) directions lie in K's null space.

    Such a direction adds to ``r0`` of the marker model (see
    :func:`_likelihoods`): its coordinates on the rows with ``d_i > 0`` are
    zero (below ``1e-10`` of its unit norm).
    """
    null = d == 0
    m, q = block.pad.shape
    if not np.any(null):
        return np.zeros(m, dtype=int)
    G_plus = block.G[~null]
    gram = np.einsum("nma,nmb->mab", G_plus, G_plus)
    lam = np.linalg.eigvalsh(gram)
    return np.maximum((lam < 1e-10).sum(axis=1) - block.pad.sum(axis=1), 0)


class MarkerBlockColumns:
    """A block's whitened columns in the layouts the exact scan reads, shared by the phenotypes.

    ``pair_products`` holds ``G_a * G_b`` for every pair of columns ``a <= b``
    (n, m, pairs) when there are at most :data:`_CACHED_PAIRS` pairs (one or
    two genotype columns); with more it would outgrow the chunk's memory
    budget and the products are formed when needed. ``marker_major`` is the
    (m, q, n) copy for gathering one marker per lane (Brent on the exact
    profile), made on first use.
    """

    def __init__(self, G: np.ndarray):
        self.G = G
        n, m, q = G.shape
        self.pairs = [(a, b) for a in range(q) for b in range(a, q)]
        self.pair_products = None
        if len(self.pairs) <= _CACHED_PAIRS:
            self.pair_products = np.empty((n, m, len(self.pairs)))
            for k, (a, b) in enumerate(self.pairs):
                np.multiply(G[:, :, a], G[:, :, b], out=self.pair_products[:, :, k])
        self._marker_major = None

    @property
    def marker_major(self) -> np.ndarray:
        if self._marker_major is None:
            self._marker_major = np.ascontiguousarray(np.transpose(self.G, (1, 2, 0)))
        return self._marker_major

    def weighted_gram(self, W: np.ndarray, markers: np.ndarray | None) -> np.ndarray:
        """``G_j' diag(w_h) G_j`` for every row ``w_h`` of W and selected marker j: (H, m, q, q)."""
        G = self.G if markers is None else self.G[:, markers]
        prods = self.pair_products
        if prods is not None and markers is not None:
            prods = prods[:, markers]
        return weighted_gram(G, W, prods)


class _MarkerProfiles:
    """The log-likelihoods of every marker model of a block as functions of h.

    ``y`` is one phenotype's rotated null residual scaled to unit mean square
    (the model contains X, so the likelihood in h is unchanged up to the
    constant ``-n log s`` or ``-(n - p1) log s``). ``columns`` holds the
    block's columns in the layouts the computations read; it is shared by
    the phenotypes of a block.
    """

    def __init__(self, block: MarkerBlock, X: np.ndarray, d: np.ndarray, y: np.ndarray, logdet_XtX: float,
                 columns: MarkerBlockColumns | None = None, r0_null: int = 0):
        self.G = block.G
        self.columns = columns if columns is not None else MarkerBlockColumns(block.G)
        self.pad = block.pad
        self.rank = block.rank
        self.r0_null = int(r0_null)
        self.r0 = r0_null + _null_space_columns(block, d) if r0_null else np.zeros(block.rank.size, dtype=int)
        self.X = X
        self.d1 = d - 1.0
        self.singular = bool(np.any(d == 0))
        self.y = y
        self.logdet_XtX = logdet_XtX
        n, p = X.shape
        self.n, self.p = n, p
        # marker-free products whose weighted sums give y'Wy, X'Wy, X'WX
        self.fixed_products = np.column_stack([y * y, X * y[:, None], (X[:, :, None] * X[:, None, :]).reshape(n, p * p)])
        # y and the covariates as the rows that multiply G (Gy and X'G in one product)
        self._yX = np.vstack([y, X.T])  # (1 + p, n)
        self._work_v = None
        self._work_g = None

    @property
    def Gt(self) -> np.ndarray:
        """The block's columns as (m, q, n)."""
        return self.columns.marker_major

    def _split_fixed(self, sums: np.ndarray):
        p = self.p
        return sums[..., 0], sums[..., 1:1 + p], sums[..., 1 + p:].reshape(sums.shape[:-1] + (p, p))

    def grid(self, h: np.ndarray, markers: np.ndarray | None = None, keep_stats: bool = False):
        """Log-likelihoods (ML, REML) of markers at shared values of h: (H, m) each.

        ``markers`` selects columns of the block (all by default). With
        ``keep_stats`` the sufficient statistics are returned too (a
        :class:`_Stats` with leading shape (H, m); marker-free parts (H, 1)),
        for interpolation at other h.
        """
        if markers is not None and markers.size == self.pad.shape[0] and np.array_equal(markers, np.arange(markers.size)):
            markers = None  # every marker, in order: no copy
        if markers is not None and 3 * markers.size > self.pad.shape[0]:
            # gathering many columns costs more than computing them all and keeping some
            L_ml, L_reml, *rest = self.grid(h, None, keep_stats)
            if keep_stats:
                st = rest[0]
                st = None if st is None else replace(st, Gy=st.Gy[:, markers], XG=st.XG[:, markers],
                                                     GG=st.GG[:, markers])
                return L_ml[:, markers], L_reml[:, markers], st
            return L_ml[:, markers], L_reml[:, markers]
        G = self.G if markers is None else self.G[:, markers]
        pad = self.pad if markers is None else self.pad[markers]
        rank = self.rank if markers is None else self.rank[markers]
        r0 = self.r0 if markers is None else self.r0[markers]
        n, m, q = G.shape
        p = self.p
        h = np.asarray(h, dtype=float)
        ok = ~((h >= 1.0) & self.singular)
        hh = h[ok]
        V = 1.0 + np.multiply.outer(hh, self.d1)  # (H, n)
        W = 1.0 / V
        logdet_V = np.log(V).sum(axis=1)
        yy, Xy, XX = self._split_fixed(W @ self.fixed_products)
        H = hh.size
        # rows (w_h * y) and (w_h * x_c) for all h: G'Wy and X'WG in one product
        weighted = (W[:, None, :] * self._yX[None]).reshape(H * (1 + p), n)
        both = (weighted @ G.reshape(n, m * q)).reshape(H, 1 + p, m, q)
        Gy = both[:, 0]
        XG = both[:, 1:].transpose(0, 2, 1, 3)
        GG = self.columns.weighted_gram(W, markers)
        st = _Stats(yy[:, None], Xy[:, None], XX[:, None], Gy, XG, GG, logdet_V[:, None])
        L_ml, L_reml, *_ = _likelihoods(st, pad[None], rank[None], n, p, self.logdet_XtX, hh[:, None], r0[None])
        full_ml = np.full((h.size, m), -np.inf)
        full_reml = np.full((h.size, m), -np.inf)
        full_ml[ok] = L_ml
        full_reml[ok] = L_reml
        if keep_stats:
            return full_ml, full_reml, (st if ok.all() else None)
        return full_ml, full_reml

    def lanes(self, h: np.ndarray, markers: np.ndarray):
        """Everything at ``h[l]`` for marker ``markers[l]``: the output of :func:`_likelihoods`.

        Notes
        -----
        Lanes are processed in blocks of ``LANE_BLOCK`` so that the block's
        ``LANE_BLOCK x n`` work arrays (variance factors
        ``v_li = 1 + h_l (d_i - 1)``, weights, gathered marker columns) stay
        in cache between the ten or so passes over them; the weighted sums
        are then matrix-vector products per block.
        """
        n, p = self.n, self.p
        h = np.asarray(h, dtype=float)
        L = markers.size
        q = self.Gt.shape[1]
        fixed = np.empty((L, self.fixed_products.shape[1]))
        logdet_V = np.empty(L)
        Gy = np.empty((L, q))
        XG = np.empty((L, p, q))
        GG = np.empty((L, q, q))
        B = min(LANE_BLOCK, max(L, 1))
        if self._work_v is None:
            self._work_v = np.empty(LANE_BLOCK * n)
            self._work_g = np.empty(LANE_BLOCK * q * n)
        V = self._work_v[: B * n].reshape(B, n)
        Gm = self._work_g[: B * q * n].reshape(B, q, n)
        for s in range(0, L, B):
            e = min(L, s + B)
            v, g = V[: e - s], Gm[: e - s]
            np.multiply.outer(h[s:e], self.d1, out=v)
            v += 1.0
            logdet_V[s:e] = _sum_log_rows(v, self._log_group(h[s:e]))
            w = np.reciprocal(v, out=v)
            fixed[s:e] = w @ self.fixed_products
            first, last = int(markers[s]), int(markers[e - 1])
            if last - first == e - s - 1 and (e - s == 1 or bool(np.all(np.diff(markers[s:e]) == 1))):
                g = self.Gt[first:last + 1]  # a run of consecutive markers: no gather
            else:
                np.take(self.Gt, markers[s:e], axis=0, out=g)
            if q == 1:
                wg = np.multiply(w, g[:, 0, :], out=w)
                Gy[s:e, 0] = wg @ self.y
                XG[s:e, :, 0] = wg @ self.X
                GG[s:e, 0, 0] = np.einsum("ln,ln->l", wg, g[:, 0, :])
            else:
                wg = g * w[:, None, :]
                Gy[s:e] = wg @ self.y
                XG[s:e] = np.swapaxes(wg @ self.X, 1, 2)
                GG[s:e] = wg @ np.swapaxes(g, 1, 2)
        yy, Xy, XX = self._split_fixed(fixed)
        st = _Stats(yy, Xy, XX, Gy, XG, GG, logdet_V)
        return _likelihoods(st, self.pad[markers], self.rank[markers], n, p, self.logdet_XtX, h, self.r0[markers])

    def _log_group(self, h: np.ndarray) -> int:
        """Factors of ``v_i = 1 + h (d_i - 1)`` that can be multiplied before a log (see :func:`_sum_log_rows`)."""
        if h.size == 0:
            return 1
        corners = 1.0 + np.multiply.outer([h.min(), h.max()], [self.d1.min(), self.d1.max()])
        if not np.all(corners > 0):
            return 1
        return _log_group_size(float(np.abs(np.log(corners)).max()))

    def null_ml(self, h: float) -> float:
        """ML log-likelihood of the null model (no marker) at h (``r0`` directions left out)."""
        V = 1.0 + h * self.d1
        W = 1.0 / V
        yy, Xy, XX = self._split_fixed(self.fixed_products.T @ W)
        rss0 = yy - Xy @ np.linalg.solve(XX, Xy)
        return float(loglik_from_rss("ml", rss0, self.n, self.p, np.log(V).sum(), r0=self.r0_null, h=h))

    def maximize(self, markers: np.ndarray, cap: float = 1.0, tol: float = REFIT_TOL) -> "_Maxima":
        """ML and REML maxima over h of the given markers, with the REML fit's statistics.

        Parameters
        ----------
        markers : numpy.ndarray of int
            Columns of the block (markers with at least one column).
        cap : float
            Largest h (:data:`FULL_ML_CAP` for the full ML likelihood of a
            singular kinship, else 1).
        tol : float
            Tolerance on h of the exact Brent search used where interpolation
            is not trusted.

        Returns
        -------
        _Maxima

        Notes
        -----
        1. Every marker's ML and REML profiles are evaluated on the coarse
           grid of :func:`_refit_grid` (h = 0, ``log lambda = -10 .. 10``
           with ``lambda = h / (1 - h)``, and ``cap``): matrix products for
           all markers at once.
        2. Every local maximum ``g_k`` of each profile on the grid (not only
           the best: a narrow peak may sit between grid points; those more
           than :data:`REFIT_PEAK_MARGIN` below the best are left out) gives an
           interval ``[g_{k-1}, g_{k+1}]`` holding a local maximum; the
           highest of their maxima is the profile's. The profile there
           is a smooth (analytic) function of ``t = log lambda``: the weights
           ``1 / (1 + h (d_i - 1)) = (1 + lambda) / (1 + lambda d_i)`` have
           their poles at ``Im t = +-pi``, whatever the eigenvalues. So every
           marker is evaluated again at :data:`REFIT_NODES` Chebyshev-Lobatto
           nodes of its interval (shared by all markers with the same
           interval: matrix products again; in ``h`` itself near h = 0),
           and its profile is replaced by the polynomial through those
           values, whose maximum :func:`lmmcore.chebyshev.maximize_series`
           finds. The last Chebyshev coefficients estimate the interpolation
           error; a profile whose estimate exceeds
           :data:`REFIT_INTERPOLATION_TOL` (in log-likelihood units) is
           maximised instead by Brent's method on the exact profile, one
           lane per profile (:func:`lmmcore.optimize.brent_maximize`). The
           intervals next to h = 0, and next to h = 1 when ``cap = 1``, are
           in h itself (the profile is analytic there unless K is
           singular, whose values at h = 1 are not finite: Brent again).
        3. The REML fit's sufficient statistics at its maximum (for the Wald
           test) are interpolated with the same polynomials (computed exactly
           where Brent's method found the maximum).

        A grid point is kept when no interior point beats it: a boundary
        (h = 0 or ``cap``) is a real answer.
        """
        grid_h, bins, bin_of = _refit_grid(cap)
        M = markers.size
        q = self.G.shape[2]
        gml, greml = self.grid(grid_h, markers)
        values = np.concatenate([gml, greml], axis=1)  # lanes: ML then REML
        lane_pos = np.concatenate([np.arange(M), np.arange(M)])
        is_reml = np.repeat([False, True], M)
        # every local maximum of every lane's grid profile is a candidate (the best grid point
        # need not be next to the highest maximum when a narrow peak sits between grid points)
        cand_lane, cand_k = grid_peaks(values, margin=REFIT_PEAK_MARGIN)
        cand_reml = is_reml[cand_lane]
        cand_h = grid_h[cand_k].copy()
        cand_L = values[cand_k, cand_lane].copy()
        C = cand_lane.size
        cand_bin = bin_of[cand_k]
        interpolated = np.zeros(C, dtype=bool)
        # the REML fit's statistics at each interpolated REML candidate's maximum (Wald test)
        c_rss0, c_rss1 = np.full(C, np.nan), np.full(C, np.nan)
        c_u, c_Sinv = np.full((C, q), np.nan), np.full((C, q, q), np.nan)
        x_nodes = chebyshev.lobatto_nodes(REFIT_NODES)
        for b, (in_log_lambda, lo, hi) in enumerate(bins):
            cands = np.flatnonzero(cand_bin == b)
            if cands.size == 0:
                continue
            pos_b, inv = np.unique(lane_pos[cand_lane[cands]], return_inverse=True)
            mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
            s_nodes = mid + half * x_nodes
            h_nodes = special.expit(s_nodes) if in_log_lambda else s_nodes
            nml, nreml, st = self.grid(h_nodes, markers[pos_b], keep_stats=True)
            reml_b = cand_reml[cands]
            vals = np.where(reml_b, nreml[:, inv], nml[:, inv])  # (nodes, candidates)
            finite = np.all(np.isfinite(vals), axis=0)
            coef = chebyshev.coefficients(np.where(finite, vals, 0.0))
            good = finite & (chebyshev.tail(coef) <= REFIT_INTERPOLATION_TOL)
            if not np.any(good):
                continue
            mx = chebyshev.maximize_series(coef[:, good])
            cg = cands[good]
            better = mx.value > cand_L[cg]
            h_new = special.expit(mid + half * mx.x) if in_log_lambda else mid + half * mx.x
            h_new = np.clip(h_new, 0.0, cap)  # expit(logit(cap)) may round above cap
            cand_h[cg] = np.where(better, h_new, cand_h[cg])
            cand_L[cg] = np.where(better, mx.value, cand_L[cg])
            interpolated[cg] = True
            wald = reml_b & good
            if np.any(wald):
                cw = cands[wald]
                h_w = cand_h[cw]
                s_w = special.logit(h_w) if in_log_lambda else h_w
                weights = chebyshev.node_weights(np.clip((s_w - mid) / half, -1.0, 1.0), REFIT_NODES)
                cols = inv[wald]
                st_w = _Stats(
                    weights @ st.yy[:, 0],
                    weights @ st.Xy[:, 0],
                    np.einsum("lj,jab->lab", weights, st.XX[:, 0]),
                    np.einsum("lj,jla->la", weights, st.Gy[:, cols]),
                    np.einsum("lj,jlab->lab", weights, st.XG[:, cols]),
                    np.einsum("lj,jlab->lab", weights, st.GG[:, cols]),
                    weights @ st.logdet_V[:, 0],
                )
                mk = markers[lane_pos[cand_lane[cw]]]
                _, _, c_rss0[cw], c_rss1[cw], c_u[cw], c_Sinv[cw] = _likelihoods(
                    st_w, self.pad[mk], self.rank[mk], self.n, self.p, self.logdet_XtX, h_w, self.r0[mk])
        exact = np.flatnonzero(~interpolated)
        if exact.size:
            cand_h[exact], cand_L[exact] = self._brent(
                grid_h, values[:, cand_lane[exact]], cand_k[exact], markers[lane_pos[cand_lane[exact]]],
                cand_reml[exact], tol)
        # each lane's best candidate (lanes without a finite grid value keep their grid values)
        k = np.argmax(values, axis=0)
        h_best = grid_h[k].copy()
        L_best = values[k, np.arange(2 * M)].copy()
        order = np.lexsort((-cand_L, cand_lane))
        first = np.r_[True, cand_lane[order][1:] != cand_lane[order][:-1]] if C else np.zeros(0, dtype=bool)
        win = order[first]
        h_best[cand_lane[win]], L_best[cand_lane[win]] = cand_h[win], cand_L[win]
        rss0, rss1 = np.full(M, np.nan), np.full(M, np.nan)
        u, Sinv = np.full((M, q), np.nan), np.full((M, q, q), np.nan)
        win_reml = win[cand_reml[win]]
        done = win_reml[interpolated[win_reml]]
        pos = lane_pos[cand_lane[done]]
        rss0[pos], rss1[pos], u[pos], Sinv[pos] = c_rss0[done], c_rss1[done], c_u[done], c_Sinv[done]
        todo = np.setdiff1d(np.arange(M), pos)  # REML lanes maximised by Brent, or without a finite value
        if todo.size:
            _, _, rss0[todo], rss1[todo], u[todo], Sinv[todo] = self.lanes(h_best[M + todo], markers[todo])
        return _Maxima(h_ml=h_best[:M], loglik_ml=L_best[:M], h_reml=h_best[M:], loglik_reml=L_best[M:],
                       rss0=rss0, rss1=rss1, u=u, Sinv=Sinv, n_exact=int(np.unique(cand_lane[exact]).size))

    def _brent(self, grid_h, values, k, markers, is_reml, tol):
        """Brent's method on the exact profiles of some lanes, each in its grid bracket ``[g_{k-1}, g_{k+1}]``."""

        def objective(h, lanes):
            L_ml, L_reml, *_ = self.lanes(h, markers[lanes])
            return np.where(is_reml[lanes], L_reml, L_ml)

        search = search_brackets(objective, grid_h, values, np.arange(k.size), k, tol=tol)
        return search.x, search.fx


@dataclass(frozen=True)
class _Maxima:
    """Each marker's ML and REML maxima over h, and the REML fit's statistics there.

    ``rss0``, ``rss1``, ``u`` (whitened effects) and ``Sinv`` are those of
    :func:`_likelihoods` at ``h_reml``; ``n_exact`` counts the profiles with
    a local maximum searched by Brent's method on the exact likelihood
    instead of by interpolation.
    """

    h_ml: np.ndarray
    loglik_ml: np.ndarray
    h_reml: np.ndarray
    loglik_reml: np.ndarray
    rss0: np.ndarray
    rss1: np.ndarray
    u: np.ndarray
    Sinv: np.ndarray
    n_exact: int


def _refit_grid(cap: float = 1.0):
    """The exact scan's coarse grid of h and the intervals its profiles are interpolated on.

    Returns ``(grid_h, bins, bin_of)``: the grid (h = 0, then
    ``expit(REFIT_LOG_LAMBDA)``, then ``cap``); the intervals as
    ``(in_log_lambda, low, high)`` (in ``t = log lambda``, or in h for the
    one at h = 0); and, for every grid point, the interval that holds its
    neighbours.
    """
    t = REFIT_LOG_LAMBDA
    grid_h = np.concatenate([[0.0], special.expit(t), [cap]])
    H = grid_h.size
    bins = [(False, 0.0, float(special.expit(t[1])))]  # [0, g_2] in h
    bin_of = np.full(H, -1)
    bin_of[:2] = 0
    for i in range(2, H - 2):  # grid index i is t[i - 1]
        bins.append((True, float(t[i - 2]), float(t[i])))
        bin_of[i] = len(bins) - 1
    if cap < 1.0:
        bins.append((True, float(t[-2]), float(special.logit(cap))))
    else:
        # [g_{H-3}, 1] in h: the profile is analytic at h = 1 when K is not singular
        # (its poles are at h = 1 / (1 - d_i), d_min / (1 - d_min) beyond 1); with a
        # singular K the value at h = 1 is not finite and Brent takes over
        bins.append((False, float(special.expit(t[-2])), 1.0))
    bin_of[H - 2:] = len(bins) - 1
    return grid_h, bins, bin_of


@dataclass(frozen=True)
class ExactScan:
    """The exact tests of a block's markers for several phenotypes (NaN for markers without a column).

    Attributes
    ----------
    h2_ml, loglik_ml, lrt, lod_lrt, p_lrt : ndarray, shape (m, P)
        ML h2 re-estimated per marker and the likelihood-ratio test against
        the null ML fit (GEMMA ``-lmm 2``).
    h2_reml, loglik_reml, wald, p_wald : ndarray, shape (m, P)
        REML h2 per marker and the Wald test (GEMMA ``-lmm 1``).
    beta_wald, se_wald : ndarray, shape (m, P, q)
        Effects at the REML h2 and their standard errors.
    n_exact : int
        Profiles maximised by Brent's method on the exact likelihood.
    """

    h2_ml: np.ndarray
    loglik_ml: np.ndarray
    lrt: np.ndarray
    lod_lrt: np.ndarray
    p_lrt: np.ndarray
    h2_reml: np.ndarray
    loglik_reml: np.ndarray
    wald: np.ndarray
    p_wald: np.ndarray
    beta_wald: np.ndarray
    se_wald: np.ndarray
    n_exact: int


def refit_block(block: MarkerBlock, rot, null: NullModel) -> ExactScan:
    """ML (LRT) and REML (Wald) tests with h2 re-estimated at every marker of a block."""
    n, m, q = block.G.shape
    p = rot.p
    P = null.h2.size
    out = {key: np.full((m, P), np.nan) for key in
           ("h2_ml", "loglik_ml", "lrt", "lod_lrt", "p_lrt", "h2_reml", "loglik_reml", "wald", "p_wald")}
    out["beta_wald"] = np.full((m, P, q), np.nan)
    out["se_wald"] = np.full((m, P, q), np.nan)
    out["n_exact"] = 0
    markers = np.flatnonzero(block.rank > 0)
    if markers.size == 0:
        return ExactScan(**out)
    rank = block.rank[markers]
    columns = MarkerBlockColumns(block.G)
    for j in range(P):
        r = null.resid[:, j]
        s = float(np.sqrt(np.mean(r * r)))
        s = s if s > 0 else 1.0
        prof = _MarkerProfiles(block, rot.X, rot.d, r / s, rot.logdet_XtX, columns, null.ml_r0)
        mx = prof.maximize(markers, null.ml_cap)
        out["n_exact"] += mx.n_exact
        h_ml, L_ml, h_reml, L_reml = mx.h_ml, mx.loglik_ml, mx.h_reml, mx.loglik_reml
        h0_ml = float(null.h2_ml[j]) if np.isfinite(null.h2_ml[j]) else 0.0
        L0 = prof.null_ml(min(h0_ml, 1.0 - SINGULAR_EDGE) if prof.singular else h0_ml)
        lrt = np.maximum(2.0 * (L_ml - L0), 0.0)
        # the Wald test at each marker's REML h2
        rss0, rss1 = mx.rss0, mx.rss1
        sigma2 = rss1 / (n - p - rank)
        wald = (rss0 - rss1) / (rank * sigma2)
        beta, se = to_original_columns(block.T[markers], mx.u[:, None], mx.Sinv[:, None], sigma2[:, None])
        shift_ml = -(n - prof.r0[markers]) * np.log(s)
        shift_reml = -(n - p - rank) * np.log(s)
        out["h2_ml"][markers, j] = h_ml
        out["loglik_ml"][markers, j] = L_ml + shift_ml
        out["lrt"][markers, j] = lrt
        out["lod_lrt"][markers, j] = lrt / (2.0 * np.log(10.0))
        out["p_lrt"][markers, j] = special.chdtrc(rank, lrt)  # P(chi2_rank >= lrt)
        out["h2_reml"][markers, j] = h_reml
        out["loglik_reml"][markers, j] = L_reml + shift_reml
        out["wald"][markers, j] = wald
        out["p_wald"][markers, j] = special.fdtrc(rank, n - p - rank, wald)  # P(F >= wald)
        out["beta_wald"][markers, j] = beta[:, 0] * s
        out["se_wald"][markers, j] = se[:, 0] * s
    return ExactScan(**out)
