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
from lmmcore.genomap import insert_pseudomarkers

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
