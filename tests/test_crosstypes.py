"""Cross-type models (lmmcore.crosstypes*) and map functions (lmmcore.genomap).

Independent checks: the Haldane-Waddington recombination of RILs by selfing
from iterating two-locus selfing to fixation; Markov-chain properties of
every model (rows of transition matrices sum to 1, the initial distribution
is stationary where the population is in equilibrium, no recombination
means no change); map functions against their closed forms and inverses.
"""

from __future__ import annotations

import numpy as np
import pytest

from lmmcore.crosstypes import Group, cross_model
from lmmcore.crosstypes_mpp import mpp_pairs
from lmmcore.errors import LMMInputError
from lmmcore.genomap import (
    MAP_FUNCTIONS,
    distance_to_recfrac,
    map_to_recfrac,
    recfrac_to_distance,
)

R = np.array([1e-12, 0.001, 0.05, 0.2, 0.45])


def _selfing_recombinant_fraction(r: float, generations: int = 80) -> float:
    """Fraction of fixed recombinant lines after selfing an AB/AB F1 at two loci.

    State: distribution over ordered pairs of haplotypes (4 x 4), haplotype
    index = 2 * (allele at locus 1) + (allele at locus 2). Each generation,
    an individual with haplotypes (h1, h2) makes gametes h1, h2 with
    probability (1 - r)/2 each and the two recombinants with r/2 each; the
    offspring is two independent gametes.
    """
    P = np.zeros((4, 4))
    P[0, 3] = 1.0  # F1: AA haplotype x BB haplotype
    for _ in range(generations):
        gam = np.zeros((4, 4, 4))  # (h1, h2) -> gamete distribution
        for h1 in range(4):
            for h2 in range(4):
                gam[h1, h2, h1] += (1 - r) / 2
                gam[h1, h2, h2] += (1 - r) / 2
                gam[h1, h2, (h1 & 2) | (h2 & 1)] += r / 2
                gam[h1, h2, (h2 & 2) | (h1 & 1)] += r / 2
        Q = np.einsum("ab,abk,abl->kl", P, gam, gam)
        P = Q
    return P[1, 1] + P[2, 2]


@pytest.mark.parametrize("r", [0.01, 0.1, 0.3])
def test_riself_recombination_is_haldane_waddington(r):
    cm = cross_model("riself")
    T = cm.transitions(np.array([r]), cm.group(True, (), False), False)[0]
    np.testing.assert_allclose(T[0, 1], _selfing_recombinant_fraction(r), atol=1e-10)


def _all_groups():
    """(crosstype, is_x, group) for every model and group kind."""
    out = []
    for ct in ["bc", "f2", "riself", "risib", "dh", "haploid"]:
        m = cross_model(ct)
        out.append((ct, False, m.group(True, (0,), False)))
    bc, f2, risib = cross_model("bc"), cross_model("f2"), cross_model("risib")
    out += [("bc", True, bc.group(f, (), True)) for f in (True, False)]
    out += [("f2", True, f2.group(f, (d,), True)) for f in (True, False) for d in (0, 1)]
    out += [("risib", True, risib.group(True, (d,), True)) for d in (0, 1)]
    ail = cross_model("ail")
    out += [("ail", False, ail.group(True, (s,), False)) for s in (2, 9)]
    out += [("ail", True, ail.group(f, (s, d), True)) for f in (True, False) for s in (2, 3, 10) for d in (0, 1, 2)]
    rng = np.random.default_rng(3)
    for ct, k in (("riself4", 4), ("riself8", 8), ("riself16", 16), ("magic19", 19), ("risib4", 4), ("risib8", 8)):
        out.append((ct, False, cross_model(ct).group(True, tuple(rng.permutation(k) + 1), False)))
    for ct in ("do", "hs"):
        m = cross_model(ct)
        out += [(ct, False, m.group(True, (s,), False)) for s in (1, 2, 11)]
        out += [(ct, True, m.group(f, (s,), True)) for f in (True, False) for s in (1, 2, 11)]
    return out


@pytest.mark.parametrize("ct,is_x,g", _all_groups(), ids=lambda v: str(v) if not isinstance(v, Group) else
                         f"{'F' if v.female else 'M'}{v.info}")
def test_models_are_markov_chains(ct, is_x, g):
    m = cross_model(ct)
    T = m.transitions(R, g, is_x)
    assert T.shape == (len(R), len(g.init), len(g.init))
    assert np.all(T >= 0)
    np.testing.assert_allclose(T.sum(axis=2), 1, atol=1e-12)
    np.testing.assert_allclose(g.init.sum(), 1, atol=1e-15)
    np.testing.assert_allclose(T[0], np.eye(len(g.init)), atol=1e-9)  # r = 1e-12: no change
    if ct in ("bc", "f2", "riself", "risib", "dh", "haploid", "do", "hs", "riself4", "riself8", "riself16", "magic19", "risib4", "risib8") or (ct == "ail" and (not is_x or g.info[1] == 2)):
        # populations in equilibrium along the chromosome: the initial distribution is stationary
        np.testing.assert_allclose(g.init @ T, np.broadcast_to(g.init, (len(R), len(g.init))), atol=1e-12)
    tab = m.emissions(g, is_x, 0.01, np.tile([1, 3, 0, 1, 3, 3, 1, 2] * 3, (2, 1)).T)
    assert np.all((tab > 0) & (tab <= 1))
    np.testing.assert_array_equal(tab[:, 0], 1)  # missing is uninformative


def test_f2_transitions_from_two_meioses():
    r = np.array([0.1])
    T = cross_model("f2").transitions(r, cross_model("f2").group(True, (), False), False)[0]
    # AA -> AB: one of two meioses recombines
    assert T[0, 1] == pytest.approx(2 * 0.1 * 0.9)
    assert T[1, 1] == pytest.approx(0.81 + 0.01)


def test_do_transition_closed_form_at_unlinked_loci():
    """Far apart (r = 1/2), DO genotypes at the two loci are independent once
    the haplotypes have fully mixed: each founder has probability 1/8."""
    m = cross_model("do")
    T = m.transitions(np.array([0.5]), m.group(True, (200,), False), False)[0]
    np.testing.assert_allclose(T, np.broadcast_to(m.group(True, (200,), False).init, T.shape), atol=1e-12)


def test_mpp_genotype_order():
    pairs = mpp_pairs()
    names = ["".join("ABCDEFGH"[k] for k in p) for p in pairs]
    assert names[:10] == ["AA", "AB", "BB", "AC", "BC", "CC", "AD", "BD", "CD", "DD"]
    assert names[-1] == "HH" and len(names) == 36


def test_unknown_crosstype():
    with pytest.raises(LMMInputError, match="not supported"):
        cross_model("f3")


# --------------------------------------------------------------------------- #
# Map functions
# --------------------------------------------------------------------------- #
D = np.array([0.0, 0.5, 10.0, 50.0, 120.0])


def test_map_functions_known_values():
    np.testing.assert_allclose(distance_to_recfrac(D, "haldane"), (1 - np.exp(-2 * D / 100)) / 2, rtol=1e-14)
    np.testing.assert_allclose(distance_to_recfrac(D, "kosambi"), np.tanh(2 * D / 100) / 2, rtol=1e-14)
    np.testing.assert_allclose(distance_to_recfrac(D, "morgan"), np.minimum(D / 100, 0.5), rtol=1e-14)
    # Carter-Falconer: d = 12.5 log((1 + 2r)/(1 - 2r)) + 25 atan(2r)
    r = distance_to_recfrac(D, "c-f")
    np.testing.assert_allclose(12.5 * np.log((1 + 2 * r) / (1 - 2 * r)) + 25 * np.arctan(2 * r), D, atol=1e-9)
    assert distance_to_recfrac(10.0, "haldane") == pytest.approx(0.0906346234)


@pytest.mark.parametrize("mf", MAP_FUNCTIONS)
def test_map_function_round_trip(mf):
    d = np.array([0.0, 0.1, 3.0, 25.0, 45.0])
    np.testing.assert_allclose(recfrac_to_distance(distance_to_recfrac(d, mf), mf), d, atol=1e-8)
    r = np.array([0.0, 0.01, 0.2, 0.4])
    np.testing.assert_allclose(distance_to_recfrac(recfrac_to_distance(r, mf), mf), r, atol=1e-12)


def test_map_to_recfrac_floor_at_same_position():
    np.testing.assert_array_equal(map_to_recfrac([0.0, 0.0, 1.0])[0], 1e-12)


def test_unknown_map_function():
    with pytest.raises(LMMInputError, match="map function"):
        distance_to_recfrac(1.0, "ohno")


@pytest.mark.parametrize("ct,k,live", [("risib4", 4, [2, 0, 3]), ("risib8", 8, [2, 0, 1, 4, 3])])
def test_risib_funnel_x_keeps_absent_founders_at_zero(ct, k, live):
    m = cross_model(ct)
    info = (3, 1, 4, 2) if k == 4 else (3, 1, 2, 8, 5, 4, 7, 6)
    g = m.group(True, info, True)
    T = m.transitions(R, g, True)
    dead = np.setdiff1d(np.arange(k), live)
    assert set(np.flatnonzero(g.init)) == set(live)
    np.testing.assert_array_equal(T[:, :, dead], 0)
    np.testing.assert_allclose(T[:, live].sum(axis=2), 1, atol=1e-12)
    np.testing.assert_allclose(g.init @ T, np.broadcast_to(g.init, (len(R), k)), atol=1e-12)
