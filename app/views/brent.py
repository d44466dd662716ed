"""Brent's search, one evaluation at a time: the teaching centrepiece.

A :class:`panel.widgets.Player` moves over the frames of
:meth:`app.state.ExplorerState.brent_frame` (frame 0 is the grid over [0, 1];
each later frame adds one evaluation). At a parabolic step the plots draw the
parabola through the three points Brent used (x, w, v) and its vertex; at a
golden-section step the golden split of the bracket; the indicator says in
words why Brent chose that step (read off the optimiser's trace,
:data:`lmmcore.optimize.REASONS`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn

from ..state import METHODS, ZOOM_POINTS, BrentFrame, ExplorerState
from .brent_figure import BrentFigure
from .profile_figure import in_document
from .brent_plots import PARABOLA_COLOUR, BrentLayout, StepDetail, brent_layout, step_detail, zoom_window
from .base import StateView
from .look import PRESENT_LARGER, PRESENT_THICKER, PRESENT_FONTSCALE
from .style import METHOD_COLOURS, OPTIMUM_COLOUR, STEP_COLOURS, escape, look as button_look, titled

__all__ = ["BrentView", "reason_text", "golden_example"]

_EXPLAIN = """
**How Brent's method searches.** The grid first evaluates L(h²) at 51 points over
[0, 1]; each local maximum of the grid and its two neighbours form a *bracket*
[a, b] that holds a maximum. Brent's method then shrinks the bracket, keeping its
three best points: **x** (the best so far), **w** (second) and **v** (third). At every step it
either

* fits the **parabola** through x, w, v and evaluates L at its vertex (fast near a
  smooth maximum), or
* when that vertex falls outside the bracket, or reaching it would be a step more than
  half the step before last (the bracket would not shrink fast enough), takes a
  **golden-section** step: 0.382 of the way from x into the larger part of the bracket
  (slower, but the bracket always shrinks).

It stops when the bracket is about 2·10⁻⁷ wide. The answer is the best of the
searched maxima and the two boundaries h² = 0 and h² = 1.
"""


def _legend() -> str:
    """The plots' key, as HTML (legends inside the plots would hide points)."""
    def item(symbol: str, colour: str, text: str) -> str:
        return f"<span style='color:{colour};font-size:1.25em'>{symbol}</span>&nbsp;{text}"

    items = [
        item("▬", METHOD_COLOURS["reml"], "profile L(h²)"),
        item("●", STEP_COLOURS["grid"], "grid"),
        item("●", STEP_COLOURS["start"], "start"),
        item("●", STEP_COLOURS["parabolic"], "parabolic step"),
        item("●", STEP_COLOURS["golden"], "golden-section step"),
        item("□", "#111827", "x, w, v"),
        item("▬", PARABOLA_COLOUR, "parabola through x, w, v"),
        item("◆", PARABOLA_COLOUR, "its vertex"),
        item("┅", "#9ca3af", "parabola refused"),
        item("┃", STEP_COLOURS["golden"], "golden split"),
        item("◯", OPTIMUM_COLOUR, "newest evaluation"),
        item("█", "#fde68a", "bracket"),
        item("★", OPTIMUM_COLOUR, "answer"),
    ]
    return "<div style='font-size:0.9em;line-height:1.6'>" + " &nbsp; ".join(items) + "</div>"


def reason_text(detail: StepDetail) -> str:
    """Why Brent chose this step, in a lecturer's words."""
    lo, hi = detail.before
    bracket = f"[{lo:.6g}, {hi:.6g}]"
    vertex = f"h² = {detail.vertex:.6g}" if np.isfinite(detail.vertex) else "none"
    words = {
        "parabola": (
            "**Parabolic step.** Brent fits the parabola through its three best points x, w, v (green) and "
            f"evaluates L at the parabola's vertex ◆ ({vertex}): the vertex lies inside the bracket {bracket} "
            "and reaching it moves less than half the step before last."
        ),
        "min_step": (
            "**Parabolic step of the minimum size.** The vertex of the parabola through x, w, v is closer to x "
            "(or to an end of the bracket) than the tolerance, so Brent moves by the tolerance instead: it "
            "checks that the maximum really is here."
        ),
        "outside": (
            f"**Golden-section step.** The parabola through x, w, v (dashed) has its vertex at {vertex}, "
            f"outside the bracket {bracket}, so Brent does not trust it: it goes 0.382 of the way from x into "
            "the larger part of the bracket (orange)."
        ),
        "too_far": (
            f"**Golden-section step.** The parabola's vertex ({vertex}) is inside the bracket, but reaching it "
            "would be a step more than half the step before last: the bracket would not shrink fast enough. "
            "Brent goes 0.382 of the way from x into the larger part of the bracket (orange) instead."
        ),
        "too_small": (
            "**Golden-section step.** The step before last was smaller than the tolerance (or there was none "
            "yet), so Brent does not trust a parabola: it goes 0.382 of the way from x into the larger part of "
            "the bracket (orange), which always shrinks it."
        ),
        "flat": (
            "**Golden-section step.** Two of x, w, v coincide, so they define no parabola: Brent goes 0.382 of "
            "the way from x into the larger part of the bracket (orange)."
        ),
    }
    if detail.step == "start":
        return (f"**Start of a search** inside the bracket {bracket} from the grid: its highest grid point "
                "(or, at an end of [0, 1], the golden-section point of the end interval).")
    return words.get(detail.reason, f"**{escape(detail.step)} step.**")


def golden_example(state: ExplorerState) -> tuple[str, str, int] | None:
    """(method, phenotype, frame) of the loaded data's search with the most golden-section steps.

    The frame is that search's first golden-section step taken because the
    parabola failed (its vertex outside the bracket, or too far), else its first
    golden-section step.
    """
    best, found = 0, None
    for method in (state.method, *[m for m in METHODS if m != state.method]):
        for name, fit in state.fits(method).items():
            trace = fit.trace
            steps = np.asarray(trace.step)
            brent = np.flatnonzero(steps != "grid")
            for search in np.unique(trace.search[brent]):
                rows = brent[trace.search[brent] == search]
                golden = rows[steps[rows] == "golden"]
                if golden.size > best:
                    reasons = trace.reason if trace.reason is not None else ("",) * len(steps)
                    failed = [r for r in golden if reasons[r] in ("outside", "too_far")]
                    row = failed[0] if failed else golden[0]
                    best, found = golden.size, (method, name, int(np.searchsorted(brent, row)) + 1)
    return found if best >= 3 else None


def _format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The iterations with enough digits to see late steps move, and the change from the step before."""
    if table.empty:
        return pd.DataFrame(columns=["#", "search", "step", "h2", "change in h2", "log-likelihood",
                                     "change in L", "bracket width"])
    t = table.sort_values("#")
    same = t["search"].eq(t["search"].shift())
    dh = (t["h2"] - t["h2"].shift()).where(same)
    dl = (t["log-likelihood"] - t["log-likelihood"].shift()).where(same)
    out = pd.DataFrame({
        "#": t["#"],
        "search": t["search"],
        "step": t["step"],
        "h2": t["h2"].map(lambda v: f"{v:.9f}"),
        "change in h2": dh.map(lambda v: "" if not np.isfinite(v) else f"{v:+.2e}"),
        "log-likelihood": t["log-likelihood"].map(lambda v: f"{v:.6f}"),
        "change in L": dl.map(lambda v: "" if not np.isfinite(v) else f"{v:+.1e}"),
        "bracket width": t["bracket width"].map(lambda v: f"{v:.2e}"),
    })
    return out.iloc[::-1]


class BrentView(StateView):
    """Player, indicator, full and zoomed plots, and the table of iterations."""


    def __init__(self, **params) -> None:
        super().__init__(**params)
        s = self.state
        self._player = pn.widgets.Player.from_param(
            s.param.step,
            name="Brent step",
            start=0,
            end=max(s.n_frames - 1, 1),
            interval=1200,
            loop_policy="once",
            show_loop_controls=False,
            visible_buttons=["first", "previous", "pause", "play", "next", "last"],
            show_value=True,
            value_align="start",
            width=320,
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
        self._figures = self._new_figures()
        self._full = pn.pane.Bokeh(self._figures[False].figure, min_height=330, sizing_mode="stretch_width")
        self._zoom = pn.pane.Bokeh(self._figures[True].figure, min_height=330, sizing_mode="stretch_width")
        # the classes on containers: a design's modifiers replace a bokeh figure's own classes
        box = dict(min_width=300, sizing_mode="stretch_width", styles={"flex": "1 1 360px"})
        full_box = pn.Column(self._full, css_classes=["brent-full"], **box)
        zoom_box = pn.Column(self._zoom, css_classes=["brent-zoom"], **box)
        s.param.watch(self._redraw, list(deps))
        self.look.param.watch(self._restyle, "presentation")
        self._indicator = pn.pane.Markdown(
            pn.bind(self._indicator_text, **deps), css_classes=["brent-indicator"], sizing_mode="stretch_width",
            min_height=60, styles={"flex": "1 1 380px"},
        )
        self._golden = pn.widgets.Button(
            **titled(pn.widgets.Button, "Show a search with golden-section steps"),
            **button_look(pn.widgets.Button, "default", "outline"),
            css_classes=["brent-golden-example"], width=320,
        )
        self._golden.on_click(self._show_golden)
        self._golden_note = pn.pane.Markdown(
            "<small>Smooth interior maxima are found by parabolas; a maximum on the boundary, or a flat or "
            "two-peaked profile, makes Brent take golden-section steps.</small>",
            sizing_mode="stretch_width", styles={"flex": "1 1 300px"},
        )
        self._table = pn.pane.DataFrame(
            pn.bind(self._table_frame, **deps),
            index=False,
            escape=True,
            sizing_mode="stretch_width",
            css_classes=["brent-table"],
            max_height=260,
            styles={"overflow": "auto", "font-size": "0.9em"},
            stylesheets=["table { font-variant-numeric: tabular-nums; } td, th { white-space: nowrap; "
                         "padding: 2px 8px !important; }"],
        )
        self._explain = pn.pane.Markdown(_EXPLAIN, min_width=300, styles={"flex": "1 1 360px", "font-size": "0.95em"},
                                         css_classes=["brent-explain"])
        self.look.param.watch(self._apply_look, "presentation")
        self._apply_look()
        self._layout = pn.Column(
            pn.FlexBox(self._player, self._indicator, flex_wrap="wrap", sizing_mode="stretch_width"),
            pn.FlexBox(self._golden, self._golden_note, flex_wrap="wrap", sizing_mode="stretch_width"),
            pn.pane.HTML(_legend(), sizing_mode="stretch_width", margin=(0, 10)),
            pn.FlexBox(full_box, zoom_box, flex_wrap="wrap", sizing_mode="stretch_width"),
            pn.FlexBox(
                pn.Column(pn.pane.Markdown("**Iterations so far (newest first)**", margin=(0, 10)), self._table,
                          min_width=300, styles={"flex": "2 1 520px"}),
                self._explain,
                flex_wrap="wrap",
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    @property
    def player(self) -> pn.widgets.Player:
        return self._player

    def _apply_look(self, *_events) -> None:
        self._explain.visible = not self.look.presentation
        self._golden_note.visible = not self.look.presentation

    def _sync_player(self, *_events) -> None:
        self._player.end = max(self.state.n_frames - 1, 1)

    def _show_golden(self, _event=None) -> None:
        found = golden_example(self.state)
        if found is None:
            self.state.notify("info", "no phenotype of these data makes Brent take more than a couple of "
                                      "golden-section steps")
            return
        method, phenotype, frame = found
        self.state.show_step(frame, method=method, phenotype=phenotype)
        self._goto(frame)
        # the player in the browser may echo its old value after the phenotype changed: set it again
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            doc.add_timeout_callback(lambda: self._goto(frame), 600)

    def _goto(self, frame: int) -> None:
        self._player.end = max(self.state.n_frames - 1, 1)
        self.state.step = frame

    def _frame(self) -> BrentFrame | None:
        return self.state.brent_frame() if self.state.dataset is not None else None

    def _detail(self, frame: BrentFrame) -> StepDetail | None:
        fit = self.state.fit
        return step_detail(fit.trace, frame.index) if fit is not None else None

    def layout(self, zoom: bool) -> BrentLayout:
        """What the full plot (``zoom`` False) or the zoom shows at the state's step."""
        frame = self._frame()
        if frame is None:
            return brent_layout(None, None, zoom=zoom)
        detail = self._detail(frame)
        if zoom:
            lo, hi = zoom_window(frame, detail)
            curve = self.state.profile(h2=np.linspace(max(lo, 0.0), min(hi, 1.0), ZOOM_POINTS))
        else:
            curve = self.state.profile()
        return brent_layout(frame, curve, detail, zoom=zoom)

    def _new_figures(self) -> dict[bool, BrentFigure]:
        look = (dict(fontscale=PRESENT_FONTSCALE, thicker=PRESENT_THICKER, larger=PRESENT_LARGER, toolbar="right")
                if self.look.presentation else {})
        figures = {zoom: BrentFigure(**look) for zoom in (False, True)}
        for zoom, fig in figures.items():
            fig.show(self.layout(zoom))
        return figures

    def _redraw(self, *_events) -> None:
        for zoom, fig in self._figures.items():
            layout = self.layout(zoom)
            in_document(fig.figure, lambda fig=fig, layout=layout: fig.show(layout))

    def _restyle(self, *_events) -> None:
        # fonts and widths are set when a figure is made: new figures for the new look
        self._figures = self._new_figures()
        self._full.object = self._figures[False].figure
        self._zoom.object = self._figures[True].figure

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
            detail = self._detail(frame)
            why = reason_text(detail) if detail is not None else escape(c["step"])
            change = ""
            if detail is not None and np.isfinite(detail.previous_h2):
                change = (f" (change {c['h2'] - detail.previous_h2:+.2e}; L changed by "
                          f"{c['loglik'] - detail.previous_loglik:+.2e})")
            text = (
                f"{head} · search {c['search'] + 1}. {why}  \n"
                f"New point **h² = {c['h2']:.9f}**, L = {c['loglik']:.6f}{change}. Bracket now "
                f"[{c['bracket_low']:.9f}, {c['bracket_high']:.9f}], width {c['bracket_high'] - c['bracket_low']:.1e}."
            )
        if frame.is_last and frame.index > 0:
            text += f" **Finished: ĥ² = {frame.final_h2:.6f}** (the star)."
        return text

    def _table_frame(self, step, dataset, phenotype, method, use_covariates) -> pd.DataFrame:
        frame = self._frame()
        if frame is None:
            return _format_table(pd.DataFrame())
        return _format_table(frame.table)
