"""Colours, axis labels and shared plot options of the dashboard."""

from __future__ import annotations

import html

import holoviews as hv

#: One colour per method, used by every plot.
METHOD_COLOURS = {"reml": "#1f5fbf", "ml": "#c2410c"}
#: Brent's steps.
STEP_COLOURS = {"grid": "#9ca3af", "start": "#111827", "parabolic": "#059669", "golden": "#d97706"}
OPTIMUM_COLOUR = "#dc2626"
CI_COLOUR = "#93c5fd"
ACCENT = "#1f5fbf"

#: Axis dimensions (units in the labels).
H2_DIM = hv.Dimension("h2", label="h2 (heritability, unitless)", range=(0.0, 1.0))
LOGLIK_DIM = hv.Dimension("loglik", label="profile log-likelihood")
#: Axis labels of the h2 plots (set on overlays whose first layer is an annotation).
H2_LABELS = dict(xlabel="h2 (heritability, unitless)", ylabel="profile log-likelihood")

#: Options every bokeh plot shares: responsive width, a toolbar with the save (PNG) tool.
PLOT_OPTS = dict(
    responsive=True,
    min_height=300,
    tools=["hover"],
    default_tools=["save", "pan", "wheel_zoom", "box_zoom", "reset"],
    active_tools=["pan"],  # the mouse wheel scrolls the page until the user picks wheel zoom
    toolbar="above",
    fontscale=1.05,
)


def escape(text: object) -> str:
    """HTML-escape text that came from users or files (file, phenotype, covariate names)."""
    return html.escape(str(text), quote=True)

#: The same for small plots: the toolbar on the right leaves the title room.
SIDE_TOOLBAR = {**PLOT_OPTS, "toolbar": "right"}


def titled(cls: type, text: str) -> dict:
    """The keyword that gives a widget its title (``label`` from Panel 1.9, ``name`` before)."""
    return {"label": text} if "label" in cls.param else {"name": text}


def look(cls: type, color: str = "default", variant: str = "solid") -> dict:
    """Button colour and variant keywords for the installed Panel (``color``/``variant`` from 1.9)."""
    if "color" in cls.param and "variant" in cls.param:
        return {"color": color, "variant": variant}
    return {"button_type": color, "button_style": variant}
