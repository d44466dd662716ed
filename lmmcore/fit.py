"""The one-call fit: optimum, standard error, interval, test of h2 = 0, coefficients.

:func:`fit_rotated` turns rotated data into :class:`FitResult` objects (one per
phenotype, all computed together) in four steps, each a function that a caller
may use alone:

1. standardise, 2. optimise and 4. back-transform -- :mod:`lmmcore.estimate`
   (:func:`~lmmcore.estimate.estimate_rotated` runs them: h2, log-likelihood
   and coefficients, what the genome scan's null model needs);
3. inference -- :mod:`lmmcore.inference` (SE of h2 by curvature, the 95%
   profile-likelihood interval, the test of h2 = 0, SEs of the coefficients).

:func:`fit_lmm` is the convenience entry point for one phenotype, a kinship
and a design matrix. Many phenotypes with missing values are handled by
:mod:`lmmcore.batch`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .eigen import Eigendecomposition, RotatedData, decompose_kinship, rotate
from .errors import LMMInputError, Report
from .estimate import PointEstimate, estimate_rotated
from .inference import CI_DROP, H2Inference, coefficient_standard_errors, h2_inference
from .optimize import DEFAULT_GRID, DEFAULT_TOL, OptimizerTrace

__all__ = ["FitResult", "fit_rotated", "fit_columns", "fit_lmm", "rescale_h2", "CI_DROP"]


@dataclass(frozen=True)
class FitResult:
    """Everything known about one phenotype's fit.

    Variance components: ``sigma2_g = h2 sigma2`` multiplies K,
    ``sigma2_e = (1 - h2) sigma2`` multiplies I. ``loglik`` includes every
    constant (see :mod:`lmmcore.likelihood`).

    Attributes
    ----------
    phenotype, method : str
    n, p : int
        Individuals used and fixed-effect coefficients.
    h2, h2_se, h2_ci_low, h2_ci_high : float
        Estimate, standard error from the curvature of the profile
        log-likelihood (NaN at a boundary; ``h2_se_note`` says why), and the
        95% profile-likelihood interval (log-likelihood within 1.92 of its
        maximum, clipped to [0, 1]).
    sigma2, sigma2_g, sigma2_e : float
    coef_names : tuple of str
    beta, beta_se : ndarray, shape (p,)
    loglik, loglik_h2_zero : float
    lrt_h2_zero, p_h2_zero : float
        ``2 (L(h2) - L(0))`` and its p-value from the 50:50 mixture of
        chi-square(0) and chi-square(1).
    boundary : bool
    converged : bool
    message : str
    n_evals : int
    trace : OptimizerTrace
    profile_h2, profile_loglik : ndarray
        The grid the optimiser evaluated (for plots).
    kinship_scale : float
        The factor c of the kinship actually fitted, ``c K``.
    """

    phenotype: str
    method: str
    n: int
    p: int
    h2: float
    h2_se: float
    h2_se_note: str
    h2_ci_low: float
    h2_ci_high: float
    sigma2: float
    sigma2_g: float
    sigma2_e: float
    coef_names: tuple[str, ...]
    beta: np.ndarray
    beta_se: np.ndarray
    loglik: float
    loglik_h2_zero: float
    lrt_h2_zero: float
    p_h2_zero: float
    boundary: bool
    converged: bool
    message: str
    n_evals: int
    trace: OptimizerTrace
    profile_h2: np.ndarray
    profile_loglik: np.ndarray
    kinship_scale: float = 1.0

    def coefficients(self) -> dict[str, tuple[float, float]]:
        """``{name: (estimate, standard error)}``."""
        return {k: (float(b), float(s)) for k, b, s in zip(self.coef_names, self.beta, self.beta_se)}

    def to_row(self) -> dict[str, object]:
        """The row of ``lmmcore fit --out``: the contract columns, then ``beta_*``, ``se_*``."""
        row: dict[str, object] = {
            "phenotype": self.phenotype,
            "method": self.method,
            "n": self.n,
            "p": self.p,
            "h2": self.h2,
            "h2_se": self.h2_se,
            "h2_ci_low": self.h2_ci_low,
            "h2_ci_high": self.h2_ci_high,
            "sigma2": self.sigma2,
            "sigma2_g": self.sigma2_g,
            "sigma2_e": self.sigma2_e,
            "loglik": self.loglik,
            "lrt_h2_zero": self.lrt_h2_zero,
            "p_h2_zero": self.p_h2_zero,
            "boundary": self.boundary,
        }
        for name, b in zip(self.coef_names, self.beta):
            row[f"beta_{name}"] = float(b)
        for name, s in zip(self.coef_names, self.beta_se):
            row[f"se_{name}"] = float(s)
        row.update(
            converged=self.converged,
            loglik_h2_zero=self.loglik_h2_zero,
            kinship_scale=self.kinship_scale,
            n_evals=self.n_evals,
            message=self.message,
        )
        return row


def rescale_h2(h2, factor: float):
    """Heritability on the scale of ``factor * K`` from heritability on the scale of K.

    Notes
    -----
    The model ``s K + t I`` equals ``(s / c) (c K) + t I``, so
    ``h2' = (h2 / c) / (h2 / c + 1 - h2) = h2 / (h2 + c (1 - h2))``. R/qtl2
    fits ``2 K`` with K from ``calc_kinship``: pass ``factor = 2`` to convert
    our h2 on K to theirs. The map is monotone, so interval end points map
    directly. The likelihood does not depend on the scale.
    """
    h2 = np.asarray(h2, dtype=float)
    if factor <= 0:
        raise ValueError("the kinship scale factor must be positive")
    return h2 / (h2 + factor * (1.0 - h2))


# --------------------------------------------------------------------------- the whole fit


def fit_rotated(
    rot: RotatedData,
    method: str = "reml",
    *,
    phenotype_names=None,
    coef_names=None,
    tol: float = DEFAULT_TOL,
    grid: int | np.ndarray = DEFAULT_GRID,
    kinship_scale: float = 1.0,
    report: Report | None = None,
) -> list[FitResult]:
    """Fit every phenotype column of rotated data (they share K, X and missingness).

    Parameters
    ----------
    rot : RotatedData
    method : {"reml", "ml"}
    phenotype_names, coef_names : sequence of str, optional
    tol : float
        Absolute tolerance on h2 of the Brent searches.
    grid : int or array_like
        Grid used to find brackets (see :func:`lmmcore.optimize.maximize_profile`).
    kinship_scale : float
        Recorded in the results (the caller has already scaled ``rot.d``).
    report : callable, optional
        Receiver of the messages (see :func:`lmmcore.errors.reporting`).

    Returns
    -------
    list of FitResult

    Notes
    -----
    Phenotypes are centred and scaled before the fit when the design has a
    constant column (only scaled otherwise) and the results transformed back
    exactly (see :func:`lmmcore.estimate.standardise`): ``beta`` and its SE scale with the
    phenotype, ``sigma2`` with its square, and L shifts by ``-n log s`` (ML)
    or ``-(n - p) log s`` (REML).

    ``h2_se = 1 / sqrt(-L''(h2))`` with L'' by central differences of step
    1e-4; ``beta_se`` from ``sigma2 (X*'WX*)^{-1}``; the test of h2 = 0 is
    ``2 (L(h2) - L(0))`` with p-value ``0.5 P(chi2_1 >= stat)`` (1 when the
    statistic is 0). See :mod:`lmmcore.inference`.
    """
    fitted = _fit_rotated_arrays(rot, method, phenotype_names, coef_names, tol, grid, kinship_scale, report)
    return [fitted.result(j) for j in range(rot.n_phenotypes)]


def fit_columns(
    rot: RotatedData,
    method: str = "reml",
    *,
    phenotype_names=None,
    coef_names=None,
    tol: float = DEFAULT_TOL,
    grid: int | np.ndarray = DEFAULT_GRID,
    kinship_scale: float = 1.0,
    report: Report | None = None,
) -> dict[str, object]:
    """The rows of :func:`fit_rotated`'s results as columns, without a :class:`FitResult` per phenotype.

    The same fit as :func:`fit_rotated` (parameters there); the answer is
    ``{column: values}`` in the order of :meth:`FitResult.to_row`
    (``phenotype``, ``method``, ... ``beta_*``, ``se_*``, ... ``message``),
    each an array or list of length m, with the values ``to_row`` gives: a
    table of many phenotypes is built from whole columns (what ``lmmcore
    fit`` writes), and neither the objects nor the optimiser's traces are
    made.
    """
    fitted = _fit_rotated_arrays(rot, method, phenotype_names, coef_names, tol, grid, kinship_scale, report)
    return fitted.columns


_NOT_IDENTIFIABLE = "h2 is not identifiable: the kinship acts like a multiple of I on the residuals"
_UNBOUNDED = "ML likelihood unbounded as h2 -> 1 (covariates fit the kinship's null space); use REML"


@dataclass(frozen=True, eq=False)
class _FittedArrays:
    """The answers of every phenotype of one fit: the table's columns and what a :class:`FitResult` adds."""

    columns: dict
    coef_names: tuple[str, ...]
    estimate: PointEstimate
    inference: H2Inference
    beta_se: np.ndarray
    shift: np.ndarray
    kinship_scale: float

    def result(self, j: int) -> FitResult:
        """Phenotype j's :class:`FitResult` (its row of :attr:`columns`, the trace and the grid)."""
        col = self.columns
        est = self.estimate
        maxima = est.optimum.searches
        trace = maxima.traces[j]
        shift = self.shift[j]
        return FitResult(
            phenotype=col["phenotype"][j],
            method=col["method"][j],
            n=int(col["n"][j]),
            p=int(col["p"][j]),
            h2=float(col["h2"][j]),
            h2_se=float(col["h2_se"][j]),
            h2_se_note=self.inference.h2_se_notes[j],
            h2_ci_low=float(col["h2_ci_low"][j]),
            h2_ci_high=float(col["h2_ci_high"][j]),
            sigma2=float(col["sigma2"][j]),
            sigma2_g=float(col["sigma2_g"][j]),
            sigma2_e=float(col["sigma2_e"][j]),
            coef_names=self.coef_names,
            beta=est.beta[j],
            beta_se=self.beta_se[j],
            loglik=float(col["loglik"][j]),
            loglik_h2_zero=float(col["loglik_h2_zero"][j]),
            lrt_h2_zero=float(col["lrt_h2_zero"][j]),
            p_h2_zero=float(col["p_h2_zero"][j]),
            boundary=bool(col["boundary"][j]),
            converged=bool(col["converged"][j]),
            message=col["message"][j],
            n_evals=int(col["n_evals"][j]),
            trace=replace(trace, loglik=trace.loglik + shift),
            profile_h2=maxima.grid_h2,
            profile_loglik=maxima.grid_loglik[:, j] + shift,
            kinship_scale=self.kinship_scale,
        )


def _fit_rotated_arrays(rot: RotatedData, method: str, phenotype_names, coef_names, tol: float,
                        grid: int | np.ndarray, kinship_scale: float, report: Report | None) -> _FittedArrays:
    """The steps of :func:`fit_rotated` for all phenotypes at once; every answer an array over them."""
    method = method.lower()
    n, p, m = rot.n, rot.p, rot.n_phenotypes
    names = list(phenotype_names) if phenotype_names is not None else [f"y{j + 1}" for j in range(m)]
    coefs = tuple(coef_names) if coef_names is not None else tuple(f"x{i + 1}" for i in range(p))
    if len(names) != m or len(coefs) != p:
        raise ValueError(f"{len(names)} phenotype name(s) and {len(coefs)} coefficient name(s) for "
                         f"{m} phenotype(s) and {p} coefficient(s); give one name each")
    est = estimate_rotated(rot, method, phenotype_names=names, tol=tol, grid=grid, statistics=True,
                           report=report)
    std, opt = est.standardised, est.optimum
    maxima = opt.searches  # a ProfileMaxima: the optimiser's answers as arrays
    inference = h2_inference(std.rot, method, opt.h2, opt.loglik, maxima.grid_h2, maxima.grid_loglik,
                             opt.identifiable, est.profiles, opt.series)
    beta_se = std.unscale_se(coefficient_standard_errors(est.solution))
    shift = std.loglik_shift(method)
    h, sigma2 = opt.h2, est.sigma2
    identifiable = opt.identifiable
    unknown = np.full(m, np.nan)
    if not identifiable:
        messages = [_NOT_IDENTIFIABLE] * m
    elif opt.unbounded:
        messages = [_UNBOUNDED] * m
    else:
        messages = [maxima.message(j) for j in range(m)]
    columns: dict[str, object] = {
        "phenotype": [str(name) for name in names],
        "method": [method] * m,
        "n": np.full(m, n, dtype=np.int64),
        "p": np.full(m, p, dtype=np.int64),
        "h2": h.copy() if identifiable else unknown,
        "h2_se": inference.h2_se,
        "h2_ci_low": inference.ci_low,
        "h2_ci_high": inference.ci_high,
        "sigma2": sigma2,
        "sigma2_g": h * sigma2 if identifiable else unknown,
        "sigma2_e": (1.0 - h) * sigma2 if identifiable else unknown,
        "loglik": opt.loglik + shift,
        "lrt_h2_zero": inference.lrt,
        "p_h2_zero": inference.p_value,
        "boundary": maxima.boundary,
    }
    for a, name in enumerate(coefs):
        columns[f"beta_{name}"] = est.beta[:, a]
    for a, name in enumerate(coefs):
        columns[f"se_{name}"] = beta_se[:, a]
    columns.update(
        converged=maxima.converged & (not opt.unbounded),
        loglik_h2_zero=maxima.grid_loglik[0] + shift,
        kinship_scale=np.full(m, float(kinship_scale)),
        n_evals=maxima.n_evals,
        message=messages,
    )
    return _FittedArrays(columns, coefs, est, inference, beta_se, shift, float(kinship_scale))


def fit_lmm(
    kinship: np.ndarray,
    y: np.ndarray,
    X: np.ndarray | None = None,
    *,
    method: str = "reml",
    tol: float = DEFAULT_TOL,
    grid: int | np.ndarray = DEFAULT_GRID,
    eig: Eigendecomposition | None = None,
    coef_names=None,
    phenotype_name: str = "y",
    report: Report | None = None,
) -> FitResult:
    """Fit ``y = X b + e``, ``var(e) = sigma2 (h2 K + (1 - h2) I)`` for one phenotype.

    Parameters
    ----------
    kinship : ndarray, shape (n, n)
        Kinship K (ignored when ``eig`` is given).
    y : ndarray, shape (n,)
        Phenotype, no missing values.
    X : ndarray, shape (n, p), optional
        Design matrix of full column rank; an intercept only when omitted.
    method : {"reml", "ml"}
    tol : float
        Absolute tolerance on h2.
    grid : int or array_like
    eig : Eigendecomposition, optional
        A decomposition of K to reuse.
    coef_names : sequence of str, optional
    phenotype_name : str
    report : callable, optional
        Receiver of the messages (see :func:`lmmcore.errors.reporting`);
        by default they are :class:`~lmmcore.errors.LMMWarning` warnings.

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import numpy as np
    >>> from lmmcore import fit_lmm
    >>> rng = np.random.default_rng(1)
    >>> G = rng.normal(size=(50, 200)); K = G @ G.T / 200
    >>> y = rng.multivariate_normal(np.zeros(50), 0.6 * K + 0.4 * np.eye(50))
    >>> fit = fit_lmm(K, y)
    >>> 0 <= fit.h2 <= 1
    True
    """
    y = np.asarray(y, dtype=float)
    if y.ndim != 1:
        raise LMMInputError("y must be one phenotype (a 1-d array); use fit_phenotypes for several")
    if not np.all(np.isfinite(y)):
        raise LMMInputError("y has missing or infinite values; remove those individuals first")
    n = y.size
    if X is None:
        X = np.ones((n, 1))
        coef_names = coef_names or ("intercept",)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.shape[0] != n:
        raise LMMInputError(f"X has {X.shape[0]} rows but y has {n} values; they must match")
    if X.shape[1] >= n:
        raise LMMInputError(
            f"the model has {X.shape[1]} coefficients but only {n} individuals; "
            "it needs more individuals than coefficients"
        )
    if eig is None:
        eig = decompose_kinship(kinship)
    rot = rotate(eig, y, X)
    return fit_rotated(rot, method, phenotype_names=[phenotype_name], coef_names=coef_names,
                       tol=tol, grid=grid, report=report)[0]
