"""Step 0 of the genome scan: the inputs of :func:`lmmcore.scan.scan`, checked and aligned.

:func:`validate_inputs` checks and normalises the arguments into a
:class:`ScanInputs` record; :func:`align_ids` finds the individuals with
genotypes, a kinship row, complete covariates and a phenotype (saying how
many were left out and why); :func:`check_phenotype` rejects a phenotype
that cannot be scanned. Every problem is an
:class:`~lmmcore.errors.LMMInputError` with a sentence that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .constants import CHUNK_ELEMENTS
from .errors import LMMInputError, report
from .genotypes import Genotypes
from .io import LMMData
from .markers import marker_columns
from .selection import check_names
from .tables import member_of

__all__ = ["ScanInputs", "validate_inputs", "align_ids", "check_phenotype", "chunk_size"]


@dataclass(frozen=True)
class ScanInputs:
    """A scan's validated inputs (what :func:`scan` was given, checked and normalised).

    ``phenotypes`` holds the requested columns (``names``, as floats) and
    ``covariates`` is None or indexed by string IDs; nothing is aligned yet.
    """

    genotypes: Genotypes
    phenotypes: pd.DataFrame
    covariates: pd.DataFrame | None
    names: tuple[str, ...]
    method: str
    refit: bool
    lrt_likelihood: str
    chunk: int
    n_perm: int
    seed: int | None
    alphas: tuple[float, ...]


def validate_inputs(genotypes, phenotypes, covariates, *, method, refit, lrt_likelihood, select, n_perm, seed,
              alphas, chunk) -> ScanInputs:
    """Check and normalise :func:`scan`'s arguments (LMMInputError with a sentence otherwise)."""
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
    check_names(names, phenotypes.columns)
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
    chunk = chunk_size(chunk, len(genotypes.ids), len(marker_columns(genotypes)))
    n_perm = int(n_perm or 0)
    if n_perm < 0:
        raise LMMInputError(f"the number of permutations is {n_perm}; it must be 0 or more")
    return ScanInputs(genotypes=genotypes, phenotypes=phenotypes, covariates=covariates, names=tuple(names),
                      method=method, refit=bool(refit), lrt_likelihood=lrt_likelihood, chunk=chunk,
                      n_perm=n_perm, seed=seed, alphas=tuple(alphas))


def chunk_size(chunk, n: int, q: int) -> int:
    if chunk is None:
        return max(1, CHUNK_ELEMENTS // max(1, n * q))
    try:
        value = int(chunk)
    except (TypeError, ValueError):
        raise LMMInputError(f"chunk must be a positive number of markers, not {chunk!r}") from None
    if value < 1:
        raise LMMInputError(f"chunk is {chunk}; it must be a positive number of markers")
    return value


def align_ids(genotypes: Genotypes, phenotypes: pd.DataFrame, covariates, kin_ids) -> tuple[str, ...]:
    """IDs with genotypes, a kinship row, complete covariates and a phenotype, in genotype order."""
    keep = pd.Index(genotypes.ids)
    dropped = {}
    filters = [("without an observed phenotype", phenotypes.index[phenotypes.notna().any(axis=1)])]
    if covariates is not None:
        filters.append(("without complete covariates", covariates.index[covariates.notna().all(axis=1)]))
    if kin_ids is not None:
        filters.append(("not in the kinship", pd.Index(kin_ids)))
    for reason, allowed in filters:
        before = len(keep)
        keep = keep[member_of(keep, allowed)]
        if before - len(keep):
            dropped[reason] = before - len(keep)
    n_pheno_only = int((~member_of(phenotypes.index, genotypes.ids)).sum())
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
        report(
            "individuals left out of the scan: "
            + ", ".join(f"{v} {k}" for k, v in dropped.items())
            + f"; {len(keep)} remain",
            stacklevel=4,
        )
    return tuple(keep)


def check_phenotype(name: str, values: np.ndarray) -> None:
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
