"""ML and REML side by side for every phenotype (in the All phenotypes tab)."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter, ScientificFormatter

from ..state import ExplorerState

__all__ = ["MethodsSideBySide"]

_TITLES = {
    "h2_reml": "h² REML", "h2_ml": "h² ML", "h2_se_reml": "SE REML", "h2_se_ml": "SE ML",
    "h2_ci_low_reml": "CI low REML", "h2_ci_low_ml": "CI low ML", "h2_ci_high_reml": "CI high REML",
    "h2_ci_high_ml": "CI high ML", "loglik_reml": "log-lik REML", "loglik_ml": "log-lik ML",
    "p_h2_zero_reml": "p REML", "p_h2_zero_ml": "p ML", "boundary_reml": "boundary REML", "boundary_ml": "boundary ML",
}


class MethodsSideBySide(pn.viewable.Viewer):
    """One row per phenotype with the REML and the ML estimate next to each other."""

    state = param.ClassSelector(class_=ExplorerState, doc="The session's state.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        s = self.state
        # collapsed until asked for: the ML fits of every phenotype are computed only when the card opens
        self._layout = pn.Card(title="ML and REML side by side", collapsed=True, sizing_mode="stretch_width",
                               css_classes=["methods-card"])
        deps = dict(dataset=s.param.dataset, use_covariates=s.param.use_covariates, scale=s.param.kinship_scale,
                    transform=s.param.transform, collapsed=self._layout.param.collapsed)
        formats = {f"{c}_{m}": NumberFormatter(format="0.0000")
                   for c in ("h2", "h2_se", "h2_ci_low", "h2_ci_high") for m in ("reml", "ml")}
        formats.update({f"loglik_{m}": NumberFormatter(format="0.000") for m in ("reml", "ml")})
        formats.update({f"p_h2_zero_{m}": ScientificFormatter(precision=3) for m in ("reml", "ml")})
        self._table = pn.widgets.Tabulator(
            pn.bind(self._frame, **deps), show_index=False, disabled=True, selectable=False, formatters=formats,
            titles=_TITLES, layout="fit_data_fill", sizing_mode="stretch_width", max_height=330,
            stylesheets=[".tabulator-cell, .tabulator-col-title { font-size: 12.5px !important; }"],
            css_classes=["methods-side-by-side"],
        )
        self._layout.objects = [
            pn.pane.Markdown("<small>REML corrects the variance for the fixed effects estimated; ML does not, so "
                             "its h² is usually a little lower, most visibly with few individuals or many "
                             "covariates.</small>", margin=(0, 10)),
            self._table,
        ]

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _frame(self, collapsed: bool = False, **_deps) -> pd.DataFrame:
        if collapsed or self.state.dataset is None:
            return pd.DataFrame()
        return self.state.results_side_by_side()
