"""LMM-aware permutation thresholds: permute the rotated, whitened null residuals (Abney 2015).

Why another scheme
------------------
R/qtl2's ``scan1perm`` with a kinship (:mod:`lmmcore.permute`) permutes the
genotype rows relative to the phenotypes, covariates and kinship. Under the
null hypothesis of no QTL that is exchangeable only when the individuals are
exchangeable, i.e. unrelated: with relatedness the permuted genotypes no
longer carry the kinship's structure, the permuted scans are "too clean",
and their maxima understate the null distribution of the observed scan's
maximum (a genome-wide false-positive rate above the nominal level).

The scheme (Abney, 2015, Genet Epidemiol 39:249-258)
----------------------------------------------------
Fit the null model ``y = X b + e``, ``var(e) = v (h K + (1 - h) I)`` once
(REML; one whole-genome kinship, see below), with ``K = U D U'`` and
``w_i = 1 / (h d_i + 1 - h)``. The whitened data ``y~ = W^{1/2} U'y`` have
covariance ``v I`` and mean ``X~ b``, ``X~ = W^{1/2} U'X``. With ``Q`` an
orthonormal basis of the complement of ``X~``'s columns (n x (n - p)), the
coordinates ``z = Q'y~`` are, under the fitted null model, independent
``N(0, v)``: exchangeable. Each permutation reorders them and maps back,

    y_pi = X b^ + U W^{-1/2} Q z_pi,

a phenotype with the null model's mean and covariance, which is then scanned
exactly as the observed phenotype (same genotypes, covariates and kinship
option; its own null h2), and the genome-wide maximum LOD is recorded.
Abney permutes the whitened residuals ``y~ - X~ b^`` themselves; those have
covariance ``v (I - H)`` with H the hat matrix, so the coordinates in Q,
which are exactly exchangeable given h, are used here instead.

When each scheme is valid
-------------------------
* Genotype permutation (``lmmcore scan --perm``): exchangeable individuals --
  no relatedness beyond what the covariates explain (e.g. a backcross or F2
  without family structure, or strata that capture it with ``--perm-strata``).
  It uses no model for y and is robust to non-normal phenotypes.
* Rotated residuals (this module): related individuals whose phenotypic
  covariance the LMM describes (h K + (1 - h) I with the fitted h), with
  approximately normal residuals. It conditions on the estimated h2 and on a
  single whole-genome kinship for generating the permuted phenotypes.

The generating kinship is the one given when it is a single matrix, and the
overall kinship of the genotypes otherwise (``"loco"``, ``"overall"`` or a
mapping of LOCO kinships); the scans use ``kinship`` as given.

Measured (``benchmarks/bench_perm_rotated.py --perm 100``, 100 replicates
from seeds 2026 (40) and 5000 (60): 100 related individuals, families of 10 in
4 subpopulations with Fst 0.2, 200 markers on 5 chromosomes, h2 = 0.8, no
QTL, LOCO scans): genome-wide false-positive rate at the 5% thresholds 0.57
(SE 0.05) with genotype permutations and 0.08 (SE 0.03) with rotated
residuals (thresholds from 100 permutations each, which adds to the rate).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import linalg

from .errors import LMMInputError, reporting

__all__ = ["rotated_permutations", "rotated_phenotypes"]

#: Permuted phenotypes scanned together (one scan call with that many columns).
DEFAULT_BATCH = 100


def rotated_phenotypes(null, n_perm: int, seed: int | None = None) -> pd.DataFrame:
    """Phenotypes drawn by permuting the null model's exchangeable coordinates (see the module docstring).

    Parameters
    ----------
    null : lmmcore.effects_model.NullModel
    n_perm : int
    seed : int, optional

    Returns
    -------
    DataFrame
        Indexed by ``null.ids``, columns ``perm1 ... perm<n_perm>``.
    """
    X = np.column_stack([np.ones(null.n), null.covariates])
    Xw = null.whiten(X)
    yw = null.whiten(null.y)
    b, *_ = np.linalg.lstsq(Xw, yw, rcond=None)
    Q = linalg.null_space(Xw.T)  # (n, n - p), orthonormal, orthogonal to X~
    z = Q.T @ yw
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((n_perm, z.size)), axis=1)  # one permutation per row
    Zp = z[order].T  # (n - p, n_perm)
    back = null.U * (1.0 / np.sqrt(null.weights))[None, :]  # U W^{-1/2}
    Y = (X @ b)[:, None] + back @ (Q @ Zp)
    return pd.DataFrame(Y, index=pd.Index(null.ids), columns=[f"perm{k + 1}" for k in range(n_perm)])


def rotated_permutations(
    genotypes,
    phenotypes,
    covariates: pd.DataFrame | None = None,
    *,
    phenotype: str | Sequence[str] | None = None,
    n_perm: int = 1000,
    seed: int | None = None,
    kinship="loco",
    kind: str = "standardized",
    method: str = "reml",
    alphas: Sequence[float] | None = None,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
    report=None,
):
    """Genome-wide LOD thresholds from permutations of the rotated null residuals.

    Parameters
    ----------
    genotypes, phenotypes, covariates, kinship, kind, method
        As for :func:`lmmcore.scan.scan`.
    phenotype : str or sequence of str, optional
        The phenotype column(s) (default: every column); each gets its own
        null fit and permutations.
    n_perm : int
    seed : int, optional
        Seed of the permutations (the same for every phenotype).
    alphas : sequence of float, optional
        Levels of the thresholds (default :data:`lmmcore.permute.DEFAULT_ALPHAS`).
    batch : int
        Permuted phenotypes per scan call.
    progress : callable, optional
        ``progress(done, total)`` after each batch (permutations over all phenotypes).
    report : callable, optional

    Returns
    -------
    lmmcore.permute.PermutationResult
        ``max_lod`` has one column per phenotype; ``scheme`` describes the permutation.
    """
    from .effects_model import null_model
    from .permute import DEFAULT_ALPHAS, PermutationResult, lod_thresholds
    from .scan import scan

    n_perm = int(n_perm)
    if n_perm < 1:
        raise LMMInputError(f"the number of permutations is {n_perm}; it must be at least 1")
    if int(batch) < 1:
        raise LMMInputError("batch must be at least 1")
    if phenotype is None:
        names = [str(c) for c in getattr(phenotypes, "columns", [getattr(phenotypes, "name", None)])]
    else:
        names = [phenotype] if isinstance(phenotype, str) else [str(p) for p in phenotype]
    with reporting(report):
        generating = kinship if not isinstance(kinship, (str, Mapping)) else "overall"
        columns = {}
        for k, name in enumerate(names):
            null = null_model(genotypes, phenotypes, covariates, phenotype=name,
                              chromosome=genotypes.chromosome[0], kinship=generating, kind=kind, method=method)
            Y = rotated_phenotypes(null, n_perm, seed)
            maxima = np.empty(n_perm)
            for start in range(0, n_perm, int(batch)):
                cols = Y.columns[start:start + int(batch)]
                table = scan(genotypes, Y[cols], covariates, kinship=kinship, kind=kind, method=method).table
                maxima[start:start + len(cols)] = (
                    table.groupby("phenotype", sort=False)["lod"].max().loc[cols].to_numpy()
                )
                if progress is not None:
                    progress(k * n_perm + start + len(cols), len(names) * n_perm)
            columns[null.phenotype] = maxima
        frame = pd.DataFrame(columns, index=pd.RangeIndex(1, n_perm + 1, name="perm"))
        return PermutationResult(
            max_lod=frame,
            thresholds=lod_thresholds(frame, DEFAULT_ALPHAS if alphas is None else alphas),
            n_perm=n_perm,
            seed=seed,
            strata=None,
            scheme=("rotated null residuals permuted (Abney 2015): the whitened phenotype's coordinates orthogonal "
                    "to the covariates, under the null fit with the "
                    + ("given" if generating is kinship else "overall")
                    + " kinship, permuted and mapped back; each permuted phenotype scanned as the observed one "
                    "(own null h2); genome-wide maximum LOD"),
        )
