"""Results of the chosen phenotype, all phenotypes at once, and CSV downloads."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import panel as pn
from bokeh.models.widgets.tables import NumberFormatter, ScientificFormatter

from lmmcore.io import neutralise_formulas

from ..state import METHODS
from .base import StateView
from .look import live_plot
from .plots import empty_plot, heritability_errorbars
from .style import escape, look

__all__ = ["ResultsView", "AllPhenotypesView", "csv_bytes", "table_formatters", "ROW_HEIGHT", "MAX_ROWS"]

#: Rows of the all-phenotypes table (pixels) and how many show on one page: the table shows
#: whole pages of rows (it grows to fit them, with pages beyond), so no row is cut in half.
ROW_HEIGHT = 30
MAX_ROWS = 10

_ALL_COLUMNS = [
    "phenotype", "n", "h2", "h2_se", "h2_ci_low", "h2_ci_high", "sigma2_g", "sigma2_e",
    "lrt_h2_zero", "p_h2_zero", "boundary",
]


#: Short column headers of the all-phenotypes table (the CSV keeps the engine's names).
_TITLES = {
    "h2_se": "SE", "h2_ci_low": "CI low", "h2_ci_high": "CI high", "loglik": "log-lik",
    "lrt_h2_zero": "LRT h2=0", "p_h2_zero": "p", "boundary": "boundary",
}


def csv_bytes(df: pd.DataFrame) -> io.BytesIO:
    """CSV of ``df`` for download, with spreadsheet formulas neutralised."""
    buffer = io.BytesIO(neutralise_formulas(df).to_csv(index=False).encode("utf-8"))
    buffer.seek(0)
    return buffer


def _safe(name: str) -> str:
    """A file-name-safe version of a phenotype name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name))[:60] or "phenotype"


def table_formatters(df: pd.DataFrame) -> dict:
    """Number formats of the all-phenotypes table: one format per column, whatever the values.

    h2 and its interval and SE with 4 decimals; log-likelihoods and LRT with 3;
    the p-value always in scientific notation; a variance column in scientific
    notation for every row as soon as one of its values would need it (no
    2.2573e+5 beside 69612.891).
    """
    always_sci = ScientificFormatter(precision=3, power_limit_high=0, power_limit_low=0, nan_format="—")
    out = {c: NumberFormatter(format="0.0000", nan_format="—") for c in ("h2", "h2_se", "h2_ci_low", "h2_ci_high")}
    out.update({c: NumberFormatter(format="0.000", nan_format="—") for c in ("loglik", "lrt_h2_zero")})
    out["p_h2_zero"] = always_sci
    for c in ("sigma2_g", "sigma2_e"):
        values = np.abs(df[c].to_numpy(dtype=float)) if c in df else np.zeros(0)
        values = values[np.isfinite(values) & (values > 0)]
        wide = values.size and (values.max() >= 1e4 or values.min() < 1e-3)
        out[c] = always_sci if wide else NumberFormatter(format="0.0000", nan_format="—")
    return out


class ResultsView(StateView):
    """h2, SE, CI, variance components, coefficients, log-likelihood and LRT; downloads."""


    def __init__(self, **params) -> None:
        super().__init__(**params)
        s = self.state
        deps = dict(dataset=s.param.dataset, phenotype=s.param.phenotype, method=s.param.method,
                    use_covariates=s.param.use_covariates)
        self._table = pn.pane.HTML(
            pn.bind(self._html, **deps), css_classes=["lmm-results"], sizing_mode="stretch_width"
        )
        self._download_fit = pn.widgets.FileDownload(
            callback=self._fit_csv, filename="lmm_result.csv", label="Download this result (CSV)",
            **look(pn.widgets.FileDownload, "primary", "outline"), width=300,
        )
        self._download_profile = pn.widgets.FileDownload(
            callback=self._profile_csv, filename="lmm_profile.csv", label="Download the profile curve (CSV)",
            **look(pn.widgets.FileDownload, "default", "outline"), width=300,
        )
        self._download_trace = pn.widgets.FileDownload(
            callback=self._trace_csv, filename="lmm_brent_trace.csv", label="Download Brent's evaluations (CSV)",
            **look(pn.widgets.FileDownload, "default", "outline"), width=300,
        )
        s.param.watch(self._rename, ["phenotype", "method"])
        self._rename()
        self._layout = pn.Row(
            pn.Column(self._table, sizing_mode="stretch_width", max_width=820),
            pn.Column(
                pn.pane.Markdown("#### Export", margin=(0, 10)),
                self._download_fit,
                self._download_profile,
                self._download_trace,
                pn.pane.Markdown(
                    "<small>Plots: use the save tool (disk icon) in each plot's toolbar to get a PNG. "
                    "Text cells that a spreadsheet would run as a formula are prefixed with a quote.</small>",
                    width=300,
                ),
                width=330,
            ),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _rename(self, *_events) -> None:
        stem = f"{_safe(self.state.phenotype or 'none')}_{self.state.method}"
        self._download_fit.filename = f"lmm_result_{stem}.csv"
        self._download_profile.filename = f"lmm_profile_{stem}.csv"
        self._download_trace.filename = f"lmm_brent_trace_{stem}.csv"

    def _html(self, dataset, phenotype, method, use_covariates) -> str:
        rows = self.state.fit_rows() if dataset is not None else []
        if not rows:
            return "<p>No result yet: load data.</p>"
        body = "".join(
            f"<tr><th>{escape(q)}</th><td class='num'>{escape(v)}</td><td class='note'>{escape(n)}</td></tr>"
            for q, v, n in rows
        )
        style = (
            "<style>.lmm-table{border-collapse:collapse;font-size:1em;width:100%}"
            ".lmm-table th,.lmm-table td{padding:5px 10px;border-bottom:1px solid #e5e7eb;text-align:left;"
            "vertical-align:top}.lmm-table th{font-weight:600;white-space:nowrap;width:170px}"
            ".lmm-table td.num{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:nowrap}"
            ".lmm-table td.note{color:#6b7280;font-size:0.9em}</style>"
        )
        fit = self.state.fit
        head = f"<h4 style='margin:4px 0 8px'>{escape(fit.phenotype)} by {METHODS[fit.method]}</h4>"
        return f"{style}{head}<table class='lmm-table'>{body}</table>"

    def _fit_csv(self) -> io.BytesIO:
        fit = self.state.fit
        return csv_bytes(pd.DataFrame([fit.to_row()]) if fit is not None else pd.DataFrame())

    def _profile_csv(self) -> io.BytesIO:
        df = self.state.profile().copy()
        df.insert(0, "method", self.state.method)
        df.insert(0, "phenotype", self.state.phenotype)
        return csv_bytes(df)

    def _trace_csv(self) -> io.BytesIO:
        fit = self.state.fit
        if fit is None:
            return csv_bytes(pd.DataFrame())
        df = pd.DataFrame(fit.trace.to_records())
        df.insert(0, "evaluation", range(1, len(df) + 1))
        df.insert(0, "phenotype", fit.phenotype)
        return csv_bytes(df)


class AllPhenotypesView(StateView):
    """Every phenotype's h2 with its interval: a sortable table and an error-bar plot in the table's order."""


    def __init__(self, **params) -> None:
        super().__init__(**params)
        s = self.state
        deps = dict(dataset=s.param.dataset, method=s.param.method, use_covariates=s.param.use_covariates)
        self._table = pn.widgets.Tabulator(
            self._frame(s.dataset, s.method, s.use_covariates),
            show_index=False,
            disabled=True,
            selectable=1,
            formatters=table_formatters(pd.DataFrame()),
            titles=_TITLES,
            sizing_mode="stretch_width",
            layout="fit_data_fill",
            row_height=ROW_HEIGHT,
            stylesheets=[
                ".tabulator { font-size: var(--font-size) !important; }"
                ".tabulator-cell, .tabulator-col-title { font-size: inherit !important; }"
                ".tabulator-row.tabulator-selected, .tabulator-row.tabulator-selected .tabulator-cell "
                "{ background-color: #fde68a !important; color: #111827 !important; font-weight: 600; }"
            ],
            css_classes=["all-phenotypes"],
        )
        self._table.on_click(self._pick)
        s.param.watch(self._refresh_table, ["dataset", "method", "use_covariates"])
        s.param.watch(self._select_current, "phenotype")
        self._refresh_table()
        self._plot = live_plot(
            self._errorbars, dict(sorters=self._table.param.sorters, phenotype=s.param.phenotype, **deps), self.look,
            min_height=260, css_classes=["all-phenotypes-plot"],
        )
        self._se_note = pn.pane.Markdown(pn.bind(self._se_caption, **deps), css_classes=["all-se-note"],
                                         sizing_mode="stretch_width", margin=(0, 10))
        self._download = pn.widgets.FileDownload(
            callback=self._all_csv, filename="lmm_results_all.csv", label="Download all results (CSV)",
            **look(pn.widgets.FileDownload, "primary", "outline"), width=300,
        )
        s.param.watch(self._rename, "method")
        self._rename()
        self._layout = pn.Column(
            pn.Row(
                pn.pane.Markdown(
                    "Click a column header to sort; click a row to show that phenotype in the other tabs.",
                    sizing_mode="stretch_width",
                ),
                self._download,
                sizing_mode="stretch_width",
            ),
            self._table,
            self._se_note,
            self._plot,
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _rename(self, *_events) -> None:
        self._download.filename = f"lmm_results_all_{self.state.method}.csv"

    def _frame(self, dataset, method, use_covariates) -> pd.DataFrame:
        df = self.state.results_frame() if dataset is not None else pd.DataFrame()
        if df.empty:
            return pd.DataFrame(columns=_ALL_COLUMNS)
        return df[_ALL_COLUMNS].reset_index(drop=True)

    def _se_caption(self, dataset, method, use_covariates) -> str:
        """Why an SE shows "—": the engine's note for each phenotype without one."""
        fits = self.state.fits() if dataset is not None else {}
        notes: dict[str, list[str]] = {}
        for name, fit in fits.items():
            if not np.isfinite(fit.h2_se):
                notes.setdefault(fit.h2_se_note or "not defined", []).append(name)
        if not notes:
            return ""
        parts = [f"{', '.join(escape(n) for n in names)}: {escape(note)}" for note, names in notes.items()]
        return "<small>**SE —** " + "; ".join(parts) + ".</small>"

    def _refresh_table(self, *_events) -> None:
        s = self.state
        df = self._frame(s.dataset, s.method, s.use_covariates)
        self._table.param.update(
            value=df,
            formatters=table_formatters(df),
            # no fixed height (it would cut a row in half): all rows, or whole pages of MAX_ROWS
            pagination="local" if len(df) > MAX_ROWS else None,
            page_size=MAX_ROWS,
        )
        self._select_current()

    def _select_current(self, *_events) -> None:
        """Highlight the phenotype shown in the other tabs."""
        value = self._table.value
        if value is None or value.empty:
            return
        hits = np.flatnonzero(value["phenotype"].astype(str).to_numpy() == str(self.state.phenotype))
        selection = [int(hits[0])] if hits.size else []
        if self._table.selection != selection:
            self._table.selection = selection

    def shown_order(self) -> list[str]:
        """The phenotypes in the order the table shows them (after the user's sort)."""
        view = self._table.current_view
        return [str(p) for p in view["phenotype"]] if view is not None and len(view) else []

    def _errorbars(self, sorters, phenotype, dataset, method, use_covariates):
        """h2 and intervals in the order of the table (top row at the top)."""
        df = self.state.results_frame() if dataset is not None else pd.DataFrame()
        if df.empty:
            return empty_plot("No data loaded.")
        order = self.shown_order()
        if order:
            df = df.set_index(df["phenotype"].astype(str)).loc[[p for p in order if p in set(df["phenotype"].astype(str))]]
            df = df.reset_index(drop=True)
        return heritability_errorbars(df, phenotype)

    def _pick(self, event) -> None:
        value = self._table.current_view
        if value is None or event.row is None or event.row >= len(self._table.value):
            return
        name = str(self._table.value.iloc[event.row]["phenotype"])
        if name in self.state.phenotypes:
            self.state.phenotype = name

    def _all_csv(self) -> io.BytesIO:
        return csv_bytes(self.state.results_frame())
