"""The point estimate of the fit: standardise, optimise h2, solve there, back-transform.

Three of the fit's four steps (:mod:`lmmcore.fit` adds the fourth, the
inference of :mod:`lmmcore.inference`), each a function with one job:

1. :func:`standardise` -- centre and scale the rotated phenotypes
   (:class:`StandardisedData` remembers how to undo it);
2. :func:`optimise_h2` -- the maximum of the profile log-likelihood
   (:class:`H2Optimum`), and :func:`solve_at_optimum`, the weighted least
   squares solution there;
3. back-transform -- :meth:`StandardisedData.loglik_shift`,
   :meth:`~StandardisedData.unscale_beta` and friends put everything back in
   the phenotype's own units.

:func:`estimate_rotated` runs them all and returns a :class:`PointEstimate`
(h2, log-likelihood, coefficients, variance): what the genome scan's null
model needs, without the SE, the interval's bisection or the test of h2 = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .eigen import RotatedData
from .constants import SINGULAR_EDGE
from .errors import LMMInputError, Report, report, reporting
from .likelihood import h2_identifiable
from .optimize import DEFAULT_GRID, DEFAULT_TOL, OptimizeResult, ProfileMaxima, profile_maxima
from .profile_stats import LocalSeries, TraitProfiles, series_near, trait_profiles
from .wls import WLSSolution, solve_wls_paired

__all__ = [
    "StandardisedData",
    "standardise",
    "H2Optimum",
    "optimise_h2",
    "polish_optimum",
    "solve_at_optimum",
    "PointEstimate",
    "estimate_rotated",
    "SINGULAR_EDGE",
    "NEAR_MARGIN",
]

#: How far from an optimum the power series of :attr:`H2Optimum.series` must reach: the
#: standard error's stencil (``CURVATURE_STEP = 1e-4`` of :mod:`lmmcore.inference`) with room.
NEAR_MARGIN = 2.5e-4



# --------------------------------------------------------------------------- 1. standardise


@dataclass(frozen=True)
class StandardisedData:
    """Rotated phenotypes centred and scaled to unit mean square, and how to undo it.

    Attributes
    ----------
    rot : RotatedData
        The rotated data with ``y*`` replaced by ``U'(y - mu 1) / s``.
    centre : ndarray, shape (m,)
        ``mu``: the mean of each phenotype when the design has a constant
        column, else 0.
    scale : ndarray, shape (m,)
        ``s``: the root mean square of the centred phenotype (1 if it is 0).
    """

    rot: RotatedData
    centre: np.ndarray
    scale: np.ndarray

    def loglik_shift(self, method: str) -> np.ndarray:
        """What to add to a log-likelihood of the standardised data: ``-n' log s`` (ML), ``-(n - p) log s`` (REML)."""
        rot = self.rot
        return -(rot.n_ml if method == "ml" else rot.n - rot.p) * np.log(self.scale)

    def unscale_beta(self, beta: np.ndarray) -> np.ndarray:
        """Coefficients (rows: phenotypes) in the phenotype's units.

        ``s b``, plus ``mu / kappa`` on the constant column (of value kappa).
        """
        out = beta * self.scale[:, None]
        col = self.rot.constant_column
        if col >= 0:
            out[:, col] += self.centre / self.rot.constant_value
        return out

    def unscale_se(self, se: np.ndarray) -> np.ndarray:
        """Standard errors of coefficients (rows: phenotypes) in the phenotype's units: ``s se``."""
        return se * self.scale[:, None]

    def unscale_sigma2(self, sigma2: np.ndarray) -> np.ndarray:
        """Total variance in the phenotype's units squared: ``s^2 v``."""
        return sigma2 * self.scale**2


def standardise(rot: RotatedData) -> StandardisedData:
    """Centre (through a constant column of the design, if any) and scale every phenotype.

    Notes
    -----
    The mean comes from the rotated data: ``1'y = (U'1)'(U'y)`` and
    ``U'1 = X*[:, c] / kappa`` for a constant column c of value kappa, so
    ``mu = (U'1)'y* / n`` and the centred rotated phenotype is
    ``y* - mu U'1``. The scale is ``s = sqrt(sum (y* - mu U'1)^2 / n)``.
    h2 does not change; ``b`` scales with s (the constant column's
    coefficient also shifts by ``mu / kappa``), ``v`` with ``s^2`` and L by
    ``-n' log s`` (ML) or ``-(n - p) log s`` (REML). Fitting on this scale
    keeps phenotypes measured on scales of 1e-8 or 1e8, or with a mean far
    from 0, as accurate as any other.
    """
    n, m = rot.n, rot.n_phenotypes
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
    return StandardisedData(rot.with_phenotypes(yc / scale), mu, scale)


# --------------------------------------------------------------------------- 2. optimise


@dataclass(frozen=True)
class H2Optimum:
    """The maximum of every phenotype's profile log-likelihood (on the data it was given).

    Attributes
    ----------
    method : str
    searches : sequence of OptimizeResult
        The optimiser's answer and story for each phenotype (from
        :func:`optimise_h2`: a :class:`~lmmcore.optimize.ProfileMaxima`,
        which holds them as arrays and builds an ``OptimizeResult`` when
        one is asked for).
    h2, loglik : ndarray, shape (m,)
        The optimum (the flat profile's optimum even when h2 is not identifiable).
    identifiable : bool
        False when every h2 fits equally well (reported h2 is then NaN).
    unbounded : bool
        ML with covariates that fit the kinship's null space: no maximum.
    series : LocalSeries or None
        When the search used sufficient statistics: each phenotype's profile
        as a power series around the grid point nearest its optimum, valid
        within ``NEAR_MARGIN`` of it (lane j = phenotype j; the standard
        error's stencil reuses it).
    """

    method: str
    searches: Sequence[OptimizeResult]
    h2: np.ndarray
    loglik: np.ndarray
    identifiable: bool
    unbounded: bool
    series: LocalSeries | None = None

    @property
    def h2_reported(self) -> np.ndarray:
        """``h2``, NaN where h2 is not identifiable."""
        return self.h2 if self.identifiable else np.full(self.h2.size, np.nan)

    @property
    def grid_h2(self) -> np.ndarray:
        """The optimiser's grid, shape (k,)."""
        if isinstance(self.searches, ProfileMaxima):
            return self.searches.grid_h2
        return self.searches[0].grid_h2

    @property
    def grid_loglik(self) -> np.ndarray:
        """The profile on the optimiser's grid, shape (k, m)."""
        if isinstance(self.searches, ProfileMaxima):
            return self.searches.grid_loglik.copy()
        return np.column_stack([o.grid_loglik for o in self.searches])

    @property
    def loglik_h2_zero(self) -> np.ndarray:
        """The profile at h2 = 0 (the grid's first point), shape (m,)."""
        if isinstance(self.searches, ProfileMaxima):
            return self.searches.grid_loglik[0].copy()
        return np.array([o.grid_loglik[0] for o in self.searches])


def report_search_caveats(rot: RotatedData, method: str, stacklevel: int = 5) -> tuple[bool, bool]:
    """Report when ML has no maximum and when h2 is not identifiable; return ``(unbounded, identifiable)``.

    The two messages of every h2 search (the fit's :func:`optimise_h2` and
    the scan's null search), worded once. ``stacklevel`` counts from this
    function to the user's call (the default suits a public entry point
    that calls a search that calls this).
    """
    unbounded = method == "ml" and rot.ml_unbounded
    if unbounded:
        report(
            "the covariates can fit every direction that the kinship ignores (its null space; "
            "n - rank(K) <= p), so the ML likelihood grows without bound as h2 -> 1 and has no "
            "maximum; use REML, fewer covariates or more individuals",
            stacklevel=stacklevel,
        )
    identifiable = h2_identifiable(rot)
    if not identifiable:
        report(
            "h2 is not identifiable: on the residuals the kinship acts like a multiple of the "
            "identity (e.g. K = I, or K all ones with an intercept), so every h2 fits equally "
            "well; h2 is reported as NaN",
            stacklevel=stacklevel,
        )
    return unbounded, identifiable


def optimise_h2(
    data: RotatedData | StandardisedData,
    method: str = "reml",
    *,
    phenotype_names: Sequence[str] | None = None,
    tol: float = DEFAULT_TOL,
    grid: int | np.ndarray = DEFAULT_GRID,
    profiles: TraitProfiles | None = None,
) -> H2Optimum:
    """Maximise every phenotype's profile log-likelihood over h2 in [0, 1].

    Parameters
    ----------
    data : StandardisedData or RotatedData
        Standardised data (what :func:`fit_rotated` passes) or rotated data as they are.
    method : {"reml", "ml"}
    phenotype_names : sequence of str, optional
        For the message when a likelihood is not finite.
    tol, grid
        See :func:`lmmcore.optimize.maximize_profile`.
    profiles : TraitProfiles, optional
        The phenotypes' sufficient statistics
        (:func:`lmmcore.profile_stats.trait_profiles`): the search evaluates
        the profile from them, and each interior optimum is then pinned to
        rounding by :func:`polish_optimum` (``H2Optimum.h2``; the searches
        keep Brent's own answer).

    Returns
    -------
    H2Optimum

    Raises
    ------
    LMMInputError
        When a phenotype's likelihood is not finite anywhere in [0, 1].

    Notes
    -----
    Reports (:func:`lmmcore.errors.report`) when ML has no maximum (the
    covariates fit the kinship's null space) and when h2 is not identifiable.
    """
    rot = data.rot if isinstance(data, StandardisedData) else data
    method = method.lower()
    unbounded, identifiable = report_search_caveats(rot, method)
    opt = profile_maxima(rot, method, tol=tol, grid=grid, profiles=profiles)
    h = opt.h2.copy()
    L = opt.loglik.copy()
    near = None
    if profiles is not None and len(opt):
        margin = max(NEAR_MARGIN, 8.0 * (tol + float(np.max(np.abs(h), initial=0.0)) * 1e-8))
        near = series_near(profiles, h, np.arange(h.size), opt.grid_h2, margin)
        h, L = polish_optimum(profiles, h, L, tol, near)
    if not np.all(np.isfinite(L)):
        j = int(np.flatnonzero(~np.isfinite(L))[0])
        name = phenotype_names[j] if phenotype_names is not None else f"y{j + 1}"
        raise LMMInputError(
            f"phenotype '{name}': the likelihood is not finite anywhere in [0, 1]; "
            "check the phenotype and the kinship"
        )
    return H2Optimum(method, opt, h, L, identifiable, unbounded, near)


def polish_optimum(profiles: TraitProfiles, h: np.ndarray, loglik: np.ndarray,
                   tol: float = DEFAULT_TOL, series: LocalSeries | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pin Brent's interior optima to rounding: one secant step on the slope ``dL/dh``.

    Parameters
    ----------
    profiles : TraitProfiles
    h, loglik : ndarray, shape (m,)
        Brent's optimum (and its value) of every phenotype.
    tol : float
        The tolerance Brent's searches used.
    series : LocalSeries, optional
        Power series of the profiles near the optima, lane j = phenotype j
        (:func:`lmmcore.profile_stats.series_near`): the slopes and values
        are then evaluated from them.

    Returns
    -------
    h, loglik : ndarray, shape (m,)
        The polished optima and the profile there; boundaries, and optima
        whose neighbourhood does not show a sign change of the slope, are
        kept as they are.

    Notes
    -----
    A converged Brent search leaves the maximum within ``2 tol1`` of its
    answer x (``tol1 = tol + sqrt(eps) |x| / 3``). With ``delta = 4 tol1``
    the slope is positive at ``a = x - delta`` and negative at
    ``b = x + delta``; the secant through them,
    ``x* = a + (b - a) L'(a) / (L'(a) - L'(b))``, is the root of the slope
    to about ``delta^2 |L^(3)| / |L^(2)|`` (1e-12), where Brent's
    comparisons of function values stop at about ``sqrt(eps)``. The
    polished point is kept when its value is not below Brent's (to
    rounding).
    """
    h = np.array(h, dtype=float)
    loglik = np.array(loglik, dtype=float)
    delta = 4.0 * (tol + np.sqrt(np.finfo(float).eps) / 3.0 * np.abs(h))
    lo, hi = h - delta, h + delta
    cols = np.flatnonzero(np.isfinite(h) & np.isfinite(loglik) & (lo > 0.0) & (hi < 1.0))
    if cols.size == 0:
        return h, loglik
    evaluator = profiles if series is None else series
    lanes = cols
    with np.errstate(divide="ignore", invalid="ignore"):
        s = evaluator.slopes(np.concatenate([lo[cols], hi[cols]]), np.concatenate([lanes, lanes]))
    s_lo, s_hi = s[: cols.size], s[cols.size :]
    ok = np.isfinite(s_lo) & np.isfinite(s_hi) & (s_lo > 0.0) & (s_hi < 0.0)
    cols, lanes, s_lo, s_hi = cols[ok], lanes[ok], s_lo[ok], s_hi[ok]
    if cols.size == 0:
        return h, loglik
    root = lo[cols] + (hi[cols] - lo[cols]) * (s_lo / (s_lo - s_hi))
    value = evaluator.values(root, lanes)
    keep = value >= loglik[cols] - 1e-12 * (1.0 + np.abs(loglik[cols]))
    h[cols[keep]] = root[keep]
    loglik[cols[keep]] = value[keep]
    return h, loglik


def solve_at_optimum(rot: RotatedData, optimum: H2Optimum) -> WLSSolution:
    """The weighted least squares solution of every phenotype at its optimum h2.

    Notes
    -----
    At h2 = 1 with a singular K the weights are infinite and the solution is
    a limit; it is evaluated at ``1 - 1e-9``, which gives it to about 1e-8.
    """
    h = optimum.h2
    h_wls = np.where((h >= 1.0) & np.any(rot.d == 0), 1.0 - SINGULAR_EDGE, h)
    return solve_wls_paired(rot, h_wls, np.arange(h.size), optimum.method)


# --------------------------------------------------------------------------- all three


@dataclass(frozen=True)
class PointEstimate:
    """h2, log-likelihood and coefficients of every phenotype, without SE, interval or test.

    Attributes
    ----------
    method : str
    h2 : ndarray, shape (m,)
        NaN where h2 is not identifiable.
    loglik : ndarray, shape (m,)
        At the optimum, all constants included, in the phenotype's units.
    beta : ndarray, shape (m, p)
    sigma2 : ndarray, shape (m,)
        Total variance ``v`` in the phenotype's units squared.
    optimum : H2Optimum
        On the standardised data (``optimum.loglik`` is not shifted back).
    standardised : StandardisedData
    solution : WLSSolution
        At the optimum, on the standardised data.
    profiles : TraitProfiles or None
        The sufficient statistics of the standardised phenotypes, when the
        estimate used them (``statistics=True``).
    """

    method: str
    h2: np.ndarray
    loglik: np.ndarray
    beta: np.ndarray
    sigma2: np.ndarray
    optimum: H2Optimum
    standardised: StandardisedData
    solution: WLSSolution
    profiles: TraitProfiles | None = None


def estimate_rotated(
    rot: RotatedData,
    method: str = "reml",
    *,
    phenotype_names: Sequence[str] | None = None,
    tol: float = DEFAULT_TOL,
    grid: int | np.ndarray = DEFAULT_GRID,
    statistics: bool = False,
    report: Report | None = None,
) -> PointEstimate:
    """The optimum h2 and the coefficients there, for every phenotype column of ``rot``.

    The same numbers as :func:`fit_rotated` (``h2``, ``loglik``, ``beta``,
    ``sigma2``) without the standard errors, the interval's bisection or
    the test of h2 = 0: standardise, optimise, solve, back-transform.

    Parameters
    ----------
    rot : RotatedData
    method : {"reml", "ml"}
    phenotype_names : sequence of str, optional
    tol, grid
        See :func:`lmmcore.optimize.maximize_profile`.
    statistics : bool
        Evaluate the profile from the phenotypes' sufficient statistics
        (:mod:`lmmcore.profile_stats`; cheaper for many phenotypes) and
        polish each interior optimum to rounding (:func:`polish_optimum`).
        :func:`lmmcore.fit.fit_rotated` does; by default the profile is
        evaluated by :mod:`lmmcore.likelihood` and h2 is Brent's answer.
    report : callable, optional
        Receiver of the messages (see :func:`lmmcore.errors.reporting`).

    Returns
    -------
    PointEstimate
    """
    with reporting(report):
        method = method.lower()
        std = standardise(rot)
        profiles = trait_profiles(std.rot, method) if statistics else None
        optimum = optimise_h2(std, method, phenotype_names=phenotype_names, tol=tol, grid=grid,
                              profiles=profiles)
        sol = solve_at_optimum(std.rot, optimum)
    return PointEstimate(
        method=method,
        h2=optimum.h2_reported,
        loglik=optimum.loglik + std.loglik_shift(method),
        beta=std.unscale_beta(sol.beta),
        sigma2=std.unscale_sigma2(sol.sigma2),
        optimum=optimum,
        standardised=std,
        solution=sol,
        profiles=profiles,
    )
