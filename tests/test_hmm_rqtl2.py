"""Genotype and allele probabilities against R/qtl2 0.43-5's own output.

Fixtures (tests/data/hmm, made by make_fixtures.py and make_fixtures.R there):
small subsets of R/qtl2's iron (f2) and DOex (do) crosses with R/qtl2's
``calc_genoprob(cross, error_prob = 0.002)`` (Haldane, markers only) and
``genoprob_to_alleleprob`` for exactly those mice and chromosomes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmm_util import read_fixture_cross, read_rqtl2_probs
from lmmcore.hmm import allele_probs, genoprob

DATA = Path(__file__).parent / "data" / "hmm"


def _ours_in_their_layout(g, ref):
    """Our probabilities in the rows and MARKER:GENOTYPE columns of R/qtl2's file."""
    mi = {m: k for k, m in enumerate(g.markers)}
    gi = {x: k for k, x in enumerate(g.genotype_names)}
    pairs = [c.rsplit(":", 1) for c in ref.columns]
    rows = [g.ids.index(i) for i in ref.index]
    return g.probs[rows][:, [mi[m] for m, _ in pairs], [gi[x] for _, x in pairs]]


def _check_columns(g, ref):
    """Each chromosome has exactly R/qtl2's genotype columns, in its order."""
    for c, names in g.genotypes_by_chr.items():
        markers = [m for m, cc in zip(g.markers, g.chromosome) if cc == c]
        expected = [col for col in ref.columns if col.rsplit(":", 1)[0] in set(markers)]
        if expected:
            assert expected == [f"{m}:{x}" for m in markers for x in names]


@pytest.mark.parametrize(
    "cross_zip,ref_csv",
    [("iron_sub.zip", "iron_sub_genoprob_rqtl2.csv"), ("DOex_sub.zip", "DOex_sub_genoprob_rqtl2.csv.gz")],
)
def test_genoprob_matches_rqtl2(cross_zip, ref_csv):
    cross = read_fixture_cross(DATA / cross_zip)
    ref = read_rqtl2_probs(DATA / ref_csv)
    g = genoprob(cross, error_prob=0.002)
    _check_columns(g, ref)
    # R/qtl2's file holds 9 significant digits
    np.testing.assert_allclose(_ours_in_their_layout(g, ref), ref.to_numpy(), atol=1e-9, rtol=0)


def test_alleleprob_matches_rqtl2():
    cross = read_fixture_cross(DATA / "DOex_sub.zip")
    ref = read_rqtl2_probs(DATA / "DOex_sub_alleleprob_rqtl2.csv.gz")
    a = allele_probs(genoprob(cross, error_prob=0.002))
    assert a.genotype_names == tuple("ABCDEFGH")
    np.testing.assert_allclose(_ours_in_their_layout(a, ref), ref.to_numpy(), atol=1e-9, rtol=0)


@pytest.mark.parametrize(
    "cross_zip,ref_csv,kwargs",
    [
        # Rscript tests/data/hmm/make_fixtures.R: calc_genoprob(iron_sub, insert_pseudomarkers(gmap,
        # step=2.5, off_end=5), error_prob=0.002)
        ("iron_sub.zip", "iron_sub_genoprob_pmar_rqtl2.csv", dict(step=2.5, off_end=5, error_prob=0.002)),
        # calc_genoprob(DOex_sub[, "X"], insert_pseudomarkers(gmap, step=4, stepwidth="max", off_end=2),
        # error_prob=0.01, map_function="kosambi")
        ("DOex_sub.zip", "DOex_sub_genoprob_pmar_rqtl2.csv.gz",
         dict(step=4, stepwidth="max", off_end=2, error_prob=0.01, map_function="kosambi", chromosomes=["X"])),
        # calc_genoprob(iron_sub, insert_pseudomarkers(gmap, step=5, off_end=2), error_prob=0.01,
        # map_function=mf) for mf in c("c-f", "morgan")
        ("iron_sub.zip", "iron_sub_genoprob_c-f_rqtl2.csv", dict(step=5, off_end=2, error_prob=0.01, map_function="c-f")),
        ("iron_sub.zip", "iron_sub_genoprob_morgan_rqtl2.csv",
         dict(step=5, off_end=2, error_prob=0.01, map_function="morgan")),
    ],
)
def test_genoprob_with_pseudomarkers_matches_rqtl2(cross_zip, ref_csv, kwargs):
    """R/qtl2 run on the fixture itself (17 significant digits): same positions,
    names, genotype columns (X: both sexes and, for iron, both directions) and values."""
    cross = read_fixture_cross(DATA / cross_zip)
    ref = read_rqtl2_probs(DATA / ref_csv)
    g = genoprob(cross, **kwargs)
    ref_markers = list(dict.fromkeys(c.rsplit(":", 1)[0] for c in ref.columns))
    assert list(g.markers) == ref_markers
    _check_columns(g, ref)
    # R/qtl2's Carter-Falconer map function solves for r by uniroot(tol = 1e-12); ours by brentq to 1e-15
    atol = 1e-10 if kwargs.get("map_function") == "c-f" else 1e-12
    np.testing.assert_allclose(_ours_in_their_layout(g, ref), ref.to_numpy(), atol=atol, rtol=0)


SYNTHETIC = ["bc", "risib", "dh", "haploid", "ail", "hs", "riself4", "riself8", "riself16", "magic19", "risib4",
             "risib8"]


@pytest.mark.parametrize("crosstype", SYNTHETIC)
def test_synthetic_crosses_match_rqtl2(crosstype):
    """Synthetic crosses of the types without R/qtl2 example data (make_fixtures.py)
    and R/qtl2's calc_genoprob(cross, insert_pseudomarkers(gmap, step=5),
    error_prob=0.01) (make_fixtures.R): X for both sexes (bc, risib, ail, hs) and funnels (risib4, risib8),
    AIL generations and directions, RIL directions and funnels, het calls,
    missing founder alleles, markers at the same position."""
    cross = read_fixture_cross(DATA / f"{crosstype}_synthetic.zip")
    gz = ".gz" if crosstype in ("hs", "magic19", "riself16") else ""
    ref = read_rqtl2_probs(DATA / f"{crosstype}_synthetic_genoprob_rqtl2.csv{gz}")
    g = genoprob(cross, step=5, error_prob=0.01)
    assert list(g.markers) == list(dict.fromkeys(c.rsplit(":", 1)[0] for c in ref.columns))
    _check_columns(g, ref)
    np.testing.assert_allclose(_ours_in_their_layout(g, ref), ref.to_numpy(), atol=1e-12, rtol=0)
