"""The genome-scan tab: LOD along the genome, top peaks, and the effects at a clicked marker.

A thin viewer over :class:`app.scan_state.ScanState`. It asks the state for a
scan (in a worker thread) whenever a setting it depends on changes while the
tab is on screen; the phenotype, method and covariates come from the sidebar.
"""

from __future__ import annotations

import io

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter
from lmmcore.xchr import has_own_sets

from ..data import display_name, max_upload_bytes, too_large_message
from ..scan_detail import ScanDetail
from ..scan_jobs import uses_founder_effects
from ..scan_state import GENOTYPE_FILES, PERMUTATION_CHOICES, THRESHOLD_ALPHA, EffectData, ScanEntry, ScanState
from ..state import METHODS
from .results import _safe, csv_bytes
from .look import Look, styled
from .scan_detail import ScanDetailView
from .scan_plots import effect_plot, lod_plot
from .style import escape, look, titled
from .upload import SizeLimitedFileInput

__all__ = ["ScanView"]

_UPLOADS = (
    ("genoprobs", "Genotype probabilities CSV", "IDs, then MARKER:GENOTYPE columns (e.g. D1M01:AB), as R/qtl2 exports"),
    ("dosages", "or dosages CSV", "IDs, then one column per marker with 0 to 2 copies of an allele"),
    ("map", "Map CSV", "columns marker, chr, pos"),
    ("bed", "or PLINK .bed", "with the .bim and .fam of the same set"),
    ("bim", "PLINK .bim", ""),
    ("fam", "PLINK .fam", ""),
)

_ACCEPT = {"bed": ".bed", "bim": ".bim,.txt", "fam": ".fam,.txt"}

_HOW = (
    "<small>Fixed-h² scan (R/qtl2 <code>scan1</code>): h² estimated without the marker by the sidebar's method "
    "and held fixed; LOD = (n/2) log<sub>10</sub>(RSS<sub>0</sub>/RSS<sub>1</sub>) in the rotated, weighted "
    "space. With LOCO each chromosome is scanned with the kinship of all the others. "
    "The exact scan also re-estimates h² by ML at every marker (dashed curve: the likelihood-ratio LOD "
    "against the null ML fit; the threshold is the fixed-h² scan's). "
    "Click a point, or a row of the table, to see the effects at that marker. "
    "Plots: the save tool (disk icon) gives a PNG.</small>"
)


def _fmt_p(p: float) -> str:
    return f"{p:.3g}" if np.isfinite(p) else "—"


class ScanView(pn.viewable.Viewer):
    """Settings, the LOD plot, the top peaks, the effect plot and table, downloads and genotype uploads."""

    scan = param.ClassSelector(class_=ScanState, doc="The session's scan state.")
    look = param.ClassSelector(class_=Look, doc="Normal or presentation mode.")
    detail = param.ClassSelector(class_=ScanDetail, doc="Zoom, peaks, effects along a chromosome, heat map, QQ.")

    def __init__(self, **params) -> None:
        params.setdefault("look", Look())
        if params.get("detail") is None:
            params["detail"] = ScanDetail(scan=params["scan"])
        super().__init__(**params)
        s = self.scan
        ex = s.explorer
        self.after = ScanDetailView(detail=self.detail, look=self.look)
        # settings
        self._source = pn.widgets.Select(
            **titled(pn.widgets.Select, "Genotypes"), options=self._source_options(), value=s.genotype_source,
            sizing_mode="stretch_width", css_classes=["scan-source"],
        )
        self._source.param.watch(self._pick_source, "value")
        self._loco = pn.widgets.Checkbox.from_param(
            s.param.loco, name="Leave one chromosome out (LOCO)", css_classes=["scan-loco"]
        )
        self._exact = pn.widgets.Checkbox.from_param(
            s.param.exact, name="Also re-estimate h² at every marker (exact LRT, as GEMMA -lmm 2)",
            css_classes=["scan-exact"],
        )
        self._perm = pn.widgets.Select(
            **titled(pn.widgets.Select, "Permutations (genome-wide threshold)"),
            options={("none" if k == 0 else str(k)): k for k in PERMUTATION_CHOICES},
            value=s.n_perm if s.n_perm in PERMUTATION_CHOICES else 0,
            sizing_mode="stretch_width",
            css_classes=["scan-perm"],
        )
        self._perm.param.watch(self._pick_perm, "value")
        self._info = pn.pane.Markdown(
            pn.bind(self._info_text, entry=s.param.entry, busy=s.param.busy, label=s.param.genotype_label,
                    problem=s.param.problem),
            css_classes=["scan-summary"], margin=(0, 10), styles={"font-size": "12.5px"},
        )
        # the plots are DynamicMaps: a new scan or marker updates their data in place
        self._lod = pn.pane.HoloViews(
            self._lod_map(), linked_axes=False, sizing_mode="stretch_width", min_height=300,
        )
        self._lod_holder = pn.Column(self._lod, sizing_mode="stretch_width", css_classes=["scan-lod-plot"])
        self._effect = pn.pane.HoloViews(
            self._effect_map(),
            linked_axes=False, sizing_mode="stretch_width", min_height=262, min_width=300,
            styles={"flex": "1 1 320px"}, css_classes=["scan-effect-plot"],
        )
        self._effects_table = pn.pane.HTML(
            pn.bind(self._effects_html, entry=s.param.entry, marker=s.param.selected_marker,
                    fit=self.detail.param.fit),
            width=260, css_classes=["scan-effects"], styles={"flex": "0 0 260px"},
        )
        self._peaks = pn.widgets.Tabulator(
            pn.bind(self._peaks_frame, entry=s.param.entry),
            show_index=False,
            disabled=True,
            selectable=False,
            formatters={"pos": NumberFormatter(format="0.0"), "lod": NumberFormatter(format="0.00")},
            titles={"lod": "LOD"},
            layout="fit_data_fill",  # columns as wide as their text: marker names are never cut
            configuration={"columnDefaults": {"headerSort": False}},  # five rows, best first: no sort arrows
            sizing_mode="stretch_width",
            stylesheets=[".tabulator-cell, .tabulator-col-title { font-size: 0.9em !important; }"],
            css_classes=["scan-peaks"],
        )
        self._peaks.on_click(self._pick_peak)
        self._download = pn.widgets.FileDownload(
            callback=self._scan_csv, filename="lmm_scan.csv", label="Download the scan (CSV)",
            **look(pn.widgets.FileDownload, "primary", "outline"), sizing_mode="stretch_width",
            disabled=s.entry is None,  # until there is a scan
        )
        self._problem = pn.pane.Alert(s.problem, alert_type="warning", visible=bool(s.problem),
                                      sizing_mode="stretch_width", css_classes=["scan-problem"])
        # uploads
        limit = max_upload_bytes()
        self._inputs: dict[str, SizeLimitedFileInput] = {}
        for kind, label, help_text in _UPLOADS:
            widget = SizeLimitedFileInput(
                accept=_ACCEPT.get(kind, ".csv,.txt,.tsv,text/csv"), max_bytes=limit, label=label,
                description=help_text, sizing_mode="stretch_width", margin=(4, 8),
                css_classes=[f"upload-genotypes-{kind}"],
            )
            widget.param.watch(self._make_handler(kind), "value")
            widget.param.watch(self._make_refusal_handler(kind), "rejected")
            self._inputs[kind] = widget
        self._cross = SizeLimitedFileInput(
            accept=".zip,application/zip", max_bytes=limit, label="or an R/qtl2 cross (.zip)",
            description="genotype probabilities by the HMM (R/qtl2's calc_genoprob); the X chromosome is scanned "
                        "with its own genotypes and the X covariates, as R/qtl2's scan1(..., Xcovar)",
            sizing_mode="stretch_width", margin=(4, 8), css_classes=["upload-genotypes-cross"],
        )
        self._cross.param.watch(self._cross_uploaded, "value")
        self._cross.param.watch(self._cross_refused, "rejected")
        self._inputs["cross"] = self._cross
        self._use_cross = pn.widgets.Button(
            **titled(pn.widgets.Button, "Scan the cross in use (its HMM probabilities)"),
            **look(pn.widgets.Button, "primary", "outline"), sizing_mode="stretch_width",
            visible=ex.cross is not None, css_classes=["scan-use-cross"],
        )
        self._use_cross.on_click(self._scan_cross_in_use)
        ex.param.watch(lambda event: setattr(self._use_cross, "visible", event.new is not None), "cross")
        self._pending = pn.pane.Markdown(pn.bind(self._pending_text, s.param.pending), margin=(0, 8))
        self._uploads = pn.Card(
            pn.pane.Markdown("<small>Same individual IDs as the phenotypes. The genotypes in use stay until a "
                             "complete set has been read and scanned.</small>", margin=(0, 8)),
            *self._inputs.values(),
            self._pending,
            title="Your own genotypes",
            collapsed=True,
            sizing_mode="stretch_width",
            css_classes=["scan-uploads"],
        )
        # keep the scan in step with the settings while the tab is on screen
        ex.param.watch(self._settings_changed, ["dataset", "phenotype", "method", "use_covariates", "transform"])
        s.param.watch(self._settings_changed, ["loco", "exact", "n_perm", "genotypes", "active"])
        s.param.watch(self._show_busy, "busy")
        s.param.watch(self._sync_source, ["genotype_source", "genotypes"])
        s.param.watch(self._rename, "entry")
        s.param.watch(self._show_problem, ["problem", "entry"])
        self.look.param.watch(self._restyle, "presentation")
        self.detail.param.watch(self._restyle, "chromosome")  # the axis changes: a new plot
        # plots and settings side by side on a wide screen; on a projector's 1024 px the settings wrap below
        self._layout = pn.FlexBox(
            pn.Column(
                self._problem,
                self.after.zoom_bar,
                self._lod_holder,
                self.after.coef_box,
                pn.FlexBox(self._effect, self._effects_table, flex_wrap="wrap", sizing_mode="stretch_width"),
                self.after.peaks_box,
                min_width=360, sizing_mode="stretch_width", styles={"flex": "1 1 560px"},
            ),
            pn.Column(
                self._source,
                self._use_cross,
                self._loco,
                self._exact,
                self._perm,
                self._info,
                pn.pane.Markdown(pn.bind(self._peaks_caption, entry=s.param.entry), margin=(4, 10, 0, 10)),
                self._peaks,
                self._download,
                pn.pane.HTML(_HOW, margin=(0, 10)),
                self._uploads,
                min_width=320, max_width=400, sizing_mode="stretch_width", styles={"flex": "1 1 340px"},
            ),
            flex_wrap="wrap",
            sizing_mode="stretch_width",
        )

        self._page = pn.Column(self._layout, self.after, sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return self._page

    def _lod_map(self) -> hv.DynamicMap:
        """The LOD plot as a DynamicMap over the scan and a click stream (rebuilt for the look)."""
        self._tap = hv.streams.Tap(x=None, y=None)
        self._tap.add_subscriber(self._tapped)
        params = hv.streams.Params(self.scan, ["entry", "selected_marker", "problem"])
        options = hv.streams.Params(self.detail, ["threshold", "peakdrop", "interval", "drop", "prob"])
        return hv.DynamicMap(self._lod_plot, streams=[params, options, self._tap])

    def _effect_map(self) -> hv.DynamicMap:
        s = self.scan
        return hv.DynamicMap(pn.bind(self._effect_plot, entry=s.param.entry, marker=s.param.selected_marker))

    def _restyle(self, *_events) -> None:
        """Presentation mode changed: rebuild the plots (font sizes are set when a plot is first drawn)."""
        self._lod.object = self._lod_map()
        self._effect.object = self._effect_map()

    def file_input(self, kind: str) -> SizeLimitedFileInput:
        """The upload widget for one genotype file kind."""
        return self._inputs[kind]

    # ------------------------------------------------------------------ settings

    def _source_options(self) -> dict[str, str]:
        return {label: key for key, label in self.scan.sources.items()}

    def _sync_source(self, *_events) -> None:
        self._source.options = self._source_options()
        self._source.value = self.scan.genotype_source

    def _pick_source(self, event) -> None:
        if event.new in self.scan.param.genotype_source.objects:
            self.scan.genotype_source = event.new

    def _pick_perm(self, event) -> None:
        self.scan.n_perm = int(event.new)

    async def _settings_changed(self, *_events) -> None:
        if self.scan.active:
            await self.scan.arefresh()

    def _show_busy(self, event) -> None:
        self._lod_holder.loading = bool(event.new)

    def _show_problem(self, *_events) -> None:
        s = self.scan
        self._problem.param.update(object=s.problem, visible=bool(s.problem))
        self._download.disabled = s.entry is None

    def _rename(self, *_events) -> None:
        entry = self.scan.entry
        if entry is not None:
            k = entry.key
            self._download.filename = f"lmm_scan_{_safe(k.phenotype)}_{'loco' if k.loco else 'overall'}_{k.method}.csv"

    # ------------------------------------------------------------------ content

    def _info_text(self, entry: ScanEntry | None, busy: bool, label: str, problem: str = "") -> str:
        s = self.scan
        lines = [f"<small>**Genotypes:** {escape(label)}</small>"]
        info = s.summary()
        if not info:
            if s.explorer.dataset is None:
                lines.append("Load phenotypes in the sidebar to scan them.")
            elif problem:
                lines.append("No scan: see the note above the plot.")
            elif busy:
                lines.append("Scanning …")
            return "\n\n".join(lines)
        lo, hi = info["null_h2"]
        x_chr = entry.job.x_chr if entry is not None else ()
        per = "one per chromosome left out" if info["loco"] else "the autosomes' and X's"
        per += f"; {', '.join(x_chr)} with the X covariates" if x_chr else ""
        h2 = f"{lo:.3f}" if abs(hi - lo) < 5e-4 else f"{lo:.3f} – {hi:.3f} ({per})"
        kin = "LOCO kinships" if info["loco"] else "one overall kinship"
        lines.append(
            f"**{escape(info['phenotype'])}** · {METHODS[info['method']]} · {kin} · "
            f"{'covariates' if info['covariates'] else 'intercept only'}  \n"
            f"{info['n']} individuals · {info['markers']} markers on {info['chromosomes']} chromosome(s)  \n"
            f"null h² {h2}  \nscanned in {info['seconds']:.2f} s"
        )
        if info["threshold"] is not None:
            lines.append(f"**{100 * THRESHOLD_ALPHA:g}% threshold:** LOD {info['threshold']:.2f} "
                         f"({info['n_perm']} permutations)")
        for text in info["messages"]:
            lines.append(f"<small>⚠ {escape(text)}</small>")
        return "\n\n".join(lines)

    def _lod_plot(self, entry: ScanEntry | None = None, selected_marker: str | None = None, problem: str = "",
                  x=None, y=None, **_peak_options):
        """The LOD plot of the shown scan, zoomed or not, with the peaks' intervals shaded.

        ``x``, ``y``: the click, handled by :meth:`_tapped`; the peak options
        are read from :attr:`detail` (passed by the stream so that the
        intervals follow them).
        """
        s, d = self.scan, self.detail
        if entry is None:
            title = "LOD along the genome"
            message = ("Load phenotypes and genotypes to scan." if s.explorer.dataset is None
                       else "The scan cannot run: see the note above." if s.problem else "Scanning …")
        else:
            kin = "LOCO" if entry.key.loco else "overall kinship"
            if entry.key.refit:
                title = f"{entry.phenotype}: LOD ({kin}; dashed: h² refitted)"
            else:
                title = f"{entry.phenotype}: LOD ({kin}, {METHODS[entry.key.method]} null h²)"
            message = ""
        zoomed = d.chromosome if entry is not None and entry is s.entry else None
        frame = d.chromosome_frame() if zoomed is not None else s.lod_frame(entry)
        spans = d.spans() if entry is not None and entry is s.entry else None
        plot = lod_plot(frame, s.layout(entry), title=title, selected=selected_marker,
                        threshold=s.threshold(), n_perm=entry.key.n_perm if entry is not None else 0, message=message,
                        intervals=spans, chromosome=zoomed)
        return styled(plot, self.look.presentation)

    def _tapped(self, x=None, y=None) -> None:
        """A click on the LOD plot: in the band under LOD 0 it zooms (or goes back); elsewhere it picks a marker."""
        if x is None:
            return
        d = self.detail
        if y is not None and y < 0:
            d.zoom(None if d.chromosome is not None else d.chromosome_at(x))
        elif d.chromosome is not None:
            self.scan.select_marker(d.nearest_on_chromosome(x, y))
        else:
            self.scan.select_nearest(x, y)

    def _effect_data(self) -> EffectData | None:
        return self.scan.effect_data() if self.scan.entry is not None else None

    def _effect_plot(self, entry, marker):
        return styled(effect_plot(self._effect_data()), self.look.presentation)

    def _effects_html(self, entry, marker, fit=None) -> str:
        e = self._effect_data()
        if e is None:
            return ""
        rows = [("LOD", f"{e.lod:.3f}"), (f"p ({e.df} df)", _fmt_p(e.p_value))]
        for name, est, se in e.effects.itertuples(index=False):
            what = f"{name} − {e.reference}" if e.reference is not None else "per allele"
            rows.append((what, f"{est:.4g} ± {se:.2g}"))
        fit = self.detail.fit
        fitted = fit is not None and fit.marker == e.marker and fit.phenotype == e.phenotype
        # an X with its own genotypes (an F2's SY, BY are the males): they carry the sex difference too
        own_x = e.on_x and has_own_sets(self.scan.entry.job.genotypes)
        unidentified = False
        if e.on_x:  # the X effects are fit1's (X covariates in the null model only), as lmmcore fit1 --cross
            if fitted:
                shown = [g for g in (e.genotype_order if e.kind == "genoprobs" else ())
                         if g in fit.coef.index and np.isfinite(fit.coef[g])]
                for name in shown:
                    rows.append((f"{name} (fit1)", f"{fit.coef[name]:.4g} ± {fit.se[name]:.2g}"))
                if not shown:  # a covariate (e.g. sex) that the X genotypes span: no sum-to-zero effects
                    rows.append(("effects (fit1)", "not identified ¹"))
                    unidentified = True
            else:
                rows.append(("effects", "computing (fit1) …"))
        rows.append(("h² (fixed)", f"{e.h2:.4f}"))
        if np.isfinite(e.lod_exact):
            rows.append(("LOD, exact", f"{e.lod_exact:.3f}"))
            rows.append(("h² here (ML)", f"{e.h2_exact:.4f}"))
        if fitted:
            founders = uses_founder_effects(self.scan.entry.job.genotypes)
            if not own_x:  # on such an X the genotypes' fitted values also carry the sex difference (note)
                rows.append(("variance explained" + (" (founders)" if founders else ""),
                             f"{100 * fit.variance_explained:.1f}%"))
            rows.append(("1 − RSS₁/RSS₀", f"{100 * fit.pve_lod:.1f}%"))
        rows.append(("n", f"{e.n}"))
        if e.flag:
            rows.append(("flag", e.flag))
        body = "".join(f"<tr><th>{escape(a)}</th><td class='num'>{escape(b)}</td></tr>" for a, b in rows)
        style = (
            "<style>.scan-fx{border-collapse:collapse;font-size:0.9em;width:100%}"
            ".scan-fx th,.scan-fx td{padding:3px 6px;border-bottom:1px solid #e5e7eb;text-align:left;"
            "vertical-align:top}"
            ".scan-fx th{font-weight:600;white-space:nowrap}.scan-fx td.num{font-family:ui-monospace,Menlo,Consolas,"
            "monospace;white-space:nowrap}.scan-fx td.note{color:#6b7280;font-size:0.85em}</style>"
        )
        head = f"<h4 style='margin:4px 0 6px;font-size:1em'>Fitted at {escape(e.marker)}</h4>"
        x_note = (" On the X chromosome the scan's model also holds the X covariates (R/qtl2's Xcovar), so the "
                  "effects are fit1's: effects centred to sum to 0, the X covariates in the null model only (R/qtl2's "
                  "fit1 with nullcovar)." if e.on_x else "")
        if unidentified:
            x_note += (" ¹ A covariate (sex) is spanned by the X genotypes (SY and BY are the males), so these "
                       "effects are not identified; the effects along X (scan1coef) leave one genotype out instead.")
        if own_x:
            x_note += (" The variance explained is not shown on X: the X genotypes' fitted values also carry the "
                       "sex (and direction) differences; 1 − RSS₁/RSS₀ is against the null model with the X "
                       "covariates.")
        note = ("<p style='font-size:0.85em;color:#6b7280;margin:6px 0 0'>Effects: estimate ± SE in the model with "
                f"the covariates and the kinship, h² fixed at its null estimate.{x_note} Plot: each individual's "
                "phenotype by "
                f"its {'most likely genotype' if e.kind == 'genoprobs' else 'rounded dosage'}; red: raw group means "
                "± 1.96 SE. Variance explained (lmmcore.fit1): the variance of the QTL's fitted values over that "
                "plus the polygenic and residual variances" + (" (founder model: the founders' allele "
                "probabilities)" if uses_founder_effects(self.scan.entry.job.genotypes) else "") + ".</p>")
        return f"{style}{head}<table class='scan-fx'>{body}</table>{note}"

    def _peaks_frame(self, entry) -> pd.DataFrame:
        """The top peaks with p-values as short text (genome-wide with permutations, else pointwise)."""
        peaks = self.scan.top_peaks()
        out = peaks[["marker", "chr", "pos", "lod"]].astype({"marker": str, "chr": str, "pos": float, "lod": float})
        if "genome_p" in peaks:
            n = self.scan.entry.key.n_perm
            p = [f"< {1 / n:.2g}" if v == 0 else f"{v:.2g}" for v in peaks["genome_p"]]
        else:
            p = [_fmt_p(v) for v in peaks["p_value"]]
        out["p"] = pd.Series(p, index=out.index, dtype=object)  # text, also when empty (else a number column)
        return out

    @staticmethod
    def _peaks_caption(entry) -> str:
        if entry is not None and entry.key.n_perm:
            which = f"p: genome-wide, from {entry.key.n_perm} permutations"
        else:
            which = "p: at the marker (χ²)"
        return f"**Top peaks** <small>(highest marker per chromosome; {which})</small>"

    def _pick_peak(self, event) -> None:
        value = self._peaks.value
        if value is None or event.row is None or event.row >= len(value):
            return
        self.scan.select_marker(str(value.iloc[event.row]["marker"]))

    def _scan_csv(self) -> io.BytesIO:
        return csv_bytes(self.scan.scan_table())

    # ------------------------------------------------------------------ uploads

    def _make_handler(self, kind: str):
        async def handler(event) -> None:
            if not event.new:
                return
            await self.scan.areceive_genotype_upload(kind, self._inputs[kind].filename, event.new)

        return handler

    async def _scan_cross_in_use(self, _event=None) -> None:
        await self.scan.ause_cross_in_use()

    async def _cross_uploaded(self, event) -> None:
        if event.new:
            await self.scan.areceive_cross_genotypes(self._cross.filename, event.new)

    def _cross_refused(self, event) -> None:
        refused = event.new
        if refused:
            text = (too_large_message("cross", refused["filename"], refused["size"], refused["limit"])
                    if refused.get("reason") == "too large" else
                    f"the browser could not read the cross file '{display_name(refused['filename'])}'; "
                    "the genotypes in use have not changed")
            self.scan.notify("error", text)

    def _make_refusal_handler(self, kind: str):
        def handler(event) -> None:
            refused = event.new
            if not refused:
                return
            what = GENOTYPE_FILES[kind]
            if refused.get("reason") == "too large":
                text = too_large_message(what, refused["filename"], refused["size"], refused["limit"])
            else:
                text = (f"the browser could not read the {what} file '{display_name(refused['filename'])}'; "
                        "the genotypes in use have not changed")
            self.scan.notify("error", text)

        return handler

    @staticmethod
    def _pending_text(pending: dict) -> str:
        if not pending:
            return ""
        have = ", ".join(f"{escape(GENOTYPE_FILES.get(k, k))}: `{escape(v)}`" for k, v in pending.items())
        return f"<small>Received: {have}.</small>"
