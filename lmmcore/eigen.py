"""Step 1 of the algorithm: eigendecompose the kinship and rotate the data.

``K = U D U'`` makes every covariance of the model diagonal in the same basis,

    h K + (1 - h) I = U [h D + (1 - h) I] U',

so after rotating once, ``y* = U'y`` and ``X* = U'X``, every evaluation of the
likelihood is a weighted least squares problem with weights
``1 / (h d_i + 1 - h)``. The decomposition is the only O(n^3) step; it is done
once per kinship (and per missingness pattern) and shared by every h, phenotype
and marker.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from .errors import LMMInputError

__all__ = ["Eigendecomposition", "RotatedData", "decompose_kinship", "rotate"]

#: Eigenvalues below ``-NEGATIVE_TOLERANCE * max(d)`` mean the matrix is not a
#: covariance; those between that and zero are rounding and are set to zero.
NEGATIVE_TOLERANCE = 1e-6

#: Kinships with fewer individuals than this are decomposed with one BLAS thread.
ONE_THREAD_BELOW = 600

_CONTROLLER = []  # the process's threadpoolctl controller, made on first use
_LIMIT_LOCK = threading.Lock()


@contextmanager
def _one_blas_thread():
    """A context in which BLAS/LAPACK run on one thread (threadpoolctl).

    The thread count is a process-wide setting: the lock keeps two threads
    (dashboard sessions) from interleaving their limit and restore, which
    would leave BLAS on one thread for good.
    """
    with _LIMIT_LOCK:
        if not _CONTROLLER:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER.append(ThreadpoolController())
        with _CONTROLLER[0].limit(limits=1, user_api="blas"):
            yield


@dataclass(frozen=True)
class Eigendecomposition:
    """``K = U diag(d) U'`` with ``d`` ascending and exactly zero where K is singular.

    Attributes
    ----------
    values : ndarray, shape (n,)
        Eigenvalues ``d_i`` (non-negative; rounding noise set to exactly 0).
    vectors : ndarray, shape (n, n)
        Orthonormal eigenvectors, one per column.
    n_zero : int
        How many eigenvalues are zero (the dimension of K's null space).
    n_clipped_negative : int
        How many slightly negative eigenvalues (rounding) were set to zero.
    """

    values: np.ndarray
    vectors: np.ndarray
    n_zero: int
    n_clipped_negative: int

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def rank(self) -> int:
        return self.n - self.n_zero


@dataclass(frozen=True)
class RotatedData:
    """Phenotypes and covariates in the eigenbasis of K, with what every h reuses.

    Attributes
    ----------
    y : ndarray, shape (n, m)
        Rotated phenotypes ``y* = U'y``, one column per phenotype.
    X : ndarray, shape (n, p)
        Rotated covariates ``X* = U'X``.
    d : ndarray, shape (n,)
        Eigenvalues of K.
    logdet_XtX : float
        ``log |X'X| = log |X*'X*|``, the constant of the REML likelihood.
    constant_column : int
        Index of a column of the original X that is a non-zero constant
        (usually the intercept), or -1. The fit centres phenotypes through it.
    constant_value : float
        That column's value.
    ml_null_directions : int
        How many directions of K's null space lie in the span of X (``r0``;
        usually 0, 1 for a centred kinship with an intercept). ML leaves them
        out, see :mod:`lmmcore.likelihood`.
    ml_unbounded : bool
        The covariates can fit every null-space component of K exactly
        beyond those r0 directions (possible only when
        ``n - rank(K) <= p``): the ML likelihood then grows without bound as
        h -> 1 and ML has no estimate; the fit flags it.
    """

    y: np.ndarray
    X: np.ndarray
    d: np.ndarray
    logdet_XtX: float
    constant_column: int = -1
    constant_value: float = 1.0
    ml_null_directions: int = 0
    ml_unbounded: bool = False

    @property
    def n_ml(self) -> int:
        """Observations the ML likelihood uses: ``n - r0``."""
        return self.n - self.ml_null_directions

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def p(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_phenotypes(self) -> int:
        return int(self.y.shape[1])

    def select(self, columns) -> "RotatedData":
        """The same rotation for a subset of the phenotype columns."""
        return replace(self, y=self.y[:, columns].reshape(self.n, -1))

    def with_phenotypes(self, y: np.ndarray) -> "RotatedData":
        """The same rotation with other (already rotated) phenotype columns."""
        return replace(self, y=y)


def decompose_kinship(kinship: np.ndarray, *, check: bool = True) -> Eigendecomposition:
    """Eigendecompose a kinship matrix, ``K = U D U'``.

    Parameters
    ----------
    kinship : array_like, shape (n, n)
        Symmetric positive semidefinite matrix.
    check : bool
        Validate shape, finiteness and symmetry first (the public readers do
        this already and may skip it).

    Returns
    -------
    Eigendecomposition

    Raises
    ------
    LMMInputError
        If K is not square, not finite, not symmetric, or has an eigenvalue
        below ``-1e-6 * max(d)`` (not positive semidefinite).

    Notes
    -----
    Uses LAPACK's divide-and-conquer symmetric solver (``eigh``). Eigenvalues
    in ``[-1e-6 max d, tol]`` with ``tol = n * eps * max d`` are rounding noise
    of zero eigenvalues and are set to exactly 0, so that a singular K (every
    centred genomic relationship matrix, or a kinship from few markers) is
    recognised as singular: then ``h K + (1 - h) I`` is singular at ``h = 1``
    only, and the likelihood code treats that point exactly.

    A kinship of fewer than :data:`ONE_THREAD_BELOW` individuals is
    decomposed with one BLAS thread: at that size LAPACK's threads cost more
    than they save (on a busy machine, many times more), and the result then
    does not depend on the number of cores.
    """
    K = np.asarray(kinship, dtype=float)
    if check:
        validate_kinship_matrix(K)
    if K.shape[0] < ONE_THREAD_BELOW:
        with _one_blas_thread():
            d, U = np.linalg.eigh(K)
    else:
        d, U = np.linalg.eigh(K)
    dmax = float(d[-1]) if d.size else 0.0
    if dmax <= 0:
        raise LMMInputError(
            "the kinship matrix has no positive eigenvalue (it is zero or negative definite); "
            "it must be a positive semidefinite relationship matrix"
        )
    if d[0] < -NEGATIVE_TOLERANCE * dmax:
        raise LMMInputError(
            f"the kinship matrix is not positive semidefinite: its smallest eigenvalue is "
            f"{d[0]:.3g} while its largest is {dmax:.3g}; a kinship must be a positive "
            "semidefinite relationship matrix (check how it was computed, or that rows and "
            "columns are in the same order)"
        )
    n_negative = int(np.count_nonzero(d < 0))
    zero_tol = max(K.shape[0], 1) * np.finfo(float).eps * dmax * 10
    d = np.where(d <= zero_tol, 0.0, d)
    d.setflags(write=False)
    U.setflags(write=False)
    return Eigendecomposition(d, U, int(np.count_nonzero(d == 0)), n_negative)


def validate_kinship_matrix(K: np.ndarray, source: str = "the kinship matrix", ids=None) -> None:
    """Raise :class:`LMMInputError` unless K is square, finite and symmetric.

    ``ids`` (the individuals' IDs, optional) name the entries in messages.
    """

    def label(i: int) -> str:
        return f"'{ids[i]}'" if ids is not None else str(i + 1)

    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        shape = " x ".join(str(s) for s in K.shape)
        raise LMMInputError(f"{source} is {shape}; it must be square (n x n)")
    if K.shape[0] == 0:
        raise LMMInputError(f"{source} is empty")
    if not np.all(np.isfinite(K)):
        i, j = np.argwhere(~np.isfinite(K))[0]
        raise LMMInputError(
            f"{source} has a missing or infinite value at row {i + 1}, column {j + 1}; "
            "a kinship must be complete and finite"
        )
    if np.array_equal(K, K.T):
        return
    scale = max(float(np.max(np.abs(K))), np.finfo(float).tiny)
    asym = np.abs(K - K.T)
    if asym.max() > 1e-8 * scale:
        i, j = np.unravel_index(np.argmax(asym), asym.shape)
        raise LMMInputError(
            f"{source} is not symmetric: entry ({label(i)}, {label(j)}) is {K[i, j]:.6g} but "
            f"({label(j)}, {label(i)}) is {K[j, i]:.6g}; check that rows and columns list the "
            "individuals in the same order"
        )


def rotate(eig: Eigendecomposition, y: np.ndarray, X: np.ndarray) -> RotatedData:
    """Rotate phenotypes and covariates into the eigenbasis: ``y* = U'y``, ``X* = U'X``.

    Parameters
    ----------
    eig : Eigendecomposition
    y : array_like, shape (n,) or (n, m)
        One phenotype or m phenotypes without missing values.
    X : array_like, shape (n, p)
        Covariates of full column rank (see :func:`lmmcore.design.design_matrix`).

    Returns
    -------
    RotatedData

    Notes
    -----
    ``log |X'X|`` is computed here from the rotated ``X*`` by a Cholesky
    factorisation (``X*'X* = X'X`` because U is orthogonal).
    """
    y = np.asarray(y, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    X = np.asarray(X, dtype=float)
    if y.shape[0] != eig.n or X.shape[0] != eig.n:
        raise LMMInputError(
            f"the phenotypes have {y.shape[0]} rows and the covariates {X.shape[0]}, "
            f"but the kinship has {eig.n} individuals; they must match"
        )
    Ut = eig.vectors.T
    y_star = Ut @ y
    X_star = Ut @ X
    XtX = X_star.T @ X_star
    try:
        chol = np.linalg.cholesky(XtX)
    except np.linalg.LinAlgError:
        raise LMMInputError(
            "the covariates are linearly dependent; drop the redundant columns"
        ) from None
    logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))
    constant = np.flatnonzero(np.all(X == X[:1], axis=0) & (X[0] != 0)) if X.shape[0] else []
    col = int(constant[0]) if len(constant) else -1
    value = float(X[0, col]) if col >= 0 else 1.0
    r0 = null_directions_in_span(eig.values, X_star)
    unbounded = _null_space_fittable(eig.values, X_star) and r0 < eig.n_zero
    return RotatedData(y_star, X_star, eig.values, logdet, col, value, r0, unbounded)


def _null_space_fittable(d: np.ndarray, X_star: np.ndarray) -> bool:
    """Whether ``X*`` restricted to K's null space has full row rank (every y fits it exactly)."""
    null = d == 0
    z = int(null.sum())
    if z == 0 or X_star.shape[1] < z:
        return False
    s = np.linalg.svd(X_star[null], compute_uv=False)
    scale = max(float(np.linalg.norm(X_star, 2)), np.finfo(float).tiny)
    return int(np.count_nonzero(s > 1e-8 * scale)) == z


def null_directions_in_span(d: np.ndarray, X_star: np.ndarray) -> int:
    """``r0 = dim(null(K) ∩ col(X))``: directions K ignores that X can fit exactly.

    A coefficient vector b with ``X*_i b = 0`` for every non-zero eigenvalue
    ``d_i`` moves the fit only along K's null space; ``r0 = p - rank(X*_+)``
    with ``X*_+`` the rows of non-zero eigenvalues. A centred kinship
    (``K 1 = 0``) with an intercept has ``r0 = 1``.
    """
    null = d == 0
    p = X_star.shape[1]
    if not np.any(null) or p == 0:
        return 0
    s = np.linalg.svd(X_star[~null], compute_uv=False)
    scale = max(float(np.linalg.norm(X_star, 2)), np.finfo(float).tiny)
    return int(p - np.count_nonzero(s > 1e-8 * scale))
