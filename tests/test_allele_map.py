"""Allele probabilities and kinships through each cross type's own genotype-to-allele map, against R/qtl2.

Fixtures (tests/data/hmm; ``make_fixtures.py`` and ``make_fixtures.R`` there):

* ``bc_synthetic.zip`` (a backcross with X, both sexes), ``iron_sub_b6cast.zip`` (15 mice of iron, f2,
  chromosomes 13 and X, with the alleles named ``B6``, ``CAST`` instead of ``S``, ``B``) and
  ``DOex_sub_founders.zip`` (8 DO mice, chromosomes 3 and X, founders named ``AJ`` ... ``WSB``);
* R/qtl2 0.43-5's ``calc_genoprob``, ``genoprob_to_alleleprob`` and ``calc_kinship`` (overall and
  ``"loco"``) of them, 17 significant digits.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hmm_util import read_fixture_cross, read_rqtl2_probs
from lmmcore.cli import main
from lmmcore.errors import LMMInputError
from lmmcore.genostore import read_genotypes_h5, write_genotypes_h5
from lmmcore.allele_map import allele_matrix
from lmmcore.hmm import allele_probs, genoprob
from lmmcore.kinship import compute_kinship, compute_loco_kinships
from lmmcore.xchr import select_chromosomes

DATA = Path(__file__).parent / "data" / "hmm"
DO_FOUNDERS = ("AJ", "B6", "129", "NOD", "NZO", "CAST", "PWK", "WSB")

# (fixture, error_prob as in make_fixtures.R)
CROSSES = {"bc": ("bc_synthetic", 0.01), "f2": ("iron_sub_b6cast", 0.002), "do": ("DOex_sub_founders", 0.002)}


def _probs(case: str):
    name, error_prob = CROSSES[case]
    return genoprob(read_fixture_cross(DATA / f"{name}.zip"), error_prob=error_prob)


def _in_layout(g, ref, rename=None):
    """Our probabilities in the rows and MARKER:NAME columns of R/qtl2's file (``rename``: R's name -> ours)."""
    rename = rename or {}
    mi = {m: k for k, m in enumerate(g.markers)}
    gi = {x: k for k, x in enumerate(g.genotype_names)}
    pairs = [c.rsplit(":", 1) for c in ref.columns]
    rows = [g.ids.index(i) for i in ref.index]
    return g.probs[rows][:, [mi[m] for m, _ in pairs], [gi[rename.get(x, x)] for _, x in pairs]]


def _r_kinships(case: str) -> dict[str, pd.DataFrame]:
    """R/qtl2's ``calc_kinship(pr)`` (key ``"overall"``) and ``calc_kinship(pr, "loco")`` (keyed by chromosome)."""
    df = pd.read_csv(DATA / f"{CROSSES[case][0]}_kinship_rqtl2.csv", dtype={"matrix": str, "id": str})
    return {k: part.drop(columns="matrix").set_index("id") for k, part in df.groupby("matrix", sort=False)}


def _check_kinship(ids, K, ref: pd.DataFrame) -> None:
    order = [list(ids).index(i) for i in ref.index]
    np.testing.assert_allclose(K[np.ix_(order, order)], ref.to_numpy(), atol=1e-13, rtol=0)


def test_genotype_names_with_multi_letter_alleles_are_rqtl2s():
    g = _probs("f2")
    assert g.genotypes_by_chr == {"13": ("B6B6", "B6CAST", "CASTCAST"),
                                  "X": ("B6B6", "B6CAST", "CASTB6", "CASTCAST", "B6Y", "CASTY")}
    ref = read_rqtl2_probs(DATA / "iron_sub_b6cast_genoprob_rqtl2.csv")
    np.testing.assert_allclose(_in_layout(g, ref), ref.to_numpy(), atol=1e-13, rtol=0)


@pytest.mark.parametrize("case", ["bc", "f2", "do"])
@pytest.mark.parametrize("in_worker", [False, True])
def test_allele_probs_are_rqtl2s(case, in_worker):
    """Names and values of ``genoprob_to_alleleprob``, by ``allele_probs`` and by ``genoprob(alleles=True)``.

    A backcross keeps its genotype probabilities (R/qtl2: ``A = P(AA)``, ``B = P(AB)``; on X the males'
    ``AY``, ``BY`` stay as they are, R naming them ``C``, ``D``)."""
    name, error_prob = CROSSES[case]
    if in_worker:
        a = genoprob(read_fixture_cross(DATA / f"{name}.zip"), error_prob=error_prob, alleles=True)
    else:
        a = allele_probs(_probs(case))
    expected = {"bc": ("A", "B", "AY", "BY"), "f2": ("B6", "CAST"), "do": DO_FOUNDERS}[case]
    assert a.genotype_names == expected
    gz = ".gz" if case == "do" else ""
    ref = read_rqtl2_probs(DATA / f"{name}_alleleprob_rqtl2.csv{gz}")
    rename = {}
    if case == "bc":
        x = {c.rsplit(":", 1)[0] for c in ref.columns if c.endswith(":D")}
        assert x and all(m in set(a.markers) and a.chromosome[a.markers.index(m)] == "X" for m in x)
        rename = {"C": "AY", "D": "BY"}
        assert a.genotypes_by_chr["X"] == ("A", "B", "AY", "BY") and a.genotypes_by_chr["1"] == ("A", "B")
    np.testing.assert_allclose(_in_layout(a, ref, rename), ref.to_numpy(), atol=1e-13, rtol=0)


@pytest.mark.parametrize("case", ["bc", "f2", "do"])
def test_kinships_are_rqtl2s(case):
    """``calc_kinship`` overall and LOCO (allele probabilities, X kept) from the genotype probabilities."""
    g = _probs(case)
    ref = _r_kinships(case)
    _check_kinship(g.ids, compute_kinship(g).matrix, ref["overall"])
    loco = compute_loco_kinships(g)
    assert set(loco) == set(ref) - {"overall"}
    for c, K in loco.items():
        _check_kinship(g.ids, K.matrix, ref[c])


def test_names_alone_give_the_hemizygous_male_one_allele():
    """Without the cross's map (a CSV of R/qtl2's probabilities), ``SY`` is read as the one allele ``S``:
    the kinship of an F2 with X is R/qtl2's (before, ``Y`` counted as an allele)."""
    alleles, A = allele_matrix(("SS", "SB", "BS", "BB", "SY", "BY"))
    assert alleles == ("S", "B")
    np.testing.assert_array_equal(A, [[1, 0], [0.5, 0.5], [0.5, 0.5], [0, 1], [1, 0], [0, 1]])
    g = genoprob(read_fixture_cross(DATA / "iron_sub.zip"), error_prob=0.002)
    bare = replace(g, alleles=None, allele_map=None)
    _check_kinship(g.ids, compute_kinship(bare).matrix, _r_kinships("f2")["overall"])


def test_names_alone_give_a_backcross_rqtl2s_kinship():
    """A backcross's names (AA, AB; on X AY, BY) read without its cross type give R/qtl2's map, the identity."""
    g = _probs("bc")
    bare = replace(g, alleles=None, allele_map=None)
    assert bare.allele_matrix()[0] == ("A", "B", "AY", "BY")
    ref = _r_kinships("bc")
    _check_kinship(g.ids, compute_kinship(bare).matrix, ref["overall"])
    for c, K in compute_loco_kinships(bare).items():
        _check_kinship(g.ids, K.matrix, ref[c])


def test_the_map_is_kept_by_binary_files_and_chromosome_selection(tmp_path):
    g = _probs("f2")
    path = write_genotypes_h5(g, tmp_path / "p.h5")
    back = read_genotypes_h5(path)
    assert back.alleles == g.alleles == ("B6", "CAST")
    np.testing.assert_array_equal(back.allele_map, g.allele_map)
    np.testing.assert_array_equal(allele_probs(back).probs, allele_probs(g).probs)
    x = read_genotypes_h5(path, chromosomes=["X"])
    assert x.genotype_names == ("B6B6", "B6CAST", "CASTB6", "CASTCAST", "B6Y", "CASTY")
    np.testing.assert_array_equal(allele_probs(x).probs, allele_probs(select_chromosomes(g, ["X"])).probs)
    bc = select_chromosomes(_probs("bc"), ["1"])  # the X's AY, BY rows and alleles go with it
    assert bc.genotype_names == ("AA", "AB") and bc.alleles == ("A", "B")
    np.testing.assert_array_equal(allele_probs(bc).probs, bc.probs)


@pytest.mark.parametrize("case", ["f2", "do"])
def test_cli_kinship_and_allele_scan_of_multi_letter_crosses(tmp_path, capsys, case):
    """``lmmcore kinship --cross --loco`` gives R/qtl2's LOCO kinships and ``scan --cross --alleles`` runs
    (before: exit 2, "Cannot turn genotype 'B6B6' into alleles")."""
    name, error_prob = CROSSES[case]
    cross = str(DATA / f"{name}.zip")
    out = tmp_path / "K.csv"
    assert main(["kinship", "--cross", cross, "--loco", "--error-prob", str(error_prob), "--out", str(out)]) == 0
    loco = pd.read_csv(out, dtype={"chr": str, "id": str})
    ref = _r_kinships(case)
    assert set(loco.chr) == set(ref) - {"overall"}
    for c, block in loco.groupby("chr"):
        _check_kinship(block.id.tolist(), block.drop(columns=["chr", "id"]).to_numpy(), ref[c])
    probs = tmp_path / "alleles.csv"
    assert main(["genoprob", "--cross", cross, "--alleles", "--error-prob", str(error_prob),
                 "--out", str(probs)]) == 0
    gz = ".gz" if case == "do" else ""
    ref = read_rqtl2_probs(DATA / f"{name}_alleleprob_rqtl2.csv{gz}")
    written = read_rqtl2_probs(probs)
    assert written.columns.tolist() == ref.columns.tolist()
    np.testing.assert_allclose(written.loc[ref.index].to_numpy(), ref.to_numpy(), atol=1e-13, rtol=0)
    if case == "f2":  # 15 mice: enough for a scan of two allele columns
        scan = tmp_path / "scan.csv"
        assert main(["scan", "--cross", cross, "--alleles", "--kinship", "loco", "--error-prob", str(error_prob),
                     "--out", str(scan)]) == 0, capsys.readouterr().err
        table = pd.read_csv(scan)
        assert len(table) == 2 * 4 and "beta_CAST" in table.columns  # liver, spleen at 4 markers


@pytest.mark.parametrize("names,alleles,rows", [
    (("SS", "SB", "BS", "BB", "SY", "BY"), ("S", "B"), [[1, 0], [.5, .5], [.5, .5], [0, 1], [1, 0], [0, 1]]),
    (("B6B6", "B6CAST", "CASTB6", "CASTCAST", "B6Y", "CASTY"), ("B6", "CAST"),
     [[1, 0], [.5, .5], [.5, .5], [0, 1], [1, 0], [0, 1]]),
    (("AA", "AB", "AY", "BY"), ("A", "B", "AY", "BY"), np.eye(4)),  # a backcross's names: R/qtl2's identity
    (("B6B6", "B6CAST"), ("B6", "CAST"), np.eye(2)),
    (tuple(str(k) for k in range(1, 17)), tuple(str(k) for k in range(1, 17)), np.eye(16)),  # founders 1 ... 16
    (("B6", "CAST", "AJ"), ("B6", "CAST", "AJ"), np.eye(3)),  # allele probabilities: no homozygote
    (("A", "B"), ("A", "B"), np.eye(2)),
    (("B6/B6", "B6/CAST"), ("B6", "CAST"), [[1, 0], [.5, .5]]),
    (("AA", "YY", "AY"), ("A", "Y"), [[1, 0], [0, 1], [.5, .5]]),  # Y an allele: AY a heterozygote
])
def test_allele_matrix_reads_rqtl2_genotype_names(names, alleles, rows):
    got, A = allele_matrix(names)
    assert got == alleles
    np.testing.assert_array_equal(A, rows)


def test_allele_matrix_from_names_equals_each_cross_types_map():
    """The names R/qtl2 gives (B6/CAST, DO founders AJ ... WSB, a backcross) read back to the cross type's own map."""
    for case in ("f2", "do", "bc"):
        g = _probs(case)
        alleles, A = allele_matrix(g.genotype_names)
        assert alleles == g.alleles
        np.testing.assert_array_equal(A, g.allele_map)


def test_a_name_that_spells_no_alleles_is_refused():
    with pytest.raises(LMMInputError, match="'XYZ' does not spell its alleles"):
        allele_matrix(("AA", "AB", "XYZ"))


def test_rqtl2_csv_with_multi_letter_names_gives_rqtl2s_kinship(tmp_path):
    """R/qtl2's own CSV of the B6/CAST F2 (genotypes B6B6 ... CASTY, no cross type) read as a user would."""
    from lmmcore.genotypes import read_genoprobs

    cross = read_fixture_cross(DATA / "iron_sub_b6cast.zip")
    rows = [(m, c, p) for c, s in cross.gmap.items() for m, p in s.items()]
    pd.DataFrame(rows, columns=["marker", "chr", "pos"]).to_csv(tmp_path / "map.csv", index=False)
    g = read_genoprobs(DATA / "iron_sub_b6cast_genoprob_rqtl2.csv", tmp_path / "map.csv")
    assert g.allele_map is None and g.allele_matrix()[0] == ("B6", "CAST")
    _check_kinship(g.ids, compute_kinship(g).matrix, _r_kinships("f2")["overall"])


SYNTHETIC = ["riself4", "riself8", "riself16", "magic19", "risib4", "risib8", "bc", "risib", "dh", "haploid", "ail",
             "hs"]


@pytest.mark.parametrize("crosstype", SYNTHETIC)
def test_kinship_of_every_cross_type_is_rqtl2s(crosstype):
    """Every type's genotype-to-allele map, through R/qtl2's ``calc_kinship`` of its synthetic cross."""
    ref = pd.read_csv(DATA / "synthetic_kinship_rqtl2.csv", dtype={"id1": str, "id2": str})
    ref = ref[ref.crosstype == crosstype].pivot(index="id1", columns="id2", values="kinship")
    g = genoprob(read_fixture_cross(DATA / f"{crosstype}_synthetic.zip"), error_prob=0.01)
    _check_kinship(g.ids, compute_kinship(g).matrix, ref.loc[:, ref.index])


@pytest.mark.parametrize("names,alleles,rows", [
    # founders named by their strain (JAX nomenclature has '/'): allele probabilities, no homozygote
    (("A/J", "C57BL/6J", "CAST/EiJ"), ("A/J", "C57BL/6J", "CAST/EiJ"), np.eye(3)),
    # R/qtl2's genotype names of such founders: the homozygotes name the alleles, '/' is part of them
    (("A/JA/J", "A/JCAST/EiJ", "CAST/EiJCAST/EiJ", "A/JY", "CAST/EiJY"), ("A/J", "CAST/EiJ"),
     [[1, 0], [.5, .5], [0, 1], [1, 0], [0, 1]]),
    # '/' as the separator (a homozygote written with it), a male written B6/Y
    (("B6/B6", "B6/CAST", "CAST/CAST", "B6/Y", "CAST/Y"), ("B6", "CAST"), [[1, 0], [.5, .5], [0, 1], [1, 0], [0, 1]]),
])
def test_allele_matrix_reads_slashes_in_strain_names(names, alleles, rows):
    """Before: 'C57BL/6J' was read as a heterozygote of alleles 'C57BL' and '6J' (a wrong kinship, no
    message) and 'A/JA/J' refused; R/qtl2's CSV of a cross whose founders have strain names."""
    got, A = allele_matrix(names)
    assert got == alleles
    np.testing.assert_array_equal(A, rows)


def test_allele_probability_csv_with_strain_names_gives_the_crosss_kinship(tmp_path):
    """``lmmcore genoprob --alleles --out a.csv`` of a DO whose founders are named A/J ... WSB/EiJ, read back
    with ``--genoprobs``: the kinship of the cross (before: 0.35 off, with no message)."""
    from lmmcore.genotypes import read_genoprobs
    from lmmcore.hmm import write_genoprobs

    strains = ["A/J", "C57BL/6J", "129S1/SvImJ", "NOD/ShiLtJ", "NZO/HlLtJ", "CAST/EiJ", "PWK/PhJ", "WSB/EiJ"]
    cross = replace(read_fixture_cross(DATA / "DOex_sub_founders.zip"), alleles=tuple(strains))
    g = genoprob(cross, error_prob=0.002)
    for probs in (g, allele_probs(g)):
        kept = select_chromosomes(probs, ["3"])  # one genotype set, as a CSV has
        write_genoprobs(kept, tmp_path / "p.csv", force=True)
        pd.DataFrame({"marker": kept.markers, "chr": kept.chromosome, "pos": kept.position}).to_csv(
            tmp_path / "map.csv", index=False)
        back = read_genoprobs(tmp_path / "p.csv", tmp_path / "map.csv")
        assert back.allele_matrix()[0] == tuple(strains)
        np.testing.assert_allclose(compute_kinship(back).matrix, compute_kinship(kept).matrix, atol=1e-13, rtol=0)
    _check_kinship(g.ids, compute_kinship(g).matrix, _r_kinships("do")["overall"])


@pytest.mark.parametrize("case,alleles,clash", [
    ("f2", ("B6", "B6"), "B6B6"),  # not distinct (R/qtl2 warns; its probabilities go by position, ours by name)
    ("f2", ("A", "AA"), "AAA"),  # X: A AA and AA A
    ("bc", ("B", "BY"), "BY"),  # the allele BY and the males' BY (B's hemizygous column)
])
def test_alleles_that_give_two_genotypes_one_name_are_refused(case, alleles, clash):
    """Before: the two genotypes' probabilities were merged into one column, with no message (an F2 with
    alleles B6, B6 had probabilities summing to 0 or 2; A, AA changed the kinship by 0.19)."""
    cross = read_fixture_cross(DATA / f"{CROSSES[case][0]}.zip")
    with pytest.raises(LMMInputError, match=f"same name to different genotypes or alleles \\({clash}"):
        genoprob(replace(cross, alleles=alleles), error_prob=0.01)
    ok = genoprob(replace(cross, alleles=("B", "BY")), error_prob=0.01) if case == "f2" else None
    if ok is not None:  # an F2's B, BY give distinct names: the cross's probabilities, renamed
        np.testing.assert_array_equal(ok.probs, genoprob(cross, error_prob=0.01).probs)


def test_x_scan_on_allele_probabilities_keeps_the_x_covariates_in_the_alternative(tmp_path):
    """R/qtl2 puts Xcovar in the null model only; with allele probabilities (which do not span sex) lmmcore
    keeps the X covariates in the alternative too: its X LODs are R's scan1 with them as addcovar.
    R/qtl2 0.43-5 (tests/data/xscan/make_rqtl2_xscan_alleles.R), doex_x.zip: 60 DO mice, chromosomes 3, X."""
    out = tmp_path / "scan.csv"
    cross = Path(__file__).parent / "data" / "cross" / "doex_x.zip"
    assert main(["scan", "--cross", str(cross), "--alleles", "--kinship", "loco", "--out", str(out)]) == 0
    ours = pd.read_csv(out, dtype={"chr": str}).set_index("marker")
    ref = pd.read_csv(Path(__file__).parent / "data" / "xscan" / "rqtl2_scan1_alleles_x.csv", dtype={"chr": str})
    for case, part in ref.groupby("case"):
        part = part.set_index("marker")
        diff = np.abs(ours.loc[part.index, "lod"].to_numpy() - part["OF_immobile_pct"].to_numpy())
        x = (part.chr == "X").to_numpy()
        if case == "addcovar":
            assert diff.max() < 1e-6
        else:  # R's own: the same autosome, a different X
            assert diff[~x].max() < 1e-6 and diff[x].max() > 0.1


def test_repr_says_what_the_record_holds():
    g = _probs("do")
    assert repr(g) == (
        "<Genotypes: 8 individuals, 195 markers on 2 chromosomes, probabilities of 44 genotypes (AJAJ, AJB6, "
        "B6B6, AJ129, B6129, 129129, …, WSBY), alleles AJ, B6, 129, NOD, NZO, CAST, PWK, WSB, "
        f"from {str(DATA / 'DOex_sub_founders.zip')!r}>")
    assert repr(allele_probs(g)).startswith("<Genotypes: 8 individuals, 195 markers on 2 chromosomes, "
                                            "probabilities of 8 alleles (AJ, B6, 129, NOD, NZO, CAST, PWK, WSB)")
