"""The one-call fit: optimum, standard error, interval, test of h2 = 0, coefficients.

:func:`fit_rotated` turns rotated data into :class:`FitResult` objects (one per
phenotype, all computed together); :func:`fit_lmm` is the convenience entry
point for one phenotype, a kinship and a design matrix. Many phenotypes with
missing values are handled by :mod:`lmmcore.batch`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np

from .eigen import Eigendecomposition, RotatedData, decompose_kinship, rotate
from .errors import LMMInputError, LMMWarning
from .likelihood import h2_identifiable, profile_loglik_paired
from .optimize import DEFAULT_GRID, DEFAULT_TOL, OptimizerTrace, maximize_profile
from .wls import solve_wls_paired

__all__ = ["FitResult", "fit_rotated", "fit_lmm", "rescale_h2", "CI_DROP"]

#: Half the 95% quantile of chi-square(1): the drop in log-likelihood that
#: bounds the 95% profile-likelihood interval (1.920729...).
CI_DROP = 1.9207294103470282  # = scipy.stats.chi2.ppf(0.95, 1) / 2 (checked in the tests)

#: Step of the finite-difference second derivative behind ``h2_se``.
CURVATURE_STEP = 1e-4

_BISECTION_STEPS = 48
#: The interval's end points are pinned to this (bisection stops there).
_INTERVAL_TOL = 1e-10

#: Distance from h2 = 1 at which coefficients are evaluated when K is singular
#: and the optimum is h2 = 1 (where the weights are infinite).
_SINGULAR_EDGE = 1e-9


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


def _curvature_se(rot, h, method) -> tuple[np.ndarray, list[str]]:
    """``1 / sqrt(-L''(h))`` by central differences (forward/backward near an edge)."""
    m = h.size
    cols = np.arange(m)
    step = CURVATURE_STEP
    boundary = (h <= 0.0) | (h >= 1.0)
    # centre of a three-point stencil that stays inside [0, 1]
    centre = np.clip(h, step, 1.0 - step)
    pts = np.concatenate([centre - step, centre, centre + step])
    vals = profile_loglik_paired(rot, pts, np.tile(cols, 3), method).reshape(3, m)
    second = (vals[0] - 2.0 * vals[1] + vals[2]) / step**2
    se = np.full(m, np.nan)
    notes = [""] * m
    for j in range(m):
        if boundary[j]:
            notes[j] = (
                f"h2 is on the boundary ({h[j]:g}): the curvature there does not give a "
                "standard error; use the profile-likelihood interval"
            )
        elif not np.isfinite(second[j]) or second[j] >= 0:
            notes[j] = "the profile log-likelihood is not curved downwards at the optimum"
        else:
            se[j] = 1.0 / np.sqrt(-second[j])
    return se, notes


def _profile_interval(rot, method, h, L, grid_h, grid_L) -> tuple[np.ndarray, np.ndarray]:
    """95% profile-likelihood interval: the outermost h with ``L(h) >= max - 1.92``.

    The grid (with the optimum inserted) locates the outermost crossings;
    vectorised bisection pins each one to 1e-10.
    """
    threshold = L - CI_DROP
    pts = np.vstack([np.broadcast_to(grid_h[:, None], grid_L.shape), h[None, :]])
    vals = np.vstack([grid_L, L[None, :]])
    order = np.argsort(pts, axis=0, kind="stable")
    pts = np.take_along_axis(pts, order, axis=0)
    vals = np.take_along_axis(vals, order, axis=0)
    inside = vals >= threshold[None, :]
    K = pts.shape[0]
    first = np.argmax(inside, axis=0)
    last = K - 1 - np.argmax(inside[::-1], axis=0)
    low = np.where(first == 0, 0.0, np.nan)
    high = np.where(last == K - 1, 1.0, np.nan)
    # lanes: lower crossings in (pts[first-1], pts[first]); upper in (pts[last], pts[last+1])
    need_lo = np.flatnonzero(first > 0)
    need_hi = np.flatnonzero(last < K - 1)
    lane_col = np.concatenate([need_lo, need_hi])
    # 'out' end is below the threshold, 'in' end above
    out_end = np.concatenate([pts[first[need_lo] - 1, need_lo], pts[last[need_hi] + 1, need_hi]])
    in_end = np.concatenate([pts[first[need_lo], need_lo], pts[last[need_hi], need_hi]])
    thr = threshold[lane_col]
    for _ in range(_BISECTION_STEPS):
        if lane_col.size == 0 or np.max(np.abs(in_end - out_end)) < _INTERVAL_TOL:
            break
        mid = 0.5 * (out_end + in_end)
        ok = profile_loglik_paired(rot, mid, lane_col, method) >= thr
        in_end = np.where(ok, mid, in_end)
        out_end = np.where(ok, out_end, mid)
    crossing = 0.5 * (out_end + in_end)
    low[need_lo] = crossing[: need_lo.size]
    high[need_hi] = crossing[need_lo.size :]
    return low, high


def fit_rotated(
    rot: RotatedData,
    method: str = "reml",
    *,
    phenotype_names=None,
    coef_names=None,
    tol: float = DEFAULT_TOL,
    grid: int | np.ndarray = DEFAULT_GRID,
    kinship_scale: float = 1.0,
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

    Returns
    -------
    list of FitResult

    Notes
    -----
    Phenotypes are centred and scaled before the fit when the design has a
    constant column (only scaled otherwise) and the results transformed back
    exactly: ``beta`` and its SE scale with the phenotype, ``sigma2`` with its
    square, and L shifts by ``-n log s`` (ML) or ``-(n - p) log s`` (REML).
    This keeps phenotypes measured on scales of 1e-8 or 1e8, or with a mean
    far from 0, as accurate as any other.

    ``h2_se = 1 / sqrt(-L''(h2))`` with L'' by central differences of step
    1e-4; ``beta_se`` from ``sigma2 (X*'WX*)^{-1}``; the test of h2 = 0 is
    ``2 (L(h2) - L(0))`` with p-value ``0.5 P(chi2_1 >= stat)`` (1 when the
    statistic is 0).
    """
    method = method.lower()
    n, p, m = rot.n, rot.p, rot.n_phenotypes
    names = list(phenotype_names) if phenotype_names is not None else [f"y{j + 1}" for j in range(m)]
    coefs = tuple(coef_names) if coef_names is not None else tuple(f"x{i + 1}" for i in range(p))

    # centre (through a constant column, if the design has one) and scale
    col, kappa = rot.constant_column, rot.constant_value
    if col >= 0:
        # mean of y from the rotated data: 1'y = (U'1)'(U'y) and U'1 = X*[:, col] / kappa
        u1 = rot.X[:, col] / kappa
        mu = (u1 @ rot.y) / n
        yc = rot.y - np.outer(u1, mu)
    else:
        mu = np.zeros(m)
        yc = rot.y
    scale = np.sqrt(np.sum(yc * yc, axis=0) / n)
    scale = np.where(scale > 0, scale, 1.0)
    std = rot.with_phenotypes(yc / scale)

    unbounded = method == "ml" and rot.ml_unbounded
    if unbounded:
        warnings.warn(
            "the covariates can fit every direction that the kinship ignores (its null space; "
            "n - rank(K) <= p), so the ML likelihood grows without bound as h2 -> 1 and has no "
            "maximum; use REML, fewer covariates or more individuals",
            LMMWarning,
            stacklevel=2,
        )
    identifiable = h2_identifiable(rot)
    if not identifiable:
        warnings.warn(
            "h2 is not identifiable: on the residuals the kinship acts like a multiple of the "
            "identity (e.g. K = I, or K all ones with an intercept), so every h2 fits equally "
            "well; h2 is reported as NaN",
            LMMWarning,
            stacklevel=2,
        )
    opt = maximize_profile(std, method, tol=tol, grid=grid)
    h = np.array([o.h2 for o in opt])
    L = np.array([o.loglik for o in opt])
    if not np.all(np.isfinite(L)):
        j = int(np.flatnonzero(~np.isfinite(L))[0])
        raise LMMInputError(
            f"phenotype '{names[j]}': the likelihood is not finite anywhere in [0, 1]; "
            "check the phenotype and the kinship"
        )
    cols = np.arange(m)
    # at h2 = 1 with a singular K the solution is a limit; 1 - 1e-9 gives it to ~1e-8
    h_wls = np.where((h >= 1.0) & np.any(rot.d == 0), 1.0 - _SINGULAR_EDGE, h)
    sol = solve_wls_paired(std, h_wls, cols, method)
    cov_unscaled = np.linalg.inv(sol.XtWX)
    beta_se_std = np.sqrt(sol.sigma2[:, None] * np.diagonal(cov_unscaled, axis1=1, axis2=2))
    h2_se, se_notes = _curvature_se(std, h, method)
    ci_low, ci_high = _profile_interval(
        std, method, h, L, opt[0].grid_h2, np.column_stack([o.grid_loglik for o in opt])
    )
    L0 = np.array([o.grid_loglik[0] for o in opt])
    lrt = np.maximum(2.0 * (L - L0), 0.0)
    # P(chi2_1 >= x) = erfc(sqrt(x / 2))
    p_lrt = np.where(lrt > 0, 0.5 * np.vectorize(math.erfc, otypes=[float])(np.sqrt(lrt / 2.0)), 1.0)

    if not identifiable:
        h2_se[:] = np.nan
        se_notes = ["h2 is not identifiable with this kinship"] * m
        ci_low, ci_high = np.zeros(m), np.ones(m)
        lrt, p_lrt = np.zeros(m), np.ones(m)

    # back to the phenotype's own units
    shift = -(rot.n_ml if method == "ml" else n - p) * np.log(scale)
    beta = sol.beta * scale[:, None]
    if col >= 0:
        beta[:, col] += mu / kappa
    beta_se = beta_se_std * scale[:, None]
    sigma2 = sol.sigma2 * scale**2

    out = []
    for j, o in enumerate(opt):
        trace = replace(o.trace, loglik=o.trace.loglik + shift[j])
        out.append(
            FitResult(
                phenotype=str(names[j]),
                method=method,
                n=n,
                p=p,
                h2=float(h[j]) if identifiable else float("nan"),
                h2_se=float(h2_se[j]),
                h2_se_note=se_notes[j],
                h2_ci_low=float(ci_low[j]),
                h2_ci_high=float(ci_high[j]),
                sigma2=float(sigma2[j]),
                sigma2_g=float(h[j] * sigma2[j]) if identifiable else float("nan"),
                sigma2_e=float((1.0 - h[j]) * sigma2[j]) if identifiable else float("nan"),
                coef_names=coefs,
                beta=beta[j],
                beta_se=beta_se[j],
                loglik=float(L[j] + shift[j]),
                loglik_h2_zero=float(L0[j] + shift[j]),
                lrt_h2_zero=float(lrt[j]),
                p_h2_zero=float(p_lrt[j]),
                boundary=o.boundary,
                converged=o.converged and not unbounded,
                message=_NOT_IDENTIFIABLE if not identifiable else (_UNBOUNDED if unbounded else o.message),
                n_evals=o.n_evals,
                trace=trace,
                profile_h2=o.grid_h2,
                profile_loglik=o.grid_loglik + shift[j],
                kinship_scale=float(kinship_scale),
            )
        )
    return out


_NOT_IDENTIFIABLE = "h2 is not identifiable: the kinship acts like a multiple of I on the residuals"
_UNBOUNDED = "ML likelihood unbounded as h2 -> 1 (covariates fit the kinship's null space); use REML"


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
                       tol=tol, grid=grid)[0]
