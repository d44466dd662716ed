"""After the scan: zoom to a chromosome, peaks with intervals, effects along it, variance explained, heat map, QQ.

:class:`ScanDetail` is a :class:`param.Parameterized` object beside the
session's :class:`~app.scan_state.ScanState` (it imports neither panel nor
holoviews, so it is tested without a browser). It holds the chromosome shown
(None: the whole genome), the peak-finding options, and the results computed
after the scan:

* the peaks and their support intervals, :func:`lmmcore.find_peaks` on the
  shown scan (cheap: computed on demand);
* the effects along the zoomed chromosome, :func:`lmmcore.scan1coef` or
  :func:`lmmcore.scan1blup`, and :func:`lmmcore.fit1` at the selected marker
  (its ``variance_explained``): jobs of :mod:`app.scan_jobs`, run in a worker
  thread by the ``a*`` methods (inline by the others), memoised per (scan,
  chromosome, kind) and per (scan, marker);
* a scan of every phenotype with the same settings for the heat map (a job too).

A result that arrives after the settings changed is memoised but not shown.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Hashable

import numpy as np
import pandas as pd
import param

from lmmcore import EffectsResult, Fit1Result, LMMInputError
from lmmcore.scan import ScanResult

from .base import SessionState, run_now
from .scan_frames import INTERVAL_TYPES, PEAK_TABLE_COLUMNS, heat_frame, interval_spans, peak_table, qq_frame
from .scan_jobs import EffectsKey, ScanKey, run_all_phenotypes, run_effects, run_fit1
from .scan_state import ScanState

__all__ = ["ScanDetail", "EFFECT_KINDS", "PEAKDROP_CHOICES", "MAX_CACHED_EFFECTS"]

#: Effects along a chromosome: key -> label.
EFFECT_KINDS: dict[str, str] = {"coef": "coefficients (scan1coef)", "blup": "BLUPs (scan1blup)"}
#: Peak drops offered (inf: one peak per chromosome, R/qtl2's default).
PEAKDROP_CHOICES = (math.inf, 1.0, 1.5, 2.0, 3.0)
#: Effect tables, fits and heat-map scans kept per session (least recently used dropped first).
MAX_CACHED_EFFECTS = 24


class _Memo(OrderedDict):
    """A small least-recently-used memo."""

    def get_recent(self, key: Hashable) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > MAX_CACHED_EFFECTS:
            self.popitem(last=False)


class ScanDetail(SessionState):
    """The genome-scan tab after the scan: zoom, peaks, effects along a chromosome, heat map and QQ plot.

    Parameters are the user's choices and what is shown; the scan itself,
    its phenotype and the selected marker are :attr:`scan`'s.
    """

    scan = param.ClassSelector(class_=ScanState, doc="The session's scan state.")
    chromosome = param.String(default=None, allow_None=True, doc="The chromosome zoomed to (None: whole genome).")
    threshold = param.Number(default=3.0, bounds=(0.0, None), doc="A peak has LOD above this.")
    peakdrop = param.Number(default=math.inf, bounds=(0.0, None), doc=(
        "How far the LOD must fall between two peaks of a chromosome (inf: one peak per chromosome)."))
    interval = param.Selector(default="lod", objects=list(INTERVAL_TYPES), doc="LOD drop or Bayes credible.")
    drop = param.Number(default=1.5, bounds=(0.0, None), doc="LOD drop of the support intervals.")
    prob = param.Number(default=0.95, bounds=(0.5, 1.0), doc="Probability of the Bayes credible intervals.")
    effects_kind = param.Selector(default="coef", objects=list(EFFECT_KINDS), doc="Coefficients or BLUPs.")
    effects = param.ClassSelector(class_=EffectsResult, default=None, allow_None=True,
                                  doc="The effects along the zoomed chromosome (shown).")
    effects_problem = param.String(default="", doc="Why the effects could not be computed.")
    fit = param.ClassSelector(class_=Fit1Result, default=None, allow_None=True,
                              doc="fit1 at the selected marker (variance explained).")
    all_scan = param.ClassSelector(class_=ScanResult, default=None, allow_None=True,
                                   doc="Every phenotype scanned with the shown scan's settings (heat map).")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._effects = _Memo()
        self._fits = _Memo()
        self._all = _Memo()
        self._peaks = _Memo()
        self.scan.param.watch(self._scan_changed, ["entry"])
        self.scan.param.watch(self._marker_changed, ["selected_marker"])

    def notify(self, level: str, text: str, *, clear: bool = False) -> None:
        """Messages go to the scan state's notice (the page shows those)."""
        self.scan.notify(level, text, clear=clear)

    # ------------------------------------------------------------------ what the scan is

    @property
    def entry(self):
        return self.scan.entry

    def chromosomes(self) -> tuple[str, ...]:
        """The shown scan's chromosomes, in genome order."""
        return self.scan.layout().chromosomes

    def _scan_changed(self, _event=None) -> None:
        """A new scan: keep the zoom if it has that chromosome; show what is memoised for it."""
        if self.chromosome is not None and self.chromosome not in self.chromosomes():
            self.chromosome = None
        self._show_memoised()

    def _marker_changed(self, _event=None) -> None:
        self.fit = self._fits.get_recent(self._fit_key())

    def _show_memoised(self) -> None:
        key = self._effects_key()
        self.param.update(
            effects=self._effects.get_recent(key) if key is not None else None,
            fit=self._fits.get_recent(self._fit_key()),
            all_scan=self._all.get_recent(self._all_key()),
            effects_problem="",
        )

    # ------------------------------------------------------------------ zoom

    def zoom(self, chromosome: str | None) -> bool:
        """Show one chromosome (None or ``""``: the whole genome); return whether it is one of the scan's."""
        if chromosome in (None, ""):
            self.chromosome = None
            self._show_memoised()
            return True
        chromosome = str(chromosome)
        if chromosome not in self.chromosomes():
            return False
        self.chromosome = chromosome
        self._show_memoised()
        return True

    def chromosome_at(self, x: float | None) -> str | None:
        """The chromosome drawn at genome-axis coordinate ``x`` (half the gap on each side counts), or None."""
        layout = self.scan.layout()
        if x is None or not layout.chromosomes or not np.isfinite(x):
            return None
        half = 0.5 * layout.gap
        inside = np.flatnonzero((layout.start - half <= x) & (x <= layout.end + half))
        return layout.chromosomes[int(inside[0])] if inside.size else None

    def chromosome_frame(self) -> pd.DataFrame:
        """The shown phenotype's LOD frame on the zoomed chromosome (all of it when not zoomed)."""
        frame = self.scan.lod_frame()
        if self.chromosome is None:
            return frame
        return frame[frame["chr"] == self.chromosome].sort_values("pos", kind="stable").reset_index(drop=True)

    def nearest_on_chromosome(self, pos: float | None, lod: float | None = None) -> str | None:
        """The marker of the zoomed chromosome nearest to a click at ``(pos, lod)`` (positions and LOD scaled)."""
        frame = self.chromosome_frame()
        frame = frame[np.isfinite(frame["lod"].to_numpy(dtype=float))]
        if self.chromosome is None or frame.empty or pos is None or not np.isfinite(pos):
            return None
        xs = frame["pos"].to_numpy(dtype=float)
        distance = ((xs - float(pos)) / max(float(np.ptp(xs)), 1e-12)) ** 2
        if lod is not None and np.isfinite(lod):
            lods = frame["lod"].to_numpy(dtype=float)
            distance = distance + ((lods - float(lod)) / max(float(np.nanmax(np.abs(lods))), 1e-12)) ** 2
        return str(frame["marker"].iloc[int(np.argmin(distance))])

    # ------------------------------------------------------------------ peaks

    def peaks(self) -> pd.DataFrame:
        """The shown phenotype's peaks and intervals (:func:`app.scan_frames.peak_table`); empty if none.

        Options that :func:`lmmcore.find_peaks` refuses give an empty table
        and :meth:`peaks_problem` says why.
        """
        entry = self.entry
        if entry is None:
            return pd.DataFrame(columns=PEAK_TABLE_COLUMNS)
        options = dict(threshold=float(self.threshold), peakdrop=float(self.peakdrop), interval=self.interval,
                       drop=float(self.drop), prob=float(self.prob))
        key = (entry.key, tuple(sorted(options.items())))
        cached = self._peaks.get_recent(key)
        if cached is None:
            try:
                cached = (peak_table(entry.result, entry.phenotype, **options), "")
            except LMMInputError as exc:
                cached = (pd.DataFrame(columns=PEAK_TABLE_COLUMNS), str(exc))
            self._peaks.put(key, cached)
        return cached[0].copy()

    def peaks_problem(self) -> str:
        """Why the peak options cannot be used (empty when they can)."""
        self.peaks()
        entry = self.entry
        if entry is None:
            return ""
        for (key, _options), value in reversed(self._peaks.items()):
            if key == entry.key:
                return value[1]
        return ""

    def spans(self) -> pd.DataFrame:
        """The support intervals to shade: genome-axis ``x0, x1`` (or positions when zoomed)."""
        return interval_spans(self.peaks(), self.scan.layout(), self.chromosome)

    def go_to_peak(self, row: int) -> bool:
        """Zoom to the chromosome of peak ``row`` of :meth:`peaks` and select its marker."""
        peaks = self.peaks()
        if row is None or not 0 <= row < len(peaks):
            return False
        peak = peaks.iloc[row]
        self.zoom(str(peak["chr"]))
        return self.scan.select_marker(str(peak["marker"]))

    # ------------------------------------------------------------------ QQ and heat map (no computation)

    def qq(self) -> pd.DataFrame:
        """The QQ frame of the shown scan's p-values (:func:`app.scan_frames.qq_frame`)."""
        frame = self.scan.lod_frame()
        return qq_frame(frame["p_value"].to_numpy(dtype=float), frame["marker"].to_numpy())

    def heat(self) -> pd.DataFrame:
        """The heat map's LOD of every phenotype by marker (:func:`app.scan_frames.heat_frame`)."""
        return heat_frame(self.all_scan, self.scan.layout() if self.all_scan is not None else None)

    def n_phenotypes(self) -> int:
        """Phenotypes in the data in use (the heat map has one row per phenotype)."""
        dataset = self.scan.explorer.dataset
        return 0 if dataset is None else len(self.scan.explorer.phenotypes)

    # ------------------------------------------------------------------ keys

    def _effects_key(self) -> EffectsKey | None:
        entry = self.entry
        if entry is None or self.chromosome is None:
            return None
        return EffectsKey(entry.key, self.chromosome, self.effects_kind)

    def _fit_key(self) -> tuple[ScanKey, str] | None:
        entry, marker = self.entry, self.scan.selected_marker
        return None if entry is None or marker is None else (entry.key, marker)

    def _all_key(self) -> ScanKey | None:
        entry = self.entry
        return None if entry is None else replace(entry.key, phenotype="", n_perm=0, refit=False)

    # ------------------------------------------------------------------ jobs

    def load_effects(self) -> EffectsResult | None:
        """The effects along the zoomed chromosome (computed here if not memoised); None when not zoomed."""
        return run_now(self._load_effects(threaded=False))

    async def aload_effects(self) -> EffectsResult | None:
        """:meth:`load_effects` with the computation in a worker thread."""
        return await self._load_effects(threaded=True)

    async def _load_effects(self, threaded: bool) -> EffectsResult | None:
        key = self._effects_key()
        if key is None:
            self.effects = None
            return None
        result = self._effects.get_recent(key)
        if result is None:
            try:
                with self.working():
                    result, messages = await self._run(threaded, run_effects, self.entry.job, key.chromosome,
                                                       key.kind)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                if key == self._effects_key():
                    self.param.update(effects=None, effects_problem=(
                        f"The {EFFECT_KINDS[key.kind].split(' (')[0]} along chromosome {key.chromosome} could not be "
                        f"computed: {exc}"))
                return None
            self._effects.put(key, result)
            self.notify_all("warning", messages, about="about the effects")
        if key == self._effects_key():
            self.param.update(effects=result, effects_problem="")
        return result

    def load_fit(self) -> Fit1Result | None:
        """:func:`lmmcore.fit1` at the selected marker (computed here if not memoised)."""
        return run_now(self._load_fit(threaded=False))

    async def aload_fit(self) -> Fit1Result | None:
        """:meth:`load_fit` with the computation in a worker thread."""
        return await self._load_fit(threaded=True)

    async def _load_fit(self, threaded: bool) -> Fit1Result | None:
        key = self._fit_key()
        if key is None:
            self.fit = None
            return None
        result = self._fits.get_recent(key)
        if result is None:
            try:
                with self.working():
                    result, _messages = await self._run(threaded, run_fit1, self.entry.job, key[1])
            except Exception:  # noqa: BLE001 - the effects table then simply has no variance explained
                return None
            self._fits.put(key, result)
        if key == self._fit_key():
            self.fit = result
        return result

    def load_all_phenotypes(self) -> ScanResult | None:
        """Scan every phenotype with the shown scan's settings, for the heat map (memoised)."""
        return run_now(self._load_all(threaded=False))

    async def aload_all_phenotypes(self) -> ScanResult | None:
        """:meth:`load_all_phenotypes` with the scan in a worker thread."""
        return await self._load_all(threaded=True)

    async def _load_all(self, threaded: bool) -> ScanResult | None:
        key = self._all_key()
        if key is None:
            return None
        result = self._all.get_recent(key)
        if result is None:
            data = self.scan.explorer.model_data()
            if data is None:
                return None
            try:
                with self.working():
                    result, messages = await self._run(threaded, run_all_phenotypes, self.entry.job, data.phenotypes)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                self.notify("error", f"the phenotypes could not all be scanned for the heat map: {exc}")
                return None
            self._all.put(key, result)
            self.notify_all("warning", messages, about="about the scan of every phenotype")
        if key == self._all_key():
            self.all_scan = result
        return result

    async def aupdate(self) -> None:
        """Load what the view shows for the current scan, zoom and marker (each step in a worker thread)."""
        await asyncio.gather(self.aload_effects(), self.aload_fit())
