"""Genotype inputs: genotype probabilities, dosages, PLINK binary files and maps.

Every reader returns a :class:`Genotypes` record whose markers are in genome
order: chromosomes in natural order (``1, 2, ..., 10, X, Y, MT``), then by
position within a chromosome. The record holds either

* ``probs``, genotype probabilities of shape ``(n, n_markers, n_genotypes)``
  with the genotype names in ``genotype_names`` (R/qtl2's ``calc_genoprob``
  output, written as a CSV whose columns are named ``MARKER:GENOTYPE``), or
* ``dosage``, allele dosages of shape ``(n, n_markers)`` in ``[0, 2]``.

These readers are the edge of the package: they check everything a file can
get wrong (duplicate IDs, non-numeric cells, probabilities outside ``[0, 1]``
or not summing to 1, dosages outside ``[0, 2]``, markers missing from the map)
and raise :class:`~lmmcore.errors.LMMInputError` with a message that names the
file, the column or marker, and what to do. Code that receives a
:class:`Genotypes` may trust it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .allele_map import allele_matrix
from .constants import RANGE_TOLERANCE
from .errors import LMMInputError, report
from .marker_map import chromosome_sort_key, genome_order, place_on_map, read_map, sort_chromosomes
from .tables import MISSING_TOKENS, Source, agree, check_unique, display_name, list_names, plural, read_table, verb

__all__ = [
    "Genotypes",
    "chromosome_sort_key",
    "read_dosages",
    "read_genoprobs",
    "read_map",
    "read_plink",
    "sort_chromosomes",
]

#: Absolute tolerance for the genotype probabilities of one marker and one
#: individual to sum to 1.
PROB_SUM_TOLERANCE = 1e-3


#: Cell contents read as missing values: the package's one list, :data:`lmmcore.tables.MISSING_TOKENS`.
NA_STRINGS = tuple(MISSING_TOKENS)


# --------------------------------------------------------------------------- #
# The record
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class Genotypes:
    """Genotypes of ``n`` individuals at ``n_markers`` markers in genome order.

    Exactly one of ``probs`` and ``dosage`` is set.

    Attributes
    ----------
    ids : tuple of str
        Individual IDs, one per row, unique.
    markers : tuple of str
        Marker names, unique, in genome order.
    chromosome : tuple of str
        Chromosome of each marker.
    position : ndarray of float, shape (n_markers,)
        Position of each marker on its chromosome (the unit of the map: cM
        for genetic maps, bp for PLINK files).
    probs : ndarray of float, shape (n, n_markers, n_genotypes), or None
        Genotype probabilities; ``probs[i, j, :]`` sums to 1, except at a
        marker with no observed genotype, which is NaN throughout.
    genotype_names : tuple of str, or None
        Names of the genotypes along the last axis of ``probs``, spelling the
        alleles (``"AA", "AB", "BB"``; single letters for inbred lines).
    dosage : ndarray of float, shape (n, n_markers), or None
        Allele dosages in ``[0, 2]`` (missing values already imputed; a
        marker with no observed genotype is NaN throughout).
    source : str
        The file the genotypes were read from (for messages).
    genotypes_by_chr : dict of str to tuple of str, or None
        Each chromosome's own genotypes in R/qtl2's order, when they differ
        between chromosomes (the X chromosome of a cross); ``genotype_names``
        is then their union and ``probs`` is 0 for a genotype outside a
        chromosome's set.
    alleles : tuple of str, or None
        The alleles (founders) that ``allele_map`` maps the genotypes to.
    allele_map : ndarray of float, shape (n_genotypes, n_alleles), or None
        ``allele_map[g, a]``: the share of allele ``a`` in genotype ``g``
        (rows in ``genotype_names`` order), the cross type's own map as
        R/qtl2's ``genoprob_to_alleleprob`` applies it. Set by
        :func:`lmmcore.genoprob`; when None, :meth:`allele_matrix` reads it
        from the genotype names (:func:`lmmcore.allele_map.allele_matrix`).
    """

    ids: tuple[str, ...]
    markers: tuple[str, ...]
    chromosome: tuple[str, ...]
    position: np.ndarray
    probs: np.ndarray | None = None
    genotype_names: tuple[str, ...] | None = None
    dosage: np.ndarray | None = None
    source: str = ""
    genotypes_by_chr: dict[str, tuple[str, ...]] | None = None
    alleles: tuple[str, ...] | None = None
    allele_map: np.ndarray | None = None

    def __post_init__(self) -> None:
        # Normalise the containers (frozen: set through object.__setattr__).
        for name in ("ids", "markers", "chromosome"):
            object.__setattr__(self, name, tuple(str(v) for v in getattr(self, name)))
        object.__setattr__(self, "position", np.asarray(self.position, dtype=float))
        if self.genotype_names is not None:
            object.__setattr__(self, "genotype_names", tuple(str(v) for v in self.genotype_names))
        if self.genotypes_by_chr is not None:
            by_chr = {str(c): tuple(str(g) for g in names) for c, names in self.genotypes_by_chr.items()}
            object.__setattr__(self, "genotypes_by_chr", by_chr)
            extra = sorted({g for names in by_chr.values() for g in names} - set(self.genotype_names or ()))
            if extra:
                raise LMMInputError(
                    f"genotypes_by_chr names genotypes ({', '.join(extra)}) that are not among "
                    "genotype_names; genotype_names must be the union of every chromosome's genotypes."
                )
        m = len(self.markers)
        if (self.probs is None) == (self.dosage is None):
            raise LMMInputError("Genotypes needs exactly one of probs and dosage.")
        if len(self.chromosome) != m or np.shape(self.position) != (m,):
            raise LMMInputError(
                f"Genotypes has {m} markers but {len(self.chromosome)} chromosomes and "
                f"{np.size(self.position)} positions; give one of each per marker."
            )
        data = self.data
        if data.shape[:2] != (len(self.ids), m):
            raise LMMInputError(
                f"Genotypes has {len(self.ids)} IDs and {m} markers but its data has shape "
                f"{data.shape}; the first two axes must be (individuals, markers)."
            )
        if self.probs is not None:
            if self.probs.ndim != 3 or self.genotype_names is None:
                raise LMMInputError(
                    "Genotype probabilities must have shape (n, n_markers, n_genotypes) "
                    "and come with their genotype names."
                )
            if len(self.genotype_names) != self.probs.shape[2]:
                raise LMMInputError(
                    f"There are {self.probs.shape[2]} genotypes per marker but "
                    f"{len(self.genotype_names)} genotype names; give one name per genotype."
                )
        elif self.dosage.ndim != 2:
            raise LMMInputError("Dosages must have shape (n, n_markers).")
        if (self.alleles is None) != (self.allele_map is None):
            raise LMMInputError("Genotypes needs both alleles and allele_map, or neither.")
        if self.allele_map is not None:
            object.__setattr__(self, "alleles", tuple(str(a) for a in self.alleles))
            object.__setattr__(self, "allele_map", np.asarray(self.allele_map, dtype=float))
            shape = (len(self.genotype_names or ()), len(self.alleles))
            if self.probs is None or self.allele_map.shape != shape:
                raise LMMInputError(
                    f"allele_map has shape {self.allele_map.shape}; it needs genotype probabilities and "
                    f"one row per genotype and one column per allele, {shape}."
                )

    def __repr__(self) -> str:
        """One line, as :class:`~lmmcore.cross.Cross`'s: what the record holds, not its arrays."""
        what = "dosages"
        if self.probs is not None:
            kind = "alleles" if self.alleles == self.genotype_names else "genotypes"
            what = f"probabilities of {len(self.genotype_names)} {kind} ({_shown(self.genotype_names)})"
            if self.alleles is not None and kind == "genotypes":
                what += f", alleles {_shown(self.alleles)}"
        return (f"<Genotypes: {self.n} individuals, {self.n_markers} markers on {len(self.chromosomes)} "
                f"chromosomes, {what}" + (f", from {self.source!r}" if self.source else "") + ">")

    @property
    def kind(self) -> str:
        """``"genoprobs"`` or ``"dosage"``."""
        return "genoprobs" if self.probs is not None else "dosage"

    @property
    def data(self) -> np.ndarray:
        """``probs`` or ``dosage``, whichever is set."""
        return self.probs if self.probs is not None else self.dosage

    @property
    def n(self) -> int:
        """Number of individuals."""
        return len(self.ids)

    @property
    def n_markers(self) -> int:
        """Number of markers."""
        return len(self.markers)

    @property
    def chromosomes(self) -> tuple[str, ...]:
        """The distinct chromosomes, in natural order."""
        return tuple(sort_chromosomes(set(self.chromosome)))

    def allele_matrix(self) -> tuple[tuple[str, ...], np.ndarray]:
        """The alleles and the ``(n_genotypes, n_alleles)`` map from genotype to allele probabilities.

        ``(alleles, allele_map)`` when they are set (probabilities from
        :func:`lmmcore.genoprob`), otherwise read from the genotype names by
        :func:`lmmcore.allele_map.allele_matrix`.
        """
        if self.allele_map is not None:
            return self.alleles, self.allele_map
        if self.genotype_names is None:
            raise LMMInputError("Allele probabilities need genotype probabilities, not dosages.")
        return allele_matrix(self.genotype_names)

    def marker_index(self, marker: str) -> int:
        """Column index of a marker.

        Raises
        ------
        LMMInputError
            If the marker is not in the genotypes.
        """
        try:
            return self.markers.index(marker)
        except ValueError:
            raise LMMInputError(
                f"Marker {marker!r} is not in the genotypes{_from(self.source)}; "
                "check its spelling against the marker names of the genotype file."
            ) from None

    def select_ids(self, ids: Sequence[str]) -> "Genotypes":
        """The genotypes of ``ids``, in that order.

        Raises
        ------
        LMMInputError
            If some of ``ids`` have no genotypes.
        """
        ids = tuple(str(i) for i in ids)
        index = pd.Index(self.ids).get_indexer(ids)
        missing = [i for i, k in zip(ids, index) if k < 0]
        if missing:
            raise LMMInputError(
                f"{agree(len(missing), 'ID has', 'IDs have')} no genotypes{_from(self.source)} "
                f"({list_names(missing)}); remove them or add their genotypes."
            )
        if self.probs is not None:
            return replace(self, ids=ids, probs=self.probs[index])
        return replace(self, ids=ids, dosage=self.dosage[index])


# --------------------------------------------------------------------------- #
# Readers
# --------------------------------------------------------------------------- #
def read_genoprobs(source: Source, map_source: Source, *, name: str | None = None,
                   map_name: str | None = None) -> Genotypes:
    """Read genotype probabilities from a CSV with ``MARKER:GENOTYPE`` columns.

    Parameters
    ----------
    source : str, Path, bytes or binary file object
        CSV file, or its bytes. The first column holds the individual IDs
        (its header may be empty, as R's ``write.csv`` writes it); every
        other column is named ``MARKER:GENOTYPE`` (split at the last colon,
        e.g. ``D1Mit18:AB``) and holds the probability of that genotype. All
        markers must have the same set of genotypes.
    map_source : str, Path, bytes or binary file object
        Marker map read with :func:`read_map`; every marker of ``source``
        must be in it.
    name, map_name : str, optional
        The names messages use for the two files (default: the paths as
        given; ``"upload"`` for bytes); ``name`` is also the record's
        ``source``.

    Returns
    -------
    Genotypes
        With ``probs`` of shape ``(n, n_markers, n_genotypes)`` in genome
        order and ``genotype_names`` in the order they first appear.

    Raises
    ------
    LMMInputError
        For duplicate IDs or columns, a column not named
        ``MARKER:GENOTYPE``, markers with different genotype sets, missing or
        non-numeric cells, probabilities outside ``[0, 1]``, probabilities of
        a marker that do not sum to 1 (within ``1e-3``) for an individual, or
        markers absent from the map. Missing cells are an error except at a
        marker with none observed.

    Warns
    -----
    LMMWarning
        If a marker has no probabilities at all (every cell missing): it is
        kept as NaN, so that the scan reports it as a flagged row
        (``all_missing``) and the kinships skip it.
    """
    path = display_name(source, name, full=True)
    ids, columns, values = _read_id_table(source, "genotype probabilities", path)
    marker_col, geno_col = _split_marker_genotype(path, columns)

    markers, marker_code = _factorize(marker_col)
    genotype_names, geno_code = _factorize(geno_col)
    n_m, n_g = len(markers), len(genotype_names)
    counts = np.zeros((n_m, n_g), dtype=np.int64)
    np.add.at(counts, (marker_code, geno_code), 1)
    if (counts > 1).any():
        j, g = np.argwhere(counts > 1)[0]
        raise LMMInputError(
            f"The genotype probabilities file {path} has {counts[j, g]} columns named "
            f"{markers[j]}:{genotype_names[g]}; every MARKER:GENOTYPE column must appear once."
        )
    # A genotype a marker has no column for (the X chromosome's hemizygous
    # genotypes on an autosome) points at an extra column of zeros.
    column_of = np.full((n_m, n_g), len(columns), dtype=np.int64)
    column_of[marker_code, geno_code] = np.arange(len(columns))

    _check_missing(path, "genotype probabilities", ids, columns, values, column_of, markers)
    probs = np.concatenate([values, np.zeros((len(ids), 1))], axis=1)[:, column_of]  # (n, markers, genotypes)
    order, chrom, pos = place_on_map(path, markers, map_source, map_name)
    by_chr = _genotype_sets(path, markers, order, chrom, counts > 0, marker_code, geno_code, genotype_names)

    bad = (probs < -RANGE_TOLERANCE) | (probs > 1 + RANGE_TOLERANCE)
    if bad.any():
        i, j, g = np.argwhere(bad)[0]
        raise LMMInputError(
            f"In the genotype probabilities file {path}, column {markers[j]}:{genotype_names[g]} "
            f"has the value {probs[i, j, g]:g} for ID {ids[i]!r} "
            f"({agree(int(bad.sum()), 'value is', 'values are')} outside [0, 1]); "
            "probabilities must lie between 0 and 1."
        )
    np.clip(probs, 0.0, 1.0, out=probs)
    total = probs.sum(axis=2)
    off = np.abs(total - 1.0) > PROB_SUM_TOLERANCE
    if off.any():
        i, j = np.argwhere(off)[0]
        own = [genotype_names[g] for g in np.flatnonzero(counts[j])]
        raise LMMInputError(
            f"In the genotype probabilities file {path}, the probabilities of marker {markers[j]} "
            f"for ID {ids[i]!r} sum to {total[i, j]:.6g} "
            f"({agree(int(off.sum()), 'marker/individual pair is', 'marker/individual pairs are')} "
            f"off); the {len(own)} genotype probabilities ({', '.join(own)}) of each marker "
            f"must sum to 1 within {PROB_SUM_TOLERANCE:g} for every individual."
        )

    return Genotypes(
        ids=tuple(ids),
        markers=tuple(markers[k] for k in order),
        chromosome=chrom,
        position=pos,
        probs=np.ascontiguousarray(probs[:, order, :]),
        genotype_names=tuple(genotype_names),
        genotypes_by_chr=by_chr,
        source=str(path),
    )


def _genotype_sets(path: str, markers: list[str], order: np.ndarray, chrom: Sequence[str], present: np.ndarray,
                   marker_code: np.ndarray, geno_code: np.ndarray, genotype_names: list[str]):
    """Each chromosome's genotypes (in the file's column order), or None when all markers share one set.

    R/qtl2 writes the X chromosome with its own genotypes (hemizygous males,
    both cross directions); within a chromosome every marker must have the same
    genotype columns.
    """
    if present.all():
        return None
    present_by_marker, present = present, present[order]
    chrom = np.asarray(chrom)
    by_chr: dict[str, tuple[str, ...]] = {}
    for c in dict.fromkeys(chrom.tolist()):
        rows = np.flatnonzero(chrom == c)
        differs = (present[rows] != present[rows[0]]).any(axis=1)
        if differs.any():
            k = rows[int(np.flatnonzero(differs)[0])]
            j, ref = order[k], order[rows[0]]
            if present[k].sum() > present[rows[0]].sum():  # name the marker that lacks genotypes
                j, ref = ref, j
            have = [genotype_names[g] for g in np.flatnonzero(present_by_marker[j])]
            lacking = [genotype_names[g] for g in np.flatnonzero(present_by_marker[ref] & ~present_by_marker[j])]
            raise LMMInputError(
                f"In the genotype probabilities file {path}, marker {markers[j]} has the genotypes "
                f"{', '.join(have)} but not {', '.join(lacking)}, which marker {markers[ref]} of the same "
                f"chromosome ({c}) has; all markers of a chromosome must have the same genotype columns "
                "(chromosomes may differ, as the X does)."
            )
        own = geno_code[marker_code == order[rows[0]]]  # the first marker's columns, in file order
        by_chr[c] = tuple(genotype_names[g] for g in own)
    return by_chr


def read_dosages(source: Source, map_source: Source, *, name: str | None = None,
                 map_name: str | None = None) -> Genotypes:
    """Read allele dosages: a CSV with IDs and one column per marker.

    Parameters
    ----------
    source, map_source, name, map_name
        As for :func:`read_genoprobs`, except that after the ID column every
        column is a marker with dosages in ``[0, 2]`` (the count of one
        allele, or its expectation). Missing values (:data:`NA_STRINGS`:
        empty, ``NA``, ...) are allowed.

    Returns
    -------
    Genotypes
        With ``dosage`` of shape ``(n, n_markers)`` in genome order.

    Raises
    ------
    LMMInputError
        For duplicate IDs or markers, non-numeric cells, dosages outside
        ``[0, 2]``, or markers absent from the map.

    Warns
    -----
    LMMWarning
        If missing dosages were replaced by their marker's mean (the message
        says how many), or a marker has no observed dosage: it is kept as
        NaN, so that the scan reports it as a flagged row (``all_missing``)
        and the kinships skip it.

    Notes
    -----
    Mean imputation sets a missing ``x_ij`` to ``mean_{k observed} x_kj``;
    it leaves the marker's mean, and hence its centring in the kinship,
    unchanged.
    """
    path = display_name(source, name, full=True)
    ids, columns, values = _read_id_table(source, "dosage", path)
    observed = ~np.isnan(values)
    bad = observed & ((values < -RANGE_TOLERANCE) | (values > 2 + RANGE_TOLERANCE))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise LMMInputError(
            f"In the dosage file {path}, marker {columns[j]} has the dosage {values[i, j]:g} for "
            f"ID {ids[i]!r} ({agree(int(bad.sum()), 'value is', 'values are')} outside [0, 2]); "
            "dosages count copies of an allele and must lie between 0 and 2."
        )
    np.clip(values, 0.0, 2.0, out=values)
    _impute_means(values, observed, columns, f"the dosage file {path}")
    order, chrom, pos = place_on_map(path, list(columns), map_source, map_name)
    return Genotypes(
        ids=tuple(ids),
        markers=tuple(columns[k] for k in order),
        chromosome=chrom,
        position=pos,
        dosage=np.ascontiguousarray(values[:, order]),
        source=str(path),
    )


def read_plink(prefix: str | Path) -> Genotypes:
    """Read PLINK 1 binary genotypes (``.bed``, ``.bim``, ``.fam``).

    Parameters
    ----------
    prefix : str or Path
        Path of the files without extension (a trailing ``.bed`` is
        accepted).

    Returns
    -------
    Genotypes
        ``dosage`` is the count of allele 1 (the ``.bim``'s fifth column,
        PLINK's A1) at each marker; IDs are the ``.fam``'s individual IDs;
        chromosome and base-pair position come from the ``.bim`` (when every
        base-pair position is 0, the genetic position in cM is used).
        Markers are put in genome order.

    Raises
    ------
    LMMInputError
        If a file is missing or unreadable, or IDs or marker names repeat.

    Warns
    -----
    LMMWarning
        If missing genotypes were replaced by their marker's mean, or a
        marker has no called genotype (kept as NaN: a flagged row of the
        scan, skipped by the kinships).
    """
    from bed_reader import open_bed  # imported here: only this reader needs it

    prefix = Path(prefix)
    if prefix.suffix == ".bed":
        prefix = prefix.with_suffix("")
    files = {ext: prefix.with_name(prefix.name + ext) for ext in (".bed", ".bim", ".fam")}
    absent = [str(p) for p in files.values() if not p.is_file()]
    if absent:
        raise LMMInputError(
            f"The PLINK file set {prefix} is incomplete: {', '.join(absent)} not found; a PLINK "
            "data set needs the .bed, .bim and .fam files with the same prefix."
        )
    try:
        with open_bed(files[".bed"], count_A1=True) as bed:
            ids = np.asarray(bed.iid, dtype=str)
            markers = np.asarray(bed.sid, dtype=str)
            chrom = np.asarray(bed.chromosome, dtype=str)
            bp = np.asarray(bed.bp_position, dtype=float)
            cm = np.asarray(bed.cm_position, dtype=float)
            check_unique(ids, f"the PLINK file {files['.fam']}", "individual ID (second column)",
                          "make the IDs unique (PLINK allows repeats across families; this program does not)")
            check_unique(markers, f"the PLINK file {files['.bim']}", "marker ID (second column)",
                          "rename or remove the duplicates")
            pos = bp if np.any(bp != 0) else cm
            order = genome_order(chrom, pos)
            in_order = bool(np.all(order == np.arange(order.size)))
            # one float64 array in genome order, written by bed_reader directly (no reordering copy)
            dosage = bed.read(index=None if in_order else np.s_[:, order], dtype="float64", order="C")
    except LMMInputError:
        raise
    except Exception as exc:  # bed_reader raises several exception types
        raise LMMInputError(
            f"Could not read the PLINK file set {prefix}: {exc}. Check that the .bed, .bim and "
            ".fam files belong together and are PLINK 1 binary (SNP-major) files."
        ) from exc
    markers, chrom, pos = markers[order], chrom[order], pos[order]
    _impute_means(dosage, None, list(markers), f"the PLINK file set {prefix}")
    return Genotypes(
        ids=tuple(ids.tolist()),
        markers=tuple(markers.tolist()),
        chromosome=tuple(chrom.tolist()),
        position=pos,
        dosage=dosage,
        source=str(files[".bed"]),
    )


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def _shown(names: Sequence[str], most: int = 8) -> str:
    """``names`` joined, the middle left out beyond ``most``."""
    names = list(names)
    return ", ".join(names if len(names) <= most else [*names[:most - 2], "…", names[-1]])


def _from(source: str) -> str:
    return f" read from {source}" if source else ""


def _read_id_table(source: Source, what: str, name: str) -> tuple[list[str], list[str], np.ndarray]:
    """Read a CSV of IDs (first column) and numeric columns with :func:`lmmcore.tables.read_table`.

    Returns the IDs, the other column names and a float array (missing cells
    as NaN). Raises for a non-numeric or infinite cell, and for what
    :func:`~lmmcore.tables.read_table` refuses (an empty or binary file,
    repeated IDs or column names, missing IDs).
    """
    body = read_table(source, what, name=name, comments=True)
    ids, columns = body.index, list(body.columns)
    nonnumeric = [c for c, t in zip(columns, body.dtypes) if not pd.api.types.is_numeric_dtype(t)]
    if nonnumeric:
        col = nonnumeric[0]
        as_num = pd.to_numeric(body[col], errors="coerce")
        k = int(np.flatnonzero(as_num.isna().to_numpy() & body[col].notna().to_numpy())[0])
        raise LMMInputError(
            f"In the {what} file {name}, column {col} has the value {body[col].iloc[k]!r} for ID "
            f"{ids[k]!r}, which is not a number "
            f"({agree(len(nonnumeric), 'column has', 'columns have')} such values: "
            f"{list_names(nonnumeric)}); every cell after the ID column must be a number or NA."
        )
    values = body.to_numpy(dtype=np.float64, copy=True)
    if np.isinf(values).any():
        i, j = np.argwhere(np.isinf(values))[0]
        raise LMMInputError(
            f"In the {what} file {name}, column {columns[j]} is infinite for ID {ids[i]!r}; "
            "every cell must be a finite number or NA."
        )
    return ids.tolist(), columns, values


def _split_marker_genotype(path: str, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    names = pd.Series(columns, dtype=object)
    parts = names.str.rsplit(":", n=1, expand=True)
    if parts.shape[1] < 2 or parts[1].isna().any() or (parts[0] == "").any() or (parts[1] == "").any():
        bad = [c for c in columns if ":" not in c or c.startswith(":") or c.endswith(":")]
        raise LMMInputError(
            f"The genotype probabilities file {path} has columns not named MARKER:GENOTYPE "
            f"({list_names(bad)}); name each column by a marker and a genotype separated by a "
            "colon, e.g. D1Mit18:AB. (A file of dosages, one column per marker, is read with "
            "read_dosages.)"
        )
    return parts[0].to_numpy(dtype=object), parts[1].to_numpy(dtype=object)


def _factorize(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Distinct values in order of first appearance, and each value's code."""
    codes, uniques = pd.factorize(values, sort=False)
    return [str(u) for u in uniques], codes


def _check_missing(path: str, what: str, ids: list[str], columns: list[str], values: np.ndarray,
                   column_of: np.ndarray, markers: Sequence[str]) -> None:
    """Raise for a missing probability, unless its marker has none observed (kept NaN, with a warning)."""
    missing = np.isnan(values)
    if not missing.any():
        return
    empty_col = np.append(missing.all(axis=0), True)  # the last: absent genotypes
    empty_marker = empty_col[column_of].all(axis=1)  # (markers,)
    partial = missing & ~empty_marker[_marker_of_column(column_of, len(columns))][None, :]
    if partial.any():
        i, j = np.argwhere(partial)[0]
        raise LMMInputError(
            f"In the {what} file {path}, column {columns[j]} is missing for ID {ids[i]!r} "
            f"({agree(int(partial.sum()), 'cell is', 'cells are')} missing); genotype "
            "probabilities cannot be missing, so compute them for every individual and marker "
            "(e.g. with R/qtl2's calc_genoprob). A marker with no probabilities at all is allowed "
            "(kept as missing)."
        )
    names = [markers[j] for j in np.flatnonzero(empty_marker)]
    report(
        f"{agree(len(names), 'marker', 'markers')} of the {what} file {path} "
        f"{verb(len(names), 'has', 'have')} no observed genotype ({list_names(names)}) and "
        f"{verb(len(names), 'is', 'are')} kept as missing: the scan reports it as a flagged row "
        "(all_missing) and kinships skip it.",
        stacklevel=3,
    )


def _marker_of_column(column_of: np.ndarray, n_columns: int) -> np.ndarray:
    """The marker of every file column (inverse of ``column_of``)."""
    out = np.empty(n_columns + 1, dtype=np.int64)  # the last: absent genotypes (column_of == n_columns)
    out[column_of.ravel()] = np.repeat(np.arange(column_of.shape[0]), column_of.shape[1])
    return out[:n_columns]


def _observed_counts(values: np.ndarray, chunk_elements: int = 1 << 22) -> np.ndarray:
    """Observed (non-NaN) values per column, in column chunks (no full-size temporary)."""
    n, m = values.shape
    step = max(1, chunk_elements // max(1, n))
    out = np.empty(m, dtype=np.int64)
    for start in range(0, m, step):
        block = values[:, start:start + step]
        out[start:start + step] = n - np.count_nonzero(np.isnan(block), axis=0)
    return out


def _impute_means(values: np.ndarray, observed: np.ndarray | None, markers: Sequence[str], where: str) -> None:
    """Replace missing values in place by their column's mean, with a warning.

    ``observed`` (``~isnan(values)``) may be None: it is then counted column
    chunk by column chunk.

    A marker with no observed value stays NaN (the scan flags it
    ``all_missing``, the kinships skip it); the warning counts such markers.
    """
    n_obs = _observed_counts(values) if observed is None else observed.sum(axis=0)
    n_missing = int(values.shape[0] * values.shape[1] - n_obs.sum())
    if n_missing == 0:
        return
    empty = n_obs == 0
    partial = (n_obs < values.shape[0]) & ~empty
    if partial.any():
        cols = np.flatnonzero(partial)
        sub = values[:, cols]
        obs = ~np.isnan(sub)
        means = np.where(obs, sub, 0.0).sum(axis=0) / n_obs[cols]
        r, c = np.nonzero(~obs)
        values[r, cols[c]] = means[c]
    n_imputed = int((values.shape[0] - n_obs[partial]).sum())
    parts = []
    if n_imputed:
        parts.append(
            f"{plural(n_imputed, 'missing dosage')} ({100 * n_imputed / values.size:.2g}% of all "
            f"values, at {plural(int(partial.sum()), 'marker')}) in {where} "
            f"{'was' if n_imputed == 1 else 'were'} replaced by the marker's mean dosage"
        )
    if empty.any():
        names = [markers[j] for j in np.flatnonzero(empty)]
        parts.append(
            f"{agree(len(names), 'marker', 'markers')} of {where} {verb(len(names), 'has', 'have')} "
            f"no observed genotype ({list_names(names)}) and {verb(len(names), 'is', 'are')} kept as "
            "missing: the scan reports it as a flagged row (all_missing) and kinships skip it"
        )
    report("; ".join(parts) + ".", stacklevel=3)
