"""R/qtl2 cross files: the :class:`Cross` record and the rules of each cross type.

A cross holds what R/qtl2's ``read_cross2`` returns, with R/qtl2's integer
genotype codes, so that the hidden Markov model (:mod:`lmmcore.hmm`) can use
them directly. :func:`lmmcore.read_cross` (in :mod:`lmmcore.cross_files`)
reads one.

Genotype codes (as R/qtl2 stores them after reading the control file's
``genotypes`` map): ``0`` is missing; otherwise the code the control file
gives. R/qtl2's conventions, which the control files follow:

* ``f2`` and ``ail``: 1 = AA, 2 = AB, 3 = BB, 4 = "not BB", 5 = "not AA";
  on the X chromosome a male's hemizygous genotype is written as the
  homozygote (1 = A(Y), 3 = B(Y)).
* ``bc``: 1 = AA, 2 = AB; on the X chromosome males are 1 = A(Y), 3 = B(Y).
* ``riself``, ``risib``, ``dh``, ``haploid``: 1 = AA, 2 = BB (two states;
  grav2's control file maps ``L: 1, C: 2``).
* Multi-parent crosses (``do``, ``hs``, ``riself4/8/16``, ``risib4/8``,
  ``magic19``): SNP calls, 1 = homozygous for the first SNP allele,
  2 = heterozygous, 3 = homozygous for the second (4, 5 as for ``f2``), and
  the founders' genotypes are 1 or 3 (0 missing).

Observed codes a cross type cannot hold (e.g. 3 in a ``riself``, 2 in a
``bc`` male's X) are set to 0 by the reader with a message: R/qtl2 keeps them
but its hidden Markov model treats them as missing, which is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["CROSS_TYPES", "Cross", "CrossType"]

_F2_CODES = frozenset({1, 2, 3, 4, 5})
_TWO_STATES = frozenset({1, 2})


@dataclass(frozen=True)
class CrossType:
    """What R/qtl2 requires of one cross type (from its ``check_cross2`` and C++ classes).

    Attributes
    ----------
    name : str
    n_alleles : int
        Number of founder alleles (R/qtl2's ``nalleles``).
    needs_founder_geno : bool
        Founder genotypes are required (multi-parent crosses).
    handles_x : bool
        R/qtl2 models the X chromosome for this type (otherwise it warns
        "X chr ignored" and treats it as an autosome).
    needs_sex : bool
        Sex is needed when the cross has an X chromosome.
    observed : frozenset of int
        Valid observed genotype codes (besides 0 = missing).
    observed_male_x : frozenset of int or None
        Valid observed codes on a male's X, where they differ (``bc``).
    cross_info : str
        What the cross information must hold: ``"none"``; ``"direction"``
        (one column, 0 or 1, when there is an X chromosome: ``f2``,
        ``risib``); ``"ail"`` (generations >= 2, and a second column 0, 1
        or 2 for the direction when there is an X); ``"generations"``
        (one column >= 1: ``do``, ``hs``); ``"funnel"`` (``n_alleles``
        columns, each row a permutation of 1..n_alleles).
    """

    name: str
    n_alleles: int = 2
    needs_founder_geno: bool = False
    handles_x: bool = True
    needs_sex: bool = False
    observed: frozenset = _F2_CODES
    observed_male_x: frozenset | None = None
    cross_info: str = "none"

    @property
    def a_cross(self) -> str:
        """The type with its article, for messages: ``"a bc cross"``, ``"an f2 cross"``, ``"an riself cross"``."""
        spoken_vowel = self.name in ("f2", "ail", "hs") or self.name.startswith("ri")
        return f"{'an' if spoken_vowel else 'a'} {self.name} cross"


def _multiparent(name: str, n: int, *, handles_x: bool, cross_info: str = "funnel") -> CrossType:
    return CrossType(name, n_alleles=n, needs_founder_geno=True, handles_x=handles_x, cross_info=cross_info)


#: The cross types the reader accepts (R/qtl2's names).
CROSS_TYPES: dict[str, CrossType] = {
    t.name: t
    for t in (
        CrossType("bc", needs_sex=True, observed=_TWO_STATES, observed_male_x=frozenset({1, 3})),
        CrossType("f2", needs_sex=True, cross_info="direction"),
        CrossType("riself", handles_x=False, observed=_TWO_STATES),
        CrossType("risib", observed=_TWO_STATES, cross_info="direction"),
        CrossType("dh", handles_x=False, observed=_TWO_STATES),
        CrossType("haploid", handles_x=False, observed=_TWO_STATES),
        CrossType("ail", needs_sex=True, cross_info="ail"),
        CrossType("do", n_alleles=8, needs_founder_geno=True, needs_sex=True, cross_info="generations"),
        CrossType("hs", n_alleles=8, needs_founder_geno=True, needs_sex=True, cross_info="generations"),
        _multiparent("riself4", 4, handles_x=False),
        _multiparent("riself8", 8, handles_x=False),
        _multiparent("riself16", 16, handles_x=False),
        _multiparent("risib4", 4, handles_x=True),
        _multiparent("risib8", 8, handles_x=True),
        _multiparent("magic19", 19, handles_x=False, cross_info="none"),
    )
}


@dataclass(frozen=True, eq=False)
class Cross:
    """An experimental cross as R/qtl2's ``read_cross2`` reads it.

    Attributes
    ----------
    crosstype : str
        R/qtl2's cross type (``"bc"``, ``"f2"``, ``"riself"``, ``"risib"``,
        ``"dh"``, ``"haploid"``, ``"ail"``, ``"do"``, ...; see
        :data:`CROSS_TYPES`).
    ids : tuple of str
        The individuals with genotypes, in the order of the rows of ``geno``.
    geno : dict of str to ndarray of int8, shape (n, n_markers_on_chr)
        Observed genotypes per chromosome (R/qtl2 codes, 0 = missing); the
        columns follow ``gmap[chr]``.
    gmap : dict of str to pandas.Series
        Genetic map per chromosome: index = marker names, values = cM,
        non-decreasing. Chromosomes in natural order (``1 ... 19, X``).
        A cross with only a physical map has it here too (as R/qtl2 uses
        ``pmap`` when there is no ``gmap``).
    pmap : dict of str to pandas.Series, or None
        Physical map (Mbp), same markers in the same order, when the cross
        has one.
    founder_geno : dict of str to ndarray of int8, shape (n_founders, n_markers_on_chr), or None
        Founders' genotypes (1 or 3, 0 = missing) for multi-parent crosses;
        rows follow ``founders``, columns follow ``gmap[chr]``.
    is_x_chr : dict of str to bool
        Whether each chromosome is the X chromosome.
    is_female : ndarray of bool, shape (n,)
        Sex of each individual (all True when the cross has no sex, as in
        R/qtl2).
    cross_info : ndarray of int, shape (n, k)
        R/qtl2's cross information: ``f2``: one column, 0 = (AxB)x(AxB),
        1 = (BxA)x(BxA); ``do`` and ``ail``: one column, the number of
        generations of outbreeding (``ail``: a second column, the
        direction, when there is an X); ``riself4``/``8`` ...: the order of
        the founders in the funnel; k = 0 where the cross has none.
    cross_info_names : tuple of str
        Names of the columns of ``cross_info``.
    alleles : tuple of str
        One-letter codes of the founder alleles (``("A", "B")`` for
        two-founder crosses, ``("A", ..., "H")`` for DO).
    pheno : pandas.DataFrame
        Numeric phenotypes, index = individual IDs (R/qtl2 keeps the
        phenotype file's individuals, which may differ from ``ids``; rows
        are in the order of ``ids`` when both hold the same individuals).
        Empty (no columns) when the cross has no phenotypes.
    covar : pandas.DataFrame or None
        Covariates (text columns kept as text, columns that are all
        numbers as floats), index = individual IDs.
    phenocovar : pandas.DataFrame or None
        Phenotype covariates (one row per phenotype).
    source : str
        The zip or control file the cross was read from (for messages).
    extra : dict
        Anything else a caller wants to keep with the cross.
    genotype_codes : dict of str to int
        The control file's ``genotypes`` map used to read ``geno`` (R/qtl2's
        default ``{"A": 1, "H": 2, "B": 3, "D": 4, "C": 5}`` when it has
        none).
    founders : tuple of str
        Founder strain labels (the rows of ``founder_geno``); ``()`` for
        crosses without founder genotypes.
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
    genotype_codes: dict[str, int] = field(default_factory=dict)
    founders: tuple[str, ...] = ()

    @property
    def chromosomes(self) -> tuple[str, ...]:
        """Chromosomes in map order."""
        return tuple(self.gmap)

    @property
    def n(self) -> int:
        """Number of individuals with genotypes."""
        return len(self.ids)

    @property
    def x_chr(self) -> tuple[str, ...]:
        """Names of the X chromosome(s) (usually ``("X",)``, or ``()``)."""
        return tuple(c for c, x in self.is_x_chr.items() if x)

    @property
    def n_markers(self) -> dict[str, int]:
        """Number of markers on each chromosome."""
        return {c: len(m) for c, m in self.gmap.items()}

    @property
    def markers(self) -> tuple[str, ...]:
        """All marker names, chromosome by chromosome in map order."""
        return tuple(m for s in self.gmap.values() for m in s.index)

    @property
    def n_founders(self) -> int:
        """Number of founders (R/qtl2's ``n_founders``: 2 without founder genotypes)."""
        return len(self.founders) if self.founders else 2

    @property
    def phenotypes(self) -> tuple[str, ...]:
        """Phenotype names."""
        return tuple(self.pheno.columns)

    def summary(self) -> str:
        """The text of R/qtl2's ``summary(cross)``, with the X chromosome and the sexes.

        The counts are those of R/qtl2's ``print.summary.cross2``: total
        individuals (the union of the genotype, phenotype and covariate
        files), genotyped, phenotyped, with both; phenotypes, covariates,
        phenotype covariates; chromosomes, markers, markers by chromosome.
        """
        geno_ids = list(self.ids)
        pheno_ids = list(self.pheno.index) if self.pheno.shape[1] or len(self.pheno.index) else []
        covar_ids = list(self.covar.index) if self.covar is not None else []
        everyone = dict.fromkeys(geno_ids + pheno_ids + covar_ids)
        both = len(set(geno_ids) & set(pheno_ids))
        counts = [
            ("Total individuals", len(everyone), False),
            ("No. genotyped individuals", len(geno_ids), False),
            ("No. phenotyped individuals", len(pheno_ids), False),
            ("No. with both geno & pheno", both, False),
            ("No. phenotypes", self.pheno.shape[1], True),
            ("No. covariates", 0 if self.covar is None else self.covar.shape[1], False),
            ("No. phenotype covariates", 0 if self.phenocovar is None else self.phenocovar.shape[1], False),
            ("No. chromosomes", len(self.gmap), True),
            ("Total markers", sum(self.n_markers.values()), False),
        ]
        width = max(len(name) for name, _, _ in counts) + 1
        top = max(v for _, v, _ in counts)
        digits = max(int(np.ceil(np.log10(top))), 0) if top > 0 else 0  # R's print_aligned
        lines = [f'Object of class cross2 (crosstype "{self.crosstype}")', ""]
        for name, value, gap in counts:
            if gap:
                lines.append("")
            lines.append(f"{name:<{width}}  {value:>{digits}d}" if digits else f"{name:<{width}}  {value:d}")
        lines += ["", "No. markers by chr:"] + _named_vector(self.n_markers)
        n_female = int(np.count_nonzero(self.is_female))
        x = ", ".join(self.x_chr) or "none"
        lines += ["", f"X chromosome: {x}"]
        lines.append(f"Sexes: {n_female} female, {self.n - n_female} male")
        if self.cross_info.shape[1]:
            lines.append(f"Cross information: {', '.join(self.cross_info_names)}")
        if self.founders:
            lines.append(f"Founders: {' '.join(self.founders)}")
        lines.append(f"Alleles: {' '.join(self.alleles)}")
        if self.source:
            lines.append(f"Read from: {self.source}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        n_pheno = self.pheno.shape[1]
        return (
            f"<Cross {self.crosstype!r}: {self.n} individuals, {n_pheno} phenotypes, "
            f"{len(self.gmap)} chromosomes, {sum(self.n_markers.values())} markers"
            + (f", X = {', '.join(self.x_chr)}" if self.x_chr else "")
            + (f", from {self.source!r}" if self.source else "")
            + ">"
        )


def _named_vector(counts: dict[str, int], width: int = 80) -> list[str]:
    """R's printing of a named vector: names over values, all right-aligned to one width, wrapped at ``width``."""
    cells = [(str(k), str(v)) for k, v in counts.items()]
    w = max((max(len(a), len(b)) for a, b in cells), default=1)
    per_line = max(width // (w + 1), 1)
    lines = []
    for start in range(0, len(cells), per_line):
        row = cells[start: start + per_line]
        lines.append("".join(a.rjust(w) + " " for a, _ in row))
        lines.append("".join(b.rjust(w) + " " for _, b in row))
    return lines
