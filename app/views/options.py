"""The sidebar's analysis options: kinship scale, phenotype transform, the genotypes' kinship, and reset."""

from __future__ import annotations

import panel as pn
import param

from ..scan_state import ScanState
from ..state import ExplorerState
from ..transforms import KINSHIP_SCALES, TRANSFORMS
from .style import escape, look, titled

__all__ = ["AnalysisOptions"]


class AnalysisOptions(pn.viewable.Viewer):
    """Kinship scale and transform selectors, a note when many traits sit at h² = 1, and two buttons."""

    state = param.ClassSelector(class_=ExplorerState, doc="The session's state.")
    scan_state = param.ClassSelector(class_=ScanState, default=None, allow_None=True,
                                     doc="The session's scan state (for the genotypes' kinship).")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        s = self.state
        self._scale = pn.widgets.Select.from_param(
            s.param.kinship_scale, options={label: key for key, label in KINSHIP_SCALES.items()},
            name="Kinship scale", sizing_mode="stretch_width", css_classes=["kinship-scale"],
        )
        self._transform = pn.widgets.Select.from_param(
            s.param.transform, options={label: key for key, label in TRANSFORMS.items()},
            name="Phenotype transform", sizing_mode="stretch_width", css_classes=["phenotype-transform"],
        )
        self._note = pn.pane.Markdown(
            pn.bind(self._note_text, s.param.dataset, s.param.method, s.param.use_covariates,
                    s.param.kinship_scale, s.param.transform),
            margin=(0, 10), css_classes=["boundary-note"],
        )
        self._reset = pn.widgets.Button(**titled(pn.widgets.Button, "Reset view"),
                                        **look(pn.widgets.Button, "default", "outline"), sizing_mode="stretch_width")
        self._reset.on_click(lambda _e: s.reset_view())
        parts = [self._scale, self._transform, self._note]
        if self.scan_state is not None:
            self._kinship = pn.widgets.Button(
                **titled(pn.widgets.Button, "Fit with the genotypes' kinship"),
                **look(pn.widgets.Button, "default", "outline"), sizing_mode="stretch_width",
                css_classes=["use-genotype-kinship"],
            )
            self._kinship.on_click(self._use_genotype_kinship)
            parts.append(self._kinship)
        parts.append(self._reset)
        self._layout = pn.Column(*parts, sizing_mode="stretch_width", css_classes=["analysis-options"])

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    async def _use_genotype_kinship(self, _event=None) -> None:
        await self.scan_state.ause_genotype_kinship()

    def _note_text(self, *_deps) -> str:
        text = self.state.boundary_note() if self.state.dataset is not None else ""
        return f"<small>⚠ {escape(text)}</small>" if text else ""
