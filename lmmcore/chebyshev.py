"""Maximise many smooth one-dimensional functions from their values at Chebyshev nodes.

The exact genome scan (:mod:`lmmcore.scan`) re-estimates h2 at every marker.
Evaluating a marker's profile log-likelihood at an h of its own costs a pass
over all n individuals; evaluating *all* markers at a *shared* h is a matrix
product, which is many times cheaper per value. So the scan evaluates every
marker at a few shared nodes of an interval that holds its maximum, replaces
its profile there by the polynomial through those values, and maximises the
polynomial. This module holds that polynomial step; it knows nothing about
likelihoods.

Notation: an interval is mapped to ``x`` in ``[-1, 1]``; the ``k`` nodes are
the Chebyshev-Lobatto points ``x_j = -cos(pi j / (k - 1))`` (both ends
included); the interpolant is ``p(x) = sum_m a_m T_m(x)`` with ``T_m`` the
Chebyshev polynomials of the first kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev as C

__all__ = ["lobatto_nodes", "coefficients", "node_weights", "evaluate", "tail", "SeriesMaximum", "maximize_series"]

#: Points per node at which the interpolant is scanned before Newton's method.
_DENSE_PER_NODE = 4
#: Newton iterations on ``p'(x) = 0`` (quadratic convergence from the dense scan's best point).
_NEWTON_STEPS = 8


@lru_cache(maxsize=8)
def lobatto_nodes(k: int) -> np.ndarray:
    """The ``k`` Chebyshev-Lobatto points of ``[-1, 1]`` in increasing order.

    Parameters
    ----------
    k : int
        Number of nodes, at least 3.

    Returns
    -------
    numpy.ndarray, shape (k,)
        ``-cos(pi j / (k - 1))`` for ``j = 0 .. k - 1``; read-only.
    """
    if k < 3:
        raise ValueError(f"need at least 3 Chebyshev nodes, not {k}")
    x = -np.cos(np.pi * np.arange(k) / (k - 1))
    x[(k - 1) // 2] = 0.0 if k % 2 else x[(k - 1) // 2]  # exact centre for odd k
    x.setflags(write=False)
    return x


@lru_cache(maxsize=8)
def _inverse_vandermonde(k: int) -> np.ndarray:
    """``T^{-1}`` with ``T[j, m] = T_m(x_j)``: values at the nodes to coefficients."""
    inv = np.linalg.inv(C.chebvander(lobatto_nodes(k), k - 1))
    inv.setflags(write=False)
    return inv


def coefficients(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients of the polynomials through values at the nodes.

    Parameters
    ----------
    values : numpy.ndarray, shape (k, ...)
        ``values[j]`` at node ``x_j`` of :func:`lobatto_nodes`; any trailing
        shape (one polynomial per trailing index).

    Returns
    -------
    numpy.ndarray, shape (k, ...)
        ``a`` with ``p(x) = sum_m a[m] T_m(x)`` and ``p(x_j) = values[j]``.

    Notes
    -----
    A fixed k x k matrix (the inverse of the Chebyshev-Vandermonde matrix at
    the Lobatto points, whose condition number is about sqrt(2)) applied to
    all polynomials at once: one matrix product.
    """
    values = np.asarray(values, dtype=float)
    k = values.shape[0]
    flat = values.reshape(k, -1)
    return (_inverse_vandermonde(k) @ flat).reshape(values.shape)


def node_weights(x: np.ndarray, k: int) -> np.ndarray:
    """Weights ``w`` with ``p(x_l) = sum_j w[l, j] values[j]`` for the interpolant through ``k`` node values.

    Parameters
    ----------
    x : numpy.ndarray, shape (L,)
        Points of ``[-1, 1]``.
    k : int
        Number of Lobatto nodes.

    Returns
    -------
    numpy.ndarray, shape (L, k)
        ``T(x) T^{-1}``: the same weights interpolate any quantity given at the nodes.
    """
    return C.chebvander(np.asarray(x, dtype=float), k - 1) @ _inverse_vandermonde(k)


def evaluate(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``p_l(x_l)`` for each polynomial ``l``: ``coef`` (k, L, ...) at ``x`` (L,)."""
    coef = np.asarray(coef, dtype=float)
    x = np.asarray(x, dtype=float)
    basis = C.chebvander(x, coef.shape[0] - 1)  # (L, k)
    return np.einsum("lm,ml...->l...", basis, coef)


def tail(coef: np.ndarray) -> np.ndarray:
    """``|a_{k-2}| + |a_{k-1}|``: an estimate of the interpolation error of each polynomial.

    For a function analytic near the interval the coefficients decay
    geometrically, and the error of the interpolant is of the size of the
    last ones.
    """
    coef = np.asarray(coef, dtype=float)
    return np.abs(coef[-1]) + np.abs(coef[-2])


@dataclass(frozen=True)
class SeriesMaximum:
    """Where each polynomial is largest on ``[-1, 1]``.

    Attributes
    ----------
    x : numpy.ndarray, shape (L,)
        The maximiser in ``[-1, 1]`` (an end when the polynomial is largest there).
    value : numpy.ndarray, shape (L,)
        ``p(x)``.
    """

    x: np.ndarray
    value: np.ndarray


def maximize_series(coef: np.ndarray) -> SeriesMaximum:
    """The maximum on ``[-1, 1]`` of each Chebyshev series, all at once.

    Parameters
    ----------
    coef : numpy.ndarray, shape (k, L)
        Coefficients of L polynomials of degree k - 1 (from :func:`coefficients`).

    Returns
    -------
    SeriesMaximum

    Notes
    -----
    Each polynomial is first evaluated at ``4 k`` points of the interval
    (clustered at the ends as the Lobatto points are), which locates its
    global maximum to within one spacing ``[z_{i-1}, z_{i+1}]``. Newton's
    method on ``p'(x) = 0`` then runs from the best point, safeguarded: a step
    that leaves the bracket or meets ``p'' >= 0`` is replaced by bisection
    of the bracket on the sign of ``p'``. The result is kept only if it is
    not below the best scanned point, so ends and flat polynomials are
    handled by the scan itself.
    """
    coef = np.asarray(coef, dtype=float)
    k, L = coef.shape
    if L == 0:
        return SeriesMaximum(np.empty(0), np.empty(0))
    dense = lobatto_nodes(_DENSE_PER_NODE * k)
    vals = C.chebvander(dense, k - 1) @ coef  # (Z, L)
    i = np.argmax(vals, axis=0)
    lanes = np.arange(L)
    best_x = dense[i].copy()
    best_f = vals[i, lanes]
    lo = dense[np.maximum(i - 1, 0)].copy()
    hi = dense[np.minimum(i + 1, dense.size - 1)].copy()
    d1 = C.chebder(coef, axis=0)
    d2 = C.chebder(d1, axis=0)
    x = best_x.copy()
    for _ in range(_NEWTON_STEPS):
        basis = C.chebvander(x, k - 1)
        g = np.einsum("lm,ml->l", basis[:, : k - 1], d1)
        c = np.einsum("lm,ml->l", basis[:, : k - 2], d2)
        # keep a bracket with p' >= 0 at lo and p' <= 0 at hi
        lo = np.where(g > 0, x, lo)
        hi = np.where(g < 0, x, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = x - g / c
        ok = (c < 0) & (step >= lo) & (step <= hi)
        x = np.where(ok, step, 0.5 * (lo + hi))
    fx = evaluate(coef, x)
    better = fx > best_f
    return SeriesMaximum(np.where(better, x, best_x), np.where(better, fx, best_f))
