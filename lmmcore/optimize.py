"""Step 4 of the algorithm: find the global maximum of the profile log-likelihood.

A one-dimensional profile can have more than one local maximum, and its
maximum can lie on a boundary. pylmm returns the first local maximum it meets;
lmmlite runs one Brent search and then compares with the boundaries. Here:

1. evaluate L(h) on a grid over [0, 1] for all phenotypes at once (the grid
   includes h = 0 and h = 1, evaluated exactly);
2. every grid point that is a local maximum (including an end point that is
   higher than its neighbour) defines a bracket ``[g_{k-1}, g_{k+1}]``;
3. Brent's method (parabolic interpolation safeguarded by golden-section
   steps) runs in every bracket of every phenotype, all brackets vectorised
   together: each iteration is one batched evaluation;
4. the best of the Brent optima and the two boundaries is the answer.

The Brent iteration follows Brent (1973), *Algorithms for Minimization without
Derivatives*, chapter 5, applied to ``-L``. Every evaluation is recorded, with
the bracket and the kind of step, so that the dashboard can replay the search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable

import numpy as np

from .eigen import RotatedData
from .likelihood import profile_loglik, profile_loglik_paired
from .search_trace import (REASONS, STEP_GOLDEN, STEP_GRID, STEP_PARABOLIC, STEP_START,  # noqa: F401
                           OptimizerTrace, search_traces)

if TYPE_CHECKING:
    from .profile_stats import TraitProfiles

__all__ = [
    "OptimizerTrace",
    "OptimizeResult",
    "BrentLanes",
    "BracketSearch",
    "brent_maximize",
    "grid_peaks",
    "best_by_lane",
    "search_brackets",
    "maximize_profile",
    "profile_maxima",
    "ProfileMaxima",
    "default_grid",
    "DEFAULT_TOL",
    "DEFAULT_GRID",
    "GOLDEN",
    "REASONS",
]

#: Absolute tolerance on h2 of each Brent search (the optimum is pinned to
#: about twice this, well inside the promised 1e-6).
DEFAULT_TOL = 1e-7
#: Number of equally spaced grid points over [0, 1] used to find brackets.
DEFAULT_GRID = 51
#: At most this many local maxima of one phenotype's grid are refined.
MAX_BRACKETS = 8

#: Golden-section fraction: the step into the larger part of a bracket, and where
#: a search in an end interval of the grid starts.
GOLDEN = 0.5 * (3.0 - np.sqrt(5.0))  # 0.381966...

@dataclass(frozen=True)
class OptimizeResult:
    """The maximum of one phenotype's profile log-likelihood.

    Attributes
    ----------
    h2, loglik : float
        The maximiser and the maximum.
    boundary : bool
        True when the maximum is at h2 = 0 or h2 = 1 (a real answer, not a failure).
    converged : bool
        Every Brent search met its tolerance within the iteration limit.
    message : str
    n_evals : int
        Number of profile evaluations (grid + Brent).
    n_searches : int
        Number of brackets refined (local maxima of the grid).
    trace : OptimizerTrace
    grid_h2, grid_loglik : ndarray
        The grid and its values (used for the profile-likelihood interval).
    """

    h2: float
    loglik: float
    boundary: bool
    converged: bool
    message: str
    n_evals: int
    n_searches: int
    trace: OptimizerTrace
    grid_h2: np.ndarray
    grid_loglik: np.ndarray


def default_grid(size: int = DEFAULT_GRID) -> np.ndarray:
    """``size`` equally spaced h2 values from 0 to 1 inclusive."""
    if size < 3:
        raise ValueError("the grid needs at least 3 points")
    return np.linspace(0.0, 1.0, int(size))


@dataclass(frozen=True)
class BrentLanes:
    """Result of :func:`brent_maximize` for L independent lanes."""

    x: np.ndarray
    fx: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    #: per iteration (rows) and lane (columns); NaN where a lane had stopped
    history_x: np.ndarray
    history_f: np.ndarray
    history_low: np.ndarray
    history_high: np.ndarray
    history_parabolic: np.ndarray
    #: the points interpolated at each step: the iteration that evaluated x, w, v
    #: (-1: x0; -2, -3: the first and second of ``neighbours``), the parabola's vertex,
    #: the golden-section point, and the reason code (an index into :data:`REASONS`)
    history_ix: np.ndarray | None = None
    history_iw: np.ndarray | None = None
    history_iv: np.ndarray | None = None
    history_vertex: np.ndarray | None = None
    history_golden: np.ndarray | None = None
    history_reason: np.ndarray | None = None


def brent_maximize(
    func: Callable[[np.ndarray, np.ndarray], np.ndarray],
    low,
    high,
    x0,
    f0,
    *,
    tol: float = DEFAULT_TOL,
    maxiter: int = 100,
    neighbours: tuple | None = None,
) -> BrentLanes:
    """Brent's method for L one-dimensional maximisations at once.

    Parameters
    ----------
    func : callable
        ``func(x, lanes)`` returns the objective at ``x[i]`` for lane
        ``lanes[i]`` (both 1-d arrays of the same length): one batched call
        per iteration evaluates every lane still running.
    low, high : array_like, shape (L,)
        Brackets; each must hold a local maximum.
    x0, f0 : array_like, shape (L,)
        A starting point strictly inside each bracket and its value.
    tol : float
        Absolute tolerance on x.
    maxiter : int
    neighbours : tuple of 4 arrays, optional
        ``(w, fw, v, fv)``: two more points already evaluated in each bracket
        (the grid neighbours of ``x0``), so that the first step can be a
        parabola instead of a golden-section step. NaN in ``w`` for a lane
        means it has none.

    Returns
    -------
    BrentLanes

    Notes
    -----
    Minimises ``-f``. At each iteration a lane fits a parabola through its
    three best points ``x, w, v`` and steps to its vertex if that lies inside
    the bracket and moves less than half the step before last; otherwise it
    takes a golden-section step ``0.382`` of the way into the larger part of
    the bracket. A lane stops when ``|x - m| <= 2 tol1 - (b - a)/2`` with
    ``m`` the bracket's midpoint and ``tol1 = tol + sqrt(eps) |x| / 3``.
    """
    a = np.array(low, dtype=float)
    b = np.array(high, dtype=float)
    x = np.array(x0, dtype=float)
    fx = -np.array(f0, dtype=float)
    L = a.size
    w, v, fw, fv = x.copy(), x.copy(), fx.copy(), fx.copy()
    ix, iw, iv = np.full(L, -1), np.full(L, -1), np.full(L, -1)  # where x, w, v were evaluated
    d = np.zeros(L)
    e = np.zeros(L)
    if neighbours is not None:
        nw, nfw, nv, nfv = (np.asarray(a, dtype=float) for a in neighbours)
        known = np.isfinite(nw) & np.isfinite(nfw) & np.isfinite(nv) & np.isfinite(nfv)
        # Brent's invariant: x best, w second best, v third
        swap = -nfw > -nfv
        w = np.where(known, np.where(swap, nv, nw), w)
        fw = np.where(known, -np.where(swap, nfv, nfw), fw)
        v = np.where(known, np.where(swap, nw, nv), v)
        fv = np.where(known, -np.where(swap, nfw, nfv), fv)
        iw = np.where(known, np.where(swap, -3, -2), iw)
        iv = np.where(known, np.where(swap, -2, -3), iv)
        e = np.where(known, b - a, e)  # as if the last steps were the bracket's width
    active = np.ones(L, dtype=bool)
    n_iter = np.zeros(L, dtype=int)
    hist = {k: [] for k in ("x", "f", "lo", "hi", "par", "ix", "iw", "iv", "vertex", "golden", "reason")}
    rel = np.sqrt(np.finfo(float).eps) / 3.0
    for it in range(maxiter):
        xm = 0.5 * (a + b)
        tol1 = tol + rel * np.abs(x)
        tol2 = 2.0 * tol1
        active &= ~(np.abs(x - xm) <= tol2 - 0.5 * (b - a))
        if not np.any(active):
            break
        # parabolic step through x, w, v
        r = (x - w) * (fx - fv)
        q = (x - v) * (fx - fw)
        p = (x - v) * q - (x - w) * r
        q = 2.0 * (q - r)
        p = np.where(q > 0, -p, p)
        q = np.abs(q)
        try_parabola = np.abs(e) > tol1
        with np.errstate(divide="ignore", invalid="ignore"):
            u_par = x + p / q
            parabolic = (
                try_parabola
                & (np.abs(p) < np.abs(0.5 * q * e))
                & (p > q * (a - x))
                & (p < q * (b - x))
            )
            d_par = np.where(
                (u_par - a < tol2) | (b - u_par < tol2),
                np.copysign(tol1, xm - x),
                p / q,
            )
        e_gold = np.where(x >= xm, a - x, b - x)
        e_new = np.where(parabolic, d, e_gold)
        d_new = np.where(parabolic, d_par, GOLDEN * e_gold)
        e = np.where(active, np.where(try_parabola, e_new, e_gold), e)
        d = np.where(active, np.where(try_parabola, d_new, GOLDEN * e_gold), d)
        u = np.where(np.abs(d) >= tol1, x + d, x + np.copysign(tol1, d))
        # how this step was chosen (for the trace)
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = (p > q * (a - x)) & (p < q * (b - x))
            reason = np.select(
                [parabolic & try_parabola & (u == u_par), parabolic & try_parabola, ~try_parabola, q == 0, ~inside],
                [0, 1, 4, 5, 2],
                default=3,
            )
        hist["ix"].append(ix.copy())
        hist["iw"].append(iw.copy())
        hist["iv"].append(iv.copy())
        hist["vertex"].append(np.where(q != 0, u_par, np.nan))
        hist["golden"].append(np.where(parabolic & try_parabola, np.nan, x + GOLDEN * e_gold))
        hist["reason"].append(reason)
        idx = np.flatnonzero(active)
        fu = np.full(L, np.nan)
        fu[idx] = -np.asarray(func(u[idx], idx), dtype=float)
        n_iter[idx] += 1
        # update the bracket and the three best points
        better = active & (fu <= fx)
        worse = active & ~better
        a = np.where(better & (u >= x), x, np.where(worse & (u < x), u, a))
        b = np.where(better & (u < x), x, np.where(worse & (u >= x), u, b))
        shift_w = worse & ((fu <= fw) | (w == x))
        shift_v = worse & ~shift_w & ((fu <= fv) | (v == x) | (v == w))
        v_old, fv_old = v.copy(), fv.copy()
        v = np.where(better | shift_w, w, np.where(shift_v, u, v_old))
        fv = np.where(better | shift_w, fw, np.where(shift_v, fu, fv_old))
        iv = np.where(better | shift_w, iw, np.where(shift_v, it, iv))
        w_new = np.where(better, x, np.where(shift_w, u, w))
        fw = np.where(better, fx, np.where(shift_w, fu, fw))
        iw = np.where(better, ix, np.where(shift_w, it, iw))
        w = w_new
        x = np.where(better, u, x)
        fx = np.where(better, fu, fx)
        ix = np.where(better, it, ix)
        hist["x"].append(np.where(active, u, np.nan))
        hist["f"].append(-fu)
        hist["lo"].append(np.where(active, a, np.nan))
        hist["hi"].append(np.where(active, b, np.nan))
        hist["par"].append(active & try_parabola & parabolic)
    else:
        xm = 0.5 * (a + b)
        tol2 = 2.0 * (tol + rel * np.abs(x))
        active &= ~(np.abs(x - xm) <= tol2 - 0.5 * (b - a))
    stack = lambda key, dt=float: (  # noqa: E731
        np.array(hist[key], dtype=dt) if hist[key] else np.empty((0, L), dtype=dt)
    )
    return BrentLanes(
        x=x,
        fx=-fx,
        converged=~active,
        n_iter=n_iter,
        history_x=stack("x"),
        history_f=stack("f"),
        history_low=stack("lo"),
        history_high=stack("hi"),
        history_parabolic=stack("par", bool),
        history_ix=stack("ix", int),
        history_iw=stack("iw", int),
        history_iv=stack("iv", int),
        history_vertex=stack("vertex"),
        history_golden=stack("golden"),
        history_reason=stack("reason", int),
    )


def grid_peaks(values: np.ndarray, *, margin: float = np.inf, limit: int | None = None):
    """Local maxima of every column (lane) of ``values`` (grid points x lanes).

    Parameters
    ----------
    values : ndarray, shape (K, L)
        A profile on a grid, one column per lane.
    margin : float
        Local maxima more than this below their lane's best grid value are
        left out (the best is always kept).
    limit : int, optional
        Keep only the highest ``limit`` local maxima of each lane.

    Returns
    -------
    lane, k : ndarray of int
        One pair per local maximum, sorted by lane and then by grid index.

    Notes
    -----
    A point is a local maximum when it is finite, above its left neighbour
    and not below its right one, so a plateau counts once, at its left end;
    the end points compare with their one neighbour. A lane with finite
    values and no such point still gets its best one.
    """
    V = values
    pad = np.full((1, V.shape[1]), -np.inf)
    left = np.vstack([pad, V[:-1]])
    right = np.vstack([V[1:], pad])
    finite = np.isfinite(V)
    with np.errstate(invalid="ignore"):
        best = np.max(np.where(finite, V, -np.inf), axis=0)
        peak = finite & (V > left) & (V >= right) & (V >= best - margin)
    none = ~peak.any(axis=0) & finite.any(axis=0)
    if np.any(none):
        peak[np.argmax(np.where(finite, V, -np.inf)[:, none], axis=0), np.flatnonzero(none)] = True
    lane, k = np.nonzero(peak.T)
    if limit is not None and lane.size:
        order = np.lexsort((-V[k, lane], lane))
        rank = np.empty(lane.size, dtype=int)
        rank[order] = np.arange(lane.size) - np.searchsorted(lane[order], lane[order])
        keep = rank < limit
        lane, k = lane[keep], k[keep]
    return lane, k


@dataclass(frozen=True)
class BracketSearch:
    """Brent's method in the grid bracket ``[g_{k-1}, g_{k+1}]`` of local maxima: one lane per bracket.

    Attributes
    ----------
    lane, k : ndarray of int
        The column of the grid values and the grid index of each bracket.
    low, high, x0, f0 : ndarray
        Each bracket and Brent's starting point in it (for an end point of
        the grid, the golden-section point of the end interval).
    at_end : ndarray of bool
        Brackets at an end of the grid.
    brent : BrentLanes
        The searches themselves.
    x, fx : ndarray
        The better of each search's optimum and its grid point.
    """

    lane: np.ndarray
    k: np.ndarray
    low: np.ndarray
    high: np.ndarray
    x0: np.ndarray
    f0: np.ndarray
    at_end: np.ndarray
    brent: BrentLanes
    x: np.ndarray
    fx: np.ndarray


def search_brackets(
    func: Callable[[np.ndarray, np.ndarray], np.ndarray],
    grid: np.ndarray,
    values: np.ndarray,
    lane: np.ndarray,
    k: np.ndarray,
    *,
    tol: float = DEFAULT_TOL,
    maxiter: int = 100,
) -> BracketSearch:
    """Brent's method in the bracket of every given grid point, all brackets at once.

    Parameters
    ----------
    func : callable
        ``func(x, searches)``: the objective of bracket ``searches[i]`` at ``x[i]``.
    grid : ndarray, shape (K,)
        Increasing grid.
    values : ndarray, shape (K, L)
        The objective on the grid, one column per lane.
    lane, k : ndarray of int
        The brackets: lane ``lane[i]`` around grid point ``k[i]`` (usually
        from :func:`grid_peaks`).
    tol : float
        Absolute tolerance on x.
    maxiter : int
        Brent iterations per bracket.

    Returns
    -------
    BracketSearch

    Notes
    -----
    An interior grid point starts Brent's method with its two neighbours
    (a parabolic first step); an end point cannot (the start must be
    strictly inside), so its search starts at the golden-section point of
    the end interval, evaluated first. A grid point is kept when its search
    finds nothing better: a boundary is a real answer.
    """
    K = grid.size
    lo_idx = np.maximum(k - 1, 0)
    hi_idx = np.minimum(k + 1, K - 1)
    low, high = grid[lo_idx], grid[hi_idx]
    x0 = grid[k].copy()
    grid_f = values[k, lane]
    f0 = grid_f.copy()
    at_end = (k == 0) | (k == K - 1)
    x0[at_end] = np.where(k[at_end] == 0, low[at_end] + GOLDEN * (high[at_end] - low[at_end]),
                          high[at_end] - GOLDEN * (high[at_end] - low[at_end]))
    f0[at_end] = np.nan
    if np.any(at_end):
        ends = np.flatnonzero(at_end)
        f0[ends] = func(x0[ends], ends)
    neighbours = (
        np.where(at_end, np.nan, low),
        np.where(at_end, np.nan, values[lo_idx, lane]),
        np.where(at_end, np.nan, high),
        np.where(at_end, np.nan, values[hi_idx, lane]),
    )
    res = brent_maximize(func, low, high, x0, f0, tol=tol, maxiter=maxiter, neighbours=neighbours)
    use_grid = grid_f >= res.fx
    return BracketSearch(
        lane=lane, k=k, low=low, high=high, x0=x0, f0=f0, at_end=at_end, brent=res,
        x=np.where(use_grid, grid[k], res.x), fx=np.where(use_grid, grid_f, res.fx),
    )


@dataclass(frozen=True, eq=False)
class ProfileMaxima(Sequence):
    """The maxima of many phenotypes' profiles, as arrays (one entry per phenotype).

    A sequence of :class:`OptimizeResult` (``maxima[j]`` is phenotype j's,
    built when asked; the traces of all phenotypes are assembled on first
    use), so that a caller that needs only the numbers (the fit's table)
    builds no object per phenotype.

    Attributes
    ----------
    grid_h2 : ndarray, shape (K,)
    grid_loglik : ndarray, shape (K, m)
        The profile on the grid, one column per phenotype.
    h2, loglik : ndarray, shape (m,)
    boundary, converged : ndarray of bool, shape (m,)
        As in :class:`OptimizeResult`.
    n_evals, n_searches : ndarray of int, shape (m,)
    search : BracketSearch
        The Brent searches (lanes sorted by phenotype), for the traces.
    """

    grid_h2: np.ndarray
    grid_loglik: np.ndarray
    h2: np.ndarray
    loglik: np.ndarray
    boundary: np.ndarray
    converged: np.ndarray
    n_evals: np.ndarray
    n_searches: np.ndarray
    search: BracketSearch

    def __len__(self) -> int:
        return int(self.h2.size)

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        j = range(len(self))[j]  # negative indices; IndexError out of range
        return OptimizeResult(
            h2=float(self.h2[j]),
            loglik=float(self.loglik[j]),
            boundary=bool(self.boundary[j]),
            converged=bool(self.converged[j]),
            message=self.message(j),
            n_evals=int(self.n_evals[j]),
            n_searches=int(self.n_searches[j]),
            trace=self.traces[j],
            grid_h2=self.grid_h2,
            grid_loglik=self.grid_loglik[:, j].copy(),
        )

    def message(self, j: int) -> str:
        """Phenotype j's :attr:`OptimizeResult.message`."""
        if not self.converged[j]:
            return "a Brent search did not reach the tolerance within the iteration limit"
        if self.boundary[j]:
            return f"the maximum is on the boundary h2 = {self.h2[j]:g}"
        return "converged"

    @cached_property
    def traces(self) -> list[OptimizerTrace]:
        """Every phenotype's :class:`OptimizerTrace` (:func:`lmmcore.search_trace.search_traces`)."""
        s = self.search
        return search_traces(self.grid_h2, self.grid_loglik, s.lane, s.low, s.high, s.x0, s.f0, s.brent)


def best_by_lane(lane: np.ndarray, x: np.ndarray, fx: np.ndarray, n_lanes: int):
    """The best ``(x, fx)`` of every lane over its searches (NaN and -inf for a lane without one).

    Ties go to the search listed last.
    """
    best_x = np.full(n_lanes, np.nan)
    best_f = np.full(n_lanes, -np.inf)
    order = np.argsort(fx, kind="stable")  # ascending: the last write wins
    best_x[lane[order]] = x[order]
    best_f[lane[order]] = fx[order]
    return best_x, best_f


def profile_maxima(
    rot: RotatedData,
    method: str = "reml",
    *,
    tol: float = DEFAULT_TOL,
    grid: int | np.ndarray = DEFAULT_GRID,
    maxiter: int = 100,
    profiles: "TraitProfiles | None" = None,
) -> ProfileMaxima:
    """Maximise the profile log-likelihood of every phenotype over h2 in [0, 1], answers as arrays.

    Parameters
    ----------
    rot : RotatedData
        Rotated phenotypes (n x m) and covariates.
    method : {"reml", "ml"}
    tol : float
        Absolute tolerance on h2 of each Brent search.
    grid : int or array_like
        Number of equally spaced grid points, or the grid itself (it must
        start at 0 and end at 1).
    maxiter : int
        Brent iterations per bracket.
    profiles : TraitProfiles, optional
        The sufficient statistics of ``rot``'s phenotypes
        (:func:`lmmcore.profile_stats.trait_profiles`): the grid is then
        evaluated from them by matrix products, and every Brent step from
        a power series of its bracket (:func:`lmmcore.profile_stats.local_series`;
        the same profile to rounding, far cheaper for many phenotypes).

    Returns
    -------
    ProfileMaxima
        The answers of all phenotype columns of ``rot.y`` as arrays; as a
        sequence, one :class:`OptimizeResult` per phenotype.

    Notes
    -----
    Cost: one (k x m) profile evaluation for the grid, then one batched
    evaluation of all brackets per Brent iteration (about 10-30). A boundary
    is preferred when its value is at least the best interior value: a Brent
    search that creeps to within ``tol`` of h2 = 0 is reported as h2 = 0.
    """
    g = default_grid(grid) if np.isscalar(grid) else np.asarray(grid, dtype=float)
    if g[0] != 0.0 or g[-1] != 1.0 or np.any(np.diff(g) <= 0):
        raise ValueError("the grid must increase from 0 to 1")
    m = rot.n_phenotypes
    grid_ll = profile_loglik(rot, g, method) if profiles is None else profiles.grid(g)  # (k, m)

    pheno, kk = grid_peaks(grid_ll, limit=MAX_BRACKETS)
    order = np.lexsort((-grid_ll[kk, pheno], pheno))  # per phenotype, the highest bracket first
    pheno, kk = pheno[order], kk[order]

    if profiles is not None:
        from .profile_stats import local_series

        # each bracket's profile as a power series around its grid point
        radius = np.maximum(g[kk] - g[np.maximum(kk - 1, 0)], g[np.minimum(kk + 1, g.size - 1)] - g[kk])
        series = local_series(profiles, g[kk], pheno, radius)

    def func(h, lanes):
        if profiles is not None:
            return series.values(h, lanes)
        return profile_loglik_paired(rot, h, pheno[lanes], method)

    search = search_brackets(func, g, grid_ll, pheno, kk, tol=tol, maxiter=maxiter)
    lanes, at_end = search.brent, search.at_end

    # choose, per phenotype, the best of: Brent optima, the boundaries
    best_h = np.where(grid_ll[0] >= grid_ll[-1], 0.0, 1.0)
    best_f = np.maximum(grid_ll[0], grid_ll[-1])
    interior_h, interior_f = best_by_lane(pheno, lanes.x, lanes.fx, m)
    # a search that crept to within a few tol of a boundary and is no better
    # than the boundary itself (to rounding) reports the boundary
    near_edge = (interior_h <= 10 * tol) | (interior_h >= 1 - 10 * tol)
    slack = np.where(near_edge, 1e-9 * (1.0 + np.abs(best_f)), 0.0)
    use_interior = interior_f > best_f + slack
    best_h = np.where(use_interior, interior_h, best_h)
    best_f = np.where(use_interior, interior_f, best_f)

    n_iter = np.bincount(pheno, weights=lanes.n_iter, minlength=m) + np.bincount(pheno, weights=at_end, minlength=m)
    return ProfileMaxima(
        grid_h2=g,
        grid_loglik=grid_ll,
        h2=best_h,
        loglik=best_f,
        boundary=(best_h == 0.0) | (best_h == 1.0),
        converged=np.bincount(pheno[~lanes.converged], minlength=m) == 0,
        n_evals=g.size + n_iter.astype(np.int64),
        n_searches=np.bincount(pheno, minlength=m),
        search=search,
    )


def maximize_profile(
    rot: RotatedData,
    method: str = "reml",
    *,
    tol: float = DEFAULT_TOL,
    grid: int | np.ndarray = DEFAULT_GRID,
    maxiter: int = 100,
    profiles: "TraitProfiles | None" = None,
) -> list[OptimizeResult]:
    """Maximise the profile log-likelihood of every phenotype over h2 in [0, 1].

    :func:`profile_maxima` (see there for the parameters and the method),
    one :class:`OptimizeResult` per phenotype column of ``rot.y``.
    """
    return list(profile_maxima(rot, method, tol=tol, grid=grid, maxiter=maxiter, profiles=profiles))
