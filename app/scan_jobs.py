"""One genome scan or one genotype upload as a job: its inputs as a frozen snapshot, and the pure function that runs it.

Nothing here touches a session's state, so every job may run in a worker
thread. Every number comes from :func:`lmmcore.scan.scan` (and, after the
scan, from :func:`lmmcore.scan1coef`, :func:`lmmcore.scan1blup` and
:func:`lmmcore.fit1` with the scan's own phenotype, covariates, kinship and
method); uploaded genotype
CSV files are read from memory by the engine's readers, given the user's file
names for their messages. Only PLINK files go through a temporary directory
(the PLINK reader needs files on disk; names chosen by :mod:`tempfile`, never
the user's), which is removed whatever happens; messages name the user's
files, never the temporary ones.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lmmcore import (
    EffectsResult,
    Fit1Result,
    LMMData,
    LMMInputError,
    allele_probs,
    compute_kinship,
    fit1,
    kinship_from_genoprobs,
    scan1blup,
    scan1coef,
    select_chromosomes,
)
from lmmcore.genotypes import Genotypes, read_dosages, read_genoprobs, read_plink
from lmmcore.scan import ScanResult, scan

from .messages import engine_messages

__all__ = [
    "EXAMPLE_SOURCES",
    "UPLOADED",
    "GENOTYPE_FILES",
    "PERMUTATION_CHOICES",
    "PERMUTATION_SEED",
    "THRESHOLD_ALPHA",
    "UPLOAD_CARD",
    "ScanKey",
    "ScanJob",
    "ScanEntry",
    "GenotypeJob",
    "PreparedGenotypes",
    "run_scan",
    "make_job",
    "prepare_genotypes",
    "prepare_upload",
    "check_shared_ids",
    "genotype_kinship",
    "scan_problem",
    "shared_individuals",
    "EffectsKey",
    "run_effects",
    "run_fit1",
    "run_all_phenotypes",
    "uses_founder_effects",
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
#: Individuals needed in common between the genotypes and the phenotypes.
MIN_SHARED = 3

#: Where the user uploads genotypes (named in messages that ask for them).
UPLOAD_CARD = "the “Your own genotypes” card (below the scan settings, on the right of this tab)"


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
    transform: str = "none"


@dataclass(frozen=True)
class ScanJob:
    """What one scan needs (a snapshot, safe to hand to a worker thread).

    Attributes
    ----------
    key : ScanKey
    genotypes : Genotypes
    phenotype : Series
        The phenotype as fitted (transformed, if a transform is chosen),
        indexed by individual ID (NaN = missing).
    covariates : DataFrame or None
        As loaded (text columns become indicators in the engine).
    x_chr : tuple of str
        The X chromosome(s) of a cross (empty otherwise): scanned with
        their own genotype set and :attr:`xcovar` (the engine's ``x_chr``
        and ``xcovar`` of :func:`lmmcore.scan.scan`, R/qtl2's
        ``scan1(..., Xcovar = get_x_covar(cross))``); their effects and
        ``fit1`` take :attr:`xcovar` as ``nullcovar``.
    xcovar : DataFrame or None
        The cross's X covariates (:func:`lmmcore.x_covariates`, R/qtl2's
        ``get_x_covar``), indexed by ID.
    """

    key: ScanKey
    genotypes: Genotypes
    phenotype: pd.Series
    covariates: pd.DataFrame | None
    x_chr: tuple[str, ...] = ()
    xcovar: pd.DataFrame | None = field(default=None, compare=False)

    def x_options(self) -> dict:
        """The ``x_chr``/``xcovar`` arguments of :func:`lmmcore.scan.scan` (none without an X chromosome)."""
        return {"x_chr": self.x_chr, "xcovar": self.xcovar} if self.x_chr else {}

    def kinship(self):
        """The ``kinship=`` of the effects and ``fit1``: as ``lmmcore effects/fit1 --cross`` compute it.

        ``"loco"`` or ``"overall"`` (the engine computes them from the
        genotypes); with a cross's X chromosome and chromosomes of their own
        genotype sets, the matrices of :func:`lmmcore.cross_cli.kinship_for_scan`
        (R/qtl2's ``calc_kinship`` of the allele probabilities, X included;
        X's LOCO kinship is the autosomes'), the very ones the command line
        passes: where a covariate is spanned by the X genotypes (sex), the
        genotype column left out then is the CLI's. The scan itself passes
        ``"loco"``/``"overall"``, which the engine turns into the same
        kinships (lazily, two n x n matrices at a time; LODs equal to the
        CLI's to 1e-8, ``tests/test_app_cross_x.py``).
        """
        mode = "loco" if self.key.loco else "overall"
        if not self.x_chr:
            return mode
        from lmmcore.cross_cli import GenotypeInputs, kinship_for_scan

        inputs = GenotypeInputs(genotypes=self.genotypes, scanned=self.genotypes, left_out=(), x_chr=self.x_chr)
        return kinship_for_scan(inputs, mode, "standardized")

    def nullcovar(self, chromosome: str) -> pd.DataFrame | None:
        """The ``nullcovar`` of the effects and ``fit1`` on ``chromosome``: the X covariates on X, else None."""
        return self.xcovar if str(chromosome) in self.x_chr else None


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
    """Genotypes read and checked, ready to install.

    ``x_chr`` and ``xcovar``: a cross's X chromosome(s) and X covariates
    (see :class:`ScanJob`); empty and None for genotype files. ``files``:
    the uploaded file names alone, for short messages (``label`` also says
    what the genotypes are).
    """

    genotypes: Genotypes
    label: str
    messages: tuple[str, ...] = ()
    x_chr: tuple[str, ...] = ()
    xcovar: pd.DataFrame | None = field(default=None, compare=False)
    files: str = ""


def run_scan(job: ScanJob) -> ScanEntry:
    """Run :func:`lmmcore.scan.scan` for one job and time it (pure; may run in a worker thread).

    The kinship is computed by the engine from the job's genotypes:
    leave-one-chromosome-out (``kinship="loco"``) or one overall matrix
    (``kinship="overall"``); permutations use :data:`PERMUTATION_SEED`.
    A cross's X chromosome (:attr:`ScanJob.x_chr`) is scanned as ``lmmcore
    scan --cross`` scans it: its own genotype set, the X covariates in its
    null and alternative models, kinships from the allele probabilities
    (R/qtl2's ``calc_kinship``; X's LOCO kinship is the autosomes').

    Raises
    ------
    LMMInputError
        Whatever the engine refuses (too few individuals in common, ...).
    """
    key = job.key
    started = time.perf_counter()
    with engine_messages() as messages:
        result = scan(
            job.genotypes,
            job.phenotype.to_frame(key.phenotype),
            job.covariates,
            kinship="loco" if key.loco else "overall",
            method=key.method,
            n_perm=key.n_perm,
            seed=PERMUTATION_SEED,
            refit=key.refit,
            **job.x_options(),
        )
    seconds = time.perf_counter() - started
    return ScanEntry(job=job, result=result, seconds=seconds, messages=tuple(messages))


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

    Genotype probabilities and dosages are read from memory; messages name
    the user's files (see :func:`_read_plink_upload` for PLINK files).

    Raises
    ------
    LMMInputError
        Whatever the reader finds wrong.
    """
    if job.format == "plink":
        return _read_plink_upload(job)
    reader = read_genoprobs if job.format == "genoprobs" else read_dosages
    (name, content), (map_name, map_content) = job.files[job.format], job.files["map"]
    with engine_messages() as messages:
        genotypes = reader(content, map_content, name=name, map_name=map_name)
    return PreparedGenotypes(genotypes, job.label, tuple(messages), files=job.label.removeprefix("uploaded: "))


def _read_plink_upload(job: GenotypeJob) -> PreparedGenotypes:
    """Read uploaded PLINK files: :func:`lmmcore.genotypes.read_plink` needs them on disk.

    The files are written to a fresh temporary directory, read, and the
    directory is removed whatever happens. The reader's messages name the
    temporary paths; they are replaced by the user's file names.
    """
    with tempfile.TemporaryDirectory(prefix="lmm-genotypes-") as folder:
        prefix = Path(folder) / "upload"
        rename = {folder: "the upload", str(prefix): "/".join(job.files[k][0] for k in _PLINK)}
        for kind in _PLINK:
            name, content = job.files[kind]
            path = prefix.with_suffix("." + kind)
            path.write_bytes(content)
            rename[str(path)] = name
        with engine_messages(rename) as messages:
            try:
                genotypes = read_plink(prefix)
            except LMMInputError as exc:
                raise LMMInputError(messages.rename(str(exc))) from None
    return PreparedGenotypes(replace(genotypes, source=job.main_name), job.label, tuple(messages),
                             files=job.label.removeprefix("uploaded: "))


def make_job(key: ScanKey, genotypes: Genotypes, data: LMMData, x_chr: tuple[str, ...] = (),
             xcovar: pd.DataFrame | None = None) -> ScanJob:
    """The inputs of the scan ``key`` asks for, taken from ``data`` (the phenotype data in use).

    ``x_chr`` and ``xcovar``: a cross's X chromosome(s) and X covariates (:class:`ScanJob`).
    """
    return ScanJob(
        key=key,
        genotypes=genotypes,
        phenotype=data.phenotypes[key.phenotype].copy(),
        covariates=data.covariates if key.use_covariates else None,
        x_chr=tuple(x_chr),
        xcovar=xcovar if x_chr else None,
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


def shared_individuals(genotypes: Genotypes, phenotype: pd.Series) -> int:
    """How many individuals have both genotypes and an observed value of ``phenotype``."""
    observed = phenotype.index[phenotype.notna().to_numpy()].astype(str)
    return int(pd.Index(genotypes.ids).isin(observed).sum())


def scan_problem(job: ScanJob, genotype_label: str, data_label: str) -> str:
    """Why the scan of ``job`` cannot run, and what to do, or ``""`` when it can (a cheap check before the scan)."""
    shared = shared_individuals(job.genotypes, job.phenotype)
    if shared >= MIN_SHARED:
        return ""
    observed = job.phenotype.dropna()
    g_ids, p_ids = job.genotypes.ids, observed.index.astype(str)
    example = (f" (genotype IDs look like '{g_ids[0]}', phenotype IDs like '{p_ids[0]}')"
               if len(g_ids) and len(p_ids) else "")
    return (
        f"The genome scan of '{job.key.phenotype}' cannot run: the genotypes in use ({genotype_label}, "
        f"{job.genotypes.n} individuals) and the phenotype data ({data_label}, {observed.size} individuals with a "
        f"value) have {shared} individual{'' if shared == 1 else 's'} in common{example}, and a scan needs at "
        f"least {MIN_SHARED}. Upload the genotypes of these individuals, with the same IDs in the first column, in "
        f"{UPLOAD_CARD}: a genotype probabilities or dosage CSV with its map CSV, or the PLINK .bed, .bim and .fam "
        "files."
    )


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




# --------------------------------------------------------------------------- after the scan


@dataclass(frozen=True)
class EffectsKey:
    """What the effects along one chromosome depend on: the scan (phenotype included), the chromosome, the kind."""

    scan: ScanKey
    chromosome: str
    kind: str = "coef"


#: Genotype sets larger than this (DO and HS: 36 genotypes) get their effects per founder (allele probabilities).
MAX_GENOTYPE_EFFECTS = 8


def uses_founder_effects(genotypes: Genotypes) -> bool:
    """Whether effects are reported per founder: multi-parent genotype probabilities (R/qtl2 plots DO by founder)."""
    return genotypes.kind == "genoprobs" and len(genotypes.genotype_names) > MAX_GENOTYPE_EFFECTS


def _effect_args(job: ScanJob, chromosome: str) -> tuple[tuple, dict]:
    """The scan's own inputs for the effect functions (same phenotype, covariates, kinship and method).

    Multi-parent probabilities become founder (allele) probabilities
    (:func:`lmmcore.allele_probs`, R/qtl2's ``genoprob_to_alleleprob``), as
    R/qtl2's users do for ``scan1coef``; the kinship is then the scan's,
    computed from the scan's genotypes and passed in. On a cross's X
    chromosome the X covariates are the null model's ``nullcovar``
    (R/qtl2's ``scan1coef(pr[, "X"], y, k[["X"]], nullcovar = Xcovar)``, as
    ``lmmcore effects --cross ... --chr X``); ``"loco"``/``"overall"`` then
    come from the allele probabilities in the engine (R/qtl2's
    ``calc_kinship``), as the scan's.
    """
    key = job.key
    genotypes = job.genotypes
    kinship: object = job.kinship()
    if uses_founder_effects(genotypes):
        if key.loco:
            others = np.asarray(genotypes.chromosome) != str(chromosome)
            matrix = kinship_from_genoprobs(genotypes.probs[:, others], genotypes.genotype_names,
                                            allele_map=genotypes.allele_matrix()[1])
        else:
            matrix = compute_kinship(genotypes).matrix
        ids = [str(i) for i in genotypes.ids]
        kinship = pd.DataFrame(matrix, index=ids, columns=ids)
        genotypes = allele_probs(select_chromosomes(genotypes, [str(chromosome)]))
    args = (genotypes, job.phenotype.to_frame(key.phenotype), job.covariates)
    return args, {"phenotype": key.phenotype, "kinship": kinship, "method": key.method,
                  "nullcovar": job.nullcovar(chromosome)}


def run_effects(job: ScanJob, chromosome: str, kind: str = "coef") -> tuple[EffectsResult, tuple[str, ...]]:
    """The effects along ``chromosome`` for the scan of ``job`` (pure; may run in a worker thread).

    ``kind="coef"``: :func:`lmmcore.scan1coef` (R/qtl2's ``scan1coef`` with
    SEs, sum-to-zero genotype effects); ``"blup"``: :func:`lmmcore.scan1blup`.
    The null h2 is re-estimated with the scan's method and kinship; for
    multi-parent crosses the effects are per founder (see :func:`_effect_args`).
    """
    if kind not in ("coef", "blup"):
        raise ValueError(f"kind must be 'coef' or 'blup', not {kind!r}")
    args, kwargs = _effect_args(job, str(chromosome))
    with engine_messages() as messages:
        if kind == "coef":
            result = scan1coef(*args, chromosome=str(chromosome), **kwargs)
        else:
            result = scan1blup(*args, chromosome=str(chromosome), **kwargs)
    return result, tuple(messages)


def run_fit1(job: ScanJob, marker: str) -> tuple[Fit1Result, tuple[str, ...]]:
    """:func:`lmmcore.fit1` at ``marker`` for the scan of ``job``: LOD, effects and the variance explained.

    With the genotypes of :func:`run_effects` (per founder for multi-parent crosses).
    """
    chromosome = str(job.genotypes.chromosome[job.genotypes.marker_index(str(marker))])
    args, kwargs = _effect_args(job, chromosome)
    with engine_messages() as messages:
        result = fit1(*args, marker=str(marker), **kwargs)
    return result, tuple(messages)


def run_all_phenotypes(job: ScanJob, phenotypes: pd.DataFrame) -> tuple[ScanResult, tuple[str, ...]]:
    """Scan every column of ``phenotypes`` with the settings of ``job`` (no permutations; for the heat map)."""
    key = job.key
    with engine_messages() as messages:
        result = scan(
            job.genotypes,
            phenotypes,
            job.covariates,
            kinship="loco" if key.loco else "overall",
            method=key.method,
            refit=False,
            **job.x_options(),
        )
    return result, tuple(messages)


def genotype_kinship(genotypes: Genotypes) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The whole-genome kinship of ``genotypes`` labelled by ID (:func:`lmmcore.compute_kinship`), and its messages.

    Genotype probabilities give R/qtl2's ``calc_kinship`` of the allele
    probabilities (through the genotypes' map, X included), as the scan's kinships.
    """
    with engine_messages() as messages:
        kinship = compute_kinship(genotypes)
    ids = [str(i) for i in kinship.ids]
    return pd.DataFrame(kinship.matrix, index=ids, columns=ids), tuple(messages)
