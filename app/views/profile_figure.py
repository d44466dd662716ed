"""The profile plot as one bokeh figure whose data are replaced in place.

Switching phenotype or method redraws the profile plot. Through a HoloViews
``DynamicMap`` that costs a new overlay of seven elements, their options, the
ranges and every glyph's update (about 100 ms of CPU at n = 1000); here the
figure and its glyphs are built once per look (normal or presentation) and a
switch only replaces the columns of a few ``ColumnDataSource``s and moves
three annotations (a few ms). What is drawn where comes from
:func:`app.views.plots.profile_layout`, the same layout the HoloViews drawing
(:func:`app.views.plots.profile_plot`) uses.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from bokeh.core.properties import field
from bokeh.models import BoxAnnotation, ColumnDataSource, HoverTool, Range1d, Span
from bokeh.plotting import figure

from .plots import H2_XLIM, PROFILE_COLOURS, ProfileLayout
from .style import CI_COLOUR, H2_LABELS, METHOD_COLOURS, OPTIMUM_COLOUR

__all__ = ["ProfileFigure", "in_document", "pt", "TITLE_PT", "AXIS_PT", "TICK_PT", "LABEL_PT"]

#: Font sizes (pt) of the normal look; presentation mode multiplies them by its font scale.
TITLE_PT, AXIS_PT, TICK_PT, LABEL_PT = 12.6, 12.6, 10.5, 10.5


def in_document(model, update: Callable[[], None]) -> None:
    """Run ``update`` (changes to ``model``'s properties) with the document's lock.

    Outside a served session (tests, notebooks, benchmarks) it runs now. In a
    session a change may come from a coroutine after an ``await`` (an upload
    fitted in a worker thread), where bokeh's document lock is not held and a
    direct change raises; ``add_next_tick_callback`` (bokeh's one thread-safe
    document method) runs it on the next tick of the session's loop, with the lock.
    """
    doc = model.document
    if doc is None or doc.session_context is None:
        update()
    else:
        doc.add_next_tick_callback(update)


def pt(size: float) -> str:
    """A font size in points, as bokeh takes it."""
    return f"{size:.1f}pt"


class ProfileFigure:
    """A bokeh figure showing a :class:`~app.views.plots.ProfileLayout`, updated by :meth:`show`.

    Parameters
    ----------
    fontscale : float
        Scale of every font (1 normally; presentation mode enlarges them).
    thicker, larger : float
        Scale of the line widths and of the marker size.
    toolbar : str
        Where the toolbar goes ("above", or "right" so that a large title has room).
    height : int
    """

    def __init__(self, fontscale: float = 1.0, thicker: float = 1.0, larger: float = 1.0,
                 toolbar: str = "above", height: int = 470) -> None:
        self.curve = ColumnDataSource({"h2": [], "loglik": []})
        self.other = ColumnDataSource({"h2": [], "loglik": []})
        self.points = ColumnDataSource({"h2": [], "loglik": [], "kind": [], "colour": []})
        self.labels = ColumnDataSource({"h2": [], "loglik": [], "text": [], "colour": [], "align": []})
        fig = figure(
            height=height,
            min_width=300,
            sizing_mode="stretch_width",
            x_range=Range1d(*H2_XLIM),
            y_range=Range1d(0.0, 1.0),
            tools="pan,wheel_zoom,box_zoom,reset,save",
            active_drag="pan",
            toolbar_location=toolbar,
            x_axis_label=H2_LABELS["xlabel"],
            y_axis_label=H2_LABELS["ylabel"],
        )
        fig.title.text_font_size = pt(TITLE_PT * fontscale)
        for axis in (fig.xaxis, fig.yaxis):
            axis.axis_label_text_font_size = pt(AXIS_PT * fontscale)
            axis.major_label_text_font_size = pt(TICK_PT * fontscale)
            axis.axis_label_text_font_style = "normal"
        fig.xgrid.visible = fig.ygrid.visible = False
        self.band = BoxAnnotation(left=-1.0, right=-1.0, fill_color=CI_COLOUR, fill_alpha=0.35, line_alpha=0.0)
        self.drop = Span(dimension="width", location=-1.0, line_color="#6b7280", line_dash="dashed",
                         line_width=1.5 * thicker)
        self.optimum = Span(dimension="height", location=-1.0, line_color=OPTIMUM_COLOUR, line_dash="dotted",
                            line_width=1.5 * thicker)
        for annotation in (self.band, self.drop, self.optimum):
            fig.add_layout(annotation)
        self.other_line = fig.line("h2", "loglik", source=self.other, line_width=2 * thicker, line_dash="dashed",
                                   line_color=METHOD_COLOURS["ml"])
        self.curve_line = fig.line("h2", "loglik", source=self.curve, line_width=3 * thicker,
                                   line_color=METHOD_COLOURS["reml"])
        dots = fig.scatter("h2", "loglik", source=self.points, size=11 * larger, fill_color=field("colour"),
                           line_color="white", line_width=1.0 * thicker)
        fig.text("h2", "loglik", text=field("text"), source=self.labels, text_color=field("colour"),
                 text_align=field("align"),
                 text_baseline="middle", text_font_size=pt(LABEL_PT * fontscale))
        fig.add_tools(HoverTool(renderers=[dots], tooltips=[("", "@kind"), ("h²", "@h2{0.0000}"),
                                                            ("log-likelihood", "@loglik{0.000}")]))
        self.figure = fig

    def show(self, layout: ProfileLayout) -> None:
        """Draw ``layout``: replace the sources' columns, move the annotations, reset the ranges."""
        colour = [PROFILE_COLOURS.get(k, "#4b5563") for k in layout.points["kind"]]
        self.curve.data = _columns(layout.curve, ["h2", "loglik"])
        self.other.data = _columns(layout.other, ["h2", "loglik"])
        self.points.data = {**_columns(layout.points, ["h2", "loglik"]),
                            "kind": list(layout.points["kind"]), "colour": colour}
        self.labels.data = {**_columns(layout.labels, ["h2", "loglik"]), "text": list(layout.labels["text"]),
                            "colour": [PROFILE_COLOURS.get(k, "#4b5563") for k in layout.labels["kind"]],
                            "align": list(layout.labels["align"])}
        self.curve_line.glyph.line_color = METHOD_COLOURS[layout.primary]
        self.other_line.glyph.line_color = METHOD_COLOURS[layout.second]
        self.band.left, self.band.right = layout.ci
        self.drop.location = layout.threshold
        self.optimum.location = layout.h2
        fig = self.figure
        fig.title.text = layout.title
        fig.x_range.start, fig.x_range.end = H2_XLIM
        fig.y_range.start, fig.y_range.end = layout.ylim


def _columns(frame, names: list[str]) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy(dtype=float) for name in names}
