"""R/qtl2 cross files: the :class:`Cross` record (and, in time, its reader ``read_cross``).

A cross holds what R/qtl2's ``read_cross2`` returns, with R/qtl2's integer
genotype codes, so that the hidden Markov model (:mod:`lmmcore.hmm`) can use
them directly.

Genotype codes (as R/qtl2 stores them after reading the control file's
``genotypes`` map): ``0`` is missing; otherwise the code the control file
gives (for ``f2``: 1 = AA, 2 = AB, 3 = BB, 4 = "not BB", 5 = "not AA"; for
``bc``: 1 = AA, 2 = AB; for RIL types: 1 = AA, 3 = BB). For multi-parent
crosses (``do``, ``hs``, ``riself4`` ...) the genotypes are SNP calls coded
1 = homozygous for the first SNP allele, 2 = heterozygous, 3 = homozygous for
the second, and the founders' genotypes are coded 1 or 3 (0 missing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Cross"]


@dataclass(frozen=True, eq=False)
class Cross:
    """An experimental cross as R/qtl2's ``read_cross2`` reads it.

    Attributes
    ----------
    crosstype : str
        R/qtl2's cross type (``"bc"``, ``"f2"``, ``"riself"``, ``"risib"``,
        ``"dh"``, ``"haploid"``, ``"ail"``, ``"do"``, ...).
    ids : tuple of str
        The individuals with genotypes, in the order of the rows of ``geno``.
    geno : dict of str to ndarray of int8, shape (n, n_markers_on_chr)
        Observed genotypes per chromosome (R/qtl2 codes, 0 = missing); the
        columns follow ``gmap[chr]``.
    gmap : dict of str to pandas.Series
        Genetic map per chromosome: index = marker names, values = cM,
        non-decreasing. Chromosomes in natural order (``1 ... 19, X``).
    pmap : dict of str to pandas.Series, or None
        Physical map (Mbp), same markers, when the cross has one.
    founder_geno : dict of str to ndarray of int8, shape (n_founders, n_markers_on_chr), or None
        Founders' genotypes (1 or 3, 0 = missing) for multi-parent crosses.
    is_x_chr : dict of str to bool
        Whether each chromosome is the X chromosome.
    is_female : ndarray of bool, shape (n,)
        Sex of each individual (all True when the cross has no sex).
    cross_info : ndarray of int, shape (n, k)
        R/qtl2's cross information: ``f2``: one column, 0 = (AxB)x(AxB),
        1 = (BxA)x(BxA); ``do`` and ``ail``: one column, the number of
        generations of outbreeding; ``riself4``/``8``: the order of the
        founders in the funnel; k = 0 where the type needs none.
    cross_info_names : tuple of str
        Names of the columns of ``cross_info``.
    alleles : tuple of str
        One-letter codes of the founder alleles (``("A", "B")`` for
        two-founder crosses, ``("A", ..., "H")`` for DO).
    pheno : pandas.DataFrame
        Numeric phenotypes, index = individual IDs.
    covar : pandas.DataFrame or None
        Covariates (may hold text columns), index = individual IDs.
    phenocovar : pandas.DataFrame or None
        Phenotype covariates (one row per phenotype).
    source : str
        The zip or control file the cross was read from (for messages).
    """

    crosstype: str
    ids: tuple[str, ...]
    geno: dict[str, np.ndarray]
    gmap: dict[str, pd.Series]
    is_x_chr: dict[str, bool]
    is_female: np.ndarray
    cross_info: np.ndarray
    alleles: tuple[str, ...]
    pheno: pd.DataFrame
    pmap: dict[str, pd.Series] | None = None
    founder_geno: dict[str, np.ndarray] | None = None
    cross_info_names: tuple[str, ...] = ()
    covar: pd.DataFrame | None = None
    phenocovar: pd.DataFrame | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def chromosomes(self) -> tuple[str, ...]:
        """Chromosomes in map order."""
        return tuple(self.gmap)

    @property
    def n(self) -> int:
        """Number of individuals with genotypes."""
        return len(self.ids)
