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

Uploaded genotype files are written to a temporary directory (names chosen
by :mod:`tempfile`, never the user's), read by the engine's readers
(:func:`lmmcore.genotypes.read_genoprobs`, :func:`~lmmcore.genotypes.read_dosages`,
:func:`~lmmcore.genotypes.read_plink`), and the directory is removed whatever
happens. A file that cannot be used leaves the genotypes and the results in
use as they were, and says why in :attr:`ScanState.notice`.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import param

from lmmcore import LMMData, LMMInputError, LMMWarning
from lmmcore.genotypes import Genotypes, read_dosages, read_genoprobs, read_plink, sort_chromosomes
from lmmcore.scan import ScanResult, scan

from .data import display_name, example_files, example_folder, max_upload_bytes, too_large_message
from .state import ExplorerState
from .warning_capture import collect_warnings

__all__ = [
    "EXAMPLE_SOURCES",
    "UPLOADED",
    "GENOTYPE_FILES",
    "PERMUTATION_CHOICES",
    "PERMUTATION_SEED",
    "THRESHOLD_ALPHA",
    "ScanKey",
    "ScanJob",
    "ScanEntry",
    "GenomeLayout",
    "EffectData",
    "GenotypeJob",
    "PreparedGenotypes",
    "ScanState",
    "genome_layout",
    "lod_frame",
    "effect_data",
    "run_scan",
    "make_job",
    "prepare_genotypes",
    "prepare_upload",
    "check_shared_ids",
]

#: The bundled example's genotype files, by source key (label shown to the user).
EXAMPLE_SOURCES: dict[str, str] = {
    "genoprobs": "example: genotype probabilities (genoprobs.csv)",
    "dosages": "example: allele dosages (genotypes.csv)",
}
#: Source key of the user's uploaded genotypes.
UPLOADED = "upload"

#: Genotype files a user can upload: kind -> what it is called in messages.
GENOTYPE_FILES: dict[str, str] = {
    "genoprobs": "genotype probabilities",
    "dosages": "dosage",
    "map": "map",
    "bed": "PLINK .bed",
    "bim": "PLINK .bim",
    "fam": "PLINK .fam",
}
_PLINK = ("bed", "bim", "fam")
_TEMP_NAMES = {
    "genoprobs": "genotypes.csv", "dosages": "genotypes.csv", "map": "map.csv",
    "bed": "upload.bed", "bim": "upload.bim", "fam": "upload.fam",
}

#: Numbers of permutations offered (0: none, no threshold).
PERMUTATION_CHOICES = (0, 100, 200, 500, 1000)
#: The largest number of permutations accepted.
MAX_PERMUTATIONS = 10_000
#: Seed of the permutations, so that a threshold does not move when the scan is repeated.
PERMUTATION_SEED = 1
#: Level of the genome-wide threshold drawn on the LOD plot.
THRESHOLD_ALPHA = 0.05
#: Rows of the top-peaks table (the highest marker of each chromosome, best first).
TOP_PEAKS = 5
#: Scan results kept per session (least recently used dropped first).
MAX_CACHED_SCANS = 32
#: Gap between chromosomes on the genome axis, as a fraction of the summed chromosome lengths.
CHROMOSOME_GAP = 0.02
#: Individuals needed in common between the genotypes and the phenotypes.
MIN_SHARED = 3


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ScanKey:
    """Everything a scan result depends on (its cache key).

    ``data_token`` and ``genotypes_token`` change whenever a new data set or
    new genotypes are installed.
    """

    phenotype: str
    method: str
    loco: bool
    use_covariates: bool
    n_perm: int
    data_token: int
    genotypes_token: int
    refit: bool = False


@dataclass(frozen=True)
class ScanJob:
    """What one scan needs (a snapshot, safe to hand to a worker thread).

    Attributes
    ----------
    key : ScanKey
    genotypes : Genotypes
    phenotype : Series
        The phenotype, indexed by individual ID (NaN = missing).
    covariates : DataFrame or None
        As loaded (text columns become indicators in the engine).
    """

    key: ScanKey
    genotypes: Genotypes
    phenotype: pd.Series
    covariates: pd.DataFrame | None


@dataclass(frozen=True)
class ScanEntry:
    """A finished scan.

    Attributes
    ----------
    job : ScanJob
        The inputs (the effect plot reads the genotypes and phenotype from it).
    result : ScanResult
        From :func:`lmmcore.scan.scan`.
    seconds : float
        Wall-clock time of the :func:`~lmmcore.scan.scan` call.
    messages : tuple of str
        The engine's warnings (e.g. individuals left out).
    """

    job: ScanJob
    result: ScanResult
    seconds: float
    messages: tuple[str, ...] = ()

    @property
    def key(self) -> ScanKey:
        return self.job.key

    @property
    def phenotype(self) -> str:
        return self.job.key.phenotype


@dataclass(frozen=True)
class GenomeLayout:
    """Where each chromosome sits on a genome-wide axis.

    A marker at position ``pos`` on chromosome ``c`` is drawn at
    ``x = start[c] + pos - first[c]``; chromosomes follow each other in
    natural order (``1, 2, ..., 10, X``) with a gap between them.

    Attributes
    ----------
    chromosomes : tuple of str
    first : ndarray
        Smallest marker position of each chromosome.
    start, end : ndarray
        Genome-axis extent of each chromosome.
    """

    chromosomes: tuple[str, ...]
    first: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @property
    def middle(self) -> np.ndarray:
        return 0.5 * (self.start + self.end)

    def ticks(self) -> list[tuple[float, str]]:
        """``(x, name)`` at the middle of each chromosome, for the axis labels."""
        return [(float(x), str(c)) for x, c in zip(self.middle, self.chromosomes)]

    def shaded(self) -> tuple[np.ndarray, np.ndarray]:
        """Extents (with half the gap on each side) of every other chromosome, for alternating shading."""
        half = 0.5 * self.gap
        return self.start[1::2] - half, self.end[1::2] + half

    @property
    def gap(self) -> float:
        return float(self.start[1] - self.end[0]) if self.start.size > 1 else 0.0

    def x(self, chromosome: Sequence[str], position) -> np.ndarray:
        """Genome-axis coordinates of markers."""
        index = pd.Index(self.chromosomes).get_indexer(np.asarray(chromosome, dtype=str))
        return self.start[index] + np.asarray(position, dtype=float) - self.first[index]


@dataclass(frozen=True)
class EffectData:
    """The phenotype by genotype at one marker, and the effects the scan fitted there.

    Attributes
    ----------
    phenotype, marker, chromosome : str
    position : float
    kind : str
        ``"genoprobs"`` (genotype = the most likely one) or ``"dosage"``
        (genotype = the dosage rounded to 0, 1 or 2).
    points : DataFrame
        ``id, genotype, value``: one row per individual in the scan.
    groups : DataFrame
        ``genotype, n, mean, sd, se`` for every genotype carried by someone,
        in genotype order (``se = sd / sqrt(n)``).
    effects : DataFrame
        ``effect, estimate, se``: the scan's fixed-h2 estimates (contrasts with
        the reference genotype, or the effect of one allele).
    reference : str or None
        The genotype the contrasts are against (None for dosages).
    lod, p_value, h2 : float
    n, df : int
    flag : str
    lod_exact, h2_exact : float
        With the exact scan: the likelihood-ratio LOD with h2 re-estimated
        by ML at this marker (GEMMA ``-lmm 2``) and that h2; NaN otherwise.
    """

    phenotype: str
    marker: str
    chromosome: str
    position: float
    kind: str
    points: pd.DataFrame
    groups: pd.DataFrame
    effects: pd.DataFrame
    reference: str | None
    lod: float
    p_value: float
    h2: float
    n: int
    df: int
    flag: str
    lod_exact: float = float("nan")
    h2_exact: float = float("nan")

    @property
    def genotype_order(self) -> tuple[str, ...]:
        return tuple(self.groups["genotype"])


@dataclass(frozen=True)
class GenotypeJob:
    """Uploaded genotype files forming a complete set (a snapshot for a worker thread).

    Attributes
    ----------
    format : {"genoprobs", "dosages", "plink"}
    files : dict
        ``kind -> (display name, bytes)``.
    """

    format: str
    files: dict[str, tuple[str, bytes]]

    @property
    def label(self) -> str:
        kinds = _PLINK if self.format == "plink" else (self.format, "map")
        return "uploaded: " + ", ".join(self.files[k][0] for k in kinds)

    @property
    def main_name(self) -> str:
        """The file that holds the genotypes (for messages)."""
        return self.files["bed" if self.format == "plink" else self.format][0]


@dataclass(frozen=True)
class PreparedGenotypes:
    """Genotypes read and checked, ready to install."""

    genotypes: Genotypes
    label: str
    messages: tuple[str, ...] = ()


# --------------------------------------------------------------------------- pure functions


def genome_layout(chromosome: Sequence[str], position) -> GenomeLayout:
    """Lay the chromosomes end to end in natural order (see :class:`GenomeLayout`).

    Each chromosome spans its markers' positions (at least 1% of the summed
    spans, so that a one-marker chromosome has a width); the gap between
    chromosomes is :data:`CHROMOSOME_GAP` of the summed spans.
    """
    chrom = np.asarray(chromosome, dtype=str)
    pos = np.asarray(position, dtype=float)
    names = tuple(sort_chromosomes(set(chrom.tolist())))
    if not names:
        empty = np.zeros(0)
        return GenomeLayout((), empty, empty, empty)
    codes = pd.Index(names).get_indexer(chrom)
    grouped = pd.Series(pos).groupby(codes)
    first = grouped.min().reindex(range(len(names))).to_numpy(dtype=float)
    last = grouped.max().reindex(range(len(names))).to_numpy(dtype=float)
    width = last - first
    total = float(width.sum())
    width = np.maximum(width, 0.01 * total if total > 0 else 1.0)
    gap = CHROMOSOME_GAP * float(width.sum())
    start = np.concatenate([[0.0], np.cumsum(width + gap)[:-1]])
    return GenomeLayout(names, first, start, start + width)


def lod_frame(result: ScanResult, phenotype: str, layout: GenomeLayout | None = None) -> pd.DataFrame:
    """One phenotype's scan in genome order with genome-axis coordinates.

    Returns
    -------
    DataFrame
        ``marker, chr, pos, x, lod, p_value, flag, lod_exact, h2_exact`` (one
        row per marker; LOD NaN for flagged markers). ``lod_exact`` and
        ``h2_exact`` are the exact scan's ``lod_lrt`` and ``h2_ml`` (h2
        re-estimated at every marker), NaN when the scan was not exact.
    """
    table = result.table
    rows = table[table["phenotype"] == phenotype]
    layout = layout or genome_layout(rows["chr"], rows["pos"])
    out = rows[["marker", "chr", "pos", "lod", "p_value", "flag"]].reset_index(drop=True).copy()
    out["chr"] = out["chr"].astype(str)
    out["marker"] = out["marker"].astype(str)
    out.insert(3, "x", layout.x(out["chr"], out["pos"]))
    refit = bool(result.refit)
    out["lod_exact"] = rows["lod_lrt"].to_numpy(dtype=float) if refit else np.nan
    out["h2_exact"] = rows["h2_ml"].to_numpy(dtype=float) if refit else np.nan
    return out


def _called_genotypes(genotypes: Genotypes, rows: np.ndarray, column: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each individual's genotype at one marker, and the genotype labels in order.

    Probabilities: the most likely genotype. Dosages: the dosage rounded to
    0, 1 or 2 (imputed dosages are rounded too).
    """
    if genotypes.kind == "genoprobs":
        names = tuple(genotypes.genotype_names)
        probs = genotypes.probs[rows, column, :]
        if np.isnan(probs).all():
            return np.full(rows.size, None, dtype=object), names
        return np.asarray(names, dtype=object)[np.argmax(probs, axis=1)], names
    dosage = genotypes.dosage[rows, column]
    if np.isnan(dosage).all():
        return np.full(rows.size, None, dtype=object), ("0", "1", "2")
    called = np.clip(np.rint(dosage), 0, 2).astype(int).astype(str).astype(object)
    return called, ("0", "1", "2")


def scan_individuals(job: ScanJob) -> pd.Index:
    """The individuals a scan of ``job`` uses, in genotype order (as :func:`lmmcore.scan.scan` aligns them)."""
    observed = job.phenotype.index[job.phenotype.notna().to_numpy()].astype(str)
    if job.covariates is not None:
        complete = job.covariates.index[job.covariates.notna().all(axis=1).to_numpy()].astype(str)
        observed = observed[observed.isin(complete)]
    ids = pd.Index(job.genotypes.ids)
    return ids[ids.isin(observed)]


def effect_data(entry: ScanEntry, marker: str) -> EffectData | None:
    """Phenotype by genotype at ``marker`` and the scan's fitted effects there (None if unknown)."""
    result, job = entry.result, entry.job
    table = result.table
    row = table[(table["phenotype"] == entry.phenotype) & (table["marker"].astype(str) == str(marker))]
    if row.empty:
        return None
    row = row.iloc[0]
    genotypes = job.genotypes
    column = genotypes.marker_index(str(marker))
    ids = scan_individuals(job)
    rows = pd.Index(genotypes.ids).get_indexer(ids)
    called, order = _called_genotypes(genotypes, rows, column)
    values = job.phenotype.copy()
    values.index = values.index.astype(str)
    points = pd.DataFrame({"id": ids.to_numpy(dtype=object), "genotype": called,
                           "value": values.loc[ids].to_numpy(dtype=float)})
    stats = points.dropna(subset=["genotype"]).groupby("genotype", sort=False)["value"].agg(["count", "mean", "std"])
    stats = stats.reindex([g for g in order if g in stats.index])
    groups = pd.DataFrame({
        "genotype": stats.index.astype(str),
        "n": stats["count"].to_numpy(dtype=int),
        "mean": stats["mean"].to_numpy(dtype=float),
        "sd": stats["std"].to_numpy(dtype=float),
    })
    groups["se"] = groups["sd"] / np.sqrt(groups["n"])
    names = list(result.effect_names)
    effects = pd.DataFrame({
        "effect": names,
        "estimate": [float(row[f"beta_{e}"]) for e in names],
        "se": [float(row[f"se_{e}"]) for e in names],
    })
    kind = genotypes.kind
    return EffectData(
        phenotype=entry.phenotype,
        marker=str(marker),
        chromosome=str(row["chr"]),
        position=float(row["pos"]),
        kind=kind,
        points=points,
        groups=groups,
        effects=effects,
        reference=str(genotypes.genotype_names[0]) if kind == "genoprobs" else None,
        lod=float(row["lod"]),
        p_value=float(row["p_value"]),
        h2=float(row["h2"]),
        n=int(row["n"]),
        df=int(row["df"]),
        flag=str(row["flag"]) if isinstance(row["flag"], str) else "",
        lod_exact=float(row["lod_lrt"]) if result.refit else float("nan"),
        h2_exact=float(row["h2_ml"]) if result.refit else float("nan"),
    )


def _lmm_messages(caught: list[warnings.WarningMessage], rename: dict[str, str] | None = None) -> tuple[str, ...]:
    """The LMMWarning texts among ``caught``, each once, with temporary paths replaced."""
    out: list[str] = []
    for w in caught:
        if issubclass(w.category, LMMWarning):
            text = _rename(str(w.message), rename or {})
            if text not in out:
                out.append(text)
    return tuple(out)


def _rename(text: str, rename: dict[str, str]) -> str:
    for old in sorted(rename, key=len, reverse=True):
        text = text.replace(old, rename[old])
    return text


def run_scan(job: ScanJob) -> ScanEntry:
    """Run :func:`lmmcore.scan.scan` for one job and time it (pure; may run in a worker thread).

    The kinship is computed by the engine from the job's genotypes:
    leave-one-chromosome-out (``kinship="loco"``) or one overall matrix
    (``kinship="overall"``); permutations use :data:`PERMUTATION_SEED`.

    Raises
    ------
    LMMInputError
        Whatever the engine refuses (too few individuals in common, ...).
    """
    key = job.key
    started = time.perf_counter()
    with collect_warnings() as caught:
        result = scan(
            job.genotypes,
            job.phenotype.to_frame(key.phenotype),
            job.covariates,
            kinship="loco" if key.loco else "overall",
            method=key.method,
            n_perm=key.n_perm,
            seed=PERMUTATION_SEED,
            refit=key.refit,
        )
    seconds = time.perf_counter() - started
    return ScanEntry(job=job, result=result, seconds=seconds, messages=_lmm_messages(caught))


def _is_text(content: bytes) -> bool:
    head = content[:65536]
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return len(head) == 65536 and exc.start >= len(head) - 4  # a character cut at the end of the sample
    return True


def prepare_genotypes(job: GenotypeJob) -> PreparedGenotypes:
    """Read an uploaded set of genotype files with the engine's readers (pure; may run in a worker thread).

    The files are written to a fresh temporary directory, read, and the
    directory is removed whatever happens. Messages name the user's files,
    never the temporary ones.

    Raises
    ------
    LMMInputError
        Whatever the reader finds wrong.
    """
    with tempfile.TemporaryDirectory(prefix="lmm-genotypes-") as folder:
        paths: dict[str, Path] = {}
        rename: dict[str, str] = {}
        for kind, (name, content) in job.files.items():
            path = Path(folder) / _TEMP_NAMES[kind]
            path.write_bytes(content)
            paths[kind] = path
            rename[str(path)] = name
        with collect_warnings() as caught:
            try:
                if job.format == "plink":
                    prefix = Path(folder) / "upload"
                    rename[str(prefix)] = "/".join(job.files[k][0] for k in _PLINK)
                    genotypes = read_plink(prefix)
                elif job.format == "genoprobs":
                    genotypes = read_genoprobs(paths["genoprobs"], paths["map"])
                else:
                    genotypes = read_dosages(paths["dosages"], paths["map"])
            except LMMInputError as exc:
                raise LMMInputError(_rename(str(exc), {**rename, folder: "the upload"})) from None
        messages = _lmm_messages(caught, {**rename, folder: "the upload"})
    return PreparedGenotypes(replace(genotypes, source=job.main_name), job.label, messages)


def make_job(key: ScanKey, genotypes: Genotypes, data: LMMData) -> ScanJob:
    """The inputs of the scan ``key`` asks for, taken from ``data`` (the phenotype data in use)."""
    return ScanJob(
        key=key,
        genotypes=genotypes,
        phenotype=data.phenotypes[key.phenotype].copy(),
        covariates=data.covariates if key.use_covariates else None,
    )


def prepare_upload(job: GenotypeJob, data: LMMData | None, key: ScanKey | None) -> tuple[PreparedGenotypes,
                                                                                        ScanEntry | None]:
    """Read uploaded genotypes, check them against ``data`` and scan them once for ``key``.

    Pure: it touches no state, so it may run in a worker thread. The scan is
    part of the check: genotypes that the engine cannot scan with the
    phenotype data in use are refused before anything changes.

    Raises
    ------
    LMMInputError
        From the reader, :func:`check_shared_ids` or the scan.
    """
    prepared = prepare_genotypes(job)
    check_shared_ids(prepared.genotypes, data, job.main_name)
    entry = None
    if key is not None and data is not None:
        entry = run_scan(make_job(key, prepared.genotypes, data))
    return prepared, entry


def check_shared_ids(genotypes: Genotypes, data: LMMData | None, name: str) -> None:
    """Refuse genotypes that share fewer than :data:`MIN_SHARED` individuals with the phenotype data.

    Raises
    ------
    LMMInputError
        Naming the genotype file, the number in common and examples of both kinds of ID.
    """
    if data is None:
        return
    shared = int(pd.Index(genotypes.ids).isin(pd.Index(data.ids).astype(str)).sum())
    if shared >= MIN_SHARED:
        return
    raise LMMInputError(
        f"the genotype file '{name}' has {genotypes.n} individuals and {shared} of them "
        f"{'is' if shared == 1 else 'are'} among the {data.n} individuals of the phenotype data in use "
        f"(genotype IDs look like '{genotypes.ids[0]}', phenotype IDs like '{data.ids[0]}'); a scan needs "
        f"at least {MIN_SHARED} individuals in common, so upload the genotypes of the same individuals, "
        "with the same IDs in the first column"
    )


# --------------------------------------------------------------------------- the state


class ScanState(param.Parameterized):
    """The genome-scan tab of one dashboard session.

    Parameters are the user's choices and the current result; the phenotype,
    method and covariates follow :attr:`explorer` (the sidebar). Messages for
    the user go to :attr:`notice`.
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
    notice = param.Dict(default=None, allow_None=True, doc="Latest message: level, text, serial.")
    busy = param.Boolean(default=False, doc="A scan or an upload is running.")
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
        self._busy_count = 0
        self._serial = itertools.count(1)
        self.explorer.param.watch(self._data_changed, "dataset")
        self.param.watch(self._source_changed, "genotype_source")

    # ------------------------------------------------------------------ genotypes

    def _data_changed(self, _event=None) -> None:
        """New phenotype data: earlier scans no longer apply."""
        self._data_token += 1
        self._cache.clear()
        self._frames.clear()

    def _source_changed(self, event: param.parameterized.Event) -> None:
        self._use_source(event.new)

    def _example(self, source: str) -> PreparedGenotypes | None:
        """Read one of the example's genotype files (None, with a notice, if it is not there)."""
        files = example_files(self.example_dir)
        path = getattr(files, source, None) if files is not None else None
        if path is None or files.map is None:
            folder = example_folder(self.example_dir).name
            wanted = "genoprobs.csv" if source == "genoprobs" else "genotypes.csv"
            self._notify(
                "warning",
                f"the example folder '{folder}' has no {wanted} and map.csv, so there are no example genotypes "
                "to scan; upload your own genotype and map files",
            )
            return None
        reader = read_genoprobs if source == "genoprobs" else read_dosages
        try:
            with collect_warnings() as caught:
                genotypes = reader(path, files.map)
        except LMMInputError as exc:
            self._notify("error", str(exc))
            return None
        return PreparedGenotypes(genotypes, f"example data ({files.folder.name}/{path.name})", _lmm_messages(caught))

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
        ex = self.explorer
        if ex.dataset is None or ex.phenotype is None or self.genotypes is None:
            return None
        return ScanKey(
            phenotype=str(ex.phenotype),
            method=str(ex.method),
            loco=bool(self.loco),
            use_covariates=bool(ex.use_covariates and ex.has_covariates),
            n_perm=int(self.n_perm),
            data_token=self._data_token,
            genotypes_token=self._tokens.get(self.genotype_source, 0),
            refit=bool(self.exact),
        )

    def _job(self, key: ScanKey) -> ScanJob:
        return make_job(key, self.genotypes, self.explorer.dataset)

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
        for text in entry.messages:
            self._notify("warning", text)

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
        self.param.update(entry=entry, selected_marker=marker)

    def _scan_failed(self, exc: Exception) -> None:
        phenotype = self.explorer.phenotype
        if isinstance(exc, LMMInputError):
            text = f"the genome scan of '{phenotype}' could not run: {exc}"
        elif isinstance(exc, MemoryError):
            text = f"the genome scan of '{phenotype}' needs more memory than this server has; use fewer markers"
        else:
            text = f"the genome scan of '{phenotype}' failed ({type(exc).__name__}: {exc})"
        self._notify("error", text)

    def _wanted_key(self) -> ScanKey | None:
        """The settings to scan, or None (nothing shown) when there are no genotypes or phenotype."""
        key = self.current_key() if self.ensure_genotypes() else None
        if key is None:
            self._show(None)
        return key

    def refresh(self) -> ScanEntry | None:
        """Show the scan for the current settings, running it here if it is not memoised.

        Returns
        -------
        ScanEntry or None
            None (with a notice) when there is nothing to scan or the engine refuses.
        """
        key = self._wanted_key()
        if key is None:
            return None
        entry = self.cached(key)
        if entry is None:
            self._begin()
            try:
                entry = run_scan(self._job(key))
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                self._scan_failed(exc)
                self._show(None)
                return None
            finally:
                self._end()
            self._store(entry)
        self._show(entry)
        return entry

    async def arefresh(self) -> ScanEntry | None:
        """:meth:`refresh` with the scan in a worker thread (the server keeps answering meanwhile).

        A scan already running for the same settings is awaited, not started
        again; a result whose settings changed meanwhile is memoised but not
        shown.
        """
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
                future = asyncio.ensure_future(asyncio.to_thread(run_scan, self._job(key)))
                self._inflight[key] = future
                self._begin()
                try:
                    entry = await future
                except Exception as exc:  # noqa: BLE001
                    if key == self.current_key():
                        self._scan_failed(exc)
                        self._show(None)
                    return None
                finally:
                    self._inflight.pop(key, None)
                    self._end()
                self._store(entry)
        if key == self.current_key():
            self._show(entry)
        return entry

    def _begin(self) -> None:
        self._busy_count += 1
        self.busy = True

    def _end(self) -> None:
        self._busy_count -= 1
        self.busy = self._busy_count > 0

    # ------------------------------------------------------------------ what the view shows

    @property
    def result(self) -> ScanResult | None:
        """The scan result shown."""
        return self.entry.result if self.entry is not None else None

    def lod_frame(self, entry: ScanEntry | None = None) -> pd.DataFrame:
        """The shown phenotype's LOD scores with genome-axis coordinates (see :func:`lod_frame`)."""
        entry = entry or self.entry
        if entry is None:
            return pd.DataFrame(columns=["marker", "chr", "pos", "x", "lod", "p_value", "flag", "lod_exact", "h2_exact"])
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
        ex = self.explorer
        key = None
        if ex.dataset is not None and ex.phenotype is not None:
            key = ScanKey(str(ex.phenotype), str(ex.method), bool(self.loco),
                          bool(ex.use_covariates and ex.has_covariates), int(self.n_perm), self._data_token, token,
                          refit=bool(self.exact))
        return ex.dataset, key, token

    def _install_upload(self, prepared: PreparedGenotypes, entry: ScanEntry | None, token: int) -> None:
        self._sets[UPLOADED] = prepared
        self._tokens[UPLOADED] = token
        self.param.genotype_source.objects = [*EXAMPLE_SOURCES, UPLOADED]
        if self.genotype_source == UPLOADED:
            self._use_source(UPLOADED)
        else:
            self.genotype_source = UPLOADED  # the watcher installs the genotypes
        for text in prepared.messages:
            self._notify("warning", text)
        if entry is not None and entry.key.data_token == self._data_token:
            self._store(entry)
            if entry.key == self.current_key():
                self._show(entry)
        g = prepared.genotypes
        self._notify(
            "info",
            f"genotypes loaded from {prepared.label.removeprefix('uploaded: ')}: {g.n} individuals, "
            f"{g.n_markers} markers on {len(g.chromosomes)} chromosome(s)",
        )

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
        self._notify("error", f"{text}. The genotypes and scan results in use have not changed.")

    def _staged_job(self, kind: str, filename: str | None, content: bytes) -> GenotypeJob | None:
        """Keep an uploaded file; the reading job once every file it needs is in, else None (with a message)."""
        try:
            self.stage_genotype_file(kind, filename, content)
        except LMMInputError as exc:
            self._genotype_upload_failed(None, kind, filename, exc)
            return None
        job = self.genotype_job(kind)
        if job is None:
            self._notify("info", f"received the {GENOTYPE_FILES[kind]} file '{display_name(filename)}'; "
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
        job = self._staged_job(kind, filename, content)
        if job is None:
            return False
        data, key, token = self._upload_request()
        self._begin()
        try:
            prepared, entry = prepare_upload(job, data, key)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self._genotype_upload_failed(job, kind, filename, exc)
            return False
        finally:
            self._end()
        self._install_upload(prepared, entry, token)
        return True

    async def areceive_genotype_upload(self, kind: str, filename: str | None, content: bytes) -> bool:
        """:meth:`receive_genotype_upload` with the reading and the first scan in a worker thread."""
        job = self._staged_job(kind, filename, content)
        if job is None:
            return False
        data, key, token = self._upload_request()
        self._begin()
        try:
            prepared, entry = await asyncio.to_thread(prepare_upload, job, data, key)
        except Exception as exc:  # noqa: BLE001
            self._genotype_upload_failed(job, kind, filename, exc)
            return False
        finally:
            self._end()
        self._install_upload(prepared, entry, token)
        return True

    # ------------------------------------------------------------------ messages

    def notify(self, level: str, text: str) -> None:
        """Send a message to the user (``level``: info, warning or error)."""
        self._notify(level, text)

    def _notify(self, level: str, text: str) -> None:
        self.notice = {"level": level, "text": text, "serial": next(self._serial)}
