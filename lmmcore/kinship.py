"""Kinship (genetic relationship) matrices from genotypes, whole-genome and LOCO.

Three kinds, each a cross product of per-marker values averaged over markers,

    K = (1/m) sum_j z_j z_j'      (z_j: a column, or columns, of values at marker j)

* ``"genoprobs"``: R/qtl2's default ``calc_kinship`` (``type="overall"``):
  ``z_j`` are the allele probabilities at marker j, so ``K_ik`` is the
  average probability that an allele drawn from ``i`` and one drawn from
  ``k`` at a random marker are identical by state (between founder alleles).
* ``"standardized"``: the genomic relationship matrix of GCTA/Yang et al.
  (2010), ``z_ij = (x_ij - 2 p_j) / sqrt(2 p_j (1 - p_j))``.
* ``"centered"``: GEMMA's ``-gk 1`` matrix, ``z_ij = x_ij - mean_i x_ij``.

The sum over markers is done in chunks, so memory is ``O(n^2 + n * chunk)``
whatever the number of markers. For leave-one-chromosome-out (LOCO) kinships
the unnormalised sum ``S_c`` of each chromosome is formed once; the kinship
without chromosome ``c`` is ``(S - S_c) / (m - m_c)`` with ``S = sum_c S_c``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from .constants import CHUNK_ELEMENTS, RANGE_TOLERANCE
from .errors import LMMInputError, Report, report, reporting
from .allele_map import allele_matrix
from .genotypes import Genotypes, sort_chromosomes

__all__ = [
    "Kinship",
    "allele_matrix",
    "compute_kinship",
    "compute_loco_kinships",
    "kinship_from_dosages",
    "kinship_from_genoprobs",
    "loco_kinships",
    "used_markers",
    "MONOMORPHIC_TOLERANCE",
]

DosageKind = Literal["standardized", "centered"]

#: A dosage column whose range (max - min) is at most this is monomorphic.
MONOMORPHIC_TOLERANCE = 1e-12


@dataclass(frozen=True, eq=False)
class Kinship:
    """A kinship matrix with its provenance.

    Attributes
    ----------
    ids : tuple of str
        Individual IDs of the rows and columns.
    matrix : ndarray, shape (n, n)
        The symmetric kinship matrix.
    kind : str
        ``"genoprobs"`` (R/qtl2 ``calc_kinship``), ``"standardized"`` or
        ``"centered"``.
    n_markers : int
        Markers averaged over (polymorphic markers only for dosage kinds).
    chromosome_left_out : str or None
        The chromosome excluded (LOCO), or None for the whole genome.
    """

    ids: tuple[str, ...]
    matrix: np.ndarray
    kind: str
    n_markers: int
    chromosome_left_out: str | None = None

    @property
    def n(self) -> int:
        """Number of individuals."""
        return int(self.matrix.shape[0])


# --------------------------------------------------------------------------- #
# Public array functions
# --------------------------------------------------------------------------- #
def kinship_from_genoprobs(
    probs: np.ndarray,
    genotype_names: Sequence[str],
    *,
    allele_map: np.ndarray | None = None,
    chunk_size: int | None = None,
    report: Report | None = None,
) -> np.ndarray:
    """R/qtl2's default kinship from genotype probabilities.

    Parameters
    ----------
    probs : array_like, shape (n, n_markers, n_genotypes)
        Genotype probabilities; a marker with none observed (NaN throughout)
        is skipped with an :class:`~lmmcore.errors.LMMWarning`.
    genotype_names : sequence of str
        Names of the genotypes (see :func:`allele_matrix`).
    allele_map : ndarray, shape (n_genotypes, n_alleles), optional
        The map from genotype to allele probabilities
        (:meth:`Genotypes.allele_matrix`); by default read from the names.
    chunk_size : int, optional
        Markers per chunk (default: about 32 MiB of allele probabilities).
    report : callable, optional
        Receives the messages (skipped markers) instead of an
        :class:`~lmmcore.errors.LMMWarning` (see :func:`lmmcore.errors.reporting`).

    Returns
    -------
    ndarray, shape (n, n)
        The kinship matrix; symmetric, positive semidefinite, with diagonal
        1 for an individual that is homozygous with certainty everywhere.

    Raises
    ------
    LMMInputError
        If ``probs`` is not 3-D, has no markers, is not finite, lies outside
        ``[0, 1]``, or the names do not match its last axis.

    Notes
    -----
    With genotype probabilities ``pi_ijg`` and ``A`` the ``allele_map`` (or
    :func:`allele_matrix` of the names), the allele probabilities are
    ``p_ija = sum_g pi_ijg A_ga`` (genotype ``AB`` gives half its
    probability to ``A`` and half to ``B``), and

        K_ik = (1/m) sum_j sum_a p_ija p_kja,

    the ``type="overall"`` kinship of R/qtl2's ``calc_kinship`` with its
    default ``use_allele_probs=TRUE``. It is computed as ``P P' / m`` with
    ``P`` the ``n x (m * n_alleles)`` matrix of allele probabilities, one
    chunk of markers at a time.
    """
    with reporting(report):
        probs = _validate_probs(probs, genotype_names)
        transform = _AlleleProbs(_allele_map(genotype_names, allele_map))
        sums, counts = _cross_products(probs, None, transform, chunk_size)
        _warn_skipped(transform, int(counts.sum()), "genoprobs")
        return _finish(sums, counts)


def kinship_from_dosages(
    dosage: np.ndarray,
    kind: DosageKind = "standardized",
    *,
    chunk_size: int | None = None,
    report: Report | None = None,
) -> np.ndarray:
    """Kinship from allele dosages: standardized GRM or GEMMA's centred matrix.

    Parameters
    ----------
    dosage : array_like, shape (n, n_markers)
        Allele dosages in ``[0, 2]``, no missing values except at markers
        with no observed dosage at all (NaN throughout), which are skipped.
    kind : {"standardized", "centered"}
        Which matrix (see Notes).
    chunk_size : int, optional
        Markers per chunk (default: about 32 MiB).
    report : callable, optional
        Receives the messages (skipped markers) instead of an
        :class:`~lmmcore.errors.LMMWarning` (see :func:`lmmcore.errors.reporting`).

    Returns
    -------
    ndarray, shape (n, n)

    Raises
    ------
    LMMInputError
        If ``dosage`` is not 2-D, not finite, outside ``[0, 2]``, or every
        marker is monomorphic; or ``kind`` is unknown.

    Warns
    -----
    LMMWarning
        If monomorphic markers (the same dosage in everyone) or markers with
        no observed dosage were skipped (the message says how many).

    Notes
    -----
    With ``x_ij`` the dosage of individual i at marker j, ``p_j = mean_i
    x_ij / 2`` and ``m`` the number of polymorphic markers:

    * standardized: ``z_ij = (x_ij - 2 p_j) / sqrt(2 p_j (1 - p_j))`` and
      ``K = Z Z' / m`` (Yang et al. 2010, GCTA's ``--make-grm`` with the
      sample allele frequency);
    * centered: ``w_ij = x_ij - 2 p_j`` and ``K = W W' / m`` (GEMMA
      ``-gk 1``).

    Both are positive semidefinite with rank at most ``n - 1`` (every
    column of Z or W sums to zero).
    """
    with reporting(report):
        kind = _check_kind(kind)
        dosage = _validate_dosage(dosage)
        transform = _Standardize() if kind == "standardized" else _Center()
        sums, counts = _cross_products(dosage, None, transform, chunk_size)
        _warn_skipped(transform, int(counts.sum()), kind)
        return _finish(sums, counts)


def loco_kinships(
    data: np.ndarray,
    chromosome: Sequence[str],
    *,
    genotype_names: Sequence[str] | None = None,
    allele_map: np.ndarray | None = None,
    kind: DosageKind = "standardized",
    chunk_size: int | None = None,
    report: Report | None = None,
) -> dict[str, np.ndarray]:
    """Leave-one-chromosome-out kinships, one per chromosome.

    Parameters
    ----------
    data : array_like, shape (n, n_markers, n_genotypes) or (n, n_markers)
        Genotype probabilities (3-D; then ``genotype_names`` is required and
        ``kind`` is ignored) or allele dosages (2-D).
    chromosome : sequence of str, length n_markers
        Chromosome of each marker (need not be sorted).
    genotype_names : sequence of str, optional
        Genotype names for probabilities.
    allele_map : ndarray, shape (n_genotypes, n_alleles), optional
        As in :func:`kinship_from_genoprobs`.
    kind : {"standardized", "centered"}
        Dosage kinship kind.
    chunk_size : int, optional
        Markers per chunk.
    report : callable, optional
        Receives the messages instead of an :class:`~lmmcore.errors.LMMWarning`.

    Returns
    -------
    dict of str to ndarray
        ``{c: K_{-c}}`` in natural chromosome order, where ``K_{-c}`` is the
        kinship (of the same kind as :func:`kinship_from_genoprobs` or
        :func:`kinship_from_dosages`) of the markers on all chromosomes
        other than ``c``.

    Raises
    ------
    LMMInputError
        For invalid data, a chromosome vector of the wrong length, fewer
        than two chromosomes, or no polymorphic marker outside a chromosome.

    Notes
    -----
    With ``S_c = sum_{j in c} z_j z_j'`` and ``m_c`` the markers of ``c``
    (polymorphic ones, for dosages), each ``S_c`` is computed once and

        K_{-c} = (S - S_c) / (m - m_c),   S = sum_c S_c,   m = sum_c m_c,

    which costs one pass over the markers instead of one per chromosome.
    Allele frequencies for the standardized kind are per marker, so
    ``K_{-c}`` equals the kinship computed from the other chromosomes'
    markers alone.
    """
    with reporting(report):
        return _loco_kinships(data, chromosome, genotype_names, allele_map, kind, chunk_size)


def _loco_kinships(data, chromosome, genotype_names, allele_map, kind, chunk_size) -> dict[str, np.ndarray]:
    data = np.asarray(data)
    if data.ndim == 3:
        if genotype_names is None:
            raise LMMInputError("Genotype probabilities need their genotype_names to compute a kinship.")
        data = _validate_probs(data, genotype_names)
        transform = _AlleleProbs(_allele_map(genotype_names, allele_map))
        label = "genoprobs"
    else:
        kind = _check_kind(kind)
        data = _validate_dosage(data)
        transform = _Standardize() if kind == "standardized" else _Center()
        label = kind
    chrom = np.asarray([str(c) for c in chromosome], dtype=object)
    if chrom.shape != (data.shape[1],):
        raise LMMInputError(
            f"There are {data.shape[1]} markers but {chrom.size} chromosome labels; give one "
            "chromosome per marker."
        )
    names = sort_chromosomes(set(chrom.tolist()))
    if len(names) < 2:
        raise LMMInputError(
            f"All markers are on chromosome {names[0]!r}; leave-one-chromosome-out kinships need "
            "markers on at least two chromosomes."
        )
    sums, counts = _cross_products(data, (chrom, names), transform, chunk_size)
    _warn_skipped(transform, int(counts.sum()), label)
    total_sum = sums.sum(axis=0)
    total_count = int(counts.sum())
    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(names):
        remaining = total_count - int(counts[k])
        if remaining == 0:
            raise LMMInputError(
                f"Every usable marker is on chromosome {name!r}, so the kinship without it has no "
                "markers; LOCO needs informative markers on at least two chromosomes."
            )
        S = sums[k]  # reuse the chromosome's buffer for its LOCO kinship
        np.subtract(total_sum, S, out=S)
        S /= remaining
        out[name] = _symmetrize(S)
    return out


# --------------------------------------------------------------------------- #
# Public functions on Genotypes records
# --------------------------------------------------------------------------- #
def compute_kinship(
    genotypes: Genotypes,
    *,
    kind: DosageKind = "standardized",
    chunk_size: int | None = None,
    report: Report | None = None,
) -> Kinship:
    """Whole-genome kinship of a :class:`~lmmcore.genotypes.Genotypes` record.

    Genotype probabilities give R/qtl2's kinship
    (:func:`kinship_from_genoprobs`; ``kind`` is ignored); dosages give the
    ``kind`` of :func:`kinship_from_dosages`. ``report`` receives the
    messages (see :func:`lmmcore.errors.reporting`).
    """
    if genotypes.kind == "genoprobs":
        K = kinship_from_genoprobs(genotypes.probs, genotypes.genotype_names,
                                   allele_map=genotypes.allele_matrix()[1], chunk_size=chunk_size, report=report)
        return Kinship(genotypes.ids, K, "genoprobs", int(used_markers(genotypes.probs).sum()))
    kind = _check_kind(kind)
    K = kinship_from_dosages(genotypes.dosage, kind, chunk_size=chunk_size, report=report)
    return Kinship(genotypes.ids, K, kind, int(used_markers(genotypes.dosage).sum()))


def compute_loco_kinships(
    genotypes: Genotypes,
    *,
    kind: DosageKind = "standardized",
    chunk_size: int | None = None,
    report: Report | None = None,
) -> dict[str, Kinship]:
    """LOCO kinships of a :class:`~lmmcore.genotypes.Genotypes` record.

    Returns ``{chromosome: Kinship}`` in natural chromosome order; see
    :func:`loco_kinships`.
    """
    chrom = np.asarray(genotypes.chromosome, dtype=object)
    if genotypes.kind == "genoprobs":
        mats = loco_kinships(genotypes.probs, genotypes.chromosome, genotype_names=genotypes.genotype_names,
                             allele_map=genotypes.allele_matrix()[1], chunk_size=chunk_size, report=report)
        label = "genoprobs"
    else:
        label = _check_kind(kind)
        mats = loco_kinships(genotypes.dosage, genotypes.chromosome, kind=label, chunk_size=chunk_size,
                             report=report)
    used = used_markers(genotypes.data)
    total = int(used.sum())
    return {
        c: Kinship(genotypes.ids, K, label, total - int(used[chrom == c].sum()), chromosome_left_out=c)
        for c, K in mats.items()
    }


# --------------------------------------------------------------------------- #
# The engine: chunked cross products
# --------------------------------------------------------------------------- #
def _allele_map(genotype_names: Sequence[str], allele_map: np.ndarray | None) -> np.ndarray:
    """``allele_map`` checked against the names, or the map read from the names."""
    if allele_map is None:
        return allele_matrix(genotype_names)[1]
    A = np.asarray(allele_map, dtype=float)
    if A.ndim != 2 or A.shape[0] != len(genotype_names):
        raise LMMInputError(
            f"allele_map has shape {A.shape}; it needs one row per genotype ({len(genotype_names)})."
        )
    return A


class _AlleleProbs:
    """Chunk transform: genotype probabilities -> allele probabilities."""

    def __init__(self, A: np.ndarray) -> None:
        self.A = A
        self.width = A.shape[1]
        self.n_empty = 0

    def __call__(self, chunk: np.ndarray) -> tuple[np.ndarray, int]:
        empty = np.isnan(chunk[0]).any(axis=-1)  # validated: such a marker is NaN throughout
        if empty.any():
            self.n_empty += int(empty.sum())
            chunk = chunk[:, ~empty]
        n, c, _ = chunk.shape
        P = np.matmul(chunk, self.A)  # (n, c, alleles)
        return P.reshape(n, c * self.width), c


class _Center:
    """Chunk transform: dosages -> centred dosages of polymorphic markers."""

    width = 1

    def __init__(self) -> None:
        self.n_skipped = 0
        self.n_empty = 0

    def _polymorphic(self, chunk: np.ndarray) -> np.ndarray:
        spread = np.ptp(chunk, axis=0)
        keep = spread > MONOMORPHIC_TOLERANCE  # False for an all-missing (NaN) marker
        empty = np.isnan(spread)
        self.n_empty += int(empty.sum())
        self.n_skipped += int(keep.size - keep.sum()) - int(empty.sum())
        return chunk[:, keep] if not keep.all() else chunk

    def __call__(self, chunk: np.ndarray) -> tuple[np.ndarray, int]:
        X = self._polymorphic(chunk)
        return X - X.mean(axis=0), X.shape[1]


class _Standardize(_Center):
    """Chunk transform: dosages -> standardized dosages of polymorphic markers."""

    def __call__(self, chunk: np.ndarray) -> tuple[np.ndarray, int]:
        X = self._polymorphic(chunk)
        two_p = X.mean(axis=0)
        p = two_p / 2.0
        return (X - two_p) / np.sqrt(2.0 * p * (1.0 - p)), X.shape[1]


def _cross_products(data, groups, transform, chunk_size) -> tuple[np.ndarray, np.ndarray]:
    """Per-group sums ``S_c = sum_{j in c} z_j z_j'`` and marker counts ``m_c``.

    ``groups`` is None (one group: all markers) or ``(labels, names)``.
    Returns ``sums`` of shape (n_groups, n, n) and ``counts`` (n_groups,).
    """
    n, m = data.shape[0], data.shape[1]
    width = getattr(transform, "width", 1)
    if chunk_size is None:
        chunk_size = max(1, CHUNK_ELEMENTS // max(1, n * width))
    elif int(chunk_size) < 1:
        raise LMMInputError(f"chunk_size is {chunk_size}; it must be a positive number of markers.")
    chunk_size = int(chunk_size)
    if groups is None:
        members = [np.arange(m)]
    else:
        labels, names = groups
        members = [np.flatnonzero(labels == name) for name in names]
    sums = np.zeros((len(members), n, n))
    counts = np.zeros(len(members), dtype=np.int64)
    for k, idx in enumerate(members):
        contiguous = idx.size > 0 and idx[-1] - idx[0] == idx.size - 1
        for start in range(0, idx.size, chunk_size):
            if contiguous:
                lo = idx[0] + start
                block = data[:, lo:lo + min(chunk_size, idx.size - start)]
            else:
                block = data[:, idx[start:start + chunk_size]]
            Z, used = transform(np.asarray(block, dtype=np.float64))
            if used:
                sums[k] += Z @ Z.T
                counts[k] += used
    return sums, counts


def _finish(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    total = int(counts.sum())
    if total == 0:
        raise LMMInputError(
            "No marker is polymorphic (every marker has the same dosage in everyone); a kinship "
            "needs markers that vary."
        )
    K = sums.sum(axis=0) / total
    return _symmetrize(K)


def _symmetrize(K: np.ndarray) -> np.ndarray:
    """Make K exactly symmetric, in place (BLAS rounding may differ between triangles)."""
    K[...] = (K + K.T) * 0.5
    return K


# --------------------------------------------------------------------------- #
# Validation and warnings
# --------------------------------------------------------------------------- #
def _check_kind(kind: str) -> str:
    if kind not in ("standardized", "centered"):
        raise LMMInputError(
            f"The kinship kind {kind!r} is unknown; use 'standardized' (GCTA's GRM) or 'centered' "
            "(GEMMA's -gk 1)."
        )
    return kind


def _validate_probs(probs, genotype_names) -> np.ndarray:
    probs = np.asarray(probs)
    if probs.ndim != 3:
        raise LMMInputError(
            f"Genotype probabilities have shape {probs.shape}; they must have shape "
            "(individuals, markers, genotypes)."
        )
    if probs.shape[1] == 0 or probs.shape[0] == 0:
        raise LMMInputError(
            f"Genotype probabilities have shape {probs.shape}; a kinship needs individuals and markers."
        )
    if len(genotype_names) != probs.shape[2]:
        raise LMMInputError(
            f"Genotype probabilities have {probs.shape[2]} genotypes per marker but "
            f"{len(genotype_names)} genotype names were given; give one name per genotype."
        )
    if not np.issubdtype(probs.dtype, np.number):
        raise LMMInputError("Genotype probabilities must be numbers.")
    _check_values(
        probs, 1.0,
        lambda bad: f"Genotype probabilities contain {bad} missing or infinite values; every probability must "
                    "be a number in [0, 1] (a marker with no observed genotype at all is skipped).",
        lambda lo, hi: f"Genotype probabilities range from {lo:g} to {hi:g}; they must lie in [0, 1].",
    )
    return probs


def _validate_dosage(dosage) -> np.ndarray:
    dosage = np.asarray(dosage)
    if dosage.ndim != 2:
        raise LMMInputError(
            f"Dosages have shape {dosage.shape}; they must have shape (individuals, markers)."
        )
    if dosage.shape[0] < 2 or dosage.shape[1] == 0:
        raise LMMInputError(
            f"Dosages have shape {dosage.shape}; a kinship needs at least two individuals and one marker."
        )
    if not np.issubdtype(dosage.dtype, np.number):
        raise LMMInputError("Dosages must be numbers.")
    _check_values(
        dosage, 2.0,
        lambda bad: f"Dosages contain {bad} missing or infinite values; impute them first (read_dosages and "
                    "read_plink replace missing dosages by the marker mean; a marker with no observed dosage at "
                    "all is skipped).",
        lambda lo, hi: f"Dosages range from {lo:g} to {hi:g}; they count copies of an allele and must lie in "
                       "[0, 2].",
    )
    return dosage


def _check_values(data: np.ndarray, top: float, not_finite, out_of_range) -> None:
    """Every value finite (except markers with nothing observed, NaN throughout) and within ``[0, top]``.

    ``data`` is (n, markers) or (n, markers, genotypes); the messages come
    from ``not_finite(count)`` and ``out_of_range(low, high)``.
    """
    finite = np.isfinite(data)
    empty = None
    if not finite.all():
        other = tuple(a for a in range(data.ndim) if a != 1)
        empty = np.isnan(data).all(axis=other)  # markers with no observed genotype: skipped
        bad = ~finite & ~empty.reshape((1, -1) + (1,) * (data.ndim - 2))
        if bad.any():
            raise LMMInputError(not_finite(int(bad.sum())))
    if empty is None or not empty.all():
        lo, hi = (data.min(), data.max()) if empty is None else (np.nanmin(data), np.nanmax(data))
        if lo < -RANGE_TOLERANCE or hi > top + RANGE_TOLERANCE:
            raise LMMInputError(out_of_range(lo, hi))


def _warn_skipped(transform, n_used: int, kind: str) -> None:
    """Warn about the markers a kinship left out: monomorphic ones and ones with no observed genotype."""
    n_skipped = getattr(transform, "n_skipped", 0)
    n_empty = getattr(transform, "n_empty", 0)
    n_total = n_used + n_skipped + n_empty
    if n_skipped:
        report(
            f"{n_skipped} of {n_total} markers are monomorphic (the same dosage in everyone) and "
            f"were skipped in the {kind} kinship.",
            stacklevel=3,
        )
    if n_empty:
        report(
            f"{n_empty} of {n_total} markers have no observed genotype (all missing) and were "
            f"skipped in the {kind} kinship.",
            stacklevel=3,
        )


def used_markers(data: np.ndarray) -> np.ndarray:
    """Markers a kinship averages over: observed ones, and for dosages only polymorphic ones."""
    if data.ndim == 3:
        return ~np.isnan(data[0]).any(axis=-1)
    return np.ptp(data, axis=0) > MONOMORPHIC_TOLERANCE  # False for NaN (all missing)
