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

from .batch import missingness_patterns
from .design import design_matrix
from .eigen import decompose_kinship, rotate, validate_kinship_matrix
from .errors import LMMInputError, LMMWarning
from .fit import fit_rotated
from .genotypes import Genotypes
from .io import LMMData
from .kinship import MONOMORPHIC_TOLERANCE, Kinship, kinship_from_dosages, kinship_from_genoprobs
from .likelihood import profile_loglik, profile_loglik_paired
from .optimize import brent_maximize
from .permute import DEFAULT_ALPHAS, PermutationResult, lod_thresholds, permutation_indices
from .refit import (
    GOLDEN,
    REFIT_INTERPOLATION_TOL,
    REFIT_LOG_LAMBDA,
    REFIT_NODES,
    REFIT_PEAK_MARGIN,
    REFIT_TOL,
    SINGULAR_EDGE,
    refit_block,
    to_original_columns,
)
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
#: Largest h2 of the full ML likelihood when it is unbounded at h2 = 1 (a centred
#: kinship with an intercept): GEMMA's bound lambda = sigma_g^2 / sigma_e^2 <= 1e5.
FULL_ML_CAP = 1e5 / (1.0 + 1e5)
#: Permutations scanned together (their rotations form one matrix product).
_PERM_BATCH_ELEMENTS = 1 << 22

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
            refit = refit_block(block, rot, null)
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
            h_wls = np.minimum(h_wls, 1.0 - SINGULAR_EDGE)
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
            h2_scan = np.minimum(h2_scan, 1.0 - SINGULAR_EDGE)
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
    x0[at_end] = np.where(k[at_end] == 0, low[at_end] + GOLDEN * (high[at_end] - low[at_end]),
                          high[at_end] - GOLDEN * (high[at_end] - low[at_end]))
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
    beta, se = to_original_columns(block.T, u, Sinv, sigma2)
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
