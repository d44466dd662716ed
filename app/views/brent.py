"""Brent's search, one evaluation at a time: the teaching centrepiece.

A :class:`panel.widgets.Player` moves over the frames of
:meth:`app.state.ExplorerState.brent_frame` (frame 0 is the grid over [0, 1];
each later frame adds one evaluation). The two plots are HoloViews
``DynamicMap`` objects, so stepping updates their data in place.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from ..state import ZOOM_POINTS, BrentFrame, ExplorerState
from .plots import brent_plot
from .style import METHOD_COLOURS, OPTIMUM_COLOUR, STEP_COLOURS, escape

__all__ = ["BrentView"]

_STEP_WORDS = {
    "start": "starting point inside the bracket",
    "parabolic": "parabolic step: the vertex of the parabola through the three best points",
    "golden": "golden-section step: 0.382 of the way into the larger part of the bracket",
}

_EXPLAIN = """
**How Brent's method searches.** The grid first evaluates L(h²) at 51 points over
[0, 1]; each local maximum of the grid and its two neighbours form a *bracket*
[a, b] that holds a maximum. Brent's method then shrinks the bracket. At every step it
either

* fits a **parabola** through its three best points and evaluates L at the parabola's
  vertex (fast near a smooth maximum), or
* when that vertex would fall outside the bracket or move too little, takes a
  **golden-section** step 0.382·(larger part of the bracket) from the best point
  (slower, but the bracket always shrinks).

It stops when the bracket is about 2·10⁻⁷ wide. The answer is the best of the
searched maxima and the two boundaries h² = 0 and h² = 1.
"""


def _legend() -> str:
    """The plots' key, as HTML (legends inside the plots would hide points)."""
    def item(symbol: str, colour: str, text: str) -> str:
        return f"<span style='color:{colour};font-size:16px'>{symbol}</span>&nbsp;{text}"

    items = [
        item("▬", METHOD_COLOURS["reml"], "profile L(h²)"),
        item("●", STEP_COLOURS["grid"], "grid"),
        item("●", STEP_COLOURS["start"], "start of a search"),
        item("●", STEP_COLOURS["parabolic"], "parabolic step"),
        item("●", STEP_COLOURS["golden"], "golden-section step"),
        item("◯", OPTIMUM_COLOUR, "newest evaluation"),
        item("█", "#fde68a", "current bracket"),
        item("★", OPTIMUM_COLOUR, "answer (last step)"),
    ]
    return "<div style='font-size:12.5px'>" + " &nbsp; ".join(items) + "</div>"


def _format_table(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for col in ("h2", "bracket low", "bracket high"):
        out[col] = out[col].map(lambda v: f"{v:.6f}")
    out["log-likelihood"] = out["log-likelihood"].map(lambda v: f"{v:.5f}")
    out["bracket width"] = out["bracket width"].map(lambda v: f"{v:.2e}")
    return out


class BrentView(pn.viewable.Viewer):
    """Player, indicator, full and zoomed plots, and the table of iterations."""

    state = param.ClassSelector(class_=ExplorerState, doc="The session's state.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        s = self.state
        self._player = pn.widgets.Player.from_param(
            s.param.step,
            name="Brent step",
            start=0,
            end=max(s.n_frames - 1, 1),
            interval=900,
            loop_policy="once",
            show_loop_controls=False,
            visible_buttons=["first", "previous", "pause", "play", "next", "last"],
            show_value=True,
            value_align="start",
            width=330,
            css_classes=["brent-player"],
        )
        s.param.watch(self._sync_player, ["dataset", "phenotype", "method", "use_covariates"])
        deps = dict(
            step=s.param.step,
            dataset=s.param.dataset,
            phenotype=s.param.phenotype,
            method=s.param.method,
            use_covariates=s.param.use_covariates,
        )
        self._full = hv.DynamicMap(pn.bind(self._plot, zoom=False, **deps))
        self._zoom = hv.DynamicMap(pn.bind(self._plot, zoom=True, **deps))
        self._indicator = pn.pane.Markdown(
            pn.bind(self._indicator_text, **deps), css_classes=["brent-indicator"], sizing_mode="stretch_width",
            min_height=60,
        )
        self._table = pn.pane.DataFrame(
            pn.bind(self._table_frame, **deps),
            index=False,
            escape=True,
            sizing_mode="stretch_width",
            css_classes=["brent-table"],
            max_height=250,
            styles={"overflow-y": "auto", "font-size": "12.5px"},
        )
        self._layout = pn.Column(
            pn.Row(self._player, self._indicator, sizing_mode="stretch_width"),
            pn.pane.HTML(_legend(), sizing_mode="stretch_width", margin=(0, 10)),
            pn.Row(
                pn.pane.HoloViews(self._full, linked_axes=False, sizing_mode="stretch_width", min_height=330),
                pn.pane.HoloViews(self._zoom, linked_axes=False, sizing_mode="stretch_width", min_height=330),
                sizing_mode="stretch_width",
            ),
            pn.Row(
                pn.Column(pn.pane.Markdown("**Iterations so far (newest first)**", margin=(0, 10)), self._table,
                          sizing_mode="stretch_width"),
                pn.pane.Markdown(_EXPLAIN, width=420, styles={"font-size": "13px"}),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    @property
    def player(self) -> pn.widgets.Player:
        return self._player

    def _sync_player(self, *_events) -> None:
        self._player.end = max(self.state.n_frames - 1, 1)

    def _frame(self) -> BrentFrame | None:
        return self.state.brent_frame() if self.state.dataset is not None else None

    def _plot(self, zoom: bool, step, dataset, phenotype, method, use_covariates):
        frame = self._frame()
        if frame is None:
            return brent_plot(None, None, zoom=zoom)
        if zoom:
            lo, hi = frame.search_bracket
            curve = self.state.profile(h2=np.linspace(lo, hi, ZOOM_POINTS))
        else:
            curve = self.state.profile()
        return brent_plot(frame, curve, zoom=zoom)

    def _indicator_text(self, step, dataset, phenotype, method, use_covariates) -> str:
        frame = self._frame()
        if frame is None:
            return ""
        last = frame.n_frames - 1
        head = f"**Step {frame.index} of {last}**"
        if frame.current is None:
            lo, hi = frame.search_bracket
            best = frame.grid_h2[int(np.nanargmax(frame.grid_loglik))]
            text = (
                f"{head}: the grid, L(h²) at {frame.grid_h2.size} points over [0, 1]. Its highest point "
                f"(h² = {best:.2f}) and neighbours give the first bracket [{lo:.2f}, {hi:.2f}]. "
                "Press ▶ to play, or the step buttons to move one evaluation."
            )
        else:
            c = frame.current
            text = (
                f"{head} · search {c['search'] + 1} · {_STEP_WORDS.get(c['step'], escape(c['step']))}: "
                f"h² = {c['h2']:.6f}, L = {c['loglik']:.4f}. Bracket now "
                f"[{c['bracket_low']:.6f}, {c['bracket_high']:.6f}] "
                f"(width {c['bracket_high'] - c['bracket_low']:.1e})."
            )
        if frame.is_last and frame.index > 0:
            text += f" **Finished: ĥ² = {frame.final_h2:.6f}** (the star)."
        return text

    def _table_frame(self, step, dataset, phenotype, method, use_covariates) -> pd.DataFrame:
        frame = self._frame()
        if frame is None:
            return pd.DataFrame()
        return _format_table(frame.table)
