"""Genotype probabilities by the HMM (lmmcore.hmm) against brute-force enumeration.

Two-founder crosses (bc, f2 incl. X for each sex and direction) enumerate the
gametes of the F1 parents, so that the prior of each genotype path comes from
the meioses, not from the transition matrices; riself uses the
Haldane-Waddington two-locus formula (itself checked by iterating selfing in
test_crosstypes.py). The other types build the full joint tensor from the
model's own initial/transition/emission probabilities: that checks the
forward-backward and the grouping, while R/qtl2's output
(test_hmm_rqtl2.py) checks the models.
"""

from __future__ import annotations

import numpy as np
import pytest

from hmm_util import (
    gamete_paths,
    haldane,
    make_cross,
    posterior_from_paths,
    posterior_from_tensor,
    set_emission,
)
from lmmcore.crosstypes import cross_model
from lmmcore.errors import LMMInputError
from lmmcore.genomap import insert_pseudomarkers
from lmmcore.hmm import forward_backward, genoprob

E = 0.01  # a large error probability makes the emissions matter
GMAP = {"1": [0.0, 12.0, 12.0, 30.0]}  # two markers at the same position
STEP = dict(step=10, off_end=5)


def _positions(cross, step=None):
    pm = insert_pseudomarkers(cross.gmap, **(step or STEP))
    out = {}
    for c, s in pm.items():
        names = list(cross.gmap[c].index)
        out[c] = (s.to_numpy(), [list(s.index).index(m) for m in names])
    return out


def _check(cross, expected_by_ind, chrom="1", names=None, step=None):
    """Compare genoprob with the brute force, individual by individual."""
    g = genoprob(cross, error_prob=E, **(step or STEP))
    sel = np.array([c == chrom for c in g.chromosome])
    names = names or g.genotypes_by_chr[chrom]
    for i, exp in enumerate(expected_by_ind):
        for label, values in exp.items():
            col = g.genotype_names.index(label)
            np.testing.assert_allclose(g.probs[i, sel, col], values, atol=1e-12, rtol=0)
        # genotypes this individual cannot have are exactly 0
        absent = [g.genotype_names.index(x) for x in names if x not in exp]
        assert np.all(g.probs[i][np.ix_(sel, absent)] == 0)
        np.testing.assert_allclose(g.probs[i, sel].sum(axis=1), 1, atol=1e-12)


def _geno_with_errors(rng, n, m, codes):
    geno = rng.choice(codes, size=(n, m))
    geno[0] = 0  # an individual with no genotypes: the prior
    return geno


def test_f2_autosome_matches_gamete_enumeration():
    rng = np.random.default_rng(1)
    geno = _geno_with_errors(rng, 6, 4, [0, 1, 2, 3, 4, 5])
    cross = make_cross("f2", {"1": geno}, {"1": [0.0, 12.0, 12.0, 20.0]})
    step = dict(step=10, off_end=0)  # one pseudomarker (at 10 cM): 5 positions, 4^5 gamete pairs
    pos, mk = _positions(cross, step)["1"]
    rf = haldane(np.diff(pos))
    prior = {}
    for g1, p1 in gamete_paths(rf):
        for g2, p2 in gamete_paths(rf):
            path = tuple("".join(sorted(a + b)) for a, b in zip(g1, g2))
            prior[path] = prior.get(path, 0) + p1 * p2
    possible = ("AA", "AB", "BB")
    expected = [
        posterior_from_paths(prior, lambda c, s: set_emission(c, s, possible, E), len(pos), mk, geno[i])
        for i in range(len(geno))
    ]
    _check(cross, expected, step=step)


@pytest.mark.parametrize("female,direction", [(True, 0), (True, 1), (False, 0), (False, 1)])
def test_f2_x_matches_gamete_enumeration(female, direction):
    """X: the F1 mother's recombinant gamete; the F1 father gives his mother's
    X (A in (AxB)x(AxB), B in (BxA)x(BxA)) to daughters and nothing to sons."""
    rng = np.random.default_rng(2 + direction)
    geno = _geno_with_errors(rng, 5, 4, [0, 1, 2, 3, 4, 5])
    n = len(geno)
    cross = make_cross(
        "f2", {"1": geno[:, :2], "X": geno}, {"1": [0.0, 5.0], "X": GMAP["1"]},
        is_x_chr={"X": True}, is_female=[female] * n, cross_info=[[direction]] * n,
    )
    pos, mk = _positions(cross)["X"]
    rf = haldane(np.diff(pos))
    father = "A" if direction == 0 else "B"
    prior = {}
    for m, p in gamete_paths(rf):
        path = tuple((father + a) if female else (a + "Y") for a in m)
        prior[path] = prior.get(path, 0) + p
    states = sorted({s for path in prior for s in path})

    def canon(s):
        return s if s.endswith("Y") else "".join(sorted(s))

    def emit(code, s):
        return set_emission(code, canon(s), [canon(x) for x in states], E, hemizygous=not female)

    expected = [posterior_from_paths(prior, emit, len(pos), mk, geno[i]) for i in range(n)]
    _check(cross, expected, chrom="X")


@pytest.mark.parametrize("chrom,female", [("1", True), ("X", True), ("X", False)])
def test_bc_matches_gamete_enumeration(chrom, female):
    rng = np.random.default_rng(4)
    geno = _geno_with_errors(rng, 5, 4, [0, 1, 2, 3])
    n = len(geno)
    cross = make_cross("bc", {chrom: geno}, {chrom: GMAP["1"]}, is_x_chr={"X": chrom == "X"}, is_female=[female] * n)
    pos, mk = _positions(cross)[chrom]
    rf = haldane(np.diff(pos))
    male_x = chrom == "X" and not female
    prior = {tuple((a + "Y") if male_x else ("A" + a) for a in m): p for m, p in gamete_paths(rf)}
    codes = {1: {"AA"}, 3: {"BB"}} if male_x else {1: {"AA"}, 2: {"AB"}}
    possible = ("AY", "BY") if male_x else ("AA", "AB")
    expected = [
        posterior_from_paths(prior, lambda c, s: set_emission(c, s, possible, E, codes, male_x), len(pos), mk, geno[i])
        for i in range(n)
    ]
    _check(cross, expected, chrom=chrom)


def test_riself_matches_path_enumeration():
    rng = np.random.default_rng(5)
    geno = _geno_with_errors(rng, 5, 4, [0, 1, 2, 3])  # 3 is not an riself code: missing
    cross = make_cross("riself", {"1": geno}, GMAP)
    pos, mk = _positions(cross)["1"]
    rf = haldane(np.diff(pos))
    R = 2 * rf / (1 + 2 * rf)  # Haldane & Waddington (1931)
    prior = {}
    for path in np.ndindex(*(2,) * len(pos)):
        p = 0.5 * np.prod([R[k] if path[k] != path[k + 1] else 1 - R[k] for k in range(len(pos) - 1)])
        prior[tuple("AA" if a == 0 else "BB" for a in path)] = p
    codes = {1: {"AA"}, 2: {"BB"}}
    expected = [
        posterior_from_paths(prior, lambda c, s: set_emission(c, s, ("AA", "BB"), E, codes), len(pos), mk, geno[i])
        for i in range(len(geno))
    ]
    _check(cross, expected)


def _tensor_check(cross, chrom, founder_geno=None):
    """genoprob against the full joint tensor of the model's own probabilities."""
    model = cross_model(cross.crosstype)
    g = genoprob(cross, error_prob=E, **STEP)
    pos, mk = _positions(cross)[chrom]
    rf = haldane(np.diff(pos))
    is_x = cross.is_x_chr[chrom]
    sel = np.array([c == chrom for c in g.chromosome])
    names = g.genotypes_by_chr[chrom]
    for i in range(cross.n):
        grp = model.group(bool(cross.is_female[i]), tuple(cross.cross_info[i]), is_x)
        T = model.transitions(rf, grp, is_x)
        tab = model.emissions(grp, is_x, E, founder_geno)
        emits = [np.ones(len(grp.init)) for _ in pos]
        for j, k in enumerate(mk):
            emits[k] = tab[0 if tab.shape[0] == 1 else j][cross.geno[chrom][i, j]]
        post = posterior_from_tensor(grp.init, list(T), emits)
        cols = [g.genotype_names.index(names[s]) for s in grp.states]
        np.testing.assert_allclose(g.probs[i][np.ix_(sel, cols)], post, atol=1e-12, rtol=0)
        np.testing.assert_allclose(g.probs[i, sel].sum(axis=1), 1, atol=1e-12)


@pytest.mark.parametrize("crosstype", ["risib", "dh", "haploid"])
def test_inbred_types_match_tensor(crosstype):
    rng = np.random.default_rng(6)
    geno = _geno_with_errors(rng, 4, 4, [0, 1, 2])
    n = len(geno)
    cross = make_cross(crosstype, {"1": geno, "X": geno}, {"1": GMAP["1"], "X": GMAP["1"]},
                       is_x_chr={"X": crosstype == "risib"}, cross_info=[[0], [1], [0], [1]])
    _tensor_check(cross, "1")
    if crosstype == "risib":
        _tensor_check(cross, "X")


def test_ail_matches_tensor_and_reduces_to_f2():
    rng = np.random.default_rng(7)
    geno = _geno_with_errors(rng, 6, 4, [0, 1, 2, 3, 4, 5])
    info = [[2, 0], [5, 0], [8, 1], [12, 2], [3, 1], [7, 2]]
    female = [True, False, True, False, False, True]
    cross = make_cross("ail", {"1": geno, "X": geno}, {"1": GMAP["1"], "X": GMAP["1"]},
                       is_x_chr={"X": True}, is_female=female, cross_info=info)
    _tensor_check(cross, "1")
    _tensor_check(cross, "X")
    # generation 2 of an advanced intercross is an F2 (autosomes)
    f2 = make_cross("f2", {"1": geno}, {"1": GMAP["1"]})
    ail2 = make_cross("ail", {"1": geno}, {"1": GMAP["1"]}, cross_info=[[2]] * 6)
    np.testing.assert_allclose(genoprob(ail2, error_prob=E).probs, genoprob(f2, error_prob=E).probs, atol=1e-14)


def _founders(rng, m):
    fg = rng.choice([1, 3], size=(8, m)).astype(np.int8)
    fg[2, 1] = 0  # an unknown founder allele
    return fg



def _tensor_check_at_markers(cross, fg):
    """:func:`_tensor_check` of chromosomes 1 and X at the markers only (no pseudomarkers: fewer paths)."""
    global STEP
    saved, STEP = STEP, dict(step=0, off_end=0)
    try:
        _tensor_check(cross, "1", fg["1"])
        _tensor_check(cross, "X", fg["X"])
    finally:
        STEP = saved

@pytest.mark.parametrize("crosstype", ["do", "hs"])
def test_eight_way_matches_tensor(crosstype):
    rng = np.random.default_rng(8)
    gm = {"1": [0.0, 3.0, 3.0, 8.0], "X": [0.0, 4.0, 9.0]}
    fg = {"1": _founders(rng, 4), "X": _founders(rng, 3)}
    geno = {"1": _geno_with_errors(rng, 4, 4, [0, 1, 2, 3, 4, 5]), "X": _geno_with_errors(rng, 4, 3, [0, 1, 2, 3])}
    cross = make_cross(crosstype, geno, gm, is_x_chr={"X": True}, is_female=[True, False, True, False],
                       cross_info=[[4], [4], [11], [1]], alleles=tuple("ABCDEFGH"), founder_geno=fg)
    _tensor_check_at_markers(cross, fg)  # 36^4 paths are enough
    g = genoprob(cross)
    assert len(g.genotypes_by_chr["1"]) == 36 and len(g.genotypes_by_chr["X"]) == 44
    assert g.genotype_names[:6] == ("AA", "AB", "BB", "AC", "BC", "CC")
    assert g.genotype_names[36:] == tuple(a + "Y" for a in "ABCDEFGH")
    males = ~cross.is_female
    x = np.array([c == "X" for c in g.chromosome])
    assert np.all(g.probs[np.ix_(males, x, np.arange(36))] == 0)
    assert np.all(g.probs[np.ix_(~males, x, np.arange(36, 44))] == 0)
    assert np.all(g.probs[:, ~x, 36:] == 0)


def test_forward_backward_single_position_is_bayes():
    init = np.array([0.2, 0.3, 0.5])
    emit = np.array([[[1, 1, 1], [0.9, 0.1, 0.5]]], dtype=float)
    out = forward_backward(init, [np.zeros((0, 3, 3))], emit, np.array([[0], [1]]), np.array([0]))
    np.testing.assert_allclose(out[0, 0], init)
    np.testing.assert_allclose(out[1, 0], init * emit[0, 1] / (init * emit[0, 1]).sum())


def test_pseudomarker_names_and_positions_in_output():
    geno = np.array([[1, 2, 3, 1]])
    cross = make_cross("f2", {"1": geno}, GMAP)
    g = genoprob(cross, step=5, off_end=2)
    # R: seq(-2, 32, by = 5) without the points within 0.01 cM of a marker
    assert g.markers == ("c1.loc-2", "m1_0", "c1.loc3", "c1.loc8", "m1_1", "m1_2", "c1.loc13", "c1.loc18",
                         "c1.loc23", "c1.loc28", "m1_3")
    assert np.all(np.diff(g.position) >= 0)


def test_bad_inputs():
    geno = np.array([[1, 2, 3, 1]])
    cross = make_cross("f2", {"1": geno}, GMAP)
    with pytest.raises(LMMInputError, match="not supported"):
        genoprob(make_cross("magic16", {"1": geno}, GMAP))
    with pytest.raises(LMMInputError, match="error_prob"):
        genoprob(cross, error_prob=1.5)
    with pytest.raises(LMMInputError, match="Chromosome 7"):
        genoprob(cross, chromosomes=["7"])
    with pytest.raises(LMMInputError, match="map function"):
        genoprob(cross, map_function="ohno")
    with pytest.raises(LMMInputError, match="cores"):
        genoprob(cross, cores=-1)
    with pytest.raises(LMMInputError, match="cross direction"):
        genoprob(make_cross("f2", {"X": geno}, {"X": GMAP["1"]}, is_x_chr={"X": True}))
    with pytest.raises(LMMInputError, match="founders"):
        genoprob(make_cross("do", {"1": geno}, GMAP, cross_info=[[4]]))
    with pytest.raises(LMMInputError, match="generations"):
        genoprob(make_cross("do", {"1": geno}, GMAP, founder_geno={"1": np.ones((8, 4), np.int8)}))


def test_riself16_matches_tensor():
    rng = np.random.default_rng(9)
    gm = {"1": [0.0, 6.0, 6.0, 15.0]}
    fg = {"1": rng.choice([0, 1, 3], p=[0.1, 0.45, 0.45], size=(16, 4)).astype(np.int8)}
    geno = {"1": _geno_with_errors(rng, 3, 4, [0, 1, 2, 3])}
    info = [rng.permutation(16) + 1 for _ in range(3)]
    cross = make_cross("riself16", geno, gm, cross_info=info, alleles=tuple("ABCDEFGHIJKLMNOP"), founder_geno=fg)
    global STEP
    saved, STEP = STEP, dict(step=0, off_end=0)  # 16^4 paths
    try:
        _tensor_check(cross, "1", fg["1"])
    finally:
        STEP = saved


def test_x_of_riself_is_an_autosome_with_a_message():
    geno = np.array([[1, 2, 0, 1], [2, 2, 1, 0]])
    cross = make_cross("riself", {"1": geno, "X": geno}, {"1": GMAP["1"], "X": GMAP["1"]}, is_x_chr={"X": True})
    messages = []
    g = genoprob(cross, report=messages.append)
    assert len(messages) == 1 and "X" in messages[0] and "autosome" in messages[0]
    x = np.array([c == "X" for c in g.chromosome])
    np.testing.assert_allclose(g.probs[:, x], g.probs[:, ~x], atol=1e-15)


def test_threads_give_the_same_result():
    rng = np.random.default_rng(10)
    geno = {c: _geno_with_errors(rng, 6, 5, [0, 1, 2, 3]) for c in ("1", "2", "3", "X")}
    gm = {c: [0.0, 3.0, 9.0, 9.0, 20.0] for c in geno}
    cross = make_cross("f2", geno, gm, is_x_chr={"X": True}, is_female=[True, False] * 3,
                       cross_info=[[0], [1], [1], [0], [0], [1]])
    one = genoprob(cross, step=2)
    two = genoprob(cross, step=2, cores=2)
    np.testing.assert_array_equal(one.probs, two.probs)


@pytest.mark.parametrize("crosstype,k", [("riself4", 4), ("riself8", 8), ("magic19", 19), ("risib4", 4), ("risib8", 8)])
def test_multiway_inbred_lines_match_tensor(crosstype, k):
    """Multi-parent RILs against the full joint tensor of their paths: autosomes, and for risib4/8 the X
    chromosome, where each line's funnel (cross_info) decides which founders it can carry."""
    rng = np.random.default_rng(11 + k)
    gm = {"1": [0.0, 6.0, 6.0, 15.0], "X": [0.0, 4.0, 9.0]}
    fg = {c: rng.choice([0, 1, 3], p=[0.1, 0.45, 0.45], size=(k, len(p))).astype(np.int8) for c, p in gm.items()}
    geno = {"1": _geno_with_errors(rng, 4, 4, [0, 1, 2, 3]), "X": _geno_with_errors(rng, 4, 3, [0, 1, 2, 3])}
    info = [rng.permutation(k) + 1 for _ in range(4)]
    info[3] = info[2]  # two lines with the same funnel share a group
    cross = make_cross(crosstype, geno, gm, is_x_chr={"X": crosstype.startswith("risib")},
                       is_female=[True, False, True, False], cross_info=info,
                       alleles=tuple("ABCDEFGHIJKLMNOPQRS"[:k]), founder_geno=fg)
    _tensor_check_at_markers(cross, fg)  # 19^4 paths at most
