"""Independent reference computations for the tests: dense n x n linear algebra.

Nothing here uses the eigendecomposition: the likelihoods are computed from
``V = h K + (1 - h) I`` directly, with scipy's multivariate normal density for
ML and the textbook restricted likelihood for REML. Only for small n.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats


def gls(K, y, X, h):
    """Generalised least squares at fixed h: (b, rss, V)."""
    n = len(y)
    V = h * K + (1 - h) * np.eye(n)
    Vi = np.linalg.inv(V)
    XtViX = X.T @ Vi @ X
    b = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ b
    return b, float(r @ Vi @ r), V, XtViX


def ml_loglik(K, y, X, h):
    """max over b and sigma2 of the Gaussian log density, by scipy's logpdf."""
    b, rss, V, _ = gls(K, y, X, h)
    s2 = rss / len(y)
    return float(stats.multivariate_normal(X @ b, s2 * V, allow_singular=False).logpdf(y))


def reml_loglik(K, y, X, h):
    """Restricted log-likelihood, textbook form (Harville 1977), maximised over sigma2.

    -1/2 [ (n-p) log 2pi + log|S| + log|X'S^-1 X| - log|X'X| + r'S^-1 r ],  S = sigma2 V,
    with sigma2 = r'V^-1 r / (n - p).
    """
    n, p = X.shape
    b, rss, V, XtViX = gls(K, y, X, h)
    s2 = rss / (n - p)
    S = s2 * V
    _, logdet_S = np.linalg.slogdet(S)
    _, logdet_XSX = np.linalg.slogdet(XtViX / s2)
    _, logdet_XX = np.linalg.slogdet(X.T @ X)
    r = y - X @ b
    quad = r @ np.linalg.solve(S, r)
    return float(-0.5 * ((n - p) * np.log(2 * np.pi) + logdet_S + logdet_XSX - logdet_XX + quad))


def loglik(K, y, X, h, method):
    return ml_loglik(K, y, X, h) if method == "ml" else reml_loglik(K, y, X, h)


def brute_force_h2(K, y, X, method, lo=0.0, hi=1.0, points=2001):
    """Grid search, then a finer grid around the best point, repeated: h2 to ~1e-9."""
    best = None
    for _ in range(4):
        hs = np.linspace(lo, hi, points)
        vals = np.array([loglik(K, y, X, h, method) if h < 1 or np.linalg.matrix_rank(K) == len(y)
                         else -np.inf for h in hs])
        k = int(np.argmax(vals))
        best = (hs[k], vals[k])
        step = hs[1] - hs[0]
        lo, hi = max(0.0, hs[k] - step), min(1.0, hs[k] + step)
        points = 201
    return best


def dense_variance_components_ml(K, y, X):
    """ML over (sigma_g^2, sigma_e^2) by a general-purpose optimiser on the dense density."""
    n = len(y)

    def negll(theta):
        sg, se = np.exp(theta)
        V = sg * K + se * np.eye(n)
        Vi = np.linalg.inv(V)
        b = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
        return -stats.multivariate_normal(X @ b, V).logpdf(y)

    v0 = np.var(y)
    res = optimize.minimize(negll, np.log([v0 / 2, v0 / 2]), method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    sg, se = np.exp(res.x)
    return sg / (sg + se), -res.fun
