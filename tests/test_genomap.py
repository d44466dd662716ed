"""Pseudomarkers (lmmcore.genomap.insert_pseudomarkers) against R/qtl2 0.43-5.

tests/data/hmm/pseudomarkers_rqtl2.csv holds R/qtl2's names and positions
for each case of tests/data/hmm/make_fixtures.R, e.g.
``insert_pseudomarkers(iron$gmap, step=2.5, off_end=5)`` on R/qtl2's iron
map and edge cases (names that collide at the first rounding, grid points
within tol = 0.01 cM of a marker, negative positions off the end).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmmcore.errors import LMMInputError
from lmmcore.genomap import _r_round, insert_pseudomarkers

DATA = Path(__file__).parent / "data" / "hmm"
REF = pd.read_csv(DATA / "pseudomarkers_rqtl2.csv", dtype={"chr": str, "name": str})

CASES = {
    "iron_step1": dict(step=1, off_end=0, stepwidth="fixed"),
    "iron_step2.5_off5": dict(step=2.5, off_end=5, stepwidth="fixed"),
    "iron_step0.5": dict(step=0.5, off_end=0, stepwidth="fixed"),
    "iron_max5_off3": dict(step=5, off_end=3, stepwidth="max"),
    "iron_max0.7_off1": dict(step=0.7, off_end=1, stepwidth="max"),
    "dup_names_max1": dict(step=1, off_end=0, stepwidth="max"),
    "tol_fixed3": dict(step=3, off_end=0.5, stepwidth="fixed"),
    # names at ties of R's round(): c2.loc66.6, c2.loc68.4, c7.loc18 (Python's round gives 66.5, 68.5, 18.1)
    "iron_max1_off5": dict(step=1, off_end=5, stepwidth="max"),
}


def _marker_map(case: str) -> dict[str, pd.Series]:
    """The input map of a case: its rows that are not pseudomarkers."""
    rows = REF[(REF["case"] == case) & ~REF["name"].str.match(r"^c.+\.loc")]
    return {c: pd.Series(r["pos"].to_numpy(float), index=r["name"].to_numpy()) for c, r in rows.groupby("chr", sort=False)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pseudomarkers_match_rqtl2(case):
    ours = insert_pseudomarkers(_marker_map(case), **CASES[case])
    ref = REF[REF["case"] == case]
    for chrom, rows in ref.groupby("chr", sort=False):
        assert list(ours[chrom].index) == rows["name"].tolist()
        np.testing.assert_allclose(ours[chrom].to_numpy(), rows["pos"].to_numpy(float), atol=1e-12, rtol=0)


# Rscript -e 'x <- c(66.55, 68.45, 18.05, 0.15, 0.25, 0.35, 2.675, 1.005, -66.55, -18.05, 12.5, 0.5, 1.5, 2.5);
#   d <- c(1, 1, 1, 1, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0); cat(sprintf("%.17g", mapply(round, x, d)))'  (R 4.2.2)
R_ROUND = [
    (66.55, 1, 66.599999999999994), (68.45, 1, 68.400000000000006), (18.05, 1, 18.0), (0.15, 1, 0.1),
    (0.25, 1, 0.2), (0.35, 1, 0.3), (2.675, 2, 2.67), (1.005, 2, 1.0), (-66.55, 1, -66.599999999999994),
    (-18.05, 1, -18.0), (12.5, 0, 12.0), (0.5, 0, 0.0), (1.5, 0, 2.0), (2.5, 0, 2.0),
]


@pytest.mark.parametrize("x,digits,expected", R_ROUND)
def test_r_round_matches_r(x, digits, expected):
    """Pseudomarker names use R's round(), whose ties differ from Python's round() (66.55 -> 66.6)."""
    assert _r_round(np.array([x]), digits)[0] == expected


def test_step_zero_returns_the_map():
    m = {"1": pd.Series([0.0, 5.0], index=["a", "b"])}
    out = insert_pseudomarkers(m)
    assert list(out["1"].index) == ["a", "b"]


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(step=-1), "step"), (dict(step=1, off_end=-2), "off_end"), (dict(step=1, stepwidth="x"), "stepwidth"),
     (dict(step=0.005), "tol")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(LMMInputError, match=match):
        insert_pseudomarkers({"1": pd.Series([0.0, 5.0], index=["a", "b"])}, **kwargs)


def test_unsorted_map():
    with pytest.raises(LMMInputError, match="not sorted"):
        insert_pseudomarkers({"1": pd.Series([5.0, 0.0], index=["a", "b"])}, step=1)
