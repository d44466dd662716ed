"""Many phenotypes: missingness patterns share one eigendecomposition; batch = one at a time."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import random_kinship, simulate_y
from dense import loglik
from lmmcore import LMMWarning, align, design_matrix, fit_lmm, fit_phenotypes, missingness_patterns, profile_table


def make_data(n=60, n_pheno=6, seed=31):
    ids = [f"M{i:03d}" for i in range(n)]
    K = random_kinship(n, 300, seed=seed)
    rng = np.random.default_rng(seed + 1)
    sex = rng.choice(["f", "m"], size=n)
    X = np.column_stack([np.ones(n), (sex == "m").astype(float)])
    cols = {}
    for j in range(n_pheno):
        y = simulate_y(K, X, np.array([10.0, 1.0]), 0.15 * j, 1.0 + j, seed=seed + 10 + j)
        cols[f"trait{j}"] = y
    P = pd.DataFrame(cols, index=ids)
    # three missingness patterns: complete (traits 0, 3, 5), pattern A (1, 4), pattern B (2)
    P.loc[ids[:4], ["trait1", "trait4"]] = np.nan
    P.loc[ids[10:13], "trait2"] = np.nan
    kin = pd.DataFrame(K, index=ids, columns=ids)
    cov = pd.DataFrame({"sex": sex}, index=ids)
    return kin, P, cov


def test_patterns_group_phenotypes_by_missing_individuals():
    _, P, _ = make_data()
    pats = missingness_patterns(P)
    assert [p.phenotypes for p in pats] == [("trait0", "trait3", "trait5"), ("trait1", "trait4"), ("trait2",)]
    assert [p.n for p in pats] == [60, 56, 57]


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_batch_fit_equals_each_phenotype_alone(method):
    kin, P, cov = make_data()
    data = align(kin, P, cov)
    cache: dict = {}
    fits = fit_phenotypes(data, method=method, cache=cache)
    assert len(cache) == 3  # one eigendecomposition per missingness pattern
    assert [f.phenotype for f in fits] == list(P.columns)
    for f in fits:
        y = P[f.phenotype]
        keep = y.notna().to_numpy()
        K = kin.to_numpy()[np.ix_(keep, keep)]
        X = np.column_stack([np.ones(keep.sum()), (cov["sex"].to_numpy()[keep] == "m").astype(float)])
        alone = fit_lmm(K, y.to_numpy()[keep], X, method=method)
        assert f.n == keep.sum()
        assert f.h2 == pytest.approx(alone.h2, abs=1e-6)  # both pinned to the promised 1e-6
        assert f.loglik == pytest.approx(alone.loglik, abs=1e-8)
        np.testing.assert_allclose(f.beta, alone.beta, rtol=1e-7)
        assert f.coef_names == ("intercept", "sex[m]")
        # and the likelihood is the dense density at that h2
        assert f.loglik == pytest.approx(loglik(K, y.to_numpy()[keep], X, f.h2, method), abs=1e-8)


def test_profile_table_equals_dense_likelihood():
    kin, P, cov = make_data()
    data = align(kin, P, cov)
    table = profile_table(data, ["trait2"], np.linspace(0, 1, 5), method="reml")
    assert list(table.columns) == ["phenotype", "method", "h2", "loglik"]
    keep = P["trait2"].notna().to_numpy()
    K = kin.to_numpy()[np.ix_(keep, keep)]
    X = np.column_stack([np.ones(keep.sum()), (cov["sex"].to_numpy()[keep] == "m").astype(float)])
    dense = [loglik(K, P["trait2"].to_numpy()[keep], X, h, "reml") for h in np.linspace(0, 1, 5)]
    np.testing.assert_allclose(table["loglik"], dense, atol=1e-8)


def test_text_covariates_become_named_indicators_and_intercept_is_added():
    cov = pd.DataFrame({"sex": ["f", "m", "m", "f"], "age": [1.0, 2.0, 3.0, 5.0]})
    d = design_matrix(cov, 4)
    assert d.names == ("intercept", "sex[m]", "age")
    np.testing.assert_array_equal(d.matrix[:, 1], [0, 1, 1, 0])
    assert d.intercept_added


def test_existing_constant_column_means_no_added_intercept():
    cov = pd.DataFrame({"one": [1.0] * 5, "x": [1.0, 2.0, 3.0, 4.0, 6.0]})
    d = design_matrix(cov, 5)
    assert d.names == ("one", "x") and not d.intercept_added


def test_dependent_columns_are_dropped_with_a_warning_naming_them():
    x = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    cov = pd.DataFrame({"x": x, "x2": 2 * x + 1, "z": [0.0, 1.0, 0.0, 1.0, 1.0]})
    with pytest.warns(LMMWarning, match="x2"):
        d = design_matrix(cov, 5, "cov.csv")
    assert d.names == ("intercept", "x", "z")
    assert d.dropped == ("x2",)


def test_kinship_scale_option_gives_the_documented_h2():
    from lmmcore import rescale_h2

    kin, P, cov = make_data()
    data = align(kin, P, cov)
    a = fit_phenotypes(data, ["trait3"], method="ml")[0]
    b = fit_phenotypes(data, ["trait3"], method="ml", kinship_scale=2)[0]
    c = fit_phenotypes(data, ["trait3"], method="ml", kinship_scale="diag")[0]
    assert b.h2 == pytest.approx(float(rescale_h2(a.h2, 2.0)), abs=1e-6)
    factor = len(kin) / np.trace(kin.to_numpy())
    assert c.h2 == pytest.approx(float(rescale_h2(a.h2, factor)), abs=1e-6)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8) and c.kinship_scale == pytest.approx(factor)


def test_alignment_drops_and_counts_unmatched_ids():
    kin, P, cov = make_data()
    P2 = P.iloc[3:]  # three individuals have no phenotype row
    cov2 = cov.copy()
    cov2.iloc[10, 0] = np.nan  # one with a missing covariate
    with pytest.warns(LMMWarning, match="dropped"):
        data = align(kin, P2, cov2)
    assert data.n == 56
    assert data.n_dropped == 4
    assert "dropped 4" in data.summary()


def test_one_cache_can_serve_two_data_sets_of_the_same_size():
    """Regression: the cache was keyed by missingness pattern only, so a second kinship reused the first's."""
    kin, P, cov = make_data(seed=31)
    kin2, _, _ = make_data(seed=77)
    cache: dict = {}
    a = fit_phenotypes(align(kin, P, cov), ["trait3"], cache=cache)[0]
    b = fit_phenotypes(align(kin2, P, cov), ["trait3"], cache=cache)[0]
    fresh = fit_phenotypes(align(kin2, P, cov), ["trait3"])[0]
    assert len(cache) == 2
    assert b.loglik == pytest.approx(fresh.loglik, abs=1e-10) and b.loglik != pytest.approx(a.loglik)


# ---------------------------------------------------------------- one pattern, one pipeline


def test_prepare_pattern_is_decompose_design_rotate_of_the_observed_individuals():
    """The PatternModel's rotated data equal a fresh eigh of the sub-kinship, rotation and design (sign-free checks)."""
    from lmmcore import prepare_pattern

    kin, P, cov = make_data()
    data = align(kin, P, cov)
    model = prepare_pattern(data, ["trait1", "trait4"], kinship_scale=2.0)
    keep = P["trait1"].notna().to_numpy()
    K = kin.to_numpy()[np.ix_(keep, keep)]
    X = np.column_stack([np.ones(keep.sum()), (cov["sex"].to_numpy()[keep] == "m").astype(float)])
    y = P.loc[keep, ["trait1", "trait4"]].to_numpy()
    assert model.ids == tuple(P.index[keep]) and model.phenotypes == ("trait1", "trait4") and model.n == 56
    assert model.design.names == ("intercept", "sex[m]") and model.kinship_scale == 2.0
    np.testing.assert_allclose(model.eig.values, np.clip(np.linalg.eigvalsh(K), 0, None), atol=1e-10)
    np.testing.assert_allclose(model.rot.d, 2.0 * model.eig.values)
    # U'y, U'X up to the eigenvectors' signs: U y* = y and the Gram matrices agree
    np.testing.assert_allclose(model.eig.vectors @ model.rot.y, y, atol=1e-9)
    np.testing.assert_allclose(model.rot.X.T @ model.rot.y, X.T @ y, rtol=1e-10)
    # and the pattern's fit is the dense optimum on 2 K
    for f in model.fit("reml"):
        yy = P.loc[keep, f.phenotype].to_numpy()
        assert f.loglik == pytest.approx(loglik(2.0 * K, yy, X, f.h2, "reml"), abs=1e-8)


def test_prepare_pattern_refuses_phenotypes_of_different_patterns():
    from lmmcore import LMMInputError, prepare_pattern

    kin, P, cov = make_data()
    data = align(kin, P, cov)
    with pytest.raises(LMMInputError, match="different individuals"):
        prepare_pattern(data, ["trait0", "trait1"])
    with pytest.raises(LMMInputError, match="no phenotype column named 'nope'"):
        prepare_pattern(data, "nope")


def test_pattern_cache_rotates_each_pattern_once_for_fit_and_profile(monkeypatch):
    """With a PatternCache the profile after a fit decomposes and rotates nothing again; values stay dense-exact."""
    import lmmcore.batch
    from lmmcore import PatternCache

    kin, P, cov = make_data()
    data = align(kin, P, cov)
    calls = {"rotate": 0, "decompose": 0}
    rotate, decompose = lmmcore.batch.rotate, lmmcore.batch.decompose_kinship

    def counting_rotate(*a, **k):
        calls["rotate"] += 1
        return rotate(*a, **k)

    def counting_decompose(*a, **k):
        calls["decompose"] += 1
        return decompose(*a, **k)

    monkeypatch.setattr(lmmcore.batch, "rotate", counting_rotate)
    monkeypatch.setattr(lmmcore.batch, "decompose_kinship", counting_decompose)
    cache = PatternCache()
    fits = fit_phenotypes(data, cache=cache)
    table = profile_table(data, h2=np.array([0.0, 0.4]), cache=cache)
    assert calls == {"rotate": 3, "decompose": 3} and len(cache) == 3
    for f in fits:
        keep = P[f.phenotype].notna().to_numpy()
        K = kin.to_numpy()[np.ix_(keep, keep)]
        X = np.column_stack([np.ones(keep.sum()), (cov["sex"].to_numpy()[keep] == "m").astype(float)])
        got = table.loc[table.phenotype == f.phenotype, "loglik"].to_numpy()
        dense = [loglik(K, P.loc[keep, f.phenotype].to_numpy(), X, h, "reml") for h in (0.0, 0.4)]
        np.testing.assert_allclose(got, dense, atol=1e-8)
    # a plain dict still works and keeps decompositions only (the old behaviour)
    plain: dict = {}
    fit_phenotypes(data, ["trait2"], cache=plain)
    profile_table(data, ["trait2"], cache=plain)
    assert len(plain) == 1 and calls["rotate"] == 5


def test_check_phenotype_refuses_too_few_infinite_and_constant_values():
    from lmmcore import LMMInputError, check_phenotype

    nan = np.nan
    check_phenotype("a", np.array([1.0, 2.0, nan, 4.0]))  # fine: no error
    cases = {
        "has no observed value": [nan, nan, nan],
        "has only 2 observed": [1.0, nan, 2.0],
        "has infinite": [1.0, np.inf, 2.0, 3.0],
        "is constant": [3.0, 3.0, nan, 3.0],
    }
    for text, values in cases.items():
        with pytest.raises(LMMInputError, match=r"^pheno.csv: phenotype 'a' " + text):
            check_phenotype("a", np.array(values), "pheno.csv")
    with pytest.raises(LMMInputError) as err:
        check_phenotype("b", np.array([1.0, 2.0]), among="among the genotyped individuals", task="a scan")
    assert str(err.value).startswith(
        "phenotype 'b' has only 2 observed value(s) among the genotyped individuals; a scan needs at least 3"
    )


def test_fit_phenotypes_sends_design_messages_to_report():
    """report= receives what the design drops (a one-level text column); nothing becomes a warning."""
    kin, P, cov = make_data()
    cov = cov.assign(site="lab1")
    data = align(kin, P, cov)
    got: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", LMMWarning)
        fits = fit_phenotypes(data, ["trait0"], report=got.append)
    assert fits[0].coef_names == ("intercept", "sex[m]")
    assert any("'site'" in m and "left out" in m for m in got)
