"""The algorithm in four steps: decompose K, rotate, weight, read off the likelihood."""

from __future__ import annotations

import numpy as np
import panel as pn
import param

from ..state import METHODS
from .base import StateView
from .look import live_plot
from .plots import (
    cluster_order,
    contribution_plot,
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

Step through the individuals: each one's value y_j is shared out over *all* the rotated
values, y\\*ᵢ = Σ_j U_ji y_j.
"""

_STEP3 = """
#### 3 · For one h², weighted least squares

Drag h². Each rotated value gets the weight

**wᵢ = 1 / (h² dᵢ + 1 − h²)**

(the plot: each eigenvalue dᵢ of K against its weight; large dᵢ, little weight)

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


class WalkthroughView(StateView):
    """Kinship heat map, spectrum, rotation, and the weights and fit at a dragged h2."""

    individual = param.Integer(default=1, bounds=(1, None), doc="The individual whose rotation is shown (1-based).")
    clustered = param.Boolean(default=False, doc="Order the kinship heat map by clustering.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._orders: dict[int, np.ndarray] = {}
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
        self._cluster_box = pn.widgets.Checkbox.from_param(
            self.param.clustered, name="Order by clustering (related individuals together)",
            css_classes=["kinship-cluster"],
        )
        kinship = self._dynamic(self._kinship, dict(dataset=s.param.dataset, clustered=self.param.clustered), 320,
                                css_classes=["kinship-map"])
        self._notes = [
            pn.pane.Markdown(pn.bind(self._spectrum_note, **base), margin=(0, 10), css_classes=["secondary-note"]),
            pn.pane.Markdown(pn.bind(self._rotation_note, **base), margin=(0, 10), css_classes=["secondary-note"]),
        ]
        self.look.param.watch(self._apply_look, "presentation")
        self._apply_look()
        spectrum = pn.Column(
            self._dynamic(self._spectrum, base, 300),
            self._notes[0],
            min_width=280, styles={"flex": "1 1 300px"},
        )
        self._individual = pn.widgets.Player.from_param(
            self.param.individual, name="Individual", start=1, end=max(self._n_rotated(), 2), interval=1500,
            loop_policy="once", show_loop_controls=False, value_align="start", width=300,
            visible_buttons=["first", "previous", "next", "last"], css_classes=["rotation-player"],
        )
        s.param.watch(self._sync_individual, ["dataset", "phenotype", "use_covariates"])
        person = dict(base, individual=self.param.individual)
        rotation = pn.Column(
            pn.FlexBox(self._dynamic(self._before, person, 300), self._dynamic(self._after, base, 300),
                       flex_wrap="wrap", sizing_mode="stretch_width"),
            self._notes[1],
            pn.FlexBox(
                pn.Column(self._individual, pn.pane.Markdown(pn.bind(self._individual_text, **person),
                                                             css_classes=["rotation-individual"]),
                          width=_TEXT_WIDTH + 20),
                self._dynamic(self._contribution, person, 300),
                flex_wrap="wrap", sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width", styles={"flex": "3 1 600px"},
        )
        weights = self._dynamic(self._weights, probe, 300)
        residuals = self._dynamic(self._residuals, probe, 300)
        curve = self._dynamic(self._curve, probe, 300)
        numbers = pn.pane.Markdown(pn.bind(self._numbers, **probe), css_classes=["probe-numbers"],
                                   sizing_mode="stretch_width")

        def text(md: str) -> pn.pane.Markdown:
            return pn.pane.Markdown(md, width=_TEXT_WIDTH, styles={"font-size": "0.95em", "flex": "0 0 auto"})

        def row(*objects) -> pn.FlexBox:
            return pn.FlexBox(*objects, flex_wrap="wrap", sizing_mode="stretch_width")

        self._layout = pn.Column(
            row(text(_STEP1), pn.Column(self._cluster_box, kinship, min_width=300, styles={"flex": "1 1 320px"}),
                spectrum),
            row(text(_STEP2), rotation),
            row(pn.Column(text(_STEP3), self._slider, numbers, width=_TEXT_WIDTH + 20), weights, residuals),
            row(text(_STEP4), curve),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _dynamic(self, method, deps: dict, height: int, **params) -> pn.pane.HoloViews:
        """A plot that redraws in place when ``deps`` change, rebuilt for presentation mode."""
        params.setdefault("styles", {"flex": "1 1 300px"})
        return live_plot(method, deps, self.look, min_height=height, min_width=260, **params)

    def _apply_look(self, *_events) -> None:
        for note in self._notes:  # secondary notes: the lecturer says them
            note.visible = not self.look.presentation

    def _n_rotated(self) -> int:
        rotation = self.state.rotation()
        return rotation.rot.n if rotation is not None else 1

    def _sync_individual(self, *_events) -> None:
        n = self._n_rotated()
        self._individual.end = max(n, 2)
        if self.individual > n:
            self.individual = 1

    def _kinship(self, dataset, clustered):
        if dataset is None:
            return empty_plot("No data loaded.")
        K = np.asarray(dataset.kinship, dtype=float)
        order = None
        if clustered:
            key = id(dataset)
            if key not in self._orders:
                self._orders = {key: cluster_order(K)}
            order = self._orders[key]
        return kinship_image(K, order)

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

    def _before(self, dataset, phenotype, use_covariates, individual):
        return rotation_plots(self.state.rotation(), individual - 1)[0]

    def _contribution(self, dataset, phenotype, use_covariates, individual):
        return contribution_plot(self.state.rotation(), individual - 1)

    def _individual_text(self, dataset, phenotype, use_covariates, individual) -> str:
        rotation = self.state.rotation()
        if rotation is None or not (1 <= individual <= rotation.rot.n):
            return ""
        j = individual - 1
        share = rotation.eig.vectors[j, :] * rotation.y[j]
        top = np.argsort(-np.abs(share))[:3]
        biggest = ", ".join(f"y*<sub>{i + 1}</sub> ({share[i]:+.3g})" for i in top)
        return (
            f"**Individual {individual} of {rotation.rot.n}: {escape(rotation.ids[j])}**, "
            f"y = {rotation.y[j]:.4g}. Rotation shares this value over all {rotation.rot.n} rotated values "
            f"(its row of U times y<sub>j</sub>); the largest shares go to {biggest}. "
            "Summed over all individuals, the shares give y* (faint points)."
        )

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
