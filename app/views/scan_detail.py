"""The genome-scan tab after the scan: zoom, effects along a chromosome, peaks with intervals, heat map, QQ plot.

A thin viewer over :class:`app.scan_detail.ScanDetail`: widgets set its
parameters, the plots draw the frames it serves, and every table and plot's
data downloads as CSV (the plots' save tool gives the PNG). The effects along
a chromosome, ``fit1`` at the selected marker and the scan of every phenotype
run in worker threads (the ``a*`` methods of the state).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from ..scan_detail import PEAKDROP_CHOICES, ScanDetail
from ..scan_frames import INTERVAL_TYPES, effects_frame
from ..scan_jobs import uses_founder_effects
from .look import Look, styled
from .results import _safe, csv_bytes
from .scan_detail_plots import coef_plot, heat_plot, qq_plot
from .style import escape, look, titled

__all__ = ["ScanDetailView", "WHOLE_GENOME"]

#: Height of the coefficient plot in presentation mode (its legend and labels are larger).
PRESENT_COEF_HEIGHT = 380
#: The chromosome select's entry for the whole genome.
WHOLE_GENOME = "whole genome"

_PEAKS_HOW = (
    "<small>Peaks and intervals: <code>lmmcore.find_peaks</code> (R/qtl2's <code>find_peaks</code>): a peak has "
    "LOD above the threshold; with a finite peak drop a chromosome may have several, separated by a fall of at "
    "least that much. LOD drop: positions within the drop of the peak; Bayes credible: the positions that hold "
    "that share of 10<sup>LOD</sup> over the chromosome. Intervals are shaded on the LOD plot. Click a row to "
    "zoom to its chromosome.</small>"
)


def _download(label: str, callback, filename: str, css: str) -> pn.widgets.FileDownload:
    return pn.widgets.FileDownload(
        callback=callback, filename=filename, label=label, **look(pn.widgets.FileDownload, "primary", "outline"),
        sizing_mode="stretch_width", max_width=320, min_width=200, css_classes=[css], margin=(4, 10),
    )


class ScanDetailView(pn.viewable.Viewer):
    """The parts of the scan tab that come after the scan (the scan view places them)."""

    detail = param.ClassSelector(class_=ScanDetail, doc="The session's after-the-scan state.")
    look = param.ClassSelector(class_=Look, doc="Normal or presentation mode.")

    def __init__(self, **params) -> None:
        params.setdefault("look", Look())
        super().__init__(**params)
        d = self.detail
        s = d.scan
        # zoom and effect kind (above the LOD plot)
        self.zoom_select = pn.widgets.Select(
            **titled(pn.widgets.Select, "Chromosome"), options=[WHOLE_GENOME], value=WHOLE_GENOME,
            width=170, css_classes=["scan-zoom"],
        )
        self.zoom_select.param.watch(self._pick_zoom, "value")
        self.effects_kind = pn.widgets.RadioButtonGroup(
            options={"coefficients": "coef", "BLUPs": "blup"}, value=d.effects_kind,
            **look(pn.widgets.RadioButtonGroup, "primary", "outline"), css_classes=["scan-effects-kind"],
            margin=(26, 10, 4, 10), width=220,
        )
        self.effects_kind.param.watch(lambda e: setattr(d, "effects_kind", e.new), "value")
        self.zoom_bar = pn.Row(self.zoom_select, self.effects_kind, sizing_mode="stretch_width",
                               css_classes=["scan-zoom-bar"])
        # the effects along the zoomed chromosome (under the LOD plot)
        self.coef = pn.pane.HoloViews(None, linked_axes=False, sizing_mode="stretch_width", min_height=200,
                                      min_width=250, css_classes=["scan-coef-plot"])
        self.coef_note = pn.pane.Markdown("", margin=(0, 10), styles={"font-size": "12px"},
                                          css_classes=["scan-coef-note"])
        self.coef_download = _download("Effects along the chromosome (CSV)", self._coef_csv, "lmm_effects.csv",
                                       "scan-coef-download")
        self.coef_box = pn.Column(self.coef, self.coef_note, self.coef_download, sizing_mode="stretch_width",
                                  visible=False, css_classes=["scan-coef"])
        # peaks and intervals
        self.threshold = pn.widgets.FloatInput(**titled(pn.widgets.FloatInput, "LOD threshold"), value=d.threshold,
                                               start=0.0, step=0.5, width=120, css_classes=["peaks-threshold"])
        self.peakdrop = pn.widgets.Select(
            **titled(pn.widgets.Select, "Peak drop"), width=170, css_classes=["peaks-peakdrop"],
            options={("one peak per chromosome" if math.isinf(v) else f"{v:g}"): v for v in PEAKDROP_CHOICES},
            value=d.peakdrop,
        )
        self.interval = pn.widgets.Select(
            **titled(pn.widgets.Select, "Interval"), options={v: k for k, v in INTERVAL_TYPES.items()},
            value=d.interval, width=150, css_classes=["peaks-interval"],
        )
        self.drop = pn.widgets.FloatInput(**titled(pn.widgets.FloatInput, "LOD drop"), value=d.drop, start=0.0,
                                          step=0.5, width=110, css_classes=["peaks-drop"])
        self.prob = pn.widgets.FloatInput(**titled(pn.widgets.FloatInput, "Probability"), value=d.prob, start=0.5,
                                          end=1.0, step=0.01, width=110, visible=False, css_classes=["peaks-prob"])
        for widget, name in ((self.threshold, "threshold"), (self.peakdrop, "peakdrop"), (self.interval, "interval"),
                             (self.drop, "drop"), (self.prob, "prob")):
            widget.param.watch(self._setter(name), "value")
        self.peaks = pn.widgets.Tabulator(
            self._peaks_shown(), show_index=False, disabled=True, selectable=False, layout="fit_data_fill",
            formatters={c: NumberFormatter(format="0.00") for c in ("pos", "lod", "ci_lo", "ci_hi")},
            titles={"lod": "LOD", "ci_lo": "from", "ci_hi": "to", "ci_lo_marker": "from marker",
                    "ci_hi_marker": "to marker"},
            sizing_mode="stretch_width", max_height=260, min_width=250, css_classes=["scan-find-peaks"],
            stylesheets=[".tabulator-cell, .tabulator-col-title { font-size: 0.9em !important; }"],
        )
        self.peaks.on_click(self._pick_peak)
        self.peaks_note = pn.pane.Markdown("", margin=(0, 10), css_classes=["scan-peaks-note"])
        self.peaks_download = _download("Peaks (CSV)", self._peaks_csv, "lmm_peaks.csv", "scan-peaks-download")
        self.peaks_box = pn.Column(
            pn.pane.Markdown("**Peaks and support intervals**", margin=(4, 10, 0, 10)),
            pn.FlexBox(self.threshold, self.peakdrop, self.interval, self.drop, self.prob, flex_wrap="wrap",
                       sizing_mode="stretch_width"),
            self.peaks_note, self.peaks, self.peaks_download, pn.pane.HTML(_PEAKS_HOW, margin=(0, 10)),
            sizing_mode="stretch_width", min_width=250, css_classes=["scan-peaks-box"],
        )
        # heat map and QQ plot
        self.heat_button = pn.widgets.Button(
            **titled(pn.widgets.Button, "Scan every phenotype (heat map)"), **look(pn.widgets.Button, "primary"),
            sizing_mode="stretch_width", max_width=320, css_classes=["scan-heat-button"], margin=(4, 10),
        )
        self.heat_button.on_click(self._scan_all)
        self.heat = pn.pane.HoloViews(None, linked_axes=False, sizing_mode="stretch_width", min_height=200,
                                      min_width=250, css_classes=["scan-heat-plot"])
        self.heat_download = _download("Heat map data (CSV)", self._heat_csv, "lmm_lod_heatmap.csv",
                                       "scan-heat-download")
        self.qq = pn.pane.HoloViews(None, linked_axes=False, sizing_mode="stretch_width", min_height=200,
                                    min_width=250, css_classes=["scan-qq-plot"])
        self.qq_download = _download("QQ plot data (CSV)", self._qq_csv, "lmm_qq.csv", "scan-qq-download")
        self.heat_box = pn.Column(self.heat_button, self.heat, self.heat_download, sizing_mode="stretch_width",
                                  min_width=250, styles={"flex": "2 1 520px"}, css_classes=["scan-heat"])
        # under the whole tab: QQ plot and heat map side by side on a wide screen, one above the other at 1024 px
        self.lower = pn.FlexBox(
            pn.Column(self.qq, self.qq_download, sizing_mode="stretch_width", min_width=250,
                      styles={"flex": "1 1 300px"}),
            self.heat_box,
            flex_wrap="wrap", sizing_mode="stretch_width", css_classes=["scan-detail"],
        )
        self._heat_n: int | None = None  # the number of phenotypes the heat map's message was drawn for
        # follow the state
        d.param.watch(self._zoom_changed, "chromosome")
        d.param.watch(self._draw_coef, ["effects", "effects_problem"])
        d.param.watch(self._draw_heat, "all_scan")
        d.param.watch(self._show_loading, "busy")
        d.param.watch(self._redraw_peaks, ["threshold", "peakdrop", "interval", "drop", "prob"])
        d.param.watch(self._load_effects, ["chromosome", "effects_kind"])
        s.param.watch(self._scan_changed, "entry")
        s.param.watch(self._load_effects, "entry")  # a new scan while zoomed: its effects
        s.param.watch(self._load_fit, ["entry", "selected_marker"])
        s.param.watch(self._marker_moved, "selected_marker")
        self.look.param.watch(self._redraw_all, "presentation")
        self._scan_changed()

    def __panel__(self) -> pn.viewable.Viewable:
        return self.lower

    # ------------------------------------------------------------------ widgets -> state

    def _setter(self, name: str):
        def set_value(event) -> None:
            value = event.new
            if value is None:
                return
            setattr(self.detail, name, value)
            if name == "interval":
                self.drop.visible = value == "lod"
                self.prob.visible = value == "bayes"

        return set_value

    def _pick_zoom(self, event) -> None:
        self.detail.zoom(None if event.new == WHOLE_GENOME else event.new)

    def _pick_peak(self, event) -> None:
        if event.row is not None:
            self.detail.go_to_peak(int(event.row))

    async def _scan_all(self, _event=None) -> None:
        await self.detail.aload_all_phenotypes()

    async def _load_effects(self, *_events) -> None:
        await self.detail.aload_effects()

    async def _load_fit(self, *_events) -> None:
        await self.detail.aload_fit()

    # ------------------------------------------------------------------ state -> view

    def _scan_changed(self, *_events) -> None:
        d = self.detail
        options = [WHOLE_GENOME, *d.chromosomes()]
        self.zoom_select.options = options
        self.zoom_select.value = d.chromosome if d.chromosome in options else WHOLE_GENOME
        n = d.n_phenotypes()
        self.heat_button.param.update(
            **titled(pn.widgets.Button, f"Scan all {n} phenotypes (heat map)" if n else "Scan every phenotype"),
            disabled=d.entry is None or n < 2,
        )
        self.heat_box.visible = n >= 2  # one phenotype: no heat map
        entry = d.entry
        if entry is not None:
            k = entry.key
            tag = f"{_safe(k.phenotype)}_{'loco' if k.loco else 'overall'}_{k.method}"
            self.peaks_download.filename = f"lmm_peaks_{tag}.csv"
            self.qq_download.filename = f"lmm_qq_{tag}.csv"
        self._redraw_peaks()
        self._draw_qq()
        if d.chromosome is not None or self.coef.object is None:  # hidden otherwise: nothing to redraw
            self._draw_coef()
        if d.all_scan is not None or self.heat.object is None or n != self._heat_n:  # its message names n
            self._draw_heat()

    def _zoom_changed(self, *_events) -> None:
        d = self.detail
        self.zoom_select.value = d.chromosome if d.chromosome is not None else WHOLE_GENOME
        self.coef_box.visible = d.chromosome is not None
        self._redraw_peaks()
        self._draw_coef()

    def _marker_moved(self, *_events) -> None:
        if self.detail.chromosome is not None:
            self._draw_coef()

    def _show_loading(self, event) -> None:
        self.coef.loading = bool(event.new) and self.detail.chromosome is not None

    def _redraw_all(self, *_events) -> None:
        self._draw_coef()
        self._draw_heat()
        self._draw_qq()

    def _peaks_shown(self) -> pd.DataFrame:
        peaks = self.detail.peaks()
        return peaks.drop(columns=["phenotype"]).astype({"chr": str, "marker": str})

    def _redraw_peaks(self, *_events) -> None:
        self.peaks.value = self._peaks_shown()
        problem = self.detail.peaks_problem()
        n = len(self.peaks.value)
        if problem:
            text = f"⚠ {escape(problem)}"
        elif self.detail.entry is None:
            text = ""
        else:
            text = (f"<small>{n} peak{'s' if n != 1 else ''} above LOD {self.detail.threshold:g}"
                    f"{'' if n else ' (lower the threshold to see more)'}</small>")
        self.peaks_note.object = text

    def _draw_coef(self, *_events) -> None:
        d = self.detail
        frame = effects_frame(d.effects)
        names = list(d.effects.effect_names) if d.effects is not None else []
        chromosome = d.chromosome
        selected = None
        marker = d.scan.selected_marker
        if chromosome is not None and marker is not None and len(frame):
            row = frame[frame["marker"].astype(str) == marker]
            selected = float(row["pos"].iloc[0]) if len(row) else None
        zoomed = d.chromosome_frame() if chromosome is not None else None
        xlim = None
        if zoomed is not None and len(zoomed):
            pos = zoomed["pos"].to_numpy(dtype=float)
            span = max(float(np.ptp(pos)), 1e-9)
            xlim = (float(pos.min()) - 0.02 * span, float(pos.max()) + 0.02 * span)
        message = d.effects_problem or ("Computing the effects …" if chromosome is not None else "")
        plot = coef_plot(frame, names, chromosome=chromosome if d.effects is not None else None,
                         kind=d.effects_kind, phenotype=d.entry.phenotype if d.entry is not None else "",
                         xlim=xlim, selected_pos=selected, message=message)
        if self.look.presentation and d.effects is not None:  # the enlarged legend and labels need the room
            plot = plot.opts(height=PRESENT_COEF_HEIGHT)
        self.coef.object = styled(plot, self.look.presentation)
        self.coef_box.visible = chromosome is not None
        self.coef_download.disabled = d.effects is None
        e = d.effects
        if e is not None:
            self.coef_download.filename = f"lmm_{e.kind}_{_safe(e.phenotype)}_chr{_safe(e.chromosome)}.csv"
            founders = d.entry is not None and uses_founder_effects(d.entry.job.genotypes)
            unit = "founder (allele probability)" if founders else "genotype"
            what = (f"BLUPs of the {unit} effects (random, shrunk towards 0; scan1blup)" if e.kind == "blup" else
                    f"{unit} effects" + (" centred to sum to 0 (R/qtl2's zerosum; scan1coef)" if e.zerosum else ""))
            kin = "LOCO" if d.entry is not None and d.entry.key.loco else "overall"
            self.coef_note.object = (f"<small>{escape(e.phenotype)}, chromosome {escape(e.chromosome)}: {what}; h² fixed at its null estimate {e.h2:.3f} "
                                     f"({kin} kinship, {e.method.upper()}), n = {e.n}.</small>")
        else:
            self.coef_note.object = ""

    def _draw_heat(self, *_events) -> None:
        d = self.detail
        n = self._heat_n = d.n_phenotypes()
        message = ("The data have one phenotype: no heat map." if n < 2 else
                   f"Press “Scan all {n} phenotypes” to see every phenotype's LOD.")
        heat = d.heat()
        if len(heat) and d.entry is not None:  # the phenotype shown above comes first
            first = heat["phenotype"] == d.entry.phenotype
            heat = pd.concat([heat[first], heat[~first]], ignore_index=True)
        plot = heat_plot(heat, d.scan.layout(), message=message)
        self.heat.object = styled(plot, self.look.presentation)
        self.heat_download.disabled = d.all_scan is None

    def _draw_qq(self, *_events) -> None:
        d = self.detail
        plot = qq_plot(d.qq(), phenotype=d.entry.phenotype if d.entry is not None else "")
        self.qq.object = styled(plot, self.look.presentation)
        self.qq_download.disabled = d.entry is None

    # ------------------------------------------------------------------ downloads

    def _peaks_csv(self) -> io.BytesIO:
        return csv_bytes(self.detail.peaks())

    def _coef_csv(self) -> io.BytesIO:
        e = self.detail.effects
        return csv_bytes(e.table if e is not None else pd.DataFrame())

    def _heat_csv(self) -> io.BytesIO:
        return csv_bytes(self.detail.heat().drop(columns=["x"]))

    def _qq_csv(self) -> io.BytesIO:
        return csv_bytes(self.detail.qq())
