"""Step 3b: the profile log-likelihood of many traits from per-individual sufficient statistics.

:mod:`lmmcore.likelihood` evaluates the profile by solving the weighted least
squares problem and forming the residuals, a few passes over ``n x m`` arrays
for every h. For the fit of thousands of traits that share a missingness
pattern, the same numbers come cheaper from three kinds of weighted sums over
the individuals, computed once per trait (``TraitProfiles``):

* at a *grid* of h shared by all traits, ``sum_i w_i(h) y_i^2`` and
  ``sum_i w_i(h) x_ia y_i`` for every trait are one matrix product
  ``W @ Q`` of the (H x n) weights with the (n x T) products (BLAS-3);
* at an h of each trait's own (Brent's lanes, the interval's root search),
  they are row-wise dot products of the (L x n) weights with the trait's
  products: one pass, no residual array.

Notation as in :mod:`lmmcore.likelihood`: ``w_i = 1 / (1 + h (d_i - 1))``,
``A = X*'WX*``, ``c = X*'Wy*``. The phenotypes are first residualised on the
covariates by ordinary least squares, ``r = y* - X* b0``, which changes no
profile (b is free) but keeps the subtraction below well conditioned:

    rss(h) = r'Wr - c' A^{-1} c,   c = X*'W r.

With that, the profile is :func:`lmmcore.likelihood.loglik_from_rss` (the one
formula) with ``log |V| = sum_i log(1 + h (d_i - 1))`` (products of blocks of
eight factors, then one log per block) and, for REML, ``log |A|``. Where a
weight exceeds 1e4 (h next to 1 with a nearly singular K) the subtraction
would lose digits, and those h are evaluated by :mod:`lmmcore.likelihood`
with explicit residuals (and its limit at h = 1).

Brent's steps, the polish, the standard error and the interval's root search
evaluate each trait near a grid point; :func:`local_series` turns the sums
into power series in ``h - h0`` there (moments by matrix products per centre),
so that each of those evaluations costs O(K) instead of O(n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .eigen import RotatedData
from .likelihood import loglik_from_rss, profile_loglik, profile_loglik_paired, profile_slopes

__all__ = ["TraitProfiles", "trait_profiles", "LocalSeries", "local_series", "series_near"]

#: Factors ``1 + h (d_i - 1)`` multiplied together before one logarithm.
_LOG_BLOCK = 8
#: Below this smallest factor ``1 + h (d_min - 1)`` (weights above 1e4: h next to 1 with a
#: (nearly) singular K) the subtraction ``r'Wr - c'A^{-1}c`` would lose digits; such h are
#: evaluated with explicit residuals (:mod:`lmmcore.likelihood`).
_MIN_FACTOR = 1e-4


@dataclass(frozen=True)
class TraitProfiles:
    """The sufficient statistics of every trait of one pattern (see the module docstring).

    Attributes
    ----------
    rot : RotatedData
        The (standardised) rotated data they come from.
    method : str
    q : ndarray, shape (1 + p, T, n)
        ``q[0] = r^2`` and ``q[1 + a] = x*_a r`` per trait and individual,
        with ``r`` the OLS residual of the trait.
    xx : ndarray, shape (n, p * p)
        ``vec(x*_i x*_i')`` for the normal equations.
    dm1 : ndarray, shape (n,)
        ``d_i - 1``.
    """

    rot: RotatedData
    method: str
    q: np.ndarray
    xx: np.ndarray
    dm1: np.ndarray

    @property
    def n_traits(self) -> int:
        return int(self.q.shape[1])

    def _steep(self, h: np.ndarray) -> np.ndarray:
        """Which h give some weight above ``1 / _MIN_FACTOR`` (see there)."""
        return 1.0 + h * min(float(self.dm1.min()), 0.0) < _MIN_FACTOR

    @property
    def singular(self) -> bool:
        """True when K has a zero eigenvalue (then h = 1 is a limit, see :func:`lmmcore.likelihood.loglik_at_one`)."""
        return bool(np.any(self.rot.d == 0))

    # ------------------------------------------------------------------ building blocks

    def _logdet(self, F: np.ndarray) -> np.ndarray:
        """``sum_i log F_li`` for every row, with one log per product of eight factors.

        A product that could leave the floating-point range (factors of
        1e35 or 1e-35) falls back to a log per factor for that row.
        """
        n = F.shape[1]
        n8 = n - n % _LOG_BLOCK
        out = np.zeros(F.shape[0])
        if n8:
            m = n8 // _LOG_BLOCK  # contiguous slices: the order of the factors does not matter
            prod = F[:, :m].copy()
            for j in range(1, _LOG_BLOCK):
                prod *= F[:, j * m:(j + 1) * m]
            ok = np.all((prod > 1e-280) & (prod < 1e280), axis=1)
            out[ok] = np.log(prod[ok]).sum(axis=1)
            if not np.all(ok):
                bad = ~ok
                out[bad] = np.log(F[bad, :n8]).sum(axis=1)
        if n8 < n:
            out += np.log(F[:, n8:]).sum(axis=1)
        return out

    def _finish(self, h: np.ndarray, yWy: np.ndarray, c: np.ndarray, A: np.ndarray, logdet_V: np.ndarray,
                Linv: np.ndarray | None = None):
        """The profile from the weighted sums: rss, then the one formula (``Linv``: A's, when known)."""
        if Linv is None:
            Linv = inverse_cholesky(A)
        z = np.einsum("...ab,...b->...a", Linv, c)  # L^{-1} c
        rss = yWy - np.einsum("...a,...a->...", z, z)
        rot = self.rot
        if self.method == "ml":
            return loglik_from_rss("ml", rss, rot.n, rot.p, logdet_V, r0=rot.ml_null_directions, h=h)
        logdet_A = -2.0 * np.log(np.diagonal(Linv, axis1=-2, axis2=-1)).sum(axis=-1)
        return loglik_from_rss("reml", rss, rot.n, rot.p, logdet_V, logdet_XtWX=(logdet_A,),
                               logdet_XtX=rot.logdet_XtX)

    # ------------------------------------------------------------------ evaluations

    def grid(self, h2) -> np.ndarray:
        """The profile of every trait at every h of a grid shared by all, shape ``(len(h2), T)``.

        Notes
        -----
        ``W @ q[k].T`` for each of the 1 + p products: matrix products of
        the (H x n) weights with the (n x T) statistics.
        """
        h2 = np.atleast_1d(np.asarray(h2, dtype=float))
        out = np.full((h2.size, self.n_traits), -np.inf)
        steep = self._steep(h2)
        if np.any(steep):
            out[steep] = profile_loglik(self.rot, h2[steep], self.method)
        at_one = steep | ((h2 >= 1.0) & self.singular)
        h = h2[~at_one]
        if h.size:
            F = 1.0 + h[:, None] * self.dm1
            logdet_V = self._logdet(F)
            W = 1.0 / F
            p = self.rot.p
            A = (W @ self.xx).reshape(h.size, p, p)
            yWy = W @ self.q[0].T  # (H, T)
            c = np.stack([W @ self.q[1 + a].T for a in range(p)], axis=-1)  # (H, T, p)
            vals = self._finish(h[:, None], yWy, c, A[:, None], logdet_V[:, None],
                                Linv=inverse_cholesky(A)[:, None])  # one factor per h, shared by the traits
            out[~at_one] = vals
        return out

    def _factors(self, h: np.ndarray) -> np.ndarray:
        """``1 + h_l (d_i - 1)``, shape (L, n)."""
        F = h[:, None] * self.dm1
        F += 1.0
        return F

    def _rows(self, cols: np.ndarray) -> list[np.ndarray]:
        """The statistics of the traits ``cols`` (no copy when they are all traits in order)."""
        if cols.size == self.n_traits and np.array_equal(cols, np.arange(cols.size)):
            return list(self.q)
        return [qk[cols] for qk in self.q]

    def values(self, h2, cols) -> np.ndarray:
        """The profile of trait ``cols[l]`` at ``h2[l]`` for every lane l, shape (L,)."""
        h2 = np.atleast_1d(np.asarray(h2, dtype=float))
        cols = np.asarray(cols, dtype=int)
        out = np.full(h2.shape, -np.inf)
        steep = self._steep(h2)
        lanes = np.flatnonzero(~steep)
        if lanes.size:
            h, c = h2[lanes], cols[lanes]
            F = self._factors(h)
            logdet_V = self._logdet(F)
            W = np.reciprocal(F, out=F)
            p = self.rot.p
            A = (W @ self.xx).reshape(h.size, p, p)
            sums = [np.einsum("ln,ln->l", W, qk) for qk in self._rows(c)]
            out[lanes] = self._finish(h, sums[0], np.stack(sums[1:], axis=-1), A, logdet_V)
        if np.any(steep):
            out[steep] = profile_loglik_paired(self.rot, h2[steep], cols[steep], self.method)
        return out

    def slopes(self, h2, cols) -> np.ndarray:
        r"""``dL/dh`` of trait ``cols[l]`` at ``h2[l] < 1``, shape (L,).

        Notes
        -----
        As :func:`lmmcore.likelihood.profile_slopes`, with
        ``sum_i (d_i - 1) w_i^2 (r_i - x_i'b)^2`` expanded in the same sums
        (weights ``(d_i - 1) w_i^2`` instead of ``w_i``) and ``B`` the matrix
        ``X*' diag((d - 1) w^2) X*``.
        """
        h = np.atleast_1d(np.asarray(h2, dtype=float))
        cols = np.asarray(cols, dtype=int)
        steep = self._steep(h)
        if np.any(steep):
            out = np.empty(h.size)
            out[steep] = profile_slopes(self.rot, h[steep], cols[steep], self.method)
            if np.any(~steep):
                out[~steep] = self.slopes(h[~steep], cols[~steep])
            return out
        rot = self.rot
        p = rot.p
        W = np.reciprocal(self._factors(h))
        V = W * W
        V *= self.dm1  # (d - 1) w^2
        A = (W @ self.xx).reshape(h.size, p, p)
        B = (V @ self.xx).reshape(h.size, p, p)
        rss, slope_rss, tr = slope_sums(W, V, A, B, self._rows(cols))
        trace = W @ self.dm1
        if self.method == "ml":
            r0 = rot.ml_null_directions
            return -0.5 * (rot.n_ml * slope_rss / rss + trace + (r0 / (1.0 - h) if r0 else 0.0))
        return -0.5 * ((rot.n - p) * slope_rss / rss + trace - tr)


def slope_sums(W: np.ndarray, V: np.ndarray, A: np.ndarray, B: np.ndarray,
               qs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pieces of the profile's slope in h of many lanes from their sufficient statistics.

    Parameters
    ----------
    W : ndarray, shape (L, n)
        Each lane's weights ``w = 1 / (h d + 1 - h)``.
    V : ndarray, shape (L, n)
        ``(d - 1) w^2``, the weights' derivative in h, negated.
    A, B : ndarray, shape (L, p, p)
        ``X*' diag(w) X*`` and ``X*' diag((d - 1) w^2) X*``.
    qs : list of ndarray, each (L, n)
        The lane's rotated residual products: ``r * r``, then ``r * x_k`` for
        each covariate column k.

    Returns
    -------
    rss, slope_rss, tr : ndarray, shape (L,)
        ``RSS = r'Wr - c'A^{-1}c`` (``c = X*'Wr``), its derivative in h
        ``-(r'Vr - 2 b'e + b'B b)`` (``b = A^{-1} c``, ``e = X*'Vr``) and
        ``tr(A^{-1} B)``.

    Notes
    -----
    The one copy of these sums, for the profiles of one pattern
    (:class:`TraitProfiles`) and of many patterns with their own
    covariates (:class:`lmmcore.profile_stack.StackedProfiles`). ``A^{-1}`` is
    ``L^{-T} L^{-1}`` from :func:`inverse_cholesky`.
    """
    yWy = np.einsum("ln,ln->l", W, qs[0])
    c = np.stack([np.einsum("ln,ln->l", W, qk) for qk in qs[1:]], axis=-1)
    yVy = np.einsum("ln,ln->l", V, qs[0])
    e = np.stack([np.einsum("ln,ln->l", V, qk) for qk in qs[1:]], axis=-1)
    Linv = inverse_cholesky(A)
    Ainv = np.einsum("lka,lkb->lab", Linv, Linv)
    b = np.einsum("lab,lb->la", Ainv, c)
    rss = yWy - np.einsum("la,la->l", b, c)
    weighted = yVy - 2.0 * np.einsum("la,la->l", b, e) + np.einsum("la,lab,lb->l", b, B, b)
    tr = np.einsum("lab,lab->l", Ainv, B)  # tr(A^{-1} B), both symmetric
    return rss, -weighted, tr


#: Up to this many covariates the normal equations' Cholesky factor is formed entry by entry
#: across the whole stack (a few array operations instead of a LAPACK call per matrix).
_SMALL_P = 4


def inverse_cholesky(A: np.ndarray) -> np.ndarray:
    """``L^{-1}`` (lower triangular) with ``A = L L'``, for every matrix of a stack of small SPD matrices.

    Parameters
    ----------
    A : ndarray, shape (..., p, p)

    Returns
    -------
    ndarray, shape (..., p, p)
        NaN where a pivot is not positive (A not positive definite).

    Notes
    -----
    For ``p <= 4`` the factor is built entry by entry over the whole stack
    (``L_kk = sqrt(A_kk - sum_j L_kj^2)``, ``L_ik = (A_ik - sum_j L_ij L_kj) / L_kk``),
    then inverted by forward substitution
    (``(L^{-1})_ik = -sum_{j=k}^{i-1} L_ij (L^{-1})_jk / L_ii``); the
    profile's ``c' A^{-1} c = |L^{-1} c|^2``, ``log |A| = -2 sum log (L^{-1})_kk``
    and ``A^{-1} = L^{-T} L^{-1}`` follow. Larger p: LAPACK.
    """
    p = A.shape[-1]
    if p > _SMALL_P:
        return np.linalg.inv(np.linalg.cholesky(A))
    A = np.asarray(A, dtype=float)
    L = np.zeros(A.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(p):
            L[..., k, k] = np.sqrt(A[..., k, k] - (L[..., k, :k] ** 2).sum(axis=-1))
            for i in range(k + 1, p):
                L[..., i, k] = (A[..., i, k] - (L[..., i, :k] * L[..., k, :k]).sum(axis=-1)) / L[..., k, k]
        Li = np.zeros(A.shape)
        for k in range(p):
            Li[..., k, k] = 1.0 / L[..., k, k]
            for i in range(k + 1, p):
                Li[..., i, k] = -(L[..., i, k:i] * Li[..., k:i, k]).sum(axis=-1) / L[..., i, i]
    return Li


def trait_profiles(rot: RotatedData, method: str = "reml") -> TraitProfiles:
    """Precompute the sufficient statistics of every phenotype column of ``rot``.

    Parameters
    ----------
    rot : RotatedData
        Usually the standardised data of :func:`lmmcore.estimate.standardise`.
    method : {"reml", "ml"}

    Returns
    -------
    TraitProfiles

    Notes
    -----
    Memory: ``(1 + p) T n`` numbers (the caller fits very many traits in
    blocks). Cost: O(T n p) once.
    """
    method = str(method).lower()
    if method not in ("ml", "reml"):
        raise ValueError(f"method must be 'ml' or 'reml', not {method!r}")
    X, y = rot.X, rot.y
    n, p = X.shape
    Q, _ = np.linalg.qr(X)  # X has full column rank (the design drops dependent columns)
    r = (y - Q @ (Q.T @ y)).T  # (T, n): the OLS residuals, traits in rows
    q = np.empty((1 + p, r.shape[0], n))
    np.multiply(r, r, out=q[0])
    for a in range(p):
        np.multiply(r, X[:, a], out=q[1 + a])
    xx = (X[:, :, None] * X[:, None, :]).reshape(n, p * p)
    return TraitProfiles(rot=rot, method=method, q=q, xx=xx, dm1=rot.d - 1.0)


# --------------------------------------------------------------------------- local power series

#: Largest ``|delta u_i|`` for which a local series is used (its terms shrink at least this fast).
_SERIES_RATIO = 0.5
#: Relative size of the first term left out of a local series.
_SERIES_TOL = 1e-17
_SERIES_MAX_TERMS = 60


@dataclass(frozen=True)
class LocalSeries:
    """Each lane's profile near a centre ``h0`` as power series in ``delta = h - h0`` (one lane per row).

    With ``e_i = d_i - 1``, ``w0_i = 1 / (1 + h0 e_i)`` and ``u_i = e_i w0_i``,

        1 / (1 + h e_i) = w0_i sum_k (-delta u_i)^k,
        log(1 + h e_i) = log(1 + h0 e_i) + sum_{k>=1} (-1)^(k-1) (delta u_i)^k / k,

    so every weighted sum of the profile is ``sum_k (-delta)^k M_k`` with
    moments ``M_k = sum_i s_i w0_i u_i^k`` computed once per centre, by
    matrix products, for all lanes that share it. A lane is then evaluated
    in O(K) instead of O(n). The series converges geometrically while
    ``|delta| max_i |u_i| <= 1/2``; K terms are kept so that the first term
    left out is below ``1e-17`` of the sum's scale, and a lane whose
    ``|delta|`` exceeds the radius it was built for is evaluated directly.

    Attributes
    ----------
    profiles : TraitProfiles
    cols : ndarray of int, shape (L,)
        The trait of each lane.
    centre, radius : ndarray, shape (L,)
        ``h0`` and the largest ``|delta|`` the lane's series is valid for (0: none).
    moments : ndarray, shape (L, K, 1 + p)
        ``M_k`` of ``r^2`` and ``x_a r``.
    xx_moments : ndarray, shape (L, K, p * p)
        ``M_k`` of ``x x'``.
    logdet : ndarray, shape (L, K)
        ``log |V(h0)|`` in column 0, ``sum_i u_i^k / k`` in column k.
    """

    profiles: TraitProfiles
    cols: np.ndarray
    centre: np.ndarray
    radius: np.ndarray
    moments: np.ndarray
    xx_moments: np.ndarray
    logdet: np.ndarray

    def _powers(self, delta: np.ndarray) -> np.ndarray:
        """``(-delta)^k`` for k = 0 .. K-1, shape (L, K)."""
        K = self.moments.shape[1]
        pw = np.empty((delta.size, K))
        pw[:, 0] = 1.0
        if K > 1:
            pw[:, 1:] = -delta[:, None]
            np.cumprod(pw[:, 1:], axis=1, out=pw[:, 1:])
        return pw

    def _usable(self, h: np.ndarray, lanes: np.ndarray) -> np.ndarray:
        radius = self.radius[lanes]
        return (radius > 0.0) & (np.abs(h - self.centre[lanes]) <= radius) & (h < 1.0)

    def values(self, h2, lanes) -> np.ndarray:
        """The profile of lane ``lanes[l]``'s trait at ``h2[l]``, shape (L,)."""
        h = np.atleast_1d(np.asarray(h2, dtype=float))
        lanes = np.asarray(lanes, dtype=int)
        out = np.empty(h.size)
        use = self._usable(h, lanes)
        i, j = np.flatnonzero(use), lanes[use]
        if i.size:
            pw = self._powers(h[i] - self.centre[j])
            sums = np.einsum("lk,lks->ls", pw, self.moments[j])
            p = self.profiles.rot.p
            A = np.einsum("lk,lkq->lq", pw, self.xx_moments[j]).reshape(i.size, p, p)
            logdet_V = self.logdet[j, 0] - np.einsum("lk,lk->l", pw[:, 1:], self.logdet[j, 1:])
            out[i] = self.profiles._finish(h[i], sums[:, 0], sums[:, 1:], A, logdet_V)
        rest = np.flatnonzero(~use)
        if rest.size:
            out[rest] = self.profiles.values(h[rest], self.cols[lanes[rest]])
        return out

    def slopes(self, h2, lanes) -> np.ndarray:
        r"""``dL/dh`` of lane ``lanes[l]``'s trait at ``h2[l] < 1``, shape (L,).

        Notes
        -----
        The derivatives of the series, ``d/dh sum_k (-delta)^k M_k =
        -sum_{k>=1} k (-delta)^(k-1) M_k``, give ``c'``, ``A'`` and
        ``d log|V| / dh``; with ``b = A^{-1} c``,
        ``rss' = (r'Wr)' - 2 b'c' + b'A'b`` and

        .. math::

            L'_{ML} = -\tfrac12 \Big[n' \frac{rss'}{rss} + \frac{d \log|V|}{dh}
                      + \frac{r_0}{1 - h}\Big], \qquad
            L'_{REML} = -\tfrac12 \Big[(n - p) \frac{rss'}{rss} + \frac{d \log|V|}{dh}
                      + \mathrm{tr}(A^{-1} A')\Big].
        """
        h = np.atleast_1d(np.asarray(h2, dtype=float))
        lanes = np.asarray(lanes, dtype=int)
        out = np.empty(h.size)
        use = self._usable(h, lanes)
        i, j = np.flatnonzero(use), lanes[use]
        rot = self.profiles.rot
        p = rot.p
        if i.size:
            pw = self._powers(h[i] - self.centre[j])
            K = pw.shape[1]
            dpw = np.zeros_like(pw)
            dpw[:, 1:] = -np.arange(1, K) * pw[:, :-1]
            sums = np.einsum("lk,lks->ls", pw, self.moments[j])
            dsums = np.einsum("lk,lks->ls", dpw, self.moments[j])
            A = np.einsum("lk,lkq->lq", pw, self.xx_moments[j]).reshape(i.size, p, p)
            dA = np.einsum("lk,lkq->lq", dpw, self.xx_moments[j]).reshape(i.size, p, p)
            dlogdet = np.einsum("lk,lk->l", pw[:, :-1], self.logdet[j, 1:] * np.arange(1, K))
            c, dc = sums[:, 1:], dsums[:, 1:]
            Linv = inverse_cholesky(A)
            Ainv = np.einsum("lka,lkb->lab", Linv, Linv)
            b = np.einsum("lab,lb->la", Ainv, c)
            rss = sums[:, 0] - np.einsum("la,la->l", b, c)
            drss = dsums[:, 0] - 2.0 * np.einsum("la,la->l", b, dc) + np.einsum("la,lab,lb->l", b, dA, b)
            hh = h[i]
            if self.profiles.method == "ml":
                r0 = rot.ml_null_directions
                out[i] = -0.5 * (rot.n_ml * drss / rss + dlogdet + (r0 / (1.0 - hh) if r0 else 0.0))
            else:
                tr = np.einsum("lab,lab->l", Ainv, dA)  # tr(A^{-1} A'), both symmetric
                out[i] = -0.5 * ((rot.n - p) * drss / rss + dlogdet + tr)
        rest = np.flatnonzero(~use)
        if rest.size:
            out[rest] = self.profiles.slopes(h[rest], self.cols[lanes[rest]])
        return out


def local_series(profiles: TraitProfiles, centre, cols, radius) -> LocalSeries:
    """Power series of the profiles of traits ``cols`` around ``centre`` (one lane each).

    Parameters
    ----------
    profiles : TraitProfiles
    centre : array_like, shape (L,)
        Each lane's h0 (lanes with the same h0 share one set of matrix
        products, so give few distinct centres, e.g. grid points).
    cols : array_like of int, shape (L,)
        Each lane's trait.
    radius : float or array_like
        The largest ``|h - h0|`` the series must cover.

    Returns
    -------
    LocalSeries
        A lane whose centre cannot carry a series of that radius (an
        eigenvalue makes ``|delta| max |u_i| > 1/2``, near h = 0 with a large
        d_i or near h = 1 with a small one) gets radius 0 and is evaluated
        directly.
    """
    centre = np.atleast_1d(np.asarray(centre, dtype=float))
    cols = np.asarray(cols, dtype=int)
    radius = np.broadcast_to(np.asarray(radius, dtype=float), centre.shape).copy()
    e = profiles.dm1
    p = profiles.rot.p
    n_stats = len(profiles.q)
    centres, group = np.unique(centre, return_inverse=True)
    group = np.asarray(group).ravel()
    plans = []
    for gi, h0 in enumerate(centres):
        lanes = np.flatnonzero(group == gi)
        if not 0.0 <= h0 < 1.0:
            radius[lanes] = 0.0
            continue
        w0 = 1.0 / (1.0 + h0 * e)
        u = e * w0
        ratio = float(np.max(radius[lanes])) * float(np.max(np.abs(u))) if u.size else 0.0
        if not np.isfinite(ratio) or ratio > _SERIES_RATIO or np.any(w0 <= 0):
            radius[lanes] = 0.0
            continue
        K = 1 if ratio == 0.0 else int(min(_SERIES_MAX_TERMS, max(2, np.ceil(np.log(_SERIES_TOL) / np.log(ratio)))))
        plans.append((lanes, h0, w0, u, K))
    K_max = max((plan[4] for plan in plans), default=1)
    moments = np.zeros((centre.size, K_max, n_stats))
    xx_moments = np.zeros((centre.size, K_max, p * p))
    logdet = np.zeros((centre.size, K_max))
    for lanes, h0, w0, u, K in plans:
        U = np.empty((K, e.size))  # u^k
        U[0] = 1.0
        U[1:] = u
        np.cumprod(U, axis=0, out=U)
        sums_u = U.sum(axis=1)
        P = np.multiply(U, w0, out=U)  # w0 u^k
        c = cols[lanes]
        for s, qk in enumerate(profiles.q):
            moments[lanes, :K, s] = (P @ qk[c].T).T
        xx_moments[lanes, :K] = P @ profiles.xx
        logdet[lanes, 0] = np.log1p(h0 * e).sum()
        if K > 1:
            logdet[lanes, 1:K] = sums_u[1:] / np.arange(1, K)
    return LocalSeries(profiles, cols, centre, radius, moments, xx_moments, logdet)


def series_near(profiles: TraitProfiles, h, cols, grid: np.ndarray, margin: float) -> LocalSeries:
    """:func:`local_series` of traits ``cols`` around the grid point nearest to each ``h``.

    The radius covers ``h +- margin`` (the points an optimum's polish and
    standard error evaluate); centres are grid points, so traits share them.
    """
    h = np.atleast_1d(np.asarray(h, dtype=float))
    grid = np.asarray(grid, dtype=float)
    safe = np.where(np.isfinite(h), h, 0.0)
    near = grid[np.argmin(np.abs(grid[None, :] - safe[:, None]), axis=1)]
    return local_series(profiles, near, cols, np.abs(safe - near) + margin)
