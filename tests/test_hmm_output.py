"""allele_probs and write_genoprobs (lmmcore.hmm) against direct computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hmm_util import make_cross, read_fixture_cross
from lmmcore.errors import LMMInputError
from lmmcore.hmm import allele_probs, genoprob, write_genoprobs

DATA = Path(__file__).parent / "data" / "hmm"


def _iron():
    return genoprob(read_fixture_cross(DATA / "iron_sub.zip"), error_prob=0.002, step=5)


def test_genotype_sets_of_iron():
    g = _iron()
    assert g.genotypes_by_chr == {"13": ("SS", "SB", "BB"), "X": ("SS", "SB", "BS", "BB", "SY", "BY")}
    assert g.genotype_names == ("SS", "SB", "BB", "BS", "SY", "BY")
    x = np.array([c == "X" for c in g.chromosome])
    col = {n: k for k, n in enumerate(g.genotype_names)}
    assert np.all(g.probs[:, ~x][:, :, [col["BS"], col["SY"], col["BY"]]] == 0)
    cross = read_fixture_cross(DATA / "iron_sub.zip")
    male = ~cross.is_female
    forward = cross.cross_info[:, 0] == 0
    female_cols = [col[n] for n in ("SS", "SB", "BS", "BB")]
    assert np.all(g.probs[male][:, x][:, :, female_cols] == 0)
    assert np.all(g.probs[~male & forward][:, x][:, :, [col["BS"], col["BB"], col["SY"], col["BY"]]] == 0)
    assert np.all(g.probs[~male & ~forward][:, x][:, :, [col["SS"], col["SB"], col["SY"], col["BY"]]] == 0)
    np.testing.assert_allclose(g.probs.sum(axis=2), 1, atol=1e-12)


def test_allele_probs_direct_f2():
    g = _iron()
    a = allele_probs(g)
    assert a.genotype_names == ("S", "B")
    P = {n: g.probs[:, :, k] for k, n in enumerate(g.genotype_names)}
    S = P["SS"] + (P["SB"] + P["BS"]) / 2 + P["SY"]
    B = P["BB"] + (P["SB"] + P["BS"]) / 2 + P["BY"]
    np.testing.assert_allclose(a.probs[:, :, 0], S, atol=1e-15)
    np.testing.assert_allclose(a.probs[:, :, 1], B, atol=1e-15)


def test_allele_probs_direct_do():
    cross = read_fixture_cross(DATA / "DOex_sub.zip")
    g = genoprob(cross, chromosomes=["X"])
    a = allele_probs(g)
    for k, allele in enumerate("ABCDEFGH"):
        expected = np.zeros(g.probs.shape[:2])
        for j, name in enumerate(g.genotype_names):
            if name == allele + "Y":
                expected += g.probs[:, :, j]
            elif len(name) == 2 and name[1] != "Y":
                expected += g.probs[:, :, j] * (name.count(allele) / 2)
        np.testing.assert_allclose(a.probs[:, :, k], expected, atol=1e-15)
    np.testing.assert_allclose(a.probs.sum(axis=2), 1, atol=1e-12)


def test_allele_probs_inbred_and_bc():
    geno = np.array([[1, 2, 0, 1], [2, 2, 1, 0]])
    ri = genoprob(make_cross("riself", {"1": geno}, {"1": [0, 5, 10, 20]}, alleles=("L", "C")))
    a = allele_probs(ri)
    assert a.genotype_names == ("L", "C")
    np.testing.assert_array_equal(a.probs, ri.probs)
    bc = genoprob(make_cross("bc", {"1": geno}, {"1": [0, 5, 10, 20]}))
    a = allele_probs(bc)  # R/qtl2 keeps a backcross's genotype probabilities (test_allele_map.py: R's values)
    assert bc.genotype_names == ("AA", "AB") and a.genotype_names == ("A", "B")
    np.testing.assert_array_equal(a.probs, bc.probs)


@pytest.mark.parametrize("cores", [1, 2])
@pytest.mark.parametrize("case", ["iron", "do", "bc"])
def test_genoprob_alleles_is_allele_probs_of_genoprob_chromosome_by_chromosome(case, cores):
    """``genoprob(..., alleles=True)`` turns each chromosome into allele probabilities as it is done:
    the result is ``allele_probs(genoprob(...))`` (the direct sums checked above), names and sets included,
    and ``progress`` hears of every chromosome once, in the calling thread."""
    import threading

    if case == "iron":
        cross, options = read_fixture_cross(DATA / "iron_sub.zip"), dict(error_prob=0.002, step=5)
    elif case == "do":
        cross, options = read_fixture_cross(DATA / "DOex_sub.zip"), dict(step=2)
    else:
        geno = np.array([[1, 2, 0, 1], [2, 2, 1, 0]])
        cross = make_cross("bc", {"1": geno, "2": geno[::-1]}, {"1": [0, 5, 10, 20], "2": [0, 3, 9, 12]})
        options = {}
    whole = allele_probs(genoprob(cross, cores=cores, **options))
    heard = []
    each = genoprob(cross, cores=cores, alleles=True,
                    progress=lambda c: heard.append((c, threading.current_thread() is threading.main_thread())),
                    **options)
    assert each.genotype_names == whole.genotype_names
    assert each.genotypes_by_chr == whole.genotypes_by_chr
    assert each.markers == whole.markers and each.chromosome == whole.chromosome
    np.testing.assert_allclose(each.probs, whole.probs, atol=1e-15, rtol=0)
    assert sorted(c for c, _ in heard) == sorted(cross.chromosomes) and all(main for _, main in heard)


def test_write_genoprobs_layout_and_values(tmp_path):
    g = _iron()
    out = write_genoprobs(g, tmp_path / "p.csv")
    df = pd.read_csv(out, index_col=0)
    assert df.index.astype(str).tolist() == list(g.ids)
    expected_cols = [f"{m}:{x}" for m, c in zip(g.markers, g.chromosome) for x in g.genotypes_by_chr[c]]
    assert df.columns.tolist() == expected_cols
    assert any(col.startswith("c13.loc") for col in df.columns)  # pseudomarkers
    col = {n: k for k, n in enumerate(g.genotype_names)}
    mk = {m: j for j, m in enumerate(g.markers)}
    for name in df.columns[::7]:
        m, x = name.rsplit(":", 1)
        np.testing.assert_allclose(df[name].to_numpy(), g.probs[:, mk[m], col[x]], rtol=1e-14, atol=0)


def test_write_genoprobs_refuses_to_overwrite(tmp_path):
    g = _iron()
    path = tmp_path / "p.csv"
    path.write_text("keep me")
    with pytest.raises(LMMInputError, match="exists"):
        write_genoprobs(g, path)
    assert path.read_text() == "keep me"
    write_genoprobs(g, path, force=True)
    assert path.read_text().startswith(",")


def test_written_autosomes_read_back_with_read_genoprobs(tmp_path):
    from lmmcore.genotypes import read_genoprobs

    g = genoprob(read_fixture_cross(DATA / "iron_sub.zip"), error_prob=0.002, step=5, chromosomes=["13"])
    write_genoprobs(g, tmp_path / "p.csv")
    pd.DataFrame({"marker": g.markers, "chr": g.chromosome, "pos": g.position}).to_csv(tmp_path / "map.csv", index=False)
    back = read_genoprobs(tmp_path / "p.csv", tmp_path / "map.csv")
    assert back.markers == g.markers and back.genotype_names == g.genotype_names and back.ids == g.ids
    np.testing.assert_allclose(back.probs, g.probs, rtol=1e-14, atol=0)
