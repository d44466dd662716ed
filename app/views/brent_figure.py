"""One Brent plot (all of [0, 1], or the zoom on the bracket) as a bokeh figure updated in place.

A step of the Brent player redraws two plots of twelve layers. Through
HoloViews ``DynamicMap``s that cost about 450 ms of CPU per step at n = 1000
(new elements, their options, ranges, every glyph's update); here each figure
is built once per look and a step replaces the columns of its
``ColumnDataSource``s and moves three annotations. What is drawn where comes
from :func:`app.views.brent_plots.brent_layout`, the layout the HoloViews
drawing (:func:`app.views.brent_plots.brent_plot`) also uses.
"""

from __future__ import annotations

import numpy as np
from bokeh.core.properties import field
from bokeh.models import BoxAnnotation, ColumnDataSource, HoverTool, Range1d, Span
from bokeh.plotting import figure

from .brent_plots import (
    BRACKET_COLOUR,
    GOLDEN_COLOUR,
    LABEL_COLOURS,
    PARABOLA_COLOUR,
    REJECTED_COLOUR,
    BrentLayout,
)
from .profile_figure import AXIS_PT, LABEL_PT, TICK_PT, TITLE_PT, pt
from .style import METHOD_COLOURS, OPTIMUM_COLOUR, STEP_COLOURS

__all__ = ["BrentFigure"]

_EMPTY = {"x": np.zeros(0), "y": np.zeros(0)}


class BrentFigure:
    """A bokeh figure showing a :class:`~app.views.brent_plots.BrentLayout`, updated by :meth:`show`.

    Parameters
    ----------
    fontscale, thicker, larger : float
        Scales of the fonts, line widths and marker sizes (presentation mode enlarges them).
    toolbar : str
        "above", or "right" so that a large title has room.
    height : int
    """

    def __init__(self, fontscale: float = 1.0, thicker: float = 1.0, larger: float = 1.0,
                 toolbar: str = "above", height: int = 330) -> None:
        self.sources = {name: ColumnDataSource(dict(_EMPTY)) for name in (
            "profile", "parabola", "refused", "golden_bar", "xwv", "vertex", "newest", "optimum")}
        self.evaluations = ColumnDataSource({"x": [], "y": [], "step": [], "colour": []})
        self.labels = ColumnDataSource({"x": [], "y": [], "text": [], "colour": []})
        fig = figure(height=height, min_width=250, sizing_mode="stretch_width", x_range=Range1d(0.0, 1.0),
                     y_range=Range1d(0.0, 1.0), tools="pan,wheel_zoom,box_zoom,reset,save", active_drag="pan",
                     toolbar_location=toolbar)
        fig.title.text_font_size = pt(TITLE_PT * fontscale)
        for axis in (fig.xaxis, fig.yaxis):
            axis.axis_label_text_font_size = pt(AXIS_PT * fontscale)
            axis.major_label_text_font_size = pt(TICK_PT * fontscale)
            axis.axis_label_text_font_style = "normal"
        fig.xgrid.visible = fig.ygrid.visible = False
        self.bracket = BoxAnnotation(left=0.0, right=0.0, fill_color=BRACKET_COLOUR, fill_alpha=0.55, line_alpha=0.0)
        self.split = Span(dimension="height", location=-1e9, line_color=GOLDEN_COLOUR, line_dash="dashed",
                          line_width=2 * thicker)
        fig.add_layout(self.bracket)
        fig.add_layout(self.split)
        src = self.sources
        fig.line("x", "y", source=src["profile"], line_color=METHOD_COLOURS["reml"], line_alpha=0.45,
                 line_width=2 * thicker)
        fig.line("x", "y", source=src["parabola"], line_color=PARABOLA_COLOUR, line_width=2.5 * thicker)
        fig.line("x", "y", source=src["refused"], line_color=REJECTED_COLOUR, line_width=2 * thicker,
                 line_dash="dashed")
        fig.line("x", "y", source=src["golden_bar"], line_color=GOLDEN_COLOUR, line_width=5 * thicker,
                 line_alpha=0.6)
        dots = fig.scatter("x", "y", source=self.evaluations, size=8 * larger, fill_color=field("colour"),
                           line_color=field("colour"))
        fig.scatter("x", "y", source=src["xwv"], marker="square", size=11 * larger, fill_color="white",
                    line_color="#111827", line_width=2 * thicker)
        fig.scatter("x", "y", source=src["vertex"], marker="diamond", size=16 * larger, fill_color=PARABOLA_COLOUR,
                    line_color="white")
        fig.scatter("x", "y", source=src["newest"], size=18 * larger, fill_alpha=0.0, line_color=OPTIMUM_COLOUR,
                    line_width=3 * thicker)
        fig.scatter("x", "y", source=src["optimum"], marker="star", size=14 * larger, fill_color=OPTIMUM_COLOUR,
                    line_color=OPTIMUM_COLOUR)
        fig.text("x", "y", text=field("text"), source=self.labels, text_color=field("colour"), text_align="left",
                 text_baseline="bottom", text_font_size=pt(LABEL_PT * 1.05 * fontscale))
        fig.add_tools(HoverTool(renderers=[dots], tooltips=[("", "@step"), ("h²", "@x{0.0000000}"),
                                                            ("log-likelihood", "@y{0.000000}")]))
        self.figure = fig

    def show(self, layout: BrentLayout) -> None:
        """Draw ``layout``: replace the sources' columns, move the annotations, set ranges and labels."""
        for name, source in self.sources.items():
            x, y = getattr(layout, name)
            source.data = {"x": np.asarray(x, dtype=float), "y": np.asarray(y, dtype=float)}
        ev = layout.evaluations
        steps = [str(k) for k in ev["step"]]
        self.evaluations.data = {"x": ev["h2"].to_numpy(dtype=float), "y": ev["loglik"].to_numpy(dtype=float),
                                 "step": steps, "colour": [STEP_COLOURS.get(k, "#6b7280") for k in steps]}
        lab = layout.labels
        self.labels.data = {"x": lab["h2"].to_numpy(dtype=float), "y": lab["loglik"].to_numpy(dtype=float),
                            "text": list(lab["text"]),
                            "colour": [LABEL_COLOURS.get(k, "#111827") for k in lab["kind"]]}
        self.bracket.left, self.bracket.right = layout.bracket
        self.split.location = layout.split
        fig = self.figure
        fig.title.text = layout.title
        fig.xaxis.axis_label = layout.xlabel
        fig.yaxis.axis_label = layout.ylabel
        fig.x_range.start, fig.x_range.end = layout.xlim
        fig.y_range.start, fig.y_range.end = layout.ylim
