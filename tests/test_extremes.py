"""Numerical extremes: each gives a correct answer or a clear flag, never a silent NaN."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import random_kinship, simulate_y
from dense import brute_force_h2, loglik
from lmmcore import LMMWarning, fit_lmm


def _quiet_fit(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warnings may escape
        return fit_lmm(*args, **kw)


@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_phenotypes_on_extreme_scales(small_data, scale):
    K, y, X = small_data
    ref = _quiet_fit(K, y, X)
    fit = _quiet_fit(K, scale * y + 1e3 * scale, X)
    assert fit.h2 == pytest.approx(ref.h2, abs=1e-6)
    assert fit.loglik == pytest.approx(loglik(K, scale * y + 1e3 * scale, X, fit.h2, "reml"), rel=1e-9)


def test_three_individuals():
    K = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])
    y = np.array([1.0, 2.0, 4.0])
    for method in ("ml", "reml"):
        fit = _quiet_fit(K, y, method=method)
        h_brute, L_brute = brute_force_h2(K, y, np.ones((3, 1)), method)
        assert abs(fit.h2 - h_brute) < 1e-6 and fit.loglik >= L_brute - 1e-9


@pytest.mark.parametrize(
    "make_K",
    [
        pytest.param(lambda n: np.eye(n), id="K=I"),
        pytest.param(lambda n: 2.5 * np.eye(n), id="K=cI"),
        pytest.param(lambda n: np.ones((n, n)), id="K=J with intercept"),
    ],
)
def test_unidentifiable_h2_is_flagged(make_K):
    n = 30
    y = np.random.default_rng(1).normal(size=n)
    K = make_K(n)
    # independent check: the dense REML profile really is flat
    flat = [loglik(K, y, np.ones((n, 1)), h, "reml") for h in (0.1, 0.5, 0.9)]
    assert np.ptp(flat) < 1e-8
    with pytest.warns(LMMWarning, match="not identifiable"):
        fit = fit_lmm(K, y)
    assert np.isnan(fit.h2) and "not identifiable" in fit.message
    assert (fit.h2_ci_low, fit.h2_ci_high) == (0.0, 1.0)


def test_one_residual_degree_of_freedom_is_flagged():
    n = 12
    K = random_kinship(n, 50, seed=2)
    X = np.column_stack([np.ones(n), np.random.default_rng(3).normal(size=(n, n - 2))])
    y = np.random.default_rng(4).normal(size=n)
    with pytest.warns(LMMWarning, match="not identifiable"):
        fit = fit_lmm(K, y, X)  # p = n - 1: one error contrast cannot split h2 from sigma2
    assert np.isnan(fit.h2)


def test_identical_individuals_make_a_singular_kinship_that_still_fits():
    n = 40
    K = random_kinship(n, 200, seed=5)
    K[1], K[:, 1] = K[0], K[:, 0]  # individual 1 is a copy of individual 0
    K[1, 1] = K[0, 0]
    y = simulate_y(K + 1e-6 * np.eye(n), np.ones((n, 1)), np.array([0.0]), 0.5, 1.0, seed=6)
    fit = _quiet_fit(K, y)
    assert np.isfinite(fit.h2) and 0 <= fit.h2 < 1
    h_brute, _ = brute_force_h2(K, y, np.ones((n, 1)), "reml", hi=1 - 1e-9)
    assert abs(fit.h2 - h_brute) < 1e-6


def test_nearly_flat_likelihood_gives_a_wide_interval_not_a_false_precision():
    n = 15
    K = random_kinship(n, 5000, seed=7)  # close to I: little information on h2
    y = np.random.default_rng(8).normal(size=n)
    fit = _quiet_fit(K, y)
    assert fit.h2_ci_high - fit.h2_ci_low > 0.5


def test_ml_unbounded_when_covariates_fit_the_kinship_null_space_is_flagged():
    """n = 8, rank(K) = 5, p = 3: X can fit K's three null directions exactly, so ML -> inf at h2 -> 1."""
    from dense import ml_loglik

    rng = np.random.default_rng(10)
    Z = rng.normal(size=(8, 5))
    K = Z @ Z.T / 5
    X = np.column_stack([np.ones(8), rng.normal(size=(8, 2))])
    y = rng.normal(size=8)
    near_one = [ml_loglik(K, y, X, h) for h in (0.99, 0.9999, 0.999999)]
    assert near_one[0] < near_one[1] < near_one[2]  # the dense density really grows
    with pytest.warns(LMMWarning, match="without bound"):
        fit = fit_lmm(K, y, X, method="ml")
    assert not fit.converged and "REML" in fit.message
    reml = _quiet_fit(K, y, X, method="reml")
    assert reml.converged
