"""Step 3 of the algorithm: the profile log-likelihood of h2 (ML or REML).

Plugging the weighted least squares solution ``b(h)``, ``v(h)`` into the
Gaussian log-likelihood leaves a function of h alone. This module evaluates it
for many h values and many phenotypes at once.

Convention: the full Gaussian log-likelihood with every constant
-----------------------------------------------------------------
ML (``v = rss / n``)::

    L(h) = -1/2 [ n log(2 pi v) + sum_i log(h d_i + 1 - h) + n ]

REML (``v = rss / (n - p)``)::

    L(h) = -1/2 [ (n - p) (log(2 pi v) + 1) + sum_i log(h d_i + 1 - h)
                  + log |X*'WX*| - log |X'X| ]

These equal ``scipy.stats.multivariate_normal.logpdf`` of y (ML) and the
textbook restricted likelihood of n - p error contrasts (REML) at the
maximising b and v, and are the values GEMMA and FaST-LMM report. lmmlite and
R/qtl2 (``est_herit``) drop the constants; :func:`to_lmmlite` converts::

    ML:   ours = lmmlite + n/2 (log n - log 2 pi - 1)
    REML: ours = lmmlite + n/2 log(n - p) - (n - p)/2 (log 2 pi + 1)

Singular kinships
-----------------
If K has zero eigenvalues, ``h K + (1 - h) I`` is singular at h = 1 only.
There the density is zero for data with a residual outside the column space of
K, so L(1) = -inf exactly (not NaN, and without dividing by zero); for every
h < 1 the formulas above are finite. When the covariates can fit K's null
space exactly, L(1) is the finite limit computed by :func:`loglik_at_one`.

One case needs more: a direction u with ``K u = 0`` that lies in the span of
X (a centred kinship, ``K 1 = 0``, with an intercept). Along u the variance is
``v (1 - h)`` and b fits ``u'y`` exactly, so the full ML likelihood grows like
``-1/2 log(1 - h)`` without bound as h -> 1: a fake optimum. Such a direction
carries no information about h or v once b is free, so ML uses the likelihood
of the data projected off those ``r0`` directions (``RotatedData.ml_null_directions``)::

    L(h) = -1/2 [ n' log(2 pi v) + sum_i log(h d_i + 1 - h) - r0 log(1 - h) + n' ],
    n' = n - r0,  v = rss / n'

(the weighted least squares fit leaves no residual along u, so rss is
unchanged). With r0 = 0, the usual case, this is the formula above. REML needs
no change: its ``log |X*'WX*|`` term already cancels the growth.
"""

from __future__ import annotations

import numpy as np

from .eigen import RotatedData
from .wls import WLSSolution, solve_wls, solve_wls_paired, weights

__all__ = [
    "polish_h2",
    "slope_root",
    "h2_identifiable",
    "loglik_at_one",
    "profile_loglik",
    "profile_loglik_paired",
    "loglik_from_rss",
    "loglik_from_wls",
    "profile_slopes",
    "to_lmmlite",
    "from_lmmlite",
]

LOG_2PI = float(np.log(2.0 * np.pi))

#: Absolute tolerance on h of :func:`slope_root` (a root of the profile's slope, i.e. the
#: optimum; the fixed-h2 LOD moves by about 1e-13 when h2 moves by this much).
ROOT_XTOL = 1e-13


def _logdet_V(h2: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``sum_i log(h d_i + 1 - h)`` for each h, with ``log1p`` for accuracy near h = 0."""
    return np.log1p(np.asarray(h2, dtype=float)[..., None] * (d - 1.0)).sum(axis=-1)


def loglik_from_rss(method: str, rss, n: int, p, logdet_V, *, logdet_XtWX=(), logdet_XtX: float = 0.0,
                    r0=0, h=0.0) -> np.ndarray:
    """The profile log-likelihood from its sufficient statistics: the one formula of every fit and scan.

    Parameters
    ----------
    method : {"ml", "reml"}
    rss : array_like
        Weighted residual sum of squares ``sum_i w_i r_i^2`` at the WLS solution.
    n, p : int or array_like
        Observations and coefficients (``p`` may differ per lane, e.g. the
        covariates plus a marker's columns; unused by ML).
    logdet_V : array_like
        ``sum_i log(h d_i + 1 - h)``.
    logdet_XtWX : sequence of array_like
        REML: the terms of ``log |X*'WX*|``, added in order (e.g.
        ``log |A| + log |S|`` for covariates and a marker's whitened columns).
    logdet_XtX : float
        REML: ``log |X'X|``.
    r0, h : array_like
        ML: directions of K's null space that the columns span, left out as
        in the module docstring (then h is needed).

    Returns
    -------
    ndarray
        The broadcast shape of the inputs.

    Notes
    -----
    ML (``n' = n - r0``):
    ``L = -1/2 [n' (log 2 pi + log(rss / n')) + sum_i log v_i - r0 log(1 - h) + n']``;
    REML: ``L = -1/2 [(n - p)(log 2 pi + log(rss / (n - p)) + 1) + sum_i log v_i
    + log |X*'WX*| - log |X'X|]``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "ml":
            n_ml = n - r0
            total = n_ml * (LOG_2PI + np.log(rss / n_ml)) + logdet_V
            if np.any(r0):
                total = total - np.where(np.asarray(r0) > 0, r0 * np.log1p(-np.minimum(h, 1.0)), 0.0)
            return -0.5 * (total + n_ml)
        dof = n - p
        total = dof * (LOG_2PI + np.log(rss / dof) + 1.0) + logdet_V
        for term in logdet_XtWX:
            total = total + term
        return -0.5 * (total - logdet_XtX)


def loglik_from_wls(sol: WLSSolution, rot: RotatedData) -> np.ndarray:
    """The profile log-likelihood from a weighted least squares solution.

    Parameters
    ----------
    sol : WLSSolution
        From :func:`lmmcore.wls.solve_wls` (shape (k, m)) or
        :func:`lmmcore.wls.solve_wls_paired` (shape (L,)).
    rot : RotatedData

    Returns
    -------
    ndarray
        Same shape as ``sol.rss``.

    Notes
    -----
    See the module docstring for the formulas (ML and REML, all constants).
    """
    logdet_V = _logdet_V(sol.h2, rot.d)
    h = sol.h2
    if sol.rss.ndim == 2:
        logdet_V, h = logdet_V[:, None], h[:, None]
    if sol.method == "ml":
        return loglik_from_rss("ml", sol.rss, rot.n, rot.p, logdet_V, r0=rot.ml_null_directions, h=h)
    return loglik_from_rss("reml", sol.rss, rot.n, rot.p, logdet_V, logdet_XtWX=(sol.logdet_XtWX,),
                           logdet_XtX=rot.logdet_XtX)


def _singular(h2: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Which h make ``h K + (1 - h) I`` singular (h = 1 with a zero eigenvalue)."""
    return (h2 >= 1.0) & bool(np.any(d == 0))


def loglik_at_one(rot: RotatedData, method: str, columns=None) -> np.ndarray:
    """The profile log-likelihood at h2 = 1 for a singular K, as the limit h -> 1.

    Parameters
    ----------
    rot : RotatedData
    method : {"reml", "ml"}
    columns : array_like of int, optional
        Phenotype columns (all by default).

    Returns
    -------
    ndarray
        One value per column: ``-inf`` unless the covariates can fit K's null
        space exactly (``rank(X*_0) = z``, z the number of zero eigenvalues).

    Notes
    -----
    With ``X*_0`` the z rows of zero eigenvalues (singular values ``S``, right
    singular vectors ``[V1 V2]``) the null rows are fitted exactly by
    ``b0 = V1 S^{-1} U' y*_0``; the rest of b, ``V2 c``, is the weighted least
    squares fit of ``y*_+ - X*_+ b0`` on ``X*_+ V2`` with weights ``1 / d_i``.
    Then, with ``rss`` that fit's residual sum of squares,

    ML (``n' = n - z``): ``-1/2 [n' log(2 pi rss / n') + sum_+ log d_i + n']``;

    REML: ``-1/2 [(n-p)(log(2 pi v) + 1) + sum_+ log d_i + log|S^2|
    + log|V2' X*_+' W X*_+ V2| - log|X'X|]``, ``v = rss / (n - p)``,

    the limits of the formulas of this module as h -> 1 (the ``log(1 - h)``
    terms cancel). For ML this needs ``r0 = z`` (see
    :attr:`RotatedData.ml_null_directions`); otherwise ML has no maximum.
    """
    y = rot.y if columns is None else rot.y[:, np.asarray(columns, dtype=int)]
    m = y.shape[1]
    null = rot.d == 0
    z = int(null.sum())
    if z == 0:
        raise ValueError("loglik_at_one is for singular kinships")
    out = np.full(m, -np.inf)
    X0, Xp = rot.X[null], rot.X[~null]
    p = rot.p
    if p < z or (method == "ml" and rot.ml_null_directions < z):
        return out
    U, S, Vt = np.linalg.svd(X0, full_matrices=True)
    scale = max(float(np.linalg.norm(rot.X, 2)), np.finfo(float).tiny)
    if np.count_nonzero(S > 1e-8 * scale) < z:
        return out
    S = S[:z]
    b0 = Vt[:z].T @ ((U[:, :z].T @ y[null]) / S[:, None])  # (p, m)
    resid = y[~null] - Xp @ b0
    w = 1.0 / rot.d[~null]
    logdet_rest = 0.0
    if p > z:
        A = Xp @ Vt[z:].T
        AtWA = A.T @ (w[:, None] * A)
        c = np.linalg.solve(AtWA, A.T @ (w[:, None] * resid))
        resid = resid - A @ c
        logdet_rest = float(np.linalg.slogdet(AtWA)[1])
    rss = w @ (resid * resid)
    logdet_d = float(np.log(rot.d[~null]).sum())
    with np.errstate(divide="ignore"):
        if method == "ml":
            n1 = rot.n - z
            return -0.5 * (n1 * (LOG_2PI + np.log(rss / n1)) + logdet_d + n1)
        dof = rot.n - p
        return -0.5 * (dof * (LOG_2PI + np.log(rss / dof) + 1.0) + logdet_d
                       + 2.0 * float(np.log(S).sum()) + logdet_rest - rot.logdet_XtX)


def h2_identifiable(rot: RotatedData) -> bool:
    """False when every h2 fits equally well (K acts like a multiple of I on the residuals).

    Notes
    -----
    The information about h2 lies in the n - p error contrasts, whose
    covariance is ``v P (h D + (1 - h) I) P`` in the rotated basis, with
    ``P = I - Q Q'`` the projection off the columns of ``X*`` (Q orthonormal).
    If ``P D P = c P`` then h and v are confounded and the profile is flat:
    K = I, K = c I, or K = J (all ones) with an intercept. The test is the
    spread of the eigenvalues of ``PDP`` on the residual space,
    ``tr(DPDP) - tr(DP)^2 / (n - p)``, computed in O(n p^2) from
    ``tr(DP) = sum d_i - sum_i d_i ||q_i||^2`` and
    ``tr(DPDP) = sum d_i^2 - 2 sum_i d_i^2 ||q_i||^2 + ||Q' D Q||_F^2``.
    """
    Q, _ = np.linalg.qr(rot.X)
    d = rot.d
    lev = np.einsum("ik,ik->i", Q, Q)
    tr_dp = float(d.sum() - d @ lev)
    QDQ = Q.T @ (d[:, None] * Q)
    tr_dpdp = float((d * d).sum() - 2.0 * (d * d) @ lev + (QDQ * QDQ).sum())
    dof = rot.n - rot.p
    spread = tr_dpdp - tr_dp * tr_dp / dof
    return spread > 1e-10 * max(tr_dpdp, np.finfo(float).tiny)


def profile_loglik(rot: RotatedData, h2, method: str = "reml") -> np.ndarray:
    """Profile log-likelihood of every phenotype at every h of a grid.

    Parameters
    ----------
    rot : RotatedData
        Rotated phenotypes (n x m) and covariates.
    h2 : array_like, shape (k,)
        Heritabilities in [0, 1].
    method : {"reml", "ml"}

    Returns
    -------
    ndarray, shape (k, m)
        ``L(h)``; ``-inf`` at h = 1 when K is singular.

    Notes
    -----
    One call costs O(k n p (p + m)) after the rotation: the whole curve for
    thousands of phenotypes is a handful of matrix products.
    """
    h2 = np.atleast_1d(np.asarray(h2, dtype=float))
    if np.any((h2 < 0) | (h2 > 1)) or not np.all(np.isfinite(h2)):
        raise ValueError("h2 values must lie in [0, 1]")
    out = np.full((h2.size, rot.n_phenotypes), -np.inf)
    singular = _singular(h2, rot.d)
    if np.any(~singular):
        sol = solve_wls(rot, h2[~singular], method)
        out[~singular] = loglik_from_wls(sol, rot)
    if np.any(singular):
        out[singular] = loglik_at_one(rot, method)
    return out


def profile_loglik_paired(rot: RotatedData, h2, columns, method: str = "reml") -> np.ndarray:
    """Profile log-likelihood where lane l is phenotype ``columns[l]`` at ``h2[l]``.

    Returns
    -------
    ndarray, shape (L,)
    """
    h2 = np.atleast_1d(np.asarray(h2, dtype=float))
    columns = np.asarray(columns, dtype=int)
    out = np.full(h2.shape, -np.inf)
    singular = _singular(h2, rot.d)
    if np.any(~singular):
        sol = solve_wls_paired(rot, h2[~singular], columns[~singular], method)
        out[~singular] = loglik_from_wls(sol, rot)
    if np.any(singular):
        out[singular] = loglik_at_one(rot, method, columns[singular])
    return out


def profile_slopes(rot: RotatedData, h: np.ndarray, columns: np.ndarray, method: str) -> np.ndarray:
    r"""``dL/dh`` of phenotypes' profile log-likelihoods (ML or REML), phenotype ``columns[l]`` at ``h[l]``.

    ML leaves out the ``r0`` directions of K's null space that the covariates
    span (``n' = n - r0``), as the likelihood of this module does.

    Notes
    -----
    With ``w_i = 1 / (1 + h (d_i - 1))``, ``r`` the weighted least squares
    residual and ``A = X*'WX*`` (the envelope theorem removes the derivative
    of b):

    .. math::

        \frac{d\,\mathrm{rss}}{dh} = -\sum_i (d_i - 1) w_i^2 r_i^2, \qquad
        \frac{d}{dh} \sum_i \log v_i = \sum_i (d_i - 1) w_i,

        L'_{ML} = -\tfrac12 \Big[n' \frac{\mathrm{rss}'}{\mathrm{rss}}
                 + \sum_i (d_i - 1) w_i + \frac{r_0}{1 - h}\Big], \qquad
        L'_{REML} = -\tfrac12 \Big[(n - p) \frac{\mathrm{rss}'}{\mathrm{rss}}
                 + \sum_i (d_i - 1) w_i
                 - \mathrm{tr}\big(A^{-1} X^{*\prime} \mathrm{diag}((d - 1) w^2) X^*\big)\Big].
    """
    h = np.asarray(h, dtype=float)
    d1 = rot.d - 1.0
    w = weights(h, rot.d)  # (L, n)
    X = rot.X
    Y = rot.y[:, columns].T  # (L, n)
    A = np.einsum("ln,na,nb->lab", w, X, X)
    b = np.linalg.solve(A, ((w * Y) @ X)[..., None])[..., 0]
    r = Y - b @ X.T
    wr2 = w * r * r
    rss = wr2.sum(axis=1)
    slope_rss = -(wr2 * w) @ d1
    trace = w @ d1
    if method == "ml":
        r0 = rot.ml_null_directions
        return -0.5 * (rot.n_ml * slope_rss / rss + trace + (r0 / (1.0 - h) if r0 else 0.0))
    B = np.einsum("ln,na,nb->lab", d1 * w * w, X, X)
    tr = np.trace(np.linalg.solve(A, B), axis1=-2, axis2=-1)
    return -0.5 * ((rot.n - rot.p) * slope_rss / rss + trace - tr)


def to_lmmlite(loglik, n: int, p: int, method: str):
    """Convert our log-likelihood to lmmlite's / R/qtl2's convention (constants dropped).

    Notes
    -----
    ML: ``lmmlite = ours - n/2 (log n - log 2 pi - 1)``.
    REML: ``lmmlite = ours - n/2 log(n - p) + (n - p)/2 (log 2 pi + 1)``.
    """
    return np.asarray(loglik) - _lmmlite_offset(n, p, method)


def from_lmmlite(loglik, n: int, p: int, method: str):
    """Convert an lmmlite / R/qtl2 log-likelihood to ours (the inverse of :func:`to_lmmlite`)."""
    return np.asarray(loglik) + _lmmlite_offset(n, p, method)


def _lmmlite_offset(n: int, p: int, method: str) -> float:
    if method == "ml":
        return 0.5 * n * (np.log(n) - LOG_2PI - 1.0)
    return 0.5 * n * np.log(n - p) - 0.5 * (n - p) * (LOG_2PI + 1.0)


def slope_root(slope, lo, hi, f_lo, f_hi, xtol: float = ROOT_XTOL, maxiter: int = 100,
               x0: np.ndarray | None = None) -> np.ndarray:
    """The root of a decreasing slope in each bracket, all lanes at once (Illinois' regula falsi).

    Parameters
    ----------
    slope : callable
        ``slope(h, lanes)``: the slope of lane ``lanes[i]`` at ``h[i]``.
    lo, hi : ndarray, shape (L,)
        Brackets with ``f_lo = slope(lo) > 0 > f_hi = slope(hi)``.
    xtol : float
        Absolute tolerance: a bracket narrower than ``xtol + 8 eps |h|`` is done.
    maxiter : int
    x0 : ndarray, optional
        A first guess of each root (e.g. by interpolation): the first step
        evaluates there instead of the regula falsi point (a guess outside
        the bracket, or NaN, is ignored).

    Returns
    -------
    ndarray, shape (L,)
        Each lane's root: the midpoint of a final bracket narrower than the
        tolerance, the last point of a regula falsi step shorter than it, or
        a point where the slope is exactly 0.

    Notes
    -----
    Regula falsi ``x = lo - f_lo (hi - lo) / (f_hi - f_lo)``; an end that is
    kept twice in a row has its slope halved (the Illinois rule), which makes
    the convergence superlinear (order about 1.44) from both sides: about 8
    evaluations from a bracket 1e-2 wide to rounding, where bisection takes
    about 50. A step that would leave the bracket, or two steps that did not
    halve it, are replaced by a bisection, so the bracket shrinks at least as
    fast as bisection's every other step; a step that would land within a few
    floating-point numbers of an end lands that far past it instead (as in
    Brent's zeroin), so that once one end has converged the other end is
    brought next to it and the bracket closes. A NaN slope counts as
    negative (the upper end moves), as in bisection.
    """
    L = np.size(lo)
    st = dict(act=np.arange(L), lo=np.array(lo, dtype=float), hi=np.array(hi, dtype=float),
              f_lo=np.array(f_lo, dtype=float), f_hi=np.array(f_hi, dtype=float),
              kept=np.zeros(L, dtype=np.int8),  # +1: the upper end was kept last time, -1: the lower end
              before=np.full(L, np.inf), last=np.full(L, np.inf),  # the bracket's width two and one steps ago
              x_last=np.full(L, np.nan),  # the point evaluated last
              guess=np.full(L, np.nan) if x0 is None else np.array(x0, dtype=float))
    out = np.full(L, np.nan)
    eps = np.finfo(float).eps

    def finish(mask, value):
        out[st["act"][mask]] = value[mask]
        for key in st:
            st[key] = st[key][~mask]

    for _ in range(maxiter):
        lo, hi = st["lo"], st["hi"]
        tiny = 4.0 * eps * np.maximum(np.abs(lo), np.abs(hi)) + 0.5 * xtol
        mid = 0.5 * (lo + hi)
        finish((hi - lo <= 2.0 * tiny) | (mid <= lo) | (mid >= hi), mid)
        if st["act"].size == 0:
            return out
        lo, hi, f_lo, f_hi = st["lo"], st["hi"], st["f_lo"], st["f_hi"]
        width = hi - lo
        mid = 0.5 * (lo + hi)
        tiny = 4.0 * eps * np.maximum(np.abs(lo), np.abs(hi)) + 0.5 * xtol
        with np.errstate(divide="ignore", invalid="ignore"):
            x = lo - f_lo * (width / (f_hi - f_lo))
        guess = st["guess"]
        x = np.where((guess > lo) & (guess < hi), guess, x)  # the caller's guess, first step only
        st["guess"] = np.full(x.size, np.nan)
        bisect = ~((x >= lo) & (x <= hi)) | (width > 0.5 * st["before"])
        x = np.where(bisect, mid, x)
        x = np.clip(x, lo + tiny, hi - tiny)  # next to an end: step a few numbers past it (zeroin's rule)
        with np.errstate(divide="ignore", invalid="ignore"):
            fx = slope(x, st["act"])
        # an exact zero, or a regula falsi step below the tolerance (superlinear: the step bounds the error)
        converged = (fx == 0.0) | (~bisect & (np.abs(x - st["x_last"]) <= tiny))
        up = fx > 0.0  # the root lies above x: x becomes the lower end, the upper end is kept
        kept = st["kept"]
        st["f_hi"] = np.where(up & (kept == 1) & ~bisect, 0.5 * f_hi, f_hi)
        st["f_lo"] = np.where(~up & (kept == -1) & ~bisect, 0.5 * f_lo, f_lo)
        st["lo"], st["f_lo"] = np.where(up, x, lo), np.where(up, fx, st["f_lo"])
        st["hi"], st["f_hi"] = np.where(up, hi, x), np.where(up, st["f_hi"], fx)
        st["kept"] = np.where(up, 1, -1).astype(np.int8)
        st["before"], st["last"] = st["last"], width
        st["x_last"] = x
        finish(converged, x)
    out[st["act"]] = 0.5 * (st["lo"] + st["hi"])
    return out


def polish_h2(rot: RotatedData, h2: np.ndarray, method: str, step: float = 1e-5, slope=None) -> np.ndarray:
    """Pin interior optima of the profile to rounding by a root of ``dL/dh``.

    Brent's method on function values locates a maximum to about
    ``sqrt(eps)`` relative (1e-8); the fixed-h2 LOD moves with h2 to first
    order, so a LOD reproducible to 1e-8 (for instance between ``K`` and
    ``2K``, whose optima map exactly onto each other) needs more. The slope
    (:func:`profile_slopes`, or ``slope(h, columns)`` when given, e.g. the
    sufficient statistics' :meth:`lmmcore.profile_stats.TraitProfiles.slopes`)
    changes sign at the optimum inside ``[h - step, h + step]``; the root in
    that bracket, all phenotypes at once, is found to rounding by
    :func:`slope_root` (about 10 evaluations). Optima on or next to a
    boundary, and brackets without a sign change, are kept.
    """
    out = np.array(h2, dtype=float)
    lo, hi = out - step, out + step
    cols = np.flatnonzero(np.isfinite(out) & (lo > 0.0) & (hi < 1.0))
    if cols.size == 0:
        return out
    if slope is None:
        slope = (lambda h, c: profile_slopes(rot, h, c, method))
    lo, hi = lo[cols], hi[cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = slope(np.concatenate([lo, hi]), np.concatenate([cols, cols]))
    f_lo, f_hi = f[: cols.size], f[cols.size:]
    ok = np.isfinite(f_lo) & np.isfinite(f_hi) & (f_lo > 0.0) & (f_hi < 0.0)
    cols = cols[ok]
    out[cols] = slope_root(lambda h, lanes: slope(h, cols[lanes]), lo[ok], hi[ok], f_lo[ok], f_hi[ok])
    return out
