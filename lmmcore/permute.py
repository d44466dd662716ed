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

This module holds the bookkeeping (drawing the permutations, summarising the
maxima); the scans themselves run in :func:`lmmcore.scan.scan`, which shares
each eigendecomposition and null fit between the observed scan and its
permutations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import LMMInputError

__all__ = [
    "DEFAULT_ALPHAS",
    "PermutationResult",
    "permutation_indices",
    "lod_thresholds",
]

#: Significance levels reported by default.
DEFAULT_ALPHAS = (0.01, 0.05, 0.10, 0.20)


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
    """

    max_lod: pd.DataFrame
    thresholds: pd.DataFrame
    n_perm: int
    seed: int | None
    strata: str | None
    scheme: str

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
