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

__all__ = ["FitResult", "fit_rotated", "fit_lmm", "rescale_h2", "CI_DROP"]


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
    method = method.lower()
    n, p, m = rot.n, rot.p, rot.n_phenotypes
    names = list(phenotype_names) if phenotype_names is not None else [f"y{j + 1}" for j in range(m)]
    coefs = tuple(coef_names) if coef_names is not None else tuple(f"x{i + 1}" for i in range(p))
    est = estimate_rotated(rot, method, phenotype_names=names, tol=tol, grid=grid, statistics=True,
                           report=report)
    std, opt = est.standardised, est.optimum
    inference = h2_inference(std.rot, method, opt.h2, opt.loglik, opt.searches[0].grid_h2,
                             opt.grid_loglik, opt.identifiable, est.profiles, opt.series)
    beta_se = std.unscale_se(coefficient_standard_errors(est.solution))
    shift = std.loglik_shift(method)
    return [
        _fit_result(j, names[j], method, n, p, coefs, est, inference, beta_se[j], shift[j], kinship_scale)
        for j in range(m)
    ]


_NOT_IDENTIFIABLE = "h2 is not identifiable: the kinship acts like a multiple of I on the residuals"
_UNBOUNDED = "ML likelihood unbounded as h2 -> 1 (covariates fit the kinship's null space); use REML"


def _fit_result(j: int, name, method: str, n: int, p: int, coefs: tuple[str, ...], est: PointEstimate,
                inference: H2Inference, beta_se: np.ndarray, shift: float, kinship_scale: float) -> FitResult:
    """Phenotype j's :class:`FitResult` from the steps' answers (all back in the phenotype's units)."""
    opt = est.optimum
    o = opt.searches[j]
    h, sigma2 = opt.h2[j], est.sigma2[j]
    identifiable = opt.identifiable
    return FitResult(
        phenotype=str(name),
        method=method,
        n=n,
        p=p,
        h2=float(h) if identifiable else float("nan"),
        h2_se=float(inference.h2_se[j]),
        h2_se_note=inference.h2_se_notes[j],
        h2_ci_low=float(inference.ci_low[j]),
        h2_ci_high=float(inference.ci_high[j]),
        sigma2=float(sigma2),
        sigma2_g=float(h * sigma2) if identifiable else float("nan"),
        sigma2_e=float((1.0 - h) * sigma2) if identifiable else float("nan"),
        coef_names=coefs,
        beta=est.beta[j],
        beta_se=beta_se,
        loglik=float(opt.loglik[j] + shift),
        loglik_h2_zero=float(o.grid_loglik[0] + shift),
        lrt_h2_zero=float(inference.lrt[j]),
        p_h2_zero=float(inference.p_value[j]),
        boundary=o.boundary,
        converged=o.converged and not opt.unbounded,
        message=_NOT_IDENTIFIABLE if not identifiable else (_UNBOUNDED if opt.unbounded else o.message),
        n_evals=o.n_evals,
        trace=replace(o.trace, loglik=o.trace.loglik + shift),
        profile_h2=o.grid_h2,
        profile_loglik=o.grid_loglik + shift,
        kinship_scale=float(kinship_scale),
    )


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
