"""Inference at the optimum: standard errors, the profile-likelihood interval, the test of h2 = 0.

Each function does one job on the profile log-likelihood ``L(h)`` of
(standardised) rotated data whose maximum :func:`lmmcore.fit.optimise_h2` has
found; :func:`h2_inference` runs the three of them for the fit, and a caller
that needs only some of them (the genome scan's null model needs none) calls
only those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .eigen import RotatedData
from .likelihood import profile_loglik_paired
from .profile_stats import LocalSeries, TraitProfiles, local_series
from .wls import WLSSolution

__all__ = [
    "CI_DROP",
    "CURVATURE_STEP",
    "H2Inference",
    "h2_standard_error",
    "profile_interval",
    "lrt_h2_zero",
    "coefficient_standard_errors",
    "h2_inference",
]

#: Half the 95% quantile of chi-square(1): the drop in log-likelihood that
#: bounds the 95% profile-likelihood interval (1.920729...).
CI_DROP = 1.9207294103470282  # = scipy.stats.chi2.ppf(0.95, 1) / 2 (checked in the tests)

#: Step of the finite-difference second derivative behind ``h2_se``.
CURVATURE_STEP = 1e-4

_BISECTION_STEPS = 48
#: The interval's end points are pinned to this (bisection stops there).
_INTERVAL_TOL = 1e-10
#: The root search that replaces most bisection steps stops at this bracket width.
_ROOT_TOL = 2e-13
_ROOT_STEPS = 60


@dataclass(frozen=True)
class H2Inference:
    """Standard error, 95% interval and test of h2 = 0 of every phenotype (arrays of shape (m,)).

    Attributes
    ----------
    h2_se : ndarray
        NaN where the curvature gives none; ``h2_se_notes`` says why.
    h2_se_notes : tuple of str
    ci_low, ci_high : ndarray
    lrt : ndarray
        ``2 (L(h2) - L(0))``, never negative.
    p_value : ndarray
        From the 50:50 mixture of chi-square(0) and chi-square(1).
    """

    h2_se: np.ndarray
    h2_se_notes: tuple[str, ...]
    ci_low: np.ndarray
    ci_high: np.ndarray
    lrt: np.ndarray
    p_value: np.ndarray


def _profile_values(rot: RotatedData, method: str, profiles: TraitProfiles | LocalSeries | None):
    """``f(h, columns)``: the profile of phenotype ``columns[l]`` at ``h[l]``."""
    if profiles is not None:
        return profiles.values
    return lambda h, cols: profile_loglik_paired(rot, h, cols, method)


def h2_standard_error(rot: RotatedData, h: np.ndarray, method: str,
                      profiles: TraitProfiles | LocalSeries | None = None) -> tuple[np.ndarray, list[str]]:
    """Standard error of h2 from the curvature of the profile log-likelihood.

    Parameters
    ----------
    rot : RotatedData
    h : ndarray, shape (m,)
        The optimum of each phenotype column.
    method : {"reml", "ml"}
    profiles : TraitProfiles or LocalSeries, optional
        Evaluate the profile from these sufficient statistics of ``rot``'s
        phenotypes, or from power series of them whose lane j is phenotype
        j (:attr:`lmmcore.estimate.H2Optimum.series`): the same values,
        cheaper for many phenotypes.

    Returns
    -------
    se : ndarray, shape (m,)
        NaN at a boundary or where the profile is not curved downwards.
    notes : list of str
        Why an SE is NaN ("" otherwise).

    Notes
    -----
    ``se = 1 / sqrt(-L''(h))`` with ``L''`` by the three-point difference of
    step 1e-4, centred at h (moved inside ``[1e-4, 1 - 1e-4]`` near an edge).
    """
    m = h.size
    cols = np.arange(m)
    step = CURVATURE_STEP
    boundary = (h <= 0.0) | (h >= 1.0)
    # centre of a three-point stencil that stays inside [0, 1]
    centre = np.clip(h, step, 1.0 - step)
    pts = np.concatenate([centre - step, centre, centre + step])
    vals = _profile_values(rot, method, profiles)(pts, np.tile(cols, 3)).reshape(3, m)
    second = (vals[0] - 2.0 * vals[1] + vals[2]) / step**2
    curved = ~boundary & np.isfinite(second) & (second < 0)
    se = np.full(m, np.nan)
    se[curved] = 1.0 / np.sqrt(-second[curved])
    notes = [""] * m
    for j in np.flatnonzero(~curved):  # only the phenotypes without an SE get a sentence
        if boundary[j]:
            notes[j] = (
                f"h2 is on the boundary ({h[j]:g}): the curvature there does not give a "
                "standard error; use the profile-likelihood interval"
            )
        else:
            notes[j] = "the profile log-likelihood is not curved downwards at the optimum"
    return se, notes


def profile_interval(rot: RotatedData, method: str, h: np.ndarray, L: np.ndarray,
                     grid_h: np.ndarray, grid_L: np.ndarray,
                     profiles: TraitProfiles | None = None) -> tuple[np.ndarray, np.ndarray]:
    """95% profile-likelihood interval: the outermost h with ``L(h) >= max - 1.92``.

    Parameters
    ----------
    rot : RotatedData
    method : {"reml", "ml"}
    h, L : ndarray, shape (m,)
        Optimum and maximum of each phenotype column.
    grid_h : ndarray, shape (k,)
        The optimiser's grid, shared by all columns.
    grid_L : ndarray, shape (k, m)
        The profile on that grid.
    profiles : TraitProfiles, optional
        Evaluate the profile from these sufficient statistics, and find the
        bisection's answer by a root search (see Notes).

    Returns
    -------
    low, high : ndarray, shape (m,)

    Notes
    -----
    The grid (with the optimum inserted) locates the outermost crossings of
    ``max - CI_DROP``; vectorised bisection over all crossings at once pins
    each one to 1e-10. An end at which the profile stays above the threshold
    is the boundary 0 or 1.

    With ``profiles``, the same bisection is *replayed* rather than
    evaluated: a vectorised root search (:func:`_crossing_roots`, false
    position with the Illinois modification, about six evaluations) finds
    each crossing r to 2e-13, and a bisection step's question "is
    ``L(mid) >= max - CI_DROP``?" is answered by the side of r on which mid
    lies. Only a mid within the root's uncertainty (plus the rounding of
    L, divided by the slope) is evaluated. The answer is the bisection's
    own, at a fraction of its ~28 evaluations per end.
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
    values = _profile_values(rot, method, profiles)

    def func(x, lanes):  # the profile of crossing lane ``lanes[i]`` at ``x[i]``
        return values(x, lane_col[lanes])

    root = zone = None
    if profiles is not None and lane_col.size:
        # each crossing's grid cell [g_j, g_j+1]: a power series around its midpoint
        cell = np.clip(np.searchsorted(grid_h, np.minimum(out_end, in_end), side="right") - 1, 0, grid_h.size - 2)
        half = 0.5 * (grid_h[cell + 1] - grid_h[cell])
        series = local_series(profiles, grid_h[cell] + half, lane_col, half * (1.0 + 1e-9))
        func = series.values
        f_out = np.concatenate([vals[first[need_lo] - 1, need_lo], vals[last[need_hi] + 1, need_hi]])
        f_in = np.concatenate([vals[first[need_lo], need_lo], vals[last[need_hi], need_hi]])
        root, zone = _crossing_roots(func, thr, out_end, f_out, in_end, f_in)
    lanes = np.arange(lane_col.size)
    for _ in range(_BISECTION_STEPS):
        if lane_col.size == 0 or np.max(np.abs(in_end - out_end)) < _INTERVAL_TOL:
            break
        mid = 0.5 * (out_end + in_end)
        if root is None:
            ok = func(mid, lanes) >= thr
        else:
            ok = (mid - root) * (in_end - out_end) > 0.0  # mid lies between the root and the 'in' end
            close = np.flatnonzero(np.abs(mid - root) <= zone)
            if close.size:
                ok[close] = func(mid[close], close) >= thr[close]
        in_end = np.where(ok, mid, in_end)
        out_end = np.where(ok, out_end, mid)
    crossing = 0.5 * (out_end + in_end)
    low[need_lo] = crossing[: need_lo.size]
    high[need_hi] = crossing[need_lo.size :]
    return low, high


def _crossing_roots(func, thr, out_end, f_out, in_end, f_in):
    """Where each profile crosses its threshold between ``out_end`` (below) and ``in_end`` (above).

    ``func(x, lanes)`` is the profile of crossing ``lanes[i]`` at ``x[i]``.

    Returns
    -------
    root : ndarray
        The crossing, to about ``_ROOT_TOL`` (NaN where the search failed:
        then every bisection step near it is evaluated).
    zone : ndarray
        Half-width around ``root`` in which the side of a point cannot be
        told without evaluating: the root's bracket plus twice the rounding
        of the profile (``1e-14 (1 + |thr|)``) divided by the slope.

    Notes
    -----
    False position (the secant through the bracket's ends) with the
    Illinois modification (the value kept at an end that stays twice in a
    row is halved), vectorised over all crossings; a step that does not
    fall strictly inside the bracket is a bisection. A lane stops when its
    bracket is narrower than ``_ROOT_TOL`` or when a value is within the
    rounding of the threshold (then that point is the root). Each iteration
    is one evaluation of the lanes still running.
    """
    noise = 1e-14 * (1.0 + np.abs(thr))
    a, b = out_end.astype(float).copy(), in_end.astype(float).copy()
    ga, gb = f_out - thr, f_in - thr  # ga < 0 <= gb
    ga_true, gb_true = ga.copy(), gb.copy()
    kept = np.zeros(a.size, dtype=int)  # +1: b was replaced last, -1: a was
    root = np.full(a.size, np.nan)
    active = np.isfinite(gb) & ~np.isnan(ga)
    for _ in range(_ROOT_STEPS):
        active &= np.abs(b - a) > _ROOT_TOL
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        ai, bi, gai, gbi = a[idx], b[idx], ga[idx], gb[idx]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            s = bi - gbi * (bi - ai) / (gbi - gai)
        mid = 0.5 * (ai + bi)
        inside = np.isfinite(s) & ((s - ai) * (s - bi) < 0.0)
        s = np.where(inside, s, mid)
        gs = func(s, idx) - thr[idx]
        up = gs >= 0.0  # s is on the 'in' side: it replaces b
        active[idx[np.isnan(gs)]] = False
        hit = np.abs(gs) <= noise[idx]
        root[idx[hit]] = s[hit]
        active[idx[hit]] = False
        ga[idx] = np.where(up & (kept[idx] == 1), 0.5 * gai, np.where(up, gai, gs))
        gb[idx] = np.where(~up & (kept[idx] == -1), 0.5 * gbi, np.where(up, gs, gbi))
        ga_true[idx] = np.where(up, ga_true[idx], gs)
        gb_true[idx] = np.where(up, gs, gb_true[idx])
        a[idx] = np.where(up, ai, s)
        b[idx] = np.where(up, s, bi)
        kept[idx] = np.where(up, 1, -1)
    at_value = ~np.isnan(root)  # stopped on a value within rounding of the threshold
    width = np.where(at_value, 0.0, np.abs(b - a))
    root = np.where(~at_value & (width <= _ROOT_TOL), 0.5 * (a + b), root)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.abs((gb_true - ga_true) / (b - a))  # the secant of the last bracket
        blur = 2.0 * noise / slope
    zone = np.where(np.isfinite(blur), width + blur, np.inf)
    return root, np.where(np.isnan(root), np.inf, zone)


def lrt_h2_zero(L: np.ndarray, L0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Likelihood-ratio test of h2 = 0: statistic and p-value.

    Notes
    -----
    ``stat = max(2 (L(h2) - L(0)), 0)``; h2 = 0 is on the boundary of the
    parameter space, so the p-value is ``0.5 P(chi2_1 >= stat)``
    (``P(chi2_1 >= x) = erfc(sqrt(x / 2))``), and 1 when the statistic is 0.
    """
    lrt = np.maximum(2.0 * (L - L0), 0.0)
    p_lrt = np.where(lrt > 0, 0.5 * np.vectorize(math.erfc, otypes=[float])(np.sqrt(lrt / 2.0)), 1.0)
    return lrt, p_lrt


def coefficient_standard_errors(sol: WLSSolution) -> np.ndarray:
    """Standard errors of the coefficients, ``sqrt(diag(sigma2 (X*'WX*)^{-1}))``, shape (L, p)."""
    cov_unscaled = np.linalg.inv(sol.XtWX)
    return np.sqrt(sol.sigma2[:, None] * np.diagonal(cov_unscaled, axis1=1, axis2=2))


def h2_inference(rot: RotatedData, method: str, h: np.ndarray, L: np.ndarray, grid_h: np.ndarray,
                 grid_L: np.ndarray, identifiable: bool = True,
                 profiles: TraitProfiles | None = None, series: LocalSeries | None = None) -> H2Inference:
    """SE, 95% interval and test of h2 = 0 of every phenotype column of ``rot``.

    Parameters are those of :func:`profile_interval`; ``grid_L[0]`` must be
    the profile at h2 = 0 (the optimiser's grid starts there). When h2 is not
    identifiable the SE is NaN, the interval [0, 1] and the test 0 with
    p-value 1. ``profiles``: see :func:`profile_interval`; ``series``
    (:attr:`lmmcore.estimate.H2Optimum.series`): the standard error's
    stencil is evaluated from it.
    """
    m = h.size
    h2_se, notes = h2_standard_error(rot, h, method, series if series is not None else profiles)
    ci_low, ci_high = profile_interval(rot, method, h, L, grid_h, grid_L, profiles)
    lrt, p_lrt = lrt_h2_zero(L, grid_L[0])
    if not identifiable:
        h2_se[:] = np.nan
        notes = ["h2 is not identifiable with this kinship"] * m
        ci_low, ci_high = np.zeros(m), np.ones(m)
        lrt, p_lrt = np.zeros(m), np.ones(m)
    return H2Inference(h2_se, tuple(notes), ci_low, ci_high, lrt, p_lrt)
