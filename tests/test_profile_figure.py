"""The profile plot's bokeh figure: it shows the state's profile, and a switch updates it in place.

The independent check is the state's own profile table and fit (the numbers
the engine computed), not the layout the figure was given.
"""

from __future__ import annotations

import numpy as np
import pytest

from browser_util import example_dir

pn = pytest.importorskip("panel")

from app.state import ExplorerState  # noqa: E402
from app.views.look import Look  # noqa: E402
from app.views.profile import ProfileView  # noqa: E402
from app.views.style import METHOD_COLOURS  # noqa: E402


@pytest.fixture(scope="module")
def view(tmp_path_factory) -> ProfileView:
    state = ExplorerState.with_example(example_dir(tmp_path_factory.mktemp("assets")))
    return ProfileView(state=state, look=Look())


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
    figure = view._plot.object
    for phenotype in s.phenotypes[:3]:
        for method in ("reml", "ml"):
            s.param.update(phenotype=phenotype, method=method)
            assert view._plot.object is figure  # updated in place, not rebuilt
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
        assert view._plot.object is big
        assert float(big.title.text_font_size[:-2]) >= 1.5 * small
        _check_shows_state(view)
    finally:
        view.look.presentation = False
