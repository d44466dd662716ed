"""Kinship matrices and genotype readers.

Kinships are checked against independent double loops over individuals and
markers (allowed here, never in the package), LOCO against recomputation
from the marker subset, and the readers by round trips and by each of their
bad-input errors.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from lmmcore.errors import LMMInputError, LMMWarning
from lmmcore.genotypes import (
    Genotypes,
    chromosome_sort_key,
    read_dosages,
    read_genoprobs,
    read_map,
    read_plink,
    sort_chromosomes,
)
from lmmcore.kinship import (
    allele_matrix,
    compute_kinship,
    compute_loco_kinships,
    kinship_from_dosages,
    kinship_from_genoprobs,
    loco_kinships,
)
from lmmcore.simulate import write_plink

GENO3 = ("AA", "AB", "BB")


# --------------------------------------------------------------------------- #
# Independent references: explicit loops over individuals and markers
# --------------------------------------------------------------------------- #
def loop_genoprob_kinship(probs, genotype_names):
    """K_ik = mean_j sum_a p_ija p_kja, with allele probabilities spelled out by hand."""
    n, m, _ = probs.shape
    alleles = []
    for g in genotype_names:
        for a in (g.split("/") if "/" in g else list(g)):
            if a not in alleles:
                alleles.append(a)
    K = np.zeros((n, n))
    for i in range(n):
        for k in range(n):
            total = 0.0
            for j in range(m):
                p_i = dict.fromkeys(alleles, 0.0)
                p_k = dict.fromkeys(alleles, 0.0)
                for g, name in enumerate(genotype_names):
                    parts = name.split("/") if "/" in name else list(name)
                    for a in parts:
                        p_i[a] += probs[i, j, g] / len(parts)
                        p_k[a] += probs[k, j, g] / len(parts)
                total += sum(p_i[a] * p_k[a] for a in alleles)
            K[i, k] = total / m
    return K


def loop_dosage_kinship(X, kind):
    n, m = X.shape
    K = np.zeros((n, n))
    used = 0
    for j in range(m):
        col = X[:, j]
        if col.max() == col.min():
            continue
        used += 1
        p = sum(col) / (2 * n)
        for i in range(n):
            for k in range(n):
                if kind == "standardized":
                    K[i, k] += (col[i] - 2 * p) * (col[k] - 2 * p) / (2 * p * (1 - p))
                else:
                    K[i, k] += (col[i] - 2 * p) * (col[k] - 2 * p)
    return K / used


def random_probs(rng, n, m, g):
    return rng.dirichlet(np.full(g, 0.7), size=(n, m))


def random_dosage(rng, n, m):
    """Binomial dosages; the first two individuals are AA and BB, so every marker is polymorphic."""
    p = rng.uniform(0.1, 0.9, m)
    X = rng.binomial(2, p, size=(n, m)).astype(float)
    X[0], X[1] = 0.0, 2.0
    return X


# --------------------------------------------------------------------------- #
# Genotype-probability kinship
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "names",
    [GENO3, ("A", "B"), ("AA", "AB", "AC", "BB", "BC", "CC"), ("B6/B6", "B6/CAST", "CAST/CAST")],
)
def test_genoprob_kinship_matches_double_loop(names):
    rng = np.random.default_rng(1)
    probs = random_probs(rng, 7, 9, len(names))
    expected = loop_genoprob_kinship(probs, list(names))
    np.testing.assert_allclose(kinship_from_genoprobs(probs, names), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("chunk", [1, 2, 5, 1000])
def test_genoprob_kinship_does_not_depend_on_chunking(chunk):
    rng = np.random.default_rng(2)
    probs = random_probs(rng, 10, 13, 3)
    full = kinship_from_genoprobs(probs, GENO3)
    np.testing.assert_allclose(kinship_from_genoprobs(probs, GENO3, chunk_size=chunk), full, rtol=1e-13)


def test_hand_computed_two_individuals():
    # One marker: individual 1 is AA, individual 2 is AB.
    # Allele probabilities (1, 0) and (1/2, 1/2): K = [[1, 1/2], [1/2, 1/2]].
    probs = np.array([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]])
    np.testing.assert_allclose(kinship_from_genoprobs(probs, GENO3), [[1.0, 0.5], [0.5, 0.5]])


def test_inbred_individuals_have_diagonal_one():
    rng = np.random.default_rng(3)
    n, m = 6, 20
    homozygous = rng.choice([0, 2], size=(n, m))  # AA or BB only
    probs = np.zeros((n, m, 3))
    np.put_along_axis(probs, homozygous[..., None], 1.0, axis=2)
    K = kinship_from_genoprobs(probs, GENO3)
    np.testing.assert_allclose(np.diag(K), 1.0, rtol=0, atol=1e-15)
    # Off-diagonal: the fraction of markers where two lines carry the same allele.
    np.testing.assert_allclose(K[0, 1], np.mean(homozygous[0] == homozygous[1]))


def test_single_letter_genotypes_of_inbred_lines():
    probs = np.array([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 0.0]]])
    np.testing.assert_allclose(
        kinship_from_genoprobs(probs, ("A", "B")), [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    )


def test_allele_matrix():
    alleles, A = allele_matrix(GENO3)
    assert alleles == ("A", "B")
    np.testing.assert_array_equal(A, [[1, 0], [0.5, 0.5], [0, 1]])
    with pytest.raises(LMMInputError, match="does not spell its alleles"):
        allele_matrix(["AA", "BB", "AAB"])  # alone, a name without a homozygote is an allele


# --------------------------------------------------------------------------- #
# Dosage kinships
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kind", ["standardized", "centered"])
def test_dosage_kinship_matches_double_loop(kind):
    rng = np.random.default_rng(4)
    X = random_dosage(rng, 8, 15)
    expected = loop_dosage_kinship(X, kind)
    np.testing.assert_allclose(kinship_from_dosages(X, kind), expected, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(
        kinship_from_dosages(X, kind, chunk_size=4), expected, rtol=1e-12, atol=1e-13
    )


@pytest.mark.parametrize("kind", ["standardized", "centered"])
def test_monomorphic_markers_are_skipped_with_a_warning(kind):
    rng = np.random.default_rng(5)
    X = random_dosage(rng, 8, 10)
    X[:, 3] = 2.0
    X[:, 7] = 1.0  # every individual heterozygous: no variation either
    with pytest.warns(LMMWarning, match=r"2 of 10 markers are monomorphic"):
        K = kinship_from_dosages(X, kind)
    np.testing.assert_allclose(K, kinship_from_dosages(np.delete(X, [3, 7], axis=1), kind), rtol=1e-13)


def test_standardized_kinship_of_unrelated_individuals_has_unit_diagonal_on_average():
    rng = np.random.default_rng(6)
    X = random_dosage(rng, 200, 4000)
    K = kinship_from_dosages(X)
    assert abs(np.diag(K).mean() - 1.0) < 0.02
    assert abs(K[np.triu_indices(200, 1)].mean()) < 0.01


@pytest.mark.parametrize("make", ["genoprobs", "standardized", "centered"])
def test_kinships_are_symmetric_positive_semidefinite(make):
    rng = np.random.default_rng(7)
    if make == "genoprobs":
        K = kinship_from_genoprobs(random_probs(rng, 30, 5, 3), GENO3)
    else:
        K = kinship_from_dosages(random_dosage(rng, 30, 5), make)
    np.testing.assert_array_equal(K, K.T)
    d = np.linalg.eigvalsh(K)
    assert d.min() > -1e-12 * d.max()


# --------------------------------------------------------------------------- #
# LOCO
# --------------------------------------------------------------------------- #
CHROMS = np.array(["2", "1", "X", "1", "10", "2", "1", "X", "10", "10", "2", "1"])


def test_loco_genoprobs_equal_kinship_of_remaining_markers():
    rng = np.random.default_rng(8)
    probs = random_probs(rng, 9, CHROMS.size, 3)
    loco = loco_kinships(probs, CHROMS, genotype_names=GENO3, chunk_size=2)
    assert list(loco) == ["1", "2", "10", "X"]
    for c, K in loco.items():
        expected = kinship_from_genoprobs(probs[:, CHROMS != c], GENO3)
        np.testing.assert_allclose(K, expected, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(K, K.T)


@pytest.mark.parametrize("kind", ["standardized", "centered"])
def test_loco_dosages_equal_kinship_of_remaining_markers(kind):
    rng = np.random.default_rng(9)
    X = random_dosage(rng, 9, CHROMS.size)
    X[:, 4] = 0.0  # monomorphic marker on chromosome 10: skipped in every LOCO matrix
    with pytest.warns(LMMWarning, match="monomorphic"):
        loco = loco_kinships(X, CHROMS, kind=kind)
    for c, K in loco.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LMMWarning)
            expected = kinship_from_dosages(X[:, CHROMS != c], kind)
        np.testing.assert_allclose(K, expected, rtol=1e-11, atol=1e-13)


def test_loco_records_count_markers_of_other_chromosomes():
    rng = np.random.default_rng(10)
    order = sorted(range(CHROMS.size), key=lambda j: chromosome_sort_key(CHROMS[j]))
    g = Genotypes(
        ids=tuple(f"i{k}" for k in range(6)),
        markers=tuple(f"m{k}" for k in range(CHROMS.size)),
        chromosome=tuple(CHROMS[order]),
        position=np.arange(CHROMS.size, dtype=float),
        probs=random_probs(rng, 6, CHROMS.size, 3)[:, order],
        genotype_names=GENO3,
    )
    whole = compute_kinship(g)
    assert whole.kind == "genoprobs" and whole.n_markers == CHROMS.size and whole.chromosome_left_out is None
    loco = compute_loco_kinships(g)
    for c, k in loco.items():
        assert k.chromosome_left_out == c
        assert k.n_markers == int((CHROMS != c).sum())
        assert k.ids == g.ids


def test_dosage_records_count_polymorphic_markers():
    rng = np.random.default_rng(15)
    X = random_dosage(rng, 6, 6)
    X[:, 1] = 1.0  # monomorphic, on chromosome 1
    g = Genotypes(
        ids=tuple("abcdef"),
        markers=tuple(f"m{k}" for k in range(6)),
        chromosome=("1", "1", "1", "2", "2", "3"),
        position=np.arange(6.0),
        dosage=X,
    )
    with pytest.warns(LMMWarning, match="1 of 6 markers are monomorphic"):
        whole = compute_kinship(g, kind="centered")
    assert whole.kind == "centered" and whole.n_markers == 5
    with pytest.warns(LMMWarning):
        loco = compute_loco_kinships(g, kind="centered")
    assert {c: k.n_markers for c, k in loco.items()} == {"1": 3, "2": 3, "3": 4}
    expected = kinship_from_dosages(X[:, [0, 2, 3, 4]], "centered")
    np.testing.assert_allclose(loco["3"].matrix, expected, rtol=1e-12, atol=1e-14)


def test_loco_needs_two_chromosomes():
    X = random_dosage(np.random.default_rng(11), 5, 4)
    with pytest.raises(LMMInputError, match="at least two chromosomes"):
        loco_kinships(X, ["1"] * 4)
    with pytest.raises(LMMInputError, match="one chromosome per marker"):
        loco_kinships(X, ["1", "2"])


# --------------------------------------------------------------------------- #
# Kinship input validation
# --------------------------------------------------------------------------- #
def test_kinship_input_errors():
    rng = np.random.default_rng(12)
    probs = random_probs(rng, 4, 3, 3)
    with pytest.raises(LMMInputError, match="3 genotypes per marker but 2 genotype names"):
        kinship_from_genoprobs(probs, ("AA", "BB"))
    with pytest.raises(LMMInputError, match=r"shape \(individuals, markers, genotypes\)"):
        kinship_from_genoprobs(probs[:, :, 0], GENO3)
    bad = probs.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(LMMInputError, match="missing or infinite"):
        kinship_from_genoprobs(bad, GENO3)
    X = random_dosage(rng, 4, 3)
    with pytest.raises(LMMInputError, match="unknown"):
        kinship_from_dosages(X, "gcta")
    X[1, 1] = 3.0
    with pytest.raises(LMMInputError, match=r"must lie in \[0, 2\]"):
        kinship_from_dosages(X)
    X[1, 1] = np.nan
    with pytest.raises(LMMInputError, match="impute them first"):
        kinship_from_dosages(X)
    with pytest.raises(LMMInputError, match="No marker is polymorphic"), pytest.warns(LMMWarning):
        kinship_from_dosages(np.ones((4, 3)))


# --------------------------------------------------------------------------- #
# Readers: round trips
# --------------------------------------------------------------------------- #
def write_map(path, markers, chroms, pos):
    pd.DataFrame({"marker": markers, "chr": chroms, "pos": pos}).to_csv(path, index=False)


@pytest.fixture
def genoprob_files(tmp_path):
    """A genotype-probability CSV as R's write.csv writes it, markers out of genome order."""
    rng = np.random.default_rng(13)
    markers = ["m10a", "m1b", "mXa", "m2a", "m1a", "m10b"]
    chroms = ["10", "1", "X", "2", "1", "10"]
    pos = [5.0, 20.0, 1.0, 3.0, 10.0, 2.0]
    probs = random_probs(rng, 5, len(markers), 3)
    ids = ["a", "b", "NA", "d", "e"]  # "NA" is a valid ID, not a missing value
    cols = [f"{m}:{g}" for m in markers for g in GENO3]
    df = pd.DataFrame(probs.reshape(5, -1), columns=cols, index=ids)
    gp = tmp_path / "genoprobs.csv"
    df.to_csv(gp, float_format="%.17g")  # header starts with an empty cell
    mp = tmp_path / "map.csv"
    write_map(mp, markers[::-1], chroms[::-1], pos[::-1])
    return gp, mp, probs, markers, ids


def test_read_genoprobs_round_trip_in_genome_order(genoprob_files):
    gp, mp, probs, markers, ids = genoprob_files
    assert open(gp).readline().startswith(",m10a:AA")
    g = read_genoprobs(gp, mp)
    assert g.kind == "genoprobs" and g.ids == tuple(ids) and g.genotype_names == GENO3
    assert g.markers == ("m1a", "m1b", "m2a", "m10b", "m10a", "mXa")
    assert g.chromosome == ("1", "1", "2", "10", "10", "X")
    np.testing.assert_array_equal(g.position, [10, 20, 3, 2, 5, 1])
    order = [markers.index(m) for m in g.markers]
    np.testing.assert_allclose(g.probs, probs[:, order], rtol=1e-15)
    np.testing.assert_allclose(
        compute_kinship(g).matrix, kinship_from_genoprobs(probs, GENO3), rtol=1e-12
    )


def test_read_genoprobs_accepts_header_without_id_cell(tmp_path):
    # R's write.table(x, sep=",") omits the header cell above the row names.
    gp = tmp_path / "g.csv"
    gp.write_text("m1:A,m1:B\nx,1,0\ny,0.25,0.75\n")
    mp = tmp_path / "map.csv"
    write_map(mp, ["m1"], ["1"], [0.0])
    g = read_genoprobs(gp, mp)
    assert g.ids == ("x", "y") and g.genotype_names == ("A", "B")
    np.testing.assert_allclose(g.probs[:, 0, :], [[1, 0], [0.25, 0.75]])


def test_read_dosages_round_trip_and_mean_imputation(tmp_path):
    dp = tmp_path / "dosage.csv"
    dp.write_text("id,s2,s1,s3\na,0,2,1\nb,NA,1,1\nc,2,,0\nd,1,1,2\n")
    mp = tmp_path / "map.csv"
    write_map(mp, ["s1", "s2", "s3", "unused"], ["1", "1", "2", "2"], [1.0, 2.0, 0.5, 1.0])
    with pytest.warns(LMMWarning, match=r"2 missing dosages .* at 2 markers"):
        g = read_dosages(dp, mp)
    assert g.kind == "dosage" and g.markers == ("s1", "s2", "s3")
    np.testing.assert_allclose(g.dosage, [[2, 0, 1], [1, 1, 1], [4 / 3, 2, 0], [1, 1, 2]])


def test_read_plink_round_trip(tmp_path):
    rng = np.random.default_rng(14)
    X = random_dosage(rng, 6, 5)
    X[2, 3] = np.nan
    write_plink(tmp_path / "d", X, [f"i{k}" for k in range(6)], ["2", "1", "1", "X", "2"],
                [300, 200, 100, 50, 100], ["a", "b", "c", "d", "e"])
    message = r"1 missing dosage \(3.3% of all values, at 1 marker\) .* was replaced"
    with pytest.warns(LMMWarning, match=message):
        g = read_plink(tmp_path / "d")
    assert g.markers == ("c", "b", "e", "a", "d")
    assert g.chromosome == ("1", "1", "2", "2", "X")
    np.testing.assert_array_equal(g.position, [100, 200, 100, 300, 50])
    expected = X[:, [2, 1, 4, 0, 3]]
    expected[2, 4] = np.nanmean(X[:, 3])
    np.testing.assert_allclose(g.dosage, expected)
    with pytest.warns(LMMWarning):
        assert read_plink(tmp_path / "d.bed").ids == g.ids


def test_read_map_sorts_naturally(tmp_path):
    mp = tmp_path / "map.csv"
    mp.write_text("# a comment line\nMarker,Chr,Pos\nx,X,1\nb,10,5\na,2,7\nc,2,3\nd,1,9\n")
    m = read_map(mp)
    assert m["marker"].tolist() == ["d", "c", "a", "b", "x"]
    assert m["chr"].tolist() == ["1", "2", "2", "10", "X"]
    assert sort_chromosomes(["X", "chr10", "2", "MT", "Y", "chr1"]) == ["chr1", "2", "chr10", "X", "Y", "MT"]


def test_select_ids(genoprob_files):
    gp, mp, probs, _, _ = genoprob_files
    g = read_genoprobs(gp, mp)
    sub = g.select_ids(["e", "a"])
    np.testing.assert_array_equal(sub.probs, g.probs[[4, 0]])
    with pytest.raises(LMMInputError, match=r"1 ID has no genotypes .*zz"):
        g.select_ids(["a", "zz"])


# --------------------------------------------------------------------------- #
# Readers: each bad input names the file, the place and what to do
# --------------------------------------------------------------------------- #
@pytest.fixture
def map1(tmp_path):
    mp = tmp_path / "map.csv"
    write_map(mp, ["m1", "m2"], ["1", "1"], [0.0, 5.0])
    return mp


def check_genoprobs_error(tmp_path, map1, text, pattern):
    gp = tmp_path / "bad.csv"
    gp.write_text(text)
    with pytest.raises(LMMInputError, match=pattern) as info:
        read_genoprobs(gp, map1)
    assert "bad.csv" in str(info.value)
    return str(info.value)


HEAD = ",m1:AA,m1:AB,m1:BB,m2:AA,m2:AB,m2:BB\n"


def test_genoprobs_duplicate_ids(tmp_path, map1):
    check_genoprobs_error(tmp_path, map1, HEAD + "a,1,0,0,1,0,0\na,0,1,0,0,1,0\n",
                          r"ID 'a' appears 2 times .* must be unique")


def test_genoprobs_non_numeric(tmp_path, map1):
    check_genoprobs_error(tmp_path, map1, HEAD + "a,1,0,0,1,0,0\nb,0,x,0,0,1,0\n",
                          r"column m1:AB has the value 'x' for ID 'b', which is not a number")


def test_genoprobs_outside_unit_interval(tmp_path, map1):
    check_genoprobs_error(tmp_path, map1, HEAD + "a,1.5,-0.5,0,1,0,0\n",
                          r"column m1:AA has the value 1.5 for ID 'a' .* between 0 and 1")


def test_genoprobs_not_summing_to_one(tmp_path, map1):
    check_genoprobs_error(tmp_path, map1, HEAD + "a,1,0,0,1,0,0\nb,0.5,0.4,0,0,1,0\n",
                          r"marker m1 for ID 'b' sum to 0.9 .* must sum to 1 within 0.001")


def test_genoprobs_sum_within_tolerance_is_accepted(tmp_path, map1):
    gp = tmp_path / "ok.csv"
    gp.write_text(HEAD + "a,0.9995,0.0002,0.0002,1,0,0\n")
    assert read_genoprobs(gp, map1).n == 1


def test_genoprobs_missing_value(tmp_path, map1):
    check_genoprobs_error(tmp_path, map1, HEAD + "a,1,0,NA,1,0,0\n",
                          r"column m1:BB is missing for ID 'a' .* cannot be missing")


def test_genoprobs_bad_column_name(tmp_path, map1):
    check_genoprobs_error(tmp_path, map1, ",m1:AA,m1:BB,m2\na,1,0,1\n",
                          r"not named MARKER:GENOTYPE \(m2\)")


def test_genoprobs_inconsistent_genotype_sets(tmp_path, map1):
    check_genoprobs_error(tmp_path, map1, ",m1:AA,m1:AB,m1:BB,m2:AA,m2:BB\na,1,0,0,1,0\n",
                          r"marker m2 has the genotypes AA, BB but not AB")


def test_genoprobs_duplicate_columns(tmp_path, map1):
    check_genoprobs_error(tmp_path, map1, ",m1:AA,m1:AA\na,1,0\n", r"column 'm1:AA' appears 2 times")


def test_genoprobs_missing_id(tmp_path, map1):
    check_genoprobs_error(tmp_path, map1, HEAD + ",1,0,0,1,0,0\n", r"has no ID")


def test_genoprobs_markers_absent_from_map(tmp_path):
    mp = tmp_path / "map.csv"
    write_map(mp, ["m1"], ["1"], [0.0])
    gp = tmp_path / "g.csv"
    gp.write_text(HEAD + "a,1,0,0,1,0,0\n")
    message = r"1 of the 2 markers of .*g.csv is not in the map file .*\(m2\); add the missing markers"
    with pytest.raises(LMMInputError, match=message):
        read_genoprobs(gp, mp)


def test_missing_files(tmp_path, map1):
    with pytest.raises(LMMInputError, match=r"nothere.csv does not exist"):
        read_genoprobs(tmp_path / "nothere.csv", map1)
    with pytest.raises(LMMInputError, match=r"PLINK file set .* is incomplete"):
        read_plink(tmp_path / "nothere")


def test_dosage_errors(tmp_path, map1):
    dp = tmp_path / "dos.csv"
    dp.write_text("id,m1,m2\na,0,2.5\n")
    with pytest.raises(LMMInputError, match=r"dos.csv, marker m2 has the dosage 2.5 for ID 'a' .* 0 and 2"):
        read_dosages(dp, map1)
    dp.write_text("id,m1,m2\na,0,1\nb,1,AB\n")
    with pytest.raises(LMMInputError, match=r"column m2 has the value 'AB' for ID 'b', which is not a"):
        read_dosages(dp, map1)
    dp.write_text("id,m1,m1\na,0,1\n")
    with pytest.raises(LMMInputError, match=r"column 'm1' appears 2 times"):
        read_dosages(dp, map1)


def test_map_errors(tmp_path):
    mp = tmp_path / "m.csv"
    mp.write_text("marker,chromosome,pos\nm1,1,0\n")
    with pytest.raises(LMMInputError, match=r"has no column chr; it needs the columns marker, chr and pos"):
        read_map(mp)
    mp.write_text("marker,chr,pos\nm1,1,0\nm1,2,0\n")
    with pytest.raises(LMMInputError, match=r"marker 'm1' appears 2 times"):
        read_map(mp)
    mp.write_text("marker,chr,pos\nm1,1,zero\n")
    with pytest.raises(LMMInputError, match=re.escape("position of marker 'm1'") + r".*'zero'"):
        read_map(mp)


def test_plink_duplicate_ids(tmp_path):
    X = np.zeros((2, 2))
    X[0, 0] = 1
    write_plink(tmp_path / "p", X, ["a", "a"], ["1", "1"], [1, 2], ["s1", "s2"], fid=["f1", "f2"])
    with pytest.raises(LMMInputError, match=r"individual ID \(second column\) 'a' appears 2 times"):
        read_plink(tmp_path / "p")


# --------------------------------------------------------------------------- #
# Markers with no observed genotype: kept as NaN by the readers, skipped by kinships
# --------------------------------------------------------------------------- #
def test_read_dosages_keeps_an_all_missing_marker_as_nan(tmp_path, map1):
    dp = tmp_path / "dos.csv"
    dp.write_text("id,m1,m2\na,0,NA\nb,1,NA\nc,NA,NA\n")
    with pytest.warns(LMMWarning) as record:
        g = read_dosages(dp, map1)
    message = " ".join(str(w.message) for w in record)
    assert re.search(r"1 missing dosage .* at 1 marker", message)
    assert re.search(r"1 marker .* has no observed genotype \(m2\) and is kept as missing", message)
    np.testing.assert_allclose(g.dosage[:, 0], [0, 1, 0.5])
    assert np.isnan(g.dosage[:, 1]).all()


def test_read_plink_keeps_an_all_missing_marker_as_nan(tmp_path):
    rng = np.random.default_rng(15)
    X = random_dosage(rng, 6, 4)
    X[:, 2] = np.nan
    write_plink(tmp_path / "d", X, [f"i{k}" for k in range(6)], ["1"] * 4, [1, 2, 3, 4], ["a", "b", "c", "d"])
    with pytest.warns(LMMWarning, match=r"no observed genotype \(c\)"):
        g = read_plink(tmp_path / "d")
    assert np.isnan(g.dosage[:, 2]).all()
    np.testing.assert_allclose(g.dosage[:, [0, 1, 3]], X[:, [0, 1, 3]])


def test_read_genoprobs_keeps_an_all_missing_marker_as_nan(tmp_path, map1):
    gp = tmp_path / "g.csv"
    gp.write_text(HEAD + "a,1,0,0,NA,NA,NA\nb,0,1,0,,,\n")
    with pytest.warns(LMMWarning, match=r"no observed genotype \(m2\)"):
        g = read_genoprobs(gp, map1)
    assert np.isnan(g.probs[:, 1, :]).all()
    np.testing.assert_allclose(g.probs[:, 0, :], [[1, 0, 0], [0, 1, 0]])
    # a partly missing marker is still an error
    check_genoprobs_error(tmp_path, map1, HEAD + "a,1,0,0,NA,NA,NA\nb,0,1,0,1,,\n",
                          r"column m2:AA is missing for ID 'a' \(5 cells are missing\)")


@pytest.mark.parametrize("kind", ["standardized", "centered"])
def test_dosage_kinships_skip_all_missing_markers_with_a_warning(kind):
    rng = np.random.default_rng(16)
    X = random_dosage(rng, 8, 6)
    with_empty = np.column_stack([X[:, :2], np.full(8, np.nan), X[:, 2:], np.full(8, np.nan)])
    with pytest.warns(LMMWarning, match=r"2 of 8 markers have no observed genotype \(all missing\)"):
        K = kinship_from_dosages(with_empty, kind)
    np.testing.assert_allclose(K, kinship_from_dosages(X, kind), atol=1e-14)
    chrom = ["1"] * 4 + ["2"] * 4
    with pytest.warns(LMMWarning, match=r"2 of 8 markers have no observed genotype"):
        loco = loco_kinships(with_empty, chrom, kind=kind)
    np.testing.assert_allclose(loco["1"], kinship_from_dosages(X[:, 3:], kind), atol=1e-14)
    np.testing.assert_allclose(loco["2"], kinship_from_dosages(X[:, :3], kind), atol=1e-14)
    # a partly missing marker is still an error
    with_empty[0, 0] = np.nan
    with pytest.raises(LMMInputError, match="1 missing or infinite values; impute them first"):
        kinship_from_dosages(with_empty, kind)


def test_genoprob_kinship_skips_all_missing_markers_with_a_warning():
    rng = np.random.default_rng(17)
    probs = random_probs(rng, 5, 4, 3)
    with_empty = np.concatenate([probs[:, :1], np.full((5, 1, 3), np.nan), probs[:, 1:]], axis=1)
    with pytest.warns(LMMWarning, match=r"1 of 5 markers have no observed genotype"):
        K = kinship_from_genoprobs(with_empty, GENO3)
    np.testing.assert_allclose(K, kinship_from_genoprobs(probs, GENO3), atol=1e-14)
    g = Genotypes(ids=[f"i{k}" for k in range(5)], markers=[f"m{k}" for k in range(5)],
                  chromosome=["1", "1", "1", "2", "2"], position=np.arange(5.0), probs=with_empty,
                  genotype_names=GENO3)
    with pytest.warns(LMMWarning, match="no observed genotype"):
        assert compute_kinship(g).n_markers == 4
    with pytest.warns(LMMWarning, match="no observed genotype"):
        loco = compute_loco_kinships(g)
    assert loco["1"].n_markers == 2 and loco["2"].n_markers == 2
    np.testing.assert_allclose(loco["2"].matrix, kinship_from_genoprobs(probs[:, :2], GENO3), atol=1e-14)
