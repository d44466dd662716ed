"""Residual diagnostics at the optimum: standardised rotated residuals against fitted values, and a normal QQ plot."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from ..diagnostics import Diagnostics
from ..prepare import METHODS
from ..state import ExplorerState
from .style import SIDE_TOOLBAR, escape

__all__ = ["DiagnosticsView", "residual_scatter", "qq_plot"]

_HOW = (
    "<small>In the eigenbasis of K the errors are independent, e*<sub>i</sub> ~ N(0, σ² (h² d<sub>i</sub> + 1 − h²)). "
    "At the fitted h², σ² and b, each residual y*<sub>i</sub> − x*<sub>i</sub>ᵀb divided by its standard deviation "
    "should look like a standard normal draw: no funnel against the fitted values, points on the line of the QQ "
    "plot. A funnel or a bent QQ line suggests a transform of the phenotype (sidebar).</small>"
)


def residual_scatter(diag: Diagnostics | None) -> hv.Overlay:
    """Standardised residuals against rotated fitted values, with the ±2 band."""
    kd = hv.Dimension("fitted", label="fitted value x*ᵀb (rotated)")
    vd = hv.Dimension("residual", label="standardised residual")
    if diag is None or diag.n == 0:
        return hv.Overlay([hv.Scatter([], kd, vd)]).opts(**SIDE_TOOLBAR, title="no fit")
    pts = hv.Scatter((diag.fitted, diag.residuals), kd, vd).opts(color="#1f5fbf", size=4, alpha=0.7)
    lines = [hv.HLine(v).opts(color="#9ca3af", line_dash="dashed", line_width=1) for v in (-2.0, 2.0)]
    zero = hv.HLine(0.0).opts(color="#6b7280", line_width=1)
    title = f"{diag.phenotype}: residuals vs fitted ({METHODS[diag.method]}, h² = {diag.h2:.3f})"
    return hv.Overlay([pts, zero, *lines]).opts(**SIDE_TOOLBAR, title=title, height=320)


def qq_plot(diag: Diagnostics | None) -> hv.Overlay:
    """Ordered standardised residuals against normal quantiles, with the line y = x."""
    kd = hv.Dimension("theoretical", label="normal quantile")
    vd = hv.Dimension("ordered", label="ordered standardised residual")
    if diag is None or diag.n == 0:
        return hv.Overlay([hv.Scatter([], kd, vd)]).opts(**SIDE_TOOLBAR, title="no fit")
    lim = float(np.nanmax(np.abs(np.concatenate([diag.theoretical, diag.ordered])))) * 1.05
    line = hv.Curve(([-lim, lim], [-lim, lim]), kd, vd).opts(color="#dc2626", line_width=1.5)
    pts = hv.Scatter((diag.theoretical, diag.ordered), kd, vd).opts(color="#1f5fbf", size=4, alpha=0.7)
    p = "" if not np.isfinite(diag.shapiro_p) else f", Shapiro–Wilk p = {diag.shapiro_p:.2g}"
    return hv.Overlay([line, pts]).opts(**SIDE_TOOLBAR, title=f"normal QQ plot{p}", height=320)


class DiagnosticsView(pn.viewable.Viewer):
    """The two residual plots of the current fit, with a line on how to read them."""

    state = param.ClassSelector(class_=ExplorerState, doc="The session's state.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        s = self.state
        deps = dict(dataset=s.param.dataset, phenotype=s.param.phenotype, method=s.param.method,
                    use_covariates=s.param.use_covariates, scale=s.param.kinship_scale, transform=s.param.transform)
        self._scatter = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._scatter_plot, **deps)), linked_axes=False,
                                          sizing_mode="stretch_width", min_height=320, min_width=260)
        self._qq = pn.pane.HoloViews(hv.DynamicMap(pn.bind(self._qq_plot, **deps)), linked_axes=False,
                                     sizing_mode="stretch_width", min_height=320, min_width=260)
        self._note = pn.pane.HTML(pn.bind(self._note_html, **deps), sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.FlexBox(self._scatter, self._qq, sizing_mode="stretch_width"),
            self._note,
            pn.pane.HTML(_HOW, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
            css_classes=["diagnostics"],
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _scatter_plot(self, **_deps):
        return residual_scatter(self.state.diagnostics())

    def _qq_plot(self, **_deps):
        return qq_plot(self.state.diagnostics())

    def _note_html(self, **_deps) -> str:
        d = self.state.diagnostics()
        if d is None:
            return ""
        parts = [f"{d.n} individuals of <b>{escape(d.phenotype)}</b> "
                 f"(transform: {escape(self.state.transform_of(d.phenotype))})"]
        if d.n_singular:
            parts.append(f"{d.n_singular} direction(s) with zero variance at h² = 1 left out")
        outside = int(np.sum(np.abs(d.residuals) > 3))
        parts.append(f"{outside} beyond ±3")
        return "<small>" + "; ".join(parts) + ".</small>"
