"""``lmmcore genoprob`` and the ``--cross`` genotype source of ``kinship``, ``scan``, ``effects``, ``fit1``.

Each command is checked against an independent computation on the committed
small crosses (tests/data/cross/iron_subset.zip: an F2 of 20 mice on
chromosomes 1, 7 and X, both sexes and directions; tests/data/hmm/DOex_sub.zip:
8 DO mice on chromosome 2 and X):

* ``genoprob`` writes ``lmmcore.genoprob(read_cross(...))`` (parsed from the
  CSV by pandas, read from the .h5 by h5py-backed ``read_genotypes_h5``, and
  read back by ``read_genoprobs`` with the ``--map-out`` map);
* ``kinship --cross`` is R/qtl2's ``calc_kinship`` formula computed here with
  numpy from the probabilities (allele probabilities by a hand-written
  genotype-to-allele matrix, X included: ``omit_x = FALSE``), and equals
  ``kinship --genoprobs`` on the written file;
* ``scan --cross`` equals ``scan --genoprobs`` on the written probabilities
  (LOD to 1e-10), and ``lmmcore.scan.scan`` of the autosomes with those
  numpy LOCO kinships;
* phenotypes and covariates taken from the cross equal the same columns
  given as files.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore.cli import main
from lmmcore.genostore import read_genotypes_h5
from lmmcore.genotypes import read_genoprobs

DATA = Path(__file__).parent / "data"
IRON = DATA / "cross" / "iron_subset.zip"
DO = DATA / "hmm" / "DOex_sub.zip"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def iron():
    return lmmcore.read_cross(IRON)


def _csv_probs(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, index_col=0, dtype={0: str})


def _member(zip_path: Path, suffix: str) -> pd.DataFrame:
    with zipfile.ZipFile(zip_path) as z:
        name = next(n for n in z.namelist() if n.endswith(suffix))
        return pd.read_csv(io.BytesIO(z.read(name)), dtype={0: str})


# --------------------------------------------------------------------------- #
# lmmcore genoprob
# --------------------------------------------------------------------------- #
def test_genoprob_csv_is_lmmcore_genoprob_in_rqtl2_layout(iron, tmp_path, capsys):
    code, _, err = run(capsys, "genoprob", "--cross", IRON, "--step", "5", "--error-prob", "0.002",
                       "--map-function", "kosambi", "--out", tmp_path / "p.csv", "--map-out", tmp_path / "m.csv")
    assert code == 0, err
    expected = lmmcore.genoprob(iron, step=5, error_prob=0.002, map_function="kosambi")
    table = _csv_probs(tmp_path / "p.csv")
    assert list(table.index) == list(iron.ids)
    # R/qtl2's column names: each chromosome's own genotypes (X: SS, SB, BS, BB, SY, BY)
    header = [f"{m}:{g}" for m, c in zip(expected.markers, expected.chromosome)
              for g in expected.genotypes_by_chr[c]]
    assert list(table.columns) == header
    assert any(c.endswith(":SY") for c in header) and any(".loc" in c for c in header)
    for col in table.columns:
        marker, g = col.rsplit(":", 1)
        j = expected.markers.index(marker)
        np.testing.assert_allclose(table[col].to_numpy(), expected.probs[:, j, expected.genotype_names.index(g)],
                                   rtol=1e-14, atol=1e-15)
    m = pd.read_csv(tmp_path / "m.csv", dtype={"chr": str})
    assert list(m.columns) == ["marker", "chr", "pos"]
    assert list(m.marker) == list(expected.markers) and list(m.chr) == list(expected.chromosome)
    np.testing.assert_array_equal(m.pos.to_numpy(), expected.position)
    # ... and it reads back whole, X included (R/qtl2's layout: the X has its own genotype columns)
    back = read_genoprobs(tmp_path / "p.csv", tmp_path / "m.csv")
    assert back.markers == expected.markers and back.genotypes_by_chr == expected.genotypes_by_chr
    order = [back.genotype_names.index(g) for g in expected.genotype_names]
    np.testing.assert_allclose(back.probs[:, :, order], expected.probs, rtol=1e-14, atol=1e-15)


def test_genoprob_csv_of_autosomes_reads_back_with_read_genoprobs(iron, tmp_path, capsys):
    code, _, err = run(capsys, "genoprob", "--cross", IRON, "--chromosomes", "7,1", "--out", tmp_path / "p.csv",
                       "--map-out", tmp_path / "m.csv")
    assert code == 0, err
    back = read_genoprobs(tmp_path / "p.csv", tmp_path / "m.csv")
    expected = lmmcore.genoprob(iron, chromosomes=["1", "7"])
    assert back.markers == expected.markers and back.chromosome == expected.chromosome
    assert back.genotype_names == expected.genotype_names
    np.testing.assert_allclose(back.probs, expected.probs, rtol=1e-14, atol=1e-15)


def test_genoprob_h5_round_trip_equals_csv_and_the_library(iron, tmp_path, capsys):
    for out, cores in (("p.h5", "2"), ("p.csv", "1")):  # 2: chromosomes in batches of two threads
        code, _, err = run(capsys, "genoprob", "--cross", IRON, "--step", "10", "--off-end", "5",
                           "--stepwidth", "max", "--cores", cores, "--quiet", "--out", tmp_path / out)
        assert code == 0, err
        assert out.endswith(".csv") or err == ""  # --quiet: nothing on stderr (the CSV's X note is a warning)
    expected = lmmcore.genoprob(iron, step=10, off_end=5, stepwidth="max")
    h5 = read_genotypes_h5(tmp_path / "p.h5")
    assert h5.markers == expected.markers and h5.genotypes_by_chr == expected.genotypes_by_chr
    order = [h5.genotype_names.index(g) for g in expected.genotype_names]
    np.testing.assert_array_equal(h5.probs[:, :, order], expected.probs)  # float64: exact
    table = _csv_probs(tmp_path / "p.csv")
    for col in table.columns[::7]:
        marker, g = col.rsplit(":", 1)
        np.testing.assert_allclose(table[col].to_numpy(),
                                   h5.probs[:, h5.markers.index(marker), h5.genotype_names.index(g)],
                                   rtol=1e-14, atol=1e-15)


def test_genoprob_alleles_of_do_is_allele_probs_of_genoprob(tmp_path, capsys):
    code, _, err = run(capsys, "genoprob", "--cross", DO, "--alleles", "--cores", "2", "--out", tmp_path / "a.h5")
    assert code == 0, err
    got = read_genotypes_h5(tmp_path / "a.h5")
    probs = lmmcore.genoprob(lmmcore.read_cross(DO)).probs
    assert got.genotype_names == tuple("ABCDEFGH")
    # R/qtl2's genoprob_to_alleleprob, by hand: AB gives half to A and B, AA all to A, AY (male X) all to A
    names = lmmcore.genoprob(lmmcore.read_cross(DO), chromosomes=["X"]).genotype_names
    M = np.zeros((len(names), 8))
    for k, g in enumerate(names):
        for a in (g[0],) if g[1] == "Y" else (g[0], g[1]):
            M[k, "ABCDEFGH".index(a)] += 1 / (1 if g[1] == "Y" else 2)
    np.testing.assert_allclose(got.probs, probs @ M, atol=1e-14)


# --------------------------------------------------------------------------- #
# kinship --cross
# --------------------------------------------------------------------------- #
_F2_ALLELES = {"SS": (1, 0), "SB": (0.5, 0.5), "BS": (0.5, 0.5), "BB": (0, 1), "SY": (1, 0), "BY": (0, 1)}


def _allele_probs(genotypes) -> np.ndarray:
    M = np.array([_F2_ALLELES[g] for g in genotypes.genotype_names], dtype=float)
    return genotypes.probs @ M


def _calc_kinship(A: np.ndarray) -> np.ndarray:
    """R/qtl2's calc_kinship(type = "overall"): mean over positions of A_j A_j'."""
    return np.einsum("ija,kja->ik", A, A) / A.shape[1]


def test_kinship_cross_is_calc_kinship_with_x_and_equals_kinship_genoprobs(iron, tmp_path, capsys):
    code, _, err = run(capsys, "kinship", "--cross", IRON, "--out", tmp_path / "K.csv")
    assert code == 0, err
    got = pd.read_csv(tmp_path / "K.csv", index_col=0)
    A = _allele_probs(lmmcore.genoprob(iron))
    np.testing.assert_allclose(got.to_numpy(), _calc_kinship(A), atol=1e-12)
    assert run(capsys, "genoprob", "--cross", IRON, "--out", tmp_path / "p.h5")[0] == 0
    assert run(capsys, "kinship", "--genoprobs", tmp_path / "p.h5", "--out", tmp_path / "K2.csv")[0] == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "K2.csv", index_col=0).to_numpy(), got.to_numpy(), atol=1e-14)
    # LOCO: chromosome c left out of the mean (X counts for the others, as R/qtl2's omit_x = FALSE)
    code, _, err = run(capsys, "kinship", "--cross", IRON, "--loco", "--out", tmp_path / "KL.csv")
    assert code == 0, err
    loco = pd.read_csv(tmp_path / "KL.csv", dtype={"chr": str, "id": str})
    chrom = np.asarray(lmmcore.genoprob(iron).chromosome)
    for c in ("1", "7", "X"):
        block = loco[loco.chr == c].drop(columns=["chr", "id"]).to_numpy()
        np.testing.assert_allclose(block, _calc_kinship(A[:, chrom != c]), atol=1e-12)


def test_kinship_cross_chromosomes_limits_the_markers(iron, tmp_path, capsys):
    code, _, err = run(capsys, "kinship", "--cross", IRON, "--chromosomes", "1,7", "--out", tmp_path / "K.csv")
    assert code == 0, err
    A = _allele_probs(lmmcore.genoprob(iron, chromosomes=["1", "7"]))
    np.testing.assert_allclose(pd.read_csv(tmp_path / "K.csv", index_col=0).to_numpy(), _calc_kinship(A),
                               atol=1e-12)


# --------------------------------------------------------------------------- #
# scan --cross
# --------------------------------------------------------------------------- #
def _lod(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"chr": str, "marker": str, "phenotype": str})


def test_scan_cross_equals_scan_genoprobs_on_the_written_probabilities(iron, tmp_path, capsys):
    # autosomes only: the CSV with --map-out, read as R/qtl2's probabilities
    opts = ("--chromosomes", "1,7", "--step", "5")
    assert run(capsys, "genoprob", "--cross", IRON, *opts, "--out", tmp_path / "p.csv",
               "--map-out", tmp_path / "m.csv")[0] == 0
    _write_pheno(iron, tmp_path)
    code, _, err = run(capsys, "scan", "--cross", IRON, *opts, "--kinship", "loco", "--out", tmp_path / "a.csv")
    assert code == 0, err
    assert "left out" not in err  # only autosomes named
    code, _, err = run(capsys, "scan", "--genoprobs", tmp_path / "p.csv", "--map", tmp_path / "m.csv",
                       "--pheno", tmp_path / "pheno.csv", "--kinship", "loco", "--out", tmp_path / "b.csv")
    assert code == 0, err
    a, b = _lod(tmp_path / "a.csv"), _lod(tmp_path / "b.csv")
    assert list(a.marker) == list(b.marker) and set(a.phenotype) == {"liver", "spleen"}
    np.testing.assert_allclose(a.lod.to_numpy(), b.lod.to_numpy(), rtol=0, atol=1e-10)


def test_scan_cross_scans_x_with_x_in_the_loco_kinships(iron, tmp_path, capsys):
    code, _, err = run(capsys, "scan", "--cross", IRON, "--kinship", "loco", "--out", tmp_path / "a.csv")
    assert code == 0, err
    assert "left out" not in err
    scanned = _lod(tmp_path / "a.csv")
    assert list(scanned.chr.unique()) == ["1", "7", "X"]
    # X: R/qtl2's scan1(pr, pheno, kinship = calc_kinship(pr, "loco"), Xcovar = get_x_covar(cross))
    # (tests/data/xscan/make_rqtl2_xscan.R, case "none")
    ref = pd.read_csv(DATA / "xscan" / "rqtl2_scan1_x.csv", dtype={"chr": str})
    ref = ref[ref["addcovar"] == "none"]
    for ph in ("liver", "spleen"):
        t = scanned[scanned.phenotype == ph].set_index("marker")
        np.testing.assert_allclose(t.loc[ref["marker"], "lod"], ref[ph], rtol=0, atol=1e-4)
    got = scanned[scanned.chr != "X"].reset_index(drop=True)
    # independent: scan of the autosomes with numpy LOCO kinships of all three chromosomes
    from lmmcore.scan import scan

    G = lmmcore.genoprob(iron)
    A = _allele_probs(G)
    chrom = np.asarray(G.chromosome)
    auto = np.flatnonzero(chrom != "X")
    sub = lmmcore.Genotypes(ids=G.ids, markers=[G.markers[k] for k in auto], chromosome=chrom[auto],
                            position=G.position[auto], probs=G.probs[:, auto, :3], genotype_names=G.genotype_names[:3])
    kin = {c: pd.DataFrame(_calc_kinship(A[:, chrom != c]), index=G.ids, columns=G.ids) for c in ("1", "7")}
    expected = scan(sub, iron.pheno, kinship=kin).table
    # the autosomes keep their own genotypes (SS, SB, BB), not the X's: same df and p-values, X's columns empty
    assert set(expected.columns) <= set(got.columns) and got["beta_SY"].isna().all()
    np.testing.assert_array_equal(got.df.to_numpy(), expected["df"].to_numpy())
    np.testing.assert_allclose(got.lod.to_numpy(), expected["lod"].to_numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.p_value.to_numpy(), expected["p_value"].to_numpy(), rtol=1e-8, atol=1e-14)
    # through the .h5 file (X has its own genotype set there too) X is left out, autosomes the same
    assert run(capsys, "genoprob", "--cross", IRON, "--out", tmp_path / "p.h5")[0] == 0
    code, _, err = run(capsys, "scan", "--genoprobs", tmp_path / "p.h5", "--pheno", _write_pheno(iron, tmp_path),
                       "--kinship", "loco", "--out", tmp_path / "b.csv")
    assert code == 0, err
    assert err.count("left out of the scan") == 1 and "chromosome X" in err
    np.testing.assert_allclose(_lod(tmp_path / "b.csv").lod.to_numpy(), got.lod.to_numpy(), rtol=0, atol=1e-10)


def test_scan_cross_perm_x_separate(tmp_path, capsys):
    code, _, err = run(capsys, "scan", "--cross", IRON, "--kinship", "loco", "--out", tmp_path / "a.csv",
                       "--perm", "5", "--perm-x-separate", "--seed", "2", "--perm-out", tmp_path / "t.csv")
    assert code == 0, err
    t = pd.read_csv(tmp_path / "t.csv")
    assert list(t.columns) == ["phenotype", "region", "alpha", "lod_threshold", "n_perm"]
    # R: ceiling(5 * chr_lengths(A) / chr_lengths(X)) = ceiling(5 * 135.6 / 28.4) = 24
    assert set(t[t.region == "A"].n_perm) == {5} and set(t[t.region == "X"].n_perm) == {24}
    for argv, msg in ((("--perm-x-separate",), "needs --perm"),
                      (("--perm", "3", "--perm-x-separate", "--perm-scheme", "rotated"), "genotypes")):
        code, _, err = run(capsys, "scan", "--cross", IRON, "--kinship", "loco", "--out", tmp_path / "b.csv", *argv)
        assert code == 2 and msg in err


def _write_pheno(cross, folder: Path) -> Path:
    pheno = cross.pheno.copy()
    pheno.index.name = "id"
    pheno.to_csv(folder / "pheno.csv")
    return folder / "pheno.csv"


def test_covar_columns_pick_the_cross_covariates_as_a_covariate_file_would(iron, tmp_path, capsys):
    covar = _member(IRON, "covar.csv")
    covar[[covar.columns[0], "sex"]].to_csv(tmp_path / "covar.csv", index=False)
    common = ("--chromosomes", "1,7", "--kinship", "overall", "--phenotypes", "spleen")
    code, _, err = run(capsys, "scan", "--cross", IRON, *common, "--covar-columns", "sex", "--out", tmp_path / "a.csv")
    assert code == 0, err
    code, _, err = run(capsys, "scan", "--cross", IRON, *common, "--pheno", _write_pheno(iron, tmp_path),
                       "--covar", tmp_path / "covar.csv", "--out", tmp_path / "b.csv")
    assert code == 0, err
    code, _, err = run(capsys, "scan", "--cross", IRON, *common, "--out", tmp_path / "c.csv")
    assert code == 0, err
    a, b, c = (_lod(tmp_path / f"{x}.csv") for x in "abc")
    np.testing.assert_allclose(a.lod.to_numpy(), b.lod.to_numpy(), rtol=0, atol=1e-10)
    assert set(a.phenotype) == {"spleen"}
    assert np.abs(a.lod.to_numpy() - c.lod.to_numpy()).max() > 1e-3  # sex changes the scan


def test_effects_and_fit1_from_a_cross(iron, tmp_path, capsys):
    assert run(capsys, "genoprob", "--cross", IRON, "--out", tmp_path / "p.h5")[0] == 0
    pheno = _write_pheno(iron, tmp_path)
    code, _, err = run(capsys, "effects", "--cross", IRON, "--phenotypes", "liver", "--chr", "7",
                       "--out", tmp_path / "e1.csv")
    assert code == 0, err
    code, _, err = run(capsys, "effects", "--genoprobs", tmp_path / "p.h5", "--pheno", pheno,
                       "--phenotypes", "liver", "--chr", "7", "--out", tmp_path / "e2.csv")
    assert code == 0, err
    e1, e2 = pd.read_csv(tmp_path / "e1.csv"), pd.read_csv(tmp_path / "e2.csv")
    assert list(e1.columns) == list(e2.columns) and "SY" not in e1.columns and "SB" in e1.columns
    np.testing.assert_allclose(e1.select_dtypes("number").to_numpy(), e2.select_dtypes("number").to_numpy(),
                               rtol=1e-9, atol=1e-10)
    # X: from the cross (its X covariates in the null model; tests/test_xeffects.py checks it against R/qtl2)
    code, _, err = run(capsys, "fit1", "--cross", IRON, "--phenotypes", "liver", "--marker", "DXMit16",
                       "--out", tmp_path / "f.csv")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "f.csv")["chr"].iloc[0] == "X"
    # from a genotype file X has its own genotype set but no X covariates: refused, pointing to --cross
    code, _, err = run(capsys, "fit1", "--genoprobs", tmp_path / "p.h5", "--pheno", pheno, "--phenotypes", "liver",
                       "--marker", "DXMit16", "--out", tmp_path / "f2.csv")
    assert code == 2 and "DXMit16" in err and "--cross" in err
    assert not (tmp_path / "f2.csv").exists()


# --------------------------------------------------------------------------- #
# Bad input: exit 2, one sentence, nothing written
# --------------------------------------------------------------------------- #
BAD = [
    (("genoprob", "--cross", "{tmp}/none.zip", "--out", "{tmp}/o.csv"), "does not exist"),
    (("genoprob", "--cross", IRON, "--chromosomes", "1,19", "--out", "{tmp}/o.csv"), "19"),
    (("genoprob", "--cross", IRON, "--out", "{tmp}/o.txt"), ".h5"),
    (("scan", "--cross", IRON, "--kinship", "loco", "--covar-columns", "age", "--out", "{tmp}/o.csv"), "age"),
    (("scan", "--cross", IRON, "--kinship", "loco", "--chromosomes", "X", "--out", "{tmp}/o.csv"),
     "at least two chromosomes"),
    (("kinship", "--cross", "{tmp}/none.zip", "--out", "{tmp}/o.csv"), "does not exist"),
    (("kinship", "--genoprobs", "{tmp}/p.h5", "--chromosomes", "2", "--out", "{tmp}/o.csv"), "2"),
    (("scan", "--genotypes", "{tmp}/none.csv", "--map", "{tmp}/m.csv", "--kinship", "loco", "--out", "{tmp}/o.csv"),
     "--pheno"),
    (("effects", "--cross", IRON, "--phenotypes", "iron", "--chr", "1", "--out", "{tmp}/o.csv"), "iron"),
    (("scan", "--cross", DATA / "hmm" / "bc_synthetic.zip", "--kinship", "overall", "--out", "{tmp}/o.csv"),
     "no phenotypes"),
    (("scan", "--cross", IRON, "--kinship", "loco", "--covar-columns", ",", "--out", "{tmp}/o.csv"), "empty"),
    (("scan", "--cross", IRON, "--kinship", "nofile.csv", "--out", "{tmp}/o.csv"), "nofile.csv"),
]


@pytest.mark.parametrize("argv, words", BAD, ids=[f"{a[0]}-{w}" for a, w in BAD])
def test_bad_input_exits_2_with_one_sentence_and_writes_nothing(tmp_path, capsys, argv, words):
    (tmp_path / "in").mkdir()
    if "{tmp}/p.h5" in argv:
        assert run(capsys, "genoprob", "--cross", IRON, "--quiet", "--out", tmp_path / "in" / "p.h5")[0] == 0
    argv = [str(a).replace("{tmp}/p.h5", str(tmp_path / "in" / "p.h5")).replace("{tmp}", str(tmp_path))
            for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("lmmcore: error:")]
    assert len(errors) == 1 and words in errors[0] and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.parametrize("flag, value", [("--error-prob", "1.5"), ("--step", "-1"), ("--off-end", "x"),
                                         ("--map-function", "ising"), ("--stepwidth", "wide"), ("--cores", "-1"),
                                         ("--chromosomes", ",")])
def test_bad_option_values_are_usage_errors(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exc:
        main(["genoprob", "--cross", str(IRON), flag, value, "--out", str(tmp_path / "o.csv")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("alleles", [False, True])
def test_cross_genotypes_with_a_bar_counts_the_chromosomes_and_gives_the_same_probabilities(monkeypatch, alleles):
    # on a terminal a bar counts the chromosomes as genoprob finishes them (its progress callback); the
    # probabilities are those without a bar, bit for bit, and lmmcore.genoprob's (with allele_probs)
    import argparse

    from lmmcore import cross_cli
    from lmmcore.cross_cli import cross_genotypes, read_cross_arg

    cross = read_cross_arg(str(DATA / "cross" / "doex_x.zip"))
    args = argparse.Namespace(chromosomes=None, step=1.0, off_end=0.0, stepwidth="fixed", error_prob=0.002,
                              map_function="haldane", cores=2, alleles=alleles)
    one = cross_genotypes(cross, args, quiet=True)
    leader, follower = os.openpty()
    class Bar:  # records what the command's tqdm bar would be told
        def __init__(self, **options):
            self.options, self.n, self.named, self.closed = options, 0, [], False

        def set_postfix_str(self, text, refresh=True):
            self.named.append(text)

        def update(self, k):
            self.n += k

        def close(self):
            self.closed = True

    bars = []
    def progress_bar(quiet, **options):
        bars.append(Bar(**options))
        return bars[-1]

    monkeypatch.setattr(cross_cli, "progress_bar", progress_bar)
    shown = cross_genotypes(cross, args, quiet=False)
    n_chr = len(cross.chromosomes)
    (bar,) = bars
    assert n_chr > 1 and bar.options["total"] == n_chr and bar.n == n_chr and bar.closed
    assert sorted(bar.named) == sorted(f"chr {c}" for c in cross.chromosomes)  # each counted once
    for field in ("ids", "markers", "chromosome", "genotype_names", "source"):
        assert tuple(getattr(one, field)) == tuple(getattr(shown, field))
    assert {c: tuple(g) for c, g in one.genotypes_by_chr.items()} == \
        {c: tuple(g) for c, g in shown.genotypes_by_chr.items()}
    np.testing.assert_array_equal(one.position, shown.position)
    np.testing.assert_array_equal(one.probs, shown.probs)
    ref = lmmcore.genoprob(cross, step=1.0, error_prob=0.002, cores=1)
    ref = lmmcore.allele_probs(ref) if alleles else ref
    assert one.genotype_names == ref.genotype_names and one.genotypes_by_chr == ref.genotypes_by_chr
    np.testing.assert_array_equal(one.probs, ref.probs)


@pytest.mark.parametrize("x_first", [False, True])
def test_own_sets_of_one_autosome_and_one_x_never_depend_on_hashing(x_first):
    """One autosome and one X tie in the count of genotype sets: the chromosome left out is the X that
    --x-chr names, and without --x-chr the same one in every Python process
    whatever its PYTHONHASHSEED (the tie used to go to whichever set a hash put first)."""
    import subprocess
    import sys

    chroms = ["X", "2"] if x_first else ["2", "X"]
    code = (
        "import numpy as np; from lmmcore.genotypes import Genotypes; from lmmcore.cross_cli import _own_sets; "
        f"ch = {chroms!r}; sets = {{'2': ('AA', 'AB', 'BB'), 'X': ('AA', 'AB', 'BB', 'AY', 'BY')}}; "
        "names = ('AA', 'AB', 'BB', 'AY', 'BY'); "
        "g = Genotypes(ids=('a', 'b'), markers=('m1', 'm2'), chromosome=tuple(ch), position=np.zeros(2), "
        "probs=np.full((2, 2, 5), 0.2), genotype_names=names, genotypes_by_chr={c: sets[c] for c in ch}); "
        "print(_own_sets(g, ('X',)), _own_sets(g))"
    )
    answers = set()
    for seed in ("0", "1", "2", "3", "7"):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        assert done.stdout.startswith("['X'] "), done.stdout
        answers.add(done.stdout)
    assert len(answers) == 1, answers
