"""Genome scans with a linear mixed model: fixed-h2 LOD scores and exact per-marker tests.

At marker j the model adds the marker's genotype columns ``G_j`` to the
covariates,

    y = X b + G_j a + e,   var(e) = v (h K + (1 - h) I),

and tests ``a = 0``. Two scans are offered.

Fixed h2 (R/qtl2's ``scan1`` with a kinship; EMMAX)
    h is estimated once under the null (``a = 0``; per chromosome with
    leave-one-chromosome-out kinships) and held fixed at every marker. With
    weights ``w_i = 1 / (h d_i + 1 - h)`` in the eigenbasis of K, both
    models are weighted least squares problems and

        LOD = (n / 2) log10(RSS0 / RSS1),

    the difference of their ML log-likelihoods over ``ln 10`` (the
    log-determinant of the covariance cancels). The p-value is
    ``P(chi2_df >= 2 ln(10) LOD)``.

Exact (GEMMA ``-lmm 2`` and ``-lmm 1``)
    h is re-estimated at every marker: by maximum likelihood for the
    likelihood-ratio test ``2 (L1 - L0)`` against the null ML fit
    (chi-square p-value), and by REML for the Wald test
    ``F = a' S a / (df sigma2)`` on ``(df, n - p - df)`` degrees of freedom.

Marker columns
--------------
Dosages contribute one column. Genotype probabilities of k genotypes
contribute the last k - 1 (the first genotype is the reference: the
intercept absorbs it, as in R/qtl2), so the effects are contrasts with the
first genotype. Columns that are linear combinations of the covariates and
the other columns (e.g. a genotype that nobody carries) are dropped and the
test has fewer degrees of freedom; a marker with none left is *monomorphic*
(or *collinear* with the covariates) and gets NaN and a flag.

Algorithm
---------
For every kinship (one, or one per chromosome) and set of individuals with
observed phenotypes, K is decomposed once (``K = U D U'``) and the null
model fitted by :func:`lmmcore.fit.fit_rotated`. Markers are then processed
in chunks; for a chunk of m markers with q columns each:

1. rotate the columns, ``G* = U' G`` (an n x n times n x mq product: the
   dominant cost), and project out the covariates (the intercept among
   them), ``R = (I - Q Q') G*`` with ``Q`` an orthonormal basis of
   ``X* = U'X``;
2. whiten each marker's columns, ``G~_j = R_j T_j`` with ``T_j`` from the
   eigendecomposition of ``R_j' R_j`` (dropping directions with eigenvalue
   below ``1e-12`` of the marker's sum of squares), so ``G~_j' G~_j = I``;
3. fixed h2: with ``W = diag(w)``, ``A = X*'WX*``, ``B_j = X*'WG~_j``,
   ``r`` the null residual and ``c_j = G~_j'Wr - B_j' A^{-1} X*'Wr``,

       S_j = G~_j'WG~_j - B_j' A^{-1} B_j,
       RSS1_j = RSS0 - c_j' S_j^{-1} c_j,

   which are matrix products over the whole chunk plus batched q x q solves
   (the partitioned-regression formulas; no n x n inverse or determinant);
4. exact: the same sufficient statistics as functions of h, first on a
   coarse grid shared by all markers of a chunk (h = 0, ``log lambda =
   -10 .. 10`` with ``lambda = h / (1 - h)``, and the largest h; matrix
   products), then, on the two grid intervals around each marker's best
   point, at 17 Chebyshev nodes shared by the markers whose best point is
   the same (matrix products again). The profile is an analytic function of
   ``log lambda`` (the weights ``(1 + lambda) / (1 + lambda d_i)`` have
   their poles at imaginary part ``+-pi`` whatever the eigenvalues), so
   the polynomial through those values matches it to about 1e-11; its
   maximum is the marker's (:mod:`lmmcore.chebyshev`). Where the last
   Chebyshev coefficients say the polynomial is off by more than
   :data:`REFIT_INTERPOLATION_TOL`, Brent's method runs on the exact
   profile instead (one lane per marker, :func:`lmmcore.optimize.brent_maximize`);
   ``ScanResult.refit_exact_profiles`` counts those. With
   ``p1 = p + df`` and ``log|X1*'WX1*| = log|A| + log|S_j|``:

       L_ML   = -1/2 [n log(2 pi RSS1 / n) + sum_i log(h d_i + 1 - h) + n]
       L_REML = -1/2 [(n - p1)(log(2 pi RSS1 / (n - p1)) + 1)
                      + sum_i log(h d_i + 1 - h) + log|A| + log|S_j| - log|X'X|]

   (``log|X1'X1| = log|X'X|`` because the whitened columns are orthonormal
   and orthogonal to X).

The null h2 of the fixed-h2 scan comes from :func:`lmmcore.fit.fit_rotated`
and is then pinned to rounding by a root of ``dL/dh`` (:func:`_polish_h2`),
so that the LOD, which moves with h2 to first order, is reproducible to
1e-8 and more (e.g. between K and 2K).

The ML likelihood of the LRT
----------------------------
With a kinship whose null space meets the covariates (a centred kinship,
``K 1 = 0``, with an intercept) the full likelihood above grows without
bound as h -> 1 (one observation is fitted exactly while its variance
``v (1 - h)`` vanishes). ``lrt_likelihood="full"`` (the default) keeps it,
as GEMMA does, and bounds h by ``1 - 1e-5`` (GEMMA's ``lambda <= 1e5``);
``"projected"`` leaves those ``r0`` directions out, as :mod:`lmmcore.likelihood`
does for ``lmmcore fit --method ml``:
``L_ML = -1/2 [n' log(2 pi RSS1 / n') + sum_i log(h d_i + 1 - h) - r0 log(1 - h) + n']``
with ``n' = n - r0``. For a non-singular kinship (R/qtl2's) they are equal.

Memory is ``O(n^2 + n m q)`` per chunk: one kinship (and its
eigenvectors) at a time; leave-one-chromosome-out kinships are formed one
chromosome at a time, ``K_{-c} = (M K - M_c K_c) / (M - M_c)``.

Permutations (:mod:`lmmcore.permute`) permute the genotype rows and rerun the
fixed-h2 scan with the same eigendecompositions and null fits.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special

from . import chebyshev
from .batch import missingness_patterns
from .design import design_matrix
from .eigen import decompose_kinship, rotate, validate_kinship_matrix
from .errors import LMMInputError, LMMWarning
from .fit import fit_rotated
from .genotypes import Genotypes
from .io import LMMData
from .kinship import MONOMORPHIC_TOLERANCE, Kinship, kinship_from_dosages, kinship_from_genoprobs
from .likelihood import LOG_2PI, profile_loglik, profile_loglik_paired
from .optimize import brent_maximize
from .permute import DEFAULT_ALPHAS, PermutationResult, lod_thresholds, permutation_indices
from .wls import solve_wls_paired

__all__ = [
    "ScanResult",
    "scan",
    "marker_columns",
    "FLAG_MONOMORPHIC",
    "FLAG_COLLINEAR",
    "FLAG_ALL_MISSING",
    "FLAG_RANK_DEFICIENT",
    "REFIT_LOG_LAMBDA",
    "REFIT_NODES",
    "REFIT_INTERPOLATION_TOL",
    "REFIT_PEAK_MARGIN",
    "REFIT_TOL",
]

#: Values of n x (markers x columns) per chunk: 4 Mi float64 values, 32 MiB.
CHUNK_ELEMENTS = 1 << 22
#: A marker direction whose residual sum of squares (after the covariates) is
#: below this fraction of the marker's raw sum of squares is dropped.
RANK_TOLERANCE = 1e-12
#: The exact scan's coarse grid in ``log lambda`` (``lambda = h / (1 - h)``),
#: to which h = 0 and the largest h are added.
REFIT_LOG_LAMBDA = np.arange(-10.0, 11.0)
#: Chebyshev-Lobatto nodes on which each marker's profile is interpolated
#: between two coarse grid points (interpolation error about 1e-11 in the
#: log-likelihood on the benchmark's data).
REFIT_NODES = 17
#: Largest estimated interpolation error (log-likelihood units) that is
#: accepted; a profile beyond it is maximised by Brent's method instead.
REFIT_INTERPOLATION_TOL = 1e-8
#: A local maximum of a marker's profile on the coarse grid is refined when its grid value is
#: within this many log-likelihood units of the best grid value (the best is always refined).
#: Farther below, the profile would have to rise that much within one grid step (a factor e in
#: lambda) to win; with a centred kinship every ML profile has such a point at the cap, about 60
#: units down at n = 2000.
REFIT_PEAK_MARGIN = 20.0
#: Absolute tolerance on h of that Brent search (the log-likelihood is then
#: within about ``curvature * tol^2`` of its maximum, far below 1e-6).
REFIT_TOL = 1e-6
#: Largest h2 of the full ML likelihood when it is unbounded at h2 = 1 (a centred
#: kinship with an intercept): GEMMA's bound lambda = sigma_g^2 / sigma_e^2 <= 1e5.
FULL_ML_CAP = 1e5 / (1.0 + 1e5)
#: Distance from h2 = 1 used for a singular kinship whose null fit is h2 = 1 (as lmmcore.fit).
_SINGULAR_EDGE = 1e-9
#: Column pairs of a marker whose products the exact scan keeps (one or two genotype columns).
_CACHED_PAIRS = 3
#: Lanes of the exact scan evaluated together (their n-long work rows stay in cache).
LANE_BLOCK = 256
#: Permutations scanned together (their rotations form one matrix product).
_PERM_BATCH_ELEMENTS = 1 << 22

#: Golden-section fraction: where Brent starts inside an end interval of the grid.
_GOLDEN = 0.5 * (3.0 - np.sqrt(5.0))

FLAG_MONOMORPHIC = "monomorphic"
FLAG_COLLINEAR = "collinear_with_covariates"
FLAG_ALL_MISSING = "all_missing"
FLAG_RANK_DEFICIENT = "rank_deficient"

ProgressCallback = Callable[[int, int, str], None]


# --------------------------------------------------------------------------- #
# Result
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class ScanResult:
    """A genome scan: one row per (phenotype, marker), plus the null fits.

    Attributes
    ----------
    table : DataFrame
        Long format, phenotypes in the requested order and markers in genome
        order. Always: ``phenotype, marker, chr, pos, n, df, h2, lod,
        p_value``, the effects ``beta_<name>`` and standard errors
        ``se_<name>`` at the fixed h2 (``<name>`` is ``dosage`` or a
        genotype), and ``flag`` (empty, or ``monomorphic``,
        ``collinear_with_covariates``, ``all_missing``, ``rank_deficient``).
        With ``refit``: ``h2_ml, loglik_ml, lrt, lod_lrt, p_lrt`` (ML h2
        re-estimated per marker, GEMMA -lmm 2) and ``h2_reml, loglik_reml,
        beta_wald_<name>, se_wald_<name>, wald, p_wald`` (REML h2 per marker,
        GEMMA -lmm 1).
    null : DataFrame
        The null fit of every phenotype and kinship: ``phenotype, chr``
        (``"all"`` for one kinship, else the chromosome left out), ``n, h2,
        sigma2, loglik, method`` and with ``refit`` ``h2_ml, loglik_ml``.
    method : str
        ``"reml"`` or ``"ml"``: how the null h2 of the fixed-h2 scan was estimated.
    refit : bool
    kinship : str
        ``"overall"`` or ``"loco"``.
    effect_names : tuple of str
        The ``<name>`` of the effect columns.
    n_individuals : int
        Individuals with genotypes, covariates and at least one phenotype.
    permutations : PermutationResult or None
    timings : dict
        Seconds spent in each stage (``kinship, eigen, null, rotate, scan,
        refit, permute``).
    refit_exact_profiles : int
        With ``refit``: how many marker profiles (ML and REML counted
        separately) were maximised by Brent's method on the exact likelihood
        because interpolation was not trusted there (see
        :meth:`_MarkerProfiles.maximize`); the others were maximised by
        interpolation.
    """

    table: pd.DataFrame
    null: pd.DataFrame
    method: str
    refit: bool
    kinship: str
    effect_names: tuple[str, ...]
    n_individuals: int
    permutations: PermutationResult | None = None
    timings: dict = field(default_factory=dict)
    refit_exact_profiles: int = 0

    @property
    def phenotypes(self) -> tuple[str, ...]:
        return tuple(pd.unique(self.table["phenotype"]))

    def peaks(self, threshold: float = 3.0) -> pd.DataFrame:
        """The highest marker of every chromosome whose LOD reaches ``threshold``, per phenotype."""
        ok = self.table[self.table["lod"] >= threshold]
        if ok.empty:
            return ok.copy()
        best = ok.loc[ok.groupby(["phenotype", "chr"], sort=False)["lod"].idxmax()]
        return best.sort_values(["phenotype", "lod"], ascending=[True, False]).reset_index(drop=True)


def marker_columns(genotypes: Genotypes) -> tuple[str, ...]:
    """Names of the effects a marker adds: ``("dosage",)`` or the genotypes after the first."""
    if genotypes.kind == "dosage":
        return ("dosage",)
    return tuple(genotypes.genotype_names[1:])


# --------------------------------------------------------------------------- #
# The entry point
# --------------------------------------------------------------------------- #
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
    started = time.perf_counter()
    timings = dict.fromkeys(("kinship", "eigen", "null", "rotate", "scan", "refit", "permute"), 0.0)
    if not isinstance(genotypes, Genotypes):
        raise LMMInputError("genotypes must be a Genotypes record (see lmmcore.genotypes.read_*)")
    method = str(method).lower()
    if method not in ("ml", "reml"):
        raise LMMInputError(f"method must be 'reml' or 'ml', not '{method}'")
    lrt_likelihood = str(lrt_likelihood).lower()
    if lrt_likelihood not in ("full", "projected"):
        raise LMMInputError(f"lrt_likelihood must be 'full' or 'projected', not '{lrt_likelihood}'")
    if isinstance(phenotypes, LMMData):
        data = phenotypes
        phenotypes = data.phenotypes
        if covariates is None:
            covariates = data.covariates
    if isinstance(phenotypes, pd.Series):
        phenotypes = phenotypes.to_frame(phenotypes.name or "y")
    if not isinstance(phenotypes, pd.DataFrame):
        raise LMMInputError("phenotypes must be a DataFrame indexed by individual ID")
    phenotypes = phenotypes.copy()
    phenotypes.index = phenotypes.index.astype(str)
    names = [str(c) for c in phenotypes.columns] if select is None else [str(s) for s in select]
    phenotypes.columns = [str(c) for c in phenotypes.columns]
    unknown = [s for s in names if s not in phenotypes.columns]
    if unknown:
        raise LMMInputError(
            f"no phenotype column named '{unknown[0]}'; the columns are: "
            + ", ".join(phenotypes.columns[:20]) + (" ..." if phenotypes.shape[1] > 20 else "")
        )
    if not names:
        raise LMMInputError("there is no phenotype to scan")
    phenotypes = phenotypes[names]
    try:
        phenotypes = phenotypes.astype(float)
    except (TypeError, ValueError):
        raise LMMInputError("phenotypes must be numeric (NaN for missing values)") from None
    if covariates is not None:
        covariates = covariates.copy()
        covariates.index = covariates.index.astype(str)
    chunk = _chunk_size(chunk, len(genotypes.ids), len(marker_columns(genotypes)))
    n_perm = int(n_perm or 0)
    if n_perm < 0:
        raise LMMInputError(f"the number of permutations is {n_perm}; it must be 0 or more")

    t0 = time.perf_counter()
    source = _kinship_source(kinship, genotypes, kind)
    timings["kinship"] += time.perf_counter() - t0

    ids = _align_ids(genotypes, phenotypes, covariates, source.ids)
    pheno = phenotypes.loc[list(ids)]
    for name in names:
        _check_phenotype(name, pheno[name].to_numpy(dtype=float))
    covar = covariates.loc[list(ids)] if covariates is not None else None
    geno_rows = pd.Index(genotypes.ids).get_indexer(list(ids))
    kin_rows = pd.Index(source.ids).get_indexer(list(ids))

    perms = None
    strata_name = None
    if n_perm:
        labels, strata_name = _resolve_strata(perm_strata, ids, covar, pheno, genotypes)
        perms = permutation_indices(len(ids), n_perm, seed, labels)

    effect_names = marker_columns(genotypes)
    patterns = missingness_patterns(pheno)
    designs = []
    for pat in patterns:
        obs = pat.observed
        design = design_matrix(covar.loc[obs] if covar is not None else None, int(obs.sum()),
                               "the covariates")
        if int(obs.sum()) <= design.p + len(marker_columns(genotypes)) + 1:
            raise LMMInputError(
                f"phenotype '{pat.phenotypes[0]}' is observed on {int(obs.sum())} individuals, too few "
                f"for {design.p} covariate coefficient(s) and a marker's {len(marker_columns(genotypes))} "
                "column(s); it needs more individuals than coefficients"
            )
        designs.append(design)

    plan = _Plan(
        genotypes=genotypes,
        pheno=pheno,
        names=tuple(names),
        geno_rows=geno_rows,
        patterns=tuple(patterns),
        designs=tuple(designs),
        method=method,
        refit=bool(refit),
        lrt_likelihood=lrt_likelihood,
        chunk=chunk,
        perms=perms,
        has_missing=bool(np.isnan(np.sum(genotypes.data))),  # a sum is one pass, no n x m mask
    )
    groups = source.groups(genotypes)
    total = sum(len(idx) for _, idx in groups) * len(patterns) * (1 + n_perm)
    state = _ScanState(progress, total, n_perm, len(names))
    for label, marker_idx in groups:
        t0 = time.perf_counter()
        K_full = source.matrix(label)
        K_aligned = K_full if _is_identity_index(kin_rows, K_full.shape[0]) else K_full[np.ix_(kin_rows, kin_rows)]
        del K_full
        timings["kinship"] += time.perf_counter() - t0
        for pattern, design in zip(plan.patterns, plan.designs):
            _scan_group(plan, state, label, marker_idx, K_aligned, pattern, design, timings)
        del K_aligned
    if state.n_imputed:
        warnings.warn(
            f"{state.n_imputed} missing genotype values were replaced by their marker's mean in the scan",
            LMMWarning,
            stacklevel=2,
        )
    permutations = None
    if n_perm:
        maxima = np.where(np.isfinite(state.max_lod), state.max_lod, np.nan)
        frame = pd.DataFrame(maxima, columns=names, index=pd.RangeIndex(1, n_perm + 1, name="perm"))
        permutations = PermutationResult(
            max_lod=frame,
            thresholds=lod_thresholds(frame, alphas),
            n_perm=n_perm,
            seed=seed,
            strata=strata_name,
            scheme=(
                "genotype rows permuted relative to phenotypes, covariates and kinship"
                + (f" within strata of '{strata_name}'" if strata_name else "")
                + "; fixed-h2 scan at the null h2 of the observed data; genome-wide maximum LOD"
            ),
        )
    timings["total"] = time.perf_counter() - started
    return ScanResult(
        table=_assemble(state.pieces, genotypes, names, effect_names, refit),
        null=pd.DataFrame(state.null_rows),
        method=method,
        refit=bool(refit),
        kinship=source.mode,
        effect_names=effect_names,
        n_individuals=len(ids),
        permutations=permutations,
        timings=timings,
        refit_exact_profiles=state.n_exact,
    )


# --------------------------------------------------------------------------- #
# One kinship and one set of individuals
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Plan:
    """What every (kinship, missingness pattern) pair of a scan shares."""

    genotypes: Genotypes
    pheno: pd.DataFrame
    names: tuple[str, ...]
    geno_rows: np.ndarray  # row of each aligned individual in the genotypes
    patterns: tuple
    designs: tuple
    method: str
    refit: bool
    lrt_likelihood: str
    chunk: int
    perms: np.ndarray | None  # (n_perm, n) permutations of the aligned individuals
    has_missing: bool


class _ScanState:
    """Results gathered over the groups, and the progress count."""

    def __init__(self, progress: ProgressCallback | None, total: int, n_perm: int, n_pheno: int):
        self.progress = progress
        self.total = total
        self.done = 0
        self.pieces: list[dict] = []
        self.null_rows: list[dict] = []
        self.max_lod = np.full((n_perm, n_pheno), -np.inf) if n_perm else None
        self.n_imputed = 0
        self.n_exact = 0

    def advance(self, count: int, description: str) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total, description)


def _scan_group(plan: _Plan, state: _ScanState, label: str, marker_idx: np.ndarray, K: np.ndarray,
                pattern, design, timings: dict) -> None:
    """Scan the markers of one kinship group for the phenotypes of one missingness pattern.

    Decomposes the kinship of the pattern's individuals, fits the null
    model, then processes the markers chunk by chunk: rotation, fixed-h2
    scan, the exact scan if asked for, and the permutations.
    """
    obs = pattern.observed
    cols = list(pattern.phenotypes)
    t0 = time.perf_counter()
    eig = decompose_kinship(K if obs.all() else K[np.ix_(obs, obs)], check=False)
    timings["eigen"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    rot = rotate(eig, plan.pheno.loc[obs, cols].to_numpy(dtype=float), design.matrix)
    null = _NullModel.fit(rot, plan.method, plan.refit, cols, design.names, plan.lrt_likelihood)
    timings["null"] += time.perf_counter() - t0
    for j, nm in enumerate(cols):
        row = {"phenotype": nm, "chr": label, "n": rot.n, "h2": null.h2[j],
               "sigma2": null.sigma2[j], "loglik": null.loglik[j], "method": plan.method}
        if plan.refit:
            row.update(h2_ml=null.h2_ml[j], loglik_ml=null.loglik_ml[j])
        state.null_rows.append(row)

    rotation = _marker_rotation(eig.vectors, np.linalg.qr(rot.X)[0])
    del eig  # the eigenvectors live on inside ``rotation``; n x n memory once
    rows = plan.geno_rows[obs]
    description = f"chr {label}" if label != "all" else "scan"
    for start in range(0, len(marker_idx), plan.chunk):
        mk = marker_idx[start:start + plan.chunk]
        t0 = time.perf_counter()
        block = _prepare_block(_marker_array(plan.genotypes, rows, mk), rotation, plan.has_missing)
        state.n_imputed += block.n_imputed
        timings["rotate"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        piece = {"markers": mk, "phenotypes": cols, "n": rot.n, "flag": block.flag, "df": block.rank,
                 "h2": null.h2_scan, **_fixed_scan(block, rot.X, rot.d, null.h2_scan, null.resid)}
        timings["scan"] += time.perf_counter() - t0
        if plan.refit:
            t0 = time.perf_counter()
            refit = _exact_scan(block, rot, null)
            state.n_exact += refit.pop("n_exact")
            piece.update(refit)
            timings["refit"] += time.perf_counter() - t0
        state.pieces.append(piece)
        del block
        state.advance(len(mk), description)
        if plan.perms is not None:
            t0 = time.perf_counter()
            _permuted_maxima(plan, state, mk, obs, cols, rotation, rot, null)
            timings["permute"] += time.perf_counter() - t0


def _permuted_maxima(plan: _Plan, state: _ScanState, mk, obs, cols, rotation, rot, null) -> None:
    """Fixed-h2 LODs of one chunk under every permutation; keep each permutation's maximum.

    Individual i receives the genotypes of individual ``perm[i]``; the
    phenotypes, covariates, kinship (its eigendecomposition) and null fit
    stay. Several permutations are rotated by one matrix product.
    """
    q = plan.genotypes.probs.shape[2] - 1 if plan.genotypes.kind == "genoprobs" else 1
    per_batch = max(1, _PERM_BATCH_ELEMENTS // max(1, rot.n * len(mk) * q))
    target = [plan.names.index(c) for c in cols]
    n_perm = plan.perms.shape[0]
    for b0 in range(0, n_perm, per_batch):
        batch = plan.perms[b0:b0 + per_batch]
        raw = np.concatenate([_marker_array(plan.genotypes, plan.geno_rows[p[obs]], mk) for p in batch], axis=1)
        block = _prepare_block(raw, rotation, plan.has_missing)
        del raw
        lod = _fixed_scan(block, rot.X, rot.d, null.h2_scan, null.resid)["lod"]
        lod = np.where(np.isnan(lod), -np.inf, lod).reshape(len(batch), len(mk), len(cols))
        rows = slice(b0, b0 + len(batch))
        state.max_lod[rows, target] = np.maximum(state.max_lod[rows][:, target], lod.max(axis=1))
        state.advance(len(batch) * len(mk), "permutations")


# --------------------------------------------------------------------------- #
# Inputs: IDs, phenotypes, strata, chunks
# --------------------------------------------------------------------------- #
def _chunk_size(chunk, n: int, q: int) -> int:
    if chunk is None:
        return max(1, CHUNK_ELEMENTS // max(1, n * q))
    try:
        value = int(chunk)
    except (TypeError, ValueError):
        raise LMMInputError(f"chunk must be a positive number of markers, not {chunk!r}") from None
    if value < 1:
        raise LMMInputError(f"chunk is {chunk}; it must be a positive number of markers")
    return value


def _align_ids(genotypes: Genotypes, phenotypes: pd.DataFrame, covariates, kin_ids) -> tuple[str, ...]:
    """IDs with genotypes, a kinship row, complete covariates and a phenotype, in genotype order."""
    keep = pd.Index(genotypes.ids)
    dropped = {}
    observed = phenotypes.index[phenotypes.notna().any(axis=1)]
    n_geno = len(keep)
    keep = keep[keep.isin(observed)]
    if n_geno - len(keep):
        dropped["without an observed phenotype"] = n_geno - len(keep)
    if covariates is not None:
        complete = covariates.index[covariates.notna().all(axis=1)]
        before = len(keep)
        keep = keep[keep.isin(complete)]
        if before - len(keep):
            dropped["without complete covariates"] = before - len(keep)
    if kin_ids is not None:
        before = len(keep)
        keep = keep[keep.isin(pd.Index(kin_ids))]
        if before - len(keep):
            dropped["not in the kinship"] = before - len(keep)
    n_pheno_only = int((~phenotypes.index.isin(pd.Index(genotypes.ids))).sum())
    if n_pheno_only:
        dropped["with phenotypes but no genotypes"] = n_pheno_only
    if len(keep) < 3:
        raise LMMInputError(
            f"only {len(keep)} individual(s) have genotypes, phenotypes"
            + (", covariates" if covariates is not None else "")
            + " and a kinship row; check that the files use the same IDs (genotype IDs look like "
            f"'{genotypes.ids[0]}', phenotype IDs like '{phenotypes.index[0]}')"
        )
    if dropped:
        warnings.warn(
            "individuals left out of the scan: "
            + ", ".join(f"{v} {k}" for k, v in dropped.items())
            + f"; {len(keep)} remain",
            LMMWarning,
            stacklevel=3,
        )
    return tuple(keep)


def _check_phenotype(name: str, values: np.ndarray) -> None:
    observed = values[~np.isnan(values)]
    if observed.size < 3:
        raise LMMInputError(
            f"phenotype '{name}' has {observed.size} observed value(s) among the individuals with "
            "genotypes; a scan needs at least 3 (and more than the number of coefficients)"
        )
    if not np.all(np.isfinite(observed)):
        raise LMMInputError(f"phenotype '{name}' has infinite values; use finite numbers and NaN for missing")
    if np.all(observed == observed[0]):
        raise LMMInputError(f"phenotype '{name}' is constant (every value is {observed[0]:g}); it cannot be scanned")


def _resolve_strata(strata, ids, covar, pheno, genotypes):
    """Stratum labels of the aligned individuals, and a name for messages."""
    if strata is None:
        return None, None
    if isinstance(strata, str):
        if covar is not None and strata in covar.columns:
            return covar[strata].to_numpy(), strata
        if strata in pheno.columns:
            return pheno[strata].to_numpy(), strata
        where = ", ".join(map(str, covar.columns)) if covar is not None else "(no covariates given)"
        raise LMMInputError(
            f"the permutation strata column '{strata}' is not a covariate column; the covariate "
            f"columns are: {where}"
        )
    if isinstance(strata, pd.Series):
        s = strata.copy()
        s.index = s.index.astype(str)
        missing = [i for i in ids if i not in s.index]
        if missing:
            raise LMMInputError(f"the permutation strata have no label for individual '{missing[0]}'")
        return s.loc[list(ids)].to_numpy(), str(strata.name) if strata.name is not None else "strata"
    labels = np.asarray(strata, dtype=object)
    if labels.shape != (len(genotypes.ids),):
        raise LMMInputError(
            f"the permutation strata have {labels.size} labels; give one per genotyped individual "
            f"({len(genotypes.ids)})"
        )
    rows = pd.Index(genotypes.ids).get_indexer(list(ids))
    return labels[rows], "strata"


def _is_identity_index(rows: np.ndarray, n: int) -> bool:
    return rows.size == n and bool(np.all(rows == np.arange(n)))


# --------------------------------------------------------------------------- #
# Kinship sources: one matrix, one per chromosome, or computed lazily
# --------------------------------------------------------------------------- #
class _KinshipSource:
    """The kinship of every group of markers, one group at a time.

    ``mode`` is ``"overall"`` (one group, label ``"all"``) or ``"loco"`` (a
    group per chromosome). ``ids`` labels the rows of every matrix.
    """

    def __init__(self, mode: str, ids, getter: Callable[[str], np.ndarray], chromosomes=None):
        self.mode = mode
        self.ids = tuple(str(i) for i in ids)
        self._get = getter
        self._chromosomes = chromosomes

    def groups(self, genotypes: Genotypes) -> list[tuple[str, np.ndarray]]:
        chrom = np.asarray(genotypes.chromosome, dtype=object)
        if self.mode == "overall":
            return [("all", np.arange(genotypes.n_markers))]
        out = []
        for c in genotypes.chromosomes:
            if self._chromosomes is not None and c not in self._chromosomes:
                raise LMMInputError(
                    f"the LOCO kinships have no matrix for chromosome '{c}'; give one for every "
                    "chromosome of the genotypes (have: " + ", ".join(map(str, self._chromosomes)) + ")"
                )
            out.append((c, np.flatnonzero(chrom == c)))
        return out

    def matrix(self, label: str) -> np.ndarray:
        return self._get(label)


def _matrix_with_ids(obj, default_ids, what: str):
    """(ids, square matrix) from an ndarray, labelled DataFrame or Kinship."""
    if isinstance(obj, Kinship):
        ids, K = obj.ids, np.asarray(obj.matrix, dtype=float)
    elif isinstance(obj, pd.DataFrame):
        ids = tuple(str(i) for i in obj.index)
        cols = [str(c) for c in obj.columns]
        if list(ids) != cols:
            if sorted(ids) != sorted(cols):
                raise LMMInputError(f"{what}: the column labels are not the same IDs as the row labels")
            obj = obj.copy()
            obj.columns = cols
            obj = obj.loc[:, list(ids)]
        K = obj.to_numpy(dtype=float)
    else:
        K = np.asarray(obj, dtype=float)
        ids = tuple(default_ids)
        if K.ndim == 2 and K.shape[0] != len(ids):
            raise LMMInputError(
                f"{what} is {K.shape[0]} x {K.shape[1]} but there are {len(ids)} genotyped individuals; "
                "an unlabelled kinship must list them in the order of the genotypes (or give a "
                "DataFrame labelled by ID)"
            )
    validate_kinship_matrix(K, what)
    return tuple(ids), K


def _kinship_source(kinship, genotypes: Genotypes, kind: str) -> _KinshipSource:
    if isinstance(kinship, str):
        key = kinship.strip().lower()
        if key == "overall":
            K = _genotype_kinship(genotypes, kind)
            return _KinshipSource("overall", genotypes.ids, lambda _label: K)
        if key == "loco":
            lazy = _LocoKinship(genotypes, kind)
            return _KinshipSource("loco", genotypes.ids, lazy.matrix)
        raise LMMInputError(
            f"kinship '{kinship}' is not understood; use 'loco', 'overall', a matrix or a "
            "mapping from chromosome to matrix"
        )
    if isinstance(kinship, Mapping):
        if not kinship:
            raise LMMInputError("the LOCO kinship mapping is empty")
        mats = {}
        ids0 = None
        for c, obj in kinship.items():
            ids, K = _matrix_with_ids(obj, genotypes.ids, f"the LOCO kinship of chromosome '{c}'")
            if ids0 is None:
                ids0 = ids
            elif ids != ids0:
                index = pd.Index(ids).get_indexer(list(ids0))
                if (index < 0).any():
                    raise LMMInputError(
                        f"the LOCO kinship of chromosome '{c}' lacks individual "
                        f"'{ids0[int(np.flatnonzero(index < 0)[0])]}' that the others have"
                    )
                K = K[np.ix_(index, index)]
            mats[str(c)] = K
        return _KinshipSource("loco", ids0, lambda label: mats[label], chromosomes=tuple(mats))
    ids, K = _matrix_with_ids(kinship, genotypes.ids, "the kinship matrix")
    return _KinshipSource("overall", ids, lambda _label: K)


def _kinship_data(genotypes: Genotypes) -> np.ndarray:
    """Genotype data for the kinship: missing values replaced by their marker's mean.

    A marker with nothing observed stays NaN: the kinship functions skip it
    (with an :class:`~lmmcore.errors.LMMWarning` that counts such markers).
    """
    data = genotypes.data
    missing = np.isnan(data)
    if not missing.any():
        return data
    if genotypes.kind == "genoprobs":
        empty = missing.all(axis=(0, 2))
        partial = missing & ~empty[None, :, None]
    else:
        empty = missing.all(axis=0)
        partial = missing & ~empty[None, :]
    if not partial.any():
        return data
    data = np.array(data, dtype=float)
    observed = ~missing
    count = observed.sum(axis=0)
    mean = np.where(observed, data, 0.0).sum(axis=0) / np.maximum(count, 1)  # markers with nothing observed: unused
    idx = np.nonzero(partial)
    data[idx] = mean[idx[1:]]
    return data


def _kinship_of(genotypes: Genotypes, data: np.ndarray, kind: str, quiet: bool = False) -> np.ndarray:
    if genotypes.kind == "genoprobs":
        return kinship_from_genoprobs(data, genotypes.genotype_names, warn=not quiet)
    return kinship_from_dosages(data, kind, warn=not quiet)


def _genotype_kinship(genotypes: Genotypes, kind: str) -> np.ndarray:
    return _kinship_of(genotypes, _kinship_data(genotypes), kind)


class _LocoKinship:
    """Leave-one-chromosome-out kinships, one chromosome at a time.

    With ``M`` markers in all and ``M_c`` on chromosome c (polymorphic ones,
    for dosages), ``K_{-c} = (M K - M_c K_c) / (M - M_c)``: the overall
    kinship is formed once and each chromosome's own kinship when it is
    scanned, so memory holds two n x n matrices rather than one per
    chromosome.
    """

    def __init__(self, genotypes: Genotypes, kind: str):
        self.genotypes = genotypes
        self.kind = kind
        self.data = _kinship_data(genotypes)
        chrom = np.asarray(genotypes.chromosome, dtype=object)
        self.members = {c: np.flatnonzero(chrom == c) for c in genotypes.chromosomes}
        if len(self.members) < 2:
            raise LMMInputError(
                f"all markers are on chromosome '{genotypes.chromosomes[0]}'; leave-one-chromosome-out "
                "kinships need markers on at least two chromosomes (use kinship='overall')"
            )
        self.used = self._used(self.data)
        self.total_used = int(self.used.sum())
        self.K = _kinship_of(genotypes, self.data, kind)

    def _used(self, data) -> np.ndarray:
        """Markers the kinship averages over (as the kinship functions count them)."""
        if self.genotypes.kind == "genoprobs":
            return ~np.isnan(data[0]).any(axis=-1)
        return np.ptp(data, axis=0) > MONOMORPHIC_TOLERANCE  # False for an all-missing marker

    def matrix(self, chromosome: str) -> np.ndarray:
        idx = self.members[chromosome]
        m_c = int(self.used[idx].sum())
        rest = self.total_used - m_c
        if rest == 0:
            raise LMMInputError(
                f"every informative marker is on chromosome '{chromosome}', so the kinship without it "
                "has no markers; use kinship='overall'"
            )
        if m_c == 0:
            return self.K
        sl = _as_slice(idx)
        K_c = _kinship_of(self.genotypes, self.data[:, sl], self.kind, quiet=True)
        out = (self.total_used * self.K - m_c * K_c) / rest
        return (out + out.T) * 0.5


def _as_slice(idx: np.ndarray):
    if idx.size and idx[-1] - idx[0] == idx.size - 1:
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


# --------------------------------------------------------------------------- #
# Null model
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _NullModel:
    """What every marker of a (kinship, individuals) pair reuses from the null fit.

    ``resid`` are the rotated null residuals ``r = y* - X* b`` (n x
    phenotypes; any b will do: the scan projects X out again at its h2).
    ``h2_scan`` is the h2 the fixed-h2 scan uses: ``h2``, except 0 where h2
    is not identifiable (every h2 fits equally well; the fit reports NaN)
    and ``1 - 1e-9`` where h2 = 1 with a singular kinship (where the weights
    are infinite; the scan then takes the limit to about 1e-8).
    """

    h2: np.ndarray
    h2_scan: np.ndarray
    sigma2: np.ndarray
    loglik: np.ndarray
    resid: np.ndarray
    h2_ml: np.ndarray | None
    loglik_ml: np.ndarray | None
    logdet_XtX: float
    ml_r0: int = 0
    ml_cap: float = 1.0

    @classmethod
    def fit(cls, rot, method: str, refit: bool, names, coef_names, lrt_likelihood: str = "full") -> "_NullModel":
        fits = fit_rotated(rot, method, phenotype_names=names, coef_names=coef_names)
        h2 = _polish_h2(rot, np.array([f.h2 for f in fits]), method)
        h_wls = np.where(np.isnan(h2), 0.0, h2)
        if np.any(rot.d == 0):
            h_wls = np.minimum(h_wls, 1.0 - _SINGULAR_EDGE)
        sol = solve_wls_paired(rot, h_wls, np.arange(h2.size), method)
        loglik = np.array([f.loglik for f in fits]) if np.isnan(h2).any() else \
            profile_loglik_paired(rot, h2, np.arange(h2.size), method)
        beta = np.array([f.beta for f in fits])  # (P, p)
        resid = rot.y - rot.X @ beta.T
        h2_ml = loglik_ml = None
        ml_r0, ml_cap = rot.ml_null_directions, 1.0
        if refit and lrt_likelihood == "full":
            ml_r0 = 0
            ml_cap = FULL_ML_CAP if rot.ml_null_directions > 0 else 1.0
            h2_ml, loglik_ml = _maximize_full_ml(rot, ml_cap)
            at_cap = [nm for nm, h in zip(names, h2_ml) if ml_cap < 1.0 and h >= ml_cap]
            if at_cap:
                warnings.warn(
                    f"phenotype(s) {', '.join(at_cap)}: the full ML likelihood of the null model is largest at "
                    f"the bound h2 = {ml_cap:.6f} (lambda = 1e5, as GEMMA): with this kinship and an intercept "
                    "it grows without bound as h2 -> 1, so the LRT compares values at that bound; "
                    "lrt_likelihood='projected' (--lrt-likelihood projected) avoids this",
                    LMMWarning,
                    stacklevel=3,
                )
        elif refit:
            if method == "ml":
                h2_ml, loglik_ml = h2, loglik
            else:
                ml = fit_rotated(rot, "ml", phenotype_names=names, coef_names=coef_names)
                h2_ml = _polish_h2(rot, np.array([f.h2 for f in ml]), "ml")
                loglik_ml = np.array([f.loglik for f in ml]) if np.isnan(h2_ml).any() else \
                    profile_loglik_paired(rot, h2_ml, np.arange(h2.size), "ml")
        h2_scan = np.where(np.isnan(h2), 0.0, h2)
        if np.any(rot.d == 0):
            h2_scan = np.minimum(h2_scan, 1.0 - _SINGULAR_EDGE)
        return cls(
            h2=h2,
            h2_scan=h2_scan,
            sigma2=sol.sigma2,
            loglik=loglik,
            resid=resid,
            h2_ml=h2_ml,
            loglik_ml=loglik_ml,
            logdet_XtX=rot.logdet_XtX,
            ml_r0=int(ml_r0),
            ml_cap=float(ml_cap),
        )


def _maximize_full_ml(rot, cap: float, size: int = 51):
    """Null ML of every phenotype with the full likelihood on ``[0, cap]``.

    The same search as :func:`lmmcore.optimize.maximize_profile` (a grid,
    Brent in the best bracket, the ends kept when better), on the likelihood
    of all n observations (``ml_null_directions = 0``), then polished by
    :func:`_polish_h2`. Returns ``(h2, loglik)``.
    """
    full = replace(rot, ml_null_directions=0, ml_unbounded=False)
    grid = np.linspace(0.0, cap, size)
    values = profile_loglik(full, grid, "ml")  # (k, P)
    P = values.shape[1]
    k = np.argmax(values, axis=0)
    best = values[k, np.arange(P)]
    low, high = grid[np.maximum(k - 1, 0)], grid[np.minimum(k + 1, size - 1)]
    x0 = grid[k].copy()
    f0 = best.copy()
    at_end = (k == 0) | (k == size - 1)
    x0[at_end] = np.where(k[at_end] == 0, low[at_end] + _GOLDEN * (high[at_end] - low[at_end]),
                          high[at_end] - _GOLDEN * (high[at_end] - low[at_end]))
    cols = np.arange(P)
    if np.any(at_end):
        f0[at_end] = profile_loglik_paired(full, x0[at_end], cols[at_end], "ml")
    res = brent_maximize(lambda h, lanes: profile_loglik_paired(full, h, cols[lanes], "ml"), low, high, x0, f0)
    h = np.where(best >= res.fx, grid[k], res.x)
    h = _polish_h2(full, h, "ml")
    return h, profile_loglik_paired(full, h, cols, "ml")


def _profile_slopes(rot, h: np.ndarray, columns: np.ndarray, method: str) -> np.ndarray:
    r"""``dL/dh`` of phenotypes' profile log-likelihoods (ML or REML), phenotype ``columns[l]`` at ``h[l]``.

    ML leaves out the ``r0`` directions of K's null space that the covariates
    span (``n' = n - r0``), as :mod:`lmmcore.likelihood` does.

    Notes
    -----
    With ``w_i = 1 / (1 + h (d_i - 1))``, ``r`` the weighted least squares
    residual and ``A = X*'WX*`` (the envelope theorem removes the derivative
    of b):

    .. math::

        \frac{d\,\mathrm{rss}}{dh} = -\sum_i (d_i - 1) w_i^2 r_i^2, \qquad
        \frac{d}{dh} \sum_i \log v_i = \sum_i (d_i - 1) w_i,

        L'_{ML} = -\tfrac12 \Big[n' \frac{\mathrm{rss}'}{\mathrm{rss}}
                 + \sum_i (d_i - 1) w_i + \frac{r_0}{1 - h}\Big], \qquad
        L'_{REML} = -\tfrac12 \Big[(n - p) \frac{\mathrm{rss}'}{\mathrm{rss}}
                 + \sum_i (d_i - 1) w_i
                 - \mathrm{tr}\big(A^{-1} X^{*\prime} \mathrm{diag}((d - 1) w^2) X^*\big)\Big].
    """
    h = np.asarray(h, dtype=float)
    d1 = rot.d - 1.0
    w = 1.0 / (1.0 + np.multiply.outer(h, d1))  # (L, n)
    X = rot.X
    Y = rot.y[:, columns].T  # (L, n)
    A = np.einsum("ln,na,nb->lab", w, X, X)
    b = np.linalg.solve(A, ((w * Y) @ X)[..., None])[..., 0]
    r = Y - b @ X.T
    wr2 = w * r * r
    rss = wr2.sum(axis=1)
    slope_rss = -(wr2 * w) @ d1
    trace = w @ d1
    if method == "ml":
        r0 = rot.ml_null_directions
        return -0.5 * (rot.n_ml * slope_rss / rss + trace + (r0 / (1.0 - h) if r0 else 0.0))
    B = np.einsum("ln,na,nb->lab", d1 * w * w, X, X)
    tr = np.trace(np.linalg.solve(A, B), axis1=-2, axis2=-1)
    return -0.5 * ((rot.n - rot.p) * slope_rss / rss + trace - tr)


def _polish_h2(rot, h2: np.ndarray, method: str, step: float = 1e-5) -> np.ndarray:
    """Pin interior optima of the null profile to rounding by a root of ``dL/dh``.

    Brent's method on function values locates a maximum to about
    ``sqrt(eps)`` relative (1e-8); the fixed-h2 LOD moves with h2 to first
    order, so a LOD reproducible to 1e-8 (for instance between ``K`` and
    ``2K``, whose optima map exactly onto each other) needs more. The slope
    changes sign at the optimum inside ``[h - step, h + step]``; bisection
    of that bracket, all phenotypes at once, halves it to rounding (about 50
    halvings). Optima on or next to a boundary, and brackets without a sign
    change, are kept.
    """
    out = np.array(h2, dtype=float)
    lo, hi = out - step, out + step
    cols = np.flatnonzero(np.isfinite(out) & (lo > 0.0) & (hi < 1.0))
    if cols.size == 0:
        return out
    lo, hi = lo[cols], hi[cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        f_lo, f_hi = _profile_slopes(rot, lo, cols, method), _profile_slopes(rot, hi, cols, method)
    ok = np.isfinite(f_lo) & np.isfinite(f_hi) & (f_lo > 0.0) & (f_hi < 0.0)
    cols, lo, hi = cols[ok], lo[ok], hi[ok]
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        if np.all((mid <= lo) | (mid >= hi)):
            break  # adjacent floating-point numbers
        with np.errstate(divide="ignore", invalid="ignore"):
            up = _profile_slopes(rot, mid, cols, method) > 0.0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    out[cols] = 0.5 * (lo + hi)
    return out


# --------------------------------------------------------------------------- #
# Marker blocks: gather, centre, rotate, project out X, whiten
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Block:
    """Rotated, covariate-adjusted and whitened marker columns of one chunk.

    Attributes
    ----------
    G : ndarray, shape (n, m, q)
        ``G~_j = (I - QQ') U' (G_j - mean) T_j``; columns of dropped
        directions are zero.
    T : ndarray, shape (m, q, q)
        Effects on the original (centred) genotype columns are ``T_j a~``.
    pad : ndarray of bool, shape (m, q)
        The dropped (zero) columns of ``G``.
    rank : ndarray of int, shape (m,)
        Degrees of freedom of each marker's test.
    flag : ndarray of object, shape (m,)
    n_imputed : int
        Missing genotype values replaced by the marker mean.
    """

    G: np.ndarray
    T: np.ndarray
    pad: np.ndarray
    rank: np.ndarray
    flag: np.ndarray
    n_imputed: int


def _marker_array(genotypes: Genotypes, rows: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """The (n, m, q) float64 marker columns of ``rows``.

    A view into the genotypes when that needs no copy (dosages of every
    individual in order, a contiguous run of markers): treat it as read-only.
    """
    cols = _as_slice(np.asarray(markers))
    if genotypes.kind == "dosage":
        dosage = genotypes.dosage
        if isinstance(cols, slice) and _is_identity_index(rows, dosage.shape[0]) and dosage.dtype == np.float64:
            return dosage[:, cols][:, :, None]
        out = dosage[rows, cols] if isinstance(cols, slice) else dosage[np.ix_(rows, cols)]
        return np.ascontiguousarray(out, dtype=np.float64)[:, :, None]
    probs = genotypes.probs
    out = probs[rows, cols, 1:] if isinstance(cols, slice) else probs[np.ix_(rows, cols, np.arange(1, probs.shape[2]))]
    return np.ascontiguousarray(out, dtype=np.float64)


def _impute(flat: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Replace missing values by their column's mean (in a copy).

    Returns the completed array, which columns had nothing observed (they
    become 0), and how many values were filled in.
    """
    n = flat.shape[0]
    count = n - missing.sum(axis=0)
    sums = np.where(missing, 0.0, flat).sum(axis=0)
    means = np.where(count > 0, sums / np.maximum(count, 1), 0.0)
    out = np.array(flat, dtype=np.float64)
    r, c = np.nonzero(missing)
    out[r, c] = means[c]
    return out, count == 0, int(missing[:, count > 0].sum())


def _marker_rotation(U: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """The (n + p) x n matrix that rotates marker columns and splits off the covariates.

    Its first n rows are ``(I - QQ') U'`` and its last p rows ``Q'U'``, so
    one product with G gives both ``R = (I - QQ') U'G`` and ``C = Q'U'G``
    (step 1 of the module docstring without a second pass over the chunk).
    """
    QtUt = Q.T @ U.T  # (p, n)
    out = np.empty((U.shape[0] + Q.shape[1], U.shape[0]))
    out[: U.shape[0]] = U.T
    out[: U.shape[0]] -= Q @ QtUt
    out[U.shape[0]:] = QtUt
    return out


def _prepare_block(raw: np.ndarray, rotation: np.ndarray, check_missing: bool = True) -> _Block:
    """Steps 1-2 of the module docstring for one chunk (``raw`` is not modified).

    Notes
    -----
    Missing values are replaced by the column mean (a column with none
    observed is flagged ``all_missing``). ``rotation`` is
    :func:`_marker_rotation`'s matrix: with ``G* = U'G``, ``C = Q'G*`` and
    ``R = G* - QC`` (the part of the marker not explained by the
    covariates), a direction of ``R_j`` is kept when its eigenvalue of
    ``R_j'R_j`` exceeds ``RANK_TOLERANCE`` times the marker's largest raw sum
    of squares ``max_a ||G_ja||^2 = max_a (||R_ja||^2 + ||C_ja||^2)`` (U is
    orthogonal and Q orthonormal, so no extra pass over the data is needed).
    Projecting out ``Q`` also removes each column's mean, since the
    covariates include an intercept.
    """
    n, m, q = raw.shape
    flat = raw.reshape(n, m * q)
    n_imputed = 0
    all_missing = np.zeros(m, dtype=bool)
    if check_missing:
        missing = np.isnan(flat)
        if missing.any():
            flat, empty, n_imputed = _impute(flat, missing)
            all_missing = empty.reshape(m, q).any(axis=1)
    RC = rotation @ flat
    R, C = RC[:n], RC[n:]
    ss_cols = np.einsum("ij,ij->j", R, R)
    ref = (ss_cols + np.einsum("ij,ij->j", C, C)).reshape(m, q).max(axis=1)
    threshold = RANK_TOLERANCE * np.maximum(ref, np.finfo(float).tiny)
    if q == 1:
        keep = (ss_cols > threshold) & ~all_missing
        scale = np.where(keep, 1.0 / np.sqrt(np.where(keep, ss_cols, 1.0)), 0.0)
        R *= scale
        G = R.reshape(n, m, 1)
        T = scale.reshape(m, 1, 1)
        keep = keep[:, None]
    else:
        R3 = R.reshape(n, m, q)
        gram = np.einsum("nma,nmb->mab", R3, R3)
        lam, vec = np.linalg.eigh(gram)
        keep = (lam > threshold[:, None]) & ~all_missing[:, None]
        inv_sqrt = np.where(keep, 1.0 / np.sqrt(np.where(keep, lam, 1.0)), 0.0)
        T = vec * inv_sqrt[:, None, :]
        G = np.einsum("nma,mab->nmb", R3, T, optimize=True)
    rank = keep.sum(axis=1)
    flag = np.full(m, "", dtype=object)
    flag[(rank > 0) & (rank < q)] = FLAG_RANK_DEFICIENT
    empty = np.flatnonzero(rank == 0)
    if empty.size:
        cols3 = flat.reshape(n, m, q)[:, empty, :]
        constant = np.all(cols3 == cols3[:1], axis=(0, 2))
        flag[empty] = np.where(constant, FLAG_MONOMORPHIC, FLAG_COLLINEAR)
    flag[all_missing] = FLAG_ALL_MISSING
    return _Block(G=G, T=T, pad=~keep, rank=rank, flag=flag, n_imputed=n_imputed)


# --------------------------------------------------------------------------- #
# Fixed-h2 scan
# --------------------------------------------------------------------------- #
def _weights(h2: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``1 / (h d_i + 1 - h)``, shape (n, len(h2))."""
    return 1.0 / (1.0 + np.multiply.outer(d - 1.0, np.asarray(h2, dtype=float)))


def _gram_weighted(G: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``G_j' diag(w) G_j`` for every marker j and weight column: (m, P, q, q)."""
    n, m, q = G.shape
    P = W.shape[1]
    out = np.empty((m, P, q, q))
    for a in range(q):
        for b in range(a, q):
            prod = G[:, :, a] * G[:, :, b]
            val = prod.T @ W  # (m, P)
            out[:, :, a, b] = val
            out[:, :, b, a] = val
    return out


def _fixed_scan(block: _Block, X: np.ndarray, d: np.ndarray, h0: np.ndarray, resid: np.ndarray) -> dict:
    """LOD, p-value and effects of every marker of a block at the null h2 of every phenotype.

    Returns arrays of shape (m, P) (``beta``, ``se``: (m, P, q)).
    """
    G = block.G
    n, m, q = G.shape
    p = X.shape[1]
    P = h0.size
    W = _weights(h0, d)  # (n, P)
    flat = G.reshape(n, m * q)
    WR = W * resid
    A = np.einsum("na,nb,nP->Pab", X, X, W)
    Ainv = np.linalg.inv(A)
    Xr = X.T @ WR  # (p, P): X'W r, zero up to rounding
    rss0 = np.einsum("nP,nP->P", WR, resid) - np.einsum("aP,Pab,bP->P", Xr, Ainv, Xr)
    c = (flat.T @ WR).reshape(m, q, P).transpose(0, 2, 1)  # (m, P, q)
    XW = (X[:, :, None] * W[:, None, :]).reshape(n, p * P)
    B = (flat.T @ XW).reshape(m, q, p, P).transpose(0, 3, 2, 1)  # (m, P, p, q)
    GWG = _gram_weighted(G, W)  # (m, P, q, q)
    Bt = np.swapaxes(B, -1, -2)
    S = GWG - Bt @ (Ainv[None] @ B)
    S = S + _pad_identity(block.pad)[:, None]
    c = c - (Bt @ (Ainv @ Xr.T[:, :, None])[None])[..., 0]
    c = np.where(block.pad[:, None, :], 0.0, c)
    Sinv = np.linalg.inv(S)
    u = (Sinv @ c[..., None])[..., 0]
    explained = np.einsum("mPq,mPq->mP", c, u)
    rss1 = np.maximum(rss0[None, :] - explained, rss0[None, :] * np.finfo(float).eps)
    lod = 0.5 * n * np.log10(rss0[None, :] / rss1)
    rank = block.rank[:, None]
    valid = np.broadcast_to(rank > 0, lod.shape)
    lod = np.where(valid, np.maximum(lod, 0.0), np.nan)
    p_value = np.where(valid, special.chdtrc(np.maximum(rank, 1), 2.0 * np.log(10.0) * np.nan_to_num(lod)), np.nan)
    sigma2 = rss1 / np.maximum(n - p - rank, 1)
    beta, se = _to_original(block.T, u, Sinv, sigma2)
    beta = np.where(valid[..., None], beta, np.nan)
    se = np.where(valid[..., None], se, np.nan)
    return {"lod": lod, "p_value": p_value, "beta": beta, "se": se}


def _pad_identity(pad: np.ndarray) -> np.ndarray:
    """Identity entries on the diagonal of dropped directions: (m, q, q)."""
    m, q = pad.shape
    out = np.zeros((m, q, q))
    idx = np.arange(q)
    out[:, idx, idx] = pad
    return out


def _to_original(T: np.ndarray, u: np.ndarray, Sinv: np.ndarray, sigma2: np.ndarray):
    """Effects and standard errors on the original genotype columns.

    ``a = T_j u`` and ``cov(a) = sigma2 T_j S^{-1} T_j'`` (u, Sinv per marker
    and phenotype: (m, P, q) and (m, P, q, q)).
    """
    Tm = T[:, None]  # (m, 1, q, q)
    beta = (Tm @ u[..., None])[..., 0]
    cov = Tm @ Sinv @ np.swapaxes(Tm, -1, -2)
    se = np.sqrt(np.maximum(np.diagonal(cov, axis1=-2, axis2=-1), 0.0) * sigma2[..., None])
    return beta, se


# --------------------------------------------------------------------------- #
# Exact scan: h2 re-estimated at every marker
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Stats:
    """Weighted cross products of y, X and a marker's columns at some h.

    Leading shapes broadcast: marker-free terms may have a size-1 marker axis.
    """

    yy: np.ndarray  # (..., )
    Xy: np.ndarray  # (..., p)
    XX: np.ndarray  # (..., p, p)
    Gy: np.ndarray  # (..., q)
    XG: np.ndarray  # (..., p, q)
    GG: np.ndarray  # (..., q, q)
    logdet_V: np.ndarray  # (..., )


def _likelihoods(st: _Stats, pad: np.ndarray, rank: np.ndarray, n: int, p: int, logdet_XtX: float,
                 h: np.ndarray, r0: np.ndarray):
    """ML and REML log-likelihoods of the marker model from its sufficient statistics.

    Returns ``(L_ml, L_reml, rss0, rss1, u, Sinv)`` with ``u = S^{-1} c`` the
    whitened effects.

    Notes
    -----
    ``r0`` counts the directions of K's null space that the model's columns
    span (1 for a centred kinship with an intercept). ML leaves them out, as
    :mod:`lmmcore.likelihood` does: ``n' = n - r0`` observations and a
    ``- r0 log(1 - h)`` term in the log-determinant; otherwise the ML
    likelihood grows without bound as h -> 1.
    """
    Ainv = np.linalg.inv(st.XX)
    b0 = (Ainv @ st.Xy[..., None])[..., 0]
    rss0 = st.yy - np.einsum("...a,...a->...", st.Xy, b0)
    chol_A = np.linalg.cholesky(st.XX)
    logdet_A = 2.0 * np.log(np.diagonal(chol_A, axis1=-2, axis2=-1)).sum(axis=-1)
    XGt = np.swapaxes(st.XG, -1, -2)
    q = st.GG.shape[-1]
    eye = np.zeros(pad.shape + (q,))
    idx = np.arange(q)
    eye[..., idx, idx] = pad
    S = st.GG - XGt @ (Ainv @ st.XG) + eye
    c = st.Gy - (XGt @ b0[..., None])[..., 0]
    c = np.where(pad, 0.0, c)
    if q == 1:  # one column (dosages): scalars, no batched LAPACK calls
        with np.errstate(divide="ignore", invalid="ignore"):
            logdet_S = np.log(S[..., 0, 0])
            Sinv = 1.0 / S
    else:
        chol_S = np.linalg.cholesky(S)
        logdet_S = 2.0 * np.log(np.diagonal(chol_S, axis1=-2, axis2=-1)).sum(axis=-1)
        Sinv = np.linalg.inv(S)
    u = (Sinv @ c[..., None])[..., 0]
    rss1 = rss0 - np.einsum("...a,...a->...", c, u)
    rss1 = np.maximum(rss1, rss0 * np.finfo(float).eps)
    p1 = p + rank
    n_ml = n - r0
    with np.errstate(divide="ignore", invalid="ignore"):
        null_term = np.where(r0 > 0, r0 * np.log1p(-np.minimum(h, 1.0)), 0.0)
    L_ml = -0.5 * (n_ml * (LOG_2PI + np.log(rss1 / n_ml)) + st.logdet_V - null_term + n_ml)
    L_reml = -0.5 * (
        (n - p1) * (LOG_2PI + np.log(rss1 / (n - p1)) + 1.0) + st.logdet_V + logdet_A + logdet_S - logdet_XtX
    )
    return L_ml, L_reml, rss0, rss1, u, Sinv


#: Most factors multiplied together before one log in :func:`_sum_log_rows`.
_LOG_GROUP = 16


def _log_group_size(max_abs_log: float) -> int:
    """How many factors with ``|log v| <= max_abs_log`` multiply without overflow or underflow.

    A product of k such factors lies in ``[e^{-k a}, e^{k a}]``; k is chosen
    so that ``k a <= 600`` (float64 spans ``e^{+-708}``).
    """
    if not np.isfinite(max_abs_log):
        return 1
    return int(min(_LOG_GROUP, max(1, 600.0 // max(max_abs_log, 1e-300))))


def _sum_log_rows(v: np.ndarray, group: int) -> np.ndarray:
    """``np.log(v).sum(axis=1)`` with one log per ``group`` factors.

    Notes
    -----
    ``sum_i log v_i = sum_b log prod_{i in b} v_i`` over blocks b of
    ``group`` factors: the log, the costly part of evaluating the
    log-determinant ``sum_i log(h d_i + 1 - h)`` of many lanes, is taken
    ``group`` times less often. The products are formed by elementwise
    multiplication of strided slices (contiguous, vectorised); each has a
    relative rounding error of at most ``group`` ulps, so the sum is as
    accurate as the sum of the logs. ``group`` comes from
    :func:`_log_group_size`, so no product overflows or underflows.
    """
    L, n = v.shape
    k = max(1, int(group))
    if k == 1 or n < 2 * k:
        return np.log(v).sum(axis=1)
    cols = n // k
    head = v[:, : cols * k].reshape(L, k, cols)
    prod = head[:, 0].copy()
    for j in range(1, k):
        prod *= head[:, j]
    out = np.log(prod).sum(axis=1)
    if cols * k < n:
        out += np.log(v[:, cols * k:]).sum(axis=1)
    return out


def _null_space_columns(block: _Block, d: np.ndarray) -> np.ndarray:
    """How many of each marker's (whitened) directions lie in K's null space.

    Such a direction adds to ``r0`` of the marker model (see
    :func:`_likelihoods`): its coordinates on the rows with ``d_i > 0`` are
    zero (below ``1e-10`` of its unit norm).
    """
    null = d == 0
    m, q = block.pad.shape
    if not np.any(null):
        return np.zeros(m, dtype=int)
    G_plus = block.G[~null]
    gram = np.einsum("nma,nmb->mab", G_plus, G_plus)
    lam = np.linalg.eigvalsh(gram)
    return np.maximum((lam < 1e-10).sum(axis=1) - block.pad.sum(axis=1), 0)


class _BlockColumns:
    """A block's whitened columns in the layouts the exact scan reads, shared by the phenotypes.

    ``pair_products`` holds ``G_a * G_b`` for every pair of columns ``a <= b``
    (n, m, pairs) when there are at most :data:`_CACHED_PAIRS` pairs (one or
    two genotype columns); with more it would outgrow the chunk's memory
    budget and the products are formed when needed. ``marker_major`` is the
    (m, q, n) copy for gathering one marker per lane (Brent on the exact
    profile), made on first use.
    """

    def __init__(self, G: np.ndarray):
        self.G = G
        n, m, q = G.shape
        self.pairs = [(a, b) for a in range(q) for b in range(a, q)]
        self.pair_products = None
        if len(self.pairs) <= _CACHED_PAIRS:
            self.pair_products = np.empty((n, m, len(self.pairs)))
            for k, (a, b) in enumerate(self.pairs):
                np.multiply(G[:, :, a], G[:, :, b], out=self.pair_products[:, :, k])
        self._marker_major = None

    @property
    def marker_major(self) -> np.ndarray:
        if self._marker_major is None:
            self._marker_major = np.ascontiguousarray(np.transpose(self.G, (1, 2, 0)))
        return self._marker_major

    def weighted_gram(self, W: np.ndarray, markers: np.ndarray | None) -> np.ndarray:
        """``G_j' diag(w_h) G_j`` for every row ``w_h`` of W and selected marker j: (H, m, q, q)."""
        G = self.G if markers is None else self.G[:, markers]
        n, m, q = G.shape
        H = W.shape[0]
        out = np.empty((H, m, q, q))
        if self.pair_products is not None:
            prods = self.pair_products if markers is None else self.pair_products[:, markers]
            vals = (W @ prods.reshape(n, -1)).reshape(H, m, len(self.pairs))
        for k, (a, b) in enumerate(self.pairs):
            val = vals[:, :, k] if self.pair_products is not None else W @ (G[:, :, a] * G[:, :, b])
            out[:, :, a, b] = val
            out[:, :, b, a] = val
        return out


class _MarkerProfiles:
    """The log-likelihoods of every marker model of a block as functions of h.

    ``y`` is one phenotype's rotated null residual scaled to unit mean square
    (the model contains X, so the likelihood in h is unchanged up to the
    constant ``-n log s`` or ``-(n - p1) log s``). ``columns`` holds the
    block's columns in the layouts the computations read; it is shared by
    the phenotypes of a block.
    """

    def __init__(self, block: _Block, X: np.ndarray, d: np.ndarray, y: np.ndarray, logdet_XtX: float,
                 columns: _BlockColumns | None = None, r0_null: int = 0):
        self.G = block.G
        self.columns = columns if columns is not None else _BlockColumns(block.G)
        self.pad = block.pad
        self.rank = block.rank
        self.r0_null = int(r0_null)
        self.r0 = r0_null + _null_space_columns(block, d) if r0_null else np.zeros(block.rank.size, dtype=int)
        self.X = X
        self.d1 = d - 1.0
        self.singular = bool(np.any(d == 0))
        self.y = y
        self.logdet_XtX = logdet_XtX
        n, p = X.shape
        self.n, self.p = n, p
        # marker-free products whose weighted sums give y'Wy, X'Wy, X'WX
        self.fixed_products = np.column_stack([y * y, X * y[:, None], (X[:, :, None] * X[:, None, :]).reshape(n, p * p)])
        # y and the covariates as the rows that multiply G (Gy and X'G in one product)
        self._yX = np.vstack([y, X.T])  # (1 + p, n)
        self._work_v = None
        self._work_g = None

    @property
    def Gt(self) -> np.ndarray:
        """The block's columns as (m, q, n)."""
        return self.columns.marker_major

    def _split_fixed(self, sums: np.ndarray):
        p = self.p
        return sums[..., 0], sums[..., 1:1 + p], sums[..., 1 + p:].reshape(sums.shape[:-1] + (p, p))

    def grid(self, h: np.ndarray, markers: np.ndarray | None = None, keep_stats: bool = False):
        """Log-likelihoods (ML, REML) of markers at shared values of h: (H, m) each.

        ``markers`` selects columns of the block (all by default). With
        ``keep_stats`` the sufficient statistics are returned too (a
        :class:`_Stats` with leading shape (H, m); marker-free parts (H, 1)),
        for interpolation at other h.
        """
        if markers is not None and markers.size == self.pad.shape[0] and np.array_equal(markers, np.arange(markers.size)):
            markers = None  # every marker, in order: no copy
        if markers is not None and 3 * markers.size > self.pad.shape[0]:
            # gathering many columns costs more than computing them all and keeping some
            L_ml, L_reml, *rest = self.grid(h, None, keep_stats)
            if keep_stats:
                st = rest[0]
                st = None if st is None else replace(st, Gy=st.Gy[:, markers], XG=st.XG[:, markers],
                                                     GG=st.GG[:, markers])
                return L_ml[:, markers], L_reml[:, markers], st
            return L_ml[:, markers], L_reml[:, markers]
        G = self.G if markers is None else self.G[:, markers]
        pad = self.pad if markers is None else self.pad[markers]
        rank = self.rank if markers is None else self.rank[markers]
        r0 = self.r0 if markers is None else self.r0[markers]
        n, m, q = G.shape
        p = self.p
        h = np.asarray(h, dtype=float)
        ok = ~((h >= 1.0) & self.singular)
        hh = h[ok]
        V = 1.0 + np.multiply.outer(hh, self.d1)  # (H, n)
        W = 1.0 / V
        logdet_V = np.log(V).sum(axis=1)
        yy, Xy, XX = self._split_fixed(W @ self.fixed_products)
        H = hh.size
        # rows (w_h * y) and (w_h * x_c) for all h: G'Wy and X'WG in one product
        weighted = (W[:, None, :] * self._yX[None]).reshape(H * (1 + p), n)
        both = (weighted @ G.reshape(n, m * q)).reshape(H, 1 + p, m, q)
        Gy = both[:, 0]
        XG = both[:, 1:].transpose(0, 2, 1, 3)
        GG = self.columns.weighted_gram(W, markers)
        st = _Stats(yy[:, None], Xy[:, None], XX[:, None], Gy, XG, GG, logdet_V[:, None])
        L_ml, L_reml, *_ = _likelihoods(st, pad[None], rank[None], n, p, self.logdet_XtX, hh[:, None], r0[None])
        full_ml = np.full((h.size, m), -np.inf)
        full_reml = np.full((h.size, m), -np.inf)
        full_ml[ok] = L_ml
        full_reml[ok] = L_reml
        if keep_stats:
            return full_ml, full_reml, (st if ok.all() else None)
        return full_ml, full_reml

    def lanes(self, h: np.ndarray, markers: np.ndarray):
        """Everything at ``h[l]`` for marker ``markers[l]``: the output of :func:`_likelihoods`.

        Notes
        -----
        Lanes are processed in blocks of ``LANE_BLOCK`` so that the block's
        ``LANE_BLOCK x n`` work arrays (variance factors
        ``v_li = 1 + h_l (d_i - 1)``, weights, gathered marker columns) stay
        in cache between the ten or so passes over them; the weighted sums
        are then matrix-vector products per block.
        """
        n, p = self.n, self.p
        h = np.asarray(h, dtype=float)
        L = markers.size
        q = self.Gt.shape[1]
        fixed = np.empty((L, self.fixed_products.shape[1]))
        logdet_V = np.empty(L)
        Gy = np.empty((L, q))
        XG = np.empty((L, p, q))
        GG = np.empty((L, q, q))
        B = min(LANE_BLOCK, max(L, 1))
        if self._work_v is None:
            self._work_v = np.empty(LANE_BLOCK * n)
            self._work_g = np.empty(LANE_BLOCK * q * n)
        V = self._work_v[: B * n].reshape(B, n)
        Gm = self._work_g[: B * q * n].reshape(B, q, n)
        for s in range(0, L, B):
            e = min(L, s + B)
            v, g = V[: e - s], Gm[: e - s]
            np.multiply.outer(h[s:e], self.d1, out=v)
            v += 1.0
            logdet_V[s:e] = _sum_log_rows(v, self._log_group(h[s:e]))
            w = np.reciprocal(v, out=v)
            fixed[s:e] = w @ self.fixed_products
            first, last = int(markers[s]), int(markers[e - 1])
            if last - first == e - s - 1 and (e - s == 1 or bool(np.all(np.diff(markers[s:e]) == 1))):
                g = self.Gt[first:last + 1]  # a run of consecutive markers: no gather
            else:
                np.take(self.Gt, markers[s:e], axis=0, out=g)
            if q == 1:
                wg = np.multiply(w, g[:, 0, :], out=w)
                Gy[s:e, 0] = wg @ self.y
                XG[s:e, :, 0] = wg @ self.X
                GG[s:e, 0, 0] = np.einsum("ln,ln->l", wg, g[:, 0, :])
            else:
                wg = g * w[:, None, :]
                Gy[s:e] = wg @ self.y
                XG[s:e] = np.swapaxes(wg @ self.X, 1, 2)
                GG[s:e] = wg @ np.swapaxes(g, 1, 2)
        yy, Xy, XX = self._split_fixed(fixed)
        st = _Stats(yy, Xy, XX, Gy, XG, GG, logdet_V)
        return _likelihoods(st, self.pad[markers], self.rank[markers], n, p, self.logdet_XtX, h, self.r0[markers])

    def _log_group(self, h: np.ndarray) -> int:
        """Factors of ``v_i = 1 + h (d_i - 1)`` that can be multiplied before a log (see :func:`_sum_log_rows`)."""
        if h.size == 0:
            return 1
        corners = 1.0 + np.multiply.outer([h.min(), h.max()], [self.d1.min(), self.d1.max()])
        if not np.all(corners > 0):
            return 1
        return _log_group_size(float(np.abs(np.log(corners)).max()))

    def null_ml(self, h: float) -> float:
        """ML log-likelihood of the null model (no marker) at h (``r0`` directions left out)."""
        V = 1.0 + h * self.d1
        W = 1.0 / V
        yy, Xy, XX = self._split_fixed(self.fixed_products.T @ W)
        rss0 = yy - Xy @ np.linalg.solve(XX, Xy)
        n_ml, r0 = self.n - self.r0_null, self.r0_null
        null_term = r0 * np.log1p(-h) if r0 else 0.0
        return float(-0.5 * (n_ml * (LOG_2PI + np.log(rss0 / n_ml)) + np.log(V).sum() - null_term + n_ml))

    def maximize(self, markers: np.ndarray, cap: float = 1.0, tol: float = REFIT_TOL) -> "_Maxima":
        """ML and REML maxima over h of the given markers, with the REML fit's statistics.

        Parameters
        ----------
        markers : numpy.ndarray of int
            Columns of the block (markers with at least one column).
        cap : float
            Largest h (:data:`FULL_ML_CAP` for the full ML likelihood of a
            singular kinship, else 1).
        tol : float
            Tolerance on h of the exact Brent search used where interpolation
            is not trusted.

        Returns
        -------
        _Maxima

        Notes
        -----
        1. Every marker's ML and REML profiles are evaluated on the coarse
           grid of :func:`_refit_grid` (h = 0, ``log lambda = -10 .. 10``
           with ``lambda = h / (1 - h)``, and ``cap``): matrix products for
           all markers at once.
        2. Every local maximum ``g_k`` of each profile on the grid (not only
           the best: a narrow peak may sit between grid points; those more
           than :data:`REFIT_PEAK_MARGIN` below the best are left out) gives an
           interval ``[g_{k-1}, g_{k+1}]`` holding a local maximum; the
           highest of their maxima is the profile's. The profile there
           is a smooth (analytic) function of ``t = log lambda``: the weights
           ``1 / (1 + h (d_i - 1)) = (1 + lambda) / (1 + lambda d_i)`` have
           their poles at ``Im t = +-pi``, whatever the eigenvalues. So every
           marker is evaluated again at :data:`REFIT_NODES` Chebyshev-Lobatto
           nodes of its interval (shared by all markers with the same
           interval: matrix products again; in ``h`` itself near h = 0),
           and its profile is replaced by the polynomial through those
           values, whose maximum :func:`lmmcore.chebyshev.maximize_series`
           finds. The last Chebyshev coefficients estimate the interpolation
           error; a profile whose estimate exceeds
           :data:`REFIT_INTERPOLATION_TOL` (in log-likelihood units) is
           maximised instead by Brent's method on the exact profile, one
           lane per profile (:func:`lmmcore.optimize.brent_maximize`). The
           intervals next to h = 0, and next to h = 1 when ``cap = 1``, are
           in h itself (the profile is analytic there unless K is
           singular, whose values at h = 1 are not finite: Brent again).
        3. The REML fit's sufficient statistics at its maximum (for the Wald
           test) are interpolated with the same polynomials (computed exactly
           where Brent's method found the maximum).

        A grid point is kept when no interior point beats it: a boundary
        (h = 0 or ``cap``) is a real answer.
        """
        grid_h, bins, bin_of = _refit_grid(cap)
        M = markers.size
        q = self.G.shape[2]
        gml, greml = self.grid(grid_h, markers)
        values = np.concatenate([gml, greml], axis=1)  # lanes: ML then REML
        lane_pos = np.concatenate([np.arange(M), np.arange(M)])
        is_reml = np.repeat([False, True], M)
        # every local maximum of every lane's grid profile is a candidate (the best grid point
        # need not be next to the highest maximum when a narrow peak sits between grid points)
        cand_lane, cand_k = _grid_peaks(values, REFIT_PEAK_MARGIN)
        cand_reml = is_reml[cand_lane]
        cand_h = grid_h[cand_k].copy()
        cand_L = values[cand_k, cand_lane].copy()
        C = cand_lane.size
        cand_bin = bin_of[cand_k]
        interpolated = np.zeros(C, dtype=bool)
        # the REML fit's statistics at each interpolated REML candidate's maximum (Wald test)
        c_rss0, c_rss1 = np.full(C, np.nan), np.full(C, np.nan)
        c_u, c_Sinv = np.full((C, q), np.nan), np.full((C, q, q), np.nan)
        x_nodes = chebyshev.lobatto_nodes(REFIT_NODES)
        for b, (in_log_lambda, lo, hi) in enumerate(bins):
            cands = np.flatnonzero(cand_bin == b)
            if cands.size == 0:
                continue
            pos_b, inv = np.unique(lane_pos[cand_lane[cands]], return_inverse=True)
            mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
            s_nodes = mid + half * x_nodes
            h_nodes = special.expit(s_nodes) if in_log_lambda else s_nodes
            nml, nreml, st = self.grid(h_nodes, markers[pos_b], keep_stats=True)
            reml_b = cand_reml[cands]
            vals = np.where(reml_b, nreml[:, inv], nml[:, inv])  # (nodes, candidates)
            finite = np.all(np.isfinite(vals), axis=0)
            coef = chebyshev.coefficients(np.where(finite, vals, 0.0))
            good = finite & (chebyshev.tail(coef) <= REFIT_INTERPOLATION_TOL)
            if not np.any(good):
                continue
            mx = chebyshev.maximize_series(coef[:, good])
            cg = cands[good]
            better = mx.value > cand_L[cg]
            h_new = special.expit(mid + half * mx.x) if in_log_lambda else mid + half * mx.x
            h_new = np.clip(h_new, 0.0, cap)  # expit(logit(cap)) may round above cap
            cand_h[cg] = np.where(better, h_new, cand_h[cg])
            cand_L[cg] = np.where(better, mx.value, cand_L[cg])
            interpolated[cg] = True
            wald = reml_b & good
            if np.any(wald):
                cw = cands[wald]
                h_w = cand_h[cw]
                s_w = special.logit(h_w) if in_log_lambda else h_w
                weights = chebyshev.node_weights(np.clip((s_w - mid) / half, -1.0, 1.0), REFIT_NODES)
                cols = inv[wald]
                st_w = _Stats(
                    weights @ st.yy[:, 0],
                    weights @ st.Xy[:, 0],
                    np.einsum("lj,jab->lab", weights, st.XX[:, 0]),
                    np.einsum("lj,jla->la", weights, st.Gy[:, cols]),
                    np.einsum("lj,jlab->lab", weights, st.XG[:, cols]),
                    np.einsum("lj,jlab->lab", weights, st.GG[:, cols]),
                    weights @ st.logdet_V[:, 0],
                )
                mk = markers[lane_pos[cand_lane[cw]]]
                _, _, c_rss0[cw], c_rss1[cw], c_u[cw], c_Sinv[cw] = _likelihoods(
                    st_w, self.pad[mk], self.rank[mk], self.n, self.p, self.logdet_XtX, h_w, self.r0[mk])
        exact = np.flatnonzero(~interpolated)
        if exact.size:
            cand_h[exact], cand_L[exact] = self._brent(
                grid_h, values[:, cand_lane[exact]], cand_k[exact], markers[lane_pos[cand_lane[exact]]],
                cand_reml[exact], tol)
        # each lane's best candidate (lanes without a finite grid value keep their grid values)
        k = np.argmax(values, axis=0)
        h_best = grid_h[k].copy()
        L_best = values[k, np.arange(2 * M)].copy()
        order = np.lexsort((-cand_L, cand_lane))
        first = np.r_[True, cand_lane[order][1:] != cand_lane[order][:-1]] if C else np.zeros(0, dtype=bool)
        win = order[first]
        h_best[cand_lane[win]], L_best[cand_lane[win]] = cand_h[win], cand_L[win]
        rss0, rss1 = np.full(M, np.nan), np.full(M, np.nan)
        u, Sinv = np.full((M, q), np.nan), np.full((M, q, q), np.nan)
        win_reml = win[cand_reml[win]]
        done = win_reml[interpolated[win_reml]]
        pos = lane_pos[cand_lane[done]]
        rss0[pos], rss1[pos], u[pos], Sinv[pos] = c_rss0[done], c_rss1[done], c_u[done], c_Sinv[done]
        todo = np.setdiff1d(np.arange(M), pos)  # REML lanes maximised by Brent, or without a finite value
        if todo.size:
            _, _, rss0[todo], rss1[todo], u[todo], Sinv[todo] = self.lanes(h_best[M + todo], markers[todo])
        return _Maxima(h_ml=h_best[:M], loglik_ml=L_best[:M], h_reml=h_best[M:], loglik_reml=L_best[M:],
                       rss0=rss0, rss1=rss1, u=u, Sinv=Sinv, n_exact=int(np.unique(cand_lane[exact]).size))

    def _brent(self, grid_h, values, k, markers, is_reml, tol):
        """Brent's method on the exact profiles of some lanes, each in its grid bracket ``[g_{k-1}, g_{k+1}]``."""
        K = grid_h.size
        L = k.size
        lanes_all = np.arange(L)
        best_grid = values[k, lanes_all]
        low = grid_h[np.maximum(k - 1, 0)]
        high = grid_h[np.minimum(k + 1, K - 1)]
        x0 = grid_h[k].copy()
        f0 = best_grid.copy()
        at_end = (k == 0) | (k == K - 1)
        x0[at_end] = np.where(k[at_end] == 0, low[at_end] + _GOLDEN * (high[at_end] - low[at_end]),
                              high[at_end] - _GOLDEN * (high[at_end] - low[at_end]))

        def objective(h, lanes):
            L_ml, L_reml, *_ = self.lanes(h, markers[lanes])
            return np.where(is_reml[lanes], L_reml, L_ml)

        if np.any(at_end):
            ends = np.flatnonzero(at_end)
            f0[ends] = objective(x0[ends], ends)
        lo_k, hi_k = np.maximum(k - 1, 0), np.minimum(k + 1, K - 1)
        neighbours = (
            np.where(at_end, np.nan, low),
            np.where(at_end, np.nan, values[lo_k, lanes_all]),
            np.where(at_end, np.nan, high),
            np.where(at_end, np.nan, values[hi_k, lanes_all]),
        )
        res = brent_maximize(objective, low, high, x0, f0, tol=tol, neighbours=neighbours)
        use_grid = best_grid >= res.fx
        return np.where(use_grid, grid_h[k], res.x), np.where(use_grid, best_grid, res.fx)


@dataclass(frozen=True)
class _Maxima:
    """Each marker's ML and REML maxima over h, and the REML fit's statistics there.

    ``rss0``, ``rss1``, ``u`` (whitened effects) and ``Sinv`` are those of
    :func:`_likelihoods` at ``h_reml``; ``n_exact`` counts the profiles with
    a local maximum searched by Brent's method on the exact likelihood
    instead of by interpolation.
    """

    h_ml: np.ndarray
    loglik_ml: np.ndarray
    h_reml: np.ndarray
    loglik_reml: np.ndarray
    rss0: np.ndarray
    rss1: np.ndarray
    u: np.ndarray
    Sinv: np.ndarray
    n_exact: int


def _grid_peaks(values: np.ndarray, margin: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of every column of ``values`` (grid points x lanes): ``(lane, grid index)`` pairs.

    A point is a local maximum when it is finite, not below its left
    neighbour and above its right one (so a plateau counts once, at its
    right end); the ends compare with their one neighbour. Local maxima more
    than ``margin`` below their lane's best grid value are left out (the
    best is always kept). Pairs are sorted by lane.
    """
    pad = np.full((1, values.shape[1]), -np.inf)
    left = np.vstack([pad, values[:-1]])
    right = np.vstack([values[1:], pad])
    with np.errstate(invalid="ignore"):
        best = np.max(np.where(np.isfinite(values), values, -np.inf), axis=0)
        peak = np.isfinite(values) & (values >= left) & (values > right) & (values >= best - margin)
    lane, k = np.nonzero(peak.T)
    return lane, k


def _refit_grid(cap: float = 1.0):
    """The exact scan's coarse grid of h and the intervals its profiles are interpolated on.

    Returns ``(grid_h, bins, bin_of)``: the grid (h = 0, then
    ``expit(REFIT_LOG_LAMBDA)``, then ``cap``); the intervals as
    ``(in_log_lambda, low, high)`` (in ``t = log lambda``, or in h for the
    one at h = 0); and, for every grid point, the interval that holds its
    neighbours.
    """
    t = REFIT_LOG_LAMBDA
    grid_h = np.concatenate([[0.0], special.expit(t), [cap]])
    H = grid_h.size
    bins = [(False, 0.0, float(special.expit(t[1])))]  # [0, g_2] in h
    bin_of = np.full(H, -1)
    bin_of[:2] = 0
    for i in range(2, H - 2):  # grid index i is t[i - 1]
        bins.append((True, float(t[i - 2]), float(t[i])))
        bin_of[i] = len(bins) - 1
    if cap < 1.0:
        bins.append((True, float(t[-2]), float(special.logit(cap))))
    else:
        # [g_{H-3}, 1] in h: the profile is analytic at h = 1 when K is not singular
        # (its poles are at h = 1 / (1 - d_i), d_min / (1 - d_min) beyond 1); with a
        # singular K the value at h = 1 is not finite and Brent takes over
        bins.append((False, float(special.expit(t[-2])), 1.0))
    bin_of[H - 2:] = len(bins) - 1
    return grid_h, bins, bin_of


def _exact_scan(block: _Block, rot, null: _NullModel) -> dict:
    """ML (LRT) and REML (Wald) tests with h2 re-estimated at every marker of a block.

    Returns arrays of shape (m, P) (``beta_wald``, ``se_wald``: (m, P, q)).
    """
    n, m, q = block.G.shape
    p = rot.p
    P = null.h2.size
    out = {key: np.full((m, P), np.nan) for key in
           ("h2_ml", "loglik_ml", "lrt", "lod_lrt", "p_lrt", "h2_reml", "loglik_reml", "wald", "p_wald")}
    out["beta_wald"] = np.full((m, P, q), np.nan)
    out["se_wald"] = np.full((m, P, q), np.nan)
    out["n_exact"] = 0
    markers = np.flatnonzero(block.rank > 0)
    if markers.size == 0:
        return out
    rank = block.rank[markers]
    columns = _BlockColumns(block.G)
    for j in range(P):
        r = null.resid[:, j]
        s = float(np.sqrt(np.mean(r * r)))
        s = s if s > 0 else 1.0
        prof = _MarkerProfiles(block, rot.X, rot.d, r / s, rot.logdet_XtX, columns, null.ml_r0)
        mx = prof.maximize(markers, null.ml_cap)
        out["n_exact"] += mx.n_exact
        h_ml, L_ml, h_reml, L_reml = mx.h_ml, mx.loglik_ml, mx.h_reml, mx.loglik_reml
        h0_ml = float(null.h2_ml[j]) if np.isfinite(null.h2_ml[j]) else 0.0
        L0 = prof.null_ml(min(h0_ml, 1.0 - _SINGULAR_EDGE) if prof.singular else h0_ml)
        lrt = np.maximum(2.0 * (L_ml - L0), 0.0)
        # the Wald test at each marker's REML h2
        rss0, rss1 = mx.rss0, mx.rss1
        sigma2 = rss1 / (n - p - rank)
        wald = (rss0 - rss1) / (rank * sigma2)
        beta, se = _to_original(block.T[markers], mx.u[:, None], mx.Sinv[:, None], sigma2[:, None])
        shift_ml = -(n - prof.r0[markers]) * np.log(s)
        shift_reml = -(n - p - rank) * np.log(s)
        out["h2_ml"][markers, j] = h_ml
        out["loglik_ml"][markers, j] = L_ml + shift_ml
        out["lrt"][markers, j] = lrt
        out["lod_lrt"][markers, j] = lrt / (2.0 * np.log(10.0))
        out["p_lrt"][markers, j] = special.chdtrc(rank, lrt)  # P(chi2_rank >= lrt)
        out["h2_reml"][markers, j] = h_reml
        out["loglik_reml"][markers, j] = L_reml + shift_reml
        out["wald"][markers, j] = wald
        out["p_wald"][markers, j] = special.fdtrc(rank, n - p - rank, wald)  # P(F >= wald)
        out["beta_wald"][markers, j] = beta[:, 0] * s
        out["se_wald"][markers, j] = se[:, 0] * s
    return out


# --------------------------------------------------------------------------- #
# The long table
# --------------------------------------------------------------------------- #
_REFIT_COLUMNS = ("h2_ml", "loglik_ml", "lrt", "lod_lrt", "p_lrt", "h2_reml", "loglik_reml")


def _assemble(pieces: list[dict], genotypes: Genotypes, names: list[str], effect_names, refit: bool) -> pd.DataFrame:
    """One row per (phenotype, marker): phenotypes in request order, markers in genome order."""
    frames = []
    markers = np.asarray(genotypes.markers, dtype=object)
    chrom = np.asarray(genotypes.chromosome, dtype=object)
    order = {nm: k for k, nm in enumerate(names)}
    for piece in pieces:
        mk = piece["markers"]
        for j, nm in enumerate(piece["phenotypes"]):
            cols: dict[str, object] = {
                "phenotype": nm,
                "marker": markers[mk],
                "chr": chrom[mk],
                "pos": genotypes.position[mk],
                "n": piece["n"],
                "df": piece["df"],
                "h2": piece["h2"][j],
                "lod": piece["lod"][:, j],
                "p_value": piece["p_value"][:, j],
            }
            for a, e in enumerate(effect_names):
                cols[f"beta_{e}"] = piece["beta"][:, j, a]
            for a, e in enumerate(effect_names):
                cols[f"se_{e}"] = piece["se"][:, j, a]
            if refit:
                for key in _REFIT_COLUMNS:
                    cols[key] = piece[key][:, j]
                for a, e in enumerate(effect_names):
                    cols[f"beta_wald_{e}"] = piece["beta_wald"][:, j, a]
                for a, e in enumerate(effect_names):
                    cols[f"se_wald_{e}"] = piece["se_wald"][:, j, a]
                cols["wald"] = piece["wald"][:, j]
                cols["p_wald"] = piece["p_wald"][:, j]
            cols["flag"] = piece["flag"]
            frame = pd.DataFrame(cols)
            frame["_p"] = order[nm]
            frame["_m"] = mk
            frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table = table.sort_values(["_p", "_m"], kind="stable").drop(columns=["_p", "_m"]).reset_index(drop=True)
    table["df"] = table["df"].astype(int)
    table["n"] = table["n"].astype(int)
    return table
