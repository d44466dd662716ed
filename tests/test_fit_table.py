"""The fit's table from whole columns (``fit_table``, ``fit_columns``) is the table of the FitResult objects.

``lmmcore fit`` writes ``fit_table``; the dashboard and the Python API use
``fit_phenotypes`` + ``results_table``. Both must give the same bytes, also
when patterns have different coefficients and the selection reorders the
phenotypes; each fitted number is checked against the one-phenotype fit on
a dense kinship (``fit_lmm``) and the likelihood against the dense density.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import random_kinship, simulate_y
from dense import loglik
from lmmcore import LMMInputError, align, fit_lmm, fit_phenotypes, results_table
from lmmcore.batch_table import fit_table
from lmmcore.cli import main
from lmmcore.fit import fit_columns, fit_rotated
from lmmcore.eigen import decompose_kinship, rotate
from lmmcore.optimize import maximize_profile, profile_maxima


def make_data(n=70, seed=5):
    """Four patterns; in one of them every individual is female, so ``sex[m]`` is dropped there."""
    ids = [f"A{i:03d}" for i in range(n)]
    K = random_kinship(n, 250, seed=seed)
    rng = np.random.default_rng(seed)
    sex = np.where(np.arange(n) < 35, "f", "m")
    age = rng.normal(size=n)
    X = np.column_stack([np.ones(n), (sex == "m").astype(float), age])
    P = pd.DataFrame({f"t{j}": simulate_y(K, X, np.array([3.0, 1.0, 0.5]), 0.12 * j, 1.0 + j, seed=seed + j)
                      for j in range(7)}, index=ids)
    P.loc[ids[:5], ["t1", "t4"]] = np.nan
    P.loc[ids[35:], "t2"] = np.nan  # only females: sex[m] is constant, left out of that design
    P.loc[ids[20:23], "t6"] = np.nan
    P["t5"] = P["t5"] * 1e-5 + 1e3  # another scale and mean
    kin = pd.DataFrame(K, index=ids, columns=ids)
    cov = pd.DataFrame({"sex": sex, "age": age}, index=ids)
    return kin, P, cov


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("selection", [None, ["t6", "t2", "t0", "t4", "t5"]])
def test_table_from_columns_is_the_table_of_the_fit_results(method, selection):
    kin, P, cov = make_data()
    data = align(kin, P, cov)
    with pytest.warns(Warning):  # sex is constant on t2's individuals
        fits = fit_phenotypes(data, selection, method=method)
    with pytest.warns(Warning):
        table = fit_table(data, selection, method=method)
    expected = results_table(fits)
    assert list(table.columns) == list(expected.columns)
    assert (table.dtypes == expected.dtypes).all()
    assert table.to_csv(index=False) == expected.to_csv(index=False)
    t2 = table.set_index("phenotype").loc["t2"]
    assert np.isnan(t2["beta_sex[m]"]) and np.isfinite(t2["beta_age"])


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_fit_columns_against_the_dense_one_phenotype_fit(method):
    kin, P, cov = make_data()
    keep = P["t6"].notna().to_numpy()
    K = kin.to_numpy()[np.ix_(keep, keep)]
    X = np.column_stack([np.ones(keep.sum()), (cov["sex"].to_numpy()[keep] == "m"), cov["age"].to_numpy()[keep]])
    Y = P.loc[keep, ["t6"]].to_numpy()
    cols = fit_columns(rotate(decompose_kinship(K), Y, X), method, phenotype_names=["t6"],
                       coef_names=["intercept", "sex[m]", "age"])
    alone = fit_lmm(K, Y[:, 0], X, method=method, coef_names=["intercept", "sex[m]", "age"])
    assert cols["h2"][0] == pytest.approx(alone.h2, abs=1e-6)
    np.testing.assert_allclose([cols["beta_intercept"][0], cols["beta_sex[m]"][0], cols["beta_age"][0]],
                               alone.beta, rtol=1e-6)
    # the log-likelihood is the dense density at the fitted parameters
    h, s2 = cols["h2"][0], cols["sigma2"][0]
    beta = np.array([cols["beta_intercept"][0], cols["beta_sex[m]"][0], cols["beta_age"][0]])
    assert cols["loglik"][0] == pytest.approx(loglik(K, Y[:, 0], X, h, method), abs=1e-6)
    assert s2 > 0 and np.isfinite(beta).all()


def test_profile_maxima_as_a_sequence_is_maximize_profile():
    kin, P, cov = make_data()
    K = kin.to_numpy()
    Y = P[["t0", "t3", "t5"]].to_numpy()
    rot = rotate(decompose_kinship(K), Y, np.ones((K.shape[0], 1)))
    maxima = profile_maxima(rot, "reml")
    listed = maximize_profile(rot, "reml")
    assert len(maxima) == len(listed) == 3
    for j, o in enumerate(listed):
        assert maxima[j].h2 == o.h2 == maxima.h2[j] and maxima[j].loglik == o.loglik
        assert (maxima[j].boundary, maxima[j].converged, maxima[j].message) == (o.boundary, o.converged, o.message)
        assert maxima[j].n_evals == o.n_evals and maxima[j].n_searches == o.n_searches
        np.testing.assert_array_equal(maxima[j].grid_loglik, maxima.grid_loglik[:, j])
        np.testing.assert_array_equal(maxima[j].trace.h2, o.trace.h2)
    assert maxima[-1].h2 == listed[-1].h2
    # the grid's maximum is never above the optimum (brute force on a fine grid)
    fine = np.linspace(0.0, 1.0, 2001)
    from lmmcore.likelihood import profile_loglik

    assert np.all(profile_loglik(rot, fine, "reml").max(axis=0) <= maxima.loglik + 1e-9)


def test_fit_rotated_refuses_names_that_do_not_match_the_columns():
    kin, P, _ = make_data()
    rot = rotate(decompose_kinship(kin.to_numpy()), P[["t0", "t3"]].to_numpy(), np.ones((len(P), 1)))
    with pytest.raises(ValueError, match="one name each"):
        fit_rotated(rot, phenotype_names=["only_one"])


def test_phenotype_named_twice_is_an_input_error_not_a_shifted_table(tmp_path):
    # the selection t5,t0,t5 made table[names] hold t5 twice: main raised IndexError (an internal error)
    kin, P, cov = make_data()
    data = align(kin, P, cov)
    for fit in (fit_phenotypes, fit_table):
        with pytest.raises(LMMInputError, match="'t5' is named more than once"):
            fit(data, ["t5", "t0", "t5"])
    kin.to_csv(tmp_path / "K.csv")
    P.to_csv(tmp_path / "P.csv")
    code = main(["fit", "--kinship", str(tmp_path / "K.csv"), "--pheno", str(tmp_path / "P.csv"),
                 "--phenotypes", "t5,t0,t5", "--out", str(tmp_path / "out.csv"), "--quiet"])
    assert code == 2 and not (tmp_path / "out.csv").exists()


def test_cli_fit_writes_the_table_of_the_fit_results(tmp_path):
    kin, P, cov = make_data()
    for name, frame in (("K", kin), ("P", P), ("C", cov)):
        frame.to_csv(tmp_path / f"{name}.csv")
    out = tmp_path / "out.csv"
    code = main(["fit", "--kinship", str(tmp_path / "K.csv"), "--pheno", str(tmp_path / "P.csv"),
                 "--covar", str(tmp_path / "C.csv"), "--out", str(out), "--quiet"])
    assert code == 0
    with pytest.warns(Warning):
        fits = fit_phenotypes(align(kin, P, cov))
    assert out.read_text() == results_table(fits).to_csv(index=False)


def _many_traits(n=60, T=11, seed=9):
    ids = [f"B{i:03d}" for i in range(n)]
    K = random_kinship(n, 200, seed=seed)
    X = np.ones((n, 1))
    P = pd.DataFrame({f"y{j}": simulate_y(K, X, np.array([1.0]), (j % 5) / 5, 1.0, seed=seed + j) for j in range(T)},
                     index=ids)
    P.loc[ids[:3], ["y1", "y2", "y7"]] = np.nan  # a second pattern of three
    return align(pd.DataFrame(K, index=ids, columns=ids), P), K, P


@pytest.mark.parametrize("block", [1, 3, 4])
def test_a_fit_in_blocks_is_the_fit_of_each_block_alone_byte_for_byte(block):
    # what makes `lmmcore fit --scheduler` (tasks of whole blocks) equal to the in-process fit
    data, K, P = _many_traits()
    whole = fit_table(data, block=block)
    assert whole.to_csv(index=False) == results_table(fit_phenotypes(data, block=block)).to_csv(index=False)
    alone = {}
    for pattern in (["y0", "y3", "y4", "y5", "y6", "y8", "y9", "y10"], ["y1", "y2", "y7"]):
        for k in range(0, len(pattern), block):
            alone.update({f.phenotype: f for f in fit_phenotypes(data, pattern[k:k + block])})
    expected = results_table([alone[name] for name in P.columns])
    assert whole.to_csv(index=False) == expected.to_csv(index=False)
    # and every block's answer is the dense fit of its phenotype
    for name in ("y0", "y7"):
        keep = P[name].notna().to_numpy()
        ref = fit_lmm(K[np.ix_(keep, keep)], P.loc[keep, name].to_numpy())
        row = whole.set_index("phenotype").loc[name]
        assert row["h2"] == pytest.approx(ref.h2, abs=1e-6)
        assert row["loglik"] == pytest.approx(loglik(K[np.ix_(keep, keep)], P.loc[keep, name].to_numpy(),
                                                     np.ones((keep.sum(), 1)), ref.h2, "reml"), abs=1e-6)


def test_the_scheduler_help_names_the_fit_block():
    from lmmcore.batch import FIT_BLOCK
    from lmmcore.cli import build_parser

    fit = build_parser()._subparsers._group_actions[0].choices["fit"]
    assert f"blocks of {FIT_BLOCK} phenotypes" in " ".join(fit.format_help().split())
