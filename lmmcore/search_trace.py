"""The story of the optimiser's searches: every evaluation, in order, for each phenotype.

:class:`OptimizerTrace` is what the dashboard replays (Brent's ``x, w, v``,
the parabola's vertex, the golden-section point and the reason of every
step); :func:`search_traces` assembles the traces of all phenotypes of a
:func:`lmmcore.optimize.maximize_profile` call at once, from the batched
history of its Brent lanes (array operations over all lanes, then one slice
per phenotype).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OptimizerTrace", "search_traces", "REASONS", "STEP_GRID", "STEP_START", "STEP_PARABOLIC",
           "STEP_GOLDEN"]

STEP_GRID, STEP_START, STEP_PARABOLIC, STEP_GOLDEN = "grid", "start", "parabolic", "golden"

#: Why Brent took each step (``OptimizerTrace.reason``; "" for grid and start rows).
#: ``parabola``: the vertex of the parabola through x, w, v; ``min_step``: a parabolic step
#: lengthened to the minimum step ``tol1`` (the vertex was too close to x or to an end);
#: golden-section steps: ``outside`` (the vertex fell outside the bracket), ``too_far`` (the
#: parabola would move more than half the step before last, so it would not shrink the
#: bracket enough), ``too_small`` (the steps before were too small to fit a parabola),
#: ``flat`` (x, w, v do not define a parabola: two coincide or they are on a line).
REASONS = ("parabola", "min_step", "outside", "too_far", "too_small", "flat")


@dataclass(frozen=True)
class OptimizerTrace:
    """Every evaluation of the profile log-likelihood for one phenotype, in order.

    First the grid (``step == "grid"``, bracket NaN), then each Brent search
    in turn (``search`` numbers them from 0): its starting point
    (``"start"``) and each ``"parabolic"`` or ``"golden"`` step, with the
    bracket ``[bracket_low, bracket_high]`` that holds the minimum after that
    step.

    For each Brent step (not the grid or a start) the trace also says how it was
    chosen: ``x_index``, ``w_index``, ``v_index`` are the rows of this trace where
    the three points Brent interpolated (best, second best, third) were evaluated
    (-1 elsewhere), ``vertex`` is the h2 of the vertex of the parabola through
    them (NaN when they do not define one), ``golden_split`` the golden-section
    point ``x + 0.382 (e - x)`` into the larger part ``[x, e]`` of the bracket
    before the step (NaN for a parabolic step), and ``reason`` one of
    :data:`REASONS`. Indices rather than values, so that a shift of the
    log-likelihood's constant (``replace(trace, loglik=...)``) carries over.
    """

    h2: np.ndarray
    loglik: np.ndarray
    step: tuple[str, ...]
    search: np.ndarray
    bracket_low: np.ndarray
    bracket_high: np.ndarray
    x_index: np.ndarray | None = None
    w_index: np.ndarray | None = None
    v_index: np.ndarray | None = None
    vertex: np.ndarray | None = None
    golden_split: np.ndarray | None = None
    reason: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.h2.shape[0])

    def to_records(self) -> list[dict]:
        """One dict per evaluation (for tables and CSV)."""
        records = [
            {
                "h2": float(h),
                "loglik": float(ll),
                "step": s,
                "search": int(k),
                "bracket_low": float(lo),
                "bracket_high": float(hi),
            }
            for h, ll, s, k, lo, hi in zip(
                self.h2, self.loglik, self.step, self.search, self.bracket_low, self.bracket_high
            )
        ]
        if self.reason is not None:
            for r, vertex, split, why in zip(records, self.vertex, self.golden_split, self.reason):
                r.update(vertex=float(vertex), golden_split=float(split), reason=why)
        return records


def search_traces(g: np.ndarray, grid_values: np.ndarray, pheno: np.ndarray, low: np.ndarray,
                  high: np.ndarray, x0: np.ndarray, f0: np.ndarray, lanes) -> list[OptimizerTrace]:
    """The trace of every phenotype: its grid, then each of its Brent searches.

    Parameters
    ----------
    g : ndarray, shape (K,)
        The grid.
    grid_values : ndarray, shape (K, m)
        The profile on the grid, one column per phenotype.
    pheno : ndarray of int, shape (L,)
        The phenotype of each Brent lane, sorted (a phenotype's lanes are
        consecutive, in the order of its searches).
    low, high, x0, f0 : ndarray, shape (L,)
        Each lane's starting bracket, starting point and its value.
    lanes : BrentLanes
        The searches (:func:`lmmcore.optimize.brent_maximize`).

    Returns
    -------
    list of OptimizerTrace
        One per column of ``grid_values``.

    Notes
    -----
    Lane l's rows are its start and then its iterations ``0 .. n_l - 1``
    (a lane never restarts, so its history has no gaps). Row numbers
    inside a phenotype's trace: ``K`` grid rows, then for each of its lanes
    in turn one start row and ``n_l`` step rows; iteration k of a lane whose
    start is row r is row ``r + 1 + k``, and Brent's codes -1, -2, -3 (the
    start, the first and second grid neighbour) point at the start row and
    at the grid rows of the bracket's ends.
    """
    K, m = grid_values.shape
    L = pheno.size
    hist_x = lanes.history_x.T  # (L, iterations)
    n_it = hist_x.shape[1]
    ok = np.concatenate([np.ones((L, 1), dtype=bool), ~np.isnan(hist_x)], axis=1)  # start + steps
    size = ok.sum(axis=1)  # 1 + n_l
    starts = np.searchsorted(pheno, np.arange(m + 1))
    before = np.concatenate([[0], np.cumsum(size)])  # flat offset of each lane
    row0 = K + before[:-1] - before[starts[pheno]]  # each lane's start row in its phenotype's trace

    def flat(start_col, hist, dtype=float):
        full = np.concatenate([np.asarray(start_col, dtype=dtype)[:, None], np.asarray(hist.T, dtype=dtype)],
                              axis=1)
        return full[ok]

    col_h = flat(x0, lanes.history_x)
    col_f = flat(f0, lanes.history_f)
    col_lo = flat(low, lanes.history_low)
    col_hi = flat(high, lanes.history_high)
    search = (np.arange(L) - starts[pheno])[:, None] + np.zeros((1, 1 + n_it), dtype=int)
    col_search = search[ok]
    kind = np.concatenate([np.full((L, 1), 0), np.where(lanes.history_parabolic.T, 1, 2)], axis=1)[ok]
    col_step = np.array([STEP_START, STEP_PARABOLIC, STEP_GOLDEN], dtype=object)[kind]
    low_row = np.searchsorted(g, low)
    high_row = np.searchsorted(g, high)
    rows = {}
    for key, hist in (("x", lanes.history_ix), ("w", lanes.history_iw), ("v", lanes.history_iv)):
        it = hist.T
        r = np.where(it >= 0, row0[:, None] + 1 + it, -1)
        r = np.where(it == -1, row0[:, None], r)
        r = np.where(it == -2, low_row[:, None], r)
        r = np.where(it == -3, high_row[:, None], r)
        rows[key] = flat(np.full(L, -1), r.T, int)
    col_vertex = flat(np.full(L, np.nan), lanes.history_vertex)
    col_golden = flat(np.full(L, np.nan), lanes.history_golden)
    reason_code = flat(np.full(L, -1), lanes.history_reason, int)
    col_reason = np.array(REASONS + ("",), dtype=object)[reason_code]  # -1 is ""

    grid_step = (STEP_GRID,) * K
    grid_none = np.full(K, -1)
    grid_nan = np.full(K, np.nan)
    grid_reason = ("",) * K
    out = []
    for j in range(m):
        a, b = before[starts[j]], before[starts[j + 1]]
        out.append(OptimizerTrace(
            h2=np.concatenate([g, col_h[a:b]]),
            loglik=np.concatenate([grid_values[:, j], col_f[a:b]]),
            step=grid_step + tuple(col_step[a:b]),
            search=np.concatenate([grid_none, col_search[a:b]]),
            bracket_low=np.concatenate([grid_nan, col_lo[a:b]]),
            bracket_high=np.concatenate([grid_nan, col_hi[a:b]]),
            x_index=np.concatenate([grid_none, rows["x"][a:b]]),
            w_index=np.concatenate([grid_none, rows["w"][a:b]]),
            v_index=np.concatenate([grid_none, rows["v"][a:b]]),
            vertex=np.concatenate([grid_nan, col_vertex[a:b]]),
            golden_split=np.concatenate([grid_nan, col_golden[a:b]]),
            reason=grid_reason + tuple(col_reason[a:b]),
        ))
    return out
