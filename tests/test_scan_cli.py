"""``lmmcore kinship`` and ``lmmcore scan``: files in, files out, exit status 2 on bad input.

All data are made here (a small simulated cross written as CSV and PLINK
files in a temporary folder); the engine's results are the reference for
what the command line writes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from lmmcore import LMMWarning
from lmmcore.cli import main
from lmmcore.genotypes import read_dosages, read_genoprobs, read_plink
from lmmcore.kinship import kinship_from_genoprobs, loco_kinships
from lmmcore.scan import scan
from lmmcore.simulate import genotype_probabilities, simulate_genotype_dosages, write_plink

N, M = 60, 40


@pytest.fixture
def files(tmp_path):
    """Dosages, genotype probabilities, PLINK files, map, phenotypes and covariates."""
    g = simulate_genotype_dosages(N, M, n_chr=3, seed=5)
    D = g.dosage.copy()
    D[:, 7] = 1.0  # a monomorphic marker
    ids, markers = list(g.ids), list(g.markers)
    gmap = pd.DataFrame({"marker": markers, "chr": list(g.chromosome), "pos": g.position})
    gmap.to_csv(tmp_path / "map.csv", index=False)
    dos = pd.DataFrame(D, index=pd.Index(ids, name="id"), columns=markers)
    dos.to_csv(tmp_path / "dosage.csv")
    P = genotype_probabilities(D.astype(int), error=0.02)
    names = ("AA", "AB", "BB")
    cols = [f"{mk}:{gn}" for mk in markers for gn in names]
    pd.DataFrame(P.reshape(N, -1), index=pd.Index(ids, name="id"), columns=cols).to_csv(tmp_path / "probs.csv")
    write_plink(tmp_path / "geno", D, ids, list(g.chromosome), np.round(g.position * 1e6), markers)
    rng = np.random.default_rng(6)
    sex = np.where(rng.random(N) < 0.5, "f", "m")
    pheno = pd.DataFrame(
        {
            "qtl": 0.9 * D[:, 20] + 0.5 * (sex == "m") + rng.normal(size=N),
            "noise": rng.normal(size=N),
        },
        index=pd.Index(ids, name="id"),
    )
    pheno.iloc[[3, 9], 1] = np.nan
    pheno.to_csv(tmp_path / "pheno.csv")
    pd.DataFrame({"sex": sex}, index=pd.Index(ids, name="id")).to_csv(tmp_path / "covar.csv")
    return tmp_path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- #
# lmmcore kinship
# --------------------------------------------------------------------------- #
def test_kinship_overall_and_loco_files(files, capsys):
    code, _, err = run(capsys, "kinship", "--genoprobs", files / "probs.csv", "--map", files / "map.csv",
                       "--out", files / "K.csv")
    assert code == 0, err
    K = pd.read_csv(files / "K.csv", index_col=0)
    g = read_genoprobs(files / "probs.csv", files / "map.csv")
    np.testing.assert_allclose(K.to_numpy(), kinship_from_genoprobs(g.probs, g.genotype_names), atol=1e-12)
    assert list(K.columns) == list(g.ids)

    code, _, err = run(capsys, "kinship", "--bed", files / "geno", "--loco", "--kind", "centered",
                       "--out", files / "KL.csv")
    assert code == 0, err
    long = pd.read_csv(files / "KL.csv", dtype={"chr": str, "id": str})
    assert list(long.columns[:2]) == ["chr", "id"]
    b = read_plink(files / "geno")
    with pytest.warns(Warning):
        expected = loco_kinships(b.dosage, b.chromosome, kind="centered")
    assert list(pd.unique(long["chr"])) == list(expected)
    for c, Kc in expected.items():
        block = long[long["chr"] == c].drop(columns=["chr"]).set_index("id")
        np.testing.assert_allclose(block.to_numpy(), Kc, atol=1e-12)


# --------------------------------------------------------------------------- #
# lmmcore scan
# --------------------------------------------------------------------------- #
def test_scan_writes_the_engines_long_table(files, capsys):
    code, _, err = run(capsys, "scan", "--genotypes", files / "dosage.csv", "--map", files / "map.csv",
                       "--pheno", files / "pheno.csv", "--covar", files / "covar.csv",
                       "--kinship", "loco", "--out", files / "scan.csv")
    assert code == 0, err
    out = pd.read_csv(files / "scan.csv", dtype={"chr": str}, keep_default_na=False, na_values=[""])
    for col in ("phenotype", "marker", "chr", "pos", "lod", "p_value", "h2", "beta_dosage", "se_dosage", "flag"):
        assert col in out.columns
    assert len(out) == 2 * M
    g = read_dosages(files / "dosage.csv", files / "map.csv")
    pheno = pd.read_csv(files / "pheno.csv", index_col=0)
    covar = pd.read_csv(files / "covar.csv", index_col=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)  # monomorphic markers left out of the kinship
        api = scan(g, pheno, covar, kinship="loco").table
    np.testing.assert_allclose(out["lod"], api["lod"], rtol=1e-12, equal_nan=True)
    # the QTL marker tops the scan; the monomorphic marker is a flagged row with NaN
    qtl = out[out["phenotype"] == "qtl"].set_index("marker")
    assert qtl["lod"].idxmax() == g.markers[20]
    assert qtl.loc[g.markers[7], "flag"] == "monomorphic" and np.isnan(qtl.loc[g.markers[7], "lod"])
    assert "highest LOD" in err


def test_scan_from_plink_with_a_loco_kinship_file_and_refit(files, capsys):
    assert run(capsys, "kinship", "--bed", files / "geno", "--loco", "--out", files / "KL.csv")[0] == 0
    code, _, err = run(capsys, "scan", "--bed", files / "geno", "--pheno", files / "pheno.csv",
                       "--phenotypes", "qtl", "--kinship", files / "KL.csv", "--refit",
                       "--out", files / "from_file.csv")
    assert code == 0, err
    code, _, err = run(capsys, "scan", "--bed", files / "geno", "--pheno", files / "pheno.csv",
                       "--phenotypes", "qtl", "--kinship", "loco", "--refit", "--out", files / "computed.csv")
    assert code == 0, err
    a = pd.read_csv(files / "from_file.csv")
    b = pd.read_csv(files / "computed.csv")
    for col in ("h2_ml", "lrt", "p_lrt", "h2_reml", "beta_wald_dosage", "se_wald_dosage", "wald", "p_wald"):
        assert col in a.columns
    np.testing.assert_allclose(a["lod"], b["lod"], atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(a["lrt"], b["lrt"], atol=1e-6, equal_nan=True)
    assert set(a["phenotype"]) == {"qtl"}
    code, _, err = run(capsys, "scan", "--bed", files / "geno", "--pheno", files / "pheno.csv",
                       "--phenotypes", "qtl", "--kinship", "loco", "--refit", "--lrt-likelihood", "projected",
                       "--out", files / "projected.csv")
    assert code == 0, err
    c = pd.read_csv(files / "projected.csv")
    np.testing.assert_allclose(c["wald"], b["wald"], rtol=1e-4, equal_nan=True)  # only the LRT differs


@pytest.mark.parametrize("source", ["genotypes", "bed", "genoprobs"])
def test_scan_of_a_marker_with_no_observed_genotype_is_a_flagged_row(files, capsys, source):
    """An all-missing marker used to abort reading; now it is read as NaN, skipped by the
    kinship and reported as a row flagged all_missing."""
    g = read_dosages(files / "dosage.csv", files / "map.csv")
    empty = g.markers[12]
    D = pd.read_csv(files / "dosage.csv", index_col=0)
    D[empty] = np.nan
    if source == "genotypes":
        D.to_csv(files / "empty.csv")
        argv = ["--genotypes", files / "empty.csv", "--map", files / "map.csv"]
    elif source == "bed":
        write_plink(files / "empty", D.to_numpy(), list(D.index), list(g.chromosome),
                    np.round(g.position * 1e6), list(D.columns))
        argv = ["--bed", files / "empty"]
    else:
        probs = pd.read_csv(files / "probs.csv", index_col=0)
        probs[[c for c in probs.columns if c.startswith(f"{empty}:")]] = np.nan
        probs.to_csv(files / "empty.csv")
        argv = ["--genoprobs", files / "empty.csv", "--map", files / "map.csv"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = run(capsys, "scan", *argv, "--pheno", files / "pheno.csv", "--kinship", "loco",
                           "--refit", "--out", files / "scan.csv")
    assert code == 0, err
    messages = " ".join(str(w.message) for w in caught) + err
    assert "no observed genotype" in messages
    assert "markers have no observed genotype (all missing) and were skipped" in messages
    out = pd.read_csv(files / "scan.csv", dtype={"chr": str}, keep_default_na=False, na_values=[""])
    assert len(out) == 2 * M
    rows = out[out["marker"] == empty]
    assert len(rows) == 2 and (rows["flag"] == "all_missing").all()
    for col in ("lod", "p_value", "lrt", "p_lrt", "wald", "p_wald"):
        assert rows[col].isna().all(), col
    others = out[(out["marker"] != empty) & (out["flag"] == "")]
    assert others["lod"].notna().all() and others["p_lrt"].notna().all()


def test_scan_with_genotype_probabilities_and_an_overall_kinship_file(files, capsys):
    assert run(capsys, "kinship", "--genoprobs", files / "probs.csv", "--map", files / "map.csv",
               "--out", files / "K.csv")[0] == 0
    code, _, err = run(capsys, "scan", "--genoprobs", files / "probs.csv", "--map", files / "map.csv",
                       "--pheno", files / "pheno.csv", "--kinship", files / "K.csv", "--method", "ml",
                       "--out", files / "scan.csv", "--quiet")
    assert code == 0, err
    assert err == ""  # --quiet
    out = pd.read_csv(files / "scan.csv", keep_default_na=False, na_values=[""])
    assert {"beta_AB", "beta_BB", "se_AB", "se_BB"} <= set(out.columns)
    assert (out.loc[out["flag"] == "", "df"] == 2).all()


def test_permutation_thresholds_to_a_file_or_stdout(files, capsys):
    code, out, err = run(capsys, "scan", "--genotypes", files / "dosage.csv", "--map", files / "map.csv",
                         "--pheno", files / "pheno.csv", "--covar", files / "covar.csv", "--kinship", "overall",
                         "--perm", 5, "--perm-strata", "sex", "--seed", 3, "--out", files / "scan.csv",
                         "--perm-out", files / "thr.csv")
    assert code == 0, err
    thr = pd.read_csv(files / "thr.csv")
    assert list(thr.columns) == ["phenotype", "alpha", "lod_threshold", "n_perm"]
    assert set(thr["phenotype"]) == {"qtl", "noise"} and (thr["n_perm"] == 5).all()
    assert set(thr["alpha"]) == {0.01, 0.05, 0.1, 0.2}
    # the same seed again, thresholds printed to stdout instead
    code, out, err = run(capsys, "scan", "--genotypes", files / "dosage.csv", "--map", files / "map.csv",
                         "--pheno", files / "pheno.csv", "--covar", files / "covar.csv", "--kinship", "overall",
                         "--perm", 5, "--perm-strata", "sex", "--seed", 3, "--out", files / "scan2.csv")
    assert code == 0, err
    assert "within strata of 'sex'" in out
    printed = pd.read_csv(pd.io.common.StringIO(out.split("\n", 1)[1]))
    pd.testing.assert_frame_equal(printed, thr)


# --------------------------------------------------------------------------- #
# Bad input: exit status 2 and one clear line
# --------------------------------------------------------------------------- #
def _scan_args(files, *extra):
    return ["scan", "--genotypes", files / "dosage.csv", "--map", files / "map.csv", "--pheno",
            files / "pheno.csv", "--kinship", "loco", "--out", files / "out.csv", *extra]


@pytest.mark.parametrize(
    "argv, message",
    [
        (lambda f: ["scan", "--genotypes", f / "dosage.csv", "--pheno", f / "pheno.csv", "--kinship", "loco",
                    "--out", f / "o.csv"], "needs the marker map"),
        (lambda f: ["scan", "--genotypes", f / "nothere.csv", "--map", f / "map.csv", "--pheno", f / "pheno.csv",
                    "--kinship", "loco", "--out", f / "o.csv"], "does not exist"),
        (lambda f: ["scan", "--bed", f / "nothere", "--pheno", f / "pheno.csv", "--kinship", "loco",
                    "--out", f / "o.csv"], "incomplete"),
        (lambda f: _scan_args(f, "--phenotypes", "height"), "no phenotype column named 'height'"),
        (lambda f: _scan_args(f, "--perm-strata", "sex"), "--perm-strata needs --perm"),
        (lambda f: _scan_args(f, "--perm", "3", "--perm-strata", "batch"), "strata column 'batch'"),
        (lambda f: _scan_args(f, "--perm-out", f / "t.csv"), "--perm-out needs --perm"),
        (lambda f: ["scan", "--genotypes", f / "dosage.csv", "--map", f / "map.csv", "--pheno", f / "pheno.csv",
                    "--kinship", f / "bad_kinship.csv", "--out", f / "o.csv"], "square"),
        (lambda f: ["scan", "--genotypes", f / "dosage.csv", "--map", f / "map.csv", "--pheno", f / "pheno.csv",
                    "--kinship", f / "nokinship.csv", "--out", f / "o.csv"], "does not exist"),
        (lambda f: ["kinship", "--genotypes", f / "dosage.csv", "--out", f / "K.csv"], "needs the marker map"),
    ],
)
def test_bad_input_exits_with_status_2_and_a_message(files, capsys, argv, message):
    pd.DataFrame(np.eye(3)[:, :2], index=["a", "b", "c"], columns=["a", "b"]).to_csv(files / "bad_kinship.csv")
    code, _, err = run(capsys, *argv(files))
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not (files / "o.csv").exists() and not (files / "out.csv").exists()


def test_existing_output_needs_force(files, capsys):
    (files / "out.csv").write_text("keep me\n")
    code, _, err = run(capsys, *_scan_args(files))
    assert code == 2 and "--force" in err
    assert (files / "out.csv").read_text() == "keep me\n"
    code, _, err = run(capsys, *_scan_args(files, "--force"))
    assert code == 0, err


def test_usage_errors_exit_2(files, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["scan", "--bed", str(files / "geno"), "--pheno", str(files / "pheno.csv"), "--out", "x.csv"])
    assert exc.value.code == 2
    assert "--kinship" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["scan", "--bed", "a", "--genotypes", "b", "--pheno", "p", "--kinship", "loco", "--out", "x"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
