"""Genome-wide significance thresholds by permutation.

The scheme is R/qtl2's ``scan1perm`` with a kinship matrix: the rows of the
genotypes are permuted relative to the phenotypes, the covariates and the
kinship (which stay together), the fixed-h2 scan is run at the null
heritability of the *unpermuted* data, and the largest LOD over the whole
genome is recorded for each permutation. With leave-one-chromosome-out
kinships every chromosome is scanned with its own kinship and null h2 but
with the same permutation, so the maximum is genome-wide. Permutations are
drawn within strata when a stratifying variable is given (e.g. sex, or a
generation), so that an individual's genotypes are only ever moved to an
individual of the same stratum.

The ``1 - alpha`` quantile of the maxima is the genome-wide LOD threshold
at level ``alpha`` (the quantile interpolates linearly, as R's default
``quantile(type = 7)``).

This module draws the permutations (:func:`permutation_indices`, within
strata from :func:`strata_labels`), scans every chunk of markers under all of
them (:func:`permuted_max_lod`: the fixed-h2 scan of :mod:`lmmcore.fixed_scan`
with the eigendecomposition and null fit of the observed data, several
permutations rotated by one matrix product) and summarises the maxima
(:func:`permutation_result`, :func:`lod_thresholds`).
:func:`lmmcore.scan.scan` calls it chunk by chunk, so the observed scan and its
permutations share each rotation of the kinship.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .errors import LMMInputError
from .fixed_scan import fixed_scan
from .genotypes import Genotypes
from .markers import marker_array, prepare_block

__all__ = [
    "DEFAULT_ALPHAS",
    "PermutationResult",
    "permutation_indices",
    "permutation_result",
    "permuted_max_lod",
    "strata_labels",
    "lod_thresholds",
]

#: Significance levels reported by default.
DEFAULT_ALPHAS = (0.01, 0.05, 0.10, 0.20)
#: Values of n x (markers x columns x permutations) rotated by one matrix product.
PERM_BATCH_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class PermutationResult:
    """Genome-wide maxima of the permuted scans and the thresholds they give.

    Attributes
    ----------
    max_lod : DataFrame
        One row per permutation (index ``perm``, from 1), one column per
        phenotype: the largest fixed-h2 LOD over all markers.
    thresholds : DataFrame
        Columns ``phenotype, alpha, lod_threshold, n_perm`` (see
        :func:`lod_thresholds`).
    n_perm : int
    seed : int or None
        The seed the permutations were drawn from.
    strata : str or None
        Name of the stratifying variable, if any.
    scheme : str
        A one-line description of what was permuted.
    max_lod_x : DataFrame or None
        With separate autosome and X thresholds (``scan(...,
        perm_x_separate=True)``): the maxima over the X chromosome, one row
        per X permutation; ``max_lod`` then holds the autosomes' maxima and
        ``thresholds`` has a ``region`` column (``A``/``X``).
    n_perm_x : int
        The number of X permutations then (0 otherwise).
    """

    max_lod: pd.DataFrame
    thresholds: pd.DataFrame
    n_perm: int
    seed: int | None
    strata: str | None
    scheme: str
    max_lod_x: pd.DataFrame | None = None
    n_perm_x: int = 0

    def threshold(self, phenotype: str, alpha: float = 0.05) -> float:
        """The genome-wide LOD threshold of one phenotype at level ``alpha``."""
        if phenotype not in self.max_lod.columns:
            raise LMMInputError(f"no permutations were run for phenotype '{phenotype}'")
        return float(_quantile(self.max_lod[phenotype].to_numpy(), 1.0 - alpha))

    def genome_wide_p(self, phenotype: str, lod) -> np.ndarray:
        """Genome-wide p-values of LOD scores: the share of permutation maxima at least as large.

        Notes
        -----
        ``p = #{k : M_k >= lod} / N`` with ``M_k`` the maximum of permutation
        k (R/qtl2's ``summary(scan1perm)`` convention); NaN stays NaN.
        """
        maxima = np.sort(self.max_lod[phenotype].to_numpy())
        lod = np.asarray(lod, dtype=float)
        ge = maxima.size - np.searchsorted(maxima, lod, side="left")
        return np.where(np.isnan(lod), np.nan, ge / maxima.size)


def permutation_indices(
    n: int,
    n_perm: int,
    seed: int | None = None,
    strata: Sequence | np.ndarray | None = None,
) -> np.ndarray:
    """Draw permutations of ``0 .. n-1``, optionally within strata.

    Parameters
    ----------
    n : int
        Number of individuals.
    n_perm : int
        Number of permutations.
    seed : int, optional
        Seed of :func:`numpy.random.default_rng`; the same seed gives the
        same permutations.
    strata : sequence, optional
        A label per individual; individuals are only exchanged with others
        of the same label.

    Returns
    -------
    ndarray of int, shape (n_perm, n)
        Row k is a permutation ``pi``; individual i receives the genotypes of
        individual ``pi[i]``.

    Raises
    ------
    LMMInputError
        If ``n_perm`` is not positive or ``strata`` has the wrong length or
        missing labels.
    """
    if int(n_perm) < 1:
        raise LMMInputError(f"the number of permutations is {n_perm}; it must be at least 1")
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.argsort(rng.random((int(n_perm), n)), axis=1)
    labels = pd.Series(np.asarray(strata, dtype=object))
    if labels.size != n:
        raise LMMInputError(f"the permutation strata have {labels.size} labels for {n} individuals")
    if labels.isna().any():
        raise LMMInputError("the permutation strata have missing values; every individual needs a stratum")
    codes, _ = pd.factorize(labels, sort=True)
    out = np.empty((int(n_perm), n), dtype=np.int64)
    keys = rng.random((int(n_perm), n))
    for code in np.unique(codes):
        members = np.flatnonzero(codes == code)
        order = np.argsort(keys[:, members], axis=1)
        out[:, members] = members[order]
    return out


def _quantile(values: np.ndarray, q) -> np.ndarray:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return np.full(np.shape(q), np.nan)
    return np.quantile(values, q)  # linear interpolation = R's type 7


def lod_thresholds(max_lod: pd.DataFrame, alphas: Sequence[float] = DEFAULT_ALPHAS) -> pd.DataFrame:
    """Genome-wide LOD thresholds from permutation maxima.

    Parameters
    ----------
    max_lod : DataFrame
        Rows are permutations, columns phenotypes.
    alphas : sequence of float
        Significance levels in (0, 1).

    Returns
    -------
    DataFrame
        Columns ``phenotype, alpha, lod_threshold, n_perm``; the threshold
        at level ``alpha`` is the ``1 - alpha`` quantile of the maxima.
    """
    alphas = [float(a) for a in alphas]
    if any(not 0 < a < 1 for a in alphas):
        raise LMMInputError(f"significance levels must lie strictly between 0 and 1, not {alphas}")
    rows = []
    for name in max_lod.columns:
        values = max_lod[name].to_numpy(dtype=float)
        q = _quantile(values, [1.0 - a for a in alphas])
        for a, t in zip(alphas, q):
            rows.append({"phenotype": name, "alpha": a, "lod_threshold": float(t),
                         "n_perm": int(np.count_nonzero(~np.isnan(values)))})
    return pd.DataFrame(rows, columns=["phenotype", "alpha", "lod_threshold", "n_perm"])


def strata_labels(strata, ids, covar: pd.DataFrame | None, pheno: pd.DataFrame, genotype_ids):
    """Stratum labels of the individuals ``ids`` (in their order), and a name for messages.

    ``strata`` is a column of ``covar`` (or of ``pheno``), a Series indexed by
    ID, or one label per genotyped individual (in ``genotype_ids`` order);
    None gives ``(None, None)``.
    """
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
    if labels.shape != (len(genotype_ids),):
        raise LMMInputError(
            f"the permutation strata have {labels.size} labels; give one per genotyped individual "
            f"({len(genotype_ids)})"
        )
    rows = pd.Index(genotype_ids).get_indexer(list(ids))
    return labels[rows], "strata"


def permuted_max_lod(
    genotypes: Genotypes,
    rows: np.ndarray,
    perms: np.ndarray,
    markers: np.ndarray,
    rotation: np.ndarray,
    X: np.ndarray,
    d: np.ndarray,
    h2: np.ndarray,
    resid: np.ndarray,
    check_missing: bool = True,
    advance: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The largest fixed-h2 LOD of a chunk of markers under every permutation.

    Parameters
    ----------
    genotypes : Genotypes
    rows : ndarray of int, shape (n_all,)
        Row in ``genotypes`` of each individual the permutations permute.
    perms : ndarray of int, shape (n_perm, n)
        The permutations restricted to the n individuals of this fit
        (positions in ``rows``): individual i receives the genotypes of
        ``rows[perm[i]]``.
    markers : ndarray of int
        The chunk.
    rotation, X, d, h2, resid
        The observed scan's :func:`lmmcore.markers.marker_rotation` matrix,
        rotated covariates, kinship eigenvalues, null h2 and rotated null
        residuals (the phenotypes, covariates, kinship and null fit stay).
    check_missing : bool
        Whether the genotypes may have missing values.
    advance : callable, optional
        Called with the number of marker scans done after each batch.

    Returns
    -------
    ndarray, shape (n_perm, P)
        ``-inf`` where no marker of the chunk has a LOD.

    Notes
    -----
    Several permutations are rotated by one matrix product (batches of
    about :data:`PERM_BATCH_ELEMENTS` values).
    """
    n = perms.shape[1]
    m = len(markers)
    q = genotypes.probs.shape[2] - 1 if genotypes.kind == "genoprobs" else 1
    per_batch = max(1, PERM_BATCH_ELEMENTS // max(1, n * m * q))
    out = np.empty((perms.shape[0], h2.size))
    for b0 in range(0, perms.shape[0], per_batch):
        batch = perms[b0:b0 + per_batch]
        raw = np.concatenate([marker_array(genotypes, rows[p], markers) for p in batch], axis=1)
        block = prepare_block(raw, rotation, check_missing)
        del raw
        lod = fixed_scan(block, X, d, h2, resid, effects=False).lod
        lod = np.where(np.isnan(lod), -np.inf, lod).reshape(len(batch), m, h2.size)
        out[b0:b0 + len(batch)] = lod.max(axis=1)
        if advance is not None:
            advance(len(batch) * m)
    return out


def permutation_result(max_lod: np.ndarray, names: Sequence[str], seed: int | None, strata: str | None,
                       alphas: Sequence[float] = DEFAULT_ALPHAS) -> PermutationResult:
    """The :class:`PermutationResult` of genome-wide maxima ``max_lod`` (n_perm, phenotypes)."""
    n_perm = max_lod.shape[0]
    maxima = np.where(np.isfinite(max_lod), max_lod, np.nan)
    frame = pd.DataFrame(maxima, columns=list(names), index=pd.RangeIndex(1, n_perm + 1, name="perm"))
    return PermutationResult(
        max_lod=frame,
        thresholds=lod_thresholds(frame, alphas),
        n_perm=n_perm,
        seed=seed,
        strata=strata,
        scheme=(
            "genotype rows permuted relative to phenotypes, covariates and kinship"
            + (f" within strata of '{strata}'" if strata else "")
            + "; fixed-h2 scan at the null h2 of the observed data; genome-wide maximum LOD"
        ),
    )
