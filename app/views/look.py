"""How the dashboard looks: normal or presentation mode, and the plots that follow it.

Presentation mode is for a projector at the back of a lecture hall: page text
of at least 18 px, plot titles, axis labels and tick labels enlarged to match,
thicker lines and larger markers, and secondary notes hidden. One
:class:`Look` per session is shared by every view; plots made with
:func:`live_plot` are rebuilt when it changes (a ``DynamicMap`` takes its
plot-level options, such as font sizes, from its first frame only).
"""

from __future__ import annotations

from typing import Callable

import holoviews as hv
import panel as pn
import param
from panel.theme import Bootstrap
from panel.viewable import Viewable

__all__ = [
    "CONTROL_FONT_VAR",
    "LectureDesign",
    "Look",
    "PRESENT_FONT_PX",
    "PRESENT_FONTSCALE",
    "PRESENT_THICKER",
    "PRESENT_LARGER",
    "styled",
    "live_plot",
    "text_styles",
]

#: Base font size of the page in presentation mode (the issue asks for at least 18 px).
PRESENT_FONT_PX = 19
#: Base font size of the page otherwise.
NORMAL_FONT_PX = 14
#: Scale of every plot font in presentation mode (bokeh's defaults are 12pt titles, 10pt ticks).
PRESENT_FONTSCALE = 1.75
#: Line widths and marker sizes in presentation mode.
PRESENT_THICKER, PRESENT_LARGER = 1.8, 1.45


#: The CSS custom property that sizes the widgets' own text in presentation mode (unset otherwise).
CONTROL_FONT_VAR = "--lmm-control-font-size"

#: CSS inside every component's shadow root: the text of widgets that do not inherit the page's font
#: size (a <select> and its options take the browser's 13.3 px, Bootstrap's buttons 0.8rem) follows
#: CONTROL_FONT_VAR, which :func:`text_styles` sets on the page's containers in presentation mode
#: (and to ``initial``, i.e. unset, otherwise); unset, each keeps its usual size (the fallback).
CONTROL_CSS = f"""
.bk-btn {{ --bs-btn-font-size: var({CONTROL_FONT_VAR}, 0.8rem); }}
select, select option, select optgroup, button.card-header {{ font-size: var({CONTROL_FONT_VAR}, 13.3333px); }}
input.bk-input, textarea.bk-input, .choices__inner, .choices__input, .choices__item {{
  font-size: var({CONTROL_FONT_VAR}, inherit);
}}
"""


class LectureDesign(Bootstrap):
    """Panel's Bootstrap design, with :data:`CONTROL_CSS` in every component (so in every widget)."""

    modifiers = {
        **Bootstrap.modifiers,
        Viewable: {"stylesheets": [*Bootstrap.modifiers[Viewable]["stylesheets"], CONTROL_CSS]},
    }


class Look(param.Parameterized):
    """The session's look (shared by all views)."""

    presentation = param.Boolean(default=False, doc="Large text, thick lines, notes hidden (for projectors).")


def _thicken(element):
    """Scale the line widths, marker sizes and label font of one element for presentation."""
    try:
        style = hv.Store.lookup_options("bokeh", element, "style").kwargs
    except Exception:  # noqa: BLE001 - an element without bokeh options stays as it is
        return element
    changes = {}
    if isinstance(element, (hv.Curve, hv.HLine, hv.VLine, hv.ErrorBars, hv.Spikes)):
        changes["line_width"] = PRESENT_THICKER * float(style.get("line_width", 1.5))
    if isinstance(element, (hv.Scatter, hv.Points)):
        changes["size"] = PRESENT_LARGER * float(style.get("size", 6))
        if "line_width" in style:
            changes["line_width"] = PRESENT_THICKER * float(style["line_width"])
    if isinstance(element, (hv.Labels, hv.Text)):
        size = str(style.get("text_font_size", "10pt"))
        if size.endswith("pt") or size.endswith("px"):
            changes["text_font_size"] = f"{float(size[:-2]) * PRESENT_FONTSCALE / 1.15:.1f}{size[-2:]}"
    return element.opts(**changes) if changes else element


def styled(obj, presentation: bool):
    """``obj`` as it should look: unchanged, or enlarged for presentation mode."""
    if not presentation:
        return obj
    obj = obj.map(_thicken, [hv.Element])
    # the toolbar beside the plot, so that the larger title does not run under it
    return obj.opts(fontscale=PRESENT_FONTSCALE, toolbar="right")


def live_plot(func: Callable, deps: dict, look: Look, **pane_params) -> pn.pane.HoloViews:
    """A pane showing ``func(**deps)`` as a ``DynamicMap`` that follows ``deps`` and ``look``.

    ``deps`` maps keyword names to parameters (``state.param.phenotype``) or
    constants, as for :func:`panel.bind`. A change of a dependency updates
    the plot in place; a change of the look rebuilds it.
    """

    def make() -> hv.DynamicMap:
        def draw(**values):
            return styled(func(**values), look.presentation)

        return hv.DynamicMap(pn.bind(draw, **deps))

    pane_params.setdefault("linked_axes", False)
    pane_params.setdefault("sizing_mode", "stretch_width")
    pane = pn.pane.HoloViews(make(), **pane_params)

    def rebuild(_event) -> None:
        pane.object = make()

    look.param.watch(rebuild, "presentation")
    return pane


def text_styles(presentation: bool) -> dict:
    """CSS for a top-level container: the base font size that every component below inherits.

    In presentation mode also :data:`CONTROL_FONT_VAR`, the size of the widgets' own text
    (selects and their options, inputs, buttons; see :class:`LectureDesign`).
    """
    px = PRESENT_FONT_PX if presentation else NORMAL_FONT_PX
    # "initial" makes the custom property unset (so each widget keeps its usual size); leaving the key
    # out would not clear a value already sent to the browser when presentation mode is turned off
    return {"--bokeh-font-size": f"{px}px", "font-size": f"{px}px",
            CONTROL_FONT_VAR: f"{px}px" if presentation else "initial"}
