"""Property-based tests (hypothesis) on random valid inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmmcore import fit_lmm, profile_loglik, rescale_h2, rotate, decompose_kinship

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw):
    n = draw(st.integers(8, 40))
    n_markers = draw(st.integers(3, 60))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    G = rng.binomial(2, rng.uniform(0.1, 0.9, n_markers), size=(n, n_markers)).astype(float)
    G -= G.mean(axis=0)
    K = G @ G.T / n_markers + draw(st.sampled_from([0.0, 0.05, 0.5])) * np.eye(n)
    h2 = draw(st.floats(0.0, 0.95))
    p = draw(st.integers(1, 3))
    X = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(p - 1)])
    d, U = np.linalg.eigh(K)
    y = X @ rng.normal(size=p) + U @ (np.sqrt(np.clip(h2 * d + 1 - h2, 0, None)) * rng.normal(size=n))
    method = draw(st.sampled_from(["ml", "reml"]))
    return K, y, X, method


def _identifiable(fit):
    """Skip the two flagged degenerate cases (tested on their own in test_extremes.py)."""
    return not np.isnan(fit.h2) and fit.converged


@SETTINGS
@given(problems())
def test_outputs_are_finite_and_h2_in_unit_interval(problem):
    K, y, X, method = problem
    fit = fit_lmm(K, y, X, method=method)
    if not _identifiable(fit):
        return
    assert 0.0 <= fit.h2 <= 1.0
    assert 0.0 <= fit.h2_ci_low <= fit.h2 <= fit.h2_ci_high <= 1.0
    values = [fit.loglik, fit.sigma2, fit.sigma2_g, fit.sigma2_e, fit.lrt_h2_zero, fit.p_h2_zero]
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(fit.beta)) and np.all(np.isfinite(fit.beta_se))
    assert np.isfinite(fit.h2_se) or fit.h2_se_note


@SETTINGS
@given(problems())
def test_reported_optimum_is_at_least_every_grid_point(problem):
    K, y, X, method = problem
    fit = fit_lmm(K, y, X, method=method)
    if not _identifiable(fit):
        return
    rot = rotate(decompose_kinship(K), y, X)
    grid = profile_loglik(rot, np.linspace(0, 1, 201), method)[:, 0]
    assert fit.loglik >= grid.max() - 1e-8 * (1 + abs(grid.max()))


@SETTINGS
@given(problems(), st.floats(1e-3, 1e3))
def test_scaling_y_and_permuting_individuals(problem, c):
    K, y, X, method = problem
    a = fit_lmm(K, y, X, method=method)
    if not _identifiable(a):
        return
    perm = np.random.default_rng(0).permutation(len(y))
    b = fit_lmm(K[np.ix_(perm, perm)], c * y[perm], X[perm], method=method)
    assert abs(b.h2 - a.h2) < 1e-5 or abs(b.loglik - (a.loglik - _shift(c, X, method))) < 1e-7
    np.testing.assert_allclose(b.sigma2, c**2 * a.sigma2, rtol=1e-4)


def _shift(c, X, method):
    n, p = X.shape
    return (n if method == "ml" else n - p) * np.log(c)


@SETTINGS
@given(problems(), st.floats(0.1, 10.0))
def test_scaling_kinship_maps_h2_and_nothing_else(problem, c):
    K, y, X, method = problem
    a = fit_lmm(K, y, X, method=method)
    if not _identifiable(a):
        return
    b = fit_lmm(c * K, y, X, method=method)
    assert abs(b.loglik - a.loglik) < 1e-7 * (1 + abs(a.loglik))
    # the map is exact; either the optima agree or the profile is flat enough that both are optimal
    expected = float(rescale_h2(a.h2, c))
    if abs(b.h2 - expected) > 1e-5:
        rot = rotate(decompose_kinship(c * K), y, X)
        at_expected = profile_loglik(rot, [expected], method)[0, 0]
        assert abs(at_expected - b.loglik) < 1e-7 * (1 + abs(b.loglik))
