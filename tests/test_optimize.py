"""The optimiser finds the global maximum: against brute force, scipy's Brent, and constructed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from conftest import boundary_case, random_kinship, simulate_y
from dense import brute_force_h2, loglik
from lmmcore import brent_maximize, decompose_kinship, fit_lmm, maximize_profile, profile_loglik, rotate


@pytest.mark.parametrize("method", ["ml", "reml"])
@pytest.mark.parametrize("true_h2", [0.2, 0.5, 0.85])
def test_h2_equals_brute_force_grid(method, true_h2):
    n = 60
    K = random_kinship(n, 300, seed=11)
    X = np.column_stack([np.ones(n), np.random.default_rng(12).normal(size=n)])
    y = simulate_y(K, X, np.array([2.0, -1.0]), true_h2, 1.5, seed=int(true_h2 * 100))
    fit = fit_lmm(K, y, X, method=method)
    h_brute, L_brute = brute_force_h2(K, y, X, method)
    assert abs(fit.h2 - h_brute) < 1e-6
    assert fit.loglik >= L_brute - 1e-9
    assert fit.converged


@pytest.mark.parametrize("method", ["ml", "reml"])
@pytest.mark.parametrize("which, edge", [("zero", 0.0), ("one", 1.0)])
def test_boundary_optima_are_found_exactly(method, which, edge):
    K, y, X = boundary_case(which)
    h_brute, L_brute = brute_force_h2(K, y, X, method)
    assert h_brute == edge  # the construction really puts the optimum on the edge
    fit = fit_lmm(K, y, X, method=method)
    assert fit.h2 == edge
    assert fit.boundary
    assert fit.loglik == pytest.approx(loglik(K, y, X, edge, method), abs=1e-9)
    assert np.isnan(fit.h2_se) and "boundary" in fit.h2_se_note


def _two_local_maxima():
    """A profile with two local maxima where the left one is NOT the global one.

    Built in the eigenbasis (three clusters of eigenvalues with inconsistent
    variances, found by a search over seeds) and mapped back to K, y, X with a
    random orthogonal matrix, so the dense reference sees an ordinary problem.
    """
    rng = np.random.default_rng(2627)
    sizes = rng.integers(5, 30, 3)
    n = int(sizes.sum())
    d = np.repeat(np.sort(10 ** rng.uniform(-3, 2.5, 3)), sizes)
    sd = np.repeat(10 ** rng.uniform(-1.5, 1.5, 3), sizes)
    y_star = rng.normal(size=n) * sd
    X_star = np.ones((n, 1)) / np.sqrt(n)
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(n, n)))
    return Q @ np.diag(d) @ Q.T, Q @ y_star, Q @ X_star


def test_two_local_maxima_yield_the_global_one():
    K, y, X = _two_local_maxima()
    hs = np.linspace(0, 1, 401)
    dense = np.array([loglik(K, y, X, h, "ml") for h in hs])
    interior = np.flatnonzero((dense[1:-1] > dense[:-2]) & (dense[1:-1] > dense[2:])) + 1
    assert len(interior) == 2  # the construction is bimodal
    left, right = hs[interior]
    assert dense[interior[1]] > dense[interior[0]]  # and the right mode is higher
    fit = fit_lmm(K, y, X, method="ml")
    h_brute, L_brute = brute_force_h2(K, y, X, "ml")
    assert abs(fit.h2 - h_brute) < 1e-6
    assert fit.h2 > 0.5 > left
    # both modes were refined by Brent
    assert len(set(fit.trace.search[fit.trace.search >= 0])) >= 2
    # a single local search started on the left would have stopped at the wrong mode
    local = minimize_scalar(lambda h: -loglik(K, y, X, h, "ml"), bounds=(0, 0.4), method="bounded")
    assert abs(local.x - left) < 0.01 and -local.fun < fit.loglik - 1.0


def test_vectorised_brent_matches_scipy_on_many_functions():
    rng = np.random.default_rng(4)
    centres = rng.uniform(0.1, 0.9, 25)
    widths = rng.uniform(0.5, 3.0, 25)

    def f(x, lanes):
        return -np.cosh((x - centres[lanes]) * widths[lanes]) + 0.1 * np.sin(3 * x)

    res = brent_maximize(f, np.zeros(25), np.ones(25), np.full(25, 0.5),
                         f(np.full(25, 0.5), np.arange(25)), tol=1e-9)
    assert res.converged.all()
    for i in range(25):
        ref = minimize_scalar(lambda x: -f(np.array([x]), np.array([i]))[0], bounds=(0, 1),
                              method="bounded", options={"xatol": 1e-11})
        assert res.x[i] == pytest.approx(ref.x, abs=1e-7)


def test_trace_records_every_evaluation_in_order(small_data):
    K, y, X = small_data
    rot = rotate(decompose_kinship(K), y, X)
    opt = maximize_profile(rot, "reml")[0]
    tr = opt.trace
    # n_evals counts new evaluations: a search that starts at a grid point re-lists it
    relisted = sum(1 for i, s in enumerate(tr.step) if s == "start" and tr.h2[i] in opt.grid_h2)
    assert len(tr) == opt.n_evals + relisted
    # the grid comes first, then each search starts with a 'start' point
    assert tr.step[0] == "grid" and tr.step[opt.grid_h2.size] == "start"
    brent = np.flatnonzero(tr.search >= 0)
    assert set(tr.step[i] for i in brent[1:]) <= {"parabolic", "golden", "start"}
    # every recorded value is the profile at that h2 (recomputed independently)
    recomputed = [loglik(K, y, X, h, "reml") for h in tr.h2[brent]]
    np.testing.assert_allclose(tr.loglik[brent], recomputed, atol=1e-8)
    # brackets shrink within a search and always hold the current point
    lo, hi = tr.bracket_low[brent], tr.bracket_high[brent]
    assert np.all(np.diff(hi - lo) <= 1e-15)
    assert np.all((tr.h2[brent] >= lo - 1e-12) & (tr.h2[brent] <= hi + 1e-12))
    assert "parabolic" in tr.step  # Brent really interpolates on a smooth interior optimum


def test_default_tolerance_pins_h2_to_1e_6(small_data):
    K, y, X = small_data
    rot = rotate(decompose_kinship(K), y, X)
    opt = maximize_profile(rot, "ml")[0]
    ref = minimize_scalar(lambda h: -profile_loglik(rot, [h], "ml")[0, 0], bounds=(0, 1),
                          method="bounded", options={"xatol": 1e-12})
    assert abs(opt.h2 - ref.x) < 1e-6


def test_centred_kinship_with_intercept_has_no_fake_ml_optimum_at_one():
    """Regression: K 1 = 0 and an intercept made the full ML likelihood grow without bound as h2 -> 1.

    ML now uses the data projected off the direction 1 (which carries no information once the
    intercept is free); checked against the dense density of those n - 1 projected values.
    """
    from scipy import stats

    n = 60
    K = random_kinship(n, 300, seed=3)
    P = np.eye(n) - 1.0 / n
    Kc = P @ K @ P
    X = np.ones((n, 1))
    y = simulate_y(Kc + 1e-6 * np.eye(n), X, np.array([1.0]), 0.5, 1.0, seed=4)
    ml = fit_lmm(Kc, y, X, method="ml")
    # independent: A spans the complement of 1; the projected model has no fixed effects
    A = np.linalg.qr(np.column_stack([np.ones(n), np.eye(n)[:, : n - 1]]))[0][:, 1:]
    yp, Kp = A.T @ y, A.T @ Kc @ A

    def dense(h):
        V = h * Kp + (1 - h) * np.eye(n - 1)
        s2 = yp @ np.linalg.solve(V, yp) / (n - 1)
        return stats.multivariate_normal(np.zeros(n - 1), s2 * V).logpdf(yp)

    hs = np.linspace(0, 0.999, 1000)
    vals = np.array([dense(h) for h in hs])
    k = int(np.argmax(vals))
    fine = np.linspace(max(hs[k] - 0.001, 0), hs[k] + 0.001, 2001)
    h_brute = fine[int(np.argmax([dense(h) for h in fine]))]
    assert ml.converged and ml.h2 < 0.999
    assert abs(ml.h2 - h_brute) < 2e-6
    assert ml.loglik == pytest.approx(dense(ml.h2), abs=1e-8)
    reml = fit_lmm(Kc, y, X, method="reml")
    h_brute_reml, _ = brute_force_h2(Kc, y, X, "reml", hi=1 - 1e-9)
    assert reml.converged and abs(reml.h2 - h_brute_reml) < 1e-6


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_optimum_exactly_at_one_with_a_centred_kinship(method):
    """Singular K whose null space the intercept fits: L(1) is a finite limit and can be the answer."""
    n = 50
    K = random_kinship(n, 300, seed=21)
    P = np.eye(n) - 1.0 / n
    Kc = P @ K @ P
    d, U = np.linalg.eigh(Kc)
    y = U @ (np.clip(d, 0, None) * np.random.default_rng(22).normal(size=n)) + 3.0
    X = np.ones((n, 1))
    fit = fit_lmm(Kc, y, X, method=method)
    assert fit.h2 == 1.0 and fit.boundary and fit.converged
    # the dense likelihood approaches the reported value from below as h2 -> 1
    if method == "reml":
        near = [loglik(Kc, y, X, 1 - e, "reml") for e in (1e-4, 1e-6)]
        assert near[0] < near[1] <= fit.loglik + 1e-9
        assert fit.loglik - near[1] < 1e-4
    assert np.all(np.isfinite(fit.beta)) and fit.beta[0] == pytest.approx(y.mean(), rel=1e-6)


def test_grid_peaks_are_every_local_maximum_of_each_lane():
    """One plateau rule for every search (the fit, the null fit, the exact scan's fallback)."""
    from lmmcore.optimize import grid_peaks

    values = np.array([
        [0.0, 5.0, 1.0, np.nan],
        [1.0, 4.0, 1.0, np.nan],
        [0.5, 3.0, 1.0, np.nan],
        [2.0, 2.0, 0.0, np.nan],
        [1.0, 6.0, 0.0, np.nan],
    ])
    lane, k = grid_peaks(values)
    # lane 0: interior peaks at 1 and 3; lane 1: both ends; lane 2: a plateau counts once (its left
    # end), and the flat stretch below it at the end is no maximum; lane 3: nothing finite, no candidate
    assert list(zip(lane.tolist(), k.tolist())) == [(0, 1), (0, 3), (1, 0), (1, 4), (2, 0)]
    # a margin leaves out maxima far below their lane's best (never the best itself)
    lane, k = grid_peaks(values, margin=0.75)
    assert list(zip(lane.tolist(), k.tolist())) == [(0, 3), (1, 4), (2, 0)]
    # a limit keeps the highest of each lane
    lane, k = grid_peaks(values, limit=1)
    assert list(zip(lane.tolist(), k.tolist())) == [(0, 3), (1, 4), (2, 0)]
