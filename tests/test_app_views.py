"""The dashboard's drawings and view logic, without a browser.

Each test pins a defect of issue 14 with an independent check: label
positions against the drawn curve and frame, the kinship image against the
matrix, the clustering order against a known block structure, one
individual's shares of the rotation against y* = U'y, number formats per
column, the forest plot's order against the table's sort, and the Brent
table's digits against the trace.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from browser_util import example_dir

pn = pytest.importorskip("panel")
hv = pytest.importorskip("holoviews")

from app.state import ExplorerState  # noqa: E402
from app.views.brent import _format_table, golden_example, reason_text  # noqa: E402
from app.views.brent_plots import brent_plot, parabola, step_detail, zoom_window  # noqa: E402
from app.views.look import PRESENT_FONTSCALE, Look, styled  # noqa: E402
from app.views.plots import H2_XLIM, cluster_order, contribution_plot, kinship_image, profile_plot  # noqa: E402
from app.views.profile import se_text  # noqa: E402
from app.views.results import AllPhenotypesView, table_formatters  # noqa: E402


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    return example_dir(tmp_path_factory.mktemp("assets"))


@pytest.fixture(scope="module")
def state(example) -> ExplorerState:
    pn.extension("tabulator")
    hv.extension("bokeh", logo=False)
    return ExplorerState.with_example(example)


def _labels(overlay) -> pd.DataFrame:
    lab = [el for el in overlay if isinstance(el, hv.Labels)][0]
    return lab.dframe()


def _ylim(overlay):
    return hv.Store.lookup_options("bokeh", overlay, "plot").kwargs["ylim"]


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("phenotype", ["h2_00", "h2_90", "h2_50_na"])
@pytest.mark.parametrize("overlay", [False, True])
def test_profile_labels_stay_in_the_frame_and_off_their_curves(state, phenotype, overlay, method):
    state.param.update(phenotype=phenotype, method=method)
    other = "ml" if method == "reml" else "reml"
    curves = [(m, state.profile(m), state.fit_for(m)) for m in ([method, other] if overlay else [method])]
    plot = profile_plot(curves, method)
    ylim = _ylim(plot)
    span = ylim[1] - ylim[0]
    labels = _labels(plot).dropna(subset=["loglik"])
    texts = set(labels["text"])
    assert "max − 1.92" in texts and "L(0)" in texts or state.fit.loglik_h2_zero < ylim[0]
    names = {"reml": "REML", "ml": "ML"}
    assert names[method] in texts and (names[other] in texts) == overlay
    # every label's anchor inside the frame, with room for the text's half height
    assert (labels["loglik"] > ylim[0] + 0.02 * span).all() and (labels["loglik"] < ylim[1] - 0.02 * span).all()
    assert labels["h2"].between(H2_XLIM[0], H2_XLIM[1]).all()
    # a curve's name sits above its own curve where it is written (never struck through)
    for method, df, _ in curves:
        row = labels[labels["text"] == {"reml": "REML", "ml": "ML"}[method]].iloc[0]
        direction = 1 if row["align"] == "left" else -1
        xs = row["h2"] + direction * np.linspace(0, 0.12, 13)
        under = np.interp(xs, df["h2"], df["loglik"])
        assert np.all(under < row["loglik"] - 0.01 * span)
    # no curve's name on the dashed max - 1.92 line
    threshold = curves[0][2].loglik - 1.92
    for name in ("REML", "ML"):
        for _, row in labels[labels["text"] == name].iterrows():
            assert abs(row["loglik"] - threshold) > 0.05 * span
    # the optimum's value and the curve's name do not collide
    opt = labels[labels["text"].str.startswith("ĥ²")].iloc[0]
    own = labels[labels["text"] == names[method]].iloc[0]
    assert abs(opt["loglik"] - own["loglik"]) > 0.15 * span


def test_optimum_at_one_is_drawn_whole():
    # a dot at h2 = 1 needs room right of it: the x-range goes beyond [0, 1]
    assert H2_XLIM[0] <= -0.04 and H2_XLIM[1] >= 1.04


def test_se_at_a_boundary_says_why(state):
    state.param.update(phenotype="h2_00", method="ml")
    fit = state.fit
    assert fit.boundary and not np.isfinite(fit.h2_se)
    text = se_text(fit)
    assert text.startswith("—") and "boundary" in text
    state.method = "reml"
    assert se_text(state.fit) == f"{state.fit.h2_se:.3f}"


def test_kinship_is_drawn_as_a_matrix_is_read():
    K = np.arange(16, dtype=float).reshape(4, 4)
    img = kinship_image(K)
    plot_opts = hv.Store.lookup_options("bokeh", img, "plot").kwargs
    assert plot_opts["invert_yaxis"]  # y = 1 at the top
    # the value at row i (y), column j (x) is K[i-1, j-1]
    for i, j in [(1, 1), (1, 4), (4, 1), (3, 2)]:
        assert img[j, i] == K[i - 1, j - 1]


def test_cluster_order_puts_related_individuals_together():
    rng = np.random.default_rng(3)
    blocks = np.repeat([0, 1, 2], [5, 7, 6])
    K = 0.1 * np.eye(blocks.size) + (blocks[:, None] == blocks[None, :]) * 0.5
    perm = rng.permutation(blocks.size)
    order = cluster_order(K[np.ix_(perm, perm)])
    assert sorted(order) == list(range(blocks.size))
    runs = blocks[perm][order]
    assert np.count_nonzero(np.diff(runs)) == 2  # three contiguous groups


def test_one_individuals_shares_add_up_to_the_rotated_phenotype(state):
    rotation = state.rotation()
    U, y = rotation.eig.vectors, rotation.y
    total = sum(contribution_plot(rotation, j).get(1).dframe()["c"].to_numpy() for j in range(y.size))
    np.testing.assert_allclose(total, rotation.rot.y[:, 0], atol=1e-8)
    np.testing.assert_allclose(U.T @ y, rotation.rot.y[:, 0], atol=1e-8)


def test_variance_columns_use_one_format_each():
    df = pd.DataFrame({"sigma2_g": [2.2573e5, 69612.891], "sigma2_e": [0.5, 1.25], "p_h2_zero": [0.5, 1e-8]})
    f = table_formatters(df)
    assert type(f["sigma2_g"]).__name__ == "ScientificFormatter" and f["sigma2_g"].power_limit_high == 0
    assert type(f["sigma2_e"]).__name__ == "NumberFormatter"
    assert f["p_h2_zero"].power_limit_high == 0 and f["p_h2_zero"].power_limit_low == 0
    assert f["h2_se"].nan_format == "—"


def test_forest_plot_follows_the_table_sort_and_highlights_the_phenotype(state):
    state.param.update(method="reml", phenotype="h2_40")
    view = AllPhenotypesView(state=state)
    table = view._table
    assert list(table.selection) == [list(table.value["phenotype"]).index("h2_40")]
    table.sorters = [{"field": "h2", "dir": "desc"}]
    plot = view._errorbars(table.sorters, state.phenotype, state.dataset, state.method, state.use_covariates)
    shown = list(plot.get(0).dframe()["phenotype"])
    expected = list(state.results_frame().sort_values("h2", ascending=False)["phenotype"].astype(str))
    assert shown == expected
    assert len(table.value) <= 10 and table.pagination is None  # whole rows, no fixed height


def test_brent_table_shows_late_steps_moving(state):
    state.param.update(phenotype="h2_20", method="reml")
    state.step = state.n_frames - 1
    frame = state.brent_frame()
    table = _format_table(frame.table)
    h2 = table["h2"].tolist()
    assert len(set(h2)) == len(h2)  # every step's h2 differs in the digits shown
    changes = table["change in h2"].replace("", np.nan).dropna()
    np.testing.assert_allclose(changes.astype(float), -np.diff(frame.table["h2"].to_numpy())[:changes.size],
                               rtol=0.01)


def test_brent_zoom_follows_the_shrinking_bracket(state):
    state.param.update(phenotype="h2_20", method="reml")
    fit = state.fit
    widths = []
    for k in range(2, state.n_frames):
        frame = state.brent_frame(k)
        lo, hi = zoom_window(frame, step_detail(fit.trace, k))
        widths.append(hi - lo)
    assert widths[-1] < 0.01 * widths[0]


def test_parabolic_step_draws_the_parabola_through_x_w_v(state):
    state.param.update(phenotype="h2_20", method="reml")
    trace = state.fit.trace
    k = next(i for i in range(1, state.n_frames) if step_detail(trace, i).reason == "parabola")
    detail = step_detail(trace, k)
    xs = np.array([p[0] for p in detail.points])
    np.testing.assert_allclose(parabola(detail.points, xs), [p[1] for p in detail.points], rtol=1e-12)
    plot = brent_plot(state.brent_frame(k), state.profile(), detail, zoom=False)
    curves = [el for el in plot if isinstance(el, hv.Curve) and el.label == "parabola"]
    assert len(curves) == 1 and len(curves[0]) > 100
    assert "Parabolic step" in reason_text(detail)


def test_golden_example_is_a_search_with_golden_steps(state):
    method, phenotype, frame = golden_example(state)
    state.param.update(method=method, phenotype=phenotype)
    detail = step_detail(state.fit.trace, frame)
    assert detail.step == "golden" and detail.reason in ("outside", "too_far")
    assert "Golden-section step" in reason_text(detail)
    lo, hi = detail.before
    assert not (lo < detail.vertex < hi) or detail.reason == "too_far"
    state.method = "reml"


def test_presentation_style_enlarges_fonts_and_lines():
    plot = hv.Curve([1, 2, 3]).opts(line_width=2) * hv.Scatter([1, 2]).opts(size=8)
    big = styled(plot, True)
    assert hv.Store.lookup_options("bokeh", big, "plot").kwargs["fontscale"] == PRESENT_FONTSCALE
    widths = [hv.Store.lookup_options("bokeh", el, "style").kwargs for el in big]
    assert widths[0]["line_width"] > 2 and widths[1]["size"] > 8
    assert styled(plot, False) is plot
    assert not Look().presentation
