"""The teaching view of a cross: one individual's genotype probabilities along a chromosome (R/qtl2's ``plot_genoprob``).

Shown when the data in use came from an uploaded cross
(:attr:`app.state.ExplorerState.cross`). The numbers come from
:func:`app.cross_data.genoprob_profile` (the HMM, :func:`lmmcore.genoprob`);
with a step of 1 cM the class sees what the HMM fills in between the typed
markers, whose observed genotypes are marked above the curves.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from lmmcore import LMMInputError

from ..cross_data import GenoprobProfile, genoprob_profile
from ..state import ExplorerState
from .look import Look, styled
from .style import PLOT_OPTS, escape, titled

__all__ = ["GenoprobView", "genoprob_plot", "STEPS"]

#: Pseudomarker spacings offered (cM): markers only, or every 1 cM.
STEPS = {"markers only": 0.0, "every 1 cM": 1.0}

#: One colour per genotype, in R/qtl2's order (up to 8; more cycle).
_COLOURS = ("#1f5fbf", "#c2410c", "#059669", "#7c3aed", "#d97706", "#0891b2", "#be185d", "#4b5563")

_NOTE = (
    "<small>The hidden Markov model (R/qtl2's <code>calc_genoprob</code>, error probability 1e-4, Haldane's map "
    "function) gives each genotype's probability given all of this individual's markers on the chromosome. At a "
    "typed marker (◆, with the genotype read from the file) it is nearly certain; between markers, and where a "
    "marker is missing, it blends the neighbours' genotypes by their genetic distance. Choose “every 1 cM” to see "
    "the pseudomarkers in between.</small>"
)


def genoprob_plot(profile: GenoprobProfile | None, stacked: bool = True) -> hv.Overlay:
    """Probabilities (stacked areas or one line per genotype) against cM, with the observed genotypes on top."""
    if profile is None:
        return hv.Overlay([hv.Curve([], "position", "probability")])  # hidden: the data did not come from a cross
    x = profile.probs["position"].to_numpy(float)
    layers = []
    colours = {g: _COLOURS[k % len(_COLOURS)] for k, g in enumerate(profile.genotypes)}
    if stacked:
        base = np.zeros_like(x)
        for g in profile.genotypes:
            top = base + profile.probs[g].to_numpy(float)
            layers.append(hv.Area((x, base, top), "position", ["probability", "base"], label=g)
                          .opts(color=colours[g], alpha=0.8, line_width=0))
            base = top
    else:
        for g in profile.genotypes:
            layers.append(hv.Curve((x, profile.probs[g].to_numpy(float)), "position", "probability", label=g)
                          .opts(color=colours[g], line_width=2))
    obs = profile.observed
    if len(obs):
        y = np.full(len(obs), 1.06)
        layers.append(hv.Scatter((obs["position"].to_numpy(float), y, obs["genotype"].tolist(), obs["marker"].tolist()),
                                 "position", ["probability", "observed", "marker"], label="observed")
                      .opts(marker="diamond", size=10, color="#111827", tools=["hover"]))
        layers.append(hv.Labels((obs["position"].to_numpy(float), y + 0.07, obs["genotype"].tolist()),
                                ["position", "probability"], "observed")
                      .opts(text_font_size="8pt", text_color="#111827"))
    step = "markers only" if profile.step == 0 else f"pseudomarkers every {profile.step:g} cM"
    title = f"Individual {profile.individual}, chromosome {profile.chromosome} ({step})"
    return hv.Overlay(layers).opts(
        title=title, xlabel="position (cM)", ylabel="genotype probability", ylim=(0, 1.2),
        legend_position="right", **{k: v for k, v in PLOT_OPTS.items() if k != "tools"},
    )


class GenoprobView(pn.viewable.Viewer):
    """Pick an individual, a chromosome and a step; see the HMM's genotype probabilities (visible with a cross)."""

    state = param.ClassSelector(class_=ExplorerState, doc="The session's state.")
    look = param.ClassSelector(class_=Look, doc="Normal or presentation mode.")
    individual = param.Selector(default=None, objects=[], allow_None=True, doc="The individual shown.")
    chromosome = param.Selector(default=None, objects=[], allow_None=True, doc="The chromosome shown.")
    step = param.Selector(default=0.0, objects=list(STEPS.values()), doc="Pseudomarkers every step cM (0: none).")
    stacked = param.Boolean(default=True, doc="Stacked areas (else one line per genotype).")

    def __init__(self, **params) -> None:
        params.setdefault("look", Look())
        super().__init__(**params)
        self._cache: dict[tuple, GenoprobProfile] = {}
        self._individual = pn.widgets.Select.from_param(self.param.individual, **titled(pn.widgets.Select, "Individual"),
                                                        css_classes=["genoprob-individual"], width=160)
        self._chromosome = pn.widgets.Select.from_param(self.param.chromosome,
                                                        **titled(pn.widgets.Select, "Chromosome"),
                                                        css_classes=["genoprob-chromosome"], width=120)
        self._step = pn.widgets.RadioButtonGroup.from_param(self.param.step, options=STEPS, name="Step",
                                                            css_classes=["genoprob-step"])
        self._stacked = pn.widgets.Checkbox.from_param(self.param.stacked, name="Stacked (else one line each)")
        self._plot = pn.pane.HoloViews(
            pn.bind(self._draw, individual=self.param.individual, chromosome=self.param.chromosome,
                    step=self.param.step, stacked=self.param.stacked, presentation=self.look.param.presentation),
            sizing_mode="stretch_width", min_height=320, css_classes=["genoprob-plot"],
        )
        self._layout = pn.Card(
            pn.Row(self._individual, self._chromosome, pn.Column(self._step, self._stacked)),
            self._plot,
            pn.pane.HTML(_NOTE, margin=(0, 10)),
            title="Genotype probabilities of one individual (the cross's HMM)",
            sizing_mode="stretch_width", css_classes=["genoprob-card"],
        )
        self.state.param.watch(self._cross_changed, "cross")
        self._cross_changed()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _cross_changed(self, *_events) -> None:
        data = self.state.cross
        self._cache.clear()
        self._layout.visible = data is not None
        if data is None:
            return
        cross = data.cross
        ids, chroms = list(cross.ids), list(cross.chromosomes)
        self.param.individual.objects = ids
        self.param.chromosome.objects = chroms
        self.param.update(individual=ids[0] if ids else None, chromosome=chroms[0] if chroms else None)

    def profile(self) -> GenoprobProfile | None:
        """The shown individual's probabilities on the shown chromosome (memoised per cross, chromosome, step)."""
        data = self.state.cross
        if data is None or self.individual is None or self.chromosome is None:
            return None
        key = (self.individual, self.chromosome, float(self.step))
        if key not in self._cache:
            try:
                self._cache[key] = genoprob_profile(data.cross, self.individual, self.chromosome, float(self.step))
            except LMMInputError as exc:
                self.state.notify("error", escape(str(exc)))
                return None
        return self._cache[key]

    def _draw(self, individual=None, chromosome=None, step=0.0, stacked=True, presentation=False):
        return styled(genoprob_plot(self.profile(), bool(stacked)), bool(presentation))
