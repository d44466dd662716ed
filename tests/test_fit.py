"""The one-call fit: SE, interval, test of h2 = 0, coefficients, invariances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from conftest import boundary_case, random_kinship, simulate_y
from dense import gls, loglik
from lmmcore import fit_lmm, rescale_h2
from lmmcore.fit import CI_DROP


@pytest.fixture
def fitted(small_data):
    K, y, X = small_data
    return K, y, X, {m: fit_lmm(K, y, X, method=m) for m in ("ml", "reml")}


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_coefficients_and_variances_equal_dense_gls(fitted, method):
    K, y, X, fits = fitted
    fit = fits[method]
    b, rss, _, XtViX = gls(K, y, X, fit.h2)
    n, p = X.shape
    sigma2 = rss / (n if method == "ml" else n - p)
    np.testing.assert_allclose(fit.beta, b, rtol=1e-8)
    np.testing.assert_allclose(fit.beta_se, np.sqrt(np.diag(sigma2 * np.linalg.inv(XtViX))), rtol=1e-8)
    assert fit.sigma2 == pytest.approx(sigma2, rel=1e-8)
    assert fit.sigma2_g == pytest.approx(fit.h2 * sigma2, rel=1e-8)
    assert fit.sigma2_e == pytest.approx((1 - fit.h2) * sigma2, rel=1e-8)
    assert fit.loglik == pytest.approx(loglik(K, y, X, fit.h2, method), abs=1e-8)


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_standard_error_from_dense_curvature(fitted, method):
    K, y, X, fits = fitted
    fit = fits[method]
    step = 1e-3
    vals = [loglik(K, y, X, fit.h2 + s, method) for s in (-step, 0.0, step)]
    second = (vals[0] - 2 * vals[1] + vals[2]) / step**2
    assert fit.h2_se == pytest.approx(1 / np.sqrt(-second), rel=1e-3)


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_profile_interval_ends_drop_by_1_92(fitted, method):
    K, y, X, fits = fitted
    fit = fits[method]
    assert CI_DROP == pytest.approx(stats.chi2.ppf(0.95, 1) / 2, rel=1e-12)
    assert fit.h2_ci_low < fit.h2 < fit.h2_ci_high
    for end in (fit.h2_ci_low, fit.h2_ci_high):
        if 0 < end < 1:
            assert loglik(K, y, X, end, method) == pytest.approx(fit.loglik - CI_DROP, abs=1e-6)
    # just outside the interval the likelihood is lower than the threshold
    if fit.h2_ci_low > 0:
        assert loglik(K, y, X, fit.h2_ci_low - 1e-3, method) < fit.loglik - CI_DROP


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_likelihood_ratio_test_of_h2_zero(fitted, method):
    K, y, X, fits = fitted
    fit = fits[method]
    L0 = loglik(K, y, X, 0.0, method)
    stat = 2 * (fit.loglik - L0)
    assert fit.loglik_h2_zero == pytest.approx(L0, abs=1e-8)
    assert fit.lrt_h2_zero == pytest.approx(stat, abs=1e-7)
    assert fit.p_h2_zero == pytest.approx(0.5 * stats.chi2.sf(stat, 1), rel=1e-6)


def test_interval_clipped_at_zero_and_p_value_one_at_the_boundary():
    K, y, X = boundary_case("zero")
    n = len(y)
    fit = fit_lmm(K, y)
    assert fit.h2 == 0.0 and fit.h2_ci_low == 0.0
    assert fit.lrt_h2_zero == 0.0 and fit.p_h2_zero == 1.0
    assert loglik(K, y, np.ones((n, 1)), fit.h2_ci_high, "reml") == pytest.approx(fit.loglik - CI_DROP, abs=1e-6)


@pytest.mark.parametrize("c", [1e-8, 3.0, 1e8])
def test_scaling_y_scales_beta_and_sigma2_only(small_data, c):
    K, y, X = small_data
    a, b = fit_lmm(K, y, X), fit_lmm(K, c * y, X)
    assert b.h2 == pytest.approx(a.h2, abs=1e-6)
    np.testing.assert_allclose(b.beta, c * a.beta, rtol=1e-6)
    np.testing.assert_allclose(b.beta_se, c * a.beta_se, rtol=1e-4)
    assert b.sigma2 == pytest.approx(c**2 * a.sigma2, rel=1e-6)
    n, p = X.shape
    assert b.loglik == pytest.approx(a.loglik - (n - p) * np.log(c), abs=1e-6)


def test_large_mean_does_not_cost_precision(small_data):
    K, y, X = small_data
    a, b = fit_lmm(K, y, X), fit_lmm(K, y + 1e9, X)
    assert b.h2 == pytest.approx(a.h2, abs=1e-6)
    assert b.beta[0] == pytest.approx(a.beta[0] + 1e9, rel=1e-12)
    assert b.beta[1] == pytest.approx(a.beta[1], rel=1e-6)


def test_permuting_individuals_changes_nothing(small_data):
    K, y, X = small_data
    perm = np.random.default_rng(9).permutation(len(y))
    a = fit_lmm(K, y, X)
    b = fit_lmm(K[np.ix_(perm, perm)], y[perm], X[perm])
    assert b.h2 == pytest.approx(a.h2, abs=1e-7)
    assert b.loglik == pytest.approx(a.loglik, abs=1e-8)
    np.testing.assert_allclose(b.beta, a.beta, rtol=1e-7)


def test_kinship_scale_changes_h2_by_the_documented_map(small_data):
    K, y, X = small_data
    a, b = fit_lmm(K, y, X, method="ml"), fit_lmm(K * 2, y, X, method="ml")
    assert b.h2 == pytest.approx(float(rescale_h2(a.h2, 2.0)), abs=1e-6)
    assert b.loglik == pytest.approx(a.loglik, abs=1e-8)
    assert b.sigma2_e == pytest.approx(a.sigma2_e, rel=1e-5)
    assert b.sigma2_g == pytest.approx(a.sigma2_g / 2, rel=1e-5)


def test_bad_arguments_are_refused(small_data):
    from lmmcore import LMMInputError

    K, y, X = small_data
    with pytest.raises(LMMInputError, match="missing or infinite"):
        fit_lmm(K, np.where(np.arange(len(y)) == 3, np.nan, y))
    with pytest.raises(LMMInputError, match="more individuals than coefficients"):
        fit_lmm(K[:3, :3], y[:3], np.column_stack([np.ones(3), [1.0, 2, 3], [0.0, 1, 5]]))
