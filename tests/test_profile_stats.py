"""The fit of many traits from sufficient statistics and local power series (lmmcore.profile_stats).

Three independent references:

* the per-trait path of :mod:`lmmcore.likelihood` (weighted least squares with
  explicit residuals; polish by bisection of the slope; interval by plain
  bisection), which the fit used before;
* the dense density of N(Xb, s K + t I) on small n (tests/dense.py), maximised
  on fine grids, with the interval's ends by a dense root search;
* for the traces, the per-phenotype assembly the optimiser used before
  (re-implemented below as a loop).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize as sopt

from conftest import boundary_case, random_kinship, simulate_y
from dense import brute_force_h2, loglik
from lmmcore import decompose_kinship, fit_rotated, rotate
from lmmcore.estimate import estimate_rotated, standardise
from lmmcore.inference import CI_DROP, h2_inference
from lmmcore.likelihood import polish_h2, profile_loglik, profile_loglik_paired, profile_slopes
from lmmcore.optimize import REASONS, STEP_GOLDEN, STEP_GRID, STEP_PARABOLIC, STEP_START, maximize_profile
import lmmcore.optimize as optimize_module
from lmmcore.profile_stats import local_series, series_near, trait_profiles


def _traits(n: int, seed: int, singular: bool = False, n_random: int = 12):
    """Rotated, standardised traits of all kinds: h2 from 0 to 1, both boundaries, heavy tails."""
    K = random_kinship(n, 30 if singular else 400, seed=seed)
    if not singular:
        K = K + 0.05 * np.eye(n)
    rng = np.random.default_rng(seed + 1)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    eig = decompose_kinship(K, check=False)
    d, U = eig.values, eig.vectors
    cols = [simulate_y(K, X, np.array([5.0, 1.0]), h, 2.0, seed=seed + 10 + j)
            for j, h in enumerate(np.linspace(0.0, 0.95, n_random))]
    z = rng.normal(size=n)
    cols.append(U @ (z / np.sqrt(1.0 + np.clip(d, 0, None))) + 3.0)  # best at h2 = 0
    cols.append(U @ (np.clip(d, 0, None) * z) + 3.0)  # best at h2 = 1
    cols.append(rng.standard_t(2, size=n))  # heavy tails: rough profiles
    Y = np.column_stack(cols)
    return K, X, Y, rotate(eig, Y, X)


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("singular", [False, True])
def test_statistics_give_the_profile_of_likelihood_py(method, singular):
    K, X, Y, rot = _traits(40, seed=3, singular=singular)
    std = standardise(rot).rot
    prof = trait_profiles(std, method)
    grid = np.linspace(0.0, 1.0, 21)
    ref = profile_loglik(std, grid, method)
    got = prof.grid(grid)
    finite = np.isfinite(ref)
    assert np.array_equal(finite, np.isfinite(got))
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-12)
    rng = np.random.default_rng(4)
    T = Y.shape[1]
    cols = rng.integers(0, T, 200)
    h = rng.uniform(0.0, 0.999, 200)
    np.testing.assert_allclose(prof.values(h, cols), profile_loglik_paired(std, h, cols, method), rtol=1e-12)
    np.testing.assert_allclose(prof.slopes(h, cols), profile_slopes(std, h, cols, method), rtol=1e-8, atol=1e-8)


def test_statistics_keep_precision_without_an_intercept():
    """No constant column: the phenotype is only scaled, its mean stays large; the OLS residualisation keeps rss exact."""
    n = 30
    K = random_kinship(n, 300, seed=8) + 0.1 * np.eye(n)
    rng = np.random.default_rng(9)
    x = rng.uniform(1.0, 2.0, n)
    y = 1e4 * x + rng.normal(size=n)  # the covariate explains all but 1e-8 of y's square
    rot = rotate(decompose_kinship(K), y[:, None], x[:, None])
    std = standardise(rot).rot
    grid = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(trait_profiles(std, "reml").grid(grid), profile_loglik(std, grid, "reml"), rtol=1e-11)


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_local_series_equal_direct_evaluation(method):
    K, X, Y, rot = _traits(60, seed=5, singular=True)
    prof = trait_profiles(standardise(rot).rot, method)
    grid = np.linspace(0.0, 1.0, 51)
    rng = np.random.default_rng(6)
    L = 400
    k = rng.integers(0, 51, L)
    cols = rng.integers(0, prof.n_traits, L)
    series = local_series(prof, grid[k], cols, 0.02)
    assert np.mean(series.radius > 0) > 0.8  # most centres carry a series; h0 = 1 never does
    assert np.all(series.radius[k == 50] == 0)
    h = np.clip(grid[k] + rng.uniform(-0.02, 0.02, L), 0.0, 0.9999)
    lanes = np.arange(L)
    np.testing.assert_allclose(series.values(h, lanes), prof.values(h, cols), rtol=1e-13)
    np.testing.assert_allclose(series.slopes(h, lanes), prof.slopes(h, cols), rtol=1e-9, atol=1e-9)
    # outside its radius a lane is evaluated directly, not extrapolated
    far = np.clip(grid[k] + 0.3, 0.0, 0.9999)
    np.testing.assert_allclose(series.values(far, lanes), prof.values(far, cols), rtol=1e-13)


def _per_trait_path(rot, method):
    """The previous path, one phenotype at a time: Brent on likelihood.py, bisection polish, bisection interval."""
    out = []
    for j in range(rot.n_phenotypes):
        one = rot.select([j])
        est = estimate_rotated(one, method)
        std, opt = est.standardised, est.optimum
        h = polish_h2(std.rot, opt.h2, method)
        L = profile_loglik_paired(std.rot, h, [0], method)
        inf = h2_inference(std.rot, method, h, L, opt.searches[0].grid_h2, opt.grid_loglik, opt.identifiable)
        out.append((h[0], (L + std.loglik_shift(method))[0], inf.ci_low[0], inf.ci_high[0], inf.h2_se[0]))
    return np.array(out)


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("singular", [False, True])
def test_vectorised_fit_equals_the_per_trait_path(method, singular):
    K, X, Y, rot = _traits(50, seed=11, singular=singular)
    fits = fit_rotated(rot, method)
    ref = _per_trait_path(rot, method)
    h = np.array([f.h2 for f in fits])
    assert np.any(h == 0.0) and np.any(h > 0.99)  # both boundaries are among the traits
    np.testing.assert_allclose(h, ref[:, 0], rtol=0, atol=1e-9)
    np.testing.assert_allclose([f.loglik for f in fits], ref[:, 1], rtol=1e-12)
    # the interval is the same bisection, to its tolerance
    np.testing.assert_allclose([f.h2_ci_low for f in fits], ref[:, 2], rtol=0, atol=1.1e-10)
    np.testing.assert_allclose([f.h2_ci_high for f in fits], ref[:, 3], rtol=0, atol=1.1e-10)
    np.testing.assert_allclose([f.h2_se for f in fits], ref[:, 4], rtol=1e-5)


def _dense_interval(K, y, X, h, Lmax, method):
    """Interval ends by a dense root search of L(h) = max - 1.92 (scipy's brentq on the dense density)."""
    thr = Lmax - CI_DROP
    f = lambda t: loglik(K, y, X, t, method) - thr  # noqa: E731
    top = 1.0 if np.linalg.matrix_rank(K) == len(y) else 1.0 - 1e-9
    low = 0.0 if f(0.0) >= 0 else sopt.brentq(f, 0.0, h, xtol=1e-13)
    high = top if f(top) >= 0 else sopt.brentq(f, h, top, xtol=1e-13)
    return low, high


@pytest.mark.parametrize("method", ["reml", pytest.param("ml", marks=pytest.mark.slow)])
def test_fit_against_the_dense_density(method):
    K, X, Y, rot = _traits(30, seed=17, n_random=3)
    fits = fit_rotated(rot, method)
    for j, fit in enumerate(fits):
        y = Y[:, j]
        h_dense, L_dense = brute_force_h2(K, y, X, method, points=401)
        assert fit.h2 == pytest.approx(h_dense, abs=2e-6)
        assert fit.loglik == pytest.approx(L_dense, abs=1e-8)
        assert fit.loglik >= L_dense - 1e-9  # the polished optimum is not below the dense one
        low, high = _dense_interval(K, y, X, fit.h2, fit.loglik, method)
        assert fit.h2_ci_low == pytest.approx(low, abs=1e-8)
        assert fit.h2_ci_high == pytest.approx(1.0 if high > 1 - 1e-8 else high, abs=1e-8)


def test_boundary_traits_against_the_dense_density():
    for which, expected in (("zero", 0.0), ("one", 1.0)):
        K, y, X = boundary_case(which)
        fit = fit_rotated(rotate(decompose_kinship(K), y[:, None], X), "reml")[0]
        h_dense, _ = brute_force_h2(K, y, X, "reml")
        assert fit.h2 == expected == pytest.approx(h_dense, abs=1e-9)
        assert fit.boundary


def test_every_bracket_is_searched_two_peaked_profiles():
    """Rough profiles of small samples with two or more local maxima: the best peak wins, as the dense grid says."""
    n = 14
    rng = np.random.default_rng(23)
    G = rng.normal(size=(n, 3))
    K = G @ G.T / 3 + np.diag(rng.uniform(0, 2, n))
    eig = decompose_kinship(K)
    Y = rng.standard_t(2, size=(n, 400))
    X = np.ones((n, 1))
    rot = rotate(eig, Y, X)
    fits = fit_rotated(rot, "reml")
    several = [j for j, f in enumerate(fits) if len(set(f.trace.search[f.trace.search >= 0])) >= 2]
    assert len(several) >= 5
    for j in several[:8]:
        h_dense, L_dense = brute_force_h2(K, Y[:, j], X, "reml", points=1001)
        assert fits[j].h2 == pytest.approx(h_dense, abs=2e-6)
        assert fits[j].loglik == pytest.approx(L_dense, abs=1e-8)


def _reference_trace(g, grid_values, mine, low, high, x0, f0, lanes):
    """One phenotype's trace as a plain loop over its searches (the assembly the optimiser used before)."""
    hs, fs, steps, search = [g], [grid_values], [STEP_GRID] * g.size, [np.full(g.size, -1)]
    lo, hi = [np.full(g.size, np.nan)], [np.full(g.size, np.nan)]
    none = np.full(g.size, -1)
    points = {"x": [none], "w": [none], "v": [none]}
    vertex, golden, reason = [np.full(g.size, np.nan)], [np.full(g.size, np.nan)], [""] * g.size
    row = g.size
    for s, lane in enumerate(mine):
        hx = lanes.history_x[:, lane]
        ok = ~np.isnan(hx)
        codes = {-1: row, -2: int(np.searchsorted(g, low[lane])), -3: int(np.searchsorted(g, high[lane]))}
        for key, hist in (("x", lanes.history_ix), ("w", lanes.history_iw), ("v", lanes.history_iv)):
            it = hist[ok, lane]
            rows = np.where(it >= 0, row + 1 + it, -1)
            for code, at in codes.items():
                rows = np.where(it == code, at, rows)
            points[key] += [np.array([-1]), rows]
        vertex += [np.array([np.nan]), lanes.history_vertex[ok, lane]]
        golden += [np.array([np.nan]), lanes.history_golden[ok, lane]]
        reason += [""] + [REASONS[k] for k in lanes.history_reason[ok, lane]]
        row += 1 + int(ok.sum())
        hs += [np.array([x0[lane]]), hx[ok]]
        fs += [np.array([f0[lane]]), lanes.history_f[ok, lane]]
        steps += [STEP_START] + [STEP_PARABOLIC if p else STEP_GOLDEN for p in lanes.history_parabolic[ok, lane]]
        search += [np.full(1 + ok.sum(), s)]
        lo += [np.array([low[lane]]), lanes.history_low[ok, lane]]
        hi += [np.array([high[lane]]), lanes.history_high[ok, lane]]
    return dict(h2=np.concatenate(hs), loglik=np.concatenate(fs), step=tuple(steps), search=np.concatenate(search),
                bracket_low=np.concatenate(lo), bracket_high=np.concatenate(hi),
                x_index=np.concatenate(points["x"]), w_index=np.concatenate(points["w"]),
                v_index=np.concatenate(points["v"]), vertex=np.concatenate(vertex),
                golden_split=np.concatenate(golden), reason=tuple(reason))


def test_traces_of_all_phenotypes_at_once_equal_the_per_phenotype_assembly(monkeypatch):
    n = 14
    rng = np.random.default_rng(29)
    G = rng.normal(size=(n, 3))
    K = G @ G.T / 3 + np.diag(rng.uniform(0, 2, n))
    rot = rotate(decompose_kinship(K), rng.standard_t(2, size=(n, 300)), np.ones((n, 1)))
    seen = {}
    original = optimize_module.search_traces

    def spy(*args):
        seen["args"] = args
        return original(*args)

    monkeypatch.setattr(optimize_module, "search_traces", spy)
    results = maximize_profile(rot, "reml", grid=21)
    g, grid_values, pheno, low, high, x0, f0, lanes = seen["args"]
    starts = np.searchsorted(pheno, np.arange(rot.n_phenotypes + 1))
    assert np.any(np.diff(starts) >= 2)  # some phenotypes have several searches
    for j, res in enumerate(results):
        ref = _reference_trace(g, grid_values[:, j], np.arange(starts[j], starts[j + 1]), low, high, x0, f0, lanes)
        for field, want in ref.items():
            got = getattr(res.trace, field)
            if isinstance(want, tuple):
                assert got == want, (j, field)
            else:
                np.testing.assert_array_equal(got, want, err_msg=f"phenotype {j}, {field}")


def test_series_near_covers_the_points_around_each_optimum():
    K, X, Y, rot = _traits(40, seed=31)
    prof = trait_profiles(standardise(rot).rot, "reml")
    grid = np.linspace(0.0, 1.0, 51)
    h = np.random.default_rng(32).uniform(0.0, 1.0, prof.n_traits)
    near = series_near(prof, h, np.arange(prof.n_traits), grid, 2e-4)
    pts = np.clip(np.concatenate([h - 1e-4, h, h + 1e-4]), 0.0, 0.9999)
    lanes = np.tile(np.arange(prof.n_traits), 3)
    np.testing.assert_allclose(near.values(pts, lanes), prof.values(pts, lanes), rtol=1e-13)
