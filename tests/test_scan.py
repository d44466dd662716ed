"""Genome scans against independent dense computations on small data.

Every reference value here is computed without the eigendecomposition: the
fixed-h2 LOD from scipy's multivariate normal density with
``V = h K + (1 - h) I`` and sigma2 at its ML value (``dense.ml_loglik``), the
exact scan from a general-purpose optimiser over (sigma_g^2, sigma_e^2) on the
dense density (``dense.dense_variance_components_ml``) and a brute-force grid
of the textbook REML likelihood (``dense.brute_force_h2``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from conftest import random_kinship, simulate_y
from dense import brute_force_h2, dense_variance_components_ml, gls, ml_loglik, reml_loglik
from lmmcore import LMMInputError, LMMWarning
from lmmcore.fit import rescale_h2
from lmmcore.genotypes import Genotypes
from lmmcore.kinship import loco_kinships
from lmmcore.permute import lod_thresholds, permutation_indices
from lmmcore.scan import (
    FULL_ML_CAP,
    FLAG_ALL_MISSING,
    FLAG_COLLINEAR,
    FLAG_MONOMORPHIC,
    FLAG_RANK_DEFICIENT,
    scan,
)

N = 40
LN10 = np.log(10.0)


def _ids(n):
    return [f"i{k:03d}" for k in range(n)]


def _dosage_genotypes(D, chrom=None):
    n, m = D.shape
    chrom = chrom if chrom is not None else ["1"] * (m // 2) + ["2"] * (m - m // 2)
    return Genotypes(
        ids=tuple(_ids(n)),
        markers=tuple(f"m{j:02d}" for j in range(m)),
        chromosome=tuple(chrom),
        position=np.arange(m, dtype=float),
        dosage=np.asarray(D, dtype=float),
    )


def _prob_genotypes(P):
    n, m, _ = P.shape
    return Genotypes(
        ids=tuple(_ids(n)),
        markers=tuple(f"m{j:02d}" for j in range(m)),
        chromosome=tuple(["1"] * (m // 2) + ["2"] * (m - m // 2)),
        position=np.arange(m, dtype=float),
        probs=np.asarray(P, dtype=float),
        genotype_names=("AA", "AB", "BB"),
    )


def _frame(K):
    ids = _ids(K.shape[0])
    return pd.DataFrame(K, index=ids, columns=ids)


@pytest.fixture
def scan_data():
    """n = 40, full-rank K, intercept + covariate, a QTL at marker 2 (dosage).

    The seed of y is one whose null h2 estimate is interior (about 0.58; at
    n = 40 many draws give 0 or 1), so that the weights matter.
    """
    rng = np.random.default_rng(11)
    m = 8
    D = rng.binomial(2, rng.uniform(0.2, 0.8, m), size=(N, m)).astype(float)
    K = random_kinship(N, 400, seed=12)
    X = np.column_stack([np.ones(N), rng.normal(size=N)])
    y = simulate_y(K, X, np.array([1.0, 0.3]), 0.6, 1.5, seed=19) + 0.5 * D[:, 2]
    ids = _ids(N)
    pheno = pd.DataFrame({"y": y}, index=ids)
    covar = pd.DataFrame({"x": X[:, 1]}, index=ids)
    return D, K, X, y, pheno, covar


@pytest.fixture
def prob_data():
    """Genotype probabilities of 3 genotypes (continuous, not hard calls); null h2 about 0.6."""
    rng = np.random.default_rng(21)
    m = 6
    true = rng.binomial(2, 0.5, size=(N, m))
    P = 0.7 * np.eye(3)[true] + 0.3 * rng.dirichlet([1.0, 1.0, 1.0], size=(N, m))
    K = random_kinship(N, 300, seed=22)
    X = np.column_stack([np.ones(N), rng.normal(size=N)])
    y = simulate_y(K, X, np.array([0.0, 0.5]), 0.5, 1.0, seed=35) + 0.8 * P[:, 1, 2]
    ids = _ids(N)
    return P, K, X, y, pd.DataFrame({"y": y}, index=ids), pd.DataFrame({"x": X[:, 1]}, index=ids)


def _dense_fixed(K, y, X, G_cols, h):
    """LOD, p-value, effects and SEs of one marker at fixed h by dense GLS."""
    X1 = np.column_stack([X, G_cols])
    lod = (ml_loglik(K, y, X1, h) - ml_loglik(K, y, X, h)) / LN10
    b, rss, _, XtViX = gls(K, y, X1, h)
    q = X1.shape[1] - X.shape[1]
    sigma2 = rss / (len(y) - X1.shape[1])
    se = np.sqrt(sigma2 * np.diag(np.linalg.inv(XtViX)))
    return lod, stats.chi2.sf(2 * LN10 * lod, q), b[-q:], se[-q:]


# --------------------------------------------------------------------------- #
# Fixed-h2 scan
# --------------------------------------------------------------------------- #
def test_fixed_h2_lod_equals_dense_gls_likelihood_for_dosages(scan_data):
    D, K, X, y, pheno, covar = scan_data
    res = scan(_dosage_genotypes(D), pheno, covar, kinship=_frame(K))
    h0 = float(res.null["h2"].iloc[0])
    h_dense, _ = brute_force_h2(K, y, X, "reml")
    assert h0 == pytest.approx(h_dense, abs=1e-6)
    assert 0.2 < h0 < 0.9  # an interior null h2: the weights matter
    t = res.table
    assert list(t["marker"]) == [f"m{j:02d}" for j in range(D.shape[1])]
    for j in range(D.shape[1]):
        lod, p, b, se = _dense_fixed(K, y, X, D[:, j], h0)
        assert t["lod"][j] == pytest.approx(lod, abs=1e-8)
        assert t["p_value"][j] == pytest.approx(p, rel=1e-7)
        assert t["beta_dosage"][j] == pytest.approx(b[0], rel=1e-8, abs=1e-12)
        assert t["se_dosage"][j] == pytest.approx(se[0], rel=1e-8)
    assert (t["df"] == 1).all() and (t["flag"] == "").all() and (t["h2"] == h0).all()


def test_fixed_h2_lod_equals_dense_gls_likelihood_for_genotype_probabilities(prob_data):
    P, K, X, y, pheno, covar = prob_data
    res = scan(_prob_genotypes(P), pheno, covar, kinship=_frame(K), method="ml")
    h0 = float(res.null["h2"].iloc[0])
    assert h0 == pytest.approx(brute_force_h2(K, y, X, "ml")[0], abs=1e-6)
    assert 0.2 < h0 < 0.9
    t = res.table
    assert res.effect_names == ("AB", "BB")
    for j in range(P.shape[1]):
        # the first genotype is the reference: k - 1 = 2 columns
        lod, p, b, se = _dense_fixed(K, y, X, P[:, j, 1:], h0)
        assert t["df"][j] == 2
        assert t["lod"][j] == pytest.approx(lod, abs=1e-8)
        assert t["p_value"][j] == pytest.approx(p, rel=1e-7)
        np.testing.assert_allclose(t.loc[j, ["beta_AB", "beta_BB"]].to_numpy(float), b, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(t.loc[j, ["se_AB", "se_BB"]].to_numpy(float), se, rtol=1e-7)
    # dropping another genotype instead spans the same model: same LOD
    lod_last, *_ = _dense_fixed(K, y, X, P[:, 1, :2], h0)
    assert t["lod"][1] == pytest.approx(lod_last, abs=1e-8)


def test_lod_does_not_depend_on_the_kinship_scale(scan_data):
    D, K, X, y, pheno, covar = scan_data
    g = _dosage_genotypes(D)
    one = scan(g, pheno, covar, kinship=_frame(K), refit=True)
    two = scan(g, pheno, covar, kinship=_frame(2 * K), refit=True)
    h1, h2 = float(one.null["h2"].iloc[0]), float(two.null["h2"].iloc[0])
    assert abs(h1 - h2) > 0.05  # the null h2 changes with the scale ...
    assert h2 == pytest.approx(rescale_h2(h1, 2.0), abs=1e-6)
    # ... the LOD does not
    np.testing.assert_allclose(one.table["lod"], two.table["lod"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(one.table["beta_dosage"], two.table["beta_dosage"], rtol=1e-7)
    np.testing.assert_allclose(one.table["lrt"], two.table["lrt"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(rescale_h2(one.table["h2_ml"].to_numpy(), 2.0), two.table["h2_ml"], atol=1e-5)


def test_chunking_does_not_change_results(scan_data):
    D, K, X, y, pheno, covar = scan_data
    g = _dosage_genotypes(D)
    whole = scan(g, pheno, covar, kinship=_frame(K), refit=True)
    pieces = scan(g, pheno, covar, kinship=_frame(K), refit=True, chunk=3)
    pd.testing.assert_frame_equal(whole.table, pieces.table, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- #
# Exact scan (h2 re-estimated at every marker)
# --------------------------------------------------------------------------- #
def test_exact_scan_equals_dense_optimisation_over_variance_components(scan_data):
    D, K, X, y, pheno, covar = scan_data
    res = scan(_dosage_genotypes(D[:, :5]), pheno, covar, kinship=_frame(K), refit=True)
    t = res.table
    h_null, L_null = dense_variance_components_ml(K, y, X)
    assert res.null["loglik_ml"].iloc[0] == pytest.approx(L_null, abs=1e-7)
    for j in range(5):
        X1 = np.column_stack([X, D[:, j]])
        h_dense, L_dense = dense_variance_components_ml(K, y, X1)
        # the maximum over (sigma_g^2, sigma_e^2) by Nelder-Mead on the dense density
        assert t["loglik_ml"][j] == pytest.approx(L_dense, abs=1e-7)
        assert t["loglik_ml"][j] >= L_dense - 1e-9  # never below a general optimiser
        assert t["h2_ml"][j] == pytest.approx(h_dense, abs=2e-4)
        lrt = 2 * (L_dense - L_null)
        assert t["lrt"][j] == pytest.approx(lrt, abs=1e-6)
        assert t["p_lrt"][j] == pytest.approx(stats.chi2.sf(lrt, 1), rel=1e-5)
        assert t["lod_lrt"][j] == pytest.approx(lrt / (2 * LN10), abs=1e-6)
        # REML h2 against a brute-force grid of the textbook restricted likelihood
        h_reml, L_reml = brute_force_h2(K, y, X1, "reml")
        assert t["h2_reml"][j] == pytest.approx(h_reml, abs=1e-5)
        assert t["loglik_reml"][j] == pytest.approx(reml_loglik(K, y, X1, t["h2_reml"][j]), abs=1e-9)
        assert t["loglik_reml"][j] >= L_reml - 1e-9
        # Wald test at the marker's REML h2, by dense GLS
        b, rss, _, XtViX = gls(K, y, X1, t["h2_reml"][j])
        sigma2 = rss / (N - 3)
        se = np.sqrt(sigma2 * np.linalg.inv(XtViX)[2, 2])
        assert t["beta_wald_dosage"][j] == pytest.approx(b[2], rel=1e-7, abs=1e-12)
        assert t["se_wald_dosage"][j] == pytest.approx(se, rel=1e-7)
        assert t["wald"][j] == pytest.approx((b[2] / se) ** 2, rel=1e-7)
        assert t["p_wald"][j] == pytest.approx(stats.f.sf((b[2] / se) ** 2, 1, N - 3), rel=1e-6)


def test_exact_scan_with_genotype_probabilities_equals_dense(prob_data):
    P, K, X, y, pheno, covar = prob_data
    res = scan(_prob_genotypes(P[:, :3]), pheno, covar, kinship=_frame(K), refit=True)
    t = res.table
    _, L_null = dense_variance_components_ml(K, y, X)
    for j in range(3):
        X1 = np.column_stack([X, P[:, j, 1:]])
        h_dense, L_dense = dense_variance_components_ml(K, y, X1)
        assert t["loglik_ml"][j] == pytest.approx(L_dense, abs=1e-7)
        assert t["p_lrt"][j] == pytest.approx(stats.chi2.sf(2 * (L_dense - L_null), 2), rel=1e-5)
        h_reml, _ = brute_force_h2(K, y, X1, "reml")
        assert t["h2_reml"][j] == pytest.approx(h_reml, abs=1e-5)
        b, rss, _, XtViX = gls(K, y, X1, t["h2_reml"][j])
        np.testing.assert_allclose(t.loc[j, ["beta_wald_AB", "beta_wald_BB"]].to_numpy(float), b[2:], rtol=1e-7)
        cov = rss / (N - 4) * np.linalg.inv(XtViX)[2:, 2:]
        wald = b[2:] @ np.linalg.solve(cov, b[2:]) / 2
        assert t["wald"][j] == pytest.approx(wald, rel=1e-7)
        assert t["p_wald"][j] == pytest.approx(stats.f.sf(wald, 2, N - 4), rel=1e-6)


def test_exact_scan_with_a_singular_kinship_stays_below_h2_one(lowrank_data):
    K, y, X = lowrank_data
    rng = np.random.default_rng(3)
    D = rng.binomial(2, 0.4, size=(N, 4)).astype(float)
    ids = _ids(N)
    res = scan(_dosage_genotypes(D), pd.DataFrame({"y": y}, index=ids),
               pd.DataFrame({"x": X[:, 1]}, index=ids), kinship=_frame(K), refit=True)
    t = res.table
    assert np.all(np.isfinite(t["loglik_ml"])) and np.all(t["h2_ml"] < 1)
    for j in range(4):
        X1 = np.column_stack([X, D[:, j]])
        _, L_dense = dense_variance_components_ml(K + 1e-12 * np.eye(N), y, X1)
        assert t["loglik_ml"][j] == pytest.approx(L_dense, abs=1e-5)


# --------------------------------------------------------------------------- #
# Markers that cannot be tested
# --------------------------------------------------------------------------- #
def test_monomorphic_collinear_and_missing_markers_are_flagged_rows(scan_data):
    D, K, X, y, pheno, covar = scan_data
    D2 = np.column_stack([D[:, :3], np.ones(N), X[:, 1] + 1.0, np.full(N, np.nan), D[:, 3:]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from the NaN column
        res = scan(_dosage_genotypes(D2), pheno, covar, kinship=_frame(K), refit=True)
    t = res.table
    assert len(t) == D2.shape[1]
    assert list(t["flag"][3:6]) == [FLAG_MONOMORPHIC, FLAG_COLLINEAR, FLAG_ALL_MISSING]
    for col in ("lod", "p_value", "beta_dosage", "se_dosage", "lrt", "p_lrt", "wald", "p_wald", "h2_ml"):
        assert t[col][3:6].isna().all(), col
    assert (t["df"][3:6] == 0).all()
    # the other markers are unaffected
    ok = scan(_dosage_genotypes(D), pheno, covar, kinship=_frame(K), refit=True).table
    keep = [0, 1, 2, 6, 7, 8, 9, 10]
    np.testing.assert_allclose(t["lod"][keep], ok["lod"], atol=1e-10)
    np.testing.assert_allclose(t["lrt"][keep], ok["lrt"], atol=1e-8)


def test_partly_missing_dosages_are_mean_imputed_with_a_warning(scan_data):
    D, K, X, y, pheno, covar = scan_data
    D2 = D.copy()
    D2[:5, 1] = np.nan
    with pytest.warns(LMMWarning, match="5 missing genotype values"):
        res = scan(_dosage_genotypes(D2), pheno, covar, kinship=_frame(K))
    filled = D.copy()
    filled[:5, 1] = D[5:, 1].mean()
    lod, *_ = _dense_fixed(K, y, X, filled[:, 1], float(res.null["h2"].iloc[0]))
    assert res.table["lod"][1] == pytest.approx(lod, abs=1e-8)


def test_absent_genotype_reduces_the_degrees_of_freedom(prob_data):
    P, K, X, y, pheno, covar = prob_data
    P2 = P.copy()
    # marker 0: nobody is BB, so only AB vs AA can be tested
    P2[:, 0, 0] += P2[:, 0, 2]
    P2[:, 0, 2] = 0.0
    res = scan(_prob_genotypes(P2), pheno, covar, kinship=_frame(K))
    t = res.table
    assert t["df"][0] == 1 and t["flag"][0] == FLAG_RANK_DEFICIENT
    lod, p, _, _ = _dense_fixed(K, y, X, P2[:, 0, 1], float(res.null["h2"].iloc[0]))
    assert t["lod"][0] == pytest.approx(lod, abs=1e-8)
    assert t["p_value"][0] == pytest.approx(p, rel=1e-7)
    assert (t["df"][1:] == 2).all()


# --------------------------------------------------------------------------- #
# LOCO, several phenotypes, missing phenotypes
# --------------------------------------------------------------------------- #
def test_loco_uses_each_chromosomes_kinship():
    rng = np.random.default_rng(31)
    n, m = 60, 90
    D = rng.binomial(2, rng.uniform(0.2, 0.8, m), size=(n, m)).astype(float)
    chrom = ["1"] * 30 + ["2"] * 30 + ["3"] * 30
    g = _dosage_genotypes(D, chrom)
    y = D[:, :60] @ rng.normal(scale=0.15, size=60) + rng.normal(size=n)
    pheno = pd.DataFrame({"y": y}, index=_ids(n))
    lazy = scan(g, pheno, kinship="loco")
    mats = loco_kinships(D, chrom, kind="standardized")
    explicit = scan(g, pheno, kinship={c: _frame(K) for c, K in mats.items()})
    np.testing.assert_allclose(lazy.table["lod"], explicit.table["lod"], atol=1e-9)
    np.testing.assert_allclose(lazy.null["h2"], explicit.null["h2"], atol=1e-9)
    assert list(lazy.null["chr"]) == ["1", "2", "3"] and lazy.kinship == "loco"
    # a marker on chromosome 2 is scanned with K_{-2} and the null h2 fitted with it
    h_2 = float(lazy.null.set_index("chr").loc["2", "h2"])
    X = np.ones((n, 1))
    assert h_2 == pytest.approx(brute_force_h2(mats["2"], y, X, "reml")[0], abs=1e-6)
    lod, *_ = _dense_fixed(mats["2"], y, X, D[:, 40], h_2)
    assert lazy.table["lod"][40] == pytest.approx(lod, abs=1e-8)


def test_phenotypes_with_missing_values_use_their_own_individuals(scan_data):
    D, K, X, y, pheno, covar = scan_data
    rng = np.random.default_rng(5)
    both = pheno.assign(z=rng.normal(size=N) + 0.4 * D[:, 5])
    both.iloc[[1, 7, 30], 1] = np.nan
    res = scan(_dosage_genotypes(D), both, covar, kinship=_frame(K), refit=True)
    t = res.table
    assert list(pd.unique(t["phenotype"])) == ["y", "z"]
    keep = np.setdiff1d(np.arange(N), [1, 7, 30])
    Kz = K[np.ix_(keep, keep)]
    zt = t[t["phenotype"] == "z"].reset_index(drop=True)
    h_z = float(res.null.set_index("phenotype").loc["z", "h2"])
    assert (zt["n"] == N - 3).all()
    for j in (0, 5):
        lod, *_ = _dense_fixed(Kz, both["z"].to_numpy()[keep], X[keep], D[keep, j], h_z)
        assert zt["lod"][j] == pytest.approx(lod, abs=1e-8)
    alone = scan(_dosage_genotypes(D), pheno, covar, kinship=_frame(K), refit=True).table
    pd.testing.assert_frame_equal(t[t["phenotype"] == "y"].reset_index(drop=True), alone, atol=1e-10)


def test_the_result_lists_the_individuals_it_used_in_genotype_order(scan_data):
    """``ScanResult.ids``: genotyped, with a kinship row, complete covariates and an observed phenotype."""
    D, K, X, y, pheno, covar = scan_data
    ids = _ids(N)
    pheno = pheno.assign(z=1.0 + np.arange(N) % 3).iloc[::-1].copy()  # order must not matter
    pheno.loc[[ids[3], ids[8]], :] = np.nan  # nothing observed
    pheno.loc[ids[9], "y"] = np.nan  # z still observed: kept
    covar = covar.copy()
    covar.loc[ids[20], "x"] = np.nan
    keep = [i for k, i in enumerate(ids) if k != 0]  # the kinship lacks the first individual
    reports = []
    res = scan(_dosage_genotypes(D), pheno, covar, kinship=_frame(K[1:, 1:]).set_axis(keep, axis=0)
               .set_axis(keep, axis=1), report=reports.append)
    expected = tuple(i for i in ids if i not in (ids[0], ids[3], ids[8], ids[20]))
    assert res.ids == expected
    assert res.n_individuals == len(expected)
    # the message went to the caller's receiver, not to the warnings module
    assert reports == ["individuals left out of the scan: 2 without an observed phenotype, 1 without "
                       "complete covariates, 1 not in the kinship; 36 remain"]


# --------------------------------------------------------------------------- #
# Permutations
# --------------------------------------------------------------------------- #
def test_permutation_maxima_equal_scans_of_permuted_genotypes(scan_data):
    D, K, X, y, pheno, covar = scan_data
    g = _dosage_genotypes(D)
    res = scan(g, pheno, covar, kinship=_frame(K), n_perm=4, seed=7)
    perms = permutation_indices(N, 4, seed=7)
    for k, perm in enumerate(perms):
        # individual i receives the genotypes of perm[i]; phenotypes, covariates and kinship stay
        shuffled = _dosage_genotypes(D[perm])
        direct = scan(shuffled, pheno, covar, kinship=_frame(K)).table["lod"].max()
        assert res.permutations.max_lod["y"].iloc[k] == pytest.approx(direct, abs=1e-9)
    expected = np.quantile(res.permutations.max_lod["y"], 0.95)
    assert res.permutations.threshold("y", 0.05) == pytest.approx(expected)
    again = scan(g, pheno, covar, kinship=_frame(K), n_perm=4, seed=7)
    pd.testing.assert_frame_equal(res.permutations.max_lod, again.permutations.max_lod)


def test_permutations_stay_within_strata():
    strata = np.array(["a"] * 7 + ["b"] * 5 + ["c"] * 8)
    rng = np.random.default_rng(0)
    strata = strata[rng.permutation(strata.size)]
    perms = permutation_indices(strata.size, 50, seed=1, strata=strata)
    assert perms.shape == (50, 20)
    assert all(sorted(p) == list(range(20)) for p in perms)
    assert np.all(strata[perms] == strata[None, :])
    assert len({tuple(p) for p in perms}) > 40  # not all the same
    with pytest.raises(LMMInputError, match="labels"):
        permutation_indices(20, 5, strata=strata[:10])


def test_stratified_permutation_scan_uses_the_covariate_column(scan_data):
    D, K, X, y, pheno, covar = scan_data
    sex = pd.Series(np.where(np.arange(N) % 3 == 0, "m", "f"), index=_ids(N))
    res = scan(_dosage_genotypes(D), pheno, covar.assign(sex=sex), kinship=_frame(K), n_perm=3, seed=2,
               perm_strata="sex")
    assert res.permutations.strata == "sex" and "within strata of 'sex'" in res.permutations.scheme
    perms = permutation_indices(N, 3, seed=2, strata=sex.to_numpy())
    for k, perm in enumerate(perms):
        direct = scan(_dosage_genotypes(D[perm]), pheno, covar.assign(sex=sex), kinship=_frame(K))
        assert res.permutations.max_lod["y"].iloc[k] == pytest.approx(direct.table["lod"].max(), abs=1e-9)
    with pytest.raises(LMMInputError, match="strata column 'batch'"):
        scan(_dosage_genotypes(D), pheno, covar, kinship=_frame(K), n_perm=2, perm_strata="batch")


def test_lod_thresholds_are_quantiles_of_the_maxima():
    maxima = pd.DataFrame({"a": np.arange(1.0, 101.0), "b": np.linspace(0, 1, 100)})
    table = lod_thresholds(maxima, alphas=(0.05, 0.5))
    assert list(table.columns) == ["phenotype", "alpha", "lod_threshold", "n_perm"]
    row = table[(table.phenotype == "a") & (table.alpha == 0.05)].iloc[0]
    assert row.lod_threshold == pytest.approx(np.quantile(np.arange(1.0, 101.0), 0.95))
    assert row.n_perm == 100


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
def test_bad_inputs_raise_clear_errors(scan_data):
    D, K, X, y, pheno, covar = scan_data
    g = _dosage_genotypes(D)
    with pytest.raises(LMMInputError, match="no phenotype column named 'w'"):
        scan(g, pheno, kinship=_frame(K), select=["w"])
    with pytest.raises(LMMInputError, match="at least two chromosomes"):
        scan(_dosage_genotypes(D, ["1"] * D.shape[1]), pheno, kinship="loco")
    with pytest.raises(LMMInputError, match="no matrix for chromosome '2'"):
        scan(g, pheno, kinship={"1": _frame(K)})
    with pytest.raises(LMMInputError, match="must be square"):
        scan(g, pheno, kinship=K[:, :-1])
    with pytest.raises(LMMInputError, match="constant"):
        scan(g, pheno.assign(y=1.0), kinship=_frame(K))
    with pytest.raises(LMMInputError, match="individual"):
        other = pheno.copy()
        other.index = [f"x{k}" for k in range(N)]
        scan(g, other, kinship=_frame(K))
    with pytest.raises(LMMInputError, match="'loco', 'overall'"):
        scan(g, pheno, kinship="nearby")
    with pytest.raises(LMMInputError, match="method"):
        scan(g, pheno, kinship=_frame(K), method="bayes")


# --------------------------------------------------------------------------- #
# A centred kinship (K 1 = 0): the two ML conventions of the LRT
# --------------------------------------------------------------------------- #
@pytest.fixture
def centred_data(scan_data):
    D, _, X, y, pheno, covar = scan_data
    rng = np.random.default_rng(41)
    G = rng.binomial(2, rng.uniform(0.1, 0.9, 300), size=(N, 300)).astype(float)
    W = G - G.mean(axis=0)
    K = W @ W.T / 300  # GEMMA's -gk 1: singular, K 1 = 0
    return D, K, X, y, pheno, covar


def test_full_lrt_is_the_dense_likelihood_with_a_centred_kinship(centred_data):
    D, K, X, y, pheno, covar = centred_data
    assert np.abs(K @ np.ones(N)).max() < 1e-10
    # the full likelihood grows without bound as h2 -> 1 here; like GEMMA (lambda <= 1e5)
    # the search stops at FULL_ML_CAP (with a warning), and the value there is the dense density's
    with pytest.warns(LMMWarning, match="largest at the bound"):
        res = scan(_dosage_genotypes(D[:, :4]), pheno, covar, kinship=_frame(K), refit=True)
    t = res.table
    h0 = float(res.null["h2_ml"].iloc[0])
    assert h0 == pytest.approx(FULL_ML_CAP)
    assert res.null["loglik_ml"].iloc[0] == pytest.approx(ml_loglik(K, y, X, h0), abs=1e-7)
    _, L_interior = dense_variance_components_ml(K, y, X)
    assert res.null["loglik_ml"].iloc[0] >= L_interior - 1e-7
    for j in range(4):
        X1 = np.column_stack([X, D[:, j]])
        h1 = t["h2_ml"][j]
        assert 0 <= h1 <= FULL_ML_CAP
        assert t["loglik_ml"][j] == pytest.approx(ml_loglik(K, y, X1, h1), abs=1e-7)
        assert t["loglik_ml"][j] >= dense_variance_components_ml(K, y, X1)[1] - 1e-7
        assert t["lrt"][j] == pytest.approx(2 * (ml_loglik(K, y, X1, h1) - ml_loglik(K, y, X, h0)), abs=1e-6)


def test_projected_lrt_uses_the_ml_likelihood_of_lmmcore_fit(centred_data):
    from lmmcore import fit_lmm

    D, K, X, y, pheno, covar = centred_data
    res = scan(_dosage_genotypes(D[:, :4]), pheno, covar, kinship=_frame(K), refit=True,
               lrt_likelihood="projected")
    t = res.table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        null = fit_lmm(K, y, X, method="ml")
        assert res.null["loglik_ml"].iloc[0] == pytest.approx(null.loglik, abs=1e-8)
        for j in range(4):
            alt = fit_lmm(K, y, np.column_stack([X, D[:, j]]), method="ml")
            assert t["loglik_ml"][j] == pytest.approx(alt.loglik, abs=1e-7)
            assert t["h2_ml"][j] == pytest.approx(alt.h2, abs=1e-4)
            assert t["lrt"][j] == pytest.approx(2 * (alt.loglik - null.loglik), abs=1e-6)
    with pytest.warns(LMMWarning, match="bound"):
        full = scan(_dosage_genotypes(D[:, :4]), pheno, covar, kinship=_frame(K), refit=True).table
    # the conventions differ (by about 1/n relative), and only for the LRT
    assert not np.allclose(full["lrt"], t["lrt"], atol=1e-6)
    np.testing.assert_allclose(full["wald"], t["wald"], rtol=1e-5)
    np.testing.assert_allclose(full["lod"], t["lod"], rtol=1e-12)


# --------------------------------------------------------------------------- #
# LOCO with genotype probabilities and permutations; the API's conveniences
# --------------------------------------------------------------------------- #
def test_loco_permutations_keep_each_chromosomes_kinship_with_the_phenotypes(prob_data):
    P, K, X, y, pheno, covar = prob_data
    g = _prob_genotypes(P)
    mats = {c: _frame(Kc) for c, Kc in loco_kinships(P, g.chromosome, genotype_names=g.genotype_names).items()}
    lazy = scan(g, pheno, covar, kinship="loco", n_perm=3, seed=4)
    res = scan(g, pheno, covar, kinship=mats, n_perm=3, seed=4)
    np.testing.assert_allclose(lazy.table["lod"], res.table["lod"], atol=1e-9)
    np.testing.assert_allclose(lazy.permutations.max_lod, res.permutations.max_lod, atol=1e-9)
    for k, perm in enumerate(permutation_indices(N, 3, seed=4)):
        direct = scan(_prob_genotypes(P[perm]), pheno, covar, kinship=mats)
        # the genome-wide maximum over both chromosomes, each with its own kinship and null h2
        assert res.permutations.max_lod["y"].iloc[k] == pytest.approx(direct.table["lod"].max(), abs=1e-9)


def test_progress_reports_every_marker_scan(scan_data):
    D, K, X, y, pheno, covar = scan_data
    calls = []
    scan(_dosage_genotypes(D), pheno, covar, kinship=_frame(K), chunk=3, n_perm=2, seed=1,
         progress=lambda done, total, what: calls.append((done, total, what)))
    assert calls[-1][0] == calls[-1][1] == D.shape[1] * 3
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_lmmdata_supplies_phenotypes_and_covariates(scan_data):
    from lmmcore.io import LMMData

    D, K, X, y, pheno, covar = scan_data
    data = LMMData(tuple(_ids(N)), K, pheno, covar)
    a = scan(_dosage_genotypes(D), data, kinship=_frame(K)).table
    b = scan(_dosage_genotypes(D), pheno, covar, kinship=_frame(K)).table
    pd.testing.assert_frame_equal(a, b)


def test_peaks_lists_the_top_marker_of_each_chromosome(scan_data):
    D, K, X, y, pheno, covar = scan_data
    res = scan(_dosage_genotypes(D), pheno, covar, kinship=_frame(K))
    peaks = res.peaks(threshold=0.0)
    assert set(peaks["chr"]) == {"1", "2"}
    for _, row in peaks.iterrows():
        on_chr = res.table[res.table["chr"] == row["chr"]]
        assert row["lod"] == on_chr["lod"].max()


# --------------------------------------------------------------------------- #
# The exact scan's two ways of maximising a profile
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("centred", [False, True])
def test_interpolated_maxima_equal_brent_on_the_exact_profiles(monkeypatch, centred):
    """Chebyshev interpolation (the default) against Brent on the exact likelihood of every marker.

    Phenotypes with h2 near 0, in the middle and near 1, a strong QTL, and
    both a full-rank and a centred (singular, capped) kinship.
    """
    import lmmcore.refit as refit_module

    rng = np.random.default_rng(71)
    n, m = 120, 24
    D = rng.binomial(2, rng.uniform(0.1, 0.9, m), size=(n, m)).astype(float)
    if centred:
        G = rng.binomial(2, rng.uniform(0.1, 0.9, 500), size=(n, 500)).astype(float)
        W = G - G.mean(axis=0)
        K = W @ W.T / 500
    else:
        K = random_kinship(n, 500, seed=72)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    ys = {f"h{h}": simulate_y(K, X, np.array([1.0, 0.2]), h, 1.0, seed=73 + k) for k, h in enumerate([0.02, 0.5, 0.97])}
    ys["qtl"] = ys["h0.5"] + 1.0 * D[:, 5]
    ids = _ids(n)
    pheno = pd.DataFrame(ys, index=ids)
    covar = pd.DataFrame({"x": X[:, 1]}, index=ids)
    geno = _dosage_genotypes(D)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)  # null ML at the cap for the centred kinship
        fast = scan(geno, pheno, covar, kinship=_frame(K), refit=True)
        monkeypatch.setattr(refit_module, "REFIT_INTERPOLATION_TOL", -1.0)  # trust no interpolant
        exact = scan(geno, pheno, covar, kinship=_frame(K), refit=True)
    total = 2 * m * pheno.shape[1]
    assert exact.refit_exact_profiles == total
    assert fast.refit_exact_profiles < total / 4  # interpolation does most of the work
    a, b = fast.table, exact.table
    for col in ("loglik_ml", "loglik_reml"):
        # interpolation finds the same maximum, never a lower one
        np.testing.assert_allclose(a[col], b[col], atol=1e-7, rtol=0)
        assert np.all(a[col] >= b[col] - 1e-9)
    np.testing.assert_allclose(a["h2_ml"], b["h2_ml"], atol=2e-4)
    np.testing.assert_allclose(a["h2_reml"], b["h2_reml"], atol=2e-4)
    np.testing.assert_allclose(a["lrt"], b["lrt"], atol=2e-7)
    np.testing.assert_allclose(-np.log10(a["p_lrt"]), -np.log10(b["p_lrt"]), atol=1e-6)
    np.testing.assert_allclose(-np.log10(a["p_wald"]), -np.log10(b["p_wald"]), atol=1e-4)
    np.testing.assert_allclose(a["beta_wald_dosage"], b["beta_wald_dosage"], rtol=1e-4, atol=1e-8)
    # and the Wald statistics are the dense GLS ones at the reported REML h2
    for j in (0, 5, 17):
        row = a[(a["phenotype"] == "qtl") & (a["marker"] == f"m{j:02d}")].iloc[0]
        X1 = np.column_stack([X, D[:, j]])
        bb, rss, _, XtViX = gls(K + (1e-12 * np.eye(n) if centred else 0), ys["qtl"], X1, row["h2_reml"])
        se = np.sqrt(rss / (n - 3) * np.linalg.inv(XtViX)[2, 2])
        assert row["beta_wald_dosage"] == pytest.approx(bb[2], rel=1e-6)
        assert row["se_wald_dosage"] == pytest.approx(se, rel=1e-6)


def test_exact_ml_is_never_below_a_dense_search_with_a_centred_kinship(centred_data):
    """The full ML likelihood of a centred kinship has local maxima both inside and at the cap: every one is refined."""
    D, K, X, y, pheno, covar = centred_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        t = scan(_dosage_genotypes(D), pheno, covar, kinship=_frame(K), refit=True).table
    # a dense search: the density itself on a grid even in log(lambda) (h up to the cap), then refined
    grid = np.concatenate([[0.0], 1 / (1 + np.exp(-np.linspace(-8, np.log(1e5), 40)))])
    for j in range(5):
        X1 = np.column_stack([X, D[:, j]])
        values = np.array([ml_loglik(K, y, X1, h) for h in grid])
        best = int(np.argmax(values))
        lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
        res = optimize.minimize_scalar(lambda h: -ml_loglik(K, y, X1, h), bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-12})
        dense_max = max(values[best], -res.fun)
        assert t["loglik_ml"][j] >= dense_max - 1e-7
        assert t["loglik_ml"][j] == pytest.approx(dense_max, abs=1e-6)


def test_null_ml_fit_of_the_lrt_searches_every_bracket_of_a_two_peaked_profile():
    """Regression: the full-ML null fit refined only the best grid bracket and missed a narrow higher peak.

    The kinship has three tiny eigenvalues; with the phenotype's weight on those
    directions the null ML profile has a broad maximum at h2 = 0 (the best point of
    the 51-point grid) and a narrow, higher one between the last two grid points.
    The reference is a dense search of scipy's Gaussian density itself.
    """
    n = 30
    rng = np.random.default_rng(335)
    Q, _ = np.linalg.qr(np.column_stack([np.ones(n), rng.normal(size=(n, n - 1))]))
    d = np.concatenate([[1.0], rng.choice([1e-4, 1e-2], size=3), rng.uniform(0.5, 2, size=n - 4)])
    K = (Q * d) @ Q.T
    K = (K + K.T) / 2
    y = Q @ (rng.normal(size=n) * np.sqrt(rng.choice([0.01, 1, 10], size=n)))
    X = np.ones((n, 1))
    # the profile on the scan's grid peaks at h2 = 0; a dense grid finds a higher peak near 1
    grid = np.linspace(0.0, 1.0, 51)
    on_grid = np.array([ml_loglik(K, y, X, h) for h in grid])
    assert np.argmax(on_grid) == 0
    fine = np.linspace(0.96, 1.0 - 1e-9, 4001)
    dense = np.array([ml_loglik(K, y, X, h) for h in fine])
    best = int(np.argmax(dense))
    res = optimize.minimize_scalar(lambda h: -ml_loglik(K, y, X, h), method="bounded",
                                   bounds=(fine[max(best - 1, 0)], fine[min(best + 1, fine.size - 1)]),
                                   options={"xatol": 1e-12})
    h_dense, L_dense = res.x, -res.fun
    # the broad peak at 0 is far lower: refining only the best grid bracket gives a wrong null fit
    inside = np.linspace(0.0, grid[1], 201)
    assert max(ml_loglik(K, y, X, h) for h in inside) < L_dense - 1.0

    D = np.random.default_rng(1).integers(0, 3, size=(n, 4)).astype(float)
    geno = _dosage_genotypes(D, chrom=["1"] * 4)
    pheno = pd.DataFrame({"y": y}, index=_ids(n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        null = scan(geno, pheno, kinship=_frame(K), refit=True).null.iloc[0]
    assert null["h2_ml"] == pytest.approx(h_dense, abs=1e-5)
    assert null["loglik_ml"] >= L_dense - 1e-7
    assert null["loglik_ml"] == pytest.approx(L_dense, abs=1e-6)
