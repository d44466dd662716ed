"""Saved eigendecompositions (`lmmcore eigen`, `--eigen`): round trip, identical results, clear refusals."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import random_kinship, simulate_y
from lmmcore.batch import PatternCache, fit_phenotypes, profile_table
from lmmcore.cli import main
from lmmcore.eigen import decompose_kinship
from lmmcore.eigenstore import (decompose_kinships, kinship_hash, load_data_with_eigen, read_eigen,
                                read_kinship_h5, seed_cache, write_eigen, write_kinship_h5)
from lmmcore.errors import LMMInputError
from lmmcore.io import load_data


@pytest.fixture
def files(tmp_path):
    """50 individuals, 5 chromosomes of dosages, two phenotypes (one missing for 4 individuals)."""
    n, m = 50, 60
    ids = [f"ind{i}" for i in range(n)]
    rng = np.random.default_rng(7)
    G = rng.binomial(2, rng.uniform(0.1, 0.9, m), size=(n, m)).astype(float)
    K = random_kinship(n, 250, seed=41)
    X = np.ones((n, 1))
    P = pd.DataFrame({"a": simulate_y(K, X, np.array([1.0]), 0.5, 1.0, 43) + G[:, 3],
                      "b": simulate_y(K, X, np.array([0.0]), 0.3, 2.0, 44)}, index=ids)
    P.iloc[[1, 5, 9, 20], 1] = np.nan
    paths = {k: tmp_path / f"{k}.csv" for k in ("kinship", "pheno", "geno", "map")}
    pd.DataFrame(K, index=ids, columns=ids).to_csv(paths["kinship"], index_label="")
    P.to_csv(paths["pheno"], index_label="", na_rep="NA")
    markers = [f"m{j}" for j in range(m)]
    pd.DataFrame(G, index=ids, columns=markers).to_csv(paths["geno"], index_label="")
    pd.DataFrame({"marker": markers, "chr": np.repeat([1, 2, 3, 4, 5], m // 5),
                  "pos": np.tile(np.arange(m // 5) * 5.0, 5)}).to_csv(paths["map"], index=False)
    return tmp_path, paths, K, ids


def _cli(args, capsys):
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


def test_round_trip_is_exact_and_matches_a_fresh_decomposition(tmp_path):
    K = random_kinship(30, 20, seed=3)  # rank-deficient: zero eigenvalues survive the trip
    ids = [f"x{i}" for i in range(30)]
    saved = decompose_kinships(K, ids)
    write_eigen(saved, tmp_path / "K.eig")
    back = read_eigen(tmp_path / "K.eig")
    fresh = decompose_kinship(K)
    assert back.ids == tuple(ids) and back.mode == "overall" and back.labels == ("all",)
    eig = back.decomposition("all")
    assert np.array_equal(eig.values, fresh.values) and np.array_equal(eig.vectors, fresh.vectors)
    assert eig.n_zero == fresh.n_zero > 0
    assert back.hashes["all"] == kinship_hash(K, ids)
    # U diag(d) U' recovers K (independent check of what was stored)
    np.testing.assert_allclose(back.kinship(), K, atol=1e-12)
    # LOCO: one decomposition per chromosome, labels in order
    loco = decompose_kinships({"1": K, "2": 2 * K}, ids)
    write_eigen(loco, tmp_path / "L.eig")
    back = read_eigen(tmp_path / "L.eig")
    assert back.mode == "loco" and back.labels == ("1", "2")
    np.testing.assert_array_equal(back.decomposition("2").values, decompose_kinship(2 * K).values)


def test_binary_kinship_round_trip(tmp_path):
    K = random_kinship(12, 40, seed=5)
    ids = [f"x{i}" for i in range(12)]
    write_kinship_h5(K, ids, tmp_path / "K.h5")
    back = read_kinship_h5(tmp_path / "K.h5")
    assert list(back.index) == ids and np.array_equal(back.to_numpy(), K)
    write_kinship_h5({"1": K, "2": K / 2}, ids, tmp_path / "L.h5")
    loco = read_kinship_h5(tmp_path / "L.h5")
    assert list(loco) == ["1", "2"] and np.array_equal(loco["2"].to_numpy(), K / 2)


def test_hash_depends_on_values_and_ids():
    K = random_kinship(10, 30, seed=1)
    ids = [str(i) for i in range(10)]
    h = kinship_hash(K, ids)
    K2 = K.copy()
    K2[0, 1] = K2[1, 0] = np.nextafter(K[0, 1], 1)
    assert kinship_hash(K2, ids) != h
    assert kinship_hash(K, ids[::-1]) != h
    assert kinship_hash(np.asfortranarray(K), ids) == h


def test_fit_and_scan_with_eigen_are_identical_to_without(files, capsys):
    tmp, paths, K, ids = files
    assert _cli(["eigen", "--kinship", paths["kinship"], "--out", tmp / "K.eig", "--quiet"], capsys)[0] == 0
    base = ["--pheno", paths["pheno"], "--quiet"]
    assert _cli(["fit", "--kinship", paths["kinship"], *base, "--phenotypes", "a", "--out", tmp / "f1.csv"],
                capsys)[0] == 0
    assert _cli(["fit", "--eigen", tmp / "K.eig", *base, "--phenotypes", "a", "--out", tmp / "f2.csv"],
                capsys)[0] == 0
    assert (tmp / "f1.csv").read_bytes() == (tmp / "f2.csv").read_bytes()
    geno = ["--genotypes", paths["geno"], "--map", paths["map"]]
    assert _cli(["scan", *geno, "--kinship", paths["kinship"], *base, "--phenotypes", "a", "--refit",
                 "--out", tmp / "s1.csv"], capsys)[0] == 0
    assert _cli(["scan", *geno, "--eigen", tmp / "K.eig", *base, "--phenotypes", "a", "--refit",
                 "--out", tmp / "s2.csv"], capsys)[0] == 0
    assert (tmp / "s1.csv").read_bytes() == (tmp / "s2.csv").read_bytes()
    # LOCO from the genotypes, against the LOCO kinship file of `lmmcore kinship --loco`
    assert _cli(["kinship", *geno, "--loco", "--out", tmp / "L.csv", "--quiet"], capsys)[0] == 0
    assert _cli(["eigen", "--kinship", tmp / "L.csv", "--out", tmp / "L.eig", "--quiet"], capsys)[0] == 0
    assert read_eigen(tmp / "L.eig").labels == ("1", "2", "3", "4", "5")
    assert _cli(["scan", *geno, "--kinship", tmp / "L.csv", *base, "--out", tmp / "s3.csv"], capsys)[0] == 0
    assert _cli(["scan", *geno, "--eigen", tmp / "L.eig", "--kinship", tmp / "L.csv", *base,
                 "--out", tmp / "s4.csv"], capsys)[0] == 0
    s3, s4 = pd.read_csv(tmp / "s3.csv"), pd.read_csv(tmp / "s4.csv")
    full = s3["phenotype"] == "a"  # observed on every individual: the saved decomposition, bit for bit
    assert s3[full].equals(s4[full])
    # 'b' misses 4 individuals: its sub-kinship is recovered and decomposed again
    np.testing.assert_allclose(s4.loc[~full, "lod"], s3.loc[~full, "lod"], rtol=0, atol=1e-8)


def test_subset_pattern_equals_decomposing_the_sub_kinship(files):
    tmp, paths, K, ids = files
    saved = decompose_kinships(K, ids)
    data = load_data_with_eigen(saved, paths["pheno"])
    cache = PatternCache()
    assert seed_cache(cache, data, saved)
    with_eigen = fit_phenotypes(data, ["b"], cache=cache, tol=1e-10)[0]
    obs = ~np.isnan(data.phenotypes["b"].to_numpy())
    assert len(cache) == 2  # the seeded full set, and the subset decomposed again
    sub = cache.decompositions[next(k for k in cache.decompositions if cache.decompositions[k].n == obs.sum())]
    direct = decompose_kinship(K[np.ix_(obs, obs)])  # the sub-kinship of the original K, decomposed directly
    np.testing.assert_allclose(sub.values, direct.values, atol=1e-10)
    plain_data = load_data(paths["kinship"], paths["pheno"])
    plain = fit_phenotypes(plain_data, ["b"], tol=1e-10)[0]
    assert abs(with_eigen.loglik - plain.loglik) < 1e-10
    assert abs(with_eigen.h2 - plain.h2) < 1e-6  # a flat optimum: h2 moves more than the log-likelihood
    grid = np.linspace(0, 1, 11)  # the profile at fixed h2 is the same function, to 1e-10
    np.testing.assert_allclose(profile_table(data, ["b"], grid, cache=cache)["loglik"],
                               profile_table(plain_data, ["b"], grid)["loglik"], rtol=0, atol=1e-10)


@pytest.mark.parametrize("case, words", [
    ("ids", ["different individuals", "z0"]),
    ("hash", ["sha256", "not the kinship"]),
    ("not-eigen", ["not an HDF5 file"]),
    ("kinship-h5", ["not an lmmcore-eigen file"]),
    ("loco-fit", ["LOCO", "overall"]),
])
def test_mismatches_exit_2_with_one_sentence(files, capsys, case, words):
    tmp, paths, K, ids = files
    eig = tmp / "K.eig"
    write_eigen(decompose_kinships(K, ids), eig)
    kin = paths["kinship"]
    if case == "ids":
        other = [f"z{i}" for i in range(len(ids) - 1)] + [ids[-1]]
        write_eigen(decompose_kinships(K, other), eig, force=True)
    elif case == "hash":
        K2 = K.copy()
        K2[0, 0] += 1e-3
        pd.DataFrame(K2, index=ids, columns=ids).to_csv(tmp / "K2.csv", index_label="")
        kin = tmp / "K2.csv"
    elif case == "not-eigen":
        eig = paths["kinship"]
    elif case == "kinship-h5":
        write_kinship_h5(K, ids, tmp / "K.h5")
        eig = tmp / "K.h5"
    elif case == "loco-fit":
        write_eigen(decompose_kinships({"1": K, "2": K}, ids), eig, force=True)
    args = ["fit", "--eigen", eig, "--pheno", paths["pheno"], "--out", tmp / "out.csv"]
    if case in ("ids", "hash"):
        args += ["--kinship", kin]
    status, err = _cli(args, capsys)
    assert status == 2, err
    lines = [x for x in err.splitlines() if x.startswith("lmmcore: error:")]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]
    assert "Traceback" not in err and not (tmp / "out.csv").exists()


def test_help_does_not_import_pandas_or_scipy():
    code = ("import sys, contextlib, io\nfrom lmmcore.cli import main\n"
            "for argv in (['--help'], ['fit', '--help'], ['scan', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try: main(argv)\n"
            "        except SystemExit: pass\n"
            "print(sorted(m for m in ('pandas', 'scipy', 'h5py') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_binary_kinship_from_the_cli_gives_the_same_fit_and_scan(files, capsys):
    tmp, paths, K, ids = files
    geno = ["--genotypes", paths["geno"], "--map", paths["map"]]
    assert _cli(["kinship", *geno, "--out", tmp / "K.csv", "--quiet"], capsys)[0] == 0
    assert _cli(["kinship", *geno, "--out", tmp / "K.h5", "--quiet"], capsys)[0] == 0
    csv_k = pd.read_csv(tmp / "K.csv", index_col=0)
    h5_k = read_kinship_h5(tmp / "K.h5")
    np.testing.assert_allclose(h5_k.to_numpy(), csv_k.to_numpy(), rtol=1e-15, atol=0)  # CSV keeps 17 digits
    for flag in ("--kinship", "--eigen"):
        if flag == "--eigen":
            assert _cli(["eigen", "--kinship", tmp / "K.h5", "--out", tmp / "K.eig", "--quiet"], capsys)[0] == 0
        src = tmp / ("K.h5" if flag == "--kinship" else "K.eig")
        assert _cli(["fit", flag, src, "--pheno", paths["pheno"], "--phenotypes", "a", "--quiet",
                     "--out", tmp / f"fit{flag}.csv"], capsys)[0] == 0
    assert (tmp / "fit--kinship.csv").read_bytes() == (tmp / "fit--eigen.csv").read_bytes()


def test_effects_with_eigen_equal_effects_with_the_kinship(files, capsys):
    tmp, paths, K, ids = files
    geno = ["--genotypes", paths["geno"], "--map", paths["map"]]
    assert _cli(["eigen", *geno, "--loco", "--out", tmp / "L.eig", "--quiet"], capsys)[0] == 0
    assert _cli(["kinship", *geno, "--loco", "--out", tmp / "L.csv", "--quiet"], capsys)[0] == 0
    common = [*geno, "--pheno", paths["pheno"], "--phenotypes", "a", "--chr", "1", "--quiet"]
    assert _cli(["effects", *common, "--kinship", tmp / "L.csv", "--out", tmp / "e1.csv"], capsys)[0] == 0
    assert _cli(["effects", *common, "--eigen", tmp / "L.eig", "--out", tmp / "e2.csv"], capsys)[0] == 0
    e1, e2 = pd.read_csv(tmp / "e1.csv"), pd.read_csv(tmp / "e2.csv")
    # the same decomposition; only K itself is recovered as U diag(d) U' (used for nothing but the PVE)
    pd.testing.assert_frame_equal(e1, e2, rtol=1e-12, atol=1e-12)
