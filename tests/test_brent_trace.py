"""The optimiser's trace says how Brent chose each step (what the dashboard's Brent view draws).

Each recorded parabola is checked against an independent fit (``numpy.polyfit``
through the three recorded points), each golden-section point against the
bracket before the step, and the recorded reasons against the geometry.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from conftest import boundary_case
from lmmcore import fit_lmm
from lmmcore.optimize import REASONS

GOLDEN = (3 - np.sqrt(5)) / 2


def _vertex(h, f) -> float:
    """Vertex of the parabola through (h_k, f_k), k = 0, 1, 2, by Lagrange's formula in rationals."""
    (x, w, v), (fx, fw, fv) = [Fraction(float(a)) for a in h], [Fraction(float(a)) for a in f]
    num = (x - w) ** 2 * (fx - fv) - (x - v) ** 2 * (fx - fw)
    den = (x - w) * (fx - fv) - (x - v) * (fx - fw)
    return float(x - num / (2 * den))


def _bracket_before(tr, i):
    """The bracket before step ``i``: the previous row's bracket in the same search."""
    return tr.bracket_low[i - 1], tr.bracket_high[i - 1]


def _check_trace(tr) -> dict:
    """Check every Brent step of a trace; return how many of each reason were seen."""
    seen = {r: 0 for r in REASONS}
    for i, step in enumerate(tr.step):
        if step in ("grid", "start"):
            assert tr.x_index[i] == -1 and tr.reason[i] == ""
            continue
        ix, iw, iv = tr.x_index[i], tr.w_index[i], tr.v_index[i]
        assert 0 <= ix < i and 0 <= iw < i and 0 <= iv < i
        # x is the best point of this search so far (grid neighbours included)
        mine = [k for k in range(i) if tr.search[k] == tr.search[i]]
        assert tr.loglik[ix] >= max(tr.loglik[k] for k in mine) - 1e-9
        assert tr.loglik[ix] >= tr.loglik[iw] - 1e-9 and tr.loglik[ix] >= tr.loglik[iv] - 1e-9
        lo, hi = _bracket_before(tr, i)
        x = tr.h2[ix]
        why = tr.reason[i]
        seen[why] += 1
        assert why in REASONS
        assert (step == "parabolic") == (why in ("parabola", "min_step"))
        pts = tr.h2[[ix, iw, iv]]
        distinct = np.unique(pts).size == 3 and np.ptp(pts) > 1e-4
        if distinct:  # the vertex of the parabola through the three points, in exact arithmetic
            assert tr.vertex[i] == pytest.approx(_vertex(pts, tr.loglik[[ix, iw, iv]]), rel=1e-5, abs=1e-8)
        if why == "parabola":
            assert tr.h2[i] == tr.vertex[i]
            assert lo < tr.vertex[i] < hi
            assert np.isnan(tr.golden_split[i])
        if step == "golden":
            far = lo if x >= 0.5 * (lo + hi) else hi  # the end of the larger part
            assert tr.golden_split[i] == pytest.approx(x + GOLDEN * (far - x), abs=1e-15)
            assert abs(tr.h2[i] - tr.golden_split[i]) <= 1e-7 + 1e-8 * abs(x)  # at most the minimum step apart
        if why == "outside":
            assert not (lo < tr.vertex[i] < hi)
        if why == "too_far":
            assert lo < tr.vertex[i] < hi
    return seen


def test_interior_optimum_records_parabolas_through_x_w_v(small_data):
    K, y, X = small_data
    fit = fit_lmm(K, y, X, method="reml")
    seen = _check_trace(fit.trace)
    assert seen["parabola"] >= 2


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_boundary_optimum_records_golden_steps_with_the_vertex_outside(method):
    K, y, X = boundary_case("zero")
    fit = fit_lmm(K, y, X, method=method)
    seen = _check_trace(fit.trace)
    golden = sum(s == "golden" for s in fit.trace.step)
    assert golden >= 3
    assert seen["outside"] >= 1


def test_records_carry_the_new_fields_and_keep_the_old(small_data):
    K, y, X = small_data
    rec = fit_lmm(K, y, X).trace.to_records()
    assert {"h2", "loglik", "step", "search", "bracket_low", "bracket_high"} <= set(rec[-1])
    assert {"vertex", "golden_split", "reason"} <= set(rec[-1])
