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
h < 1 the formulas above are finite.
"""

from __future__ import annotations

import numpy as np

from .eigen import RotatedData
from .wls import WLSSolution, solve_wls, solve_wls_paired

__all__ = ["unbounded_ml_directions", "profile_loglik", "profile_loglik_paired", "loglik_from_wls", "to_lmmlite", "from_lmmlite"]

LOG_2PI = float(np.log(2.0 * np.pi))


def _logdet_V(h2: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``sum_i log(h d_i + 1 - h)`` for each h, with ``log1p`` for accuracy near h = 0."""
    return np.log1p(np.asarray(h2, dtype=float)[..., None] * (d - 1.0)).sum(axis=-1)


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
    n, p = rot.n, rot.p
    logdet_V = _logdet_V(sol.h2, rot.d)
    if sol.rss.ndim == 2:
        logdet_V = logdet_V[:, None]
    with np.errstate(divide="ignore"):
        log_sigma2 = np.log(sol.sigma2)
    if sol.method == "ml":
        return -0.5 * (n * (LOG_2PI + log_sigma2) + logdet_V + n)
    return -0.5 * (
        (n - p) * (LOG_2PI + log_sigma2 + 1.0) + logdet_V + sol.logdet_XtWX - rot.logdet_XtX
    )


def _singular(h2: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Which h make ``h K + (1 - h) I`` singular (h = 1 with a zero eigenvalue)."""
    return (h2 >= 1.0) & bool(np.any(d == 0))


def unbounded_ml_directions(rot: RotatedData) -> int:
    """How many directions of K's null space the covariates span (0 in the usual case).

    Notes
    -----
    Along a direction u with ``K u = 0`` the variance is ``v (1 - h)``. If u
    is also in the column space of X, b can fit ``u'y`` exactly, and as h -> 1
    the ML likelihood grows without bound (like ``-1/2 log(1 - h)`` per such
    direction): ML then has no maximum. This happens for a centred kinship
    (``K 1 = 0``) with an intercept. REML is not affected: its
    ``log |X*'WX*|`` term cancels the growth exactly.
    """
    null = rot.d == 0
    if not np.any(null):
        return 0
    Xn = rot.X[null]
    s = np.linalg.svd(Xn, compute_uv=False)
    scale = max(float(np.linalg.norm(rot.X, 2)), np.finfo(float).tiny)
    return int(np.count_nonzero(s > 1e-8 * scale))


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
    ok = ~_singular(h2, rot.d)
    if np.any(ok):
        sol = solve_wls(rot, h2[ok], method)
        out[ok] = loglik_from_wls(sol, rot)
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
    ok = ~_singular(h2, rot.d)
    if np.any(ok):
        sol = solve_wls_paired(rot, h2[ok], columns[ok], method)
        out[ok] = loglik_from_wls(sol, rot)
    return out


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
