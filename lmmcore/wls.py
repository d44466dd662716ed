"""Step 2 of the algorithm: weighted least squares at a fixed heritability.

In the rotated space the covariance ``s K + t I`` is ``v diag(h d_i + 1 - h)``,
so for fixed h the coefficients and the residual sum of squares have closed
forms with weights ``w_i = 1 / (h d_i + 1 - h)``. Everything here is
vectorised: over a grid of h values shared by all phenotypes
(:func:`solve_wls`), or over (h, phenotype) pairs in which every phenotype has
its own h (:func:`solve_wls_paired`, used by the optimiser).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .eigen import RotatedData

__all__ = ["WLSSolution", "solve_wls", "solve_wls_paired", "variance_factors"]

#: Entries of the (k, n, m) residual array computed at once.
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class WLSSolution:
    """The weighted least squares fit at fixed h.

    Shapes are ``(k, m)`` for a grid of k values of h and m phenotypes
    (:func:`solve_wls`), or ``(L,)`` for L paired lanes
    (:func:`solve_wls_paired`); ``beta`` has a trailing axis of length p.

    Attributes
    ----------
    h2 : ndarray
        The heritabilities at which the solution was computed.
    beta : ndarray
        ``b(h) = (X*'WX*)^{-1} X*'W y*``.
    rss : ndarray
        ``sum_i w_i (y*_i - x*_i' b)^2``.
    sigma2 : ndarray
        Total variance ``v(h) = rss / n`` (ML; ``n - r0`` when K's null space
        meets the span of X, see :mod:`lmmcore.likelihood`) or ``rss / (n - p)`` (REML).
    logdet_XtWX : ndarray
        ``log |X*'WX*|``.
    XtWX : ndarray, shape (k, p, p) or (L, p, p)
        ``X*'WX*`` itself (``sigma2`` times its inverse is the covariance of ``beta``).
    method : str
        ``"ml"`` or ``"reml"``: which divisor ``sigma2`` uses.
    """

    h2: np.ndarray
    beta: np.ndarray
    rss: np.ndarray
    sigma2: np.ndarray
    logdet_XtWX: np.ndarray
    XtWX: np.ndarray
    method: str


def variance_factors(h2: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``h d_i + 1 - h`` for every h (rows) and eigenvalue (columns).

    Written as ``1 + h (d_i - 1)`` it is exact at h = 0 and at h = 1.
    """
    h2 = np.asarray(h2, dtype=float)
    return 1.0 + h2[..., None] * (d - 1.0)


def _check_method(method: str) -> str:
    method = str(method).lower()
    if method not in ("ml", "reml"):
        raise ValueError(f"method must be 'ml' or 'reml', not {method!r}")
    return method


def weights(h2: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The weights ``w_i = 1 / (h d_i + 1 - h)`` for every h (rows) and eigenvalue (columns).

    Used by every step that weights the rotated data: the fit, the fixed-h2
    and the exact scan. Raises ValueError where a factor is not positive
    (h = 1 with a singular kinship).
    """
    factors = variance_factors(h2, d)
    if np.any(factors <= 0):
        raise ValueError(
            "h2 = 1 makes the covariance singular for this kinship (it has zero "
            "eigenvalues); the weighted least squares solution is not defined there"
        )
    return 1.0 / factors


def _normal_equations(W: np.ndarray, X: np.ndarray):
    """``X*'WX*`` for every row of W and its log-determinant.

    All rows at once as one matrix product: ``(X*'WX*)_{ab} = sum_i W_i X*_ia X*_ib``
    is ``W @ XX`` with ``XX_i = vec(x*_i x*_i')``.
    """
    p = X.shape[1]
    XX = (X[:, :, None] * X[:, None, :]).reshape(X.shape[0], p * p)
    XtWX = (W @ XX).reshape(W.shape[0], p, p)
    chol = np.linalg.cholesky(XtWX)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    return XtWX, logdet


def solve_wls(rot: RotatedData, h2, method: str = "reml") -> WLSSolution:
    """Weighted least squares for every phenotype at every h of a grid.

    Parameters
    ----------
    rot : RotatedData
        Rotated phenotypes (n x m) and covariates (n x p).
    h2 : array_like, shape (k,)
        Heritabilities in [0, 1] at which ``h d_i + 1 - h > 0`` for all i.
    method : {"reml", "ml"}
        Divisor of ``sigma2``.

    Returns
    -------
    WLSSolution
        Arrays of shape (k, m); ``beta`` of shape (k, m, p).

    Notes
    -----
    With ``w_i = 1 / (h d_i + 1 - h)`` and ``W = diag(w)``:

    .. math::

        b(h) = (X^{*\\prime} W X^*)^{-1} X^{*\\prime} W y^*, \\qquad
        \\mathrm{rss}(h) = \\sum_i w_i (y^*_i - x^{*\\prime}_i b)^2 .

    The residuals are formed explicitly (not as ``y'Wy - b'X'Wy``) so that a
    phenotype whose mean is large relative to its spread keeps its precision.
    Cost O(k n p (p + m)); the (k, n, m) residuals are made in chunks of h.
    """
    method = _check_method(method)
    h2 = np.atleast_1d(np.asarray(h2, dtype=float))
    W = weights(h2, rot.d)  # (k, n)
    XtWX, logdet = _normal_equations(W, rot.X)
    XtWY = np.stack([(W * rot.X[:, a]) @ rot.y for a in range(rot.p)], axis=1)  # (k, p, m)
    beta = np.linalg.solve(XtWX, XtWY)  # (k, p, m)
    k, n, m = len(h2), rot.n, rot.n_phenotypes
    rss = np.empty((k, m))
    step = max(1, _CHUNK_ELEMENTS // max(n * m, 1))
    for start in range(0, k, step):
        sl = slice(start, start + step)
        resid = rot.y[None, :, :] - rot.X @ beta[sl]
        rss[sl] = np.matmul(W[sl, None, :], resid * resid)[:, 0, :]
    divisor = rot.n_ml if method == "ml" else n - rot.p
    return WLSSolution(
        h2=h2,
        beta=np.moveaxis(beta, 1, 2),
        rss=rss,
        sigma2=rss / divisor,
        logdet_XtWX=np.broadcast_to(logdet[:, None], (k, m)),
        XtWX=XtWX,
        method=method,
    )


def solve_wls_paired(rot: RotatedData, h2, columns, method: str = "reml") -> WLSSolution:
    """Weighted least squares where lane l fits phenotype ``columns[l]`` at ``h2[l]``.

    This is what the vectorised optimiser calls: every phenotype (and every
    bracket of every phenotype) moves to its own h at each iteration.

    Parameters
    ----------
    rot : RotatedData
    h2 : array_like, shape (L,)
    columns : array_like of int, shape (L,)
        Which phenotype column of ``rot.y`` each lane fits.
    method : {"reml", "ml"}

    Returns
    -------
    WLSSolution
        Arrays of shape (L,); ``beta`` of shape (L, p).

    Notes
    -----
    Same formulas as :func:`solve_wls`; cost O(L n p^2).
    """
    method = _check_method(method)
    h2 = np.atleast_1d(np.asarray(h2, dtype=float))
    columns = np.asarray(columns, dtype=int)
    W = weights(h2, rot.d)  # (L, n)
    XtWX, logdet = _normal_equations(W, rot.X)
    Y = rot.y[:, columns].T  # (L, n)
    XtWy = (W * Y) @ rot.X
    beta = np.linalg.solve(XtWX, XtWy[:, :, None])[:, :, 0]
    resid = Y - beta @ rot.X.T
    rss = np.einsum("ln,ln->l", W, resid * resid)
    divisor = rot.n_ml if method == "ml" else rot.n - rot.p
    return WLSSolution(h2, beta, rss, rss / divisor, logdet, XtWX, method)
