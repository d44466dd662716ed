"""lmmcore: exact, fast linear mixed models for heritability and QTL mapping.

Model and notation
------------------
``y = X b + e`` with ``var(e) = s K + t I``: y the phenotype of n individuals,
X the n x p design (covariates and an intercept), K a known n x n kinship.
``v = s + t`` is the total variance and ``h = s / v`` (written ``h2``) the
heritability in [0, 1], so ``var(e) = v (h K + (1 - h) I)``.

The algorithm, one module per step
----------------------------------
1. :mod:`lmmcore.eigen` -- ``K = U D U'`` (eigenvalues ``d_i``) and the
   rotation ``y* = U'y``, ``X* = U'X``; then
   ``h K + (1 - h) I = U diag(h d_i + 1 - h) U'``.
2. :mod:`lmmcore.wls` -- for fixed h, weighted least squares with weights
   ``w_i = 1 / (h d_i + 1 - h)`` gives ``b(h)``, ``rss(h)``, ``v(h)``.
3. :mod:`lmmcore.likelihood` -- the profile log-likelihood ``L(h)``, ML or
   REML, with all constants, vectorised over h and phenotypes.
4. :mod:`lmmcore.optimize` -- a grid, Brent's method in every bracket that
   holds a local maximum, and the boundaries h = 0 and h = 1.

:mod:`lmmcore.fit` assembles one phenotype's answer (SE, interval, test of
h2 = 0); :mod:`lmmcore.batch` fits many phenotypes, sharing each
eigendecomposition among the phenotypes with the same missing values;
:mod:`lmmcore.design` builds X; :mod:`lmmcore.io` reads and aligns files.

Beyond heritability: :mod:`lmmcore.genotypes` reads genotype probabilities,
dosages and PLINK files, :mod:`lmmcore.kinship` computes kinships (R/qtl2's,
GCTA's and GEMMA's; overall or leave-one-chromosome-out), :mod:`lmmcore.scan`
scans the genome with fixed or re-estimated h2, :mod:`lmmcore.permute` gives
permutation thresholds, :mod:`lmmcore.simulate` simulates populations and traits and
:mod:`lmmcore.example` writes the example data.

From a cross to genotype probabilities (R/qtl2's ``calc_genoprob``):
:mod:`lmmcore.genomap` (map functions, pseudomarkers),
:mod:`lmmcore.crosstypes` and :mod:`lmmcore.crosstypes_mpp` (each cross
type's states, initial, transition and emission probabilities) and
:mod:`lmmcore.hmm` (the forward-backward equations, ``genoprob``,
``allele_probs``, ``write_genoprobs``).
"""

from .errors import LMMInputError, LMMWarning

#: The engine's names, imported on first use (PEP 562) so that ``lmmcore --help``
#: and ``import lmmcore.cli`` import neither pandas nor scipy.
_EAGER_FREE = {
    "MissingnessPattern": "batch",
    "PatternCache": "batch",
    "PatternModel": "batch",
    "check_phenotype": "batch",
    "prepare_pattern": "batch",
    "fit_phenotypes": "batch",
    "kinship_scale_factor": "batch",
    "missingness_patterns": "batch",
    "pattern_decomposition": "batch",
    "profile_table": "batch",
    "results_table": "batch",
    "Design": "design",
    "design_matrix": "design",
    "Eigendecomposition": "eigen",
    "RotatedData": "eigen",
    "decompose_kinship": "eigen",
    "rotate": "eigen",
    "CI_DROP": "fit",
    "FitResult": "fit",
    "fit_lmm": "fit",
    "fit_rotated": "fit",
    "rescale_h2": "fit",
    "H2Optimum": "estimate",
    "PointEstimate": "estimate",
    "StandardisedData": "estimate",
    "estimate_rotated": "estimate",
    "optimise_h2": "estimate",
    "standardise": "estimate",
    "H2Inference": "inference",
    "h2_inference": "inference",
    "LMMData": "io",
    "align": "io",
    "load_data": "io",
    "read_covariates": "io",
    "read_kinship": "io",
    "read_phenotypes": "io",
    "from_lmmlite": "likelihood",
    "profile_loglik": "likelihood",
    "to_lmmlite": "likelihood",
    "OptimizeResult": "optimize",
    "OptimizerTrace": "optimize",
    "brent_maximize": "optimize",
    "maximize_profile": "optimize",
    "WLSSolution": "wls",
    "solve_wls": "wls",
    "variance_factors": "wls",
}

#: Genome-scan, genotype and simulation names, imported on first use so that
#: ``lmmcore fit`` does not pay for them (PEP 562). The scan itself is
#: ``lmmcore.scan.scan`` (the name ``lmmcore.scan`` is the module).
_LAZY = {
    "ScanResult": "scan",
    "permutation_indices": "permute",
    "lod_thresholds": "permute",
    "PermutationResult": "permute",
    "Genotypes": "genotypes",
    "read_genoprobs": "genotypes",
    "read_dosages": "genotypes",
    "read_map": "genotypes",
    "read_plink": "genotypes",
    "Kinship": "kinship",
    "compute_kinship": "kinship",
    "compute_loco_kinships": "kinship",
    "kinship_from_genoprobs": "kinship",
    "kinship_from_dosages": "kinship",
    "loco_kinships": "kinship",
    "write_example_dataset": "example",
    "find_peaks": "peaks",
    "is_pseudomarker": "peaks",
    "EffectsResult": "effects",
    "Fit1Result": "effects",
    "scan1coef": "effects",
    "fit1": "effects",
    "scan1blup": "effects_blup",
    "rotated_permutations": "perm_rotated",
    "genoprob": "hmm",
    "allele_probs": "hmm",
    "write_genoprobs": "hmm",
    "insert_pseudomarkers": "genomap",
    "Cross": "cross",
    "read_cross": "cross_files",
    "x_covariates": "xchr",
    "select_chromosomes": "xchr",
    **_EAGER_FREE,
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'lmmcore' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

__all__ = sorted(_LAZY) + [
    "CI_DROP",
    "Design",
    "Eigendecomposition",
    "FitResult",
    "H2Inference",
    "H2Optimum",
    "PatternCache",
    "PatternModel",
    "PointEstimate",
    "StandardisedData",
    "check_phenotype",
    "estimate_rotated",
    "h2_inference",
    "optimise_h2",
    "prepare_pattern",
    "standardise",
    "variance_factors",
    "LMMData",
    "LMMInputError",
    "LMMWarning",
    "MissingnessPattern",
    "OptimizeResult",
    "OptimizerTrace",
    "RotatedData",
    "WLSSolution",
    "align",
    "brent_maximize",
    "decompose_kinship",
    "design_matrix",
    "fit_lmm",
    "fit_phenotypes",
    "fit_rotated",
    "from_lmmlite",
    "kinship_scale_factor",
    "load_data",
    "maximize_profile",
    "missingness_patterns",
    "pattern_decomposition",
    "profile_loglik",
    "profile_table",
    "read_covariates",
    "read_kinship",
    "read_phenotypes",
    "rescale_h2",
    "results_table",
    "rotate",
    "solve_wls",
    "to_lmmlite",
]
