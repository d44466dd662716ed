"""The null h2 of many traits of one pattern: grid, brackets, then a root of the slope in each.

The genome scan needs, for every trait of a (kinship, missingness pattern)
group, the maximum of the profile log-likelihood pinned to rounding (the
fixed-h2 LOD moves with h2 to first order). :func:`lmmcore.estimate.optimise_h2`
finds it by the fit's search (grid, Brent's method on function values in the
bracket of every local maximum of the grid, the boundaries; an optimiser
trace per trait for the dashboard) and :func:`lmmcore.likelihood.polish_h2`
then pins it to the root of ``dL/dh``. The scan has no use for the trace or
for Brent's ``sqrt(eps)`` answer, and for hundreds of traits per group that
search is most of the null fit's time. Here, with the same grid, brackets
and boundary rule:

1. the profile of every trait on the grid from its sufficient statistics
   (:meth:`lmmcore.profile_stats.TraitProfiles.grid`: matrix products);
2. every local maximum of the grid (:func:`lmmcore.optimize.grid_peaks`, the
   fit's plateau rule and bracket limit) is a bracket ``[g_{k-1}, g_{k+1}]``;
   the slope at ``g_k`` says which half holds the maximum, and where the
   slope changes sign across that half the maximum is the root of the slope,
   found to rounding by :func:`lmmcore.likelihood.slope_root` (regula falsi
   with the Illinois rule, started at the inverse quadratic interpolation of
   the three slopes of the bracket: about 6 slope evaluations per bracket,
   each O(n) from the sufficient statistics);
3. brackets that show no such sign change (an end of the grid with h2 = 1
   not defined, or a profile with more than one turn inside one grid
   interval) get the fit's own search there, Brent's method
   (:func:`lmmcore.optimize.search_brackets`), then the polish;
4. the best of the brackets' maxima and the two boundaries, by the rule of
   :func:`lmmcore.optimize.maximize_profile` (a maximum within ``10 tol`` of
   a boundary and no better than it, to rounding, is the boundary).

The answer is the fit's optimum (a root of the same slope in the same
bracket, to rounding) without its trace.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .eigen import RotatedData
from .errors import LMMInputError
from .estimate import report_search_caveats, standardise
from .likelihood import polish_h2, slope_root
from .optimize import DEFAULT_GRID, DEFAULT_TOL, MAX_BRACKETS, best_by_lane, default_grid, grid_peaks, search_brackets
from .profile_stack import StackedProfiles
from .profile_stats import trait_profiles

__all__ = ["null_h2", "null_h2_stacked"]


def null_h2(rot: RotatedData, method: str, names: Sequence[str] | None = None,
            tol: float = DEFAULT_TOL) -> tuple[np.ndarray, np.ndarray]:
    """The ML or REML h2 of every phenotype column of ``rot`` and the profile log-likelihood there.

    Parameters
    ----------
    rot : RotatedData
    method : {"reml", "ml"}
    names : sequence of str, optional
        Phenotype names for messages.
    tol : float
        The boundary rule's tolerance (as the fit's ``tol``).

    Returns
    -------
    h2 : ndarray, shape (T,)
        The optimum, an interior one pinned to a root of ``dL/dh``; NaN for
        every trait when h2 is not identifiable.
    loglik : ndarray, shape (T,)
        The profile log-likelihood there, in the phenotypes' own units.

    Raises
    ------
    LMMInputError
        When a phenotype's likelihood is not finite anywhere in [0, 1].

    Notes
    -----
    Reports, as :func:`lmmcore.estimate.optimise_h2` does, when ML has no
    maximum and when h2 is not identifiable. See the module docstring for
    the search.
    """
    method = str(method).lower()
    _, identifiable = report_search_caveats(rot, method)
    std = standardise(rot)
    prof = trait_profiles(std.rot, method)
    h, loglik = _search(prof, names, tol)
    loglik = loglik + std.loglik_shift(method)
    if not identifiable:
        h = np.full(h.size, np.nan)
    return h, loglik


def null_h2_stacked(rots: Sequence[RotatedData], names: Sequence[str] | None = None,
                    tol: float = DEFAULT_TOL) -> tuple[np.ndarray, np.ndarray]:
    """:func:`null_h2` (REML) of the traits of several rotated data sets with the same eigenvalues, in one search.

    For the patterns that share a decomposition through indicator
    covariates (:mod:`lmmcore.pattern_dummies`): each has its own covariates,
    so its traits' profiles come from its own sufficient statistics, and
    :class:`~lmmcore.profile_stack.StackedProfiles` evaluates them all
    together. Returns ``(h2, loglik)`` of every trait, one data set's traits
    after the other; the same optimum as :func:`null_h2` of each (the same
    grid, brackets and rules, a root of the same slope).
    """
    parts, shifts, identifiable = [], [], []
    for rot in rots:
        _, ident = report_search_caveats(rot, "reml")
        std = standardise(rot)
        parts.append(trait_profiles(std.rot, "reml"))
        shifts.append(std.loglik_shift("reml"))
        identifiable.append(np.full(rot.n_phenotypes, ident))
    h, loglik = _search(StackedProfiles(parts), names, tol)
    loglik = loglik + np.concatenate(shifts)
    h = np.where(np.concatenate(identifiable), h, np.nan)
    return h, loglik


def _search(prof, names: Sequence[str] | None, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """The module docstring's search on profiles (``TraitProfiles`` or ``StackedProfiles``), before the shift."""
    g = default_grid(DEFAULT_GRID)
    values = prof.grid(g)  # (H, T)
    T = values.shape[1]
    lane, k = grid_peaks(values, limit=MAX_BRACKETS)
    x, fx = _bracket_maxima(prof, g, values, lane, k, tol)

    # the best of the brackets and the boundaries (the rule of optimize.maximize_profile)
    best_h = np.where(values[0] >= values[-1], 0.0, 1.0)
    best_f = np.maximum(values[0], values[-1])
    interior_h, interior_f = best_by_lane(lane, x, fx, T)
    near_edge = (interior_h <= 10 * tol) | (interior_h >= 1 - 10 * tol)
    slack = np.where(near_edge, 1e-9 * (1.0 + np.abs(best_f)), 0.0)
    use = interior_f > best_f + slack
    h = np.where(use, interior_h, best_h)
    loglik = np.where(use, interior_f, best_f)
    if not np.all(np.isfinite(loglik)):
        j = int(np.flatnonzero(~np.isfinite(loglik))[0])
        name = names[j] if names is not None else f"y{j + 1}"
        raise LMMInputError(
            f"phenotype '{name}': the likelihood is not finite anywhere in [0, 1]; "
            "check the phenotype and the kinship"
        )
    return h, loglik


def _bracket_maxima(prof, g: np.ndarray, values: np.ndarray, lane: np.ndarray, k: np.ndarray, tol: float):
    """The maximum ``(x, fx)`` in the bracket of every grid peak ``(lane, k)`` (module docstring, steps 2-3)."""
    H = g.size
    x = g[k].copy()
    fx = values[k, lane].copy()
    lo_k, hi_k = np.maximum(k - 1, 0), np.minimum(k + 1, H - 1)
    below1 = (lambda idx: g[idx] < 1.0) if prof.singular else (lambda idx: np.ones(idx.size, dtype=bool))

    def slope(h, traits):
        """Slopes where defined (h < 1 for a singular kinship), NaN elsewhere."""
        out = np.full(h.size, np.nan)
        ok = h < 1.0 if prof.singular else np.ones(h.size, dtype=bool)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out[ok] = prof.slopes(h[ok], traits[ok])
        return out

    # slopes at the grid point and at both ends of its bracket (where defined), one batched call
    pts = np.concatenate([k, lo_k, hi_k])
    s = slope(g[pts], np.concatenate([lane, lane, lane]))
    s_k, s_lo, s_hi = np.split(s, 3)
    up = s_k > 0.0  # the maximum lies above g_k
    a_k = np.where(up, k, lo_k)
    b_k = np.where(up, hi_k, k)
    f_a = np.where(up, s_k, s_lo)
    f_b = np.where(up, s_hi, s_k)
    root = (a_k < b_k) & (f_a > 0.0) & (f_b < 0.0) & below1(b_k) & np.isfinite(f_a) & np.isfinite(f_b)
    flat = (s_k == 0.0) & (0 < k) & (k < H - 1)  # the grid point is the root itself
    root &= ~flat
    if np.any(root):
        r = np.flatnonzero(root)
        guess = _inverse_quadratic(g[lo_k[r]], g[k[r]], g[hi_k[r]], s_lo[r], s_k[r], s_hi[r])
        h = slope_root(lambda hh, idx: prof.slopes(hh, lane[r[idx]]), g[a_k[r]], g[b_k[r]], f_a[r], f_b[r],
                       x0=guess)
        f = prof.values(h, lane[r])
        better = f > fx[r]
        x[r[better]], fx[r[better]] = h[better], f[better]
    # an end of the grid whose slope points out of [0, 1]: the boundary itself is the bracket's answer
    edge = ((k == 0) & (s_k <= 0.0)) | ((k == H - 1) & np.isfinite(s_k) & (s_k >= 0.0))
    rest = np.flatnonzero(~root & ~flat & ~edge)
    if rest.size:  # no sign change to follow: Brent's method as in the fit, then the polish
        search = search_brackets(lambda hh, idx: prof.values(hh, lane[rest[idx]]), g, values, lane[rest],
                                 k[rest], tol=tol)
        h = polish_h2(prof.rot, search.x, prof.method, slope=lambda hh, idx: prof.slopes(hh, lane[rest[idx]]))
        f = prof.values(h, lane[rest])
        h = np.where(f >= search.fx, h, search.x)
        f = np.maximum(f, search.fx)
        better = f > fx[rest]
        x[rest[better]], fx[rest[better]] = h[better], f[better]
    return x, fx


def _inverse_quadratic(x1, x2, x3, f1, f2, f3):
    """The root of the slope by inverse quadratic interpolation through three points (NaN where undefined).

    ``x = sum_i x_i prod_{j != i} f_j / (f_j - f_i)``: the step of Brent's
    zeroin; exact when h is a quadratic function of the slope.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = (x1 * f2 * f3 / ((f1 - f2) * (f1 - f3)) + x2 * f1 * f3 / ((f2 - f1) * (f2 - f3))
             + x3 * f1 * f2 / ((f3 - f1) * (f3 - f2)))
    return np.where(np.isfinite(x), x, np.nan)
