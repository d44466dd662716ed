"""The profile and Brent plots' bokeh figures: they show the state's numbers, and a switch or a
step updates them in place.

The independent checks are the state's own profile table, fit and Brent trace
(the numbers the engine computed), not the layouts the figures were given.
"""

from __future__ import annotations

import numpy as np
import pytest

from browser_util import example_dir

pn = pytest.importorskip("panel")

from app.state import ExplorerState  # noqa: E402
from app.views.brent import BrentView  # noqa: E402
from app.views.brent_plots import parabola, step_detail  # noqa: E402
from app.views.look import Look  # noqa: E402
from app.views.profile import ProfileView  # noqa: E402
from app.views.style import METHOD_COLOURS  # noqa: E402


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> ExplorerState:
    return ExplorerState.with_example(example_dir(tmp_path_factory.mktemp("assets")))


@pytest.fixture(scope="module")
def view(state) -> ProfileView:
    return ProfileView(state=state, look=Look())


@pytest.fixture(scope="module")
def brent(state) -> BrentView:
    return BrentView(state=state, look=Look())


def _check_shows_state(view: ProfileView) -> None:
    s = view.state
    fig = view._figure
    curve = s.profile(s.method)
    finite = np.isfinite(curve["loglik"].to_numpy())
    np.testing.assert_allclose(fig.curve.data["h2"], curve["h2"].to_numpy()[finite])
    np.testing.assert_allclose(fig.curve.data["loglik"], curve["loglik"].to_numpy()[finite])
    fit = s.fit
    assert fig.optimum.location == pytest.approx(fit.h2)
    assert fig.drop.location == pytest.approx(fit.loglik - 1.92, abs=0.01)
    assert (fig.band.left, fig.band.right) == pytest.approx((fit.h2_ci_low, fit.h2_ci_high))
    # the optimum's red dot is at the fit's maximum, inside the y-range
    kinds = list(fig.points.data["kind"])
    k = kinds.index("optimum")
    assert fig.points.data["h2"][k] == pytest.approx(fit.h2)
    assert fig.points.data["loglik"][k] == pytest.approx(fit.loglik)
    assert fig.figure.y_range.start < fit.loglik < fig.figure.y_range.end
    assert fit.phenotype in fig.figure.title.text
    assert fig.curve_line.glyph.line_color == METHOD_COLOURS[s.method]


def test_switches_update_the_same_figure(view):
    s = view.state
    figure = view._pane.object
    for phenotype in s.phenotypes[:3]:
        for method in ("reml", "ml"):
            s.param.update(phenotype=phenotype, method=method)
            assert view._pane.object is figure  # updated in place, not rebuilt
            _check_shows_state(view)


def test_overlay_draws_the_other_method_dashed(view):
    s = view.state
    s.param.update(method="reml", overlay=True)
    try:
        other = s.profile("ml")
        finite = np.isfinite(other["loglik"].to_numpy())
        np.testing.assert_allclose(view._figure.other.data["loglik"], other["loglik"].to_numpy()[finite])
        assert view._figure.other_line.glyph.line_color == METHOD_COLOURS["ml"]
        assert "ML" in list(view._figure.labels.data["text"])
    finally:
        s.overlay = False
    assert len(view._figure.other.data["h2"]) == 0


def test_presentation_mode_makes_a_larger_figure(view):
    small = float(view._figure.figure.title.text_font_size[:-2])
    view.look.presentation = True
    try:
        big = view._figure.figure
        assert view._pane.object is big
        assert float(big.title.text_font_size[:-2]) >= 1.5 * small
        _check_shows_state(view)
    finally:
        view.look.presentation = False


def test_brent_steps_update_both_figures_in_place(brent):
    s = brent.state
    s.param.update(phenotype="h2_20", method="reml", step=0)
    full, zoom = brent._full.object, brent._zoom.object
    trace = s.fit.trace
    grid = np.asarray(trace.step) == "grid"
    seen_parabola = False
    for k in range(1, s.n_frames):
        s.step = k
        assert brent._full.object is full and brent._zoom.object is zoom
        detail = step_detail(trace, k)
        fig = brent._figures[False]
        # every evaluation so far is drawn at its traced (h2, L): the grid and the first k Brent steps
        ev = fig.evaluations.data
        h2, ll = np.asarray(trace.h2), np.asarray(trace.loglik)
        expected = np.concatenate([h2[grid & np.isfinite(ll)], h2[~grid][:k]])
        np.testing.assert_allclose(np.sort(ev["x"]), np.sort(expected))
        # the newest point is the step's evaluation
        np.testing.assert_allclose(fig.sources["newest"].data["x"], [detail.h2])
        # a parabolic step draws the parabola through x, w, v (checked against the three points)
        if detail.step == "parabolic":
            x, y = fig.sources["parabola"].data["x"], fig.sources["parabola"].data["y"]
            assert len(x) > 100
            np.testing.assert_allclose(y, parabola(detail.points, x), rtol=1e-10)
            seen_parabola = True
        # the zoom's bracket is the bracket after the step, in its shifted coordinates
        z = brent._figures[True]
        width = z.bracket.right - z.bracket.left
        assert width == pytest.approx(detail.after[1] - detail.after[0], rel=1e-6, abs=1e-12)
    assert seen_parabola


def test_brent_presentation_mode_makes_larger_figures(brent):
    small = float(brent._figures[True].figure.title.text_font_size[:-2])
    brent.look.presentation = True
    try:
        assert brent._zoom.object is brent._figures[True].figure
        assert float(brent._figures[True].figure.title.text_font_size[:-2]) >= 1.5 * small
    finally:
        brent.look.presentation = False


def test_show_step_never_passes_through_the_first_frame(state):
    # the golden-section example switches phenotype and method and shows a later frame: a player in
    # the browser must not be sent frame 0 in between (it echoed it back and showed the grid)
    state.param.update(phenotype="h2_20", method="reml", step=2)
    seen = []
    watcher = state.param.watch(lambda e: seen.append(e.new), "step")
    try:
        state.show_step(3, phenotype="h2_40", method="ml")
    finally:
        state.param.unwatch(watcher)
    assert state.step == 3 and (state.phenotype, state.method) == ("h2_40", "ml")
    assert 0 not in seen and seen[-1] == 3
    state.phenotype = "h2_20"  # an ordinary switch still restarts the player
    assert state.step == 0
