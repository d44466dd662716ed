"""Genome scans with a linear mixed model: fixed-h2 LOD scores and exact per-marker tests.

At marker j the model adds the marker's genotype columns ``G_j`` to the
covariates,

    y = X b + G_j a + e,   var(e) = v (h K + (1 - h) I),

and tests ``a = 0``. Two scans are offered.

Fixed h2 (R/qtl2's ``scan1`` with a kinship; EMMAX)
    h is estimated once under the null (``a = 0``; per chromosome with
    leave-one-chromosome-out kinships) and held fixed at every marker:
    ``LOD = (n / 2) log10(RSS0 / RSS1)``, p-value ``P(chi2_df >= 2 ln(10) LOD)``
    (:mod:`lmmcore.fixed_scan`).

Exact (GEMMA ``-lmm 2`` and ``-lmm 1``)
    h is re-estimated at every marker: by maximum likelihood for the
    likelihood-ratio test ``2 (L1 - L0)`` against the null ML fit
    (chi-square p-value), and by REML for the Wald test
    ``F = a' S a / (df sigma2)`` on ``(df, n - p - df)`` degrees of freedom
    (:mod:`lmmcore.refit`).

The steps, one module each
--------------------------
1. where the kinships come from (overall, LOCO, given):
   :mod:`lmmcore.kinship_source`;
2. for every kinship and set of individuals with observed phenotypes
   (:func:`lmmcore.batch.missingness_patterns`), K is decomposed once
   (``K = U D U'``, :mod:`lmmcore.eigen`) and the null model fitted
   (:mod:`lmmcore.nullmodel`); patterns with a few missing individuals
   share one decomposition of K on all individuals instead, with an
   indicator covariate per missing individual (exact;
   :mod:`lmmcore.pattern_dummies`, :mod:`lmmcore.scan_groups`);
3. markers are processed in chunks: read, imputed, rotated and whitened
   (:mod:`lmmcore.markers`), tested at the null h2
   (:mod:`lmmcore.fixed_scan`), with h2 re-estimated
   (:mod:`lmmcore.refit`), and under permutations (:mod:`lmmcore.permute`);
4. the long table is assembled here.

This module validates the inputs (:class:`ScanInputs`), plans the work
(:class:`_Plan`: patterns, designs, permutations, kinship groups), runs it,
and assembles the :class:`ScanResult`.

Memory: one kinship (and its eigenvectors) at a time; leave-one-chromosome-out
kinships are formed one chromosome at a time. The markers and traits of each
(kinship, missingness pattern) are cut into tasks of a chunk of markers x a
block of traits (:mod:`lmmcore.scan_tasks`) that each hold at most ``memory``
bytes (default min(1/4 of the available memory, 1 GiB); the bound is
:func:`lmmcore.scan_tasks.task_bytes`, about
``8 [m T (8 q^2 + 3 p q + 13 q + 18) + 5 m n q + T (p + 3) n]`` bytes for m
markers and T traits): never a traits x markers x columns array. What the
output keeps comes on top: the long table holds every row; a
:mod:`lmmcore.scan_sink` summary about one chromosome's LODs per trait.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from .batch import missingness_patterns
from .constants import CHUNK_ELEMENTS
from .design import design_matrix
from .errors import LMMInputError, Report, report, reporting
from .genotypes import Genotypes
from .io import LMMData
from .kinship_source import KinshipSource, kinship_source
from .scan_inputs import ScanInputs, align_ids, check_phenotype, validate_inputs
from .scan_result import ScanResult
from .markers import (
    FLAG_ALL_MISSING,
    FLAG_COLLINEAR,
    FLAG_MONOMORPHIC,
    FLAG_RANK_DEFICIENT,
    marker_columns,
)
from .nullmodel import FULL_ML_CAP
from .permute import (
    DEFAULT_ALPHAS,
    permutation_indices,
    permutation_result,
    strata_labels,
)
from .xchr import (
    chromosome_lengths,
    select_chromosomes,
    x_scan_covariates,
    x_flags,
    xsp_thresholds,
)
from .xchr import n_perm_x as n_perm_x_count
from .prefetch import run_ahead
from .scan_groups import group_contexts
from .scan_sink import PartSink, ScanSink, TableSink
from .scan_tasks import (
    Executor,
    GroupContext,
    ScanPiece,
    ScanTask,
    TaskResult,
    memory_budget,
    scan_task,
    serial_executor,
)

__all__ = [
    "ScanResult",
    "ScanInputs",
    "scan",
    "scan_task",
    "GroupContext",
    "ScanTask",
    "ScanPiece",
    "TaskResult",
    "Executor",
    "serial_executor",
    "marker_columns",
    "FLAG_MONOMORPHIC",
    "FLAG_COLLINEAR",
    "FLAG_ALL_MISSING",
    "FLAG_RANK_DEFICIENT",
    "FULL_ML_CAP",
    "CHUNK_ELEMENTS",
    "REFIT_LOG_LAMBDA",
    "REFIT_NODES",
    "REFIT_INTERPOLATION_TOL",
    "REFIT_PEAK_MARGIN",
    "REFIT_TOL",
]

#: :mod:`lmmcore.refit`'s settings, re-exported on first use (PEP 562): only ``refit=True`` imports that module.
_REFIT_NAMES = ("REFIT_LOG_LAMBDA", "REFIT_NODES", "REFIT_INTERPOLATION_TOL", "REFIT_PEAK_MARGIN", "REFIT_TOL")


def __getattr__(name: str):
    if name in _REFIT_NAMES:
        from . import refit

        return getattr(refit, name)
    raise AttributeError(f"module 'lmmcore.scan' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_REFIT_NAMES))


ProgressCallback = Callable[[int, int, str], None]
_STAGES = ("kinship", "eigen", "null", "rotate", "scan", "refit", "permute")


def scan(
    genotypes: Genotypes,
    phenotypes: pd.DataFrame | pd.Series | LMMData,
    covariates: pd.DataFrame | None = None,
    *,
    kinship="loco",
    kind: str = "standardized",
    method: str = "reml",
    refit: bool = False,
    lrt_likelihood: str = "full",
    select: Sequence[str] | None = None,
    n_perm: int = 0,
    perm_strata=None,
    seed: int | None = None,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    chunk: int | None = None,
    progress: ProgressCallback | None = None,
    report: Report | None = None,
    xcovar: pd.DataFrame | None = None,
    x_chr: Sequence[str] = (),
    perm_x_separate: bool = False,
    executor: Executor | None = None,
    memory: int | None = None,
    sink: ScanSink | None = None,
) -> ScanResult:
    """Scan the genome with a linear mixed model.

    Parameters
    ----------
    genotypes : Genotypes
        Dosages or genotype probabilities (:mod:`lmmcore.genotypes`).
    phenotypes : DataFrame, Series or LMMData
        Indexed by individual ID, one column per phenotype, NaN = missing.
        An :class:`~lmmcore.io.LMMData` supplies its phenotypes and (unless
        ``covariates`` is given) its covariates; to scan with its kinship,
        pass ``kinship=pd.DataFrame(data.kinship, index=data.ids, columns=data.ids)``.
    covariates : DataFrame, optional
        Indexed by ID; numeric or text columns (see
        :func:`lmmcore.design.design_matrix`). An intercept is always in the
        model. Individuals with a missing covariate are dropped.
    kinship : {"loco", "overall"}, array, DataFrame, Kinship or mapping
        ``"loco"`` (default) or ``"overall"``: computed from ``genotypes``
        (R/qtl2's ``calc_kinship`` for probabilities, ``kind`` for dosages),
        on all genotyped individuals. A matrix (ndarray in the order of
        ``genotypes.ids``, a DataFrame labelled by ID, or a
        :class:`~lmmcore.kinship.Kinship`) is one kinship for all markers;
        a mapping ``{chromosome: matrix}`` gives each chromosome's LOCO
        kinship.
    kind : {"standardized", "centered"}
        Dosage kinship, when it is computed here.
    method : {"reml", "ml"}
        Null-model estimate of h2 for the fixed-h2 scan (R/qtl2's default is REML).
    refit : bool
        Also re-estimate h2 at every marker: ML for the likelihood-ratio test
        and REML for the Wald test (GEMMA ``-lmm 2`` and ``-lmm 1``).
    lrt_likelihood : {"full", "projected"}
        The ML likelihood of the likelihood-ratio test. ``"full"`` (default)
        is the Gaussian density of all n observations, as GEMMA uses; when
        the kinship's null space meets the covariates (a centred kinship
        with an intercept) it grows without bound as h2 -> 1, and h2 is kept
        below ``1 - 1e-5`` (GEMMA's ``lambda <= 1e5``). ``"projected"``
        leaves those directions out, as ``lmmcore fit --method ml`` does
        (:mod:`lmmcore.likelihood`): no bound is needed, and the statistic
        differs from GEMMA's by about ``1/n`` relative. Both are the same for
        a non-singular kinship such as R/qtl2's.
    select : sequence of str, optional
        Phenotype columns to scan (default: all).
    n_perm : int
        Permutations of the genotype rows for genome-wide thresholds (0: none).
    perm_strata : str, Series or sequence, optional
        Permute within strata: a column of ``covariates`` (or of the
        phenotypes), a Series indexed by ID, or labels in ``genotypes`` order.
    seed : int, optional
        Seed of the permutations.
    alphas : sequence of float
        Levels of the reported thresholds.
    chunk : int, optional
        Markers per chunk (default: about 32 MiB of rotated genotypes).
    progress : callable, optional
        ``progress(done, total, description)`` after each chunk; ``done``
        and ``total`` count marker scans (markers x sets of individuals x
        (1 + n_perm)).
    report : callable, optional
        Receives the scan's messages (individuals left out, markers imputed,
        a bound reached) instead of an :class:`~lmmcore.errors.LMMWarning`
        (see :func:`lmmcore.errors.reporting`).
    xcovar : DataFrame, optional
        The X chromosome covariates (R/qtl2's ``Xcovar``; for a cross,
        :func:`lmmcore.xchr.x_covariates`), indexed by ID, numeric: added
        to the covariates of the null and the alternative model of the
        markers on ``x_chr`` only (columns equal to a covariate's are left
        out, as R/qtl2's ``drop_xcovar``).
    x_chr : sequence of str
        The X chromosome(s). When given, their markers are scanned with
        their own genotype set (``genotypes.genotypes_by_chr``: the
        genotypes absent there do not enter the design, and the other
        chromosomes keep theirs) and ``xcovar``; with ``kinship="loco"``
        (or ``"overall"``) and per-chromosome genotype sets the kinships
        are R/qtl2's ``calc_kinship`` defaults, from allele probabilities
        of every chromosome, so that X is scanned against the kinship of
        all autosomes. The null fit of X under one overall kinship is
        labelled ``X`` in :attr:`ScanResult.null`. Empty (default): every
        chromosome is scanned alike, as before.
    perm_x_separate : bool
        With ``n_perm`` and ``x_chr``: separate thresholds for the
        autosomes and X (R/qtl2's ``perm_Xsp = TRUE`` with chromosome
        lengths, :mod:`lmmcore.xchr`): the autosomes under ``n_perm``
        permutations, X under ``ceiling(n_perm L_A / L_X)``; the
        thresholds get a ``region`` column (``A``/``X``).

    executor : callable, optional
        Runs the scan's tasks: ``executor(fn, context, genotypes, tasks)``
        yields ``fn(context, genotypes, task)`` for each task in order, where
        ``fn`` is :func:`lmmcore.scan_tasks.scan_task` for a pattern's own
        context and :func:`lmmcore.shared_scan.shared_scan_task` for
        patterns that share a decomposition (an executor calls the ``fn`` it
        is given). Default: one after another in
        this process (:func:`~lmmcore.scan_tasks.serial_executor`); a Dask
        executor runs them on a cluster.
    memory : int, optional
        Bytes one task may hold (default: min(1/4 of the available memory,
        1 GiB), :func:`~lmmcore.scan_tasks.memory_budget`). Markers and
        traits are cut into chunks x blocks within it
        (:func:`~lmmcore.scan_tasks.task_shape`; the bound is
        :func:`~lmmcore.scan_tasks.task_bytes`), so no T x m x k array is
        ever held; ``chunk`` is an upper limit.
    sink : ScanSink, optional
        Where the rows go as they are computed (:mod:`lmmcore.scan_sink`):
        by default the long :attr:`ScanResult.table`; a
        :class:`~lmmcore.scan_sink.ParquetSink` writes them to a file, a
        :class:`~lmmcore.scan_sink.MaxSink` or
        :class:`~lmmcore.scan_sink.PeaksSink` keeps a summary
        (:attr:`ScanResult.summary`); the table is then empty.

    Returns
    -------
    ScanResult

    Raises
    ------
    LMMInputError
        Unknown phenotypes, fewer than 3 individuals in common, a constant
        phenotype, a kinship that does not match the individuals, a LOCO
        mapping without some chromosome, bad permutation settings.

    Notes
    -----
    See the module docstring for the formulas. The LOD of the fixed-h2 scan
    and the exact tests do not depend on the scale of the kinship (``c K``
    changes h2 but not the model); h2 is reported on the scale of the
    kinship used.

    Examples
    --------
    >>> from lmmcore.simulate import simulate_genotype_dosages
    >>> import numpy as np, pandas as pd
    >>> g = simulate_genotype_dosages(60, 200, n_chr=2, seed=1)
    >>> y = pd.DataFrame({"y": np.random.default_rng(2).normal(size=60)}, index=list(g.ids))
    >>> res = scan(g, y, kinship="loco")
    >>> res.table.shape[0]
    200
    """
    with reporting(report):
        if x_chr:
            return _scan_with_x(genotypes, phenotypes, covariates, xcovar, x_chr, perm_x_separate, progress,
                                perm_strata, _Options(executor or serial_executor, memory_budget(memory)),
                                sink, dict(
                                    kinship=kinship, kind=kind, method=method, refit=refit,
                                    lrt_likelihood=lrt_likelihood, select=select, n_perm=n_perm, seed=seed,
                                    alphas=alphas, chunk=chunk))
        if xcovar is not None or perm_x_separate:
            raise LMMInputError("xcovar and perm_x_separate apply to the X chromosome: name it with x_chr")
        clock = _Clock()
        inputs = validate_inputs(genotypes, phenotypes, covariates, method=method, refit=refit,
                           lrt_likelihood=lrt_likelihood, select=select, n_perm=n_perm, seed=seed,
                           alphas=alphas, chunk=chunk)
        with clock("kinship"):
            source = kinship_source(kinship, genotypes, kind)
        plan = _plan(inputs, source, perm_strata)
        run = _run(plan, _Progress(progress, plan.total), clock,
                   _Options(executor or serial_executor, memory_budget(memory)), sink or TableSink())
        return _assemble(plan, run, clock)


# --------------------------------------------------------------------------- #
# The X chromosome: autosomes and X as two parts with their own designs
# --------------------------------------------------------------------------- #
def _scan_with_x(genotypes, phenotypes, covariates, xcovar, x_chr, perm_x_separate, progress, perm_strata,
                 options, sink, kw: dict) -> ScanResult:
    """:func:`scan` with ``x_chr``: the autosomes as before, X with its genotype set and ``xcovar``.

    ``sink`` is started with the whole genotypes and the union of the two
    parts' effect columns; the autosome part's pieces reach it as their
    tasks finish (through a :class:`~lmmcore.scan_sink.PartSink`), then the
    X part's pieces, held until X is done (its flags need all of them,
    :func:`~lmmcore.xchr.x_flags`). A sink's memory is that of the scan
    without X plus the X part's pieces.
    """
    if not isinstance(genotypes, Genotypes):
        raise LMMInputError("genotypes must be a Genotypes record (see lmmcore.genotypes.read_*)")
    x_chr = tuple(str(c) for c in ([x_chr] if isinstance(x_chr, str) else x_chr))
    unknown = [c for c in x_chr if c not in genotypes.chromosomes]
    if unknown:
        raise LMMInputError(f"x_chr names chromosome '{unknown[0]}', which the genotypes do not have; they have "
                            + ", ".join(genotypes.chromosomes))
    autos = [c for c in genotypes.chromosomes if c not in x_chr]
    if perm_x_separate and not (kw["n_perm"] and autos):
        raise LMMInputError("perm_x_separate needs n_perm > 0 and autosomes besides the X chromosome")
    clock = _Clock()
    with clock("kinship"):  # R/qtl2's calc_kinship: allele probabilities through the genotypes' map
        source = kinship_source(kw["kinship"], genotypes, kw["kind"])
    args = {k: kw[k] for k in ("method", "refit", "lrt_likelihood", "select", "seed", "alphas", "chunk")}
    x_geno = select_chromosomes(genotypes, x_chr)
    first = validate_inputs(x_geno, phenotypes, covariates, n_perm=kw["n_perm"], **args)
    with reporting(lambda _message: None):  # the parts' plans say it once
        ids = align_ids(x_geno, first.phenotypes, first.covariates, source.ids)
    x_cov = x_scan_covariates(first.covariates, xcovar, ids)
    n_perm_x = kw["n_perm"]
    lengths = chromosome_lengths(genotypes)
    if perm_x_separate:
        n_perm_x = n_perm_x_count(kw["n_perm"], lengths, x_chr)
    pheno, args["select"] = first.phenotypes, list(first.names)
    parts = []
    if autos:
        a_inputs = validate_inputs(select_chromosomes(genotypes, autos), pheno, first.covariates,
                                   n_perm=kw["n_perm"], **args)
        parts.append(_plan(a_inputs, source, perm_strata))
    x_plan = _plan(validate_inputs(x_geno, pheno, x_cov, n_perm=n_perm_x, **args), source, perm_strata)
    if parts and not perm_x_separate and x_plan.perms is not None:
        x_plan = replace(x_plan, perms=parts[0].perms)  # one permutation of the individuals for the whole genome
    if parts and parts[0].ids != x_plan.ids:
        raise LMMInputError("the X covariates leave out individuals that the autosome scan keeps; give them "
                            "for every scanned individual")
    parts.append(x_plan)
    inputs = x_plan.inputs
    effect_names = tuple(g for g in marker_columns(genotypes)  # the parts' columns (merge_part_tables' order)
                         if any(g in marker_columns(plan.inputs.genotypes) for plan in parts))
    sink = sink or TableSink()
    sink.start(genotypes, inputs.names, effect_names, inputs.refit)
    tracker = _Progress(progress, sum(plan.total for plan in parts))
    runs, results = [], []
    for k, plan in enumerate(parts):  # the autosomes' pieces go to the sink as they come; X's follow
        part = PartSink(sink, hold=k == len(parts) - 1)
        runs.append(_run(plan, tracker, clock, options, part))
        results.append(_assemble(plan, runs[-1], clock))
    part.release(x_flags)  # X's flags need all of X
    table, summary = _finish(sink)
    return _merge_x(x_chr, parts, runs, results, clock, perm_x_separate, lengths, effect_names, table, summary)


def _merge_x(x_chr, parts, runs, results, clock, perm_x_separate, lengths, effect_names, table,
             summary) -> ScanResult:
    """One :class:`ScanResult` from the autosome part and the X part (the last) and the sink's table or summary."""
    inputs = parts[-1].inputs
    nulls = [r.null for r in results]
    nulls[-1] = nulls[-1].assign(chr=nulls[-1]["chr"].replace("all", ",".join(x_chr)))
    permutations = None
    if inputs.n_perm:
        names, strata = inputs.names, parts[-1].strata
        if perm_x_separate:
            pa, px = results[0].permutations, results[-1].permutations
            permutations = replace(pa, thresholds=xsp_thresholds(pa.max_lod, px.max_lod, lengths, x_chr,
                                                                 inputs.alphas),
                                   max_lod_x=px.max_lod, n_perm_x=px.n_perm,
                                   scheme=pa.scheme + f"; autosomes and X separately (X: {px.n_perm} "
                                   "permutations, R/qtl2's perm_Xsp)")
        else:
            maxima = np.maximum.reduce([run.max_lod for run in runs])
            permutations = permutation_result(maxima, names, inputs.seed, strata, inputs.alphas)
    clock.timings["total"] = time.perf_counter() - clock.started
    first = results[0]
    return ScanResult(
        table=table, null=pd.concat(nulls, ignore_index=True), method=first.method, refit=first.refit,
        kinship=first.kinship, effect_names=effect_names, n_individuals=first.n_individuals,
        permutations=permutations, timings=clock.timings,
        refit_exact_profiles=sum(r.refit_exact_profiles for r in results), ids=first.ids,
        summary=summary, names=tuple(inputs.names),
    )


# --------------------------------------------------------------------------- #
# Plan: individuals, missingness patterns, designs, permutations, kinship groups
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Plan:
    """What every (kinship, missingness pattern) pair of a scan shares."""

    inputs: ScanInputs
    source: KinshipSource
    ids: tuple[str, ...]  # the aligned individuals, in genotype order
    pheno: pd.DataFrame  # their phenotypes
    geno_rows: np.ndarray  # row of each aligned individual in the genotypes
    kin_rows: np.ndarray  # and in the kinships
    patterns: tuple
    designs: tuple
    groups: tuple  # (label, marker indices) of every kinship
    perms: np.ndarray | None  # (n_perm, n) permutations of the aligned individuals
    strata: str | None
    has_missing: bool

    @property
    def name_index(self) -> dict[str, int]:
        """Each scanned phenotype's column among ``inputs.names``."""
        return {name: j for j, name in enumerate(self.inputs.names)}

    @property
    def total(self) -> int:
        """Marker scans to do (markers x sets of individuals x (1 + n_perm))."""
        return sum(len(idx) for _, idx in self.groups) * len(self.patterns) * (1 + self.inputs.n_perm)


def _plan(inputs: ScanInputs, source: KinshipSource, perm_strata) -> _Plan:
    genotypes, names = inputs.genotypes, inputs.names
    ids = align_ids(genotypes, inputs.phenotypes, inputs.covariates, source.ids)
    pheno = inputs.phenotypes.loc[list(ids)]
    for name in names:
        check_phenotype(name, pheno[name].to_numpy(dtype=float))
    covar = inputs.covariates.loc[list(ids)] if inputs.covariates is not None else None
    perms = strata = None
    if inputs.n_perm:
        labels, strata = strata_labels(perm_strata, ids, covar, pheno, genotypes.ids)
        perms = permutation_indices(len(ids), inputs.n_perm, inputs.seed, labels)
    q = len(marker_columns(genotypes))
    patterns = missingness_patterns(pheno)
    designs = []
    for pat in patterns:
        obs = pat.observed
        design = design_matrix(covar.loc[obs] if covar is not None else None, int(obs.sum()), "the covariates")
        if int(obs.sum()) <= design.p + q + 1:
            raise LMMInputError(
                f"phenotype '{pat.phenotypes[0]}' is observed on {int(obs.sum())} individuals, too few "
                f"for {design.p} covariate coefficient(s) and a marker's {q} "
                "column(s); it needs more individuals than coefficients"
            )
        designs.append(design)
    return _Plan(
        inputs=inputs,
        source=source,
        ids=ids,
        pheno=pheno,
        geno_rows=pd.Index(genotypes.ids).get_indexer(list(ids)),
        kin_rows=pd.Index(source.ids).get_indexer(list(ids)),
        patterns=tuple(patterns),
        designs=tuple(designs),
        groups=tuple(source.groups(genotypes)),
        perms=perms,
        strata=strata,
        has_missing=bool(np.isnan(np.sum(genotypes.data))),  # a sum is one pass, no n x m mask
    )


# --------------------------------------------------------------------------- #
# Run: one kinship and one set of individuals at a time, markers in chunks
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Options:
    """How the tasks run: the executor and the bytes one task may hold."""

    executor: Executor
    budget: int


@dataclass
class _Run:
    """What the run gathers (filled in as it goes)."""

    sink: ScanSink
    nulls: list = field(default_factory=list)
    max_lod: np.ndarray | None = None  # (n_perm, phenotypes) genome-wide maxima
    n_imputed: int = 0
    n_exact: int = 0


class _Clock:
    """Seconds spent in each stage: ``with clock("scan"): ...``."""

    def __init__(self):
        self.started = time.perf_counter()
        self.timings = dict.fromkeys(_STAGES, 0.0)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - t0


class _Progress:
    """Counts marker scans and tells the caller's ``progress(done, total, description)``."""

    def __init__(self, progress: ProgressCallback | None, total: int):
        self.progress = progress
        self.total = total
        self.done = 0

    def advance(self, count: int, description: str) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total, description)


def _run(plan: _Plan, progress: _Progress, clock: _Clock, options: _Options, sink: ScanSink) -> _Run:
    run = _Run(sink=sink)
    sink.start(plan.inputs.genotypes, plan.inputs.names, marker_columns(plan.inputs.genotypes), plan.inputs.refit)
    if plan.perms is not None:
        run.max_lod = np.full((plan.inputs.n_perm, len(plan.inputs.names)), -np.inf)
    workers = int(getattr(options.executor, "workers", 1) or 1)
    groups = group_contexts(plan, run, clock, options, workers, progress)
    if workers > 1:  # the next group's kinship, decomposition and null fit while this group's tasks run
        groups = run_ahead(groups)
    for fn, context, tasks, description in groups:
        for result in options.executor(fn, context, plan.inputs.genotypes, tasks):
            _accept(run, result, progress, clock, description)
    if run.n_imputed:
        report(f"{run.n_imputed} missing genotype values were replaced by their marker's mean in the scan",
               stacklevel=4)
    return run


def _accept(run: _Run, result: TaskResult, progress: _Progress, clock: _Clock, description: str) -> None:
    """Hand one task's result to the run: its tests, permuted maxima, counts and times."""
    for stage, seconds in result.seconds.items():
        clock.timings[stage] += seconds
    run.n_imputed += result.n_imputed
    run.n_exact += result.n_exact
    for piece in result.piece.pieces:  # one per missingness pattern the task served
        run.sink.add(piece)
    progress.advance(result.n_markers, description)
    if result.max_lod is not None:
        target = list(result.piece.target)
        run.max_lod[:, target] = np.maximum(run.max_lod[:, target], result.max_lod)
        progress.advance(result.n_perm_scans, "permutations")


# --------------------------------------------------------------------------- #
# Assemble: the long table, the null fits, the permutations
# --------------------------------------------------------------------------- #
def _assemble(plan: _Plan, run: _Run, clock: _Clock) -> ScanResult:
    inputs = plan.inputs
    effect_names = marker_columns(inputs.genotypes)
    permutations = None
    if inputs.n_perm:
        permutations = permutation_result(run.max_lod, inputs.names, inputs.seed, plan.strata, inputs.alphas)
    null_rows = []
    index = plan.name_index
    for fit in run.nulls:
        m = fit.model
        for j, nm in enumerate(fit.phenotypes):
            row = {"phenotype": nm, "chr": fit.label, "n": fit.n, "h2": m.h2[j],
                   "sigma2": m.sigma2[j], "loglik": m.loglik[j], "method": inputs.method}
            if inputs.refit:
                row.update(h2_ml=m.h2_ml[j], loglik_ml=m.loglik_ml[j])
            null_rows.append(((fit.key, index[nm]), row))
    # in the order of kinship groups, patterns and traits (a shared group fits its traits first)
    null_rows = [row for _, row in sorted(null_rows, key=lambda kr: kr[0])]
    table, summary = _finish(run.sink)
    clock.timings["total"] = time.perf_counter() - clock.started
    return ScanResult(
        table=table,
        null=pd.DataFrame(null_rows),
        method=inputs.method,
        refit=inputs.refit,
        kinship=plan.source.mode,
        effect_names=effect_names,
        n_individuals=len(plan.ids),
        permutations=permutations,
        timings=clock.timings,
        refit_exact_profiles=run.n_exact,
        ids=plan.ids,
        summary=summary,
        names=tuple(inputs.names),
    )


def _finish(sink: ScanSink) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The result's table and summary from a finished sink."""
    out = sink.finish()
    if sink.kind == "summary":
        return sink.empty_table(), out
    return out, None
