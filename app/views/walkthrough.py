"""The algorithm in four steps: decompose K, rotate, weight, read off the likelihood."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from ..state import METHODS, ExplorerState
from .plots import (
    empty_plot,
    kinship_image,
    off_scale,
    probe_curve_plot,
    residual_plot,
    rotation_plots,
    spectrum_plot,
    weights_plot,
)
from .style import escape

__all__ = ["WalkthroughView"]

_TEXT_WIDTH = 300
#: Eigenvalues below this fraction of the largest are drawn as zero (rounding).
_ZERO_FRACTION = 1e-8

_STEP1 = """
#### 1 · Decompose the kinship once

The model is **y = Xb + e** with
var(e) = σ² (h² K + (1 − h²) I).

Write **K = U D Uᵀ** (eigenvectors U, eigenvalues dᵢ ≥ 0). Then every covariance
of the model shares the same eigenvectors:

h² K + (1 − h²) I = U diag(h² dᵢ + 1 − h²) Uᵀ.

This O(n³) step is done **once** per kinship and reused for every h², phenotype
and method.
"""

_STEP2 = """
#### 2 · Rotate the data

Multiply by Uᵀ: **y\\* = Uᵀy**, **X\\* = UᵀX**. The rotated values are
*independent*, each with its own variance

var(y\\*ᵢ) = σ² (h² dᵢ + 1 − h²).

When h² is large, the y\\*ᵢ along eigenvectors with large dᵢ (to the right) spread more.
"""

_STEP3 = """
#### 3 · For one h², weighted least squares

Drag h². Each rotated value gets the weight

**wᵢ = 1 / (h² dᵢ + 1 − h²)**

and b(h²) = (X\\*ᵀWX\\*)⁻¹ X\\*ᵀW y\\*;
σ²(h²) = Σ wᵢ (y\\*ᵢ − x\\*ᵢ b)² / (n − p) for REML (n for ML).

At h² = 0 all weights are 1 (ordinary least squares).
"""

_STEP4 = """
#### 4 · Read off the likelihood

Plugging b(h²) and σ²(h²) in leaves a function of h² alone, the profile

L(h²) = −½ [ (n−p) log 2πσ² + Σ log(h² dᵢ + 1 − h²) + log|X\\*ᵀWX\\*| − log|XᵀX| + (n−p) ]

(REML; ML uses n and drops the two log-determinants of X). Every point costs
O(np²): the search of the other tabs evaluates it a few dozen times.
"""


class WalkthroughView(pn.viewable.Viewer):
    """Kinship heat map, spectrum, rotation, and the weights and fit at a dragged h2."""

    state = param.ClassSelector(class_=ExplorerState, doc="The session's state.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        s = self.state
        base = dict(
            dataset=s.param.dataset,
            phenotype=s.param.phenotype,
            use_covariates=s.param.use_covariates,
        )
        probe = dict(base, h2=s.param.h2_probe, method=s.param.method)
        self._slider = pn.widgets.FloatSlider.from_param(
            s.param.h2_probe, name="h2 to try (drag)", step=0.01, sizing_mode="stretch_width", css_classes=["h2-probe"]
        )
        kinship = pn.panel(
            pn.bind(self._kinship, dataset=s.param.dataset), loading_indicator=True, sizing_mode="stretch_width"
        )
        spectrum = pn.Column(
            self._dynamic(self._spectrum, base, 300),
            pn.pane.Markdown(pn.bind(self._spectrum_note, **base), margin=(0, 10)),
            sizing_mode="stretch_width",
        )
        rotation = pn.Column(
            pn.Row(self._dynamic(self._before, base, 300), self._dynamic(self._after, base, 300),
                   sizing_mode="stretch_width"),
            pn.pane.Markdown(pn.bind(self._rotation_note, **base), margin=(0, 10)),
            sizing_mode="stretch_width",
        )
        weights = self._dynamic(self._weights, probe, 300)
        residuals = self._dynamic(self._residuals, probe, 300)
        curve = self._dynamic(self._curve, probe, 300)
        numbers = pn.pane.Markdown(pn.bind(self._numbers, **probe), css_classes=["probe-numbers"],
                                   sizing_mode="stretch_width")

        def text(md: str) -> pn.pane.Markdown:
            return pn.pane.Markdown(md, width=_TEXT_WIDTH, styles={"font-size": "13.5px"})

        self._layout = pn.Column(
            pn.Row(text(_STEP1), kinship, spectrum, sizing_mode="stretch_width"),
            pn.Row(text(_STEP2), rotation, sizing_mode="stretch_width"),
            pn.Row(
                pn.Column(text(_STEP3), self._slider, numbers, width=_TEXT_WIDTH + 20),
                weights,
                residuals,
                sizing_mode="stretch_width",
            ),
            pn.Row(text(_STEP4), curve, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    @staticmethod
    def _dynamic(method, deps: dict, height: int) -> pn.pane.HoloViews:
        """A plot that redraws in place when ``deps`` change (and costs nothing while its tab is hidden)."""
        return pn.pane.HoloViews(
            hv.DynamicMap(pn.bind(method, **deps)), linked_axes=False, sizing_mode="stretch_width", min_height=height
        )

    @staticmethod
    def _pane(obj, height: int) -> pn.pane.HoloViews:
        return pn.pane.HoloViews(obj, linked_axes=False, sizing_mode="stretch_width", min_height=height)

    def _kinship(self, dataset):
        if dataset is None:
            return self._pane(empty_plot("No data loaded."), 320)
        return self._pane(kinship_image(dataset.kinship), 320)

    def _spectrum(self, dataset, phenotype, use_covariates):
        rotation = self.state.rotation()
        if rotation is None:
            return spectrum_plot(None)
        d = rotation.eig.values
        return spectrum_plot(d, _ZERO_FRACTION * float(d.max()))

    def _spectrum_note(self, dataset, phenotype, use_covariates) -> str:
        rotation = self.state.rotation()
        if rotation is None:
            return ""
        d = rotation.eig.values
        tiny = int(np.sum((d > 0) & (d <= _ZERO_FRACTION * float(d.max()))))
        if not (tiny or rotation.eig.n_zero):
            return f"<small>All {d.size} eigenvalues are positive: K is full rank.</small>"
        note = f"<small>{rotation.eig.n_zero} eigenvalue(s) are exactly 0"
        if tiny:
            note += f" and {tiny} below 10⁻⁸ × the largest (rounding)"
        note += "; not shown on the log scale.</small>"
        if rotation.eig.n_zero:
            note += "<br><small>K is singular, so the covariance is singular at h² = 1 exactly: L(1) = −∞.</small>"
        return note

    def _before(self, dataset, phenotype, use_covariates):
        return rotation_plots(self.state.rotation())[0]

    def _after(self, dataset, phenotype, use_covariates):
        return rotation_plots(self.state.rotation())[1]

    def _rotation_note(self, dataset, phenotype, use_covariates) -> str:
        rotation = self.state.rotation()
        if rotation is None:
            return ""
        _, off = off_scale(rotation.rot.y[:, 0])
        if not off:
            return ""
        return (
            f"<small>{off} rotated value(s) lie off the scale: along eigenvectors close to the constant "
            "vector, y* carries the phenotype's mean, which the intercept absorbs.</small>"
        )

    def _weights(self, dataset, phenotype, use_covariates, h2, method):
        return weights_plot(self.state.rotation(), self.state.probe())

    def _residuals(self, dataset, phenotype, use_covariates, h2, method):
        return residual_plot(self.state.rotation(), self.state.probe())

    def _curve(self, dataset, phenotype, use_covariates, h2, method):
        fit = self.state.fit
        curve = self.state.profile() if fit is not None else None
        return probe_curve_plot(curve, fit, self.state.probe(), method)

    def _numbers(self, dataset, phenotype, use_covariates, h2, method) -> str:
        rotation, probe, fit = self.state.rotation(), self.state.probe(), self.state.fit
        if rotation is None or probe is None or fit is None:
            return ""
        if probe.singular:
            return (
                f"At h² = {probe.h2:.2f} the covariance is singular (K has {rotation.eig.n_zero} zero "
                "eigenvalues): some weights are infinite and **L = −∞**."
            )
        coefs = ", ".join(f"{escape(n)} {b:.4g}" for n, b in zip(rotation.coef_names, probe.beta))
        divisor = "n" if method == "ml" else "n − p"
        return (
            f"At **h² = {probe.h2:.2f}**: weights from {np.min(probe.weights):.3g} to {np.max(probe.weights):.3g}; "
            f"b = ({coefs}); σ² = rss / ({divisor}) = {probe.sigma2:.4g}; "
            f"**L({probe.h2:.2f}) = {probe.loglik:.3f}** by {METHODS[method]} "
            f"(maximum {fit.loglik:.3f} at ĥ² = {fit.h2:.4f})."
        )
