"""The profile log-likelihood over h2: optimum, 95% interval, 1.92 drop, test of h2 = 0."""

from __future__ import annotations

import numpy as np
import panel as pn

from lmmcore import CI_DROP

from ..state import METHODS
from .base import StateView
from .look import PRESENT_LARGER, PRESENT_THICKER, PRESENT_FONTSCALE
from .plots import ProfileLayout, profile_layout
from .profile_figure import ProfileFigure, in_document
from .style import escape

__all__ = ["ProfileView", "se_text"]


def se_text(fit, digits: int = 3) -> str:
    """The SE of h2, or "—" with the engine's reason when it is not defined (at a boundary)."""
    if np.isfinite(fit.h2_se):
        return f"{fit.h2_se:.{digits}f}"
    note = getattr(fit, "h2_se_note", "") or "not defined here"
    return f"— ({escape(note)})"


class ProfileView(StateView):
    """The main picture: L(h2) on [0, 1] for the chosen phenotype and method."""


    def __init__(self, **params) -> None:
        super().__init__(**params)
        s = self.state
        deps = dict(
            dataset=s.param.dataset,
            phenotype=s.param.phenotype,
            method=s.param.method,
            use_covariates=s.param.use_covariates,
            overlay=s.param.overlay,
        )
        self._figure = self._new_figure()
        self._pane = pn.pane.Bokeh(self._figure.figure, min_height=430, min_width=380, sizing_mode="stretch_width")
        # the class on a container: a design's modifiers replace a bokeh figure's own classes
        self._plot = pn.Column(self._pane, css_classes=["profile-plot"], min_width=380, sizing_mode="stretch_width",
                               styles={"flex": "1 1 460px"})
        s.param.watch(self._redraw, list(deps))
        self.look.param.watch(self._restyle, "presentation")
        self._text = pn.pane.Markdown(
            pn.bind(self._summary, presentation=self.look.param.presentation, **deps),
            css_classes=["profile-summary"], width=300, margin=(10, 10), styles={"flex": "0 1 300px"},
        )
        self._layout = pn.FlexBox(self._plot, self._text, flex_wrap="wrap", sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _curves(self, overlay: bool):
        s = self.state
        methods = [s.method] + ([m for m in METHODS if m != s.method] if overlay else [])
        out = []
        for method in methods:
            fit = s.fit_for(method)
            if fit is not None:
                out.append((method, s.profile(method), fit))
        return out

    def layout(self) -> ProfileLayout:
        """What the plot shows now (the state's phenotype, method and overlay)."""
        s = self.state
        curves = self._curves(s.overlay) if s.dataset is not None else []
        return profile_layout(curves, s.method, "Load data to see the profile log-likelihood.")

    def _new_figure(self) -> ProfileFigure:
        if self.look.presentation:
            fig = ProfileFigure(fontscale=PRESENT_FONTSCALE, thicker=PRESENT_THICKER, larger=PRESENT_LARGER, toolbar="right")
        else:
            fig = ProfileFigure()
        fig.show(self.layout())
        return fig

    def _redraw(self, *_events) -> None:
        figure, layout = self._figure, self.layout()
        in_document(figure.figure, lambda: figure.show(layout))

    def _restyle(self, *_events) -> None:
        # fonts and widths are set when the figure is made: a new figure for the new look
        self._figure = self._new_figure()
        self._pane.object = self._figure.figure

    def _summary(self, dataset, phenotype, method, use_covariates, overlay, presentation=False) -> str:
        fit = self.state.fit if dataset is not None else None
        if fit is None:
            return ""
        label = METHODS[fit.method]
        where = "on the boundary" if fit.boundary else "interior"
        lines = [
            f"**{escape(fit.phenotype)} · {label}**",
            f"**ĥ² = {fit.h2:.4f}** ({where})  \nSE {se_text(fit)}",
            f"**95% interval:** [{fit.h2_ci_low:.3f}, {fit.h2_ci_high:.3f}]"
            + ("" if presentation else f": the h² whose log-likelihood is within {CI_DROP:.2f} of the maximum "
               "(blue band; the grey dashed line is max − 1.92)."),
            f"**L(ĥ²)** = {fit.loglik:.3f} (red dot)  \n**L(0)** = {fit.loglik_h2_zero:.3f} (black dot at h² = 0)",
            f"**Test of h² = 0:** LRT = 2 (L(ĥ²) − L(0)) = {fit.lrt_h2_zero:.2f}, p = {fit.p_h2_zero:.3g}"
            + ("" if presentation else " (50:50 mixture of χ²₀ and χ²₁, because h² = 0 is on the boundary)."),
        ]
        if not presentation:
            lines.append(
                f"<small>n = {fit.n}, {fit.p} fixed effect(s); {fit.n_evals} evaluations; "
                f"{escape(fit.message)}.</small>"
            )
        if self.state.overlay and not presentation:
            other = [m for m in METHODS if m != fit.method][0]
            o = self.state.fit_for(other)
            if o is not None:
                lines.append(
                    f"<small>Dashed: {METHODS[other]}, ĥ² = {o.h2:.4f}. REML allows for the p fixed effects "
                    "(it divides the residual sum of squares by n − p and adds the term log|X*'WX*|); ML "
                    "does not, so its h² is usually a little smaller.</small>"
                )
        return "\n\n".join(lines)
