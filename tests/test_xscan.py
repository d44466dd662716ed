"""The X chromosome in scans (R/qtl2's ``scan1(..., Xcovar = get_x_covar(cross))``).

References: ``tests/data/xscan`` (R/qtl2 0.43-5 on ``tests/data/cross/iron_subset.zip``,
made by ``tests/data/xscan/make_rqtl2_xscan.R``), dense GLS (tests/dense.py), and the
rules of R/qtl2's C++ ``get_x_covar`` enumerated on modified crosses.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore.errors import LMMInputError
from lmmcore.hmm import allele_probs
from lmmcore.kinship import compute_kinship
from lmmcore.scan import scan
from lmmcore.xchr import chromosome_lengths, n_perm_x, select_chromosomes, x_covariates, xsp_thresholds

from dense import brute_force_h2, gls

DATA = Path(__file__).parent / "data"
XDATA = DATA / "xscan"


@pytest.fixture(scope="module")
def iron():
    cross = lmmcore.read_cross(DATA / "cross" / "iron_subset.zip")
    return cross, lmmcore.genoprob(cross)


def _sex(cross) -> pd.DataFrame:
    return pd.DataFrame({"sex": (cross.covar["sex"] == "m").astype(float).to_numpy()},
                        index=cross.covar.index.astype(str))


# --------------------------------------------------------------------------- #
# x_covariates against R/qtl2's get_x_covar
# --------------------------------------------------------------------------- #
def test_x_covariates_match_rqtl2_get_x_covar(iron):
    cross, _ = iron
    # R: get_x_covar(read_cross2("tests/data/cross/iron_subset.zip"))
    ref = pd.read_csv(XDATA / "rqtl2_get_x_covar.csv", dtype={"id": str}).set_index("id")
    got = x_covariates(cross)
    assert list(got.columns) == list(ref.columns) == ["sex", "direction"]
    assert list(got.index) == list(ref.index)
    np.testing.assert_array_equal(got.to_numpy(), ref.to_numpy(dtype=float))


def test_x_covariates_f2_cases_and_other_crosses(iron):
    """R/qtl2's four F2 cases (cross_f2.cpp) and the default (cross.h) on modified crosses."""
    cross, _ = iron
    female, info = cross.is_female, cross.cross_info
    rev = info[:, 0] == 1
    # one sex, one direction: NULL
    c = replace(cross, is_female=np.ones_like(female), cross_info=np.zeros_like(info))
    assert x_covariates(c).shape[1] == 0
    # all female, both directions: direction = cross_info
    c = replace(cross, is_female=np.ones_like(female))
    np.testing.assert_array_equal(x_covariates(c)["direction"], rev.astype(float))
    assert list(x_covariates(c).columns) == ["direction"]
    # all male, both directions: NULL
    assert x_covariates(replace(cross, is_female=np.zeros_like(female))).shape[1] == 0
    # both sexes, one direction: sex (1 = male)
    c = replace(cross, cross_info=np.zeros_like(info))
    assert list(x_covariates(c).columns) == ["sex"]
    np.testing.assert_array_equal(x_covariates(c)["sex"], (~female).astype(float))
    # another cross type: sex only, even with cross information
    c = replace(cross, crosstype="bc")
    assert list(x_covariates(c).columns) == ["sex"]
    assert x_covariates(replace(c, is_female=np.ones_like(female))).shape[1] == 0


# --------------------------------------------------------------------------- #
# The X scan against R/qtl2's scan1 with LOCO kinships and Xcovar
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("case", ["none", "sex"])
def test_x_scan_matches_rqtl2_scan1(iron, case):
    cross, pr = iron
    # R: scan1(pr, cross$pheno, kinship = calc_kinship(pr, "loco"), addcovar = <case>,
    #          Xcovar = get_x_covar(cross)), pr = calc_genoprob(cross)
    ref = pd.read_csv(XDATA / "rqtl2_scan1_x.csv", dtype={"chr": str})
    ref = ref[ref["addcovar"] == case]
    hsq = pd.read_csv(XDATA / f"rqtl2_hsq_{case}.csv", dtype={"chr": str}).set_index("chr")
    res = scan(pr, cross.pheno, _sex(cross) if case == "sex" else None, kinship="loco", x_chr=["X"],
               xcovar=x_covariates(cross))
    assert list(res.table["chr"].unique()) == ["1", "7", "X"]
    for ph in ("liver", "spleen"):
        t = res.table[res.table["phenotype"] == ph].set_index("marker")
        np.testing.assert_allclose(t.loc[ref["marker"], "lod"], ref[ph], rtol=0, atol=1e-4)
        null = res.null[res.null["phenotype"] == ph].set_index("chr")
        # R/qtl2's hsq is for the kinship 2K: h / (1 - h) = 2 h_R / (1 - h_R), so h = 2 h_R / (1 + h_R)
        np.testing.assert_allclose(null.loc[hsq.index, "h2"], 2 * hsq[ph] / (1 + hsq[ph]), rtol=0, atol=1e-4)
    x = res.table[res.table["chr"] == "X"]
    assert (x["df"] == 3).all()  # 6 X genotypes - intercept, sex, direction
    assert (x["flag"] == "").all()
    auto = res.table[res.table["chr"] != "X"]
    assert auto[["beta_BS", "beta_SY", "beta_BY"]].isna().all().all()
    assert (auto["df"] == 2).all()


# --------------------------------------------------------------------------- #
# Dense GLS at the null h2 of X, with h2 > 0
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kinship", ["loco", "overall"])
def test_x_fixed_lod_matches_dense_gls(iron, kinship):
    cross, pr = iron
    ap = allele_probs(pr)
    ids = list(pr.ids)
    K_all = compute_kinship(ap).matrix
    K_auto = compute_kinship(select_chromosomes(ap, ["1", "7"])).matrix
    K = K_auto if kinship == "loco" else K_all
    rng = np.random.default_rng(3)
    w, V = np.linalg.eigh(K)
    y = V @ (np.sqrt(np.maximum(w, 0)) * rng.normal(size=len(ids))) * 3 + rng.normal(size=len(ids))
    xc = x_covariates(cross)
    res = scan(pr, pd.DataFrame({"y": y}, index=ids), kinship=kinship, x_chr=["X"], xcovar=xc)
    h = float(res.null.set_index("chr").loc["X", "h2"])
    assert 0.05 < h < 0.999
    X0 = np.column_stack([np.ones(len(ids)), xc.loc[ids].to_numpy()])
    _, rss0, _, _ = gls(K, y, X0, h)
    xg = select_chromosomes(pr, ["X"])
    n = len(ids)
    L = np.linalg.cholesky(h * K + (1 - h) * np.eye(n))
    for j, marker in enumerate(xg.markers):
        X1 = np.column_stack([X0, xg.probs[:, j, :]])  # every X genotype: rank 6 with the intercept
        Xw, yw = np.linalg.solve(L, X1), np.linalg.solve(L, y)
        coef, *_ = np.linalg.lstsq(Xw, yw, rcond=None)
        rss1 = float(np.sum((yw - Xw @ coef) ** 2))
        lod = n / 2 * np.log10(rss0 / rss1)
        got = res.table.set_index("marker").loc[marker]
        assert got["lod"] == pytest.approx(lod, abs=1e-8)
        assert got["df"] == np.linalg.matrix_rank(X1) - np.linalg.matrix_rank(X0)


@pytest.mark.slow
def test_x_refit_lrt_matches_dense_ml(iron):
    """--refit on X: LRT = 2 (L1 - L0), both maximised over h2 by a dense grid, X covariates in both."""
    from scipy.linalg import orth

    cross, pr = iron
    ap = allele_probs(pr)
    ids = list(pr.ids)
    K = compute_kinship(select_chromosomes(ap, ["1", "7"])).matrix
    rng = np.random.default_rng(5)
    w, V = np.linalg.eigh(K)
    y = V @ (np.sqrt(np.maximum(w, 0)) * rng.normal(size=len(ids))) * 3 + rng.normal(size=len(ids))
    xc = x_covariates(cross)
    res = scan(pr, pd.DataFrame({"y": y}, index=ids), kinship="loco", x_chr=["X"], xcovar=xc, refit=True)
    X0 = np.column_stack([np.ones(len(ids)), xc.loc[ids].to_numpy()])
    _, l0 = brute_force_h2(K, y, X0, "ml", points=201)
    xg = select_chromosomes(pr, ["X"])
    for j, marker in enumerate(xg.markers):
        h1, l1 = brute_force_h2(K, y, orth(np.column_stack([X0, xg.probs[:, j, :]])), "ml", points=201)
        got = res.table.set_index("marker").loc[marker]
        assert got["lrt"] == pytest.approx(2 * (l1 - l0), abs=1e-5)
        assert got["h2_ml"] == pytest.approx(h1, abs=1e-4)


# --------------------------------------------------------------------------- #
# Autosomes do not change
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("refit", [False, True])
def test_autosomes_unchanged_by_x_covariates(iron, refit):
    cross, pr = iron
    ap = allele_probs(pr)
    from lmmcore.kinship import compute_loco_kinships

    loco = {c: k for c, k in compute_loco_kinships(ap).items()}
    auto = select_chromosomes(pr, ["1", "7"])
    base = scan(auto, cross.pheno, _sex(cross), kinship={c: loco[c] for c in ("1", "7")}, refit=refit)
    with_x = scan(pr, cross.pheno, _sex(cross), kinship="loco", x_chr=["X"], xcovar=x_covariates(cross),
                  refit=refit)
    got = with_x.table[with_x.table["chr"] != "X"].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[base.table.columns], base.table)
    pd.testing.assert_frame_equal(with_x.null[with_x.null["chr"] != "X"].reset_index(drop=True), base.null)
    if refit:  # the X rows' likelihood-ratio test has the X covariates in both models too
        x = with_x.table[with_x.table["chr"] == "X"]
        assert np.isfinite(x["lrt"]).all() and (x["lrt"] >= -1e-8).all()
        assert list(with_x.table.columns[-3:]) == ["wald", "p_wald", "flag"]


def test_x_options_need_x_chr(iron):
    cross, pr = iron
    with pytest.raises(LMMInputError, match="x_chr"):
        scan(pr, cross.pheno, xcovar=x_covariates(cross))
    with pytest.raises(LMMInputError, match="chromosome 'Y'"):
        scan(pr, cross.pheno, x_chr=["Y"])
    with pytest.raises(LMMInputError, match="X covariates have no value"):
        scan(pr, cross.pheno, x_chr=["X"], xcovar=x_covariates(cross).iloc[1:])


# --------------------------------------------------------------------------- #
# perm_Xsp
# --------------------------------------------------------------------------- #
def test_perm_x_counts_and_thresholds_match_rqtl2(iron):
    _, pr = iron
    lengths = chromosome_lengths(pr)
    # R: chr_lengths(cross$gmap, collapse_to_AX=TRUE) = A 135.6, X 28.4; ceiling(100 * 135.6 / 28.4) = 478
    assert sum(v for c, v in lengths.items() if c != "X") == pytest.approx(135.6)
    assert lengths["X"] == pytest.approx(28.4)
    assert n_perm_x(100, lengths, ["X"]) == 478
    # R (summary of a hand-made scan1perm object):
    #   operm <- list(A = cbind(liver = (1:100)/10, spleen = (1:100)*37/7),
    #                 X = cbind(liver = (1:478)/50, spleen = (1:478)*13/90))
    #   attr(operm, "chr_lengths") <- c(A = 135.6, X = 28.4); class(operm) <- c("scan1perm", "list")
    #   summary(operm, alpha = c(0.01, 0.05, 0.2))
    k, kx = np.arange(1, 101), np.arange(1, 479)
    A = pd.DataFrame({"liver": k / 10, "spleen": k * 37 / 7})
    X = pd.DataFrame({"liver": kx / 50, "spleen": kx * 13 / 90})
    t = xsp_thresholds(A, X, {"A": 135.6, "X": 28.4}, ["X"], [0.01, 0.05, 0.2]).set_index(
        ["phenotype", "region", "alpha"])["lod_threshold"]
    ref = {("liver", "A"): [9.91807274836, 9.58891200969, 8.33203407521],
           ("spleen", "A"): [524.240988128, 506.842491941, 440.407515404],
           ("liver", "X"): [9.54341079522, 9.47563621081, 9.19838766333],
           ("spleen", "X"): [68.9246335211, 68.4351504114, 66.4327997907]}
    for (ph, region), vals in ref.items():
        np.testing.assert_allclose([t[(ph, region, a)] for a in (0.01, 0.05, 0.2)], vals, rtol=1e-10)


def test_scan_perm_x_separate(iron):
    cross, pr = iron
    res = scan(pr, cross.pheno, kinship="loco", x_chr=["X"], xcovar=x_covariates(cross), n_perm=10, seed=1,
               perm_x_separate=True)
    p = res.permutations
    assert p.n_perm == 10 and p.n_perm_x == 48 and len(p.max_lod_x) == 48
    assert set(p.thresholds["region"]) == {"A", "X"}
    assert (p.thresholds.groupby(["phenotype", "region"]).size() == 4).all()
    # without separation: one genome-wide maximum per permutation, at least the autosomes' own maximum
    joint = scan(pr, cross.pheno, kinship="loco", x_chr=["X"], xcovar=x_covariates(cross), n_perm=10, seed=1)
    assert "region" not in joint.permutations.thresholds.columns
    assert (joint.permutations.max_lod.to_numpy() >= p.max_lod.to_numpy() - 1e-12).all()


# --------------------------------------------------------------------------- #
# The command line: --x-chr/--x-covar on a genotype file equals --cross
# --------------------------------------------------------------------------- #
def test_cli_x_chr_on_genoprob_file_equals_cross(iron, tmp_path, capsys):
    from lmmcore.cli import main

    cross, _ = iron
    cz = DATA / "cross" / "iron_subset.zip"
    assert main(["genoprob", "--cross", str(cz), "--out", str(tmp_path / "p.csv"), "--map-out",
                 str(tmp_path / "m.csv"), "--quiet"]) == 0
    x_covariates(cross).to_csv(tmp_path / "xc.csv")
    pheno = cross.pheno.copy()
    pheno.index.name = "id"
    pheno.to_csv(tmp_path / "ph.csv")
    common = ["--kinship", "loco", "--quiet"]
    assert main(["scan", "--cross", str(cz), *common, "--out", str(tmp_path / "c.csv")]) == 0
    assert main(["scan", "--genoprobs", str(tmp_path / "p.csv"), "--map", str(tmp_path / "m.csv"), "--pheno",
                 str(tmp_path / "ph.csv"), "--x-chr", "X", "--x-covar", str(tmp_path / "xc.csv"), *common,
                 "--out", str(tmp_path / "g.csv")]) == 0
    a, b = pd.read_csv(tmp_path / "c.csv"), pd.read_csv(tmp_path / "g.csv")
    assert list(a.columns) == list(b.columns) and list(a.marker) == list(b.marker)
    np.testing.assert_allclose(a.lod, b.lod, rtol=0, atol=1e-10)
    capsys.readouterr()
    for argv, words in ((["--x-covar", str(tmp_path / "xc.csv")], "--x-covar needs --x-chr"),
                        (["--x-chr", "Y"], "--x-chr names Y")):
        code = main(["scan", "--genoprobs", str(tmp_path / "p.csv"), "--map", str(tmp_path / "m.csv"), "--pheno",
                     str(tmp_path / "ph.csv"), *argv, *common, "--out", str(tmp_path / "e.csv")])
        assert code == 2 and words in capsys.readouterr().err
    code = main(["scan", "--cross", str(cz), "--x-chr", "X", *common, "--out", str(tmp_path / "e.csv")])
    assert code == 2 and "come from the cross" in capsys.readouterr().err
    assert not (tmp_path / "e.csv").exists()


def test_x_covariates_missing_for_an_individual_are_named():
    # checked with one reindex: an absent ID and an ID with a missing value are both reported, in ids order
    from lmmcore.errors import LMMInputError
    from lmmcore.xchr import x_scan_covariates

    xc = pd.DataFrame({"sex": [1.0, 0.0, np.nan]}, index=["a", "b", "c"])
    with pytest.raises(LMMInputError, match=r"individual 'c' \(2 in all\)"):
        x_scan_covariates(None, xc, ["b", "c", "a", "z"])
    out = x_scan_covariates(None, xc, ["b", "a"])
    assert out.index.tolist() == ["b", "a"] and out["sex"].tolist() == [0.0, 1.0]


def test_x_covariate_spanned_by_a_text_covariate_is_left_out_quietly(iron):
    # A text sex covariate (f/m) spans the X covariate "sex" (1 = male): R/qtl2's drop_xcovar leaves it out, so the
    # scan says nothing about it and gives the LODs of the numeric sex covariate (checked against R/qtl2 above).
    cross, pr = iron
    text_sex = pd.DataFrame({"sex": cross.covar["sex"].astype(str).to_numpy()}, index=cross.covar.index.astype(str))
    said: list[str] = []
    res = scan(pr, cross.pheno, text_sex, kinship="loco", x_chr=["X"], xcovar=x_covariates(cross),
               report=said.append)
    assert not [m for m in said if "dropped" in m]
    ref = scan(pr, cross.pheno, _sex(cross), kinship="loco", x_chr=["X"], xcovar=x_covariates(cross),
               report=lambda _m: None)
    np.testing.assert_allclose(res.table["lod"], ref.table["lod"], rtol=0, atol=1e-10)
    assert (res.table.loc[res.table["chr"] == "X", "df"] == 3).all()
    # a column the covariates do not span is kept, under its own name (or X_ when the names clash)
    from lmmcore.xchr import x_scan_covariates

    ids = list(text_sex.index)
    extra = pd.DataFrame({"sex": _sex(cross)["sex"].to_numpy(), "dir": np.arange(len(ids), dtype=float)},
                         index=ids)
    out = x_scan_covariates(text_sex, extra, ids)
    assert list(out.columns) == ["sex", "dir"]
    out = x_scan_covariates(pd.DataFrame({"dir": np.ones(len(ids))}, index=ids), extra, ids)
    assert list(out.columns) == ["dir", "sex", "X_dir"]
