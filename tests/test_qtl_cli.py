"""``lmmcore peaks``, ``lmmcore effects`` and ``lmmcore fit1``: files in, files out, exit status 2 on bad input.

The data are made here (a small simulated cross written as CSV); the engine
(tested against dense computations and R/qtl2 elsewhere) is the reference for
what the command line writes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmmcore.cli import main
from lmmcore.effects import fit1, scan1coef
from lmmcore.effects_blup import scan1blup
from lmmcore.genotypes import read_genoprobs
from lmmcore.io import read_covariates, read_phenotypes
from lmmcore.peaks import find_peaks
from lmmcore.simulate import genotype_probabilities, simulate_genotype_dosages

N, M = 50, 24


@pytest.fixture
def files(tmp_path):
    g = simulate_genotype_dosages(N, M, n_chr=3, seed=8)
    D = g.dosage
    ids, markers = list(g.ids), list(g.markers)
    pd.DataFrame({"marker": markers, "chr": list(g.chromosome), "pos": g.position}).to_csv(tmp_path / "map.csv",
                                                                                       index=False)
    P = genotype_probabilities(D.astype(int), error=0.02)
    cols = [f"{mk}:{gn}" for mk in markers for gn in ("AA", "AB", "BB")]
    pd.DataFrame(P.reshape(N, -1), index=pd.Index(ids, name="id"), columns=cols).to_csv(tmp_path / "probs.csv")
    rng = np.random.default_rng(9)
    sex = np.where(rng.random(N) < 0.5, "f", "m")
    pheno = pd.DataFrame({"qtl": 1.2 * D[:, 12] + 0.5 * (sex == "m") + rng.normal(size=N),
                          "noise": rng.normal(size=N)}, index=pd.Index(ids, name="id"))
    pheno.iloc[4, 0] = np.nan
    pheno.to_csv(tmp_path / "pheno.csv")
    pd.DataFrame({"sex": sex}, index=pd.Index(ids, name="id")).to_csv(tmp_path / "covar.csv")
    scan = pd.DataFrame({
        "phenotype": "qtl", "marker": markers, "chr": list(g.chromosome), "pos": g.position,
        "lod": np.abs(np.sin(np.arange(M) / 2.0)) * 5,
    })
    scan.to_csv(tmp_path / "scan.csv", index=False)
    return tmp_path


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def inputs(files):
    return ["--genoprobs", files / "probs.csv", "--map", files / "map.csv", "--pheno", files / "pheno.csv",
            "--covar", files / "covar.csv", "--phenotypes", "qtl"]


def engine_inputs(files):
    g = read_genoprobs(files / "probs.csv", files / "map.csv")
    return g, read_phenotypes(files / "pheno.csv"), read_covariates(files / "covar.csv")


def test_peaks_command_writes_find_peaks(files, capsys):
    for flag, value in (("--drop", "1.5"), ("--prob", "0.95")):
        out = files / f"peaks{flag}.csv"
        code, _, err = run(capsys, "peaks", "--scan", files / "scan.csv", "--threshold", 3, "--peakdrop", 2,
                           flag, value, "--out", out)
        assert code == 0, err
        got = pd.read_csv(out, dtype={"chr": str, "marker": str}, keep_default_na=False)
        table = pd.read_csv(files / "scan.csv", dtype={"chr": str, "marker": str})
        want = find_peaks(table, 3, 2, **{flag[2:]: float(value)})
        assert list(got.columns) == list(want.columns)
        assert len(got) == len(want) > 1
        np.testing.assert_allclose(got[["pos", "lod", "ci_lo", "ci_hi"]].to_numpy(float),
                                   want[["pos", "lod", "ci_lo", "ci_hi"]].to_numpy(float), rtol=1e-15)
        assert got["marker"].tolist() == want["marker"].tolist()


def test_peaks_command_refuses_overwrite_and_bad_input(files, capsys):
    out = files / "p.csv"
    out.write_text("keep me")
    code, _, err = run(capsys, "peaks", "--scan", files / "scan.csv", "--threshold", 3, "--drop", 1.5, "--out", out)
    assert code == 2 and "--force" in err and out.read_text() == "keep me"
    code, _, err = run(capsys, "peaks", "--scan", files / "nope.csv", "--threshold", 3, "--drop", 1.5,
                       "--out", files / "q.csv")
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "peaks", "--scan", files / "scan.csv", "--threshold", 3, "--drop", 1.5,
                       "--prob", 0.9, "--out", files / "q.csv")
    assert code == 2 and "not allowed with" in err
    code, _, err = run(capsys, "peaks", "--scan", files / "scan.csv", "--threshold", 3, "--prob", 1.5,
                       "--out", files / "q.csv")
    assert code == 2 and "(0, 1]" in err
    pd.DataFrame({"marker": ["a"], "chr": ["1"], "lod": [1.0]}).to_csv(files / "bad.csv", index=False)
    code, _, err = run(capsys, "peaks", "--scan", files / "bad.csv", "--threshold", 3, "--drop", 1.5,
                       "--out", files / "q.csv")
    assert code == 2 and "no column 'pos'" in err and "bad.csv" in err
    assert not (files / "q.csv").exists()


@pytest.mark.parametrize("extra", [[], ["--contrasts", "additive-dominance"], ["--no-zerosum", "--centred-se"]])
def test_effects_command_writes_scan1coef(files, capsys, extra):
    out = files / "eff.csv"
    code, _, err = run(capsys, "effects", *inputs(files), "--chr", "2", *extra, "--out", out)
    assert code == 0, err
    got = pd.read_csv(out, dtype={"chr": str, "marker": str})
    g, pheno, covar = engine_inputs(files)
    want = scan1coef(g, pheno, covar, phenotype="qtl", chromosome="2",
                     contrasts="additive-dominance" if extra[:1] == ["--contrasts"] else None,
                     zerosum="--no-zerosum" not in extra, centred_se="--centred-se" in extra).table
    assert list(got.columns) == list(want.columns)
    names = ["mu", "a", "d"] if extra[:1] == ["--contrasts"] else ["AA", "AB", "BB"]
    assert list(got.columns[3:9]) == names + [f"se_{n}" for n in names]
    np.testing.assert_allclose(got.iloc[:, 3:].to_numpy(float), want.iloc[:, 3:].to_numpy(float), rtol=1e-12)


def test_effects_blup_command(files, capsys):
    out = files / "blup.csv"
    code, _, err = run(capsys, "effects", *inputs(files), "--chr", "1", "--blup", "--out", out)
    assert code == 0, err
    got = pd.read_csv(out, dtype={"chr": str, "marker": str})
    g, pheno, covar = engine_inputs(files)
    want = scan1blup(g, pheno, covar, phenotype="qtl", chromosome="1").table
    assert list(got.columns) == list(want.columns) and got.columns[-1] == "h2_qtl"
    np.testing.assert_allclose(got.iloc[:, 3:].to_numpy(float), want.iloc[:, 3:].to_numpy(float), rtol=1e-12)


def test_fit1_command_and_individuals(files, capsys):
    g, pheno, covar = engine_inputs(files)
    marker = g.markers[12]
    code, _, err = run(capsys, "fit1", *inputs(files), "--marker", marker, "--out", files / "f.csv",
                       "--individuals-out", files / "i.csv")
    assert code == 0, err
    row = pd.read_csv(files / "f.csv", dtype={"chr": str, "marker": str})
    want = fit1(g, pheno, covar, phenotype="qtl", marker=marker)
    assert list(row.columns[:7]) == ["phenotype", "marker", "chr", "pos", "n", "h2", "lod"]
    assert row["lod"][0] == pytest.approx(want.lod, rel=1e-12)
    for name in want.coef.index:
        assert row[name][0] == pytest.approx(want.coef[name], rel=1e-12)
        assert row[f"se_{name}"][0] == pytest.approx(want.se[name], rel=1e-12)
    ind = pd.read_csv(files / "i.csv", dtype={"id": str})
    assert list(ind.columns) == ["id", "y", "fitted", "residual", "polygenic", "noise"]
    assert len(ind) == N - 1  # one phenotype missing
    np.testing.assert_allclose(ind["polygenic"], want.individuals["polygenic"].to_numpy(), rtol=1e-12)


def test_effects_and_fit1_bad_input(files, capsys):
    code, _, err = run(capsys, "effects", *inputs(files), "--chr", "9", "--out", files / "e.csv")
    assert code == 2 and "chromosome '9'" in err
    code, _, err = run(capsys, "fit1", *inputs(files), "--marker", "nope", "--out", files / "e.csv")
    assert code == 2 and "'nope'" in err
    args = inputs(files)
    args[-1] = "missing_trait"
    code, _, err = run(capsys, "effects", *args, "--chr", "1", "--out", files / "e.csv")
    assert code == 2 and "no phenotype column named 'missing_trait'" in err
    code, _, err = run(capsys, "fit1", *inputs(files), "--marker", "x", "--out", files / "e.csv",
                       "--individuals-out", files / "e.csv")
    assert code == 2 and "same file" in err
    no_pheno = [a for a in inputs(files) if a not in ("--pheno", files / "pheno.csv")]
    code, _, err = run(capsys, "effects", *no_pheno, "--chr", "1", "--out", files / "e.csv")
    assert code == 2 and "--pheno" in err
    assert not (files / "e.csv").exists()


def test_effects_with_a_loco_kinship_file_equals_the_computed_loco(files, capsys):
    code, _, err = run(capsys, "kinship", "--genoprobs", files / "probs.csv", "--map", files / "map.csv", "--loco",
                       "--out", files / "K.csv")
    assert code == 0, err
    for kinship, out in (("loco", "a.csv"), (files / "K.csv", "b.csv")):
        code, _, err = run(capsys, "effects", *inputs(files), "--chr", "3", "--kinship", kinship, "--out", files / out)
        assert code == 0, err
    a = pd.read_csv(files / "a.csv", dtype={"chr": str})
    b = pd.read_csv(files / "b.csv", dtype={"chr": str})
    # the two LOCO kinships differ by rounding ("lmmcore kinship" subtracts a chromosome from the total,
    # effects computes it from the other chromosomes), which moves h2 within the optimiser's
    # tolerance and the effects by about 1e-8 relative
    np.testing.assert_allclose(a.iloc[:, 3:].to_numpy(float), b.iloc[:, 3:].to_numpy(float), rtol=1e-6)


def test_scan_peaks_out_equals_peaks_of_the_written_scan(files, capsys):
    """``scan --peaks-out`` is ``lmmcore peaks`` run on the scan file it wrote."""
    code, _, err = run(capsys, "scan", *inputs(files), "--kinship", "loco", "--out", files / "s.csv",
                       "--peaks-out", files / "p.csv", "--threshold", "1", "--prob", "0.9", "--quiet")
    assert code == 0, err
    code, _, err = run(capsys, "peaks", "--scan", files / "s.csv", "--threshold", "1", "--prob", "0.9",
                       "--out", files / "p2.csv")
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(files / "p.csv"), pd.read_csv(files / "p2.csv"))
    assert len(pd.read_csv(files / "p.csv")) >= 1


def test_scan_peaks_out_may_not_name_the_scan_file(files, capsys):
    code, _, err = run(capsys, "scan", *inputs(files), "--kinship", "loco", "--out", files / "s.csv",
                       "--peaks-out", files / "s.csv")
    assert code == 2 and "--peaks-out" in err and "Traceback" not in err
    assert not (files / "s.csv").exists()


def test_scan_rotated_permutations_are_those_of_the_engine(files, capsys):
    """``--perm-scheme rotated`` writes :func:`rotated_permutations`' thresholds for the same seed."""
    from lmmcore.perm_rotated import rotated_permutations

    code, _, err = run(capsys, "scan", *inputs(files), "--kinship", "overall", "--perm", "12",
                       "--perm-scheme", "rotated", "--seed", "5", "--perm-out", files / "t.csv",
                       "--out", files / "s.csv", "--quiet")
    assert code == 0, err
    genotypes = read_genoprobs(files / "probs.csv", files / "map.csv")
    expected = rotated_permutations(genotypes, read_phenotypes(files / "pheno.csv"),
                                    read_covariates(files / "covar.csv"), phenotype=["qtl"],
                                    n_perm=12, seed=5, kinship="overall")
    got = pd.read_csv(files / "t.csv")
    np.testing.assert_allclose(got["lod_threshold"], expected.thresholds["lod_threshold"], rtol=1e-12)
    code, _, err = run(capsys, "scan", *inputs(files), "--kinship", "overall", "--perm", "5",
                       "--perm-scheme", "rotated", "--perm-strata", "sex", "--out", files / "s2.csv")
    assert code == 2 and "--perm-strata" in err
