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


# ---------------------------------------------------------------- the steps of the fit, one at a time


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_point_estimate_is_the_dense_optimum_without_the_inference(small_data, method):
    """estimate_rotated: the h2 of a brute-force dense search, the dense GLS coefficients, no SE/CI/LRT."""
    from dense import brute_force_h2
    from lmmcore import decompose_kinship, estimate_rotated, rotate

    K, y, X = small_data
    est = estimate_rotated(rotate(decompose_kinship(K), y, X), method)
    h_dense, L_dense = brute_force_h2(K, y, X, method)
    assert est.h2[0] == pytest.approx(h_dense, abs=1e-6)
    assert est.loglik[0] == pytest.approx(L_dense, abs=1e-8)
    b, rss, _, _ = gls(K, y, X, est.h2[0])
    n, p = X.shape
    np.testing.assert_allclose(est.beta[0], b, rtol=1e-8)
    assert est.sigma2[0] == pytest.approx(rss / (n if method == "ml" else n - p), rel=1e-8)
    assert not hasattr(est, "h2_se") and not hasattr(est, "h2_ci_low")


def test_standardise_centres_and_scales_like_the_unrotated_phenotype(small_data):
    """mu and s from the rotated data equal mean(y) and the RMS of y - mean(y); the shift undoes the scale."""
    from lmmcore import decompose_kinship, profile_loglik, rotate, standardise

    K, y, X = small_data
    y2 = np.column_stack([y, 1e6 * y + 3e7])
    rot = rotate(decompose_kinship(K), y2, X)
    std = standardise(rot)
    np.testing.assert_allclose(std.centre, y2.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std.scale, np.sqrt(((y2 - y2.mean(axis=0)) ** 2).mean(axis=0)), rtol=1e-12)
    for method in ("ml", "reml"):
        # L of the phenotype = L of the standardised phenotype + the shift (dense check at h2 = 0.3)
        L_std = profile_loglik(std.rot, [0.3], method)[0]
        for j in range(2):
            dense = loglik(K, y2[:, j], X, 0.3, method)
            assert L_std[j] + std.loglik_shift(method)[j] == pytest.approx(dense, rel=1e-10)


def test_lrt_p_value_is_half_the_chi2_1_tail():
    from lmmcore.inference import lrt_h2_zero

    L = np.array([10.0, 10.0, 10.0, 3.0])
    L0 = np.array([10.0, 9.0, 2.5, 3.5])  # 0, 2, 15, and a (rounding) negative difference
    stat, p = lrt_h2_zero(L, L0)
    np.testing.assert_allclose(stat, [0.0, 2.0, 15.0, 0.0])
    np.testing.assert_allclose(p[1:3], 0.5 * stats.chi2.sf([2.0, 15.0], 1), rtol=1e-12)
    assert p[0] == 1.0 and p[3] == 1.0


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_inference_alone_equals_dense_curvature_and_interval(small_data, method):
    """h2_inference on an optimum: SE from the dense second difference, interval ends at max - 1.92 (dense)."""
    from lmmcore import decompose_kinship, h2_inference, optimise_h2, rotate

    K, y, X = small_data
    rot = rotate(decompose_kinship(K), y, X)
    opt = optimise_h2(rot, method)
    inf = h2_inference(rot, method, opt.h2, opt.loglik, opt.searches[0].grid_h2, opt.grid_loglik)
    h = opt.h2[0]
    step = 1e-3
    vals = [loglik(K, y, X, h + s, method) for s in (-step, 0.0, step)]
    assert inf.h2_se[0] == pytest.approx(1 / np.sqrt(-(vals[0] - 2 * vals[1] + vals[2]) / step**2), rel=1e-3)
    for end in (inf.ci_low[0], inf.ci_high[0]):
        if 0 < end < 1:
            assert loglik(K, y, X, end, method) == pytest.approx(vals[1] - CI_DROP, abs=1e-6)
    assert inf.lrt[0] == pytest.approx(2 * (vals[1] - loglik(K, y, X, 0.0, method)), abs=1e-7)


def test_report_receives_the_messages_instead_of_warnings():
    """report= takes the fit's messages (h2 not identifiable with K = I); no LMMWarning is issued."""
    import warnings

    from lmmcore import LMMWarning

    n = 30
    y = np.random.default_rng(4).normal(size=n)
    got: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", LMMWarning)
        fit = fit_lmm(np.eye(n), y, report=got.append)
    assert np.isnan(fit.h2)
    assert len(got) == 1 and "not identifiable" in got[0]
    with pytest.warns(LMMWarning, match="not identifiable"):
        fit_lmm(np.eye(n), y)
