"""The kernels of the many-trait scan, each against an independent computation.

* :func:`lmmcore.fixed_scan.lod_statistic` (three matrix products and an
  entry-wise Cholesky factor over markers x traits) against a dense weighted
  regression of each trait's residual on the covariates and one marker's
  columns (``numpy.linalg.lstsq`` per marker and trait);
* :func:`lmmcore.likelihood.slope_root` (Illinois' regula falsi) against
  roots known in closed form and scipy's ``brentq``;
* :func:`lmmcore.null_search.null_h2` (grid, brackets, a root of the slope)
  against the fit's own search (:func:`lmmcore.estimate.optimise_h2`,
  Brent's method on function values) polished by bisection of the slope, and
  against a brute-force grid of the dense density (tests/dense.py);
* :func:`lmmcore.profile_stats.inverse_cholesky` against LAPACK;
* :func:`lmmcore.prefetch.run_ahead` against the plain sequence.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize as sopt

from conftest import random_kinship, simulate_y
from dense import brute_force_h2
from lmmcore import decompose_kinship, rotate
from lmmcore.errors import LMMInputError, reporting
from lmmcore.estimate import optimise_h2, standardise
from lmmcore.fixed_scan import lod_statistic
from lmmcore.likelihood import ROOT_XTOL, profile_slopes, slope_root
from lmmcore.null_search import null_h2
from lmmcore.profile_stats import inverse_cholesky
from lmmcore.prefetch import run_ahead


# --------------------------------------------------------------------------- lod_statistic


def _dense_explained(G, X, W, R):
    """RSS0 and RSS0 - RSS1 of every trait and marker by weighted least squares, one regression at a time."""
    n, m, q = G.shape
    P = W.shape[1]
    rss0 = np.empty(P)
    out = np.empty((m, P))
    for t in range(P):
        sw = np.sqrt(W[:, t])
        y = sw * R[:, t]
        r0 = y - (sw[:, None] * X) @ np.linalg.lstsq(sw[:, None] * X, y, rcond=None)[0]
        rss0[t] = r0 @ r0
        for j in range(m):
            Z = sw[:, None] * np.column_stack([X, G[:, j]])
            r1 = y - Z @ np.linalg.lstsq(Z, y, rcond=None)[0]
            out[j, t] = rss0[t] - r1 @ r1
    return rss0, out


@pytest.mark.parametrize("q,p", [(1, 1), (3, 2), (7, 3)])
def test_lod_statistic_equals_dense_weighted_regressions(q, p):
    rng = np.random.default_rng(q * 10 + p)
    n, m, P = 40, 23, 9  # several tiles of markers (the tile size is set below)
    d = np.sort(rng.gamma(1.0, 1.0, n))
    h = rng.uniform(0.0, 0.95, P)
    W = 1.0 / (1.0 + h[None, :] * (d[:, None] - 1.0))
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    G = rng.normal(size=(n, m, q))
    pad = np.zeros((m, q), dtype=bool)
    if q > 1:
        G[:, 4, q - 1] = 0.0  # a dropped column: zero, with an identity entry on S's diagonal
        pad[4, q - 1] = True
    R = rng.normal(size=(n, P))  # any residual: X is projected out in each trait's weights
    import lmmcore.fixed_scan as fs

    old = fs.PAIR_BLOCK_VALUES
    fs.PAIR_BLOCK_VALUES = 5 * (q * (q + 1) // 2 * n + (q * (q + 1) // 2 + (1 + p) * q) * P)  # 5 markers a tile
    try:
        rss0, got = lod_statistic(G, pad, X, W, R)
    finally:
        fs.PAIR_BLOCK_VALUES = old
    ref0, ref = _dense_explained(np.where(pad[None], 0.0, G), X, W, R)
    np.testing.assert_allclose(rss0, ref0, rtol=1e-12)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-10 * ref0.max())


def test_lod_statistic_of_a_marker_in_the_covariates_span_is_zero():
    """A marker equal to a covariate explains nothing; the Cholesky pivot is floored, not NaN."""
    rng = np.random.default_rng(2)
    n, P = 30, 4
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    G = rng.normal(size=(n, 3, 2))
    G[:, 1, 0] = X[:, 1]
    W = rng.uniform(0.5, 2.0, (n, P))
    R = rng.normal(size=(n, P))
    _, got = lod_statistic(G, np.zeros((3, 2), dtype=bool), X, W, R)
    assert np.all(np.isfinite(got))
    _, ref = _dense_explained(G, X, W, R)
    np.testing.assert_allclose(got[[0, 2]], ref[[0, 2]], rtol=1e-9)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-6)  # the other column alone, to the floor's rounding


# --------------------------------------------------------------------------- slope_root


def test_slope_root_finds_known_roots_to_rounding_in_few_steps():
    rng = np.random.default_rng(7)
    L = 300
    root = rng.uniform(0.01, 0.99, L)
    scale = 10.0 ** rng.uniform(-3, 3, L)
    kind = rng.integers(0, 3, L)

    def f(h, lanes):
        r, s, k = root[lanes], scale[lanes], kind[lanes]
        return np.select([k == 0, k == 1], [s * (r - h), s * np.tanh(5 * (r - h))], s * (r - h) ** 3 + 1e-3 * s * (r - h))

    lo, hi = np.maximum(root - rng.uniform(1e-4, 0.02, L), 0.0), np.minimum(root + rng.uniform(1e-4, 0.02, L), 1.0)
    calls = []
    got = slope_root(lambda h, lanes: (calls.append(lanes.size), f(h, lanes))[1], lo, hi, f(lo, np.arange(L)),
                     f(hi, np.arange(L)))
    np.testing.assert_allclose(got, root, rtol=0, atol=ROOT_XTOL)
    assert len(calls) <= 30 and sum(calls) <= 12 * L  # superlinear: bisection needs ~45 steps per lane
    fine = slope_root(f, lo, hi, f(lo, np.arange(L)), f(hi, np.arange(L)), xtol=0.0)
    np.testing.assert_allclose(fine, root, rtol=0, atol=1e-15)  # to rounding
    # against scipy's brentq on one lane
    j = int(np.flatnonzero(kind == 2)[0])
    assert got[j] == pytest.approx(sopt.brentq(lambda h: f(np.array([h]), np.array([j]))[0], lo[j], hi[j],
                                               xtol=1e-15), abs=2 * ROOT_XTOL)


def test_slope_root_takes_an_exact_zero_and_survives_nan():
    f = lambda h, lanes: np.where(lanes == 1, np.nan, 0.5 - h)  # noqa: E731
    got = slope_root(f, np.array([0.0, 0.0]), np.array([1.0, 1.0]), np.array([0.5, 1.0]), np.array([-0.5, -1.0]))
    assert got[0] == 0.5  # regula falsi hits the root exactly
    assert 0.0 <= got[1] <= 1.0  # a NaN slope moves the upper end (as bisection does): no hang, no NaN


# --------------------------------------------------------------------------- null_h2


def _traits(n, seed, singular=False):
    K = random_kinship(n, 30 if singular else 400, seed=seed)
    if not singular:
        K = K + 0.05 * np.eye(n)
    rng = np.random.default_rng(seed + 1)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    eig = decompose_kinship(K, check=False)
    d, U = eig.values, eig.vectors
    cols = [simulate_y(K, X, np.array([5.0, 1.0]), h, 2.0, seed=seed + 10 + j)
            for j, h in enumerate(np.linspace(0.0, 0.95, 10))]
    z = rng.normal(size=n)
    cols.append(U @ (z / np.sqrt(1.0 + np.clip(d, 0, None))) + 3.0)  # best at h2 = 0
    cols.append(U @ (np.clip(d, 0, None) * z) + 3.0)  # best at h2 = 1
    cols.append(rng.standard_t(2, size=n))  # heavy tails: rough profiles
    Y = np.column_stack(cols)
    return K, X, Y, rotate(eig, Y, X)


def _bisect_root(rot, h, method):
    """The fit's answer pinned by plain bisection of the slope in [h - 1e-5, h + 1e-5] (the polish used before)."""
    out = np.array(h, dtype=float)
    for j, x in enumerate(h):
        lo, hi = x - 1e-5, x + 1e-5
        if not (lo > 0 and hi < 1):
            continue
        s = lambda t: profile_slopes(rot, np.array([t]), np.array([j]), method)[0]  # noqa: E731
        if not (s(lo) > 0 > s(hi)):
            continue
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            lo, hi = (mid, hi) if s(mid) > 0 else (lo, mid)
        out[j] = 0.5 * (lo + hi)
    return out


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("singular", [False, True])
def test_null_h2_is_the_fits_optimum_pinned_to_the_root(method, singular):
    K, X, Y, rot = _traits(50, seed=21, singular=singular)
    h, L = null_h2(rot, method)
    opt = optimise_h2(standardise(rot), method)  # the fit's search: Brent on function values, no polish
    ref = _bisect_root(rot, opt.h2, method)
    assert np.any(ref == 0.0) and np.any(ref > 0.99)  # both boundaries are among the answers
    np.testing.assert_allclose(h, ref, rtol=0, atol=1e-12)
    shift = standardise(rot).loglik_shift(method)
    assert np.all(L >= opt.loglik + shift - 1e-9 * np.abs(L))  # at least as high as Brent's answer
    # the dense density on a fine grid agrees to its spacing
    for j in (3, 8):
        coarse = brute_force_h2(K, Y[:, j], X, method, points=201)[0]
        assert abs(h[j] - coarse) <= 5e-3


def test_null_h2_reports_what_the_fit_reports():
    n = 30
    rng = np.random.default_rng(3)
    X = np.ones((n, 1))
    y = rng.normal(size=(n, 2))
    rot = rotate(decompose_kinship(np.eye(n)), y, X)  # K = I: every h2 fits equally well
    said = []
    with reporting(said.append):
        h, L = null_h2(rot, "reml")
    assert np.isnan(h).all() and np.isfinite(L).all()
    assert any("not identifiable" in s for s in said)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_null_h2_names_a_trait_without_a_finite_likelihood():
    K, X, Y, rot = _traits(30, seed=4)
    bad = rot.with_phenotypes(np.column_stack([rot.y[:, 0], np.full(30, np.inf)]))
    with pytest.raises(LMMInputError, match="'second'"):
        null_h2(bad, "reml", ["first", "second"])


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("p", [1, 2, 3, 4, 6])
def test_inverse_cholesky_equals_lapack(p):
    rng = np.random.default_rng(p)
    Z = rng.normal(size=(7, 5, 3 * p, p))
    A = np.swapaxes(Z, -1, -2) @ Z
    np.testing.assert_allclose(inverse_cholesky(A), np.linalg.inv(np.linalg.cholesky(A)), rtol=1e-10, atol=1e-12)


def test_run_ahead_keeps_order_messages_and_errors():
    from lmmcore.errors import report

    def items(fail_at=None):
        for i in range(5):
            report(f"item {i}")
            if i == fail_at:
                raise ValueError("boom")
            yield i

    said = []
    with reporting(said.append):
        got = []
        for x in run_ahead(items()):
            said.append(f"got {x}")
            got.append(x)
    assert got == list(range(5))
    # each item's messages arrive just before the item, as without the helper thread
    assert said == [s for i in range(5) for s in (f"item {i}", f"got {i}")]
    with reporting(lambda _m: None), pytest.raises(ValueError, match="boom"):
        list(run_ahead(items(fail_at=2)))
    with reporting(lambda _m: None):
        gen = run_ahead(items())
        assert next(gen) == 0
        gen.close()  # stopping early ends the helper
