"""The profile log-likelihood equals the dense Gaussian density (ML) and the textbook REML."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dense import gls, loglik
from lmmcore import decompose_kinship, from_lmmlite, profile_loglik, rotate, solve_wls, to_lmmlite
from lmmcore.likelihood import profile_loglik_paired

H_VALUES = [0.0, 0.05, 0.3, 0.5, 0.77, 0.99]


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_profile_equals_dense_density_full_rank(small_data, method):
    K, y, X = small_data
    rot = rotate(decompose_kinship(K), y, X)
    ours = profile_loglik(rot, np.array(H_VALUES + [1.0]), method)[:, 0]
    dense = [loglik(K, y, X, h, method) for h in H_VALUES + [1.0]]
    np.testing.assert_allclose(ours, dense, rtol=0, atol=1e-9)


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_profile_equals_dense_density_rank_deficient(lowrank_data, method):
    K, y, X = lowrank_data
    eig = decompose_kinship(K)
    assert eig.n_zero == 30  # rank 10 of 40
    rot = rotate(eig, y, X)
    ours = profile_loglik(rot, np.array(H_VALUES), method)[:, 0]
    dense = [loglik(K, y, X, h, method) for h in H_VALUES]
    np.testing.assert_allclose(ours, dense, rtol=0, atol=1e-8)


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_singular_kinship_at_h2_one_is_minus_infinity_without_warnings(lowrank_data, method):
    K, y, X = lowrank_data
    rot = rotate(decompose_kinship(K), y, X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division or invalid-value warnings
        values = profile_loglik(rot, np.linspace(0, 1, 11), method)[:, 0]
        near_one = profile_loglik(rot, np.array([1 - 1e-6, 1 - 1e-9]), method)[:, 0]
    assert values[-1] == -np.inf
    assert np.all(np.isfinite(values[:-1]))
    # approaching the singular end the likelihood falls away: no fake optimum at 1
    assert near_one[1] < near_one[0] < values[:-1].max()


def test_wls_solution_equals_dense_gls(small_data):
    K, y, X = small_data
    rot = rotate(decompose_kinship(K), y, X)
    sol = solve_wls(rot, np.array([0.2, 0.8]), "ml")
    for k, h in enumerate([0.2, 0.8]):
        b, rss, _, XtViX = gls(K, y, X, h)
        np.testing.assert_allclose(sol.beta[k, 0], b, rtol=1e-10)
        np.testing.assert_allclose(sol.rss[k, 0], rss, rtol=1e-10)
        np.testing.assert_allclose(sol.sigma2[k, 0], rss / len(y), rtol=1e-10)
        np.testing.assert_allclose(sol.logdet_XtWX[k, 0], np.linalg.slogdet(XtViX)[1], rtol=1e-10)


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_grid_and_paired_evaluations_agree(small_data, method):
    K, y, X = small_data
    Y = np.column_stack([y, y[::-1], 3 * y + 1])
    rot = rotate(decompose_kinship(K), Y, X)
    hs = np.linspace(0, 1, 7)
    grid = profile_loglik(rot, hs, method)
    lanes_h = np.repeat(hs, 3)
    lanes_c = np.tile(np.arange(3), hs.size)
    paired = profile_loglik_paired(rot, lanes_h, lanes_c, method).reshape(hs.size, 3)
    np.testing.assert_allclose(paired, grid, rtol=1e-12, atol=1e-9)
    for j in range(3):
        dense = [loglik(K, Y[:, j], X, h, method) for h in hs]
        np.testing.assert_allclose(grid[:, j], dense, atol=1e-8)


def _lmmlite_calcLL(K, y, X, h, reml):
    """lmmlite's calcLL (R/lmm.R): constants dropped; computed densely here."""
    n, p = X.shape
    b, rss, V, XtViX = gls(K, y, X, h)
    logdet_V = np.linalg.slogdet(V)[1]
    LL = -0.5 * (logdet_V + n * np.log(rss))
    if reml:
        sigsq = rss / (n - p)
        LL += 0.5 * (p * np.log(sigsq) + np.linalg.slogdet(X.T @ X)[1] - np.linalg.slogdet(XtViX)[1])
    return LL


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_conversion_to_lmmlite_convention(small_data, method):
    K, y, X = small_data
    n, p = X.shape
    rot = rotate(decompose_kinship(K), y, X)
    for h in (0.1, 0.6):
        ours = profile_loglik(rot, [h], method)[0, 0]
        theirs = _lmmlite_calcLL(K, y, X, h, method == "reml")
        assert to_lmmlite(ours, n, p, method) == pytest.approx(theirs, abs=1e-9)
        assert from_lmmlite(theirs, n, p, method) == pytest.approx(ours, abs=1e-9)


def test_h2_outside_unit_interval_is_refused(small_data):
    K, y, X = small_data
    rot = rotate(decompose_kinship(K), y, X)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        profile_loglik(rot, [1.2])
