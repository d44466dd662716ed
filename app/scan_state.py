"""The genome-scan tab's state: genotypes, scan settings, results and the selected marker.

:class:`ScanState` is a :class:`param.Parameterized` object beside the
session's :class:`~app.state.ExplorerState`: the phenotype, the ML/REML
choice and the covariate choice come from there (the sidebar), and this state
adds the genotypes (the bundled example's genotype probabilities or dosages,
or the user's uploads), leave-one-chromosome-out kinships on or off, the
number of permutations, the scan result and the marker the user picked. It
imports neither panel nor holoviews, so it can be driven and tested without a
browser. Every number comes from :func:`lmmcore.scan.scan`; this module only
selects, caches and reshapes.

Scans run when asked (:meth:`ScanState.refresh`, or :meth:`ScanState.arefresh`
in a worker thread), not whenever a setting changes: the view asks while its
tab is on screen (:attr:`ScanState.active`), so sessions that never open the
tab never scan. Results are memoised per (phenotype, method, LOCO,
covariates, permutations, data set, genotypes), so switching LOCO or the
phenotype back is a look-up.

The jobs themselves (a scan, reading uploaded genotypes) are pure functions
in :mod:`app.scan_jobs`; the genome axis is :mod:`app.genome` and the
effects at a marker :mod:`app.effects` (their names are re-exported here).
A file that cannot be used leaves the genotypes and the results in use as
they were, and says why in :attr:`ScanState.notice`; a scan that cannot run
says why, and what to do, in :attr:`ScanState.problem`, which the tab shows.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import param

from lmmcore import LMMData, LMMInputError
from lmmcore.genotypes import Genotypes, read_dosages, read_genoprobs
from lmmcore.scan import ScanResult

from .base import SessionState, run_now
from .data import display_name, example_files, example_folder, max_upload_bytes, too_large_message
from .effects import EffectData, effect_data
from .genome import LOD_COLUMNS, GenomeLayout, genome_layout, lod_frame
from .messages import engine_messages
from .scan_jobs import (
    _PLINK,
    EXAMPLE_SOURCES,
    GENOTYPE_FILES,
    MAX_CACHED_SCANS,
    MAX_PERMUTATIONS,
    PERMUTATION_CHOICES,
    PERMUTATION_SEED,
    THRESHOLD_ALPHA,
    TOP_PEAKS,
    UPLOAD_CARD,
    UPLOADED,
    GenotypeJob,
    PreparedGenotypes,
    ScanEntry,
    ScanJob,
    ScanKey,
    _is_text,
    check_shared_ids,
    genotype_kinship,
    make_job,
    prepare_genotypes,
    prepare_upload,
    run_scan,
    scan_problem,
)
from .state import ExplorerState
from . import scan_jobs


#: The scan's state, and (re-exported, for the views and tests) the jobs, layout and effect data it uses.
__all__ = sorted(
    {"ScanState", "GenomeLayout", "EffectData", "genome_layout", "lod_frame", "effect_data"}
    | set(scan_jobs.__all__) - {"UPLOAD_CARD", "scan_problem"}
)


# --------------------------------------------------------------------------- the state


class ScanState(SessionState):
    """The genome-scan tab of one dashboard session.

    Parameters are the user's choices and the current result; the phenotype,
    method, covariates and phenotype transform follow :attr:`explorer` (the
    sidebar). Messages for the user go to :attr:`notice`; why the scan asked
    for cannot run goes to :attr:`problem`.
    """

    explorer = param.ClassSelector(class_=ExplorerState, doc="The session's main state (data, phenotype, method).")
    genotype_source = param.Selector(
        default="genoprobs", objects=list(EXAMPLE_SOURCES), doc="Which genotypes are scanned (example or upload)."
    )
    genotypes = param.ClassSelector(class_=Genotypes, default=None, allow_None=True, doc="The genotypes in use.")
    genotype_label = param.String(default="no genotypes loaded", doc="Where the genotypes came from.")
    genotype_messages = param.List(default=[], item_type=str, doc="Warnings from reading the genotypes.")
    loco = param.Boolean(default=True, doc="Leave-one-chromosome-out kinships (else one overall kinship).")
    n_perm = param.Integer(default=0, bounds=(0, MAX_PERMUTATIONS), doc="Permutations for the threshold (0: none).")
    exact = param.Boolean(default=False, doc=(
        "Also re-estimate h2 by ML at every marker (the exact likelihood-ratio scan, GEMMA -lmm 2), "
        "drawn beside the fixed-h2 LOD."))
    entry = param.ClassSelector(class_=ScanEntry, default=None, allow_None=True, doc="The scan shown.")
    selected_marker = param.String(default=None, allow_None=True, doc="The marker whose effects are shown.")
    pending = param.Dict(default={}, doc="Uploaded genotype files waiting for the rest of their set.")
    problem = param.String(default="", doc=(
        "Why the scan the settings ask for cannot run and what to do (empty when it can); the tab shows it."))
    active = param.Boolean(default=False, doc="The scan tab is on screen (the view scans only then).")

    def __init__(self, example_dir: str | Path | None = None, **params: Any) -> None:
        if params.get("explorer") is None:
            params["explorer"] = ExplorerState()
        super().__init__(**params)
        self.example_dir = example_dir
        self._sets: dict[str, PreparedGenotypes] = {}
        self._unavailable: set[str] = set()  # example sources that failed to load (said once)
        self._tokens: dict[str, int] = {}
        self._token_counter = itertools.count(1)
        self._data_token = 0
        self._cache: OrderedDict[ScanKey, ScanEntry] = OrderedDict()
        self._frames: dict[ScanKey, pd.DataFrame] = {}
        self._inflight: dict[ScanKey, asyncio.Future] = {}
        self._staged: dict[str, tuple[str, bytes]] = {}
        self.explorer.param.watch(self._data_changed, "dataset")
        self.param.watch(self._source_changed, "genotype_source")

    # ------------------------------------------------------------------ genotypes

    def _data_changed(self, _event=None) -> None:
        """New phenotype data: earlier scans, and why they could not run, no longer apply."""
        self._data_token += 1
        self._cache.clear()
        self._frames.clear()
        self.problem = ""

    def _source_changed(self, event: param.parameterized.Event) -> None:
        self._use_source(event.new)

    def _example(self, source: str) -> PreparedGenotypes | None:
        """Read one of the example's genotype files (None, with a notice, if it is not there)."""
        files = example_files(self.example_dir)
        path = getattr(files, source, None) if files is not None else None
        if path is None or files.map is None:
            folder = example_folder(self.example_dir).name
            wanted = "genoprobs.csv" if source == "genoprobs" else "genotypes.csv"
            self.notify(
                "warning",
                f"the example folder '{folder}' has no {wanted} and map.csv, so there are no example genotypes "
                "to scan; upload your own genotype and map files",
            )
            return None
        reader = read_genoprobs if source == "genoprobs" else read_dosages
        try:
            with engine_messages() as messages:
                genotypes = reader(path, files.map)
        except LMMInputError as exc:
            self.notify("error", str(exc))
            return None
        return PreparedGenotypes(genotypes, f"example data ({files.folder.name}/{path.name})", tuple(messages))

    def _use_source(self, source: str) -> bool:
        """Make the genotypes of ``source`` the ones in use (reading the example file the first time)."""
        prepared = self._sets.get(source)
        if prepared is None and source in EXAMPLE_SOURCES and source not in self._unavailable:
            prepared = self._example(source)
            if prepared is None:
                self._unavailable.add(source)
            else:
                self._sets[source] = prepared
                self._tokens[source] = next(self._token_counter)
        if prepared is None:
            self.param.update(genotypes=None, genotype_label="no genotypes loaded", genotype_messages=[])
            return False
        self.param.update(
            genotypes=prepared.genotypes,
            genotype_label=prepared.label,
            genotype_messages=list(prepared.messages),
        )
        return True

    def ensure_genotypes(self) -> bool:
        """Load the chosen genotypes if nothing is loaded yet; return whether genotypes are in use."""
        if self.genotypes is not None:
            return True
        return self._use_source(self.genotype_source)

    @property
    def sources(self) -> dict[str, str]:
        """The genotype sources that can be chosen: key -> label."""
        out = dict(EXAMPLE_SOURCES)
        if UPLOADED in self._sets:
            out[UPLOADED] = self._sets[UPLOADED].label
        return out

    # ------------------------------------------------------------------ scanning

    def current_key(self) -> ScanKey | None:
        """The key of the scan that the current settings ask for (None without data or genotypes)."""
        if self.genotypes is None:
            return None
        return self._key(self._tokens.get(self.genotype_source, 0))

    def _key(self, genotypes_token: int) -> ScanKey | None:
        """The key of the scan the settings ask for with the genotypes of ``genotypes_token`` (None without data)."""
        ex = self.explorer
        if ex.dataset is None or ex.phenotype is None:
            return None
        return ScanKey(
            phenotype=str(ex.phenotype),
            method=str(ex.method),
            loco=bool(self.loco),
            use_covariates=bool(ex.use_covariates and ex.has_covariates),
            n_perm=int(self.n_perm),
            data_token=self._data_token,
            genotypes_token=genotypes_token,
            refit=bool(self.exact),
            transform=str(ex.transform),
        )

    def _job(self, key: ScanKey) -> ScanJob:
        prepared = self._sets.get(self.genotype_source)
        x_chr, xcovar = ((prepared.x_chr, prepared.xcovar) if prepared is not None
                         and prepared.genotypes is self.genotypes else ((), None))
        return make_job(key, self.genotypes, self.explorer.model_data(), x_chr, xcovar)

    @property
    def is_current(self) -> bool:
        """Whether the scan shown is the one the current settings ask for."""
        return self.entry is not None and self.entry.key == self.current_key()

    def cached(self, key: ScanKey | None = None) -> ScanEntry | None:
        """The memoised scan for ``key`` (default: the current settings), or None."""
        key = key or self.current_key()
        entry = self._cache.get(key) if key is not None else None
        if entry is not None:
            self._cache.move_to_end(key)
        return entry

    def _store(self, entry: ScanEntry) -> None:
        self._cache[entry.key] = entry
        self._cache.move_to_end(entry.key)
        while len(self._cache) > MAX_CACHED_SCANS:
            old, _ = self._cache.popitem(last=False)
            self._frames.pop(old, None)
        self.notify_all("warning", entry.messages, about="about the scan")

    def _show(self, entry: ScanEntry | None) -> None:
        """Show ``entry`` and select a marker.

        The selected marker stays when the phenotype is the same (LOCO,
        permutations or genotype source changed) and it has a LOD in the new
        scan; otherwise the highest peak is selected.
        """
        marker = None
        if entry is not None:
            frame = self.lod_frame(entry)
            finite = frame[np.isfinite(frame["lod"].to_numpy(dtype=float))]
            previous = self.entry
            same = previous is not None and previous.phenotype == entry.phenotype
            if same and self.selected_marker in set(finite["marker"]):
                marker = self.selected_marker
            elif len(finite):
                marker = str(finite["marker"].iloc[int(np.argmax(finite["lod"].to_numpy()))])
        self.param.update(entry=entry, selected_marker=marker, **({"problem": ""} if entry is not None else {}))

    def _scan_failed(self, exc: Exception) -> None:
        """Say in the tab why the scan could not run, and what to do."""
        phenotype = self.explorer.phenotype
        if isinstance(exc, LMMInputError):
            text = (f"The genome scan of '{phenotype}' cannot run: {str(exc).rstrip('.')}. Change the settings, or "
                    f"upload other genotypes in {UPLOAD_CARD}.")
        elif isinstance(exc, MemoryError):
            text = f"The genome scan of '{phenotype}' needs more memory than this server has; use fewer markers."
        else:
            text = f"The genome scan of '{phenotype}' failed ({type(exc).__name__}: {exc})."
        self.problem = text

    def _wanted_key(self) -> ScanKey | None:
        """The settings to scan, or None (nothing shown; :attr:`problem` says why when it is not obvious)."""
        key = self.current_key() if self.ensure_genotypes() else None
        if key is None:
            self._show(None)
            ex = self.explorer
            if ex.dataset is not None and self.genotypes is None:
                self.problem = (f"There are no genotypes to scan: upload your own in {UPLOAD_CARD} (a genotype "
                                "probabilities or dosage CSV with its map CSV, or PLINK .bed, .bim and .fam files).")
            else:
                self.problem = ""
        return key

    def refresh(self) -> ScanEntry | None:
        """Show the scan for the current settings, running it here if it is not memoised.

        Returns
        -------
        ScanEntry or None
            None when there is nothing to scan or the scan cannot run
            (:attr:`problem` says why).
        """
        return run_now(self._refresh(threaded=False))

    async def arefresh(self) -> ScanEntry | None:
        """:meth:`refresh` with the scan in a worker thread (the server keeps answering meanwhile).

        A scan already running for the same settings is awaited, not started
        again; a result whose settings changed meanwhile is memoised but not
        shown.
        """
        return await self._refresh(threaded=True)

    async def _refresh(self, threaded: bool) -> ScanEntry | None:
        key = self._wanted_key()
        if key is None:
            return None
        entry = self.cached(key)
        if entry is None:
            running = self._inflight.get(key)
            if running is not None:
                try:
                    entry = await running
                except Exception:  # noqa: BLE001 - reported by the call that started it
                    return None
            else:
                job = self._job(key)
                problem = scan_problem(job, self.genotype_label, self.explorer.source_label)
                if problem:
                    self._show(None)
                    self.problem = problem
                    return None
                entry = await self._scan(key, job, threaded)
                if entry is None:
                    return None
        if key == self.current_key():
            self._show(entry)
        return entry

    async def _scan(self, key: ScanKey, job: ScanJob, threaded: bool) -> ScanEntry | None:
        """Run one scan (in a worker thread when ``threaded``), memoise it; None (and a problem) if it fails."""
        future = asyncio.ensure_future(asyncio.to_thread(run_scan, job)) if threaded else None
        if future is not None:
            self._inflight[key] = future
        try:
            with self.working():
                entry = await future if future is not None else run_scan(job)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            if key == self.current_key():
                self._show(None)
                self._scan_failed(exc)
            return None
        finally:
            self._inflight.pop(key, None)
        self._store(entry)
        return entry

    # ------------------------------------------------------------------ what the view shows

    @property
    def result(self) -> ScanResult | None:
        """The scan result shown."""
        return self.entry.result if self.entry is not None else None

    def lod_frame(self, entry: ScanEntry | None = None) -> pd.DataFrame:
        """The shown phenotype's LOD scores with genome-axis coordinates (see :func:`lod_frame`)."""
        entry = entry or self.entry
        if entry is None:
            return pd.DataFrame(columns=LOD_COLUMNS)
        if entry.key not in self._frames:
            self._frames[entry.key] = lod_frame(entry.result, entry.phenotype, self.layout(entry))
        return self._frames[entry.key]

    def layout(self, entry: ScanEntry | None = None) -> GenomeLayout:
        """The genome axis of the shown scan."""
        entry = entry or self.entry
        if entry is None:
            return genome_layout([], [])
        genotypes = entry.job.genotypes
        return genome_layout(genotypes.chromosome, genotypes.position)

    def threshold(self, alpha: float = THRESHOLD_ALPHA) -> float | None:
        """The genome-wide LOD threshold at level ``alpha`` from the permutations (None without them)."""
        entry = self.entry
        if entry is None or entry.result.permutations is None:
            return None
        return entry.result.permutations.threshold(entry.phenotype, alpha)

    def top_peaks(self, k: int = TOP_PEAKS) -> pd.DataFrame:
        """The highest marker of each chromosome, best first (at most ``k`` rows).

        Columns ``marker, chr, pos, lod, p_value`` and, with permutations,
        ``genome_p`` (the share of permutation maxima at least as high).
        """
        columns = ["marker", "chr", "pos", "lod", "p_value"]
        entry = self.entry
        if entry is None:
            return pd.DataFrame(columns=columns)
        peaks = entry.result.peaks(threshold=-np.inf)
        peaks = peaks[peaks["phenotype"] == entry.phenotype].head(k)
        out = peaks[columns].reset_index(drop=True).copy()
        out["marker"] = out["marker"].astype(str)
        out["chr"] = out["chr"].astype(str)
        perms = entry.result.permutations
        if perms is not None:
            out["genome_p"] = perms.genome_wide_p(entry.phenotype, out["lod"].to_numpy(dtype=float))
        return out

    def effect_data(self, marker: str | None = None) -> EffectData | None:
        """Phenotype by genotype and the fitted effects at ``marker`` (default: the selected one)."""
        marker = marker or self.selected_marker
        if self.entry is None or marker is None:
            return None
        return effect_data(self.entry, marker)

    def select_marker(self, marker: str | None) -> bool:
        """Select a marker of the shown scan; return whether it is one."""
        if self.entry is None or marker is None:
            return False
        if str(marker) not in set(self.lod_frame()["marker"]):
            return False
        self.selected_marker = str(marker)
        return True

    def nearest_marker(self, x: float | None, y: float | None = None) -> str | None:
        """The marker drawn nearest to a click at ``(x, y)`` on the LOD plot.

        Distances are measured in fractions of the genome length and of the
        highest LOD, so that a click near a point picks that point; without
        ``y`` only the genome position counts.
        """
        frame = self.lod_frame()
        frame = frame[np.isfinite(frame["lod"].to_numpy(dtype=float))]
        if frame.empty or x is None or not np.isfinite(x):
            return None
        xs = frame["x"].to_numpy(dtype=float)
        dx = (xs - float(x)) / max(float(np.ptp(xs)), 1e-12)
        distance = dx * dx
        if y is not None and np.isfinite(y):
            lods = frame["lod"].to_numpy(dtype=float)
            dy = (lods - float(y)) / max(float(np.nanmax(np.abs(lods))), 1e-12)
            distance = distance + dy * dy
        return str(frame["marker"].iloc[int(np.argmin(distance))])

    def select_nearest(self, x: float | None, y: float | None = None) -> bool:
        """Select the marker nearest to a click (see :meth:`nearest_marker`)."""
        return self.select_marker(self.nearest_marker(x, y))

    def scan_table(self) -> pd.DataFrame:
        """The shown scan as the engine returned it (for download)."""
        return self.entry.result.table.copy() if self.entry is not None else pd.DataFrame()

    def summary(self) -> dict[str, Any]:
        """What the shown scan is: phenotype, individuals, markers, kinship, null h2, time, threshold."""
        entry = self.entry
        if entry is None:
            return {}
        result, key = entry.result, entry.key
        genotypes = entry.job.genotypes
        null_h2 = result.null["h2"].to_numpy(dtype=float)
        return {
            "phenotype": key.phenotype,
            "method": key.method,
            "loco": key.loco,
            "covariates": key.use_covariates,
            "n": int(result.n_individuals),
            "markers": genotypes.n_markers,
            "chromosomes": len(genotypes.chromosomes),
            "kind": genotypes.kind,
            "null_h2": (float(np.nanmin(null_h2)), float(np.nanmax(null_h2))) if null_h2.size else (np.nan, np.nan),
            "seconds": entry.seconds,
            "n_perm": key.n_perm,
            "exact": key.refit,
            "threshold": self.threshold(),
            "messages": list(entry.messages),
            "current": self.is_current,
        }

    # ------------------------------------------------------------------ uploads

    def stage_genotype_file(self, kind: str, filename: str | None, content: bytes) -> None:
        """Keep an uploaded genotype file until the rest of its set arrives.

        Raises
        ------
        LMMInputError
            For an empty file, a file above the upload limit, or a CSV file that is not text.
        """
        if kind not in GENOTYPE_FILES:
            raise ValueError(f"unknown genotype file kind {kind!r}; expected one of {sorted(GENOTYPE_FILES)}")
        name = display_name(filename)
        what = GENOTYPE_FILES[kind]
        limit = max_upload_bytes()
        if len(content) > limit:
            raise LMMInputError(too_large_message(what, filename, len(content), limit))
        if not content:
            unit = "marker" if kind in ("map", "bim") else "individual"
            raise LMMInputError(f"the {what} file '{name}' is empty; it needs a header row and one row per {unit}")
        if kind != "bed" and not _is_text(content):
            raise LMMInputError(
                f"the {what} file '{name}' is not a text file (it contains binary data); save it as CSV "
                "(comma-separated text, UTF-8)"
            )
        if kind in ("genoprobs", "dosages"):
            self._staged.pop("dosages" if kind == "genoprobs" else "genoprobs", None)
        self._staged[kind] = (name, bytes(content))
        self.pending = {k: v[0] for k, v in self._staged.items()}

    def genotype_job(self, kind: str) -> GenotypeJob | None:
        """The complete set of staged files that ``kind`` belongs to, or None while some are missing."""
        staged = self._staged
        if kind in _PLINK:
            if all(k in staged for k in _PLINK):
                return GenotypeJob("plink", {k: staged[k] for k in _PLINK})
            return None
        fmt = "genoprobs" if "genoprobs" in staged else "dosages" if "dosages" in staged else None
        if fmt is None or "map" not in staged:
            return None
        return GenotypeJob(fmt, {fmt: staged[fmt], "map": staged["map"]})

    def _waiting_for(self, kind: str) -> str:
        if kind in _PLINK:
            missing = [f".{k}" for k in _PLINK if k not in self._staged]
            return f"now upload the PLINK {' and '.join(missing)} file{'s' if len(missing) > 1 else ''}"
        if kind == "map":
            return "now upload the genotype probabilities or dosage file"
        return "now upload the map file (marker, chr, pos)"

    def _upload_request(self) -> tuple[LMMData | None, ScanKey | None, int]:
        """A snapshot for :func:`prepare_upload`: the data, the scan to run first and the new genotypes' token."""
        token = next(self._token_counter)
        return self.explorer.model_data(), self._key(token), token

    def _install_upload(self, prepared: PreparedGenotypes, entry: ScanEntry | None, token: int) -> None:
        self._sets[UPLOADED] = prepared
        self._tokens[UPLOADED] = token
        self.param.genotype_source.objects = [*EXAMPLE_SOURCES, UPLOADED]
        if self.genotype_source == UPLOADED:
            self._use_source(UPLOADED)
        else:
            self.genotype_source = UPLOADED  # the watcher installs the genotypes
        if entry is not None and entry.key.data_token == self._data_token:
            self._store(entry)
            if entry.key == self.current_key():
                self._show(entry)
        g = prepared.genotypes
        # short: the Genotypes select and the scan's summary say what they are (a notification covers the page)
        files = prepared.files or prepared.label.removeprefix("uploaded: ")
        loaded = f"genotypes loaded from {files}: {g.n} individuals, {g.n_markers} markers"
        self.notify_all("warning" if prepared.messages else "info", [loaded, *prepared.messages],
                        about="about the genotypes")

    def _genotype_upload_failed(self, job: GenotypeJob | None, kind: str, filename: str | None,
                                exc: Exception) -> None:
        name = job.main_name if job is not None else display_name(filename)
        if isinstance(exc, LMMInputError):
            text = str(exc)
        elif isinstance(exc, MemoryError):
            text = f"the genotype file '{name}' is too large for the memory of this server"
        else:
            text = f"the {GENOTYPE_FILES.get(kind, 'genotype')} file '{display_name(filename)}' could not be used " \
                   f"({type(exc).__name__}: {exc})"
        text = text.rstrip().rstrip(".")
        self.notify("error", f"{text}. The genotypes and scan results in use have not changed.")

    def _staged_job(self, kind: str, filename: str | None, content: bytes) -> GenotypeJob | None:
        """Keep an uploaded file; the reading job once every file it needs is in, else None (with a message)."""
        try:
            self.stage_genotype_file(kind, filename, content)
        except LMMInputError as exc:
            self._genotype_upload_failed(None, kind, filename, exc)
            return None
        job = self.genotype_job(kind)
        if job is None:
            self.notify("info", f"received the {GENOTYPE_FILES[kind]} file '{display_name(filename)}'; "
                                 f"{self._waiting_for(kind)}")
        return job

    def receive_genotype_upload(self, kind: str, filename: str | None, content: bytes) -> bool:
        """Take one uploaded genotype file; when its set is complete, read, check and scan it.

        A set is a genotype probabilities or dosage CSV with a map CSV, or the
        three PLINK files. A file that cannot be used raises nothing: it sends
        an error notice and the genotypes and results in use stay.

        Parameters
        ----------
        kind : {"genoprobs", "dosages", "map", "bed", "bim", "fam"}
        filename : str
            As the browser reported it (shown in messages only).
        content : bytes

        Returns
        -------
        bool
            True when new genotypes were installed.
        """
        return run_now(self._receive_genotype_upload(kind, filename, content, threaded=False))

    async def areceive_genotype_upload(self, kind: str, filename: str | None, content: bytes) -> bool:
        """:meth:`receive_genotype_upload` with the reading and the first scan in a worker thread."""
        return await self._receive_genotype_upload(kind, filename, content, threaded=True)

    async def _receive_genotype_upload(self, kind: str, filename: str | None, content: bytes, threaded: bool) -> bool:
        job = self._staged_job(kind, filename, content)
        if job is None:
            return False
        data, key, token = self._upload_request()
        try:
            with self.working():
                prepared, entry = await self._run(threaded, prepare_upload, job, data, key)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self._genotype_upload_failed(job, kind, filename, exc)
            return False
        self._install_upload(prepared, entry, token)
        return True

    def receive_cross_genotypes(self, filename: str | None, content: bytes) -> bool:
        """Use an uploaded R/qtl2 cross zip as the genotypes (HMM probabilities; X with its genotypes and covariates).

        A bad file sends an error notice naming it; the genotypes and results
        in use stay. Returns whether the cross's genotypes are in use.
        """
        return run_now(self._receive_cross_genotypes(filename, content, threaded=False))

    async def areceive_cross_genotypes(self, filename: str | None, content: bytes) -> bool:
        """:meth:`receive_cross_genotypes` with reading, the HMM and the first scan in a worker thread."""
        return await self._receive_cross_genotypes(filename, content, threaded=True)

    async def _receive_cross_genotypes(self, filename: str | None, content: bytes, threaded: bool,
                                       cross=None) -> bool:
        from .cross_data import prepare_cross_scan, prepare_cross_upload

        data, key, token = self._upload_request()
        try:
            with self.working():
                if cross is not None:
                    prepared, entry = await self._run(threaded, prepare_cross_scan, cross, data, key)
                else:
                    prepared, entry = await self._run(threaded, prepare_cross_upload, filename, content, data, key)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self._genotype_upload_failed(None, "cross", filename, exc)
            return False
        self._install_upload(prepared, entry, token)
        return True

    def use_cross_in_use(self) -> bool:
        """Scan the genotype probabilities of the cross the data in use came from (no upload; X included)."""
        return run_now(self._use_cross_in_use(threaded=False))

    async def ause_cross_in_use(self) -> bool:
        """:meth:`use_cross_in_use` with the first scan in a worker thread."""
        return await self._use_cross_in_use(threaded=True)

    async def _use_cross_in_use(self, threaded: bool) -> bool:
        cross = self.explorer.cross
        if cross is None:
            self.notify("error", "the data in use did not come from a cross; upload a cross zip in the sidebar")
            return False
        return await self._receive_cross_genotypes(cross.name, b"", threaded, cross=cross)

    # ------------------------------------------------------------------ the genotypes' kinship for the heritability fits

    def use_genotype_kinship(self) -> bool:
        """Fit the phenotypes in use with the kinship of the genotypes in use (R/qtl2's, or GCTA's for dosages).

        Returns whether the new kinship is in use; nothing changes (and a
        notice says why) otherwise.
        """
        return run_now(self._use_genotype_kinship(threaded=False))

    async def ause_genotype_kinship(self) -> bool:
        """:meth:`use_genotype_kinship` with the kinship and the fits computed in a worker thread."""
        return await self._use_genotype_kinship(threaded=True)

    async def _use_genotype_kinship(self, threaded: bool) -> bool:
        if not self.ensure_genotypes():
            self.notify("error", f"there are no genotypes to compute a kinship from: upload them in {UPLOAD_CARD}")
            return False
        genotypes, label = self.genotypes, self.genotype_label
        try:
            with self.working():
                table, messages = await self._run(threaded, genotype_kinship, genotypes)
        except Exception as exc:  # noqa: BLE001
            self.notify("error", f"the kinship of the genotypes ({label}) could not be computed: {exc}")
            return False
        self.notify_all("warning", messages, about="about the genotypes' kinship")
        name = f"kinship of {label.removeprefix('uploaded: ').removeprefix('example: ')}"
        if threaded:
            return await self.explorer.ause_kinship(table, name)
        return self.explorer.use_kinship(table, name)
